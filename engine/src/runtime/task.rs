//! One stream of a run, fully resolved by [`Runtime::plan`](super::Runtime::plan).

use std::sync::Arc;

use crate::config::BadRecordPolicy;
use crate::schema_change::Decision;
use crate::transform::Transform;
use crate::validate::CheckConfig;
use ferry_core::catalog::StreamInfo;
use ferry_core::sink::WriteRequest;
use ferry_core::source::ReadRequest;
use ferry_core::Result;

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
    /// Whether the read yields the source's changes (change data capture,
    /// [`ferry_core::Source::reads_changes`]): deleted keys come from the source, and no
    /// "missing" row is deleted after it.
    pub changes: bool,
    /// Delivered columns that may hold personal data as they are (`allow_personal`).
    pub allow_personal: Vec<crate::personal_data::Allowance>,
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
