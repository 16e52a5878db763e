//! What a run says about each check.

use serde::Serialize;

use super::Severity;

/// Figures of one check over a run, for the report and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The check (`not_null(email)`).
    pub check: String,
    /// Its severity.
    pub severity: Severity,
    /// Rows that failed it.
    pub failed: u64,
    /// Up to three failing values (as delivered: protected fields are already protected).
    pub examples: Vec<String>,
    /// Something to know about the verdict (`max_change` with no previous run to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
