//! `after_read` on a file several streams read (two sheets of one workbook, `sheet = "*"`):
//! it is archived once, after every stream reading it has committed it, and never before;
//! a stream that fails keeps it in place, and the run that later commits that stream
//! archives it. No row lost or doubled.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{sink, source};
use ferry_core::Sink;
use ferry_engine::config::StreamConfig;
use ferry_engine::report::{RunReport, Status};
use ferry_engine::runtime::RunOptions;
use ferry_testkit::names as files;
use ferry_testkit::python::run_python;
use ferry_testkit::{self as testkit, FailingSink};
use tempfile::TempDir;

/// `in/orders.xlsx`: sheet `north` with orders 1–3, sheet `south` with orders 4–5.
fn workbook(dir: &Path) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    run_python(
        r#"
import sys, xlsxwriter
wb = xlsxwriter.Workbook(f"{sys.argv[1]}/in/orders.xlsx")
for sheet, ids in [("north", [1, 2, 3]), ("south", [4, 5])]:
    s = wb.add_worksheet(sheet)
    s.write_row(0, 0, ["id", "city"])
    for r, i in enumerate(ids, start=1):
        s.write_row(r, 0, [i, f"{sheet}-{i}"])
wb.close()
"#,
        &[dir.to_str().unwrap()],
        &[("xlsxwriter", "xlsxwriter")],
    );
}

const SOURCE: &str = "path = \"in/orders.xlsx\"\nsheet = \"*\"\nafter_read = \"archive\"";

/// A client folder holding the workbook, a state folder, and the file sink into `out/`.
fn setup() -> (TempDir, TempDir, Arc<dyn Sink>) {
    let dir = tempfile::tempdir().unwrap();
    workbook(dir.path());
    let snk = sink("path = \"out\"", dir.path()).unwrap();
    (dir, tempfile::tempdir().unwrap(), snk)
}

/// Both sheets' streams, incremental.
fn streams() -> Vec<StreamConfig> {
    ["orders_north", "orders_south"]
        .iter()
        .map(|n| {
            serde_json::from_value(serde_json::json!({ "name": n, "incremental": true })).unwrap()
        })
        .collect()
}

async fn run(dir: &Path, state: &Path, snk: Arc<dyn Sink>) -> RunReport {
    let src = source(SOURCE, dir).unwrap();
    let rt = testkit::runtime(src, snk, state);
    rt.sync(&streams(), &RunOptions::default(), None, ("file", "file"))
        .await
        .unwrap()
}

/// The ids delivered to `out/<stream>.csv`, in order (none: no file).
fn ids(dir: &Path, stream: &str) -> Vec<i64> {
    let Ok(text) = std::fs::read_to_string(dir.join(format!("out/{stream}.csv"))) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Every file settled by the run, with what was done (`None`) or why not.
fn settled(report: &RunReport) -> Vec<(String, String, Option<String>)> {
    let all = report.streams.iter().flat_map(|s| s.settled.iter());
    all.map(|x| (x.item.clone(), x.action.clone(), x.error.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workbook_is_archived_once_after_both_sheets_committed() {
    let (dir, state, snk) = setup();
    let report = run(dir.path(), state.path(), snk.clone()).await;
    testkit::assert_succeeded(&report);
    assert_eq!(ids(dir.path(), "orders_north"), [1, 2, 3]);
    assert_eq!(ids(dir.path(), "orders_south"), [4, 5]);
    assert_eq!(
        settled(&report),
        [(
            "in/orders.xlsx".to_string(),
            "archived to in/processed/orders.xlsx".to_string(),
            None
        )],
        "archived once, by the stream that committed last"
    );
    assert_eq!(files(&dir.path().join("in")), ["processed"]);
    assert_eq!(files(&dir.path().join("in/processed")), ["orders.xlsx"]);

    // a rerun finds nothing new and moves nothing
    let report = run(dir.path(), state.path(), snk).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 0);
    assert!(settled(&report).is_empty());
    assert_eq!(files(&dir.path().join("in/processed")), ["orders.xlsx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_that_failed_keeps_the_workbook_until_a_later_run_commits_it() {
    let (dir, state, snk) = setup();

    // the south sheet's delivery fails: north commits, the workbook stays for south
    let failing: Arc<dyn Sink> =
        Arc::new(FailingSink::at_close(snk.clone(), false).only("orders_south"));
    let report = run(dir.path(), state.path(), failing).await;
    assert_eq!(report.status, Status::Failed);
    let north = report.streams.iter().find(|s| s.stream == "orders_north");
    assert_eq!(north.unwrap().status, Status::Succeeded);
    assert_eq!(ids(dir.path(), "orders_north"), [1, 2, 3]);
    assert!(ids(dir.path(), "orders_south").is_empty());
    assert!(settled(&report).is_empty(), "{:?}", settled(&report));
    assert_eq!(files(&dir.path().join("in")), ["orders.xlsx"]);

    // the next run reads south only (north's saved state covers the workbook), then
    // archives it: north committed it in the run before
    let report = run(dir.path(), state.path(), snk.clone()).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 2);
    assert_eq!(ids(dir.path(), "orders_north"), [1, 2, 3], "not read twice");
    assert_eq!(ids(dir.path(), "orders_south"), [4, 5]);
    let south = report.streams.iter().find(|s| s.stream == "orders_south");
    assert_eq!(south.unwrap().settled.len(), 1);
    assert_eq!(
        settled(&report)[0].1,
        "archived to in/processed/orders.xlsx"
    );
    assert_eq!(files(&dir.path().join("in")), ["processed"]);

    let report = run(dir.path(), state.path(), snk).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 0);
    assert!(settled(&report).is_empty());
}
