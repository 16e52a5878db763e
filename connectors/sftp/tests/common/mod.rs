//! The kit's sshd (a real OpenSSH server on a free loopback port) and the connector built
//! from TOML against it.

#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Result, Sink, Source};

pub use ferry_testkit::sftp_server::{give_to_user, KeyKind, SftpServer, UserKey, PASSWORD, USER};

/// The `[source]`/`[destination]` lines that log in to `server` with its password and
/// its pinned host key, then `rest`.
pub fn login(server: &SftpServer, rest: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nhost_key = \"{}\"\n{rest}",
        server.port(),
        server.host_key()
    )
}

pub fn source(toml: &str) -> Result<Arc<dyn Source>> {
    source_at(toml, Path::new("."))
}

/// A source whose relative local paths (`known_hosts`) are under `base`.
pub fn source_at(toml: &str, base: &Path) -> Result<Arc<dyn Source>> {
    ferry_testkit::source_from_toml(ferry_connector_sftp::register, "sftp", toml, base)
}

pub fn sink(toml: &str) -> Result<Arc<dyn Sink>> {
    ferry_testkit::sink_from_toml(ferry_connector_sftp::register, "sftp", toml, ".")
}

/// Files (hidden ones included) in `dir`, sorted.
pub use ferry_testkit::names;
