//! What Ferry's SSH tunnel costs (issue 21), beside OpenSSH's `ssh -L` in the same run
//! (not a test: run it, read the figures).
//!
//! ```sh
//! CARGO_TARGET_DIR=target/rel cargo build --release -p ferry-ssh --bin tunnel_bench
//! target/rel/release/tunnel_bench [--mib 256] [--rounds 3] [--ciphers LIST]
//! ```
//!
//! A source process on loopback streams `--mib` MiB to each connection that asks; this
//! process reads it directly, through a [`Tunnel`] to a private `sshd -D` on loopback,
//! and through `ssh -N -L` to the same sshd. Each line gives MiB/s, wall time, this
//! process's CPU (the reader, plus the tunnel's pump thread when it runs here), `ssh`'s
//! CPU and sshd's (every session process, read from the listener's reaped children in
//! `/proc/<pid>/stat` once the session ended; the login is included). `--ciphers` sets
//! sshd's `Ciphers` (e.g. `chacha20-poly1305@openssh.com`), so both clients use it.
//!
//! It is a binary, not an example, so a release build compiles only ferry-ssh's own
//! dependencies (an example would build the test kit's too). Logs in as the current
//! user (root here) with a fresh key; sshd's files live in a temp folder.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_core::Secret;
use ferry_ssh::hostkey::Pin;
use ferry_ssh::ssh2::MethodType;
use ferry_ssh::{Login, Tunnel};

// the kit's sshd launcher, as a file: a dependency on the kit would build all of it
#[path = "../../../testkit/src/sshd.rs"]
mod sshd;

const MIB: usize = 1024 * 1024;

struct Args {
    mib: usize,
    rounds: usize,
    ciphers: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        mib: 256,
        rounds: 3,
        ciphers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--mib" => a.mib = value().parse().expect("--mib N"),
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            "--ciphers" => a.ciphers = Some(value()),
            other => panic!("unknown argument {other} (see the file's docs)"),
        }
    }
    a
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("serve") {
        serve(argv[2].parse().expect("serve MIB"));
        return;
    }
    let a = args();
    let source = Source::start(a.mib);
    let sshd = Sshd::start(a.ciphers.as_deref());
    println!(
        "tunnel_bench: {} MiB per transfer, {} round(s), sshd {}",
        a.mib,
        a.rounds,
        a.ciphers.as_deref().unwrap_or("with its default ciphers")
    );
    println!("Ferry negotiated: {}", sshd.ferry_methods());
    let mut results: Vec<(&str, Vec<Figures>)> = vec![
        ("direct", vec![]),
        ("Ferry tunnel", vec![]),
        ("ssh -L", vec![]),
    ];
    let mut openssh_cipher = String::new();
    for round in 1..=a.rounds {
        let direct = measure(source.port, a.mib, None);
        let tunnel = Tunnel::new(sshd.login(), "127.0.0.1", source.port, 15);
        let sshd_before = sshd.reaped_cpu();
        let addr = tunnel.open().expect("the tunnel opens").addr;
        let mut ferry = measure(addr.port(), a.mib, None);
        tunnel.close();
        drop(tunnel);
        ferry.sshd = sshd.session_cpu(sshd_before);
        let sshd_before = sshd.reaped_cpu();
        let (mut ssh, port) = sshd.forward(source.port);
        let mut openssh = measure(port, a.mib, Some(ssh.id()));
        let _ = ssh.kill();
        let _ = ssh.wait();
        openssh.sshd = sshd.session_cpu(sshd_before);
        openssh_cipher = sshd.openssh_cipher();
        for (i, f) in [direct, ferry, openssh].into_iter().enumerate() {
            print_line(&format!("round {round} {}", results[i].0), &f, a.mib);
            results[i].1.push(f);
        }
    }
    println!("ssh -L negotiated: {openssh_cipher}");
    println!("median of {} round(s):", a.rounds);
    let direct_secs = median(&results[0].1).secs;
    for (name, figures) in &results {
        let m = median(figures);
        print_line(name, &m, a.mib);
        if *name != "direct" {
            println!(
                "  {name} vs direct: {:+.1} % wall",
                (m.secs / direct_secs - 1.0) * 100.0
            );
        }
    }
}

/// One transfer's figures; CPU in seconds.
#[derive(Clone, Copy, Default)]
struct Figures {
    secs: f64,
    own_cpu: f64,
    ssh_cpu: Option<f64>,
    sshd: Option<f64>,
}

fn print_line(what: &str, f: &Figures, mib: usize) {
    let mut line = format!(
        "{what:<22} {:>7.1} MiB/s  {:>6.3} s  this process CPU {:>6.3} s",
        mib as f64 / f.secs,
        f.secs,
        f.own_cpu
    );
    if let Some(s) = f.ssh_cpu {
        line += &format!("  ssh CPU {s:>6.3} s");
    }
    if let Some(s) = f.sshd {
        line += &format!("  sshd CPU {s:>6.3} s");
    }
    println!("{line}");
}

/// The round with the median wall time.
fn median(figures: &[Figures]) -> Figures {
    let mut sorted = figures.to_vec();
    sorted.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    sorted[sorted.len() / 2]
}

/// Reads one transfer from `port`; `ssh` is a process whose CPU is counted too.
fn measure(port: u16, mib: usize, ssh: Option<u32>) -> Figures {
    let ssh_before = ssh.map(proc_cpu);
    let cpu_before = own_cpu();
    let start = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    conn.write_all(b"g").expect("ask for the data");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0usize;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the transfer failed after {total} bytes: {e}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, mib * MIB, "the transfer ended early");
    Figures {
        secs,
        own_cpu: own_cpu() - cpu_before,
        ssh_cpu: ssh.zip(ssh_before).map(|(p, b)| proc_cpu(p) - b),
        sshd: None,
    }
}

/// This process's user + system CPU seconds (every thread).
fn own_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Fields 14.. of `/proc/<pid>/stat` (after the command name), in clock ticks.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace().map(str::to_string).collect()
}

fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// A process's own user + system CPU seconds.
fn proc_cpu(pid: u32) -> f64 {
    let f = stat_fields(pid);
    // after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (n(11) + n(12)) / ticks()
}

/// The source: a child process streaming `mib` MiB to each connection after it sends a
/// byte (so a connection that only probes the port costs nothing).
struct Source {
    child: Child,
    port: u16,
}

impl Source {
    fn start(mib: usize) -> Source {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["serve", &mib.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the source starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the source's port");
        let port = line.trim().parse().expect("the source prints its port");
        Source { child, port }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(mib: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    std::io::stdout().flush().expect("stdout");
    let block: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    let block = std::sync::Arc::new(block);
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let block = block.clone();
        std::thread::spawn(move || {
            let mut ask = [0u8; 1];
            if conn.read(&mut ask).unwrap_or(0) == 0 {
                return;
            }
            for _ in 0..mib {
                if conn.write_all(&block).is_err() {
                    return;
                }
            }
        });
    }
}

/// A private sshd on loopback that lets the current user log in with a fresh key and
/// forward TCP.
struct Sshd {
    dir: PathBuf,
    child: Child,
    port: u16,
    user: String,
    host_key: String,
    user_key: PathBuf,
}

impl Sshd {
    fn start(ciphers: Option<&str>) -> Sshd {
        assert!(
            Path::new(sshd::SSHD).exists(),
            "sshd is not installed: `apt-get install openssh-server openssh-client`"
        );
        let dir = std::env::temp_dir().join(format!("ferry-tunnel-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp folder");
        let host_key = sshd::keygen(&dir.join("host"), "tunnel-bench");
        sshd::keygen(&dir.join("user"), "tunnel-bench");
        std::fs::copy(dir.join("user.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        let id = sshd::run(Command::new("id").arg("-un"));
        let user = String::from_utf8_lossy(&id.stdout).trim().to_string();
        let port = sshd::free_port();
        let d = dir.display();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile none\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nAllowTcpForwarding local\n\
             LogLevel INFO\n"
        );
        if let Some(c) = ciphers {
            config += &format!("Ciphers {c}\n");
        }
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}\n"),
        )
        .expect("known_hosts");
        let child = sshd::start(&dir, port, &config).unwrap_or_else(|| {
            let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            panic!("sshd did not listen on {port}: {log}")
        });
        Sshd {
            user_key: dir.join("user"),
            dir,
            child,
            port,
            user,
            host_key,
        }
    }

    fn login(&self) -> Login {
        let role = "SSH tunnel host";
        Login {
            role,
            scheme: "ssh",
            host: "127.0.0.1".into(),
            port: self.port,
            user: self.user.clone(),
            password: None,
            private_key: Some(Secret::new(
                std::fs::read_to_string(&self.user_key).expect("user key"),
            )),
            private_key_passphrase: None,
            pin: Pin::new(Some(&self.host_key), None, Path::new("."), role).expect("pin"),
            timeout_secs: 10,
        }
    }

    /// The cipher and MAC a Ferry session negotiates with this sshd.
    fn ferry_methods(&self) -> String {
        let (session, _) = self.login().connect().expect("Ferry logs in");
        let m = |t| session.methods(t).unwrap_or("?").to_string();
        format!(
            "cipher {} / {}, MAC {}, compression {}",
            m(MethodType::CryptCs),
            m(MethodType::CryptSc),
            m(MethodType::MacSc),
            m(MethodType::CompSc)
        )
    }

    /// `ssh -N -L` to `target` through this sshd; returns it and its local port once it
    /// listens.
    fn forward(&self, target: u16) -> (Child, u16) {
        let port = sshd::free_port();
        let log = std::fs::File::create(self.dir.join("ssh.log")).expect("ssh.log");
        let mut child = Command::new("ssh")
            .args([
                "-v",
                "-N",
                "-o",
                "BatchMode=yes",
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.dir.join("known_hosts").display()
            ))
            .arg("-i")
            .arg(&self.user_key)
            .args(["-p", &self.port.to_string()])
            .args(["-L", &format!("127.0.0.1:{port}:127.0.0.1:{target}")])
            .arg(format!("{}@127.0.0.1", self.user))
            .stderr(log)
            .spawn()
            .expect("ssh starts");
        assert!(
            sshd::listening(port, &mut child),
            "ssh -L did not listen on {port}: see {}",
            self.dir.join("ssh.log").display()
        );
        (child, port)
    }

    /// What the last `ssh -L` negotiated, from its `-v` log.
    fn openssh_cipher(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("ssh.log")).unwrap_or_default();
        log.lines()
            .find(|l| l.contains("kex: server->client cipher"))
            .map_or("?".into(), |l| l.trim_start_matches("debug1: kex: ").into())
    }

    /// CPU seconds of sshd's ended sessions so far (the listener's reaped children).
    fn reaped_cpu(&self) -> f64 {
        let f = stat_fields(self.child.id());
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (n(13) + n(14)) / ticks()
    }

    /// sshd's CPU for the session that started after `before` was read, once it ended.
    fn session_cpu(&self, before: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.has_children() {
                return Some(self.reaped_cpu() - before);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn has_children(&self) -> bool {
        let me = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .any(|pid| stat_fields(pid).get(1) == Some(&me))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
