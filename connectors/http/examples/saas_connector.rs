//! A connector for one SaaS API (the demo CRM) in a few lines, on the http source's
//! client: its own small config (URL and token), streams declared in Rust, registered
//! under its own name like any Ferry connector. Starts the demo API in-process and
//! reads it.
//!
//! ```sh
//! cargo run -p ferry-connector-http --example saas_connector
//! ```

#[path = "support/demo_server.rs"]
mod demo_server;

use std::sync::Arc;

use ferry_connector_http::{HttpSource, HttpStream, Pagination};
use ferry_core::{ConfigNode, ConnectorDef, ReadRequest, Registry, Secret, Source};
use futures::StreamExt;

/// `[source] type = "democrm"`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DemoCrmConfig {
    /// The API's URL (default: the hosted one).
    #[serde(default = "default_url")]
    url: String,
    /// The API token, as a reference: "${secret:democrm_token}".
    token: Secret,
}

fn default_url() -> String {
    "https://crm.example.com/v1".into()
}

/// The whole connector: the streams the CRM has, on the shared machinery.
fn democrm(cfg: DemoCrmConfig) -> ferry_core::Result<HttpSource> {
    HttpSource::builder(cfg.url)
        .bearer(cfg.token)
        .requests_per_second(20.0)
        .pagination(Pagination::page("page"))
        .stream(
            HttpStream::new("customers", "/customers")
                .records("data")
                .primary_key(["id"])
                .cursor("updated_at", "updated_since")
                .sorted_by_cursor()
                .column("balance", "decimal(12,2)")
                .flatten(1),
        )
        .stream(
            HttpStream::new("orders", "/customers/{parent.id}/orders")
                .parent("customers")
                .records("orders")
                .parent_field("customer_id", "id")
                .pagination(Pagination::none())
                .primary_key(["id"])
                .column("amount", "decimal(12,2)"),
        )
        .build()
}

fn register(r: &mut Registry) {
    r.add(
        ConnectorDef::new("democrm", "the demo CRM")
            .with_source(|cfg: DemoCrmConfig, _| Ok(Arc::new(democrm(cfg)?) as Arc<dyn Source>)),
    );
}

#[tokio::main]
async fn main() -> ferry_core::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, demo_server::router("demo-token")).await });

    let mut registry = Registry::new();
    register(&mut registry);
    // what a user's sync.toml [source] section would hold
    let node = ConfigNode::from_toml(&format!("url = \"{url}\"\ntoken = \"demo-token\""), ".")?;
    let cfg: DemoCrmConfig = node.parse()?;
    let source = democrm(cfg)?;
    println!(
        "registered: {:?}",
        registry.all().iter().map(|d| d.name).collect::<Vec<_>>()
    );
    source.check().await?;
    for info in source.discover().await?.streams {
        let mut rows = 0;
        let mut msgs = source.read(ReadRequest::full(&info.name)).await?;
        while let Some(m) = msgs.next().await {
            if let ferry_core::Message::Batch(b) = m? {
                rows += b.num_rows();
            }
        }
        let cols: Vec<String> = info
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        println!("{}: {rows} rows, columns {}", info.name, cols.join(", "));
    }
    Ok(())
}
