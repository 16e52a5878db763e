//! The `codecs` and `excel` sections of `examples/bench.rs`: the shared codecs
//! (`ferry_formats::codec`) writing and reading the same rows as CSV, CSV.gz, CSV.zst,
//! JSONL.zst and Parquet (zstd); and an Excel workbook of those rows (written from the
//! CSV by Python's XlsxWriter, at most 1,048,575 rows: a sheet's limit) read beside the
//! plain CSV.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ferry_core::arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::{FerryType, Message};
use ferry_formats::codec::{
    decompress, CompressWriter, Compression, CsvOptions, ExcelOptions, Format, FormatReader,
    FormatWriter, WriteOptions,
};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::String.field("name", true),
        FerryType::Decimal {
            precision: 12,
            scale: 2,
        }
        .field("amount", true),
        FerryType::Timestamp.field("at", true),
        FerryType::Bool.field("flag", true),
        FerryType::Float64.field("ratio", true),
    ]))
}

fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n as i64).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from(
            ids.iter()
                .map(|i| format!("customer {} of region {}", i, i % 17))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from(
                ids.iter()
                    .map(|i| ((i * 37) % 1_000_000) as i128)
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(12, 2)
            .unwrap(),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(
                ids.iter()
                    .map(|i| 1_700_000_000_000_000 + i * 1_000_003)
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from(
            ids.iter().map(|i| i % 3 == 0).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            ids.iter().map(|i| *i as f64 / 7.0).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema(), cols).unwrap()
}

fn write(path: &Path, format: Format, compression: Compression, rows: usize) {
    let out = CompressWriter::new(File::create(path).unwrap(), compression).unwrap();
    let mut w = FormatWriter::with_options(
        format,
        BufWriter::with_capacity(256 << 10, out),
        schema(),
        &WriteOptions::default(),
    )
    .unwrap();
    let mut done = 0;
    while done < rows {
        let n = 8192.min(rows - done);
        w.write_batch(&batch(done as i64, n)).unwrap();
        done += n;
    }
    w.into_inner()
        .unwrap()
        .into_inner()
        .map_err(|e| e.into_error())
        .unwrap()
        .finish()
        .unwrap()
        .sync_all()
        .unwrap();
}

fn count(reader: impl Iterator<Item = ferry_core::Result<Message>>) -> usize {
    let mut rows = 0;
    for m in reader {
        match m.unwrap() {
            Message::Batch(b) => rows += b.num_rows(),
            Message::Rejected(r) => panic!("rejected: {r:?}"),
            _ => {}
        }
    }
    rows
}

pub fn codecs(dir: &Path, rows: usize) {
    let cases = [
        ("csv", Format::Csv, Compression::None),
        ("csv.gz", Format::Csv, Compression::Gzip),
        ("csv.zst", Format::Csv, Compression::Zstd),
        ("jsonl.zst", Format::Jsonl, Compression::Zstd),
        ("parquet", Format::Parquet, Compression::None),
    ];
    println!("{rows} rows, 6 columns (int64, string, decimal, timestamp, bool, float64)");
    println!(
        "{:<10} {:>10} {:>9} {:>14} {:>9} {:>14}",
        "file", "MB", "write s", "write rows/s", "read s", "read rows/s"
    );
    for (name, format, compression) in cases {
        let path = dir.join(format!("bench.{name}"));
        let t = Instant::now();
        write(&path, format, compression, rows);
        let write_s = t.elapsed().as_secs_f64();
        let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
        let t = Instant::now();
        let got = if format == Format::Parquet {
            count(
                FormatReader::<File>::parquet(File::open(&path).unwrap(), schema())
                    .unwrap()
                    .with_batch_size(8192),
            )
        } else {
            let input: Box<dyn Read + Send> = Box::new(File::open(&path).unwrap());
            count(
                FormatReader::new(
                    format,
                    decompress(input, compression).unwrap(),
                    schema(),
                    &CsvOptions::default(),
                )
                .unwrap()
                .with_batch_size(8192),
            )
        };
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!(got, rows);
        println!(
            "{name:<10} {mb:>10.1} {write_s:>9.2} {:>14.0} {read_s:>9.2} {:>14.0}",
            rows as f64 / write_s,
            rows as f64 / read_s
        );
        let _ = std::fs::remove_file(&path);
    }
}

/// Writes the first rows of `bench.csv` (at most a sheet's worth) as `bench.xlsx` with
/// XlsxWriter, then times reading both: Excel rows/s beside the plain CSV's.
pub fn excel(dir: &Path, rows: usize) {
    const SCRIPT: &str = r#"
import csv, sys, xlsxwriter
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
wb = xlsxwriter.Workbook(out, {"constant_memory": True})
ws = wb.add_worksheet("bench")
def cell(v):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v
with open(src, newline="") as f:
    for r, row in enumerate(csv.reader(f)):
        if r > n:
            break
        ws.write_row(r, 0, [cell(v) if r else v for v in row])
wb.close()
"#;
    let rows = rows.min(1_048_575);
    let (csv, xlsx) = (dir.join("bench.csv"), dir.join("bench.xlsx"));
    write(&csv, Format::Csv, Compression::None, rows);
    let t = Instant::now();
    ferry_testkit::python::run_python(
        SCRIPT,
        &[
            csv.to_str().unwrap(),
            xlsx.to_str().unwrap(),
            &rows.to_string(),
        ],
        &[("xlsxwriter", "xlsxwriter")],
    );
    let write_s = t.elapsed().as_secs_f64();
    println!("Excel beside CSV, {rows} rows (xlsx written by XlsxWriter in {write_s:.1} s)");
    println!(
        "{:<10} {:>10} {:>9} {:>14}",
        "file", "MB", "read s", "read rows/s"
    );
    let mut rates = Vec::new();
    for (name, path) in [("csv", &csv), ("xlsx", &xlsx)] {
        let mb = std::fs::metadata(path).unwrap().len() as f64 / 1e6;
        let t = Instant::now();
        let file = File::open(path).unwrap();
        let got = if name == "xlsx" {
            count(
                FormatReader::<File>::excel(
                    file,
                    Some("bench.xlsx"),
                    schema(),
                    &ExcelOptions::default(),
                )
                .unwrap()
                .with_batch_size(8192),
            )
        } else {
            count(
                FormatReader::new(Format::Csv, file, schema(), &CsvOptions::default())
                    .unwrap()
                    .with_batch_size(8192),
            )
        };
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!(got, rows);
        rates.push(rows as f64 / read_s);
        println!(
            "{name:<10} {mb:>10.1} {read_s:>9.2} {:>14.0}",
            rows as f64 / read_s
        );
    }
    println!(
        "xlsx / csv: {:.3}x (the CSV reads {:.0} times faster)",
        rates[1] / rates[0],
        rates[0] / rates[1]
    );
}
