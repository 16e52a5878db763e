//! A stream that fails reading a REST API leaves a debug bundle with the HTTP exchanges,
//! holding no secret and no protected value, and `ferry replay` reproduces the failure
//! from the recording alone (the API is gone by then).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use support::cli::{ferry_in, out, Setup, MASTER_KEY};
use support::config::into_sqlite;
use support::folder::write;
use support::{http, read};

const TOKEN: &str = "canary-bearer-5b1d0c7e-token";
const HASH_KEY: &str = "canary-hash-key-0a9f33c2d1";
const EMAILS: [&str; 3] = ["ann@example.com", "bob@example.com", "cat@example.com"];

fn ferry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    ferry_in(dir).master_key(MASTER_KEY).run(args, stdin)
}

/// How the fake API answers page 2.
#[derive(Clone, Copy)]
enum Page2 {
    /// 500 every time (retries run out).
    Fails,
    /// 200 with a body that is not JSON.
    Malformed,
    /// No answer within the client's `timeout_secs`.
    Hangs,
}

/// Serves `/v1/people?page=N` to a bearer `TOKEN`: page 1 two people, page 2 as told.
/// Returns the port; the server lives as long as `rt`.
fn api(rt: &tokio::runtime::Runtime, page2: Page2) -> u16 {
    let handler = move |uri: Uri, headers: HeaderMap| async move {
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
        {
            return (StatusCode::UNAUTHORIZED, "who are you").into_response();
        }
        let page = uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|p| p.strip_prefix("page="))
            .unwrap_or("1")
            .to_string();
        let json = |body: String| -> Response { http::json(body) };
        match (page.as_str(), page2) {
            ("1", _) => json(format!(
                r#"{{"data":[{{"id":1,"name":"Ann","email":"{}"}},{{"id":2,"name":"Bob","email":"{}"}}]}}"#,
                EMAILS[0], EMAILS[1]
            )),
            ("2", Page2::Fails) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"database on fire"}"#,
            )
                .into_response(),
            ("2", Page2::Malformed) => json(format!(
                r#"{{"data":[{{"id":3,"name":"Cat","email":"{}"}},{{"id":4,"name":"#,
                EMAILS[2]
            )),
            ("2", Page2::Hangs) => {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                json(r#"{"data":[]}"#.to_string())
            }
            _ => json(r#"{"data":[]}"#.to_string()),
        }
    };
    http::serve(rt, handler)
}

/// A client folder reading the API at `port` (bearer token and hash key in its vault)
/// into SQLite, `email` protected by a `hash` transform.
fn folder(dir: &Path, port: u16) {
    let source = format!(
        r#"client = "acme"

[source]
type = "http"
base_url = "http://127.0.0.1:{port}/v1"
auth = {{ type = "bearer", token = "${{secret:api_token}}" }}
pagination = {{ type = "page", param = "page" }}
sample_pages = 1
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
timeout_secs = 0.5

[[source.streams]]
name = "people"
path = "/people"
records = "data"
primary_key = ["id"]
"#
    );
    let streams = r#"
[[streams]]
name = "people"
transforms = [{ type = "hash", column = "email", key = "${secret:hash_key}" }]
"#;
    write(dir, "sync.toml", into_sqlite(&source) + streams);
    for (name, value) in [("api_token", TOKEN), ("hash_key", HASH_KEY)] {
        let o = ferry(dir, &["secrets", "set", name], Some(value));
        assert!(o.status.success(), "{}", out(&o));
    }
}

/// Runs a failing `ferry sync`; returns the one bundle folder it wrote.
fn failing_sync(dir: &Path) -> PathBuf {
    let o = ferry(dir, &["sync"], None);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("debug bundle: "), "{text}");
    let bundles = read::bundles(dir);
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    bundles.into_iter().next().unwrap()
}

fn exchanges(bundle: &Path) -> Vec<serde_json::Value> {
    read::jsonl(&bundle.join("exchanges.jsonl"))
}

/// No file of the bundle holds the token, the hash key or a clear email.
fn assert_clean(bundle: &Path) {
    let mut files = 0;
    for e in std::fs::read_dir(bundle).unwrap() {
        let path = e.unwrap().path();
        let body = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        files += 1;
        for secret in [TOKEN, HASH_KEY].iter().chain(EMAILS.iter()) {
            assert!(
                !body.contains(secret),
                "{secret} is in {}:\n{body}",
                path.display()
            );
        }
    }
    assert!(files >= 6, "{files} files in {}", bundle.display());
}

fn replay(dir: &Path, bundle: &Path) -> (Option<i32>, String) {
    let o = ferry(dir, &["replay", bundle.to_str().unwrap()], None);
    (o.status.code(), out(&o))
}

/// A client folder whose sync of the API answering page 2 with `page2` failed: the folder,
/// the API's runtime (dropping it takes the API away) and the bundle, which is clean.
fn recorded(page2: Page2) -> (tempfile::TempDir, tokio::runtime::Runtime, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = api(&rt, page2);
    folder(tmp.path(), port);
    let bundle = failing_sync(tmp.path());
    assert_clean(&bundle);
    (tmp, rt, bundle)
}

/// With the API gone (`rt` dropped), the replay of `bundle` reproduces its failure and
/// says `says`; returns what it printed.
fn reproduces(dir: &Path, bundle: &Path, rt: tokio::runtime::Runtime, says: &str) -> String {
    drop(rt);
    let (code, text) = replay(dir, bundle);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(says), "{text}");
    text
}

#[test]
fn a_500_after_retries_is_recorded_and_replayed_without_the_api() {
    let (tmp, rt, bundle) = recorded(Page2::Fails);
    let dir = tmp.path();

    let xs = exchanges(&bundle);
    let status = |page: &str| -> Vec<u64> {
        xs.iter()
            .filter(|x| {
                x["url"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("page={page}"))
            })
            .map(|x| x["status"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(status("1"), [200], "{xs:#?}");
    assert_eq!(status("2"), [500, 500], "{xs:#?}");
    let last = xs.last().unwrap();
    assert_eq!(last["attempt"], 2, "{last:#}");
    assert!(last["body"].as_str().unwrap().contains("database on fire"));
    // page 1's protected column is masked in the recorded body, the others are kept
    let first = xs[0]["body"].as_str().unwrap();
    assert!(
        first.contains(r#""email":null"#) && first.contains("Ann"),
        "{first}"
    );
    assert!(xs
        .iter()
        .all(|x| !x.to_string().to_lowercase().contains("authorization")));
    let meta = std::fs::read_to_string(bundle.join("bundle.json")).unwrap();
    assert!(meta.contains(r#""replay": "http""#), "{meta}");
    let config = std::fs::read_to_string(bundle.join("config.toml")).unwrap();
    assert!(config.contains("${secret:api_token}"), "{config}");
    let entry = std::fs::read_to_string(bundle.join("catalog.json")).unwrap();
    assert!(entry.contains(r#""name": "email""#), "{entry}");
    let error = std::fs::read_to_string(bundle.join("error.txt")).unwrap();
    assert!(error.contains("GET answered 500"), "{error}");

    // the API is gone: only the recording can answer now
    let text = reproduces(dir, &bundle, rt, "reproduced: page 2: GET answered 500");
    assert!(!text.contains("not reproduced"), "{text}");
    for secret in [TOKEN, HASH_KEY] {
        assert!(!text.contains(secret), "{text}");
    }

    // an API that answers page 2 now: the failure is gone
    let fixed: String = xs
        .iter()
        .map(|x| {
            let mut x = x.clone();
            if x["status"] == 500 {
                x["status"] = 200.into();
                x["body"] = r#"{"data":[]}"#.into();
            }
            format!("{x}\n")
        })
        .collect();
    write(&bundle, "exchanges.jsonl", fixed);
    let (code, text) = replay(dir, &bundle);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not reproduced"), "{text}");
}

#[test]
fn a_malformed_page_is_recorded_masked_and_replayed() {
    let (tmp, rt, bundle) = recorded(Page2::Malformed);
    let dir = tmp.path();

    let xs = exchanges(&bundle);
    let last = xs.last().unwrap();
    assert_eq!(last["status"], 200, "{last:#}");
    let body = last["body"].as_str().unwrap();
    // still malformed, the email masked in the text
    assert!(
        body.contains(r#""email":null"#) && body.contains("Cat"),
        "{body}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(body).is_err());
    reproduces(
        dir,
        &bundle,
        rt,
        "reproduced: page 2 of stream `people` is not valid JSON",
    );
}

#[test]
fn a_timeout_is_recorded_and_replayed_as_one() {
    let (tmp, rt, bundle) = recorded(Page2::Hangs);
    let dir = tmp.path();

    let xs = exchanges(&bundle);
    let timed_out: Vec<_> = xs.iter().filter(|x| x["status"].is_null()).collect();
    assert_eq!(timed_out.len(), 2, "{xs:#?}");
    assert!(
        timed_out[1]["error"]
            .as_str()
            .unwrap()
            .contains("timeout_secs"),
        "{xs:#?}"
    );
    reproduces(
        dir,
        &bundle,
        rt,
        "reproduced: page 2: GET failed after 2 attempts: no complete answer within 0.5 s",
    );
}
