//! Reading and writing through an SSH tunnel (`tunnel = { … }`): a real OpenSSH sshd on
//! loopback (the kit's `sftp_server`, TCP forwarding on) forwarding to the real
//! PostgreSQL, with the kit's TCP proxy between Ferry and sshd, so the tests see every
//! byte go through the tunnel and can cut it. Checked: rows arrive whole both ways,
//! parallel reads share one SSH session, a wrong host key is refused before any
//! credential is sent, and a tunnel cut mid-read fails the stream with its resume point,
//! a rerun completing without duplicates.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_whole, failure, src_fixture, Fixture, ROWS};
use ferry_connector_postgres::PostgresSink;
use ferry_core::{ErrorKind, ReadRequest, Sink, Source};
use ferry_engine::report::RunReport;
use ferry_engine::Runtime;
use ferry_testkit as testkit;
use ferry_testkit::bastion::Bastion;
use ferry_testkit::fault::{Direction, Ending};
use ferry_testkit::sftp_server::{KeyKind, SftpServer, PASSWORD};
use ferry_testkit::sql::SqlFixture;

/// Bytes through the tunnel before a cut mid-read: past login and discovery, well
/// before the end of the ~1 MB of rows.
const MID: u64 = 400_000;

/// The fixture's connection fields as TOML, then `extra`.
fn connection(f: &Fixture, extra: &str) -> String {
    let s = &f.server;
    let mut toml = format!(
        "host = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{}\"\nsslmode = \"{}\"\n",
        s.host,
        s.port,
        s.user,
        s.database,
        s.sslmode.name()
    );
    if let Some(p) = &s.password {
        toml.push_str(&format!("password = \"{}\"\n", p.expose()));
    }
    toml + extra
}

fn sink_via(f: &Fixture, tunnel: &str) -> Arc<dyn Sink> {
    let toml = connection(f, &format!("schema = \"{}\"\n{tunnel}", f.schema));
    Arc::new(testkit::from_toml(&toml, std::env::temp_dir(), PostgresSink::new).unwrap())
}

fn source_via(f: &Fixture, tunnel: &str) -> Arc<dyn Source> {
    Arc::new(f.source_with(tunnel))
}

/// A sync, failing the test if it has not ended within 120 s.
async fn sync(rt: &Runtime) -> RunReport {
    common::sync_upsert(rt, Duration::from_secs(120))
        .await
        .expect("the sync starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_read_and_written_through_the_tunnel() {
    let f = src_fixture().await;
    let b = Bastion::start().await;
    let key = b.sshd.user_key(KeyKind::Ed25519, "tunnel pass");
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), &key.private).unwrap();
    let by_key = b.tunnel(&format!(
        "private_key = \"${{file:{}}}\", private_key_passphrase = \"tunnel pass\"",
        key_file.path().display()
    ));
    let source = source_via(&f, &by_key);
    source.check().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = common::runtime(source, sink_via(&f, &b.password()), dir.path(), 1_000);
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), ROWS as u64);
    assert_whole(&f).await;
    // every row crossed the tunnel twice: read (to Ferry) and written (to the server)
    let st = b.proxy.stats();
    assert!(
        st.to_client > 1_000_000 && st.to_target > 1_000_000,
        "{st:?}"
    );
    let log = b.sshd.log();
    assert!(log.contains("Accepted publickey for ferrytest"), "{log}");
    assert!(log.contains("Accepted password for ferrytest"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reads_share_one_ssh_session() {
    let f = src_fixture().await;
    let b = Bastion::start().await;
    let source = f.source_with(&format!(
        "parallel = [{{ stream = \"src\", partitions = 4 }}]\n{}",
        b.password()
    ));
    let batches = testkit::read_all(&source, ReadRequest::full("src")).await;
    let mut ids = testkit::ids(&batches);
    ids.sort_unstable();
    assert_eq!(ids, (1..=ROWS).collect::<Vec<_>>());
    assert_eq!(b.proxy.stats().accepted, 1, "one SSH connection");
    assert_eq!(b.logins(), 1, "one login: {}", b.sshd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_host_with_another_key_is_refused_before_any_credential() {
    let f = Fixture::new().await;
    let b = Bastion::start().await;
    let other = SftpServer::start();
    let wrong = b.password().replace(b.sshd.host_key(), other.host_key());
    let e = source_via(&f, &wrong).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    let text = e.to_string();
    assert!(text.contains("SSH tunnel"), "names the tunnel: {text}");
    assert!(
        text.contains("presented host key ssh-ed25519 SHA256:"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!b.sshd.log().contains("password for"), "{}", b.sshd.log());
}

/// The tunnel's SSH connection ends (or goes silent: keepalives unanswered) in the middle
/// of the read: the stream fails with its position, and a rerun (the tunnel reopened)
/// completes without duplicates.
async fn cut_mid_read(ending: Ending) {
    let f = src_fixture().await;
    let b = Bastion::start().await;
    b.proxy.cut_after(Direction::ToClient, MID, ending, 1);
    let dir = tempfile::tempdir().unwrap();
    let source = source_via(&f, &b.password());
    let direct = Arc::new(PostgresSink::from_settings(f.server.clone(), &f.schema));
    let rt = common::runtime(source.clone(), direct.clone(), dir.path(), 1_000);
    let report = sync(&rt).await;
    // what the proxy and sshd saw, should the read not have failed
    assert_ne!(
        report.status,
        ferry_engine::report::Status::Succeeded,
        "the cut did not end the read: {:?}, logins {}, sshd log: {}",
        b.proxy.stats(),
        b.logins(),
        b.sshd.log()
    );
    let error = failure(&report);
    if ending == Ending::Hang {
        assert!(
            error.contains("SSH tunnel") && error.contains("keepalives unanswered"),
            "says the tunnel went silent: {error}"
        );
        b.proxy.heal();
    }
    assert!(report.streams[0].rows_committed < ROWS as u64);
    if ending != Ending::Hang {
        assert_eq!(b.proxy.stats().cut, 1, "the fault happened");
    }
    // the same source: its tunnel reconnects
    let rt = common::runtime(source, direct, dir.path(), 1_000);
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_whole(&f).await;
    assert_eq!(b.logins(), 2, "the rerun logged in again: {}", b.sshd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_gone_silent_mid_read_is_given_up_with_position_and_rerun_completes() {
    cut_mid_read(Ending::Hang).await;
}

ferry_testkit::cut_tests! {
    cut_mid_read => a_tunnel_closed_mid_read_fails_with_position_and_rerun_completes, a_tunnel_reset_mid_read_fails_with_position_and_rerun_completes;
}
