//! An SSH tunnel: a listener on 127.0.0.1 whose connections are forwarded through one
//! SSH session's `direct-tcpip` channels to a database's host and port, as `ssh -L` does.
//!
//! libssh2 locks its session for every call, so a channel blocked in a read would stall
//! all others: one thread pumps every channel with the session in non-blocking mode
//! ([`crate::pump`]). The session is opened on first use and again after it died (the
//! connector's retry policy repeats the connect that asked for it).

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ferry_core::{Error, ErrorKind, Result};

use crate::login::Login;
use crate::pump::{pump, Health, Target};

/// The tunnel's route, and the session when one is up.
#[derive(Debug)]
pub struct Tunnel {
    login: Login,
    target: Target,
    keepalive_secs: u32,
    running: Mutex<Option<Running>>,
}

/// A session and the thread pumping it.
#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    fingerprint: String,
    health: Arc<Health>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.health.stop.store(true, Ordering::Relaxed);
    }
}

/// Where a connector connects instead of the database, and through what.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The local end: `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// The tunnel host's key fingerprint (`SHA256:…`), checked against the pin.
    pub fingerprint: String,
}

impl Tunnel {
    /// A tunnel through `login` to `host:port` (as the tunnel host resolves it), with
    /// keepalives every `keepalive_secs`. Nothing is connected yet.
    pub fn new(login: Login, host: &str, port: u16, keepalive_secs: u32) -> Tunnel {
        Tunnel {
            target: Target {
                host: host.to_string(),
                port,
                timeout_secs: login.timeout_secs,
            },
            login,
            keepalive_secs,
            running: Mutex::new(None),
        }
    }

    /// `ssh://user@host:port`, for messages.
    pub fn url(&self) -> String {
        self.login.url()
    }

    /// One line for `ferry check`: `tunnel ssh://bastion:2222 to db:5432, host key SHA256:… ok`.
    pub fn describe(&self, opened: &Opened) -> String {
        format!(
            "tunnel {} to {}:{}, host key {} ok",
            self.url(),
            self.target.host,
            self.target.port,
            opened.fingerprint
        )
    }

    /// [`Tunnel::describe`] of the session up now, if one is.
    pub fn status(&self) -> Option<String> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let r = running
            .as_ref()
            .filter(|r| r.health.alive.load(Ordering::Relaxed))?;
        Some(self.describe(&Opened {
            addr: r.addr,
            fingerprint: r.fingerprint.clone(),
        }))
    }

    /// The local address to connect to, opening the SSH session when none is up (or the
    /// last one died). Blocks: call it from a blocking thread, or use [`Tunnel::open_async`].
    pub fn open(&self) -> Result<Opened> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running
            .as_ref()
            .filter(|r| r.health.alive.load(Ordering::Relaxed))
        {
            return Ok(Opened {
                addr: r.addr,
                fingerprint: r.fingerprint.clone(),
            });
        }
        *running = None;
        let (session, fingerprint) = self.login.connect().map_err(|e| self.named(e))?;
        session.set_keepalive(true, self.keepalive_secs);
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io(e, "cannot open the tunnel's local port", "127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(e, "cannot open the tunnel's local port", "127.0.0.1:0"))?;
        let health = Arc::new(Health::new());
        let target = self.target.clone();
        let (h, url) = (health.clone(), self.url());
        let keepalive = self.keepalive_secs;
        std::thread::Builder::new()
            .name("ferry-ssh-tunnel".into())
            .spawn(move || pump(session, listener, &target, keepalive, &h, &url))
            .map_err(|e| Error::internal(format!("cannot start the tunnel's thread: {e}")))?;
        tracing::debug!("tunnel {} up on {addr}", self.url());
        *running = Some(Running {
            addr,
            fingerprint: fingerprint.clone(),
            health,
        });
        Ok(Opened { addr, fingerprint })
    }

    /// [`Tunnel::open`] on a blocking thread.
    pub async fn open_async(self: &Arc<Self>) -> Result<Opened> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.open())
            .await
            .map_err(|e| Error::internal(format!("the tunnel's connect panicked: {e}")))?
    }

    /// Why the last session died, while no new one has been opened: a connector adds it
    /// to the error of a connection that ended with it (`the SSH tunnel … was lost: …`).
    pub fn lost(&self) -> Option<String> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let r = running
            .as_ref()
            .filter(|r| !r.health.alive.load(Ordering::Relaxed))?;
        let why = r
            .health
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(format!("the SSH tunnel {} was lost: {why}", self.url()))
    }

    /// Closes the session (the next [`Tunnel::open`] opens a new one); connections
    /// through it end.
    pub fn close(&self) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// `e` saying it happened on the tunnel.
    fn named(&self, e: Error) -> Error {
        let kind = e.kind();
        let mut out = Error::new(kind, format!("SSH tunnel: {}", e.message()));
        for (k, v) in e.context() {
            out = out.with(k, v);
        }
        if kind == ErrorKind::Unreachable {
            out = out.with(
                "hint",
                "check `tunnel.host` and `tunnel.port` name the SSH host (bastion) the client gave",
            );
        }
        out.with("tunnel", self.url())
    }
}
