//! The `csv` section of `examples/bench.rs`: CSV parsing, CSV → SQLite and CSV → JSONL
//! beside a raw read of the same bytes, and peak RSS against input size.

use std::path::Path;
use std::time::Instant;

use crate::support::{csv_source, gen_csv, line, peak_rss_mb, run, Step};
use crate::Args;

pub fn section(a: &Args, dir: &Path) {
    // 1. the data set
    let data = dir.join("data");
    let s = run(dir, "gen", &gen_csv(a.rows, &data), false);
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
        dir,
        "parse",
        &format!("{src}[destination]\ntype = \"file\"\npath = \"unused\"\n"),
        true,
    );
    line("CSV parse (→ counting sink)", &s, size);
    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let s = run(dir, "sqlite", &format!("{src}[destination]\ntype = \"sqlite\"\npath = \"{}\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", db.display()), false);
    line("CSV → SQLite (overwrite)", &s, size);
    let s = run(dir, "jsonl", &format!("{src}[destination]\ntype = \"file\"\npath = \"{}\"\nformat = \"jsonl\"\n[[streams]]\nname = \"bench\"\nmode = \"overwrite\"\n", dir.join("jsonl").display()), false);
    line("CSV → JSONL (overwrite)", &s, size);

    // 6. memory stays flat as the input grows
    let per_row = size as f64 / a.rows as f64;
    println!("\nPeak RSS against input size (CSV parse → counting sink):");
    let mut peaks = Vec::new();
    for mb in [a.small_mb, a.big_mb] {
        let rows = ((mb as f64 * 1e6) / per_row) as u64;
        let d = dir.join(format!("size{mb}"));
        run(dir, &format!("gen{mb}"), &gen_csv(rows, &d), false);
        let f = d.join("bench.csv");
        let bytes = std::fs::metadata(&f).unwrap().len();
        let s = run(
            dir,
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
    crate::support::print_flat(peaks[0], peaks[1]);
}
