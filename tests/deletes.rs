//! `deletes = "hard" | "soft"` driven through `ferry` as a person would, into SQLite,
//! PostgreSQL and MySQL: rows whose key left the source are deleted (hard) or marked in
//! `_ferry_deleted_at` (soft) after a complete read, and only then: a trial (`--limit`),
//! a failed run and a run that rejected rows delete nothing. The report and the receipt
//! count what was deleted; a key that comes back is unmarked.
//!
//! The postgres and mysql tests need PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`)
//! and MySQL/MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/test` starts both.

mod support;

use std::path::Path;

use support::cli::{ferry, out_apart as text, sync_reported as sync};
use support::db::{MysqlDestination, PgDestination};
use support::folder::with_config as folder;
use support::items::{self, source};
use support::read;

/// A destination row: id, name, whether `_ferry_deleted_at` is set.
type Row = (i64, String, bool);

/// The destination's rows of `table`, by id; `soft` when it has `_ferry_deleted_at`.
type Reader<'a> = &'a dyn Fn(&str, bool) -> Vec<Row>;

fn config(destination: &str, deletes: &str, extra: &str) -> String {
    let stream = format!(
        "mode = \"upsert\"\nprimary_key = [\"id\"]\ndeletes = \"{deletes}\"\n\
         checks = [{{ type = \"range\", column = \"n\", min = 0 }}]\n{extra}"
    );
    items::config(destination, &stream)
}

fn rows(list: &[(i64, &str, bool)]) -> Vec<Row> {
    list.iter()
        .map(|(i, n, d)| (*i, n.to_string(), *d))
        .collect()
}

/// What the destination should hold of `all` once `gone` left the source: every row with
/// its mark (soft), or only the rows still there (hard).
fn held_after(soft: bool, all: &[(i64, &str)], gone: &[i64]) -> Vec<Row> {
    let marked: Vec<(i64, &str, bool)> = all
        .iter()
        .map(|&(i, n)| (i, n, gone.contains(&i)))
        .filter(|r| soft || !r.2)
        .collect();
    rows(&marked)
}

/// Four runs into one destination: a first sync, a trial, a failing run and a sync
/// after two keys left the source (and one changed); then one key comes back.
fn deletes_after_complete_reads_only(destination: &str, soft: bool, held: Reader<'_>) {
    let deletes = if soft { "soft" } else { "hard" };
    let tmp = folder(&config(destination, deletes, ""));
    let dir = tmp.path();
    let first = [
        (1, "a", 1),
        (2, "b", 2),
        (3, "c", 3),
        (4, "d", 4),
        (5, "e", 5),
    ];
    source(dir, &first);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "first sync: {out}");
    assert_eq!(rep["rows_deleted"], 0, "{rep:#}");
    let all = rows(&[
        (1, "a", false),
        (2, "b", false),
        (3, "c", false),
        (4, "d", false),
        (5, "e", false),
    ]);
    assert_eq!(held("items", soft), all);

    // 2 and 4 leave the source, 1 changes, 6 arrives
    let later = [(1, "A", 1), (3, "c", 3), (5, "e", 5), (6, "f", 6)];
    source(dir, &later);
    let o = ferry(dir, &["plan"]);
    let verb = if soft { "mark deleted" } else { "delete" };
    assert!(
        text(&o).contains(&format!(
            "deletes:     would {verb} 2 rows the source no longer holds"
        )),
        "{}",
        text(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "plan says something would change: {}",
        text(&o)
    );
    let (ok, rep, out) = sync(dir, &["--limit", "2"]);
    assert!(ok, "trial: {out}");
    assert!(rep.get("rows_deleted").is_none(), "{rep:#}");
    assert!(
        rep["deletes_skipped"].as_str().unwrap().contains("trial"),
        "{rep:#}"
    );
    assert_eq!(held("items", soft), all, "a trial deleted or changed rows");

    // a row fails its check: the stream fails, nothing is deleted
    let mut failing = later.to_vec();
    failing.push((7, "g", -1));
    source(dir, &failing);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(!ok, "a failed check fails the run: {out}");
    assert!(rep.get("rows_deleted").is_none(), "{rep:#}");
    let kept = held("items", soft);
    assert!(
        kept.iter().any(|r| r.0 == 2 && !r.2) && kept.iter().any(|r| r.0 == 4 && !r.2),
        "a failed run deleted rows: {kept:?}"
    );

    source(dir, &later);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "sync: {out}");
    assert_eq!(rep["rows_deleted"], 2, "{rep:#}");
    assert!(
        out.contains("items: 2 rows the source no longer holds deleted"),
        "{out}"
    );
    let receipt = read::receipt_of_report(dir, "r.json");
    assert_eq!(receipt["receipt"]["streams"][0]["rows_deleted"], 2);
    let expect = held_after(
        soft,
        &[(1, "A"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")],
        &[2, 4],
    );
    assert_eq!(held("items", soft), expect);
    // rows read are what the source holds: deleted rows are not missing from the count
    assert_eq!(rep["rows_read"], 4);
    assert_eq!(rep["rows_committed"], 4);

    // 2 comes back: reinserted (hard) or unmarked (soft); 4 stays gone
    let back = [
        (1, "A", 1),
        (2, "b", 2),
        (3, "c", 3),
        (5, "e", 5),
        (6, "f", 6),
    ];
    source(dir, &back);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "sync: {out}");
    assert_eq!(rep["rows_deleted"], 0, "{rep:#}");
    let expect = held_after(
        soft,
        &[(1, "A"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")],
        &[4],
    );
    assert_eq!(held("items", soft), expect);
    let o = ferry(dir, &["plan"]);
    assert!(
        text(&o).contains(&format!("deletes:     would {verb} 0 rows")),
        "a marked row is not counted again: {}",
        text(&o)
    );
}

fn sqlite_rows(db: &Path, table: &str, soft: bool) -> Vec<Row> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mark = if soft {
        "_ferry_deleted_at IS NOT NULL"
    } else {
        "0"
    };
    let sql = format!("SELECT id, name, {mark} FROM \"{table}\" ORDER BY id");
    let mut stmt = c.prepare(&sql).unwrap();
    let found = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    found.map(|r| r.unwrap()).collect()
}

#[test]
fn deletes_into_sqlite() {
    for soft in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let db = out.path().join("out.db");
        let section = format!("type = \"sqlite\"\npath = \"{}\"", db.display());
        deletes_after_complete_reads_only(&section, soft, &|t, s| sqlite_rows(&db, t, s));
        // the keys tables are gone
        let c = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_ferry\\_stage%' ESCAPE '\\'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "a keys table was left behind");
    }
}

#[test]
fn deletes_into_postgres() {
    for soft in [false, true] {
        let dest = PgDestination::new("ferry_deletes");
        let held = |t: &str, s: bool| -> Vec<Row> {
            let mark = if s {
                "_ferry_deleted_at IS NOT NULL"
            } else {
                "false"
            };
            let sql = format!("SELECT id, name, {mark} FROM {{schema}}.\"{t}\" ORDER BY id");
            let rows = dest.query(&sql);
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        };
        deletes_after_complete_reads_only(&dest.section, soft, &held);
        dest.finish();
    }
}

#[test]
fn deletes_into_mysql() {
    for soft in [false, true] {
        let dest = MysqlDestination::new("ferry_deletes");
        let held = |t: &str, s: bool| -> Vec<Row> {
            let mark = if s {
                "_ferry_deleted_at IS NOT NULL"
            } else {
                "0"
            };
            let sql = format!("SELECT id, name, {mark} FROM `{t}` ORDER BY id");
            let rows: Vec<(i64, String, i64)> = dest.query(&sql);
            rows.into_iter().map(|(i, n, d)| (i, n, d != 0)).collect()
        };
        deletes_after_complete_reads_only(&dest.section, soft, &held);
        dest.finish();
    }
}

#[test]
fn rejected_rows_delete_nothing_and_deletes_need_an_upsert_of_a_full_read() {
    let tmp = folder(&config(
        "type = \"sqlite\"\npath = \"out.db\"",
        "hard",
        "on_bad_record = \"quarantine\"\nmax_bad_ratio = 1\n",
    ));
    let dir = tmp.path();
    source(dir, &[(1, "a", 1), (2, "b", 2)]);
    let (ok, _, out) = sync(dir, &[]);
    assert!(ok, "{out}");
    source(dir, &[(1, "a", 1), (3, "c", -3)]);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "{out}");
    assert_eq!(rep["rows_rejected"], 1);
    assert!(
        out.contains("nothing deleted: 1 rows were rejected"),
        "{out}"
    );
    let held = sqlite_rows(&dir.join("out.db"), "items", false);
    assert_eq!(held, rows(&[(1, "a", false), (2, "b", false)]));

    for (what, edit, needle) in [
        (
            "append",
            ("mode = \"upsert\"", "mode = \"append\""),
            "needs mode = \"upsert\"",
        ),
        (
            "incremental",
            ("deletes = ", "cursor = \"id\"\ndeletes = "),
            "cannot list its keys",
        ),
    ] {
        let text_of = config("type = \"sqlite\"\npath = \"out.db\"", "soft", "");
        let tmp = folder(&text_of.replacen(edit.0, edit.1, 1));
        source(tmp.path(), &[(1, "a", 1)]);
        for cmd in [&["sync"][..], &["plan"][..]] {
            let o = ferry(tmp.path(), cmd);
            assert_eq!(o.status.code(), Some(2), "{what} {cmd:?}: {}", text(&o));
            assert!(text(&o).contains(needle), "{what} {cmd:?}: {}", text(&o));
        }
    }
}

/// An incremental stream with `deletes`: the read brings only changed rows, and the
/// source's listing of its keys finds the row that left.
#[test]
fn an_incremental_read_lists_the_source_keys_to_find_deletes() {
    let tmp = folder(
        "[source]\ntype = \"sqlite\"\npath = \"src.db\"\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"items\"\nmode = \"upsert\"\nprimary_key = [\"id\"]\n\
         cursor = \"version\"\ndeletes = \"hard\"\n",
    );
    let dir = tmp.path();
    let src = rusqlite::Connection::open(dir.join("src.db")).unwrap();
    src.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL);
         INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 1);",
    )
    .unwrap();
    let held = || -> Vec<(i64, String)> {
        let c = rusqlite::Connection::open(dir.join("out.db")).unwrap();
        let mut stmt = c.prepare("SELECT id, name FROM items ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "{out}");
    assert_eq!(rep["rows_deleted"], 0, "{rep:#}");
    src.execute_batch(
        "DELETE FROM items WHERE id = 2; UPDATE items SET name = 'C', version = 2 WHERE id = 3;",
    )
    .unwrap();
    let o = ferry(dir, &["plan"]);
    assert!(
        text(&o).contains("deletes:     would delete 1 rows the source no longer holds"),
        "{}",
        text(&o)
    );
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "{out}");
    assert_eq!(rep["rows_read"], 1, "only the changed row is read: {rep:#}");
    assert_eq!(rep["rows_deleted"], 1, "{rep:#}");
    assert_eq!(held(), [(1, "a".to_string()), (3, "C".to_string())]);
}
