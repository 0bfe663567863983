//! CREL relocations (`SHT_CREL`, LLVM 19's `-Wa,--crel`): fixtures built by clang-19 twice,
//! with compact and with ordinary RELA relocations. The linker under test must link both
//! into the same code, and the program must behave as the RELA build linked by GNU ld
//! (binutils 2.40 cannot read CREL). Before weld read CREL it dropped those relocations
//! without a word.

use crate::directives::fixtures_dir;
use crate::harness::{run_step, LinkerUnderTest, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(
    tmp: &TempDir,
    compiler: &str,
    sources: &[&str],
    crel: bool,
    flags: &[&str],
) -> Vec<PathBuf> {
    sources
        .iter()
        .map(|source| {
            let object = tmp.join(format!("{source}-{}.o", if crel { "crel" } else { "rela" }));
            let mut cmd = Command::new(compiler);
            cmd.args(["-c", "-O1"]).args(flags);
            if crel {
                cmd.arg("-Wa,--crel,--allow-experimental-crel");
            }
            run_step(cmd.arg(fixtures_dir().join(source)).arg("-o").arg(&object));
            object
        })
        .collect()
}

fn link(
    compiler: &str,
    linker: Option<&Path>,
    mode: &str,
    objects: &[PathBuf],
    flags: &[&str],
    out: &Path,
) {
    let mut cmd = Command::new(compiler);
    if let Some(linker) = linker {
        cmd.arg(format!("--ld-path={}", linker.display()));
    }
    run_step(cmd.arg(mode).args(flags).args(objects).arg("-o").arg(out));
}

fn output(exe: &Path) -> String {
    crate::harness::run_program(&mut Command::new(exe)).stdout_text()
}

/// `objdump -d` of `exe` without its first lines (the file name).
fn code(exe: &Path) -> String {
    let text = run_step(Command::new("objdump").arg("-d").arg(exe)).stdout_text();
    text.lines().skip(3).collect::<Vec<_>>().join("\n")
}

#[test]
fn crel_objects_link_as_their_rela_twins() {
    let tmp = TempDir::new("crel");
    let linker = LinkerUnderTest::get();
    for (compiler, sources, flags) in [
        ("clang-19", &["tls.c", "tls_other.c"][..], &["-pthread"][..]),
        ("clang++-19", &["cxx.cc", "cxx_other.cc"][..], &[][..]),
    ] {
        let crel = build(&tmp, compiler, sources, true, flags);
        let rela = build(&tmp, compiler, sources, false, flags);
        let has_crel = run_step(Command::new("readelf").arg("-SW").arg(&crel[0]))
            .stdout_text()
            .contains("40000014");
        assert!(has_crel, "{compiler} wrote no SHT_CREL section");
        for mode in ["-pie", "-no-pie", "-static"] {
            let exe = |name: &str| tmp.join(format!("{}-{name}{mode}", sources[0]));
            link(compiler, None, mode, &rela, flags, &exe("gnu"));
            link(
                compiler,
                Some(&linker.path),
                mode,
                &crel,
                flags,
                &exe("crel"),
            );
            link(
                compiler,
                Some(&linker.path),
                mode,
                &rela,
                flags,
                &exe("rela"),
            );
            let expected = output(&exe("gnu"));
            assert_eq!(output(&exe("crel")), expected, "{compiler} {mode}");
            assert_eq!(
                code(&exe("crel")),
                code(&exe("rela")),
                "{compiler} {mode}: the code"
            );
        }
    }
}
