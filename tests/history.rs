//! `mode = "history"` (SCD type 2) driven through `ferry` as a person would, into SQLite,
//! PostgreSQL and MySQL/MariaDB: three runs (a first load; updates, unchanged rows and a
//! new key; another update, a key gone from the source and unchanged rows) leave exactly
//! the expected versions; a rerun of an unchanged source writes nothing; `ferry plan`
//! says what a run would do; the report and the receipt count versions.
//!
//! The postgres and mysql tests need PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`)
//! and MySQL/MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/test` starts both.

mod support;

use std::path::Path;

use support::cli::{ferry, out_apart as text, sync_reported as sync};
use support::folder::with_config as folder;
use support::history::{self, Reading, Version};
use support::items::{self, source};
use support::read;

const STREAM: &str = "mode = \"history\"\nprimary_key = [\"id\"]\ndeletes = \"soft\"\n";

/// The version start of a run: its start (from its id), or the second after the latest
/// start before it when it started in the same second.
fn stamp(run_id: &str, before: Option<&str>) -> String {
    let b = run_id.as_bytes();
    let digits = |r: std::ops::Range<usize>| String::from_utf8(b[r].to_vec()).unwrap();
    let started = format!(
        "{}-{}-{} {}:{}:{}",
        digits(0..4),
        digits(4..6),
        digits(6..8),
        digits(9..11),
        digits(11..13),
        digits(13..15)
    );
    match before {
        Some(prev) if prev >= started.as_str() => {
            let t = ferry_core::values::parse_timestamp_micros(prev).unwrap();
            let next = ferry_core::values::format_timestamp_micros(t + 1_000_000);
            next[..19].replacen('T', " ", 1)
        }
        _ => started,
    }
}

/// A run's id, from its report.
fn run_id(dir: &Path) -> String {
    let report = read::json(&dir.join("r.json"));
    report["run_id"].as_str().unwrap().to_string()
}

/// Syncs and checks what the report says: rows committed, versions inserted and closed
/// by a change, current versions closed by a delete; returns the run's id.
fn run(dir: &Path, counts: [u64; 4], label: &str) -> String {
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "{label}: {out}");
    eprintln!("--- {label}: ferry sync printed:\n{out}");
    let [committed, inserted, closed, gone] = counts;
    assert_eq!(rep["write_mode"], "history", "{rep:#}");
    assert_eq!(rep["rows_committed"], committed, "{label}: {rep:#}");
    assert_eq!(rep["outputs"][0]["rows"], inserted, "{label}: {rep:#}");
    assert_eq!(rep["versions_closed"], closed, "{label}: {rep:#}");
    assert_eq!(rep["rows_deleted"], gone, "{label}: {rep:#}");
    assert!(
        out.contains(&format!(
            "items: history: {inserted} versions added, {closed} closed by a change"
        )),
        "{label}: {out}"
    );
    run_id(dir)
}

fn v(id: i64, name: &str, n: i64, from: &str, to: Option<&str>, current: bool) -> Version {
    (id, name.into(), n, from.into(), to.map(Into::into), current)
}

/// Three runs and a rerun into `destination`, whose versions `reading` reads.
fn three_runs(destination: &str, reading: Reading<'_>) {
    let held = || reading.versions();
    let tmp = folder(&items::config(destination, STREAM));
    let dir = tmp.path();
    source(dir, &[(1, "a", 1), (2, "b", 2), (3, "c", 3), (4, "d", 4)]);
    let o = ferry(dir, &["plan"]);
    assert!(
        text(&o).contains("stream items → items (history on id)")
            && text(&o).contains("create items and load it"),
        "{}",
        text(&o)
    );
    let r1 = run(dir, [4, 4, 0, 0], "run 1");
    let s1 = stamp(&r1, None);
    assert_eq!(
        held(),
        [
            v(1, "a", 1, &s1, None, true),
            v(2, "b", 2, &s1, None, true),
            v(3, "c", 3, &s1, None, true),
            v(4, "d", 4, &s1, None, true),
        ]
    );

    // 1 and 3 change, 2 and 4 do not, 5 is new
    source(
        dir,
        &[
            (1, "A", 1),
            (2, "b", 2),
            (3, "c", 30),
            (4, "d", 4),
            (5, "e", 5),
        ],
    );
    let r2 = run(dir, [5, 3, 2, 0], "run 2");
    let s2 = stamp(&r2, Some(&s1));

    // 1 changes again, 2 leaves the source, 3, 4 and 5 do not change
    let last = [(1, "AA", 1), (3, "c", 30), (4, "d", 4), (5, "e", 5)];
    source(dir, &last);
    let o = ferry(dir, &["plan"]);
    let plan = text(&o);
    eprintln!("--- ferry plan before run 3 printed:\n{plan}");
    assert!(
        plan.contains("keep the history of items (7 versions, 5 current)")
            && plan.contains(
                "deletes:     would close the current versions of 1 rows the source no longer holds"
            ),
        "{plan}"
    );
    assert_eq!(o.status.code(), Some(3), "{plan}");
    let r3 = run(dir, [4, 1, 1, 1], "run 3");
    let s3 = stamp(&r3, Some(&s2));
    assert!(s1 < s2 && s2 < s3, "{s1} {s2} {s3}");
    let expected = [
        v(1, "a", 1, &s1, Some(&s2), false),
        v(1, "A", 1, &s2, Some(&s3), false),
        v(1, "AA", 1, &s3, None, true),
        v(2, "b", 2, &s1, Some(&s3), false),
        v(3, "c", 3, &s1, Some(&s2), false),
        v(3, "c", 30, &s2, None, true),
        v(4, "d", 4, &s1, None, true),
        v(5, "e", 5, &s2, None, true),
    ];
    let table = held();
    eprintln!("--- the history table after run 3:\n{table:#?}");
    assert_eq!(table, expected);
    let receipt = read::json(&dir.join(format!(".ferry/receipts/{r3}.json")));
    let signed = &receipt["receipt"]["streams"][0];
    assert_eq!(signed["write_mode"], "history", "{signed:#}");
    assert_eq!(signed["versions_closed"], 1, "{signed:#}");
    assert_eq!(signed["rows_deleted"], 1, "{signed:#}");
    assert_eq!(signed["outputs"][0]["rows"], 1, "{signed:#}");

    // the same source again: nothing to write, nothing to close
    run(dir, [4, 0, 0, 0], "rerun");
    assert_eq!(held(), expected);
}

history::into_each!(three_runs, "ferry_history":
    history_into_sqlite, history_into_postgres, history_into_mysql);

/// A history needs a key: refused before anything is read, at the stream's entry.
#[test]
fn history_without_a_key_is_refused() {
    let tmp = folder(&items::config(
        "type = \"sqlite\"\npath = \"out.db\"",
        "mode = \"history\"\n",
    ));
    source(tmp.path(), &[(1, "a", 1)]);
    for cmd in [&["sync"][..], &["plan"][..]] {
        let o = ferry(tmp.path(), cmd);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", text(&o));
        assert!(
            text(&o).contains("is written with history but has no primary key")
                && text(&o).contains("sync.toml:"),
            "{cmd:?}: {}",
            text(&o)
        );
    }
    assert!(!tmp.path().join("out.db").exists(), "nothing is written");
}
