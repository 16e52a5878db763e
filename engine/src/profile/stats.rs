//! One column's figures, gathered value by value in bounded memory: type, nulls, distinct
//! values, min/max, top values, lengths, shapes, and what it appears to hold.

use std::fmt::Write;

use arrow_array::{Array, ArrayRef};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field};
use chrono::NaiveDate;
use ferry_core::FerryType;
use serde::Serialize;

use super::detect::{Detector, Finding};
use super::shape::shape;
use super::sketch::{Distinct, TopValues};

/// Top values shown per column.
const TOP: usize = 5;
/// Counters kept for the top values (Misra–Gries); with no eviction the counts are exact,
/// so a column with at most this many distinct values gets its complete list.
const TOP_COUNTERS: usize = 64;

/// How a column's values compare and which figures apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Text,
    Integer,
    Number,
    Date,
    Timestamp,
    Other,
}

impl Family {
    fn of(t: &DataType) -> Family {
        use DataType::*;
        match t {
            Utf8 | LargeUtf8 | Utf8View => Family::Text,
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Family::Integer,
            Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
            | Decimal256(..) => Family::Number,
            Date32 | Date64 => Family::Date,
            Timestamp(..) => Family::Timestamp,
            _ => Family::Other,
        }
    }
}

/// The figures of one column so far.
pub struct ColumnStats {
    name: String,
    type_name: String,
    family: Family,
    rows: u64,
    nulls: u64,
    distinct: Distinct,
    top: TopValues,
    shapes: TopValues,
    one_shape: Option<String>,
    shapes_differ: bool,
    lengths: Option<(usize, usize, u64)>,
    min: Option<(f64, String)>,
    max: Option<(f64, String)>,
    detector: Option<Detector>,
}

impl ColumnStats {
    /// Empty figures for `field`; dates of birth are aged at `today`.
    pub fn new(field: &Field, today: NaiveDate) -> Self {
        let family = Family::of(field.data_type());
        let type_name = FerryType::of(field)
            .map(|t| t.to_string())
            .unwrap_or_else(|| field.data_type().to_string());
        let detects = matches!(family, Family::Text | Family::Integer | Family::Date);
        ColumnStats {
            name: field.name().clone(),
            type_name,
            family,
            rows: 0,
            nulls: 0,
            distinct: Distinct::default(),
            top: TopValues::new(TOP_COUNTERS),
            shapes: TopValues::new(16),
            one_shape: None,
            shapes_differ: false,
            lengths: None,
            min: None,
            max: None,
            detector: detects.then(|| Detector::new(field.name(), today)),
        }
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds every value of `array` (one batch of this column).
    pub fn add(&mut self, array: &ArrayRef) {
        use arrow_array::cast::AsArray;
        match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().for_each(|v| self.value(v)),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(|v| self.value(v)),
            DataType::Utf8View => array.as_string_view().iter().for_each(|v| self.value(v)),
            _ => {
                // a zoned timestamp prints only with arrow's time-zone tables (not built
                // in): Ferry's timestamps are UTC, so print them as UTC wall time
                let array = match array.data_type() {
                    DataType::Timestamp(unit, Some(_)) => {
                        arrow_cast::cast(array, &DataType::Timestamp(*unit, None))
                            .unwrap_or_else(|_| array.clone())
                    }
                    _ => array.clone(),
                };
                let options = FormatOptions::default();
                let Ok(f) = ArrayFormatter::try_new(array.as_ref(), &options) else {
                    // a type arrow cannot print: count rows and nulls only
                    self.rows += array.len() as u64;
                    self.nulls += array.null_count() as u64;
                    return;
                };
                let mut text = String::new();
                for i in 0..array.len() {
                    if array.is_null(i) {
                        self.value(None);
                    } else {
                        text.clear();
                        let _ = write!(text, "{}", f.value(i));
                        self.value(Some(&text));
                    }
                }
            }
        }
    }

    fn value(&mut self, v: Option<&str>) {
        self.rows += 1;
        let Some(text) = v else {
            self.nulls += 1;
            return;
        };
        self.distinct.add(text);
        self.top.add(text);
        if let Some(d) = &mut self.detector {
            d.observe(text);
        }
        match self.family {
            Family::Integer | Family::Number => {
                if let Ok(n) = text.parse::<f64>() {
                    if self.min.as_ref().is_none_or(|(m, _)| n < *m) {
                        self.min = Some((n, text.to_string()));
                    }
                    if self.max.as_ref().is_none_or(|(m, _)| n > *m) {
                        self.max = Some((n, text.to_string()));
                    }
                }
            }
            Family::Text | Family::Date | Family::Timestamp => {
                if self.min.as_ref().is_none_or(|(_, m)| text < m.as_str()) {
                    self.min = Some((0.0, text.to_string()));
                }
                if self.max.as_ref().is_none_or(|(_, m)| text > m.as_str()) {
                    self.max = Some((0.0, text.to_string()));
                }
            }
            Family::Other => {}
        }
        if self.family == Family::Text {
            let n = text.chars().count();
            let (lo, hi, sum) = self.lengths.unwrap_or((n, n, 0));
            self.lengths = Some((lo.min(n), hi.max(n), sum + n as u64));
            let s = shape(text);
            match &self.one_shape {
                None if !self.shapes_differ => self.one_shape = Some(s.clone()),
                Some(first) if *first != s => {
                    self.one_shape = None;
                    self.shapes_differ = true;
                }
                _ => {}
            }
            self.shapes.add(&s);
        }
    }

    /// The figures as reported. `sampled`: the rows were a sample (evidence says so).
    /// A column that appears to hold personal data has its values (top values, min, max)
    /// left out: the profile is printed and saved, the values are not needed to act on it.
    pub fn finish(&self, sampled: bool) -> ColumnProfile {
        let findings = self
            .detector
            .as_ref()
            .map(|d| d.findings(sampled))
            .unwrap_or_default();
        let personal = !findings.is_empty();
        let (distinct, distinct_exact) = self.distinct.count();
        let values = self.rows - self.nulls;
        ColumnProfile {
            name: self.name.clone(),
            r#type: self.type_name.clone(),
            rows: self.rows,
            nulls: self.nulls,
            null_share: if self.rows == 0 {
                0.0
            } else {
                self.nulls as f64 / self.rows as f64
            },
            distinct,
            distinct_exact,
            numeric: matches!(self.family, Family::Integer | Family::Number),
            min: (!personal)
                .then(|| self.min.as_ref().map(|m| m.1.clone()))
                .flatten(),
            max: (!personal)
                .then(|| self.max.as_ref().map(|m| m.1.clone()))
                .flatten(),
            length: self.lengths.map(|(min, max, sum)| Lengths {
                min,
                max,
                mean: if values == 0 {
                    0.0
                } else {
                    sum as f64 / values as f64
                },
            }),
            top_values: if personal {
                Vec::new()
            } else {
                self.top
                    .top(TOP)
                    .into_iter()
                    .map(|(value, count)| Counted { value, count })
                    .collect()
            },
            all_values: (!personal && self.top.exact()).then(|| {
                self.top
                    .top(TOP_COUNTERS)
                    .into_iter()
                    .map(|(v, _)| v)
                    .collect()
            }),
            shapes: self
                .shapes
                .top(3)
                .into_iter()
                .map(|(value, count)| Counted { value, count })
                .collect(),
            one_shape: self.one_shape.clone(),
            redacted: personal,
            findings,
        }
    }
}

/// A value (or shape) and how often it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    /// The value or shape (cut at 64 characters).
    pub value: String,
    /// How often it was seen.
    pub count: u64,
}

/// Text lengths in characters.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lengths {
    /// Shortest.
    pub min: usize,
    /// Longest.
    pub max: usize,
    /// Mean.
    pub mean: f64,
}

/// One column's profile, as printed and as `--json` writes it (see docs/profile.md).
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    /// The column's name.
    pub name: String,
    /// The Ferry type (`string`, `int64`, `decimal(12,2)` …), else Arrow's name.
    pub r#type: String,
    /// Rows read.
    pub rows: u64,
    /// NULLs among them.
    pub nulls: u64,
    /// `nulls / rows`.
    pub null_share: f64,
    /// Distinct non-null values: exact up to 65,536, then a HyperLogLog estimate.
    pub distinct: u64,
    /// Whether `distinct` is exact.
    pub distinct_exact: bool,
    /// An integer or other number column (min/max compare as numbers).
    pub numeric: bool,
    /// The smallest value's text (`None` when hidden or there is no value).
    pub min: Option<String>,
    /// The largest value's text.
    pub max: Option<String>,
    /// Text columns only.
    pub length: Option<Lengths>,
    /// The most frequent values (counts exact while at most 64 distinct values were seen).
    pub top_values: Vec<Counted>,
    /// Every distinct value, when at most 64 were seen (used for `allowed` checks).
    #[serde(skip)]
    pub all_values: Option<Vec<String>>,
    /// The most frequent shapes (text columns).
    pub shapes: Vec<Counted>,
    /// The one shape every value has, if they all have the same.
    pub one_shape: Option<String>,
    /// Values left out because the column appears to hold personal data.
    pub redacted: bool,
    /// What it appears to hold, most values first.
    pub findings: Vec<Finding>,
}
