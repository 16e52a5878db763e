#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod sink;
pub mod source;
pub mod types;
mod upsert;

pub use crate::core::ConnSettings;
pub use config::{MysqlQuery, MysqlSinkConfig, MysqlSourceConfig};
pub use sink::MysqlSink;
pub use source::MysqlSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "mysql";

/// Adds the `mysql` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(
            NAME,
            "MySQL and MariaDB: tables, views and queries in; append, overwrite or upsert out",
        )
        .with_source(MysqlSource::new)
        .with_sink(MysqlSink::new),
    );
}
