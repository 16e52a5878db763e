#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod sink;
pub mod source;
pub mod types;

use std::sync::Arc;

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
        .with_source(|cfg: SqliteSourceConfig, ctx| {
            Ok(Arc::new(SqliteSource::new(cfg, ctx)?) as Arc<dyn ferry_core::Source>)
        })
        .with_sink(|cfg: SqliteSinkConfig, ctx| {
            Ok(Arc::new(SqliteSink::new(cfg, ctx)?) as Arc<dyn ferry_core::Sink>)
        }),
    );
}
