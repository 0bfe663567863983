//! Phase 0: the GNU ld command line -> [`Config`].
//!
//! Parses the options that gcc, clang and rustc pass, with GNU ld's own rules (long options
//! take one dash or two; `-o x`, `-ox`, `--output=x` are the same). Position-dependent flags
//! (`-Bstatic`, `--whole-archive`, `--as-needed`, groups) are captured into each input's
//! [`Modifiers`] in command-line order. This module reads no input files except `@response`
//! files; finding libraries and reading linker scripts is `inputs::search`'s job.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modifiers {
    /// `--whole-archive` in force.
    pub whole_archive: bool,
    /// `--as-needed` in force.
    pub as_needed: bool,
    /// `-Bstatic` / `-static` in force: `-l` only finds `.a`.
    pub link_static: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputArg {
    /// A path named on the command line.
    File { path: PathBuf, modifiers: Modifiers },
    /// `-lNAME` (name = "NAME") or `-l:FILE` (name = ":FILE").
    Library { name: String, modifiers: Modifiers },
    /// `--start-group` / `-(`.
    GroupStart,
    /// `--end-group` / `-)`.
    GroupEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildId {
    /// `--build-id` or `--build-id=sha1` (20 bytes); also `fast`/`tree`.
    Sha1,
    /// `--build-id=md5` (16 bytes).
    Md5,
    /// `--build-id=uuid` (16 bytes).
    Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildIdArg {
    Hash(BuildId),
    /// `--build-id=0xHEX`.
    Hex(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashStyle {
    Sysv,
    Gnu,
    #[default]
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnresolvedSymbols {
    #[default]
    ReportAll,
    IgnoreAll,
    IgnoreInObjectFiles,
    IgnoreInSharedLibs,
}

/// `-z` keywords that weld acts on. Unknown `-z` keywords are accepted and ignored with a
/// warning, as GNU ld does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZOptions {
    pub relro: bool,
    pub now: bool,
    pub execstack: bool,
    /// `-z text` (default true for weld's purposes: `-z notext` sets false).
    pub text: bool,
    pub origin: bool,
    pub nodelete: bool,
    pub nodlopen: bool,
    pub initfirst: bool,
    pub interpose: bool,
    pub defs: bool,
    pub separate_code: bool,
    pub max_page_size: Option<u64>,
    pub common_page_size: Option<u64>,
    pub stack_size: Option<u64>,
    /// `-z start-stop-gc`.
    pub start_stop_gc: bool,
}

impl Default for ZOptions {
    fn default() -> Self {
        ZOptions {
            relro: false,
            now: false,
            execstack: false,
            text: true,
            origin: false,
            nodelete: false,
            nodlopen: false,
            initfirst: false,
            interpose: false,
            defs: false,
            separate_code: true,
            max_page_size: None,
            common_page_size: None,
            stack_size: None,
            start_stop_gc: false,
        }
    }
}

/// What the command line asks for. Filled by [`parse`].
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `-o`; default `a.out`.
    pub output: PathBuf,
    /// Inputs and group markers in command-line order.
    pub inputs: Vec<InputArg>,
    /// `-L` directories in order (with `=`/`$SYSROOT` prefixes already replaced by the sysroot).
    pub library_paths: Vec<PathBuf>,
    pub sysroot: Option<PathBuf>,
    /// `-e`/`--entry`.
    pub entry: Option<String>,
    /// `-shared` / `-Bshareable`.
    pub shared: bool,
    /// `-pie` / `--pic-executable` (last of `-pie`/`-no-pie` wins).
    pub pie: bool,
    /// `-r` / `--relocatable` / `-i`.
    pub relocatable: bool,
    /// `-static` or `-Bstatic` appeared anywhere, or `-static-pie`.
    /// (Output is static when no shared object ends up being linked; this flag only records
    /// what was asked.)
    pub static_requested: bool,
    /// `--no-dynamic-linker` (also implied by `-static-pie`).
    pub no_dynamic_linker: bool,
    /// `-dynamic-linker X` / `--dynamic-linker=X` / `-I X`.
    pub dynamic_linker: Option<String>,
    pub gc_sections: bool,
    pub print_gc_sections: bool,
    pub eh_frame_hdr: bool,
    pub build_id: Option<BuildIdArg>,
    pub hash_style: HashStyle,
    pub soname: Option<String>,
    /// `-rpath` values in order (each may be a `:`-separated list; kept as given).
    pub rpath: Vec<String>,
    pub rpath_link: Vec<String>,
    /// `--enable-new-dtags` (default true, as Debian's ld) / `--disable-new-dtags`.
    pub new_dtags: bool,
    pub z: ZOptions,
    /// `--threads=N` / `--threads N`; `--no-threads` = 1.
    pub threads: Option<usize>,
    pub verbose: bool,
    /// `-v` / `--version` / `-V`: print version. `version_only` is true for `--version`
    /// (print and exit); `-v` prints and keeps linking if there are inputs.
    pub print_version: bool,
    pub version_only: bool,
    pub help: bool,
    /// `-s` / `--strip-all`.
    pub strip_all: bool,
    /// `-S` / `--strip-debug`.
    pub strip_debug: bool,
    /// `-E` / `--export-dynamic`.
    pub export_dynamic: bool,
    /// `-u SYM` / `--undefined=SYM`.
    pub undefined: Vec<String>,
    /// `--defsym=SYM=EXPR`, kept as (sym, expr text).
    pub defsym: Vec<(String, String)>,
    /// `--wrap=SYM`.
    pub wrap: Vec<String>,
    /// `--version-script=F`.
    pub version_scripts: Vec<PathBuf>,
    /// `--dynamic-list=F`.
    pub dynamic_lists: Vec<PathBuf>,
    /// `-T F` / `--script=F`.
    pub linker_scripts: Vec<PathBuf>,
    /// `-Map F` / `-Map=F` / `--Map=F`.
    pub map_file: Option<PathBuf>,
    pub bsymbolic: bool,
    pub bsymbolic_functions: bool,
    /// `--no-undefined` (same as `-z defs`).
    pub no_undefined: bool,
    pub allow_shlib_undefined: Option<bool>,
    pub unresolved_symbols: UnresolvedSymbols,
    /// `--exclude-libs=a,b` / `ALL`.
    pub exclude_libs: Vec<String>,
    /// `--compress-debug-sections=none|zlib|zlib-gabi|zstd` (None = not given).
    pub compress_debug_sections: Option<String>,
    /// `-plugin` / `-plugin-opt` values (accepted and recorded; weld does not run plugins).
    pub plugins: Vec<String>,
    pub plugin_opts: Vec<String>,
    /// `-m EMULATION`. Only `elf_x86_64` is accepted (others are an error).
    pub emulation: Option<String>,
    /// `--incremental` / `--no-incremental` (None = not given; `WELD_INCREMENTAL` decides).
    pub incremental: Option<bool>,
    /// `--time`: per-phase timings.
    pub time: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--no-crt-detect`: turn off direct-invocation C runtime detection.
    pub no_crt_detect: bool,
    /// `--fatal-warnings`.
    pub fatal_warnings: bool,
    /// `--warn-common` etc. are accepted and ignored; `--no-warn-mismatch` likewise.
    /// `-O N` (accepted; recorded).
    pub optimize: u32,
    /// `--icf=none|all|safe` (accepted).
    pub icf: Option<String>,
    /// `--sort-section`, `--sort-common` (accepted).
    pub sort_common: bool,
    /// `-nostdlib` (accepted: only matters for linker scripts' SEARCH_DIR).
    pub nostdlib: bool,
    /// `--no-relax`
    pub no_relax: bool,
    /// `--image-base=N` / `-Ttext-segment=N`.
    pub image_base: Option<u64>,
    /// `--pop-state` / `--push-state` are applied during parsing; nothing to record.
    /// `--trace` / `-t`.
    pub trace: bool,
    /// `--demangle` (default true) / `--no-demangle`.
    pub demangle: bool,
    /// `--no-as-needed` etc. live in Modifiers.
    /// `--error-limit=N`: 0 = unlimited.
    pub error_limit: usize,
}

/// Parses the argument list (without argv[0]). `@file` response files are expanded here
/// (recursively, with GNU quoting rules: whitespace separates, '...' and "..." quote,
/// backslash escapes). Errors name the offending option.
pub fn parse(args: &[String]) -> anyhow::Result<Config> {
    let _ = args;
    anyhow::bail!("args::parse is not written yet")
}
