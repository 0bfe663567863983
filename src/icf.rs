//! `--icf=all|safe`: identical code folding, as lld, gold and mold do it. Read-only input
//! sections with the same bytes and the same relocations (same types, offsets and addends,
//! targets the same symbol or sections that fold together) are laid out once; the others
//! alias the kept one, so their symbols get its address.
//!
//! Equality is found by partition refinement (lld's `ICF.cpp` describes the method): the
//! candidates start in classes by contents and relocations without their targets, then
//! each round splits a class whose members' relocations reach different classes, until no
//! class splits. Starting from "equal unless shown otherwise" folds mutually recursive
//! functions too.
//!
//! Candidates: live, allocated, read-only, non-TLS PROGBITS sections that are not merged
//! strings, `.eh_frame`, init/fini code or tables, or sections named like C identifiers
//! (their `__start_`/`__stop_` symbols are their addresses), and only with others bound for
//! the same output section. As in lld, a section whose address is significant keeps it
//! (`keep_unique`: it defines a symbol in `.dynsym`, or one an `.llvm_addrsig` table lists,
//! or any symbol of an object without that table, as GCC's objects are): under `--icf=all`
//! such data sections stay apart, under `--icf=safe` such code too. A function with an
//! exception table (its `.eh_frame` record names an LSDA) is not folded either, as in lld.
//! A folded section's `.eh_frame` records go with it. Incremental mode and linker scripts
//! do not fold.

use crate::context::{Context, SymRef, Target};
use crate::input::elf::LE;
use crate::symbols::FileId;
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

/// `SHT_LLVM_ADDRSIG`: the indexes (ULEB128) of the symbols whose address is taken.
const SHT_LLVM_ADDRSIG: u32 = 0x6fff_4c03;

/// Each folded section and the section kept in its place, in input order.
pub type Folded = Vec<((FileId, u32), (FileId, u32))>;

/// What one candidate's relocation targets: a symbol others may define differently, or a
/// place (a candidate's class, or another section) and an offset.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Reach {
    Symbol(u32),
    Local(u32, u32),
    Candidate(u32, u64),
    Section(u32, u32, u64),
    Value(u64),
}

/// The functions whose `.eh_frame` record names an LSDA (an exception table): their
/// tables may differ where their code does not (`catch (int)` and `catch (long)`), so they
/// are not folded, as in lld.
fn with_exception_tables(
    ctx: &Context,
    eh_records: &HashMap<(FileId, u32), Vec<crate::eh_frame::Record>>,
) -> rustc_hash::FxHashSet<(FileId, u32)> {
    let mut out = rustc_hash::FxHashSet::default();
    for (&(file, sec), records) in eh_records {
        let relocs = ctx.res.objects[file.0 as usize].obj.relocs[sec as usize];
        for record in records.iter().filter(|r| !r.is_cie) {
            let targets = &relocs[record.relocs.clone()];
            if targets.len() < 2 {
                continue;
            }
            if let Target::Section { file, sec, .. } =
                ctx.target(file, targets[0].r_sym(LE, false) as usize).1
            {
                out.insert((file, sec));
            }
        }
    }
    out
}

/// The sections `--icf` folds, given the live ones.
pub fn fold(
    ctx: &Context,
    live: &[Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<crate::eh_frame::Record>>,
    safe: bool,
) -> Folded {
    let res = ctx.res;
    let mut excluded = with_exception_tables(ctx, eh_records);
    excluded.extend(keep_unique(ctx, safe));
    let candidates: Vec<(FileId, u32)> = res
        .objects
        .par_iter()
        .enumerate()
        .map(|(f, object)| {
            (0..object.obj.shdrs.len())
                .filter(|&s| live[f].get(s).copied().unwrap_or(false))
                .filter(|&s| eligible(object, s))
                .filter(|&s| !excluded.contains(&(FileId(f as u32), s as u32)))
                .map(|s| (FileId(f as u32), s as u32))
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect();
    let index: HashMap<(FileId, u32), u32> = candidates
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as u32))
        .collect();
    // Round 0: contents and relocations without their targets.
    let shape: Vec<[u8; 32]> = candidates
        .par_iter()
        .map(|&(file, sec)| {
            let obj = &res.objects[file.0 as usize].obj;
            let h = &obj.shdrs[sec as usize];
            let mut hasher = blake3::Hasher::new();
            // (Only sections bound for the same output section fold, as in lld.)
            let object = &res.objects[file.0 as usize];
            hasher.update(crate::context::output_name(object, sec as usize).as_bytes());
            hasher.update(&[0]);
            hasher.update(&h.sh_flags.get(LE).to_le_bytes());
            hasher.update(&h.sh_addralign.get(LE).to_le_bytes());
            hasher.update(&h.sh_size.get(LE).to_le_bytes());
            hasher.update(obj.section_data(sec as usize));
            for r in obj.relocs[sec as usize] {
                hasher.update(&r.r_offset.get(LE).to_le_bytes());
                hasher.update(&r.r_type(LE, false).to_le_bytes());
                hasher.update(&r.r_addend.get(LE).to_le_bytes());
            }
            *hasher.finalize().as_bytes()
        })
        .collect();
    let mut class = classes_of(&shape);
    let reach = |class: &[u32], file: FileId, r: &crate::input::elf::Rela| -> Reach {
        let (symref, target, st_type) = ctx.target(file, r.r_sym(LE, false) as usize);
        let by_symbol = |symref: SymRef| match symref {
            SymRef::Global(id) => Reach::Symbol(id.0),
            SymRef::Local(file, index) => Reach::Local(file.0, index),
        };
        if st_type == elf::STT_GNU_IFUNC || ctx.preemptible(ctx.kind, symref) {
            return by_symbol(symref);
        }
        match target {
            Target::Section { file, sec, value } => match index.get(&(file, sec)) {
                Some(&c) => Reach::Candidate(class[c as usize], value),
                None => Reach::Section(file.0, sec, value),
            },
            Target::Abs(v) => Reach::Value(v),
            _ => by_symbol(symref),
        }
    };
    // Refine until no class splits.
    let mut n_classes = count(&class);
    loop {
        let signatures: Vec<(u32, Vec<Reach>)> = candidates
            .par_iter()
            .enumerate()
            .map(|(i, &(file, sec))| {
                let obj = &res.objects[file.0 as usize].obj;
                let reaches = obj.relocs[sec as usize]
                    .iter()
                    .map(|r| reach(&class, file, r))
                    .collect();
                (class[i], reaches)
            })
            .collect();
        class = classes_of(&signatures);
        let now = count(&class);
        if now == n_classes {
            break;
        }
        n_classes = now;
    }
    // Each class's first candidate (in input order) stays; the others fold into it.
    let mut leader: HashMap<u32, (FileId, u32)> = HashMap::default();
    let mut folded = Folded::new();
    for (i, &c) in class.iter().enumerate() {
        match leader.get(&c) {
            Some(&kept) => folded.push((candidates[i], kept)),
            None => {
                leader.insert(c, candidates[i]);
            }
        }
    }
    folded
}

/// Class ids for `keys`: equal keys, equal ids; ids in order of first appearance.
fn classes_of<K: Eq + std::hash::Hash>(keys: &[K]) -> Vec<u32> {
    let mut ids: HashMap<&K, u32> = HashMap::default();
    keys.iter()
        .map(|k| {
            let next = ids.len() as u32;
            *ids.entry(k).or_insert(next)
        })
        .collect()
}

fn count(class: &[u32]) -> usize {
    class.iter().map(|&c| c as usize + 1).max().unwrap_or(0)
}

/// Whether section `sec` of `object` may be folded (before `--icf=safe`'s test).
fn eligible(object: &crate::resolve::LoadedObject, sec: usize) -> bool {
    let h = &object.obj.shdrs[sec];
    let flags = h.sh_flags.get(LE);
    let name = object
        .obj
        .section_names
        .get(sec)
        .copied()
        .unwrap_or_default();
    let starts = |p: &[u8]| name == p || (name.starts_with(p) && name.get(p.len()) == Some(&b'.'));
    h.sh_type.get(LE) == elf::SHT_PROGBITS
        && flags & u64::from(elf::SHF_ALLOC) != 0
        && flags & u64::from(elf::SHF_WRITE | elf::SHF_TLS | elf::SHF_MERGE) == 0
        && h.sh_size.get(LE) > 0
        && !crate::context::is_eh_frame(object, sec)
        && ![
            &b".init"[..],
            b".fini",
            b".init_array",
            b".fini_array",
            b".preinit_array",
            b".ctors",
            b".dtors",
        ]
        .iter()
        .any(|p| starts(p))
        && !name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The sections that must keep their own address (lld's `findKeepUniqueSections`): those
/// defining an address-significant symbol, that is one in `.dynsym` (another module may
/// compare it), one an object's `.llvm_addrsig` lists (where it is defined, whichever file
/// that is), or any symbol of an object without that table (GCC writes none). In `--icf=all`
/// only their data sections stay apart; in `--icf=safe` their code too.
fn keep_unique(ctx: &Context, safe: bool) -> rustc_hash::FxHashSet<(FileId, u32)> {
    let res = ctx.res;
    type Set = rustc_hash::FxHashSet<(FileId, u32)>;
    let per_file: Vec<Set> = res
        .objects
        .par_iter()
        .enumerate()
        .map(|(f, object)| {
            let file = FileId(f as u32);
            let obj = &object.obj;
            let mut out = Set::default();
            let table =
                (0..obj.shdrs.len()).find(|&s| obj.shdrs[s].sh_type.get(LE) == SHT_LLVM_ADDRSIG);
            match table.and_then(|t| addrsig_symbols(obj.section_data(t))) {
                Some(symbols) => {
                    for sym in symbols.into_iter().filter(|&s| s < obj.symbols.len()) {
                        mark_into(&mut out, ctx, file, sym, safe);
                    }
                }
                None => {
                    for sym in 1..obj.symbols.len() {
                        mark_into(&mut out, ctx, file, sym, safe);
                    }
                }
            }
            out
        })
        .collect();
    let mut keep: Set = per_file.into_iter().flatten().collect();
    for (i, symbol) in res.symbols.symbols.iter().enumerate() {
        let id = crate::symbols::SymbolId(i as u32);
        if let crate::symbols::Def::Defined { file, sym, .. } = symbol.def {
            if crate::context::exported(ctx, id) {
                mark_into(&mut keep, ctx, file, sym as usize, safe);
            }
        }
    }
    keep
}

/// `keep_unique`'s rule for one symbol, into a set.
fn mark_into(
    keep: &mut rustc_hash::FxHashSet<(FileId, u32)>,
    ctx: &Context,
    file: FileId,
    sym: usize,
    safe: bool,
) {
    if let Target::Section { file, sec, .. } = ctx.target(file, sym).1 {
        let obj = &ctx.res.objects[file.0 as usize].obj;
        let exec = obj.shdrs[sec as usize].sh_flags.get(LE) & u64::from(elf::SHF_EXECINSTR) != 0;
        if safe || !exec {
            keep.insert((file, sec));
        }
    }
}

/// The symbol indexes of a `.llvm_addrsig` table (ULEB128 each); None if it is malformed
/// (then the object counts as having none).
fn addrsig_symbols(mut data: &[u8]) -> Option<Vec<usize>> {
    let mut symbols = Vec::new();
    while !data.is_empty() {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let (&byte, rest) = data.split_first()?;
            data = rest;
            if shift < 64 {
                value |= u64::from(byte & 0x7f) << shift;
            }
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        symbols.push(usize::try_from(value).ok()?);
    }
    Some(symbols)
}

/// `--print-icf-sections`: lld's lines, on standard output, by kept section.
pub fn print(res: &crate::resolve::Resolution, folded: &Folded) {
    let mut folded = folded.clone();
    folded.sort_by_key(|&(gone, kept)| (kept.0 .0, kept.1, gone.0 .0, gone.1));
    let name = |(file, sec): (FileId, u32)| {
        let object = &res.objects[file.0 as usize];
        let section = object
            .obj
            .section_names
            .get(sec as usize)
            .copied()
            .unwrap_or_default();
        format!("{}:({})", object.name, String::from_utf8_lossy(section))
    };
    let mut last = None;
    for (gone, kept) in folded {
        if last != Some(kept) {
            println!("selected section {}", name(kept));
            last = Some(kept);
        }
        println!("  removing identical section {}", name(gone));
    }
}
