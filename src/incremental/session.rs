//! How an incremental link hooks into `link`: one [`Session`] per incremental link, asked
//! at four points. Before resolution, [`Session::begin`] takes the output's lock, plans
//! from the recorded state (nothing changed: done; inputs changed: an update) and tries
//! the lean update. Resolution reads the archive members the recorded link used
//! ([`Session::members`]); LTO turns the session off ([`Session::lto_compiled`]). After
//! version assignment, [`Session::try_update`] tries the whole update in place. A full link
//! then lays out with spare room ([`Session::slots`]), unless the layout cannot be kept
//! ([`Session::check_layout`]), and records the state with its output
//! ([`Session::recorded_inputs`]). A one-shot link has no session.

use crate::args::{self, Config};
use crate::input::search::FileSpec;
use crate::layout::{self, Layout};
use crate::output;
use crate::resolve;
use crate::state;
use crate::version_script;
use crate::write;
use crate::PhaseTimer;
use anyhow::{bail, Context as _, Result};
use rustc_hash::FxHashMap;

/// An incremental link in progress.
pub(crate) struct Session {
    /// Two incremental links of one output take turns: the state and the output are read,
    /// then replaced, as a unit.
    _lock: std::fs::File,
    /// The update planned from the recorded state, until it is tried.
    planned: Option<PlannedUpdate>,
    /// Whether this link records the state for the next one (a full link's layout may
    /// turn that off).
    recording: bool,
}

/// What [`Session::begin`] found.
pub(crate) enum Begin {
    /// The output is up to date (nothing changed, or the lean update patched it).
    Done,
    /// Link: incrementally (`Some`) or not.
    Link(Option<Session>),
}

impl Session {
    /// Whether the link is incremental, and if so what changed since the recorded link;
    /// the no-op relink and the lean update happen here.
    pub(crate) fn begin(
        config: &Config,
        specs: &[FileSpec],
        prior: Option<state::Prior>,
        timer: &mut PhaseTimer,
    ) -> Result<Begin> {
        if !incremental_mode(config)? {
            return Ok(Begin::Link(None));
        }
        let mut session = Session {
            _lock: state::lock(&config.output)?,
            planned: None,
            recording: true,
        };
        let prior = match prior {
            Some(prior) => prior.current(&config.output),
            None => state::Prior::read(&config.output),
        };
        match state::plan(config, specs, &prior) {
            state::Plan::Unchanged => {
                if config.verbose || config.stats {
                    eprintln!("weld: incremental: no input changed; output left as it is");
                }
                return Ok(Begin::Done);
            }
            state::Plan::Full(reason) => {
                if config.verbose || config.stats {
                    eprintln!("weld: incremental: full link: {reason}");
                }
            }
            state::Plan::Update {
                inputs,
                matched,
                state,
            } => session.planned = Some((inputs, matched, state)),
        }
        timer.done("plan");
        if let Some((inputs, matched, state)) = session.planned.as_mut() {
            if lean_update(config, specs, (inputs, matched), state, timer)? {
                return Ok(Begin::Done);
            }
        }
        Ok(Begin::Link(Some(session)))
    }

    /// Per input (by position), the archive members the recorded link used, for an update:
    /// resolution parses them up front.
    pub(crate) fn members(&self) -> Option<FxHashMap<u32, Vec<u32>>> {
        let (_, matched, state) = self.planned.as_ref()?;
        Some(update_members(state, matched))
    }

    /// LTO compiled code: the link is a full one and records no state.
    pub(crate) fn lto_compiled(&mut self, config: &Config) -> Result<()> {
        incremental_off(config, "for a link with LTO code")?;
        self.planned = None;
        self.recording = false;
        Ok(())
    }

    /// Whether an update of the old output may still be tried (it must not be removed).
    pub(crate) fn has_update(&self) -> bool {
        self.planned.is_some()
    }

    /// The whole update in place, if one is planned; false if it cannot be done (the
    /// reason with `--verbose`): then the full passes follow.
    pub(crate) fn try_update(
        &mut self,
        config: &Config,
        resolved: (&resolve::Resolution, &version_script::Versions),
        specs: &[FileSpec],
        timer: &mut PhaseTimer,
    ) -> Result<bool> {
        match self.planned.take() {
            Some(planned) => try_update_output(config, resolved, specs, planned, timer),
            None => Ok(false),
        }
    }

    /// How a full link lays out input sections: with room to grow when it records state.
    pub(crate) fn slots(&self, config: &Config) -> layout::Slots<'static> {
        if !self.recording {
            return layout::Slots::Packed;
        }
        layout::Slots::Fresh {
            spare_percent: config
                .incremental_spare
                .unwrap_or(args::DEFAULT_INCREMENTAL_SPARE),
        }
    }

    /// An output with text relocations is not kept for updates (the recorded scans do not
    /// say which objects need them; an update would lose DT_TEXTREL).
    pub(crate) fn check_layout(&mut self, config: &Config, layout: &Layout) -> Result<()> {
        if self.recording && layout.needs.textrel.is_some() {
            incremental_off(config, "for an output with text relocations")?;
            self.recording = false;
        }
        Ok(())
    }

    /// The hashed inputs the state records (None: no state is recorded); the layout's
    /// build-id is seeded from them, as an update's will be.
    pub(crate) fn recorded_inputs(
        &self,
        config: &Config,
        specs: &[FileSpec],
        layout: &mut Layout,
    ) -> Result<Option<state::Inputs>> {
        if !self.recording {
            return Ok(None);
        }
        let inputs = state::hash_inputs(specs)?;
        layout.build_id_seed = Some(super::build_id_seed(
            config,
            &inputs.hashes,
            &super::section_records(layout),
        ));
        Ok(Some(inputs))
    }
}

/// Whether this link keeps (or uses) incremental state: `--incremental`, or
/// `WELD_INCREMENTAL=1` without `--no-incremental`.
fn incremental_requested(config: &Config) -> bool {
    config
        .incremental
        .unwrap_or_else(|| std::env::var("WELD_INCREMENTAL").is_ok_and(|v| v == "1"))
        // No state next to /dev/null or a FIFO: such an output is written whole every time.
        && config.output_node == output::OutputNode::Regular
        // -y and the map report on every input, which only a full link reads; a warning
        // with --fatal-warnings must fail every link, not just the one that printed it.
        && config.trace_symbols.is_empty()
        && !config.fatal_warnings
        && config.map_file.is_none()
        && !config.print_map
        && !config.print_memory_usage
        && !config.binary_output
        && config.why_extract.is_none()
        // The relocations kept by --emit-relocs are written whole with the symbol table;
        // folding compares sections a later edit may change.
        && !config.emit_relocs
        && config.icf == args::Icf::None
        // A script's layout is laid out whole each time (see README, "Linker scripts").
        && config.script.is_none()
}

/// The state of the recorded link, read ahead of the input search (which takes the inputs
/// it had, unchanged, without opening them), if this link may be incremental.
pub(crate) fn read_prior(config: &Config) -> Option<state::Prior> {
    incremental_requested(config).then(|| state::Prior::read(&config.output))
}

/// Whether this link is incremental: asked for, and nothing it cannot keep up to date is
/// asked for too (each refusal says why, with `--verbose`, and removes the old state).
fn incremental_mode(config: &Config) -> Result<bool> {
    if let Some(script) = &config.script {
        if incremental_requested(&Config {
            script: None,
            ..config.clone()
        }) {
            let why = format!(
                "with a linker script that shapes the output ({})",
                script.file
            );
            incremental_off(config, &why)?;
        }
    }
    if !incremental_requested(config) {
        return Ok(false);
    }
    // Compressed debug sections are rewritten at the end of the file as a whole.
    if matches!(
        config.compress_debug_sections.as_deref(),
        Some("zlib" | "zlib-gabi" | "zstd")
    ) {
        incremental_off(config, "with --compress-debug-sections")?;
        return Ok(false);
    }
    // The updates patch `.rela.dyn` in place; `.relr.dyn` is encoded as a whole.
    if config.z.pack_relative_relocs {
        incremental_off(config, "with -z pack-relative-relocs")?;
        return Ok(false);
    }
    Ok(true)
}

/// Turns incremental mode off for this link (`why`, with `--verbose`): the state describes
/// an output this link replaces, so it is removed.
fn incremental_off(config: &Config, why: &str) -> Result<()> {
    if config.verbose || config.stats {
        eprintln!("weld: incremental: off {why}");
    }
    if let Some(removing) = state::invalidate(&config.output)? {
        let _ = removing.join();
    }
    Ok(())
}

/// The recorded output an update starts from: the inputs now, how they match the recorded
/// ones, and the state.
type PlannedUpdate = (state::Inputs, state::InputMatch, Box<state::State>);

/// An incremental update's new output, built but not written yet.
struct Prepared {
    layout: layout::Layout,
    plan: super::Update,
    main: memmap2::MmapMut,
    tail: write::Tail,
    remapped: super::Remapped,
}

/// Lays out an update of every object (see `incremental`) and builds its bytes. A
/// `layout::Fallback` error means: link from scratch.
fn prepare_update(
    config: &Config,
    resolution: &resolve::Resolution,
    versions: &version_script::Versions,
    (hashes, matched): (&[[u8; 32]], &state::InputMatch),
    old: state::State,
    timer: &mut PhaseTimer,
) -> Result<Prepared> {
    let mut steps = PhaseTimer::new(config.time);
    let mut remapped = super::remap(old, resolution, &matched.new_of_old);
    let changed = super::changed_objects(config, resolution, &remapped, &matched.changed, hashes)?;
    steps.step("changed");
    let recorded = super::recorded_layout(&mut remapped.state, &changed);
    let (mut layout, undefined) = layout::compute(
        config,
        resolution,
        versions,
        layout::Slots::Replay(&recorded),
    )?;
    crate::report_undefined(config, resolution, &undefined)?;
    steps.step("replay");
    let ctx = crate::context::Context {
        config,
        res: resolution,
        kind: layout.kind,
        versions,
    };
    let old_output = std::fs::File::open(&config.output)
        .with_context(|| format!("cannot open {}", config.output.display()))?;
    let plan = super::plan_update(
        config,
        &ctx,
        &layout,
        &remapped.state,
        changed,
        &remapped.removed,
        &old_output,
    )?;
    drop(old_output);
    steps.step("plan-update");
    timer.done("layout");
    layout.build_id_seed = Some(super::build_id_seed(
        config,
        hashes,
        &super::section_records(&layout),
    ));
    let (main, tail) = write::write_parts(config, &ctx, &layout, Some(&plan.selection))?;
    timer.done("write");
    Ok(Prepared {
        layout,
        plan,
        main,
        tail,
        remapped,
    })
}

/// An incremental update of the output (see `incremental`). A `layout::Fallback` error
/// means: link from scratch.
#[allow(clippy::too_many_arguments)]
fn update_output(
    config: &Config,
    resolution: &resolve::Resolution,
    versions: &version_script::Versions,
    specs: &[FileSpec],
    (inputs, matched): (&state::Inputs, &state::InputMatch),
    old: state::State,
    timer: &mut PhaseTimer,
) -> Result<()> {
    let hashes = &inputs.hashes;
    let Prepared {
        mut layout,
        plan,
        main,
        tail,
        remapped,
    } = prepare_update(config, resolution, versions, (hashes, matched), old, timer)?;
    let ctx = crate::context::Context {
        config,
        res: resolution,
        kind: layout.kind,
        versions,
    };
    let main = &main[..tail.offset as usize];
    let written = super::apply(config, layout.kind, (main, &tail), &plan.dirty)?;
    timer.done("output");
    if std::env::var("WELD_ORACLE").is_ok_and(|v| v == "1") {
        let full = write::write(config, &ctx, &layout, None)?;
        super::check_oracle(&config.output, &full)?;
    }
    if config.verbose || config.stats {
        let names: Vec<&str> = plan
            .changed
            .iter()
            .take(3)
            .map(|f| resolution.objects[f.0 as usize].name.as_str())
            .collect();
        let (added, removed) = (remapped.added.len(), remapped.removed.len());
        eprintln!(
            "weld: incremental: updated in place: {} of {} objects changed ({}{}){}, {} \
             sections of other objects relocated again, {} of {} bytes written; {} inputs \
             checked, {} read",
            plan.changed.len(),
            resolution.objects.len(),
            names.join(", "),
            if plan.changed.len() > 3 { ", ..." } else { "" },
            if added + removed > 0 {
                format!(" ({added} new, {removed} gone)")
            } else {
                String::new()
            },
            plan.rerelocated,
            written,
            tail.offset as usize + tail.bytes.len(),
            specs.len(),
            inputs.read
        );
    }
    if std::env::var("WELD_TEST_KILL_AT").is_ok_and(|v| v == "state") {
        std::process::abort(); // test support: killed after the patch, before the state
    }
    let record = super::updated_record(
        &ctx,
        &mut layout,
        remapped.state,
        plan,
        hashes,
        (&tail.symtab_files, &tail.symtab_globals),
    );
    state::save(config, specs, inputs, record)?;
    timer.done("state");
    Ok(())
}

/// Test support (`WELD_ORACLE=1`): the bytes the whole update would leave in the output,
/// from the same state and output; `None` where it falls back.
fn whole_update_bytes(
    config: &Config,
    specs: &[FileSpec],
    (inputs, matched): (&state::Inputs, &state::InputMatch),
    state: &state::State,
) -> Result<Option<Vec<u8>>> {
    let mut quiet = PhaseTimer::new(false);
    let members = update_members(state, matched);
    // Inputs the whole update cannot resolve (LTO code: no plugin is configured
    // yet) make the lean update fall back too, which the oracle holds it to.
    let hooks = resolve::IncrementalHooks {
        members: Some(&members),
        armap_hash: Some(super::armap_hash),
    };
    let Ok(mut resolution) = resolve::resolve(config, specs, hooks) else {
        return Ok(None);
    };
    layout::define_synthetic_symbols(config, &mut resolution);
    let versions = version_script::assign(config, &resolution)?;
    match prepare_update(
        config,
        &resolution,
        &versions,
        (&inputs.hashes, matched),
        state.clone(),
        &mut quiet,
    ) {
        Ok(p) => {
            // The old output with the whole update's ranges written over it.
            let mut bytes = std::fs::read(&config.output)
                .with_context(|| format!("cannot read {}", config.output.display()))?;
            let end = p.tail.offset as usize;
            bytes.resize(bytes.len().max(end), 0);
            for &(start, len) in &p.plan.dirty {
                let (start, stop) = (start as usize, ((start + len) as usize).min(end));
                if start < stop {
                    bytes[start..stop].copy_from_slice(&p.main[start..stop]);
                }
            }
            bytes.truncate(end);
            bytes.extend_from_slice(&p.tail.bytes);
            Ok(Some(bytes))
        }
        Err(e) if e.downcast_ref::<layout::Fallback>().is_some() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The lean update (see `lean`); `Ok(false)`: it does not apply (the reason is printed
/// under `--verbose`), `state` is as it was. With `WELD_ORACLE=1` its output must be the
/// whole update's, byte for byte.
fn lean_update(
    config: &Config,
    specs: &[FileSpec],
    (inputs, matched): (&state::Inputs, &state::InputMatch),
    state: &mut state::State,
    timer: &mut PhaseTimer,
) -> Result<bool> {
    let expected = if std::env::var("WELD_ORACLE").is_ok_and(|v| v == "1") {
        whole_update_bytes(config, specs, (inputs, matched), state)?
    } else {
        None
    };
    match super::lean::update(config, specs, inputs, matched, state, timer) {
        Ok(done) => {
            if config.verbose || config.stats {
                eprintln!(
                    "weld: incremental: updated in place, lean: {} of {} objects changed \
                     ({}{}), {} sections of other objects relocated again, {} of {} bytes \
                     written; {} inputs checked, {} read",
                    done.n_changed,
                    done.n_objects,
                    done.changed.join(", "),
                    if done.n_changed > 3 { ", ..." } else { "" },
                    done.rerelocated,
                    done.written,
                    done.size,
                    specs.len(),
                    inputs.read
                );
            }
            if std::env::var("WELD_ORACLE").is_ok_and(|v| v == "1") {
                let Some(expected) = expected else {
                    bail!("oracle: the lean update applied where the whole update falls back");
                };
                super::check_oracle(&config.output, &expected)
                    .context("oracle: the lean update differs from the whole update")?;
            }
            Ok(true)
        }
        Err(e) => fell_back(config, e, "no lean update"),
    }
}

/// An update's error: a `layout::Fallback` is `Ok(false)` (its reason printed after
/// `what` under `--verbose`); any other error stays one.
fn fell_back(config: &Config, e: anyhow::Error, what: &str) -> Result<bool> {
    let Some(reason) = e.downcast_ref::<layout::Fallback>() else {
        return Err(e);
    };
    if config.verbose || config.stats {
        eprintln!("weld: incremental: {what}: {reason}");
    }
    Ok(false)
}

/// Per input (by position), the archive members the recorded link used.
fn update_members(
    state: &state::State,
    matched: &state::InputMatch,
) -> rustc_hash::FxHashMap<u32, Vec<u32>> {
    let mut members: rustc_hash::FxHashMap<u32, Vec<u32>> = Default::default();
    for o in state.objects.iter().filter(|o| o.member != u32::MAX) {
        if let Some(&input) = matched.new_of_old.get(o.input as usize) {
            members.entry(input).or_default().push(o.member);
        }
    }
    members
}

/// An update of the recorded output in place (`update_output`); false if it cannot be done
/// (the reason with `--verbose`): then the full passes follow.
fn try_update_output(
    config: &Config,
    (resolution, versions): (&resolve::Resolution, &version_script::Versions),
    specs: &[FileSpec],
    (inputs, matched, old): PlannedUpdate,
    timer: &mut PhaseTimer,
) -> Result<bool> {
    match update_output(
        config,
        resolution,
        versions,
        specs,
        (&inputs, &matched),
        *old,
        timer,
    ) {
        Ok(()) => Ok(true),
        Err(e) => fell_back(config, e, "full link"),
    }
}
