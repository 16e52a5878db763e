//! Every sync writes a receipt; `ferry verify` checks its signature and its outputs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_engine::receipt::SignedReceipt;
use support::cli::{self, exits_saying, exits_saying_all, ferry_in, out, Setup, MASTER_KEY};
use support::folder::{copy_from_repo, with_config, write};
use support::read::only_receipt;

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir).master_key(MASTER_KEY).run(args, None)
}

/// The quickstart's customers, in a folder that syncs them to `destination`.
fn folder(destination: &str) -> tempfile::TempDir {
    let tmp = with_config(&format!(
        "client = \"acme\"\n[source]\ntype = \"file\"\npath = \"customers.csv\"\n[destination]\n{destination}\n[[streams]]\nname = \"customers\"\nmode = \"overwrite\"\n"
    ));
    copy_from_repo(
        "examples/quickstart/customers.csv",
        tmp.path(),
        "customers.csv",
    );
    tmp
}

/// The base64 public key of the folder's signing key, as `ferry keys show signing` prints it.
fn public_key(dir: &Path) -> String {
    let o = ferry(dir, &["keys", "show", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    cli::last_line(&o)
}

/// A folder with a signing key whose sync of `customers.csv` to `destination` succeeded;
/// returns it, the run's receipt and the key's public half (base64).
fn signed_delivery(destination: &str) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = folder(destination);
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let receipt = only_receipt(dir);
    let public = public_key(dir);
    (tmp, receipt, public)
}

#[test]
fn signed_receipt_for_files_detects_changes() {
    let tmp = folder("type = \"file\"\npath = \"out\"\nformat = \"csv\"");
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    let public = cli::last_line(&o);
    let o = ferry(dir, &["sync"]);
    exits_saying(&o, 0, "signed by");
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();

    let o = ferry(dir, &["verify", r, "--pubkey", &public, "-c", "sync.toml"]);
    exits_saying_all(&o, 0, &["signature  ok", "ok         file customers.csv"]);

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
    let o = ferry(dir, &["verify", r, "--pubkey", &public, "-c", "sync.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("CHANGED"), "{}", out(&o));
    std::fs::remove_file(&csv).unwrap();
    let o = ferry(dir, &["verify", r, "--dir", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("MISSING    file customers.csv (50 rows): no file at out/customers.csv"),
        "{}",
        out(&o)
    );

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
    let (tmp, receipt, public) = signed_delivery("type = \"sqlite\"\npath = \"out.db\"");
    let dir = tmp.path();
    let r = receipt.to_str().unwrap();
    let o = ferry(dir, &["verify", r, "-c", "sync.toml", "--pubkey", &public]);
    exits_saying(&o, 0, "ok         table out.db#customers");
    // without the config the table cannot be read: reported with the reason, not a failure
    let o = ferry(dir, &["verify", r, "--pubkey", &public]);
    assert!(
        o.status.success()
            && out(&o).contains("not checked table out.db#customers (50 rows): pass -c sync.toml"),
        "{}",
        out(&o)
    );
}

#[test]
fn unsigned_receipt_without_a_vault() {
    let tmp = folder("type = \"sqlite\"\npath = \"out.db\"");
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    exits_saying(&o, 0, "UNSIGNED");
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
    let (tmp, receipt, public) = signed_delivery(&format!(
        "type = \"s3\"\n{}key_template = \"{{stream}}/{{run_id}}-{{n}}.{{ext}}\"",
        server.toml("delivered")
    ));
    let dir = tmp.path();
    let r = receipt.to_str().unwrap();
    let o = ferry(dir, &["verify", r, "-c", "sync.toml", "--pubkey", &public]);
    exits_saying(&o, 0, "ok         object s3://delivered/customers/");

    // the delivered object changed in the bucket, then went
    let keys = server.keys("delivered", "customers/");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mut bytes = server.get("delivered", &keys[0]);
    bytes.extend_from_slice(b"999,Mallory,m@example.com,XX,2024-01-01,1.00,2025-01-01T00:00:00Z\n");
    server.put("delivered", &keys[0], bytes);
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    exits_saying(&o, 1, "CHANGED    object");
    server.delete("delivered", &keys[0]);
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    exits_saying(&o, 1, "MISSING    object");
    // without the config the bucket cannot be reached: reported with the reason
    let o = ferry(dir, &["verify", r, "--pubkey", &public]);
    assert!(
        o.status.success()
            && out(&o).contains("not checked object")
            && out(&o).contains("pass -c sync.toml"),
        "{}",
        out(&o)
    );
}

/// A folder whose sync of `customers.csv` into the file destination `out/` was signed;
/// returns it and the key's public half (base64).
fn file_delivery() -> (tempfile::TempDir, String) {
    let (tmp, _, public) = signed_delivery("type = \"file\"\npath = \"out\"\nformat = \"csv\"");
    (tmp, public)
}

/// Signs `receipt` with a key of the test's own (an attacker's, or an earlier build's
/// signer); returns the signed receipt and the public key (base64).
fn sign_with_own_key(receipt: ferry_engine::receipt::Receipt) -> (SignedReceipt, String) {
    use base64::Engine;
    use ring::signature::KeyPair;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = b64.encode(pair.public_key().as_ref());
    let signed = receipt
        .sign(&ferry_core::Secret::new(b64.encode(pkcs8.as_ref())))
        .unwrap();
    (signed, public)
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn a_delivery_copied_into_one_folder_verifies_with_dir() {
    let (tmp, public) = file_delivery();
    let dir = tmp.path();
    let receipt = only_receipt(dir);
    // the receipt names the file relative to the destination, not the engineer's folders
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(text.contains("\"location\": \"customers.csv\""), "{text}");
    let here = dir.canonicalize().unwrap();
    assert!(
        !text.contains(here.to_str().unwrap()) && !text.contains(dir.to_str().unwrap()),
        "the receipt shows the local folder layout: {text}"
    );

    // the client keeps the receipt and the file in one folder of their own
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&receipt, copy.path().join("receipt.json")).unwrap();
    std::fs::copy(
        dir.join("out/customers.csv"),
        copy.path().join("customers.csv"),
    )
    .unwrap();
    let r = copy.path().join("receipt.json");
    let r = r.to_str().unwrap();
    let d = copy.path().to_str().unwrap();
    let o = ferry(copy.path(), &["verify", r, "--dir", d, "--pubkey", &public]);
    exits_saying(&o, 0, "ok         file customers.csv (50 rows)");
    assert!(
        out(&o).contains("outcome    ok: signed by the expected key, 1 outputs ok, 0 not checked"),
        "{}",
        out(&o)
    );

    // without --dir nothing says where the files are: not checked, and why
    let o = ferry(copy.path(), &["verify", r, "--pubkey", &public]);
    assert!(
        out(&o).contains("not checked file customers.csv (50 rows): the receipt names it relative to the delivery folder: pass --dir DIR"),
        "{}",
        out(&o)
    );

    // a changed copy is caught
    write(copy.path(), "customers.csv", "id\n1\n");
    let o = ferry(copy.path(), &["verify", r, "--dir", d, "--pubkey", &public]);
    exits_saying(&o, 1, "CHANGED    file customers.csv");
}

#[test]
fn receipts_of_earlier_builds_with_absolute_paths_still_verify() {
    let (tmp, _) = file_delivery();
    let dir = tmp.path();
    let receipt = only_receipt(dir);
    // an earlier Ferry named the file by its absolute path
    let mut old = SignedReceipt::read(&receipt).unwrap().receipt;
    let abs = dir.join("out/customers.csv").canonicalize().unwrap();
    old.streams[0].outputs[0].location = abs.display().to_string();
    let (signed, public) = sign_with_own_key(old);
    signed.write(&receipt).unwrap();
    let r = receipt.to_str().unwrap();
    let o = ferry(dir, &["verify", r, "--pubkey", &public]);
    exits_saying(
        &o,
        0,
        &format!("ok         file {} (50 rows)", abs.display()),
    );
    // and, copied into one folder, is found there by its file name
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&abs, copy.path().join("customers.csv")).unwrap();
    std::fs::remove_file(&abs).unwrap();
    let d = copy.path().to_str().unwrap();
    let o = ferry(dir, &["verify", r, "--pubkey", &public, "--dir", d]);
    assert_eq!(code(&o), Some(0), "{}", out(&o));
}

/// Runs a client's standard tool; fails loudly when it is not installed.
fn tool(name: &str, package: &str) -> std::process::Command {
    let probe = std::process::Command::new(name)
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        probe.is_ok(),
        "`{name}` is not installed: this test checks a delivery with the client's own tools (Debian package `{package}`)"
    );
    std::process::Command::new(name)
}

#[test]
fn a_file_delivery_checks_with_sha256sum_and_ssh_keygen() {
    let (tmp, _) = file_delivery();
    let dir = tmp.path();
    let out_dir = dir.join("out");
    let sums = std::fs::read_to_string(out_dir.join("SHA256SUMS")).unwrap();
    let receipt = std::fs::read_to_string(only_receipt(dir)).unwrap();
    let hex = sums.split_whitespace().next().unwrap();
    assert_eq!(sums, format!("{hex}  customers.csv\n"));
    assert!(
        receipt.contains(&format!("\"digest\": \"sha256:{hex}\"")),
        "{receipt}"
    );

    let o = tool("sha256sum", "coreutils")
        .current_dir(&out_dir)
        .args(["-c", "SHA256SUMS"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "customers.csv: OK\n");

    // the allowed_signers line the engineer gives the client
    let o = ferry(dir, &["keys", "show", "signing"]);
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    let line = shown
        .lines()
        .find(|l| l.starts_with("ferry namespaces=\"ferry-delivery\" ssh-ed25519 "))
        .unwrap_or_else(|| panic!("no allowed_signers line: {shown}"));
    let client = tempfile::tempdir().unwrap();
    let allowed = client.path().join("allowed_signers");
    std::fs::write(&allowed, format!("{line}\n")).unwrap();
    let ssh_verify = |sums: &Path| {
        let o = tool("ssh-keygen", "openssh-client")
            .args(["-Y", "verify", "-f"])
            .arg(&allowed)
            .args(["-I", "ferry", "-n", "ferry-delivery", "-s"])
            .arg(out_dir.join("SHA256SUMS.sig"))
            .stdin(std::fs::File::open(sums).unwrap())
            .output()
            .unwrap();
        (o.status.success(), out(&o))
    };
    let (ok, text) = ssh_verify(&out_dir.join("SHA256SUMS"));
    assert!(ok, "{text}");
    assert!(
        text.contains("Good \"ferry-delivery\" signature for ferry with ED25519 key"),
        "{text}"
    );

    // a SHA256SUMS changed to match a changed file no longer verifies
    let forged = client.path().join("SHA256SUMS");
    std::fs::write(&forged, sums.replacen(&hex[..4], "0000", 1)).unwrap();
    let (ok, text) = ssh_verify(&forged);
    assert!(!ok, "a changed SHA256SUMS verified: {text}");
    // a changed file fails sha256sum
    write(&out_dir, "customers.csv", "id\n1\n");
    let o = tool("sha256sum", "coreutils")
        .current_dir(&out_dir)
        .args(["-c", "SHA256SUMS"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("customers.csv: FAILED"), "{}", out(&o));
}

#[test]
fn edited_receipts_are_refused_even_where_the_signature_would_still_match() {
    use ferry_engine::receipt::ReceiptStream;
    let dir = tempfile::tempdir().unwrap();
    let orders = ReceiptStream {
        state_after: Some(serde_json::json!({"cursor": "2024-06-30"})),
        ..ferry_testkit::orders_stream(ferry_core::WriteMode::Append, 0)
    };
    let receipt = ferry_testkit::receipt("postgres", "file", vec![orders]);
    let (signed, public) = sign_with_own_key(receipt);
    let path = dir.path().join("r1.json");
    signed.write(&path).unwrap();
    let r = path.to_str().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let o = ferry(dir.path(), &["verify", r, "--pubkey", &public]);
    assert_eq!(code(&o), Some(0), "{}", out(&o));

    // a field the format does not have, which the signature would not cover
    let added = text.replacen(
        "\"run_id\"",
        "\"approved_by\": \"the client\",\n    \"run_id\"",
        1,
    );
    assert_ne!(added, text);
    std::fs::write(&path, &added).unwrap();
    let o = ferry(dir.path(), &["verify", r, "--pubkey", &public]);
    assert_eq!(code(&o), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("unknown field `approved_by`") && out(&o).contains("r1.json"),
        "{}",
        out(&o)
    );

    // a repeated key: a reader keeping the first would see another cursor than the signed one
    let repeated = text.replacen(
        "\"cursor\": \"2024-06-30\"",
        "\"cursor\": \"2099-12-31\", \"cursor\": \"2024-06-30\"",
        1,
    );
    assert_ne!(repeated, text);
    std::fs::write(&path, &repeated).unwrap();
    let o = ferry(dir.path(), &["verify", r, "--pubkey", &public]);
    exits_saying(&o, 1, "duplicate key `cursor`");
}

#[test]
fn a_receipt_re_signed_with_another_key_is_not_trusted_without_the_pinned_key() {
    let (tmp, public) = file_delivery();
    let dir = tmp.path();
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();
    // the genuine receipt: valid, but without --pubkey nothing says whose it should be
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    exits_saying(&o, 3, "signature  NOT PINNED");
    // the key pinned, as base64 or as the allowed_signers line
    let o = ferry(dir, &["verify", r, "-c", "sync.toml", "--pubkey", &public]);
    assert_eq!(code(&o), Some(0), "{}", out(&o));
    let shown =
        String::from_utf8_lossy(&ferry(dir, &["keys", "show", "signing"]).stdout).to_string();
    let line = shown
        .lines()
        .find(|l| l.starts_with("ferry namespaces="))
        .unwrap();
    write(dir, "allowed_signers", line);
    let o = ferry(
        dir,
        &[
            "verify",
            r,
            "-c",
            "sync.toml",
            "--pubkey",
            "allowed_signers",
        ],
    );
    assert_eq!(code(&o), Some(0), "{}", out(&o));

    // an attacker rewrites the counts and signs with a key of their own
    let mut forged = SignedReceipt::read(&receipt).unwrap().receipt;
    forged.streams[0].rows_rejected = 7;
    let (signed, _) = sign_with_own_key(forged);
    signed.write(&receipt).unwrap();
    let o = ferry(dir, &["verify", r, "-c", "sync.toml"]);
    assert_eq!(
        code(&o),
        Some(3),
        "a self-signed receipt passed: {}",
        out(&o)
    );
    let o = ferry(dir, &["verify", r, "-c", "sync.toml", "--pubkey", &public]);
    exits_saying(&o, 1, "signed by a different key");
}

#[test]
fn a_secret_that_occurs_in_a_stream_name_leaves_the_receipt_intact() {
    // the hash key happens to equal the stream's name (and occurs in its file's name)
    let name = "acme-customers-export";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_from_repo(
        "examples/quickstart/customers.csv",
        dir,
        &format!("{name}.csv"),
    );
    write(
        dir,
        "sync.toml",
        format!(
            "client = \"acme\"\n[source]\ntype = \"file\"\npath = \"{name}.csv\"\n[destination]\ntype = \"file\"\npath = \"out\"\nformat = \"csv\"\n[[streams]]\nname = \"{name}\"\nmode = \"overwrite\"\ntransforms = [{{ type = \"hash\", column = \"email\", key = \"${{env:RECEIPT_TEST_HASH_KEY}}\" }}]\n"
        ),
    );
    assert!(ferry(dir, &["keys", "generate", "signing"])
        .status
        .success());
    let o = ferry_in(dir)
        .env("FERRY_MASTER_KEY", MASTER_KEY)
        .env("RECEIPT_TEST_HASH_KEY", name)
        .run(&["sync"], None);
    assert!(o.status.success(), "{}", out(&o));
    let receipt = only_receipt(dir);
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(
        text.contains(&format!("\"stream\": \"{name}\"")) && !text.contains("[redacted]"),
        "the receipt was changed after signing: {text}"
    );
    let public = public_key(dir);
    let o = ferry_in(dir).env("RECEIPT_TEST_HASH_KEY", name).run(
        &[
            "verify",
            receipt.to_str().unwrap(),
            "-c",
            "sync.toml",
            "--pubkey",
            &public,
        ],
        None,
    );
    exits_saying(&o, 0, "signature  ok");
}
