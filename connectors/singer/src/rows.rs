//! The rows of one stream a bridged program prints as JSON records, kept whole in
//! batches: what the Singer and the Airbyte readers share.

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::values::BatchBuilder;
use ferry_core::{ErrorKind, Message, Position, Rejected, Result};
use serde_json::{Map, Value};

pub use crate::process::LineError;

/// Records turned into batches of at most `batch_size` rows.
pub struct RecordRows {
    builder: BatchBuilder,
    batch_size: usize,
}

impl RecordRows {
    /// Rows of `schema`, `batch_size` (at least 1) to a batch.
    pub fn new(schema: SchemaRef, batch_size: usize) -> Result<Self> {
        let batch_size = batch_size.max(1);
        Ok(RecordRows {
            builder: BatchBuilder::new(schema, batch_size.min(65536))?,
            batch_size,
        })
    }

    /// Adds `record`, stdout line `n` (`line` as printed) of `origin` (`tap x stdout`). A
    /// record with a value that does not fit its column becomes a rejected record, after
    /// the rows before it, so every row keeps its place; a full batch goes out.
    pub fn push(
        &mut self,
        record: &Map<String, Value>,
        n: u64,
        line: &str,
        origin: String,
        out: &mut Vec<Message>,
    ) -> std::result::Result<(), LineError> {
        if let Err(f) = self.builder.push_json_row(record) {
            self.flush(out)?;
            out.push(Message::Rejected(Rejected {
                position: Position {
                    line: Some(n),
                    key: Some(origin),
                    ..Default::default()
                },
                raw: line.to_string(),
                message: format!("column `{}`: {}", f.name, f.message),
            }));
        }
        if self.builder.len() >= self.batch_size {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Sends the rows so far as one batch (before a checkpoint, and at the end).
    pub fn flush(&mut self, out: &mut Vec<Message>) -> std::result::Result<(), LineError> {
        if !self.builder.is_empty() {
            let batch = self
                .builder
                .finish()
                .map_err(|e| (ErrorKind::Internal, e.to_string()))?;
            if batch.num_rows() > 0 {
                out.push(Message::Batch(batch));
            }
        }
        Ok(())
    }
}
