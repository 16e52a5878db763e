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

pub use config::{EncryptConfig, S3SinkConfig, S3SourceConfig, S3StreamConfig};

ferry_core::connector! {
    name: "s3",
    description: "Objects in Amazon S3 or an S3-compatible store (MinIO, Ceph, R2, GCS): CSV, JSON Lines and Parquet, compressed, optionally age- or OpenPGP-encrypted, plus Excel workbooks and zip/tar.gz archives; read by key pattern, written by multipart upload",
    source: |cfg: S3SourceConfig, ctx| source::source(cfg, &ctx.base_dir),
    sink: |cfg: S3SinkConfig, ctx| sink::S3Sink::new(cfg, &ctx.base_dir),
}
