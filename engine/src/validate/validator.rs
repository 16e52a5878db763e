//! The checks of one stream, run batch by batch: failing rows taken out (`error`),
//! counted (`warn`) or stopping the stream (`fail`), and the verdicts at its end.

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::Schema;

use super::build::build;
use super::kind::Kind;
use super::references::Collector;
use super::{CheckConfig, CheckReport, CountOf, Fails, References, RunContext, Severity};
use crate::rows::row_json;
use ferry_core::values::preview;
use ferry_core::{Error, ErrorKind, Result};

/// One check of the stream, with its running figures.
struct Check {
    name: String,
    severity: Severity,
    kind: Kind,
    failed: u64,
    examples: Vec<String>,
    note: Option<String>,
}

impl Check {
    /// Counts an end-of-stream verdict that failed (`msg`: why); errors unless the check
    /// only warns.
    fn fails_at_end(&mut self, msg: String) -> Result<()> {
        self.failed += 1;
        self.examples.push(preview(&msg));
        if self.severity != Severity::Warn {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!("check {} failed: {msg}", self.name),
            ));
        }
        Ok(())
    }
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
    stream: String,
    references: Option<References>,
    collect: Vec<Collector>,
    text: String,
}

/// What validating one batch produced.
#[derive(Debug)]
pub struct Outcome {
    /// The rows to write (rows failing an `error` check removed).
    pub batch: RecordBatch,
    /// The removed rows, as JSON objects, with why.
    pub rejected: Vec<(serde_json::Value, Failure)>,
}

impl Validator {
    /// Builds the checks against the schema the stream delivers (after transforms), outside
    /// any run: `referential` checks fail at the first batch, `max_change` has nothing to
    /// compare with. The runtime uses [`Validator::for_run`].
    pub fn new(configs: &[CheckConfig], schema: &Schema) -> Result<Validator> {
        Self::for_run(configs, schema, &RunContext::default())
    }

    /// Builds the checks of one stream of a run.
    pub fn for_run(
        configs: &[CheckConfig],
        schema: &Schema,
        ctx: &RunContext,
    ) -> Result<Validator> {
        let mut checks = Vec::new();
        for c in configs {
            let (name, severity, kind) = build(c, schema, ctx)?;
            checks.push(Check {
                name,
                severity,
                kind,
                failed: 0,
                examples: Vec::new(),
                note: None,
            });
        }
        let mut collect = Vec::new();
        if let Some(refs) = &ctx.references {
            for column in refs.wanted(&ctx.stream) {
                collect.push(Collector::new(schema, column, &ctx.stream)?);
            }
        }
        Ok(Validator {
            checks,
            rows: 0,
            stream: ctx.stream.clone(),
            references: ctx.references.clone(),
            collect,
            text: String::new(),
        })
    }

    /// Whether there is nothing to do (no checks, no values to collect for other streams).
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.collect.is_empty()
    }

    /// Rows checked so far (for the runtime to remember as the next run's `previous_rows`).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Checks one batch. Errors (kind `DataInvalid`) when a `fail` check fails.
    pub fn check(&mut self, batch: RecordBatch) -> Result<Outcome> {
        let n = batch.num_rows();
        self.rows += n as u64;
        let mut first_error: Vec<Option<Failure>> = Vec::new();
        let mut fails: Fails = Vec::new();
        for check in &mut self.checks {
            fails.clear();
            check
                .kind
                .scan(&batch, &check.name, &mut self.text, &mut fails)?;
            for (r, message) in fails.drain(..) {
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
                        if first_error.is_empty() {
                            first_error = vec![None; n];
                        }
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
        let (batch, rejected) = if first_error.is_empty() {
            (batch, Vec::new())
        } else {
            let keep =
                BooleanArray::from(first_error.iter().map(Option::is_none).collect::<Vec<_>>());
            let rejected = first_error
                .into_iter()
                .flatten()
                .map(|f| (row_json(&batch, f.row), f))
                .collect();
            (
                arrow_select::filter::filter_record_batch(&batch, &keep)?,
                rejected,
            )
        };
        for c in &mut self.collect {
            c.collect(&batch, &mut self.text);
        }
        Ok(Outcome { batch, rejected })
    }

    /// Runs the end-of-stream checks; errors when a `fail` (or `error`) one fails. The
    /// checks of the destination's count wait for [`Validator::finish_destination`].
    pub fn finish(&mut self) -> Result<()> {
        let rows = self.rows;
        for check in &mut self.checks {
            if matches!(
                check.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            ) {
                continue;
            }
            let column = check
                .name
                .split_once('(')
                .map(|(_, c)| c.trim_end_matches(')'))
                .unwrap_or_default()
                .to_string();
            if let Kind::RowCount {
                max_change: Some(_),
                previous: None,
                ..
            } = check.kind
            {
                check.note = Some(format!(
                    "max_change not checked: no row count of a previous successful run; {rows} rows kept to compare the next run with"
                ));
            }
            let Some(msg) = check.kind.at_end(rows, &column) else {
                continue;
            };
            check.fails_at_end(msg)?;
        }
        Ok(())
    }

    /// Whether a `row_count` check counts the destination's rows (the runtime then asks
    /// the destination, once the stream's rows are committed, and calls
    /// [`Validator::finish_destination`]).
    pub fn counts_destination(&self) -> bool {
        self.checks.iter().any(|c| {
            matches!(
                c.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            )
        })
    }

    /// Whether a `row_count` check of `of` compares with the last run (`max_change`): its
    /// count is then kept for the next run.
    pub fn keeps_count(&self, of: CountOf) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.kind, Kind::RowCount { max_change: Some(_), of: o, .. } if o == of))
    }

    /// Runs the `row_count` checks of the destination with the rows `destination` says
    /// it holds (`None`: it cannot tell, and the check says it could not be answered);
    /// errors when a `fail` (or `error`) one fails.
    pub fn finish_destination(&mut self, destination: Option<u64>) -> Result<()> {
        for check in &mut self.checks {
            let Kind::RowCount {
                of: CountOf::Destination,
                max_change,
                previous,
                ..
            } = &check.kind
            else {
                continue;
            };
            let msg = match destination {
                None => Some(
                    "cannot be answered: the destination cannot count its rows (use `of = \"run\"` to count the rows of the run)".to_string(),
                ),
                Some(rows) => {
                    if max_change.is_some() && previous.is_none() {
                        check.note = Some(format!(
                            "max_change not checked: no row count of a previous successful run; {rows} rows at the destination kept to compare the next run with"
                        ));
                    }
                    check.kind.at_end(rows, "")
                }
            };
            let Some(msg) = msg else { continue };
            check.fails_at_end(msg)?;
        }
        Ok(())
    }

    /// Marks the `row_count` checks of the destination as not run, saying `why` (a
    /// trial rolled back what it wrote: the destination's count is not this run's).
    pub fn skip_destination(&mut self, why: &str) {
        for check in &mut self.checks {
            if matches!(
                check.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            ) {
                check.note = Some(why.to_string());
            }
        }
    }

    /// Hands the values collected for other streams' `referential` checks to the run's
    /// [`References`]; the runtime calls it once the stream's rows are durable.
    pub fn publish(&mut self) {
        let Some(refs) = &self.references else {
            return;
        };
        for c in self.collect.drain(..) {
            c.publish(refs, &self.stream);
        }
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
                note: c.note.clone(),
            })
            .collect()
    }
}
