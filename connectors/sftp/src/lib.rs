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

pub use config::{EncryptConfig, SftpSinkConfig, SftpSourceConfig, SftpStreamConfig};

ferry_core::connector! {
    name: "sftp",
    description: "CSV, JSON Lines and Parquet files on an SFTP server (read by glob pattern, delivered under a temp name then renamed: one file per stream replaced in one step, or a new file per run), optionally gzip/zstd-compressed and age- or OpenPGP-encrypted; reads Excel workbooks, zip/tar.gz archives and legacy encodings too; the server's host key pinned",
    source: |cfg: SftpSourceConfig, ctx| source::source(cfg, &ctx.base_dir),
    sink: |cfg: SftpSinkConfig, ctx| sink::SftpSink::new(cfg, &ctx.base_dir),
}
