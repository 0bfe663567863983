//! `--emit-relocs` (`-q`): programs linked with it by GNU ld and by the linker under test
//! must behave the same; each `.rela<name>` must hold GNU ld's relocations for that section,
//! entry by entry (same type, same global symbol; GNU ld's `mov $sym` form of a relaxed GOT
//! load is a PC-relative `lea` in weld); and every kept relocation the checker can evaluate
//! (PC32, PLT32 to a local definition, 64, 32, 32S) must agree with the bytes at its place:
//! a tool that rewrites the program from them (BOLT, the kernel's `relocs`) sees the
//! program as it is.

use crate::harness::{compile, run_program, run_step};
use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::LittleEndian as LE;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// One kept relocation: (offset in its section, type, symbol name if global, S + A where
/// the checker can tell S, the symbol's section index).
#[derive(Debug, Clone)]
struct Kept {
    offset: u64,
    r_type: u32,
    global: Option<String>,
    sym_value: u64,
    sym_shndx: u16,
    addend: i64,
}

/// A linked file's kept relocations by target section name, its bytes, and its sections'
/// (address, file offset, size) by name.
type KeptRelocations = (
    HashMap<String, Vec<Kept>>,
    Vec<u8>,
    HashMap<String, (u64, u64, u64)>,
);

/// The `.rela<name>` sections of a linked file (non-alloc, SHF_INFO_LINK).
fn kept_relocations(file: &Path) -> KeptRelocations {
    let data = std::fs::read(file).unwrap();
    let header = elf::FileHeader64::<LE>::parse(&*data).unwrap();
    let sections = header.sections(LE, &*data).unwrap();
    let symbols = sections.symbols(LE, &*data, elf::SHT_SYMTAB).unwrap();
    let mut targets = HashMap::new();
    for s in sections.iter() {
        let name = String::from_utf8_lossy(sections.section_name(LE, s).unwrap()).into_owned();
        targets.insert(name, (s.sh_addr(LE), s.sh_offset(LE), s.sh_size(LE)));
    }
    let mut kept = HashMap::new();
    for s in sections.iter() {
        if s.sh_type(LE) != elf::SHT_RELA || s.sh_flags(LE) & u64::from(elf::SHF_ALLOC) != 0 {
            continue;
        }
        let target = sections
            .section(object::SectionIndex(s.sh_info(LE) as usize))
            .unwrap();
        let target_name =
            String::from_utf8_lossy(sections.section_name(LE, target).unwrap()).into_owned();
        let relas: &[elf::Rela64<LE>] = s.data_as_array(LE, &*data).unwrap();
        let base = target.sh_addr(LE);
        let list = relas
            .iter()
            .map(|r| {
                let index = r.r_sym(LE, false) as usize;
                if index == 0 {
                    return Kept {
                        offset: r.r_offset(LE) - base,
                        r_type: r.r_type(LE, false),
                        global: None,
                        sym_value: 0,
                        sym_shndx: elf::SHN_UNDEF,
                        addend: r.r_addend(LE),
                    };
                }
                let sym = symbols.symbol(object::SymbolIndex(index)).unwrap();
                // (weld's .symtab has hidden globals as locals, GNU ld's as globals.)
                let hidden = sym.st_other() & 3 == elf::STV_HIDDEN;
                let global = (sym.st_bind() != elf::STB_LOCAL || hidden).then(|| {
                    let name = String::from_utf8_lossy(symbols.symbol_name(LE, sym).unwrap());
                    // GNU ld's .symtab spells imports `name@VERSION`.
                    name.split('@').next().unwrap().to_owned()
                });
                Kept {
                    offset: r.r_offset(LE) - base,
                    r_type: r.r_type(LE, false),
                    global,
                    sym_value: sym.st_value(LE),
                    sym_shndx: sym.st_shndx(LE),
                    addend: r.r_addend(LE),
                }
            })
            .collect();
        kept.insert(target_name, list);
    }
    (kept, data, targets)
}

/// Checks each kept relocation that can be evaluated against the bytes at its place;
/// returns how many were checked.
fn check_against_bytes(file: &Path) -> usize {
    let (kept, data, targets) = kept_relocations(file);
    // A PIE's absolute addresses are the loader's (GNU ld leaves 0 where a dynamic
    // relocation applies): R_X86_64_64 is checked in position-dependent programs only.
    let pie = elf::FileHeader64::<LE>::parse(&*data).unwrap().e_type(LE) == elf::ET_DYN;
    let mut checked = 0;
    for (name, list) in &kept {
        let (addr, offset, _) = targets[name];
        if addr == 0 {
            continue; // non-alloc: values are section offsets the checker does not model
        }
        for k in list {
            // Defined symbols only (imports resolve at run time).
            if k.sym_shndx == elf::SHN_UNDEF || k.sym_shndx >= elf::SHN_LORESERVE {
                continue;
            }
            let s_a = k.sym_value.wrapping_add(k.addend as u64);
            let p = addr + k.offset;
            let at = (offset + k.offset) as usize;
            let (expected, width) = match k.r_type {
                elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => (s_a.wrapping_sub(p), 4),
                elf::R_X86_64_64 if !pie => (s_a, 8),
                elf::R_X86_64_32 | elf::R_X86_64_32S => (s_a, 4),
                _ => continue,
            };
            let mut bytes = [0u8; 8];
            bytes[..width].copy_from_slice(&data[at..at + width]);
            let found = u64::from_le_bytes(bytes);
            let mask = if width == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * width)) - 1
            };
            assert_eq!(
                found,
                expected & mask,
                "{}: {name}+{:#x}: type {} holds {found:#x}, the kept relocation says {:#x}",
                file.display(),
                k.offset,
                k.r_type,
                expected & mask
            );
            checked += 1;
        }
    }
    checked
}

/// Section by section, the linker under test's kept relocations against GNU ld's, as
/// multisets of (type, global symbol or none): the linkers may order input sections
/// differently within an output section (GNU ld's script puts `.data.rel.ro.local` first).
fn compare_with_gnu(gnu: &Path, tested: &Path) {
    let (gnu_kept, ..) = kept_relocations(gnu);
    let (tested_kept, ..) = kept_relocations(tested);
    let mut names: Vec<&String> = gnu_kept.keys().collect();
    names.sort();
    let mut tested_names: Vec<&String> = tested_kept.keys().collect();
    tested_names.sort();
    assert_eq!(tested_names, names, "sections with kept relocations");
    // GNU ld writes a GOT load it made `mov $sym, %reg` as R_X86_64_32S; weld makes it
    // `lea sym(%rip), %reg`: R_X86_64_PC32. Both are counted as PC32 here.
    let summary = |list: &[Kept]| {
        let mut v: Vec<(u32, Option<String>)> = list
            .iter()
            .map(|k| {
                let r_type = match k.r_type {
                    elf::R_X86_64_32S if k.global.is_some() => elf::R_X86_64_PC32,
                    t => t,
                };
                (r_type, k.global.clone())
            })
            .collect();
        v.sort();
        v
    };
    for name in names {
        let (g, t) = (&gnu_kept[name], &tested_kept[name]);
        if name == ".eh_frame" {
            // The linkers merge CIEs differently, and GNU ld keeps the relocations of the
            // records it dropped as R_X86_64_NONE (weld leaves them out): only the values
            // are compared (`check_against_bytes`).
            continue;
        }
        assert_eq!(t.len(), g.len(), "{name}: number of kept relocations");
        let (mut g, mut t) = (summary(g), summary(t));
        if name.starts_with(".debug") {
            // Debug references to a discarded COMDAT copy: GNU ld points them at the kept
            // copy; weld (as lld and mold) writes a tombstone and R_X86_64_NONE.
            let nones = t.iter().filter(|k| k.0 == elf::R_X86_64_NONE).count();
            t.retain(|k| k.0 != elf::R_X86_64_NONE);
            for k in &t {
                if let Some(i) = g.iter().position(|x| x == k) {
                    g.remove(i);
                }
            }
            assert_eq!(
                g.len(),
                nones,
                "{name}: kept relocations (GNU ld's left over: {g:?})"
            );
            continue;
        }
        assert_eq!(t, g, "{name}: kept relocations");
    }
}

#[test]
fn emitted_relocations_match_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("emit-relocs");
    let flags = |pic: &str| {
        vec![
            pic.to_owned(),
            "-O1".to_owned(),
            "-g".to_owned(),
            "-pthread".to_owned(),
        ]
    };
    // GNU ld's own default script, for a link through a script (an empty section the
    // script's layout leaves out is the target of crtbegin's relocations).
    let verbose = run_step(Command::new("ld").arg("--verbose")).stdout_text();
    let script = tmp.join("default.ld");
    std::fs::write(
        &script,
        verbose
            .split("==================================================")
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    let script_arg = format!("-Wl,-T,{}", script.display());
    // (label, link mode, code model; -fPIC code in a PIE has relaxed TLS GD sequences that
    // still name __tls_get_addr)
    for (label, mode, pic) in [
        ("pie", "-pie", "-fPIE"),
        ("no-pie", "-no-pie", "-fno-PIE"),
        ("pie-pic", "-pie", "-fPIC"),
        ("script", "-no-pie", "-fno-PIE"),
    ] {
        let dir = tmp.join(label);
        std::fs::create_dir_all(&dir).unwrap();
        for (program, sources, libs) in [
            ("tls", &["tls.c", "tls_other.c"][..], &["-pthread"][..]),
            (
                "cxx",
                &["cxx.cc", "cxx_other.cc"][..],
                &["-lstdc++", "-lm"][..],
            ),
        ] {
            let objects: Vec<OsString> = sources
                .iter()
                .map(|s| compile(s, &flags(pic), &dir).into())
                .collect();
            let link = |tested: bool| {
                let out = dir.join(format!(
                    "{}-{program}",
                    if tested { "tested" } else { "gnu" }
                ));
                let mut cmd = crate::harness::gcc_through(tested, &wrapper);
                cmd.arg(mode)
                    .args(&objects)
                    .args(libs)
                    .arg("-Wl,--emit-relocs");
                if label == "script" {
                    cmd.arg(&script_arg);
                }
                run_step(cmd.arg("-o").arg(&out));
                out
            };
            let (gnu, tested) = (link(false), link(true));
            let expected = run_program(&mut Command::new(&gnu)).stdout_text();
            assert_eq!(
                run_program(&mut Command::new(&tested)).stdout_text(),
                expected,
                "{program} {label}"
            );
            compare_with_gnu(&gnu, &tested);
            // The checker is checked on GNU ld's output too.
            assert!(
                check_against_bytes(&gnu) > 10,
                "{program} {label}: GNU ld's"
            );
            assert!(check_against_bytes(&tested) > 10, "{program} {label}");
        }
    }
}

#[test]
fn emit_relocs_with_strip_all_is_refused() {
    let tmp = crate::harness::TempDir::new("emit-relocs-strip");
    let o = compile("hello.c", &["-O1".to_owned()], tmp.path());
    let out = tmp.join("a.out");
    let linker = &crate::harness::LinkerUnderTest::get().path;
    let outcome = crate::harness::run(
        Command::new(linker)
            .arg("-q")
            .arg("-s")
            .arg(&o)
            .arg("-o")
            .arg(&out),
        b"",
        std::time::Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.describe());
    assert!(outcome
        .stderr_text()
        .contains("--emit-relocs cannot be used with -s"));
    assert!(!out.exists());
}
