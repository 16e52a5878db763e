//! Tunnels through a real OpenSSH sshd on loopback (the kit's) to a local echo server:
//! bytes arrive whole and in order both ways on many connections at once, one SSH
//! session carries them all, a lost session is reopened by the next connection, and the
//! pin and the login are checked before anything is forwarded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ferry_core::ErrorKind;
use ferry_ssh::{Tunnel, TunnelConfig};
use ferry_testkit::fault::{Ending, FaultProxy};
use ferry_testkit::sftp_server::{SftpServer, PASSWORD, USER};

/// A TCP server on loopback that echoes every byte back; returns its port.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                let mut back = conn.try_clone().unwrap();
                let _ = std::io::copy(&mut conn, &mut back);
                let _ = back.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

fn config(ssh_port: u16, host_key: &str, password: &str) -> TunnelConfig {
    let toml = format!(
        "host = \"127.0.0.1\"\nport = {ssh_port}\nuser = \"{USER}\"\npassword = \"{password}\"\nhost_key = \"{host_key}\"\nkeepalive_secs = 2\ntimeout_secs = 10\n"
    );
    ferry_core::ConfigNode::from_toml(&toml, ".")
        .unwrap()
        .parse()
        .unwrap()
}

fn tunnel(ssh_port: u16, host_key: &str, echo: u16) -> Arc<Tunnel> {
    Arc::new(
        config(ssh_port, host_key, PASSWORD)
            .tunnel(Path::new("."), "127.0.0.1", echo)
            .unwrap(),
    )
}

/// Sends `len` bytes of a pattern (seeded by `seed`) and checks the echo.
fn round_trip(t: &Tunnel, len: usize, seed: u8) {
    let addr = t.open().unwrap().addr;
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let mut writer = conn.try_clone().unwrap();
    let sent = data.clone();
    let w = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(back.len(), data.len(), "bytes echoed (seed {seed})");
    assert!(back == data, "the echo differs (seed {seed})");
}

#[test]
fn bytes_cross_whole_both_ways_on_many_connections_of_one_session() {
    let sshd = SftpServer::start();
    let t = tunnel(sshd.port(), sshd.host_key(), echo_server());
    let opened = t.open().unwrap();
    assert!(opened.addr.ip().is_loopback());
    assert!(
        opened.fingerprint.starts_with("SHA256:"),
        "{}",
        opened.fingerprint
    );
    // 8 connections at once, 4 MB each way: flow control in both directions
    let workers: Vec<_> = (0..8u8)
        .map(|i| {
            let t = t.clone();
            thread::spawn(move || round_trip(&t, 4 << 20, i))
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    round_trip(&t, 0, 99);
    assert_eq!(
        sshd.log().matches("Accepted password").count(),
        1,
        "{}",
        sshd.log()
    );
    assert!(t.status().unwrap().contains("host key SHA256:"));
}

#[test]
fn a_lost_session_is_reopened_by_the_next_connection() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sshd = SftpServer::start();
    let proxy = rt
        .block_on(FaultProxy::start(([127, 0, 0, 1], sshd.port()).into()))
        .unwrap();
    let t = tunnel(proxy.port(), sshd.host_key(), echo_server());
    round_trip(&t, 100_000, 1);
    assert!(t.status().is_some());
    proxy.cut_now(Ending::Reset);
    // the pump notices the reset and marks the session dead
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.status().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cut was not noticed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    round_trip(&t, 100_000, 2);
    assert_eq!(
        sshd.log().matches("Accepted password").count(),
        2,
        "{}",
        sshd.log()
    );
    drop(proxy);
}

#[test]
fn the_pin_and_the_login_are_checked_before_anything_is_forwarded() {
    let sshd = SftpServer::start();
    let other = SftpServer::start();
    let echo = echo_server();
    let e = tunnel(sshd.port(), other.host_key(), echo)
        .open()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("SSH tunnel: the SSH tunnel host [127.0.0.1]:"),
        "{text}"
    );
    assert!(
        text.contains("presented host key ssh-ed25519 SHA256:"),
        "{text}"
    );
    assert!(!sshd.log().contains("password for"), "{}", sshd.log());

    let wrong = config(sshd.port(), sshd.host_key(), "nope-7")
        .tunnel(Path::new("."), "127.0.0.1", echo)
        .unwrap();
    let e = wrong.open().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(
        e.to_string()
            .contains("refused user `ferrytest` with its password"),
        "{e}"
    );
    assert!(!e.to_string().contains("nope-7"), "{e}");

    // nothing pinned, or nothing to log in with: refused without connecting
    let unpinned: Result<TunnelConfig, _> =
        ferry_core::ConfigNode::from_toml("host = \"h\"\nuser = \"u\"\npassword = \"p\"\n", ".")
            .unwrap()
            .parse::<TunnelConfig>();
    let e = unpinned
        .unwrap()
        .tunnel(Path::new("."), "db", 5432)
        .unwrap_err();
    assert!(e.to_string().contains("host key is not pinned"), "{e}");
}
