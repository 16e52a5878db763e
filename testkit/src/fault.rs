//! A fault-injecting TCP proxy for tests: put it between a connector and its server and
//! switch faults on and off while a sync runs.
//!
//! Why a proxy and not mocks: the faults that hurt in production (a connection cut in the
//! middle of a COPY, a peer that stops answering but keeps the socket open, a reset) live
//! in the TCP layer, below every driver and SDK. Only a real socket that misbehaves shows
//! whether the driver's retries and Ferry's timeouts do what they promise.
//!
//! Every task the proxy starts is in one [`JoinSet`] that is aborted when the proxy is
//! dropped: the listening port closes and every proxied connection is closed with it, so
//! a test leaves no task, socket or port behind.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ferry_testkit::fault::{Direction, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap()).await?;
//! // point the connector at proxy.addr(), then, while it reads:
//! proxy.drop_after(Direction::ToClient, 64 * 1024);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Bytes read from one side before they are forwarded to the other.
const CHUNK: usize = 16 * 1024;

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (the connector under test) to the target (the server): requests,
    /// uploads, rows written.
    ToTarget,
    /// From the target back to the client: responses, downloads, rows read.
    ToClient,
}

/// Declares two tests of a fault scenario `async fn scenario(ending: Ending)`: one whose
/// connection is closed (`Ending::Close`), one whose connection is reset (`Ending::Reset`).
///
/// ```ignore
/// ferry_testkit::cut_tests! {
///     cut_mid_page => connection_dropped_mid_page_is_retried, connection_reset_mid_page_is_retried;
/// }
/// ```
#[macro_export]
macro_rules! cut_tests {
    ($($scenario:ident => $closed:ident, $reset:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $closed() {
                $scenario($crate::fault::Ending::Close).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $reset() {
                $scenario($crate::fault::Ending::Reset).await;
            }
        )*
    };
}

/// How a cut connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Both sockets are closed normally (FIN): the peers see the stream end.
    Close,
    /// Both sockets are closed with `SO_LINGER` 0: the peers get a TCP reset (RST).
    Reset,
    /// Not closed at all: the proxy hangs (see [`FaultProxy::hang`]) until healed, on
    /// every connection.
    Hang,
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Bytes forwarded from clients to the target.
    pub to_target: u64,
    /// Bytes forwarded from the target to clients.
    pub to_client: u64,
    /// Connections the proxy cut (closed or reset on purpose).
    pub cut: u64,
}

/// Counts the proxy's live tasks; stays readable after the proxy is dropped.
#[derive(Debug, Clone, Default)]
pub struct LiveTasks(Arc<AtomicUsize>);

impl LiveTasks {
    /// Tasks of the proxy still running (the accept loop and one per connection).
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn enter(&self) -> LiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        LiveGuard(self.0.clone())
    }
}

struct LiveGuard(Arc<AtomicUsize>);
impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Faults that apply until changed.
#[derive(Debug, Clone, Default)]
struct Steady {
    /// Waited before forwarding each chunk.
    latency: Duration,
    /// Nothing is forwarded; sockets stay open.
    hang: bool,
}

/// A cut waiting for its byte budget to run out.
#[derive(Debug, Clone)]
struct Cut {
    direction: Direction,
    /// Bytes still forwarded in `direction` before the cut.
    left: u64,
    /// The budget of the next cut, when `times` is above 1.
    after: u64,
    ending: Ending,
    /// Cuts still to make.
    times: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    to_target: AtomicU64,
    to_client: AtomicU64,
    cut: AtomicU64,
}

struct Shared {
    target: SocketAddr,
    steady: watch::Sender<Steady>,
    /// Bumped by [`FaultProxy::cut_now`]: every open connection ends this way.
    kill: watch::Sender<(u64, Ending)>,
    cut: Mutex<Option<Cut>>,
    counters: Counters,
    live: LiveTasks,
}

/// Awaits `f`, failing the test (naming `what`) when it takes more than 60 s: a fault
/// test that would hang fails instead of waiting for ever.
pub async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within 60 s"))
}

/// A TCP proxy on `127.0.0.1:0` forwarding to one target, with faults switchable while
/// it runs. Dropping it stops every task it started and closes every socket.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("stats", &self.stats())
            .finish()
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            steady: watch::Sender::new(Steady::default()),
            kill: watch::Sender::new((0, Ending::Close)),
            cut: Mutex::new(None),
            counters: Counters::default(),
            live: LiveTasks::default(),
        });
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let guard = shared.live.enter();
        let accept = accept_loop(listener, shared.clone(), Arc::downgrade(&tasks), guard);
        lock(&tasks).spawn(accept);
        Ok(FaultProxy {
            addr,
            shared,
            tasks,
        })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits `latency` before forwarding each chunk, both ways (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.steady.send_modify(|s| s.latency = latency);
    }

    /// Stops forwarding in both directions, on open and new connections, and keeps every
    /// socket open: a half-open peer that neither answers nor hangs up. New connections
    /// are still accepted (the kernel completes their handshake).
    pub fn hang(&self) {
        self.shared.steady.send_modify(|s| s.hang = true);
    }

    /// Forwards `bytes` more bytes in `direction` (counted over every connection from
    /// now), then closes the connection carrying the next byte, both sides. Once: later
    /// connections pass.
    pub fn drop_after(&self, direction: Direction, bytes: u64) {
        self.cut_after(direction, bytes, Ending::Close, 1);
    }

    /// Like [`FaultProxy::drop_after`], ending with a TCP reset.
    pub fn reset_after(&self, direction: Direction, bytes: u64) {
        self.cut_after(direction, bytes, Ending::Reset, 1);
    }

    /// Forwards `bytes` more bytes in `direction`, then hangs (see [`FaultProxy::hang`]):
    /// a server that stops answering in the middle of a response or an upload.
    pub fn hang_after(&self, direction: Direction, bytes: u64) {
        self.cut_after(direction, bytes, Ending::Hang, 1);
    }

    /// The general cut: after `bytes` more bytes in `direction`, end the connection
    /// carrying the next byte with `ending`; `times` cuts in a row, each after `bytes`
    /// (`u64::MAX`: every connection, until [`FaultProxy::heal`]).
    pub fn cut_after(&self, direction: Direction, bytes: u64, ending: Ending, times: u64) {
        *lock(&self.shared.cut) = Some(Cut {
            direction,
            left: bytes,
            after: bytes,
            ending,
            times: times.max(1),
        });
    }

    /// Ends every open connection at once with `ending`; new connections pass
    /// ([`Ending::Hang`] hangs them all, new ones too).
    pub fn cut_now(&self, ending: Ending) {
        if ending == Ending::Hang {
            return self.hang();
        }
        self.shared.kill.send_modify(|(generation, how)| {
            *generation += 1;
            *how = ending;
        });
    }

    /// Clears every fault: no latency, no hang, no pending cut. Data a hang held back
    /// is forwarded.
    pub fn heal(&self) {
        *lock(&self.shared.cut) = None;
        self.shared.steady.send_replace(Steady::default());
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            accepted: c.accepted.load(Ordering::SeqCst),
            to_target: c.to_target.load(Ordering::SeqCst),
            to_client: c.to_client.load(Ordering::SeqCst),
            cut: c.cut.load(Ordering::SeqCst),
        }
    }

    /// A handle counting the proxy's running tasks, readable after the proxy is dropped.
    pub fn live_tasks(&self) -> LiveTasks {
        self.shared.live.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // aborted tasks drop their sockets (and the listener) when the runtime next
        // reaches them: at once on a multi-threaded runtime, at the next await otherwise
        lock(&self.tasks).abort_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tasks: std::sync::Weak<Mutex<JoinSet<()>>>,
    _live: LiveGuard,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.counters.accepted.fetch_add(1, Ordering::SeqCst);
        let Some(tasks) = tasks.upgrade() else { return };
        let mut set = lock(&tasks);
        while set.try_join_next().is_some() {}
        let guard = shared.live.enter();
        set.spawn(serve(client, shared.clone(), guard));
    }
}

/// What ended one direction of a connection.
enum End {
    /// The sender closed its side (or failed): the other direction may go on.
    Eof,
    /// The proxy cuts the connection.
    Cut(Ending),
}

async fn serve(mut client: TcpStream, shared: Arc<Shared>, _live: LiveGuard) {
    let Ok(mut target) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let mut kill = shared.kill.subscribe();
    kill.mark_unchanged();
    let cut = {
        let (cr, cw) = client.split();
        let (tr, tw) = target.split();
        // set when a direction ends: the other direction's bytes then go to a peer that has
        // left (a client that dropped a connection it only sampled), so no cut is spent there
        let ended = [AtomicBool::new(false), AtomicBool::new(false)];
        let up = pump(cr, tw, Direction::ToTarget, &shared, [&ended[0], &ended[1]]);
        let down = pump(tr, cw, Direction::ToClient, &shared, [&ended[1], &ended[0]]);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                e = &mut up, if !up_done => match e {
                    End::Eof => up_done = true,
                    End::Cut(how) => break Some(how),
                },
                e = &mut down, if !down_done => match e {
                    End::Eof => down_done = true,
                    End::Cut(how) => break Some(how),
                },
                changed = kill.changed() => {
                    if changed.is_err() {
                        break None;
                    }
                    break Some(kill.borrow_and_update().1);
                }
            }
            if up_done && down_done {
                break None;
            }
        }
    };
    if let Some(how) = cut {
        shared.counters.cut.fetch_add(1, Ordering::SeqCst);
        if how == Ending::Reset {
            let _ = client.set_zero_linger();
            let _ = target.set_zero_linger();
        } else {
            let _ = client.shutdown().await;
            let _ = target.shutdown().await;
        }
    }
}

/// Forwards `from` to `to` chunk by chunk, applying the faults in force. `ended` is this
/// direction's flag (set when it ends) and the other direction's.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    direction: Direction,
    shared: &Shared,
    ended: [&AtomicBool; 2],
) -> End {
    let end = pump_until_end(&mut from, &mut to, direction, shared, ended).await;
    ended[0].store(true, Ordering::SeqCst);
    end
}

async fn pump_until_end(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    direction: Direction,
    shared: &Shared,
    [this_ended, other_ended]: [&AtomicBool; 2],
) -> End {
    let mut steady = shared.steady.subscribe();
    let counter = match direction {
        Direction::ToTarget => &shared.counters.to_target,
        Direction::ToClient => &shared.counters.to_client,
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        // a hung proxy stops reading too: the sender's buffers fill as with a dead peer
        if steady.wait_for(|s| !s.hang).await.is_err() {
            return End::Eof;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // flagged before the peer can see the end
                this_ended.store(true, Ordering::SeqCst);
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
        };
        let latency = steady.borrow().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        // what was read while the hang began is held back, not forwarded
        if steady.wait_for(|s| !s.hang).await.is_err() {
            return End::Eof;
        }
        let (pass, ending, taken) = if other_ended.load(Ordering::SeqCst) {
            (n as u64, None, None)
        } else {
            budget(shared, direction, n as u64)
        };
        let pass = pass as usize;
        if pass > 0 {
            if to.write_all(&buf[..pass]).await.is_err() {
                // the peer left before the cut could hit it: the cut waits for a live one
                if let Some(cut) = taken {
                    rearm(shared, cut);
                }
                return End::Eof;
            }
            counter.fetch_add(pass as u64, Ordering::SeqCst);
        }
        match ending {
            None => {}
            Some(Ending::Hang) => {
                shared.steady.send_modify(|s| s.hang = true);
                if steady.wait_for(|s| !s.hang).await.is_err() {
                    return End::Eof;
                }
                if to.write_all(&buf[pass..n]).await.is_err() {
                    return End::Eof;
                }
                counter.fetch_add((n - pass) as u64, Ordering::SeqCst);
            }
            Some(how) => return End::Cut(how),
        }
    }
}

/// How many of `n` bytes in `direction` may pass, whether the connection is then cut, and
/// the cut as it was before this one was spent (to [`rearm`] it if it hit no live peer).
fn budget(shared: &Shared, direction: Direction, n: u64) -> (u64, Option<Ending>, Option<Cut>) {
    let mut slot = lock(&shared.cut);
    let Some(cut) = slot.as_mut().filter(|c| c.direction == direction) else {
        return (n, None, None);
    };
    if n <= cut.left {
        cut.left -= n;
        return (n, None, None);
    }
    let before = cut.clone();
    let pass = cut.left;
    let ending = cut.ending;
    cut.times -= 1;
    if cut.times == 0 {
        *slot = None;
    } else {
        cut.left = cut.after;
    }
    (pass, Some(ending), Some(before))
}

/// Puts back a cut that was spent on a connection whose peer had already gone: it ends
/// the next live connection carrying bytes its way (unless a new cut replaced it).
fn rearm(shared: &Shared, before: Cut) {
    let mut slot = lock(&shared.cut);
    match slot.as_mut() {
        Some(cut) if cut.direction == before.direction && cut.ending == before.ending => {
            cut.times += 1;
            cut.left = 0;
        }
        Some(_) => {}
        None => *slot = Some(Cut { left: 0, ..before }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; returns its address (the task ends with the test's
    /// runtime).
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// A proxy to an [`echo`] server, and a connection through it.
    async fn echo_proxy() -> (FaultProxy, TcpStream) {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let c = connect(&proxy).await;
        (proxy, c)
    }

    /// A new connection through `proxy`.
    async fn connect(proxy: &FaultProxy) -> TcpStream {
        TcpStream::connect(proxy.addr()).await.unwrap()
    }

    async fn roundtrip(s: &mut TcpStream, data: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(data).await?;
        let mut got = vec![0u8; data.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    /// Reads until the peer ends the stream; the error kind, if it reset.
    async fn read_to_end(s: &mut TcpStream) -> std::result::Result<usize, std::io::ErrorKind> {
        let mut sink = Vec::new();
        s.read_to_end(&mut sink).await.map_err(|e| e.kind())
    }

    #[tokio::test]
    async fn forwards_and_counts() {
        let (proxy, mut c) = echo_proxy().await;
        assert_eq!(roundtrip(&mut c, b"hello").await.unwrap(), b"hello");
        proxy.set_latency(Duration::from_millis(20));
        assert_eq!(roundtrip(&mut c, b"again").await.unwrap(), b"again");
        let st = proxy.stats();
        assert_eq!(
            (st.accepted, st.to_target, st.to_client, st.cut),
            (1, 10, 10, 0)
        );
    }

    #[tokio::test]
    async fn drop_after_cuts_once_then_passes() {
        let (proxy, mut c) = echo_proxy().await;
        proxy.drop_after(Direction::ToClient, 3);
        c.write_all(b"hello").await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hel", "3 bytes pass, then the stream ends");
        assert_eq!(proxy.stats().cut, 1);
        // the cut was one-shot: a new connection works
        let mut c = connect(&proxy).await;
        assert_eq!(roundtrip(&mut c, b"ok").await.unwrap(), b"ok");
    }

    /// A target whose first connection answers only once the proxy has passed on the
    /// client's end (a client that sampled a connection and left), and whose next
    /// connections answer at once; every answer is `n` bytes.
    async fn answers_after_the_first_leaves(n: usize) -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((mut s, _)) = l.accept().await {
                let wait = std::mem::take(&mut first);
                tokio::spawn(async move {
                    if wait {
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink).await;
                    }
                    let _ = s.write_all(&vec![b'x'; n]).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_cut_is_not_spent_on_a_client_that_left() {
        let proxy = FaultProxy::start(answers_after_the_first_leaves(100_000).await)
            .await
            .unwrap();
        proxy.drop_after(Direction::ToClient, 10);
        let left = TcpStream::connect(proxy.addr()).await.unwrap();
        drop(left);
        // the left connection's answer passes by; the next connection gets the cut
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got));
        read.await.expect("the live connection ends").ok();
        assert_eq!(got.len(), 10, "the cut hit the live connection");
        assert_eq!(proxy.stats().cut, 1);
    }

    #[tokio::test]
    async fn reset_after_sends_a_reset() {
        let (proxy, mut c) = echo_proxy().await;
        proxy.reset_after(Direction::ToTarget, 0);
        c.write_all(b"x").await.unwrap();
        assert_eq!(
            read_to_end(&mut c).await,
            Err(std::io::ErrorKind::ConnectionReset)
        );
    }

    #[tokio::test]
    async fn hang_after_forwards_then_holds() {
        let (proxy, mut c) = echo_proxy().await;
        proxy.hang_after(Direction::ToClient, 2);
        c.write_all(b"abcd").await.unwrap();
        let mut got = [0u8; 2];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ab");
        let more = tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut got)).await;
        assert!(more.is_err(), "the rest is held back");
        proxy.heal();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"cd", "and forwarded once healed");
        assert_eq!(proxy.stats().cut, 0);
    }

    #[tokio::test]
    async fn cut_now_ends_open_connections_only() {
        let (proxy, mut a) = echo_proxy().await;
        assert_eq!(roundtrip(&mut a, b"1").await.unwrap(), b"1");
        proxy.cut_now(Ending::Close);
        assert_eq!(read_to_end(&mut a).await, Ok(0));
        let mut b = connect(&proxy).await;
        assert_eq!(roundtrip(&mut b, b"2").await.unwrap(), b"2");
    }

    #[tokio::test]
    async fn hang_holds_data_until_healed() {
        let (proxy, mut c) = echo_proxy().await;
        proxy.hang();
        c.write_all(b"held").await.unwrap();
        let mut got = [0u8; 4];
        let waited = tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut got)).await;
        assert!(waited.is_err(), "nothing comes back while hung");
        assert_eq!(proxy.stats().to_target, 0);
        proxy.heal();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"held");
    }

    #[tokio::test]
    async fn dropping_the_proxy_stops_everything() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let addr = proxy.addr();
        let mut open = TcpStream::connect(addr).await.unwrap();
        assert_eq!(roundtrip(&mut open, b"x").await.unwrap(), b"x");
        let live = proxy.live_tasks();
        assert_eq!(live.count(), 2, "the accept loop and one connection");
        drop(proxy);
        // the open connection ends (its task was aborted and its sockets dropped) …
        assert_eq!(read_to_end(&mut open).await, Ok(0));
        tokio::time::timeout(Duration::from_secs(5), async {
            while live.count() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("every task of the proxy ends");
        // … and the port refuses connections
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
