#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod archive;
mod client;
pub mod config;
mod error;
mod journal;
mod object;
mod sink;
mod source;
mod upload;
mod verify;

use std::sync::Arc;

pub use config::{EncryptConfig, S3SinkConfig, S3SourceConfig, S3StreamConfig};

/// The connector's name, the `type` written in `sync.toml`.
pub const NAME: &str = "s3";

/// One line saying what the connector connects to, for `ferry connectors`.
const DESCRIPTION: &str = "Objects in Amazon S3 or an S3-compatible store (MinIO, Ceph, R2, GCS): CSV, JSON Lines and Parquet, compressed, optionally age- or OpenPGP-encrypted, plus Excel workbooks and zip/tar.gz archives; read by key pattern, written by multipart upload";

/// Adds the `s3` source and destination to `registry`.
pub fn register(registry: &mut ferry_core::Registry) {
    registry.add(
        ferry_core::ConnectorDef::new(NAME, DESCRIPTION)
            .with_source(|cfg: S3SourceConfig, ctx| {
                Ok(Arc::new(source::source(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Source>)
            })
            .with_sink(|cfg: S3SinkConfig, ctx| {
                Ok(Arc::new(sink::S3Sink::new(cfg, &ctx.base_dir)?) as Arc<dyn ferry_core::Sink>)
            }),
    );
}
