//! `.eh_frame` splitting and `.eh_frame_hdr` construction.
//!
//! An input `.eh_frame` is a sequence of CIE and FDE records. Records are the unit of
//! garbage collection and COMDAT elimination: an FDE whose function was discarded is dropped
//! and the CIE pointers of the remaining FDEs are rewritten when the output is written.
//! This module only parses and builds tables; it does not decide liveness.

use crate::input::elf::Rela;
use crate::input::elf::LE;
use anyhow::{bail, Result};

#[derive(Clone, Debug)]
pub struct Record {
    /// Offset of the record (its length field) in the input section.
    pub in_offset: u32,
    /// Total size including the length field.
    pub size: u32,
    pub is_cie: bool,
    /// For an FDE: input offset of its CIE.
    pub cie_offset: u32,
    /// Indexes into the section's relocations that fall inside this record.
    pub relocs: std::ops::Range<usize>,
    /// Output offset within the section's output contribution; `None` when dropped.
    pub out_offset: Option<u32>,
}

/// The CIE pointer field of FDE `fde` once the kept records of its section sit at their
/// `out_offset`s: the distance back from the field to its CIE (0 if the CIE was dropped).
pub fn cie_pointer(records: &[Record], fde: &Record) -> u32 {
    let cie_out = records
        .binary_search_by_key(&fde.cie_offset, |c| c.in_offset)
        .ok()
        .and_then(|i| records[i].out_offset)
        .unwrap_or(0);
    fde.out_offset.unwrap_or(0) + 4 - cie_out
}

/// Splits a section into records. `relocs` must be sorted by offset (compilers emit them so;
/// checked here).
pub fn split(data: &[u8], relocs: &[Rela]) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut reloc_index = 0usize;
    let mut last_reloc_offset = 0;
    for r in relocs {
        let o = r.r_offset.get(LE);
        if o < last_reloc_offset {
            bail!(".eh_frame relocations are not sorted by offset");
        }
        last_reloc_offset = o;
    }
    while offset < data.len() {
        if data.len() - offset < 4 {
            bail!(".eh_frame: truncated record at offset {offset:#x}");
        }
        let length = u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
        if length == 0xffff_ffff {
            bail!(".eh_frame: 64-bit DWARF records are not supported");
        }
        let size = if length == 0 { 4 } else { length + 4 };
        if offset + size > data.len() || (length != 0 && length < 4) {
            bail!(".eh_frame: record at offset {offset:#x} overruns the section");
        }
        let (is_cie, cie_offset) = if length == 0 {
            (true, 0)
        } else {
            let id = u32::from_le_bytes(data[offset + 4..offset + 8].try_into().unwrap());
            if id == 0 {
                (true, 0)
            } else {
                let cie = (offset + 4) as i64 - id as i64;
                if cie < 0 {
                    bail!(".eh_frame: FDE at offset {offset:#x} points before the section");
                }
                (false, cie as u32)
            }
        };
        let start = reloc_index;
        while reloc_index < relocs.len()
            && (relocs[reloc_index].r_offset.get(LE) as usize) < offset + size
        {
            reloc_index += 1;
        }
        records.push(Record {
            in_offset: offset as u32,
            size: size as u32,
            is_cie,
            cie_offset,
            relocs: start..reloc_index,
            out_offset: None,
        });
        offset += size;
    }
    Ok(records)
}

/// Finds the record containing input offset `offset` (records are sorted by offset).
pub fn record_at(records: &[Record], offset: u64) -> Option<&Record> {
    let i = records.partition_point(|r| u64::from(r.in_offset) <= offset);
    let r = records.get(i.checked_sub(1)?)?;
    (offset < u64::from(r.in_offset) + u64::from(r.size)).then_some(r)
}

/// Builds `.eh_frame_hdr`: version 1, `eh_frame_ptr` pcrel sdata4, count udata4, and a table
/// of (initial location, FDE address) pairs as datarel sdata4 sorted by location.
pub fn build_hdr(hdr_addr: u64, eh_frame_addr: u64, mut table: Vec<(u64, u64)>) -> Vec<u8> {
    table.sort_unstable();
    let mut out = vec![0; hdr_size(table.len())];
    let count = write_hdr(&mut out, hdr_addr, eh_frame_addr, table).unwrap_or(0);
    out.truncate(hdr_size(count));
    out
}

/// Writes `.eh_frame_hdr` into `dst` from `table`, sorted by location; of entries with the
/// same location, the first is kept. Returns the number of entries, or None if they do not
/// fit (the one encoder: the full link's and the lean update's).
pub fn write_hdr(
    dst: &mut [u8],
    hdr_addr: u64,
    eh_frame_addr: u64,
    table: impl IntoIterator<Item = (u64, u64)>,
) -> Option<usize> {
    let rel = |addr: u64, from: u64| (addr.wrapping_sub(from) as i64 as i32).to_le_bytes();
    let head = dst.get_mut(..8)?;
    head[..4].copy_from_slice(&[1, 0x1b, 0x03, 0x3b]);
    head[4..].copy_from_slice(&rel(eh_frame_addr, hdr_addr + 4));
    let (mut count, mut last_pc) = (0usize, None);
    let mut entries = dst.get_mut(hdr_size(0)..)?.chunks_exact_mut(8);
    for (pc, fde) in table {
        if last_pc == Some(pc) {
            continue;
        }
        last_pc = Some(pc);
        let entry = entries.next()?;
        entry[..4].copy_from_slice(&rel(pc, hdr_addr));
        entry[4..].copy_from_slice(&rel(fde, hdr_addr));
        count += 1;
    }
    dst.get_mut(8..12)?
        .copy_from_slice(&(count as u32).to_le_bytes());
    Some(count)
}

/// The (initial location, FDE address) entries of an `.eh_frame_hdr` at `hdr_addr`.
pub fn hdr_entries(hdr_addr: u64, bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let count = bytes
        .get(8..12)
        .map_or(0, |c| u32::from_le_bytes(c.try_into().unwrap()));
    bytes
        .get(12..)
        .unwrap_or(&[])
        .chunks_exact(8)
        .take(count as usize)
        .map(move |e| {
            let at = |i: usize| {
                let rel = i32::from_le_bytes(e[i..i + 4].try_into().unwrap());
                hdr_addr.wrapping_add(rel as i64 as u64)
            };
            (at(0), at(4))
        })
}

pub fn hdr_size(n_fdes: usize) -> usize {
    12 + 8 * n_fdes
}
