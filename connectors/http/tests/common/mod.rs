//! A small fake REST API (axum) on 127.0.0.1:0, started by each test that needs it.
//!
//! Listings (7 customers, `updated_at` 2024-01-0N, inclusive `updated_since`):
//! `/page/customers?page&per_page` → `{"data": […]}`; `/offset/customers?offset&limit`
//! → `{"items": […]}`; `/cursor/customers?cursor` → `{"data", "meta": {"next"}}`;
//! `/link/customers?page` → an array with a `Link` header; `/next/customers?page` →
//! `{"results", "next"}`; `/customers/{id}/orders?page`. Behaviours: `/flaky` (503s
//! first), `/limited` and `/limited-date` (429 with `Retry-After` seconds / HTTP date
//! first), `/hang`, `/malformed` (page 2 is not JSON), `/kit/{stream}` (the conformance
//! fixture's store), `POST /hook/{stream}` (a webhook receiver that verifies
//! signatures), `POST /oauth/token`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

/// What the server demands of requests to its listings.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    Nothing,
    HeaderKey(String),
    QueryKey(String),
    Bearer(String),
    Basic(String, String),
    OAuth,
}

#[derive(Default)]
pub struct Oauth {
    pub client_id: String,
    pub client_secret: String,
    pub expires_in: u64,
    pub issued: Vec<String>,
    pub valid: HashSet<String>,
}

pub struct Hooks {
    pub secret: String,
    /// Stream → rows received (deduplicated by idempotency key).
    pub rows: BTreeMap<String, Vec<Value>>,
    /// Idempotency keys of every POST, in order (retries included).
    pub keys: Vec<String>,
    pub seen: HashSet<String>,
    /// Fail the first POST of every batch with a 500.
    pub fail_first: bool,
    pub failed: HashSet<String>,
    pub bad_signatures: u32,
}

pub struct Srv {
    pub need: Mutex<Need>,
    pub customers: Mutex<Vec<Value>>,
    pub hits: Mutex<HashMap<String, u32>>,
    pub flaky_left: AtomicU32,
    pub limited_left: AtomicU32,
    pub oauth: Mutex<Oauth>,
    pub hooks: Mutex<Hooks>,
    pub kit: Mutex<HashMap<String, Vec<Value>>>,
    /// Query strings of every request, in order.
    pub log: Mutex<Vec<String>>,
}

pub struct Api {
    pub url: String,
    pub state: Arc<Srv>,
}

impl Api {
    pub fn hits(&self, path: &str) -> u32 {
        *self.state.hits.lock().unwrap().get(path).unwrap_or(&0)
    }
    pub fn need(&self, n: Need) {
        *self.state.need.lock().unwrap() = n;
    }
}

pub fn customer(id: i64, day: u32) -> Value {
    json!({
        "id": id,
        "name": format!("Customer {id}"),
        "updated_at": format!("2024-01-{day:02}T00:00:00Z"),
        "address": {"city": format!("City {id}"), "geo": {"lat": id as f64 + 0.5}},
        "tags": ["a", id.to_string()],
    })
}

pub async fn start() -> Api {
    let state = Arc::new(Srv {
        need: Mutex::new(Need::Nothing),
        customers: Mutex::new((1..=7).map(|i| customer(i, i as u32)).collect()),
        hits: Mutex::new(HashMap::new()),
        flaky_left: AtomicU32::new(0),
        limited_left: AtomicU32::new(0),
        oauth: Mutex::new(Oauth::default()),
        hooks: Mutex::new(Hooks {
            secret: String::new(),
            rows: BTreeMap::new(),
            keys: Vec::new(),
            seen: HashSet::new(),
            fail_first: false,
            failed: HashSet::new(),
            bad_signatures: 0,
        }),
        kit: Mutex::new(HashMap::new()),
        log: Mutex::new(Vec::new()),
    });
    let addr = listen(Router::new().fallback(serve).with_state(state.clone())).await;
    Api {
        url: format!("http://{addr}"),
        state,
    }
}

/// Serves `app` on a free loopback port, in the background; its address.
pub async fn listen(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    addr
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn authorized(s: &Srv, headers: &HeaderMap, q: &HashMap<String, String>) -> bool {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match &*s.need.lock().unwrap() {
        Need::Nothing => true,
        Need::HeaderKey(k) => headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(k),
        Need::QueryKey(k) => q.get("api_key") == Some(k),
        Need::Bearer(t) => auth == format!("Bearer {t}"),
        Need::Basic(u, p) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            auth == format!("Basic {b64}")
        }
        Need::OAuth => auth
            .strip_prefix("Bearer ")
            .is_some_and(|t| s.oauth.lock().unwrap().valid.contains(t)),
    }
}

fn since_filter(list: Vec<Value>, q: &HashMap<String, String>) -> Vec<Value> {
    match q.get("updated_since") {
        // inclusive, as most APIs are
        Some(since) => list
            .into_iter()
            .filter(|c| c["updated_at"].as_str().unwrap_or("") >= since.as_str())
            .collect(),
        None => list,
    }
}

fn num(q: &HashMap<String, String>, k: &str, default: usize) -> usize {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn window(list: &[Value], start: usize, n: usize) -> Vec<Value> {
    list.iter().skip(start).take(n).cloned().collect()
}

async fn serve(
    State(s): State<Arc<Srv>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    s.log
        .lock()
        .unwrap()
        .push(format!("{path}?{}", uri.query().unwrap_or("")));

    if path == "/oauth/token" {
        return token(&s, &headers, &body);
    }
    if let Some(stream) = path.strip_prefix("/hook/") {
        if method == Method::POST {
            return hook(&s, stream, &headers, &body);
        }
    }
    if method == Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if !authorized(&s, &headers, &q) {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    let customers = since_filter(s.customers.lock().unwrap().clone(), &q);
    let per = num(&q, "per_page", 3);
    match path.as_str() {
        "/page/customers" => {
            let page = num(&q, "page", 1).max(1);
            // written by hand so the keys come in the API's order, not sorted
            let rows: Vec<String> = window(&customers, (page - 1) * per, per)
                .iter()
                .map(|c| {
                    let keys = ["id", "name", "updated_at", "address", "tags"];
                    let fields: Vec<String> =
                        keys.iter().map(|k| format!("\"{k}\":{}", c[*k])).collect();
                    format!("{{{}}}", fields.join(","))
                })
                .collect();
            let body = format!("{{\"data\":[{}]}}", rows.join(","));
            ([("content-type", "application/json")], body).into_response()
        }
        "/offset/customers" => {
            let items = window(&customers, num(&q, "offset", 0), num(&q, "limit", 3));
            reply(StatusCode::OK, json!({"items": items}))
        }
        "/cursor/customers" => {
            let start = q
                .get("cursor")
                .map(|c| c.trim_start_matches("tok").parse().unwrap_or(0))
                .unwrap_or(0);
            let next = if start + 3 < customers.len() {
                json!(format!("tok{}", start + 3))
            } else {
                Value::Null
            };
            reply(
                StatusCode::OK,
                json!({"data": window(&customers, start, 3), "meta": {"next": next}}),
            )
        }
        "/link/customers" => {
            let page = num(&q, "page", 1);
            let mut r = reply(StatusCode::OK, json!(window(&customers, (page - 1) * 3, 3)));
            if page * 3 < customers.len() {
                let link = format!(
                    "</link/customers?page=1>; rel=\"first\", </link/customers?page={}>; rel=\"next\"",
                    page + 1
                );
                r.headers_mut()
                    .insert("link", HeaderValue::from_str(&link).unwrap());
            }
            r
        }
        "/next/customers" => {
            let page = num(&q, "page", 1);
            let next = if page * 3 < customers.len() {
                json!(format!("/next/customers?page={}", page + 1))
            } else {
                Value::Null
            };
            reply(
                StatusCode::OK,
                json!({"results": window(&customers, (page - 1) * 3, 3), "next": next}),
            )
        }
        "/flaky" => {
            if s.flaky_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "busy"}));
            }
            reply(StatusCode::OK, json!([{"id": 1}, {"id": 2}]))
        }
        "/limited" | "/limited-date" => {
            if s.limited_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let after = if path == "/limited" {
                    "1".to_string()
                } else {
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2))
                };
                let mut r = reply(StatusCode::TOO_MANY_REQUESTS, json!({"error": "slow down"}));
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_str(&after).unwrap());
                return r;
            }
            reply(StatusCode::OK, json!([{"id": 1}]))
        }
        "/ignores-page" => reply(StatusCode::OK, json!([{"id": 1}, {"id": 2}])),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply(StatusCode::OK, json!([]))
        }
        "/malformed" => {
            if num(&q, "page", 1) == 1 {
                reply(StatusCode::OK, json!([{"id": 1}]))
            } else {
                (StatusCode::OK, "[{\"id\": 2,}").into_response()
            }
        }
        p if p.starts_with("/kit/") => {
            let rows = s
                .kit
                .lock()
                .unwrap()
                .get(&p[5..])
                .cloned()
                .unwrap_or_default();
            let since = q.get("since_id").and_then(|v| v.parse::<i64>().ok());
            let rows: Vec<Value> = rows
                .into_iter()
                .filter(|r| since.is_none_or(|s| r["id"].as_i64().unwrap_or(0) > s))
                .collect();
            let page = num(&q, "page", 1).max(1);
            reply(
                StatusCode::OK,
                json!({"rows": window(&rows, (page - 1) * 2, 2)}),
            )
        }
        p if p.starts_with("/customers/") && p.ends_with("/orders") => {
            let id: i64 = p[11..p.len() - 7].parse().unwrap_or(0);
            let orders: Vec<Value> = (0..id % 3)
                .map(
                    |k| json!({"order_id": id * 100 + k, "total": "12.50", "placed": "2024-02-01"}),
                )
                .collect();
            let page = num(&q, "page", 1).max(1);
            reply(
                StatusCode::OK,
                json!({"orders": window(&orders, (page - 1) * per, per)}),
            )
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "no such path"})),
    }
}

fn token(s: &Srv, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut o = s.oauth.lock().unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", o.client_id, o.client_secret));
    let auth_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {b64}"));
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") || !auth_ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "bad client"}),
        );
    }
    let tok = format!("access-{}-{}", o.issued.len() + 1, std::process::id());
    o.issued.push(tok.clone());
    o.valid.insert(tok.clone());
    reply(
        StatusCode::OK,
        json!({"access_token": tok, "token_type": "bearer", "expires_in": o.expires_in}),
    )
}

/// Recomputes `X-Ferry-Signature` the way a receiver would, independently of the crate.
pub fn verify_signature(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if t.parse::<u64>().map_or(true, |t| now.abs_diff(t) > 300) {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    let Ok(tag) = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    ring::hmac::verify(&key, &msg, &tag).is_ok()
}

fn hook(s: &Srv, stream: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut h = s.hooks.lock().unwrap();
    let sig = headers
        .get("x-ferry-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !h.secret.is_empty() && !verify_signature(&h.secret, sig, body) {
        h.bad_signatures += 1;
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "bad signature"}));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    h.keys.push(key.clone());
    if h.fail_first && h.failed.insert(key.clone()) {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "try again"}),
        );
    }
    if !h.seen.insert(key) {
        return reply(StatusCode::OK, json!({"duplicate": true}));
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rows: Vec<Value> = if ct.contains("ndjson") {
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    } else {
        serde_json::from_slice(body).unwrap()
    };
    h.rows.entry(stream.to_string()).or_default().extend(rows);
    reply(StatusCode::OK, json!({"ok": true}))
}
