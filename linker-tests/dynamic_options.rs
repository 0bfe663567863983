//! Options that shape `.dynamic` and the dynamic symbol table, each linked by the linker
//! under test and by GNU ld where GNU ld has it: the programs must behave the same (an
//! audit library runs, filters take their filtee's definitions), and `readelf` must show
//! the same entries. lld's `-Bsymbolic-non-weak[-functions]` are checked against what lld's
//! manual says, GNU ld having no such option.

use crate::harness::{run, run_step, LinkerUnderTest, TempDir};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Setup {
    tmp: TempDir,
    /// `-B` directory whose `ld` is the linker under test.
    wrapper: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper(name);
        Setup { tmp, wrapper }
    }

    /// Compiles C `source` as `name.o` (position-independent).
    fn object(&self, name: &str, source: &str) -> PathBuf {
        let c = self.tmp.join(format!("{name}.c"));
        std::fs::write(&c, source).unwrap();
        let o = self.tmp.join(format!("{name}.o"));
        run_step(
            Command::new("gcc")
                .args(["-c", "-fPIC", "-O1"])
                .arg(&c)
                .arg("-o")
                .arg(&o),
        );
        o
    }

    /// Links with gcc, through the linker under test (`tested`) or GNU ld, into
    /// `tested-<out>` or `gnu-<out>`.
    fn link(&self, tested: bool, out: &str, args: &[OsString]) -> PathBuf {
        let output = self
            .tmp
            .join(format!("{}-{out}", if tested { "tested" } else { "gnu" }));
        let mut cmd = crate::harness::gcc_through(tested, &self.wrapper);
        run_step(cmd.args(args).arg("-o").arg(&output));
        output
    }

    fn run(&self, exe: &Path, lib_dir: &Path) -> String {
        let out = crate::harness::run_program(Command::new(exe).env("LD_LIBRARY_PATH", lib_dir));
        out.stdout_text() + &out.stderr_text()
    }
}

fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    items.iter().map(|a| a.as_ref().to_owned()).collect()
}

/// `readelf -dW` lines with one of `tags`, without the addresses that differ by layout.
fn dynamic_entries(file: &Path, tags: &[&str]) -> Vec<String> {
    run_step(Command::new("readelf").arg("-dW").arg(file))
        .stdout_text()
        .lines()
        .filter(|l| tags.iter().any(|t| l.contains(&format!("({t})"))))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn audit_library_runs_before_the_program() {
    let s = Setup::new("dynamic-audit");
    let audit = s.object(
        "audit",
        r#"#include <unistd.h>
           unsigned la_version(unsigned v) { write(1, "audit: la_version\n", 18); return v; }"#,
    );
    let audit_so = s.tmp.join("libaudit.so");
    run_step(
        Command::new("gcc")
            .arg("-shared")
            .arg(&audit)
            .arg("-o")
            .arg(&audit_so),
    );
    let main = s.object(
        "main",
        "#include <stdio.h>\nint main(void) { puts(\"main\"); return 0; }\n",
    );
    let mut outputs = Vec::new();
    for tested in [false, true] {
        let exe = s.link(
            tested,
            "exe",
            &args(&[&main, &format!("-Wl,--audit={}", audit_so.display())]),
        );
        assert_eq!(
            dynamic_entries(&exe, &["AUDIT"]),
            vec![format!(
                "0x000000006ffffefc (AUDIT)              Audit library: [{}]",
                audit_so.display()
            )]
        );
        outputs.push(s.run(&exe, s.tmp.path()));
    }
    assert!(
        outputs[0].starts_with("audit: la_version\n"),
        "{}",
        outputs[0]
    );
    assert_eq!(outputs[1], outputs[0]);
}

#[test]
fn filters_take_the_filtees_definitions() {
    let s = Setup::new("dynamic-filters");
    let which = |name: &str| {
        s.object(
            name,
            &format!("const char *which(void) {{ return \"{name}\"; }}\n"),
        )
    };
    let (implementation, stand_in) = (which("implementation"), which("stand_in"));
    run_step(
        Command::new("gcc")
            .args(["-shared", "-Wl,-soname,libimpl.so"])
            .arg(&implementation)
            .arg("-o")
            .arg(s.tmp.join("libimpl.so")),
    );
    let main = s.object(
        "main",
        "#include <stdio.h>\nconst char *which(void);\nint main(void) { puts(which()); return 0; }\n",
    );
    for (option, soname) in [("-f", "libaux.so"), ("-F", "libfilter.so")] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let lib = s.link(
                tested,
                soname,
                &args(&[
                    &"-shared",
                    &format!("-Wl,-soname,{soname}"),
                    &format!("-Wl,{option},libimpl.so"),
                    &stand_in,
                ]),
            );
            let dir = s.tmp.join(format!("{option}-{tested}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&lib, dir.join(soname)).unwrap();
            std::fs::copy(s.tmp.join("libimpl.so"), dir.join("libimpl.so")).unwrap();
            let exe = s.link(
                tested,
                &format!("exe{option}"),
                &args(&[&main, &dir.join(soname)]),
            );
            seen.push((
                dynamic_entries(&lib, &["FILTER", "AUXILIARY"]),
                s.run(&exe, &dir),
            ));
        }
        assert_eq!(seen[0].1, "implementation\n", "{option}: GNU ld's program");
        assert_eq!(seen[1], seen[0], "{option}");
    }
    // As GNU ld: filters are for shared libraries.
    let out = run(
        Command::new(&LinkerUnderTest::get().path)
            .args(["-f", "libimpl.so", "-o"])
            .arg(s.tmp.join("x"))
            .arg(&main),
        b"",
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out
        .stderr_text()
        .contains("-f may not be used without -shared"));
}

/// The size of `.dynamic` in entries and the number of non-NULL ones.
fn dynamic_counts(file: &Path) -> (u64, usize) {
    let sections = run_step(Command::new("readelf").arg("-SW").arg(file)).stdout_text();
    let line = sections.lines().find(|l| l.contains(" .dynamic ")).unwrap();
    let after = line.split_once(']').unwrap().1;
    let size = u64::from_str_radix(after.split_whitespace().nth(4).unwrap(), 16).unwrap();
    let tags = run_step(Command::new("readelf").arg("-dW").arg(file))
        .stdout_text()
        .lines()
        .filter(|l| l.trim_start().starts_with("0x") && !l.contains("(NULL)"))
        .count();
    (size / 16, tags)
}

#[test]
fn spare_tags_default_symver_and_globalaudit_as_gnu_ld() {
    let s = Setup::new("dynamic-spare");
    let lib = s.object(
        "lib",
        "int data_v = 3;\nint lib_f(void) { return data_v; }\n",
    );
    for extra in [
        &["-Wl,--default-symver", "-Wl,-z,globalaudit"][..],
        &["-Wl,--spare-dynamic-tags=1"][..],
        &[
            "-Wl,--spare-dynamic-tags=9",
            "-Wl,-P,dep.so",
            "-Wl,--depaudit=dep2.so",
        ][..],
    ] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let mut a = args(&[&"-shared", &"-Wl,-soname,libx.so.1", &lib]);
            a.extend(extra.iter().map(OsString::from));
            let so = s.link(tested, "libx.so", &a);
            let (slots, tags) = dynamic_counts(&so);
            let versions: Vec<String> = run_step(Command::new("readelf").arg("-VW").arg(&so))
                .stdout_text()
                .lines()
                // (Not .gnu.version's line: GNU ld also exports an absolute symbol named
                // after each version, which weld does not.)
                .filter(|l| l.contains("Name:"))
                .map(|l| l.split_once("Rev:").map_or(l, |(_, r)| r).trim().to_owned())
                .collect();
            let symbols: Vec<String> =
                run_step(Command::new("readelf").arg("--dyn-syms").arg("-W").arg(&so))
                    .stdout_text()
                    .lines()
                    .filter(|l| l.contains("lib_f") || l.contains("data_v"))
                    .map(|l| l.split_whitespace().last().unwrap().to_owned())
                    .collect();
            let mut entries = dynamic_entries(&so, &["FLAGS_1", "DEPAUDIT", "VERDEFNUM"]);
            entries.sort();
            seen.push((slots - tags as u64, entries, versions, symbols));
        }
        assert_eq!(seen[1], seen[0], "{extra:?}");
    }
    // GNU ld counts the terminating DT_NULL among the spare tags, so with 0 it can write
    // none (its .dynamic then runs into the next section); weld always ends .dynamic.
    let so = s.link(
        true,
        "libzero.so",
        &args(&[&"-shared", &lib, &"-Wl,--spare-dynamic-tags=0"]),
    );
    let (slots, tags) = dynamic_counts(&so);
    assert_eq!(slots, tags as u64 + 1);
}

#[test]
fn dynamic_list_data_keeps_data_preemptible_under_bsymbolic() {
    let s = Setup::new("dynamic-list-data");
    let lib = s.object(
        "lib",
        "int shared_data = 1;\nint shared_f(void) { return 10; }\n\
         int lib_sum(void) { return shared_data + shared_f(); }\n",
    );
    let main = s.object(
        "main",
        "#include <stdio.h>\nint shared_data = 100;\nint shared_f(void) { return 1000; }\n\
         int lib_sum(void);\nint main(void) { printf(\"%d\\n\", lib_sum()); return 0; }\n",
    );
    for flags in [
        &["-Wl,-Bsymbolic", "-Wl,--dynamic-list-data"][..],
        &["-Wl,--dynamic-list-data"][..],
        &["-Wl,-Bsymbolic-functions"][..],
    ] {
        let mut seen = Vec::new();
        for tested in [false, true] {
            let dir = s.tmp.join(format!(
                "{}-{tested}",
                flags.join("").replace(['-', ','], "")
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut a = args(&[&"-shared", &lib]);
            a.extend(flags.iter().map(OsString::from));
            let so = s.link(tested, "liblist.so", &a);
            std::fs::copy(&so, dir.join("liblist.so")).unwrap();
            let exe = s.link(tested, "exe", &args(&[&main, &dir.join("liblist.so")]));
            seen.push((
                s.run(&exe, &dir),
                dynamic_entries(&so, &["FLAGS", "SYMBOLIC"]),
            ));
        }
        assert_eq!(seen[1], seen[0], "{flags:?}");
    }
}

/// `(name@version, type, binding)` of the undefined symbols of `file`'s `.dynsym`.
fn imports(file: &Path) -> Vec<String> {
    let mut imports: Vec<String> = run_step(
        Command::new("readelf")
            .arg("--dyn-syms")
            .arg("-W")
            .arg(file),
    )
    .stdout_text()
    .lines()
    .filter(|l| l.contains(" UND ") && !l.trim_end().ends_with("UND"))
    .map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        format!("{} {} {}", w[7], w[3], w[4])
    })
    .collect();
    imports.sort();
    imports
}

/// Weak references keep their binding in `.dynsym`; a symbol only an `--as-needed`
/// library that was left out defines is imported with no version and no type (crtbeginS.o's
/// weak `__cxa_finalize` in a library that uses nothing of libc), as GNU ld writes them.
#[test]
fn imports_keep_weak_binding_and_dropped_libraries_give_no_version() {
    let s = Setup::new("dynamic-imports");
    let plain = s.object("plain", "int plain(int x) { return x + 1; }\n");
    let main = s.object(
        "main",
        "#include <stdio.h>\n#include <stdlib.h>\n__attribute__((weak)) void weak_ref(void);\n\
         int main(void) { if (weak_ref) weak_ref(); printf(\"%d\\n\", abs(-3)); return 0; }\n",
    );
    let mut seen = Vec::new();
    for tested in [false, true] {
        let lib = s.link(tested, "libplain.so", &args(&[&"-shared", &plain]));
        let exe = s.link(tested, "exe", &args(&[&main]));
        // (Of the executable, the imports from libc: GNU ld leaves an executable's weak
        // undefined symbols that nothing defines out of .dynsym, weld lists them.)
        let from_libc: Vec<String> = imports(&exe)
            .into_iter()
            .filter(|i| i.contains('@'))
            .collect();
        seen.push((imports(&lib), from_libc, s.run(&exe, s.tmp.path())));
    }
    assert!(
        seen[0].0.iter().any(|i| i == "__cxa_finalize NOTYPE WEAK"),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0]);
}

/// A dynamic executable imports its undefined weak symbols where it reaches them through
/// the GOT (a PIE's calls too), as GNU ld does on x86-64, so that a library loaded at run
/// time defines them; `-z nodynamic-undefined-weak` resolves them to 0.
#[test]
fn undefined_weak_symbols_are_imported_as_gnu_ld_imports_them() {
    let s = Setup::new("dynamic-undefined-weak");
    let preload_c = s.tmp.join("preload.c");
    std::fs::write(
        &preload_c,
        "#include <stdio.h>\nvoid weak_hook(void) { puts(\"hook from the preloaded library\"); }\n",
    )
    .unwrap();
    let preload = s.tmp.join("libpreload.so");
    run_step(
        Command::new("gcc")
            .args(["-shared", "-fPIC"])
            .arg(&preload_c)
            .arg("-o")
            .arg(&preload),
    );
    let source = s.tmp.join("main.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n__attribute__((weak)) void weak_hook(void);\n\
         void (*const direct)(void) = weak_hook;\nvoid (*pointer)(void) = weak_hook;\n\
         int main(void) { if (weak_hook) weak_hook(); else puts(\"no hook\");\n\
         printf(\"direct %s\\n\", direct ? \"set\" : \"null\");\n\
         printf(\"pointer %d\\n\", pointer == weak_hook); return 0; }\n",
    )
    .unwrap();
    // (-fPIE code in a non-PIE program: the GOT says the hook is there, and the call must
    // go through the PLT to it; with --as-needed, the library that defines a weakly
    // referenced symbol is dropped and its symbols undone, as GNU ld does.)
    for (cflag, lflags) in [
        ("-fPIE", &["-pie"][..]),
        ("-fPIC", &["-pie"][..]),
        ("-fno-pie", &["-no-pie"][..]),
        ("-fPIE", &["-no-pie"][..]),
        ("-fPIE", &["-pie", "-Wl,-z,nodynamic-undefined-weak"][..]),
        (
            "-fno-pie",
            &[
                "-no-pie",
                "-Wl,--as-needed",
                "{preload}",
                "-Wl,--no-as-needed",
            ][..],
        ),
        (
            "-fPIE",
            &["-pie", "-Wl,--as-needed", "{preload}", "-Wl,--no-as-needed"][..],
        ),
    ] {
        let object = s.tmp.join(format!("main{cflag}.o"));
        run_step(
            Command::new("gcc")
                .args(["-c", "-O1", cflag])
                .arg(&source)
                .arg("-o")
                .arg(&object),
        );
        let mut seen = Vec::new();
        for tested in [false, true] {
            let mut a = args(&[&object]);
            a.extend(lflags.iter().map(|f| match *f {
                "{preload}" => preload.clone().into_os_string(),
                f => OsString::from(f),
            }));
            let exe = s.link(tested, "exe", &a);
            let out = run(
                Command::new(&exe).env("LD_PRELOAD", &preload),
                b"",
                Duration::from_secs(10),
            )
            .unwrap();
            // (Non-PIC code that also takes the address directly: GNU ld resolves the
            // symbol to 0 everywhere and imports nothing; weld keeps the call's PLT
            // import, and the program behaves the same. Only the behaviour is compared.)
            let imported = if cflag == "-fno-pie" {
                Vec::new()
            } else {
                imports(&exe)
            };
            seen.push((out.stdout_text(), imported));
        }
        assert_eq!(seen[1], seen[0], "{cflag} {lflags:?}");
        if cflag == "-fPIE" && lflags == ["-pie"] {
            assert!(
                seen[0].0.contains("hook from the preloaded library"),
                "{:?}",
                seen[0]
            );
        }
    }
}

#[test]
fn bsymbolic_non_weak_binds_only_strong_definitions() {
    let s = Setup::new("dynamic-non-weak");
    let lib = s.object(
        "lib",
        "int strong_f(void) { return 1; }\n\
         __attribute__((weak)) int weak_f(void) { return 2; }\n\
         int strong_d = 4;\n\
         __attribute__((weak)) int weak_d = 8;\n\
         int lib_sum(void) { return strong_f() + weak_f() + strong_d + weak_d; }\n",
    );
    let main = s.object(
        "main",
        "#include <stdio.h>\nint strong_f(void) { return 16; }\nint weak_f(void) { return 32; }\n\
         int strong_d = 64;\nint weak_d = 128;\n\
         int lib_sum(void);\nint main(void) { printf(\"%d\\n\", lib_sum()); return 0; }\n",
    );
    // lld's manual: -Bsymbolic-non-weak-functions binds the library's strong functions
    // to its own definitions; -Bsymbolic-non-weak its strong definitions of any kind.
    for (flag, expected) in [
        ("-Wl,-Bsymbolic-non-weak-functions", 1 + 32 + 64 + 128),
        ("-Wl,-Bsymbolic-non-weak", 1 + 32 + 4 + 128),
        ("-Wl,-Bno-symbolic", 16 + 32 + 64 + 128),
    ] {
        let dir = s.tmp.join(flag.trim_start_matches("-Wl,-"));
        std::fs::create_dir_all(&dir).unwrap();
        let so = s.link(true, "libnw.so", &args(&[&"-shared", &flag, &lib]));
        std::fs::copy(&so, dir.join("libnw.so")).unwrap();
        let exe = s.link(true, "exe", &args(&[&main, &dir.join("libnw.so")]));
        assert_eq!(s.run(&exe, &dir), format!("{expected}\n"), "{flag}");
        assert!(
            dynamic_entries(&so, &["SYMBOLIC"]).is_empty(),
            "{flag}: no DT_SYMBOLIC"
        );
    }
}

/// A pointer in a read-only section of position-independent output (hand-written assembly
/// puts one in `.rodata`): as GNU ld, the output gets DT_TEXTREL and DF_TEXTREL with GNU
/// ld's two warnings, and the program runs (weld wrote neither and the loader's write into
/// the read-only page crashed it); with `-z text` both linkers refuse it.
#[test]
fn text_relocations_as_gnu_ld() {
    let s = Setup::new("dynamic-textrel");
    let asm = s.tmp.join("table.s");
    std::fs::write(
        &asm,
        "    .section .rodata.t,\"a\"\n    .p2align 3\n    .globl table\ntable: .quad target\n\
         \x20   .data\n    .globl target\ntarget: .quad 42\n    .text\n    .globl get\n\
         get: mov table(%rip), %rax\n    mov (%rax), %rax\n    ret\n\
         \x20   .section .note.GNU-stack,\"\",@progbits\n",
    )
    .unwrap();
    let table = s.tmp.join("table.o");
    run_step(Command::new("as").arg(&asm).arg("-o").arg(&table));
    let main = s.object(
        "main",
        "#include <stdio.h>\nlong get(void);\nint main(void) { printf(\"%ld\\n\", get()); return 0; }\n",
    );
    let warnings = |tested: bool, extra: &[&str]| {
        let out = s
            .tmp
            .join(format!("{}-textrel", if tested { "tested" } else { "gnu" }));
        let mut cmd = crate::harness::gcc_through(tested, &s.wrapper);
        cmd.arg("-pie")
            .arg(&main)
            .arg(&table)
            .args(extra)
            .arg("-o")
            .arg(&out);
        let outcome = run(&mut cmd, b"", Duration::from_secs(60)).unwrap();
        let said: Vec<String> = outcome
            .stderr_text()
            .lines()
            .filter_map(|l| {
                let l = l
                    .split_once("warning: ")
                    .or_else(|| l.split_once("error: "))?
                    .1;
                // (weld names the object after "warning:", GNU ld before it.)
                let object = format!("{}: ", table.display());
                Some(l.trim_start_matches(object.as_str()).to_owned())
            })
            .collect();
        (outcome.status.success(), said, out)
    };
    let (gnu_ok, gnu_said, gnu) = warnings(false, &[]);
    let (ok, said, tested) = warnings(true, &[]);
    assert!(gnu_ok && ok);
    assert_eq!(said, gnu_said);
    assert!(
        said.iter().any(|w| w == "creating DT_TEXTREL in a PIE"),
        "{said:?}"
    );
    for exe in [&gnu, &tested] {
        assert_eq!(s.run(exe, s.tmp.path()), "42\n");
        let tags = dynamic_entries(exe, &["TEXTREL", "FLAGS"]);
        assert!(tags.iter().any(|t| t.contains("(TEXTREL)")), "{tags:?}");
        assert!(
            tags.iter()
                .any(|t| t.contains("(FLAGS)") && t.contains("TEXTREL")),
            "{tags:?}"
        );
    }
    // -z text: an error in both.
    let (gnu_ok, _, _) = warnings(false, &["-Wl,-z,text"]);
    let (ok, said, _) = warnings(true, &["-Wl,-z,text"]);
    assert!(!gnu_ok && !ok);
    assert!(
        said.iter()
            .any(|w| w == "read-only segment has dynamic relocations"),
        "{said:?}"
    );
}
