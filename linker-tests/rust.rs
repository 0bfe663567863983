//! Rust: rustc's output linked by weld in each of the three ways in (through gcc, through
//! clang, and directly as `-Clinker-flavor=ld`), for each crate type, compared with the same
//! program linked by GNU ld through gcc (rustc's default).

use crate::directives::fixtures_dir;
use crate::harness::{run, write_ld_wrapper, LinkerUnderTest, Outcome, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// How rustc reaches the linker under test.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// `-Clinker=gcc -Clink-arg=-B<dir>`.
    Gcc,
    /// `-Clinker=clang -Clink-arg=--ld-path=<dir>/ld`.
    ClangLdPath,
    /// `-Clinker=clang -Clink-arg=-fuse-ld=weld` with `ld.weld` on PATH.
    ClangFuseLd,
    /// `-Clinker=<dir>/ld -Clinker-flavor=ld`: no C driver at all.
    Direct,
    /// The reference: rustc's default (`cc`, GNU ld).
    Reference,
}

fn source(name: &str) -> PathBuf {
    fixtures_dir().join("rust").join(name)
}

struct Env {
    tmp: TempDir,
    wrapper_dir: PathBuf,
    log: PathBuf,
}

impl Env {
    fn new(label: &str) -> Env {
        let tmp = TempDir::new(label);
        let wrapper_dir = tmp.join("linker-under-test");
        let log = write_ld_wrapper(&wrapper_dir, &LinkerUnderTest::get().path);
        // `-fuse-ld=weld` makes clang look for `ld.weld` on PATH.
        std::os::unix::fs::symlink(wrapper_dir.join("ld"), wrapper_dir.join("ld.weld")).unwrap();
        Env {
            tmp,
            wrapper_dir,
            log,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// `rustc` with the linker flags for `way`; the output goes to `out` in the test dir.
    fn rustc(&self, way: Way, src: &Path, out: &str, extra: &[&str]) -> Outcome {
        let mut cmd = Command::new("rustc");
        cmd.arg(src).arg("-o").arg(self.path(out)).args(extra);
        cmd.current_dir(self.tmp.path());
        let ld = self.wrapper_dir.join("ld");
        match way {
            Way::Gcc => {
                cmd.arg("-Clinker=gcc")
                    .arg(format!("-Clink-arg=-B{}/", self.wrapper_dir.display()));
            }
            Way::ClangLdPath => {
                cmd.arg("-Clinker=clang")
                    .arg(format!("-Clink-arg=--ld-path={}", ld.display()));
            }
            Way::ClangFuseLd => {
                let path = std::env::var("PATH").unwrap_or_default();
                cmd.arg("-Clinker=clang")
                    .arg("-Clink-arg=-fuse-ld=weld")
                    .env("PATH", format!("{}:{path}", self.wrapper_dir.display()));
            }
            Way::Direct => {
                cmd.arg(format!("-Clinker={}", ld.display()))
                    .arg("-Clinker-flavor=ld");
            }
            Way::Reference => {
                cmd.arg("-Clinker=gcc");
            }
        }
        run(&mut cmd, b"", TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rustc_ok(&self, way: Way, src: &Path, out: &str, extra: &[&str]) {
        let outcome = self.rustc(way, src, out, extra);
        assert!(
            outcome.status.success(),
            "rustc ({way:?}) failed for {}:\n{}",
            src.display(),
            outcome.stderr_text()
        );
    }

    fn run(&self, exe: &str, env: &[(&str, &str)]) -> Outcome {
        let mut cmd = Command::new(self.path(exe));
        cmd.current_dir(self.tmp.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd, b"", TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn assert_weld_ran(&self) {
        assert!(
            std::fs::metadata(&self.log).is_ok_and(|m| m.len() > 0),
            "the linker under test never ran"
        );
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn same_behaviour(tested: &Outcome, reference: &Outcome, what: &str) {
    assert_eq!(
        tested.status.code(),
        reference.status.code(),
        "{what}: exit status differs"
    );
    assert_eq!(
        tested.stdout_text(),
        reference.stdout_text(),
        "{what}: stdout differs\ntested stderr:\n{}",
        tested.stderr_text()
    );
}

fn check_bin(way: Way, label: &str, flags: &[&str]) {
    let env = Env::new(label);
    let src = source("hello.rs");
    env.rustc_ok(Way::Reference, &src, "reference", flags);
    let reference = env.run("reference", &[]);
    assert_eq!(reference.status.code(), Some(3));
    let outcome = env.rustc(way, &src, "tested", flags);
    if let (Way::Direct, false) = (way, LinkerUnderTest::get().is_weld) {
        // GNU ld called directly gets no C runtime and no GCC library directory.
        assert!(
            !outcome.status.success(),
            "GNU ld was expected to fail when called directly"
        );
        return;
    }
    assert!(
        outcome.status.success(),
        "rustc ({way:?}) failed:\n{}",
        outcome.stderr_text()
    );
    env.assert_weld_ran();
    same_behaviour(&env.run("tested", &[]), &reference, label);
}

#[test]
fn bin_through_gcc() {
    check_bin(Way::Gcc, "rust-bin-gcc", &[]);
}

#[test]
fn bin_directly() {
    check_bin(Way::Direct, "rust-bin-direct", &[]);
}

#[test]
fn bin_through_clang_ld_path() {
    assert!(
        have("clang"),
        "clang is not installed (.ci/run installs it)"
    );
    check_bin(Way::ClangLdPath, "rust-bin-clang-ld-path", &[]);
}

#[test]
fn bin_through_clang_fuse_ld() {
    assert!(
        have("clang"),
        "clang is not installed (.ci/run installs it)"
    );
    check_bin(Way::ClangFuseLd, "rust-bin-clang-fuse-ld", &[]);
}

#[test]
fn bin_profiles_and_flags() {
    for (i, flags) in [
        &["-O"][..],
        &["-Cdebuginfo=1"],
        &["-Cdebuginfo=2", "-Csplit-debuginfo=off"],
        &["-Cpanic=abort"],
        &["-Crelocation-model=static"],
        &["-Clink-dead-code"],
        &["-Ctarget-feature=+crt-static"],
        &[
            "-O",
            "-Ctarget-feature=+crt-static",
            "-Crelocation-model=static",
        ],
    ]
    .iter()
    .enumerate()
    {
        // panic=abort makes the caught panic an abort: both programs must still agree.
        let env = Env::new(&format!("rust-bin-flags-{i}"));
        let src = source("hello.rs");
        env.rustc_ok(Way::Reference, &src, "reference", flags);
        env.rustc_ok(Way::Gcc, &src, "tested", flags);
        env.rustc_ok(Way::Direct, &src, "direct", flags);
        env.assert_weld_ran();
        let reference = env.run("reference", &[]);
        same_behaviour(
            &env.run("tested", &[]),
            &reference,
            &format!("{flags:?} via gcc"),
        );
        if LinkerUnderTest::get().is_weld {
            same_behaviour(
                &env.run("direct", &[]),
                &reference,
                &format!("{flags:?} direct"),
            );
        }
    }
}

/// The lines of a backtrace that name this program's own frames, with their locations.
fn own_frames(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut frames = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("panics::") {
            let name = line
                .split_once(": ")
                .map_or(*line, |(_, n)| n)
                .trim()
                .to_owned();
            let at = lines
                .get(i + 1)
                .filter(|l| l.trim_start().starts_with("at "))
                .copied();
            frames.push(format!("{name} {}", at.unwrap_or("").trim()));
        }
    }
    frames
}

#[test]
fn panic_backtrace_is_symbolized() {
    let env = Env::new("rust-backtrace");
    let src = source("panics.rs");
    let flags = ["-g"];
    env.rustc_ok(Way::Reference, &src, "reference", &flags);
    env.rustc_ok(Way::Gcc, &src, "tested", &flags);
    env.assert_weld_ran();
    let bt = [("RUST_BACKTRACE", "1")];
    let reference = own_frames(&env.run("reference", &bt).stderr_text());
    let tested_out = env.run("tested", &bt);
    let tested = own_frames(&tested_out.stderr_text());
    assert!(
        reference
            .iter()
            .any(|f| f.contains("panics::innermost") && f.contains("panics.rs:")),
        "reference backtrace lacks file:line: {reference:?}"
    );
    assert_eq!(
        tested,
        reference,
        "backtraces differ; tested:\n{}",
        tested_out.stderr_text()
    );
}

#[test]
fn cdylib_from_c_and_python() {
    let env = Env::new("rust-cdylib");
    env.rustc_ok(
        Way::Gcc,
        &source("c_api.rs"),
        "libweldrs.so",
        &["--crate-type=cdylib", "-O"],
    );
    env.assert_weld_ran();
    // From C, linked by the linker under test.
    let mut cc = Command::new("gcc");
    cc.arg(format!("-B{}/", env.wrapper_dir.display()))
        .arg(source("use_cdylib.c"))
        .arg(env.path("libweldrs.so"))
        .arg(format!("-Wl,-rpath,{}", env.tmp.path().display()))
        .arg("-o")
        .arg(env.path("use_cdylib"));
    let out = run(&mut cc, b"", TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    let c = env.run("use_cdylib", &[]);
    assert_eq!(
        c.stdout_text(),
        "magic 57454c44 add 42 strlen 4 sum 5050\n",
        "{}",
        c.stderr_text()
    );
    // From Python.
    let mut py = Command::new("python3");
    py.arg(source("use_cdylib.py"))
        .arg(env.path("libweldrs.so"));
    let out = run(&mut py, b"", TIMEOUT).unwrap();
    assert_eq!(
        out.stdout_text(),
        "0x57454c44 42 4 5050\n",
        "{}",
        out.stderr_text()
    );
}

#[test]
fn staticlib_into_c() {
    let env = Env::new("rust-staticlib");
    let out = env.rustc(
        Way::Reference,
        &source("c_api.rs"),
        "libweldst.a",
        &["--crate-type=staticlib"],
    );
    assert!(out.status.success(), "{}", out.stderr_text());
    for (mode, exe) in [
        ("-pie", "pie"),
        ("-no-pie", "nopie"),
        ("-static-pie", "static-pie"),
    ] {
        let mut cc = Command::new("gcc");
        cc.arg(mode)
            .arg(format!("-B{}/", env.wrapper_dir.display()))
            .arg(source("use_cdylib.c"))
            .arg(env.path("libweldst.a"))
            .args(["-lpthread", "-ldl", "-lm"])
            .arg("-o")
            .arg(env.path(exe));
        let out = run(&mut cc, b"", TIMEOUT).unwrap();
        assert!(out.status.success(), "{mode}: {}", out.stderr_text());
        let c = env.run(exe, &[]);
        assert_eq!(
            c.stdout_text(),
            "magic 57454c44 add 42 strlen 4 sum 5050\n",
            "{mode}: {}",
            c.stderr_text()
        );
    }
    env.assert_weld_ran();
}

fn rust_sysroot_lib() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn dylib_with_prefer_dynamic() {
    let env = Env::new("rust-dylib");
    for way in [Way::Gcc, Way::Direct] {
        if matches!(way, Way::Direct) && !LinkerUnderTest::get().is_weld {
            continue; // GNU ld cannot be called directly (see bin_directly)
        }
        let lib = "libdylib.so".to_string();
        env.rustc_ok(
            way,
            &source("dylib.rs"),
            &lib,
            &[
                "--crate-type=dylib",
                "-Cprefer-dynamic",
                "--crate-name=dylib",
            ],
        );
        let extern_arg = format!("dylib={}", env.path(&lib).display());
        env.rustc_ok(
            way,
            &source("dylib_user.rs"),
            "dylib_user",
            &["-Cprefer-dynamic", "--extern", &extern_arg],
        );
        let ld_path = format!(
            "{}:{}",
            env.tmp.path().display(),
            rust_sysroot_lib().display()
        );
        let out = env.run("dylib_user", &[("LD_LIBRARY_PATH", &ld_path)]);
        assert_eq!(
            out.stdout_text(),
            "hello, weld, from a dylib\n42\n",
            "{way:?}: {}",
            out.stderr_text()
        );
    }
    env.assert_weld_ran();
}

#[test]
fn proc_macro_is_loaded_by_rustc() {
    let env = Env::new("rust-proc-macro");
    for way in [Way::Gcc, Way::Direct] {
        if matches!(way, Way::Direct) && !LinkerUnderTest::get().is_weld {
            continue; // GNU ld cannot be called directly (see bin_directly)
        }
        env.rustc_ok(
            way,
            &source("proc_macro.rs"),
            "libproc_macro_lib.so",
            &["--crate-type=proc-macro", "--crate-name=proc_macro_lib"],
        );
        let extern_arg = format!(
            "proc_macro_lib={}",
            env.path("libproc_macro_lib.so").display()
        );
        // rustc dlopens the weld-linked proc-macro to expand the derive.
        env.rustc_ok(
            way,
            &source("proc_macro_user.rs"),
            "user",
            &["--extern", &extern_arg],
        );
        let out = env.run("user", &[]);
        assert_eq!(
            out.stdout_text(),
            "Widget described by a weld-linked proc-macro\n"
        );
    }
    env.assert_weld_ran();
}

#[test]
fn test_harness_binary() {
    let env = Env::new("rust-test-harness");
    for (way, exe) in [(Way::Gcc, "tests-gcc"), (Way::Direct, "tests-direct")] {
        if matches!(way, Way::Direct) && !LinkerUnderTest::get().is_weld {
            continue; // GNU ld cannot be called directly (see bin_directly)
        }
        env.rustc_ok(way, &source("with_tests.rs"), exe, &["--test"]);
        let out = env.run(exe, &[("RUST_TEST_THREADS", "1")]);
        assert!(out.status.success(), "{way:?}: {}", out.stdout_text());
        assert!(
            out.stdout_text()
                .contains("test result: ok. 3 passed; 0 failed"),
            "{way:?}: {}",
            out.stdout_text()
        );
    }
    env.assert_weld_ran();
}

/// Incremental relinking of a Rust program made of a library crate (an rlib of several
/// codegen units) and a binary crate: edits to either are patched into the output in place
/// (checked by the oracle), and the program behaves as a fresh GNU-ld link of the same
/// objects does.
#[test]
fn incremental_edits_to_a_rust_program() {
    if !LinkerUnderTest::get().is_weld {
        return; // incremental mode is weld's own
    }
    let env = Env::new("rust-incremental");
    // Format strings and generic instances change the symbols a codegen unit defines
    // (`core::fmt::Arguments::new` instances are named by the template's length), so
    // these are edits that add and remove global symbols.
    // A wrapper that keeps weld's messages: rustc shows none when a link succeeds.
    let log = env.path("weld-messages.log");
    let wrapper_dir = env.path("incremental-ld");
    std::fs::create_dir_all(&wrapper_dir).unwrap();
    std::fs::write(
        wrapper_dir.join("ld"),
        format!(
            "#!/bin/sh\nexec '{}' \"$@\" --verbose 2>>'{}'\n",
            LinkerUnderTest::get().path.display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        wrapper_dir.join("ld"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let lib_v0 = "pub fn scale(x: u64) -> u64 { x * 3 }\n\
                  pub fn label() -> &'static str { \"items\" }\n\
                  pub fn table() -> Vec<u64> { (1..=5).map(scale).collect() }\n";
    let main_v0 = "fn total(v: &[u64]) -> u64 { v.iter().sum() }\n\
                   fn main() {\n    let t = mylib::table();\n    \
                   println!(\"{} {}: {:?}\", total(&t), mylib::label(), t);\n}\n";
    let build = |lib: &str, main: &str, expect_patch: bool, step: &str| {
        std::fs::write(env.path("mylib.rs"), lib).unwrap();
        std::fs::write(env.path("main.rs"), main).unwrap();
        let common = ["-g", "-Ccodegen-units=4", "-Cmetadata=weld-test"];
        // As cargo's dev profile: rustc's incremental mode keeps the split into codegen
        // units stable across edits.
        let out = Command::new("rustc")
            .args(["--crate-type=rlib", "--crate-name=mylib", "mylib.rs"])
            .args(common)
            .arg("-Cincremental=inc-lib")
            .current_dir(env.tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&log);
        for (out_name, weld) in [("prog", true), ("prog-ref", false)] {
            let mut cmd = Command::new("rustc");
            cmd.args(["main.rs", "--extern", "mylib=libmylib.rlib", "-o", out_name])
                .args(common)
                .arg(format!("-Cincremental=inc-{out_name}"))
                .arg("-Clinker=gcc")
                .current_dir(env.tmp.path());
            if weld {
                cmd.arg(format!("-Clink-arg=-B{}/", wrapper_dir.display()))
                    .env("WELD_INCREMENTAL", "1")
                    .env("WELD_ORACLE", "1");
            }
            let out = cmd.output().unwrap();
            let messages = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                out.status.success(),
                "{step}: rustc failed: {}\n{messages}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let messages = std::fs::read_to_string(&log).unwrap_or_default();
        if expect_patch {
            assert!(
                messages.contains("updated in place"),
                "{step}: expected an update in place:\n{messages}"
            );
        }
        same_behaviour(&env.run("prog", &[]), &env.run("prog-ref", &[]), step);
    };
    build(lib_v0, main_v0, false, "first link");
    let main_v1 = main_v0.replace("{} {}: {:?}", "total {} {} -> {:?}");
    build(lib_v0, &main_v1, true, "a changed format string");
    // A new call into the standard library and other generic instances defined. The
    // panic path grows this tiny codegen unit's code by half, more than its slot has room
    // for: a full link (with a new layout) either way; what matters is the program.
    let main_v2 = main_v1.replace("v.iter().sum()", "v.iter().sum::<u64>() + 1");
    build(lib_v0, &main_v2, false, "an overflow-checked addition");
    let main_v3 = main_v2.replace("+ 1", "+ 2");
    build(lib_v0, &main_v3, true, "a changed constant");
    let lib_v1 = lib_v0.replace("x * 3", "x * 3 + 7");
    build(&lib_v1, &main_v2, true, "edit in the library crate");
    let lib_v2 = lib_v1.replace("\"items\"", "\"things, edited\"");
    build(&lib_v2, &main_v2, true, "a changed string in the library");
}

/// The clang whose LLVM reads rustc's bitcode: `clang-N` for the major version of rustc's
/// LLVM (.ci/run installs it and its LLVMgold.so).
fn clang_for_rustc() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let major = text
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|version| version.split('.').next())
        .unwrap_or_else(|| panic!("rustc -vV names no LLVM version:\n{text}"));
    format!("clang-{major}")
}

fn defined_symbols(exe: &Path) -> String {
    let mut nm = Command::new("nm");
    nm.arg("--defined-only").arg(exe);
    let out = run(&mut nm, b"", TIMEOUT).unwrap();
    assert!(out.status.success(), "{}", out.describe());
    out.stdout_text()
}

/// Cross-language LTO (rustc's `-Clinker-plugin-lto` with clang's `-flto`), both ways round:
/// a Rust program with a C library of bitcode in an archive, and a Rust staticlib of bitcode
/// in a C program. Each is linked through clang's LLVMgold.so by GNU ld and by the linker
/// under test: the same output, and the functions LLVM inlines across the languages or drops
/// are gone from both.
#[test]
fn cross_language_lto() {
    let env = Env::new("rust-cross-lto");
    let clang = clang_for_rustc();
    let ld_path = format!("--ld-path={}", env.wrapper_dir.join("ld").display());
    let linkers = [("gnu", "-fuse-ld=bfd"), ("tested", ld_path.as_str())];
    let ok = |cmd: &mut Command, what: &str| {
        let out = run(cmd.current_dir(env.tmp.path()), b"", TIMEOUT).unwrap();
        assert!(out.status.success(), "{what}: {}", out.describe());
    };

    // Rust calling C.
    let object = env.path("cross_lto_lib.o");
    ok(
        Command::new(&clang)
            .args(["-c", "-O2", "-flto=thin"])
            .arg(source("cross_lto_lib.c"))
            .arg("-o")
            .arg(&object),
        "clang",
    );
    ok(
        Command::new("ar")
            .arg("rcs")
            .arg(env.path("libcrosslto.a"))
            .arg(&object),
        "ar",
    );
    let mut outputs = Vec::new();
    for (out, linker) in linkers {
        ok(
            Command::new("rustc")
                .args(["-O", "-Clinker-plugin-lto", "-Clink-arg=-flto"])
                .arg(format!("-Clinker={clang}"))
                .arg(format!("-Clink-arg={linker}"))
                .arg("-L")
                .arg(env.tmp.path())
                .args(["-lstatic=crosslto", "-o", out])
                .arg(source("cross_lto.rs")),
            &format!("rustc for {out}"),
        );
        let ran = env.run(out, &[]);
        assert!(ran.status.success(), "{out}: {}", ran.describe());
        let symbols = defined_symbols(&env.path(out));
        for gone in ["cross_lto_scale", "cross_lto_fold", "cross_lto_unused"] {
            assert!(!symbols.contains(gone), "{out}: {gone} is still defined");
        }
        outputs.push(ran.stdout_text());
    }
    assert_eq!(
        outputs[0],
        "scaled 142 folded 28231640996005\ncaught: true\n"
    );
    assert_eq!(outputs[1], outputs[0]);

    // C calling a Rust staticlib.
    ok(
        Command::new("rustc")
            .args(["-O", "-Clinker-plugin-lto", "--crate-type=staticlib", "-o"])
            .arg(env.path("libweldlto.a"))
            .arg(source("c_api.rs")),
        "rustc staticlib",
    );
    let mut symbol_sets = Vec::new();
    for (out, linker) in linkers {
        let exe = format!("c-{out}");
        ok(
            Command::new(&clang)
                .args(["-O2", "-flto", linker])
                .arg(source("use_cdylib.c"))
                .arg(env.path("libweldlto.a"))
                .args(["-lpthread", "-ldl", "-lm", "-o", &exe]),
            &format!("clang for {exe}"),
        );
        let ran = env.run(&exe, &[]);
        assert_eq!(
            ran.stdout_text(),
            "magic 57454c44 add 42 strlen 4 sum 5050\n",
            "{exe}: {}",
            ran.describe()
        );
        let symbols = defined_symbols(&env.path(&exe));
        let ours: Vec<&str> = symbols
            .lines()
            .filter_map(|line| line.rsplit(' ').next())
            .filter(|name| name.starts_with("weld_") || *name == "WELD_MAGIC")
            .collect();
        symbol_sets.push(ours.join(" "));
    }
    assert_eq!(
        symbol_sets[1], symbol_sets[0],
        "the C API's symbols that LTO kept"
    );
    env.assert_weld_ran();
}
