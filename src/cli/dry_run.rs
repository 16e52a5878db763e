//! `ferry sync --dry-run`: read a sample, transform and validate it, write nothing, and
//! show what would be written.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{
    async_trait, Durability, Result, Sink, SinkCapabilities, StreamWriter, WriteRequest,
    WriteSummary,
};

/// Destination stream → (write mode, first rows, rows it would write).
type Samples = Arc<Mutex<BTreeMap<String, (String, Vec<serde_json::Value>, u64)>>>;

/// Rows shown per stream.
const SHOWN: usize = 5;

/// Stands in for the real destination: same capabilities (so the plan is the same),
/// keeps the first rows of each stream, writes nothing.
pub struct DryRunSink {
    inner: Arc<dyn Sink>,
    pub seen: Samples,
}

impl DryRunSink {
    pub fn new(inner: Arc<dyn Sink>) -> Self {
        DryRunSink {
            inner,
            seen: Arc::default(),
        }
    }

    /// The sample rows per destination, as text for the terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (stream, (mode, rows, _)) in self.seen.lock().unwrap().iter() {
            out.push_str(&format!(
                "would {mode} into `{stream}`; its first rows would be:\n"
            ));
            for r in rows {
                out.push_str(&format!("  {r}\n"));
            }
        }
        ferry_core::redact::redact(&out)
    }
}

struct DryRunWriter {
    stream: String,
    seen: Samples,
    rows: u64,
}

#[async_trait]
impl Sink for DryRunSink {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    fn route(&self) -> Vec<String> {
        self.inner.route()
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        self.seen.lock().unwrap().insert(
            request.stream.clone(),
            (request.mode.to_string(), Vec::new(), 0),
        );
        Ok(Box::new(DryRunWriter {
            stream: request.stream,
            seen: self.seen.clone(),
            rows: 0,
        }))
    }

    // nothing is ever written
    fn rolls_back(&self) -> bool {
        true
    }

    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }

    fn deletes(&self) -> bool {
        self.inner.deletes()
    }

    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        self.inner.describe(stream).await
    }

    async fn owner(&self) -> Result<Option<String>> {
        self.inner.owner().await
    }

    /// What the destination would hold after the run (for `row_count` checks of the
    /// destination): what it holds now and the rows the run would write (an overwrite:
    /// only those; an upsert: at most that many).
    async fn count(&self, stream: &str) -> Result<Option<u64>> {
        let now = self.inner.count(stream).await?;
        let seen = self.seen.lock().unwrap().get(stream).cloned();
        Ok(match seen {
            Some((mode, _, n)) if mode == "overwrite" => Some(n),
            Some((_, _, n)) => now.map(|c| c + n),
            None => now,
        })
    }
}

#[async_trait]
impl StreamWriter for DryRunWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut seen = self.seen.lock().unwrap();
        let entry = seen.get_mut(&self.stream).expect("opened");
        entry.2 += batch.num_rows() as u64;
        let rows = &mut entry.1;
        for r in 0..batch.num_rows() {
            if rows.len() >= SHOWN {
                break;
            }
            rows.push(ferry_engine::rows::row_json(&batch, r));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        Ok(Durability::AtClose)
    }

    // a dry run reads a sample: the runtime never asks it to delete, and it writes nothing
    async fn delete_missing(&mut self) -> Result<u64> {
        Ok(0)
    }

    async fn close(self: Box<Self>) -> Result<WriteSummary> {
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![],
        })
    }
}
