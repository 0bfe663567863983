//! `.note.gnu.property` beyond what every fixture checks (`harness::property_summary`): the
//! IBT PLT's bytes, `-z cet-report` against GNU ld's, and `-r` merging the notes as GNU ld.

use crate::harness::{run, run_step, LinkerUnderTest, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn compile(tmp: &TempDir, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let c = tmp.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let object = tmp.join(format!("{name}.o"));
    run_step(
        Command::new("gcc")
            .args(["-c", "-O1"])
            .args(flags)
            .arg(&c)
            .arg("-o")
            .arg(&object),
    );
    object
}

const MAIN: &str = r#"
#include <stdio.h>
#include <string.h>
int f(void);
int main(int argc, char **argv) {
    size_t (*length)(const char *) = strlen;
    printf("%d %zu %zu\n", f(), strlen(argv[0]) > 0, length("abc"));
    puts("done");
    return 0;
}
"#;
const F: &str = "int f(void) { return 42; }\n";

/// The 16-byte entries of `.plt` after the header, as hex strings of their first 4 bytes,
/// and the header's size.
fn plt_entry_starts(exe: &Path) -> Vec<String> {
    let dump = run_step(Command::new("objdump").args(["-s", "-j", ".plt"]).arg(exe)).stdout_text();
    let bytes: Vec<String> = dump
        .lines()
        .filter(|l| l.starts_with(' '))
        .flat_map(|l| l.split_whitespace().skip(1).take(4).map(str::to_owned))
        .collect();
    // Every 16-byte row's first word.
    bytes.chunks(4).map(|row| row[0].clone()).collect()
}

#[test]
fn ibt_plt_entries_start_with_endbr64() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("ibt-plt");
    let cf = ["-fcf-protection", "-fno-pie"];
    let objects = [compile(&tmp, "main", MAIN, &cf), compile(&tmp, "f", F, &cf)];
    let reference = run_step(
        Command::new("gcc")
            .arg("-no-pie")
            .args(&objects)
            .arg("-o")
            .arg(tmp.join("ref")),
    );
    assert!(reference.status.success());
    let expected = run_step(&mut Command::new(tmp.join("ref"))).stdout;
    for (flags, ibt) in [
        (&["-Wl,-z,ibt,-z,shstk"][..], true),
        (&["-Wl,-z,ibtplt"][..], true),
        (&[][..], false),
    ] {
        let exe = tmp.join("exe");
        run_step(
            Command::new("gcc")
                .arg("-no-pie")
                .arg(format!("-B{}/", wrapper.display()))
                .args(flags)
                .args(&objects)
                .arg("-o")
                .arg(&exe),
        );
        let starts = plt_entry_starts(&exe);
        assert!(
            starts.len() >= 3,
            "{flags:?}: a PLT with entries: {starts:?}"
        );
        // endbr64 is f3 0f 1e fa.
        let marked = starts.iter().filter(|w| *w == "f30f1efa").count();
        if ibt {
            // The 32-byte header's second half is padding; every other row starts with it.
            assert_eq!(marked, starts.len() - 1, "{flags:?}: {starts:?}");
        } else {
            assert_eq!(marked, 0, "{flags:?}: {starts:?}");
        }
        for bind_now in [false, true] {
            let mut cmd = Command::new(&exe);
            if bind_now {
                cmd.env("LD_BIND_NOW", "1");
            }
            let out = run(&mut cmd, b"", Duration::from_secs(10)).unwrap();
            assert_eq!(out.stdout, expected, "{flags:?} LD_BIND_NOW={bind_now}");
        }
    }
}

/// `(file, what it lacks)` of each `-z cet-report` message, in order.
fn cet_reports(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let (file, rest) = l.split_once(".o: ")?;
            let missing = rest.split_once("missing ")?.1;
            Some(format!(
                "{}.o {missing}",
                file.rsplit([' ', '/']).next().unwrap()
            ))
        })
        .collect()
}

#[test]
fn cet_report_names_the_objects_gnu_ld_names() {
    let tmp = TempDir::new("cet-report");
    let linker = LinkerUnderTest::get();
    let objects = [
        compile(&tmp, "full", F, &["-fcf-protection"]),
        compile(
            &tmp,
            "branch",
            "int g(void) { return 1; }\n",
            &["-fcf-protection=branch"],
        ),
        compile(
            &tmp,
            "none",
            "int h(void) { return 2; }\n",
            &["-fcf-protection=none"],
        ),
    ];
    for how in ["warning", "error"] {
        let z = format!("cet-report={how}");
        let outcome = |ld: &Path, out: &str| {
            let output = tmp.join(out);
            let outcome = run(
                Command::new(ld)
                    .args(["-r", "-z", &z])
                    .args(&objects)
                    .arg("-o")
                    .arg(&output),
                b"",
                Duration::from_secs(30),
            )
            .unwrap();
            (outcome, output.exists())
        };
        let (gnu, gnu_wrote) = outcome(Path::new("ld"), &format!("gnu-{how}.o"));
        let (tested, tested_wrote) = outcome(&linker.path, &format!("tested-{how}.o"));
        let expected = cet_reports(&gnu.stderr_text());
        assert_eq!(expected.len(), 2, "GNU ld's reports: {}", gnu.stderr_text());
        assert_eq!(cet_reports(&tested.stderr_text()), expected, "-z {z}");
        assert_eq!(tested.status.success(), gnu.status.success(), "-z {z}");
        if how == "error" {
            assert!(!gnu_wrote && !tested_wrote, "-z {z}: no output");
            assert_eq!(tested.status.code(), Some(1));
        }
    }
}

#[test]
fn relocatable_links_merge_the_notes_as_gnu_ld() {
    let tmp = TempDir::new("property-r");
    let linker = LinkerUnderTest::get();
    let full = compile(&tmp, "full", F, &["-fcf-protection"]);
    let full2 = compile(
        &tmp,
        "full2",
        "int k(void) { return 3; }\n",
        &["-fcf-protection"],
    );
    let branch = compile(
        &tmp,
        "branch",
        "int g(void) { return 1; }\n",
        &["-fcf-protection=branch"],
    );
    let none = compile(
        &tmp,
        "none",
        "int h(void) { return 2; }\n",
        &["-fcf-protection=none"],
    );
    for (name, inputs, extra) in [
        ("same", vec![&full, &full2], &[][..]),
        ("and", vec![&full, &branch], &[][..]),
        ("absent", vec![&full, &none], &[][..]),
        (
            "forced",
            vec![&branch, &none],
            &["-z", "shstk", "-z", "x86-64-v3"][..],
        ),
    ] {
        let link = |ld: &Path, out: String| {
            let output = tmp.join(out);
            run_step(
                Command::new(ld)
                    .arg("-r")
                    .args(extra)
                    .args(&inputs)
                    .arg("-o")
                    .arg(&output),
            );
            crate::harness::property_summary(&output).0
        };
        let gnu = link(Path::new("ld"), format!("{name}-gnu.o"));
        let tested = link(&linker.path, format!("{name}-tested.o"));
        assert_eq!(tested, gnu, "{name}");
    }
}

/// `--package-metadata=JSON` (Fedora passes it to every link): the `.note.package` note with
/// GNU ld's bytes, in a PT_NOTE.
#[test]
fn package_metadata_note_as_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("package-note");
    let objects = [compile(&tmp, "main", MAIN, &[]), compile(&tmp, "f", F, &[])];
    let json =
        r#"{"type":"rpm","name":"weld-test","version":"1.0-1.fc41","architecture":"x86_64"}"#;
    let mut seen = Vec::new();
    for tested in [false, true] {
        let exe = tmp.join(if tested { "tested" } else { "gnu" });
        let mut cmd = crate::harness::gcc_through(tested, &wrapper);
        run_step(
            cmd.args(&objects)
                .arg("-Xlinker")
                .arg(format!("--package-metadata={json}"))
                .arg("-o")
                .arg(&exe),
        );
        let hex = run_step(
            Command::new("readelf")
                .args(["-x", ".note.package"])
                .arg(&exe),
        )
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("  0x"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>();
        let notes = run_step(Command::new("readelf").arg("-lW").arg(&exe)).stdout_text();
        let in_segment = notes
            .lines()
            .skip_while(|l| !l.contains("Section to Segment mapping"))
            .any(|l| l.contains(".note.package"));
        seen.push((hex, in_segment));
    }
    assert!(
        !seen[0].0.is_empty() && seen[0].1,
        "GNU ld's note: {:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0]);
}
