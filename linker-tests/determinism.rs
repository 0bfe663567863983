//! Deterministic output: the same inputs and arguments give the same bytes, whatever the
//! thread count.

use crate::directives::{Fixture, Mode};
use crate::harness::{build_link_inputs, write_ld_wrapper, LinkerUnderTest, TempDir};
use std::process::Command;

fn link(fixture: &Fixture, tmp: &TempDir, mode: Mode, threads: &str, out: &str) -> Vec<u8> {
    let inputs = build_link_inputs(fixture, tmp);
    let wrapper_dir = tmp.join(format!("ld-{threads}"));
    write_ld_wrapper(&wrapper_dir, &LinkerUnderTest::get().path);
    let driver = if fixture.is_cxx() { "g++" } else { "gcc" };
    let status = Command::new(driver)
        .arg(mode.driver_flag())
        .arg(format!("-B{}/", wrapper_dir.display()))
        .arg(format!("-Wl,--threads={threads}"))
        .arg("-o")
        .arg(tmp.join(out))
        .args(&inputs)
        .status()
        .unwrap();
    assert!(status.success(), "link with --threads={threads} failed");
    std::fs::read(tmp.join(out)).unwrap()
}

fn check(file_name: &str, mode: Mode) {
    let fixture = Fixture::load(file_name);
    let tmp = TempDir::new(&format!("determinism-{file_name}-{mode}"));
    let one = link(&fixture, &tmp, mode, "1", "one.exe");
    let two = link(&fixture, &tmp, mode, "2", "two.exe");
    let again = link(&fixture, &tmp, mode, "2", "again.exe");
    assert!(
        one == two,
        "{file_name}: output differs between --threads=1 and --threads=2"
    );
    assert!(
        two == again,
        "{file_name}: two identical links gave different bytes"
    );
}

#[test]
fn cxx_static_is_deterministic() {
    check("cxx.cc", Mode::Static);
}

#[test]
fn tls_static_pie_is_deterministic() {
    check("tls.c", Mode::StaticPie);
}
