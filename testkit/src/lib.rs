//! The conformance kit: one suite every connector's tests run against a real system.
//!
//! Modelled on arrow-rs `object_store`'s shared integration tests: a connector's test
//! builds a *fixture* (how to make a fresh stream or destination on the real system)
//! and calls [`run_source_suite`] and/or [`run_sink_suite`]. Each check is also a public
//! function, so a connector can run one alone while debugging. The kit only runs the
//! cases a connector claims (its sink capabilities, incremental support), and every
//! check uses fresh, random stream names so reruns never see old data.
//!
//! A check failing is a panic with a message that says which contract broke.
//!
//! ```no_run
//! # use ferry_testkit::*;
//! # async fn demo(fixture: impl SinkFixture) {
//! run_sink_suite(&fixture).await;
//! # }
//! ```

#[cfg(feature = "sftp")]
pub mod bastion;
mod bench;
mod documented;
mod failing;
pub mod fault;
mod files;
mod from_toml;
pub mod gpg;
mod helpers;
mod log;
pub mod python;
mod receipt;
mod run;
#[cfg(feature = "s3")]
pub mod s3_server;
#[cfg(feature = "sftp")]
pub mod sftp_server;
pub mod sql;
pub mod sql_fixtures;
#[cfg(feature = "sftp")]
mod sshd;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use async_trait::async_trait;
use futures::StreamExt;

use ferry_core::catalog::{Catalog, ReadMode, StreamInfo, WriteMode};
use ferry_core::sink::{
    Durability, Sink, SinkCapabilities, StreamWriter, WriteRequest, WriteSummary,
};
use ferry_core::source::{Message, MessageStream, ReadRequest, Source};
use ferry_core::types::{with_keys, FerryType};
use ferry_core::values::to_json;
use ferry_core::{Error, ErrorKind, Result};
use ferry_engine::config::StreamConfig;
use ferry_engine::report::Status;
use ferry_engine::runtime::Runtime;
use ferry_engine::state::StateStore;

pub use bench::{bench_read, bench_write_modes, bench_write_wide};
pub use documented::{config_is_documented, documented_source_and_sink};
pub use failing::FailingSink;
pub use files::{
    delivered_file, names, read_batch_file, write_batch_file, write_newer_file, FolderSinkFixture,
    StreamFolders, FOLDER_SINK_CASES,
};
pub use from_toml::{
    connector_config, from_toml, from_toml_shown, registry_with, sink_from_toml, source_from_toml,
};
pub use helpers::*;
pub use log::CapturedLog;
pub use receipt::{orders_stream, receipt};
pub use run::{assert_succeeded, failed_stream, sync, sync_full_refresh};

/// How faithfully a destination or source keeps values; the kit compares accordingly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fidelity {
    /// Empty strings come back as NULL (CSV).
    pub empty_string_is_null: bool,
    /// Column types come back as declared (false: compare values as text).
    pub typed: bool,
}

impl Fidelity {
    /// Values come back as they went, typed.
    pub const EXACT: Fidelity = Fidelity {
        empty_string_is_null: false,
        typed: true,
    };

    /// What a file in `format` keeps: types, and in CSV an empty string reads as NULL.
    pub fn of_format(format: ferry_formats::codec::Format) -> Fidelity {
        Fidelity {
            empty_string_is_null: format == ferry_formats::codec::Format::Csv,
            typed: true,
        }
    }
}

/// How to make a fresh destination on a real system and read it back.
#[async_trait]
pub trait SinkFixture: Send + Sync {
    /// The sink under test.
    fn sink(&self) -> Arc<dyn Sink>;
    /// Every row now in destination stream `stream` (any order; empty if it does not exist).
    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>>;
    /// How faithfully values survive.
    fn fidelity(&self) -> Fidelity {
        Fidelity::EXACT
    }
}

/// How to make a fresh stream on a real system, to be read by the source under test.
#[async_trait]
pub trait SourceFixture: Send + Sync {
    /// Creates stream `stream` holding `batch` and returns a source offering it.
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>>;
    /// Adds newer rows to the stream (for incremental checks).
    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()>;
    /// The cursor column incremental reads use (`None`: the source's own, e.g. file times).
    fn cursor(&self) -> Option<String> {
        Some("id".into())
    }
    /// A source whose connection is broken (wrong path, port or password).
    fn broken(&self) -> Option<Arc<dyn Source>> {
        None
    }
    /// How faithfully values survive.
    fn fidelity(&self) -> Fidelity {
        Fidelity::EXACT
    }
}

/// A fresh random stream name with `prefix`.
pub fn fresh_name(prefix: &str) -> String {
    let id = ferry_engine::runtime::new_run_id();
    let tail = id.rsplit('-').next().unwrap_or("0");
    format!("{prefix}_{}_{tail}", std::process::id())
}

/// The schema of [`all_types_batch`]: `id` (int64, key) plus one column per Ferry type.
pub fn all_types_schema() -> SchemaRef {
    let s = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Bool.field("flag", true),
        FerryType::Int64.field("count", true),
        FerryType::Float64.field("ratio", true),
        FerryType::Decimal {
            precision: 20,
            scale: 4,
        }
        .field("amount", true),
        FerryType::String.field("name", true),
        FerryType::Binary.field("blob", true),
        FerryType::Date.field("day", true),
        FerryType::Timestamp.field("at", true),
        FerryType::Json.field("doc", true),
    ]);
    with_keys(&s, &["id".to_string()], Some("id"))
}

/// Rows exercising every type: ordinary values, NULLs, unicode, extremes, empty strings.
pub fn all_types_batch() -> RecordBatch {
    let rows: [[Option<&str>; 10]; 5] = [
        [
            Some("1"),
            Some("true"),
            Some("42"),
            Some("0.5"),
            Some("1234.5678"),
            Some("Ada Lovelace"),
            Some("AAEC/w=="),
            Some("2024-02-29"),
            Some("2024-05-01T12:00:00.25Z"),
            Some("{\"tags\":[\"a\",\"b\"],\"n\":1}"),
        ],
        [
            Some("2"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ],
        [
            Some("3"),
            Some("false"),
            Some("-9223372036854775808"),
            Some("-1e300"),
            Some("-9999999999999999.9999"),
            Some("Zoë 日本語 🚢, \"quoted\"\nnewline"),
            Some(""),
            Some("1970-01-01"),
            Some("1969-12-31T23:59:59.999999Z"),
            Some("[]"),
        ],
        [
            Some("4"),
            Some("true"),
            Some("9223372036854775807"),
            Some("3.25"),
            Some("0.0001"),
            Some("x"),
            Some("/w=="),
            Some("9999-12-31"),
            Some("2262-04-11T23:47:16Z"),
            Some("{\"nested\":{\"deep\":null}}"),
        ],
        [
            Some("5"),
            Some("false"),
            Some("0"),
            Some("0"),
            Some("0"),
            Some(""),
            Some("AA=="),
            Some("2000-01-01"),
            Some("2000-01-01T00:00:00Z"),
            Some("\"just a string\""),
        ],
    ];
    // the empty blob is a real empty value, not NULL
    text_batch(all_types_schema(), rows)
}

/// `n` simple rows `id, name, updated` with ids from `first`.
pub fn simple_batch(first: i64, n: usize, tag: &str) -> RecordBatch {
    let s = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::String.field("name", true),
        FerryType::Int64.field("version", true),
    ]);
    let schema = with_keys(&s, &["id".to_string()], Some("id"));
    let ids: Vec<i64> = (first..first + n as i64).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("{tag}-{i}")).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(arrow_array::StringArray::from(names)),
        Arc::new(Int64Array::from(vec![1; n])),
    ];
    RecordBatch::try_new(schema, cols).expect("simple batch builds")
}

/// Rows of `batches` as JSON objects sorted by `id`, with values normalised per `fidelity`.
pub fn rows_by_id(
    batches: &[RecordBatch],
    fidelity: Fidelity,
) -> Vec<BTreeMap<String, serde_json::Value>> {
    let mut rows = Vec::new();
    for b in batches {
        let schema = b.schema();
        for r in 0..b.num_rows() {
            let mut row = BTreeMap::new();
            for (i, f) in schema.fields().iter().enumerate() {
                let ty = FerryType::of(f).unwrap_or(FerryType::String);
                let mut v = to_json(b.column(i).as_ref(), ty, r);
                if fidelity.empty_string_is_null && v == serde_json::Value::String(String::new()) {
                    v = serde_json::Value::Null;
                }
                if !fidelity.typed {
                    v = match v {
                        serde_json::Value::Null => v,
                        serde_json::Value::String(s) => serde_json::Value::String(s),
                        other if ty == FerryType::Json => {
                            serde_json::Value::String(other.to_string())
                        }
                        other => serde_json::Value::String(other.to_string()),
                    };
                }
                row.insert(f.name().clone(), v);
            }
            rows.push(row);
        }
    }
    rows.sort_by_key(|r| {
        r.get("id")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(i64::MAX)
    });
    rows
}

fn count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

// ----------------------------------------------------------------------------------------
// In-memory source and sink, for runtime tests and for pairing with a real connector.

/// A source serving fixed batches, with a checkpoint `{"batch": n}` after batch n.
pub struct MemorySource {
    streams: Vec<(StreamInfo, Vec<RecordBatch>)>,
}

impl MemorySource {
    /// One stream named `name` yielding `batches` (schema taken from the first, or `schema`).
    pub fn new(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let info = StreamInfo::new(name, schema).incremental(["id"]);
        MemorySource {
            streams: vec![(info, batches)],
        }
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn check(&self) -> Result<()> {
        Ok(())
    }
    async fn discover(&self) -> Result<Catalog> {
        Ok(Catalog::new(
            self.streams.iter().map(|(i, _)| i.clone()).collect(),
        ))
    }
    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let (_, batches) = self
            .streams
            .iter()
            .find(|(i, _)| i.name == request.stream)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such stream"))?;
        let skip = request
            .state
            .as_ref()
            .and_then(|s| s["batch"].as_u64())
            .unwrap_or(0) as usize;
        let mut msgs = Vec::new();
        for (i, b) in batches.iter().enumerate().skip(skip) {
            msgs.push(Ok(Message::Batch(b.clone())));
            msgs.push(Ok(Message::Checkpoint(
                serde_json::json!({ "batch": i + 1 }),
            )));
        }
        Ok(futures::stream::iter(msgs).boxed())
    }
}

/// A sink keeping every stream in memory (append and overwrite; it offers no upsert, so
/// the runtime refuses an upsert stream to it).
#[derive(Default, Clone)]
pub struct MemorySink {
    /// Destination stream → rows written.
    pub tables: Arc<Mutex<BTreeMap<String, Vec<RecordBatch>>>>,
}

struct MemoryWriter {
    sink: MemorySink,
    request: WriteRequest,
    staged: Vec<RecordBatch>,
}

#[async_trait]
impl Sink for MemorySink {
    async fn check(&self) -> Result<()> {
        Ok(())
    }
    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        Ok(Box::new(MemoryWriter {
            sink: self.clone(),
            request,
            staged: Vec::new(),
        }))
    }
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite],
        }
    }
    /// Rows stay staged in the writer until a flush or close, and a `--limit` trial does
    /// neither: its abort drops them.
    fn rolls_back(&self) -> bool {
        true
    }
}

#[async_trait]
impl StreamWriter for MemoryWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.staged.push(batch);
        Ok(())
    }
    async fn flush(&mut self) -> Result<Durability> {
        if self.request.mode == WriteMode::Overwrite {
            return Ok(Durability::AtClose);
        }
        let mut t = self.sink.tables.lock().unwrap();
        t.entry(self.request.stream.clone())
            .or_default()
            .append(&mut self.staged);
        Ok(Durability::Durable)
    }
    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let mut t = self.sink.tables.lock().unwrap();
        let e = t.entry(self.request.stream.clone()).or_default();
        if self.request.mode == WriteMode::Overwrite {
            e.clear();
        }
        e.append(&mut self.staged);
        Ok(WriteSummary {
            rows: count(e) as u64,
            outputs: vec![],
        })
    }
}

/// A runtime over `source` and `sink` with state in a fresh temp folder, committing
/// every checkpoint at once.
pub fn runtime(
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    state_dir: &std::path::Path,
) -> Runtime {
    let state =
        Arc::new(StateStore::open(state_dir.join("state.json"), None).expect("state opens"));
    let mut rt = Runtime::new(source, sink, state);
    rt.settings.commit_interval_secs = 0.0;
    rt
}

// ----------------------------------------------------------------------------------------
// Source checks

/// Runs every source check the fixture supports.
pub async fn run_source_suite(f: &dyn SourceFixture) {
    source_check_fails_clearly(f).await;
    read_matches_discover(f).await;
    source_roundtrip_all_types(f).await;
    source_empty_stream(f).await;
    incremental_resume(f).await;
}

/// A broken connection makes `check` fail with an actionable error, not a panic.
pub async fn source_check_fails_clearly(f: &dyn SourceFixture) {
    if let Some(bad) = f.broken() {
        let e = bad
            .check()
            .await
            .expect_err("check on a broken connection must fail");
        assert_ne!(
            e.kind(),
            ErrorKind::Internal,
            "broken connection reported as internal error: {e}"
        );
        assert!(!e.message().is_empty());
    }
}

/// Every batch `read` yields has exactly the columns and types `discover` announced.
pub async fn read_matches_discover(f: &dyn SourceFixture) {
    let name = fresh_name("kit_discover");
    let source = f
        .create(&name, &all_types_batch())
        .await
        .expect("fixture creates stream");
    source
        .check()
        .await
        .expect("check passes on a working source");
    let catalog = source.discover().await.expect("discover works");
    let info = catalog
        .get(&name)
        .unwrap_or_else(|| panic!("discover does not list `{name}`: {:?}", catalog.names()));
    let batches = read_all(source.as_ref(), ReadRequest::full(&name)).await;
    assert_eq!(
        count(&batches),
        5,
        "read returned a different number of rows than were created"
    );
    for b in &batches {
        assert_eq!(
            columns(&b.schema()),
            columns(&info.schema),
            "batch schema differs from discovered schema"
        );
    }
}

/// The names and types of a schema's columns (keys and other metadata aside).
fn columns(schema: &SchemaRef) -> Vec<(String, arrow_schema::DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

/// For a source as configured (no fixture): `check` passes, and every stream's batches
/// have exactly the discovered columns and types. Reads at most `limit` rows per stream.
pub async fn source_reads_match_discover(source: &dyn Source, limit: u64) {
    source
        .check()
        .await
        .expect("check passes on a working source");
    let catalog = source.discover().await.expect("discover works");
    assert!(!catalog.streams.is_empty(), "discover listed no streams");
    for info in &catalog.streams {
        let mut req = ReadRequest::full(&info.name);
        req.limit = Some(limit);
        for b in read_all(source, req).await {
            assert_eq!(
                columns(&b.schema()),
                columns(&info.schema),
                "stream `{}`: batch schema differs from discovered schema",
                info.name
            );
        }
    }
}

/// Every Ferry type survives being stored in the system and read back by the source.
pub async fn source_roundtrip_all_types(f: &dyn SourceFixture) {
    let name = fresh_name("kit_types");
    let input = all_types_batch();
    let source = f
        .create(&name, &input)
        .await
        .expect("fixture creates stream");
    let got = read_all(source.as_ref(), ReadRequest::full(&name)).await;
    let changed = "values changed between the system and the source";
    assert_same_rows(&got, &input, f.fidelity(), changed);
}

/// Checks that `got` holds the rows of `sent`, as far as `fid` keeps them (`what` says
/// which case failed).
pub fn assert_same_rows(got: &[RecordBatch], sent: &RecordBatch, fid: Fidelity, what: &str) {
    let sent = rows_by_id(std::slice::from_ref(sent), fid);
    assert_eq!(rows_by_id(got, fid), sent, "{what}");
}

/// An empty stream reads as zero rows, without error.
pub async fn source_empty_stream(f: &dyn SourceFixture) {
    let name = fresh_name("kit_empty");
    let empty = all_types_batch().slice(0, 0);
    let source = f
        .create(&name, &empty)
        .await
        .expect("fixture creates empty stream");
    let got = read_all(source.as_ref(), ReadRequest::full(&name)).await;
    assert_eq!(count(&got), 0, "empty stream yielded rows");
}

/// After a committed incremental run, a rerun yields only the rows added since.
pub async fn incremental_resume(f: &dyn SourceFixture) {
    let name = fresh_name("kit_incr");
    let source = f
        .create(&name, &simple_batch(1, 3, "first"))
        .await
        .expect("fixture creates stream");
    let info = discover_one(source.as_ref(), &name).await;
    if !info.supports_incremental() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = MemorySink::default();
    let rt = runtime(source.clone(), Arc::new(sink.clone()), dir.path());
    let mut sc = StreamConfig::named(&name);
    sc.incremental = Some(true);
    sc.cursor = f.cursor();
    let report = sync(&rt, std::slice::from_ref(&sc), ("kit", "memory")).await;
    assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 3);
    assert!(
        rt.state.get(&name).is_some(),
        "an incremental run committed no state"
    );
    f.append(&name, &simple_batch(4, 2, "second"))
        .await
        .expect("fixture appends");
    let report = sync(&rt, std::slice::from_ref(&sc), ("kit", "memory")).await;
    assert_succeeded(&report);
    let all = sink
        .tables
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or_default();
    let ids: Vec<i64> = rows_by_id(&all, Fidelity::EXACT)
        .iter()
        .map(|r| {
            r["id"]
                .as_i64()
                .or_else(|| r["id"].as_str()?.parse().ok())
                .expect("id")
        })
        .collect();
    assert_eq!(
        ids,
        vec![1, 2, 3, 4, 5],
        "incremental rerun missed or repeated rows"
    );
    let report = sync(&rt, std::slice::from_ref(&sc), ("kit", "memory")).await;
    assert_eq!(
        report.rows_committed(),
        0,
        "a rerun with nothing new yielded rows again"
    );
}

/// Reads every batch of a request, failing the test on any error or rejected record.
pub async fn read_all(source: &dyn Source, request: ReadRequest) -> Vec<RecordBatch> {
    let stream = request.stream.clone();
    let mut msgs = source
        .read(request)
        .await
        .unwrap_or_else(|e| panic!("read of `{stream}` failed: {e}"));
    let mut out = Vec::new();
    while let Some(m) = msgs.next().await {
        match m.unwrap_or_else(|e| panic!("read of `{stream}` failed midway: {e}")) {
            Message::Batch(b) => out.push(b),
            Message::Rejected(r) => panic!(
                "source rejected a valid record at {}: {}",
                r.position, r.message
            ),
            _ => {}
        }
    }
    out
}

// ----------------------------------------------------------------------------------------
// Sink checks

/// Runs every sink check for the modes the sink claims.
pub async fn run_sink_suite(f: &dyn SinkFixture) {
    f.sink()
        .check()
        .await
        .expect("check passes on a working sink");
    sink_roundtrip_all_types(f).await;
    sink_empty_stream(f).await;
    let modes = f.sink().capabilities().modes;
    if modes.contains(&WriteMode::Append) {
        append_adds_rows(f).await;
        failed_write_commits_no_state(f).await;
    }
    if modes.contains(&WriteMode::Overwrite) {
        overwrite_replaces_rows(f).await;
        failed_overwrite_keeps_old_rows(f).await;
    }
    if modes.contains(&WriteMode::Upsert) {
        upsert_is_idempotent(f).await;
    }
}

/// Writes `batches` to `stream` in one writer (write each, flush, close).
pub async fn write_stream(
    sink: &dyn Sink,
    stream: &str,
    mode: WriteMode,
    batches: &[RecordBatch],
) -> Result<WriteSummary> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(all_types_schema);
    let mut w = sink
        .open(WriteRequest {
            stream: stream.into(),
            schema,
            mode,
            run_id: ferry_engine::runtime::new_run_id(),
            deletes: None,
        })
        .await?;
    for b in batches {
        w.write(b.clone()).await?;
    }
    w.flush().await?;
    w.close().await
}

/// Writes one `batch` to `stream` in one writer; fails the test if that fails.
pub(crate) async fn write_one(sink: &dyn Sink, stream: &str, mode: WriteMode, batch: RecordBatch) {
    let rows = batch.num_rows();
    write_stream(sink, stream, mode, &[batch])
        .await
        .unwrap_or_else(|e| panic!("{mode:?} of {rows} rows to `{stream}`: {e}"));
}

/// Writes one `batch` of [`simple_batch`] rows to stream `name` of the fixture's sink.
async fn write_simple(f: &dyn SinkFixture, name: &str, mode: WriteMode, batch: RecordBatch) {
    write_one(f.sink().as_ref(), name, mode, batch).await;
}

/// The [`simple_batch`] rows of stream `name` as the fixture reads them back, by id.
async fn stored_rows(f: &dyn SinkFixture, name: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    let schema = simple_batch(1, 0, "").schema();
    let got = f.read_back(name, &schema).await.expect("read back");
    rows_by_id(&got, f.fidelity())
}

/// Runs `batches` of stream `sc` into the fixture's sink through one that fails at its
/// third write, with state in `dir`; asserts the run failed.
async fn fail_at_third_write(
    f: &dyn SinkFixture,
    sc: StreamConfig,
    batches: Vec<RecordBatch>,
    dir: &std::path::Path,
) -> (Runtime, ferry_engine::report::RunReport) {
    let schema = simple_batch(1, 0, "").schema();
    let source = Arc::new(MemorySource::new(&sc.name, schema, batches));
    let failing = Arc::new(FailingSink::new(f.sink(), 3));
    let rt = runtime(source, failing, dir);
    let report = sync(&rt, &[sc], ("kit", "kit")).await;
    assert_eq!(
        report.status,
        Status::Failed,
        "the injected failure did not fail the run"
    );
    (rt, report)
}

/// Every Ferry type survives the sink and comes back equal.
pub async fn sink_roundtrip_all_types(f: &dyn SinkFixture) {
    let name = fresh_name("kit_types");
    let input = all_types_batch();
    let mode = first_mode(f);
    let summary = write_stream(f.sink().as_ref(), &name, mode, std::slice::from_ref(&input))
        .await
        .expect("write all types");
    assert_eq!(summary.rows, 5, "close() reported a wrong row count");
    let got = f
        .read_back(&name, &input.schema())
        .await
        .expect("read back");
    let changed = "values changed on the way through the sink";
    assert_same_rows(&got, &input, f.fidelity(), changed);
}

/// The first write mode the fixture's sink supports.
fn first_mode(f: &dyn SinkFixture) -> WriteMode {
    let modes = f.sink().capabilities().modes;
    *modes.first().expect("sink supports a mode")
}

/// A stream with no rows closes cleanly and leaves no rows.
pub async fn sink_empty_stream(f: &dyn SinkFixture) {
    let name = fresh_name("kit_empty");
    let mode = first_mode(f);
    let sink = f.sink();
    let mut w = sink
        .open(WriteRequest {
            stream: name.clone(),
            schema: all_types_schema(),
            mode,
            run_id: ferry_engine::runtime::new_run_id(),
            deletes: None,
        })
        .await
        .expect("open");
    w.flush().await.expect("flush of nothing");
    let s = w.close().await.expect("close of an empty stream");
    assert_eq!(s.rows, 0);
    assert_eq!(
        count(
            &f.read_back(&name, &all_types_schema())
                .await
                .expect("read back")
        ),
        0
    );
}

/// Append keeps earlier rows and adds the new ones.
pub async fn append_adds_rows(f: &dyn SinkFixture) {
    let name = fresh_name("kit_append");
    write_simple(f, &name, WriteMode::Append, simple_batch(1, 3, "a")).await;
    write_simple(f, &name, WriteMode::Append, simple_batch(4, 2, "b")).await;
    assert_eq!(
        stored_rows(f, &name).await.len(),
        5,
        "append lost or duplicated rows"
    );
}

/// Overwrite leaves exactly the new rows.
pub async fn overwrite_replaces_rows(f: &dyn SinkFixture) {
    let name = fresh_name("kit_overwrite");
    write_simple(f, &name, WriteMode::Overwrite, simple_batch(1, 3, "a")).await;
    write_simple(f, &name, WriteMode::Overwrite, simple_batch(10, 2, "b")).await;
    let rows = stored_rows(f, &name).await;
    let names: Vec<_> = rows.iter().map(|r| r["name"].clone()).collect();
    assert_eq!(
        names,
        vec![serde_json::json!("b-10"), serde_json::json!("b-11")],
        "overwrite did not replace the rows"
    );
}

/// An overwrite that fails midway leaves the previous rows untouched (stage, then swap).
pub async fn failed_overwrite_keeps_old_rows(f: &dyn SinkFixture) {
    let name = fresh_name("kit_overwrite_fail");
    write_simple(f, &name, WriteMode::Overwrite, simple_batch(1, 3, "old")).await;
    let mut sc = StreamConfig::named(&name);
    sc.mode = Some(WriteMode::Overwrite);
    let batches = [100, 102, 104].map(|first| simple_batch(first, 2, "new"));
    let dir = tempfile::tempdir().expect("temp dir");
    fail_at_third_write(f, sc, batches.to_vec(), dir.path()).await;
    let ids: Vec<_> = stored_rows(f, &name)
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "a failed overwrite changed the destination: {ids:?}"
    );
}

/// Upsert by primary key: rerunning the same rows changes nothing; changed rows update.
pub async fn upsert_is_idempotent(f: &dyn SinkFixture) {
    let name = fresh_name("kit_upsert");
    write_simple(f, &name, WriteMode::Upsert, simple_batch(1, 3, "v1")).await;
    write_simple(f, &name, WriteMode::Upsert, simple_batch(2, 3, "v2")).await;
    write_simple(f, &name, WriteMode::Upsert, simple_batch(2, 3, "v2")).await;
    let rows = stored_rows(f, &name).await;
    let names: Vec<_> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        vec!["v1-1", "v2-2", "v2-3", "v2-4"],
        "upsert duplicated or lost rows"
    );
}

/// A sink that fails mid-stream never has state committed past what it made durable,
/// and every row covered by committed state is in the destination.
pub async fn failed_write_commits_no_state(f: &dyn SinkFixture) {
    let name = fresh_name("kit_fail");
    let mut sc = StreamConfig::named(&name);
    sc.incremental = Some(true);
    sc.mode = Some(WriteMode::Append);
    let batches = [1, 3, 5, 7].map(|first| simple_batch(first, 2, "a"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (rt, report) = fail_at_third_write(f, sc, batches.to_vec(), dir.path()).await;
    let committed = rt
        .state
        .get(&name)
        .and_then(|s| s["batch"].as_u64())
        .unwrap_or(0);
    assert!(
        committed <= 2,
        "state was committed for batch {committed}, which the sink never wrote"
    );
    let stored = stored_rows(f, &name).await.len();
    assert!(
        stored as u64 >= committed * 2,
        "state covers {committed} batches but only {stored} rows are stored"
    );
    assert_eq!(report.streams[0].read_mode, ReadMode::Incremental);
}
