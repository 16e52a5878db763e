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

use mysql_async::prelude::Queryable;
use support::cli::{ferry, out_apart as text};
use support::db::{
    block, create_mysql_database, fresh, mysql, mysql_url, mysql_url_for, pg, pg_url,
};
use support::folder::{with_config as folder, write};
use support::read;

/// A destination row: id, name, whether `_ferry_deleted_at` is set.
type Row = (i64, String, bool);

/// The destination's rows of `table`, by id; `soft` when it has `_ferry_deleted_at`.
type Reader<'a> = &'a dyn Fn(&str, bool) -> Vec<Row>;

fn config(destination: &str, deletes: &str, extra: &str) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"items.csv\"\nstream = \"items\"\n\
         columns = {{ id = \"int64\", name = \"string\", n = \"int64\" }}\n\n\
         [destination]\n{destination}\n\n\
         [[streams]]\nname = \"items\"\nmode = \"upsert\"\nprimary_key = [\"id\"]\n\
         deletes = \"{deletes}\"\nchecks = [{{ type = \"range\", column = \"n\", min = 0 }}]\n{extra}"
    )
}

/// `items.csv` with these (id, name) rows, `n` the id.
fn items(dir: &Path, rows: &[(i64, &str)]) {
    let with_n: Vec<_> = rows.iter().map(|&(id, name)| (id, name, id)).collect();
    source(dir, &with_n);
}

/// `items.csv` with these (id, name, n) rows.
fn source(dir: &Path, rows: &[(i64, &str, i64)]) {
    let mut csv = String::from("id,name,n\n");
    for (id, name, n) in rows {
        csv.push_str(&format!("{id},{name},{n}\n"));
    }
    write(dir, "items.csv", csv);
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

/// The report's `items` stream after `ferry sync --report r.json ARGS`.
fn sync(dir: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut all = vec!["sync", "--report", "r.json"];
    all.extend_from_slice(args);
    let o = ferry(dir, &all);
    let report = read::json(&dir.join("r.json"));
    (o.status.success(), report["streams"][0].clone(), text(&o))
}

/// Four runs into one destination: a first sync, a trial, a failing run and a sync
/// after two keys left the source (and one changed); then one key comes back.
fn deletes_after_complete_reads_only(destination: &str, soft: bool, held: Reader<'_>) {
    let deletes = if soft { "soft" } else { "hard" };
    let tmp = folder(&config(destination, deletes, ""));
    let dir = tmp.path();
    let first = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")];
    items(dir, &first);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "first sync: {out}");
    assert_eq!(rep["rows_deleted"], 0, "{rep:#}");
    let all = held_after(soft, &first, &[]);
    assert_eq!(held("items", soft), all);

    // 2 and 4 leave the source, 1 changes, 6 arrives
    let later = [(1, "A"), (3, "c"), (5, "e"), (6, "f")];
    items(dir, &later);
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
    let mut failing: Vec<_> = later.iter().map(|&(id, name)| (id, name, id)).collect();
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

    items(dir, &later);
    let (ok, rep, out) = sync(dir, &[]);
    assert!(ok, "sync: {out}");
    assert_eq!(rep["rows_deleted"], 2, "{rep:#}");
    assert!(
        out.contains("items: 2 rows the source no longer holds deleted"),
        "{out}"
    );
    // the receipt of this run (runs of one second sort by their random part)
    let run = read::json(&dir.join("r.json"))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let receipt = read::json(&dir.join(format!(".ferry/receipts/{run}.json")));
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
    items(dir, &[(1, "A"), (2, "b"), (3, "c"), (5, "e"), (6, "f")]);
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

/// The query of the rows of `table` (quoted) as [`Row`]s; without `soft`, `no` (the
/// dialect's false) stands for the mark.
fn held_sql(table: &str, soft: bool, no: &str) -> String {
    let mark = if soft {
        "_ferry_deleted_at IS NOT NULL"
    } else {
        no
    };
    format!("SELECT id, name, {mark} FROM {table} ORDER BY id")
}

fn sqlite_rows(db: &Path, table: &str, soft: bool) -> Vec<Row> {
    let c = rusqlite::Connection::open(db).unwrap();
    let sql = held_sql(&format!("\"{table}\""), soft, "0");
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
        let schema = fresh("ferry_deletes");
        block(async {
            let sql = format!("CREATE SCHEMA \"{schema}\"");
            pg().await.batch_execute(&sql).await.unwrap()
        });
        let section = format!(
            "type = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"",
            pg_url()
        );
        let held = |t: &str, s: bool| -> Vec<Row> {
            let sql = held_sql(&format!("\"{schema}\".\"{t}\""), s, "false");
            block(async {
                let rows = pg().await.query(&sql, &[]).await.unwrap();
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            })
        };
        deletes_after_complete_reads_only(&section, soft, &held);
        block(async {
            let c = pg().await;
            let left = c
                .query_one(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_ferry\\_stage%'",
                    &[&schema],
                )
                .await
                .unwrap();
            assert_eq!(left.get::<_, i64>(0), 0, "a keys table was left behind");
            let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
            c.batch_execute(&sql).await.unwrap()
        });
    }
}

#[test]
fn deletes_into_mysql() {
    for soft in [false, true] {
        let db = fresh("ferry_deletes");
        create_mysql_database(&db);
        let section = format!("type = \"mysql\"\nurl = \"{}\"", mysql_url_for(&db));
        let held = |t: &str, s: bool| -> Vec<Row> {
            let sql = held_sql(&format!("`{t}`"), s, "0");
            block(async {
                let mut m = mysql(&mysql_url_for(&db)).await;
                let rows: Vec<(i64, String, i64)> = m.query(sql).await.unwrap();
                let _ = m.disconnect().await;
                rows.into_iter().map(|(i, n, d)| (i, n, d != 0)).collect()
            })
        };
        deletes_after_complete_reads_only(&section, soft, &held);
        block(async {
            let mut m = mysql(&mysql_url()).await;
            let left: Option<i64> = m
                .exec_first(
                    "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_ferry\\_stage%'",
                    (db.as_str(),),
                )
                .await
                .unwrap();
            assert_eq!(left, Some(0), "a keys table was left behind");
            m.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
            let _ = m.disconnect().await;
        });
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
