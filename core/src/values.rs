//! Turning text and JSON values into Arrow columns and back.
//!
//! Every text-based source (CSV, JSON Lines, SQLite, HTTP) and every text-based
//! sink goes through these functions, so a value means the same thing in every
//! connector: timestamps are RFC 3339 in UTC, binary is base64, decimals are exact
//! text, JSON columns hold a JSON document.

use std::sync::Arc;

use arrow_array::builder::*;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use crate::types::FerryType;
use crate::{Error, Result};

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A growable column of one Ferry type.
pub struct ColumnBuilder {
    ty: FerryType,
    inner: Inner,
}

enum Inner {
    Bool(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    String(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    /// An empty column of type `ty` with room for `capacity` values.
    pub fn new(ty: FerryType, capacity: usize) -> Self {
        let inner = match ty {
            FerryType::Bool => Inner::Bool(BooleanBuilder::with_capacity(capacity)),
            FerryType::Int64 => Inner::Int64(Int64Builder::with_capacity(capacity)),
            FerryType::Float64 => Inner::Float64(Float64Builder::with_capacity(capacity)),
            FerryType::Decimal { .. } => Inner::Decimal(Decimal128Builder::with_capacity(capacity)),
            FerryType::String | FerryType::Json => {
                Inner::String(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            FerryType::Binary => {
                Inner::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            FerryType::Date => Inner::Date(Date32Builder::with_capacity(capacity)),
            FerryType::Timestamp => {
                Inner::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
        };
        ColumnBuilder { ty, inner }
    }

    /// The column's type.
    pub fn ferry_type(&self) -> FerryType {
        self.ty
    }

    /// Values appended so far.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Bool(b) => b.len(),
            Inner::Int64(b) => b.len(),
            Inner::Float64(b) => b.len(),
            Inner::Decimal(b) => b.len(),
            Inner::String(b) => b.len(),
            Inner::Binary(b) => b.len(),
            Inner::Date(b) => b.len(),
            Inner::Timestamp(b) => b.len(),
        }
    }

    /// Whether no value was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        match &mut self.inner {
            Inner::Bool(b) => b.append_null(),
            Inner::Int64(b) => b.append_null(),
            Inner::Float64(b) => b.append_null(),
            Inner::Decimal(b) => b.append_null(),
            Inner::String(b) => b.append_null(),
            Inner::Binary(b) => b.append_null(),
            Inner::Date(b) => b.append_null(),
            Inner::Timestamp(b) => b.append_null(),
        }
    }

    /// Parses `s` as this column's type and appends it. The error says what was expected.
    pub fn append_text(&mut self, s: &str) -> std::result::Result<(), String> {
        let ty = self.ty;
        let bad = || format!("expected {ty}, found `{}`", preview(s));
        match &mut self.inner {
            Inner::Bool(b) => b.append_value(parse_bool(s).ok_or_else(bad)?),
            Inner::Int64(b) => b.append_value(s.trim().parse::<i64>().map_err(|_| bad())?),
            Inner::Float64(b) => b.append_value(s.trim().parse::<f64>().map_err(|_| bad())?),
            Inner::Decimal(b) => {
                let FerryType::Decimal { precision, scale } = ty else {
                    unreachable!()
                };
                let v = crate::decimal::parse_decimal(s, precision, scale).ok_or_else(bad)?;
                b.append_value(v)
            }
            Inner::String(b) => {
                if ty == FerryType::Json
                    && serde_json::from_str::<serde::de::IgnoredAny>(s).is_err()
                {
                    return Err(format!("expected a JSON document, found `{}`", preview(s)));
                }
                b.append_value(s)
            }
            Inner::Binary(b) => b.append_value(
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| format!("expected base64 bytes, found `{}`", preview(s)))?,
            ),
            Inner::Date(b) => b.append_value(parse_date(s).ok_or_else(bad)?),
            Inner::Timestamp(b) => b.append_value(parse_timestamp_micros(s).ok_or_else(bad)?),
        }
        Ok(())
    }

    /// Appends raw bytes to a binary column (the error names the column's type otherwise).
    pub fn append_bytes(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        match &mut self.inner {
            Inner::Binary(b) => {
                b.append_value(bytes);
                Ok(())
            }
            _ => Err(format!("expected {}, found bytes", self.ty)),
        }
    }

    /// Appends a JSON value, converting it to this column's type (NULL for `null`).
    pub fn append_json(&mut self, v: &serde_json::Value) -> std::result::Result<(), String> {
        use serde_json::Value as J;
        match (v, &mut self.inner) {
            (J::Null, _) => self.append_null(),
            (_, Inner::String(b)) if self.ty == FerryType::Json => b.append_value(v.to_string()),
            (J::String(s), _) => return self.append_text(s),
            (J::Bool(x), Inner::Bool(b)) => b.append_value(*x),
            (J::Number(n), Inner::Int64(b)) => b.append_value(
                n.as_i64()
                    .ok_or_else(|| format!("expected int64, found `{n}`"))?,
            ),
            (J::Number(n), Inner::Float64(b)) => b.append_value(n.as_f64().unwrap_or(f64::NAN)),
            (J::Number(n), Inner::Decimal(_)) => return self.append_text(&n.to_string()),
            (J::Number(n), Inner::String(b)) => b.append_value(n.to_string()),
            (J::Bool(x), Inner::String(b)) => b.append_value(if *x { "true" } else { "false" }),
            (J::Number(n), Inner::Timestamp(b)) if n.is_i64() => {
                b.append_value(n.as_i64().unwrap_or_default() * 1_000_000)
            }
            (J::Object(_) | J::Array(_), Inner::String(b)) => b.append_value(v.to_string()),
            _ => {
                return Err(format!(
                    "expected {}, found `{}`",
                    self.ty,
                    preview(&v.to_string())
                ))
            }
        }
        Ok(())
    }

    /// Takes the values appended so far as an Arrow array.
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.inner {
            Inner::Bool(b) => Arc::new(b.finish()),
            Inner::Int64(b) => Arc::new(b.finish()),
            Inner::Float64(b) => Arc::new(b.finish()),
            Inner::Decimal(b) => {
                let FerryType::Decimal { precision, scale } = self.ty else {
                    unreachable!()
                };
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(precision, scale)
                        .expect("precision checked when the type was parsed"),
                )
            }
            Inner::String(b) => Arc::new(b.finish()),
            Inner::Binary(b) => Arc::new(b.finish()),
            Inner::Date(b) => Arc::new(b.finish()),
            Inner::Timestamp(b) => Arc::new(b.finish().with_timezone("UTC")),
        }
    }
}

/// Builds a [`RecordBatch`] row by row, from text or JSON values, keeping rows whole:
/// a row with one bad value is left out of the batch entirely and reported by the caller.
///
/// ```
/// use std::sync::Arc;
/// use ferry_core::{arrow_schema::Schema, values::BatchBuilder, FerryType};
///
/// let schema = Arc::new(Schema::new(vec![
///     FerryType::Int64.field("id", false),
///     FerryType::Date.field("day", true),
/// ]));
/// let mut b = BatchBuilder::new(schema, 2).unwrap();
/// b.push_text_row([Some("1"), Some("2024-02-29")], "").unwrap();
/// let bad = b.push_text_row([Some("two"), None], "").unwrap_err();
/// assert_eq!(bad.name, "id");
/// assert_eq!(b.finish().unwrap().num_rows(), 1); // the bad row is left out whole
/// ```
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    bad: Vec<usize>,
    rows: usize,
}

/// A value that could not be converted: which column, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Zero-based column index.
    pub column: usize,
    /// Column name.
    pub name: String,
    /// What was wrong (names no secret; shows at most 64 characters of the value).
    pub message: String,
}

impl BatchBuilder {
    /// A builder for `schema` (every column must use a Ferry type).
    pub fn new(schema: SchemaRef, capacity: usize) -> Result<Self> {
        crate::types::check_schema(&schema)?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(FerryType::of(f).expect("checked"), capacity))
            .collect();
        Ok(BatchBuilder {
            schema,
            columns,
            bad: Vec::new(),
            rows: 0,
        })
    }

    /// The schema rows are built for.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows appended since the last [`BatchBuilder::finish`], good and bad.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows were appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row of text cells; `None` or a cell equal to `null_text` is NULL.
    /// Missing trailing cells are NULL; a non-nullable column that gets NULL is an error.
    pub fn push_text_row<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Option<&'a str>>,
        null_text: &str,
    ) -> std::result::Result<(), FieldError> {
        let mut cells = cells.into_iter();
        let mut failure = None;
        for (i, col) in self.columns.iter_mut().enumerate() {
            if failure.is_some() {
                col.append_null();
                continue;
            }
            let cell = cells.next().flatten();
            let result = match cell {
                Some(s) if s != null_text => col.append_text(s),
                _ if !self.schema.field(i).is_nullable() => {
                    col.append_null();
                    Err("NULL in a column that does not allow NULL".to_string())
                }
                _ => {
                    col.append_null();
                    Ok(())
                }
            };
            let result = result.inspect_err(|_| {
                if col_len_short(col, self.rows) {
                    col.append_null();
                }
            });
            if let Err(message) = result {
                failure = Some(FieldError {
                    column: i,
                    name: self.schema.field(i).name().clone(),
                    message,
                });
            }
        }
        self.end_row(failure)
    }

    /// Appends one row from a JSON object; missing keys are NULL, extra keys are ignored.
    pub fn push_json_row(
        &mut self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> std::result::Result<(), FieldError> {
        let mut failure = None;
        for (i, col) in self.columns.iter_mut().enumerate() {
            if failure.is_some() {
                col.append_null();
                continue;
            }
            let field = self.schema.field(i);
            let result = match row.get(field.name()) {
                None | Some(serde_json::Value::Null) if !field.is_nullable() => {
                    col.append_null();
                    Err("NULL in a column that does not allow NULL".to_string())
                }
                None => {
                    col.append_null();
                    Ok(())
                }
                Some(v) => col.append_json(v).inspect_err(|_| {
                    if col.len() <= self.rows {
                        col.append_null()
                    }
                }),
            };
            if let Err(message) = result {
                failure = Some(FieldError {
                    column: i,
                    name: field.name().clone(),
                    message,
                });
            }
        }
        self.end_row(failure)
    }

    fn end_row(&mut self, failure: Option<FieldError>) -> std::result::Result<(), FieldError> {
        self.rows += 1;
        match failure {
            None => Ok(()),
            Some(f) => {
                self.bad.push(self.rows - 1);
                Err(f)
            }
        }
    }

    /// Takes the good rows appended so far as a batch (bad rows are left out).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        let rows = std::mem::take(&mut self.rows);
        let bad = std::mem::take(&mut self.bad);
        if bad.is_empty() {
            return RecordBatch::try_new(self.schema.clone(), arrays)
                .map_err(|e| Error::internal(format!("columns of a built batch disagree: {e}")));
        }
        // a bad row may hold NULL in a non-nullable column: filter the columns first
        let mut keep = vec![true; rows];
        for i in bad {
            keep[i] = false;
        }
        let keep = BooleanArray::from(keep);
        let arrays = arrays
            .iter()
            .map(|a| arrow_select::filter::filter(a.as_ref(), &keep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::internal(format!("columns of a built batch disagree: {e}")))
    }
}

/// Whether a column holds fewer values than rows started (a failed append added none).
fn col_len_short(col: &ColumnBuilder, rows_before: usize) -> bool {
    col.len() <= rows_before
}

/// At most 64 characters of a value, for error messages.
pub fn preview(s: &str) -> String {
    preview_n(s, 64)
}

/// At most `n` characters of `s`, then `…` when some were cut.
pub fn preview_n(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Parses `true/false`, `t/f`, `yes/no`, `y/n`, `1/0` (any case).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(date_to_days(d))
}

/// Days since 1970-01-01 of a date.
pub fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The date `days` after 1970-01-01.
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE)
}

/// Parses an RFC 3339 timestamp, or `YYYY-MM-DD[ T]HH:MM:SS[.f]` (taken as UTC), or a
/// bare date (midnight UTC), into microseconds since the Unix epoch.
pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_micros());
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Formats microseconds since the epoch as RFC 3339 in UTC (`2024-05-01T12:00:00.25Z`).
pub fn format_timestamp_micros(us: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(us) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => us.to_string(),
    }
}

/// Appends the text form of row `row` of `array` (of Ferry type `ty`) to `out`.
/// Returns `false` (and appends nothing) for NULL.
pub fn write_text(array: &dyn Array, ty: FerryType, row: usize, out: &mut String) -> bool {
    use std::fmt::Write;
    if array.is_null(row) {
        return false;
    }
    match ty {
        FerryType::Bool => out.push_str(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        FerryType::Int64 => {
            let _ = write!(out, "{}", array.as_primitive::<Int64Type>().value(row));
        }
        FerryType::Float64 => {
            let _ = write!(out, "{}", array.as_primitive::<Float64Type>().value(row));
        }
        FerryType::Decimal { .. } => {
            out.push_str(&array.as_primitive::<Decimal128Type>().value_as_string(row))
        }
        FerryType::String | FerryType::Json => out.push_str(array.as_string::<i32>().value(row)),
        FerryType::Binary => base64::engine::general_purpose::STANDARD
            .encode_string(array.as_binary::<i32>().value(row), out),
        FerryType::Date => {
            let d = array.as_primitive::<Date32Type>().value(row);
            match days_to_date(d) {
                Some(d) => {
                    let _ = write!(out, "{}", d.format("%Y-%m-%d"));
                }
                None => {
                    let _ = write!(out, "{d}");
                }
            }
        }
        FerryType::Timestamp => out.push_str(&format_timestamp_micros(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        )),
    }
    true
}

/// The JSON form of row `row` of `array`: numbers stay numbers, decimals become
/// strings (exact), binary becomes base64, JSON columns are embedded as documents.
pub fn to_json(array: &dyn Array, ty: FerryType, row: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if array.is_null(row) {
        return J::Null;
    }
    match ty {
        FerryType::Bool => J::Bool(array.as_boolean().value(row)),
        FerryType::Int64 => J::from(array.as_primitive::<Int64Type>().value(row)),
        FerryType::Float64 => J::from(array.as_primitive::<Float64Type>().value(row)),
        FerryType::Json => {
            let s = array.as_string::<i32>().value(row);
            serde_json::from_str(s).unwrap_or_else(|_| J::String(s.to_string()))
        }
        _ => {
            let mut s = String::new();
            write_text(array, ty, row, &mut s);
            J::String(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Schema;

    #[test]
    fn text_round_trips_every_type() {
        let cases = [
            (FerryType::Bool, "true"),
            (FerryType::Int64, "-42"),
            (FerryType::Float64, "1.5"),
            (
                FerryType::Decimal {
                    precision: 20,
                    scale: 3,
                },
                "12345678901234.567",
            ),
            (FerryType::String, "héllo, \"world\""),
            (FerryType::Binary, "AAEC/w=="),
            (FerryType::Date, "2024-02-29"),
            (FerryType::Timestamp, "2024-05-01T12:00:00.250Z"),
            (FerryType::Json, "{\"a\":[1,2]}"),
        ];
        for (ty, text) in cases {
            let mut b = ColumnBuilder::new(ty, 1);
            b.append_text(text).unwrap();
            let arr = b.finish();
            let mut out = String::new();
            assert!(write_text(arr.as_ref(), ty, 0, &mut out));
            let expected = if ty == FerryType::Timestamp {
                "2024-05-01T12:00:00.250Z"
            } else {
                text
            };
            assert_eq!(out, expected, "{ty}");
        }
    }

    #[test]
    fn timestamps_accept_common_forms() {
        let a = parse_timestamp_micros("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_timestamp_micros("2024-01-02 03:04:05").unwrap(), a);
        assert_eq!(
            parse_timestamp_micros("2024-01-02T05:04:05+02:00").unwrap(),
            a
        );
        assert!(parse_timestamp_micros("yesterday").is_none());
    }

    #[test]
    fn bad_row_is_left_out_whole() {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("name", true),
        ]));
        let mut b = BatchBuilder::new(schema, 4).unwrap();
        b.push_text_row([Some("1"), Some("a")], "").unwrap();
        let err = b.push_text_row([Some("x"), Some("b")], "").unwrap_err();
        assert_eq!(err.name, "id");
        assert!(err.message.contains("expected int64"), "{}", err.message);
        b.push_text_row([Some("3"), None], "").unwrap();
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.column(0).as_primitive::<Int64Type>().values(),
            &[1, 3]
        );
    }
}
