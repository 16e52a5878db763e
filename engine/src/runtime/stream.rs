//! One stream's report: what it read and committed, and, when it failed, why and where a
//! rerun resumes.

use std::time::Instant;

use super::{RunOptions, Runtime, StreamTask};
use crate::report::{Status, StreamReport};
use crate::validate::References;
use ferry_core::catalog::ReadMode;
use ferry_core::types::schema_fingerprint;
use ferry_core::{Error, ErrorKind};

impl Runtime {
    /// Runs one stream (or, with `refusal`, fails it unrun) and returns its report,
    /// however it ended.
    pub(super) async fn run_stream(
        &self,
        task: StreamTask,
        opts: &RunOptions,
        references: Option<References>,
        refusal: Option<Error>,
    ) -> StreamReport {
        let clock = Instant::now();
        self.observer.stream_started(&task.read.stream);
        let mut rep = StreamReport::new(
            &task.read.stream,
            &task.write.stream,
            task.read.mode,
            task.write.mode,
        );
        rep.state_before = task.read.state.clone();
        rep.state_after = task.read.state.clone();
        rep.schema_fingerprint = schema_fingerprint(&task.write.schema);
        let outcome = match refusal {
            // refused before a row was read (a schema change its policy forbids)
            Some(e) => Err(e),
            None => self.stream_inner(&task, opts, &mut rep, references).await,
        };
        if let Err(e) = outcome {
            rep.status = if e.kind() == ErrorKind::Cancelled {
                Status::Cancelled
            } else {
                Status::Failed
            };
            let e = e.with("stream", &task.read.stream);
            // where a rerun resumes, so a person knows what the failure cost
            let text = format!("{e}; {}", self.resume_point(&task));
            tracing::debug!(stream = %task.read.stream, "stream failed: {}", ferry_core::redact::redact(&text));
            rep.error = Some(ferry_core::redact::redact(&text));
            let causes = std::iter::successors(std::error::Error::source(&e), |c| c.source());
            rep.failure_context = Some((
                task.info.to_json(),
                causes
                    .map(|c| ferry_core::redact::redact(&c.to_string()))
                    .collect(),
            ));
        }
        // what neither reached the destination durably nor was set aside: the rows of the
        // batches the writer held when the stream stopped, and of the batch it stopped on
        rep.rows_uncommitted = rep
            .rows_read
            .saturating_sub(rep.rows_committed + rep.rows_rejected + rep.rows_filtered);
        rep.state_after = self.state.get(&task.read.stream).or(rep.state_after);
        rep.duration_secs = clock.elapsed().as_secs_f64();
        rep.rows_per_sec = if rep.duration_secs > 0.0 {
            rep.rows_read as f64 / rep.duration_secs
        } else {
            0.0
        };
        self.observer.stream_finished(&rep);
        rep
    }

    /// Where a rerun of a failed stream starts: its last committed state (compact JSON),
    /// or the beginning.
    pub(super) fn resume_point(&self, task: &StreamTask) -> String {
        if task.read.mode != ReadMode::Incremental {
            return "full refresh, nothing is committed: a rerun starts from the beginning".into();
        }
        match self.state.get(&task.read.stream) {
            Some(state) => format!("last committed: {state}"),
            None => "nothing committed yet: a rerun starts from the beginning".into(),
        }
    }
}
