//! Step 6 of layout without a linker script: the offsets of the members of each output
//! section (input sections with their `.eh_frame` records, merged strings, common symbols
//! and copy-relocated data). In incremental mode each file's run of members in an output
//! section is a slot: a fresh link gives slots spare room, an update puts them where the
//! last link did and moves those that outgrew their room.
//!
//! Addresses and file offsets come after, in [`super::addresses`]; a script's `SECTIONS`
//! places members in [`super::scripted`].

use super::{
    fallback, is_c_identifier, walked_by_units, Mapping, Member, MergedStrings, OutputSection,
    Placement, Slot, Slots,
};
use crate::context::Context;
use crate::eh_frame::Record;
use crate::input::elf::LE;
use crate::symbols::{Def, FileId, SymbolId};
use anyhow::Result;
use object::elf;
use rustc_hash::FxHashMap as HashMap;

/// Common symbols' places, the slots, and the files whose slots an update resized.
pub(super) type Placed = (HashMap<SymbolId, (u32, u64)>, Vec<Slot>, Vec<FileId>);

/// Step 6 of [`super::compute`] without a script: the offsets of the members of every
/// output section but the synthetic ones, and each section's size; in incremental mode,
/// the slots, as `slot_mode` says.
pub(super) fn place_members(
    ctx: &Context,
    sections: &mut [OutputSection],
    placements: &mut [Vec<Placement>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    merged: &mut [MergedStrings],
    slot_mode: Slots,
) -> Result<Placed> {
    let mut placer = Placer {
        ctx,
        placements,
        eh_records,
        merged,
        slot_mode,
        commons: HashMap::default(),
        slots: Vec::new(),
        resized: Vec::new(),
    };
    for (id, os) in sections.iter_mut().enumerate() {
        if os.synthetic.is_some() {
            continue;
        }
        os.size = placer.section(id as u32, os)?;
    }
    let Placer {
        commons,
        slots,
        mut resized,
        ..
    } = placer;
    resized.sort_unstable();
    resized.dedup();
    Ok((commons, slots, resized))
}

/// What placing members reads, and what it builds, output section by output section.
struct Placer<'a> {
    ctx: &'a Context<'a>,
    placements: &'a mut [Vec<Placement>],
    eh_records: &'a HashMap<(FileId, u32), Vec<Record>>,
    merged: &'a mut [MergedStrings],
    slot_mode: Slots<'a>,
    commons: HashMap<SymbolId, (u32, u64)>,
    slots: Vec<Slot>,
    resized: Vec<FileId>,
}

/// One output section's slots while its members are placed (not used when packed).
struct SectionSlots {
    /// A file's slots in this section, in member order: after an update moved one, the
    /// slots are no longer in address order, so they are found by file and occurrence.
    recorded: RecordedSlots,
    /// Index into `slots` of the section's first slot.
    first: usize,
    /// Per slot of this section: the largest alignment of its members, and its members.
    align: Vec<u64>,
    members: Vec<Vec<u32>>,
    /// Slots that outgrew their room, and slots not recorded (replay only).
    overflowing: Vec<usize>,
    new: Vec<usize>,
    /// The slot being filled: index into `slots`.
    open: Option<usize>,
}

impl Placer<'_> {
    /// Places the members of output section `out` (`os`); returns the section's size.
    fn section(&mut self, out: u32, os: &mut OutputSection) -> Result<u64> {
        let mut size = 0u64;
        let is_eh_frame = os.name == ".eh_frame";
        let recorded: &[(FileId, u64, u64)] = match self.slot_mode {
            Slots::Replay(rec) => rec.slots.get(&os.name).map_or(&[], |v| v.as_slice()),
            _ => &[],
        };
        let mut run = SectionSlots {
            recorded: RecordedSlots::new(recorded),
            first: self.slots.len(),
            align: Vec::new(),
            members: Vec::new(),
            overflowing: Vec::new(),
            new: Vec::new(),
            open: None,
        };
        for member in &os.members {
            if !matches!(self.slot_mode, Slots::Packed) {
                self.switch_slot(out, os, member, &mut run, &mut size);
            }
            match *member {
                Member::Input { file, sec } => {
                    self.input(out, (file, sec), is_eh_frame, &mut run, &mut size);
                }
                Member::Merged(m) => {
                    let blob = &mut self.merged[m as usize];
                    os.align = os.align.max(blob.align);
                    size = size.next_multiple_of(blob.align);
                    blob.offset = size;
                    size += blob.size;
                }
                Member::Common(sym) => {
                    if let Some(align) = self.common(out, sym, &mut size) {
                        os.align = os.align.max(align);
                    }
                }
            }
        }
        if let Some(i) = run.open {
            self.close(i, os, &mut run, &mut size);
        }
        match self.slot_mode {
            Slots::Packed => {}
            Slots::Fresh { spare_percent } => {
                self.add_tail_room(os, run.first, spare_percent, &mut size);
            }
            Slots::Replay(_) => size = self.rearrange(out, os, &mut run, size)?,
        }
        Ok(size)
    }

    /// Incremental mode, before `member`: closes the open slot if `member` is not of its
    /// file; if no slot is open and `member` is a file's input section, opens that file's
    /// next slot (an update: its recorded one) and moves `size` to its start.
    fn switch_slot(
        &mut self,
        out: u32,
        os: &OutputSection,
        member: &Member,
        run: &mut SectionSlots,
        size: &mut u64,
    ) {
        let file = match *member {
            Member::Input { file, .. } => Some(file),
            _ => None,
        };
        let current = run.open.map(|i| self.slots[i].file);
        if current.is_some() && current != file {
            let i = run.open.take().unwrap();
            self.close(i, os, run, size);
        }
        if let (None, Some(file)) = (run.open, file) {
            let (start, capacity) = match self.slot_mode {
                Slots::Replay(_) => {
                    match run.recorded.take(file) {
                        Some(slot) => slot,
                        // A file with no slot here before (a changed object's new
                        // section): placed here for now, then given room from
                        // the section's tail.
                        None => {
                            run.new.push(self.slots.len());
                            (*size, 0)
                        }
                    }
                }
                _ => (*size, 0),
            };
            *size = start;
            self.slots.push(Slot {
                out,
                file,
                start,
                used: 0,
                capacity,
            });
            run.align.push(1);
            run.members.push(Vec::new());
            run.open = Some(self.slots.len() - 1);
        }
    }

    /// Ends slot `i` where `size` says the section is filled up to (see [`close_slot`]),
    /// noting it if it outgrew its recorded room.
    fn close(&mut self, i: usize, os: &OutputSection, run: &mut SectionSlots, size: &mut u64) {
        if close_slot(self.slot_mode, &mut self.slots[i], size, os) {
            run.overflowing.push(i);
        }
    }

    /// Places input section `sec` of `file` (with its records, in `.eh_frame`) at `size`,
    /// in the open slot if there is one.
    fn input(
        &mut self,
        out: u32,
        (file, sec): (FileId, u32),
        is_eh_frame: bool,
        run: &mut SectionSlots,
        size: &mut u64,
    ) {
        let obj = &self.ctx.res.objects[file.0 as usize].obj;
        // (Only .eh_frame has records: one probe per member there, none elsewhere.)
        let eh = if is_eh_frame {
            self.eh_records.get(&(file, sec))
        } else {
            None
        };
        let (at, mapping, align) = pack_member(obj, sec, eh, size);
        if let Some(i) = run.open {
            run.align[i - run.first] = run.align[i - run.first].max(align);
            run.members[i - run.first].push(sec);
        }
        self.placements[file.0 as usize][sec as usize] = Placement {
            out,
            offset: at,
            mapping,
        };
    }

    /// Places common symbol `sym` (or the copy of a shared object's data it refers to) at
    /// `size` in output section `out`; returns its alignment, `None` if it is neither.
    fn common(&mut self, out: u32, sym: SymbolId, size: &mut u64) -> Option<u64> {
        let ctx = self.ctx;
        let def = match ctx.res.symbols.get(sym).def {
            Def::Shared { dso, index } => {
                // A copy relocation: the shared object's size; alignment from
                // its address there.
                let d = &ctx.res.dsos[dso as usize].dso.defined[index as usize];
                let align = (1u64 << d.value.trailing_zeros().min(6)).max(1);
                Def::Common {
                    file: FileId(0),
                    sym: 0,
                    size: d.size,
                    align,
                }
            }
            def => def,
        };
        let Def::Common {
            size: csize, align, ..
        } = def
        else {
            return None;
        };
        *size = size.next_multiple_of(align);
        self.commons.insert(sym, (out, *size));
        *size += csize;
        Some(align)
    }

    /// A fresh incremental layout, once the members of `os` (slots from `first`) are placed:
    /// room at the end of the section for a slot that outgrows its own: it belongs to the
    /// last slot until an update hands it out.
    fn add_tail_room(
        &mut self,
        os: &OutputSection,
        first: usize,
        spare_percent: u64,
        size: &mut u64,
    ) {
        let tail = tail_room(os, *size, spare_percent);
        // (Only if the last slot ends the section: common symbols may follow it.)
        if let Some(last) = self.slots[first..]
            .last_mut()
            .filter(|l| tail > 0 && l.start + l.capacity == *size)
        {
            last.capacity += tail;
            *size += tail;
        }
    }

    /// An update, once the members of `os` (output section `out`) are placed in their
    /// recorded slots: hands out the recorded slots no file filled, moves the slots that
    /// outgrew their room and the new ones, and checks that the slots still tile the
    /// section. Returns the section's size.
    fn rearrange(
        &mut self,
        out: u32,
        os: &OutputSection,
        run: &mut SectionSlots,
        size: u64,
    ) -> Result<u64> {
        self.hand_out_left(out, os, run)?;
        for &k in &run.new {
            if !run.overflowing.contains(&k) {
                run.overflowing.push(k);
            }
        }
        self.move_overflowing(os, run)?;
        // The slots must still tile the section without overlapping.
        let mut ranges: Vec<(u64, u64)> = self.slots[run.first..]
            .iter()
            .map(|s| (s.start, s.start + s.capacity.max(s.used)))
            .collect();
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(fallback(format!(
                "the slots in {} could not be rearranged",
                os.name
            )));
        }
        // (Common symbols and copy-relocated data follow the slots, at `size`.)
        Ok(ranges.iter().map(|r| r.1).max().unwrap_or(size).max(size))
    }

    /// An update: recorded slots no file fills now (a changed object lost its section here):
    /// the slot before each takes over its range, or, where units need not be walked, it
    /// stays as an empty slot of its file.
    fn hand_out_left(&mut self, out: u32, os: &OutputSection, run: &SectionSlots) -> Result<()> {
        let mut left: Vec<(FileId, u64, u64)> = run.recorded.left();
        left.sort_unstable_by_key(|&(_, start, _)| std::cmp::Reverse(start));
        for (file, start, capacity) in left {
            let slots = &mut self.slots;
            let pred = (run.first..slots.len())
                .filter(|&i| !run.new.contains(&i) && slots[i].start < start)
                .max_by_key(|&i| slots[i].start);
            match pred {
                Some(i) => {
                    slots[i].capacity = start + capacity - slots[i].start;
                    self.resized.push(slots[i].file);
                }
                // (A removed object's slot names no file of this link.)
                None if !walked_by_units(&os.name)
                    && (file.0 as usize) < self.ctx.res.objects.len() =>
                {
                    slots.push(Slot {
                        out,
                        file,
                        start,
                        used: 0,
                        capacity,
                    })
                }
                // In a section no other file refers into (debug sections,
                // .eh_frame), the next slot moves down over the range: its file is
                // rewritten, its own references into it relocated again.
                None if os.sh_flags & u64::from(elf::SHF_ALLOC) == 0 || os.name == ".eh_frame" => {
                    self.move_next_down(os, run, start)?;
                }
                None => return Err(fallback(format!("the first slot in {} is gone", os.name))),
            }
        }
        Ok(())
    }

    /// An update, where the first recorded slot of `os` is gone (from `start`) in a section
    /// no other file refers into: the next slot moves down over its range, with its members.
    fn move_next_down(&mut self, os: &OutputSection, run: &SectionSlots, start: u64) -> Result<()> {
        let (first_slot, slots) = (run.first, &mut self.slots);
        let next = (first_slot..slots.len())
            .filter(|&i| i - first_slot < run.members.len())
            .filter(|&i| !run.new.contains(&i) && slots[i].start > start)
            .min_by_key(|&i| slots[i].start);
        let Some(i) = next.filter(|&i| start.is_multiple_of(run.align[i - first_slot])) else {
            return Err(fallback(format!("the first slot in {} is gone", os.name)));
        };
        let delta = slots[i].start - start;
        slots[i].start = start;
        slots[i].capacity += delta;
        let f = slots[i].file.0 as usize;
        for &sec in &run.members[i - first_slot] {
            self.placements[f][sec as usize].offset -= delta;
        }
        self.resized.push(slots[i].file);
        Ok(())
    }

    /// An update: moves each slot of `os` that outgrew its room, and each new one, to room
    /// another slot has to spare (see [`move_slot`]); their members move with them.
    fn move_overflowing(&mut self, os: &OutputSection, run: &SectionSlots) -> Result<()> {
        // New slots sit at a made-up place until they move: no neighbour, no host.
        let mut unplaced: Vec<usize> = run.new.clone();
        for &k in &run.overflowing {
            let members = &run.members[k - run.first];
            let align = run.align[k - run.first];
            let is_new = run.new.contains(&k);
            if !is_new && self.slots[k].used <= self.slots[k].capacity {
                continue; // took over the range of a slot moved before it
            }
            let (old_start, new_start) = move_slot(
                self.ctx,
                os,
                &mut self.slots,
                (run.first, k, &unplaced),
                align,
                is_new,
                &mut self.resized,
            )?;
            unplaced.retain(|&u| u != k);
            let file = self.slots[k].file.0 as usize;
            for &sec in members {
                let p = &mut self.placements[file][sec as usize];
                p.offset = p.offset - old_start + new_start;
            }
        }
        Ok(())
    }
}

/// Ends a slot where `size` says its section is filled up to: its room (with spare room in
/// a fresh incremental layout; as recorded in an update), moving `size` past it. True if it
/// outgrew its recorded room.
fn close_slot(slot_mode: Slots, slot: &mut Slot, size: &mut u64, os: &OutputSection) -> bool {
    slot.used = *size - slot.start;
    match slot_mode {
        Slots::Packed => {}
        Slots::Fresh { spare_percent } => {
            let spare = spare_room(os, slot.used, spare_percent);
            let end = if spare == 0 {
                *size
            } else {
                (*size + spare).next_multiple_of(16)
            };
            slot.capacity = end - slot.start;
            *size = end;
        }
        Slots::Replay(_) => {
            *size = slot.start + slot.capacity;
            // Moved to the section's tail room below, if it has enough.
            return slot.used > slot.capacity;
        }
    }
    false
}

/// One output section's recorded slots, taken file by file in their recorded order.
struct RecordedSlots {
    /// The slots, by file (each file's in recorded order).
    by_file: Vec<(FileId, u64, u64)>,
    /// Per file: its next slot in `by_file`, and the end of its run.
    next: HashMap<FileId, (usize, usize)>,
}

impl RecordedSlots {
    fn new(recorded: &[(FileId, u64, u64)]) -> RecordedSlots {
        let mut by_file = recorded.to_vec();
        by_file.sort_by_key(|s| s.0);
        let mut next = HashMap::default();
        let mut i = 0;
        while i < by_file.len() {
            let f = by_file[i].0;
            let end = i + by_file[i..].partition_point(|s| s.0 == f);
            next.insert(f, (i, end));
            i = end;
        }
        RecordedSlots { by_file, next }
    }

    /// `file`'s next recorded slot: (start, capacity).
    fn take(&mut self, file: FileId) -> Option<(u64, u64)> {
        let (at, end) = self.next.get_mut(&file)?;
        (*at < *end).then(|| {
            *at += 1;
            let s = self.by_file[*at - 1];
            (s.1, s.2)
        })
    }

    /// The slots not taken.
    fn left(&self) -> Vec<(FileId, u64, u64)> {
        self.next
            .values()
            .flat_map(|&(at, end)| self.by_file[at..end].iter().copied())
            .collect()
    }
}

/// Places input section `sec` of `obj` (with its `.eh_frame` records, if it has them) where
/// `size` says its output section or slot is filled up to, and moves `size` past it.
/// Returns its offset, how its offsets map, and its alignment.
pub(crate) fn pack_member(
    obj: &crate::input::elf::ObjectFile,
    sec: u32,
    eh: Option<&Vec<Record>>,
    size: &mut u64,
) -> (u64, Mapping, u64) {
    // .eh_frame records are packed with no padding between input sections: zero padding
    // would read as a terminator to an unwinder walking them.
    let align = match eh {
        Some(_) => 4,
        None => obj.shdrs[sec as usize].sh_addralign.get(LE).max(1),
    };
    let at = size.next_multiple_of(align);
    let (mapping, len) = match eh {
        Some(records) => (
            Mapping::EhFrame,
            records
                .iter()
                .filter(|r| r.out_offset.is_some())
                .map(|r| u64::from(r.size))
                .sum(),
        ),
        None => (Mapping::Plain, obj.section_size(sec as usize)),
    };
    *size = at + len;
    (at, mapping, align)
}

/// Room at the end of an output section in a fresh incremental-mode layout, for slots that
/// outgrow their own room later: a sixteenth of the section plus 4 KiB, where slots have
/// spare room at all (not in TLS sections, whose offsets other modules may know).
fn tail_room(os: &OutputSection, size: u64, spare_percent: u64) -> u64 {
    if spare_room(os, 1, spare_percent) == 0 || spare_percent == 0 {
        return 0;
    }
    if os.sh_flags & u64::from(elf::SHF_TLS) != 0 {
        // Every thread gets a copy of the TLS block: less room, for a few new variables.
        return (size / 4 + 256).next_multiple_of(16);
    }
    (size / 16 + 4096).next_multiple_of(16)
}

/// Replay: slot `k` of `os` outgrew its recorded room (or is new). Its old range goes to
/// the slot before it in address order (which is rewritten, its last unit or its fill
/// covering the range). It then takes the room beyond what another slot uses and keeps as
/// spare: the smallest such room that holds it, often the section's tail room, which the
/// last slot holds. That slot is rewritten too. Returns the slot's old and new start (its
/// members move with it).
fn move_slot(
    ctx: &Context,
    os: &OutputSection,
    slots: &mut [Slot],
    (first, k, unplaced): (usize, usize, &[usize]),
    align: u64,
    is_new: bool,
    resized: &mut Vec<FileId>,
) -> Result<(u64, u64)> {
    let (name, used, capacity) = (
        &ctx.res.objects[slots[k].file.0 as usize].name,
        slots[k].used,
        slots[k].capacity,
    );
    let no_room = |why: &str| {
        Err(fallback(format!(
            "{name} outgrew its slot in {} ({used} bytes, room for {capacity}) and {why}",
            os.name,
        )))
    };
    let (old_start, old_capacity) = (slots[k].start, slots[k].capacity);
    if !is_new {
        let Some(pred) = (first..slots.len())
            .filter(|&i| i != k && !unplaced.contains(&i) && slots[i].start < old_start)
            .max_by_key(|&i| slots[i].start)
        else {
            return no_room("it is the first in the section");
        };
        slots[pred].capacity = old_start + old_capacity - slots[pred].start;
        resized.push(slots[pred].file);
    }
    let pct = ctx
        .config
        .incremental_spare
        .unwrap_or(crate::args::DEFAULT_INCREMENTAL_SPARE);
    // (room, host, new start, end of the host's range)
    let host = (first..slots.len())
        .filter(|&i| i != k && !unplaced.contains(&i))
        .filter_map(|i| {
            let h = &slots[i];
            let keep = h.used + spare_room(os, h.used, pct);
            let start = (h.start + keep).next_multiple_of(align.max(16));
            let end = h.start + h.capacity;
            (start + slots[k].used <= end).then(|| (end - start, i, start, end))
        })
        .min();
    let Some((_, host, new_start, end)) = host else {
        return no_room("no slot in the section has that much room to spare");
    };
    slots[host].capacity = new_start - slots[host].start;
    resized.push(slots[host].file);
    slots[k].start = new_start;
    slots[k].capacity = end - new_start;
    Ok((old_start, new_start))
}

/// Room left after a slot of `used` bytes in `os` in incremental mode. Sections whose
/// contents are walked as arrays (init/fini arrays, notes, `__start_`/`__stop_` sections)
/// get none: padding there would read as entries.
fn spare_room(os: &OutputSection, used: u64, spare_percent: u64) -> u64 {
    let array = matches!(
        os.name.as_str(),
        ".init_array" | ".fini_array" | ".preinit_array" | ".ctors" | ".dtors"
        // crti.o and crtn.o each hold half of the _init and _fini functions.
        | ".init" | ".fini"
    ) || os.sh_type == elf::SHT_NOTE
        || is_c_identifier(&os.name);
    if array || os.name == ".debug_names" || (used == 0 && walked_by_units(&os.name)) {
        0
    } else if os.sh_flags & u64::from(elf::SHF_EXECINSTR) != 0 {
        // A small edit adds a call or a panic path: tens to hundreds of bytes of code.
        used * spare_percent / 100 + 256
    } else {
        used * spare_percent / 100 + 64
    }
}
