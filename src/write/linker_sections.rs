//! The contents of the sections the linker makes, each a `Synthetic` kind of its own: the
//! GOT, copy relocations, `.got.plt` with the PLT and IPLT, the dynamic relocation tables
//! (`.rela.dyn`, `.rela.plt`, `.rela.iplt`, `.relr.dyn`), `.dynsym`, `.dynstr`, the hash and
//! version tables, `.interp`, `.dynamic`, `.eh_frame_hdr` and `.comment`. Written after the
//! input sections, from the dynamic relocations and FDEs those produced; the tables layout
//! built (`Layout::dynamic`) are copied as they are. Notes and headers are `headers`'.

use super::headers::section_index_of;
use super::Produced;
use crate::arch::{Arch, Current as A};
use crate::context::{Context, GotKind, OutputKind, SymRef, Target};
use crate::eh_frame;
use crate::encode::{put_u16, put_u32, put_u64};
use crate::input::elf::LE;
use crate::layout::{Layout, OutputSection, Synthetic};
use crate::symbols::{Def, FileId, SymbolId};
use anyhow::{bail, Result};
use object::elf;
use rayon::prelude::*;

/// A dynamic relocation, as `.rela.dyn` and `.rela.plt` hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynReloc {
    pub offset: u64,
    pub r_type: u32,
    /// `.dynsym` index (0: none).
    pub sym: u32,
    pub addend: u64,
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

/// The linker's sections: GOT, copy relocations, PLT and IPLT, the dynamic relocation
/// tables, `.dynamic`, `.eh_frame_hdr` and `.comment`.
pub(super) fn write_linker_sections(
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
    write_got(ctx, layout, buf, &mut dyn_relocs, &mut relr);
    steps.step("got");
    // Copy relocations.
    for &id in &layout.needs.copies {
        if let Some(addr) = layout.target_address(Target::Shared(id)) {
            let dynsym = dynsym_index(layout, SymRef::Global(id));
            dyn_relocs.push(DynReloc::new(addr, A::DYNAMIC.copy, dynsym, 0));
        }
    }
    let plt_relocs = write_plt(ctx, layout, buf);
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
    write_eh_frame_hdr(layout, fde_table, buf);
    if let Some(c) = layout.synthetic(Synthetic::Comment) {
        let at = c.offset as usize;
        buf[at..at + layout.comment.len()].copy_from_slice(&layout.comment);
    }
    Ok(())
}

/// The GOT: each entry's value or dynamic relocations, found on all threads (an entry costs
/// a few table look-ups; a debug Rust binary has over 10000), then written in order.
fn write_got(
    ctx: &Context,
    layout: &Layout,
    buf: &mut [u8],
    dyn_relocs: &mut Vec<DynReloc>,
    relr: &mut Vec<u64>,
) {
    let Some(got) = layout.synthetic(Synthetic::Got) else {
        return;
    };
    // With `-z pack-relative-relocs` the GOT's RELATIVE relocations go to `.relr.dyn`.
    let packing = layout.synthetic(Synthetic::Relr).is_some();
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

/// `.got.plt`, the PLT and the IPLT; returns their relocations (for `.rela.plt`, or
/// `.rela.iplt` in a static link).
fn write_plt(ctx: &Context, layout: &Layout, buf: &mut [u8]) -> Vec<DynReloc> {
    let mut plt_relocs = Vec::new();
    let Some(gp) = layout.synthetic(Synthetic::GotPlt) else {
        return plt_relocs;
    };
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
            let dynsym = dynsym_index(layout, SymRef::Global(id));
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
    plt_relocs
}

/// The address of IFUNC `symref` (its resolver's), or 0 if no object defines it.
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

/// `.eh_frame_hdr`: its binary search table of the FDEs (`fde_table`).
fn write_eh_frame_hdr(layout: &Layout, fde_table: Vec<(u64, u64)>, buf: &mut [u8]) {
    let Some(hdr) = layout.synthetic(Synthetic::EhFrameHdr) else {
        return;
    };
    let eh_addr = layout
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
        .map_or(0, |s| s.addr);
    let bytes = eh_frame::build_hdr(hdr.addr, eh_addr, fde_table);
    let at = hdr.offset as usize;
    buf[at..at + bytes.len()].copy_from_slice(&bytes);
}

/// The `.dynsym` index of `symref` (0: none; a local symbol has none).
fn dynsym_index(layout: &Layout, symref: SymRef) -> u32 {
    match symref {
        SymRef::Global(id) => layout.dynamic.dynsym_index.get(&id).copied().unwrap_or(0),
        SymRef::Local(..) => 0,
    }
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
    let slot = u64::from(slot);
    let addr = got.addr + 8 * slot;
    let at = (got.offset + 8 * slot) as usize;
    let preemptible = ctx.preemptible(kind, symref);
    let sym_addr = layout.symbol_address(ctx, symref).unwrap_or(0);
    let dynsym = dynsym_index(layout, symref);
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
            let (info, other, shndx, value, size) = dynsym_entry(ctx, layout, id);
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

/// A `.dynsym` entry's fields (info, other, section index, value, size) for global symbol
/// `id`: an import, a copied or canonical symbol of a shared object, or a definition.
fn dynsym_entry(ctx: &Context, layout: &Layout, id: SymbolId) -> (u8, u8, u16, u64, u64) {
    let tables = &layout.dynamic;
    let symbol = ctx.res.symbols.get(id);
    // An import keeps the binding of the references (weak if all are).
    let bind = if symbol.strong_ref || !matches!(symbol.def, Def::Undefined | Def::Shared { .. }) {
        elf::STB_GLOBAL
    } else {
        elf::STB_WEAK
    };
    match symbol.def {
        Def::Shared { dso, .. } if tables.dropped[dso as usize] => {
            ((bind << 4) | elf::STT_NOTYPE, 0, elf::SHN_UNDEF, 0, 0)
        }
        Def::Shared { dso, index } => {
            let d = &ctx.res.dsos[dso as usize].dso.defined[index as usize];
            let copied = layout.needs.copies.contains(&id) || tables.copy_aliases.contains_key(&id);
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
        Def::Defined { file, sym, weak } => defined_dynsym(ctx, layout, id, (file, sym, weak)),
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
        Def::Undefined | Def::Synthetic => ((bind << 4) | elf::STT_NOTYPE, 0, elf::SHN_UNDEF, 0, 0),
    }
}

/// A `.dynsym` entry's fields (info, other, section index, value, size) for global symbol
/// `id`, defined by symbol `sym` of object `file`.
pub(crate) fn defined_dynsym(
    ctx: &Context,
    layout: &Layout,
    id: SymbolId,
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
