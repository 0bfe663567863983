//! The ELF header, the program headers and the notes whose bytes layout decided; the
//! section headers and `.shstrtab`; and which section header an address falls in
//! (`SectionIndex`, `section_index_of`), a symbol's `st_shndx`. Where the section headers
//! go in the file is the tail pass's business (`append_tables`).

use super::Moved;
use crate::arch::{Arch, Current as A};
use crate::args::Config;
use crate::context::Context;
use crate::encode::{put_u16, put_u32, put_u64, section_header};
use crate::layout::{Layout, Synthetic};
use object::elf;

/// The ELF header, the program headers and the notes whose bytes layout decided.
pub(super) fn write_headers(
    ctx: &Context,
    layout: &Layout,
    buf: &mut [u8],
    shoff: u64,
    shnum: usize,
) {
    // ELF header and program headers.
    let e_type = if layout.pie {
        elf::ET_DYN
    } else {
        elf::ET_EXEC
    };
    let phnum = layout.segments.len() as u16;
    write_elf_header(
        buf,
        ctx.res,
        e_type,
        layout.entry,
        phnum,
        shoff,
        shnum as u16,
    );
    for (i, seg) in layout.segments.iter().enumerate() {
        let at = 64 + 56 * i;
        put_u32(buf, at, seg.p_type);
        put_u32(buf, at + 4, seg.p_flags);
        put_u64(buf, at + 8, seg.offset);
        put_u64(buf, at + 16, seg.vaddr);
        put_u64(buf, at + 24, seg.paddr);
        put_u64(buf, at + 32, seg.filesz);
        put_u64(buf, at + 40, seg.memsz);
        put_u64(buf, at + 48, seg.align);
    }

    for &(kind, ref bytes) in &layout.fixed_notes {
        if let Some(note) = layout.synthetic(kind) {
            let at = note.offset as usize;
            buf[at..at + bytes.len()].copy_from_slice(bytes);
        }
    }
}

/// The ELF header (program headers, if any, follow it at offset 64). The output is
/// ELFOSABI_GNU when the inputs use GNU extensions (IFUNC, unique symbols).
pub(crate) fn write_elf_header(
    buf: &mut [u8],
    res: &crate::resolve::Resolution,
    e_type: u16,
    entry: u64,
    phnum: u16,
    shoff: u64,
    shnum: u16,
) {
    buf[..4].copy_from_slice(b"\x7fELF");
    buf[4] = elf::ELFCLASS64;
    buf[5] = elf::ELFDATA2LSB;
    buf[6] = elf::EV_CURRENT;
    let gnu_abi = res
        .objects
        .iter()
        .any(|o| o.obj.data[7] == elf::ELFOSABI_GNU);
    buf[7] = if gnu_abi {
        elf::ELFOSABI_GNU
    } else {
        elf::ELFOSABI_NONE
    };
    put_u16(buf, 16, e_type);
    put_u16(buf, 18, A::E_MACHINE);
    put_u32(buf, 20, u32::from(elf::EV_CURRENT));
    put_u64(buf, 24, entry);
    put_u64(buf, 32, if phnum > 0 { 64 } else { 0 });
    put_u64(buf, 40, shoff);
    put_u32(buf, 48, 0);
    put_u16(buf, 52, 64);
    put_u16(buf, 54, if phnum > 0 { 56 } else { 0 });
    put_u16(buf, 56, phnum);
    put_u16(buf, 58, 64);
    put_u16(buf, 60, shnum);
    put_u16(buf, 62, shnum - 1);
}

/// An extra section's header fields: (name, type, link (1: the next section), info, align,
/// entsize, offset, size).
pub(super) type ExtraSection = (&'static str, u32, u32, u32, u64, u64, u64, u64);

/// The section headers (into `headers`): the layout's sections (`moved` by compression),
/// then `--emit-relocs`' `.rela<name>` sections (name, target index, offset, size), then
/// `extra` (`.symtab`, `.strtab`, `.shstrtab` last).
pub(super) fn write_section_headers(
    layout: &Layout,
    shdr_names: &[u32],
    shstrtab: &[u8],
    moved: &Moved,
    extra_sections: &[ExtraSection],
    kept_sections: &[(&String, u32, u64, u64)],
    headers: &mut [u8],
) {
    let n_out = layout.order.len();
    use Synthetic::*;
    let index_of = |kind| {
        let id = layout.synthetic_index.get(kind);
        layout
            .order
            .iter()
            .position(|&o| Some(o) == id)
            .map_or(0, |p| p as u32 + 1)
    };
    let dynsym_index = index_of(Dynsym);
    let dynstr_index = index_of(Dynstr);
    for (i, id) in layout.order.iter().enumerate() {
        let s = &layout.sections[id.0 as usize];
        let at = 64 * (i + 1);
        let (link, info) = match s.synthetic {
            Some(RelaPlt) => (dynsym_index, index_of(GotPlt)),
            _ if s.sh_type == elf::SHT_RELA => (dynsym_index, 0),
            Some(Dynsym) => (dynstr_index, layout.dynamic.first_hashed.min(1)),
            Some(Dynamic) => (dynstr_index, 0),
            Some(GnuHash | Hash | Versym) => (dynsym_index, 0),
            Some(Verneed) => (dynstr_index, layout.dynamic.verneed_count),
            Some(Verdef) => (dynstr_index, layout.dynamic.verdef_count),
            _ => (0, 0),
        };
        let flags = if s.sh_type == elf::SHT_RELA && !layout.pie && s.synthetic.is_some() {
            s.sh_flags | u64::from(elf::SHF_INFO_LINK)
        } else {
            s.sh_flags
        };
        let (offset, size, flags) = moved
            .get(&id.0)
            .copied()
            .unwrap_or((s.offset, s.size, flags));
        headers[at..at + 64].copy_from_slice(&section_header(
            shdr_names[i],
            s.sh_type,
            flags,
            s.addr,
            offset,
            size,
            link,
            info,
            s.align,
            s.entsize,
        ));
    }
    // (The kept relocations' headers come before .symtab's, .shstrtab's stays last.)
    let n_kept = kept_sections.len();
    let symtab_index = (n_out + n_kept + 1) as u32;
    for (j, (name, sh_type, link, info, align, entsize, off, size)) in
        extra_sections.iter().enumerate()
    {
        let at = 64 * (n_out + n_kept + 1 + j);
        let link = if *link == 1 { symtab_index + 1 } else { 0 };
        let name_off = find_name(shstrtab, name);
        headers[at..at + 64].copy_from_slice(&section_header(
            name_off, *sh_type, 0, 0, *off, *size, link, *info, *align, *entsize,
        ));
    }
    for (j, (name, target, off, size)) in kept_sections.iter().enumerate() {
        let at = 64 * (n_out + 1 + j);
        headers[at..at + 64].copy_from_slice(&section_header(
            find_name(shstrtab, name),
            elf::SHT_RELA,
            u64::from(elf::SHF_INFO_LINK),
            0,
            *off,
            *size,
            symtab_index,
            *target,
            8,
            24,
        ));
    }
}

/// `.shstrtab` as the layout knows it: each output section's name offset (in `layout.order`)
/// and the table, ending with `.symtab`, `.strtab` (unless `-s`) and `.shstrtab` (the tail
/// pass appends `--emit-relocs`' names).
pub(super) fn section_names(config: &Config, layout: &Layout) -> (Vec<u32>, Vec<u8>) {
    let mut table = vec![0u8];
    let mut offsets = Vec::new();
    for id in &layout.order {
        offsets.push(table.len() as u32);
        table.extend_from_slice(layout.sections[id.0 as usize].name.as_bytes());
        table.push(0);
    }
    if !config.strip_all {
        table.extend_from_slice(b".symtab\0.strtab\0");
    }
    table.extend_from_slice(b".shstrtab\0");
    (offsets, table)
}

/// The offset of `name` in the string table `table` (0 if it is not there).
fn find_name(table: &[u8], name: &str) -> u32 {
    let mut needle = name.as_bytes().to_vec();
    needle.push(0);
    table
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or(0) as u32
}

/// Output section header index of the alloc section holding `addr` (TLS symbols are looked
/// up among TLS sections, since `.tbss` overlaps what follows it).
pub(super) fn section_index_of(layout: &Layout, addr: u64, tls: bool) -> u16 {
    for (i, id) in layout.order.iter().enumerate() {
        let s = &layout.sections[id.0 as usize];
        if s.sh_flags & u64::from(elf::SHF_ALLOC) == 0 {
            continue;
        }
        if (s.sh_flags & u64::from(elf::SHF_TLS) != 0) != tls {
            continue;
        }
        if addr >= s.addr && addr < s.addr + s.size.max(1) {
            return (i + 1) as u16;
        }
    }
    elf::SHN_ABS
}

/// Finds the output section (its index in the section header table) that holds an address,
/// as a symbol's `st_shndx`: the first allocated section in file order whose range (at least
/// one byte) holds it, TLS symbols in TLS sections only.
pub(crate) struct SectionIndex {
    /// Per TLS-ness: (start, end, section header index), in file order (by address).
    ranges: [Vec<(u64, u64, u16)>; 2],
    /// The sections' starts never decrease in file order (as `layout` places them).
    sorted: bool,
}

impl SectionIndex {
    pub(crate) fn new(layout: &Layout) -> SectionIndex {
        let mut ranges: [Vec<(u64, u64, u16)>; 2] = Default::default();
        for (i, id) in layout.order.iter().enumerate() {
            let s = &layout.sections[id.0 as usize];
            if s.sh_flags & u64::from(elf::SHF_ALLOC) == 0 {
                continue;
            }
            let tls = s.sh_flags & u64::from(elf::SHF_TLS) != 0;
            ranges[tls as usize].push((s.addr, s.addr + s.size.max(1), (i + 1) as u16));
        }
        let sorted = ranges
            .iter()
            .all(|r| r.windows(2).all(|w| w[0].0 <= w[1].0));
        SectionIndex { ranges, sorted }
    }

    pub(crate) fn of(&self, addr: u64, tls: bool) -> u16 {
        let ranges = &self.ranges[tls as usize];
        let linear = || {
            ranges
                .iter()
                .find(|r| r.0 <= addr && addr < r.1)
                .map(|r| r.2)
        };
        if !self.sorted {
            return linear().unwrap_or(elf::SHN_ABS);
        }
        // Allocated sections follow each other by address; only one-byte stand-ins for empty
        // sections share a start with the next section. Of the sections starting at or
        // before `addr`, the first that holds it is among the last ones with one start.
        let p = ranges.partition_point(|r| r.0 <= addr);
        let mut found = None;
        for &(start, end, index) in ranges[..p].iter().rev() {
            if addr < end {
                found = Some(index);
            }
            if start < addr {
                break;
            }
        }
        found.unwrap_or(elf::SHN_ABS)
    }
}
