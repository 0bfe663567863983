//! Phase 3: layout. Decides which input sections are kept (COMDAT, `--gc-sections`,
//! `.eh_frame` records), which GOT and PLT entries and dynamic relocations exist, how input
//! sections map to output sections, and every address and file offset.
//!
//! No output bytes are written here: `write` turns a [`Layout`] into a file. Everything the
//! writer needs is an id or a number in this structure.

mod addresses;
mod assign;
mod place;
mod scan;
pub mod scripted;
mod synthetic;

use assign::{assign_output_sections, early_merges, is_c_identifier, Assigned};
pub(crate) use assign::{init_priority, rank};

use synthetic::{add_synthetic_sections, SyntheticSections};
pub use synthetic::{Synthetic, SyntheticAddrs, SyntheticIndex};

pub(crate) use scan::{content_of, is_content, keep_live_fdes, scan_class, scan_object, Undefined};
use scan::{scan_inputs, text_relocations, Scanned};

use crate::arch::{Arch, Current as A};
use crate::args::Config;
use crate::context::{
    is_eh_frame, output_name, relocatable, Context, GotKind, Needs, OutSecId, OutputKind, SymRef,
    Target,
};
use crate::eh_frame::{self, Record};
use crate::input::elf::LE;
use crate::resolve::{LoadedObject, Resolution};
use crate::state::ScanRecord;
use crate::symbols::{Def, FileId, SymbolId};
use anyhow::{bail, Result};
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use addresses::{default_addresses, scripted_addresses, size_relr, Addresses};
pub(crate) use place::pack_member;
use place::place_members;

pub const PAGE_SIZE: u64 = 0x1000;
pub const NON_PIE_BASE: u64 = 0x40_0000;
pub const PLT_ENTRY_SIZE: u64 = A::PLT_ENTRY_SIZE;
pub const NOT_PLACED: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub enum Member {
    Input {
        file: FileId,
        sec: u32,
    },
    Common(SymbolId),
    /// Deduplicated strings of SHF_MERGE|SHF_STRINGS inputs: index into `Layout::merged`.
    Merged(u32),
}

/// The merged strings of one output section, and where each input's strings went.
pub struct MergedStrings {
    /// Bytes of distinct strings; the writer copies each input's own strings into its run.
    pub size: u64,
    /// Indexes into `Layout::merge_maps` of this blob's inputs, in input order.
    pub maps: Vec<u32>,
    pub align: u64,
    /// Offset of the blob within its output section (set by `place_members`).
    pub offset: u64,
    pub out: u32,
}

/// Per merged input section: its blob, and where each of its strings went in it.
pub struct MergeMap {
    pub merged: u32,
    pub file: FileId,
    pub sec: u32,
    pub pieces: crate::merge::Pieces,
}

pub struct OutputSection {
    pub name: String,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub align: u64,
    pub entsize: u64,
    pub rank: u32,
    pub members: Vec<Member>,
    pub size: u64,
    pub addr: u64,
    pub offset: u64,
    pub synthetic: Option<Synthetic>,
}

/// How `compute` places input sections.
#[derive(Clone, Copy)]
pub enum Slots<'a> {
    /// Packed, as a one-shot linker does.
    Packed,
    /// Incremental mode, first link: every file's run of members in an output section is a
    /// slot with `spare_percent` % (plus 256 bytes in code, 64 elsewhere) of room to grow.
    Fresh { spare_percent: u64 },
    /// Incremental update: every slot and output section where the last link put it.
    Replay(&'a Recorded),
}

/// One input file's contiguous run of members in one output section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub out: u32,
    pub file: FileId,
    /// Offset in the output section.
    pub start: u64,
    pub used: u64,
    pub capacity: u64,
}

/// A slotted layout as the state recorded it, keyed by output section name.
#[derive(Default, Debug)]
pub struct Recorded {
    pub sizes: HashMap<String, u64>,
    /// Per output section, its place in the recorded order: the order sections are met in
    /// the inputs is not kept when objects come and go.
    pub position: HashMap<String, usize>,
    /// Per output section, its slots in order: (file, start, capacity).
    pub slots: HashMap<String, Vec<(FileId, u64, u64)>>,
    /// The order of the GOT, PLT and IPLT entries.
    pub order: crate::state::NeedsOrder,
    /// Per file, the recorded scan of an unchanged object.
    pub scans: Vec<Option<ScanRecord>>,
}

/// Why an incremental update cannot reuse the recorded layout: the caller links from
/// scratch instead. Not an error of the link.
#[derive(Debug)]
pub struct Fallback(pub String);

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fallback {}

pub(crate) fn fallback(reason: String) -> anyhow::Error {
    anyhow::Error::new(Fallback(reason))
}

#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub out: u32,
    pub offset: u64,
    /// How input offsets map to output offsets: `Plain` adds `offset`; `Merged` looks up
    /// `Layout::merge_maps[offset]`, `EhFrame` `Layout::eh_records`.
    pub mapping: Mapping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    Plain,
    Merged,
    EhFrame,
}

#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub p_type: u32,
    pub p_flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    /// The load address (`AT` in scripts; the address otherwise).
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

pub struct Layout {
    pub kind: OutputKind,
    pub synthetic_addrs: SyntheticAddrs,
    pub pie: bool,
    pub base: u64,
    pub entry: u64,
    pub sections: Vec<OutputSection>,
    /// Output sections in file order (alloc first, by address).
    pub order: Vec<OutSecId>,
    pub segments: Vec<Segment>,
    pub placements: Vec<Vec<Placement>>,
    pub eh_records: HashMap<(FileId, u32), Vec<Record>>,
    pub needs: Needs,
    pub dynamic: crate::dynamic::DynamicTables,
    pub dynamic_tags: Vec<(u32, crate::dynamic::DynValue)>,
    pub common_offsets: HashMap<SymbolId, (u32, u64)>,
    pub synthetic_values: HashMap<SymbolId, u64>,
    pub tls_start: u64,
    pub tls_memsz: u64,
    pub tls_align: u64,
    pub synthetic_index: SyntheticIndex,
    pub build_id_size: u64,
    /// Note sections whose bytes layout decides: `.note.gnu.property`, `.note.package`.
    pub fixed_notes: Vec<(Synthetic, Vec<u8>)>,
    /// PLT entries start with `endbr64` ([`ibt_plt`]).
    pub ibt_plt: bool,
    pub comment: Vec<u8>,
    pub file_size: u64,
    pub live: Vec<Vec<bool>>,
    pub merged: Vec<MergedStrings>,
    /// Indexed by the `offset` of a `Mapping::Merged` placement.
    pub merge_maps: Vec<MergeMap>,
    /// Incremental mode: every file's run of members per output section, in section order.
    pub slots: Vec<Slot>,
    /// Unchanged files whose slots a replayed layout resized (a slot that outgrew its room
    /// moved to its section's tail): an update rewrites them.
    pub resized: Vec<FileId>,
    /// Incremental mode: every file's relocation scan results, for the state.
    pub scans: Vec<ScanRecord>,
    /// A replay: the GOT, PLT and IPLT entries' order (`Needs::order`).
    pub replayed_order: Option<crate::state::NeedsOrder>,
    /// Incremental mode: the build-id is derived from this (the inputs and the slot table
    /// determine the output) rather than from hashing the whole output.
    pub build_id_seed: Option<[u8; 32]>,
    /// A linker script's data statements and fills: (output section, offset, bytes).
    pub script_data: Vec<(u32, u64, Vec<u8>)>,
    /// A script's MEMORY regions: name, origin, length, end of what was placed in them
    /// (`--print-memory-usage`).
    pub memory_regions: Vec<(String, u64, u64, u64)>,
}

/// Names the linker defines when the program refers to them and nothing else defines them.
const SYNTHETIC_NAMES: &[&str] = &[
    "__ehdr_start",
    "__executable_start",
    "_GLOBAL_OFFSET_TABLE_",
    "__init_array_start",
    "__init_array_end",
    "__fini_array_start",
    "__fini_array_end",
    "__preinit_array_start",
    "__preinit_array_end",
    "__rela_iplt_start",
    "__rela_iplt_end",
    "_etext",
    "etext",
    "__etext",
    "_edata",
    "edata",
    "_end",
    "end",
    "__bss_start",
    "__GNU_EH_FRAME_HDR",
    "__dso_handle",
];

/// Marks linker-defined symbols as `Def::Synthetic` (GNU ld's PROVIDE: only when referenced
/// and not defined by an input).
pub fn define_synthetic_symbols(config: &Config, res: &mut Resolution) {
    let kind = OutputKind::of(config, res);
    let mut names: Vec<&[u8]> = SYNTHETIC_NAMES.iter().map(|s| s.as_bytes()).collect();
    if kind.is_dynamic() {
        names.push(b"_DYNAMIC");
    }
    for name in names {
        if let Some(id) = res.symbols.lookup(name) {
            let sym = res.symbols.get_mut(id);
            if sym.def == Def::Undefined {
                sym.def = Def::Synthetic;
            }
        }
    }
    // __start_SEC / __stop_SEC for sections named like C identifiers: the references first
    // (usually none), then one pass over the section names, only if there are any.
    let wanted: Vec<(usize, &[u8])> = res
        .symbols
        .symbols
        .iter()
        .enumerate()
        .filter(|(_, sym)| sym.def == Def::Undefined)
        .filter_map(|(id, sym)| {
            let sec = sym
                .name
                .strip_prefix(b"__start_")
                .or_else(|| sym.name.strip_prefix(b"__stop_"))?;
            std::str::from_utf8(sec)
                .is_ok_and(is_c_identifier)
                .then_some((id, sec))
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let wanted_names: rustc_hash::FxHashSet<&[u8]> = wanted.iter().map(|w| w.1).collect();
    let present: rustc_hash::FxHashSet<&[u8]> = res
        .objects
        .iter()
        .flat_map(|o| o.obj.section_names.iter().copied())
        .filter(|n| wanted_names.contains(n))
        .collect();
    for (id, sec) in wanted {
        if present.contains(sec) {
            res.symbols.symbols[id].def = Def::Synthetic;
        }
    }
}

/// Whether the output's stack must be executable, as GNU ld decides on x86-64: `-z execstack`
/// or `-z noexecstack` if given; otherwise yes when an object asks for it (its
/// `.note.GNU-stack` is SHF_EXECINSTR: GCC's nested-function trampolines live on the stack)
/// or has no `.note.GNU-stack` at all (old assembly). Each such object gets GNU ld's warning
/// when `warn`.
pub fn executable_stack(config: &Config, res: &Resolution, warn: bool) -> bool {
    if let Some(forced) = config.z.execstack {
        return forced;
    }
    let mut executable = false;
    for object in &res.objects {
        let Some(reason) = wants_executable_stack(&object.obj) else {
            continue;
        };
        executable = true;
        if warn {
            crate::diag::warn(format_args!("{}: {reason}", object.name));
        }
    }
    executable
}

/// The output's `.note.gnu.property` properties (see [`crate::property`]): the merge of its
/// objects' (not the shared libraries', not the LTO stand-ins') and what `-z ibt`,
/// `-z shstk` and `-z x86-64-vN` add. With `report`, `-z cet-report` warns about (or fails
/// on) each object that lacks IBT or SHSTK, in GNU ld's words.
pub fn output_properties(
    config: &Config,
    res: &Resolution,
    report: bool,
) -> Result<crate::property::Properties> {
    let objects = || {
        res.objects
            .iter()
            .enumerate()
            .filter(|(f, _)| !res.ir_files.iter().any(|(ir, _)| ir.0 as usize == *f))
            .map(|(_, o)| o)
    };
    if let (true, Some(how)) = (report, config.z.cet_report) {
        let mut errors = Vec::new();
        for object in objects() {
            if let Some(missing) = crate::property::missing_cet(&object.obj.properties) {
                let message = format!("{}: missing {missing}", object.name);
                match how {
                    crate::args::CetReport::Warning => crate::diag::warn(message),
                    crate::args::CetReport::Error => errors.push(message),
                }
            }
        }
        if !errors.is_empty() {
            anyhow::bail!(
                "objects without IBT or SHSTK (-z cet-report=error):\n{}",
                errors.join("\n")
            );
        }
    }
    Ok(crate::property::merge(
        objects().map(|o| &o.obj.properties),
        config.z.properties,
    ))
}

/// The PLT header's size: the IBT PLT's pushes %r11 too, which takes it past 16 bytes.
pub fn plt_header_size(ibt_plt: bool) -> u64 {
    A::plt_header_size(ibt_plt)
}

/// `--print-memory-usage`: GNU ld's table of the script's MEMORY regions (ldlang.c's
/// format: sizes in GB, MB or KB when they are whole ones).
pub fn memory_usage_table(regions: &[(String, u64, u64, u64)]) -> String {
    let size = |n: u64| {
        if n & 0x3fff_ffff == 0 {
            format!("{:>10} GB", n >> 30)
        } else if n & 0xf_ffff == 0 {
            format!("{:>10} MB", n >> 20)
        } else if n & 0x3ff == 0 {
            format!("{:>10} KB", n >> 10)
        } else {
            format!("{n:>10} B")
        }
    };
    let mut table = String::from("Memory region         Used Size  Region Size  %age Used\n");
    for (name, origin, length, end) in regions {
        let used = end.saturating_sub(*origin);
        table.push_str(&format!("{name:>16}:  {}{}", size(used), size(*length)));
        if *length != 0 {
            table.push_str(&format!(
                "    {:6.2}%",
                used as f64 * 100.0 / *length as f64
            ));
        }
        table.push('\n');
    }
    table
}

/// Whether PLT entries start with `endbr64`: in an output marked IBT (an indirect jump
/// lands on them: the lazy GOT slot, a function pointer to a canonical PLT entry), or with
/// `-z ibtplt`.
pub fn ibt_plt(config: &Config, properties: &crate::property::Properties) -> bool {
    config.z.ibtplt
        || properties.iter().any(|&(t, v)| {
            t == crate::property::X86_FEATURE_1_AND && v & crate::property::FEATURE_1_IBT != 0
        })
}

/// GNU ld's note segments for sections in address order: a PT_NOTE for each run of
/// adjacent SHT_NOTE sections of one alignment (a reader steps through a PT_NOTE's notes at
/// its alignment, so 4- and 8-aligned notes cannot share one), then PT_GNU_PROPERTY for
/// `.note.gnu.property`, which the loader reads for CET and the ISA level.
pub(crate) fn note_segments<'a>(
    sections: impl IntoIterator<Item = &'a OutputSection>,
) -> Vec<Segment> {
    let segment = |s: &OutputSection, p_type: u32| Segment {
        p_type,
        p_flags: elf::PF_R,
        offset: s.offset,
        vaddr: s.addr,
        paddr: s.addr,
        filesz: s.size,
        memsz: s.size,
        align: s.align,
    };
    let mut segments: Vec<Segment> = Vec::new();
    let mut property = None;
    let mut run_align = None;
    for s in sections {
        if s.size == 0 {
            continue;
        }
        if s.sh_type != elf::SHT_NOTE || s.sh_flags & u64::from(elf::SHF_ALLOC) == 0 {
            run_align = None;
            continue;
        }
        if s.name == ".note.gnu.property" {
            property = Some(segment(s, elf::PT_GNU_PROPERTY));
        }
        match segments.last_mut() {
            Some(last) if run_align == Some(s.align) => {
                last.filesz = s.offset + s.size - last.offset;
                last.memsz = s.addr + s.size - last.vaddr;
            }
            _ => segments.push(segment(s, elf::PT_NOTE)),
        }
        run_align = Some(s.align);
    }
    segments.extend(property);
    segments
}

/// Why an object asks for an executable stack (GNU ld's words), if it does.
pub fn wants_executable_stack(obj: &crate::input::elf::ObjectFile) -> Option<&'static str> {
    let note = obj
        .section_names
        .iter()
        .position(|name| *name == b".note.GNU-stack");
    match note {
        None => Some("missing .note.GNU-stack section implies executable stack"),
        Some(s) if obj.shdrs[s].sh_flags.get(LE) & u64::from(elf::SHF_EXECINSTR) != 0 => {
            Some("requires executable stack (because the .note.GNU-stack section is executable)")
        }
        Some(_) => None,
    }
}

pub fn compute(
    config: &Config,
    res: &Resolution,
    versions: &crate::version_script::Versions,
    slot_mode: Slots,
) -> Result<(Layout, Vec<Undefined>)> {
    let slotted = !matches!(slot_mode, Slots::Packed);
    let kind = OutputKind::of(config, res);
    let ctx = Context {
        config,
        res,
        kind,
        versions,
    };
    let mut steps = crate::PhaseTimer::new(config.time);
    // A linker script's SECTIONS: where each input section goes (`/DISCARD/`, a rule, or
    // nowhere the script says).
    let matcher = config
        .script
        .as_deref()
        .filter(|s| s.sections.is_some())
        .map(scripted::Matcher::new);
    let script_assign = matcher
        .as_ref()
        .map_or_else(Vec::new, |m| script_assignments(res, m));
    // The strings of non-alloc merged sections (`.debug_str`: most of the merging work in a
    // debug build) do not depend on liveness: they are merged while steps 1 to 4 run, and
    // taken at step 5 if it finds the same inputs.
    let (early_merges, scanned) = rayon::join(
        || {
            if slotted || matcher.is_some() {
                Vec::new()
            } else {
                early_merges(config, res)
            }
        },
        || {
            scan_inputs(
                &ctx,
                slot_mode,
                matcher.as_ref(),
                &script_assign,
                &mut steps,
            )
        },
    );
    let mut scanned = scanned?;
    let undefined = std::mem::take(&mut scanned.undefined);
    let mut replayed_order = None;
    if let Slots::Replay(rec) = slot_mode {
        // Keep the tables' entries where the recorded link put them.
        let key = |s| crate::state::symref_key(res, s);
        replayed_order = Some(scanned.needs.reorder(key, &rec.order));
    }
    check_scan(&ctx, &scanned, slot_mode)?;
    steps.step("reorder");
    // 5. Output sections, then the linker's own.
    let mut assigned = assign_output_sections(
        &ctx,
        &scanned.live,
        &scanned.needs,
        matcher.as_ref(),
        &script_assign,
        early_merges,
        slotted,
        &mut steps,
    );
    // A folded section's symbols are defined (at the kept section's address).
    for &((file, sec), _) in &scanned.folded {
        scanned.live[file.0 as usize][sec as usize] = true;
    }
    let synthetic = add_synthetic_sections(
        &ctx,
        &mut assigned.sections,
        &scanned.needs,
        &scanned.live,
        &scanned.eh_records,
        &mut assigned.comment,
        slot_mode,
        matcher.as_ref(),
    )?;
    steps.step("synthetic");
    // 6. and 7. Members' offsets, sections' addresses and file offsets, program headers.
    let mut addresses = if matcher.is_some() {
        scripted_addresses(
            &ctx,
            &mut assigned.sections,
            &assigned.member_rules,
            &mut assigned.placements,
            &scanned.eh_records,
            &mut assigned.merged,
        )?
    } else {
        // 6. Offsets of members within output sections; then `.relr.dyn`'s size, which
        // depends on them only.
        let placed = place_members(
            &ctx,
            &mut assigned.sections,
            &mut assigned.placements,
            &scanned.eh_records,
            &mut assigned.merged,
            slot_mode,
        )?;
        size_relr(
            &ctx,
            &mut assigned.sections,
            &assigned.placements,
            &scanned.needs,
        );
        default_addresses(&ctx, &mut assigned.sections, placed, slot_mode, &mut steps)?
    };
    for &((file, sec), (kept_file, kept_sec)) in &scanned.folded {
        assigned.placements[file.0 as usize][sec as usize] =
            assigned.placements[kept_file.0 as usize][kept_sec as usize];
    }
    let script_symbols = std::mem::take(&mut addresses.script_symbols);
    let mut layout = assemble(
        kind,
        scanned,
        replayed_order,
        assigned,
        synthetic,
        addresses,
    );
    // 8. Symbol values the layout decides.
    symbol_values(&ctx, &mut layout, script_symbols)?;
    layout.entry = entry_address(&ctx, &layout);
    steps.step("addresses");
    Ok((layout, undefined))
}

/// With a script's SECTIONS: each input section's place in it (`/DISCARD/`, a rule, or
/// nowhere the script says), per file and section.
fn script_assignments(res: &Resolution, m: &scripted::Matcher) -> Vec<Vec<scripted::Assign>> {
    res.objects
        .par_iter()
        .map(|object| {
            object
                .obj
                .section_names
                .iter()
                .zip(object.obj.shdrs.iter())
                .map(|(n, h)| {
                    let writable = h.sh_flags.get(LE) & u64::from(elf::SHF_WRITE) != 0;
                    m.assign(&object.name, &String::from_utf8_lossy(n), writable)
                })
                .collect()
        })
        .collect()
}

/// The scan's errors, if any; text relocations are an error unless `-z notext` (and fall
/// back from an update: the recorded scans do not say which objects need them).
fn check_scan(ctx: &Context, scanned: &Scanned, slot_mode: Slots) -> Result<()> {
    if !scanned.reloc_errors.is_empty() {
        bail!("{}", scanned.reloc_errors.join("\nweld: error: "));
    }
    if let Some((file, sec, sym)) = scanned.needs.textrel {
        if matches!(slot_mode, Slots::Replay(_)) {
            return Err(fallback(
                "a dynamic relocation in a read-only section".into(),
            ));
        }
        text_relocations(ctx, file, sec, sym)?;
    }
    Ok(())
}

/// The [`Layout`] from what the steps of [`compute`] found, with the linker-made sections'
/// addresses that relocations use.
fn assemble(
    kind: OutputKind,
    scanned: Scanned,
    replayed_order: Option<crate::state::NeedsOrder>,
    assigned: Assigned,
    synthetic: SyntheticSections,
    addresses: Addresses,
) -> Layout {
    let mut layout = Layout {
        synthetic_addrs: SyntheticAddrs::default(),
        kind,
        pie: kind.is_pic(),
        base: addresses.base,
        entry: 0,
        sections: assigned.sections,
        order: addresses.order,
        segments: addresses.segments,
        placements: assigned.placements,
        eh_records: scanned.eh_records,
        needs: scanned.needs,
        dynamic: synthetic.dynamic,
        dynamic_tags: synthetic.dynamic_tags,
        common_offsets: addresses.common_offsets,
        synthetic_values: HashMap::default(),
        tls_start: addresses.tls_start,
        tls_memsz: addresses.tls_memsz,
        tls_align: addresses.tls_align,
        synthetic_index: synthetic.synthetic_index,
        build_id_size: synthetic.build_id_size,
        fixed_notes: synthetic.fixed_notes,
        ibt_plt: synthetic.ibt_plt,
        comment: assigned.comment,
        file_size: addresses.file_size,
        live: scanned.live,
        merged: assigned.merged,
        merge_maps: assigned.merge_maps,
        slots: addresses.slots,
        resized: addresses.resized,
        scans: scanned.scans,
        replayed_order,
        build_id_seed: None,
        script_data: addresses.script_data,
        memory_regions: addresses.memory_regions,
    };
    let addr_of = |kind| layout.synthetic(kind).map_or(0, |s| s.addr);
    layout.synthetic_addrs = SyntheticAddrs {
        got: addr_of(Synthetic::Got),
        got_plt: addr_of(Synthetic::GotPlt),
        plt: addr_of(Synthetic::Plt),
        iplt: addr_of(Synthetic::Iplt),
        plt_header: plt_header_size(layout.ibt_plt),
    };
    layout
}

/// The values of symbols the layout decides: the linker's (`_end`, `__bss_start`, ...), a
/// script's assignments (`script_symbols`, or evaluated now on the default layout when the
/// script has no SECTIONS), then `--defsym`'s, which may name any of the others.
fn symbol_values(
    ctx: &Context,
    layout: &mut Layout,
    script_symbols: Vec<(String, u64, bool)>,
) -> Result<()> {
    let (config, res) = (ctx.config, ctx.res);
    layout.synthetic_values = synthetic_values(ctx, layout);
    let mut script_symbols = script_symbols;
    if config.script.as_ref().is_some_and(|s| s.sections.is_none()) {
        script_symbols = scripted::assign_on_layout(ctx, layout)?;
    }
    for (name, value, _) in &script_symbols {
        if let Some(id) = res.symbols.lookup(name.as_bytes()) {
            if res.symbols.get(id).def == Def::Synthetic {
                layout.synthetic_values.insert(id, *value);
            }
        }
    }
    for (name, expr) in &config.defsym {
        let Some(id) = res.symbols.lookup(name.as_bytes()) else {
            continue;
        };
        let value = defsym_value(ctx, layout, name, expr)?;
        layout.synthetic_values.insert(id, value);
    }
    Ok(())
}

/// The value of `--defsym name=expr`: a number, or a symbol plus or minus a number.
fn defsym_value(ctx: &Context, layout: &Layout, name: &str, expr: &str) -> Result<u64> {
    let res = ctx.res;
    Ok(match crate::args::parse_defsym(expr) {
        Some((None, offset)) => offset as u64,
        Some((Some(target), offset)) => {
            let base = res
                .symbols
                .lookup(target.as_bytes())
                .filter(|&t| res.symbols.get(t).def != Def::Undefined)
                .and_then(|t| layout.symbol_address(ctx, SymRef::Global(t)));
            match base {
                Some(b) => b.wrapping_add(offset as u64),
                None => bail!("--defsym {name}={expr}: undefined symbol {target}"),
            }
        }
        None => bail!("--defsym {name}={expr}: unsupported expression"),
    })
}

/// The entry point: the entry symbol's address (`-e`, or `_start`); else, as GNU ld
/// (`ldlang.c` `lang_end`), the `-e` argument read as a number (`0x` hex, `0` octal,
/// decimal); else an executable's `.text` start, with GNU ld's warning; else 0, with a
/// warning unless a shared library has no `-e`.
fn entry_address(ctx: &Context, layout: &Layout) -> u64 {
    let (config, res) = (ctx.config, ctx.res);
    let name = config.entry.as_deref().unwrap_or("_start");
    if let Some(id) = res.symbols.lookup(name.as_bytes()) {
        if res.symbols.get(id).def != Def::Undefined {
            return layout.symbol_address(ctx, SymRef::Global(id)).unwrap_or(0);
        }
    }
    let number = match name.strip_prefix("0x").or_else(|| name.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if name.len() > 1 && name.starts_with('0') => u64::from_str_radix(&name[1..], 8).ok(),
        None => name.parse().ok(),
    };
    if let Some(value) = number {
        return value;
    }
    let text = layout
        .sections
        .iter()
        .find(|s| s.name == ".text" && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0);
    match text {
        Some(text) if ctx.kind.is_executable() => {
            crate::diag::warn(format_args!(
                "cannot find entry symbol {name}; defaulting to {:016x}",
                text.addr
            ));
            text.addr
        }
        _ => {
            if config.entry.is_some() || ctx.kind.is_executable() {
                crate::diag::warn(format_args!(
                    "cannot find entry symbol {name}; not setting start address"
                ));
            }
            0
        }
    }
}

/// Whether the RELATIVE relocation at `offset` of input section `sec` goes to `.relr.dyn`:
/// with `-z pack-relative-relocs`, where its address is even whatever the layout (the
/// section is 2-aligned, the offset even; lld's rule), outside `.eh_frame` (whose records
/// move).
pub(crate) fn packs_relative(
    config: &Config,
    object: &LoadedObject,
    sec: usize,
    offset: u64,
) -> bool {
    config.z.pack_relative_relocs
        && offset.is_multiple_of(2)
        && object.obj.shdrs[sec].sh_addralign.get(LE) >= 2
        && !is_eh_frame(object, sec)
}

/// How many dynamic relocations a GOT entry needs (shared by layout, which sizes
/// `.rela.dyn`, and the writer, which fills it).
pub fn got_dyn_relocs(ctx: &Context, symref: SymRef, kind: GotKind) -> u32 {
    let preemptible = ctx.preemptible(ctx.kind, symref);
    match kind {
        GotKind::Address => {
            if preemptible {
                1
            } else {
                u32::from(ctx.kind.is_pic() && relocatable(ctx.symref_target(symref).0))
            }
        }
        GotKind::TpOff => u32::from(preemptible || ctx.kind == OutputKind::Shared),
        GotKind::TlsGd => {
            if preemptible {
                2
            } else {
                1
            }
        }
        GotKind::TlsLd | GotKind::TlsDesc => 1,
    }
}

/// Whether a GOT-relative load can use the symbol's address instead (so no GOT entry).
pub fn relaxable_got_load(
    preemptible: bool,
    r_type: u32,
    target: Target,
    st_type: u8,
    data: &[u8],
    offset: u64,
) -> bool {
    // (The target's check first: it rules out all but GOT loads by type alone.)
    A::can_relax_got_load(r_type, data, offset as usize)
        && !preemptible
        && matches!(
            target,
            Target::Section { .. } | Target::Common(_) | Target::Synthetic(_)
        )
        && st_type != elf::STT_GNU_IFUNC
}

/// Sections that readers walk unit by unit (each starts with its length): padding in them
/// must lengthen a unit rather than be zeros.
pub fn walked_by_units(name: &str) -> bool {
    matches!(
        name,
        ".eh_frame"
            | ".debug_frame"
            | ".debug_info"
            | ".debug_types"
            | ".debug_line"
            | ".debug_aranges"
            | ".debug_pubnames"
            | ".debug_pubtypes"
            | ".debug_gnu_pubnames"
            | ".debug_gnu_pubtypes"
            | ".debug_rnglists"
            | ".debug_loclists"
            | ".debug_str_offsets"
            | ".debug_addr"
    )
}

fn synthetic_values(ctx: &Context, layout: &Layout) -> HashMap<SymbolId, u64> {
    let mut values = HashMap::default();
    let secs = &layout.sections;
    let by_name = |name: &str| {
        layout
            .order
            .iter()
            .map(|id| &secs[id.0 as usize])
            .find(|s| s.name == name && s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
    };
    let alloc: Vec<&OutputSection> = layout
        .order
        .iter()
        .map(|id| &secs[id.0 as usize])
        .filter(|s| s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
        .collect();
    let end_of_alloc = alloc
        .iter()
        .filter(|s| s.sh_flags & u64::from(elf::SHF_TLS) == 0 || s.sh_type != elf::SHT_NOBITS)
        .map(|s| s.addr + s.size)
        .max()
        .unwrap_or(layout.base);
    let etext = alloc
        .iter()
        .filter(|s| s.sh_flags & u64::from(elf::SHF_EXECINSTR) != 0)
        .map(|s| s.addr + s.size)
        .max()
        .unwrap_or(layout.base);
    let edata = alloc
        .iter()
        .filter(|s| s.sh_type != elf::SHT_NOBITS)
        .map(|s| s.addr + s.size)
        .max()
        .unwrap_or(layout.base);
    let rw_start = alloc
        .iter()
        .find(|s| s.sh_flags & u64::from(elf::SHF_WRITE) != 0)
        .map_or(edata, |s| s.addr);
    let range = |name: &str| by_name(name).map(|s| (s.addr, s.addr + s.size));
    let rela = by_name(".rela.iplt");
    for (i, sym) in ctx.res.symbols.symbols.iter().enumerate() {
        if sym.def != Def::Synthetic {
            continue;
        }
        let name = String::from_utf8_lossy(sym.name);
        let array =
            |n: &str, end: bool| range(n).map_or(rw_start, |(s, e)| if end { e } else { s });
        let value = match &*name {
            "__ehdr_start" | "__executable_start" => layout.base,
            "_GLOBAL_OFFSET_TABLE_" => by_name(".got.plt").map_or(0, |s| s.addr),
            "_DYNAMIC" => by_name(".dynamic").map_or(0, |s| s.addr),
            "__init_array_start" => array(".init_array", false),
            "__init_array_end" => array(".init_array", true),
            "__fini_array_start" => array(".fini_array", false),
            "__fini_array_end" => array(".fini_array", true),
            "__preinit_array_start" => array(".preinit_array", false),
            "__preinit_array_end" => array(".preinit_array", true),
            "__rela_iplt_start" => rela.map_or(0, |s| s.addr),
            "__rela_iplt_end" => rela.map_or(0, |s| s.addr + s.size),
            "_etext" | "etext" | "__etext" => etext,
            "_edata" | "edata" => edata,
            "_end" | "end" => end_of_alloc,
            "__bss_start" => by_name(".bss").map_or(edata, |s| s.addr),
            "__GNU_EH_FRAME_HDR" => by_name(".eh_frame_hdr").map_or(0, |s| s.addr),
            "__dso_handle" => layout.base,
            n => {
                if let Some(sec) = n.strip_prefix("__start_") {
                    by_name(sec).map_or(0, |s| s.addr)
                } else if let Some(sec) = n.strip_prefix("__stop_") {
                    by_name(sec).map_or(0, |s| s.addr + s.size)
                } else {
                    0
                }
            }
        };
        values.insert(SymbolId(i as u32), value);
    }
    values
}

impl Layout {
    /// Address of a byte at `offset` within input section (`file`, `sec`); `None` when the
    /// section (or the `.eh_frame` record holding that byte) was discarded.
    /// Bytes that input section (`file`, `sec`) takes in the output (live `.eh_frame`
    /// records only).
    pub fn member_len(&self, res: &Resolution, file: FileId, sec: u32) -> u64 {
        match self.eh_records.get(&(file, sec)) {
            Some(records) => records
                .iter()
                .filter(|r| r.out_offset.is_some())
                .map(|r| u64::from(r.size))
                .sum(),
            None => res.objects[file.0 as usize]
                .obj
                .section_data(sec as usize)
                .len() as u64,
        }
    }

    /// Whether input section (`file`, `sec`) went into a merged-strings blob.
    pub fn is_merged(&self, file: FileId, sec: u32) -> bool {
        self.placements[file.0 as usize]
            .get(sec as usize)
            .is_some_and(|p| p.mapping == Mapping::Merged)
    }

    /// A relocation's target and addend: a section-symbol reference into merged strings
    /// names a string by value + addend (the string's new place is looked up by it).
    pub fn merged_reference(&self, target: Target, st_type: u8, addend: i64) -> (Target, i64) {
        match target {
            Target::Section { file, sec, value }
                if st_type == elf::STT_SECTION && self.is_merged(file, sec) =>
            {
                let value = value.wrapping_add(addend as u64);
                (Target::Section { file, sec, value }, 0)
            }
            t => (t, addend),
        }
    }

    /// The output section input section (`file`, `sec`) went to, if any.
    pub fn output_section_of(&self, file: FileId, sec: u32) -> Option<u32> {
        let p = self.placements[file.0 as usize].get(sec as usize)?;
        match p.mapping {
            Mapping::Merged => {
                let map = &self.merge_maps[p.offset as usize];
                Some(self.merged[map.merged as usize].out)
            }
            _ => (p.out != NOT_PLACED).then_some(p.out),
        }
    }

    /// The output address of `offset` in input section (`file`, `sec`): through its merged
    /// strings or `.eh_frame` records where it has them; None if the section was not placed.
    pub fn section_address(&self, file: FileId, sec: u32, offset: u64) -> Option<u64> {
        let p = self.placements[file.0 as usize].get(sec as usize)?;
        match p.mapping {
            Mapping::Plain => {
                if p.out == NOT_PLACED {
                    return None;
                }
                // (A corrupt symbol value may be near 2^64: wrapping, as in a release build,
                // never a panic.)
                let base = self.sections[p.out as usize].addr + p.offset;
                Some(base.wrapping_add(offset))
            }
            Mapping::Merged => {
                let map = &self.merge_maps[p.offset as usize];
                let out_off = map.pieces.output_offset(offset)?;
                let blob = &self.merged[map.merged as usize];
                let out = &self.sections[blob.out as usize];
                Some(out.addr + blob.offset + out_off)
            }
            Mapping::EhFrame => {
                let records = self.eh_records.get(&(file, sec))?;
                let out = &self.sections[p.out as usize];
                let offset = match eh_frame::record_at(records, offset) {
                    Some(r) if r.out_offset.is_some() => {
                        u64::from(r.out_offset.unwrap_or(0)) + (offset - u64::from(r.in_offset))
                    }
                    // Between or past records (an empty `.eh_frame` labelled by crtbegin, or
                    // a terminator label): where that input offset lands in the output.
                    _ => records
                        .iter()
                        .filter(|r| {
                            r.out_offset.is_some() && u64::from(r.in_offset + r.size) <= offset
                        })
                        .map(|r| u64::from(r.size))
                        .sum(),
                };
                Some(out.addr + p.offset + offset)
            }
        }
    }

    pub fn target_address(&self, target: Target) -> Option<u64> {
        match target {
            Target::Section { file, sec, value } => self.section_address(file, sec, value),
            Target::Abs(v) => Some(v),
            Target::Common(id) => {
                let (out, off) = self.common_offsets.get(&id)?;
                Some(self.sections[*out as usize].addr + off)
            }
            Target::Synthetic(id) => self.synthetic_values.get(&id).copied(),
            Target::Shared(id) => {
                // A copy (or an alias of one) lives in .bss; a function whose address the
                // executable takes lives at its PLT entry; anything else is the loader's.
                let primary = self.dynamic.copy_aliases.get(&id).copied().unwrap_or(id);
                if let Some((out, off)) = self.common_offsets.get(&primary) {
                    return Some(self.sections[*out as usize].addr + off);
                }
                match self.needs.plt_index.get(&id) {
                    Some(&i) => Some(self.plt_address(i)),
                    None => Some(0),
                }
            }
            Target::UndefWeak => Some(0),
            Target::Undefined => None,
        }
    }

    pub fn plt_address(&self, index: u32) -> u64 {
        self.synthetic_addrs.plt
            + self.synthetic_addrs.plt_header
            + PLT_ENTRY_SIZE * u64::from(index)
    }

    /// The address a symbol reference resolves to, with IFUNCs going through their PLT entry.
    pub fn symbol_address(&self, ctx: &Context, symref: SymRef) -> Option<u64> {
        let (file, index) = match symref {
            // The module's own TLS block (local dynamic): no symbol.
            SymRef::Local(file, _) if file.0 == u32::MAX => return Some(0),
            SymRef::Local(file, index) => (file, index as usize),
            SymRef::Global(id) => match ctx.res.symbols.get(id).def {
                Def::Defined { file, sym, .. } => (file, sym as usize),
                Def::Common { .. } => return self.target_address(Target::Common(id)),
                Def::Synthetic => return self.target_address(Target::Synthetic(id)),
                Def::Shared { .. } => return self.target_address(Target::Shared(id)),
                Def::Undefined => return Some(0),
            },
        };
        let (_, target, st_type) = ctx.target(file, index);
        if st_type == elf::STT_GNU_IFUNC {
            if let Some(&i) = self.needs.iplt_index.get(&symref) {
                return Some(self.iplt_address(i));
            }
        }
        self.target_address(target)
    }

    pub fn iplt_address(&self, index: u32) -> u64 {
        self.synthetic_addrs.iplt + PLT_ENTRY_SIZE * u64::from(index)
    }

    pub fn got_address(&self, index: u32) -> u64 {
        self.synthetic_addrs.got + 8 * u64::from(index)
    }

    pub fn got_plt_base(&self) -> u64 {
        self.synthetic_addrs.got_plt
    }

    /// The thread pointer's offset: x86-64 uses TLS variant II, with the block ending at %fs:0.
    pub fn tp_address(&self) -> u64 {
        self.tls_start + self.tls_memsz.next_multiple_of(self.tls_align.max(1))
    }
}
