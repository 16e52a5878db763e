//! What the runtime tells a stream's checks about the run around it.

use super::References;

/// What the runtime tells a stream's checks about the run around it.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The stream's source name (as in `[[streams]]`), which other streams' `referential`
    /// checks use.
    pub stream: String,
    /// Values shared between the streams of the run ([`References::plan`]); `None`: this
    /// stream's `referential` checks cannot run and fail it with a config error.
    pub references: Option<References>,
    /// The stream's row count in its last successful run, for `row_count`'s `max_change`
    /// ([`Validator::rows`](super::Validator::rows) gives this run's).
    pub previous_rows: Option<u64>,
    /// The destination's row count after the stream's last successful run, for
    /// `row_count`'s `max_change` with `of = "destination"`.
    pub previous_destination_rows: Option<u64>,
    /// The stream is read incrementally: `row_count` then counts the destination's rows
    /// unless it says `of = "run"`.
    pub incremental: bool,
}
