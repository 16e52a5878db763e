//! The `sqlite` connector against the conformance kit and its SQL suite, on real SQLite
//! files in temp folders, and against its own contract: timestamps as cursors, tables
//! made by other tools, values that do not fit, how values are stored, missing files.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_connector_sqlite::{register, SqliteSink, SqliteSinkConfig, SqliteSource, NAME};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::{Int64Array, RecordBatch};
use ferry_core::arrow_schema::Schema;
use ferry_core::{
    async_trait, ConfigNode, ErrorKind, FerryType, Message, ReadRequest, Result, Sink, Source,
    WriteMode,
};
use ferry_testkit::sql::{self, CustomQueries, KeylessTable, SqlFixture};
use ferry_testkit::sql_fixtures;
use ferry_testkit::{self as testkit, ids, keyed, messages, rows, SourceFixture};

/// A fresh folder with one database file, written by the sink and read by the source.
struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    sink: Arc<SqliteSink>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        // a subfolder that does not exist yet: the sink creates it
        let db = dir.path().join("out").join("ferry.db");
        let sink = Arc::new(SqliteSink::from_path(&db));
        Fixture { dir, db, sink }
    }

    /// A connection to the database file (created, with its folder, if missing).
    fn conn(&self) -> rusqlite::Connection {
        std::fs::create_dir_all(self.db.parent().unwrap()).unwrap();
        rusqlite::Connection::open(&self.db).expect("open the test database")
    }
}

#[async_trait]
impl SqlFixture for Fixture {
    type Source = SqliteSource;

    async fn another(&self) -> Fixture {
        Fixture::new()
    }

    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    fn source(&self) -> Arc<SqliteSource> {
        Arc::new(SqliteSource::from_path(&self.db))
    }

    fn source_with(&self, extra: &str) -> SqliteSource {
        let toml = format!("path = \"{}\"\n{extra}", self.db.display());
        testkit::from_toml(&toml, self.dir.path(), SqliteSource::new).unwrap()
    }

    fn broken_source(&self) -> Arc<dyn Source> {
        Arc::new(SqliteSource::from_path(
            self.dir.path().join("missing").join("nothing.db"),
        ))
    }

    async fn sql(&self, statements: &str) {
        self.conn()
            .execute_batch(statements)
            .unwrap_or_else(|e| panic!("{statements}: {e}"));
    }

    async fn rows_text(&self, query: &str) -> Vec<Vec<Option<String>>> {
        use rusqlite::types::ValueRef;
        let conn = self.conn();
        let mut st = conn
            .prepare(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let n = st.column_count();
        let text = |v: ValueRef| match v {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(x) => Some(x.to_string()),
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        };
        let rows = st
            .query_map([], |r| (0..n).map(|i| Ok(text(r.get_ref(i)?))).collect())
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        rows.collect::<rusqlite::Result<_>>()
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    async fn ferry_tables(&self) -> i64 {
        self.count("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_ferry%' ESCAPE '\\'")
            .await
    }

    fn quote(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    fn location(&self, table: &str) -> String {
        format!("{}#{table}", self.db.file_name().unwrap().to_string_lossy())
    }

    async fn table_rows(&self, stream: &str) -> Result<Vec<RecordBatch>> {
        if !self.db.exists() {
            return Ok(Vec::new());
        }
        sql::table_rows(Fixture::source(self).as_ref(), stream).await
    }
}

// ----------------------------------------------------------------------------------------
// The shared kit and SQL suite

// every SQL connector's checks, and the one of sinks that write a failing batch at once
ferry_testkit::sql_suite!(Fixture::new());
ferry_testkit::sql_suite!(Fixture::new(); streams_write_in_parallel_and_an_aborted_stream_keeps_nothing_unflushed);

#[tokio::test]
async fn a_changed_column_type_is_refused() {
    sql::a_changed_column_type_is_refused(&Fixture::new(), FerryType::String).await;
}

#[tokio::test]
async fn upsert_needs_a_unique_key() {
    let table = KeylessTable {
        name: "odd \"name\"",
        create: "CREATE TABLE \"odd \"\"name\"\"\" (id BIGINT, name TEXT, version BIGINT)",
        hint: "CREATE UNIQUE INDEX",
        add_key: "CREATE UNIQUE INDEX odd_id ON \"odd \"\"name\"\"\" (id)",
    };
    sql::upsert_needs_a_unique_key(&Fixture::new(), &table).await;
}

#[tokio::test]
async fn custom_query_streams() {
    let f = Fixture::new();
    let queries = CustomQueries {
        big_orders: "SELECT id, v AS total FROM orders WHERE v > 300;",
        stats: "{ name = \"stats\", sql = \"SELECT count(*) AS n, max(v) AS top, 'x' || id AS label FROM orders\", columns = { n = \"int64\", top = \"decimal(12,2)\" } }",
        writes: &["DELETE FROM orders"],
    };
    let q = sql::custom_query_streams(&f, &queries).await;
    assert_eq!(
        q.stats_type("label"),
        FerryType::String,
        "an expression without a declared type reads as string"
    );
}

// ----------------------------------------------------------------------------------------
// Source

#[tokio::test]
async fn incremental_by_timestamp_compares_instants() {
    let f = Fixture::new();
    let schema = keyed(
        "id",
        vec![
            FerryType::Int64.field("id", false),
            FerryType::Timestamp.field("at", true),
        ],
    );
    // whole seconds and fractions: as variable-width text, `...00Z` would sort after `...00.5Z`
    let batch = testkit::text_batch(
        schema,
        [
            [Some("1"), Some("2024-05-01T12:00:00Z")],
            [Some("2"), Some("2024-05-01T12:00:00.5Z")],
            [Some("3"), Some("2024-05-01T12:00:01Z")],
            [Some("4"), Some("2024-05-01T12:00:01.000001Z")],
        ],
    );
    let source = f.create("events", &batch).await.unwrap();
    let info = testkit::discover_one(source.as_ref(), "events").await;
    assert_eq!(info.cursor_candidates, vec!["id", "at"]);
    let mut req = ReadRequest::incremental("events", None);
    req.cursor = Some("at".into());
    let msgs = messages(source.as_ref(), req.clone()).await;
    let Some(Message::Checkpoint(state)) = msgs.last() else {
        panic!("no final checkpoint: {msgs:?}")
    };
    assert_eq!(state["cursor"], "2024-05-01T12:00:01.000001Z");
    req.state =
        Some(serde_json::json!({ "cursor": "2024-05-01T12:00:00.000000Z", "column": "at" }));
    assert_eq!(
        ids(&testkit::read_all(source.as_ref(), req).await),
        vec![2, 3, 4]
    );
}

#[tokio::test]
async fn reads_tables_made_by_other_tools() {
    let f = Fixture::new();
    f.conn()
        .execute_batch(
            "CREATE TABLE legacy (id INTEGER PRIMARY KEY, name VARCHAR(20), price NUMERIC(10,2), ratio REAL,
                created DATETIME, misc, flag BOOLEAN, born DATE, big INT NOT NULL DEFAULT 0);
             INSERT INTO legacy VALUES (1, 'a', 12.5, 1, '2024-01-02 03:04:05', 5, 1, '2000-02-29', 7);
             INSERT INTO legacy VALUES (2, NULL, '0.10', 2.5, '2024-01-02T03:04:05.5+02:00', 'text', 'false', NULL, 8);
             CREATE VIEW cheap AS SELECT id, price FROM legacy WHERE price < 1;
             CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, x);
             INSERT INTO auto (x) VALUES (1);",
        )
        .unwrap();
    let source = f.source();
    let catalog = source.discover().await.unwrap();
    // AUTOINCREMENT made `sqlite_sequence`: SQLite's own tables are not streams
    assert_eq!(catalog.names(), vec!["auto", "cheap", "legacy"]);
    let legacy = catalog.get("legacy").unwrap();
    let ty = |n: &str| FerryType::of(legacy.schema.field_with_name(n).unwrap()).unwrap();
    assert_eq!(ty("id"), FerryType::Int64);
    assert_eq!(ty("name"), FerryType::String);
    assert_eq!(
        ty("price"),
        FerryType::Decimal {
            precision: 10,
            scale: 2
        }
    );
    assert_eq!(ty("ratio"), FerryType::Float64);
    assert_eq!(ty("created"), FerryType::Timestamp);
    assert_eq!(ty("misc"), FerryType::String);
    assert_eq!(ty("flag"), FerryType::Bool);
    assert_eq!(ty("born"), FerryType::Date);
    assert!(
        !legacy.schema.field_with_name("id").unwrap().is_nullable(),
        "an INTEGER PRIMARY KEY is never NULL"
    );
    assert!(!legacy.schema.field_with_name("big").unwrap().is_nullable());
    assert!(legacy.schema.field_with_name("name").unwrap().is_nullable());
    assert_eq!(legacy.primary_key, vec!["id"]);
    assert_eq!(
        legacy.cursor_candidates,
        vec!["id", "created", "born", "big"]
    );
    testkit::source_reads_match_discover(source.as_ref(), 100).await;
    let r = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("legacy")).await);
    assert_eq!(r[0]["price"], "12.50");
    assert_eq!(r[1]["price"], "0.10");
    assert_eq!(r[0]["misc"], "5");
    assert_eq!(r[0]["created"], "2024-01-02T03:04:05Z");
    assert_eq!(r[1]["created"], "2024-01-02T01:04:05.500Z");
    assert_eq!(r[0]["flag"], true);
    assert_eq!(r[1]["flag"], false);
    assert_eq!(r[0]["ratio"], 1.0);
    assert_eq!(r[0]["born"], "2000-02-29");
    let cheap = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("cheap")).await);
    assert_eq!(cheap.len(), 1);
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_rejected_and_rows_before_it_are_kept() {
    let f = Fixture::new();
    f.conn()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n BIGINT);
             INSERT INTO t VALUES (1, 10), (2, 20), (3, 'abc'), (4, 40);",
        )
        .unwrap();
    let got = testkit::read_with_rejections(f.source().as_ref(), "t").await;
    for (_, r) in &got.rejected {
        assert!(
            r.message.contains("column `n`") && r.message.contains("abc"),
            "{}",
            r.message
        );
        assert_eq!(r.position.column, Some(2));
        assert!(r.raw.contains("\"abc\""), "{}", r.raw);
    }
    let before: Vec<_> = got.rejected.iter().map(|(b, _)| b.clone()).collect();
    assert_eq!(
        before,
        vec![vec![1, 2]],
        "the rejected row comes after the rows before it"
    );
    assert_eq!(got.seen, vec![1, 2, 4]);
}

#[tokio::test]
async fn check_refuses_a_missing_file_and_a_file_of_another_kind() {
    let f = Fixture::new();
    let missing = f.dir.path().join("missing.db");
    let e = SqliteSource::from_path(&missing).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
    assert!(!missing.exists(), "check must not create the file");

    std::fs::write(f.dir.path().join("notes.db"), "this is not a database, just text that is long enough to be a header..........................................................").unwrap();
    let e = SqliteSource::from_path(f.dir.path().join("notes.db"))
        .check()
        .await
        .unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::DataInvalid, "not a SQLite database");
}

// ----------------------------------------------------------------------------------------
// Sink

#[tokio::test]
async fn values_are_stored_exactly_and_readably() {
    let f = Fixture::new();
    sql_fixtures::append_all_types(f.sink.as_ref(), "all").await;
    let conn = f.conn();
    let row = |sql: &str| -> (String, String) {
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    // each value's storage class and text
    for (column, id, class, text) in [
        ("amount", 3, "text", "-9999999999999999.9999"),
        ("at", 1, "text", "2024-05-01T12:00:00.250000Z"),
        ("day", 1, "text", "2024-02-29"),
        ("doc", 5, "text", "\"just a string\""),
        ("flag", 1, "integer", "1"),
    ] {
        let sql =
            format!("SELECT typeof({column}), CAST({column} AS TEXT) FROM \"all\" WHERE id = {id}");
        assert_eq!(row(&sql), (class.to_string(), text.to_string()), "{sql}");
    }
    let schema: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'all'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for decl in [
        "\"id\" INTEGER NOT NULL",
        "BOOLEAN",
        "BIGINT",
        "DOUBLE",
        "DECIMAL_TEXT(20,4)",
        "TEXT",
        "BLOB",
        "DATE",
        "TIMESTAMPTZ",
        "JSON_TEXT",
        "PRIMARY KEY (\"id\")",
    ] {
        assert!(schema.contains(decl), "`{decl}` not in {schema}");
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // NaN survives a REAL column
    let nan = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Float64.field("x", true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(ferry_core::arrow_array::Float64Array::from(vec![f64::NAN])),
        ],
    )
    .unwrap();
    f.write("nan", WriteMode::Append, &[nan]).await;
    let back = f.table_rows("nan").await.unwrap();
    assert!(back[0]
        .column(1)
        .as_primitive::<ferry_core::arrow_array::types::Float64Type>()
        .value(0)
        .is_nan());
}

// ----------------------------------------------------------------------------------------
// Config and registration

#[tokio::test]
async fn registers_with_documented_config() {
    testkit::documented_source_and_sink(register, NAME, &["path"]);
    let dir = tempfile::tempdir().unwrap();
    let sink = testkit::from_toml("path = \"sub/x.db\"\n", dir.path(), SqliteSink::new).unwrap();
    assert_eq!(sink.path(), dir.path().join("sub/x.db"));
    sink.check().await.unwrap();
    assert!(!sink.path().exists(), "check must not create the database");
    let e = ConfigNode::from_toml("pth = \"x.db\"\n", dir.path())
        .unwrap()
        .parse::<SqliteSinkConfig>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    let e = testkit::from_toml(
        "path = \"x.db\"\nqueries = [{ name = \"q\", sql = \" ; \" }]\n",
        dir.path(),
        SqliteSource::new,
    )
    .err()
    .expect("an empty query is refused without I/O");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
}

// ----------------------------------------------------------------------------------------
// Speed (run with: cargo test --release -p ferry-connector-sqlite -- --ignored --nocapture)

#[tokio::test]
#[ignore = "a benchmark; run in release mode"]
async fn bulk_insert_speed() {
    let f = Fixture::new();
    let n = 1_000_000usize;
    let batch = 8192usize;
    testkit::bench_write_modes(f.sink.as_ref(), n, batch).await;
    testkit::bench_write_wide(f.sink.as_ref(), n, batch).await;
    testkit::bench_read(f.source().as_ref(), ReadRequest::full("wide")).await;
    let got = testkit::bench_read(f.source().as_ref(), ReadRequest::full("bench_append")).await;
    assert_eq!(got, n);
}
