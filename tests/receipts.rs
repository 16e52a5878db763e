//! Every sync writes a receipt; `ferry verify` checks its signature and its outputs.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(dir)
        .env(
            "FERRY_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env_remove("FERRY_PASSPHRASE")
        .args(args)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn folder(destination: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/customers.csv");
    std::fs::copy(src, tmp.path().join("customers.csv")).unwrap();
    let cfg = format!(
        "client = \"acme\"\n[source]\ntype = \"file\"\npath = \"customers.csv\"\n[destination]\n{destination}\n[[streams]]\nname = \"customers\"\nmode = \"overwrite\"\n"
    );
    std::fs::write(tmp.path().join("sync.toml"), cfg).unwrap();
    tmp
}

fn only_receipt(dir: &Path) -> PathBuf {
    let mut r: Vec<_> = std::fs::read_dir(dir.join(".ferry/receipts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(r.len(), 1, "expected one receipt: {r:?}");
    r.pop().unwrap()
}

#[test]
fn signed_receipt_for_files_detects_changes() {
    let tmp = folder("type = \"file\"\npath = \"out\"\nformat = \"csv\"");
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    let public = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("signed by"), "{}", out(&o));
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();

    let o = ferry(dir, &["verify", r, "--pubkey", &public]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("signature  ok") && out(&o).contains("ok         file"),
        "{}",
        out(&o)
    );

    // another key: refused
    let o = ferry(
        dir,
        &[
            "verify",
            r,
            "--pubkey",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));

    // a changed delivered file
    let csv = dir.join("out/customers.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("999,Mallory,m@example.com,XX,2024-01-01,1.00,2025-01-01T00:00:00Z\n");
    std::fs::write(&csv, text).unwrap();
    let o = ferry(dir, &["verify", r, "--pubkey", &public]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("CHANGED"), "{}", out(&o));
    std::fs::remove_file(&csv).unwrap();
    let o = ferry(dir, &["verify", r]);
    assert!(out(&o).contains("MISSING"), "{}", out(&o));

    // a changed receipt: the signature no longer matches
    let tampered = std::fs::read_to_string(&receipt)
        .unwrap()
        .replace("\"rows_committed\": 50", "\"rows_committed\": 49");
    std::fs::write(&receipt, tampered).unwrap();
    let o = ferry(dir, &["verify", r]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("signature  FAILED"), "{}", out(&o));
}

#[test]
fn table_receipt_is_checked_against_the_table() {
    let tmp = folder("type = \"sqlite\"\npath = \"out.db\"");
    let dir = tmp.path();
    assert!(ferry(dir, &["keys", "generate", "signing"])
        .status
        .success());
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("ok         table"), "{}", out(&o));
    // without the config the table cannot be read: reported, not a failure
    let o = ferry(dir, &["verify", r]);
    assert!(
        o.status.success() && out(&o).contains("not checked"),
        "{}",
        out(&o)
    );
}

#[test]
fn unsigned_receipt_without_a_vault() {
    let tmp = folder("type = \"sqlite\"\npath = \"out.db\"");
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("UNSIGNED"), "{}", out(&o));
    let receipt = only_receipt(dir);
    let o = ferry(dir, &["verify", receipt.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an unsigned receipt must not verify"
    );
}

#[path = "support/s3.rs"]
mod s3;

#[test]
fn object_receipt_is_checked_against_the_bucket() {
    let server = s3::Server::start(&["delivered"]);
    let tmp = folder(&format!(
        "type = \"s3\"\n{}key_template = \"{{stream}}/{{run_id}}-{{n}}.{{ext}}\"",
        server.toml("delivered")
    ));
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("ok         object s3://delivered/customers/"),
        "{}",
        out(&o)
    );

    // the delivered object changed in the bucket, then went
    let keys = server.keys("delivered", "customers/");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mut bytes = server.get("delivered", &keys[0]);
    bytes.extend_from_slice(b"999,Mallory,m@example.com,XX,2024-01-01,1.00,2025-01-01T00:00:00Z\n");
    server.put("delivered", &keys[0], bytes);
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("CHANGED    object"), "{}", out(&o));
    server.delete("delivered", &keys[0]);
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("MISSING    object"), "{}", out(&o));
    // without the config the bucket cannot be reached: reported, not a failure
    let o = ferry(dir, &["verify", r]);
    assert!(
        o.status.success() && out(&o).contains("not checked object"),
        "{}",
        out(&o)
    );
}
