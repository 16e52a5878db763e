//! The run report: what each stream read, wrote and how fast, as JSON and as text.

use serde::{Deserialize, Serialize};

pub use crate::group::group;
use crate::personal_data::Policy;
use ferry_core::sink::Output;

/// How a stream or run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything was written and state committed.
    Succeeded,
    /// It failed; state holds the last committed checkpoint.
    Failed,
    /// Stopped by Ctrl-C; state holds the last committed checkpoint.
    Cancelled,
}

/// One stream's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Source stream name.
    pub stream: String,
    /// Destination name.
    pub destination: String,
    /// `full_refresh` or `incremental`.
    pub read_mode: ferry_core::ReadMode,
    /// `append`, `overwrite` or `upsert`.
    pub write_mode: ferry_core::WriteMode,
    /// How it ended.
    pub status: Status,
    /// Rows the source yielded (good and rejected).
    pub rows_read: u64,
    /// Rows durable at the destination: covered by a flush the sink called durable, or by
    /// the writer's successful close. Rows handed to a writer that then failed or was
    /// cancelled are not committed (its `abort` discards them).
    pub rows_committed: u64,
    /// Rows rejected (malformed, failed validation); they are in the quarantine.
    pub rows_rejected: u64,
    /// Rows a `filter` transform removed on purpose.
    pub rows_filtered: u64,
    /// Rows read but neither committed, rejected nor filtered: the rows of a stream that
    /// stopped early (failed check, source or sink error, Ctrl-C). Always
    /// `rows_read = rows_committed + rows_rejected + rows_filtered + rows_uncommitted`.
    pub rows_uncommitted: u64,
    /// Destination rows whose key the source no longer holds, deleted or marked
    /// (`deletes`) by this run; `None` for a stream without `deletes`. Not part of
    /// `rows_read`'s sum: they were never read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_deleted: Option<u64>,
    /// `mode = "history"`: current versions this run closed because their row changed
    /// (the versions it inserted are its output's `rows`; those closed because the key
    /// left the source, `rows_deleted`). `None` for other modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions_closed: Option<u64>,
    /// Why a stream with `deletes` deleted nothing this run (a trial, rows filtered or
    /// rejected, an incomplete read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes_skipped: Option<String>,
    /// Rows the source said it would yield, when it could tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_expected: Option<u64>,
    /// The true total the source reported ([`ferry_core::Message::Total`]), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_total: Option<u64>,
    /// Whether every row the source reported was read (`rows_read == rows_total`);
    /// `None` when the source reports no total or the run was a `--limit` trial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// When the stream failed on a batch: its first rows as they were at the failing step,
    /// for a debug bundle. Never serialized into reports.
    #[serde(skip)]
    pub failed_sample: Option<FailedSample>,
    /// When the stream failed: the last requests its source made and their answers
    /// ([`ferry_core::exchange`]), for a debug bundle. Never serialized into reports.
    #[serde(skip)]
    pub exchanges: Vec<ferry_core::exchange::Exchange>,
    /// When the stream failed: its catalog entry (`ferry discover --json`'s form) and the
    /// error's causes, outermost first (redacted), for a debug bundle. Never serialized.
    #[serde(skip)]
    pub failure_context: Option<(serde_json::Value, Vec<String>)>,
    /// In-memory size of the rows moved, in bytes.
    pub bytes: u64,
    /// Wall time, seconds.
    pub duration_secs: f64,
    /// rows_read / duration.
    pub rows_per_sec: f64,
    /// Committed state before the run.
    pub state_before: Option<serde_json::Value>,
    /// Committed state after the run.
    pub state_after: Option<serde_json::Value>,
    /// Fingerprint of the schema written.
    pub schema_fingerprint: String,
    /// Files, objects or tables written.
    pub outputs: Vec<Output>,
    /// Order-independent digest of the rows written by this run (see [`ferry_formats::digest`]).
    pub rows_digest: String,
    /// Per validation check: how many rows failed it, with examples.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::validate::CheckReport>,
    /// What the source did with the files it read once their rows and state were
    /// committed (`after_read`: archived, deleted), and what it could not do: a warning,
    /// the run still succeeded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<ferry_core::Settled>,
    /// What the personal-data guard found in the stream's first rows (`None`: the stream
    /// failed before the guard had tested them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<crate::personal_data::Record>,
    /// The error, if it failed (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StreamReport {
    /// The report of a stream before it ran: nothing read, succeeded so far.
    pub fn new(
        stream: &str,
        destination: &str,
        read_mode: ferry_core::ReadMode,
        write_mode: ferry_core::WriteMode,
    ) -> Self {
        StreamReport {
            stream: stream.to_string(),
            destination: destination.to_string(),
            read_mode,
            write_mode,
            status: Status::Succeeded,
            rows_read: 0,
            rows_committed: 0,
            rows_rejected: 0,
            rows_filtered: 0,
            rows_uncommitted: 0,
            rows_deleted: None,
            versions_closed: None,
            deletes_skipped: None,
            rows_expected: None,
            rows_total: None,
            complete: None,
            failed_sample: None,
            exchanges: Vec::new(),
            failure_context: None,
            bytes: 0,
            duration_secs: 0.0,
            rows_per_sec: 0.0,
            state_before: None,
            state_after: None,
            schema_fingerprint: String::new(),
            outputs: Vec::new(),
            rows_digest: String::new(),
            checks: Vec::new(),
            settled: Vec::new(),
            personal_data: None,
            error: None,
        }
    }
}

/// Rows kept from a failing batch for a debug bundle.
pub const SAMPLE_ROWS: usize = 20;

/// The first rows of the batch a stream failed on, as they were at the failing step.
#[derive(Debug, Clone)]
pub struct FailedSample {
    /// `transform` (rows as read, before the transforms), `check` or `write` (rows after
    /// the transforms).
    pub stage: &'static str,
    /// The rows' schema.
    pub schema: arrow_schema::SchemaRef,
    /// Up to [`SAMPLE_ROWS`] rows as JSON objects. Columns a `hash`,
    /// `encrypt` or `mask` transform protects are `null` in rows taken before the transforms.
    pub rows: Vec<serde_json::Value>,
    /// The columns so masked.
    pub masked: Vec<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Unique id of this run.
    pub run_id: String,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time, seconds.
    pub duration_secs: f64,
    /// Source connector type.
    pub source: String,
    /// Destination connector type.
    pub destination: String,
    /// Failed if any stream failed, cancelled if stopped.
    pub status: Status,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// How many times the leak guard had to scrub a secret from output.
    pub redactions: u64,
    /// A `--dry-run`: nothing was written, the counts say what would have been.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// A `--limit` trial: what it wrote went through the destination and was rolled
    /// back; its rows are `rows_uncommitted`, none are committed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trial: bool,
}

impl RunReport {
    /// Rows read over all streams.
    pub fn rows_read(&self) -> u64 {
        self.streams.iter().map(|s| s.rows_read).sum()
    }

    /// Rows committed (durable at the destination) over all streams.
    pub fn rows_committed(&self) -> u64 {
        self.streams.iter().map(|s| s.rows_committed).sum()
    }

    /// Rows read but not committed, rejected or filtered, over all streams.
    pub fn rows_uncommitted(&self) -> u64 {
        self.streams.iter().map(|s| s.rows_uncommitted).sum()
    }

    /// The report as pretty JSON, passed through the leak guard.
    pub fn to_json(&self) -> String {
        ferry_core::redact::redact(&serde_json::to_string_pretty(self).expect("report serializes"))
    }

    /// A human summary: one line per stream and a total. A dry run says what *would* be
    /// written and quarantined: it wrote nothing.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let w = self
            .streams
            .iter()
            .map(|s| s.stream.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let (written, rejected) = if self.dry_run {
            ("would write", "would reject")
        } else if self.trial {
            ("kept", "rejected")
        } else {
            ("committed", "rejected")
        };
        let uncommitted = self.rows_uncommitted() > 0;
        let rolled_back = if self.trial {
            "rolled back"
        } else {
            "uncommitted"
        };
        out.push_str(&format!(
            "{:<w$}  {:>12}  {:>12}  {:>12}  {:>9}",
            "stream", "rows read", written, rejected, "filtered"
        ));
        if uncommitted {
            out.push_str(&format!("  {:>12}", rolled_back));
        }
        out.push_str(&format!("  {:>10}  {:>8}  status\n", "rows/s", "time"));
        for s in &self.streams {
            out.push_str(&format!(
                "{:<w$}  {:>12}  {:>12}  {:>12}  {:>9}",
                s.stream,
                group(s.rows_read),
                group(s.rows_committed),
                group(s.rows_rejected),
                group(s.rows_filtered),
            ));
            if uncommitted {
                out.push_str(&format!("  {:>12}", group(s.rows_uncommitted)));
            }
            out.push_str(&format!(
                "  {:>10}  {:>7.2}s  {}\n",
                group(s.rows_per_sec as u64),
                s.duration_secs,
                match s.status {
                    Status::Succeeded => "ok".to_string(),
                    Status::Cancelled => "cancelled".to_string(),
                    Status::Failed => format!("FAILED: {}", s.error.as_deref().unwrap_or("")),
                }
            ));
        }
        for s in &self.streams {
            // under `refuse` an unprotected column failed the stream (its error says so)
            if let Some(pd) = s
                .personal_data
                .as_ref()
                .filter(|p| p.policy == Policy::Warn)
            {
                for w in crate::personal_data::warnings(&s.stream, pd) {
                    out.push_str(&format!("  {w}\n"));
                }
            }
            let mut failing: Vec<_> = s.checks.iter().filter(|c| c.failed > 0).collect();
            failing.sort_by_key(|c| std::cmp::Reverse(c.failed));
            for c in failing.iter().take(5) {
                out.push_str(&format!(
                    "  {}: check {} (severity {}) failed for {} row{}, e.g. {}\n",
                    s.stream,
                    c.check,
                    c.severity,
                    group(c.failed),
                    if c.failed == 1 { "" } else { "s" },
                    c.examples.join("; ")
                ));
            }
            if let (Some(false), Some(total)) = (s.complete, s.rows_total) {
                out.push_str(&format!(
                    "  {}: INCOMPLETE: the source reported {} rows, {} were read\n",
                    s.stream,
                    group(total),
                    group(s.rows_read)
                ));
            }
            for c in s.checks.iter().filter(|c| c.note.is_some()) {
                out.push_str(&format!(
                    "  {}: check {}: {}\n",
                    s.stream,
                    c.check,
                    c.note.as_deref().unwrap_or_default()
                ));
            }
            if s.rows_rejected > 0 {
                out.push_str(&if self.dry_run {
                    format!(
                        "  {}: would quarantine {} rows\n",
                        s.stream,
                        group(s.rows_rejected)
                    )
                } else {
                    format!(
                        "  {}: {} rows quarantined\n",
                        s.stream,
                        group(s.rows_rejected)
                    )
                });
            }
            if let Some(closed) = s.versions_closed {
                let added: u64 = s.outputs.iter().map(|o| o.rows).sum();
                out.push_str(&format!(
                    "  {}: history: {} versions added, {} closed by a change\n",
                    s.stream,
                    group(added),
                    group(closed)
                ));
            }
            match (s.rows_deleted, s.write_mode) {
                (Some(n), ferry_core::WriteMode::History) => out.push_str(&format!(
                    "  {}: {} current versions closed: the source no longer holds their key\n",
                    s.stream,
                    group(n)
                )),
                (Some(n), _) => out.push_str(&format!(
                    "  {}: {} rows the source no longer holds deleted\n",
                    s.stream,
                    group(n)
                )),
                (None, _) => {}
            }
            if let Some(why) = &s.deletes_skipped {
                out.push_str(&format!("  {}: nothing deleted: {why}\n", s.stream));
            }
            settled_lines(&mut out, s);
            if s.rows_uncommitted > 0 && self.trial {
                out.push_str(&format!(
                    "  {}: {} rows read and not kept (trial: what it wrote was rolled back)\n",
                    s.stream,
                    group(s.rows_uncommitted)
                ));
            } else if s.rows_uncommitted > 0 {
                out.push_str(&format!(
                    "  {}: {} rows read but not committed (the stream stopped before they were durable; a rerun reads them again)\n",
                    s.stream,
                    group(s.rows_uncommitted)
                ));
            }
        }
        let ending = match self.status {
            Status::Succeeded => "succeeded",
            Status::Failed => "FAILED",
            Status::Cancelled => "was cancelled",
        };
        if self.dry_run {
            out.push_str(&format!(
                "{} rows read, would write {} in {:.2}s; dry run {} {ending}\n",
                group(self.rows_read()),
                group(self.rows_committed()),
                self.duration_secs,
                self.run_id,
            ));
        } else if self.trial {
            // a trial keeps nothing: say so, not "0 committed, N uncommitted"
            let what = if self.status == Status::Succeeded {
                format!(
                    "{} written and rolled back (trial)",
                    group(self.rows_uncommitted())
                )
            } else {
                "what the trial wrote was rolled back".to_string()
            };
            out.push_str(&format!(
                "{} rows read, {what}, {} kept in {:.2}s; trial run {} {ending}\n",
                group(self.rows_read()),
                group(self.rows_committed()),
                self.duration_secs,
                self.run_id,
            ));
        } else {
            out.push_str(&format!(
                "{} rows read, {} committed{} in {:.2}s; run {} {ending}\n",
                group(self.rows_read()),
                group(self.rows_committed()),
                if uncommitted {
                    format!(", {} uncommitted", group(self.rows_uncommitted()))
                } else {
                    String::new()
                },
                self.duration_secs,
                self.run_id,
            ));
        }
        ferry_core::redact::redact(&out)
    }
}

/// Files shown by name in the summary, per stream, before "and N more".
const SETTLED_SHOWN: usize = 5;

/// What the source did with the files it read (`after_read`), and every failure, which is
/// a warning: the rows and state are committed.
fn settled_lines(out: &mut String, s: &StreamReport) {
    let (done, failed): (Vec<_>, Vec<_>) = s.settled.iter().partition(|x| x.error.is_none());
    for d in done.iter().take(SETTLED_SHOWN) {
        out.push_str(&format!("  {}: {} {}\n", s.stream, d.item, d.action));
    }
    if done.len() > SETTLED_SHOWN {
        out.push_str(&format!(
            "  {}: and {} more files {}\n",
            s.stream,
            group((done.len() - SETTLED_SHOWN) as u64),
            done[0].action.split(' ').next().unwrap_or_default()
        ));
    }
    for f in failed {
        out.push_str(&format!(
            "  {}: WARNING: {} not {}: {}\n",
            s.stream,
            f.item,
            f.action,
            f.error.as_deref().unwrap_or_default()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(100), "100");
    }

    #[test]
    fn settled_files_are_listed_and_failures_are_warnings() {
        use ferry_core::Settled;
        let mut settled: Vec<Settled> = (1..=7)
            .map(|i| {
                Settled::done(
                    format!("in/{i}.csv"),
                    format!("archived to in/done/{i}.csv"),
                )
            })
            .collect();
        settled.push(Settled::failed("in/8.csv", "deleted", "permission denied"));
        let mut s = super::StreamReport::new(
            "orders",
            "orders",
            ferry_core::ReadMode::Incremental,
            ferry_core::WriteMode::Append,
        );
        s.settled = settled;
        let mut out = String::new();
        super::settled_lines(&mut out, &s);
        assert_eq!(
            out,
            "  orders: in/1.csv archived to in/done/1.csv\n\
             \x20 orders: in/2.csv archived to in/done/2.csv\n\
             \x20 orders: in/3.csv archived to in/done/3.csv\n\
             \x20 orders: in/4.csv archived to in/done/4.csv\n\
             \x20 orders: in/5.csv archived to in/done/5.csv\n\
             \x20 orders: and 2 more files archived\n\
             \x20 orders: WARNING: in/8.csv not deleted: permission denied\n"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["settled"][7]["error"], "permission denied");
        assert!(json["settled"][0].get("error").is_none());
    }
}
