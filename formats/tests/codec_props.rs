//! Property tests of the shared codecs: any batch of the nine Ferry types, written and read
//! back through every format × compression × encryption with its schema declared, comes
//! back equal; and reading with schema inference never panics and keeps every row.
//!
//! Bounded (a few dozen cases per property, batches of up to 24 rows) so CI stays fast;
//! `PROPTEST_CASES=2000 cargo test -p ferry-core --test codec_props --release` searches
//! harder. A failure prints the shrunk batch; keep it as a unit test when you fix it.
//!
//! What a format cannot represent, and so what the comparison allows, per format:
//! - CSV: NULL is written as the null text (empty by default), so an empty string or an
//!   empty binary value reads back as NULL (documented in `codec::csv`).
//! - JSON columns are compared as JSON values (key order and whitespace are not kept by
//!   JSON Lines, which embeds the document), and in JSON Lines the document `null` reads
//!   back as NULL (documented in `codec::jsonl`).

use std::io::{Cursor, Read, Write};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use ferry_core::{FerryType, Message};
use ferry_formats::age::{decrypt_reader, encrypt_writer, Identities, Recipients};
use ferry_formats::codec::{
    decompress, infer, CompressWriter, Compression, CsvOptions, Format, FormatReader, FormatWriter,
    InferOptions, SeekChunks,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Generators

/// A text value that stresses the text formats: delimiters, quotes, line breaks, control
/// characters, unicode, leading/trailing spaces, and words a reader might take for
/// something else.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => proptest::collection::vec(
            prop_oneof![
                Just(","), Just("\""), Just("\n"), Just("\r\n"), Just("\r"), Just(" "),
                Just("\t"), Just("\u{0}"), Just("\u{1b}"), Just("'"), Just("\\"),
                Just("é"), Just("日本"), Just("🚢"), Just("\u{feff}"), Just("a"), Just("{"),
                Just("}"), Just("null"), Just("NULL"), Just("true"), Just("1"),
            ],
            0..8
        )
        .prop_map(|parts| parts.concat()),
        1 => Just(String::new()),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => any::<i64>(),
        1 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), Just(1)],
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        1 => prop_oneof![
            Just(f64::MAX), Just(f64::MIN), Just(f64::MIN_POSITIVE), Just(-0.0), Just(0.0),
            Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN), Just(5e-324),
            Just(0.1), Just(1e21), Just(9007199254740993.0),
        ],
    ]
}

/// Days from 1970-01-01: mostly the years 0001–9999, sometimes anywhere chrono can spell
/// (about ±262,000 years), edges included.
fn date() -> impl Strategy<Value = i32> {
    const MIN: i32 = -719_162; // 0001-01-01
    const MAX: i32 = 2_932_896; // 9999-12-31
    let (lo, hi) = chrono_days();
    prop_oneof![
        3 => MIN..=MAX,
        1 => lo..=hi,
        1 => prop_oneof![Just(MIN), Just(MAX), Just(0), Just(-1), Just(lo), Just(hi)],
    ]
}

fn chrono_days() -> (i32, i32) {
    use ferry_core::values::date_to_days;
    (
        date_to_days(chrono::NaiveDate::MIN),
        date_to_days(chrono::NaiveDate::MAX),
    )
}

/// Microseconds from the epoch: mostly the years 0001–9999, sometimes anywhere chrono can
/// spell, edges included.
fn timestamp() -> impl Strategy<Value = i64> {
    const MIN: i64 = -62_135_596_800_000_000; // 0001-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
    let lo = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros();
    let hi = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
    prop_oneof![
        3 => MIN..=MAX,
        1 => lo..=hi,
        1 => prop_oneof![Just(MIN), Just(MAX), Just(0), Just(-1), Just(1), Just(lo), Just(hi)],
    ]
}

/// A JSON document as text: any JSON value, nested a little.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
    .prop_map(|v| v.to_string())
}

/// One row: every column's value (`None` = NULL, except `id`).
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    flag: Option<bool>,
    count: Option<i64>,
    ratio: Option<f64>,
    amount: Option<i128>,
    name: Option<String>,
    blob: Option<Vec<u8>>,
    day: Option<i32>,
    at: Option<i64>,
    doc: Option<String>,
}

fn row(precision: u8) -> impl Strategy<Value = Row> {
    let max = 10i128.pow(precision as u32) - 1;
    let amount = prop_oneof![3 => -max..=max, 1 => prop_oneof![Just(max), Just(-max), Just(0)]];
    (
        int(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(int()),
        proptest::option::of(float()),
        proptest::option::of(amount),
        proptest::option::of(text()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        proptest::option::of(date()),
        proptest::option::of(timestamp()),
        proptest::option::of(json()),
    )
        .prop_map(
            |(id, flag, count, ratio, amount, name, blob, day, at, doc)| Row {
                id,
                flag,
                count,
                ratio,
                amount,
                name,
                blob,
                day,
                at,
                doc,
            },
        )
}

/// A decimal type (precision 1–38, scale 0–precision) and rows of it.
fn batch() -> impl Strategy<Value = RecordBatch> {
    (1u8..=38)
        .prop_flat_map(|p| (Just(p), 0..=p as i8))
        .prop_flat_map(|(p, s)| (Just((p, s)), proptest::collection::vec(row(p), 0..24)))
        .prop_map(|((p, s), rows)| build(p, s, &rows))
}

fn schema(precision: u8, scale: i8) -> SchemaRef {
    Arc::new(Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Bool.field("flag", true),
        FerryType::Int64.field("count", true),
        FerryType::Float64.field("ratio", true),
        FerryType::Decimal { precision, scale }.field("amount", true),
        FerryType::String.field("name", true),
        FerryType::Binary.field("blob", true),
        FerryType::Date.field("day", true),
        FerryType::Timestamp.field("at", true),
        FerryType::Json.field("doc", true),
    ]))
}

fn build(precision: u8, scale: i8, rows: &[Row]) -> RecordBatch {
    let mut id = Int64Builder::new();
    let mut flag = BooleanBuilder::new();
    let mut count = Int64Builder::new();
    let mut ratio = Float64Builder::new();
    let mut amount = Decimal128Builder::new();
    let mut name = StringBuilder::new();
    let mut blob = BinaryBuilder::new();
    let mut day = Date32Builder::new();
    let mut at = TimestampMicrosecondBuilder::new();
    let mut doc = StringBuilder::new();
    for r in rows {
        id.append_value(r.id);
        flag.append_option(r.flag);
        count.append_option(r.count);
        ratio.append_option(r.ratio);
        amount.append_option(r.amount);
        name.append_option(r.name.as_deref());
        blob.append_option(r.blob.as_deref());
        day.append_option(r.day);
        at.append_option(r.at);
        doc.append_option(r.doc.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(flag.finish()),
        Arc::new(count.finish()),
        Arc::new(ratio.finish()),
        Arc::new(
            amount
                .finish()
                .with_precision_and_scale(precision, scale)
                .expect("valid decimal type"),
        ),
        Arc::new(name.finish()),
        Arc::new(blob.finish()),
        Arc::new(day.finish()),
        Arc::new(at.finish().with_timezone("UTC")),
        Arc::new(doc.finish()),
    ];
    RecordBatch::try_new(schema(precision, scale), columns).expect("batch matches schema")
}

// ---------------------------------------------------------------------------------------
// Comparison

/// A value as the comparison sees it: floats by bits (NaN is NaN), JSON as a value.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Decimal(i128),
    Text(String),
    Bytes(Vec<u8>),
    Json(serde_json::Value),
}

fn cells(batches: &[RecordBatch], format: Format) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let mut r = Vec::new();
            for (col, field) in b.columns().iter().zip(b.schema().fields()) {
                r.push(cell(
                    col.as_ref(),
                    FerryType::of(field).expect("ferry type"),
                    row,
                    format,
                ));
            }
            out.push(r);
        }
    }
    out
}

fn cell(a: &dyn Array, ty: FerryType, row: usize, format: Format) -> Cell {
    if a.is_null(row) {
        return Cell::Null;
    }
    match ty {
        FerryType::Bool => Cell::Bool(a.as_boolean().value(row)),
        FerryType::Int64 => Cell::Int(a.as_primitive::<Int64Type>().value(row)),
        FerryType::Float64 => {
            let f = a.as_primitive::<Float64Type>().value(row);
            Cell::Float(if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            })
        }
        FerryType::Decimal { .. } => Cell::Decimal(a.as_primitive::<Decimal128Type>().value(row)),
        FerryType::String => {
            let s = a.as_string::<i32>().value(row);
            // CSV: an empty cell is NULL (the default null text)
            if format == Format::Csv && s.is_empty() {
                return Cell::Null;
            }
            Cell::Text(s.to_string())
        }
        FerryType::Binary => {
            let b = a.as_binary::<i32>().value(row);
            if format == Format::Csv && b.is_empty() {
                return Cell::Null;
            }
            Cell::Bytes(b.to_vec())
        }
        FerryType::Date => Cell::Int(a.as_primitive::<Date32Type>().value(row) as i64),
        FerryType::Timestamp => Cell::Int(a.as_primitive::<TimestampMicrosecondType>().value(row)),
        FerryType::Json => {
            let v: serde_json::Value = serde_json::from_str(a.as_string::<i32>().value(row))
                .expect("json column holds JSON");
            // JSON Lines embeds the document: the document `null` is the value null
            if format == Format::Jsonl && v.is_null() {
                return Cell::Null;
            }
            Cell::Json(v)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Round trips

fn keys() -> &'static (Identities, Recipients) {
    static KEYS: OnceLock<(Identities, Recipients)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (secret, public) = ferry_formats::age::generate_identity();
        let ids = Identities::parse(&secret).expect("identity");
        let recipients =
            Recipients::parse(&[public], std::path::Path::new(".")).expect("recipient");
        (ids, recipients)
    })
}

/// `batch` written as `format` (compressed, maybe encrypted), as the file connector does.
fn write(batch: &RecordBatch, format: Format, c: Compression, encrypt: bool) -> Vec<u8> {
    fn body<W: Write + Send>(out: W, batch: &RecordBatch, format: Format) -> W {
        let mut w =
            FormatWriter::new(format, out, batch.schema(), &CsvOptions::default()).expect("writer");
        w.write_batch(batch).expect("write batch");
        w.into_inner().expect("finish writer")
    }
    let c = if format == Format::Parquet {
        Compression::None
    } else {
        c
    };
    if encrypt {
        let enc = encrypt_writer(&keys().1, Vec::new()).expect("encrypt");
        let z = body(
            CompressWriter::new(enc, c).expect("compress"),
            batch,
            format,
        );
        z.finish()
            .expect("compress end")
            .finish()
            .expect("encrypt end")
    } else {
        let z = body(
            CompressWriter::new(Vec::new(), c).expect("compress"),
            batch,
            format,
        );
        z.finish().expect("compress end")
    }
}

/// Reads `bytes` (as [`write`] made them) with `schema`; returns batches and rejections.
fn read(
    bytes: Vec<u8>,
    format: Format,
    c: Compression,
    encrypt: bool,
    schema: SchemaRef,
) -> (Vec<RecordBatch>, Vec<String>) {
    let reader: FormatReader<Box<dyn Read + Send>> = if format == Format::Parquet {
        if encrypt {
            let plain = decrypt_reader(&keys().0, Cursor::new(bytes)).expect("decrypt");
            FormatReader::parquet(SeekChunks::new(plain).expect("seek"), schema)
        } else {
            FormatReader::parquet(ferry_formats::codec::Bytes::from(bytes), schema)
        }
        .expect("parquet reader")
    } else {
        let raw: Box<dyn Read + Send> = if encrypt {
            Box::new(decrypt_reader(&keys().0, Cursor::new(bytes)).expect("decrypt"))
        } else {
            Box::new(Cursor::new(bytes))
        };
        let plain = decompress(raw, c).expect("decompress");
        FormatReader::new(format, plain, schema, &CsvOptions::default()).expect("reader")
    };
    let (mut batches, mut rejected) = (Vec::new(), Vec::new());
    for m in reader.with_batch_size(5) {
        match m.expect("read") {
            Message::Batch(b) => batches.push(b),
            Message::Rejected(r) => rejected.push(format!("{r:?}")),
            _ => {}
        }
    }
    (batches, rejected)
}

const FORMATS: [Format; 3] = [Format::Csv, Format::Jsonl, Format::Parquet];
const COMPRESSIONS: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Written and read back with the schema declared, every batch is equal, in every
    /// format, compression and encryption.
    #[test]
    fn every_codec_round_trips(batch in batch(), encrypt in any::<bool>()) {
        for format in FORMATS {
            for c in COMPRESSIONS {
                if format == Format::Parquet && c != Compression::None {
                    continue; // Parquet compresses inside the file
                }
                let bytes = write(&batch, format, c, encrypt);
                let (got, rejected) = read(bytes, format, c, encrypt, batch.schema());
                prop_assert!(rejected.is_empty(), "{format}/{c:?}: rejected {rejected:?}");
                prop_assert_eq!(
                    cells(&got, format),
                    cells(std::slice::from_ref(&batch), format),
                    "{}/{:?} encrypted={}", format, c, encrypt
                );
            }
        }
    }

    /// A batch of one column (where a CSV row of one NULL must not become a blank line,
    /// which readers skip) round trips too.
    #[test]
    fn one_column_round_trips(batch in batch(), column in 0usize..10) {
        let batch = batch.project(&[column]).expect("project");
        for format in FORMATS {
            let bytes = write(&batch, format, Compression::None, false);
            let (got, rejected) = read(bytes, format, Compression::None, false, batch.schema());
            prop_assert!(rejected.is_empty(), "{format}: rejected {rejected:?}");
            prop_assert_eq!(
                cells(&got, format),
                cells(std::slice::from_ref(&batch), format),
                "{}", format
            );
        }
    }

    /// Read with an inferred schema, a written batch never panics the reader and every row
    /// comes back, as a row or as a rejection.
    #[test]
    fn inference_keeps_every_row(batch in batch()) {
        for format in [Format::Csv, Format::Jsonl] {
            let bytes = write(&batch, format, Compression::None, false);
            let schema = infer(format, &bytes[..], &CsvOptions::default(), &InferOptions::default())
                .expect("infer");
            let (got, rejected) = read(bytes, format, Compression::None, false, schema);
            let rows: usize = got.iter().map(RecordBatch::num_rows).sum();
            prop_assert_eq!(rows + rejected.len(), batch.num_rows(), "{}: {:?}", format, rejected);
        }
    }
}
