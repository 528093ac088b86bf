//! The crate's modules form layers that only point down (see the `# Layout`
//! section of `src/lib.rs`). This test reads every source file, finds each
//! reference to another module (`use crate::…`, `use super::…`, and paths
//! such as `crate::security::arm(…)` in code), and fails when
//! - a top-level module uses one listed after it in [`LAYERS`];
//! - a top-level module is missing from [`LAYERS`];
//! - the files of any directory module use each other in a circle.
//!
//! A module's own `mod.rs` may use its children (it is their facade), and a
//! child may use its parent's items; unit tests (`#[cfg(test)]`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first: each may use only modules
/// listed before it.
const LAYERS: &[&str] = &[
    "error",
    "codes",
    "stamp",
    "transport",
    "delivery",
    "hub",
    "broker",
    "identity",
    "request",
    "security",
    "config",
    "conn",
    "protocol",
    "testing",
];

type Module = Vec<String>;

#[test]
fn top_level_modules_only_use_lower_layers() {
    let graph = Graph::read();
    let mut violations = Vec::new();
    let listed: BTreeSet<&str> = LAYERS.iter().copied().collect();
    for module in graph.children(&[]) {
        assert!(
            listed.contains(module.as_str()),
            "module `{module}` is not in LAYERS (tests/layers.rs): place it in its layer"
        );
    }
    for (from, to, file) in graph.edges_at(&[]) {
        let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
        if let (Some(a), Some(b)) = (rank(&from), rank(&to))
            && b >= a
        {
            violations.push(format!("{file}: `{from}` uses `{to}`, a higher layer"));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_module_imports_form_a_circle() {
    let graph = Graph::read();
    let mut circles = Vec::new();
    for dir in graph.directories() {
        let edges: BTreeSet<(String, String)> = graph
            .edges_at(&dir)
            .into_iter()
            .map(|(a, b, _)| (a, b))
            .collect();
        if let Some(circle) = find_cycle(&edges) {
            let at = if dir.is_empty() {
                "the crate root".to_owned()
            } else {
                dir.join("::")
            };
            circles.push(format!("in {at}: {}", circle.join(" -> ")));
        }
    }
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

#[test]
fn the_checker_sees_imports_in_every_form() {
    let refs = references(
        "use crate::{a::X, b::{Y, c::Z}};\nuse super::d::W;\nfn f() { crate::e::g(); }\n\
         // use crate::comment::X;\n#[cfg(test)]\nmod tests { use crate::t::X; }\n",
    );
    let refs: BTreeSet<String> = refs.iter().map(|r| r.join("::")).collect();
    let expected = [
        "crate::a::X",
        "crate::b::Y",
        "crate::b::c::Z",
        "crate::e::g",
        "super::d::W",
    ];
    assert_eq!(refs, expected.map(str::to_owned).into());
}

/// Every module of the crate and every reference between them.
struct Graph {
    modules: BTreeSet<Module>,
    /// Top-level names re-exported by `lib.rs`, and the module they come from.
    root_exports: BTreeMap<String, String>,
    /// (file's module, referenced module, file name).
    refs: Vec<(Module, Module, String)>,
}

impl Graph {
    fn read() -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
        let root_exports = root_exports(&lib);
        let mut graph = Self {
            modules,
            root_exports,
            refs: Vec::new(),
        };
        for file in &files {
            let module = module_of(&src, file);
            let text = std::fs::read_to_string(file).expect("a source file");
            let name = file
                .strip_prefix(&src)
                .unwrap_or(file)
                .display()
                .to_string();
            for path in references(&text) {
                if let Some(target) = graph.resolve(&module, &path) {
                    graph.refs.push((module.clone(), target, name.clone()));
                }
            }
        }
        graph
    }

    /// The module a path names: the longest prefix that is a module.
    fn resolve(&self, from: &Module, path: &[String]) -> Option<Module> {
        let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &path[1..]),
            Some("super") => {
                // In `a/mod.rs` (module `a`) `super` is the crate root; in
                // `a/b.rs` (module `a::b`) it is `a`.
                let mut parent = from.clone();
                parent.pop();
                (parent, &path[1..])
            }
            _ => return None,
        };
        for (i, segment) in rest.iter().enumerate() {
            if segment == "super" {
                base.pop();
                continue;
            }
            let mut next = base.clone();
            next.push(segment.clone());
            if self.modules.contains(&next) {
                base = next;
            } else {
                if base.is_empty() && i == 0 {
                    // `crate::Error`: a name re-exported by lib.rs.
                    let module = self.root_exports.get(segment)?;
                    return Some(vec![module.clone()]);
                }
                break;
            }
        }
        Some(base)
    }

    fn children(&self, dir: &[String]) -> BTreeSet<String> {
        self.modules
            .iter()
            .filter(|m| m.len() == dir.len() + 1 && m.starts_with(dir))
            .map(|m| m[dir.len()].clone())
            .collect()
    }

    fn directories(&self) -> Vec<Module> {
        let mut dirs = vec![Vec::new()];
        dirs.extend(
            self.modules
                .iter()
                .filter(|m| !m.is_empty() && !self.children(m).is_empty())
                .cloned(),
        );
        dirs
    }

    /// Edges between the children of `dir`: (from child, to child, file).
    fn edges_at(&self, dir: &[String]) -> Vec<(String, String, String)> {
        let mut edges = Vec::new();
        for (from, to, file) in &self.refs {
            // Both ends strictly inside `dir`, in different children of it.
            if from.len() <= dir.len() || to.len() <= dir.len() {
                continue;
            }
            if !from.starts_with(dir) || !to.starts_with(dir) {
                continue;
            }
            let (a, b) = (&from[dir.len()], &to[dir.len()]);
            if a != b {
                edges.push((a.clone(), b.clone(), file.clone()));
            }
        }
        edges
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("a source directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("a file under src");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// `pub use module::{A, B};` lines of lib.rs: name → module.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let code = strip(lib);
    for path in use_paths(&code, "pub use ") {
        if let [module, .., name] = path.as_slice() {
            out.insert(name.clone(), module.clone());
        }
    }
    out
}

/// The code without comments and without `#[cfg(test)]` modules.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            // A unit-test module: skip to the end of its block.
            let mut depth = 0i32;
            let mut opened = false;
            for line in lines.by_ref() {
                for c in line.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if opened && depth <= 0 {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every module path a file refers to, as segments (`crate`/`super` first).
fn references(text: &str) -> Vec<Vec<String>> {
    let code = strip(text);
    let mut out = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor) {
            let at = from + i;
            from = at + anchor.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let head = anchor.trim_end_matches("::").to_owned();
            let mut paths = Vec::new();
            parse_tree(&code[from..], vec![head], &mut paths);
            out.extend(paths);
        }
    }
    out
}

/// The paths of `use` items starting with `prefix` (for lib.rs re-exports).
fn use_paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        parse_tree(&code[i + prefix.len()..], Vec::new(), &mut out);
    }
    out
}

/// Parses a use tree (`a::b::{c, d::e}`) at the start of `text`, appending
/// each full path to `out`; returns the bytes consumed.
fn parse_tree(text: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut path = base;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            i += 1;
            loop {
                i += parse_tree(&text[i..], path.clone(), out);
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => return i + 1,
                    _ => return i,
                }
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'}') {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start {
            if !path.is_empty() {
                out.push(path);
            }
            return i;
        }
        let segment = &text[start..i];
        if segment != "self" {
            path.push(segment.to_owned());
        }
        if text[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

/// A circle in a directed graph, if there is one.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| *n == node) {
            let mut circle: Vec<String> = stack[i..].iter().map(|s| (*s).to_owned()).collect();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(circle) = visit(to, next, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in next.keys() {
        if let Some(circle) = visit(node, &next, &mut Vec::new(), &mut done) {
            return Some(circle);
        }
    }
    None
}
