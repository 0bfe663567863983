//! `-r`: weld combines objects into one relocatable object, which GNU ld (and weld) then
//! link into a program that must behave as the program linked from the original objects.

use crate::harness::{compile, run_step, write_ld_wrapper, LinkerUnderTest, TempDir};
use std::path::PathBuf;
use std::process::Command;

fn check(label: &str, sources: &[&str], compile_args: &[&str], link_args: &[&str]) {
    let tmp = TempDir::new(&format!("relocatable-{label}"));
    let args: Vec<String> = compile_args.iter().map(|s| s.to_string()).collect();
    let objects: Vec<PathBuf> = sources
        .iter()
        .map(|s| compile(s, &args, tmp.path()))
        .collect();
    let driver = if sources.iter().any(|s| s.ends_with(".cc")) {
        "g++"
    } else {
        "gcc"
    };
    let combined = tmp.join("combined.o");
    let out = run_step(
        Command::new(&LinkerUnderTest::get().path)
            .arg("-r")
            .args(&objects)
            .arg("-o")
            .arg(&combined),
    );
    assert!(out.status.success(), "-r failed: {}", out.stderr_text());
    let wrapper = tmp.join("linker-under-test");
    write_ld_wrapper(&wrapper, &LinkerUnderTest::get().path);
    let link = |inputs: &[PathBuf], exe: &str, weld: bool| {
        let mut cmd = Command::new(driver);
        if weld {
            cmd.arg(format!("-B{}/", wrapper.display()));
        }
        cmd.args(inputs)
            .args(link_args)
            .arg("-o")
            .arg(tmp.join(exe));
        let out = run_step(&mut cmd);
        assert!(
            out.status.success(),
            "linking {exe} failed: {}",
            out.stderr_text()
        );
        let run = Command::new(tmp.join(exe)).output().unwrap();
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stdout).into_owned(),
        )
    };
    let expected = link(&objects, "direct", false);
    assert_eq!(
        link(std::slice::from_ref(&combined), "combined-gnu", false),
        expected,
        "-r output linked by GNU ld"
    );
    assert_eq!(
        link(&[combined], "combined-weld", true),
        expected,
        "-r output linked by weld"
    );
}

#[test]
fn cxx_with_comdat_groups() {
    check("cxx", &["cxx.cc", "cxx_other.cc"], &["-O1", "-g"], &[]);
}

#[test]
fn c_with_commons_weak_and_tls() {
    check("c", &["symbols.c", "symbols_other.c"], &["-fcommon"], &[]);
    check("tls", &["tls.c", "tls_other.c"], &[], &["-pthread"]);
}
