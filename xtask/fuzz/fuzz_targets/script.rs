//! Fuzzed script text: as an input linker script (`GROUP`, `INPUT`, `AS_NEEDED`, ...), a
//! version script, a dynamic list or a `-T` script, chosen by the first byte.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let script = common::input("fuzz.ld", text);
    let seed = common::seed("main.o");
    let seed = seed.to_string_lossy();
    let out = common::output();
    let mut args: Vec<&str> = common::COMMON.to_vec();
    args.extend(["-o", &out, &seed]);
    match mode % 4 {
        0 => args.extend(["-static", &script]),
        1 => args.extend(["-shared", "--version-script", &script]),
        2 => args.extend(["-pie", "--dynamic-list", &script]),
        _ => args.extend(["-static", "-T", &script]),
    }
    common::link(&args);
});
