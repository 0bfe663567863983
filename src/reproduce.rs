//! `--reproduce=FILE.tar` (lld's option and layout): a tar of every file the link reads and
//! a response file that links them again, for a bug report or a remote build.
//!
//! The tar has one directory named after it (`repro.tar` -> `repro/`) holding
//! `response.txt`, `version.txt` and each input under its absolute path less the leading
//! `/` (`repro/usr/lib/x86_64-linux-gnu/crt1.o`). In `response.txt` every path the command
//! line names is rewritten that way, relative, and `--sysroot=.` is added (unless a sysroot
//! was given, which is rewritten too), so that the built-in search directories and the
//! absolute paths inside scripts such as libc.so resolve to the copies: `cd repro && weld
//! @response.txt` reads nothing outside the directory, and writes the output there (`-o`
//! keeps only the file name).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Options whose value is a file or directory the link reads.
const INPUT_PATH_OPTIONS: &[&str] = &[
    "L",
    "library-path",
    "T",
    "script",
    "dT",
    "default-script",
    "version-script",
    "dynamic-list",
    "export-dynamic-symbol-list",
    "rpath-link",
    "sysroot",
];

/// Options whose value is a file the link writes: only the file name is kept.
const OUTPUT_PATH_OPTIONS: &[&str] = &["o", "output", "Map", "dependency-file", "why-extract"];

/// Writes the tar. `command_line`: the arguments as given (response files expanded);
/// `named`: the input files named on it; `files`: every file the link reads.
pub fn write(
    tar_path: &Path,
    command_line: &[String],
    named: &[&Path],
    files: &[PathBuf],
) -> Result<()> {
    let root = tar_path
        .file_stem()
        .map_or_else(|| "repro".to_string(), |s| s.to_string_lossy().into_owned());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    entries.push((
        format!("{root}/response.txt"),
        response(command_line, named).into_bytes(),
    ));
    entries.push((
        format!("{root}/version.txt"),
        format!("weld {}\n", env!("CARGO_PKG_VERSION")).into_bytes(),
    ));
    let mut seen = std::collections::HashSet::new();
    for file in files {
        let relative = relative(file);
        if !seen.insert(relative.clone()) {
            continue;
        }
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        entries.push((format!("{root}/{}", relative.display()), bytes));
    }
    let out = std::fs::File::create(tar_path)
        .with_context(|| format!("cannot create {}", tar_path.display()))?;
    let mut out = std::io::BufWriter::new(out);
    for (name, bytes) in &entries {
        write_entry(&mut out, name, bytes)
            .with_context(|| format!("cannot write {}", tar_path.display()))?;
    }
    // The end: two zero blocks.
    out.write_all(&[0u8; 1024])
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", tar_path.display()))
}

/// `path` made absolute (from the current directory) and lexically normalised, without its
/// leading `/`.
fn relative(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The response file: the command line with its paths rewritten (see the module's text).
/// A plain argument is rewritten if it is one of the input files `named` (not the value of
/// an option such as `-z now`).
fn response(command_line: &[String], named: &[&Path]) -> String {
    let mut out: Vec<String> = Vec::new();
    let has_sysroot = command_line
        .iter()
        .any(|a| a.starts_with("--sysroot") || a.starts_with("-sysroot"));
    if !has_sysroot {
        out.push("--sysroot=.".into());
    }
    let rewrite_input = |value: &str| relative(Path::new(value)).display().to_string();
    let rewrite_output = |value: &str| {
        Path::new(value)
            .file_name()
            .map_or_else(|| value.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let mut args = command_line.iter();
    while let Some(arg) = args.next() {
        if arg == "--reproduce" || arg == "-reproduce" {
            args.next();
            continue;
        }
        if arg.starts_with("--reproduce=") || arg.starts_with("-reproduce=") {
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            if named.contains(&Path::new(arg.as_str())) {
                out.push(rewrite_input(arg));
            } else {
                out.push(arg.clone());
            }
            continue;
        }
        let body = arg.trim_start_matches('-');
        let dashes = &arg[..arg.len() - body.len()];
        // `--name=value`.
        if let Some((name, value)) = body.split_once('=') {
            if INPUT_PATH_OPTIONS.contains(&name) {
                out.push(format!("{dashes}{name}={}", rewrite_input(value)));
                continue;
            }
            if OUTPUT_PATH_OPTIONS.contains(&name) {
                out.push(format!("{dashes}{name}={}", rewrite_output(value)));
                continue;
            }
        }
        // `--name value`, `-L value`.
        let input = INPUT_PATH_OPTIONS.contains(&body);
        if input || OUTPUT_PATH_OPTIONS.contains(&body) {
            out.push(arg.clone());
            if let Some(value) = args.next() {
                out.push(if input {
                    rewrite_input(value)
                } else {
                    rewrite_output(value)
                });
            }
            continue;
        }
        // `-Lvalue`, `-Tvalue`, `-ovalue` (single dash, value attached).
        if dashes == "-" {
            if let Some(value) = body.strip_prefix('L').filter(|v| !v.is_empty()) {
                out.push(format!("-L{}", rewrite_input(value)));
                continue;
            }
            let section_start = ["text", "data", "bss", "ldata"];
            if let Some(value) = body
                .strip_prefix('T')
                .filter(|v| !v.is_empty() && !section_start.iter().any(|s| v.starts_with(s)))
            {
                out.push(format!("-T{}", rewrite_input(value)));
                continue;
            }
            if let Some(value) = body.strip_prefix('o').filter(|v| !v.is_empty()) {
                out.push(format!("-o{}", rewrite_output(value)));
                continue;
            }
        }
        out.push(arg.clone());
    }
    let mut text = String::new();
    for arg in out {
        text.push_str(&quote(&arg));
        text.push('\n');
    }
    text
}

/// An argument as a response file reads it back (quoted if it has spaces or quotes).
fn quote(arg: &str) -> String {
    if arg.is_empty() || arg.contains([' ', '\t', '"', '\'', '\\']) {
        format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        arg.to_string()
    }
}

/// One file in ustar form (a GNU long-name entry first when the name does not fit).
fn write_entry(out: &mut impl Write, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    if name.len() > 100 {
        let mut long = name.as_bytes().to_vec();
        long.push(0);
        out.write_all(&header("././@LongLink", long.len() as u64, b'L'))?;
        write_padded(out, &long)?;
    }
    out.write_all(&header(name, bytes.len() as u64, b'0'))?;
    write_padded(out, bytes)
}

fn write_padded(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(&vec![0u8; bytes.len().next_multiple_of(512) - bytes.len()])
}

fn header(name: &str, size: u64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = name.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let mut octal = |at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        h[at..at + width - 1].copy_from_slice(text.as_bytes());
    };
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, size);
    octal(136, 12, 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum: the header's byte sum with the checksum field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_rewrites_paths() {
        let line: Vec<String> = [
            "-o",
            "/tmp/out/prog",
            "-L/usr/lib/gcc",
            "-L",
            "/opt/lib",
            "/a/b/../c.o",
            "-lc",
            "--version-script=/v/x.map",
            "--reproduce=/tmp/r.tar",
            "-Ttext=0x1000",
            "-Map",
            "/m/x.map",
            "-z",
            "now",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            response(&line, &[Path::new("/a/b/../c.o")]),
            "--sysroot=.\n-o\nprog\n-Lusr/lib/gcc\n-L\nopt/lib\na/c.o\n-lc\n\
             --version-script=v/x.map\n-Ttext=0x1000\n-Map\nx.map\n-z\nnow\n"
        );
    }
}
