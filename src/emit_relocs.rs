//! `--emit-relocs` (`-q`): the inputs' relocations kept in the output, for tools that
//! rewrite a linked program (BOLT, the kernel's `relocs`), as GNU ld keeps them.
//!
//! Each output section with relocations gets `.rela<name>` (SHT_RELA, SHF_INFO_LINK, linked
//! to `.symtab`), its entries in the order of the section's members. An entry's offset is
//! the output address (the section offset for non-alloc sections, whose address is 0). A
//! relocation against a global symbol names the symbol's `.symtab` entry; one against a
//! local symbol names the section symbol of the output section the target went to, the
//! addend made relative to that section (GNU ld keeps some local symbols by name; the
//! address a tool computes is the same). A GOT load weld made direct is written as the
//! PC-relative relocation it became (a `jmp` one byte earlier), as GNU ld rewrites the type; TLS
//! sequences keep their types, as in GNU ld's output. A relocation against a discarded
//! section becomes a NONE relocation. Relocations inside merged string sections are not kept.

use crate::arch::{Arch, Current as A};
use crate::context::{Context, Target};
use crate::eh_frame;
use crate::layout::{Layout, Mapping, Member};
use crate::symbols::SymbolId;
use object::elf;
use object::LittleEndian as LE;
use rayon::prelude::*;

/// Per output section with kept relocations: its position in `layout.order` and the
/// `Elf64_Rela` entries.
pub(crate) type Kept = Vec<(usize, Vec<u8>)>;

/// The kept relocations of every output section. `buf` is the written output (relaxed GOT
/// loads are found by their changed opcode); `globals` gives each global symbol's
/// `.symtab` index (0: none); `section_symbols` is the index of the first output section's
/// section symbol.
pub(crate) fn kept_relocations(
    ctx: &Context,
    layout: &Layout,
    buf: &[u8],
    globals: &[u32],
    section_symbols: u32,
) -> Kept {
    // (An output section the layout dropped, empty, has no header and no section symbol.)
    let mut position = vec![None; layout.sections.len()];
    for (i, id) in layout.order.iter().enumerate() {
        position[id.0 as usize] = Some(i as u32);
    }
    let section_symbol = |out: u32| Some(section_symbols + position[out as usize]?);
    layout
        .order
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let os = &layout.sections[id.0 as usize];
            let members: Vec<(crate::symbols::FileId, u32)> = os
                .members
                .iter()
                .filter_map(|m| match *m {
                    Member::Input { file, sec } => Some((file, sec)),
                    _ => None,
                })
                .collect();
            let bytes = members
                .par_iter()
                .map(|&(file, sec)| {
                    section_relocations(ctx, layout, os, file, sec, buf, globals, &section_symbol)
                })
                .collect::<Vec<Vec<u8>>>()
                .concat();
            (!bytes.is_empty()).then_some((i, bytes))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn section_relocations(
    ctx: &Context,
    layout: &Layout,
    os: &crate::layout::OutputSection,
    file: crate::symbols::FileId,
    sec: u32,
    buf: &[u8],
    globals: &[u32],
    section_symbol: &(dyn Fn(u32) -> Option<u32> + Sync),
) -> Vec<u8> {
    let object = &ctx.res.objects[file.0 as usize];
    let placement = layout.placements[file.0 as usize][sec as usize];
    if placement.mapping == Mapping::Merged {
        return Vec::new();
    }
    let data = object.obj.section_data(sec as usize);
    let records = layout.eh_records.get(&(file, sec));
    let alloc = os.sh_flags & u64::from(elf::SHF_ALLOC) != 0;
    let relocs = object.obj.relocs[sec as usize];
    let mut out = Vec::with_capacity(24 * relocs.len());
    for r in relocs.iter() {
        let in_off = r.r_offset.get(LE);
        let off = match records {
            Some(records) => {
                let Some(rec) = eh_frame::record_at(records, in_off) else {
                    continue;
                };
                let Some(at) = rec.out_offset else { continue };
                u64::from(at) + (in_off - u64::from(rec.in_offset))
            }
            None => in_off,
        };
        let mut r_type = r.r_type(LE, false);
        let mut offset = os.addr + placement.offset + off;
        let r_sym = r.r_sym(LE, false) as usize;
        let a = r.r_addend.get(LE);
        if r_sym >= object.obj.symbols.len() {
            continue;
        }
        // A GOT load made direct is a PC-relative reference now.
        let before = data.get(..in_off as usize);
        let now = buf.get(..(os.offset + placement.offset + off) as usize);
        if let (true, Some(before), Some(now)) = (alloc, before, now) {
            if let Some((relaxed, back)) = A::relaxed_got_load(r_type, before, now) {
                r_type = relaxed;
                offset -= back;
            }
        }
        let (symref, target, st_type) = ctx.target(file, r_sym);
        let global = match symref {
            crate::context::SymRef::Global(id) => index_of(globals, id),
            crate::context::SymRef::Local(..) => None,
        };
        let (sym, addend) = match global {
            Some(index) => (index, a),
            None => match local_target(layout, target, st_type, a, section_symbol) {
                Some(pair) => pair,
                None => {
                    r_type = A::NONE;
                    (0, 0)
                }
            },
        };
        out.extend_from_slice(&crate::encode::rela(offset, r_type, sym, addend as u64));
    }
    out
}

fn index_of(globals: &[u32], id: SymbolId) -> Option<u32> {
    globals.get(id.0 as usize).copied().filter(|&i| i != 0)
}

/// (section symbol, addend) for a relocation against a symbol with no `.symtab` entry of
/// its own; None if what it refers to was discarded.
fn local_target(
    layout: &Layout,
    target: Target,
    st_type: u8,
    a: i64,
    section_symbol: &dyn Fn(u32) -> Option<u32>,
) -> Option<(u32, i64)> {
    let (target, a) = layout.merged_reference(target, st_type, a);
    let addr = layout.target_address(target)?;
    match target {
        Target::Section { file, sec, .. } => {
            let out = layout.output_section_of(file, sec)?;
            let os = &layout.sections[out as usize];
            match section_symbol(out) {
                Some(symbol) => Some((symbol, addr.wrapping_sub(os.addr) as i64 + a)),
                // No section symbol: the address itself, against no symbol.
                None => Some((0, addr as i64 + a)),
            }
        }
        _ => Some((0, addr as i64 + a)),
    }
}
