//! The `Source` trait: what a connector implements to be read from.
//!
//! A source answers three questions (`check`, `discover`, `read`) and nothing
//! else: no retries policy, no state files, no progress bars. The runtime owns
//! all of that, so a connector stays small and every connector behaves alike.

use arrow_array::RecordBatch;
use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::catalog::{Catalog, ReadMode};
use crate::Result;

/// What to read: one stream, how, and from where the last run stopped.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// The stream's name, as in the catalog.
    pub stream: String,
    /// Full refresh or incremental.
    pub mode: ReadMode,
    /// Cursor column for incremental reads (`None`: the stream's default).
    pub cursor: Option<String>,
    /// The state of the last checkpoint committed for this stream (incremental reads only).
    pub state: Option<serde_json::Value>,
    /// Stop after about this many rows (a first try with `--limit`).
    pub limit: Option<u64>,
    /// Preferred rows per batch.
    pub batch_size: usize,
}

impl ReadRequest {
    /// A full-refresh read of `stream` with default settings.
    pub fn full(stream: impl Into<String>) -> Self {
        ReadRequest {
            stream: stream.into(),
            mode: ReadMode::FullRefresh,
            cursor: None,
            state: None,
            limit: None,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// An incremental read of `stream` resuming from `state`.
    pub fn incremental(stream: impl Into<String>, state: Option<serde_json::Value>) -> Self {
        ReadRequest {
            mode: ReadMode::Incremental,
            state,
            ..ReadRequest::full(stream)
        }
    }
}

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// Where a record came from, so an error or a quarantined row can be found again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// File or object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// One-based line in that file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// One-based column (field number for CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// Page number, offset or key for sources without lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Position {
    /// `file:line:column` as compilers write it, then the key (`orders.csv:5:2`,
    /// `row 7`, `in/a.json (page 2 record 3)`), for summaries.
    pub fn short(&self) -> String {
        let mut at = self.file.clone().unwrap_or_default();
        if let Some(line) = self.line {
            at.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                at.push_str(&format!(":{column}"));
            }
        }
        match &self.key {
            Some(k) if at.is_empty() => k.clone(),
            Some(k) => format!("{at} ({k})"),
            None => at,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(x) = &self.file {
            parts.push(format!("file {x}"));
        }
        if let Some(x) = self.line {
            parts.push(format!("line {x}"));
        }
        if let Some(x) = self.column {
            parts.push(format!("column {x}"));
        }
        if let Some(x) = &self.key {
            parts.push(format!("at {x}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// A record the source could not turn into a row (malformed CSV, bad JSON, a value
/// that does not fit its column). The runtime fails the stream on it, or quarantines it
/// when configured; it is never dropped silently.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// Where it was.
    pub position: Position,
    /// The raw record as read (lossy UTF-8), for the quarantine file.
    pub raw: String,
    /// What was wrong.
    pub message: String,
}
/// What a source's read yields. Exhaustive on purpose: the runtime handles every kind, and a
/// new kind must make it fail to compile until it does.
#[derive(Debug)]
pub enum Message {
    /// Rows.
    Batch(RecordBatch),
    /// Everything yielded before this is covered by `state`: once the sink has flushed it,
    /// the runtime commits `state`, and a later incremental read resumes from it.
    Checkpoint(serde_json::Value),
    /// A record that could not be read. Rows and rejected records are yielded in the order
    /// they were read: the rows before a rejected record come in earlier batches, the rows
    /// after it in later ones (flush the batch being built first). The runtime numbers a
    /// stream's rows by that order (`row N` in quarantine files, counting rejected records
    /// too), so a check failure names the record it is about.
    Rejected(Rejected),
    /// How many rows the source expects to yield in total, when it can tell cheaply.
    Estimate(u64),
    /// The true total of rows this read must yield, as the source system itself reports
    /// it (a `COUNT(*)` in the read's own snapshot, an API's reported total). The run
    /// report compares it with the rows read (`complete`), and `--require-complete` fails
    /// the stream, before its state is committed, when they differ. Also an estimate.
    Total(u64),
    /// One attempt of a request the source made, credentials left out, for the debug
    /// bundle of a stream that fails ([`crate::exchange`]). The runtime keeps the last few.
    Exchange(Box<crate::exchange::Exchange>),
    /// Where each row of the next `Batch` was read (file and line), sent just before it by
    /// sources that know (the file formats): the runtime then positions a rejected or
    /// failing row as `data/customers.csv:301 (row 300)`, not only `row 300`.
    Positions(Box<RowPositions>),
    /// Keys deleted at the source (change data capture), a batch of the stream's key
    /// columns: the writer deletes or marks their rows ([`crate::StreamWriter::delete_keys`])
    /// after the batches before it, and before those after it.
    Deleted(RecordBatch),
}

/// Where the rows of one batch were read: one file, a line per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowPositions {
    /// The file or object the rows came from, when named.
    pub file: Option<String>,
    /// The one-based line each row starts on, in the batch's order (a CSV record with
    /// line breaks in a quoted field: the line it starts on).
    pub lines: Vec<u64>,
}

impl RowPositions {
    /// The position of row `index` of the batch (`None` past its end), with `key`.
    pub fn at(&self, index: usize, key: Option<String>) -> Option<Position> {
        self.lines.get(index).map(|line| Position {
            file: self.file.clone(),
            line: Some(*line),
            column: None,
            key,
        })
    }
}

/// A stream of [`Message`]s, ending after the last one.
pub type MessageStream = BoxStream<'static, Result<Message>>;

/// A [`Source::count`] for sources whose read starts with a [`Message::Estimate`] (or
/// [`Message::Total`]) that
/// costs nothing (a `COUNT(*)` in the read's own snapshot, a configured row count): starts
/// the read, takes the estimate and drops the stream. `None` if the first message is not one.
pub async fn count_by_estimate(source: &dyn Source, request: &ReadRequest) -> Result<Option<u64>> {
    use futures::StreamExt;
    let mut stream = source.read(request.clone()).await?;
    Ok(match stream.next().await.transpose()? {
        Some(Message::Estimate(n) | Message::Total(n)) => Some(n),
        _ => None,
    })
}

/// A system Ferry can read from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Makes the cheapest real round trip (open the file, `SELECT 1`, one GET) and
    /// says precisely what failed.
    async fn check(&self) -> Result<()>;

    /// Lines `ferry check` prints under a passed `check`: the way it went, e.g. the SSH
    /// tunnel and the host key it verified (default: none).
    fn route(&self) -> Vec<String> {
        Vec::new()
    }

    /// Lists the streams and their schemas.
    async fn discover(&self) -> Result<Catalog>;

    /// Reads one stream. Batches must match the discovered schema of the stream.
    /// Checkpoints should come every few batches so a crash loses little work.
    async fn read(&self, request: ReadRequest) -> Result<MessageStream>;

    /// Every key of `stream`: batches of its `key` columns only, for `deletes` on a stream
    /// read incrementally (an incremental read sees only changed rows). The default, where
    /// [`Source::reads_keys`] offers it: the key columns of a full read (every column is
    /// read). Where it is not offered, such a stream is refused before a row is read.
    async fn read_keys(
        &self,
        stream: &str,
        key: &[String],
        batch_size: usize,
    ) -> Result<MessageStream> {
        if !self.reads_keys() {
            return Err(crate::Error::new(
                crate::ErrorKind::Unsupported,
                format!("the source cannot list the keys of stream `{stream}`"),
            ));
        }
        let mut request = ReadRequest::full(stream);
        request.batch_size = batch_size;
        let all = self.read(request).await?;
        Ok(keys_only(all, key))
    }

    /// Whether [`Source::read_keys`] is offered (by default, through a full read).
    fn reads_keys(&self) -> bool {
        false
    }

    /// Whether an incremental read of `stream` reads the source's changes (change data
    /// capture): rows inserted or updated as batches, deleted keys as
    /// [`Message::Deleted`], in commit order. The runtime then needs an upsert with
    /// `deletes` and never deletes "missing" rows after it. Default: no.
    fn reads_changes(&self, _stream: &str) -> bool {
        false
    }

    /// Lines `ferry plan` prints about the source itself, given the config's `streams`:
    /// e.g. each replication slot's lag, and a slot no stream reads any more with the
    /// SQL that drops it. Default: none.
    async fn plan_notes(&self, _streams: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// How many rows `read(request)` would yield, when the source can count cheaply
    /// (`COUNT(*)`, a listing, a configured total) — for `ferry plan`. `None`: unknown.
    async fn count(&self, _request: &ReadRequest) -> Result<Option<u64>> {
        Ok(None)
    }

    /// How much `read(request)` would yield, told apart as a count or an estimate (file
    /// sizes, a sample), with the files and bytes it would open — for `ferry plan`.
    /// By default [`Source::count`]'s figure, as an exact count. `None`: unknown.
    async fn estimate(&self, request: &ReadRequest) -> Result<Option<crate::Estimate>> {
        Ok(self.count(request).await?.map(crate::Estimate::exact))
    }

    /// Checkpoint `state` of `stream` (one this source yielded) is committed: every row
    /// read before it is durable at the destination and, for an incremental read, `state`
    /// is saved. The source may now let go of what it read up to there, e.g. move the
    /// files it covers to an archive folder or delete them (`after_read`). Called by the
    /// runtime after each committed checkpoint, in order, never in a trial (`--limit`) or
    /// a dry run, and not at all when the stream fails before its first commit.
    ///
    /// What it did, file by file, goes into the run report. A failure here cannot undo the
    /// commit, so it does not fail the run: report it in [`Settled::error`] (or return an
    /// `Err`, which the runtime reports as a warning). Default: nothing to do.
    async fn committed(&self, _stream: &str, _state: &serde_json::Value) -> Result<Vec<Settled>> {
        Ok(Vec::new())
    }

    /// The states saved for the pipeline's streams when a run starts, by stream (a stream
    /// that never committed is absent). Called by the runtime once, before the run's
    /// streams are read. A source whose streams can read the same thing (one file listed by
    /// two streams) learns from them, and from the [`Source::committed`] calls that
    /// follow, which streams have committed it, so it archives it only once all have.
    /// Default: not needed.
    fn saved_states(&self, _states: &std::collections::BTreeMap<String, serde_json::Value>) {}
}

/// What a source did with one thing it read once its rows were committed
/// ([`Source::committed`]): a file archived or deleted, or why that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settled {
    /// The file or object, as the stream names it (`in/orders_1.csv`).
    pub item: String,
    /// What was done or meant: `archived to in/processed/orders_1.csv`, `deleted`.
    pub action: String,
    /// Why it could not be done (the item stays where it was); `None` when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Settled {
    /// `item` was dealt with as `action` says.
    pub fn done(item: impl Into<String>, action: impl Into<String>) -> Self {
        Settled {
            item: item.into(),
            action: action.into(),
            error: None,
        }
    }

    /// `action` on `item` failed with `error`.
    pub fn failed(
        item: impl Into<String>,
        action: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        Settled {
            item: item.into(),
            action: action.into(),
            error: Some(error.into()),
        }
    }
}

/// Replaying what a source recorded ([`Message::Exchange`]) for `ferry replay` of a debug
/// bundle: a server on loopback answering from the recording, and the source's config
/// pointed at it. A connector whose source records exchanges offers one with
/// [`crate::ConnectorDef::with_replay`] (none by default). It works on the config's text,
/// not on a built source: a bundle may come from anyone, and building its source would
/// read the secrets it refers to.
#[async_trait]
pub trait Replay: Send + Sync {
    /// Makes a `[source]` section fit for a replay: without credentials, and, given
    /// `origin` (a [`ReplayServer::origin`]), reading from it. A section that cannot be
    /// replayed is an [`crate::ErrorKind::ConfigInvalid`] error saying why.
    fn source_for_replay(
        &self,
        source: &mut serde_json::Map<String, serde_json::Value>,
        origin: Option<&str>,
    ) -> Result<()>;

    /// Starts a server on a free loopback port answering from `exchanges`.
    async fn serve(
        &self,
        exchanges: Vec<crate::exchange::Exchange>,
    ) -> Result<Box<dyn ReplayServer>>;
}

/// A running replay server ([`Replay::serve`]); it stops when dropped.
pub trait ReplayServer: Send + Sync {
    /// Where it listens (`http://127.0.0.1:<port>`).
    fn origin(&self) -> &str;

    /// The origin of the recorded system it stands in for, when the recording names one.
    fn recorded_origin(&self) -> Option<String>;

    /// The requests the recording held no answer for.
    fn misses(&self) -> Vec<String>;
}

/// The `key` columns of the batches of `messages` (other messages dropped): a full read
/// turned into a [`Source::read_keys`].
pub fn keys_only(messages: MessageStream, key: &[String]) -> MessageStream {
    use futures::StreamExt;
    let key = key.to_vec();
    let keys = messages.filter_map(move |m| {
        let batch = match m {
            Ok(Message::Batch(b)) => b,
            Ok(_) => return std::future::ready(None),
            Err(e) => return std::future::ready(Some(Err(e))),
        };
        let schema = batch.schema();
        let columns: std::result::Result<Vec<usize>, _> =
            key.iter().map(|k| schema.index_of(k)).collect();
        let projected = columns
            .and_then(|c| batch.project(&c))
            .map(Message::Batch)
            .map_err(|e| crate::Error::internal(format!("cannot take the key columns: {e}")));
        std::future::ready(Some(projected))
    });
    keys.boxed()
}
