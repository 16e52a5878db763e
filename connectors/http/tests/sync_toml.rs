//! A `sync.toml` as a user writes it, through the registry, into SQLite: the path the
//! CLI takes (`ferry sync`), run twice to show the incremental rerun.

mod common;

use ferry_core::secret::ResolveContext;
use ferry_core::{Registry, Source};
use ferry_engine::config::SyncConfig;
use ferry_engine::RunOptions;

#[tokio::test]
async fn a_sync_toml_pulls_the_api_into_sqlite_incrementally() {
    let api = common::start().await;
    api.need(common::Need::Bearer("tok-sync-1".into()));
    std::env::set_var("FERRY_HTTP_TEST_TOKEN", "tok-sync-1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[source]
type = "http"
base_url = "{}"
auth = {{ type = "bearer", token = "${{env:FERRY_HTTP_TEST_TOKEN}}" }}
pagination = {{ type = "page", size_param = "per_page", size = 3 }}

[[source.streams]]
name = "customers"
path = "/page/customers"
records = "data"
primary_key = ["id"]
cursor_field = "updated_at"
cursor_param = "updated_since"
flatten = true

[[source.streams]]
name = "orders"
parent = "customers"
path = "/customers/{{parent.id}}/orders"
records = "orders"
parent_fields = {{ customer_id = "id" }}
primary_key = ["order_id"]

[destination]
type = "sqlite"
path = "out.db"

[[streams]]
name = "customers"
mode = "upsert"
incremental = true

[[streams]]
name = "orders"
mode = "upsert"
"#,
            api.url
        ),
    )
    .unwrap();
    let cfg = SyncConfig::load(&path, ResolveContext::default()).unwrap();
    let mut registry = Registry::new();
    ferry_connector_http::register(&mut registry);
    ferry_connector_sqlite::register(&mut registry);
    assert!(registry.get("http").unwrap().is_source());
    assert!(registry.get("webhook").unwrap().is_sink());
    let source = registry.build_source(&cfg.source).unwrap();
    let sink = registry.build_sink(&cfg.destination).unwrap();
    let rt = ferry_testkit::runtime(source, sink, dir.path());
    let opts = RunOptions::default();
    let run = || rt.sync(&cfg.streams, &opts, Some(&cfg), ("http", "sqlite"));
    let r = run().await.unwrap();
    let rows: Vec<u64> = r.streams.iter().map(|s| s.rows_committed).collect();
    assert_eq!(
        rows,
        vec![7, 7],
        "{:?}",
        r.streams.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    {
        let mut c = api.state.customers.lock().unwrap();
        c[0] = common::customer(1, 20);
    }
    let r = run().await.unwrap();
    assert_eq!(
        r.streams[0].rows_committed, 1,
        "only the updated customer moves"
    );
    let db = ferry_connector_sqlite::SqliteSource::from_path(dir.path().join("out.db"));
    let cat = db.discover().await.unwrap();
    let info = cat.get("customers").unwrap();
    assert!(info.schema.field_with_name("address_city").is_ok());
    let got = ferry_testkit::read_all(&db, ferry_core::ReadRequest::full("customers")).await;
    assert_eq!(
        got.iter().map(|b| b.num_rows()).sum::<usize>(),
        7,
        "upsert kept one row per customer"
    );
}
