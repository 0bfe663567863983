//! Finding input files: `-l` search, linker-script inputs (`GROUP`, `INPUT`, `AS_NEEDED`,
//! `OUTPUT_FORMAT`, `SEARCH_DIR`), and the flattening of groups.
//!
//! This module decides *which files* are inputs and in what order; it does not parse ELF.
//! It only looks at a file's first bytes to tell objects and archives (passed through) from
//! linker scripts (read with [`crate::script`] and expanded in place; what a script says
//! about the output's shape is collected for the layout).

use crate::args::{prefix_sysroot, Config, InputArg, Modifiers};
use crate::input::KnownInputs;
use crate::script::{self, Entry, InputCommand as Command, Script, ScriptInput};
use rayon::prelude::*;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One input file after `-l` search and linker-script expansion, in link order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    pub modifiers: Modifiers,
    /// Files inside one `--start-group`/`--end-group` or `GROUP(...)` share the group number
    /// (groups do not nest in ld; a script GROUP inside a command-line group joins it).
    pub group: Option<u32>,
    /// How the file was named, for messages: "-lc", "libc.so (GROUP in /usr/lib/.../libc.so)".
    pub origin: String,
    /// The file's identity when the search opened it (the incremental state compares it
    /// with the recorded one).
    pub identity: crate::input::FileIdentity,
}

/// Resolves the command line's inputs to files, in link order; with what the scripts read
/// on the way say about the output (`None` if nothing).
pub fn find_inputs(config: &Config) -> anyhow::Result<(Vec<FileSpec>, Option<Script>)> {
    find_inputs_and_scripts(config, None).map(|(files, layout, _)| (files, layout))
}

/// [`find_inputs`], and the linker scripts read on the way (for `--reproduce`).
///
/// `known`: the inputs of the recorded link (incremental mode); one of them whose identity
/// is as recorded is taken without being opened.
pub fn find_inputs_and_scripts(
    config: &Config,
    known: Option<&KnownInputs>,
) -> anyhow::Result<(Vec<FileSpec>, Option<Script>, Vec<PathBuf>)> {
    let mut search = Search {
        known,
        layout: None,
        dirs: config.library_paths.clone(),
        default_dirs: default_search_dirs(config),
        sysroot: config.sysroot.clone(),
        next_group: 0,
        files: Vec::new(),
        scripts: Vec::new(),
    };
    // The files named on the command line are opened and classified on all threads (a Rust
    // link names hundreds); what each turned out to be is taken in order below, so that
    // the first error in command-line order is the one reported.
    let mut classified: Vec<Option<anyhow::Result<Kind>>> = config
        .inputs
        .par_iter()
        .map(|input| match input {
            InputArg::File { path, .. } => Some(classify(path, known)),
            _ => None,
        })
        .collect();
    let mut group = None;
    for (input, classified) in config.inputs.iter().zip(&mut classified) {
        match input {
            InputArg::GroupStart => {
                if group.is_some() {
                    anyhow::bail!("--start-group inside another group (groups do not nest)");
                }
                group = Some(search.new_group());
            }
            InputArg::GroupEnd => {
                if group.take().is_none() {
                    anyhow::bail!("--end-group without --start-group");
                }
            }
            InputArg::File { path, modifiers } => {
                let origin = path.display().to_string();
                let kind = classified.take().unwrap_or_else(|| classify(path, known))?;
                search.add_classified(path.clone(), kind, *modifiers, group, origin, 0)?;
            }
            InputArg::Library { name, modifiers } => {
                let path = search.find_library(name, modifiers.link_static)?;
                search.add(path, *modifiers, group, format!("-l{name}"), 0)?;
            }
        }
    }
    if group.is_some() {
        anyhow::bail!("--start-group without --end-group");
    }
    Ok((search.files, search.layout, search.scripts))
}

/// Scripts naming scripts deeper than this are taken to be a loop.
const MAX_SCRIPT_DEPTH: usize = 16;

/// Files bigger than this are not read as linker scripts.
const MAX_SCRIPT_SIZE: u64 = 1 << 20;

enum Kind {
    /// ELF object, shared object or archive: linked as is. Its identity.
    Binary(crate::input::FileIdentity),
    /// A text file, to be read as a linker script; its contents.
    Script(String),
    Unknown,
}

/// The directories GNU ld searches after the `-L` ones, from its built-in linker script
/// (`ld --verbose | grep SEARCH_DIR` on Debian's binutils 2.40, x86-64; Fedora's lib64
/// directories are among them), each under the sysroot. `-nostdlib` drops them.
pub const DEFAULT_SEARCH_DIRS: [&str; 12] = [
    "/usr/local/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu64",
    "/usr/local/lib64",
    "/lib64",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib",
    "/usr/lib",
    "/usr/x86_64-linux-gnu/lib64",
    "/usr/x86_64-linux-gnu/lib",
];

/// The built-in search directories of this link (see [`DEFAULT_SEARCH_DIRS`]).
pub fn default_search_dirs(config: &Config) -> Vec<PathBuf> {
    if config.nostdlib {
        return Vec::new();
    }
    DEFAULT_SEARCH_DIRS
        .iter()
        .map(|dir| crate::args::prefix_sysroot(config.sysroot.as_deref(), dir))
        .collect()
}

/// The objects and libraries an LTO plugin added (see `lto`), found as the command line's
/// would be, with `dirs` searched first. Shared objects the link already has are left out
/// (archives are searched again: the plugin adds them for what its code needs).
pub fn find_plugin_outputs(
    config: &Config,
    existing: &[FileSpec],
    files: &[PathBuf],
    libraries: &[String],
    dirs: &[PathBuf],
) -> anyhow::Result<Vec<FileSpec>> {
    let mut search = Search {
        known: None,
        layout: None,
        dirs: dirs.iter().chain(&config.library_paths).cloned().collect(),
        default_dirs: default_search_dirs(config),
        sysroot: config.sysroot.clone(),
        next_group: 0,
        files: Vec::new(),
        scripts: Vec::new(),
    };
    // The modifiers in force at the end of the command line (-static, --as-needed...).
    let modifiers = config
        .inputs
        .iter()
        .rev()
        .find_map(|input| match input {
            InputArg::File { modifiers, .. } | InputArg::Library { modifiers, .. } => {
                Some(*modifiers)
            }
            _ => None,
        })
        .unwrap_or_default();
    for file in files {
        let origin = format!("{} (from the LTO plugin)", file.display());
        search.add(file.clone(), modifiers, None, origin, 0)?;
    }
    for name in libraries {
        let path = search.find_library(name, modifiers.link_static)?;
        search.add(
            path,
            modifiers,
            None,
            format!("-l{name} (from the LTO plugin)"),
            0,
        )?;
    }
    let known: std::collections::HashSet<&Path> =
        existing.iter().map(|s| s.path.as_path()).collect();
    search.files.retain(|f| {
        !known.contains(f.path.as_path())
            || std::fs::File::open(&f.path)
                .and_then(|mut file| {
                    let mut magic = [0u8; 8];
                    file.read_exact(&mut magic).map(|_| magic == *b"!<arch>\n")
                })
                .unwrap_or(false)
    });
    Ok(search.files)
}

struct Search<'a> {
    /// The recorded link's inputs (see [`find_inputs_and_scripts`]).
    known: Option<&'a KnownInputs>,
    /// `-L` directories, then any `SEARCH_DIR`s scripts add.
    dirs: Vec<PathBuf>,
    /// Searched after `dirs`.
    default_dirs: Vec<PathBuf>,
    sysroot: Option<PathBuf>,
    next_group: u32,
    files: Vec<FileSpec>,
    /// The output commands of the scripts read so far.
    layout: Option<Script>,
    /// The scripts read so far.
    scripts: Vec<PathBuf>,
}

impl Search<'_> {
    fn new_group(&mut self) -> u32 {
        let group = self.next_group;
        self.next_group += 1;
        group
    }

    /// `-lNAME` / `-l:FILE`: the first search directory that has a match wins; `libNAME.so`
    /// is preferred over `libNAME.a` in the same directory unless linking statically.
    fn find_library(&self, name: &str, link_static: bool) -> anyhow::Result<PathBuf> {
        let candidates = match name.strip_prefix(':') {
            Some(file) => vec![file.to_string()],
            None if link_static => vec![format!("lib{name}.a")],
            None => vec![format!("lib{name}.so"), format!("lib{name}.a")],
        };
        self.dirs
            .iter()
            .chain(&self.default_dirs)
            .flat_map(|dir| candidates.iter().map(move |file| dir.join(file)))
            .find(|path| path.is_file())
            .ok_or_else(|| anyhow::anyhow!("cannot find -l{name}: No such file or directory"))
    }

    /// Adds one file, expanding it in place if it is a linker script.
    fn add(
        &mut self,
        path: PathBuf,
        modifiers: Modifiers,
        group: Option<u32>,
        origin: String,
        depth: usize,
    ) -> anyhow::Result<()> {
        let kind = classify(&path, self.known)?;
        self.add_classified(path, kind, modifiers, group, origin, depth)
    }

    /// [`Search::add`], for a file already classified.
    fn add_classified(
        &mut self,
        path: PathBuf,
        kind: Kind,
        modifiers: Modifiers,
        group: Option<u32>,
        origin: String,
        depth: usize,
    ) -> anyhow::Result<()> {
        match kind {
            Kind::Binary(identity) => {
                self.files.push(FileSpec {
                    path,
                    modifiers,
                    group,
                    origin,
                    identity,
                });
                Ok(())
            }
            Kind::Script(text) => self.add_script(&path, &text, modifiers, group, depth),
            Kind::Unknown => anyhow::bail!("{}: unknown file type", path.display()),
        }
    }

    fn add_script(
        &mut self,
        path: &Path,
        text: &str,
        modifiers: Modifiers,
        group: Option<u32>,
        depth: usize,
    ) -> anyhow::Result<()> {
        if depth >= MAX_SCRIPT_DEPTH {
            anyhow::bail!(
                "{}: linker scripts nested too deeply (does a script include itself?)",
                path.display()
            );
        }
        self.scripts.push(path.to_path_buf());
        // INCLUDE: as written (relative to the current directory), then in the -L
        // directories, as GNU ld searches.
        let dirs = self.dirs.clone();
        let included = std::cell::RefCell::new(Vec::new());
        let include = |name: &str| -> Result<(String, String), String> {
            let written = PathBuf::from(name);
            let found = std::iter::once(written.clone())
                .chain(dirs.iter().map(|d| d.join(&written)))
                .find(|p| p.is_file())
                .ok_or_else(|| "cannot find the file".to_string())?;
            if found.metadata().is_ok_and(|m| m.len() > MAX_SCRIPT_SIZE) {
                return Err(format!(
                    "{} is too large for a linker script",
                    found.display()
                ));
            }
            let text = std::fs::read_to_string(&found)
                .map_err(|e| format!("cannot read {}: {e}", found.display()))?;
            included.borrow_mut().push(found.clone());
            Ok((text, found.display().to_string()))
        };
        let mut parsed = script::parse_with(text, &path.display().to_string(), Some(&include))
            .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        self.scripts.extend(included.take());
        let commands = std::mem::take(&mut parsed.inputs);
        if parsed.shapes_output() {
            match &mut self.layout {
                Some(layout) => layout.append(parsed).map_err(anyhow::Error::msg)?,
                None => self.layout = Some(parsed),
            }
        }
        for command in commands {
            match command {
                Command::SearchDir(dir) => {
                    let dir = self.script_path(path, &dir);
                    self.dirs.push(dir);
                }
                Command::Input(inputs) => {
                    self.add_script_inputs(path, "INPUT", inputs, modifiers, group, depth)?;
                }
                Command::Group(inputs) => {
                    let group = Some(group.unwrap_or_else(|| self.new_group()));
                    self.add_script_inputs(path, "GROUP", inputs, modifiers, group, depth)?;
                }
            }
        }
        Ok(())
    }

    fn add_script_inputs(
        &mut self,
        script: &Path,
        command: &str,
        inputs: Vec<ScriptInput>,
        modifiers: Modifiers,
        group: Option<u32>,
        depth: usize,
    ) -> anyhow::Result<()> {
        for input in inputs {
            let modifiers = Modifiers {
                as_needed: modifiers.as_needed || input.as_needed,
                ..modifiers
            };
            let (path, written) = match input.entry {
                Entry::Library(name) => {
                    let path = self.find_library(&name, modifiers.link_static)?;
                    (path, format!("-l{name}"))
                }
                Entry::File(file) => (self.find_script_file(script, &file)?, file),
            };
            let origin = format!("{written} ({command} in {})", script.display());
            self.add(path, modifiers, group, origin, depth + 1)?;
        }
        Ok(())
    }

    /// A path written in a script, as GNU ld reads it: an absolute path in a script inside
    /// the sysroot is taken inside the sysroot; a leading `=` means the sysroot.
    fn script_path(&self, script: &Path, written: &str) -> PathBuf {
        if let Some(rest) = written.strip_prefix('=') {
            return prefix_sysroot(self.sysroot.as_deref(), rest);
        }
        match &self.sysroot {
            Some(sysroot) if written.starts_with('/') && is_inside(script, sysroot) => {
                prefix_sysroot(Some(sysroot.as_path()), written)
            }
            _ => PathBuf::from(written),
        }
    }

    /// Finds a file a script's `GROUP`/`INPUT` names: as written, then next to the script,
    /// then in the search directories.
    fn find_script_file(&self, script: &Path, written: &str) -> anyhow::Result<PathBuf> {
        let path = self.script_path(script, written);
        let mut candidates = vec![path.clone()];
        if path.is_relative() {
            if let Some(dir) = script.parent() {
                candidates.push(dir.join(&path));
            }
        }
        let name = if path.is_absolute() {
            path.file_name().map(PathBuf::from)
        } else {
            Some(path)
        };
        if let Some(name) = name {
            candidates.extend(
                self.dirs
                    .iter()
                    .chain(&self.default_dirs)
                    .map(|dir| dir.join(&name)),
            );
        }
        candidates
            .into_iter()
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: cannot find {written}: No such file or directory",
                    script.display()
                )
            })
    }
}

/// Whether `path` is inside `dir` (comparing canonical paths when they exist).
fn is_inside(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(path), Ok(dir)) => path.starts_with(dir),
        _ => path.starts_with(dir),
    }
}

/// Looks at a file's first bytes (and, for text, checks it could be a script); a file
/// `known` has as it was is a binary.
fn classify(path: &Path, known: Option<&KnownInputs>) -> anyhow::Result<Kind> {
    if let Some(identity) = known.and_then(|k| k.binary(path)) {
        return Ok(Kind::Binary(identity));
    }
    let cannot_open = |e: std::io::Error| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("cannot open {}: {reason}", path.display())
    };
    // One path lookup: open, then ask the open file.
    let file = File::open(path).map_err(cannot_open)?;
    let metadata = file.metadata().map_err(cannot_open)?;
    if metadata.is_dir() {
        anyhow::bail!("cannot open {}: Is a directory", path.display());
    }
    let mut magic = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut magic).map_err(cannot_open)?;
    // (LLVM bitcode, `clang -flto`'s objects, goes to the LTO plugin.)
    if magic.starts_with(b"\x7fELF")
        || magic == b"!<arch>\n"
        || magic == b"!<thin>\n"
        || crate::input::is_bitcode(&magic)
    {
        return Ok(Kind::Binary(crate::input::FileIdentity::of(&metadata)));
    }
    if metadata.len() > MAX_SCRIPT_SIZE {
        return Ok(Kind::Unknown);
    }
    let contents = std::fs::read(path).map_err(cannot_open)?;
    Ok(match String::from_utf8(contents) {
        Ok(text) if looks_like_text(&text) => Kind::Script(text),
        _ => Kind::Unknown,
    })
}

/// No control characters other than whitespace.
fn looks_like_text(text: &str) -> bool {
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir() -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weld-search-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn write(path: &Path, contents: &[u8]) -> PathBuf {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, contents).expect("write file");
        path.to_path_buf()
    }

    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    const ARCHIVE: &[u8] = b"!<arch>\n";

    fn find(list: &[String]) -> anyhow::Result<Vec<FileSpec>> {
        Ok(find_inputs(&args::parse(list)?)?.0)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn paths(files: &[FileSpec]) -> Vec<PathBuf> {
        files.iter().map(|f| f.path.clone()).collect()
    }

    #[test]
    fn so_preferred_unless_static_and_first_directory_wins() {
        let dir = temp_dir();
        let (one, two) = (dir.join("one"), dir.join("two"));
        let a_in_one = write(&one.join("libx.a"), ARCHIVE);
        let so_in_two = write(&two.join("libx.so"), ELF);
        let a_in_two = write(&two.join("liby.a"), ARCHIVE);
        let so_y_in_two = write(&two.join("liby.so"), ELF);
        let so_z_in_one = write(&one.join("libz.so"), ELF);
        let a_z_in_two = write(&two.join("libz.a"), ARCHIVE);
        let l1 = format!("-L{}", one.display());
        let l2 = format!("-L{}", two.display());

        let files = find(&strings(&[&l1, &l2, "-lx", "-ly", "-lz"])).expect("found");
        assert_eq!(
            paths(&files),
            vec![a_in_one.clone(), so_y_in_two, so_z_in_one]
        );
        assert_eq!(files[0].origin, "-lx");

        let files = find(&strings(&[
            &l1,
            &l2,
            "-Bstatic",
            "-lx",
            "-ly",
            "-lz",
            "-Bdynamic",
        ]))
        .expect("found");
        assert_eq!(paths(&files), vec![a_in_one, a_in_two, a_z_in_two]);
        assert!(files.iter().all(|f| f.modifiers.link_static));
        assert!(so_in_two.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exact_file_search_and_missing_library() {
        let dir = temp_dir();
        let exact = write(&dir.join("sub/libq.so.1"), ELF);
        let l = format!("-L{}", dir.join("sub").display());
        let files = find(&strings(&[&l, "-l:libq.so.1"])).expect("found");
        assert_eq!(paths(&files), vec![exact]);
        assert_eq!(files[0].origin, "-l:libq.so.1");

        let err = find(&strings(&[&l, "-lnope"])).unwrap_err().to_string();
        assert_eq!(err, "cannot find -lnope: No such file or directory");
        let err = find(&strings(&[&l, "-l:nope.a"])).unwrap_err().to_string();
        assert_eq!(err, "cannot find -l:nope.a: No such file or directory");
        let missing = dir.join("missing.o");
        let err = find(&[missing.display().to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot open {}: No such file or directory",
                missing.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn script_with_group_as_needed_and_comments() {
        let dir = temp_dir();
        let libs = dir.join("libs");
        let foo1 = write(&libs.join("libfoo.so.1"), ELF);
        let baz1 = write(&libs.join("libbaz.so.1"), ELF);
        let bar = write(&dir.join("other/libbar.a"), ARCHIVE);
        let script = write(
            &libs.join("libfoo.so"),
            b"/* GNU ld script\n   with a comment */\nOUTPUT_FORMAT(elf64-x86-64)\n\
              GROUP ( libfoo.so.1, -lbar /* inline */ AS_NEEDED ( libbaz.so.1 ) )\n",
        );
        let first = write(&dir.join("first.o"), ELF);
        let list = strings(&[
            &format!("-L{}", libs.display()),
            &format!("-L{}", dir.join("other").display()),
            &first.display().to_string(),
            "-lfoo",
        ]);
        let files = find(&list).expect("found");
        assert_eq!(paths(&files), vec![first, foo1, bar, baz1]);
        assert_eq!(files[0].group, None);
        let group = files[1].group;
        assert!(group.is_some());
        assert!(files[1..].iter().all(|f| f.group == group));
        let as_needed: Vec<bool> = files.iter().map(|f| f.modifiers.as_needed).collect();
        assert_eq!(as_needed, vec![false, false, false, true]);
        assert_eq!(
            files[1].origin,
            format!("libfoo.so.1 (GROUP in {})", script.display())
        );
        assert_eq!(
            files[2].origin,
            format!("-lbar (GROUP in {})", script.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn command_line_groups_and_script_groups_inside_them() {
        let dir = temp_dir();
        let a = write(&dir.join("a.o"), ELF);
        let b = write(&dir.join("b.a"), ARCHIVE);
        let c = write(&dir.join("c.a"), ARCHIVE);
        let d = write(&dir.join("d.a"), ARCHIVE);
        let script = write(
            &dir.join("s.ld"),
            format!("GROUP({})", c.display()).as_bytes(),
        );
        let s = |p: &Path| p.display().to_string();
        let list = strings(&[
            &s(&a),
            "--start-group",
            &s(&b),
            &s(&script),
            "--end-group",
            &s(&script),
            "-(",
            &s(&d),
            "-)",
        ]);
        let files = find(&list).expect("found");
        let groups: Vec<Option<u32>> = files.iter().map(|f| f.group).collect();
        assert_eq!(paths(&files), vec![a, b, c.clone(), c, d]);
        assert_eq!(groups[0], None);
        assert!(groups[1].is_some());
        assert_eq!(groups[1], groups[2]);
        assert!(groups[3].is_some() && groups[3] != groups[1]);
        assert!(groups[4].is_some() && groups[4] != groups[3] && groups[4] != groups[1]);

        let err = find(&strings(&["--end-group"])).unwrap_err().to_string();
        assert_eq!(err, "--end-group without --start-group");
        let err = find(&strings(&["--start-group"])).unwrap_err().to_string();
        assert_eq!(err, "--start-group without --end-group");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn input_search_dir_and_bad_files() {
        let dir = temp_dir();
        let lib = write(&dir.join("extra/libe.a"), ARCHIVE);
        let script = write(
            &dir.join("in.ld"),
            format!("SEARCH_DIR({})\nINPUT(-le)", dir.join("extra").display()).as_bytes(),
        );
        let files = find(&[script.display().to_string()]).expect("found");
        assert_eq!(paths(&files), vec![lib]);
        assert_eq!(files[0].group, None);

        let binary = write(&dir.join("x.o"), b"\0\x01\x02garbage");
        let err = find(&[binary.display().to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("{}: unknown file type", binary.display()));

        let text = write(&dir.join("x.txt"), b"hello world\n");
        let err = find(&[text.display().to_string()]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:1:1: unknown command 'hello'\n>>> hello world\n>>> ^",
                text.display()
            )
        );

        let i386 = write(&dir.join("i386.so"), b"OUTPUT_FORMAT(elf32-i386)\n");
        let err = find(&[i386.display().to_string()]).unwrap_err().to_string();
        assert!(err.contains("elf32-i386"), "{err}");

        let looping = dir.join("loop.ld");
        write(&looping, format!("INPUT({})", looping.display()).as_bytes());
        let err = find(&[looping.display().to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested too deeply"), "{err}");

        let missing = write(&dir.join("m.ld"), b"GROUP(not-there.so)");
        let err = find(&[missing.display().to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: cannot find not-there.so: No such file or directory",
                missing.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn absolute_script_paths_inside_a_sysroot() {
        let sysroot = temp_dir();
        let libc6 = write(&sysroot.join("lib/libc.so.6"), ELF);
        write(
            &sysroot.join("usr/lib/libc.so"),
            b"GROUP ( /lib/libc.so.6 )",
        );
        let list = strings(&[
            &format!("--sysroot={}", sysroot.display()),
            "-L=/usr/lib",
            "-lc",
        ]);
        let files = find(&list).expect("found");
        assert_eq!(paths(&files), vec![libc6]);
        let _ = std::fs::remove_dir_all(&sysroot);
    }

    const GCC_DIR: &str = "/usr/lib/gcc/x86_64-linux-gnu/12";

    /// The `-L` list gcc 12 passes on Debian.
    fn gcc_search_dirs() -> Vec<String> {
        [
            "-L/usr/lib/gcc/x86_64-linux-gnu/12",
            "-L/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu",
            "-L/usr/lib/gcc/x86_64-linux-gnu/12/../../../../lib",
            "-L/lib/x86_64-linux-gnu",
            "-L/lib/../lib",
            "-L/usr/lib/x86_64-linux-gnu",
            "-L/usr/lib/../lib",
            "-L/usr/lib/gcc/x86_64-linux-gnu/12/../../..",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn have_gcc_12() -> bool {
        let present = Path::new(GCC_DIR).join("libgcc.a").is_file()
            && Path::new("/usr/lib/x86_64-linux-gnu/libc.a").is_file();
        if !present {
            eprintln!("skipping: gcc 12 and libc6-dev are not installed here");
        }
        present
    }

    #[test]
    fn gcc_static_link_line() {
        if !have_gcc_12() {
            return;
        }
        let dir = temp_dir();
        let object = write(&dir.join("cc7fTdHb.o"), ELF);
        let mut list = strings(&[
            "-plugin",
            "/usr/lib/gcc/x86_64-linux-gnu/12/liblto_plugin.so",
            "-plugin-opt=/usr/lib/gcc/x86_64-linux-gnu/12/lto-wrapper",
            "-plugin-opt=-fresolution=/tmp/ccDOpxRi.res",
            "-plugin-opt=-pass-through=-lgcc",
            "-plugin-opt=-pass-through=-lgcc_eh",
            "-plugin-opt=-pass-through=-lc",
            "--build-id",
            "-m",
            "elf_x86_64",
            "--hash-style=gnu",
            "--as-needed",
            "-static",
            "-o",
            "h",
            "/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/crt1.o",
            "/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/crti.o",
            "/usr/lib/gcc/x86_64-linux-gnu/12/crtbeginT.o",
        ]);
        list.extend(gcc_search_dirs());
        list.push(object.display().to_string());
        list.extend(strings(&[
            "--start-group",
            "-lgcc",
            "-lgcc_eh",
            "-lc",
            "--end-group",
            "/usr/lib/gcc/x86_64-linux-gnu/12/crtend.o",
            "/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/crtn.o",
        ]));
        let files = find(&list).expect("gcc -static inputs found");
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                "crt1.o",
                "crti.o",
                "crtbeginT.o",
                "cc7fTdHb.o",
                "libgcc.a",
                "libgcc_eh.a",
                "libc.a",
                "crtend.o",
                "crtn.o"
            ]
        );
        assert_eq!(files[4].path, Path::new(GCC_DIR).join("libgcc.a"));
        let group = files[4].group;
        assert!(group.is_some());
        assert!(files[4..7].iter().all(|f| f.group == group));
        assert!(files
            .iter()
            .all(|f| f.modifiers.link_static && f.modifiers.as_needed));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn gcc_dynamic_link_line_expands_libc_so() {
        if !have_gcc_12() || !Path::new("/lib/x86_64-linux-gnu/libc.so.6").is_file() {
            return;
        }
        let dir = temp_dir();
        let object = write(&dir.join("main.o"), ELF);
        let mut list = strings(&[
            "--build-id",
            "--eh-frame-hdr",
            "-m",
            "elf_x86_64",
            "--hash-style=gnu",
            "--as-needed",
            "-dynamic-linker",
            "/lib64/ld-linux-x86-64.so.2",
            "-pie",
            "-o",
            "h",
        ]);
        list.extend(gcc_search_dirs());
        list.push(object.display().to_string());
        list.extend(strings(&[
            "-lgcc",
            "--push-state",
            "--as-needed",
            "-lgcc_s",
            "--pop-state",
            "-lc",
        ]));
        let files = find(&list).expect("dynamic inputs found");
        let by_path: Vec<(String, bool, bool)> = files
            .iter()
            .map(|f| {
                (
                    f.path.display().to_string(),
                    f.modifiers.as_needed,
                    f.group.is_some(),
                )
            })
            .collect();
        let libc6 = by_path
            .iter()
            .position(|(p, _, _)| p == "/lib/x86_64-linux-gnu/libc.so.6")
            .expect("libc.so.6 from libc.so's GROUP");
        assert!(by_path[libc6 + 1].0.ends_with("libc_nonshared.a"));
        assert_eq!(by_path[libc6 + 2].0, "/lib64/ld-linux-x86-64.so.2");
        assert!(by_path[libc6 + 2].1, "ld.so is AS_NEEDED");
        assert!(by_path[libc6..].iter().all(|(_, _, grouped)| *grouped));
        // libgcc_s.so is itself a script: GROUP ( libgcc_s.so.1 -lgcc ), found via -L.
        assert!(by_path.iter().any(|(p, _, _)| p.ends_with("libgcc_s.so.1")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
