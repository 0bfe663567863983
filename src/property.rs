//! `.note.gnu.property`: what a program's objects promise about it (x86 CET's IBT and SHSTK,
//! the ISA level they need), merged into one note of the output as GNU ld merges them.
//!
//! A note is a `NT_GNU_PROPERTY_TYPE_0` note whose descriptor is a list of properties, each
//! `pr_type` (u32), `pr_datasz` (u32), then the data padded to 8 bytes, sorted by type. Each
//! type range has its own rule (binutils' `elf-properties.c` and `elfxx-x86.c`, the x86-64
//! psABI's "Program Property"):
//!
//! - AND ranges (`GNU_PROPERTY_X86_FEATURE_1_AND`: IBT, SHSTK): the output has the bits every
//!   input has; an input without the property has none, so one object built without
//!   `-fcf-protection` leaves the program unmarked.
//! - OR ranges (`GNU_PROPERTY_X86_ISA_1_NEEDED`): the bits any input has.
//! - OR-AND ranges (`GNU_PROPERTY_X86_ISA_1_USED`): the bits any input has, kept only if
//!   every input has the property.
//! - `GNU_PROPERTY_STACK_SIZE`: the largest; `GNU_PROPERTY_NO_COPY_ON_PROTECTED`: if any.
//!
//! Shared libraries take no part (the loader reads their own notes); unknown types are not
//! carried into the output, as GNU ld drops what it cannot merge.

use anyhow::{bail, Result};

/// `NT_GNU_PROPERTY_TYPE_0`.
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
const STACK_SIZE: u32 = 1;
const NO_COPY_ON_PROTECTED: u32 = 2;
/// `GNU_PROPERTY_X86_FEATURE_1_AND` and its bits.
pub const X86_FEATURE_1_AND: u32 = 0xc000_0002;
pub const FEATURE_1_IBT: u64 = 1;
pub const FEATURE_1_SHSTK: u64 = 2;
/// `GNU_PROPERTY_X86_ISA_1_NEEDED` (bit 0 baseline, 1 x86-64-v2, 2 v3, 3 v4).
pub const X86_ISA_1_NEEDED: u32 = 0xc000_8002;

/// One object's (or the output's) properties: (type, value), sorted by type, each type once.
/// A property without data (NO_COPY_ON_PROTECTED) has the value 0.
pub type Properties = Vec<(u32, u64)>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    And,
    Or,
    OrAnd,
    Max,
    Present,
}

fn rule(pr_type: u32) -> Option<Rule> {
    Some(match pr_type {
        STACK_SIZE => Rule::Max,
        NO_COPY_ON_PROTECTED => Rule::Present,
        0xb000_0000..=0xb000_7fff => Rule::And,
        0xb000_8000..=0xb000_ffff => Rule::Or,
        0xc000_0002..=0xc000_7fff => Rule::And,
        0xc000_8000..=0xc000_ffff => Rule::Or,
        0xc001_0000..=0xc001_7fff => Rule::OrAnd,
        _ => return None,
    })
}

/// The size of a property's data by its rule.
fn data_size(rule: Rule) -> usize {
    match rule {
        Rule::Max => 8,
        Rule::Present => 0,
        _ => 4,
    }
}

/// Reads the properties of an object's `.note.gnu.property` section (`None` without one).
/// Properties of types weld does not merge are left out.
pub fn parse(note: &[u8]) -> Result<Properties> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(note.get(at..at + 4)?.try_into().ok()?))
    };
    let mut props = Properties::new();
    let mut at = 0;
    while at < note.len() {
        let (Some(namesz), Some(descsz), Some(n_type)) = (word(at), word(at + 4), word(at + 8))
        else {
            bail!("truncated note header at offset {at}");
        };
        let name_at = at + 12;
        // The descriptor and the next note start 8-aligned in an ELF64 property note.
        let end = (name_at + namesz as usize)
            .next_multiple_of(8)
            .checked_add(descsz as usize)
            .filter(|&end| end <= note.len())
            .ok_or_else(|| anyhow::anyhow!("note at offset {at} runs past the section"))?;
        if n_type == NT_GNU_PROPERTY_TYPE_0 && note.get(name_at..name_at + 4) == Some(b"GNU\0") {
            let mut p = end - descsz as usize;
            while p < end {
                let (Some(pr_type), Some(datasz)) = (word(p), word(p + 4)) else {
                    bail!("truncated property at offset {p}");
                };
                let data_at = p + 8;
                let data_end = data_at
                    .checked_add(datasz as usize)
                    .filter(|&e| e <= end)
                    .ok_or_else(|| anyhow::anyhow!("property {pr_type:#x} runs past its note"))?;
                let data = &note[data_at..data_end];
                if let Some(rule) = rule(pr_type) {
                    if data.len() != data_size(rule) {
                        bail!("property {pr_type:#x} has {datasz} bytes of data");
                    }
                    let value = match data.len() {
                        0 => 0,
                        4 => u64::from(u32::from_le_bytes(data.try_into().unwrap())),
                        _ => u64::from_le_bytes(data.try_into().unwrap()),
                    };
                    match props.iter_mut().find(|(t, _)| *t == pr_type) {
                        Some(slot) => slot.1 = combine(rule, slot.1, value),
                        None => props.push((pr_type, value)),
                    }
                }
                p = data_at + (datasz as usize).next_multiple_of(8);
            }
        }
        at = end.next_multiple_of(8);
    }
    props.sort_unstable();
    Ok(props)
}

fn combine(rule: Rule, a: u64, b: u64) -> u64 {
    match rule {
        Rule::And => a & b,
        Rule::Or | Rule::OrAnd => a | b,
        Rule::Max => a.max(b),
        Rule::Present => 0,
    }
}

/// What the command line adds to the merged properties (`-z ibt`, `-z shstk`,
/// `-z x86-64-v2`, ...).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Forced {
    /// Bits of GNU_PROPERTY_X86_FEATURE_1_AND.
    pub features: u64,
    /// Bits of GNU_PROPERTY_X86_ISA_1_NEEDED.
    pub isa_needed: u64,
}

/// The output's properties from its objects' (in any order: every rule is commutative).
pub fn merge<'a>(objects: impl IntoIterator<Item = &'a Properties>, forced: Forced) -> Properties {
    let mut out: Option<Properties> = None;
    for props in objects {
        out = Some(match out {
            None => props.clone(),
            Some(acc) => merge_two(&acc, props),
        });
    }
    let mut out = out.unwrap_or_default();
    // An AND property that no input keeps is absent, as GNU ld removes it.
    out.retain(|&(t, v)| v != 0 || rule(t) == Some(Rule::Present));
    for (pr_type, bits) in [
        (X86_FEATURE_1_AND, forced.features),
        (X86_ISA_1_NEEDED, forced.isa_needed),
    ] {
        if bits == 0 {
            continue;
        }
        match out.iter_mut().find(|(t, _)| *t == pr_type) {
            Some(slot) => slot.1 |= bits,
            None => out.push((pr_type, bits)),
        }
    }
    out.sort_unstable();
    out
}

fn merge_two(a: &Properties, b: &Properties) -> Properties {
    let mut out = Properties::new();
    let types = a.iter().chain(b).map(|&(t, _)| t);
    for t in types {
        if out.iter().any(|&(o, _)| o == t) {
            continue;
        }
        let rule = rule(t).expect("only merged types are read");
        let (x, y) = (
            a.iter().find(|p| p.0 == t).map(|p| p.1),
            b.iter().find(|p| p.0 == t).map(|p| p.1),
        );
        match (x, y, rule) {
            (Some(x), Some(y), _) => out.push((t, combine(rule, x, y))),
            // Kept only where every input has it.
            (_, _, Rule::And | Rule::OrAnd) => {}
            (Some(v), None, _) | (None, Some(v), _) => out.push((t, v)),
            (None, None, _) => unreachable!(),
        }
    }
    out.sort_unstable();
    out
}

/// The bytes of the output's `.note.gnu.property` (empty for no properties).
pub fn encode(props: &Properties) -> Vec<u8> {
    if props.is_empty() {
        return Vec::new();
    }
    let mut desc = Vec::new();
    for &(t, v) in props {
        let size = data_size(rule(t).expect("only merged types are kept"));
        desc.extend_from_slice(&t.to_le_bytes());
        desc.extend_from_slice(&(size as u32).to_le_bytes());
        desc.extend_from_slice(&v.to_le_bytes()[..size]);
        desc.resize(desc.len().next_multiple_of(8), 0);
    }
    let mut note = Vec::with_capacity(16 + desc.len());
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    note.extend_from_slice(&NT_GNU_PROPERTY_TYPE_0.to_le_bytes());
    note.extend_from_slice(b"GNU\0");
    note.extend_from_slice(&desc);
    note
}

/// GNU ld's `-z cet-report` words for what an object's properties lack.
pub fn missing_cet(props: &Properties) -> Option<&'static str> {
    let features = props
        .iter()
        .find(|p| p.0 == X86_FEATURE_1_AND)
        .map_or(0, |p| p.1);
    match (
        features & FEATURE_1_IBT != 0,
        features & FEATURE_1_SHSTK != 0,
    ) {
        (false, false) => Some("IBT and SHSTK properties"),
        (false, true) => Some("IBT property"),
        (true, false) => Some("SHSTK property"),
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(props: &[(u32, &[u8])]) -> Vec<u8> {
        let mut desc = Vec::new();
        for (t, data) in props {
            desc.extend_from_slice(&t.to_le_bytes());
            desc.extend_from_slice(&(data.len() as u32).to_le_bytes());
            desc.extend_from_slice(data);
            desc.resize(desc.len().next_multiple_of(8), 0);
        }
        let mut n = vec![];
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&5u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&desc);
        n
    }

    #[test]
    fn rules_follow_gnu_ld() {
        let cet = parse(&note(&[(X86_FEATURE_1_AND, &3u32.to_le_bytes())])).unwrap();
        let ibt = parse(&note(&[(X86_FEATURE_1_AND, &1u32.to_le_bytes())])).unwrap();
        let isa = parse(&note(&[(X86_ISA_1_NEEDED, &1u32.to_le_bytes())])).unwrap();
        let none = Properties::new();
        assert_eq!(
            merge([&cet, &ibt], Forced::default()),
            vec![(X86_FEATURE_1_AND, 1)]
        );
        // One object without the note: no CET marking; the ISA level stays.
        assert_eq!(
            merge([&cet, &isa, &none], Forced::default()),
            vec![(X86_ISA_1_NEEDED, 1)]
        );
        let forced = Forced {
            features: FEATURE_1_SHSTK,
            isa_needed: 2,
        };
        assert_eq!(
            merge([&ibt, &isa], forced),
            vec![(X86_FEATURE_1_AND, 2), (X86_ISA_1_NEEDED, 3)]
        );
        assert_eq!(
            encode(&merge([&cet], Forced::default())),
            note(&[(X86_FEATURE_1_AND, &3u32.to_le_bytes())])
        );
        assert!(parse(&note(&[(X86_FEATURE_1_AND, &[1, 0])])).is_err());
        assert!(parse(&[1, 2, 3]).is_err());
    }
}
