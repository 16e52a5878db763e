#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod source;

pub use config::AirbyteSourceConfig;
pub use source::AirbyteSource;

ferry_core::connector! {
    name: "airbyte",
    description: "any Airbyte source connector with a Python package (e.g. airbyte-source-faker), installed into a managed venv and run without Docker",
    source: |cfg, ctx| AirbyteSource::new(cfg, &ctx.base_dir),
}
