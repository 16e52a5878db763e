#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
pub mod data;
pub mod source;

pub use config::{GenerateColumn, GenerateConfig, GenerateStream, Kind, Preset};
pub use source::GenerateSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "generate";

/// Adds the `generate` source to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(
            NAME,
            "deterministic fake data (users, orders, bench or your own columns) for trials, tests and benchmarks",
        )
        .with_source(|cfg: GenerateConfig, _ctx| GenerateSource::new(cfg)),
    );
}
