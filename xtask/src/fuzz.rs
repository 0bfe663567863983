//! `cargo xtask fuzz [--time SECS] [--jobs N] [TARGET...]`: builds the libFuzzer targets
//! in `xtask/fuzz` (objects, archives, shared objects, scripts, response files, incremental
//! states) and runs each for SECS seconds (default 60) on N processes (default 1) sharing
//! one corpus, seeded from the fixtures. Stable Rust: the build passes the coverage flags
//! that `cargo fuzz build --sanitizer none` passes (rustc's `sancov-module` pass, inline
//! 8-bit counters, PC table, compare tracing) and `--cfg fuzzing`, with overflow checks and
//! debug assertions on. Fails if any target found a crash, leak or hang; the input that did
//! it is under `target/fuzz/artifacts/TARGET/` and replays with
//! `target/fuzz/build/x86_64-unknown-linux-gnu/release/TARGET FILE` (with the environment
//! printed at the start).
//!
//! Everything it makes is under `target/fuzz/`: the build, the seed objects, the corpus
//! (kept between runs, so a longer campaign continues where the last one stopped), the
//! artifacts and one log per process.

use crate::root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub const TARGETS: [&str; 6] = [
    "object",
    "archive",
    "shared_object",
    "script",
    "response_file",
    "state",
];

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Links one fuzz process makes before another takes over (see `run`).
const RUNS_PER_PROCESS: u64 = 8000;

/// The seed object every target links with: no libc, so links get past resolution; a bit
/// of everything the readers handle (TLS, data and function pointers, a weak reference,
/// a constructor, strings to merge, unwind tables).
const SEED_MAIN: &str = r#"
__thread int counter = 1;
static const char message[] = "seed object";
int shared_value = 42;
extern int maybe(void) __attribute__((weak));
static void (*hook)(void);
static void init(void) { counter += 1; }
__attribute__((section(".init_array"))) static void (*init_entry)(void) = init;
int use_everything(int x) {
    if (maybe) x += maybe();
    if (hook) hook();
    return x + counter + shared_value + message[x & 7];
}
void _start(void) {
    volatile int r = use_everything(3);
    (void)r;
    for (;;) {}
}
"#;

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut jobs = 1usize;
    let mut targets = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => seconds = number(it.next(), "--time")?,
            "--jobs" => jobs = number(it.next(), "--jobs")?.max(1) as usize,
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => {
                return Err(format!(
                    "usage: cargo xtask fuzz [--time SECS] [--jobs N] [{}]... (unknown {other:?})",
                    TARGETS.join("|")
                ))
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let dir = root().join("target/fuzz");
    build(&dir)?;
    let seeds = make_seeds(&dir)?;
    let work = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    println!(
        "fuzz: WELD_FUZZ_SEEDS={} WELD_FUZZ_WORK={}",
        seeds.display(),
        work.display()
    );
    let mut failed = Vec::new();
    let mut total_cpu = 0.0;
    for target in &targets {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        seed_corpus(target, &corpus, &seeds)?;
        let artifacts = dir.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let binary = dir.join("build").join(TRIPLE).join("release").join(target);
        let start = Instant::now();
        let cpu_before = children_cpu_seconds();
        let deadline = start + std::time::Duration::from_secs(seconds);
        let run_job = |job: usize| -> Result<(u64, Option<String>), String> {
            let log = logs.join(format!("{target}-{job}.log"));
            std::fs::File::create(&log).map_err(|e| e.to_string())?;
            let mut execs = 0;
            // weld maps its inputs for the life of the process (a one-shot linker), so a
            // fuzz process ends after RUNS_PER_PROCESS links and another one goes on from
            // the corpus on disk: tens of thousands of links in one process would exhaust
            // the kernel's mapping limit (vm.max_map_count) and fail in libFuzzer itself.
            loop {
                let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                if left == 0 {
                    return Ok((execs, None));
                }
                let log_file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .map_err(|e| e.to_string())?;
                let before = std::fs::metadata(&log).map_or(0, |m| m.len());
                let status = Command::new(&binary)
                    .arg(&corpus)
                    .arg(format!("-max_total_time={left}"))
                    .arg(format!("-runs={RUNS_PER_PROCESS}"))
                    .arg("-timeout=20")
                    .arg("-rss_limit_mb=4096")
                    .arg("-max_len=1048576")
                    .arg("-close_fd_mask=2")
                    .arg("-print_final_stats=1")
                    .arg(format!("-artifact_prefix={}/", artifacts.display()))
                    .env("WELD_FUZZ_SEEDS", &seeds)
                    .env("WELD_FUZZ_CORPUS", &corpus)
                    .env("WELD_FUZZ_WORK", &work)
                    .stdout(std::process::Stdio::null())
                    .stderr(log_file)
                    .status()
                    .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
                let text = std::fs::read(&log).unwrap_or_default();
                let this_run = String::from_utf8_lossy(&text[(before as usize).min(text.len())..])
                    .into_owned();
                execs += final_stat(&this_run, "stat::number_of_executed_units");
                if !status.success() {
                    return Ok((
                        execs,
                        Some(format!("{target} ({status}; log {})", log.display())),
                    ));
                }
            }
        };
        let results: Vec<Result<(u64, Option<String>), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..jobs)
                .map(|job| scope.spawn(move || run_job(job)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a fuzz job panicked".into()))
                })
                .collect()
        });
        let mut execs = 0u64;
        for result in results {
            let (n, failure) = result?;
            execs += n;
            failed.extend(failure);
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = children_cpu_seconds() - cpu_before;
        total_cpu += cpu;
        let corpus_size = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        println!(
            "fuzz: {target:<14} {execs:>9} runs, {wall:6.0} s wall x {jobs}, {cpu:7.0} s CPU ({:.0} runs/CPU-s), corpus {corpus_size}",
            execs as f64 / cpu.max(0.001)
        );
    }
    println!(
        "fuzz: {:.3} CPU-hours of fuzzing this run (user + system time of the fuzzers)",
        total_cpu / 3600.0
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the fuzzer found failures in: {} (inputs under {})",
            failed.join(", "),
            dir.join("artifacts").display()
        ))
    }
}

/// User and system CPU time of all waited-for children so far.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass; no other memory is touched.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn number(value: Option<String>, option: &str) -> Result<u64, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{option} needs a number"))
}

/// A `stat::name: value` line of libFuzzer's final statistics.
fn final_stat(log: &str, name: &str) -> u64 {
    log.lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter_map(|rest| rest.trim_start_matches(':').trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn build(dir: &Path) -> Result<(), String> {
    let flags = [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "-Cllvm-args=-sanitizer-coverage-stack-depth",
        "--cfg",
        "fuzzing",
    ];
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", TRIPLE, "--manifest-path"])
        .arg(root().join("xtask/fuzz/Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.join("build"))
        .env("RUSTFLAGS", flags.join(" "))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".into());
    }
    Ok(())
}

fn run_tool(cmd: &mut Command) -> Result<(), String> {
    crate::run(cmd).map(|_| ())
}

/// `target/fuzz/seeds`: the seed object (`main.o`) and the fixtures compiled, the inputs
/// the corpora start from.
fn make_seeds(dir: &Path) -> Result<PathBuf, String> {
    let seeds = dir.join("seeds");
    std::fs::create_dir_all(&seeds).map_err(|e| e.to_string())?;
    let main_c = seeds.join("main.c");
    std::fs::write(&main_c, SEED_MAIN).map_err(|e| e.to_string())?;
    run_tool(
        Command::new("gcc")
            .args([
                "-c",
                "-O1",
                "-fPIC",
                "-ffreestanding",
                "-fno-stack-protector",
            ])
            .arg(&main_c)
            .arg("-o")
            .arg(seeds.join("main.o")),
    )?;
    Ok(seeds)
}

/// Adds the target's starting inputs to an empty corpus (a corpus that has grown is left as
/// it is). Each input starts with the byte that chooses the target's mode.
fn seed_corpus(target: &str, corpus: &Path, seeds: &Path) -> Result<(), String> {
    let empty = std::fs::read_dir(corpus).map_or(true, |mut d| d.next().is_none());
    if !empty || target == "state" {
        // The state target writes its own seed (a state this very binary made).
        return Ok(());
    }
    let fixtures = root().join("fixtures");
    let objects_dir = seeds.join("objects");
    std::fs::create_dir_all(&objects_dir).map_err(|e| e.to_string())?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "c" || x == "s" || x == "cc")
        })
        .collect();
    sources.sort();
    let mut objects = vec![seeds.join("main.o")];
    for (i, source) in sources.iter().enumerate() {
        let object = objects_dir.join(format!(
            "{}.o",
            source.file_name().unwrap().to_string_lossy()
        ));
        if !object.exists() {
            let cxx = source.extension().is_some_and(|x| x == "cc");
            let flavor: &[&str] = if i % 2 == 0 {
                &["-O2", "-fPIC"]
            } else {
                &["-g", "-O0", "-fno-pic"]
            };
            let compiled = run_tool(
                Command::new(if cxx { "g++" } else { "gcc" })
                    .arg("-c")
                    .args(flavor)
                    .arg(source)
                    .arg("-o")
                    .arg(&object),
            );
            if compiled.is_err() {
                continue; // Some fixtures need directives' flags; the rest suffice.
            }
        }
        objects.push(object);
    }
    let write = |name: String, mode: u8, bytes: &[u8]| -> Result<(), String> {
        let mut data = vec![mode];
        data.extend_from_slice(bytes);
        std::fs::write(corpus.join(name), data).map_err(|e| e.to_string())
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match target {
        "object" => {
            for (i, object) in objects.iter().enumerate() {
                write(format!("seed-{i}"), i as u8, &read(object)?)?;
            }
        }
        "archive" => {
            for (i, (flags, members)) in [
                ("rcs", &objects[..2]),
                ("rcS", &objects[1..3]),
                ("rcsT", &objects[2..4]),
            ]
            .into_iter()
            .enumerate()
            {
                let archive = objects_dir.join(format!("lib{i}.a"));
                let _ = std::fs::remove_file(&archive);
                run_tool(Command::new("ar").arg(flags).arg(&archive).args(members))?;
                write(format!("seed-{i}"), i as u8, &read(&archive)?)?;
            }
        }
        "shared_object" => {
            let version_script = objects_dir.join("seed.map");
            std::fs::write(
                &version_script,
                "V1 { global: use_everything; local: *; };\nV2 { global: shared_value; } V1;\n",
            )
            .map_err(|e| e.to_string())?;
            let library = objects_dir.join("libseed.so");
            run_tool(
                Command::new("gcc")
                    .args(["-shared", "-nostdlib", "-Wl,-soname,libseed.so.1"])
                    .arg(format!("-Wl,--version-script={}", version_script.display()))
                    .arg(seeds.join("main.o"))
                    .arg("-o")
                    .arg(&library),
            )?;
            write("seed-0".into(), 0, &read(&library)?)?;
            write("seed-1".into(), 1, &read(&library)?)?;
        }
        "script" => {
            let texts = [
                (0u8, "GROUP ( libc.so.6 AS_NEEDED ( ld-linux-x86-64.so.2 ) )\nINPUT(-lm)\nOUTPUT_FORMAT(elf64-x86-64)\nSEARCH_DIR(\"=/usr/lib\")\n".to_string()),
                (1, "V1 { global: use_*; extern \"C++\" { ns::*; }; local: *; };\nV2 { global: shared_value; } V1;\n".into()),
                (2, std::fs::read_to_string(fixtures.join("dynamic_list.list")).unwrap_or_else(|_| "{ shared_value; use_everything; };".into())),
                (3, "ENTRY(_start)\nSECTIONS { . = 0x400000; .text : { *(.text*) } .data : { *(.data*) } /DISCARD/ : { *(.comment) } }\n".into()),
            ];
            for (i, (mode, text)) in texts.iter().enumerate() {
                write(format!("seed-{i}"), *mode, text.as_bytes())?;
            }
            // The script fixtures, as -T scripts.
            let scripts = fixtures.join("scripts");
            let mut names: Vec<PathBuf> = std::fs::read_dir(&scripts)
                .map_err(|e| format!("{}: {e}", scripts.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ld"))
                .collect();
            names.sort();
            for (i, path) in names.iter().enumerate() {
                write(format!("seed-ld-{i}"), 3, &read(path)?)?;
            }
        }
        "response_file" => {
            let lines = [
                "-o out -pie --eh-frame-hdr -z relro -z now main.o -lc --as-needed -lgcc_s --no-as-needed",
                "'-plugin' \"/usr/lib/gcc/liblto_plugin.so\" -plugin-opt=-pass-through=-lc \\-L/usr/lib --push-state --pop-state",
                "--defsym=foo=bar+4 --wrap=malloc -u sym --version-script=v.map --build-id=sha1 -soname libx.so",
            ];
            for (i, line) in lines.iter().enumerate() {
                std::fs::write(corpus.join(format!("seed-{i}")), line)
                    .map_err(|e| e.to_string())?;
            }
        }
        _ => {}
    }
    Ok(())
}
