//! The leak guard, connector by connector: a canary value is planted in every secret field
//! each connector has (passwords, URLs, passphrases, keys), then `check`, `discover`,
//! `plan` and `sync` run at `-vvv` — some succeed, some fail on purpose (a refused
//! password) — and the canary must show up in no output and no file the runs leave.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and MariaDB/MySQL on 127.0.0.1:3306 (`.ci/run`
//! starts both).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::cli::{ferry_in, out as text, Setup};
use support::config::{into_sqlite, POSTGRES_FIELDS};
use support::{folder, http};

const CANARY: &str = "cAnArY-91b4e2-leak-guard";

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir)
        .env("FERRY_CANARY", CANARY)
        .env("FERRY_PASSPHRASE", "leak guard test passphrase")
        .env_remove("RUST_LOG")
        .run(args, None)
}

/// Every file under `dir` except the config (which holds only the `${env:…}` reference).
fn files(dir: &Path) -> Vec<PathBuf> {
    folder::files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "sync.toml"))
        .collect()
}

/// Runs every command on `config` in a fresh folder and asserts the canary is nowhere;
/// returns the sync's output so the caller can check the run did what was meant.
fn no_leak(case: &str, config: &str) -> String {
    no_leak_of(case, config, &[], |_| {})
}

/// [`no_leak`], and the sync succeeded (`true`) or failed, as the case means it to.
fn no_leak_ending(case: &str, config: &str, succeeds: bool) {
    let out = no_leak(case, config);
    assert_eq!(out.contains("succeeded"), succeeds, "{case}: {out}");
}

/// [`no_leak`] once `prepare` has made the folder ready, and none of the `derived` forms
/// of the canary (what Ferry computes from it and sends: basic auth's base64 …) is
/// anywhere either.
fn no_leak_of(case: &str, config: &str, derived: &[String], prepare: impl FnOnce(&Path)) -> String {
    let forbidden: Vec<&str> = std::iter::once(CANARY)
        .chain(derived.iter().map(String::as_str))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        config.contains("${env:FERRY_CANARY}"),
        "{case}: no canary planted"
    );
    folder::write(dir, "sync.toml", config);
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
        for c in &forbidden {
            assert!(
                !t.contains(c),
                "{case}: the canary ({c}) leaked into `ferry {}`:\n{t}",
                args.join(" ")
            );
        }
        if args[1] == "sync" && args.len() == 4 {
            sync_out = t;
        }
    }
    let found = files(dir);
    if sync_out.contains("succeeded") {
        assert!(
            found.iter().any(|f| f.ends_with("report.json")),
            "{case}: a successful run left no report"
        );
    }
    for f in found {
        let bytes = std::fs::read(&f).unwrap();
        for c in &forbidden {
            assert!(
                !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                "{case}: the canary ({c}) leaked into {}",
                f.display()
            );
        }
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

/// An HTTP source at `base_url` with `settings` (auth, paging …) and one try a request,
/// its stream `items` read into SQLite.
fn http_items(base_url: &str, settings: &str) -> String {
    into_sqlite(&format!(
        r#"[source]
type = "http"
base_url = "{base_url}"
{settings}
retry = {{ attempts = 1 }}

[[source.streams]]
name = "items"
path = "/items"
columns = {{ id = "int64" }}
"#
    ))
}

const GENERATE: &str = r#"[source]
type = "generate"
streams = [{ name = "users", preset = "users", rows = 50 }]
"#;

/// The generated users, into the destination whose fields are `destination`.
fn users_into(destination: &str) -> String {
    format!("{GENERATE}\n[destination]\n{destination}")
}

#[test]
fn postgres_url_and_password() {
    // PostgreSQL here trusts loopback, so the canary password is accepted: the run succeeds
    no_leak_ending(
        "postgres source url",
        &into_sqlite(
            r#"[source]
type = "postgres"
url = "postgres://postgres:${env:FERRY_CANARY}@127.0.0.1:5432/test"
tables = []
queries = [{ name = "q", sql = "SELECT 1::bigint AS x" }]"#,
        ),
        true,
    );

    let table = unique("leak_pg");
    no_leak_ending(
        "postgres sink password",
        &users_into(&format!(
            r#"{POSTGRES_FIELDS}password = "${{env:FERRY_CANARY}}"

[[streams]]
name = "users"
destination = "{table}"
"#
        )),
        true,
    );
}

#[test]
fn mysql_url_and_password() {
    // root has no password here: the canary password is refused, and the error must not
    // carry it
    no_leak_ending(
        "mysql source password (refused)",
        &into_sqlite(
            r#"[source]
type = "mysql"
host = "127.0.0.1"
database = "test"
user = "root"
password = "${env:FERRY_CANARY}""#,
        ),
        false,
    );

    let table = unique("leak_my");
    no_leak_ending(
        "mysql sink url (refused)",
        &users_into(&format!(
            r#"type = "mysql"
url = "mysql://root:${{env:FERRY_CANARY}}@127.0.0.1:3306/test"

[[streams]]
name = "users"
destination = "{table}"
"#
        )),
        false,
    );
}

#[test]
fn file_passphrase_and_transform_keys() {
    no_leak_ending(
        "file sink passphrase + hash/encrypt keys",
        &users_into(
            r#"type = "file"
path = "out"
format = "csv"
encrypt = { passphrase = "${env:FERRY_CANARY}" }

[[streams]]
name = "users"
mode = "overwrite"
transforms = [
  { type = "hash", column = "email", key = "${env:FERRY_CANARY}" },
]
"#,
        ),
        true,
    );
}

#[test]
fn http_token_and_webhook_secret() {
    // nothing listens on port 9: every request fails, and the errors must not carry the token
    no_leak_ending(
        "http bearer token (unreachable API)",
        &http_items(
            "http://127.0.0.1:9/v1",
            r#"auth = { type = "bearer", token = "${env:FERRY_CANARY}" }"#,
        ),
        false,
    );

    no_leak_ending(
        "webhook secret (unreachable receiver)",
        &users_into(
            r#"type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "${env:FERRY_CANARY}"
retry = { attempts = 1 }
"#,
        ),
        false,
    );
}

#[test]
fn s3_keys() {
    // nothing listens on port 9: every request fails, and no key may show in the errors
    no_leak_ending(
        "s3 secret key and session token (unreachable endpoint)",
        &users_into(
            r#"type = "s3"
bucket = "acme"
endpoint = "http://127.0.0.1:9"
force_path_style = true
region = "us-east-1"
access_key_id = "AKIA${env:FERRY_CANARY}"
secret_access_key = "${env:FERRY_CANARY}"
session_token = "${env:FERRY_CANARY}"
"#,
        ),
        false,
    );
}

#[test]
fn a_reference_inside_a_longer_string() {
    // the tap gets a DSN holding the canary and prints the password alone, as a
    // careless program would: only the DSN as a whole was registered before
    let out = no_leak_of(
        "password inside a singer tap's DSN",
        &into_sqlite(
            r#"[source]
type = "singer"
executable = "./tap.py"
config = { dsn = "postgresql://tap:${env:FERRY_CANARY}@127.0.0.1:1/db" }"#,
        ),
        &[],
        |dir| {
            folder::write(
                dir,
                "tap.py",
                "#!/usr/bin/env python3\n\
                 import json, sys\n\
                 cfg = json.load(open(sys.argv[sys.argv.index('--config') + 1]))\n\
                 pw = cfg['dsn'].split('://')[1].split('@')[0].split(':')[1]\n\
                 print('tap: login refused with password ' + pw, file=sys.stderr, flush=True)\n\
                 sys.exit(1)\n",
            );
            folder::make_executable(&dir.join("tap.py"));
        },
    );
    assert!(
        out.contains("login refused with password [redacted]"),
        "the tap's line is shown, the password masked:\n{out}"
    );
}

/// Serves `answer` on loopback for as long as `rt` lives; returns the port.
fn serve(
    rt: &tokio::runtime::Runtime,
    answer: impl Fn(&axum::http::Uri, &axum::http::HeaderMap) -> axum::response::Response
        + Clone
        + Send
        + Sync
        + 'static,
) -> u16 {
    http::serve(
        rt,
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let answer = answer.clone();
            async move { answer(&uri, &headers) }
        },
    )
}

#[test]
fn http_basic_auth_base64_and_a_redirect_holding_the_key() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let rt = tokio::runtime::Runtime::new().unwrap();
    // an API that echoes the credentials it got in its error on page 2 (as some do): the
    // error shows the start of the body, the debug bundle records all of it
    let api = serve(&rt, |uri, headers| {
        if !uri.query().unwrap_or("").contains("page=2") {
            return http::json(r#"{"data":[{"id":1}]}"#);
        }
        let got = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            StatusCode::BAD_REQUEST,
            format!(r#"{{"error":"bad credentials","got":"{got}"}}"#),
        )
            .into_response()
    });
    // `apiuser:` is 8 bytes: the canary's own base64 (registered) is not a part of this one
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("apiuser:{CANARY}"))
    };
    let out = no_leak_of(
        "http basic auth (credentials echoed)",
        &http_items(
            &format!("http://127.0.0.1:{api}/v1"),
            r#"auth = { type = "basic", username = "apiuser", password = "${env:FERRY_CANARY}" }
pagination = { type = "page", param = "page" }
sample_pages = 1"#,
        ),
        std::slice::from_ref(&b64),
        |_| {},
    );
    assert!(out.contains("debug bundle: "), "{out}");
    assert!(out.contains(r#""got":"Basic [redacted]"#), "{out}");

    // a redirect to another server that copies the query key into its Location: the
    // error names where it pointed, the key masked
    let api = serve(&rt, |uri, _| {
        let to = format!("http://127.0.0.2:9/steal?{}", uri.query().unwrap_or(""));
        (StatusCode::FOUND, [("location", to)], "").into_response()
    });
    let out = no_leak(
        "http query key (redirected to another server)",
        &http_items(
            &format!("http://127.0.0.1:{api}/v1"),
            r#"auth = { type = "api_key", name = "token", value = "${env:FERRY_CANARY}", in = "query" }"#,
        ),
    );
    assert!(
        out.contains("to http://127.0.0.2:9/steal?token=[redacted]"),
        "{out}"
    );
}

#[test]
fn a_mistyped_secret_field_is_not_shown() {
    // `pasword` is no field, so it is never read as a secret: the error must not print
    // its line as written, nor the value in serde's message
    let out = no_leak(
        "mistyped password field",
        &users_into(&format!(
            r#"{POSTGRES_FIELDS}pasword = "${{env:FERRY_CANARY}}"
"#
        )),
    );
    assert!(out.contains("did you mean `password`"), "{out}");
    for (case, line) in [
        ("clear text", format!(r#"pasword = "{CANARY}""#)),
        ("a number", "password = 731946285017".to_string()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let config = format!(
            "{GENERATE}\n[destination]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\n{line}\n"
        );
        folder::write(tmp.path(), "sync.toml", &config);
        let o = ferry(tmp.path(), &["sync"]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{case}: {t}");
        assert!(
            t.contains(" = ***"),
            "{case}: the line is shown, masked:\n{t}"
        );
        assert!(!t.contains(CANARY), "{case}: {t}");
        assert!(!t.contains("731946285017"), "{case}: {t}");
    }
}

#[test]
fn credential_headers_written_in_clear_stay_out_of_bundles() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    const HEADER_TOKEN: &str = "hdr-canary-3c81f0aa";
    const COOKIE: &str = "cookie-canary-77d2e915";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = serve(&rt, |uri, _| {
        if uri.query().unwrap_or("").contains("page=2") {
            (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()
        } else {
            http::json(r#"{"data":[{"id":1}]}"#)
        }
    });
    let tmp = folder::with_config(&http_items(
        &format!("http://127.0.0.1:{api}/v1"),
        &format!(
            r#"headers = {{ Authorization = "Bearer {HEADER_TOKEN}", Cookie = "theme=dark; sid={COOKIE}", Accept = "application/json" }}
pagination = {{ type = "page", param = "page" }}
sample_pages = 1"#
        ),
    ));
    let o = ferry(tmp.path(), &["sync"]);
    let t = text(&o);
    assert!(t.contains("debug bundle: "), "{t}");
    let bundles: Vec<_> = std::fs::read_dir(tmp.path().join(".ferry/bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let replay = std::fs::read_to_string(bundles[0].join("replay.toml")).unwrap();
    assert!(replay.contains("Accept"), "{replay}");
    assert!(
        !replay.contains("Authorization") && !replay.contains("Cookie"),
        "{replay}"
    );
    let config = std::fs::read_to_string(bundles[0].join("config.toml")).unwrap();
    assert!(
        config.contains("Authorization = \"[redacted]\""),
        "{config}"
    );
    for f in files(tmp.path()) {
        let body = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for c in [HEADER_TOKEN, COOKIE] {
            assert!(!body.contains(c), "{c} is in {}:\n{body}", f.display());
        }
    }
    for c in [HEADER_TOKEN, COOKIE] {
        assert!(!t.contains(c), "{t}");
    }
}

#[test]
fn pgp_secret_key_and_passphrase() {
    use ferry_testkit::gpg::Gpg;
    // our OpenPGP key is protected by a passphrase; the canary is given as the (wrong) one
    let us = Gpg::new();
    let client = Gpg::new();
    us.gen_key("leak-guard@example.com", Some("the right passphrase"));
    client.gen_key("client@example.com", None);
    client.import(&us.export_public("leak-guard@example.com"));
    let secret = us.export_secret("leak-guard@example.com", Some("the right passphrase"));
    let client_public = client.export_public("client@example.com");
    let out = no_leak_of(
        "file source pgp_passphrase (wrong)",
        &into_sqlite(
            r#"[source]
type = "file"
path = "orders.csv.gpg"
pgp_secret_key = "${file:keys/ours.asc}"
pgp_passphrase = "${env:FERRY_CANARY}""#,
        ),
        &[],
        |dir| {
            std::fs::create_dir(dir.join("keys")).unwrap();
            folder::write(dir, "keys/ours.asc", &secret);
            folder::write(dir, "orders.plain", "id\n1\n");
            client.encrypt(
                &dir.join("orders.plain"),
                &dir.join("orders.csv.gpg"),
                "leak-guard@example.com",
                None,
                false,
            );
        },
    );
    assert!(
        !out.contains("succeeded") && out.contains("wrong passphrase"),
        "{out}"
    );

    // the canary as the signing key of a delivery: not a key, and never echoed
    let out = no_leak_of(
        "file sink encrypt.pgp_sign_key (not a key)",
        &users_into(
            r#"type = "file"
path = "out"
encrypt = { pgp_recipients = ["file:client.asc"], pgp_sign_key = "${env:FERRY_CANARY}" }

[[streams]]
name = "users"
mode = "overwrite"
"#,
        ),
        &[],
        |dir| folder::write(dir, "client.asc", &client_public),
    );
    assert!(!out.contains("succeeded"), "{out}");
}
