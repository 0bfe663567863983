//! Phase 4: writing. The only code that produces output bytes: copies input sections,
//! applies relocations, fills synthetic sections, and writes headers, symbol tables and the
//! build-id. It decides nothing about layout; every address comes from [`Layout`].
//!
//! This file holds the passes, in [`write_into`]'s order: the input sections cut into jobs
//! and copied on all threads (`relocate`), the gaps between them filled, the linker's own
//! sections (`linker_sections`), `--compress-debug-sections`, the tail (`.symtab` and
//! `.strtab` from `symtab`, section headers from `headers`), the ELF and program headers,
//! and the build-id last. `binary_image` turns the result into `--oformat=binary`.

use crate::arch::{Arch, Current as A};
use crate::args::Config;
use crate::context::Context;
use crate::encode::{put_u32, put_u64};
use crate::layout::{Layout, Member, OutputSection, Synthetic};
use crate::symbols::FileId;
use anyhow::{bail, Result};
use object::elf;
use rayon::prelude::*;

mod headers;
mod linker_sections;
mod relocate;
mod symtab;

use headers::{section_names, write_headers, write_section_headers, ExtraSection};
pub(crate) use headers::{write_elf_header, SectionIndex};
use linker_sections::write_linker_sections;
pub(crate) use linker_sections::{defined_dynsym, got_entry, sort_dyn_relocs, DynReloc};
use relocate::copy_and_relocate;
pub(crate) use relocate::SectionOutput;
use symtab::{build_symtab, SymtabPieces};
pub(crate) use symtab::{
    global_entry, object_piece, symtab_entry, Piece, SymtabReuse, SYMTAB_HIDDEN,
};

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

/// The output file: [`write_into`] a zeroed vector, the tail appended.
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
///
/// (Within a lengthened unit the room reads as no-ops: zeros are `DW_CFA_nop`, null DIEs
/// and zero tuples, which end their lists; `.debug_line`'s `DW_LNS_set_basic_block` adds
/// no row.)
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
