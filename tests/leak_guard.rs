//! The leak guard, connector by connector: a canary value is planted in every secret field
//! each connector has (passwords, URLs, passphrases, keys), then `check`, `discover`,
//! `plan` and `sync` run at `-vvv` — some succeed, some fail on purpose (a refused
//! password) — and the canary must show up in no output and no file the runs leave.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and MariaDB/MySQL on 127.0.0.1:3306 (`.ci/run`
//! starts both).

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

const CANARY: &str = "cAnArY-91b4e2-leak-guard";

fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(dir)
        .env("FERRY_CANARY", CANARY)
        .env("FERRY_PASSPHRASE", "leak guard test passphrase")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` except the config (which holds only the `${env:…}` reference).
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "sync.toml") {
            out.push(p);
        }
    }
}

/// Runs every command on `config` in a fresh folder and asserts the canary is nowhere;
/// returns the sync's output so the caller can check the run did what was meant.
fn no_leak(case: &str, config: &str, prepare: impl FnOnce(&Path)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        config.contains("${env:FERRY_CANARY}"),
        "{case}: no canary planted"
    );
    std::fs::write(dir.join("sync.toml"), config).unwrap();
    prepare(dir);
    let mut sync_out = String::new();
    for args in [
        &["-vvv", "check"][..],
        &["-vvv", "discover"],
        &["-vvv", "plan"],
        &["-vvv", "sync", "--report", "report.json"],
        &["-vvv", "sync", "--dry-run"],
    ] {
        let o = ferry(dir, args);
        let t = text(&o);
        assert!(
            !t.contains(CANARY),
            "{case}: the canary leaked into `ferry {}`:\n{t}",
            args.join(" ")
        );
        if args[1] == "sync" && args.len() == 4 {
            sync_out = t;
        }
    }
    let mut found = Vec::new();
    files(dir, &mut found);
    if sync_out.contains("succeeded") {
        assert!(
            found.iter().any(|f| f.ends_with("report.json")),
            "{case}: a successful run left no report"
        );
    }
    for f in found {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{case}: the canary leaked into {}",
            f.display()
        );
    }
    sync_out
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000
}

const GENERATE: &str = r#"[source]
type = "generate"
streams = [{ name = "users", preset = "users", rows = 50 }]
"#;

#[test]
fn postgres_url_and_password() {
    // PostgreSQL here trusts loopback, so the canary password is accepted: the run succeeds
    let out = no_leak(
        "postgres source url",
        r#"[source]
type = "postgres"
url = "postgres://postgres:${env:FERRY_CANARY}@127.0.0.1:5432/test"
tables = []
queries = [{ name = "q", sql = "SELECT 1::bigint AS x" }]

[destination]
type = "sqlite"
path = "out.db"
"#,
        |_| {},
    );
    assert!(out.contains("succeeded"), "{out}");

    let table = unique("leak_pg");
    let out = no_leak(
        "postgres sink password",
        &format!(
            r#"{GENERATE}
[destination]
type = "postgres"
host = "127.0.0.1"
database = "test"
user = "postgres"
password = "${{env:FERRY_CANARY}}"

[[streams]]
name = "users"
destination = "{table}"
"#
        ),
        |_| {},
    );
    assert!(out.contains("succeeded"), "{out}");
}

#[test]
fn mysql_url_and_password() {
    // root has no password here: the canary password is refused, and the error must not
    // carry it
    let out = no_leak(
        "mysql source password (refused)",
        r#"[source]
type = "mysql"
host = "127.0.0.1"
database = "test"
user = "root"
password = "${env:FERRY_CANARY}"

[destination]
type = "sqlite"
path = "out.db"
"#,
        |_| {},
    );
    assert!(!out.contains("succeeded"), "{out}");

    let table = unique("leak_my");
    let out = no_leak(
        "mysql sink url (refused)",
        &format!(
            r#"{GENERATE}
[destination]
type = "mysql"
url = "mysql://root:${{env:FERRY_CANARY}}@127.0.0.1:3306/test"

[[streams]]
name = "users"
destination = "{table}"
"#
        ),
        |_| {},
    );
    assert!(!out.contains("succeeded"), "{out}");
}

#[test]
fn file_passphrase_and_transform_keys() {
    let out = no_leak(
        "file sink passphrase + hash/encrypt keys",
        &format!(
            r#"{GENERATE}
[destination]
type = "file"
path = "out"
format = "csv"
encrypt = {{ passphrase = "${{env:FERRY_CANARY}}" }}

[[streams]]
name = "users"
mode = "overwrite"
transforms = [
  {{ type = "hash", column = "email", key = "${{env:FERRY_CANARY}}" }},
]
"#
        ),
        |_| {},
    );
    assert!(out.contains("succeeded"), "{out}");
}

#[test]
fn http_token_and_webhook_secret() {
    // nothing listens on port 9: every request fails, and the errors must not carry the token
    let out = no_leak(
        "http bearer token (unreachable API)",
        r#"[source]
type = "http"
base_url = "http://127.0.0.1:9/v1"
auth = { type = "bearer", token = "${env:FERRY_CANARY}" }
retry = { attempts = 1 }

[[source.streams]]
name = "items"
path = "/items"
columns = { id = "int64" }

[destination]
type = "sqlite"
path = "out.db"
"#,
        |_| {},
    );
    assert!(!out.contains("succeeded"), "{out}");

    let out = no_leak(
        "webhook secret (unreachable receiver)",
        &format!(
            r#"{GENERATE}
[destination]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "${{env:FERRY_CANARY}}"
retry = {{ attempts = 1 }}
"#
        ),
        |_| {},
    );
    assert!(!out.contains("succeeded"), "{out}");
}

#[test]
fn s3_keys() {
    // nothing listens on port 9: every request fails, and no key may show in the errors
    let out = no_leak(
        "s3 secret key and session token (unreachable endpoint)",
        &format!(
            r#"{GENERATE}
[destination]
type = "s3"
bucket = "acme"
endpoint = "http://127.0.0.1:9"
force_path_style = true
region = "us-east-1"
access_key_id = "AKIA${{env:FERRY_CANARY}}"
secret_access_key = "${{env:FERRY_CANARY}}"
session_token = "${{env:FERRY_CANARY}}"
"#
        ),
        |_| {},
    );
    assert!(!out.contains("succeeded"), "{out}");
}
