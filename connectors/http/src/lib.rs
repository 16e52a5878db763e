#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod builder;
pub mod client;
pub mod config;
mod cursor;
pub mod paginate;
#[cfg(test)]
mod props;
mod records;
pub mod replay;
mod sink;
mod source;

pub use builder::{HttpSourceBuilder, HttpStream, Pagination};
pub use client::{HttpClient, Reply, RequestSpec, SIGNATURE_HEADER};
pub use config::{
    AuthConfig, BodyFormat, HttpSourceConfig, HttpStreamConfig, PaginationConfig, RetryConfig,
    WebhookSinkConfig,
};
pub use sink::{idempotency_key, WebhookSink};
pub use source::HttpSource;

/// The source's name, the `type` of a `[source]` reading a REST API.
pub const SOURCE_NAME: &str = "http";
/// The sink's name, the `type` of a `[destination]` POSTing to a webhook.
pub const SINK_NAME: &str = "webhook";

/// Adds the `http` source and the `webhook` destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(
            SOURCE_NAME,
            "REST APIs declared in sync.toml: auth, pagination, rate limits, incremental by a cursor field",
        )
        .with_source(|cfg: HttpSourceConfig, _ctx| HttpSource::new(cfg))
        .with_replay(replay::HttpReplay),
    );
    registry.add(
        ferry_core::ConnectorDef::new(
            SINK_NAME,
            "rows POSTed to a URL in batches (JSON or NDJSON), HMAC-signed, with idempotency keys",
        )
        .with_sink(|cfg: WebhookSinkConfig, _ctx| WebhookSink::new(cfg)),
    );
}
