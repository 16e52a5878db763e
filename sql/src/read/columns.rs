//! The column builders of a read, written once: one Arrow builder per column of the
//! stream's schema, filled by a [`Batcher`] from a database's rows. The database says only
//! how one of its values goes into a column ([`RowValues`]).
//!
//! [`Batcher`]: ferry_core::batcher::Batcher

use std::sync::Arc;

use ferry_core::arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use ferry_core::arrow_array::ArrayRef;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::batcher::{Appender, Columns};
use ferry_core::decimal::parse_decimal;
use ferry_core::values::{parse_bool, parse_date, parse_timestamp_micros, ColumnBuilder};
use ferry_core::FerryType;

/// One column being read: an Arrow builder of the column's type, or Ferry's shared text
/// parsing ([`Col::Parsed`]) for values a database hands over as text.
pub enum Col {
    /// bool.
    Bool(BooleanBuilder),
    /// int64.
    Int(Int64Builder),
    /// float64.
    Float(Float64Builder),
    /// decimal, with its precision and scale.
    Dec(Decimal128Builder, u8, i8),
    /// string (and JSON kept as text).
    Str(StringBuilder),
    /// binary.
    Bin(BinaryBuilder),
    /// date.
    Date(Date32Builder),
    /// timestamp (UTC).
    Ts(TimestampMicrosecondBuilder),
    /// Any type, parsed from text as every connector parses it.
    Parsed(ColumnBuilder),
}

impl Col {
    /// An Arrow builder of `ty` for `capacity` rows (JSON as text).
    pub fn native(ty: FerryType, capacity: usize) -> Col {
        match ty {
            FerryType::Bool => Col::Bool(BooleanBuilder::with_capacity(capacity)),
            FerryType::Int64 => Col::Int(Int64Builder::with_capacity(capacity)),
            FerryType::Float64 => Col::Float(Float64Builder::with_capacity(capacity)),
            FerryType::Decimal { precision, scale } => {
                Col::Dec(Decimal128Builder::with_capacity(capacity), precision, scale)
            }
            FerryType::String | FerryType::Json => {
                Col::Str(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            FerryType::Binary => Col::Bin(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            FerryType::Date => Col::Date(Date32Builder::with_capacity(capacity)),
            FerryType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::with_capacity(capacity)),
        }
    }

    /// A builder that parses text into `ty`.
    pub fn parsed(ty: FerryType, capacity: usize) -> Col {
        Col::Parsed(ColumnBuilder::new(ty, capacity))
    }

    /// Appends `text` read as the column's type, the way every connector reads the text a
    /// database sends for a typed column: `Ok(false)`, appending nothing, where it is no
    /// value of the type (the caller says what it found); a parsed column's own error.
    pub fn append_text(&mut self, text: &str) -> Result<bool, String> {
        let ok = match self {
            Col::Bool(b) => parse_bool(text).map(|v| b.append_value(v)),
            Col::Int(b) => text.trim().parse().ok().map(|v| b.append_value(v)),
            Col::Float(b) => text.trim().parse().ok().map(|v| b.append_value(v)),
            Col::Dec(b, p, s) => parse_decimal(text, *p, *s).map(|v| b.append_value(v)),
            Col::Str(b) => {
                b.append_value(text);
                Some(())
            }
            Col::Bin(b) => {
                b.append_value(text);
                Some(())
            }
            Col::Date(b) => parse_date(text).map(|v| b.append_value(v)),
            Col::Ts(b) => parse_timestamp_micros(text).map(|v| b.append_value(v)),
            Col::Parsed(c) => c.append_text(text).map(Some)?,
        };
        Ok(ok.is_some())
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        match self {
            Col::Bool(b) => b.append_null(),
            Col::Int(b) => b.append_null(),
            Col::Float(b) => b.append_null(),
            Col::Dec(b, ..) => b.append_null(),
            Col::Str(b) => b.append_null(),
            Col::Bin(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b) => b.append_null(),
            Col::Parsed(b) => b.append_null(),
        }
    }

    /// The column so far; the builder starts over, empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Int(b) => Arc::new(b.finish()),
            Col::Float(b) => Arc::new(b.finish()),
            Col::Dec(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("a Ferry decimal type"),
            ),
            Col::Str(b) => Arc::new(b.finish()),
            Col::Bin(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
            Col::Parsed(b) => b.finish(),
        }
    }
}

/// `bytes` as text, or the error of a value that is not UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "text is not valid UTF-8".to_string())
}

/// How a database's rows `R` go into columns: the one part of a read's builders that
/// knows the database.
pub trait RowValues<R: ?Sized> {
    /// Appends value `i` of `row` to `col` (of type `ty`): `Ok(false)` where it is NULL
    /// (the caller appends the NULL), `Err` says what was wrong and appends nothing.
    fn append(&mut self, col: &mut Col, ty: FerryType, row: &R, i: usize) -> Result<bool, String>;

    /// Value `i` of `row` as JSON, for the raw text of a rejected row.
    fn json(&self, row: &R, i: usize) -> serde_json::Value;

    /// Whether `row` fits `columns` columns before any value is read (default: yes).
    fn check(&self, _row: &R, _columns: usize) -> Result<(), String> {
        Ok(())
    }
}

/// The column builders of a read, one per field of the stream's schema, filled from rows
/// through `values`.
pub struct ReadColumns<V> {
    types: Vec<FerryType>,
    cols: Vec<Col>,
    values: V,
}

impl<V> ReadColumns<V> {
    /// Columns for `schema` (a field that is no Ferry type reads as string) with room
    /// for `capacity` rows, each a builder `col` makes for its type.
    pub fn new(
        schema: &SchemaRef,
        capacity: usize,
        values: V,
        col: impl Fn(FerryType, usize) -> Col,
    ) -> ReadColumns<V> {
        let types = FerryType::of_each(schema, FerryType::String);
        let cols = types.iter().map(|t| col(*t, capacity)).collect();
        ReadColumns {
            types,
            cols,
            values,
        }
    }
}

impl<V> Columns for ReadColumns<V> {
    fn append_null(&mut self, column: usize) {
        self.cols[column].append_null();
    }

    fn finish(&mut self, column: usize) -> ArrayRef {
        self.cols[column].finish()
    }
}

impl<R: ?Sized, V: RowValues<R>> Appender<R> for ReadColumns<V> {
    fn append(&mut self, row: &R, i: usize) -> Result<bool, String> {
        self.values.append(&mut self.cols[i], self.types[i], row, i)
    }

    fn json(&self, row: &R, i: usize) -> serde_json::Value {
        self.values.json(row, i)
    }

    fn check(&self, row: &R) -> Result<(), String> {
        self.values.check(row, self.cols.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::arrow_array::cast::AsArray;
    use ferry_core::arrow_array::types::{Date32Type, Int64Type};
    use ferry_core::arrow_array::Array;
    use ferry_core::arrow_schema::Schema;
    use ferry_core::batcher::Batcher;

    /// Rows of text; `-` is NULL.
    struct Texts;

    impl RowValues<[&str]> for Texts {
        fn append(
            &mut self,
            col: &mut Col,
            _ty: FerryType,
            row: &[&str],
            i: usize,
        ) -> Result<bool, String> {
            match (col, row[i]) {
                (_, "-") => return Ok(false),
                (Col::Int(b), v) => b.append_value(v.parse().map_err(|_| format!("`{v}`"))?),
                (Col::Parsed(c), v) => c.append_text(v)?,
                _ => return Err("unexpected column".into()),
            }
            Ok(true)
        }

        fn json(&self, row: &[&str], i: usize) -> serde_json::Value {
            row[i].into()
        }

        fn check(&self, row: &[&str], columns: usize) -> Result<(), String> {
            (row.len() == columns)
                .then_some(())
                .ok_or_else(|| format!("{} values", row.len()))
        }
    }

    #[test]
    fn builders_of_each_kind_fill_a_batch() {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("n", true),
            FerryType::Date.field("d", true),
        ]));
        let cols = ReadColumns::new(&schema, 4, Texts, |ty, cap| match ty {
            FerryType::Date => Col::parsed(ty, cap),
            _ => Col::native(ty, cap),
        });
        let mut batcher = Batcher::new(schema, 4, cols);
        batcher.push(&["1", "2024-05-01"][..]).unwrap();
        batcher.push(&["-", "-"][..]).unwrap();
        let (bad, good) = batcher.push(&["x", "2024-05-01"][..]).unwrap_err();
        assert_eq!((bad.column, bad.message.as_str()), (0, "column `n`: `x`"));
        let good = good.expect("the rows before the bad one");
        let n = good.column(0).as_primitive::<Int64Type>();
        assert_eq!((good.num_rows(), n.value(0), n.is_null(1)), (2, 1, true));
        let d = good.column(1).as_primitive::<Date32Type>();
        assert_eq!((d.value(0), d.is_null(1)), (19_844, true));
        let (bad, _) = batcher.push(&["3"][..]).unwrap_err();
        assert_eq!(bad.message, "column `n`: 1 values");
    }
}
