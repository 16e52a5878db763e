//! Connecting: what `check` says when something is wrong (each failure its kind and a
//! hint), TLS modes, permissions, and a password that never shows in errors or `Debug`.
//! On the real PostgreSQL at 127.0.0.1:5432 (`FERRY_TEST_PG_URL` overrides it), plus a
//! stand-in server on a random local port that refuses every password.

mod common;

use std::sync::Arc;

use common::{admin_to, quote, server, Fixture};
use ferry_connector_postgres::{ConnSettings, PostgresSink, PostgresSource, SslMode};
use ferry_core::{ErrorKind, ReadRequest, Secret, Sink, Source};
use ferry_testkit::sql_fixtures;
use ferry_testkit::{self as testkit, sql::SqlFixture, SourceFixture};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn source(s: ConnSettings) -> PostgresSource {
    PostgresSource::from_settings(s, &["public"])
}

#[tokio::test]
async fn check_maps_each_failure_to_a_kind_with_a_hint() {
    let ok = server();
    // the working server passes, as source and as destination
    source(ok.clone()).check().await.unwrap();
    PostgresSink::from_settings(ok.clone(), "public")
        .check()
        .await
        .unwrap();

    // nothing listens: unreachable
    let mut s = ok.clone();
    s.port = 1;
    let e = source(s).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "127.0.0.1:1");
    assert!(e.kind().hint().is_some());

    // a host name that does not resolve: unreachable
    let mut s = ok.clone();
    s.host = "no-such-host.invalid".into();
    let e = source(s).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "no-such-host.invalid");

    // a role the server does not know (SQLSTATE 28000): the login is refused
    let mut s = ok.clone();
    s.user = "ferry_no_such_role".into();
    let e = source(s).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::AuthFailed, "ferry_no_such_role");
    assert_eq!(e.context_value("sqlstate"), Some("28000"));

    // a database that does not exist (3D000)
    let mut s = ok.clone();
    s.database = "ferry_no_such_db".into();
    let e = source(s.clone()).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains("`ferry_no_such_db` does not exist"),
        "{e}"
    );
    let e = PostgresSink::from_settings(s, "public")
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // a schema that does not exist
    let e = PostgresSource::from_settings(ok.clone(), &["ferry_no_such_schema"])
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains("public"),
        "it lists the schemas there are: {e}"
    );

    // something that is not PostgreSQL answering on the port
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        if let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let mut s = ok.clone();
    s.port = port;
    s.sslmode = SslMode::Disable;
    let e = source(s).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
}

#[tokio::test]
async fn permissions_are_reported_as_permission_denied() {
    let f = Fixture::new().await;
    f.sql("CREATE TABLE secret_stuff (id int PRIMARY KEY); INSERT INTO secret_stuff VALUES (1)")
        .await;
    let admin = admin_to(&f.server, &f.server.database).await;
    let role = testkit::fresh_name("ferry_role").to_lowercase();
    let db = testkit::fresh_name("ferry_db").to_lowercase();
    for sql in [
        format!("CREATE ROLE {} LOGIN", quote(&role)),
        format!("CREATE DATABASE {}", quote(&db)),
        format!("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", quote(&db)),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let result = async {
        let mut s = f.server.clone();
        s.user = role.clone();
        // no CONNECT on the database (42501 at login)
        let mut no_connect = s.clone();
        no_connect.database = db.clone();
        let e = source(no_connect).check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert_eq!(e.context_value("sqlstate"), Some("42501"));
        // no USAGE on the schema
        let src = PostgresSource::from_settings(s.clone(), &[&f.schema]);
        let e = src.check().await.unwrap_err();
        sql_fixtures::assert_error(&e, ErrorKind::PermissionDenied, "GRANT USAGE");
        // USAGE but no SELECT: reading the table is refused
        admin
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA {} TO {}",
                quote(&f.schema),
                quote(&role)
            ))
            .await
            .unwrap();
        src.check().await.unwrap();
        let e = testkit::read_refused(&src, ReadRequest::full("secret_stuff")).await;
        sql_fixtures::assert_error(&e, ErrorKind::PermissionDenied, "permission denied");
        // a destination schema the user may not create tables in
        let e = testkit::open_refused(
            &PostgresSink::from_settings(s.clone(), &f.schema),
            "new_table",
            testkit::simple_batch(1, 1, "x").schema(),
            ferry_core::WriteMode::Append,
        )
        .await;
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    };
    let outcome = std::panic::AssertUnwindSafe(result).catch_unwind().await;
    for sql in [
        format!("DROP DATABASE IF EXISTS {}", quote(&db)),
        format!(
            "REVOKE ALL ON SCHEMA {} FROM {}",
            quote(&f.schema),
            quote(&role)
        ),
        format!("DROP ROLE IF EXISTS {}", quote(&role)),
    ] {
        let _ = admin.batch_execute(&sql).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn tls_modes() {
    let f = Fixture::new().await;
    f.create("t", &testkit::simple_batch(1, 3, "x"))
        .await
        .unwrap();
    let admin = admin_to(&f.server, &f.server.database).await;
    let ssl_on = admin
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        == "on";
    let encrypted = |mode: SslMode| {
        let f = &f;
        async move {
            let mut s = f.server.clone();
            s.sslmode = mode;
            let src = PostgresSource::from_settings(s.clone(), &[&f.schema]);
            src.check().await?;
            let probe = f.source_with(&format!(
                "sslmode = \"{}\"\nqueries = [{{ name = \"tls\", sql = \"SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()\" }}]\n",
                mode.name()
            ));
            let rows = testkit::read_all(&probe, ReadRequest::full("tls")).await;
            Ok::<bool, ferry_core::Error>(
                rows[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<ferry_core::arrow_array::BooleanArray>()
                    .unwrap()
                    .value(0),
            )
        }
    };
    assert!(!encrypted(SslMode::Disable).await.unwrap());
    if ssl_on {
        assert!(encrypted(SslMode::Prefer).await.unwrap());
        assert!(encrypted(SslMode::Require).await.unwrap());
        // the test server's certificate is self-signed: verify-full refuses it, saying TLS
        let e = encrypted(SslMode::VerifyFull).await.unwrap_err();
        sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "TLS");
        // even with its certificate as the authority, the name 127.0.0.1 is not in it
        let cert = admin
            .query_one("SHOW ssl_cert_file", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        if std::fs::read(&cert).is_ok() {
            let mut s = f.server.clone();
            s.sslmode = SslMode::VerifyFull;
            s.ca_file = Some(cert.into());
            let e = source(s.clone()).check().await.unwrap_err();
            sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "TLS");
            // a certificate made for `localhost` (Debian's snakeoil) passes verify-full there
            if e.message().contains("DnsName(\"localhost\")") {
                s.host = "localhost".into();
                let src = PostgresSource::from_settings(s, &[&f.schema]);
                src.check().await.unwrap();
                assert_eq!(
                    testkit::read_all(&src, ReadRequest::full("t"))
                        .await
                        .iter()
                        .map(|b| b.num_rows())
                        .sum::<usize>(),
                    3
                );
            }
        }
    } else {
        assert!(!encrypted(SslMode::Prefer).await.unwrap());
        let e = encrypted(SslMode::Require).await.unwrap_err();
        sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "TLS");
    }
    // a CA file that is not there is a config error, before any connection
    let mut s = f.server.clone();
    s.sslmode = SslMode::VerifyFull;
    s.ca_file = Some("/nonexistent/ca.pem".into());
    let e = source(s).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
}

/// A stand-in server that asks for a clear-text password and refuses it with SQLSTATE
/// 28P01, like PostgreSQL does for a wrong password. Returns its port and the password
/// it received.
async fn refusing_server() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // the startup message, after an SSL request if the client sends one
        loop {
            let len = sock.read_i32().await.unwrap() as usize;
            let mut body = vec![0; len - 4];
            sock.read_exact(&mut body).await.unwrap();
            if body[..4] == 80877103i32.to_be_bytes() {
                sock.write_all(b"N").await.unwrap();
                continue;
            }
            break;
        }
        // AuthenticationCleartextPassword
        sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])
            .await
            .unwrap();
        assert_eq!(sock.read_u8().await.unwrap(), b'p');
        let len = sock.read_i32().await.unwrap() as usize;
        let mut password = vec![0; len - 4];
        sock.read_exact(&mut password).await.unwrap();
        password.pop();
        let mut fields = Vec::new();
        for (k, v) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed for user \"ferry\""),
        ] {
            fields.push(k);
            fields.extend_from_slice(v.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
        msg.extend(fields);
        sock.write_all(&msg).await.unwrap();
        String::from_utf8(password).unwrap()
    });
    (port, handle)
}

#[tokio::test]
async fn a_canary_password_never_shows_in_errors_logs_or_debug() {
    const CANARY: &str = "canary-Pw-7f3a9c1e";
    std::env::set_var("FERRY_TEST_PG_CANARY", CANARY);
    let dir = tempfile::tempdir().unwrap();
    // how each parsed config prints
    let mut configs = Vec::new();

    // the field form, against a server that rejects the password (28P01)
    let (port, seen) = refusing_server().await;
    let toml = format!(
        "host = \"127.0.0.1\"\nport = {port}\ndatabase = \"db\"\nuser = \"ferry\"\n\
         password = \"${{env:FERRY_TEST_PG_CANARY}}\"\nsslmode = \"prefer\"\n"
    );
    let src =
        testkit::from_toml_shown(&toml, dir.path(), &mut configs, PostgresSource::new).unwrap();
    assert!(!configs.concat().contains(CANARY), "{configs:?}");
    assert!(!format!("{src:?}").contains(CANARY), "{src:?}");
    let e = src.check().await.unwrap_err();
    assert_eq!(
        seen.await.unwrap(),
        CANARY,
        "the password was sent to the server"
    );
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert_eq!(e.context_value("sqlstate"), Some("28P01"));
    let shown = format!("{e} | {e:?} | {}", e.message());
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(shown.contains("ferry"), "the error names the user: {shown}");

    // the URL form, with the password as a reference inside it, as a destination
    let (port, seen) = refusing_server().await;
    let toml = format!(
        "url = \"postgres://ferry:${{env:FERRY_TEST_PG_CANARY}}@127.0.0.1:{port}/db?sslmode=disable\"\n"
    );
    let sink =
        testkit::from_toml_shown(&toml, dir.path(), &mut configs, PostgresSink::new).unwrap();
    assert!(!configs.concat().contains(CANARY), "{configs:?}");
    assert!(!format!("{sink:?} {:?}", sink.settings()).contains(CANARY));
    assert_eq!(
        sink.settings().location(),
        format!("postgres://127.0.0.1:{port}/db")
    );
    let e = sink.check().await.unwrap_err();
    assert_eq!(seen.await.unwrap(), CANARY);
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    let shown = format!("{e} | {e:?}");
    assert!(!shown.contains(CANARY), "{shown}");

    // an unreachable server and a bad URL say nothing of it either
    let url = format!("postgres://ferry:{CANARY}@127.0.0.1:1/db");
    let s = ConnSettings::from_url(&url).unwrap();
    assert!(!format!("{s:?}").contains(CANARY));
    let e = source(s).check().await.unwrap_err();
    assert!(!format!("{e} | {e:?}").contains(CANARY));
    let e = ConnSettings::from_url(&format!("postgres://ferry:{CANARY}@127.0.0.1:1/db?x=1"))
        .unwrap_err();
    assert!(!format!("{e} | {e:?}").contains(CANARY));
    // and the leak guard knows the value, so logs and reports scrub it
    let secret = Secret::new(CANARY);
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(
        ferry_core::redact::redact(&format!("pw={CANARY}")),
        "pw=[redacted]"
    );
    let _: Arc<dyn Sink> = Arc::new(sink);
}
