//! `ferry init <client>`: a client folder that works before anyone reads a manual.
//!
//! The `sync.toml` it writes is generated from each connector's JSON Schema (the same
//! schema `ferry spec` prints), so it never drifts from the code: every field appears
//! with its doc comment; required fields (by the schema, or "(required" in the doc) are
//! set, optional ones commented out at their default, so uncommenting one changes
//! nothing. Other values come from, in order: the few presets below (fields whose generic example would not
//! fit a fresh client folder), the TOML example in the connector's config doc, an
//! `e.g. \`…\`` in the field's doc, the field's default, and a placeholder of its type.
//! Secret fields get a `${secret:…}` reference, never a value.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ferry_core::secret::ResolveContext;
use ferry_core::{ConnectorDef, Error, ErrorKind, Registry, Result};
use ferry_engine::SyncConfig;
use serde_json::{Map, Value};
use toml::de::{DeTable, DeValue};

/// The source used when none is given and nobody can be asked.
pub const DEFAULT_SOURCE: &str = "file";
/// The destination used when none is given and nobody can be asked.
pub const DEFAULT_DESTINATION: &str = "sqlite";

/// Creates the client folder and prints what to do next. Exit code 0, or an error
/// (an existing folder or a bad name is a config error: exit 2).
pub fn init(
    client: &str,
    source: Option<&str>,
    destination: Option<&str>,
    dir: Option<&Path>,
) -> Result<u8> {
    check_client_name(client)?;
    let folder = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(client));
    refuse_existing(&folder)?;

    let registry = crate::registry();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let source = match source {
        Some(s) => s.to_string(),
        None if interactive => ask(&registry, Role::Source)?,
        None => DEFAULT_SOURCE.to_string(),
    };
    let destination = match destination {
        Some(d) => d.to_string(),
        None if interactive => ask(&registry, Role::Destination)?,
        None => DEFAULT_DESTINATION.to_string(),
    };
    let src = connector(&registry, &source, Role::Source)?;
    let dst = connector(&registry, &destination, Role::Destination)?;

    let mut secrets = Vec::new();
    let mut sync_toml = render_sync_toml(client, src, dst, &mut secrets);
    sync_toml.push_str(&render_streams(&sync_toml, &folder));
    // a generated file that does not load is a bug here, not the user's problem
    SyncConfig::parse(
        &folder.join("sync.toml"),
        sync_toml.clone(),
        folder.clone(),
        ResolveContext::default(),
    )
    .map_err(|e| Error::internal(format!("ferry init generated an invalid sync.toml: {e}")))?;

    let mut files = vec![
        ("sync.toml".to_string(), sync_toml),
        (".gitignore".to_string(), GITIGNORE.to_string()),
        (
            "README.md".to_string(),
            render_readme(client, &source, &destination, &secrets),
        ),
    ];
    let mut dirs = vec![".ferry"];
    if source == "file" {
        dirs.push("data");
        files.push((
            "data/.gitkeep".to_string(),
            String::new(), // keeps the folder in git; its CSV files stay out (.gitignore)
        ));
    }
    create(&folder, &dirs, &files)?;

    println!(
        "created {} for client `{client}`: {source} -> {destination}",
        folder.display()
    );
    for (name, _) in &files {
        if !name.ends_with(".gitkeep") {
            println!("  {}", folder.join(name).display());
        }
    }
    for d in &dirs {
        println!("  {}/", folder.join(d).display());
    }
    println!("\nnext:");
    println!("  cd {}", folder.display());
    for (cmd, why) in next_steps(&source, &secrets) {
        println!("  {cmd:<32} # {why}");
    }
    Ok(0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Source,
    Destination,
}

impl Role {
    /// The section in sync.toml, and the key of the schema in `ConnectorDef::spec`.
    fn section(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }
}

/// A client name is also a folder name and goes into files: keep it plain.
fn check_client_name(client: &str) -> Result<()> {
    let ok = !client.is_empty()
        && !client.starts_with(['.', '-'])
        && client
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{client}` cannot be a client name: use letters, digits, `-`, `_` and `.`, not starting with `.` or `-`"
        )))
    }
}

fn refuse_existing(folder: &Path) -> Result<()> {
    match std::fs::read_dir(folder) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::config(format!(
                    "`{}` already exists and is not empty; ferry init never overwrites a folder: remove it or choose another with --dir",
                    folder.display()
                ))
                .with("folder", folder.display()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if folder.exists() => Err(Error::config(format!(
            "`{}` already exists and is not a folder; choose another with --dir",
            folder.display()
        ))),
        Err(e) => Err(Error::io(e, "cannot read the client folder", folder)),
    }
}

/// The connector named `name`, which must be able to play `role`.
fn connector<'a>(registry: &'a Registry, name: &str, role: Role) -> Result<&'a ConnectorDef> {
    let def = registry.get(name)?;
    let fits = match role {
        Role::Source => def.is_source(),
        Role::Destination => def.is_sink(),
    };
    if fits {
        return Ok(def);
    }
    let able: Vec<&str> = candidates(registry, role).iter().map(|d| d.name).collect();
    Err(Error::config(format!(
        "connector `{name}` cannot be a {}; these can: {}",
        role.section(),
        able.join(", ")
    )))
}

fn candidates(registry: &Registry, role: Role) -> Vec<&ConnectorDef> {
    registry
        .all()
        .iter()
        .filter(|d| match role {
            Role::Source => d.is_source(),
            Role::Destination => d.is_sink(),
        })
        .collect()
}

/// Asks on the terminal which connector plays `role`.
fn ask(registry: &Registry, role: Role) -> Result<String> {
    let defs = candidates(registry, role);
    let default = match role {
        Role::Source => DEFAULT_SOURCE,
        Role::Destination => DEFAULT_DESTINATION,
    };
    let items: Vec<String> = defs
        .iter()
        .map(|d| format!("{:<10} {}", d.name, d.description))
        .collect();
    let chosen = dialoguer::Select::with_theme(&dialoguer::theme::ColorfulTheme::default())
        .with_prompt(match role {
            Role::Source => "Read from (source)",
            Role::Destination => "Write to (destination)",
        })
        .items(&items)
        .default(defs.iter().position(|d| d.name == default).unwrap_or(0))
        .interact_opt()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot ask on the terminal: {e}")))?;
    match chosen {
        Some(i) => Ok(defs[i].name.to_string()),
        None => Err(Error::new(
            ErrorKind::Cancelled,
            "cancelled: nothing was created",
        )),
    }
}

// ----------------------------------------------------------------------------------------
// sync.toml

/// Values written (uncommented) instead of the connector's own example, where that
/// example would not work in a fresh client folder. `{client}` is replaced.
const PRESETS: &[(&str, Role, &str, &str)] = &[
    // the file source needs `path` or `streams`; neither is required by the schema alone
    ("file", Role::Source, "path", "\"data/*.csv\""),
    ("file", Role::Destination, "path", "\"out\""),
    ("sqlite", Role::Destination, "path", "\"out/{client}.db\""),
    // the sftp source needs `path` or `streams` too; deliveries go to the client's drop folder
    ("sftp", Role::Source, "path", "\"outgoing/*.csv\""),
    ("sftp", Role::Destination, "path", "\"incoming\""),
];

fn render_sync_toml(
    client: &str,
    src: &ConnectorDef,
    dst: &ConnectorDef,
    secrets: &mut Vec<SecretRef>,
) -> String {
    let mut out = format!(
        "# Ferry sync for client `{client}` (written by `ferry init`).\n\
         # Every field of each connector is listed with its meaning: required ones are set,\n\
         # optional ones are commented out at their default (an example when none applies).\n\
         # `ferry spec {}` and `ferry spec {}` print the full schemas.\n\n\
         client = {}\n",
        src.name,
        dst.name,
        toml_string(client)
    );
    for (def, role) in [(src, Role::Source), (dst, Role::Destination)] {
        out.push('\n');
        render_section(&mut out, client, def, role, secrets);
    }
    out
}

/// `[[streams]]` for every stream the source offers as configured, when it can tell
/// without anything more (a source needing data files or a reachable server cannot yet):
/// upserted by the stream's primary key where the destination can, and read
/// incrementally by its default cursor, so every rerun writes each row once (a trial,
/// `sync --limit 100`, keeps no rows). Otherwise one commented example.
fn render_streams(sync_toml: &str, folder: &Path) -> String {
    let Some((streams, upsert)) = discover(sync_toml, folder) else {
        return STREAMS_EXAMPLE.to_string();
    };
    let mut out = String::from(
        "\n# The streams the source offers now (`ferry discover` shows their columns): each is\n\
         # upserted by its primary key where it has one, and read incrementally by its cursor,\n\
         # so a rerun writes each row once. Remove an entry to skip that stream; without any\n\
         # [[streams]], every stream is appended in full.\n",
    );
    for s in streams.iter().take(MAX_LISTED_STREAMS) {
        out.push_str(&format!("[[streams]]\nname = {}\n", toml_string(&s.name)));
        if upsert && !s.primary_key.is_empty() {
            let line = "mode = \"upsert\"";
            out.push_str(&format!(
                "{line:<30} # append | overwrite | upsert | history (every version)\n"
            ));
        }
        if let Some(c) = s
            .default_cursor
            .as_ref()
            .filter(|_| s.supports_incremental())
        {
            let line = format!("cursor = {}", toml_string(c));
            out.push_str(&format!(
                "{line:<30} # only rows newer than the last run's\n"
            ));
        }
        out.push('\n');
    }
    if streams.len() > MAX_LISTED_STREAMS {
        out.push_str(&format!(
            "# … and {} more streams (`ferry discover`).\n",
            streams.len() - MAX_LISTED_STREAMS
        ));
    }
    out
}

const MAX_LISTED_STREAMS: usize = 20;

/// The source's streams and whether the destination can upsert, if the config as
/// generated builds and discovers within a few seconds (no secrets, no prompts).
fn discover(sync_toml: &str, folder: &Path) -> Option<(Vec<ferry_core::StreamInfo>, bool)> {
    let cfg = SyncConfig::parse(
        &folder.join("sync.toml"),
        sync_toml.to_string(),
        folder.to_path_buf(),
        ResolveContext::default(),
    )
    .ok()?;
    let registry = crate::registry();
    let source = registry.build_source(&cfg.source).ok()?;
    let sink = registry.build_sink(&cfg.destination).ok()?;
    let upsert = sink
        .capabilities()
        .modes
        .contains(&ferry_core::WriteMode::Upsert);
    let discover = async move {
        tokio::time::timeout(std::time::Duration::from_secs(3), source.discover()).await
    };
    let catalog = match tokio::runtime::Handle::try_current() {
        Ok(h) => tokio::task::block_in_place(|| h.block_on(discover)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?
            .block_on(discover),
    };
    let streams = catalog.ok()?.ok()?.streams;
    (!streams.is_empty()).then_some((streams, upsert))
}

const STREAMS_EXAMPLE: &str = "
# Which streams to sync, and how (optional: without any, every stream the source offers
# is appended). `ferry discover` lists the streams, their columns and keys.
# [[streams]]
# name = \"customers\"             # a stream `ferry discover` lists
# mode = \"upsert\"                # append | overwrite | upsert | history (SQL: every version
#                                  # of a keyed row, dated by the run's start; see the README)
# primary_key = [\"id\"]           # default: the source's key
# deletes = \"soft\"               # upsert into a SQL database: rows that left the source are
#                                  # marked in `_ferry_deleted_at` (\"soft\") or deleted (\"hard\");
#                                  # with history, either closes the key's current version
# cursor = \"updated_at\"          # read incrementally by this column
# incremental = true             # with `cdc` on a PostgreSQL source: read the table's changes
#                                  # (mode = \"upsert\" and deletes; not with history)
# destination = \"crm_customers\"  # another name at the destination (default: the same)
";

/// A secret field: written as `${secret:name}`, to be stored with `ferry secrets set`.
struct SecretRef {
    /// The vault name: `<connector>_<field>`.
    name: String,
    /// `source` or `destination`.
    section: &'static str,
    field: String,
    /// Set in sync.toml (required), rather than commented out.
    active: bool,
}

/// One field of a connector section as `ferry init` writes it.
struct FieldLine {
    name: String,
    doc: Option<String>,
    /// TOML after `name = ` (may span lines).
    value: String,
    /// Written uncommented (required, or preset).
    active: bool,
}

fn render_section(
    out: &mut String,
    client: &str,
    def: &ConnectorDef,
    role: Role,
    secrets: &mut Vec<SecretRef>,
) {
    out.push_str(&format!("[{}]\n", role.section()));
    out.push_str(&format!("# {}\n", first_line(def.description)));
    out.push_str(&format!("type = {}\n", toml_string(def.name)));
    for f in section_fields(client, def, role, secrets) {
        out.push('\n');
        for line in f.doc.iter().flat_map(|d| d.lines()) {
            out.push_str(format!("# {line}").trim_end());
            out.push('\n');
        }
        let line = format!("{} = {}", toml_key(&f.name), f.value);
        for l in line.lines() {
            if !f.active {
                out.push_str("# ");
            }
            out.push_str(l);
            out.push('\n');
        }
    }
}

/// Every field of `def`'s `role` config: required ones first, then the rest, each group
/// in the schema's (alphabetical) order. Secret fields are added to `secrets`.
fn section_fields(
    client: &str,
    def: &ConnectorDef,
    role: Role,
    secrets: &mut Vec<SecretRef>,
) -> Vec<FieldLine> {
    let spec = def.spec();
    let schema = &spec[role.section()];
    let empty = Map::new();
    let props = schema["properties"].as_object().unwrap_or(&empty);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let example = doc_example(schema, role);
    let defs = &schema["$defs"];

    let mut names: Vec<&String> = props.keys().collect();
    names.sort_by_key(|n| !required.contains(&n.as_str()));
    let mut fields = Vec::new();
    for name in names {
        let prop = &props[name.as_str()];
        let preset = PRESETS
            .iter()
            .find(|(c, r, f, _)| *c == def.name && *r == role && f == name)
            .map(|(_, _, _, v)| v.replace("{client}", client));
        let doc = prop["description"].as_str().unwrap_or("");
        // "required, here or in `url`": not required by the schema, but needed to connect
        let needed = required.contains(&name.as_str()) || doc.contains("(required");
        let value = if is_secret(prop, defs) {
            let reference = format!("{}_{}", def.name.replace('-', "_"), name);
            let value = toml_string(&format!("${{secret:{reference}}}"));
            secrets.push(SecretRef {
                name: reference,
                section: role.section(),
                field: name.clone(),
                active: needed,
            });
            value
        } else if let Some(v) = preset.clone() {
            v
        } else if let Some(v) = (!needed).then(|| doc_default(prop)).flatten() {
            // commented out at its real default: uncommenting it changes nothing
            v
        } else {
            example_value(name, prop, defs, example.as_ref())
        };
        fields.push(FieldLine {
            name: name.clone(),
            doc: prop["description"].as_str().map(str::to_string),
            value,
            active: needed || preset.is_some(),
        });
    }
    fields
}

/// The fields of the `[source]`/`[destination]` table in the ```toml example of the
/// config type's doc, each as written there (its formatting and key order kept).
fn doc_example(schema: &Value, role: Role) -> Option<BTreeMap<String, String>> {
    let doc = schema["description"].as_str()?;
    let start = doc.find("```toml")? + "```toml".len();
    let end = doc[start..].find("```")? + start;
    let text = &doc[start..end];
    let root = DeTable::parse(text).ok()?.into_inner();
    let section = root
        .iter()
        .find(|(k, _)| k.get_ref() == role.section())
        .and_then(|(_, v)| match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        })
        .unwrap_or(&root);
    Some(
        section
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), text[v.span()].trim().to_string()))
            .collect(),
    )
}

fn example_value(
    name: &str,
    prop: &Value,
    defs: &Value,
    example: Option<&BTreeMap<String, String>>,
) -> String {
    if let Some(v) = prop["examples"].as_array().and_then(|a| a.first()) {
        if let Some(t) = json_to_toml(v) {
            return render_value(&t);
        }
    }
    // an example written as `[[section.name]]` tables has no inline form: skip it
    if let Some(v) = example
        .and_then(|t| t.get(name))
        .filter(|v| format!("v = {v}").parse::<toml::Table>().is_ok())
    {
        return v.clone();
    }
    let doc = prop["description"].as_str().unwrap_or("");
    let takes_string = accepts_string(prop, defs);
    if let Some(v) = snippet_after(doc, "e.g. `", takes_string) {
        return v;
    }
    if let Some(v) = prop.get("default").filter(|v| !v.is_null()) {
        if let Some(t) = json_to_toml(v) {
            return render_value(&t);
        }
    }
    if let Some(v) = snippet_after(doc, "default `", takes_string) {
        return v;
    }
    placeholder(prop, defs)
}

/// The first `` `X` `` after `marker` in `doc`, as a TOML value: as written when it parses
/// as one, else as a string when the field takes strings.
fn snippet_after(doc: &str, marker: &str, takes_string: bool) -> Option<String> {
    let start = doc.find(marker)? + marker.len();
    let len = doc[start..].find('`')?;
    let text = &doc[start..start + len];
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = format!("v = {text}").parse::<toml::Table>() {
        return t.get("v").map(render_value);
    }
    takes_string.then(|| toml_string(text))
}

/// The field's default as its doc states it (`(default 15)`, ``(default `prefer`)``,
/// `(default false: …)`) or as the schema records it; `None` when the default is not a
/// value (`default: none`, `default: every table`).
fn doc_default(prop: &Value) -> Option<String> {
    match prop.get("default") {
        // an empty list or table says less than an example of what goes there
        Some(Value::Array(a)) if a.is_empty() => return None,
        Some(Value::Object(o)) if o.is_empty() => return None,
        Some(v) => {
            if let Some(t) = json_to_toml(v) {
                return Some(render_value(&t));
            }
        }
        None => {}
    }
    let doc = prop["description"].as_str()?.replace('\n', " ");
    let start = doc.find("(default ")? + "(default ".len();
    let rest = &doc[start..];
    if let Some(quoted) = rest.strip_prefix('`') {
        let text = &quoted[..quoted.find('`')?];
        // a quoted default is a value as written: TOML, else a string (an enum's name)
        return snippet_after(&format!("`{text}`"), "`", true);
    }
    let end = rest.find([' ', ')', ',', ';', ':'])?;
    if rest[end..].starts_with(' ') {
        return None; // a figure with a unit (`8 MiB`): the schema's default, if any, says it
    }
    let token = &rest[..end];
    let v = format!("v = {token}").parse::<toml::Table>().ok()?;
    v.get("v").map(render_value)
}

/// `prop` with `$ref`s followed and a nullable `anyOf` unwrapped.
fn resolve<'a>(prop: &'a Value, defs: &'a Value) -> &'a Value {
    if let Some(r) = prop["$ref"].as_str() {
        if let Some(name) = r.strip_prefix("#/$defs/") {
            return resolve(&defs[name], defs);
        }
    }
    if let Some(branches) = prop["anyOf"].as_array() {
        if let Some(b) = branches.iter().find(|b| b["type"] != "null") {
            return resolve(b, defs);
        }
    }
    prop
}

fn is_secret(prop: &Value, defs: &Value) -> bool {
    prop["writeOnly"] == true || resolve(prop, defs)["writeOnly"] == true
}

fn types_of(prop: &Value) -> Vec<&str> {
    match &prop["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn accepts_string(prop: &Value, defs: &Value) -> bool {
    types_of(resolve(prop, defs)).contains(&"string")
}

/// A value of the field's type, for a field with no example and no default.
fn placeholder(prop: &Value, defs: &Value) -> String {
    let p = resolve(prop, defs);
    for key in ["oneOf", "enum"] {
        if let Some(first) = p[key].as_array().and_then(|a| a.first()) {
            let v = if key == "oneOf" {
                &first["const"]
            } else {
                first
            };
            if let Some(t) = json_to_toml(v) {
                return render_value(&t);
            }
        }
    }
    let types = types_of(p);
    let ty = types.iter().find(|t| **t != "null").copied().unwrap_or("");
    match ty {
        "boolean" => "false",
        "integer" => "0",
        "number" => "0.0",
        "array" => "[]",
        "object" => "{}",
        _ => "\"\"",
    }
    .to_string()
}

fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// A TOML value as it is written after `key = `: inline, except that a long array puts
/// one element per line.
fn render_value(v: &toml::Value) -> String {
    let inline = render_inline(v);
    match v {
        toml::Value::Array(items) if inline.len() > 60 && !items.is_empty() => {
            let mut s = String::from("[\n");
            for item in items {
                s.push_str("  ");
                s.push_str(&render_inline(item));
                s.push_str(",\n");
            }
            s.push(']');
            s
        }
        _ => inline,
    }
}

fn render_inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => toml_string(s),
        toml::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(render_inline)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), render_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

// ----------------------------------------------------------------------------------------
// The other files

const GITIGNORE: &str = "\
# Kept out of git by `ferry init`:
# state, the encrypted vault and receipts belong to this machine's runs
.ferry/
# local databases and outputs
*.db
*.db-wal
*.db-shm
out/
# the client's data files
data/*
!data/.gitkeep
";

fn next_steps(source: &str, secrets: &[SecretRef]) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    if source == "file" {
        steps.push((
            "cp <files> data/".to_string(),
            "the CSV files to read (see `path` in sync.toml)".to_string(),
        ));
    }
    let needed: Vec<&SecretRef> = secrets.iter().filter(|s| s.active).collect();
    for s in &needed {
        steps.push((
            format!("ferry secrets set {}", s.name),
            format!("[{}] {}: stored encrypted in .ferry/", s.section, s.field),
        ));
    }
    if needed.is_empty() {
        steps.push((
            "ferry secrets set NAME".to_string(),
            "for any password or token: then write \"${secret:NAME}\"".to_string(),
        ));
    }
    for (cmd, why) in [
        ("ferry check", "each connection: ok, or what is wrong"),
        ("ferry discover", "streams, columns, types and keys"),
        (
            "ferry sync --limit 100",
            "a trial: writes 100 rows per stream and rolls them back (proves access and types; keeps nothing)",
        ),
        ("ferry sync", "the real run"),
    ] {
        steps.push((cmd.to_string(), why.to_string()));
    }
    steps
}

fn render_readme(client: &str, source: &str, destination: &str, secrets: &[SecretRef]) -> String {
    let mut s = format!(
        "# {client}\n\n\
         Ferry client folder for **{client}**: from `{source}` to `{destination}`.\n\n\
         | path | what |\n\
         |------|------|\n\
         | `sync.toml` | what to move, from where, to where; every connector field is listed with its meaning |\n\
         | `.ferry/` | incremental state, the encrypted secrets vault, receipts (kept out of git) |\n"
    );
    if source == "file" {
        s.push_str("| `data/` | the files to read (kept out of git) |\n");
    }
    s.push_str(
        "\n## Next steps\n\n\
         Run these in this folder (every command reads `sync.toml` here):\n\n```sh\n",
    );
    for (cmd, why) in next_steps(source, secrets) {
        s.push_str(&format!("{cmd:<32} # {why}\n"));
    }
    s.push_str(&format!(
        "```\n\n\
         `ferry spec {source}` and `ferry spec {destination}` list every config field. \
         Secrets are never written into `sync.toml`: store each with `ferry secrets set NAME` \
         and refer to it as `\"${{secret:NAME}}\"` (or `${{env:NAME}}`, `${{file:path}}`).\n"
    ));
    let optional: Vec<String> = secrets
        .iter()
        .filter(|s| !s.active)
        .map(|s| {
            format!(
                "`{}` in [{}] (`ferry secrets set {}`)",
                s.field, s.section, s.name
            )
        })
        .collect();
    if !optional.is_empty() {
        s.push_str(&format!(
            "\nOptional secret fields, commented out in `sync.toml`: {}.\n",
            optional.join(", ")
        ));
    }
    s
}

fn create(folder: &Path, dirs: &[&str], files: &[(String, String)]) -> Result<()> {
    for d in dirs {
        let p = folder.join(d);
        std::fs::create_dir_all(&p).map_err(|e| Error::io(e, "cannot create folder", &p))?;
    }
    for (name, text) in files {
        let p = folder.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(e, "cannot write", &p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_renders_a_loadable_config() {
        let registry = crate::registry();
        for src in candidates(&registry, Role::Source) {
            for dst in candidates(&registry, Role::Destination) {
                let mut secrets = Vec::new();
                let text = render_sync_toml("acme", src, dst, &mut secrets);
                let cfg = SyncConfig::parse(
                    Path::new("sync.toml"),
                    text.clone(),
                    ".".into(),
                    ResolveContext::default(),
                )
                .unwrap_or_else(|e| panic!("{} -> {}: {e}\n{text}", src.name, dst.name));
                assert_eq!(cfg.client.as_deref(), Some("acme"));
                // every field's value, commented out or not, is valid TOML
                for (def, role) in [(src, Role::Source), (dst, Role::Destination)] {
                    for f in section_fields("acme", def, role, &mut Vec::new()) {
                        let line = format!("{} = {}", toml_key(&f.name), f.value);
                        if let Err(e) = line.parse::<toml::Table>() {
                            panic!("{}.{}: `{line}` is not TOML: {e}", def.name, f.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn values_come_from_examples_defaults_and_presets() {
        let registry = crate::registry();
        let text = render_sync_toml(
            "acme",
            registry.get("file").unwrap(),
            registry.get("sqlite").unwrap(),
            &mut Vec::new(),
        );
        assert!(text.contains("\npath = \"data/*.csv\"\n"), "{text}");
        assert!(text.contains("\npath = \"out/acme.db\"\n"), "{text}");
        assert!(text.contains("\n# header = true\n"), "{text}");
        assert!(text.contains("\n# primary_key = [\"id\"]\n"), "{text}");
        assert!(text.contains("\n# delimiter = \",\"\n"), "{text}");
        assert!(text.contains("\n# busy_timeout_ms = 5000\n"), "{text}");
        let text = render_sync_toml(
            "acme",
            registry.get("generate").unwrap(),
            registry.get("sqlite").unwrap(),
            &mut Vec::new(),
        );
        assert!(
            text.contains("\n# streams = [\n#   { name = \"users\""),
            "{text}"
        );
    }

    #[test]
    fn secret_fields_get_references() {
        let schema = serde_json::json!({
            "properties": {
                "password": { "anyOf": [{ "$ref": "#/$defs/Secret" }, { "type": "null" }], "description": "The password." }
            },
            "required": ["password"],
            "$defs": { "Secret": { "type": "string", "writeOnly": true } }
        });
        assert!(is_secret(
            &schema["properties"]["password"],
            &schema["$defs"]
        ));
        assert!(!is_secret(
            &serde_json::json!({ "type": "string" }),
            &Value::Null
        ));
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct WithSecret {
        /// Host name (required).
        host: String,
        /// Password (required).
        password: ferry_core::Secret,
        /// API token (default: none).
        token: Option<ferry_core::Secret>,
    }

    #[test]
    fn secret_fields_are_references_and_required_ones_are_next_steps() {
        let def = ConnectorDef::new("crm-x", "a CRM").with_source(|_: WithSecret, _| {
            Err::<std::sync::Arc<dyn ferry_core::Source>, _>(Error::internal(
                "not built in this test",
            ))
        });
        let registry = crate::registry();
        let mut secrets = Vec::new();
        let text = render_sync_toml("acme", &def, registry.get("sqlite").unwrap(), &mut secrets);
        assert!(
            text.contains("\npassword = \"${secret:crm_x_password}\"\n"),
            "{text}"
        );
        assert!(
            text.contains("\n# token = \"${secret:crm_x_token}\"\n"),
            "{text}"
        );
        assert!(text.contains("\nhost = \"\"\n"), "{text}");
        let steps: Vec<String> = next_steps("crm-x", &secrets)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert!(
            steps.contains(&"ferry secrets set crm_x_password".to_string()),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("crm_x_token")),
            "{steps:?}"
        );
        let readme = render_readme("acme", "crm-x", "sqlite", &secrets);
        assert!(
            readme.contains("`token` in [source] (`ferry secrets set crm_x_token`)"),
            "{readme}"
        );
    }

    #[test]
    fn discoverable_sources_get_their_streams() {
        let registry = crate::registry();
        let text = render_sync_toml(
            "acme",
            registry.get("generate").unwrap(),
            registry.get("sqlite").unwrap(),
            &mut Vec::new(),
        );
        let streams = render_streams(&text, Path::new("acme"));
        assert!(
            streams.contains("[[streams]]\nname = \"users\"\nmode = \"upsert\""),
            "{streams}"
        );
        assert!(streams.contains("cursor = \"id\""), "{streams}");
        // a file source has no files yet: the commented example instead
        let text = render_sync_toml(
            "acme",
            registry.get("file").unwrap(),
            registry.get("sqlite").unwrap(),
            &mut Vec::new(),
        );
        assert_eq!(
            render_streams(&text, Path::new("/nonexistent/acme")),
            STREAMS_EXAMPLE
        );
    }

    #[test]
    fn client_names_are_plain() {
        assert!(check_client_name("acme-2_eu.x").is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a b", "..", "a\\b"] {
            assert!(check_client_name(bad).is_err(), "{bad}");
        }
    }
}
