//! `--require-complete`: whether a stream read every row its source reported.

use crate::report::StreamReport;
use ferry_core::{Error, Result};

/// Records whether the stream read every row its source reported; fails on a mismatch
/// when the run requires completeness.
pub(super) fn check_complete(
    rep: &mut StreamReport,
    limit: Option<u64>,
    required: bool,
) -> Result<()> {
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
