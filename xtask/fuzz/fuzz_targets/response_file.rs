//! A fuzzed `@response` file, expanded and parsed as a command line (not linked: its
//! arguments could name any output).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::input("args.rsp", data);
    let _ = weld::args::parse(&[format!("@{file}")]);
});
