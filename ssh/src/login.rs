//! Connecting: TCP, the SSH handshake (offering only the pinned key types), the host-key
//! check before any credential is sent, then the login (private key first, then
//! password).
//!
//! Everything here blocks: callers run it on blocking threads.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ferry_core::{Error, ErrorKind, Result, Secret};
use ssh2::{ErrorCode, MethodType, Session};

use crate::hostkey::{fingerprint, Pin};

/// The host-key algorithms a server may offer, in libssh2's order of preference.
const HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// An SSH server and how to log in to it (validated, not yet connected).
#[derive(Debug, Clone)]
pub struct Login {
    /// What the server is, in messages: `SFTP server`, `SSH tunnel host`.
    pub role: &'static str,
    /// The URL scheme of [`Login::url`]: `sftp`, `ssh`.
    pub scheme: &'static str,
    /// Host name or address.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Who logs in.
    pub user: String,
    /// The password, if any.
    pub password: Option<Secret>,
    /// The private key (OpenSSH or PEM text), if any; tried before the password.
    pub private_key: Option<Secret>,
    /// The private key's passphrase.
    pub private_key_passphrase: Option<Secret>,
    /// The host keys accepted.
    pub pin: Pin,
    /// How long connecting, and any one answer, may take.
    pub timeout_secs: u64,
}

impl Login {
    /// `scheme://host:port` (no port when 22), for messages.
    pub fn url(&self) -> String {
        if self.port == 22 {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    /// Connects and logs in; returns the session and the presented key's fingerprint.
    pub fn connect(&self) -> Result<(Session, String)> {
        let timeout = Duration::from_secs(self.timeout_secs);
        let tcp = self.tcp(timeout)?;
        let mut session = Session::new().map_err(|e| self.error(e, "cannot start SSH"))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
        // offer only the pinned key types, so the server presents the pinned key
        let accepted = self.pin.accepted(&self.host, self.port)?;
        let mut algorithms: Vec<&str> = Vec::new();
        for a in HOST_KEY_ALGORITHMS {
            let fits = accepted.iter().any(|k| match k.algorithm.as_str() {
                // an RSA key signs with any of the RSA algorithms
                "ssh-rsa" => a.contains("rsa"),
                other => other == *a,
            });
            if fits {
                algorithms.push(a);
            }
        }
        if !algorithms.is_empty() {
            session
                .method_pref(MethodType::HostKey, &algorithms.join(","))
                .map_err(|e| self.error(e, "cannot choose the host-key algorithms"))?;
        }
        session.handshake().map_err(|e| {
            self.error(e, "the SSH handshake failed")
                .with("hint", "check `host` and `port` name an SSH server")
        })?;
        let (presented, _) = session
            .host_key()
            .ok_or_else(|| Error::new(ErrorKind::Unreachable, "the server sent no host key"))?;
        self.pin
            .verify(self.role, &self.host, self.port, presented)?;
        let fingerprint = fingerprint(presented);
        self.login(&session)?;
        Ok((session, fingerprint))
    }

    fn tcp(&self, timeout: Duration) -> Result<TcpStream> {
        let unreachable = |why: String| {
            Error::new(
                ErrorKind::Unreachable,
                format!("cannot reach the {} {}: {why}", self.role, self.url()),
            )
        };
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve `{}` ({e})", self.host)))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(unreachable(last.map_or_else(
            || "the name has no address".to_string(),
            |e| e.to_string(),
        )))
    }

    /// Logs in with the key, then the password; says which were refused.
    fn login(&self, session: &Session) -> Result<()> {
        let mut refused = Vec::new();
        if let Some(key) = &self.private_key {
            let passphrase = self.private_key_passphrase.as_ref().map(Secret::expose);
            match session.userauth_pubkey_memory(&self.user, None, key.expose(), passphrase) {
                Ok(()) if session.authenticated() => return Ok(()),
                Ok(()) => refused.push("its private key".to_string()),
                // -16: the key could not be read; -48: its passphrase is wrong
                Err(e) if matches!(e.code(), ErrorCode::Session(-16 | -48)) => {
                    let why = if passphrase.is_some() {
                        "`private_key` cannot be read: its passphrase (`private_key_passphrase`) is wrong, or it is not an OpenSSH or PEM private key"
                    } else {
                        "`private_key` cannot be read: it is not an OpenSSH or PEM private key, or it has a passphrase (set `private_key_passphrase`)"
                    };
                    return Err(Error::config(why).with("server", self.url()));
                }
                Err(e) if is_refusal(&e) => refused.push("its private key".to_string()),
                Err(e) => return Err(self.error(e, "the key login failed")),
            }
        }
        if let Some(password) = &self.password {
            match session.userauth_password(&self.user, password.expose()) {
                Ok(()) if session.authenticated() => return Ok(()),
                Ok(()) => refused.push("its password".to_string()),
                Err(e) if is_refusal(&e) => refused.push("its password".to_string()),
                Err(e) => return Err(self.error(e, "the password login failed")),
            }
        }
        let methods = session
            .auth_methods(&self.user)
            .map(str::to_string)
            .unwrap_or_default();
        Err(Error::new(
            ErrorKind::AuthFailed,
            format!(
                "the {} {} refused user `{}` with {}: check `user` and the secret behind it{}",
                self.role,
                self.url(),
                self.user,
                refused.join(" and "),
                if methods.is_empty() {
                    String::new()
                } else {
                    format!(" (the server accepts: {methods})")
                }
            ),
        ))
    }

    /// A session-level failure, with its kind.
    pub fn error(&self, e: ssh2::Error, what: &str) -> Error {
        let kind = match e.code() {
            // timeouts, socket and protocol failures: the link, not the request
            ErrorCode::Session(-9 | -7 | -43 | -13 | -5 | -8 | -2 | -1 | -37) => {
                ErrorKind::Unreachable
            }
            ErrorCode::Session(-18 | -19) => ErrorKind::AuthFailed,
            ErrorCode::SFTP(2 | 10) => ErrorKind::NotFound,
            ErrorCode::SFTP(3) => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{what} on {}: {}", self.url(), e.message()))
    }
}

/// Whether a login call failed because the server said no (not because the link broke).
fn is_refusal(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::Session(-18 | -19))
}

/// Whether an error means the link broke (so a new session may succeed).
pub fn is_link(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::Session(_))
}
