//! The `sftp` section of `examples/bench.rs`: on the kit's real sshd over loopback, Ferry's
//! download and upload against OpenSSH's `sftp` client on the same file (best of
//! `--runs`), then the source reading a small and a large CSV through the runtime (CSV →
//! Arrow → counting sink), each in a child process, to show its peak RSS stays flat.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_testkit::sftp_server::{give_to_user, KeyKind, SftpServer, PASSWORD, USER};

use crate::support::{cpu_seconds, line, print_flat, run};
use crate::Args;

/// Writes a CSV of about `mb` MiB (`id,name,amount` rows) to `path`; returns its rows.
fn make_csv(path: &Path, mb: u64) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    f.write_all(b"id,name,amount\n").unwrap();
    let (mut written, mut i) = (0u64, 0u64);
    while written < mb << 20 {
        i += 1;
        let line = format!("{i},customer name {i:010},{}.{:02}\n", i % 100_000, i % 100);
        written += line.len() as u64;
        f.write_all(line.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    i
}

fn mibps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

/// OpenSSH's `sftp` client logged in to the kit's server with a key, host key pinned.
struct Client<'a> {
    server: &'a SftpServer,
    key: std::path::PathBuf,
    known_hosts: std::path::PathBuf,
}

impl Client<'_> {
    /// `sftp` in batch mode (commands from stdin), with `flag`.
    fn command(&self, flag: &str) -> Command {
        let mut cmd = Command::new("sftp");
        cmd.args([flag, "-b", "-", "-P", &self.server.port().to_string(), "-i"])
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .arg(format!("{USER}@127.0.0.1"));
        cmd
    }

    /// Runs `commands`; returns the seconds it took.
    fn run(&self, commands: &str) -> f64 {
        let start = Instant::now();
        let mut child = self
            .command("-q")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the `sftp` client runs (apt-get install -y openssh-client)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "sftp {commands} failed");
        start.elapsed().as_secs_f64()
    }

    /// The cipher the client negotiates with the server, from `sftp -v`.
    fn negotiated(&self) -> String {
        let out = self
            .command("-v")
            .stdin(Stdio::null())
            .output()
            .expect("sftp -v");
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines()
            .find_map(|l| l.split("kex: client->server cipher: ").nth(1))
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("?")
            .to_string()
    }
}

/// The processes under `pid` (children, theirs, …), from `/proc/<pid>/task/<pid>/children`.
fn descendants(pid: u32, out: &mut Vec<u32>) {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    for child in children.unwrap_or_default().split_whitespace() {
        if let Ok(child) = child.parse() {
            out.push(child);
            descendants(child, out);
        }
    }
}

/// Adds up the CPU time of sshd's session processes while a transfer runs: a sampler
/// reads each one's own time (`/proc/<pid>/stat`) every 20 ms and keeps its last
/// reading. (sshd's children's CPU time in its own `stat` misses sessions whose
/// processes are not reaped by their parent.)
struct ServerCpu {
    stop: Arc<AtomicBool>,
    /// Returns the sessions' CPU seconds and its own (not the client's work).
    sampler: std::thread::JoinHandle<(f64, f64)>,
}

impl ServerCpu {
    fn watch(sshd: u32) -> ServerCpu {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut seen: HashMap<u32, f64> = HashMap::new();
            loop {
                let done = flag.load(Ordering::Relaxed);
                let mut pids = Vec::new();
                descendants(sshd, &mut pids);
                for pid in pids {
                    let (own, _) = cpu_seconds(&pid.to_string());
                    let last = seen.entry(pid).or_default();
                    *last = last.max(own);
                }
                if done {
                    return (seen.values().sum(), cpu_seconds("thread-self").0);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        ServerCpu { stop, sampler }
    }

    /// Waits (untimed, up to 30 s) until the sessions ended; returns their CPU seconds,
    /// and the sampler's own.
    fn finish(self, sshd: u32) -> (f64, f64) {
        let start = Instant::now();
        loop {
            let mut left = Vec::new();
            descendants(sshd, &mut left);
            if left.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sshd's sessions did not end within 30 s after the transfer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap()
    }
}

/// The best of several runs of a transfer: wall seconds, and CPU seconds (user + system)
/// of the client and of the server, each the least of the runs.
struct Best {
    secs: f64,
    client: f64,
    server: f64,
}

/// Runs `step` `runs` times and keeps the best figures; `sshd` is the server's pid.
fn best(runs: u32, sshd: u32, mut step: impl FnMut()) -> Best {
    let mut b = Best {
        secs: f64::MAX,
        client: f64::MAX,
        server: f64::MAX,
    };
    for _ in 0..runs {
        let (me0, kids0) = cpu_seconds("self");
        let server = ServerCpu::watch(sshd);
        let start = Instant::now();
        step();
        let secs = start.elapsed().as_secs_f64();
        let (me1, kids1) = cpu_seconds("self");
        let (sessions, sampler) = server.finish(sshd);
        b.server = b.server.min(sessions);
        b.secs = b.secs.min(secs);
        b.client = b.client.min(me1 - me0 + kids1 - kids0 - sampler);
    }
    b
}

pub fn section(a: &Args, dir: &Path) {
    let server = SftpServer::start();
    let key = server.user_key(KeyKind::Ed25519, "");
    let key_file = dir.join("id_ed25519");
    std::fs::write(&key_file, &key.private).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts_line() + "\n").unwrap();
    let client = Client {
        server: &server,
        key: key_file,
        known_hosts,
    };
    let login = format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nhost_key = \"{}\"\n",
        server.port(),
        server.host_key()
    );

    let small = server.root().join("bench/small/data.csv");
    make_csv(&small, a.small_mb);
    let big = server.root().join("bench/big/data.csv");
    make_csv(&big, a.sftp_mb);
    give_to_user(&server.root().join("bench"));
    let size = std::fs::metadata(&big).unwrap().len();
    println!(
        "{:.0} MiB CSV on a real sshd over loopback (OpenSSH's internal-sftp), best of {} runs",
        size as f64 / (1 << 20) as f64,
        a.runs
    );
    println!(
        "ciphers: Ferry (libssh2) {}; OpenSSH sftp {}",
        ferry_connector_sftp::bench::cipher(&login).unwrap(),
        client.negotiated()
    );
    println!(
        "{:<42} {:>7} {:>8} {:>11} {:>11} {:>10}",
        "", "MiB/s", "seconds", "client CPU", "server CPU", "MiB/CPU-s"
    );
    let row = |what: &str, b: &Best| {
        println!(
            "{what:<42} {:>7.1} {:>8.2} {:>10.2}s {:>10.2}s {:>10.1}",
            mibps(size, b.secs),
            b.secs,
            b.client,
            b.server,
            mibps(size, b.client + b.server)
        );
    };
    let sshd = server.pid();

    // download: bytes only, into nothing
    let ferry = best(a.runs, sshd, || {
        let n = ferry_connector_sftp::bench::download(
            &login,
            "bench/big/data.csv",
            &mut std::io::sink(),
        )
        .unwrap();
        assert_eq!(n, size);
    });
    let cli = best(a.runs, sshd, || {
        client.run("get bench/big/data.csv /dev/null\n");
    });
    row("download, Ferry (libssh2)", &ferry);
    row("download, OpenSSH sftp", &cli);
    println!("download, Ferry / sftp: {:.2}x", cli.secs / ferry.secs);

    // upload: the same file back; Ferry writes a temp name, fsyncs and renames
    let up = server.root().join("bench/up.csv");
    let mut publish = f64::MAX;
    let ferry = best(a.runs, sshd, || {
        let mut input = std::fs::File::open(&big).unwrap();
        let (n, p) =
            ferry_connector_sftp::bench::upload(&login, "bench/up.csv", &mut input).unwrap();
        assert_eq!(n, size);
        publish = publish.min(p);
    });
    assert_eq!(std::fs::metadata(&up).unwrap().len(), size);
    let put = |flags: &str| {
        client.run(&format!("put {flags}{} bench/up.csv\n", big.display()));
        assert_eq!(std::fs::metadata(&up).unwrap().len(), size);
    };
    let cli = best(a.runs, sshd, || put(""));
    let cli_fsync = best(a.runs, sshd, || put("-f "));
    let _ = std::fs::remove_file(&up);
    row("upload, Ferry (temp name, fsync, rename)", &ferry);
    row("upload, OpenSSH sftp `put`", &cli);
    row("upload, OpenSSH sftp `put -f` (fsync)", &cli_fsync);
    println!(
        "upload, Ferry / sftp: {:.2}x (put), {:.2}x (put -f); Ferry's fsync, close and rename took {publish:.2} s",
        cli.secs / ferry.secs,
        cli_fsync.secs / ferry.secs
    );

    // the source through the runtime, and its peak memory at two sizes
    println!("\nSource read (CSV → Arrow → counting sink), each in a child process:");
    let mut peaks = Vec::new();
    for (name, file) in [("small", &small), ("big", &big)] {
        let bytes = std::fs::metadata(file).unwrap().len();
        let toml = format!(
            "[source]\ntype = \"sftp\"\n{login}path = \"bench/{name}/data.csv\"\nstream = \"bench\"\n\
             [destination]\ntype = \"file\"\npath = \"unused\"\n"
        );
        let s = run(dir, &format!("sftp_{name}"), &toml, true);
        line(
            &format!(
                "SFTP source, {:.0} MiB CSV",
                bytes as f64 / (1 << 20) as f64
            ),
            &s,
            bytes,
        );
        peaks.push(s.peak_mb);
    }
    print_flat(peaks[0], peaks[1]);
}
