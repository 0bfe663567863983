fn main() -> std::process::ExitCode {
    weld::main_entry()
}
