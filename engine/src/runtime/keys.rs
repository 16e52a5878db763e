//! After an incremental read of a stream with `deletes`: the source lists every key it
//! holds ([`Source::read_keys`]) and the writer keeps those, so the delete that follows
//! sees the whole source, not just the rows that changed.
//!
//! [`Source::read_keys`]: ferry_core::Source::read_keys

use std::sync::Arc;

use futures::StreamExt;

use super::batch::conform;
use super::{Runtime, StreamTask};
use ferry_core::arrow_schema::Schema;
use ferry_core::sink::StreamWriter;
use ferry_core::source::Message;
use ferry_core::{Error, ErrorKind, Result};

impl Runtime {
    /// Gives `writer` every key the source holds for `task`'s stream.
    pub(super) async fn keep_source_keys(
        &self,
        task: &StreamTask,
        writer: &mut dyn StreamWriter,
    ) -> Result<()> {
        let key = task.write.primary_key();
        let fields = key
            .iter()
            .map(|k| task.write.schema.field_with_name(k).cloned())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("a key column is not in the stream: {e}")))?;
        let schema = Arc::new(Schema::new(fields));
        let batch_size = self.settings.batch_size;
        let mut keys = self
            .source
            .read_keys(&task.read.stream, &key, batch_size)
            .await?;
        loop {
            let m = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    return Err(Error::new(ErrorKind::Cancelled, "cancelled while listing the source's keys; nothing was deleted"));
                }
                m = keys.next() => m,
            };
            let Some(m) = m else { return Ok(()) };
            if let Message::Batch(b) = m? {
                writer.keep_keys(conform(&schema, b)?).await?;
            }
        }
    }
}
