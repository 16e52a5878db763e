//! What a run reports and signs is what the destination holds: in every ending (success,
//! a failed check, a source error, a destination error, Ctrl-C) the report's and the
//! receipt's `rows_committed` equal a `count(*)` at the destination, and
//! rows read = committed + rejected + filtered + uncommitted. Also: `--dry-run` says
//! "would", the default `max_bad_ratio`, `row_count`'s `of`, and file rows' positions.
//!
//! SQLite for every ending (and several streams sharing its transaction), PostgreSQL for a
//! failed check, MySQL/MariaDB for success, a failed check and a destination error. The
//! MySQL tests need MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`, database `test`);
//! `.ci/run` starts it.

mod support;

use std::path::Path;
use std::process::Output;

use support::cli::{self, exits_saying, ferry, ferry_ok, out};
use support::db::{self, mysql_url};
use support::{folder, read, sqlite};

/// `files` CSV files `data/part_NN.csv` of `rows` rows each, ids 1, 2, … across them.
fn data(dir: &Path, files: usize, rows: usize) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for f in 0..files {
        let mut text = String::from("id,n\n");
        for r in 0..rows {
            let id = f * rows + r + 1;
            text.push_str(&format!("{id},{id}\n"));
        }
        std::fs::write(dir.join(format!("data/part_{:02}.csv", f + 1)), text).unwrap();
    }
}

const SOURCE: &str = "[source]\ntype = \"file\"\npath = \"data/part_*.csv\"\nstream = \"orders\"\ncolumns = { id = \"int64\", n = \"int64\" }\n";

/// A durable flush after every batch of ten.
const FLUSH_EACH: &str = "batch_size = 10\ncommit_interval_secs = 0";

/// Fails the stream at id 56.
const FAIL_AT_56: &str =
    "checks = [{ type = \"range\", column = \"n\", max = 55, severity = \"fail\" }]";

/// Where the rows of stream `orders` go: SQLite `out.db`, or a table of the test
/// PostgreSQL or MySQL/MariaDB database (dropped when the test ends, passed or not).
enum Dest {
    Sqlite,
    Postgres(String),
    Mysql(String),
}

impl Dest {
    /// `kind` (`Dest::Postgres`, `Dest::Mysql`) with the test's table `<prefix>_<pid>`.
    fn table(kind: fn(String) -> Dest, prefix: &str) -> Dest {
        kind(format!("{prefix}_{}", std::process::id()))
    }

    /// The `[destination]` section and the start of the `orders` stream.
    fn toml(&self) -> String {
        let (kind, at, table) = match self {
            Dest::Sqlite => ("sqlite", "path = \"out.db\"".to_string(), None),
            Dest::Postgres(t) => ("postgres", format!("url = \"{}\"", db::pg_url()), Some(t)),
            Dest::Mysql(t) => ("mysql", format!("url = \"{}\"", mysql_url()), Some(t)),
        };
        let table = table
            .map(|t| format!("destination = \"{t}\"\n"))
            .unwrap_or_default();
        format!("[destination]\ntype = \"{kind}\"\n{at}\n[[streams]]\nname = \"orders\"\n{table}")
    }

    /// The rows the destination holds (its own `count(*)`).
    fn held(&self, dir: &Path) -> u64 {
        match self {
            Dest::Sqlite => sqlite_count(&dir.join("out.db"), "orders"),
            Dest::Postgres(t) => pg_exec(&format!("SELECT count(*) FROM \"{t}\""), true),
            Dest::Mysql(t) => mysql_exec(&format!("SELECT count(*) FROM `{t}`"), true),
        }
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        match self {
            Dest::Sqlite => {}
            Dest::Postgres(t) => {
                pg_exec(&format!("DROP TABLE IF EXISTS \"{t}\""), false);
            }
            Dest::Mysql(t) => {
                mysql_exec(&format!("DROP TABLE IF EXISTS `{t}`"), false);
            }
        }
    }
}

/// A config syncing `data/` into `dest`.
fn config(dest: &Dest, stream_extra: &str, run: &str) -> String {
    format!("{SOURCE}{}{stream_extra}\n[run]\n{run}\n", dest.toml())
}

/// A config syncing `data/` into SQLite table `orders`.
fn sqlite_config(stream_extra: &str, run: &str) -> String {
    config(&Dest::Sqlite, stream_extra, run)
}

/// A folder syncing `data/` into SQLite table `orders`.
fn sqlite_folder(stream_extra: &str, run: &str) -> tempfile::TempDir {
    folder::with_config(&sqlite_config(stream_extra, run))
}

/// Rows of `table` in `db` (0 when the table does not exist).
fn sqlite_count(db: &Path, table: &str) -> u64 {
    sqlite::rows(db, table).unwrap_or(0)
}

/// The report's and the newest receipt's figures of the only stream.
#[derive(Debug, PartialEq)]
struct Figures {
    read: u64,
    committed: u64,
    rejected: u64,
    filtered: u64,
    uncommitted: u64,
    status: String,
}

fn figures(v: &serde_json::Value) -> Figures {
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {v:#}"));
    Figures {
        read: n("rows_read"),
        committed: n("rows_committed"),
        rejected: n("rows_rejected"),
        filtered: n("rows_filtered"),
        uncommitted: n("rows_uncommitted"),
        status: v["status"].as_str().unwrap().to_string(),
    }
}

fn report(dir: &Path) -> Figures {
    figures(&read::json(&dir.join("r.json"))["streams"][0])
}

/// The report and the receipt agree, the identity holds, and what they call committed is
/// what `held` (the destination's own count) says.
fn assert_honest(dir: &Path, held: u64) -> Figures {
    assert_honest_of(dir, None, held)
}

/// [`assert_honest`] for stream `name` of several (`None`: the only one); the figures are
/// the report's (`r.json`) and the newest receipt's.
fn assert_honest_of(dir: &Path, name: Option<&str>, held: u64) -> Figures {
    let pick = |doc: &serde_json::Value| match name {
        Some(n) => figures(read::stream(doc, n)),
        None => figures(&doc["streams"][0]),
    };
    let what = name.map(|n| format!("{n}: ")).unwrap_or_default();
    let rep = pick(&read::json(&dir.join("r.json")));
    let signed = read::json(&read::newest_receipt(dir));
    let streams = signed["receipt"]["streams"].as_array().unwrap();
    assert!(
        streams.iter().all(|s| s.get("rows_written").is_none()),
        "new receipts say rows_committed"
    );
    assert_eq!(
        rep,
        pick(&signed["receipt"]),
        "{what}the report and the receipt differ"
    );
    assert_eq!(
        rep.read,
        rep.committed + rep.rejected + rep.filtered + rep.uncommitted,
        "{what}rows read = committed + rejected + filtered + uncommitted: {rep:?}"
    );
    assert_eq!(
        rep.committed, held,
        "{what}the report says {} committed, the destination holds {held}: {rep:?}",
        rep.committed
    );
    rep
}

/// Ten files of ten rows into `dest`, a durable flush after each: all 100 committed.
fn success_commits_every_row(dest: &Dest) -> Output {
    let tmp = folder::with_config(&config(dest, "", FLUSH_EACH));
    let dir = tmp.path();
    data(dir, 10, 10);
    let o = ferry_ok(dir, &["sync", "--report", "r.json"]);
    let f = assert_honest(dir, dest.held(dir));
    assert_eq!((f.read, f.committed, f.uncommitted), (100, 100, 0));
    o
}

/// Ten files into `dest`, a durable flush after each, a fail check at id 56: the five
/// files before the failing row stay.
fn a_fail_check_keeps_the_flushed_rows(dest: &Dest) -> Output {
    let tmp = folder::with_config(&config(dest, FAIL_AT_56, FLUSH_EACH));
    let dir = tmp.path();
    data(dir, 10, 10);
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let f = assert_honest(dir, dest.held(dir));
    assert!(f.committed > 0 && f.uncommitted > 0, "{f:?}");
    assert_eq!(f.status, "failed");
    o
}

/// `dest` already holds id 75: appending it again fails in the destination, and the
/// flushed rows before it stay.
fn a_destination_error_keeps_the_flushed_rows(dest: &Dest) {
    let tmp = folder::with_config(&config(dest, "primary_key = [\"id\"]", FLUSH_EACH));
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("seed")).unwrap();
    folder::write(dir, "seed/orders.csv", "id,n\n75,0\n");
    folder::write(
        dir,
        "seed.toml",
        format!(
            "[source]\ntype = \"file\"\npath = \"seed/orders.csv\"\ncolumns = {{ id = \"int64\", n = \"int64\" }}\n\
             {}primary_key = [\"id\"]\n[run]\nstate = \"seed-state.json\"\nreceipts = \"seed-receipts\"\n",
            dest.toml()
        ),
    );
    ferry_ok(dir, &["sync", "-c", "seed.toml"]);
    assert_eq!(dest.held(dir), 1);

    data(dir, 10, 10);
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    exits_saying(&o, 1, "already in the table");
    let f = assert_honest(dir, dest.held(dir) - 1);
    assert!(f.committed > 0 && f.uncommitted > 0, "{f:?}");
}

#[test]
fn success_commits_every_row_the_table_holds() {
    let text = out(&success_commits_every_row(&Dest::Sqlite));
    assert!(text.contains("100 rows read, 100 committed in"), "{text}");
    assert!(!text.contains("uncommitted"), "{text}");
}

#[test]
fn a_fail_check_reports_only_the_rows_the_table_holds() {
    // the case: one file, one transaction: nothing committed, 60 rows read
    let tmp = sqlite_folder(FAIL_AT_56, "batch_size = 10");
    let dir = tmp.path();
    data(dir, 1, 100);
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let f = assert_honest(dir, Dest::Sqlite.held(dir));
    assert_eq!(
        (f.read, f.committed, f.uncommitted),
        (60, 0, 60),
        "{}",
        out(&o)
    );
    let text = out(&o);
    assert!(
        text.contains("60 rows read, 0 committed, 60 uncommitted"),
        "{text}"
    );
    // the failing row is named by file, line and its number in the stream
    assert!(
        text.contains("part_01.csv") && text.contains("line 57") && text.contains("row 56"),
        "{text}"
    );

    // ten files, a durable flush after each: the five files before the failing row stay
    let o = a_fail_check_keeps_the_flushed_rows(&Dest::Sqlite);
    assert!(
        out(&o).contains("part_06.csv") && out(&o).contains("line 7"),
        "{}",
        out(&o)
    );
}

#[test]
fn a_source_error_reports_only_the_rows_the_table_holds() {
    let tmp = sqlite_folder("", FLUSH_EACH);
    let dir = tmp.path();
    data(dir, 10, 10);
    // file 6 breaks off in the middle: a record with one field (on_bad_record = fail)
    folder::write(dir, "data/part_06.csv", "id,n\n51,51\n52,52\n53\n54,54\n");
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    exits_saying(&o, 1, "part_06.csv");
    let f = assert_honest(dir, Dest::Sqlite.held(dir));
    // the malformed record failed the stream: it is uncommitted, not quarantined
    assert_eq!(f.rejected, 0, "{f:?}");
    assert!(f.committed > 0 && f.uncommitted > 0, "{f:?}");
}

#[test]
fn a_destination_error_reports_only_the_rows_the_table_holds() {
    a_destination_error_keeps_the_flushed_rows(&Dest::Sqlite);
}

#[test]
fn ctrl_c_reports_only_the_rows_the_table_holds() {
    let tmp = folder::with_config("[source]\ntype = \"generate\"\nstreams = [{ name = \"orders\", preset = \"orders\", rows = 20000000 }]\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n[[streams]]\nname = \"orders\"\nincremental = true\n\
         [run]\nbatch_size = 2000\ncommit_interval_secs = 0.2\n");
    let dir = tmp.path();
    let mut child = cli::spawn(dir, &["sync", "--report", "r.json"]);
    // wait until rows are being committed, then press Ctrl-C
    let started = std::time::Instant::now();
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    while size("out.db") + size("out.db-wal") < 512 * 1024 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the sync wrote nothing in two minutes"
        );
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cli::interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", out(&o));
    let f = assert_honest(dir, Dest::Sqlite.held(dir));
    assert_eq!(f.status, "cancelled");
    assert!(f.committed > 0 && f.read < 20_000_000, "{f:?}");
}

#[test]
fn a_fail_check_into_postgres_reports_only_the_rows_the_table_holds() {
    a_fail_check_keeps_the_flushed_rows(&Dest::table(Dest::Postgres, "counts_fail_check"));
}

#[test]
fn dry_run_says_what_it_would_write() {
    let tmp = sqlite_folder(
        "on_bad_record = \"quarantine\"\nmax_bad_ratio = 1\nchecks = [{ type = \"range\", column = \"n\", max = 95 }]",
        "",
    );
    let dir = tmp.path();
    data(dir, 1, 100);
    let o = ferry_ok(dir, &["sync", "--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("100 rows read, would write 95 in"), "{text}");
    assert!(text.contains("orders: would quarantine 5 rows"), "{text}");
    assert!(text.contains("would write"), "{text}");
    // only the closing note may say `written` ("dry run: nothing was written")
    for line in text
        .lines()
        .filter(|l| !l.contains("dry run: nothing was written"))
    {
        for word in ["written", "quarantined", "committed"] {
            assert!(
                !line.contains(word),
                "a dry run says `{word}`: {line}\n{text}"
            );
        }
    }
    // the progress line (stderr) neither: a dry run wrote nothing to roll back
    let progress = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        progress.contains("orders: done, 100 rows read (dry run: nothing written)"),
        "{progress}"
    );
    assert!(!progress.contains("rolled back"), "{progress}");
    assert_eq!(Dest::Sqlite.held(dir), 0);
}

/// Five rows into SQLite, four failing a check and quarantined (`ratio`: the stream's
/// `max_bad_ratio`, if any): the folder and the sync's output.
fn four_of_five_rejected(ratio: &str) -> (tempfile::TempDir, Output) {
    let tmp = sqlite_folder(
        &format!(
            "on_bad_record = \"quarantine\"\n{ratio}checks = [{{ type = \"range\", column = \"n\", max = 1 }}]"
        ),
        "",
    );
    data(tmp.path(), 1, 5);
    let o = ferry(tmp.path(), &["sync", "--report", "r.json"]);
    (tmp, o)
}

#[test]
fn most_rows_rejected_fails_by_default() {
    // 4 of 5 rows fail a check: quarantined, and the run fails
    let (tmp, o) = four_of_five_rejected("");
    exits_saying(
        &o,
        1,
        "4 of 5 rows rejected, more than the default max_bad_ratio 0.1",
    );
    let f = assert_honest(tmp.path(), Dest::Sqlite.held(tmp.path()));
    assert_eq!(f.rejected, 4);
    // a stream may accept any share, saying so
    let (tmp, o) = four_of_five_rejected("max_bad_ratio = 1\n");
    assert!(o.status.success(), "{}", out(&o));
    assert_honest(tmp.path(), 1);
}

#[test]
fn row_count_of_an_incremental_stream_counts_the_destination() {
    let tmp = sqlite_folder(
        "incremental = true\nchecks = [{ type = \"row_count\", min = 1 }]",
        "",
    );
    let dir = tmp.path();
    data(dir, 1, 3);
    ferry_ok(dir, &["sync"]);
    // a quiet rerun reads nothing new; the table still holds 3 rows: the check passes
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    assert_eq!(report(dir).read, 0);

    // counting the run instead: the quiet rerun has 0 rows and fails
    let of_run = "incremental = true\nchecks = [{ type = \"row_count\", min = 1, of = \"run\" }]";
    folder::write(dir, "sync.toml", sqlite_config(of_run, ""));
    let o = ferry(dir, &["sync"]);
    exits_saying(&o, 1, "0 rows, expected between 1 and");

    // the destination's count, too few: fails after the rows are committed, saying so
    let too_few = "incremental = true\nchecks = [{ type = \"row_count\", min = 10 }]";
    folder::write(dir, "sync.toml", sqlite_config(too_few, ""));
    let o = ferry(dir, &["sync"]);
    exits_saying(
        &o,
        1,
        "check row_count(destination) failed: 3 rows at the destination, expected between 10 and",
    );
}

#[test]
fn row_count_of_a_destination_that_cannot_count_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    data(dir, 1, 3);
    folder::write(
        dir,
        "sync.toml",
        format!(
            "{SOURCE}[destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n[[streams]]\nname = \"orders\"\n\
             checks = [{{ type = \"row_count\", min = 1, of = \"destination\" }}]\n"
        ),
    );
    let o = ferry(dir, &["sync"]);
    exits_saying(
        &o,
        1,
        "cannot be answered: the destination cannot count its rows",
    );
}

/// SQLite streams share one transaction: a short stream's close commits it while a long
/// stream still has rows written but not flushed; when the long one then fails, its rows
/// must go (they were never counted committed) and the receipt must equal the tables.
#[test]
fn a_stream_failing_after_another_streams_commit_leaves_none_of_its_rows() {
    let tmp = folder::with_config("[source]\ntype = \"generate\"\nstreams = [\n  { name = \"short\", preset = \"users\", rows = 50 },\n  \
         { name = \"long\", preset = \"users\", rows = 300000 },\n]\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\
         [[streams]]\nname = \"short\"\n\
         [[streams]]\nname = \"long\"\n\
         checks = [{ type = \"range\", column = \"id\", max = 150000, severity = \"fail\" }]\n\
         [run]\nconcurrency = 2\nbatch_size = 1000\ncommit_interval_secs = 3600\n");
    let dir = tmp.path();
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("check range(id) failed") || out(&o).contains("range(id)"),
        "{}",
        out(&o)
    );
    let db = dir.join("out.db");
    let short = assert_honest_of(dir, Some("short"), sqlite_count(&db, "short"));
    assert_eq!((short.committed, short.status.as_str()), (50, "succeeded"));
    let long = assert_honest_of(dir, Some("long"), sqlite_count(&db, "long"));
    assert_eq!(long.status, "failed");
    assert!(
        long.read >= 150_000,
        "the long stream failed early: {long:?}"
    );
    // the case this test is about: `short` committed the shared transaction while `long`
    // was still writing (it read 150,000 rows; `short` closes after 50)
    let r = read::json(&dir.join("r.json"));
    let secs = |n: &str| read::stream(&r, n)["duration_secs"].as_f64().unwrap();
    assert!(secs("short") < secs("long"), "{r:#}");
    assert_eq!(long.committed, 0, "{long:?}");
}

/// Runs `sql` on the test MySQL/MariaDB; `count`: returns `SELECT count(*)` of it.
fn mysql_exec(sql: &str, count: bool) -> u64 {
    use mysql_async::prelude::Queryable;
    db::block(async {
        let mut c = db::mysql(&mysql_url()).await;
        let n = if count {
            c.query_first::<u64, _>(sql).await.unwrap().unwrap_or(0)
        } else {
            c.query_drop(sql).await.unwrap();
            0
        };
        let _ = c.disconnect().await;
        n
    })
}

/// Runs `sql` on the test PostgreSQL; `count`: returns `SELECT count(*)` of it, else
/// ignores a failure (a table that is not there to drop).
fn pg_exec(sql: &str, count: bool) -> u64 {
    db::block(async {
        let client = db::pg().await;
        if count {
            let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
            n as u64
        } else {
            let _ = client.batch_execute(sql).await;
            0
        }
    })
}

#[test]
fn mysql_success_commits_every_row_the_table_holds() {
    success_commits_every_row(&Dest::table(Dest::Mysql, "counts_ok"));
}

#[test]
fn mysql_fail_check_reports_only_the_rows_the_table_holds() {
    a_fail_check_keeps_the_flushed_rows(&Dest::table(Dest::Mysql, "counts_fail_check"));
}

#[test]
fn mysql_destination_error_reports_only_the_rows_the_table_holds() {
    a_destination_error_keeps_the_flushed_rows(&Dest::table(Dest::Mysql, "counts_sink_error"));
}
