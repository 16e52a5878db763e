//! Tenant binding, attacked the three ways it failed open, on every destination that keeps
//! the tag (sqlite, postgres, mysql):
//!
//! - a folder that names no client writes into a destination bound to a client;
//! - a stream named `_ferry_owner` overwrites the tag;
//! - two syncs binding an unbound destination at once both win (check-then-set).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`) and MySQL/MariaDB on
//! 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/run` starts both.

mod support;

use ferry_core::Sink;
use mysql_async::prelude::Queryable;
use support::cli::{self, ferry, out_apart as text};
use support::db::{
    block, create_mysql_database, fresh, mysql, mysql_url, mysql_url_for, pg, pg_url,
};
use support::{connector, folder, sqlite};

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
        let place = fresh("ferry_tenant");
        match kind {
            Kind::Sqlite => {}
            Kind::Postgres => block(async {
                pg().await
                    .batch_execute(&format!("CREATE SCHEMA \"{place}\""))
                    .await
                    .unwrap()
            }),
            Kind::Mysql => create_mysql_database(&place),
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
        folder::write(
            &dir,
            "sync.toml",
            format!(
                "{top}{rest}\n[destination]\ntype = \"{}\"\n{}",
                self.connector(),
                self.fields()
            ),
        );
        dir
    }

    /// Rows of `table`, `None` when it does not exist.
    fn rows(&self, table: &str) -> Option<i64> {
        match self.kind {
            Kind::Sqlite => {
                sqlite::rows(&self.tmp.path().join("shared.db"), table).map(|n| n as i64)
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
        let section = connector::section(self.connector(), &self.fields(), self.tmp.path());
        ferry::registry().build_sink(&section).unwrap()
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
        // the way out is named; no permission is missing: the hint must not send the user
        // to grant one
        cli::assert_says(
            &t,
            &[
                "bound to client `acme`",
                "names no client",
                "client = \"acme\"",
            ],
            &["grant the missing permission"],
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
        .map(|(c, dir)| (c.clone(), cli::spawn_quiet(dir, &["sync"])))
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

/// One test per destination kind for each case.
macro_rules! per_kind {
    ($($case:ident: $sqlite:ident, $postgres:ident, $mysql:ident;)+) => {$(
        #[test]
        fn $sqlite() {
            $case(Kind::Sqlite);
        }
        #[test]
        fn $postgres() {
            $case(Kind::Postgres);
        }
        #[test]
        fn $mysql() {
            $case(Kind::Mysql);
        }
    )+};
}

per_kind! {
    an_unnamed_folder_is_refused: sqlite_unnamed_folder, postgres_unnamed_folder, mysql_unnamed_folder;
    a_stream_cannot_take_the_tags_name: sqlite_reserved_name, postgres_reserved_name, mysql_reserved_name;
    binding_is_insert_if_absent: sqlite_bind_race, postgres_bind_race, mysql_bind_race;
}
