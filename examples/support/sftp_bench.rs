//! The `sftp` section of `examples/bench.rs`: on the kit's real sshd over loopback, Ferry's
//! download and upload against OpenSSH's `sftp` client on the same file (best of
//! `--runs`), then the source reading a small and a large CSV through the runtime (CSV →
//! Arrow → counting sink), each in a child process, to show its peak RSS stays flat.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ferry_testkit::sftp_server::{give_to_user, KeyKind, SftpServer, PASSWORD, USER};

use crate::support::{line, print_flat, run};
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

    /// The cipher (and MAC) the client negotiates with the server, from `sftp -v`.
    fn negotiated(&self) -> String {
        let out = self
            .command("-v")
            .stdin(Stdio::null())
            .output()
            .expect("sftp -v");
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines()
            .find_map(|l| l.split("kex: client->server cipher: ").nth(1))
            .unwrap_or("?")
            .to_string()
    }
}

/// The best (smallest) seconds of `runs` calls of `step`.
fn best(runs: u32, mut step: impl FnMut() -> f64) -> f64 {
    (0..runs).map(|_| step()).fold(f64::MAX, f64::min)
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
        ferry_connector_sftp::bench::negotiated(&login).unwrap(),
        client.negotiated()
    );
    println!("{:<44} {:>8} {:>9}", "", "MiB/s", "seconds");
    let row = |what: &str, secs: f64, note: &str| {
        println!("{what:<44} {:>8.1} {secs:>9.2}{note}", mibps(size, secs));
    };

    // download: bytes only, into nothing
    let ferry = best(a.runs, || {
        let start = Instant::now();
        let n = ferry_connector_sftp::bench::download(
            &login,
            "bench/big/data.csv",
            &mut std::io::sink(),
        )
        .unwrap();
        assert_eq!(n, size);
        start.elapsed().as_secs_f64()
    });
    let cli = best(a.runs, || client.run("get bench/big/data.csv /dev/null\n"));
    row("download, Ferry (libssh2)", ferry, "");
    row("download, OpenSSH sftp", cli, "");
    println!("download, Ferry / sftp: {:.2}x", cli / ferry);

    // upload: the same file back; Ferry writes a temp name, fsyncs and renames
    let up = server.root().join("bench/up.csv");
    let mut publish = 0.0;
    let ferry = best(a.runs, || {
        let start = Instant::now();
        let mut input = std::fs::File::open(&big).unwrap();
        let (n, p) =
            ferry_connector_sftp::bench::upload(&login, "bench/up.csv", &mut input).unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(n, size);
        assert_eq!(std::fs::metadata(&up).unwrap().len(), size);
        std::fs::remove_file(&up).unwrap();
        publish = p;
        secs
    });
    let put = |flags: &str| {
        let secs = client.run(&format!("put {flags}{} bench/up.csv\n", big.display()));
        assert_eq!(std::fs::metadata(&up).unwrap().len(), size);
        std::fs::remove_file(&up).unwrap();
        secs
    };
    let cli = best(a.runs, || put(""));
    let cli_fsync = best(a.runs, || put("-f "));
    row(
        "upload, Ferry (temp name, fsync, rename)",
        ferry,
        &format!("   (the last run's fsync, close, rename: {publish:.2} s)"),
    );
    row("upload, OpenSSH sftp `put`", cli, "");
    row("upload, OpenSSH sftp `put -f` (fsync)", cli_fsync, "");
    println!(
        "upload, Ferry / sftp: {:.2}x (put), {:.2}x (put -f)",
        cli / ferry,
        cli_fsync / ferry
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
            &format!("SFTP source, {:.0} MiB CSV", bytes as f64 / (1 << 20) as f64),
            &s,
            bytes,
        );
        peaks.push(s.peak_mb);
    }
    print_flat(peaks[0], peaks[1]);
}
