//! A fuzzed incremental state (`<output>.weld-state`) next to the output it describes:
//! an incremental link must validate it and fall back to a full link, never trust it.
//!
//! At start the target makes a real incremental link of the seed object (so the state's
//! weld build and the output's identity are this binary's); with `WELD_FUZZ_CORPUS` set it
//! also writes that state there as the corpus seed. Each run writes the fuzzed state and
//! relinks; the output's modification time is put back afterwards so that the recorded
//! identity keeps matching (a full link rewrites the same inode in place).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Baseline {
    args: Vec<String>,
    out: PathBuf,
    state: PathBuf,
    mtime: std::time::SystemTime,
}

fn baseline() -> &'static Baseline {
    static BASE: OnceLock<Baseline> = OnceLock::new();
    BASE.get_or_init(|| {
        let object = std::fs::read(common::seed("main.o")).unwrap();
        let input = common::input("state-in.o", &object);
        let out = common::work_dir().join("state-out");
        let mut args: Vec<String> = common::COMMON.iter().map(|a| a.to_string()).collect();
        args.extend(["--incremental", "-pie", "-o"].map(String::from));
        args.push(out.to_string_lossy().into_owned());
        args.push(input);
        weld::run(&args).expect("the baseline incremental link failed");
        let mut state = out.clone().into_os_string();
        state.push(".weld-state");
        let state = PathBuf::from(state);
        if let Some(corpus) = std::env::var_os("WELD_FUZZ_CORPUS") {
            let _ = std::fs::copy(&state, PathBuf::from(corpus).join("seed-state"));
        }
        let mtime = std::fs::metadata(&out).unwrap().modified().unwrap();
        Baseline {
            args,
            out,
            state,
            mtime,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let base = baseline();
    std::fs::write(&base.state, data).unwrap();
    let _ = weld::run(&base.args);
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&base.out) {
        let _ = file.set_modified(base.mtime);
    }
});
