//! Link-time optimisation with clang and clang-19 (LLVM bitcode through LLVMgold.so) and what happens
//! without a plugin. (GCC's LTO is covered by the `lto*` fixtures, which gcc links through
//! its plugin.)

use crate::directives::fixtures_dir;
use crate::harness::{run, run_step, LinkerUnderTest, TempDir};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// lto.c's sources; the last two are its archive's members (one in assembly: native code).
const SOURCES: [&str; 4] = ["lto.c", "lto_other.c", "lto_lib.c", "lto_native.s"];

fn compile(tmp: &TempDir, compiler: &str, flags: &[&str]) -> Vec<PathBuf> {
    SOURCES
        .iter()
        .map(|source| {
            let object = tmp.join(format!("{compiler}-{source}.o"));
            run_step(
                Command::new(compiler)
                    .arg("-c")
                    .args(flags)
                    .arg(fixtures_dir().join(source))
                    .arg("-o")
                    .arg(&object),
            );
            object
        })
        .collect()
}

fn program_output(exe: &PathBuf) -> String {
    let outcome = run(&mut Command::new(exe), b"", Duration::from_secs(30)).unwrap();
    assert!(outcome.status.success(), "{}", outcome.describe());
    outcome.stdout_text()
}

/// `clang -flto` and `-flto=thin` objects, linked by clang through LLVM's gold plugin: the
/// same program as GNU ld links with the same plugin, and the symbol LTO can drop dropped.
#[test]
fn clang_full_and_thin_lto() {
    let tmp = TempDir::new("lto-clang");
    // The distribution's clang (LLVM 14 on Debian 12) and clang-19, each with its own
    // LLVMgold.so (.ci/run installs them).
    for (clang, mode) in [
        ("clang", "-flto"),
        ("clang", "-flto=thin"),
        ("clang-19", "-flto"),
        ("clang-19", "-flto=thin"),
    ] {
        let mut objects = compile(&tmp, clang, &["-O2", mode]);
        // The last two in an archive (bitcode and a native member), its index written by
        // GNU ar through the same clang's plugin (LLVM's bitcode is not read by older LLVMs).
        let archive = tmp.join(format!("{clang}{mode}-parts.a"));
        let resource = run_step(Command::new(clang).arg("-print-resource-dir")).stdout_text();
        let plugin = PathBuf::from(resource.trim()).join("../../LLVMgold.so");
        run_step(
            Command::new("ar")
                .arg("rcs")
                .arg("--plugin")
                .arg(&plugin)
                .arg(&archive)
                .args(objects.split_off(2)),
        );
        objects.push(archive);
        let link = |out: &str, linker: &[&str]| -> PathBuf {
            let exe = tmp.join(out);
            run_step(
                Command::new(clang)
                    .args(["-O2", mode])
                    .args(linker)
                    .args(&objects)
                    .arg("-o")
                    .arg(&exe),
            );
            exe
        };
        let gnu = link("gnu", &["-fuse-ld=bfd"]);
        let tested = LinkerUnderTest::get().path;
        let ld_path = format!("--ld-path={}", tested.display());
        let tested = link("tested", &[&ld_path]);
        let expected = program_output(&gnu);
        assert!(
            expected.starts_with("sum 145, archive 48, native 42"),
            "{expected}"
        );
        assert_eq!(program_output(&tested), expected, "{clang} {mode}");
        let nm = run_step(Command::new("nm").arg(&tested)).stdout_text();
        assert!(!nm.contains("lto_unused_global"), "{clang} {mode}: {nm}");
    }
}

/// Without a plugin, LTO code is an error naming the file (GCC's slim objects, LLVM
/// bitcode), exit status 1 and no output; a fat object links its native code.
#[test]
fn lto_code_without_a_plugin() {
    let tmp = TempDir::new("lto-no-plugin");
    let linker = LinkerUnderTest::get();
    let gcc_objects = compile(&tmp, "gcc", &["-O2", "-flto"]);
    let clang_objects = compile(&tmp, "clang", &["-O2", "-flto"]);
    for (what, object, says) in [
        (
            "gcc",
            &gcc_objects[1],
            "file contains only LTO intermediate code",
        ),
        ("clang", &clang_objects[1], "file is LLVM bitcode"),
    ] {
        let out = tmp.join("out");
        let outcome = run(
            Command::new(&linker.path)
                .args(["-r", "-o"])
                .arg(&out)
                .arg(object),
            b"",
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{what}: {}",
            outcome.describe()
        );
        assert!(!out.exists());
        if linker.is_weld {
            let stderr = outcome.stderr_text();
            assert!(
                stderr.contains(says) && stderr.contains(&object.display().to_string()),
                "{what}: {stderr}"
            );
        }
    }
}

/// Incremental mode and LTO: a link with LTO code is a full one and drops the state of the
/// output it replaces; links before and after it (without LTO) stay correct.
#[test]
fn incremental_then_lto_then_incremental() {
    let tmp = TempDir::new("lto-incremental");
    let plain = compile(&tmp, "gcc", &["-O2"]);
    let lto = SOURCES
        .iter()
        .map(|source| {
            let object = tmp.join(format!("lto-{source}.o"));
            run_step(
                Command::new("gcc")
                    .args(["-c", "-O2", "-flto"])
                    .arg(fixtures_dir().join(source))
                    .arg("-o")
                    .arg(&object),
            );
            object
        })
        .collect::<Vec<_>>();
    let wrapper = tmp.join("bin");
    crate::harness::write_ld_wrapper(&wrapper, &LinkerUnderTest::get().path);
    let exe = tmp.join("prog");
    let state = tmp.join("prog.weld-state");
    let mut expected = None;
    for (round, objects) in [&plain, &lto, &plain].into_iter().enumerate() {
        run_step(
            Command::new("gcc")
                .arg(format!("-B{}/", wrapper.display()))
                .args(["-O2", "-flto"])
                .args(objects)
                .arg("-o")
                .arg(&exe)
                .env("WELD_INCREMENTAL", "1"),
        );
        let out = program_output(&exe);
        assert_eq!(
            expected.get_or_insert_with(|| out.clone()),
            &out,
            "round {round}"
        );
        if LinkerUnderTest::get().is_weld {
            assert_eq!(state.exists(), round != 1, "round {round}: the state file");
        }
    }
}
