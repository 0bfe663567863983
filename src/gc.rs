//! `--gc-sections`: marks input sections reachable from the roots; everything else is dropped.
//!
//! Roots: the entry symbol, `-u` symbols, sections the runtime finds without a symbol
//! (`.init`, `.fini`, init/fini arrays, notes, `SHF_GNU_RETAIN`), sections named like C
//! identifiers whose `__start_`/`__stop_` symbols are referenced, CIEs' personality routines,
//! and non-alloc sections (debug info is kept but does not keep code alive). An FDE keeps its
//! LSDA alive when its function is live. This module only computes the set.

use crate::context::{Context, Target};
use crate::eh_frame::Record;
use crate::input::elf::LE;
use crate::symbols::{Def, FileId};
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

const SHF_GNU_RETAIN: u64 = 0x20_0000;

fn is_root_name(name: &[u8]) -> bool {
    let starts = |p: &[u8]| name == p || (name.starts_with(p) && name.get(p.len()) == Some(&b'.'));
    starts(b".init")
        || starts(b".fini")
        || starts(b".init_array")
        || starts(b".fini_array")
        || starts(b".preinit_array")
        || starts(b".ctors")
        || starts(b".dtors")
        || starts(b".jcr")
        || name.starts_with(b".note")
}

/// `--print-gc-sections`: each non-empty section that had content and was dropped, in link order,
/// worded as GNU ld words it.
pub fn print_removed(res: &crate::resolve::Resolution, content: &[Vec<bool>], live: &[Vec<bool>]) {
    let mut err = std::io::stderr().lock();
    for (f, (had, kept)) in content.iter().zip(live).enumerate() {
        let object = &res.objects[f];
        for (s, _) in had
            .iter()
            .zip(kept)
            .enumerate()
            .filter(|(_, (h, k))| **h && !**k)
        {
            // GNU ld does not mention empty sections.
            if object.obj.shdrs[s].sh_size.get(LE) == 0 {
                continue;
            }
            let name = object.obj.section_names.get(s).copied().unwrap_or_default();
            let _ = writeln!(
                err,
                "weld: removing unused section '{}' in file '{}'",
                String::from_utf8_lossy(name),
                object.name
            );
        }
    }
}

/// An input section: (file, section index).
type SectionRef = (FileId, u32);

/// One `.eh_frame` section's edges: the sections its CIEs reference (personality routines,
/// roots) and, per FDE naming more than its function, the function and the other sections
/// (LSDAs) it references.
type EhFrameEdges = (Vec<SectionRef>, Vec<(SectionRef, Vec<SectionRef>)>);

/// Function section -> the other sections its FDEs reference (LSDAs).
type FdeEdges = HashMap<SectionRef, Vec<SectionRef>>;

/// The set of live input sections, as `content[file][section]` flags: sections with content
/// reachable from the roots, non-alloc sections, and the `.eh_frame` sections themselves.
pub fn mark_live(
    ctx: &Context,
    content: &[Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    // A linker script's KEEP: (file, section) is a root.
    keep: &(dyn Fn(usize, usize) -> bool + Sync),
) -> Vec<Vec<bool>> {
    let marks = Marks::new(content);
    let mut queue: Vec<SectionRef> = Vec::new();
    let start_stop = start_stop_names(ctx);
    for (f, s) in section_roots(ctx, &marks, &start_stop, keep)
        .into_iter()
        .flatten()
    {
        marks.mark(&mut queue, f, s);
    }
    mark_symbol_roots(ctx, &marks, &mut queue);
    let fde_edges = fde_edges(ctx, &marks, eh_records, &mut queue);
    traverse(ctx, &marks, &fde_edges, queue);
    marks.live(eh_records)
}

/// The marks of a `--gc-sections` pass: one flag per input section, all files end to end.
/// Marking is a swap, so that the traversal can run on several threads. The result is a set:
/// it does not depend on the order in which sections are visited.
struct Marks<'a> {
    /// Per file and section: whether the section has content (only those are marked).
    content: &'a [Vec<bool>],
    /// Per file: the index of its first section's flag in `marked`.
    base: Vec<usize>,
    marked: Vec<AtomicBool>,
}

impl<'a> Marks<'a> {
    /// No section marked yet.
    fn new(content: &'a [Vec<bool>]) -> Self {
        let mut base = Vec::with_capacity(content.len());
        let mut total = 0;
        for c in content {
            base.push(total);
            total += c.len();
        }
        let marked: Vec<AtomicBool> = (0..total).map(|_| AtomicBool::new(false)).collect();
        Marks {
            content,
            base,
            marked,
        }
    }

    /// Marks a content section; true the first time.
    fn try_mark(&self, f: FileId, s: u32) -> bool {
        let (fi, si) = (f.0 as usize, s as usize);
        si < self.content[fi].len()
            && self.content[fi][si]
            && !self.marked[self.base[fi] + si].swap(true, Ordering::Relaxed)
    }

    /// Marks a content section and queues it for traversal the first time.
    fn mark(&self, queue: &mut Vec<SectionRef>, f: FileId, s: u32) {
        if self.try_mark(f, s) {
            queue.push((f, s));
        }
    }

    /// Marks a section without queueing it (kept, not traversed).
    fn keep_untraversed(&self, f: usize, s: usize) {
        self.marked[self.base[f] + s].store(true, Ordering::Relaxed);
    }

    /// The marks as per-file flags, with the `.eh_frame` sections kept (their records are
    /// filtered by function liveness).
    fn live(&self, eh_records: &HashMap<(FileId, u32), Vec<Record>>) -> Vec<Vec<bool>> {
        let mut live: Vec<Vec<bool>> = self
            .content
            .iter()
            .enumerate()
            .map(|(f, c)| {
                (0..c.len())
                    .map(|s| self.marked[self.base[f] + s].load(Ordering::Relaxed))
                    .collect()
            })
            .collect();
        // .eh_frame sections themselves stay (their records are filtered by function liveness).
        for &(file, sec) in eh_records.keys() {
            live[file.0 as usize][sec as usize] = true;
        }
        live
    }
}

/// The `X` of every `__start_X`/`__stop_X` symbol: sections so named are roots (none under
/// `-z start-stop-gc`: then such a reference keeps nothing alive, as in GNU ld and lld).
fn start_stop_names(ctx: &Context) -> rustc_hash::FxHashSet<&'static [u8]> {
    let res = ctx.res;
    let mut start_stop = rustc_hash::FxHashSet::default();
    let symbols = if ctx.config.z.start_stop_gc {
        &[][..]
    } else {
        &res.symbols.symbols[..]
    };
    for sym in symbols {
        if let Some(rest) = sym
            .name
            .strip_prefix(b"__start_")
            .or_else(|| sym.name.strip_prefix(b"__stop_"))
        {
            start_stop.insert(rest);
        }
    }
    start_stop
}

/// Per file, the sections that are roots by themselves: retained, KEEP, init/fini/note
/// sections and those named by `start_stop`. Non-alloc content sections are marked here,
/// kept but not traversed.
fn section_roots(
    ctx: &Context,
    marks: &Marks,
    start_stop: &rustc_hash::FxHashSet<&'static [u8]>,
    keep: &(dyn Fn(usize, usize) -> bool + Sync),
) -> Vec<Vec<SectionRef>> {
    let content = marks.content;
    // Per file on all threads: every flag set here is a different section's.
    ctx.res
        .objects
        .par_iter()
        .enumerate()
        .map(|(f, object)| {
            let file = FileId(f as u32);
            let mut roots = Vec::new();
            for (s, shdr) in object.obj.shdrs.iter().enumerate() {
                if !content[f][s] {
                    continue;
                }
                let flags = shdr.sh_flags.get(LE);
                let name = object.obj.section_names[s];
                if flags & u64::from(elf::SHF_ALLOC) == 0 {
                    // Kept, but not traversed: debug info describes code, it does not keep it.
                    marks.keep_untraversed(f, s);
                    continue;
                }
                let sh_type = shdr.sh_type.get(LE);
                let root = flags & SHF_GNU_RETAIN != 0
                    || keep(f, s)
                    || is_root_name(name)
                    || sh_type == elf::SHT_NOTE
                    || sh_type == elf::SHT_INIT_ARRAY
                    || sh_type == elf::SHT_FINI_ARRAY
                    || sh_type == elf::SHT_PREINIT_ARRAY
                    // Only names without a dot can be C identifiers: most names are not
                    // hashed (a Rust object's are long: `.text.<mangled name>`).
                    || (!start_stop.is_empty()
                        && name.first() != Some(&b'.')
                        && start_stop.contains(name));
                // .eh_frame is handled record by record below.
                if root && name != b".eh_frame" {
                    roots.push((file, s as u32));
                }
            }
            roots
        })
        .collect()
}

/// Marks and queues the sections defining the root symbols: the entry, exported symbols,
/// the init and fini functions and `-u` symbols.
fn mark_symbol_roots(ctx: &Context, marks: &Marks, queue: &mut Vec<SectionRef>) {
    let res = ctx.res;
    let root_symbol = |name: &[u8], queue: &mut Vec<SectionRef>| {
        if let Some(id) = res.symbols.lookup(name) {
            if let Def::Defined { file, sym, .. } = res.symbols.get(id).def {
                let shndx = res.objects[file.0 as usize].obj.symbol_shndx(sym as usize);
                marks.mark(queue, file, shndx);
            }
        }
    };
    let entry = ctx.config.entry.as_deref().unwrap_or("_start");
    root_symbol(entry.as_bytes(), queue);
    // Exported symbols (a shared object's interface, `--export-dynamic`, symbols shared
    // libraries refer to) are roots too.
    for i in 0..res.symbols.symbols.len() {
        let id = crate::symbols::SymbolId(i as u32);
        if crate::context::exported(ctx, id) {
            if let Def::Defined { file, sym, .. } = res.symbols.get(id).def {
                let shndx = res.objects[file.0 as usize].obj.symbol_shndx(sym as usize);
                marks.mark(queue, file, shndx);
            }
        }
    }
    // The init and fini functions named in .dynamic.
    let config = ctx.config;
    for name in [
        config.init.as_deref().unwrap_or("_init"),
        config.fini.as_deref().unwrap_or("_fini"),
    ] {
        root_symbol(name.as_bytes(), queue);
    }
    for u in &ctx.config.undefined {
        root_symbol(u.as_bytes(), queue);
    }
}

/// The FDE edges of the `.eh_frame` sections: function section -> other sections its FDE
/// references (LSDA). CIE references (personality routines) are roots: marked and queued.
fn fde_edges(
    ctx: &Context,
    marks: &Marks,
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    queue: &mut Vec<SectionRef>,
) -> FdeEdges {
    let per_section: Vec<EhFrameEdges> = eh_records
        .par_iter()
        .map(|(&(file, sec), records)| eh_frame_edges(ctx, file, sec, records))
        .collect();
    let mut fde_edges: FdeEdges = HashMap::default();
    for (cie_targets, fdes) in per_section {
        for (f, s) in cie_targets {
            marks.mark(queue, f, s);
        }
        for (func, rest) in fdes {
            fde_edges.entry(func).or_default().extend(rest);
        }
    }
    fde_edges
}

/// One `.eh_frame` section's edges: the sections its CIEs reference, and the FDEs that
/// reference more than their function.
fn eh_frame_edges(ctx: &Context, file: FileId, sec: u32, records: &[Record]) -> EhFrameEdges {
    let relocs = ctx.res.objects[file.0 as usize].obj.relocs[sec as usize];
    let mut cie_targets = Vec::new();
    let mut fdes = Vec::new();
    for record in records {
        let mut targets = relocs[record.relocs.clone()].iter().filter_map(|r| {
            match ctx.target(file, r.r_sym(LE, false) as usize).1 {
                Target::Section { file, sec, .. } => Some((file, sec)),
                _ => None,
            }
        });
        if record.is_cie {
            cie_targets.extend(targets);
        } else if let Some(func) = targets.next() {
            // Most FDEs name only their function: nothing to remember.
            let rest: Vec<SectionRef> = targets.collect();
            if !rest.is_empty() {
                fdes.push((func, rest));
            }
        }
    }
    (cie_targets, fdes)
}

/// Marks everything reachable from `queue` through relocations and FDE edges: breadth
/// first, one frontier at a time, each spread over the threads.
fn traverse(ctx: &Context, marks: &Marks, fde_edges: &FdeEdges, mut queue: Vec<SectionRef>) {
    let res = ctx.res;
    while !queue.is_empty() {
        queue = queue
            .par_iter()
            .with_max_len(16)
            .flat_map_iter(|&(file, sec)| {
                let object = &res.objects[file.0 as usize];
                let mut next = Vec::new();
                for r in object.obj.relocs[sec as usize] {
                    if let (
                        _,
                        Target::Section {
                            file: f, sec: s, ..
                        },
                        _,
                    ) = ctx.target(file, r.r_sym(LE, false) as usize)
                    {
                        if marks.try_mark(f, s) {
                            next.push((f, s));
                        }
                    }
                }
                for &(f, s) in fde_edges.get(&(file, sec)).into_iter().flatten() {
                    if marks.try_mark(f, s) {
                        next.push((f, s));
                    }
                }
                next
            })
            .collect();
    }
}
