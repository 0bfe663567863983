//! Direct invocation: when weld is called as `ld` by something that is not a C compiler
//! driver (rustc with `-Clinker-flavor=ld`, a hand-written command), an executable or shared
//! object that links libc gets no C runtime start files, no libgcc and no GCC library
//! directory, and GNU ld would produce a program that cannot start (or fail to find
//! `-lgcc_s`). weld adds what gcc would have added, from the standard locations of
//! Debian/Ubuntu (multiarch), Fedora (`lib64`) and Arch (`lib`), and says so under
//! `--verbose`. `--no-crt-detect` turns this off.
//!
//! This module only edits the [`Config`]; it reads directories, not input files.

use crate::args::{Config, InputArg, Modifiers};
use std::path::{Path, PathBuf};

const START_FILES: &[&str] = &[
    "crt1.o",
    "Scrt1.o",
    "rcrt1.o",
    "gcrt1.o",
    "crti.o",
    "crtbegin.o",
    "crtbeginS.o",
    "crtbeginT.o",
];

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The directory of the newest installed GCC's runtime (crtbegin*.o, libgcc.a).
fn gcc_lib_dir(sysroot: &Path) -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for triple in [
        "x86_64-linux-gnu",
        "x86_64-pc-linux-gnu",
        "x86_64-redhat-linux",
    ] {
        for base in ["usr/lib/gcc", "usr/lib64/gcc"] {
            let Ok(entries) = std::fs::read_dir(sysroot.join(base).join(triple)) else {
                continue;
            };
            for entry in entries.flatten() {
                let dir = entry.path();
                if !dir.join("crtbeginS.o").exists() {
                    continue;
                }
                let version: Vec<u32> = file_name(&dir)
                    .split('.')
                    .map(|p| p.parse().unwrap_or(0))
                    .collect();
                if best.as_ref().is_none_or(|(v, _)| version > *v) {
                    best = Some((version, dir));
                }
            }
        }
    }
    best.map(|(_, dir)| dir)
}

/// The directory holding glibc's crt1.o and libc.so.
fn libc_dir(sysroot: &Path) -> Option<PathBuf> {
    [
        "usr/lib/x86_64-linux-gnu",
        "usr/lib64",
        "usr/lib",
        "lib/x86_64-linux-gnu",
        "lib64",
    ]
    .iter()
    .map(|d| sysroot.join(d))
    .find(|d| d.join("crt1.o").exists())
}

/// Adds the C runtime when the command line looks like a direct invocation. Returns the
/// lines `--verbose` prints.
pub fn add_c_runtime(config: &mut Config) -> Vec<String> {
    // -nostdlib: only the directories the command line names are searched (GNU ld), so
    // none of the C runtime's either.
    if config.no_crt_detect || config.nostdlib || config.relocatable {
        return Vec::new();
    }
    let mut links_libc = false;
    for input in &config.inputs {
        match input {
            InputArg::File { path, .. } if START_FILES.contains(&file_name(path)) => {
                return Vec::new(); // a driver already did this
            }
            InputArg::Library { name, .. } if name == "c" => links_libc = true,
            _ => {}
        }
    }
    if !links_libc || config.entry.is_some() {
        return Vec::new();
    }
    let sysroot = config.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let (Some(gcc_dir), Some(libc_dir)) = (gcc_lib_dir(&sysroot), libc_dir(&sysroot)) else {
        return vec!["no C runtime found (GCC and glibc start files); linking as given".into()];
    };
    // Which start files gcc uses for each kind of output.
    let is_static = config.static_requested && !config.shared;
    let (start, begin, end): (Option<&str>, &str, &str) = if config.shared {
        (None, "crtbeginS.o", "crtendS.o")
    } else if config.pie && is_static {
        (Some("rcrt1.o"), "crtbeginS.o", "crtendS.o")
    } else if config.pie {
        (Some("Scrt1.o"), "crtbeginS.o", "crtendS.o")
    } else if is_static {
        (Some("crt1.o"), "crtbeginT.o", "crtend.o")
    } else {
        (Some("crt1.o"), "crtbegin.o", "crtend.o")
    };
    let plain = Modifiers::default();
    let mut front = Vec::new();
    if let Some(start) = start {
        front.push(libc_dir.join(start));
    }
    front.push(libc_dir.join("crti.o"));
    front.push(gcc_dir.join(begin));
    let mut added: Vec<String> = front.iter().map(|p| p.display().to_string()).collect();
    let mut inputs: Vec<InputArg> = front
        .into_iter()
        .map(|path| InputArg::File {
            path,
            modifiers: plain,
        })
        .collect();
    inputs.append(&mut config.inputs);
    // libgcc after everything, as gcc does: the static part, then (dynamic links) libgcc_s
    // only where needed.
    let static_only = Modifiers {
        link_static: true,
        ..plain
    };
    inputs.push(InputArg::Library {
        name: "gcc".into(),
        modifiers: static_only,
    });
    if is_static {
        inputs.push(InputArg::Library {
            name: "gcc_eh".into(),
            modifiers: static_only,
        });
    }
    added.push("-lgcc".into());
    for end_file in [gcc_dir.join(end), libc_dir.join("crtn.o")] {
        added.push(end_file.display().to_string());
        inputs.push(InputArg::File {
            path: end_file,
            modifiers: plain,
        });
    }
    config.inputs = inputs;
    config.library_paths.push(gcc_dir.clone());
    config.library_paths.push(libc_dir.clone());
    for dir in ["lib/x86_64-linux-gnu", "lib64", "lib"] {
        let d = sysroot.join(dir);
        if d.is_dir() && !config.library_paths.contains(&d) {
            config.library_paths.push(d);
        }
    }
    added.push(format!("-L{} -L{}", gcc_dir.display(), libc_dir.display()));
    vec![format!(
        "no C runtime on the command line (direct invocation): added {}",
        added.join(" ")
    )]
}
