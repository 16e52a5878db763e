//! `mode = "history"` with an incremental read and `deletes`, driven through `ferry`
//! into SQLite, PostgreSQL and MySQL/MariaDB: three runs (a first load; updates and a
//! new key, read by cursor; another update and a key deleted at the source, found by
//! the key-only listing) leave exactly the expected versions. A history read by change
//! data capture is refused, naming both settings and what to do instead. A source that
//! gives a key twice in one run fails with Ferry's words and the key, under history and
//! under `deletes`, and leaves the table as it was.
//!
//! The postgres and mysql tests need PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`)
//! and MySQL/MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/test` starts both.

mod support;

use std::path::Path;

use support::cli::{ferry, out_apart as text, sync_reported as sync};
use support::db::{fresh, pg_url, MysqlDestination, PgDestination};
use support::folder::with_config as folder;
use support::history::{self, Reading};
use support::items::{self, source};
use support::sqlite::{self, SqliteDestination};

/// A version with its start and end as run numbers (1, 2, 3): id, name, n, from, to,
/// current.
type Version = (i64, &'static str, i64, usize, Option<usize>, bool);

/// The versions `reading` reads, by id and start, with their starts and ends as run
/// numbers: every run here adds a version, so the distinct starts are the runs' starts,
/// in order.
fn by_run(reading: &Reading<'_>) -> Vec<(i64, String, i64, usize, Option<usize>, bool)> {
    let read = reading.versions();
    let mut starts: Vec<String> = read.iter().map(|r| r.3.clone()).collect();
    starts.sort();
    starts.dedup();
    let run = |t: &str| {
        starts
            .iter()
            .position(|s| s == t)
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{t} is no run's start: {starts:?}"))
    };
    read.iter()
        .map(|r| {
            (
                r.0,
                r.1.clone(),
                r.2,
                run(&r.3),
                r.4.as_deref().map(run),
                r.5,
            )
        })
        .collect()
}

/// The SQLite source's `items` table: id, name, n, and `version` (the cursor).
struct Source {
    db: rusqlite::Connection,
}

impl Source {
    fn new(dir: &Path) -> Source {
        let db = rusqlite::Connection::open(dir.join("src.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             n INTEGER NOT NULL, version INTEGER NOT NULL)",
        )
        .unwrap();
        Source { db }
    }

    fn change(&self, sql: &str) {
        self.db.execute_batch(sql).unwrap();
    }
}

/// Syncs; checks the versions inserted, closed by a change and closed by a delete.
fn run(dir: &Path, counts: [u64; 3], label: &str) -> serde_json::Value {
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "{label}: {out}");
    let [inserted, closed, gone] = counts;
    assert_eq!(rep["write_mode"], "history", "{label}: {rep:#}");
    assert_eq!(rep["outputs"][0]["rows"], inserted, "{label}: {rep:#}");
    assert_eq!(rep["versions_closed"], closed, "{label}: {rep:#}");
    assert_eq!(rep["rows_deleted"], gone, "{label}: {rep:#}");
    rep
}

/// Three runs of an incremental history with soft deletes into `destination`.
fn incremental_history_with_deletes(destination: &str, reading: Reading<'_>) {
    let config = format!(
        "[source]\ntype = \"sqlite\"\npath = \"src.db\"\n\n[destination]\n{destination}\n\n\
         [[streams]]\nname = \"items\"\nmode = \"history\"\nprimary_key = [\"id\"]\n\
         cursor = \"version\"\ndeletes = \"soft\"\n"
    );
    let tmp = folder(&config);
    let dir = tmp.path();
    let src = Source::new(dir);
    src.change(
        "INSERT INTO items VALUES (1, 'a', 1, 1), (2, 'b', 2, 1), (3, 'c', 3, 1), (4, 'd', 4, 1)",
    );
    run(dir, [4, 0, 0], "run 1");

    // 1 and 3 change, 5 is new; 2 and 4 are not read again
    src.change(
        "UPDATE items SET name = 'A', version = 2 WHERE id = 1; \
         UPDATE items SET n = 30, version = 2 WHERE id = 3; \
         INSERT INTO items VALUES (5, 'e', 5, 2)",
    );
    let rep = run(dir, [3, 2, 0], "run 2");
    assert!(
        rep["rows_read"].as_u64().unwrap() < 5,
        "an incremental read: {rep:#}"
    );

    // 1 changes again, 2 leaves the source (found by the listing of keys)
    src.change(
        "UPDATE items SET name = 'AA', version = 3 WHERE id = 1; DELETE FROM items WHERE id = 2",
    );
    let o = ferry(dir, &["plan"]);
    let plan = text(&o);
    assert!(
        plan.contains(
            "deletes:     would close the current versions of 1 rows the source no longer holds"
        ),
        "{plan}"
    );
    let history = plan
        .lines()
        .find(|l| l.trim_start().starts_with("history:"))
        .unwrap_or_else(|| panic!("no history line: {plan}"));
    assert!(
        history.contains("compared against the 5 current versions by row hash"),
        "{history}"
    );
    run(dir, [1, 1, 1], "run 3");
    let expected: Vec<Version> = vec![
        (1, "a", 1, 1, Some(2), false),
        (1, "A", 1, 2, Some(3), false),
        (1, "AA", 1, 3, None, true),
        (2, "b", 2, 1, Some(3), false),
        (3, "c", 3, 1, Some(2), false),
        (3, "c", 30, 2, None, true),
        (4, "d", 4, 1, None, true),
        (5, "e", 5, 2, None, true),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(i, name, n, from, to, current)| (i, name.to_string(), n, from, to, current))
        .collect();
    assert_eq!(by_run(&reading), expected);

    // nothing changed: nothing read or written, nothing closed
    run(dir, [0, 0, 0], "rerun");
    assert_eq!(by_run(&reading), expected);
}

history::into_each!(incremental_history_with_deletes, "ferry_history_inc":
    incremental_history_with_deletes_into_sqlite,
    incremental_history_with_deletes_into_postgres,
    incremental_history_with_deletes_into_mysql);

/// History read by change data capture is refused before anything is read: the message
/// names both settings and the ways that work.
#[test]
fn history_by_change_data_capture_is_refused_with_the_alternative() {
    let schema = fresh("ferry_history_cdc");
    let config = format!(
        "[source]\ntype = \"postgres\"\nurl = \"{}\"\nschemas = [\"{schema}\"]\n\
         cdc = {{ slot_prefix = \"{schema}\" }}\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"items\"\nincremental = true\nmode = \"history\"\ndeletes = \"soft\"\n",
        pg_url()
    );
    support::db::block(async {
        let sql = format!(
            "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".items (id bigint PRIMARY KEY, name text)"
        );
        support::db::pg().await.batch_execute(&sql).await.unwrap();
    });
    let tmp = folder(&config);
    let o = ferry(tmp.path(), &["sync"]);
    let said = text(&o);
    support::db::block(async {
        let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
        support::db::pg().await.batch_execute(&sql).await.unwrap();
    });
    assert_eq!(o.status.code(), Some(2), "{said}");
    for needle in [
        "mode = \"history\"",
        "cdc",
        "incremental = false",
        "mode = \"upsert\"",
    ] {
        assert!(said.contains(needle), "`{needle}` in: {said}");
    }
    assert!(!tmp.path().join("out.db").exists(), "nothing is written");
}

/// A stream's lines that need each key once per run, and the setting the error names.
type Under = (&'static str, &'static str);
const HISTORY: Under = (
    "mode = \"history\"\nprimary_key = [\"id\"]\n",
    "mode = \"history\"",
);
const SOFT_DELETES: Under = (
    "mode = \"upsert\"\nprimary_key = [\"id\"]\ndeletes = \"soft\"\n",
    "deletes = \"soft\"",
);

/// A source giving key 2 twice in one run: the run fails naming the stream, the key
/// column and value (never another column's value) and what to do; the table keeps
/// what the run before left.
fn a_repeated_key_is_named(destination: &str, under: Under, held: &dyn Fn() -> i64) {
    let (stream, setting) = under;
    let tmp = folder(&items::config(destination, stream));
    let dir = tmp.path();
    source(dir, &[(1, "a", 1), (2, "b", 2)]);
    let (ok, _, out) = sync(dir, &[]);
    assert!(ok, "first sync: {out}");
    let before = held();
    source(
        dir,
        &[
            (1, "a", 1),
            (2, "private-b", 2),
            (3, "c", 3),
            (2, "private-b2", 20),
        ],
    );
    let (ok, rep, out) = sync(dir, &[]);
    assert!(!ok, "a repeated key fails the run: {out}");
    for needle in [
        "items",
        "key id = 2 twice in one run",
        "again at row 4",
        setting,
        "primary_key",
    ] {
        assert!(out.contains(needle), "`{needle}` in: {out}");
    }
    assert!(
        !out.contains("private-b") && !rep.to_string().contains("private-b"),
        "another column's value is shown: {out}"
    );
    assert!(
        !out.to_lowercase().contains("duplicate"),
        "the database's own error leaks: {out}"
    );
    assert_eq!(held(), before, "the failed run changed the table");
}

#[test]
fn a_repeated_key_under_history_into_sqlite() {
    let dest = SqliteDestination::new();
    let held = || sqlite::rows(&dest.db, "items").unwrap() as i64;
    a_repeated_key_is_named(&dest.section, HISTORY, &held);
}

#[test]
fn a_repeated_key_under_history_into_mysql() {
    let dest = MysqlDestination::new("ferry_history_rep");
    let held = || -> i64 { dest.query::<i64>("SELECT count(*) FROM items")[0] };
    a_repeated_key_is_named(&dest.section, HISTORY, &held);
    dest.finish();
}

#[test]
fn a_repeated_key_under_deletes_into_postgres() {
    let dest = PgDestination::new("ferry_deletes_rep");
    let held = || -> i64 {
        dest.query("SELECT count(*) FROM {schema}.items WHERE _ferry_deleted_at IS NULL")[0].get(0)
    };
    a_repeated_key_is_named(&dest.section, SOFT_DELETES, &held);
    dest.finish();
}

/// A history into a MariaDB table of 60 characters (its staging table's plain name would
/// pass MySQL's 64): two runs with a change and a delete make the expected versions, and
/// no helper table is left.
#[test]
fn a_history_of_a_long_table_name_into_mysql() {
    let dest = MysqlDestination::new("ferry_history_long");
    let table = format!("items_{}", "x".repeat(54));
    assert_eq!(table.len(), 60);
    let stream = format!(
        "destination = \"{table}\"\nmode = \"history\"\nprimary_key = [\"id\"]\ndeletes = \"soft\"\n"
    );
    let tmp = folder(&items::config(&dest.section, &stream));
    let dir = tmp.path();
    source(dir, &[(1, "a", 1), (2, "b", 2), (3, "c", 3)]);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "first sync: {out}");
    assert_eq!(rep["outputs"][0]["rows"], 3, "{rep:#}");
    source(dir, &[(1, "A", 1), (2, "b", 2)]);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "second sync: {out}");
    assert_eq!(rep["outputs"][0]["rows"], 1, "{rep:#}");
    assert_eq!(rep["versions_closed"], 1, "{rep:#}");
    assert_eq!(rep["rows_deleted"], 1, "{rep:#}");
    let versions: Vec<(i64, String, i64)> = dest.query(&format!(
        "SELECT id, name, _ferry_is_current + 0 FROM `{table}` ORDER BY id, _ferry_valid_from"
    ));
    let expected = [(1, "a", 0), (1, "A", 1), (2, "b", 1), (3, "c", 0)];
    let expected: Vec<(i64, String, i64)> = expected
        .iter()
        .map(|(i, n, c)| (*i, n.to_string(), *c))
        .collect();
    assert_eq!(versions, expected);
    let helpers: Vec<String> = dest.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME LIKE '\\_ferry\\_%' AND TABLE_NAME <> '_ferry_owner'",
    );
    assert!(helpers.is_empty(), "helper tables were left: {helpers:?}");
    dest.finish();
}

/// `ferry spec postgres` and a `ferry init` from PostgreSQL tell about history and cdc.
#[test]
fn spec_and_init_tell_about_history_and_cdc() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = text(&ferry(tmp.path(), &["spec", "postgres"]));
    for needle in ["\"cdc\"", "mode = \\\"history\\\"", "\\\"soft\\\""] {
        assert!(spec.contains(needle), "`{needle}` in: {spec}");
    }
    let o = ferry(
        tmp.path(),
        &[
            "init",
            "acme",
            "--source",
            "postgres",
            "--destination",
            "sqlite",
            "--dir",
            "acme",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let toml = std::fs::read_to_string(tmp.path().join("acme/sync.toml")).unwrap();
    for needle in [
        "# cdc",
        "# mode = \"upsert\"",
        "| history",
        "# incremental = true",
    ] {
        assert!(toml.contains(needle), "`{needle}` in:\n{toml}");
    }
}
