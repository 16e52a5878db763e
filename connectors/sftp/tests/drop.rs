//! A client's drop over SFTP with the shared source fields: a Windows-1252 CSV with `;`,
//! a title line, decimal commas and a totals line (written by Python's codecs and `csv`
//! module, an independent writer), dated in its name, read with exact values through a
//! real sshd, and archived on the server only once the state that covers it is committed.

mod common;

use std::sync::Arc;

use common::{login, names as files, source, SftpServer};
use ferry_core::Sink;
use ferry_engine::config::StreamConfig;
use ferry_engine::report::Status;
use ferry_engine::runtime::RunOptions;
use ferry_testkit::rows_as_text as rows;
use ferry_testkit::{self as testkit, FailingSink, MemorySink};

/// The German Excel export: cp1252, `;`, a title line, `1.234,56`, a totals line; the
/// file named by `sys.argv[1]`.
const EXPORT: &str = r#"
import csv, sys
rows = [
    ["Export Kunden 31.01.2024"],
    ["id", "name", "city", "amount"],
    [1, "Müller", "Köln", "1.234,56"],
    [2, "François Dupont", "Besançon", "-7,50"],
    [3, "Ørsted; \"Søren\"", "Århus", "12.345.678,9"],
    ["Summe", "", "", "12.346.906,96"],
]
with open(sys.argv[1], "w", encoding="cp1252", newline="") as f:
    csv.writer(f, delimiter=";", lineterminator="\r\n").writerows(rows)
"#;

const SOURCE: &str = "path = \"in/kunden_*.csv\"\nstream = \"kunden\"\n\
    encoding = \"windows-1252\"\nskip_rows = 1\nskip_footer_rows = 1\n\
    decimal_separator = \",\"\nthousands_separator = \".\"\n\
    columns = { amount = \"decimal(12,2)\" }\n\
    name_date = \"%Y%m%d\"\nname_date_column = \"file_date\"\n\
    after_read = \"archive\"\narchive_to = \"done\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cp1252_drop_reads_exactly_and_is_archived_after_the_commit() {
    let server = SftpServer::start();
    let local = tempfile::tempdir().unwrap();
    let written = local.path().join("kunden.csv");
    testkit::python::run_python(EXPORT, &[written.to_str().unwrap()], &[]);
    server.put("in/kunden_20240131.csv", &std::fs::read(&written).unwrap());
    let state = tempfile::tempdir().unwrap();
    let streams: Vec<StreamConfig> =
        vec![
            serde_json::from_value(serde_json::json!({ "name": "kunden", "incremental": true }))
                .unwrap(),
        ];
    let run = |snk: Arc<dyn Sink>| {
        let (server, state, streams) = (&server, state.path(), &streams);
        async move {
            let src = source(&login(server, SOURCE)).unwrap();
            testkit::runtime(src, snk, state)
                .sync(streams, &RunOptions::default(), None, ("sftp", "memory"))
                .await
                .unwrap()
        }
    };
    let inbox = server.root().join("in");

    // the destination fails: nothing committed, the file stays where the client put it
    let report = run(Arc::new(FailingSink::new(
        Arc::new(MemorySink::default()),
        1,
    )))
    .await;
    assert_eq!(report.status, Status::Failed, "{}", report.summary());
    assert!(report.streams[0].settled.is_empty());
    assert_eq!(files(&inbox), ["kunden_20240131.csv"]);

    // committed: exact values (accents, decimals, the date from the name), then archived
    let memory = MemorySink::default();
    let report = run(Arc::new(memory.clone())).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 3, "{}", report.summary());
    let tables = memory.tables.lock().unwrap();
    let batches = &tables["kunden"];
    let schema = batches[0].schema();
    assert_eq!(
        ferry_testkit::column_types(&schema),
        [
            "id int64",
            "name string",
            "city string",
            "amount decimal(12,2)",
            "file_date date"
        ]
    );
    let got: Vec<String> = rows(batches).iter().map(|r| r.join("|")).collect();
    assert_eq!(
        got,
        [
            "1|Müller|Köln|1234.56|2024-01-31",
            "2|François Dupont|Besançon|-7.50|2024-01-31",
            "3|Ørsted; \"Søren\"|Århus|12345678.90|2024-01-31",
        ]
    );
    drop(tables);
    assert_eq!(files(&inbox), ["done"]);
    assert_eq!(files(&inbox.join("done")), ["kunden_20240131.csv"]);
    assert_eq!(
        std::fs::read(inbox.join("done/kunden_20240131.csv")).unwrap(),
        std::fs::read(&written).unwrap(),
        "archived as it was dropped"
    );
    let summary = report.summary();
    assert!(
        summary.contains("kunden_20240131.csv archived to")
            && summary.contains("in/done/kunden_20240131.csv"),
        "{summary}"
    );
}
