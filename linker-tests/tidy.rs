//! Tidy checks on weld's own sources (and its tests, xtask and fuzz targets): every module
//! says what it does (`//!` first); every `unsafe` block is preceded by a `// SAFETY:`
//! comment; and three rules of issue 24 on `src/`: modules import each other without cycles,
//! no relocation type is named outside `src/arch/`, and a ratchet: no function grows past
//! 150 lines or its listed allowance.

use std::collections::{BTreeMap, BTreeSet};
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

/// The functions of `src/` longer than [`LONGEST`] lines, with the length each may not
/// exceed (issue 24: split them; this list only shrinks). `args::long` is a flat table of
/// options.
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[("src/args.rs", "long", 425)];

/// The length a new function may have.
const LONGEST: usize = 150;

/// Each function of `src/` as (file, name, lines): from its `fn` line to the `}` at the same
/// indentation (rustfmt's layout).
fn functions() -> Vec<(String, String, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let mut words = code.split_whitespace().skip_while(|w| {
                w.starts_with("pub") || matches!(*w, "const" | "unsafe" | "async" | "extern")
            });
            if words.next() != Some("fn") {
                continue;
            }
            let name: String = words
                .next()
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The signature ends with `{` (a body), `;` or `}` (none, or one line).
            let Some(open) = (i..lines.len()).find(|&j| {
                let l = lines[j].trim_end();
                l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
            }) else {
                continue;
            };
            if !lines[open].trim_end().ends_with('{') {
                continue;
            }
            let close = format!("{indent}}}");
            if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j].trim_end() == close) {
                out.push((rel.clone(), name, end - i + 1));
            }
        }
    }
    out
}

#[test]
fn functions_stay_short() {
    let all = functions();
    assert!(all.len() > 300, "functions not found: {}", all.len());
    let mut problems = Vec::new();
    for (file, name, lines) in &all {
        if *lines <= LONGEST {
            continue;
        }
        match LONG_FUNCTIONS
            .iter()
            .find(|(f, n, _)| f == file && n == name)
        {
            Some(&(_, _, allowed)) if *lines <= allowed => {}
            Some(&(_, _, allowed)) => problems.push(format!(
                "{file}: {name} grew to {lines} lines ({allowed} allowed)"
            )),
            None => problems.push(format!(
                "{file}: {name} has {lines} lines (at most {LONGEST}: split it)"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Relocation numbers are the architecture's business (issue 24): no file outside
/// `src/arch/` names an `R_X86_64_` type, not even in a comment. The rest of weld decides
/// by `arch::x86_64::Expr` (what a relocation computes) and the named constants there.
#[test]
fn relocation_types_stay_in_the_arch_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        if rel.starts_with("src/arch/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("R_X86_64_") {
                problems.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "relocation types named outside src/arch/:\n{}",
        problems.join("\n")
    );
}

/// The module a file of `src/` is (`layout/mod.rs`: `layout`; `arch/x86_64.rs`:
/// `arch::x86_64`; `lib.rs`: the empty path, the crate root).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The module paths that `text` names after each `prefix` (`crate::` or `super::`), with
/// `use` groups expanded: `crate::a::{b, c::d}` names `a::b` and `a::c::d`.
fn named_paths(text: &str, prefix: &str) -> Vec<String> {
    fn ident(bytes: &[u8], mut at: usize) -> usize {
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
            at += 1;
        }
        at
    }
    /// Reads a path at `at` (after `base`), pushing every path it names; returns the end.
    fn path(text: &str, mut at: usize, base: String, out: &mut Vec<String>) -> usize {
        let bytes = text.as_bytes();
        let mut current = base;
        loop {
            if bytes.get(at) == Some(&b'{') {
                at += 1;
                loop {
                    while bytes
                        .get(at)
                        .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
                    {
                        at += 1;
                    }
                    match bytes.get(at) {
                        None => return at,
                        Some(b'}') => return at + 1,
                        _ => {}
                    }
                    let before = at;
                    at = path(text, at, current.clone(), out);
                    // `x as y`, `self`: skip to the item's end.
                    while bytes.get(at).is_some_and(|&b| b != b',' && b != b'}') {
                        at += 1;
                    }
                    if at == before {
                        at += 1;
                    }
                }
            }
            let end = ident(bytes, at);
            if end == at {
                out.push(current);
                return at;
            }
            let name = &text[at..end];
            if name != "self" {
                if !current.is_empty() {
                    current.push_str("::");
                }
                current.push_str(name);
            }
            at = end;
            if text[at..].starts_with("::") {
                at += 2;
            } else {
                out.push(current);
                return at;
            }
        }
    }
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(prefix) {
        let at = from + found;
        let preceded = at > 0 && {
            let b = text.as_bytes()[at - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b':'
        };
        from = at + prefix.len();
        if !preceded {
            from = path(text, from, String::new(), &mut out);
        }
    }
    out
}

/// Which modules of `src/` each module's code names (comment lines and a trailing
/// `mod tests` left out), each path resolved to the longest module it names. A module
/// naming itself or one of its ancestors is no edge: a module and its submodules are one
/// unit, as their privacy rules make them.
fn module_imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let texts: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            (module_of(f.strip_prefix(&root).unwrap()), code.join("\n"))
        })
        .collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| texts.contains_key(m))
    };
    let mut imports = BTreeMap::new();
    for (module, text) in &texts {
        if module.is_empty() {
            continue; // the crate root declares every module
        }
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let named = named_paths(text, "crate::").into_iter().chain(
            named_paths(text, "super::").into_iter().map(|p| {
                format!("{parent}::{p}")
                    .trim_start_matches("::")
                    .to_string()
            }),
        );
        let edges: BTreeSet<String> = named
            .filter_map(|p| resolve(&p))
            .filter(|t| !t.is_empty() && t != module && !module.starts_with(&format!("{t}::")))
            .collect();
        imports.insert(module.clone(), edges);
    }
    imports
}

/// Phases import downward only: no module of `src/` reaches itself through the modules it
/// names (issue 24; the shared vocabulary lives in `context`, below the phases).
#[test]
fn modules_import_without_cycles() {
    let imports = module_imports();
    assert!(imports.len() > 20, "weld's modules not found");
    assert!(
        imports["layout"].contains("context") && imports["write"].contains("layout"),
        "the import reader lost its way: {imports:?}"
    );
    // Depth-first search; a module met again while on the stack closes a cycle.
    fn visit<'a>(
        module: &'a str,
        imports: &'a BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = stack.iter().position(|m| *m == module) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(module);
            cycles.push(cycle.join(" -> "));
            return;
        }
        stack.push(module);
        for next in imports.get(module).into_iter().flatten() {
            visit(next, imports, stack, done, cycles);
        }
        stack.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for module in imports.keys() {
        visit(module, &imports, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other in a circle:\n{}",
        cycles.join("\n")
    );
}
