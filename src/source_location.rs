//! Where a place in an input section came from, for error messages only: the function that
//! contains it (from the object's symbol table) and the source file and line (from its
//! DWARF line table, read with gimli; for a variable, from its DWARF declaration). Undefined and duplicate symbols are reported with
//! these, as lld reports them:
//!
//! ```text
//! weld: error: undefined symbol: missing
//! >>> referenced by main.c:5 (/src/main.c:5)
//! >>>               main.o:(main)
//! ```
//!
//! Nothing here runs on a successful link. In a relocatable object the line table's
//! addresses are relocations against section symbols; they are applied to a copy of
//! `.debug_line` with the section's index in the high bits of each address, so a row is
//! matched by section and offset. An object without line information gives the function
//! alone, or the section and offset.

use crate::input::elf::{ObjectFile, LE};
use gimli::{EndianSlice, LittleEndian};
use object::elf;

/// Where a section index goes in a relocated line-table address.
const SECTION_SHIFT: u32 = 40;

/// The source file and line of `offset` in section `sec`: (`file:line` as the line table
/// names the file, and the full path when the table has its directory).
pub fn line_of(obj: &ObjectFile, sec: usize, offset: u64) -> Option<(String, Option<String>)> {
    let (index, contents) = (|name: &[u8]| section_index(obj, name), |i| contents(obj, i));
    let line_index = index(b".debug_line")?;
    let mut line = contents(line_index).to_vec();
    relocate(obj, &mut line, obj.relocs[line_index]);
    let line_str = index(b".debug_line_str").map_or(&[][..], contents);
    let strings = index(b".debug_str").map_or(&[][..], contents);
    let debug_line = gimli::DebugLine::new(&line, LittleEndian);
    let line_str = gimli::DebugLineStr::new(line_str, LittleEndian);
    let strings = gimli::DebugStr::new(strings, LittleEndian);
    let target = ((sec as u64) << SECTION_SHIFT) | offset;
    let mut unit_offset = 0usize;
    while unit_offset < line.len() {
        let program = debug_line
            .program(gimli::DebugLineOffset(unit_offset), 8, None, None)
            .ok()?;
        let header = program.header().clone();
        unit_offset = unit_offset
            .saturating_add(header.unit_length())
            .saturating_add(usize::from(header.format().initial_length_size()));
        let mut rows = program.rows();
        // The row in force at `target`: the last one at or before it in its sequence.
        let mut previous: Option<(u64, u64, u64)> = None; // address, line, file
        while let Ok(Some((_, row))) = rows.next_row() {
            let address = row.address();
            if let Some((start, line, file)) = previous {
                if start <= target && target < address {
                    return describe(&header, file, line, &line_str, &strings);
                }
            }
            previous = if row.end_sequence() {
                None
            } else {
                Some((address, row.line().map_or(0, |l| l.get()), row.file_index()))
            };
        }
    }
    None
}

/// For a variable: the declaration's `file:line` (and full path) of the DWARF variable
/// whose location is `offset` in section `sec` (line tables cover code only), as lld finds
/// it. A C++ static member's definition names its declaration (DW_AT_specification).
pub fn variable_line(
    obj: &ObjectFile,
    sec: usize,
    offset: u64,
) -> Option<(String, Option<String>)> {
    let (index, contents) = (|name: &[u8]| section_index(obj, name), |i| contents(obj, i));
    let relocated = |name: &[u8]| -> Vec<u8> {
        index(name).map_or_else(Vec::new, |i| {
            let mut data = contents(i).to_vec();
            relocate(obj, &mut data, obj.relocs[i]);
            data
        })
    };
    let info = relocated(b".debug_info");
    if info.is_empty() {
        return None;
    }
    let (abbrev, line) = (relocated(b".debug_abbrev"), relocated(b".debug_line"));
    let (addr, str_offsets) = (relocated(b".debug_addr"), relocated(b".debug_str_offsets"));
    let line_str = index(b".debug_line_str").map_or(&[][..], contents);
    let strings = index(b".debug_str").map_or(&[][..], contents);
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
        let bytes: &[u8] = match id {
            gimli::SectionId::DebugInfo => &info,
            gimli::SectionId::DebugAbbrev => &abbrev,
            gimli::SectionId::DebugLine => &line,
            gimli::SectionId::DebugStr => strings,
            gimli::SectionId::DebugLineStr => line_str,
            gimli::SectionId::DebugAddr => &addr,
            gimli::SectionId::DebugStrOffsets => &str_offsets,
            _ => &[],
        };
        Ok(EndianSlice::new(bytes, LittleEndian))
    })
    .ok()?;
    let target = ((sec as u64) << SECTION_SHIFT) | offset;
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        let mut entries = unit.entries();
        while let Ok(Some(entry)) = entries.next_dfs() {
            if entry.tag() != gimli::DW_TAG_variable {
                continue;
            }
            let Some(gimli::AttributeValue::Exprloc(expr)) =
                entry.attr_value(gimli::DW_AT_location)
            else {
                continue;
            };
            if location_address(&dwarf, &unit, expr.0.slice()) != Some(target) {
                continue;
            }
            // The definition's own line, and its file unless only its declaration (the
            // DW_AT_specification of a C++ static member) names one.
            let value = |e: &gimli::DebuggingInformationEntry<EndianSlice<LittleEndian>>,
                         at: gimli::DwAt| match e.attr_value(at)? {
                gimli::AttributeValue::FileIndex(n) => Some(n),
                other => other.udata_value(),
            };
            let declaration = match entry.attr_value(gimli::DW_AT_specification) {
                Some(gimli::AttributeValue::UnitRef(at)) => unit.entry(at).ok(),
                _ => None,
            };
            let pick = |at: gimli::DwAt| {
                value(entry, at).or_else(|| declaration.as_ref().and_then(|d| value(d, at)))
            };
            let (file, line) = (pick(gimli::DW_AT_decl_file)?, pick(gimli::DW_AT_decl_line)?);
            let program = unit.line_program.as_ref()?;
            let line_str = gimli::DebugLineStr::new(line_str, LittleEndian);
            let strings = gimli::DebugStr::new(strings, LittleEndian);
            return describe(program.header(), file, line, &line_str, &strings);
        }
    }
    None
}

/// The (relocated) address a variable's location expression names, if it is only that:
/// `DW_OP_addr A`, DWARF 5's `DW_OP_addrx I` (clang's default), or a TLS variable's
/// `DW_OP_const8u OFFSET` (or `DW_OP_constx I`) then `DW_OP_GNU_push_tls_address` or
/// `DW_OP_form_tls_address`.
fn location_address(
    dwarf: &gimli::Dwarf<EndianSlice<LittleEndian>>,
    unit: &gimli::Unit<EndianSlice<LittleEndian>>,
    ops: &[u8],
) -> Option<u64> {
    let uleb = |bytes: &[u8]| -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    };
    let indexed = |index: u64| {
        dwarf
            .address(unit, gimli::DebugAddrIndex(index as usize))
            .ok()
    };
    let tls = |rest: &[u8]| {
        rest == [gimli::DW_OP_GNU_push_tls_address.0] || rest == [gimli::DW_OP_form_tls_address.0]
    };
    let (&op, rest) = ops.split_first()?;
    match op {
        _ if op == gimli::DW_OP_addr.0 && rest.len() == 8 => {
            Some(u64::from_le_bytes(rest.try_into().ok()?))
        }
        _ if op == gimli::DW_OP_addrx.0 => {
            let (index, n) = uleb(rest)?;
            (n == rest.len()).then_some(())?;
            indexed(index)
        }
        _ if op == gimli::DW_OP_const8u.0 && rest.len() == 9 && tls(&rest[8..]) => {
            Some(u64::from_le_bytes(rest[..8].try_into().ok()?))
        }
        _ if op == gimli::DW_OP_constx.0 => {
            let (index, n) = uleb(rest)?;
            tls(&rest[n..]).then_some(())?;
            indexed(index)
        }
        _ => None,
    }
}

/// The index of `obj`'s section `name`.
fn section_index(obj: &ObjectFile, name: &[u8]) -> Option<usize> {
    obj.section_names.iter().position(|n| *n == name)
}

/// Section `i`'s bytes, decompressed if they were compressed.
fn contents(obj: &ObjectFile, i: usize) -> &[u8] {
    match obj.decompressed.iter().find(|(d, _)| *d == i) {
        Some(&(_, bytes)) => bytes,
        None => obj.section_data(i),
    }
}

/// `file:line` and, with the file's directory, `dir/file:line`.
fn describe(
    header: &gimli::LineProgramHeader<EndianSlice<LittleEndian>>,
    file: u64,
    line: u64,
    line_str: &gimli::DebugLineStr<EndianSlice<LittleEndian>>,
    strings: &gimli::DebugStr<EndianSlice<LittleEndian>>,
) -> Option<(String, Option<String>)> {
    if line == 0 {
        return None;
    }
    let text = |value: gimli::AttributeValue<EndianSlice<LittleEndian>>| -> Option<String> {
        let bytes = match value {
            gimli::AttributeValue::String(s) => s,
            gimli::AttributeValue::DebugLineStrRef(o) => line_str.get_str(o).ok()?,
            gimli::AttributeValue::DebugStrRef(o) => strings.get_str(o).ok()?,
            _ => return None,
        };
        Some(String::from_utf8_lossy(bytes.slice()).into_owned())
    };
    let entry = header.file(file)?;
    let name = text(entry.path_name())?;
    let full = entry
        .directory(header)
        .and_then(text)
        .filter(|dir| !dir.is_empty() && !name.starts_with('/'))
        .map(|dir| format!("{dir}/{name}:{line}"));
    let short = name.rsplit('/').next().unwrap_or(&name).to_string();
    Some((format!("{short}:{line}"), full))
}

/// Applies the relocations of a debug section that a line table needs: 64-bit addresses
/// (section and offset, see [`SECTION_SHIFT`]) and 32-bit string offsets.
fn relocate(obj: &ObjectFile, data: &mut [u8], relocs: &[crate::input::elf::Rela]) {
    for r in relocs {
        let at = r.r_offset.get(LE) as usize;
        let sym = (r.r_info.get(LE) >> 32) as usize;
        let Some(symbol) = obj.symbols.get(sym) else {
            continue;
        };
        let value = symbol
            .st_value
            .get(LE)
            .wrapping_add(r.r_addend.get(LE) as u64);
        use crate::arch::{Arch, Current as A, Expr};
        let r_type = (r.r_info.get(LE) & 0xffff_ffff) as u32;
        match (A::classify(r_type), A::width(r_type)) {
            // (A TLS variable's offset is matched as an address too: section and offset.)
            (Expr::AbsWord | Expr::DtpOff, 8) => {
                let sec = u64::from(obj.symbol_shndx(sym));
                if let Some(bytes) = data.get_mut(at..at.saturating_add(8)) {
                    let address = (sec << SECTION_SHIFT) | (value & ((1 << SECTION_SHIFT) - 1));
                    bytes.copy_from_slice(&address.to_le_bytes());
                }
            }
            (Expr::Abs, 4) => {
                if let Some(bytes) = data.get_mut(at..at.saturating_add(4)) {
                    bytes.copy_from_slice(&(value as u32).to_le_bytes());
                }
            }
            _ => {}
        }
    }
}

/// The function (or other symbol with a size) of the object whose range holds `offset` in
/// section `sec`, demangled.
pub fn function_of(obj: &ObjectFile, sec: usize, offset: u64) -> Option<String> {
    (1..obj.symbols.len())
        .filter(|&i| obj.symbol_shndx(i) as usize == sec)
        .filter(|&i| {
            let s = &obj.symbols[i];
            let (start, size) = (s.st_value.get(LE), s.st_size.get(LE));
            matches!(
                s.st_type(),
                elf::STT_FUNC | elf::STT_OBJECT | elf::STT_TLS | elf::STT_GNU_IFUNC
            ) && start <= offset
                && offset < start.saturating_add(size)
        })
        .find_map(|i| obj.symbol_name(i).ok().filter(|n| !n.is_empty()))
        .map(crate::symbols::demangle)
}

/// The lines lld writes under an error for a place in an object: `>>> {what} file:line
/// (full path:line)` then `>>>   object:(function)`; without line information,
/// `>>> {what} object:(function)` or `object:(section+offset)`.
pub fn describe_place(
    object_name: &str,
    obj: &ObjectFile,
    sec: usize,
    offset: u64,
    what: &str,
) -> String {
    let place = match function_of(obj, sec, offset) {
        Some(function) => format!("{object_name}:({function})"),
        None => format!(
            "{object_name}:({}+{offset:#x})",
            String::from_utf8_lossy(obj.section_names.get(sec).copied().unwrap_or_default())
        ),
    };
    match line_of(obj, sec, offset).or_else(|| variable_line(obj, sec, offset)) {
        Some((short, full)) => {
            let full = full.map_or(String::new(), |f| format!(" ({f})"));
            let indent = " ".repeat(what.len() + 1);
            format!(">>> {what} {short}{full}\n>>> {indent}{place}")
        }
        None => format!(">>> {what} {place}"),
    }
}
