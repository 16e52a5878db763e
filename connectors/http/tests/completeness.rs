//! Completeness: an API that reports 500 records but serves 450 (a listing that stops one
//! page early, as some do under load) is caught: the report says `complete: false`, and
//! `--require-complete` fails the stream before its state is committed.

mod common;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use ferry_connector_http::{HttpSource, HttpSourceConfig};
use ferry_core::ConfigNode;
use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, MemorySink};
use serde_json::{json, Value};

/// 450 records in pages of 50, and `meta.total` saying `claimed`.
async fn start(claimed: u64) -> String {
    async fn items(State(claimed): State<u64>, RawQuery(q): RawQuery) -> Json<Value> {
        let page: u64 = q
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("page="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let data: Vec<Value> = if page <= 9 {
            ((page - 1) * 50 + 1..=page * 50)
                .map(|id| json!({ "id": id, "updated_at": format!("2024-01-01T00:00:{:02}Z", id % 60) }))
                .collect()
        } else {
            Vec::new()
        };
        Json(json!({ "data": data, "meta": { "total": claimed } }))
    }
    let app = Router::new()
        .route("/items", get(items))
        .with_state(claimed);
    format!("http://{}", common::listen(app).await)
}

fn source(url: &str) -> Arc<HttpSource> {
    let text = format!(
        r#"base_url = "{url}"
pagination = {{ type = "page", param = "page" }}

[[streams]]
name = "items"
path = "/items"
records = "data"
total = "meta.total"
primary_key = ["id"]
cursor_field = "id"
"#
    );
    let cfg: HttpSourceConfig = ConfigNode::from_toml(&text, ".")
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("config: {e}"));
    Arc::new(HttpSource::new(cfg).unwrap())
}

#[tokio::test]
async fn a_reported_total_that_is_not_served_is_incomplete() {
    for (claimed, require) in [(450, true), (500, false), (500, true)] {
        let url = start(claimed).await;
        let dir = tempfile::tempdir().unwrap();
        let rt = testkit::runtime(source(&url), Arc::new(MemorySink::default()), dir.path());
        let mut sc = StreamConfig::named("items");
        sc.cursor = Some("id".into());
        let opts = RunOptions {
            require_complete: require,
            ..Default::default()
        };
        let report = rt
            .sync(&[sc], &opts, None, ("http", "memory"))
            .await
            .unwrap();
        let s = &report.streams[0];
        assert_eq!(s.rows_read, 450, "{s:?}");
        assert_eq!(s.rows_total, Some(claimed));
        assert_eq!(s.complete, Some(claimed == 450));
        if claimed == 500 && require {
            assert_eq!(report.status, Status::Failed);
            assert!(
                s.error.as_deref().unwrap().contains("reported 500"),
                "{:?}",
                s.error
            );
            assert_eq!(rt.state.get("items"), None, "no state committed");
        } else {
            assert_eq!(report.status, Status::Succeeded, "{:?}", s.error);
            assert!(rt.state.get("items").is_some());
        }
    }
}
