//! Step 7 of layout: the order of the output sections, their addresses and file offsets,
//! and the program headers. By default ([`default_addresses`]) once [`super::place`] has
//! given the members their offsets; with a linker script's `SECTIONS`, as
//! [`super::scripted`] says ([`scripted_addresses`]). Also `.relr.dyn`'s size, which the
//! members' offsets alone decide ([`size_relr`]).
//!
//! Nothing here decides which input section goes where in its output section.

use super::place::Placed;
use super::scripted::{perm, stack_segment};
use super::{
    executable_stack, fallback, note_segments, scripted, MergedStrings, OutputSection, Placement,
    Recorded, Segment, Slot, Slots, Synthetic, NON_PIE_BASE, PAGE_SIZE,
};
use crate::context::{got_relative, Context, Needs, OutSecId};
use crate::eh_frame::Record;
use crate::symbols::{FileId, SymbolId};
use anyhow::Result;
use object::elf;
use rustc_hash::FxHashMap as HashMap;

/// Where `compute` puts sections: member offsets, section addresses and file offsets, and
/// program headers.
pub(super) struct Addresses {
    pub(super) common_offsets: HashMap<SymbolId, (u32, u64)>,
    pub(super) slots: Vec<Slot>,
    pub(super) resized: Vec<FileId>,
    pub(super) order: Vec<OutSecId>,
    pub(super) segments: Vec<Segment>,
    pub(super) base: u64,
    pub(super) tls_start: u64,
    pub(super) tls_memsz: u64,
    pub(super) tls_align: u64,
    pub(super) file_size: u64,
    /// A script's data statements and fills: (output section, offset, bytes).
    pub(super) script_data: Vec<(u32, u64, Vec<u8>)>,
    /// A script's symbols: (name, value, hidden).
    pub(super) script_symbols: Vec<(String, u64, bool)>,
    /// A script's MEMORY regions: name, origin, length, end of what was placed.
    pub(super) memory_regions: Vec<(String, u64, u64, u64)>,
}

/// Steps 6 and 7 of [`super::compute`] with a linker script's SECTIONS: see
/// [`super::scripted`].
pub(super) fn scripted_addresses(
    ctx: &Context,
    sections: &mut Vec<OutputSection>,
    member_rules: &[Vec<u32>],
    placements: &mut [Vec<Placement>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    merged: &mut [MergedStrings],
) -> Result<Addresses> {
    scripted::add_script_sections(ctx, sections);
    let mut member_rules = member_rules.to_vec();
    member_rules.resize(sections.len(), Vec::new());
    let stack = executable_stack(ctx.config, ctx.res, true);
    let placed = scripted::place(
        ctx,
        sections,
        &member_rules,
        placements,
        eh_records,
        merged,
        stack,
    )?;
    let (tls_start, tls_memsz) = placed.tls.map_or((0, 0), |t| (t.0, t.3 - t.0));
    Ok(Addresses {
        common_offsets: placed.common_offsets,
        slots: Vec::new(),
        resized: Vec::new(),
        order: placed.order,
        segments: placed.segments,
        base: placed.base,
        tls_start,
        tls_memsz,
        tls_align: placed.tls_align,
        file_size: placed.file_size,
        script_data: placed.data,
        script_symbols: placed.symbols,
        memory_regions: placed.regions,
    })
}

/// Step 7 of [`super::compute`], once `place_members` (step 6) has given the members their
/// offsets in their output sections: the default order of output sections, their addresses
/// and file offsets, and the program headers.
pub(super) fn default_addresses(
    ctx: &Context,
    sections: &mut [OutputSection],
    placed: Placed,
    slot_mode: Slots,
    steps: &mut crate::PhaseTimer,
) -> Result<Addresses> {
    let (common_offsets, slots, resized) = placed;
    if let Slots::Replay(rec) = slot_mode {
        check_recorded_sizes(sections, rec)?;
    }

    steps.step("offsets");
    // 7. Order and addresses.
    let order = section_order(sections, slot_mode);
    let alloc: Vec<OutSecId> = order
        .iter()
        .copied()
        .filter(|id| sections[id.0 as usize].sh_flags & u64::from(elf::SHF_ALLOC) != 0)
        .collect();
    let plan = SegmentPlan::new(ctx, sections, &alloc);
    let loads = assign_alloc_addresses(sections, &alloc, &plan);
    let file_size = assign_non_alloc_offsets(sections, &order, loads.offset);
    let (tls_start, tls_memsz) = loads
        .tls
        .map_or((0, 0), |(start, _, _, mem_end)| (start, mem_end - start));
    let tls_align = loads.tls_align;
    let segments = program_headers(ctx, sections, &alloc, &plan, loads);

    Ok(Addresses {
        common_offsets,
        slots,
        resized,
        order,
        segments,
        base: plan.base,
        tls_start,
        tls_memsz,
        tls_align,
        file_size,
        script_data: Vec::new(),
        script_symbols: Vec::new(),
        memory_regions: Vec::new(),
    })
}

/// Replay: the same output sections with the same sizes as recorded, or a fallback (then
/// every address is as recorded).
fn check_recorded_sizes(sections: &[OutputSection], rec: &Recorded) -> Result<()> {
    // The same output sections with the same sizes: then every address is as recorded.
    let mut now = 0;
    for s in sections.iter() {
        if s.synthetic.is_none() && s.size == 0 && s.members.is_empty() {
            continue;
        }
        now += 1;
        if rec.sizes.get(&s.name) != Some(&s.size) {
            return Err(fallback(format!(
                "output section {} changed size ({} bytes, {} recorded)",
                s.name,
                s.size,
                rec.sizes
                    .get(&s.name)
                    .map_or("none".into(), |n| n.to_string())
            )));
        }
    }
    if now != rec.sizes.len() {
        return Err(fallback("the set of output sections changed".into()));
    }
    Ok(())
}

/// The output sections that are laid out (synthetic or not empty), by rank; within a rank
/// in the recorded order when replaying, else in the order they were made.
fn section_order(sections: &[OutputSection], slot_mode: Slots) -> Vec<OutSecId> {
    let mut order: Vec<OutSecId> = (0..sections.len() as u32).map(OutSecId).collect();
    order.retain(|id| {
        let s = &sections[id.0 as usize];
        s.synthetic.is_some() || s.size > 0 || !s.members.is_empty()
    });
    match slot_mode {
        Slots::Replay(rec) => order.sort_by_key(|id| {
            let s = &sections[id.0 as usize];
            (s.rank, rec.position.get(&s.name).copied(), id.0)
        }),
        _ => order.sort_by_key(|id| (sections[id.0 as usize].rank, id.0)),
    }
    order
}

/// Whether a section is in the RELRO region: written only by the dynamic linker.
fn is_relro(s: &OutputSection) -> bool {
    s.sh_flags & u64::from(elf::SHF_WRITE) != 0 && s.rank >= 200 && s.rank < 300
}

/// What is known of the program headers before any section has an address: how many there
/// are (they sit at the start of the first segment, so the first section's address depends
/// on it), where the image starts, and whether there is an interpreter and a RELRO region.
struct SegmentPlan {
    base: u64,
    n_phdrs: usize,
    has_interp: bool,
    relro: bool,
}

impl SegmentPlan {
    /// Counts the program headers that the alloc sections `alloc` (in address order) need.
    fn new(ctx: &Context, sections: &[OutputSection], alloc: &[OutSecId]) -> SegmentPlan {
        let config = ctx.config;
        let dyn_kind = ctx.kind.is_dynamic();
        // Count program headers first: they sit at the start of the first segment.
        let mut n_load = 1;
        let mut prev = elf::PF_R;
        for id in alloc {
            let p = perm(&sections[id.0 as usize]);
            if p != prev {
                n_load += 1;
                prev = p;
            }
        }
        let has = |name: &str| alloc.iter().any(|id| sections[id.0 as usize].name == name);
        let has_tls = alloc
            .iter()
            .any(|id| sections[id.0 as usize].sh_flags & u64::from(elf::SHF_TLS) != 0);
        let n_notes = note_segments(alloc.iter().map(|id| &sections[id.0 as usize])).len();
        let relro =
            config.z.relro && dyn_kind && alloc.iter().any(|id| is_relro(&sections[id.0 as usize]));
        let has_interp = has(".interp");
        let n_phdrs = n_load
            + 2 * usize::from(has_interp) // PT_PHDR and PT_INTERP
            + n_notes
            + usize::from(has_tls)
            + usize::from(dyn_kind)
            + usize::from(has(".eh_frame_hdr"))
            + usize::from(relro)
            + 1; // PT_GNU_STACK
        let base = config
            .image_base
            .unwrap_or(if ctx.kind.is_pic() { 0 } else { NON_PIE_BASE });
        SegmentPlan {
            base,
            n_phdrs,
            has_interp,
            relro,
        }
    }

    /// The ELF header and the program headers.
    fn headers_size(&self) -> u64 {
        64 + 56 * self.n_phdrs as u64
    }
}

/// The alloc sections' addresses and file offsets as they are given out in address order:
/// the PT_LOAD segments (the last one is being filled), and the TLS and RELRO bounds met on
/// the way.
struct Loads {
    segments: Vec<Segment>,
    addr: u64,
    offset: u64,
    /// Start address, file offset, end of the initialized part, end in memory.
    tls: Option<(u64, u64, u64, u64)>,
    tls_align: u64,
    /// Start address, file offset, end address (0 until known).
    relro_range: Option<(u64, u64, u64)>,
}

/// Gives the alloc sections `alloc` their addresses and file offsets, in that order, each
/// run of one permission in a PT_LOAD of its own.
fn assign_alloc_addresses(
    sections: &mut [OutputSection],
    alloc: &[OutSecId],
    plan: &SegmentPlan,
) -> Loads {
    let headers_size = plan.headers_size();
    let mut loads = Loads {
        segments: vec![Segment {
            paddr: 0,
            p_type: elf::PT_LOAD,
            p_flags: elf::PF_R,
            offset: 0,
            vaddr: plan.base,
            filesz: headers_size,
            memsz: headers_size,
            align: PAGE_SIZE,
        }],
        addr: plan.base + headers_size,
        offset: headers_size,
        tls: None,
        tls_align: 1,
        relro_range: None,
    };
    for id in alloc {
        loads.place(&mut sections[id.0 as usize], plan);
    }
    if let Some(r) = loads.relro_range.as_mut() {
        if r.2 == 0 {
            r.2 = loads.addr;
        }
    }
    loads
}

impl Loads {
    /// The PT_LOAD being filled.
    fn current(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("the headers' segment comes first")
    }

    /// Gives alloc section `s` its address and file offset after those placed so far.
    fn place(&mut self, s: &mut OutputSection, plan: &SegmentPlan) {
        let base = plan.base;
        let p = perm(s);
        if p != self.current().p_flags {
            self.offset = self.offset.next_multiple_of(PAGE_SIZE);
            self.addr = base + self.offset;
            self.segments.push(Segment {
                paddr: 0,
                p_type: elf::PT_LOAD,
                p_flags: p,
                offset: self.offset,
                vaddr: self.addr,
                filesz: 0,
                memsz: 0,
                align: PAGE_SIZE,
            });
        }
        // The first writable section after RELRO starts a new page, so that the dynamic
        // linker's mprotect of the RELRO region covers no data written later.
        if plan.relro
            && self.relro_range.is_some()
            && !is_relro(s)
            && s.sh_flags & u64::from(elf::SHF_WRITE) != 0
        {
            if let Some(r) = self.relro_range.as_mut() {
                if r.2 == 0 {
                    r.2 = self.addr;
                    self.addr = self.addr.next_multiple_of(PAGE_SIZE);
                    self.offset = self.addr - base;
                }
            }
        }
        let nobits = s.sh_type == elf::SHT_NOBITS;
        self.addr = self.addr.next_multiple_of(s.align);
        if !nobits {
            self.offset = self.addr - base;
        }
        s.addr = self.addr;
        s.offset = self.offset;
        if plan.relro && is_relro(s) && self.relro_range.is_none() {
            self.relro_range = Some((self.addr, self.offset, 0));
        }
        if s.sh_flags & u64::from(elf::SHF_TLS) != 0 && self.extend_tls(s) {
            return;
        }
        self.addr += s.size;
        if !nobits {
            self.offset += s.size;
            let (offset, current) = (self.offset, self.current());
            current.filesz = offset - current.offset;
        }
        let addr = self.addr;
        let current = self.current();
        current.memsz = addr - current.vaddr;
    }

    /// Adds TLS section `s` (placed at `self.addr`) to the TLS template; true if it is
    /// `.tbss`-like, which takes no address space outside the template.
    fn extend_tls(&mut self, s: &OutputSection) -> bool {
        let (addr, offset) = (self.addr, self.offset);
        let nobits = s.sh_type == elf::SHT_NOBITS;
        self.tls_align = self.tls_align.max(s.align);
        let t = self.tls.get_or_insert((addr, offset, addr, addr));
        if !nobits {
            t.2 = addr + s.size;
        }
        t.3 = addr + s.size;
        if nobits {
            // .tbss takes no address space outside the TLS template.
            let current = self.current();
            current.memsz = current.memsz.max(addr - current.vaddr);
        }
        nobits
    }
}

/// Gives the non-alloc sections their file offsets after `offset`; returns the file size.
fn assign_non_alloc_offsets(
    sections: &mut [OutputSection],
    order: &[OutSecId],
    mut offset: u64,
) -> u64 {
    // Non-alloc sections follow in file order.
    for id in order {
        let s = &mut sections[id.0 as usize];
        if s.sh_flags & u64::from(elf::SHF_ALLOC) != 0 {
            continue;
        }
        offset = offset.next_multiple_of(s.align.max(1));
        s.offset = offset;
        s.addr = 0;
        offset += s.size;
    }
    offset
}

/// The program headers, once the sections have their addresses: PT_PHDR and PT_INTERP,
/// the PT_LOADs, then the notes', PT_TLS, PT_DYNAMIC, PT_GNU_EH_FRAME, PT_GNU_STACK and
/// PT_GNU_RELRO.
fn program_headers(
    ctx: &Context,
    sections: &[OutputSection],
    alloc: &[OutSecId],
    plan: &SegmentPlan,
    loads: Loads,
) -> Vec<Segment> {
    let Loads {
        mut segments,
        tls,
        tls_align,
        relro_range,
        ..
    } = loads;
    let find = |name: &str| alloc.iter().find(|id| sections[id.0 as usize].name == name);
    let segment_of = |name: &str, p_type: u32, p_flags: u32, align: u64| {
        find(name).map(|id| {
            let d = &sections[id.0 as usize];
            Segment {
                paddr: 0,
                p_type,
                p_flags,
                offset: d.offset,
                vaddr: d.addr,
                filesz: d.size,
                memsz: d.size,
                align,
            }
        })
    };
    if plan.has_interp {
        segments.insert(
            0,
            Segment {
                paddr: 0,
                p_type: elf::PT_PHDR,
                p_flags: elf::PF_R,
                offset: 64,
                vaddr: plan.base + 64,
                filesz: 56 * plan.n_phdrs as u64,
                memsz: 56 * plan.n_phdrs as u64,
                align: 8,
            },
        );
        segments.insert(
            1,
            segment_of(".interp", elf::PT_INTERP, elf::PF_R, 1).unwrap(),
        );
    }
    segments.extend(note_segments(
        alloc.iter().map(|id| &sections[id.0 as usize]),
    ));
    if let Some((start, off, file_end, mem_end)) = tls {
        segments.push(Segment {
            paddr: 0,
            p_type: elf::PT_TLS,
            p_flags: elf::PF_R,
            offset: off,
            vaddr: start,
            filesz: file_end - start,
            memsz: mem_end - start,
            align: tls_align,
        });
    }
    if ctx.kind.is_dynamic() {
        segments.extend(segment_of(
            ".dynamic",
            elf::PT_DYNAMIC,
            elf::PF_R | elf::PF_W,
            8,
        ));
    }
    segments.extend(segment_of(
        ".eh_frame_hdr",
        elf::PT_GNU_EH_FRAME,
        elf::PF_R,
        4,
    ));
    let executable = executable_stack(ctx.config, ctx.res, true);
    segments.push(stack_segment(ctx, executable, 16));
    if let Some((start, off, end)) = relro_range {
        segments.push(Segment {
            paddr: 0,
            p_type: elf::PT_GNU_RELRO,
            p_flags: elf::PF_R,
            offset: off,
            vaddr: start,
            filesz: end - start,
            memsz: end - start,
            align: 1,
        });
    }
    debug_assert_eq!(segments.len(), plan.n_phdrs);
    for s in &mut segments {
        s.paddr = s.vaddr;
    }
    segments
}

/// The offsets, in their output sections, of the RELATIVE relocations that go to
/// `.relr.dyn`, grouped by output section (each group sorted).
fn relr_offsets(
    ctx: &Context,
    sections: &[OutputSection],
    placements: &[Vec<Placement>],
    needs: &Needs,
) -> Vec<(u32, Vec<u64>)> {
    let mut groups: HashMap<u32, Vec<u64>> = HashMap::default();
    for &(file, sec, offset) in &needs.relr {
        let p = &placements[file.0 as usize][sec as usize];
        groups.entry(p.out).or_default().push(p.offset + offset);
    }
    if let Some(got) = sections
        .iter()
        .position(|s| s.synthetic == Some(Synthetic::Got))
    {
        for (&(symref, gk), &slot) in needs.got_entries.iter().zip(&needs.got_slot) {
            if got_relative(ctx, symref, gk) {
                groups
                    .entry(got as u32)
                    .or_default()
                    .push(8 * u64::from(slot));
            }
        }
    }
    let mut groups: Vec<(u32, Vec<u64>)> = groups.into_iter().collect();
    groups.sort_unstable_by_key(|g| g.0);
    for (_, offsets) in &mut groups {
        offsets.sort_unstable();
    }
    groups
}

/// `.relr.dyn`'s exact size, once the members of the output sections have their offsets:
/// each output section's relocations are encoded on their own, so their encoding does not
/// depend on the section's address (see `crate::relr`).
pub(super) fn size_relr(
    ctx: &Context,
    sections: &mut [OutputSection],
    placements: &[Vec<Placement>],
    needs: &Needs,
) {
    let Some(relr) = sections
        .iter()
        .position(|s| s.synthetic == Some(Synthetic::Relr))
    else {
        return;
    };
    let words: usize = relr_offsets(ctx, sections, placements, needs)
        .iter()
        .map(|(_, offsets)| crate::relr::encoded_len(offsets))
        .sum();
    sections[relr].size = 8 * words as u64;
}
