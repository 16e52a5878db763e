#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod sink;
pub mod source;
pub mod types;

use std::sync::Arc;

pub use crate::core::ConnSettings;
pub use config::{ParallelRead, PostgresQuery, PostgresSinkConfig, PostgresSourceConfig, SslMode};
pub use sink::PostgresSink;
pub use source::PostgresSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "postgres";

/// Adds the `postgres` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(
            NAME,
            "PostgreSQL: tables, views and queries in (COPY, incremental by cursor); append, overwrite or upsert out (COPY)",
        )
        .with_source(|cfg: PostgresSourceConfig, ctx| {
            Ok(Arc::new(PostgresSource::new(cfg, ctx)?) as Arc<dyn ferry_core::Source>)
        })
        .with_sink(|cfg: PostgresSinkConfig, ctx| {
            Ok(Arc::new(PostgresSink::new(cfg, ctx)?) as Arc<dyn ferry_core::Sink>)
        }),
    );
}
