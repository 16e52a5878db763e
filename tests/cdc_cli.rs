//! PostgreSQL change data capture (`cdc = { … }`) driven through `ferry` as a person
//! would: a first run reads the whole table, later runs read its inserts, updates and
//! deletes from the replication slot and apply them in commit order, into SQLite and
//! into PostgreSQL; the report and receipt count the deleted rows; the destination ends
//! equal to the source.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`) with `wal_level = logical`:
//! `.ci/test` sets it (and restarts the server) before any test runs. Each test uses its
//! own schema, slots and publication, and drops them.

mod support;

use std::path::Path;

use support::cli::{ferry, out_apart as text};
use support::db::{block, fresh, pg, pg_url, MysqlDestination, PgDestination};
use support::folder::with_config as folder;
use support::read;
use support::sqlite::SqliteDestination;

/// A row of the `items` table: id, name, n.
type Row = (i64, Option<String>, i64);

/// A source schema with an `items` table, and the slot prefix of one test; dropped
/// (with its slots and publication) at the end, failed or not.
struct Source {
    schema: String,
    prefix: String,
}

impl Source {
    fn new(name: &str) -> Source {
        let schema = fresh(name);
        let prefix = schema.clone();
        block(async {
            let c = pg().await;
            let level: String = c.query_one("SHOW wal_level", &[]).await.unwrap().get(0);
            assert_eq!(
                level, "logical",
                "PostgreSQL has wal_level = {level}; change data capture needs logical: run \
                 `.ci/test` (it sets it before the tests), or `ALTER SYSTEM SET wal_level = logical;` \
                 then restart the server (`pg_ctlcluster 15 main restart`)"
            );
            let sql = format!(
                "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".items \
                 (id bigint PRIMARY KEY, name text, n bigint NOT NULL)"
            );
            c.batch_execute(&sql).await.unwrap();
        });
        Source { schema, prefix }
    }

    /// Runs each of `changes` in a transaction of its own, in order.
    fn commit_each(&self, changes: &[&str]) {
        for sql in changes {
            self.change(sql);
        }
    }

    /// Runs `sql` (statements; `items` is this source's table) in one transaction.
    fn change(&self, sql: &str) {
        let sql = sql.replace("items", &format!("\"{}\".items", self.schema));
        block(async {
            pg().await
                .batch_execute(&format!("BEGIN; {sql}; COMMIT"))
                .await
                .unwrap()
        });
    }

    fn rows(&self) -> Vec<Row> {
        pg_items(&self.schema)
    }

    /// The `[source]` section and the `items` stream, read by change data capture.
    fn config(&self, destination: &str) -> String {
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\nschemas = [\"{}\"]\n\
             cdc = {{ slot_prefix = \"{}\" }}\n\n[destination]\n{destination}\n\n\
             [[streams]]\nname = \"items\"\nincremental = true\nmode = \"upsert\"\ndeletes = \"hard\"\n",
            pg_url(),
            self.schema,
            self.prefix
        )
    }

    /// This test's slots (the permanent ones: a run's copies are gone with its session).
    fn slots(&self) -> Vec<String> {
        block(async {
            let rows = pg()
                .await
                .query(
                    "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE $1 || '%'",
                    &[&self.prefix],
                )
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        })
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let (schema, prefix) = (self.schema.clone(), self.prefix.clone());
        block(async move {
            let c = pg().await;
            let drop_slots =
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                              WHERE slot_name LIKE $1 || '%' AND NOT active";
            let _ = c.query(drop_slots, &[&prefix]).await;
            let sql = format!(
                "DROP PUBLICATION IF EXISTS \"{prefix}\"; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            );
            let _ = c.batch_execute(&sql).await;
        });
    }
}

/// Runs `sql` on the test database.
fn pg_exec(sql: &str) {
    block(async { pg().await.batch_execute(sql).await.unwrap() })
}

/// The rows of table `items` of PostgreSQL schema `schema`, by id.
fn pg_items(schema: &str) -> Vec<Row> {
    let sql = format!("SELECT id, name, n FROM \"{schema}\".items ORDER BY id");
    block(async {
        let rows = pg().await.query(&sql, &[]).await.unwrap();
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
}

/// The rows of table `items` of the SQLite file `db`, by id.
fn sqlite_items(db: &Path) -> Vec<Row> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c
        .prepare("SELECT id, name, n FROM items ORDER BY id")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
    rows.unwrap().map(|r| r.unwrap()).collect()
}

/// `ferry sync --report r.json`: whether it succeeded, the `items` stream's report, the output.
fn sync(dir: &Path) -> (bool, serde_json::Value, String) {
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    let report = read::json(&dir.join("r.json"));
    (o.status.success(), report["streams"][0].clone(), text(&o))
}

/// Three runs: the first copies the table; the second applies inserts, updates and
/// deletes made in several transactions (a key deleted and inserted again, a key changed,
/// a row inserted and deleted between runs); the third finds nothing to do.
fn changes_arrive_in_commit_order(destination: &str, held: &dyn Fn() -> Vec<Row>) {
    let src = Source::new("ferry_cdc");
    src.change("INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3), (4, 'd', 4)");
    let tmp = folder(&src.config(destination));
    let dir = tmp.path();
    let (ok, rep, out) = sync(dir);
    assert!(ok, "first sync: {out}");
    assert_eq!(rep["rows_committed"], 4, "{rep:#}");
    assert_eq!(held(), src.rows());
    assert_eq!(src.slots(), [format!("{}_items", src.prefix)]);

    src.change("UPDATE items SET name = 'A' WHERE id = 1; DELETE FROM items WHERE id = 2");
    src.change(
        "INSERT INTO items VALUES (5, 'e', 5), (6, 'f', 6); UPDATE items SET n = 30 WHERE id = 3",
    );
    src.change("DELETE FROM items WHERE id = 4; INSERT INTO items VALUES (4, 'd again', 40)");
    src.change("DELETE FROM items WHERE id = 6; UPDATE items SET name = NULL WHERE id = 5");
    // a key changes: 3 is gone, 7 holds its row
    src.change("UPDATE items SET id = 7 WHERE id = 3; UPDATE items SET name = 'A!' WHERE id = 1");
    let (ok, rep, out) = sync(dir);
    assert!(ok, "second sync: {out}");
    assert_eq!(held(), src.rows(), "{out}");
    // deleted: 2, 6 (never at the destination: nothing to delete) and 3; 4 came back
    assert_eq!(rep["rows_deleted"], 2, "{rep:#}");
    let receipt = read::receipt_of_report(dir, "r.json");
    assert_eq!(receipt["receipt"]["streams"][0]["rows_deleted"], 2);

    let (ok, rep, out) = sync(dir);
    assert!(ok, "third sync: {out}");
    assert_eq!(rep["rows_read"], 0, "{rep:#}");
    assert_eq!(rep["rows_deleted"], 0, "{rep:#}");
    assert_eq!(held(), src.rows());
}

#[test]
fn cdc_into_sqlite() {
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("out.db");
    let section = format!("type = \"sqlite\"\npath = \"{}\"", db.display());
    let held = || sqlite_items(&db);
    changes_arrive_in_commit_order(&section, &held);
}

#[test]
fn cdc_into_postgres() {
    let schema = fresh("ferry_cdc_out");
    pg_exec(&format!("CREATE SCHEMA \"{schema}\""));
    let section = format!(
        "type = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"",
        pg_url()
    );
    changes_arrive_in_commit_order(&section, &|| pg_items(&schema));
    pg_exec(&format!("DROP SCHEMA \"{schema}\" CASCADE"));
}

#[test]
fn cdc_needs_an_upsert_with_deletes() {
    let src = Source::new("ferry_cdc_refused");
    let config = src
        .config("type = \"sqlite\"\npath = \"out.db\"")
        .replace("deletes = \"hard\"\n", "");
    let tmp = folder(&config);
    let o = ferry(tmp.path(), &["sync"]);
    assert!(!o.status.success());
    let said = text(&o);
    assert!(said.contains("reads the source's changes (cdc)"), "{said}");
    assert!(said.contains("deletes"), "{said}");
    assert!(
        src.slots().is_empty(),
        "a refused run created a slot: {:?}",
        src.slots()
    );
}

#[test]
fn plan_reports_the_lag_and_a_slot_left_by_a_removed_stream() {
    let src = Source::new("ferry_cdc_plan");
    src.change(
        "INSERT INTO items VALUES (1, 'a', 1); CREATE TABLE items_too (id bigint PRIMARY KEY)",
    );
    let tmp = folder(&src.config("type = \"sqlite\"\npath = \"out.db\""));
    let dir = tmp.path();
    let (ok, _, out) = sync(dir);
    assert!(ok, "{out}");
    src.change("UPDATE items SET n = 2");
    let slot = format!("{}_items", src.prefix);
    let o = ferry(dir, &["plan"]);
    let said = text(&o);
    let lag = said
        .lines()
        .find(|l| l.contains(&format!("cdc slot {slot} (stream items)")))
        .unwrap_or_else(|| panic!("{said}"));
    let behind: u64 = lag
        .split(": ")
        .nth(2)
        .and_then(|x| x.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{lag}"));
    assert!(behind > 0, "an update is pending: {lag}");

    // the stream goes from the config; its slot stays on the server, and plan says so
    let other = src
        .config("type = \"sqlite\"\npath = \"out.db\"")
        .replace("name = \"items\"", "name = \"items_too\"");
    std::fs::write(dir.join("sync.toml"), other).unwrap();
    let said = text(&ferry(dir, &["plan"]));
    let drop = format!("SELECT pg_drop_replication_slot('{slot}');");
    assert!(
        said.contains(&format!("cdc slot {slot} is read by no stream")) && said.contains(&drop),
        "{said}"
    );
    pg_exec(&drop);
    assert!(src.slots().iter().all(|s| *s != slot), "{:?}", src.slots());
}

/// The `lsn` of the pipeline's saved state (`None` before the first commit).
fn saved_lsn(dir: &Path) -> Option<String> {
    let file = read::state_files(dir).into_iter().next()?;
    let text = std::fs::read_to_string(file).ok()?;
    let at = text.find("\"lsn\"")?;
    Some(text[at..].chars().take(30).collect())
}

/// `ferry sync` killed with SIGKILL `delay` after it committed a page of changes (its
/// saved position moved); returns whether it was killed (`false`: it ended first).
fn sync_killed_after_a_commit(dir: &Path, delay: std::time::Duration) -> bool {
    let before = saved_lsn(dir);
    let mut child = support::cli::spawn_quiet(dir, &["sync"]);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if saved_lsn(dir) != before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(delay);
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    // SIGKILL: no handler, no clean-up, as a crash
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

#[test]
fn killed_mid_stream_and_rerun_loses_and_duplicates_nothing() {
    let src = Source::new("ferry_cdc_crash");
    src.change("INSERT INTO items SELECT i, 'row ' || i, i FROM generate_series(1, 20000) i");
    let config = src.config("type = \"sqlite\"\npath = \"out.db\"")
        + "\n[run]\nbatch_size = 1000\ncommit_interval_secs = 0\n";
    let tmp = folder(&config);
    let dir = tmp.path();
    let held = || sqlite_items(&dir.join("out.db"));
    let (ok, _, out) = sync(dir);
    assert!(ok, "first sync: {out}");
    // 40 transactions: every row updated twice, one in ten deleted, new rows inserted
    for t in 0..20 {
        let (lo, hi) = (t * 1000 + 1, t * 1000 + 1000);
        src.change(&format!(
            "UPDATE items SET n = n + 1, name = 'once' WHERE id BETWEEN {lo} AND {hi}"
        ));
        src.change(&format!(
            "UPDATE items SET n = n * 2 WHERE id BETWEEN {lo} AND {hi}; \
             DELETE FROM items WHERE id BETWEEN {lo} AND {hi} AND id % 10 = 0; \
             INSERT INTO items SELECT i + 100000, 'new', i FROM generate_series({lo}, {lo} + 99) i"
        ));
    }
    let expected = src.rows();
    let mut kills = 0;
    // at once (the slot not moved yet), and later (moved to the last committed page)
    for round in 0..4 {
        let delay = std::time::Duration::from_millis(20 * round);
        if !sync_killed_after_a_commit(dir, delay) {
            break;
        }
        kills += 1;
        let dest = held();
        // mid-way: some changes applied, not all
        assert_ne!(dest, expected, "kill {round} came after the last change");
    }
    assert!(kills >= 2, "only {kills} run(s) were killed mid-stream");
    let killed_at = format!("{kills} kills");
    let (ok, rep, out) = sync(dir);
    assert!(ok, "the completing sync after {killed_at}: {out}");
    assert_eq!(held(), expected, "after {killed_at}: {rep:#}");
    let (ok, rep, out) = sync(dir);
    assert!(ok, "{out}");
    assert_eq!(
        rep["rows_read"], 0,
        "everything was read and committed: {rep:#}"
    );
    assert_eq!(held(), expected);
}

/// Syncs `dir`, which must succeed and report `deleted` rows deleted; returns what it printed.
fn sync_deleting(dir: &Path, deleted: u64, label: &str) -> String {
    let (ok, rep, out) = sync(dir);
    assert!(ok, "{label}: {out}");
    assert_eq!(rep["rows_deleted"], deleted, "{label}: {rep:#}");
    out
}

/// A destination row of `items`: id, name, n, whether `_ferry_deleted_at` is set.
type Marked = (i64, Option<String>, i64, bool);

/// `deletes = "soft"` read by key, one change per batch (`batch_size = 1`): three runs;
/// the second's deletes mark their rows (the report and receipt count them) and a key
/// changes twice; the third brings a marked key back (unmarked, with its new values),
/// deletes a key and inserts it again, and marks another, leaving the row marked
/// before as it was.
fn soft_deletes_mark_by_key(destination: &str, held: &dyn Fn() -> Vec<Marked>) {
    let src = Source::new("ferry_cdc_soft");
    src.change("INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3), (4, 'd', 4)");
    let config = src
        .config(destination)
        .replace("deletes = \"hard\"", "deletes = \"soft\"")
        + "\n[run]\nbatch_size = 1\n";
    let tmp = folder(&config);
    let dir = tmp.path();
    let (ok, rep, out) = sync(dir);
    assert!(ok, "first sync: {out}");
    assert_eq!(rep["rows_committed"], 4, "{rep:#}");
    let row = |i: i64, name: &str, n: i64, marked: bool| (i, Some(name.to_string()), n, marked);
    let first = vec![
        row(1, "a", 1, false),
        row(2, "b", 2, false),
        row(3, "c", 3, false),
        row(4, "d", 4, false),
    ];
    assert_eq!(held(), first);

    src.commit_each(&[
        "DELETE FROM items WHERE id = 2",
        "UPDATE items SET name = 'A' WHERE id = 1",
        "UPDATE items SET n = 10 WHERE id = 1",
        "DELETE FROM items WHERE id = 4",
    ]);
    let out = sync_deleting(dir, 2, "second sync");
    let receipt = read::receipt_of_report(dir, "r.json");
    assert_eq!(receipt["receipt"]["streams"][0]["rows_deleted"], 2);
    let second = vec![
        row(1, "A", 10, false),
        row(2, "b", 2, true),
        row(3, "c", 3, false),
        row(4, "d", 4, true),
    ];
    assert_eq!(held(), second, "{out}");

    // 4 comes back; 3 goes and comes back in this run; 5 arrives; 1 goes
    src.commit_each(&[
        "INSERT INTO items VALUES (4, 'd again', 40)",
        "DELETE FROM items WHERE id = 3",
        "INSERT INTO items VALUES (3, 'c again', 30)",
        "INSERT INTO items VALUES (5, 'e', 5)",
        "DELETE FROM items WHERE id = 1",
    ]);
    let out = sync_deleting(dir, 2, "third sync");
    let third = vec![
        row(1, "A", 10, true),
        row(2, "b", 2, true),
        row(3, "c again", 30, false),
        row(4, "d again", 40, false),
        row(5, "e", 5, false),
    ];
    assert_eq!(held(), third, "{out}");
    // the rows not marked are the source's
    let live: Vec<Row> = third
        .iter()
        .filter(|r| !r.3)
        .map(|r| (r.0, r.1.clone(), r.2))
        .collect();
    assert_eq!(live, src.rows());
}

/// `SELECT id, name, n, marked` of `items`, in any of the three databases' SQL.
const MARKED: &str =
    "SELECT id, name, n, CASE WHEN _ferry_deleted_at IS NULL THEN 0 ELSE 1 END FROM ";

#[test]
fn cdc_soft_deletes_into_sqlite() {
    let dest = SqliteDestination::new();
    let held = || {
        let c = rusqlite::Connection::open(&dest.db).unwrap();
        let mut stmt = c.prepare(&format!("{MARKED}items ORDER BY id")).unwrap();
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? == 1))
        });
        rows.unwrap().map(|r| r.unwrap()).collect()
    };
    soft_deletes_mark_by_key(&dest.section, &held);
}

#[test]
fn cdc_soft_deletes_into_postgres() {
    let dest = PgDestination::new("ferry_cdc_soft_out");
    let held = || {
        let rows = dest.query(&format!("{MARKED}{{schema}}.items ORDER BY id"));
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get::<_, i32>(3) == 1))
            .collect()
    };
    soft_deletes_mark_by_key(&dest.section, &held);
    dest.finish();
}

#[test]
fn cdc_soft_deletes_into_mysql() {
    let dest = MysqlDestination::new("ferry_cdc_soft_out");
    let held = || {
        let rows: Vec<(i64, Option<String>, i64, i64)> =
            dest.query(&format!("{MARKED}items ORDER BY id"));
        rows.into_iter()
            .map(|(i, name, n, m)| (i, name, n, m == 1))
            .collect()
    };
    soft_deletes_mark_by_key(&dest.section, &held);
    dest.finish();
}
