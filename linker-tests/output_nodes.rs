//! Outputs that are not new regular files: a character device (what /dev/null is), a FIFO
//! being read, a symbolic link, /dev/null itself, a file in a directory the linking user
//! cannot write; and a link stopped by a signal. weld must write each as GNU ld does and
//! never remove or replace a node it did not create.
//!
//! These tests make device nodes with mknod, so they run as root (as CI does); as another
//! user they fail saying so rather than pass without checking anything.

use crate::harness::{run, run_step, write_ld_wrapper, LinkerUnderTest, Outcome, TempDir};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const HELLO: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from the output\"); return 0; }\n";
const UNDEFINED: &str = "int missing(void);\nint main(void) { return missing(); }\n";

/// A directory with `hello.o`, `undefined.o` and an `ld` wrapper for gcc's `-B`.
fn setup(label: &str) -> TempDir {
    let tmp = TempDir::new(label);
    for (name, source) in [("hello.c", HELLO), ("undefined.c", UNDEFINED)] {
        std::fs::write(tmp.join(name), source).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", name])
                .current_dir(tmp.path()),
        );
    }
    write_ld_wrapper(&tmp.join("ld"), &LinkerUnderTest::get().path);
    tmp
}

/// Links `object` into `out` with gcc through the linker under test; `env` is added to the
/// linker's environment.
fn link(tmp: &TempDir, object: &str, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new("gcc");
    cmd.arg(format!("-B{}/", tmp.join("ld").display()))
        .arg(object)
        .arg("-o")
        .arg(out)
        .args(extra)
        .current_dir(tmp.path());
    for (key, value) in env {
        cmd.env(key, value);
    }
    run(&mut cmd, b"", Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"))
}

fn must_link(tmp: &TempDir, object: &str, out: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let outcome = link(tmp, object, out, extra, env);
    assert!(
        outcome.status.success(),
        "link into {} failed:\n{}",
        out.display(),
        outcome.describe()
    );
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `mknod path c 1 3`: a character device like /dev/null.
fn make_null_device(path: &Path) {
    assert!(
        is_root(),
        "this test makes a device node with mknod and must run as root (CI does)"
    );
    run_step(Command::new("mknod").arg(path).args(["c", "1", "3"]));
}

fn assert_null_device(path: &Path, what: &str) {
    let meta = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{what}: {} is gone: {e}", path.display()));
    assert!(
        meta.file_type().is_char_device() && meta.rdev() == libc_makedev(1, 3),
        "{what}: {} is no longer the character device 1,3 ({:?})",
        path.display(),
        meta.file_type()
    );
}

/// Linux's encoding of a device number (major 1, minor 3 is 0x103).
fn libc_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// Files weld left in `dir` that nobody asked for: temporary files and state.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".weld-"))
        .collect()
}

#[test]
fn character_device_output_stays_a_device() {
    let tmp = setup("output-node-device");
    let device = tmp.join("null");
    make_null_device(&device);
    must_link(&tmp, "hello.o", &device, &[], &[]);
    assert_null_device(&device, "after a link");
    // Incremental mode is off for it: no state, lock or second name next to a device.
    must_link(&tmp, "hello.o", &device, &[], &[("WELD_INCREMENTAL", "1")]);
    assert_null_device(&device, "after an incremental link");
    must_link(&tmp, "hello.o", &device, &["-static"], &[]);
    assert_null_device(&device, "after a static link");
    must_link(&tmp, "hello.o", &device, &["-r", "-nostdlib"], &[]);
    assert_null_device(&device, "after a relocatable link");
    // A failed link removes its output, unless the output is not a regular file.
    let failed = link(&tmp, "undefined.o", &device, &[], &[]);
    assert!(!failed.status.success(), "an undefined symbol linked");
    assert_null_device(&device, "after a failed link");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

#[test]
fn fifo_output_being_read_receives_the_program() {
    let tmp = setup("output-node-fifo");
    let regular = tmp.join("regular");
    must_link(&tmp, "hello.o", &regular, &[], &[]);
    let fifo = tmp.join("fifo");
    run_step(Command::new("mkfifo").arg(&fifo));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let outcome = link(&tmp, "hello.o", &fifo, &[], &[]);
    // (A reader left blocked on a FIFO that was renamed over is never joined.)
    let meta = std::fs::symlink_metadata(&fifo).expect("the FIFO is gone");
    assert!(
        meta.file_type().is_fifo(),
        "the FIFO was replaced by a {:?}",
        meta.file_type()
    );
    if !outcome.status.success() {
        // Unblock a reader still waiting for a writer (none if the linker opened the FIFO).
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
    }
    let received = reader.join().unwrap();
    if !LinkerUnderTest::get().is_weld {
        // GNU ld 2.40 fails here ("final link failed: Illegal seek"); weld streams.
        return;
    }
    assert!(outcome.status.success(), "{}", outcome.describe());
    assert!(
        received == std::fs::read(&regular).unwrap(),
        "what the FIFO's reader got ({} bytes) is not the program a regular output holds",
        received.len()
    );
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

/// What GNU ld does with a symbolic link as its output (binutils 2.40): a link to a
/// non-empty file is replaced by the new output and its target left alone; a link to an
/// empty file or to nothing is written through; a failed link removes the link.
#[test]
fn symlinked_output_as_gnu_ld() {
    let tmp = setup("output-node-symlink");
    let run_prints_hello = |path: &Path| {
        let run = Command::new(path).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            "hello from the output\n",
            "{} does not run the new program",
            path.display()
        );
    };
    let is_symlink =
        |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    // A link to someone's program: replaced, the program kept.
    let target = tmp.join("elsewhere.exe");
    std::fs::write(&target, b"someone else's bytes").unwrap();
    let replaced = tmp.join("prog");
    std::os::unix::fs::symlink("elsewhere.exe", &replaced).unwrap();
    must_link(&tmp, "hello.o", &replaced, &[], &[]);
    assert!(
        !is_symlink(&replaced),
        "the link to a non-empty file is still a link"
    );
    run_prints_hello(&replaced);
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's bytes");
    // The same with an incremental link, whose state goes next to the new file.
    std::fs::remove_file(&replaced).unwrap();
    std::os::unix::fs::symlink("elsewhere.exe", &replaced).unwrap();
    must_link(
        &tmp,
        "hello.o",
        &replaced,
        &[],
        &[("WELD_INCREMENTAL", "1")],
    );
    assert!(!is_symlink(&replaced));
    run_prints_hello(&replaced);
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's bytes");
    // A link to an empty file: written through.
    let empty = tmp.join("empty.exe");
    std::fs::write(&empty, b"").unwrap();
    let through = tmp.join("through");
    std::os::unix::fs::symlink("empty.exe", &through).unwrap();
    must_link(&tmp, "hello.o", &through, &[], &[]);
    assert!(
        is_symlink(&through),
        "the link to an empty file was replaced"
    );
    run_prints_hello(&empty);
    // A dangling link: the file it names is created.
    let dangling = tmp.join("dangling");
    std::os::unix::fs::symlink("sub/created.exe", &dangling).unwrap();
    std::fs::create_dir(tmp.join("sub")).unwrap();
    must_link(&tmp, "hello.o", &dangling, &[], &[]);
    assert!(is_symlink(&dangling));
    run_prints_hello(&tmp.join("sub/created.exe"));
    // A failed link removes the link it would have replaced, not the link's target.
    let failing = tmp.join("failing");
    std::os::unix::fs::symlink("elsewhere.exe", &failing).unwrap();
    let failed = link(&tmp, "undefined.o", &failing, &[], &[]);
    assert!(!failed.status.success());
    assert!(
        std::fs::symlink_metadata(&failing).is_err(),
        "a failed link left its output"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's bytes");
}

/// `-o /dev/null`, common in configure scripts and compiler probes: /dev/null must still be
/// the null device after it. If it is not, the test makes it again before failing.
#[test]
fn dev_null_output_stays_the_null_device() {
    let null = Path::new("/dev/null");
    let meta = std::fs::symlink_metadata(null).expect("this machine has no /dev/null");
    assert!(
        meta.file_type().is_char_device() && meta.rdev() == libc_makedev(1, 3),
        "/dev/null is not the null device before the test: nothing to check"
    );
    let tmp = setup("output-node-dev-null");
    let outcomes = [
        link(&tmp, "hello.o", null, &[], &[]),
        link(&tmp, "hello.o", null, &[], &[("WELD_INCREMENTAL", "1")]),
        link(&tmp, "undefined.o", null, &[], &[]),
    ];
    let still = std::fs::symlink_metadata(null)
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == libc_makedev(1, 3));
    if !still {
        let _ = std::fs::remove_file(null);
        run_step(Command::new("mknod").args(["-m", "666", "/dev/null", "c", "1", "3"]));
        panic!("linking -o /dev/null replaced the null device (made again)");
    }
    assert!(outcomes[0].status.success(), "{}", outcomes[0].describe());
    assert!(outcomes[1].status.success(), "{}", outcomes[1].describe());
    assert!(!outcomes[2].status.success());
    assert!(!Path::new("/dev/null.weld-state").exists());
    assert!(!Path::new("/dev/null.weld-lock").exists());
}

/// A signal that ends the link removes the temporary output weld was writing.
#[test]
fn fatal_signal_removes_temporary_files() {
    if !LinkerUnderTest::get().is_weld {
        return; // WELD_TEST_PAUSE_AT is weld's.
    }
    for signal in ["INT", "TERM"] {
        let tmp = setup(&format!("output-node-signal-{signal}"));
        let out = tmp.join("prog");
        std::fs::write(&out, b"an old output").unwrap();
        let child = Command::new("gcc")
            .arg(format!("-B{}/", tmp.join("ld").display()))
            .args(["hello.o", "-o", "prog"])
            .env("WELD_TEST_PAUSE_AT", "output")
            .current_dir(tmp.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = temporary_output_pid(&tmp);
        let number = if signal == "INT" {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        // SAFETY: kill(2) with a process id read from weld's temporary file name.
        let sent = unsafe { libc::kill(pid.parse().unwrap(), number) };
        assert_eq!(sent, 0, "cannot signal weld");
        let outcome = child.wait_with_output().unwrap();
        assert!(!outcome.status.success(), "a killed link succeeded");
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        assert!(
            stderr.contains("signal"),
            "collect2 does not report the signal: {stderr}"
        );
        assert_eq!(
            leftovers(tmp.path()),
            Vec::<String>::new(),
            "SIG{signal} left temporary files"
        );
    }
}

/// The process id in the name of weld's temporary output `.prog.weld-tmp-<pid>`, once the
/// file exists.
fn temporary_output_pid(tmp: &TempDir) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = leftovers(tmp.path()).into_iter().find_map(|name| {
            name.strip_prefix(".prog.weld-tmp-")
                .map(|pid| pid.to_string())
        });
        if let Some(pid) = found {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "weld made no temporary output"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A signal that comes between the temporary file's creation and its registration for
/// removal (held open there by WELD_TEST_PAUSE_AT=temp-gap) still removes it: the creating
/// thread blocks the signal meanwhile, a handler on another thread waits for the gap to end.
#[test]
fn fatal_signal_in_the_creation_gap_removes_the_file() {
    if !LinkerUnderTest::get().is_weld {
        return; // WELD_TEST_PAUSE_AT is weld's.
    }
    let tmp = setup("output-node-signal-gap");
    let child = Command::new("gcc")
        .arg(format!("-B{}/", tmp.join("ld").display()))
        .args(["hello.o", "-o", "prog"])
        .env("WELD_TEST_PAUSE_AT", "temp-gap")
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = temporary_output_pid(&tmp);
    // SAFETY: kill(2) with a process id read from weld's temporary file name.
    let sent = unsafe { libc::kill(pid.parse().unwrap(), libc::SIGINT) };
    assert_eq!(sent, 0, "cannot signal weld");
    let outcome = child.wait_with_output().unwrap();
    assert!(!outcome.status.success(), "a killed link succeeded");
    assert!(
        String::from_utf8_lossy(&outcome.stderr).contains("signal"),
        "collect2 does not report the signal"
    );
    assert_eq!(
        leftovers(tmp.path()),
        Vec::<String>::new(),
        "a signal in the gap left the temporary file"
    );
}

/// A file the user may write in a directory they may not: written in place, as GNU ld
/// does (it cannot make a temporary file there).
#[test]
fn output_in_an_unwritable_directory_is_written_in_place() {
    let tmp = setup("output-node-readonly-dir");
    let expected = tmp.join("expected.o");
    let linker = LinkerUnderTest::get().path;
    run_step(
        Command::new(&linker)
            .args(["-r", "-o"])
            .arg(&expected)
            .arg(tmp.join("hello.o")),
    );
    use std::os::unix::fs::PermissionsExt;
    // Root writes anywhere: as root, link as nobody instead, who owns the file, not the
    // directory. Nobody must reach the linker and the input: a directory under /tmp holds
    // copies (the checkout may be under a private home, as /root is).
    let shared = std::env::temp_dir().join(format!("weld-readonly-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shared);
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (linker_copy, input) = (shared.join("linker"), shared.join("hello.o"));
    std::fs::copy(&linker, &linker_copy).unwrap();
    std::fs::copy(tmp.join("hello.o"), &input).unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = shared.join("locked");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("out.o");
    std::fs::write(&out, b"old").unwrap();
    let mut cmd;
    if is_root() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&linker_copy);
    } else {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        cmd = Command::new(&linker_copy);
    }
    cmd.args(["-r", "-o"]).arg(&out).arg(&input);
    let outcome = run(&mut cmd, b"", Duration::from_secs(60)).unwrap();
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    let written = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&shared);
    assert!(outcome.status.success(), "{}", outcome.describe());
    assert!(
        written == std::fs::read(&expected).unwrap(),
        "the output written in place differs from a new one"
    );
}
