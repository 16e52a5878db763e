//! The personal-data guard: before a stream's first rows reach the destination, the
//! columns it would deliver (after its transforms) are tested with the profile's
//! detectors ([`crate::profile::detect`]) on a bounded sample, the first [`SAMPLE_ROWS`]
//! rows. A flagged column is `protected` (a `hash`, `encrypt`, `mask` or `drop` step
//! covers it), `allowed` (the stream's `allow_personal`, with a reason) or `unprotected`;
//! `[run] personal_data = "refuse"` stops the stream on an unprotected one before a row
//! is written, `warn` (default) lets it through with a warning. Heuristics on a sample:
//! the guard can miss a column, it is no proof of absence (SECURITY.md).

use std::sync::Arc;

use arrow_array::RecordBatch;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::profile::stats::ColumnStats;
use crate::profile::suggest::hash_line;
use crate::transform::{hidden_before, Transform};
use ferry_core::{Error, Result};

/// Rows of each stream the guard tests: the first ones of the run.
pub const SAMPLE_ROWS: u64 = 1_000;

/// `[run] personal_data`: what an unprotected, unallowed personal-data column does.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// One warning per column in the sync output and the report; the run goes on.
    #[default]
    Warn,
    /// The stream stops before a row is written; nothing is committed.
    Refuse,
}

/// One `allow_personal` entry: a delivered column that may hold personal data as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// The column, as delivered (after renames).
    pub column: String,
    /// Why it may go unprotected (required, recorded in the receipt).
    pub reason: String,
}

/// How a flagged column leaves the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A `hash`, `encrypt`, `mask` or `drop` step covers it.
    Protected,
    /// The stream's `allow_personal` lets it through, with a reason.
    Allowed,
    /// Delivered as it is.
    Unprotected,
}

/// A column that appears to hold personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// The column: as delivered, or for a protected one as read.
    pub column: String,
    /// What it appears to hold (`iban`, `email` …, as `ferry profile` names it).
    pub kind: String,
    /// Sampled values that passed the kind's test.
    pub matched: u64,
    /// Sampled non-null values.
    pub of: u64,
    /// The sentence: "970 of 1,000 sampled values (97 %) pass the IBAN checksum (mod 97)".
    pub evidence: String,
    /// Protected, allowed or unprotected.
    pub status: Status,
}

/// What the guard found in one stream (the report's and the receipt's `personal_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The run's policy.
    pub policy: Policy,
    /// Rows tested.
    pub sampled_rows: u64,
    /// The flagged columns.
    pub columns: Vec<Flag>,
    /// The stream's `allow_personal` entries, with their reasons.
    pub allowances: Vec<Allowance>,
}

impl Record {
    /// The flagged columns delivered as they are, neither protected nor allowed.
    pub fn unprotected(&self) -> impl Iterator<Item = &Flag> {
        self.columns
            .iter()
            .filter(|f| f.status == Status::Unprotected)
    }
}

/// Tests one stream's first rows, batch by batch, until it has [`SAMPLE_ROWS`].
pub struct Guard {
    policy: Policy,
    allow: Vec<Allowance>,
    today: NaiveDate,
    /// source columns a step protects (tested as read)
    hidden: Vec<String>,
    /// delivered columns a protecting step produced (not tested as delivered)
    covered: Vec<String>,
    read: Vec<ColumnStats>,
    delivered: Vec<ColumnStats>,
    rows: u64,
    rows_read: u64,
}

impl Guard {
    /// A guard for a stream with these transforms and allowances.
    pub fn new(policy: Policy, steps: &[Arc<dyn Transform>], allow: &[Allowance]) -> Guard {
        Guard {
            policy,
            allow: allow.to_vec(),
            today: chrono::Utc::now().date_naive(),
            hidden: hidden_before(steps),
            covered: covered_after(steps),
            read: Vec::new(),
            delivered: Vec::new(),
            rows: 0,
            rows_read: 0,
        }
    }

    /// Whether the sample is complete (the guard can decide).
    pub fn full(&self) -> bool {
        self.rows >= SAMPLE_ROWS
    }

    /// Tests the first rows of a batch: `read` as the source gave it, `delivered` after the
    /// transforms.
    pub fn observe(&mut self, read: &RecordBatch, delivered: &RecordBatch) {
        let take = (SAMPLE_ROWS - self.rows.min(SAMPLE_ROWS)).min(delivered.num_rows() as u64);
        add(
            &mut self.delivered,
            delivered,
            take as usize,
            self.today,
            |c| !self.covered.iter().any(|h| h == c),
        );
        self.rows += take;
        let take = (SAMPLE_ROWS - self.rows_read.min(SAMPLE_ROWS)).min(read.num_rows() as u64);
        add(&mut self.read, read, take as usize, self.today, |c| {
            self.hidden.iter().any(|h| h == c)
        });
        self.rows_read += take;
    }

    /// What the sample shows; `complete`: the stream ended within it (its evidence then
    /// says "values", not "sampled values"). Under `refuse`, an unprotected column is an
    /// error naming the stream, each column, its evidence and the two fixes.
    pub fn decide(&self, stream: &str, complete: bool) -> (Record, Result<()>) {
        let sampled = !complete;
        let mut columns = Vec::new();
        for (stats, protected) in [(&self.read, true), (&self.delivered, false)] {
            for c in stats {
                let profile = c.finish(sampled);
                let Some(f) = profile.findings.first() else {
                    continue;
                };
                let status = if protected {
                    Status::Protected
                } else if self.allow.iter().any(|a| a.column == profile.name) {
                    Status::Allowed
                } else {
                    Status::Unprotected
                };
                columns.push(Flag {
                    column: profile.name.clone(),
                    kind: f.kind.name().to_string(),
                    matched: f.matched,
                    of: f.of,
                    evidence: f.evidence.clone(),
                    status,
                });
            }
        }
        let record = Record {
            policy: self.policy,
            sampled_rows: self.rows,
            columns,
            allowances: self.allow.clone(),
        };
        let refused: Vec<String> = record.unprotected().map(refusal).collect();
        let outcome = if self.policy == Policy::Refuse && !refused.is_empty() {
            Err(Error::config(format!(
                "stream `{stream}` would deliver personal data unprotected, which [run] personal_data = \"refuse\" forbids; \
                 nothing was written: {}",
                refused.join("; ")
            ))
            .with("stream", stream))
        } else {
            Ok(())
        };
        (record, outcome)
    }
}

/// One refused column: what it holds, why, and the two fixes.
fn refusal(f: &Flag) -> String {
    format!(
        "column `{c}` appears to hold {k} ({e}): protect it with `{h}` in the stream's transforms \
         (`ferry keys generate hash` makes the key), or allow it as it is with \
         `allow_personal = [{{ column = \"{c}\", reason = \"<why it may go unprotected>\" }}]` on the stream",
        c = f.column,
        k = f.kind,
        e = f.evidence,
        h = hash_line(&f.column),
    )
}

/// One warning line per unprotected column (`warn`), for the sync output.
pub fn warnings(stream: &str, record: &Record) -> Vec<String> {
    record
        .unprotected()
        .map(|f| {
            format!(
                "warning: stream `{stream}`, column `{}` appears to hold {} ({}) and was delivered unprotected; \
                 hash it (`{}`) or list it in the stream's allow_personal with a reason",
                f.column,
                f.kind,
                f.evidence,
                hash_line(&f.column)
            )
        })
        .collect()
}

/// Adds the first `take` rows of the columns of `batch` that `wanted` names.
fn add(
    stats: &mut Vec<ColumnStats>,
    batch: &RecordBatch,
    take: usize,
    today: NaiveDate,
    wanted: impl Fn(&str) -> bool,
) {
    if take == 0 {
        return;
    }
    let schema = batch.schema();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        if !wanted(field.name()) {
            continue;
        }
        let i = match stats.iter().position(|c| c.name() == field.name()) {
            Some(i) => i,
            None => {
                stats.push(ColumnStats::new(field, today));
                stats.len() - 1
            }
        };
        stats[i].add(&array.slice(0, take));
    }
}

/// The delivered names of the columns a protecting step produced (through later renames).
fn covered_after(steps: &[Arc<dyn Transform>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in steps {
        if let Some((from, to)) = s.renames() {
            for n in names.iter_mut().filter(|n| **n == from) {
                n.clone_from(&to);
            }
        }
        names.extend(s.hides());
    }
    names
}
