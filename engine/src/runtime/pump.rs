//! The pump: moves a stream's messages from the source to the writer, through the
//! transforms and the checks, setting rejected rows aside.

use std::time::{Duration, Instant};

use super::ahead::{read_ahead, Staged};
use super::bad_rows::{check_ratio, malformed, tally, withhold_if_protected};
use super::batch::{batch_bytes, conform};
use super::commit::committed;
use super::complete::check_complete;
use super::position::{locate, row_position};
use super::sample::sample;
use super::{RunOptions, Runtime, StreamTask};
use crate::config::BadRecordPolicy;
use crate::personal_data::{Guard, Policy};
use crate::quarantine::QuarantineRecord;
use crate::report::StreamReport;
use crate::transform;
use crate::validate::Validator;
use arrow_array::RecordBatch;
use ferry_core::sink::{Durability, StreamWriter};
use ferry_core::source::{Message, RowPositions};
use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::digest::BackgroundDigest;

impl Runtime {
    /// Moves messages from the source to the writer; returns the checkpoint still to
    /// commit once the writer is closed.
    pub(super) async fn pump(
        &self,
        task: &StreamTask,
        opts: &RunOptions,
        writer: &mut dyn StreamWriter,
        rep: &mut StreamReport,
        validator: &mut Validator,
    ) -> Result<Option<serde_json::Value>> {
        let messages = self.source.read(task.read.clone()).await?;
        // batches are transformed ahead, on blocking threads, while the pump checks and
        // writes earlier ones; not with --limit, where the rows to transform depend on the
        // rows counted before
        let ahead = (!task.transforms.is_empty() && opts.limit.is_none())
            .then(|| (task.source_schema.clone(), task.transforms.clone()));
        let (mut rx, _stop_producer) =
            read_ahead(messages, self.settings.channel_capacity.max(1), ahead);
        let schema = task.write.schema.clone();
        let source_schema = task.source_schema.clone();
        let interval = Duration::from_secs_f64(self.settings.commit_interval_secs.max(0.0));
        let mut last_commit = Instant::now();
        let mut pending: Option<serde_json::Value> = None;
        // the receipt's row digest is summed on other threads, overlapping the transforms,
        // checks and writes (it costs more per row than most of them)
        let mut digest =
            BackgroundDigest::start(digest_workers(), self.settings.channel_capacity.max(1));

        let stream = task.read.stream.as_str();
        let quarantine = |rep: &mut StreamReport, rec: QuarantineRecord| -> Result<()> {
            rep.rows_rejected += 1;
            self.quarantine.put(&rec)
        };
        let limit = opts.limit;
        let mut exchanges = ferry_core::exchange::Recorder::new(&task.protected);
        // where the rows of the next batch were read (file sources say, before each batch)
        let mut positions: Option<Box<RowPositions>> = None;
        // only `refuse` holds rows (and commits) back: under `warn` the sample is tested as
        // the rows go through, so commits and counts stay as they were without a guard
        let holds = self.settings.personal_data == Policy::Refuse;
        let mut guard = Some(Guard::new(
            self.settings.personal_data,
            &task.transforms,
            &task.allow_personal,
        ));
        let mut held: Vec<RecordBatch> = Vec::new();
        let result: Result<()> = async {
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    return Err(Error::new(ErrorKind::Cancelled, "cancelled; state holds the last flushed checkpoint"));
                }
                m = rx.recv() => m,
            };
            let Some(msg) = msg else { break };
            let (msg, mut prepared) = match msg {
                Staged::Message(m) => (m?, None),
                Staged::Batch(handle) => {
                    let p = handle.await.map_err(|e| Error::internal(format!("a transform task failed: {e}")))??;
                    (Message::Batch(p.raw.clone()), Some(p))
                }
            };
            match msg {
                Message::Batch(batch) => {
                    let mut batch = match &prepared {
                        Some(p) => p.raw.clone(),
                        None => conform(&source_schema, batch)?,
                    };
                    if let Some(limit) = limit {
                        let left = limit.saturating_sub(rep.rows_read) as usize;
                        if batch.num_rows() > left {
                            batch = batch.slice(0, left);
                        }
                    }
                    let arrived = batch.num_rows() as u64;
                    let at = positions.take();
                    let at = at.as_deref();
                    // what a debug bundle keeps if this batch fails: the rows as they were
                    // when it failed (protected columns masked before the transforms ran)
                    let raw = batch.clone();
                    let first_row = rep.rows_read;
                    rep.rows_read += arrived;
                    let mut spared = 0u64;
                    // where each row that reaches the checks was in this batch as read
                    let mut origin: Option<Vec<usize>> = None;
                    if !task.transforms.is_empty() {
                        // a row a step cannot convert (a bad `cast`) is set aside, then
                        // quarantined (`on_bad_record = "quarantine"`) or the stream fails naming it
                        let transformed = match prepared.take() {
                            Some(p) => p.transformed,
                            None => transform::apply_all_tracked(&task.transforms, batch),
                        };
                        let transform::Transformed { batch: out, spared: bad, origin: o } = transformed
                            .inspect_err(|_| rep.failed_sample = Some(sample("transform", &raw, &task.protected)))?;
                        origin = o;
                        for b in bad {
                            let position = b.row.map(|r| row_position(at, first_row, r));
                            if task.on_bad_record != BadRecordPolicy::Quarantine {
                                rep.failed_sample = Some(sample("transform", &raw, &task.protected));
                                return Err(match (b.row, &position) {
                                    (Some(r), Some(p)) => locate(b.error, first_row + r as u64 + 1, p),
                                    _ => b.error,
                                });
                            }
                            spared += 1;
                            let position = position.unwrap_or_default();
                            tally(rep, &b.step, &position, b.error.message());
                            quarantine(rep, QuarantineRecord {
                                run_id: task.write.run_id.clone(),
                                stream: stream.to_string(),
                                position,
                                check: b.step,
                                message: b.error.message().to_string(),
                                record: Some(b.record),
                                raw: None,
                            })?;
                        }
                        batch = conform(&schema, out)
                            .inspect_err(|_| rep.failed_sample = Some(sample("transform", &raw, &task.protected)))?;
                    }
                    let transformed = batch.clone();
                    let keep_sample = |rep: &mut StreamReport, stage| rep.failed_sample = Some(sample(stage, &transformed, &[]));
                    // rows a `filter` transform removed are read, and neither written nor rejected
                    rep.rows_filtered +=
                        arrived.saturating_sub(batch.num_rows() as u64 + spared);
                    if !validator.is_empty() {
                        // a row of the checked batch, as it was read; none rather than a
                        // wrong one, when a step lost track
                        let as_read = |r: usize| if task.transforms.is_empty() { Some(r) } else { origin.as_ref().and_then(|o| o.get(r).copied()) };
                        let outcome = match validator.check(batch) {
                            Ok(o) => o,
                            Err(e) => {
                                keep_sample(rep, "check");
                                // a `fail` check names the row by its place in the batch
                                let read = e.context_value("row").and_then(|r| r.parse().ok()).and_then(as_read);
                                return Err(match read {
                                    Some(r) => locate(e, first_row + r as u64 + 1, &row_position(at, first_row, r)),
                                    None => e,
                                });
                            }
                        };
                        for (record, f) in outcome.rejected {
                            let position = as_read(f.row).map(|r| row_position(at, first_row, r)).unwrap_or_default();
                            quarantine(rep, QuarantineRecord {
                                run_id: task.write.run_id.clone(),
                                stream: stream.to_string(),
                                position,
                                check: f.check,
                                message: f.message,
                                record: Some(record),
                                raw: None,
                            })?;
                        }
                        batch = outcome.batch;
                    }
                    // the personal-data guard holds the first rows back until it has
                    // tested its sample: under `refuse`, nothing reaches the destination
                    match guard.as_mut() {
                        Some(g) => {
                            g.observe(&raw, &transformed);
                            if holds {
                                held.push(batch);
                            } else {
                                self.put(task, &mut *writer, rep, &mut digest, batch).await?;
                            }
                            if g.full() {
                                decide(&mut guard, stream, rep, false)?;
                                for b in std::mem::take(&mut held) {
                                    self.put(task, &mut *writer, rep, &mut digest, b).await?;
                                }
                            }
                        }
                        None => self.put(task, &mut *writer, rep, &mut digest, batch).await?,
                    }
                    if limit.is_some_and(|l| rep.rows_read >= l) {
                        break;
                    }
                }
                Message::Checkpoint(state) => {
                    pending = Some(state);
                    // with --require-complete nothing is committed before the end
                    // nor while the guard holds rows back
                    if limit.is_none() && !opts.require_complete && !(holds && guard.is_some()) && last_commit.elapsed() >= interval {
                        self.quarantine.flush_async(stream).await?;
                        if writer.flush().await? == Durability::Durable {
                            committed(rep);
                            if let Some(s) = pending.take() {
                                self.commit(task, s, rep).await?;
                            }
                        }
                        last_commit = Instant::now();
                    }
                }
                Message::Rejected(r) if task.on_bad_record == BadRecordPolicy::Quarantine => {
                    let r = withhold_if_protected(r, &task.protected);
                    rep.rows_read += 1;
                    tally(rep, "parse", &r.position, &r.message);
                    quarantine(rep, QuarantineRecord {
                        run_id: task.write.run_id.clone(),
                        stream: stream.to_string(),
                        position: r.position,
                        check: "parse".into(),
                        message: r.message,
                        record: None,
                        raw: task.protected.is_empty().then_some(r.raw),
                    })?;
                }
                Message::Rejected(r) => {
                    let r = withhold_if_protected(r, &task.protected);
                    // read, and neither quarantined nor committed: it stops the stream
                    rep.rows_read += 1;
                    return Err(malformed(&r));
                }
                Message::Estimate(n) => {
                    rep.rows_expected = Some(n);
                    self.observer.expected(&task.read.stream, n);
                }
                Message::Total(n) => {
                    rep.rows_total = Some(n);
                    rep.rows_expected = Some(limit.map_or(n, |l| l.min(n)));
                    self.observer.expected(&task.read.stream, n);
                }
                Message::Exchange(x) => exchanges.push(*x),
                Message::Positions(p) => positions = Some(p),
                Message::Deleted(keys) => {
                    // a trial writes rows and rolls them back; a delete it could not take back
                    if limit.is_none() && keys.num_rows() > 0 {
                        let n = writer.delete_keys(keys).await?;
                        *rep.rows_deleted.get_or_insert(0) += n;
                    }
                }
            }
        }
        if guard.is_some() {
            decide(&mut guard, stream, rep, limit.is_none())?;
            for b in std::mem::take(&mut held) {
                self.put(task, &mut *writer, rep, &mut digest, b).await?;
            }
        }
        validator.finish()?;
        check_ratio(task, rep)?;
        check_complete(rep, limit, opts.require_complete)
        }
        .await;
        // the checks, then the records quarantined before them (`parse`, a transform)
        let before = std::mem::replace(&mut rep.checks, validator.report());
        rep.checks.extend(before);
        if result.is_err() {
            rep.exchanges = exchanges.into_vec(); // for the debug bundle
        }
        // rejected records are kept even when the stream fails
        self.quarantine.finish(stream).await?;
        result?;
        // a trial is aborted, never flushed: a flush may commit its rows
        if limit.is_none() && writer.flush().await? == Durability::Durable {
            committed(rep);
        }
        rep.rows_digest = digest.finish().await?.to_receipt_string();
        // a trial run (`--limit`) must not move the incremental window
        Ok(if limit.is_some() { None } else { pending })
    }
}

impl Runtime {
    /// Hands one checked batch to the writer and the row digest, and counts it.
    async fn put(
        &self,
        task: &StreamTask,
        writer: &mut dyn StreamWriter,
        rep: &mut StreamReport,
        digest: &mut BackgroundDigest,
        batch: RecordBatch,
    ) -> Result<()> {
        digest.add(batch.clone()).await?;
        let n = batch.num_rows() as u64;
        let bytes = batch_bytes(&batch);
        if n > 0 {
            let kept = batch.clone();
            if let Err(e) = writer.write(batch).await {
                rep.failed_sample = Some(sample("write", &kept, &[]));
                return Err(e);
            }
        }
        // with the writer, not durable until a durable flush or the close
        rep.rows_uncommitted += n;
        rep.bytes += bytes;
        self.observer.progress(
            &task.read.stream,
            rep.rows_committed + rep.rows_uncommitted,
            rep.bytes,
        );
        Ok(())
    }
}

/// The guard's verdict on its sample, kept in the report; an error under `refuse`.
fn decide(
    guard: &mut Option<Guard>,
    stream: &str,
    rep: &mut StreamReport,
    complete: bool,
) -> Result<()> {
    let Some(g) = guard.take() else {
        return Ok(());
    };
    let (record, outcome) = g.decide(stream, complete);
    rep.personal_data = Some(record);
    outcome
}

/// Threads that sum a stream's row digest: two when the machine has two cores or more, so
/// hashing can use a core the source and the writer leave idle.
fn digest_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}
