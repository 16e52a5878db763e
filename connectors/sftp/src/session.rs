//! Connecting to the SFTP server: the SSH login (host key pinned, `ferry_ssh::Login`),
//! then the SFTP channel; and one session kept for small requests.
//!
//! Everything here blocks; it runs on the blocking threads the `Store` is called on.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ferry_core::{Error, Result};
pub(crate) use ferry_ssh::is_link;
use ferry_ssh::{Fields, Login};
use ssh2::{MethodType, Session, Sftp};

/// An SFTP server and how to log in to it (validated, not yet connected).
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub login: Login,
}

/// A logged-in SFTP session. The `Session` is kept alive beside its channel (and opens
/// another for `posix-rename@openssh.com`).
pub(crate) struct Conn {
    pub sftp: Sftp,
    pub session: Session,
}

impl Server {
    /// The server a config's login fields name, validated without connecting.
    pub fn fields(fields: Fields<'_>, base_dir: &Path) -> Result<Server> {
        Ok(Server {
            login: fields.login(base_dir)?,
        })
    }

    /// `sftp://host:port`, for messages.
    pub fn url(&self) -> String {
        self.login.url()
    }

    /// `sftp://host/path` of a file, for the file column and receipts.
    pub fn location(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("{}{sep}{path}", self.url())
    }

    /// Connects and logs in.
    pub fn connect(&self) -> Result<Conn> {
        let (session, _) = self.login.connect()?;
        let sftp = session.sftp().map_err(|e| {
            self.error(e, "the server refused to start SFTP")
                .with("hint", "the account may be allowed shell access only; ask the client to enable SFTP for it")
        })?;
        Ok(Conn { sftp, session })
    }

    /// A session-level failure, with its kind.
    pub fn error(&self, e: ssh2::Error, what: &str) -> Error {
        self.login.error(e, what)
    }
}

impl Conn {
    /// The cipher negotiated (client to server), for the benchmark. (libssh2 prefers
    /// chacha20-poly1305, which it computes itself, whole packets at a time; its AES-GCM
    /// and AES-CTR call OpenSSL once per 16-byte block, which costs more CPU per byte.)
    pub fn cipher(&self) -> String {
        let cipher = self.session.methods(MethodType::CryptCs);
        cipher.unwrap_or("?").to_string()
    }
}

/// One session kept for listings and small requests, connected on first use and dropped
/// after a failure, so the next call reconnects.
pub(crate) struct Shared {
    pub server: Server,
    conn: Mutex<Option<Arc<Conn>>>,
}

impl Shared {
    pub fn new(server: Server) -> Shared {
        Shared {
            server,
            conn: Mutex::new(None),
        }
    }

    /// The kept session, connecting when there is none.
    pub fn conn(&self) -> Result<Arc<Conn>> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = Arc::new(self.server.connect()?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the kept session; a broken link is retried once on a new one.
    pub fn with<T>(
        &self,
        mut f: impl FnMut(&Sftp) -> std::result::Result<T, ssh2::Error>,
    ) -> Result<std::result::Result<T, ssh2::Error>> {
        let conn = self.conn()?;
        match f(&conn.sftp) {
            Err(e) if is_link(&e) => {
                self.forget();
                let conn = self.conn()?;
                Ok(f(&conn.sftp))
            }
            r => Ok(r),
        }
    }

    /// Drops the kept session (after a failure).
    pub fn forget(&self) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
