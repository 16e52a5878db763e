//! Checkpoints: a stream's state is committed only once the sink made the rows before
//! it durable.

use super::{Runtime, StreamTask};
use crate::report::StreamReport;
use ferry_core::catalog::ReadMode;
use ferry_core::Result;

impl Runtime {
    pub(super) fn commit(&self, task: &StreamTask, state: serde_json::Value) -> Result<()> {
        if task.read.mode != ReadMode::Incremental {
            return Ok(());
        }
        let run_id = &task.write.run_id;
        self.state.commit(&task.read.stream, state, run_id)?;
        tracing::debug!(stream = %task.read.stream, "state committed");
        Ok(())
    }
}

/// The rows handed to the writer are durable now (a durable flush, or the writer closed).
/// While a stream runs, `rows_uncommitted` counts the rows the writer holds.
pub(super) fn committed(rep: &mut StreamReport) {
    rep.rows_committed += rep.rows_uncommitted;
    rep.rows_uncommitted = 0;
}
