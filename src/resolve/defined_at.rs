//! Where each symbol an object defines is ([`DefinedAt`]), in one small entry per symbol:
//! the answer to most relocations, built once at the end of resolution so that layout and
//! the writer need not read the defining object's symbol table. Decides nothing.

use super::LoadedObject;
use crate::input::elf::LE;
use crate::symbols::{Def, SymbolDb};
use object::elf;
use rayon::prelude::*;

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
