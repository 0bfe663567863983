//! Bad inputs: the linker is called directly (`weld <args>`, as `ld` would be) on arguments or
//! files that cannot be linked, and must refuse cleanly.
//!
//! Every linker must exit with status 1, not leave a new file in the directory (no output, no
//! temporary), leave an existing output absent or unchanged, and mention the culprit (the file
//! or option) on stderr. weld must also word its errors as the design asks
//! (`weld: error: ...`, lld-style `>>>` lines) and never panic. Under `WELD_TEST_LINKER`,
//! only the checks every linker must pass apply, which validates the inputs made here.
//! The inputs are made at test time from small sources written into the test's directory.

use crate::harness::{command_line, run, run_step, LinkerUnderTest, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Defines a symbol and an entry point, needs nothing: a well-formed object to break.
const PLAIN_C: &str = "int plain_value = 7;\nvoid _start(void) {}\n";

const EM_AARCH64: u16 = 183;

/// What a rejected link must print.
struct Expected<'a> {
    /// Lines weld must print, in this order; each line contains all of the given strings.
    weld_lines: &'a [&'a [&'a str]],
    /// Strings every linker must print somewhere on stderr: the culprit file or option.
    mentions: &'a [&'a str],
}

#[test]
fn unknown_option() {
    let tmp = TempDir::new("bad-input-unknown-option");
    compile(&tmp, "plain.c", PLAIN_C);
    check_rejected(
        &tmp,
        &["--frobnicate", "plain.o", "-o", "out"],
        &Expected {
            weld_lines: &[&["weld: error:", "unknown option: --frobnicate"]],
            mentions: &["--frobnicate"],
        },
    );
}

#[test]
fn truncated_object() {
    let tmp = TempDir::new("bad-input-truncated-object");
    compile(&tmp, "plain.c", PLAIN_C);
    let bytes = std::fs::read(tmp.join("plain.o")).unwrap();
    std::fs::write(tmp.join("truncated.o"), &bytes[..bytes.len() / 2]).unwrap();
    check_rejected(
        &tmp,
        &["-o", "out", "truncated.o"],
        &Expected {
            weld_lines: &[&["weld: error:", "truncated.o"]],
            mentions: &["truncated.o"],
        },
    );
}

#[test]
fn corrupt_archive_member_header() {
    let tmp = TempDir::new("bad-input-corrupt-archive");
    compile(
        &tmp,
        "user.c",
        "int lib_value(void);\nvoid _start(void) { lib_value(); }\n",
    );
    compile(&tmp, "member.c", "int lib_value(void) { return 42; }\n");
    run_step(
        Command::new("ar")
            .args(["rcs", "libbroken.a", "member.o"])
            .current_dir(tmp.path()),
    );
    let archive_path = tmp.join("libbroken.a");
    let mut archive = std::fs::read(&archive_path).unwrap();
    let header = object_member_header(&archive);
    // ar_fmag, the two bytes that end every member header, must be "`\n".
    archive[header + 58..header + 60].copy_from_slice(b"XX");
    std::fs::write(&archive_path, archive).unwrap();
    check_rejected(
        &tmp,
        &["-o", "out", "user.o", "libbroken.a"],
        &Expected {
            weld_lines: &[&["weld: error:", "libbroken.a"]],
            mentions: &["libbroken.a"],
        },
    );
}

#[test]
fn foreign_architecture() {
    let tmp = TempDir::new("bad-input-foreign-architecture");
    compile(&tmp, "plain.c", PLAIN_C);
    let mut bytes = std::fs::read(tmp.join("plain.o")).unwrap();
    bytes[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes()); // e_machine
    std::fs::write(tmp.join("aarch64.o"), bytes).unwrap();
    check_rejected(
        &tmp,
        &["-o", "out", "aarch64.o"],
        &Expected {
            weld_lines: &[&["weld: error:", "aarch64.o", "architecture"]],
            mentions: &["aarch64.o"],
        },
    );
}

/// An object of LTO intermediate code (gcc `-flto` without `-ffat-lto-objects`) has no
/// machine code to link: weld runs no LTO plugin and says so.
#[test]
fn lto_object() {
    if !LinkerUnderTest::get().is_weld {
        return; // GNU ld loads gcc's LTO plugin from its bfd-plugins directory and links it
    }
    let tmp = TempDir::new("bad-input-lto-object");
    std::fs::write(tmp.join("lto.c"), PLAIN_C).unwrap();
    run_step(
        Command::new("gcc")
            .args(["-c", "-flto", "lto.c", "-o", "lto.o"])
            .current_dir(tmp.path()),
    );
    check_rejected(
        &tmp,
        &["-o", "out", "lto.o"],
        &Expected {
            weld_lines: &[&["weld: error:", "lto.o", "LTO", "-flto"]],
            mentions: &["lto.o"],
        },
    );
}

#[test]
fn undefined_symbol_c() {
    let tmp = TempDir::new("bad-input-undefined-symbol-c");
    compile(
        &tmp,
        "caller.c",
        "void missing_c_fn(int);\nvoid _start(void) { missing_c_fn(1); }\n",
    );
    check_rejected(
        &tmp,
        &["-o", "out", "caller.o"],
        &Expected {
            weld_lines: &[
                &["weld: error:", "undefined symbol: missing_c_fn"],
                &[">>> referenced by", "caller.o"],
            ],
            mentions: &["missing_c_fn", "caller.o"],
        },
    );
}

#[test]
fn undefined_symbol_cxx_is_demangled() {
    let tmp = TempDir::new("bad-input-undefined-symbol-cxx");
    compile(
        &tmp,
        "caller.cc",
        "int missing_fn(int);\nextern \"C\" void _start() { missing_fn(1); }\n",
    );
    check_rejected(
        &tmp,
        &["-o", "out", "caller.o"],
        &Expected {
            weld_lines: &[
                &["weld: error:", "undefined symbol: missing_fn(int)"],
                &[">>> referenced by", "caller.o"],
            ],
            mentions: &["missing_fn(int)", "caller.o"],
        },
    );
}

/// With DWARF line tables (`-g`), an undefined symbol's references and a duplicate's
/// definitions are named by source file and line and by function, as lld names them
/// (GNU ld says `caller.c:4: undefined reference to ...` after `in function ...`).
#[test]
fn diagnostics_name_source_lines_and_functions() {
    if !LinkerUnderTest::get().is_weld {
        return; // The lines checked are weld's (lld's format).
    }
    let tmp = TempDir::new("bad-input-source-lines");
    for (file, source) in [
        (
            "caller.c",
            "void missing_c_fn(int);\nstatic int helper(int x) { return x + 1; }\n\
             void _start(void) {\n    missing_c_fn(helper(1));\n}\n",
        ),
        // Functions (from the line table), variables (from their DWARF declaration), a
        // C++ static member (its definition's line, its declaration's file) as GNU ld
        // names them: dup_member.cc:4 and dup_member2.cc:2.
        ("dup_a.c", "int dup(void) { return 1; }\nint dup_var = 1;\n"),
        (
            "dup_b.c",
            "\n\nint dup(void) {\n    return 2;\n}\n\nint dup_var = 2;\n",
        ),
        (
            "dup_member.cc",
            "struct S {\n  static int member;\n};\nint S::member = 5;\n",
        ),
        (
            "dup_member2.cc",
            "struct S { static int member; };\nint S::member = 6;\n",
        ),
        // clang's DWARF 5 (DW_OP_addrx) and TLS variables (DW_OP_const8u,
        // push_tls_address).
        (
            "dup_clang_a.c",
            "int dup_cv = 1;\n__thread int dup_tv = 2;\n",
        ),
        (
            "dup_clang_b.c",
            "\nint dup_cv = 3;\n\n__thread int dup_tv = 4;\n",
        ),
    ] {
        std::fs::write(tmp.join(file), source).unwrap();
        let driver = match file {
            _ if file.ends_with(".cc") => "g++",
            _ if file.starts_with("dup_clang") => "clang",
            _ => "gcc",
        };
        run_step(
            Command::new(driver)
                .args(["-c", "-g", "-gdwarf-5", "-O0", file])
                .current_dir(tmp.path()),
        );
    }
    let dir = tmp.path().display().to_string();
    check_rejected(
        &tmp,
        &["-o", "out", "caller.o"],
        &Expected {
            weld_lines: &[
                &["weld: error:", "undefined symbol: missing_c_fn"],
                &[">>> referenced by caller.c:4 (", &dir, "/caller.c:4)"],
                &[">>>               caller.o:(_start)"],
            ],
            mentions: &["missing_c_fn", "caller.c:4"],
        },
    );
    check_rejected(
        &tmp,
        &[
            "-o",
            "out",
            "caller.o",
            "dup_a.o",
            "dup_b.o",
            "--defsym=missing_c_fn=0",
        ],
        &Expected {
            weld_lines: &[
                &["weld: error:", "duplicate symbol: dup"],
                &[">>> defined at dup_a.c:1 ("],
                &[">>>            dup_a.o:(dup)"],
                &[">>> defined at dup_b.c:3 ("],
                &[">>>            dup_b.o:(dup)"],
                &["weld: error:", "duplicate symbol: dup_var"],
                &[">>> defined at dup_a.c:2 (", &dir, "/dup_a.c:2)"],
                &[">>>            dup_a.o:(dup_var)"],
                &[">>> defined at dup_b.c:7 ("],
                &[">>>            dup_b.o:(dup_var)"],
            ],
            mentions: &["dup", "dup_a.o", "dup_b.o", "dup_a.c:2", "dup_b.c:7"],
        },
    );
    check_rejected(
        &tmp,
        &[
            "-o",
            "out",
            "caller.o",
            "dup_clang_a.o",
            "dup_clang_b.o",
            "--defsym=missing_c_fn=0",
        ],
        &Expected {
            weld_lines: &[
                &["weld: error:", "duplicate symbol: dup_cv"],
                &[">>> defined at dup_clang_a.c:1 ("],
                &[">>> defined at dup_clang_b.c:2 ("],
                &["weld: error:", "duplicate symbol: dup_tv"],
                &[">>> defined at dup_clang_a.c:2 ("],
                &[">>>            dup_clang_a.o:(dup_tv)"],
                &[">>> defined at dup_clang_b.c:4 ("],
            ],
            mentions: &["dup_cv", "dup_tv"],
        },
    );
    check_rejected(
        &tmp,
        &[
            "-o",
            "out",
            "caller.o",
            "dup_member.o",
            "dup_member2.o",
            "--defsym=missing_c_fn=0",
        ],
        &Expected {
            weld_lines: &[
                &["weld: error:", "duplicate symbol: S::member"],
                &[">>> defined at dup_member.cc:4 ("],
                &[">>> defined at dup_member2.cc:2 ("],
            ],
            mentions: &["dup_member.cc:4", "dup_member2.cc:2"],
        },
    );
}

const DUP_A_C: &str = "int dup = 1;\nvoid _start(void) {}\n";
const DUP_B_C: &str = "int dup = 1;\n";

/// What weld must say about `dup` defined in both `dup_a.o` and `dup_b.o`.
const DUPLICATE_DUP: Expected = Expected {
    weld_lines: &[
        &["weld: error:", "duplicate symbol: dup"],
        &[">>> defined at", "dup_a.o:(dup)"],
        &[">>> defined at", "dup_b.o:(dup)"],
    ],
    mentions: &["dup", "dup_a.o", "dup_b.o"],
};

#[test]
fn duplicate_symbol() {
    let tmp = TempDir::new("bad-input-duplicate-symbol");
    compile(&tmp, "dup_a.c", DUP_A_C);
    compile(&tmp, "dup_b.c", DUP_B_C);
    check_rejected(&tmp, &["-o", "out", "dup_a.o", "dup_b.o"], &DUPLICATE_DUP);
}

/// A failed link over an existing output leaves it absent (GNU ld deletes it) or unchanged;
/// never a new, half-written one.
#[test]
fn failed_link_leaves_no_new_output() {
    let tmp = TempDir::new("bad-input-existing-output");
    compile(&tmp, "dup_a.c", DUP_A_C);
    compile(&tmp, "dup_b.c", DUP_B_C);
    std::fs::write(tmp.join("out"), "output of an earlier link\n").unwrap();
    check_rejected(&tmp, &["-o", "out", "dup_a.o", "dup_b.o"], &DUPLICATE_DUP);
}

/// Writes `source` into the test directory and compiles it there to `<stem>.o`.
fn compile(tmp: &TempDir, file_name: &str, source: &str) {
    std::fs::write(tmp.join(file_name), source).unwrap();
    let driver = if file_name.ends_with(".cc") {
        "g++"
    } else {
        "gcc"
    };
    let object = Path::new(file_name).with_extension("o");
    run_step(
        Command::new(driver)
            .arg("-c")
            .arg(file_name)
            .arg("-o")
            .arg(object)
            .current_dir(tmp.path()),
    );
}

/// Offset of the header of the first archive member that is not a symbol or name table.
fn object_member_header(archive: &[u8]) -> usize {
    assert!(archive.starts_with(b"!<arch>\n"), "not an ar archive");
    let mut offset = 8;
    while offset + 60 <= archive.len() {
        let name = &archive[offset..offset + 16];
        if !name.starts_with(b"/ ") && !name.starts_with(b"// ") {
            return offset;
        }
        let size: usize = std::str::from_utf8(&archive[offset + 48..offset + 58])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        offset += 60 + size + size % 2;
    }
    panic!("archive has no object member");
}

/// Runs the linker under test on `args` in the test directory and checks that it refused.
fn check_rejected(tmp: &TempDir, args: &[&str], expected: &Expected) {
    let linker = LinkerUnderTest::get();
    let files_before = directory_snapshot(tmp.path());
    let mut cmd = Command::new(&linker.path);
    cmd.args(args).current_dir(tmp.path());
    let outcome = run(&mut cmd, b"", Duration::from_secs(60)).unwrap_or_else(|err| panic!("{err}"));
    let files_after = directory_snapshot(tmp.path());

    let mut problems = Vec::new();
    if outcome.status.code() != Some(1) {
        problems.push(format!("expected exit status 1, got {}", outcome.status));
    }
    let stderr = outcome.stderr_text();
    if stderr.contains("panicked") {
        problems.push("the linker panicked".to_owned());
    }
    for (name, contents) in &files_after {
        match files_before.iter().find(|(before, _)| before == name) {
            None => problems.push(format!("the failed link left a new file `{name}`")),
            Some((_, old)) if old != contents => {
                problems.push(format!("the failed link changed `{name}`"));
            }
            Some(_) => {}
        }
    }
    for mention in expected.mentions {
        if !stderr.contains(mention) {
            problems.push(format!("stderr does not mention `{mention}`"));
        }
    }
    if linker.is_weld {
        problems.extend(check_lines_in_order(&stderr, expected.weld_lines));
    }
    if !problems.is_empty() {
        panic!(
            "{}\n\ncommand (in {}): {}\n{}",
            problems.join("\n"),
            tmp.path().display(),
            command_line(&cmd),
            outcome.describe()
        );
    }
}

/// Each entry of `expected` must match a line after the line that matched the previous one.
fn check_lines_in_order(stderr: &str, expected: &[&[&str]]) -> Option<String> {
    let mut lines = stderr.lines();
    for parts in expected {
        if !lines
            .by_ref()
            .any(|line| parts.iter().all(|part| line.contains(part)))
        {
            return Some(format!(
                "stderr lacks a line containing all of {parts:?} (after the lines \
                 expected before it: {expected:?})"
            ));
        }
    }
    None
}

/// Name and contents of every file in `dir`.
fn directory_snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap_or_default())
        })
        .collect();
    files.sort();
    files
}

/// Randomly damaged objects (a fixed seed, so the same inputs every run): weld may link them
/// or refuse them, but must never panic, abort or hang.
#[test]
fn damaged_objects_never_panic() {
    if !LinkerUnderTest::get().is_weld {
        return; // this checks weld's own robustness; GNU ld's is not in question
    }
    let tmp = TempDir::new("bad-input-damaged");
    compile(
        &tmp,
        "damaged.c",
        "int g = 5; static int s; __thread int t;\n\
         int f(int x) { return x + g + s + t; }\nvoid _start(void) { f(2); }\n",
    );
    let original = std::fs::read(tmp.join("damaged.o")).unwrap();
    let mut seed: u64 = 0x5745_4c44;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for round in 0..150 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 8 {
            let at = next() % bytes.len();
            bytes[at] = next() as u8;
        }
        std::fs::write(tmp.join("m.o"), &bytes).unwrap();
        let mut cmd = Command::new(&LinkerUnderTest::get().path);
        cmd.args(["-static", "m.o", "-o", "out"])
            .current_dir(tmp.path());
        let outcome = run(&mut cmd, b"", Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let stderr = outcome.stderr_text();
        assert!(
            matches!(outcome.status.code(), Some(0) | Some(1)) && !stderr.contains("panicked"),
            "round {round}: weld crashed on a damaged object ({}):\n{stderr}",
            command_line(&cmd)
        );
    }
}

/// An object with relocations whose first entry `patch` damages (given the object's bytes
/// and the offset of the entry; `all` patches the first entry of every SHT_RELA section, else
/// only .rela.text's), linked by weld in every kind of link: each link must fail with exit
/// code 1, saying `expected`, never panic and never leave an output.
fn damaged_relocation(label: &str, all: bool, patch: impl Fn(&mut [u8], usize), expected: &[&str]) {
    if !LinkerUnderTest::get().is_weld {
        return;
    }
    let tmp = TempDir::new(label);
    compile(
        &tmp,
        "reloc.c",
        "int g = 5;\nint *p = &g;\nint f(void) { return g; }\nvoid _start(void) { f(); }\n",
    );
    let mut bytes = std::fs::read(tmp.join("reloc.o")).unwrap();
    let word = |b: &[u8], at: usize, n: usize| {
        b[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |v, &x| (v << 8) | u64::from(x)) as usize
    };
    let (shoff, shnum) = (word(&bytes, 0x28, 8), word(&bytes, 0x3c, 2));
    let mut patched = 0;
    for i in 0..shnum {
        let sh = shoff + i * 64;
        // SHT_RELA; the first one is .rela.text (the code comes first).
        if word(&bytes, sh + 4, 4) == 4 && (all || patched == 0) {
            let entry = word(&bytes, sh + 0x18, 8);
            patch(&mut bytes, entry);
            patched += 1;
        }
    }
    assert!(patched > 0, "the object has no relocation section");
    std::fs::write(tmp.join("bad.o"), &bytes).unwrap();
    for kind in [&["-r"][..], &["-static"], &["-shared"], &["-pie"]] {
        let mut cmd = Command::new(&LinkerUnderTest::get().path);
        cmd.args(kind)
            .args(["bad.o", "-o", "out"])
            .current_dir(tmp.path());
        let outcome = run(&mut cmd, b"", Duration::from_secs(20)).unwrap();
        let stderr = outcome.stderr_text();
        assert!(
            outcome.status.code() == Some(1)
                && !stderr.contains("panicked")
                && expected.iter().any(|e| stderr.contains(e)),
            "{}: {}",
            command_line(&cmd),
            outcome.describe()
        );
        assert!(!tmp.join("out").exists());
    }
}

/// A relocation naming a symbol index past the symbol table: an error naming the place (as
/// GNU ld's "bad reloc symbol index"). `cargo xtask fuzz object` found `-r` indexing the
/// table with it (`ObjectFile::symbol_shndx`).
#[test]
fn relocation_to_a_symbol_past_the_table() {
    damaged_relocation(
        "bad-input-reloc-symbol",
        true,
        |bytes, entry| bytes[entry + 12..entry + 16].copy_from_slice(&0x7fffu32.to_le_bytes()),
        &[
            "bad.o:(.text+0x6): relocation refers to symbol 32767, past the symbol table",
            "bad.o: relocation at .text+0x6 refers to symbol 32767, past the symbol table",
        ],
    );
}

/// A relocation whose offset is near 2^64 (`cargo xtask fuzz object` found the writer's
/// `offset + width` overflowing).
#[test]
fn relocation_offset_near_the_top_of_the_address_space() {
    damaged_relocation(
        "bad-input-reloc-offset",
        false,
        |bytes, entry| {
            bytes[entry..entry + 8].copy_from_slice(&0xffff_ffff_ffff_fffeu64.to_le_bytes())
        },
        &[
            "is outside its section",
            "cannot be used when making a shared object",
        ],
    );
}
