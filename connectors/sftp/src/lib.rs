#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bench;
pub mod config;
mod posix_rename;
mod publish;
mod remote;
mod session;
mod sink;
mod source;
mod upload;

use std::sync::Arc;

pub use config::{EncryptConfig, SftpSinkConfig, SftpSourceConfig, SftpStreamConfig};

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "sftp";

/// One line saying what the connector connects to, for `ferry connectors`.
const DESCRIPTION: &str = "CSV, JSON Lines and Parquet files on an SFTP server (read by glob pattern, delivered under a temp name then renamed: one file per stream replaced in one step, or a new file per run), optionally gzip/zstd-compressed and age- or OpenPGP-encrypted; reads Excel workbooks, zip/tar.gz archives and legacy encodings too; the server's host key pinned";

/// Adds the `sftp` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(NAME, DESCRIPTION)
            .with_source(|cfg: SftpSourceConfig, ctx| {
                Ok(Arc::new(source::source(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Source>)
            })
            .with_sink(|cfg: SftpSinkConfig, ctx| {
                Ok(Arc::new(sink::SftpSink::new(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Sink>)
            }),
    );
}
