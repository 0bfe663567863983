//! `cargo xtask bench-incremental`: what an edit-build loop on a real Rust program costs.
//!
//! Builds ripgrep (debug profile, sources from crates.io) with weld in incremental mode, then
//! applies 20 scripted edits, one at a time and cumulatively: half in ripgrep's top crate,
//! half in the `grep-searcher` library (a local copy patched in with `[patch.crates-io]`, so
//! cargo rebuilds it). Most add a statement to a function; the others add a function, a
//! static, a public static (a new global symbol) and a call into a C library function the
//! program did not call before. After each edit it runs `cargo build`.
//!
//! gcc runs `ld` from a directory of ours, a wrapper that calls this program back
//! (`link-probe`). For the final ripgrep link it times weld's incremental relink, then, on the
//! same inputs and while they still exist (rustc deletes its objects afterwards), weld's and
//! mold's full links in alternating rounds; one line per link goes to a results file. Every
//! other link (build scripts, proc macros) is a plain weld link.
//!
//! After each build the new `rg` must run and search as before (and show the edited version
//! string once that edit is in). The table lists per edit: where it was, whether weld updated
//! the output in place or fell back (and why), the relink time, and the medians of the full
//! links. All times are wall times of the linker process alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{median, root, run as sh};

const RG_VERSION: &str = "15.2.0";

/// Where an edit is made.
#[derive(Clone, Copy, PartialEq)]
enum Crate {
    Top,
    Dependency,
}

/// One scripted edit: in `file` (relative to the bench workspace), the unique line `anchor`
/// gets a statement inserted after it (`Statement`), or is replaced (`Replace`).
struct Edit {
    krate: Crate,
    file: &'static str,
    anchor: &'static str,
    change: Change,
}

enum Change {
    /// Insert `let _ = std::hint::black_box(N);` as the function's first statement.
    Statement,
    Replace(&'static str),
    /// Insert `before` before the anchor line (an item: a new function, a new static) and
    /// `after` after it (a statement using it; nothing if empty).
    Around {
        /// What the edit adds, for the table.
        what: &'static str,
        before: &'static str,
        after: &'static str,
    },
}

const EDITS: &[Edit] = &[
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/main.rs",
        anchor: "fn eprint_nothing_searched() {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "        let mut config = self.config.clone();",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/flags/doc/version.rs",
        anchor: "    format!(\"ripgrep {digits}\")",
        change: Change::Replace("    format!(\"ripgrep {digits} (bench edit)\")"),
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn new() -> Searcher {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/main.rs",
        anchor: "fn types(args: &HiArgs) -> anyhow::Result<ExitCode> {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn line_number(&mut self, yes: bool) -> &mut SearcherBuilder {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/main.rs",
        anchor: "fn files(args: &HiArgs) -> anyhow::Result<bool> {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn invert_match(&self) -> bool {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/search.rs",
        anchor: "    fn should_decompress(&self, path: &Path) -> bool {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn bom_sniffing(&mut self, yes: bool) -> &mut SearcherBuilder {",
        change: Change::Statement,
    },
    // A new function, called from an existing one.
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/main.rs",
        anchor: "fn generate(mode: crate::flags::GenerateMode) -> anyhow::Result<ExitCode> {",
        change: Change::Around {
            what: "new function",
            before: "#[inline(never)]\nfn bench_added(n: u64) -> u64 {\n    \
                     std::hint::black_box(n).wrapping_mul(3)\n}\n\n",
            after: "    let _ = bench_added(11);",
        },
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        // (A private method: the new function goes between a public one and its
        // documentation otherwise, which `#![deny(missing_docs)]` refuses.)
        anchor: "    fn slice_needs_transcoding(&self, slice: &[u8]) -> bool {",
        change: Change::Around {
            what: "new function",
            before: "    #[inline(never)]\n    fn bench_added(n: u64) -> u64 {\n        \
                     std::hint::black_box(n).wrapping_mul(3)\n    }\n\n",
            after: "        let _ = Self::bench_added(12);",
        },
    },
    // A new static variable (a new data symbol of the object).
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/search.rs",
        anchor: "    fn should_preprocess(&self, path: &Path) -> bool {",
        change: Change::Around {
            what: "new static",
            before: "",
            after: "        static BENCH_CALLS: std::sync::atomic::AtomicUsize =\n            \
                    std::sync::atomic::AtomicUsize::new(0);\n        \
                    BENCH_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);",
        },
    },
    // A new global symbol: a public static of the library.
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "impl Encoding {",
        change: Change::Around {
            what: "new public static",
            before: "/// A bench edit: a new public static.\npub static BENCH_GLOBAL: \
                     std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);\n\n",
            after: "",
        },
    },
    // A call into a C library function the program did not use (a new PLT entry and
    // dynamic symbol), on a path that does not run.
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/main.rs",
        anchor: "fn special(mode: crate::flags::SpecialMode) -> anyhow::Result<ExitCode> {",
        change: Change::Around {
            what: "new C library call",
            before: "",
            // SAFETY: (of the edited program's block) the call is never made: the branch
            // is not taken; it is there to be linked.
            after: "    unsafe extern \"C\" {\n        \
                    fn getloadavg(loadavg: *mut f64, nelem: i32) -> i32;\n    }\n    \
                    if std::hint::black_box(false) {\n        \
                    unsafe { getloadavg(std::ptr::null_mut(), 0) };\n    }",
        },
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn after_context(&self) -> usize {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/haystack.rs",
        anchor: "    fn is_dir(&self) -> bool {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn stop_on_nonmatch(&self) -> bool {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Top,
        file: "ripgrep/crates/core/search.rs",
        anchor: "    fn default() -> Config {",
        change: Change::Statement,
    },
    Edit {
        krate: Crate::Dependency,
        file: "grep-searcher/src/searcher/mod.rs",
        anchor: "    pub fn convert(binary_byte: u8) -> BinaryDetection {",
        change: Change::Statement,
    },
];

fn io<T>(what: impl std::fmt::Display, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// `cargo xtask bench-incremental`
pub fn run() -> Result<(), String> {
    let root = root();
    if Command::new("mold").arg("--version").output().is_err() {
        return Err("mold is not installed (apt-get install mold): it is the reference".into());
    }
    println!("building weld (release)...");
    sh(Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "weld"])
        .current_dir(&root))?;
    let weld = root.join("target/release/weld");
    let work = root.join("target/bench-incremental");
    let ws = work.join("ws");
    let bin = work.join("bin");
    let results = work.join("links.tsv");
    io(
        "creating the bench directory",
        std::fs::create_dir_all(&bin),
    )?;
    let probe = io("finding the xtask binary", std::env::current_exe())?;
    let wrapper = bin.join("ld");
    let _ = std::fs::remove_file(&wrapper);
    io(
        "writing the linker wrapper",
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec '{}' link-probe \"$@\"\n", probe.display()),
        ),
    )?;
    io(
        "making the wrapper executable",
        Command::new("chmod").arg("+x").arg(&wrapper).status(),
    )?;
    prepare_sources(&work, &ws)?;

    let rounds = std::env::var("WELD_BENCH_ROUNDS").unwrap_or_else(|_| "3".into());
    let build = |label: &str| -> Result<Vec<String>, String> {
        let before = std::fs::read_to_string(&results).unwrap_or_default();
        let start = Instant::now();
        sh(Command::new(env!("CARGO"))
            .args(["build", "--bin", "rg"])
            .current_dir(ws.join("ripgrep"))
            .env("CARGO_TARGET_DIR", work.join("target"))
            .env(
                "RUSTFLAGS",
                format!("-Clinker=gcc -Clink-arg=-B{}/", bin.display()),
            )
            .env("WELD_BENCH_WELD", &weld)
            .env("WELD_BENCH_RESULTS", &results)
            .env("WELD_BENCH_ROUNDS", &rounds))
        .map_err(|e| format!("{label}: {e}"))?;
        let after = std::fs::read_to_string(&results).unwrap_or_default();
        let new: Vec<String> = after
            .get(before.len()..)
            .unwrap_or("")
            .lines()
            .map(str::to_owned)
            .collect();
        eprintln!(
            "  {label}: cargo build {:.1} s, {} rg link(s)",
            start.elapsed().as_secs_f64(),
            new.len()
        );
        Ok(new)
    };

    println!("building ripgrep {RG_VERSION} (debug) with weld --incremental...");
    let base = build("base")?;
    let rg = work.join("target/debug/rg");
    let probe_rg = |expect_edit: bool| -> Result<(String, String), String> {
        let version = sh(Command::new(&rg).arg("--version"))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        if expect_edit != version.contains("(bench edit)") {
            return Err(format!("rg --version printed {version:?}"));
        }
        let search = sh(Command::new(&rg)
            .args(["-n", "--sort=path", "fn [a-z_]+\\(", "crates/core/flags"])
            .current_dir(ws.join("ripgrep")))?;
        Ok((
            version,
            String::from_utf8_lossy(&search.stdout).into_owned(),
        ))
    };
    let (_, reference_search) = probe_rg(false)?;
    if base.len() > 1 {
        return Err(format!("the base build linked rg {} times", base.len()));
    }

    println!("\n| # | edit | crate | weld --incremental | weld full | mold full | relink / mold |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut version_edited = false;
    for (i, edit) in EDITS.iter().enumerate() {
        let path = ws.join(edit.file);
        let text = io(path.display(), std::fs::read_to_string(&path))?;
        if text.matches(edit.anchor).count() != 1 {
            return Err(format!(
                "edit {}: {:?} is not one line of {}",
                i + 1,
                edit.anchor,
                edit.file
            ));
        }
        let new = match edit.change {
            Change::Statement => format!(
                "{}\n        let _ = std::hint::black_box({});",
                edit.anchor,
                i + 1
            ),
            Change::Replace(with) => {
                version_edited = true;
                with.to_owned()
            }
            Change::Around { before, after, .. } if after.is_empty() => {
                format!("{before}{}", edit.anchor)
            }
            Change::Around { before, after, .. } => {
                format!("{before}{}\n{after}", edit.anchor)
            }
        };
        io(
            path.display(),
            std::fs::write(&path, text.replacen(edit.anchor, &new, 1)),
        )?;
        let links = build(&format!("edit {}", i + 1))?;
        let [line] = links.as_slice() else {
            return Err(format!(
                "edit {} caused {} rg links, not one",
                i + 1,
                links.len()
            ));
        };
        let (_, search) = probe_rg(version_edited)?;
        if search != reference_search {
            return Err(format!(
                "edit {}: rg searches differently after the relink",
                i + 1
            ));
        }
        let row = Row::parse(line)?;
        let fname = edit.anchor.trim().trim_end_matches(" {");
        let fname = fname.split('(').next().unwrap_or(fname);
        let what = match edit.change {
            Change::Around { what, .. } => format!("{what} at "),
            _ => String::new(),
        };
        println!(
            "| {} | {what}`{}` in {} | {} | {:.0} ms, {} | {:.0} ms | {:.0} ms | {:.2} |",
            i + 1,
            fname,
            edit.file.rsplit('/').next().unwrap_or(edit.file),
            match edit.krate {
                Crate::Top => "top",
                Crate::Dependency => "dependency",
            },
            row.relink_ms,
            row.mode(),
            row.weld_full_ms,
            row.mold_ms,
            row.relink_ms / row.mold_ms
        );
        rows.push((edit.krate, row));
    }

    println!();
    for (krate, name) in [(Crate::Top, "top crate"), (Crate::Dependency, "dependency")] {
        let of: Vec<&Row> = rows
            .iter()
            .filter(|(k, _)| *k == krate)
            .map(|(_, r)| r)
            .collect();
        let relink = median(of.iter().map(|r| r.relink_ms).collect());
        let mold = median(of.iter().map(|r| r.mold_ms).collect());
        let full = median(of.iter().map(|r| r.weld_full_ms).collect());
        println!(
            "{name}: {} of {} edits updated in place ({} by the lean update); median relink \
             {relink:.0} ms, weld full {full:.0} ms, mold full {mold:.0} ms: relink = {:.2} x \
             mold",
            of.iter().filter(|r| r.in_place).count(),
            of.len(),
            of.iter().filter(|r| r.lean).count(),
            relink / mold
        );
    }
    println!(
        "(ripgrep {RG_VERSION} debug, {} rounds of full links per edit, {} CPUs, {})",
        rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        String::from_utf8_lossy(&sh(Command::new("date").arg("-u").arg("+%F"))?.stdout).trim()
    );
    Ok(())
}

/// One line of the results file, written by `link_probe`.
struct Row {
    relink_ms: f64,
    weld_full_ms: f64,
    mold_ms: f64,
    in_place: bool,
    /// Updated by the lean update (only the changed objects read).
    lean: bool,
    report: String,
}

impl Row {
    fn parse(line: &str) -> Result<Row, String> {
        let mut f = line.splitn(4, '\t');
        let mut num = || -> Result<f64, String> {
            f.next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad results line {line:?}"))
        };
        let (relink_ms, weld_full_ms, mold_ms) = (num()?, num()?, num()?);
        let report = f.next().unwrap_or("").to_owned();
        let lean = report.starts_with("updated in place, lean");
        Ok(Row {
            relink_ms,
            weld_full_ms,
            mold_ms,
            in_place: lean
                || report
                    .split("; ")
                    .any(|part| part.starts_with("updated in place")),
            lean,
            report,
        })
    }

    fn mode(&self) -> String {
        let why_not_lean = self
            .report
            .split("; ")
            .find_map(|part| part.strip_prefix("no lean update: "))
            .map(|why| why.rsplit('/').next().unwrap_or(why).replace('|', "/"))
            .unwrap_or_default();
        if self.lean {
            "in place, lean".into()
        } else if self.in_place {
            format!("in place, whole update ({why_not_lean})")
        } else {
            self.report.replace('|', "/")
        }
    }
}

/// Copies ripgrep and grep-searcher from cargo's registry (fetching them first if needed)
/// into `ws`, fresh on every run so that the edits apply to pristine sources.
fn prepare_sources(work: &Path, ws: &Path) -> Result<(), String> {
    let registry = |name: &str| -> Option<PathBuf> {
        let home = std::env::var("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
            .ok()?;
        std::fs::read_dir(home.join("registry/src"))
            .ok()?
            .flatten()
            .map(|d| d.path().join(name))
            .find(|p| p.is_dir())
    };
    let rg_name = format!("ripgrep-{RG_VERSION}");
    if registry(&rg_name).is_none() {
        let fetch = work.join("fetch");
        io(
            "creating the fetch package",
            std::fs::create_dir_all(fetch.join("src")),
        )?;
        io(
            "writing the fetch package",
            std::fs::write(
                fetch.join("Cargo.toml"),
                format!(
                    "[package]\nname = \"bench-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
                     [dependencies]\nripgrep = \"={RG_VERSION}\"\n\n\
                     # not a member of the weld workspace it sits in\n[workspace]\n"
                ),
            ),
        )?;
        io(
            "writing the fetch package",
            std::fs::write(fetch.join("src/main.rs"), "fn main() {}\n"),
        )?;
        println!("fetching ripgrep {RG_VERSION} from crates.io...");
        sh(Command::new(env!("CARGO")).arg("fetch").current_dir(&fetch))?;
    }
    let rg_src = registry(&rg_name).ok_or("ripgrep's sources are not in cargo's registry")?;
    let lock = io(
        "reading ripgrep's Cargo.lock",
        std::fs::read_to_string(rg_src.join("Cargo.lock")),
    )?;
    let searcher_version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"grep-searcher\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or("grep-searcher is not in ripgrep's Cargo.lock")?;
    let searcher_src = registry(&format!("grep-searcher-{searcher_version}"))
        .ok_or("grep-searcher's sources are not in cargo's registry")?;
    let _ = std::fs::remove_dir_all(ws);
    io("creating the workspace", std::fs::create_dir_all(ws))?;
    sh(Command::new("cp")
        .arg("-r")
        .arg(&rg_src)
        .arg(ws.join("ripgrep")))?;
    sh(Command::new("cp")
        .arg("-r")
        .arg(&searcher_src)
        .arg(ws.join("grep-searcher")))?;
    let manifest = ws.join("ripgrep/Cargo.toml");
    let mut text = io("reading Cargo.toml", std::fs::read_to_string(&manifest))?;
    text.push_str(
        "\n[workspace]\n\n[patch.crates-io]\ngrep-searcher = { path = \"../grep-searcher\" }\n",
    );
    io("writing Cargo.toml", std::fs::write(&manifest, text))
}

/// The linker wrapper: `ld ARGS...` as gcc runs it.
pub fn link_probe(args: Vec<String>) -> Result<(), String> {
    let weld = std::env::var_os("WELD_BENCH_WELD").ok_or("WELD_BENCH_WELD is not set")?;
    let out = args
        .iter()
        .position(|a| a == "-o")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let is_rg = out.as_deref().is_some_and(|o| {
        Path::new(o)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("rg-"))
    });
    if let (Some(dir), Some(_), true) = (std::env::var_os("WELD_BENCH_KEEP"), &out, is_rg) {
        keep_job(Path::new(&dir), &args)?;
    }
    let results = std::env::var_os("WELD_BENCH_RESULTS");
    let (Some(out), true, Some(results)) = (out, is_rg, results) else {
        let status = io("running weld", Command::new(&weld).args(&args).status())?;
        std::process::exit(status.code().unwrap_or(1));
    };

    // WELD_BENCH_TIME=FILE: weld's phase times of each relink are appended to FILE.
    let time_log = std::env::var_os("WELD_BENCH_TIME");
    let time = time_log.is_some();
    let start = Instant::now();
    let linked = io(
        "running weld",
        Command::new(&weld)
            .args(&args)
            .args(["--incremental", "--stats"])
            .args(time.then_some("--time"))
            .output(),
    )?;
    let relink_ms = start.elapsed().as_secs_f64() * 1000.0;
    let stderr = String::from_utf8_lossy(&linked.stderr);
    if let Some(log) = &time_log {
        use std::io::Write;
        let mut f = io(
            "opening WELD_BENCH_TIME",
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log),
        )?;
        io("writing WELD_BENCH_TIME", f.write_all(stderr.as_bytes()))?;
    }
    if !linked.status.success() {
        eprint!("{stderr}");
        std::process::exit(linked.status.code().unwrap_or(1));
    }
    let report = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("weld: incremental: "))
        .collect::<Vec<_>>()
        .join("; ");

    // Full links of the same inputs, alternating, into scratch outputs next to the real one.
    let rounds: usize = std::env::var("WELD_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let with_output = |o: &str| -> Vec<String> {
        let mut a = args.clone();
        if let Some(i) = a.iter().position(|x| x == "-o") {
            a[i + 1] = o.to_owned();
        }
        a
    };
    let weld_out = format!("{out}.bench-weld");
    let mold_out = format!("{out}.bench-mold");
    let (mut weld_ms, mut mold_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (is_mold, times) in [(true, &mut mold_ms), (false, &mut weld_ms)] {
            let mut cmd = if is_mold {
                let mut c = Command::new("mold");
                c.arg("--no-fork").args(with_output(&mold_out));
                c
            } else {
                let mut c = Command::new(&weld);
                c.args(with_output(&weld_out)).arg("--no-incremental");
                c
            };
            let start = Instant::now();
            sh(&mut cmd)?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let _ = std::fs::remove_file(&weld_out);
    let _ = std::fs::remove_file(&mold_out);
    let line = format!(
        "{relink_ms:.2}\t{:.2}\t{:.2}\t{}\n",
        median(weld_ms),
        median(mold_ms),
        report.replace(['\t', '\n'], " ")
    );
    use std::io::Write;
    let mut file = io(
        "opening the results file",
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results),
    )?;
    io("writing the results file", file.write_all(line.as_bytes()))
}

/// `WELD_BENCH_KEEP=DIR`: keeps a link job for `cargo xtask replay-update`, as `DIR/jobN`:
/// `args` (one per line, the output as `OUT`) and `f/`, the inputs under their absolute
/// paths, hard-linked (rustc deletes its objects after linking) or copied. System files
/// (under /usr and /lib) are named in place.
fn keep_job(dir: &Path, args: &[String]) -> Result<(), String> {
    let mut n = 0;
    while dir.join(format!("job{n}")).exists() {
        n += 1;
    }
    let job = dir.join(format!("job{n}"));
    let mut kept = Vec::with_capacity(args.len());
    let mut after_o = false;
    for a in args {
        if after_o {
            kept.push("OUT".to_string());
            after_o = false;
            continue;
        }
        after_o = a == "-o";
        let path = Path::new(a);
        let system = a.starts_with("/usr/") || a.starts_with("/lib");
        if path.is_absolute() && !system && path.is_file() {
            let to = job.join("f").join(path.strip_prefix("/").unwrap_or(path));
            io(
                "creating a job directory",
                std::fs::create_dir_all(to.parent().unwrap()),
            )?;
            if std::fs::hard_link(path, &to).is_err() {
                io("copying an input", std::fs::copy(path, &to))?;
            }
            kept.push(to.display().to_string());
        } else {
            kept.push(a.clone());
        }
    }
    io("creating a job directory", std::fs::create_dir_all(&job))?;
    io(
        "writing the job's arguments",
        std::fs::write(job.join("args"), kept.join("\n") + "\n"),
    )
}

/// `cargo xtask replay-update JOB_A JOB_B [--rounds N] [--weld PATH]...`: times incremental
/// updates between two kept link jobs (see `keep_job`; two builds a small edit apart): each
/// weld links JOB_A with `--incremental` into an output of its own, then updates it to JOB_B,
/// back to JOB_A, and so on, `N` rounds (default 20); with two welds the rounds alternate
/// between them. Prints per weld the median wall time of an update and of each `--time`
/// phase. Every update must be done in place.
pub fn replay_update(args: Vec<String>) -> Result<(), String> {
    let mut jobs = Vec::new();
    let mut welds: Vec<PathBuf> = Vec::new();
    let mut rounds = 20usize;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--rounds needs a number")?
            }
            "--weld" => welds.push(it.next().ok_or("--weld needs a path")?.into()),
            _ => jobs.push(PathBuf::from(a)),
        }
    }
    let [job_a, job_b] = <[PathBuf; 2]>::try_from(jobs).map_err(|_| {
        "usage: cargo xtask replay-update JOB_A JOB_B [--rounds N] [--weld PATH]..."
    })?;
    if welds.is_empty() {
        welds.push(root().join("target/release/weld"));
    }
    let read_args = |job: &Path| -> Result<Vec<String>, String> {
        let text = io(
            "reading a job's arguments",
            std::fs::read_to_string(job.join("args")),
        )?;
        Ok(text.lines().map(str::to_owned).collect())
    };
    let (args_a, args_b) = (read_args(&job_a)?, read_args(&job_b)?);
    let scratch = root().join("target/replay-update");
    let _ = std::fs::remove_dir_all(&scratch);
    let link = |weld: &Path, args: &[String], out: &Path| -> Result<(f64, String), String> {
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if a == "OUT" {
                    out.display().to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        let start = Instant::now();
        let done = sh(Command::new(weld)
            .args(&args)
            .args(["--incremental", "--stats", "--time"]))?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok((ms, String::from_utf8_lossy(&done.stderr).into_owned()))
    };
    let outs: Vec<PathBuf> = (0..welds.len())
        .map(|i| scratch.join(format!("weld{i}")).join("out"))
        .collect();
    for (weld, out) in welds.iter().zip(&outs) {
        io(
            "creating the scratch directory",
            std::fs::create_dir_all(out.parent().unwrap()),
        )?;
        link(weld, &args_a, out)?;
    }
    let mut walls = vec![Vec::new(); welds.len()];
    let mut phases: Vec<Vec<(String, Vec<f64>)>> = vec![Vec::new(); welds.len()];
    for round in 0..rounds {
        let args = if round % 2 == 0 { &args_b } else { &args_a };
        for (i, (weld, out)) in welds.iter().zip(&outs).enumerate() {
            let (ms, said) = link(weld, args, out)?;
            if !said.contains("incremental: updated in place") {
                return Err(format!(
                    "round {round}, {}: not an update:\n{said}",
                    weld.display()
                ));
            }
            walls[i].push(ms);
            for line in said.lines() {
                let Some(rest) = line.strip_prefix("weld: time: ") else {
                    continue;
                };
                let Some((name, value)) = rest.trim_end_matches(" ms").rsplit_once(' ') else {
                    continue;
                };
                let (name, value) = (name.trim().to_string(), value.trim().parse::<f64>());
                let Ok(value) = value else { continue };
                match phases[i].iter_mut().find(|p| p.0 == name) {
                    Some(p) => p.1.push(value),
                    None => phases[i].push((name, vec![value])),
                }
            }
        }
    }
    for (i, weld) in welds.iter().enumerate() {
        println!(
            "{}: update median {:.1} ms wall ({rounds} rounds)",
            weld.display(),
            median(walls[i].clone())
        );
        for (name, values) in &phases[i] {
            println!("  {name:<18} {:>7.2} ms", median(values.clone()));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
