//! Running planned streams: `referential` checks decide the order (waves), the run's
//! concurrency how many at once; the run report gathers them.

use std::time::Instant;

use futures::StreamExt;

use super::{RunOptions, Runtime, StreamTask};
use crate::report::{RunReport, Status, StreamReport};
use crate::validate::{CheckConfig, References};
use ferry_core::Error;

impl Runtime {
    /// Runs planned streams, `concurrency` at a time.
    pub async fn run(
        &self,
        tasks: Vec<StreamTask>,
        opts: &RunOptions,
        run_id: &str,
        names: (&str, &str),
    ) -> RunReport {
        self.run_all(tasks, Vec::new(), opts, run_id, names).await
    }

    /// Runs `tasks`, and reports each of `refused` as failed with its error, unrun.
    pub(super) async fn run_all(
        &self,
        tasks: Vec<StreamTask>,
        refused: Vec<(StreamTask, Error)>,
        opts: &RunOptions,
        run_id: &str,
        names: (&str, &str),
    ) -> RunReport {
        let started = chrono::Utc::now();
        let clock = Instant::now();
        let order: Vec<String> = tasks
            .iter()
            .chain(refused.iter().map(|(t, _)| t))
            .map(|t| t.read.stream.clone())
            .collect();
        // what every stream committed before, for a source that archives a file once all
        // streams reading it committed it
        let saved = self.state.snapshot().streams;
        let saved = saved.into_iter().map(|(k, v)| (k, v.state)).collect();
        self.source.saved_states(&saved);
        let mut reports: Vec<StreamReport> = Vec::new();
        for (task, e) in refused {
            reports.push(self.run_stream(task, opts, None, Some(e)).await);
        }
        // `referential` checks need the referenced streams to finish first: run in waves
        let shapes: Vec<(&str, &arrow_schema::Schema, &[CheckConfig])> = tasks
            .iter()
            .map(|t| {
                (
                    t.read.stream.as_str(),
                    t.write.schema.as_ref(),
                    t.checks.as_slice(),
                )
            })
            .collect();
        let (references, waves) = match References::plan(&shapes) {
            Ok((r, w)) => (Some(r), w),
            Err(e) => {
                tracing::warn!("referential checks cannot run: {e}");
                (None, vec![(0..tasks.len()).collect()])
            }
        };
        // a trial (`--limit`) runs one stream at a time: a sink whose streams share a
        // transaction (sqlite) must not commit one stream's trial rows while closing another
        let concurrency = if opts.limit.is_some() {
            1
        } else {
            self.settings.concurrency.max(1)
        };
        let mut slots: Vec<Option<StreamTask>> = tasks.into_iter().map(Some).collect();
        for wave in waves {
            let wave_tasks: Vec<StreamTask> = wave
                .iter()
                .filter_map(|i| slots.get_mut(*i).and_then(Option::take))
                .collect();
            let mut done: Vec<StreamReport> = futures::stream::iter(wave_tasks)
                .map(|t| self.run_stream(t, opts, references.clone(), None))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            reports.append(&mut done);
        }
        // streams no wave named (should not happen) still run
        let rest: Vec<StreamTask> = slots.into_iter().flatten().collect();
        let mut done: Vec<StreamReport> = futures::stream::iter(rest)
            .map(|t| self.run_stream(t, opts, references.clone(), None))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        reports.append(&mut done);
        reports.sort_by_key(|r| order.iter().position(|n| n == &r.stream));
        let status = if reports.iter().any(|r| r.status == Status::Failed) {
            Status::Failed
        } else if reports.iter().any(|r| r.status == Status::Cancelled) {
            Status::Cancelled
        } else {
            Status::Succeeded
        };
        RunReport {
            run_id: run_id.to_string(),
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_secs: clock.elapsed().as_secs_f64(),
            source: names.0.to_string(),
            destination: names.1.to_string(),
            status,
            streams: reports,
            redactions: ferry_core::redact::hits(),
            dry_run: false,
            trial: opts.limit.is_some(),
        }
    }
}
