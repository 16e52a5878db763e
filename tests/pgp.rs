//! OpenPGP client drops through the `ferry` binary, with GnuPG (`gpg`, Debian package
//! `gnupg`) on the client's side: a client encrypts and signs CSV files to our public key
//! with `gpg`, `ferry sync` loads them into SQLite; Ferry writes a delivery encrypted to
//! the client and signed by us, and the client's `gpg --decrypt` opens it and checks the
//! signature. Then every fault a client drop can have: the run fails, the error says what
//! and names the file, no row of the file is committed, and no secret is printed.
//!
//! Our secret key and passphrase reach Ferry as `${env:…}` references, as they would from
//! the vault: `Secret`s from the moment they are read.

mod support;

use std::path::Path;
use std::process::Output;

use ferry_testkit::gpg::Gpg;
use support::cli::{ferry_in, out as text, Setup};
use support::config::into_sqlite;
use support::{folder, pgp, sqlite};

const US: &str = "ferry@example.com";
const CLIENT: &str = "client@example.com";
const PASS: &str = "correct horse battery";

/// Our keyring (a key protected by [`PASS`]) and the client's, each knowing the other's
/// public key.
struct Parties {
    us: Gpg,
    client: Gpg,
    our_secret: String,
}

fn parties() -> Parties {
    let us = Gpg::new();
    let client = Gpg::new();
    us.gen_key(US, Some(PASS));
    client.gen_key(CLIENT, None);
    client.import(&us.export_public(US));
    us.import(&client.export_public(CLIENT));
    Parties {
        our_secret: us.export_secret(US, Some(PASS)),
        us,
        client,
    }
}

/// A client folder: the client's public key in `keys/client.asc`, our public key in
/// `keys/ferry.asc`.
fn client_folder(p: &Parties) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["keys", "in", "back"] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
    }
    folder::write(
        tmp.path(),
        "keys/client.asc",
        p.client.export_public(CLIENT),
    );
    folder::write(tmp.path(), "keys/ferry.asc", p.us.export_public(US));
    tmp
}

fn ferry(dir: &Path, p: &Parties, passphrase: &str, args: &[&str]) -> Output {
    ferry_in(dir)
        .env("OUR_PGP_KEY", &p.our_secret)
        .env("OUR_PGP_PASS", passphrase)
        .run(args, None)
}

const ORDERS: &str = "id,customer,total,placed\n\
1,Zoë Ångström,12.50,2024-01-02\n\
2,\"Smith, J.\",7.25,2024-01-03\n\
3,Łukasz,100.00,2024-02-29\n";

/// A sync of `in/<pattern>` into `out.db`, decrypted with our key, requiring the client's
/// signature.
fn drop_config(pattern: &str) -> String {
    into_sqlite(&format!(
        r#"[source]
type = "file"
path = "in/{pattern}"
stream = "orders"
format = "csv"
pgp_secret_key = "${{env:OUR_PGP_KEY}}"
pgp_passphrase = "${{env:OUR_PGP_PASS}}"
pgp_verify_key = "file:keys/client.asc"
columns = {{ total = "decimal(10,2)" }}
"#
    ))
}

impl Parties {
    /// The client encrypts `plain` to us as `in/<name>`, signed by its key when `signed`.
    fn client_sends(&self, dir: &Path, name: &str, plain: &[u8], signed: bool) {
        encrypt(&self.client, dir, name, plain, US, signed.then_some(CLIENT));
    }
}

/// The client encrypts `plain` to `recipient`, signed by `signer` (in `gpg`'s keyring).
fn encrypt(g: &Gpg, dir: &Path, name: &str, plain: &[u8], recipient: &str, signer: Option<&str>) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let src = dir.join(format!("{name}.plain"));
    std::fs::write(&src, plain).unwrap();
    g.encrypt(
        &src,
        &dir.join("in").join(name),
        recipient,
        signer.map(|s| (s, None)),
        false,
    );
    std::fs::remove_file(src).unwrap();
}

fn gzip(text: &str) -> Vec<u8> {
    let out = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("gzip (Debian: gzip) compresses the fixture");
    out.stdout
}

#[test]
fn a_signed_gpg_drop_loads_and_a_signed_delivery_opens_with_gpg() {
    let p = parties();
    let tmp = client_folder(&p);
    let dir = tmp.path();
    // two files of the stream: one plain CSV inside, one gzipped inside (`.csv.gz.pgp`)
    p.client_sends(dir, "orders_1.csv.gpg", ORDERS.as_bytes(), true);
    let more = "id,customer,total,placed\n4,Ünal,0.99,2024-03-01\n";
    p.client_sends(dir, "orders_2.csv.gz.pgp", &gzip(more), true);
    folder::write(dir, "sync.toml", drop_config("orders_*"));

    let o = ferry(dir, &p, PASS, &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ferry(dir, &p, PASS, &["sync"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains(PASS) && !t.contains("PRIVATE KEY"), "{t}");
    let db = rusqlite::Connection::open(dir.join("out.db")).unwrap();
    let mut rows: Vec<(i64, String, String, String)> = db
        .prepare("SELECT id, customer, CAST(total AS TEXT), placed FROM orders ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.iter_mut()
        .for_each(|r| r.2 = r.2.trim_end_matches('0').trim_end_matches('.').to_string());
    assert_eq!(
        rows,
        vec![
            (1, "Zoë Ångström".into(), "12.5".into(), "2024-01-02".into()),
            (2, "Smith, J.".into(), "7.25".into(), "2024-01-03".into()),
            (3, "Łukasz".into(), "100".into(), "2024-02-29".into()),
            (4, "Ünal".into(), "0.99".into(), "2024-03-01".into()),
        ]
    );

    // the delivery back: encrypted to the client, signed by us, binary `.gpg`
    folder::write(dir, "back/orders.csv", ORDERS);
    folder::write(
        dir,
        "sync.toml",
        r#"[source]
type = "file"
path = "back/orders.csv"
columns = { total = "decimal(10,2)" }

[destination]
type = "file"
path = "outbox"
format = "csv"
encrypt = { pgp_recipients = ["file:keys/client.asc"], pgp_sign_key = "${env:OUR_PGP_KEY}", pgp_passphrase = "${env:OUR_PGP_PASS}" }

[[streams]]
name = "orders"
mode = "overwrite"
"#,
    );
    let o = ferry(dir, &p, PASS, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    let sealed = dir.join("outbox/orders.csv.gpg");
    let plain = pgp::open_delivery(&p.client, &sealed, b"customer", US);
    assert_eq!(plain, ORDERS);
}

/// Runs the drop `sync.toml` on `in/<file>` and asserts it failed with `expect` in its
/// output, naming the file, committing no row, printing no secret.
fn fails(dir: &Path, p: &Parties, passphrase: &str, file: &str, expect: &str) {
    folder::write(dir, "sync.toml", drop_config(file));
    let _ = std::fs::remove_file(dir.join("out.db"));
    let o = ferry(dir, p, passphrase, &["sync"]);
    let t = text(&o);
    assert!(!o.status.success(), "{file}: the sync succeeded:\n{t}");
    assert!(t.contains(expect), "{file}: expected `{expect}` in:\n{t}");
    // a wrong passphrase fails when the config is read, before any file
    if !expect.contains("passphrase") {
        assert!(
            t.contains(file),
            "{file}: the error does not name the file:\n{t}"
        );
    }
    assert!(
        !t.contains(PASS) && !t.contains("PRIVATE KEY"),
        "{file}: a secret shows:\n{t}"
    );
    assert_eq!(
        sqlite::rows(&dir.join("out.db"), "orders").unwrap_or(0),
        0,
        "{file}: rows were committed:\n{t}"
    );
}

#[test]
fn faults_fail_the_file_with_no_row_committed() {
    let p = parties();
    let tmp = client_folder(&p);
    let dir = tmp.path();
    // many rows, so a streaming reader would have committed some before the end
    let mut big = String::from("id,customer,total,placed\n");
    for i in 0..20_000 {
        big.push_str(&format!(
            "{i},customer {i},{}.{:02},2024-01-02\n",
            i % 500,
            i % 100
        ));
    }
    p.client_sends(dir, "good.csv.gpg", big.as_bytes(), true);
    let good = std::fs::read(dir.join("in/good.csv.gpg")).unwrap();

    // a byte flipped in the middle
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    folder::write(dir, "in/tampered.csv.gpg", &bad);
    fails(
        dir,
        &p,
        PASS,
        "tampered.csv.gpg",
        "damaged, cut short or altered",
    );

    // cut short
    folder::write(dir, "in/truncated.csv.gpg", &good[..good.len() * 2 / 3]);
    fails(
        dir,
        &p,
        PASS,
        "truncated.csv.gpg",
        "damaged, cut short or altered",
    );

    // wrong passphrase for our key
    fails(
        dir,
        &p,
        "not the passphrase",
        "good.csv.gpg",
        "wrong passphrase",
    );

    // encrypted to another key than ours
    let other = Gpg::new();
    other.gen_key("other@example.com", None);
    p.client.import(&other.export_public("other@example.com"));
    encrypt(
        &p.client,
        dir,
        "other.csv.gpg",
        big.as_bytes(),
        "other@example.com",
        Some(CLIENT),
    );
    fails(dir, &p, PASS, "other.csv.gpg", "cannot decrypt the file");

    // unsigned, while the client's signature is required
    p.client_sends(dir, "unsigned.csv.gpg", big.as_bytes(), false);
    fails(dir, &p, PASS, "unsigned.csv.gpg", "not signed");

    // signed by someone else
    let mallory = Gpg::new();
    mallory.gen_key("mallory@example.com", None);
    mallory.import(&p.us.export_public(US));
    encrypt(
        &mallory,
        dir,
        "forged.csv.gpg",
        big.as_bytes(),
        US,
        Some("mallory@example.com"),
    );
    fails(
        dir,
        &p,
        PASS,
        "forged.csv.gpg",
        "not a valid signature by the client's key",
    );

    // and the good file still loads every row
    folder::write(dir, "sync.toml", drop_config("good.csv.gpg"));
    let o = ferry(dir, &p, PASS, &["sync"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sqlite::rows(&dir.join("out.db"), "orders"), Some(20_000));
}

#[test]
fn an_encrypted_file_without_a_key_says_what_to_set() {
    let p = parties();
    let tmp = client_folder(&p);
    let dir = tmp.path();
    p.client_sends(dir, "orders.csv.gpg", ORDERS.as_bytes(), false);
    folder::write(
        dir,
        "sync.toml",
        into_sqlite("[source]\ntype = \"file\"\npath = \"in/orders.csv.gpg\"\n"),
    );
    let o = ferry(dir, &p, PASS, &["sync"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("pgp_secret_key"), "{t}");
    assert!(t.contains("orders.csv.gpg"), "{t}");
}
