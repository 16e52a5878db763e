//! The tunnel's thread: accepts local connections, opens a `direct-tcpip` channel for
//! each, and moves bytes both ways, with the session in non-blocking mode. It sleeps in
//! `poll(2)` only after a pass over every link moved nothing (libssh2 may hold data it
//! already read from the socket, which a pass drains).
//!
//! When the session dies every local connection is closed (its driver sees the cut and
//! fails the stream with its resume point) and the tunnel is marked dead, so the next
//! connection opens a new session.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, ErrorCode, Session};

/// Bytes buffered per link and direction.
const BUF: usize = 64 * 1024;
/// Longest sleep, so a stopped tunnel notices soon.
const MAX_WAIT: Duration = Duration::from_millis(250);
/// How long a closing channel may take to close before it is dropped anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where the tunnel host forwards to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    /// How long opening a channel may take (the tunnel's `timeout_secs`).
    pub timeout_secs: u64,
}

/// Why a link or the whole session ends.
enum Fault {
    /// This connection only (the client went away, the forward was refused).
    Link(Option<String>),
    /// The session: every connection ends.
    Session(String),
}

/// Bytes read from one side, not yet written to the other.
struct Buf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// One forwarded connection.
struct Link {
    local: TcpStream,
    channel: Option<Channel>,
    accepted: Instant,
    /// Local → database.
    up: Buf,
    /// Database → local.
    down: Buf,
    local_eof: bool,
    eof_sent: bool,
    remote_eof: bool,
    local_shut: bool,
    /// Set once the link is over and its channel is being closed.
    closing: Option<Instant>,
}

/// What a step did.
#[derive(Default)]
struct Step {
    moved: bool,
    heard: bool,
}

impl Link {
    fn new(local: TcpStream) -> Link {
        Link {
            local,
            channel: None,
            accepted: Instant::now(),
            up: Buf::new(),
            down: Buf::new(),
            local_eof: false,
            eof_sent: false,
            remote_eof: false,
            local_shut: false,
            closing: None,
        }
    }

    /// Whether this link waits for the session to send something.
    fn reads_session(&self) -> bool {
        self.closing.is_none()
            && (self.channel.is_none() || (self.down.is_empty() && !self.remote_eof))
    }

    /// Whether the link is over (its channel closed, or given up on).
    fn finished(&mut self) -> bool {
        let Some(since) = self.closing else {
            return false;
        };
        match self.channel.as_mut() {
            None => true,
            Some(ch) => match ch.close() {
                Err(e) if would_block(&e) => since.elapsed() > CLOSE_WAIT,
                _ => true,
            },
        }
    }

    fn end(&mut self) {
        let _ = self.local.shutdown(Shutdown::Both);
        self.closing.get_or_insert_with(Instant::now);
    }

    /// Opens the link's channel (or finds it still opening).
    fn open(&mut self, session: &Session, target: &Target) -> Result<Step, Fault> {
        match session.channel_direct_tcpip(&target.host, target.port, None) {
            Ok(ch) => {
                self.channel = Some(ch);
                Ok(Step {
                    moved: true,
                    heard: true,
                })
            }
            Err(e) if would_block(&e) => {
                if self.accepted.elapsed().as_secs() >= target.timeout_secs {
                    return Err(Fault::Session(format!(
                        "the tunnel host did not open a channel to {}:{} within {} s",
                        target.host, target.port, target.timeout_secs
                    )));
                }
                Ok(Step::default())
            }
            Err(e) if session_fatal(&e) => Err(Fault::Session(e.message().to_string())),
            Err(e) => Err(Fault::Link(Some(format!(
                "the tunnel host did not forward a connection to {}:{} ({}): check the \
                 database's host and port as the tunnel host sees them, and that the SSH \
                 server allows TCP forwarding for this user",
                target.host,
                target.port,
                e.message()
            )))),
        }
    }

    /// Moves what can move without blocking.
    fn step(&mut self, session: &Session, target: &Target) -> Result<Step, Fault> {
        if self.channel.is_none() {
            return self.open(session, target);
        }
        let mut step = Step::default();
        let ch = self.channel.as_mut().expect("opened above");
        // database → local
        if self.down.is_empty() && !self.remote_eof {
            match ch.read(&mut self.down.data) {
                Ok(0) if ch.eof() => {
                    self.remote_eof = true;
                    step.moved = true;
                }
                Ok(0) => {}
                Ok(n) => {
                    self.down.end = n;
                    step.moved = true;
                    step.heard = true;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                Err(e) => return Err(channel_fault(e)),
            }
        }
        if !self.down.is_empty() {
            match self.local.write(self.down.pending()) {
                Ok(n) => {
                    self.down.consume(n);
                    step.moved = true;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                Err(_) => return Err(Fault::Link(None)),
            }
        }
        if self.remote_eof && self.down.is_empty() && !self.local_shut {
            let _ = self.local.shutdown(Shutdown::Write);
            self.local_shut = true;
            step.moved = true;
        }
        // local → database
        if self.up.is_empty() && !self.local_eof {
            match self.local.read(&mut self.up.data) {
                Ok(0) => {
                    self.local_eof = true;
                    step.moved = true;
                }
                Ok(n) => {
                    self.up.end = n;
                    step.moved = true;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                Err(_) => return Err(Fault::Link(None)),
            }
        }
        if !self.up.is_empty() {
            match ch.write(self.up.pending()) {
                Ok(n) => {
                    self.up.consume(n);
                    step.moved = true;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                Err(e) => return Err(channel_fault(e)),
            }
        }
        if self.local_eof && self.up.is_empty() && !self.eof_sent {
            match ch.send_eof() {
                Ok(()) => {
                    self.eof_sent = true;
                    step.moved = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) if session_fatal(&e) => return Err(Fault::Session(e.message().into())),
                Err(_) => return Err(Fault::Link(None)),
            }
        }
        if self.eof_sent && self.local_shut {
            self.end();
        }
        Ok(step)
    }
}

fn would_block(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::Session(-37))
}

/// Failures of the session's socket or protocol (not of one channel).
fn session_fatal(e: &ssh2::Error) -> bool {
    // socket none/send/recv/disconnect, timeout, protocol, banner, key exchange, decrypt
    matches!(
        e.code(),
        ErrorCode::Session(-1 | -2 | -5 | -7 | -9 | -12 | -13 | -14 | -43)
    )
}

/// A channel read or write failure: the session's or this link's.
fn channel_fault(e: std::io::Error) -> Fault {
    match e.get_ref().and_then(|i| i.downcast_ref::<ssh2::Error>()) {
        Some(s) if session_fatal(s) => Fault::Session(s.message().to_string()),
        Some(s) => Fault::Link(Some(s.message().to_string())),
        None => Fault::Session(e.to_string()),
    }
}

/// What the tunnel and its pump share: whether the session lives, why it died, and the
/// request to stop.
#[derive(Debug)]
pub(crate) struct Health {
    /// Cleared by the pump when the session died.
    pub alive: AtomicBool,
    /// Set to stop the pump.
    pub stop: AtomicBool,
    /// Why the session died, set before `alive` is cleared.
    pub lost: Mutex<Option<String>>,
}

impl Health {
    pub fn new() -> Health {
        Health {
            alive: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            lost: Mutex::new(None),
        }
    }
}

/// Runs the tunnel until `stop` is set or the session dies (then `alive` is cleared
/// before any local connection is closed, so a reconnect opens a new session).
pub(crate) fn pump(
    session: Session,
    listener: TcpListener,
    target: &Target,
    keepalive_secs: u32,
    health: &Health,
    url: &str,
) {
    let (alive, stop) = (&health.alive, &health.stop);
    session.set_blocking(false);
    if let Err(e) = listener.set_nonblocking(true) {
        alive.store(false, Ordering::Relaxed);
        tracing::warn!("SSH tunnel {url}: cannot listen: {e}");
        return;
    }
    let silence = Duration::from_secs(3 * u64::from(keepalive_secs.max(1)) + target.timeout_secs);
    let mut links: Vec<Link> = Vec::new();
    let mut last_heard = Instant::now();
    let mut next_keepalive = Instant::now();
    let died: Option<String> = loop {
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        let mut progress = false;
        while let Ok((local, _)) = listener.accept() {
            if local.set_nonblocking(true).is_ok() {
                let _ = local.set_nodelay(true);
                if !links.iter().any(Link::reads_session) {
                    last_heard = Instant::now();
                }
                links.push(Link::new(local));
                progress = true;
            }
        }
        let mut fault = None;
        for link in links.iter_mut().filter(|l| l.closing.is_none()) {
            match link.step(&session, target) {
                Ok(step) => {
                    progress |= step.moved;
                    if step.heard {
                        last_heard = Instant::now();
                    }
                }
                Err(Fault::Link(why)) => {
                    if let Some(why) = why {
                        tracing::warn!("SSH tunnel {url}: {why}");
                    }
                    link.end();
                    progress = true;
                }
                Err(Fault::Session(why)) => {
                    fault = Some(why);
                    break;
                }
            }
        }
        if let Some(why) = fault {
            break Some(why);
        }
        links.retain_mut(|l| !l.finished());
        if keepalive_secs > 0 && Instant::now() >= next_keepalive {
            match session.keepalive_send() {
                Ok(secs) => {
                    next_keepalive = Instant::now() + Duration::from_secs(u64::from(secs.max(1)))
                }
                Err(e) if would_block(&e) => {}
                Err(e) => break Some(e.message().to_string()),
            }
        }
        let listening = links.iter().any(Link::reads_session);
        if !listening {
            last_heard = Instant::now();
        } else if keepalive_secs > 0 && last_heard.elapsed() > silence {
            break Some(format!(
                "the tunnel host sent nothing for {} s, keepalives unanswered",
                silence.as_secs()
            ));
        }
        if !progress {
            let wait = next_keepalive
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            match wait_for(&session, &listener, &links, listening, wait) {
                Ok(heard) => {
                    if heard {
                        last_heard = Instant::now();
                    }
                }
                Err(why) => break Some(why),
            }
        }
    };
    if let Some(why) = &died {
        *health.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
    }
    alive.store(false, Ordering::Relaxed);
    if let Some(why) = died {
        tracing::warn!(
            "SSH tunnel {url} lost: {why}; its {} connection(s) were closed, the next one reconnects",
            links.len()
        );
    }
    for link in &mut links {
        let _ = link.local.shutdown(Shutdown::Both);
    }
}

/// Sleeps until a socket is ready or `wait` passed. `Ok(true)`: the session's socket has
/// data; `Err`: the session's socket was closed or failed.
fn wait_for(
    session: &Session,
    listener: &TcpListener,
    links: &[Link],
    listening: bool,
    wait: Duration,
) -> Result<bool, String> {
    let mut fds = Vec::with_capacity(links.len() + 2);
    let mut ssh_events = 0;
    let dirs = session.block_directions();
    if listening || matches!(dirs, BlockDirections::Inbound | BlockDirections::Both) {
        ssh_events |= libc::POLLIN;
    }
    if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
        ssh_events |= libc::POLLOUT;
    }
    if links.is_empty() {
        // idle: notice the host closing the session
        ssh_events |= RDHUP;
    }
    fds.push(poll_fd(session.as_raw_fd(), ssh_events));
    fds.push(poll_fd(listener.as_raw_fd(), libc::POLLIN));
    for l in links
        .iter()
        .filter(|l| l.channel.is_some() && l.closing.is_none())
    {
        let mut events = 0;
        if l.up.is_empty() && !l.local_eof {
            events |= libc::POLLIN;
        }
        if !l.down.is_empty() {
            events |= libc::POLLOUT;
        }
        fds.push(poll_fd(l.local.as_raw_fd(), events));
    }
    let ms = wait.as_millis().clamp(1, MAX_WAIT.as_millis()) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Ok(false);
    }
    let ssh = fds[0].revents;
    if ssh & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL | RDHUP) != 0 {
        return Err("the tunnel host closed the connection".into());
    }
    Ok(ssh & libc::POLLIN != 0)
}

#[cfg(target_os = "linux")]
const RDHUP: libc::c_short = libc::POLLRDHUP;
#[cfg(not(target_os = "linux"))]
const RDHUP: libc::c_short = 0;

fn poll_fd(fd: std::os::fd::RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
