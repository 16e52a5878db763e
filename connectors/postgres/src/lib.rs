#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod sink;
pub mod source;
pub mod types;

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
        .with_source(PostgresSource::new)
        .with_sink(PostgresSink::new),
    );
}
