//! Resolution against shared objects: a shared object's definitions resolve the symbols
//! still undefined, and a symbol that an object defines too is exported so that the
//! library binds to it (`add_shared`); at the end, an `--as-needed` library that nothing
//! refers to without `weak` is undone (`undo_dropped_libraries`). Whether a library gets
//! its DT_NEEDED is decided from this in `dynamic`.

use super::{LoadedDso, Resolver};
use crate::symbols::Def;
use anyhow::{Context, Result};

impl Resolver {
    /// Adds a shared object's symbols: its definitions, and the references it makes.
    pub(super) fn add_shared(
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
}

/// An `--as-needed` library that no regular object refers to without `weak` gets no
/// DT_NEEDED; as GNU ld undoes such a library's symbols, the symbols only it defined are
/// undefined again (weak references then resolve as undefined weak ones: never to a copy
/// relocation or a canonical PLT entry for a library the program will not load).
pub(super) fn undo_dropped_libraries(state: &mut Resolver) {
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
