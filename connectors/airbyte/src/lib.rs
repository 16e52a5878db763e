#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod source;

pub use config::AirbyteSourceConfig;
pub use source::AirbyteSource;

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "airbyte";

/// One line saying what the connector connects to, for `ferry connectors`.
const DESCRIPTION: &str =
    "any Airbyte source connector with a Python package (e.g. airbyte-source-faker), installed into a managed venv and run without Docker";

/// Adds the `airbyte` source to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(NAME, DESCRIPTION)
            .with_source(|cfg: AirbyteSourceConfig, ctx| AirbyteSource::new(cfg, &ctx.base_dir)),
    );
}
