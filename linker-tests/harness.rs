//! Compiles a fixture, links it with the linker under test and with GNU ld, runs both
//! executables and compares what they do.
//!
//! Also home to the small tools the bad-input tests share: temporary directories, the linker
//! under test, and running a command with captured output. Knows nothing about directive
//! syntax (that is `directives`) nor about which fixtures exist (that is `main`).

use crate::directives::{fixtures_dir, is_cxx_source, placeholder, Fixture, Mode};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a linked program may run before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The linker being tested: weld, unless `WELD_TEST_LINKER` names another one.
pub struct LinkerUnderTest {
    pub path: PathBuf,
    /// False when `WELD_TEST_LINKER` overrides weld: checks of weld's own wording are skipped.
    pub is_weld: bool,
}

impl LinkerUnderTest {
    pub fn get() -> LinkerUnderTest {
        match std::env::var_os("WELD_TEST_LINKER") {
            Some(path) if !path.is_empty() => LinkerUnderTest {
                path: PathBuf::from(path),
                is_weld: false,
            },
            _ => LinkerUnderTest {
                path: PathBuf::from(env!("CARGO_BIN_EXE_weld")),
                is_weld: true,
            },
        }
    }
}

/// A per-test directory under `$CARGO_TARGET_TMPDIR/linker-tests/`. It is emptied when created
/// and removed when dropped, unless the test is failing (or `WELD_TEST_KEEP` is set), in which
/// case it is kept for inspection and its path printed.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("linker-tests")
            .join(label);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .unwrap_or_else(|err| panic!("cannot empty {}: {err}", path.display()));
        }
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("WELD_TEST_KEEP").is_some() {
            eprintln!("kept test directory {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// What a finished process did.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Status and both outputs, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

/// `cmd` as a shell-like line, for failure messages.
pub fn command_line(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` to completion with `stdin` as its input, capturing its output. Kills it after
/// `timeout`. Fails if it cannot be started or times out.
pub fn run(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Result<Outcome, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run `{}`: {err}", command_line(cmd)))?;
    let mut child_stdin = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // A program that ignores its input may exit before reading it: a write error is fine.
    let stdin_writer = std::thread::spawn(move || {
        let _ = child_stdin.write_all(&stdin);
    });
    let stdout_reader = read_in_background(child.stdout.take().unwrap());
    let stderr_reader = read_in_background(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{}` did not finish within {timeout:?}",
                command_line(cmd)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stdin_writer.join().unwrap();
    Ok(Outcome {
        status,
        stdout: stdout_reader.join().unwrap(),
        stderr: stderr_reader.join().unwrap(),
    })
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A test directory with a `-B` directory (`wrapper`) whose `ld` is the linker under test,
/// for [`gcc_through`].
pub fn temp_dir_with_wrapper(name: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(name);
    let wrapper = tmp.join("wrapper");
    write_ld_wrapper(&wrapper, &LinkerUnderTest::get().path);
    (tmp, wrapper)
}

/// `gcc` that links through the linker under test (`wrapper`: its `-B` directory, see
/// [`write_ld_wrapper`]) when `tested`, through GNU ld otherwise.
pub fn gcc_through(tested: bool, wrapper: &Path) -> Command {
    let mut cmd = Command::new("gcc");
    if tested {
        cmd.arg(format!("-B{}/", wrapper.display()));
    }
    cmd
}

/// Runs a linked program (20 s at most) and panics with its output unless it succeeds.
pub fn run_program(cmd: &mut Command) -> Outcome {
    let out = run(cmd, b"", Duration::from_secs(20)).unwrap_or_else(|err| panic!("{err}"));
    assert!(
        out.status.success(),
        "{}: {}",
        command_line(cmd),
        out.describe()
    );
    out
}

/// Runs a build step (compiler, `ar`, a link) and panics with its output if it fails.
pub fn run_step(cmd: &mut Command) -> Outcome {
    let outcome = run(cmd, b"", RUN_TIMEOUT).unwrap_or_else(|err| panic!("{err}"));
    if !outcome.status.success() {
        panic!(
            "build step failed: {}\n{}",
            command_line(cmd),
            outcome.describe()
        );
    }
    outcome
}

/// Compiles `fixtures/<source>` to `<out_dir>/<source>.o` with `args`, using `g++` for C++
/// and `gcc` for everything else (C and assembly).
pub fn compile(source: &str, args: &[String], out_dir: &Path) -> PathBuf {
    let driver = if is_cxx_source(source) { "g++" } else { "gcc" };
    let object = out_dir.join(format!("{source}.o"));
    run_step(
        Command::new(driver)
            .arg("-c")
            .arg(fixtures_dir().join(source))
            .arg("-o")
            .arg(&object)
            .args(args),
    );
    object
}

/// Writes `<dir>/ld`: a script that appends its arguments to `<dir>/ld.log` and then runs
/// `linker`. Passing `-B<dir>/` to gcc makes collect2 run it instead of the system `ld`, and
/// the log proves that it did.
pub fn write_ld_wrapper(dir: &Path, linker: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("ld.log");
    let script = format!(
        "#!/bin/sh\n\
         # Written by linker-tests: log the invocation, then run the linker under test.\n\
         printf '%s\\n' \"$*\" >> {}\n\
         exec {} \"$@\"\n",
        shell_quote(&log),
        shell_quote(linker)
    );
    let wrapper = dir.join("ld");
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// A mode a fixture does not list (`//#Modes`) is one its program is not run in: usually its
/// code cannot be linked so (absolute 32-bit relocations in a PIE, a shared library in a
/// static link). Both linkers must give the same verdict, and a refusal must say why.
fn check_refused(fixture: &Fixture, file_name: &str, mode: Mode, tmp: &TempDir) {
    let link_inputs = build_link_inputs(fixture, tmp);
    let driver = if fixture.is_cxx() { "g++" } else { "gcc" };
    let linker = LinkerUnderTest::get();
    let wrapper_dir = tmp.join("linker-under-test");
    write_ld_wrapper(&wrapper_dir, &linker.path);
    let mut test_link = Command::new(driver);
    test_link
        .arg(mode.driver_flag())
        .arg(format!("-B{}/", wrapper_dir.display()))
        .arg("-o")
        .arg(tmp.join("test.exe"))
        .args(&link_inputs);
    let mut ref_link = Command::new(driver);
    ref_link
        .arg(mode.driver_flag())
        .arg("-o")
        .arg(tmp.join("reference.exe"))
        .args(&link_inputs);
    test_link.args(build_shared_libs(fixture, tmp, "libs-under-test", Some(&wrapper_dir)).0);
    ref_link.args(build_shared_libs(fixture, tmp, "libs-reference", None).0);
    let reference = run(&mut ref_link, b"", RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let tested = run(&mut test_link, b"", RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let stderr = tested.stderr_text();
    assert!(
        !stderr.contains("panicked"),
        "the linker panicked:\n{stderr}"
    );
    if reference.status.success() {
        // GNU ld links it (e.g. dlopen in a static program, with a warning); so must weld.
        assert!(
            tested.status.success(),
            "{file_name} in {mode} mode: GNU ld links this, the linker under test refused:\n{stderr}"
        );
        return;
    }
    assert!(
        !tested.status.success(),
        "{file_name} in {mode} mode: GNU ld refuses this link, the linker under test accepted it"
    );
    if linker.is_weld {
        assert!(
            stderr.contains("weld: error:"),
            "{file_name} in {mode} mode: refused without a weld error message:\n{stderr}"
        );
    }
    assert!(
        !tmp.join("test.exe").exists(),
        "a refused link left an output file"
    );
}

/// The test for one fixture in one mode: the entry point of every generated fixture test.
pub fn check_fixture(file_name: &str, mode: Mode) {
    let fixture = Fixture::load(file_name);
    let tmp = TempDir::new(&format!("{file_name}-{mode}"));
    if !fixture.modes.contains(&mode) {
        check_refused(&fixture, file_name, mode, &tmp);
        return;
    }

    let link_inputs = build_link_inputs(&fixture, &tmp);

    let driver = if fixture.is_cxx() { "g++" } else { "gcc" };
    let linker = LinkerUnderTest::get();
    let wrapper_dir = tmp.join("linker-under-test");
    let wrapper_log = write_ld_wrapper(&wrapper_dir, &linker.path);
    let test_exe = tmp.join("test.exe");
    let ref_exe = tmp.join("reference.exe");
    let mut test_link = Command::new(driver);
    test_link
        .arg(mode.driver_flag())
        .arg(format!("-B{}/", wrapper_dir.display()))
        .arg("-o")
        .arg(&test_exe)
        .args(&link_inputs);
    let mut ref_link = Command::new(driver);
    ref_link
        .arg(mode.driver_flag())
        .arg("-o")
        .arg(&ref_exe)
        .args(&link_inputs);

    let (test_libs, test_lib_dir) =
        build_shared_libs(&fixture, &tmp, "libs-under-test", Some(&wrapper_dir));
    let (ref_libs, ref_lib_dir) = build_shared_libs(&fixture, &tmp, "libs-reference", None);
    test_link.args(&test_libs);
    ref_link.args(&ref_libs);
    let ref_link_outcome = run_step(&mut ref_link);
    let test_link_outcome = run(&mut test_link, b"", RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::new(file_name, mode, &test_link, &ref_link, &test_link_outcome);
    report.context(format!(
        "reference link stderr:\n{}",
        ref_link_outcome.stderr_text()
    ));
    if !test_link_outcome.status.success() {
        report.fail("the link with the linker under test failed");
    }
    if !std::fs::metadata(&wrapper_log).is_ok_and(|meta| meta.len() > 0) {
        report.fail(&format!(
            "the linker under test never ran: the compiler driver did not use {}/ld",
            wrapper_dir.display()
        ));
    }
    if !test_exe.exists() {
        report.fail("the link with the linker under test succeeded but wrote no executable");
    }

    // Dynamic objects: what readelf shows of their dynamic linking must match GNU ld's.
    if matches!(mode, Mode::Pie | Mode::NoPie) && test_link_outcome.status.success() {
        let mut pairs = vec![(test_exe.clone(), ref_exe.clone())];
        for lib in fixture.shared_libs.iter().chain(&fixture.plugins) {
            pairs.push((test_lib_dir.join(&lib.name), ref_lib_dir.join(&lib.name)));
        }
        for (tested, reference) in pairs {
            let (t, r) = (
                dynamic_summary(&tested, &test_lib_dir),
                dynamic_summary(&reference, &ref_lib_dir),
            );
            if t != r {
                report.fail(&format!(
                    "readelf -d/--dyn-syms of {} differ from GNU ld's:\n  weld: {t:?}\n  GNU:  {r:?}",
                    tested.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }

    // The program's `.note.gnu.property` (CET marking, ISA level) and its PT_GNU_PROPERTY
    // must say what GNU ld's say, in every mode.
    if test_link_outcome.status.success() {
        let mut pairs = vec![(test_exe.clone(), ref_exe.clone())];
        for lib in fixture.shared_libs.iter().chain(&fixture.plugins) {
            pairs.push((test_lib_dir.join(&lib.name), ref_lib_dir.join(&lib.name)));
        }
        for (tested, reference) in pairs {
            let (t, r) = (property_summary(&tested), property_summary(&reference));
            if t != r {
                report.fail(&format!(
                    "the property notes of {} differ from GNU ld's:\n  weld: {t:?}\n  GNU:  {r:?}",
                    tested.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }

    // ldd must list the same libraries (by name) for both programs.
    if matches!(mode, Mode::Pie | Mode::NoPie) && test_link_outcome.status.success() {
        let ldd_names = |exe: &Path| -> Vec<String> {
            let out = run_step(Command::new("ldd").arg(exe)).stdout_text();
            out.lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .map(|n| n.rsplit('/').next().unwrap_or(&n).to_owned())
                .collect()
        };
        let (t, r) = (ldd_names(&test_exe), ldd_names(&ref_exe));
        if t != r {
            report.fail(&format!(
                "ldd lists different libraries:\n  weld: {t:?}\n  GNU:  {r:?}"
            ));
        }
    }

    let run_program_with = |exe: &Path, bind_now: bool| {
        let lib_dir = if exe == test_exe {
            &test_lib_dir
        } else {
            &ref_lib_dir
        };
        let args = fixture.run_args.iter().map(|arg| match placeholder(arg) {
            Some(name) => lib_dir.join(name).into_os_string(),
            None => arg.into(),
        });
        let mut cmd = Command::new(exe);
        cmd.args(args).current_dir(tmp.path());
        if bind_now {
            cmd.env("LD_BIND_NOW", "1");
        }
        run(&mut cmd, fixture.stdin.as_bytes(), RUN_TIMEOUT)
    };
    let run_program = |exe: &Path| run_program_with(exe, false);
    let reference = run_program(&ref_exe).unwrap_or_else(|err| {
        panic!("fixture bug: the program linked by GNU ld misbehaves: {err}")
    });
    let tested = match run_program(&test_exe) {
        Ok(outcome) => outcome,
        Err(err) => report.fail(&err),
    };
    report.context(format!("reference program: {}", reference.describe()));
    report.context(format!("tested program: {}", tested.describe()));
    let mut differences = Vec::new();
    if tested.status != reference.status {
        differences.push(format!("status {} vs {}", tested.status, reference.status));
    }
    for (stream, tested_bytes, reference_bytes) in [
        ("stdout", &tested.stdout, &reference.stdout),
        ("stderr", &tested.stderr, &reference.stderr),
    ] {
        if tested_bytes != reference_bytes {
            differences.push(first_difference(stream, tested_bytes, reference_bytes));
        }
    }
    // Dynamic programs: eager binding (LD_BIND_NOW=1) must behave as lazy binding did.
    if matches!(mode, Mode::Pie | Mode::NoPie) {
        match run_program_with(&test_exe, true) {
            Ok(now) if now.stdout == tested.stdout && now.status == tested.status => {}
            Ok(now) => differences.push(format!(
                "with LD_BIND_NOW=1 the tested program behaves differently: {}",
                now.describe()
            )),
            Err(err) => differences.push(format!("with LD_BIND_NOW=1: {err}")),
        }
    }
    if !differences.is_empty() {
        report.fail(&format!(
            "the programs behave differently (tested vs reference):\n{}",
            differences.join("\n")
        ));
    }

    // Symbol checks apply to the reference too, so a fixture whose expectations are wrong is
    // caught even while WELD_TEST_LINKER stands in for weld.
    for (exe, which) in [(&ref_exe, "reference (GNU ld)"), (&test_exe, "tested")] {
        let symbols = defined_symbols(exe);
        for name in &fixture.expect_syms {
            if !symbols.contains(name) {
                report.fail(&format!(
                    "{which} executable lacks symbol `{name}` (//#ExpectSym)"
                ));
            }
        }
        for name in &fixture.no_syms {
            if symbols.contains(name) {
                report.fail(&format!(
                    "{which} executable has symbol `{name}` (//#NoSym)"
                ));
            }
        }
    }
}

/// Compiles the fixture's sources and builds its archives in `tmp`, once for both links, and
/// returns the link arguments: objects, archives the link args do not place, then link args
/// with `{archive}` expanded.
pub fn build_link_inputs(fixture: &Fixture, tmp: &TempDir) -> Vec<OsString> {
    let obj_dir = tmp.join("obj");
    std::fs::create_dir_all(&obj_dir).unwrap();
    let mut objects: Vec<PathBuf> = std::iter::once(&fixture.main_source)
        .chain(&fixture.files)
        .map(|source| compile(source, &fixture.compile_args, &obj_dir))
        .collect();
    let mut archive_paths = Vec::new();
    for archive in &fixture.archives {
        let archive_path = tmp.join(&archive.name);
        let member_dir = tmp.join(format!("{}.members", archive.name));
        std::fs::create_dir_all(&member_dir).unwrap();
        let members: Vec<PathBuf> = archive
            .members
            .iter()
            .map(|source| compile(source, &fixture.compile_args, &member_dir))
            .collect();
        run_step(
            Command::new("ar")
                .arg("rcs")
                .arg(&archive_path)
                .args(&members),
        );
        if !fixture.places_archive(&archive.name) {
            objects.push(archive_path.clone());
        }
        archive_paths.push((archive.name.as_str(), archive_path));
    }
    let mut link_inputs: Vec<OsString> = objects.into_iter().map(Into::into).collect();
    for arg in &fixture.link_args {
        match placeholder(arg) {
            Some(name) => {
                let (_, path) = archive_paths.iter().find(|(n, _)| *n == name).unwrap();
                link_inputs.push(path.into());
            }
            None => link_inputs.push(
                arg.replace("{fixtures}", &fixtures_dir().to_string_lossy())
                    .into(),
            ),
        }
    }
    link_inputs
}

/// Builds the fixture's shared libraries and plugins into `<tmp>/<label>/`, with the linker
/// whose wrapper is in `bin_dir` (GNU ld when `None`). Returns the link arguments that use the
/// libraries and the directory holding them.
pub fn build_shared_libs(
    fixture: &Fixture,
    tmp: &TempDir,
    label: &str,
    bin_dir: Option<&Path>,
) -> (Vec<OsString>, PathBuf) {
    let lib_dir = tmp.join(label);
    std::fs::create_dir_all(&lib_dir).unwrap();
    let obj_dir = tmp.join("so-obj");
    std::fs::create_dir_all(&obj_dir).unwrap();
    let mut compile_args = fixture.compile_args.clone();
    compile_args.push("-fPIC".to_owned());
    let link_args: Vec<String> = fixture
        .shared_link_args
        .iter()
        .map(|arg| arg.replace("{fixtures}", &fixtures_dir().to_string_lossy()))
        .collect();
    let mut args = Vec::new();
    for (lib, linked) in fixture
        .shared_libs
        .iter()
        .map(|l| (l, true))
        .chain(fixture.plugins.iter().map(|l| (l, false)))
    {
        let objects: Vec<PathBuf> = lib
            .members
            .iter()
            .map(|source| compile(source, &compile_args, &obj_dir))
            .collect();
        let driver = if lib.members.iter().any(|m| is_cxx_source(m)) {
            "g++"
        } else {
            "gcc"
        };
        let mut cmd = Command::new(driver);
        cmd.arg("-shared");
        if let Some(dir) = bin_dir {
            cmd.arg(format!("-B{}/", dir.display()));
        }
        cmd.arg("-o")
            .arg(lib_dir.join(&lib.name))
            .args(&objects)
            .args(&link_args);
        run_step(&mut cmd);
        if linked {
            let stem = lib.name.trim_start_matches("lib").trim_end_matches(".so");
            args.push(format!("-L{}", lib_dir.display()).into());
            args.push(format!("-l{stem}").into());
            args.push(format!("-Wl,-rpath,{}", lib_dir.display()).into());
        }
    }
    (args, lib_dir)
}

/// Describes the first line where two outputs differ.
fn first_difference(stream: &str, tested: &[u8], reference: &[u8]) -> String {
    let tested = String::from_utf8_lossy(tested);
    let reference = String::from_utf8_lossy(reference);
    let mut tested_lines = tested.lines();
    let mut reference_lines = reference.lines();
    for line_number in 1.. {
        let (tested_line, reference_line) = (tested_lines.next(), reference_lines.next());
        if tested_line != reference_line {
            return format!(
                "{stream} line {line_number}: {:?} vs {:?}",
                tested_line.unwrap_or("<end>"),
                reference_line.unwrap_or("<end>")
            );
        }
        if tested_line.is_none() {
            break;
        }
    }
    format!("{stream} differs (line endings)")
}

/// Names of the symbols `nm` lists for `exe`.
fn defined_symbols(exe: &Path) -> Vec<String> {
    let outcome = run_step(Command::new("nm").arg(exe));
    outcome
        .stdout_text()
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// Collects what a failure message should show.
struct Report {
    text: String,
}

impl Report {
    fn new(
        file_name: &str,
        mode: Mode,
        test_link: &Command,
        ref_link: &Command,
        test_link_outcome: &Outcome,
    ) -> Report {
        let mut text = String::new();
        let _ = write!(
            text,
            "fixture {file_name}, {mode} mode\n\
             link under test: {}\n\
             reference link:  {}\n\
             output of the link under test: {}\n",
            command_line(test_link),
            command_line(ref_link),
            test_link_outcome.describe()
        );
        Report { text }
    }

    fn context(&mut self, text: String) {
        self.text.push_str(&text);
        self.text.push('\n');
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n\n{}", self.text);
    }
}

/// What `readelf` says about a dynamic object that must match between weld and GNU ld:
/// needed libraries in order, soname, run path, flags, and the exported symbols with their
/// versions.
#[derive(Debug, PartialEq, Eq)]
pub struct DynamicSummary {
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub runpath: Option<String>,
    pub flags: Vec<String>,
    pub exports: std::collections::BTreeSet<String>,
}

/// What `readelf -n` shows of `file`'s `.note.gnu.property`, and the alignment and size of
/// its PT_GNU_PROPERTY segment.
pub fn property_summary(file: &Path) -> (Vec<String>, Option<String>) {
    let notes = run_step(Command::new("readelf").arg("-nW").arg(file)).stdout_text();
    let properties = notes
        .split("Displaying notes found in: ")
        .filter(|block| block.starts_with(".note.gnu.property"))
        .flat_map(|block| block.lines().skip(2).map(|l| l.trim().to_owned()))
        .filter(|l| !l.is_empty())
        .collect();
    let headers = run_step(Command::new("readelf").arg("-lW").arg(file)).stdout_text();
    let segment = headers
        .lines()
        .find(|l| l.trim_start().starts_with("GNU_PROPERTY"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            format!("size {} align {}", words[4], words[words.len() - 1])
        });
    (properties, segment)
}

/// `readelf` facts of `file`; `lib_dir` (where the test's own libraries are) reads as `$LIBS`
/// so that weld's and GNU ld's outputs, built in different directories, compare equal.
pub fn dynamic_summary(file: &Path, lib_dir: &Path) -> DynamicSummary {
    let dynamic = run_step(Command::new("readelf").arg("-dW").arg(file)).stdout_text();
    let bracketed = |line: &str| {
        line.split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(v, _)| v.to_owned())
    };
    let mut summary = DynamicSummary {
        needed: Vec::new(),
        soname: None,
        runpath: None,
        flags: Vec::new(),
        exports: Default::default(),
    };
    for line in dynamic.lines() {
        if line.contains("(NEEDED)") {
            summary.needed.extend(bracketed(line));
        } else if line.contains("(SONAME)") {
            summary.soname = bracketed(line);
        } else if line.contains("(RUNPATH)") || line.contains("(RPATH)") {
            let kind = if line.contains("(RUNPATH)") {
                "RUNPATH"
            } else {
                "RPATH"
            };
            summary.runpath = bracketed(line)
                .map(|p| format!("{kind} {}", p.replace(&*lib_dir.to_string_lossy(), "$LIBS")));
        } else if line.contains("(FLAGS)") || line.contains("(FLAGS_1)") {
            let words = line.split_once("Flags:").map_or("", |(_, f)| f);
            summary
                .flags
                .extend(words.split_whitespace().map(str::to_owned));
        }
    }
    summary.flags.sort();
    let syms = run_step(
        Command::new("readelf")
            .arg("--dyn-syms")
            .arg("-W")
            .arg(file),
    )
    .stdout_text();
    for line in syms.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // Num: Value Size Type Bind Vis Ndx Name
        if cols.len() < 8 || cols[0] == "Num:" || !cols[0].ends_with(':') || cols[6] == "UND" {
            continue;
        }
        // GNU ld adds an absolute symbol per version definition; that is not an export.
        if cols[6] == "ABS" && cols[2] == "0" && !cols[7].contains('@') {
            continue;
        }
        summary
            .exports
            .insert(format!("{} {} {}", cols[7], cols[3], cols[4]));
    }
    summary
}
