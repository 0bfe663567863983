//! The output file: an existing output is rewritten in place when no process can be running
//! it, and then holds exactly the bytes a new file would; a running program and a shared
//! library get a new file instead.

use crate::directives::{Fixture, Mode};
use crate::harness::{build_link_inputs, run_step, write_ld_wrapper, LinkerUnderTest, TempDir};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Links `inputs` into `out` with gcc (g++ if `cxx`) through the linker under test.
fn link(tmp: &TempDir, driver_flags: &[&str], inputs: &[std::ffi::OsString], out: &Path) {
    let wrapper_dir = tmp.join("ld");
    write_ld_wrapper(&wrapper_dir, &LinkerUnderTest::get().path);
    run_step(
        Command::new("g++")
            .args(driver_flags)
            .arg(format!("-B{}/", wrapper_dir.display()))
            .arg("-o")
            .arg(out)
            .args(inputs)
            .current_dir(tmp.path()),
    );
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Whether this kernel refuses to open a running executable for writing (all but 6.11 and
/// 6.12): only then may an output be rewritten in place.
fn kernel_refuses_busy_text() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap(), parts.next().unwrap(), 0);
    !((6, 11, 0)..(6, 13, 0)).contains(&version)
}

/// Bytes that no output section would hold: what a stale gap would show.
fn garbage(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect()
}

fn check_reused(file_name: &str, mode: Mode) {
    let fixture = Fixture::load(file_name);
    let tmp = TempDir::new(&format!("output-file-{file_name}-{mode}"));
    let inputs = build_link_inputs(&fixture, &tmp);
    let fresh = tmp.join("fresh.exe");
    link(&tmp, &[mode.driver_flag()], &inputs, &fresh);
    let fresh_bytes = std::fs::read(&fresh).unwrap();
    // An older, bigger output of something else.
    let reused = tmp.join("reused.exe");
    std::fs::write(&reused, garbage(3 * fresh_bytes.len() + 12345)).unwrap();
    // An open descriptor keeps the old file's inode from being freed and given to a new
    // file (a second name would not do: an output with two names must not be reused).
    let old = std::fs::File::open(&reused).unwrap();
    let before = old.metadata().unwrap().ino();
    link(&tmp, &[mode.driver_flag()], &inputs, &reused);
    let reused_bytes = std::fs::read(&reused).unwrap();
    assert!(
        reused_bytes == fresh_bytes,
        "{file_name} ({mode}): linked over an old file, the output differs from a new one"
    );
    if !LinkerUnderTest::get().is_weld {
        return;
    }
    if kernel_refuses_busy_text() {
        assert_eq!(
            inode(&reused),
            before,
            "{file_name}: the old output was not reused: this test checked nothing"
        );
    } else {
        assert_ne!(
            inode(&reused),
            before,
            "{file_name}: rewritten in place on 6.11/6.12"
        );
    }
}

#[test]
fn reused_output_is_the_same_as_a_new_one_cxx_pie() {
    check_reused("cxx.cc", Mode::Pie);
}

#[test]
fn reused_output_is_the_same_as_a_new_one_tls_static() {
    check_reused("tls.c", Mode::Static);
}

/// An output with a second name (a hard link: a backup, a copy in an install tree) is
/// replaced by a new file, as GNU ld does: the other name keeps the old bytes.
#[test]
fn hard_linked_output_keeps_its_other_name() {
    let fixture = Fixture::load("hello.c");
    let tmp = TempDir::new("output-file-hard-link");
    let inputs = build_link_inputs(&fixture, &tmp);
    let out = tmp.join("prog");
    let old_bytes = garbage(20000);
    std::fs::write(&out, &old_bytes).unwrap();
    let backup = tmp.join("prog.backup");
    std::fs::hard_link(&out, &backup).unwrap();
    link(&tmp, &[Mode::Pie.driver_flag()], &inputs, &out);
    assert!(
        std::fs::read(&backup).unwrap() == old_bytes,
        "linking over a hard-linked output changed the bytes of its other name"
    );
    let run = Command::new(&out).output().unwrap();
    assert!(run.status.success(), "the new output does not run: {run:?}");
}

const WAITING: &str = r#"
#include <stdio.h>
int main(void) {
    char line[64];
    puts("ready");
    fflush(stdout);
    if (fgets(line, sizeof line, stdin))
        printf("old program read %s", line);
    return 0;
}
"#;

const NEW: &str = r#"
#include <stdio.h>
int main(void) { puts("new program"); return 0; }
"#;

/// Relinking the output while it runs replaces the file: the running program goes on as it
/// was, the next run is the new program.
#[test]
fn relink_while_the_output_runs() {
    let tmp = TempDir::new("output-file-running");
    for (name, source) in [("waiting.c", WAITING), ("new.c", NEW)] {
        std::fs::write(tmp.join(name), source).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", name])
                .current_dir(tmp.path()),
        );
    }
    let prog = tmp.join("prog");
    link(&tmp, &[], &["waiting.o".into()], &prog);
    let before = inode(&prog);
    let mut child = Command::new(&prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // The program is running (blocked on its input) while it is linked again.
    link(&tmp, &[], &["new.o".into()], &prog);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a line\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the running program failed: {status}");
    assert_eq!(rest, "old program read a line\n");
    assert_ne!(
        inode(&prog),
        before,
        "a running program's file was written in place"
    );
    let out = Command::new(&prog).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "new program\n");
}

/// A shared library may be mapped by running processes (nothing refuses to open it for
/// writing): linking it again makes a new file.
#[test]
fn shared_library_is_a_new_file() {
    let tmp = TempDir::new("output-file-shared");
    for (name, value) in [("one.c", 1), ("two.c", 2)] {
        let source = format!("int answer(void) {{ return {value}; }}\n");
        std::fs::write(tmp.join(name), source).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", "-fPIC", name])
                .current_dir(tmp.path()),
        );
    }
    let lib = tmp.join("libanswer.so");
    link(&tmp, &["-shared"], &["one.o".into()], &lib);
    let first = std::fs::read(&lib).unwrap();
    // What a process that has the library mapped sees: the file under a second name.
    let mapped = tmp.join("mapped.so");
    std::fs::hard_link(&lib, &mapped).unwrap();
    link(&tmp, &["-shared"], &["two.o".into()], &lib);
    assert_ne!(
        std::fs::read(&lib).unwrap(),
        first,
        "the library did not change"
    );
    assert!(
        std::fs::read(&mapped).unwrap() == first,
        "the old library's bytes changed under its users"
    );
}
