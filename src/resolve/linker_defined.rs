//! The symbols the linker defines before layout: `--defsym` and a linker script's
//! assignments (`define_linker_symbols`), which override the inputs' definitions, and
//! which of them are plain numbers (`Resolution::absolute`). Their values are layout's.

use super::{leak_name, Resolver};
use crate::args::Config;
use crate::symbols::{Def, SymbolId};
use object::elf;

/// The symbols `--defsym` and a linker script's assignments define (overriding any other
/// definition, as GNU ld's do; PROVIDE only where something refers to the symbol and nothing
/// defines it). Returns those whose value is a plain number.
pub(super) fn define_linker_symbols(
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
