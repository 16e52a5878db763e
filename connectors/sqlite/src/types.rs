//! Type mapping between Ferry's nine types and SQLite, both ways.
//!
//! SQLite stores five storage classes (NULL, INTEGER, REAL, TEXT, BLOB) and keeps the
//! *declared* type of a column only as text that decides its affinity. Ferry writes
//! declared types that say which Ferry type a column holds and that make SQLite keep
//! the value exactly:
//!
//! | Ferry type     | declared type       | stored as                                   |
//! |----------------|---------------------|---------------------------------------------|
//! | `bool`         | `BOOLEAN`           | INTEGER 0 / 1                               |
//! | `int64`        | `BIGINT`            | INTEGER (a single-column int64 primary key is declared `INTEGER`: it becomes the rowid) |
//! | `float64`      | `DOUBLE`            | REAL (NaN as the text `NaN`, which SQLite would turn into NULL) |
//! | `decimal(p,s)` | `DECIMAL_TEXT(p,s)` | TEXT, exact (`DECIMAL(p,s)` would have NUMERIC affinity, which turns `-9999999999999999.9999` into a rounded number) |
//! | `string`       | `TEXT`              | TEXT                                        |
//! | `binary`       | `BLOB`              | BLOB                                        |
//! | `date`         | `DATE`              | TEXT `YYYY-MM-DD`                           |
//! | `timestamp`    | `TIMESTAMPTZ`       | TEXT RFC 3339 UTC, always 6 fractional digits, so text order is time order |
//! | `json`         | `JSON_TEXT`         | TEXT, exact (`JSON` would have NUMERIC affinity: the document `1.50` would become `1.5`) |
//!
//! Reading maps declared types back, including those other tools write (see
//! [`ferry_type`]); a column without a declared type reads as `string`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::cursor::{Case, Cursor, CursorOf};
use ferry_core::typed::TypedColumn;
use ferry_core::types::{DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE};
use ferry_core::values::{days_to_date, preview, write_text};
use ferry_core::FerryType;
use ferry_sql::read::{utf8, Col, ReadColumns, RowValues};
use rusqlite::types::{Null, ValueRef};
use rusqlite::{Row, Statement};

use crate::core::SqlResultExt;

/// The declared type Ferry gives a column of type `ty`.
pub fn declared_type(ty: FerryType) -> String {
    match ty {
        FerryType::Bool => "BOOLEAN".into(),
        FerryType::Int64 => "BIGINT".into(),
        FerryType::Float64 => "DOUBLE".into(),
        FerryType::Decimal { precision, scale } => format!("DECIMAL_TEXT({precision},{scale})"),
        FerryType::String => "TEXT".into(),
        FerryType::Binary => "BLOB".into(),
        FerryType::Date => "DATE".into(),
        FerryType::Timestamp => "TIMESTAMPTZ".into(),
        FerryType::Json => "JSON_TEXT".into(),
    }
}

/// The Ferry type of a column declared `declared` (case-insensitive).
///
/// Besides Ferry's own names it knows what other tools write: `INTEGER`, `INT`,
/// `SMALLINT` … → int64; `REAL`, `FLOAT`, `DOUBLE PRECISION` → float64;
/// `VARCHAR(n)`, `CHAR(n)`, `CLOB` … → string; `DECIMAL(p,s)` / `NUMERIC(p,s)` →
/// decimal (without precision: decimal(38,9)); `DATETIME`, `TIMESTAMP` → timestamp;
/// `JSON`, `JSONB` → json; `BYTEA`, `VARBINARY` → binary. Other names follow SQLite's
/// affinity rules (contains `INT` → int64, `CHAR`/`CLOB`/`TEXT` → string, `BLOB` →
/// binary, `REAL`/`FLOA`/`DOUB` → float64); anything else, and no declared type, is string.
pub fn ferry_type(declared: &str) -> FerryType {
    let upper = declared.trim().to_ascii_uppercase();
    let (base, args) = match upper.find('(') {
        Some(i) => (
            &upper[..i],
            Some(upper[i + 1..].trim_end().trim_end_matches(')')),
        ),
        None => (upper.as_str(), None),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    match base.as_str() {
        "" => FerryType::String,
        "BOOLEAN" | "BOOL" => FerryType::Bool,
        "BIGINT" | "INTEGER" | "INT" | "INT2" | "INT4" | "INT8" | "SMALLINT" | "TINYINT"
        | "MEDIUMINT" | "UNSIGNED BIG INT" | "SERIAL" | "BIGSERIAL" => FerryType::Int64,
        "DOUBLE" | "DOUBLE PRECISION" | "REAL" | "FLOAT" | "FLOAT4" | "FLOAT8" => {
            FerryType::Float64
        }
        "DECIMAL" | "NUMERIC" | "DECIMAL_TEXT" => decimal(args),
        "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" | "VARYING CHARACTER"
        | "NCHAR" | "NATIVE CHARACTER" | "NVARCHAR" | "CLOB" | "STRING" | "UUID" => {
            FerryType::String
        }
        "BLOB" | "BYTEA" | "BINARY" | "VARBINARY" => FerryType::Binary,
        "DATE" => FerryType::Date,
        "TIMESTAMPTZ"
        | "TIMESTAMP"
        | "DATETIME"
        | "TIMESTAMP WITH TIME ZONE"
        | "TIMESTAMP WITHOUT TIME ZONE"
        | "DATETIME2"
        | "DATETIMEOFFSET" => FerryType::Timestamp,
        "JSON" | "JSONB" | "JSON_TEXT" => FerryType::Json,
        other if other.contains("INT") => FerryType::Int64,
        other if ["CHAR", "CLOB", "TEXT"].iter().any(|s| other.contains(s)) => FerryType::String,
        other if other.contains("BLOB") => FerryType::Binary,
        other if ["REAL", "FLOA", "DOUB"].iter().any(|s| other.contains(s)) => FerryType::Float64,
        _ => FerryType::String,
    }
}

fn decimal(args: Option<&str>) -> FerryType {
    let Some(args) = args else {
        return FerryType::Decimal {
            precision: DEFAULT_DECIMAL_PRECISION,
            scale: DEFAULT_DECIMAL_SCALE,
        };
    };
    let mut parts = args.split(',').map(|p| p.trim().parse::<u32>().ok());
    let (p, s) = match (parts.next().flatten(), parts.next()) {
        (Some(p), None) => (p, 0),
        (Some(p), Some(Some(s))) if parts.next().is_none() => (p, s),
        _ => return FerryType::String,
    };
    if (1..=38).contains(&p) && s <= p {
        FerryType::Decimal {
            precision: p as u8,
            scale: s as i8,
        }
    } else {
        // wider than Arrow's Decimal128: keep the exact text
        FerryType::String
    }
}

/// Whether a column of type `existing` can take values of type `incoming` without
/// losing anything (same type, JSON into text, or a decimal that fits).
pub fn compatible(existing: FerryType, incoming: FerryType) -> bool {
    ferry_sql::write::takes(existing, incoming)
}

/// Which columns a read can go by: numbers, dates, timestamps and text, ordered the way
/// their values are (numbers numerically, dates and timestamps and text as text).
pub(crate) struct Cursors;

impl ferry_sql::read::Cursors for Cursors {
    const CASE: Case = Case::Ignore;

    fn supported(&self, _: usize, ty: FerryType) -> Result<(), String> {
        let kinds = ["int64", "float64", "date", "timestamp", "string"];
        ferry_sql::read::cursor_kinds(ty, &kinds)
    }
}

/// Appends `us` (microseconds since the epoch) as RFC 3339 UTC with exactly six
/// fractional digits (`2024-05-01T12:00:00.250000Z`): fixed width, so comparing the
/// text compares the instants, which incremental reads by a timestamp cursor rely on.
pub fn format_timestamp(us: i64, out: &mut String) {
    const DAY: i64 = 86_400_000_000;
    let days = us.div_euclid(DAY);
    let rem = us.rem_euclid(DAY);
    let (secs, frac) = (rem / 1_000_000, rem % 1_000_000);
    match i32::try_from(days).ok().and_then(days_to_date) {
        Some(d) => {
            let _ = write!(
                out,
                "{d}T{:02}:{:02}:{:02}.{frac:06}Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
        }
        None => out.push_str(&ferry_core::values::format_timestamp_micros(us)),
    }
}

// ----------------------------------------------------------------------------------------
// Reading: SQLite values into Arrow columns.

/// A column's builder: numbers, text and bytes go straight into Arrow builders; decimals,
/// dates, timestamps and JSON go through Ferry's shared text parsing, so they mean the same
/// as in every other connector.
fn column(ty: FerryType, capacity: usize) -> Col {
    match ty {
        FerryType::Bool
        | FerryType::Int64
        | FerryType::Float64
        | FerryType::String
        | FerryType::Binary => Col::native(ty, capacity),
        _ => Col::parsed(ty, capacity),
    }
}

/// How SQLite rows go into a read's columns (see [`read_columns`]).
pub(crate) struct LiteValues {
    scratch: String,
}

/// The column builders of a read, filled from SQLite rows by a [`Batcher`], which keeps
/// rows whole: for `schema` (every field a Ferry type) with room for `capacity` rows.
///
/// [`Batcher`]: ferry_core::batcher::Batcher
pub(crate) fn read_columns(schema: &SchemaRef, capacity: usize) -> ReadColumns<LiteValues> {
    let values = LiteValues {
        scratch: String::new(),
    };
    ReadColumns::new(schema, capacity, values, column)
}

impl LiteValues {
    /// Appends a non-NULL value, or appends nothing and says what was wrong.
    fn put(&mut self, col: &mut Col, ty: FerryType, v: ValueRef<'_>) -> Result<(), String> {
        let scratch = &mut self.scratch;
        let bad = |v: ValueRef<'_>| format!("expected {ty}, found {}", describe(v));
        match (col, v) {
            (Col::Bool(b), ValueRef::Integer(i)) => b.append_value(i != 0),
            (Col::Bool(b), ValueRef::Real(f)) => b.append_value(f != 0.0),
            (Col::Int(b), ValueRef::Integer(i)) => b.append_value(i),
            // an integral REAL within i64 (2^63 itself is not)
            (Col::Int(b), ValueRef::Real(f))
                if f.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) =>
            {
                b.append_value(f as i64)
            }
            (Col::Float(b), ValueRef::Real(f)) => b.append_value(f),
            (Col::Float(b), ValueRef::Integer(i)) => b.append_value(i as f64),
            (Col::Bin(b), ValueRef::Blob(x) | ValueRef::Text(x)) => b.append_value(x),
            (Col::Str(b), ValueRef::Blob(t)) => b.append_value(utf8(t)?),
            (col, ValueRef::Text(t)) => {
                if !col.append_text(utf8(t)?)? {
                    return Err(bad(v));
                }
            }
            (col @ (Col::Str(_) | Col::Parsed(_)), ValueRef::Integer(i))
                if matches!(
                    ty,
                    FerryType::String | FerryType::Decimal { .. } | FerryType::Json
                ) =>
            {
                scratch.clear();
                let _ = write!(scratch, "{i}");
                col.append_text(scratch)?;
            }
            (Col::Str(b), ValueRef::Real(f)) => {
                scratch.clear();
                let _ = write!(scratch, "{f:?}");
                b.append_value(&*scratch)
            }
            (Col::Parsed(c), ValueRef::Real(f))
                if f.is_finite() && matches!(ty, FerryType::Decimal { .. } | FerryType::Json) =>
            {
                scratch.clear();
                // decimals take the plain digits; JSON takes the shortest exact form
                if ty == FerryType::Json {
                    let _ = write!(scratch, "{f:?}");
                } else {
                    let _ = write!(scratch, "{f}");
                }
                c.append_text(scratch)?
            }
            (_, ValueRef::Null) => return Err("NULL reached a typed append".into()),
            _ => return Err(bad(v)),
        }
        Ok(())
    }
}

/// A short description of a SQLite value for error messages: `integer 42`, `text `abc``.
pub(crate) fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("integer {i}"),
        ValueRef::Real(f) => format!("real {f:?}"),
        ValueRef::Text(t) => format!("text `{}`", preview(&String::from_utf8_lossy(t))),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// The JSON form of a SQLite value, for the raw text of a rejected row.
pub(crate) fn value_json(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| format!("{f:?}").into()),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
    }
}

impl RowValues<Row<'_>> for LiteValues {
    fn append(
        &mut self,
        col: &mut Col,
        ty: FerryType,
        row: &Row<'_>,
        i: usize,
    ) -> Result<bool, String> {
        let v = row
            .get_ref(i)
            .map_err(|e| format!("cannot read the value: {e}"))?;
        if v == ValueRef::Null {
            return Ok(false);
        }
        self.put(col, ty, v)?;
        Ok(true)
    }

    fn json(&self, row: &Row<'_>, i: usize) -> serde_json::Value {
        row.get_ref(i).map(value_json).unwrap_or_default()
    }
}

/// The cursor value of the last row read, kept without allocating per row, compared
/// and saved as SQLite's `>` sees it (numbers by value, text byte by byte).
pub(crate) struct LastCursor {
    file: PathBuf,
    value: Cur,
}

#[derive(Default)]
enum Cur {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl LastCursor {
    /// A cursor of a read of `file` (for errors), nothing kept yet.
    pub fn new(file: &Path) -> LastCursor {
        LastCursor {
            file: file.to_path_buf(),
            value: Cur::Null,
        }
    }
}

impl Cursor for LastCursor {
    fn saved(&self) -> ferry_core::Result<Option<serde_json::Value>> {
        let text = match &self.value {
            Cur::Null => return Ok(None),
            Cur::Int(i) => i.to_string(),
            Cur::Real(f) => format!("{f:?}"),
            Cur::Text(s) => s.clone(),
            Cur::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        };
        Ok(Some(text.into()))
    }
}

impl CursorOf<Row<'_>> for LastCursor {
    fn keep(&mut self, row: &Row<'_>, column: usize) -> ferry_core::Result<()> {
        let v = row.get_ref(column).sql(&self.file)?;
        self.value = match (std::mem::take(&mut self.value), v) {
            (_, ValueRef::Null) => Cur::Null,
            (_, ValueRef::Integer(i)) => Cur::Int(i),
            (_, ValueRef::Real(f)) => Cur::Real(f),
            (Cur::Text(mut s), ValueRef::Text(t)) => {
                s.clear();
                s.push_str(&String::from_utf8_lossy(t));
                Cur::Text(s)
            }
            (_, ValueRef::Text(t)) => Cur::Text(String::from_utf8_lossy(t).into_owned()),
            (_, ValueRef::Blob(b)) => Cur::Blob(b.to_vec()),
        };
        Ok(())
    }

    fn same(&self, row: &Row<'_>, column: usize) -> ferry_core::Result<bool> {
        Ok(match (&self.value, row.get_ref(column).sql(&self.file)?) {
            (Cur::Null, ValueRef::Null) => true,
            (Cur::Int(a), ValueRef::Integer(b)) => *a == b,
            (Cur::Int(a), ValueRef::Real(b)) => (*a as f64) == b,
            (Cur::Real(a), ValueRef::Integer(b)) => *a == b as f64,
            (Cur::Real(a), ValueRef::Real(b)) => *a == b,
            (Cur::Text(a), ValueRef::Text(b)) => a.as_bytes() == b,
            (Cur::Blob(a), ValueRef::Blob(b)) => a.as_slice() == b,
            _ => false,
        })
    }
}

// ----------------------------------------------------------------------------------------
// Writing: Arrow values bound to statement parameters.

/// Binds row `row` of `column` to parameter `index` (one-based) of `stmt`.
#[inline]
pub(crate) fn bind(
    column: &TypedColumn<'_>,
    stmt: &mut Statement<'_>,
    index: usize,
    row: usize,
    scratch: &mut String,
) -> rusqlite::Result<()> {
    if column.is_null(row) {
        return stmt.raw_bind_parameter(index, Null);
    }
    match *column {
        TypedColumn::Bool(a) => stmt.raw_bind_parameter(index, a.value(row) as i64),
        TypedColumn::Int(a) => stmt.raw_bind_parameter(index, a.value(row)),
        TypedColumn::Float(a) => {
            let f = a.value(row);
            if f.is_nan() {
                // SQLite stores a NaN REAL as NULL; the text survives a REAL column
                stmt.raw_bind_parameter(index, "NaN")
            } else {
                stmt.raw_bind_parameter(index, f)
            }
        }
        TypedColumn::Text(a) => stmt.raw_bind_parameter(index, a.value(row)),
        TypedColumn::Binary(a) => stmt.raw_bind_parameter(index, a.value(row)),
        TypedColumn::Timestamp(a) => {
            scratch.clear();
            format_timestamp(a.value(row), scratch);
            stmt.raw_bind_parameter(index, scratch.as_str())
        }
        // decimal and date: their exact text forms
        TypedColumn::Decimal(a, _) => stmt.raw_bind_parameter(index, a.value_as_string(row)),
        TypedColumn::Date(a) => {
            scratch.clear();
            write_text(a, FerryType::Date, row, scratch);
            stmt.raw_bind_parameter(index, scratch.as_str())
        }
    }
}

// ----------------------------------------------------------------------------------------
// Schemas.

/// One column of a table or view, as `pragma table_info` describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub declared: String,
    pub not_null: bool,
    pub has_default: bool,
    /// One-based position in the primary key, 0 when not part of it.
    pub pk: usize,
}

/// The Arrow schema of a table's columns (primary key in its metadata), and its key.
pub(crate) fn table_schema(columns: &[ColumnInfo]) -> (Schema, Vec<String>) {
    let mut pk: Vec<&ColumnInfo> = columns.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let key: Vec<String> = pk.iter().map(|c| c.name.clone()).collect();
    // an INTEGER PRIMARY KEY is the rowid: never NULL, even without NOT NULL
    let rowid_alias = pk.len() == 1 && pk[0].declared.trim().eq_ignore_ascii_case("INTEGER");
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let not_null = c.not_null || (rowid_alias && c.pk == 1);
            ferry_type(&c.declared).field(c.name.clone(), !not_null)
        })
        .collect();
    (Schema::new(fields), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_round_trip() {
        // every type Ferry names, a decimal of two sizes
        let decimals = ["decimal(20,4)", "decimal(38,0)"];
        let plain = FerryType::NAMES
            .iter()
            .filter(|n| !n.starts_with("decimal"));
        for name in plain.chain(&decimals) {
            let t = FerryType::parse(name).unwrap();
            assert_eq!(ferry_type(&declared_type(t)), t, "{name}");
        }
    }

    #[test]
    fn other_tools_declared_types() {
        let d = |p, s| FerryType::Decimal {
            precision: p,
            scale: s,
        };
        let cases = [
            ("INTEGER", FerryType::Int64),
            ("int", FerryType::Int64),
            ("unsigned big int", FerryType::Int64),
            ("REAL", FerryType::Float64),
            ("float", FerryType::Float64),
            ("double precision", FerryType::Float64),
            ("VARCHAR(255)", FerryType::String),
            ("character varying(10)", FerryType::String),
            ("NCHAR(5)", FerryType::String),
            ("CLOB", FerryType::String),
            ("NUMERIC(10,2)", d(10, 2)),
            ("decimal(12)", d(12, 0)),
            ("DECIMAL", d(38, 9)),
            ("NUMERIC(60,2)", FerryType::String),
            ("DATETIME", FerryType::Timestamp),
            ("timestamp", FerryType::Timestamp),
            ("DATE", FerryType::Date),
            ("JSON", FerryType::Json),
            ("BLOB", FerryType::Binary),
            ("", FerryType::String),
            ("BOOLEAN", FerryType::Bool),
            ("MYINTEGERTYPE", FerryType::Int64),
            ("LONGTEXT", FerryType::String),
            ("MONEY", FerryType::String),
        ];
        for (decl, want) in cases {
            assert_eq!(ferry_type(decl), want, "{decl}");
        }
    }

    #[test]
    fn timestamps_are_fixed_width_and_ordered() {
        let mut a = String::new();
        format_timestamp(1_714_564_800_250_000, &mut a);
        assert_eq!(a, "2024-05-01T12:00:00.250000Z");
        let mut b = String::new();
        format_timestamp(-1, &mut b);
        assert_eq!(b, "1969-12-31T23:59:59.999999Z");
        let mut c = String::new();
        format_timestamp(1_714_564_800_000_000, &mut c);
        assert!(c < a, "{c} sorts before {a}");
        assert_eq!(
            ferry_core::values::parse_timestamp_micros(&a),
            Some(1_714_564_800_250_000)
        );
    }

    #[test]
    fn compatibility() {
        let d = |p, s| FerryType::Decimal {
            precision: p,
            scale: s,
        };
        assert!(compatible(FerryType::String, FerryType::Json));
        assert!(!compatible(FerryType::Json, FerryType::String));
        assert!(compatible(d(12, 2), d(10, 2)));
        assert!(!compatible(d(10, 2), d(10, 3)));
        assert!(!compatible(FerryType::Int64, FerryType::Float64));
    }
}
