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

ferry_core::connector! {
    name: "postgres",
    description: "PostgreSQL: tables, views and queries in (COPY, incremental by cursor); append, overwrite or upsert out (COPY)",
    source: PostgresSource::new,
    sink: PostgresSink::new,
}
