//! `tunnel = { … }`: the SSH tunnel a database connector connects through.

use std::path::Path;

use ferry_core::{Error, Result};

use crate::tunnel::Tunnel;

fn default_keepalive() -> u32 {
    15
}

crate::login_config! {
    ferry_core::config_struct;
    role: "SSH tunnel host",
    scheme: "ssh",
    prefix: "tunnel.",
    example: "bastion.acme.example",
    secret: "acme_bastion",
    /// Reach the database through an SSH tunnel (a bastion host), as `ssh -L` would:
    /// `tunnel = { host = "bastion.acme.example", user = "ferry", private_key = "${secret:acme_bastion_key}", host_key = "ssh-ed25519 AAAA…" }`.
    /// Every connection Ferry opens (parallel reads included) goes through one SSH session;
    /// `host` and `port` of the database are then as the tunnel host sees them. The tunnel
    /// host's key must be pinned (`host_key` or `known_hosts`): a host presenting another
    /// key is refused before any credential is sent.
    pub struct TunnelConfig {
        /// Seconds between keepalives on an idle session; a session that answers none for
        /// three intervals is given up and reopened (default 15; 0 turns them off).
        #[serde(default = "default_keepalive")]
        pub keepalive_secs: u32,
    }
}

impl TunnelConfig {
    /// The tunnel to `host:port` (the database, as the SSH host sees it), validated
    /// without connecting; `known_hosts` is relative to `base_dir`.
    pub fn tunnel(&self, base_dir: &Path, host: &str, port: u16) -> Result<Tunnel> {
        let login = self.ssh_fields().login(base_dir)?;
        if host.contains('/') {
            return Err(Error::config(
                "a database reached through `tunnel` is named by host and port, not a socket path",
            ));
        }
        Ok(Tunnel::new(login, host, port, self.keepalive_secs))
    }
}
