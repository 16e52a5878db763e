//! Ferry's throughput and memory benchmark (not a test: run it, read the figures).
//!
//! ```sh
//! cargo run --release --example bench -- [--rows 5000000] [--small-mb 100] [--big-mb 2048] [--dir target/bench]
//! ```
//!
//! Everything runs in this one process, through the same config loading and runtime
//! as `ferry sync`. Each step runs in a child process of this binary, so the peak
//! RSS printed (the kernel's VmHWM) is that step's own.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use support::{csv_source, gen_csv, peak_rss_mb, run, Step};

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
    support::read_args("bench", &[], |name, next| {
        match name {
            "--rows" => a.rows = next.parse().expect("--rows N"),
            "--small-mb" => a.small_mb = next.parse().expect("--small-mb N"),
            "--big-mb" => a.big_mb = next.parse().expect("--big-mb N"),
            "--dir" => a.dir = PathBuf::from(next),
            _ => return false,
        }
        true
    });
    a
}

fn line(what: &str, s: &Step, bytes: u64) {
    println!("{what:<34} {}", s.figures(bytes));
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if support::step_if_asked().await {
        return;
    }
    let a = args();
    let dir = support::work_dir("Ferry benchmark", a.rows, &a.dir);

    // 1. the data set
    let data = dir.join("data");
    let s = run(&dir, "gen", &gen_csv(a.rows, &data), false);
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
    );
    line("CSV parse (→ counting sink)", &s, size);
    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let s = run(&dir, "sqlite", &format!("{src}[destination]\ntype = \"sqlite\"\npath = \"{}\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", db.display()), false);
    line("CSV → SQLite (overwrite)", &s, size);
    let s = run(&dir, "jsonl", &format!("{src}[destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"jsonl\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", dir.join("jsonl").display()), false);
    line("CSV → JSONL (overwrite)", &s, size);

    // 6. memory stays flat as the input grows
    let per_row = size as f64 / a.rows as f64;
    println!("\nPeak RSS against input size (CSV parse → counting sink):");
    let mut peaks = Vec::new();
    for mb in [a.small_mb, a.big_mb] {
        let rows = ((mb as f64 * 1e6) / per_row) as u64;
        let d = dir.join(format!("size{mb}"));
        run(&dir, &format!("gen{mb}"), &gen_csv(rows, &d), false);
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
        );
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
