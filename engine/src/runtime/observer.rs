//! What a run tells whoever draws its progress.

use crate::report::StreamReport;

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
