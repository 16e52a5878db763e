//! Rejected rows: counted in the report, withheld where they could show a protected
//! value, and too many of them fail the stream (`max_bad_ratio`).

use super::StreamTask;
use crate::config::DEFAULT_MAX_BAD_RATIO;
use crate::report::StreamReport;
use crate::validate::{CheckReport, Severity};
use ferry_core::source::{Position, Rejected};
use ferry_core::{Error, Result};

/// Counts a record quarantined before the checks (malformed: `parse`; or a transform
/// could not convert it) in the stream's report, beside the checks, with up to three
/// examples (where, and why: never the record itself).
pub(super) fn tally(rep: &mut StreamReport, what: &str, position: &Position, why: &str) {
    let i = match rep.checks.iter().position(|c| c.check == what) {
        Some(i) => i,
        None => {
            rep.checks.push(CheckReport {
                check: what.to_string(),
                severity: Severity::Error,
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
pub(super) fn withhold_if_protected(mut r: Rejected, protected: &[String]) -> Rejected {
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

/// The error a malformed record stops its stream with (`on_bad_record = "fail"`): the
/// source's reason, and where the record is.
pub(super) fn malformed(r: &Rejected) -> Error {
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
    e.with(
        "hint",
        "set `on_bad_record = \"quarantine\"` on the stream to keep going",
    )
}

/// Fails when the share of rejected rows passed the stream's `max_bad_ratio` (or
/// [`DEFAULT_MAX_BAD_RATIO`]).
pub(super) fn check_ratio(task: &StreamTask, rep: &StreamReport) -> Result<()> {
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
