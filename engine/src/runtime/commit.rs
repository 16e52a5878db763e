//! Checkpoints: a stream's state is committed only once the sink made the rows before
//! it durable.

use super::{Runtime, StreamTask};
use crate::report::StreamReport;
use ferry_core::catalog::ReadMode;
use ferry_core::{Result, Settled};

impl Runtime {
    /// Commits a checkpoint whose rows are durable: saves its state (incremental reads),
    /// then tells the source, which may now archive or delete what the checkpoint covers
    /// (never before: a crash in between leaves the files where they were). What the
    /// source did or failed to do goes into the report; its failure fails nothing.
    pub(super) async fn commit(
        &self,
        task: &StreamTask,
        state: serde_json::Value,
        rep: &mut StreamReport,
    ) -> Result<()> {
        let stream = &task.read.stream;
        if task.read.mode == ReadMode::Incremental {
            let run_id = &task.write.run_id;
            self.state.commit(stream, state.clone(), run_id)?;
            tracing::debug!(stream = %stream, "state committed");
        }
        match self.source.committed(stream, &state).await {
            Ok(settled) => rep.settled.extend(settled),
            Err(e) => {
                let e = ferry_core::redact::redact(&e.to_string());
                tracing::warn!(stream = %stream, "after the commit: {e}");
                rep.settled
                    .push(Settled::failed("the files read", "archived or deleted", e));
            }
        }
        Ok(())
    }
}

/// The rows handed to the writer are durable now (a durable flush, or the writer closed).
/// While a stream runs, `rows_uncommitted` counts the rows the writer holds.
pub(super) fn committed(rep: &mut StreamReport) {
    rep.rows_committed += rep.rows_uncommitted;
    rep.rows_uncommitted = 0;
}
