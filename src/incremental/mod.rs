//! Incremental update: patch the output of an earlier `--incremental` link in place when
//! only some objects changed.
//!
//! The earlier link laid every file's contribution to each output section into a slot with
//! spare room (`layout::Slots::Fresh`) and recorded the slots in the state. An update
//! resolves the inputs again, checks that resolution cannot have changed (the same objects
//! are loaded and every changed object defines and references the same global symbols),
//! and lays out again with every slot where it was (`layout::Slots::Replay`): then only the
//! changed objects' sections move, inside their slots. It writes those sections, the
//! sections of unchanged objects that refer to a global symbol whose address moved, and the
//! linker-made tables (GOT, PLT, dynamic relocations, `.eh_frame_hdr`, symbol tables,
//! headers), and keeps everything else of the old output. Anything it cannot prove right
//! is a `layout::Fallback`: the caller links from scratch and says why.
//!
//! The result is byte for byte what a from-scratch write of the same layout gives; with
//! `WELD_ORACLE=1` weld checks that after every update (the tests do).

pub(crate) mod lean;
pub(crate) mod session;

use crate::args::Config;
use crate::context::{Context, SymRef};
use crate::layout::{self, Layout, Synthetic, NOT_PLACED};
use crate::resolve::{LoadedObject, Resolution};
use crate::state::{
    member_key, member_name_key, name_hash, symref_key, GlobalRecord, ObjectRecord, Record,
    SectionRecord, SlotRecord, State,
};
use crate::symbols::{Def, FileId, SymbolId};
use crate::write::{DynReloc, Selection};
use anyhow::{Context as _, Result};
use object::elf;
use object::LittleEndian as LE;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::os::unix::fs::FileExt;

fn fallback<T>(reason: String) -> Result<T> {
    Err(layout::fallback(reason))
}

/// The global symbols of an object, sorted by name: (name, symbol index, defined here).
/// Symbols in COMDAT groups another file won count as references.
pub(crate) fn globals_by_name(object: &LoadedObject) -> Vec<(&'static [u8], usize, bool)> {
    let obj = &object.obj;
    let mut out: Vec<_> = (obj.first_global..obj.symbols.len())
        .map(|i| {
            let shndx = obj.symbol_shndx(i) as usize;
            let defined = shndx != usize::from(elf::SHN_UNDEF)
                && !object.comdat_discarded.get(shndx).copied().unwrap_or(false);
            (obj.symbol_name(i).unwrap_or(b""), i, defined)
        })
        .collect();
    out.sort_unstable();
    out
}

/// What in an object an update cannot absorb: its common symbols (name, size, alignment:
/// they are laid out together in .bss), in a canonical order. (COMDAT groups are checked
/// one by one: see `changed_objects`.)
///
/// The global symbols it defines and references may change: an update resolves every
/// input again, treats a symbol defined or no longer defined here as moved (sections that
/// refer to it are relocated again), and a change in resolution elsewhere shows as objects
/// loaded or no longer loaded (updated in place too) or as other GOT, PLT or dynamic symbol
/// needs (which fall back).
pub fn commons_hash(object: &LoadedObject) -> [u8; 32] {
    let obj = &object.obj;
    let mut h = blake3::Hasher::new();
    for (name, i, defined) in globals_by_name(object) {
        if !defined || obj.symbol_shndx(i) != u32::from(elf::SHN_COMMON) {
            continue;
        }
        let sym = &obj.symbols[i];
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(&sym.st_size.get(LE).to_le_bytes());
        h.update(&sym.st_value.get(LE).to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// [`commons_hash`] of an object without common symbols.
pub(crate) fn no_commons() -> [u8; 32] {
    *blake3::Hasher::new().finalize().as_bytes()
}

/// Name hashes of an object's COMDAT group signatures, sorted.
pub(crate) fn group_hashes(object: &LoadedObject) -> Vec<u64> {
    let mut groups: Vec<u64> = object
        .obj
        .comdat_groups
        .iter()
        .map(|g| name_hash(g.0))
        .collect();
    groups.sort_unstable();
    groups
}

/// Content hash of a loaded object: a plain input's is its file's (already known from
/// `hashes`, by input position); an archive member's is hashed here.
pub(crate) fn object_hash(object: &LoadedObject, hashes: &[[u8; 32]]) -> [u8; 32] {
    match hashes.get(object.origin.0 as usize) {
        Some(hash) if object.origin.1 == u32::MAX => *hash,
        _ => *blake3::hash(object.data).as_bytes(),
    }
}

/// A hash of an archive's symbol index: which member (by [`member_name_key`]) defines
/// which name. Which members a link takes depends only on it and on the symbols the
/// objects before define and refer to. Entries count in any order (a sum of their
/// hashes): rustc lists them per member, in an order an edit may change.
pub fn armap_hash(archive: &crate::input::Archive) -> u64 {
    let keys: Vec<u64> = archive
        .members
        .iter()
        .map(|m| member_name_key(m.name))
        .collect();
    archive
        .index
        .iter()
        .map(|&(name, member, _)| {
            let key = keys.get(member as usize).copied().unwrap_or(0);
            twox_hash::XxHash3_64::oneshot_with_seed(key, name)
        })
        .fold(archive.index.len() as u64, u64::wrapping_add)
}

/// The state's objects matched to this link's, by input position and member key (in
/// order, for members of one archive that share a name).
pub struct Remapped {
    /// The state with its objects in this link's order (a new object gets a record that
    /// matches nothing) and its slots naming this link's files.
    pub state: State,
    /// Objects the recorded link did not have.
    pub added: Vec<FileId>,
    /// Records of objects this link does not have.
    pub removed: Vec<ObjectRecord>,
    /// Objects whose copy of a COMDAT group is kept now, where the recorded link kept a
    /// removed object's copy (it was the first holder in load order).
    pub new_keepers: Vec<FileId>,
}

pub fn remap(state: State, res: &Resolution, new_of_old: &[u32]) -> Remapped {
    let State {
        objects: mut old_objects,
        mut sections,
        ..
    } = state;
    // Recorded objects' inputs by their position now (inputs may have come and gone). The
    // objects of an input that is gone get the position of the next input that is still
    // here, so that "earlier on the command line" keeps its meaning for them.
    let mut position_now = vec![u32::MAX - 1; new_of_old.len() + 1];
    for i in (0..new_of_old.len()).rev() {
        position_now[i] = match new_of_old[i] {
            u32::MAX => position_now[i + 1],
            n => n,
        };
    }
    let mut by_key: rustc_hash::FxHashMap<(u32, u64), std::collections::VecDeque<usize>> =
        rustc_hash::FxHashMap::default();
    for (i, r) in old_objects.iter_mut().enumerate() {
        let here = new_of_old
            .get(r.input as usize)
            .is_some_and(|&n| n != u32::MAX);
        r.input = position_now
            .get(r.input as usize)
            .copied()
            .unwrap_or(u32::MAX - 1);
        if here {
            by_key.entry((r.input, r.key)).or_default().push_back(i);
        }
    }
    // The first holder of each COMDAT group in the recorded link's load order: its copy
    // was kept.
    let mut first_holder: rustc_hash::FxHashMap<u64, usize> = Default::default();
    for (i, r) in old_objects.iter().enumerate() {
        for &g in &r.groups {
            first_holder.entry(g).or_insert(i);
        }
    }
    let mut old_objects: Vec<Option<ObjectRecord>> = old_objects.into_iter().map(Some).collect();
    let mut new_of_old = vec![u32::MAX; old_objects.len()];
    let mut objects = Vec::with_capacity(res.objects.len());
    let mut added = Vec::new();
    for (f, o) in res.objects.iter().enumerate() {
        let key = member_key(o);
        let old = by_key
            .get_mut(&(o.origin.0, key))
            .and_then(|q| q.pop_front())
            .and_then(|i| {
                new_of_old[i] = f as u32;
                old_objects[i].take()
            });
        match old {
            Some(mut r) => {
                r.member = o.origin.1;
                objects.push(r);
            }
            None => {
                added.push(FileId(f as u32));
                objects.push(ObjectRecord {
                    input: o.origin.0,
                    member: o.origin.1,
                    key,
                    hash: [0; 32],
                    commons: no_commons(),
                    symbols: Vec::new(),
                    groups: Vec::new(),
                    scan: Default::default(),
                    symtab: [0; 4],
                    first_global: 0,
                    globals: Vec::new(),
                    interface: 0,
                });
            }
        }
    }
    // (A group no object has now is simply gone.)
    let kept_by_removed: FxHashSet<u64> = old_objects
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|r| (i, r)))
        .flat_map(|(i, r)| {
            let first_holder = &first_holder;
            r.groups
                .iter()
                .copied()
                .filter(move |g| first_holder.get(g) == Some(&i))
        })
        .collect();
    // The first object holding such a group now keeps its copy.
    let mut new_keepers = Vec::new();
    if !kept_by_removed.is_empty() {
        let mut taken = FxHashSet::default();
        for (f, o) in res.objects.iter().enumerate() {
            let mut keeps = false;
            for g in &o.obj.comdat_groups {
                let g = name_hash(g.0);
                keeps |= kept_by_removed.contains(&g) && taken.insert(g);
            }
            if keeps {
                new_keepers.push(FileId(f as u32));
            }
        }
    }
    let removed: Vec<ObjectRecord> = old_objects.into_iter().flatten().collect();
    for section in &mut sections {
        for slot in &mut section.slots {
            // A removed object's slot names no file of this link.
            slot.file = match new_of_old.get(slot.file as usize) {
                Some(&n) if n != u32::MAX => n,
                _ => u32::MAX - slot.file,
            };
        }
    }
    Remapped {
        state: State {
            objects,
            sections,
            ..state
        },
        added,
        removed,
        new_keepers,
    }
}

/// (name hash, address) of the global symbols an object defines, sorted (`u64::MAX` for
/// one that has no address in the output).
pub(crate) fn defined_addresses(
    layout: &Layout,
    file: FileId,
    object: &LoadedObject,
) -> Vec<(u64, u64)> {
    let obj = &object.obj;
    let mut out: Vec<(u64, u64)> = globals_by_name(object)
        .into_iter()
        .filter(|g| g.2)
        .map(|(name, i, _)| {
            let shndx = obj.symbol_shndx(i);
            let value = obj.symbols[i].st_value.get(LE);
            let addr = if shndx == u32::from(elf::SHN_ABS) {
                value
            } else if shndx == u32::from(elf::SHN_COMMON) {
                u64::MAX
            } else {
                layout
                    .section_address(file, shndx, value)
                    .unwrap_or(u64::MAX)
            };
            (name_hash(name), addr)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Fingerprint of what the relocation scan asked for, but the GOT: PLT entries in slot order,
/// copy relocations, canonical PLT entries, dynamic symbols and DT_NEEDED. An update whose
/// fingerprint differs would move PLT slots or change the dynamic symbols: it falls back.
/// (GOT entries are checked by `plan_update` against the recorded order: new ones may be
/// appended in the GOT's spare room.)
pub fn needs_fingerprint(ctx: &Context, layout: &Layout) -> [u8; 32] {
    let res = ctx.res;
    let name = |id: SymbolId| res.symbols.get(id).name;
    let mut h = blake3::Hasher::new();
    let mut put = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let symref = |s: SymRef| match s {
        SymRef::Global(id) => name(id).to_vec(),
        SymRef::Local(f, i) => {
            let origin = res
                .objects
                .get(f.0 as usize)
                .map_or((u32::MAX, 0), |o| (o.origin.0, member_key(o)));
            format!("local {origin:?} {i}").into_bytes()
        }
    };
    let needs = &layout.needs;
    put(b"plt");
    for &id in &needs.plt_entries {
        put(name(id));
    }
    put(b"iplt");
    for &s in &needs.iplt_entries {
        put(&symref(s));
    }
    put(b"copies");
    for &id in &needs.copies {
        put(name(id));
    }
    put(b"canonical");
    let mut canonical: Vec<&[u8]> = needs.canonical.iter().map(|&id| name(id)).collect();
    canonical.sort_unstable();
    for c in canonical {
        put(c);
    }
    put(b"dynsym");
    for &id in &layout.dynamic.dynsyms {
        put(name(id));
    }
    put(b"needed");
    put(&layout.dynamic.dynstr);
    *h.finalize().as_bytes()
}

/// What the state records about a link's layout. `symtab`: each object's part of
/// `.symtab`/`.strtab` and each global symbol's entry (`write::Tail::symtab_files`,
/// `symtab_globals`).
pub fn record(
    ctx: &Context,
    layout: &Layout,
    hashes: &[[u8; 32]],
    (symtab, symtab_globals): (&[[u32; 4]], &[u32]),
) -> Record {
    let res = ctx.res;
    let objects = res
        .objects
        .par_iter()
        .with_max_len(1)
        .enumerate()
        .map(|(f, object)| ObjectRecord {
            input: object.origin.0,
            member: object.origin.1,
            key: member_key(object),
            hash: object_hash(object, hashes),
            commons: commons_hash(object),
            symbols: defined_addresses(layout, FileId(f as u32), object),
            groups: group_hashes(object),
            scan: layout.scans.get(f).cloned().unwrap_or_default(),
            symtab: symtab.get(f).copied().unwrap_or_default(),
            first_global: object.obj.first_global as u32,
            globals: object.global_ids.iter().map(|id| id.0).collect(),
            interface: interface_hash(object),
        })
        .collect();
    Record {
        objects,
        sections: section_records_with(layout, &slot_headers(res, layout)),
        needs: needs_fingerprint(ctx, layout),
        order: layout.needs.order(|s| symref_key(res, s)),
        globals: global_records(ctx, layout, symtab_globals),
        layout: layout_record(layout),
        armaps: res.armaps.clone(),
    }
}

/// What resolution sees of an object, as one number: the global symbols it defines (name,
/// binding, type, visibility, absolute, common or not, a common's size and alignment), its
/// references with a visibility other than the default (they restrict the symbol's), its
/// COMDAT groups, whether it has versioned names, and its `.comment` (merged into the
/// output's). Two versions of an object with the same interface, whose other references
/// name symbols that are defined elsewhere, resolve every symbol the same way (the lean
/// update checks the references: see `lean`). (The symbols count in any order: a sum of
/// their hashes.)
pub fn interface_hash(object: &LoadedObject) -> u64 {
    let obj = &object.obj;
    let mut sum = 0u64;
    for i in obj.first_global..obj.symbols.len() {
        let sym = &obj.symbols[i];
        let shndx = obj.symbol_shndx(i);
        if shndx == 0 && sym.st_other & 3 == elf::STV_DEFAULT {
            continue;
        }
        let (kind, extra) = match shndx {
            0 => (0u64, 0u64),
            s if s == u32::from(elf::SHN_ABS) => (1, 0),
            s if s == u32::from(elf::SHN_COMMON) => (
                2,
                sym.st_size.get(LE) ^ sym.st_value.get(LE).rotate_left(32),
            ),
            _ => (3, 0),
        };
        let seed = u64::from(sym.st_info)
            | u64::from(sym.st_other & 3) << 8
            | kind << 16
            | extra.rotate_left(24);
        let name = obj.symbol_name(i).unwrap_or(b"");
        sum = sum.wrapping_add(twox_hash::XxHash3_64::oneshot_with_seed(seed, name));
    }
    let mut h = blake3::Hasher::new();
    h.update(&sum.to_le_bytes());
    h.update(&[u8::from(obj.versioned)]);
    for g in group_hashes(object) {
        h.update(&g.to_le_bytes());
    }
    for (sec, name) in obj.section_names.iter().enumerate() {
        if *name == b".comment" {
            h.update(b".comment");
            h.update(obj.section_data(sec));
        }
    }
    // Its properties take part in the output's `.note.gnu.property`.
    for &(pr_type, value) in &obj.properties {
        h.update(&pr_type.to_le_bytes());
        h.update(&value.to_le_bytes());
    }
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap())
}

/// The state's number for an output kind.
pub fn kind_number(kind: crate::context::OutputKind) -> u8 {
    match kind {
        crate::context::OutputKind::StaticExe => 0,
        crate::context::OutputKind::StaticPie => 1,
        crate::context::OutputKind::DynExe => 2,
        crate::context::OutputKind::DynPie => 3,
        crate::context::OutputKind::Shared => 4,
    }
}

fn layout_record(layout: &Layout) -> crate::state::LayoutRecord {
    crate::state::LayoutRecord {
        kind: kind_number(layout.kind),
        tls_start: layout.tls_start,
        tls_memsz: layout.tls_memsz,
        tls_align: layout.tls_align,
        got: layout.synthetic_addrs.got,
        got_plt: layout.synthetic_addrs.got_plt,
        plt: layout.synthetic_addrs.plt,
        iplt: layout.synthetic_addrs.iplt,
        plt_header: layout.synthetic_addrs.plt_header,
        file_size: layout.file_size,
        build_id_size: layout.build_id_size,
    }
}

/// Every global symbol's resolution, for the state (see `state::GlobalRecord`).
fn global_records(ctx: &Context, layout: &Layout, symtab_globals: &[u32]) -> Vec<GlobalRecord> {
    use crate::state::{
        GLOBAL_ABS, GLOBAL_COMMON, GLOBAL_COPY, GLOBAL_DEFINED, GLOBAL_NO_ADDRESS, GLOBAL_SHARED,
        GLOBAL_SYNTHETIC, GLOBAL_UNDEFINED,
    };
    let res = ctx.res;
    let copied: FxHashSet<SymbolId> = layout
        .needs
        .copies
        .iter()
        .chain(layout.dynamic.copy_aliases.keys())
        .copied()
        .collect();
    (0..res.symbols.symbols.len())
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            let id = SymbolId(i as u32);
            let symbol = res.symbols.get(id);
            let symref = SymRef::Global(id);
            let (target, st_type) = ctx.symref_target(symref);
            let (kind, file) = match symbol.def {
                Def::Defined { file, .. } if matches!(target, crate::context::Target::Abs(_)) => {
                    (GLOBAL_ABS, file.0)
                }
                Def::Defined { file, .. } => (GLOBAL_DEFINED, file.0),
                Def::Common { file, .. } => (GLOBAL_COMMON, file.0),
                Def::Synthetic => (GLOBAL_SYNTHETIC, u32::MAX),
                Def::Shared { .. } => (GLOBAL_SHARED, u32::MAX),
                Def::Undefined => (GLOBAL_UNDEFINED, u32::MAX),
            };
            let addr = layout.symbol_address(ctx, symref);
            let mut flags = 0;
            if copied.contains(&id) {
                flags |= GLOBAL_COPY;
            }
            if addr.is_none() {
                flags |= GLOBAL_NO_ADDRESS;
            }
            GlobalRecord {
                key: name_hash(symbol.name),
                addr: addr.unwrap_or(0),
                file,
                dynsym: layout.dynamic.dynsym_index.get(&id).copied().unwrap_or(0),
                symtab: symtab_globals.get(i).copied().unwrap_or(u32::MAX),
                kind,
                st_type,
                class: layout::scan_class(ctx, id),
                flags,
            }
        })
        .collect()
}

/// The output sections' sizes and slots, for the state.
pub(crate) fn section_records(layout: &Layout) -> Vec<SectionRecord> {
    section_records_with(layout, &FxHashMap::default())
}

/// What each file's input sections make of each output section's header (see
/// `state::SlotRecord`): (file, output section) -> (alignment, flags, has contents).
pub(crate) type SlotHeaders = FxHashMap<(u32, u32), SlotHeader>;

/// (alignment, flags, has contents): see `state::SlotRecord`.
pub(crate) type SlotHeader = (u64, u64, bool);

/// The header contributions of what an object puts in an output section: its input section
/// `sec` (with header `shdr`) added to `into`.
pub(crate) fn add_to_header(into: &mut SlotHeader, shdr: &crate::input::elf::Shdr) {
    let flags = shdr.sh_flags.get(LE)
        & !u64::from(elf::SHF_GROUP | elf::SHF_MERGE | elf::SHF_STRINGS | elf::SHF_COMPRESSED);
    into.0 = into.0.max(shdr.sh_addralign.get(LE).max(1));
    into.1 |= flags;
    into.2 |= shdr.sh_type.get(LE) != elf::SHT_NOBITS;
}

/// [`SlotHeaders`] of a layout.
pub(crate) fn slot_headers(res: &Resolution, layout: &Layout) -> SlotHeaders {
    let per_file: Vec<Vec<(u32, SlotHeader)>> = res
        .objects
        .par_iter()
        .enumerate()
        .with_max_len(4)
        .map(|(f, object)| {
            let mut outs: Vec<(u32, SlotHeader)> = Vec::new();
            for (sec, p) in layout.placements[f].iter().enumerate() {
                if p.out == NOT_PLACED || p.mapping == layout::Mapping::Merged {
                    continue;
                }
                let i = match outs.iter().position(|o| o.0 == p.out) {
                    Some(i) => i,
                    None => {
                        outs.push((p.out, (1, 0, false)));
                        outs.len() - 1
                    }
                };
                add_to_header(&mut outs[i].1, &object.obj.shdrs[sec]);
            }
            outs
        })
        .collect();
    let mut map = SlotHeaders::default();
    for (f, outs) in per_file.into_iter().enumerate() {
        for (out, h) in outs {
            map.insert((f as u32, out), h);
        }
    }
    map
}

/// [`section_records`], with the slots' header contributions.
pub(crate) fn section_records_with(layout: &Layout, headers: &SlotHeaders) -> Vec<SectionRecord> {
    let mut sections: Vec<SectionRecord> = layout
        .order
        .iter()
        .map(|id| {
            let s = &layout.sections[id.0 as usize];
            SectionRecord {
                name: s.name.clone(),
                size: s.size,
                slots: Vec::new(),
                addr: s.addr,
                offset: s.offset,
                sh_type: s.sh_type,
                sh_flags: s.sh_flags,
                align: s.align,
                synthetic: s.synthetic.is_some(),
            }
        })
        .collect();
    for slot in &layout.slots {
        let name = &layout.sections[slot.out as usize].name;
        if let Some(s) = sections.iter_mut().find(|s| &s.name == name) {
            // (An empty slot, which an update left to a file that lost its sections here:
            // alignment 0.)
            let (align, flags, progbits) = headers
                .get(&(slot.file.0, slot.out))
                .copied()
                .unwrap_or((0, 0, false));
            s.slots.push(SlotRecord {
                file: slot.file.0,
                start: slot.start,
                capacity: slot.capacity,
                align,
                flags,
                progbits,
            });
        }
    }
    sections
}

/// The layout to replay, from the state.
/// The recorded layout, for a replay. The scan results of objects not in `changed` are
/// taken out of `state` (the new layout has them).
pub fn recorded_layout(state: &mut State, changed: &[FileId]) -> layout::Recorded {
    let mut rec = layout::Recorded::default();
    let changed: FxHashSet<FileId> = changed.iter().copied().collect();
    rec.scans = state
        .objects
        .iter_mut()
        .enumerate()
        .map(|(f, o)| (!changed.contains(&FileId(f as u32))).then(|| std::mem::take(&mut o.scan)))
        .collect();
    for (i, s) in state.sections.iter().enumerate() {
        rec.sizes.insert(s.name.clone(), s.size);
        rec.position.insert(s.name.clone(), i);
        if !s.slots.is_empty() {
            rec.slots.insert(
                s.name.clone(),
                s.slots
                    .iter()
                    .map(|slot| (FileId(slot.file), slot.start, slot.capacity))
                    .collect(),
            );
        }
    }
    rec.order = state.order.clone();
    rec
}

/// The build-id of an incremental-mode output: the options, the inputs' contents and the
/// slot table determine every byte, so they serve as its identity (and nothing needs to
/// hash the whole output after a small update).
pub fn build_id_seed(config: &Config, hashes: &[[u8; 32]], sections: &[SectionRecord]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&crate::state::options_hash(config));
    for hash in hashes {
        h.update(hash);
    }
    for (i, s) in sections.iter().enumerate() {
        // By address: an update that moved a slot lists it last, a replay in file order.
        let mut slots: Vec<(u64, u32, u64)> = s
            .slots
            .iter()
            .map(|slot| (slot.start, slot.file, slot.capacity))
            .collect();
        slots.sort_unstable();
        for (start, file, capacity) in slots {
            for v in [i as u64, u64::from(file), start, capacity] {
                h.update(&v.to_le_bytes());
            }
        }
    }
    *h.finalize().as_bytes()
}

/// Whether an output section's addresses are its own: not a non-alloc section, and not
/// `.tbss`, whose addresses overlap the sections after it.
pub(crate) fn has_addresses(os: &layout::OutputSection) -> bool {
    let tbss = os.sh_type == elf::SHT_NOBITS && os.sh_flags & u64::from(elf::SHF_TLS) != 0;
    os.addr != 0 && !tbss
}

/// What an update found to do.
pub struct Update {
    /// Objects whose content changed.
    pub changed: Vec<FileId>,
    pub selection: Selection,
    /// Byte ranges of the output to write (everything else is kept).
    pub dirty: Vec<(u64, u64)>,
    /// Sections of unchanged objects relocated again.
    pub rerelocated: usize,
    /// The GOT/PLT entries' order after the update, for the state.
    pub order: crate::state::NeedsOrder,
}

/// The objects that changed, once it is certain that resolution is as the state recorded:
/// the same objects are loaded in the same order and each changed object defines and
/// references the same global symbols.
pub fn changed_objects(
    config: &Config,
    res: &crate::resolve::Resolution,
    remapped: &Remapped,
    changed_inputs: &[usize],
    hashes: &[[u8; 32]],
) -> Result<Vec<FileId>> {
    if !config.defsym.is_empty() {
        return fallback("--defsym values are not tracked incrementally".into());
    }
    let state = &remapped.state;
    // Objects of changed inputs, and objects the recorded link did not have (an archive
    // member pulled in now, a codegen unit rustc added).
    let changed_set: FxHashSet<u32> = changed_inputs.iter().map(|&i| i as u32).collect();
    let added: FxHashSet<FileId> = remapped.added.iter().copied().collect();
    let candidates: Vec<usize> = (0..res.objects.len())
        .filter(|&f| {
            changed_set.contains(&res.objects[f].origin.0) || added.contains(&FileId(f as u32))
        })
        .collect();
    let checked: Vec<Result<Option<FileId>>> = candidates
        .par_iter()
        .map(|&f| {
            let object = &res.objects[f];
            let old = &state.objects[f];
            if object_hash(object, hashes) == old.hash {
                return Ok(None);
            }
            if commons_hash(object) != old.commons {
                return fallback(format!("{} has other common symbols", object.name));
            }
            Ok(Some(FileId(f as u32)))
        })
        .collect();
    let mut changed = Vec::new();
    for c in checked {
        changed.extend(c?);
    }
    for r in &remapped.removed {
        if r.commons != no_commons() {
            return fallback("an object with common symbols is gone".into());
        }
    }
    // A COMDAT group a changed object gained or lost must not change which copy is kept
    // elsewhere: fine if an earlier object has it (this object's copy was and is dropped)
    // or no other object has it; otherwise a later object's copy changes hands.
    let mut holders: Option<rustc_hash::FxHashMap<u64, (usize, usize)>> = None;
    for &file in &changed {
        let object = &res.objects[file.0 as usize];
        let (now, then) = (group_hashes(object), &state.objects[file.0 as usize].groups);
        let differ: Vec<u64> = now
            .iter()
            .filter(|g| then.binary_search(g).is_err())
            .chain(then.iter().filter(|g| now.binary_search(g).is_err()))
            .copied()
            .collect();
        if differ.is_empty() {
            continue;
        }
        // First and last object holding each group.
        let holders = holders.get_or_insert_with(|| {
            let mut map = rustc_hash::FxHashMap::default();
            for (f, o) in res.objects.iter().enumerate() {
                for g in &o.obj.comdat_groups {
                    map.entry(name_hash(g.0))
                        .and_modify(|e: &mut (usize, usize)| e.1 = f)
                        .or_insert((f, f));
                }
            }
            map
        });
        let index = file.0 as usize;
        let hands_over = |g: &u64| {
            holders
                .get(g)
                .is_some_and(|&(first, last)| first >= index && last > index)
        };
        if differ.iter().any(hands_over) {
            return fallback(format!(
                "{} gained or lost a COMDAT group that a later object has",
                object.name
            ));
        }
    }
    // A removed object's copy of a COMDAT group was the kept one: the copy of the first
    // object that has the group now is kept instead, its sections laid out for the first
    // time. That object is updated as if it had changed.
    if !remapped.new_keepers.is_empty() {
        changed.extend(remapped.new_keepers.iter().copied());
        changed.sort_unstable();
        changed.dedup();
    }
    Ok(changed)
}

/// Decides what to rewrite, after the layout was replayed. `old_output` is the output the
/// state describes.
pub fn plan_update(
    config: &Config,
    ctx: &Context,
    layout: &Layout,
    state: &State,
    changed: Vec<FileId>,
    removed: &[ObjectRecord],
    old_output: &std::fs::File,
) -> Result<Update> {
    let res = ctx.res;
    let order = match &layout.replayed_order {
        Some(order) => order.clone(),
        None => layout.needs.order(|s| symref_key(res, s)),
    };
    // Recorded GOT entries keep their slots, those no longer asked for as holes; new ones
    // follow them (the layout kept the GOT's size, so they fit).
    if !order.got.starts_with(&state.order.got) {
        return fallback("the GOT would change: an entry is no longer used".into());
    }
    if needs_fingerprint(ctx, layout) != state.needs {
        let what = if order.plt != state.order.plt || order.iplt != state.order.iplt {
            "the PLT"
        } else {
            "the dynamic symbols or copy relocations"
        };
        return fallback(format!("{what} would change"));
    }
    let changed_files: FxHashSet<FileId> = changed.iter().copied().collect();

    // 3. Global symbols whose address moved.
    let moved = moved_symbols(res, layout, state, &changed, removed);

    // Unchanged objects whose slots the layout resized are rewritten like changed ones.
    let mut rewritten_files = changed_files.clone();
    rewritten_files.extend(layout.resized.iter().copied());

    // 4. Sections to write: all of the changed (and resized) objects', and those of
    //    other objects with a relocation against a moved symbol.
    let mut selection = Selection {
        files: rewritten_files.clone(),
        ..Selection::default()
    };
    for &file in &rewritten_files {
        let f = file.0 as usize;
        for (sec, p) in layout.placements[f].iter().enumerate() {
            if p.out != NOT_PLACED {
                selection.sections.insert((file, sec as u32));
            }
        }
    }
    let rerelocate = referring_sections(res, layout, &rewritten_files, &moved);
    let rerelocated = rerelocate.len();
    selection.sections.extend(rerelocate.iter().copied());

    let (whole_slots, whole_addrs) = whole_slots(
        layout,
        &rerelocate,
        |file| rewritten_files.contains(&file),
        &mut selection,
    );

    // 5. Output ranges rewritten: slots of changed objects, re-relocated sections, the
    //    linker-made sections, headers and the tail (symbol tables, section headers).
    let (mut dirty, mut rewritten_addrs) = rewritten_ranges(
        res,
        layout,
        |file| rewritten_files.contains(&file),
        &rerelocate,
    );
    dirty.extend(whole_slots);
    let headers = 64 + 56 * layout.segments.len() as u64;
    dirty.push((0, headers));
    for id in &layout.order {
        let s = &layout.sections[id.0 as usize];
        if s.synthetic.is_some() && s.sh_type != elf::SHT_NOBITS {
            dirty.push((s.offset, s.size));
        }
    }
    rewritten_addrs.extend(whole_addrs);
    carry_over(
        config,
        layout,
        state,
        old_output,
        &rewritten_files,
        rewritten_addrs,
        &mut selection,
    )?;
    Ok(Update {
        changed,
        selection,
        dirty,
        rerelocated,
        order,
    })
}

/// Global symbols whose address moved: definitions in changed objects whose address
/// differs, and every symbol a changed object defines now and did not, or did and does not
/// (its references elsewhere resolve differently now), and their `.symver` aliases.
fn moved_symbols(
    res: &Resolution,
    layout: &Layout,
    state: &State,
    changed: &[FileId],
    removed: &[ObjectRecord],
) -> FxHashSet<SymbolId> {
    let changed_files: FxHashSet<FileId> = changed.iter().copied().collect();
    let mut moved: FxHashSet<SymbolId> = FxHashSet::default();
    let mut gone: FxHashSet<u64> = FxHashSet::default();
    for &file in changed {
        let object = &res.objects[file.0 as usize];
        let old = &state.objects[file.0 as usize].symbols;
        let new = defined_addresses(layout, file, object);
        for (name, sym_index, defined) in globals_by_name(object) {
            if !defined {
                continue;
            }
            let h = name_hash(name);
            let now = new.binary_search_by_key(&h, |e| e.0).map(|i| new[i].1);
            let then = old.binary_search_by_key(&h, |e| e.0).map(|i| old[i].1);
            if then.is_err() || now != then {
                if let Some(id) = object.global_id(sym_index) {
                    moved.insert(id);
                }
            }
        }
        for &(h, _) in old {
            if new.binary_search_by_key(&h, |e| e.0).is_err() {
                gone.insert(h);
            }
        }
    }
    for r in removed {
        gone.extend(r.symbols.iter().map(|&(h, _)| h));
    }
    if !gone.is_empty() {
        let found: Vec<SymbolId> = res
            .symbols
            .symbols
            .par_iter()
            .enumerate()
            .with_min_len(4096)
            .filter(|(_, symbol)| gone.contains(&name_hash(symbol.name)))
            .map(|(i, _)| SymbolId(i as u32))
            .collect();
        moved.extend(found);
    }
    // Aliases (`foo` for `foo@@V`) share the definition.
    for alias in &res.symver_aliases {
        if let Def::Defined { file, .. } = res.symbols.get(*alias).def {
            if changed_files.contains(&file) {
                moved.insert(*alias);
            }
        }
    }

    moved
}

/// The sections of objects not rewritten whole that have a relocation against a moved
/// symbol: they are relocated again.
fn referring_sections(
    res: &Resolution,
    layout: &Layout,
    rewritten_files: &FxHashSet<FileId>,
    moved: &FxHashSet<SymbolId>,
) -> Vec<(FileId, u32)> {
    if moved.is_empty() {
        Vec::new()
    } else {
        res.objects
            .par_iter()
            .enumerate()
            .filter(|(f, o)| {
                !rewritten_files.contains(&FileId(*f as u32))
                    && o.global_ids.iter().any(|id| moved.contains(id))
            })
            .flat_map_iter(|(f, o)| {
                layout.placements[f]
                    .iter()
                    .enumerate()
                    .filter(move |(sec, p)| {
                        p.out != NOT_PLACED
                            && o.obj.relocs[*sec].iter().any(|r| {
                                o.global_id(r.r_sym(LE, false) as usize)
                                    .is_some_and(|id| moved.contains(&id))
                            })
                    })
                    .map(move |(sec, _)| (FileId(f as u32), sec as u32))
            })
            .collect()
    }
}

/// What the update keeps of the old output (`old_output`) for the objects it does not
/// rewrite: their dynamic relocations and FDEs outside the `rewritten` address ranges, and
/// (unless `-s`) their local symbols.
fn carry_over(
    config: &Config,
    layout: &Layout,
    state: &State,
    old_output: &std::fs::File,
    rewritten_files: &FxHashSet<FileId>,
    rewritten_addrs: Vec<(u64, u64)>,
    selection: &mut Selection,
) -> Result<()> {
    let mut rewritten = Ranges::new(rewritten_addrs);
    // Address ranges of unchanged objects' slots: their dynamic relocations and FDEs are
    // carried over unless the section was re-relocated.
    let mut kept_slots = Ranges::new(
        layout
            .slots
            .iter()
            .filter(|s| !rewritten_files.contains(&s.file))
            .filter_map(|s| {
                let os = &layout.sections[s.out as usize];
                has_addresses(os).then_some((os.addr + s.start, s.capacity))
            })
            .collect(),
    );
    let mut kept = |addr: u64| kept_slots.contains(addr) && !rewritten.contains(addr);
    // SAFETY: the output is only read through this map while this process holds the
    // output's lock; it is patched (through another handle) after the new output is built.
    let old = unsafe { memmap2::Mmap::map(old_output) }
        .with_context(|| format!("cannot map {}", config.output.display()))?;
    let read = |kind: Synthetic| -> Result<Option<(u64, &[u8])>> {
        let Some(s) = layout.synthetic(kind) else {
            return Ok(None);
        };
        let name = kind.name();
        let bytes = usize::try_from(s.offset)
            .ok()
            .zip(usize::try_from(s.offset + s.size).ok())
            .and_then(|(start, end)| old.get(start..end))
            .with_context(|| format!("cannot read {name} of {}", config.output.display()))?;
        Ok(Some((s.addr, bytes)))
    };
    if let Some((_, bytes)) = read(Synthetic::RelaDyn)? {
        for e in bytes.chunks_exact(24) {
            let r = DynReloc::decode(e);
            if r.r_type != <crate::arch::Current as crate::arch::Arch>::NONE && kept(r.offset) {
                selection.kept_dyn_relocs.push(r);
            }
        }
    }
    if let Some((hdr, bytes)) = read(Synthetic::EhFrameHdr)? {
        let entries = crate::eh_frame::hdr_entries(hdr, bytes);
        selection
            .kept_fdes
            .extend(entries.filter(|&(_, fde)| kept(fde)));
    }
    // The local symbols of objects that kept their contents and slots are as recorded.
    if !config.strip_all {
        let n_objects = layout.placements.len();
        selection.symtab = crate::write::SymtabReuse::new(old, n_objects, |f| {
            (!rewritten_files.contains(&f)).then(|| state.objects[f.0 as usize].symtab)
        });
    }
    Ok(())
}

/// The file ranges and address ranges an update rewrites: the slots of the files
/// `rewritten` names (whole, with their spare room) and the re-relocated sections.
pub(crate) fn rewritten_ranges(
    res: &Resolution,
    layout: &Layout,
    rewritten: impl Fn(FileId) -> bool,
    rerelocate: &[(FileId, u32)],
) -> (ByteRanges, ByteRanges) {
    let (mut dirty, mut addrs) = (Vec::new(), Vec::new());
    let mut add = |os: &layout::OutputSection, start: u64, len: u64| {
        if os.sh_type != elf::SHT_NOBITS {
            dirty.push((os.offset + start, len));
        }
        if has_addresses(os) {
            addrs.push((os.addr + start, len));
        }
    };
    for slot in layout.slots.iter().filter(|s| rewritten(s.file)) {
        add(
            &layout.sections[slot.out as usize],
            slot.start,
            slot.capacity,
        );
    }
    for &(file, sec) in rerelocate {
        let p = layout.placements[file.0 as usize][sec as usize];
        let len = layout.member_len(res, file, sec);
        add(&layout.sections[p.out as usize], p.offset, len);
    }
    (dirty, addrs)
}

/// (start, length) ranges of file offsets or addresses.
type ByteRanges = Vec<(u64, u64)>;

/// A section read unit by unit that is re-relocated is copied afresh, without the
/// lengthened last unit of its slot (see `write::fill_spare_room`): its whole slot is
/// rewritten, every member and the spare room. Adds those slots (of files `skip` does not
/// name: they are rewritten anyway) and their members to `selection`; returns their file
/// ranges and address ranges.
pub(crate) fn whole_slots(
    layout: &Layout,
    rerelocate: &[(FileId, u32)],
    skip: impl Fn(FileId) -> bool,
    selection: &mut Selection,
) -> (ByteRanges, ByteRanges) {
    let walked: FxHashSet<(FileId, u32)> = rerelocate
        .iter()
        .map(|&(file, sec)| (file, layout.placements[file.0 as usize][sec as usize].out))
        .filter(|&(_, out)| layout::walked_by_units(&layout.sections[out as usize].name))
        .collect();
    let (mut whole_slots, mut whole_addrs) = (Vec::new(), Vec::new());
    for slot in &layout.slots {
        if skip(slot.file) || !walked.contains(&(slot.file, slot.out)) {
            continue;
        }
        let end = slot.start + slot.capacity.max(slot.used);
        let f = slot.file.0 as usize;
        for (sec, p) in layout.placements[f].iter().enumerate() {
            if p.out == slot.out && p.offset >= slot.start && p.offset < end {
                selection.sections.insert((slot.file, sec as u32));
            }
        }
        selection.slots.insert((slot.out, slot.start));
        let os = &layout.sections[slot.out as usize];
        whole_slots.push((os.offset + slot.start, slot.capacity));
        if has_addresses(os) {
            whole_addrs.push((os.addr + slot.start, slot.capacity));
        }
    }
    (whole_slots, whole_addrs)
}

/// Sorted address ranges (start, length), asked whether they hold addresses that come
/// mostly in increasing order (dynamic relocations, FDEs): a cursor moves forward, and
/// jumps by binary search when an address is far ahead or behind.
pub(crate) struct Ranges {
    ranges: Vec<(u64, u64)>,
    /// Ranges before this one start at or before the last address asked about.
    next: usize,
}

impl Ranges {
    pub(crate) fn new(mut ranges: Vec<(u64, u64)>) -> Ranges {
        ranges.sort_unstable();
        Ranges { ranges, next: 0 }
    }

    /// The ranges, sorted by start.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }

    pub(crate) fn contains(&mut self, addr: u64) -> bool {
        let r = &self.ranges;
        if self.next > 0 && r[self.next - 1].0 > addr {
            self.next = r.partition_point(|x| x.0 <= addr);
        } else {
            let mut steps = 0;
            while self.next < r.len() && r[self.next].0 <= addr {
                self.next += 1;
                steps += 1;
                if steps == 8 {
                    self.next += r[self.next..].partition_point(|x| x.0 <= addr);
                    break;
                }
            }
        }
        self.next > 0 && addr - r[self.next - 1].0 < r[self.next - 1].1
    }
}

/// Writes the dirty ranges of the new output (`main`, complete in those ranges, then
/// `tail`) into the output: in place when nothing can be running it, otherwise into a copy that is renamed
/// over it. Returns the bytes written.
pub fn apply(
    config: &Config,
    kind: crate::context::OutputKind,
    (main, tail): (&[u8], &crate::write::Tail),
    dirty: &[(u64, u64)],
) -> Result<u64> {
    let tail_start = tail.offset;
    let output = &config.output;
    // Test support: `WELD_TEST_KILL_AT=patch` kills the link halfway through patching.
    let kill_midway = std::env::var("WELD_TEST_KILL_AT").is_ok_and(|v| v == "patch");
    // Only the pages whose bytes differ from the output's are written: the tables rebuilt
    // whole (.rela.dyn, .symtab, .strtab) mostly come out as they were.
    let write_ranges = |file: &std::fs::File| -> Result<u64> {
        // SAFETY: the output is only read through this map while this process, holding the
        // output's lock, writes it through `file`; each page is compared before it is written.
        let old = unsafe { memmap2::Mmap::map(file) }?;
        let mut written = 0;
        for (i, &(start, len)) in dirty.iter().enumerate() {
            if kill_midway && i == dirty.len() / 2 {
                std::process::abort();
            }
            let end = (start + len).min(tail_start).min(main.len() as u64);
            if start >= end {
                continue;
            }
            written += write_changed(file, &old, &main[start as usize..end as usize], start)?;
        }
        written += write_changed(file, &old, &tail.bytes, tail_start)?;
        drop(old);
        file.set_len(tail_start + tail.bytes.len() as u64)?;
        file.sync_data()?;
        Ok(written)
    };
    // A running executable cannot be opened for writing (ETXTBSY, on all kernels but 6.11
    // and 6.12); a shared library can, but the processes that have it mapped would see the
    // patch: copy those.
    let in_place = if !crate::output::in_place_is_safe(kind == crate::context::OutputKind::Shared) {
        None
    } else {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(output)
        {
            Ok(f) => Some(f),
            Err(e) if e.raw_os_error() == Some(26) => None, // ETXTBSY
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", output.display())),
        }
    };
    if let Some(file) = in_place {
        let removing = crate::state::invalidate(output)?;
        let written =
            write_ranges(&file).with_context(|| format!("cannot patch {}", output.display()));
        if let Some(thread) = removing {
            let _ = thread.join();
        }
        return written;
    }
    let tmp_name = crate::output::temp_path(output);
    // (Read too: the patch compares each page with the copy's before writing it.)
    let (tmp, mut file) = crate::temp::TempPath::create(tmp_name.clone())
        .with_context(|| format!("cannot create {}", tmp_name.display()))?;
    let copied = std::fs::File::open(output).and_then(|mut source| {
        // std copies File to File with copy_file_range (a reflink where the file system
        // has them).
        std::io::copy(&mut source, &mut file)?;
        file.set_permissions(source.metadata()?.permissions())
    });
    copied.with_context(|| {
        format!(
            "cannot copy {} to {}",
            output.display(),
            tmp.path().display()
        )
    })?;
    let written =
        write_ranges(&file).with_context(|| format!("cannot patch {}", tmp.path().display()))?;
    std::fs::rename(tmp.path(), output).with_context(|| {
        format!(
            "cannot rename {} to {}",
            tmp.path().display(),
            output.display()
        )
    })?;
    tmp.keep();
    Ok(written)
}

/// The record of an updated output: the old one with the changed objects' entries renewed.
pub fn updated_record(
    ctx: &Context,
    layout: &mut Layout,
    state: State,
    plan: Update,
    hashes: &[[u8; 32]],
    (symtab, symtab_globals): (&[[u32; 4]], &[u32]),
) -> Record {
    let changed = &plan.changed;
    let mut objects = state.objects;
    // Symbol ids are this link's: every object's symbols are recorded anew.
    for ((r, &s), object) in objects.iter_mut().zip(symtab).zip(&ctx.res.objects) {
        r.symtab = s;
        r.first_global = object.obj.first_global as u32;
        r.globals = object.global_ids.iter().map(|id| id.0).collect();
    }
    for &file in changed {
        let object = &ctx.res.objects[file.0 as usize];
        let r = &mut objects[file.0 as usize];
        r.hash = object_hash(object, hashes);
        r.commons = commons_hash(object);
        r.symbols = defined_addresses(layout, file, object);
        r.groups = group_hashes(object);
        r.interface = interface_hash(object);
    }
    for (r, scan) in objects.iter_mut().zip(std::mem::take(&mut layout.scans)) {
        r.scan = scan;
    }
    Record {
        objects,
        sections: section_records_with(layout, &slot_headers(ctx.res, layout)),
        needs: state.needs,
        // New GOT entries were appended.
        order: plan.order,
        globals: global_records(ctx, layout, symtab_globals),
        layout: layout_record(layout),
        armaps: ctx.res.armaps.clone(),
    }
}

/// Writes `new` at offset `at` of `file`, whose bytes are `old`, skipping the pages that
/// hold those bytes already. Returns the bytes written.
fn write_changed(file: &std::fs::File, old: &[u8], new: &[u8], at: u64) -> std::io::Result<u64> {
    const PAGE: usize = 4096;
    let old = old.get(at as usize..).unwrap_or(&[]);
    let same = |i: usize| {
        let end = (i + PAGE).min(new.len());
        old.get(i..end) == Some(&new[i..end])
    };
    let mut written = 0;
    let mut i = 0;
    while i < new.len() {
        if same(i) {
            i += PAGE;
            continue;
        }
        let start = i;
        while i < new.len() && !same(i) {
            i += PAGE;
        }
        let end = i.min(new.len());
        file.write_all_at(&new[start..end], at + start as u64)?;
        written += (end - start) as u64;
    }
    Ok(written)
}

/// Test support (`WELD_ORACLE=1`): the patched output must equal a from-scratch write of
/// the same layout.
pub fn check_oracle(output: &std::path::Path, full: &[u8]) -> Result<()> {
    let patched = std::fs::read(output)
        .with_context(|| format!("oracle: cannot read {}", output.display()))?;
    if patched == full {
        return Ok(());
    }
    // Kept for a look with readelf/cmp.
    let mut expected = output.as_os_str().to_owned();
    expected.push(".oracle");
    let _ = std::fs::write(&expected, full);
    let mut kept = output.as_os_str().to_owned();
    kept.push(".patched");
    let _ = std::fs::write(&kept, &patched);
    let at = patched
        .iter()
        .zip(full)
        .position(|(a, b)| a != b)
        .unwrap_or(patched.len().min(full.len()));
    anyhow::bail!(
        "oracle: the patched {} differs from a full write of its layout at offset {at:#x} \
         ({} bytes patched, {} expected)",
        output.display(),
        patched.len(),
        full.len()
    )
}

#[cfg(test)]
mod tests {
    use super::Ranges;

    /// The cursor answers as a plain search does, for addresses in any order: increasing,
    /// decreasing, jumping far ahead and back, on range edges.
    #[test]
    fn ranges_answer_like_a_search() {
        let ranges: Vec<(u64, u64)> = (0..200u64)
            .map(|i| (i * 100 + (i % 7) * 3, 10 + i % 13))
            .collect();
        let naive = |addr: u64| ranges.iter().any(|&(s, l)| addr >= s && addr - s < l);
        let mut r = Ranges::new(ranges.iter().rev().copied().collect());
        // A deterministic mix: a sweep up, a sweep down, then pseudo-random jumps.
        let mut queries: Vec<u64> = (0..21_000).step_by(7).collect();
        queries.extend((0..21_000).rev().step_by(11));
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            queries.push((x >> 33) % 21_000);
        }
        queries.extend([0, 9, 10, 100 + 3, 100 + 3 + 10, 20_999]);
        for q in queries {
            assert_eq!(r.contains(q), naive(q), "address {q}");
        }
    }
}
