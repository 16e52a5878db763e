//! Reading and writing through an SSH tunnel (`tunnel = { … }`): a real OpenSSH sshd on
//! loopback (the kit's `sftp_server`, TCP forwarding on) forwarding to the real MariaDB
//! at 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL` overrides it), with the kit's TCP proxy
//! between Ferry and sshd so the tests see the rows cross the tunnel and can cut it.

use std::sync::Arc;
use std::time::Duration;

use ferry_connector_mysql::{ConnSettings, MysqlSink, MysqlSource};
use ferry_core::{ErrorKind, Sink, Source, WriteMode};
use ferry_engine::report::Status;
use ferry_engine::StreamConfig;
use ferry_testkit as testkit;
use ferry_testkit::bastion::Bastion;
use ferry_testkit::fault::{Direction, Ending};
use ferry_testkit::sftp_server::SftpServer;
use mysql_async::prelude::Queryable;

const ROWS: i64 = 5_000;
/// The digits 0–9 as a derived table (no recursive CTE: MariaDB caps its iterations).
const DIGITS: &str = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
     UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
     UNION ALL SELECT 8 UNION ALL SELECT 9)";

fn server() -> ConnSettings {
    let url = std::env::var("FERRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    ConnSettings::from_url(&url).expect("FERRY_TEST_MYSQL_URL is a mysql:// URL")
}

async fn admin(s: &ConnSettings, db: Option<&str>) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(s.host.clone())
        .tcp_port(s.port)
        .user(Some(s.user.clone()))
        .pass(s.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(db.map(str::to_string))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
        panic!(
            "MariaDB is not reachable on {}:{}: start it with `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd` ({e})",
            s.host, s.port
        )
    })
}

/// The connection fields of database `db` as TOML, then `extra`.
fn toml(s: &ConnSettings, db: &str, extra: &str) -> String {
    let password = s
        .password
        .as_ref()
        .map(|p| format!("password = \"{}\"\n", p.expose()))
        .unwrap_or_default();
    format!(
        "host = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{db}\"\n{password}{extra}",
        s.host, s.port, s.user
    )
}

/// A fresh database holding `src` (ROWS rows, `v = md5(id)`), and an admin connection.
async fn fixture() -> (ConnSettings, String, mysql_async::Conn) {
    let s = server();
    let db = testkit::fresh_name("ferry_test").to_lowercase();
    let mut c = admin(&s, None).await;
    for sql in [
        format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"),
        format!("CREATE TABLE `{db}`.src (id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL)"),
        format!(
            "INSERT INTO `{db}`.src SELECT n, md5(n) FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 1 AS n \
             FROM {DIGITS} a, {DIGITS} b, {DIGITS} c, {DIGITS} e) g WHERE n <= {ROWS}"
        ),
    ] {
        c.query_drop(sql).await.unwrap();
    }
    (s, db, c)
}

/// `dst` holds every row of `src` once, with its value.
async fn assert_whole(c: &mut mysql_async::Conn, db: &str) {
    let (n, distinct, right): (i64, i64, i64) = c
        .query_first(format!(
            "SELECT count(*), count(DISTINCT id), sum(v = md5(id)) FROM `{db}`.dst"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (n, distinct, right),
        (ROWS, ROWS, ROWS),
        "rows, distinct keys, right values"
    );
}

fn stream(mode: WriteMode) -> StreamConfig {
    let mut sc = StreamConfig::named("src");
    sc.destination = Some("dst".into());
    sc.mode = Some(mode);
    sc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_read_and_written_through_the_tunnel() {
    let (s, db, mut c) = fixture().await;
    let b = Bastion::start().await;
    let through = b.password();
    let dir = std::env::temp_dir();
    let source: Arc<dyn Source> =
        Arc::new(testkit::from_toml(&toml(&s, &db, &through), &dir, MysqlSource::new).unwrap());
    let sink: Arc<dyn Sink> =
        Arc::new(testkit::from_toml(&toml(&s, &db, &through), &dir, MysqlSink::new).unwrap());
    source.check().await.unwrap();
    sink.check().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(source, sink, state.path());
    let report = testkit::sync(&rt, &[stream(WriteMode::Overwrite)], ("mysql", "mysql")).await;
    testkit::assert_succeeded(&report);
    assert_whole(&mut c, &db).await;
    let st = b.proxy.stats();
    assert!(st.to_client > 100_000 && st.to_target > 100_000, "{st:?}");

    // a tunnel host presenting another key is refused, nothing sent to it
    let other = SftpServer::start();
    let wrong = toml(
        &s,
        &db,
        &b.password().replace(b.sshd.host_key(), other.host_key()),
    );
    let source = testkit::from_toml(&wrong, &dir, MysqlSource::new).unwrap();
    let e = source.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(e.to_string().contains("SSH tunnel"), "{e}");
    assert!(
        !b.sshd.log().contains("Failed password"),
        "{}",
        b.sshd.log()
    );

    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
    let _ = c.disconnect().await;
}

/// The tunnel's SSH connection ends (or goes silent: keepalives unanswered) in the middle
/// of the read: the stream fails with its position, and a rerun (the tunnel reopened)
/// completes without duplicates.
async fn cut_mid_read(ending: Ending) {
    let (s, db, mut c) = fixture().await;
    let b = Bastion::start().await;
    // past login and discovery, well before the end of the ~250 kB of rows
    b.proxy.cut_after(Direction::ToClient, 120_000, ending, 1);
    let dir = std::env::temp_dir();
    let source: Arc<dyn Source> = Arc::new(
        testkit::from_toml(&toml(&s, &db, &b.password()), &dir, MysqlSource::new).unwrap(),
    );
    let direct: Arc<dyn Sink> =
        Arc::new(testkit::from_toml(&toml(&s, &db, ""), &dir, MysqlSink::new).unwrap());
    let mut sc = stream(WriteMode::Upsert);
    sc.incremental = Some(true);
    sc.cursor = Some("id".into());
    let state = tempfile::tempdir().unwrap();
    let runtime = || {
        let mut rt = testkit::runtime(source.clone(), direct.clone(), state.path());
        rt.settings.batch_size = 500;
        rt
    };
    let rt = runtime();
    let first = testkit::sync(&rt, std::slice::from_ref(&sc), ("mysql", "mysql"));
    let report = tokio::time::timeout(Duration::from_secs(120), first)
        .await
        .expect("a tunnel gone silent is given up, not waited on forever");
    assert_eq!(report.status, Status::Failed, "{report:?}");
    let error = report.streams[0].error.clone().expect("an error");
    assert!(error.contains("stream src"), "names the stream: {error}");
    assert!(
        error.contains("last committed: {") || error.contains("nothing committed yet"),
        "says where a rerun resumes: {error}"
    );
    assert!(report.streams[0].rows_committed < ROWS as u64);
    if ending == Ending::Hang {
        assert!(
            error.contains("sent nothing"),
            "says the tunnel went silent: {error}"
        );
        b.proxy.heal();
    } else {
        assert_eq!(b.proxy.stats().cut, 1, "the fault happened");
    }
    // the same source: its tunnel reconnects, and the read resumes after the last commit
    let report = testkit::sync(&runtime(), &[sc], ("mysql", "mysql")).await;
    testkit::assert_succeeded(&report);
    assert_whole(&mut c, &db).await;
    assert_eq!(b.logins(), 2, "the rerun logged in again: {}", b.sshd.log());

    c.query_drop(format!("DROP DATABASE `{db}`")).await.unwrap();
    let _ = c.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_gone_silent_mid_read_is_given_up_with_position_and_rerun_completes() {
    cut_mid_read(Ending::Hang).await;
}

ferry_testkit::cut_tests! {
    cut_mid_read => a_tunnel_closed_mid_read_fails_with_position_and_rerun_completes, a_tunnel_reset_mid_read_fails_with_position_and_rerun_completes;
}
