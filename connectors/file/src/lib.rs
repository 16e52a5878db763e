#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod config;
mod sink;
mod source;

pub use config::{EncryptConfig, FileSinkConfig, FileSourceConfig, FileStreamConfig};

ferry_core::connector! {
    name: "file",
    description: "CSV, JSON Lines and Parquet files in a local folder (read by glob pattern, written one file per stream), optionally gzip/zstd-compressed and age- or OpenPGP-encrypted; reads Excel workbooks, zip/tar.gz archives and legacy encodings too",
    source: |cfg: FileSourceConfig, ctx| source::source(cfg, &ctx.base_dir),
    sink: |cfg: FileSinkConfig, ctx| sink::FileSink::new(cfg, &ctx.base_dir),
}
