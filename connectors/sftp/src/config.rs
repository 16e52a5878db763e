//! The `[source]` and `[destination]` sections of `type = "sftp"`.
//!
//! Validation here is pure (nothing is connected to): the server's address, that a way to
//! log in and a host-key pin are given, the format fields. The server is reached only by
//! `check`, `discover`, `read` and `open`.

use std::path::Path;

use ferry_core::Result;
use ferry_filestore::StreamSpec;
use ferry_formats::codec::{Compression, WriteOptions};

pub use ferry_filestore::{EncryptConfig, StreamConfig as SftpStreamConfig};

use crate::session::Server;

ferry_ssh::login_config! {
    ferry_filestore::server_config;
    role: "SFTP server",
    scheme: "sftp",
    prefix: "",
    example: "sftp.acme.example",
    secret: "acme_sftp",
    /// The login fields both sections have.
    struct Login {}

    source {
        /// `[source] type = "sftp"`: CSV, JSON Lines, Parquet or Excel files on an SFTP server
        /// (or inside `.zip`/`.tar.gz` archives there), each optionally gzip- or
        /// zstd-compressed and/or age- or OpenPGP-encrypted.
        ///
        /// ```toml
        /// [source]
        /// type = "sftp"
        /// host = "sftp.acme.example"
        /// user = "ferry"
        /// private_key = "${secret:acme_sftp_key}"
        /// host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…"
        /// path = "outgoing/orders_*.csv"
        /// ```
        ///
        /// Give either `path` (one stream) or `streams` (several). The server's host key must be
        /// pinned (`host_key` or `known_hosts`): a server presenting another key is refused.
        pub struct SftpSourceConfig {
            noun: "file",
            path: "A file or glob pattern on the server (`orders.csv`, `outgoing/orders_*.csv`, `outgoing/**/*.jsonl`), relative to the folder the server logs the user into, or absolute; all matching files form one stream. Set this or `streams` (no default).",
            file_column: "as `sftp://host/path`",
            after_read: "A file changed since it was read (another size or modification time) is left in place and read again next run; a file that cannot be moved or deleted (no permission on the archive folder …) is a warning in the run summary, naming it; the run still succeeds.",
            archive_to: "",
        }
    }

    sink {
        /// `[destination] type = "sftp"`: one CSV, JSON Lines or Parquet file per stream in a
        /// folder on an SFTP server, optionally compressed and/or age-encrypted.
        ///
        /// ```toml
        /// [destination]
        /// type = "sftp"
        /// host = "sftp.acme.example"
        /// user = "ferry"
        /// private_key = "${secret:acme_sftp_key}"
        /// host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…"
        /// path = "incoming"
        /// ```
        ///
        /// Each file is uploaded under a temporary name (`.<name>.<run id>.tmp`) and renamed to
        /// its final name only once complete, so the client never picks up half a file.
        pub struct SftpSinkConfig {
            noun: "file",
            compression: "",
            header: "",
            encrypt: " Files are then named `<stream>.<ext>.age` (or `.gpg`).",
            /// Folder on the server, relative to the login folder or absolute; created when
            /// missing (required). Stream `s` is written to `<path>/s.csv` (plus `.gz` / `.zst`
            /// and `.age` as configured).
            pub path: String,
        }
    }
}

impl SftpSourceConfig {
    /// The server this source reads from.
    pub(crate) fn server(&self, base_dir: &Path) -> Result<Server> {
        Server::fields(Login::from(self).ssh_fields(), base_dir)
    }

    /// Checks the fields fit together and resolves defaults, without connecting.
    pub(crate) fn specs(&self) -> Result<Vec<StreamSpec>> {
        self.options().specs("file")
    }
}

impl SftpSinkConfig {
    /// The server this destination writes to.
    pub(crate) fn server(&self, base_dir: &Path) -> Result<Server> {
        Server::fields(Login::from(self).ssh_fields(), base_dir)
    }

    /// How files are written.
    pub(crate) fn write_options(&self) -> Result<(WriteOptions, Compression)> {
        let (csv, parquet) = (self.csv()?, self.parquet()?);
        Ok((WriteOptions { csv, parquet }, self.compression))
    }
}
