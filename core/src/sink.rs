//! The `Sink` trait: what a connector implements to be written to.
//!
//! A sink opens one [`StreamWriter`] per stream. The contract that keeps data and
//! state consistent is in [`StreamWriter::flush`]: the runtime only commits a
//! checkpoint once the sink says everything before it is durable.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::{Deletes, WriteMode};
use crate::Result;

/// What to open: one destination stream, its schema and how to write it.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// Destination stream name (table, file stem, object prefix).
    pub stream: String,
    /// Schema of the batches that will be written (primary key in its metadata).
    pub schema: SchemaRef,
    /// Append, overwrite or upsert.
    pub mode: WriteMode,
    /// The run's id, for names that must be unique per run (staging tables, object keys).
    pub run_id: String,
    /// What to do with destination rows whose key the source no longer holds, once the
    /// engine says the read was complete ([`StreamWriter::delete_missing`]).
    pub deletes: Option<Deletes>,
}

impl WriteRequest {
    /// The primary key (from the schema's metadata).
    pub fn primary_key(&self) -> Vec<String> {
        crate::types::primary_key(&self.schema)
    }

    /// Checks what every destination needs of a request before it creates anything, and
    /// returns the primary key: a destination name, columns of Ferry's types (at least
    /// one), no two columns that `system` (comparing names as `names` says) takes for one,
    /// the key's columns in the schema, and a key to upsert by.
    pub fn check(&self, system: &str, names: NameMatch) -> Result<Vec<String>> {
        let table = self.stream.as_str();
        let mismatch =
            |m: String| crate::Error::new(crate::ErrorKind::SchemaMismatch, m).with("table", table);
        if table.is_empty() {
            return Err(crate::Error::config("the destination table name is empty"));
        }
        crate::types::check_schema(&self.schema)?;
        let fields = self.schema.fields();
        if fields.is_empty() {
            return Err(mismatch(format!(
                "stream `{table}` has no columns to write"
            )));
        }
        for (i, f) in fields.iter().enumerate() {
            let n = f.name();
            if let Some(o) = fields[..i].iter().find(|o| names.same(o.name(), n)) {
                let o = o.name();
                return Err(mismatch(if o == n {
                    format!("the stream has two columns named `{n}`")
                } else {
                    format!(
                        "columns `{n}` and `{o}` differ only in case, \
                         which {system} cannot tell apart"
                    )
                }));
            }
        }
        let key = self.primary_key();
        if let Some(k) = key.iter().find(|k| self.schema.field_with_name(k).is_err()) {
            return Err(mismatch(format!(
                "primary key column `{k}` is not in the stream's schema"
            )));
        }
        let keyed = matches!(self.mode, WriteMode::Upsert | WriteMode::History);
        if keyed && key.is_empty() {
            return Err(crate::Error::new(
                crate::ErrorKind::Unsupported,
                format!(
                    "{} into `{table}` needs a primary key; set `primary_key` on the stream",
                    self.mode
                ),
            )
            .with("table", table));
        }
        if let Some(d) = self.deletes {
            if !keyed || key.is_empty() {
                return Err(crate::Error::config(format!(
                    "deletes = \"{d}\" on `{table}` needs mode = \"upsert\" or \"history\" and a \
                     primary key: missing rows are found by key"
                ))
                .with("table", table));
            }
        }
        Ok(key)
    }
}

/// How a destination compares column names: whether `id` and `ID` are one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// Byte for byte: `id` and `ID` are two columns (PostgreSQL's quoted names).
    Exact,
    /// ASCII letters without case (SQLite).
    AsciiCaseless,
    /// Every letter without case (MySQL).
    Caseless,
}

impl NameMatch {
    /// Whether the destination takes `a` and `b` for the same name.
    pub fn same(self, a: &str, b: &str) -> bool {
        match self {
            NameMatch::Exact => a == b,
            NameMatch::AsciiCaseless => a.eq_ignore_ascii_case(b),
            NameMatch::Caseless => a == b || a.to_lowercase() == b.to_lowercase(),
        }
    }
}

/// When data a writer has flushed becomes safe from a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Everything written so far is durable now: the runtime commits state at once.
    Durable,
    /// Data becomes durable only when the writer is closed (a staged overwrite, a file
    /// written under a temporary name): the runtime holds state until `close` succeeds.
    AtClose,
}

/// One thing a writer produced: a file, an object or a table, for the run report and receipt.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Output {
    /// `file`, `object` or `table`.
    pub kind: String,
    /// Path, URL or table name (never with credentials). A file's path is relative to
    /// [`Output::root`], so receipts do not show the machine's folder layout.
    pub location: String,
    /// The local folder a file's `location` is relative to (the destination's root; `None`
    /// for other kinds). Shown in the run report, never written to a receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<std::path::PathBuf>,
    /// Rows written there by this run.
    pub rows: u64,
    /// Bytes written, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Hex SHA-256 of the bytes (files) or an order-independent digest of the rows (tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `mode = "history"`: current versions this run closed because their row changed
    /// (`rows` counts the versions it inserted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<u64>,
}

/// What a writer did, returned by [`StreamWriter::close`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteSummary {
    /// Rows accepted.
    pub rows: u64,
    /// What was produced.
    pub outputs: Vec<Output>,
}

impl WriteSummary {
    /// The summary of a writer that produced one output: its rows are all the writer's.
    pub fn of(output: Output) -> WriteSummary {
        WriteSummary {
            rows: output.rows,
            outputs: vec![output],
        }
    }
}

/// Writes one stream's batches.
#[async_trait]
pub trait StreamWriter: Send {
    /// Takes a batch. May buffer; nothing is promised until `flush`.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// Makes everything written so far durable (or staged, see [`Durability`]).
    async fn flush(&mut self) -> Result<Durability>;

    /// Finishes the stream (swap staged data in, rename temp files) and reports.
    async fn close(self: Box<Self>) -> Result<WriteSummary>;

    /// The read was complete: every key the source holds went through `write`. A writer
    /// opened with [`WriteRequest::deletes`] now deletes (hard) or marks (soft) the rows
    /// of the destination whose key it was not given, durably, and returns how many. The
    /// engine calls it only then, before `close`; a trial, a failed or a filtered read
    /// never. The default: this writer cannot (see [`Sink::deletes`]).
    async fn delete_missing(&mut self) -> Result<u64> {
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "this destination cannot delete rows the source no longer holds",
        ))
    }

    /// Every key the source holds, in batches of the key columns ([`Source::read_keys`]
    /// after an incremental read), called before [`StreamWriter::delete_missing`]: the
    /// keys it then keeps are these, not those of the rows written. The default: unsupported.
    ///
    /// [`Source::read_keys`]: crate::Source::read_keys
    async fn keep_keys(&mut self, _keys: RecordBatch) -> Result<()> {
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "this destination cannot take the source's keys",
        ))
    }

    /// Called once, before the first `write`, for a stream whose deletes all come from the
    /// source by key ([`StreamWriter::delete_keys`], change data capture), never from a
    /// complete read: the writer need not keep the keys of the rows written. Default:
    /// nothing to do.
    fn deletes_by_key(&mut self) {}

    /// Keys the source deleted (change data capture, [`crate::Message::Deleted`]), a
    /// batch of the key columns: after what was written before, delete (hard) or mark
    /// (soft) their rows, as the writer's [`WriteRequest::deletes`] says, durably, and
    /// return how many rows it changed. The default: this writer cannot.
    async fn delete_keys(&mut self, _keys: RecordBatch) -> Result<u64> {
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            "this destination cannot delete rows by key",
        ))
    }

    /// Gives up: discards staged data where possible. Called after a failure or Ctrl-C.
    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// What a sink can do; the runtime refuses an unsupported mode before reading a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkCapabilities {
    /// Write modes supported.
    pub modes: Vec<WriteMode>,
}

impl Default for SinkCapabilities {
    fn default() -> Self {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite],
        }
    }
}

/// A system Ferry can write to.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Makes the cheapest real round trip and says precisely what failed.
    async fn check(&self) -> Result<()>;

    /// Lines `ferry check` prints under a passed `check`: the way it went, e.g. the SSH
    /// tunnel and the host key it verified (default: none).
    fn route(&self) -> Vec<String> {
        Vec::new()
    }

    /// Opens a writer for one stream, creating the destination if needed.
    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>>;

    /// The modes this sink supports.
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities::default()
    }

    /// Whether a writer's [`StreamWriter::abort`], called before any `flush`, takes back
    /// every row it was given and drops what it staged, leaving the destination's rows as
    /// they were. `ferry sync --limit` is a trial on that promise: it writes through the
    /// real destination (proving access and types) and then aborts. A sink that cannot
    /// take rows back (a webhook: the receiver already has them) keeps the default `false`,
    /// and `--limit` is refused for it before a row is read.
    fn rolls_back(&self) -> bool {
        false
    }

    /// Whether its writers take [`WriteRequest::deletes`] (and implement
    /// [`StreamWriter::delete_missing`]). The default: no, and the runtime refuses a stream
    /// with `deletes` before reading a row.
    fn deletes(&self) -> bool {
        false
    }

    /// The destination's current schema of `stream` (for plans and schema checks), if it exists.
    async fn describe(&self, _stream: &str) -> Result<Option<SchemaRef>> {
        Ok(None)
    }

    /// Rows the destination of `stream` holds now, when it can tell cheaply (for
    /// `ferry plan`: "overwrite will replace table orders: 1,204 rows now"). `None`: unknown.
    async fn count(&self, _stream: &str) -> Result<Option<u64>> {
        Ok(None)
    }

    /// For `ferry plan` with `deletes`: of the rows of `stream` (those not marked deleted),
    /// how many have their key among `keys` (a batch of the stream's key columns, each key
    /// once), or all of them with `None`. `None`: it cannot tell (the default).
    async fn count_keys(&self, _stream: &str, _keys: Option<&RecordBatch>) -> Result<Option<u64>> {
        Ok(None)
    }

    /// The client this destination was bound to by an earlier sync (a tag it keeps:
    /// a `_ferry_owner` table, a marker file), or `None` if unbound or tags are unsupported.
    async fn owner(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Binds an unbound destination to `client` (first sync of a folder that names its
    /// client), atomically: insert-if-absent, never replace. Returns the client the
    /// destination is bound to afterwards (`client`, or another one that bound it first,
    /// e.g. a concurrent sync), or `None` when this sink keeps no tags or could not write
    /// one.
    async fn bind_owner(&self, _client: &str) -> Result<Option<String>> {
        Ok(None)
    }

    // Optional abilities `ferry verify` asks for (the defaults: not offered).

    /// Checks an output this destination delivered against what its receipt says
    /// (`ferry verify`): fetches it again and compares its SHA-256. `None`, the default:
    /// this destination cannot check outputs of that kind.
    async fn verify_output(&self, _output: &OutputRef) -> Result<Option<Verdict>> {
        Ok(None)
    }

    /// The local folder this destination writes its files into, which file outputs are
    /// named relative to ([`Output::root`]). `None`, the default: it writes no local files.
    fn delivery_root(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// A delivered output, as a receipt names it, for [`Sink::verify_output`] (the CLI makes
/// one from a receipt's entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputRef {
    /// `file`, `object` or `table`.
    pub kind: String,
    /// Where: a path, an object URL (`s3://bucket/key`) or a table.
    pub location: String,
    /// Hex SHA-256 of the bytes delivered, when the receipt has one.
    pub sha256: Option<String>,
    /// Bytes delivered, where known.
    pub bytes: Option<u64>,
}

/// What checking a delivered output again found ([`Sink::verify_output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is as delivered.
    Same,
    /// Its bytes differ from what was delivered.
    Changed,
    /// It is gone.
    Missing,
    /// It cannot be checked from here; the text says why.
    Unverifiable(String),
}

/// Prefix of the names Ferry keeps for itself in a destination (`_ferry_owner`, staging
/// tables): no stream may be written under one.
pub const RESERVED_PREFIX: &str = "_ferry_";

/// Whether `name` is reserved for Ferry's own tables and files (any case: SQLite and
/// MySQL compare table names without it).
pub fn is_reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

/// The verdict on one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCheck {
    /// Recomputed digest matches.
    Ok,
    /// Recomputed digest differs.
    Changed,
    /// The output is gone.
    Missing,
    /// Cannot be recomputed from here (no digest, remote, or a table not fully written by this run).
    Unverifiable,
}

impl std::fmt::Display for OutputCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputCheck::Ok => "ok",
            OutputCheck::Changed => "CHANGED",
            OutputCheck::Missing => "MISSING",
            OutputCheck::Unverifiable => "not checked",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::with_keys;
    use crate::{ErrorKind, FerryType};
    use arrow_schema::Schema;

    fn request(mode: WriteMode, columns: &[&str], key: &[&str]) -> WriteRequest {
        let fields = columns.iter().map(|c| FerryType::Int64.field(*c, true));
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        WriteRequest {
            stream: "t".into(),
            schema: with_keys(&Schema::new(fields.collect::<Vec<_>>()), &key, None),
            mode,
            run_id: "run".into(),
            deletes: None,
        }
    }

    #[test]
    fn write_requests_are_checked_as_the_destination_compares_names() {
        let ok = request(WriteMode::Upsert, &["id", "name"], &["id"]);
        assert_eq!(ok.check("X", NameMatch::Exact).unwrap(), ["id"]);
        let cased = request(WriteMode::Append, &["id", "ID"], &[]);
        assert!(cased.check("X", NameMatch::Exact).is_ok());
        let e = cased.check("SQLite", NameMatch::AsciiCaseless).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
        assert_eq!(e.context_value("table"), Some("t"));
        assert!(
            e.message().contains("which SQLite cannot tell apart"),
            "{e}"
        );
        let e = request(WriteMode::Append, &["é", "É"], &[]).check("MySQL", NameMatch::Caseless);
        assert!(e.is_err());
        let e = request(WriteMode::Append, &["id", "id"], &[]).check("X", NameMatch::Exact);
        assert!(e.unwrap_err().message().contains("two columns named `id`"));
        let e = request(WriteMode::Append, &["id"], &["nope"]).check("X", NameMatch::Exact);
        assert!(e.unwrap_err().message().contains("`nope`"));
        let e = request(WriteMode::Upsert, &["id"], &[]).check("X", NameMatch::Exact);
        assert_eq!(e.unwrap_err().kind(), ErrorKind::Unsupported);
        let mut deleting = request(WriteMode::Upsert, &["id"], &["id"]);
        deleting.deletes = Some(Deletes::Soft);
        assert!(deleting.check("X", NameMatch::Exact).is_ok());
        deleting.mode = WriteMode::Append;
        let e = deleting.check("X", NameMatch::Exact).unwrap_err();
        assert!(e.message().contains("needs mode = \"upsert\""), "{e}");
        let e = request(WriteMode::Append, &[], &[]).check("X", NameMatch::Exact);
        assert!(e.unwrap_err().message().contains("no columns"));
        let mut unnamed = request(WriteMode::Append, &["id"], &[]);
        unnamed.stream.clear();
        let e = unnamed.check("X", NameMatch::Exact).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    }
}
