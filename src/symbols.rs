//! The global symbol table: interned names and what each resolves to.
//!
//! Ids, not pointers: a [`SymbolId`] indexes [`SymbolDb::symbols`], a [`FileId`] indexes the
//! loaded objects. Local symbols never enter this table; they are addressed as
//! (file, symbol index) by the phases that need them.

use std::fmt;
use std::hash::Hasher;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymbolId(pub u32);

impl fmt::Debug for SymbolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sym-{}", self.0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file-{}", self.0)
    }
}

/// What a global symbol resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Def {
    Undefined,
    /// Defined by symbol `sym` of object `file`.
    Defined {
        file: FileId,
        sym: u32,
        weak: bool,
    },
    /// A common symbol; space is allocated in `.bss` at layout.
    Common {
        file: FileId,
        sym: u32,
        size: u64,
        align: u64,
    },
    /// Defined by the linker (`__init_array_start`, `_GLOBAL_OFFSET_TABLE_`, ...).
    Synthetic,
    /// Defined by shared object `dso`, entry `index` of its `defined` list.
    Shared {
        dso: u32,
        index: u32,
    },
}

#[derive(Clone, Debug)]
pub struct Symbol {
    pub name: &'static [u8],
    pub def: Def,
    /// A non-weak undefined reference exists (only these pull archive members).
    pub strong_ref: bool,
    /// Most restrictive `STV_*` seen across all files.
    pub visibility: u8,
    /// A shared object input leaves this symbol undefined (so an executable exports it).
    pub dso_ref: bool,
}

/// The hash [`SymbolDb`] files a name under. Computed where names are read (in parallel),
/// so that the serial resolution loop hashes nothing.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    h.finish()
}

#[derive(Default)]
pub struct SymbolDb {
    /// Ids by name, filed under [`name_hash`], stored with it: growing the table and most
    /// failed probes touch no name (names are in `symbols`).
    by_name: hashbrown::HashTable<(u64, SymbolId)>,
    pub symbols: Vec<Symbol>,
}

impl SymbolDb {
    pub fn intern(&mut self, name: &'static [u8]) -> SymbolId {
        self.intern_hashed(name, name_hash(name))
    }

    /// `intern` with the name's [`name_hash`] already computed.
    pub fn intern_hashed(&mut self, name: &'static [u8], hash: u64) -> SymbolId {
        let symbols = &mut self.symbols;
        let entry = self.by_name.entry(
            hash,
            |&(h, id)| h == hash && symbols[id.0 as usize].name == name,
            |&(h, _)| h,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => e.get().1,
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = SymbolId(symbols.len() as u32);
                symbols.push(Symbol {
                    name,
                    def: Def::Undefined,
                    strong_ref: false,
                    visibility: 0,
                    dso_ref: false,
                });
                e.insert((hash, id));
                id
            }
        }
    }

    pub fn lookup(&self, name: &[u8]) -> Option<SymbolId> {
        self.lookup_hashed(name, name_hash(name))
    }

    /// `lookup` with the name's [`name_hash`] already computed.
    pub fn lookup_hashed(&self, name: &[u8], hash: u64) -> Option<SymbolId> {
        self.by_name
            .find(hash, |&(h, id)| {
                h == hash && self.symbols[id.0 as usize].name == name
            })
            .map(|&(_, id)| id)
    }

    pub fn get(&self, id: SymbolId) -> &Symbol {
        &self.symbols[id.0 as usize]
    }

    pub fn get_mut(&mut self, id: SymbolId) -> &mut Symbol {
        &mut self.symbols[id.0 as usize]
    }

    /// Whether an archive member defining `name` should be extracted now.
    pub fn wants(&self, name: &[u8], hash: u64) -> bool {
        match self.lookup_hashed(name, hash) {
            Some(id) => {
                let sym = self.get(id);
                sym.def == Def::Undefined && sym.strong_ref
            }
            None => false,
        }
    }
}

/// Combines two `STV_*` values, keeping the more restrictive one.
pub fn merge_visibility(a: u8, b: u8) -> u8 {
    match (a, b) {
        (0, v) | (v, 0) => v,
        (a, b) => a.min(b),
    }
}

/// A symbol name for messages: demangled (Rust v0/legacy, then Itanium C++) when it can be.
pub fn demangle(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    if let Ok(d) = rustc_demangle::try_demangle(&text) {
        return format!("{d:#}");
    }
    if text.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(s) = sym.demangle(&cpp_demangle::DemangleOptions::default()) {
                return s;
            }
        }
    }
    text.into_owned()
}
