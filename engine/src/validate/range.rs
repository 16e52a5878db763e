//! `range`: a number lies within [min, max].

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};

use super::columns::{each_text, type_of};
use super::Fails;
use ferry_core::types::FerryType;

/// Pushes `(row, message)` for each number of column `c` outside [`min`, `max`] (text that
/// parses as a number counts too).
pub(super) fn scan(
    batch: &RecordBatch,
    c: usize,
    min: Option<f64>,
    max: Option<f64>,
    buf: &mut String,
    out: &mut Fails,
) {
    let bad = |v: f64| min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m);
    let msg = |t: String| format!("{t} is outside [{}, {}]", fmt_bound(min), fmt_bound(max));
    let column = batch.column(c);
    match type_of(batch.schema_ref(), c) {
        FerryType::Int64 => {
            let a = column.as_primitive::<Int64Type>();
            for (r, v) in a.values().iter().enumerate() {
                if bad(*v as f64) && a.is_valid(r) {
                    out.push((r, msg(v.to_string())));
                }
            }
        }
        FerryType::Float64 => {
            let a = column.as_primitive::<Float64Type>();
            for (r, v) in a.values().iter().enumerate() {
                if bad(*v) && a.is_valid(r) {
                    out.push((r, msg(v.to_string())));
                }
            }
        }
        FerryType::Decimal { scale, .. } => {
            let a = column.as_primitive::<Decimal128Type>();
            let div = 10f64.powi(scale as i32);
            for (r, v) in a.values().iter().enumerate() {
                if bad(*v as f64 / div) && a.is_valid(r) {
                    out.push((r, msg(a.value_as_string(r))));
                }
            }
        }
        _ => each_text(batch, c, buf, |r, t| {
            if t.parse::<f64>().is_ok_and(bad) {
                out.push((r, msg(t.to_string())));
            }
        }),
    }
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}
