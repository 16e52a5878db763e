//! A read hands the runtime every request attempt it made (for debug bundles), and no
//! credential is in them, whatever the auth.

mod common;

use std::sync::atomic::Ordering;

use common::{start, Api, Need};
use ferry_connector_http::HttpSource;
use ferry_core::exchange::Exchange;
use ferry_core::{Message, ReadRequest, Source};
use futures::StreamExt;

const KEY: &str = "canary-recorded-8e2f";

/// A source of one stream `s` at `path`; `stream` adds lines to the stream's table.
fn source(api: &Api, extra: &str, path: &str, stream: &str) -> HttpSource {
    let text = format!(
        "base_url = \"{}\"\nretry = {{ attempts = 3, initial_backoff_ms = 10 }}\n{extra}\n\
         [[streams]]\nname = \"s\"\npath = \"{path}\"\n{stream}",
        api.url
    );
    ferry_testkit::from_toml(&text, ".", |c, _| HttpSource::new(c)).unwrap()
}

/// The exchanges of a whole read (which must succeed).
async fn exchanges(s: &HttpSource) -> Vec<Exchange> {
    let mut m = s.read(ReadRequest::full("s")).await.unwrap();
    let mut out = Vec::new();
    while let Some(x) = m.next().await {
        if let Message::Exchange(x) = x.unwrap() {
            out.push(*x);
        }
    }
    out
}

#[tokio::test]
async fn every_page_is_recorded_and_no_credential_is() {
    let api = start().await;
    let cases = [
        (
            Need::QueryKey(KEY.into()),
            format!("auth = {{ type = \"api_key\", name = \"api_key\", value = \"{KEY}\", in = \"query\" }}"),
        ),
        (
            Need::HeaderKey(KEY.into()),
            format!("auth = {{ type = \"api_key\", name = \"X-Api-Key\", value = \"{KEY}\" }}"),
        ),
        (
            Need::Bearer(KEY.into()),
            format!("auth = {{ type = \"bearer\", token = \"{KEY}\" }}"),
        ),
        (
            Need::Basic("me".into(), KEY.into()),
            format!("auth = {{ type = \"basic\", username = \"me\", password = \"{KEY}\" }}"),
        ),
    ];
    for (need, auth) in cases {
        api.need(need);
        let s = source(
            &api,
            &auth,
            "/page/customers",
            "records = \"data\"\npagination = { type = \"page\", size_param = \"per_page\", size = 3 }\n",
        );
        let xs = exchanges(&s).await;
        // 7 customers, 3 a page: pages 1-3 and the empty page 4
        let pages: Vec<&str> = xs.iter().map(|x| x.what.as_str()).collect();
        assert_eq!(pages, ["page 1", "page 2", "page 3", "page 4"], "{auth}");
        assert!(xs.iter().all(|x| x.status == Some(200)), "{xs:#?}");
        assert!(xs[0].body.contains("Customer 1"), "{:?}", xs[0].body);
        assert!(xs[0].url.ends_with("page=1&per_page=3"), "{}", xs[0].url);
        let text = serde_json::to_string(&xs).unwrap();
        assert!(!text.contains(KEY), "{auth}: {text}");
        assert!(!text.to_lowercase().contains("authorization"), "{text}");
    }
}

#[tokio::test]
async fn each_attempt_of_a_retried_request_is_recorded() {
    let api = start().await;
    let s = source(&api, "", "/flaky", "");
    s.discover().await.unwrap(); // inference's requests are not recorded
    api.state.flaky_left.store(2, Ordering::SeqCst);
    let xs = exchanges(&s).await;
    let first_page: Vec<(u32, Option<u16>)> = xs
        .iter()
        .filter(|x| x.what == "page 1")
        .map(|x| (x.attempt, x.status))
        .collect();
    assert_eq!(
        first_page,
        [(1, Some(503)), (2, Some(503)), (3, Some(200))],
        "{xs:#?}"
    );
    assert!(xs[0].body.contains("busy"), "{:?}", xs[0].body);
}
