//! Starting a private OpenSSH `sshd` on loopback, with its files in a folder of its own.
//! Standard library only: ferry-ssh's tunnel bench (`ssh/src/bin/tunnel_bench.rs`), which
//! must not build the test kit, includes this file with `#[path]`, and the kit's SFTP
//! server uses it as a module.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's sshd (package `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// Runs `cmd` to its end; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Makes an ed25519 key pair without a passphrase at `path` and `path.pub`; returns the
/// public line without its comment (`ssh-ed25519 AAAA…`), as `ssh-keyscan` prints it.
pub fn keygen(path: &Path, comment: &str) -> String {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `child` listens on 127.0.0.1:`port` within 10 s (false: it exited first, or
/// it did not).
pub fn listening(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts sshd with `config` (written to `dir/sshd_config`; its log goes to
/// `dir/sshd.log`) and waits until it listens on `port`. `None` when it did not: it
/// exited (e.g. the port was taken meanwhile) or was stopped after 10 s.
pub fn start(dir: &Path, port: u16, config: &str) -> Option<Child> {
    // sshd's privilege separation folder
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let path = dir.join("sshd_config");
    std::fs::write(&path, config).expect("sshd_config");
    let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd.log");
    let mut child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
    if listening(port, &mut child) {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
