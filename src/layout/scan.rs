//! Layout, steps 1 to 4 (see `compute`): which input sections are content and which are
//! live, which `.eh_frame` records are kept, and the relocation scan: what the relocations
//! of live alloc sections ask of the output (GOT, PLT and IPLT entries, canonical PLT
//! entries and copy relocations, dynamic relocations: [`Needs`]), which undefined symbols
//! they refer to, and the errors they raise.
//!
//! Files are scanned in parallel, each into its own [`ScanRecorder`]; the requests are
//! replayed in file order, so the tables do not depend on scheduling. Like lld's
//! `Relocations.cpp`, the scan decides what is needed and applies nothing: no address is
//! known here, and relocations are applied by `write`.

use super::{packs_relative, relaxable_got_load, scripted, Slots};
use crate::arch::{Arch, Current as A, Expr};
use crate::args::Config;
use crate::context::{
    is_eh_frame, relocatable, Context, GotKind, Needs, OutputKind, SymRef, Target,
};
use crate::eh_frame::{self, Record};
use crate::input::elf::{Rela, LE};
use crate::resolve::{LoadedObject, Resolution};
use crate::state::ScanRecord;
use crate::symbols::{Def, FileId, SymbolId};
use anyhow::{bail, Result};
use object::elf;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

/// A relocation against an undefined symbol (reported after layout, with its source
/// location).
pub struct Undefined {
    pub symbol: SymbolId,
    pub file: FileId,
    pub sec: u32,
    pub offset: u64,
}

/// One object's scan: what it asks of the output, its references to undefined symbols, and
/// its errors.
type ObjectScan = (ScanRecorder, Vec<Undefined>, Vec<String>);

/// What steps 1 to 4 of [`compute`](super::compute) found.
pub(super) struct Scanned {
    pub(super) eh_records: HashMap<(FileId, u32), Vec<Record>>,
    pub(super) live: Vec<Vec<bool>>,
    /// `--icf`: the folded sections (not live above) and the sections kept in their place.
    pub(super) folded: crate::icf::Folded,
    pub(super) needs: Needs,
    pub(super) undefined: Vec<Undefined>,
    pub(super) reloc_errors: Vec<String>,
    pub(super) scans: Vec<ScanRecord>,
}

/// Steps 1 to 4 of [`compute`](super::compute): which input sections are content (a
/// script's `/DISCARD/` drops some), which are live (`--gc-sections`, a script's KEEP), the
/// `.eh_frame` records of live functions, and what the relocations of live sections need
/// (GOT, PLT, copy relocations, dynamic relocations), with the errors they raise.
pub(super) fn scan_inputs(
    ctx: &Context,
    slot_mode: Slots,
    matcher: Option<&scripted::Matcher>,
    script_assign: &[Vec<scripted::Assign>],
    steps: &mut crate::PhaseTimer,
) -> Result<Scanned> {
    let slotted = !matches!(slot_mode, Slots::Packed);
    // 1. Which sections are content, and the .eh_frame records.
    let (content, mut eh_records) = find_content(ctx, script_assign)?;
    steps.step("content");
    // 2. Liveness.
    let mut live = mark_live(ctx, slotted, matcher, script_assign, content, &eh_records);
    steps.step("gc");
    let folded = fold_identical(ctx, slotted, matcher, &mut live, &eh_records);
    // 3. Drop FDEs of dead functions; give kept records their output offsets.
    drop_dead_fdes(ctx, &mut eh_records, &live);
    steps.step("eh-frame");
    // 4. Scan relocations of live alloc sections: GOT, PLT, copy relocations, dynamic
    //    relocations, errors.
    //    Files are scanned in parallel; each records its requests in order, and the requests
    //    are replayed in file order, so GOT and PLT slots do not depend on scheduling.
    //    In incremental mode the results are kept by symbol index, and an update takes an
    //    unchanged object's recorded results if its global symbols' classes are the same.
    let per_file = scan_files(ctx, slot_mode, &live, &eh_records);
    let (needs, undefined, reloc_errors, scans) = replay_in_file_order(ctx.res, per_file, slotted);
    steps.step("scan");
    Ok(Scanned {
        eh_records,
        live,
        folded,
        needs,
        undefined,
        reloc_errors,
        scans,
    })
}

/// Step 1: which sections of each object are content ([`content_of`]) and not discarded by
/// the script (`script_assign`), and the records of those that are `.eh_frame` sections.
#[allow(clippy::type_complexity)]
fn find_content(
    ctx: &Context,
    script_assign: &[Vec<scripted::Assign>],
) -> Result<(Vec<Vec<bool>>, HashMap<(FileId, u32), Vec<Record>>)> {
    let (config, res) = (ctx.config, ctx.res);
    let discarded = |f: usize, sec: usize| {
        script_assign
            .get(f)
            .is_some_and(|a| a[sec] == scripted::Assign::Discard)
    };
    let per_file: Vec<Result<FileContent>> = res
        .objects
        .par_iter()
        .with_max_len(1)
        .map(|object| content_of(object, config))
        .collect();
    let mut content: Vec<Vec<bool>> = Vec::with_capacity(res.objects.len());
    let mut eh_records = HashMap::default();
    for (f, file) in per_file.into_iter().enumerate() {
        let (mut c, records) = file?;
        if !script_assign.is_empty() {
            for (sec, c) in c.iter_mut().enumerate() {
                *c &= !discarded(f, sec);
            }
        }
        content.push(c);
        for (sec, split) in records {
            if !discarded(f, sec as usize) {
                eh_records.insert((FileId(f as u32), sec), split);
            }
        }
    }
    Ok((content, eh_records))
}

/// Step 2: which content sections are live: with `--gc-sections`, those reachable from the
/// roots and a script's KEEPs (`--print-gc-sections` lists the others); all of them
/// otherwise.
fn mark_live(
    ctx: &Context,
    slotted: bool,
    matcher: Option<&scripted::Matcher>,
    script_assign: &[Vec<scripted::Assign>],
    content: Vec<Vec<bool>>,
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
) -> Vec<Vec<bool>> {
    let (config, res) = (ctx.config, ctx.res);
    // Incremental mode keeps every section: an edit may make any of them reachable.
    if !config.gc_sections || slotted {
        return content;
    }
    let keep = |f: usize, sec: usize| {
        matcher
            .as_ref()
            .is_some_and(|m| m.keeps(script_assign[f][sec]))
    };
    let live = crate::gc::mark_live(ctx, &content, eh_records, &keep);
    if config.print_gc_sections {
        crate::gc::print_removed(res, &content, &live);
    }
    live
}

/// `--icf`: folds identical sections (`--print-icf-sections` lists them). Folded sections
/// are laid out no more, so they leave `live`; they alias the kept ones (see `compute`). A
/// script's layout places sections by name and does not fold.
fn fold_identical(
    ctx: &Context,
    slotted: bool,
    matcher: Option<&scripted::Matcher>,
    live: &mut [Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
) -> crate::icf::Folded {
    let config = ctx.config;
    if config.icf == crate::args::Icf::None || slotted || matcher.is_some() {
        return Vec::new();
    }
    let safe = config.icf == crate::args::Icf::Safe;
    let folded = crate::icf::fold(ctx, live, eh_records, safe);
    for &((file, sec), _) in &folded {
        live[file.0 as usize][sec as usize] = false;
    }
    if config.print_icf_sections {
        crate::icf::print(ctx.res, &folded);
    }
    folded
}

/// Step 3: the `.eh_frame` records that stay (CIEs, FDEs of live functions) get their output
/// offsets ([`keep_live_fdes`]).
fn drop_dead_fdes(
    ctx: &Context,
    eh_records: &mut HashMap<(FileId, u32), Vec<Record>>,
    live: &[Vec<bool>],
) {
    let section_of = |file: FileId, r: &Rela| -> Option<(FileId, u32)> {
        let (_, target, _) = ctx.target(file, r.r_sym(LE, false) as usize);
        match target {
            Target::Section { file, sec, .. } => Some((file, sec)),
            _ => None,
        }
    };
    for (&(file, sec), records) in eh_records.iter_mut() {
        let relocs = ctx.res.objects[file.0 as usize].obj.relocs[sec as usize];
        keep_live_fdes(records, relocs, |r| {
            section_of(file, r)
                .is_some_and(|(f, s)| live[f.0 as usize].get(s as usize).copied().unwrap_or(false))
        });
    }
}

/// Step 4's scans, one per object in parallel ([`scan_file`]); in incremental mode with
/// every global symbol's class ([`scan_class`]), which decides whether an object's recorded
/// scan still holds.
fn scan_files(
    ctx: &Context,
    slot_mode: Slots,
    live: &[Vec<bool>],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
) -> Vec<ObjectScan> {
    let res = ctx.res;
    let slotted = !matches!(slot_mode, Slots::Packed);
    let classes: Vec<u8> = if slotted {
        (0..res.symbols.symbols.len())
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| scan_class(ctx, SymbolId(i as u32)))
            .collect()
    } else {
        Vec::new()
    };
    // Test support (`WELD_ORACLE=1`): unchanged objects are scanned anyway, and the results
    // must be the recorded ones.
    let verify = matches!(slot_mode, Slots::Replay(_))
        && std::env::var("WELD_ORACLE").is_ok_and(|v| v == "1");
    let object_classes = |object: &LoadedObject| -> Vec<u8> {
        object
            .global_ids
            .iter()
            .map(|id| classes[id.0 as usize])
            .collect()
    };
    res.objects
        .par_iter()
        .with_max_len(1)
        .enumerate()
        .map(|(f, object)| {
            let object_classes = slotted.then(|| object_classes(object));
            scan_file(
                ctx,
                FileId(f as u32),
                slot_mode,
                object_classes,
                verify,
                &live[f],
                eh_records,
            )
        })
        .collect()
}

/// One object's scan in step 4 (`object_classes`: its global symbols' classes, in
/// incremental mode): an update's recorded scan of the object if the classes are the
/// recorded ones; otherwise a new scan ([`scan_object`]), which keeps the classes in its
/// record. `verify`: scan anyway, and report an internal error if the record differs.
fn scan_file(
    ctx: &Context,
    file: FileId,
    slot_mode: Slots,
    object_classes: Option<Vec<u8>>,
    verify: bool,
    live: &[bool],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
) -> ObjectScan {
    let object = &ctx.res.objects[file.0 as usize];
    let slotted = !matches!(slot_mode, Slots::Packed);
    let mut recorded = None;
    if let Slots::Replay(rec) = slot_mode {
        if let Some(Some(record)) = rec.scans.get(file.0 as usize) {
            if Some(&record.classes) == object_classes.as_ref() {
                if !verify {
                    let (needs, undefined) = ScanRecorder::from_record(record, object, file);
                    return (needs, undefined, Vec::new());
                }
                recorded = Some(record);
            }
        }
    }
    let (mut needs, undefined, mut reloc_errors) =
        scan_object(ctx, file, live, eh_records, slotted);
    if let Some(record) = &mut needs.record {
        record.classes = object_classes.unwrap_or_default();
    }
    if recorded.is_some_and(|r| needs.record.as_ref() != Some(r)) {
        reloc_errors.push(format!(
            "internal error: {}: the recorded relocation scan differs from a new one",
            object.name
        ));
    }
    (needs, undefined, reloc_errors)
}

/// The end of step 4: the objects' scans (`per_file`) in file order: their requests replayed
/// into one [`Needs`], their undefined references, their errors, and in incremental mode
/// (`slotted`) their records for the state.
fn replay_in_file_order(
    res: &Resolution,
    per_file: Vec<ObjectScan>,
    slotted: bool,
) -> (Needs, Vec<Undefined>, Vec<String>, Vec<ScanRecord>) {
    let mut needs = Needs::default();
    let mut undefined = Vec::new();
    let mut reloc_errors = Vec::new();
    let mut scans = Vec::with_capacity(if slotted { res.objects.len() } else { 0 });
    for (mut recorder, file_undefined, file_errors) in per_file {
        scans.extend(recorder.record.take());
        recorder.replay(&mut needs);
        undefined.extend(file_undefined);
        reloc_errors.extend(file_errors);
    }
    // Copy-relocated symbols by name, not by which object referred to them first: an edit
    // that changes the first user leaves them (and .bss) as they were.
    needs
        .copies
        .sort_unstable_by(|a, b| res.symbols.get(*a).name.cmp(res.symbols.get(*b).name));
    (needs, undefined, reloc_errors, scans)
}

/// A dynamic relocation in a read-only section (the first one found: `file`, `sec`,
/// symbol `sym`): with `-z text`, GNU ld's error; otherwise GNU ld's warnings, and the
/// output gets DT_TEXTREL (see `dynamic::tags`), so the loader makes its segments writable
/// while it relocates (weld wrote no DT_TEXTREL and the program crashed).
pub(super) fn text_relocations(ctx: &Context, file: FileId, sec: u32, sym: u32) -> Result<()> {
    let object = &ctx.res.objects[file.0 as usize];
    let section = String::from_utf8_lossy(
        object
            .obj
            .section_names
            .get(sec as usize)
            .copied()
            .unwrap_or_default(),
    );
    let symbol = ctx.display(ctx.target(file, sym as usize).0);
    let place = format!(
        "{}: relocation against `{symbol}' in read-only section `{section}'",
        object.name
    );
    if ctx.config.z.text_given {
        bail!("{place}\nweld: error: read-only segment has dynamic relocations");
    }
    crate::diag::warn(place);
    if matches!(ctx.kind, OutputKind::DynPie | OutputKind::StaticPie) {
        crate::diag::warn("creating DT_TEXTREL in a PIE");
    }
    Ok(())
}

/// The relocation scan of one object's live alloc sections (see `compute`, step 4): what
/// it asks of the output (GOT, PLT, copy and dynamic relocations), its references to
/// undefined symbols, and its errors. `slotted`: record the results by symbol index.
pub(crate) fn scan_object(
    ctx: &Context,
    file: FileId,
    live: &[bool],
    eh_records: &HashMap<(FileId, u32), Vec<Record>>,
    slotted: bool,
) -> (ScanRecorder, Vec<Undefined>, Vec<String>) {
    let mut scan = ObjectScanner {
        ctx,
        file,
        object: &ctx.res.objects[file.0 as usize],
        needs: ScanRecorder::new(slotted),
        undefined: Vec::new(),
        reloc_errors: Vec::new(),
    };
    for (sec, _) in live.iter().enumerate().filter(|(_, &l)| l) {
        scan.section(sec, eh_records);
    }
    scan.finish()
}

/// The scan of one object ([`scan_object`]) while it runs: the results so far.
struct ObjectScanner<'a> {
    ctx: &'a Context<'a>,
    file: FileId,
    object: &'a LoadedObject,
    needs: ScanRecorder,
    undefined: Vec<Undefined>,
    reloc_errors: Vec<String>,
}

/// A relocation the scan looks into: where it applies, what it computes, and what it refers
/// to.
struct Relocation {
    sec: usize,
    /// The section is writable (a dynamic relocation there is no text relocation).
    writable: bool,
    offset: u64,
    r_type: u32,
    r_sym: u32,
    expr: Expr,
    symref: SymRef,
    target: Target,
    preemptible: bool,
    is_func: bool,
}

impl ObjectScanner<'_> {
    /// The relocations of the live section `sec`, if it is alloc; in an `.eh_frame` section
    /// (with records in `eh_records`), only those of kept records.
    fn section(&mut self, sec: usize, eh_records: &HashMap<(FileId, u32), Vec<Record>>) {
        let object = self.object;
        let flags = object.obj.shdrs[sec].sh_flags.get(LE);
        if flags & u64::from(elf::SHF_ALLOC) == 0 {
            return;
        }
        let writable = flags & u64::from(elf::SHF_WRITE) != 0;
        let records = eh_records.get(&(self.file, sec as u32));
        let mut prev_expr = Expr::None;
        let mut prev_relaxed = false;
        for r in object.obj.relocs[sec].iter() {
            if let Some(records) = records {
                let rec = eh_frame::record_at(records, r.r_offset.get(LE));
                if rec.is_none_or(|rec| rec.out_offset.is_none()) {
                    continue;
                }
            }
            let r_type = r.r_type(LE, false);
            let expr = A::classify(r_type);
            // The __tls_get_addr call after a general or local dynamic TLS sequence is
            // rewritten away when the sequence is relaxed.
            let follows_tls_call = prev_relaxed && matches!(prev_expr, Expr::TlsGd | Expr::TlsLd);
            prev_expr = expr;
            prev_relaxed = false;
            if expr == Expr::None || follows_tls_call {
                continue;
            }
            prev_relaxed = self.relocation(sec, writable, r, r_type, expr);
        }
    }

    /// The relocation `r` (of type `r_type`, computing `expr`, not `Expr::None`) in section
    /// `sec`: a reference to an undefined symbol is noted; otherwise what it asks of the
    /// output, unless it is a GOT load that can use the address instead. Returns whether it
    /// starts a TLS sequence that is relaxed (see [`ObjectScanner::request`]).
    #[inline]
    fn relocation(
        &mut self,
        sec: usize,
        writable: bool,
        r: &Rela,
        r_type: u32,
        expr: Expr,
    ) -> bool {
        let (ctx, object) = (self.ctx, self.object);
        let r_sym = r.r_sym(LE, false);
        if r_sym as usize >= object.obj.symbols.len() {
            self.past_symbol_table(sec, r.r_offset.get(LE), r_sym);
            return false;
        }
        let (symref, target, st_type) = ctx.target(self.file, r_sym as usize);
        if let Target::Undefined = target {
            if let SymRef::Global(id) = symref {
                self.refers_to_undefined(id, r_sym, sec, r.r_offset.get(LE));
            }
            return false;
        }
        let preemptible = ctx.preemptible(ctx.kind, symref);
        let is_func = matches!(st_type, elf::STT_FUNC | elf::STT_GNU_IFUNC);
        if let (SymRef::Global(id), Target::Shared(_)) = (symref, target) {
            self.needs.use_shared(id, r_sym);
        }
        if st_type == elf::STT_GNU_IFUNC && !preemptible {
            self.needs.add_iplt(symref, r_sym);
        }
        // `--no-relax`: GOT loads stay GOT loads (TLS models are still relaxed, as GNU
        // ld relaxes them).
        if !ctx.config.no_relax
            && relaxable_got_load(
                preemptible,
                r_type,
                target,
                st_type,
                object.obj.section_data(sec),
                r.r_offset.get(LE),
            )
        {
            return false;
        }
        self.request(Relocation {
            sec,
            writable,
            offset: r.r_offset.get(LE),
            r_type,
            r_sym,
            expr,
            symref,
            target,
            preemptible,
            is_func,
        })
    }

    /// What the relocation `s` asks of the output, by what it computes and what it refers
    /// to: a GOT entry, a PLT entry, a canonical PLT entry or copy relocation, a dynamic
    /// relocation (symbolic or relative), nothing; or GNU ld's error where the output cannot
    /// have it. Returns whether it starts a general or local dynamic TLS sequence that is
    /// relaxed (an executable's), whose `__tls_get_addr` call is then no call.
    #[inline]
    fn request(&mut self, s: Relocation) -> bool {
        let Relocation {
            sec,
            writable,
            offset,
            r_type,
            r_sym,
            expr,
            symref,
            target,
            preemptible,
            is_func,
        } = s;
        let (kind, config, file) = (self.ctx.kind, self.ctx.config, self.file);
        let needs = &mut self.needs;
        let mut relaxed = false;
        let tls_relaxed = kind.is_executable() && !preemptible;
        match expr {
            Expr::GotPc | Expr::GotFromBase => needs.add_got(symref, GotKind::Address, r_sym),
            Expr::GotTpOffPc
                if !(tls_relaxed
                    && A::can_relax_ie_to_le(
                        self.object.obj.section_data(sec),
                        offset as usize,
                    )) =>
            {
                needs.add_got(symref, GotKind::TpOff, r_sym);
            }
            Expr::TlsGd => {
                if kind.is_executable() {
                    relaxed = true;
                    if preemptible {
                        needs.add_got(symref, GotKind::TpOff, r_sym);
                        // GD -> IE
                    }
                } else {
                    needs.add_got(symref, GotKind::TlsGd, r_sym);
                }
            }
            Expr::TlsLd => {
                if kind.is_executable() {
                    relaxed = true;
                } else {
                    needs.add_got(SymRef::Local(FileId(u32::MAX), 0), GotKind::TlsLd, u32::MAX);
                }
            }
            Expr::TlsDesc => {
                if !kind.is_executable() {
                    needs.add_got(symref, GotKind::TlsDesc, r_sym);
                } else if preemptible {
                    needs.add_got(symref, GotKind::TpOff, r_sym);
                    // TLSDESC -> IE
                }
            }
            Expr::TpOff if kind == OutputKind::Shared => {
                let problem = not_position_independent(true);
                self.error(sec, offset, r_type, r_sym, "", &problem);
            }
            // PLTOFF64: the large code model's call, `L - GOT`.
            Expr::PltPc | Expr::PltFromGotBase if preemptible => {
                if let SymRef::Global(id) = symref {
                    needs.add_plt(id, r_sym);
                }
            }
            // An executable's undefined weak symbol: 0 where it is referred to
            // directly (GOT and PLT references import it, and so does a PIE's
            // writable pointer, as GNU ld writes a word relocation against it there).
            Expr::AbsWord
                if preemptible
                    && kind == OutputKind::DynPie
                    && matches!(target, Target::UndefWeak)
                    && (writable || !config.z.text) =>
            {
                needs.symbolic(symref, r_sym, (!writable).then_some((file, sec as u32)));
            }
            Expr::AbsWord | Expr::Abs | Expr::Pc
                if preemptible && kind.is_executable() && matches!(target, Target::UndefWeak) => {}
            Expr::AbsWord if preemptible => {
                if writable || !config.z.text {
                    needs.symbolic(symref, r_sym, (!writable).then_some((file, sec as u32)));
                } else if let (true, SymRef::Global(id)) = (kind.is_executable(), symref) {
                    needs.add_canonical(id, is_func, r_sym);
                } else {
                    let problem =
                        "in read-only section; recompile with -fPIC or link with -z notext";
                    self.error(sec, offset, r_type, r_sym, "", problem);
                }
            }
            Expr::AbsWord if kind.is_pic() && relocatable(target) => {
                if !writable {
                    needs.textrel.get_or_insert((file, sec as u32, r_sym));
                }
                if packs_relative(config, self.object, sec, offset) {
                    needs.relr.push((file, sec as u32, offset));
                } else {
                    needs.n_relative += 1;
                }
            }
            Expr::Abs | Expr::Pc if preemptible => match (kind.is_executable(), symref) {
                (true, SymRef::Global(id)) => needs.add_canonical(id, is_func, r_sym),
                _ => {
                    let problem = not_position_independent(true);
                    self.error(sec, offset, r_type, r_sym, "symbol ", &problem);
                }
            },
            Expr::Abs if kind.is_pic() && relocatable(target) => {
                let problem = not_position_independent(kind == OutputKind::Shared);
                self.error(sec, offset, r_type, r_sym, "", &problem);
            }
            _ => {}
        }
        relaxed
    }

    /// A reference to the undefined global `id` (symbol `r_sym`) at `offset` in `sec`.
    fn refers_to_undefined(&mut self, id: SymbolId, r_sym: u32, sec: usize, offset: u64) {
        self.undefined.push(Undefined {
            symbol: id,
            file: self.file,
            sec: sec as u32,
            offset,
        });
        if let Some(record) = &mut self.needs.record {
            record.undefined.push((r_sym, sec as u32, offset));
        }
    }

    /// `file:(section+offset)`: where in the object a relocation applies, for an error.
    fn place(&self, sec: usize, offset: u64) -> String {
        format!(
            "{}:({}+{offset:#x})",
            self.object.name,
            String::from_utf8_lossy(self.object.obj.section_names[sec])
        )
    }

    /// The error for a relocation at `offset` in `sec` whose symbol `r_sym` is past the
    /// symbol table.
    #[cold]
    fn past_symbol_table(&mut self, sec: usize, offset: u64, r_sym: u32) {
        let error = format!(
            "{}: relocation refers to symbol {r_sym}, past the symbol table ({} symbols)",
            self.place(sec, offset),
            self.object.obj.symbols.len()
        );
        self.reloc_errors.push(error);
    }

    /// GNU ld's error for the relocation of type `r_type` at `offset` in `sec`, against symbol
    /// `r_sym`: `file:(section+offset): relocation TYPE against {what}SYMBOL {problem}`. It
    /// takes numbers and looks the symbol up again: a `SymRef` argument goes by reference,
    /// which keeps the scanned relocation in memory (2.3M more instructions in the self-link).
    #[cold]
    fn error(
        &mut self,
        sec: usize,
        offset: u64,
        r_type: u32,
        r_sym: u32,
        what: &str,
        problem: &str,
    ) {
        let symref = self.ctx.target(self.file, r_sym as usize).0;
        let error = format!(
            "{}: relocation {} against {what}{} {problem}",
            self.place(sec, offset),
            A::reloc_name(r_type),
            self.ctx.display(symref)
        );
        self.reloc_errors.push(error);
    }

    /// The results; an incremental record gets the dynamic relocation counts.
    fn finish(mut self) -> (ScanRecorder, Vec<Undefined>, Vec<String>) {
        if let Some(record) = &mut self.needs.record {
            record.n_relative = self.needs.n_relative;
            record.n_symbolic = self.needs.n_symbolic;
        }
        (self.needs, self.undefined, self.reloc_errors)
    }
}

/// The end of GNU ld's error for a relocation that a position-independent output cannot
/// have: `cannot be used when making a shared object; recompile with -fPIC` (`shared`), or
/// the same for a PIE.
fn not_position_independent(shared: bool) -> String {
    let (output, flag) = if shared {
        ("shared", "PIC")
    } else {
        ("PIE", "PIE")
    };
    format!("cannot be used when making a {output} object; recompile with -f{flag}")
}

/// Whether an input section is content at all (not a table the linker consumes): what its
/// header and name say (`ObjectFile::by_header`, found while parsing), unless its COMDAT
/// group lost or debug sections are stripped.
pub(crate) fn is_content(obj: &LoadedObject, sec: usize, config: &Config) -> bool {
    if !obj.obj.by_header[sec] || obj.comdat_discarded[sec] {
        return false;
    }
    if config.strip_debug || config.strip_all {
        let name = obj.obj.section_names[sec];
        let flags = obj.obj.shdrs[sec].sh_flags.get(LE);
        if flags & u64::from(elf::SHF_ALLOC) == 0
            && (name.starts_with(b".debug") || name.starts_with(b".zdebug"))
        {
            return false;
        }
    }
    true
}

/// An object's content sections (by index) and its `.eh_frame` sections' records.
pub(crate) type FileContent = (Vec<bool>, Vec<(u32, Vec<Record>)>);

/// Which sections of an object are content (see [`is_content`]), and its `.eh_frame`
/// sections split into records.
pub(crate) fn content_of(object: &LoadedObject, config: &Config) -> Result<FileContent> {
    let mut c = vec![false; object.obj.shdrs.len()];
    let mut records = Vec::new();
    for (sec, keep) in c.iter_mut().enumerate() {
        *keep = is_content(object, sec, config);
        if *keep && is_eh_frame(object, sec) {
            let split = eh_frame::split(object.obj.section_data(sec), object.obj.relocs[sec])
                .map_err(|e| anyhow::anyhow!("{}: {e}", object.name))?;
            records.push((sec as u32, split));
        }
    }
    Ok((c, records))
}

/// Gives the records of an `.eh_frame` section their output offsets: every CIE, and each
/// FDE whose function `live` says is kept (`relocs`: the section's relocations).
pub(crate) fn keep_live_fdes(
    records: &mut [Record],
    relocs: &[Rela],
    live: impl Fn(&Rela) -> bool,
) {
    let mut out = 0u32;
    for record in records.iter_mut() {
        let keep = record.is_cie || {
            // The FDE's first relocation is its initial location.
            relocs[record.relocs.clone()]
                .iter()
                .find(|r| r.r_offset.get(LE) == u64::from(record.in_offset) + 8)
                .is_some_and(&live)
        };
        if keep {
            record.out_offset = Some(out);
            out += record.size;
        }
    }
}

/// One file's scan results, replayed into [`Needs`] in file order.
#[derive(Default)]
pub(crate) struct ScanRecorder {
    requests: Vec<Request>,
    used_shared: rustc_hash::FxHashSet<SymbolId>,
    dynsym_refs: rustc_hash::FxHashSet<SymbolId>,
    n_relative: u64,
    n_symbolic: u64,
    relr: Vec<(FileId, u32, u64)>,
    pub(crate) textrel: Option<(FileId, u32, u32)>,
    /// Incremental mode: the same, by symbol index, for the state.
    pub(crate) record: Option<ScanRecord>,
    /// Requests made already: a repeated one changes nothing.
    seen: rustc_hash::FxHashSet<Request>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Request {
    Got(SymRef, GotKind),
    Iplt(SymRef),
    Plt(SymbolId),
    Canonical(SymbolId, bool),
}

impl ScanRecorder {
    fn new(recording: bool) -> ScanRecorder {
        ScanRecorder {
            record: recording.then(ScanRecord::default),
            ..ScanRecorder::default()
        }
    }
    fn push(&mut self, request: Request, sym: u32) {
        if !self.seen.insert(request) {
            return;
        }
        if let Some(record) = &mut self.record {
            let (kind, arg) = match request {
                Request::Got(_, kind) => (0, kind as u8),
                Request::Iplt(_) => (1, 0),
                Request::Plt(_) => (2, 0),
                Request::Canonical(_, is_func) => (3, u8::from(is_func)),
            };
            record.requests.push((kind, sym, arg));
        }
        self.requests.push(request);
    }
    fn add_got(&mut self, symref: SymRef, kind: GotKind, sym: u32) {
        self.push(Request::Got(symref, kind), sym);
    }
    fn add_iplt(&mut self, symref: SymRef, sym: u32) {
        self.push(Request::Iplt(symref), sym);
    }
    fn add_plt(&mut self, id: SymbolId, sym: u32) {
        self.push(Request::Plt(id), sym);
    }
    fn add_canonical(&mut self, id: SymbolId, is_func: bool, sym: u32) {
        self.push(Request::Canonical(id, is_func), sym);
    }
    fn use_shared(&mut self, id: SymbolId, sym: u32) {
        if self.used_shared.insert(id) {
            if let Some(record) = &mut self.record {
                record.used_shared.push(sym);
            }
        }
    }
    /// A symbolic dynamic relocation against `symref` (symbol index `sym`); `read_only`:
    /// the (file, section) it applies in, if that is read-only (DT_TEXTREL).
    fn symbolic(&mut self, symref: SymRef, sym: u32, read_only: Option<(FileId, u32)>) {
        self.n_symbolic += 1;
        if let SymRef::Global(id) = symref {
            self.dynsym_ref(id, sym);
        }
        if let Some((file, sec)) = read_only {
            self.textrel.get_or_insert((file, sec, sym));
        }
    }
    fn dynsym_ref(&mut self, id: SymbolId, sym: u32) {
        if self.dynsym_refs.insert(id) {
            if let Some(record) = &mut self.record {
                record.dynsym_refs.push(sym);
            }
        }
    }

    /// The results a recorded scan of `file` stands for, and its undefined references.
    fn from_record(
        record: &ScanRecord,
        object: &LoadedObject,
        file: FileId,
    ) -> (ScanRecorder, Vec<Undefined>) {
        let symref = |sym: u32| {
            if sym == u32::MAX {
                return SymRef::Local(FileId(u32::MAX), 0);
            }
            match object.global_id(sym as usize) {
                Some(id) => SymRef::Global(id),
                None => SymRef::Local(file, sym),
            }
        };
        let global = |sym: u32| match symref(sym) {
            SymRef::Global(id) => Some(id),
            SymRef::Local(..) => None,
        };
        let mut out = ScanRecorder::default();
        for &(kind, sym, arg) in &record.requests {
            let request = match kind {
                0 => Request::Got(symref(sym), GotKind::from_u8(arg)),
                1 => Request::Iplt(symref(sym)),
                2 => match global(sym) {
                    Some(id) => Request::Plt(id),
                    None => continue,
                },
                _ => match global(sym) {
                    Some(id) => Request::Canonical(id, arg != 0),
                    None => continue,
                },
            };
            out.requests.push(request);
        }
        out.used_shared = record
            .used_shared
            .iter()
            .filter_map(|&s| global(s))
            .collect();
        out.dynsym_refs = record
            .dynsym_refs
            .iter()
            .filter_map(|&s| global(s))
            .collect();
        out.n_relative = record.n_relative;
        out.n_symbolic = record.n_symbolic;
        let undefined = record
            .undefined
            .iter()
            .filter_map(|&(sym, sec, offset)| {
                Some(Undefined {
                    symbol: global(sym)?,
                    file,
                    sec,
                    offset,
                })
            })
            .collect();
        out.record = Some(record.clone());
        (out, undefined)
    }

    fn replay(self, needs: &mut Needs) {
        for request in self.requests {
            match request {
                Request::Got(symref, kind) => needs.add_got(symref, kind),
                Request::Iplt(symref) => needs.add_iplt(symref),
                Request::Plt(id) => needs.add_plt(id),
                Request::Canonical(id, is_func) => needs.add_canonical(id, is_func),
            }
        }
        needs.used_shared.extend(self.used_shared);
        needs.dynsym_refs.extend(self.dynsym_refs);
        needs.n_relative += self.n_relative;
        needs.n_symbolic += self.n_symbolic;
        needs.relr.extend(self.relr);
        needs.textrel = needs.textrel.or(self.textrel);
    }
}

/// What the relocation scan of a reference to a global symbol depends on, beyond the
/// referring object's own bytes: the kind of definition, its symbol type, and whether it
/// is preemptible. An unchanged object whose symbols all keep their class scans the same.
pub fn scan_class(ctx: &Context, id: SymbolId) -> u8 {
    let (variant, st_type) = match ctx.res.symbols.get(id).def {
        Def::Defined { file, sym, .. } => match ctx.res.defined(id) {
            Some((at, _)) => (
                u8::from(at.shndx() == u32::from(elf::SHN_ABS)),
                at.st_type(),
            ),
            None => {
                let obj = &ctx.res.objects[file.0 as usize].obj;
                let abs = obj.symbol_shndx(sym as usize) == u32::from(elf::SHN_ABS);
                (u8::from(abs), obj.symbols[sym as usize].st_type())
            }
        },
        Def::Common { .. } => (2, elf::STT_OBJECT),
        Def::Synthetic => (3, 0),
        Def::Shared { dso, index } => (
            4,
            ctx.res.dsos[dso as usize].dso.defined[index as usize].st_info & 0xf,
        ),
        Def::Undefined => (5, 0),
    };
    let preemptible = ctx.preemptible(ctx.kind, SymRef::Global(id));
    variant | (st_type & 0xf) << 3 | u8::from(preemptible) << 7
}

impl Needs {
    pub fn add_got(&mut self, symref: SymRef, kind: GotKind) {
        // One probe: the table of a big program's GOT does not fit in the cache.
        let std::collections::hash_map::Entry::Vacant(e) = self.got_index.entry((symref, kind))
        else {
            return;
        };
        e.insert(self.got_slots);
        self.got_entries.push((symref, kind));
        self.got_slot.push(self.got_slots);
        self.got_slots += match kind {
            GotKind::Address | GotKind::TpOff => 1,
            GotKind::TlsGd | GotKind::TlsLd | GotKind::TlsDesc => 2,
        };
    }
    pub fn add_iplt(&mut self, symref: SymRef) {
        if !self.iplt_index.contains_key(&symref) {
            self.iplt_index
                .insert(symref, self.iplt_entries.len() as u32);
            self.iplt_entries.push(symref);
        }
    }
    pub fn add_plt(&mut self, id: SymbolId) {
        if !self.plt_index.contains_key(&id) {
            self.plt_index.insert(id, self.plt_entries.len() as u32);
            self.plt_entries.push(id);
        }
    }
    /// Puts the GOT, PLT and IPLT entries in the order `order` records (by the symbol keys
    /// `key` gives); entries it does not name follow in scan order. Returns the new order
    /// (what [`Needs::order`] would give).
    pub fn reorder(
        &mut self,
        key: impl Fn(SymRef) -> u64 + Sync,
        order: &crate::state::NeedsOrder,
    ) -> crate::state::NeedsOrder {
        fn rank<K: std::hash::Hash + Eq + Copy>(recorded: &[K], keys: &[K]) -> Vec<usize> {
            let at: HashMap<K, usize> = recorded.iter().enumerate().map(|(i, &k)| (k, i)).collect();
            keys.iter()
                .map(|k| at.get(k).copied().unwrap_or(usize::MAX))
                .collect()
        }
        fn sorted<T: Copy>(items: &[T], ranks: &[usize]) -> Vec<T> {
            let mut idx: Vec<usize> = (0..items.len()).collect();
            idx.sort_by_key(|&i| (ranks[i], i));
            idx.into_iter().map(|i| items[i]).collect()
        }
        // GOT entries in their recorded slots, recorded entries unused now as holes; new
        // entries follow in scan order.
        let keys: Vec<u64> = self.got_entries.par_iter().map(|&(s, _)| key(s)).collect();
        let got_keys = || {
            self.got_entries
                .iter()
                .zip(&keys)
                .map(|(&(_, kind), &key)| (key, kind as u8))
        };
        let same_got = self.got_holes.is_empty()
            && got_keys().len() == order.got.len()
            && got_keys().eq(order.got.iter().copied());
        let mut new_order = crate::state::NeedsOrder::default();
        if same_got {
            // The usual case: the scan asked for the recorded entries, in their order.
            new_order.got = order.got.clone();
        } else {
            new_order.got = self.reorder_got(keys, order);
        }
        let plt_keys: Vec<u64> = self
            .plt_entries
            .iter()
            .map(|&id| key(SymRef::Global(id)))
            .collect();
        let plt = sorted(&self.plt_entries, &rank(&order.plt, &plt_keys));
        self.plt_entries.clear();
        self.plt_index.clear();
        for id in plt {
            self.add_plt(id);
        }
        let iplt_keys: Vec<u64> = self.iplt_entries.iter().map(|&s| key(s)).collect();
        let iplt = sorted(&self.iplt_entries, &rank(&order.iplt, &iplt_keys));
        self.iplt_entries.clear();
        self.iplt_index.clear();
        for s in iplt {
            self.add_iplt(s);
        }
        new_order.plt = self
            .plt_entries
            .iter()
            .map(|&id| key(SymRef::Global(id)))
            .collect();
        new_order.iplt = self.iplt_entries.iter().map(|&s| key(s)).collect();
        new_order
    }

    /// The GOT part of [`Needs::reorder`]; `keys` are the entries' keys. Returns the GOT's
    /// order.
    fn reorder_got(&mut self, keys: Vec<u64>, order: &crate::state::NeedsOrder) -> Vec<(u64, u8)> {
        let got = std::mem::take(&mut self.got_entries);
        self.got_slot.clear();
        // The entries and the recorded order, each sorted by key, joined in one pass (hash
        // maps of 15K entries cost ~3 ms): which entry fills each recorded slot.
        let mut by_key: Vec<((u64, u8), u32)> = got
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (&(_, kind), &key))| ((key, kind as u8), i as u32))
            .collect();
        by_key.sort_unstable();
        let mut recorded: Vec<((u64, u8), u32)> = order
            .got
            .iter()
            .enumerate()
            .map(|(slot, &k)| (k, slot as u32))
            .collect();
        recorded.sort_unstable();
        let mut fill = vec![u32::MAX; order.got.len()];
        let mut taken = vec![false; got.len()];
        let mut e = by_key.iter().peekable();
        for &(k, slot) in &recorded {
            while e.next_if(|x| x.0 < k).is_some() {}
            if let Some(&(_, i)) = e.next_if(|x| x.0 == k) {
                fill[slot as usize] = i;
                taken[i as usize] = true;
            }
        }
        self.got_index.clear();
        self.got_slots = 0;
        self.got_holes.clear();
        let mut new_order = Vec::with_capacity(order.got.len() + got.len());
        for (&(k, kind), &i) in order.got.iter().zip(&fill) {
            if i == u32::MAX {
                self.got_holes.push((self.got_slots, k, kind));
                self.got_slots += if kind <= GotKind::TpOff as u8 { 1 } else { 2 };
            } else {
                let (s, gk) = got[i as usize];
                self.add_got(s, gk);
            }
            new_order.push((k, kind));
        }
        for (i, &(s, kind)) in got.iter().enumerate() {
            if !taken[i] {
                self.add_got(s, kind);
                new_order.push((keys[i], kind as u8));
            }
        }
        new_order
    }

    /// The order of the entries, for the state.
    pub fn order(&self, key: impl Fn(SymRef) -> u64 + Sync) -> crate::state::NeedsOrder {
        crate::state::NeedsOrder {
            got: self.got_order(&key),
            plt: self
                .plt_entries
                .iter()
                .map(|&id| key(SymRef::Global(id)))
                .collect(),
            iplt: self.iplt_entries.iter().map(|&s| key(s)).collect(),
        }
    }

    /// GOT entries and holes by slot, as (key, kind).
    fn got_order(&self, key: &(impl Fn(SymRef) -> u64 + Sync)) -> Vec<(u64, u8)> {
        let mut got: Vec<(u32, (u64, u8))> = self
            .got_entries
            .par_iter()
            .zip(&self.got_slot)
            .map(|(&(s, k), &slot)| (slot, (key(s), k as u8)))
            .collect::<Vec<_>>()
            .into_iter()
            .chain(
                self.got_holes
                    .iter()
                    .map(|&(slot, k, kind)| (slot, (k, kind))),
            )
            .collect();
        got.sort_unstable_by_key(|e| e.0);
        got.into_iter().map(|e| e.1).collect()
    }

    /// An executable takes the address of a shared symbol directly: a function gets a
    /// canonical PLT entry, data a copy relocation.
    pub fn add_canonical(&mut self, id: SymbolId, is_func: bool) {
        if is_func {
            self.add_plt(id);
            self.canonical.insert(id);
        } else if !self.copies.contains(&id) {
            self.copies.push(id);
        }
    }
}
