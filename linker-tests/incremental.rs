//! Incremental mode, as far as it goes today: the state archive, change detection (inputs
//! matched by position and content, not path) and the no-op relink; every other case is a
//! full link whose reason `--verbose` prints. After every link the program must behave as a
//! fresh link's does.

use crate::harness::{write_ld_wrapper, LinkerUnderTest, TempDir};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

struct Project {
    tmp: TempDir,
}

impl Project {
    fn new(label: &str) -> Project {
        let tmp = TempDir::new(label);
        write_ld_wrapper(&tmp.join("bin"), &LinkerUnderTest::get().path);
        let p = Project { tmp };
        p.write("main.c", "int value(void);\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", value()); return 0; }\n");
        p.write("value.c", "int value(void) { return 1; }\n");
        p
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.tmp.join(name), text).unwrap();
    }

    fn compile(&self, source: &str, object: &str) {
        let status = Command::new("gcc")
            .args(["-c", source, "-o", object])
            .current_dir(self.tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Links main.o and value.o; returns weld's stderr.
    fn link(&self, extra: &[&str], env: &[(&str, &str)]) -> String {
        let mut cmd = Command::new("gcc");
        cmd.arg(format!("-B{}/", self.tmp.join("bin").display()))
            .args(["main.o", "value.o", "-o", "prog", "-Wl,--verbose"])
            .args(extra)
            .current_dir(self.tmp.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "link failed:\n{stderr}");
        stderr
    }

    fn run(&self) -> String {
        let out = Command::new(self.tmp.join("prog")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn output_identity(&self) -> (u64, i64, i64) {
        let m = std::fs::metadata(self.tmp.join("prog")).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    }
}

fn weld_only() -> bool {
    LinkerUnderTest::get().is_weld
}

#[test]
fn unchanged_inputs_leave_the_output_untouched() {
    if !weld_only() {
        return; // incremental mode is weld's own
    }
    let p = Project::new("incremental-noop");
    p.compile("main.c", "main.o");
    p.compile("value.c", "value.o");
    let first = p.link(&["-Wl,--incremental"], &[]);
    assert!(first.contains("full link: no state"), "{first}");
    assert!(p.tmp.join("prog.weld-state").exists());
    assert_eq!(p.run(), "1\n");
    let before = p.output_identity();
    // Recompiling to identical bytes (as rustc does with new object names) is no change.
    p.compile("value.c", "value.o");
    let second = p.link(&["-Wl,--incremental"], &[]);
    assert!(second.contains("no input changed"), "{second}");
    assert_eq!(
        p.output_identity(),
        before,
        "a no-op relink rewrote the output"
    );
    // WELD_INCREMENTAL=1 turns the mode on as --incremental does.
    let third = p.link(&[], &[("WELD_INCREMENTAL", "1")]);
    assert!(third.contains("no input changed"), "{third}");
}

#[test]
fn every_other_case_is_a_correct_full_link() {
    if !weld_only() {
        return;
    }
    let p = Project::new("incremental-fallbacks");
    p.compile("main.c", "main.o");
    p.compile("value.c", "value.o");
    p.link(&["-Wl,--incremental"], &[]);
    // A changed input.
    p.write("value.c", "int value(void) { return 2; }\n");
    p.compile("value.c", "value.o");
    let out = p.link(&["-Wl,--incremental"], &[]);
    assert!(out.contains("full link: 1 of"), "{out}");
    assert_eq!(p.run(), "2\n");
    // Changed options.
    let out = p.link(&["-Wl,--incremental", "-Wl,--gc-sections"], &[]);
    assert!(out.contains("the options changed"), "{out}");
    assert_eq!(p.run(), "2\n");
    // A corrupt, then a truncated state.
    std::fs::write(p.tmp.join("prog.weld-state"), b"not a state").unwrap();
    let out = p.link(&["-Wl,--incremental", "-Wl,--gc-sections"], &[]);
    assert!(out.contains("the state is corrupt"), "{out}");
    assert_eq!(p.run(), "2\n");
    let state = std::fs::read(p.tmp.join("prog.weld-state")).unwrap();
    std::fs::write(p.tmp.join("prog.weld-state"), &state[..state.len() / 2]).unwrap();
    let out = p.link(&["-Wl,--incremental", "-Wl,--gc-sections"], &[]);
    assert!(out.contains("the state is corrupt"), "{out}");
    // The output replaced by another linker.
    let status = Command::new("gcc")
        .args(["main.o", "value.o", "-o", "prog", "-Wl,--gc-sections"])
        .current_dir(p.tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = p.link(&["-Wl,--incremental", "-Wl,--gc-sections"], &[]);
    assert!(
        out.contains("the output was changed by something else"),
        "{out}"
    );
    assert_eq!(p.run(), "2\n");
    // A missing output.
    std::fs::remove_file(p.tmp.join("prog")).unwrap();
    let out = p.link(&["-Wl,--incremental", "-Wl,--gc-sections"], &[]);
    assert!(out.contains("the output is missing"), "{out}");
    assert_eq!(p.run(), "2\n");
    // --no-incremental wins over the environment.
    let out = p.link(&["-Wl,--no-incremental"], &[("WELD_INCREMENTAL", "1")]);
    assert!(!out.contains("incremental:"), "{out}");
}

#[test]
fn concurrent_links_of_one_output_take_turns() {
    if !weld_only() {
        return;
    }
    let p = Project::new("incremental-concurrent");
    p.compile("main.c", "main.o");
    p.compile("value.c", "value.o");
    let spawn = || {
        Command::new("gcc")
            .arg(format!("-B{}/", p.tmp.join("bin").display()))
            .args(["main.o", "value.o", "-o", "prog", "-Wl,--incremental"])
            .current_dir(p.tmp.path())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4).map(|_| spawn()).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a concurrent link failed");
    }
    assert_eq!(p.run(), "1\n");
    // The state the last link left describes the output: the next link has nothing to do.
    let out = p.link(&["-Wl,--incremental"], &[]);
    assert!(out.contains("no input changed"), "{out}");
}
