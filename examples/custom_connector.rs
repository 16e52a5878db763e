//! The smallest complete Ferry connector: a source and a sink written in this file,
//! registered in a `Registry`, configured from inline TOML, and run through the runtime
//! twice. The second run resumes from the state the first one committed, so it reads
//! nothing: that is incremental sync, and the connector did nothing but emit checkpoints.
//!
//! ```sh
//! cargo run --example custom_connector
//! ```
//!
//! `docs/writing-a-connector.md` explains every piece; `ferry new-connector <name>` makes a
//! full crate of this shape with the conformance kit wired in.

use std::io::Write;
use std::sync::Arc;

use ferry_core::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::values::to_json;
use ferry_core::{
    async_trait, Catalog, ConnectorDef, Durability, Error, ErrorKind, FerryType, Message,
    MessageStream, ReadRequest, Registry, Result, Sink, SinkCapabilities, Source, StreamInfo,
    StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use ferry_engine::report::Status;
use ferry_engine::state::StateStore;
use ferry_engine::{RunOptions, Runtime, StreamConfig};
// the conformance kit builds a `[source]`/`[destination]` section from TOML text
use ferry_testkit::connector_config;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

// ----------------------------------------------------------------------------------------
// The source: `count` rows of squares, incremental by `id`.

/// `[source] type = "squares"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SquaresConfig {
    /// How many rows: ids 1 to `count` (required).
    count: i64,
    /// The stream's name (default `squares`).
    #[serde(default = "default_stream")]
    stream: String,
}

fn default_stream() -> String {
    "squares".into()
}

struct SquaresSource {
    config: SquaresConfig,
}

impl SquaresSource {
    /// The stream's schema: Ferry types, `id` as primary key and cursor.
    fn schema(&self) -> SchemaRef {
        let fields = vec![
            FerryType::Int64.field("id", false),
            FerryType::Int64.field("square", false),
            FerryType::String.field("label", true),
        ];
        with_keys(&Schema::new(fields), &["id".into()], Some("id"))
    }
}

#[async_trait]
impl Source for SquaresSource {
    async fn check(&self) -> Result<()> {
        Ok(()) // a real source makes its cheapest round trip here (`SELECT 1`, one GET)
    }

    async fn discover(&self) -> Result<Catalog> {
        let info = StreamInfo::new(&self.config.stream, self.schema()).incremental(["id"]);
        Ok(Catalog::new(vec![info]))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        if request.stream != self.config.stream {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no stream `{}`", request.stream),
            ));
        }
        // resume after the id the last committed checkpoint holds
        let after = request
            .state
            .as_ref()
            .and_then(|s| s["id"].as_i64())
            .unwrap_or(0);
        let (schema, count, size) = (
            self.schema(),
            self.config.count,
            request.batch_size.max(1) as i64,
        );
        // lazily, a batch and the checkpoint that covers it at a time
        let chunks = (after + 1..=count).step_by(size as usize).map(move |from| {
            let ids: Vec<i64> = (from..=(from + size - 1).min(count)).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(ids.iter().copied())),
                Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i * i))),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("row {i}")),
                )),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).map_err(Error::from);
            let state = serde_json::json!({ "id": ids[ids.len() - 1] });
            [batch.map(Message::Batch), Ok(Message::Checkpoint(state))]
        });
        Ok(futures::stream::iter(chunks.flatten()).boxed())
    }
}

// ----------------------------------------------------------------------------------------
// The sink: prints each row as a JSON line.

/// `[destination] type = "print"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PrintConfig {
    /// Text before each row (default empty).
    #[serde(default)]
    prefix: String,
}

struct PrintSink {
    config: Arc<PrintConfig>,
}

struct PrintWriter {
    config: Arc<PrintConfig>,
    schema: SchemaRef,
    pending: Vec<String>,
    rows: u64,
}

#[async_trait]
impl Sink for PrintSink {
    async fn check(&self) -> Result<()> {
        Ok(()) // a real sink checks it can write, and leaves nothing behind
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        Ok(Box::new(PrintWriter {
            config: self.config.clone(),
            schema: request.schema,
            pending: Vec::new(),
            rows: 0,
        }))
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append],
        }
    }
}

#[async_trait]
impl StreamWriter for PrintWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (i, field) in self.schema.fields().iter().enumerate() {
                let ty = FerryType::of(field).unwrap_or(FerryType::String);
                object.insert(field.name().clone(), to_json(batch.column(i), ty, row));
            }
            self.pending
                .push(serde_json::Value::Object(object).to_string());
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        // "durable" for stdout: written out and flushed
        let mut out = std::io::stdout().lock();
        for line in self.pending.drain(..) {
            writeln!(out, "{}{line}", self.config.prefix)
                .and_then(|_| out.flush())
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot print: {e}")))?;
        }
        Ok(Durability::Durable)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        self.flush().await?;
        Ok(WriteSummary {
            rows: self.rows,
            outputs: Vec::new(),
        })
    }
}

// ----------------------------------------------------------------------------------------
// Registered, configured from TOML, run twice.

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add(
        ConnectorDef::new("squares", "numbers and their squares").with_source(
            |config: SquaresConfig, _ctx| Ok(Arc::new(SquaresSource { config }) as Arc<dyn Source>),
        ),
    );
    r.add(
        ConnectorDef::new("print", "rows as JSON lines on stdout").with_sink(
            |config: PrintConfig, _ctx| {
                Ok(Arc::new(PrintSink {
                    config: Arc::new(config),
                }) as Arc<dyn Sink>)
            },
        ),
    );
    r
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    let registry = registry();
    let source = registry.build_source(&connector_config("squares", "count = 5\n", dir.path())?)?;
    let sink = registry.build_sink(&connector_config(
        "print",
        "prefix = \"  > \"\n",
        dir.path(),
    )?)?;
    let state = Arc::new(StateStore::open(dir.path().join("state.json"), None)?);
    let runtime = Runtime::new(source, sink, state);

    // read incrementally by `id`, as `[[streams]] name = "squares" cursor = "id"` would
    let mut stream = StreamConfig::named("squares");
    stream.cursor = Some("id".into());
    for run in 1..=2 {
        println!("run {run}:");
        let report = runtime
            .sync(
                std::slice::from_ref(&stream),
                &RunOptions::default(),
                None,
                ("squares", "print"),
            )
            .await?;
        print!("{}", report.summary());
        if report.status != Status::Succeeded {
            return Err(Error::internal("the run failed"));
        }
    }
    println!(
        "committed state: {}",
        runtime.state.get("squares").unwrap_or_default()
    );
    Ok(())
}
