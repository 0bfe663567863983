//! What the fuzz targets share: a private working directory, the seed files that
//! `cargo xtask fuzz` made (`WELD_FUZZ_SEEDS`), and a link run through weld's library
//! entry point. A target only ever writes inside its working directory: the fuzzed bytes
//! are inputs (objects, archives, scripts, states), never arguments, so no mutation can
//! name another output.

#![allow(dead_code)] // Each target uses its own part.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `<tmp>/weld-fuzz-<pid>`, made once, emptied of outputs after each run.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("WELD_FUZZ_WORK")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("weld-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot make the fuzz working directory");
        dir
    })
}

/// A seed file made by `cargo xtask fuzz` (an object to link the fuzzed input with).
pub fn seed(name: &str) -> PathBuf {
    let dir = std::env::var_os("WELD_FUZZ_SEEDS")
        .map(PathBuf::from)
        .expect("WELD_FUZZ_SEEDS is not set: run the targets through `cargo xtask fuzz`");
    dir.join(name)
}

/// Writes `bytes` as `name` in the working directory and returns its path as a string.
pub fn input(name: &str, bytes: &[u8]) -> String {
    let path = work_dir().join(name);
    std::fs::write(&path, bytes).expect("cannot write a fuzz input");
    path.to_string_lossy().into_owned()
}

/// The output path every link writes.
pub fn output() -> String {
    work_dir().join("out").to_string_lossy().into_owned()
}

/// Links with `args` (an error is fine; a panic or hang is what the fuzzer looks for) and
/// removes the output.
pub fn link(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let _ = weld::run(&args);
    let _ = std::fs::remove_file(output());
}

/// Options every fuzzed link takes: no C runtime search (the seed object defines
/// `_start`). Executables stop at undefined symbols after layout; shared and `-r` links of
/// the same inputs go on to write the output.
pub const COMMON: [&str; 1] = ["--no-crt-detect"];
