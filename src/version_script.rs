//! Version scripts (`--version-script`): which symbols a shared object exports, and under
//! which version.
//!
//! Parses the GNU syntax (`VERS_1 { global: a; b*; extern "C++" { ns::*; }; local: *; };
//! VERS_2 { global: c; } VERS_1;`, or one anonymous `{ ... };` node) and assigns each
//! defined global symbol a node. Names written `foo@VER` / `foo@@VER` in objects (`.symver`)
//! carry their own version. This module decides visibility and version indexes only; the
//! dynamic tables are built by `dynamic`.

use crate::resolve::Resolution;
use crate::symbols::{Def, SymbolId};
use anyhow::{bail, Context as _, Result};
use rustc_hash::FxHashMap as HashMap;

#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    /// Matches demangled C++ names (`extern "C++"`).
    cxx: bool,
    glob: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    /// `None` for the anonymous node (no version, only visibility).
    pub name: Option<String>,
    pub global: Vec<Pattern>,
    pub local: Vec<Pattern>,
    pub parents: Vec<String>,
}

/// What the version scripts and `.symver` names say about the output's symbols.
#[derive(Default)]
pub struct Versions {
    /// Version definitions in index order: index 1 is the base (the output's soname), then
    /// one per named node.
    pub defs: Vec<(String, Vec<String>)>,
    /// Per exported symbol: version index, and whether it is a hidden (non-default) version.
    pub of_symbol: HashMap<SymbolId, (u16, bool)>,
    /// Symbols a `local:` pattern hides.
    pub local: rustc_hash::FxHashSet<SymbolId>,
    /// `--dynamic-list`: given at all, and the defined symbols it names. An executable
    /// exports them; a shared object binds every other symbol locally.
    pub has_dynamic_list: bool,
    pub dynamic_list: rustc_hash::FxHashSet<SymbolId>,
    /// `--export-dynamic-symbol[-list]`: defined symbols an executable exports and a shared
    /// object leaves preemptible even under `-Bsymbolic` (GNU ld 2.35, lld).
    pub export_dynamic: rustc_hash::FxHashSet<SymbolId>,
}

impl Versions {
    pub fn is_empty(&self) -> bool {
        self.defs.len() <= 1
    }
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' => out.push(c.to_string()),
            '"' => {
                let mut s = String::from("\"");
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    s.push(c);
                }
                out.push(s);
            }
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

pub fn parse(text: &str) -> Result<Vec<Node>> {
    let toks = tokens(text);
    let mut i = 0;
    let mut nodes = Vec::new();
    let next = |i: &mut usize| -> Result<String> {
        let t = toks
            .get(*i)
            .cloned()
            .context("unexpected end of version script")?;
        *i += 1;
        Ok(t)
    };
    while i < toks.len() {
        let mut node = Node::default();
        let mut t = next(&mut i)?;
        if t != "{" {
            node.name = Some(t);
            t = next(&mut i)?;
            if t != "{" {
                bail!("expected '{{' after version name, found '{t}'");
            }
        }
        let mut is_local = false;
        let mut cxx = false;
        let mut depth = 1;
        while depth > 0 {
            let t = next(&mut i)?;
            match t.as_str() {
                "global:" => is_local = false,
                "local:" => is_local = true,
                "global" | "local" if toks.get(i).map(String::as_str) == Some(":") => {
                    is_local = t == "local";
                    i += 1;
                }
                "extern" => {
                    let lang = next(&mut i)?;
                    if next(&mut i)? != "{" {
                        bail!("expected '{{' after extern {lang}");
                    }
                    cxx = lang.trim_matches('"') == "C++";
                    depth += 1;
                }
                "}" => {
                    depth -= 1;
                    cxx = false;
                    if depth > 0 && toks.get(i).map(String::as_str) == Some(";") {
                        i += 1;
                    }
                }
                ";" => {}
                pattern => {
                    let quoted = pattern.starts_with('"');
                    let text = pattern.trim_matches('"').to_string();
                    let glob = !quoted && text.contains(['*', '?', '[']);
                    let p = Pattern { text, cxx, glob };
                    if is_local {
                        node.local.push(p);
                    } else {
                        node.global.push(p);
                    }
                }
            }
        }
        // Parents, then ';'.
        loop {
            let t = next(&mut i)?;
            if t == ";" {
                break;
            }
            node.parents.push(t);
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// Shell-style glob: `*`, `?`, `[...]`. Iterative, remembering only the last `*`: a `*`
/// can take any run of characters, so when the rest fails to match only the last star needs
/// to take one more. Time is O(pattern x text) even for `a*a*a*...b` (the fuzzer found a
/// version script whose `**...*` hung the recursive form).
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*`: where its pattern continues, and how much text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, t));
            continue;
        }
        if let Some(next) = match_one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        let Some((after_star, taken)) = star else {
            return false;
        };
        p = after_star;
        t = taken + 1;
        star = Some((after_star, taken + 1));
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether the pattern element at `p` (not `*`) matches `c`; the index after it if so.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => {
            let Some(end) = pattern[p..].iter().position(|&x| x == b']').map(|e| p + e) else {
                return (c == b'[').then_some(p + 1);
            };
            let set = &pattern[p + 1..end];
            let (negate, set) = match set.first() {
                Some(b'!') | Some(b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut k = 0;
            while k < set.len() {
                if k + 2 < set.len() && set[k + 1] == b'-' {
                    hit |= set[k] <= c && c <= set[k + 2];
                    k += 3;
                } else {
                    hit |= set[k] == c;
                    k += 1;
                }
            }
            (hit != negate).then_some(end + 1)
        }
        literal => (literal == c).then_some(p + 1),
    }
}

impl Pattern {
    fn matches(&self, name: &[u8], demangled: &str) -> bool {
        let subject = if self.cxx { demangled.as_bytes() } else { name };
        if self.glob {
            glob_match(self.text.as_bytes(), subject)
        } else {
            self.text.as_bytes() == subject
        }
    }
}

/// The patterns of a dynamic list file: the syntax of one anonymous version node,
/// `{ a; b*; };`.
fn read_dynamic_list(path: &std::path::Path) -> Result<Vec<Pattern>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dynamic list {}", path.display()))?;
    let nodes = parse(&text).with_context(|| format!("{}: bad dynamic list", path.display()))?;
    Ok(nodes.into_iter().flat_map(|node| node.global).collect())
}

/// The defined symbols some pattern matches.
fn matching_definitions(res: &Resolution, patterns: &[Pattern]) -> rustc_hash::FxHashSet<SymbolId> {
    let cxx = patterns.iter().any(|p| p.cxx);
    let mut set = rustc_hash::FxHashSet::default();
    for (i, symbol) in res.symbols.symbols.iter().enumerate() {
        if !matches!(symbol.def, Def::Defined { .. } | Def::Common { .. }) {
            continue;
        }
        let demangled = if cxx {
            crate::symbols::demangle(symbol.name)
        } else {
            String::new()
        };
        if patterns.iter().any(|p| p.matches(symbol.name, &demangled)) {
            set.insert(SymbolId(i as u32));
        }
    }
    set
}

/// Reads the version scripts and assigns versions to the defined global symbols.
pub fn assign(config: &crate::args::Config, res: &Resolution) -> Result<Versions> {
    let mut nodes = read_version_scripts(config)?;
    let mut versions = Versions::default();
    read_dynamic_lists(config, res, &mut versions)?;
    versions.defs.push((base_version_name(config), Vec::new()));
    // `--default-symver`: a last node named as the base, for what no other node takes
    // (GNU ld gives it an index of its own, after the base definition).
    if config.default_symver {
        nodes.push(default_symver_node(&versions.defs[0].0));
    }
    let mut index_of = define_node_versions(&nodes, &mut versions);
    // `--no-undefined-version` (lld's default, GNU ld's option): a version script's exact
    // global name must be defined by the link.
    if config.no_undefined_version {
        check_exact_names_defined(res, &nodes)?;
    }
    // Without a script, only versioned names (which objects note at parse time) get a
    // version: no need to look at every name.
    if nodes.is_empty() && !res.objects.iter().any(|o| o.obj.versioned) {
        return Ok(versions);
    }
    assign_symbols(res, &nodes, &mut index_of, &mut versions);
    Ok(versions)
}

/// The version nodes of every `--version-script`, in order.
fn read_version_scripts(config: &crate::args::Config) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for path in &config.version_scripts {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read version script {}", path.display()))?;
        nodes.extend(
            parse(&text).with_context(|| format!("{}: bad version script", path.display()))?,
        );
    }
    Ok(nodes)
}

/// Fills `versions.export_dynamic`, `versions.dynamic_list` and `versions.has_dynamic_list`
/// from `--dynamic-list*` and `--export-dynamic-symbol*`.
fn read_dynamic_lists(
    config: &crate::args::Config,
    res: &Resolution,
    versions: &mut Versions,
) -> Result<()> {
    let list_patterns = dynamic_list_patterns(config, versions)?;
    let mut export_patterns: Vec<Pattern> = config
        .export_dynamic_symbols
        .iter()
        .map(|text| Pattern {
            glob: text.contains(['*', '?', '[']),
            text: text.clone(),
            cxx: false,
        })
        .collect();
    for path in &config.export_dynamic_symbol_lists {
        export_patterns.extend(read_dynamic_list(path)?);
    }
    if !export_patterns.is_empty() {
        versions.export_dynamic = matching_definitions(res, &export_patterns);
    }
    if !list_patterns.is_empty() {
        versions.dynamic_list = matching_definitions(res, &list_patterns);
    }
    if config.dynamic_list_data {
        // Every data definition, as GNU ld marks STT_OBJECT and common symbols dynamic.
        versions.has_dynamic_list = true;
        add_data_definitions(res, &mut versions.dynamic_list);
    }
    Ok(())
}

/// The patterns of the `--dynamic-list` files and of GNU ld's built-in C++ lists; sets
/// `versions.has_dynamic_list` when there is any of them.
fn dynamic_list_patterns(
    config: &crate::args::Config,
    versions: &mut Versions,
) -> Result<Vec<Pattern>> {
    // --dynamic-list files use the syntax of one anonymous version node: `{ a; b*; };`.
    let mut list_patterns = Vec::new();
    for path in &config.dynamic_lists {
        list_patterns.extend(read_dynamic_list(path)?);
        versions.has_dynamic_list = true;
    }
    // GNU ld's built-in lists (ldlang.c): C++ operator new and delete, typeinfo.
    let cxx_glob = |text: &str| Pattern {
        text: text.to_string(),
        cxx: true,
        glob: true,
    };
    if config.dynamic_list_cpp_new {
        list_patterns.extend(["operator new*", "operator delete*"].map(cxx_glob));
        versions.has_dynamic_list = true;
    }
    if config.dynamic_list_cpp_typeinfo {
        list_patterns.extend(["typeinfo name for*", "typeinfo for*"].map(cxx_glob));
        versions.has_dynamic_list = true;
    }
    Ok(list_patterns)
}

/// Adds every data definition (STT_OBJECT or common) to `set` (`--dynamic-list-data`).
fn add_data_definitions(res: &Resolution, set: &mut rustc_hash::FxHashSet<SymbolId>) {
    for (i, symbol) in res.symbols.symbols.iter().enumerate() {
        let data = match symbol.def {
            Def::Defined { file, sym, .. } => {
                res.objects[file.0 as usize].obj.symbols[sym as usize].st_type()
                    == object::elf::STT_OBJECT
            }
            Def::Common { .. } => true,
            _ => false,
        };
        if data {
            set.insert(SymbolId(i as u32));
        }
    }
}

/// The base version's name: the soname, else the output's file name.
fn base_version_name(config: &crate::args::Config) -> String {
    config.soname.clone().unwrap_or_else(|| {
        config
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// `--default-symver`'s node: named `base`, taking every global name.
fn default_symver_node(base: &str) -> Node {
    Node {
        name: Some(base.to_string()),
        global: vec![Pattern {
            text: "*".into(),
            cxx: false,
            glob: true,
        }],
        ..Node::default()
    }
}

/// Adds a version definition for each named node (the first of each name) to
/// `versions.defs`; the index of each name.
fn define_node_versions(nodes: &[Node], versions: &mut Versions) -> HashMap<String, u16> {
    let mut index_of: HashMap<String, u16> = HashMap::default();
    for node in nodes {
        if let Some(name) = &node.name {
            if !index_of.contains_key(name) {
                versions.defs.push((name.clone(), node.parents.clone()));
                index_of.insert(name.clone(), versions.defs.len() as u16);
            }
        }
    }
    index_of
}

/// An error for the first exact (not glob, not C++) global name of a node that the link
/// does not define (`--no-undefined-version`).
fn check_exact_names_defined(res: &Resolution, nodes: &[Node]) -> Result<()> {
    for node in nodes {
        for pattern in node.global.iter().filter(|p| !p.glob && !p.cxx) {
            let defined = res
                .symbols
                .lookup(pattern.text.as_bytes())
                .is_some_and(|id| {
                    matches!(
                        res.symbols.get(id).def,
                        Def::Defined { .. } | Def::Common { .. }
                    )
                });
            if !defined {
                bail!(
                    "version script assignment of '{}' to symbol '{}' failed: symbol not defined",
                    node.name.as_deref().unwrap_or("global"),
                    pattern.text
                );
            }
        }
    }
    Ok(())
}

/// Gives each defined symbol its version (`versions.of_symbol`) or makes it local
/// (`versions.local`): by its `.symver` suffix, else by the nodes' patterns. A `.symver`
/// version no node defines gets a definition of its own.
fn assign_symbols(
    res: &Resolution,
    nodes: &[Node],
    index_of: &mut HashMap<String, u16>,
    versions: &mut Versions,
) {
    let has_cxx = nodes
        .iter()
        .flat_map(|n| n.global.iter().chain(&n.local))
        .any(|p| p.cxx);
    for (i, symbol) in res.symbols.symbols.iter().enumerate() {
        if !matches!(symbol.def, Def::Defined { .. } | Def::Common { .. }) {
            continue;
        }
        let id = SymbolId(i as u32);
        // `.symver`: foo@@VER (default) or foo@VER (hidden).
        if let Some(at) = memchr::memchr(b'@', symbol.name) {
            assign_symver(symbol.name, at, id, nodes, has_cxx, index_of, versions);
            continue;
        }
        if nodes.is_empty() {
            continue;
        }
        assign_by_patterns(symbol.name, id, nodes, has_cxx, index_of, versions);
    }
}

/// The version of a `.symver` name (`@` at `at`): foo@@VER (default) or foo@VER (hidden),
/// unless a `local:` pattern of VER's own node hides it.
fn assign_symver(
    name: &[u8],
    at: usize,
    id: SymbolId,
    nodes: &[Node],
    has_cxx: bool,
    index_of: &mut HashMap<String, u16>,
    versions: &mut Versions,
) {
    let rest = &name[at..];
    let (hidden, ver) = match rest.strip_prefix(b"@@") {
        Some(v) => (false, v),
        None => (true, &rest[1..]),
    };
    let ver = String::from_utf8_lossy(ver).into_owned();
    let index = match index_of.get(&ver) {
        Some(&ix) => ix,
        None => {
            versions.defs.push((ver.clone(), Vec::new()));
            let ix = versions.defs.len() as u16;
            index_of.insert(ver.clone(), ix);
            ix
        }
    };
    // As GNU ld: a `local:` pattern of the symbol's own version node that no
    // `global:` pattern there overrides hides it.
    let base = &name[..at];
    let base_demangled = if has_cxx {
        crate::symbols::demangle(base)
    } else {
        String::new()
    };
    let node = nodes
        .iter()
        .find(|n| n.name.as_deref() == Some(ver.as_str()));
    let hidden_by_script = node.is_some_and(|n| {
        n.local.iter().any(|p| p.matches(base, &base_demangled))
            && !n.global.iter().any(|p| p.matches(base, &base_demangled))
    });
    if hidden_by_script {
        versions.local.insert(id);
    } else {
        versions.of_symbol.insert(id, (index, hidden));
    }
}

/// The version of an unversioned name by the nodes' patterns: exact global names win over
/// globs, then the first matching node; else local if some `local:` pattern matches.
fn assign_by_patterns(
    name: &[u8],
    id: SymbolId,
    nodes: &[Node],
    has_cxx: bool,
    index_of: &HashMap<String, u16>,
    versions: &mut Versions,
) {
    let demangled = if has_cxx {
        crate::symbols::demangle(name)
    } else {
        String::new()
    };
    // Exact global names win over globs; then the first matching node.
    let find = |exact: bool| {
        nodes.iter().find(|n| {
            n.global
                .iter()
                .any(|p| p.glob != exact && p.matches(name, &demangled))
        })
    };
    match find(true).or_else(|| find(false)) {
        Some(node) => {
            let index = node.name.as_ref().map_or(1, |n| index_of[n]);
            versions.of_symbol.insert(id, (index, false));
        }
        None => {
            let local = nodes
                .iter()
                .any(|n| n.local.iter().any(|p| p.matches(name, &demangled)));
            if local {
                versions.local.insert(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nodes_with_parents_and_cxx() {
        let nodes = parse(
            "VER_1 { global: foo; bar*; extern \"C++\" { ns::*; }; local: *; };\n\
             /* comment */ VER_2 { global: baz; } VER_1;",
        )
        .unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].name.as_deref(), Some("VER_1"));
        assert_eq!(nodes[0].global.len(), 3);
        assert!(nodes[0].global[2].cxx);
        assert_eq!(nodes[0].local.len(), 1);
        assert_eq!(nodes[1].parents, vec!["VER_1".to_string()]);
    }

    #[test]
    fn anonymous_node() {
        let nodes = parse("{ global: a; local: *; };").unwrap();
        assert_eq!(nodes.len(), 1);
        assert!(nodes[0].name.is_none());
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"foo*", b"foobar"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"f?o", b"fxo"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(!glob_match(b"foo", b"foobar"));
        assert!(glob_match(b"*bar", b"foobarbar"));
        assert!(glob_match(b"f*o*r", b"foobar"));
        assert!(!glob_match(b"f*o*z", b"foobar"));
        assert!(glob_match(b"a[", b"a["));
        assert!(glob_match(b"x[*", b"x[yz"));
        assert!(glob_match(b"**", b""));
        // Exponential for a recursive matcher; found by `cargo xtask fuzz script`.
        let stars = [b'*'; 40];
        let name = [b'a'; 60];
        assert!(!glob_match(&[&stars[..], b"b"].concat(), &name));
    }

    #[test]
    fn rejects_unterminated() {
        assert!(parse("VER_1 { global: foo;").is_err());
    }
}
