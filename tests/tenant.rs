//! Tenant binding, attacked the three ways it failed open, on every destination that keeps
//! the tag (sqlite, postgres, mysql):
//!
//! - a folder that names no client writes into a destination bound to a client;
//! - a stream named `_ferry_owner` overwrites the tag;
//! - two syncs binding an unbound destination at once both win (check-then-set).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`) and MySQL/MariaDB on
//! 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/run` starts both.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use ferry_core::config::ConnectorConfig;
use ferry_core::{ConfigNode, Sink};
use mysql_async::prelude::Queryable;

fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pg_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into())
}

fn mysql_url() -> String {
    std::env::var("FERRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn mysql_url_for(db: &str) -> String {
    let url = mysql_url();
    let (base, _) = url
        .rsplit_once('/')
        .expect("a mysql:// URL with a database");
    format!("{base}/{db}")
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn pg() -> tokio_postgres::Client {
    match tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Err(e) => panic!(
            "PostgreSQL is not reachable at {} ({e}): start it with \
             `pg_ctlcluster --skip-systemctl-redirect 15 main start` (or run `.ci/run`)",
            pg_url()
        ),
    }
}

async fn mysql(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url).expect("FERRY_TEST_MYSQL_URL");
    mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
        panic!(
            "MySQL/MariaDB is not reachable at {url} ({e}): start it with \
             `service mariadb start` (or run `.ci/run`)"
        )
    })
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// One fresh destination of a kind (a file, a schema, a database), dropped at the end.
struct Dest {
    kind: Kind,
    tmp: tempfile::TempDir,
    place: String,
}

impl Dest {
    fn new(kind: Kind) -> Dest {
        let place = ferry_testkit::fresh_name("ferry_tenant").to_lowercase();
        match kind {
            Kind::Sqlite => {}
            Kind::Postgres => block(async {
                pg().await
                    .batch_execute(&format!("CREATE SCHEMA \"{place}\""))
                    .await
                    .unwrap()
            }),
            Kind::Mysql => block(async {
                let mut m = mysql(&mysql_url()).await;
                m.query_drop(format!("CREATE DATABASE `{place}`"))
                    .await
                    .unwrap();
                let _ = m.disconnect().await;
            }),
        }
        Dest {
            kind,
            tmp: tempfile::tempdir().unwrap(),
            place,
        }
    }

    fn connector(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }

    /// The `[destination]` fields, without `type`.
    fn fields(&self) -> String {
        match self.kind {
            Kind::Sqlite => format!(
                "path = \"{}\"\n",
                self.tmp.path().join("shared.db").display()
            ),
            Kind::Postgres => format!("url = \"{}\"\nschema = \"{}\"\n", pg_url(), self.place),
            Kind::Mysql => format!("url = \"{}\"\n", mysql_url_for(&self.place)),
        }
    }

    /// A client folder named `name` writing here; `client` on top when given.
    fn folder(&self, name: &str, client: Option<&str>, rest: &str) -> std::path::PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let top = client
            .map(|c| format!("client = \"{c}\"\n\n"))
            .unwrap_or_default();
        std::fs::write(
            dir.join("sync.toml"),
            format!(
                "{top}{rest}\n[destination]\ntype = \"{}\"\n{}",
                self.connector(),
                self.fields()
            ),
        )
        .unwrap();
        dir
    }

    /// Rows of `table`, `None` when it does not exist.
    fn rows(&self, table: &str) -> Option<i64> {
        match self.kind {
            Kind::Sqlite => {
                let conn = rusqlite::Connection::open(self.tmp.path().join("shared.db")).ok()?;
                conn.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
                    r.get(0)
                })
                .ok()
            }
            Kind::Postgres => block(async {
                pg().await
                    .query_one(
                        &format!("SELECT COUNT(*) FROM \"{}\".\"{table}\"", self.place),
                        &[],
                    )
                    .await
                    .ok()
                    .map(|r| r.get::<_, i64>(0))
            }),
            Kind::Mysql => block(async {
                let mut m = mysql(&mysql_url_for(&self.place)).await;
                let n: Option<i64> = m
                    .query_first(format!("SELECT COUNT(*) FROM `{table}`"))
                    .await
                    .ok()
                    .flatten();
                let _ = m.disconnect().await;
                n
            }),
        }
    }

    /// A sink on this destination, as `ferry sync` builds it.
    fn sink(&self) -> std::sync::Arc<dyn Sink> {
        let node = ConfigNode::from_toml(&self.fields(), self.tmp.path()).unwrap();
        ferry::registry()
            .build_sink(&ConnectorConfig {
                kind: self.connector().into(),
                kind_offset: 0,
                node,
            })
            .unwrap()
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        let place = self.place.clone();
        match self.kind {
            Kind::Sqlite => {}
            Kind::Postgres => block(async {
                let _ = pg()
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{place}\" CASCADE"))
                    .await;
            }),
            Kind::Mysql => block(async {
                let mut m = mysql(&mysql_url()).await;
                let _ = m
                    .query_drop(format!("DROP DATABASE IF EXISTS `{place}`"))
                    .await;
                let _ = m.disconnect().await;
            }),
        }
    }
}

const ORDERS: &str = r#"[source]
type = "generate"
streams = [{ name = "orders", preset = "orders", rows = 20 }]

[[streams]]
name = "orders"
mode = "upsert"
"#;

/// The destination, bound to acme by acme's first sync.
fn bound_to_acme(kind: Kind) -> (Dest, std::path::PathBuf) {
    let d = Dest::new(kind);
    let acme = d.folder("acme", Some("acme"), ORDERS);
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{kind:?} acme: {}", text(&o));
    assert_eq!(
        d.rows("_ferry_owner"),
        Some(1),
        "{kind:?}: acme's sync bound it"
    );
    (d, acme)
}

fn an_unnamed_folder_is_refused(kind: Kind) {
    let (d, _acme) = bound_to_acme(kind);
    let source = r#"[source]
type = "generate"
streams = [{ name = "intruder", preset = "users", rows = 20 }]
"#;
    let unnamed = d.folder("unnamed", None, source);
    for cmd in ["plan", "sync"] {
        let o = ferry(&unnamed, &[cmd]);
        let t = text(&o);
        assert!(!o.status.success(), "{kind:?} {cmd}: {t}");
        assert!(
            t.contains("bound to client `acme`") && t.contains("names no client"),
            "{kind:?} {cmd}: {t}"
        );
        assert!(
            t.contains("client = \"acme\""),
            "{kind:?} {cmd}: the way out: {t}"
        );
        // no permission is missing: the hint must not send the user to grant one
        assert!(
            !t.contains("grant the missing permission"),
            "{kind:?} {cmd}: {t}"
        );
    }
    assert_eq!(
        d.rows("intruder"),
        None,
        "{kind:?}: the unnamed folder wrote"
    );
}

fn a_stream_cannot_take_the_tags_name(kind: Kind) {
    let (d, acme) = bound_to_acme(kind);
    // a stream named like the tag, overwritten with a `client` column of its own
    let source = r#"[source]
type = "generate"
streams = [{ name = "_ferry_owner", rows = 1, columns = [{ name = "client", type = "string" }] }]

[[streams]]
name = "_ferry_owner"
mode = "overwrite"
"#;
    let sneaky = d.folder("sneaky", Some("acme"), source);
    let o = ferry(&sneaky, &["sync"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{kind:?}: {t}");
    assert!(
        t.contains("`_ferry_`") && t.contains("Ferry's own"),
        "{kind:?}: {t}"
    );
    // and under another destination name, any case
    let renamed = source.replace(
        "mode = \"overwrite\"",
        "mode = \"overwrite\"\ndestination = \"_FERRY_owner\"",
    );
    let sneaky = d.folder(
        "sneaky2",
        Some("acme"),
        &renamed.replace("name = \"_ferry_owner\"", "name = \"tags\""),
    );
    let o = ferry(&sneaky, &["sync"]);
    assert_eq!(o.status.code(), Some(2), "{kind:?}: {}", text(&o));
    // the tag is intact: acme still syncs, another client is still refused
    assert_eq!(d.rows("_ferry_owner"), Some(1), "{kind:?}");
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{kind:?}: {}", text(&o));
    let globex = d.folder("globex", Some("globex"), ORDERS);
    let o = ferry(&globex, &["sync"]);
    assert!(
        text(&o).contains("bound to client `acme`"),
        "{kind:?}: {}",
        text(&o)
    );
}

fn binding_is_insert_if_absent(kind: Kind) {
    let d = Dest::new(kind);
    block(async {
        // two syncs both find the destination unbound …
        let (first, second) = (d.sink(), d.sink());
        assert_eq!(first.owner().await.unwrap(), None);
        assert_eq!(second.owner().await.unwrap(), None);
        // … then both bind: the first wins, the second is told so and changes nothing
        assert_eq!(
            first.bind_owner("acme").await.unwrap().as_deref(),
            Some("acme")
        );
        assert_eq!(
            second.bind_owner("globex").await.unwrap().as_deref(),
            Some("acme"),
            "{kind:?}: the second binding replaced the first"
        );
        assert_eq!(first.owner().await.unwrap().as_deref(), Some("acme"));
    });
    assert_eq!(d.rows("_ferry_owner"), Some(1), "{kind:?}");
    // through the CLI: the loser of the race is refused before it reads
    let globex = d.folder("globex", Some("globex"), ORDERS);
    let o = ferry(&globex, &["sync"]);
    assert!(!o.status.success(), "{kind:?}: {}", text(&o));
    assert!(
        text(&o).contains("bound to client `acme`"),
        "{kind:?}: {}",
        text(&o)
    );
    assert_eq!(d.rows("orders"), None, "{kind:?}: globex wrote");

    // many syncs of two clients at once on a fresh destination: one client wins, every
    // sync of the other is refused
    let d = Dest::new(kind);
    let folders: Vec<(String, std::path::PathBuf)> = (0..6)
        .map(|i| {
            let client = if i % 2 == 0 { "acme" } else { "globex" };
            (
                client.to_string(),
                d.folder(&format!("f{i}"), Some(client), ORDERS),
            )
        })
        .collect();
    let children: Vec<(String, std::process::Child)> = folders
        .iter()
        .map(|(c, dir)| {
            let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
                .current_dir(dir)
                .args(["sync"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (c.clone(), child)
        })
        .collect();
    let mut winners = std::collections::BTreeSet::new();
    for (c, mut child) in children {
        if child.wait().unwrap().success() {
            winners.insert(c);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{kind:?}: clients that wrote: {winners:?}"
    );
    assert_eq!(d.rows("_ferry_owner"), Some(1), "{kind:?}");
}

#[test]
fn sqlite_unnamed_folder() {
    an_unnamed_folder_is_refused(Kind::Sqlite);
}

#[test]
fn postgres_unnamed_folder() {
    an_unnamed_folder_is_refused(Kind::Postgres);
}

#[test]
fn mysql_unnamed_folder() {
    an_unnamed_folder_is_refused(Kind::Mysql);
}

#[test]
fn sqlite_reserved_name() {
    a_stream_cannot_take_the_tags_name(Kind::Sqlite);
}

#[test]
fn postgres_reserved_name() {
    a_stream_cannot_take_the_tags_name(Kind::Postgres);
}

#[test]
fn mysql_reserved_name() {
    a_stream_cannot_take_the_tags_name(Kind::Mysql);
}

#[test]
fn sqlite_bind_race() {
    binding_is_insert_if_absent(Kind::Sqlite);
}

#[test]
fn postgres_bind_race() {
    binding_is_insert_if_absent(Kind::Postgres);
}

#[test]
fn mysql_bind_race() {
    binding_is_insert_if_absent(Kind::Mysql);
}
