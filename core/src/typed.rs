//! One column of a batch, typed once per batch so that each value is read without a
//! lookup: what the SQL writers bind, encode or spell as literals.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};

use crate::types::FerryType;

/// A column as the array of its Ferry type.
#[derive(Debug, Clone, Copy)]
pub enum TypedColumn<'a> {
    /// `bool`
    Bool(&'a BooleanArray),
    /// `int64`
    Int(&'a Int64Array),
    /// `float64`
    Float(&'a Float64Array),
    /// `decimal(p,s)`, with its scale `s`.
    Decimal(&'a Decimal128Array, i8),
    /// `string` and `json`
    Text(&'a StringArray),
    /// `binary`
    Binary(&'a BinaryArray),
    /// `date`: days since 1970-01-01.
    Date(&'a Date32Array),
    /// `timestamp`: microseconds since 1970-01-01T00:00:00Z.
    Timestamp(&'a TimestampMicrosecondArray),
}

impl<'a> TypedColumn<'a> {
    /// `array`, whose Ferry type is `ty`. Panics when the array is not of that type (the
    /// schema was checked before).
    pub fn new(array: &'a dyn Array, ty: FerryType) -> TypedColumn<'a> {
        match ty {
            FerryType::Bool => TypedColumn::Bool(array.as_boolean()),
            FerryType::Int64 => TypedColumn::Int(array.as_primitive::<Int64Type>()),
            FerryType::Float64 => TypedColumn::Float(array.as_primitive::<Float64Type>()),
            FerryType::Decimal { scale, .. } => {
                TypedColumn::Decimal(array.as_primitive::<Decimal128Type>(), scale)
            }
            FerryType::String | FerryType::Json => TypedColumn::Text(array.as_string::<i32>()),
            FerryType::Binary => TypedColumn::Binary(array.as_binary::<i32>()),
            FerryType::Date => TypedColumn::Date(array.as_primitive::<Date32Type>()),
            FerryType::Timestamp => {
                TypedColumn::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
            }
        }
    }

    /// Every column of `batch`, typed by its schema. Panics on a column of no Ferry type
    /// (the schema was checked before).
    pub fn of_batch(batch: &'a RecordBatch) -> Vec<TypedColumn<'a>> {
        batch
            .columns()
            .iter()
            .zip(batch.schema_ref().fields())
            .map(|(a, f)| {
                let ty = FerryType::of(f).expect("a checked schema has Ferry types");
                TypedColumn::new(a.as_ref(), ty)
            })
            .collect()
    }

    /// The column as an untyped array.
    pub fn array(&self) -> &'a dyn Array {
        match *self {
            TypedColumn::Bool(a) => a,
            TypedColumn::Int(a) => a,
            TypedColumn::Float(a) => a,
            TypedColumn::Decimal(a, _) => a,
            TypedColumn::Text(a) => a,
            TypedColumn::Binary(a) => a,
            TypedColumn::Date(a) => a,
            TypedColumn::Timestamp(a) => a,
        }
    }

    /// Whether row `row` is NULL.
    pub fn is_null(&self, row: usize) -> bool {
        self.array().is_null(row)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::ArrayRef;

    use super::*;

    #[test]
    fn columns_take_their_ferry_types() {
        let amounts = Decimal128Array::from(vec![None::<i128>])
            .with_precision_and_scale(12, 2)
            .unwrap();
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![7])) as ArrayRef),
            ("amount", Arc::new(amounts) as ArrayRef),
        ])
        .unwrap();
        let cols = TypedColumn::of_batch(&batch);
        assert!(matches!(cols[0], TypedColumn::Int(a) if a.value(0) == 7));
        assert!(matches!(cols[1], TypedColumn::Decimal(_, 2)));
        assert!(cols[1].is_null(0) && !cols[0].is_null(0));
        let text = StringArray::from(vec!["{}"]);
        let doc = TypedColumn::new(&text, FerryType::Json);
        assert!(matches!(doc, TypedColumn::Text(a) if a.value(0) == "{}"));
    }
}
