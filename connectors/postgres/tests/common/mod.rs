//! The test server and a fresh schema per fixture.
//!
//! Tests run against the real PostgreSQL at 127.0.0.1:5432 (`FERRY_TEST_PG_URL`
//! overrides it). Each fixture works in a schema of its own with a random name, dropped
//! when the fixture goes. A server that is down fails the tests with how to start it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferry_connector_postgres::{ConnSettings, PostgresSink, PostgresSource};
use ferry_core::{async_trait, Result, Sink, Source, WriteMode};
use ferry_engine::report::RunReport;
use ferry_engine::{RunOptions, Runtime, StreamConfig};
use ferry_testkit::{self as testkit, sql::SqlFixture};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

pub fn server_url() -> String {
    std::env::var("FERRY_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// The test server's settings.
pub fn server() -> ConnSettings {
    ConnSettings::from_url(&server_url()).expect("FERRY_TEST_PG_URL is a postgres:// URL")
}

pub fn down(s: &ConnSettings, e: &(dyn std::error::Error + 'static)) -> ! {
    let mut why = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        why.push_str(&format!(": {c}"));
        next = c.source();
    }
    panic!(
        "PostgreSQL is not reachable on {}:{}: start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` ({why})",
        s.host, s.port
    )
}

/// A plain driver connection to the test server (for setting up and inspecting).
pub async fn admin_to(s: &ConnSettings, database: &str) -> tokio_postgres::Client {
    let mut c = tokio_postgres::Config::new();
    c.host(&s.host)
        .port(s.port)
        .user(&s.user)
        .dbname(database)
        .application_name("ferry-tests")
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(p) = &s.password {
        c.password(p.expose());
    }
    match c.connect(tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Err(e) => down(s, &e),
    }
}

pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A fresh schema on the test server, dropped when the fixture goes.
pub struct Fixture {
    pub server: ConnSettings,
    pub schema: String,
    pub sink: Arc<PostgresSink>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let server = server();
        let schema = testkit::fresh_name("ferry_test").to_lowercase();
        let admin = admin_to(&server, &server.database).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA {}", quote(&schema)))
            .await
            .expect("create the test schema");
        let sink = Arc::new(PostgresSink::from_settings(server.clone(), &schema));
        Fixture {
            server,
            schema,
            sink,
        }
    }

    /// A driver connection whose `search_path` is the fixture's schema.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let c = admin_to(&self.server, &self.server.database).await;
        c.batch_execute(&format!(
            "SET search_path = {}, public; SET TIME ZONE 'UTC'",
            quote(&self.schema)
        ))
        .await
        .unwrap();
        c
    }

    /// One value of a query, as text.
    pub async fn value(&self, sql: &str) -> String {
        self.rows_text(sql).await[0][0]
            .clone()
            .unwrap_or_else(|| "NULL".into())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let server = self.server.clone();
        let schema = self.schema.clone();
        testkit::on_own_runtime(async move {
            let c = admin_to(&server, &server.database).await;
            let _ = c
                .batch_execute(&format!(
                    "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {} CASCADE",
                    quote(&schema)
                ))
                .await;
        });
    }
}

#[async_trait]
impl SqlFixture for Fixture {
    type Source = PostgresSource;

    async fn another(&self) -> Fixture {
        Fixture::new().await
    }

    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    fn source(&self) -> Arc<PostgresSource> {
        Arc::new(PostgresSource::from_settings(
            self.server.clone(),
            &[&self.schema],
        ))
    }

    /// A source configured in TOML: the connection fields and `schemas = [<fixture's>]`
    /// unless `extra` sets them, plus `extra`.
    fn source_with(&self, extra: &str) -> PostgresSource {
        let s = &self.server;
        let mut toml = format!(
            "host = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{}\"\n",
            s.host, s.port, s.user, s.database,
        );
        if !extra.contains("sslmode") {
            toml.push_str(&format!("sslmode = \"{}\"\n", s.sslmode.name()));
        }
        if let Some(p) = &s.password {
            toml.push_str(&format!("password = \"{}\"\n", p.expose()));
        }
        if !extra.contains("schemas") {
            toml.push_str(&format!("schemas = [\"{}\"]\n", self.schema));
        }
        toml.push_str(extra);
        testkit::from_toml(&toml, std::env::temp_dir(), PostgresSource::new).unwrap()
    }

    fn broken_source(&self) -> Arc<dyn Source> {
        let mut s = self.server.clone();
        s.port = 1;
        Arc::new(PostgresSource::from_settings(s, &[&self.schema]))
    }

    /// Runs statements (separated by `;`) in the fixture's schema.
    async fn sql(&self, sql: &str) {
        self.admin()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The rows of a query, every value as text (`NULL` as None).
    async fn rows_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let msgs = self
            .admin()
            .await
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    async fn ferry_tables(&self) -> i64 {
        self.count(&format!(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{}' AND c.relname LIKE '\\_ferry%'",
            self.schema
        ))
        .await
    }

    fn quote(&self, name: &str) -> String {
        quote(name)
    }

    fn location(&self, table: &str) -> String {
        format!("{}#{}.{table}", self.server.location(), self.schema)
    }
}

/// `src` read incrementally by `id` and upserted into `dst` (the fault and tunnel tests).
pub fn upsert_stream() -> StreamConfig {
    let mut sc = StreamConfig::named("src");
    sc.destination = Some("dst".into());
    sc.mode = Some(WriteMode::Upsert);
    sc.incremental = Some(true);
    sc.cursor = Some("id".into());
    sc
}

/// A runtime committing every checkpoint of `batch` rows, state in `dir`.
pub fn runtime(
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    dir: &std::path::Path,
    batch: usize,
) -> Runtime {
    let mut rt = testkit::runtime(source, sink, dir);
    rt.settings.batch_size = batch;
    rt
}

/// Rows of table `src` in a [`src_fixture`]: about 1 MB of binary COPY data.
pub const ROWS: i64 = 20_000;

/// A fixture with table `src` (ROWS rows, primary key `id`, `v` the md5 of the id).
pub async fn src_fixture() -> Fixture {
    let f = Fixture::new().await;
    f.sql(&format!(
        "CREATE TABLE src (id int8 PRIMARY KEY, v text NOT NULL); \
         INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g"
    ))
    .await;
    f
}

/// Runs [`upsert_stream`] once; fails the test instead of waiting longer than `within`.
pub async fn sync_upsert(rt: &Runtime, within: Duration) -> Result<RunReport> {
    let (streams, options) = ([upsert_stream()], RunOptions::default());
    let run = rt.sync(&streams, &options, None, ("pg", "pg"));
    tokio::time::timeout(within, run)
        .await
        .unwrap_or_else(|_| panic!("the sync did not end within {} s", within.as_secs()))
}

/// `dst` holds every row of `src` once, with its value.
pub async fn assert_whole(f: &Fixture) {
    let got = f
        .rows_text(
            "SELECT count(*), count(DISTINCT id), \
             count(*) FILTER (WHERE d.v = md5(d.id::text)) FROM dst d",
        )
        .await;
    let n = Some(ROWS.to_string());
    assert_eq!(
        got[0],
        vec![n.clone(), n.clone(), n],
        "rows, distinct keys, right values"
    );
}

/// The stream `src` failed, and its error says where a rerun resumes.
pub fn failure(report: &RunReport) -> String {
    let error = testkit::failed_stream(report, "src");
    assert!(
        error.contains("; last committed: {") || error.contains("; nothing committed yet"),
        "says where a rerun resumes: {error}"
    );
    error
}
