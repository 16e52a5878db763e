//! No import cycles inside a crate (issue 19): in every module, the modules directly under it
//! depend on each other one way only, so each can be read, and moved, below the ones that
//! use it.
//!
//! The graph is read from the source text: every `crate::`, `super::`, `self::` path (and a
//! path starting at a child module) in code, comments, strings and `#[cfg(test)]` items
//! left out, resolved through `pub use` re-exports to the module that defines the item.
//! A reference from a module to its own ancestor (`super::Thing`) is part of that ancestor
//! and no edge; a reference between two siblings (or their descendants) is an edge between
//! the siblings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose sources are checked (those that exist).
const CRATES: &[&str] = &[
    "engine/src",
    "core/src",
    "formats/src",
    "sql/src",
    "filestore/src",
    "testkit/src",
];

#[test]
fn no_module_cycles_in_the_workspace_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut problems = Vec::new();
    for dir in CRATES {
        let src = root.join(dir);
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        let krate = Crate::read(&src);
        assert!(
            krate.modules.len() > 1,
            "{dir}: found no modules, the reader is broken"
        );
        if *dir == "engine/src" {
            // the reader sees the real tree: the runtime uses the config
            let top = &krate.edges()[&Vec::new()];
            assert!(
                top.contains_key(&("runtime".into(), "config".into())),
                "{top:?}"
            );
        }
        for cycle in krate.cycles() {
            problems.push(format!("{dir}: {cycle}"));
        }
    }
    assert!(checked >= 3, "engine, core and formats must be checked");
    assert!(
        problems.is_empty(),
        "module cycles (move the helper to a module both sides can use):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reader_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, text: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub use c::Thing;\n",
    );
    // a -> b through a grouped use, b -> c through a re-export at the root, c -> a through
    // super:: in a child file; d is only named in comments, strings and tests
    write("a.rs", "use crate::{x::y, b::B};\n// crate::d::D\n");
    write("b.rs", "pub struct B(crate::Thing);\nconst S: &str = \"crate::d::D\";\n#[cfg(test)]\nmod tests { use crate::d::D; }\n");
    write("c.rs", "pub struct Thing;\nmod inner;\n");
    write("c/inner.rs", "fn f() { super::super::a::g(); }\n");
    write(
        "d.rs",
        "use crate::a::A; fn f<'a>(c: char) -> bool { c == '\"' }\n",
    );
    let krate = Crate::read(src);
    let cycles = krate.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("a, b, c:"), "{}", cycles[0]);
    assert!(cycles[0].contains("c -> a (c/inner.rs:1)"), "{}", cycles[0]);
    assert!(!cycles[0].contains(" d"), "{}", cycles[0]);
}

/// One crate's modules and the references between them.
struct Crate {
    /// Every module path (`[]` is the crate root, `["transform", "expr"]` …).
    modules: BTreeSet<Vec<String>>,
    /// Per module: name re-exported by `pub use` → the module path it points into.
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
    /// (from module, path as written resolved to absolute segments, file:line).
    refs: Vec<(Vec<String>, Vec<String>, String)>,
}

/// A source file's code as tokens, with line numbers.
type Tokens = Vec<(String, usize)>;

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        walk(src, &mut files);
        files.sort();
        let mut parsed = Vec::new();
        let mut modules = BTreeSet::new();
        modules.insert(Vec::new());
        for f in files {
            let rel = f
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let module = module_of(&rel);
            let text = std::fs::read_to_string(&f).unwrap();
            let tokens = drop_test_items(tokenize(&text));
            modules.insert(module.clone());
            // inline `mod x { … }` and `mod x;` declare modules too
            for w in tokens.windows(2) {
                if w[0].0 == "mod" && is_ident(&w[1].0) {
                    let mut m = module.clone();
                    m.push(w[1].0.clone());
                    modules.insert(m);
                }
            }
            parsed.push((rel, module, tokens));
        }
        let mut krate = Crate {
            modules,
            reexports: BTreeMap::new(),
            refs: Vec::new(),
        };
        for (rel, module, tokens) in &parsed {
            krate.scan(rel, module, tokens);
        }
        krate
    }

    /// Collects the paths of one file, tracking inline modules.
    fn scan(&mut self, rel: &str, file_module: &[String], tokens: &Tokens) {
        // (module path, brace depth its block closes at)
        let mut scopes: Vec<(Vec<String>, usize)> = vec![(file_module.to_vec(), 0)];
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let t = tokens[i].0.as_str();
            let here = scopes.last().unwrap().0.clone();
            match t {
                "{" => depth += 1,
                "}" => {
                    if scopes.len() > 1 && scopes.last().unwrap().1 == depth {
                        scopes.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                "mod" if i + 2 < tokens.len() && tokens[i + 2].0 == "{" => {
                    let mut m = here.clone();
                    m.push(tokens[i + 1].0.clone());
                    scopes.push((m, depth + 1));
                }
                "use" => {
                    let public = i > 0 && tokens[i - 1].0 == "pub"
                        || i > 3 && tokens[i - 1].0 == ")" && tokens[i - 4].0 == "pub";
                    let end = (i..tokens.len())
                        .find(|j| tokens[*j].0 == ";")
                        .unwrap_or(tokens.len());
                    let mut leaves = Vec::new();
                    use_tree(&tokens[i + 1..end], Vec::new(), &mut leaves);
                    for (path, alias) in leaves {
                        let Some(abs) = self.absolute(&here, &path, true) else {
                            continue;
                        };
                        if public && alias != "*" && alias != "self" {
                            let target = self.module_prefix(&abs);
                            self.reexports
                                .entry(here.clone())
                                .or_default()
                                .insert(alias, target);
                        }
                        let line = tokens[i].1;
                        self.refs.push((here.clone(), abs, format!("{rel}:{line}")));
                    }
                    i = end;
                }
                _ if is_path_start(tokens, i) => {
                    let mut path = Vec::new();
                    let mut j = i;
                    while j < tokens.len() && is_ident(&tokens[j].0) {
                        path.push(tokens[j].0.clone());
                        if tokens.get(j + 1).map(|t| t.0.as_str()) != Some("::") {
                            break;
                        }
                        j += 2;
                    }
                    if let Some(abs) = self.absolute(&here, &path, false) {
                        self.refs
                            .push((here.clone(), abs, format!("{rel}:{}", tokens[i].1)));
                    }
                    i = j;
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// `path` as written in module `here`, from the crate root; `None` for other crates.
    fn absolute(&self, here: &[String], path: &[String], in_use: bool) -> Option<Vec<String>> {
        let first = path.first()?;
        let mut at: Vec<String>;
        let mut rest = &path[1..];
        match first.as_str() {
            "crate" | "$crate" => at = Vec::new(),
            "self" => at = here.to_vec(),
            "super" => {
                at = here.to_vec();
                at.pop();
                while rest.first().map(String::as_str) == Some("super") {
                    at.pop();
                    rest = &rest[1..];
                }
            }
            name => {
                // a child module of `here` (in the root, a `use` may also start at a module)
                let mut child = here.to_vec();
                child.push(name.to_string());
                if !self.modules.contains(&child) || (!in_use && path.len() < 2) {
                    return None;
                }
                at = here.to_vec();
                rest = path;
            }
        }
        at.extend(rest.iter().cloned());
        Some(at)
    }

    /// The longest module path `abs` starts with.
    fn module_prefix(&self, abs: &[String]) -> Vec<String> {
        (0..=abs.len())
            .rev()
            .map(|n| abs[..n].to_vec())
            .find(|p| self.modules.contains(p))
            .unwrap_or_default()
    }

    /// The module that defines what `abs` names, following re-exports.
    fn target(&self, abs: &[String]) -> Vec<String> {
        let mut m = self.module_prefix(abs);
        let mut rest = abs[m.len()..].to_vec();
        for _ in 0..16 {
            let Some(name) = rest.first() else { break };
            let Some(to) = self.reexports.get(&m).and_then(|r| r.get(name)) else {
                break;
            };
            if *to == m {
                break;
            }
            m = to.clone();
            rest.remove(0);
        }
        m
    }

    /// Per module: an edge between two of its children when code under one refers to
    /// something under the other, with where.
    fn edges(&self) -> BTreeMap<Vec<String>, BTreeMap<(String, String), String>> {
        let mut out: BTreeMap<Vec<String>, BTreeMap<(String, String), String>> = BTreeMap::new();
        for (from, abs, at) in &self.refs {
            let to = self.target(abs);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // one inside the other: a module and its ancestor are one piece
            let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
                continue;
            };
            out.entry(from[..common].to_vec())
                .or_default()
                .entry((a.clone(), b.clone()))
                .or_insert_with(|| at.clone());
        }
        out
    }

    /// Each cycle as `a, b, c: a -> b (file:line), …` (module paths under their parent).
    fn cycles(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (parent, edges) in self.edges() {
            for scc in strongly_connected(&edges) {
                let prefix = if parent.is_empty() {
                    String::new()
                } else {
                    format!("{}::", parent.join("::"))
                };
                let inside: Vec<String> = edges
                    .iter()
                    .filter(|((a, b), _)| scc.contains(a) && scc.contains(b))
                    .map(|((a, b), at)| format!("{a} -> {b} ({at})"))
                    .collect();
                found.push(format!(
                    "{prefix}{}: {}",
                    scc.iter().cloned().collect::<Vec<_>>().join(", "),
                    inside.join(", ")
                ));
            }
        }
        found
    }
}

/// The groups of two or more nodes that reach each other (Tarjan's algorithm).
fn strongly_connected(edges: &BTreeMap<(String, String), String>) -> Vec<BTreeSet<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    struct Walk<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for u in w.next[v].clone() {
            if !w.index.contains_key(u) {
                visit(w, u);
                let l = w.low[u].min(w.low[v]);
                w.low.insert(v, l);
            } else if w.stack.contains(&u) {
                let l = w.index[u].min(w.low[v]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut group = BTreeSet::new();
            while let Some(u) = w.stack.pop() {
                group.insert(u.to_string());
                if u == v {
                    break;
                }
            }
            if group.len() > 1 {
                w.out.push(group);
            }
        }
    }
    let nodes: Vec<&str> = next.keys().copied().collect();
    let mut w = Walk {
        next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `transform/expr.rs` → `[transform, expr]`; `state/mod.rs` → `[state]`; `lib.rs` → `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn is_ident(t: &str) -> bool {
    let mut c = t.chars();
    c.next()
        .is_some_and(|f| f.is_alphabetic() || f == '_' || f == '$')
        && c.all(|x| x.is_alphanumeric() || x == '_')
}

/// Whether token `i` starts a path (`a::…`, not the tail of `x::a::…`).
fn is_path_start(tokens: &Tokens, i: usize) -> bool {
    is_ident(&tokens[i].0)
        && tokens.get(i + 1).map(|t| t.0.as_str()) == Some("::")
        && (i == 0 || tokens[i - 1].0 != "::")
}

/// The leaves of a `use` tree: (path, the name it is known by; `*` for a glob).
fn use_tree(tokens: &[(String, usize)], prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix;
    let mut i = 0;
    if tokens.first().map(|t| t.0.as_str()) == Some("::") {
        i = 1;
    }
    while i < tokens.len() {
        let t = tokens[i].0.as_str();
        match t {
            "{" => {
                // split the group at its top-level commas
                let mut depth = 0;
                let mut start = i + 1;
                for j in i + 1..tokens.len() {
                    match tokens[j].0.as_str() {
                        "{" => depth += 1,
                        "}" if depth == 0 => {
                            if start < j {
                                use_tree(&tokens[start..j], path.clone(), out);
                            }
                            return;
                        }
                        "}" => depth -= 1,
                        "," if depth == 0 => {
                            if start < j {
                                use_tree(&tokens[start..j], path.clone(), out);
                            }
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            "*" => {
                out.push((path, "*".into()));
                return;
            }
            "::" => {}
            "as" => {
                let alias = tokens.get(i + 1).map(|t| t.0.clone()).unwrap_or_default();
                out.push((path, alias));
                return;
            }
            name => {
                if name == "self" && !path.is_empty() {
                    let alias = path.last().cloned().unwrap_or_default();
                    out.push((path, alias));
                    return;
                }
                path.push(name.to_string());
            }
        }
        i += 1;
    }
    if let Some(last) = path.last().cloned() {
        out.push((path, last));
    }
}

/// Code tokens (identifiers, `::` and single punctuation) with their line; comments,
/// strings and character literals dropped.
fn tokenize(text: &str) -> Tokens {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += c[from..to.min(c.len())]
            .iter()
            .filter(|x| **x == '\n')
            .count();
    };
    while i < c.len() {
        let x = c[i];
        let next = c.get(i + 1).copied();
        if x == '\n' {
            line += 1;
            i += 1;
        } else if x.is_whitespace() {
            i += 1;
        } else if x == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if x == '/' && next == Some('*') {
            let (start, mut depth) = (i, 0);
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if x == '"' || ((x == 'r' || x == 'b') && raw_or_byte_string(&c, i)) {
            let start = i;
            i = skip_string(&c, i);
            count_lines(start, i, &mut line);
        } else if x == '\'' {
            // a character literal, or a lifetime / label
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if x.is_alphabetic() || x == '_' || x == '$' {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((c[start..i].iter().collect(), line));
        } else if x == ':' && next == Some(':') {
            out.push(("::".into(), line));
            i += 2;
        } else {
            out.push((x.to_string(), line));
            i += 1;
        }
    }
    out
}

/// Whether `c[i]` starts `r"`, `r#"`, `b"`, `br"`, `br#"`.
fn raw_or_byte_string(c: &[char], i: usize) -> bool {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) == Some(&'r') {
        j += 1;
        while c.get(j) == Some(&'#') {
            j += 1;
        }
    }
    j > i && c.get(j) == Some(&'"')
}

/// The index just past the string literal starting at `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    if c[i] == 'b' {
        i += 1;
    }
    if c[i] == 'r' {
        i += 1;
        let mut hashes = 0;
        while c[i] == '#' {
            hashes += 1;
            i += 1;
        }
        i += 1; // the quote
        while i < c.len() {
            if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                return i + 1 + hashes;
            }
            i += 1;
        }
        return i;
    }
    i += 1; // the quote
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The tokens without the items marked `#[cfg(test)]` (tests may use any module).
fn drop_test_items(tokens: Tokens) -> Tokens {
    let is_cfg_test = |i: usize| {
        let want = ["#", "[", "cfg", "(", "test", ")", "]"];
        want.iter()
            .enumerate()
            .all(|(k, w)| tokens.get(i + k).map(|t| t.0.as_str()) == Some(*w))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !is_cfg_test(i) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // the item ends at its first `;` outside braces, or with its first block
        let mut j = i + 7;
        let mut depth = 0;
        while j < tokens.len() {
            match tokens[j].0.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ";" if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        i = j + 1;
    }
    out
}
