//! The file connector against real temp folders: the shared conformance kit for CSV and
//! JSON Lines, plus what is particular to files (bad rows, globs, missing paths, appends).

mod common;

use std::fs::File;
use std::time::{Duration, SystemTime};

use common::source_fix::SourceFix;
use common::{leftovers, sink, source, source_refused};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{ErrorKind, FerryType, Message, ReadRequest, Rejected, WriteMode, WriteRequest};
use ferry_formats::codec::{Compression, Format};
use ferry_testkit::{self as testkit, assert_says, messages, FolderSinkFixture, FOLDER_SINK_CASES};

fn split(msgs: Vec<Message>) -> (Vec<RecordBatch>, Vec<Rejected>, Vec<serde_json::Value>) {
    let (mut b, mut r, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for m in msgs {
        match m {
            Message::Batch(x) => b.push(x),
            Message::Rejected(x) => r.push(x),
            Message::Checkpoint(x) => c.push(x),
            _ => {}
        }
    }
    (b, r, c)
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

// ----------------------------------------------------------------------------------------
// The conformance kit

/// A file sink writing `format` with `compression` into a temporary folder.
fn sink_fix(format: Format, compression: Compression) -> FolderSinkFixture<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(
        &format!("path = \"out\"\nformat = \"{format}\"\ncompression = \"{compression}\""),
        dir.path(),
    )
    .unwrap();
    FolderSinkFixture {
        sink,
        format,
        compression,
        out: dir.path().join("out"),
        keep: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_conformance_in_every_format() {
    for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
        testkit::run_source_suite(&SourceFix::plain(format)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_conformance_in_every_format_and_compression() {
    for (format, compression) in FOLDER_SINK_CASES {
        let f = sink_fix(format, compression);
        testkit::run_sink_suite(&f).await;
        assert_eq!(leftovers(&f.out), Vec::<String>::new(), "{format}");
    }
}

// ----------------------------------------------------------------------------------------
// Files in particular

#[tokio::test]
async fn malformed_csv_rows_are_rejected_with_their_lines_and_good_rows_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"\xEF\xBB\xBFid,name,amount\n".to_vec(); // line 1, with a BOM
    data.extend_from_slice(b"1,plain,1.5\n"); // 2
    data.extend_from_slice(b"2,\"two\nlines, quoted\",2.5\n"); // 3-4
    data.extend_from_slice(b"3,ragged\n"); // 5
    data.extend_from_slice(b"4,bad \xFF utf8,4.5\n"); // 6
    data.extend_from_slice(b"x,bad int,5.5\n"); // 7
    data.extend_from_slice(b"\n"); // 8 (blank, skipped)
    data.extend_from_slice(b"6,last,6.5"); // 9, no final newline
    std::fs::write(dir.path().join("people.csv"), &data).unwrap();
    let src = source("path = \"people.csv\"\ncolumns = { id = \"int64\", name = \"string\", amount = \"float64\" }", dir.path()).unwrap();
    let catalog = src.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["people"]);
    let (batches, rejected, checkpoints) =
        split(messages(src.as_ref(), ReadRequest::full("people")).await);
    assert_eq!(ids(&batches), vec![1, 2, 6]);
    let names: Vec<_> = batches
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names[1], "two\nlines, quoted");
    let at: Vec<_> = rejected
        .iter()
        .map(|r| (r.position.line, r.position.column))
        .collect();
    assert_eq!(
        at,
        vec![(Some(5), None), (Some(6), Some(2)), (Some(7), Some(1))]
    );
    assert!(rejected
        .iter()
        .all(|r| r.position.file.as_deref() == Some("people.csv")));
    assert_eq!(rejected[0].raw, "3,ragged");
    assert_says(&rejected[0], "expected 3 fields, found 2");
    assert_says(&rejected[1], "UTF-8");
    assert_says(&rejected[2], "column `id`: expected int64");
    assert_eq!(checkpoints.len(), 1);
}

#[tokio::test]
async fn a_glob_reads_every_matching_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("orders_2.csv"), "id,total\n3,30\n4,40\n").unwrap();
    std::fs::write(input.join("orders_1.csv"), "id,total\n1,10\n2,20.5\n").unwrap();
    std::fs::write(input.join("orders_3.csv"), "total,id\n50,5\n").unwrap(); // other column order
    std::fs::write(input.join("other.csv"), "x\n1\n").unwrap();
    std::fs::write(input.join(".orders_9.csv"), "id,total\n9,9\n").unwrap(); // hidden: skipped
    std::fs::write(
        input.join("customers.jsonl"),
        "{\"id\":1,\"tags\":[\"a\"]}\n",
    )
    .unwrap();
    let src = source(
        "streams = [{ name = \"orders\", path = \"in/orders_*.csv\" }, { name = \"customers\", path = \"in/*.jsonl\", primary_key = [\"id\"] }]",
        dir.path(),
    )
    .unwrap();
    src.check().await.unwrap();
    let catalog = src.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["orders", "customers"]);
    let orders = catalog.get("orders").unwrap();
    let types: Vec<_> = orders
        .schema
        .fields()
        .iter()
        .map(|f| FerryType::of(f).unwrap())
        .collect();
    assert_eq!(
        types,
        vec![FerryType::Int64, FerryType::Float64],
        "inferred from the first file"
    );
    assert!(orders.supports_incremental());
    assert_eq!(catalog.get("customers").unwrap().primary_key, vec!["id"]);
    let (batches, rejected, checkpoints) =
        split(messages(src.as_ref(), ReadRequest::full("orders")).await);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(checkpoints.len(), 3, "one checkpoint per file");
    let (batches, _, _) = split(messages(src.as_ref(), ReadRequest::full("customers")).await);
    assert_eq!(batches[0].column(1).as_string::<i32>().value(0), "[\"a\"]");

    // the default stream name comes from the pattern
    let src = source("path = \"in/orders_*.csv\"", dir.path()).unwrap();
    assert_eq!(src.discover().await.unwrap().names(), vec!["orders"]);
}

#[tokio::test]
async fn incremental_rereads_only_new_or_modified_files_and_limit_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = SystemTime::now() - Duration::from_secs(3600);
    for (i, rows) in [(1, "1\n2\n"), (2, "3\n4\n"), (3, "5\n6\n")] {
        let p = dir.path().join(format!("f{i}.csv"));
        std::fs::write(&p, format!("id\n{rows}")).unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t0 + Duration::from_secs(i))
            .unwrap();
    }
    let src = source("path = \"f*.csv\"", dir.path()).unwrap();
    src.discover().await.unwrap();
    let (b, _, cps) = split(messages(src.as_ref(), ReadRequest::incremental("f", None)).await);
    assert_eq!(ids(&b), vec![1, 2, 3, 4, 5, 6]);
    let state = cps.last().unwrap().clone();
    assert_eq!(state["path"], "f3.csv");

    // nothing changed: nothing read
    let (b, _, _) = split(
        messages(
            src.as_ref(),
            ReadRequest::incremental("f", Some(state.clone())),
        )
        .await,
    );
    assert!(b.is_empty());

    // f1 rewritten: only f1 is read again, whole
    let p = dir.path().join("f1.csv");
    std::fs::write(&p, "id\n1\n2\n7\n").unwrap();
    let (b, _, cps) =
        split(messages(src.as_ref(), ReadRequest::incremental("f", Some(state))).await);
    assert_eq!(ids(&b), vec![1, 2, 7]);
    assert_eq!(cps.last().unwrap()["path"], "f1.csv");

    // a new file sharing the mark's modification time (coarse file system clocks) and
    // sorting before the last file read is still read
    let state = cps.last().unwrap().clone();
    let p = dir.path().join("f0.csv");
    std::fs::write(&p, "id\n8\n").unwrap();
    let same = std::fs::metadata(dir.path().join("f1.csv"))
        .unwrap()
        .modified()
        .unwrap();
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(same)
        .unwrap();
    let (b, _, cps) =
        split(messages(src.as_ref(), ReadRequest::incremental("f", Some(state))).await);
    assert_eq!(ids(&b), vec![8]);
    let state = cps.last().unwrap().clone();
    assert_eq!(state["paths"], serde_json::json!(["f1.csv", "f0.csv"]));
    let (b, _, _) = split(messages(src.as_ref(), ReadRequest::incremental("f", Some(state))).await);
    assert!(b.is_empty());

    // a state that is not a file position is an error, not a silent full read
    let state = serde_json::json!({"cursor": 3});
    let err = testkit::read_refused(src.as_ref(), ReadRequest::incremental("f", Some(state))).await;
    assert!(err.to_string().contains("ferry state reset"), "{err}");

    // a cursor column is refused rather than ignored
    let mut req = ReadRequest::incremental("f", None);
    req.cursor = Some("id".into());
    let err = src.read(req).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");

    // --limit: stops after about that many rows
    let mut req = ReadRequest::full("f");
    req.limit = Some(4);
    req.batch_size = 1;
    let (b, _, _) = split(messages(src.as_ref(), req).await);
    assert_eq!(ids(&b), vec![8, 1, 2, 7]);
}

#[tokio::test]
async fn missing_paths_are_named_precisely() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/a.txt"), "x").unwrap();
    for (path, needle) in [
        ("missing/clients.csv", "no such folder"),
        ("in/clients.csv", "no such file"),
        ("nowhere/*/x_*.csv", "no such folder"),
        ("in/*.csv", "no file matches `in/*.csv`"),
    ] {
        let src = source(&format!("path = \"{path}\""), dir.path()).unwrap();
        let err = src.check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{path}: {err}");
        assert!(err.to_string().contains(needle), "{path}: {err}");
        let err = src.discover().await.unwrap_err();
        assert!(err.to_string().contains(needle), "{path}: {err}");
    }
    let src = source("path = \"in\"\nformat = \"csv\"", dir.path()).unwrap();
    let err = src.check().await.unwrap_err();
    assert!(err.to_string().contains("is a folder, not a file"), "{err}");
}

#[tokio::test]
async fn bad_config_is_refused_before_any_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, needle) in [
        ("pth = \"x.csv\"", "did you mean `path`"),
        ("path = \"x.dat\"", "set `format"),
        (
            "path = \"x.csv\"\ncolumns = { id = \"integer64\" }",
            "unknown type `integer64`",
        ),
    ] {
        let err = source_refused(toml, dir.path());
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{toml}: {err}");
        assert!(err.to_string().contains(needle), "{toml}: {err}");
    }
    std::fs::write(dir.path().join("x.csv"), "id,name\n1,a\n").unwrap();
    let src = source("path = \"x.csv\"\nprimary_key = [\"key\"]", dir.path()).unwrap();
    let err = src.discover().await.unwrap_err();
    assert!(err.to_string().contains("primary_key names `key`"), "{err}");
    let src = source(
        "path = \"x.csv\"\ncolumns = { nme = \"string\" }",
        dir.path(),
    )
    .unwrap();
    let err = src.discover().await.unwrap_err();
    assert!(err.to_string().contains("did you mean `name`"), "{err}");
}

#[tokio::test]
async fn sink_appends_carefully_and_checks_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let snk = sink("path = \"out\"", dir.path()).unwrap();
    snk.check().await.unwrap();
    assert!(
        !dir.path().join("out").exists(),
        "check must not create the folder"
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let text = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let batch = testkit::simple_batch(1, 2, "a");
    let request = |mode| WriteRequest {
        stream: "s".into(),
        schema: batch.schema(),
        mode,
        run_id: "r1".into(),
        deletes: None,
    };

    // an existing file without a final line break, same header
    std::fs::write(out.join("s.csv"), "id,name,version\n0,z,1").unwrap();
    let mut w = snk.open(request(WriteMode::Append)).await.unwrap();
    w.write(batch.clone()).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 2);
    assert_eq!(summary.outputs[0].kind, "file");
    assert!(summary.outputs[0].location.ends_with("s.csv"));
    assert_eq!(text("s.csv"), "id,name,version\n0,z,1\n1,a-1,1\n2,a-2,1\n");

    // another header: refused, file untouched
    std::fs::write(out.join("t.csv"), "id,other\n1,2\n").unwrap();
    let err = testkit::open_refused(snk.as_ref(), "t", batch.schema(), WriteMode::Append).await;
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch, "{err}");
    assert_eq!(text("t.csv"), "id,other\n1,2\n");

    // an aborted append leaves the file as of its last flush
    let mut w = snk.open(request(WriteMode::Append)).await.unwrap();
    w.write(testkit::simple_batch(3, 1, "b")).await.unwrap();
    w.flush().await.unwrap();
    w.write(testkit::simple_batch(4, 1000, "lost"))
        .await
        .unwrap();
    w.abort().await.unwrap();
    assert_eq!(
        text("s.csv"),
        "id,name,version\n0,z,1\n1,a-1,1\n2,a-2,1\n3,b-3,1\n"
    );

    // an aborted overwrite leaves the old file and no temp file
    let mut w = snk.open(request(WriteMode::Overwrite)).await.unwrap();
    w.write(testkit::simple_batch(10, 5, "new")).await.unwrap();
    w.abort().await.unwrap();
    assert!(text("s.csv").starts_with("id,name,version\n0,z,1\n"));
    assert_eq!(leftovers(&out), Vec::<String>::new());

    // upsert and odd stream names are refused
    let err = testkit::open_refused(snk.as_ref(), "s", batch.schema(), WriteMode::Upsert).await;
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = testkit::open_refused(snk.as_ref(), "../x", batch.schema(), WriteMode::Append).await;
    assert!(err.to_string().contains("cannot be a file name"), "{err}");

    // a folder that cannot be made
    std::fs::write(dir.path().join("plain"), "x").unwrap();
    let err = sink("path = \"plain/out\"", dir.path())
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is a file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_to_jsonl_through_the_runtime_and_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,name,joined,score\n1,Ada,2024-01-02,1.5\n2,\"Bob, Jr.\",2024-02-03,\n",
    )
    .unwrap();
    let src = source("path = \"people.csv\"\nprimary_key = [\"id\"]", dir.path()).unwrap();
    let snk = sink("path = \"out\"\nformat = \"jsonl\"", dir.path()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, snk, state.path());
    let report = testkit::sync(&rt, &[], ("file", "file")).await;
    assert_eq!(report.rows_committed(), 2, "{}", report.summary());
    let text = std::fs::read_to_string(dir.path().join("out/people.jsonl")).unwrap();
    assert_eq!(
        text,
        "{\"id\":1,\"name\":\"Ada\",\"joined\":\"2024-01-02\",\"score\":1.5}\n{\"id\":2,\"name\":\"Bob, Jr.\",\"joined\":\"2024-02-03\",\"score\":null}\n"
    );
    let back = source("path = \"out/people.jsonl\"", dir.path()).unwrap();
    let info = back.discover().await.unwrap();
    assert_eq!(
        testkit::column_types(&info.streams[0].schema),
        ["id int64", "name string", "joined date", "score float64"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_fails_the_run_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("n.csv"), "id\n1\n2\nthree\n4\n").unwrap();
    let src = source("path = \"n.csv\"\ncolumns = { id = \"int64\" }", dir.path()).unwrap();
    let snk = sink("path = \"out\"", dir.path()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, snk, state.path());
    let report = testkit::sync(&rt, &[], ("file", "file")).await;
    let err = report.streams[0].error.clone().unwrap();
    assert!(
        err.contains("n.csv") && err.contains("line 4") && err.contains("expected int64"),
        "{err}"
    );
}
