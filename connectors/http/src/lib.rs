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

ferry_core::connector! {
    /// The source's name, the `type` of a `[source]` reading a REST API.
    SOURCE_NAME = {
        name: "http",
        description: "REST APIs declared in sync.toml: auth, pagination, rate limits, incremental by a cursor field",
        source: |cfg, _| HttpSource::new(cfg),
        replay: replay::HttpReplay,
    }
    /// The sink's name, the `type` of a `[destination]` POSTing to a webhook.
    SINK_NAME = {
        name: "webhook",
        description: "rows POSTed to a URL in batches (JSON or NDJSON), HMAC-signed, with idempotency keys",
        sink: |cfg, _| WebhookSink::new(cfg),
    }
}
