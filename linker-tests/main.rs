//! Integration tests: link real programs with the linker under test and with GNU ld, run both,
//! and require that they behave the same.
//!
//! # Fixtures
//!
//! A fixture is a source file in `fixtures/` (C `.c`, C++ `.cc`/`.cpp`, assembly `.s`/`.S`)
//! listed in the `fixtures!` invocation below. It is a real program that prints what it
//! computes, so a wrong link shows up as different output or a crash. Lines starting with
//! `//#` carry directives (gas treats `//` at the start of a line as a comment too). Values
//! are split at whitespace; there is no quoting. Directives may repeat, adding to the list:
//!
//! | directive | meaning |
//! |---|---|
//! | `//#Files: a.c b.c` | more sources in `fixtures/`, compiled and linked after the fixture, in order |
//! | `//#Modes: static static-pie` | which executables to link; both when absent. A mode not listed is linked but not run: both linkers must agree whether it links (e.g. both refuse R_X86_64_32 in a PIE) |
//! | `//#CompileArgs: -O2 -fcommon` | added to every compilation of the fixture's sources |
//! | `//#LinkArgs: -pthread -Wl,--gc-sections` | added to both links, after the objects |
//! | `//#Archive: libfoo.a = a.c b.c` | compile these sources and `ar rcs` them into `libfoo.a` |
//! | `//#RunArgs: x y` | arguments of the linked program |
//! | `//#Stdin: text` | a line (plus newline) of the program's standard input |
//! | `//#ExpectSym: name` | `nm` of the linked executable must list `name` |
//! | `//#NoSym: name` | `nm` of the linked executable must not list `name` |
//!
//! An archive goes after the objects unless the link args place it: `{libfoo.a}` in
//! `LinkArgs` expands to its path, e.g.
//! `//#LinkArgs: -Wl,--start-group {liba.a} {libb.a} -Wl,--end-group`.
//!
//! # What a fixture test does
//!
//! For each fixture and each mode (`fixtures::<name>::static_exe` and `::static_pie`):
//! compile every source once with gcc/g++ `-c` and the distribution's defaults (Debian's gcc
//! makes PIE code, which both modes can link), build the archives, then link twice with the
//! same driver, objects and arguments: with `-B<dir>/`, where `<dir>/ld` is a wrapper script
//! that logs its arguments and runs the linker under test, and without it (the system GNU
//! ld, the reference). The test fails if the wrapper never ran, if either link fails, or if the
//! programs differ in exit status, stdout or stderr; the failure message shows both link
//! commands, the link output and both programs' output. C++ fixtures link with g++.
//!
//! # Other tests
//!
//! `bad_input` calls the linker directly on inputs it must refuse (unknown option, truncated
//! object, corrupt archive, foreign architecture, undefined and duplicate symbols) and checks the
//! exit status, the error messages and that no output is left behind. `directives` tests its
//! parser, and `fixtures::every_fixture_file_is_used` keeps `fixtures/` and the list below in step.
//! `output_file` links over an existing output (same bytes as a new file; a running program
//! and a shared library get a new file).
//!
//! # Environment
//!
//! - `WELD_TEST_LINKER=/usr/bin/ld` puts another linker in weld's place. With GNU ld this
//!   validates the harness and the fixtures; the bad-input tests then check only what every
//!   linker must do (exit 1, no output, name the culprit), not weld's wording.
//! - `WELD_TEST_KEEP=1` keeps every test's directory under
//!   `$CARGO_TARGET_TMPDIR/linker-tests/` (directories of failing tests are always kept).

mod bad_input;
mod crel;
mod debug_info;
mod determinism;
mod directives;
mod dynamic_options;
mod emit_relocs;
mod harness;
mod icf;
mod incremental;
mod lto;
mod options;
mod output_file;
mod output_nodes;
mod properties;
mod relocatable;
mod relr;
mod rust;
mod scripts;
mod shared_undefined;
mod tidy;

/// Declares the fixtures: one module per fixture holding one test per mode.
macro_rules! fixtures {
    ($($name:ident => $file:literal,)*) => {
        /// Every fixture file with tests; checked against `fixtures/` by a tidy test.
        const FIXTURES: &[&str] = &[$($file),*];

        $(
            mod $name {
                use crate::directives::Mode;
                use crate::harness::check_fixture;

                #[test]
                fn static_exe() {
                    check_fixture($file, Mode::Static);
                }

                #[test]
                fn static_pie() {
                    check_fixture($file, Mode::StaticPie);
                }

                #[test]
                fn pie() {
                    check_fixture($file, Mode::Pie);
                }

                #[test]
                fn no_pie() {
                    check_fixture($file, Mode::NoPie);
                }
            }
        )*
    };
}

mod fixtures {
    fixtures! {
        hello => "hello.c",
        lto => "lto.c",
        lto_fat => "lto_fat.c",
        lto_cxx => "lto_cxx.cc",
        symbols => "symbols.c",
        tls => "tls.c",
        tls_pic => "tls_pic.c",
        tls_gnu2 => "tls_gnu2.c",
        ifunc => "ifunc.c",
        ctors => "ctors.c",
        cxx => "cxx.cc",
        cxx_thread => "cxx_thread.cc",
        archives => "archives.c",
        start_stop => "start_stop.c",
        gc_sections => "gc_sections.c",
        relocs => "relocs.s",
        relocs_nopie => "relocs_nopie.s",
        shlib => "shlib.c",
        cxx_shlib => "cxx_shlib.cc",
        dlopen => "dlopen.c",
        symver => "symver.c",
        tlsdesc_shlib => "tlsdesc_shlib.c",
        wrap => "wrap.c",
        dynamic_list => "dynamic_list.c",
        defsym => "defsym.c",
        gc_debug => "gc_debug.c",
        large_model => "large_model.c",
        large_model_shlib => "large_model_shlib.c",
        large_model_tls => "large_model_tls.c",
        unique_symbols => "unique_symbols.cc",
        nested_functions => "nested_functions.c",
        export_dynamic_symbol => "export_dynamic_symbol.c",
        export_dynamic_symbol_shlib => "export_dynamic_symbol_shlib.c",
        interpose => "interpose.c",
        cet => "cet.c",
        large_bss => "large_bss.c",
        cet_shlib => "cet_shlib.c",
    }

    /// Every file in `fixtures/` is a fixture with tests, a source some fixture names in
    /// `Files`/`Archive`, or a header; and every fixture's directives parse.
    #[test]
    fn every_fixture_file_is_used() {
        use crate::directives::{fixtures_dir, Fixture};
        let mut used: Vec<String> = Vec::new();
        for file_name in FIXTURES {
            used.extend(Fixture::load(file_name).all_sources().map(str::to_owned));
        }
        let mut unused = Vec::new();
        for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                continue; // fixtures/rust holds the Rust tests' sources (linker-tests/rust.rs)
            }
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let is_header = file_name.ends_with(".h") || file_name.ends_with(".hh");
            if !is_header && !used.contains(&file_name) {
                unused.push(file_name);
            }
        }
        assert!(
            unused.is_empty(),
            "files in fixtures/ that no test uses (add them to `fixtures!` in linker-tests/main.rs \
             or to a fixture's //#Files): {unused:?}"
        );
    }
}
