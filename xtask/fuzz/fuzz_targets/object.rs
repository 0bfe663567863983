//! A fuzzed relocatable object, linked in one of several ways chosen by its first byte:
//! static, PIE, shared, `-r`, with gc and `.eh_frame_hdr`, and as an incremental update
//! of a link of the seed object.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, object)) = data.split_first() else {
        return;
    };
    let input = common::input("in.o", object);
    let out = common::output();
    let mut args: Vec<&str> = common::COMMON.to_vec();
    args.extend(["-o", &out]);
    match mode % 6 {
        0 => args.extend(["-static", &input]),
        1 => args.extend(["-pie", &input]),
        2 => args.extend(["-shared", &input]),
        3 => args.extend(["-r", &input]),
        4 => args.extend([
            "-static",
            "--gc-sections",
            "--eh-frame-hdr",
            "--build-id",
            &input,
        ]),
        _ => {
            // An incremental link of the seed object, then of the fuzzed one in its place:
            // the update reads the changed object.
            let seed = common::seed("main.o");
            let seed = seed.to_string_lossy();
            let work = common::input("in.o", &std::fs::read(&*seed).unwrap());
            let mut first = args.clone();
            first.extend(["--incremental", "-pie", &work]);
            let first: Vec<String> = first.iter().map(|a| a.to_string()).collect();
            let _ = weld::run(&first);
            common::input("in.o", object);
            args.extend(["--incremental", "-pie", &input]);
        }
    }
    common::link(&args);
});
