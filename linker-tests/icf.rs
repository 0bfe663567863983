//! `--icf=all|safe` (identical code folding, lld's and mold's option; GNU ld has none): a
//! program linked with it must print what GNU ld's link of the same objects prints, with
//! the identical functions at one address (`nm`) and less code; functions with different
//! exception tables stay apart (folding them changes which exceptions they catch); and
//! `--icf=safe` leaves functions whose address the program takes (clang's `.llvm_addrsig`)
//! where they are, and folds nothing in objects without that table (GCC's), as lld.

use crate::harness::{run_program, run_step, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

const FOLDABLE: &str = r#"
#include <cstdio>
#include <vector>
template <typename T> T sum(const std::vector<T> &v) { T s = 0; for (auto x : v) s += x; return s; }
__attribute__((noinline)) int add_i(int a, int b) { return a + b; }
__attribute__((noinline)) int add_j(int a, int b) { return a + b; }
// Mutually recursive pairs: equal only if each assumes the other pair equal.
__attribute__((noinline)) int rec_a(int n);
__attribute__((noinline)) int rec_b(int n) { return n <= 0 ? 0 : 1 + rec_a(n - 1); }
__attribute__((noinline)) int rec_a(int n) { return n <= 0 ? 0 : 1 + rec_b(n - 1); }
__attribute__((noinline)) int rec_c(int n);
__attribute__((noinline)) int rec_d(int n) { return n <= 0 ? 0 : 1 + rec_c(n - 1); }
__attribute__((noinline)) int rec_c(int n) { return n <= 0 ? 0 : 1 + rec_d(n - 1); }
// Same code, different data: not folded.
__attribute__((noinline)) int table_a(int i) { static const int t[] = {1, 2, 3}; return t[i]; }
__attribute__((noinline)) int table_b(int i) { static const int t[] = {4, 5, 6}; return t[i]; }
int main() {
  std::vector<int> a{1, 2, 3};
  std::vector<unsigned> b{4, 5, 6};
  printf("%d %u %d %d %d %d %d %d\n", sum(a), sum(b), add_i(1, 2), add_j(3, 4), rec_a(5),
         rec_c(7), table_a(1), table_b(2));
}
"#;

const EXCEPTIONS: &str = r#"
#include <cstdio>
__attribute__((noinline)) void thrower(int k) { if (k == 1) throw 1; if (k == 2) throw 2L; }
__attribute__((noinline)) int catch_int(int k) { try { thrower(k); } catch (int) { return 10; } return 0; }
__attribute__((noinline)) int catch_long(int k) { try { thrower(k); } catch (long) { return 10; } return 0; }
int main() {
  int r = 0;
  try { r += catch_int(1); r += catch_long(2); } catch (...) { r = -1; }
  printf("%d\n", r);
}
"#;

/// For `--icf=safe`: `pick_a`/`pick_b` have their address taken, `twin_a`/`twin_b` not.
const ADDRESS_TAKEN: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int pick_a(int x) { return x * 3 + 1; }
__attribute__((noinline)) int pick_b(int x) { return x * 3 + 1; }
__attribute__((noinline)) int twin_a(int x) { return x * 5 + 2; }
__attribute__((noinline)) int twin_b(int x) { return x * 5 + 2; }
int (*volatile ptrs[2])(int) = {pick_a, pick_b};
int main(void) {
  printf("%d %d %d %d %d\n", ptrs[0](1), ptrs[1](2), twin_a(3), twin_b(4), ptrs[0] == ptrs[1]);
  return 0;
}
"#;

struct Setup {
    tmp: TempDir,
    wrapper: PathBuf,
}

impl Setup {
    fn object(&self, compiler: &str, name: &str, source: &str) -> PathBuf {
        let ext = if compiler.ends_with("++") { "cc" } else { "c" };
        let src = self.tmp.join(format!("{name}.{ext}"));
        std::fs::write(&src, source).unwrap();
        let o = self.tmp.join(format!("{name}.o"));
        run_step(
            Command::new(compiler)
                .args(["-c", "-O2", "-ffunction-sections", "-fPIE"])
                .arg(&src)
                .arg("-o")
                .arg(&o),
        );
        o
    }

    /// Links `object` with g++ through GNU ld (no `icf`) or the linker under test.
    fn link(&self, object: &Path, out: &str, icf: Option<&str>) -> (PathBuf, String) {
        let output = self.tmp.join(out);
        let mut cmd = crate::harness::gcc_through(icf.is_some(), &self.wrapper);
        cmd.arg("-pie")
            .arg(object)
            .arg("-lstdc++")
            .arg("-o")
            .arg(&output);
        if let Some(mode) = icf {
            cmd.arg(format!("-Wl,--icf={mode},--print-icf-sections"));
        }
        let printed = run_step(&mut cmd).stdout_text();
        (output, printed)
    }
}

/// `nm` addresses by (demangled) name.
fn addresses(exe: &Path) -> std::collections::HashMap<String, u64> {
    let nm = run_step(Command::new("nm").arg("-C").arg(exe)).stdout_text();
    nm.lines()
        .filter_map(|l| {
            let (addr, rest) = l.split_once(' ')?;
            let (_, name) = rest.split_once(' ')?;
            let name = name.split('(').next()?.to_owned();
            Some((name, u64::from_str_radix(addr, 16).ok()?))
        })
        .collect()
}

fn text_size(exe: &Path) -> u64 {
    let out = run_step(Command::new("size").arg("-A").arg(exe)).stdout_text();
    out.lines()
        .find(|l| l.starts_with(".text "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

fn output(exe: &Path) -> String {
    run_program(&mut Command::new(exe)).stdout_text()
}

#[test]
fn icf_folds_identical_functions_as_lld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("icf");
    let s = Setup { tmp, wrapper };
    let o = s.object("g++", "foldable", FOLDABLE);
    let (gnu, _) = s.link(&o, "gnu", None);
    let (none, _) = s.link(&o, "none", Some("none"));
    let (all, printed) = s.link(&o, "all", Some("all"));
    let expected = output(&gnu);
    assert_eq!(output(&none), expected);
    assert_eq!(output(&all), expected);
    let at = addresses(&all);
    for (a, b) in [
        ("add_i", "add_j"),
        ("rec_a", "rec_b"),
        ("rec_a", "rec_c"),
        ("rec_b", "rec_d"),
    ] {
        assert_eq!(at[a], at[b], "{a} and {b} not folded:\n{printed}");
    }
    assert_ne!(at["table_a"], at["table_b"], "different tables folded");
    let plain = addresses(&none);
    assert_ne!(plain["add_i"], plain["add_j"], "--icf=none folded");
    assert!(
        text_size(&all) < text_size(&none),
        "{} bytes of code with --icf=all, {} without",
        text_size(&all),
        text_size(&none)
    );
    assert!(
        printed.contains("selected section ") && printed.contains("  removing identical section ")
    );
    assert!(printed.contains("(.text._Z5add_jii)"), "{printed}");
    // Deterministic: the same bytes again.
    let (again, _) = s.link(&o, "again", Some("all"));
    assert_eq!(std::fs::read(&all).unwrap(), std::fs::read(&again).unwrap());

    // Different exception tables: not folded, the exceptions still caught.
    let o = s.object("g++", "exceptions", EXCEPTIONS);
    let (gnu, _) = s.link(&o, "gnu-ex", None);
    let (all, _) = s.link(&o, "all-ex", Some("all"));
    assert_eq!(output(&all), output(&gnu));
    assert_eq!(output(&all), "20\n");
    let at = addresses(&all);
    assert_ne!(at["catch_int"], at["catch_long"]);
}

#[test]
fn icf_safe_keeps_functions_whose_address_is_taken() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("icf-safe");
    let s = Setup { tmp, wrapper };
    // clang writes .llvm_addrsig: the twins fold, the address-taken pair does not.
    let o = s.object("clang", "taken", ADDRESS_TAKEN);
    let (gnu, _) = s.link(&o, "gnu", None);
    let (safe, _) = s.link(&o, "safe", Some("safe"));
    let (all, _) = s.link(&o, "all", Some("all"));
    assert_eq!(output(&safe), output(&gnu));
    assert!(output(&gnu).ends_with(" 0\n"));
    let at = addresses(&safe);
    assert_eq!(at["twin_a"], at["twin_b"]);
    assert_ne!(at["pick_a"], at["pick_b"]);
    // --icf=all folds them too: their pointers then compare equal, as with lld.
    let at = addresses(&all);
    assert_eq!(at["pick_a"], at["pick_b"]);
    assert!(output(&all).ends_with(" 1\n"));
    // GCC's objects have no .llvm_addrsig: safe mode folds nothing.
    let o = s.object("gcc", "taken-gcc", ADDRESS_TAKEN);
    let (safe, printed) = s.link(&o, "safe-gcc", Some("safe"));
    assert!(!printed.contains("twin"), "{printed}");
    let at = addresses(&safe);
    assert_ne!(at["twin_a"], at["twin_b"]);
}

/// What must keep its own address, as lld keeps it: read-only data of GCC objects (no
/// `.llvm_addrsig`: every symbol counts as address-significant) under `--icf=all`, such as
/// two equal constant arrays or the type names of two anonymous-namespace classes; under
/// `--icf=safe`, a shared library's exported functions and a function whose address another
/// object takes; and sections bound for different output sections never fold together.
#[test]
fn icf_keeps_addresses_that_matter() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("icf-unique");
    let s = Setup { tmp, wrapper };
    let compile = |compiler: &str, name: &str, source: &str, flags: &[&str]| {
        let src = s.tmp.join(name);
        std::fs::write(&src, source).unwrap();
        let o = s.tmp.join(format!("{name}.o"));
        run_step(
            Command::new(compiler)
                .args(["-c", "-O2", "-ffunction-sections", "-fdata-sections"])
                .args(flags)
                .arg(&src)
                .arg("-o")
                .arg(&o),
        );
        o
    };
    let link = |objects: &[&PathBuf], out: &str, extra: &[&str]| {
        let output = s.tmp.join(out);
        let mut cmd = crate::harness::gcc_through(true, &s.wrapper);
        cmd.args(objects).args(extra).arg("-o").arg(&output);
        run_step(&mut cmd);
        output
    };
    // Equal constant arrays (GCC): not folded under --icf=all.
    let data = compile(
        "gcc",
        "data.c",
        "#include <stdio.h>\nconst int r1[4] = {1, 2, 3, 4};\nconst int r2[4] = {1, 2, 3, 4};\n\
         int main(void) { const int *volatile a = r1, *volatile b = r2; printf(\"%d\\n\", a == b); return 0; }\n",
        &[],
    );
    assert_eq!(output(&link(&[&data], "data", &["-Wl,--icf=all"])), "0\n");
    // Anonymous-namespace classes in two files: their type_infos stay different.
    let class = |n: u32| {
        format!(
            "#include <typeinfo>\nnamespace {{ struct A {{ virtual ~A() {{}} }}; }}\n\
             const std::type_info &info{n}() {{ return typeid(A); }}\n"
        )
    };
    let a = compile("g++", "ta.cc", &class(1), &[]);
    let b = compile("g++", "tb.cc", &class(2), &[]);
    let m = compile(
        "g++",
        "tm.cc",
        "#include <cstdio>\n#include <typeinfo>\nconst std::type_info &info1();\nconst std::type_info &info2();\n\
         int main() { std::printf(\"%d\\n\", info1() == info2()); }\n",
        &[],
    );
    assert_eq!(
        output(&link(
            &[&a, &b, &m],
            "types",
            &["-Wl,--icf=all", "-lstdc++"]
        )),
        "0\n"
    );
    // A shared library's exported functions (clang, .llvm_addrsig) under --icf=safe.
    let lib = compile(
        "clang",
        "lib.c",
        "int f1(int x) { return x * 7 + 3; }\nint f2(int x) { return x * 7 + 3; }\n",
        &["-fPIC"],
    );
    let so = link(&[&lib], "libtwins.so", &["-shared", "-Wl,--icf=safe"]);
    let dynsym = run_step(Command::new("nm").arg("-D").arg(&so)).stdout_text();
    let address = |name: &str| {
        dynsym
            .lines()
            .find(|l| l.ends_with(&format!(" T {name}")))
            .map(|l| l.split(' ').next().unwrap().to_owned())
    };
    assert_ne!(address("f1"), address("f2"), "{dynsym}");
    // A function whose address another object takes (its .llvm_addrsig names an undefined
    // symbol) under --icf=safe.
    let defs = compile(
        "clang",
        "defs.c",
        "int g1(int x) { return x * 7 + 3; }\nint g2(int x) { return x * 7 + 3; }\n",
        &[],
    );
    let uses = compile(
        "clang",
        "use.c",
        "#include <stdio.h>\nint g1(int); int g2(int);\nint (*tab[])(int) = {g1, g2};\n\
         int main(void) { printf(\"%d\\n\", tab[0] == tab[1]); return 0; }\n",
        &[],
    );
    assert_eq!(
        output(&link(&[&defs, &uses], "taken", &["-Wl,--icf=safe"])),
        "0\n"
    );
    // Different output sections: .mytext's function stays apart from .text's twin.
    let sections = compile(
        "gcc",
        "sec.c",
        "#include <stdio.h>\n__attribute__((section(\".mytext\"), noinline)) int h1(int x) { return x * 9 + 1; }\n\
         __attribute__((noinline)) int h2(int x) { return x * 9 + 1; }\n\
         int main(void) { volatile int i = 2; printf(\"%d %d\\n\", h1(i), h2(i)); return 0; }\n",
        &[],
    );
    let exe = link(&[&sections], "sections", &["-Wl,--icf=all"]);
    assert_eq!(output(&exe), "19 19\n");
    let at = addresses(&exe);
    assert_ne!(at["h1"], at["h2"]);
}
