//! Validation: declarative checks per stream, with a severity each.
//!
//! Checks run on every batch after the transforms, so they see the data as it will be
//! delivered (and never the clear value of a protected field). A row failing a check of
//! severity `error` is taken out of the batch and quarantined with the check's name and
//! message; `warn` only counts it (and keeps a few examples for the summary); `fail`
//! stops the stream at once, before its state is committed. Stream-level checks
//! (`row_count`) run when the stream ends.

use std::collections::HashSet;

use arrow_array::{Array, BooleanArray, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::types::FerryType;
use crate::values::{preview, to_json, write_text};
use crate::{Error, ErrorKind, Result};

/// What happens to a row that fails a check.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Quarantine the row (default).
    #[default]
    Error,
    /// Count and report it; the row is written.
    Warn,
    /// Stop the stream before anything more is committed.
    Fail,
}

/// A check as written in `sync.toml` (`checks = [{ type = "not_null", columns = ["id"] }]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckConfig {
    /// The columns hold no NULL.
    NotNull {
        /// The columns.
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// No two rows of this run share these columns' values.
    Unique {
        /// The columns (together).
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text matches a regular expression (NULL passes).
    Regex {
        /// The column.
        column: String,
        /// The pattern (Rust regex syntax; anchor it with ^…$ for a full match).
        pattern: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// A number lies within [min, max] (NULL passes).
    Range {
        /// The column.
        column: String,
        /// Smallest allowed value.
        #[serde(default)]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default)]
        max: Option<f64>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text is one of a list (NULL passes).
    Allowed {
        /// The column.
        column: String,
        /// Allowed values, as text.
        values: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// Text is at most `max` characters (NULL passes).
    MaxLength {
        /// The column.
        column: String,
        /// Maximum length in characters.
        max: usize,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The stream yields between `min` and `max` rows (checked at the end of the stream).
    RowCount {
        /// Fewest rows expected.
        #[serde(default)]
        min: Option<u64>,
        /// Most rows expected.
        #[serde(default)]
        max: Option<u64>,
        /// fail (default for this check: an unexpected count stops the run) or warn.
        #[serde(default = "fail")]
        severity: Severity,
    },
}

fn fail() -> Severity {
    Severity::Fail
}

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
}

enum Kind {
    NotNull(Vec<usize>),
    Unique(Vec<usize>, HashSet<Vec<u8>>),
    Regex(usize, regex::Regex),
    Range(usize, Option<f64>, Option<f64>),
    Allowed(usize, HashSet<String>),
    MaxLength(usize, usize),
    RowCount(Option<u64>, Option<u64>),
}

struct Check {
    name: String,
    severity: Severity,
    kind: Kind,
    failed: u64,
    examples: Vec<String>,
}

/// A row that failed a check: its index in the batch, the check and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Row index in the batch it was found in.
    pub row: usize,
    /// The check (`regex(email)`).
    pub check: String,
    /// What was wrong.
    pub message: String,
}

/// The checks of one stream, with their running counts.
pub struct Validator {
    checks: Vec<Check>,
    rows: u64,
}

/// What validating one batch produced.
#[derive(Debug)]
pub struct Outcome {
    /// The rows to write (rows failing an `error` check removed).
    pub batch: RecordBatch,
    /// The removed rows, as JSON objects, with why.
    pub rejected: Vec<(serde_json::Value, Failure)>,
}

fn col(schema: &arrow_schema::Schema, name: &str, check: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut msg = format!("check {check}: no column `{name}`");
        if let Some(best) = crate::config::nearest(name, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        Error::config(msg)
    })
}

impl Validator {
    /// Builds the checks against the schema the stream delivers (after transforms).
    pub fn new(configs: &[CheckConfig], schema: &arrow_schema::Schema) -> Result<Validator> {
        let mut checks = Vec::new();
        for c in configs {
            let (name, severity, kind) = match c {
                CheckConfig::NotNull { columns, severity } => {
                    let n = format!("not_null({})", columns.join(", "));
                    let idx = columns
                        .iter()
                        .map(|x| col(schema, x, &n))
                        .collect::<Result<_>>()?;
                    (n, *severity, Kind::NotNull(idx))
                }
                CheckConfig::Unique { columns, severity } => {
                    let n = format!("unique({})", columns.join(", "));
                    let idx = columns
                        .iter()
                        .map(|x| col(schema, x, &n))
                        .collect::<Result<_>>()?;
                    (n, *severity, Kind::Unique(idx, HashSet::new()))
                }
                CheckConfig::Regex {
                    column,
                    pattern,
                    severity,
                } => {
                    let n = format!("regex({column})");
                    let re = regex::Regex::new(pattern)
                        .map_err(|e| Error::config(format!("check {n}: invalid pattern: {e}")))?;
                    (
                        n.clone(),
                        *severity,
                        Kind::Regex(col(schema, column, &n)?, re),
                    )
                }
                CheckConfig::Range {
                    column,
                    min,
                    max,
                    severity,
                } => {
                    let n = format!("range({column})");
                    let i = col(schema, column, &n)?;
                    let ty = FerryType::of(schema.field(i));
                    if !matches!(
                        ty,
                        Some(FerryType::Int64 | FerryType::Float64 | FerryType::Decimal { .. })
                    ) {
                        return Err(Error::config(format!(
                            "check {n}: column `{column}` is not numeric"
                        )));
                    }
                    (n, *severity, Kind::Range(i, *min, *max))
                }
                CheckConfig::Allowed {
                    column,
                    values,
                    severity,
                } => {
                    let n = format!("allowed({column})");
                    (
                        n.clone(),
                        *severity,
                        Kind::Allowed(col(schema, column, &n)?, values.iter().cloned().collect()),
                    )
                }
                CheckConfig::MaxLength {
                    column,
                    max,
                    severity,
                } => {
                    let n = format!("max_length({column})");
                    (
                        n.clone(),
                        *severity,
                        Kind::MaxLength(col(schema, column, &n)?, *max),
                    )
                }
                CheckConfig::RowCount { min, max, severity } => (
                    "row_count".to_string(),
                    *severity,
                    Kind::RowCount(*min, *max),
                ),
            };
            checks.push(Check {
                name,
                severity,
                kind,
                failed: 0,
                examples: Vec::new(),
            });
        }
        Ok(Validator { checks, rows: 0 })
    }

    /// Whether there are no checks.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Checks one batch. Errors (kind `DataInvalid`) when a `fail` check fails.
    pub fn check(&mut self, batch: RecordBatch) -> Result<Outcome> {
        let n = batch.num_rows();
        self.rows += n as u64;
        let mut first_error: Vec<Option<Failure>> = vec![None; n];
        let mut text = String::new();
        for check in &mut self.checks {
            #[allow(clippy::needless_range_loop)] // r indexes the batch's columns too
            for r in 0..n {
                let problem = match &mut check.kind {
                    Kind::NotNull(cols) => cols
                        .iter()
                        .find(|c| batch.column(**c).is_null(r))
                        .map(|c| format!("`{}` is NULL", batch.schema().field(*c).name())),
                    Kind::Unique(cols, seen) => {
                        let mut key = Vec::new();
                        for c in cols.iter() {
                            text.clear();
                            let ty = FerryType::of(batch.schema().field(*c))
                                .unwrap_or(FerryType::String);
                            if write_text(batch.column(*c).as_ref(), ty, r, &mut text) {
                                key.extend_from_slice(text.as_bytes());
                            } else {
                                key.push(0);
                            }
                            key.push(0x1f);
                        }
                        (!seen.insert(key)).then(|| "duplicate value in this run".to_string())
                    }
                    Kind::Regex(c, re) => value_text(&batch, *c, r, &mut text)
                        .filter(|t| !re.is_match(t))
                        .map(|t| format!("`{}` does not match {}", preview(t), re.as_str())),
                    Kind::Range(c, min, max) => {
                        value_text(&batch, *c, r, &mut text).and_then(|t| {
                            let v: f64 = t.parse().ok()?;
                            let low = min.is_some_and(|m| v < m);
                            let high = max.is_some_and(|m| v > m);
                            (low || high).then(|| {
                                format!("{t} is outside [{}, {}]", fmt_bound(*min), fmt_bound(*max))
                            })
                        })
                    }
                    Kind::Allowed(c, set) => value_text(&batch, *c, r, &mut text)
                        .filter(|t| !set.contains(*t))
                        .map(|t| format!("`{}` is not an allowed value", preview(t))),
                    Kind::MaxLength(c, max) => value_text(&batch, *c, r, &mut text)
                        .filter(|t| t.chars().count() > *max)
                        .map(|t| format!("{} characters, more than {max}", t.chars().count())),
                    Kind::RowCount(..) => None,
                };
                let Some(message) = problem else { continue };
                check.failed += 1;
                if check.examples.len() < 3 {
                    check.examples.push(preview(&message));
                }
                match check.severity {
                    Severity::Warn => {}
                    Severity::Fail => {
                        return Err(Error::new(
                            ErrorKind::DataInvalid,
                            format!("check {} failed: {message}", check.name),
                        )
                        .with("row", r));
                    }
                    Severity::Error => {
                        if first_error[r].is_none() {
                            first_error[r] = Some(Failure {
                                row: r,
                                check: check.name.clone(),
                                message,
                            });
                        }
                    }
                }
            }
        }
        if first_error.iter().all(Option::is_none) {
            return Ok(Outcome {
                batch,
                rejected: Vec::new(),
            });
        }
        let keep = BooleanArray::from(first_error.iter().map(Option::is_none).collect::<Vec<_>>());
        let rejected = first_error
            .into_iter()
            .flatten()
            .map(|f| (row_json(&batch, f.row), f))
            .collect();
        Ok(Outcome {
            batch: arrow_select::filter::filter_record_batch(&batch, &keep)?,
            rejected,
        })
    }

    /// Runs the end-of-stream checks; errors when a `fail` one fails.
    pub fn finish(&mut self) -> Result<()> {
        let rows = self.rows;
        for check in &mut self.checks {
            if let Kind::RowCount(min, max) = check.kind {
                let bad = min.is_some_and(|m| rows < m) || max.is_some_and(|m| rows > m);
                if bad {
                    check.failed += 1;
                    let msg = format!(
                        "{rows} rows, expected between {} and {}",
                        fmt_count(min),
                        fmt_count(max)
                    );
                    check.examples.push(msg.clone());
                    if check.severity == Severity::Fail || check.severity == Severity::Error {
                        return Err(Error::new(
                            ErrorKind::DataInvalid,
                            format!("check row_count failed: {msg}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Figures per check.
    pub fn report(&self) -> Vec<CheckReport> {
        self.checks
            .iter()
            .map(|c| CheckReport {
                check: c.name.clone(),
                severity: c.severity,
                failed: c.failed,
                examples: c.examples.clone(),
            })
            .collect()
    }
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}

fn fmt_count(b: Option<u64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}

fn value_text<'a>(batch: &RecordBatch, c: usize, r: usize, buf: &'a mut String) -> Option<&'a str> {
    buf.clear();
    let ty = FerryType::of(batch.schema().field(c)).unwrap_or(FerryType::String);
    write_text(batch.column(c).as_ref(), ty, r, buf).then_some(buf.as_str())
}

/// One row as a JSON object (for quarantine files).
pub fn row_json(batch: &RecordBatch, r: usize) -> serde_json::Value {
    let schema = batch.schema();
    let mut m = serde_json::Map::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let ty = FerryType::of(f).unwrap_or(FerryType::String);
        m.insert(f.name().clone(), to_json(batch.column(i).as_ref(), ty, r));
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("email", true),
            FerryType::Float64.field("amount", true),
            FerryType::String.field("status", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3, 3])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("a@x.io"),
                    None,
                    Some("bad"),
                    Some("c@x.io"),
                ])),
                Arc::new(arrow_array::Float64Array::from(vec![
                    Some(5.0),
                    Some(-1.0),
                    Some(7.0),
                    None,
                ])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("paid"),
                    Some("paid"),
                    Some("lost"),
                    Some("open"),
                ])),
            ],
        )
        .unwrap()
    }

    fn parse(toml_text: &str) -> Vec<CheckConfig> {
        #[derive(Deserialize)]
        struct W {
            checks: Vec<CheckConfig>,
        }
        toml::from_str::<W>(toml_text).unwrap().checks
    }

    #[test]
    fn each_check_passes_and_fails() {
        let cases = [
            (
                r#"checks = [{ type = "not_null", columns = ["email"] }]"#,
                vec![2],
            ),
            (
                r#"checks = [{ type = "unique", columns = ["id"] }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "regex", column = "email", pattern = "^[^@]+@[^@]+$" }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "range", column = "amount", min = 0 }]"#,
                vec![2],
            ),
            (
                r#"checks = [{ type = "allowed", column = "status", values = ["paid", "open"] }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "max_length", column = "status", max = 3 }]"#,
                vec![1, 2, 3, 3],
            ),
        ];
        for (cfg, bad_ids) in cases {
            let mut v = Validator::new(&parse(cfg), &batch().schema()).unwrap();
            let out = v.check(batch()).unwrap();
            let ids: Vec<i64> = out
                .rejected
                .iter()
                .map(|(row, _)| row["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, bad_ids, "{cfg}");
            assert_eq!(
                out.batch.num_rows() + out.rejected.len(),
                4,
                "{cfg}: rows lost"
            );
            assert_eq!(v.report()[0].failed as usize, bad_ids.len());
        }
    }

    #[test]
    fn warn_keeps_rows_and_fail_stops() {
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "warn" }]"#),
            &batch().schema(),
        )
        .unwrap();
        let out = v.check(batch()).unwrap();
        assert_eq!(out.batch.num_rows(), 4);
        assert_eq!(v.report()[0].failed, 1);
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "fail" }]"#),
            &batch().schema(),
        )
        .unwrap();
        assert_eq!(v.check(batch()).unwrap_err().kind(), ErrorKind::DataInvalid);
    }

    #[test]
    fn row_count_and_unknown_column() {
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "row_count", min = 10 }]"#),
            &batch().schema(),
        )
        .unwrap();
        v.check(batch()).unwrap();
        assert!(v.finish().unwrap_err().to_string().contains("4 rows"));
        let e = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["emial"] }]"#),
            &batch().schema(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("did you mean `email`"), "{e}");
    }
}
