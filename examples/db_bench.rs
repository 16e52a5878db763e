//! Ferry against `psql` on PostgreSQL, and PostgreSQL → MySQL (not a test: run it,
//! read the figures).
//!
//! ```sh
//! cargo run --release --example db_bench -- [--rows 2000000] [--dir target/db_bench] \
//!     [--pg postgres://postgres@127.0.0.1:5432/test?sslmode=disable] \
//!     [--mysql mysql://root@127.0.0.1:3306/test] [--keep]
//! ```
//!
//! One run generates a CSV (the `bench` preset of the `generate` connector: 8 columns
//! of ints, text, float, timestamp and bool), then times, on the same data:
//! `psql \copy … FROM` (the baseline) against Ferry's CSV → PostgreSQL (append), Ferry's
//! PostgreSQL → CSV against `psql \copy (SELECT …) TO`, a parallel read, the same read
//! through an SSH tunnel (the kit's sshd on loopback; target: under 20 % slower), and
//! Ferry's PostgreSQL → MySQL. Every Ferry step runs in a child process of this binary through
//! the config loading and runtime of `ferry sync`, so each peak RSS (VmHWM) is the
//! step's own; psql's comes from `/usr/bin/time` when installed. Needs `psql` on the
//! PATH. Works in the schema `ferry_bench` and the MySQL database `ferry_bench`,
//! both dropped at the end (`--keep` keeps them and the step configs, e.g. to profile
//! one step: `perf record target/release/examples/db_bench --step target/db_bench/pg_csv.toml real`).
//! Each timed load starts after a `CHECKPOINT`, so one step's WAL does not slow the
//! next. Target: CSV → PostgreSQL ≥ 0.8× psql, peak RSS < 150 MB.
//!
//! Change data capture (`--cdc-rows 1000000`): a table of that many rows is copied into
//! SQLite by a first `cdc` run, every row is then updated in one burst (one `UPDATE`),
//! and the run that applies the burst is timed (rows/s, peak RSS) beside the server's
//! own decoding of the same changes (`pg_logical_slot_peek_binary_changes`, counted in
//! `psql`: the floor any reader of the slot pays).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use support::{run, Step};

const SCHEMA: &str = "ferry_bench";
const COLUMNS: &str =
    "id bigint, name text, email text, amount double precision, quantity bigint, \
                       created_at timestamptz, active boolean, country text";

struct Args {
    rows: u64,
    dir: PathBuf,
    pg: String,
    mysql: String,
    keep: bool,
    cdc_rows: u64,
}

fn args() -> Args {
    let mut a = Args {
        rows: 2_000_000,
        dir: PathBuf::from("target/db_bench"),
        pg: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into(),
        mysql: "mysql://root@127.0.0.1:3306/test".into(),
        keep: false,
        cdc_rows: 1_000_000,
    };
    support::read_args("db_bench", &["--keep"], |name, next| {
        match name {
            "--rows" => a.rows = next.parse().expect("--rows N"),
            "--dir" => a.dir = PathBuf::from(next),
            "--pg" => a.pg = next,
            "--mysql" => a.mysql = next,
            "--keep" => a.keep = true,
            "--cdc-rows" => a.cdc_rows = next.parse().expect("--cdc-rows N"),
            _ => return false,
        }
        true
    });
    a
}

/// Runs `psql <url> -c <command>`, timed, with its peak RSS when `/usr/bin/time` exists.
fn psql(url: &str, command: &str, rows: u64) -> Step {
    let timed = Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", "psql"]);
        c
    } else {
        Command::new("psql")
    };
    cmd.args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command]);
    let t = Instant::now();
    let out = cmd.output().expect("psql runs (is it installed?)");
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql -c {command}: {err}");
    let peak_mb = if timed {
        err.lines()
            .last()
            .and_then(|l| l.trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    } else {
        f64::NAN
    };
    Step {
        rows,
        secs,
        peak_mb,
    }
}

fn sql(url: &str, command: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            command,
        ])
        .output()
        .expect("psql runs (is it installed?)");
    assert!(
        out.status.success(),
        "psql -c {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn line(what: &str, s: &Step, bytes: u64, baseline: Option<&Step>) {
    let ratio = baseline
        .map(|b| format!("{:>5.2}× psql", b.secs / s.secs))
        .unwrap_or_default();
    println!("{what:<36} {}  {ratio}", s.figures(bytes));
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(a) = support::args_unless_step(args).await else {
        return;
    };
    let dir = support::work_dir("Ferry vs psql", a.rows, &a.dir);
    let pg = &a.pg;

    // the data set
    let data = dir.join("data");
    let s = run(&dir, "gen", &support::gen_csv(a.rows, &data), false);
    let csv = data.join("bench.csv");
    let size = std::fs::metadata(&csv).unwrap().len();
    line("generate → CSV", &s, size, None);

    sql(
        pg,
        &format!(
            "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}; \
             CREATE TABLE {SCHEMA}.by_psql ({COLUMNS}); CREATE TABLE {SCHEMA}.bench ({COLUMNS})"
        ),
    );
    let pg_url = |extra: &str| format!("url = \"{pg}\"\n{extra}");
    // flushes the WAL of the steps before (needs a superuser; else best effort)
    let checkpoint = || {
        let _ = Command::new("psql")
            .args([pg.as_str(), "-X", "-q", "-c", "CHECKPOINT"])
            .output();
    };

    // CSV → PostgreSQL
    println!();
    checkpoint();
    let base_in = psql(
        pg,
        &format!(
            "\\copy {SCHEMA}.by_psql FROM '{}' CSV HEADER",
            csv.display()
        ),
        a.rows,
    );
    line("psql \\copy FROM (baseline)", &base_in, size, None);
    checkpoint();
    let s = run(
        &dir,
        "csv_pg",
        &format!(
            "{}[destination]\ntype = \"postgres\"\n{}[[streams]]\nname = \"bench\"\nmode = \"append\"\n",
            support::csv_source(&csv),
            pg_url(&format!("schema = \"{SCHEMA}\"\n"))
        ),
        false,
    );
    line("Ferry CSV → PostgreSQL (append)", &s, size, Some(&base_in));
    let ratio_in = base_in.secs / s.secs;
    let peak_in = s.peak_mb;
    let same = sql(
        pg,
        &format!(
            "SELECT (SELECT count(*) FROM {SCHEMA}.bench) || ' ' || \
             (SELECT count(*) FROM (SELECT * FROM {SCHEMA}.bench EXCEPT SELECT * FROM {SCHEMA}.by_psql) d)"
        ),
    );
    assert_eq!(
        same,
        format!("{} 0", a.rows),
        "Ferry's table differs from psql's (rows, rows not in psql's)"
    );

    // PostgreSQL → CSV
    println!();
    let out_csv = dir.join("by_psql.csv");
    let base_out = psql(
        pg,
        &format!(
            "\\copy (SELECT * FROM {SCHEMA}.bench) TO '{}' CSV HEADER",
            out_csv.display()
        ),
        a.rows,
    );
    let out_size = std::fs::metadata(&out_csv).unwrap().len();
    line(
        "psql \\copy (SELECT …) TO (baseline)",
        &base_out,
        out_size,
        None,
    );
    let pg_source = |extra: &str| {
        format!(
            "[source]\ntype = \"postgres\"\n{}",
            pg_url(&format!(
                "schemas = [\"{SCHEMA}\"]\ntables = [\"bench\"]\n{extra}"
            ))
        )
    };
    let s = run(
        &dir,
        "pg_csv",
        &format!(
            "{}[destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"csv\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n",
            pg_source(""),
            dir.join("by_ferry").display()
        ),
        false,
    );
    line("Ferry PostgreSQL → CSV", &s, out_size, Some(&base_out));
    let s = run(
        &dir,
        "pg_read",
        &format!(
            "{}[destination]\ntype = \"file\"\npath = \"unused\"\n",
            pg_source("")
        ),
        true,
    );
    line(
        "Ferry PostgreSQL read (→ counting)",
        &s,
        out_size,
        Some(&base_out),
    );
    let direct_read = s;
    // the same read through an SSH tunnel (a real sshd on loopback forwarding to the server)
    let sshd = ferry_testkit::sftp_server::SftpServer::start();
    let tunnel = format!(
        "tunnel = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", password = \"{}\", host_key = \"{}\" }}\n",
        sshd.port(),
        ferry_testkit::sftp_server::USER,
        ferry_testkit::sftp_server::PASSWORD,
        sshd.host_key()
    );
    let s = run(
        &dir,
        "pg_read_tunnel",
        &format!(
            "{}[destination]\ntype = \"file\"\npath = \"unused\"\n",
            pg_source(&tunnel)
        ),
        true,
    );
    line("  … through an SSH tunnel", &s, out_size, Some(&base_out));
    let tunnel_cost = s.secs / direct_read.secs - 1.0;
    println!(
        "{:<36} {:+.1} % time, peak RSS {:.1} → {:.1} MiB (target: under +20 %)",
        "  tunnel vs direct read",
        tunnel_cost * 100.0,
        direct_read.peak_mb,
        s.peak_mb
    );
    let s = run(
        &dir,
        "pg_read4",
        &format!(
            "{}[destination]\ntype = \"file\"\npath = \"unused\"\n",
            pg_source("parallel = [{ stream = \"bench\", partitions = 4, column = \"id\" }]\n")
        ),
        true,
    );
    line("  … 4 key ranges at once", &s, out_size, Some(&base_out));

    // PostgreSQL → MySQL
    println!();
    checkpoint();
    let opts = mysql_async::Opts::from_url(&a.mysql).expect("--mysql URL");
    let mut m = mysql_async::Conn::new(opts)
        .await
        .expect("MySQL/MariaDB reachable");
    m.query_drop("DROP DATABASE IF EXISTS ferry_bench; CREATE DATABASE ferry_bench")
        .await
        .unwrap();
    let (base, _) = a.mysql.rsplit_once('/').expect("mysql://…/database");
    let s = run(
        &dir,
        "pg_mysql",
        &format!(
            "{}[destination]\ntype = \"mysql\"\nurl = \"{base}/ferry_bench\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n",
            pg_source("")
        ),
        false,
    );
    line("Ferry PostgreSQL → MySQL (overwrite)", &s, out_size, None);
    let n: Option<u64> = m
        .query_first("SELECT count(*) FROM ferry_bench.bench")
        .await
        .unwrap();
    assert_eq!(n, Some(a.rows), "rows in MySQL");
    let _ = m.disconnect().await;
    cdc(&dir, pg, a.cdc_rows);
    if !a.keep {
        let mut m = mysql_async::Conn::new(mysql_async::Opts::from_url(&a.mysql).unwrap())
            .await
            .expect("MySQL/MariaDB reachable");
        m.query_drop("DROP DATABASE ferry_bench").await.unwrap();
        let _ = m.disconnect().await;
        sql(pg, &format!("DROP SCHEMA {SCHEMA} CASCADE"));
    }

    println!(
        "\nCSV → PostgreSQL: {ratio_in:.2}× psql (target ≥ 0.80), peak RSS {peak_in:.1} MiB (target < 150)"
    );
}

/// The `cdc` section: a burst of `rows` updates read from a replication slot into SQLite.
fn cdc(dir: &Path, pg: &str, rows: u64) {
    println!();
    let prefix = "ferry_bench_cdc";
    let slot = format!("{prefix}_cdc");
    let drop_slot = format!(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'"
    );
    sql(pg, &drop_slot);
    sql(
        pg,
        &format!(
            "DROP PUBLICATION IF EXISTS {prefix}; CREATE TABLE {SCHEMA}.cdc (id bigint PRIMARY KEY, \
             n bigint, name text); INSERT INTO {SCHEMA}.cdc SELECT i, i, 'row ' || i \
             FROM generate_series(1, {rows}) i"
        ),
    );
    let db = dir.join("cdc.db");
    let _ = std::fs::remove_file(&db);
    let toml = format!(
        "[source]\ntype = \"postgres\"\nurl = \"{pg}\"\nschemas = [\"{SCHEMA}\"]\ntables = [\"cdc\"]\n\
         cdc = {{ slot_prefix = \"{prefix}\" }}\n[destination]\ntype = \"sqlite\"\npath = \"{}\"\n\
         [[streams]]\nname = \"cdc\"\nincremental = true\nmode = \"upsert\"\ndeletes = \"hard\"\n",
        db.display()
    );
    let s = run(dir, "cdc", &toml, false);
    line("Ferry cdc: first run (whole table)", &s, 0, None);
    sql(
        pg,
        &format!("UPDATE {SCHEMA}.cdc SET n = n + 1, name = 'updated'"),
    );
    let peek = format!(
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('{slot}', NULL, NULL, \
         'proto_version', '1', 'publication_names', '{prefix}')"
    );
    let base = psql(pg, &peek, rows);
    line("server decoding the slot (baseline)", &base, 0, None);
    let s = run(dir, "cdc", &toml, false);
    line("Ferry cdc: the burst of updates", &s, 0, Some(&base));
    assert_eq!(s.rows, rows, "rows the burst upserted");
    println!(
        "{:<36} {:.0} rows/s, peak RSS {:.1} MiB",
        "  cdc throughput",
        rows as f64 / s.secs,
        s.peak_mb
    );
    sql(pg, &drop_slot);
    sql(pg, &format!("DROP PUBLICATION IF EXISTS {prefix}"));
}
