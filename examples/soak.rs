//! Soak: 50 M rows through CSV → PostgreSQL and PostgreSQL → S3, watching rows/s and
//! memory over the whole run (not a test, not in CI: run it, read the figures).
//!
//! ```sh
//! cargo run --release --example soak -- [--rows 50000000] [--dir target/soak] \
//!     [--pg postgres://postgres@127.0.0.1:5432/test?sslmode=disable] [--every 5] [--keep]
//! ```
//!
//! Generates a CSV of the `generate` connector's `bench` preset (8 columns, ~100 bytes
//! a row: 50 M rows are ~5 GB, and the table as much again), loads it into PostgreSQL
//! (append, schema `ferry_soak`), then reads the table back into an S3-compatible store
//! (an `s3s-fs` server this process runs on a free loopback port) as Parquet objects of
//! 5 M rows each. Each sync runs in a child process through `ferry sync`'s config loading
//! and runtime; every `--every` seconds the child's rows written and resident memory are
//! sampled and printed, and kept in `<dir>/<step>.samples.csv`. The end of each step
//! compares the first and last quarter of the run: rows/s should not fall and RSS should
//! stay flat (the bounded channels keep memory independent of the data's size).
//! Needs about 3× the CSV's size free on disk; everything but the samples is removed at
//! the end unless `--keep`; `--keep --reuse` then skips the data set and the load when
//! the table is still there.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_testkit::s3_server::S3Server;
use support::{Sample, Step};

const SCHEMA: &str = "ferry_soak";
const BUCKET: &str = "soak";
const ACCESS_KEY: &str = "soak-access-key";
const SECRET_KEY: &str = "soak-secret-key-0123456789";

struct Args {
    rows: u64,
    dir: PathBuf,
    pg: String,
    every: f64,
    keep: bool,
    reuse: bool,
}

fn args() -> Args {
    let mut a = Args {
        rows: 50_000_000,
        dir: PathBuf::from("target/soak"),
        pg: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into(),
        every: 5.0,
        keep: false,
        reuse: false,
    };
    support::read_args("soak", &["--keep", "--reuse"], |name, next| {
        match name {
            "--rows" => a.rows = next.parse().expect("--rows N"),
            "--dir" => a.dir = PathBuf::from(next),
            "--pg" => a.pg = next,
            "--every" => a.every = next.parse().expect("--every SECONDS"),
            "--keep" => a.keep = true,
            "--reuse" => a.reuse = true,
            _ => return false,
        }
        true
    });
    a
}

/// Rows in the soak table (0 when there is none).
async fn pg_rows(url: &str) -> u64 {
    let table = format!("SELECT count(*) FROM {SCHEMA}.bench");
    let exists = format!("SELECT to_regclass('{SCHEMA}.bench') IS NOT NULL");
    let first = |m: Vec<tokio_postgres::SimpleQueryMessage>| {
        m.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
    };
    if first(sql(url, &exists).await).as_deref() != Some("t") {
        return 0;
    }
    first(sql(url, &table).await)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn sql(url: &str, statements: &str) -> Vec<tokio_postgres::SimpleQueryMessage> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {url}: {e} (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            )
        });
    tokio::spawn(conn);
    client.simple_query(statements).await.unwrap()
}

/// Runs one step with sampling, printing each sample; writes the samples as CSV and
/// prints the step's verdict.
async fn soak_step(dir: &Path, name: &str, what: &str, toml: String, every: f64) -> Step {
    println!("\n{what}");
    println!(
        "  {:>7}  {:>14}  {:>12}  {:>9}",
        "time", "rows written", "rows/s", "RSS"
    );
    let (dir2, name2) = (dir.to_path_buf(), name.to_string());
    let (step, samples) = tokio::task::spawn_blocking(move || {
        let mut prev: Option<(f64, u64)> = None;
        support::run_sampled(&dir2, &name2, &toml, Duration::from_secs_f64(every), |s| {
            let rate = prev.map_or(s.rows as f64 / s.t, |(t, r)| {
                (s.rows - r) as f64 / (s.t - t)
            });
            prev = Some((s.t, s.rows));
            println!(
                "  {:>6.0}s  {:>14}  {:>12}  {:>6.1} MiB",
                s.t,
                ferry_engine::report::group(s.rows),
                ferry_engine::report::group(rate as u64),
                s.rss_mb
            );
        })
    })
    .await
    .unwrap();
    let mut csv = String::from("seconds,rows_written,rss_mib\n");
    for s in &samples {
        csv.push_str(&format!("{:.1},{},{:.1}\n", s.t, s.rows, s.rss_mb));
    }
    std::fs::write(dir.join(format!("{name}.samples.csv")), csv).unwrap();
    println!(
        "  done: {} rows in {:.1} s, {} rows/s on average, peak RSS {:.1} MiB",
        ferry_engine::report::group(step.rows),
        step.secs,
        ferry_engine::report::group((step.rows as f64 / step.secs) as u64),
        step.peak_mb
    );
    verdict(&samples);
    step
}

/// Compares the second and the last quarter of the samples (the first is warm-up).
fn verdict(samples: &[Sample]) {
    if samples.len() < 8 {
        println!("  (too few samples for a trend: use more rows or a smaller --every)");
        return;
    }
    let q = samples.len() / 4;
    let (early, late) = (&samples[q..2 * q], &samples[samples.len() - q..]);
    let rate = |w: &[Sample]| {
        let (a, b) = (&w[0], &w[w.len() - 1]);
        (b.rows - a.rows) as f64 / (b.t - a.t).max(1e-9)
    };
    let rss = |w: &[Sample]| w.iter().map(|s| s.rss_mb).sum::<f64>() / w.len() as f64;
    let (r1, r2, m1, m2) = (rate(early), rate(late), rss(early), rss(late));
    let max_after_warmup = samples[q..]
        .iter()
        .map(|s| s.rss_mb)
        .fold(f64::MIN, f64::max);
    println!(
        "  rows/s: {} in the 2nd quarter, {} in the last ({:+.1}%)",
        ferry_engine::report::group(r1 as u64),
        ferry_engine::report::group(r2 as u64),
        (r2 / r1 - 1.0) * 100.0
    );
    println!(
        "  RSS: {m1:.1} MiB on average in the 2nd quarter, {m2:.1} MiB in the last ({:+.1} MiB), at most {max_after_warmup:.1} MiB after warm-up: {}",
        m2 - m1,
        if m2 - m1 <= (0.1 * m1).max(8.0) { "flat" } else { "GROWING" }
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(a) = support::args_unless_step(args).await else {
        return;
    };
    let dir = support::folder(&a.dir);
    println!(
        "Ferry soak: {} rows of 8 columns (generate preset `bench`), folder {}, a sample every {} s",
        ferry_engine::report::group(a.rows),
        dir.display(),
        a.every
    );

    let data = dir.join("data");
    if a.reuse && pg_rows(&a.pg).await == a.rows {
        println!("--reuse: {SCHEMA}.bench already holds the rows; loading skipped");
    } else {
        let gen = support::run(&dir, "gen", &support::gen_csv(a.rows, &data), false);
        let csv = data.join("bench.csv");
        let size = std::fs::metadata(&csv).unwrap().len();
        println!(
            "data set: {} rows, {:.2} GB CSV, written in {:.1} s",
            ferry_engine::report::group(gen.rows),
            size as f64 / 1e9,
            gen.secs
        );

        sql(
            &a.pg,
            &format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"),
        )
        .await;
        let load = soak_step(
            &dir,
            "csv_pg",
            "CSV → PostgreSQL (append)",
            format!(
                "{}[destination]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{SCHEMA}\"\n[[streams]]\nname = \"bench\"\nmode = \"append\"\n",
                support::csv_source(&csv),
                a.pg
            ),
            a.every,
        )
        .await;
        let in_pg = pg_rows(&a.pg).await;
        assert_eq!(in_pg, a.rows, "rows in PostgreSQL");
        assert_eq!(load.rows, a.rows, "rows written by the load");
        let _ = std::fs::remove_dir_all(&data);
    }
    let s3_root = dir.join("s3");
    let _ = std::fs::remove_dir_all(&s3_root);
    let s3 = S3Server::builder(&[BUCKET])
        .root(&s3_root)
        .credentials(ACCESS_KEY, SECRET_KEY)
        .start()
        .await;
    let endpoint = &s3.endpoint;
    let unload = soak_step(
        &dir,
        "pg_s3",
        "PostgreSQL → S3 (Parquet, zstd, 5 M rows an object)",
        format!(
            "[source]\ntype = \"postgres\"\nurl = \"{}\"\nschemas = [\"{SCHEMA}\"]\ntables = [\"bench\"]\n\
             [destination]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{endpoint}\"\nforce_path_style = true\nregion = \"us-east-1\"\n\
             access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\nformat = \"parquet\"\nmax_object_rows = 5000000\n\
             [[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n",
            a.pg
        ),
        a.every,
    )
    .await;
    assert_eq!(unload.rows, a.rows, "rows written to S3");
    let objects: Vec<_> = walk(&s3_root.join(BUCKET));
    let bytes: u64 = objects.iter().map(|p| p.metadata().unwrap().len()).sum();
    println!(
        "  {} objects, {:.2} GB in the bucket",
        objects.len(),
        bytes as f64 / 1e9
    );

    if !a.keep {
        sql(&a.pg, &format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")).await;
        let _ = std::fs::remove_dir_all(&s3_root);
    }
    println!("\nsamples: {}/{{csv_pg,pg_s3}}.samples.csv", dir.display());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
