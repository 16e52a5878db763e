//! The login fields an SSH server's config has (`host`, `port`, `user`, `password`,
//! `private_key`, `private_key_passphrase`, `host_key`, `known_hosts`, `timeout_secs`),
//! checked into a [`Login`] without connecting.

use std::path::Path;

use ferry_core::{Error, Result, Secret};

use crate::hostkey::Pin;
use crate::login::Login;

/// The fields as written, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// What the server is, in messages: `SFTP server`.
    pub role: &'static str,
    /// URL scheme in messages: `sftp`.
    pub scheme: &'static str,
    /// Prefix of the field names in messages: `` or `tunnel.`.
    pub prefix: &'static str,
    /// `host`.
    pub host: &'a str,
    /// `port`.
    pub port: u16,
    /// `user`.
    pub user: &'a str,
    /// `password`.
    pub password: &'a Option<Secret>,
    /// `private_key`.
    pub private_key: &'a Option<Secret>,
    /// `private_key_passphrase`.
    pub private_key_passphrase: &'a Option<Secret>,
    /// `host_key`.
    pub host_key: &'a Option<String>,
    /// `known_hosts`.
    pub known_hosts: &'a Option<String>,
    /// `timeout_secs`.
    pub timeout_secs: u64,
}

impl Fields<'_> {
    /// The login, validated without connecting (`known_hosts` relative to `base_dir`).
    pub fn login(&self, base_dir: &Path) -> Result<Login> {
        let (role, p) = (self.role, self.prefix);
        let host = self.host.trim();
        if host.is_empty() {
            return Err(Error::config(format!("`{p}host` (the {role}) is empty")));
        }
        if self.user.trim().is_empty() {
            return Err(Error::config(format!(
                "`{p}user` (who logs in to the {role}) is empty"
            )));
        }
        if self.port == 0 {
            return Err(Error::config(format!(
                "`{p}port` is 0; SSH listens on 22 by default"
            )));
        }
        if self.password.is_none() && self.private_key.is_none() {
            return Err(Error::config(format!(
                "no way to log in to the {role}: set `{p}password = \"${{secret:…}}\"` or `{p}private_key = \"${{secret:…}}\"`"
            )));
        }
        if self.private_key_passphrase.is_some() && self.private_key.is_none() {
            return Err(Error::config(format!(
                "`{p}private_key_passphrase` is set without `{p}private_key`"
            )));
        }
        if self.timeout_secs == 0 {
            return Err(Error::config(format!(
                "`{p}timeout_secs` must be at least 1"
            )));
        }
        let pin = Pin::new(
            self.host_key.as_deref(),
            self.known_hosts.as_deref(),
            base_dir,
            role,
        )?;
        Ok(Login {
            role,
            scheme: self.scheme,
            host: host.to_string(),
            port: self.port,
            user: self.user.to_string(),
            password: self.password.clone(),
            private_key: self.private_key.clone(),
            private_key_passphrase: self.private_key_passphrase.clone(),
            pin,
            timeout_secs: self.timeout_secs,
        })
    }
}
