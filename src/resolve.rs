//! Phase 2: symbol resolution. Loads objects in command-line order, extracts archive members
//! that satisfy undefined references (GNU ld's rule: an archive only serves references seen
//! before it, except within a group, which is rescanned until nothing new is pulled), picks
//! one copy of each COMDAT group, and resolves strong, weak and common definitions.
//!
//! After this phase no new symbols or files are added. Undefined symbols are not reported
//! here: only those referenced from sections that survive garbage collection are errors.

use crate::args::Config;
use crate::input::dso::SharedObject;
use crate::input::elf::{classify, ElfKind, ObjectFile, LE};
use crate::input::search::FileSpec;
use crate::input::{map_file, Archive};
use crate::symbols::{merge_visibility, Def, FileId, SymbolDb, SymbolId};
use anyhow::{bail, Context, Result};
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use std::sync::{Condvar, Mutex};

/// A loaded relocatable object and how its symbols map to global ids.
pub struct LoadedObject {
    pub name: String,
    pub obj: ObjectFile,
    /// `SymbolId` of each non-local symbol, indexed by `sym_index - first_global`.
    pub global_ids: Vec<SymbolId>,
    /// Sections dropped because another file's copy of their COMDAT group was kept.
    pub comdat_discarded: Vec<bool>,
    /// Where it came from: the input's position on the command line and, for an archive
    /// member, its index in the archive (`u32::MAX` for a plain object). The incremental
    /// state names objects this way, never by path.
    pub origin: (u32, u32),
    /// The object's bytes (a slice of the input's mapping).
    pub data: &'static [u8],
}

impl LoadedObject {
    pub fn global_id(&self, sym_index: usize) -> Option<SymbolId> {
        sym_index
            .checked_sub(self.obj.first_global)
            .and_then(|i| self.global_ids.get(i).copied())
    }
}

pub struct LoadedDso {
    pub dso: SharedObject,
    /// `--as-needed` was in force: record DT_NEEDED only if a symbol is used.
    pub as_needed: bool,
}

pub struct Resolution {
    pub objects: Vec<LoadedObject>,
    pub dsos: Vec<LoadedDso>,
    /// Plain names defined as aliases of `name@@VERSION` definitions (`.symver`): they
    /// resolve references inside the output but are not exported under the plain name.
    pub symver_aliases: rustc_hash::FxHashSet<SymbolId>,
    pub symbols: SymbolDb,
    /// Duplicate strong definitions: symbol, first file, second file.
    pub duplicates: Vec<(SymbolId, FileId, FileId)>,
    /// Where each symbol defined by an object is, by [`SymbolId`]: the answer to most
    /// relocations, read from one small array instead of the symbol, the defining object
    /// and its symbol table.
    pub defined_at: Vec<DefinedAt>,
    /// Their `st_size`, by [`SymbolId`] (0 for other symbols): for `.symtab`, which
    /// would otherwise read every defining object's symbol table again.
    pub defined_size: Vec<u64>,
    /// Incremental mode: per input, the hash of an archive's symbol index
    /// ([`IncrementalHooks::armap_hash`]), 0 for other inputs; empty otherwise.
    pub armaps: Vec<u64>,
    /// Objects an LTO plugin claimed (`lto`): each stand-in object, and the plugin's handle.
    pub ir_files: Vec<(FileId, usize)>,
    /// Linker-defined symbols whose value is a plain number (`--defsym x=0x10`, a script's
    /// `x = 0x10;` outside output sections): SHN_ABS in the symbol table, as GNU ld lists
    /// them. (References to them are still relocated as addresses in a PIE, as GNU ld's
    /// are.)
    pub absolute: rustc_hash::FxHashMap<SymbolId, u64>,
    /// `--why-extract`: (reference, extracted archive member, symbol) per extraction, in
    /// order; empty without the option.
    pub why_extract: Vec<(String, String, String)>,
}

impl Resolution {
    /// Where symbol `id` is defined, and its size, if an object defines it (and its section
    /// index fits [`DefinedAt`]): from the per-symbol tables, without reading the defining
    /// object's symbol table.
    pub fn defined(&self, id: SymbolId) -> Option<(DefinedAt, u64)> {
        let at = *self.defined_at.get(id.0 as usize)?;
        (at.file != u32::MAX).then(|| (at, self.defined_size[id.0 as usize]))
    }
}

/// A `Def::Defined` symbol's section, value and type, as its object's symbol table gives
/// them; `file == u32::MAX` for any other symbol (and for section indexes of 2^24 and up,
/// which `shndx_type` cannot hold).
#[derive(Clone, Copy, Debug)]
pub struct DefinedAt {
    pub file: u32,
    /// Section index in the low 24 bits, `st_info` (binding and type) above.
    shndx_type: u32,
    pub value: u64,
}

impl DefinedAt {
    const NONE: DefinedAt = DefinedAt {
        file: u32::MAX,
        shndx_type: 0,
        value: 0,
    };

    pub fn shndx(self) -> u32 {
        self.shndx_type & 0xff_ffff
    }

    pub fn st_type(self) -> u8 {
        (self.shndx_type >> 24) as u8 & 0xf
    }

    /// `STB_GNU_UNIQUE` (C++ inline and template statics, one copy per process even across
    /// libraries loaded with RTLD_LOCAL): the output keeps the binding, as GNU ld does.
    pub fn is_unique(self) -> bool {
        (self.shndx_type >> 28) as u8 == elf::STB_GNU_UNIQUE
    }

    /// For each symbol of `symbols`, with its size.
    pub(crate) fn table(
        symbols: &SymbolDb,
        objects: &[LoadedObject],
    ) -> (Vec<DefinedAt>, Vec<u64>) {
        symbols
            .symbols
            .par_iter()
            .with_min_len(1024)
            .map(|symbol| match symbol.def {
                Def::Defined { file, sym, .. } => {
                    let obj = &objects[file.0 as usize].obj;
                    let shndx = obj.symbol_shndx(sym as usize);
                    let st = &obj.symbols[sym as usize];
                    if shndx >= 1 << 24 {
                        return (DefinedAt::NONE, 0);
                    }
                    let at = DefinedAt {
                        file: file.0,
                        shndx_type: shndx | u32::from(st.st_info) << 24,
                        value: st.st_value.get(LE),
                    };
                    (at, st.st_size.get(LE))
                }
                _ => (DefinedAt::NONE, 0),
            })
            .unzip()
    }
}

enum Loaded {
    Object {
        name: String,
        data: &'static [u8],
        parsed: Option<Result<ObjectFile>>,
    },
    Shared {
        name: String,
        /// Its DT_NEEDED name when it has no DT_SONAME.
        needed_name: String,
        data: &'static [u8],
        as_needed: bool,
    },
    Archive {
        archive: Archive,
        whole: bool,
        extracted: Vec<bool>,
        /// Each ELF member, parsed ahead (in parallel); taken when the member is added.
        parsed: Vec<Option<Result<ObjectFile>>>,
    },
}

/// Whether an archive member is something to link: an ELF file, or LLVM bitcode for the LTO
/// plugin (`ar` of `clang -flto` objects; rustc's `-Clinker-plugin-lto` staticlibs).
fn is_object(member: &[u8]) -> bool {
    member.starts_with(b"\x7fELF") || crate::input::is_bitcode(member)
}

/// Maps and classifies one input; parses an object, or an archive and all its ELF members
/// (parsing every member on two threads costs less than parsing the needed ones on one,
/// measured on ripgrep: 464 members, 160 of them used) or, if `members` says which members
/// the link is expected to use (an incremental update knows), those; others are parsed if
/// they turn out to be needed.
fn load(spec: &FileSpec, members: Option<&[u32]>) -> Result<Loaded> {
    let data = map_file(&spec.path)?;
    let name = spec.path.display().to_string();
    if data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n") {
        let archive = Archive::parse(&spec.path, data).with_context(|| name.clone())?;
        let n = archive.members.len();
        let parse = |m: &crate::input::ArchiveMember| {
            (m.data.starts_with(b"\x7fELF")
                && classify(m.data).is_ok_and(|k| k == ElfKind::Relocatable))
            .then(|| ObjectFile::parse(m.data))
        };
        let parsed = match members {
            None => archive
                .members
                .par_iter()
                .with_max_len(1)
                .map(parse)
                .collect(),
            Some(wanted) => {
                let mut parsed: Vec<Option<Result<ObjectFile>>> = (0..n).map(|_| None).collect();
                let done: Vec<(usize, Option<Result<ObjectFile>>)> = wanted
                    .par_iter()
                    .with_max_len(1)
                    .filter(|&&m| (m as usize) < n)
                    .map(|&m| (m as usize, parse(&archive.members[m as usize])))
                    .collect();
                for (m, p) in done {
                    parsed[m] = p;
                }
                parsed
            }
        };
        Ok(Loaded::Archive {
            archive,
            whole: spec.modifiers.whole_archive,
            extracted: vec![false; n],
            parsed,
        })
    } else if crate::input::is_bitcode(data) {
        Ok(Loaded::Object {
            name,
            data,
            parsed: None,
        })
    } else if data.starts_with(b"\x7fELF") {
        match classify(data).with_context(|| name.clone())? {
            ElfKind::Relocatable => Ok(Loaded::Object {
                name,
                data,
                parsed: Some(ObjectFile::parse(data)),
            }),
            ElfKind::Shared => Ok(Loaded::Shared {
                // DT_NEEDED for a library without DT_SONAME, as GNU ld names it: the file
                // name of one found by `-l`, the path as written of one named directly
                // (`cc dir/main.o dir/c.so` records `dir/c.so`).
                needed_name: match spec.origin.starts_with("-l") {
                    true => spec
                        .path
                        .file_name()
                        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned()),
                    false => name.clone(),
                },
                name,
                data,
                as_needed: spec.modifiers.as_needed,
            }),
        }
    } else {
        bail!("{name}: unknown file type");
    }
}

/// `members`: per input (by position), the archive members expected to be used (see
/// [`load`]).
pub fn resolve(config: &Config, specs: &[FileSpec], hooks: IncrementalHooks) -> Result<Resolution> {
    resolve_with(config, specs, hooks, None)
}

/// What incremental linking asks of a resolution (`crate::incremental` provides both).
#[derive(Clone, Copy, Default)]
pub struct IncrementalHooks<'a> {
    /// The archive members the link is expected to use, by input position: parsed ahead,
    /// others only when they turn out to be needed.
    pub members: Option<&'a HashMap<u32, Vec<u32>>>,
    /// A hash of an archive's symbol index, recorded per input in `Resolution::armaps`.
    pub armap_hash: Option<fn(&crate::input::Archive) -> u64>,
}

/// The second resolution of an LTO link, with the plugin's objects at the end of `specs`
/// and the claimed files left out: as GNU ld does, the archive members the first
/// resolution (`first`) extracted stay in, at their archive's place, even those that only
/// IR code wanted; then the archives are searched again for what the plugin's objects
/// refer to.
pub fn resolve_after_lto(
    config: &Config,
    specs: &[FileSpec],
    first: &Resolution,
) -> Result<Resolution> {
    let ir: rustc_hash::FxHashSet<u32> = first.ir_files.iter().map(|&(f, _)| f.0).collect();
    let mut kept: HashMap<u32, Vec<u32>> = HashMap::default();
    for (f, object) in first.objects.iter().enumerate() {
        let (input, member) = object.origin;
        if member != u32::MAX && !ir.contains(&(f as u32)) {
            kept.entry(input).or_default().push(member);
        }
    }
    for members in kept.values_mut() {
        members.sort_unstable();
    }
    resolve_with(config, specs, IncrementalHooks::default(), Some(&kept))
}

/// Resolution, with `kept` archive members (by input position) extracted whether wanted or
/// not (see [`resolve_after_lto`]).
fn resolve_with(
    config: &Config,
    specs: &[FileSpec],
    hooks: IncrementalHooks,
    kept: Option<&HashMap<u32, Vec<u32>>>,
) -> Result<Resolution> {
    let members = hooks.members;
    let mut steps = crate::PhaseTimer::new(config.time);
    // Inputs are loaded on all threads, in command-line order, while this thread resolves
    // those already loaded (and loads too, while it waits for the next one): the serial
    // resolution overlaps the parallel loading. The first failure in command-line order is
    // the one reported.
    let arrivals = Arrivals {
        slots: (0..specs.len()).map(|_| Mutex::new(None)).collect(),
        signal: (Mutex::new(()), Condvar::new()),
    };
    let state = rayon::scope_fifo(|scope| {
        for (i, spec) in specs.iter().enumerate() {
            let arrivals = &arrivals;
            scope.spawn_fifo(move |_| {
                let wanted = members.map(|m| m.get(&(i as u32)).map_or(&[][..], |v| &v[..]));
                // A panic must still deliver something: the resolving thread waits for it.
                let item =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(spec, wanted)))
                        .unwrap_or_else(|_| {
                            Err(anyhow::anyhow!(
                                "internal error while reading {}",
                                spec.path.display()
                            ))
                        });
                arrivals.deliver(i, item);
            });
        }
        resolve_loaded(config, specs, &arrivals, kept)
    });
    let (mut state, loaded) = state?;
    steps.step("load, symbols");

    // Archive members parsed ahead but not used: their pages (headers, symbol and string
    // tables) will not be read again, and would count in the link's peak memory.
    for item in &loaded {
        if let Loaded::Archive {
            archive, extracted, ..
        } = item
        {
            archive.release_unused(extracted);
        }
    }
    steps.step("release");
    let armaps = match hooks.armap_hash {
        Some(armap_hash) => loaded
            .par_iter()
            .map(|item| match item {
                Loaded::Archive { archive, .. } => armap_hash(archive),
                _ => 0,
            })
            .collect(),
        None => Vec::new(),
    };
    let absolute = define_linker_symbols(config, &mut state);
    let symver_aliases = symver_aliases(&mut state);
    steps.step("aliases");
    undo_dropped_libraries(&mut state);
    let (defined_at, defined_size) = DefinedAt::table(&state.symbols, &state.objects);
    steps.step("defined-at");
    Ok(Resolution {
        defined_at,
        defined_size,
        objects: state.objects,
        dsos: state.dsos,
        symver_aliases,
        symbols: state.symbols,
        duplicates: state.duplicates,
        armaps,
        ir_files: state.ir_files,
        absolute,
        why_extract: state.why_extract.map_or_else(Vec::new, |w| w.records),
    })
}

/// The symbols `--defsym` and a linker script's assignments define (overriding any other
/// definition, as GNU ld's do; PROVIDE only where something refers to the symbol and nothing
/// defines it). Returns those whose value is a plain number.
fn define_linker_symbols(
    config: &Config,
    state: &mut Resolver,
) -> rustc_hash::FxHashMap<SymbolId, u64> {
    let mut absolute = rustc_hash::FxHashMap::default();
    // --defsym defines its symbol, overriding any other definition (as GNU ld does).
    for (name, expr) in &config.defsym {
        if let Some((None, value)) = crate::args::parse_defsym(expr) {
            absolute.insert(leak_name(name), value as u64);
        }
        let id = state.symbols.intern(leak_name(name));
        state.symbols.get_mut(id).def = Def::Synthetic;
    }
    // A linker script's assignments define their symbols like --defsym; PROVIDE only the
    // symbols something refers to and nothing defines.
    if let Some(script) = &config.script {
        use crate::script::AssignMode;
        // (Names with a space are the script's own: an OVERLAY's hidden symbols.)
        for a in script.assignments().filter(|a| !a.symbol.starts_with(' ')) {
            let provide = matches!(a.provide, AssignMode::Provide | AssignMode::ProvideHidden);
            let id = if provide {
                match state.symbols.lookup(a.symbol.as_bytes()) {
                    Some(id) if state.symbols.get(id).def == Def::Undefined => id,
                    _ => continue,
                }
            } else {
                state.symbols.intern(leak_name(&a.symbol))
            };
            let sym = state.symbols.get_mut(id);
            sym.def = Def::Synthetic;
            if matches!(a.provide, AssignMode::Hidden | AssignMode::ProvideHidden) {
                sym.visibility = elf::STV_HIDDEN;
            }
        }
    }
    // (The last assignment of a symbol decides whether it is a plain number.)
    let mut absolute_names: Vec<(&'static [u8], Option<u64>)> =
        absolute.into_iter().map(|(n, v)| (n, Some(v))).collect();
    if let Some(script) = &config.script {
        for (name, value) in script.final_values() {
            absolute_names.push((leak_name(name), value));
        }
    }
    let mut absolute = rustc_hash::FxHashMap::default();
    for (name, value) in absolute_names {
        if let Some(id) = state.symbols.lookup(name) {
            match value {
                Some(v) if state.symbols.get(id).def == Def::Synthetic => {
                    absolute.insert(id, v);
                }
                _ => {
                    absolute.remove(&id);
                }
            }
        }
    }
    absolute
}

/// `foo@@VER` also defines `foo` for references within this link. Returns the plain names
/// so defined.
fn symver_aliases(state: &mut Resolver) -> rustc_hash::FxHashSet<SymbolId> {
    // Such names come from objects that have versioned names (noted at parse time); they
    // are taken in symbol order, as a walk over all symbols would.
    let mut symver_aliases = rustc_hash::FxHashSet::default();
    let mut versioned: Vec<SymbolId> = state
        .objects
        .iter()
        .filter(|o| o.obj.versioned)
        .flat_map(|o| o.global_ids.iter().copied())
        .collect();
    versioned.sort_unstable();
    versioned.dedup();
    let double_at = memchr::memmem::Finder::new(b"@@");
    for id in versioned {
        let symbol = state.symbols.get(id);
        if !matches!(symbol.def, Def::Defined { .. }) {
            continue;
        }
        let Some(at) = double_at.find(symbol.name) else {
            continue;
        };
        let (def, base) = (symbol.def, &symbol.name[..at]);
        let alias = state.symbols.intern(base);
        let a = state.symbols.get_mut(alias);
        if matches!(a.def, Def::Undefined | Def::Shared { .. }) {
            a.def = def;
            symver_aliases.insert(alias);
        }
    }
    symver_aliases
}

/// Loaded inputs, by command-line position, as loading tasks deliver them.
struct Arrivals {
    slots: Vec<Mutex<Option<Result<Loaded>>>>,
    /// Notified at each delivery.
    signal: (Mutex<()>, Condvar),
}

impl Arrivals {
    fn deliver(&self, i: usize, item: Result<Loaded>) {
        *lock(&self.slots[i]) = Some(item);
        let _guard = lock(&self.signal.0);
        self.signal.1.notify_all();
    }

    /// Input `i`, once loaded; meanwhile this thread runs other loading tasks.
    fn take(&self, i: usize) -> Result<Loaded> {
        loop {
            if let Some(item) = lock(&self.slots[i]).take() {
                return item;
            }
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            // Nothing to run: input `i` is being loaded by another thread. The time-out
            // covers a delivery between the check above and the wait.
            let guard = lock(&self.signal.0);
            let _ = self
                .signal
                .1
                .wait_timeout(guard, std::time::Duration::from_micros(200));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolution proper, serial: inputs in command-line order, as they arrive.
fn resolve_loaded(
    config: &Config,
    specs: &[FileSpec],
    arrivals: &Arrivals,
    kept: Option<&HashMap<u32, Vec<u32>>>,
) -> Result<(Resolver, Vec<Loaded>)> {
    let mut wrap = HashMap::default();
    for name in &config.wrap {
        let plain = leak_name(name);
        wrap.insert(plain, leak_name(&format!("__wrap_{name}")));
        wrap.insert(leak_name(&format!("__real_{name}")), plain);
    }
    let mut state = Resolver {
        wrap,
        objects: Vec::new(),
        dsos: Vec::new(),
        symbols: SymbolDb::default(),
        comdat: HashMap::default(),
        duplicates: Vec::new(),
        input: 0,
        ir_files: Vec::new(),
        warn_common: config.warn_common,
        why_extract: config.why_extract.is_some().then(WhyExtract::default),
    };
    for name in &config.undefined {
        let id = state.symbols.intern(leak_name(name));
        state.symbols.get_mut(id).strong_ref = true;
        if let Some(why) = &mut state.why_extract {
            why.referrer
                .entry(id)
                .or_insert_with(|| "--undefined".to_string());
        }
    }
    // --defsym: the symbols its expressions name are needed (they may pull archive members).
    for (_, expr) in &config.defsym {
        if let Some((Some(target), _)) = crate::args::parse_defsym(expr) {
            let id = state.symbols.intern(leak_name(&target));
            state.symbols.get_mut(id).strong_ref = true;
        }
    }
    if !config.relocatable {
        let entry = config.entry.as_deref().unwrap_or("_start");
        let id = state.symbols.intern(leak_name(entry));
        state.symbols.get_mut(id).strong_ref = true;
    }

    let mut loaded: Vec<Loaded> = Vec::with_capacity(specs.len());
    let mut i = 0;
    while i < specs.len() {
        let group = specs[i].group;
        let mut end = i + 1;
        if group.is_some() {
            while end < specs.len() && specs[end].group == group {
                end += 1;
            }
        }
        while loaded.len() < end {
            loaded.push(arrivals.take(loaded.len())?);
        }
        // Objects and whole archives first, in order; then scan the archives until no member
        // is added (a single archive outside a group is scanned the same way).
        for (k, item) in loaded[i..end].iter_mut().enumerate() {
            state.input = (i + k) as u32;
            state.load_eagerly(item)?;
            if let Some(members) = kept.and_then(|kept| kept.get(&state.input)) {
                state.extract(item, members)?;
            }
        }
        loop {
            let mut progress = false;
            for (k, item) in loaded[i..end].iter_mut().enumerate() {
                state.input = (i + k) as u32;
                progress |= state.scan_archive(item)?;
            }
            if !progress || end - i == 1 {
                break;
            }
        }
        i = end;
    }
    if kept.is_some() {
        // After LTO, GNU ld searches every archive again for the references of the
        // plugin's objects (libcalls the code generator introduced, say).
        loop {
            let mut progress = false;
            for (k, item) in loaded.iter_mut().enumerate() {
                state.input = k as u32;
                progress |= state.scan_archive(item)?;
            }
            if !progress {
                break;
            }
        }
    }
    Ok((state, loaded))
}

fn leak_name(name: &str) -> &'static [u8] {
    Box::leak(name.as_bytes().to_vec().into_boxed_slice())
}

/// An `--as-needed` library that no regular object refers to without `weak` gets no
/// DT_NEEDED; as GNU ld undoes such a library's symbols, the symbols only it defined are
/// undefined again (weak references then resolve as undefined weak ones: never to a copy
/// relocation or a canonical PLT entry for a library the program will not load).
fn undo_dropped_libraries(state: &mut Resolver) {
    if !state.dsos.iter().any(|d| d.as_needed) {
        return;
    }
    let mut used = vec![false; state.dsos.len()];
    for symbol in &state.symbols.symbols {
        if let (Def::Shared { dso, .. }, true) = (symbol.def, symbol.strong_ref) {
            used[dso as usize] = true;
        }
    }
    for symbol in &mut state.symbols.symbols {
        if let Def::Shared { dso, .. } = symbol.def {
            if state.dsos[dso as usize].as_needed && !used[dso as usize] {
                symbol.def = Def::Undefined;
            }
        }
    }
}

/// GNU ld's `--warn-common` message for a common symbol `sym` meeting another definition
/// (`new` the file being added, `old` the one whose definition stands), or `None` when no
/// common is involved.
fn common_warning(
    sym: &str,
    new: &str,
    old: Option<&str>,
    existing: Def,
    candidate: Def,
) -> Option<String> {
    let old = old?;
    Some(match (existing, candidate) {
        (Def::Common { size: z1, .. }, Def::Common { size: z2, .. }) => match z2.cmp(&z1) {
            std::cmp::Ordering::Equal => format!("{new} and {old}: multiple common of `{sym}'"),
            std::cmp::Ordering::Greater => {
                format!("{new}: common of `{sym}' overriding smaller common from {old}")
            }
            std::cmp::Ordering::Less => {
                format!("{new}: common of `{sym}' overridden by larger common from {old}")
            }
        },
        (Def::Common { .. }, Def::Defined { weak: false, .. }) => {
            format!("{new}: definition of `{sym}' overriding common from {old}")
        }
        (Def::Defined { weak: false, .. }, Def::Common { .. }) => {
            format!("{new}: common of `{sym}' overridden by definition from {old}")
        }
        _ => return None,
    })
}

struct Resolver {
    objects: Vec<LoadedObject>,
    dsos: Vec<LoadedDso>,
    symbols: SymbolDb,
    /// `--wrap=X`: undefined `X` means `__wrap_X`, undefined `__real_X` means `X`.
    wrap: HashMap<&'static [u8], &'static [u8]>,
    comdat: HashMap<&'static [u8], FileId>,
    duplicates: Vec<(SymbolId, FileId, FileId)>,
    /// Position of the input being loaded.
    input: u32,
    ir_files: Vec<(FileId, usize)>,
    /// `--warn-common`: say when a common symbol meets another or a definition.
    warn_common: bool,
    /// `--why-extract`: who referred to each symbol first, and the extractions so far.
    why_extract: Option<WhyExtract>,
}

/// What `--why-extract` reports (lld's option and format).
#[derive(Default)]
struct WhyExtract {
    /// The first file that referred to each symbol (`--undefined` for `-u`).
    referrer: HashMap<SymbolId, String>,
    records: Vec<(String, String, String)>,
}

impl Resolver {
    fn load_eagerly(&mut self, item: &mut Loaded) -> Result<()> {
        match item {
            Loaded::Object { name, data, parsed } => {
                self.add_object(std::mem::take(name), data, u32::MAX, parsed.take())
            }
            Loaded::Shared {
                name,
                needed_name,
                data,
                as_needed,
            } => self.add_shared(name, needed_name, data, *as_needed),
            Loaded::Archive {
                archive,
                whole: true,
                extracted,
                parsed,
            } => {
                for (m, member) in archive.members.iter().enumerate() {
                    if !is_object(member.data) {
                        continue; // rlib metadata and the like
                    }
                    extracted[m] = true;
                    let parsed = parsed[m].take();
                    if let Some(why) = &mut self.why_extract {
                        let record = (
                            "--whole-archive".into(),
                            archive.member_name(m),
                            String::new(),
                        );
                        why.records.push(record);
                    }
                    self.add_member(archive.member_name(m), member.data, m as u32, parsed)?;
                }
                Ok(())
            }
            Loaded::Archive { .. } => Ok(()),
        }
    }

    /// Extracts the given members of an archive (those an LTO link's first resolution
    /// extracted), in archive order.
    fn extract(&mut self, item: &mut Loaded, members: &[u32]) -> Result<()> {
        let Loaded::Archive {
            archive,
            extracted,
            parsed,
            ..
        } = item
        else {
            return Ok(());
        };
        for &m in members {
            let Some(done) = extracted.get_mut(m as usize) else {
                continue;
            };
            if std::mem::replace(done, true) {
                continue;
            }
            let parsed = parsed[m as usize].take();
            let data = archive.members[m as usize].data;
            self.add_member(archive.member_name(m as usize), data, m, parsed)?;
        }
        Ok(())
    }

    /// Extracts members of one archive that define wanted symbols, repeatedly. Returns whether
    /// anything was extracted.
    fn scan_archive(&mut self, item: &mut Loaded) -> Result<bool> {
        let Loaded::Archive {
            archive,
            whole: false,
            extracted,
            parsed,
        } = item
        else {
            return Ok(false);
        };
        let mut any = false;
        loop {
            let mut progress = false;
            for &(name, m, hash) in &archive.index {
                if extracted[m as usize] || !self.symbols.wants(name, hash) {
                    continue;
                }
                extracted[m as usize] = true;
                let member = &archive.members[m as usize];
                if !is_object(member.data) {
                    bail!(
                        "{}: archive member is not an ELF object",
                        archive.member_name(m as usize)
                    );
                }
                let parsed = parsed[m as usize].take();
                if let Some(why) = &mut self.why_extract {
                    let referrer = self
                        .symbols
                        .lookup(name)
                        .and_then(|id| why.referrer.get(&id).cloned())
                        .unwrap_or_default();
                    let symbol = crate::symbols::demangle(name);
                    why.records
                        .push((referrer, archive.member_name(m as usize), symbol));
                }
                self.add_member(archive.member_name(m as usize), member.data, m, parsed)?;
                progress = true;
            }
            if !progress {
                return Ok(any);
            }
            any = true;
        }
    }

    fn add_shared(
        &mut self,
        name: &str,
        needed_name: &str,
        data: &'static [u8],
        as_needed: bool,
    ) -> Result<()> {
        let dso =
            crate::input::dso::parse(name, needed_name, data).with_context(|| name.to_string())?;
        let index = self.dsos.len() as u32;
        for (i, sym) in dso.defined.iter().enumerate() {
            let id = self.symbols.intern(sym.name);
            let symbol = self.symbols.get_mut(id);
            match symbol.def {
                Def::Undefined => {
                    symbol.def = Def::Shared {
                        dso: index,
                        index: i as u32,
                    }
                }
                // Defined here and in a shared object: export ours so that the shared
                // object binds to it too (as GNU ld and lld do).
                Def::Defined { .. } | Def::Common { .. } => symbol.dso_ref = true,
                _ => {}
            }
        }
        for &undefined in &dso.undefined {
            let id = self.symbols.intern(undefined);
            self.symbols.get_mut(id).dso_ref = true;
        }
        self.dsos.push(LoadedDso { dso, as_needed });
        Ok(())
    }

    fn add_member(
        &mut self,
        name: String,
        data: &'static [u8],
        member: u32,
        parsed: Option<Result<ObjectFile>>,
    ) -> Result<()> {
        if crate::input::is_bitcode(data) {
            return self.add_object(name, data, member, None);
        }
        match classify(data).with_context(|| name.clone())? {
            ElfKind::Relocatable => self.add_object(name, data, member, parsed),
            ElfKind::Shared => bail!("{name}: shared object inside an archive"),
        }
    }

    /// Adds an object; `parsed` is its `ObjectFile::parse` result if that ran ahead.
    fn add_object(
        &mut self,
        name: String,
        data: &'static [u8],
        member: u32,
        parsed: Option<Result<ObjectFile>>,
    ) -> Result<()> {
        let bitcode = crate::input::is_bitcode(data);
        let mut parsed = match bitcode {
            true => None,
            false => Some(
                parsed
                    .unwrap_or_else(|| ObjectFile::parse(data))
                    .with_context(|| name.clone())?,
            ),
        };
        if bitcode || parsed.as_ref().is_some_and(|o| o.lto) {
            // Once the plugin has compiled, its objects stand for the IR ones.
            if crate::lto::compiled(data) {
                return Ok(());
            }
            if let Some((handle, obj, stand_in)) = self.offer_to_plugin(&name, data)? {
                self.ir_files
                    .push((FileId(self.objects.len() as u32), handle));
                return self.add_parsed(name, stand_in, member, obj);
            }
            // GCC marks an object with no native code (`-fno-fat-lto-objects`, the default);
            // a fat object without a plugin links its native code.
            let slim = parsed
                .as_ref()
                .is_none_or(|o| o.global_names.iter().any(|(n, _)| *n == b"__gnu_lto_slim"));
            if bitcode {
                bail!(
                    "{name}: file is LLVM bitcode (compiled with clang -flto); link through clang, \
                     which passes its LTO plugin (LLVMgold.so) with -plugin"
                );
            }
            if slim {
                bail!(
                    "{name}: file contains only LTO intermediate code (compiled with -flto); \
                     link through the compiler driver (which passes its LTO plugin with \
                     -plugin) or build with -ffat-lto-objects"
                );
            }
        }
        let obj = parsed.take().expect("parsed above");
        self.add_parsed(name, data, member, obj)
    }

    /// Offers an object with LTO code to the plugin (if there is one): if claimed, the
    /// plugin's handle and the stand-in object of its symbols (see `lto`).
    fn offer_to_plugin(
        &mut self,
        name: &str,
        data: &'static [u8],
    ) -> Result<Option<(usize, ObjectFile, &'static [u8])>> {
        if !crate::lto::claiming()? {
            return Ok(None);
        }
        let Some((handle, stand_in)) = crate::lto::claim(name, data)? else {
            return Ok(None);
        };
        let stand_in: &'static [u8] = stand_in.leak();
        let obj = ObjectFile::parse(stand_in)
            .with_context(|| format!("{name}: the LTO plugin's symbols"))?;
        Ok(Some((handle, obj, stand_in)))
    }

    /// Adds a parsed object's symbols and the object.
    fn add_parsed(
        &mut self,
        name: String,
        data: &'static [u8],
        member: u32,
        obj: ObjectFile,
    ) -> Result<()> {
        let file = FileId(self.objects.len() as u32);
        let mut comdat_discarded = vec![false; obj.shdrs.len()];
        for (signature, members) in &obj.comdat_groups {
            if let Some(&_owner) = self.comdat.get(signature) {
                for &m in members {
                    comdat_discarded[m as usize] = true;
                }
            } else {
                self.comdat.insert(signature, file);
            }
        }
        let mut global_ids = Vec::with_capacity(obj.symbols.len() - obj.first_global);
        for (sym_index, &(sym_name, hash)) in (obj.first_global..).zip(&obj.global_names) {
            let sym = &obj.symbols[sym_index];
            let shndx = obj.symbol_shndx(sym_index);
            let renamed = match self.wrap.get(sym_name) {
                Some(&renamed) if shndx == u32::from(elf::SHN_UNDEF) => Some(renamed),
                _ => None,
            };
            let id = match renamed {
                Some(renamed) => self.symbols.intern(renamed),
                None => self.symbols.intern_hashed(sym_name, hash),
            };
            global_ids.push(id);
            let bind = sym.st_bind();
            let symbol = self.symbols.get_mut(id);
            symbol.visibility = merge_visibility(symbol.visibility, sym.st_other & 3);
            let discarded = shndx != 0
                && shndx < u32::from(elf::SHN_LORESERVE)
                && comdat_discarded
                    .get(shndx as usize)
                    .copied()
                    .unwrap_or(false);
            if shndx == u32::from(elf::SHN_UNDEF) || discarded {
                if bind != elf::STB_WEAK {
                    symbol.strong_ref = true;
                }
                if let Some(why) = &mut self.why_extract {
                    why.referrer.entry(id).or_insert_with(|| name.clone());
                }
                continue;
            }
            if shndx < u32::from(elf::SHN_LORESERVE) && shndx as usize >= obj.shdrs.len() {
                bail!("{name}: symbol {sym_index} is in section {shndx}, which does not exist");
            }
            let candidate = if shndx == u32::from(elf::SHN_COMMON) {
                Def::Common {
                    file,
                    sym: sym_index as u32,
                    size: sym.st_size.get(LE),
                    align: sym.st_value.get(LE).max(1),
                }
            } else {
                Def::Defined {
                    file,
                    sym: sym_index as u32,
                    weak: bind == elf::STB_WEAK,
                }
            };
            let existing = symbol.def;
            if matches!(existing, Def::Shared { .. }) {
                symbol.dso_ref = true;
            }
            if self.warn_common {
                let file_of = |def: Def| match def {
                    Def::Common { file, .. } | Def::Defined { file, .. } => {
                        Some(self.objects[file.0 as usize].name.as_str())
                    }
                    _ => None,
                };
                let sym = crate::symbols::demangle(sym_name);
                if let Some(message) =
                    common_warning(&sym, &name, file_of(existing), existing, candidate)
                {
                    crate::diag::warn(message);
                }
            }
            let symbol = self.symbols.get_mut(id);
            symbol.def = match (existing, candidate) {
                (Def::Undefined | Def::Shared { .. }, c) => c,
                (Def::Defined { weak: true, .. }, c @ Def::Defined { weak: false, .. }) => c,
                (Def::Defined { weak: true, .. }, c @ Def::Common { .. }) => c,
                (Def::Common { .. }, c @ Def::Defined { weak: false, .. }) => c,
                (
                    Def::Common {
                        file: f1,
                        sym: s1,
                        size: z1,
                        align: a1,
                    },
                    Def::Common {
                        file: f2,
                        sym: s2,
                        size: z2,
                        align: a2,
                    },
                ) => {
                    let (file, sym) = if z2 > z1 { (f2, s2) } else { (f1, s1) };
                    Def::Common {
                        file,
                        sym,
                        size: z1.max(z2),
                        align: a1.max(a2),
                    }
                }
                (
                    Def::Defined {
                        weak: false,
                        file: first,
                        ..
                    },
                    Def::Defined { weak: false, .. },
                ) => {
                    self.duplicates.push((id, first, file));
                    existing
                }
                (e, _) => e,
            };
        }
        self.objects.push(LoadedObject {
            name,
            obj,
            global_ids,
            comdat_discarded,
            origin: (self.input, member),
            data,
        });
        Ok(())
    }
}
