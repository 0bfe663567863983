//! The resolution rules, applied as each object's symbols are added (`add_parsed`): the
//! first COMDAT group of a signature is kept and the sections of later copies discarded;
//! `--wrap` redirects undefined references; a strong definition takes the place of a weak
//! one or a common, the larger of two commons stands (with the larger alignment), and a
//! second strong definition is recorded as a duplicate (reported after resolution);
//! `--warn-common`'s messages (`common_warning`). Once every input is in, `foo@@VER` also
//! defines `foo` (`symver_aliases`).

use super::{LoadedObject, Resolver};
use crate::input::elf::{ObjectFile, LE};
use crate::symbols::{merge_visibility, Def, FileId, SymbolId};
use anyhow::{bail, Result};
use object::elf;

impl Resolver {
    /// Adds a parsed object's symbols and the object.
    pub(super) fn add_parsed(
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

/// `foo@@VER` also defines `foo` for references within this link. Returns the plain names
/// so defined.
pub(super) fn symver_aliases(state: &mut Resolver) -> rustc_hash::FxHashSet<SymbolId> {
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
