//! Step 5's first half (see [`compute`](super::compute)): each live input section's output
//! section, by name or by a script's rules, in order; merged strings merged; commons and
//! copy-relocated symbols in `.bss`.

use super::{
    is_content, output_name, scripted, Mapping, Member, MergeMap, MergedStrings, OutputSection,
    Placement, NOT_PLACED,
};
use crate::args::Config;
use crate::context::{Context, Needs};
use crate::input::elf::{Shdr, LE, SHT_X86_64_UNWIND};
use crate::resolve::{LoadedObject, Resolution};
use crate::symbols::{Def, FileId, SymbolId};
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

pub(crate) fn rank(name: &str, sh_type: u32, flags: u64) -> u32 {
    let flags = flags as u32;
    if flags & elf::SHF_ALLOC == 0 {
        return 1000;
    }
    let write = flags & elf::SHF_WRITE != 0;
    let exec = flags & elf::SHF_EXECINSTR != 0;
    let nobits = sh_type == elf::SHT_NOBITS;
    if !write && !exec {
        return match name {
            ".interp" => 5,
            // GNU ld's order: the property note first (its PT_NOTE is 8-aligned).
            ".note.gnu.property" => 9,
            _ if sh_type == elf::SHT_NOTE => 10,
            ".hash" => 12,
            ".gnu.hash" => 13,
            ".dynsym" => 15,
            ".dynstr" => 16,
            ".gnu.version" => 17,
            ".gnu.version_d" => 18,
            ".gnu.version_r" => 19,
            ".rela.dyn" | ".rela.iplt" => 20,
            ".rela.plt" => 21,
            ".relr.dyn" => 22,
            ".rodata" => 30,
            ".eh_frame_hdr" => 40,
            ".eh_frame" => 41,
            ".gcc_except_table" => 42,
            _ => 31,
        };
    }
    if exec && !write {
        return match name {
            ".init" => 100,
            ".plt" => 110,
            ".iplt" => 111,
            ".text" => 120,
            ".fini" => 130,
            _ => 125,
        };
    }
    if flags & elf::SHF_TLS != 0 {
        return if nobits { 201 } else { 200 };
    }
    match name {
        ".preinit_array" => 210,
        ".init_array" => 211,
        ".fini_array" => 212,
        ".data.rel.ro" => 220,
        ".dynamic" => 221,
        ".got" => 222,
        ".got.plt" => 300,
        ".data" => 310,
        ".bss" => 400,
        // The large model's zeroes after every other (GNU ld's order): small-model data
        // stays within 2 GiB of the code however large .lbss is.
        ".lbss" => 420,
        _ if nobits => 410,
        _ => 320,
    }
}

/// Priority for sorting `.init_array.N` / `.fini_array.N` inputs; unsuffixed ones go last.
pub(crate) fn init_priority(name: &str) -> u64 {
    match name.rsplit_once('.') {
        Some((_, digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().unwrap_or(u64::MAX)
        }
        _ => u64::MAX,
    }
}

pub(super) fn is_c_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// The strings of the non-alloc merged sections of one name (`.debug_str`), merged before
/// liveness is known: its inputs (file, section, entry size) in link order, and the result.
pub(super) struct EarlyMerge {
    name: &'static [u8],
    inputs: Vec<(FileId, u32, usize)>,
    merged: crate::merge::Merged,
}

/// The contents to merge for `inputs` (file, section, entry size).
fn merge_data(
    res: &Resolution,
    inputs: impl Iterator<Item = (FileId, u32, usize)>,
) -> Vec<(&'static [u8], usize)> {
    inputs
        .map(|(file, sec, entsize)| {
            (
                res.objects[file.0 as usize].obj.section_data(sec as usize),
                entsize,
            )
        })
        .collect()
}

/// Merges the strings of every non-alloc `SHF_MERGE|SHF_STRINGS` section (what step 5 of
/// [`compute`](super::compute) would merge, unless liveness or assignment sees otherwise: it compares).
pub(super) fn early_merges(config: &Config, res: &Resolution) -> Vec<EarlyMerge> {
    let strings = u64::from(elf::SHF_MERGE | elf::SHF_STRINGS);
    // Per section name, its inputs (file, section, entry size) in link order.
    type Inputs = Vec<(FileId, u32, usize)>;
    let mut groups: Vec<(&'static [u8], Inputs)> = Vec::new();
    for (f, object) in res.objects.iter().enumerate() {
        for (sec, shdr) in object.obj.shdrs.iter().enumerate() {
            let flags = shdr.sh_flags.get(LE);
            let entsize = shdr.sh_entsize.get(LE);
            if flags & u64::from(elf::SHF_ALLOC) != 0
                || flags & strings != strings
                || entsize < 1
                || shdr.sh_type.get(LE) != elf::SHT_PROGBITS
                || shdr.sh_size.get(LE) >= 1 << 32
            {
                continue;
            }
            let name = object.obj.section_names[sec];
            if name == b".comment" || !is_content(object, sec, config) {
                continue;
            }
            let input = (FileId(f as u32), sec as u32, entsize as usize);
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, inputs)) => inputs.push(input),
                None => groups.push((name, vec![input])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(name, inputs)| EarlyMerge {
            merged: crate::merge::merge_strings(&merge_data(res, inputs.iter().copied())),
            name,
            inputs,
        })
        .collect()
}

/// What [`assign_output_sections`] decided.
pub(super) struct Assigned {
    pub(super) sections: Vec<OutputSection>,
    pub(super) placements: Vec<Vec<Placement>>,
    pub(super) merged: Vec<MergedStrings>,
    pub(super) merge_maps: Vec<MergeMap>,
    /// With a script: each output section's members' rules.
    pub(super) member_rules: Vec<Vec<u32>>,
    /// The inputs' `.comment` strings, deduplicated.
    pub(super) comment: Vec<u8>,
}

/// Step 5's first half: every live input section's output section (by name, or by the
/// script's rules), in order, with merged strings merged; commons and copy-relocated
/// symbols in .bss.
#[allow(clippy::too_many_arguments)]
pub(super) fn assign_output_sections(
    ctx: &Context,
    live: &[Vec<bool>],
    needs: &Needs,
    matcher: Option<&scripted::Matcher>,
    script_assign: &[Vec<scripted::Assign>],
    early_merges: Vec<EarlyMerge>,
    slotted: bool,
    steps: &mut crate::PhaseTimer,
) -> Assigned {
    let out_names = output_names(ctx, live, matcher, script_assign);
    let mut assigner = Assigner::new(matcher, slotted);
    for (f, object) in ctx.res.objects.iter().enumerate() {
        assigner.add_file(FileId(f as u32), object, &live[f], &out_names[f]);
    }
    steps.step("assign");
    let merge_maps = assigner.merge_strings(ctx.res, early_merges);
    steps.step("merge");
    let mut member_rules = assigner.order_members(ctx);
    assigner.add_commons(ctx, needs, &mut member_rules);
    Assigned {
        sections: assigner.sections,
        placements: assigner.placements,
        merged: assigner.merged,
        merge_maps,
        member_rules,
        comment: assigner.comment,
    }
}

/// The output section name of every live section, found on all threads (names are long
/// and many: a Rust object has a section per function). With a script: its rule's output
/// section and the rule, or (an orphan) the input section's own name, as GNU ld names
/// orphans.
fn output_names<'a>(
    ctx: &Context<'a>,
    live: &[Vec<bool>],
    matcher: Option<&scripted::Matcher<'a>>,
    script_assign: &[Vec<scripted::Assign>],
) -> Vec<Vec<(&'a str, u32)>> {
    ctx.res
        .objects
        .par_iter()
        .with_max_len(1)
        .enumerate()
        .map(|(f, object)| {
            live[f]
                .iter()
                .enumerate()
                .filter(|(_, &l)| l)
                .map(
                    |(sec, _)| match (&matcher, script_assign.get(f).map(|a| a[sec])) {
                        (Some(m), Some(scripted::Assign::Rule(r))) => (m.rules[r as usize].out, r),
                        (Some(_), _) => (
                            std::str::from_utf8(object.obj.section_names[sec]).unwrap_or("?"),
                            u32::MAX,
                        ),
                        (None, _) => (output_name(object, sec), 0),
                    },
                )
                .collect()
        })
        .collect()
}

/// The output sections as input sections are met, in input order.
struct Assigner<'a, 'm> {
    matcher: Option<&'m scripted::Matcher<'a>>,
    slotted: bool,
    sections: Vec<OutputSection>,
    by_name: HashMap<String, u32>,
    /// The last output section looked up by name: runs of input sections go to one.
    last: Option<(&'a str, u32)>,
    placements: Vec<Vec<Placement>>,
    /// Per output section, its members as (sort key, file, section); a merged-strings blob
    /// is (key, `FileId(u32::MAX)`, blob).
    pending: Vec<Vec<(u64, FileId, u32)>>,
    merged: Vec<MergedStrings>,
    /// Per output section, its merged-strings blob.
    merge_builders: HashMap<u32, u32>,
    /// Merged input sections: (blob, file, section, entsize), merged after all are met.
    merge_inputs: Vec<(u32, FileId, u32, usize)>,
    comment: Vec<u8>,
    comment_seen: rustc_hash::FxHashSet<Vec<u8>>,
}

impl<'a, 'm> Assigner<'a, 'm> {
    fn new(matcher: Option<&'m scripted::Matcher<'a>>, slotted: bool) -> Self {
        Assigner {
            matcher,
            slotted,
            sections: Vec::new(),
            by_name: HashMap::default(),
            last: None,
            placements: Vec::new(),
            pending: Vec::new(),
            merged: Vec::new(),
            merge_builders: HashMap::default(),
            merge_inputs: Vec::new(),
            comment: b"\0".to_vec(),
            comment_seen: Default::default(),
        }
    }

    /// Assigns the live sections of one file (`out_names`: their output sections and rules).
    fn add_file(
        &mut self,
        file: FileId,
        object: &LoadedObject,
        live: &[bool],
        out_names: &[(&'a str, u32)],
    ) {
        self.placements.push(vec![
            Placement {
                out: NOT_PLACED,
                offset: 0,
                mapping: Mapping::Plain,
            };
            object.obj.shdrs.len()
        ]);
        let live_secs = live.iter().enumerate().filter(|(_, &l)| l);
        for ((sec, _), &(out_name, rule)) in live_secs.zip(out_names) {
            let shdr = &object.obj.shdrs[sec];
            let in_name = object.obj.section_names[sec];
            let flags = shdr.sh_flags.get(LE);
            if in_name == b".comment" && flags & u64::from(elf::SHF_ALLOC) == 0 {
                self.add_comment(object.obj.section_data(sec));
                continue;
            }
            let id = self.output_section(out_name, shdr);
            // (Incremental mode does not merge strings: each file's strings stay in its slot.)
            if !self.slotted && is_merged_strings(shdr) {
                self.add_merged(id, rule, file, sec, shdr);
                continue;
            }
            let key = if self.matcher.is_some() {
                u64::from(rule)
            } else if out_name == ".init_array"
                || out_name == ".fini_array"
                || out_name == ".preinit_array"
            {
                init_priority(&String::from_utf8_lossy(in_name))
            } else {
                0
            };
            self.pending[id as usize].push((key, file, sec as u32));
        }
    }

    /// Keeps each distinct string of an input `.comment` once.
    fn add_comment(&mut self, data: &[u8]) {
        for s in data.split(|&b| b == 0) {
            if !s.is_empty() && self.comment_seen.insert(s.to_vec()) {
                self.comment.extend_from_slice(s);
                self.comment.push(0);
            }
        }
    }

    /// The output section `out_name` (made on first use) with an input section of header
    /// `shdr` added to its type, flags and alignment.
    fn output_section(&mut self, out_name: &'a str, shdr: &Shdr) -> u32 {
        let flags = shdr.sh_flags.get(LE);
        let sh_type = shdr.sh_type.get(LE);
        let alloc = flags & u64::from(elf::SHF_ALLOC) != 0;
        let out_type = if sh_type == SHT_X86_64_UNWIND {
            elf::SHT_PROGBITS
        } else {
            sh_type
        };
        let out_flags = flags
            & !u64::from(elf::SHF_GROUP | elf::SHF_MERGE | elf::SHF_STRINGS | elf::SHF_COMPRESSED);
        let keep_merge = !alloc && flags & u64::from(elf::SHF_MERGE | elf::SHF_STRINGS) != 0;
        let existing = match self.last {
            Some((name, id)) if name == out_name => Some(id),
            _ => self.by_name.get(out_name).copied(),
        };
        let id = existing.unwrap_or_else(|| {
            self.by_name
                .insert(out_name.to_string(), self.sections.len() as u32);
            self.sections.push(OutputSection {
                rank: rank(out_name, out_type, out_flags),
                name: out_name.to_string(),
                sh_type: out_type,
                sh_flags: if keep_merge {
                    flags & u64::from(elf::SHF_MERGE | elf::SHF_STRINGS)
                } else {
                    0
                } | out_flags,
                align: 1,
                entsize: if keep_merge {
                    shdr.sh_entsize.get(LE)
                } else {
                    0
                },
                members: Vec::new(),
                size: 0,
                addr: 0,
                offset: 0,
                synthetic: None,
            });
            self.pending.push(Vec::new());
            (self.sections.len() - 1) as u32
        });
        self.last = Some((out_name, id));
        let os = &mut self.sections[id as usize];
        os.sh_flags |= out_flags;
        if os.sh_type == elf::SHT_NOBITS && out_type != elf::SHT_NOBITS {
            os.sh_type = out_type;
        }
        os.align = os.align.max(shdr.sh_addralign.get(LE).max(1));
        id
    }

    /// Puts a merged-strings input section in its output section's blob (the blob is a
    /// member at the first such input; with a script, at that input's rule).
    fn add_merged(&mut self, id: u32, rule: u32, file: FileId, sec: usize, shdr: &Shdr) {
        let builder = *self
            .merge_builders
            .entry(id)
            .or_insert(self.merged.len() as u32);
        if builder as usize == self.merged.len() {
            self.merged.push(MergedStrings {
                size: 0,
                maps: Vec::new(),
                align: 1,
                offset: 0,
                out: id,
            });
            let key = if self.matcher.is_some() {
                u64::from(rule)
            } else {
                0
            };
            self.pending[id as usize].push((key, FileId(u32::MAX), builder));
        }
        let blob = &mut self.merged[builder as usize];
        blob.align = blob.align.max(shdr.sh_addralign.get(LE).max(1));
        self.placements[file.0 as usize][sec].mapping = Mapping::Merged;
        let entsize = shdr.sh_entsize.get(LE) as usize;
        self.merge_inputs.push((builder, file, sec as u32, entsize));
    }

    /// Each blob's strings, merged in input order (or taken from `early_merges` when it
    /// merged the same inputs); a merged input's placement offset is the index of its map
    /// in the returned maps.
    fn merge_strings(&mut self, res: &Resolution, early_merges: Vec<EarlyMerge>) -> Vec<MergeMap> {
        let mut merge_maps = Vec::with_capacity(self.merge_inputs.len());
        let mut early_merges = early_merges;
        for (b, blob) in self.merged.iter_mut().enumerate() {
            let inputs: Vec<&(u32, FileId, u32, usize)> = self
                .merge_inputs
                .iter()
                .filter(|m| m.0 as usize == b)
                .collect();
            let name = self.sections[blob.out as usize].name.as_bytes();
            let early = early_merges.iter().position(|e| {
                e.name == name
                    && e.inputs.len() == inputs.len()
                    && e.inputs
                        .iter()
                        .zip(&inputs)
                        .all(|(a, &&(_, file, sec, entsize))| *a == (file, sec, entsize))
            });
            let result = match early {
                Some(i) => early_merges.swap_remove(i).merged,
                None => crate::merge::merge_strings(&merge_data(
                    res,
                    inputs.iter().map(|m| (m.1, m.2, m.3)),
                )),
            };
            blob.size = result.size;
            for (&&(_, file, sec, _), pieces) in inputs.iter().zip(result.pieces) {
                self.placements[file.0 as usize][sec as usize].offset = merge_maps.len() as u64;
                blob.maps.push(merge_maps.len() as u32);
                merge_maps.push(MergeMap {
                    merged: b as u32,
                    file,
                    sec,
                    pieces,
                });
            }
        }
        merge_maps
    }

    /// Each output section's members in order: by sort key (stable: equal priorities keep
    /// input order), then as a script sorts them within their rules. Returns, with a
    /// script, each member's rule per output section.
    fn order_members(&mut self, ctx: &Context) -> Vec<Vec<u32>> {
        let mut member_rules: Vec<Vec<u32>> = Vec::new();
        for (id, mut members) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            members.sort_by_key(|m| m.0);
            if self.matcher.is_some() {
                member_rules.push(members.iter().map(|m| m.0 as u32).collect());
            }
            self.sections[id].members = members
                .into_iter()
                .map(|(_, file, sec)| {
                    if file.0 == u32::MAX {
                        Member::Merged(sec)
                    } else {
                        Member::Input { file, sec }
                    }
                })
                .collect();
        }
        if let Some(m) = self.matcher {
            // (The members' order within their rules, as the script sorts them.)
            for (os, rules) in self.sections.iter_mut().zip(&member_rules) {
                scripted::sort_members(ctx, m, &mut os.members, rules);
            }
        }
        member_rules
    }

    /// Commons and copy-relocated symbols go to .bss (with a script, to its COMMON rule's
    /// output section, sorted with that rule's other members).
    fn add_commons(&mut self, ctx: &Context, needs: &Needs, member_rules: &mut Vec<Vec<u32>>) {
        let res = ctx.res;
        let mut commons: Vec<SymbolId> = res
            .symbols
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.def, Def::Common { .. }))
            .map(|(i, _)| SymbolId(i as u32))
            .collect();
        commons.sort();
        commons.extend(needs.copies.iter().copied());
        if commons.is_empty() {
            return;
        }
        let common_rule = self.matcher.and_then(|m| m.common_rule());
        let common_home = match (self.matcher, common_rule) {
            (Some(m), Some(r)) => m.rules[r as usize].out,
            _ => ".bss",
        };
        let sections = &mut self.sections;
        let id = *self
            .by_name
            .entry(common_home.to_string())
            .or_insert_with(|| {
                sections.push(OutputSection {
                    name: ".bss".into(),
                    sh_type: elf::SHT_NOBITS,
                    sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_WRITE),
                    align: 1,
                    entsize: 0,
                    rank: 400,
                    members: Vec::new(),
                    size: 0,
                    addr: 0,
                    offset: 0,
                    synthetic: None,
                });
                (sections.len() - 1) as u32
            });
        for c in &commons {
            sections[id as usize].members.push(Member::Common(*c));
        }
        if self.matcher.is_some() {
            member_rules.resize(sections.len(), Vec::new());
            let rules = &mut member_rules[id as usize];
            rules.extend(commons.iter().map(|_| common_rule.unwrap_or(u32::MAX)));
            // (Commons sort with their rule's other members: after them in input order.)
            let os = &mut sections[id as usize];
            let mut pairs: Vec<(u32, Member)> = rules
                .iter()
                .copied()
                .zip(os.members.iter().copied())
                .collect();
            pairs.sort_by_key(|p| p.0);
            *rules = pairs.iter().map(|p| p.0).collect();
            os.members = pairs.into_iter().map(|p| p.1).collect();
        }
    }
}

/// Whether an input section's strings are merged: SHF_MERGE|SHF_STRINGS progbits with an
/// entry size (an input of 4 GiB or more is copied whole: merge maps use 32-bit offsets).
fn is_merged_strings(shdr: &Shdr) -> bool {
    let merge_strings = u64::from(elf::SHF_MERGE | elf::SHF_STRINGS);
    shdr.sh_flags.get(LE) & merge_strings == merge_strings
        && shdr.sh_entsize.get(LE) >= 1
        && shdr.sh_type.get(LE) == elf::SHT_PROGBITS
        && shdr.sh_size.get(LE) < 1 << 32
}
