//! The pipeline: source → bounded channel → sink, per stream, several streams at once.
//!
//! Why a bounded channel: memory stays at `channel_capacity` batches per stream no
//! matter how fast the source is, because a full channel makes the source wait
//! (backpressure). Why checkpoints travel *in* the stream: a checkpoint is committed
//! only after the sink flushed every batch before it, which is what makes a rerun
//! after a crash neither lose rows nor (for upsert) duplicate them.
//!
//! Everything a run would refuse (an unknown stream, a mode the sink cannot do,
//! upsert without a primary key) is checked by [`Runtime::plan`] before a row is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

pub use crate::config::DEFAULT_MAX_BAD_RATIO;
pub use crate::report::SAMPLE_ROWS;

use crate::config::BadRecordPolicy;
use crate::config::{RunSettings, StreamConfig, SyncConfig};
use crate::quarantine::{Quarantine, QuarantineRecord};
use crate::report::{RunReport, Status, StreamReport};
use crate::schema_change::{reconcile_stream, Decision, Reconciled};
use crate::state::StateStore;
use crate::transform::{self, Transform};
use crate::validate::{CheckConfig, CountOf, References, RunContext, Validator};
use ferry_core::catalog::{Catalog, ReadMode, StreamInfo, WriteMode};
use ferry_core::sink::{Durability, Sink, StreamWriter, WriteRequest};
use ferry_core::source::{Message, Position, ReadRequest, RowPositions, Source};
use ferry_core::types::{schema_fingerprint, with_keys};
use ferry_core::{Error, ErrorKind, Result, ResultExt};

/// Hears about progress, to draw progress bars or log lines.
pub trait Observer: Send + Sync {
    /// A stream starts.
    fn stream_started(&self, _stream: &str) {}
    /// The source expects this many rows in total.
    fn expected(&self, _stream: &str, _rows: u64) {}
    /// Rows and bytes written so far (cumulative).
    fn progress(&self, _stream: &str, _rows: u64, _bytes: u64) {}
    /// A stream ended.
    fn stream_finished(&self, _report: &StreamReport) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// One stream, fully resolved: what to read and how to write it.
#[derive(Clone)]
pub struct StreamTask {
    /// The source's description of the stream.
    pub info: StreamInfo,
    /// The read request (state filled in).
    pub read: ReadRequest,
    /// The schema batches arrive in (the source's, with keys).
    pub source_schema: arrow_schema::SchemaRef,
    /// Steps applied to each batch before it is written.
    pub transforms: Vec<Arc<dyn Transform>>,
    /// The write request (its schema is the schema after the transforms).
    pub write: WriteRequest,
    /// Checks run on every batch after the transforms.
    pub checks: Vec<CheckConfig>,
    /// What to do with records the source cannot read.
    pub on_bad_record: BadRecordPolicy,
    /// Fail when more than this share of rows is rejected.
    pub max_bad_ratio: Option<f64>,
    /// Columns a `hash`, `encrypt`, `mask` or `drop` transform protects (by their source
    /// names, through renames): masked in any sample of rows taken before the transforms
    /// ran (debug bundles), and never shown in a malformed record's raw text.
    pub protected: Vec<String>,
}

impl std::fmt::Debug for StreamTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTask")
            .field("stream", &self.read.stream)
            .field("read", &self.read.mode)
            .field("write", &self.write.mode)
            .field(
                "transforms",
                &self
                    .transforms
                    .iter()
                    .map(|t| t.describe())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl StreamTask {
    /// Makes the task's batches fit a schema-change decision: the step that conforms them,
    /// and the write schema after it. Nothing for a refused decision (the stream does not run).
    pub fn apply(&mut self, decision: &Decision) -> Result<()> {
        if decision.refusal.is_none() {
            if let Some(t) = decision.transform() {
                self.write.schema = t.output_schema(&self.write.schema)?;
                self.transforms.push(t);
            }
        }
        Ok(())
    }
}

/// Describes each task's destination, applies its stream's `on_schema_change` policy and,
/// where the decision needs it, adds the step that makes batches fit (and updates the
/// task's write schema). Refusals are returned in [`Decision::refusal`], not as errors,
/// so `ferry plan` can show all of them; [`Runtime::sync`] stops on the first.
pub async fn reconcile(
    sink: &dyn Sink,
    tasks: &mut [StreamTask],
    streams: &[StreamConfig],
) -> Result<Vec<Reconciled>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks.iter_mut() {
        let policy = streams
            .iter()
            .find(|s| s.name == task.read.stream)
            .map(|s| s.on_schema_change)
            .unwrap_or_default();
        let found = reconcile_stream(sink, &task.read.stream, &task.write, policy).await?;
        task.apply(&found.decision)?;
        out.push(found);
    }
    Ok(out)
}

/// Options of one run, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Sync only these streams (default: those in config, or all).
    pub only: Option<Vec<String>>,
    /// Ignore saved state and read everything.
    pub full_refresh: bool,
    /// Stop each stream after about this many rows; state is then not saved.
    pub limit: Option<u64>,
    /// The run id (default: a new one).
    pub run_id: Option<String>,
    /// Fail a stream whose rows read differ from the total its source reported
    /// ([`Message::Total`]), before its state is committed. Checkpoints are then held
    /// to the end of the stream.
    pub require_complete: bool,
}

/// Runs syncs between one source and one sink.
pub struct Runtime {
    /// Where rows come from.
    pub source: Arc<dyn Source>,
    /// Where rows go.
    pub sink: Arc<dyn Sink>,
    /// Committed state.
    pub state: Arc<StateStore>,
    /// `[run]` settings.
    pub settings: RunSettings,
    /// Progress listener.
    pub observer: Arc<dyn Observer>,
    /// Cancelled on Ctrl-C.
    pub cancel: CancellationToken,
    /// Where rejected records go (default: `quarantine/` beside the state file).
    pub quarantine: Arc<Quarantine>,
}

impl Runtime {
    /// A runtime with default settings, no observer and a fresh cancel token.
    pub fn new(source: Arc<dyn Source>, sink: Arc<dyn Sink>, state: Arc<StateStore>) -> Self {
        let dir = state
            .path()
            .parent()
            .map(|p| p.join("quarantine"))
            .unwrap_or_else(|| "quarantine".into());
        Runtime {
            quarantine: Arc::new(Quarantine::new(dir)),
            source,
            sink,
            state,
            settings: RunSettings::default(),
            observer: Arc::new(Silent),
            cancel: CancellationToken::new(),
        }
    }

    /// Resolves the streams to sync and checks, before reading anything, that each
    /// exists, that its modes are supported and that it has the keys it needs.
    pub fn plan(
        &self,
        catalog: &Catalog,
        streams: &[StreamConfig],
        opts: &RunOptions,
        config: Option<&SyncConfig>,
        run_id: &str,
    ) -> Result<Vec<StreamTask>> {
        let positioned = |needle: &str, msg: String| match config {
            Some(c) => c.error_near(needle, msg),
            None => Error::config(msg),
        };
        let selected: Vec<StreamConfig> = if streams.is_empty() {
            catalog
                .streams
                .iter()
                .map(|s| StreamConfig::named(&s.name))
                .collect()
        } else {
            streams.to_vec()
        };
        if let Some(only) = &opts.only {
            for name in only {
                if !selected.iter().any(|s| &s.name == name) {
                    return Err(Error::config(format!(
                        "--streams names `{name}`, which is not among the streams to sync ({})",
                        selected
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let caps = self.sink.capabilities();
        let mut tasks = Vec::new();
        for sc in selected {
            if opts.only.as_ref().is_some_and(|o| !o.contains(&sc.name)) {
                continue;
            }
            let needle = format!("\"{}\"", sc.name);
            let info = catalog.get(&sc.name).ok_or_else(|| {
                let mut msg = format!("stream `{}` is not offered by the source", sc.name);
                if let Some(best) = ferry_core::suggest::nearest(&sc.name, catalog.names()) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                msg.push_str(&format!(
                    " (`ferry discover` lists: {})",
                    catalog.names().join(", ")
                ));
                positioned(&needle, msg).with("stream", &sc.name)
            })?;
            if ferry_core::sink::is_reserved(sc.destination_name()) {
                return Err(positioned(
                    &needle,
                    format!(
                        "stream `{}` would be written as `{}`: names starting with `{}` are Ferry's own \
                         (the client tag, staging tables); set `destination = \"...\"` on the stream to another name",
                        sc.name,
                        sc.destination_name(),
                        ferry_core::sink::RESERVED_PREFIX
                    ),
                )
                .with("stream", &sc.name));
            }
            let mode = sc.mode.unwrap_or(WriteMode::Append);
            if !caps.modes.contains(&mode) {
                return Err(positioned(
                    &needle,
                    format!(
                        "the destination cannot {mode} (it supports: {})",
                        caps.modes
                            .iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with("stream", &sc.name));
            }
            // also checked when the config is read; here for configs built in code
            if mode == WriteMode::Overwrite && sc.is_incremental() {
                return Err(
                    positioned(&needle, crate::config::overwrite_incremental(&sc))
                        .with("stream", &sc.name),
                );
            }
            let primary_key = sc
                .primary_key
                .clone()
                .unwrap_or_else(|| info.primary_key.clone());
            for k in &primary_key {
                if info.schema.field_with_name(k).is_err() {
                    return Err(positioned(
                        &needle,
                        format!("primary key column `{k}` is not in stream `{}`", sc.name),
                    )
                    .with("stream", &sc.name));
                }
            }
            if mode == WriteMode::Upsert && primary_key.is_empty() {
                return Err(positioned(
                    &needle,
                    format!("stream `{}` is written with upsert but has no primary key: add `primary_key = [\"id\"]`", sc.name),
                )
                .with("stream", &sc.name));
            }
            let incremental = sc.is_incremental();
            let cursor = if incremental {
                if !info.supports_incremental() {
                    return Err(positioned(
                        &needle,
                        format!("stream `{}` cannot be read incrementally", sc.name),
                    )
                    .with("stream", &sc.name));
                }
                let c = sc.cursor.clone().or_else(|| info.default_cursor.clone());
                if let Some(c) = &c {
                    if info.schema.field_with_name(c).is_err()
                        && !info.cursor_candidates.contains(c)
                    {
                        return Err(positioned(
                            &needle,
                            format!(
                                "cursor `{c}` is not a column of stream `{}` (candidates: {})",
                                sc.name,
                                info.cursor_candidates.join(", ")
                            ),
                        )
                        .with("stream", &sc.name));
                    }
                }
                c
            } else {
                None
            };
            let state = if incremental && !opts.full_refresh {
                self.state.get(&sc.name)
            } else {
                None
            };
            let read = ReadRequest {
                stream: sc.name.clone(),
                mode: if incremental {
                    ReadMode::Incremental
                } else {
                    ReadMode::FullRefresh
                },
                cursor: cursor.clone(),
                state,
                limit: opts.limit,
                batch_size: self.settings.batch_size,
            };
            let source_schema = with_keys(
                &info.schema,
                &primary_key,
                cursor
                    .as_deref()
                    .filter(|c| info.schema.field_with_name(c).is_ok()),
            );
            let run = transform::RunInfo::starting_now(run_id);
            let transforms = crate::config::build_stream(config, &sc, &run)?;
            let out = transform::output_schema(&transforms, source_schema.clone())
                .map_err(|e| positioned(&needle, e.to_string()).with("stream", &sc.name))?;
            for k in &primary_key {
                if out.field_with_name(k).is_err() {
                    return Err(positioned(
                        &needle,
                        format!(
                            "a transform removes primary key column `{k}` of stream `{}`",
                            sc.name
                        ),
                    )
                    .with("stream", &sc.name));
                }
            }
            let schema = with_keys(
                &out,
                &primary_key,
                cursor.as_deref().filter(|c| out.field_with_name(c).is_ok()),
            );
            let write = WriteRequest {
                stream: sc.destination_name().to_string(),
                schema,
                mode,
                run_id: run_id.to_string(),
            };
            Validator::new(&sc.checks, &write.schema).map_err(|e| {
                positioned(&needle, e.message().to_string()).with("stream", &sc.name)
            })?;
            if sc.max_bad_ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(positioned(
                    &needle,
                    format!(
                        "max_bad_ratio of stream `{}` must be between 0 and 1",
                        sc.name
                    ),
                ));
            }
            let protected = transform::hidden_before(&transforms);
            tasks.push(StreamTask {
                info: info.clone(),
                read,
                source_schema,
                transforms,
                write,
                checks: sc.checks.clone(),
                on_bad_record: sc.on_bad_record,
                max_bad_ratio: sc.max_bad_ratio,
                protected,
            });
        }
        Ok(tasks)
    }

    /// Discovers, plans and runs every stream; the report says what happened to each.
    /// Errors only for what stops the run before any stream starts.
    pub async fn sync(
        &self,
        streams: &[StreamConfig],
        opts: &RunOptions,
        config: Option<&SyncConfig>,
        names: (&str, &str),
    ) -> Result<RunReport> {
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        if opts.limit.is_some() && !self.sink.rolls_back() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "`--limit` is a trial: it writes through the destination and then takes the rows back, \
                 and this destination cannot take rows back (nothing was read or written). \
                 Run `ferry sync --dry-run` to see the first rows as they would be written, without writing",
            )
            .with("hint", "run `ferry sync --dry-run`, or `ferry plan`"));
        }
        match config.and_then(|c| c.client.as_deref()) {
            Some(client) => self.check_owner(client).await?,
            None => self.check_unnamed().await?,
        }
        let catalog = self.source.discover().await?;
        let mut tasks = self.plan(&catalog, streams, opts, config, &run_id)?;
        // schema changes are decided (and refused) before a row is read
        let found = reconcile(self.sink.as_ref(), &mut tasks, streams).await?;
        // a refused stream fails on its own; the others are independent and run
        let (mut ready, mut refused): (Vec<StreamTask>, Vec<(StreamTask, Error)>) =
            (Vec::new(), Vec::new());
        for (task, r) in tasks.into_iter().zip(&found) {
            match r.decision.error(&r.stream) {
                Some(e) => refused.push((task, e)),
                None => ready.push(task),
            }
        }
        if ready.is_empty() && refused.len() == 1 {
            // nothing else would run: the refusal is the run's error, as before
            return Err(refused.pop().expect("one").1);
        }
        Ok(self.run_all(ready, refused, opts, &run_id, names).await)
    }

    /// Refuses, before a row is read, a destination bound to another client; binds an
    /// unbound one to `client` (tenant binding, see SECURITY.md).
    pub async fn check_owner(&self, client: &str) -> Result<()> {
        let owner = match self.sink.owner().await? {
            Some(owner) => Some(owner),
            // insert-if-absent: a concurrent sync that bound it first wins, and is named
            None => {
                let bound = self.sink.bind_owner(client).await?;
                if bound.as_deref() == Some(client) {
                    tracing::info!("destination bound to client `{client}`");
                }
                bound
            }
        };
        match owner {
            Some(owner) if owner != client => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the destination is bound to client `{owner}`, but this folder is client `{client}`: \
                     refusing to write one client's data into another's destination (nothing was read)"
                ),
            )
            .with("client", client)),
            _ => Ok(()),
        }
    }

    /// Refuses, before a row is read, a destination bound to a client when the folder
    /// names none: an unnamed folder must not write into any client's destination.
    pub async fn check_unnamed(&self) -> Result<()> {
        match self.sink.owner().await? {
            Some(owner) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the destination is bound to client `{owner}`, but this folder names no client: \
                     refusing to write into a client's destination from an unnamed folder (nothing was read)"
                ),
            )
            .with(
                "hint",
                format!("if this folder is `{owner}`'s, add `client = \"{owner}\"` at the top of sync.toml"),
            )),
            None => Ok(()),
        }
    }

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
    async fn run_all(
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

    async fn run_stream(
        &self,
        task: StreamTask,
        opts: &RunOptions,
        references: Option<References>,
        refusal: Option<Error>,
    ) -> StreamReport {
        let clock = Instant::now();
        self.observer.stream_started(&task.read.stream);
        let mut rep = StreamReport {
            stream: task.read.stream.clone(),
            destination: task.write.stream.clone(),
            read_mode: task.read.mode,
            write_mode: task.write.mode,
            status: Status::Succeeded,
            rows_read: 0,
            rows_committed: 0,
            rows_rejected: 0,
            rows_filtered: 0,
            rows_uncommitted: 0,
            rows_expected: None,
            rows_total: None,
            complete: None,
            failed_sample: None,
            exchanges: Vec::new(),
            failure_context: None,
            bytes: 0,
            duration_secs: 0.0,
            rows_per_sec: 0.0,
            state_before: task.read.state.clone(),
            state_after: task.read.state.clone(),
            schema_fingerprint: schema_fingerprint(&task.write.schema),
            outputs: Vec::new(),
            rows_digest: String::new(),
            checks: Vec::new(),
            error: None,
        };
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
    fn resume_point(&self, task: &StreamTask) -> String {
        if task.read.mode != ReadMode::Incremental {
            return "full refresh, nothing is committed: a rerun starts from the beginning".into();
        }
        match self.state.get(&task.read.stream) {
            Some(state) => format!("last committed: {state}"),
            None => "nothing committed yet: a rerun starts from the beginning".into(),
        }
    }

    async fn stream_inner(
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
        match self
            .pump(task, opts, writer.as_mut(), rep, &mut validator)
            .await
        {
            Ok(_) if opts.limit.is_some() => {
                // a trial: everything went through the destination; now take it all back
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
                let summary = writer.close().await?;
                committed(rep);
                rep.outputs = summary.outputs;
                // only values that were really written may satisfy other streams' checks
                validator.publish();
                if let Some(state) = pending {
                    self.commit(task, state)?;
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

    fn commit(&self, task: &StreamTask, state: serde_json::Value) -> Result<()> {
        if task.read.mode != ReadMode::Incremental {
            return Ok(());
        }
        let run_id = &task.write.run_id;
        self.state.commit(&task.read.stream, state, run_id)?;
        tracing::debug!(stream = %task.read.stream, "state committed");
        Ok(())
    }

    /// Moves messages from the source to the writer; returns the checkpoint still to
    /// commit once the writer is closed.
    async fn pump(
        &self,
        task: &StreamTask,
        opts: &RunOptions,
        writer: &mut dyn StreamWriter,
        rep: &mut StreamReport,
        validator: &mut Validator,
    ) -> Result<Option<serde_json::Value>> {
        let mut messages = self.source.read(task.read.clone()).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(self.settings.channel_capacity.max(1));
        // batches are transformed ahead, on blocking threads, while the pump checks and
        // writes earlier ones; not with --limit, where the rows to transform depend on the
        // rows counted before
        let ahead = (!task.transforms.is_empty() && opts.limit.is_none())
            .then(|| (task.source_schema.clone(), task.transforms.clone()));
        let producer = tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let last = m.is_err();
                let staged = match (m, &ahead) {
                    (Ok(Message::Batch(batch)), Some((schema, steps))) => {
                        let (schema, steps) = (schema.clone(), steps.clone());
                        Staged::Batch(tokio::task::spawn_blocking(move || {
                            prepare(&schema, &steps, batch)
                        }))
                    }
                    (m, _) => Staged::Message(m),
                };
                if tx.send(staged).await.is_err() || last {
                    break;
                }
            }
        });
        let _stop_producer = AbortOnDrop(producer);
        let schema = task.write.schema.clone();
        let source_schema = task.source_schema.clone();
        let interval = Duration::from_secs_f64(self.settings.commit_interval_secs.max(0.0));
        let mut last_commit = Instant::now();
        let mut pending: Option<serde_json::Value> = None;
        // the receipt's row digest is summed on other threads, overlapping the transforms,
        // checks and writes (it costs more per row than most of them)
        let mut digest = ferry_formats::digest::BackgroundDigest::start(
            digest_workers(),
            self.settings.channel_capacity.max(1),
        );

        let stream = task.read.stream.as_str();
        let quarantine = |rep: &mut StreamReport, rec: QuarantineRecord| -> Result<()> {
            rep.rows_rejected += 1;
            self.quarantine.put(&rec)
        };
        let limit = opts.limit;
        let mut exchanges = ferry_core::exchange::Recorder::new(&task.protected);
        // where the rows of the next batch were read (file sources say, before each batch)
        let mut positions: Option<Box<RowPositions>> = None;
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
                    digest.add(batch.clone()).await?;
                    let n = batch.num_rows() as u64;
                    let bytes = batch_bytes(&batch);
                    if n > 0 {
                        if let Err(e) = writer.write(batch).await {
                            keep_sample(rep, "write");
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
                    if limit.is_some_and(|l| rep.rows_read >= l) {
                        break;
                    }
                }
                Message::Checkpoint(state) => {
                    pending = Some(state);
                    // with --require-complete nothing is committed before the end
                    if limit.is_none() && !opts.require_complete && last_commit.elapsed() >= interval {
                        self.quarantine.flush_async(stream).await?;
                        if writer.flush().await? == Durability::Durable {
                            committed(rep);
                            if let Some(s) = pending.take() {
                                self.commit(task, s)?;
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
                    let mut e = Error::data(format!("malformed record: {}", r.message));
                    if let Some(f) = &r.position.file {
                        e = e.with("file", f);
                    }
                    if let Some(l) = r.position.line {
                        e = e.with("line", l);
                    }
                    if let Some(c) = r.position.column {
                        e = e.with("column", c);
                    }
                    if let Some(k) = &r.position.key {
                        e = e.with("at", k);
                    }
                    return Err(e.with("hint", "set `on_bad_record = \"quarantine\"` on the stream to keep going"));
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

/// Where row `index` of a batch as read is: its number in the stream (`row N`, counting
/// rejected records too) and, when the source said, its file and line.
fn row_position(at: Option<&RowPositions>, first_row: u64, index: usize) -> Position {
    let key = Some(format!("row {}", first_row + index as u64 + 1));
    at.and_then(|p| p.at(index, key.clone()))
        .unwrap_or(Position {
            key,
            ..Default::default()
        })
}

/// `e` about stream row `row` at `p`: its `row` (a place in a batch, or none) replaced by
/// the row's number in the stream, with the file and line it was read from.
fn locate(e: Error, row: u64, p: &Position) -> Error {
    let mut out = if e.context_value("row").is_some() {
        let mut fresh = Error::new(e.kind(), e.message());
        for (k, v) in e.context().iter().filter(|(k, _)| *k != "row") {
            fresh = fresh.with(k, v);
        }
        fresh
    } else {
        e
    };
    if let Some(f) = &p.file {
        out = out.with("file", f);
    }
    if let Some(l) = p.line {
        out = out.with("line", l);
    }
    out.with("row", row)
}

/// The rows handed to the writer are durable now (a durable flush, or the writer closed).
/// While a stream runs, `rows_uncommitted` counts the rows the writer holds.
fn committed(rep: &mut StreamReport) {
    rep.rows_committed += rep.rows_uncommitted;
    rep.rows_uncommitted = 0;
}

/// Counts a record quarantined before the checks (malformed: `parse`; or a transform
/// could not convert it) in the stream's report, beside the checks, with up to three
/// examples (where, and why: never the record itself).
fn tally(rep: &mut StreamReport, what: &str, position: &ferry_core::source::Position, why: &str) {
    let i = match rep.checks.iter().position(|c| c.check == what) {
        Some(i) => i,
        None => {
            rep.checks.push(crate::validate::CheckReport {
                check: what.to_string(),
                severity: crate::validate::Severity::Error,
                failed: 0,
                examples: Vec::new(),
                note: None,
            });
            rep.checks.len() - 1
        }
    };
    let c = &mut rep.checks[i];
    c.failed += 1;
    if c.examples.len() < 3 {
        c.examples.push(format!(
            "{}: {}",
            position.short(),
            ferry_core::values::preview_n(why, 100)
        ));
    }
}

/// A malformed record of a stream that protects columns, without its raw text and the
/// source's message: either can hold a protected column's clear value (the record could not
/// be split into columns, so that value cannot be cut out). Its position stays, to find the
/// record in the source.
fn withhold_if_protected(
    mut r: ferry_core::source::Rejected,
    protected: &[String],
) -> ferry_core::source::Rejected {
    if protected.is_empty() {
        return r;
    }
    r.raw = String::new();
    r.message = format!(
        "the record could not be read (its text and the reason are withheld: this stream protects {})",
        protected.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    );
    r
}

/// What the pump receives from the source's task.
enum Staged {
    /// A message as the source sent it (a batch to conform and transform in the pump).
    Message(Result<Message>),
    /// A batch being conformed and transformed on a blocking thread.
    Batch(tokio::task::JoinHandle<Result<Prepared>>),
}

/// A batch conformed to the stream's schema, and what its transforms made of it.
struct Prepared {
    /// The batch as read (with the stream's schema).
    raw: RecordBatch,
    /// [`transform::apply_all_tracked`] of it.
    transformed: Result<transform::Transformed>,
}

/// Conforms `batch` to `schema` and applies `steps` (the pump's first steps, done ahead).
fn prepare(
    schema: &arrow_schema::SchemaRef,
    steps: &[Arc<dyn Transform>],
    batch: RecordBatch,
) -> Result<Prepared> {
    let raw = conform(schema, batch)?;
    let transformed = transform::apply_all_tracked(steps, raw.clone());
    Ok(Prepared { raw, transformed })
}

/// Threads that sum a stream's row digest: two when the machine has two cores or more, so
/// hashing can use a core the source and the writer leave idle.
fn digest_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// The first [`SAMPLE_ROWS`] rows of `batch` as JSON, `protected` columns set to null.
fn sample(
    stage: &'static str,
    batch: &RecordBatch,
    protected: &[String],
) -> crate::report::FailedSample {
    let masked: Vec<String> = protected
        .iter()
        .filter(|c| batch.schema().field_with_name(c).is_ok())
        .cloned()
        .collect();
    let rows = (0..batch.num_rows().min(SAMPLE_ROWS))
        .map(|r| {
            let mut row = crate::rows::row_json(batch, r);
            if let Some(m) = row.as_object_mut() {
                for c in &masked {
                    m.insert(c.clone(), serde_json::Value::Null);
                }
            }
            row
        })
        .collect();
    crate::report::FailedSample {
        stage,
        schema: batch.schema(),
        rows,
        masked,
    }
}

/// Records whether the stream read every row its source reported; fails on a mismatch
/// when the run requires completeness.
fn check_complete(rep: &mut StreamReport, limit: Option<u64>, required: bool) -> Result<()> {
    if limit.is_some() {
        return Ok(());
    }
    if let Some(total) = rep.rows_total {
        let complete = rep.rows_read == total;
        rep.complete = Some(complete);
        if !complete && required {
            return Err(Error::data(format!(
                "incomplete: the source reported {total} rows but {} were read; nothing of this stream's state was committed (--require-complete)",
                rep.rows_read
            )));
        }
    } else if required {
        tracing::warn!(
            "the source reports no total for this stream: completeness cannot be checked"
        );
    }
    Ok(())
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

/// Fails when the share of rejected rows passed the stream's `max_bad_ratio` (or
/// [`DEFAULT_MAX_BAD_RATIO`]).
fn check_ratio(task: &StreamTask, rep: &StreamReport) -> Result<()> {
    let max = task.max_bad_ratio.unwrap_or(DEFAULT_MAX_BAD_RATIO);
    if rep.rows_read > 0 && rep.rows_rejected as f64 / rep.rows_read as f64 > max {
        let which = if task.max_bad_ratio.is_some() {
            format!("max_bad_ratio {max}")
        } else {
            format!("the default max_bad_ratio {max}")
        };
        return Err(Error::data(format!(
            "{} of {} rows rejected, more than {which}; see the quarantine file",
            rep.rows_rejected, rep.rows_read
        ))
        .with(
            "hint",
            "fix the source, or set `max_bad_ratio` on the stream (1 accepts any share)",
        ));
    }
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks a batch has the stream's columns and types, and gives it the stream's schema
/// (with its key metadata). Errors name the column.
pub fn conform(schema: &arrow_schema::SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let got = batch.schema();
    if got.fields().len() != schema.fields().len() {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "source sent {} columns, the stream's schema has {}",
                got.fields().len(),
                schema.fields().len()
            ),
        ));
    }
    for (g, w) in got.fields().iter().zip(schema.fields()) {
        if g.name() != w.name() || g.data_type() != w.data_type() {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "source sent column `{}` {}, the stream's schema has `{}` {}",
                    g.name(),
                    g.data_type(),
                    w.name(),
                    w.data_type()
                ),
            ));
        }
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!("batch does not fit the stream's schema: {e}"),
        )
    })
}

/// Bytes held by a batch's values (not counting spare capacity).
pub fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

/// A new run id: UTC time plus random bits, sortable and unique enough for file names.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!(
        "{}-{:06x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        h.finish() & 0xff_ffff
    )
}
