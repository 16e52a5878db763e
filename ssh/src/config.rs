//! `tunnel = { … }`: the SSH tunnel a database connector connects through.

use std::path::Path;

use ferry_core::{Error, Result, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::fields::Fields;
use crate::tunnel::Tunnel;

fn default_port() -> u16 {
    22
}

fn default_keepalive() -> u32 {
    15
}

fn default_timeout() -> u64 {
    30
}

/// Reach the database through an SSH tunnel (a bastion host), as `ssh -L` would:
/// `tunnel = { host = "bastion.acme.example", user = "ferry", private_key = "${secret:acme_bastion_key}", host_key = "ssh-ed25519 AAAA…" }`.
/// Every connection Ferry opens (parallel reads included) goes through one SSH session;
/// `host` and `port` of the database are then as the tunnel host sees them. The tunnel
/// host's key must be pinned (`host_key` or `known_hosts`): a host presenting another
/// key is refused before any credential is sent.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelConfig {
    /// The SSH host's name or IP address, e.g. `bastion.acme.example` (required).
    pub host: String,
    /// The SSH port (default 22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The user to log in as (required).
    pub user: String,
    /// The user's password, as a reference: `"${secret:acme_bastion_password}"` (default:
    /// none; set this and/or `private_key`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The user's private key (OpenSSH or PEM format), as a reference:
    /// `"${secret:acme_bastion_key}"` (default: none; set this and/or `password`; tried
    /// first when both are set).
    #[serde(default)]
    pub private_key: Option<Secret>,
    /// The passphrase of `private_key` when it has one, as a reference (default: none).
    #[serde(default)]
    pub private_key_passphrase: Option<Secret>,
    /// The SSH host's public key as `ssh-keyscan` prints it, e.g. `"ssh-ed25519 AAAAC3Nz…"`;
    /// a host presenting any other key is refused (default: none; set this or
    /// `known_hosts`).
    #[serde(default)]
    pub host_key: Option<String>,
    /// A known_hosts file (OpenSSH format, hashed names allowed) holding the host's key,
    /// relative to the config file's folder (default: none; set this or `host_key`).
    #[serde(default)]
    pub known_hosts: Option<String>,
    /// Seconds between keepalives on an idle session; a session that answers none for
    /// three intervals is given up and reopened (default 15; 0 turns them off).
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u32,
    /// Seconds connecting and logging in to the SSH host, or opening a forward, may take
    /// (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

impl TunnelConfig {
    /// The tunnel to `host:port` (the database, as the SSH host sees it), validated
    /// without connecting; `known_hosts` is relative to `base_dir`.
    pub fn tunnel(&self, base_dir: &Path, host: &str, port: u16) -> Result<Tunnel> {
        let login = Fields {
            role: "SSH tunnel host",
            scheme: "ssh",
            prefix: "tunnel.",
            host: &self.host,
            port: self.port,
            user: &self.user,
            password: &self.password,
            private_key: &self.private_key,
            private_key_passphrase: &self.private_key_passphrase,
            host_key: &self.host_key,
            known_hosts: &self.known_hosts,
            timeout_secs: self.timeout_secs,
        }
        .login(base_dir)?;
        if host.contains('/') {
            return Err(Error::config(
                "a database reached through `tunnel` is named by host and port, not a socket path",
            ));
        }
        Ok(Tunnel::new(login, host, port, self.keepalive_secs))
    }
}
