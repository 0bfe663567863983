//! `cargo xtask <task>`: everything beyond `cargo build` and `cargo test`.
//!
//! - `demo`: build weld (release), link a bundled C program with it, edit one file, relink,
//!   and print the times of each link next to GNU ld's.
//! - `install [DIR]`: build weld (release) and install it as `DIR/weld` (default
//!   `~/.local/bin`), with `DIR/ld.weld` (for `clang -fuse-ld=weld`) and `DIR/weld-ld/ld`
//!   (for `gcc -B DIR/weld-ld`).
//! - `bench-incremental`: build ripgrep (debug) with weld in incremental mode, apply scripted
//!   one-function edits to its top crate and to a dependency, rebuild after each, and print per
//!   edit the incremental relink time next to weld's and mold's full links of the same inputs.
//!   See `bench_incremental.rs`. With `WELD_BENCH_KEEP=DIR` it also keeps each ripgrep link
//!   job (arguments, and the inputs hard-linked) as `DIR/jobN`.
//! - `replay-update JOB_A JOB_B [--rounds N] [--weld PATH]...`: incremental updates back and
//!   forth between two kept jobs, timed (median wall and `--time` phases), alternating
//!   between the welds given: the steady measure of an update, without rebuilding ripgrep.
//! - `bench [--runs N] [JOB...]`: full links of captured real link jobs by weld, mold, Wild,
//!   lld, gold and GNU ld (those installed), alternating; medians of wall, CPU and peak RSS.
//!   See `bench.rs`.
//! - `fuzz [--time SECS] [--jobs N] [TARGET...]`: libFuzzer targets for objects, archives,
//!   shared objects, scripts, response files and incremental states, on stable Rust. See
//!   `fuzz.rs`.

mod bench;
mod bench_incremental;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "demo" => demo(),
        "install" => install(std::env::args().nth(2)),
        "bench-incremental" => bench_incremental::run(),
        "replay-update" => bench_incremental::replay_update(std::env::args().skip(2).collect()),
        "bench" => bench::run_bench(std::env::args().skip(2).collect()),
        "fuzz" => fuzz::run(std::env::args().skip(2).collect()),
        // Called by the linker wrapper that `bench-incremental` installs, not by people.
        "link-probe" => bench_incremental::link_probe(std::env::args().skip(2).collect()),
        _ => Err(format!(
            "usage: cargo xtask demo|install [DIR]|bench [--runs N] [JOB...]|bench-incremental\
             |replay-update JOB_A JOB_B [--rounds N] [--weld PATH]...\
             |fuzz [--time SECS] [--jobs N] [TARGET]... (unknown task {task:?})"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The median (NaN for no values).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub(crate) fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

fn demo() -> Result<(), String> {
    let root = root();
    println!("building weld (release)...");
    run(Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "weld"])
        .current_dir(&root))?;
    let weld = root.join("target/release/weld");
    let work = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    let bin_dir = work.join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink(&weld, bin_dir.join("ld")).map_err(|e| e.to_string())?;
    let src = root.join("xtask/demo");
    for f in ["main.c", "greeting.c", "stats.c"] {
        std::fs::copy(src.join(f), work.join(f)).map_err(|e| e.to_string())?;
    }
    let compile = |file: &str| {
        run(Command::new("gcc")
            .args(["-O2", "-g", "-c", file])
            .current_dir(&work))
    };
    for f in ["main.c", "greeting.c", "stats.c"] {
        compile(f)?;
    }
    let objects = ["main.o", "greeting.o", "stats.o"];
    // Links with weld (incremental mode) or GNU ld; returns the time and weld's report.
    let link = |with_weld: bool, out: &str| -> Result<(f64, String), String> {
        let mut cmd = Command::new("gcc");
        if with_weld {
            cmd.arg(format!("-B{}", bin_dir.display()))
                .args(["-Wl,--incremental", "-Wl,--stats"]);
        }
        cmd.arg("-static")
            .args(objects)
            .args(["-o", out])
            .current_dir(&work);
        let start = Instant::now();
        let output = run(&mut cmd)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let report = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("weld: incremental: "))
            .collect::<Vec<_>>()
            .join("; ");
        Ok((ms, report))
    };
    let show = |exe: &str| -> Result<String, String> {
        let out = run(&mut Command::new(work.join(exe)))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .replace('\n', " | "))
    };
    let step = |label: &str| -> Result<(), String> {
        let (t_weld, report) = link(true, "demo")?;
        let (t_gnu, _) = link(false, "demo-gnu")?;
        println!(
            "{label:<22} weld {t_weld:6.1} ms  GNU ld {t_gnu:6.1} ms  -> {}",
            show("demo")?
        );
        println!("{:<22} weld: {report}", "");
        if show("demo")? != show("demo-gnu")? {
            return Err("weld's program and GNU ld's print different things".into());
        }
        Ok(())
    };

    step("first link:")?;
    step("relink, no change:")?;
    let edited = std::fs::read_to_string(work.join("greeting.c"))
        .map_err(|e| e.to_string())?
        .replace("hello from weld", "hello again, relinked by weld");
    std::fs::write(work.join("greeting.c"), edited).map_err(|e| e.to_string())?;
    compile("greeting.c")?;
    step("after a one-line edit:")?;
    println!(
        "(times include the gcc driver; weld --incremental leaves an unchanged output alone and \
         patches changed objects into it in place, falling back to a full link, with the reason, \
         when it cannot)"
    );
    Ok(())
}

fn install(dir: Option<String>) -> Result<(), String> {
    let root = root();
    let dir = match dir {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var("HOME").map_err(|_| "HOME is not set")?).join(".local/bin")
        }
    };
    run(Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "weld"])
        .current_dir(&root))?;
    std::fs::create_dir_all(dir.join("weld-ld")).map_err(|e| e.to_string())?;
    let target = dir.join("weld");
    let tmp = dir.join(".weld.tmp");
    std::fs::copy(root.join("target/release/weld"), &tmp).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
    for link in [dir.join("ld.weld"), dir.join("weld-ld/ld")] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).map_err(|e| e.to_string())?;
    }
    println!("installed {}", target.display());
    println!(
        "  clang -fuse-ld=weld finds {} when that directory is on PATH",
        dir.join("ld.weld").display()
    );
    println!("  gcc -B{}/ uses it as ld", dir.join("weld-ld").display());
    Ok(())
}
