//! Ferry's benchmarks, each beside the reference tool's figure from the same run (not a
//! test: run it, read the figures).
//!
//! ```sh
//! cargo run --release --example bench -- [--only csv,codecs,excel,sftp,age,pgp] \
//!     [--rows 5000000] [--small-mb 100] [--big-mb 2048] [--codec-rows 1000000] \
//!     [--sftp-mb 1024] [--crypto-mb 1024] [--runs 3] [--dir target/bench]
//! ```
//!
//! Sections (`--only` picks some, comma-separated; the default runs all, in this order):
//!
//! - `csv`: CSV parsing, CSV → SQLite and CSV → JSONL (`--rows` rows of the `generate`
//!   connector's `bench` preset) beside a raw read of the same file, and peak RSS for a
//!   `--small-mb` and a `--big-mb` CSV.
//! - `codecs`: the shared codecs written and read back (`--codec-rows` rows): CSV,
//!   CSV.gz, CSV.zst, JSONL.zst, Parquet.
//! - `excel`: an Excel workbook (written by Python's XlsxWriter) read beside the plain
//!   CSV of the same rows (`--codec-rows`, at most a sheet's 1,048,575).
//! - `sftp`: on the kit's real sshd over loopback, download and upload of a `--sftp-mb`
//!   MiB file against OpenSSH's `sftp` client, then the source reading (CSV → Arrow) a
//!   `--small-mb` and a `--sftp-mb` file, each with its peak RSS. Needs root and
//!   `openssh-server`.
//! - `age`, `pgp`: encryption and decryption of a `--crypto-mb` MiB file against the `age`
//!   command and `gpg`, best of `--runs`, in MB/s and MB per CPU-second.
//!
//! Every `ferry sync`-like step runs in a child process of this binary, through the same
//! config loading and runtime as `ferry sync`, so the peak RSS printed (the kernel's
//! VmHWM) is that step's own.

#[path = "support/codec_bench.rs"]
mod codec_bench;
#[path = "support/crypto_bench.rs"]
mod crypto_bench;
#[path = "support/csv_bench.rs"]
mod csv_bench;
#[path = "support/sftp_bench.rs"]
mod sftp_bench;
#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;

/// The sections, in the order a full run takes them.
const SECTIONS: [&str; 6] = ["csv", "codecs", "excel", "sftp", "age", "pgp"];

/// The command line (see the module docs).
pub struct Args {
    pub only: Vec<String>,
    pub rows: u64,
    pub small_mb: u64,
    pub big_mb: u64,
    pub codec_rows: usize,
    pub sftp_mb: u64,
    pub crypto_mb: u64,
    pub runs: u32,
    pub dir: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        only: SECTIONS.iter().map(|s| s.to_string()).collect(),
        rows: 5_000_000,
        small_mb: 100,
        big_mb: 2048,
        codec_rows: 1_000_000,
        sftp_mb: 1024,
        crypto_mb: 1024,
        runs: 3,
        dir: PathBuf::from("target/bench"),
    };
    support::read_args("bench", &[], |name, next| {
        match name {
            "--only" => {
                a.only = next.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = a.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    panic!("--only: no section `{bad}`; the sections are {SECTIONS:?}");
                }
            }
            "--rows" => a.rows = next.parse().expect("--rows N"),
            "--small-mb" => a.small_mb = next.parse().expect("--small-mb N"),
            "--big-mb" => a.big_mb = next.parse().expect("--big-mb N"),
            "--codec-rows" => a.codec_rows = next.parse().expect("--codec-rows N"),
            "--sftp-mb" => a.sftp_mb = next.parse().expect("--sftp-mb N (MiB)"),
            "--crypto-mb" => a.crypto_mb = next.parse().expect("--crypto-mb N (MiB)"),
            "--runs" => a.runs = next.parse::<u32>().expect("--runs N").max(1),
            "--dir" => a.dir = PathBuf::from(next),
            _ => return false,
        }
        true
    });
    a
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(a) = support::args_unless_step(args).await else {
        return;
    };
    let dir = support::folder(&a.dir);
    println!("Ferry benchmark, folder {}", dir.display());
    println!("{}", support::machine());
    for section in SECTIONS.iter().filter(|s| a.only.iter().any(|o| o == *s)) {
        println!("\n== {section} ==");
        let d = dir.join(section);
        std::fs::create_dir_all(&d).unwrap();
        match *section {
            "csv" => csv_bench::section(&a, &d),
            "codecs" => codec_bench::codecs(&d, a.codec_rows),
            "excel" => codec_bench::excel(&d, a.codec_rows),
            "sftp" => sftp_bench::section(&a, &d),
            "age" => crypto_bench::age(&d, a.crypto_mb, a.runs),
            "pgp" => crypto_bench::pgp(&d, a.crypto_mb, a.runs),
            _ => unreachable!(),
        }
    }
    println!("\n{}", support::machine());
}
