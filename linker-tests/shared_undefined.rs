//! Undefined symbols and shared libraries, as GNU ld treats them: a shared library may leave
//! symbols undefined (unless `--no-undefined`), and an executable whose shared library needs
//! a symbol nobody defines is an error.

use crate::harness::{run_step, write_ld_wrapper, LinkerUnderTest, TempDir};
use std::process::Command;

fn write(tmp: &TempDir, name: &str, text: &str) {
    std::fs::write(tmp.join(name), text).unwrap();
}

/// Links with gcc through the linker under test; returns (success, stderr).
fn link(tmp: &TempDir, args: &[&str]) -> (bool, String) {
    let dir = tmp.join("linker-under-test");
    write_ld_wrapper(&dir, &LinkerUnderTest::get().path);
    let out = Command::new("gcc")
        .arg(format!("-B{}/", dir.display()))
        .args(args)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LIB: &str = "int missing_in_lib(void);\nint lib_fn(void) { return missing_in_lib() + 1; }\n";

#[test]
fn shared_library_may_leave_symbols_undefined() {
    let tmp = TempDir::new("shared-undefined-allowed");
    write(&tmp, "lib.c", LIB);
    let (ok, stderr) = link(&tmp, &["-shared", "-fPIC", "lib.c", "-o", "libx.so"]);
    assert!(
        ok,
        "a shared library with an undefined symbol must link:\n{stderr}"
    );
    let syms = run_step(
        Command::new("readelf")
            .args(["--dyn-syms", "-W"])
            .arg(tmp.join("libx.so")),
    );
    assert!(
        syms.stdout_text()
            .lines()
            .any(|l| l.contains("UND") && l.contains("missing_in_lib")),
        "the undefined symbol must be a dynamic import:\n{}",
        syms.stdout_text()
    );
}

#[test]
fn no_undefined_refuses_it() {
    let tmp = TempDir::new("shared-undefined-refused");
    write(&tmp, "lib.c", LIB);
    let (ok, stderr) = link(
        &tmp,
        &[
            "-shared",
            "-fPIC",
            "-Wl,--no-undefined",
            "lib.c",
            "-o",
            "libx.so",
        ],
    );
    assert!(!ok, "--no-undefined must refuse an undefined symbol");
    assert!(
        stderr.contains("missing_in_lib"),
        "the error must name the symbol:\n{stderr}"
    );
    assert!(
        !tmp.join("libx.so").exists(),
        "a failed link left its output"
    );
}

#[test]
fn executable_needs_what_its_library_lacks() {
    let tmp = TempDir::new("shared-undefined-exe");
    write(&tmp, "lib.c", LIB);
    write(
        &tmp,
        "main.c",
        "int lib_fn(void);\nint main(void) { return lib_fn(); }\n",
    );
    let (ok, stderr) = link(&tmp, &["-shared", "-fPIC", "lib.c", "-o", "libx.so"]);
    assert!(ok, "{stderr}");
    let (ok, stderr) = link(&tmp, &["main.c", "-L.", "-lx", "-o", "main"]);
    assert!(
        !ok,
        "GNU ld refuses an executable whose library needs an undefined symbol"
    );
    assert!(
        stderr.contains("missing_in_lib"),
        "the error must name the symbol:\n{stderr}"
    );
    if LinkerUnderTest::get().is_weld {
        assert!(
            stderr.contains("weld: error: undefined symbol: missing_in_lib")
                && stderr.contains(">>> referenced by ./libx.so"),
            "unexpected message:\n{stderr}"
        );
    }
    assert!(!tmp.join("main").exists(), "a failed link left its output");
    // Defining the symbol in the executable makes the link work, and the library binds to it.
    write(
        &tmp,
        "main2.c",
        "int lib_fn(void);\nint missing_in_lib(void) { return 41; }\n\
         int main(void) { return lib_fn(); }\n",
    );
    let (ok, stderr) = link(
        &tmp,
        &["main2.c", "-L.", "-lx", "-Wl,-rpath,.", "-o", "main2"],
    );
    assert!(ok, "{stderr}");
    let status = Command::new(tmp.join("main2"))
        .current_dir(tmp.path())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(42));
}

/// DT_NEEDED of a library without DT_SONAME, as GNU ld records it: the path as written when
/// the library is named directly (`cc -o dir/exe dir/main.o dir/c.so` runs from the build
/// directory), the file name when `-l` found it. Compared with GNU ld's output, and run.
#[test]
fn needed_name_of_a_library_without_soname() {
    let tmp = TempDir::new("shared-needed-no-soname");
    std::fs::create_dir(tmp.join("dir")).unwrap();
    write(&tmp, "dir/c.c", "int c(void) { return 42; }\n");
    write(
        &tmp,
        "dir/main.c",
        "int c(void);\nint main(void) { return c() == 42 ? 0 : 1; }\n",
    );
    run_step(
        Command::new("gcc")
            .args(["-fPIC", "-shared", "-o", "dir/c.so", "dir/c.c"])
            .current_dir(tmp.path()),
    );
    std::fs::copy(tmp.join("dir/c.so"), tmp.join("dir/libcee.so")).unwrap();
    run_step(
        Command::new("gcc")
            .args(["-c", "-o", "dir/main.o", "dir/main.c"])
            .current_dir(tmp.path()),
    );
    let needed = |exe: &str| -> Vec<String> {
        let out = run_step(
            Command::new("readelf")
                .args(["-dW", exe])
                .current_dir(tmp.path()),
        );
        out.stdout_text()
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .map(|l| {
                l.rsplit('[')
                    .next()
                    .unwrap()
                    .trim_end_matches(']')
                    .to_string()
            })
            .collect()
    };
    for (inputs, expected) in [
        (&["dir/main.o", "dir/c.so"][..], "dir/c.so"),
        (&["dir/main.o", "./dir/c.so"], "./dir/c.so"),
        (&["dir/main.o", "-Ldir", "-lcee"], "libcee.so"),
    ] {
        let mut args = vec!["-o", "dir/exe"];
        args.extend(inputs);
        let (ok, stderr) = link(&tmp, &args);
        assert!(ok, "{inputs:?}: {stderr}");
        let ours = needed("dir/exe");
        run_step(
            Command::new("gcc")
                .args(["-o", "dir/reference"])
                .args(inputs)
                .current_dir(tmp.path()),
        );
        assert_eq!(ours, needed("dir/reference"), "{inputs:?}");
        assert_eq!(ours[0], expected);
        if expected != "libcee.so" {
            // Found from the directory the link ran in.
            let status = Command::new("dir/exe")
                .current_dir(tmp.path())
                .status()
                .unwrap();
            assert!(status.success(), "{inputs:?}: the program failed: {status}");
        }
    }
}
