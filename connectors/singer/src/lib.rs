#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod bridged;
pub mod config;
pub mod process;
pub mod rows;
pub mod schema;
mod sink;
mod source;
pub mod venv;

pub use bridged::BridgedConfig;
pub use config::{CatalogFlag, SingerSinkConfig, SingerSourceConfig};
pub use sink::SingerSink;
pub use source::SingerSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "singer";

/// One line saying what the connector connects to, for `ferry connectors`.
const DESCRIPTION: &str =
    "any Singer tap (source) or target (destination), installed from PyPI into a managed venv and run unchanged";

/// Adds the `singer` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(NAME, DESCRIPTION)
            .with_source(|cfg: SingerSourceConfig, ctx| SingerSource::new(cfg, &ctx.base_dir))
            .with_sink(|cfg: SingerSinkConfig, ctx| SingerSink::new(cfg, &ctx.base_dir)),
    );
}
