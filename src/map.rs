//! `-Map FILE` and `-M`/`--print-map`: the link map, in GNU ld's layout (binutils 2.40,
//! `ldlang.c` `print_output_section_statement`/`print_input_section`), so that tools and
//! people that read GNU ld's maps read weld's: the input sections dropped, the memory
//! configuration, then every output section with its address and size, each input section
//! in it with its address, size and file, and under each the global symbols it defines.
//!
//! What GNU ld prints and weld does not: why each archive member was taken, the script's
//! statements (weld has no default script), `*fill*` lines and linker-made symbols'
//! assignments. This module only formats what layout decided; it changes nothing.

use crate::input::elf::LE;
use crate::layout::{Layout, Member};
use crate::resolve::Resolution;
use crate::symbols::{Def, FileId};
use object::elf;
use std::fmt::Write as _;

/// The map text of a laid-out link.
pub fn render(res: &Resolution, layout: &Layout) -> String {
    let mut out = String::new();
    discarded(&mut out, res, layout);
    out.push_str("\nMemory Configuration\n\n");
    out.push_str("Name             Origin             Length             Attributes\n");
    out.push_str("*default*        0x0000000000000000 0xffffffffffffffff\n");
    out.push_str("\nLinker script and memory map\n\n");
    let symbols = symbols_by_section(res);
    for &id in &layout.order {
        let section = &layout.sections[id.0 as usize];
        out.push('\n');
        name_column(&mut out, &section.name, 15, 0);
        let _ = writeln!(out, " 0x{:016x} {:>#10x}", section.addr, section.size);
        for member in &section.members {
            match *member {
                Member::Input { file, sec } => {
                    input_section(&mut out, res, layout, &symbols, file, sec);
                }
                Member::Common(symbol) => {
                    let Some(&(out_sec, offset)) = layout.common_offsets.get(&symbol) else {
                        continue;
                    };
                    let addr = layout.sections[out_sec as usize].addr + offset;
                    let (size, file) = match res.symbols.get(symbol).def {
                        Def::Common { file, size, .. } => {
                            (size, res.objects[file.0 as usize].name.as_str())
                        }
                        _ => (0, ""),
                    };
                    name_column(&mut out, "COMMON", 14, 1);
                    let _ = writeln!(out, " 0x{addr:016x} {size:>#10x} {file}");
                    symbol_line(&mut out, addr, res.symbols.get(symbol).name);
                }
                Member::Merged(index) => {
                    let blob = &layout.merged[index as usize];
                    let addr = section.addr + blob.offset;
                    name_column(&mut out, "<merged strings>", 14, 1);
                    let _ = writeln!(out, " 0x{addr:016x} {:>#10x}", blob.size);
                }
            }
        }
    }
    out
}

/// `Discarded input sections`: sections with contents that the link dropped (by
/// `--gc-sections`, or a COMDAT group another file's copy of which was kept).
fn discarded(out: &mut String, res: &Resolution, layout: &Layout) {
    out.push_str("Discarded input sections\n\n");
    for (f, object) in res.objects.iter().enumerate() {
        let obj = &object.obj;
        for (sec, shdr) in obj.shdrs.iter().enumerate() {
            let alloc = shdr.sh_flags.get(LE) & u64::from(elf::SHF_ALLOC) != 0;
            let placed = layout.live.get(f).and_then(|l| l.get(sec)) == Some(&true);
            let dropped = object.comdat_discarded.get(sec) == Some(&true);
            if !alloc || (placed && !dropped) || shdr.sh_type.get(LE) == elf::SHT_GROUP {
                continue;
            }
            if !dropped
                && layout.placements[f]
                    .get(sec)
                    .is_some_and(|p| p.out != crate::layout::NOT_PLACED)
            {
                continue;
            }
            // Empty sections take no room either way (GNU ld lists them in the map proper).
            if shdr.sh_size.get(LE) == 0 {
                continue;
            }
            let name = String::from_utf8_lossy(obj.section_names[sec]);
            name_column(out, &name, 14, 1);
            let _ = writeln!(
                out,
                " 0x{:016x} {:>#10x} {}",
                0,
                shdr.sh_size.get(LE),
                object.name
            );
        }
    }
}

/// One input section's line and the lines of the global symbols it defines.
fn input_section(
    out: &mut String,
    res: &Resolution,
    layout: &Layout,
    symbols: &[Vec<(u32, u64, &'static [u8])>],
    file: FileId,
    sec: u32,
) {
    let object = &res.objects[file.0 as usize];
    let Some(addr) = layout.section_address(file, sec, 0) else {
        return;
    };
    // (For `.eh_frame` and merged strings, which were taken apart: what the input had.)
    let size = object.obj.section_size(sec as usize);
    let name = String::from_utf8_lossy(object.obj.section_names[sec as usize]);
    name_column(out, &name, 14, 1);
    let _ = writeln!(out, " 0x{addr:016x} {size:>#10x} {}", object.name);
    // The file's symbols are sorted by section: this section's are one run of them (a scan
    // of all of them per section was quadratic in a Rust object's thousands of sections).
    let of_file = &symbols[file.0 as usize];
    let first = of_file.partition_point(|&(s, _, _)| s < sec);
    for &(_, value, name) in of_file[first..].iter().take_while(|&&(s, _, _)| s == sec) {
        if let Some(addr) = layout.section_address(file, sec, value) {
            symbol_line(out, addr, name);
        }
    }
}

/// Per file, the global symbols whose definition the resolution took from it: (section,
/// value, name), sorted by section and value as GNU ld lists them.
fn symbols_by_section(res: &Resolution) -> Vec<Vec<(u32, u64, &'static [u8])>> {
    let mut by_file: Vec<Vec<(u32, u64, &'static [u8])>> = vec![Vec::new(); res.objects.len()];
    for symbol in &res.symbols.symbols {
        let Def::Defined { file, sym, .. } = symbol.def else {
            continue;
        };
        let obj = &res.objects[file.0 as usize].obj;
        let Some(st) = obj.symbols.get(sym as usize) else {
            continue;
        };
        if st.st_type() == elf::STT_SECTION || st.st_type() == elf::STT_FILE {
            continue;
        }
        let shndx = obj.symbol_shndx(sym as usize);
        by_file[file.0 as usize].push((shndx, st.st_value.get(LE), symbol.name));
    }
    for list in &mut by_file {
        list.sort_unstable();
    }
    by_file
}

fn symbol_line(out: &mut String, addr: u64, name: &[u8]) {
    let _ = writeln!(
        out,
        "                0x{addr:016x}                {}",
        String::from_utf8_lossy(name)
    );
}

/// A name in a column of `width` after `indent` spaces; a longer name gets a line of its
/// own and the next column starts on the following line, as in GNU ld's maps.
fn name_column(out: &mut String, name: &str, width: usize, indent: usize) {
    out.push_str(&" ".repeat(indent));
    if name.len() >= width {
        out.push_str(name);
        out.push('\n');
        out.push_str(&" ".repeat(indent + width));
    } else {
        let _ = write!(out, "{name:<width$}");
    }
}

/// `--cref`: every global symbol an object defines or refers to, sorted by name, with the
/// files that define it, then those with a common definition, then those that refer to it,
/// in GNU ld's layout (`ldcref.c`: files from column 50; within each group the last input
/// first, as GNU ld lists them). GNU ld also lists each shared library's every dynamic
/// symbol and version name; weld lists a library only as the definition of a symbol the
/// objects use.
pub fn cross_references(res: &Resolution, demangle: bool) -> String {
    #[derive(Default)]
    struct Files<'a> {
        defs: Vec<&'a str>,
        commons: Vec<&'a str>,
        refs: Vec<&'a str>,
    }
    let mut table: std::collections::BTreeMap<&[u8], Files> = Default::default();
    for object in &res.objects {
        let first = object.obj.first_global;
        for (i, &id) in object.global_ids.iter().enumerate() {
            let Some(sym) = object.obj.symbols.get(first + i) else {
                continue;
            };
            let files = table.entry(res.symbols.get(id).name).or_default();
            let group = match sym.st_shndx.get(LE) {
                elf::SHN_UNDEF => &mut files.refs,
                elf::SHN_COMMON => &mut files.commons,
                _ => &mut files.defs,
            };
            if group.last() != Some(&object.name.as_str()) {
                group.push(&object.name);
            }
        }
    }
    for (name, files) in table.iter_mut() {
        if let Some(id) = res.symbols.lookup(name) {
            if let Def::Shared { dso, .. } = res.symbols.get(id).def {
                files.defs.push(&res.dsos[dso as usize].dso.name);
            }
        }
    }
    // Demangled (GNU ld's default) names, sorted as printed.
    let mut rows: Vec<(String, &Files)> = table
        .iter()
        .map(|(name, files)| {
            let name = if demangle {
                crate::symbols::demangle(name)
            } else {
                String::from_utf8_lossy(name).into_owned()
            };
            (name, files)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("\nCross Reference Table\n\n");
    out.push_str(&format!("{:<50}File\n", "Symbol"));
    for (name, files) in rows {
        out.push_str(&name);
        out.push(' ');
        let mut column = name.len() + 1;
        for group in [&files.defs, &files.commons, &files.refs] {
            for file in group.iter().rev() {
                out.push_str(&" ".repeat(50usize.saturating_sub(column)));
                out.push_str(file);
                out.push('\n');
                column = 0;
            }
        }
        if column != 0 {
            out.push('\n');
        }
    }
    out
}
