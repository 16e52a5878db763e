#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod sink;
mod source;

use std::sync::Arc;

pub use config::{EncryptConfig, FileSinkConfig, FileSourceConfig, FileStreamConfig};

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "file";

/// One line saying what the connector connects to, for `ferry connectors`.
const DESCRIPTION: &str =
    "CSV, JSON Lines and Parquet files in a local folder (read by glob pattern, written one file per stream), optionally gzip/zstd-compressed and age- or OpenPGP-encrypted; reads Excel workbooks, zip/tar.gz archives and legacy encodings too";

/// Adds the `file` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(NAME, DESCRIPTION)
            .with_source(|cfg: FileSourceConfig, ctx| {
                Ok(Arc::new(source::source(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Source>)
            })
            .with_sink(|cfg: FileSinkConfig, ctx| {
                Ok(Arc::new(sink::FileSink::new(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Sink>)
            }),
    );
}
