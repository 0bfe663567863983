//! Linker scripts (`fixtures/scripts/`): programs laid out by `-T` scripts, linked by the
//! linker under test and by GNU ld; the programs must print the same, and the sections and
//! program headers `readelf` shows must be where GNU ld puts them.

use crate::directives::fixtures_dir;
use crate::harness::{run, run_step, LinkerUnderTest, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn scripts_dir() -> PathBuf {
    fixtures_dir().join("scripts")
}

/// Compiles or assembles `fixtures/scripts/<source>` freestanding into `tmp`.
fn build(tmp: &TempDir, source: &str, extra: &[&str]) -> PathBuf {
    let object = tmp.join(format!("{source}.o"));
    run_step(
        Command::new("gcc")
            .args([
                "-c",
                "-O2",
                "-ffreestanding",
                "-fno-pic",
                "-fno-stack-protector",
                "-fno-asynchronous-unwind-tables",
                "-fcf-protection=none",
                // (Strings in plain .rodata: GNU ld also merges string tails, weld does not,
                // and the addresses compared here would differ by that.)
                "-fno-merge-constants",
            ])
            .args(extra)
            .arg("-I")
            .arg(scripts_dir())
            .arg(scripts_dir().join(source))
            .arg("-o")
            .arg(&object),
    );
    object
}

/// Links with `linker` (GNU ld: "ld"); the output's path.
fn link(tmp: &TempDir, linker: &Path, out: &str, args: &[&str], objects: &[PathBuf]) -> PathBuf {
    let output = tmp.join(out);
    run_step(
        Command::new(linker)
            .args(args)
            .args(objects)
            .arg("-o")
            .arg(&output),
    );
    output
}

/// Both links: (GNU ld's output, the linker under test's).
fn both(tmp: &TempDir, args: &[&str], objects: &[PathBuf]) -> (PathBuf, PathBuf) {
    let gnu = link(tmp, Path::new("ld"), "gnu", args, objects);
    let tested = link(tmp, &LinkerUnderTest::get().path, "tested", args, objects);
    (gnu, tested)
}

fn readelf(args: &[&str], file: &Path) -> String {
    run_step(Command::new("readelf").args(args).arg(file)).stdout_text()
}

/// The alloc sections `readelf -SW` lists: name, type, address, offset, size, flags.
fn alloc_sections(file: &Path) -> Vec<String> {
    readelf(&["-SW"], file)
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(']')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // name type address offset size entsize flags ...
            let flags = fields.get(6)?;
            (flags.contains('A') && fields[0] != ".note.gnu.property").then(|| {
                format!(
                    "{} {} {} {} {} {}",
                    fields[0], fields[1], fields[2], fields[3], fields[4], flags
                )
            })
        })
        .collect()
}

/// `readelf -lW`'s program header lines of one type.
fn program_headers(file: &Path, p_type: &str) -> Vec<String> {
    readelf(&["-lW"], file)
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{p_type} ")))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn entry_point(file: &Path) -> String {
    readelf(&["-hW"], file)
        .lines()
        .find(|l| l.contains("Entry point"))
        .unwrap_or_default()
        .to_string()
}

/// `nm`'s lines for the given symbols.
fn symbols(file: &Path, names: &[&str]) -> Vec<String> {
    let nm = run_step(Command::new("nm").arg(file)).stdout_text();
    let mut found: Vec<String> = nm
        .lines()
        .filter(|l| names.iter().any(|n| l.ends_with(&format!(" {n}"))))
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

fn run_program(exe: &Path) -> (Option<i32>, String) {
    let outcome = run(&mut Command::new(exe), b"", Duration::from_secs(30)).unwrap();
    (outcome.status.code(), outcome.stdout_text())
}

/// A multiboot-style kernel image: `-nostdlib -T kernel.ld`, loaded at 1 MiB, sections
/// 4 KiB-aligned by `BLOCK`/`ALIGN`, the multiboot header first by `KEEP`, `*(COMMON)` in
/// .bss, a symbol after the last section. Same sections, segments, entry and symbols as GNU
/// ld's image.
#[test]
fn kernel_image_at_one_mebibyte() {
    let tmp = TempDir::new("scripts-kernel");
    let objects = [
        build(&tmp, "kernel_boot.s", &[]),
        build(&tmp, "kernel_main.c", &["-mno-red-zone", "-fcommon"]),
    ];
    let script = scripts_dir().join("kernel.ld");
    let script = script.to_str().unwrap();
    let args = ["-nostdlib", "-z", "noexecstack", "-T", script];
    let (gnu, tested) = both(&tmp, &args, &objects);
    let sections = alloc_sections(&tested);
    assert_eq!(sections, alloc_sections(&gnu));
    assert!(
        sections[0].starts_with(".text PROGBITS 0000000000100000 001000"),
        "{sections:?}"
    );
    assert_eq!(
        program_headers(&tested, "LOAD"),
        program_headers(&gnu, "LOAD")
    );
    assert_eq!(entry_point(&tested), entry_point(&gnu));
    let names = ["_start", "kmain", "_kernel_end", "buffer", "counter"];
    assert_eq!(symbols(&tested, &names).len(), names.len());
    assert_eq!(
        symbols(&tested, &names)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>(),
        symbols(&gnu, &names)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    // The multiboot header's magic is the image's first bytes.
    let text = run_step(
        Command::new("objdump")
            .args(["-s", "-j", ".text"])
            .arg(&tested),
    );
    assert!(
        text.stdout_text().contains(" 100000 02b0ad1b"),
        "{}",
        text.stdout_text()
    );
}

/// Tables collected by a script: KEEP'd sections sorted by name between script symbols (and
/// kept by --gc-sections, which drops an unreferenced function), data statements, PROVIDE,
/// SIZEOF, a bss bracketed by symbols, `/DISCARD/`.
#[test]
fn freestanding_tables() {
    let tmp = TempDir::new("scripts-tables");
    let objects = [
        build(&tmp, "start.s", &[]),
        build(
            &tmp,
            "tables.c",
            &["-ffunction-sections", "-fdata-sections"],
        ),
    ];
    let script = scripts_dir().join("tables.ld");
    let args = ["-static", "--gc-sections", "-T", script.to_str().unwrap()];
    let (gnu, tested) = both(&tmp, &args, &objects);
    let expected = run_program(&gnu);
    assert_eq!(expected.0, Some(0), "{}", expected.1);
    assert!(
        expected.1.starts_with("alpha 0x2a\nmid 0x1b9\nzeta"),
        "{}",
        expected.1
    );
    assert_eq!(run_program(&tested), expected);
    assert_eq!(alloc_sections(&tested), alloc_sections(&gnu));
    assert_eq!(
        program_headers(&tested, "LOAD"),
        program_headers(&gnu, "LOAD")
    );
    let names = [
        "__cmds_start",
        "__cmds_end",
        "__magic",
        "__bss_begin",
        "__bss_finish",
        "__provided_marker",
        "__never_referenced",
        "unused_function",
    ];
    let found = symbols(&tested, &names);
    assert!(
        !found
            .iter()
            .any(|l| l.ends_with("unused_function") || l.ends_with("__never_referenced")),
        "{found:?}"
    );
    let values = |lines: Vec<String>| -> Vec<String> {
        let mut values: Vec<String> = lines
            .into_iter()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {}", f[0], f[2])
            })
            .collect();
        values.sort();
        values
    };
    assert_eq!(values(found), values(symbols(&gnu, &names)));
    // /DISCARD/ dropped .comment and .eh_frame.
    let sections = readelf(&["-SW"], &tested);
    assert!(
        !sections.contains(".comment") && !sections.contains(".eh_frame"),
        "{sections}"
    );
}

/// MEMORY regions (`> region`, `AT> region`, `ORIGIN`, `LENGTH`, `LOADADDR`), PHDRS with
/// FILEHDR, PHDRS and FLAGS, `(NOLOAD)`, `ASSERT`: the same program, sections and load
/// addresses as GNU ld's.
#[test]
fn memory_regions_and_phdrs() {
    let tmp = TempDir::new("scripts-regions");
    let objects = [build(&tmp, "start.s", &[]), build(&tmp, "tables.c", &[])];
    let script = scripts_dir().join("regions.ld");
    let args = ["-static", "-T", script.to_str().unwrap()];
    let (gnu, tested) = both(&tmp, &args, &objects);
    let expected = run_program(&gnu);
    assert_eq!(expected.0, Some(0), "{}", expected.1);
    assert_eq!(run_program(&tested), expected);
    assert_eq!(alloc_sections(&tested), alloc_sections(&gnu));
    // Type, offset, address, load address, file size and flags of each header (GNU ld's
    // memory size of the data segment leaves out part of a NOLOAD .bss it warns about).
    let headers = |file: &Path| -> Vec<String> {
        ["PHDR", "LOAD"]
            .iter()
            .flat_map(|t| program_headers(file, t))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {} {} {} {} {}", f[0], f[1], f[2], f[3], f[4], f[6])
            })
            .collect()
    };
    assert_eq!(headers(&tested), headers(&gnu));
    // .data is loaded in rom, right after .magic.
    let loads = program_headers(&tested, "LOAD");
    assert!(
        loads[1].contains("0x0000000010100000 0x0000000010000460"),
        "{loads:?}"
    );
    // --print-memory-usage: GNU ld's table, byte for byte.
    let usage = |linker: &Path| {
        let out = tmp.join("usage");
        run_step(
            Command::new(linker)
                .args(args)
                .arg("--print-memory-usage")
                .args(&objects)
                .arg("-o")
                .arg(&out),
        )
        .stdout_text()
    };
    let expected = usage(Path::new("ld"));
    assert!(expected.lines().count() > 1, "{expected}");
    assert_eq!(usage(&LinkerUnderTest::get().path), expected);
}

/// A region too small for what goes in it fails the link, naming the section and region,
/// and leaves no output; so does a failed ASSERT.
#[test]
fn region_overflow_and_assert_fail_the_link() {
    let tmp = TempDir::new("scripts-overflow");
    let objects = [build(&tmp, "start.s", &[]), build(&tmp, "tables.c", &[])];
    let original = std::fs::read_to_string(scripts_dir().join("regions.ld")).unwrap();
    let small = original.replace("LENGTH = 64K\n    ram", "LENGTH = 256\n    ram");
    assert_ne!(small, original);
    std::fs::write(tmp.join("small.ld"), small).unwrap();
    let asserting = original.replace("SIZEOF(.text) > 0", "SIZEOF(.text) > 0x100000");
    std::fs::write(tmp.join("assert.ld"), asserting).unwrap();
    for (script, weld_says) in [
        ("small.ld", "section .text will not fit in region rom"),
        ("assert.ld", "assertion failed: no code"),
    ] {
        for (linker, is_weld) in [
            (PathBuf::from("ld"), false),
            (LinkerUnderTest::get().path, LinkerUnderTest::get().is_weld),
        ] {
            let out = tmp.join("out");
            let _ = std::fs::remove_file(&out);
            let outcome = run(
                Command::new(&linker)
                    .args(["-static", "-T"])
                    .arg(tmp.join(script))
                    .args(&objects)
                    .arg("-o")
                    .arg(&out),
                b"",
                Duration::from_secs(60),
            )
            .unwrap();
            assert_eq!(outcome.status.code(), Some(1), "{}", outcome.describe());
            assert!(!out.exists(), "{script}: output left behind");
            if is_weld {
                let stderr = outcome.stderr_text();
                assert!(
                    stderr.contains(weld_says) && stderr.contains(&format!("{script}:")),
                    "{}",
                    outcome.describe()
                );
            }
        }
    }
}

/// GNU ld's own default script (`ld --verbose`), given back with `-T`, links a C program
/// (TLS, `__start_`/`__stop_` sections, stdio) that runs as GNU ld's twin does, with the
/// same sections in the same order and a PT_GNU_RELRO that ends on a page boundary.
#[test]
fn gnu_default_script_round_trip() {
    let tmp = TempDir::new("scripts-default");
    let t = gnu_default_script(&tmp);
    let gnu = link_hosted(&tmp, "gnu", false, &["-no-pie", &t]);
    let tested = link_hosted(&tmp, "tested", true, &["-no-pie", &t]);
    assert!(tmp.join("bin/ld.log").exists(), "the wrapper did not run");
    let expected = run_program(&gnu);
    assert_eq!(expected.0, Some(0));
    assert_eq!(run_program(&tested), expected);
    let names = |file: &Path| -> Vec<String> {
        alloc_sections(file)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&tested), names(&gnu));
    relro_ends_on_a_page(&tested);
}

/// GNU ld's default script in a static link: static glibc applies its IRELATIVE
/// relocations from `__rela_iplt_start` to `__rela_iplt_end`, which the script PROVIDEs
/// around `*(.rela.iplt)` in `.rela.plt`. weld's `.rela.iplt` is linker-made (no rule
/// places it), so its own values of the two must stand, or the program crashes in its
/// first IFUNC call (strlen) with nothing relocated.
#[test]
fn gnu_default_script_static() {
    let tmp = TempDir::new("scripts-default-static");
    let t = gnu_default_script(&tmp);
    let gnu = link_hosted(&tmp, "gnu", false, &["-static", &t]);
    let tested = link_hosted(&tmp, "tested", true, &["-static", &t]);
    let expected = run_program(&gnu);
    assert_eq!(expected.0, Some(0));
    assert_eq!(run_program(&tested), expected);
}

/// GNU ld's default script (`ld --verbose`) written to `tmp`, as gcc's `-Wl,-T,` argument.
fn gnu_default_script(tmp: &TempDir) -> String {
    let verbose = run_step(Command::new("ld").arg("--verbose")).stdout_text();
    let script: Vec<&str> = verbose
        .split("==================================================")
        .collect();
    assert!(script.len() >= 3, "ld --verbose printed no script");
    std::fs::write(tmp.join("default.ld"), script[1]).unwrap();
    format!("-Wl,-T,{}", tmp.join("default.ld").display())
}

/// Links `hosted.c` with gcc: the system GNU ld (`tested` false) or the linker under test
/// (through a `-B` wrapper), with `args`.
fn link_hosted(tmp: &TempDir, out: &str, tested: bool, args: &[&str]) -> PathBuf {
    let object = tmp.join("hosted.o");
    if !object.exists() {
        run_step(
            Command::new("gcc")
                .args(["-c", "-O2"])
                .arg(scripts_dir().join("hosted.c"))
                .arg("-o")
                .arg(&object),
        );
    }
    let wrapper = tmp.join("bin");
    if tested && !wrapper.join("ld").exists() {
        crate::harness::write_ld_wrapper(&wrapper, &LinkerUnderTest::get().path);
    }
    let mut cmd = crate::harness::gcc_through(tested, &wrapper);
    cmd.args(args).arg(&object).arg("-o").arg(tmp.join(out));
    run_step(&mut cmd);
    tmp.join(out)
}

/// The output sections' names in file order.
fn section_names(file: &Path) -> Vec<String> {
    alloc_sections(file)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// Fedora's package note, passed as Fedora's gcc passes it (`-dT`, a script that INSERTs a
/// section of data statements AFTER .note.gnu.build-id): the note is there, right after
/// the build-id, and readelf reads it as GNU ld's.
#[test]
fn package_note_inserted_after_build_id() {
    let tmp = TempDir::new("scripts-package-note");
    let note = scripts_dir().join("package_note.ld");
    let dt = format!("-Wl,-dT,{}", note.display());
    for mode in ["-pie", "-no-pie"] {
        let args = [mode, "-Wl,--build-id", dt.as_str()];
        let gnu = link_hosted(&tmp, "gnu", false, &args);
        let tested = link_hosted(&tmp, "tested", true, &args);
        let expected = run_program(&gnu);
        assert_eq!(expected.0, Some(0));
        assert_eq!(run_program(&tested), expected, "{mode}");
        let notes = |file: &Path| -> String {
            let text = readelf(&["-n"], file);
            let at = text.find(".note.package").unwrap_or(text.len());
            text[at..].lines().take(4).collect::<Vec<_>>().join("\n")
        };
        let shown = notes(&tested);
        assert!(
            shown.contains("FDO_PACKAGING_METADATA")
                && shown.contains(r#"Packaging Metadata: {"type":"rpm","name":"weld-test"}"#),
            "{mode}: {shown}"
        );
        assert_eq!(shown, notes(&gnu), "{mode}");
        for file in [&gnu, &tested] {
            let names = section_names(file);
            let at = names
                .iter()
                .position(|n| n == ".note.gnu.build-id")
                .unwrap();
            assert_eq!(names[at + 1], ".note.package", "{mode}: {names:?}");
        }
    }
}

/// The script `--verbose` prints (weld's default layout), given back with `-T`, links the
/// same program, PIE or not, static (libc's TLS and .init_array in RELRO) or not.
#[test]
fn own_default_script_round_trip() {
    let tmp = TempDir::new("scripts-own-default");
    let linker = LinkerUnderTest::get().path;
    for mode in [&["-pie"][..], &["-no-pie"], &["-static", "-no-pie"]] {
        let mut verbose = Command::new(&linker);
        if mode[0] != "-no-pie" {
            verbose.arg(mode[0]);
        }
        let text = run_step(verbose.arg("--verbose")).stdout_text();
        let parts: Vec<&str> = text
            .split("==================================================")
            .collect();
        assert!(parts.len() >= 3 && parts[1].contains("SECTIONS"), "{text}");
        let mode_name = mode.join("");
        let script = tmp.join(format!("default{mode_name}.ld"));
        std::fs::write(&script, parts[1]).unwrap();
        let plain = link_hosted(&tmp, "plain", true, mode);
        let t = format!("-Wl,-T,{}", script.display());
        let scripted = link_hosted(&tmp, "scripted", true, &[mode, &[t.as_str()][..]].concat());
        let expected = run_program(&plain);
        assert_eq!(expected.0, Some(0));
        assert_eq!(run_program(&scripted), expected, "{mode_name}");
        // The same non-empty sections (the order of notes and empty sections may differ).
        let names = |file: &Path| -> Vec<String> {
            let mut names: Vec<String> = alloc_sections(file)
                .iter()
                .filter(|l| l.split(' ').nth(4) != Some("000000"))
                .map(|l| l.split(' ').next().unwrap().to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&scripted), names(&plain), "{mode_name}");
        relro_ends_on_a_page(&scripted);
    }
}

/// The PT_GNU_RELRO of `file` (there is one) ends on a page boundary.
fn relro_ends_on_a_page(file: &Path) {
    let relro = program_headers(file, "GNU_RELRO");
    assert_eq!(relro.len(), 1, "{relro:?}");
    let f: Vec<&str> = relro[0].split(' ').collect();
    let start = u64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap();
    let size = u64::from_str_radix(f[5].trim_start_matches("0x"), 16).unwrap();
    assert_eq!((start + size) % 4096, 0, "{relro:?}");
}

/// RELRO (an .init_array, .tdata and .tbss) that does not end on a page boundary as the
/// script first lays it out: as GNU ld, the data segment moves up so that it does (where
/// alignment lets each section move, a .tbss taking no room), `.` after
/// DATA_SEGMENT_RELRO_END moves to that page, and SIZEOF_HEADERS settles. The program,
/// which sets up its own thread pointer from PT_TLS, prints the same as GNU ld's; PT_TLS
/// and PT_GNU_RELRO are GNU ld's.
#[test]
fn relro_moves_the_data_segment() {
    let tmp = TempDir::new("scripts-relro-tls");
    let objects = [build(&tmp, "start.s", &[]), build(&tmp, "relro_tls.c", &[])];
    let script = scripts_dir().join("relro_tls.ld");
    let args = ["-static", "-T", script.to_str().unwrap()];
    let (gnu, tested) = both(&tmp, &args, &objects);
    let expected = run_program(&gnu);
    assert_eq!(
        expected,
        (Some(0), "0x1234\n0x5\n0x7\n0x3\n".to_string()),
        "GNU ld's program"
    );
    assert_eq!(run_program(&tested), expected);
    for p_type in ["TLS", "GNU_RELRO"] {
        assert_eq!(
            program_headers(&tested, p_type),
            program_headers(&gnu, p_type),
            "{p_type}"
        );
    }
    relro_ends_on_a_page(&tested);
    let data = |file: &Path| -> Vec<String> {
        alloc_sections(file)
            .into_iter()
            .filter(|l| {
                [".init_array ", ".tdata ", ".tbss ", ".data "]
                    .iter()
                    .any(|n| l.starts_with(n))
            })
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(data(&tested), data(&gnu));
}

/// `-Ttext`, `-Tdata` (hexadecimal, GNU ld's way) and `--section-start` put those output
/// sections at those addresses, as GNU ld does, and the program still runs.
#[test]
fn section_start_options() {
    let tmp = TempDir::new("scripts-section-start");
    let args = [
        "-no-pie",
        "-Wl,-Ttext=700000",
        "-Wl,-Tdata=0x900000",
        "-Wl,--section-start=mytab=0xa00000",
    ];
    let gnu = link_hosted(&tmp, "gnu", false, &args);
    let tested = link_hosted(&tmp, "tested", true, &args);
    let expected = run_program(&gnu);
    assert_eq!(expected.0, Some(0));
    assert_eq!(run_program(&tested), expected);
    for file in [&gnu, &tested] {
        let sections = alloc_sections(file);
        for (name, addr) in [
            (".text", "0000000000700000"),
            (".data", "0000000000900000"),
            ("mytab", "0000000000a00000"),
        ] {
            assert!(
                sections
                    .iter()
                    .any(|l| l.starts_with(&format!("{name} PROGBITS {addr}"))),
                "{}: {sections:?}",
                file.display()
            );
        }
    }
}

/// NOCROSSREFS: a reference between two output sections of a group fails the link, naming
/// both (GNU ld's "prohibited cross reference"); a group with no such reference links.
/// EXTERN(sym) pulls the archive member that defines `sym`, as `-u sym` does.
#[test]
fn nocrossrefs_and_extern() {
    let tmp = TempDir::new("scripts-nocrossrefs");
    let objects = [build(&tmp, "start.s", &[]), build(&tmp, "tables.c", &[])];
    std::fs::write(tmp.join("extra.c"), "int extern_marker = 7;\n").unwrap();
    run_step(
        Command::new("gcc")
            .args(["-c", "-O2"])
            .arg(tmp.join("extra.c"))
            .arg("-o")
            .arg(tmp.join("extra.o")),
    );
    run_step(
        Command::new("ar")
            .arg("rcs")
            .arg(tmp.join("libextra.a"))
            .arg(tmp.join("extra.o")),
    );
    let original = std::fs::read_to_string(scripts_dir().join("tables.ld")).unwrap();
    let variants = [
        ("crossing.ld", "NOCROSSREFS(.cmds .text)\n", false),
        (
            "apart.ld",
            "NOCROSSREFS(.magic .bss)\nEXTERN(extern_marker)\n",
            true,
        ),
    ];
    for (name, extra, links) in variants {
        std::fs::write(tmp.join(name), format!("{extra}{original}")).unwrap();
        for (linker, is_weld) in [
            (PathBuf::from("ld"), false),
            (LinkerUnderTest::get().path, LinkerUnderTest::get().is_weld),
        ] {
            let out = tmp.join("out");
            let _ = std::fs::remove_file(&out);
            let outcome = run(
                Command::new(&linker)
                    .args(["-static", "-T"])
                    .arg(tmp.join(name))
                    .args(&objects)
                    .arg(tmp.join("libextra.a"))
                    .arg("-o")
                    .arg(&out),
                b"",
                Duration::from_secs(60),
            )
            .unwrap();
            assert_eq!(
                outcome.status.success(),
                links,
                "{name}: {}",
                outcome.describe()
            );
            if links {
                let nm = run_step(Command::new("nm").arg(&out)).stdout_text();
                assert!(nm.contains(" extern_marker"), "{name}: {nm}");
                assert_eq!(run_program(&out).0, Some(0));
            } else if is_weld {
                let stderr = outcome.stderr_text();
                assert!(
                    stderr.contains("prohibited cross reference from .cmds to")
                        && stderr.contains("in .text"),
                    "{}",
                    outcome.describe()
                );
            }
        }
    }
}

/// A script's symbol set to a number outside any section (in an implicit script among the
/// inputs, with no SECTIONS), and `--defsym` to a number: listed as absolute (`A`) with
/// that value, and referred to as GNU ld refers to them in a PIE (through a PC-relative
/// address or the GOT alike, they come out relative to the load address: the programs
/// print the same with address randomisation off).
#[test]
fn absolute_symbols_in_a_pie() {
    let tmp = TempDir::new("scripts-absolute");
    std::fs::write(
        tmp.join("abs.c"),
        "#include <stdio.h>\nextern char script_abs[], defsym_abs[], script_rel[];\n\
         int main(void) { printf(\"%p %p %p\\n\", (void *)script_abs, (void *)defsym_abs, \
         (void *)script_rel); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("abs.ld"),
        "script_abs = 0x1234;\nscript_rel = main + 16;\n",
    )
    .unwrap();
    let wrapper = tmp.join("bin");
    crate::harness::write_ld_wrapper(&wrapper, &LinkerUnderTest::get().path);
    for pic in ["-fPIE", "-fPIC"] {
        let object = tmp.join(format!("abs{pic}.o"));
        run_step(
            Command::new("gcc")
                .args(["-c", "-O2", pic])
                .arg(tmp.join("abs.c"))
                .arg("-o")
                .arg(&object),
        );
        let mut outputs = Vec::new();
        for tested in [false, true] {
            let exe = tmp.join(if tested { "tested" } else { "gnu" });
            let mut cmd = crate::harness::gcc_through(tested, &wrapper);
            run_step(
                cmd.args(["-pie", "-Wl,--defsym=defsym_abs=0x5678"])
                    .arg(&object)
                    .arg(tmp.join("abs.ld"))
                    .arg("-o")
                    .arg(&exe),
            );
            let nm = run_step(Command::new("nm").arg(&exe)).stdout_text();
            assert!(
                nm.contains("0000000000001234 A script_abs"),
                "{pic} {tested}: {nm}"
            );
            assert!(
                nm.contains("0000000000005678 A defsym_abs"),
                "{pic} {tested}: {nm}"
            );
            let main = nm.lines().find(|l| l.ends_with(" T main")).unwrap();
            let main = u64::from_str_radix(&main[..16], 16).unwrap();
            let rel = format!("{:016x} ", main + 16);
            assert!(
                nm.lines()
                    .any(|l| l.starts_with(&rel) && l.ends_with("script_rel")),
                "{pic} {tested}: {nm}"
            );
            let outcome = run(
                Command::new("setarch").args(["x86_64", "-R"]).arg(&exe),
                b"",
                Duration::from_secs(30),
            )
            .unwrap();
            assert!(outcome.status.success(), "{}", outcome.describe());
            // (script_rel follows main, which each linker puts elsewhere: nm checked it.)
            let out = outcome.stdout_text();
            outputs.push(out.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
        assert_eq!(outputs[1], outputs[0], "{pic}");
    }
}

/// INCLUDE at the top level and inside SECTIONS, found through `-L`: the same program and
/// sections as the script written in one file (and as GNU ld's); a missing file is an error
/// naming the INCLUDE's place.
#[test]
fn include_files() {
    let tmp = TempDir::new("scripts-include");
    let objects = [build(&tmp, "start.s", &[]), build(&tmp, "tables.c", &[])];
    let whole = std::fs::read_to_string(scripts_dir().join("tables.ld")).unwrap();
    let open = whole.find("SECTIONS\n{\n").unwrap() + "SECTIONS\n{\n".len();
    let close = whole.rfind('}').unwrap();
    let inc = tmp.join("inc");
    std::fs::create_dir_all(&inc).unwrap();
    std::fs::write(
        inc.join("head.inc"),
        &whole[..whole.find("SECTIONS").unwrap()],
    )
    .unwrap();
    std::fs::write(inc.join("body.inc"), &whole[open..close]).unwrap();
    std::fs::write(
        tmp.join("split.ld"),
        "INCLUDE head.inc\nSECTIONS\n{\n    INCLUDE body.inc\n}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("missing.ld"),
        "SECTIONS\n{\n  INCLUDE nowhere.inc\n}\n",
    )
    .unwrap();
    let link = |linker: &Path, script: &str, out: &str| {
        run(
            Command::new(linker)
                .args(["-static", "-L"])
                .arg(&inc)
                .arg("-T")
                .arg(tmp.join(script))
                .args(&objects)
                .arg("-o")
                .arg(tmp.join(out)),
            b"",
            Duration::from_secs(60),
        )
        .unwrap()
    };
    let tested = LinkerUnderTest::get().path;
    for (linker, out) in [(Path::new("ld"), "gnu"), (tested.as_path(), "tested")] {
        let outcome = link(linker, "split.ld", out);
        assert!(outcome.status.success(), "{}", outcome.describe());
    }
    let tables = scripts_dir().join("tables.ld");
    let one_file = crate::scripts::link(
        &tmp,
        &tested,
        "one-file",
        &["-static", "-T", tables.to_str().unwrap()],
        &objects,
    );
    let expected = run_program(&tmp.join("gnu"));
    assert_eq!(expected.0, Some(0));
    assert_eq!(run_program(&tmp.join("tested")), expected);
    assert_eq!(
        alloc_sections(&tmp.join("tested")),
        alloc_sections(&tmp.join("gnu"))
    );
    assert_eq!(
        alloc_sections(&tmp.join("tested")),
        alloc_sections(&one_file)
    );
    let missing = link(&tested, "missing.ld", "missing");
    assert_eq!(missing.status.code(), Some(1));
    if LinkerUnderTest::get().is_weld {
        assert!(
            missing
                .stderr_text()
                .contains("missing.ld:3:3: INCLUDE nowhere.inc: cannot find the file"),
            "{}",
            missing.describe()
        );
    }
}

/// OVERLAY: the sections at one address, each in a PT_LOAD of its own, loaded one after
/// another from AT's address, `__load_start_`/`__load_stop_` provided, `.` past the largest:
/// the same addresses as GNU ld's. (Load addresses after the first two members are not
/// compared: GNU ld pads some of them in ways its manual does not describe.)
#[test]
fn overlay_sections() {
    let tmp = TempDir::new("scripts-overlay");
    let objects = [build(&tmp, "overlay.c", &[])];
    let script = scripts_dir().join("overlay.ld");
    let args = ["-static", "-T", script.to_str().unwrap()];
    let (gnu, tested) = both(&tmp, &args, &objects);
    let vmas = |file: &Path| -> Vec<String> {
        alloc_sections(file)
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {} {}", f[0], f[2], f[4])
            })
            .collect()
    };
    assert_eq!(vmas(&tested), vmas(&gnu));
    assert!(
        vmas(&tested)
            .iter()
            .filter(|l| l.contains(" 0000000000700000 "))
            .count()
            == 3,
        "{:?}",
        vmas(&tested)
    );
    let names = ["__load_start_ov_a", "__load_stop_ov_a", "__load_start_ov_b"];
    let values = |file: &Path| -> Vec<String> {
        symbols(file, &names)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&tested), values(&gnu));
    // Each member has a PT_LOAD at 0x700000, loaded at increasing addresses from 0x800000.
    let loads: Vec<(u64, u64, u64)> = program_headers(&tested, "LOAD")
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            (n(f[2]), n(f[3]), n(f[4]))
        })
        .filter(|&(vaddr, _, _)| vaddr == 0x700000)
        .collect();
    assert_eq!(loads.len(), 3, "{loads:?}");
    assert_eq!(loads[0].1, 0x800000);
    for pair in loads.windows(2) {
        assert!(pair[1].1 >= pair[0].1 + pair[0].2, "{loads:?}");
    }
}

/// `--oformat=binary`: the loaded bytes from the lowest load address, byte for byte as GNU
/// ld writes them: the multiboot kernel, the regions program (data loaded after the code
/// in rom, AT>) and a boot sector linked at 0x7c00 with -Ttext.
#[test]
fn binary_output_as_gnu_ld() {
    let tmp = TempDir::new("scripts-binary");
    let kernel = [
        build(&tmp, "kernel_boot.s", &[]),
        build(&tmp, "kernel_main.c", &["-mno-red-zone", "-fcommon"]),
    ];
    let kernel_ld = scripts_dir().join("kernel.ld");
    let regions = [build(&tmp, "start.s", &[]), build(&tmp, "tables.c", &[])];
    let regions_ld = scripts_dir().join("regions.ld");
    std::fs::write(
        tmp.join("boot.s"),
        ".code16\n.globl _start\n_start: mov $0x0e41, %ax\nint $0x10\nhlt\nmsg: .ascii \"hi\"\n\
         .org 510\n.word 0xaa55\n.section .note.GNU-stack,\"\",@progbits\n",
    )
    .unwrap();
    let boot = tmp.join("boot.o");
    run_step(
        Command::new("as")
            .arg(tmp.join("boot.s"))
            .arg("-o")
            .arg(&boot),
    );
    let cases: [(&str, Vec<&str>, &[PathBuf]); 3] = [
        (
            "kernel",
            vec![
                "-nostdlib",
                "-z",
                "noexecstack",
                "-T",
                kernel_ld.to_str().unwrap(),
            ],
            &kernel,
        ),
        (
            "regions",
            vec!["-static", "-T", regions_ld.to_str().unwrap()],
            &regions,
        ),
        (
            "boot",
            vec!["-Ttext", "0x7c00"],
            std::slice::from_ref(&boot),
        ),
    ];
    for (name, args, objects) in cases {
        let mut args = args.clone();
        args.push("--oformat=binary");
        let gnu = link(
            &tmp,
            Path::new("ld"),
            &format!("{name}-gnu.bin"),
            &args,
            objects,
        );
        let tested = link(
            &tmp,
            &LinkerUnderTest::get().path,
            &format!("{name}-tested.bin"),
            &args,
            objects,
        );
        let (gnu, tested) = (std::fs::read(gnu).unwrap(), std::fs::read(tested).unwrap());
        assert!(!gnu.is_empty(), "{name}: GNU ld's image is empty");
        assert!(
            gnu == tested,
            "{name}: {} bytes from GNU ld, {} from weld",
            gnu.len(),
            tested.len()
        );
    }
}
