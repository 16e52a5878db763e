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

ferry_core::connector! {
    name: "singer",
    description: "any Singer tap (source) or target (destination), installed from PyPI into a managed venv and run unchanged",
    source: |cfg, ctx| SingerSource::new(cfg, &ctx.base_dir),
    sink: |cfg, ctx| SingerSink::new(cfg, &ctx.base_dir),
}
