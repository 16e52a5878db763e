//! Type mapping between Ferry's nine types and MySQL / MariaDB, both ways.
//!
//! | MySQL / MariaDB (read)                                  | Ferry type     | written as (destination) |
//! |---------------------------------------------------------|----------------|--------------------------|
//! | `TINYINT(1)`, `BOOL`, `BOOLEAN`, `BIT(1)`               | `bool`         | `BOOLEAN` (`TINYINT(1)`) |
//! | `TINYINT` … `BIGINT`, `YEAR`, `BIT(n)`                  | `int64`        | `BIGINT`                 |
//! | `BIGINT UNSIGNED`                                       | `decimal(20,0)`| `DECIMAL(p,s)`           |
//! | `FLOAT`, `DOUBLE`, `REAL`                               | `float64`      | `DOUBLE`                 |
//! | `DECIMAL(p,s)` (p ≤ 38; wider: `string`)                | `decimal(p,s)` | `DECIMAL(p,s)`           |
//! | `CHAR`, `VARCHAR`, `*TEXT`, `ENUM`, `SET`               | `string`       | `LONGTEXT` (key: `VARCHAR(255)`) |
//! | `BINARY`, `VARBINARY`, `*BLOB`, spatial types           | `binary`       | `LONGBLOB` (key: `VARBINARY(255)`) |
//! | `DATE`                                                  | `date`         | `DATE`                   |
//! | `DATETIME`, `TIMESTAMP` (session in UTC)                | `timestamp`    | `DATETIME(6)`, in UTC    |
//! | `JSON` (MariaDB: `LONGTEXT` with `CHECK (json_valid)`)  | `json`         | `JSON`                   |
//! | anything else (`TIME`, `UUID`, `INET6` …)               | `string`       |                          |
//!
//! Rows are read with the binary protocol (prepared statements), so numbers and dates
//! arrive typed; rows are written as multi-row `INSERT` statements of escaped literals.

use std::fmt::Write as _;

use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::cursor::{Case, Cursor, CursorOf};
use ferry_core::typed::TypedColumn;
use ferry_core::values::preview;
use ferry_core::FerryType;
use ferry_sql::read::{utf8, Col, ReadColumns, RowValues};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Row, Value};

/// The `character_set` number of binary (byte) columns.
const BINARY_CHARSET: u16 = 63;
/// The widest decimal Ferry keeps as a decimal (Arrow's Decimal128).
const MAX_DECIMAL: u64 = 38;
/// Length of a string or binary primary-key column Ferry creates.
pub const KEY_LENGTH: u32 = 255;

/// One column of a table or view, as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub ty: FerryType,
    /// The full declared type (`varchar(20)`, `bigint unsigned` …), for messages.
    pub column_type: String,
    pub nullable: bool,
    /// Has a default, is `AUTO_INCREMENT` or generated: an insert may leave it out.
    pub has_default: bool,
    /// A generated column: it cannot be written.
    pub generated: bool,
}

/// The Ferry type of a table column from `information_schema.COLUMNS`
/// (`DATA_TYPE`, `COLUMN_TYPE`, `NUMERIC_PRECISION`, `NUMERIC_SCALE`).
pub fn column_type_from_schema(
    data_type: &str,
    column_type: &str,
    precision: Option<u64>,
    scale: Option<u64>,
    is_json: bool,
) -> FerryType {
    let full = column_type.trim().to_ascii_lowercase();
    match data_type.trim().to_ascii_lowercase().as_str() {
        "tinyint" if full.starts_with("tinyint(1)") && !full.contains("unsigned") => {
            FerryType::Bool
        }
        "bool" | "boolean" => FerryType::Bool,
        "bit" if full == "bit(1)" || full == "bit" => FerryType::Bool,
        "bigint" if full.contains("unsigned") => FerryType::Decimal {
            precision: 20,
            scale: 0,
        },
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "bit" => {
            FerryType::Int64
        }
        "float" | "double" | "real" | "double precision" => FerryType::Float64,
        "decimal" | "numeric" | "fixed" | "dec" => {
            decimal(precision.unwrap_or(10), scale.unwrap_or(0))
        }
        "json" => FerryType::Json,
        "longtext" | "text" | "mediumtext" if is_json => FerryType::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => FerryType::Binary,
        "date" => FerryType::Date,
        "datetime" | "timestamp" => FerryType::Timestamp,
        _ => FerryType::String,
    }
}

/// The Ferry type of a result column from its metadata (configured queries).
pub fn column_type_from_meta(c: &Column) -> FerryType {
    use ColumnType::*;
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    match c.column_type() {
        MYSQL_TYPE_TINY if c.column_length() == 1 && !unsigned => FerryType::Bool,
        MYSQL_TYPE_BIT if c.column_length() == 1 => FerryType::Bool,
        MYSQL_TYPE_LONGLONG if unsigned => FerryType::Decimal {
            precision: 20,
            scale: 0,
        },
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24
        | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR | MYSQL_TYPE_BIT => FerryType::Int64,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => FerryType::Float64,
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => {
            let scale = c.decimals() as u64;
            let len = c.column_length() as u64;
            let precision = len
                .saturating_sub(if scale > 0 { 1 } else { 0 })
                .saturating_sub(if unsigned { 0 } else { 1 });
            decimal(precision.max(scale).max(1), scale)
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => FerryType::Date,
        MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => FerryType::Timestamp,
        MYSQL_TYPE_JSON => FerryType::Json,
        MYSQL_TYPE_GEOMETRY => FerryType::Binary,
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
            if c.character_set() == BINARY_CHARSET
                && !c
                    .flags()
                    .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG) =>
        {
            FerryType::Binary
        }
        _ => FerryType::String,
    }
}

fn decimal(precision: u64, scale: u64) -> FerryType {
    if (1..=MAX_DECIMAL).contains(&precision) && scale <= precision {
        FerryType::Decimal {
            precision: precision as u8,
            scale: scale as i8,
        }
    } else {
        // wider than Arrow's Decimal128: keep the exact text
        FerryType::String
    }
}

/// The column type Ferry creates for `ty`; `in_key` columns get a bounded length (an
/// index cannot cover `LONGTEXT`); text compares exactly (`collation`).
pub fn declared_type(ty: FerryType, in_key: bool, collation: &str) -> String {
    match ty {
        FerryType::Bool => "BOOLEAN".into(),
        FerryType::Int64 => "BIGINT".into(),
        FerryType::Float64 => "DOUBLE".into(),
        FerryType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        FerryType::String if in_key => {
            format!("VARCHAR({KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE {collation}")
        }
        FerryType::String => format!("LONGTEXT CHARACTER SET utf8mb4 COLLATE {collation}"),
        FerryType::Binary if in_key => format!("VARBINARY({KEY_LENGTH})"),
        FerryType::Binary => "LONGBLOB".into(),
        FerryType::Date => "DATE".into(),
        FerryType::Timestamp => "DATETIME(6)".into(),
        // MariaDB: an alias of LONGTEXT CHECK (json_valid(col))
        FerryType::Json => "JSON".into(),
    }
}

/// Whether a column of type `existing` can take values of type `incoming` without
/// losing anything (same type, JSON into text, an int64 or decimal into a decimal wide
/// enough).
pub fn compatible(existing: FerryType, incoming: FerryType) -> bool {
    match (existing, incoming) {
        (FerryType::Decimal { precision, scale }, FerryType::Int64) => {
            precision as i16 - scale as i16 >= 19
        }
        _ => ferry_sql::write::takes(existing, incoming),
    }
}

/// Which columns a read can go by: numbers, dates, timestamps and text; discovery offers
/// int64, timestamp, date and whole decimal (`BIGINT UNSIGNED` keys) columns.
pub(crate) struct Cursors;

impl ferry_sql::read::Cursors for Cursors {
    const CASE: Case = Case::Ignore;

    fn supported(&self, _: usize, ty: FerryType) -> Result<(), String> {
        let kinds = ["int64", "decimal", "float64", "date", "timestamp", "string"];
        ferry_sql::read::cursor_kinds(ty, &kinds)
    }

    fn offered(&self, _: usize, ty: FerryType) -> bool {
        ferry_sql::read::is_cursor_candidate(ty)
            || matches!(ty, FerryType::Decimal { scale: 0, .. })
    }
}

/// The Arrow schema of a table's columns, and its primary key.
pub(crate) fn table_schema(columns: &[ColumnInfo]) -> Schema {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| c.ty.field(c.name.clone(), c.nullable))
        .collect();
    Schema::new(fields)
}

// ----------------------------------------------------------------------------------------
// Dates: civil dates and days since 1970-01-01, without a calendar crate.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 as (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn valid_date(y: u16, m: u8, d: u8) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    d >= 1 && d <= days
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Microseconds since the epoch of a MySQL date-time value taken as UTC, `None` for a
/// zero or invalid date (`0000-00-00`, `2024-02-30`).
fn date_value_micros(v: &Value) -> Option<i64> {
    let Value::Date(y, mo, d, h, mi, s, us) = *v else {
        return None;
    };
    if !valid_date(y, mo, d) {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    Some(
        days * MICROS_PER_DAY
            + (h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1_000_000
            + us as i64,
    )
}

/// The MySQL date-time value of `us` microseconds since the epoch (UTC).
pub fn micros_to_value(us: i64) -> Option<Value> {
    let days = us.div_euclid(MICROS_PER_DAY);
    let rem = us.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let y = u16::try_from(y).ok().filter(|y| *y <= 9999)?;
    let secs = rem / 1_000_000;
    Some(Value::Date(
        y,
        m as u8,
        d as u8,
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
        (rem % 1_000_000) as u32,
    ))
}

/// Appends `'YYYY-MM-DD HH:MM:SS.ffffff'` for `us` microseconds since the epoch (UTC).
fn push_datetime(us: i64, out: &mut String) -> bool {
    let days = us.div_euclid(MICROS_PER_DAY);
    let rem = us.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return false;
    }
    let secs = rem / 1_000_000;
    let _ = write!(
        out,
        "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}'",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    );
    true
}

/// RFC 3339 in UTC with six fractional digits, for cursor states.
pub fn format_timestamp(us: i64) -> String {
    let days = us.div_euclid(MICROS_PER_DAY);
    let rem = us.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    )
}

/// `HH:MM:SS[.ffffff]` (hours may exceed 24, and be negative) for a `TIME` value.
fn format_time(neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32, out: &mut String) {
    let hours = days as u64 * 24 + h as u64;
    let _ = write!(
        out,
        "{}{hours:02}:{m:02}:{s:02}",
        if neg { "-" } else { "" }
    );
    if us > 0 {
        let _ = write!(out, ".{us:06}");
    }
}

/// A value as text, for string columns fed by other types and for messages.
fn value_text(v: &Value, out: &mut String) {
    match v {
        Value::NULL => out.push_str("NULL"),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Double(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::Date(y, mo, d, h, mi, s, us) => {
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
            if (*h, *mi, *s, *us) != (0, 0, 0, 0) {
                let _ = write!(out, " {h:02}:{mi:02}:{s:02}");
                if *us > 0 {
                    let _ = write!(out, ".{us:06}");
                }
            }
        }
        Value::Time(neg, days, h, m, s, us) => format_time(*neg, *days, *h, *m, *s, *us, out),
    }
}

/// A short description of a MySQL value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("`{}`", preview(s)),
            Err(_) => format!("{} bytes that are not UTF-8", b.len()),
        },
        other => {
            let mut s = String::new();
            value_text(other, &mut s);
            format!("`{s}`")
        }
    }
}

/// The JSON form of a value, for the raw text of a rejected row.
pub(crate) fn value_json(v: Option<&Value>) -> serde_json::Value {
    match v {
        None | Some(Value::NULL) => serde_json::Value::Null,
        Some(Value::Int(i)) => (*i).into(),
        Some(Value::UInt(u)) => (*u).into(),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned().into(),
        Some(other) => {
            let mut s = String::new();
            value_text(other, &mut s);
            s.into()
        }
    }
}

/// Whether `v` is a zero or otherwise impossible date (`0000-00-00`, `2024-00-10`).
fn is_zero_date(v: &Value) -> bool {
    matches!(v, Value::Date(y, m, d, ..) if !valid_date(*y, *m, *d))
}

// ----------------------------------------------------------------------------------------
// Reading: MySQL values into Arrow columns.

/// A column's builder: numbers, text, bytes and date-times go straight into Arrow
/// builders; decimals and JSON go through Ferry's shared text parsing.
fn column(ty: FerryType, capacity: usize) -> Col {
    match ty {
        FerryType::Decimal { .. } | FerryType::Json => Col::parsed(ty, capacity),
        _ => Col::native(ty, capacity),
    }
}

/// How MySQL rows go into a read's columns (see [`read_columns`]).
pub(crate) struct MyValues {
    nullable: Vec<bool>,
    scratch: String,
}

/// The column builders of a read, filled from MySQL rows by a [`Batcher`], which keeps
/// rows whole: for `schema` (every field a Ferry type) with room for `capacity` rows.
///
/// [`Batcher`]: ferry_core::batcher::Batcher
pub(crate) fn read_columns(schema: &SchemaRef, capacity: usize) -> ReadColumns<MyValues> {
    let nullable = schema.fields().iter().map(|f| f.is_nullable()).collect();
    let values = MyValues {
        nullable,
        scratch: String::new(),
    };
    ReadColumns::new(schema, capacity, values, column)
}

impl MyValues {
    /// Appends a non-NULL value; `bit` says the column is a `BIT(n)` (raw bytes).
    fn put(&mut self, col: &mut Col, ty: FerryType, v: &Value, bit: bool) -> Result<(), String> {
        let scratch = &mut self.scratch;
        let bad = |v: &Value| format!("expected {ty}, found {}", describe(v));
        match (col, v) {
            (Col::Bool(b), Value::Int(i)) => b.append_value(*i != 0),
            (Col::Bool(b), Value::UInt(u)) => b.append_value(*u != 0),
            (Col::Bool(b), Value::Bytes(x)) if bit => b.append_value(x.iter().any(|c| *c != 0)),
            (Col::Int(b), Value::Int(i)) => b.append_value(*i),
            (Col::Int(b), Value::UInt(u)) => b.append_value(i64::try_from(*u).map_err(|_| bad(v))?),
            (Col::Int(b), Value::Bytes(x)) if bit => {
                if x.len() > 8 || (x.len() == 8 && x[0] & 0x80 != 0) {
                    return Err(bad(v));
                }
                b.append_value(x.iter().fold(0i64, |acc, c| (acc << 8) | *c as i64))
            }
            (Col::Float(b), Value::Double(f)) => b.append_value(*f),
            // a FLOAT's shortest decimal form, so 0.1 reads as 0.1, not 0.10000000149…
            (Col::Float(b), Value::Float(f)) => {
                b.append_value(f.to_string().parse::<f64>().unwrap_or(*f as f64))
            }
            (Col::Float(b), Value::Int(i)) => b.append_value(*i as f64),
            (Col::Float(b), Value::UInt(u)) => b.append_value(*u as f64),
            (Col::Bin(b), Value::Bytes(x)) => b.append_value(x),
            (Col::Date(b), Value::Date(..)) => {
                let us = date_value_micros(v).ok_or_else(|| bad(v))?;
                b.append_value(i32::try_from(us.div_euclid(MICROS_PER_DAY)).map_err(|_| bad(v))?)
            }
            (Col::Ts(b), Value::Date(..)) => {
                b.append_value(date_value_micros(v).ok_or_else(|| bad(v))?)
            }
            (Col::Parsed(c), Value::Float(f)) => {
                scratch.clear();
                let _ = write!(scratch, "{f}");
                c.append_text(scratch)?
            }
            // text, parsed as the column's type
            (col, Value::Bytes(x)) => {
                if !col.append_text(utf8(x)?)? {
                    return Err(bad(v));
                }
            }
            // a number or date-time as text (decimals and JSON are parsed columns)
            (col @ (Col::Str(_) | Col::Bin(_)), other)
            | (col @ Col::Parsed(_), other @ (Value::Int(_) | Value::UInt(_) | Value::Double(_))) =>
            {
                scratch.clear();
                value_text(other, scratch);
                col.append_text(scratch)?;
            }
            (_, Value::NULL) => return Err("NULL reached a typed append".into()),
            _ => return Err(bad(v)),
        }
        Ok(())
    }
}

impl RowValues<Row> for MyValues {
    fn check(&self, row: &Row, columns: usize) -> Result<(), String> {
        if row.len() == columns {
            return Ok(());
        }
        Err(format!(
            "the query returned {} columns, the stream's schema has {}",
            row.len(),
            columns
        ))
    }

    /// A zero date (`0000-00-00`) reads as NULL where the column allows NULL.
    fn append(
        &mut self,
        col: &mut Col,
        ty: FerryType,
        row: &Row,
        i: usize,
    ) -> Result<bool, String> {
        let v = row.as_ref(i).unwrap_or(&Value::NULL);
        if *v == Value::NULL || (is_zero_date(v) && self.nullable[i]) {
            return Ok(false);
        }
        let bit = matches!(v, Value::Bytes(_))
            && row.columns_ref()[i].column_type() == ColumnType::MYSQL_TYPE_BIT;
        self.put(col, ty, v, bit)?;
        Ok(true)
    }

    fn json(&self, row: &Row, i: usize) -> serde_json::Value {
        value_json(row.as_ref(i))
    }
}

/// The cursor value of the last row read, compared as the server's `=` does for values
/// of one column, saved as text of the column's type `ty`.
pub(crate) struct LastCursor {
    ty: FerryType,
    value: Option<Value>,
}

impl LastCursor {
    /// A cursor of a column of type `ty`, nothing kept yet.
    pub fn new(ty: FerryType) -> LastCursor {
        LastCursor { ty, value: None }
    }
}

impl Cursor for LastCursor {
    /// The value as text; `None` for NULL.
    fn saved(&self) -> ferry_core::Result<Option<serde_json::Value>> {
        let Some(v) = &self.value else {
            return Ok(None);
        };
        let text = match (v, self.ty) {
            (Value::NULL, _) => return Ok(None),
            (Value::Int(i), _) => i.to_string(),
            (Value::UInt(u), _) => u.to_string(),
            (Value::Double(f), _) => format!("{f:?}"),
            // the exact value the server compares, not the shortest decimal form
            (Value::Float(f), _) => format!("{:?}", *f as f64),
            // a zero date (`0000-00-00`) reads as NULL, and saves no state either
            (Value::Date(_, m, d, ..), _) if *m == 0 || *d == 0 => return Ok(None),
            (Value::Date(y, m, d, ..), FerryType::Date) => format!("{y:04}-{m:02}-{d:02}"),
            (Value::Date(y, m, d, h, mi, s, us), _) => {
                format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
            }
            (Value::Bytes(b), _) => String::from_utf8_lossy(b).into_owned(),
            (Value::Time(..), _) => return Ok(None),
        };
        Ok(Some(text.into()))
    }
}

impl CursorOf<Row> for LastCursor {
    fn keep(&mut self, row: &Row, column: usize) -> ferry_core::Result<()> {
        self.value = row.as_ref(column).cloned();
        Ok(())
    }

    fn same(&self, row: &Row, column: usize) -> ferry_core::Result<bool> {
        Ok(self.value.as_ref() == row.as_ref(column))
    }
}

// ----------------------------------------------------------------------------------------
// Writing: Arrow values as SQL literals.

/// Appends `bytes` escaped for a single-quoted string literal (the session runs without
/// `NO_BACKSLASH_ESCAPES`, which the sink makes sure of).
pub(crate) fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
}

/// Appends row `row` of `column` as a SQL literal; the error says why a value cannot be
/// stored.
pub(crate) fn push_literal(
    column: &TypedColumn<'_>,
    row: usize,
    out: &mut String,
) -> Result<(), String> {
    if column.is_null(row) {
        out.push_str("NULL");
        return Ok(());
    }
    match *column {
        TypedColumn::Bool(a) => out.push_str(if a.value(row) { "1" } else { "0" }),
        TypedColumn::Int(a) => {
            let _ = write!(out, "{}", a.value(row));
        }
        TypedColumn::Float(a) => {
            let f = a.value(row);
            if !f.is_finite() {
                return Err(format!(
                    "{f} cannot be stored: MySQL's DOUBLE has no NaN or infinity"
                ));
            }
            // `{:?}` is the shortest exact form, with an exponent where needed (1e300)
            let _ = write!(out, "{f:?}");
        }
        TypedColumn::Decimal(a, _) => out.push_str(&a.value_as_string(row)),
        TypedColumn::Text(a) => {
            out.push('\'');
            escape_into(a.value(row), out);
            out.push('\'');
        }
        TypedColumn::Binary(a) => {
            out.push_str("X'");
            for b in a.value(row) {
                let _ = write!(out, "{b:02X}");
            }
            out.push('\'');
        }
        TypedColumn::Date(a) => {
            let (y, m, d) = civil_from_days(a.value(row) as i64);
            if !(1000..=9999).contains(&y) {
                return Err(format!(
                    "date {y:04}-{m:02}-{d:02} is outside MySQL's DATE range (1000-01-01 … 9999-12-31)"
                ));
            }
            let _ = write!(out, "'{y:04}-{m:02}-{d:02}'");
        }
        TypedColumn::Timestamp(a) => {
            let us = a.value(row);
            if !push_datetime(us, out) {
                return Err(format!(
                    "timestamp {} is outside MySQL's DATETIME range (years 1000 … 9999)",
                    format_timestamp(us)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(precision: u8, scale: i8) -> FerryType {
        FerryType::Decimal { precision, scale }
    }

    #[test]
    fn civil_dates_round_trip() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2024, 2, 29),
            (1969, 12, 31),
            (9999, 12, 31),
            (1000, 1, 1),
        ] {
            let days = days_from_civil(y, m, d);
            assert_eq!(civil_from_days(days), (y, m, d));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
    }

    #[test]
    fn date_times_convert_both_ways() {
        let us = 1_714_564_800_250_000; // 2024-05-01T12:00:00.25Z
        let v = micros_to_value(us).unwrap();
        assert_eq!(v, Value::Date(2024, 5, 1, 12, 0, 0, 250_000));
        assert_eq!(date_value_micros(&v), Some(us));
        assert_eq!(format_timestamp(us), "2024-05-01T12:00:00.250000Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
        let mut s = String::new();
        assert!(push_datetime(-1, &mut s));
        assert_eq!(s, "'1969-12-31 23:59:59.999999'");
        assert!(is_zero_date(&Value::Date(0, 0, 0, 0, 0, 0, 0)));
        assert!(is_zero_date(&Value::Date(2024, 2, 30, 0, 0, 0, 0)));
        let mut t = String::new();
        format_time(true, 1, 2, 3, 4, 5, &mut t);
        assert_eq!(t, "-26:03:04.000005");
    }

    #[test]
    fn schema_types() {
        let cases = [
            ("tinyint", "tinyint(1)", None, None, false, FerryType::Bool),
            ("tinyint", "tinyint(4)", None, None, false, FerryType::Int64),
            ("tinyint", "tinyint", None, None, false, FerryType::Int64),
            ("bit", "bit(1)", None, None, false, FerryType::Bool),
            ("bit", "bit(8)", None, None, false, FerryType::Int64),
            (
                "int",
                "int(10) unsigned",
                None,
                None,
                false,
                FerryType::Int64,
            ),
            ("bigint", "bigint(20) unsigned", None, None, false, d(20, 0)),
            ("bigint", "bigint", None, None, false, FerryType::Int64),
            (
                "decimal",
                "decimal(12,2)",
                Some(12),
                Some(2),
                false,
                d(12, 2),
            ),
            (
                "decimal",
                "decimal(65,30)",
                Some(65),
                Some(30),
                false,
                FerryType::String,
            ),
            ("double", "double", None, None, false, FerryType::Float64),
            (
                "varchar",
                "varchar(20)",
                None,
                None,
                false,
                FerryType::String,
            ),
            (
                "enum",
                "enum('a','b')",
                None,
                None,
                false,
                FerryType::String,
            ),
            ("longtext", "longtext", None, None, true, FerryType::Json),
            ("longtext", "longtext", None, None, false, FerryType::String),
            ("json", "json", None, None, false, FerryType::Json),
            (
                "varbinary",
                "varbinary(16)",
                None,
                None,
                false,
                FerryType::Binary,
            ),
            (
                "datetime",
                "datetime(6)",
                None,
                None,
                false,
                FerryType::Timestamp,
            ),
            (
                "timestamp",
                "timestamp",
                None,
                None,
                false,
                FerryType::Timestamp,
            ),
            ("date", "date", None, None, false, FerryType::Date),
            ("time", "time", None, None, false, FerryType::String),
            ("year", "year(4)", None, None, false, FerryType::Int64),
            ("point", "point", None, None, false, FerryType::Binary),
        ];
        for (dt, ct, p, s, json, want) in cases {
            assert_eq!(column_type_from_schema(dt, ct, p, s, json), want, "{ct}");
        }
    }

    #[test]
    fn literals_escape() {
        let mut s = String::new();
        escape_into("a'b\\c\n\0🚢", &mut s);
        assert_eq!(s, "a\\'b\\\\c\\n\\0🚢");
    }

    #[test]
    fn compatibility() {
        assert!(compatible(FerryType::String, FerryType::Json));
        assert!(compatible(d(20, 0), FerryType::Int64));
        assert!(!compatible(d(18, 0), FerryType::Int64));
        assert!(compatible(d(12, 2), d(10, 2)));
        assert!(!compatible(FerryType::Int64, FerryType::Float64));
    }
}
