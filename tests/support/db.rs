//! The test databases: PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`) and MySQL or
//! MariaDB on 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`), both started by `.ci/test`.

/// The test PostgreSQL database.
pub fn pg_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into())
}

/// The test MySQL/MariaDB database.
pub fn mysql_url() -> String {
    std::env::var("FERRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// [`mysql_url`] with the database `db` instead.
pub fn mysql_url_for(db: &str) -> String {
    let url = mysql_url();
    let (base, _) = url
        .rsplit_once('/')
        .expect("a mysql:// URL with a database");
    format!("{base}/{db}")
}

/// A client of the test PostgreSQL database.
pub async fn pg() -> tokio_postgres::Client {
    match tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Err(e) => panic!(
            "PostgreSQL is not reachable at {} ({e}): start it with `.ci/test` \
             (or `pg_ctlcluster --skip-systemctl-redirect 15 main start`), or set FERRY_TEST_PG_URL",
            pg_url()
        ),
    }
}

/// A connection to the MySQL/MariaDB database at `url`.
pub async fn mysql(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url).expect("FERRY_TEST_MYSQL_URL");
    mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
        panic!(
            "MySQL/MariaDB is not reachable at {url} ({e}): start it with `.ci/test` \
             (or `service mariadb start`), or set FERRY_TEST_MYSQL_URL"
        )
    })
}

/// Creates the database `db` on the test MySQL/MariaDB server.
pub fn create_mysql_database(db: &str) {
    use mysql_async::prelude::Queryable;
    block(async {
        let mut m = mysql(&mysql_url()).await;
        m.query_drop(format!("CREATE DATABASE `{db}`"))
            .await
            .unwrap_or_else(|e| panic!("create the database {db}: {e}"));
        let _ = m.disconnect().await;
    })
}

/// Runs `f` to its end on a runtime of its own (for tests that are plain threads).
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A fresh name for a schema, database or table of one test.
pub fn fresh(prefix: &str) -> String {
    ferry_testkit::fresh_name(prefix).to_lowercase()
}

/// A fresh schema of the test PostgreSQL database as a destination.
pub struct PgDestination {
    /// The schema's name.
    pub schema: String,
    /// The `[destination]` lines that write into it.
    pub section: String,
}

impl PgDestination {
    /// Creates a schema named from `prefix`.
    pub fn new(prefix: &str) -> Self {
        let schema = fresh(prefix);
        block(async {
            let sql = format!("CREATE SCHEMA \"{schema}\"");
            pg().await.batch_execute(&sql).await.unwrap()
        });
        let section = format!(
            "type = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"",
            pg_url()
        );
        PgDestination { schema, section }
    }

    /// The rows `sql` returns (`{schema}` in it is the schema's quoted name).
    pub fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let sql = sql.replace("{schema}", &format!("\"{}\"", self.schema));
        block(async { pg().await.query(&sql, &[]).await.unwrap() })
    }

    /// Checks that no staging or keys table is left, and drops the schema.
    pub fn finish(self) {
        block(async {
            let c = pg().await;
            let left = c
                .query_one(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_ferry\\_stage%'",
                    &[&self.schema],
                )
                .await
                .unwrap();
            assert_eq!(
                left.get::<_, i64>(0),
                0,
                "a staging or keys table was left behind"
            );
            let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
            c.batch_execute(&sql).await.unwrap()
        });
    }
}

/// A fresh database of the test MySQL/MariaDB server as a destination.
pub struct MysqlDestination {
    /// The database's name.
    pub db: String,
    /// The `[destination]` lines that write into it.
    pub section: String,
}

impl MysqlDestination {
    /// Creates a database named from `prefix`.
    pub fn new(prefix: &str) -> Self {
        use mysql_async::prelude::Queryable;
        let db = fresh(prefix);
        block(async {
            let mut m = mysql(&mysql_url()).await;
            m.query_drop(format!("CREATE DATABASE `{db}`"))
                .await
                .unwrap();
            let _ = m.disconnect().await;
        });
        let section = format!("type = \"mysql\"\nurl = \"{}\"", mysql_url_for(&db));
        MysqlDestination { db, section }
    }

    /// The rows `sql` returns in the database.
    pub fn query<T: mysql_async::prelude::FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        use mysql_async::prelude::Queryable;
        block(async {
            let mut m = mysql(&mysql_url_for(&self.db)).await;
            let rows = m.query(sql).await.unwrap();
            let _ = m.disconnect().await;
            rows
        })
    }

    /// Checks that no staging or keys table is left, and drops the database.
    pub fn finish(self) {
        use mysql_async::prelude::Queryable;
        block(async {
            let mut m = mysql(&mysql_url()).await;
            let left: Option<i64> = m
                .exec_first(
                    "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_ferry\\_stage%'",
                    (self.db.as_str(),),
                )
                .await
                .unwrap();
            assert_eq!(left, Some(0), "a staging or keys table was left behind");
            m.query_drop(format!("DROP DATABASE `{}`", self.db))
                .await
                .unwrap();
            let _ = m.disconnect().await;
        });
    }
}
