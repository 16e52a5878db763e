//! `after_read`: files are archived or deleted once their rows are committed and the
//! state that covers them is saved, never before; and `newest_only` / `name_date`.
//!
//! The guarantee when a run dies between the sink's commit and the state's commit (here:
//! a sink whose `close` makes the rows durable and then fails, which is what the runtime
//! sees of a run killed at that point): the files stay where they were, the state still
//! covers only what it covered before, and the next run reads again exactly the files
//! after that state — each of their rows is written once more (at least once per file:
//! `append` holds them twice, `upsert` on a primary key once), and no row is lost.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{sink, source, source_refused};
use ferry_core::{ReadRequest, Result, Sink, Source};
use ferry_engine::config::StreamConfig;
use ferry_engine::report::{RunReport, Status};
use ferry_engine::runtime::RunOptions;
use ferry_testkit::{self as testkit, FailingSink};

fn incremental(name: &str) -> Vec<StreamConfig> {
    vec![serde_json::from_value(serde_json::json!({ "name": name, "incremental": true })).unwrap()]
}

async fn run(
    src: Arc<dyn Source>,
    snk: Arc<dyn Sink>,
    state: &Path,
    streams: &[StreamConfig],
    opts: &RunOptions,
) -> RunReport {
    let rt = testkit::runtime(src, snk, state);
    rt.sync(streams, opts, None, ("file", "file"))
        .await
        .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(String::from).collect()
}

/// A config folder whose drop folder `in` holds some files, and a state folder.
struct Folders {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Folders {
    /// `files` (name under `in`, text) written.
    fn with(files: &[(&str, &str)]) -> Folders {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("in")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("in").join(name), text).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        Folders { dir, state }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A run of the source `toml` into the file sink's folder `out`.
    async fn run(&self, toml: &str, streams: &[StreamConfig], opts: &RunOptions) -> RunReport {
        let src = source(toml, self.dir.path()).unwrap();
        let snk = sink("path = \"out\"", self.dir.path()).unwrap();
        run(src, snk, self.state.path(), streams, opts).await
    }
}

const SOURCE: &str =
    "path = \"in/orders_*.csv\"\nafter_read = \"archive\"\ncolumns = { id = \"int64\" }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_archived_after_the_commit_and_never_read_twice() {
    let f = Folders::with(&[
        ("orders_1.csv", "id,v\n1,a\n2,b\n"),
        ("orders_2.csv", "id,v\n3,c\n"),
    ]);
    let streams = incremental("orders");
    let go = || async { f.run(SOURCE, &streams, &RunOptions::default()).await };

    let report = go().await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 3);
    assert_eq!(files(&f.path("in")), ["processed"]);
    assert_eq!(
        files(&f.path("in/processed")),
        ["orders_1.csv", "orders_2.csv"]
    );
    let summary = report.summary();
    assert!(
        summary.contains("orders: in/orders_1.csv archived to in/processed/orders_1.csv"),
        "{summary}"
    );
    assert_eq!(report.streams[0].settled.len(), 2);

    // a new file: only it is read, then archived beside the others
    std::fs::write(f.path("in/orders_3.csv"), "id,v\n4,d\n").unwrap();
    let report = go().await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 1, "{}", report.summary());
    assert_eq!(
        files(&f.path("in/processed")),
        ["orders_1.csv", "orders_2.csv", "orders_3.csv"]
    );

    // an empty drop folder: nothing read, the columns known from the archive
    let report = go().await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 0, "{}", report.summary());

    // a file of a name archived before is archived beside it, not over it
    std::fs::write(f.path("in/orders_1.csv"), "id,v\n5,e\n").unwrap();
    let report = go().await;
    testkit::assert_succeeded(&report);
    assert_eq!(
        files(&f.path("in/processed")),
        [
            "orders_1-2.csv",
            "orders_1.csv",
            "orders_2.csv",
            "orders_3.csv"
        ]
    );
    assert_eq!(
        lines(&f.path("out/orders.csv")),
        ["id,v", "1,a", "2,b", "3,c", "4,d", "5,e"],
        "every row once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_only_what_was_read_and_a_trial_touches_nothing() {
    let f = Folders::with(&[
        ("orders_1.csv", "id,v\n1,a\n2,b\n"),
        ("other.csv", "id,v\n9,z\n"),
    ]);
    let toml = "path = \"in/orders_*.csv\"\nafter_read = \"delete\"";
    let streams = incremental("orders");

    // a trial (--limit) and a dry run roll back: nothing is deleted
    let trial = RunOptions {
        limit: Some(1),
        ..Default::default()
    };
    let report = f.run(toml, &streams, &trial).await;
    testkit::assert_succeeded(&report);
    assert!(report.streams[0].settled.is_empty());
    assert_eq!(files(&f.path("in")), ["orders_1.csv", "other.csv"]);

    let report = f.run(toml, &streams, &RunOptions::default()).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 2);
    assert_eq!(
        files(&f.path("in")),
        ["other.csv"],
        "only the stream's file"
    );
    assert!(report.summary().contains("in/orders_1.csv deleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_archived_before_the_state_is_committed() {
    let f = Folders::with(&[("orders_1.csv", "id,v\n1,a\n2,b\n")]);
    let streams = incremental("orders");
    let go = |after_commit: Option<bool>| {
        let (dir, state, streams) = (f.dir.path(), f.state.path(), &streams);
        async move {
            let src = source(SOURCE, dir).unwrap();
            let file_sink = sink("path = \"out\"", dir).unwrap();
            let snk: Arc<dyn Sink> = match after_commit {
                Some(after_commit) => Arc::new(FailingSink::at_close(file_sink, after_commit)),
                None => file_sink,
            };
            run(src, snk, state, streams, &RunOptions::default()).await
        }
    };

    // run 1 commits and archives orders_1
    testkit::assert_succeeded(&go(None).await);
    std::fs::write(f.path("in/orders_2.csv"), "id,v\n3,c\n").unwrap();
    let state_before = std::fs::read_to_string(f.state.path().join("state.json")).unwrap();

    // the destination fails: nothing committed, nothing archived
    let report = go(Some(false)).await;
    assert_eq!(report.status, Status::Failed);
    assert!(report.streams[0].settled.is_empty());
    assert_eq!(files(&f.path("in")), ["orders_2.csv", "processed"]);

    // killed after the sink's commit, before the state's: the file stays, its rows are in
    let report = go(Some(true)).await;
    assert_eq!(report.status, Status::Failed);
    assert!(report.streams[0].settled.is_empty());
    assert_eq!(files(&f.path("in")), ["orders_2.csv", "processed"]);
    let after = std::fs::read_to_string(f.state.path().join("state.json")).unwrap();
    let covered = |s: &str| s.contains("orders_2.csv");
    assert!(
        !covered(&after) && !covered(&state_before),
        "state unchanged"
    );
    assert_eq!(
        lines(&f.path("out/orders.csv")),
        ["id,v", "1,a", "2,b", "3,c"]
    );

    // the next run reads exactly orders_2 again (not orders_1), then archives it
    let report = go(None).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 1);
    assert_eq!(files(&f.path("in")), ["processed"]);
    assert_eq!(
        lines(&f.path("out/orders.csv")),
        ["id,v", "1,a", "2,b", "3,c", "3,c"],
        "append: the rows of the file read twice are there twice, none lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_archived_is_a_warning_naming_it() {
    // a file where the archive folder should be
    let f = Folders::with(&[("orders_1.csv", "id,v\n1,a\n"), ("done", "not a folder")]);
    let toml = format!("{SOURCE}\narchive_to = \"done\"");
    let report = f
        .run(&toml, &incremental("orders"), &RunOptions::default())
        .await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 1);
    let summary = report.summary();
    assert!(
        summary.contains("WARNING: in/orders_1.csv not archived to in/done/orders_1.csv")
            && summary.contains("the saved state covers it"),
        "{summary}"
    );
    assert!(f.path("in/orders_1.csv").exists());
}

/// A file with `mtime` seconds since the epoch as its modification time.
fn write_at(path: &Path, text: &str, mtime: u64) {
    std::fs::write(path, text).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

async fn ids(src: &dyn Source, stream: &str) -> Result<Vec<i64>> {
    let msgs = testkit::try_messages(src, ReadRequest::full(stream)).await?;
    Ok(testkit::ids(&testkit::batches(&msgs)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_only_and_the_date_in_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // by name: a, b, c; by the date in the name: c, a, b; by modification: b, c, a
    write_at(&base.join("a_20240105.csv"), "id\n1\n", 3_000);
    write_at(&base.join("b_20240301.csv"), "id\n2\n", 1_000);
    write_at(&base.join("c_20231231.csv"), "id\n3\n", 2_000);
    let read = |toml: &'static str| async move {
        let src = source(toml, base).unwrap();
        ids(&*src, "s").await
    };
    let p = "path = \"*.csv\"\nstream = \"s\"";
    assert_eq!(read(p).await.unwrap(), [1, 2, 3]);
    let dated = "path = \"*.csv\"\nstream = \"s\"\nname_date = \"_%Y%m%d\"";
    assert_eq!(read(dated).await.unwrap(), [3, 1, 2], "in date order");
    let newest = "path = \"*.csv\"\nstream = \"s\"\nnewest_only = true";
    assert_eq!(read(newest).await.unwrap(), [1], "the latest modified");
    let newest_dated =
        "path = \"*.csv\"\nstream = \"s\"\nnewest_only = true\nname_date = \"%Y%m%d\"";
    assert_eq!(read(newest_dated).await.unwrap(), [2], "the latest date");

    // a file without a date is an error naming it, never skipped
    write_at(&base.join("d_final.csv"), "id\n4\n", 4_000);
    let e = read(dated).await.unwrap_err().to_string();
    assert!(
        e.contains("`d_final.csv` has no date like `name_date = \"_%Y%m%d\"`"),
        "{e}"
    );
    for (toml, needle) in [
        ("path = \"*.csv\"\nname_date = \"%d%m\"", "no `%Y`"),
        (
            "path = \"*.csv\"\narchive_to = \"x\"",
            "is for `after_read = \"archive\"`",
        ),
        (
            "path = \"*.csv\"\nafter_read = \"archive\"\narchive_to = \"../x\"",
            "below the stream's root",
        ),
        ("path = \"*.csv\"\nafter_read = \"move\"", "after_read"),
    ] {
        let e = source(toml, base).err().expect(toml).to_string();
        assert!(e.contains(needle), "{toml}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_date_in_the_name_as_a_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders_20240131.csv"), "id\n1\n2\n").unwrap();
    std::fs::write(dir.path().join("orders_20240201.csv"), "id\n3\n").unwrap();
    let toml = "path = \"orders_*.csv\"\nname_date = \"%Y%m%d\"\nname_date_column = \"file_date\"\nfile_column = \"file\"";
    let src = source(toml, dir.path()).unwrap();
    let catalog = src.discover().await.unwrap();
    let names: Vec<_> = catalog.streams[0]
        .schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(names, ["id:Int64", "file:Utf8", "file_date:Date32"]);
    let msgs = testkit::messages(&*src, ReadRequest::full("orders")).await;
    let mut rows = Vec::new();
    for m in msgs {
        if let ferry_core::Message::Batch(b) = m {
            rows.extend(testkit::rows(&[b]));
        }
    }
    let text: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(rows.len(), 3);
    assert!(
        text[0].contains("2024-01-31") && text[0].contains("orders_20240131.csv"),
        "{text:?}"
    );
    assert!(text[2].contains("2024-02-01"), "{text:?}");
    let e = source_refused("path = \"*.csv\"\nname_date_column = \"d\"", dir.path()).to_string();
    assert!(e.contains("set `name_date` too"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_it_was_read_is_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let (a, b) = (
        dir.path().join("in/orders_a.csv"),
        dir.path().join("in/orders_b.csv"),
    );
    write_at(&a, "id,v\n1,a\n", 1_000);
    write_at(&b, "id,v\n2,b\n", 2_000);
    let src = source(SOURCE, dir.path()).unwrap();
    let msgs = testkit::messages(&*src, ReadRequest::incremental("orders", None)).await;
    let states: Vec<_> = msgs
        .into_iter()
        .filter_map(|m| match m {
            ferry_core::Message::Checkpoint(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(states.len(), 2, "a checkpoint after each file");
    // the client appends to `b` after it was read
    write_at(&b, "id,v\n2,b\n3,c\n", 3_000);
    // the first checkpoint covers `a` only
    let settled = src.committed("orders", &states[0]).await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].item, "in/orders_a.csv");
    assert!(settled[0].error.is_none(), "{settled:?}");
    let settled = src.committed("orders", &states[1]).await.unwrap();
    assert_eq!(settled.len(), 1);
    let e = settled[0].error.as_deref().unwrap_or_default();
    assert!(e.contains("changed since it was read"), "{e}");
    assert!(b.exists() && !a.exists());
    // committed again: nothing left to do
    assert!(src
        .committed("orders", &states[1])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_two_streams_read_is_archived_once_both_committed_it() {
    let f = Folders::with(&[("orders_1.csv", "id,v\n1,a\n2,b\n")]);
    let toml = "streams = [{ name = \"a\", path = \"in/orders_*.csv\" }, { name = \"b\", path = \"in/*.csv\" }]\nafter_read = \"archive\"\ncolumns = { id = \"int64\" }";
    let streams: Vec<StreamConfig> = ["a", "b"].into_iter().flat_map(incremental).collect();
    let report = f.run(toml, &streams, &RunOptions::default()).await;
    testkit::assert_succeeded(&report);
    // each stream read both rows, whichever committed first
    assert_eq!(report.rows_committed(), 4);
    assert_eq!(lines(&f.path("out/a.csv")).len(), 3);
    assert_eq!(lines(&f.path("out/b.csv")).len(), 3);
    // moved once, by the stream that committed it last
    let settled: Vec<_> = report.streams.iter().flat_map(|s| &s.settled).collect();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].action, "archived to in/processed/orders_1.csv");
    assert!(settled[0].error.is_none(), "{settled:?}");
    assert_eq!(files(&f.path("in")), ["processed"]);
    assert_eq!(files(&f.path("in/processed")), ["orders_1.csv"]);
    assert!(!report.summary().contains("WARNING"));
}
