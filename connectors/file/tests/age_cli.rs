//! Interoperability with the real `age` command (Debian package `age`), the tool a client
//! uses to open what Ferry delivers: Ferry encrypts → `age -d` decrypts to the same bytes;
//! `age -e` encrypts → Ferry decrypts; keys made by either side work on the other; and the
//! same for passphrases. `age` reads a passphrase only from a terminal, so those tests run
//! it under `script` (util-linux), which gives it a pseudo-terminal fed from a pipe.
//!
//! These tests fail, never skip, when `age` is missing: CI installs it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferry_core::{ErrorKind, Secret};
use ferry_formats::age::{self, Identities, Recipients};

const MISSING: &str = "the `age` CLI is missing: apt-get install age";

/// Runs a program of the `age` package, failing the test with the install hint if it is
/// not there.
fn run(program: &str, args: &[&str]) -> Output {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{MISSING} (no `{program}`)"),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

/// Runs `age` (or `age-keygen`) and asserts it succeeded; returns its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

use ferry_testkit::noise as data;

const SIZES: [usize; 6] = [0, 1, 64 << 10, (64 << 10) + 1, 3 * (64 << 10), 1_000_003];

#[test]
fn the_age_cli_is_installed() {
    let version = ok("age", &["--version"]);
    assert!(!version.trim().is_empty());
}

#[test]
fn ferry_encrypts_and_the_age_cli_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (secret, public) = age::generate_identity();
    let identity = d.join("identity.txt");
    std::fs::write(&identity, format!("{}\n", secret.expose())).unwrap();
    // `age-keygen -y` derives the same public key from Ferry's secret key
    assert_eq!(ok("age-keygen", &["-y", s(&identity)]).trim(), public);

    // a second recipient, from a recipients file
    let other_key = d.join("other.txt");
    ok("age-keygen", &["-o", s(&other_key)]);
    let other_pub = ok("age-keygen", &["-y", s(&other_key)]);
    std::fs::write(d.join("client.pub"), format!("# the client\n{other_pub}")).unwrap();
    let recipients = Recipients::parse(&[public, "file:client.pub".into()], d).unwrap();

    for (i, len) in SIZES.into_iter().enumerate() {
        let plain = d.join(format!("plain{i}"));
        let sealed = d.join(format!("plain{i}.age"));
        let want = data(len, i as u8);
        std::fs::write(&plain, &want).unwrap();
        assert_eq!(
            age::encrypt_file(&plain, &sealed, &recipients).unwrap(),
            len as u64
        );
        for key in [&identity, &other_key] {
            let out = d.join(format!("out{i}"));
            ok("age", &["-d", "-i", s(key), "-o", s(&out), s(&sealed)]);
            // `age -o` creates its output on the first byte: none for an empty plaintext
            let got = if len == 0 && !out.exists() {
                Vec::new()
            } else {
                std::fs::read(&out).unwrap()
            };
            assert!(got == want, "`age -d` of a {len}-byte file differs");
            let _ = std::fs::remove_file(&out);
        }
    }

    // the age CLI also refuses a file Ferry sealed once it is altered
    let sealed = d.join("plain5.age");
    let mut bytes = std::fs::read(&sealed).unwrap();
    let n = bytes.len();
    bytes[n - 100_000] ^= 1;
    std::fs::write(&sealed, &bytes).unwrap();
    let out = run("age", &["-d", "-i", s(&identity), s(&sealed)]);
    assert!(!out.status.success(), "`age -d` accepted an altered file");
}

#[test]
fn the_age_cli_encrypts_and_ferry_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a key file as age-keygen writes it: comments, then the secret key
    let key_file = d.join("key.txt");
    ok("age-keygen", &["-o", s(&key_file)]);
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(key_text.starts_with("# created: "), "{key_text}");
    let secret = Secret::new(key_text.trim_end());
    let public = ok("age-keygen", &["-y", s(&key_file)]).trim().to_string();
    assert_eq!(age::public_key(&secret).unwrap(), public);
    let ids = Identities::parse(&secret).unwrap();

    for (i, len) in SIZES.into_iter().enumerate() {
        let plain = d.join(format!("plain{i}"));
        let sealed = d.join(format!("plain{i}.age"));
        let want = data(len, 100 + i as u8);
        std::fs::write(&plain, &want).unwrap();
        ok("age", &["-e", "-r", &public, "-o", s(&sealed), s(&plain)]);
        let out = d.join(format!("out{i}"));
        assert_eq!(age::decrypt_file(&sealed, &out, &ids).unwrap(), len as u64);
        assert!(std::fs::read(&out).unwrap() == want, "{len} bytes differ");
    }

    // `age -R` with a recipients file, and a streaming read through decrypt_reader
    std::fs::write(d.join("r.txt"), format!("# one\n{public}\n")).unwrap();
    let sealed = d.join("r.age");
    ok(
        "age",
        &[
            "-R",
            s(&d.join("r.txt")),
            "-o",
            s(&sealed),
            s(&d.join("plain5")),
        ],
    );
    let mut got = Vec::new();
    age::decrypt_reader(&ids, std::fs::File::open(&sealed).unwrap())
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(got == data(SIZES[5], 105));

    // a file for someone else: refused with AuthFailed, and no output file
    let (_, stranger) = age::generate_identity();
    ok(
        "age",
        &[
            "-e",
            "-r",
            &stranger,
            "-o",
            s(&sealed),
            s(&d.join("plain1")),
        ],
    );
    let out = d.join("never");
    let err = age::decrypt_file(&sealed, &out, &ids).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed, "{err}");
    assert!(!out.exists());
}

/// Sizes around the boundaries the payload code has: chunks (64 KiB), and the batches
/// Ferry seals and opens on several threads (a reader's batches grow from one chunk per
/// core, doubling, up to 16 per core; the writer's are 16 per core): each size is
/// `k` chunks plus a random offset of -2..=2 bytes, for a seed printed on failure.
fn sizes_around_boundaries(seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sizes = vec![0, 1, 65_535, 65_536, 65_537, 3 * 65_536];
    for k in [1usize, 2, 3, 4, 6, 7, 14, 16, 30, 32, 33, 62, 64] {
        let offset = (next() % 5) as i64 - 2;
        sizes.push((k as i64 * 65_536 + offset) as usize);
    }
    sizes
}

/// Bytes after an age file's header and payload nonce.
fn payload_len(file: &[u8]) -> usize {
    let mac = file
        .windows(5)
        .position(|w| w == b"\n--- ")
        .expect("a MAC line")
        + 1;
    let end = mac + file[mac..].iter().position(|&b| b == b'\n').unwrap() + 1;
    file.len() - end - 16
}

#[test]
fn sizes_around_chunk_and_batch_boundaries_interoperate_both_ways() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key_file = d.join("key.txt");
    ok("age-keygen", &["-o", s(&key_file)]);
    let secret = Secret::new(std::fs::read_to_string(&key_file).unwrap().trim_end());
    let public = age::public_key(&secret).unwrap();
    let ids = Identities::parse(&secret).unwrap();
    let recipients = Recipients::parse(std::slice::from_ref(&public), d).unwrap();
    for (i, len) in sizes_around_boundaries(seed).into_iter().enumerate() {
        let what = format!("{len} bytes (seed {seed})");
        let plain = d.join("plain");
        let want = data(len, i as u8);
        std::fs::write(&plain, &want).unwrap();
        // Ferry → age -d (to stdout: `-o` makes no file for an empty plaintext)
        let sealed = d.join("ferry.age");
        age::encrypt_file(&plain, &sealed, &recipients).unwrap();
        let out = run("age", &["-d", "-i", s(&key_file), s(&sealed)]);
        assert!(out.status.success(), "age -d of Ferry's {what}: {out:?}");
        assert!(out.stdout == want, "age -d of Ferry's {what} differs");
        // age -e → Ferry, both streamed and into a file
        let theirs = d.join("cli.age");
        ok("age", &["-e", "-r", &public, "-o", s(&theirs), s(&plain)]);
        // the same framing on both sides: 16 bytes of tag per 64 KiB chunk, at least one
        let chunks = len.div_ceil(65_536).max(1);
        for f in [&sealed, &theirs] {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(payload_len(&bytes), len + 16 * chunks, "{what}: {f:?}");
        }
        let mut got = Vec::new();
        age::decrypt_reader(&ids, std::fs::File::open(&theirs).unwrap())
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == want, "Ferry's decryption of age's {what} differs");
        let out = d.join("out");
        assert_eq!(
            age::decrypt_file(&theirs, &out, &ids).unwrap(),
            len as u64,
            "{what}"
        );
        assert!(std::fs::read(&out).unwrap() == want, "{what}");
    }
}

/// Runs `age` with `args` under `script`, so it reads `passphrase_lines` from a terminal.
fn age_with_tty(args: &[&str], passphrase_lines: &str) -> Output {
    run("age", &["--version"]); // the install hint, if age is missing
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is missing: apt-get install bsdutils");
    }
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut child = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("age {}", quoted.join(" ")),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts");
    // typed ahead: the terminal keeps the lines until age reads them; closing the pipe
    // then lets `script` end as soon as age does
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(passphrase_lines.as_bytes()).unwrap();
    drop(stdin);
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("`age {}` under script did not finish", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `age args…` with `input` typed at its terminal; `what` failing fails the test.
fn age_with_tty_ok(args: &[&str], input: &str, what: &str) {
    let run = age_with_tty(args, input);
    assert!(
        run.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn passphrases_interoperate_with_the_age_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = Secret::new("interop passphrase 42");
    let want = data(200_000, 7);
    let plain = d.join("plain");
    std::fs::write(&plain, &want).unwrap();

    // Ferry → age -d (a low work factor keeps the test quick; age accepts up to 2^22)
    let mut recipients = Recipients::passphrase(&pw).unwrap();
    recipients.set_work_factor(12).unwrap();
    let sealed = d.join("ferry.age");
    age::encrypt_file(&plain, &sealed, &recipients).unwrap();
    let out = d.join("from-ferry");
    let input = format!("{}\n", pw.expose());
    age_with_tty_ok(
        &["-d", "-o", s(&out), s(&sealed)],
        &input,
        "`age -d` of Ferry's file",
    );
    assert!(std::fs::read(&out).unwrap() == want);

    // age -p → Ferry (age's own work factor, 2^18)
    let sealed = d.join("cli.age");
    let input = format!("{0}\n{0}\n", pw.expose());
    age_with_tty_ok(&["-p", "-o", s(&sealed), s(&plain)], &input, "`age -p`");
    let header = std::fs::read(&sealed).unwrap();
    assert!(String::from_utf8_lossy(&header[..60]).contains("-> scrypt "));
    let out = d.join("from-cli");
    let ids = Identities::passphrase(&pw).unwrap();
    assert_eq!(
        age::decrypt_file(&sealed, &out, &ids).unwrap(),
        want.len() as u64
    );
    assert!(std::fs::read(&out).unwrap() == want);

    // a wrong passphrase: AuthFailed, no output
    let wrong = Identities::passphrase(&Secret::new("not the passphrase")).unwrap();
    let none: PathBuf = d.join("none");
    let err = age::decrypt_file(&d.join("ferry.age"), &none, &wrong).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed, "{err}");
    assert!(!none.exists());
}
