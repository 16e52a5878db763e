#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
pub mod data;
pub mod source;

pub use config::{GenerateColumn, GenerateConfig, GenerateStream, Kind, Preset};
pub use source::GenerateSource;

ferry_core::connector! {
    name: "generate",
    description: "deterministic fake data (users, orders, bench or your own columns) for trials, tests and benchmarks",
    source: |cfg, _| GenerateSource::new(cfg),
}
