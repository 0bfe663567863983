//! The dynamic symbol table and what hangs off it: `.dynsym` order, `.dynstr`,
//! `.gnu.version`/`.gnu.version_r`, `.gnu.hash`, `.hash`, and the DT_NEEDED list.
//!
//! Everything here depends on names and resolution only, never on addresses, so layout can
//! size these sections before assigning addresses; `write` fills in `.dynsym` values.

use crate::context::Needs;
use crate::context::{exported, Context, OutputKind, SymRef};
use crate::symbols::{Def, SymbolId};
use object::elf;
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;

#[derive(Default)]
pub struct DynamicTables {
    /// `.dynsym` entries after the null entry: entry `i` has index `i + 1`.
    pub dynsyms: Vec<SymbolId>,
    pub dynsym_index: HashMap<SymbolId, u32>,
    /// Index of the first entry covered by `.gnu.hash` (defined symbols).
    pub first_hashed: u32,
    pub dynstr: Vec<u8>,
    pub name_offsets: Vec<u32>,
    pub versym: Vec<u8>,
    pub verdef: Vec<u8>,
    pub verdef_count: u32,
    pub verneed: Vec<u8>,
    pub verneed_count: u32,
    pub gnu_hash: Vec<u8>,
    pub sysv_hash: Vec<u8>,
    /// DT_NEEDED string offsets, in command-line order.
    pub needed: Vec<u32>,
    pub soname: Option<u32>,
    pub runpath: Option<u32>,
    /// Per shared library: `--as-needed` dropped it (no DT_NEEDED). Symbols only it defines
    /// are then imported as plain weak undefined symbols, with no version, as GNU ld does.
    pub dropped: Vec<bool>,
    /// DT_FILTER, DT_AUXILIARY, DT_AUDIT and DT_DEPAUDIT entries: (tag, string offset).
    pub string_tags: Vec<(u32, u32)>,
    /// Symbols that alias a copy-relocated symbol (same shared object, same address): the
    /// executable defines them at the copy too.
    pub copy_aliases: HashMap<SymbolId, SymbolId>,
}

pub fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

pub fn sysv_hash(name: &[u8]) -> u32 {
    let mut h = 0u32;
    for &c in name {
        h = (h << 4).wrapping_add(u32::from(c));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// The name a symbol has in `.dynsym`: `foo@@VER` and `foo@VER` become `foo`.
pub fn dynamic_name(name: &[u8]) -> &[u8] {
    match name.iter().position(|&c| c == b'@') {
        Some(at) => &name[..at],
        None => name,
    }
}

struct StrTab {
    bytes: Vec<u8>,
    map: HashMap<Vec<u8>, u32>,
}

impl StrTab {
    fn add(&mut self, s: &[u8]) -> u32 {
        if let Some(&o) = self.map.get(s) {
            return o;
        }
        let o = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.map.insert(s.to_vec(), o);
        o
    }
}

pub fn build(
    ctx: &Context,
    needs: &Needs,
    live_defined: &dyn Fn(SymbolId) -> bool,
) -> DynamicTables {
    let res = ctx.res;
    let (imports, hashed, copy_aliases) = select_dynamic_symbols(ctx, needs, live_defined);
    // By name, not by symbol id: ids follow the order in which objects mention symbols,
    // and an incremental update must find the table as the recorded link left it when only
    // that order changed.
    let name = |id: &SymbolId| res.symbols.get(*id).name;
    let mut imports: Vec<SymbolId> = imports
        .into_iter()
        .filter(|id| !hashed.contains(id))
        .collect();
    imports.sort_by_key(name);
    let hashed: Vec<SymbolId> = hashed.into_iter().collect();

    // .gnu.hash wants the hashed symbols grouped by bucket.
    let n_buckets = (hashed.len() / 4).max(1) as u32;
    let mut hashed_sorted: Vec<(u32, SymbolId)> = hashed
        .iter()
        .map(|&id| (gnu_hash(dynamic_name(res.symbols.get(id).name)), id))
        .collect();
    hashed_sorted.sort_by_key(|&(h, id)| (h % n_buckets, name(&id)));

    let mut dynsyms: Vec<SymbolId> = imports.clone();
    let first_hashed = dynsyms.len() as u32 + 1;
    dynsyms.extend(hashed_sorted.iter().map(|&(_, id)| id));
    let dynsym_index: HashMap<SymbolId, u32> = dynsyms
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32 + 1))
        .collect();

    let mut strtab = StrTab {
        bytes: vec![0],
        map: HashMap::default(),
    };
    let name_offsets: Vec<u32> = dynsyms
        .iter()
        .map(|&id| strtab.add(dynamic_name(res.symbols.get(id).name)))
        .collect();

    let dropped = dropped_dsos(res);
    let mut needed = Vec::new();
    let mut needed_names = Vec::new();
    if matches!(
        ctx.kind,
        OutputKind::DynExe | OutputKind::DynPie | OutputKind::Shared
    ) {
        for (i, d) in res.dsos.iter().enumerate() {
            if dropped[i] || needed_names.contains(&d.dso.soname) {
                continue;
            }
            needed_names.push(d.dso.soname.clone());
            needed.push(strtab.add(d.dso.soname.as_bytes()));
        }
    }
    let soname = ctx.config.soname.as_ref().map(|s| strtab.add(s.as_bytes()));
    let runpath =
        (!ctx.config.rpath.is_empty()).then(|| strtab.add(ctx.config.rpath.join(":").as_bytes()));
    // In GNU ld's order; several --audit (or --depaudit) make one colon-separated list.
    let mut string_tags = Vec::new();
    if ctx.kind == OutputKind::Shared {
        if let Some(filter) = &ctx.config.filter {
            string_tags.push((elf::DT_FILTER, strtab.add(filter.as_bytes())));
        }
        for auxiliary in &ctx.config.auxiliary {
            string_tags.push((elf::DT_AUXILIARY, strtab.add(auxiliary.as_bytes())));
        }
    }
    for (tag, list) in [
        (elf::DT_AUDIT, &ctx.config.audit),
        (elf::DT_DEPAUDIT, &ctx.config.depaudit),
    ] {
        if !list.is_empty() {
            string_tags.push((tag, strtab.add(list.join(":").as_bytes())));
        }
    }

    let versions = version_tables(ctx, needs, &dynsyms, &dropped, &mut strtab);

    let gnu = gnu_hash_table(&hashed_sorted, n_buckets, first_hashed);
    let sysv = sysv_hash_table(res, &dynsyms);

    DynamicTables {
        dynsyms,
        dynsym_index,
        first_hashed,
        dynstr: strtab.bytes,
        name_offsets,
        versym: versions.versym,
        verdef_count: versions.verdef_count,
        verdef: versions.verdef,
        verneed_count: versions.verneed_count,
        verneed: versions.verneed,
        gnu_hash: gnu,
        sysv_hash: sysv,
        needed,
        soname,
        runpath,
        dropped,
        string_tags,
        copy_aliases,
    }
}

/// The symbols `.dynsym` holds: imports (referred to, defined by a shared object or
/// preemptible), and hashed ones (exported definitions, copy-relocated symbols with their
/// aliases, canonical PLT addresses); an executable's copy aliases.
#[allow(clippy::type_complexity)]
fn select_dynamic_symbols(
    ctx: &Context,
    needs: &Needs,
    live_defined: &dyn Fn(SymbolId) -> bool,
) -> (
    BTreeSet<SymbolId>,
    BTreeSet<SymbolId>,
    HashMap<SymbolId, SymbolId>,
) {
    let res = ctx.res;
    let mut imports = BTreeSet::new();
    let mut hashed = BTreeSet::new();
    let mut copy_aliases = HashMap::default();
    if matches!(
        ctx.kind,
        OutputKind::DynExe | OutputKind::DynPie | OutputKind::Shared
    ) {
        for &id in needs
            .used_shared
            .iter()
            .chain(needs.dynsym_refs.iter())
            .chain(needs.plt_entries.iter())
        {
            imports.insert(id);
        }
        for (symref, _) in &needs.got_entries {
            if let SymRef::Global(id) = *symref {
                if ctx.preemptible(ctx.kind, *symref) {
                    imports.insert(id);
                }
            }
        }
        for &id in &needs.copies {
            imports.remove(&id);
            hashed.insert(id);
            // Aliases: other names the same shared object gives the same address.
            if let Def::Shared { dso, index } = res.symbols.get(id).def {
                let d = &res.dsos[dso as usize].dso;
                let value = d.defined[index as usize].value;
                for (i, other) in d.defined.iter().enumerate() {
                    if i as u32 == index || other.value != value {
                        continue;
                    }
                    if let Some(alias) = res.symbols.lookup(other.name) {
                        if res.symbols.get(alias).def
                            == (Def::Shared {
                                dso,
                                index: i as u32,
                            })
                        {
                            copy_aliases.insert(alias, id);
                            imports.remove(&alias);
                            hashed.insert(alias);
                        }
                    }
                }
            }
        }
        for &id in &needs.canonical {
            imports.remove(&id);
            hashed.insert(id);
        }
        for i in 0..res.symbols.symbols.len() {
            let id = SymbolId(i as u32);
            if exported(ctx, id) && live_defined(id) {
                hashed.insert(id);
            }
        }
    }
    (imports, hashed, copy_aliases)
}

/// DT_NEEDED: every shared object unless --as-needed and nothing of it is used. Per
/// shared object, whether it is dropped.
fn dropped_dsos(res: &crate::resolve::Resolution) -> Vec<bool> {
    let mut used_dsos = vec![false; res.dsos.len()];
    // As GNU ld: an --as-needed library is needed when it defines a symbol that a regular
    // object refers to without `weak` (even if the reference was relaxed away or is in a
    // section that garbage collection dropped).
    for symbol in &res.symbols.symbols {
        if let Def::Shared { dso, .. } = symbol.def {
            if symbol.strong_ref {
                used_dsos[dso as usize] = true;
            }
        }
    }
    res.dsos
        .iter()
        .zip(&used_dsos)
        .map(|(d, &used)| d.as_needed && !used)
        .collect()
}

/// The symbol versions: `.gnu.version` (per `.dynsym` entry), `.gnu.version_d` (our own
/// definitions) and `.gnu.version_r` (what imports need of versioned shared objects).
struct VersionTables {
    versym: Vec<u8>,
    verdef: Vec<u8>,
    verdef_count: u32,
    verneed: Vec<u8>,
    verneed_count: u32,
}

/// Builds the version tables of `dynsyms`; names go to `strtab`.
fn version_tables(
    ctx: &Context,
    needs: &Needs,
    dynsyms: &[SymbolId],
    dropped: &[bool],
    strtab: &mut StrTab,
) -> VersionTables {
    let res = ctx.res;
    // Versions: our own definitions first (.gnu.version_d), then what imports need from
    // versioned shared objects (.gnu.version_r); both share one index space.
    let has_verdefs = !ctx.versions.is_empty() && ctx.kind == OutputKind::Shared;
    let first_needed_index = if has_verdefs {
        ctx.versions.defs.len() as u16 + 1
    } else {
        2
    };
    let verdef = if has_verdefs {
        encode_verdef(ctx, strtab)
    } else {
        Vec::new()
    };
    let mut vernaux: Vec<(u32, u16, u16)> = Vec::new(); // (dso, dso version index, our index)
    let mut versym = vec![0u8; 2 * (dynsyms.len() + 1)];
    for (i, &id) in dynsyms.iter().enumerate() {
        let v: u16 = match res.symbols.get(id).def {
            Def::Shared { dso, index } if !dropped[dso as usize] => {
                let dv = res.dsos[dso as usize].dso.defined[index as usize].version;
                if dv > 1 {
                    match vernaux.iter().find(|(d, v, _)| *d == dso && *v == dv) {
                        Some(&(_, _, ours)) => ours,
                        None => {
                            let ours = vernaux.len() as u16 + first_needed_index;
                            vernaux.push((dso, dv, ours));
                            ours
                        }
                    }
                } else {
                    1
                }
            }
            Def::Shared { .. } => 1,
            _ => match ctx.versions.of_symbol.get(&id) {
                Some(&(index, hidden)) if has_verdefs => index | if hidden { 0x8000 } else { 0 },
                _ => 1,
            },
        };
        versym[2 * (i + 1)..2 * (i + 2)].copy_from_slice(&v.to_le_bytes());
    }
    // A DT_RELR table needs glibc 2.36's loader: as GNU ld, the output then needs libc's
    // GLIBC_ABI_DT_RELR version, so that an older loader refuses it rather than running
    // it unrelocated.
    if crate::context::has_relr(ctx, needs) {
        let libc = res.dsos.iter().enumerate().find_map(|(i, d)| {
            let dv = d
                .dso
                .versions
                .iter()
                .position(|v| v == "GLIBC_ABI_DT_RELR")?;
            (d.dso.soname.starts_with("libc.so.") && !dropped[i]).then_some((i as u32, dv as u16))
        });
        if let Some((dso, dv)) = libc {
            if !vernaux.iter().any(|v| v.0 == dso && v.1 == dv) {
                vernaux.push((dso, dv, vernaux.len() as u16 + first_needed_index));
            }
        }
    }
    let (verneed, dsos_with_needs) = encode_verneed(res, &vernaux, strtab);
    if vernaux.is_empty() && !has_verdefs {
        versym.clear();
    }

    VersionTables {
        versym,
        verdef_count: if has_verdefs {
            ctx.versions.defs.len() as u32
        } else {
            0
        },
        verdef,
        verneed_count: dsos_with_needs.len() as u32,
        verneed,
    }
}

/// `.gnu.version_d`: one entry per version the version script defines (index 1 the base),
/// each naming its parents; names go to `strtab`.
fn encode_verdef(ctx: &Context, strtab: &mut StrTab) -> Vec<u8> {
    let mut verdef = Vec::new();
    let n = ctx.versions.defs.len();
    for (i, (name, parents)) in ctx.versions.defs.iter().enumerate() {
        let names: Vec<&String> = std::iter::once(name).chain(parents.iter()).collect();
        verdef.extend_from_slice(&1u16.to_le_bytes());
        verdef.extend_from_slice(&(if i == 0 { 1u16 } else { 0 }).to_le_bytes());
        verdef.extend_from_slice(&(i as u16 + 1).to_le_bytes());
        verdef.extend_from_slice(&(names.len() as u16).to_le_bytes());
        verdef.extend_from_slice(&sysv_hash(name.as_bytes()).to_le_bytes());
        verdef.extend_from_slice(&20u32.to_le_bytes());
        let next = if i + 1 == n {
            0
        } else {
            20 + 8 * names.len() as u32
        };
        verdef.extend_from_slice(&next.to_le_bytes());
        for (k, n) in names.iter().enumerate() {
            let off = strtab.add(n.as_bytes());
            verdef.extend_from_slice(&off.to_le_bytes());
            let next = if k + 1 == names.len() { 0u32 } else { 8 };
            verdef.extend_from_slice(&next.to_le_bytes());
        }
    }
    verdef
}

/// `.gnu.version_r`: per shared library with needed versions (`vernaux`: library, its
/// version index, ours), the versions; names go to `strtab`. Returns the bytes and the
/// libraries.
fn encode_verneed(
    res: &crate::resolve::Resolution,
    vernaux: &[(u32, u16, u16)],
    strtab: &mut StrTab,
) -> (Vec<u8>, Vec<u32>) {
    let mut verneed = Vec::new();
    let mut dsos_with_needs: Vec<u32> = vernaux.iter().map(|v| v.0).collect();
    dsos_with_needs.dedup();
    dsos_with_needs.sort();
    dsos_with_needs.dedup();
    for (n, &dso) in dsos_with_needs.iter().enumerate() {
        let d = &res.dsos[dso as usize].dso;
        let auxes: Vec<&(u32, u16, u16)> = vernaux.iter().filter(|v| v.0 == dso).collect();
        let file = strtab.add(d.soname.as_bytes());
        let last = n + 1 == dsos_with_needs.len();
        verneed.extend_from_slice(&1u16.to_le_bytes());
        verneed.extend_from_slice(&(auxes.len() as u16).to_le_bytes());
        verneed.extend_from_slice(&file.to_le_bytes());
        verneed.extend_from_slice(&16u32.to_le_bytes());
        let next = if last {
            0
        } else {
            16 + 16 * auxes.len() as u32
        };
        verneed.extend_from_slice(&next.to_le_bytes());
        for (k, &&(_, dv, ours)) in auxes.iter().enumerate() {
            let name = d.versions[dv as usize].as_bytes();
            let name_off = strtab.add(name);
            verneed.extend_from_slice(&sysv_hash(name).to_le_bytes());
            verneed.extend_from_slice(&0u16.to_le_bytes());
            verneed.extend_from_slice(&ours.to_le_bytes());
            verneed.extend_from_slice(&name_off.to_le_bytes());
            let next = if k + 1 == auxes.len() { 0u32 } else { 16 };
            verneed.extend_from_slice(&next.to_le_bytes());
        }
    }
    (verneed, dsos_with_needs)
}

/// `.gnu.hash`: header, bloom filter, buckets, chains, for `hashed_sorted` ((hash, symbol),
/// grouped by bucket), whose first is `.dynsym` entry `first_hashed`.
fn gnu_hash_table(hashed_sorted: &[(u32, SymbolId)], n_buckets: u32, first_hashed: u32) -> Vec<u8> {
    let n_hashed = hashed_sorted.len();
    let bloom_words = ((n_hashed * 12 / 64).max(1)).next_power_of_two();
    let shift = 26u32;
    let mut bloom = vec![0u64; bloom_words];
    let mut buckets = vec![0u32; n_buckets as usize];
    let mut chains = vec![0u32; n_hashed];
    for (i, &(h, _)) in hashed_sorted.iter().enumerate() {
        let word = (h as usize / 64) % bloom_words;
        bloom[word] |= 1u64 << (h % 64);
        bloom[word] |= 1u64 << ((h >> shift) % 64);
        let b = (h % n_buckets) as usize;
        if buckets[b] == 0 {
            buckets[b] = first_hashed + i as u32;
        }
        let last_in_bucket = hashed_sorted
            .get(i + 1)
            .is_none_or(|&(next, _)| next % n_buckets != h % n_buckets);
        chains[i] = (h & !1) | u32::from(last_in_bucket);
    }
    let mut gnu = Vec::new();
    for v in [n_buckets, first_hashed, bloom_words as u32, shift] {
        gnu.extend_from_slice(&v.to_le_bytes());
    }
    for w in &bloom {
        gnu.extend_from_slice(&w.to_le_bytes());
    }
    for v in buckets.iter().chain(chains.iter()) {
        gnu.extend_from_slice(&v.to_le_bytes());
    }
    gnu
}

/// `.hash` (SysV): every `.dynsym` entry (`dynsyms`, after the null one).
fn sysv_hash_table(res: &crate::resolve::Resolution, dynsyms: &[SymbolId]) -> Vec<u8> {
    let n_entries = dynsyms.len() as u32 + 1;
    let n_sysv_buckets = (n_entries / 2).max(1);
    let mut sysv_buckets = vec![0u32; n_sysv_buckets as usize];
    let mut sysv_chains = vec![0u32; n_entries as usize];
    for (i, &id) in dynsyms.iter().enumerate() {
        let index = i as u32 + 1;
        let b = (sysv_hash(dynamic_name(res.symbols.get(id).name)) % n_sysv_buckets) as usize;
        sysv_chains[index as usize] = sysv_buckets[b];
        sysv_buckets[b] = index;
    }
    let mut sysv = Vec::new();
    for v in [n_sysv_buckets, n_entries]
        .iter()
        .chain(sysv_buckets.iter())
        .chain(sysv_chains.iter())
    {
        sysv.extend_from_slice(&v.to_le_bytes());
    }
    sysv
}

/// A `.dynamic` entry's value, resolved by the writer once addresses are known.
#[derive(Clone, Copy, Debug)]
pub enum DynValue {
    Const(u64),
    /// Address of an output section.
    Addr(&'static str),
    /// Size of an output section.
    Size(&'static str),
    /// Address of a symbol.
    Sym(SymbolId),
}

/// DT_RELR's tags (gABI; `object` lacks them).
const DT_RELRSZ: u32 = 35;
const DT_RELR: u32 = 36;
const DT_RELRENT: u32 = 37;

/// The `.dynamic` entries, in order. `present` says whether an output section exists; the
/// counts are `.rela.dyn`'s and `.rela.plt`'s entries and the RELATIVE ones among the first.
pub fn tags(
    ctx: &Context,
    tables: &DynamicTables,
    present: &dyn Fn(&str) -> bool,
    counts: (u64, u64, u64),
    textrel: bool,
) -> Vec<(u32, DynValue)> {
    let mut t = Vec::new();
    library_tags(ctx, tables, &mut t);
    init_fini_tags(ctx, present, &mut t);
    symbol_table_tags(ctx, present, &mut t);
    relocation_tags(counts, &mut t);
    flags_tags(ctx, textrel, &mut t);
    version_tags(tables, &mut t);
    relr_and_end_tags(ctx, present, &mut t);
    t
}

/// DT_NEEDED, DT_SONAME (shared outputs), DT_RUNPATH or DT_RPATH, and the other string-valued
/// entries of `tables.string_tags`.
fn library_tags(ctx: &Context, tables: &DynamicTables, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    for &n in &tables.needed {
        t.push((elf::DT_NEEDED, Const(u64::from(n))));
    }
    if let (Some(s), OutputKind::Shared) = (tables.soname, ctx.kind) {
        t.push((elf::DT_SONAME, Const(u64::from(s))));
    }
    if let Some(r) = tables.runpath {
        let tag = if ctx.config.new_dtags {
            elf::DT_RUNPATH
        } else {
            elf::DT_RPATH
        };
        t.push((tag, Const(u64::from(r))));
    }
    for &(tag, offset) in &tables.string_tags {
        t.push((tag, Const(u64::from(offset))));
    }
}

/// DT_INIT/DT_FINI (the `-init`/`-fini` functions, else `_init`/`_fini` when `.init`/`.fini`
/// exist) and the address and size of each `.preinit_array`/`.init_array`/`.fini_array`.
fn init_fini_tags(ctx: &Context, present: &dyn Fn(&str) -> bool, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    let config = ctx.config;
    let defined = |name: &[u8]| {
        ctx.res
            .symbols
            .lookup(name)
            .filter(|&id| matches!(ctx.res.symbols.get(id).def, Def::Defined { .. }))
    };
    // `_init`/`_fini` when `.init`/`.fini` exist; `-init`/`-fini` name any function.
    for (named, default, section, tag) in [
        (&config.init, "_init", ".init", elf::DT_INIT),
        (&config.fini, "_fini", ".fini", elf::DT_FINI),
    ] {
        let id = match named {
            Some(name) => defined(name.as_bytes()),
            None => defined(default.as_bytes()).filter(|_| present(section)),
        };
        if let Some(id) = id {
            t.push((tag, Sym(id)));
        }
    }
    for (name, addr_tag, size_tag) in [
        (
            ".preinit_array",
            elf::DT_PREINIT_ARRAY,
            elf::DT_PREINIT_ARRAYSZ,
        ),
        (".init_array", elf::DT_INIT_ARRAY, elf::DT_INIT_ARRAYSZ),
        (".fini_array", elf::DT_FINI_ARRAY, elf::DT_FINI_ARRAYSZ),
    ] {
        if present(name) {
            t.push((addr_tag, Addr(name)));
            t.push((size_tag, Size(name)));
        }
    }
}

/// The hash tables, `.dynstr` and `.dynsym` entries, and DT_DEBUG for executables.
fn symbol_table_tags(ctx: &Context, present: &dyn Fn(&str) -> bool, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    if present(".gnu.hash") {
        t.push((elf::DT_GNU_HASH, Addr(".gnu.hash")));
    }
    if present(".hash") {
        t.push((elf::DT_HASH, Addr(".hash")));
    }
    t.push((elf::DT_STRTAB, Addr(".dynstr")));
    t.push((elf::DT_SYMTAB, Addr(".dynsym")));
    t.push((elf::DT_STRSZ, Size(".dynstr")));
    t.push((elf::DT_SYMENT, Const(24)));
    if ctx.kind.is_executable() {
        t.push((elf::DT_DEBUG, Const(0)));
    }
}

/// The `.rela.plt` and `.rela.dyn` entries (with DT_RELACOUNT), from the counts of
/// `.rela.dyn`'s and `.rela.plt`'s entries and the RELATIVE ones among the first.
fn relocation_tags(
    (n_rela_dyn, n_rela_plt, n_relative): (u64, u64, u64),
    t: &mut Vec<(u32, DynValue)>,
) {
    use DynValue::*;
    if n_rela_plt > 0 {
        t.push((elf::DT_PLTGOT, Addr(".got.plt")));
        t.push((elf::DT_PLTRELSZ, Size(".rela.plt")));
        t.push((elf::DT_PLTREL, Const(u64::from(elf::DT_RELA))));
        t.push((elf::DT_JMPREL, Addr(".rela.plt")));
    }
    if n_rela_dyn > 0 {
        t.push((elf::DT_RELA, Addr(".rela.dyn")));
        t.push((elf::DT_RELASZ, Size(".rela.dyn")));
        t.push((elf::DT_RELAENT, Const(24)));
        if n_relative > 0 {
            t.push((elf::DT_RELACOUNT, Const(n_relative)));
        }
    }
}

/// DT_TEXTREL when there are text relocations, then DT_FLAGS and DT_FLAGS_1 when any of
/// their bits is set.
fn flags_tags(ctx: &Context, textrel: bool, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    let config = ctx.config;
    let mut flags = 0;
    let mut flags_1 = 0;
    // Text relocations (see `layout::scan::text_relocations`): DT_TEXTREL and DF_TEXTREL, as GNU
    // ld writes both.
    if textrel {
        t.push((elf::DT_TEXTREL, Const(0)));
        flags |= elf::DF_TEXTREL;
    }
    if config.z.now {
        flags |= elf::DF_BIND_NOW;
        flags_1 |= elf::DF_1_NOW;
    }
    if config.z.origin {
        flags |= elf::DF_ORIGIN;
        flags_1 |= elf::DF_1_ORIGIN;
    }
    // DT_SYMBOLIC makes the loader bind every reference to the library's own definitions:
    // not when --export-dynamic-symbol or a dynamic list keeps some preemptible (GNU ld
    // leaves it out too: a dynamic list cancels -Bsymbolic).
    if config.bsymbolic
        && ctx.kind == OutputKind::Shared
        && ctx.versions.export_dynamic.is_empty()
        && !ctx.versions.has_dynamic_list
    {
        flags |= elf::DF_SYMBOLIC;
    }
    if matches!(ctx.kind, OutputKind::DynPie | OutputKind::StaticPie) {
        flags_1 |= elf::DF_1_PIE;
    }
    if config.z.nodelete {
        flags_1 |= elf::DF_1_NODELETE;
    }
    if config.z.nodlopen {
        flags_1 |= elf::DF_1_NOOPEN;
    }
    if config.z.initfirst {
        flags_1 |= elf::DF_1_INITFIRST;
    }
    if config.z.interpose {
        flags_1 |= elf::DF_1_INTERPOSE;
    }
    flags_1 |= config.z.extra_flags_1;
    if flags != 0 {
        t.push((elf::DT_FLAGS, Const(u64::from(flags))));
    }
    if flags_1 != 0 {
        t.push((elf::DT_FLAGS_1, Const(u64::from(flags_1))));
    }
}

/// The `.gnu.version`, `.gnu.version_d` and `.gnu.version_r` entries, when those tables
/// have contents.
fn version_tags(tables: &DynamicTables, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    if !tables.versym.is_empty() {
        t.push((elf::DT_VERSYM, Addr(".gnu.version")));
    }
    if tables.verdef_count > 0 {
        t.push((elf::DT_VERDEF, Addr(".gnu.version_d")));
        t.push((elf::DT_VERDEFNUM, Const(u64::from(tables.verdef_count))));
    }
    if tables.verneed_count > 0 {
        t.push((elf::DT_VERNEED, Addr(".gnu.version_r")));
        t.push((elf::DT_VERNEEDNUM, Const(u64::from(tables.verneed_count))));
    }
}

/// The `.relr.dyn` entries when it exists, then the DT_NULL end and the spare DT_NULLs.
fn relr_and_end_tags(ctx: &Context, present: &dyn Fn(&str) -> bool, t: &mut Vec<(u32, DynValue)>) {
    use DynValue::*;
    if present(".relr.dyn") {
        t.push((DT_RELR, Addr(".relr.dyn")));
        t.push((DT_RELRSZ, Size(".relr.dyn")));
        t.push((DT_RELRENT, Const(8)));
    }
    // The end, and room for tools that add entries later (patchelf, prelink).
    for _ in 0..ctx.config.spare_dynamic_tags.max(1) {
        t.push((elf::DT_NULL, Const(0)));
    }
}
