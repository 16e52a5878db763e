//! Crash safety: `ferry sync` is run as a child process over a data set that takes a few
//! seconds, killed with SIGKILL at seeded random points, rerun, and checked.
//!
//! Per pair (each a test, so the three run at once):
//! - CSV → SQLite, upsert (exactly once: every CSV row, no key twice) and append
//!   (at least once: every CSV row, nothing that is not one);
//! - CSV → PostgreSQL, upsert (exactly the CSV rows, by key and content);
//! - PostgreSQL → S3, overwrite (the stream's objects hold exactly the table's rows, no
//!   multipart upload is left open, no object of a killed run is left behind).
//!
//! After every kill the state file is absent or a valid state; after the kills of one
//! episode a run that completes must succeed, and its receipt must verify
//! (`ferry verify … -c sync.toml`). Kill points are drawn from the measured duration of an
//! uninterrupted run, spread over all of it (start-up, mid-stream around the state commits
//! every 0.2 s, at close and swap, and some just after the end).
//!
//! Reproduce a failure with the seed its message prints: `FERRY_CRASH_SEED=<seed> cargo
//! test --test crash`. Needs PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`).

#[path = "support/s3.rs"]
mod s3;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::cli::{self, out, MASTER_KEY};
use support::db::{self, pg_url};
use support::read;

const DEFAULT_SEED: u64 = 20_261_201;
/// Runs killed per pair, at least (episodes of two: a kill, then a kill of the rerun).
const KILLS: usize = 24;
const PER_EPISODE: usize = 2;

// ---------------------------------------------------------------------------------------
// seeds and kill points

/// The run's seed: `FERRY_CRASH_SEED` (decimal or `0x…`), or a fixed default.
fn base_seed() -> u64 {
    match std::env::var("FERRY_CRASH_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("FERRY_CRASH_SEED `{s}` is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// SplitMix64: tiny, and its sequence for a seed never changes with a crate upgrade.
struct Rng(u64);

impl Rng {
    /// One generator per pair, so pairs draw independently of the order they run in.
    fn for_pair(seed: u64, pair: &str) -> Rng {
        let mut h = seed;
        for b in pair.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` fractions of a run spread over `[0, 1.05)`: one drawn in each of `n` equal slices,
/// so every phase gets some, then shuffled so episodes mix early and late kills.
fn kill_fractions(rng: &mut Rng, n: usize) -> Vec<f64> {
    let mut points: Vec<f64> = (0..n)
        .map(|i| 1.05 * (i as f64 + rng.unit()) / n as f64)
        .collect();
    for i in (1..points.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        points.swap(i, j);
    }
    points
}

// ---------------------------------------------------------------------------------------
// a client folder and the ferry binary

fn ferry_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = cli::process_in(dir);
    c.env("FERRY_MASTER_KEY", MASTER_KEY)
        .env_remove("FERRY_PASSPHRASE")
        .env_remove("RUST_LOG")
        .args(args);
    c
}

/// How a run that was to be killed ended.
#[derive(Debug)]
enum Ended {
    Killed,
    /// It finished before the kill point (exit code).
    Finished(Option<i32>),
}

/// One client folder: `sync.toml`, a vault with a signing key, its `.ferry/` state.
struct Client {
    dir: tempfile::TempDir,
    pubkey: String,
    /// Most temp files of interrupted state writes seen in `.ferry/` at once (harmless:
    /// the state file itself is whole; reported so they are not forgotten).
    stale_temps: std::cell::Cell<usize>,
}

impl Client {
    fn new(sync_toml: &str) -> Client {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("sync.toml"), sync_toml).expect("sync.toml");
        let o = ferry_cmd(dir.path(), &["keys", "generate", "signing"])
            .output()
            .expect("ferry runs");
        assert!(o.status.success(), "keys generate signing: {}", out(&o));
        let pubkey = cli::last_line(&o);
        Client {
            dir,
            pubkey,
            stale_temps: Default::default(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The pipeline's state file, `.ferry/state/<pipeline>.json` (a path that does not
    /// exist while there is none).
    fn state_path(&self) -> PathBuf {
        read::state_files(self.path())
            .into_iter()
            .next()
            .unwrap_or_else(|| self.path().join(".ferry/state/none.json"))
    }

    fn ferry(&self, args: &[&str]) -> Output {
        ferry_cmd(self.path(), args).output().expect("ferry runs")
    }

    /// A run that must complete.
    fn sync(&self, ctx: &str) -> Output {
        let o = self.ferry(&["sync", "-c", "sync.toml"]);
        assert!(
            o.status.success(),
            "{ctx}: the completing sync failed: {}",
            out(&o)
        );
        o
    }

    /// A run killed with SIGKILL `after` its start (unless it ended before).
    fn sync_killed(&self, after: Duration) -> Ended {
        let mut child = ferry_cmd(self.path(), &["sync", "-c", "sync.toml"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry starts");
        let deadline = Instant::now() + after;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Ended::Finished(status.code());
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
        }
        // Child::kill sends SIGKILL on Unix: no handler, no clean-up, as a crash
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        Ended::Killed
    }

    /// The state file is absent, or whole and valid (atomic writes: never half a file).
    fn assert_state_valid(&self, ctx: &str) {
        let path = self.state_path();
        let temps = std::fs::read_dir(self.path().join(".ferry/state"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with('.') && n.ends_with(".tmp")
                    })
                    .count()
            })
            .unwrap_or(0);
        self.stale_temps.set(self.stale_temps.get().max(temps));
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{ctx}: cannot read the state file: {e}"),
            Ok(bytes) => {
                let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "{ctx}: the state file is not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert!(
                    json.get("version").and_then(|v| v.as_u64()).is_some()
                        && json.get("streams").is_some_and(|s| s.is_object()),
                    "{ctx}: the state file is not a state: {json}"
                );
                if let Err(e) = ferry_engine::state::StateStore::open(&path, Some("acme")) {
                    panic!("{ctx}: ferry refuses the state file: {e}");
                }
            }
        }
    }

    fn forget_state(&self) {
        let _ = std::fs::remove_file(self.state_path());
    }

    fn receipts(&self) -> Vec<PathBuf> {
        read::receipts(self.path())
    }

    /// The one receipt written since `before` was taken.
    fn new_receipt(&self, before: &[PathBuf], ctx: &str) -> PathBuf {
        let mut new: Vec<PathBuf> = self
            .receipts()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(new.len(), 1, "{ctx}: expected one new receipt: {new:?}");
        new.pop().expect("one")
    }

    /// `ferry verify` against the destination: signature ok, every output ok (or, for a
    /// kind verify cannot re-read, `not checked`, listed in `unchecked`), exit 0.
    fn verify(&self, receipt: &Path, ctx: &str) -> Vec<String> {
        let o = self.ferry(&[
            "verify",
            receipt.to_str().expect("utf-8 path"),
            "--pubkey",
            &self.pubkey,
            "-c",
            "sync.toml",
        ]);
        let text = out(&o);
        assert!(o.status.success(), "{ctx}: verify failed: {text}");
        assert!(
            text.contains("signature  ok"),
            "{ctx}: receipt not signed by the key: {text}"
        );
        let mut unchecked = Vec::new();
        let mut outputs = 0;
        for line in text.lines() {
            if line.starts_with("ok ") {
                outputs += 1;
            } else if line.starts_with("not checked") {
                outputs += 1;
                unchecked.push(line.to_string());
            } else if line.starts_with("CHANGED") || line.starts_with("MISSING") {
                panic!("{ctx}: verify: {line}\n{text}");
            }
        }
        assert!(outputs > 0, "{ctx}: the receipt lists no output: {text}");
        unchecked
    }
}

/// What one pair needs from its test: a fresh destination, and the check of what it holds.
trait Pair {
    /// Seed-independent name, for the messages and the generator.
    fn name(&self) -> &str;
    fn client(&self) -> &Client;
    /// Back to an empty destination (and no state), before an episode.
    fn reset(&self);
    /// Between kills: anything that must hold even mid-crash.
    fn after_kill(&self, _ctx: &str) {}
    /// After the completing run: the destination holds what the mode promises.
    fn check(&self, ctx: &str);
    /// After the completing run: its receipt verified; `unchecked` are the outputs verify
    /// could not re-read.
    fn check_receipt(&self, unchecked: &[String], ctx: &str) {
        assert!(
            unchecked.is_empty(),
            "{ctx}: verify did not check: {unchecked:?}"
        );
    }
}

/// Measures an uninterrupted run, then runs episodes of `PER_EPISODE` kills (each kill
/// reruns what the one before left), each closed by a completing run and the checks.
fn crash_suite(pair: &dyn Pair) {
    let seed = base_seed();
    let mut rng = Rng::for_pair(seed, pair.name());
    let client = pair.client();

    pair.reset();
    let before = client.receipts();
    let clock = Instant::now();
    client.sync(&format!("{} seed={seed} uninterrupted", pair.name()));
    let full = clock.elapsed();
    let ctx = format!("{} seed={seed} uninterrupted run", pair.name());
    pair.check(&ctx);
    let receipt = client.new_receipt(&before, &ctx);
    pair.check_receipt(&client.verify(&receipt, &ctx), &ctx);

    // first kills of the episodes: spread over the whole run; the kill of the rerun that
    // follows: somewhere in what is left of the work. The length of a whole run is
    // measured again whenever one ends before its kill (the machine's load changes).
    let mut full = full;
    let firsts = kill_fractions(&mut rng, KILLS / PER_EPISODE);
    println!(
        "{}: seed {seed}, uninterrupted run {:.2} s, first kill points (fractions of a run) {:?}",
        pair.name(),
        full.as_secs_f64(),
        firsts
            .iter()
            .map(|p| (p * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    let mut killed = 0;
    let mut attempts = 0;
    let mut episode = 0;
    while killed < KILLS && attempts < KILLS * 2 {
        let first = full.mul_f64(firsts.get(episode).copied().unwrap_or_else(|| rng.unit()));
        pair.reset();
        let mut chain: Vec<String> = Vec::new();
        let mut point = first;
        for k in 0..PER_EPISODE {
            if k > 0 {
                let left = full.saturating_sub(point).max(full.mul_f64(0.2));
                point = left.mul_f64(0.95 * rng.unit());
            }
            chain.push(format!("{}ms", point.as_millis()));
            let ctx = format!(
                "{} seed={seed} episode {episode} kills [{}]",
                pair.name(),
                chain.join(" → ")
            );
            attempts += 1;
            let clock = Instant::now();
            match client.sync_killed(point) {
                Ended::Killed => killed += 1,
                Ended::Finished(code) => {
                    chain.push(format!("(ended before, exit {code:?})"));
                    assert_eq!(code, Some(0), "{ctx}: the run failed by itself");
                    if k == 0 {
                        full = clock.elapsed();
                    }
                }
            }
            client.assert_state_valid(&ctx);
            pair.after_kill(&ctx);
        }
        let ctx = format!(
            "{} seed={seed} episode {episode} kills [{}] then a completing run",
            pair.name(),
            chain.join(" → ")
        );
        let before = client.receipts();
        client.sync(&ctx);
        client.assert_state_valid(&ctx);
        pair.check(&ctx);
        let receipt = client.new_receipt(&before, &ctx);
        pair.check_receipt(&client.verify(&receipt, &ctx), &ctx);
        episode += 1;
    }
    println!(
        "{}: seed {seed}, {killed} runs killed of {attempts} ({episode} episodes), all checks passed; state temp files left by kills: {}",
        pair.name(),
        client.stale_temps.get()
    );
    assert!(
        killed >= KILLS,
        "{} seed={seed}: only {killed} of {attempts} runs were killed before they ended",
        pair.name(),
    );
}

// ---------------------------------------------------------------------------------------
// the data: CSV files written by the test

/// One generated row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: i64,
    name: String,
    qty: i64,
}

fn row(id: i64) -> Row {
    Row {
        id,
        name: format!("customer {id}, \"vip\""),
        qty: (id * 7919) % 1000,
    }
}

/// Writes `rows` rows as `files` CSV files `data/orders-NNN.csv`, each one second older
/// than the next (incremental reads go file by file, oldest first; a checkpoint after each).
fn write_csv(dir: &Path, rows: i64, files: i64) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    assert_eq!(rows % files, 0, "rows must split evenly into files");
    let per = rows / files;
    let base = SystemTime::now() - Duration::from_secs(3600);
    for f in 0..files {
        let mut text = String::from("id,name,qty,amount,created_at,active\n");
        for id in (f * per + 1)..=((f + 1) * per) {
            let r = row(id);
            text.push_str(&format!(
                "{},\"{}\",{},{}.{:02},2024-{:02}-{:02}T{:02}:{:02}:00Z,{}\n",
                r.id,
                r.name.replace('"', "\"\""),
                r.qty,
                id % 5000,
                id % 100,
                id % 12 + 1,
                id % 28 + 1,
                id % 24,
                id % 60,
                id % 3 == 0
            ));
        }
        let path = data.join(format!("orders-{f:03}.csv"));
        std::fs::write(&path, text).expect("csv");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("csv");
        file.set_modified(base + Duration::from_secs(f as u64))
            .expect("mtime");
    }
}

fn expected(rows: i64) -> Vec<Row> {
    (1..=rows).map(row).collect()
}

/// Compares what a destination holds with `want` (sorted), exactly.
fn assert_exact(got: &mut [Row], want: &[Row], what: &str, ctx: &str) {
    got.sort();
    if got == want {
        return;
    }
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for r in got.iter() {
        *counts.entry(r.id).or_default() += 1;
    }
    let dups: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .take(10)
        .collect();
    let missing: Vec<i64> = want
        .iter()
        .filter(|r| !counts.contains_key(&r.id))
        .map(|r| r.id)
        .take(10)
        .collect();
    let changed: Vec<&Row> = got
        .iter()
        .filter(|r| want.binary_search(r).is_err())
        .take(5)
        .collect();
    panic!(
        "{ctx}: {what} holds {} rows, want {}: duplicated ids {dups:?}, missing ids {missing:?}, rows not in the source {changed:?}",
        got.len(),
        want.len()
    );
}

/// Every row of `want` at least once, and nothing else (append after crashes).
fn assert_at_least_once(got: &mut [Row], want: &[Row], what: &str, ctx: &str) -> usize {
    got.sort();
    let mut distinct = got.to_vec();
    distinct.dedup();
    assert_exact(&mut distinct, want, what, ctx);
    got.len() - distinct.len()
}

// ---------------------------------------------------------------------------------------
// CSV → SQLite

const SQLITE_ROWS: i64 = 120_000;
const CSV_FILES: i64 = 30;

struct CsvToSqlite {
    client: Client,
    repeats: std::cell::Cell<usize>,
}

impl CsvToSqlite {
    fn rows(&self, table: &str, ctx: &str) -> Vec<Row> {
        let db = rusqlite::Connection::open_with_flags(
            self.client.path().join("out.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|e| panic!("{ctx}: cannot open out.db: {e}"));
        let mut q = db
            .prepare(&format!("SELECT id, name, qty FROM \"{table}\""))
            .unwrap_or_else(|e| panic!("{ctx}: cannot read {table}: {e}"));
        q.query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                name: r.get(1)?,
                qty: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{ctx}: cannot read {table}: {e}"))
    }
}

impl Pair for CsvToSqlite {
    fn name(&self) -> &str {
        "csv→sqlite"
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn reset(&self) {
        for f in ["out.db", "out.db-wal", "out.db-shm", "out.db-journal"] {
            let _ = std::fs::remove_file(self.client.path().join(f));
        }
        self.client.forget_state();
    }
    fn check(&self, ctx: &str) {
        let want = expected(SQLITE_ROWS);
        assert_exact(
            &mut self.rows("orders_upsert", ctx),
            &want,
            "upsert table orders_upsert",
            ctx,
        );
        let repeated = assert_at_least_once(
            &mut self.rows("orders_append", ctx),
            &want,
            "append table orders_append",
            ctx,
        );
        self.repeats.set(self.repeats.get() + repeated);
    }
    fn check_receipt(&self, unchecked: &[String], ctx: &str) {
        // verify re-reads overwritten tables only: the rows an upsert or append run wrote
        // are mixed with earlier ones, so their digest cannot be recomputed from the table
        assert_eq!(
            unchecked.len(),
            2,
            "{ctx}: verify should list both tables: {unchecked:?}"
        );
    }
}

#[test]
fn csv_to_sqlite_survives_sigkill() {
    let toml = r#"client = "acme"

[source]
type = "file"
streams = [
  { name = "orders_upsert", path = "data/orders-*.csv", primary_key = ["id"] },
  { name = "orders_append", path = "data/orders-*.csv" },
]

[destination]
type = "sqlite"
path = "out.db"

[[streams]]
name = "orders_upsert"
mode = "upsert"
primary_key = ["id"]
incremental = true

[[streams]]
name = "orders_append"
mode = "append"
incremental = true

[run]
commit_interval_secs = 0.2
"#;
    let pair = CsvToSqlite {
        client: Client::new(toml),
        repeats: Default::default(),
    };
    write_csv(pair.client.path(), SQLITE_ROWS, CSV_FILES);
    crash_suite(&pair);
    println!(
        "csv→sqlite: append repeated {} rows in all (rows after the last commit of a killed run)",
        pair.repeats.get()
    );
}

// ---------------------------------------------------------------------------------------
// CSV → PostgreSQL

const PG_ROWS: i64 = 150_000;

/// A blocking PostgreSQL client on its own runtime (the tests are plain threads), and the
/// fresh schema of one test, dropped with it.
struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    schema: String,
}

impl Pg {
    fn connect(what: &str) -> Pg {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(db::pg());
        Pg {
            rt,
            client,
            schema: fresh_schema(what),
        }
    }

    fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    fn rows(&self, sql: &str, ctx: &str) -> Vec<Row> {
        self.rt
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{ctx}: {sql}: {e}"))
            .iter()
            .map(|r| Row {
                id: r.get(0),
                name: r.get(1),
                qty: r.get(2),
            })
            .collect()
    }
}

/// A fresh schema name per test run.
fn fresh_schema(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("ferry_crash_{what}_{}_{nanos}", std::process::id())
}

impl Drop for Pg {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let _ = self.rt.block_on(self.client.batch_execute(&sql));
    }
}

struct CsvToPg {
    client: Client,
    pg: Pg,
}

impl Pair for CsvToPg {
    fn name(&self) -> &str {
        "csv→postgres"
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn reset(&self) {
        self.pg.exec(&format!(
            "DROP TABLE IF EXISTS \"{}\".orders",
            self.pg.schema
        ));
        self.client.forget_state();
    }
    fn check(&self, ctx: &str) {
        let mut got = self.pg.rows(
            &format!("SELECT id, name, qty FROM \"{}\".orders", self.pg.schema),
            ctx,
        );
        assert_exact(&mut got, &expected(PG_ROWS), "upsert table orders", ctx);
    }
    fn check_receipt(&self, unchecked: &[String], ctx: &str) {
        assert_eq!(
            unchecked.len(),
            1,
            "{ctx}: verify should list the table: {unchecked:?}"
        );
    }
}

#[test]
fn csv_to_postgres_upsert_survives_sigkill() {
    let pg = Pg::connect("upsert");
    let schema = &pg.schema;
    let toml = format!(
        r#"client = "acme"

[source]
type = "file"
path = "data/orders-*.csv"
stream = "orders"
primary_key = ["id"]

[destination]
type = "postgres"
url = "{}"
schema = "{schema}"

[[streams]]
name = "orders"
mode = "upsert"
primary_key = ["id"]
incremental = true

[run]
commit_interval_secs = 0.2
"#,
        pg_url()
    );
    let pair = CsvToPg {
        client: Client::new(&toml),
        pg,
    };
    write_csv(pair.client.path(), PG_ROWS, CSV_FILES);
    crash_suite(&pair);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL → S3

const S3_ROWS: i64 = 250_000;
/// About 5.7 MB of CSV (38 bytes a row) in the first object, a multipart upload of two
/// parts (5 MiB, the least S3 allows, then the rest); the other 100,000 rows, 3.8 MB, are
/// one PutObject. So kills land in an open upload, between objects and in the deletion
/// of the old ones.
const S3_OBJECT_ROWS: i64 = 150_000;

struct PgToS3 {
    client: Client,
    /// The source schema, dropped with the pair.
    _pg: Pg,
    server: s3::Server,
    /// Kills that left a multipart upload open (the next run must abort it).
    left_open: std::cell::Cell<usize>,
    /// Kills that left objects of the killed run beside the previous run's.
    left_extra: std::cell::Cell<usize>,
}

impl PgToS3 {
    /// The rows of every object under `orders/`, parsed.
    fn object_rows(&self, ctx: &str) -> Vec<Row> {
        let mut rows = Vec::new();
        for key in self.server.keys("out", "orders/") {
            let bytes = self.server.get("out", &key);
            let mut csv = csv::Reader::from_reader(bytes.as_slice());
            for rec in csv.records() {
                let rec = rec.unwrap_or_else(|e| panic!("{ctx}: {key} is not CSV: {e}"));
                let field = |i: usize| rec.get(i).unwrap_or_default().to_string();
                let int = |i: usize| {
                    field(i)
                        .parse::<i64>()
                        .unwrap_or_else(|e| panic!("{ctx}: {key}: `{}` ({e})", field(i)))
                };
                rows.push(Row {
                    id: int(0),
                    name: field(1),
                    qty: int(2),
                });
            }
        }
        rows
    }

    fn assert_no_open_upload(&self, ctx: &str) {
        let left = self.server.open_upload_files();
        assert!(
            left.is_empty(),
            "{ctx}: multipart uploads left open in the store: {left:?}"
        );
    }
}

impl Pair for PgToS3 {
    fn name(&self) -> &str {
        "postgres→s3"
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn reset(&self) {
        // overwrite replaces the stream's objects whatever a killed run left: the bucket
        // is kept from episode to episode on purpose
    }
    fn after_kill(&self, ctx: &str) {
        if !self.server.open_upload_files().is_empty() {
            self.left_open.set(self.left_open.get() + 1);
        }
        if self.server.keys("out", "orders/").len()
            > (S3_ROWS as u64).div_ceil(S3_OBJECT_ROWS as u64) as usize
        {
            self.left_extra.set(self.left_extra.get() + 1);
        }
        // a killed run's journal names what it had in flight, for the next run to clean up
        let journals = self.client.path().join(".ferry/s3-uploads");
        if let Ok(dir) = std::fs::read_dir(&journals) {
            for e in dir.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if let Err(err) = serde_json::from_str::<serde_json::Value>(&text) {
                    panic!(
                        "{ctx}: the upload journal {} is not whole ({err}): {text}",
                        e.path().display()
                    );
                }
            }
        }
    }
    fn check(&self, ctx: &str) {
        let mut got = self.object_rows(ctx);
        assert_exact(&mut got, &expected(S3_ROWS), "objects under orders/", ctx);
        self.assert_no_open_upload(ctx);
        let journals = self.client.path().join(".ferry/s3-uploads");
        let left: Vec<_> = std::fs::read_dir(&journals)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{ctx}: a completed run left upload journals: {left:?}"
        );
    }
}

#[test]
fn postgres_to_s3_overwrite_survives_sigkill() {
    let pg = Pg::connect("s3");
    let schema = &pg.schema;
    pg.exec(&format!(
        "CREATE SCHEMA \"{schema}\";
         CREATE TABLE \"{schema}\".orders (id bigint PRIMARY KEY, name text NOT NULL, qty bigint NOT NULL);
         INSERT INTO \"{schema}\".orders
           SELECT g, 'customer ' || g || ', \"vip\"', (g * 7919) % 1000 FROM generate_series(1::bigint, {S3_ROWS}) g;"
    ));
    let server = s3::Server::start(&["out"]);
    let toml = format!(
        r#"client = "acme"

[source]
type = "postgres"
url = "{}"
schemas = ["{schema}"]
tables = ["orders"]

[destination]
type = "s3"
{}key_template = "{{stream}}/{{run_id}}-{{n}}.{{ext}}"
format = "csv"
part_size = 5242880
max_object_rows = {S3_OBJECT_ROWS}

[[streams]]
name = "orders"
mode = "overwrite"

[run]
commit_interval_secs = 0.2
"#,
        pg_url(),
        server.toml("out")
    );
    let pair = PgToS3 {
        client: Client::new(&toml),
        _pg: pg,
        server,
        left_open: Default::default(),
        left_extra: Default::default(),
    };
    crash_suite(&pair);
    println!(
        "postgres→s3: {} kills left a multipart upload open, {} left extra objects; the next runs removed them all",
        pair.left_open.get(),
        pair.left_extra.get()
    );
}
