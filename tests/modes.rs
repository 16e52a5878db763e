//! Write modes against reads, the first try, and schema changes, driven through `ferry`
//! as a person would:
//!
//! - `mode = "overwrite"` with an incremental read is refused when the config is read;
//! - `ferry sync --limit N` is a trial that every destination takes back: a trial, then
//!   the real sync, then another trial, leave exactly the source's rows (sqlite, postgres,
//!   mysql, file, s3; append with and without a key, upsert, overwrite), and a destination
//!   that cannot take rows back (webhook) refuses it;
//! - an `overwrite` stream whose upstream type changed is replaced under its own policy,
//!   and a refused stream does not stop the others.
//!
//! The postgres and mysql tests need PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`)
//! and MySQL/MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/run` starts both.

#[path = "support/s3.rs"]
mod s3;
mod support;

use std::path::Path;

use mysql_async::prelude::Queryable;
use support::cli::{ferry, out_apart as text};
use support::db::{block, mysql, mysql_url_for, pg, MysqlDestination, PgDestination};
use support::folder::{with_config as folder, write};
use support::{read, sqlite};

const ROWS: u64 = 300;

/// A source of four 300-row streams, one per way of writing.
fn generate() -> String {
    format!(
        r#"[source]
type = "generate"
streams = [
  {{ name = "plain", preset = "users", rows = {ROWS} }},
  {{ name = "keyed", preset = "users", rows = {ROWS} }},
  {{ name = "merged", preset = "users", rows = {ROWS} }},
  {{ name = "replaced", preset = "users", rows = {ROWS} }},
]
"#
    )
}

/// Appended without a key (a kept trial duplicates rows), appended with one (a kept trial
/// makes the real sync fail), upserted, overwritten.
const FOUR_WAYS: &str = r#"
[[streams]]
name = "plain"
mode = "append"
primary_key = []

[[streams]]
name = "keyed"
mode = "append"

[[streams]]
name = "merged"
mode = "upsert"

[[streams]]
name = "replaced"
mode = "overwrite"
"#;

const STREAMS: [&str; 4] = ["plain", "keyed", "merged", "replaced"];

/// A folder whose config writes the four streams of [`generate`] to `destination` (the
/// lines of a `[destination]` section), in `ways`.
fn four_ways_to(destination: &str, ways: &str) -> tempfile::TempDir {
    folder(&format!(
        "{}\n[destination]\n{destination}\n{ways}",
        generate()
    ))
}

/// The number of ids and of distinct ids in JSON Lines `bodies`.
fn jsonl_ids<'a>(bodies: impl IntoIterator<Item = &'a str>) -> (u64, u64) {
    let ids: Vec<i64> = bodies
        .into_iter()
        .flat_map(str::lines)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    (ids.len() as u64, distinct.len() as u64)
}

/// [`trial_sync_trial`] of the four ways of [`FOUR_WAYS`] into `destination` (the lines
/// of a `[destination]` section).
fn four_ways_trial(destination: &str, count: &dyn Fn(&str) -> (u64, u64)) {
    trial_sync_trial(four_ways_to(destination, FOUR_WAYS).path(), count);
}

/// The number of rows and distinct ids in table `s` of PostgreSQL schema `schema` (none
/// when there is no such table).
fn pg_ids(schema: &str, s: &str) -> (u64, u64) {
    block(async {
        let c = pg().await;
        match c
            .query_one(
                &format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM \"{schema}\".\"{s}\""),
                &[],
            )
            .await
        {
            Ok(r) => (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64),
            Err(_) => (0, 0),
        }
    })
}

/// The number of rows and distinct ids in table `s` of MySQL database `db` (none when
/// there is no such table).
fn mysql_ids(db: &str, s: &str) -> (u64, u64) {
    block(async {
        let mut m = mysql(&mysql_url_for(db)).await;
        let r: Result<Option<(u64, u64)>, _> = m
            .query_first(format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM `{s}`"))
            .await;
        let _ = m.disconnect().await;
        r.ok().flatten().unwrap_or((0, 0))
    })
}

/// Trial, sync, trial: after each step every stream holds what `expect` says (`None`:
/// no rows, the table may or may not be there), read by `count`.
fn trial_sync_trial(dir: &Path, count: &dyn Fn(&str) -> (u64, u64)) {
    let o = ferry(dir, &["sync", "--limit", "100"]);
    assert!(o.status.success(), "trial: {}", text(&o));
    assert!(
        text(&o).contains("rolled back") && text(&o).contains("no rows were kept"),
        "the trial says what it wrote: {}",
        text(&o)
    );
    for s in STREAMS {
        assert_eq!(count(s).0, 0, "stream {s}: the trial left rows");
    }
    assert!(read::receipts(dir).is_empty(), "a trial wrote a receipt");
    let o = ferry(dir, &["state", "show"]);
    assert!(!text(&o).contains("\"keyed\""), "a trial saved state");

    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "sync after the trial: {}", text(&o));
    for s in STREAMS {
        assert_eq!(count(s), (ROWS, ROWS), "stream {s}: (rows, distinct ids)");
    }

    // a second trial: `keyed` may fail, as an append of the same keys would (SQLite and
    // MySQL check keys per row; PostgreSQL at the end of a COPY, which a trial never
    // reaches); either way nothing changes
    let o = ferry(dir, &["sync", "--limit", "100"]);
    assert!(
        text(&o).contains("rolled back"),
        "second trial: {}",
        text(&o)
    );
    for s in STREAMS {
        assert_eq!(count(s), (ROWS, ROWS), "stream {s} after a second trial");
    }
}

#[test]
fn overwrite_with_an_incremental_read_is_refused() {
    for (how, line) in [
        ("cursor", "cursor = \"id\""),
        ("incremental", "incremental = true"),
    ] {
        let tmp = folder(&format!(
            "{}\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n[[streams]]\nname = \"keyed\"\nmode = \"overwrite\"\n{line}\n",
            generate()
        ));
        for cmd in [&["plan"][..], &["sync"][..], &["check"][..]] {
            let o = ferry(tmp.path(), cmd);
            assert_eq!(o.status.code(), Some(2), "{how} {cmd:?}: {}", text(&o));
            let t = text(&o);
            assert!(
                t.contains("overwrite")
                    && t.contains("read incrementally")
                    && t.contains("only the rows new since the last run")
                    && t.contains("append"),
                "{how} {cmd:?}: {t}"
            );
            // at the stream's entry, not where the source names the stream
            assert!(
                t.contains("sync.toml:") && t.contains("| name = ***"),
                "positioned: {t}"
            );
        }
        assert!(
            !tmp.path().join("out.db").exists(),
            "{how}: something was written"
        );
    }
}

#[test]
fn trial_then_sync_sqlite() {
    let tmp = four_ways_to("type = \"sqlite\"\npath = \"out.db\"", FOUR_WAYS);
    let db = tmp.path().join("out.db");
    trial_sync_trial(tmp.path(), &|s| {
        let Ok(conn) = rusqlite::Connection::open(&db) else {
            return (0, 0);
        };
        conn.query_row(
            &format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM \"{s}\""),
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap_or((0, 0))
    });
}

/// A trial's summary says what it did (wrote, rolled back, kept nothing), its JSON report
/// keeps read = committed + rejected + filtered + uncommitted, and a `row_count` of the
/// destination, which the trial rolled back, is reported as not checked, saying why.
#[test]
fn a_trial_says_it_kept_nothing_and_skips_the_destination_count() {
    let tmp = folder(&format!(
        "{}\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n[[streams]]\nname = \"keyed\"\n\
         checks = [{{ type = \"row_count\", of = \"destination\", min = 1000, severity = \"fail\" }}]\n",
        generate()
    ));
    let dir = tmp.path();
    let o = ferry(dir, &["sync", "--limit", "100", "--report", "r.json"]);
    let t = text(&o);
    // min = 1000 fails against any count this destination could give: the check did not run
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("100 rows read, 100 written and rolled back (trial), 0 kept"),
        "{t}"
    );
    assert!(!t.contains("uncommitted"), "{t}");
    // the per-stream progress line (stderr, not a terminal) says the same
    assert!(
        t.contains("keyed: done, 100 rows written and rolled back (trial), 0 kept"),
        "{t}"
    );
    assert!(
        t.contains("check row_count(destination): not checked: a trial (--limit) rolls back"),
        "{t}"
    );
    let r = read::json(&dir.join("r.json"));
    assert_eq!(r["trial"], true, "{r:#}");
    let s = &r["streams"][0];
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {s:#}"));
    assert_eq!(
        (n("rows_read"), n("rows_committed"), n("rows_uncommitted")),
        (100, 0, 100),
        "{s:#}"
    );
    assert_eq!(
        n("rows_read"),
        n("rows_committed") + n("rows_rejected") + n("rows_filtered") + n("rows_uncommitted")
    );
    let check = &s["checks"][0];
    assert_eq!(check["check"], "row_count(destination)", "{s:#}");
    assert_eq!(check["failed"], 0, "{s:#}");
    assert!(
        check["note"]
            .as_str()
            .unwrap_or("")
            .starts_with("not checked"),
        "{s:#}"
    );
    let held = sqlite::rows(&dir.join("out.db"), "keyed").unwrap_or(0);
    assert_eq!(held, 0, "the trial left rows");

    // a trial that fails says it kept nothing, too
    write(
        dir,
        "sync.toml",
        format!(
            "{}\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n[[streams]]\nname = \"keyed\"\n\
             checks = [{{ type = \"range\", column = \"id\", max = 50, severity = \"fail\" }}]\n",
            generate()
        ),
    );
    let o = ferry(dir, &["sync", "--limit", "100"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("rows read, what the trial wrote was rolled back, 0 kept")
            && t.contains("FAILED")
            && !t.contains("uncommitted"),
        "{t}"
    );
}

#[test]
fn trial_then_sync_file() {
    let tmp = four_ways_to(
        "type = \"file\"\npath = \"out\"\nformat = \"jsonl\"",
        // a file is appended or overwritten (upsert is not offered)
        &FOUR_WAYS.replace("mode = \"upsert\"", "mode = \"append\""),
    );
    let out = tmp.path().join("out");
    trial_sync_trial(tmp.path(), &|s| {
        let body = std::fs::read_to_string(out.join(format!("{s}.jsonl"))).unwrap_or_default();
        jsonl_ids([body.as_str()])
    });
    // nothing half-written or temporary stays beside the files (the real sync's checksum
    // file for the client is expected)
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".jsonl") && !n.starts_with('.')),
        "{names:?}"
    );
}

#[test]
fn trial_then_sync_s3() {
    let server = s3::Server::start(&["trial"]);
    let tmp = four_ways_to(
        &format!("type = \"s3\"\n{}format = \"jsonl\"", server.toml("trial")),
        &FOUR_WAYS.replace("mode = \"upsert\"", "mode = \"append\""),
    );
    trial_sync_trial(tmp.path(), &|s| {
        let bodies: Vec<String> = server
            .keys("trial", &format!("{s}/"))
            .iter()
            .map(|key| String::from_utf8(server.get("trial", key)).unwrap())
            .collect();
        jsonl_ids(bodies.iter().map(String::as_str))
    });
    assert!(
        server.open_upload_files().is_empty(),
        "a trial left an upload open"
    );
}

#[test]
fn trial_then_sync_postgres() {
    let dest = PgDestination::new("ferry_trial");
    four_ways_trial(&dest.section, &|s| pg_ids(&dest.schema, s));
    dest.finish();
}

#[test]
fn trial_then_sync_mysql() {
    let dest = MysqlDestination::new("ferry_trial");
    four_ways_trial(&dest.section, &|s| mysql_ids(&dest.db, s));
    dest.finish();
}

#[test]
fn a_destination_that_cannot_take_rows_back_refuses_a_trial() {
    // nothing listens on port 9: had the trial started, it would have tried to POST
    let tmp = folder(&format!(
        "{}\n[destination]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nretry = {{ attempts = 1 }}\n",
        generate()
    ));
    let o = ferry(tmp.path(), &["sync", "--limit", "100"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("cannot take rows back") && t.contains("--dry-run"),
        "the refusal says why and what to run instead: {t}"
    );
    assert!(
        !t.contains("127.0.0.1:9"),
        "the trial tried the receiver: {t}"
    );
}

/// Two streams into one SQLite file: `scores` (overwritten) with a `score` column of
/// type `ty`, and `users` (appended), independent of it.
fn two_streams(ty: &str, policy: &str) -> String {
    format!(
        r#"[source]
type = "generate"
streams = [
  {{ name = "scores", rows = 50, columns = [{{ name = "score", type = "{ty}" }}] }},
  {{ name = "users", preset = "users", rows = 40 }},
]

[destination]
type = "sqlite"
path = "out.db"

[[streams]]
name = "scores"
mode = "overwrite"
{policy}

[[streams]]
name = "users"
mode = "append"
primary_key = []
"#
    )
}

fn sqlite_one(db: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
        .map(|v| match v {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
}

#[test]
fn an_overwrite_stream_takes_an_upstream_type_change_and_others_go_on() {
    let tmp = folder(&two_streams("int64", ""));
    let dir = tmp.path();
    let db = dir.join("out.db");
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        sqlite_one(&db, "SELECT typeof(score) FROM scores LIMIT 1"),
        "integer"
    );

    // upstream, `score` becomes text: the default refuses `scores`, and says what fits an
    // overwrite; `users` is independent and loads anyway; the run still fails
    write(dir, "sync.toml", two_streams("string", ""));
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("on_schema_change = \\\"replace\\\"")
            || t.contains("on_schema_change = \"replace\""),
        "{t}"
    );
    assert!(!t.contains("change the stream's write mode"), "{t}");
    let r = read::json(&dir.join("r.json"));
    let status = |s: &str| read::stream(&r, s)["status"].as_str().unwrap().to_string();
    assert_eq!(status("scores"), "failed");
    assert_eq!(status("users"), "succeeded");
    assert_eq!(sqlite_one(&db, "SELECT COUNT(*) FROM users"), "80");
    assert_eq!(
        sqlite_one(&db, "SELECT typeof(score) FROM scores LIMIT 1"),
        "integer"
    );

    // `replace`: the plan says what happens, and the sync rebuilds the table as text
    write(
        dir,
        "sync.toml",
        two_streams("string", "on_schema_change = \"replace\""),
    );
    let o = ferry(dir, &["plan"]);
    assert!(
        text(&o).contains("replace: column score becomes string"),
        "{}",
        text(&o)
    );
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        sqlite_one(&db, "SELECT typeof(score) FROM scores LIMIT 1"),
        "text"
    );
    assert_eq!(sqlite_one(&db, "SELECT COUNT(*) FROM scores"), "50");

    // `replace` on a stream that keeps its rows is refused when the config is read
    write(
        dir,
        "sync.toml",
        two_streams("string", "").replace(
            "mode = \"append\"\nprimary_key = []",
            "mode = \"append\"\nprimary_key = []\non_schema_change = \"replace\"",
        ),
    );
    let o = ferry(dir, &["sync"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("mode = \\\"overwrite\\\"") || text(&o).contains("mode = \"overwrite\""),
        "{}",
        text(&o)
    );
}
