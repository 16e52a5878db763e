#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod sink;
pub mod source;
pub mod types;

pub use config::{SqliteQuery, SqliteSinkConfig, SqliteSourceConfig};
pub use sink::SqliteSink;
pub use source::SqliteSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "sqlite";

/// Adds the `sqlite` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(
            NAME,
            "SQLite database files: tables, views and queries in; append, overwrite or upsert out (embedded, no server)",
        )
        .with_source(SqliteSource::new)
        .with_sink(SqliteSink::new),
    );
}
