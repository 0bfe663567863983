//! The lean update: an incremental update that reads only the objects whose contents
//! changed, and the objects that refer to a global symbol that moved.
//!
//! `incremental` (the whole update) resolves every input again and replays the layout of
//! every object; its cost grows with the program. This one trusts the state for what did
//! not change: the resolved global symbols (`state::GlobalRecord`: where each is defined,
//! its address, its GOT, PLT and `.dynsym` entries), every object's slots, and the old
//! output's tables. It applies when nothing an edit of a function body leaves alone has
//! changed:
//!
//! - no input was added or removed, and every changed object has the interface it had
//!   (`incremental::interface_hash`: the same global symbols defined and referred to, the
//!   same COMDAT groups), and a changed archive the same symbol index
//!   (`incremental::armap_hash`): then every symbol resolves as before, and the same
//!   archive members are used;
//! - a changed object's relocations ask for the same GOT, PLT and dynamic entries
//!   (its relocation scan, compared by symbol name);
//! - its sections fit the slots it had, in the output sections it had;
//! - no symbol that moved is exported (`.dynsym`), the entry point, or an IFUNC.
//!
//! It then lays out the changed objects in their slots (the same packing as
//! `layout::compute`), writes them, relocates again the sections of other objects that
//! refer to a moved symbol, rewrites the GOT entries of moved symbols, `.rela.dyn` and
//! `.eh_frame_hdr` (the old entries, less those of rewritten ranges, plus the new ones),
//! `.symtab` (unchanged objects' local symbols and the global symbols copied from the old
//! output, those of changed objects patched) and the build-id. The bytes are those that
//! the whole update would write (`WELD_ORACLE=1` checks this: see `lib::check_lean`).
//! Anything else is a `layout::Fallback`: the whole update takes over.

use crate::arch::{Arch, Current as A};
use crate::args::Config;
use crate::context::{Context, GotKind, OutSecId, OutputKind, SymRef};
use crate::eh_frame::{self, Record};
use crate::incremental;
use crate::input::dso::{DsoSymbol, SharedObject};
use crate::input::elf::{ObjectFile, LE};
use crate::input::search::FileSpec;
use crate::layout::{
    self, Layout, Mapping, OutputSection, Placement, Slot, Synthetic, SyntheticAddrs,
    SyntheticIndex, NOT_PLACED,
};
use crate::resolve::{DefinedAt, LoadedDso, LoadedObject, Resolution};
use crate::state::name_hash;
use crate::state::{self, InputMatch, Inputs, ScanRecord, State};
use crate::symbols::{Def, FileId, SymbolDb, SymbolId};
use crate::write::{self, DynReloc, Selection};
use anyhow::{Context as _, Result};
use object::elf;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

fn fallback<T>(reason: impl Into<String>) -> Result<T> {
    Err(layout::fallback(reason.into()))
}

/// What a lean update did, for `--stats`.
pub struct Done {
    /// The first three changed objects' names.
    pub changed: Vec<String>,
    pub n_changed: usize,
    pub n_objects: usize,
    pub rerelocated: usize,
    pub written: u64,
    pub size: u64,
}

/// One recorded object, as this link has it.
struct Source {
    /// Its input's position now.
    pos: usize,
    /// Its index in its archive now (`u32::MAX`: a plain object).
    member: u32,
    /// Its bytes, if they were read.
    data: Option<&'static [u8]>,
    /// Its name (`archive(member)` for a member), if known.
    name: Option<String>,
}

fn output_kind(n: u8) -> Option<OutputKind> {
    Some(match n {
        0 => OutputKind::StaticExe,
        1 => OutputKind::StaticPie,
        2 => OutputKind::DynExe,
        3 => OutputKind::DynPie,
        _ => return None,
    })
}

/// The archive at input position `pos`, parsed once (`cache`); one that cannot be read
/// is left to the whole update, which says why.
fn archive_at<'a>(
    specs: &[FileSpec],
    pos: usize,
    cache: &'a mut FxHashMap<usize, crate::input::Archive>,
) -> Result<&'a crate::input::Archive> {
    match cache.entry(pos) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let path = &specs[pos].path;
            let data = crate::input::map_file(path)?;
            let Ok(archive) = crate::input::Archive::parse(path, data) else {
                return fallback(format!("{} cannot be read", path.display()));
            };
            Ok(e.insert(archive))
        }
    }
}

/// The objects of the recorded link as they are now, and which changed.
fn find_objects(
    specs: &[FileSpec],
    inputs: &Inputs,
    matched: &InputMatch,
    state: &State,
) -> Result<(Vec<Source>, Vec<usize>)> {
    let changed_inputs: FxHashSet<usize> = matched.changed.iter().copied().collect();
    let mut old_of_new = vec![u32::MAX; specs.len()];
    for (old, &new) in matched.new_of_old.iter().enumerate() {
        if let Some(slot) = old_of_new.get_mut(new as usize) {
            *slot = old as u32;
        }
    }
    // Changed archives: their symbol index must be as recorded; members are found by key.
    let mut archives: FxHashMap<usize, (crate::input::Archive, FxHashMap<u64, Vec<u32>>)> =
        FxHashMap::default();
    for &pos in &matched.changed {
        if inputs.objects[pos] {
            continue;
        }
        let spec = &specs[pos];
        let data = crate::input::map_file(&spec.path)?;
        if !(data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n")) {
            return fallback(format!("{} changed", spec.path.display()));
        }
        let Ok(archive) = crate::input::Archive::parse(&spec.path, data) else {
            return fallback(format!("{} cannot be read", spec.path.display()));
        };
        let old = old_of_new[pos] as usize;
        if state.inputs.get(old).map(|r| r.armap) != Some(incremental::armap_hash(&archive)) {
            return fallback(format!(
                "the symbol index of {} changed",
                spec.path.display()
            ));
        }
        let mut by_key: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        for (i, m) in archive.members.iter().enumerate().rev() {
            by_key
                .entry(crate::state::member_name_key(m.name))
                .or_default()
                .push(i as u32);
        }
        archives.insert(pos, (archive, by_key));
    }
    let mut sources = Vec::with_capacity(state.objects.len());
    let mut candidates = Vec::new();
    let mut renamed: FxHashMap<usize, crate::input::Archive> = FxHashMap::default();
    for (f, r) in state.objects.iter().enumerate() {
        let Some(&pos) = matched.new_of_old.get(r.input as usize) else {
            return fallback("an input is gone");
        };
        let pos = pos as usize;
        if pos >= specs.len() {
            return fallback("an input is gone");
        }
        let mut source = Source {
            pos,
            member: r.member,
            data: None,
            name: None,
        };
        if changed_inputs.contains(&pos) {
            if r.member == u32::MAX {
                source.data = Some(crate::input::map_file(&specs[pos].path)?);
                source.name = Some(specs[pos].path.display().to_string());
            } else {
                let Some((archive, by_key)) = archives.get_mut(&pos) else {
                    return fallback("an archive member's input is not an archive");
                };
                let Some(m) = by_key.get_mut(&r.key).and_then(|v| v.pop()) else {
                    return fallback(format!("a member of {} is gone", specs[pos].path.display()));
                };
                source.member = m;
                source.data = Some(archive.members[m as usize].data);
                source.name = Some(archive.member_name(m as usize));
            }
            candidates.push(f);
        } else if r.member == u32::MAX {
            source.name = Some(specs[pos].path.display().to_string());
        } else {
            // A member of an unchanged archive keeps its name, unless the archive is
            // named otherwise now (its members' names in .symtab say where they are from).
            let old = old_of_new[pos] as usize;
            let path = specs[pos].path.display().to_string();
            if state.inputs.get(old).is_none_or(|i| i.path != path) {
                let renamed = archive_at(specs, pos, &mut renamed)?;
                if (r.member as usize) >= renamed.members.len() {
                    return fallback(format!("a member of {path} is gone"));
                }
                source.name = Some(renamed.member_name(r.member as usize));
            }
        }
        sources.push(source);
    }
    // Which candidates changed: a plain object's input hash is known; members are hashed.
    let changed: Vec<usize> = candidates
        .par_iter()
        .filter(|&&f| {
            let r = &state.objects[f];
            let s = &sources[f];
            let hash = if r.member == u32::MAX {
                inputs.hashes[s.pos]
            } else {
                *blake3::hash(s.data.unwrap_or(&[])).as_bytes()
            };
            hash != r.hash
        })
        .copied()
        .collect();
    Ok((sources, changed))
}

/// Maps and parses an unchanged object (a referrer of a moved symbol).
fn load_unchanged(
    specs: &[FileSpec],
    source: &mut Source,
    archives: &mut FxHashMap<usize, crate::input::Archive>,
) -> Result<()> {
    let spec = &specs[source.pos];
    if source.member == u32::MAX {
        source.data = Some(crate::input::map_file(&spec.path)?);
        return Ok(());
    }
    let archive = archive_at(specs, source.pos, archives)?;
    let Some(member) = archive.members.get(source.member as usize) else {
        return fallback("an archive member is gone");
    };
    source.data = Some(member.data);
    source.name = Some(archive.member_name(source.member as usize));
    Ok(())
}

/// An active object (parsed, laid out): its recorded id, and what layout needs of it.
struct Active {
    file: usize,
    object: LoadedObject,
    content: Vec<bool>,
    eh: Vec<(u32, Vec<Record>)>,
}

/// The first object (in load order) holding each COMDAT group that objects `files` have.
fn first_holders(state: &State, files: &[usize]) -> FxHashMap<u64, usize> {
    let groups: FxHashSet<u64> = files
        .iter()
        .flat_map(|&f| state.objects[f].groups.iter().copied())
        .collect();
    let mut first = FxHashMap::default();
    for (f, r) in state.objects.iter().enumerate() {
        for g in r.groups.iter().filter(|g| groups.contains(g)) {
            first.entry(*g).or_insert(f);
        }
    }
    first
}

/// Whether an ELF file's PT_GNU_STACK has PF_X.
fn stack_is_executable(elf: &[u8]) -> bool {
    let word = |at: usize, n: usize| -> Option<u64> {
        let bytes = elf.get(at..at + n)?;
        Some(bytes.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b)))
    };
    let (Some(phoff), Some(phnum)) = (word(0x20, 8), word(0x38, 2)) else {
        return false;
    };
    (0..phnum as usize).any(|i| {
        let at = phoff as usize + 56 * i;
        word(at, 4) == Some(u64::from(elf::PT_GNU_STACK))
            && word(at + 4, 4).is_some_and(|flags| flags & u64::from(elf::PF_X) != 0)
    })
}

/// Parses an object and marks the sections of COMDAT groups an earlier object holds.
fn parse_object(
    source: &Source,
    file: usize,
    first_holder: &FxHashMap<u64, usize>,
    inputs_decide_stack: bool,
) -> Result<LoadedObject> {
    let name = source.name.clone().unwrap_or_default();
    let Ok(obj) = ObjectFile::parse(source.data.unwrap_or(&[])) else {
        return fallback(format!("{name} cannot be read"));
    };
    // The stack's executability is decided once for the whole output (PT_GNU_STACK).
    if inputs_decide_stack && layout::wants_executable_stack(&obj).is_some() {
        return fallback(format!("{name} asks for an executable stack"));
    }
    if obj.versioned || obj.lto || !obj.decompressed.is_empty() {
        return fallback(format!(
            "{name} has versioned symbols, LTO code or compressed sections"
        ));
    }
    let mut comdat_discarded = vec![false; obj.shdrs.len()];
    for (signature, members) in &obj.comdat_groups {
        let holder = first_holder.get(&name_hash(signature)).copied();
        if holder.is_some_and(|h| h < file) {
            for &m in members {
                comdat_discarded[m as usize] = true;
            }
        }
    }
    Ok(LoadedObject {
        name,
        obj,
        global_ids: Vec::new(),
        comdat_discarded,
        origin: (source.pos as u32, source.member),
        data: source.data.unwrap_or(&[]),
    })
}

/// An object's placements by section, its slots, its members (output section, section),
/// and what they make of each output section's header (see `state::SlotRecord`).
type Placed = (
    Vec<Placement>,
    Vec<Slot>,
    Vec<(usize, u32)>,
    Vec<(usize, (u64, u64, bool))>,
);

/// Places an active object's sections in its recorded slots, as `layout::compute` does:
/// in section order, each aligned, `.eh_frame` records packed. Returns the placements and
/// the slots (file ids are the lean ones).
fn place(
    lean: FileId,
    active: &Active,
    state: &State,
    out_by_name: &FxHashMap<&str, usize>,
    eh_records: &FxHashMap<(FileId, u32), Vec<Record>>,
) -> Result<Placed> {
    let object = &active.object;
    let obj = &object.obj;
    let name = &object.name;
    let mut placements = vec![
        Placement {
            out: NOT_PLACED,
            offset: 0,
            mapping: Mapping::Plain,
        };
        obj.shdrs.len()
    ];
    // Members by output section, in section order.
    let mut by_out: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut priorities: Vec<(&str, u64)> = Vec::new();
    for (sec, _) in active.content.iter().enumerate().filter(|(_, &c)| c) {
        let shdr = &obj.shdrs[sec];
        let flags = shdr.sh_flags.get(LE);
        if obj.section_names[sec] == b".comment" && flags & u64::from(elf::SHF_ALLOC) == 0 {
            continue;
        }
        let out_name = crate::context::output_name(object, sec);
        let Some(&out) = out_by_name.get(out_name) else {
            return fallback(format!(
                "{name} has a section for a new output section {out_name}"
            ));
        };
        let rec = &state.sections[out];
        // (Init and fini arrays are sorted by priority across files: an object's members
        // stay together in their order only if they all have one priority.)
        if matches!(out_name, ".init_array" | ".fini_array" | ".preinit_array") {
            let priority = layout::init_priority(&String::from_utf8_lossy(obj.section_names[sec]));
            if priorities
                .iter()
                .any(|&(o, p)| o == out_name && p != priority)
            {
                return fallback(format!(
                    "{name} has {out_name} sections of several priorities"
                ));
            }
            priorities.push((out_name, priority));
        }
        if rec.synthetic {
            return fallback(format!("{name} has a section in {out_name}"));
        }
        match by_out.iter_mut().find(|(o, _)| *o == out) {
            Some((_, secs)) => secs.push(sec as u32),
            None => by_out.push((out, vec![sec as u32])),
        }
    }
    let mut slots = Vec::with_capacity(by_out.len());
    let mut headers = Vec::with_capacity(by_out.len());
    for (out, secs) in &by_out {
        let rec = &state.sections[*out];
        // The output section's header (alignment, flags, type) must stay as it is: what the
        // other files' slots and this object's sections make of it, now and then.
        let mut new = (1, 0, false);
        for &sec in secs {
            incremental::add_to_header(&mut new, &obj.shdrs[sec as usize]);
        }
        let combine =
            |a: (u64, u64, bool), b: (u64, u64, bool)| (a.0.max(b.0), a.1 | b.1, a.2 | b.2);
        let (mut others, mut old) = ((1, 0, false), (1, 0, false));
        for slot in &rec.slots {
            let h = (slot.align, slot.flags, slot.progbits);
            if slot.file as usize == active.file {
                old = combine(old, h);
            } else {
                others = combine(others, h);
            }
        }
        if combine(others, new) != combine(others, old) {
            return fallback(format!("{name} changes the header of {}", rec.name));
        }
        headers.push((*out, new));
        let mut mine = rec.slots.iter().filter(|s| s.file as usize == active.file);
        let (Some(slot), None) = (mine.next(), mine.next()) else {
            return fallback(format!(
                "{name} has no slot, or more than one, in {}",
                rec.name
            ));
        };
        let is_eh_frame = rec.name == ".eh_frame";
        let mut size = slot.start;
        for &sec in secs {
            let eh = if is_eh_frame {
                eh_records.get(&(lean, sec))
            } else {
                None
            };
            let (at, mapping, _) = layout::pack_member(obj, sec, eh, &mut size);
            placements[sec as usize] = Placement {
                out: *out as u32,
                offset: at,
                mapping,
            };
        }
        let used = size - slot.start;
        if used > slot.capacity {
            return fallback(format!(
                "{name} outgrew its slot in {} ({used} bytes, room for {})",
                rec.name, slot.capacity
            ));
        }
        slots.push(Slot {
            out: *out as u32,
            file: lean,
            start: slot.start,
            used,
            capacity: slot.capacity,
        });
    }
    let recorded_slots = state
        .sections
        .iter()
        .map(|s| {
            s.slots
                .iter()
                .filter(|s| s.file as usize == active.file)
                .count()
        })
        .sum::<usize>();
    if recorded_slots != slots.len() {
        return fallback(format!("{name} left one of its slots empty"));
    }
    let members = by_out
        .into_iter()
        .flat_map(|(out, secs)| secs.into_iter().map(move |s| (out, s)))
        .collect();
    Ok((placements, slots, members, headers))
}

/// A scan's requests and references in a form that does not depend on symbol indexes:
/// global symbols by name hash, local ones by index.
type NeedsKeys = (Vec<(u8, SymKey, u8)>, Vec<SymKey>, Vec<SymKey>, u64, u64);

/// A symbol as [`needs_keys`] names it: (0, name hash) for a global, (1, index) for a
/// local, (2, 0) for the module's own TLS block.
type SymKey = (u8, u64);

fn needs_keys(record: &ScanRecord, key: impl Fn(u32) -> SymKey) -> NeedsKeys {
    let mut requests: Vec<(u8, SymKey, u8)> = record
        .requests
        .iter()
        .map(|&(kind, sym, arg)| (kind, key(sym), arg))
        .collect();
    requests.sort_unstable();
    let mut shared: Vec<SymKey> = record.used_shared.iter().map(|&s| key(s)).collect();
    shared.sort_unstable();
    let mut dynsym: Vec<SymKey> = record.dynsym_refs.iter().map(|&s| key(s)).collect();
    dynsym.sort_unstable();
    (
        requests,
        shared,
        dynsym,
        record.n_relative,
        record.n_symbolic,
    )
}

/// The key [`needs_keys`] gives a symbol index of an object whose globals start at
/// `first_global`, with `global` the name hash of a global.
fn symbol_key(sym: u32, first_global: u32, global: impl Fn(usize) -> Option<u64>) -> SymKey {
    if sym == u32::MAX {
        return (2, 0);
    }
    match sym.checked_sub(first_global) {
        Some(i) => global(i as usize).map_or((3, u64::from(sym)), |key| (0, key)),
        None => (1, u64::from(sym)),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// A changed object's references with the default visibility (those with another are part
/// of its interface) may come and go, as long as resolution stays as it was: a new one
/// must name a symbol that is defined (by an object, the linker or a shared library); a
/// symbol that loses one must stay in the link without it: defined by a plain object or a
/// shared library, or, if an archive member or the linker defines it, still referred to
/// by an unchanged object (loaded before that member).
fn check_references(
    state: &State,
    actives: &[Active],
    by_key: &FxHashMap<u64, u32>,
    changed: &FxHashSet<usize>,
) -> Result<()> {
    let globals = &state.globals;
    let mut dropped: FxHashMap<u32, usize> = FxHashMap::default();
    for active in actives {
        let obj = &active.object.obj;
        let mut defined = FxHashSet::default();
        let mut now = FxHashSet::default();
        for (i, &(name, _)) in obj.global_names.iter().enumerate() {
            let key = name_hash(name);
            if obj.symbol_shndx(obj.first_global + i) != 0 {
                defined.insert(key);
                continue;
            }
            let Some(&t) = by_key.get(&key) else {
                return fallback(format!(
                    "{} refers to {}, which the link did not have",
                    active.object.name,
                    crate::symbols::demangle(name)
                ));
            };
            now.insert(t);
        }
        let then: FxHashSet<u32> = state.objects[active.file]
            .globals
            .iter()
            .copied()
            .filter(|&t| !defined.contains(&globals[t as usize].key))
            .collect();
        for &t in now.difference(&then) {
            if !matches!(
                globals[t as usize].kind,
                state::GLOBAL_DEFINED
                    | state::GLOBAL_ABS
                    | state::GLOBAL_SYNTHETIC
                    | state::GLOBAL_SHARED
            ) {
                return fallback(format!(
                    "{} refers to a symbol that is not defined",
                    active.object.name
                ));
            }
        }
        for &t in then.difference(&now) {
            let g = &globals[t as usize];
            match g.kind {
                state::GLOBAL_SHARED => {}
                state::GLOBAL_DEFINED | state::GLOBAL_ABS
                    if state.objects.get(g.file as usize).map(|o| o.member) == Some(u32::MAX) => {}
                state::GLOBAL_DEFINED | state::GLOBAL_ABS | state::GLOBAL_SYNTHETIC => {
                    let before = if g.kind == state::GLOBAL_SYNTHETIC {
                        usize::MAX
                    } else {
                        g.file as usize
                    };
                    dropped.insert(t, before);
                }
                _ => {
                    return fallback(format!(
                        "{} no longer refers to an undefined or common symbol",
                        active.object.name
                    ))
                }
            }
        }
    }
    if dropped.is_empty() {
        return Ok(());
    }
    // Each such symbol must still be referred to by an unchanged object loaded before its
    // definition.
    let mut still: FxHashSet<u32> = FxHashSet::default();
    for (f, r) in state.objects.iter().enumerate() {
        if changed.contains(&f) {
            continue;
        }
        for t in &r.globals {
            if dropped.get(t).is_some_and(|&before| f < before) {
                still.insert(*t);
            }
        }
    }
    if still.len() != dropped.len() {
        return fallback("a symbol lost the reference that brought its definition into the link");
    }
    Ok(())
}

/// In an incremental link `.symtab` lists the global symbols objects define by where they
/// are defined (file, then symbol index: `write::symtab`'s `symtab_order`), and the lean
/// update copies those entries as they were: each changed object must define its symbols
/// in the order it did. (A compiler may order an object's symbols otherwise after an edit
/// of a function body.)
fn check_symbol_order(
    state: &State,
    actives: &[Active],
    by_key: &FxHashMap<u64, u32>,
) -> Result<()> {
    for active in actives {
        let f = active.file;
        let defined_here = |t: &u32| state.globals[*t as usize].file as usize == f;
        let then = state.objects[f]
            .globals
            .iter()
            .copied()
            .filter(defined_here);
        let names = &active.object.obj.global_names;
        let now = (names.iter())
            .filter_map(|&(name, _)| by_key.get(&name_hash(name)).copied())
            .filter(defined_here);
        if !then.eq(now) {
            return fallback(format!(
                "{}: its global symbols are defined in another order",
                active.object.name
            ));
        }
    }
    Ok(())
}

/// Whether the changed objects' scans, which differ from their recorded ones
/// (`differing`: old and new), still ask the output for the same things: the same counts
/// of dynamic relocations, and every request, shared symbol or dynamic symbol reference
/// one of them gained or lost is made by an unchanged object too. Then the GOT, the PLT and
/// the dynamic symbols stay as they are.
fn same_needs(
    state: &State,
    differing: &[(NeedsKeys, NeedsKeys)],
    changed: &FxHashSet<usize>,
) -> Result<()> {
    if differing.is_empty() {
        return Ok(());
    }
    let counts = |k: &NeedsKeys| (k.3, k.4);
    let (mut then, mut now) = ((0, 0), (0, 0));
    for (old, new) in differing {
        then = (then.0 + counts(old).0, then.1 + counts(old).1);
        now = (now.0 + counts(new).0, now.1 + counts(new).1);
    }
    if then != now {
        return fallback("the number of dynamic relocations would change");
    }
    // What the changed objects asked for, then and now, as (what, key) pairs.
    type Asked = FxHashSet<(u8, u8, SymKey, u8)>;
    let asked = |k: &NeedsKeys, into: &mut Asked| {
        into.extend(k.0.iter().map(|&(kind, key, arg)| (0, kind, key, arg)));
        into.extend(k.1.iter().map(|&key| (1, 0, key, 0)));
        into.extend(k.2.iter().map(|&key| (2, 0, key, 0)));
    };
    let (mut then, mut now) = (Asked::default(), Asked::default());
    for (old, new) in differing {
        asked(old, &mut then);
        asked(new, &mut now);
    }
    let mut wanted: Asked = then.symmetric_difference(&now).copied().collect();
    if wanted.iter().any(|&(_, _, key, _)| key.0 != 0) {
        return fallback("a changed object's requests for local symbols changed");
    }
    // Found among the unchanged objects' recorded requests?
    for (f, r) in state.objects.iter().enumerate() {
        if wanted.is_empty() {
            break;
        }
        if changed.contains(&f) {
            continue;
        }
        let key = |sym: u32| {
            symbol_key(sym, r.first_global, |i| {
                r.globals.get(i).map(|&t| state.globals[t as usize].key)
            })
        };
        let scan = &r.scan;
        for &(kind, sym, arg) in &scan.requests {
            wanted.remove(&(0, kind, key(sym), arg));
        }
        for &sym in &scan.used_shared {
            wanted.remove(&(1, 0, key(sym), 0));
        }
        for &sym in &scan.dynsym_refs {
            wanted.remove(&(2, 0, key(sym), 0));
        }
    }
    if !wanted.is_empty() {
        return fallback("a changed object asks for other GOT, PLT or dynamic symbol entries");
    }
    Ok(())
}

/// An object's part of the new `.symtab`: its old entries under the file name given (or the
/// old one), or new ones.
enum Part<'a> {
    Old(Option<&'a [u8]>),
    New(write::Piece),
}

/// The new `.symtab` and `.strtab`, appended to `out`, from the old ones
/// (`old`: entries, names, number of locals), each object's range in them (`records`,
/// `state::ObjectRecord::symtab`), the objects' parts, and new bytes 6..24 (section index,
/// value, size) for some of the global symbols' entries (by hidden or not, and index).
/// Returns the tables' sizes, the new number of locals and each object's new range; `None`
/// if the old tables are not as the records say.
#[allow(clippy::type_complexity)]
fn splice_symtab(
    (old_symtab, old_strtab, old_n_locals): (&[u8], &[u8], usize),
    records: &[[u32; 4]],
    parts: &[Part],
    patches: &FxHashMap<(bool, usize), [u8; 18]>,
    out: &mut Vec<u8>,
) -> Option<(u64, u64, usize, Vec<[u32; 4]>)> {
    let name_at = |e: &[u8]| u32::from_le_bytes(e[0..4].try_into().unwrap()) as usize;
    // Each object's new range, and for an old part its old file name's length.
    let mut ranges = Vec::with_capacity(records.len());
    let mut file_name_len = Vec::with_capacity(records.len());
    let (mut entries, mut names) = (1usize, 1usize);
    let (mut hidden_start, mut names_start) = (1usize, 1usize);
    for (record, part) in records.iter().zip(parts) {
        let [first, count, start, len] = record.map(|v| v as usize);
        let (count, len, old_name) = match part {
            Part::New(piece) => (piece.locals.len(), piece.strtab.len() - 1, 0),
            Part::Old(_) if count == 0 => (0, 0, 0),
            Part::Old(name) => {
                hidden_start = hidden_start.max(first + count);
                names_start = names_start.max(start + len);
                let old = old_strtab.get(start..start.checked_add(len)?)?;
                let old_name = memchr::memchr(0, old)?;
                let entry = old_symtab.get(first * 24..first * 24 + 24)?;
                if name_at(entry) != start || entry[4] & 0xf != elf::STT_FILE {
                    return None;
                }
                let new_len = name.map_or(len, |n| len - old_name + n.len());
                (count, new_len, old_name)
            }
        };
        if let Part::New(_) = part {
            let [first, count, start, len] = record.map(|v| v as usize);
            hidden_start = hidden_start.max(first + count);
            names_start = names_start.max(start + len);
        }
        ranges.push([entries as u32, count as u32, names as u32, len as u32]);
        file_name_len.push(old_name);
        entries += count;
        names += len;
    }
    let hidden = old_symtab.get(hidden_start * 24..old_n_locals * 24)?;
    let visible = old_symtab.get(old_n_locals * 24..)?;
    let global_names = old_strtab.get(names_start..)?;
    let n_locals = entries + hidden.len() / 24;
    let symtab_len = n_locals * 24 + visible.len();
    let strtab_len = names + global_names.len();
    let at = out.len();
    // Zeroed pages straight from the kernel (a large calloc), not a 4 MiB memset; room for
    // the section headers that follow.
    let mut fresh = vec![0u8; at + symtab_len + strtab_len + (64 << 10)];
    fresh.truncate(at);
    fresh.copy_from_slice(out);
    fresh.resize(at + symtab_len + strtab_len, 0);
    *out = fresh;
    let (symtab, strtab) = out[at..].split_at_mut(symtab_len);
    let (mut object_entries, global_entries) = symtab[24..].split_at_mut((entries - 1) * 24);
    let (mut object_names, new_global_names) = strtab[1..].split_at_mut(names - 1);
    // One job per object: (part, old range, old file name length, new range, entries, names).
    let mut jobs = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let [_, count, _, len] = ranges[i].map(|v| v as usize);
        let (e, rest) = std::mem::take(&mut object_entries).split_at_mut(count * 24);
        object_entries = rest;
        let (n, rest) = std::mem::take(&mut object_names).split_at_mut(len);
        object_names = rest;
        jobs.push((part, records[i], file_name_len[i], ranges[i], e, n));
    }
    let ok = jobs
        .into_par_iter()
        .with_min_len(16)
        .map(|(part, old, old_name, new, e, n)| -> Option<()> {
            let new_start = new[2] as usize;
            match part {
                Part::New(piece) => {
                    n.copy_from_slice(&piece.strtab[1..]);
                    for (src, dst) in piece.locals.iter().zip(e.chunks_exact_mut(24)) {
                        dst.copy_from_slice(src);
                        let name = name_at(src);
                        if name != 0 {
                            dst[0..4]
                                .copy_from_slice(&((name + new_start - 1) as u32).to_le_bytes());
                        }
                    }
                }
                Part::Old(_) if new[1] == 0 => {}
                Part::Old(name) => {
                    let [first, count, start, len] = old.map(|v| v as usize);
                    let old_names = &old_strtab[start..start + len];
                    let file_name = name.unwrap_or(&old_names[..old_name]);
                    n[..file_name.len()].copy_from_slice(file_name);
                    n[file_name.len()..].copy_from_slice(&old_names[old_name..]);
                    let (old_rest, new_rest) = (start + old_name, new_start + file_name.len());
                    let src = &old_symtab[first * 24..(first + count) * 24];
                    e.copy_from_slice(src);
                    e[0..4].copy_from_slice(&(new_start as u32).to_le_bytes());
                    for dst in e.chunks_exact_mut(24).skip(1) {
                        let name = name_at(dst);
                        if name != 0 {
                            let at = name.checked_sub(old_rest).filter(|&a| a < len - old_name)?;
                            dst[0..4].copy_from_slice(&((new_rest + at) as u32).to_le_bytes());
                        }
                    }
                }
            }
            Some(())
        })
        .all(|r| r.is_some());
    if !ok {
        return None;
    }
    // The global symbols' part: copied, names rebased, the changed objects' entries patched.
    new_global_names.copy_from_slice(global_names);
    let (new_hidden, new_visible) = global_entries.split_at_mut(hidden.len());
    let rebase_ok = [(true, hidden, new_hidden), (false, visible, new_visible)]
        .into_par_iter()
        .map(|(is_hidden, src, dst)| {
            dst.copy_from_slice(src);
            for (i, e) in dst.chunks_exact_mut(24).enumerate() {
                let name = name_at(e);
                if name != 0 {
                    let Some(at) = name.checked_sub(names_start) else {
                        return false;
                    };
                    e[0..4].copy_from_slice(&((names + at) as u32).to_le_bytes());
                }
                if let Some(p) = patches.get(&(is_hidden, i)) {
                    e[6..24].copy_from_slice(p);
                }
            }
            true
        })
        .all(|ok| ok);
    rebase_ok.then_some((symtab_len as u64, strtab_len as u64, n_locals, ranges))
}

/// [`splice_symtab`] where every object's part keeps its number of entries and its names'
/// length, and every unchanged object its file name (an edit of function bodies mostly
/// leaves them so): the new tables are the old ones with the changed objects' parts and the
/// patched global entries written over them, into `symtab` and `strtab` (the old tables'
/// places in the new output). Returns the ranges written, as (in `.strtab`, offset,
/// length); `None`, with nothing written, if a part's size or a file name changed.
fn patch_symtab_in_place(
    (old_symtab, old_strtab, old_n_locals): (&[u8], &[u8], usize),
    records: &[[u32; 4]],
    parts: &[Part],
    patches: &FxHashMap<(bool, usize), [u8; 18]>,
    (symtab, strtab): (&mut [u8], &mut [u8]),
) -> Option<Vec<(bool, usize, usize)>> {
    let mut hidden_start = 1usize;
    for (record, part) in records.iter().zip(parts) {
        let [first, count, start, len] = record.map(|v| v as usize);
        // (Where the hidden globals start, as `splice_symtab` finds it.)
        if count > 0 || matches!(part, Part::New(_)) {
            hidden_start = hidden_start.max(first + count);
        }
        let same_size = match part {
            Part::New(piece) => {
                piece.locals.len() == count && piece.strtab.len().saturating_sub(1) == len
            }
            _ if count == 0 => true,
            Part::Old(None) => true,
            // (A file name is rewritten where it keeps its length: rustc's objects are
            // named anew in every build, with a suffix of the same length.)
            Part::Old(Some(name)) => {
                let old = old_strtab.get(start..start.checked_add(len)?)?;
                old.get(name.len()) == Some(&0) && !old[..name.len()].contains(&0)
            }
        };
        if !same_size {
            return None;
        }
    }
    let n_entries = old_symtab.len() / 24;
    let in_range = |&(hidden, i): &(bool, usize)| match hidden {
        true => hidden_start + i < old_n_locals,
        false => old_n_locals + i < n_entries,
    };
    if old_symtab.len() != symtab.len()
        || old_strtab.len() != strtab.len()
        || !patches.keys().all(in_range)
    {
        return None;
    }
    let mut written = Vec::new();
    for (record, part) in records.iter().zip(parts) {
        let [first, count, start, len] = record.map(|v| v as usize);
        let piece = match part {
            _ if count == 0 => continue,
            Part::New(piece) => piece,
            Part::Old(None) => continue,
            Part::Old(Some(name)) => {
                if old_strtab[start..start + name.len()] != **name {
                    strtab[start..start + name.len()].copy_from_slice(name);
                    written.push((true, start, name.len()));
                }
                continue;
            }
        };
        let entries = &mut symtab[first * 24..(first + count) * 24];
        for (src, dst) in piece.locals.iter().zip(entries.chunks_exact_mut(24)) {
            dst.copy_from_slice(src);
            let name = u32::from_le_bytes(src[0..4].try_into().unwrap()) as usize;
            if name != 0 {
                dst[0..4].copy_from_slice(&((name + start - 1) as u32).to_le_bytes());
            }
        }
        strtab[start..start + len].copy_from_slice(&piece.strtab[1..]);
        written.push((false, first * 24, count * 24));
        written.push((true, start, len));
    }
    for (&(hidden, i), bytes) in patches {
        let entry = if hidden {
            hidden_start + i
        } else {
            old_n_locals + i
        };
        let at = entry * 24;
        symtab[at..at + 24].copy_from_slice(&old_symtab[at..at + 24]);
        symtab[at + 6..at + 24].copy_from_slice(bytes);
        written.push((false, at, 24));
    }
    Some(written)
}

/// Two sequences sorted by `key`, merged; on a tie, `new`'s item comes first (as a stable
/// sort of the whole update's list, new entries first, would order them).
fn merge_sorted<T, K: Ord>(
    old: impl Iterator<Item = T>,
    new: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
) -> impl Iterator<Item = T> {
    let (mut old, mut new) = (old.peekable(), new.peekable());
    std::iter::from_fn(move || match (old.peek(), new.peek()) {
        (Some(o), Some(n)) if key(n) <= key(o) => new.next(),
        (Some(_), _) => old.next(),
        (None, _) => new.next(),
    })
}

/// A slot's new (alignment, flags, whether it has file contents).
type SlotHeader = (u64, u64, bool);
/// (initial location, FDE address) pairs for `.eh_frame_hdr`.
type Fdes = Vec<(u64, u64)>;
/// (address, length) ranges.
type AddrRanges = Vec<(u64, u64)>;

/// The recorded link as the update reads it.
struct Recorded<'a> {
    state: &'a State,
    /// The state's global symbols by name key.
    by_key: FxHashMap<u64, u32>,
    /// Output sections by name.
    out_by_name: FxHashMap<&'a str, usize>,
    /// The recorded objects that changed.
    changed: FxHashSet<usize>,
}

impl<'a> Recorded<'a> {
    fn new(state: &'a State, changed: &[usize]) -> Recorded<'a> {
        Recorded {
            state,
            by_key: (state.globals.iter().enumerate())
                .map(|(t, g)| (g.key, t as u32))
                .collect(),
            out_by_name: (state.sections.iter().enumerate())
                .map(|(i, s)| (s.name.as_str(), i))
                .collect(),
            changed: changed.iter().copied().collect(),
        }
    }

    fn global(&self, t: u32) -> &'a state::GlobalRecord {
        &self.state.globals[t as usize]
    }

    /// Whether state global `t` is defined by a changed object.
    fn defined_by_changed(&self, t: u32) -> bool {
        self.changed.contains(&(self.global(t).file as usize))
    }
}

/// The resolution of the active objects (the changed ones first, then the referrers of
/// moved symbols), made from the state.
struct LeanResolution {
    res: Resolution,
    /// Per lean symbol id: its entry in the state's globals.
    table_of: Vec<u32>,
    lean_of_table: FxHashMap<u32, SymbolId>,
    /// Per lean file: its recorded object.
    files: Vec<usize>,
    /// Per recorded object that is active: its lean file.
    lean_file: FxHashMap<usize, u32>,
    /// The first `n_changed` lean files are the changed objects.
    n_changed: usize,
}

impl LeanResolution {
    fn is_changed(&self, file: FileId) -> bool {
        (file.0 as usize) < self.n_changed
    }

    /// The lean symbols with their state entries.
    fn table(&self) -> impl Iterator<Item = (SymbolId, u32)> + '_ {
        (self.table_of.iter().enumerate()).map(|(id, &t)| (SymbolId(id as u32), t))
    }
}

/// Whether the lean update can handle this link at all; the output's kind.
fn eligible(config: &Config, matched: &InputMatch, state: &State) -> Result<OutputKind> {
    if std::env::var("WELD_NO_LEAN").is_ok_and(|v| v == "1") {
        return fallback("WELD_NO_LEAN=1");
    }
    let Some(kind) = output_kind(state.layout.kind) else {
        return fallback("the output is a shared library");
    };
    if !config.wrap.is_empty() || !config.defsym.is_empty() || config.strip_all {
        return fallback("--wrap, --defsym or --strip-all");
    }
    if matches!(
        config.build_id,
        Some(crate::args::BuildIdArg::Hash(crate::args::BuildId::Uuid))
    ) {
        return fallback("--build-id=uuid");
    }
    if !matched.added.is_empty() || matched.new_of_old.contains(&u32::MAX) {
        return fallback("inputs were added or removed");
    }
    // The whole update gives an empty slot's range to the slot before it (or, where units
    // are walked, moves the next one down): the slot table would change.
    for rec in &state.sections {
        let empty = |s: &&state::SlotRecord| s.align == 0;
        for slot in rec.slots.iter().filter(empty) {
            if layout::walked_by_units(&rec.name) || rec.slots.iter().any(|o| o.start < slot.start)
            {
                return fallback(format!("{} has an empty slot", rec.name));
            }
        }
    }
    Ok(kind)
}

/// Parses the changed objects; their interfaces must be as recorded.
fn parse_changed(
    config: &Config,
    sources: &[Source],
    changed: &[usize],
    state: &State,
) -> Result<Vec<Active>> {
    let first_holder = first_holders(state, changed);
    let parsed: Vec<Result<LoadedObject>> = changed
        .par_iter()
        .map(|&f| {
            let object = parse_object(&sources[f], f, &first_holder, config.z.execstack.is_none())?;
            let r = &state.objects[f];
            if incremental::interface_hash(&object) != r.interface {
                return fallback(format!(
                    "{}: its global symbols, COMDAT groups, .comment or .note.gnu.property changed",
                    object.name
                ));
            }
            if incremental::commons_hash(&object) != incremental::no_commons() {
                return fallback(format!("{} has common symbols", object.name));
            }
            Ok(object)
        })
        .collect();
    let mut actives: Vec<Active> = Vec::with_capacity(changed.len());
    for (&f, object) in changed.iter().zip(parsed) {
        let object = object?;
        let Ok((content, eh)) = layout::content_of(&object, config) else {
            return fallback(format!("{}: bad .eh_frame", object.name));
        };
        actives.push(Active {
            file: f,
            object,
            content,
            eh,
        });
    }
    Ok(actives)
}

/// The live FDEs of the changed objects; an FDE naming a global symbol falls back.
fn changed_fdes(actives: &mut [Active]) -> Result<FxHashMap<(FileId, u32), Vec<Record>>> {
    let mut eh_records: FxHashMap<(FileId, u32), Vec<Record>> = FxHashMap::default();
    for (lean, active) in actives.iter_mut().enumerate() {
        let obj = &active.object.obj;
        for (sec, mut records) in std::mem::take(&mut active.eh) {
            let relocs = obj.relocs[sec as usize];
            let foreign = std::cell::Cell::new(false);
            layout::keep_live_fdes(&mut records, relocs, |r| {
                let sym = r.r_sym(LE, false) as usize;
                if sym >= obj.first_global || sym >= obj.symbols.len() {
                    foreign.set(true);
                    return false;
                }
                let shndx = obj.symbol_shndx(sym) as usize;
                active.content.get(shndx).copied().unwrap_or(false)
            });
            if foreign.get() {
                return fallback(format!(
                    "{}: an FDE names a global symbol",
                    active.object.name
                ));
            }
            eh_records.insert((FileId(lean as u32), sec), records);
        }
    }
    Ok(eh_records)
}

/// The recorded layout, with no input placed yet.
fn lean_layout(
    state: &State,
    kind: OutputKind,
    eh_records: FxHashMap<(FileId, u32), Vec<Record>>,
) -> Layout {
    let sections: Vec<OutputSection> = state
        .sections
        .iter()
        .map(|s| OutputSection {
            name: s.name.clone(),
            sh_type: s.sh_type,
            sh_flags: s.sh_flags,
            align: s.align,
            entsize: 0,
            rank: 0,
            members: Vec::new(),
            size: s.size,
            addr: s.addr,
            offset: s.offset,
            synthetic: None,
        })
        .collect();
    let synthetic_index = SyntheticIndex::named(
        state
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.synthetic)
            .map(|(i, s)| (&*s.name, OutSecId(i as u32))),
    );
    let rec = state.layout;
    Layout {
        kind,
        synthetic_addrs: SyntheticAddrs {
            got: rec.got,
            got_plt: rec.got_plt,
            plt: rec.plt,
            iplt: rec.iplt,
            plt_header: rec.plt_header,
        },
        pie: kind.is_pic(),
        base: 0,
        entry: 0,
        sections,
        order: (0..state.sections.len() as u32).map(OutSecId).collect(),
        segments: Vec::new(),
        placements: Vec::new(),
        eh_records,
        needs: Default::default(),
        dynamic: Default::default(),
        dynamic_tags: Vec::new(),
        common_offsets: Default::default(),
        synthetic_values: Default::default(),
        tls_start: rec.tls_start,
        tls_memsz: rec.tls_memsz,
        tls_align: rec.tls_align,
        synthetic_index,
        build_id_size: rec.build_id_size,
        // (The lean update rewrites neither the fixed notes nor PLT entries: an
        // object's properties are part of its interface hash, and new PLT entries fall
        // back.)
        fixed_notes: Vec::new(),
        ibt_plt: rec.plt_header != layout::plt_header_size(false),
        comment: Vec::new(),
        file_size: rec.file_size,
        live: Vec::new(),
        merged: Vec::new(),
        merge_maps: Vec::new(),
        slots: Vec::new(),
        resized: Vec::new(),
        scans: Vec::new(),
        replayed_order: None,
        build_id_seed: None,
        script_data: Vec::new(),
        memory_regions: Vec::new(),
    }
}

/// Lays active object `lean` into its recorded slots: its placements and slots go to
/// `lay`, its input sections to `members` (by output section). Returns the new headers of
/// its sections, by output section.
fn lay_in(
    lay: &mut Layout,
    members: &mut [Vec<(FileId, u32)>],
    lean: FileId,
    active: &Active,
    rec: &Recorded,
) -> Result<Vec<(usize, SlotHeader)>> {
    let (p, s, m, h) = place(lean, active, rec.state, &rec.out_by_name, &lay.eh_records)?;
    lay.placements.push(p);
    lay.slots.extend(s);
    for (out, sec) in m {
        members[out].push((lean, sec));
    }
    Ok(h)
}

/// The state globals a changed object defines whose address moved, and each changed
/// object's (key, address) list of its global definitions now.
type Moved = (FxHashSet<u32>, Vec<Vec<(u64, u64)>>);

fn moved_symbols(lay: &Layout, actives: &[Active], rec: &Recorded) -> Result<Moved> {
    let mut moved: FxHashSet<u32> = FxHashSet::default();
    let mut new_symbols: Vec<Vec<(u64, u64)>> = Vec::with_capacity(actives.len());
    for (lean, active) in actives.iter().enumerate() {
        let now = incremental::defined_addresses(lay, FileId(lean as u32), &active.object);
        let then = &rec.state.objects[active.file].symbols;
        let differ = || {
            fallback(format!(
                "{} defines other global symbols",
                active.object.name
            ))
        };
        if now.len() != then.len() {
            return differ();
        }
        for (&(key, addr), &(old_key, old_addr)) in now.iter().zip(then) {
            if key != old_key {
                return differ();
            }
            if addr == old_addr {
                continue;
            }
            let Some(&t) = rec.by_key.get(&key) else {
                return fallback("a moved symbol is not in the state");
            };
            if rec.global(t).file as usize == active.file {
                moved.insert(t);
            }
        }
        new_symbols.push(now);
    }
    if moved
        .iter()
        .any(|&t| rec.global(t).st_type == elf::STT_GNU_IFUNC)
    {
        return fallback("an IFUNC moved");
    }
    Ok((moved, new_symbols))
}

/// The unchanged objects that refer to a moved symbol, loaded and parsed.
fn referrers(
    config: &Config,
    specs: &[FileSpec],
    sources: &mut [Source],
    moved: &FxHashSet<u32>,
    rec: &Recorded,
) -> Result<Vec<Active>> {
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    let state = rec.state;
    let referrers: Vec<usize> = state
        .objects
        .par_iter()
        .enumerate()
        .filter(|(f, r)| !rec.changed.contains(f) && r.globals.iter().any(|t| moved.contains(t)))
        .map(|(f, _)| f)
        .collect();
    let mut archives = FxHashMap::default();
    for &f in &referrers {
        load_unchanged(specs, &mut sources[f], &mut archives)?;
        let r = &state.objects[f];
        if r.scan
            .requests
            .iter()
            .any(|&(_, sym, _)| sym == u32::MAX || sym < r.first_global)
        {
            return fallback("a referrer of a moved symbol has GOT entries for local symbols");
        }
    }
    let first_holder = first_holders(state, &referrers);
    referrers
        .par_iter()
        .map(|&f| {
            let object = parse_object(&sources[f], f, &first_holder, config.z.execstack.is_none())?;
            let Ok((content, eh)) = layout::content_of(&object, config) else {
                return fallback(format!("{}: bad .eh_frame", object.name));
            };
            Ok(Active {
                file: f,
                object,
                content,
                eh,
            })
        })
        .collect()
}

/// Lays the referrers in after the changed objects (their FDEs that name a global symbol
/// are dropped: they stay as the old output has them).
fn lay_in_referrers(
    lay: &mut Layout,
    members: &mut [Vec<(FileId, u32)>],
    actives: &mut Vec<Active>,
    referrers: Vec<Active>,
    rec: &Recorded,
) -> Result<()> {
    for mut active in referrers {
        let lean = FileId(actives.len() as u32);
        let obj = &active.object.obj;
        for (sec, mut records) in std::mem::take(&mut active.eh) {
            let relocs = obj.relocs[sec as usize];
            let content = &active.content;
            layout::keep_live_fdes(&mut records, relocs, |r| {
                let sym = r.r_sym(LE, false) as usize;
                sym < obj.first_global
                    && sym < obj.symbols.len()
                    && content
                        .get(obj.symbol_shndx(sym) as usize)
                        .copied()
                        .unwrap_or(false)
            });
            lay.eh_records.insert((lean, sec), records);
        }
        lay_in(lay, members, lean, &active, rec)?;
        actives.push(active);
    }
    Ok(())
}

/// The output sections' members: the active objects' sections laid in.
fn set_members(lay: &mut Layout, members: Vec<Vec<(FileId, u32)>>) {
    for (os, m) in lay.sections.iter_mut().zip(members) {
        os.members = m
            .into_iter()
            .map(|(file, sec)| layout::Member::Input { file, sec })
            .collect();
    }
}

/// Interns the active objects' global symbols, each tied to its state entry.
fn intern_globals(
    actives: &mut [Active],
    n_changed: usize,
    rec: &Recorded,
) -> Result<(SymbolDb, Vec<u32>, FxHashMap<u32, SymbolId>)> {
    let mut symbols = SymbolDb::default();
    let mut table_of: Vec<u32> = Vec::new(); // per lean symbol id: its state entry
    let mut lean_of_table: FxHashMap<u32, SymbolId> = FxHashMap::default();
    for (lean, active) in actives.iter_mut().enumerate() {
        let obj = &active.object.obj;
        let r = &rec.state.objects[active.file];
        let mut ids = Vec::with_capacity(obj.global_names.len());
        for (i, &(name, hash)) in obj.global_names.iter().enumerate() {
            let t = if lean < n_changed {
                match rec.by_key.get(&name_hash(name)) {
                    Some(&t) => t,
                    None => return fallback(format!("{name:?} is not in the state")),
                }
            } else {
                match r.globals.get(i) {
                    Some(&t) => t,
                    None => return fallback("an unchanged object's symbols differ"),
                }
            };
            let id = symbols.intern_hashed(name, hash);
            if id.0 as usize == table_of.len() {
                table_of.push(t);
                lean_of_table.insert(t, id);
            } else if table_of[id.0 as usize] != t {
                return fallback("a symbol's state entry is ambiguous");
            }
            ids.push(id);
        }
        active.object.global_ids = ids;
    }
    Ok((symbols, table_of, lean_of_table))
}

/// What the state says symbol `id` (state entry `g`) resolves to. Symbols defined outside
/// the active objects get their recorded address (`synthetic_values`); a shared library's
/// become entries of one stand-in library (`shared`).
fn recorded_def(
    id: SymbolId,
    g: &state::GlobalRecord,
    objects: &[LoadedObject],
    lean_file: &FxHashMap<usize, u32>,
    synthetic_values: &mut FxHashMap<SymbolId, u64>,
    shared: &mut SharedObject,
    name: &'static [u8],
) -> Result<Def> {
    Ok(match g.kind {
        state::GLOBAL_DEFINED | state::GLOBAL_ABS => match lean_file.get(&(g.file as usize)) {
            Some(&lean) => {
                let a = &objects[lean as usize];
                let obj = &a.obj;
                let defining = a.global_ids.iter().enumerate().find(|&(i, &sid)| {
                    let sym = obj.first_global + i;
                    let shndx = obj.symbol_shndx(sym) as usize;
                    sid == id
                        && shndx != 0
                        && !a.comdat_discarded.get(shndx).copied().unwrap_or(false)
                });
                let Some((i, _)) = defining else {
                    return fallback("a symbol's definition is not where the state says");
                };
                let sym = obj.first_global + i;
                Def::Defined {
                    file: FileId(lean),
                    sym: sym as u32,
                    weak: obj.symbols[sym].st_bind() == elf::STB_WEAK,
                }
            }
            None if g.kind == state::GLOBAL_ABS || g.flags & state::GLOBAL_NO_ADDRESS != 0 => {
                return fallback("an absolute symbol or one without an address is referred to")
            }
            None => {
                synthetic_values.insert(id, g.addr);
                Def::Synthetic
            }
        },
        state::GLOBAL_SYNTHETIC => {
            synthetic_values.insert(id, g.addr);
            Def::Synthetic
        }
        state::GLOBAL_SHARED => {
            shared.defined.push(DsoSymbol {
                name,
                value: 0,
                size: 0,
                st_info: elf::STB_GLOBAL << 4 | g.st_type,
                version: 0,
            });
            Def::Shared {
                dso: 0,
                index: shared.defined.len() as u32 - 1,
            }
        }
        state::GLOBAL_UNDEFINED => Def::Undefined,
        _ => return fallback("a common symbol is referred to"),
    })
}

/// The resolution of the active objects' symbols, from the state; the layout gets their
/// live sections, the recorded addresses of symbols defined elsewhere and the places of
/// copy-relocated ones.
fn resolve_from_state(
    mut actives: Vec<Active>,
    n_changed: usize,
    lay: &mut Layout,
    rec: &Recorded,
) -> Result<LeanResolution> {
    let (mut symbols, table_of, lean_of_table) = intern_globals(&mut actives, n_changed, rec)?;
    let lean_file: FxHashMap<usize, u32> = (actives.iter().enumerate())
        .map(|(i, a)| (a.file, i as u32))
        .collect();
    // The active objects become the lean resolution's objects.
    let mut files = Vec::with_capacity(actives.len());
    let mut objects = Vec::with_capacity(actives.len());
    let mut live = Vec::with_capacity(actives.len());
    for a in actives {
        files.push(a.file);
        objects.push(a.object);
        live.push(a.content);
    }
    let mut synthetic_values = FxHashMap::default();
    let mut shared = SharedObject::default();
    for (id, &t) in table_of.iter().enumerate() {
        let id = SymbolId(id as u32);
        let g = rec.global(t);
        let symbol = &mut symbols.symbols[id.0 as usize];
        // (A shared library's IFUNC is the dynamic linker's business; a copy-relocated
        // symbol lives at its copy, recorded as its address.)
        if (g.st_type == elf::STT_GNU_IFUNC || g.flags & state::GLOBAL_COPY != 0)
            && g.kind != state::GLOBAL_SHARED
        {
            return fallback(format!(
                "{} is an IFUNC or copy-relocated",
                String::from_utf8_lossy(symbol.name)
            ));
        }
        if g.flags & state::GLOBAL_COPY != 0 {
            let sections = &rec.state.sections;
            let Some(out) = sections.iter().position(|s| {
                s.sh_flags & u64::from(elf::SHF_ALLOC) != 0
                    && s.addr <= g.addr
                    && g.addr < s.addr + s.size
            }) else {
                return fallback("a copy relocation's place is not in the output");
            };
            let place = (out as u32, g.addr - sections[out].addr);
            lay.common_offsets.insert(id, place);
        }
        let (values, name) = (&mut synthetic_values, symbol.name);
        symbol.def = recorded_def(id, g, &objects, &lean_file, values, &mut shared, name)?;
    }
    let (defined_at, defined_size) = DefinedAt::table(&symbols, &objects);
    let res = Resolution {
        objects,
        dsos: vec![LoadedDso {
            dso: shared,
            as_needed: false,
        }],
        symver_aliases: Default::default(),
        symbols,
        duplicates: Vec::new(),
        defined_at,
        defined_size,
        armaps: Vec::new(),
        ir_files: Vec::new(),
        absolute: Default::default(),
        why_extract: Vec::new(),
    };
    lay.synthetic_values = synthetic_values;
    lay.live = live;
    Ok(LeanResolution {
        res,
        table_of,
        lean_of_table,
        files,
        lean_file,
        n_changed,
    })
}

/// The update once the active objects are laid out and resolved: what steps 6 to 12 read.
struct Laid<'a> {
    ctx: Context<'a>,
    lay: &'a Layout,
    lean: &'a LeanResolution,
    rec: &'a Recorded<'a>,
}

/// The new output's bytes as far as the update builds them, and the ranges it wrote.
struct Patch {
    buf: memmap2::MmapMut,
    file_size: usize,
    dirty: Vec<(u64, u64)>,
}

impl Patch {
    fn new(state: &State, dirty: Vec<(u64, u64)>) -> Result<Patch> {
        let file_size = state.layout.file_size as usize;
        // (Room for the old output's tail too: `.symtab` may be patched where it is.)
        let len = file_size.max(state.output.size as usize).max(1);
        Ok(Patch {
            buf: memmap2::MmapMut::map_anon(len)?,
            file_size,
            dirty,
        })
    }

    /// The new output's bytes up to the tail.
    fn main(&self, tail: &write::Tail) -> &[u8] {
        &self.buf[..tail.offset as usize]
    }
}

impl Laid<'_> {
    fn res(&self) -> &Resolution {
        &self.lean.res
    }

    /// The GOT and PLT slots and `.dynsym` entries the state has for the active objects'
    /// symbols; returns the active symbols by key.
    fn recorded_entries(
        lay: &mut Layout,
        lean: &LeanResolution,
        rec: &Recorded,
    ) -> FxHashMap<u64, SymRef> {
        let state = rec.state;
        let key_of = |s: SymRef| crate::state::symref_key(&lean.res, s);
        let wanted: FxHashMap<u64, SymRef> = (0..lean.res.symbols.symbols.len())
            .map(|i| SymRef::Global(SymbolId(i as u32)))
            .map(|s| (key_of(s), s))
            .collect();
        let mut slot = 0u32;
        for &(key, kind) in &state.order.got {
            if let Some(&s) = wanted.get(&key) {
                lay.needs
                    .got_index
                    .insert((s, GotKind::from_u8(kind)), slot);
            }
            slot += if kind <= GotKind::TpOff as u8 { 1 } else { 2 };
        }
        for (i, key) in state.order.plt.iter().enumerate() {
            if let Some(&SymRef::Global(id)) = wanted.get(key) {
                lay.needs.plt_index.insert(id, i as u32);
            }
        }
        for (id, t) in lean.table() {
            let dynsym = rec.global(t).dynsym;
            if dynsym != 0 {
                lay.dynamic.dynsym_index.insert(id, dynsym);
            }
        }
        wanted
    }

    /// The changed objects' relocation scans; they must ask for what they asked for.
    fn rescan(&self) -> Result<Vec<ScanRecord>> {
        let (lay, lean, rec) = (self.lay, self.lean, self.rec);
        let res = self.res();
        let globals = &rec.state.globals;
        let mut scans: Vec<ScanRecord> = Vec::with_capacity(lean.n_changed);
        let mut differing: Vec<(NeedsKeys, NeedsKeys)> = Vec::new();
        for (lean_id, &recorded_file) in lean.files.iter().enumerate().take(lean.n_changed) {
            let file = FileId(lean_id as u32);
            let (recorder, undefined, errors) =
                layout::scan_object(&self.ctx, file, &lay.live[lean_id], &lay.eh_records, true);
            let name = &res.objects[lean_id].name;
            if !undefined.is_empty() || !errors.is_empty() {
                return fallback(format!("{name}: undefined symbols or relocation errors"));
            }
            if recorder.textrel.is_some() {
                return fallback(format!(
                    "{name}: a dynamic relocation in a read-only section"
                ));
            }
            let mut record = recorder.record.unwrap_or_default();
            let object = &res.objects[lean_id];
            let r = &rec.state.objects[recorded_file];
            let state_entry = |id: &SymbolId| &globals[lean.table_of[id.0 as usize] as usize];
            record.classes = object
                .global_ids
                .iter()
                .map(|id| state_entry(id).class)
                .collect();
            let first = object.obj.first_global as u32;
            let new_keys = needs_keys(&record, |sym| {
                symbol_key(sym, first, |i| {
                    object.global_ids.get(i).map(|id| state_entry(id).key)
                })
            });
            let old_keys = needs_keys(&r.scan, |sym| {
                symbol_key(sym, r.first_global, |i| {
                    r.globals.get(i).map(|&t| globals[t as usize].key)
                })
            });
            if new_keys != old_keys {
                differing.push((old_keys, new_keys));
            }
            scans.push(record);
        }
        same_needs(rec.state, &differing, &rec.changed)?;
        Ok(scans)
    }

    /// The entry point, if a changed object defines it; `_init` and `_fini` (named by
    /// .dynamic) must not move.
    fn entry_point(&self, moved: &FxHashSet<u32>) -> Result<Option<u64>> {
        let (config, rec) = (self.ctx.config, self.rec);
        let lean_id_of = |name: &str| {
            let &t = rec.by_key.get(&name_hash(name.as_bytes()))?;
            rec.defined_by_changed(t)
                .then(|| (t, self.lean.lean_of_table.get(&t).copied()))
        };
        let mut entry = None;
        if let Some((_, id)) = lean_id_of(config.entry.as_deref().unwrap_or("_start")) {
            entry = id.and_then(|id| self.lay.symbol_address(&self.ctx, SymRef::Global(id)));
            if entry.is_none() {
                return fallback("the entry point is not where the state says");
            }
        }
        for name in [
            config.init.as_deref().unwrap_or("_init"),
            config.fini.as_deref().unwrap_or("_fini"),
        ] {
            if lean_id_of(name).is_some_and(|(t, _)| moved.contains(&t)) {
                return fallback(format!("{name} moved"));
            }
        }
        Ok(entry)
    }

    /// What to write: the changed objects' slots, the referrers' sections that refer to a
    /// moved symbol (their whole slot where units are walked). Returns the selection, the
    /// referrers' sections, the output ranges written and the address ranges rewritten.
    #[allow(clippy::type_complexity)]
    fn what_to_write(
        &self,
        moved: &FxHashSet<u32>,
    ) -> (
        Selection,
        Vec<(FileId, u32)>,
        Vec<(u64, u64)>,
        Vec<(u64, u64)>,
    ) {
        let (lay, lean) = (self.lay, self.lean);
        let res = self.res();
        let moved_ids: FxHashSet<SymbolId> = moved
            .iter()
            .filter_map(|t| lean.lean_of_table.get(t).copied())
            .collect();
        let mut selection = Selection::default();
        for lean_id in 0..lean.n_changed {
            let file = FileId(lean_id as u32);
            selection.files.insert(file);
            for (sec, p) in lay.placements[lean_id].iter().enumerate() {
                if p.out != NOT_PLACED {
                    selection.sections.insert((file, sec as u32));
                }
            }
        }
        let mut rerelocate: Vec<(FileId, u32)> = Vec::new();
        for lean_id in lean.n_changed..lean.files.len() {
            let object = &res.objects[lean_id];
            for (sec, p) in lay.placements[lean_id].iter().enumerate() {
                if p.out != NOT_PLACED
                    && object.obj.relocs[sec].iter().any(|r| {
                        object
                            .global_id(r.r_sym(LE, false) as usize)
                            .is_some_and(|id| moved_ids.contains(&id))
                    })
                {
                    rerelocate.push((FileId(lean_id as u32), sec as u32));
                }
            }
        }
        selection.sections.extend(rerelocate.iter().copied());
        let changed = |file: FileId| lean.is_changed(file);
        let (whole_slots, whole_addrs) =
            incremental::whole_slots(lay, &rerelocate, changed, &mut selection);
        let (mut dirty, mut rewritten) =
            incremental::rewritten_ranges(res, lay, changed, &rerelocate);
        dirty.extend(whole_slots);
        rewritten.extend(whole_addrs);
        (selection, rerelocate, dirty, rewritten)
    }

    /// Writes the selected sections; returns their dynamic relocations and FDEs.
    fn write_selected(
        &self,
        selection: &Selection,
        patch: &mut Patch,
    ) -> Result<(Vec<DynReloc>, Fdes)> {
        let (ctx, lay) = (&self.ctx, self.lay);
        let buf = &mut patch.buf[..patch.file_size];
        let jobs = write::section_jobs(ctx, lay, Some(selection));
        let slices = write::split_jobs(&jobs, buf, None)?;
        let outputs = write::run_jobs(ctx, lay, &jobs, slices);
        let (mut new_relocs, mut fdes) = (Vec::new(), Vec::new());
        for out in outputs {
            if !out.errors.is_empty() {
                return fallback(out.errors.join("; "));
            }
            new_relocs.extend(out.dyn_relocs);
            fdes.extend(out.fde_table);
        }
        write::fill_spare_room(lay, Some(selection), &mut patch.buf[..patch.file_size]);
        Ok((new_relocs, fdes))
    }

    /// The GOT entries of moved symbols, rewritten; returns their dynamic relocations and
    /// the address ranges rewritten.
    fn moved_got_entries(
        &self,
        moved: &FxHashSet<u32>,
        wanted: &FxHashMap<u64, SymRef>,
        patch: &mut Patch,
    ) -> Result<(Vec<DynReloc>, AddrRanges)> {
        let (mut relocs, mut rewritten) = (Vec::new(), Vec::new());
        let moved_keys: FxHashSet<u64> = moved.iter().map(|&t| self.rec.global(t).key).collect();
        let got = self.lay.synthetic(Synthetic::Got);
        let (Some(got), false) = (got, moved_keys.is_empty()) else {
            return Ok((relocs, rewritten));
        };
        let mut slot = 0u32;
        for &(key, kind) in &self.rec.state.order.got {
            let width = if kind <= GotKind::TpOff as u8 { 1 } else { 2 };
            if moved_keys.contains(&key) {
                let Some(&SymRef::Global(id)) = wanted.get(&key) else {
                    return fallback("a moved symbol's GOT entry");
                };
                let kind = GotKind::from_u8(kind);
                let (value, new) =
                    write::got_entry(&self.ctx, self.lay, got, SymRef::Global(id), kind, slot);
                if let Some((at, value)) = value {
                    patch.buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
                }
                relocs.extend(new.into_iter().flatten());
                patch
                    .dirty
                    .push((got.offset + 8 * u64::from(slot), 8 * u64::from(width)));
                rewritten.push((got.addr + 8 * u64::from(slot), 8 * u64::from(width)));
            }
            slot += width;
        }
        Ok((relocs, rewritten))
    }

    /// `.dynsym` entries of the symbols the changed objects define (an executable exports
    /// symbols that shared libraries refer to): their values and sizes may have changed.
    fn patch_dynsym(&self, old: &[u8], patch: &mut Patch) -> Result<()> {
        let Some(dynsym) = self.lay.synthetic(Synthetic::Dynsym) else {
            return Ok(());
        };
        for (sid, t) in self.lean.table() {
            let g = self.rec.global(t);
            if g.dynsym == 0 || !self.rec.defined_by_changed(t) {
                continue;
            }
            let Def::Defined { file, sym, weak } = self.res().symbols.get(sid).def else {
                return fallback("an exported symbol is not defined where the state says");
            };
            let (_, _, shndx, value, size) =
                write::defined_dynsym(&self.ctx, self.lay, sid, (file, sym, weak));
            let at = dynsym.offset as usize + 24 * g.dynsym as usize;
            let Some(entry) = old.get(at..at + 24) else {
                return fallback("the old .dynsym cannot be read");
            };
            let buf = &mut patch.buf;
            buf[at..at + 24].copy_from_slice(entry);
            buf[at + 6..at + 8].copy_from_slice(&shndx.to_le_bytes());
            buf[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
            buf[at + 16..at + 24].copy_from_slice(&size.to_le_bytes());
            patch.dirty.push((at as u64, 24));
        }
        Ok(())
    }

    /// New `.symtab` entries of the global symbols the changed objects define: (hidden,
    /// index) -> section index, value, size.
    fn symtab_patches(
        &self,
        shndx: &write::SectionIndex,
    ) -> Result<FxHashMap<(bool, usize), [u8; 18]>> {
        let mut patches: FxHashMap<(bool, usize), [u8; 18]> = FxHashMap::default();
        for (id, t) in self.lean.table() {
            let g = self.rec.global(t);
            if g.symtab == u32::MAX || !self.rec.defined_by_changed(t) {
                continue;
            }
            let hidden = g.symtab & write::SYMTAB_HIDDEN != 0;
            let index = (g.symtab & !write::SYMTAB_HIDDEN) as usize;
            let Some(e) = write::global_entry(&self.ctx, self.lay, shndx, id) else {
                return fallback("a changed object's symbol lost its .symtab entry");
            };
            let mut bytes = [0u8; 18];
            bytes[0..2].copy_from_slice(&e.shndx.to_le_bytes());
            bytes[2..10].copy_from_slice(&e.value.to_le_bytes());
            bytes[10..18].copy_from_slice(&e.size.to_le_bytes());
            patches.insert((hidden, index), bytes);
        }
        Ok(patches)
    }

    /// The tail: .symtab and .strtab (unchanged objects' locals and the globals copied, the
    /// changed objects' made anew), .shstrtab and the section headers; the ELF and program
    /// headers patched to point at them. Returns the tail and each object's `.symtab` range.
    fn tail(
        &self,
        sources: &[Source],
        old: &[u8],
        entry: Option<u64>,
        patch: &mut Patch,
        steps: &mut crate::PhaseTimer,
    ) -> Result<(write::Tail, Vec<[u32; 4]>)> {
        let (lay, state) = (self.lay, self.rec.state);
        let ehdr = old.get(..64).context("the old output has no ELF header")?;
        let shoff = u64_at(ehdr, 0x28).unwrap_or(0) as usize;
        let shnum = u16::from_le_bytes([ehdr[0x3c], ehdr[0x3d]]) as usize;
        let shstrndx = u16::from_le_bytes([ehdr[0x3e], ehdr[0x3f]]) as usize;
        let Some(shdrs) = old.get(shoff..shoff + 64 * shnum) else {
            return fallback("the old output's section headers cannot be read");
        };
        let shdr = |i: usize| &shdrs[64 * i..64 * i + 64];
        let range_of = |h: &[u8]| -> Option<std::ops::Range<usize>> {
            let (off, size) = (u64_at(h, 0x18)? as usize, u64_at(h, 0x20)? as usize);
            Some(off..off.checked_add(size)?)
        };
        let Some(symtab_index) = (0..shnum).find(|&i| u32_at(shdr(i), 4) == Some(elf::SHT_SYMTAB))
        else {
            return fallback("the old output has no .symtab");
        };
        let strtab_index = u32_at(shdr(symtab_index), 0x28).unwrap_or(0) as usize;
        let section = |i: usize| {
            (i < shnum)
                .then(|| range_of(shdr(i)).and_then(|r| old.get(r)))
                .flatten()
        };
        let (Some(old_symtab), Some(old_strtab), Some(shstrtab)) = (
            section(symtab_index),
            section(strtab_index),
            section(shstrndx),
        ) else {
            return fallback("the old output's symbol tables cannot be read");
        };
        let old_n_locals = u32_at(shdr(symtab_index), 0x2c).unwrap_or(0) as usize;
        let shndx = write::SectionIndex::new(lay);
        let patches = self.symtab_patches(&shndx)?;
        let parts: Vec<Part> = (0..state.objects.len())
            .into_par_iter()
            .with_min_len(16)
            .map(|f| match self.lean.lean_file.get(&f) {
                Some(&lean) if (lean as usize) < self.lean.n_changed => Part::New(
                    write::object_piece(&self.ctx, lay, &shndx, None, lean as usize),
                ),
                _ => Part::Old(
                    sources[f]
                        .name
                        .as_deref()
                        .map(|n| n.rsplit('/').next().unwrap_or(n).as_bytes()),
                ),
            })
            .collect();
        steps.step("symtab-pieces");
        let records: Vec<[u32; 4]> = state.objects.iter().map(|r| r.symtab).collect();
        let tables = (old_symtab, old_strtab, old_n_locals);
        let places = (range_of(shdr(symtab_index)), range_of(shdr(strtab_index)));
        if let (Some(symtab_at), Some(strtab_at)) = places {
            let in_place = (symtab_at.end <= strtab_at.start && strtab_at.end <= patch.buf.len())
                .then(|| {
                    let (head, rest) = patch.buf.split_at_mut(strtab_at.start);
                    let dst = (&mut head[symtab_at.clone()], &mut rest[..strtab_at.len()]);
                    patch_symtab_in_place(tables, &records, &parts, &patches, dst)
                })
                .flatten();
            if let Some(written) = in_place {
                for (in_strtab, at, len) in written {
                    let base = if in_strtab { &strtab_at } else { &symtab_at };
                    patch.dirty.push(((base.start + at) as u64, len as u64));
                }
                Self::patch_headers(old, entry, None, patch)?;
                steps.step("symtab-in-place");
                let tail = write::Tail {
                    offset: old.len() as u64,
                    bytes: Vec::new(),
                    symtab_files: Vec::new(),
                    symtab_globals: Vec::new(),
                };
                return Ok((tail, records));
            }
        }
        let mut out: Vec<u8> = Vec::new();
        let tail_offset = patch.file_size as u64;
        let pad_to = |out: &mut Vec<u8>, align: u64| {
            let at = (tail_offset + out.len() as u64).next_multiple_of(align);
            out.resize((at - tail_offset) as usize, 0);
        };
        pad_to(&mut out, 8);
        let symtab_offset = tail_offset + out.len() as u64;
        let Some((symtab_len, strtab_len, n_locals, ranges)) =
            splice_symtab(tables, &records, &parts, &patches, &mut out)
        else {
            return fallback("the old .symtab is not as the state says");
        };
        steps.step("symtab-append");
        let shstrtab_offset = tail_offset + out.len() as u64;
        out.extend_from_slice(shstrtab);
        pad_to(&mut out, 8);
        let new_shoff = tail_offset + out.len() as u64;
        let headers_at = out.len();
        out.extend_from_slice(shdrs);
        let mut patch_header = |i: usize, field: usize, value: u64, width: usize| {
            let at = headers_at + 64 * i + field;
            out[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        };
        patch_header(symtab_index, 0x18, symtab_offset, 8);
        patch_header(symtab_index, 0x20, symtab_len, 8);
        patch_header(symtab_index, 0x2c, n_locals as u64, 4);
        patch_header(strtab_index, 0x18, symtab_offset + symtab_len, 8);
        patch_header(strtab_index, 0x20, strtab_len, 8);
        patch_header(shstrndx, 0x18, shstrtab_offset, 8);
        Self::patch_headers(old, entry, Some(new_shoff), patch)?;
        let tail = write::Tail {
            offset: tail_offset,
            bytes: out,
            symtab_files: Vec::new(),
            symtab_globals: Vec::new(),
        };
        Ok((tail, ranges))
    }

    /// The ELF and program headers, with the new entry point and the section headers' new
    /// offset, if they moved.
    fn patch_headers(
        old: &[u8],
        entry: Option<u64>,
        shoff: Option<u64>,
        patch: &mut Patch,
    ) -> Result<()> {
        let Some(ehdr) = old.get(..64) else {
            return fallback("the old output has no ELF header");
        };
        let headers = 64 + 56 * u16::from_le_bytes([ehdr[0x38], ehdr[0x39]]) as usize;
        let Some(old_headers) = old.get(..headers) else {
            return fallback("the old output's headers cannot be read");
        };
        let buf = &mut patch.buf;
        buf[..headers].copy_from_slice(old_headers);
        if let Some(shoff) = shoff {
            buf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        }
        if let Some(entry) = entry {
            buf[0x18..0x20].copy_from_slice(&entry.to_le_bytes());
        }
        patch.dirty.push((0, headers as u64));
        Ok(())
    }

    /// The new addresses of the global symbols the changed objects define, by state entry
    /// (None: it has none).
    fn new_addresses(&self) -> Vec<(u32, Option<u64>)> {
        (self.lean.table())
            .filter(|&(_, t)| self.rec.defined_by_changed(t))
            .map(|(id, t)| (t, self.lay.symbol_address(&self.ctx, SymRef::Global(id))))
            .collect()
    }
}

/// The old output, read through a map.
fn map_old_output(config: &Config) -> Result<memmap2::Mmap> {
    let old_file = std::fs::File::open(&config.output)
        .with_context(|| format!("cannot open {}", config.output.display()))?;
    // SAFETY: the output is only read through this map while this process holds the
    // output's lock; it is patched (through another handle) after the new bytes are built.
    let old = unsafe { memmap2::Mmap::map(&old_file) }
        .with_context(|| format!("cannot map {}", config.output.display()))?;
    Ok(old)
}

/// An output section of the old output: its record and bytes.
fn old_section<'a>(
    state: &'a State,
    old: &'a [u8],
    name: &str,
) -> Option<(&'a state::SectionRecord, &'a [u8])> {
    let rec = state.sections.iter().find(|s| s.name == name)?;
    let bytes = old.get(rec.offset as usize..(rec.offset + rec.size) as usize)?;
    Some((rec, bytes))
}

/// `.rela.dyn`: the old entries, less those of rewritten ranges, and the new ones.
///
/// The old entries are in order (RELATIVE first, then the others, each by address; then
/// the room left, NONE entries): those of a rewritten range are one run of each kind, found
/// by binary search. The runs kept are copied as they are and the new entries, few, are
/// merged in (before kept ones of the same key, as a stable sort of the whole update's list,
/// new entries first, would place them).
fn merge_rela_dyn(
    state: &State,
    old: &[u8],
    mut new_relocs: Vec<DynReloc>,
    rewritten: &incremental::Ranges,
    patch: &mut Patch,
) -> Result<()> {
    let Some((rec, bytes)) = old_section(state, old, ".rela.dyn") else {
        if !new_relocs.is_empty() {
            return fallback("dynamic relocations without .rela.dyn");
        }
        return Ok(());
    };
    write::sort_dyn_relocs(&mut new_relocs);
    let entry = |i: usize| DynReloc::decode(&bytes[24 * i..24 * i + 24]);
    let key = |r: &DynReloc| (r.r_type != A::DYNAMIC.relative, r.offset);
    // The first of `lo..hi` for which `pred` is false (it holds for a prefix).
    let first_not = |lo: usize, hi: usize, pred: &dyn Fn(&DynReloc) -> bool| {
        lo + partition(hi - lo, |i| pred(&entry(lo + i)))
    };
    let used = first_not(0, bytes.len() / 24, &|r| r.r_type != A::NONE);
    let n_relative = first_not(0, used, &|r| r.r_type == A::DYNAMIC.relative);
    // The old entries of rewritten ranges: index ranges, merged.
    let mut dropped: Vec<(usize, usize)> = Vec::new();
    for (start, len) in rewritten.iter() {
        for (lo, hi) in [(0, n_relative), (n_relative, used)] {
            let a = first_not(lo, hi, &|r| r.offset < start);
            let b = first_not(a, hi, &|r| r.offset - start < len);
            if a < b {
                dropped.push((a, b));
            }
        }
    }
    dropped.sort_unstable();
    let mut kept: Vec<(usize, usize)> = Vec::with_capacity(dropped.len() + 1);
    let mut at = 0;
    for (a, b) in dropped {
        if a > at {
            kept.push((at, a));
        }
        at = at.max(b);
    }
    if at < used {
        kept.push((at, used));
    }
    // The new entries, as pieces at their indexes: runs of old entries, and new entries.
    let mut pieces: Vec<(usize, RelaPiece)> = Vec::with_capacity(kept.len() + new_relocs.len());
    let mut out = 0usize;
    let mut new = new_relocs.iter().peekable();
    for (mut i, end) in kept {
        while i < end {
            let upto = match new.peek() {
                Some(n) => first_not(i, end, &|r| key(r) < key(n)),
                None => end,
            };
            if upto > i {
                pieces.push((out, RelaPiece::Old(i, upto)));
                out += upto - i;
            }
            i = upto;
            if i < end {
                pieces.push((out, RelaPiece::New(new.next().unwrap().encode())));
                out += 1;
            }
        }
    }
    for r in new {
        pieces.push((out, RelaPiece::New(r.encode())));
        out += 1;
    }
    if out * 24 > bytes.len() {
        return fallback(".rela.dyn outgrew its room");
    }
    // Only the entries that differ from the old ones are written (fresh pages cost): from
    // the first piece that differs to the last one, or to the old end if there are fewer.
    let same = |&(at, ref piece): &(usize, RelaPiece)| match piece {
        RelaPiece::Old(i, _) => at == *i,
        RelaPiece::New(e) => bytes.get(24 * at..24 * at + 24) == Some(&e[..]),
    };
    let Some(first) = pieces.iter().position(|p| !same(p)) else {
        if out < used {
            patch
                .dirty
                .push((rec.offset + 24 * out as u64, 24 * (used - out) as u64));
        }
        return Ok(());
    };
    // (With fewer entries than before, all that follows moved down: written to the old end.)
    let last = match out < used {
        true => pieces.len() - 1,
        false => pieces.iter().rposition(|p| !same(p)).unwrap_or(first),
    };
    let from = pieces[first].0;
    let to = match out < used {
        true => used,
        false => pieces[last].0 + pieces[last].1.len(),
    };
    let dst = &mut patch.buf[rec.offset as usize..(rec.offset + rec.size) as usize];
    for (at, piece) in &pieces[first..=last] {
        let src = match piece {
            RelaPiece::Old(i, j) => &bytes[24 * i..24 * j],
            RelaPiece::New(e) => &e[..],
        };
        dst[24 * at..24 * at + src.len()].copy_from_slice(src);
    }
    patch
        .dirty
        .push((rec.offset + 24 * from as u64, 24 * (to - from) as u64));
    Ok(())
}

/// A piece of the new `.rela.dyn` (see [`merge_rela_dyn`]): a run of old entries (index
/// range), or a new entry.
enum RelaPiece {
    Old(usize, usize),
    New([u8; 24]),
}

impl RelaPiece {
    fn len(&self) -> usize {
        match self {
            RelaPiece::Old(i, j) => j - i,
            RelaPiece::New(_) => 1,
        }
    }
}

/// The number of leading `0..n` for which `pred` holds (it holds for a prefix).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `.eh_frame_hdr`: the old table (sorted by address, with no address twice), less the
/// FDEs of rewritten ranges, and the new entries, sorted and merged in as
/// `eh_frame::build_hdr` would order them.
fn merge_eh_frame_hdr(
    state: &State,
    old: &[u8],
    mut fdes: Vec<(u64, u64)>,
    rewritten: &mut incremental::Ranges,
    patch: &mut Patch,
) -> Result<()> {
    let Some((rec, bytes)) = old_section(state, old, ".eh_frame_hdr") else {
        return Ok(());
    };
    let hdr = rec.addr;
    fdes.sort_unstable();
    let kept = eh_frame::hdr_entries(hdr, bytes).filter(|&(_, fde)| !rewritten.contains(fde));
    let eh_frame = state
        .sections
        .iter()
        .find(|s| s.name == ".eh_frame" && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
        .map_or(0, |s| s.addr);
    let dst = &mut patch.buf[rec.offset as usize..(rec.offset + rec.size) as usize];
    let table = merge_sorted(kept, fdes.into_iter(), |&e| e);
    if eh_frame::write_hdr(dst, hdr, eh_frame, table).is_none() {
        return fallback(".eh_frame_hdr outgrew its room");
    }
    patch.dirty.push((rec.offset, rec.size));
    Ok(())
}

/// The build-id note, from the inputs' hashes (as the whole update computes it).
fn write_build_id(
    config: &Config,
    lay: &Layout,
    inputs: &Inputs,
    state: &State,
    patch: &mut Patch,
) {
    let Some(note) = lay.synthetic(Synthetic::BuildId) else {
        return;
    };
    let n = lay.build_id_size as usize;
    let id: Vec<u8> = match &config.build_id {
        Some(crate::args::BuildIdArg::Hex(bytes)) => bytes.clone(),
        _ => {
            let seed = incremental::build_id_seed(config, &inputs.hashes, &state.sections);
            blake3::hash(&seed).as_bytes()[..n].to_vec()
        }
    };
    let at = note.offset as usize;
    crate::encode::build_id_note_header(&mut patch.buf, at, n);
    patch.buf[at + 16..at + 16 + n].copy_from_slice(&id);
    patch.dirty.push((note.offset, note.size));
}

/// What the update learned about the objects it parsed, for the new state.
struct Learned {
    scans: Vec<ScanRecord>,
    new_symbols: Vec<Vec<(u64, u64)>>,
    /// Each object's `.symtab` range.
    ranges: Vec<[u32; 4]>,
    /// (output section, recorded object, (align, flags, progbits)) of the changed
    /// objects' sections.
    new_headers: Vec<(usize, usize, (u64, u64, bool))>,
    /// The changed objects' global symbols' new addresses, by state entry.
    addresses: Vec<(u32, Option<u64>)>,
}

/// The new state record: the old one with what the update learned. Leaves `state` empty
/// of objects, sections, order and globals.
fn new_record(
    state: &mut State,
    specs: &[FileSpec],
    matched: &InputMatch,
    sources: &[Source],
    lean: &LeanResolution,
    learned: Learned,
    hashes: &[[u8; 32]],
) -> state::Record {
    let res = &lean.res;
    let mut records = std::mem::take(&mut state.objects);
    for (f, r) in records.iter_mut().enumerate() {
        r.input = sources[f].pos as u32;
        r.member = sources[f].member;
        r.symtab = learned.ranges[f];
    }
    let parsed = learned.scans.into_iter().zip(learned.new_symbols);
    for (lean_id, (scan, now)) in parsed.enumerate() {
        let object = &res.objects[lean_id];
        let r = &mut records[lean.files[lean_id]];
        r.hash = if r.member == u32::MAX {
            hashes[object.origin.0 as usize]
        } else {
            *blake3::hash(object.data).as_bytes()
        };
        r.symbols = now;
        r.scan = scan;
        r.first_global = object.obj.first_global as u32;
        r.globals = (object.global_ids.iter())
            .map(|id| lean.table_of[id.0 as usize])
            .collect();
    }
    let mut globals = std::mem::take(&mut state.globals);
    for (t, addr) in learned.addresses {
        let g = &mut globals[t as usize];
        match addr {
            Some(addr) => {
                g.addr = addr;
                g.flags &= !state::GLOBAL_NO_ADDRESS;
            }
            None => g.flags |= state::GLOBAL_NO_ADDRESS,
        }
    }
    let mut old_of_new = vec![u32::MAX; specs.len()];
    for (old, &new) in matched.new_of_old.iter().enumerate() {
        old_of_new[new as usize] = old as u32;
    }
    let armaps: Vec<u64> = old_of_new
        .iter()
        .map(|&o| state.inputs.get(o as usize).map_or(0, |r| r.armap))
        .collect();
    let mut sections = std::mem::take(&mut state.sections);
    for (out, file, (align, flags, progbits)) in learned.new_headers {
        for slot in sections[out]
            .slots
            .iter_mut()
            .filter(|s| s.file as usize == file)
        {
            (slot.align, slot.flags, slot.progbits) = (align, flags, progbits);
        }
    }
    state::Record {
        objects: records,
        sections,
        needs: state.needs,
        order: std::mem::take(&mut state.order),
        globals,
        layout: state.layout,
        armaps,
    }
}

/// The update. `state` is left as it was when this returns an error.
pub(crate) fn update(
    config: &Config,
    specs: &[FileSpec],
    inputs: &Inputs,
    matched: &InputMatch,
    state: &mut State,
    timer: &mut crate::PhaseTimer,
) -> Result<Done> {
    let mut steps = crate::PhaseTimer::new(config.time);
    let kind = eligible(config, matched, state)?;

    // 1. Which objects changed; parse them, check their interfaces.
    let (mut sources, changed) = find_objects(specs, inputs, matched, state)?;
    if changed.is_empty() {
        return fallback("no object changed");
    }
    steps.step("changed");
    let mut actives = parse_changed(config, &sources, &changed, state)?;

    // 2. Symbols by name key; output sections by name.
    let rec = Recorded::new(state, &changed);
    check_references(state, &actives, &rec.by_key, &rec.changed)?;
    check_symbol_order(state, &actives, &rec.by_key)?;
    steps.step("parse");

    // 3. Lay out the changed objects; which of their symbols moved.
    let mut lay = lean_layout(state, kind, changed_fdes(&mut actives)?);
    let mut members: Vec<Vec<(FileId, u32)>> = vec![Vec::new(); state.sections.len()];
    let mut new_headers = Vec::new();
    for (lean, active) in actives.iter().enumerate() {
        let headers = lay_in(&mut lay, &mut members, FileId(lean as u32), active, &rec)?;
        new_headers.extend(headers.into_iter().map(|(out, h)| (out, active.file, h)));
    }
    let (moved, new_symbols) = moved_symbols(&lay, &actives, &rec)?;
    steps.step("place");

    // 4. Referrers of moved symbols: parsed and laid out too.
    let referrers = referrers(config, specs, &mut sources, &moved, &rec)?;
    lay_in_referrers(&mut lay, &mut members, &mut actives, referrers, &rec)?;
    set_members(&mut lay, members);
    steps.step("referrers");

    // 5. The resolution of the active objects' symbols, from the state.
    let lean = resolve_from_state(actives, changed.len(), &mut lay, &rec)?;
    let wanted = Laid::recorded_entries(&mut lay, &lean, &rec);
    let versions = crate::version_script::Versions::default();
    let laid = Laid {
        ctx: Context {
            config,
            res: &lean.res,
            kind,
            versions: &versions,
        },
        lay: &lay,
        lean: &lean,
        rec: &rec,
    };
    steps.step("resolve");

    // 6. The changed objects' relocation scans must ask for what they asked for.
    let scans = laid.rescan()?;
    steps.step("scan");
    let entry = laid.entry_point(&moved)?;

    // 7. What to write.
    let (selection, rerelocate, dirty, mut rewritten) = laid.what_to_write(&moved);

    // 8. Write them.
    let mut patch = Patch::new(state, dirty)?;
    let (mut new_relocs, fdes) = laid.write_selected(&selection, &mut patch)?;
    steps.step("sections");

    // 9. GOT entries of moved symbols.
    let (got_relocs, got_rewritten) = laid.moved_got_entries(&moved, &wanted, &mut patch)?;
    new_relocs.extend(got_relocs);
    rewritten.extend(got_rewritten);

    // 10. .dynsym, .rela.dyn and .eh_frame_hdr, from the old output's.
    let old = map_old_output(config)?;
    // ... whose stack, if its old version asked for an executable one, may have stopped.
    if config.z.execstack.is_none() && stack_is_executable(&old) {
        return fallback("the output's stack is executable");
    }
    laid.patch_dynsym(&old, &mut patch)?;
    let mut rewritten = incremental::Ranges::new(rewritten);
    merge_rela_dyn(state, &old, new_relocs, &rewritten, &mut patch)?;
    steps.step("rela");
    merge_eh_frame_hdr(state, &old, fdes, &mut rewritten, &mut patch)?;
    steps.step("tables");

    // 11. Build-id.
    write_build_id(config, &lay, inputs, state, &mut patch);

    // 12. The tail and the headers.
    let (tail, ranges) = laid.tail(&sources, &old, entry, &mut patch, &mut steps)?;
    let addresses = laid.new_addresses();
    drop(old);
    steps.step("symtab");
    timer.done("lean");

    // 13. Patch the output and record the new state.
    let n_objects = state.objects.len();
    let learned = Learned {
        scans,
        new_symbols,
        ranges,
        new_headers,
        addresses,
    };
    let record = new_record(
        state,
        specs,
        matched,
        &sources,
        &lean,
        learned,
        &inputs.hashes,
    );
    // The state is serialised while the output is patched (its identity is filled in
    // once the patch is done), then written.
    let (written, serialized) = rayon::join(
        || incremental::apply(config, kind, (patch.main(&tail), &tail), &patch.dirty),
        || state::serialize(config, specs, inputs, record),
    );
    let written = written?;
    timer.done("output");
    if std::env::var("WELD_TEST_KILL_AT").is_ok_and(|v| v == "state") {
        std::process::abort(); // test support: killed after the patch, before the state
    }
    state::write(config, serialized?)?;
    timer.done("state");
    Ok(Done {
        n_changed: changed.len(),
        changed: changed
            .iter()
            .take(3)
            .map(|&f| lean.res.objects[lean.lean_file[&f] as usize].name.clone())
            .collect(),
        n_objects,
        rerelocated: rerelocate.len(),
        written,
        size: tail.offset + tail.bytes.len() as u64,
    })
}
