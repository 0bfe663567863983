//! The vocabulary the phases after resolution share: the link's [`Context`] (options,
//! resolution, output kind, symbol versions), how a relocation names its symbol
//! ([`SymRef`]) and where that symbol lives ([`Target`]), the kinds of GOT entry and of
//! output, and which symbols the output exports. It sits below every phase that uses it
//! (layout, gc, icf, dynamic, write), so that none of them imports another to share a type.

use crate::args::Config;
use crate::resolve::{LoadedObject, Resolution};
use crate::symbols::{Def, FileId, SymbolId};
use object::elf;
use object::LittleEndian as LE;
use rustc_hash::FxHashMap as HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutSecId(pub u32);

/// A symbol as a relocation names it: a global id, or a local of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymRef {
    Global(SymbolId),
    Local(FileId, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GotKind {
    /// The symbol's address (an IFUNC's PLT entry for IFUNCs).
    Address,
    /// The symbol's offset from the thread pointer (initial-exec TLS).
    TpOff,
    /// Module id and offset for `__tls_get_addr` (general dynamic), two slots.
    TlsGd,
    /// Module id for local dynamic, two slots (the second is zero).
    TlsLd,
    /// A TLS descriptor, two slots.
    TlsDesc,
}

impl GotKind {
    pub fn from_u8(v: u8) -> GotKind {
        match v {
            0 => GotKind::Address,
            1 => GotKind::TpOff,
            2 => GotKind::TlsGd,
            3 => GotKind::TlsLd,
            _ => GotKind::TlsDesc,
        }
    }
}

/// Where a relocation's symbol lives.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Section {
        file: FileId,
        sec: u32,
        value: u64,
    },
    Abs(u64),
    Common(SymbolId),
    Synthetic(SymbolId),
    /// Defined in a shared object: resolved at run time (or through a copy or a PLT entry).
    Shared(SymbolId),
    UndefWeak,
    Undefined,
}

/// What kind of file the link produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    StaticExe,
    StaticPie,
    DynExe,
    DynPie,
    Shared,
}

impl OutputKind {
    pub fn of(config: &Config, res: &Resolution) -> OutputKind {
        let has_dso = !res.dsos.is_empty();
        if config.shared {
            OutputKind::Shared
        } else if config.pie {
            if config.no_dynamic_linker && !has_dso {
                OutputKind::StaticPie
            } else {
                OutputKind::DynPie
            }
        } else if has_dso {
            OutputKind::DynExe
        } else {
            OutputKind::StaticExe
        }
    }
    pub fn is_pic(self) -> bool {
        matches!(
            self,
            OutputKind::StaticPie | OutputKind::DynPie | OutputKind::Shared
        )
    }
    pub fn is_executable(self) -> bool {
        self != OutputKind::Shared
    }
    /// Has a `.dynamic` section (everything but a classic static executable).
    pub fn is_dynamic(self) -> bool {
        self != OutputKind::StaticExe
    }
    /// Loaded by the dynamic linker (has `PT_INTERP`, or is a shared object).
    pub fn has_interp(self, config: &Config) -> bool {
        matches!(self, OutputKind::DynExe | OutputKind::DynPie) && !config.no_dynamic_linker
    }
}

pub fn relocatable(target: Target) -> bool {
    !matches!(
        target,
        Target::Abs(_) | Target::UndefWeak | Target::Shared(_)
    )
}

/// Where a symbol an object defines is, by the resolution's table.
pub fn defined_target(at: crate::resolve::DefinedAt) -> Target {
    if at.shndx() == u32::from(elf::SHN_ABS) {
        Target::Abs(at.value)
    } else {
        Target::Section {
            file: FileId(at.file),
            sec: at.shndx(),
            value: at.value,
        }
    }
}

pub struct Context<'a> {
    pub config: &'a Config,
    pub res: &'a Resolution,
    pub kind: OutputKind,
    pub versions: &'a crate::version_script::Versions,
}

impl Context<'_> {
    /// Whether references to the symbol must go through the dynamic linker (it may be
    /// defined, or redefined, by another module at run time).
    pub fn preemptible(&self, kind: OutputKind, symref: SymRef) -> bool {
        let SymRef::Global(id) = symref else {
            return false;
        };
        let symbol = self.res.symbols.get(id);
        match symbol.def {
            Def::Shared { .. } => true,
            // As GNU ld on x86-64: a dynamic executable imports its undefined (weak)
            // symbols through the GOT and PLT, so that a library loaded at run time
            // (LD_PRELOAD) can define them; direct references stay 0 (see the scan).
            Def::Undefined => {
                kind == OutputKind::Shared
                    || (matches!(kind, OutputKind::DynExe | OutputKind::DynPie)
                        && self.config.z.dynamic_undefined_weak)
            }
            Def::Synthetic => false,
            Def::Defined { file, sym, weak } => {
                if kind != OutputKind::Shared
                    || symbol.visibility != elf::STV_DEFAULT
                    || !exported(self, id)
                {
                    return false;
                }
                let st_type = self.res.objects[file.0 as usize].obj.symbols[sym as usize].st_type();
                let func = st_type == elf::STT_FUNC || st_type == elf::STT_GNU_IFUNC;
                if self.versions.export_dynamic.contains(&id) {
                    return true; // --export-dynamic-symbol: even under -Bsymbolic
                }
                if self.versions.has_dynamic_list {
                    // With --dynamic-list, only the listed symbols can be preempted.
                    return self.versions.dynamic_list.contains(&id);
                }
                let config = self.config;
                !(config.bsymbolic
                    || (config.bsymbolic_functions && func)
                    || (config.bsymbolic_non_weak && !weak)
                    || (config.bsymbolic_non_weak_functions && func && !weak))
            }
            Def::Common { .. } => {
                kind == OutputKind::Shared
                    && symbol.visibility == elf::STV_DEFAULT
                    && !self.config.bsymbolic
                    && exported(self, id)
            }
        }
    }

    /// The target of a symbol reference, wherever it was made from.
    pub fn symref_target(&self, symref: SymRef) -> (Target, u8) {
        match symref {
            SymRef::Local(file, index) if file.0 != u32::MAX => {
                let (_, t, st_type) = self.target(file, index as usize);
                (t, st_type)
            }
            SymRef::Local(..) => (Target::Abs(0), elf::STT_TLS),
            SymRef::Global(id) => match self.res.symbols.get(id).def {
                Def::Defined { file, sym, .. } => {
                    let (_, t, st_type) = self.target(file, sym as usize);
                    (t, st_type)
                }
                Def::Common { .. } => (Target::Common(id), elf::STT_OBJECT),
                Def::Synthetic => (Target::Synthetic(id), elf::STT_NOTYPE),
                Def::Shared { dso, index } => {
                    let info = self.res.dsos[dso as usize].dso.defined[index as usize].st_info;
                    (Target::Shared(id), info & 0xf)
                }
                Def::Undefined => {
                    if self.kind == OutputKind::Shared {
                        (Target::Shared(id), elf::STT_NOTYPE)
                    } else {
                        (Target::UndefWeak, elf::STT_NOTYPE)
                    }
                }
            },
        }
    }

    /// A symbol's name for messages.
    pub fn display(&self, symref: SymRef) -> String {
        match symref {
            SymRef::Global(id) => crate::symbols::demangle(self.res.symbols.get(id).name),
            SymRef::Local(file, index) => {
                let obj = &self.res.objects[file.0 as usize].obj;
                let name = obj.symbol_name(index as usize).unwrap_or_default();
                if !name.is_empty() {
                    return crate::symbols::demangle(name);
                }
                // A section symbol: the section's name, as GNU ld says it.
                let section = obj.symbol_shndx(index as usize) as usize;
                match obj.section_names.get(section) {
                    Some(name) if !name.is_empty() => {
                        format!("section {}", String::from_utf8_lossy(name))
                    }
                    _ => format!("local symbol {index}"),
                }
            }
        }
    }

    /// Resolves symbol `sym_index` of `file` as a relocation sees it.
    pub fn target(&self, file: FileId, sym_index: usize) -> (SymRef, Target, u8) {
        let object = &self.res.objects[file.0 as usize];
        let obj = &object.obj;
        if sym_index >= obj.symbols.len() {
            return (SymRef::Local(file, sym_index as u32), Target::Undefined, 0);
        }
        if let Some(id) = object.global_id(sym_index) {
            let symref = SymRef::Global(id);
            if let Some((at, _)) = self.res.defined(id) {
                return (symref, defined_target(at), at.st_type());
            }
            let symbol = self.res.symbols.get(id);
            return match symbol.def {
                Def::Defined { file: f, sym, .. } => {
                    let def_obj = &self.res.objects[f.0 as usize].obj;
                    let st = &def_obj.symbols[sym as usize];
                    let shndx = def_obj.symbol_shndx(sym as usize);
                    let target = if shndx == u32::from(elf::SHN_ABS) {
                        Target::Abs(st.st_value.get(LE))
                    } else {
                        Target::Section {
                            file: f,
                            sec: shndx,
                            value: st.st_value.get(LE),
                        }
                    };
                    (symref, target, st.st_type())
                }
                Def::Common { .. } => (symref, Target::Common(id), elf::STT_OBJECT),
                Def::Synthetic => (symref, Target::Synthetic(id), elf::STT_NOTYPE),
                Def::Shared { dso, index } => {
                    let st_info = self.res.dsos[dso as usize].dso.defined[index as usize].st_info;
                    (symref, Target::Shared(id), st_info & 0xf)
                }
                Def::Undefined => {
                    let weak = obj.symbols[sym_index].st_bind() == elf::STB_WEAK;
                    let t = if self.kind == OutputKind::Shared
                        && !(self.config.no_undefined || self.config.z.defs)
                    {
                        // A shared object may leave symbols for its loader to find.
                        Target::Shared(id)
                    } else if weak {
                        Target::UndefWeak
                    } else {
                        Target::Undefined
                    };
                    (symref, t, elf::STT_NOTYPE)
                }
            };
        }
        let st = &obj.symbols[sym_index];
        let shndx = obj.symbol_shndx(sym_index);
        let symref = SymRef::Local(file, sym_index as u32);
        let target = match shndx {
            0 => Target::Undefined,
            s if s == u32::from(elf::SHN_ABS) => Target::Abs(st.st_value.get(LE)),
            s => Target::Section {
                file,
                sec: s,
                value: st.st_value.get(LE),
            },
        };
        (symref, target, st.st_type())
    }
}

/// Whether a defined symbol of this link is exported in `.dynsym`.
pub fn exported(ctx: &Context, id: SymbolId) -> bool {
    let symbol = ctx.res.symbols.get(id);
    if !matches!(symbol.def, Def::Defined { .. } | Def::Common { .. }) {
        return false;
    }
    if matches!(symbol.visibility, elf::STV_HIDDEN | elf::STV_INTERNAL)
        || ctx.versions.local.contains(&id)
        || ctx.res.symver_aliases.contains(&id)
        || excluded_lib(ctx, id)
    {
        return false;
    }
    match ctx.kind {
        OutputKind::Shared => true,
        OutputKind::DynExe | OutputKind::DynPie => {
            ctx.config.export_dynamic
                || symbol.dso_ref
                || ctx.versions.dynamic_list.contains(&id)
                || ctx.versions.export_dynamic.contains(&id)
        }
        _ => false,
    }
}

/// `--exclude-libs`: symbols defined by members of the named archives (or `ALL`) stay local.
fn excluded_lib(ctx: &Context, id: SymbolId) -> bool {
    if ctx.config.exclude_libs.is_empty() {
        return false;
    }
    let Def::Defined { file, .. } = ctx.res.symbols.get(id).def else {
        return false;
    };
    let name = &ctx.res.objects[file.0 as usize].name;
    let Some(archive) = name
        .strip_suffix(')')
        .and_then(|n| n.rsplit_once('('))
        .map(|(a, _)| a)
    else {
        return false;
    };
    let base = archive.rsplit('/').next().unwrap_or(archive);
    ctx.config
        .exclude_libs
        .iter()
        .flat_map(|l| l.split([',', ':']))
        .any(|l| l == "ALL" || l == base)
}

/// What the relocation scan found the output needs beyond the input sections.
#[derive(Default)]
pub struct Needs {
    pub got_entries: Vec<(SymRef, GotKind)>,
    /// First GOT slot of each entry (TLS pairs take two slots), by entry and by key.
    pub got_slot: Vec<u32>,
    pub got_index: HashMap<(SymRef, GotKind), u32>,
    pub got_slots: u32,
    /// Replay: GOT slots of recorded entries nothing uses now, (first slot, key, kind as
    /// u8). They stay zero, so that the entries after them keep their places.
    pub got_holes: Vec<(u32, u64, u8)>,
    pub iplt_entries: Vec<SymRef>,
    pub iplt_index: HashMap<SymRef, u32>,
    pub plt_entries: Vec<SymbolId>,
    pub plt_index: HashMap<SymbolId, u32>,
    pub copies: Vec<SymbolId>,
    /// Shared functions whose PLT entry is their address in this executable.
    pub canonical: rustc_hash::FxHashSet<SymbolId>,
    /// Symbols defined by shared objects that live code refers to.
    pub used_shared: rustc_hash::FxHashSet<SymbolId>,
    /// Symbols named by symbolic dynamic relocations.
    pub dynsym_refs: rustc_hash::FxHashSet<SymbolId>,
    pub n_relative: u64,
    pub n_symbolic: u64,
    /// `-z pack-relative-relocs`: where the RELATIVE relocations that go to `.relr.dyn`
    /// apply, as (file, input section, offset); GOT entries are counted apart.
    pub relr: Vec<(FileId, u32, u64)>,
    /// The first dynamic relocation in a read-only section (file, section, symbol index):
    /// the output needs DT_TEXTREL (the loader makes its segments writable to relocate).
    pub textrel: Option<(FileId, u32, u32)>,
}

/// Whether GOT entry (`symref`, `kind`) holds an address the loader relocates by the load
/// bias (a RELATIVE relocation).
pub fn got_relative(ctx: &Context, symref: SymRef, kind: GotKind) -> bool {
    kind == GotKind::Address
        && !ctx.preemptible(ctx.kind, symref)
        && ctx.kind.is_pic()
        && relocatable(ctx.symref_target(symref).0)
}

/// Whether the output gets a `.relr.dyn` (see [`packs_relative`]).
pub fn has_relr(ctx: &Context, needs: &Needs) -> bool {
    ctx.config.z.pack_relative_relocs
        && ctx.kind.is_pic()
        && (!needs.relr.is_empty()
            || needs
                .got_entries
                .iter()
                .any(|&(symref, gk)| got_relative(ctx, symref, gk)))
}

pub(crate) fn is_eh_frame(obj: &LoadedObject, sec: usize) -> bool {
    let t = obj.obj.shdrs[sec].sh_type.get(LE);
    obj.obj.section_names[sec] == b".eh_frame"
        && (t == elf::SHT_PROGBITS || t == crate::input::elf::SHT_X86_64_UNWIND)
}

/// The output section an input section goes to, by name.
pub(crate) fn output_name(object: &LoadedObject, sec: usize) -> &'static str {
    match object.obj.output_index[sec] {
        0 => {
            let name = object.obj.section_names[sec];
            match std::str::from_utf8(name) {
                Ok(name) => name,
                Err(_) => String::from_utf8_lossy(name).into_owned().leak(),
            }
        }
        i => crate::input::elf::OUTPUT_NAMES[usize::from(i) - 1].1,
    }
}
