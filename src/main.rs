//! The `weld` binary (also run as `ld` or `ld.weld`): all the work is in the library.

fn main() -> std::process::ExitCode {
    weld::main_entry()
}
