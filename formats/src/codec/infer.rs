//! Schema inference: the narrowest Ferry type of each column, from a sample.
//!
//! Only the first `sample_rows` records are read (constant memory, whatever the input's
//! size); the caller reopens the input to read it in full. Every inferred column is
//! nullable. A column gets the first of these types that every non-NULL sampled value
//! fits, else `string`:
//!
//! | type        | values                                                            |
//! |-------------|-------------------------------------------------------------------|
//! | `bool`      | `true` / `false` in any case (JSON booleans)                      |
//! | `int64`     | `-12`, `0`, `42` (no leading zeros: `007` stays text); JSON integers |
//! | `float64`   | `1.5`, `-2e10`, and integers mixed with them; JSON numbers         |
//! | `date`      | `2024-05-01`                                                      |
//! | `timestamp` | RFC 3339 or `2024-05-01 12:00:00[.fff]`, and dates mixed with them |
//! | `json`      | JSON Lines only: any column holding an object or array            |
//!
//! In JSON Lines, strings are only ever inferred as `date`, `timestamp` or `string`: a
//! quoted `"42"` stays text. A column whose sampled values are all NULL is `string`.
//! Values that do not parse later are rejected records, so a sample that misleads shows
//! up as rejections; the override map (`column → type`) always wins.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};

use super::csv::{column_names, positional_names, CsvOptions, Records};
use super::encoding::{DecodeReader, Encoding};
use super::number::NumberFormat;
use super::{strip_bom, Format, MAX_RECORD_BYTES};
use ferry_core::types::FerryType;
use ferry_core::values::{parse_date, parse_timestamp_micros};
use ferry_core::{Error, Result};

/// Records sampled by default.
pub const DEFAULT_SAMPLE_ROWS: usize = 1000;

/// How to infer a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct InferOptions {
    /// Records to sample from the start (default [`DEFAULT_SAMPLE_ROWS`]).
    pub sample_rows: usize,
    /// Column types that win over inference, in order. With CSV, naming a column the
    /// header lacks is an error; with JSON Lines such a column is added at the end.
    pub overrides: Vec<(String, FerryType)>,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            sample_rows: DEFAULT_SAMPLE_ROWS,
            overrides: Vec::new(),
        }
    }
}

/// Parses a `column → type name` map (as written in config: `{ id = "int64" }`) into
/// overrides; an unknown type name is a config error listing the valid ones.
pub fn parse_type_overrides<'a>(
    columns: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(String, FerryType)>> {
    columns
        .into_iter()
        .map(|(name, ty)| {
            let t = FerryType::parse(ty).ok_or_else(|| {
                Error::config(format!(
                    "column `{name}`: unknown type `{ty}` (valid: {})",
                    FerryType::NAMES.join(", ")
                ))
            })?;
            Ok((name.to_string(), t))
        })
        .collect()
}

/// Infers the schema of `input` in `format` (`csv` is used for CSV only).
pub fn infer<R: Read>(
    format: Format,
    input: R,
    csv: &CsvOptions,
    options: &InferOptions,
) -> Result<SchemaRef> {
    match format {
        Format::Csv => infer_csv(input, csv, options),
        Format::Jsonl => infer_jsonl_in(input, csv.encoding, options),
        Format::Parquet => Err(super::parquet_needs_random_access()),
        Format::Excel => Err(super::excel_needs_random_access()),
    }
}

/// Infers the schema of CSV `input` from its header (or `column_N` names) and the first
/// `sample_rows` records. Records with the wrong number of fields or invalid UTF-8 are
/// skipped (the reader rejects them later).
pub fn infer_csv<R: Read>(input: R, csv: &CsvOptions, options: &InferOptions) -> Result<SchemaRef> {
    csv.validate()?;
    let mut records = Records::new(input, csv);
    let mut names: Option<Vec<String>> = None;
    if csv.has_header && records.read()? {
        if let Some((i, _)) = records.invalid_utf8() {
            return Err(records.undecodable_header(i));
        }
        names = Some(column_names((0..records.len()).map(|i| records.text(i))));
    }
    let mut guesses: Vec<Guess> = names
        .as_ref()
        .map(|n| vec![Guess::default(); n.len()])
        .unwrap_or_default();
    let mut sampled = 0;
    let mut plain = String::new();
    while sampled < options.sample_rows && records.read()? {
        if names.is_none() {
            names = Some(positional_names(records.len()));
            guesses = vec![Guess::default(); records.len()];
        }
        if records.len() != guesses.len() || records.invalid_utf8().is_some() {
            continue;
        }
        sampled += 1;
        for (i, g) in guesses.iter_mut().enumerate() {
            let s = records.text(i);
            if s != csv.null_text {
                g.see(kinds_in(s, &csv.numbers, &mut plain));
            }
        }
    }
    let names = names.unwrap_or_default();
    let mut columns: Vec<(String, FerryType)> = names
        .into_iter()
        .zip(guesses.iter().map(Guess::resolve))
        .collect();
    let has_columns = !columns.is_empty();
    apply_overrides(&mut columns, &options.overrides, !has_columns)?;
    Ok(to_schema(columns))
}

/// Infers the schema of JSON Lines `input` from the first `sample_rows` objects: columns
/// in the order their keys first appear. Lines that are not JSON objects are skipped.
pub fn infer_jsonl<R: Read>(input: R, options: &InferOptions) -> Result<SchemaRef> {
    infer_jsonl_in(input, None, options)
}

/// [`infer_jsonl`] of input in `encoding`.
fn infer_jsonl_in<R: Read>(
    input: R,
    encoding: Option<&'static Encoding>,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let mut input = BufReader::new(DecodeReader::new(input, encoding));
    let mut line = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut guesses: Vec<Guess> = Vec::new();
    let (mut sampled, mut first) = (0, true);
    while sampled < options.sample_rows {
        line.clear();
        let limit = MAX_RECORD_BYTES as u64 + 2;
        let n = (&mut input)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| super::io_error(e, "cannot read JSON Lines input"))?;
        if n == 0 {
            break;
        }
        if n as u64 == limit && line.last() != Some(&b'\n') {
            return Err(Error::data(format!(
                "a line is longer than {} MiB: is this really JSON Lines (one object per line)?",
                MAX_RECORD_BYTES >> 20
            )));
        }
        let bytes = if first { strip_bom(&line) } else { &line[..] };
        first = false;
        let Ok(Ordered(fields)) = serde_json::from_slice::<Ordered>(bytes) else {
            continue;
        };
        sampled += 1;
        for (k, v) in fields {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                names.push(k);
                guesses.push(Guess::default());
                names.len() - 1
            });
            guesses[i].see_json(&v);
        }
    }
    let mut columns: Vec<(String, FerryType)> = names
        .into_iter()
        .zip(guesses.iter().map(Guess::resolve))
        .collect();
    apply_overrides(&mut columns, &options.overrides, true)?;
    Ok(to_schema(columns))
}

/// Infers a schema from column `names` and rows of text cells (`None`: NULL), as CSV
/// would: for readers that turn their cells into text first (Excel).
pub(crate) fn infer_text_rows(
    names: Vec<String>,
    rows: impl Iterator<Item = Vec<Option<String>>>,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let mut guesses = vec![Guess::default(); names.len()];
    for row in rows {
        for (g, cell) in guesses.iter_mut().zip(&row) {
            if let Some(s) = cell.as_deref().filter(|s| !s.is_empty()) {
                g.see(text_kinds(s));
            }
        }
    }
    let mut columns: Vec<(String, FerryType)> = names
        .into_iter()
        .zip(guesses.iter().map(Guess::resolve))
        .collect();
    let may_add = columns.is_empty();
    apply_overrides(&mut columns, &options.overrides, may_add)?;
    Ok(to_schema(columns))
}

/// Applies overrides; a name not among the columns is added when `may_add`, else an error
/// (with the nearest existing name when it looks like a typo).
pub(crate) fn apply_overrides(
    columns: &mut Vec<(String, FerryType)>,
    overrides: &[(String, FerryType)],
    may_add: bool,
) -> Result<()> {
    let existing: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    for (name, ty) in overrides {
        if let Some(c) = columns.iter_mut().find(|(n, _)| n == name) {
            c.1 = *ty;
            continue;
        }
        let near = ferry_core::suggest::nearest(name, existing.iter().map(String::as_str));
        if may_add && near.is_none() {
            columns.push((name.clone(), *ty));
            continue;
        }
        let mut msg =
            format!("`columns` sets the type of `{name}`, which is not a column of the file");
        if let Some(best) = near {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        msg.push_str(&format!(" (columns: {})", existing.join(", ")));
        return Err(Error::config(msg));
    }
    Ok(())
}

fn to_schema(columns: Vec<(String, FerryType)>) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .into_iter()
            .map(|(n, t)| t.field(n, true))
            .collect::<Vec<_>>(),
    ))
}

const BOOL: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 4;
const DATE: u8 = 8;
const TIMESTAMP: u8 = 16;
const ALL: u8 = BOOL | INT | FLOAT | DATE | TIMESTAMP;

/// What one column's sampled values allow.
#[derive(Debug, Clone, Copy)]
struct Guess {
    /// Types every value seen so far fits.
    possible: u8,
    /// Whether a non-NULL value was seen.
    seen: bool,
    /// Whether an object or array was seen (JSON Lines).
    nested: bool,
}

impl Default for Guess {
    fn default() -> Self {
        Guess {
            possible: ALL,
            seen: false,
            nested: false,
        }
    }
}

impl Guess {
    fn see(&mut self, kinds: u8) {
        self.seen = true;
        self.possible &= kinds;
    }

    fn see_json(&mut self, v: &serde_json::Value) {
        use serde_json::Value as J;
        match v {
            J::Null => {}
            J::Bool(_) => self.see(BOOL),
            J::Number(n) if n.is_i64() => self.see(INT | FLOAT),
            J::Number(_) => self.see(FLOAT),
            J::String(s) => self.see(text_kinds(s) & (DATE | TIMESTAMP)),
            J::Array(_) | J::Object(_) => {
                self.seen = true;
                self.nested = true;
            }
        }
    }

    fn resolve(&self) -> FerryType {
        if self.nested {
            return FerryType::Json;
        }
        if !self.seen {
            return FerryType::String;
        }
        for (bit, ty) in [
            (BOOL, FerryType::Bool),
            (INT, FerryType::Int64),
            (FLOAT, FerryType::Float64),
            (DATE, FerryType::Date),
            (TIMESTAMP, FerryType::Timestamp),
        ] {
            if self.possible & bit != 0 {
                return ty;
            }
        }
        FerryType::String
    }
}

/// The types a CSV value fits when numbers are written as `numbers` says (`1.234,56`).
fn kinds_in(s: &str, numbers: &NumberFormat, plain: &mut String) -> u8 {
    if numbers.is_plain() {
        return text_kinds(s);
    }
    let other = text_kinds(s) & !(INT | FLOAT);
    if numbers.normalize(s, plain) {
        other | (text_kinds(plain) & (INT | FLOAT))
    } else {
        other
    }
}

/// The types a text value fits (see the module docs); 0 for plain text.
fn text_kinds(s: &str) -> u8 {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return BOOL;
    }
    let b = s.as_bytes();
    let Some(&first) = b.first() else { return 0 };
    if first == b'-' || first == b'.' || first.is_ascii_digit() {
        let digits = b.strip_prefix(b"-").unwrap_or(b);
        // a leading zero followed by a digit is an identifier (`007`, `0123.5`), not a number
        let leading_zero = digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit();
        if !leading_zero
            && !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && s.parse::<i64>().is_ok()
        {
            return INT | FLOAT;
        }
        if !leading_zero
            && digits.iter().any(u8::is_ascii_digit)
            && b.iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
            && s.parse::<f64>().is_ok()
        {
            return FLOAT;
        }
    }
    if b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        if b.len() == 10 && parse_date(s).is_some() {
            return DATE | TIMESTAMP;
        }
        if parse_timestamp_micros(s).is_some() {
            return TIMESTAMP;
        }
    }
    0
}

/// A JSON object's entries in the order they appear (a `Map` would sort them).
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(schema: &Schema) -> Vec<(String, String)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), FerryType::of(f).unwrap().to_string()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn csv_narrowest_types() {
        let data = "\u{feff}id,flag,ratio,day,at,zip,name,empty,mixed\n\
                    1,true,1,2024-01-01,2024-01-01T10:00:00Z,007,a,,1\n\
                    -2,FALSE,2.5,2024-02-29,2024-01-01,010,b,,x\n\
                    3,,1e3,,2024-01-01 10:00:00.5,123,\"c\nd\",,\n";
        let s = infer_csv(
            data.as_bytes(),
            &CsvOptions::default(),
            &InferOptions::default(),
        )
        .unwrap();
        assert_eq!(
            types(&s),
            pairs(&[
                ("id", "int64"),
                ("flag", "bool"),
                ("ratio", "float64"),
                ("day", "date"),
                ("at", "timestamp"),
                ("zip", "string"),
                ("name", "string"),
                ("empty", "string"),
                ("mixed", "string"),
            ])
        );
        assert!(s.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn csv_overrides_win_and_typos_are_named() {
        let data = b"id,amount\n1,2.50\n";
        let overrides =
            parse_type_overrides([("amount", "decimal(18,2)"), ("id", "string")]).unwrap();
        let opts = InferOptions {
            overrides,
            ..Default::default()
        };
        let s = infer_csv(&data[..], &CsvOptions::default(), &opts).unwrap();
        assert_eq!(
            types(&s),
            pairs(&[("id", "string"), ("amount", "decimal(18,2)")])
        );
        let opts = InferOptions {
            overrides: parse_type_overrides([("amont", "int64")]).unwrap(),
            ..Default::default()
        };
        let err = infer_csv(&data[..], &CsvOptions::default(), &opts).unwrap_err();
        assert!(err.to_string().contains("did you mean `amount`"), "{err}");
        let err = parse_type_overrides([("x", "varchar")]).unwrap_err();
        assert!(
            err.to_string().contains("unknown type `varchar`") && err.to_string().contains("int64"),
            "{err}"
        );
    }

    #[test]
    fn csv_only_samples_the_first_rows_and_skips_bad_ones() {
        let data = b"a,b\n1,2\n1,2,3\n\xff,4\n2,3\nx,y\n";
        let opts = InferOptions {
            sample_rows: 2,
            ..Default::default()
        };
        let s = infer_csv(&data[..], &CsvOptions::default(), &opts).unwrap();
        assert_eq!(types(&s), pairs(&[("a", "int64"), ("b", "int64")]));
    }

    #[test]
    fn csv_local_numbers_encoding_and_dialect() {
        let data = b"Bericht\nid;name;amount;day;code\n1;M\xfcller;1.234,56;2024-01-02;01.02.2024\n2;B;7;2024-01-03;1\nSumme;;1.241,56;;\n";
        let csv = super::super::csv::german_export(1);
        let s = infer_csv(&data[..], &csv, &InferOptions::default()).unwrap();
        assert_eq!(
            types(&s),
            pairs(&[
                ("id", "int64"),
                ("name", "string"),
                ("amount", "float64"),
                ("day", "date"),
                ("code", "string"),
            ])
        );
        // with plain numbers `1.234,56` is text; the footer would make `id` text too
        let plain = CsvOptions {
            numbers: NumberFormat::default(),
            skip_footer_rows: 0,
            ..csv.clone()
        };
        let s = infer_csv(&data[..], &plain, &InferOptions::default()).unwrap();
        assert_eq!(
            types(&s)[..3],
            pairs(&[("id", "string"), ("name", "string"), ("amount", "string")])
        );
        // a cp1252 header without `encoding` names the likely one
        let err = infer_csv(
            &b"id;Stra\xdfe\n1;2\n"[..],
            &CsvOptions {
                sniff_delimiter: true,
                ..Default::default()
            },
            &InferOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("field 2") && err.contains("set encoding = \"windows-1252\""),
            "{err}"
        );
    }

    #[test]
    fn jsonl_in_utf16_and_cp1252() {
        let text = "{\"id\":1,\"name\":\"Zoë\"}\n";
        let mut data = vec![0xFE, 0xFF];
        data.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let s = infer_jsonl(&data[..], &InferOptions::default()).unwrap();
        assert_eq!(types(&s), pairs(&[("id", "int64"), ("name", "string")]));
        let csv = CsvOptions {
            encoding: Some(encoding_rs::WINDOWS_1252),
            ..Default::default()
        };
        let cp = b"{\"M\xfcller\":1}\n";
        let s = infer(Format::Jsonl, &cp[..], &csv, &InferOptions::default()).unwrap();
        assert_eq!(types(&s), pairs(&[("Müller", "int64")]));
    }

    #[test]
    fn csv_without_header_names_columns_by_position() {
        let opts = CsvOptions {
            has_header: false,
            ..Default::default()
        };
        let s = infer_csv(&b"1,x\n2,y\n"[..], &opts, &InferOptions::default()).unwrap();
        assert_eq!(
            types(&s),
            pairs(&[("column_1", "int64"), ("column_2", "string")])
        );
        let s = infer_csv(&b""[..], &CsvOptions::default(), &InferOptions::default()).unwrap();
        assert_eq!(s.fields().len(), 0);
    }

    #[test]
    fn jsonl_types_key_order_and_overrides() {
        let data = "{\"id\":1,\"tags\":[\"a\"],\"price\":1,\"ok\":true,\"when\":\"2024-01-01T00:00:00Z\",\"code\":\"42\"}\n\
                    \n\
                    not json\n\
                    {\"id\":2,\"tags\":null,\"price\":2.5,\"ok\":null,\"day\":\"2024-01-02\",\"meta\":{\"k\":1},\"code\":\"43\"}\n";
        let opts = InferOptions {
            overrides: parse_type_overrides([("extra", "int64"), ("price", "decimal(10,2)")])
                .unwrap(),
            ..Default::default()
        };
        let s = infer_jsonl(data.as_bytes(), &opts).unwrap();
        assert_eq!(
            types(&s),
            pairs(&[
                ("id", "int64"),
                ("tags", "json"),
                ("price", "decimal(10,2)"),
                ("ok", "bool"),
                ("when", "timestamp"),
                ("code", "string"),
                ("day", "date"),
                ("meta", "json"),
                ("extra", "int64"),
            ])
        );
        let s = infer_jsonl(data.as_bytes(), &InferOptions::default()).unwrap();
        assert_eq!(
            FerryType::of(s.field_with_name("price").unwrap()),
            Some(FerryType::Float64)
        );
    }

    #[test]
    fn text_kinds_are_strict() {
        assert_eq!(text_kinds("0"), INT | FLOAT);
        assert_eq!(text_kinds("-0.5"), FLOAT);
        assert_eq!(text_kinds("007"), 0);
        assert_eq!(text_kinds("inf"), 0);
        assert_eq!(text_kinds("NaN"), 0);
        assert_eq!(text_kinds("1,5"), 0);
        assert_eq!(text_kinds("99999999999999999999"), FLOAT);
        assert_eq!(text_kinds("yes"), 0);
        assert_eq!(text_kinds("2024-13-01"), 0);
    }
}
