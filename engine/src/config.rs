//! `sync.toml`: one file that says what to move, from where, to where and how.
//!
//! ```toml
//! client = "acme"                 # optional: the client this folder belongs to
//!
//! [source]
//! type = "file"                   # a connector name (`ferry connectors`)
//! path = "data/*.csv"             # the connector's own fields (`ferry spec file`)
//!
//! [destination]
//! type = "sqlite"
//! path = "acme.db"
//!
//! [[streams]]                     # optional: without it every stream is synced (append)
//! name = "customers"
//! mode = "upsert"                 # append | overwrite | upsert | history
//! primary_key = ["id"]
//! cursor = "updated_at"           # read incrementally by this column
//!
//! [run]                           # optional tuning
//! state = ".ferry/state.json"
//! concurrency = 4
//! ```
//!
//! Errors name the file, line and column and suggest the nearest valid key. The connector
//! sections stay [`ConfigNode`]s, parsed by their connectors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::catalog::WriteMode;
use ferry_core::config::{ConfigFile, ConfigNode, ConnectorConfig, DeValue, Spanned};
use ferry_core::secret::ResolveContext;
use ferry_core::suggest::nearest;
use ferry_core::{Error, Result};
use serde::Deserialize;

mod transforms;
pub use transforms::build_stream;

/// One `[[streams]]` entry: which source stream to sync, and how.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The source stream's name, as `ferry discover` lists it.
    pub name: String,
    /// Name at the destination (default: the same name).
    #[serde(default)]
    pub destination: Option<String>,
    /// How to write: `append` (default), `overwrite`, `upsert` or `history` (every
    /// version of each keyed row, SCD type 2: a changed row closes its current version
    /// and adds one; needs a primary key and a SQL destination).
    #[serde(default)]
    pub mode: Option<WriteMode>,
    /// Columns identifying a row (default: the source's primary key). Needed by `upsert`.
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// What happens to destination rows whose key the source no longer holds: `hard`
    /// (deleted) or `soft` (marked in `_ferry_deleted_at`); default: they stay. Needs
    /// `mode = "upsert"`, or `mode = "history"`, where both close the key's current
    /// version (history is never deleted). Only a complete read deletes: a trial
    /// (`--limit`), a failed run, or one that filtered or rejected rows deletes nothing.
    #[serde(default)]
    pub deletes: Option<ferry_core::Deletes>,
    /// Read incrementally by this column (default: full refresh, or the source's default
    /// cursor when `incremental = true`).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Read incrementally (default: true when `cursor` is set).
    #[serde(default)]
    pub incremental: Option<bool>,
    /// Steps applied to every batch, in order (`hash`, `encrypt`, `mask`, `drop` …).
    #[serde(default)]
    pub transforms: Vec<crate::transform::TransformConfig>,
    /// Checks on every row after the transforms (`not_null`, `unique`, `regex` …).
    #[serde(default)]
    pub checks: Vec<crate::validate::CheckConfig>,
    /// What to do with a record the source cannot read, or a row whose value a transform
    /// cannot convert (a `cast` with `on_error = "fail"`): `fail` (default) or `quarantine`.
    #[serde(default)]
    pub on_bad_record: BadRecordPolicy,
    /// Fail the stream when more than this share of rows is rejected (0.0–1.0; default:
    /// [`DEFAULT_MAX_BAD_RATIO`], 0.1; 1 accepts any share).
    #[serde(default)]
    pub max_bad_ratio: Option<f64>,
    /// What to do when the destination's columns differ: `evolve`, `freeze` or `fail`
    /// (default: add new columns, refuse every other change). See [`crate::schema_change`].
    #[serde(default)]
    pub on_schema_change: crate::schema_change::OnSchemaChange,
    /// Delivered columns that may hold personal data unprotected, each with the reason
    /// (`[{ column = "email", reason = "contract §4" }]`); see `[run] personal_data`.
    #[serde(default)]
    pub allow_personal: Vec<crate::personal_data::Allowance>,
}

/// The share of rejected rows above which a stream fails when it sets no `max_bad_ratio`:
/// a run that sets most of its rows aside has not delivered the data, whatever the policy.
pub const DEFAULT_MAX_BAD_RATIO: f64 = 0.1;

/// What to do with a record the source cannot read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BadRecordPolicy {
    /// Stop the stream with an error naming the record's position (default).
    #[default]
    Fail,
    /// Write it to the quarantine file and go on.
    Quarantine,
}

impl StreamConfig {
    /// A stream entry with defaults.
    pub fn named(name: impl Into<String>) -> Self {
        StreamConfig {
            name: name.into(),
            destination: None,
            mode: None,
            primary_key: None,
            deletes: None,
            cursor: None,
            incremental: None,
            transforms: Vec::new(),
            checks: Vec::new(),
            on_bad_record: BadRecordPolicy::Fail,
            max_bad_ratio: None,
            on_schema_change: Default::default(),
            allow_personal: Vec::new(),
        }
    }

    /// Whether this stream is read incrementally.
    pub fn is_incremental(&self) -> bool {
        self.incremental.unwrap_or(self.cursor.is_some())
    }

    /// The destination name.
    pub fn destination_name(&self) -> &str {
        self.destination.as_deref().unwrap_or(&self.name)
    }
}

/// `[run]`: how the runtime behaves. Every field has a sensible default.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// State file, relative to the config file (default: one file per pipeline,
    /// `.ferry/state/<config>-<hash>.json`, see [`crate::state`]). A file set here belongs
    /// to this config and its destination; another config naming it is refused.
    pub state: PathBuf,
    /// Streams synced at the same time (default 4).
    pub concurrency: usize,
    /// Rows per batch (default 8192).
    pub batch_size: usize,
    /// Batches buffered between a source and its sink; bounds memory (default 4).
    pub channel_capacity: usize,
    /// Commit state at most this often, in seconds (default 5); a checkpoint is held
    /// until then, so fewer flushes slow the load down.
    pub commit_interval_secs: f64,
    /// Folder for delivery receipts, relative to the config file (default `.ferry/receipts`).
    pub receipts: PathBuf,
    /// Vault entry holding the Ed25519 key that signs receipts (default `signing_key`).
    pub signing_key: String,
    /// Also write the client's delivery report, `<run id>.html`, beside each receipt
    /// (default false; `ferry report RUN_ID --html FILE` makes one for any receipt).
    pub html_report: bool,
    /// The client's vault, relative to the config file (default `.ferry/secrets.vault`).
    pub vault: PathBuf,
    /// Where rejected records go: a folder of JSON Lines files, relative to the config file
    /// (default `.ferry/quarantine`), or `{ destination = "destination", stream =
    /// "{stream}_quarantine" }` to write them through the config's destination connector.
    pub quarantine: QuarantineTarget,
    /// What a run does with a delivered column that appears to hold personal data (an
    /// IBAN, e-mail addresses …) and is neither protected by a transform nor allowed by
    /// the stream's `allow_personal`: `warn` (default: one warning per column) or
    /// `refuse` (the stream stops before a row is written). See docs/profile.md.
    pub personal_data: crate::personal_data::Policy,
}

/// `[run] quarantine`: where rejected records go.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum QuarantineTarget {
    /// A folder with one JSON Lines file per stream, relative to the config file.
    Folder(PathBuf),
    /// A destination connector of this config.
    Destination(QuarantineDestination),
}

/// Rejected records written through a destination connector, in append mode.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineDestination {
    /// The connector section to write through: `destination` (the config's `[destination]`).
    pub destination: String,
    /// The stream (table) name; `{stream}` stands for the source stream (default
    /// `{stream}_quarantine`).
    #[serde(default = "default_quarantine_stream")]
    pub stream: String,
}

fn default_quarantine_stream() -> String {
    "{stream}_quarantine".into()
}

impl QuarantineTarget {
    /// The folder, when records go to JSON Lines files.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            QuarantineTarget::Folder(p) => Some(p),
            QuarantineTarget::Destination(_) => None,
        }
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            state: PathBuf::from(".ferry/state.json"),
            concurrency: 4,
            batch_size: ferry_core::source::DEFAULT_BATCH_SIZE,
            channel_capacity: 4,
            commit_interval_secs: 5.0,
            receipts: PathBuf::from(".ferry/receipts"),
            signing_key: "signing_key".into(),
            html_report: false,
            vault: PathBuf::from(".ferry/secrets.vault"),
            quarantine: QuarantineTarget::Folder(PathBuf::from(".ferry/quarantine")),
            personal_data: Default::default(),
        }
    }
}

/// A loaded `sync.toml`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The file.
    pub file: Arc<ConfigFile>,
    /// The folder of the file; relative paths are relative to it.
    pub dir: PathBuf,
    /// The client this folder belongs to.
    pub client: Option<String>,
    /// `[source]`.
    pub source: ConnectorConfig,
    /// `[destination]`.
    pub destination: ConnectorConfig,
    /// `client` in `[destination]`: the client the destination belongs to.
    pub destination_client: Option<String>,
    /// `[[streams]]` (empty: every stream the source offers).
    pub streams: Vec<StreamConfig>,
    /// `[run]`.
    pub run: RunSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    streams: Vec<StreamConfig>,
    #[serde(default)]
    run: RunSettings,
}

const TOP_LEVEL_KEYS: &[&str] = &["client", "source", "destination", "streams", "run"];

impl SyncConfig {
    /// Reads and parses `path`. Connector sections are checked later, by the connector.
    pub fn load(path: impl AsRef<Path>, ctx: ResolveContext) -> Result<SyncConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(e, "cannot read the config file", path))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let ctx = ResolveContext {
            base_dir: dir.clone(),
            ..ctx
        };
        Self::parse(path, text, dir, ctx)
    }

    /// Parses config text as if read from `path`.
    pub fn parse(
        path: &Path,
        text: String,
        dir: PathBuf,
        ctx: ResolveContext,
    ) -> Result<SyncConfig> {
        let file = ConfigFile::new(path, text);
        let parsed = file.parse_table()?;
        let whole_span = parsed.span();
        let mut table = parsed.into_inner();

        for (k, _) in table.iter() {
            let key: &str = k.get_ref();
            if !TOP_LEVEL_KEYS.contains(&key) {
                let mut msg = format!("unknown top-level key `{key}`");
                if let Some(best) = nearest(key, TOP_LEVEL_KEYS.iter().copied()) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                msg.push_str(&format!(" (valid: {})", TOP_LEVEL_KEYS.join(", ")));
                return Err(file.error_at(Some(k.span().start), msg));
            }
        }

        let mut section = |name: &str| -> Result<(ConnectorConfig, Option<String>)> {
            let key = table.keys().find(|k| k.get_ref() == name).cloned();
            let Some(key) = key else {
                return Err(file.error_at(
                    Some(whole_span.end),
                    format!("missing `[{name}]` section: add one with `type = \"<connector>\"` (see `ferry connectors`)"),
                ));
            };
            let value = table.remove(&key).expect("key exists");
            let span = value.span();
            let DeValue::Table(mut t) = value.into_inner() else {
                return Err(file.error_at(Some(span.start), format!("`{name}` must be a table")));
            };
            let tkey = t.keys().find(|k| k.get_ref() == "type").cloned();
            let Some(tkey) = tkey else {
                return Err(file.error_at(
                    Some(key.span().start),
                    format!("`[{name}]` has no `type`: add `type = \"<connector>\"` (see `ferry connectors`)"),
                ));
            };
            let tval = t.remove(&tkey).expect("key exists");
            // `client` on the destination binds it to a client (not a connector field)
            let owner = match t.keys().find(|k| k.get_ref() == "client").cloned() {
                Some(ckey) if name == "destination" => {
                    let v = t.remove(&ckey).expect("key exists");
                    match v.get_ref().as_str() {
                        Some(c) => Some(c.to_string()),
                        None => {
                            return Err(file.error_at(
                                Some(v.span().start),
                                "`destination.client` must be a string (the client id)",
                            ))
                        }
                    }
                }
                _ => None,
            };
            let kind_offset = tval.span().start;
            let Some(kind) = tval.get_ref().as_str().map(str::to_string) else {
                return Err(
                    file.error_at(Some(kind_offset), format!("`{name}.type` must be a string"))
                );
            };
            Ok((
                ConnectorConfig {
                    kind,
                    kind_offset,
                    node: ConfigNode::new(
                        Spanned::new(span, DeValue::Table(t)),
                        file.clone(),
                        name.to_string(),
                        ctx.clone(),
                    ),
                },
                owner,
            ))
        };
        let (source, _) = section("source")?;
        let (destination, destination_client) = section("destination")?;

        let rest = ConfigNode::new(
            Spanned::new(whole_span, DeValue::Table(table)),
            file.clone(),
            "config",
            ctx.clone(),
        );
        let top: TopLevel = rest.parse().map_err(|e| {
            // errors from the rest of the file read better without the `(in config.x)` suffix
            let msg = e.message().replace("(in `config.", "(in `");
            let mut out = Error::config(msg);
            for (k, v) in e.context() {
                out = out.with(k, v);
            }
            out
        })?;
        let mut seen = std::collections::HashSet::new();
        for s in &top.streams {
            if !seen.insert(s.name.as_str()) {
                return Err(file.error_at(
                    find_offset(file.text, &format!("\"{}\"", s.name), 1),
                    format!("stream `{}` is listed twice in [[streams]]", s.name),
                ));
            }
        }
        for s in &top.streams {
            if let Some(a) = s.allow_personal.iter().find(|a| a.reason.trim().is_empty()) {
                return Err(file
                    .error_at(
                        find_offset(file.text, "allow_personal", 0),
                        format!(
                            "stream `{}` allows column `{}` to hold personal data without a reason: \
                             write why it may go unprotected, e.g. `reason = \"contract §4\"`",
                            s.name, a.column
                        ),
                    )
                    .with("stream", &s.name));
            }
            if s.on_schema_change == crate::schema_change::OnSchemaChange::Replace
                && s.mode != Some(WriteMode::Overwrite)
            {
                return Err(file
                    .error_at(
                        find_offset(file.text, "replace", 0),
                        format!(
                            "stream `{}` has `on_schema_change = \"replace\"`, which rebuilds the destination, \
                             but is written with `mode = \"{}\"`, which keeps its rows: use `mode = \"overwrite\"`, \
                             or `evolve` / `freeze` / `fail`",
                            s.name,
                            s.mode.unwrap_or(WriteMode::Append)
                        ),
                    )
                    .with("stream", &s.name));
            }
            if s.mode == Some(WriteMode::Overwrite) && s.is_incremental() {
                // at the stream's entry, not where the source names the stream
                let entries = find_offset(file.text, "[[streams]]", 0).unwrap_or(0);
                let at = file.text[entries..]
                    .find(&format!("\"{}\"", s.name))
                    .map(|i| i + entries);
                return Err(file
                    .error_at(at, overwrite_incremental(s))
                    .with("stream", &s.name));
            }
        }
        if let QuarantineTarget::Destination(q) = &top.run.quarantine {
            if q.destination != "destination" {
                return Err(file.error_at(
                    find_offset(file.text, &format!("\"{}\"", q.destination), 0),
                    format!(
                        "[run] quarantine names destination `{}`, but this config has one destination section: `destination`",
                        q.destination
                    ),
                ));
            }
            if ferry_core::sink::is_reserved(&q.stream) {
                return Err(file.error_at(
                    find_offset(file.text, "quarantine", 0),
                    format!(
                        "[run] quarantine `stream` must not start with `{}`: those names are Ferry's own",
                        ferry_core::sink::RESERVED_PREFIX
                    ),
                ));
            }
            if !q.stream.contains("{stream}") {
                return Err(file.error_at(
                    find_offset(file.text, "quarantine", 0),
                    "[run] quarantine `stream` must contain `{stream}` (e.g. \"{stream}_quarantine\"), so each stream's records have their own table",
                ));
            }
        }
        if top.run.concurrency == 0 || top.run.batch_size == 0 || top.run.channel_capacity == 0 {
            return Err(file.error_at(
                find_offset(file.text, "[run]", 0),
                "[run] concurrency, batch_size and channel_capacity must be at least 1",
            ));
        }
        if let (Some(mine), Some(theirs)) = (&top.client, &destination_client) {
            if mine != theirs {
                return Err(file.error_at(
                    find_offset(file.text, "[destination]", 0),
                    format!("the destination belongs to client `{theirs}`, but this folder is client `{mine}`: refusing to write one client's data into another's destination"),
                ).with("client", mine));
            }
        }
        Ok(SyncConfig {
            file,
            dir,
            client: top.client,
            source,
            destination,
            destination_client,
            streams: top.streams,
            run: top.run,
        })
    }

    /// The stream entry named `name`, if listed.
    pub fn stream(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// An error positioned at the first occurrence of `needle` in the file (e.g. a stream name).
    pub fn error_near(&self, needle: &str, message: impl Into<String>) -> Error {
        self.file
            .error_at(find_offset(self.file.text, needle, 0), message)
    }
}

/// Why `mode = "overwrite"` with an incremental read is refused: overwrite replaces the
/// whole destination with what this run read, and an incremental run reads only the rows
/// new since the last one, so the destination would lose every row it held before.
pub fn overwrite_incremental(s: &StreamConfig) -> String {
    let how = match &s.cursor {
        Some(c) => format!("`cursor = \"{c}\"`"),
        None => "`incremental = true`".to_string(),
    };
    format!(
        "stream `{}` is written with `mode = \"overwrite\"` but read incrementally ({how}): \
         each run would replace the whole destination with only the rows new since the last run. \
         Remove {how} to replace the destination with a full read each run, or use \
         `mode = \"append\"` or `mode = \"upsert\"` to add the new rows to what is there",
        s.name
    )
}

/// Byte offset of the `skip`-th occurrence (0-based) of `needle` outside comments: a
/// config that `ferry init` wrote holds commented examples with the same names.
fn find_offset(text: &str, needle: &str, skip: usize) -> Option<usize> {
    text.match_indices(needle)
        .filter(|(i, _)| !in_comment(text, *i))
        .nth(skip)
        .map(|(i, _)| i)
}

/// Whether byte `at` of TOML `text` is inside a comment: after a `#` on its line that no
/// string holds (basic strings with escapes, and literal strings).
fn in_comment(text: &str, at: usize) -> bool {
    let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text[start..at].chars() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' => return true,
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SyncConfig> {
        SyncConfig::parse(
            Path::new("sync.toml"),
            text.to_string(),
            ".".into(),
            ResolveContext::default(),
        )
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conn {
        path: String,
        password: Option<ferry_core::Secret>,
    }

    #[test]
    fn positions_skip_names_in_comments() {
        let text = "# streams = [{ name = \"customers\" }]\n\
                    [source] # \"customers\" again\n\
                    x = \"a # b\" # \"customers\"\n\
                    y = 'it''s' # \"customers\"\n\
                    z = \"q\\\"#\" # \"customers\"\n\
                    [[streams]]\n\
                    name = \"customers\"\n\
                    path = \"# \\\"customers\\\"\"\n";
        let at = find_offset(text, "\"customers\"", 0).unwrap();
        assert!(text[..at].ends_with("name = "), "{:?}", &text[..at]);
        // a `#` inside a string opens no comment
        assert!(!in_comment(text, text.find("b\"").unwrap()));
        assert!(find_offset(text, "\"customers\"", 1).is_none());
    }

    #[test]
    fn parses_sections_and_streams() {
        let c = load("[source]\ntype = \"file\"\npath = \"a.csv\"\n[destination]\ntype = \"sqlite\"\npath = \"x.db\"\n[[streams]]\nname = \"a\"\nmode = \"upsert\"\ncursor = \"id\"\n").unwrap();
        assert_eq!(c.source.kind, "file");
        assert_eq!(c.destination.kind, "sqlite");
        assert_eq!(c.streams[0].mode, Some(WriteMode::Upsert));
        assert!(c.streams[0].is_incremental());
        let conn: Conn = c.source.node.parse().unwrap();
        assert_eq!(conn.path, "a.csv");
    }

    #[test]
    fn unknown_field_is_positioned_with_suggestion() {
        let c = load("[source]\ntype = \"file\"\npath = \"a\"\npasword = \"x\"\n[destination]\ntype = \"x\"\n").unwrap();
        let e = c.source.node.parse::<Conn>().unwrap_err();
        assert_eq!(e.context_value("line"), Some("4"), "{e}");
        assert_eq!(e.context_value("column"), Some("1"), "{e}");
        assert!(e.message().contains("did you mean `password`"), "{e}");
    }

    #[test]
    fn top_level_and_stream_errors_are_positioned() {
        let e =
            load("clinet = \"a\"\n[source]\ntype=\"f\"\n[destination]\ntype=\"g\"\n").unwrap_err();
        assert!(e.message().contains("did you mean `client`"), "{e}");
        assert_eq!(e.context_value("line"), Some("1"));
        let e = load("[source]\ntype=\"f\"\n[destination]\ntype=\"g\"\n[[streams]]\nname=\"a\"\nmode=\"upsrt\"\n").unwrap_err();
        assert!(e.message().contains("did you mean `upsert`"), "{e}");
        assert_eq!(e.context_value("line"), Some("7"), "{e}");
        let e = load("[source]\ntype=\"f\"\n").unwrap_err();
        assert!(e.message().contains("missing `[destination]`"), "{e}");
        let e = load("[source\ntype=\"f\"\n").unwrap_err();
        assert_eq!(e.context_value("line"), Some("1"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let c = load("[source]\ntype = \"file\"\npath = 5\n[destination]\ntype = \"x\"\n").unwrap();
        let e = c.source.node.parse::<Conn>().unwrap_err();
        assert!(e.message().contains("source.path"), "{e}");
        assert_eq!(e.context_value("line"), Some("3"));
    }

    #[test]
    fn wrong_type_messages_do_not_repeat_the_value() {
        let c = load("[source]\ntype = \"file\"\npath = \"a\"\npassword = 12345678\n[destination]\ntype = \"x\"\n").unwrap();
        let e = c.source.node.parse::<Conn>().unwrap_err();
        assert!(!e.to_string().contains("12345678"), "{e}");
        assert!(
            e.message()
                .contains("invalid type: integer, expected a string"),
            "{e}"
        );
    }
}
