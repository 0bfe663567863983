//! Phase 0: the GNU ld command line -> [`Config`].
//!
//! Parses the options that gcc, clang and rustc pass, with GNU ld's own rules (long options
//! take one dash or two; `-o x`, `-ox`, `--output=x` are the same). Position-dependent flags
//! (`-Bstatic`, `--whole-archive`, `--as-needed`, groups) are captured into each input's
//! [`Modifiers`] in command-line order. This module reads no input files except `@response`
//! files; finding libraries and reading linker scripts is `input::search`'s job.

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

/// Which of the objects' local symbols `.symtab` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discard {
    /// All of them (`--discard-none`).
    None,
    /// All but the assembler's temporary labels (`.L*`) in mergeable sections, which merging
    /// makes meaningless (GNU ld's default).
    #[default]
    MergedTemporaries,
    /// All but the assembler's temporary labels (`-X`).
    Temporaries,
    /// None (`-x`): the output keeps its global symbols and the linker's own.
    All,
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
    /// `-z execstack`/`-z noexecstack`; `None`: the inputs decide (`layout::executable_stack`).
    pub execstack: Option<bool>,
    /// `-z text` (default true for weld's purposes: `-z notext` sets false).
    pub text: bool,
    /// `-z text` was given: a RELATIVE relocation in a read-only section is then an error
    /// (GNU ld's "read-only segment has dynamic relocations"); by default it makes a
    /// DT_TEXTREL output, with GNU ld's warnings.
    pub text_given: bool,
    pub origin: bool,
    pub nodelete: bool,
    pub nodlopen: bool,
    pub initfirst: bool,
    pub interpose: bool,
    /// `DF_1_*` flags set by `-z global`, `loadfltr`, `nodefaultlib`, `nodump`.
    pub extra_flags_1: u32,
    pub defs: bool,
    pub stack_size: Option<u64>,
    /// `-z start-stop-gc`.
    pub start_stop_gc: bool,
    /// `-z ibt`, `-z shstk`, `-z x86-64-v2`...: properties the output's
    /// `.note.gnu.property` gets whatever its inputs say.
    pub properties: crate::property::Forced,
    /// `-z dynamic-undefined-weak` (the default, as GNU ld's on x86-64): an executable's
    /// undefined weak symbols are imported (a library loaded at run time may define them).
    pub dynamic_undefined_weak: bool,
    /// `-z ibtplt`: PLT entries that start with `endbr64` even in an output not marked IBT.
    pub ibtplt: bool,
    /// `-z cet-report=warning|error`: report the objects without IBT and SHSTK.
    pub cet_report: Option<CetReport>,
    /// `-z pack-relative-relocs`: RELATIVE relocations at even addresses go to `.relr.dyn`
    /// (DT_RELR) instead of `.rela.dyn`.
    pub pack_relative_relocs: bool,
}

/// `--icf`'s mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Icf {
    #[default]
    None,
    /// Every eligible section.
    All,
    /// Only sections whose address nothing compares (`.llvm_addrsig`).
    Safe,
}

/// How `-z cet-report` reports an object that lacks a CET property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CetReport {
    Warning,
    Error,
}

impl Default for ZOptions {
    fn default() -> Self {
        ZOptions {
            relro: true,
            now: false,
            execstack: None,
            text: true,
            text_given: false,
            origin: false,
            nodelete: false,
            nodlopen: false,
            initfirst: false,
            interpose: false,
            extra_flags_1: 0,
            defs: false,
            stack_size: None,
            start_stop_gc: false,
            properties: crate::property::Forced::default(),
            dynamic_undefined_weak: true,
            ibtplt: false,
            cet_report: None,
            pack_relative_relocs: false,
        }
    }
}

impl Config {
    /// Whether the objects' undefined symbols are errors: not with
    /// `--unresolved-symbols=ignore-all|ignore-in-object-files` (they are then 0, as in
    /// GNU ld) or `--warn-unresolved-symbols` (warned about, then 0).
    pub fn undefined_in_objects_are_errors(&self) -> bool {
        !self.warn_unresolved_symbols
            && !matches!(
                self.unresolved_symbols,
                UnresolvedSymbols::IgnoreAll | UnresolvedSymbols::IgnoreInObjectFiles
            )
    }

    /// This configuration with a script's output commands: its `ENTRY` unless `-e` was given.
    pub fn with_script(&self, script: crate::script::Script) -> anyhow::Result<Config> {
        let mut config = self.clone();
        if config.entry.is_none() {
            config.entry = script.entry.clone();
        }
        // EXTERN(sym) is -u sym.
        config.undefined.extend(script.externs.iter().cloned());
        // INSERT and --section-start apply to the default layout, written as a script.
        let mut script = script;
        if script.insert.is_some() || (script.sections.is_none() && !self.section_starts.is_empty())
        {
            script = crate::script::with_default(self.pie || self.shared, script)?;
        }
        crate::script::set_section_starts(&mut script, &self.section_starts);
        crate::script::check(&script)?;
        config.script = Some(std::sync::Arc::new(script));
        Ok(config)
    }
}

/// What the command line asks for. Filled by [`parse`].
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `-o`; default `a.out`. Before the link starts, a symbolic link here is replaced by
    /// its target (`output::locate`).
    pub output: PathBuf,
    /// What `output` is: set by the link from the file system, not by the command line.
    pub output_node: crate::output::OutputNode,
    /// `-o` as written, before `output::locate` followed a symbolic link (what a failed
    /// link removes and the dependency file names).
    pub output_arg: PathBuf,
    /// Inputs and group markers in command-line order.
    pub inputs: Vec<InputArg>,
    /// `-L` directories in order (with `=`/`$SYSROOT` prefixes already replaced by the sysroot).
    pub library_paths: Vec<PathBuf>,
    pub sysroot: Option<PathBuf>,
    /// `-e`/`--entry`.
    pub entry: Option<String>,
    /// `-init`/`-fini`: the functions DT_INIT and DT_FINI name (default `_init`, `_fini`).
    pub init: Option<String>,
    pub fini: Option<String>,
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
    /// `-q` / `--emit-relocs`: the inputs' relocations kept in the output (`.rela.<name>`).
    pub emit_relocs: bool,
    /// `-S` / `--strip-debug`.
    pub strip_debug: bool,
    /// `-x`/`--discard-all`, `-X`/`--discard-locals`, `--discard-none`: which local symbols
    /// of the objects `.symtab` keeps.
    pub discard: Discard,
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
    pub bsymbolic: bool,
    pub bsymbolic_functions: bool,
    /// lld's `-Bsymbolic-non-weak`: -Bsymbolic for the non-weak definitions only.
    pub bsymbolic_non_weak: bool,
    /// lld's `-Bsymbolic-non-weak-functions`: -Bsymbolic-functions for the non-weak ones.
    pub bsymbolic_non_weak_functions: bool,
    /// `--dynamic-list-data`: every data symbol is in the dynamic list.
    pub dynamic_list_data: bool,
    /// `--dynamic-list-cpp-new`, `--dynamic-list-cpp-typeinfo`: C++ operator new/delete,
    /// typeinfo objects and names are in the dynamic list.
    pub dynamic_list_cpp_new: bool,
    pub dynamic_list_cpp_typeinfo: bool,
    /// `--default-symver`: exported symbols without a version get one named after the
    /// soname (or the output file).
    pub default_symver: bool,
    /// `-f`/`--auxiliary`: DT_AUXILIARY entries of a shared library.
    pub auxiliary: Vec<String>,
    /// `-F`/`--filter`: DT_FILTER of a shared library (the last one given).
    pub filter: Option<String>,
    /// `--audit`, `-P`/`--depaudit`: DT_AUDIT and DT_DEPAUDIT (colon-separated lists).
    pub audit: Vec<String>,
    pub depaudit: Vec<String>,
    /// `--package-metadata=JSON`: the `.note.package` note's text.
    pub package_metadata: Option<String>,
    /// `--spare-dynamic-tags=N`: DT_NULL entries ending `.dynamic` (GNU ld's default 5; at
    /// least the one that ends it).
    pub spare_dynamic_tags: u64,
    /// `--no-undefined` (same as `-z defs`).
    pub no_undefined: bool,
    pub allow_shlib_undefined: Option<bool>,
    pub unresolved_symbols: UnresolvedSymbols,
    /// `--oformat=binary`: the loaded sections' bytes from the lowest load address, as
    /// `objcopy -O binary` makes them, instead of an ELF file.
    pub binary_output: bool,
    /// `--reproduce=FILE.tar` (lld's): the inputs and a response file, see `reproduce`.
    pub reproduce: Option<PathBuf>,
    /// The command line as given, response files expanded (for `--reproduce`).
    pub command_line: Vec<String>,
    /// `--why-extract=FILE` (lld's): why each archive member was extracted, to FILE (`-`:
    /// standard output).
    pub why_extract: Option<PathBuf>,
    /// `--print-memory-usage`: the MEMORY regions' use on standard output.
    pub print_memory_usage: bool,
    /// `--warn-common`: warn when a common symbol meets another common or a definition.
    pub warn_common: bool,
    /// `--warn-unresolved-symbols`: undefined symbols are warnings, not errors.
    pub warn_unresolved_symbols: bool,
    /// `--exclude-libs=a,b` / `ALL`.
    pub exclude_libs: Vec<String>,
    /// `--compress-debug-sections=none|zlib|zlib-gabi|zstd` (None = not given).
    pub compress_debug_sections: Option<String>,
    /// `-plugin` / `-plugin-opt` values: the LTO plugins (see `lto`).
    pub plugins: Vec<String>,
    /// What the linker scripts among the inputs (and `-T` scripts) say about the output's
    /// shape: set by `link` once the inputs are found.
    pub script: Option<std::sync::Arc<crate::script::Script>>,
    /// `-Ttext=ADDR`, `-Tdata`, `-Tbss`, `-Tldata`, `--section-start=NAME=ADDR`.
    pub section_starts: Vec<(String, u64)>,
    pub plugin_opts: Vec<String>,
    /// `--incremental` / `--no-incremental` (None = not given; `WELD_INCREMENTAL` decides).
    pub incremental: Option<bool>,
    /// `--incremental-spare=PERCENT`: room left after each slot in incremental mode.
    pub incremental_spare: Option<u64>,
    /// `--time`: per-phase timings.
    pub time: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--no-crt-detect`: turn off direct-invocation C runtime detection.
    pub no_crt_detect: bool,
    /// `--fatal-warnings`.
    pub fatal_warnings: bool,
    /// `-nostdlib` (accepted: only matters for linker scripts' SEARCH_DIR).
    pub nostdlib: bool,
    /// `--no-relax`
    pub no_relax: bool,
    /// `--image-base=N` / `-Ttext-segment=N`.
    pub image_base: Option<u64>,
    /// `--pop-state` / `--push-state` are applied during parsing; nothing to record.
    /// `--export-dynamic-symbol=GLOB`, `--export-dynamic-symbol-list=FILE`.
    pub export_dynamic_symbols: Vec<String>,
    pub export_dynamic_symbol_lists: Vec<PathBuf>,
    /// `-Map FILE`.
    pub map_file: Option<PathBuf>,
    /// `-M`/`--print-map`: the map on standard output.
    pub print_map: bool,
    /// `--cref`: the cross-reference table, at the end of the map (or on standard output).
    pub cref: bool,
    /// `--icf=all|safe|none`: identical code folding (`crate::icf`).
    pub icf: Icf,
    /// `--print-icf-sections`.
    pub print_icf_sections: bool,
    /// `-d`/`-dc`/`-dp`.
    pub define_common: bool,
    /// `--trace` / `-t`.
    pub trace: bool,
    /// `--demangle` (default true) / `--no-demangle`.
    pub demangle: bool,
    /// `--no-as-needed` etc. live in Modifiers.
    /// `--error-limit=N`: 0 = unlimited.
    pub error_limit: usize,
    /// `-y SYM` / `--trace-symbol=SYM`.
    pub trace_symbols: Vec<String>,
    /// `--no-undefined-version` (last of it and `--undefined-version` wins; default false).
    pub no_undefined_version: bool,
    /// `--allow-multiple-definition` / `-z muldefs`.
    pub allow_multiple_definition: bool,
    /// `--dependency-file=F`.
    pub dependency_file: Option<PathBuf>,
}

/// Parses the argument list (without argv[0]). `@file` response files are expanded here
/// (recursively, with GNU quoting rules: whitespace separates, '...' and "..." quote,
/// backslash escapes). Errors name the offending option.
pub fn parse(args: &[String]) -> anyhow::Result<Config> {
    let expanded = expand_response_files(args, 0)?;
    let mut stream = ArgStream {
        args: expanded,
        pos: 0,
    };
    let mut state = State::new();
    let mut options_done = false;
    while let Some(arg) = stream.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            state.add_file(arg);
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        state.option(&arg, &mut stream)?;
    }
    let mut config = state.finish();
    if config.reproduce.is_some() {
        config.command_line = stream.args.clone();
    }
    // As GNU ld: filters are a shared library's.
    if !config.shared {
        if !config.auxiliary.is_empty() {
            anyhow::bail!("-f may not be used without -shared");
        }
        if config.filter.is_some() {
            anyhow::bail!("-F may not be used without -shared");
        }
    }
    Ok(config)
}

/// Response files may include others; this bounds the nesting (and catches self-inclusion).
const MAX_RESPONSE_FILE_DEPTH: usize = 32;

/// Replaces every `@file` argument by the arguments the file contains, recursively.
fn expand_response_files(args: &[String], depth: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let Some(path) = arg.strip_prefix('@').filter(|p| !p.is_empty()) else {
            out.push(arg.clone());
            continue;
        };
        if depth >= MAX_RESPONSE_FILE_DEPTH {
            anyhow::bail!("response file {path}: nested too deeply (does it include itself?)");
        }
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read response file {path}: {}", io_reason(&e)))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("response file {path} is not valid UTF-8"))?;
        out.extend(expand_response_files(
            &split_response_file(&text),
            depth + 1,
        )?);
    }
    Ok(out)
}

/// Splits response-file text the way libiberty's `buildargv` does: whitespace separates
/// arguments, `'...'` and `"..."` quote, and a backslash takes the next character literally
/// (inside quotes too). `''` gives an empty argument.
fn split_response_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            _ if c == '\\' => {
                in_arg = true;
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
            }
            Some(open) if c == open => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_arg = true;
            }
            None if c.is_whitespace() => {
                if in_arg {
                    out.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            None => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        out.push(current);
    }
    out
}

/// The reason part of an I/O error, without Rust's " (os error N)" suffix.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
        _ => err.to_string(),
    }
}

/// The expanded argument list with a read position.
struct ArgStream {
    args: Vec<String>,
    pos: usize,
}

impl ArgStream {
    fn next(&mut self) -> Option<String> {
        let arg = self.args.get(self.pos).cloned();
        if arg.is_some() {
            self.pos += 1;
        }
        arg
    }

    /// Takes the next argument only if `accept` likes it.
    fn next_if(&mut self, accept: impl Fn(&str) -> bool) -> Option<String> {
        let arg = self.args.get(self.pos).filter(|a| accept(a))?.clone();
        self.pos += 1;
        Some(arg)
    }
}

/// The value of the option being parsed: attached (`--opt=v`, `-Lv`) or the next argument.
struct Value<'a> {
    /// The option as spelled, without any attached value (`--output`, `-o`), for messages.
    opt: &'a str,
    attached: Option<String>,
    stream: &'a mut ArgStream,
}

impl Value<'_> {
    /// A value the option must have: attached, or else the next argument whatever it is.
    fn required(&mut self) -> anyhow::Result<String> {
        if let Some(value) = self.attached.take() {
            return Ok(value);
        }
        self.stream
            .next()
            .ok_or_else(|| anyhow::anyhow!("option {} requires an argument", self.opt))
    }

    /// An optional value: only the attached form (`--opt=v`) counts.
    fn optional(&mut self) -> Option<String> {
        self.attached.take()
    }

    fn number(&mut self) -> anyhow::Result<u64> {
        let text = self.required()?;
        parse_number(&text).ok_or_else(|| self.invalid(&text))
    }

    fn invalid(&self, value: &str) -> anyhow::Error {
        anyhow::anyhow!("invalid value for {}: {value}", self.opt)
    }
}

/// Hexadecimal, with or without `0x` (`-Ttext`, `--section-start`).
fn parse_hex(text: &str) -> Option<u64> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(hex, 16).ok()
}

/// Decimal or `0x` hexadecimal.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `--build-id=0xHEX` bytes; `None` if empty or not hex.
fn parse_hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.is_ascii() {
        return None;
    }
    // An odd digit count is read as if it had a leading zero.
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect()
}

/// Short options that take a value (`-o x`, `-ox`).
const SHORT_WITH_VALUE: &[char] = &[
    'o', 'L', 'l', 'e', 'u', 'm', 'T', 'z', 'I', 'O', 'y', 'h', 'R', 'f', 'F', 'P',
];

/// `-z` keywords that change nothing weld writes: they select what weld does anyway or
/// tune something weld has no counterpart of (README, option table).
const NO_OP_Z_KEYWORDS: &[&str] = &[
    "combreloc",
    "nocombreloc",
    "common",
    "nocommon",
    "unique-symbol",
    "nounique-symbol",
    "nomark-plt",
    "noexecheap",
    "execheap",
    "sectionheader",
    "nomemory-seal",
    "report-relative-reloc",
    "bndplt",
];

/// `-z` keywords about `.note.gnu.property` properties weld does not write (LAM, memory
/// sealing, indirect extern access, GNU ld 2.41's and later's): accepted with a warning, as
/// GNU ld 2.40 warns about them; the program runs as it would unmarked.
const PROPERTY_Z_KEYWORDS: &[&str] = &[
    "lam-u48",
    "lam-u57",
    "indirect-extern-access",
    "noindirect-extern-access",
    "noextern-protected-data",
    "memory-seal",
    "mark-plt",
];

/// `-z KEY=VALUE` keywords of the same kind (reports and choices about property notes
/// and relaxation padding).
const PROPERTY_Z_KEYWORDS_WITH_VALUE: &[&str] = &[
    "call-nop",
    "start-stop-visibility",
    "isa-level-report",
    "lam-report",
    "lam-u48-report",
    "lam-u57-report",
];

/// The parse in progress.
struct State {
    config: Config,
    modifiers: Modifiers,
    /// `--push-state` saves.
    saved: Vec<Modifiers>,
    /// `-L` values as written; `=`/`$SYSROOT` are replaced once the sysroot is known
    /// (`--sysroot` may come after `-L`, and GNU ld applies it to all of them).
    library_paths: Vec<String>,
}

impl State {
    fn new() -> State {
        let config = Config {
            output: PathBuf::from("a.out"),
            new_dtags: true,
            spare_dynamic_tags: 5,
            hash_style: HashStyle::Both,
            demangle: true,
            z: ZOptions::default(),
            ..Config::default()
        };
        State {
            config,
            modifiers: Modifiers::default(),
            saved: Vec::new(),
            library_paths: Vec::new(),
        }
    }

    fn finish(mut self) -> Config {
        let sysroot = self.config.sysroot.clone();
        self.config.library_paths = self
            .library_paths
            .iter()
            .map(|dir| apply_sysroot(dir, sysroot.as_deref()))
            .collect();
        self.config
    }

    fn add_file(&mut self, path: String) {
        self.config.inputs.push(InputArg::File {
            path: PathBuf::from(path),
            modifiers: self.modifiers,
        });
    }

    fn add_library(&mut self, name: String, opt: &str) -> anyhow::Result<()> {
        if name.is_empty() || name == ":" {
            anyhow::bail!("option {opt} requires a library name");
        }
        self.config.inputs.push(InputArg::Library {
            name,
            modifiers: self.modifiers,
        });
        Ok(())
    }

    /// One argument that starts with `-` (not `-` or `--` alone).
    fn option(&mut self, arg: &str, stream: &mut ArgStream) -> anyhow::Result<()> {
        let (dashes, body) = match arg.strip_prefix("--") {
            Some(body) => ("--", body),
            None => ("-", &arg[1..]),
        };
        // GNU ld: multi-letter options starting with 'o' need two dashes, so `-omagic`
        // means `-o magic`.
        if dashes == "-" && body.starts_with('o') {
            return self.short(arg, 'o', &body[1..], stream);
        }
        let (name, attached) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        let opt = &arg[..dashes.len() + name.len()];
        let mut value = Value {
            opt,
            attached,
            stream,
        };
        if self.long(name, &mut value)? {
            if value.attached.is_some() {
                anyhow::bail!("option {opt} does not take an argument");
            }
            return Ok(());
        }
        let mut chars = body.chars();
        match chars.next() {
            Some(letter) if dashes == "-" => self.short(arg, letter, chars.as_str(), value.stream),
            _ => anyhow::bail!("unknown option: {arg}"),
        }
    }

    /// A single-letter option: `letter` with `rest` attached (`-Lrest`), or alone.
    fn short(
        &mut self,
        arg: &str,
        letter: char,
        rest: &str,
        stream: &mut ArgStream,
    ) -> anyhow::Result<()> {
        let takes_value = SHORT_WITH_VALUE.contains(&letter);
        if !takes_value && !rest.is_empty() {
            anyhow::bail!("unknown option: {arg}");
        }
        let opt = &arg[..1 + letter.len_utf8()];
        let mut value = Value {
            opt,
            attached: (!rest.is_empty()).then(|| rest.to_string()),
            stream,
        };
        let long_name = match letter {
            'o' => "output",
            'L' => "library-path",
            'l' => "library",
            'e' => "entry",
            'u' => "undefined",
            'T' => "script",
            'I' => "dynamic-linker",
            'y' => "trace-symbol",
            'h' => "soname",
            // GNU ld reads `-R FILE` as --just-symbols when FILE is not a directory; weld
            // only supports the rpath meaning.
            'R' => "rpath",
            's' => "strip-all",
            'S' => "strip-debug",
            'E' => "export-dynamic",
            'r' | 'i' => "relocatable",
            't' => "trace",
            'x' => "discard-all",
            'M' => "print-map",
            'X' => "discard-locals",
            'q' => "emit-relocs",
            'n' => "nmagic",
            'N' => "omagic",
            'f' => "auxiliary",
            'F' => "filter",
            'P' => "depaudit",
            'm' => {
                let emulation = value.required()?;
                if emulation != "elf_x86_64" {
                    anyhow::bail!("unsupported emulation: {emulation}");
                }
                return Ok(());
            }
            'z' => {
                let keyword = value.required()?;
                return self.z_option(&keyword);
            }
            'O' => {
                let level = value.required()?;
                // GNU ld's -O tunes its hash tables; weld's are sized for speed always.
                level.parse::<u32>().map_err(|_| value.invalid(&level))?;
                return Ok(());
            }
            'v' | 'V' => {
                self.config.print_version = true;
                return Ok(());
            }
            // -g: debugging info, ignored by GNU ld too.
            'g' => return Ok(()),
            _ => anyhow::bail!("unknown option: {arg}"),
        };
        if !self.long(long_name, &mut value)? {
            anyhow::bail!("unknown option: {arg}");
        }
        Ok(())
    }

    /// A long option by name (no dashes, no `=value`). Returns false if `name` is not one.
    fn long(&mut self, name: &str, value: &mut Value) -> anyhow::Result<bool> {
        let config = &mut self.config;
        match name {
            // Inputs and the position-dependent state that applies to them.
            "(" | "start-group" => config.inputs.push(InputArg::GroupStart),
            ")" | "end-group" => config.inputs.push(InputArg::GroupEnd),
            "library" => {
                let name = value.required()?;
                self.add_library(name, value.opt)?;
            }
            "library-path" => {
                let dir = value.required()?;
                self.library_paths.push(dir);
            }
            "whole-archive" => self.modifiers.whole_archive = true,
            "no-whole-archive" => self.modifiers.whole_archive = false,
            "as-needed" => self.modifiers.as_needed = true,
            "no-as-needed" => self.modifiers.as_needed = false,
            "push-state" => self.saved.push(self.modifiers),
            "pop-state" => {
                self.modifiers = self
                    .saved
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("{} without --push-state", value.opt))?;
            }
            "Bstatic" | "dn" | "non_shared" | "static" => {
                self.modifiers.link_static = true;
                config.static_requested = true;
            }
            "Bdynamic" | "dy" | "call_shared" => self.modifiers.link_static = false,

            // Output kind.
            "output" => config.output = PathBuf::from(value.required()?),
            "shared" | "Bshareable" => config.shared = true,
            "pie" | "pic-executable" => config.pie = true,
            "no-pie" | "no-pic-executable" => config.pie = false,
            "static-pie" => {
                config.pie = true;
                config.static_requested = true;
                config.no_dynamic_linker = true;
                self.modifiers.link_static = true;
            }
            "relocatable" => config.relocatable = true,
            "entry" => config.entry = Some(value.required()?),

            // Search paths and the dynamic section.
            "sysroot" => config.sysroot = Some(PathBuf::from(value.required()?)),
            "dynamic-linker" => config.dynamic_linker = Some(value.required()?),
            "no-dynamic-linker" => config.no_dynamic_linker = true,
            "soname" => config.soname = Some(value.required()?),
            "rpath" => {
                let dir = value.required()?;
                // GNU ld: `-R FILE` that is not a directory means --just-symbols.
                if value.opt == "-R" && std::path::Path::new(&dir).is_file() {
                    return Err(unsupported(
                        &format!("-R {dir}"),
                        "--just-symbols (a file's symbols without its contents) is not implemented",
                    ));
                }
                config.rpath.push(dir);
            }
            "rpath-link" => config.rpath_link.push(value.required()?),
            "enable-new-dtags" => config.new_dtags = true,
            "disable-new-dtags" => config.new_dtags = false,
            "hash-style" => {
                let style = value.required()?;
                config.hash_style = match style.as_str() {
                    "sysv" => HashStyle::Sysv,
                    "gnu" => HashStyle::Gnu,
                    "both" => HashStyle::Both,
                    _ => return Err(value.invalid(&style)),
                };
            }
            "build-id" => {
                config.build_id = match value.optional().as_deref() {
                    None | Some("sha1" | "fast" | "tree") => Some(BuildIdArg::Hash(BuildId::Sha1)),
                    Some("md5") => Some(BuildIdArg::Hash(BuildId::Md5)),
                    Some("uuid") => Some(BuildIdArg::Hash(BuildId::Uuid)),
                    Some("none") => None,
                    Some(other) => {
                        let hex = other
                            .strip_prefix("0x")
                            .or_else(|| other.strip_prefix("0X"));
                        let bytes = hex.and_then(parse_hex_bytes);
                        Some(BuildIdArg::Hex(bytes.ok_or_else(|| value.invalid(other))?))
                    }
                };
            }
            "eh-frame-hdr" => config.eh_frame_hdr = true,
            "no-eh-frame-hdr" => config.eh_frame_hdr = false,
            "export-dynamic" => config.export_dynamic = true,
            "no-export-dynamic" => config.export_dynamic = false,
            "Bsymbolic" => config.bsymbolic = true,
            "Bsymbolic-functions" => config.bsymbolic_functions = true,
            "Bsymbolic-non-weak" => config.bsymbolic_non_weak = true,
            "Bsymbolic-non-weak-functions" => config.bsymbolic_non_weak_functions = true,
            "Bno-symbolic" => {
                config.bsymbolic = false;
                config.bsymbolic_functions = false;
                config.bsymbolic_non_weak = false;
                config.bsymbolic_non_weak_functions = false;
            }
            "auxiliary" => config.auxiliary.push(value.required()?),
            "filter" => config.filter = Some(value.required()?),
            "audit" => config.audit.push(value.required()?),
            "depaudit" => config.depaudit.push(value.required()?),
            "spare-dynamic-tags" => {
                let count = value.required()?;
                config.spare_dynamic_tags = count
                    .parse()
                    .ok()
                    .filter(|&n| n <= 1 << 16)
                    .ok_or_else(|| value.invalid(&count))?;
            }
            "default-symver" => config.default_symver = true,
            "gdb-index" => return Err(unsupported(
                value.opt,
                "no .gdb_index is built (gdb indexes the program itself; gdb-add-index writes one)",
            )),
            "shuffle-sections" => return Err(unsupported(
                value.opt,
                "input sections are laid out in command-line order only",
            )),
            "start-lib" | "end-lib" => return Err(unsupported(
                value.opt,
                "objects are always linked; put the lazy ones in an archive (ar rcs)",
            )),
            "undefined-glob" => return Err(unsupported(
                value.opt,
                "name each symbol with -u (or an EXTERN in a script)",
            )),
            "print-dependencies" => return Err(unsupported(
                value.opt,
                "the dependency listing is not written (-Map and -y show what is linked and why)",
            )),
            "copy-dt-needed-entries" | "add-needed" => return Err(unsupported(
                value.opt,
                "symbols are not looked up in the DT_NEEDED libraries of linked libraries; name them on the command line",
            )),
            // GNU ld's default.
            "no-copy-dt-needed-entries" | "no-add-needed" => {}
            "pack-dyn-relocs" => {
                let kind = value.required()?;
                match kind.as_str() {
                    "none" => {}
                    "relr" => crate::diag::warn(format_args!(
                        "{}=relr ignored: weld writes no DT_RELR table",
                        value.opt
                    )),
                    _ => return Err(value.invalid(&kind)),
                }
            }

            // Symbols.
            "undefined" => config.undefined.push(value.required()?),
            "defsym" => {
                let text = value.required()?;
                match text.split_once('=') {
                    Some((sym, expr)) if !sym.is_empty() && !expr.is_empty() => {
                        config.defsym.push((sym.to_string(), expr.to_string()));
                    }
                    _ => {
                        anyhow::bail!("option {} expects SYMBOL=EXPRESSION, got {text}", value.opt)
                    }
                }
            }
            "wrap" => config.wrap.push(value.required()?),
            "trace-symbol" => config.trace_symbols.push(value.required()?),
            "version-script" => config.version_scripts.push(value.required()?.into()),
            "dynamic-list" => config.dynamic_lists.push(value.required()?.into()),
            "dynamic-list-data" => config.dynamic_list_data = true,
            "dynamic-list-cpp-new" => config.dynamic_list_cpp_new = true,
            "dynamic-list-cpp-typeinfo" => config.dynamic_list_cpp_typeinfo = true,
            "export-dynamic-symbol" => config.export_dynamic_symbols.push(value.required()?),
            "export-dynamic-symbol-list" => {
                config
                    .export_dynamic_symbol_lists
                    .push(value.required()?.into());
            }
            // A `-T` script is read where it stands, as an input script: the commands weld
            // knows (GROUP, INPUT, SEARCH_DIR, OUTPUT_FORMAT, OUTPUT_ARCH) work; any other
            // (SECTIONS, MEMORY, ENTRY...) is an error naming the script, never ignored.
            "script" | "default-script" | "dT" => {
                let path = value.required()?;
                config.linker_scripts.push(path.clone().into());
                self.add_file(path);
            }
            "no-undefined" => {
                config.no_undefined = true;
                config.z.defs = true;
            }
            "allow-shlib-undefined" => config.allow_shlib_undefined = Some(true),
            "no-allow-shlib-undefined" => config.allow_shlib_undefined = Some(false),
            "unresolved-symbols" => {
                let how = value.required()?;
                config.unresolved_symbols = match how.as_str() {
                    "report-all" => UnresolvedSymbols::ReportAll,
                    "ignore-in-shared-libs" => UnresolvedSymbols::IgnoreInSharedLibs,
                    "ignore-all" => UnresolvedSymbols::IgnoreAll,
                    "ignore-in-object-files" => UnresolvedSymbols::IgnoreInObjectFiles,
                    _ => return Err(value.invalid(&how)),
                };
            }
            "warn-unresolved-symbols" => config.warn_unresolved_symbols = true,
            "error-unresolved-symbols" => config.warn_unresolved_symbols = false,
            "exclude-libs" => {
                let libs = value.required()?;
                config.exclude_libs.extend(
                    libs.split([',', ':'])
                        .filter(|lib| !lib.is_empty())
                        .map(str::to_string),
                );
            }
            "allow-multiple-definition" => config.allow_multiple_definition = true,
            "no-undefined-version" => config.no_undefined_version = true,
            "undefined-version" => config.no_undefined_version = false,

            // Sections and output contents.
            "gc-sections" => config.gc_sections = true,
            "no-gc-sections" => config.gc_sections = false,
            "print-gc-sections" => config.print_gc_sections = true,
            "no-print-gc-sections" => config.print_gc_sections = false,
            "strip-all" => config.strip_all = true,
            "strip-debug" => config.strip_debug = true,
            "discard-all" => config.discard = Discard::All,
            "discard-locals" => config.discard = Discard::Temporaries,
            "discard-none" => config.discard = Discard::None,
            "emit-relocs" => config.emit_relocs = true,
            "nmagic" | "omagic" => return Err(unsupported(value.opt, "weld writes page-aligned segments only")),
            "no-omagic" => {}
            "compress-debug-sections" => {
                let kind = value.required()?;
                match kind.as_str() {
                    "none" | "zlib" | "zlib-gnu" | "zlib-gabi" | "zstd" => {}
                    _ => return Err(value.invalid(&kind)),
                }
                config.compress_debug_sections = Some(kind);
            }
            "image-base" | "Ttext-segment" => config.image_base = Some(value.number()?),
            // GNU ld reads these addresses as hexadecimal, with or without 0x.
            "Ttext" | "Tdata" | "Tbss" | "Tldata" => {
                let text = value.required()?;
                let addr = parse_hex(&text).ok_or_else(|| value.invalid(&text))?;
                config.section_starts.push((format!(".{}", &name[1..]), addr));
            }
            "section-start" => {
                let text = value.required()?;
                let (section, org) = text
                    .split_once('=')
                    .filter(|(s, _)| !s.is_empty())
                    .ok_or_else(|| value.invalid(&text))?;
                let addr = parse_hex(org).ok_or_else(|| value.invalid(&text))?;
                config.section_starts.push((section.to_string(), addr));
            }
            "Map" => config.map_file = Some(value.required()?.into()),
            "print-map" => config.print_map = true,
            "print-memory-usage" => config.print_memory_usage = true,
            "why-extract" => config.why_extract = Some(value.required()?.into()),
            "reproduce" => config.reproduce = Some(value.required()?.into()),
            "orphan-handling" => {
                let how = value.required()?;
                match how.as_str() {
                    // GNU ld's default: orphans go after sections of their kind.
                    "place" => {}
                    "warn" | "error" | "discard" => {
                        return Err(unsupported(
                            &format!("{}={how}", value.opt),
                            "orphan sections are always placed after sections of their kind",
                        ))
                    }
                    _ => return Err(value.invalid(&how)),
                }
            }
            "noinhibit-exec" => {
                return Err(unsupported(value.opt, "a link with errors writes no output"))
            }
            "retain-symbols-file" => {
                return Err(unsupported(
                    value.opt,
                    "the symbol table keeps every symbol (strip it with -s or -x)",
                ))
            }
            "oformat" => {
                let format = value.required()?;
                config.binary_output = match format.as_str() {
                    "elf64-x86-64" | "elf64-little" | "default" => false,
                    "binary" => true,
                    _ => {
                        return Err(unsupported(
                            &format!("{}={format}", value.opt),
                            "weld writes elf64-x86-64 or a raw binary (binary) only",
                        ))
                    }
                };
            }
            "cref" => config.cref = true,
            "icf" => {
                let mode = value.required()?;
                config.icf = match mode.as_str() {
                    "none" => Icf::None,
                    "all" => Icf::All,
                    "safe" => Icf::Safe,
                    _ => return Err(value.invalid(&mode)),
                };
            }
            "print-icf-sections" => config.print_icf_sections = true,
            "no-print-icf-sections" => config.print_icf_sections = false,
            "sort-common" => {
                match value.optional().as_deref() {
                    None | Some("ascending" | "descending") => {}
                    Some(other) => return Err(value.invalid(other)),
                }
                // Commons are placed by alignment already (largest first).
            }
            "sort-section" => {
                let by = value.required()?;
                if by != "name" && by != "alignment" {
                    return Err(value.invalid(&by));
                }
            }
            "no-relax" => config.no_relax = true,
            "relax" => config.no_relax = false,
            "nostdlib" => config.nostdlib = true,

            // Plugins (recorded, never run).
            "plugin" => config.plugins.push(value.required()?),
            "plugin-opt" => config.plugin_opts.push(value.required()?),

            // Diagnostics and the linker's own behaviour.
            "thread-count" => {
                let count = value.required()?;
                match count.parse::<usize>() {
                    Ok(n) if n > 0 => config.threads = Some(n),
                    _ => return Err(value.invalid(&count)),
                }
            }
            "init" => config.init = Some(value.required()?),
            "fini" => config.fini = Some(value.required()?),
            "threads" => {
                let count = value
                    .optional()
                    .or_else(|| value.stream.next_if(|a| a.parse::<usize>().is_ok()));
                if let Some(count) = count {
                    match count.parse::<usize>() {
                        Ok(n) if n > 0 => config.threads = Some(n),
                        _ => return Err(value.invalid(&count)),
                    }
                }
            }
            "no-threads" => config.threads = Some(1),
            "version" => {
                config.print_version = true;
                config.version_only = true;
            }
            "help" => config.help = true,
            "verbose" => {
                config.verbose = match value.optional() {
                    Some(level) => level.parse::<u32>().map_err(|_| value.invalid(&level))? > 0,
                    None => true,
                };
            }
            "trace" => config.trace = true,
            "demangle" => {
                // The style (`auto`, `gnu-v3`, `rust`...) is not used: weld picks per symbol.
                let _style = value.optional();
                config.demangle = true;
            }
            "no-demangle" => config.demangle = false,
            "error-limit" => {
                let limit = value.required()?;
                config.error_limit = limit.parse().map_err(|_| value.invalid(&limit))?;
            }
            "incremental" => config.incremental = Some(true),
            "no-incremental" => config.incremental = Some(false),
            "incremental-spare" => {
                let percent = value.required()?;
                match percent.parse::<u64>() {
                    Ok(n) if n <= 1000 => config.incremental_spare = Some(n),
                    _ => return Err(value.invalid(&percent)),
                }
            }
            "time" => config.time = true,
            "stats" => config.stats = true,
            "no-crt-detect" => config.no_crt_detect = true,
            "fatal-warnings" => config.fatal_warnings = true,
            "no-fatal-warnings" => config.fatal_warnings = false,
            "dependency-file" => config.dependency_file = Some(value.required()?.into()),
            "package-metadata" => config.package_metadata = value.optional(),
            "color-diagnostics" => {
                let _when = value.optional();
            }

            "warn-common" => config.warn_common = true,
            // Accepted and ignored, as they change nothing weld does.
            "warn-once"
            | "warn-constructors"
            | "warn-section-align"
            | "warn-shared-textrel"
            | "warn-textrel"
            | "warn-execstack"
            | "no-warn-execstack"
            | "warn-rwx-segments"
            | "no-warn-rwx-segments"
            | "no-warn-mismatch"
            | "no-warn-search-mismatch"
            | "no-color-diagnostics"
            | "fix-cortex-a53-843419"
            | "disable-linker-version"
            | "enable-linker-version"
            | "rosegment"
            | "no-rosegment"
            | "ld-generated-unwind-info"
            | "no-ld-generated-unwind-info"
            | "no-keep-memory"
            | "reduce-memory-overheads"
            | "check-sections"
            | "no-check-sections"
            | "EL" => {}
            // Space for common symbols in a relocatable output: weld's `-r` keeps them
            // common, so these are refused there (`link`); elsewhere GNU ld ignores them too.
            "d" | "dc" | "dp" => config.define_common = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// One `-z` keyword.
    fn z_option(&mut self, keyword: &str) -> anyhow::Result<()> {
        let config = &mut self.config;
        let z = &mut config.z;
        if let Some((key, value)) = keyword.split_once('=') {
            let number = || {
                parse_number(value)
                    .ok_or_else(|| anyhow::anyhow!("invalid value for -z {key}: {value}"))
            };
            match key {
                // weld lays out segments on 4 KiB pages (GNU ld's x86-64 default for both).
                "max-page-size" | "common-page-size" => {
                    if number()? != 0x1000 {
                        return Err(unsupported(
                            &format!("-z {keyword}"),
                            "segments are aligned to 4096-byte pages only",
                        ));
                    }
                }
                "stack-size" => z.stack_size = Some(number()?),
                "cet-report" => {
                    z.cet_report = match value {
                        "none" => None,
                        "warning" => Some(CetReport::Warning),
                        "error" => Some(CetReport::Error),
                        _ => anyhow::bail!(
                            "invalid -z cet-report value: {value} (none, warning or error)"
                        ),
                    }
                }
                _ if PROPERTY_Z_KEYWORDS_WITH_VALUE.contains(&key) => crate::diag::warn(
                    format_args!("-z {keyword} ignored: weld does not implement it"),
                ),
                _ => crate::diag::warn(format_args!("unknown -z value: {keyword}")),
            }
            return Ok(());
        }
        match keyword {
            "relro" => z.relro = true,
            "norelro" => z.relro = false,
            "now" => z.now = true,
            "lazy" => z.now = false,
            "execstack" => z.execstack = Some(true),
            "noexecstack" => z.execstack = Some(false),
            "text" => {
                z.text = true;
                z.text_given = true;
            }
            "notext" | "textoff" => {
                z.text = false;
                z.text_given = false;
            }
            "origin" => z.origin = true,
            "nodelete" => z.nodelete = true,
            "nodlopen" => z.nodlopen = true,
            "initfirst" => z.initfirst = true,
            "interpose" => z.interpose = true,
            "defs" => {
                z.defs = true;
                config.no_undefined = true;
            }
            "undefs" => {
                z.defs = false;
                config.no_undefined = false;
            }
            // weld always puts code in pages of its own (R, RX, RW segments): what GNU ld's
            // default `-z separate-code` asks; `noseparate-code` (sharing pages to save
            // space) is not done.
            "separate-code" | "noseparate-code" => {}
            "start-stop-gc" => z.start_stop_gc = true,
            "nostart-stop-gc" => z.start_stop_gc = false,
            "pack-relative-relocs" => z.pack_relative_relocs = true,
            "nopack-relative-relocs" => z.pack_relative_relocs = false,
            "muldefs" => config.allow_multiple_definition = true,
            "globalaudit" => z.extra_flags_1 |= object::elf::DF_1_GLOBAUDIT,
            "ibt" => z.properties.features |= crate::property::FEATURE_1_IBT,
            "shstk" => z.properties.features |= crate::property::FEATURE_1_SHSTK,
            "ibtplt" => z.ibtplt = true,
            "dynamic-undefined-weak" => z.dynamic_undefined_weak = true,
            "nodynamic-undefined-weak" => z.dynamic_undefined_weak = false,
            "x86-64-baseline" => z.properties.isa_needed |= 1,
            "x86-64-v2" => z.properties.isa_needed |= 2,
            "x86-64-v3" => z.properties.isa_needed |= 4,
            "x86-64-v4" => z.properties.isa_needed |= 8,
            "global" => z.extra_flags_1 |= object::elf::DF_1_GLOBAL,
            "loadfltr" => z.extra_flags_1 |= object::elf::DF_1_LOADFLTR,
            "nodefaultlib" => z.extra_flags_1 |= object::elf::DF_1_NODEFLIB,
            "nodump" => z.extra_flags_1 |= object::elf::DF_1_NODUMP,
            "nocopyreloc" => {
                return Err(unsupported(
                    "-z nocopyreloc",
                    "copy relocations are made where a program refers to a library's data",
                ))
            }
            "rodynamic" => {
                return Err(unsupported(
                    "-z rodynamic",
                    ".dynamic is writable (the loader stores DT_DEBUG there)",
                ))
            }
            "nosectionheader" => {
                return Err(unsupported(
                    "-z nosectionheader",
                    "section headers are always written",
                ))
            }
            _ if NO_OP_Z_KEYWORDS.contains(&keyword) => {}
            _ if PROPERTY_Z_KEYWORDS.contains(&keyword) => crate::diag::warn(format_args!(
                "-z {keyword} ignored: weld does not implement it"
            )),
            _ => crate::diag::warn(format_args!("unknown -z value: {keyword}")),
        }
        Ok(())
    }
}

/// The error for an option GNU ld has and weld does not implement: it is refused rather
/// than accepted and ignored, saying what weld does instead.
fn unsupported(option: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!("option {option} is not supported: {why}")
}

/// Replaces a leading `=` or `$SYSROOT` in a `-L` directory by the sysroot (or by nothing
/// when there is none).
fn apply_sysroot(dir: &str, sysroot: Option<&std::path::Path>) -> PathBuf {
    match dir
        .strip_prefix('=')
        .or_else(|| dir.strip_prefix("$SYSROOT"))
    {
        Some(rest) => prefix_sysroot(sysroot, rest),
        None => PathBuf::from(dir),
    }
}

/// `sysroot` + `path` by string concatenation, as GNU ld does (`/sr` + `/usr/lib` is
/// `/sr/usr/lib`), without doubling the slash when the sysroot ends in one.
pub(crate) fn prefix_sysroot(sysroot: Option<&std::path::Path>, path: &str) -> PathBuf {
    let Some(root) = sysroot.and_then(|root| root.to_str()) else {
        return match sysroot {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        };
    };
    let root = if path.starts_with('/') {
        root.trim_end_matches('/')
    } else {
        root
    };
    PathBuf::from(format!("{root}{path}"))
}

/// Spare room per slot, in percent of its contents (plus 256 bytes in code, 64 elsewhere), unless
/// `--incremental-spare` says otherwise.
pub const DEFAULT_INCREMENTAL_SPARE: u64 = 25;

/// `--defsym` expressions weld understands: `NUMBER`, `SYMBOL`, `SYMBOL+NUMBER`,
/// `SYMBOL-NUMBER` (numbers decimal or 0x hex). Returns (symbol, offset).
pub fn parse_defsym(expr: &str) -> Option<(Option<String>, i64)> {
    let number = |t: &str| -> Option<i64> {
        let t = t.trim();
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => t.parse().ok(),
        }
    };
    let expr = expr.trim();
    if let Some(n) = number(expr) {
        return Some((None, n));
    }
    let (sym, offset) = match expr.find(['+', '-']) {
        Some(at) => {
            let n = number(&expr[at + 1..])?;
            (&expr[..at], if &expr[at..at + 1] == "-" { -n } else { n })
        }
        None => (expr, 0),
    };
    let sym = sym.trim();
    let valid = !sym.is_empty()
        && sym
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$');
    valid.then(|| (Some(sym.to_string()), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    fn parse_ok(list: &[&str]) -> Config {
        match parse(&args(list)) {
            Ok(config) => config,
            Err(e) => panic!("{list:?}: {e}"),
        }
    }

    fn parse_err(list: &[&str]) -> String {
        match parse(&args(list)) {
            Ok(_) => panic!("{list:?} should fail"),
            Err(e) => e.to_string(),
        }
    }

    /// A fresh directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weld-args-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn files(config: &Config) -> Vec<(String, Modifiers)> {
        config
            .inputs
            .iter()
            .filter_map(|input| match input {
                InputArg::File { path, modifiers } => {
                    Some((path.display().to_string(), *modifiers))
                }
                InputArg::Library { name, modifiers } => Some((format!("-l{name}"), *modifiers)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let config = parse_ok(&[]);
        assert_eq!(config.output, PathBuf::from("a.out"));
        assert!(config.new_dtags);
        assert!(config.demangle);
        assert_eq!(config.hash_style, HashStyle::Both);
        assert!(config.z.text);
        assert!(!config.pie && !config.shared && !config.static_requested);
    }

    #[test]
    fn one_or_two_dashes() {
        for dashes in ["-", "--"] {
            let config = parse_ok(&[
                &format!("{dashes}soname"),
                "libx.so.1",
                &format!("{dashes}no-relax"),
                &format!("{dashes}pie"),
                &format!("{dashes}export-dynamic"),
                &format!("{dashes}shared"),
                &format!("{dashes}gc-sections"),
                &format!("{dashes}rpath=/opt/lib"),
            ]);
            assert_eq!(config.soname.as_deref(), Some("libx.so.1"));
            assert!(config.no_relax && config.pie && config.export_dynamic && config.shared);
            assert!(config.gc_sections);
            assert_eq!(config.rpath, vec!["/opt/lib".to_string()]);
        }
    }

    #[test]
    fn output_forms() {
        for list in [
            &["-ofoo"][..],
            &["-o", "foo"],
            &["--output=foo"],
            &["--output", "foo"],
        ] {
            assert_eq!(parse_ok(list).output, PathBuf::from("foo"), "{list:?}");
        }
        // GNU: multi-letter options starting with 'o' need two dashes.
        let config = parse_ok(&["-omagic"]);
        assert_eq!(config.output, PathBuf::from("magic"));
        assert!(parse_err(&["--omagic"]).contains("not supported"));
        assert_eq!(parse_ok(&["-output"]).output, PathBuf::from("utput"));
        assert_eq!(parse_err(&["-o"]), "option -o requires an argument");
        assert_eq!(
            parse_err(&["--output"]),
            "option --output requires an argument"
        );
    }

    #[test]
    fn static_is_not_dash_s() {
        let config = parse_ok(&["-static", "a.o"]);
        assert!(config.static_requested);
        assert!(!config.strip_all);
        assert!(files(&config)[0].1.link_static);

        let config = parse_ok(&["-s", "a.o"]);
        assert!(config.strip_all);
        assert!(!config.static_requested);

        let config = parse_ok(&["-static-pie"]);
        assert!(config.pie && config.static_requested && config.no_dynamic_linker);
        assert_eq!(parse_err(&["-sx"]), "unknown option: -sx");
    }

    #[test]
    fn short_options_with_attached_or_separate_values() {
        let config = parse_ok(&[
            "-L/a",
            "-L",
            "/b",
            "--library-path=/c",
            "-lfoo",
            "-l",
            "bar",
            "--library=baz",
            "-l:libq.a",
            "-emain",
            "-u",
            "sym",
            "--undefined=sym2",
            "-hlibz.so",
            "-R",
            "/r",
            "-I/lib/ld.so",
            "-zrelro",
            "-z",
            "now",
            "-O2",
            "-y",
            "traced",
            "-Tlink.ld",
            "-melf_x86_64",
        ]);
        assert_eq!(
            config.library_paths,
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
        let names: Vec<String> = files(&config).into_iter().map(|(name, _)| name).collect();
        // A -T script is read where it stands, as an input script.
        assert_eq!(
            names,
            vec!["-lfoo", "-lbar", "-lbaz", "-l:libq.a", "link.ld"]
        );
        assert_eq!(config.entry.as_deref(), Some("main"));
        assert_eq!(config.undefined, vec!["sym", "sym2"]);
        assert_eq!(config.soname.as_deref(), Some("libz.so"));
        assert_eq!(config.rpath, vec!["/r"]);
        assert_eq!(config.dynamic_linker.as_deref(), Some("/lib/ld.so"));
        assert!(config.z.relro && config.z.now);
        assert_eq!(config.trace_symbols, vec!["traced"]);
        assert_eq!(config.linker_scripts, vec![PathBuf::from("link.ld")]);
    }

    #[test]
    fn unknown_option_and_bad_values() {
        assert_eq!(parse_err(&["--frobnicate"]), "unknown option: --frobnicate");
        assert_eq!(parse_err(&["-jrobnicate"]), "unknown option: -jrobnicate");
        // As GNU ld: -f takes the rest as its value (a shared library's auxiliary filter).
        assert_eq!(
            parse_err(&["-frobnicate"]),
            "-f may not be used without -shared"
        );
        assert_eq!(
            parse_err(&["--gc-sections=yes"]),
            "option --gc-sections does not take an argument"
        );
        assert_eq!(
            parse_err(&["-m", "elf_i386"]),
            "unsupported emulation: elf_i386"
        );
        assert_eq!(
            parse_err(&["--hash-style=md5"]),
            "invalid value for --hash-style: md5"
        );
        assert_eq!(
            parse_err(&["--pop-state"]),
            "--pop-state without --push-state"
        );
        assert!(parse_err(&["--defsym=nosign"]).contains("--defsym"));
        assert!(parse_err(&["-z", "max-page-size=big"]).contains("max-page-size"));
    }

    #[test]
    fn push_and_pop_state() {
        let config = parse_ok(&[
            "a.o",
            "--as-needed",
            "--push-state",
            "--no-as-needed",
            "-Bstatic",
            "--whole-archive",
            "b.a",
            "--pop-state",
            "c.so",
            "-Bstatic",
            "d.a",
            "-Bdynamic",
            "e.so",
        ]);
        let got: Vec<_> = files(&config)
            .into_iter()
            .map(|(_, m)| (m.as_needed, m.link_static, m.whole_archive))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, false, false),
                (false, true, true),
                (true, false, false),
                (true, true, false),
                (true, false, false),
            ]
        );
        assert!(config.static_requested);
    }

    #[test]
    fn z_keywords() {
        let config = parse_ok(&[
            "-z",
            "relro",
            "-z",
            "now",
            "-z",
            "noexecstack",
            "-z",
            "notext",
            "-z",
            "max-page-size=0x1000",
            "-z",
            "common-page-size=4096",
            "-z",
            "stack-size=1048576",
            "-z",
            "noseparate-code",
            "-z",
            "start-stop-gc",
            "-z",
            "pack-relative-relocs",
            "-z",
            "ibt",
            "-z",
            "shstk",
            "-z",
            "cet-report=error",
            "-z",
            "muldefs",
            "-z",
            "defs",
            "-z",
            "no-such-keyword",
        ]);
        let z = &config.z;
        assert!(z.relro && z.now && z.execstack == Some(false) && !z.text);
        assert_eq!(z.stack_size, Some(1 << 20));
        assert!(z.start_stop_gc && z.defs);
        assert!(parse_err(&["-z", "max-page-size=0x200000"]).contains("4096-byte pages"));
        assert!(config.allow_multiple_definition && config.no_undefined);

        let config = parse_ok(&["-z", "relro", "-z", "norelro", "-z", "now", "-z", "lazy"]);
        assert!(!config.z.relro && !config.z.now);
    }

    #[test]
    fn groups_and_inputs_in_order() {
        let config = parse_ok(&["x.o", "--start-group", "-lc", "-(", "-)", "--end-group"]);
        assert!(matches!(config.inputs[0], InputArg::File { .. }));
        assert_eq!(config.inputs[1], InputArg::GroupStart);
        assert!(matches!(config.inputs[2], InputArg::Library { .. }));
        assert_eq!(config.inputs[3], InputArg::GroupStart);
        assert_eq!(config.inputs[4], InputArg::GroupEnd);
        assert_eq!(config.inputs[5], InputArg::GroupEnd);
        // After `--`, everything is a file.
        let config = parse_ok(&["--", "-weird.o"]);
        assert_eq!(files(&config)[0].0, "-weird.o");
    }

    #[test]
    fn build_id_forms() {
        let sha1 = Some(BuildIdArg::Hash(BuildId::Sha1));
        assert_eq!(parse_ok(&["--build-id"]).build_id, sha1);
        assert_eq!(parse_ok(&["--build-id=sha1"]).build_id, sha1);
        assert_eq!(parse_ok(&["--build-id=tree"]).build_id, sha1);
        assert_eq!(
            parse_ok(&["--build-id=md5"]).build_id,
            Some(BuildIdArg::Hash(BuildId::Md5))
        );
        assert_eq!(
            parse_ok(&["--build-id=uuid"]).build_id,
            Some(BuildIdArg::Hash(BuildId::Uuid))
        );
        assert_eq!(parse_ok(&["--build-id", "--build-id=none"]).build_id, None);
        assert_eq!(
            parse_ok(&["--build-id=0xdeadBEEF"]).build_id,
            Some(BuildIdArg::Hex(vec![0xde, 0xad, 0xbe, 0xef]))
        );
        assert!(parse_err(&["--build-id=0xzz"]).contains("--build-id"));
    }

    #[test]
    fn misc_values() {
        let config = parse_ok(&[
            "--defsym=foo=bar+1",
            "--defsym",
            "a=0x10",
            "--wrap=malloc",
            "--version-script",
            "v.map",
            "--dynamic-list=d.list",
            "--threads=4",
            "--exclude-libs=liba.a,libb.a:libc.a",
            "--image-base=0x400000",
            "--unresolved-symbols=ignore-in-shared-libs",
            "-plugin",
            "/p.so",
            "-plugin-opt=-pass-through=-lgcc",
            "-plugin-opt",
            "O2",
            "--hash-style=gnu",
            "--no-demangle",
            "--sysroot=/sr",
            "-L=/usr/lib",
            "-L$SYSROOT/lib",
            "-dynamic-linker",
            "/lib64/ld-linux-x86-64.so.2",
            "--error-limit=5",
            "-Ttext-segment=4096",
        ]);
        assert_eq!(
            config.defsym,
            vec![
                ("foo".to_string(), "bar+1".to_string()),
                ("a".to_string(), "0x10".to_string())
            ]
        );
        assert_eq!(config.wrap, vec!["malloc"]);
        assert_eq!(config.version_scripts, vec![PathBuf::from("v.map")]);
        assert_eq!(config.dynamic_lists, vec![PathBuf::from("d.list")]);
        assert_eq!(config.threads, Some(4));
        assert_eq!(config.exclude_libs, vec!["liba.a", "libb.a", "libc.a"]);
        assert_eq!(config.image_base, Some(4096));
        assert_eq!(
            config.unresolved_symbols,
            UnresolvedSymbols::IgnoreInSharedLibs
        );
        assert_eq!(
            parse_ok(&["-Map=out.map"]).map_file,
            Some(PathBuf::from("out.map"))
        );
        assert!(parse_err(&["-N"]).contains("not supported"));
        assert!(parse_ok(&["-q"]).emit_relocs && parse_ok(&["--emit-relocs"]).emit_relocs);
        assert!(parse_ok(&["--cref"]).cref);
        assert_eq!(parse_ok(&["--icf=all"]).icf, Icf::All);
        assert_eq!(parse_ok(&["--icf=safe", "--icf=none"]).icf, Icf::None);
        assert_eq!(parse_ok(&["-x"]).discard, Discard::All);
        assert_eq!(parse_ok(&["-X"]).discard, Discard::Temporaries);
        assert_eq!(parse_ok(&[]).discard, Discard::MergedTemporaries);
        assert_eq!(config.plugins, vec!["/p.so"]);
        assert_eq!(config.plugin_opts, vec!["-pass-through=-lgcc", "O2"]);
        assert_eq!(config.hash_style, HashStyle::Gnu);
        assert!(!config.demangle);
        assert_eq!(
            config.library_paths,
            vec![PathBuf::from("/sr/usr/lib"), PathBuf::from("/sr/lib")]
        );
        assert_eq!(
            config.dynamic_linker.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(config.error_limit, 5);
        // `--threads N` takes N only if it is a number.
        let config = parse_ok(&["--threads", "2", "--threads", "x.o"]);
        assert_eq!(config.threads, Some(2));
        assert_eq!(files(&config).len(), 1);
        let config = parse_ok(&["--version"]);
        assert!(config.print_version && config.version_only);
        let config = parse_ok(&["-v"]);
        assert!(config.print_version && !config.version_only);
    }

    #[test]
    fn response_files_with_quotes() {
        let dir = temp_dir("response");
        let inner = dir.join("inner.rsp");
        std::fs::write(&inner, "-lm\n").expect("write");
        let outer = dir.join("outer.rsp");
        std::fs::write(
            &outer,
            format!(
                "-o 'my out' \"a b.o\" c\\ d.o\n  --as-needed '' @{}\n",
                inner.display()
            ),
        )
        .expect("write");
        let config = parse_ok(&[&format!("@{}", outer.display()), "z.o"]);
        assert_eq!(config.output, PathBuf::from("my out"));
        let names: Vec<String> = files(&config).into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, vec!["a b.o", "c d.o", "", "-lm", "z.o"]);

        let missing = dir.join("missing.rsp");
        let err = parse_err(&[&format!("@{}", missing.display())]);
        assert_eq!(
            err,
            format!(
                "cannot read response file {}: No such file or directory",
                missing.display()
            )
        );

        let looping = dir.join("loop.rsp");
        std::fs::write(&looping, format!("@{}", looping.display())).expect("write");
        assert!(parse_err(&[&format!("@{}", looping.display())]).contains("nested too deeply"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn split_response_file_rules() {
        assert_eq!(
            split_response_file(" a\t'b c' \"d\\\"e\" f\\ g 'h'i \n"),
            vec!["a", "b c", "d\"e", "f g", "hi"]
        );
        assert!(split_response_file("  \n ").is_empty());
    }

    #[test]
    fn sysroot_prefixes() {
        let root = std::path::Path::new("/");
        assert_eq!(
            prefix_sysroot(Some(root), "/usr/lib"),
            PathBuf::from("/usr/lib")
        );
        let root = std::path::Path::new("/sr/");
        assert_eq!(prefix_sysroot(Some(root), "/lib"), PathBuf::from("/sr/lib"));
        assert_eq!(prefix_sysroot(None, "/lib"), PathBuf::from("/lib"));
        let config = parse_ok(&["-L=/x", "-L/y"]);
        assert_eq!(
            config.library_paths,
            vec![PathBuf::from("/x"), PathBuf::from("/y")]
        );
    }

    #[test]
    fn gcc_static_command_line() {
        let line = "-plugin /usr/lib/gcc/x86_64-linux-gnu/12/liblto_plugin.so \
            -plugin-opt=/usr/lib/gcc/x86_64-linux-gnu/12/lto-wrapper \
            -plugin-opt=-fresolution=/tmp/ccDOpxRi.res -plugin-opt=-pass-through=-lgcc \
            -plugin-opt=-pass-through=-lgcc_eh -plugin-opt=-pass-through=-lc --build-id \
            -m elf_x86_64 --hash-style=gnu --as-needed -static -o h crt1.o crti.o crtbeginT.o \
            -L/usr/lib/gcc/x86_64-linux-gnu/12 x.o --start-group -lgcc -lgcc_eh -lc \
            --end-group crtend.o crtn.o";
        let list: Vec<&str> = line.split_whitespace().collect();
        let config = parse_ok(&list);
        assert_eq!(config.output, PathBuf::from("h"));
        assert_eq!(config.plugin_opts.len(), 5);
        assert_eq!(config.hash_style, HashStyle::Gnu);
        assert!(config.static_requested);
        assert_eq!(config.build_id, Some(BuildIdArg::Hash(BuildId::Sha1)));
        let all = files(&config);
        assert_eq!(all.len(), 9);
        assert!(all.iter().all(|(_, m)| m.as_needed && m.link_static));
    }
}
