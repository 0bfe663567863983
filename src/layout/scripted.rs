//! Laying out the output as a script's `SECTIONS` says (a part of layout; the language
//! itself, parsed and evaluated, is `crate::script`): which output section each input
//! section goes to ([`Matcher`]), then addresses, load addresses, memory regions, symbol
//! assignments, data statements and program headers ([`place`]).
//!
//! Rules followed (GNU ld manual, "SECTIONS Command" and "Location Counter"; binutils
//! `_bfd_elf_map_sections_to_segments` for segments without `PHDRS`):
//! - an input section goes to the first input section description that matches it;
//! - `.` outside output sections is an address; inside, a plain number assigned to it is an
//!   offset from the section's start, anything else an address;
//! - an output section with no address starts at `.` (or its region's next free byte),
//!   aligned to its alignment; one with an address starts there;
//! - without `AT`, a section's load address keeps the previous section's VMA-to-LMA offset
//!   unless it has an address of its own;
//! - sections the script does not name (orphans) go after the last named section of the same
//!   kind, non-alloc ones at the end;
//! - without `PHDRS`, a new PT_LOAD starts where writability or executability changes, where
//!   the addresses skip a page, where the load offset changes, and after a NOBITS section; the
//!   file and program headers are loaded with the first segment when they fit below its
//!   first section in its first page.

use super::{Member, OutputSection, Placement, Segment};
use crate::context::Context;
use crate::script::eval::{eval, is_constant, Env, NoEnv, PAGE_SIZE};
use crate::script::*;
use crate::symbols::SymbolId;
use anyhow::{bail, Result};
use object::elf;
use object::LittleEndian as LE;
use rustc_hash::FxHashMap as HashMap;

/// One input section description, with the output section it belongs to.
pub struct Rule<'s> {
    pub out: &'s str,
    pub input: &'s InputDesc,
    /// `ONLY_IF_RO` (true) / `ONLY_IF_RW` (false) on the output section.
    pub only_if_ro: Option<bool>,
}

/// Where an input section goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assign {
    /// `/DISCARD/`.
    Discard,
    /// To the output section of rule N.
    Rule(u32),
    /// Nowhere the script says: an orphan, named as the default layout names it.
    Orphan,
}

/// The input section descriptions of a script, in order.
pub struct Matcher<'s> {
    pub rules: Vec<Rule<'s>>,
}

fn glob(pattern: &str, text: &str) -> bool {
    crate::version_script::glob_match(pattern.as_bytes(), text.as_bytes())
}

/// Whether a file pattern matches an input file. A pattern with `:` is `archive:member`;
/// others match a file's path, or an archive member's name.
fn file_matches(pattern: &str, object_name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    // weld names archive members `archive.a(member.o)`.
    let (archive, member) = match object_name
        .strip_suffix(')')
        .and_then(|n| n.rsplit_once('('))
    {
        Some((a, m)) => (Some(a), m),
        None => (None, object_name),
    };
    match pattern.split_once(':') {
        Some((a, m)) => {
            // `archive:member`; `:member` only outside archives; `archive:` the whole archive.
            let a_ok = match archive {
                Some(archive) => !a.is_empty() && (glob(a, archive) || glob(a, basename(archive))),
                None => a.is_empty(),
            };
            a_ok && (m.is_empty() || glob(m, member))
        }
        None => glob(pattern, member) || (archive.is_none() && glob(pattern, basename(member))),
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl<'s> Matcher<'s> {
    pub fn new(script: &'s Script) -> Matcher<'s> {
        let mut rules = Vec::new();
        for o in script.outputs() {
            for c in &o.commands {
                if let OutputCommand::Input(input) = c {
                    rules.push(Rule {
                        out: &o.name,
                        input,
                        only_if_ro: o.only_if_ro,
                    });
                }
            }
        }
        Matcher { rules }
    }

    /// The rule an input section matches first. (`ONLY_IF_RO`/`ONLY_IF_RW` sections take
    /// only read-only/writable inputs: GNU ld drops the whole output section when one input
    /// breaks its constraint, and scripts pair them so that the other one takes them.)
    pub fn assign(&self, object_name: &str, section: &str, writable: bool) -> Assign {
        for (i, rule) in self.rules.iter().enumerate() {
            let input = rule.input;
            if rule.only_if_ro.is_some_and(|ro| ro == writable) {
                continue;
            }
            if !file_matches(&input.file, object_name)
                || input
                    .exclude_files
                    .iter()
                    .any(|x| file_matches(x, object_name))
            {
                continue;
            }
            let hit = input.sections.is_empty()
                || input.sections.iter().any(|p| {
                    glob(&p.pattern, section)
                        && !p.exclude_files.iter().any(|x| file_matches(x, object_name))
                });
            if hit {
                return if rule.out == "/DISCARD/" {
                    Assign::Discard
                } else {
                    Assign::Rule(i as u32)
                };
            }
        }
        Assign::Orphan
    }

    /// The rule `*(COMMON)` is in, if any.
    pub fn common_rule(&self) -> Option<u32> {
        self.rules
            .iter()
            .position(|r| r.input.sections.iter().any(|p| glob(&p.pattern, "COMMON")))
            .map(|i| i as u32)
    }

    pub fn keeps(&self, rule: Assign) -> bool {
        matches!(rule, Assign::Rule(i) if self.rules[i as usize].input.keep)
    }

    /// How a rule sorts what it matches.
    pub fn sort(&self, rule: u32, section: &str) -> Sort {
        let input = self.rules[rule as usize].input;
        input
            .sections
            .iter()
            .find(|p| glob(&p.pattern, section))
            .map_or(Sort::None, |p| p.sort)
    }
}

/// Sorts each rule's run of members as its patterns say (members arrive in rule order, each
/// rule's in input order). `members[i]` pairs with `rules[i]`.
pub fn sort_members(ctx: &Context, matcher: &Matcher, members: &mut [Member], rules: &[u32]) {
    let mut start = 0;
    while start < members.len() {
        let rule = rules[start];
        let end = start + rules[start..].iter().take_while(|&&r| r == rule).count();
        if rule != u32::MAX {
            let run = &mut members[start..end];
            let name_of = |m: &Member| -> (&str, u64, &str) {
                match *m {
                    Member::Input { file, sec } => {
                        let o = &ctx.res.objects[file.0 as usize];
                        let name =
                            std::str::from_utf8(o.obj.section_names[sec as usize]).unwrap_or("");
                        (
                            name,
                            o.obj.shdrs[sec as usize].sh_addralign.get(LE),
                            &o.name,
                        )
                    }
                    _ => ("", 0, ""),
                }
            };
            if matcher.rules[rule as usize].input.sort_files {
                run.sort_by(|a, b| name_of(a).2.cmp(name_of(b).2));
            }
            run.sort_by(|a, b| {
                let (na, aa, _) = name_of(a);
                let (nb, ab, _) = name_of(b);
                match matcher.sort(rule, na) {
                    Sort::None => std::cmp::Ordering::Equal,
                    Sort::Name => na.cmp(nb),
                    Sort::Alignment => ab.cmp(&aa),
                    Sort::NameAlignment => na.cmp(nb).then(ab.cmp(&aa)),
                    Sort::AlignmentName => ab.cmp(&aa).then(na.cmp(nb)),
                    Sort::InitPriority => {
                        crate::layout::init_priority(na).cmp(&crate::layout::init_priority(nb))
                    }
                }
            });
        }
        start = end;
    }
}

/// What the scripted layout decided (sections' addresses, offsets and placements are set in
/// place).
pub struct Placed {
    /// Output sections in file order.
    pub order: Vec<crate::context::OutSecId>,
    pub segments: Vec<Segment>,
    /// The lowest loaded address (where the ELF header is, if it is loaded).
    pub base: u64,
    pub file_size: u64,
    pub common_offsets: HashMap<SymbolId, (u32, u64)>,
    /// The script's symbols: (name, value, hidden).
    pub symbols: Vec<(String, u64, bool)>,
    /// Bytes of data statements and fills: (output section, offset, bytes).
    pub data: Vec<(u32, u64, Vec<u8>)>,
    /// TLS template: (start, file offset, end of initialised data, end).
    pub tls: Option<(u64, u64, u64, u64)>,
    pub tls_align: u64,
    /// MEMORY regions: name, origin, length, end of what was placed in them.
    pub regions: Vec<(String, u64, u64, u64)>,
}

/// One step of the walk over `SECTIONS`, orphans included.
#[derive(Clone, Copy)]
enum Step<'s> {
    Command(&'s SectionsCommand),
    Orphan(u32),
}

/// The state of a walk over the script.
struct Walk<'w, 's> {
    script: &'s Script,
    ctx: &'w Context<'w>,
    placements: &'w mut [Vec<Placement>],
    dot: Option<u64>,
    /// Script symbols assigned so far.
    symbols: HashMap<String, u64>,
    /// Output sections placed so far, by name: (addr, lma, size, align).
    placed: HashMap<String, (u64, u64, u64, u64)>,
    /// Each section's (address, load address, size) once placed, by id.
    addrs: Vec<Option<(u64, u64, u64)>>,
    /// Per region: (origin, length, next free address).
    regions: HashMap<String, (u64, u64, u64)>,
    headers_size: u64,
    /// DATA_SEGMENT_ALIGN's value once the data segment has been moved for RELRO (GNU ld's
    /// second pass, where DATA_SEGMENT_RELRO_END also moves `.` up to a page boundary).
    relro_base: Option<u64>,
    /// DATA_SEGMENT_ALIGN's value, and RELRO's end and DATA_SEGMENT_RELRO_END's offset,
    /// when the script has them.
    relro: std::cell::Cell<Relro>,
}

/// DATA_SEGMENT_ALIGN's value, and the end of RELRO with DATA_SEGMENT_RELRO_END's offset.
type Relro = (Option<u64>, Option<(u64, u64)>);

impl Env for Walk<'_, '_> {
    fn dot(&self) -> Option<u64> {
        self.dot
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        if let Some(&v) = self.symbols.get(name) {
            return Some(v);
        }
        // An input's symbol, once its section has an address.
        let res = self.ctx.res;
        let id = res.symbols.lookup(name.as_bytes())?;
        match res.symbols.get(id).def {
            crate::symbols::Def::Defined { .. } => {}
            _ => return None,
        }
        match self.ctx.symref_target(crate::context::SymRef::Global(id)).0 {
            crate::context::Target::Abs(v) => Some(v),
            crate::context::Target::Section { file, sec, value } => {
                let p = self.placements[file.0 as usize].get(sec as usize)?;
                let (addr, _, _) = (*self.addrs.get(p.out as usize)?)?;
                Some(addr + p.offset + value)
            }
            _ => None,
        }
    }
    fn defined(&self, name: &str) -> bool {
        self.symbols.contains_key(name)
            || self
                .ctx
                .res
                .symbols
                .lookup(name.as_bytes())
                .is_some_and(|id| {
                    matches!(
                        self.ctx.res.symbols.get(id).def,
                        crate::symbols::Def::Defined { .. } | crate::symbols::Def::Common { .. }
                    )
                })
    }
    fn section(&self, name: &str) -> Option<(u64, u64, u64, u64)> {
        self.placed.get(name).copied()
    }
    fn region(&self, name: &str) -> Option<(u64, u64)> {
        find_region(self.script, name)
            .and_then(|r| self.regions.get(&r.name))
            .map(|&(origin, length, _)| (origin, length))
    }
    fn sizeof_headers(&self) -> u64 {
        // A raw binary (`--oformat=binary`) has no headers, as GNU ld counts them.
        if self.ctx.config.binary_output {
            0
        } else {
            self.headers_size
        }
    }
    fn segment_start(&self, name: &str) -> Option<u64> {
        match name {
            "text-segment" => self.ctx.config.image_base,
            _ => None,
        }
    }
    fn data_segment_align(&self, value: u64) -> u64 {
        let value = self.relro_base.unwrap_or(value);
        self.relro.set((Some(value), self.relro.get().1));
        value
    }
    fn data_segment_relro_end(&self, offset: u64, exp: u64) -> u64 {
        let mut end = exp.wrapping_add(offset);
        // GNU ld (ldexp.c): once the data segment has been moved, RELRO ends on a page
        // boundary, and `.` with it.
        let value = if self.relro_base.is_some() && !end.is_multiple_of(PAGE_SIZE) {
            end = end.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
            end.wrapping_sub(offset)
        } else {
            exp
        };
        self.relro.set((self.relro.get().0, Some((end, offset))));
        value
    }
}

/// The largest output section, and alignment, a script may ask for.
const MAX_SIZE: u64 = 1 << 40;
const MAX_ALIGN: u64 = 1 << 32;

fn err(file: &str, pos: Pos, msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{file}:{pos}: {msg}")
}

fn live(s: &OutputSection) -> bool {
    s.size > 0 || !s.members.is_empty()
}

/// Whether a description makes its section even with no inputs: GNU ld makes one that has
/// data statements or moves `.`.
fn makes_section(d: &OutputDesc) -> bool {
    d.commands.iter().any(|c| match c {
        OutputCommand::Data(..) => true,
        OutputCommand::Assign(a) => a.symbol == ".",
        _ => false,
    })
}

/// Adds the output sections that descriptions make with no inputs (data statements, `.`
/// moves): PROGBITS with data, else NOBITS, both writable, as GNU ld makes them.
pub fn add_script_sections(ctx: &Context, sections: &mut Vec<OutputSection>) {
    let Some(script) = ctx.config.script.as_deref() else {
        return;
    };
    for d in script.outputs() {
        let data = d
            .commands
            .iter()
            .any(|c| matches!(c, OutputCommand::Data(..)));
        if let Some(s) = sections.iter_mut().find(|s| s.name == d.name) {
            // Data statements give a NOBITS section bytes in the file (GNU ld does the same).
            if data && s.sh_type == elf::SHT_NOBITS {
                s.sh_type = elf::SHT_PROGBITS;
            }
            continue;
        }
        if d.name == "/DISCARD/" || !makes_section(d) {
            continue;
        }
        // (Named `.note*`: a note, as GNU ld makes it; `(READONLY)`: not writable.)
        let flags = u64::from(if d.readonly {
            elf::SHF_ALLOC
        } else {
            elf::SHF_ALLOC | elf::SHF_WRITE
        });
        let sh_type = match (data, d.name.starts_with(".note")) {
            (true, true) => elf::SHT_NOTE,
            (true, false) => elf::SHT_PROGBITS,
            (false, _) => elf::SHT_NOBITS,
        };
        sections.push(OutputSection {
            name: d.name.clone(),
            sh_type,
            sh_flags: flags,
            align: 1,
            entsize: 0,
            rank: crate::layout::rank(&d.name, sh_type, flags),
            members: Vec::new(),
            size: 0,
            addr: 0,
            offset: 0,
            synthetic: None,
        });
    }
}

/// Lays out `sections` (members already in script order; `member_rules` gives each
/// member's rule, `u32::MAX` for none) as the script says: sets every section's address,
/// size and offset and every input section's placement.
pub fn place(
    ctx: &Context,
    sections: &mut [OutputSection],
    member_rules: &[Vec<u32>],
    placements: &mut [Vec<Placement>],
    eh_records: &EhRecords,
    merged: &mut [crate::layout::MergedStrings],
    executable_stack: bool,
) -> Result<Placed> {
    let script = ctx.config.script.as_deref().expect("a script");
    let steps = steps(script, sections);
    let phdr_of = member_phdrs(script, sections, &steps);
    // The walk depends on SIZEOF_HEADERS, which depends on how many program headers there
    // are: walked again until the count holds (it settles at once in practice).
    let mut n_phdrs = script.phdrs.len().max(2);
    for _ in 0..6 {
        let headers_size = 64 + 56 * n_phdrs as u64;
        let walk_from = |relro_base| {
            walk(
                ctx,
                script,
                &steps,
                sections,
                member_rules,
                placements,
                eh_records,
                merged,
                (headers_size, relro_base),
            )
        };
        let walked = settle_relro(ctx, sections, walk_from)?;
        let relro = match walked.relro {
            (Some(start), Some((end, _))) if ctx.config.z.relro && end > start => {
                Some((start, end))
            }
            _ => None,
        };
        for (id, a) in walked.addrs.iter().enumerate() {
            if let Some((addr, _, size)) = *a {
                sections[id].addr = addr;
                sections[id].size = size;
                sections[id].align = walked.align[id];
            }
        }
        let lmas: Vec<u64> = walked.addrs.iter().map(|a| a.map_or(0, |a| a.1)).collect();
        let mut seg = segments(
            ctx,
            script,
            sections,
            &walked.order_alloc,
            &lmas,
            &phdr_of,
            headers_size,
            executable_stack,
        )?;
        if let Some((start, end)) = relro.filter(|_| script.phdrs.is_empty()) {
            let first = walked
                .order_alloc
                .iter()
                .map(|&id| &sections[id as usize])
                .find(|s| s.addr >= start && s.addr < end && s.size > 0);
            if let Some(first) = first {
                // In the file, RELRO ends where its PT_LOAD's contents do (GNU ld).
                let file_end = seg
                    .segments
                    .iter()
                    .find(|l| {
                        l.p_type == elf::PT_LOAD
                            && (l.vaddr..l.vaddr + l.memsz).contains(&first.addr)
                    })
                    .map_or(end, |l| (l.vaddr + l.filesz).clamp(first.addr, end));
                seg.segments.push(Segment {
                    p_type: elf::PT_GNU_RELRO,
                    p_flags: elf::PF_R,
                    offset: first.offset,
                    vaddr: first.addr,
                    paddr: first.addr,
                    filesz: file_end - first.addr,
                    memsz: end - first.addr,
                    align: 1,
                });
            }
        }
        if seg.segments.len() != n_phdrs {
            n_phdrs = seg.segments.len();
            continue;
        }
        // Non-alloc sections follow in file order.
        let mut offset = seg.end;
        for &id in &walked.order_rest {
            let s = &mut sections[id as usize];
            offset = offset.next_multiple_of(s.align.max(1));
            s.offset = offset;
            s.addr = 0;
            offset += s.size;
        }
        if offset > MAX_SIZE {
            bail!(
                "{}: the output would be {offset:#x} bytes (sections far apart in one segment?)",
                script.file
            );
        }
        let mut data = walked.data;
        for (id, pattern) in walked.fills {
            if sections[id as usize].size > 1 << 30 {
                bail!(
                    "{}: a fill pattern for section {}, of over 1 GiB, is not supported",
                    script.file,
                    sections[id as usize].name
                );
            }
            data.extend(fill_gaps(ctx, sections, placements, merged, id, &pattern));
        }
        let order = walked
            .order_alloc
            .iter()
            .chain(&walked.order_rest)
            .map(|&id| crate::context::OutSecId(id))
            .collect();
        return Ok(Placed {
            order,
            segments: seg.segments,
            base: seg.base,
            file_size: offset,
            common_offsets: walked.common_offsets,
            symbols: walked.symbols,
            data,
            tls: seg.tls,
            tls_align: seg.tls_align,
            regions: walked.regions,
        });
    }
    bail!(
        "{}: the program headers do not settle (SIZEOF_HEADERS keeps changing)",
        script.file
    )
}

/// Walks the script (`walk_from`, given DATA_SEGMENT_ALIGN's value or `None` for the
/// script's own) as GNU ld's lang_size_sections does with `-z relro`: once as written; then,
/// when the script marks the end of RELRO, again with the data segment moved up so that
/// RELRO ends on a page boundary (lang_size_relro_segment); and if that moved RELRO's end
/// past the page it was to end at, once more from where the data segment first started.
fn settle_relro(
    ctx: &Context,
    sections: &[OutputSection],
    mut walk_from: impl FnMut(Option<u64>) -> Result<Walked>,
) -> Result<Walked> {
    let walked = walk_from(None)?;
    let (Some(start), Some((end, offset))) = walked.relro else {
        return Ok(walked);
    };
    if !ctx.config.z.relro || end == 0 {
        return Ok(walked);
    }
    let page_end = end.next_multiple_of(PAGE_SIZE);
    let base = relro_base(sections, &walked, start, (end, offset), page_end);
    let moved = walk_from(Some(base))?;
    match moved.relro.1 {
        Some((end, _)) if end <= page_end => Ok(moved),
        _ => walk_from(Some(start)),
    }
}

/// GNU ld's lang_size_relro_segment_1: where the data segment should start (from `start`,
/// DATA_SEGMENT_ALIGN's value) for RELRO, ending at `end` (`offset` past
/// DATA_SEGMENT_RELRO_END's expression), to end at `page_end`: each section in RELRO, last
/// first, moved up to end where the next begins, as far as its alignment lets it.
/// (A .tbss takes no room there, as `.` does not move past it.)
fn relro_base(
    sections: &[OutputSection],
    walked: &Walked,
    start: u64,
    (end, offset): (u64, u64),
    page_end: u64,
) -> u64 {
    let mut desired_end = page_end.wrapping_sub(offset);
    for &id in walked.order_alloc.iter().rev() {
        let Some((addr, _, size)) = walked.addrs[id as usize] else {
            continue;
        };
        if addr >= start && addr < end.wrapping_sub(offset) {
            let os = &sections[id as usize];
            let tbss = os.sh_flags & u64::from(elf::SHF_TLS) != 0 && os.sh_type == elf::SHT_NOBITS;
            let size = if tbss { 0 } else { size };
            let align = walked.align[id as usize].max(1);
            desired_end = desired_end.wrapping_sub(size) & !(align - 1);
        }
    }
    desired_end.max(start)
}

/// The walk's order: the script's commands with orphans where they belong.
fn steps<'s>(script: &'s Script, sections: &[OutputSection]) -> Vec<Step<'s>> {
    let named: std::collections::HashSet<&str> =
        script.outputs().map(|o| o.name.as_str()).collect();
    let commands = script.sections.as_deref().unwrap_or(&[]);
    let mut steps: Vec<Step> = commands.iter().map(Step::Command).collect();
    let is_alloc = |s: &OutputSection| s.sh_flags & u64::from(elf::SHF_ALLOC) != 0;
    let class = |s: &OutputSection| {
        (
            is_alloc(s),
            s.sh_flags & u64::from(elf::SHF_WRITE) != 0,
            s.sh_flags & u64::from(elf::SHF_EXECINSTR) != 0,
            s.sh_type == elf::SHT_NOBITS,
            s.sh_type == elf::SHT_NOTE,
        )
    };
    // (Sections the script made for data statements count, empty as they are so far.)
    let by_name = |name: &str| sections.iter().position(|s| s.name == name);
    let mut orphans: Vec<u32> = (0..sections.len() as u32)
        .filter(|&i| {
            let s = &sections[i as usize];
            live(s) && !named.contains(s.name.as_str())
        })
        .collect();
    orphans.sort_by_key(|&i| (sections[i as usize].rank, i));
    for o in orphans {
        let os = &sections[o as usize];
        // After the last step with a section of the same kind; else after the last with a
        // lower rank; else before the first alloc section; non-alloc ones at the end.
        let at = |steps: &[Step], pred: &dyn Fn(&OutputSection) -> bool| {
            steps.iter().rposition(|step| match step {
                Step::Command(SectionsCommand::Output(d)) => {
                    by_name(&d.name).is_some_and(|i| pred(&sections[i]))
                }
                Step::Orphan(i) => pred(&sections[*i as usize]),
                _ => false,
            })
        };
        if !is_alloc(os) {
            steps.push(Step::Orphan(o));
            continue;
        }
        let pos = at(&steps, &|s| class(s) == class(os))
            .or_else(|| at(&steps, &|s| is_alloc(s) && s.rank <= os.rank));
        match pos {
            Some(p) => steps.insert(p + 1, Step::Orphan(o)),
            None => {
                let first = at(&steps, &|_| false).or_else(|| {
                    steps.iter().position(|step| {
                        matches!(step, Step::Command(SectionsCommand::Output(d))
                            if by_name(&d.name).is_some_and(|i| is_alloc(&sections[i])))
                    })
                });
                steps.insert(first.unwrap_or(steps.len()), Step::Orphan(o));
            }
        }
    }
    steps
}

/// Per output section (by id): the program headers `PHDRS` puts it in (sticky: a section
/// with no `:phdr` goes where the one before it went).
fn member_phdrs(
    script: &Script,
    sections: &[OutputSection],
    steps: &[Step],
) -> HashMap<u32, Vec<usize>> {
    let mut out = HashMap::default();
    if script.phdrs.is_empty() {
        return out;
    }
    let mut current: Vec<usize> = Vec::new();
    for step in steps {
        let (id, names) = match step {
            Step::Command(SectionsCommand::Output(d)) => {
                match sections.iter().position(|s| s.name == d.name) {
                    Some(id) => (id as u32, d.phdrs.as_slice()),
                    None => continue,
                }
            }
            Step::Orphan(id) => (*id, &[][..]),
            _ => continue,
        };
        if !names.is_empty() {
            current = names
                .iter()
                .filter_map(|n| script.phdrs.iter().position(|p| &p.name == n))
                .collect();
        }
        out.insert(id, current.clone());
    }
    out
}

/// What one walk produced.
struct Walked {
    order_alloc: Vec<u32>,
    order_rest: Vec<u32>,
    addrs: Vec<Option<(u64, u64, u64)>>,
    align: Vec<u64>,
    symbols: Vec<(String, u64, bool)>,
    common_offsets: HashMap<SymbolId, (u32, u64)>,
    data: Vec<(u32, u64, Vec<u8>)>,
    fills: Vec<(u32, Vec<u8>)>,
    /// DATA_SEGMENT_ALIGN's value, and the end of RELRO with DATA_SEGMENT_RELRO_END's
    /// offset.
    relro: Relro,
    /// MEMORY regions in the script's order: name, origin, length, end of what was placed.
    regions: Vec<(String, u64, u64, u64)>,
}

impl Walked {
    /// Nothing produced yet: each section aligned as its inputs ask.
    fn new(sections: &[OutputSection]) -> Walked {
        Walked {
            order_alloc: Vec::new(),
            order_rest: Vec::new(),
            addrs: Vec::new(),
            align: sections.iter().map(|s| s.align).collect(),
            symbols: Vec::new(),
            common_offsets: HashMap::default(),
            data: Vec::new(),
            fills: Vec::new(),
            relro: (None, None),
            regions: Vec::new(),
        }
    }
}

/// Each input `.eh_frame`'s records, by (file, section).
type EhRecords = HashMap<(crate::symbols::FileId, u32), Vec<crate::eh_frame::Record>>;

/// Walks `steps` with SIZEOF_HEADERS `headers_size` and DATA_SEGMENT_ALIGN's value
/// `relro_base` (when the data segment has been moved for RELRO): gives each output
/// section met an address, a load address and a size, places its members, and assigns the
/// script's symbols.
#[allow(clippy::too_many_arguments)]
fn walk<'s>(
    ctx: &Context,
    script: &'s Script,
    steps: &[Step<'s>],
    sections: &[OutputSection],
    member_rules: &[Vec<u32>],
    placements: &mut [Vec<Placement>],
    eh_records: &EhRecords,
    merged: &mut [crate::layout::MergedStrings],
    (headers_size, relro_base): (u64, Option<u64>),
) -> Result<Walked> {
    let mut walker = Walker {
        w: Walk {
            script,
            ctx,
            placements,
            dot: Some(0),
            symbols: HashMap::default(),
            placed: HashMap::default(),
            addrs: vec![None; sections.len()],
            regions: HashMap::default(),
            headers_size,
            relro_base,
            relro: Default::default(),
        },
        out: Walked::new(sections),
        sections,
        member_rules,
        eh_records,
        merged,
        data: Vec::new(),
        asserts: Vec::new(),
        first_rule: first_rules(script),
        lma_offset: 0,
    };
    walker.memory_regions()?;
    walker.top_commands()?;
    for step in steps {
        if let Some((desc, id)) = walker.step(step)? {
            walker.place_section(desc, id)?;
        }
    }
    walker.finish()
}

/// The first rule of each output section description (rules numbered in script order).
fn first_rules(script: &Script) -> HashMap<*const OutputDesc, u32> {
    let mut first_rule: HashMap<*const OutputDesc, u32> = HashMap::default();
    let mut n = 0u32;
    for o in script.outputs() {
        first_rule.insert(o as *const OutputDesc, n);
        n += o
            .commands
            .iter()
            .filter(|c| matches!(c, OutputCommand::Input(_)))
            .count() as u32;
    }
    first_rule
}

/// A walk over the script: its state (what expressions see), what it reads besides the
/// script, and what it has produced so far.
struct Walker<'w, 's> {
    w: Walk<'w, 's>,
    out: Walked,
    sections: &'w [OutputSection],
    /// Each member's rule, by section (`u32::MAX` for none).
    member_rules: &'w [Vec<u32>],
    eh_records: &'w EhRecords,
    merged: &'w mut [crate::layout::MergedStrings],
    /// Data statements, evaluated once the addresses are final: (section, offset, size,
    /// value, position).
    data: Vec<(u32, u64, u8, &'s Expr, Pos)>,
    /// Assertions, evaluated once the addresses are final: (condition, message, position).
    asserts: Vec<(&'s Expr, &'s str, Pos)>,
    /// The first rule of each output section description.
    first_rule: HashMap<*const OutputDesc, u32>,
    /// The VMA-to-LMA offset of the last section placed.
    lma_offset: u64,
}

/// Where an output section starts, as its description, its region and `.` say.
struct Start<'s> {
    /// Its address.
    start: u64,
    /// Its alignment: its inputs' and its description's `ALIGN`.
    align: u64,
    /// Whether its description gives its address.
    explicit: bool,
    /// The region it goes in (`> region`).
    region: Option<&'s Region>,
}

/// An output section's members as they are placed, one run (the members of one rule) at a
/// time.
struct Run<'a> {
    os: &'a OutputSection,
    id: u32,
    /// Each member's rule.
    rules: &'a [u32],
    /// The section's address.
    start: u64,
    /// The description's `SUBALIGN`.
    subalign: Option<u64>,
    /// The first member not placed yet.
    next: usize,
}

impl<'s> Walker<'_, 's> {
    /// Evaluates the MEMORY regions' origins and lengths; nothing is in them yet.
    fn memory_regions(&mut self) -> Result<()> {
        let script = self.w.script;
        let file = script.file.as_str();
        for r in &script.memory {
            let origin = eval(&r.origin, &self.w).map_err(|e| err(file, r.pos, e))?;
            let length = eval(&r.length, &self.w).map_err(|e| err(file, r.pos, e))?;
            self.w
                .regions
                .insert(r.name.clone(), (origin, length, origin));
        }
        Ok(())
    }

    /// Carries out the assignments outside SECTIONS (where `.` has no value) and keeps their
    /// assertions for the end.
    fn top_commands(&mut self) -> Result<()> {
        let script = self.w.script;
        for c in &script.top {
            match c {
                SectionsCommand::Assign(a) => {
                    self.w.dot = None;
                    assign(&mut self.w, a, None, &mut self.out.symbols)?;
                    self.w.dot = Some(0);
                }
                SectionsCommand::Assert(e, msg, pos) => self.asserts.push((e, msg, *pos)),
                SectionsCommand::Output(_) => {}
            }
        }
        Ok(())
    }

    /// The output section `step` places: its description (`None` for an orphan) and id.
    /// `None` for an assignment, an assertion (kept for the end) or a description that makes
    /// no section, which are carried out here.
    fn step(&mut self, step: &Step<'s>) -> Result<Option<(Option<&'s OutputDesc>, u32)>> {
        let d = match *step {
            Step::Command(SectionsCommand::Assign(a)) => {
                assign(&mut self.w, a, None, &mut self.out.symbols)?;
                return Ok(None);
            }
            Step::Command(SectionsCommand::Assert(e, msg, pos)) => {
                self.asserts.push((e, msg, *pos));
                return Ok(None);
            }
            Step::Command(SectionsCommand::Output(d)) => d,
            Step::Orphan(id) => return Ok(Some((None, id))),
        };
        if let Some(id) = self.section_of(d) {
            return Ok(Some((Some(&**d), id)));
        }
        // Nothing went here: the section is not made, but its symbols are still assigned
        // (at `.`).
        for c in &d.commands {
            if let OutputCommand::Assign(a) = c {
                if a.symbol != "." {
                    assign(&mut self.w, a, None, &mut self.out.symbols)?;
                }
            }
        }
        Ok(None)
    }

    /// The section description `d` places: the one of its name, if it has members or `d`
    /// makes it anyway, and is not placed yet.
    fn section_of(&self, d: &OutputDesc) -> Option<u32> {
        let n_rules = d
            .commands
            .iter()
            .filter(|c| matches!(c, OutputCommand::Input(_)))
            .count() as u32;
        let first = self.first_rule[&(d as *const OutputDesc)];
        let id = self
            .sections
            .iter()
            .position(|s| s.name == d.name && (live(s) || makes_section(d)))
            .filter(|&id| {
                // A second description of a placed section, or one whose constraint
                // kept every input out (`.eh_frame : ONLY_IF_RO` with writable inputs),
                // is not this section's.
                self.w.addrs[id].is_none()
                    && (d.only_if_ro.is_none()
                        || self.member_rules[id]
                            .iter()
                            .any(|r| (first..first + n_rules).contains(r)))
            });
        id.map(|id| id as u32)
    }

    /// Places output section `id` (described by `desc`, or an orphan): its address, its
    /// contents, its load address and its room in its regions; then moves `.` past it.
    fn place_section(&mut self, desc: Option<&'s OutputDesc>, id: u32) -> Result<()> {
        let sections = self.sections;
        let os = &sections[id as usize];
        let alloc = os.sh_flags & u64::from(elf::SHF_ALLOC) != 0;
        let at = self.start(desc, os)?;
        self.out.align[id as usize] = at.align;
        let outer_dot = self.w.dot;
        let size = self.contents(desc, id, at.start)?;
        let lma = self.load_address(desc, os, &at, size)?;
        if alloc {
            self.lma_offset = lma.wrapping_sub(at.start);
        }
        if let Some(r) = at.region {
            let pos = desc.map_or(Pos::default(), |d| d.pos);
            self.take_region(r, os, pos, at.start, size)?;
        }
        self.w.addrs[id as usize] = Some((at.start, lma, size));
        self.w
            .placed
            .insert(os.name.clone(), (at.start, lma, size, at.align));
        // (Data statements and symbols keep an empty section; `.` moves that move nothing
        // do not.)
        let keeps_empty = desc.is_some_and(|d| {
            d.commands.iter().any(|c| match c {
                OutputCommand::Data(..) => true,
                OutputCommand::Assign(a) => a.symbol != ".",
                _ => false,
            })
        });
        if size == 0 && os.synthetic.is_none() && !keeps_empty {
            // Nothing in it: not made, as in GNU ld; `.` stays.
            self.w.dot = outer_dot;
            return Ok(());
        }
        // `.` after the section: its end (a .tbss takes no room outside the TLS template).
        let tbss = os.sh_flags & u64::from(elf::SHF_TLS) != 0 && os.sh_type == elf::SHT_NOBITS;
        self.w.dot = if !alloc {
            outer_dot
        } else if tbss {
            Some(at.start)
        } else {
            Some(at.start + size)
        };
        if alloc {
            self.out.order_alloc.push(id);
        } else {
            self.out.order_rest.push(id);
        }
        Ok(())
    }

    /// Where section `os` (described by `desc`) starts: at its description's address, at the
    /// next free byte of its region, or at `.` (0 for a non-alloc section), aligned.
    fn start(&self, desc: Option<&'s OutputDesc>, os: &OutputSection) -> Result<Start<'s>> {
        let script = self.w.script;
        let file = script.file.as_str();
        let pos = desc.map_or(Pos::default(), |d| d.pos);
        let alloc = os.sh_flags & u64::from(elf::SHF_ALLOC) != 0;
        let region = desc
            .and_then(|d| d.region.as_deref())
            .and_then(|r| find_region(script, r));
        let mut align = os.align.max(1);
        if let Some(e) = desc.and_then(|d| d.align.as_ref()) {
            align = align.max(eval(e, &self.w).map_err(|e| err(file, pos, e))?);
        }
        let explicit = match desc.and_then(|d| d.addr.as_ref()) {
            Some(e) => Some(eval(e, &self.w).map_err(|e| err(file, pos, e))?),
            None => None,
        };
        if align > MAX_ALIGN {
            bail!(
                "{file}:{pos}: section {}: alignment {align:#x} is too large",
                os.name
            );
        }
        let start = match (explicit, region, alloc) {
            (Some(a), _, _) => Some(a),
            (None, Some(r), _) => self.w.regions[&r.name].2.checked_next_multiple_of(align),
            (None, None, true) => self.w.dot.unwrap_or(0).checked_next_multiple_of(align),
            (None, None, false) => Some(0),
        };
        let start = start.ok_or_else(|| {
            err(
                file,
                pos,
                format!("section {} is past the end of the address space", os.name),
            )
        })?;
        Ok(Start {
            start,
            align,
            explicit: explicit.is_some(),
            region,
        })
    }

    /// Places section `id`'s members and carries out its description's commands from
    /// `start` on (data statements and assertions are kept for the end); returns the
    /// section's size.
    fn contents(&mut self, desc: Option<&'s OutputDesc>, id: u32, start: u64) -> Result<u64> {
        let file = self.w.script.file.as_str();
        let pos = desc.map_or(Pos::default(), |d| d.pos);
        let (sections, member_rules) = (self.sections, self.member_rules);
        let os = &sections[id as usize];
        let subalign = match desc.and_then(|d| d.subalign.as_ref()) {
            Some(e) => Some(
                eval(e, &self.w)
                    .map_err(|e| err(file, pos, e))?
                    .clamp(1, MAX_ALIGN),
            ),
            None => None,
        };
        self.w.dot = Some(start);
        if os.synthetic.is_some() {
            self.w.dot = Some(start.wrapping_add(os.size));
        }
        let mut run = Run {
            os,
            id,
            rules: &member_rules[id as usize],
            start,
            subalign,
            next: 0,
        };
        let mut rule = desc.map(|d| self.first_rule[&(d as *const OutputDesc)]);
        if let Some(d) = desc {
            for c in &d.commands {
                match c {
                    OutputCommand::Input(_) => {
                        let r = rule.unwrap_or(0);
                        self.place_run(&mut run, Some(r));
                        rule = Some(r + 1);
                    }
                    OutputCommand::Assign(a) => {
                        assign(&mut self.w, a, Some(start), &mut self.out.symbols)?
                    }
                    OutputCommand::Data(size, e) => {
                        let dot = self.w.dot.unwrap_or(start);
                        self.data
                            .push((id, dot.wrapping_sub(start), *size, e, d.pos));
                        self.w.dot = Some(dot.wrapping_add(u64::from(*size)));
                    }
                    OutputCommand::Fill(e) => {
                        let v = eval(e, &self.w).map_err(|e| err(file, pos, e))?;
                        self.out.fills.push((id, fill_bytes(v)));
                    }
                    OutputCommand::Assert(e, msg, pos) => self.asserts.push((e, msg, *pos)),
                }
            }
            if let Some(e) = &d.fill {
                let v = eval(e, &self.w).map_err(|e| err(file, pos, e))?;
                self.out.fills.push((id, fill_bytes(v)));
            }
        }
        // Whatever no rule took: an orphan's members, commons in an orphan .bss.
        self.place_run(&mut run, None);
        let size = self.w.dot.unwrap_or(start).wrapping_sub(start);
        if size > MAX_SIZE || start.checked_add(size).is_none() {
            bail!(
                "{file}:{pos}: section {} ({size:#x} bytes at {start:#x}) does not fit in the address space",
                os.name
            );
        }
        Ok(size)
    }

    /// Places the members of `run` from the first not placed on, at `.`: those of rule
    /// `only` (up to the first of another rule), or all the rest; `.` moves past them.
    fn place_run(&mut self, run: &mut Run, only: Option<u32>) {
        let start = run.start;
        let mut size = self.w.dot.unwrap_or(start).wrapping_sub(start);
        while run.next < run.os.members.len()
            && only.is_none_or(|r| run.rules.get(run.next) == Some(&r))
        {
            self.place_member(run, run.os.members[run.next], &mut size);
            run.next += 1;
        }
        self.w.dot = Some(start.wrapping_add(size));
    }

    /// Places `member` of the section of `run` at offset `size`, aligned, and moves `size`
    /// past it.
    fn place_member(&mut self, run: &Run, member: Member, size: &mut u64) {
        let ctx = self.w.ctx;
        let id = run.id;
        match member {
            Member::Input { file: f, sec } => {
                let obj = &ctx.res.objects[f.0 as usize].obj;
                if let Some(a) = run.subalign {
                    *size = size.next_multiple_of(a);
                }
                let eh = self.eh_records.get(&(f, sec));
                let (at, mapping, _) = crate::layout::pack_member(obj, sec, eh, size);
                self.w.placements[f.0 as usize][sec as usize] = Placement {
                    out: id,
                    offset: at,
                    mapping,
                };
            }
            Member::Common(sym) => {
                let (csize, calign) = match ctx.res.symbols.get(sym).def {
                    crate::symbols::Def::Common { size, align, .. } => (size, align),
                    crate::symbols::Def::Shared { dso, index } => {
                        let d = &ctx.res.dsos[dso as usize].dso.defined[index as usize];
                        (d.size, (1u64 << d.value.trailing_zeros().min(6)).max(1))
                    }
                    _ => (0, 1),
                };
                *size = size.next_multiple_of(calign.max(1));
                self.out.common_offsets.insert(sym, (id, *size));
                self.out.align[id as usize] = self.out.align[id as usize].max(calign);
                *size += csize;
            }
            Member::Merged(m) => {
                let blob = &mut self.merged[m as usize];
                *size = size.next_multiple_of(blob.align);
                blob.offset = *size;
                self.out.align[id as usize] = self.out.align[id as usize].max(blob.align);
                *size += blob.size;
            }
        }
    }

    /// The load address of section `os` (described by `desc`, starting as `at` says, `size`
    /// bytes): its description's `AT`; the next free byte of its `AT>` region, which it then
    /// takes (but a NOBITS section); its address if it has one of its own or is not alloc;
    /// else its address with the last section's VMA-to-LMA offset.
    fn load_address(
        &mut self,
        desc: Option<&'s OutputDesc>,
        os: &OutputSection,
        at: &Start,
        size: u64,
    ) -> Result<u64> {
        let script = self.w.script;
        let file = script.file.as_str();
        let pos = desc.map_or(Pos::default(), |d| d.pos);
        let alloc = os.sh_flags & u64::from(elf::SHF_ALLOC) != 0;
        let lma = if let Some(e) = desc.and_then(|d| d.at.as_ref()) {
            self.w.dot = Some(at.start);
            eval(e, &self.w).map_err(|e| err(file, pos, e))?
        } else if let Some(r) = desc
            .and_then(|d| d.lma_region.as_deref())
            .and_then(|r| find_region(script, r))
        {
            let entry = self.w.regions.get_mut(&r.name).expect("region");
            let lma = entry
                .2
                .checked_next_multiple_of(at.align)
                .unwrap_or(entry.2);
            entry.2 = lma.saturating_add(if os.sh_type == elf::SHT_NOBITS {
                0
            } else {
                size
            });
            lma
        } else if at.explicit || !alloc {
            at.start
        } else {
            at.start.wrapping_add(self.lma_offset)
        };
        Ok(lma)
    }

    /// Checks that section `os`, `size` bytes at `start` (its description at `pos`), fits in
    /// region `r`, and takes the region up to its end.
    fn take_region(
        &mut self,
        r: &Region,
        os: &OutputSection,
        pos: Pos,
        start: u64,
        size: u64,
    ) -> Result<()> {
        let file = self.w.script.file.as_str();
        let (origin, length, _) = self.w.regions[&r.name];
        let end = start + size;
        if end > origin.saturating_add(length) || start < origin {
            bail!(
                "{file}:{pos}: section {} will not fit in region {}: region {} overflowed by {} bytes",
                os.name,
                r.name,
                r.name,
                end.saturating_sub(origin.saturating_add(length)).max(origin.saturating_sub(start))
            );
        }
        self.w.regions.get_mut(&r.name).expect("region").2 = end;
        Ok(())
    }

    /// Evaluates the data statements and assertions on the final addresses, and returns what
    /// the walk produced.
    fn finish(self) -> Result<Walked> {
        let Walker {
            mut w,
            mut out,
            data,
            asserts,
            ..
        } = self;
        let script = w.script;
        let file = script.file.as_str();
        // Data statements and assertions see the final addresses.
        w.dot = None;
        for (id, offset, size, e, pos) in data {
            let v = eval(e, &w).map_err(|x| err(file, pos, x))?;
            out.data
                .push((id, offset, v.to_le_bytes()[..usize::from(size)].to_vec()));
        }
        for (e, msg, pos) in asserts {
            if eval(e, &w).map_err(|x| err(file, pos, x))? == 0 {
                bail!("{file}:{pos}: assertion failed: {msg}");
            }
        }
        out.relro = w.relro.get();
        out.regions = script
            .memory
            .iter()
            .map(|r| {
                let (origin, length, end) = w.regions[&r.name];
                (r.name.clone(), origin, length, end)
            })
            .collect();
        out.addrs = w.addrs;
        Ok(out)
    }
}

/// Carries out one assignment. `section`: the start of the output section it is in.
fn assign(
    w: &mut Walk,
    a: &Assignment,
    section: Option<u64>,
    symbols: &mut Vec<(String, u64, bool)>,
) -> Result<()> {
    let file = w.script.file.as_str();
    // GNU ld's scripts PROVIDE these around `*(.rela.iplt)`; weld's `.rela.iplt` is
    // linker-made, placed by weld and not by a rule, so its own values stand (the script's
    // would bracket nothing, and static glibc would apply no IRELATIVE relocation).
    if matches!(a.provide, AssignMode::Provide | AssignMode::ProvideHidden)
        && matches!(a.symbol.as_str(), "__rela_iplt_start" | "__rela_iplt_end")
    {
        return Ok(());
    }
    if a.symbol != "." && matches!(a.provide, AssignMode::Provide | AssignMode::ProvideHidden) {
        // PROVIDE: only for a symbol the inputs refer to and do not define (resolution made
        // it synthetic then).
        let wanted = w
            .ctx
            .res
            .symbols
            .lookup(a.symbol.as_bytes())
            .is_some_and(|id| w.ctx.res.symbols.get(id).def == crate::symbols::Def::Synthetic);
        if !wanted {
            return Ok(());
        }
    }
    let value = eval(&a.expr, w).map_err(|e| err(file, a.pos, e))?;
    let value = match a.op {
        None => value,
        Some(op) => {
            let old = if a.symbol == "." {
                w.dot
            } else {
                w.symbol(&a.symbol)
            }
            .ok_or_else(|| err(file, a.pos, format!("{} has no value yet", a.symbol)))?;
            let e = Expr::Binary(op, Box::new(Expr::Num(old)), Box::new(Expr::Num(value)));
            eval(&e, w).map_err(|e| err(file, a.pos, e))?
        }
    };
    if a.symbol == "." {
        let value = match section {
            // Inside a section a plain number is an offset from its start.
            Some(start) if a.op.is_none() && is_constant(&a.expr) => start.wrapping_add(value),
            _ => value,
        };
        if let Some(start) = section {
            if value.wrapping_sub(start) > MAX_SIZE {
                return Err(err(
                    file,
                    a.pos,
                    format!("'.' = {value:#x} makes the section larger than {MAX_SIZE:#x} bytes"),
                ));
            }
        }
        if let (Some(dot), Some(_)) = (w.dot, section) {
            if value < dot {
                return Err(err(
                    file,
                    a.pos,
                    format!("cannot move location counter backwards (from {dot:#x} to {value:#x})"),
                ));
            }
        }
        w.dot = Some(value);
    } else {
        let hidden = matches!(a.provide, AssignMode::Hidden | AssignMode::ProvideHidden);
        w.symbols.insert(a.symbol.clone(), value);
        symbols.retain(|(n, _, _)| n != &a.symbol);
        symbols.push((a.symbol.clone(), value, hidden));
    }
    Ok(())
}

/// A fill expression's bytes: as many as its value takes (1, 2, 4 or 8), big-endian, as
/// GNU ld repeats `=0x90909090` ("Output Section Fill").
fn fill_bytes(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let n = (8 - first).next_power_of_two().min(8);
    bytes[8 - n..].to_vec()
}

/// Bytes that fill the gaps between an output section's members with `pattern`.
fn fill_gaps(
    ctx: &Context,
    sections: &[OutputSection],
    placements: &[Vec<Placement>],
    merged: &[crate::layout::MergedStrings],
    id: u32,
    pattern: &[u8],
) -> Vec<(u32, u64, Vec<u8>)> {
    let os = &sections[id as usize];
    if os.sh_type == elf::SHT_NOBITS {
        return Vec::new();
    }
    let mut used: Vec<(u64, u64)> = os
        .members
        .iter()
        .filter_map(|m| match *m {
            Member::Input { file, sec } => {
                let p = placements[file.0 as usize][sec as usize];
                let obj = &ctx.res.objects[file.0 as usize].obj;
                Some((p.offset, p.offset + obj.section_size(sec as usize)))
            }
            Member::Merged(m) => {
                let blob = &merged[m as usize];
                Some((blob.offset, blob.offset + blob.size))
            }
            _ => None,
        })
        .collect();
    used.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = 0;
    for (s, e) in used.into_iter().chain([(os.size, os.size)]) {
        if s > at {
            let bytes = (at..s)
                .map(|i| pattern[(i % pattern.len() as u64) as usize])
                .collect();
            gaps.push((id, at, bytes));
        }
        at = at.max(e);
    }
    gaps
}

struct Segments {
    segments: Vec<Segment>,
    base: u64,
    /// The file offset after the last alloc section's bytes.
    end: u64,
    tls: Option<(u64, u64, u64, u64)>,
    tls_align: u64,
}

/// The segment permissions an alloc section needs (also for the default layout's segments).
pub(super) fn perm(s: &OutputSection) -> u32 {
    let mut p = elf::PF_R;
    if s.sh_flags & u64::from(elf::SHF_WRITE) != 0 {
        p |= elf::PF_W;
    }
    if s.sh_flags & u64::from(elf::SHF_EXECINSTR) != 0 {
        p |= elf::PF_X;
    }
    p
}

/// Program headers for the placed sections; sets each alloc section's file offset.
#[allow(clippy::too_many_arguments)]
fn segments(
    ctx: &Context,
    script: &Script,
    sections: &mut [OutputSection],
    order: &[u32],
    lmas: &[u64],
    phdr_of: &HashMap<u32, Vec<usize>>,
    headers_size: u64,
    executable_stack: bool,
) -> Result<Segments> {
    let mut loads = Loads {
        ctx,
        script,
        phdr_of,
        headers_size,
        explicit: !script.phdrs.is_empty(),
        headers_loaded: headers_loaded(ctx, script, sections, order, lmas, headers_size),
        loads: Vec::new(),
        offset: headers_size,
        last: None,
        tls: None,
        tls_align: 1,
    };
    for &id in order {
        loads.add(sections, id, lmas[id as usize])?;
    }
    let base = loads.loads.first().map_or(0, |l| l.0.vaddr);
    let segments = if loads.explicit {
        loads.in_phdrs_order(sections, order, base, executable_stack)?
    } else {
        loads.in_default_order(sections, order, base, executable_stack)
    };
    Ok(Segments {
        segments,
        base,
        end: loads.offset,
        tls: loads.tls,
        tls_align: loads.tls_align,
    })
}

/// Whether the file and program headers are loaded (with the first PT_LOAD): with `PHDRS`,
/// if an entry has FILEHDR; without, if they fit below the first section with bytes in its
/// first page, in both address and load address.
fn headers_loaded(
    ctx: &Context,
    script: &Script,
    sections: &[OutputSection],
    order: &[u32],
    lmas: &[u64],
    headers_size: u64,
) -> bool {
    let first_with_bytes = order
        .iter()
        .copied()
        .find(|&id| sections[id as usize].size > 0);
    // (A raw binary loads no headers: FILEHDR asks for nothing there.)
    if ctx.config.binary_output {
        false
    } else if !script.phdrs.is_empty() {
        script.phdrs.iter().any(|p| p.filehdr)
    } else {
        first_with_bytes.is_some_and(|id| {
            let s = &sections[id as usize];
            s.addr % PAGE_SIZE >= headers_size && lmas[id as usize] >= headers_size
        })
    }
}

/// The PT_LOAD segments as they are laid out over the alloc sections, in order, and the TLS
/// template among them.
struct Loads<'a> {
    ctx: &'a Context<'a>,
    script: &'a Script,
    /// Per output section: the program headers `PHDRS` puts it in.
    phdr_of: &'a HashMap<u32, Vec<usize>>,
    headers_size: u64,
    /// Whether the script has `PHDRS`.
    explicit: bool,
    /// Whether the file and program headers are loaded.
    headers_loaded: bool,
    /// The PT_LOADs so far, each with its `PHDRS` entry (with `PHDRS`).
    loads: Vec<(Segment, Option<usize>)>,
    /// The file offset after the bytes placed so far.
    offset: u64,
    /// The last section in the open segment: (end address, nobits, lma delta).
    last: Option<(u64, bool, u64)>,
    /// TLS template: (start, file offset, end of initialised data, end).
    tls: Option<(u64, u64, u64, u64)>,
    tls_align: u64,
}

impl Loads<'_> {
    /// Adds alloc section `id` (load address `lma`): it opens or continues a PT_LOAD (a new
    /// one where `PHDRS` says, or, without PHDRS, where GNU ld would start one), and gets its
    /// file offset.
    fn add(&mut self, sections: &mut [OutputSection], id: u32, lma: u64) -> Result<()> {
        let script = self.script;
        let file = &script.file;
        let s = &sections[id as usize];
        let (addr, size) = (s.addr, s.size);
        let (s_align, s_flags) = (s.align, s.sh_flags);
        let nobits = s.sh_type == elf::SHT_NOBITS;
        let tbss = nobits && s.sh_flags & u64::from(elf::SHF_TLS) != 0;
        let p = perm(s);
        let delta = lma.wrapping_sub(addr);
        let load = if self.explicit {
            let is_load_phdr = |i: &usize| script.phdrs[*i].p_type == elf::PT_LOAD;
            match self
                .phdr_of
                .get(&id)
                .and_then(|v| v.iter().find(|i| is_load_phdr(i)))
            {
                Some(&i) => Some(i),
                None => {
                    // In no PT_LOAD: not loaded (GNU ld warns the same way).
                    sections[id as usize].offset = self.offset;
                    return Ok(());
                }
            }
        } else {
            None
        };
        let continues = self.continues(load, addr, p, delta, nobits);
        if size == 0 && !continues && !tbss {
            // An empty section opens no segment.
            sections[id as usize].offset = self.offset;
            return Ok(());
        }
        if !continues && !tbss {
            self.open(&sections[id as usize], lma, load)?;
        }
        let Some((seg, _)) = self.loads.last_mut() else {
            sections[id as usize].offset = self.offset;
            return Ok(());
        };
        if !self.explicit || script.phdrs[load.unwrap_or(0)].flags.is_none() {
            seg.p_flags |= p;
        }
        if addr < seg.vaddr {
            bail!(
                "{file}: section {} ({addr:#x}) is below the start of its segment ({:#x})",
                sections[id as usize].name,
                seg.vaddr
            );
        }
        // (A NOBITS section's offset is where the file's bytes end, as GNU ld writes it.)
        let off = if nobits && !tbss {
            self.offset.max(seg.offset)
        } else {
            seg.offset + (addr - seg.vaddr)
        };
        sections[id as usize].offset = off;
        if s_flags & u64::from(elf::SHF_TLS) != 0 {
            self.tls_align = self.tls_align.max(s_align);
            let t = self.tls.get_or_insert((addr, off, addr, addr));
            if !nobits {
                t.2 = addr + size;
            }
            t.3 = addr + size;
        }
        if tbss {
            return Ok(());
        }
        if !nobits {
            seg.filesz = off + size - seg.offset;
            self.offset = off + size;
        }
        seg.memsz = seg.memsz.max(addr + size - seg.vaddr);
        self.last = Some((addr + size, nobits, delta));
        Ok(())
    }

    /// Whether a section at `addr` (permissions `p`, VMA-to-LMA offset `delta`, NOBITS or
    /// not, in `PHDRS` entry `load`) continues the open PT_LOAD: with `PHDRS`, if it is the
    /// same entry; without, where GNU ld would not start a new one.
    fn continues(&self, load: Option<usize>, addr: u64, p: u32, delta: u64, nobits: bool) -> bool {
        let (Some((seg, l)), Some((end, last_nobits, last_delta))) = (self.loads.last(), self.last)
        else {
            return false;
        };
        if self.explicit {
            return *l == load;
        }
        let same_kind = (seg.p_flags & elf::PF_W == p & elf::PF_W)
            && (seg.p_flags & elf::PF_X == p & elf::PF_X);
        // A section that starts in the page the segment ends in must join it
        // (two segments cannot share a page), whatever its permissions: the
        // segment takes the union of them, as GNU ld's does.
        let shares_page = addr & !(PAGE_SIZE - 1) < end.next_multiple_of(PAGE_SIZE) && addr >= end;
        let next_page = addr & !(PAGE_SIZE - 1) == end.next_multiple_of(PAGE_SIZE);
        delta == last_delta && (nobits || !last_nobits) && (shares_page || (same_kind && next_page))
    }

    /// Opens a PT_LOAD (`PHDRS` entry `load`) at section `s`, with load address `lma`. The
    /// first one starts with the headers, a page down, when they are loaded.
    fn open(&mut self, s: &OutputSection, lma: u64, load: Option<usize>) -> Result<()> {
        let script = self.script;
        let file = &script.file;
        let (addr, p) = (s.addr, perm(s));
        let headers_size = self.headers_size;
        let mut first = self.loads.is_empty();
        if first && self.headers_loaded && !self.explicit && p & elf::PF_X != 0 {
            // Code first: GNU ld (`-z separate-code`) gives the headers a read-only
            // PT_LOAD of their own, one page below in load addresses, and starts the
            // code's at the section.
            let page = addr & !(PAGE_SIZE - 1);
            self.loads.push((
                Segment {
                    p_type: elf::PT_LOAD,
                    p_flags: elf::PF_R,
                    offset: 0,
                    vaddr: page,
                    paddr: (lma & !(PAGE_SIZE - 1)).wrapping_sub(PAGE_SIZE),
                    filesz: headers_size,
                    memsz: headers_size,
                    align: PAGE_SIZE,
                },
                None,
            ));
            first = false;
        }
        let (seg_off, vaddr, paddr, filesz) = if first && self.headers_loaded {
            let vaddr = addr & !(PAGE_SIZE - 1);
            if addr - vaddr < headers_size {
                bail!(
                    "{file}: not enough room for program headers before section {} (at {addr:#x})",
                    s.name
                );
            }
            (0, vaddr, lma & !(PAGE_SIZE - 1), addr - vaddr)
        } else {
            let off = self.offset + (addr.wrapping_sub(self.offset) & (PAGE_SIZE - 1));
            (off, addr, lma, 0)
        };
        let mut p_flags = p;
        if let Some(i) = load {
            if let Some(e) = &script.phdrs[i].flags {
                p_flags = eval(e, &NoEnv).map_err(|e| err(file, script.phdrs[i].pos, e))? as u32;
            }
        }
        self.loads.push((
            Segment {
                p_type: elf::PT_LOAD,
                p_flags,
                offset: seg_off,
                vaddr,
                paddr,
                filesz,
                memsz: filesz,
                align: PAGE_SIZE,
            },
            load,
        ));
        Ok(())
    }

    /// The program headers in `PHDRS` order: the PT_LOADs as laid out (an empty one for an
    /// entry no section went to), the others spanning their sections; FLAGS and AT as the
    /// entries say.
    fn in_phdrs_order(
        &self,
        sections: &[OutputSection],
        order: &[u32],
        base: u64,
        executable_stack: bool,
    ) -> Result<Vec<Segment>> {
        let file = &self.script.file;
        let mut segments: Vec<Segment> = Vec::new();
        let mut loads = self.loads.iter().peekable();
        for (i, p) in self.script.phdrs.iter().enumerate() {
            if p.p_type == elf::PT_LOAD {
                match loads.peek() {
                    Some((_, Some(l))) if *l == i => segments.push(loads.next().expect("peeked").0),
                    _ => segments.push(empty_segment(elf::PT_LOAD, PAGE_SIZE)),
                }
                continue;
            }
            let mut seg = self.spanning(sections, order, i, base, executable_stack);
            if let Some(e) = &p.flags {
                seg.p_flags = eval(e, &NoEnv).map_err(|e| err(file, p.pos, e))? as u32;
            }
            if let Some(e) = &p.at {
                seg.paddr = eval(e, &NoEnv).map_err(|e| err(file, p.pos, e))?;
            }
            segments.push(seg);
        }
        Ok(segments)
    }

    /// The segment of `PHDRS` entry `i`, not a PT_LOAD: from its first section to the end of
    /// its last; with none, the program headers (PT_PHDR or PHDRS), the stack or nothing.
    fn spanning(
        &self,
        sections: &[OutputSection],
        order: &[u32],
        i: usize,
        base: u64,
        executable_stack: bool,
    ) -> Segment {
        let p = &self.script.phdrs[i];
        let members: Vec<&OutputSection> = order
            .iter()
            .filter(|id| self.phdr_of.get(id).is_some_and(|v| v.contains(&i)))
            .map(|&id| &sections[id as usize])
            .collect();
        match (members.first(), members.last()) {
            (Some(f), Some(l)) => Segment {
                p_type: p.p_type,
                p_flags: members.iter().fold(elf::PF_R, |a, s| a | perm(s)),
                offset: f.offset,
                vaddr: f.addr,
                paddr: f.addr,
                filesz: if l.sh_type == elf::SHT_NOBITS {
                    l.offset - f.offset
                } else {
                    l.offset + l.size - f.offset
                },
                memsz: l.addr + l.size - f.addr,
                align: members.iter().map(|s| s.align).max().unwrap_or(1),
            },
            _ if p.p_type == elf::PT_PHDR || p.phdrs => Segment {
                p_type: p.p_type,
                p_flags: elf::PF_R,
                offset: 64,
                vaddr: base + 64,
                paddr: base + 64,
                filesz: 56 * self.script.phdrs.len() as u64,
                memsz: 56 * self.script.phdrs.len() as u64,
                align: 8,
            },
            // (GNU ld aligns a PHDRS-made PT_GNU_STACK to 8, its own to 16.)
            _ if p.p_type == elf::PT_GNU_STACK => stack_segment(self.ctx, executable_stack, 8),
            _ => empty_segment(p.p_type, 1),
        }
    }

    /// The program headers without `PHDRS`: PT_PHDR and PT_INTERP (for an alloc `.interp`),
    /// the PT_LOADs, PT_DYNAMIC, the notes', PT_TLS, PT_GNU_EH_FRAME and PT_GNU_STACK.
    fn in_default_order(
        &self,
        sections: &[OutputSection],
        order: &[u32],
        base: u64,
        executable_stack: bool,
    ) -> Vec<Segment> {
        let mut segments: Vec<Segment> = Vec::new();
        let find = |name: &str| sections.iter().find(|s| s.name == name && s.size > 0);
        let of = |s: &OutputSection, p_type: u32, p_flags: u32, align: u64| Segment {
            p_type,
            p_flags,
            offset: s.offset,
            vaddr: s.addr,
            paddr: s.addr,
            filesz: s.size,
            memsz: s.size,
            align,
        };
        let interp = find(".interp").filter(|s| s.sh_flags & u64::from(elf::SHF_ALLOC) != 0);
        if let Some(interp) = interp {
            segments.push(Segment {
                p_type: elf::PT_PHDR,
                p_flags: elf::PF_R,
                offset: 64,
                vaddr: base + 64,
                paddr: base + 64,
                filesz: 0, // set below
                memsz: 0,
                align: 8,
            });
            segments.push(of(interp, elf::PT_INTERP, elf::PF_R, 1));
        }
        segments.extend(self.loads.iter().map(|l| l.0));
        if let Some(d) = find(".dynamic") {
            segments.push(of(d, elf::PT_DYNAMIC, elf::PF_R | elf::PF_W, 8));
        }
        segments.extend(crate::layout::note_segments(
            order.iter().map(|&id| &sections[id as usize]),
        ));
        if let Some((start, off, file_end, mem_end)) = self.tls {
            segments.push(Segment {
                p_type: elf::PT_TLS,
                p_flags: elf::PF_R,
                offset: off,
                vaddr: start,
                paddr: start,
                filesz: file_end - start,
                memsz: mem_end - start,
                align: self.tls_align,
            });
        }
        if let Some(h) = find(".eh_frame_hdr") {
            segments.push(of(h, elf::PT_GNU_EH_FRAME, elf::PF_R, 4));
        }
        segments.push(stack_segment(self.ctx, executable_stack, 16));
        let n = segments.len() as u64;
        if let Some(phdr) = segments.iter_mut().find(|s| s.p_type == elf::PT_PHDR) {
            phdr.filesz = 56 * n;
            phdr.memsz = 56 * n;
        }
        segments
    }
}

/// A PHDRS entry no section went to: a header with nothing in it.
fn empty_segment(p_type: u32, align: u64) -> Segment {
    Segment {
        p_type,
        p_flags: elf::PF_R,
        offset: 0,
        vaddr: 0,
        paddr: 0,
        filesz: 0,
        memsz: 0,
        align,
    }
}

/// PT_GNU_STACK: whether the stack is executable, and `-z stack-size` (the main thread's
/// stack size, read by the loader).
pub(super) fn stack_segment(ctx: &Context, executable: bool, align: u64) -> Segment {
    Segment {
        p_type: elf::PT_GNU_STACK,
        p_flags: elf::PF_R | elf::PF_W | if executable { elf::PF_X } else { 0 },
        offset: 0,
        vaddr: 0,
        paddr: 0,
        filesz: 0,
        memsz: ctx.config.z.stack_size.unwrap_or(0),
        align,
    }
}

/// `NOCROSSREFS`/`NOCROSSREFS_TO`: a relocation in one output section of a group that refers
/// to a symbol in another of the group (`NOCROSSREFS_TO`: to the first from the others) is
/// an error, as in GNU ld ("prohibited cross reference"). Alloc sections only.
pub fn check_cross_refs(ctx: &Context, layout: &crate::layout::Layout) -> Result<()> {
    use rayon::prelude::*;
    let Some(script) = ctx.config.script.as_deref() else {
        return Ok(());
    };
    if script.nocrossrefs.is_empty() {
        return Ok(());
    }
    let name_of = |out: u32| layout.sections.get(out as usize).map(|s| s.name.as_str());
    let prohibited = |from: &str, to: &str| {
        from != to
            && script.nocrossrefs.iter().any(|(to_only, names)| {
                if *to_only {
                    names.first().is_some_and(|t| t == to) && names[1..].iter().any(|n| n == from)
                } else {
                    names.iter().any(|n| n == from) && names.iter().any(|n| n == to)
                }
            })
    };
    let errors: Vec<String> = ctx
        .res
        .objects
        .par_iter()
        .enumerate()
        .flat_map_iter(|(f, object)| {
            let file = crate::symbols::FileId(f as u32);
            let mut errors = Vec::new();
            for (sec, placement) in layout.placements[f].iter().enumerate() {
                let Some(from) = name_of(placement.out) else {
                    continue;
                };
                let flags = object.obj.shdrs[sec].sh_flags.get(LE);
                if flags & u64::from(elf::SHF_ALLOC) == 0 {
                    continue;
                }
                for r in object.obj.relocs[sec] {
                    let (symref, target, _) = ctx.target(file, r.r_sym(LE, false) as usize);
                    let crate::context::Target::Section {
                        file: tf, sec: ts, ..
                    } = target
                    else {
                        continue;
                    };
                    let to = layout.placements[tf.0 as usize]
                        .get(ts as usize)
                        .and_then(|p| name_of(p.out));
                    if let Some(to) = to.filter(|to| prohibited(from, to)) {
                        errors.push(format!(
                            "{}({}+{:#x}): prohibited cross reference from {from} to {} in {to}",
                            object.name,
                            String::from_utf8_lossy(object.obj.section_names[sec]),
                            r.r_offset.get(LE),
                            ctx.display(symref),
                        ));
                    }
                }
            }
            errors
        })
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("\nweld: error: "));
    }
    Ok(())
}

/// A script's assignments when it has no SECTIONS (the default layout placed everything):
/// evaluated in order on the final layout, `.` unavailable. (name, value, hidden).
pub fn assign_on_layout(
    ctx: &Context,
    layout: &crate::layout::Layout,
) -> Result<Vec<(String, u64, bool)>> {
    let Some(script) = ctx.config.script.as_deref() else {
        return Ok(Vec::new());
    };
    let env = LayoutEnv {
        ctx,
        layout,
        symbols: std::cell::RefCell::new(HashMap::default()),
    };
    let mut out = Vec::new();
    for c in &script.top {
        let SectionsCommand::Assign(a) = c else {
            continue;
        };
        let wanted = ctx
            .res
            .symbols
            .lookup(a.symbol.as_bytes())
            .is_some_and(|id| ctx.res.symbols.get(id).def == crate::symbols::Def::Synthetic);
        if !wanted {
            continue;
        }
        let value = eval(&a.expr, &env).map_err(|e| err(&script.file, a.pos, e))?;
        let value = match a.op {
            None => value,
            Some(op) => {
                let old = env.symbol(&a.symbol).unwrap_or(0);
                let e = Expr::Binary(op, Box::new(Expr::Num(old)), Box::new(Expr::Num(value)));
                eval(&e, &env).map_err(|e| err(&script.file, a.pos, e))?
            }
        };
        env.symbols.borrow_mut().insert(a.symbol.clone(), value);
        out.retain(|(n, _, _): &(String, u64, bool)| n != &a.symbol);
        out.push((
            a.symbol.clone(),
            value,
            matches!(a.provide, AssignMode::Hidden | AssignMode::ProvideHidden),
        ));
    }
    Ok(out)
}

/// Expressions on a finished layout.
struct LayoutEnv<'a> {
    ctx: &'a Context<'a>,
    layout: &'a crate::layout::Layout,
    symbols: std::cell::RefCell<HashMap<String, u64>>,
}

impl Env for LayoutEnv<'_> {
    fn dot(&self) -> Option<u64> {
        None
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        if let Some(&v) = self.symbols.borrow().get(name) {
            return Some(v);
        }
        let id = self.ctx.res.symbols.lookup(name.as_bytes())?;
        if self.ctx.res.symbols.get(id).def == crate::symbols::Def::Undefined {
            return None;
        }
        self.layout
            .symbol_address(self.ctx, crate::context::SymRef::Global(id))
    }
    fn defined(&self, name: &str) -> bool {
        self.symbol(name).is_some()
    }
    fn section(&self, name: &str) -> Option<(u64, u64, u64, u64)> {
        self.layout
            .order
            .iter()
            .map(|id| &self.layout.sections[id.0 as usize])
            .find(|s| s.name == name)
            .map(|s| (s.addr, s.addr, s.size, s.align))
    }
    fn region(&self, _: &str) -> Option<(u64, u64)> {
        None
    }
    fn sizeof_headers(&self) -> u64 {
        64 + 56 * self.layout.segments.len() as u64
    }
    fn segment_start(&self, name: &str) -> Option<u64> {
        match name {
            "text-segment" => Some(self.layout.base),
            _ => None,
        }
    }
}
