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

ferry_core::connector! {
    name: "mysql",
    description: "MySQL and MariaDB: tables, views and queries in; append, overwrite or upsert out",
    source: MysqlSource::new,
    sink: MysqlSink::new,
}
