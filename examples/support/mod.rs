//! What the benchmark examples share: each measured step runs in a child process of the
//! example itself (`<example> --step <config> real|counting [--progress]`), through the
//! config loading and runtime of `ferry sync`, so a step's peak RSS is its own.
//!
//! Not an example on its own (Cargo only builds `examples/*.rs`); the examples include
//! it with `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_core::arrow_array::RecordBatch;
use ferry_core::secret::ResolveContext;
use ferry_core::{async_trait, Durability, Sink, Source, StreamWriter, WriteRequest, WriteSummary};
use ferry_engine::report::StreamReport;
use ferry_engine::runtime::Observer;
use ferry_engine::state::StateStore;
use ferry_engine::{RunOptions, RunReport, Runtime, SyncConfig};

/// The columns of the `generate` connector's `bench` preset, for a CSV source.
pub const BENCH_COLUMNS: &str = "columns = { id = \"int64\", name = \"string\", email = \"string\", amount = \"float64\", quantity = \"int64\", created_at = \"timestamp\", active = \"bool\", country = \"string\" }";

/// A config that writes `rows` rows of the `bench` preset as `dir/bench.csv`.
pub fn gen_csv(rows: u64, dir: &Path) -> String {
    format!(
        "[source]\ntype = \"generate\"\nseed = 7\nstreams = [{{ name = \"bench\", preset = \"bench\", rows = {rows} }}]\n\
         [destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"csv\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n",
        dir.display()
    )
}

/// The `[source]` of a config reading the CSV that [`gen_csv`] wrote.
pub fn csv_source(csv: &Path) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n{BENCH_COLUMNS}\n",
        csv.display()
    )
}

/// Peak resident memory of this process, in MiB.
pub fn peak_rss_mb() -> f64 {
    proc_status_mb("self", "VmHWM:")
}

/// A field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`) in MiB; NaN when gone.
pub fn proc_status_mb(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) of process `pid` (`"self"`: this one) and of the children
/// it waited for, from `/proc/<pid>/stat` (in clock ticks, converted with `getconf
/// CLK_TCK`).
pub fn cpu_seconds(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command name, which is in parentheses and may hold spaces
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 15 {
        return (0.0, 0.0);
    }
    let tick = clock_tick();
    // utime stime cutime cstime are fields 14-17 of the line: 12-15 after the name
    ((f[11] + f[12]) / tick, (f[13] + f[14]) / tick)
}

fn clock_tick() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A destination that only counts, so a figure is the reading side's alone.
#[derive(Clone, Default)]
pub struct CountingSink;
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

/// Reads the example's command line: each `--name value` pair, or a bare `--name` that is
/// one of `switches` (with an empty value), goes to `set`, which says whether it knows it.
pub fn read_args(example: &str, switches: &[&str], mut set: impl FnMut(&str, String) -> bool) {
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let switch = switches.contains(&v[i].as_str());
        let value = match switch {
            true => String::new(),
            false => v.get(i + 1).cloned().unwrap_or_default(),
        };
        if !set(&v[i], value) {
            panic!(
                "unknown argument {}; see the doc comment of examples/{example}.rs",
                v[i]
            );
        }
        i += if switch { 1 } else { 2 };
    }
}

/// Makes the example's folder `dir` and returns its full path.
pub fn folder(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    dir.canonicalize().unwrap()
}

/// [`folder`], saying what the example measures (`what`) on `rows` rows of the `bench`
/// preset.
pub fn work_dir(what: &str, rows: u64, dir: &Path) -> std::path::PathBuf {
    let dir = folder(dir);
    println!(
        "{what}: {} rows of 8 columns (generate preset `bench`), folder {}\n",
        ferry_engine::report::group(rows),
        dir.display()
    );
    dir
}

/// What one step did.
pub struct Step {
    /// Rows written.
    pub rows: u64,
    /// Wall time of the sync, in seconds.
    pub secs: f64,
    /// The child's peak RSS, in MiB.
    pub peak_mb: f64,
}

impl Step {
    /// Its figures for a table line: rows, seconds, rows/s, MB/s of `bytes`, peak RSS.
    pub fn figures(&self, bytes: u64) -> String {
        format!(
            "{:>12} rows  {:>7.2}s  {:>12} rows/s  {:>8.1} MB/s  peak RSS {:>7.1} MiB",
            ferry_engine::report::group(self.rows),
            self.secs,
            ferry_engine::report::group((self.rows as f64 / self.secs) as u64),
            bytes as f64 / 1e6 / self.secs,
            self.peak_mb
        )
    }
}

/// Prints one table line: what was measured, then its [`Step::figures`].
pub fn line(what: &str, s: &Step, bytes: u64) {
    println!("{what:<34} {}", s.figures(bytes));
}

/// Prints how the peak RSS with the larger input compares with the smaller's.
pub fn print_flat(small: f64, big: f64) {
    println!(
        "peak RSS {small:.1} MiB vs {big:.1} MiB: {:+.1}% (target: within 20%, under 150 MiB)",
        (big / small - 1.0) * 100.0
    );
}

/// The machine and its load now (CPU, cores, load average, UTC time), for the record.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let now = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{now}: {model}, {} core(s), load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.join(" ")
    )
}

/// Writes `toml` to `dir/name.toml` and starts its step in a child process of this
/// binary; `counting` replaces the destination by [`CountingSink`], `progress` makes
/// the child print `progress <rows> <bytes>` lines as it goes.
pub fn spawn(dir: &Path, name: &str, toml: &str, counting: bool, progress: bool) -> Child {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--step",
        path.to_str().unwrap(),
        if counting { "counting" } else { "real" },
    ]);
    if progress {
        cmd.arg("--progress");
    }
    cmd.stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("step {name}: {e}"))
}

/// Runs the step of `toml` in a child process (see [`spawn`]) and waits for it.
pub fn run(dir: &Path, name: &str, toml: &str, counting: bool) -> Step {
    let out = spawn(dir, name, toml, counting, false)
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "step {name} failed");
    parse_done(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| panic!("step {name} printed no result"))
}

/// The `done <rows> <secs> <peak MiB>` line a step ends with.
fn parse_done(text: &str) -> Option<Step> {
    let line = text.lines().find_map(|l| l.strip_prefix("done "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(Step {
        rows: *v.first()? as u64,
        secs: *v.get(1)?,
        peak_mb: *v.get(2)?,
    })
}

/// One sample of a running step.
pub struct Sample {
    /// Seconds since the step started.
    pub t: f64,
    /// Rows written so far.
    pub rows: u64,
    /// Resident memory now, in MiB.
    pub rss_mb: f64,
}

/// Runs the step of `toml` in a child process and samples its rows written and its
/// resident memory every `every`, calling `on_sample` with each sample; returns the
/// step's result and the samples.
pub fn run_sampled(
    dir: &Path,
    name: &str,
    toml: &str,
    every: Duration,
    mut on_sample: impl FnMut(&Sample),
) -> (Step, Vec<Sample>) {
    let mut child = spawn(dir, name, toml, false, true);
    let pid = child.id().to_string();
    let rows = Arc::new(AtomicU64::new(0));
    let done: Arc<Mutex<Option<Step>>> = Arc::default();
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let (rows, done) = (rows.clone(), done.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(p) = line.strip_prefix("progress ") {
                    if let Some(n) = p.split_whitespace().next().and_then(|n| n.parse().ok()) {
                        rows.store(n, Ordering::Relaxed);
                    }
                } else if let Some(s) = parse_done(&line) {
                    *done.lock().unwrap() = Some(s);
                }
            }
        })
    };
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next = every;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() >= next {
            let s = Sample {
                t: start.elapsed().as_secs_f64(),
                rows: rows.load(Ordering::Relaxed),
                rss_mb: proc_status_mb(&pid, "VmRSS:"),
            };
            on_sample(&s);
            samples.push(s);
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    assert!(status.success(), "step {name} failed");
    let step = done
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(|| panic!("step {name} printed no result"));
    (step, samples)
}

/// Prints `progress <rows> <bytes>` at most every 200 ms.
struct Progress {
    last: Mutex<Instant>,
}

impl Observer for Progress {
    fn progress(&self, _stream: &str, rows: u64, bytes: u64) {
        let mut last = self.last.lock().unwrap();
        if last.elapsed() >= Duration::from_millis(200) {
            *last = Instant::now();
            println!("progress {rows} {bytes}");
        }
    }
    fn stream_finished(&self, report: &StreamReport) {
        println!("progress {} {}", report.rows_committed, report.bytes);
    }
}

/// The example's command line, read by `args`; or `None` when this process was started
/// as a step (`--step <config> real|counting [--progress]`), which then ran here: the
/// example's `main` returns.
pub async fn args_unless_step<A>(args: impl FnOnce() -> A) -> Option<A> {
    if step_if_asked().await {
        return None;
    }
    Some(args())
}

/// If this process was started as a step, runs it and returns true.
async fn step_if_asked() -> bool {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) != Some("--step") {
        return false;
    }
    let path = Path::new(&argv[2]);
    let counting = argv[3] == "counting";
    let progress = argv.get(4).map(String::as_str) == Some("--progress");
    let cfg = SyncConfig::load(path, ResolveContext::default()).unwrap();
    let registry = ferry::registry();
    let source = registry.build_source(&cfg.source).unwrap();
    let sink: Arc<dyn Sink> = if counting {
        Arc::new(CountingSink)
    } else {
        registry.build_sink(&cfg.destination).unwrap()
    };
    let observer = progress.then(|| {
        Arc::new(Progress {
            last: Mutex::new(Instant::now()),
        }) as Arc<dyn Observer>
    });
    let run = (source, sink, observer);
    let state = path.with_extension("state.json");
    let (report, secs) = sync_once(&cfg, run, &state, ("bench", "bench")).await;
    println!("done {} {secs} {}", report.rows_committed(), peak_rss_mb());
    true
}

/// The source, the destination and (if any) the observer of one run.
pub type Run = (Arc<dyn Source>, Arc<dyn Sink>, Option<Arc<dyn Observer>>);

/// Syncs `cfg`'s streams once, as `ferry sync` does, from fresh state at `state_path`
/// (`names`: the source's and destination's in the report); the run must succeed.
/// Returns its report and its wall time in seconds.
pub async fn sync_once(
    cfg: &SyncConfig,
    (source, sink, observer): Run,
    state_path: &Path,
    names: (&str, &str),
) -> (RunReport, f64) {
    let _ = std::fs::remove_file(state_path);
    let state = Arc::new(StateStore::open(state_path.to_path_buf(), None).unwrap());
    let mut rt = Runtime::new(source, sink, state);
    rt.settings = cfg.run.clone();
    if let Some(observer) = observer {
        rt.observer = observer;
    }
    let t = Instant::now();
    let report = rt
        .sync(&cfg.streams, &RunOptions::default(), Some(cfg), names)
        .await
        .expect("the run starts");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        report.status,
        ferry_engine::report::Status::Succeeded,
        "{}",
        report.summary()
    );
    (report, secs)
}
