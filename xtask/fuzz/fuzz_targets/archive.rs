//! A fuzzed archive, linked with the seed object, its members taken as references need
//! them or all of them (`--whole-archive`), chosen by the first byte.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, archive)) = data.split_first() else {
        return;
    };
    let input = common::input("libfuzz.a", archive);
    let seed = common::seed("main.o");
    let seed = seed.to_string_lossy();
    let out = common::output();
    let mut args: Vec<&str> = common::COMMON.to_vec();
    args.extend(["-o", &out, "-static", &seed]);
    if mode % 2 == 1 {
        args.extend(["--whole-archive", &input, "--no-whole-archive"]);
    } else {
        args.extend(["--start-group", &input, "--end-group"]);
    }
    common::link(&args);
});
