//! weld: a GNU-ld-compatible ELF linker for x86_64 Linux.
//!
//! [`link`] is the pipeline, one call per phase:
//! `args -> input::search -> resolve -> layout -> write`.

pub(crate) mod arch;
pub mod args;
pub(crate) mod context;
pub(crate) mod crt;
pub(crate) mod diag;
pub(crate) mod dynamic;
pub(crate) mod eh_frame;
pub(crate) mod emit_relocs;
pub(crate) mod encode;
pub(crate) mod gc;
pub(crate) mod icf;
pub(crate) mod incremental;
pub(crate) mod input;
pub(crate) mod layout;
pub(crate) mod lto;
pub(crate) mod map;
pub(crate) mod merge;
pub(crate) mod output;
pub(crate) mod property;
pub(crate) mod relocatable;
pub(crate) mod relr;
pub(crate) mod reproduce;
pub(crate) mod resolve;
pub(crate) mod script;
pub(crate) mod source_location;
pub(crate) mod state;
pub(crate) mod symbols;
pub(crate) mod temp;
pub(crate) mod version_script;
pub(crate) mod write;

use anyhow::{bail, Context as _, Result};
use incremental::session::{Begin, Session};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

pub const VERSION_LINE: &str = concat!(
    "weld ",
    env!("CARGO_PKG_VERSION"),
    " (compatible with GNU linkers)"
);

/// The binary's entry: runs the link and turns an error into `weld: error: ...` and exit 1.
pub fn main_entry() -> ExitCode {
    tune_allocator();
    temp::install_signal_cleanup();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = args::parse(&args).and_then(run_config);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weld: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc's allocator grows each thread's heap by what is asked plus `M_TOP_PAD` (128 KiB
/// by default), with an `mprotect` call every time: a link of a debug Rust binary made
/// over 2000 of them, and then faulted the pages in one by one. Growing by 64 MiB at a
/// time costs address space only (untouched pages are never resident) and took about 5%
/// off the link of ripgrep's debug build.
///
/// glibc also gives each new thread a heap of its own, up to 8 per core; a link has its
/// thread pool (one thread per core) and the main thread, which mostly waits for the pool.
/// With one heap per core, the main thread shares one: on ripgrep's debug link peak memory
/// fell by 2 MiB (198 -> 196 MiB, three runs of 20-25 alternating rounds), with wall and
/// CPU time the same within the noise.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets tuning parameters of the allocator; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(2, 64) as libc::c_int);
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    run_config(args::parse(args)?)
}

fn run_config(mut config: args::Config) -> Result<()> {
    if config.help {
        print_help();
        return Ok(());
    }
    if config.print_version {
        println!("{VERSION_LINE}");
        if config.version_only || config.inputs.is_empty() {
            return Ok(());
        }
    }
    if config.inputs.is_empty() && config.verbose {
        print_verbose_defaults(&config);
        return Ok(());
    }
    if config.inputs.is_empty() {
        bail!("no input files");
    }
    // From here on a failed link removes its output, as GNU ld does; so what -o names is
    // looked at first (a symbolic link is followed; a device is never removed).
    let (output, node) = output::locate(&config.output)?;
    if node == output::OutputNode::Special && config.incremental == Some(true) && config.verbose {
        eprintln!(
            "weld: incremental: off: {} is not a regular file",
            output.display()
        );
    }
    config.output_arg = std::mem::replace(&mut config.output, output);
    config.output_node = node;
    for line in crt::add_c_runtime(&mut config) {
        if config.verbose {
            eprintln!("weld: {line}");
        }
    }
    let result = match config.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("cannot start threads")?
            .install(|| link(&config)),
        None => link(&config),
    };
    // As GNU ld: every warning is printed, then --fatal-warnings fails the link (here for
    // a warning printed after the output was written).
    let result = result.and_then(|()| fail_on_warnings(&config));
    if result.is_err() {
        // As GNU ld: a failed link leaves no output under the requested name.
        output::remove_failed(&config.output_arg, config.output_node);
    }
    result
}

/// `--time`: wall time per phase, printed to stderr as each phase ends.
pub(crate) struct PhaseTimer {
    on: bool,
    start: std::time::Instant,
    last: std::time::Instant,
}

impl PhaseTimer {
    pub(crate) fn new(on: bool) -> PhaseTimer {
        let now = std::time::Instant::now();
        PhaseTimer {
            on,
            start: now,
            last: now,
        }
    }

    /// Milliseconds since the last phase or step ended; starts the next one.
    fn lap(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        self.last = now;
        ms
    }

    pub(crate) fn done(&mut self, phase: &str) {
        if self.on {
            let ms = self.lap();
            eprintln!("weld: time: {phase:<10} {ms:8.2} ms");
        }
    }

    /// A step within a phase, printed indented under it (the phase's own line, printed
    /// later, still covers the whole phase).
    pub(crate) fn step(&mut self, step: &str) {
        if self.on {
            let ms = self.lap();
            eprintln!("weld: time:   {step:<14} {ms:8.2} ms");
        }
    }

    fn total(&self) {
        if self.on {
            eprintln!(
                "weld: time: {:<10} {:8.2} ms",
                "total",
                self.start.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
}

/// A link: the passes in order (mold's `elf_main` is the model). An incremental link has
/// an `incremental::session::Session`, asked at four points: before resolution (the no-op
/// relink and the lean update), at resolution (the recorded archive members; LTO turns it
/// off), after version assignment (the whole update) and for the full link's layout and
/// state. A one-shot link has none.
pub fn link(config: &args::Config) -> Result<()> {
    if config.relocatable {
        return link_relocatable_output(config);
    }
    if config.emit_relocs && config.strip_all {
        // (GNU ld fails too: "final link failed: invalid operation".)
        bail!("--emit-relocs cannot be used with -s (--strip-all): the kept relocations refer to .symtab");
    }
    let mut timer = PhaseTimer::new(config.time);
    // 1. Every input file, in link order, with groups and scripts expanded; what the
    //    scripts say about the output goes with the rest of the command line.
    let prior = incremental::session::read_prior(config);
    let known = prior.as_ref().map(state::Prior::known_inputs);
    let (specs, scripted) = find_inputs(config, known.as_ref())?;
    drop(known);
    let config = scripted.as_ref().unwrap_or(config);
    report_inputs(config, &specs)?;
    timer.done("search");
    // 2. Incremental: whether, and what changed since the recorded link; an update in
    //    place when only objects changed.
    let mut session = match Session::begin(config, &specs, prior, &mut timer)? {
        Begin::Done => {
            timer.total();
            return Ok(());
        }
        Begin::Link(session) => session,
    };
    // 3. All files and archive members that take part, and what every global symbol
    //    resolves to; LTO's objects replace its inputs.
    let _lto_cleanup = LtoCleanup;
    let (mut resolution, specs) = resolve_inputs(config, specs, session.as_mut(), &mut timer)?;
    trace_symbols(config, &resolution);
    write_why_extract(config, &resolution)?;
    timer.done("resolve");
    // Every input is mapped now. A full link rewrites the old output in place when no
    // process can be running it (see `output`); otherwise freeing its pages takes tens of
    // milliseconds: it is removed meanwhile (as GNU ld removes an ordinary file it is about
    // to replace), unless an update may still patch it.
    let reuse_output = output::in_place_is_safe(config.shared);
    let may_update = session.as_ref().is_some_and(Session::has_update);
    let old_output = (!may_update && !reuse_output).then(|| remove_in_background(&config.output));
    report_duplicates(config, &resolution)?;
    check_shared_library_needs(config, &resolution)?;
    // 4. Beyond this point no symbol changes its definition; which symbols are exported,
    //    and under which version.
    layout::define_synthetic_symbols(config, &mut resolution);
    let versions = version_script::assign(config, &resolution)?;
    if let Some(session) = session.as_mut() {
        if session.try_update(config, (&resolution, &versions), &specs, &mut timer)? {
            timer.total();
            return Ok(());
        }
    }
    // 5. Layout: what goes where (with room to grow in incremental mode).
    let slots = session
        .as_ref()
        .map_or(layout::Slots::Packed, |s| s.slots(config));
    let (mut layout, undefined) = layout::compute(config, &resolution, &versions, slots)?;
    timer.done("layout");
    if let Some(session) = session.as_mut() {
        session.check_layout(config, &layout)?;
    }
    // 6. What the layout must satisfy, and the reports on it.
    let ctx = crate::context::Context {
        config,
        res: &resolution,
        kind: layout.kind,
        versions: &versions,
    };
    layout::scripted::check_cross_refs(&ctx, &layout)?;
    report_undefined(config, &resolution, &undefined)?;
    write_map(config, &resolution, &layout)?;
    fail_on_warnings(config)?;
    // 7. The output, and the state for the next link.
    let recorded = match &session {
        Some(session) => session.recorded_inputs(config, &specs, &mut layout)?,
        None => None,
    };
    let old = (reuse_output, old_output);
    write_output(&ctx, &layout, &specs, recorded, old, &mut timer)
}

/// `-r`: a relocatable object from the inputs (`relocatable`).
fn link_relocatable_output(config: &args::Config) -> Result<()> {
    if config.map_file.is_some() || config.print_map {
        bail!("option -Map is not supported with -r: weld writes maps of final links");
    }
    if config.define_common {
        bail!("option -d is not supported with -r: common symbols stay common in a relocatable output");
    }
    let (specs, script) = input::search::find_inputs(config)?;
    if !config.section_starts.is_empty() {
        bail!("-Ttext, -Tdata, -Tbss and --section-start are not supported with -r");
    }
    if let Some(script) = script {
        bail!(
            "{}: a linker script that shapes the output is not supported with -r",
            script.file
        );
    }
    report_inputs(config, &specs)?;
    let resolution = resolve::resolve(config, &specs, resolve::IncrementalHooks::default())?;
    trace_symbols(config, &resolution);
    report_duplicates(config, &resolution)?;
    if config.cref {
        print!("{}", map::cross_references(&resolution, config.demangle));
    }
    let bytes = relocatable::link_relocatable(config, &resolution)?;
    fail_on_warnings(config)?;
    output::write_whole(&config.output, config.output_node, &bytes)
}

/// The inputs in link order, and the command line with the scripts' settings if scripts
/// (or `-Ttext`-like options, which act on the default script) shape the output;
/// `--reproduce`'s tar is written now, before anything else can fail.
fn find_inputs(
    config: &args::Config,
    known: Option<&input::KnownInputs>,
) -> Result<(Vec<input::search::FileSpec>, Option<args::Config>)> {
    let (specs, mut script, scripts_read) = input::search::find_inputs_and_scripts(config, known)?;
    if let Some(tar) = &config.reproduce {
        write_reproduce(config, tar, &specs, &scripts_read)?;
    }
    if script.is_none() && !config.section_starts.is_empty() {
        script = Some(script::Script::default());
    }
    let scripted = match script {
        Some(script) => Some(config.with_script(script)?),
        None => None,
    };
    Ok((specs, scripted))
}

/// Resolution, with LTO: the plugin compiles what it claimed and the inputs are resolved
/// again with its objects instead (a full link, with no incremental state: see `lto`).
/// Returns the resolution and the inputs (LTO's added).
fn resolve_inputs(
    config: &args::Config,
    mut specs: Vec<input::search::FileSpec>,
    mut session: Option<&mut Session>,
    timer: &mut PhaseTimer,
) -> Result<(resolve::Resolution, Vec<input::search::FileSpec>)> {
    let members = session.as_ref().and_then(|s| s.members());
    lto::configure(config);
    let hooks = resolve::IncrementalHooks {
        members: members.as_ref(),
        armap_hash: session.is_some().then_some(incremental::armap_hash),
    };
    let resolution = resolve::resolve(config, &specs, hooks)?;
    let Some(compiled) = lto::compile::compile(config, &resolution)? else {
        return Ok((resolution, specs));
    };
    timer.done("resolve (LTO: first pass)");
    if let Some(session) = session.as_mut() {
        session.lto_compiled(config)?;
    }
    let extra = input::search::find_plugin_outputs(
        config,
        &specs,
        &compiled.files,
        &compiled.libraries,
        &compiled.dirs,
    )?;
    specs.extend(extra);
    let resolution = resolve::resolve_after_lto(config, &specs, &resolution)?;
    Ok((resolution, specs))
}

/// Writes the laid-out output (over the old one when `reuse_output`, after the removal
/// `old_output` has finished otherwise) and, for an incremental link, the state (`inputs`:
/// the hashed inputs it records).
fn write_output(
    ctx: &crate::context::Context,
    layout: &layout::Layout,
    specs: &[input::search::FileSpec],
    inputs: Option<state::Inputs>,
    (reuse_output, old_output): (bool, Option<std::thread::JoinHandle<()>>),
    timer: &mut PhaseTimer,
) -> Result<()> {
    let config = ctx.config;
    if config.binary_output {
        // `--oformat=binary`: the ELF image is built in memory, then its loaded bytes.
        let mut elf = vec![0u8; layout.file_size as usize];
        write::write_into(config, ctx, layout, None, &mut elf, true)?;
        let image = write::binary_image(layout, &elf)?;
        timer.done("write");
        output::write_whole(&config.output, config.output_node, &image)?;
        timer.total();
        return Ok(());
    }
    let mut file = output::OutputFile::create(
        &config.output,
        config.output_node,
        layout.file_size,
        reuse_output,
    )?;
    pause_for_test("output");
    let zeroed = file.zeroed();
    let tail = write::write_into(config, ctx, layout, None, file.bytes(), zeroed)?;
    timer.done("write");
    if config.stats {
        let size = tail.offset as usize + tail.bytes.len();
        print_stats(specs, ctx.res, layout, size);
    }
    if let Some(handle) = old_output {
        let _ = handle.join();
    }
    file.finish(tail.offset, &tail.bytes, &config.output)?;
    timer.done("output");
    if let Some(inputs) = inputs {
        state::save(
            config,
            specs,
            &inputs,
            incremental::record(
                ctx,
                layout,
                &inputs.hashes,
                (&tail.symtab_files, &tail.symtab_globals),
            ),
        )?;
        timer.done("state");
    }
    timer.total();
    Ok(())
}

/// Runs the LTO plugin's cleanup (its temporary files) when the link ends, however it ends.
struct LtoCleanup;

impl Drop for LtoCleanup {
    fn drop(&mut self) {
        lto::cleanup();
    }
}

/// `--stats`: what the link handled.
fn print_stats(
    specs: &[input::search::FileSpec],
    res: &resolve::Resolution,
    layout: &layout::Layout,
    output_bytes: usize,
) {
    let n_sections: usize = res.objects.iter().map(|o| o.obj.shdrs.len()).sum();
    let n_live: usize = layout.live.iter().flatten().filter(|&&l| l).count();
    let n_relocs: usize = res
        .objects
        .iter()
        .flat_map(|o| o.obj.relocs.iter())
        .map(|r| r.len())
        .sum();
    eprintln!(
        "weld: stats: {} input files, {} objects (incl. archive members), {} shared objects",
        specs.len(),
        res.objects.len(),
        res.dsos.len()
    );
    eprintln!(
        "weld: stats: {} global symbols, {} input sections ({} kept), {} relocations",
        res.symbols.symbols.len(),
        n_sections,
        n_live,
        n_relocs
    );
    eprintln!(
        "weld: stats: {} GOT slots, {} PLT entries, {} copy relocations, {} dynamic symbols, {} output bytes",
        layout.needs.got_slots,
        layout.needs.plt_entries.len() + layout.needs.iplt_entries.len(),
        layout.needs.copies.len(),
        layout.dynamic.dynsyms.len(),
        output_bytes
    );
}

/// `--fatal-warnings`: the link fails, before any output is written, once a warning was
/// printed (GNU ld prints every warning, then fails).
fn fail_on_warnings(config: &args::Config) -> Result<()> {
    match diag::warnings() {
        n if n > 0 && config.fatal_warnings => {
            bail!("{n} warning(s), treated as errors (--fatal-warnings)")
        }
        _ => Ok(()),
    }
}

/// `-Map FILE`, `-M`: the link map (`map`); `--print-memory-usage`: the regions' table.
fn write_map(
    config: &args::Config,
    res: &resolve::Resolution,
    layout: &layout::Layout,
) -> Result<()> {
    if config.print_memory_usage {
        print!("{}", layout::memory_usage_table(&layout.memory_regions));
    }
    if config.map_file.is_none() && !config.print_map {
        // --cref without a map: the table on standard output, as GNU ld prints it.
        if config.cref {
            print!("{}", map::cross_references(res, config.demangle));
        }
        return Ok(());
    }
    let mut text = map::render(res, layout);
    if config.cref {
        text.push_str(&map::cross_references(res, config.demangle));
    }
    if config.print_map {
        print!("{text}");
    }
    if let Some(path) = &config.map_file {
        std::fs::write(path, &text)
            .with_context(|| format!("cannot write map file {}", path.display()))?;
    }
    Ok(())
}

/// `-t`/`--trace`: each input file on standard output, as GNU ld prints them (archives by
/// their own name); `--dependency-file=FILE`: a Makefile rule naming every file the link
/// reads, in lld's form (the output depends on each input; each input has an empty rule,
/// so that a deleted one does not stop make).
fn report_inputs(config: &args::Config, specs: &[input::search::FileSpec]) -> Result<()> {
    if config.trace {
        let mut out = std::io::stdout().lock();
        for spec in specs {
            let _ = writeln!(out, "{}", spec.path.display());
        }
    }
    let Some(depfile) = &config.dependency_file else {
        return Ok(());
    };
    // Make's escapes: a space or '#' takes a backslash, '$' doubles.
    let escape = |path: &Path| {
        let mut text = String::new();
        for c in path.to_string_lossy().chars() {
            match c {
                ' ' | '#' => text.extend(['\\', c]),
                '$' => text.push_str("$$"),
                c => text.push(c),
            }
        }
        text
    };
    let mut files: Vec<&Path> = specs.iter().map(|s| s.path.as_path()).collect();
    for script in config
        .version_scripts
        .iter()
        .chain(&config.dynamic_lists)
        .chain(&config.linker_scripts)
        .chain(&config.export_dynamic_symbol_lists)
    {
        files.push(script.as_path());
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(*f));
    let mut text = format!("{}:", escape(&config.output_arg));
    for file in &files {
        text.push_str(&format!(" \\\n  {}", escape(file)));
    }
    text.push('\n');
    for file in &files {
        text.push_str(&format!("\n{}:\n", escape(file)));
    }
    std::fs::write(depfile, text)
        .with_context(|| format!("cannot write dependency file {}", depfile.display()))
}

/// `-y SYMBOL`/`--trace-symbol=SYMBOL`: every file that defines or refers to it, in link
/// order, as GNU ld prints them.
/// `--reproduce=FILE.tar`: every file the link reads (inputs, scripts, version scripts and
/// dynamic lists) and a response file, written before the link starts.
fn write_reproduce(
    config: &args::Config,
    tar: &Path,
    specs: &[input::search::FileSpec],
    scripts: &[std::path::PathBuf],
) -> Result<()> {
    let mut files: Vec<std::path::PathBuf> = specs.iter().map(|s| s.path.clone()).collect();
    files.extend(scripts.iter().cloned());
    files.extend(config.linker_scripts.iter().cloned());
    files.extend(config.version_scripts.iter().cloned());
    files.extend(config.dynamic_lists.iter().cloned());
    files.extend(config.export_dynamic_symbol_lists.iter().cloned());
    let named: Vec<&Path> = config
        .inputs
        .iter()
        .filter_map(|i| match i {
            args::InputArg::File { path, .. } => Some(path.as_path()),
            _ => None,
        })
        .collect();
    reproduce::write(tar, &config.command_line, &named, &files)
}

/// `--why-extract=FILE`: lld's table (`reference`, `extracted`, `symbol`, tab-separated)
/// of every archive member the link extracted, in the order it did.
fn write_why_extract(config: &args::Config, res: &resolve::Resolution) -> Result<()> {
    let Some(path) = &config.why_extract else {
        return Ok(());
    };
    let mut text = String::from("reference\textracted\tsymbol\n");
    for (reference, extracted, symbol) in &res.why_extract {
        text.push_str(&format!("{reference}\t{extracted}\t{symbol}\n"));
    }
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn trace_symbols(config: &args::Config, res: &resolve::Resolution) {
    if config.trace_symbols.is_empty() {
        return;
    }
    use input::elf::LE;
    let traced = |name: &[u8]| config.trace_symbols.iter().any(|t| t.as_bytes() == name);
    for object in &res.objects {
        let obj = &object.obj;
        for sym in obj.symbols.iter().skip(obj.first_global) {
            let name = obj
                .strtab
                .get(sym.st_name.get(LE) as usize..)
                .and_then(|rest| rest.split(|&b| b == 0).next())
                .unwrap_or_default();
            if traced(name) {
                let what = if sym.st_shndx.get(LE) == object::elf::SHN_UNDEF {
                    "reference to"
                } else {
                    "definition of"
                };
                eprintln!(
                    "weld: {}: {what} {}",
                    object.name,
                    String::from_utf8_lossy(name)
                );
            }
        }
    }
    for loaded in &res.dsos {
        let dso = &loaded.dso;
        for sym in dso.defined.iter().filter(|s| traced(s.name)) {
            eprintln!(
                "weld: {}: definition of {}",
                dso.name,
                String::from_utf8_lossy(sym.name)
            );
        }
    }
}

/// Test support: `WELD_TEST_PAUSE_AT=<point>` holds the link at that point for a minute
/// (`output`: once the new output's temporary file exists), for a test to send a signal.
fn pause_for_test(point: &str) {
    if std::env::var("WELD_TEST_PAUSE_AT").is_ok_and(|v| v == point) {
        eprintln!("weld: paused at {point}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Removes `path` on another thread if it is a regular file; joined before the new output is
/// renamed into place.
fn remove_in_background(path: &Path) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            let _ = std::fs::remove_file(&path);
        }
    })
}

/// As GNU ld does for executables (`--no-allow-shlib-undefined`): every symbol a linked
/// shared library leaves undefined must be defined by this link or by the libraries it
/// depends on.
fn check_shared_library_needs(config: &args::Config, res: &resolve::Resolution) -> Result<()> {
    let kind = crate::context::OutputKind::of(config, res);
    if !kind.is_executable()
        || res.dsos.is_empty()
        || config.allow_shlib_undefined == Some(true)
        || matches!(
            config.unresolved_symbols,
            args::UnresolvedSymbols::IgnoreAll | args::UnresolvedSymbols::IgnoreInSharedLibs
        )
    {
        return Ok(());
    }
    let split = |list: &[String]| -> Vec<std::path::PathBuf> {
        list.iter()
            .flat_map(|l| l.split(':'))
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .collect()
    };
    let mut search = split(&config.rpath_link);
    search.extend(split(&config.rpath));
    if let Ok(p) = std::env::var("LD_LIBRARY_PATH") {
        search.extend(split(&[p]));
    }
    search.extend(config.library_paths.iter().cloned());
    for dir in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        search.push(dir.into());
    }
    let roots: Vec<&input::dso::SharedObject> = res.dsos.iter().map(|d| &d.dso).collect();
    let (names, missing) = input::dso::dependency_names(&roots, &search);
    let mut msgs = Vec::new();
    for d in &res.dsos {
        for &name in &d.dso.undefined {
            let defined_here = res
                .symbols
                .lookup(name)
                .is_some_and(|id| res.symbols.get(id).def != symbols::Def::Undefined);
            if !defined_here && !names.contains(name) {
                msgs.push(format!(
                    "undefined symbol: {}\n>>> referenced by {}",
                    symbols::demangle(name),
                    d.dso.name
                ));
            }
        }
    }
    if msgs.is_empty() {
        return Ok(());
    }
    if !missing.is_empty() {
        // Without every dependency we cannot know; say so instead of failing.
        diag::warn(format_args!(
            "{} (libraries not found: {})",
            msgs.join("\n"),
            missing.join(", ")
        ));
        return Ok(());
    }
    bail!("{}", msgs.join("\nweld: error: "))
}

/// Duplicate definitions are errors unless `-z muldefs`/`--allow-multiple-definition`
/// (then, as GNU ld, the first definition is used: resolution keeps it).
fn report_duplicates(config: &args::Config, res: &resolve::Resolution) -> Result<()> {
    if res.duplicates.is_empty() || config.allow_multiple_definition {
        return Ok(());
    }
    let mut msgs = Vec::new();
    for &(sym, first, second) in &res.duplicates {
        let name = res.symbols.get(sym).name;
        let mut msg = format!("duplicate symbol: {}", symbols::demangle(name));
        for file in [first, second] {
            let object = &res.objects[file.0 as usize];
            let obj = &object.obj;
            // Where the object defines it: its section and value, read on this error path.
            let place = (obj.first_global..obj.symbols.len())
                .find(|&i| obj.symbol_name(i).is_ok_and(|n| n == name))
                .map(|i| {
                    (
                        obj.symbol_shndx(i) as usize,
                        obj.symbols[i].st_value.get(input::elf::LE),
                    )
                })
                .filter(|&(sec, _)| sec > 0 && sec < obj.shdrs.len());
            msg.push('\n');
            msg.push_str(&match place {
                Some((sec, value)) => {
                    source_location::describe_place(&object.name, obj, sec, value, "defined at")
                }
                None => format!(">>> defined in {}", object.name),
            });
        }
        msgs.push(msg);
    }
    bail!("{}", msgs.join("\nweld: error: "))
}

/// One error per undefined symbol, with up to three references each; at most
/// `--error-limit` of them (0: all), as lld.
pub(crate) fn report_undefined(
    config: &args::Config,
    res: &resolve::Resolution,
    undefined: &[layout::Undefined],
) -> Result<()> {
    if undefined.is_empty()
        || !config.undefined_in_objects_are_errors() && !config.warn_unresolved_symbols
    {
        return Ok(());
    }
    let mut by_symbol: Vec<(symbols::SymbolId, Vec<&layout::Undefined>)> = Vec::new();
    for u in undefined {
        match by_symbol.iter_mut().find(|(s, _)| *s == u.symbol) {
            Some((_, refs)) => refs.push(u),
            None => by_symbol.push((u.symbol, vec![u])),
        }
    }
    let mut msgs = Vec::new();
    for (sym, refs) in &by_symbol {
        let mut msg = format!(
            "undefined symbol: {}",
            symbols::demangle(res.symbols.get(*sym).name)
        );
        for u in refs.iter().take(3) {
            let object = &res.objects[u.file.0 as usize];
            msg.push('\n');
            msg.push_str(&source_location::describe_place(
                &object.name,
                &object.obj,
                u.sec as usize,
                u.offset,
                "referenced by",
            ));
        }
        if refs.len() > 3 {
            msg.push_str(&format!("\n>>> referenced {} more times", refs.len() - 3));
        }
        msgs.push(msg);
    }
    if config.warn_unresolved_symbols {
        // As GNU ld: each one a warning, and the references resolve to 0.
        for msg in msgs {
            diag::warn(msg);
        }
        return Ok(());
    }
    if config.error_limit > 0 && msgs.len() > config.error_limit {
        msgs.truncate(config.error_limit);
        msgs.push(
            "too many errors emitted, stopping now (use --error-limit=0 to see all errors)".into(),
        );
    }
    bail!("{}", msgs.join("\nweld: error: "))
}

fn print_help() {
    println!(
        "Usage: weld [options] file...\n\
         A GNU-ld-compatible linker for x86_64 ELF.\n\n\
         Common options (GNU ld spellings; one or two dashes):\n  \
         -o FILE                 output file (default a.out)\n  \
         -L DIR, -l NAME         library search path and libraries\n  \
         -static, -pie, -no-pie, -static-pie\n  \
         --start-group ... --end-group, --whole-archive, --as-needed\n  \
         -e SYMBOL               entry point\n  \
         --gc-sections           drop unreferenced sections\n  \
         --eh-frame-hdr          create .eh_frame_hdr and PT_GNU_EH_FRAME\n  \
         --build-id[=STYLE]      add a build-id note\n  \
         --incremental           keep state for fast relinking\n  \
         --threads N             worker threads\n  \
         --version, -v           print the version\n\n\
         The README's option table lists every option and what weld does with it.\n\
         weld: supported targets: elf64-x86-64\n\
         weld: supported emulations: elf_x86_64"
    );
}

/// `--verbose` without inputs, as GNU ld: the version, the emulations, and the built-in
/// script, which here holds what weld's default layout takes from no script: the output
/// format and the library search directories (it reads back with `-T`).
fn print_verbose_defaults(config: &args::Config) {
    println!("{VERSION_LINE}");
    println!("  Supported emulations:\n   elf_x86_64");
    println!("using internal linker script:");
    println!("==================================================");
    println!("OUTPUT_FORMAT(\"elf64-x86-64\", \"elf64-x86-64\", \"elf64-x86-64\")");
    println!("OUTPUT_ARCH(i386:x86-64)");
    println!("ENTRY(_start)");
    let dirs: Vec<String> = input::search::DEFAULT_SEARCH_DIRS
        .iter()
        .map(|dir| format!("SEARCH_DIR(\"={dir}\");"))
        .collect();
    if !config.nostdlib {
        println!("{}", dirs.join(" "));
    }
    print!("{}", script::default_text(config.pie || config.shared));
    println!("==================================================");
}
