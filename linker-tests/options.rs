//! The README's option table is the contract of the command line: every row's arguments
//! are given to weld and must be accepted, warned about or refused as the row says, and
//! every option `args.rs` parses must have a row. What each working option does is tested
//! where its behaviour is (here for the diagnostics options, elsewhere for the rest).

use crate::harness::{run, run_step, write_ld_wrapper, LinkerUnderTest, Outcome, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Writes `dir/name.c` and compiles it with `gcc -c flags` into `dir/name.o`.
fn compile_c(dir: &Path, name: &str, source: &str, flags: &[&str]) -> std::path::PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let object = dir.join(format!("{name}.o"));
    run_step(
        Command::new("gcc")
            .arg("-c")
            .args(flags)
            .arg(&c)
            .arg("-o")
            .arg(&object),
    );
    object
}

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// (arguments, status) of each row of the README's option table.
fn table() -> Vec<(Vec<String>, String)> {
    let readme = repo_file("README.md");
    let start = readme
        .find("<!-- options-table")
        .expect("README has no option table");
    readme[start..]
        .lines()
        .skip(3) // the marker, the header, the separator
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let args = cells[1].trim_matches('`');
            let args = args.split_whitespace().map(String::from).collect();
            (args, cells[2].to_string())
        })
        .collect()
}

fn weld(args: &[String]) -> Outcome {
    let linker = LinkerUnderTest::get();
    run(
        Command::new(&linker.path).args(args).arg("--version"),
        b"",
        Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn every_row_of_the_option_table_holds() {
    if !LinkerUnderTest::get().is_weld {
        return; // The table is weld's.
    }
    let rows = table();
    assert!(rows.len() > 100, "only {} rows read", rows.len());
    let mut wrong = Vec::new();
    for (args, status) in &rows {
        let outcome = weld(args);
        let stderr = outcome.stderr_text();
        let ok = match status.as_str() {
            "works" | "no-op" => outcome.status.success() && stderr.is_empty(),
            "warns" => outcome.status.success() && stderr.contains("weld: warning:"),
            "refused" => outcome.status.code() == Some(1) && stderr.contains("not supported"),
            other => panic!("unknown status {other:?} for {args:?}"),
        };
        if !ok {
            wrong.push(format!("{args:?} ({status}): {}", outcome.describe()));
        }
    }
    assert!(
        wrong.is_empty(),
        "rows that do not hold:\n{}",
        wrong.join("\n")
    );
}

/// The names in `args.rs`'s option matches, by the indentation of their match arms.
fn parsed_names(source: &str, function: &str, indents: &[usize]) -> Vec<String> {
    let start = source.find(function).unwrap();
    let body = &source[start..];
    let end = body.find("\n    }\n").unwrap();
    let mut names = Vec::new();
    for line in body[..end].lines() {
        let indent = line.len() - line.trim_start().len();
        let is_arm = line.trim_start().starts_with("| \"")
            || line.contains("\" =>")
            || line.contains("\" |");
        let text = line.trim_start().trim_start_matches("| ");
        if !indents.contains(&indent) || !text.starts_with('"') || !is_arm {
            continue;
        }
        for part in text.split('|') {
            let part = part.trim();
            if let Some(name) = part.strip_prefix('"').and_then(|p| p.split('"').next()) {
                names.push(name.to_string());
            }
            if !part.starts_with('"') {
                break;
            }
        }
    }
    names
}

#[test]
fn every_parsed_option_has_a_row() {
    let args_rs = repo_file("src/args.rs");
    let readme = repo_file("README.md");
    let start = readme.find("<!-- options-table").unwrap();
    let table: String = readme[start..]
        .lines()
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mentioned = |name: &str| {
        let bounded = |text: &str| {
            table.match_indices(text).any(|(i, _)| {
                let after = table[i + text.len()..].chars().next().unwrap_or(' ');
                !(after.is_alphanumeric() || after == '-' || after == '_')
            })
        };
        bounded(&format!("--{name}")) || bounded(&format!("-{name}"))
    };
    let mut missing = Vec::new();
    for name in parsed_names(&args_rs, "fn long(", &[12]) {
        if name != "(" && name != ")" && !mentioned(&name) {
            missing.push(format!("--{name}"));
        }
    }
    for name in parsed_names(&args_rs, "fn z_option(", &[12, 16]) {
        if !table.contains(&format!("-z {name}")) {
            missing.push(format!("-z {name}"));
        }
    }
    for list in [
        "NO_OP_Z_KEYWORDS",
        "PROPERTY_Z_KEYWORDS",
        "PROPERTY_Z_KEYWORDS_WITH_VALUE",
    ] {
        let start = args_rs.find(&format!("const {list}:")).unwrap();
        let end = start + args_rs[start..].find("];").unwrap();
        for name in args_rs[start..end].split('"').skip(1).step_by(2) {
            if !table.contains(&format!("-z {name}")) {
                missing.push(format!("-z {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options parsed but not in the README's table: {missing:?}"
    );
}

/// A small program with an unused function in its own section, linked by gcc through the
/// linker under test with `extra` arguments.
fn link_gc_program(tmp: &TempDir, linker: &Path, out: &str, extra: &[&str]) -> Outcome {
    let wrapper = tmp.join(format!("ld-{out}"));
    write_ld_wrapper(&wrapper, linker);
    let mut cmd = Command::new("gcc");
    cmd.arg(format!("-B{}/", wrapper.display()))
        .args(["main.o", "-L.", "-lparts", "-o", out])
        .args(extra.iter().map(|a| format!("-Wl,{a}")))
        .current_dir(tmp.path());
    run(&mut cmd, b"", Duration::from_secs(60)).unwrap()
}

fn gc_fixture(label: &str) -> TempDir {
    let tmp = TempDir::new(label);
    std::fs::write(
        tmp.join("parts.c"),
        "int used(void) { return 7; }\nint unused(void) { return 8; }\nint unused_data = 3;\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("main.c"),
        "int used(void);\nint main(void) { return used() == 7 ? 0 : 1; }\n",
    )
    .unwrap();
    for name in ["parts.c", "main.c"] {
        run_step(
            Command::new("gcc")
                .args(["-c", "-ffunction-sections", "-fdata-sections", name])
                .current_dir(tmp.path()),
        );
    }
    run_step(
        Command::new("ar")
            .args(["rcs", "libparts.a", "parts.o"])
            .current_dir(tmp.path()),
    );
    tmp
}

/// Lines of `text` that mention `needle`, with the linker's name prefix taken off.
fn lines_with(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split_once(": ").map_or(l, |(_, rest)| rest).to_string())
        .collect()
}

/// `--print-gc-sections`, `-y` and `-t` print what GNU ld prints for the same link.
#[test]
fn diagnostics_options_print_as_gnu_ld() {
    let tmp = gc_fixture("options-diagnostics");
    let test_linker = LinkerUnderTest::get().path;
    let gnu = Path::new("/usr/bin/ld");
    let args = ["--gc-sections", "--print-gc-sections", "-y", "used", "-t"];
    let ours = link_gc_program(&tmp, &test_linker, "ours", &args);
    let theirs = link_gc_program(&tmp, gnu, "theirs", &args);
    assert!(ours.status.success(), "{}", ours.describe());
    assert!(theirs.status.success(), "{}", theirs.describe());
    for needle in [
        "removing unused section",
        ": definition of used",
        ": reference to used",
    ] {
        assert_eq!(
            lines_with(&ours.stderr_text(), needle),
            lines_with(&theirs.stderr_text(), needle),
            "{needle}"
        );
    }
    assert!(!lines_with(&ours.stderr_text(), "removing unused section").is_empty());
    // -t: the same files, in the same order, up to GNU ld's second pass over libraries.
    let files = |o: &Outcome| -> Vec<String> {
        let mut seen = Vec::new();
        for line in o.stdout_text().lines() {
            if !seen.iter().any(|s: &String| s == line) {
                seen.push(line.to_string());
            }
        }
        seen
    };
    let (our_files, their_files) = (files(&ours), files(&theirs));
    for file in ["main.o", "./libparts.a"] {
        assert!(
            our_files.iter().any(|f| f == file),
            "-t lacks {file}: {our_files:?}"
        );
        assert!(their_files.iter().any(|f| f == file));
    }
    assert_eq!(
        Command::new(tmp.join("ours")).status().unwrap().code(),
        Some(0)
    );
}

#[test]
fn dependency_file_stack_size_and_fatal_warnings() {
    let tmp = gc_fixture("options-depfile");
    let linker = LinkerUnderTest::get().path;
    let ours = link_gc_program(
        &tmp,
        &linker,
        "prog",
        &["--dependency-file=prog.d", "-z", "stack-size=0x300000"],
    );
    assert!(ours.status.success(), "{}", ours.describe());
    if LinkerUnderTest::get().is_weld {
        let deps = std::fs::read_to_string(tmp.join("prog.d")).unwrap();
        assert!(deps.starts_with("prog: \\\n"), "{deps}");
        assert!(
            deps.contains("  main.o \\\n") && deps.contains("\n./libparts.a:\n"),
            "{deps}"
        );
    }
    let headers = run_step(Command::new("readelf").args(["-lW"]).arg(tmp.join("prog")));
    let stack = lines_with(&headers.stdout_text(), "GNU_STACK");
    assert!(
        stack.iter().any(|l| l.contains("0x300000")),
        "PT_GNU_STACK does not have the size: {stack:?}"
    );
    // A warning with --fatal-warnings fails the link and leaves no output.
    let failed = link_gc_program(
        &tmp,
        &linker,
        "warned",
        &["-z", "no-such-keyword", "--fatal-warnings"],
    );
    assert!(!failed.status.success(), "{}", failed.describe());
    assert!(!tmp.join("warned").exists());
    // In incremental mode too, and every time, for a warning layout prints (an object
    // without .note.GNU-stack): no state lets a second run pass without it.
    std::fs::write(tmp.join("nonote.s"), ".globl helper\nhelper:\n  ret\n").unwrap();
    run_step(
        Command::new("gcc")
            .args(["-c", "nonote.s"])
            .current_dir(tmp.path()),
    );
    for round in 0..2 {
        let mut cmd = Command::new("gcc");
        cmd.arg(format!("-B{}/", tmp.join("ld-warned").display()))
            .args(["main.o", "nonote.o", "-L.", "-lparts", "-o", "warned-incr"])
            .arg("-Wl,--fatal-warnings")
            .env("WELD_INCREMENTAL", "1")
            .current_dir(tmp.path());
        let outcome = run(&mut cmd, b"", Duration::from_secs(60)).unwrap();
        assert!(
            !outcome.status.success(),
            "round {round}: {}",
            outcome.describe()
        );
        assert!(!tmp.join("warned-incr").exists());
    }
}

/// `-T` scripts are read, never ignored: INPUT works; a syntax error names the file, line
/// and column; what weld does not do (INCLUDE inside an output section) is an error naming
/// the place.
#[test]
fn linker_script_is_read_or_refused() {
    if !LinkerUnderTest::get().is_weld {
        return; // The messages are weld's.
    }
    let tmp = gc_fixture("options-script");
    std::fs::write(tmp.join("inputs.ld"), "INPUT(main.o)\n").unwrap();
    std::fs::write(
        tmp.join("broken.ld"),
        "SECTIONS\n{\n  .text : { *(.text) }\n  .data : { *(.data) } > \n}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("insert.ld"),
        "SECTIONS { .a : { INCLUDE more.ld } }\n",
    )
    .unwrap();
    let linker = LinkerUnderTest::get().path;
    let wrapper = tmp.join("ld");
    write_ld_wrapper(&wrapper, &linker);
    let link = |script: &str| {
        let mut cmd = Command::new("gcc");
        cmd.arg(format!("-B{}/", wrapper.display()))
            .arg(format!("-Wl,-T,{script}"))
            .args(["-L.", "-lparts", "-o", "prog"])
            .current_dir(tmp.path());
        run(&mut cmd, b"", Duration::from_secs(60)).unwrap()
    };
    let ok = link("inputs.ld");
    assert!(ok.status.success(), "{}", ok.describe());
    assert_eq!(
        Command::new(tmp.join("prog")).status().unwrap().code(),
        Some(0)
    );
    let broken = link("broken.ld");
    assert!(!broken.status.success());
    assert!(
        broken
            .stderr_text()
            .contains("broken.ld:5:1: expected a memory region, found '}'"),
        "{}",
        broken.describe()
    );
    let insert = link("insert.ld");
    assert!(!insert.status.success());
    assert!(
        insert
            .stderr_text()
            .contains("insert.ld:1:19: INCLUDE is not supported by weld"),
        "{}",
        insert.describe()
    );
}

/// What build tools read from the linker: libtool builds shared libraries only when
/// `--help` has GNU ld's `supported targets: ... elf` line, and takes a linker whose `-v`
/// says GNU for GNU ld; `--verbose` prints GNU ld's built-in search directories in a script
/// that weld reads back.
#[test]
fn help_version_and_verbose_as_tools_read_them() {
    let linker = LinkerUnderTest::get().path;
    let help = run_step(Command::new(&linker).arg("--help"));
    // libtool.m4, _LT_LINKER_SHLIBS: `$LD --help 2>&1 | $GREP ': supported targets:.* elf'`
    assert!(
        help.stdout_text()
            .lines()
            .any(|l| l.contains(": supported targets:") && l.contains(" elf")),
        "{}",
        help.stdout_text()
    );
    let version = run_step(Command::new(&linker).arg("-v"));
    assert!(version.stdout_text().contains("GNU"));
    let verbose = run_step(Command::new(&linker).arg("--verbose"));
    let text = verbose.stdout_text();
    assert!(
        text.contains("SEARCH_DIR(\"=/usr/lib/x86_64-linux-gnu\");"),
        "{text}"
    );
    if !LinkerUnderTest::get().is_weld {
        return;
    }
    // The script between the rules links a program as the default does.
    let script: String = text
        .split("==================================================")
        .nth(1)
        .unwrap()
        .to_string();
    let tmp = gc_fixture("options-verbose-script");
    std::fs::write(tmp.join("default.ld"), script).unwrap();
    let outcome = link_gc_program(&tmp, &linker, "prog", &["-T", "default.ld"]);
    assert!(outcome.status.success(), "{}", outcome.describe());
    assert_eq!(
        Command::new(tmp.join("prog")).status().unwrap().code(),
        Some(0)
    );
    // Without -L, libraries are found in GNU ld's built-in directories (not with -nostdlib).
    let direct = |extra: &[&str]| {
        let mut cmd = Command::new(&linker);
        cmd.args([
            "--no-crt-detect",
            "-e",
            "main",
            "-o",
            "direct",
            "main.o",
            "parts.o",
            "-lc",
        ])
        .args(extra)
        .current_dir(tmp.path());
        run(&mut cmd, b"", Duration::from_secs(60)).unwrap()
    };
    let found = direct(&[]);
    assert!(found.status.success(), "{}", found.describe());
    let not_found = direct(&["-nostdlib"]);
    assert!(
        not_found.stderr_text().contains("cannot find -lc"),
        "{}",
        not_found.describe()
    );
}

/// `-Map`: every output section with the address and size readelf shows, the kept input
/// sections of the program's own files under them, the symbols with the addresses nm
/// shows, and the sections --gc-sections dropped.
#[test]
fn map_file_matches_the_output() {
    let tmp = gc_fixture("options-map");
    let linker = LinkerUnderTest::get().path;
    let outcome = link_gc_program(&tmp, &linker, "prog", &["-Map=prog.map", "--gc-sections"]);
    assert!(outcome.status.success(), "{}", outcome.describe());
    let map = std::fs::read_to_string(tmp.join("prog.map")).unwrap();
    let (discarded, memory_map) = map.split_once("Linker script and memory map").unwrap();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    // Output sections: `NAME 0xADDR 0xSIZE` at the start of a line (a long name alone).
    let headers = run_step(Command::new("readelf").arg("-SW").arg(tmp.join("prog")));
    let mut checked = 0;
    let lines: Vec<&str> = memory_map.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('.') {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 1 {
            words.extend(lines[i + 1].split_whitespace());
        }
        let parse = |w: Option<&&str>| {
            w.and_then(|w| w.strip_prefix("0x"))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        };
        // (GNU ld's maps also have script lines starting with '.'.)
        let (Some(addr), Some(size)) = (parse(words.get(1)), parse(words.get(2))) else {
            continue;
        };
        let name = words[0];
        if addr == 0 || size == 0 {
            continue; // not loaded (debug, .comment, .symtab), or empty (GNU ld lists those)
        }
        let shown = headers.stdout_text().lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(5).any(|w| {
                w[0] == name
                    && u64::from_str_radix(w[2], 16).ok() == Some(addr)
                    && u64::from_str_radix(w[4], 16).ok() == Some(size)
            })
        });
        assert!(
            shown,
            "{name} at {addr:#x}, {size:#x} bytes is not what readelf shows"
        );
        checked += 1;
    }
    assert!(
        checked >= 8,
        "only {checked} output sections in the map:\n{map}"
    );
    // Symbols: `                0xADDR                NAME`.
    let nm = run_step(Command::new("nm").arg(tmp.join("prog"))).stdout_text();
    let mut symbols = 0;
    for line in memory_map
        .lines()
        .filter(|l| l.starts_with("                0x"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        // (A long section name's second line has an address and a size.)
        // (GNU ld also lists PLT entries as `name@@VERSION`.)
        if words.len() != 2 || words[1].starts_with("0x") || words[1].contains('@') {
            continue;
        }
        let (addr, name) = (hex(words[0]), words[1]);
        let in_nm = nm.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 3 && w[2] == name && u64::from_str_radix(w[0], 16).ok() == Some(addr)
        });
        assert!(in_nm, "map: {name} at {addr:#x}; nm says otherwise");
        symbols += 1;
    }
    assert!(symbols >= 3, "{map}");
    for expected in [
        " .text.main     0x",
        " .text.used     0x",
        "                0x",
    ] {
        assert!(memory_map.contains(expected), "no {expected:?} in:\n{map}");
    }
    assert!(memory_map.contains("main.o\n") && memory_map.contains("./libparts.a(parts.o)\n"));
    assert!(
        discarded.contains(" .text.unused   0x0000000000000000        0xb ./libparts.a(parts.o)"),
        "{discarded}"
    );
}

/// `--cref`: the cross-reference table GNU ld prints (standard output, or the end of the
/// map): for every symbol the program's objects define or use, the same files in the same
/// order as GNU ld's (definitions, common definitions, then references; an archive member
/// as `lib.a(member.o)`, a shared library by path).
#[test]
fn cref_table_as_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("options-cref");
    let sources = [
        ("c1", "#include <stdio.h>\nextern int shared_counter; int helper(int); int helper2(void);\nint common_thing;\nint main(void) { printf(\"%d\\n\", helper(shared_counter) + helper2()); return 0; }\n"),
        ("c2", "int shared_counter = 3; int common_thing;\nstatic int twice(int x) { return 2 * x; }\nint helper(int x) { return twice(x) + common_thing; }\n"),
        ("c3", "extern int common_thing; int shared_counter;\nint helper2(void) { return common_thing; }\n"),
    ];
    for (name, text) in sources {
        std::fs::write(tmp.join(format!("{name}.c")), text).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", "-O1", "-fcommon", &format!("{name}.c")])
                .current_dir(tmp.path()),
        );
    }
    // A C++ function: GNU ld lists it demangled (its default), sorted by that name.
    std::fs::write(
        tmp.join("c4.cc"),
        "namespace ns { int func(int x) { return x + 1; } }\n",
    )
    .unwrap();
    run_step(
        Command::new("g++")
            .args(["-c", "-O1", "c4.cc"])
            .current_dir(tmp.path()),
    );
    run_step(
        Command::new("ar")
            .args(["rcs", "libc3.a", "c3.o"])
            .current_dir(tmp.path()),
    );
    let link = |tested: bool, extra: &[&str]| {
        let out = if tested { "tested" } else { "gnu" };
        let mut cmd = crate::harness::gcc_through(tested, &wrapper);
        cmd.args(["c1.o", "c2.o", "c4.o", "libc3.a", "-Wl,--cref", "-o", out])
            .args(extra)
            .current_dir(tmp.path());
        run_step(&mut cmd).stdout_text()
    };
    // Symbol -> files, from a table's text.
    let table = |text: &str| {
        let (_, body) = text
            .split_once("Cross Reference Table\n\n")
            .expect("no table");
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        for line in body.lines().skip(1) {
            if line.is_empty() {
                continue;
            }
            let file = line.get(50..).unwrap_or("").trim().to_owned();
            if line.starts_with(' ') {
                blocks.last_mut().unwrap().1.push(file);
            } else {
                let name = line.split(' ').next().unwrap().to_owned();
                blocks.push((name, vec![file]));
            }
        }
        blocks
    };
    let gnu = table(&link(false, &[]));
    let tested = table(&link(true, &[]));
    for symbol in [
        "main",
        "helper",
        "helper2",
        "shared_counter",
        "common_thing",
        "printf",
        "ns::func(int)",
    ] {
        let find = |t: &[(String, Vec<String>)]| t.iter().find(|b| b.0 == symbol).cloned();
        assert!(find(&gnu).is_some(), "GNU ld lists no {symbol}");
        assert_eq!(find(&tested), find(&gnu), "{symbol}");
    }
    // Sorted by name, as GNU ld's.
    let names: Vec<&String> = tested.iter().map(|b| &b.0).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    // With -Map, the table ends the map and nothing is printed.
    let printed = link(true, &["-Wl,-Map=tested.map"]);
    assert!(printed.is_empty(), "{printed}");
    let map = std::fs::read_to_string(tmp.join("tested.map")).unwrap();
    assert!(map.contains("Linker script and memory map"));
    assert_eq!(table(&map), tested);
}

/// `-init`/`-fini` name the functions DT_INIT and DT_FINI call (a library's, here), as in
/// GNU ld; `-R FILE` (not a directory) is GNU ld's --just-symbols, which weld refuses.
#[test]
fn init_and_fini_functions() {
    let tmp = TempDir::new("options-init-fini");
    std::fs::write(
        tmp.join("lib.c"),
        "#include <stdio.h>\nvoid lib_start(void) { puts(\"lib start\"); }\n\
         void lib_end(void) { puts(\"lib end\"); }\nint lib_value(void) { return 7; }\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("main.c"),
        "#include <stdio.h>\nint lib_value(void);\n\
         int main(void) { printf(\"main %d\\n\", lib_value()); return 0; }\n",
    )
    .unwrap();
    let linker = LinkerUnderTest::get().path;
    let wrapper = tmp.join("ld");
    write_ld_wrapper(&wrapper, &linker);
    let mut outputs = Vec::new();
    for (dir, driver_b) in [("ours", Some(&wrapper)), ("theirs", None)] {
        std::fs::create_dir(tmp.join(dir)).unwrap();
        let mut lib = Command::new("gcc");
        if let Some(b) = driver_b {
            lib.arg(format!("-B{}/", b.display()));
        }
        lib.args([
            "-shared",
            "-fPIC",
            "lib.c",
            "-Wl,-init=lib_start,-fini=lib_end",
            "-o",
        ])
        .arg(format!("{dir}/libif.so"))
        .current_dir(tmp.path());
        run_step(&mut lib);
        run_step(
            Command::new("gcc")
                .args(["main.c", "-o"])
                .arg(format!("{dir}/prog"))
                .arg(format!("-L{dir}"))
                .args(["-lif", "-Wl,-rpath,$ORIGIN"])
                .current_dir(tmp.path()),
        );
        let out = Command::new(tmp.join(dir).join("prog")).output().unwrap();
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    assert_eq!(outputs[0], "lib start\nmain 7\nlib end\n");
    assert_eq!(outputs[0], outputs[1]);
    if LinkerUnderTest::get().is_weld {
        let refused = run(
            Command::new(&linker)
                .args(["-R", "lib.c", "main.o"])
                .current_dir(tmp.path()),
            b"",
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(
            refused.stderr_text().contains("--just-symbols"),
            "{}",
            refused.describe()
        );
    }
}

/// `-x`, `-X`, `--discard-none` and the default keep the objects' local symbols GNU ld
/// keeps: `-x` none (hidden globals stay, as locals), `-X` none of the assembler's `.L`
/// labels, the default all but those in mergeable sections (`.LC0`), `--discard-none` all.
#[test]
fn discard_options_keep_the_locals_gnu_ld_keeps() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("discard-locals");
    // -Wa,-L keeps the assembler's .L labels in the object.
    let object = compile_c(
        tmp.path(),
        "locals",
        "#include <stdio.h>\n__attribute__((noinline)) static int local_fn(int x) { for (int i = 0; i < x; i++) \
         if (i == 3) return i; return x + 1; }\n\
         __attribute__((visibility(\"hidden\"))) int hidden_fn(int x) { return local_fn(x) * 2; }\n\
         static int local_data = 5;\nint main(void) { printf(\"%d\\n\", hidden_fn(local_data)); return 0; }\n",
        &["-O1", "-Wa,-L"],
    );
    let names = |exe: &Path| -> Vec<String> {
        let mut names: Vec<String> = run_step(Command::new("nm").arg(exe))
            .stdout_text()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
            .filter(|n| n.starts_with(".L") || n.starts_with("local_") || n == "hidden_fn")
            .collect();
        names.sort();
        names
    };
    for flag in [
        "-Wl,-x",
        "-Wl,-X",
        "-Wl,--discard-none",
        "-Wl,--discard-locals",
        "-O0",
    ] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let exe = tmp.join(format!("{}{flag}", if tested { "tested" } else { "gnu" }));
            let mut cmd = crate::harness::gcc_through(tested, &wrapper);
            run_step(cmd.arg(&object).arg(flag).arg("-o").arg(&exe));
            seen.push(names(&exe));
        }
        assert_eq!(seen[1], seen[0], "{flag}");
    }
    let default = tmp.join("default");
    run_step(
        Command::new("gcc")
            .arg(format!("-B{}/", wrapper.display()))
            .arg(&object)
            .arg("-o")
            .arg(&default),
    );
    let kept = names(&default);
    assert!(kept.contains(&"local_fn".to_string()), "{kept:?}");
    // The string's label is in .rodata.str1.1, a mergeable section.
    assert!(!kept.contains(&".LC0".to_string()), "{kept:?}");
}

/// `--unresolved-symbols=ignore-all|ignore-in-object-files` and `--warn-unresolved-symbols`
/// let an object's undefined symbols pass (0; warned about with the second) where GNU ld
/// does, `--error-unresolved-symbols` restores the error; weld's programs run.
#[test]
fn unresolved_symbols_options_as_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("unresolved-symbols");
    let object = compile_c(
        tmp.path(),
        "main",
        "#include <stdio.h>\nvoid missing_fn(void);\nvoid (*pointer)(void) = missing_fn;\n\
         int main(int argc, char **argv) { if (argc > 5) missing_fn(); puts(\"ran\"); return 0; }\n",
        &["-O1"],
    );
    for flags in [
        &["-Wl,--unresolved-symbols=ignore-all"][..],
        &["-Wl,--unresolved-symbols=ignore-in-object-files"][..],
        &["-Wl,--warn-unresolved-symbols"][..],
        &[
            "-Wl,--warn-unresolved-symbols",
            "-Wl,--error-unresolved-symbols",
        ][..],
        &["-static", "-Wl,--unresolved-symbols=ignore-all"][..],
    ] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let exe = tmp.join(format!("{}{}", tested, flags.join("")));
            let link = run(
                crate::harness::gcc_through(tested, &wrapper)
                    .args(flags)
                    .arg(&object)
                    .arg("-o")
                    .arg(&exe),
                b"",
                Duration::from_secs(60),
            )
            .unwrap();
            let warned = link.stderr_text().contains("missing_fn");
            seen.push((link.status.success(), warned));
            // (GNU ld 2.40's dynamic program does not start: it makes a PLT entry with a
            // relocation of type 0 for the ignored symbol. Only weld's is run.)
            if tested && link.status.success() {
                assert_eq!(
                    run_step(&mut Command::new(&exe)).stdout_text(),
                    "ran\n",
                    "{flags:?}"
                );
            }
        }
        assert_eq!(seen[1], seen[0], "{flags:?}");
    }
}

/// `--warn-common` says what GNU ld says when a common symbol meets another common (same
/// size, larger, smaller) or a definition (before or after it).
#[test]
fn warn_common_as_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("warn-common");
    for (name, source) in [
        ("c1", "int cv;\nint main(void) { return cv; }\n"),
        ("c2", "int cv;\n"),
        ("c3", "long cv;\n"),
        ("c4", "int cv = 5;\n"),
    ] {
        std::fs::write(tmp.join(format!("{name}.c")), source).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", "-fcommon", &format!("{name}.c")])
                .current_dir(tmp.path()),
        );
    }
    // (file part, message) of each warning line, whichever linker's prefix it has.
    let warnings = |stderr: &str| -> Vec<(String, String)> {
        stderr
            .lines()
            .filter_map(|l| {
                if let Some(rest) = l.strip_prefix("weld: warning: ") {
                    let (files, message) = rest.split_once(": ")?;
                    Some((files.to_string(), message.to_string()))
                } else {
                    let (before, message) = l.split_once(": warning: ")?;
                    let files = before.rsplit_once(": ").map_or(before, |(_, f)| f);
                    Some((files.to_string(), message.to_string()))
                }
            })
            .collect()
    };
    for pair in [
        ["c1", "c2"],
        ["c1", "c3"],
        ["c3", "c1"],
        ["c1", "c4"],
        ["c4", "c1"],
    ] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let link = run(
                crate::harness::gcc_through(tested, &wrapper)
                    .args(pair.map(|p| format!("{p}.o")))
                    .args(["-Wl,--warn-common", "-o", "out"])
                    .current_dir(tmp.path()),
                b"",
                Duration::from_secs(60),
            )
            .unwrap();
            assert!(link.status.success(), "{}", link.describe());
            seen.push(warnings(&link.stderr_text()));
        }
        assert_eq!(
            seen[0].len(),
            1,
            "GNU ld's warnings for {pair:?}: {:?}",
            seen[0]
        );
        assert_eq!(seen[1], seen[0], "{pair:?}");
    }
}

/// `--why-extract=FILE` (lld's option and format): each archive member the link extracted,
/// what referred to it first and for which symbol; `--whole-archive` and `-u` named so.
#[test]
fn why_extract_lists_each_extraction() {
    if !LinkerUnderTest::get().is_weld {
        return; // GNU ld has no --why-extract.
    }
    let tmp = TempDir::new("why-extract");
    for (name, source) in [
        (
            "main",
            "int lib_a(void);\nint main(void) { return lib_a() - 2; }\n",
        ),
        (
            "a",
            "int lib_b(void);\nint lib_a(void) { return lib_b(); }\n",
        ),
        ("b", "int lib_b(void) { return 2; }\n"),
        ("c", "int lib_c(void) { return 3; }\n"),
    ] {
        std::fs::write(tmp.join(format!("{name}.c")), source).unwrap();
        run_step(
            Command::new("gcc")
                .args(["-c", &format!("{name}.c")])
                .current_dir(tmp.path()),
        );
    }
    run_step(
        Command::new("ar")
            .args(["rcs", "libw.a", "a.o", "b.o", "c.o"])
            .current_dir(tmp.path()),
    );
    let weld = LinkerUnderTest::get().path.clone();
    let table = |extra: &[&str]| {
        run_step(
            Command::new(&weld)
                .args(["-e", "main", "-o", "out", "--why-extract=why.txt", "main.o"])
                .args(extra)
                .current_dir(tmp.path()),
        );
        std::fs::read_to_string(tmp.join("why.txt")).unwrap()
    };
    assert_eq!(
        table(&["libw.a"]),
        "reference\textracted\tsymbol\nmain.o\tlibw.a(a.o)\tlib_a\nlibw.a(a.o)\tlibw.a(b.o)\tlib_b\n"
    );
    assert_eq!(
        table(&["-u", "lib_c", "libw.a"]),
        "reference\textracted\tsymbol\nmain.o\tlibw.a(a.o)\tlib_a\nlibw.a(a.o)\tlibw.a(b.o)\tlib_b\n\
         --undefined\tlibw.a(c.o)\tlib_c\n"
    );
    assert_eq!(
        table(&["--whole-archive", "libw.a"]),
        "reference\textracted\tsymbol\n--whole-archive\tlibw.a(a.o)\t\n\
         --whole-archive\tlibw.a(b.o)\t\n--whole-archive\tlibw.a(c.o)\t\n"
    );
}

/// `--reproduce=FILE.tar` (lld's): the tar holds every file the link read and a response
/// file; extracted anywhere, `weld @response.txt` in it links the same bytes (dynamic and
/// static programs; an input path longer than a tar header's name field).
#[test]
fn reproduce_tar_relinks_to_identical_bytes() {
    if !LinkerUnderTest::get().is_weld {
        return; // GNU ld has no --reproduce.
    }
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("reproduce");
    let linker = LinkerUnderTest::get();
    let deep = tmp.join(format!(
        "{0}/{0}/{0}",
        "a-directory-with-a-rather-long-name"
    ));
    std::fs::create_dir_all(&deep).unwrap();
    let object = compile_c(
        &deep,
        "main",
        "#include <stdio.h>\nint main(void) { puts(\"reproduced\"); return 0; }\n",
        &["-O1"],
    );
    for mode in ["-pie", "-static"] {
        let out = tmp.join(format!("prog{mode}"));
        let tar = tmp.join(format!("repro{mode}.tar"));
        run_step(
            crate::harness::gcc_through(true, &wrapper)
                .arg(mode)
                .arg(&object)
                .arg("-o")
                .arg(&out)
                .arg(format!("-Wl,--reproduce={}", tar.display())),
        );
        let elsewhere = tmp.join(format!("extracted{mode}"));
        std::fs::create_dir_all(&elsewhere).unwrap();
        run_step(
            Command::new("tar")
                .arg("xf")
                .arg(&tar)
                .current_dir(&elsewhere),
        );
        let root = elsewhere.join(format!("repro{mode}"));
        assert!(root.join("response.txt").is_file());
        run_step(
            Command::new(&linker.path)
                .arg("@response.txt")
                .current_dir(&root),
        );
        let relinked = root.join(format!("prog{mode}"));
        assert!(
            std::fs::read(&relinked).unwrap() == std::fs::read(&out).unwrap(),
            "{mode}: the relinked program differs"
        );
        assert_eq!(
            run_step(&mut Command::new(&relinked)).stdout_text(),
            "reproduced\n"
        );
    }
}

/// An autoconf + libtool project configured with `LD=weld` (and gcc linking through it)
/// builds its shared library: libtool takes weld for GNU ld (`--version`) and finds ELF
/// among `--help`'s supported targets, as with GNU ld; the library is weld's and the program
/// using it runs.
#[test]
fn libtool_project_builds_a_shared_library() {
    if !LinkerUnderTest::get().is_weld {
        return; // What is checked is weld's own identification.
    }
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("libtool-project");
    let linker = LinkerUnderTest::get();
    for (name, text) in [
        (
            "configure.ac",
            "AC_INIT([demo], [1.0])\nAM_INIT_AUTOMAKE([foreign])\nLT_INIT\nAC_PROG_CC\n\
             AC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n",
        ),
        (
            "Makefile.am",
            "lib_LTLIBRARIES = libdemo.la\nlibdemo_la_SOURCES = demo.c\nbin_PROGRAMS = user\n\
             user_SOURCES = user.c\nuser_LDADD = libdemo.la\n",
        ),
        ("demo.c", "int demo_twice(int x) { return 2 * x; }\n"),
        (
            "user.c",
            "#include <stdio.h>\nint demo_twice(int);\n\
             int main(void) { printf(\"%d\\n\", demo_twice(21)); return 0; }\n",
        ),
    ] {
        std::fs::write(tmp.join(name), text).unwrap();
    }
    // (.ci/run installs autoconf, automake and libtool.)
    run_step(Command::new("autoreconf").arg("-i").current_dir(tmp.path()));
    let configure = run_step(
        Command::new("./configure")
            .arg(format!("LD={}", linker.path.display()))
            .arg(format!("CC=gcc -B{}/", wrapper.display()))
            .current_dir(tmp.path()),
    )
    .stdout_text();
    for line in [
        "is GNU ld... yes",
        "supports shared libraries... yes",
        "whether to build shared libraries... yes",
    ] {
        assert!(
            configure.contains(line),
            "configure did not say `{line}`:\n{configure}"
        );
    }
    run_step(Command::new("make").current_dir(tmp.path()));
    let library = tmp.join(".libs/libdemo.so");
    let comment = run_step(
        Command::new("readelf")
            .args(["-p", ".comment"])
            .arg(&library),
    );
    assert!(
        comment.stdout_text().contains("Linker: weld"),
        "libdemo.so is not weld's"
    );
    assert_eq!(
        run_step(&mut Command::new(tmp.join("user"))).stdout_text(),
        "42\n"
    );
}

/// A missing entry symbol, as GNU ld handles it: an executable starts at `.text` with
/// GNU ld's warning (a PIE too), `-e NUMBER` is an address, a shared library without `-e`
/// has entry 0 and no warning, one with a missing `-e` symbol warns "not setting start
/// address". Same entry address and same warning as GNU ld in each case.
#[test]
fn missing_entry_symbol_as_gnu_ld() {
    let tmp = TempDir::new("options-entry");
    compile_c(tmp.path(), "f", "int foo(void) { return 1; }\n", &["-O1"]);
    let linker = LinkerUnderTest::get().path;
    for case in [
        &[][..],
        &["-e", "0x401010"],
        &["-e", "nosuch"],
        &["-pie"],
        &["-shared"],
        &["-shared", "-e", "nosuch"],
        &["-shared", "-e", "foo"],
    ] {
        let link = |ld: &Path, out: &str| {
            let outcome = run(
                Command::new(ld)
                    .args(case)
                    .args(["f.o", "-o", out])
                    .current_dir(tmp.path()),
                b"",
                Duration::from_secs(60),
            )
            .unwrap();
            assert!(outcome.status.success(), "{case:?}: {}", outcome.describe());
            let header = run_step(Command::new("readelf").arg("-h").arg(tmp.join(out)));
            let entry = lines_with(&header.stdout_text(), "Entry point address");
            // The warning without the program's name.
            let warning: Vec<String> = outcome
                .stderr_text()
                .lines()
                .filter_map(|l| l.split_once("warning: ").map(|(_, w)| w.to_owned()))
                .collect();
            (entry, warning)
        };
        let gnu = link(Path::new("ld"), "gnu");
        assert_eq!(link(&linker, "tested"), gnu, "{case:?}");
    }
}
