//! The shipped example (`examples/rest/sync.toml` at the repository root) against the
//! demo API (`examples/demo_api.rs`), through the registry into SQLite: 25 customers and
//! their orders, then nothing, then exactly the customers `/_touch` changed.

#[path = "../examples/support/demo_server.rs"]
mod demo_server;

use ferry_core::secret::ResolveContext;
use ferry_core::Registry;
use ferry_engine::config::SyncConfig;
use ferry_engine::RunOptions;

#[tokio::test]
async fn the_rest_example_syncs_the_demo_api_incrementally() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, demo_server::router("demo-token")).await });
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rest/sync.toml"
    ))
    .expect("examples/rest/sync.toml");
    assert!(text.contains("127.0.0.1:8787"));
    let text = text.replace("127.0.0.1:8787", &addr.to_string());
    std::env::set_var("DEMO_API_TOKEN", "demo-token");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = SyncConfig::load(&path, ResolveContext::default()).unwrap();
    let mut registry = Registry::new();
    ferry_connector_http::register(&mut registry);
    ferry_connector_sqlite::register(&mut registry);
    let source = registry.build_source(&cfg.source).unwrap();
    let sink = registry.build_sink(&cfg.destination).unwrap();
    let rt = ferry_testkit::runtime(source, sink, dir.path());
    let opts = RunOptions::default();
    let written = |r: &ferry_engine::RunReport| -> Vec<(String, u64)> {
        r.streams
            .iter()
            .map(|s| (s.stream.clone(), s.rows_committed))
            .collect()
    };
    let r = rt
        .sync(&cfg.streams, &opts, Some(&cfg), ("http", "sqlite"))
        .await
        .unwrap();
    let orders: u64 = (1..=25u64).map(|i| i % 4).sum();
    assert_eq!(
        written(&r),
        vec![("customers".into(), 25), ("orders".into(), orders)],
        "{:?}",
        r.streams.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    let r = rt
        .sync(&cfg.streams, &opts, Some(&cfg), ("http", "sqlite"))
        .await
        .unwrap();
    assert_eq!(r.streams[0].rows_committed, 0, "a rerun reads no customer");
    let touched = reqwest_free_post(addr).await;
    assert!(touched.contains("updated"), "{touched}");
    let r = rt
        .sync(&cfg.streams, &opts, Some(&cfg), ("http", "sqlite"))
        .await
        .unwrap();
    assert_eq!(
        r.streams[0].rows_committed, 2,
        "the updated and the added customer move"
    );
    assert!(dir.path().join("out/rest.db").is_file());
}

/// `POST /v1/_touch` with a raw HTTP/1.1 request (no client library needed).
async fn reqwest_free_post(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/_touch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
