//! Files as clients export them: Windows-1252 with `;` and decimal commas (as Excel writes
//! on a German or French Windows), UTF-16 with a byte-order mark, a title line above the
//! header and a totals line below the data. The files are written by Python's codecs and
//! `csv` module, an independent writer, and read back through the file source with exact values.

mod common;

use std::path::Path;

use common::{source, source_refused};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{FerryType, Message, ReadRequest, Rejected, Result, Source};
use ferry_testkit::python::run_python;
use ferry_testkit::rows_as_text as rows;
use futures::StreamExt;

/// Runs a Python script in `dir` (it writes files there); fails loudly without Python.
fn python(dir: &Path, script: &str) {
    let script = format!("import os, sys\nos.chdir(sys.argv[1])\n{script}");
    run_python(&script, &[dir.to_str().unwrap()], &[]);
}

/// Writes `text` to `name` under `dir`, encoded by Python's codec `encoding`.
fn encoded(dir: &Path, name: &str, encoding: &str, text: &str) {
    let path = dir.join(name);
    let script =
        "import sys\nopen(sys.argv[1], 'w', encoding=sys.argv[2], newline='').write(sys.argv[3])";
    run_python(script, &[path.to_str().unwrap(), encoding, text], &[]);
}

/// The German Excel export: cp1252, `;`, a title line, `1.234,56`, a totals line.
const EXPORT: &str = r#"
import csv
rows = [
    ["Export Kunden 01.02.2024"],
    ["id", "name", "city", "amount", "paid_on"],
    [1, "Müller", "Köln", "1.234,56", "2024-01-31"],
    [2, "François Dupont", "Besançon", "-7,50", "2024-02-01"],
    [3, "Ørsted; \"Søren\"", "Århus", "12.345.678,9", "2024-02-02"],
    ["Summe", "", "", "12.346.906,96", ""],
]
with open("in/kunden.csv", "w", encoding="cp1252", newline="") as f:
    csv.writer(f, delimiter=";", lineterminator="\r\n").writerows(rows)
"#;

async fn read(source: &dyn Source, stream: &str) -> Result<(Vec<RecordBatch>, Vec<Rejected>)> {
    let mut s = source.read(ReadRequest::full(stream)).await?;
    let (mut batches, mut rejected) = (Vec::new(), Vec::new());
    while let Some(m) = s.next().await {
        match m? {
            Message::Batch(b) => batches.push(b),
            Message::Rejected(r) => rejected.push(r),
            _ => {}
        }
    }
    Ok((batches, rejected))
}

/// The source `config` builds, discovered as `sync` does, then stream `stream` read in full.
async fn discover_and_read(
    dir: &Path,
    config: &str,
    stream: &str,
) -> (Vec<RecordBatch>, Vec<Rejected>) {
    let src = source(config, dir).unwrap();
    src.discover().await.unwrap();
    read(&*src, stream).await.unwrap()
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp1252_semicolons_and_decimal_commas_read_exactly() {
    let dir = folder();
    python(dir.path(), EXPORT);
    let config = "path = \"in/*.csv\"\nstream = \"kunden\"\nencoding = \"windows-1252\"\n\
                  skip_rows = 1\nskip_footer_rows = 1\ndecimal_separator = \",\"\n\
                  thousands_separator = \".\"\ncolumns = { amount = \"decimal(12,2)\" }";
    let src = source(config, dir.path()).unwrap();
    let catalog = src.discover().await.unwrap();
    let schema = &catalog.get("kunden").unwrap().schema;
    assert_eq!(
        ferry_testkit::column_types(schema),
        [
            "id int64",
            "name string",
            "city string",
            "amount decimal(12,2)",
            "paid_on date"
        ]
    );
    let (batches, rejected) = read(&*src, "kunden").await.unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(
        rows(&batches),
        [
            ["1", "Müller", "Köln", "1234.56", "2024-01-31"],
            ["2", "François Dupont", "Besançon", "-7.50", "2024-02-01"],
            [
                "3",
                "Ørsted; \"Søren\"",
                "Århus",
                "12345678.90",
                "2024-02-02"
            ],
        ]
    );

    // inferred without `columns`, the amounts are floats
    let config = config.replace("columns = { amount = \"decimal(12,2)\" }", "");
    let src = source(&config, dir.path()).unwrap();
    let catalog = src.discover().await.unwrap();
    let amount = catalog.get("kunden").unwrap().schema.field(3).clone();
    assert_eq!(FerryType::of(&amount), Some(FerryType::Float64));
    let (batches, _) = read(&*src, "kunden").await.unwrap();
    let amounts: Vec<String> = rows(&batches).into_iter().map(|r| r[3].clone()).collect();
    assert_eq!(amounts, ["1234.56", "-7.5", "12345678.9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_encoding_accented_rows_are_rejected_with_a_hint_and_the_rest_kept() {
    let dir = folder();
    let text = "id;name\r\n1;Smith\r\n2;Müller\r\n3;Jones\r\n";
    encoded(dir.path(), "in/people.csv", "cp1252", text);
    let (batches, rejected) =
        discover_and_read(dir.path(), "path = \"in/people.csv\"", "people").await;
    assert_eq!(rows(&batches), [["1", "Smith"], ["3", "Jones"]]);
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(r.position.file.as_deref(), Some("in/people.csv"));
    assert_eq!((r.position.line, r.position.column), (Some(3), Some(2)));
    assert!(
        r.message
            .contains("it looks like windows-1252: set encoding = \"windows-1252\""),
        "{}",
        r.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16_with_a_mark_needs_no_setting_and_tabs_are_guessed() {
    let dir = folder();
    let text = "id\tname\tqty\n1\tZoë\t3\n2\t東京\t4\n";
    encoded(dir.path(), "in/orders.csv", "utf-16", text);
    encoded(
        dir.path(),
        "in/pipes.csv",
        "utf-8-sig",
        "id|note\n1|a,b\n2|c;d\n",
    );
    let (batches, rejected) =
        discover_and_read(dir.path(), "path = \"in/orders.csv\"", "orders").await;
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(rows(&batches), [["1", "Zoë", "3"], ["2", "東京", "4"]]);
    let (batches, _) = discover_and_read(dir.path(), "path = \"in/pipes.csv\"", "pipes").await;
    assert_eq!(rows(&batches), [["1", "a,b"], ["2", "c;d"]]);
}

#[test]
fn unknown_encodings_and_bad_separators_are_config_errors() {
    let dir = folder();
    let err = source_refused("path = \"a.csv\"\nencoding = \"windows-1225\"", dir.path());
    let text = err.to_string();
    assert!(
        text.contains("unknown encoding `windows-1225`")
            && text.contains("did you mean `windows-1252`"),
        "{text}"
    );
    assert_eq!(err.context_value("line"), Some("2"));
    let err = source_refused(
        "path = \"a.csv\"\ndecimal_separator = \",\"\nthousands_separator = \",\"",
        dir.path(),
    );
    assert!(err.to_string().contains("thousands_separator"), "{err}");
}
