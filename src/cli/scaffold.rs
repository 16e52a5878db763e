//! `ferry new-connector <name>`: a new connector crate that compiles, works and passes
//! the conformance kit before its author has written a line.
//!
//! It writes `connectors/<name>/` (Cargo.toml, README.md, src/{lib,config,source,sink}.rs,
//! tests/conformance.rs) in the Ferry workspace, the folder found by walking up from
//! `--dir` to a `Cargo.toml` with `[workspace]`, and registers the crate with two lines:
//! its dependency in the root `Cargo.toml` and its `register` call in `src/lib.rs`, each
//! kept sorted. Running it again changes nothing: existing files are never overwritten,
//! and a registration line already present is left alone.
//!
//! The generated source yields rows written in its config; the generated sink writes one
//! JSON Lines file per stream. Both are small but real (incremental reads with
//! checkpoints, fsync before `Durable`, staged overwrite), so the author replaces the
//! system calls and keeps the contracts.

use std::path::{Path, PathBuf};

use ferry_core::{Error, Result};

/// Creates (or completes the registration of) connector `name`.
pub fn new_connector(name: &str, source: bool, sink: bool, dir: &Path) -> Result<u8> {
    check_name(name)?;
    let (source, sink) = if source || sink {
        (source, sink)
    } else {
        (true, true)
    };
    let root = workspace_root(dir)?;
    let n = Names::new(name);
    let folder = root.join("connectors").join(name);

    let mut created = Vec::new();
    let exists = folder.exists();
    if exists {
        println!(
            "{} exists: its files are left as they are",
            folder.display()
        );
    } else {
        for (path, text) in files(&n, source, sink) {
            let p = folder.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(e, "cannot create folder", parent))?;
            }
            std::fs::write(&p, text).map_err(|e| Error::io(e, "cannot write", &p))?;
            created.push(p);
        }
        rustfmt(&created);
    }
    let cargo_changed = register_dependency(&root.join("Cargo.toml"), &n)?;
    let lib_changed = register_call(&root.join("src/lib.rs"), &n)?;

    for p in &created {
        println!("created  {}", p.strip_prefix(&root).unwrap_or(p).display());
    }
    for (changed, what) in [
        (
            cargo_changed,
            format!("Cargo.toml: {}", n.dependency_line()),
        ),
        (lib_changed, format!("src/lib.rs: {}", n.register_line())),
    ] {
        println!("{}  {what}", if changed { "added   " } else { "present " });
    }
    if created.is_empty() && !cargo_changed && !lib_changed {
        println!("nothing to do: connector `{name}` is already there and registered");
    } else {
        println!(
            "\nnext:\n  cargo test -p {}          # the conformance kit, against the scaffold\n  \
             then replace the in-memory rows (source.rs) and the JSON Lines file (sink.rs)\n  \
             with calls to your system, keeping the tests green; see docs/writing-a-connector.md",
            n.package
        );
    }
    Ok(0)
}

/// Formats the generated Rust files (import order depends on the name), when rustfmt is
/// installed; the files compile either way.
fn rustfmt(files: &[PathBuf]) {
    let rs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(rs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Names are lowercase letters, digits and single `-`, starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{name}` cannot be a connector name: use lowercase letters, digits and `-`, starting with a letter (e.g. `acme-erp`)"
        )))
    }
}

/// The nearest folder at or above `dir` whose Cargo.toml has a `[workspace]` table.
fn workspace_root(dir: &Path) -> Result<PathBuf> {
    let start = std::path::absolute(dir).map_err(|e| Error::io(e, "cannot resolve", dir))?;
    let mut at = Some(start.as_path());
    while let Some(d) = at {
        let manifest = d.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let is_workspace = text
                .parse::<toml::Table>()
                .map(|t| t.contains_key("workspace"))
                .unwrap_or(false);
            if is_workspace {
                if !d.join("src/lib.rs").is_file() {
                    return Err(Error::config(format!(
                        "{} has no src/lib.rs: it is not the Ferry workspace",
                        d.display()
                    )));
                }
                return Ok(d.to_path_buf());
            }
        }
        at = d.parent();
    }
    Err(Error::config(format!(
        "no Ferry workspace at or above {}: run this inside a clone of Ferry, or pass --dir",
        start.display()
    )))
}

/// The spellings of one connector name.
struct Names {
    /// `acme-erp`: the `type` in sync.toml and the folder.
    name: String,
    /// `ferry-connector-acme-erp`: the package.
    package: String,
    /// `ferry_connector_acme_erp`: the crate in Rust code.
    krate: String,
    /// `AcmeErp`: the prefix of type names.
    ty: String,
}

impl Names {
    fn new(name: &str) -> Names {
        let ty = name
            .split('-')
            .map(|part| {
                let mut c = part.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect();
        Names {
            name: name.to_string(),
            package: format!("ferry-connector-{name}"),
            krate: format!("ferry_connector_{}", name.replace('-', "_")),
            ty,
        }
    }

    fn dependency_line(&self) -> String {
        format!(
            "{} = {{ path = \"connectors/{}\" }}",
            self.package, self.name
        )
    }

    fn register_line(&self) -> String {
        format!("{}::register(&mut r);", self.krate)
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("__PACKAGE__", &self.package)
            .replace("__CRATE__", &self.krate)
            .replace("__TYPE__", &self.ty)
            .replace("__NAME__", &self.name)
    }
}

// ----------------------------------------------------------------------------------------
// Registration: two sorted, idempotent line edits

/// Adds the dependency line to the root manifest's `[dependencies]`, among the other
/// `ferry-connector-*` lines in sorted order. Returns whether the file changed.
fn register_dependency(manifest: &Path, n: &Names) -> Result<bool> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| Error::io(e, "cannot read the workspace manifest", manifest))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let Some(header) = lines.iter().position(|l| l.trim() == "[dependencies]") else {
        return Err(Error::config(format!(
            "{} has no [dependencies] table: add `{}` by hand",
            manifest.display(),
            n.dependency_line()
        )));
    };
    let end = lines[header + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |i| header + 1 + i);
    let key = |l: &str| -> Option<String> {
        let k = l.split('=').next()?.trim();
        k.starts_with("ferry-connector-").then(|| k.to_string())
    };
    let mut last_before = None;
    let mut first_after = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(header + 1) {
        match key(line) {
            Some(k) if k == n.package => return Ok(false),
            Some(k) if k < n.package => last_before = Some(i),
            Some(_) if first_after.is_none() => first_after = Some(i),
            _ => {}
        }
    }
    let at = match (last_before, first_after) {
        (Some(i), _) => i + 1,
        (None, Some(i)) => i,
        // no connector yet: right after ferry-core, else at the top of the table
        (None, None) => lines[header + 1..end]
            .iter()
            .position(|l| l.trim_start().starts_with("ferry-core"))
            .map_or(header + 1, |i| header + 2 + i),
    };
    lines.insert(at, n.dependency_line());
    write_lines(manifest, &lines, &text)?;
    Ok(true)
}

/// Adds `<crate>::register(&mut r);` to `src/lib.rs`, among the other connector
/// registrations in sorted order. Returns whether the file changed.
fn register_call(lib: &Path, n: &Names) -> Result<bool> {
    let text =
        std::fs::read_to_string(lib).map_err(|e| Error::io(e, "cannot read src/lib.rs", lib))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let call = |l: &str| -> Option<String> {
        let t = l.trim();
        (t.starts_with("ferry_connector_") && t.ends_with("::register(&mut r);"))
            .then(|| t.to_string())
    };
    let line = n.register_line();
    let mut last_before = None;
    let mut first_after = None;
    let mut indent = String::from("    ");
    for (i, l) in lines.iter().enumerate() {
        if let Some(c) = call(l) {
            indent = l[..l.len() - l.trim_start().len()].to_string();
            if c == line {
                return Ok(false);
            } else if c < line {
                last_before = Some(i);
            } else if first_after.is_none() {
                first_after = Some(i);
            }
        }
    }
    let at = match (last_before, first_after) {
        (Some(i), _) => i + 1,
        (None, Some(i)) => i,
        (None, None) => {
            let Some(i) = lines.iter().position(|l| l.contains("Registry::new()")) else {
                return Err(Error::config(format!(
                    "{} has no `Registry::new()` to register with: add `{line}` by hand",
                    lib.display()
                )));
            };
            i + 1
        }
    };
    lines.insert(at, format!("{indent}{line}"));
    write_lines(lib, &lines, &text)?;
    Ok(true)
}

fn write_lines(path: &Path, lines: &[String], original: &str) -> Result<()> {
    let mut out = lines.join("\n");
    if original.ends_with('\n') {
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| Error::io(e, "cannot write", path))
}

// ----------------------------------------------------------------------------------------
// The files

fn files(n: &Names, source: bool, sink: bool) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("Cargo.toml", n.fill(&cargo_toml(source, sink))),
        ("README.md", n.fill(&readme(source, sink))),
        ("src/lib.rs", n.fill(&lib_rs(source, sink))),
        ("src/config.rs", n.fill(&config_rs(source, sink))),
    ];
    if source {
        out.push(("src/source.rs", n.fill(SOURCE_RS)));
    }
    if sink {
        out.push(("src/sink.rs", n.fill(SINK_RS)));
    }
    out.push((
        "tests/conformance.rs",
        n.fill(&conformance_rs(source, sink)),
    ));
    out
}

fn cargo_toml(source: bool, sink: bool) -> String {
    let mut s = String::from(
        r#"[package]
name = "__PACKAGE__"
description = "Ferry connector for __NAME__ (say in one line what it connects to)."
version.workspace = true
edition.workspace = true
license.workspace = true

[dependencies]
ferry-core = { path = "../../core" }
"#,
    );
    if source {
        s.push_str(
            "futures = { version = \"0.3.34\", default-features = false, features = [\"std\"] }\n",
        );
    }
    s.push_str(
        r#"schemars = "1.2.3"
serde = { version = "1.0.229", features = ["derive"] }
serde_json = "1.0.154"
"#,
    );
    if sink {
        s.push_str("# file I/O runs on tokio's blocking threads, never on the async runtime\n");
        s.push_str("tokio = { version = \"1.54.1\", features = [\"rt\"] }\n");
    }
    s.push_str(
        r#"
[dev-dependencies]
ferry-testkit = { path = "../../testkit" }
tempfile = "3.27.0"
tokio = { version = "1.54.1", features = ["macros", "rt-multi-thread"] }
"#,
    );
    s
}

fn lib_rs(source: bool, sink: bool) -> String {
    let mut s = String::from(
        "#![doc = include_str!(\"../README.md\")]\n#![deny(missing_docs)]\n\npub mod config;\n",
    );
    if sink {
        s.push_str("mod sink;\n");
    }
    if source {
        s.push_str("mod source;\n");
    }
    let mut exports = Vec::new();
    if sink {
        exports.push("__TYPE__SinkConfig");
    }
    if source {
        exports.extend(["__TYPE__SourceConfig", "ColumnDef", "StreamDef"]);
    }
    s.push_str(&format!("\npub use config::{{{}}};\n", exports.join(", ")));
    if sink {
        s.push_str("pub use sink::__TYPE__Sink;\n");
    }
    if source {
        s.push_str("pub use source::__TYPE__Source;\n");
    }
    s.push_str(
        r#"
ferry_core::connector! {
    name: "__NAME__",
    description: "__NAME__ (say in one line what it connects to)",
"#,
    );
    if source {
        s.push_str("    source: |cfg, _| __TYPE__Source::new(cfg),\n");
    }
    if sink {
        s.push_str("    sink: __TYPE__Sink::new,\n");
    }
    s.push_str("}\n");
    s
}

fn config_rs(source: bool, sink: bool) -> String {
    let mut s = String::from(CONFIG_HEAD);
    if sink {
        s.push_str("use std::path::PathBuf;\n\n");
    }
    s.push_str("use schemars::JsonSchema;\nuse serde::Deserialize;\n");
    if source {
        s.push_str(CONFIG_SOURCE);
    }
    if sink {
        s.push_str(CONFIG_SINK);
    }
    s
}

const CONFIG_HEAD: &str = r#"//! The `[source]` and `[destination]` sections of `type = "__NAME__"`.
//!
//! Config is data: parsing (serde) does no I/O, and neither does building the source or
//! sink from it, so a typo is reported with its line and column before anything
//! connects. Every field has a doc comment: it becomes the field's description in
//! `ferry spec __NAME__` and in the `sync.toml` that `ferry init` writes, so say what the
//! field means and its default. The ```toml example in each type's doc is what
//! `ferry init` fills required fields with: keep it working.
//!
//! Credentials go in fields of type `ferry_core::Secret` (written in sync.toml as
//! `"${secret:NAME}"`), never `String`: a `Secret` prints as `[redacted]`.

"#;

const CONFIG_SOURCE: &str = r#"
/// `[source] type = "__NAME__"`: streams whose columns and rows are written in the config.
///
/// Replace these fields with what your system needs (a URL, a user, a `Secret` token,
/// which tables to read).
///
/// ```toml
/// [source]
/// type = "__NAME__"
/// streams = [
///   { name = "customers", primary_key = ["id"], cursor = "id", columns = [{ name = "id", type = "int64" }, { name = "name", type = "string" }], rows = [{ id = 1, name = "Ada" }, { id = 2, name = "Grace" }] },
/// ]
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct __TYPE__SourceConfig {
    /// The streams this source offers, each with its columns and rows (required).
    pub streams: Vec<StreamDef>,
}

/// One stream of the source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamDef {
    /// Stream name, unique in this source (required).
    pub name: String,
    /// The columns, in order, e.g. `[{ name = "id", type = "int64" }]` (required).
    pub columns: Vec<ColumnDef>,
    /// Columns that identify a row, e.g. `["id"]` (default: none). They never hold NULL.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// A column whose values only grow (int64, float64, date, timestamp or string), for
    /// incremental reads (default: none, the stream is read in full every time).
    #[serde(default)]
    pub cursor: Option<String>,
    /// The rows, one table per row, e.g. `[{ id = 1, name = "Ada" }]`; a missing column is
    /// NULL (default: none). Binary values are base64, dates `YYYY-MM-DD`, timestamps
    /// RFC 3339, decimals text or numbers, json columns any value.
    #[serde(default)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// One column of a stream.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    /// Column name (required).
    pub name: String,
    /// Ferry type (required): `bool`, `int64`, `float64`, `decimal(p,s)`, `string`,
    /// `binary`, `date`, `timestamp` or `json`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the column may hold NULL (default true; false for primary key columns).
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}
"#;

const CONFIG_SINK: &str = r#"
/// `[destination] type = "__NAME__"`: one JSON Lines file per stream in a folder.
///
/// Replace these fields with what your system needs (a URL, a bucket, a `Secret` key).
///
/// ```toml
/// [destination]
/// type = "__NAME__"
/// path = "out/__NAME__"
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct __TYPE__SinkConfig {
    /// Output folder, relative to the config file's folder (required); created when
    /// missing. Stream `s` is written to `<path>/s.jsonl`.
    pub path: PathBuf,
}
"#;

const SOURCE_RS: &str = r#"//! The `__NAME__` source: serves the rows written in its config.
//!
//! Replace the in-memory rows with calls to your system and keep the shape:
//! - [`__TYPE__Source::new`] validates the config without I/O; its errors are
//!   `ConfigInvalid` and name the stream, row and column, so `ferry check` shows them
//!   with the config line.
//! - `check` makes the cheapest real round trip (`SELECT 1`, one GET) and maps each
//!   failure to an `ErrorKind` (`AuthFailed`, `Unreachable`, `NotFound` …).
//! - `discover` reports each stream's schema in Ferry types, its primary key and the
//!   columns it can be read incrementally by.
//! - `read` yields batches lazily, each followed by a checkpoint saying how far it got;
//!   the runtime commits a checkpoint only after the destination made every row before it
//!   durable, and hands it back as `request.state` on the next incremental run.

use std::sync::{Arc, RwLock};

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::cursor::{saved_cursor, ByValue, Case, Checkpointer};
use ferry_core::suggest::nearest;
use ferry_core::types::with_keys;
use ferry_core::values::{parse_date, parse_timestamp_micros, BatchBuilder};
use ferry_core::{
    async_trait, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode,
    ReadRequest, Result, Source, StreamInfo,
};
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::config::{StreamDef, __TYPE__SourceConfig};

type Row = Map<String, Value>;

/// Serves the streams of its config. Clones share the rows, so rows added with
/// [`__TYPE__Source::push_rows`] are seen by every clone.
#[derive(Clone)]
pub struct __TYPE__Source {
    streams: Arc<RwLock<Vec<Stream>>>,
}

#[derive(Clone)]
struct Stream {
    info: StreamInfo,
    /// The cursor column and its type, when the stream can be read incrementally.
    cursor: Option<(String, FerryType)>,
    rows: Vec<Row>,
}

impl __TYPE__Source {
    /// Checks `config` (no I/O) and prepares every stream. Errors name the stream, row
    /// and column at fault.
    pub fn new(config: __TYPE__SourceConfig) -> Result<Self> {
        if config.streams.is_empty() {
            return Err(Error::config("`streams` is empty: add at least one stream"));
        }
        let mut streams: Vec<Stream> = Vec::new();
        for def in &config.streams {
            if streams.iter().any(|s| s.info.name == def.name) {
                return Err(Error::config(format!(
                    "stream `{}` is listed twice in `streams`",
                    def.name
                )));
            }
            let mut stream = plan(def)?;
            check_rows(&stream, &def.rows)?;
            stream.rows = def.rows.clone();
            streams.push(stream);
        }
        Ok(__TYPE__Source {
            streams: Arc::new(RwLock::new(streams)),
        })
    }

    /// Adds rows to stream `name` (newer rows, for incremental reads to find).
    pub fn push_rows(&self, name: &str, rows: Vec<Map<String, Value>>) -> Result<()> {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        let stream = streams
            .iter_mut()
            .find(|s| s.info.name == name)
            .ok_or_else(|| not_found(name))?;
        check_rows(stream, &rows)?;
        stream.rows.extend(rows);
        Ok(())
    }

    fn stream(&self, name: &str) -> Result<Stream> {
        let streams = self.streams.read().unwrap_or_else(|e| e.into_inner());
        streams
            .iter()
            .find(|s| s.info.name == name)
            .cloned()
            .ok_or_else(|| {
                let mut e = not_found(name);
                if let Some(best) = nearest(name, streams.iter().map(|s| s.info.name.as_str())) {
                    e = Error::new(ErrorKind::NotFound, format!("{}; did you mean `{best}`?", e.message()));
                }
                e
            })
    }
}

fn not_found(name: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no stream `{name}` in this source"))
}

/// The schema and keys of one stream, checked.
fn plan(def: &StreamDef) -> Result<Stream> {
    let err = |msg: String| Error::config(format!("stream `{}`: {msg}", def.name));
    if def.name.trim().is_empty() {
        return Err(Error::config("a stream has an empty `name`"));
    }
    if def.columns.is_empty() {
        return Err(err("`columns` is empty: list at least one".into()));
    }
    let mut fields = Vec::new();
    let mut types = Vec::new();
    for c in &def.columns {
        if types.iter().any(|(n, _)| n == &c.name) {
            return Err(err(format!("column `{}` is listed twice", c.name)));
        }
        let ty = FerryType::parse(&c.ty).ok_or_else(|| {
            err(format!(
                "column `{}` has unknown type `{}` (known: {})",
                c.name,
                c.ty,
                FerryType::NAMES.join(", ")
            ))
        })?;
        let key = def.primary_key.contains(&c.name);
        fields.push(ty.field(&c.name, c.nullable && !key));
        types.push((c.name.clone(), ty));
    }
    let column = |name: &str, what: &str| -> Result<FerryType> {
        types
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let mut msg = format!("{what} `{name}` is not a column");
                if let Some(best) = nearest(name, types.iter().map(|(n, _)| n.as_str())) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                err(msg)
            })
    };
    for k in &def.primary_key {
        column(k, "primary key column")?;
    }
    let cursor = match &def.cursor {
        Some(c) => {
            let ty = column(c, "cursor")?;
            if !matches!(
                ty,
                FerryType::Int64
                    | FerryType::Float64
                    | FerryType::Date
                    | FerryType::Timestamp
                    | FerryType::String
            ) {
                return Err(err(format!(
                    "cursor `{c}` is {ty}; a cursor must be int64, float64, date, timestamp or string"
                )));
            }
            Some((c.clone(), ty))
        }
        None => None,
    };
    let schema = with_keys(
        &Schema::new(fields),
        &def.primary_key,
        cursor.as_ref().map(|(c, _)| c.as_str()),
    );
    let mut info = StreamInfo::new(&def.name, schema);
    if let Some((c, _)) = &cursor {
        info = info.incremental([c.clone()]);
    }
    Ok(Stream {
        info,
        cursor,
        rows: Vec::new(),
    })
}

/// Every row fits the stream's columns: known names, values of the right type, no NULL
/// where none is allowed, a readable cursor value.
fn check_rows(stream: &Stream, rows: &[Row]) -> Result<()> {
    let schema = &stream.info.schema;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut builder = BatchBuilder::new(schema.clone(), 1)?;
    for (i, row) in rows.iter().enumerate() {
        let at = format!("stream `{}`, row {}", stream.info.name, i + 1);
        for key in row.keys() {
            if !names.contains(&key.as_str()) {
                let mut msg = format!("{at}: `{key}` is not a column");
                if let Some(best) = nearest(key, names.iter().copied()) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                return Err(Error::config(msg));
            }
        }
        builder
            .push_json_row(row)
            .map_err(|e| Error::config(format!("{at}, column `{}`: {}", e.name, e.message)))?;
        if let Some((c, ty)) = &stream.cursor {
            let v = row.get(c).unwrap_or(&Value::Null);
            if !v.is_null() && key(*ty, v).is_none() {
                return Err(Error::config(format!(
                    "{at}: cursor `{c}` holds `{v}`, which is not a {ty}"
                )));
            }
        }
    }
    Ok(())
}

/// A cursor value, comparable within one column.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The comparable form of cursor value `v` of type `ty` (`None`: NULL or unreadable).
fn key(ty: FerryType, v: &Value) -> Option<Key> {
    let text = v.as_str();
    Some(match ty {
        FerryType::Int64 => Key::Int(v.as_i64().or_else(|| text?.trim().parse().ok())?),
        FerryType::Float64 => Key::Float(v.as_f64().or_else(|| text?.trim().parse().ok())?),
        FerryType::Date => Key::Int(parse_date(text?)? as i64),
        FerryType::Timestamp => Key::Int(parse_timestamp_micros(text?)?),
        FerryType::String => Key::Text(text?.to_string()),
        _ => return None,
    })
}

#[async_trait]
impl Source for __TYPE__Source {
    async fn check(&self) -> Result<()> {
        // Nothing to connect to: the rows are in the config. A real source makes its
        // cheapest round trip here and maps each failure to an ErrorKind.
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let streams = self.streams.read().unwrap_or_else(|e| e.into_inner());
        Ok(Catalog::new(
            streams.iter().map(|s| s.info.clone()).collect(),
        ))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let stream = self.stream(&request.stream)?;
        let schema = stream.info.schema.clone();
        let batch_size = request.batch_size.max(1);

        // Which rows, in which order, and where a checkpoint may follow a batch.
        let mut rows = stream.rows;
        let mut checkpoints = Checkpointer::silent();
        if request.mode == ReadMode::Incremental {
            let (column, ty) = stream.cursor.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("stream `{}` has no `cursor`: it can only be read in full", request.stream),
                )
            })?;
            if let Some(asked) = request.cursor.as_ref().filter(|c| **c != column) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("stream `{}` is read incrementally by `{column}`, not `{asked}`", request.stream),
                ));
            }
            // the cursor value the last run saved: this one reads the rows after it
            let after = match saved_cursor(request.state.as_ref(), &column, Case::Exact)? {
                None => None,
                Some(text) => {
                    let bad = format!("the saved cursor `{text}` is not a {ty}; reset the state");
                    Some(key(ty, &Value::String(text)).ok_or_else(|| Error::data(bad))?)
                }
            };
            let key_of = |r: &Row| key(ty, r.get(&column).unwrap_or(&Value::Null));
            // rows without a cursor value are read by the first run only
            rows.retain(|r| after.is_none() || key_of(r) > after);
            // NULLs first, then by cursor; stable, so ties keep their order
            rows.sort_by(|a, b| key_of(a).partial_cmp(&key_of(b)).unwrap_or(std::cmp::Ordering::Equal));
            let c = column.clone();
            let last = ByValue::new(move |r: &Row| r.get(&c).and_then(|v| Some((key(ty, v)?, v.clone()))));
            checkpoints = Checkpointer::cursor(schema.index_of(&column)?, &column, last);
        }
        if let Some(limit) = request.limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }

        let mut messages: Vec<Result<Message>> = Vec::new();
        if request.mode == ReadMode::FullRefresh {
            messages.push(Ok(Message::Estimate(rows.len() as u64)));
        }
        // The checkpointer offers a checkpoint only where the next row's cursor differs: a
        // resume reads rows with a greater cursor, so one inside a tie would skip the rest.
        let mut chunks: Vec<(Vec<Row>, Option<Value>)> = Vec::new();
        let mut chunk = Vec::new();
        for row in rows {
            if chunk.len() == batch_size {
                chunks.push((std::mem::take(&mut chunk), checkpoints.before(&row)?));
            }
            checkpoints.read(&row)?;
            chunk.push(row);
        }
        if !chunk.is_empty() {
            chunks.push((chunk, checkpoints.last()?));
        }
        // Batches are built as the runtime pulls them, so memory holds one batch at a time.
        let batches = futures::stream::iter(chunks).flat_map(move |(rows, checkpoint)| {
            let mut out = vec![build(&schema, &rows).map(Message::Batch)];
            out.extend(checkpoint.map(|c| Ok(Message::Checkpoint(c))));
            futures::stream::iter(out)
        });
        Ok(futures::stream::iter(messages).chain(batches).boxed())
    }
}

/// One Arrow batch of `rows` (checked when they were added, so this does not fail).
fn build(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch> {
    let mut b = BatchBuilder::new(schema.clone(), rows.len())?;
    for row in rows {
        b.push_json_row(row)
            .map_err(|e| Error::data(format!("column `{}`: {}", e.name, e.message)))?;
    }
    b.finish()
}
"#;

const SINK_RS: &str = r#"//! The `__NAME__` destination: one JSON Lines file per stream, `<path>/<stream>.jsonl`.
//!
//! Replace the file with your system and keep the contract of [`StreamWriter::flush`]:
//! answer `Durable` only once everything written so far would survive a crash, because
//! the runtime commits the source's state right after. Here:
//! - **append**: `write` buffers the rows as JSON lines; `flush` appends them to the file
//!   and fsyncs it, then answers `Durable`; `abort` drops what was not flushed.
//! - **overwrite**: rows go to `.<stream>.jsonl.<run id>.tmp` beside the target; `flush`
//!   answers `AtClose` (nothing is visible yet), `close` renames the temp file over the
//!   target (readers see the old file or the new one, never half), `abort` deletes it.
//!
//! File I/O runs on tokio's blocking threads: an async worker must never wait on a disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::values::to_json;
use ferry_core::{
    async_trait, BuildContext, Durability, Error, ErrorKind, FerryType, Output, Result, Sink,
    SinkCapabilities, StreamWriter, WriteMode, WriteRequest, WriteSummary,
};

use crate::config::__TYPE__SinkConfig;

/// Writes each stream to a JSON Lines file in a folder.
pub struct __TYPE__Sink {
    dir: PathBuf,
}

impl __TYPE__Sink {
    /// A sink for `config`, its `path` relative to the config file's folder. Touches nothing.
    pub fn new(config: __TYPE__SinkConfig, ctx: &BuildContext) -> Result<Self> {
        if config.path.as_os_str().is_empty() {
            return Err(Error::config("`path` (the output folder) is empty"));
        }
        Ok(__TYPE__Sink {
            dir: ctx.base_dir.join(&config.path),
        })
    }
}

/// Runs blocking I/O off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("an I/O task failed: {e}")))?
}

#[async_trait]
impl Sink for __TYPE__Sink {
    async fn check(&self) -> Result<()> {
        let dir = self.dir.clone();
        blocking(move || check_dir(&dir)).await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let stream = &request.stream;
        if stream.is_empty() || stream.starts_with('.') || stream.contains(['/', '\\']) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("stream name `{stream}` cannot be a file name: set `destination = \"…\"` in its [[streams]] entry"),
            ));
        }
        ferry_core::types::check_schema(&request.schema)?;
        let target = self.dir.join(format!("{stream}.jsonl"));
        let staging = match request.mode {
            WriteMode::Append => None,
            WriteMode::Overwrite => Some(
                self.dir
                    .join(format!(".{stream}.jsonl.{}.tmp", request.run_id)),
            ),
            other => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("the __NAME__ destination cannot {other}"),
                ))
            }
        };
        let dir = self.dir.clone();
        let temp = staging.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(e, "cannot create the output folder", &dir))?;
            if let Some(t) = &temp {
                File::create(t).map_err(|e| Error::io(e, "cannot create", t))?;
            }
            Ok(())
        })
        .await?;
        Ok(Box::new(JsonlWriter {
            dir: self.dir.clone(),
            target,
            staging,
            schema: request.schema,
            buffer: Vec::new(),
            rows: 0,
            bytes: 0,
        }))
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite],
        }
    }
}

/// The folder exists and takes files, or can be created (nothing is created here).
fn check_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        let probe = dir.join(format!(".ferry-check-{}", std::process::id()));
        File::create(&probe).map_err(|e| Error::io(e, "cannot write into the output folder", dir))?;
        let _ = std::fs::remove_file(&probe);
        return Ok(());
    }
    if dir.exists() {
        return Err(Error::config(format!(
            "`{}` is a file; `path` must name a folder",
            dir.display()
        )));
    }
    let mut parent = dir.parent();
    while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
        if p.is_dir() {
            return Ok(());
        }
        if p.exists() {
            return Err(Error::config(format!(
                "`{}` is a file, so `{}` cannot be created",
                p.display(),
                dir.display()
            )));
        }
        parent = p.parent();
    }
    Ok(())
}

struct JsonlWriter {
    dir: PathBuf,
    target: PathBuf,
    /// The temp file of an overwrite.
    staging: Option<PathBuf>,
    schema: SchemaRef,
    /// JSON lines written since the last flush.
    buffer: Vec<u8>,
    rows: u64,
    bytes: u64,
}

impl JsonlWriter {
    /// Appends the buffer to the file and fsyncs it.
    async fn write_out(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buffer);
        let path = self.staging.clone().unwrap_or_else(|| self.target.clone());
        self.bytes += data.len() as u64;
        blocking(move || {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(e, "cannot open", &path))?;
            f.write_all(&data)
                .and_then(|_| f.sync_data())
                .map_err(|e| Error::io(e, "cannot write", &path))
        })
        .await
    }
}

#[async_trait]
impl StreamWriter for JsonlWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        // Each row as one JSON object, columns in schema order. The mapping of Ferry types
        // to JSON is `to_json`'s: decimals as exact text, binary as base64, timestamps as
        // RFC 3339 in UTC, json columns embedded as documents.
        let types = FerryType::of_each(&self.schema, FerryType::String);
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| serde_json::to_string(f.name()).expect("a string serializes"))
            .collect();
        for row in 0..batch.num_rows() {
            self.buffer.push(b'{');
            for (i, column) in batch.columns().iter().enumerate() {
                if i > 0 {
                    self.buffer.push(b',');
                }
                self.buffer.extend_from_slice(names[i].as_bytes());
                self.buffer.push(b':');
                let value = to_json(column.as_ref(), types[i], row);
                serde_json::to_writer(&mut self.buffer, &value)?;
            }
            self.buffer.extend_from_slice(b"}\n");
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        self.write_out().await?;
        Ok(if self.staging.is_some() {
            Durability::AtClose
        } else {
            Durability::Durable
        })
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        self.write_out().await?;
        if let Some(temp) = self.staging.take() {
            let (target, dir) = (self.target.clone(), self.dir.clone());
            blocking(move || {
                std::fs::rename(&temp, &target).map_err(|e| Error::io(e, "cannot replace", &target))?;
                // the rename itself is durable only once the folder is synced
                if let Ok(d) = File::open(&dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            })
            .await?;
        }
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "file".into(),
                // relative to the destination's root: receipts name no local folders
                location: self
                    .target
                    .strip_prefix(&self.dir)
                    .unwrap_or(&self.target)
                    .display()
                    .to_string(),
                root: Some(self.dir.clone()),
                rows: self.rows,
                bytes: Some(self.bytes),
                digest: None,
                closed: None,
            }],
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        if let Some(temp) = self.staging {
            blocking(move || match std::fs::remove_file(&temp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(e, "cannot remove", &temp))
                }
                _ => Ok(()),
            })
            .await?;
        }
        Ok(())
    }
}
"#;

fn conformance_rs(source: bool, sink: bool) -> String {
    let mut s = String::from(
        r#"//! The `__NAME__` connector against the shared conformance kit, and its own checks.
//!
//! The kit (`ferry_testkit`) is the contract every connector keeps: all nine Ferry
//! types survive, incremental reads resume exactly, a failed write commits no state, an
//! overwrite that fails leaves the old data. Keep these tests green while replacing the
//! scaffold with calls to your system: point the fixtures at a real (test) instance.

use std::path::Path;
use std::sync::Arc;

"#,
    );
    if source {
        s.push_str("use std::collections::HashMap;\nuse std::sync::Mutex;\n\n");
    }
    s.push_str("use ferry_core::arrow_array::RecordBatch;\n");
    if sink {
        s.push_str("use ferry_core::arrow_schema::SchemaRef;\n");
    }
    s.push_str(
        "use ferry_core::config::ConnectorConfig;\nuse ferry_testkit::{self as testkit, SinkFixture, SourceFixture};\n",
    );
    s.push_str(
        "use ferry_core::{async_trait, ConfigNode, Error, ErrorKind, Registry, Result, Sink, Source};\n",
    );
    let mut uses = vec!["register", "NAME"];
    if source {
        uses.extend([
            "ColumnDef",
            "StreamDef",
            "__TYPE__Source",
            "__TYPE__SourceConfig",
        ]);
    }
    s.push_str(&format!("use __CRATE__::{{{}}};\n", uses.join(", ")));
    s.push_str(
        r#"
fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

fn section(toml: &str, base: &Path) -> Result<ConnectorConfig> {
    Ok(ConnectorConfig {
        kind: NAME.into(),
        kind_offset: 0,
        node: ConfigNode::from_toml(toml, base)?,
    })
}
"#,
    );
    if source {
        s.push_str(CONFORMANCE_SOURCE);
    }
    if sink {
        s.push_str(CONFORMANCE_SINK);
    }
    s.push_str(
        r#"
#[test]
fn every_config_field_is_documented() {
    let registry = registry();
    let spec = registry.get(NAME).unwrap().spec();
    for side in ["source", "destination"] {
        let Some(props) = spec[side]["properties"].as_object() else {
            continue;
        };
        for (name, p) in props {
            let doc = p["description"].as_str().unwrap_or_default();
            assert!(!doc.is_empty(), "{side}.{name} has no doc comment");
            assert!(
                doc.contains("default") || doc.contains("required"),
                "{side}.{name} does not say its default: {doc}"
            );
        }
    }
}
"#,
    );
    s
}

const CONFORMANCE_SOURCE: &str = r##"
// ----------------------------------------------------------------------------------------
// Source

/// Makes each kit stream a source whose config holds the batch's rows.
#[derive(Default)]
struct SourceFix {
    sources: Mutex<HashMap<String, __TYPE__Source>>,
}

/// A batch's rows as config rows (NULLs left out).
fn rows_of(batch: &RecordBatch) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            schema
                .fields()
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let ty = ferry_core::FerryType::of(f)?;
                    let v = ferry_core::values::to_json(batch.column(i).as_ref(), ty, row);
                    (!v.is_null()).then(|| (f.name().clone(), v))
                })
                .collect()
        })
        .collect()
}

#[async_trait]
impl SourceFixture for SourceFix {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        let columns = batch
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnDef {
                name: f.name().clone(),
                ty: ferry_core::FerryType::of(f).expect("kit types").to_string(),
                nullable: f.is_nullable(),
            })
            .collect();
        let source = __TYPE__Source::new(__TYPE__SourceConfig {
            streams: vec![StreamDef {
                name: stream.to_string(),
                columns,
                primary_key: vec!["id".into()],
                cursor: Some("id".into()),
                rows: rows_of(batch),
            }],
        })?;
        self.sources
            .lock()
            .unwrap()
            .insert(stream.to_string(), source.clone());
        Ok(Arc::new(source))
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        let source = self.sources.lock().unwrap().get(stream).cloned();
        let source = source.ok_or_else(|| Error::new(ErrorKind::NotFound, stream.to_string()))?;
        source.push_rows(stream, rows_of(batch))
    }
}

#[tokio::test]
async fn source_passes_the_conformance_kit() {
    testkit::run_source_suite(&SourceFix::default()).await;
}

#[tokio::test]
async fn the_documented_source_example_works() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
streams = [
  { name = "customers", primary_key = ["id"], cursor = "id", columns = [{ name = "id", type = "int64" }, { name = "name", type = "string" }], rows = [{ id = 1, name = "Ada" }, { id = 2, name = "Grace" }] },
]
"#;
    let source = registry()
        .build_source(&section(toml, dir.path()).unwrap())
        .unwrap();
    testkit::source_reads_match_discover(source.as_ref(), 100).await;
}

#[test]
fn source_config_errors_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let build = |toml: &str| {
        registry()
            .build_source(&section(toml, dir.path()).unwrap())
            .err()
            .expect("the config must be refused")
    };
    let e = build("streams = [{ name = \"s\", columns = [{ name = \"id\", type = \"int46\" }] }]");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("unknown type `int46`"), "{e}");
    let e = build("streams = [{ name = \"s\", columns = [{ name = \"name\", type = \"string\" }], rows = [{ nmae = \"x\" }] }]");
    assert!(e.message().contains("did you mean `name`"), "{e}");
    let e = build("streams = [{ name = \"s\", columns = [{ name = \"id\", type = \"int64\" }], rows = [{ id = \"x\" }] }]");
    assert!(e.message().contains("row 1, column `id`"), "{e}");
    let e = build("streams = [{ name = \"s\", colums = [] }]");
    assert!(e.message().contains("did you mean `columns`"), "{e}");
}
"##;

const CONFORMANCE_SINK: &str = r#"
// ----------------------------------------------------------------------------------------
// Sink

/// A sink writing into a fresh temp folder, read back by parsing its JSON lines.
struct SinkFix {
    dir: tempfile::TempDir,
    sink: Arc<dyn Sink>,
}

impl SinkFix {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sink = registry()
            .build_sink(&section("path = \"out\"", dir.path()).unwrap())
            .unwrap();
        SinkFix { dir, sink }
    }
}

#[async_trait]
impl SinkFixture for SinkFix {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let path = self.dir.path().join("out").join(format!("{stream}.jsonl"));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(e, "cannot read", &path)),
        };
        let mut b = ferry_core::values::BatchBuilder::new(schema.clone(), 16)?;
        for line in text.lines() {
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)?;
            b.push_json_row(&row)
                .map_err(|e| Error::data(format!("{}: {}", e.name, e.message)))?;
        }
        Ok(vec![b.finish()?])
    }
}

#[tokio::test]
async fn sink_passes_the_conformance_kit() {
    testkit::run_sink_suite(&SinkFix::new()).await;
}

#[tokio::test]
async fn sink_check_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "").unwrap();
    let sink = registry()
        .build_sink(&section("path = \"taken\"", dir.path()).unwrap())
        .unwrap();
    let e = sink.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    assert!(e.message().contains("must name a folder"), "{e}");
    let ok = registry()
        .build_sink(&section("path = \"new/folder\"", dir.path()).unwrap())
        .unwrap();
    ok.check().await.unwrap();
    assert!(!dir.path().join("new").exists(), "check must not create anything");
}
"#;

fn readme(source: bool, sink: bool) -> String {
    let mut s = String::from(
        r#"# __PACKAGE__

Ferry connector for **__NAME__**. Generated by `ferry new-connector __NAME__`: the
sections below describe what the scaffold does; rewrite each as the connector grows
(see `docs/writing-a-connector.md`).

## Capabilities

| Capability | Support |
|------------|---------|
"#,
    );
    s.push_str(if source {
        "| source | yes: streams written in the config |\n| full refresh | yes |\n| incremental | yes, by the stream's `cursor` column (int64, float64, date, timestamp or string) |\n| `--limit` | yes |\n"
    } else {
        "| source | no |\n"
    });
    s.push_str(if sink {
        "| destination | yes: one JSON Lines file per stream |\n| write modes | `append`, `overwrite` (staged, swapped in at the end); not `upsert` |\n| durability | `flush` fsyncs before answering `Durable`; an overwrite is durable at `close` |\n"
    } else {
        "| destination | no |\n"
    });
    s.push_str("\n## Config\n");
    if source {
        s.push_str(
            r#"
### Source

```toml
[source]
type = "__NAME__"
streams = [
  { name = "customers", primary_key = ["id"], cursor = "id", columns = [{ name = "id", type = "int64" }, { name = "name", type = "string" }], rows = [{ id = 1, name = "Ada" }, { id = 2, name = "Grace" }] },
]
```

| field | default | meaning |
|-------|---------|---------|
| `streams` | required | the streams, each `{ name, columns, primary_key, cursor, rows }` |
| `streams[].name` | required | stream name, unique in the source |
| `streams[].columns` | required | `[{ name, type, nullable = true }]`, in order |
| `streams[].primary_key` | none | columns that identify a row (never NULL) |
| `streams[].cursor` | none | column to read incrementally by |
| `streams[].rows` | none | one table per row; a missing column is NULL |

Reads: rows in config order (incremental reads: by cursor, after the saved one), in
batches of `batch_size`, each followed by the checkpoint `{"column": "<cursor>",
"cursor": <last value>}`, emitted only where the next row's cursor differs so a resume
never skips rows that tie.
"#,
        );
    }
    if sink {
        s.push_str(
            r#"
### Destination

```toml
[destination]
type = "__NAME__"
path = "out/__NAME__"
```

| field | default | meaning |
|-------|---------|---------|
| `path` | required | output folder, relative to the config file; created when missing. Stream `s` goes to `<path>/s.jsonl` |
"#,
        );
    }
    s.push_str(
        r#"
## Type mapping

| Ferry type | in the config (source) / in the file (destination) |
|------------|-----------------------------------------------------|
| `bool` | `true` / `false` |
| `int64` | integer |
| `float64` | number (NaN and infinities are written as `null`) |
| `decimal(p,s)` | text, exact (`"1234.5678"`); the source also takes numbers |
| `string` | text |
| `binary` | base64 text |
| `date` | `"YYYY-MM-DD"` |
| `timestamp` | RFC 3339 text in UTC (`"2024-05-01T12:00:00.25Z"`) |
| `json` | the document itself (object, array, string, number) |
| NULL | a missing key (source) / `null` (destination) |
"#,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_spelled() {
        for ok in ["acme", "acme-erp", "s3", "a1-b2"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "Acme", "1acme", "acme-", "a--b", "a_b", "a b", "-a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let n = Names::new("acme-erp");
        assert_eq!(n.package, "ferry-connector-acme-erp");
        assert_eq!(n.krate, "ferry_connector_acme_erp");
        assert_eq!(n.ty, "AcmeErp");
    }

    #[test]
    fn registration_is_sorted_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        let lib = dir.path().join("lib.rs");
        std::fs::write(
            &manifest,
            "[package]\nname = \"x\"\n\n[dependencies]\nferry-core = { path = \"core\" }\nferry-connector-file = { path = \"connectors/file\" }\nferry-connector-sqlite = { path = \"connectors/sqlite\" }\nclap = \"4\"\n\n[dev-dependencies]\nferry-connector-zzz = \"1\"\n",
        )
        .unwrap();
        std::fs::write(
            &lib,
            "pub fn registry() -> Registry {\n    let mut r = Registry::new();\n    ferry_connector_file::register(&mut r);\n    ferry_connector_sqlite::register(&mut r);\n    r\n}\n",
        )
        .unwrap();
        for name in ["mysql", "zeta", "acme"] {
            let n = Names::new(name);
            assert!(register_dependency(&manifest, &n).unwrap());
            assert!(register_call(&lib, &n).unwrap());
            assert!(!register_dependency(&manifest, &n).unwrap());
            assert!(!register_call(&lib, &n).unwrap());
        }
        let m = std::fs::read_to_string(&manifest).unwrap();
        let deps: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("ferry-connector-"))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            deps,
            [
                "ferry-connector-acme",
                "ferry-connector-file",
                "ferry-connector-mysql",
                "ferry-connector-sqlite",
                "ferry-connector-zeta",
                "ferry-connector-zzz"
            ]
        );
        assert!(
            m.contains("ferry-connector-zeta = { path = \"connectors/zeta\" }\nclap"),
            "{m}"
        );
        let l = std::fs::read_to_string(&lib).unwrap();
        let calls: Vec<&str> = l
            .lines()
            .filter(|l| l.contains("::register"))
            .map(str::trim)
            .collect();
        assert_eq!(
            calls,
            [
                "ferry_connector_acme::register(&mut r);",
                "ferry_connector_file::register(&mut r);",
                "ferry_connector_mysql::register(&mut r);",
                "ferry_connector_sqlite::register(&mut r);",
                "ferry_connector_zeta::register(&mut r);"
            ]
        );
    }
}
