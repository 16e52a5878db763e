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

ferry_core::connector! {
    name: "sqlite",
    description: "SQLite database files: tables, views and queries in; append, overwrite or upsert out (embedded, no server)",
    source: SqliteSource::new,
    sink: SqliteSink::new,
}
