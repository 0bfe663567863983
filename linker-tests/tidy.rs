//! Tidy checks on weld's own sources (and its tests, xtask and fuzz targets): every module says what it does (`//!` first), and
//! every `unsafe` block is preceded by a `// SAFETY:` comment.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "src",
        "xtask/src",
        "xtask/fuzz/fuzz_targets",
        "linker-tests",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 10, "weld's sources not found");
    files
}

#[test]
fn every_module_has_a_doc_comment() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! doc comment: {missing:?}"
    );
}

#[test]
fn every_unsafe_block_says_why_it_is_safe() {
    let mut bare = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let Some(at) = code.find("unsafe {").or_else(|| code.find("unsafe fn")) else {
                continue;
            };
            // Inside a string literal (a test's generated source, this check's own needle).
            if code[..at].matches('"').count() % 2 == 1 {
                continue;
            }
            let context = &lines[i.saturating_sub(5)..i];
            if !context
                .iter()
                .any(|l| l.trim_start().starts_with("// SAFETY:"))
            {
                bare.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "unsafe without a // SAFETY: comment: {bare:?}"
    );
}
