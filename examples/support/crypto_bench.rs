//! The `age` and `pgp` sections of `examples/bench.rs`: encryption throughput against the
//! reference tools, on one generated file (incompressible bytes), in the same run and on
//! the same disk.
//!
//! - `age`: Ferry's age encryption and decryption (`ferry_formats::age`, to standard
//!   output and atomically to a file) against the `age` command's, on the same file: the
//!   rows of issue 22 side by side, the fsync of Ferry's file output timed apart.
//! - `pgp`: Ferry's OpenPGP (`ferry_formats::pgp`, rPGP; decryption includes spooling the
//!   plaintext to a temporary file and reading it back, as a source does) against `gpg`,
//!   each party with its own keyring, no compression inside (`gpg -z 0`).
//!
//! Each section first times a plain read + write copy of the file (the baseline). Every
//! step reads a file the page cache holds and writes one without fsync (but the `-o`
//! rows of `age`, where Ferry's fsync is what a user gets), so the figures compare the
//! work of each, not the disk; Ferry's age steps use all cores. Printed per step, best
//! of `--runs` (the disk is synced, untimed, before each run, so one step's writeback is
//! not charged to the next): wall-clock MB/s, and MB per CPU-second (user + system time,
//! from `/proc`), which is the throughput per core and the steadier figure on a busy
//! machine. MB = 10^6 bytes of plaintext.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ferry_formats::age::{self, Identities, Recipients};
use ferry_formats::pgp::{self, Decryptor, Encryptor, PublicKeys, SecretKeys};
use ferry_testkit::gpg::Gpg;

use crate::support::cpu_seconds;

/// The generated file a section encrypts, and the baseline copy's MB/s.
struct Plain {
    path: PathBuf,
    bytes: u64,
    base: f64,
}

/// Generates `mb` MiB in `dir`'s parent (once: the `age` and `pgp` sections share it),
/// brings it into the page cache and times the baseline copy.
fn plain(dir: &Path, mb: u64, runs: u32) -> Plain {
    let bytes = mb << 20;
    let path = dir.parent().unwrap_or(dir).join(format!("crypto-{mb}.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(bytes) {
        println!("generating {mb} MiB in {} …", path.display());
        generate(&path, bytes);
    }
    warm(&path);
    println!("{bytes} bytes, best of {runs} runs; no fsync unless a step says so");
    let copy = dir.join("copy.bin");
    let base = measure("plain copy (baseline)", bytes, runs, || {
        let mut r = File::open(&path).unwrap();
        let mut w = BufWriter::with_capacity(256 << 10, File::create(&copy).unwrap());
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).unwrap();
        }
        w.flush().unwrap();
    });
    std::fs::remove_file(&copy).unwrap();
    Plain { path, bytes, base }
}

/// Runs `step` `runs` times (syncing the disk before each, untimed) and prints the best
/// wall-clock and per-CPU-second throughput for `bytes`; returns the best wall-clock MB/s.
fn measure(name: &str, bytes: u64, runs: u32, mut step: impl FnMut()) -> f64 {
    let mb = bytes as f64 / 1e6;
    let (mut best_wall, mut best_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let _ = Command::new("sync").status();
        let (self0, child0) = cpu_seconds("self");
        let start = Instant::now();
        step();
        let wall = start.elapsed().as_secs_f64();
        let (self1, child1) = cpu_seconds("self");
        best_wall = best_wall.min(wall);
        best_cpu = best_cpu.min((self1 - self0) + (child1 - child0));
    }
    let per_core = if best_cpu > 0.0 {
        format!("{:>6.0}", mb / best_cpu)
    } else {
        "     ?".into()
    };
    println!(
        "{name:<24} {best_wall:>6.2} s {:>6.0} MB/s   {per_core} MB/s per core (CPU {best_cpu:.2} s)",
        mb / best_wall
    );
    mb / best_wall
}

/// Writes `bytes` of incompressible pseudo-random data (xorshift) to `path`.
fn generate(path: &Path, bytes: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            c.copy_from_slice(&state.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        w.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    w.flush().unwrap();
}

/// Reads `path` to the end (to have it in the page cache before a timed step).
fn warm(path: &Path) {
    let mut r = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while r.read(&mut buf).unwrap() > 0 {}
}

/// Whether two files hold the same bytes.
fn same(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        BufReader::new(File::open(a).unwrap()),
        BufReader::new(File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut a, &mut x);
        if read_full(&mut b, &mut y) != n || x[..n] != y[..n] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    ferry_formats::fill::read_up_to(r, buf).unwrap()
}

/// Whether the age CLI decrypted `sealed` into `out` with the identity in `key_file`.
fn age_decrypt(key_file: &Path, sealed: &Path, out: &Path) -> bool {
    Command::new("age")
        .args(["-d", "-i"])
        .arg(key_file)
        .arg("-o")
        .arg(out)
        .arg(sealed)
        .status()
        .unwrap()
        .success()
}

fn age_cli_version() -> Option<String> {
    let out = Command::new("age").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Ferry's age against the `age` command, both ways, on the same file: the three rows of
/// issue 22, each with `age`'s figure from the same run beside it.
///
/// 1. encrypt to standard output (both redirected to a file, no fsync);
/// 2. encrypt with `-o FILE`: Ferry's `encrypt_file` (the `ferry encrypt -o` path: a
///    temporary file, fsync, rename) against `age -o` (no fsync); the fsync of such a
///    file is timed apart;
/// 3. decrypt with `-o FILE`: Ferry's `decrypt_file` (temporary file, fsync, rename)
///    against `age -d -o`.
///
/// Ferry's steps seal and open chunks on all cores; the `age` command does too little
/// else to matter, so wall time is the figure the issue's goals are stated in.
pub fn age(d: &Path, mb: u64, runs: u32) {
    let p = plain(d, mb, runs);
    let (plain, bytes) = (&p.path, p.bytes);
    let (secret, public) = age::generate_identity();
    let key_file = d.join("identity.txt");
    std::fs::write(&key_file, format!("{}\n", secret.expose())).unwrap();
    let recipients = Recipients::parse(std::slice::from_ref(&public), d).unwrap();
    let identities = Identities::parse(&secret).unwrap();
    let version = age_cli_version();
    if version.is_none() {
        println!("age CLI: not installed (apt-get install age), so only Ferry is measured");
    }
    let cli = |name: &str| format!("age {} {name}", version.as_deref().unwrap_or("?"));
    let secs = |mbps: f64| bytes as f64 / 1e6 / mbps;

    // row 1: to standard output
    let sealed = d.join("ferry.age");
    let enc = measure("Ferry encrypt > file", bytes, runs, || {
        let out = BufWriter::with_capacity(256 << 10, File::create(&sealed).unwrap());
        let mut w = age::encrypt_writer(&recipients, out).unwrap();
        let mut r = File::open(plain).unwrap();
        age::copy(&mut r, &mut w, None, None).unwrap();
        w.finish().unwrap().flush().unwrap();
    });
    let cli_sealed = d.join("cli.age");
    let cli_enc = version.as_ref().map(|_| {
        measure(&cli("-r > file"), bytes, runs, || {
            let st = Command::new("age")
                .args(["-e", "-r", &public])
                .arg(plain)
                .stdout(File::create(&cli_sealed).unwrap())
                .status()
                .unwrap();
            assert!(st.success(), "age -e failed");
        })
    });

    // the fsync Ferry's file output adds, apart: of the file row 1 wrote
    let mut fsync = f64::MAX;
    for _ in 0..runs {
        let _ = Command::new("sync").status();
        let f = OpenOptions::new().write(true).open(&sealed).unwrap();
        std::fs::write(&sealed, std::fs::read(&sealed).unwrap()).unwrap();
        let start = Instant::now();
        f.sync_all().unwrap();
        fsync = fsync.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{:<24} {fsync:>6.2} s (of a {mb} MiB age file just written)",
        "fsync"
    );

    // row 2: to a file, Ferry atomic and durable
    let atomic = d.join("ferry-o.age");
    let enc_o = measure("Ferry encrypt -o (fsync)", bytes, runs, || {
        age::encrypt_file(plain, &atomic, &recipients).unwrap();
    });
    let cli_enc_o = version.as_ref().map(|_| {
        measure(&cli("-r -o FILE"), bytes, runs, || {
            let st = Command::new("age")
                .args(["-e", "-r", &public, "-o"])
                .arg(&cli_sealed)
                .arg(plain)
                .status()
                .unwrap();
            assert!(st.success(), "age -e failed");
        })
    });
    std::fs::remove_file(&atomic).unwrap();

    // row 3: decrypt to a file
    warm(&sealed);
    let opened = d.join("ferry.out");
    let dec_stream = measure("Ferry decrypt > file", bytes, runs, || {
        let mut r = age::decrypt_reader(&identities, File::open(&sealed).unwrap()).unwrap();
        let mut w = BufWriter::with_capacity(256 << 10, File::create(&opened).unwrap());
        age::copy(&mut r, &mut w, None, None).unwrap();
        w.flush().unwrap();
    });
    assert!(same(plain, &opened), "Ferry's round trip changed the data");
    let dec_o = measure("Ferry decrypt -o (fsync)", bytes, runs, || {
        age::decrypt_file(&sealed, &opened, &identities).unwrap();
    });
    assert!(same(plain, &opened), "Ferry's round trip changed the data");
    std::fs::remove_file(&opened).unwrap();
    let cli_dec = version.as_ref().map(|_| {
        warm(&cli_sealed);
        let cli_out = d.join("cli.out");
        let mbps = measure(&cli("-d -o FILE"), bytes, runs, || {
            assert!(
                age_decrypt(&key_file, &cli_sealed, &cli_out),
                "age -d failed"
            );
        });
        assert!(
            same(plain, &cli_out),
            "the age CLI's round trip changed the data"
        );
        // and across, both ways: the CLI opens Ferry's file, Ferry opens the CLI's
        assert!(
            age_decrypt(&key_file, &sealed, &cli_out) && same(plain, &cli_out),
            "age -d of Ferry's file"
        );
        age::decrypt_file(&cli_sealed, &cli_out, &identities).unwrap();
        assert!(same(plain, &cli_out), "Ferry's decryption of age's file");
        std::fs::remove_file(&cli_out).unwrap();
        mbps
    });

    println!(
        "issue 22 rows ({mb} MiB; wall seconds, best of {runs}; speed-up = age time / Ferry time):"
    );
    let row = |name: &str, ferry: f64, age: Option<f64>, goal: &str| match age {
        Some(a) => println!(
            "  {name:<34} Ferry {:>5.2} s   age {:>5.2} s   {:>4.2}x (goal {goal})",
            secs(ferry),
            secs(a),
            ferry / a
        ),
        None => println!("  {name:<34} Ferry {:>5.2} s", secs(ferry)),
    };
    row("encrypt to stdout", enc, cli_enc, ">= 1.5x");
    row(
        "encrypt -o FILE (Ferry: fsync)",
        enc_o,
        cli_enc_o,
        ">= 1.0x",
    );
    row("decrypt -o FILE (Ferry: fsync)", dec_o, cli_dec, ">= 1.5x");
    row("decrypt > file (no fsync)", dec_stream, cli_dec, "-");
    println!("  fsync of the output, apart: {fsync:.2} s");
    println!(
        "Ferry / plain copy: encrypt {:.2}x, decrypt {:.2}x",
        enc / p.base,
        dec_stream / p.base
    );
}

/// Ferry's OpenPGP against `gpg`, both ways, on the same file.
pub fn pgp(d: &Path, mb: u64, runs: u32) {
    let p = plain(d, mb, runs);
    let (plain, bytes, base) = (p.path.as_path(), p.bytes, p.base);
    let installed = Command::new("gpg").arg("--version").output().ok();
    let Some(version) = installed.filter(|o| o.status.success()).map(|o| {
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.lines().next().unwrap_or("gpg").to_string()
    }) else {
        println!("gpg: not installed (Debian package gnupg), so OpenPGP not measured");
        return;
    };
    let (us, client) = (Gpg::new(), Gpg::new());
    us.gen_key("bench-ferry@example.com", None);
    client.gen_key("bench-client@example.com", None);
    us.import(&client.export_public("bench-client@example.com"));
    client.import(&us.export_public("bench-ferry@example.com"));
    let client_key = client.export_public("bench-client@example.com");
    let recipients = PublicKeys::parse(&[client_key], d, "pgp_recipients").unwrap();
    let encryptor = std::sync::Arc::new(Encryptor::new(recipients, None, false).unwrap());
    let our_secret = ferry_core::Secret::new(us.export_secret("bench-ferry@example.com", None));
    let decryptor = Decryptor::new(SecretKeys::parse(&our_secret, None).unwrap(), None);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Ferry encrypts to the client; the client's gpg decrypts
    let sealed = d.join("ferry.gpg");
    let enc = measure("Ferry OpenPGP encrypt", bytes, runs, || {
        let out = BufWriter::with_capacity(256 << 10, File::create(&sealed).unwrap());
        let mut w = pgp::encrypt_writer(&encryptor, "plain.bin", out).unwrap();
        let mut r = File::open(plain).unwrap();
        std::io::copy(&mut r, &mut w).unwrap();
        w.finish().unwrap().flush().unwrap();
    });
    warm(&sealed);
    let gpg_out = d.join("gpg.out");
    let gpg_dec = measure(&format!("{version} decrypt"), bytes, runs, || {
        client.ok(&["--yes", "--output", &s(&gpg_out), "--decrypt", &s(&sealed)]);
    });
    assert!(
        same(plain, &gpg_out),
        "gpg -d of Ferry's file changed the data"
    );
    std::fs::remove_file(&gpg_out).unwrap();

    // the client's gpg encrypts to us; Ferry decrypts (spool, authenticate, read)
    let theirs = d.join("client.gpg");
    let gpg_enc = measure(&format!("{version} encrypt"), bytes, runs, || {
        client.ok(&[
            "--yes",
            "--trust-model",
            "always",
            "-z",
            "0",
            "--recipient",
            "bench-ferry@example.com",
            "--output",
            &s(&theirs),
            "--encrypt",
            &s(plain),
        ]);
    });
    warm(&theirs);
    let opened = d.join("ferry-pgp.out");
    let dec = measure("Ferry OpenPGP decrypt (spooled)", bytes, runs, || {
        let mut p = decryptor.decrypt(File::open(&theirs).unwrap()).unwrap();
        let mut w = BufWriter::with_capacity(256 << 10, File::create(&opened).unwrap());
        std::io::copy(&mut p, &mut w).unwrap();
        w.flush().unwrap();
    });
    assert!(
        same(plain, &opened),
        "Ferry's OpenPGP decryption changed the data"
    );
    std::fs::remove_file(&opened).unwrap();
    println!(
        "Ferry / gpg (OpenPGP): encrypt {:.2}x, decrypt {:.2}x; Ferry OpenPGP / plain copy: encrypt {:.2}x, decrypt {:.2}x",
        enc / gpg_enc,
        dec / gpg_dec,
        enc / base,
        dec / base
    );
}
