//! Phase 2: symbol resolution. Loads objects in command-line order, extracts archive members
//! that satisfy undefined references (GNU ld's rule: an archive only serves references seen
//! before it, except within a group, which is rescanned until nothing new is pulled), picks
//! one copy of each COMDAT group, and resolves strong, weak and common definitions.
//!
//! After this phase no new symbols or files are added. Undefined symbols are not reported
//! here: only those referenced from sections that survive garbage collection are errors.
//!
//! This file holds the result ([`Resolution`]), the resolver's state (`Resolver`) and the
//! phase as a list of steps (`resolve_with`). The steps live in the other files:
//! `load.rs` maps, classifies and parses the inputs on all threads; `archive.rs` walks them
//! in command-line order and extracts archive members; `object.rs` adds an object (LTO code
//! offered to the plugin); `rules.rs` adds its symbols (COMDAT, strong, weak, common) and
//! the `.symver` aliases; `shared.rs` resolves against shared objects; `linker_defined.rs`
//! defines `--defsym` and script symbols; `after_lto.rs` is the second resolution of an LTO
//! link; `hooks.rs` is what incremental linking asks; `defined_at.rs` the per-symbol table
//! relocations read.

mod after_lto;
mod archive;
mod defined_at;
mod hooks;
mod linker_defined;
mod load;
mod object;
mod rules;
mod shared;

pub use after_lto::resolve_after_lto;
pub use defined_at::DefinedAt;
pub use hooks::IncrementalHooks;

use crate::args::Config;
use crate::input::dso::SharedObject;
use crate::input::elf::ObjectFile;
use crate::input::search::FileSpec;
use crate::symbols::{FileId, SymbolDb, SymbolId};
use anyhow::Result;
use rustc_hash::FxHashMap as HashMap;

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

/// Resolves the inputs `specs`; `hooks` are incremental linking's (the archive members to
/// parse ahead, the archive index hashes to record), or none.
pub fn resolve(config: &Config, specs: &[FileSpec], hooks: IncrementalHooks) -> Result<Resolution> {
    resolve_with(config, specs, hooks, None)
}

/// Resolution, with `kept` archive members (by input position) extracted whether wanted or
/// not (see [`resolve_after_lto`]).
fn resolve_with(
    config: &Config,
    specs: &[FileSpec],
    hooks: IncrementalHooks,
    kept: Option<&HashMap<u32, Vec<u32>>>,
) -> Result<Resolution> {
    let mut steps = crate::PhaseTimer::new(config.time);
    // Inputs are loaded on all threads, in command-line order, while this thread resolves
    // those already loaded (and loads too, while it waits for the next one): the serial
    // resolution overlaps the parallel loading. The first failure in command-line order is
    // the one reported.
    let arrivals = load::Arrivals::new(specs.len());
    let state = rayon::scope_fifo(|scope| {
        load::spawn(scope, specs, hooks.members, &arrivals);
        archive::resolve_loaded(config, specs, &arrivals, kept)
    });
    let (mut state, loaded) = state?;
    steps.step("load, symbols");
    load::release_unused(&loaded);
    steps.step("release");
    let armaps = hooks.armaps(&loaded);
    let absolute = linker_defined::define_linker_symbols(config, &mut state);
    let symver_aliases = rules::symver_aliases(&mut state);
    steps.step("aliases");
    shared::undo_dropped_libraries(&mut state);
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

/// The resolver's state while inputs are added, serially and in command-line order.
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
    /// An empty resolution, with the symbols the command line asks for (`-u`, what
    /// `--defsym` expressions name, the entry point) strongly referred to, so that archive
    /// members defining them are extracted.
    fn new(config: &Config) -> Resolver {
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
        state
    }
}

fn leak_name(name: &str) -> &'static [u8] {
    Box::leak(name.as_bytes().to_vec().into_boxed_slice())
}
