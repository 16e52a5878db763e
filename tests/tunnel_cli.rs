//! `ferry` reading PostgreSQL through an SSH tunnel (the kit's real sshd forwarding to
//! the test database), the tunnel's key and the database's password from the vault:
//! `check` shows the tunnel and its host key, `sync` delivers every row, and a wrong
//! host key stops the run naming the presented fingerprint, before any login.

mod support;

use std::path::Path;
use std::process::Output;

use ferry_testkit::sftp_server::{KeyKind, SftpServer, USER};
use support::cli::{ferry_in, out, Setup, MASTER_KEY};
use support::db::{block, fresh, pg};
use support::folder::with_config;

const ROWS: i64 = 500;

fn ferry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    ferry_in(dir).master_key(MASTER_KEY).run(args, stdin)
}

/// A schema with table `orders` (ROWS rows) in the test database.
fn orders() -> String {
    let schema = fresh("ferry_tunnel");
    block(async {
        pg().await
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; CREATE TABLE {schema}.orders (id int8 PRIMARY KEY, v text); \
                 INSERT INTO {schema}.orders SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g"
            ))
            .await
            .expect("create the test table");
    });
    schema
}

fn drop_schema(schema: &str) {
    block(async {
        let _ = pg()
            .await
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    });
}

fn sync_toml(sshd: &SftpServer, host_key: &str, schema: &str) -> String {
    format!(
        "client = \"acme\"
[source]
type = \"postgres\"
host = \"127.0.0.1\"
port = 5432
database = \"test\"
user = \"postgres\"
sslmode = \"disable\"
schemas = [\"{schema}\"]
tunnel = {{ host = \"127.0.0.1\", port = {port}, user = \"{USER}\", private_key = \"${{secret:acme_bastion_key}}\", private_key_passphrase = \"${{secret:acme_bastion_passphrase}}\", host_key = \"{host_key}\" }}

[destination]
type = \"file\"
path = \"out\"
format = \"csv\"

[[streams]]
name = \"orders\"
mode = \"overwrite\"
",
        port = sshd.port()
    )
}

/// The vault gets the tunnel's key and passphrase.
fn secrets(dir: &Path, key: &str, passphrase: &str) {
    for (name, value) in [
        ("acme_bastion_key", key),
        ("acme_bastion_passphrase", passphrase),
    ] {
        let o = ferry(dir, &["secrets", "set", name], Some(value));
        assert!(o.status.success(), "{}", out(&o));
    }
}

#[test]
fn a_database_behind_a_bastion_is_read_through_the_tunnel() {
    let sshd = SftpServer::start();
    let passphrase = "bastion pass 9";
    let key = sshd.user_key(KeyKind::Ed25519, passphrase);
    let schema = orders();
    let tmp = with_config(&sync_toml(&sshd, sshd.host_key(), &schema));
    let dir = tmp.path();
    secrets(dir, &key.private, passphrase);
    let o = ferry(dir, &["check"], None);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "tunnel ssh://127.0.0.1:{} to 127.0.0.1:5432, host key SHA256:",
            sshd.port()
        )),
        "check shows the tunnel: {text}"
    );
    let o = ferry(dir, &["sync"], None);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(!text.contains(passphrase), "{text}");
    let csv = std::fs::read_to_string(dir.join("out/orders.csv")).unwrap();
    assert_eq!(csv.lines().count() as i64, ROWS + 1, "header and every row");
    assert!(
        sshd.log().contains("Accepted publickey for ferrytest"),
        "{}",
        sshd.log()
    );
    drop_schema(&schema);
}

#[test]
fn a_bastion_with_another_host_key_stops_the_run_before_any_login() {
    let sshd = SftpServer::start();
    let other = SftpServer::start();
    let key = sshd.user_key(KeyKind::Ed25519, "p");
    let schema = orders();
    let tmp = with_config(&sync_toml(&sshd, other.host_key(), &schema));
    let dir = tmp.path();
    secrets(dir, &key.private, "p");
    let o = ferry(dir, &["sync"], None);
    assert!(!o.status.success());
    let text = out(&o);
    assert!(text.contains("SSH tunnel"), "{text}");
    assert!(
        text.contains("presented host key ssh-ed25519 SHA256:"),
        "{text}"
    );
    assert!(!sshd.log().contains("Accepted"), "{}", sshd.log());
    assert!(!sshd.log().contains("publickey for"), "{}", sshd.log());
    drop_schema(&schema);
}
