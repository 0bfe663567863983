//! The sections the linker makes (mold's chunks, lld's synthetic sections): one kind each,
//! with its name and shape in one table, sized here for what the scan found. `write` fills
//! them; [`Layout::synthetic`] finds one by kind.

use super::{
    fallback, got_dyn_relocs, ibt_plt, output_properties, plt_header_size, rank, scripted, Layout,
    OutputSection, Slots, PLT_ENTRY_SIZE,
};
use crate::args::Config;
use crate::context::{got_relative, has_relr, Context, Needs, OutSecId};
use crate::eh_frame::{self, Record};
use crate::symbols::{Def, FileId, SymbolId};
use anyhow::Result;
use object::elf;
use rustc_hash::FxHashMap as HashMap;

/// A linker-made section's name and header fields.
pub struct Shape {
    pub name: &'static str,
    pub sh_type: u32,
    pub flags: u32,
    pub align: u64,
    pub entsize: u64,
}

/// Declares [`Synthetic`] (one kind per row), [`Synthetic::ALL`] and [`SHAPES`] from one
/// table.
macro_rules! synthetic_sections {
    ($($(#[$doc:meta])* $kind:ident: $name:literal, $ty:expr, $flags:expr, $align:literal, $entsize:literal;)*) => {
        /// One linker-made section.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Synthetic {
            $($(#[$doc])* $kind,)*
        }

        impl Synthetic {
            /// Every kind, in the order of [`SHAPES`].
            pub const ALL: [Synthetic; N_SYNTHETIC] = [$(Synthetic::$kind),*];
        }

        /// Each kind's shape, indexed by the kind.
        const SHAPES: [Shape; N_SYNTHETIC] = [$(Shape {
            name: $name,
            sh_type: $ty,
            flags: $flags,
            align: $align,
            entsize: $entsize,
        }),*];
    };
}

const N_SYNTHETIC: usize = 22;
const A: u32 = elf::SHF_ALLOC;
const AW: u32 = elf::SHF_ALLOC | elf::SHF_WRITE;
const AX: u32 = elf::SHF_ALLOC | elf::SHF_EXECINSTR;

synthetic_sections! {
    // kind: name, type, flags, alignment, entry size;
    /// The output's properties (`Layout::fixed_notes`). 8-aligned in ELF64, as its readers
    /// step through it.
    PropertyNote: ".note.gnu.property", elf::SHT_NOTE, A, 8, 0;
    /// `--package-metadata` (`Layout::fixed_notes`).
    PackageNote: ".note.package", elf::SHT_NOTE, A, 4, 0;
    BuildId: ".note.gnu.build-id", elf::SHT_NOTE, A, 4, 0;
    Interp: ".interp", elf::SHT_PROGBITS, A, 1, 0;
    Got: ".got", elf::SHT_PROGBITS, AW, 8, 8;
    GotPlt: ".got.plt", elf::SHT_PROGBITS, AW, 8, 8;
    Plt: ".plt", elf::SHT_PROGBITS, AX, 16, 16;
    Iplt: ".iplt", elf::SHT_PROGBITS, AX, 16, 16;
    /// RELATIVE, then symbolic and GOT relocations, then copy relocations.
    RelaDyn: ".rela.dyn", elf::SHT_RELA, A, 8, 24;
    /// A static executable's IRELATIVE relocations.
    RelaIplt: ".rela.iplt", elf::SHT_RELA, A, 8, 24;
    RelaPlt: ".rela.plt", elf::SHT_RELA, A, 8, 24;
    /// Packed RELATIVE relocations (`crate::relr`).
    Relr: ".relr.dyn", elf::SHT_RELR, A, 8, 8;
    Dynsym: ".dynsym", elf::SHT_DYNSYM, A, 8, 24;
    Dynstr: ".dynstr", elf::SHT_STRTAB, A, 1, 0;
    GnuHash: ".gnu.hash", elf::SHT_GNU_HASH, A, 8, 0;
    Hash: ".hash", elf::SHT_HASH, A, 8, 4;
    Versym: ".gnu.version", elf::SHT_GNU_VERSYM, A, 2, 2;
    Verdef: ".gnu.version_d", elf::SHT_GNU_VERDEF, A, 4, 0;
    Verneed: ".gnu.version_r", elf::SHT_GNU_VERNEED, A, 4, 0;
    EhFrameHdr: ".eh_frame_hdr", elf::SHT_PROGBITS, A, 4, 0;
    Comment: ".comment", elf::SHT_PROGBITS, 0, 1, 1;
    Dynamic: ".dynamic", elf::SHT_DYNAMIC, AW, 8, 16;
}

impl Synthetic {
    pub fn shape(self) -> &'static Shape {
        &SHAPES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.shape().name
    }

    /// The kind of the linker-made section called `name` (as the state records it).
    pub fn by_name(name: &str) -> Option<Synthetic> {
        Synthetic::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where each linker-made section is among the output sections.
#[derive(Clone, Copy, Default, Debug)]
pub struct SyntheticIndex([Option<OutSecId>; N_SYNTHETIC]);

impl SyntheticIndex {
    /// The index of the linker-made sections among `sections`.
    pub fn of(sections: &[OutputSection]) -> SyntheticIndex {
        let mut index = SyntheticIndex::default();
        for (i, s) in sections.iter().enumerate() {
            if let Some(kind) = s.synthetic {
                index.0[kind as usize] = Some(OutSecId(i as u32));
            }
        }
        index
    }

    /// The index of the linker-made sections named so (as the state records them).
    pub fn named<'a>(sections: impl Iterator<Item = (&'a str, OutSecId)>) -> SyntheticIndex {
        let mut index = SyntheticIndex::default();
        for (name, id) in sections {
            if let Some(kind) = Synthetic::by_name(name) {
                index.0[kind as usize] = Some(id);
            }
        }
        index
    }

    pub fn get(&self, kind: Synthetic) -> Option<OutSecId> {
        self.0[kind as usize]
    }
}

impl Layout {
    /// The linker-made section of this kind, if the output has one.
    pub fn synthetic(&self, kind: Synthetic) -> Option<&OutputSection> {
        self.synthetic_index
            .get(kind)
            .map(|id| &self.sections[id.0 as usize])
    }
}

/// Addresses of the synthetic sections that relocations use, looked up once.
#[derive(Default, Clone, Copy)]
pub struct SyntheticAddrs {
    pub got: u64,
    pub got_plt: u64,
    pub plt: u64,
    pub iplt: u64,
    /// The size of the PLT's header: 16 bytes, 32 for the IBT PLT ([`Layout::ibt_plt`]).
    pub plt_header: u64,
}

/// The output's linker-made sections, besides the sections: their index by name, the
/// dynamic symbol tables and `.dynamic`'s entries, and the build-id's size.
pub(super) struct SyntheticSections {
    pub(super) synthetic_index: SyntheticIndex,
    pub(super) dynamic: crate::dynamic::DynamicTables,
    pub(super) dynamic_tags: Vec<(u32, crate::dynamic::DynValue)>,
    pub(super) build_id_size: u64,
    pub(super) fixed_notes: Vec<(Synthetic, Vec<u8>)>,
    pub(super) ibt_plt: bool,
}

/// Entries a table that grows with the inputs gets (`needed` of `unit` bytes): in incremental
/// mode, room to grow (`.rela.dyn` is padded with NONE entries; `.eh_frame_hdr`'s
/// count field says how many are used), or the recorded room in a replay.
fn capacity(slot_mode: Slots, kind: Synthetic, needed: u64, unit: u64) -> Result<u64> {
    let name = kind.name();
    match slot_mode {
        Slots::Packed => Ok(needed),
        Slots::Fresh { spare_percent } => Ok(needed + needed * spare_percent / 100 + 16),
        Slots::Replay(rec) => match rec.sizes.get(name) {
            Some(&size) if size / unit >= needed => Ok(size / unit),
            _ => Err(fallback(format!("{name} has no room for {needed} entries"))),
        },
    }
}

/// `.eh_frame_hdr`, for the FDEs kept (with room for more in incremental mode).
fn add_eh_frame_hdr(
    sections: &mut Vec<OutputSection>,
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    slot_mode: Slots,
) -> Result<()> {
    let n_fdes = eh_records
        .values()
        .flatten()
        .filter(|r| !r.is_cie && r.out_offset.is_some())
        .count();
    let n_fdes = match slot_mode {
        Slots::Packed => n_fdes,
        _ => {
            let needed = eh_frame::hdr_size(n_fdes) as u64;
            let size = capacity(slot_mode, Synthetic::EhFrameHdr, needed, 1)?;
            (size as usize - eh_frame::hdr_size(0)) / 8
        }
    };
    add_synthetic_section(
        sections,
        Synthetic::EhFrameHdr,
        eh_frame::hdr_size(n_fdes) as u64,
    );
    Ok(())
}

/// The notes whose bytes layout decides (`.note.gnu.property` from `properties`,
/// `--package-metadata`'s `.note.package`) and `--build-id`'s note: the first with their
/// bytes, and the build-id's size.
fn add_notes(
    sections: &mut Vec<OutputSection>,
    config: &Config,
    properties: &crate::property::Properties,
) -> (Vec<(Synthetic, Vec<u8>)>, u64) {
    let build_id_size = match &config.build_id {
        None => 0,
        Some(crate::args::BuildIdArg::Hash(crate::args::BuildId::Sha1)) => 20,
        Some(crate::args::BuildIdArg::Hash(_)) => 16,
        Some(crate::args::BuildIdArg::Hex(bytes)) => bytes.len() as u64,
    };
    let mut fixed_notes = vec![(Synthetic::PropertyNote, crate::property::encode(properties))];
    // `--package-metadata=JSON`: the FDO packaging note (systemd's spec), as GNU ld 2.39.
    if let Some(json) = config.package_metadata.as_deref().filter(|j| !j.is_empty()) {
        fixed_notes.push((Synthetic::PackageNote, package_note(json)));
    }
    fixed_notes.retain(|(_, bytes)| !bytes.is_empty());
    for &(kind, ref bytes) in &fixed_notes {
        add_synthetic_section(sections, kind, bytes.len() as u64);
    }
    if config.build_id.is_some() {
        let size = 16 + build_id_size.div_ceil(4) * 4;
        add_synthetic_section(sections, Synthetic::BuildId, size);
    }
    (fixed_notes, build_id_size)
}

/// `.comment`: the inputs' strings (`comment`) and weld's, unless a script discards it.
fn add_comment(
    sections: &mut Vec<OutputSection>,
    comment: &mut Vec<u8>,
    matcher: Option<&scripted::Matcher>,
) {
    comment.extend_from_slice(concat!("Linker: weld ", env!("CARGO_PKG_VERSION")).as_bytes());
    comment.push(0);
    // (A script may `/DISCARD/` .comment.)
    let discarded =
        matcher.is_some_and(|m| m.assign("", ".comment", false) == scripted::Assign::Discard);
    if !discarded {
        add_synthetic_section(sections, Synthetic::Comment, comment.len() as u64);
    }
    if let Some(c) = sections
        .iter_mut()
        .find(|s| s.synthetic == Some(Synthetic::Comment))
    {
        c.sh_flags = u64::from(elf::SHF_MERGE | elf::SHF_STRINGS);
    }
}

/// The dynamic linker's tables (`.rela.dyn`, `.rela.plt`, `.relr.dyn` if packed, `.dynsym`,
/// `.dynstr`, the hash tables and the version tables), sized from `dynamic` and the
/// relocation counts (entries of `.rela.dyn` and `.rela.plt`, words of `.relr.dyn`).
fn add_dynamic_tables(
    sections: &mut Vec<OutputSection>,
    config: &Config,
    dynamic: &crate::dynamic::DynamicTables,
    (n_rela_dyn, n_rela_plt, n_relr): (u64, u64, Option<u64>),
) {
    use Synthetic::*;
    let mut add = |kind: Synthetic, size: u64| {
        add_synthetic_section(sections, kind, size);
    };
    add(RelaDyn, 24 * n_rela_dyn);
    add(RelaPlt, 24 * n_rela_plt);
    if let Some(words) = n_relr {
        add(Relr, 8 * words);
    }
    add(Dynsym, 24 * (dynamic.dynsyms.len() as u64 + 1));
    add(Dynstr, dynamic.dynstr.len() as u64);
    if config.hash_style != crate::args::HashStyle::Sysv {
        add(GnuHash, dynamic.gnu_hash.len() as u64);
    }
    if config.hash_style != crate::args::HashStyle::Gnu {
        add(Hash, dynamic.sysv_hash.len() as u64);
    }
    if !dynamic.versym.is_empty() {
        add(Versym, dynamic.versym.len() as u64);
    }
    if dynamic.verdef_count > 0 {
        add(Verdef, dynamic.verdef.len() as u64);
    }
    if dynamic.verneed_count > 0 {
        add(Verneed, dynamic.verneed.len() as u64);
    }
}

/// Appends the linker-made section `kind` (its shape from [`SHAPES`]) of `size` bytes to
/// `sections`.
fn add_synthetic_section(sections: &mut Vec<OutputSection>, kind: Synthetic, size: u64) {
    let &Shape {
        name,
        sh_type,
        flags,
        align,
        entsize,
    } = kind.shape();
    sections.push(OutputSection {
        name: name.to_string(),
        sh_type,
        sh_flags: u64::from(flags),
        align,
        entsize,
        rank: rank(name, sh_type, u64::from(flags)),
        members: Vec::new(),
        size,
        addr: 0,
        offset: 0,
        synthetic: Some(kind),
    });
}

/// Step 5's second half: the sections the linker makes (.got, .plt, .dynamic, .dynsym,
/// .eh_frame_hdr, .comment, ...), sized for what the scan found (with room to grow in
/// incremental mode).
#[allow(clippy::too_many_arguments)]
pub(super) fn add_synthetic_sections(
    ctx: &Context,
    sections: &mut Vec<OutputSection>,
    needs: &Needs,
    live: &[Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    comment: &mut Vec<u8>,
    slot_mode: Slots,
    matcher: Option<&scripted::Matcher>,
) -> Result<SyntheticSections> {
    let (config, res, kind) = (ctx.config, ctx.res, ctx.kind);
    let slotted = !matches!(slot_mode, Slots::Packed);
    let properties = output_properties(config, res, true)?;
    let (fixed_notes, build_id_size) = add_notes(sections, config, &properties);
    let mut pending_tags = Vec::new();
    // Dynamic symbols and the tables that hang off them.
    let live_defined = |id: SymbolId| match res.symbols.get(id).def {
        Def::Defined { file, sym, .. } => {
            let o = &res.objects[file.0 as usize];
            let shndx = o.obj.symbol_shndx(sym as usize) as usize;
            shndx == usize::from(elf::SHN_ABS)
                || (shndx < live[file.0 as usize].len() && live[file.0 as usize][shndx])
        }
        Def::Common { .. } => true,
        _ => false,
    };
    let dynamic = crate::dynamic::build(ctx, needs, &live_defined);
    // With `-z pack-relative-relocs`, the GOT's RELATIVE relocations go to `.relr.dyn`,
    // which gets one word per relocation for now (its exact size is known once the
    // sections' members have their offsets: `size_relr`).
    let relr = has_relr(ctx, needs);
    let mut n_relr = needs.relr.len() as u64;
    let n_got_dyn: u64 = needs
        .got_entries
        .iter()
        .map(|&(symref, gk)| {
            if relr && got_relative(ctx, symref, gk) {
                n_relr += 1;
                0
            } else {
                u64::from(got_dyn_relocs(ctx, symref, gk))
            }
        })
        .sum();
    let n_rela_dyn = needs.n_relative + needs.n_symbolic + n_got_dyn + needs.copies.len() as u64;
    let capacity = |kind, needed: u64, unit: u64| capacity(slot_mode, kind, needed, unit);
    let n_rela_dyn = if kind.is_dynamic() {
        capacity(Synthetic::RelaDyn, n_rela_dyn, 24)?
    } else {
        n_rela_dyn
    };
    let n_plt = needs.plt_entries.len() as u64;
    let n_iplt = needs.iplt_entries.len() as u64;
    let dyn_kind = kind.is_dynamic();
    if kind.has_interp(config) {
        let interp = config
            .dynamic_linker
            .clone()
            .unwrap_or_else(|| "/lib64/ld-linux-x86-64.so.2".to_string());
        add_synthetic_section(sections, Synthetic::Interp, interp.len() as u64 + 1);
    }
    // Incremental mode: room for new GOT entries (a changed object may be the first to
    // take a symbol's address through the GOT); unused slots stay zero.
    let got_slots = if slotted && needs.got_slots > 0 {
        capacity(Synthetic::Got, u64::from(needs.got_slots), 8)?
    } else {
        u64::from(needs.got_slots)
    };
    add_synthetic_section(sections, Synthetic::Got, 8 * got_slots);
    // With a script, as in GNU ld, no .got.plt unless something uses one.
    let got_symbol = res
        .symbols
        .lookup(b"_GLOBAL_OFFSET_TABLE_")
        .is_some_and(|id| res.symbols.get(id).def == Def::Synthetic);
    if matcher.is_none() || dyn_kind || n_plt + n_iplt > 0 || got_symbol {
        add_synthetic_section(sections, Synthetic::GotPlt, 8 * (3 + n_plt + n_iplt));
    }
    if n_plt > 0 {
        add_synthetic_section(
            sections,
            Synthetic::Plt,
            plt_header_size(ibt_plt(config, &properties)) + PLT_ENTRY_SIZE * n_plt,
        );
    }
    if n_iplt > 0 {
        add_synthetic_section(sections, Synthetic::Iplt, PLT_ENTRY_SIZE * n_iplt);
    }
    if dyn_kind {
        let n_relr = relr.then_some(n_relr);
        add_dynamic_tables(
            sections,
            config,
            &dynamic,
            (n_rela_dyn, n_plt + n_iplt, n_relr),
        );
    } else {
        add_synthetic_section(sections, Synthetic::RelaIplt, 24 * n_iplt);
    }
    if config.eh_frame_hdr {
        add_eh_frame_hdr(sections, eh_records, slot_mode)?;
    }
    add_comment(sections, comment, matcher);

    if dyn_kind {
        let present = |name: &str| {
            sections
                .iter()
                .any(|s| s.name == name && (s.size > 0 || !s.members.is_empty()))
        };
        let dynamic_tags = crate::dynamic::tags(
            ctx,
            &dynamic,
            &present,
            (n_rela_dyn, n_plt + n_iplt, needs.n_relative),
            needs.textrel.is_some(),
        );
        add_synthetic_section(sections, Synthetic::Dynamic, 16 * dynamic_tags.len() as u64);
        pending_tags = dynamic_tags;
    }

    Ok(SyntheticSections {
        synthetic_index: SyntheticIndex::of(sections),
        dynamic,
        dynamic_tags: pending_tags,
        build_id_size,
        ibt_plt: ibt_plt(config, &properties),
        fixed_notes,
    })
}

/// The `.note.package` note: owner `FDO`, type NT_FDO_PACKAGING_METADATA, the JSON text
/// with its NUL, padded to 4 bytes (GNU ld counts the padding in the descriptor's size).
fn package_note(json: &str) -> Vec<u8> {
    let desc_size = (json.len() + 1).next_multiple_of(4);
    let mut note = Vec::with_capacity(16 + desc_size);
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&(desc_size as u32).to_le_bytes());
    note.extend_from_slice(&0xcafe_1a7eu32.to_le_bytes());
    note.extend_from_slice(b"FDO\0");
    note.extend_from_slice(json.as_bytes());
    note.resize(16 + desc_size, 0);
    note
}
