//! Ferry's throughput and memory benchmark (not a test: run it, read the figures).
//!
//! ```sh
//! cargo run --release --example bench -- [--rows 5000000] [--small-mb 100] [--big-mb 2048] [--dir target/bench]
//! ```
//!
//! Everything runs in this one process, through the same config loading and runtime
//! as `ferry sync`. Each step runs in a child process of this binary, so the peak
//! RSS printed (the kernel's VmHWM) is that step's own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::secret::ResolveContext;
use ferry_core::state::StateStore;
use ferry_core::{
    async_trait, Durability, RunOptions, Runtime, Sink, StreamWriter, SyncConfig, WriteRequest,
    WriteSummary,
};

struct Args {
    rows: u64,
    small_mb: u64,
    big_mb: u64,
    dir: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        rows: 5_000_000,
        small_mb: 100,
        big_mb: 2048,
        dir: PathBuf::from("target/bench"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--rows" => a.rows = next.parse().expect("--rows N"),
            "--small-mb" => a.small_mb = next.parse().expect("--small-mb N"),
            "--big-mb" => a.big_mb = next.parse().expect("--big-mb N"),
            "--dir" => a.dir = PathBuf::from(next),
            other => panic!("unknown argument {other}; see the doc comment of examples/bench.rs"),
        }
        i += 2;
    }
    a
}

/// Peak resident memory since the last reset, in MiB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A destination that only counts: isolates the reading side.
#[derive(Clone, Default)]
struct CountingSink;
struct CountingWriter(u64);

#[async_trait]
impl Sink for CountingSink {
    async fn check(&self) -> ferry_core::Result<()> {
        Ok(())
    }
    async fn open(&self, _: WriteRequest) -> ferry_core::Result<Box<dyn StreamWriter>> {
        Ok(Box::new(CountingWriter(0)))
    }
}

#[async_trait]
impl StreamWriter for CountingWriter {
    async fn write(&mut self, batch: RecordBatch) -> ferry_core::Result<()> {
        self.0 += batch.num_rows() as u64;
        Ok(())
    }
    async fn flush(&mut self) -> ferry_core::Result<Durability> {
        Ok(Durability::Durable)
    }
    async fn close(self: Box<Self>) -> ferry_core::Result<WriteSummary> {
        Ok(WriteSummary {
            rows: self.0,
            outputs: vec![],
        })
    }
}

struct Step {
    rows: u64,
    secs: f64,
    peak_mb: f64,
}

/// Runs the sync described by `toml` (written to `dir/name.toml`) in a child process of
/// this binary, so the peak RSS printed is that step's alone; `counting` replaces the
/// destination by a sink that only counts rows.
async fn run(dir: &Path, name: &str, toml: &str, counting: bool) -> Step {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--step",
            path.to_str().unwrap(),
            if counting { "counting" } else { "real" },
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "step {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    Step {
        rows: v[0] as u64,
        secs: v[1],
        peak_mb: v[2],
    }
}

/// The child side of [`run`]: one sync, then `rows secs peak_mib` on stdout.
async fn step(path: &Path, counting: bool) {
    let cfg = SyncConfig::load(path, ResolveContext::default()).unwrap();
    let registry = ferry::registry();
    let source = registry.build_source(&cfg.source).unwrap();
    let sink: Arc<dyn Sink> = if counting {
        Arc::new(CountingSink)
    } else {
        registry.build_sink(&cfg.destination).unwrap()
    };
    let state_path = path.with_extension("state.json");
    let _ = std::fs::remove_file(&state_path);
    let state = Arc::new(StateStore::open(state_path, None).unwrap());
    let mut rt = Runtime::new(source, sink, state);
    rt.settings = cfg.run.clone();
    let t = Instant::now();
    let report = rt
        .sync(
            &cfg.streams,
            &RunOptions::default(),
            Some(&cfg),
            ("bench", "bench"),
        )
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        report.status,
        ferry_core::report::Status::Succeeded,
        "{}",
        report.summary()
    );
    println!("{} {secs} {}", report.rows_written(), peak_rss_mb());
}

fn line(what: &str, s: &Step, bytes: u64) {
    println!(
        "{what:<34} {:>12} rows  {:>7.2}s  {:>12} rows/s  {:>8.1} MB/s  peak RSS {:>7.1} MiB",
        ferry_core::report::group(s.rows),
        s.secs,
        ferry_core::report::group((s.rows as f64 / s.secs) as u64),
        bytes as f64 / 1e6 / s.secs,
        s.peak_mb
    );
}

fn gen_csv(rows: u64, out_dir: &Path) -> String {
    format!(
        "[source]\ntype = \"generate\"\nseed = 7\nstreams = [{{ name = \"bench\", preset = \"bench\", rows = {rows} }}]\n\
         [destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"csv\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n",
        out_dir.display()
    )
}

fn csv_source(csv: &Path) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n\
         columns = {{ id = \"int64\", name = \"string\", email = \"string\", amount = \"float64\", quantity = \"int64\", created_at = \"timestamp\", active = \"bool\", country = \"string\" }}\n",
        csv.display()
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--step") {
        return step(Path::new(&argv[2]), argv[3] == "counting").await;
    }
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let dir = a.dir.canonicalize().unwrap();
    println!(
        "Ferry benchmark: {} rows of 8 columns (generate preset `bench`), folder {}\n",
        ferry_core::report::group(a.rows),
        dir.display()
    );

    // 1. the data set
    let data = dir.join("data");
    let s = run(&dir, "gen", &gen_csv(a.rows, &data), false).await;
    let csv = data.join("bench.csv");
    let size = std::fs::metadata(&csv).unwrap().len();
    line("generate → CSV (write)", &s, size);

    // 2. baseline: read the same bytes without parsing
    let t = Instant::now();
    let mut f = std::fs::File::open(&csv).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    let mut n = 0u64;
    loop {
        let k = std::io::Read::read(&mut f, &mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    let base = Step {
        rows: a.rows,
        secs: t.elapsed().as_secs_f64(),
        peak_mb: peak_rss_mb(),
    };
    assert_eq!(n, size);
    line("baseline: raw read of the CSV", &base, size);

    // 3. parsing alone, 4. into SQLite, 5. into JSON Lines
    let src = csv_source(&csv);
    let s = run(
        &dir,
        "parse",
        &format!("{src}[destination]\ntype = \"file\"\npath = \"unused\"\n"),
        true,
    )
    .await;
    line("CSV parse (→ counting sink)", &s, size);
    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let s = run(&dir, "sqlite", &format!("{src}[destination]\ntype = \"sqlite\"\npath = \"{}\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", db.display()), false).await;
    line("CSV → SQLite (overwrite)", &s, size);
    let s = run(&dir, "jsonl", &format!("{src}[destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"jsonl\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", dir.join("jsonl").display()), false).await;
    line("CSV → JSONL (overwrite)", &s, size);

    // 6. memory stays flat as the input grows
    let per_row = size as f64 / a.rows as f64;
    println!("\nPeak RSS against input size (CSV parse → counting sink):");
    let mut peaks = Vec::new();
    for mb in [a.small_mb, a.big_mb] {
        let rows = ((mb as f64 * 1e6) / per_row) as u64;
        let d = dir.join(format!("size{mb}"));
        run(&dir, &format!("gen{mb}"), &gen_csv(rows, &d), false).await;
        let f = d.join("bench.csv");
        let bytes = std::fs::metadata(&f).unwrap().len();
        let s = run(
            &dir,
            &format!("parse{mb}"),
            &format!(
                "{}[destination]\ntype = \"file\"\npath = \"unused\"\n",
                csv_source(&f)
            ),
            true,
        )
        .await;
        line(
            &format!("CSV parse, {:.0} MB input", bytes as f64 / 1e6),
            &s,
            bytes,
        );
        peaks.push(s.peak_mb);
        let _ = std::fs::remove_dir_all(&d);
    }
    println!(
        "peak RSS {:.1} MiB vs {:.1} MiB: {:+.1}% (target: within 20%, under 150 MiB)",
        peaks[0],
        peaks[1],
        (peaks[1] / peaks[0] - 1.0) * 100.0
    );
}
