//! `cargo xtask bench [--runs N] [JOB...]`: full links of captured real link jobs, timed for
//! weld and every peer linker found on this machine.
//!
//! A job is a directory `<corpus>/jobs/<name>` holding its input files and `args`, a GNU ld
//! response file: `cd <job> && LINKER @args -o OUT` replays it. The corpus (default
//! `~/corpus`, or `$WELD_CORPUS`) is made once by the workplace's `../shared/bench/capture.sh`
//! (C hello dynamic and static, a C++ program, sqlite, ripgrep debug and release, bat debug:
//! about 25 minutes on 2 cores; it needs clang-19 and lld-19, whose `--reproduce` captures a
//! job).
//!
//! Each round links every job once with every linker in turn, so that drift on a shared
//! machine hits all alike; round 0 is a warm-up. The output exists before each run (as in an
//! edit-build loop) and lives in `<corpus>/out`, on the inputs' disk. Per linker and job it
//! prints medians of wall time, CPU time (user + system) and peak RSS, the median per-round
//! ratios to mold, and whether the linked program runs. Linkers: weld (this tree's release
//! build), mold and Wild (both with `--no-fork`, without which their parent exits early and
//! hides the cost), ld.lld, ld.gold, ld.bfd: those not installed are left out, and said so.

use crate::{median, root, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Linker {
    name: &'static str,
    cmd: Vec<String>,
}

/// One timed link.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
}

pub fn run_bench(args: Vec<String>) -> Result<(), String> {
    let mut runs = 5usize;
    let mut wanted = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--runs needs a number")?
            }
            _ => wanted.push(a),
        }
    }
    let corpus = std::env::var_os("WELD_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join("corpus"));
    let jobs_dir = corpus.join("jobs");
    let mut jobs: Vec<String> = std::fs::read_dir(&jobs_dir)
        .map_err(|e| {
            format!(
                "no corpus at {} ({e}): capture one with ../shared/bench/capture.sh \
                 (CORPUS=<dir>), or set WELD_CORPUS",
                jobs_dir.display()
            )
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("args").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| wanted.is_empty() || wanted.contains(name))
        .collect();
    jobs.sort();
    if jobs.is_empty() {
        return Err(format!("no jobs in {}", jobs_dir.display()));
    }
    let out_dir = corpus.join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    run(Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "weld"])
        .current_dir(root()))?;
    let linkers = find_linkers();
    eprintln!(
        "bench: {} jobs, {} rounds, linkers: {}",
        jobs.len(),
        runs,
        linkers
            .iter()
            .map(|l| l.name)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut table = String::new();
    table.push_str(
        "| job | linker | wall s | CPU s | peak RSS MiB | wall / mold | CPU / mold | runs |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for job in &jobs {
        let dir = jobs_dir.join(job);
        // samples[linker][round]
        let mut samples: Vec<Vec<Option<Sample>>> = vec![Vec::new(); linkers.len()];
        for round in 0..=runs {
            for (i, l) in linkers.iter().enumerate() {
                let out = out_dir.join(format!("{job}.{}", l.name));
                let s = time_link(&dir, l, &out);
                if round > 0 {
                    samples[i].push(s);
                }
            }
        }
        let mold = linkers.iter().position(|l| l.name == "mold");
        for (i, l) in linkers.iter().enumerate() {
            let ok: Vec<Sample> = samples[i].iter().flatten().copied().collect();
            if ok.len() < samples[i].len() {
                table.push_str(&format!("| {job} | {} | failed | | | | | |\n", l.name));
                continue;
            }
            let ratio = |f: fn(&Sample) -> f64| -> String {
                let Some(m) = mold else { return "-".into() };
                let r: Vec<f64> = samples[i]
                    .iter()
                    .zip(&samples[m])
                    .filter_map(|(a, b)| Some(f(a.as_ref()?) / f(b.as_ref()?)))
                    .collect();
                if r.is_empty() {
                    "-".into()
                } else {
                    format!("{:.2}", median(r))
                }
            };
            let out = out_dir.join(format!("{job}.{}", l.name));
            table.push_str(&format!(
                "| {job} | {} | {:.3} | {:.3} | {:.0} | {} | {} | {} |\n",
                l.name,
                median(ok.iter().map(|s| s.wall).collect()),
                median(ok.iter().map(|s| s.cpu).collect()),
                median(ok.iter().map(|s| s.rss_mib).collect()),
                ratio(|s| s.wall),
                ratio(|s| s.cpu),
                if smoke(job, &out) { "ok" } else { "FAILS" },
            ));
        }
        eprintln!("bench: {job} done");
    }
    let date = run(Command::new("date").args(["-u", "+%F"]))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("{table}");
    println!(
        "(`cargo xtask bench`, {date}, {} CPUs; medians of {runs} alternating rounds; \
         \"runs\": the linked program ran correctly)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// The linkers to compare, in the order each round runs them.
fn find_linkers() -> Vec<Linker> {
    let weld = root().join("target/release/weld");
    let mut found = vec![Linker {
        name: "weld",
        cmd: vec![weld.display().to_string()],
    }];
    let wild = std::env::var("WILD")
        .ok()
        .or_else(|| which("wild"))
        .or_else(|| {
            Path::new("/opt/wild/bin/wild")
                .is_file()
                .then(|| "/opt/wild/bin/wild".into())
        });
    let candidates: [(&'static str, Option<String>, &[&str]); 5] = [
        ("mold", which("mold"), &["--no-fork"]),
        ("wild", wild, &["--no-fork"]),
        ("lld", which("ld.lld").or_else(|| which("ld.lld-19")), &[]),
        ("gold", which("ld.gold"), &[]),
        ("bfd", which("ld.bfd"), &[]),
    ];
    for (name, path, extra) in candidates {
        match path {
            Some(p) => {
                let mut cmd = vec![p];
                cmd.extend(extra.iter().map(|s| s.to_string()));
                found.push(Linker { name, cmd });
            }
            None => eprintln!("bench: {name} not found; left out"),
        }
    }
    found
}

fn which(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// Links `job` once with `linker` into `out`; `None` if the link failed.
fn time_link(job: &Path, linker: &Linker, out: &Path) -> Option<Sample> {
    let start = Instant::now();
    let child = Command::new(&linker.cmd[0])
        .args(&linker.cmd[1..])
        .arg("@args")
        .arg("-o")
        .arg(out)
        .current_dir(job)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let (status, usage) = wait_with_usage(child.id())?;
    let wall = start.elapsed().as_secs_f64();
    (status == 0).then_some(Sample {
        wall,
        cpu: usage.0,
        rss_mib: usage.1,
    })
}

/// Reaps child `pid`: its exit status and (CPU seconds, peak RSS in MiB).
fn wait_with_usage(pid: u32) -> Option<(i32, (f64, f64))> {
    let mut status = 0;
    // SAFETY: rusage is plain old data, zero-initialised and filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is never waited on);
    // the out-pointers are valid for the call.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if r != pid as libc::pid_t {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Some((code, (cpu, usage.ru_maxrss as f64 / 1024.0)))
}

/// Whether the program linked for `job` runs and does what that program does.
fn smoke(job: &str, exe: &Path) -> bool {
    let output = |args: &[&str], stdin: Option<&str>| -> Option<String> {
        let mut cmd = Command::new(exe);
        cmd.args(args).current_dir(exe.parent()?);
        let out = match stdin {
            None => cmd.output().ok()?,
            Some(text) => {
                use std::io::Write;
                let mut child = cmd
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .ok()?;
                child.stdin.take()?.write_all(text.as_bytes()).ok()?;
                child.wait_with_output().ok()?
            }
        };
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let has = |args: &[&str], stdin: Option<&str>, want: &str| {
        output(args, stdin).is_some_and(|o| o.contains(want))
    };
    if job.starts_with("c-hello") {
        has(&[], None, "hello, world")
    } else if job.starts_with("cpp-exceptions") {
        has(&[], None, "caught: odd worker 3")
    } else if job.starts_with("sqlite") {
        has(&[], None, "6|one,two,three")
    } else if job.starts_with("ripgrep") {
        has(&["--version"], None, "ripgrep")
            && has(
                &["-c", "fn main", "--no-config", "-"],
                Some("fn main() {}\n"),
                "1",
            )
    } else if job.starts_with("bat") {
        has(
            &["--color=always", "-l", "rust", "--style=plain"],
            Some("fn main() {}\n"),
            "main",
        )
    } else {
        output(&["--version"], None).is_some() || output(&["--help"], None).is_some()
    }
}
