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
//!
//! Where each part is: `plan` resolves the streams and `reconcile` applies the schema
//! decisions to them; `sync` runs a whole sync (after the tenant check of `owner`); `run`
//! runs streams in waves, `concurrency` at a time, and `stream` keeps one stream's report;
//! `deliver` takes a stream's writer from its opening to its close, `pump` (fed by `ahead`)
//! moves its messages, `commit` commits its checkpoints; `bad_rows`, `position`, `sample`
//! and `complete` say what went wrong with which rows.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::RunSettings;
use crate::quarantine::Quarantine;
use crate::state::StateStore;
use ferry_core::sink::Sink;
use ferry_core::source::Source;

mod ahead;
mod bad_rows;
mod batch;
mod commit;
mod complete;
mod deliver;
mod guard_sample;
mod keys;
mod observer;
mod options;
mod owner;
mod plan;
mod position;
mod pump;
mod reconcile;
mod run;
mod run_id;
mod sample;
mod stream;
mod sync;
mod task;

pub use crate::config::DEFAULT_MAX_BAD_RATIO;
pub use crate::report::SAMPLE_ROWS;
pub use batch::{batch_bytes, conform};
pub use observer::{Observer, Silent};
pub use options::RunOptions;
pub use reconcile::reconcile;
pub use run_id::new_run_id;
pub use task::StreamTask;

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
}
