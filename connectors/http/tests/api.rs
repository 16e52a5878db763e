//! The http source and webhook sink against a fake API on loopback (tests/common).

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{start, Api, Need};
use ferry_connector_http::{HttpSource, HttpSourceConfig, WebhookSink, WebhookSinkConfig};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    ConfigNode, Error, ErrorKind, FerryType, Message, ReadRequest, Sink, Source, StreamInfo,
};
use ferry_engine::StreamConfig;
use ferry_testkit::{self as testkit, batches, MemorySink};
use futures::StreamExt;

fn source(api: &Api, toml: &str) -> HttpSource {
    let retry = if toml.contains("retry =") {
        ""
    } else {
        "retry = { initial_backoff_ms = 50 }"
    };
    let text = format!("base_url = \"{}\"\n{retry}\n{toml}", api.url);
    let cfg: HttpSourceConfig = ConfigNode::from_toml(&text, ".")
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("config: {e}"));
    HttpSource::new(cfg).unwrap_or_else(|e| panic!("source: {e}"))
}

/// Every message of a read, or the first error.
async fn read(source: &HttpSource, req: ReadRequest) -> Result<Vec<Message>, Error> {
    let mut s = source.read(req).await?;
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m?);
    }
    Ok(out)
}

fn column_names(info: &StreamInfo) -> Vec<&str> {
    info.schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect()
}

fn ids(batches: &[RecordBatch], col: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column_by_name(col).unwrap().as_primitive::<Int64Type>();
        out.extend(c.iter().map(|v| v.unwrap()));
    }
    out
}

const PAGED: &str = r#"
[[streams]]
name = "customers"
path = "/page/customers"
records = "data"
primary_key = ["id"]
pagination = { type = "page", size_param = "per_page", size = 3 }
"#;

#[tokio::test]
async fn each_pagination_style_reads_every_record_and_stops_on_empty_or_missing_next() {
    let api = start().await;
    let cases = [
        (
            "/page/customers",
            "data",
            r#"{ type = "page", size_param = "per_page", size = 3 }"#,
            4,
        ),
        (
            "/offset/customers",
            "items",
            r#"{ type = "offset", limit = 3 }"#,
            4,
        ),
        (
            "/cursor/customers",
            "data",
            r#"{ type = "cursor", path = "meta.next", param = "cursor" }"#,
            3,
        ),
        ("/link/customers", "", r#"{ type = "link" }"#, 3),
        (
            "/next/customers",
            "results",
            r#"{ type = "next_url", path = "next" }"#,
            3,
        ),
    ];
    for (path, records, pagination, requests) in cases {
        let records = if records.is_empty() {
            String::new()
        } else {
            format!("records = \"{records}\"")
        };
        let s = source(
            &api,
            &format!("[[streams]]\nname = \"c\"\npath = \"{path}\"\n{records}\npagination = {pagination}\n"),
        );
        s.discover().await.unwrap();
        let before = api.hits(path);
        let got = batches(&read(&s, ReadRequest::full("c")).await.unwrap());
        assert_eq!(ids(&got, "id"), vec![1, 2, 3, 4, 5, 6, 7], "{path}");
        assert_eq!(api.hits(path) - before, requests, "{path}: requests made");
    }
}

#[tokio::test]
async fn schema_is_inferred_in_api_order_flattened_on_request_and_overridable() {
    let api = start().await;
    let s = source(&api, PAGED);
    let cat = s.discover().await.unwrap();
    let info = cat.get("customers").unwrap();
    let cols: Vec<(String, String)> = info
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), FerryType::of(f).unwrap().to_string()))
        .collect();
    let want = [
        ("id", "int64"),
        ("name", "string"),
        ("updated_at", "timestamp"),
        ("address", "json"),
        ("tags", "json"),
    ];
    assert_eq!(
        cols,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(info.primary_key, vec!["id".to_string()]);

    let flat = PAGED.replace(
        "primary_key",
        "flatten = true\ncolumns = { id = \"string\" }\nprimary_key",
    );
    let s = source(&api, &flat);
    let info = s.discover().await.unwrap().streams.remove(0);
    let names = column_names(&info);
    assert_eq!(
        names,
        [
            "id",
            "name",
            "updated_at",
            "address_city",
            "address_geo_lat",
            "tags"
        ]
    );
    assert_eq!(FerryType::of(info.schema.field(0)), Some(FerryType::String));
    let got = batches(&read(&s, ReadRequest::full("customers")).await.unwrap());
    assert_eq!(
        got[0].schema().fields(),
        info.schema.fields(),
        "read yields what discover announced"
    );
    let lat = got[0].column_by_name("address_geo_lat").unwrap();
    assert_eq!(
        lat.as_primitive::<ferry_core::arrow_array::types::Float64Type>()
            .value(0),
        1.5
    );
    testkit::source_reads_match_discover(&s, 100).await;
}

#[tokio::test]
async fn each_auth_type_is_sent_and_a_wrong_secret_is_auth_failed() {
    let api = start().await;
    let cases = [
        (
            Need::HeaderKey("hk-1".into()),
            r#"auth = { type = "api_key", name = "X-Api-Key", value = "SECRET" }"#,
        ),
        (
            Need::QueryKey("qk-1".into()),
            r#"auth = { type = "api_key", name = "api_key", value = "SECRET", in = "query" }"#,
        ),
        (
            Need::Bearer("bt-1".into()),
            r#"auth = { type = "bearer", token = "SECRET" }"#,
        ),
        (
            Need::Basic("ann".into(), "pw-1".into()),
            r#"auth = { type = "basic", username = "ann", password = "SECRET" }"#,
        ),
    ];
    for (need, auth) in cases {
        let right = match &need {
            Need::HeaderKey(k) | Need::QueryKey(k) | Need::Bearer(k) => k.clone(),
            Need::Basic(_, p) => p.clone(),
            _ => unreachable!(),
        };
        api.need(need.clone());
        let s = source(
            &api,
            &format!("{}\n{PAGED}", auth.replace("SECRET", &right)),
        );
        s.check().await.unwrap_or_else(|e| panic!("{need:?}: {e}"));
        let got = batches(&read(&s, ReadRequest::full("customers")).await.unwrap());
        assert_eq!(ids(&got, "id").len(), 7, "{need:?}");
        let s = source(
            &api,
            &format!("{}\n{PAGED}", auth.replace("SECRET", "wrong-value")),
        );
        let e = s.check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthFailed, "{need:?}: {e}");
        assert!(
            e.to_string().contains("401") && e.to_string().contains("stream customers"),
            "{e}"
        );
    }
}

fn oauth_source(api: &Api) -> HttpSource {
    source(
        api,
        &format!(
            "auth = {{ type = \"oauth2\", token_url = \"{}/oauth/token\", client_id = \"ferry\", client_secret = \"cs-oauth-1\", scopes = [\"read\"] }}\n{PAGED}",
            api.url
        ),
    )
}

#[tokio::test]
async fn oauth2_token_is_cached_renewed_after_expiry_and_after_a_401() {
    let api = start().await;
    {
        let mut o = api.state.oauth.lock().unwrap();
        o.client_id = "ferry".into();
        o.client_secret = "cs-oauth-1".into();
        o.expires_in = 2;
    }
    api.need(Need::OAuth);
    let s = oauth_source(&api);
    read(&s, ReadRequest::full("customers")).await.unwrap();
    assert_eq!(api.hits("/oauth/token"), 1, "one token serves every page");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    read(&s, ReadRequest::full("customers")).await.unwrap();
    assert_eq!(
        api.hits("/oauth/token"),
        2,
        "an expired token is renewed before use"
    );
    // the server revokes every token: the next request gets a 401, a new token, and succeeds
    api.state.oauth.lock().unwrap().valid.clear();
    let got = batches(&read(&s, ReadRequest::full("customers")).await.unwrap());
    assert_eq!(ids(&got, "id").len(), 7);
    assert_eq!(api.hits("/oauth/token"), 3, "a 401 fetches a new token");
    // a wrong client secret fails clearly
    api.state.oauth.lock().unwrap().client_secret = "other".into();
    let s = oauth_source(&api);
    let e = s.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(e.to_string().contains("token"), "{e}");
}

#[tokio::test]
async fn child_stream_reads_once_per_parent_with_parent_fields() {
    let api = start().await;
    let s = source(
        &api,
        &format!(
            "{PAGED}\n[[streams]]\nname = \"orders\"\npath = \"/customers/{{customer.id}}/orders\"\nparent = \"customers\"\nrecords = \"orders\"\nparent_fields = {{ customer_id = \"id\" }}\nprimary_key = [\"order_id\"]\ncolumns = {{ total = \"decimal(10,2)\" }}\npagination = {{ type = \"page\" }}\n"
        ),
    );
    let cat = s.discover().await.unwrap();
    let info = cat.get("orders").unwrap();
    let names = column_names(info);
    // the parent's fields first, then the API's order (the fake API sorts its keys)
    assert_eq!(names, ["customer_id", "order_id", "placed", "total"]);
    let got = batches(&read(&s, ReadRequest::full("orders")).await.unwrap());
    let mut pairs: Vec<(i64, i64)> = ids(&got, "customer_id")
        .into_iter()
        .zip(ids(&got, "order_id"))
        .collect();
    pairs.sort();
    let want: Vec<(i64, i64)> = (1..=7i64)
        .flat_map(|c| (0..c % 3).map(move |k| (c, c * 100 + k)))
        .collect();
    assert_eq!(pairs, want);
    assert_eq!(
        api.hits("/customers/3/orders"),
        1,
        "a parent without orders costs one request"
    );
}

#[tokio::test]
async fn incremental_rerun_moves_only_new_and_updated_records() {
    let api = start().await;
    let s = Arc::new(source(
        &api,
        &PAGED.replace(
            "primary_key",
            "cursor_field = \"updated_at\"\ncursor_param = \"updated_since\"\nprimary_key",
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let rt = testkit::runtime(s.clone(), Arc::new(sink.clone()), dir.path());
    let mut sc = StreamConfig::named("customers");
    sc.incremental = Some(true);
    let r = testkit::sync(&rt, std::slice::from_ref(&sc), ("http", "memory")).await;
    assert_eq!(r.rows_committed(), 7, "{:?}", r.streams[0].error);
    let state = rt.state.get("customers").unwrap();
    assert_eq!(state["cursor"], "2024-01-07T00:00:00Z");
    // customer 3 is updated, customer 8 is new; the API's `updated_since` is inclusive,
    // so it repeats customer 7 too: the state's keys drop it
    {
        let mut c = api.state.customers.lock().unwrap();
        c[2] = common::customer(3, 9);
        c.push(common::customer(8, 8));
    }
    let r = testkit::sync(&rt, std::slice::from_ref(&sc), ("http", "memory")).await;
    assert_eq!(r.rows_committed(), 2, "{:?}", r.streams[0].error);
    let log = api.state.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains("updated_since=2024-01-07T00%3A00%3A00Z")),
        "the saved cursor was not sent: {log:?}"
    );
    let all = sink
        .tables
        .lock()
        .unwrap()
        .get("customers")
        .cloned()
        .unwrap();
    let mut got = ids(&all, "id");
    got.sort();
    assert_eq!(got, vec![1, 2, 3, 3, 4, 5, 6, 7, 8]);
    let r = testkit::sync(&rt, std::slice::from_ref(&sc), ("http", "memory")).await;
    assert_eq!(r.rows_committed(), 0, "nothing new, nothing read");
}

fn single(api: &Api, path: &str, extra: &str) -> HttpSource {
    source(
        api,
        &format!("{extra}\n[[streams]]\nname = \"s\"\npath = \"{path}\"\n"),
    )
}

/// Stream `s` of `path` (`/limited`, `/limited-date`), whose next request is answered 429.
fn limited(api: &Api, path: &str, extra: &str) -> HttpSource {
    api.state.limited_left.store(1, SeqCst);
    single(api, path, extra)
}

/// Stream `s` of `/flaky`, whose next `n` requests are answered 503, read with `attempts`.
fn flaky(api: &Api, n: u32, attempts: u32) -> HttpSource {
    api.state.flaky_left.store(n, SeqCst);
    let retry = format!("retry = {{ attempts = {attempts}, initial_backoff_ms = 20 }}");
    single(api, "/flaky", &retry)
}

#[tokio::test]
async fn retry_after_in_seconds_and_as_a_date_is_honoured() {
    let api = start().await;
    for path in ["/limited", "/limited-date"] {
        let s = limited(&api, path, "");
        let t = Instant::now();
        let got = batches(&read(&s, ReadRequest::full("s")).await.unwrap());
        assert_eq!(ids(&got, "id"), vec![1]);
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{path}: waited only {:?}",
            t.elapsed()
        );
        assert_eq!(
            api.hits(path),
            3,
            "{path}: one sample in discover-less read, one 429, one success"
        );
    }
    // a wait longer than allowed fails at once, naming it
    let s = limited(
        &api,
        "/limited-date",
        "retry = { max_retry_after_secs = 0 }",
    );
    let e = read(&s, ReadRequest::full("s")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.context_value("retry_after_secs").is_some(), "{e}");
}

#[tokio::test]
async fn a_burst_of_503s_is_retried_and_running_out_of_retries_names_stream_url_and_status() {
    let api = start().await;
    let s = flaky(&api, 3, 4);
    let got = batches(&read(&s, ReadRequest::full("s")).await.unwrap());
    assert_eq!(ids(&got, "id"), vec![1, 2]);
    // 3 × 503 then 200 while inferring the schema, then 200 for the read itself
    assert_eq!(api.hits("/flaky"), 5);
    let s = flaky(&api, 10, 3);
    let e = s.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Temporary);
    let text = e.to_string();
    for needle in [
        "503",
        "after 3 attempts",
        "stream s",
        &format!("{}/flaky", api.url),
    ] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
}

#[tokio::test]
async fn a_hanging_server_times_out_with_a_clear_error() {
    let api = start().await;
    let s = single(
        &api,
        "/hang",
        "timeout_secs = 0.3\nretry = { attempts = 2, initial_backoff_ms = 10 }",
    );
    let t = Instant::now();
    let e = s.check().await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("0.3 s") && text.contains("stream s") && text.contains("/hang"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_json_names_stream_and_page() {
    let api = start().await;
    let s = single(&api, "/malformed", "pagination = { type = \"page\" }");
    let e = read(&s, ReadRequest::full("s")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid);
    let text = e.to_string();
    assert!(
        text.contains("page 2 of stream `s` is not valid JSON"),
        "{text}"
    );
    assert_eq!(e.context_value("page"), Some("2"));
}

#[tokio::test]
async fn a_wrong_record_selector_is_named_with_the_keys_found() {
    let api = start().await;
    let s = source(
        &api,
        &PAGED.replace("records = \"data\"", "records = \"dta\""),
    );
    let e = s.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(
        e.to_string().contains("no `dta`") && e.to_string().contains("data"),
        "{e}"
    );
}

fn hook_sink(api: &Api, extra: &str) -> WebhookSink {
    let text = format!(
        "url = \"{}/hook/{{stream}}\"\nsecret = \"whsec-canary-1\"\nbatch_size = 2\nretry = {{ initial_backoff_ms = 20 }}\n{extra}",
        api.url
    );
    let cfg: WebhookSinkConfig = ConfigNode::from_toml(&text, ".").unwrap().parse().unwrap();
    WebhookSink::new(cfg).unwrap()
}

#[tokio::test]
async fn webhook_batches_are_signed_and_a_retried_batch_keeps_its_idempotency_key() {
    let api = start().await;
    {
        let mut h = api.state.hooks.lock().unwrap();
        h.secret = "whsec-canary-1".into();
        h.fail_first = true;
    }
    let sink = hook_sink(&api, "format = \"ndjson\"");
    sink.check().await.unwrap();
    let src = ferry_testkit::MemorySource::new(
        "orders",
        testkit::simple_batch(1, 0, "").schema(),
        vec![
            testkit::simple_batch(1, 3, "a"),
            testkit::simple_batch(4, 2, "b"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(Arc::new(src), Arc::new(sink), dir.path());
    let r = testkit::sync(&rt, &[StreamConfig::named("orders")], ("memory", "webhook")).await;
    assert_eq!(r.rows_committed(), 5, "{:?}", r.streams[0].error);
    let h = api.state.hooks.lock().unwrap();
    assert_eq!(h.bad_signatures, 0);
    let rows = &h.rows["orders"];
    let got: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5], "each row once, in order");
    // every batch was POSTed twice (the first failed) with the same key
    assert_eq!(h.keys.len(), 2 * h.seen.len(), "{:?}", h.keys);
    for pair in h.keys.chunks(2) {
        assert_eq!(pair[0], pair[1], "a retried batch changed its key");
    }
    assert_eq!(h.seen.len(), 3, "5 rows in batches of 2");
}

#[tokio::test]
async fn webhook_with_a_wrong_secret_is_refused_by_the_receiver() {
    let api = start().await;
    api.state.hooks.lock().unwrap().secret = "the-receivers-secret".into();
    let sink = hook_sink(&api, "");
    let schema = testkit::simple_batch(1, 0, "").schema();
    let request = testkit::request("x", schema, ferry_core::WriteMode::Append);
    let mut w = sink.open(request).await.unwrap();
    w.write(testkit::simple_batch(1, 1, "a")).await.unwrap();
    let e = w.flush().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(api.state.hooks.lock().unwrap().bad_signatures >= 1);
}

#[tokio::test]
async fn an_api_that_ignores_the_page_parameter_is_an_error_not_an_endless_loop() {
    let api = start().await;
    let s = single(&api, "/ignores-page", "pagination = { type = \"page\" }");
    let e = read(&s, ReadRequest::full("s")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid);
    assert!(
        e.to_string()
            .contains("page 2 of stream `s` is the same as the page before"),
        "{e}"
    );
    assert!(api.hits("/ignores-page") <= 4);
}
