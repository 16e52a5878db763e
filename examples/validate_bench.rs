//! What transforms and checks cost (not a test: run it, read the figures).
//!
//! ```sh
//! cargo run --release --example validate_bench -- [--rows 5000000] [--rounds 2] [--only 3]
//! ```
//!
//! `--only N` runs just setup N (0 none, 1 transforms, 2 checks, 3 both), for profiling.
//!
//! It then times each stage alone, on one thread, over the same batches: the source, the
//! runtime's receipt digest (of the rows as read, and as they are after the transforms), the
//! transforms and the checks, in nanoseconds per row. In the pipeline these stages overlap:
//! the source runs in its own task, each batch's transforms run on a blocking thread while
//! the pump checks and writes earlier batches, and the digest is summed on two background
//! threads. So the rate is set by the busiest stage, or, once every core is busy, by the
//! sum of all stages divided by the cores; on a shared machine, by the CPU time the run
//! gets.
//!
//! Streams the `generate` connector's `bench` preset (8 columns) through the same config
//! parsing and runtime as `ferry sync` into a sink that only counts, with no transforms
//! and no checks, then with 5 transforms, 10 checks, and both; each setup runs `--rounds`
//! times, interleaved, and the best round is shown, in wall time and in CPU time (the
//! process's user + system time, Linux only). Target: 10 checks and 5 transforms cost less
//! than 30% of the plain rate.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use ferry_core::secret::ResolveContext;
use ferry_core::{Message, ReadRequest, Sink};
use ferry_engine::transform::{apply_all, output_schema};
use ferry_engine::validate::Validator;
use ferry_engine::SyncConfig;
use ferry_formats::digest::RowDigest;
use support::CountingSink;

/// The five transforms: two text cleanups, a cast, a derived column and a filter (which
/// keeps every row, so all setups deliver the same rows).
const TRANSFORMS: &str = r#"transforms = [
  { type = "trim", columns = ["name"] },
  { type = "lowercase", columns = ["email"] },
  { type = "cast", column = "quantity", to = "float64" },
  { type = "derive", column = "total", expr = "amount * quantity", as = "float64" },
  { type = "filter", expr = "amount > 0 && active != ()" },
]
"#;

/// The ten checks (all pass on this data, so no row goes to the quarantine).
const CHECKS: &str = r#"checks = [
  { type = "not_null", columns = ["id", "email", "country"] },
  { type = "unique", columns = ["id"] },
  { type = "regex", column = "email", pattern = "^[^@]+@[^@]+$" },
  { type = "range", column = "amount", min = 0, max = 1000 },
  { type = "range", column = "quantity", min = 1, max = 20 },
  { type = "allowed", column = "country", values = ["DE", "FR", "NL", "BE", "AT", "CH", "IT", "ES", "PT", "GB", "IE", "SE", "NO", "DK", "FI", "PL", "CZ", "US", "CA", "BR", "MX", "JP", "IN", "AU", "ZA"] },
  { type = "max_length", column = "name", max = 64 },
  { type = "max_length", column = "country", max = 2 },
  { type = "freshness", column = "created_at", max_age = "36500d" },
  { type = "row_count", min = 1 },
]
"#;

fn config(dir: &Path, rows: u64, extra: &str) -> SyncConfig {
    let text = format!(
        "[source]\ntype = \"generate\"\nseed = 7\nstreams = [{{ name = \"bench\", preset = \"bench\", rows = {rows} }}]\n\
         [destination]\ntype = \"file\"\npath = \"unused\"\n\
         [[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n{extra}"
    );
    SyncConfig::parse(
        &dir.join("bench.toml"),
        text,
        dir.to_path_buf(),
        ResolveContext::default(),
    )
    .expect("the bench config parses")
}

/// CPU time this process used so far, user + system, in seconds (Linux: `/proc/self/stat`,
/// in clock ticks of 1/100 s); `None` elsewhere. Wall time on a shared machine depends on
/// how many threads compete; CPU time says what the work costs.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the fields after the command name, which is in parentheses
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs one sync of `rows` generated rows with `extra` in its `[[streams]]` entry;
/// returns (rows written, seconds).
async fn run(dir: &Path, rows: u64, extra: &str) -> (u64, f64) {
    let cfg = config(dir, rows, extra);
    let source = ferry::registry()
        .build_source(&cfg.source)
        .expect("the generate source builds");
    let run = (source, Arc::new(CountingSink) as Arc<dyn Sink>, None);
    let state = dir.join("state.json");
    let (report, secs) = support::sync_once(&cfg, run, &state, ("generate", "counting")).await;
    let s = &report.streams[0];
    assert_eq!(s.rows_rejected, 0, "a check failed on the bench data");
    (s.rows_committed, secs)
}

/// Times each stage alone over the same batches; prints nanoseconds per row.
async fn breakdown(dir: &Path, rows: u64) {
    let cfg = config(dir, rows, &format!("{TRANSFORMS}{CHECKS}"));
    let source = ferry::registry().build_source(&cfg.source).unwrap();
    let catalog = source.discover().await.unwrap();
    let schema = catalog.get("bench").unwrap().schema.clone();
    let stream = &cfg.streams[0];
    let steps: Vec<_> = stream
        .transforms
        .iter()
        .map(|t| t.build().unwrap())
        .collect();
    let out = output_schema(&steps, schema).unwrap();
    let mut validator = Validator::new(&stream.checks, &out).unwrap();
    // each check alone, to say which costs what
    let mut alone: Vec<(String, Validator, Duration)> = stream
        .checks
        .iter()
        .map(|c| {
            let v = Validator::new(std::slice::from_ref(c), &out).unwrap();
            (v.report()[0].check.clone(), v, Duration::ZERO)
        })
        .collect();
    let mut step_time = vec![Duration::ZERO; steps.len()];
    let (mut before, mut after) = (RowDigest::new(), RowDigest::new());
    let mut t = [Duration::ZERO; 5];
    let mut messages = source.read(ReadRequest::full("bench")).await.unwrap();
    let mut n = 0u64;
    loop {
        let clock = Instant::now();
        let Some(m) = messages.next().await else {
            break;
        };
        t[0] += clock.elapsed();
        let Message::Batch(batch) = m.unwrap() else {
            continue;
        };
        n += batch.num_rows() as u64;
        let clock = Instant::now();
        before.add_batch(&batch);
        t[1] += clock.elapsed();
        let mut b = batch.clone();
        let clock = Instant::now();
        let batch = apply_all(&steps, batch).unwrap();
        t[2] += clock.elapsed();
        for (i, s) in steps.iter().enumerate() {
            let clock = Instant::now();
            b = s.apply(b).unwrap();
            step_time[i] += clock.elapsed();
        }
        for (_, v, d) in &mut alone {
            let clock = Instant::now();
            v.check(batch.clone()).unwrap();
            *d += clock.elapsed();
        }
        let clock = Instant::now();
        let outcome = validator.check(batch).unwrap();
        t[3] += clock.elapsed();
        let clock = Instant::now();
        after.add_batch(&outcome.batch);
        t[4] += clock.elapsed();
    }
    validator.finish().unwrap();
    let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "\nCPU per row, each stage alone on one thread ({} rows):",
        ferry_engine::report::group(n)
    );
    for (what, d) in [
        ("source (generate)", t[0]),
        ("runtime digest, rows as read", t[1]),
        ("5 transforms", t[2]),
        ("10 checks", t[3]),
        ("runtime digest, rows transformed", t[4]),
    ] {
        println!("  {what:<34} {:>7.1} ns/row", ns(d));
    }
    for (s, d) in steps.iter().zip(&step_time) {
        println!("    {:<32} {:>7.1} ns/row", s.describe(), ns(*d));
    }
    for (what, _, d) in &alone {
        println!("    {:<32} {:>7.1} ns/row", what, ns(*d));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  → CPU per row goes from {:.0} (source + digest) to {:.0} (source + transforms + checks + digest); of the {:.0} added, {:.0} are the transforms and checks, {:.0} the digest of the wider rows. The stages overlap on this machine's {cores} core(s).",
        ns(t[0] + t[1]),
        ns(t[0] + t[2] + t[3] + t[4]),
        ns(t[2] + t[3] + t[4]) - ns(t[1]),
        ns(t[2] + t[3]),
        ns(t[4]) - ns(t[1])
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut rows: u64 = 5_000_000;
    let mut rounds: usize = 2;
    let mut only: Option<usize> = None;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--rows" => rows = value.parse().expect("--rows N"),
            "--rounds" => rounds = value.parse().expect("--rounds N"),
            "--only" => only = Some(value.parse().expect("--only 0..=3")),
            other => panic!(
                "unknown argument {other}; see the doc comment of examples/validate_bench.rs"
            ),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    println!(
        "Ferry transforms and checks: {} rows of the generate `bench` preset → counting sink, best of {rounds}\n",
        ferry_engine::report::group(rows)
    );
    let setups = [
        ("no transforms, no checks", String::new()),
        ("5 transforms", TRANSFORMS.to_string()),
        ("10 checks", CHECKS.to_string()),
        ("5 transforms + 10 checks", format!("{TRANSFORMS}{CHECKS}")),
    ];
    let mut best = vec![f64::INFINITY; setups.len()];
    let mut best_cpu = vec![f64::INFINITY; setups.len()];
    for _ in 0..rounds {
        for (i, (_, extra)) in setups.iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let cpu = cpu_secs();
            let (n, secs) = run(tmp.path(), rows, extra).await;
            assert_eq!(n, rows, "rows were lost");
            best[i] = best[i].min(secs);
            if let (Some(a), Some(b)) = (cpu, cpu_secs()) {
                best_cpu[i] = best_cpu[i].min(b - a);
            }
        }
    }
    if let Some(o) = only {
        let (what, _) = &setups[o];
        println!(
            "{what:<28} {:>7.2}s  {:>12} rows/s",
            best[o],
            ferry_engine::report::group((rows as f64 / best[o]) as u64)
        );
        return;
    }
    let base = rows as f64 / best[0];
    for (((what, _), secs), cpu) in setups.iter().zip(&best).zip(&best_cpu) {
        let rate = rows as f64 / secs;
        println!(
            "{what:<28} {:>7.2}s  {:>12} rows/s  {:>+7.1}% vs none   CPU {:>6.2}s {:>+7.1}%",
            secs,
            ferry_engine::report::group(rate as u64),
            (base / rate - 1.0) * 100.0,
            cpu,
            (cpu / best_cpu[0] - 1.0) * 100.0
        );
    }
    let slower = (best[3] / best[0] - 1.0) * 100.0;
    println!(
        "\n10 checks + 5 transforms take {slower:.1}% more time than none (target: under 30%): {}",
        if slower < 30.0 { "met" } else { "NOT met" }
    );
    println!(
        "and {:.1}% more CPU time (user + system, all threads): on a busy machine the wall time \
         depends on the CPU share the run's threads get; with idle cores the stages overlap",
        (best_cpu[3] / best_cpu[0] - 1.0) * 100.0
    );
    breakdown(tmp.path(), rows).await;
}
