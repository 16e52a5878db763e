//! Validation: declarative checks per stream, with a severity each.
//!
//! Checks run on every batch after the transforms, so they see the data as it will be
//! delivered (and never the clear value of a protected field). A row failing a check of
//! severity `error` is taken out of the batch and quarantined with the check's name and
//! message; `warn` only counts it (and keeps a few examples for the summary); `fail`
//! stops the stream at once, before its state is committed. Stream-level checks
//! (`row_count`, `freshness`) run when the stream ends; they have no row to quarantine, so
//! `error` acts like `fail` for them.
//!
//! | check | config | fails a row when |
//! |-------|--------|------------------|
//! | `not_null` | `{ type = "not_null", columns = ["id"] }` | a column is NULL |
//! | `unique` | `{ type = "unique", columns = ["id"] }` | the values were seen before in this run (memory grows with distinct values) |
//! | `regex` | `{ type = "regex", column = "email", pattern = "^.+@.+$" }` | the text does not match |
//! | `range` | `{ type = "range", column = "amount", min = 0, max = 1e9 }` | the number is outside the bounds |
//! | `allowed` | `{ type = "allowed", column = "status", values = ["paid"] }` | the text is not listed |
//! | `max_length` | `{ type = "max_length", column = "country", max = 2 }` | more characters |
//! | `type` | `{ type = "type", column = "zip", is = "int64" }` | a string column's text does not parse as the type (the parser every text source uses) |
//! | `referential` | `{ type = "referential", column = "customer_id", stream = "customers", stream_column = "id" }` | the value is not among the values `customers` delivered in this run (compared as text) |
//! | `freshness` | `{ type = "freshness", column = "updated_at", max_age = "24h" }` | at the end: the newest value (timestamp or date) is older than `max_age` (`90s`, `30m`, `24h`, `7d`, `2w`, `1h30m`), or there is none |
//! | `row_count` | `{ type = "row_count", min = 1, max = 1e6, max_change = 0.5, of = "run" }` | at the end: rows outside [min, max], or more than 50% more or fewer rows than the last run; `of = "destination"` (the default for incremental streams) counts the rows the destination holds after the run instead of the rows this run read |
//!
//! NULL passes every row check but `not_null` (and `unique`, where NULLs are equal).
//!
//! Two checks need the runtime's help: `referential` reads values another stream of the
//! same run delivered ([`References`]: the runtime runs that stream first and shares what
//! its [`Validator`] collected), and `row_count`'s `max_change` compares with the previous
//! run's count ([`RunContext::previous_rows`]; the runtime keeps each stream's count in the
//! state file after a successful run, see [`crate::state::StateStore::record_rows`]). Without
//! that help `referential` fails the stream with a config error, and `max_change` has nothing
//! to compare with and passes, with a note in the report.
//!
//! Where each part is: `config` holds the checks as written, `build` makes one against the
//! stream's schema, `kind` hands it each batch and the stream's end, and each check has a
//! file of its own (`not_null`, `unique`, `pattern` for `regex`, `range`, `allowed`,
//! `max_length`, `type_check`, `references` for `referential`, `freshness`, `row_count`);
//! `validator` runs a stream's checks and keeps their figures (`check_report`).

mod allowed;
mod build;
mod check_report;
mod columns;
mod config;
mod context;
mod fold_hash;
mod freshness;
mod kind;
mod max_length;
mod not_null;
mod pattern;
mod range;
mod references;
mod row_count;
#[cfg(test)]
mod tests;
mod type_check;
mod unique;
mod validator;

/// What a check's scan pushes: `(row, message)` for each failing row of a batch, in row
/// order.
type Fails = Vec<(usize, String)>;

pub use check_report::CheckReport;
pub use config::{CheckConfig, CountOf, Severity};
pub use context::RunContext;
pub use freshness::parse_duration;
pub use references::References;
pub use validator::{Failure, Outcome, Validator};
