//! Secrets never leak: a known canary value goes through the vault, a transform key,
//! a sync, a failing sync, `check`, `-vv` logs and the JSON report, and shows up in
//! none of them, nor in the state file or the vault's bytes.

mod support;

use std::path::Path;
use std::process::Output;

use support::cli::{self, ferry_in, out as all_text, Setup};
use support::folder;

const CANARY: &str = "canary-7f3e9a-Sup3rS3cret-value";
const PASSPHRASE: &str = "correct horse battery staple";

fn ferry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    ferry_in(dir).passphrase(PASSPHRASE).run(args, stdin)
}

fn assert_no_canary(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains(CANARY),
        "the secret leaked into {what}:\n{text}"
    );
}

fn client_folder() -> tempfile::TempDir {
    let tmp = folder::with_config(
        r#"client = "acme"
[source]
type = "file"
path = "customers.csv"
[destination]
type = "sqlite"
path = "out.db"
[[streams]]
name = "customers"
mode = "overwrite"
transforms = [
  { type = "hash", column = "email", key = "${secret:hash_key}" },
  { type = "mask", column = "name", keep_last = 3 },
  { type = "drop", columns = ["balance"] },
]
"#,
    );
    folder::copy_from_repo(
        "examples/quickstart/customers.csv",
        tmp.path(),
        "customers.csv",
    );
    tmp
}

/// [`client_folder`] with the canary as its vault's `hash_key`.
fn keyed_folder() -> tempfile::TempDir {
    let tmp = client_folder();
    let o = ferry(tmp.path(), &["secrets", "set", "hash_key"], Some(CANARY));
    assert!(o.status.success(), "{}", all_text(&o));
    tmp
}

#[test]
fn canary_secret_never_reaches_any_output() {
    let tmp = client_folder();
    let dir = tmp.path();
    let mut outputs = Vec::new();

    let o = ferry(
        dir,
        &["secrets", "set", "hash_key"],
        Some(&format!("{CANARY}\n")),
    );
    assert!(o.status.success(), "{}", all_text(&o));
    outputs.push(("secrets set", all_text(&o)));
    let o = ferry(dir, &["secrets", "list"], None);
    assert!(String::from_utf8_lossy(&o.stdout).contains("hash_key"));
    outputs.push(("secrets list", all_text(&o)));

    let o = ferry(dir, &["-vv", "check"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    outputs.push(("check -vv", all_text(&o)));

    let o = ferry(dir, &["-vvv", "sync", "--report", "report.json"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    outputs.push(("sync -vvv", all_text(&o)));

    // a failing sync: the same secret used where it cannot work (not a 32-byte key)
    let bad = std::fs::read_to_string(dir.join("sync.toml"))
        .unwrap()
        .replace("type = \"hash\"", "type = \"encrypt\"");
    folder::write(dir, "bad.toml", &bad);
    let o = ferry(
        dir,
        &["-vv", "sync", "-c", "bad.toml", "--report", "bad.json"],
        None,
    );
    assert!(!o.status.success());
    assert!(all_text(&o).contains("32 bytes"), "{}", all_text(&o));
    outputs.push(("failing sync -vv", all_text(&o)));

    for (what, text) in &outputs {
        assert_no_canary(what, text.as_bytes());
    }
    for f in ["report.json", ".ferry/secrets.vault", "out.db"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_no_canary(f, &bytes);
    }
    // every pipeline's state file
    for f in std::fs::read_dir(dir.join(".ferry/state"))
        .into_iter()
        .flatten()
        .flatten()
    {
        assert_no_canary("state file", &std::fs::read(f.path()).unwrap());
    }
}

#[test]
fn protected_fields_never_reach_the_destination() {
    let tmp = keyed_folder();
    let dir = tmp.path();
    let o = ferry(dir, &["sync"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    let db = std::fs::read(dir.join("out.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    let csv = std::fs::read_to_string(dir.join("customers.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let email = line.split(',').nth(2).unwrap();
        assert!(
            !db.contains(email),
            "clear email {email} reached the destination"
        );
    }
    // the masked column keeps only its last 3 characters
    assert!(
        !db.contains("Lovelace"),
        "a masked name reached the destination"
    );
    // the same email hashes to the same token on every run (joins keep working)
    let first = std::fs::read(dir.join("out.db")).unwrap();
    let o = ferry(dir, &["sync"], None);
    assert!(o.status.success());
    let second = std::fs::read(dir.join("out.db")).unwrap();
    let token = |db: &[u8]| {
        let t = String::from_utf8_lossy(db).into_owned();
        t.split(|c: char| !c.is_ascii_hexdigit())
            .filter(|w| w.len() == 64)
            .map(str::to_string)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        !token(&first).is_empty(),
        "no hash tokens found in the destination"
    );
    assert_eq!(token(&first), token(&second));
}

#[test]
fn vault_is_bound_to_its_client_and_needs_the_key() {
    let tmp = keyed_folder();
    let dir = tmp.path();
    // wrong passphrase
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", "wrong")
        .run(&["sync"], None);
    assert!(!o.status.success());
    assert!(
        all_text(&o).contains("wrong passphrase"),
        "{}",
        all_text(&o)
    );
    // the same vault under another client's config is refused
    folder::edit(dir, "sync.toml", "client = \"acme\"", "client = \"globex\"");
    let o = ferry(dir, &["sync"], None);
    assert!(!o.status.success());
    assert!(
        all_text(&o).contains("belongs to client `acme`"),
        "{}",
        all_text(&o)
    );
    assert_no_canary("client-mismatch output", all_text(&o).as_bytes());
}

#[test]
fn keys_generate_and_rotate() {
    let tmp = client_folder();
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "signing"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("public key"));
    let o = ferry(dir, &["keys", "generate", "signing"], None);
    assert!(!o.status.success(), "replacing a key needs --force");
    let o = ferry(dir, &["keys", "generate", "field"], None);
    assert!(o.status.success());
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", PASSPHRASE)
        .env("FERRY_NEW_PASSPHRASE", "a new passphrase")
        .run(&["secrets", "rotate"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    let o = ferry(dir, &["secrets", "list"], None);
    assert!(
        !o.status.success(),
        "the old passphrase still opens the rotated vault"
    );
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", "a new passphrase")
        .run(&["secrets", "list"], None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("field_key") && out.contains("signing_key"),
        "{out}"
    );
}

#[test]
fn encrypt_and_decrypt_files_with_an_identity_from_the_vault() {
    let tmp = client_folder();
    let dir = tmp.path();
    let o = ferry(dir, &["keys", "generate", "age"], None);
    assert!(o.status.success(), "{}", all_text(&o));
    let public = cli::last_line(&o);
    assert!(public.starts_with("age1"), "{public}");
    let o = ferry(
        dir,
        &[
            "encrypt",
            "customers.csv",
            "-r",
            &public,
            "-o",
            "customers.csv.age",
        ],
        None,
    );
    assert!(o.status.success(), "{}", all_text(&o));
    let sealed = std::fs::read(dir.join("customers.csv.age")).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&sealed).contains("Lovelace"));
    let o = ferry(
        dir,
        &["decrypt", "customers.csv.age", "-o", "back.csv"],
        None,
    );
    assert!(o.status.success(), "{}", all_text(&o));
    assert_eq!(
        std::fs::read(dir.join("back.csv")).unwrap(),
        std::fs::read(dir.join("customers.csv")).unwrap()
    );
    // a tampered file: clear error, no plaintext left behind
    let mut bad = sealed.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    folder::write(dir, "bad.age", &bad);
    let o = ferry(dir, &["decrypt", "bad.age", "-o", "bad.csv"], None);
    assert!(!o.status.success());
    assert!(
        !dir.join("bad.csv").exists(),
        "a failed decryption left plaintext behind"
    );
}
