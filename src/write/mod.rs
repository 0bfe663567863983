//! Phase 4: writing. The only code that produces output bytes: copies input sections,
//! applies relocations, fills synthetic sections, and writes headers, symbol tables and the
//! build-id. It decides nothing about layout; every address comes from [`Layout`].

use crate::arch::{Arch, Current as A};
use crate::args::Config;
use crate::context::{defined_target, Context, GotKind, OutputKind, SymRef, Target};
use crate::eh_frame;
use crate::encode::{put_u16, put_u32, put_u64, section_header};
use crate::input::elf::LE;
use crate::layout::{Layout, Member, OutputSection, Synthetic};
use crate::symbols::{Def, FileId};
use anyhow::{bail, Result};
use object::elf;
use rayon::prelude::*;

mod relocate;
use relocate::copy_and_relocate;
pub(crate) use relocate::SectionOutput;

/// An `Elf64_Sym`, its name (if any) appended to `strtab`.
pub(crate) fn symtab_entry(
    strtab: &mut Vec<u8>,
    name: &[u8],
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
) -> [u8; 24] {
    let mut e = [0u8; 24];
    let name_off = if name.is_empty() {
        0
    } else {
        let o = strtab.len() as u32;
        strtab.extend_from_slice(name);
        strtab.push(0);
        o
    };
    e[0..4].copy_from_slice(&name_off.to_le_bytes());
    e[4] = info;
    e[5] = other;
    e[6..8].copy_from_slice(&shndx.to_le_bytes());
    e[8..16].copy_from_slice(&value.to_le_bytes());
    e[16..24].copy_from_slice(&size.to_le_bytes());
    e
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynReloc {
    pub offset: u64,
    pub r_type: u32,
    /// `.dynsym` index (0: none).
    pub sym: u32,
    pub addend: u64,
}

/// An incremental update writes only some input sections; the dynamic relocations and
/// `.eh_frame_hdr` entries of the others are carried over from the old output.
#[derive(Default)]
pub struct Selection {
    /// Input sections to copy and relocate.
    pub sections: rustc_hash::FxHashSet<(FileId, u32)>,
    /// Files whose every slot is rewritten (with its spare room).
    pub files: rustc_hash::FxHashSet<FileId>,
    /// More slots rewritten whole, with their spare room: (output section, slot start).
    pub slots: rustc_hash::FxHashSet<(u32, u64)>,
    pub kept_dyn_relocs: Vec<DynReloc>,
    pub kept_fdes: Vec<(u64, u64)>,
    /// Local symbols to take from the old output's symbol table.
    pub symtab: Option<SymtabReuse>,
}

/// The old output's `.symtab` and `.strtab`, and which objects' local symbols an update
/// copies from them (`state::ObjectRecord::symtab`) instead of reading their inputs' symbol
/// tables again: those whose contents and slots stayed as they were, so that every local
/// symbol keeps its value and section. Only the file symbol is made anew (rustc names an
/// unchanged object anew in each build).
pub struct SymtabReuse {
    map: memmap2::Mmap,
    symtab: std::ops::Range<usize>,
    strtab: std::ops::Range<usize>,
    files: Vec<Option<[u32; 4]>>,
}

impl SymtabReuse {
    /// `of`: what the state recorded for a file, if it may be copied.
    /// `map`: the old output.
    pub fn new(
        map: memmap2::Mmap,
        n_files: usize,
        of: impl Fn(FileId) -> Option<[u32; 4]>,
    ) -> Option<SymtabReuse> {
        use object::read::elf::{FileHeader as _, SectionHeader as _};
        let header = elf::FileHeader64::<object::LittleEndian>::parse(&*map).ok()?;
        let sections = header.sections(LE, &*map).ok()?;
        let symtab = sections.iter().find(|s| s.sh_type(LE) == elf::SHT_SYMTAB)?;
        let strtab = sections
            .section(object::SectionIndex(symtab.sh_link(LE) as usize))
            .ok()?;
        let range = |s: &elf::SectionHeader64<object::LittleEndian>| {
            let (start, len) = s.file_range(LE)?;
            let end = start.checked_add(len)?;
            (end <= map.len() as u64).then_some(start as usize..end as usize)
        };
        let (symtab, strtab) = (range(symtab)?, range(strtab)?);
        Some(SymtabReuse {
            symtab,
            strtab,
            files: (0..n_files).map(|f| of(FileId(f as u32))).collect(),
            map,
        })
    }

    /// File `f`'s piece, copied, with `file_name` as its file symbol; `None` if it is not to
    /// be copied or the old tables do not hold what the state says.
    fn piece(&self, f: usize, file_name: &[u8]) -> Option<Piece> {
        let [first, count, start, len] = self.files.get(f).copied().flatten()?.map(|v| v as usize);
        let mut piece = Piece::default();
        if count == 0 {
            return Some(piece);
        }
        let symtab = &self.map[self.symtab.clone()];
        let strtab = &self.map[self.strtab.clone()];
        let entries = symtab.get(first * 24..(first + count) * 24)?;
        let names = strtab.get(start..start.checked_add(len)?)?;
        // The file symbol comes first, its name first in the piece's names.
        let name_of = |e: &[u8]| u32::from_le_bytes(e[0..4].try_into().unwrap()) as usize;
        if name_of(entries) != start || entries[4] & 0xf != elf::STT_FILE {
            return None;
        }
        let rest_at = memchr::memchr(0, names)? + 1;
        let rest = &names[rest_at..];
        let old_base = start + rest_at;
        let file = symtab_entry(
            &mut piece.strtab,
            file_name,
            elf::STT_FILE,
            0,
            elf::SHN_ABS,
            0,
            0,
        );
        piece.locals.reserve(count);
        piece.locals.push(file);
        let new_base = piece.strtab.len();
        piece.strtab.extend_from_slice(rest);
        for e in entries[24..].chunks_exact(24) {
            let mut e: [u8; 24] = e.try_into().unwrap();
            let name = name_of(&e);
            if name != 0 {
                let at = name.checked_sub(old_base).filter(|&at| at < rest.len())?;
                e[0..4].copy_from_slice(&((new_base + at) as u32).to_le_bytes());
            }
            piece.locals.push(e);
        }
        Some(piece)
    }
}

impl DynReloc {
    pub fn encode(&self) -> [u8; 24] {
        crate::encode::rela(self.offset, self.r_type, self.sym, self.addend)
    }

    /// An entry of `.rela.dyn` read back (`e` is 24 bytes).
    pub fn decode(e: &[u8]) -> DynReloc {
        let (offset, r_type, sym, addend) = crate::encode::read_rela(e);
        DynReloc::new(offset, r_type, sym, addend)
    }

    pub fn new(offset: u64, r_type: u32, sym: u32, addend: u64) -> DynReloc {
        DynReloc {
            offset,
            r_type,
            sym,
            addend,
        }
    }
}

pub fn write(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    select: Option<&Selection>,
) -> Result<Vec<u8>> {
    // Zeroed pages from the allocator: what is not written is never touched. The capacity
    // covers the tail, so appending it does not copy the buffer.
    let mut buf = vec![0u8; layout.file_size as usize + appended_bound(ctx, layout)];
    buf.truncate(layout.file_size as usize);
    let tail = write_into(config, ctx, layout, select, &mut buf, true)?;
    buf.truncate(tail.offset as usize);
    buf.extend_from_slice(&tail.bytes);
    Ok(buf)
}

/// [`write`], the file's two parts kept apart: `main[..tail.offset]`, then the tail.
pub fn write_parts(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    select: Option<&Selection>,
) -> Result<(memmap2::MmapMut, Tail)> {
    // A mapping of its own: an update fills a few scattered ranges of it, and the pages it
    // does not touch cost nothing.
    let mut buf = memmap2::MmapMut::map_anon(layout.file_size.max(1) as usize)?;
    let len = layout.file_size as usize;
    let tail = write_into(config, ctx, layout, select, &mut buf[..len], true)?;
    Ok((buf, tail))
}

/// What follows the layout's sections in the file (compressed debug sections if asked for,
/// `.symtab`, `.strtab`, `.shstrtab`, section headers), and where it starts: the file is
/// `main[..offset]` then `bytes`.
pub struct Tail {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Each object's local symbols: first `.symtab` entry, number of entries, and the range
    /// of their names in `.strtab` (for `state::ObjectRecord::symtab`).
    pub symtab_files: Vec<[u32; 4]>,
    /// Per global symbol, its entry's place among the global symbols' entries (see
    /// `SymtabPieces::global_positions`).
    pub symtab_globals: Vec<u32>,
}

/// Writes the output into `buf` (exactly `layout.file_size` bytes, a memory-mapped output
/// file or a vector) and returns the tail that follows it. Unless `zeroed` says that `buf`
/// is all zeros (a new file or vector), every byte no section fills is cleared: a reused
/// output file holds the old output's bytes.
pub fn write_into(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    select: Option<&Selection>,
    buf: &mut [u8],
    zeroed: bool,
) -> Result<Tail> {
    if layout.file_size > 1 << 40 {
        bail!("the output would be {} bytes: too large", layout.file_size);
    }
    if buf.len() as u64 != layout.file_size {
        bail!(
            "internal error: output buffer of {} bytes, layout needs {}",
            buf.len(),
            layout.file_size
        );
    }
    let mut steps = crate::PhaseTimer::new(config.time);
    let (symtab, produced) = write_sections(config, ctx, layout, select, buf, zeroed, &mut steps)?;
    steps.step("sections, symtab");
    write_linker_sections(ctx, layout, produced, buf, &mut steps)?;
    let (tail_offset, mut out, moved) = compress_debug_sections(config, layout, buf);
    steps.step("eh-frame-hdr");
    let tables = append_tables(
        config,
        ctx,
        layout,
        buf,
        symtab,
        &moved,
        tail_offset,
        &mut out,
    );
    write_headers(ctx, layout, buf, tables.shoff, tables.shnum);
    write_build_id(config, layout, buf, tail_offset, &out);
    steps.step("tail");
    Ok(Tail {
        offset: tail_offset,
        bytes: out,
        symtab_files: tables.symtab_files,
        symtab_globals: tables.symtab_globals,
    })
}

/// Dynamic relocations and `.eh_frame_hdr` entries the input sections produced.
struct Produced {
    dyn_relocs: Vec<DynReloc>,
    /// Addresses of RELATIVE relocations for `.relr.dyn`.
    relr: Vec<u64>,
    fde_table: Vec<(u64, u64)>,
}

/// The input sections, copied and relocated, with the spare room, code gaps and script data
/// filled; `.symtab` built meanwhile (unless `-s`).
fn write_sections(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    select: Option<&Selection>,
    buf: &mut [u8],
    zeroed: bool,
    steps: &mut crate::PhaseTimer,
) -> Result<(Option<SymtabPieces>, Produced)> {
    let mut errors = Vec::new();
    let mut dyn_relocs = Vec::new();
    let mut fde_table = Vec::new();

    // Input sections: each contribution is a disjoint slice of the output, copied and
    // relocated in parallel; results are gathered in file order, so output is deterministic.
    let jobs = section_jobs(ctx, layout, select);
    // What no input section fills (headers, padding, linker-made sections), to be cleared
    // if `buf` is not known to be zeros. Each job fills all of its slice.
    let mut gaps: Vec<&mut [u8]> = Vec::new();
    let slices = split_jobs(&jobs, buf, (!zeroed).then_some(&mut gaps))?;
    steps.step("jobs");
    // The symbol table does not depend on the sections' bytes: built meanwhile.
    let (symtab, results) = rayon::join(
        || {
            let reuse = select.and_then(|s| s.symtab.as_ref());
            (!config.strip_all).then(|| build_symtab(ctx, layout, reuse))
        },
        || -> Vec<SectionOutput> {
            gaps.into_par_iter()
                .flat_map(|g| g.par_chunks_mut(1 << 20))
                .for_each(|g| g.fill(0));
            run_jobs(ctx, layout, &jobs, slices)
        },
    );
    let mut relr = Vec::new();
    for r in results {
        dyn_relocs.extend(r.dyn_relocs);
        relr.extend(r.relr);
        fde_table.extend(r.fde_table);
        errors.extend(r.errors);
    }
    if let Some(select) = select {
        dyn_relocs.extend_from_slice(&select.kept_dyn_relocs);
        fde_table.extend_from_slice(&select.kept_fdes);
    }
    fill_spare_room(layout, select, buf);
    if layout.slots.is_empty() {
        fill_code_gaps(ctx, layout, buf);
    }
    // A linker script's data statements and fills.
    for (id, offset, bytes) in &layout.script_data {
        let at = (layout.sections[*id as usize].offset + offset) as usize;
        if let Some(to) = buf.get_mut(at..at + bytes.len()) {
            to.copy_from_slice(bytes);
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\nweld: error: "));
    }
    Ok((
        symtab,
        Produced {
            dyn_relocs,
            relr,
            fde_table,
        },
    ))
}

/// The linker's sections: GOT, copy relocations, PLT and IPLT, the dynamic relocation
/// tables, `.dynamic`, `.eh_frame_hdr` and `.comment`.
fn write_linker_sections(
    ctx: &Context,
    layout: &Layout,
    produced: Produced,
    buf: &mut [u8],
    steps: &mut crate::PhaseTimer,
) -> Result<()> {
    let Produced {
        mut dyn_relocs,
        mut relr,
        fde_table,
    } = produced;
    let dynsym_index = |symref: SymRef| match symref {
        SymRef::Global(id) => layout.dynamic.dynsym_index.get(&id).copied().unwrap_or(0),
        SymRef::Local(..) => 0,
    };
    // With `-z pack-relative-relocs` the GOT's RELATIVE relocations go to `.relr.dyn`.
    let packing = layout.synthetic(Synthetic::Relr).is_some();
    // GOT: each entry's value or dynamic relocations, found on all threads (an entry costs
    // a few table look-ups; a debug Rust binary has over 10000), then written in order.
    if let Some(got) = layout.synthetic(Synthetic::Got) {
        let entries: Vec<GotOut> = layout
            .needs
            .got_entries
            .par_iter()
            .zip(&layout.needs.got_slot)
            .with_min_len(1024)
            .map(|(&(symref, gk), &slot)| got_entry(ctx, layout, got, symref, gk, slot))
            .collect();
        for (value, relocs) in entries {
            if let Some((at, value)) = value {
                put_u64(buf, at, value);
            }
            for r in relocs.into_iter().flatten() {
                if packing && r.r_type == A::DYNAMIC.relative {
                    relr.push(r.offset);
                } else {
                    dyn_relocs.push(r);
                }
            }
        }
    }
    steps.step("got");
    // Copy relocations.
    for &id in &layout.needs.copies {
        if let Some(addr) = layout.target_address(Target::Shared(id)) {
            let dynsym = dynsym_index(SymRef::Global(id));
            dyn_relocs.push(DynReloc::new(addr, A::DYNAMIC.copy, dynsym, 0));
        }
    }
    // .got.plt, PLT, IPLT.
    let got_plt = layout.synthetic(Synthetic::GotPlt);
    let mut plt_relocs = Vec::new();
    if let Some(gp) = got_plt {
        let dynamic = layout.synthetic(Synthetic::Dynamic).map_or(0, |s| s.addr);
        put_u64(buf, gp.offset as usize, dynamic);
        if let Some(plt) = layout.synthetic(Synthetic::Plt) {
            let at = plt.offset as usize;
            A::write_plt_header(&mut buf[at..], plt.addr, gp.addr, layout.ibt_plt);
            for (i, &id) in layout.needs.plt_entries.iter().enumerate() {
                let entry = layout.plt_address(i as u32);
                let slot = gp.addr + 8 * (3 + i as u64);
                let at = (plt.offset + entry - plt.addr) as usize;
                // (The GOT slot points at `lazy` until the symbol is bound.)
                let ibt = layout.ibt_plt;
                let lazy = A::write_plt_entry(&mut buf[at..], entry, slot, i as u32, plt.addr, ibt);
                put_u64(buf, (gp.offset + 8 * (3 + i as u64)) as usize, lazy);
                let dynsym = dynsym_index(SymRef::Global(id));
                plt_relocs.push(DynReloc::new(slot, A::DYNAMIC.jump_slot, dynsym, 0));
            }
        }
        if let Some(iplt) = layout.synthetic(Synthetic::Iplt) {
            let first_slot = 3 + layout.needs.plt_entries.len() as u64;
            for (i, &symref) in layout.needs.iplt_entries.iter().enumerate() {
                let slot = gp.addr + 8 * (first_slot + i as u64);
                let entry = iplt.addr + 16 * i as u64;
                let at = iplt.offset as usize + 16 * i;
                A::write_iplt_entry(&mut buf[at..], entry, slot, layout.ibt_plt);
                let resolver = ifunc_resolver(ctx, layout, symref);
                put_u64(
                    buf,
                    (gp.offset + 8 * (first_slot + i as u64)) as usize,
                    resolver,
                );
                plt_relocs.push(DynReloc::new(slot, A::DYNAMIC.irelative, 0, resolver));
            }
        }
    }
    sort_dyn_relocs(&mut dyn_relocs);
    for (kind, relocs) in [
        (Synthetic::RelaDyn, &dyn_relocs),
        (Synthetic::RelaPlt, &plt_relocs),
        (Synthetic::RelaIplt, &plt_relocs),
    ] {
        write_rela(layout, kind, relocs, buf)?;
    }
    write_relr(layout, relr, buf)?;
    steps.step("dynamic relocs");
    write_dynamic(ctx, layout, buf);
    if let Some(hdr) = layout.synthetic(Synthetic::EhFrameHdr) {
        let eh_addr = layout
            .sections
            .iter()
            .find(|s| s.name == ".eh_frame" && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
            .map_or(0, |s| s.addr);
        let bytes = eh_frame::build_hdr(hdr.addr, eh_addr, fde_table);
        let at = hdr.offset as usize;
        buf[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    if let Some(c) = layout.synthetic(Synthetic::Comment) {
        let at = c.offset as usize;
        buf[at..at + layout.comment.len()].copy_from_slice(&layout.comment);
    }
    Ok(())
}

/// The non-alloc sections moved by `--compress-debug-sections`: (where the tail starts, its
/// bytes, each moved section's new offset, size and flags). Without compression the tail
/// starts at the end of `buf` and nothing moves.
fn compress_debug_sections(config: &Config, layout: &Layout, buf: &[u8]) -> (u64, Vec<u8>, Moved) {
    // --compress-debug-sections: the non-alloc tail is rewritten with compressed debug
    // sections (they are last in the file, so nothing else moves).
    let mut moved: rustc_hash::FxHashMap<u32, (u64, u64, u64)> = Default::default();
    // The file is buf[..tail_offset] then `out`.
    let mut tail_offset = buf.len() as u64;
    let mut out: Vec<u8> = Vec::new();
    let compression = match config.compress_debug_sections.as_deref() {
        Some("zlib") | Some("zlib-gabi") => Some(false),
        Some("zstd") => Some(true),
        _ => None,
    };
    if let Some(zstd) = compression {
        let non_alloc: Vec<_> = layout
            .order
            .iter()
            .filter(|id| layout.sections[id.0 as usize].sh_flags & u64::from(elf::SHF_ALLOC) == 0)
            .copied()
            .collect();
        if let Some(first) = non_alloc.first() {
            let start = layout.sections[first.0 as usize].offset as usize;
            let mut new_tail = Vec::new();
            for id in &non_alloc {
                let sec = &layout.sections[id.0 as usize];
                let bytes = &buf[sec.offset as usize..(sec.offset + sec.size) as usize];
                let pad = (start + new_tail.len()).next_multiple_of(sec.align.max(1) as usize)
                    - (start + new_tail.len());
                new_tail.resize(new_tail.len() + pad, 0);
                let offset = (start + new_tail.len()) as u64;
                if sec.name.starts_with(".debug") && sec.size > 0 {
                    let packed = crate::input::elf::compress(bytes, zstd, sec.align.max(1));
                    let flags = sec.sh_flags | u64::from(elf::SHF_COMPRESSED);
                    moved.insert(id.0, (offset, packed.len() as u64, flags));
                    new_tail.extend_from_slice(&packed);
                } else {
                    moved.insert(id.0, (offset, sec.size, sec.sh_flags));
                    new_tail.extend_from_slice(bytes);
                }
            }
            tail_offset = start as u64;
            out = new_tail;
        }
    }
    (tail_offset, out, moved)
}

/// A section moved by `--compress-debug-sections`: its new offset, size and flags.
type Moved = rustc_hash::FxHashMap<u32, (u64, u64, u64)>;

/// What `append_tables` put in the tail.
struct TailTables {
    /// Section header (offset, number of headers).
    shoff: u64,
    shnum: usize,
    symtab_files: Vec<[u32; 4]>,
    symtab_globals: Vec<u32>,
}

/// Appends `.symtab`, `.strtab`, `.shstrtab`, `--emit-relocs`' `.rela<name>` sections and the
/// section headers to the tail `out` (which starts at `tail_offset` in the file).
#[allow(clippy::too_many_arguments)]
fn append_tables(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    buf: &[u8],
    symtab: Option<SymtabPieces>,
    moved: &Moved,
    tail_offset: u64,
    out: &mut Vec<u8>,
) -> TailTables {
    // --emit-relocs: the inputs' relocations, in `.rela<name>` sections after `.shstrtab`.
    let kept = match (&symtab, config.emit_relocs) {
        (Some(symtab), true) => {
            let globals = symtab.global_indices(ctx.res.symbols.symbols.len());
            let first = symtab.section_symbols.unwrap_or(0);
            crate::emit_relocs::kept_relocations(ctx, layout, buf, &globals, first)
        }
        _ => Vec::new(),
    };
    // Symbol tables and section headers go after everything the layout placed.
    let (shdr_names, mut shstrtab) = section_names(config, layout);
    let kept_names: Vec<String> = kept
        .iter()
        .map(|(i, _)| format!(".rela{}", layout.sections[layout.order[*i].0 as usize].name))
        .collect();
    for name in &kept_names {
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
    }
    let mut extra_sections: Vec<ExtraSection> = Vec::new();
    // The file's length so far.
    let len = |out: &Vec<u8>| tail_offset + out.len() as u64;
    let pad_to = |out: &mut Vec<u8>, align: u64| {
        let at = len(out).next_multiple_of(align);
        out.resize((at - tail_offset) as usize, 0);
    };
    let mut offset = len(out);
    let mut symtab_files = Vec::new();
    let mut symtab_globals = Vec::new();
    if let Some(symtab) = symtab {
        if !layout.slots.is_empty() {
            // (For the incremental state only.)
            symtab_globals = symtab.global_positions(ctx.res.symbols.symbols.len());
        }
        pad_to(out, 8);
        offset = len(out);
        let (symtab_len, strtab_len, mut pieces) = symtab.append_to(out);
        pieces.truncate(symtab.n_files);
        symtab_files = pieces;
        extra_sections.push((
            ".symtab",
            elf::SHT_SYMTAB,
            1u32,
            symtab.n_locals as u32,
            8u64,
            24u64,
            offset,
            symtab_len,
        ));
        offset += symtab_len;
        extra_sections.push((".strtab", elf::SHT_STRTAB, 0, 0, 1, 0, offset, strtab_len));
        offset = len(out);
    }
    out.extend_from_slice(&shstrtab);
    extra_sections.push((
        ".shstrtab",
        elf::SHT_STRTAB,
        0,
        0,
        1,
        0,
        offset,
        shstrtab.len() as u64,
    ));
    let mut kept_sections = Vec::new(); // (name, target's header index, offset, size)
    for ((i, bytes), name) in kept.iter().zip(&kept_names) {
        pad_to(out, 8);
        kept_sections.push((name, *i as u32 + 1, len(out), bytes.len() as u64));
        out.extend_from_slice(bytes);
    }
    pad_to(out, 8);
    let shoff = len(out);
    let shnum = 1 + layout.order.len() + extra_sections.len() + kept_sections.len();
    out.resize(out.len() + 64 * shnum, 0);
    // Section headers are written relative to the tail.
    let headers = &mut out[(shoff - tail_offset) as usize..];
    write_section_headers(
        layout,
        &shdr_names,
        &shstrtab,
        moved,
        &extra_sections,
        &kept_sections,
        headers,
    );
    TailTables {
        shoff,
        shnum,
        symtab_files,
        symtab_globals,
    }
}

/// An extra section's header fields: (name, type, link (1: the next section), info, align,
/// entsize, offset, size).
type ExtraSection = (&'static str, u32, u32, u32, u64, u64, u64, u64);

/// The section headers (into `headers`): the layout's sections (`moved` by compression),
/// then `--emit-relocs`' `.rela<name>` sections (name, target index, offset, size), then
/// `extra` (`.symtab`, `.strtab`, `.shstrtab` last).
fn write_section_headers(
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

/// The ELF header, the program headers and the notes whose bytes layout decided.
fn write_headers(ctx: &Context, layout: &Layout, buf: &mut [u8], shoff: u64, shnum: usize) {
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

/// `.note.gnu.build-id`, last: it hashes everything else (`buf[..tail_offset]`, then `out`).
fn write_build_id(config: &Config, layout: &Layout, buf: &mut [u8], tail_offset: u64, out: &[u8]) {
    // Build-id last: it hashes everything else.
    if let Some(note) = layout.synthetic(Synthetic::BuildId) {
        let at = note.offset as usize;
        let n = layout.build_id_size as usize;
        crate::encode::build_id_note_header(buf, at, n);
        let id: Vec<u8> = match &config.build_id {
            Some(crate::args::BuildIdArg::Hex(bytes)) => bytes.clone(),
            Some(crate::args::BuildIdArg::Hash(crate::args::BuildId::Uuid)) => {
                let mut hasher = blake3::Hasher::new();
                hasher.update_rayon(&buf[..tail_offset as usize]);
                hasher.update(out);
                hasher.update(&std::process::id().to_le_bytes());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                hasher.update(&now.to_le_bytes());
                hasher.finalize().as_bytes()[..n].to_vec()
            }
            // md5 and sha1 name a size; any good hash of the output serves as the identity.
            _ => match &layout.build_id_seed {
                Some(seed) => blake3::hash(seed).as_bytes()[..n].to_vec(),
                None => output_digest(&buf[..tail_offset as usize], out)[..n].to_vec(),
            },
        };
        buf[at + 16..at + 16 + n].copy_from_slice(&id);
    }
}

/// The build-id of an output made of `main` then `tail`: XXH3-64 of every MiB on all
/// threads, then BLAKE3 of those hashes (the same bytes at any thread count). It only has
/// to tell outputs apart; XXH3 reads memory several times as fast as BLAKE3, which took
/// 6-10 ms of a 48 MB debug link.
fn output_digest(main: &[u8], tail: &[u8]) -> [u8; 32] {
    const CHUNK: usize = 1 << 20;
    let hashes: Vec<u64> = main
        .par_chunks(CHUNK)
        .chain(tail.par_chunks(CHUNK))
        .map(twox_hash::XxHash3_64::oneshot)
        .collect();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(main.len() as u64).to_le_bytes());
    for h in hashes {
        hasher.update(&h.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Incremental mode: the room after each slot's contents. In code it is filled with
/// `int3`. In sections that readers walk unit by unit (`.eh_frame`, `.debug_frame`,
/// `.debug_info`, `.debug_line`, ...), where zeros would read as a malformed unit, the
/// slot's last unit is lengthened over it and the room filled with a no-op for that
/// section (`DW_CFA_nop` / null DIEs / zero tuples, which end their lists, and
/// `DW_LNS_set_basic_block` in line programs, which adds no row). Elsewhere it stays zero.
/// The file id of a merged input's strings among `write`'s copy jobs (the section index is
/// its `Layout::merge_maps` index).
const MERGED_BLOB: FileId = FileId(u32::MAX);

/// A generous bound of the bytes `write` appends after the layout's end (`.symtab`,
/// `.strtab`, `.shstrtab`, section headers). Only speed depends on it.
fn appended_bound(ctx: &Context, layout: &Layout) -> usize {
    let mut n = 64 * (layout.order.len() + 8) + 64;
    for s in &layout.sections {
        n += s.name.len() + 1;
    }
    for o in &ctx.res.objects {
        n += 24 * (o.obj.first_global + 1) + 2 * o.obj.strtab.len() + o.name.len() + 1;
    }
    for s in &ctx.res.symbols.symbols {
        n += 24 + s.name.len() + 1;
    }
    n
}

/// An input section (or a run of merged strings) to write: its file offset and length, its
/// output section, file and section index (`MERGED_BLOB` and the merge map's index).
pub(crate) type Job<'a> = (usize, usize, &'a OutputSection, FileId, u32);

/// The input sections to write (all, or those `select` names), by file offset.
pub(crate) fn section_jobs<'a>(
    ctx: &Context,
    layout: &'a Layout,
    select: Option<&Selection>,
) -> Vec<Job<'a>> {
    let mut jobs: Vec<Job> = Vec::new();
    for id in &layout.order {
        let os = &layout.sections[id.0 as usize];
        if os.synthetic.is_some() || os.sh_type == elf::SHT_NOBITS {
            continue;
        }
        for member in &os.members {
            match *member {
                Member::Input { file, sec } => {
                    if select.is_some_and(|s| !s.sections.contains(&(file, sec))) {
                        continue;
                    }
                    let placement = layout.placements[file.0 as usize][sec as usize];
                    let len = layout.member_len(ctx.res, file, sec) as usize;
                    jobs.push(((os.offset + placement.offset) as usize, len, os, file, sec));
                }
                Member::Merged(m) => {
                    // One job per input: the run of the blob its own strings fill.
                    let blob = &layout.merged[m as usize];
                    for &i in &blob.maps {
                        let p = &layout.merge_maps[i as usize].pieces;
                        let at = (os.offset + blob.offset + p.owned_start) as usize;
                        let len = (p.owned_end - p.owned_start) as usize;
                        jobs.push((at, len, os, MERGED_BLOB, i));
                    }
                }
                Member::Common(_) => {}
            }
        }
    }
    jobs.sort_by_key(|j| j.0);
    jobs
}

/// Cuts `buf` into the jobs' slices; `gaps`, if given, gets the bytes between them.
pub(crate) fn split_jobs<'b>(
    jobs: &[Job],
    buf: &'b mut [u8],
    mut gaps: Option<&mut Vec<&'b mut [u8]>>,
) -> Result<Vec<&'b mut [u8]>> {
    let mut slices = Vec::with_capacity(jobs.len());
    let mut rest: &mut [u8] = buf;
    let mut consumed = 0usize;
    for &(offset, len, ..) in jobs {
        if offset < consumed || offset + len > consumed + rest.len() {
            bail!("internal error: overlapping section contributions at file offset {offset:#x}");
        }
        let (gap, tail) = std::mem::take(&mut rest).split_at_mut(offset - consumed);
        let (slice, tail) = tail.split_at_mut(len);
        if let Some(gaps) = gaps.as_mut().filter(|_| !gap.is_empty()) {
            gaps.push(gap);
        }
        slices.push(slice);
        rest = tail;
        consumed = offset + len;
    }
    if let Some(gaps) = gaps {
        gaps.push(rest);
    }
    Ok(slices)
}

/// Copies and relocates the jobs' sections into their slices, on all threads.
pub(crate) fn run_jobs(
    ctx: &Context,
    layout: &Layout,
    jobs: &[Job],
    slices: Vec<&mut [u8]>,
) -> Vec<SectionOutput> {
    slices
        .into_par_iter()
        .zip(jobs.par_iter())
        // Costs are uneven (debug sections of big objects come last): small chunks, so that
        // an idle thread always finds one to steal.
        .with_max_len(8)
        .map(|(slice, &(_, _, os, file, sec))| {
            if file == MERGED_BLOB {
                let map = &layout.merge_maps[sec as usize];
                let object = &ctx.res.objects[map.file.0 as usize];
                let data = object.obj.section_data(map.sec as usize);
                map.pieces.copy_owned(data, slice);
                return SectionOutput::default();
            }
            copy_and_relocate(ctx, layout, os, file, sec, slice)
        })
        .collect()
}

/// A GOT entry's bytes (file offset and value, if the linker fills it) and dynamic
/// relocations.
pub(crate) type GotOut = (Option<(usize, u64)>, [Option<DynReloc>; 2]);

/// GOT entry (`symref`, `gk`) at `slot` of `got` (see [`GotOut`]).
pub(crate) fn got_entry(
    ctx: &Context,
    layout: &Layout,
    got: &OutputSection,
    symref: SymRef,
    gk: GotKind,
    slot: u32,
) -> GotOut {
    let kind = layout.kind;
    let tp = layout.tp_address();
    let dynsym_index = |symref: SymRef| match symref {
        SymRef::Global(id) => layout.dynamic.dynsym_index.get(&id).copied().unwrap_or(0),
        SymRef::Local(..) => 0,
    };

    let slot = u64::from(slot);
    let addr = got.addr + 8 * slot;
    let at = (got.offset + 8 * slot) as usize;
    let preemptible = ctx.preemptible(kind, symref);
    let sym_addr = layout.symbol_address(ctx, symref).unwrap_or(0);
    let dynsym = dynsym_index(symref);
    let reloc = |r_type, sym, addend| Some(DynReloc::new(addr, r_type, sym, addend));
    match gk {
        GotKind::Address if preemptible => (None, [reloc(A::DYNAMIC.glob_dat, dynsym, 0), None]),
        GotKind::Address => {
            let relative =
                kind.is_pic() && crate::context::relocatable(ctx.symref_target(symref).0);
            let r = relative.then(|| DynReloc::new(addr, A::DYNAMIC.relative, 0, sym_addr));
            (Some((at, sym_addr)), [r, None])
        }
        GotKind::TpOff if preemptible => (None, [reloc(A::DYNAMIC.tpoff, dynsym, 0), None]),
        GotKind::TpOff if kind == OutputKind::Shared => {
            let offset = sym_addr.wrapping_sub(layout.tls_start);
            (None, [reloc(A::DYNAMIC.tpoff, 0, offset), None])
        }
        GotKind::TpOff => (Some((at, sym_addr.wrapping_sub(tp))), [None, None]),
        GotKind::TlsGd => {
            let module_sym = if preemptible { dynsym } else { 0 };
            let module = reloc(A::DYNAMIC.dtpmod, module_sym, 0);
            if preemptible {
                let offset = DynReloc::new(addr + 8, A::DYNAMIC.dtpoff, dynsym, 0);
                (None, [module, Some(offset)])
            } else {
                let offset = sym_addr.wrapping_sub(layout.tls_start);
                (Some((at + 8, offset)), [module, None])
            }
        }
        GotKind::TlsLd => (None, [reloc(A::DYNAMIC.dtpmod, 0, 0), None]),
        GotKind::TlsDesc => {
            let (sym, addend) = if preemptible {
                (dynsym, 0)
            } else {
                (0, sym_addr.wrapping_sub(layout.tls_start))
            };
            (None, [reloc(A::DYNAMIC.tlsdesc, sym, addend), None])
        }
    }
}

/// Dynamic relocations in their output order: RELATIVE ones first (DT_RELACOUNT counts
/// them), by address.
pub(crate) fn sort_dyn_relocs(relocs: &mut [DynReloc]) {
    relocs.sort_by_key(|r| (r.r_type != A::DYNAMIC.relative, r.offset));
}

/// Writes `relocs` into the relocation section `kind` (if the layout has it); an
/// incremental layout leaves room after them (zeros: NONE relocations).
pub(crate) fn write_rela(
    layout: &Layout,
    kind: Synthetic,
    relocs: &[DynReloc],
    buf: &mut [u8],
) -> Result<()> {
    let Some(rela) = layout.synthetic(kind) else {
        return Ok(());
    };
    let name = kind.name();
    let fits = if layout.slots.is_empty() {
        relocs.len() as u64 * 24 == rela.size
    } else {
        relocs.len() as u64 * 24 <= rela.size
    };
    if !fits {
        bail!(
            "internal error: {} relocations written to {name}, {} reserved",
            relocs.len(),
            rela.size / 24
        );
    }
    for (i, r) in relocs.iter().enumerate() {
        let at = rela.offset as usize + 24 * i;
        buf[at..at + 24].copy_from_slice(&r.encode());
    }
    Ok(())
}

/// Writes `.relr.dyn` (if the layout has it): the addresses of `relr`, encoded output
/// section by output section as the layout sized it (`layout::addresses::size_relr`).
fn write_relr(layout: &Layout, mut relr: Vec<u64>, buf: &mut [u8]) -> Result<()> {
    let Some(section) = layout.synthetic(Synthetic::Relr) else {
        return Ok(());
    };
    relr.sort_unstable();
    let mut alloc: Vec<&OutputSection> = layout
        .sections
        .iter()
        .filter(|s| {
            s.sh_flags & u64::from(elf::SHF_ALLOC) != 0
                && s.sh_type != elf::SHT_NOBITS
                && s.size > 0
        })
        .collect();
    alloc.sort_unstable_by_key(|s| s.addr);
    let mut words = Vec::new();
    let mut rest = &relr[..];
    while let Some(&first) = rest.first() {
        // The output section that holds `first`, and its other relocations.
        let i = alloc.partition_point(|s| s.addr + s.size <= first);
        let end = alloc.get(i).map_or(u64::MAX, |s| s.addr + s.size);
        let n = rest.partition_point(|&a| a < end).max(1);
        crate::relr::encode(&rest[..n], &mut words);
        rest = &rest[n..];
    }
    let room = (section.size / 8) as usize;
    if words.len() > room {
        bail!(
            "internal error: .relr.dyn needs {} words, {room} reserved",
            words.len()
        );
    }
    // A script's layout reserved one word per relocation: the rest relocates nothing.
    words.resize(room, 1);
    let at = section.offset as usize;
    for (i, w) in words.iter().enumerate() {
        put_u64(buf, at + 8 * i, *w);
    }
    Ok(())
}

/// The alignment gaps between the input sections of a code section get NOPs, as GNU ld
/// fills them (an incremental layout's spare room gets int3 instead: `fill_spare_room`).
fn fill_code_gaps(ctx: &Context, layout: &Layout, buf: &mut [u8]) {
    let exec = u64::from(elf::SHF_EXECINSTR);
    for os in &layout.sections {
        if os.sh_flags & exec == 0 || os.sh_type == elf::SHT_NOBITS || os.synthetic.is_some() {
            continue;
        }
        let mut pieces: Vec<(u64, u64)> = os
            .members
            .iter()
            .filter_map(|m| match *m {
                Member::Input { file, sec } => {
                    let p = &layout.placements[file.0 as usize][sec as usize];
                    let size = ctx.res.objects[file.0 as usize]
                        .obj
                        .section_size(sec as usize);
                    Some((p.offset, p.offset + size))
                }
                _ => None,
            })
            .collect();
        pieces.sort_unstable();
        let base = os.offset as usize;
        for pair in pieces.windows(2) {
            let (end, next) = (pair[0].1, pair[1].0);
            if next > end {
                let range = base + end as usize..base + next as usize;
                if let Some(gap) = buf.get_mut(range) {
                    A::fill_nops(gap);
                }
            }
        }
    }
}

/// The spare room of an incremental layout's slots (of the selected ones in an update):
/// int3 in code, and in sections read unit by unit (`.debug_info`, `.eh_frame`, ...) the
/// last unit lengthened over it (`.debug_line`'s with no-op opcodes), so readers never
/// meet padding they cannot parse. Other sections' room stays zeros.
pub(crate) fn fill_spare_room(layout: &Layout, select: Option<&Selection>, buf: &mut [u8]) {
    for slot in &layout.slots {
        if select.is_some_and(|s| {
            !s.files.contains(&slot.file) && !s.slots.contains(&(slot.out, slot.start))
        }) {
            continue;
        }
        let os = &layout.sections[slot.out as usize];
        if os.sh_type == elf::SHT_NOBITS || slot.capacity <= slot.used {
            continue;
        }
        let start = (os.offset + slot.start) as usize;
        let (used, end) = (start + slot.used as usize, start + slot.capacity as usize);
        if os.sh_flags & u64::from(elf::SHF_EXECINSTR) != 0 {
            buf[used..end].fill(0xcc);
        } else if crate::layout::walked_by_units(&os.name) {
            if os.name == ".debug_line" {
                buf[used..end].fill(0x07); // DW_LNS_set_basic_block
            }
            lengthen_last_unit(buf, start, used, end);
        }
    }
}

/// Finds the last unit (4-byte length, or 0xffffffff and an 8-byte length) in
/// `buf[start..used]` and makes it end at `end`.
fn lengthen_last_unit(buf: &mut [u8], start: usize, used: usize, end: usize) {
    let mut at = start;
    let mut last = None;
    while at + 4 <= used {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
        let (header, len) = match len {
            0 => break,
            0xffff_ffff if at + 12 <= used => (
                12,
                u64::from_le_bytes(buf[at + 4..at + 12].try_into().unwrap()) as usize,
            ),
            0xffff_ffff => break,
            n => (4, n as usize),
        };
        if at + header + len > used {
            break;
        }
        last = Some((at, header));
        at += header + len;
    }
    if let Some((at, header)) = last {
        let new_len = end - at - header;
        if header == 4 {
            put_u32(buf, at, new_len as u32);
        } else {
            put_u64(buf, at + 4, new_len as u64);
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

/// Output section header index of the alloc section holding `addr` (TLS symbols are looked
/// up among TLS sections, since `.tbss` overlaps what follows it).
/// A `.dynsym` entry's fields (info, other, section index, value, size) for global symbol
/// `id`, defined by symbol `sym` of object `file`.
pub(crate) fn defined_dynsym(
    ctx: &Context,
    layout: &Layout,
    id: crate::symbols::SymbolId,
    (file, sym, weak): (FileId, u32, bool),
) -> (u8, u8, u16, u64, u64) {
    let o = &ctx.res.objects[file.0 as usize].obj;
    let st = &o.symbols[sym as usize];
    let (_, target, st_type) = ctx.target(file, sym as usize);
    let addr = layout.symbol_address(ctx, SymRef::Global(id)).unwrap_or(0);
    let (shndx, value) = match target {
        Target::Abs(v) => (elf::SHN_ABS, v),
        _ if st_type == elf::STT_TLS => (
            section_index_of(layout, addr, true),
            addr.wrapping_sub(layout.tls_start),
        ),
        _ => (section_index_of(layout, addr, false), addr),
    };
    let b = match (weak, st.st_bind()) {
        (true, _) => elf::STB_WEAK,
        // C++ inline and template statics: one copy per process, which the loader finds
        // by this binding (GNU ld keeps it in .dynsym too).
        (false, elf::STB_GNU_UNIQUE) => elf::STB_GNU_UNIQUE,
        (false, _) => elf::STB_GLOBAL,
    };
    (
        (b << 4) | st_type,
        st.st_other & 3,
        shndx,
        value,
        st.st_size.get(LE),
    )
}

fn section_index_of(layout: &Layout, addr: u64, tls: bool) -> u16 {
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

/// `.dynsym`, `.dynstr`, the hash tables, version tables, `.interp` and `.dynamic`.
fn write_dynamic(ctx: &Context, layout: &Layout, buf: &mut [u8]) {
    let tables = &layout.dynamic;
    let copy = |kind, bytes: &[u8], buf: &mut [u8]| {
        if let Some(s) = layout.synthetic(kind) {
            let at = s.offset as usize;
            buf[at..at + bytes.len()].copy_from_slice(bytes);
        }
    };
    copy(Synthetic::Dynstr, &tables.dynstr, buf);
    copy(Synthetic::GnuHash, &tables.gnu_hash, buf);
    copy(Synthetic::Hash, &tables.sysv_hash, buf);
    copy(Synthetic::Versym, &tables.versym, buf);
    copy(Synthetic::Verneed, &tables.verneed, buf);
    copy(Synthetic::Verdef, &tables.verdef, buf);
    if layout.synthetic(Synthetic::Interp).is_some() {
        let interp = ctx
            .config
            .dynamic_linker
            .clone()
            .unwrap_or_else(|| "/lib64/ld-linux-x86-64.so.2".to_string());
        let mut bytes = interp.into_bytes();
        bytes.push(0);
        copy(Synthetic::Interp, &bytes, buf);
    }
    if let Some(dynsym) = layout.synthetic(Synthetic::Dynsym) {
        for (i, &id) in tables.dynsyms.iter().enumerate() {
            let at = dynsym.offset as usize + 24 * (i + 1);
            let symbol = ctx.res.symbols.get(id);
            // An import keeps the binding of the references (weak if all are).
            let bind = if symbol.strong_ref
                || !matches!(symbol.def, Def::Undefined | Def::Shared { .. })
            {
                elf::STB_GLOBAL
            } else {
                elf::STB_WEAK
            };
            let (info, other, shndx, value, size) = match symbol.def {
                Def::Shared { dso, .. } if tables.dropped[dso as usize] => {
                    ((bind << 4) | elf::STT_NOTYPE, 0, elf::SHN_UNDEF, 0, 0)
                }
                Def::Shared { dso, index } => {
                    let d = &ctx.res.dsos[dso as usize].dso.defined[index as usize];
                    let copied =
                        layout.needs.copies.contains(&id) || tables.copy_aliases.contains_key(&id);
                    // An import of an IFUNC is an ordinary function to this module.
                    let st_type = match d.st_info & 0xf {
                        elf::STT_GNU_IFUNC => elf::STT_FUNC,
                        t => t,
                    };
                    let dso_bind = d.st_info >> 4;
                    if copied {
                        let addr = layout.target_address(Target::Shared(id)).unwrap_or(0);
                        let shndx = section_index_of(layout, addr, false);
                        ((dso_bind << 4) | st_type, 0, shndx, addr, d.size)
                    } else if layout.needs.canonical.contains(&id) {
                        let addr = layout.target_address(Target::Shared(id)).unwrap_or(0);
                        ((bind << 4) | st_type, 0, elf::SHN_UNDEF, addr, 0)
                    } else {
                        ((bind << 4) | st_type, 0, elf::SHN_UNDEF, 0, 0)
                    }
                }
                Def::Defined { file, sym, weak } => {
                    defined_dynsym(ctx, layout, id, (file, sym, weak))
                }
                Def::Common { size, .. } => {
                    let addr = layout.target_address(Target::Common(id)).unwrap_or(0);
                    let shndx = section_index_of(layout, addr, false);
                    (
                        (elf::STB_GLOBAL << 4) | elf::STT_OBJECT,
                        0,
                        shndx,
                        addr,
                        size,
                    )
                }
                Def::Undefined | Def::Synthetic => {
                    ((bind << 4) | elf::STT_NOTYPE, 0, elf::SHN_UNDEF, 0, 0)
                }
            };
            put_u32(buf, at, tables.name_offsets[i]);
            buf[at + 4] = info;
            buf[at + 5] = other;
            put_u16(buf, at + 6, shndx);
            put_u64(buf, at + 8, value);
            put_u64(buf, at + 16, size);
        }
    }
    if let Some(dynamic) = layout.synthetic(Synthetic::Dynamic) {
        for (i, &(tag, value)) in layout.dynamic_tags.iter().enumerate() {
            use crate::dynamic::DynValue;
            let section = |name: &str| {
                layout
                    .sections
                    .iter()
                    .find(|s| s.name == name && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
            };
            let v = match value {
                DynValue::Const(v) => v,
                DynValue::Addr(name) => section(name).map_or(0, |s| s.addr),
                DynValue::Size(name) => section(name).map_or(0, |s| s.size),
                DynValue::Sym(id) => layout.symbol_address(ctx, SymRef::Global(id)).unwrap_or(0),
            };
            let at = dynamic.offset as usize + 16 * i;
            put_u64(buf, at, u64::from(tag));
            put_u64(buf, at + 8, v);
        }
    }
}

fn find_name(table: &[u8], name: &str) -> u32 {
    let mut needle = name.as_bytes().to_vec();
    needle.push(0);
    table
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or(0) as u32
}

fn section_names(config: &Config, layout: &Layout) -> (Vec<u32>, Vec<u8>) {
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

fn ifunc_resolver(ctx: &Context, layout: &Layout, symref: SymRef) -> u64 {
    let (file, index) = match symref {
        SymRef::Local(f, i) => (f, i as usize),
        SymRef::Global(id) => match ctx.res.symbols.get(id).def {
            Def::Defined { file, sym, .. } => (file, sym as usize),
            _ => return 0,
        },
    };
    layout
        .target_address(ctx.target(file, index).1)
        .unwrap_or(0)
}

/// Part of `.symtab`: entries and their names; an entry's name offset is relative to
/// `strtab`, whose first byte is a stand-in (offset 0 means no name).
pub(crate) struct Piece {
    pub(crate) locals: Vec<[u8; 24]>,
    globals: Vec<[u8; 24]>,
    pub(crate) strtab: Vec<u8>,
    /// A piece of global symbols: the symbols of its entries, in order, and whether each is
    /// hidden (its entry is among `locals`).
    emitted: Vec<(u32, bool)>,
}

impl Default for Piece {
    fn default() -> Piece {
        Piece {
            locals: Vec::new(),
            globals: Vec::new(),
            strtab: vec![0],
            emitted: Vec::new(),
        }
    }
}

/// [`SymtabPieces::global_positions`]: the entry is a hidden symbol's, among the locals.
pub const SYMTAB_HIDDEN: u32 = 1 << 31;

/// `.symtab` and `.strtab` in pieces, in order: one per object, then the global symbols'.
struct SymtabPieces {
    pieces: Vec<Piece>,
    n_files: usize,
    /// Entries before the first global (the null entry included).
    n_locals: usize,
    /// --emit-relocs: the index of the first output section's section symbol (the others
    /// follow in section header order).
    section_symbols: Option<u32>,
}

impl SymtabPieces {
    /// Per symbol id, where its entry is among the global symbols' entries: the index among
    /// the hidden ones (`SYMTAB_HIDDEN` set) or among the others; `u32::MAX` if it has none.
    fn global_positions(&self, n_symbols: usize) -> Vec<u32> {
        let mut out = vec![u32::MAX; n_symbols];
        let (mut hidden, mut visible) = (0u32, 0u32);
        for &(id, is_hidden) in self.pieces[self.n_files..].iter().flat_map(|p| &p.emitted) {
            out[id as usize] = if is_hidden {
                hidden += 1;
                (hidden - 1) | SYMTAB_HIDDEN
            } else {
                visible += 1;
                visible - 1
            };
        }
        out
    }

    /// Per symbol id, the index of its `.symtab` entry (0: none).
    fn global_indices(&self, n_symbols: usize) -> Vec<u32> {
        let mut out = vec![0; n_symbols];
        let (mut local, mut global) = (1u32, self.n_locals as u32);
        for piece in &self.pieces {
            for &(id, is_hidden) in &piece.emitted {
                let next = if is_hidden { &mut local } else { &mut global };
                out[id as usize] = *next;
                *next += 1;
            }
            // (A piece's hidden entries are all of its locals.)
            if piece.emitted.is_empty() {
                local += piece.locals.len() as u32;
            }
        }
        out
    }

    /// Appends `.symtab` then `.strtab` to `out`; returns their sizes, and each piece's
    /// local entries and names (first entry, count, names' start and length). The pieces
    /// are joined on all threads: file locals, hidden globals, then globals; each piece's
    /// names rebased to where its strings land (strings are appended in piece order).
    fn append_to(&self, out: &mut Vec<u8>) -> (u64, u64, Vec<[u32; 4]>) {
        let pieces = &self.pieces;
        let n_globals: usize = pieces.iter().map(|p| p.globals.len()).sum();
        let symtab_len = (self.n_locals + n_globals) * 24;
        let strtab_len = 1 + pieces.iter().map(|p| p.strtab.len() - 1).sum::<usize>();
        let start = out.len();
        if start == 0 {
            // Fresh zeroed pages (no serial memset): the threads below fault them in.
            *out = vec![0; symtab_len + strtab_len];
        } else {
            out.resize(start + symtab_len + strtab_len, 0);
        }
        let (symtab, strtab) = out[start..].split_at_mut(symtab_len);
        let (mut locals, mut globals) = symtab.split_at_mut(self.n_locals * 24);
        locals = &mut locals[24..];
        let mut strings = &mut strtab[1..];
        // Each piece's share of the three outputs, and its names' base.
        let mut jobs = Vec::with_capacity(pieces.len());
        let mut base = 0u32;
        let mut ranges = Vec::with_capacity(pieces.len());
        let mut first_local = 1u32;
        for piece in pieces {
            ranges.push([
                first_local,
                piece.locals.len() as u32,
                1 + base,
                piece.strtab.len() as u32 - 1,
            ]);
            first_local += piece.locals.len() as u32;
            let (l, rest) = std::mem::take(&mut locals).split_at_mut(piece.locals.len() * 24);
            locals = rest;
            let (g, rest) = std::mem::take(&mut globals).split_at_mut(piece.globals.len() * 24);
            globals = rest;
            let (t, rest) = std::mem::take(&mut strings).split_at_mut(piece.strtab.len() - 1);
            strings = rest;
            jobs.push((piece, l, g, t, base));
            base += piece.strtab.len() as u32 - 1;
        }
        jobs.into_par_iter()
            .with_min_len(16)
            .for_each(|(piece, l, g, t, base)| {
                t.copy_from_slice(&piece.strtab[1..]);
                for (entries, dst) in [(&piece.locals, l), (&piece.globals, g)] {
                    for (e, d) in entries.iter().zip(dst.chunks_exact_mut(24)) {
                        d.copy_from_slice(e);
                        let name = u32::from_le_bytes(e[0..4].try_into().unwrap());
                        if name != 0 {
                            d[0..4].copy_from_slice(&(name + base).to_le_bytes());
                        }
                    }
                }
            });
        (symtab_len as u64, strtab_len as u64, ranges)
    }
}

/// A symbol's value in `.symtab`: a TLS symbol's is its offset in the TLS block.
fn tls_value(layout: &Layout, addr: u64, st_type: u8) -> u64 {
    if st_type == elf::STT_TLS {
        addr.wrapping_sub(layout.tls_start)
    } else {
        addr
    }
}

/// Object `f`'s piece of `.symtab`: its file symbol and local symbols (copied from the old
/// output where `reuse` says so).
pub(crate) fn object_piece(
    ctx: &Context,
    layout: &Layout,
    shndx: &SectionIndex,
    reuse: Option<&SymtabReuse>,
    f: usize,
) -> Piece {
    let object = &ctx.res.objects[f];
    let file = FileId(f as u32);
    let obj = &object.obj;
    let base = object.name.rsplit('/').next().unwrap_or(&object.name);
    if let Some(piece) = reuse.and_then(|r| r.piece(f, base.as_bytes())) {
        return piece;
    }
    let mut piece = Piece::default();
    let discard = ctx.config.discard;
    if discard == crate::args::Discard::All {
        return piece;
    }
    for i in 1..obj.first_global.min(obj.symbols.len()) {
        let sym = &obj.symbols[i];
        let st_type = sym.st_type();
        if st_type == elf::STT_SECTION || st_type == elf::STT_FILE {
            continue;
        }
        let Ok(name) = obj.symbol_name(i) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if name.starts_with(b".L") {
            let merged = || {
                let sec = obj.symbol_shndx(i) as usize;
                obj.shdrs
                    .get(sec)
                    .is_some_and(|s| s.sh_flags.get(LE) & u64::from(elf::SHF_MERGE) != 0)
            };
            match discard {
                crate::args::Discard::Temporaries => continue,
                crate::args::Discard::MergedTemporaries if merged() => continue,
                _ => {}
            }
        }
        let (_, target, _) = ctx.target(file, i);
        let Some(addr) = layout.target_address(target) else {
            continue;
        };
        if matches!(target, Target::Undefined | Target::UndefWeak) {
            continue;
        }
        if piece.locals.is_empty() {
            let e = symtab_entry(
                &mut piece.strtab,
                base.as_bytes(),
                elf::STT_FILE,
                0,
                elf::SHN_ABS,
                0,
                0,
            );
            piece.locals.push(e);
        }
        let index = if matches!(target, Target::Abs(_)) {
            elf::SHN_ABS
        } else {
            shndx.of(addr, st_type == elf::STT_TLS)
        };
        let e = symtab_entry(
            &mut piece.strtab,
            name,
            sym.st_info,
            sym.st_other,
            index,
            tls_value(layout, addr, st_type),
            sym.st_size.get(LE),
        );
        piece.locals.push(e);
    }
    piece
}

/// A global symbol's `.symtab` entry, but its name.
pub(crate) struct GlobalEntry {
    pub(crate) info: u8,
    pub(crate) other: u8,
    pub(crate) shndx: u16,
    pub(crate) value: u64,
    pub(crate) size: u64,
    /// Hidden: the entry is a local symbol's.
    pub(crate) hidden: bool,
}

/// Global symbol `id`'s entry, if it has one (undefined and shared symbols have none).
pub(crate) fn global_entry(
    ctx: &Context,
    layout: &Layout,
    shndx: &SectionIndex,
    id: crate::symbols::SymbolId,
) -> Option<GlobalEntry> {
    let symbol = ctx.res.symbols.get(id);
    let (addr, size, st_type, bind, abs) = match symbol.def {
        Def::Defined { file, sym, weak } => {
            // Where and how big, from the resolution's tables: the defining object's symbol
            // table is not read again.
            let (target, st_type, size, unique) = match ctx.res.defined(id) {
                Some((at, size)) => (defined_target(at), at.st_type(), size, at.is_unique()),
                None => {
                    let (_, target, st_type) = ctx.target(file, sym as usize);
                    let st = &ctx.res.objects[file.0 as usize].obj.symbols[sym as usize];
                    let unique = st.st_bind() == elf::STB_GNU_UNIQUE;
                    (target, st_type, st.st_size.get(LE), unique)
                }
            };
            let addr = layout.target_address(target)?;
            let bind = match (weak, unique) {
                (true, _) => elf::STB_WEAK,
                (false, true) => elf::STB_GNU_UNIQUE,
                (false, false) => elf::STB_GLOBAL,
            };
            (addr, size, st_type, bind, matches!(target, Target::Abs(_)))
        }
        Def::Common { size, .. } => {
            let addr = layout.target_address(Target::Common(id))?;
            (addr, size, elf::STT_OBJECT, elf::STB_GLOBAL, false)
        }
        Def::Synthetic => {
            let addr = layout.synthetic_values.get(&id).copied().unwrap_or(0);
            let abs = ctx.res.absolute.contains_key(&id);
            (addr, 0, elf::STT_NOTYPE, elf::STB_GLOBAL, abs)
        }
        Def::Undefined | Def::Shared { .. } => return None,
    };
    let hidden = matches!(symbol.visibility, elf::STV_HIDDEN | elf::STV_INTERNAL);
    let index = if abs {
        elf::SHN_ABS
    } else {
        shndx.of(addr, st_type == elf::STT_TLS)
    };
    let bind = if hidden { elf::STB_LOCAL } else { bind };
    Some(GlobalEntry {
        info: (bind << 4) | st_type,
        other: symbol.visibility,
        shndx: index,
        value: tls_value(layout, addr, st_type),
        size,
        hidden,
    })
}

/// `.symtab` and `.strtab`: per file a STT_FILE symbol and its locals, then hidden globals as
/// locals, then the globals.
///
/// Built in pieces on all threads (per file, per run of global symbols), each with its own
/// string table, joined in order ([`SymtabPieces::append_to`]), so the bytes do not depend
/// on the thread count.
fn build_symtab(ctx: &Context, layout: &Layout, reuse: Option<&SymtabReuse>) -> SymtabPieces {
    let shndx = SectionIndex::new(layout);
    let file_piece = |f: usize| object_piece(ctx, layout, &shndx, reuse, f);
    let global_piece = |ids: &[crate::symbols::SymbolId]| -> Piece {
        let mut piece = Piece::default();
        for &id in ids {
            let i = id.0 as usize;
            let Some(g) =
                global_entry(ctx, layout, &shndx, id).or_else(|| import_entry(ctx, layout, id))
            else {
                continue;
            };
            let e = symtab_entry(
                &mut piece.strtab,
                ctx.res.symbols.get(id).name,
                g.info,
                g.other,
                g.shndx,
                g.value,
                g.size,
            );
            if g.hidden {
                piece.locals.push(e);
            } else {
                piece.globals.push(e);
            }
            piece.emitted.push((i as u32, g.hidden));
        }
        piece
    };
    const GLOBALS_PER_PIECE: usize = 4096;
    let (files, globals): (Vec<Piece>, Vec<Piece>) = rayon::join(
        || {
            (0..ctx.res.objects.len())
                .into_par_iter()
                .map(file_piece)
                .collect()
        },
        || {
            // (Incremental layouts only: a one-shot link keeps symbol id order, unsorted.)
            let order = if layout.slots.is_empty() {
                (0..ctx.res.symbols.symbols.len() as u32)
                    .map(crate::symbols::SymbolId)
                    .collect()
            } else {
                symtab_order(ctx)
            };
            order
                .par_chunks(GLOBALS_PER_PIECE)
                .map(global_piece)
                .collect()
        },
    );
    let mut pieces = files;
    // --emit-relocs: a section symbol per output section (the relocations against local
    // symbols are written against them), between the files' locals and the globals.
    let mut section_symbols = None;
    if ctx.config.emit_relocs {
        section_symbols = Some(1 + pieces.iter().map(|p| p.locals.len()).sum::<usize>() as u32);
        let mut piece = Piece::default();
        for (i, id) in layout.order.iter().enumerate() {
            let s = &layout.sections[id.0 as usize];
            let info = (elf::STB_LOCAL << 4) | elf::STT_SECTION;
            let entry = symtab_entry(&mut piece.strtab, b"", info, 0, (i + 1) as u16, s.addr, 0);
            piece.locals.push(entry);
        }
        pieces.push(piece);
    }
    pieces.extend(globals);
    let n_locals = 1 + pieces.iter().map(|p| p.locals.len()).sum::<usize>();
    SymtabPieces {
        n_files: ctx.res.objects.len(),
        pieces,
        n_locals,
        section_symbols,
    }
}

/// --emit-relocs: `.symtab`'s entry for a symbol the output imports (a shared object
/// defines it, or nothing does), for the kept relocations that name it: undefined, as in
/// GNU ld's table.
fn import_entry(
    ctx: &Context,
    layout: &Layout,
    id: crate::symbols::SymbolId,
) -> Option<GlobalEntry> {
    if !ctx.config.emit_relocs {
        return None;
    }
    let symbol = ctx.res.symbols.get(id);
    match symbol.def {
        // (A relaxed TLS sequence still names __tls_get_addr: referred to, not used.)
        Def::Shared { .. } if layout.needs.used_shared.contains(&id) || symbol.strong_ref => {}
        Def::Undefined if !symbol.dso_ref || symbol.strong_ref => {}
        _ => return None,
    }
    let bind = if symbol.strong_ref {
        elf::STB_GLOBAL
    } else {
        elf::STB_WEAK
    };
    Some(GlobalEntry {
        info: bind << 4,
        other: symbol.visibility,
        shndx: elf::SHN_UNDEF,
        value: 0,
        size: 0,
        hidden: false,
    })
}

/// The global symbols in an incremental link's `.symtab` order: those objects define by
/// where (file, symbol index), then the linker's by name. Not by symbol id: ids follow the
/// order in which objects mention symbols, which an edit may change where nothing else does
/// (the lean update copies the old table's global part, see `lean`).
fn symtab_order(ctx: &Context) -> Vec<crate::symbols::SymbolId> {
    let symbols = &ctx.res.symbols.symbols;
    let mut keyed: Vec<((u32, u32, u32), crate::symbols::SymbolId)> = symbols
        .par_iter()
        .enumerate()
        .with_min_len(1024)
        .filter_map(|(i, s)| {
            let key = match s.def {
                Def::Defined { file, sym, .. } | Def::Common { file, sym, .. } => (0, file.0, sym),
                Def::Synthetic => (1, 0, 0),
                Def::Undefined | Def::Shared { .. } => return None,
            };
            Some((key, crate::symbols::SymbolId(i as u32)))
        })
        .collect();
    // Ties (aliases of one definition, the linker's symbols) by name.
    keyed.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            symbols[a.1 .0 as usize]
                .name
                .cmp(symbols[b.1 .0 as usize].name)
        })
    });
    keyed.into_iter().map(|(_, id)| id).collect()
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

/// `--oformat=binary`: the bytes of every loaded section that has contents, each at its load
/// address less the lowest one, the gaps zero (what `objcopy -O binary` makes of the ELF
/// file `elf` that `layout` describes).
pub fn binary_image(layout: &Layout, elf: &[u8]) -> Result<Vec<u8>> {
    let alloc = u64::from(object::elf::SHF_ALLOC);
    let pieces: Vec<(u64, &[u8])> = layout
        .sections
        .iter()
        .filter(|s| s.sh_flags & alloc != 0 && s.sh_type != object::elf::SHT_NOBITS && s.size > 0)
        .map(|s| {
            // The load address: where the section's segment says it is loaded.
            let lma = layout
                .segments
                .iter()
                .find(|g| {
                    g.p_type == object::elf::PT_LOAD
                        && g.vaddr <= s.addr
                        && s.addr + s.size <= g.vaddr + g.memsz
                })
                .map_or(s.addr, |g| g.paddr + (s.addr - g.vaddr));
            let start = (s.offset as usize).min(elf.len());
            let end = (start + s.size as usize).min(elf.len());
            (lma, &elf[start..end])
        })
        .collect();
    let Some(base) = pieces.iter().map(|p| p.0).min() else {
        return Ok(Vec::new());
    };
    let end = pieces
        .iter()
        .map(|p| p.0 + p.1.len() as u64)
        .max()
        .unwrap_or(base);
    if end - base > 1 << 32 {
        anyhow::bail!(
            "--oformat=binary: the loaded sections span {:#x} bytes (from {base:#x} to {end:#x})",
            end - base
        );
    }
    let mut image = vec![0u8; (end - base) as usize];
    for (lma, bytes) in pieces {
        let at = (lma - base) as usize;
        image[at..at + bytes.len()].copy_from_slice(bytes);
    }
    Ok(image)
}
