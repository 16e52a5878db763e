//! A redirect to another server gets nothing: two loopback servers, the API redirecting
//! to a second one that records whatever reaches it. The HTTP source with a header key
//! and with a query key, and the webhook sink (a 307 that would repeat the POST: rows,
//! key and signature), must fail naming where the redirect pointed, and the second server
//! must receive no request at all. Redirects within the API's origin are still followed,
//! without a `Referer` (which would carry a query key).

mod support;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use support::cli::{ferry_in, out as text, Setup};
use support::config::{generate, into_sqlite};
use support::{folder, http, sqlite};

const KEY: &str = "redirect-canary-key-4f1a9c";
const SECRET: &str = "redirect-canary-whsec-7d20e1";

/// One request a server received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves on loopback with `answer`, recording every request; returns the port and the log.
fn serve<F>(rt: &tokio::runtime::Runtime, answer: F) -> (u16, Log)
where
    F: Fn(&Seen) -> Response + Clone + Send + Sync + 'static,
{
    let log: Log = Arc::default();
    let kept = log.clone();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (log, answer) = (kept.clone(), answer.clone());
        async move {
            let seen = Seen {
                method,
                uri: uri.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            log.lock().unwrap().push(seen.clone());
            answer(&seen)
        }
    };
    (http::serve(rt, handler), log)
}

/// The other server: answers every request with rows, as a hostile host would.
fn thief(rt: &tokio::runtime::Runtime) -> (u16, Log) {
    serve(rt, |_| http::json(r#"{"data":[{"id":666}]}"#))
}

fn redirect(status: StatusCode, to: String) -> Response {
    (status, [("location", to)], "").into_response()
}

/// The other server, and an API that answers every request with a `status` redirect to
/// its `/steal/<path>`: the other server's port and log, the API's port and log.
fn redirecting_away(
    rt: &tokio::runtime::Runtime,
    status: StatusCode,
    path: &'static str,
) -> (u16, Log, u16, Log) {
    let (tport, tlog) = thief(rt);
    let (api, alog) = serve(rt, move |_| {
        redirect(status, format!("http://127.0.0.1:{tport}/steal/{path}"))
    });
    (tport, tlog, api, alog)
}

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir)
        .env("API_KEY", KEY)
        .env("HOOK_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .run(args, None)
}

fn http_source(api: u16, auth: &str) -> String {
    into_sqlite(&format!(
        r#"[source]
type = "http"
base_url = "http://127.0.0.1:{api}/v1"
auth = {auth}
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}

[[source.streams]]
name = "items"
path = "/items"
records = "data"
columns = {{ id = "int64" }}
"#
    ))
}

/// Runs `ferry sync` on `config`; it must fail naming the other server, which got nothing.
fn refused(config: &str, thief_port: u16, thief_log: &Log, status: u16) -> String {
    let tmp = folder::with_config(config);
    let o = ferry(tmp.path(), &["sync"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(!t.contains("succeeded"), "{t}");
    assert!(
        t.contains(&format!(
            "redirected ({status}) to http://127.0.0.1:{thief_port}/steal"
        )),
        "the error names where the redirect pointed:\n{t}"
    );
    assert!(t.contains("another origin than http://127.0.0.1:"), "{t}");
    assert!(!t.contains(KEY) && !t.contains(SECRET), "{t}");
    let got = thief_log.lock().unwrap().clone();
    assert!(got.is_empty(), "the other server received {got:#?}");
    t
}

#[test]
fn a_header_key_does_not_follow_a_redirect_to_another_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tport, tlog, api, alog) = redirecting_away(&rt, StatusCode::FOUND, "items");
    let auth = r#"{ type = "api_key", name = "X-Api-Key", value = "${env:API_KEY}" }"#;
    refused(&http_source(api, auth), tport, &tlog, 302);
    // the API itself got the key, once: a refused redirect is not retried
    let asked = alog.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(asked[0]
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == KEY));
}

#[test]
fn a_query_key_reaches_no_other_server_not_even_in_referer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tport, tlog) = thief(&rt);
    // one hop within the API first (followed), then one to the other server (refused)
    let (api, alog) = serve(&rt, move |seen| {
        if seen.uri.starts_with("/v1/items") {
            redirect(StatusCode::FOUND, "/v1/moved".into())
        } else {
            redirect(
                StatusCode::FOUND,
                format!("http://127.0.0.1:{tport}/steal/items"),
            )
        }
    });
    let auth = r#"{ type = "api_key", name = "api_key", value = "${env:API_KEY}", in = "query" }"#;
    refused(&http_source(api, auth), tport, &tlog, 302);
    let asked = alog.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert_eq!(asked[1].uri, "/v1/moved");
    assert!(
        asked[1].headers.iter().all(|(k, _)| k != "referer"),
        "a Referer carries the query key: {:#?}",
        asked[1]
    );
}

#[test]
fn a_redirect_within_the_api_is_followed_without_referer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (api, alog) = serve(&rt, move |seen| {
        if seen.uri.starts_with("/v1/items") {
            redirect(StatusCode::MOVED_PERMANENTLY, "/v2/items".into())
        } else {
            http::json(r#"{"data":[{"id":1},{"id":2}]}"#)
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let auth = r#"{ type = "api_key", name = "api_key", value = "${env:API_KEY}", in = "query" }"#;
    folder::write(tmp.path(), "sync.toml", http_source(api, auth));
    let o = ferry(tmp.path(), &["sync"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("succeeded"), "{t}");
    // the schema is sampled first, then read: each time /v1/items, then /v2/items
    let asked = alog.lock().unwrap().clone();
    let moved: Vec<&Seen> = asked.iter().filter(|s| s.uri == "/v2/items").collect();
    assert_eq!(moved.len() * 2, asked.len(), "{asked:#?}");
    for s in moved {
        assert!(s.headers.iter().all(|(k, _)| k != "referer"), "{s:#?}");
    }
    assert_eq!(sqlite::rows(&tmp.path().join("out.db"), "items"), Some(2));
}

#[test]
fn a_webhook_307_to_another_server_gets_no_rows_key_or_signature() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tport, tlog, api, alog) = redirecting_away(&rt, StatusCode::TEMPORARY_REDIRECT, "hook");
    let config = format!(
        r#"{}
[destination]
type = "webhook"
url = "http://127.0.0.1:{api}/hook"
secret = "${{env:HOOK_SECRET}}"
auth = {{ type = "api_key", name = "X-Api-Key", value = "${{env:API_KEY}}" }}
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
"#,
        generate("users", "users", 5)
    );
    refused(&config, tport, &tlog, 307);
    let posted: Vec<Seen> = alog
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == Method::POST)
        .cloned()
        .collect();
    assert_eq!(posted.len(), 1, "{posted:#?}");
    assert!(posted[0].body.contains("\"id\""), "{:#?}", posted[0]);

    // `ferry check` says the same, instead of calling the receiver reachable
    let tmp = folder::with_config(&config);
    let o = ferry(tmp.path(), &["check"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("to http://127.0.0.1:{tport}/steal")),
        "{t}"
    );
    assert!(tlog.lock().unwrap().is_empty());
}
