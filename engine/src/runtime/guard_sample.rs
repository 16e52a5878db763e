//! The personal-data guard's sample for `ferry plan`: the first rows a sync would test,
//! read and transformed the same way, and nothing written.

use futures::StreamExt;

use super::{conform, Runtime, StreamTask};
use crate::personal_data::{Guard, Record, SAMPLE_ROWS};
use crate::transform;
use ferry_core::source::Message;
use ferry_core::Result;

impl Runtime {
    /// What the guard would find in `task`'s first rows, and, under `refuse`, the error
    /// the sync would stop with.
    pub async fn personal_data(&self, task: &StreamTask) -> Result<(Record, Result<()>)> {
        let mut guard = Guard::new(
            self.settings.personal_data,
            &task.transforms,
            &task.allow_personal,
        );
        let mut read = task.read.clone();
        // one row past the sample tells a stream that has more from one that just fits
        read.limit = Some(SAMPLE_ROWS + 1);
        let mut messages = self.source.read(read).await?;
        let mut seen = 0u64;
        while let Some(m) = messages.next().await {
            let Message::Batch(batch) = m? else { continue };
            let batch = conform(&task.source_schema, batch)?;
            seen += batch.num_rows() as u64;
            // rows a step cannot convert are set aside, as a quarantining sync would
            let (out, _) = transform::apply_all_sparing(&task.transforms, batch.clone())?;
            guard.observe(&batch, &out);
            if guard.full() {
                break;
            }
        }
        Ok(guard.decide(&task.read.stream, seen <= SAMPLE_ROWS))
    }
}
