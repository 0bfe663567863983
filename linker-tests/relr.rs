//! `-z pack-relative-relocs` (DT_RELR): each program is linked three times, by GNU ld and
//! by the linker under test with the option, and by the linker under test without it. The
//! packed programs must behave as GNU ld's; the packed relocations plus the RELATIVE ones
//! left in `.rela.dyn` must be, section by section and offset by offset, the RELATIVE
//! relocations of the unpacked link; `.dynamic` and the version needs must carry what GNU
//! ld's output carries (DT_RELR, DT_RELRSZ, DT_RELRENT 8, libc's GLIBC_ABI_DT_RELR).

use crate::harness::{compile, run_step, TempDir};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The output's allocated sections: (name, address, size).
fn sections(file: &Path) -> Vec<(String, u64, u64)> {
    let text = run_step(Command::new("readelf").arg("-SW").arg(file)).stdout_text();
    text.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(']')?;
            let t: Vec<&str> = rest.split_whitespace().collect();
            let addr = u64::from_str_radix(t.get(2)?, 16).ok()?;
            let size = u64::from_str_radix(t.get(4)?, 16).ok()?;
            (addr != 0 && t[1] != "NOBITS").then(|| (t[0].to_owned(), addr, size))
        })
        .collect()
}

/// (the addresses `.relr.dyn` relocates, the offsets of the R_X86_64_RELATIVE entries of
/// `.rela.dyn`), as `readelf -r` decodes them.
fn relative_relocations(file: &Path) -> (Vec<u64>, Vec<u64>) {
    let text = run_step(Command::new("readelf").arg("-rW").arg(file)).stdout_text();
    let (mut relr, mut rela) = (Vec::new(), Vec::new());
    let mut in_relr = false;
    for line in text.lines() {
        if line.starts_with("Relocation section") {
            in_relr = line.contains("'.relr.dyn'");
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let Ok(addr) = u64::from_str_radix(first, 16) else {
            continue;
        };
        if in_relr && line.split_whitespace().count() == 1 {
            relr.push(addr);
        } else if line.contains("R_X86_64_RELATIVE") {
            rela.push(addr);
        }
    }
    (relr, rela)
}

/// Each address as (section name, offset in it), sorted: comparable between two layouts
/// of the same inputs.
fn by_section(file: &Path, addrs: &[u64]) -> Vec<(String, u64)> {
    let secs = sections(file);
    let mut out: Vec<(String, u64)> = addrs
        .iter()
        .map(|&a| {
            let (name, start, _) = secs
                .iter()
                .find(|(_, s, size)| a >= *s && a < s + size)
                .unwrap_or_else(|| panic!("{}: {a:#x} is in no section", file.display()));
            (name.clone(), a - start)
        })
        .collect();
    out.sort();
    out
}

fn dynamic_tags(file: &Path) -> String {
    run_step(Command::new("readelf").arg("-dW").arg(file)).stdout_text()
}

fn version_needs(file: &Path) -> String {
    run_step(Command::new("readelf").arg("-VW").arg(file)).stdout_text()
}

fn output_of(exe: &Path, lib_dir: &Path) -> String {
    crate::harness::run_program(Command::new(exe).env("LD_LIBRARY_PATH", lib_dir)).stdout_text()
}

struct Links {
    tmp: TempDir,
    wrapper: PathBuf,
}

impl Links {
    /// Links `args` with gcc through GNU ld (`tested` false) or the linker under test,
    /// with `-z pack-relative-relocs` when `packed`.
    fn link(&self, tested: bool, packed: bool, out: &str, args: &[OsString]) -> PathBuf {
        let name = format!(
            "{}-{}-{out}",
            if tested { "tested" } else { "gnu" },
            if packed { "packed" } else { "plain" }
        );
        let output = self.tmp.join(name);
        let mut cmd = crate::harness::gcc_through(tested, &self.wrapper);
        cmd.args(args);
        if packed {
            cmd.arg("-Wl,-z,pack-relative-relocs");
        }
        run_step(cmd.arg("-o").arg(&output));
        output
    }

    /// The three links of `args`; checks them and returns the tested packed output.
    fn check(&self, out: &str, args: &[OsString], lib_dir: &Path) -> PathBuf {
        let gnu = self.link(false, true, out, args);
        let packed = self.link(true, true, out, args);
        let plain = self.link(true, false, out, args);
        let expected = output_of(&gnu, lib_dir);
        assert_eq!(
            output_of(&packed, lib_dir),
            expected,
            "{out}: packed output"
        );
        assert_eq!(output_of(&plain, lib_dir), expected, "{out}: plain output");

        let (relr, rela) = relative_relocations(&packed);
        let (none, all) = relative_relocations(&plain);
        assert!(none.is_empty(), "{out}: .relr.dyn without the option");
        assert!(!relr.is_empty(), "{out}: nothing packed");
        assert!(
            relr.windows(2).all(|w| w[0] < w[1]) && relr.iter().all(|a| a % 2 == 0),
            "{out}: .relr.dyn addresses not increasing or odd: {relr:x?}"
        );
        let mut packed_places = by_section(&packed, &relr);
        packed_places.extend(by_section(&packed, &rela));
        packed_places.sort();
        assert_eq!(
            packed_places,
            by_section(&plain, &all),
            "{out}: packed and RELA relocations differ from the unpacked link's"
        );
        for file in [&gnu, &packed] {
            let tags = dynamic_tags(file);
            for tag in ["(RELR) ", "(RELRSZ) ", "(RELRENT)            8 (bytes)"] {
                assert!(tags.contains(tag), "{}: no {tag}\n{tags}", file.display());
            }
        }
        packed
    }
}

#[test]
fn relative_relocations_packed_as_gnu_ld() {
    let (tmp, wrapper) = crate::harness::temp_dir_with_wrapper("relr");
    let pie = ["-fPIE".to_owned(), "-O1".to_owned()];
    let mut cxx: Vec<OsString> = ["cxx.cc", "cxx_other.cc"]
        .iter()
        .map(|s| compile(s, &pie, tmp.path()).into())
        .collect();
    cxx.push("-lstdc++".into());
    cxx.push("-lm".into());
    let links = Links { tmp, wrapper };
    let none = links.tmp.join("none");

    // A PIE: libc's GLIBC_ABI_DT_RELR is needed, as GNU ld adds it.
    let mut args = vec![OsString::from("-pie")];
    args.extend(cxx.iter().cloned());
    let exe = links.check("cxx-pie", &args, &none);
    for file in [exe, links.tmp.join("gnu-packed-cxx-pie")] {
        let needs = version_needs(&file);
        assert!(
            needs.contains("Name: GLIBC_ABI_DT_RELR"),
            "{}: {needs}",
            file.display()
        );
    }

    // A static PIE relocates itself (glibc's _dl_relocate_static_pie reads DT_RELR).
    let mut args = vec![OsString::from("-static-pie")];
    args.extend(cxx.iter().cloned());
    links.check("cxx-static-pie", &args, &none);

    // A shared library and the PIE that uses it, both packed.
    let pic = ["-fPIC".to_owned(), "-O1".to_owned()];
    let lib_objects: Vec<OsString> = ["shlib_lib.c", "shlib_lib_tls.c"]
        .iter()
        .map(|s| compile(s, &pic, links.tmp.path()).into())
        .collect();
    let mut args = vec![OsString::from("-shared")];
    args.extend(lib_objects);
    let lib_dir = links.tmp.join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    for (tested, dir) in [(false, "gnu"), (true, "tested")] {
        let lib = links.link(tested, true, "libshlib.so", &args);
        let dir = lib_dir.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&lib, dir.join("libshlib.so")).unwrap();
    }
    let main = compile("shlib.c", &pie, links.tmp.path());
    let program = |tested: bool| {
        let dir = lib_dir.join(if tested { "tested" } else { "gnu" });
        let exe = links.link(
            tested,
            true,
            "shlib",
            &[
                "-pie".into(),
                main.clone().into(),
                "-L".into(),
                dir.clone().into(),
                "-lshlib".into(),
            ],
        );
        output_of(&exe, &dir)
    };
    assert_eq!(program(true), program(false), "shared library program");
    let (relr, _) = relative_relocations(&lib_dir.join("tested/libshlib.so"));
    assert!(!relr.is_empty(), "the library packs nothing");

    // `-z nopack-relative-relocs` after it undoes it.
    let out = links.tmp.join("undone");
    let mut cmd = crate::harness::gcc_through(true, &links.wrapper);
    cmd.arg("-pie").args(&cxx).args([
        "-Wl,-z,pack-relative-relocs",
        "-Wl,-z,nopack-relative-relocs",
    ]);
    run_step(cmd.arg("-o").arg(&out));
    let (relr, rela) = relative_relocations(&out);
    assert!(relr.is_empty() && !rela.is_empty(), "nopack: {relr:x?}");
    assert!(!dynamic_tags(&out).contains("(RELR)"));
}
