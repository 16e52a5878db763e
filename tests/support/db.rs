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
