//! `--gc-sections`: marks input sections reachable from the roots; everything else is dropped.
//!
//! Roots: the entry symbol, `-u` symbols, sections the runtime finds without a symbol
//! (`.init`, `.fini`, init/fini arrays, notes, `SHF_GNU_RETAIN`), sections named like C
//! identifiers whose `__start_`/`__stop_` symbols are referenced, CIEs' personality routines,
//! and non-alloc sections (debug info is kept but does not keep code alive). An FDE keeps its
//! LSDA alive when its function is live. This module only computes the set.

use crate::eh_frame::Record;
use crate::inputs::elf::LE;
use crate::layout::{Context, Target};
use crate::symbols::{Def, FileId};
use object::elf;
use rustc_hash::FxHashMap as HashMap;

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

pub fn mark_live(
    ctx: &Context,
    content: &[Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
) -> Vec<Vec<bool>> {
    let res = ctx.res;
    let mut live: Vec<Vec<bool>> = content.iter().map(|c| vec![false; c.len()]).collect();
    let mut queue: Vec<(FileId, u32)> = Vec::new();
    let mark = |live: &mut Vec<Vec<bool>>, queue: &mut Vec<(FileId, u32)>, f: FileId, s: u32| {
        let (fi, si) = (f.0 as usize, s as usize);
        if si < content[fi].len() && content[fi][si] && !live[fi][si] {
            live[fi][si] = true;
            queue.push((f, s));
        }
    };

    // Sections referenced by `__start_X`/`__stop_X`.
    let mut start_stop = rustc_hash::FxHashSet::default();
    for sym in &res.symbols.symbols {
        if let Some(rest) = sym
            .name
            .strip_prefix(b"__start_")
            .or_else(|| sym.name.strip_prefix(b"__stop_"))
        {
            start_stop.insert(rest);
        }
    }

    for (f, object) in res.objects.iter().enumerate() {
        let file = FileId(f as u32);
        for (s, shdr) in object.obj.shdrs.iter().enumerate() {
            if !content[f][s] {
                continue;
            }
            let flags = shdr.sh_flags.get(LE);
            let name = object.obj.section_names[s];
            if flags & u64::from(elf::SHF_ALLOC) == 0 {
                // Kept, but not traversed: debug info describes code, it does not keep it.
                live[f][s] = true;
                continue;
            }
            let root = flags & SHF_GNU_RETAIN != 0
                || is_root_name(name)
                || shdr.sh_type.get(LE) == elf::SHT_NOTE
                || shdr.sh_type.get(LE) == elf::SHT_INIT_ARRAY
                || shdr.sh_type.get(LE) == elf::SHT_FINI_ARRAY
                || shdr.sh_type.get(LE) == elf::SHT_PREINIT_ARRAY
                || start_stop.contains(name);
            // .eh_frame is handled record by record below.
            if root && name != b".eh_frame" {
                mark(&mut live, &mut queue, file, s as u32);
            }
        }
    }
    let root_symbol = |name: &[u8], live: &mut Vec<Vec<bool>>, queue: &mut Vec<(FileId, u32)>| {
        if let Some(id) = res.symbols.lookup(name) {
            if let Def::Defined { file, sym, .. } = res.symbols.get(id).def {
                let shndx = res.objects[file.0 as usize].obj.symbol_shndx(sym as usize);
                mark(live, queue, file, shndx);
            }
        }
    };
    let entry = ctx.config.entry.as_deref().unwrap_or("_start");
    root_symbol(entry.as_bytes(), &mut live, &mut queue);
    // Exported symbols (a shared object's interface, `--export-dynamic`, symbols shared
    // libraries refer to) are roots too.
    for i in 0..res.symbols.symbols.len() {
        let id = crate::symbols::SymbolId(i as u32);
        if crate::dynamic::exported(ctx, id) {
            if let Def::Defined { file, sym, .. } = res.symbols.get(id).def {
                let shndx = res.objects[file.0 as usize].obj.symbol_shndx(sym as usize);
                mark(&mut live, &mut queue, file, shndx);
            }
        }
    }
    // The init and fini functions named in .dynamic.
    for name in [&b"_init"[..], b"_fini"] {
        root_symbol(name, &mut live, &mut queue);
    }
    for u in &ctx.config.undefined {
        root_symbol(u.as_bytes(), &mut live, &mut queue);
    }

    // FDE edges: function section -> other sections its FDE references (LSDA). CIE references
    // (personality routines) are roots.
    let mut fde_edges: HashMap<(FileId, u32), Vec<(FileId, u32)>> = HashMap::default();
    for (&(file, sec), records) in eh_records {
        let relocs = res.objects[file.0 as usize].obj.relocs[sec as usize];
        for record in records {
            let targets: Vec<(FileId, u32)> = relocs[record.relocs.clone()]
                .iter()
                .filter_map(|r| match ctx.target(file, r.r_sym(LE, false) as usize).1 {
                    Target::Section { file, sec, .. } => Some((file, sec)),
                    _ => None,
                })
                .collect();
            if record.is_cie {
                for (f, s) in targets {
                    mark(&mut live, &mut queue, f, s);
                }
            } else if let Some((&func, rest)) = targets.split_first() {
                fde_edges.entry(func).or_default().extend_from_slice(rest);
            }
        }
    }

    while let Some((file, sec)) = queue.pop() {
        let object = &res.objects[file.0 as usize];
        for r in object.obj.relocs[sec as usize] {
            let (_, target, _) = ctx.target(file, r.r_sym(LE, false) as usize);
            match target {
                Target::Section {
                    file: f, sec: s, ..
                } => mark(&mut live, &mut queue, f, s),
                Target::Common(_) | Target::Synthetic(_) | Target::Abs(_) | Target::Shared(_) => {}
                Target::UndefWeak | Target::Undefined => {}
            }
        }
        if let Some(edges) = fde_edges.get(&(file, sec)) {
            for &(f, s) in edges {
                mark(&mut live, &mut queue, f, s);
            }
        }
    }
    // .eh_frame sections themselves stay (their records are filtered by function liveness).
    for &(file, sec) in eh_records.keys() {
        live[file.0 as usize][sec as usize] = true;
    }
    live
}
