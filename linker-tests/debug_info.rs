//! Debug sections are carried through with their relocations applied: addr2line and gdb find
//! function names, files and lines in weld's output as in GNU ld's.

use crate::directives::{fixtures_dir, Mode};
use crate::harness::{compile, run_step, write_ld_wrapper, LinkerUnderTest, TempDir};
use std::path::Path;
use std::process::Command;

fn link(tmp: &TempDir, mode: Mode, objects: &[std::path::PathBuf], weld: bool, out: &str) {
    let mut cmd = Command::new("gcc");
    cmd.arg(mode.driver_flag());
    if weld {
        let dir = tmp.join("linker-under-test");
        write_ld_wrapper(&dir, &LinkerUnderTest::get().path);
        cmd.arg(format!("-B{}/", dir.display()));
    }
    cmd.arg("-o").arg(tmp.join(out)).args(objects);
    let outcome = run_step(&mut cmd);
    assert!(
        outcome.status.success(),
        "link failed:\n{}",
        outcome.stderr_text()
    );
}

/// `addr2line -f` for every function symbol of `names`, with the address taken from `nm`.
fn locate(exe: &Path, names: &[&str]) -> String {
    let nm = run_step(Command::new("nm").arg(exe)).stdout_text();
    let mut addrs = Vec::new();
    for name in names {
        let line = nm
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in nm output of {}", exe.display()));
        addrs.push(line.split_whitespace().next().unwrap().to_string());
    }
    let out = run_step(
        Command::new("addr2line")
            .arg("-f")
            .arg("-e")
            .arg(exe)
            .args(&addrs),
    );
    // Paths are the same for both links; only the function/file:line pairs matter.
    out.stdout_text()
}

fn check(mode: Mode) {
    let tmp = TempDir::new(&format!("debug-info-{mode}"));
    let args = vec!["-g".to_string(), "-O1".to_string(), "-fcommon".to_string()];
    let objects = vec![
        compile("symbols.c", &args, tmp.path()),
        compile("symbols_other.c", &args, tmp.path()),
    ];
    link(&tmp, mode, &objects, true, "weld.exe");
    link(&tmp, mode, &objects, false, "gnu.exe");
    let names = ["main"];
    let weld = locate(&tmp.join("weld.exe"), &names);
    let gnu = locate(&tmp.join("gnu.exe"), &names);
    assert!(
        weld.contains("symbols.c:"),
        "addr2line found no line for main:\n{weld}"
    );
    assert_eq!(
        weld, gnu,
        "addr2line disagrees between weld's and GNU ld's output"
    );
    assert!(fixtures_dir().join("symbols.c").exists());

    // gdb, where installed: break on a function by name and show a backtrace with a line.
    if Command::new("gdb").arg("--version").output().is_ok() {
        let out = run_step(
            Command::new("gdb")
                .args([
                    "-nx",
                    "-batch",
                    "-ex",
                    "break main",
                    "-ex",
                    "run",
                    "-ex",
                    "bt",
                ])
                .arg(tmp.join("weld.exe")),
        );
        let text = out.stdout_text();
        assert!(
            text.contains("Breakpoint 1, main") && text.contains("symbols.c:"),
            "gdb could not break in main with a source line:\n{text}\n{}",
            out.stderr_text()
        );
    }
}

#[test]
fn static_exe_debug_info() {
    check(Mode::Static);
}

#[test]
fn static_pie_debug_info() {
    check(Mode::StaticPie);
}

#[test]
fn pie_debug_info() {
    check(Mode::Pie);
}

#[test]
fn no_pie_debug_info() {
    check(Mode::NoPie);
}

/// SHF_COMPRESSED inputs (zlib and zstd, made with objcopy) are decompressed; output sections
/// are compressed on request. addr2line must read every combination as it reads GNU ld's
/// uncompressed output.
#[test]
fn compressed_debug_sections() {
    let tmp = TempDir::new("debug-info-compressed");
    let args = vec!["-g".to_string(), "-O1".to_string(), "-fcommon".to_string()];
    let objects = vec![
        compile("symbols.c", &args, tmp.path()),
        compile("symbols_other.c", &args, tmp.path()),
    ];
    link(&tmp, Mode::Pie, &objects, false, "gnu.exe");
    let expected = locate(&tmp.join("gnu.exe"), &["main"]);
    for input in ["zlib", "zstd"] {
        let packed: Vec<std::path::PathBuf> = objects
            .iter()
            .map(|o| {
                let out = o.with_extension(format!("{input}.o"));
                let status = Command::new("objcopy")
                    .arg(format!("--compress-debug-sections={input}"))
                    .arg(o)
                    .arg(&out)
                    .status()
                    .unwrap();
                assert!(
                    status.success(),
                    "objcopy --compress-debug-sections={input} failed"
                );
                out
            })
            .collect();
        let sections = run_step(Command::new("readelf").arg("-SW").arg(&packed[0])).stdout_text();
        assert!(
            sections
                .lines()
                .any(|l| l.contains(".debug_info") && l.contains('C')),
            "objcopy did not compress .debug_info ({input})"
        );
        for output in ["none", "zlib", "zstd"] {
            let exe = format!("weld-{input}-{output}.exe");
            let mut objs = packed.clone();
            objs.push(format!("-Wl,--compress-debug-sections={output}").into());
            link(&tmp, Mode::Pie, &objs, true, &exe);
            let got = locate(&tmp.join(&exe), &["main"]);
            assert_eq!(got, expected, "input {input}, output {output}");
            let sections =
                run_step(Command::new("readelf").arg("-SW").arg(tmp.join(&exe))).stdout_text();
            let compressed = sections
                .lines()
                .any(|l| l.contains(".debug_info") && l.contains(" C"));
            assert_eq!(
                compressed,
                output != "none",
                "output {output}: .debug_info compression flag"
            );
        }
    }
}
