//! Workbooks and archives through the file source, on files made by independent writers
//! (XlsxWriter, xlwt, odfpy, Python's zipfile and tarfile): two sheets of one workbook as
//! two streams, dates in both date systems, a formula's saved value, merged and empty
//! cells, a bad cell quarantined with its sheet and row; zip and tar.gz drops read entry
//! by entry, and zip bombs refused.

mod common;

use std::path::Path;

use common::source;
use ferry_core::{FerryType, Message, ReadRequest, Result, Source};
use ferry_testkit::python::{run_python, workbooks};
use ferry_testkit::{messages, rows, split, try_messages};
use serde_json::json;

async fn types(source: &dyn Source, stream: &str) -> Vec<(String, FerryType)> {
    let catalog = source.discover().await.unwrap();
    let info = catalog.streams.iter().find(|s| s.name == stream).unwrap();
    info.schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), FerryType::of(f).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sheets_dates_formulas_merged_cells_and_a_bad_cell() {
    let dir = tempfile::tempdir().unwrap();
    workbooks(dir.path());
    let src = source(
        r#"
streams = [
  { name = "q1", path = "orders.xlsx", sheet = "Q1", columns = { amount = "float64", double = "float64" } },
  { name = "q2", path = "orders.xlsx", sheet = 2 },
  { name = "mac", path = "mac.xlsx" },
]
file_column = "_file"
"#,
        dir.path(),
    )
    .unwrap();
    src.check().await.unwrap();
    use FerryType::*;
    let q1 = types(&*src, "q1").await;
    assert_eq!(
        q1.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [Int64, String, Float64, Date, Timestamp, Float64, String, String]
    );

    let (batches, rejected) = split(messages(&*src, ReadRequest::full("q1")).await);
    let q1 = rows(&batches);
    assert_eq!(q1.len(), 13);
    let first = &q1[0];
    assert_eq!(first["id"], json!(1));
    assert_eq!(first["name"], json!("Zoë Ñandú"));
    assert_eq!(first["amount"], json!(10.25));
    assert_eq!(first["day"], json!("2024-01-01"));
    assert_eq!(first["_file"], json!("orders.xlsx"));
    // the formula `=C2*2`, read as the value saved with it
    assert_eq!(first["double"], json!(20.5));
    // merged G3:G4: the value in G3, NULL in G4; G5 empty
    let notes: Vec<_> = q1.iter().take(4).map(|r| r["note"].clone()).collect();
    assert_eq!(
        notes,
        [
            json!("first"),
            json!("merged note"),
            json!(null),
            json!(null)
        ]
    );
    // row 14 holds `n/a` in the float column: rejected, naming file, sheet and row
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(r.position.file.as_deref(), Some("orders.xlsx"));
    assert_eq!(r.position.line, Some(14));
    assert!(
        r.message
            .contains("sheet \"Q1\", row 14, cell C14: column `amount`"),
        "{}",
        r.message
    );
    assert_eq!(
        r.position.to_string(),
        "file orders.xlsx, line 14, column 3, at sheet \"Q1\", cell C14"
    );

    let (batches, _) = split(messages(&*src, ReadRequest::full("q2")).await);
    let cities: Vec<_> = rows(&batches).iter().map(|r| r["city"].clone()).collect();
    assert_eq!(cities, [json!("Genève"), json!("Zürich")]);

    // the 1904 date system: the same dates, not four years and a day off
    assert_eq!(types(&*src, "mac").await[1].1, Date);
    let (batches, _) = split(messages(&*src, ReadRequest::full("mac")).await);
    let days: Vec<_> = rows(&batches).iter().map(|r| r["day"].clone()).collect();
    assert_eq!(days, [json!("2024-01-31"), json!("1999-12-31")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_row_range_xls_and_ods() {
    let dir = tempfile::tempdir().unwrap();
    workbooks(dir.path());
    let src = source("path = \"report.xlsx\"\nrange = \"B3:D6\"", dir.path()).unwrap();
    let (batches, _) = split(messages(&*src, ReadRequest::full("report")).await);
    let got: Vec<_> = ferry_testkit::rows_by_id(&batches, Default::default())
        .into_iter()
        .map(|r| (r["sku"].clone(), r["qty"].clone()))
        .collect();
    assert_eq!(got.len(), 3);
    assert!(got.contains(&(json!("B-2"), json!("1"))), "{got:?}");
    for (file, stream) in [("orders.xls", "orders"), ("orders.ods", "orders")] {
        let src = source(&format!("path = \"{file}\""), dir.path()).unwrap();
        assert_eq!(types(&*src, stream).await[2].1, FerryType::Date, "{file}");
        let (batches, rejected) = split(messages(&*src, ReadRequest::full(stream)).await);
        assert!(rejected.is_empty());
        assert_eq!(rows(&batches)[0]["name"], json!("Zoë"), "{file}");
    }
    // every sheet, a stream each
    let src = source("path = \"orders.xlsx\"\nsheet = \"*\"", dir.path()).unwrap();
    let catalog = src.discover().await.unwrap();
    let names: Vec<_> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["orders_Q1", "orders_Q2"]);
    let (batches, _) = split(messages(&*src, ReadRequest::full("orders_Q2")).await);
    assert_eq!(rows(&batches)[0]["city"], json!("Genève"));
    // a sheet that does not exist: the sheets it has, and the nearest
    let src = source("path = \"orders.xlsx\"\nsheet = \"Q3\"", dir.path()).unwrap();
    let err = src.discover().await.unwrap_err().to_string();
    assert!(err.contains("no sheet \"Q3\""), "{err}");
    assert!(err.contains("orders.xlsx"), "{err}");
    // Excel is read, never written
    let err = common::sink("path = \"out\"\nformat = \"excel\"", dir.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not write them"), "{err}");
}

/// Writes `drop.zip` and `drop.tar.gz`, each holding two CSVs under `export/`, a text
/// file, macOS junk and the test workbook `orders.xlsx`.
fn drops(dir: &Path) {
    workbooks(dir);
    run_python(
        r#"
import io, sys, tarfile, zipfile
out = sys.argv[1]
files = {
    "export/orders_1.csv": "id,amount\n1,10.5\n2,20\n",
    "export/orders_2.csv": "id,amount\n3,30\n4,oops\n5,50\n",
    "readme.txt": "not data\n",
    "__MACOSX/export/._orders_1.csv": "junk",
}
xlsx = open(f"{out}/orders.xlsx", "rb").read()
with zipfile.ZipFile(f"{out}/drop.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in files.items():
        z.writestr(name, text)
    z.writestr("book/orders.xlsx", xlsx)
with tarfile.open(f"{out}/drop.tar.gz", "w:gz") as t:
    for name, text in files.items():
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
# zip bombs: 4 MB of one pattern (a ratio near 1000), and more entries than allowed
with zipfile.ZipFile(f"{out}/bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("bomb.csv", "id\n" + "1\n" * 2_000_000)
with tarfile.open(f"{out}/bomb.tar.gz", "w:gz") as t:
    data = ("id\n" + "1\n" * 2_000_000).encode()
    info = tarfile.TarInfo("bomb.csv")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
with zipfile.ZipFile(f"{out}/many.zip", "w") as z:
    for i in range(12):
        z.writestr(f"part_{i}.csv", f"id\n{i}\n")
"#,
        &[dir.to_str().unwrap()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_and_tar_gz_entries_are_read_each_with_its_format() {
    let dir = tempfile::tempdir().unwrap();
    drops(dir.path());
    for archive in ["drop.zip", "drop.tar.gz"] {
        let toml = format!(
            "path = \"{archive}\"\nstream = \"orders\"\ninner = \"*.csv\"\nfile_column = \"_file\"\ncolumns = {{ amount = \"float64\" }}"
        );
        let src = source(&toml, dir.path()).unwrap();
        let (batches, rejected) = split(messages(&*src, ReadRequest::full("orders")).await);
        let got = rows(&batches);
        let ids: Vec<_> = got.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, [json!(1), json!(2), json!(3), json!(5)], "{archive}");
        assert_eq!(
            got[2]["_file"],
            json!(format!("{archive}!export/orders_2.csv")),
            "{archive}"
        );
        assert_eq!(rejected.len(), 1, "{archive}");
        let r = &rejected[0].position;
        assert_eq!(
            (r.file.clone(), r.line),
            (Some(format!("{archive}!export/orders_2.csv")), Some(3)),
            "{archive}"
        );
    }
    // the workbook inside the zip, read as a workbook
    let src = source(
        "path = \"drop.zip\"\nstream = \"q2\"\ninner = \"book/*.xlsx\"\nsheet = \"Q2\"",
        dir.path(),
    )
    .unwrap();
    let (batches, _) = split(messages(&*src, ReadRequest::full("q2")).await);
    assert_eq!(rows(&batches)[1]["city"], json!("Zürich"));
    // an inner pattern nothing matches
    let src = source(
        "path = \"drop.zip\"\nstream = \"x\"\ninner = \"*.parquet\"",
        dir.path(),
    )
    .unwrap();
    let err = src.discover().await.unwrap_err().to_string();
    assert!(
        err.contains("archive `drop.zip` holds no file matching `inner = \"*.parquet\"`"),
        "{err}"
    );
}

async fn read_err(dir: &Path, toml: &str, stream: &str) -> String {
    let src = source(toml, dir).unwrap();
    let request = ReadRequest::full(stream);
    let got: Result<Vec<Message>> = async {
        // inference reads the first entry, so a bomb may be caught there already
        src.discover().await?;
        try_messages(&*src, request).await
    }
    .await;
    got.expect_err("the archive must be refused").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_bombs_are_refused_naming_the_archive_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    drops(dir.path());
    let err = read_err(dir.path(), "path = \"bomb.zip\"\nstream = \"b\"", "b").await;
    assert!(
        err.contains("archive `bomb.zip`: entry `bomb.csv` unpacks to more than 100 times its compressed size (`archive_limits.ratio`)"),
        "{err}"
    );
    let err = read_err(dir.path(), "path = \"bomb.tar.gz\"\nstream = \"b\"", "b").await;
    assert!(
        err.contains("archive `bomb.tar.gz` unpacks to more than 100 times its compressed size"),
        "{err}"
    );
    let err = read_err(
        dir.path(),
        "path = \"many.zip\"\nstream = \"m\"\narchive_limits = { entries = 10 }",
        "m",
    )
    .await;
    assert!(
        err.contains(
            "archive `many.zip` holds 12 entries, more than 10 (`archive_limits.entries`)"
        ),
        "{err}"
    );
    let err = read_err(
        dir.path(),
        "path = \"drop.tar.gz\"\nstream = \"d\"\ninner = \"*.csv\"\narchive_limits = { expanded_bytes = 1000 }",
        "d",
    )
    .await;
    assert!(
        err.contains("unpacks to more than 1000 bytes (`archive_limits.expanded_bytes`)"),
        "{err}"
    );
    // a raised limit reads the same bomb whole
    let src = source(
        "path = \"bomb.zip\"\nstream = \"b\"\narchive_limits = { ratio = 100000 }",
        dir.path(),
    )
    .unwrap();
    let n: usize = split(messages(&*src, ReadRequest::full("b")).await)
        .0
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(n, 2_000_000);
}
