//! `.eh_frame` splitting and `.eh_frame_hdr` construction.
//!
//! An input `.eh_frame` is a sequence of CIE and FDE records. Records are the unit of
//! garbage collection and COMDAT elimination: an FDE whose function was discarded is dropped
//! and the CIE pointers of the remaining FDEs are rewritten when the output is written.
//! This module only parses and builds tables; it does not decide liveness.

use crate::inputs::elf::Rela;
use crate::inputs::elf::LE;
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
    table.dedup_by_key(|e| e.0);
    let mut out = Vec::with_capacity(hdr_size(table.len()));
    out.extend_from_slice(&[1, 0x1b, 0x03, 0x3b]);
    let ptr = eh_frame_addr.wrapping_sub(hdr_addr + 4) as i64 as i32;
    out.extend_from_slice(&ptr.to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    for (pc, fde) in table {
        out.extend_from_slice(&(pc.wrapping_sub(hdr_addr) as i64 as i32).to_le_bytes());
        out.extend_from_slice(&(fde.wrapping_sub(hdr_addr) as i64 as i32).to_le_bytes());
    }
    out
}

pub fn hdr_size(n_fdes: usize) -> usize {
    12 + 8 * n_fdes
}
