//! Network faults between Ferry and an HTTP API, injected by a TCP proxy
//! ([`ferry_testkit::fault`]) in front of a small axum server started here: added
//! latency, connections dropped or reset in the middle of a page or of a webhook POST
//! (both retried: GETs are idempotent, and a retried POST keeps its `Idempotency-Key`),
//! and half-open connections that hang (`timeout_secs` fires on every attempt; the
//! stream fails naming the page and its last committed position, and a rerun
//! completes).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_core::{Sink, Source};
use ferry_engine::report::RunReport;
use ferry_engine::{RunOptions, Runtime, StreamConfig};
use ferry_testkit::fault::{bounded, Direction, Ending, FaultProxy};
use ferry_testkit::{self as testkit, MemorySink};
use serde_json::{json, Value};

/// Records the API serves, and records per page: 20 pages of about 12 kB.
const RECORDS: i64 = 2_000;
const PER_PAGE: i64 = 100;
/// Bytes let through before a fault mid-transfer.
const MID: u64 = 60_000;

fn record(id: i64) -> Value {
    json!({
        "id": id,
        "name": format!("{id:05}-{}", "n".repeat(80)),
        "updated_at": format!("2024-01-01T{:02}:{:02}:{:02}Z", id / 3600, id / 60 % 60, id % 60),
    })
}

/// What the webhook receiver got: rows by id (as an upserting receiver keeps them), and
/// how many rows arrived in all (retries and reruns included).
#[derive(Default)]
struct Received {
    by_id: BTreeMap<i64, Value>,
    rows: usize,
    keys: HashSet<String>,
}

type Shared = Arc<Mutex<Received>>;

/// `GET /items?page&per_page&updated_since` (inclusive, sorted by `updated_at`) and
/// `POST /hook/{stream}` (JSON arrays, deduplicated by `Idempotency-Key`).
async fn api() -> (std::net::SocketAddr, Shared) {
    let received = Shared::default();
    let app = Router::new()
        .route("/items", get(items))
        .route("/hook/{stream}", post(hook))
        .with_state(received.clone());
    (common::listen(app).await, received)
}

async fn items(uri: Uri) -> Json<Value> {
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let page: i64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per: i64 = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(PER_PAGE);
    let since = q.get("updated_since").cloned().unwrap_or_default();
    let all: Vec<Value> = (1..=RECORDS)
        .map(record)
        .filter(|r| r["updated_at"].as_str().unwrap() >= since.as_str())
        .collect();
    let start = ((page - 1) * per) as usize;
    let data: Vec<Value> = all.into_iter().skip(start).take(per as usize).collect();
    Json(json!({ "data": data }))
}

async fn hook(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut r = r.lock().unwrap();
    if !r.keys.insert(key) {
        return Json(json!({ "duplicate": true }));
    }
    let rows: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
    r.rows += rows.len();
    for row in rows {
        r.by_id.insert(row["id"].as_i64().unwrap(), row);
    }
    Json(json!({ "ok": true }))
}

/// The API's `items` stream at `addr`: 1 s per request, 0.5 s to connect, 2 attempts.
fn http_source(addr: std::net::SocketAddr) -> Arc<dyn Source> {
    let toml = format!(
        r#"base_url = "http://{addr}"
timeout_secs = 1
connect_timeout_secs = 0.5
retry = {{ attempts = 2, initial_backoff_ms = 50 }}
pagination = {{ type = "page", size_param = "per_page", size = {PER_PAGE} }}

[[streams]]
name = "items"
path = "/items"
records = "data"
primary_key = ["id"]
cursor_field = "updated_at"
cursor_param = "updated_since"
sorted_by_cursor = true
"#
    );
    testkit::source_from_toml(ferry_connector_http::register, "http", &toml, ".")
        .expect("the source config is valid")
}

/// A webhook to `addr`, 100 rows per POST, with 1 s timeouts and 2 attempts.
fn webhook(addr: std::net::SocketAddr) -> Arc<dyn Sink> {
    let toml = format!(
        "url = \"http://{addr}/hook/{{stream}}\"\nbatch_size = 100\ntimeout_secs = 1\n\
         connect_timeout_secs = 1\nretry = {{ attempts = 2, initial_backoff_ms = 50 }}\n"
    );
    testkit::sink_from_toml(ferry_connector_http::register, "webhook", &toml, ".")
        .expect("the destination config is valid")
}

/// `items`, incremental, appended (the webhook's receiver keeps rows by id, as an
/// upserting one would).
fn stream() -> StreamConfig {
    let mut sc = StreamConfig::named("items");
    sc.incremental = Some(true);
    sc
}

fn runtime(source: Arc<dyn Source>, sink: Arc<dyn Sink>, dir: &std::path::Path) -> Runtime {
    let mut rt = testkit::runtime(source, sink, dir);
    rt.settings.batch_size = 200;
    rt
}

async fn sync(rt: &Runtime) -> RunReport {
    bounded(
        "the sync",
        rt.sync(&[stream()], &RunOptions::default(), None, ("http", "x")),
    )
    .await
    .expect("the sync starts")
}

fn succeeded(report: &RunReport) {
    testkit::assert_succeeded(report);
}

/// The memory sink holds every record, each once but (after a failed append run) those
/// after the last committed id, which the rerun wrote again.
fn assert_read_whole(sink: &MemorySink, committed: Option<i64>) {
    use ferry_core::arrow_array::cast::AsArray;
    use ferry_core::arrow_array::types::Int64Type;
    let tables = sink.tables.lock().unwrap();
    let mut ids = Vec::new();
    for b in tables.get("items").expect("stream written") {
        let col = b.column_by_name("id").expect("an id column");
        ids.extend(col.as_primitive::<Int64Type>().iter().map(|v| v.unwrap()));
    }
    let mut seen = std::collections::BTreeSet::new();
    let twice: Vec<i64> = ids.iter().copied().filter(|i| !seen.insert(*i)).collect();
    let missing = (1..=RECORDS).filter(|i| !seen.contains(i)).count();
    assert_eq!(missing, 0, "records missing");
    assert_eq!(seen.len() as i64, RECORDS, "records the API does not have");
    match committed {
        None => assert!(twice.is_empty(), "records written twice: {twice:?}"),
        Some(c) => assert!(
            twice.iter().all(|i| *i > c),
            "only records after the committed id {c} may be written again: {twice:?}"
        ),
    }
}

fn assert_received_whole(r: &Shared) {
    let r = r.lock().unwrap();
    assert_eq!(
        r.by_id.keys().copied().collect::<Vec<_>>(),
        (1..=RECORDS).collect::<Vec<_>>()
    );
}

/// The stream failed; its error names the stream and where a rerun resumes.
fn failure(report: &RunReport) -> String {
    testkit::failed_stream(report, "items")
}

/// Reads the API through a proxy with `fault` set once the source is built.
async fn read_with(
    fault: impl FnOnce(&FaultProxy),
) -> (RunReport, MemorySink, FaultProxy, std::net::SocketAddr) {
    let (addr, _) = api().await;
    let p = FaultProxy::start(addr).await.unwrap();
    fault(&p);
    let mem = MemorySink::default();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(http_source(p.addr()), Arc::new(mem.clone()), dir.path());
    let report = sync(&rt).await;
    (report, mem, p, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_changes_nothing() {
    let (report, mem, p, addr) = read_with(|p| p.set_latency(Duration::from_millis(5))).await;
    succeeded(&report);
    assert_read_whole(&mem, None);
    assert!(p.stats().to_client > 200_000, "{:?}", p.stats());
    // and the webhook
    let (hook_addr, received) = api().await;
    let hp = FaultProxy::start(hook_addr).await.unwrap();
    hp.set_latency(Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(http_source(addr), webhook(hp.addr()), dir.path());
    succeeded(&sync(&rt).await);
    assert_received_whole(&received);
}

async fn cut_mid_page(ending: Ending) {
    let (report, mem, p, _) = read_with(|p| p.cut_after(Direction::ToClient, MID, ending, 1)).await;
    // the page's GET was sent again on a new connection
    succeeded(&report);
    assert_eq!(p.stats().cut, 1, "the fault happened");
    assert!(p.stats().accepted >= 2, "a new connection: {:?}", p.stats());
    assert_read_whole(&mem, None);
}

ferry_testkit::cut_tests! {
    cut_mid_page => connection_dropped_mid_page_is_retried, connection_reset_mid_page_is_retried;
}

async fn cut_mid_post(ending: Ending) {
    let (source_addr, _) = api().await;
    let (hook_addr, received) = api().await;
    let p = FaultProxy::start(hook_addr).await.unwrap();
    p.cut_after(Direction::ToTarget, MID, ending, 1);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(http_source(source_addr), webhook(p.addr()), dir.path());
    // the batch was POSTed again, with the same Idempotency-Key
    succeeded(&sync(&rt).await);
    assert_eq!(p.stats().cut, 1, "the fault happened");
    assert_received_whole(&received);
    assert_eq!(
        received.lock().unwrap().rows,
        RECORDS as usize,
        "no batch twice"
    );
}

ferry_testkit::cut_tests! {
    cut_mid_post => connection_dropped_mid_post_is_retried, connection_reset_mid_post_is_retried;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_page_times_out_with_position_and_rerun_completes() {
    let (addr, _) = api().await;
    let p = FaultProxy::start(addr).await.unwrap();
    p.hang_after(Direction::ToClient, MID);
    let mem = MemorySink::default();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(http_source(p.addr()), Arc::new(mem.clone()), dir.path());
    let report = sync(&rt).await;
    let error = failure(&report);
    assert!(
        error.contains("GET failed after 2 attempts: no complete answer within 1 s (timeout_secs)"),
        "says what timed out: {error}"
    );
    assert!(error.contains("page "), "names the page: {error}");
    assert!(error.contains("; last committed: {"), "{error}");
    // {"column":"updated_at","cursor":"…","keys":["199"]}
    let state: Value = serde_json::from_str(error.split("; last committed: ").nth(1).unwrap())
        .expect("the committed state is JSON");
    let committed: i64 = state["keys"][0].as_str().unwrap().parse().unwrap();
    drop(p);
    // the rerun, straight to the API, starts at the committed cursor (the memory sink
    // appends: rows after it that the failed run wrote come again)
    let rt = runtime(http_source(addr), Arc::new(mem.clone()), dir.path());
    succeeded(&sync(&rt).await);
    assert_read_whole(&mem, Some(committed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_post_times_out_with_position_and_rerun_completes() {
    let (source_addr, _) = api().await;
    let (hook_addr, received) = api().await;
    let p = FaultProxy::start(hook_addr).await.unwrap();
    p.hang_after(Direction::ToTarget, MID);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(http_source(source_addr), webhook(p.addr()), dir.path());
    let report = sync(&rt).await;
    let error = failure(&report);
    assert!(
        error
            .contains("POST failed after 2 attempts: no complete answer within 1 s (timeout_secs)"),
        "says what timed out: {error}"
    );
    assert!(
        error.contains("; last committed: {") || error.contains("; nothing committed yet"),
        "{error}"
    );
    drop(p);
    let rt = runtime(http_source(source_addr), webhook(hook_addr), dir.path());
    succeeded(&sync(&rt).await);
    assert_received_whole(&received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_hangs_times_out_naming_connect_timeout() {
    // a listener whose accept queue is full drops new SYNs, so connecting hangs (the
    // proxy cannot show this: it accepts every connection)
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    while let Ok(Ok(s)) = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        queued.push(s);
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(
        http_source(addr),
        Arc::new(MemorySink::default()),
        dir.path(),
    );
    let e = bounded(
        "the sync",
        rt.sync(&[stream()], &RunOptions::default(), None, ("http", "x")),
    )
    .await
    .expect_err("discovery cannot connect");
    eprintln!("the sync failed with: {e}");
    assert!(
        e.to_string().contains(
            "GET failed after 2 attempts: no connection within 0.5 s (connect_timeout_secs)"
        ),
        "{e}"
    );
    drop((listener, queued));
}
