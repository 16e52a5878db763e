//! What the command line says about one run.

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
    /// ([`Message::Total`](ferry_core::source::Message::Total)), before its state is committed. Checkpoints are then held
    /// to the end of the stream.
    pub require_complete: bool,
}
