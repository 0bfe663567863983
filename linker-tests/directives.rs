//! Reads the `//#` directives at the head of a fixture into a [`Fixture`].
//!
//! Knows nothing about compilers or linkers: it only checks that every directive is known and
//! well-formed, so that a typo in a fixture fails loudly instead of being ignored.

use std::fmt;
use std::path::{Path, PathBuf};

/// The directory that holds the fixtures.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// How the fixture's executable is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `gcc -static`: a non-relocatable static executable.
    Static,
    /// `gcc -static-pie`: a static executable that relocates itself at startup.
    StaticPie,
    /// `gcc -pie`: a dynamically linked position-independent executable (gcc's default).
    Pie,
    /// `gcc -no-pie`: a dynamically linked executable at a fixed address.
    NoPie,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Static, Mode::StaticPie, Mode::Pie, Mode::NoPie];

    /// The name used in `//#Modes:` and in temporary directory names.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Static => "static",
            Mode::StaticPie => "static-pie",
            Mode::Pie => "pie",
            Mode::NoPie => "no-pie",
        }
    }

    /// The flag that asks the compiler driver for this kind of executable.
    pub fn driver_flag(self) -> &'static str {
        match self {
            Mode::Static => "-static",
            Mode::StaticPie => "-static-pie",
            Mode::Pie => "-pie",
            Mode::NoPie => "-no-pie",
        }
    }

    fn parse(word: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.name() == word)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A static archive that the harness builds with `ar rcs` before linking.
#[derive(Debug, Clone)]
pub struct Archive {
    /// File name of the archive, e.g. `libfoo.a`; `{libfoo.a}` in link args expands to its path.
    pub name: String,
    /// Sources in `fixtures/` compiled into the archive's members, in member order.
    pub members: Vec<String>,
}

/// Everything the directives of one fixture say.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The fixture's own file name in `fixtures/`.
    pub main_source: String,
    /// `//#Files:` extra sources compiled and linked after `main_source`, in order.
    pub files: Vec<String>,
    /// `//#Modes:`; both modes when absent.
    pub modes: Vec<Mode>,
    /// `//#CompileArgs:`, passed to every compilation of this fixture.
    pub compile_args: Vec<String>,
    /// `//#LinkArgs:`, with `{archive}` placeholders not yet expanded; `{fixtures}` expands to
    /// the fixtures directory.
    pub link_args: Vec<String>,
    /// `//#Archive:`, in declaration order.
    pub archives: Vec<Archive>,
    /// `//#RunArgs:`, passed to the linked program.
    pub run_args: Vec<String>,
    /// `//#Stdin:` lines, each followed by a newline, fed to the linked program.
    pub stdin: String,
    /// `//#ExpectSym:` symbols that `nm` must list in the linked executable.
    pub expect_syms: Vec<String>,
    /// `//#NoSym:` symbols that `nm` must not list in the linked executable.
    pub no_syms: Vec<String>,
    /// `//#SharedLib:` shared libraries linked into the program (`-L<dir> -lname`), each
    /// built by the linker under test for the tested program and by GNU ld for the reference.
    pub shared_libs: Vec<Archive>,
    /// `//#Plugin:` shared libraries built like `SharedLib` but not linked; `{name.so}` in
    /// `RunArgs` expands to the path of the copy the program should load.
    pub plugins: Vec<Archive>,
    /// `//#SharedLinkArgs:` added when linking every `SharedLib` and `Plugin`; `{fixtures}`
    /// expands to the fixtures directory.
    pub shared_link_args: Vec<String>,
}

impl Fixture {
    /// Reads and parses `fixtures/<file_name>`. Panics with the offending line on bad directives.
    pub fn load(file_name: &str) -> Fixture {
        let path = fixtures_dir().join(file_name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read fixture {}: {err}", path.display()));
        Fixture::parse(file_name, &text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    fn parse(file_name: &str, text: &str) -> Result<Fixture, String> {
        let mut fixture = Fixture {
            main_source: file_name.to_owned(),
            files: Vec::new(),
            modes: Mode::ALL.to_vec(),
            compile_args: Vec::new(),
            link_args: Vec::new(),
            archives: Vec::new(),
            run_args: Vec::new(),
            stdin: String::new(),
            expect_syms: Vec::new(),
            no_syms: Vec::new(),
            shared_libs: Vec::new(),
            plugins: Vec::new(),
            shared_link_args: Vec::new(),
        };
        let mut seen_modes = false;
        for (line_idx, line) in text.lines().enumerate() {
            let Some(directive) = line.trim_start().strip_prefix("//#") else {
                continue;
            };
            let line_err = |msg: String| format!("line {}: {msg}: `{line}`", line_idx + 1);
            let Some((name, value)) = directive.split_once(':') else {
                return Err(line_err("directive without `:`".to_owned()));
            };
            let words = || value.split_whitespace().map(str::to_owned);
            match name.trim() {
                "Files" => fixture.files.extend(words()),
                "Modes" => {
                    if seen_modes {
                        return Err(line_err("`Modes` given twice".to_owned()));
                    }
                    seen_modes = true;
                    fixture.modes = value
                        .split_whitespace()
                        .map(|word| {
                            Mode::parse(word)
                                .ok_or_else(|| line_err(format!("unknown mode {word}")))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "CompileArgs" => fixture.compile_args.extend(words()),
                "LinkArgs" => fixture.link_args.extend(words()),
                "Archive" => {
                    let Some((archive_name, members)) = value.split_once('=') else {
                        return Err(line_err("expected `Archive: libname.a = a.c b.c`".into()));
                    };
                    let archive = Archive {
                        name: archive_name.trim().to_owned(),
                        members: members.split_whitespace().map(str::to_owned).collect(),
                    };
                    if !archive.name.ends_with(".a") || archive.members.is_empty() {
                        return Err(line_err("expected `Archive: libname.a = a.c b.c`".into()));
                    }
                    fixture.archives.push(archive);
                }
                "RunArgs" => fixture.run_args.extend(words()),
                "Stdin" => {
                    fixture
                        .stdin
                        .push_str(value.strip_prefix(' ').unwrap_or(value));
                    fixture.stdin.push('\n');
                }
                "SharedLib" | "Plugin" => {
                    let Some((lib_name, members)) = value.split_once('=') else {
                        return Err(line_err(
                            "expected `SharedLib: libname.so = a.c b.c`".into(),
                        ));
                    };
                    let lib = Archive {
                        name: lib_name.trim().to_owned(),
                        members: members.split_whitespace().map(str::to_owned).collect(),
                    };
                    if !lib.name.ends_with(".so") || lib.members.is_empty() {
                        return Err(line_err(
                            "expected `SharedLib: libname.so = a.c b.c`".into(),
                        ));
                    }
                    if name.trim() == "SharedLib" {
                        fixture.shared_libs.push(lib);
                    } else {
                        fixture.plugins.push(lib);
                    }
                }
                "SharedLinkArgs" => fixture.shared_link_args.extend(words()),
                "ExpectSym" => fixture.expect_syms.extend(words()),
                "NoSym" => fixture.no_syms.extend(words()),
                other => return Err(line_err(format!("unknown directive `{other}`"))),
            }
        }
        fixture.check_placeholders()?;
        Ok(fixture)
    }

    /// Every `{name}` in the link args must name a declared archive.
    fn check_placeholders(&self) -> Result<(), String> {
        for arg in &self.link_args {
            if let Some(name) = placeholder(arg) {
                if !self.archives.iter().any(|archive| archive.name == name) {
                    return Err(format!(
                        "LinkArgs uses {{{name}}} but no `Archive: {name} = ...`"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every source file this fixture compiles: its own, `Files`, then archive members.
    pub fn all_sources(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.main_source.as_str())
            .chain(self.files.iter().map(String::as_str))
            .chain(
                self.archives
                    .iter()
                    .chain(&self.shared_libs)
                    .chain(&self.plugins)
                    .flat_map(|a| a.members.iter().map(String::as_str)),
            )
            .chain(
                self.shared_link_args
                    .iter()
                    .chain(&self.link_args)
                    .filter_map(|arg| arg.split_once("{fixtures}/").map(|(_, file)| file)),
            )
    }

    /// Whether any source is C++, in which case the fixture is linked with `g++`.
    pub fn is_cxx(&self) -> bool {
        self.all_sources().any(is_cxx_source)
    }

    /// Whether link args place `archive_name` themselves (otherwise it goes after the objects).
    pub fn places_archive(&self, archive_name: &str) -> bool {
        self.link_args
            .iter()
            .any(|arg| placeholder(arg) == Some(archive_name))
    }
}

/// `{libfoo.a}` -> `Some("libfoo.a")`.
pub fn placeholder(arg: &str) -> Option<&str> {
    arg.strip_prefix('{')?.strip_suffix('}')
}

pub fn is_cxx_source(file_name: &str) -> bool {
    [".cc", ".cpp", ".cxx", ".C"]
        .iter()
        .any(|ext| file_name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let text = "\
//#Files: b.c c.cc
//#Modes: static-pie
//#CompileArgs: -O2
//#CompileArgs: -fcommon
//#LinkArgs: -Wl,--start-group {liba.a} -Wl,--end-group
//#Archive: liba.a = x.c y.c
//#Archive: libb.a = z.c
//#RunArgs: one two
//#Stdin: first line
//#Stdin: second
//#ExpectSym: main
//#NoSym: dropped also_dropped
int main() {}
";
        let fixture = Fixture::parse("a.c", text).unwrap();
        assert_eq!(fixture.files, ["b.c", "c.cc"]);
        assert_eq!(fixture.modes, [Mode::StaticPie]);
        assert_eq!(fixture.compile_args, ["-O2", "-fcommon"]);
        assert_eq!(fixture.archives.len(), 2);
        assert_eq!(fixture.archives[0].members, ["x.c", "y.c"]);
        assert!(fixture.places_archive("liba.a"));
        assert!(!fixture.places_archive("libb.a"));
        assert_eq!(fixture.run_args, ["one", "two"]);
        assert_eq!(fixture.stdin, "first line\nsecond\n");
        assert_eq!(fixture.expect_syms, ["main"]);
        assert_eq!(fixture.no_syms, ["dropped", "also_dropped"]);
        assert!(fixture.is_cxx());
        let sources: Vec<_> = fixture.all_sources().collect();
        assert_eq!(sources, ["a.c", "b.c", "c.cc", "x.c", "y.c", "z.c"]);
    }

    #[test]
    fn rejects_mistakes() {
        let cases = [
            "//#Flies: b.c",
            "//#Modes: dynamic",
            "//#Modes: static\n//#Modes: static-pie",
            "//#Archive: libfoo.a",
            "//#LinkArgs: {libnope.a}",
            "//#Files b.c",
        ];
        for text in cases {
            assert!(Fixture::parse("a.c", text).is_err(), "accepted: {text}");
        }
    }
}
