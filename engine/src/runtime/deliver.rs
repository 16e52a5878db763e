//! One stream from the writer's opening to its close: the pump, then the close (a
//! trial is rolled back instead), the state commit, the references other streams wait
//! for and the row counts the next run compares with.

use super::commit::committed;
use super::{RunOptions, Runtime, StreamTask};
use crate::report::StreamReport;
use crate::validate::{CheckConfig, CountOf, References, RunContext, Validator};
use ferry_core::catalog::ReadMode;
use ferry_core::sink::StreamWriter;
use ferry_core::{Result, ResultExt};

impl Runtime {
    /// Opens the stream's writer, pumps the stream through it, then closes it and commits
    /// the last checkpoint (a trial, or a failure, aborts it instead).
    pub(super) async fn stream_inner(
        &self,
        task: &StreamTask,
        opts: &RunOptions,
        rep: &mut StreamReport,
        references: Option<References>,
    ) -> Result<()> {
        // `row_count`'s `max_change` compares with the last successful run's count; a trial
        // (`--limit`) or a full re-read of an incremental stream is not comparable
        let counts_rows = opts.limit.is_none() && wants_row_count(&task.checks);
        let comparable = !(opts.full_refresh && task.read.mode == ReadMode::Incremental);
        let incremental = task.read.mode == ReadMode::Incremental;
        // the destination's count after a run is kept beside the run's, under its own key
        let destination_key = format!("{} (destination)", task.read.stream);
        let ctx = RunContext {
            stream: task.read.stream.clone(),
            references,
            previous_rows: if counts_rows && comparable {
                self.state.previous_rows(&task.read.stream)
            } else {
                None
            },
            // a trial run's count is no baseline; a full re-read still fills the same table
            previous_destination_rows: if opts.limit.is_none() {
                self.state.previous_rows(&destination_key)
            } else {
                None
            },
            incremental,
        };
        let mut validator = Validator::for_run(&task.checks, &task.write.schema, &ctx)?;
        let mut writer = self
            .sink
            .open(task.write.clone())
            .await
            .ctx("destination", &task.write.stream)?;
        if task.changes {
            writer.deletes_by_key();
        }
        match self
            .pump(task, opts, writer.as_mut(), rep, &mut validator)
            .await
        {
            Ok(_) if opts.limit.is_some() => {
                // a trial: everything went through the destination; now take it all back
                if task.write.deletes.is_some() {
                    rep.deletes_skipped = Some("a trial (--limit) deletes nothing".into());
                }
                writer
                    .abort()
                    .await
                    .ctx("destination", &task.write.stream)?;
                // other streams' `referential` checks of the trial see the trial's values
                validator.publish();
                // the destination holds none of the trial's rows: its count would say nothing
                if validator.counts_destination() {
                    validator.skip_destination(
                        "not checked: a trial (--limit) rolls back what it wrote, so the destination's count says nothing about this run",
                    );
                    let n = validator.report().len();
                    for (mine, now) in rep.checks.iter_mut().zip(validator.report()).take(n) {
                        *mine = now;
                    }
                }
                Ok(())
            }
            Ok(pending) => {
                // a read of changes applied the source's own deletes as they came
                if task.changes {
                    rep.rows_deleted = Some(rep.rows_deleted.unwrap_or(0));
                } else if task.write.deletes.is_some() {
                    match incomplete(rep) {
                        Some(why) => rep.deletes_skipped = Some(why),
                        None => match self.delete_missing(task, writer.as_mut()).await {
                            Ok(n) => rep.rows_deleted = Some(n),
                            Err(e) => {
                                if let Err(abort) = writer.abort().await {
                                    tracing::warn!(stream = %task.read.stream, "abort after failure also failed: {abort}");
                                }
                                return Err(e.with("destination", &task.write.stream));
                            }
                        },
                    }
                }
                let summary = writer.close().await?;
                committed(rep);
                let closed = summary.outputs.iter().filter_map(|o| o.closed);
                rep.versions_closed = closed.reduce(|a, b| a + b);
                rep.outputs = summary.outputs;
                // only values that were really written may satisfy other streams' checks
                validator.publish();
                if let Some(state) = pending {
                    self.commit(task, state, rep).await?;
                }
                if counts_rows && validator.keeps_count(CountOf::Run) {
                    self.state.record_rows(
                        &task.read.stream,
                        validator.rows(),
                        &task.write.run_id,
                    )?;
                }
                if validator.counts_destination() {
                    // asked once this run's rows are committed, so its own rows count; a
                    // failure here leaves them (and the state) committed: they are there
                    let held = self.sink.count(&task.write.stream).await?;
                    let verdict = validator.finish_destination(held);
                    let n = validator.report().len();
                    for (mine, now) in rep.checks.iter_mut().zip(validator.report()).take(n) {
                        *mine = now;
                    }
                    verdict.map_err(|e| {
                        let e = e.with("hint", "this run's rows and state are committed: the count is of what the destination holds now");
                        match held {
                            Some(h) => e.with("destination_rows", h),
                            None => e,
                        }
                    })?;
                    if let (Some(held), true, None) = (
                        held,
                        validator.keeps_count(CountOf::Destination),
                        opts.limit,
                    ) {
                        self.state
                            .record_rows(&destination_key, held, &task.write.run_id)?;
                    }
                }
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(stream = %task.read.stream, "abort after failure also failed: {abort}");
                }
                Err(e)
            }
        }
    }
}

impl Runtime {
    /// Deletes or marks the destination's rows whose key the source no longer holds: the
    /// keys written, or after an incremental read every key the source lists.
    async fn delete_missing(
        &self,
        task: &StreamTask,
        writer: &mut dyn StreamWriter,
    ) -> Result<u64> {
        if task.read.mode == ReadMode::Incremental {
            self.keep_source_keys(task, writer).await?;
        }
        writer.delete_missing().await
    }
}

/// Why a stream's read does not show every key the source holds, so `deletes` must
/// delete nothing; `None` when it does (a full read that wrote every row it read).
fn incomplete(rep: &StreamReport) -> Option<String> {
    if rep.complete == Some(false) {
        return Some("the source reported more rows than were read".into());
    }
    let (filtered, rejected) = (rep.rows_filtered, rep.rows_rejected);
    match (filtered, rejected) {
        (0, 0) => None,
        (0, n) => Some(format!("{n} rows were rejected, so their keys are unknown")),
        (n, _) => Some(format!(
            "a filter removed {n} rows, so the read was not the whole source"
        )),
    }
}

/// Whether a stream has a `row_count` check with `max_change` (its count is then kept).
fn wants_row_count(checks: &[CheckConfig]) -> bool {
    checks.iter().any(|c| {
        matches!(
            c,
            CheckConfig::RowCount {
                max_change: Some(_),
                ..
            }
        )
    })
}
