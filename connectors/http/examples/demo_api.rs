//! A tiny fake CRM API to try the `http` source on: bearer auth, pagination and an
//! `updated_since` filter. `examples/rest/` at the repository root syncs it into SQLite.
//!
//! ```sh
//! cargo run -p ferry-connector-http --example demo_api            # listens on 127.0.0.1:8787
//! DEMO_PORT=9000 DEMO_API_TOKEN=other cargo run -p ferry-connector-http --example demo_api
//! ```

#[path = "support/demo_server.rs"]
mod demo_server;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("DEMO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8787);
    let token = std::env::var("DEMO_API_TOKEN").unwrap_or_else(|_| "demo-token".into());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port} ({e}); set DEMO_PORT"));
    println!("demo API on http://127.0.0.1:{port}/v1 (bearer token from DEMO_API_TOKEN, default `demo-token`)");
    println!("  GET  /v1/customers?page=1&per_page=10&updated_since=2024-06-01T10:00:00Z");
    println!("  GET  /v1/customers/{{id}}/orders");
    println!("  POST /v1/_touch   (update one customer, add one)");
    axum::serve(listener, demo_server::router(&token))
        .await
        .unwrap();
}
