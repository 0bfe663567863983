//! A fuzzed shared object, linked against by the seed object into a PIE or a shared
//! library (its dynamic symbols, versions, DT_NEEDED and soname are read).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, library)) = data.split_first() else {
        return;
    };
    let input = common::input("libfuzz.so", library);
    let seed = common::seed("main.o");
    let seed = seed.to_string_lossy();
    let out = common::output();
    let mut args: Vec<&str> = common::COMMON.to_vec();
    let kind = if mode % 2 == 1 { "-shared" } else { "-pie" };
    args.extend(["-o", &out, kind, &seed, &input]);
    common::link(&args);
});
