//! The `[source]` and `[destination]` sections of `type = "sftp"`.
//!
//! Validation here is pure (nothing is connected to): the server's address, that a way to
//! log in and a host-key pin are given, the format fields. The server is reached only by
//! `check`, `discover`, `read` and `open`.

use std::path::Path;

use ferry_core::{Result, Secret};
use ferry_filestore::StreamSpec;
use ferry_formats::codec::{Compression, WriteOptions};

pub use ferry_filestore::{EncryptConfig, StreamConfig as SftpStreamConfig};

use crate::session::Server;
use ferry_ssh::Fields;

fn default_port() -> u16 {
    22
}

fn default_timeout() -> u64 {
    30
}

ferry_filestore::server_config! {
    /// The login fields both sections have.
    struct Login {
        /// The server's host name or IP address, e.g. `sftp.acme.example` (required).
        pub host: String,
        /// The server's SSH port (default 22).
        #[serde(default = "default_port")]
        pub port: u16,
        /// The user to log in as, e.g. `ferry` (required).
        pub user: String,
        /// The user's password, as a reference: `"${secret:acme_sftp_password}"` (default:
        /// none; set this and/or `private_key`).
        #[serde(default)]
        pub password: Option<Secret>,
        /// The user's private key (OpenSSH `BEGIN OPENSSH PRIVATE KEY` or PEM format), as a
        /// reference: `"${secret:acme_sftp_key}"` or `"${file:keys/id_ed25519}"` (default: none;
        /// set this and/or `password`; tried first when both are set).
        #[serde(default)]
        pub private_key: Option<Secret>,
        /// The passphrase of `private_key` when it has one, as a reference (default: none).
        #[serde(default)]
        pub private_key_passphrase: Option<Secret>,
        /// The server's public host key as `ssh-keyscan` or the server's
        /// `/etc/ssh/ssh_host_*_key.pub` prints it, e.g. `"ssh-ed25519 AAAAC3Nz…"`; a server
        /// presenting any other key is refused (default: none; set this or `known_hosts`).
        #[serde(default)]
        pub host_key: Option<String>,
        /// A known_hosts file (OpenSSH format, hashed names allowed) holding the server's key,
        /// relative to the config file's folder, e.g. `"keys/known_hosts"` (default: none; set
        /// this or `host_key`).
        #[serde(default)]
        pub known_hosts: Option<String>,
        /// Seconds to wait for the server to connect or answer before the run fails
        /// (default 30).
        #[serde(default = "default_timeout")]
        pub timeout_secs: u64,
    }

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

impl Login {
    /// The server, validated without connecting (`ferry_ssh` checks the login and the pin).
    fn server(&self, base_dir: &Path) -> Result<Server> {
        Server::fields(
            Fields {
                role: "SFTP server",
                scheme: "sftp",
                prefix: "",
                host: &self.host,
                port: self.port,
                user: &self.user,
                password: &self.password,
                private_key: &self.private_key,
                private_key_passphrase: &self.private_key_passphrase,
                host_key: &self.host_key,
                known_hosts: &self.known_hosts,
                timeout_secs: self.timeout_secs,
            },
            base_dir,
        )
    }
}

impl SftpSourceConfig {
    /// The server this source reads from.
    pub(crate) fn server(&self, base_dir: &Path) -> Result<Server> {
        Login::from(self).server(base_dir)
    }

    /// Checks the fields fit together and resolves defaults, without connecting.
    pub(crate) fn specs(&self) -> Result<Vec<StreamSpec>> {
        self.options().specs("file")
    }
}

impl SftpSinkConfig {
    /// The server this destination writes to.
    pub(crate) fn server(&self, base_dir: &Path) -> Result<Server> {
        Login::from(self).server(base_dir)
    }

    /// How files are written.
    pub(crate) fn write_options(&self) -> Result<(WriteOptions, Compression)> {
        let (csv, parquet) = (self.csv()?, self.parquet()?);
        Ok((WriteOptions { csv, parquet }, self.compression))
    }
}
