//! Building a check from its config against the schema the stream delivers: its name, its
//! severity and its state, or a config error naming the check.

use std::collections::HashSet;

use arrow_schema::Schema;

use super::allowed::AllowedSet;
use super::columns::{col, type_of};
use super::freshness::parse_duration;
use super::kind::Kind;
use super::pattern::Pattern;
use super::references::Referential;
use super::unique::{Seen, SeenInts};
use super::{CheckConfig, CountOf, RunContext, Severity};
use ferry_core::types::FerryType;
use ferry_core::values::ColumnBuilder;
use ferry_core::{Error, Result};

/// The check `c` of a stream delivering `schema`, in the run `ctx`: its name
/// (`not_null(id)`), severity and state.
pub(super) fn build(
    c: &CheckConfig,
    schema: &Schema,
    ctx: &RunContext,
) -> Result<(String, Severity, Kind)> {
    Ok(match c {
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
            let idx: Vec<usize> = columns
                .iter()
                .map(|x| col(schema, x, &n))
                .collect::<Result<_>>()?;
            let seen = if idx.len() == 1 && type_of(schema, idx[0]) == FerryType::Int64 {
                Seen::Int(SeenInts::default())
            } else {
                Seen::Bytes(HashSet::new())
            };
            (n, *severity, Kind::Unique(idx, seen))
        }
        CheckConfig::Regex {
            column,
            pattern,
            severity,
        } => {
            let n = format!("regex({column})");
            let re = Pattern::new(pattern)
                .map_err(|e| Error::config(format!("check {n}: invalid pattern: {e}")))?;
            (
                n.clone(),
                *severity,
                Kind::Regex(col(schema, column, &n)?, Box::new(re)),
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
                Kind::Allowed(col(schema, column, &n)?, AllowedSet::new(values)),
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
        CheckConfig::RowCount {
            min,
            max,
            max_change,
            of,
            severity,
        } => {
            let of = of.unwrap_or(if ctx.incremental {
                CountOf::Destination
            } else {
                CountOf::Run
            });
            if max_change.is_some_and(|m| m.is_nan() || m < 0.0) {
                return Err(Error::config(
                    "check row_count: max_change must be 0 or more (0.5 allows 50% more or fewer rows than the last run)",
                ));
            }
            (
                match of {
                    CountOf::Run => "row_count".to_string(),
                    CountOf::Destination => "row_count(destination)".to_string(),
                },
                *severity,
                Kind::RowCount {
                    min: *min,
                    max: *max,
                    max_change: *max_change,
                    previous: match of {
                        CountOf::Run => ctx.previous_rows,
                        CountOf::Destination => ctx.previous_destination_rows,
                    },
                    of,
                },
            )
        }
        CheckConfig::Type {
            column,
            is,
            severity,
        } => {
            let (n, i) = typed_col(schema, "type", column, Needs::Text)?;
            let ty = FerryType::parse(is).ok_or_else(|| {
                Error::config(format!(
                    "check {n}: unknown type `{is}` (valid: {})",
                    FerryType::NAMES.join(", ")
                ))
            })?;
            (n, *severity, Kind::Type(i, ColumnBuilder::new(ty, 0)))
        }
        CheckConfig::Referential {
            column,
            stream,
            stream_column,
            severity,
        } => {
            let n = format!("referential({column})");
            (
                n.clone(),
                *severity,
                Kind::Referential(Referential {
                    col: col(schema, column, &n)?,
                    stream: stream.clone(),
                    column: stream_column.clone(),
                    references: ctx.references.clone(),
                    values: None,
                }),
            )
        }
        CheckConfig::Freshness {
            column,
            max_age,
            severity,
        } => {
            let (n, i) = typed_col(schema, "freshness", column, Needs::Time)?;
            let age = parse_duration(max_age).ok_or_else(|| {
                Error::config(format!(
                    "check {n}: max_age `{max_age}` is not a duration like `90s`, `30m`, `24h`, `7d`, `2w` or `1h30m`"
                ))
            })?;
            (
                n,
                *severity,
                Kind::Freshness {
                    col: i,
                    max_age: age,
                    written: max_age.clone(),
                    newest: None,
                },
            )
        }
    })
}

/// What type of column a check needs.
enum Needs {
    /// String or JSON (`type`).
    Text,
    /// Timestamp or date (`freshness`).
    Time,
}

/// The name of the `check` of `column` and the column's index, when its type is what the
/// check `needs`; else an error saying what it is.
fn typed_col(schema: &Schema, check: &str, column: &str, needs: Needs) -> Result<(String, usize)> {
    let n = format!("{check}({column})");
    let i = col(schema, column, &n)?;
    let have = type_of(schema, i);
    let (fits, not) = match needs {
        Needs::Text => (
            matches!(have, FerryType::String | FerryType::Json),
            "not text; the type check is for string columns",
        ),
        Needs::Time => (
            matches!(have, FerryType::Timestamp | FerryType::Date),
            "not a timestamp or date",
        ),
    };
    if !fits {
        return Err(Error::config(format!(
            "check {n}: column `{column}` is {have}, {not}"
        )));
    }
    Ok((n, i))
}
