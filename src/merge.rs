//! Merging of `SHF_MERGE|SHF_STRINGS` sections: each distinct string is stored once.
//!
//! The result is the same as inserting every string, input by input, into one table and
//! appending it on first sight: strings appear in order of first occurrence. The work is
//! spread over threads in four passes, none of which depends on thread scheduling:
//!
//! 1. per input: cut into strings, hash each one, group them by shard of the hash space;
//! 2. per shard of the hash space: find each string's first occurrence (its owner), by
//!    hash and length: no string's bytes are read;
//! 3. per input: compare each string with its owner (in input order, so only the owner's
//!    bytes are a cache miss; should two differ, pass 2 runs again comparing bytes), count
//!    the bytes of the strings it owns; a prefix sum gives each input's range in the blob,
//!    and the offset of each string it owns;
//! 4. per input: map each of its strings to its owner's output offset.

use rayon::prelude::*;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shards of pass 2: enough to keep two to a few dozen threads busy.
const SHARDS: usize = 64;

/// Where the merged strings go: the blob's size and, per input, where each of its strings
/// went. The blob is never built on its own: each input's first occurrences form one run
/// of it (`owned_start..owned_end`, in input order), which the writer copies straight into
/// the output ([`Pieces::copy_owned`]).
pub struct Merged {
    pub size: u64,
    pub pieces: Vec<Pieces>,
}

/// The strings of one input section: their input offsets (ascending) and their offsets in
/// the blob. Input offsets are 32-bit (inputs over 4 GiB are refused) so that the binary
/// search a relocation does touches fewer cache lines.
#[derive(Debug, PartialEq, Eq)]
pub struct Pieces {
    pub starts: Vec<u32>,
    pub outs: Vec<u64>,
    /// The blob range this input's own strings (first occurrences) fill.
    pub owned_start: u64,
    pub owned_end: u64,
    /// Per block of `1 << BLOCK_SHIFT` input bytes, the index of the first string starting
    /// at or after the block's start.
    pub blocks: Vec<u32>,
}

impl Pieces {
    /// Copies the strings this input owns from `data` (the input section) into `out`, the
    /// blob's `owned_start..owned_end`.
    pub fn copy_owned(&self, data: &[u8], out: &mut [u8]) {
        for (j, (&start, &at)) in self.starts.iter().zip(&self.outs).enumerate() {
            if at < self.owned_start {
                continue; // an earlier input's string
            }
            let end = self.starts.get(j + 1).map_or(data.len(), |&e| e as usize);
            let s = &data[start as usize..end];
            let at = (at - self.owned_start) as usize;
            out[at..at + s.len()].copy_from_slice(s);
        }
    }

    /// Blob offset of the byte at input offset `offset`.
    pub fn output_offset(&self, offset: u64) -> Option<u64> {
        let offset = u32::try_from(offset).ok()?;
        let starts = &self.starts;
        // The first string starting in `offset`'s block; the string holding `offset` is
        // the one before it, or it or one of the few after it in the block.
        let mut i = self
            .blocks
            .get((offset >> BLOCK_SHIFT) as usize)
            .map_or(starts.len(), |&i| i as usize);
        if starts.get(i).is_none_or(|&s| s > offset) {
            i = i.checked_sub(1)?;
        } else {
            while starts.get(i + 1).is_some_and(|&s| s <= offset) {
                i += 1;
            }
        }
        Some(self.outs[i] + u64::from(offset - starts[i]))
    }
}

/// Input offsets per entry of `Pieces::blocks`: relocations look strings up by offset, and
/// a binary search over a big `.debug_str` missed the cache at every step.
const BLOCK_SHIFT: u32 = 6;

/// `Pieces::blocks` for strings starting at `starts` in an input of `len` bytes.
fn block_index(starts: &[u32], len: usize) -> Vec<u32> {
    let blocks = (len >> BLOCK_SHIFT) + 1;
    let mut index = Vec::with_capacity(blocks);
    let mut i = 0;
    for b in 0..blocks {
        let at = (b as u64) << BLOCK_SHIFT;
        while starts.get(i).is_some_and(|&s| u64::from(s) < at) {
            i += 1;
        }
        index.push(i as u32);
    }
    index
}

/// The strings of one input: start offsets (plus the end), and each string's hash, length
/// and index grouped by shard (a counting sort).
struct Cut {
    starts: Vec<u32>,
    /// Where each shard's strings start in `entries` (and the end).
    shards: [u32; SHARDS + 1],
    entries: Vec<Entry>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    hash: u64,
    len: u32,
    index: u32,
}

impl Cut {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn shard(&self, s: usize) -> &[Entry] {
        &self.entries[self.shards[s] as usize..self.shards[s + 1] as usize]
    }

    fn string_len(&self, j: usize) -> u32 {
        self.starts[j + 1] - self.starts[j]
    }
}

/// A string named by its input and its index there, as owners are recorded.
fn string_id(i: usize, j: usize) -> u64 {
    ((i as u64) << 32) | j as u64
}

fn split_id(id: u64) -> (usize, usize) {
    ((id >> 32) as usize, id as u32 as usize)
}

/// Where each string of `data` ends: at its terminator of `entsize` zero bytes (aligned to
/// `entsize`), or at the end of the section.
fn cut(data: &[u8], entsize: usize, hash: fn(&[u8]) -> u64) -> Cut {
    let mut starts = Vec::new();
    let mut hashes = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let stop = if entsize == 1 {
            memchr::memchr(0, &data[start..]).map_or(data.len(), |p| start + p + 1)
        } else {
            let mut end = start;
            while end + entsize <= data.len() && data[end..end + entsize].iter().any(|&b| b != 0) {
                end += entsize;
            }
            (end + entsize).min(data.len())
        };
        starts.push(start as u32);
        hashes.push(hash(&data[start..stop]));
        start = stop;
    }
    starts.push(data.len() as u32);
    let mut shards = [0u32; SHARDS + 1];
    for &h in &hashes {
        shards[shard_of(h) + 1] += 1;
    }
    for s in 0..SHARDS {
        shards[s + 1] += shards[s];
    }
    let mut next = shards;
    let mut entries = vec![Entry::default(); hashes.len()];
    for (j, &hash) in hashes.iter().enumerate() {
        let s = shard_of(hash);
        entries[next[s] as usize] = Entry {
            hash,
            len: starts[j + 1] - starts[j],
            index: j as u32,
        };
        next[s] += 1;
    }
    Cut {
        starts,
        shards,
        entries,
    }
}

/// The hash a shard's table files a string under. The shard is chosen by the hash's top
/// bits, which hashbrown takes for its control bytes, and its low bits choose the bucket:
/// within one shard the shard bits are all alike, so they are rotated to the middle, where
/// hashbrown looks at neither (at either end, every probe would compare most entries of a
/// group, or start in one bucket of 64).
fn table_hash(hash: u64) -> u64 {
    hash.rotate_left(38)
}

fn shard_of(hash: u64) -> usize {
    // FxHash mixes into the high bits.
    (hash >> 58) as usize % SHARDS
}

/// Merges the strings of `inputs`, each `(data, entsize)`, in the given order. Every input
/// must be under 4 GiB.
pub fn merge_strings(inputs: &[(&[u8], usize)]) -> Merged {
    merge_strings_with(inputs, fx_hash)
}

fn fx_hash(s: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(s);
    h.finish()
}

/// [`merge_strings`] with strings hashed by `hash` (the tests make it collide).
fn merge_strings_with(inputs: &[(&[u8], usize)], hash: fn(&[u8]) -> u64) -> Merged {
    debug_assert!(inputs.iter().all(|(d, _)| d.len() < 1 << 32));
    // Pass 1: per input, its strings' starts, and its strings' (hash, length, index) grouped
    // by shard, so that pass 2 reads each shard's strings of an input in one run.
    let cuts: Vec<Cut> = inputs
        .par_iter()
        .with_max_len(1)
        .map(|&(data, entsize)| cut(data, entsize, hash))
        .collect();
    let mut base = Vec::with_capacity(cuts.len() + 1);
    let mut total = 0usize;
    for c in &cuts {
        base.push(total);
        total += c.len();
    }
    base.push(total);
    let bytes = |i: usize, j: usize| -> &[u8] {
        let c = &cuts[i];
        &inputs[i].0[c.starts[j] as usize..c.starts[j + 1] as usize]
    };
    let at = |id: u64| {
        let (i, j) = split_id(id);
        bytes(i, j)
    };

    // Pass 2: each shard walks its strings in global order; the first one seen owns. The
    // first try matches strings by hash and length only: no string's bytes are read (they
    // are the cache misses of a merge). Pass 3 then compares each string with the one it was
    // matched to, in input order; should two differ, pass 2 runs again comparing bytes.
    let mut exact = false;
    let (owner, owned) = loop {
        let owner: Vec<AtomicU64> = (0..total).map(|_| AtomicU64::new(0)).collect();
        (0..SHARDS).into_par_iter().with_max_len(1).for_each(|s| {
            let n = cuts.iter().map(|c| c.shard(s).len()).sum();
            // First occurrences seen so far: (hash, length, owner).
            let mut seen: hashbrown::HashTable<(u64, u32, u64)> =
                hashbrown::HashTable::with_capacity(n);
            for (i, c) in cuts.iter().enumerate() {
                for e in c.shard(s) {
                    let me = string_id(i, e.index as usize);
                    let same = |f: &(u64, u32, u64)| {
                        f.0 == e.hash
                            && f.1 == e.len
                            && (!exact || at(f.2) == bytes(i, e.index as usize))
                    };
                    let &(_, _, first) = seen
                        .entry(table_hash(e.hash), same, |f| table_hash(f.0))
                        .or_insert((e.hash, e.len, me))
                        .get();
                    owner[base[i] + e.index as usize].store(first, Ordering::Relaxed);
                }
            }
        });
        let owner: Vec<u64> = owner.into_iter().map(AtomicU64::into_inner).collect();

        // Pass 3 (no bytes are copied here: see `Merged`). The owner of a string a few
        // places ahead is fetched while this one is compared: the comparisons are cache
        // misses, one after another otherwise.
        const AHEAD: usize = 8;
        let owned: Option<Vec<u64>> = (0..cuts.len())
            .into_par_iter()
            .with_max_len(1)
            .map(|i| {
                let mut n = 0u64;
                let mine = &owner[base[i]..base[i + 1]];
                for (j, &first) in mine.iter().enumerate() {
                    if let Some(&ahead) = mine.get(j + AHEAD) {
                        if ahead != string_id(i, j + AHEAD) {
                            let (fi, fj) = split_id(ahead);
                            let start = cuts[fi].starts[fj] as usize;
                            prefetch(inputs[fi].0[start..].as_ptr());
                        }
                    }
                    if first == string_id(i, j) {
                        n += u64::from(cuts[i].string_len(j));
                    } else if !exact && at(first) != bytes(i, j) {
                        return None;
                    }
                }
                Some(n)
            })
            .collect();
        match owned {
            Some(owned) => break (owner, owned),
            None => exact = true,
        }
    };
    let mut run_start = Vec::with_capacity(cuts.len());
    let mut size = 0u64;
    for &n in &owned {
        run_start.push(size);
        size += n;
    }
    let out_offset: Vec<AtomicU64> = (0..total).map(|_| AtomicU64::new(0)).collect();
    (0..cuts.len())
        .into_par_iter()
        .with_max_len(1)
        .for_each(|i| {
            let mut at = run_start[i];
            for j in 0..cuts[i].len() {
                let g = base[i] + j;
                if owner[g] == string_id(i, j) {
                    out_offset[g].store(at, Ordering::Relaxed);
                    at += u64::from(cuts[i].string_len(j));
                }
            }
        });
    let out_offset: Vec<u64> = out_offset.into_iter().map(AtomicU64::into_inner).collect();

    // Pass 4.
    let pieces = cuts
        .into_par_iter()
        .with_max_len(1)
        .enumerate()
        .map(|(i, c)| {
            let n = c.len();
            let outs = owner[base[i]..base[i] + n]
                .iter()
                .map(|&o| {
                    let (oi, oj) = split_id(o);
                    out_offset[base[oi] + oj]
                })
                .collect();
            let mut starts = c.starts;
            let len = starts.pop().unwrap_or(0) as usize;
            let blocks = block_index(&starts, len);
            Pieces {
                blocks,
                starts,
                outs,
                owned_start: run_start[i],
                owned_end: run_start[i] + owned[i],
            }
        })
        .collect();
    Merged { size, pieces }
}

/// Asks the CPU to bring the cache line at `p` in, without waiting for it.
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and never faults,
    // whatever the address; SSE, which it needs, is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob `merge_strings` describes, built as the writer builds it.
    fn blob(inputs: &[(&[u8], usize)], m: &Merged) -> Vec<u8> {
        let mut data = vec![0u8; m.size as usize];
        for (&(d, _), p) in inputs.iter().zip(&m.pieces) {
            p.copy_owned(d, &mut data[p.owned_start as usize..p.owned_end as usize]);
        }
        data
    }

    /// The straightforward serial merge this module must reproduce: (blob, per input its
    /// strings' starts and blob offsets).
    #[allow(clippy::type_complexity)]
    fn serial(inputs: &[(&[u8], usize)]) -> (Vec<u8>, Vec<(Vec<u32>, Vec<u64>)>) {
        let mut data = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let mut pieces = Vec::new();
        for &(d, entsize) in inputs {
            let c = cut(d, entsize, fx_hash);
            let mut outs = Vec::new();
            for j in 0..c.len() {
                let s = &d[c.starts[j] as usize..c.starts[j + 1] as usize];
                let o = *seen.entry(s.to_vec()).or_insert_with(|| {
                    data.extend_from_slice(s);
                    (data.len() - s.len()) as u64
                });
                outs.push(o);
            }
            pieces.push((c.starts[..c.len()].to_vec(), outs));
        }
        (data, pieces)
    }

    /// Merges `refs` and checks the result against the serial merge.
    fn same_as_serial(refs: &[(&[u8], usize)]) -> Merged {
        same_as_serial_with(refs, fx_hash)
    }

    fn same_as_serial_with(refs: &[(&[u8], usize)], hash: fn(&[u8]) -> u64) -> Merged {
        let a = merge_strings_with(refs, hash);
        let (data, pieces) = serial(refs);
        assert_eq!(blob(refs, &a), data);
        let got: Vec<(Vec<u32>, Vec<u64>)> = a
            .pieces
            .iter()
            .map(|p| (p.starts.clone(), p.outs.clone()))
            .collect();
        assert_eq!(got, pieces);
        // Every input byte (and a few past the end) maps as a binary search over the starts
        // says.
        for (&(d, _), p) in refs.iter().zip(&a.pieces) {
            for off in 0..d.len() as u64 + 70 {
                let i = p.starts.partition_point(|&s| u64::from(s) <= off);
                let want = i
                    .checked_sub(1)
                    .map(|i| p.outs[i] + off - u64::from(p.starts[i]));
                assert_eq!(p.output_offset(off), want, "offset {off}");
            }
        }
        a
    }

    #[test]
    fn same_as_serial_first_occurrence() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        // Pseudo-random strings from a small alphabet, so that many repeat across inputs.
        let mut x = 0x1234_5678u64;
        for _ in 0..40 {
            let mut d = Vec::new();
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = (x % 4) as usize;
                for k in 0..len {
                    d.push(b'a' + ((x >> (8 * k)) % 3) as u8);
                }
                d.push(0);
            }
            // Some inputs end without a terminator.
            if x.is_multiple_of(2) {
                d.extend_from_slice(b"tail");
            }
            inputs.push(d);
        }
        let refs: Vec<(&[u8], usize)> = inputs.iter().map(|d| (d.as_slice(), 1)).collect();
        // Hashes that collide (by length; all the same): strings matched by hash and length
        // differ, and the merge must notice and compare bytes.
        same_as_serial_with(&refs, |s| s.len() as u64);
        same_as_serial_with(&refs, |_| 7);
        let a = same_as_serial(&refs);
        let p = &a.pieces[3];
        let (s, o) = (p.starts[2], p.outs[2]);
        assert_eq!(p.output_offset(u64::from(s)), Some(o));
        let len = a.pieces[3].starts[3] - s;
        if len > 1 {
            assert_eq!(p.output_offset(u64::from(s) + 1), Some(o + 1));
        }
        // Wide characters: a terminator is an aligned run of entsize zeros.
        let wide: Vec<u8> = [b'a', 0, 0, 0, 0, b'b', 0, 0, b'a', 0, 0, 0, 0, 0].to_vec();
        let refs = [(wide.as_slice(), 2), (wide.as_slice(), 2)];
        same_as_serial(&refs);
    }
}
