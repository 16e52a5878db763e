//! SFTP throughput, Ferry against OpenSSH's `sftp` client, side by side in one run, on
//! the same file and the same real sshd (the kit's, on loopback), and Ferry's peak
//! memory reading a large file through the source (it must stay flat: one read buffer
//! and a few batches, whatever the file's size).
//!
//! ```sh
//! cargo run -p ferry-connector-sftp --example sftp_bench            # 256 MB
//! FERRY_SFTP_BENCH_MB=1024 cargo run -p ferry-connector-sftp --example sftp_bench
//! ```
//!
//! Needs root (the kit's sshd logs in a local test user) and `openssh-server`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ferry_core::{Message, ReadRequest};
use ferry_testkit::sftp_server::{give_to_user, KeyKind, SftpServer, PASSWORD, USER};
use futures::StreamExt;

/// `VmHWM` (peak resident memory) of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024.0
}

/// Writes a CSV of about `mb` MB (`id,name,amount` rows) to `path`.
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

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

/// Runs `commands` in OpenSSH's `sftp` client (batch mode, key login, host key pinned);
/// returns the seconds it took.
fn sftp_cli(server: &SftpServer, key: &Path, known_hosts: &Path, commands: &str) -> f64 {
    let start = Instant::now();
    let mut child = Command::new("sftp")
        .args(["-q", "-b", "-", "-P", &server.port().to_string(), "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg(format!("{USER}@127.0.0.1"))
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

/// Reads stream `data` of `toml` through the source, counting rows; returns (rows, secs).
async fn read_rows(toml: &str) -> (u64, f64) {
    let src =
        ferry_testkit::source_from_toml(ferry_connector_sftp::register, "sftp", toml, ".").unwrap();
    let start = Instant::now();
    let mut msgs = src.read(ReadRequest::full("data")).await.unwrap();
    let mut rows = 0u64;
    while let Some(m) = msgs.next().await {
        match m.unwrap() {
            Message::Batch(b) => rows += b.num_rows() as u64,
            Message::Rejected(r) => panic!("rejected: {}", r.message),
            _ => {}
        }
    }
    (rows, start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mb: u64 = std::env::var("FERRY_SFTP_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let server = SftpServer::start();
    let local = tempfile::tempdir().unwrap();
    let key = server.user_key(KeyKind::Ed25519, "");
    let key_file = local.path().join("id_ed25519");
    std::fs::write(&key_file, &key.private).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let known_hosts = local.path().join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts_line() + "\n").unwrap();
    let login = format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nhost_key = \"{}\"\n",
        server.port(),
        server.host_key()
    );

    let small = server.root().join("bench/small/data.csv");
    make_csv(&small, 16);
    let big = server.root().join("bench/big/data.csv");
    let rows = make_csv(&big, mb);
    give_to_user(&server.root().join("bench"));
    let size = std::fs::metadata(&big).unwrap().len();
    println!(
        "file: {:.0} MiB CSV, {rows} rows, on a real sshd over loopback",
        size as f64 / (1 << 20) as f64
    );
    println!("{:<40} {:>10} {:>10}", "", "MiB/s", "seconds");

    // download: bytes only
    let start = Instant::now();
    let n =
        ferry_connector_sftp::bench::download(&login, "bench/big/data.csv", &mut std::io::sink())
            .unwrap();
    assert_eq!(n, size);
    let ferry_down = start.elapsed().as_secs_f64();
    let cli_down = sftp_cli(
        &server,
        &key_file,
        &known_hosts,
        "get bench/big/data.csv /dev/null\n",
    );
    println!(
        "{:<40} {:>10.1} {:>10.2}",
        "download, Ferry (libssh2)",
        mbps(size, ferry_down),
        ferry_down
    );
    println!(
        "{:<40} {:>10.1} {:>10.2}",
        "download, OpenSSH sftp client",
        mbps(size, cli_down),
        cli_down
    );

    // upload: the same file back, under a temp name then renamed
    let start = Instant::now();
    let mut input = std::fs::File::open(&big).unwrap();
    let (n, publish) =
        ferry_connector_sftp::bench::upload(&login, "bench/up_ferry.csv", &mut input).unwrap();
    assert_eq!(n, size);
    let ferry_up = start.elapsed().as_secs_f64();
    assert_eq!(
        std::fs::metadata(server.root().join("bench/up_ferry.csv"))
            .unwrap()
            .len(),
        size
    );
    let cli_up = sftp_cli(
        &server,
        &key_file,
        &known_hosts,
        &format!("put {} bench/up_cli.csv\n", big.display()),
    );
    println!(
        "{:<40} {:>10.1} {:>10.2}   (of which {publish:.2} s fsync on the server, close, rename)",
        "upload, Ferry (temp name + rename)",
        mbps(size, ferry_up),
        ferry_up
    );
    println!(
        "{:<40} {:>10.1} {:>10.2}",
        "upload, OpenSSH sftp client",
        mbps(size, cli_up),
        cli_up
    );
    let _ = std::fs::remove_file(server.root().join("bench/up_ferry.csv"));
    let _ = std::fs::remove_file(server.root().join("bench/up_cli.csv"));

    // the source end to end (CSV parsed to batches), and its peak memory
    let rss_start = peak_rss_mib();
    let (small_rows, _) = read_rows(&format!(
        "{login}path = \"bench/small/data.csv\"\nstream = \"data\"\n"
    ))
    .await;
    let rss_small = peak_rss_mib();
    let (read, secs) = read_rows(&format!(
        "{login}path = \"bench/big/data.csv\"\nstream = \"data\"\n"
    ))
    .await;
    let rss_big = peak_rss_mib();
    assert_eq!(read, rows);
    println!(
        "{:<40} {:>10.1} {:>10.2}   {:.0} rows/s",
        "source read (CSV → Arrow), Ferry",
        mbps(size, secs),
        secs,
        read as f64 / secs
    );
    println!(
        "peak memory (VmHWM): {rss_start:.0} MiB before reading, {rss_small:.0} MiB after a 16 MiB file ({small_rows} rows), {rss_big:.0} MiB after the {:.0} MiB file",
        size as f64 / (1 << 20) as f64
    );
}
