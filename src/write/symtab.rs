//! `.symtab` and `.strtab`: per object a file symbol and its local symbols (read from the
//! input, or copied from the old output's tables by an incremental update), the hidden
//! global symbols as locals, then the global symbols. Built in pieces on all threads while
//! the sections are written, then joined in order; the writer's tail pass places them
//! (`append_tables`). A symbol's section index comes from `headers::SectionIndex`.

use super::headers::SectionIndex;
use crate::context::{defined_target, Context, Target};
use crate::input::elf::LE;
use crate::layout::Layout;
use crate::symbols::{Def, FileId};
use object::elf;
use rayon::prelude::*;

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
pub(super) struct SymtabPieces {
    pieces: Vec<Piece>,
    pub(super) n_files: usize,
    /// Entries before the first global (the null entry included).
    pub(super) n_locals: usize,
    /// --emit-relocs: the index of the first output section's section symbol (the others
    /// follow in section header order).
    pub(super) section_symbols: Option<u32>,
}

impl SymtabPieces {
    /// Per symbol id, where its entry is among the global symbols' entries: the index among
    /// the hidden ones (`SYMTAB_HIDDEN` set) or among the others; `u32::MAX` if it has none.
    pub(super) fn global_positions(&self, n_symbols: usize) -> Vec<u32> {
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
    pub(super) fn global_indices(&self, n_symbols: usize) -> Vec<u32> {
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
    pub(super) fn append_to(&self, out: &mut Vec<u8>) -> (u64, u64, Vec<[u32; 4]>) {
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
pub(super) fn build_symtab(
    ctx: &Context,
    layout: &Layout,
    reuse: Option<&SymtabReuse>,
) -> SymtabPieces {
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
