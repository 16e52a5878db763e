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

/// The defaults of the login fields, for the expansion of [`login_config!`](crate::login_config).
#[doc(hidden)]
pub mod defaults {
    /// SSH's port.
    pub fn port() -> u16 {
        22
    }

    /// Seconds connecting and logging in may take.
    pub fn timeout_secs() -> u64 {
        30
    }
}

/// Declares a config struct whose first fields are an SSH login (`host`, `port`, `user`,
/// `password`, `private_key`, `private_key_passphrase`, `host_key`, `known_hosts`,
/// `timeout_secs`, with their docs), followed by its own, through `$then!`
/// (`ferry_core::config_struct`, or `ferry_filestore::server_config` with its sections
/// after the struct); and the struct's `ssh_fields()`, the [`Fields`] they make.
///
/// `role` names the server in docs and messages (`SFTP server`), `scheme` in URLs,
/// `prefix` the fields in messages (`tunnel.`); `example` (a host name) and `secret` (the
/// stem of secret names, `acme_sftp`) are for the docs. The crate needs `ferry-ssh`,
/// `ferry-core`, `serde` and `schemars` as dependencies.
#[macro_export]
macro_rules! login_config {
    (
        $($then:ident)::+;
        role: $role:literal,
        scheme: $scheme:literal,
        prefix: $prefix:literal,
        example: $example:literal,
        secret: $secret:literal,
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($own:tt)* }
        $($rest:tt)*
    ) => {
        $($then)::+! {
            $(#[$meta])*
            $vis struct $name {
                #[doc = concat!("Host name or IP address of the ", $role, ", e.g. `", $example, "` (required).")]
                pub host: String,
                #[doc = concat!("SSH port of the ", $role, " (default 22).")]
                #[serde(default = "ferry_ssh::defaults::port")]
                pub port: u16,
                /// The user to log in as, e.g. `ferry` (required).
                pub user: String,
                #[doc = concat!("The user's password, as a reference: `\"${secret:", $secret, "_password}\"` (default: none; set this and/or `private_key`).")]
                #[serde(default)]
                pub password: Option<::ferry_core::Secret>,
                #[doc = concat!("The user's private key (OpenSSH `BEGIN OPENSSH PRIVATE KEY` or PEM format), as a reference: `\"${secret:", $secret, "_key}\"` or `\"${file:keys/id_ed25519}\"` (default: none; set this and/or `password`; tried first when both are set).")]
                #[serde(default)]
                pub private_key: Option<::ferry_core::Secret>,
                /// The passphrase of `private_key` when it has one, as a reference (default: none).
                #[serde(default)]
                pub private_key_passphrase: Option<::ferry_core::Secret>,
                #[doc = concat!("The ", $role, "'s public host key as `ssh-keyscan` or its `/etc/ssh/ssh_host_*_key.pub` prints it, e.g. `\"ssh-ed25519 AAAAC3Nz…\"`; any other key it presents is refused (default: none; set this or `known_hosts`).")]
                #[serde(default)]
                pub host_key: Option<String>,
                #[doc = concat!("A known_hosts file (OpenSSH format, hashed names allowed) holding the ", $role, "'s key, relative to the config file's folder, e.g. `\"keys/known_hosts\"` (default: none; set this or `host_key`).")]
                #[serde(default)]
                pub known_hosts: Option<String>,
                #[doc = concat!("Seconds connecting and logging in to the ", $role, ", or waiting for it to answer, may take before the run fails (default 30).")]
                #[serde(default = "ferry_ssh::defaults::timeout_secs")]
                pub timeout_secs: u64,
                $($own)*
            }
            $($rest)*
        }

        impl $name {
            /// The login fields, borrowed, to be checked into a login.
            pub fn ssh_fields(&self) -> $crate::Fields<'_> {
                $crate::Fields {
                    role: $role,
                    scheme: $scheme,
                    prefix: $prefix,
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
            }
        }
    };
}
