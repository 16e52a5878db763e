//! The `mysql` connector against the conformance kit and its SQL suite, and its own
//! contract, on the real MariaDB (or MySQL) server at 127.0.0.1:3306
//! (`FERRY_TEST_MYSQL_URL` overrides it). Every test works in a fresh database of its own,
//! dropped at the end. A server that is down fails the tests with how to start it;
//! nothing is skipped.

use std::sync::Arc;

use ferry_connector_mysql::{
    register, ConnSettings, MysqlSink, MysqlSinkConfig, MysqlSource, NAME,
};
use ferry_core::arrow_array::{Int64Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::Schema;
use ferry_core::{
    async_trait, ConfigNode, Durability, ErrorKind, FerryType, Message, ReadRequest, Secret, Sink,
    Source, WriteMode,
};
use ferry_engine::StreamConfig;
use ferry_testkit::sql::{self, CustomQueries, KeylessTable, SqlFixture};
use ferry_testkit::sql_fixtures;
use ferry_testkit::{self as testkit, ids, keyed, messages, request, rows};
use futures::StreamExt;
use mysql_async::prelude::Queryable;

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

fn server_url() -> String {
    std::env::var("FERRY_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

fn down(s: &ConnSettings, e: impl std::fmt::Display) -> ! {
    panic!(
        "MariaDB is not reachable on {}:{}: start it with `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd` ({e})",
        s.host, s.port
    )
}

/// A fresh database on the test server, dropped when the fixture goes.
struct Fixture {
    settings: ConnSettings,
    sink: Arc<MysqlSink>,
}

impl Fixture {
    async fn new() -> Fixture {
        let server =
            ConnSettings::from_url(&server_url()).expect("FERRY_TEST_MYSQL_URL is a mysql:// URL");
        let connect = mysql_async::Conn::new(opts(&server, false));
        let mut conn = match tokio::time::timeout(std::time::Duration::from_secs(15), connect).await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => down(&server, e),
            Err(_) => down(&server, "no answer within 15 s"),
        };
        let db = testkit::fresh_name("ferry_test").to_lowercase();
        conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
            .await
            .expect("create the test database");
        let _ = conn.disconnect().await;
        let mut settings = server;
        settings.database = db;
        let sink = Arc::new(MysqlSink::from_settings(settings.clone()));
        Fixture { settings, sink }
    }

    async fn conn(&self) -> mysql_async::Conn {
        let mut c = mysql_async::Conn::new(opts(&self.settings, true))
            .await
            .unwrap_or_else(|e| down(&self.settings, e));
        c.query_drop("SET time_zone = '+00:00'").await.unwrap();
        c
    }
}

fn opts(s: &ConnSettings, with_db: bool) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(s.host.clone())
        .tcp_port(s.port)
        .user(Some(s.user.clone()))
        .pass(s.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(with_db.then(|| s.database.clone()))
        .prefer_socket(false)
        .into()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let s = self.settings.clone();
        testkit::on_own_runtime(async move {
            if let Ok(mut c) = mysql_async::Conn::new(opts(&s, false)).await {
                let _ = c
                    .query_drop(format!("DROP DATABASE IF EXISTS `{}`", s.database))
                    .await;
                let _ = c.disconnect().await;
            }
        });
    }
}

#[async_trait]
impl SqlFixture for Fixture {
    type Source = MysqlSource;

    async fn another(&self) -> Fixture {
        Fixture::new().await
    }

    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    fn source(&self) -> Arc<MysqlSource> {
        Arc::new(MysqlSource::from_settings(self.settings.clone()))
    }

    /// A source with a config written in TOML (connection fields added).
    fn source_with(&self, extra: &str) -> MysqlSource {
        let toml = format!(
            "host = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{}\"\n{}{extra}",
            self.settings.host,
            self.settings.port,
            self.settings.user,
            self.settings.database,
            self.settings
                .password
                .as_ref()
                .map(|p| format!("password = \"{}\"\n", p.expose()))
                .unwrap_or_default(),
        );
        testkit::from_toml(&toml, std::env::temp_dir(), MysqlSource::new).unwrap()
    }

    fn broken_source(&self) -> Arc<dyn Source> {
        let mut s = self.settings.clone();
        s.port = 1; // nothing listens there: connection refused
        Arc::new(MysqlSource::from_settings(s))
    }

    /// Runs statements (separated by `;`).
    async fn sql(&self, sql: &str) {
        let mut c = self.conn().await;
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
    }

    async fn rows_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut c = self.conn().await;
        let rows: Vec<mysql_async::Row> =
            c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(&b).into_owned())
                        }
                        other => Some(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect()
    }

    async fn ferry_tables(&self) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME LIKE '\\_ferry%'",
            self.settings.database
        ))
        .await
    }

    fn quote(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    fn location(&self, table: &str) -> String {
        format!(
            "mysql://{}:{}/{}#{table}",
            self.settings.host, self.settings.port, self.settings.database
        )
    }

    /// A writer dropped mid-overwrite (neither closed nor aborted) leaves its staging table.
    async fn crash_an_overwrite(&self, table: &str) {
        let schema = testkit::simple_batch(1, 0, "").schema();
        let w = self
            .sink
            .open(request(table, schema, WriteMode::Overwrite))
            .await
            .unwrap();
        drop(w);
    }

    /// MariaDB announces an estimate, never an exact count.
    fn counts_whole_reads(&self) -> bool {
        false
    }

    /// Rows of equal cursor value come in no particular order.
    fn orders_ties_by_key(&self) -> bool {
        false
    }
}

// ----------------------------------------------------------------------------------------
// The shared kit and SQL suite

// every SQL connector's checks, and the one of sinks that write a failing batch at once
ferry_testkit::sql_suite!(Fixture::new().await);
ferry_testkit::sql_suite!(Fixture::new().await; streams_write_in_parallel_and_an_aborted_stream_keeps_nothing_unflushed);

#[tokio::test]
async fn a_changed_column_type_is_refused() {
    sql::a_changed_column_type_is_refused(&Fixture::new().await, FerryType::String).await;
}

#[tokio::test]
async fn custom_query_streams() {
    let f = Fixture::new().await;
    let queries = CustomQueries {
        big_orders: "SELECT id, v AS total FROM orders WHERE v > 300 -- big ones;",
        stats: "{ name = \"stats\", sql = \"SELECT COUNT(*) AS n, MAX(v) AS top, CONCAT('x', MIN(id)) AS label, AVG(v) AS avg4 FROM orders\", columns = { top = \"decimal(12,2)\" } }",
        writes: &["DELETE FROM orders"],
    };
    let q = sql::custom_query_streams(&f, &queries).await;
    assert_eq!(q.stats_type("label"), FerryType::String);
    assert!(
        matches!(q.stats_type("avg4"), FerryType::Decimal { scale: 4, .. }),
        "{}",
        q.stats_type("avg4")
    );
    assert_eq!(q.stats_row["label"], "x1");
    assert_eq!(q.stats_row["avg4"], "275.0000");
    // a statement that returns rows but writes (MariaDB's INSERT … RETURNING) is
    // refused by the read-only transaction every read runs in
    let sneaky = f.source_with(
        "tables = []\nqueries = [{ name = \"q\", sql = \"INSERT INTO orders (id, v) VALUES (99, 1) RETURNING id\" }]\n",
    );
    let refused = match sneaky.discover().await {
        Err(e) => e,
        Ok(_) => sneaky
            .read(ReadRequest::full("q"))
            .await
            .err()
            .expect("a writing query is refused"),
    };
    assert!(
        matches!(
            refused.kind(),
            ErrorKind::PermissionDenied | ErrorKind::ConfigInvalid
        ),
        "{refused}"
    );
    let broken = f.source_with("queries = [{ name = \"typo\", sql = \"SELEC 1\" }]\n");
    let e = broken.discover().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::ConfigInvalid, "typo");
    assert_eq!(f.count("SELECT COUNT(*) FROM orders").await, 10);
}

// ----------------------------------------------------------------------------------------
// Source

#[tokio::test]
async fn incremental_rerun_picks_up_new_and_updated_rows() {
    let from = Fixture::new().await;
    from.sql(
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, updated_at DATETIME(6) NOT NULL);
         INSERT INTO customers VALUES
           (1, 'Ada',   '2024-05-01 10:00:00.000001'),
           (2, 'Grace', '2024-05-01 10:00:00.000001'),
           (3, 'Linus', '2024-05-01 11:00:00')",
    )
    .await;
    let source = from.source();
    let info = testkit::discover_one(source.as_ref(), "customers").await;
    assert_eq!(info.default_cursor.as_deref(), Some("id"));
    assert_eq!(info.cursor_candidates, vec!["id", "updated_at"]);
    let to = Fixture::new().await;
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(source.clone(), to.sink.clone(), state.path());
    let mut sc = StreamConfig::named("customers");
    sc.mode = Some(WriteMode::Upsert);
    sc.cursor = Some("updated_at".into());
    let run = || async {
        let report = testkit::sync(&rt, std::slice::from_ref(&sc), ("mysql", "mysql")).await;
        testkit::assert_succeeded(&report);
        report.rows_committed()
    };
    assert_eq!(run().await, 3);
    assert_eq!(
        rt.state.get("customers").unwrap()["cursor"],
        "2024-05-01T11:00:00.000000Z"
    );
    assert_eq!(run().await, 0, "nothing changed, nothing is read");
    // one row updated (its cursor moves on), one new row, one row changed without
    // touching its cursor (not seen: that is what a cursor means)
    from.sql(
        "UPDATE customers SET name = 'Ada L.', updated_at = '2024-05-02 09:00:00.5' WHERE id = 1;
         INSERT INTO customers VALUES (4, 'Edsger', '2024-05-02 09:00:00.5');
         UPDATE customers SET name = 'Grace H.' WHERE id = 2",
    )
    .await;
    assert_eq!(run().await, 2);
    let got = to
        .rows_text("SELECT id, name, updated_at FROM customers ORDER BY id")
        .await;
    let want = [
        ["1", "Ada L.", "2024-05-02 09:00:00.500000"],
        ["2", "Grace", "2024-05-01 10:00:00.000001"],
        ["3", "Linus", "2024-05-01 11:00:00.000000"],
        ["4", "Edsger", "2024-05-02 09:00:00.500000"],
    ];
    let want: Vec<Vec<Option<String>>> = want
        .iter()
        .map(|r| r.iter().map(|s| Some(s.to_string())).collect())
        .collect();
    assert_eq!(got, want);
    assert_eq!(run().await, 0);
}

#[tokio::test]
async fn reads_tables_made_by_other_tools() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TABLE legacy (
           id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
           flag TINYINT(1), small SMALLINT NOT NULL DEFAULT 0, n INT UNSIGNED, big BIGINT,
           price DECIMAL(10,2), huge DECIMAL(65,10), ratio FLOAT, score DOUBLE,
           name VARCHAR(20), notes TEXT, kind ENUM('a','b'), tags SET('x','y'),
           raw VARBINARY(8), pic BLOB, born DATE, seen DATETIME(3), stamped TIMESTAMP(6) NULL,
           doc JSON, dur TIME, yr YEAR, bits BIT(8), onebit BIT(1)
         );
         INSERT INTO legacy VALUES (18446744073709551615, 1, 2, 4294967295, -5, 12.5,
           12345678901234567890123456789012345.1234567890, 0.1, 2.5, 'a', 'long text',
           'b', 'x,y', x'00ff', x'cafe', '2000-02-29', '2024-01-02 03:04:05.123',
           '2024-01-02 03:04:05.654321', '{\"a\": [1, 2]}', '-838:59:59', 2024, b'00000101', b'1');
         INSERT INTO legacy (id) VALUES (1);
         CREATE VIEW cheap AS SELECT id, price FROM legacy WHERE price < 100;",
    )
    .await;
    let source = f.source();
    let catalog = source.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["cheap", "legacy"]);
    let legacy = catalog.get("legacy").unwrap();
    assert_eq!(
        sql_fixtures::columns(&legacy.schema),
        "id decimal(20,0) not null, flag bool, small int64 not null, n int64, big int64, \
         price decimal(10,2), huge string, ratio float64, score float64, name string, \
         notes string, kind string, tags string, raw binary, pic binary, born date, \
         seen timestamp, stamped timestamp, doc json, dur string, yr int64, bits int64, \
         onebit bool"
    );
    assert_eq!(legacy.primary_key, vec!["id"]);
    assert_eq!(legacy.default_cursor.as_deref(), Some("id"));
    testkit::source_reads_match_discover(source.as_ref(), 100).await;
    let r = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("legacy")).await);
    // rows_by_id sorts by an integer id: the decimal id 1 comes as text, so find rows by it
    let full = r
        .iter()
        .find(|r| r["id"] == "18446744073709551615")
        .expect("the big row");
    let empty = r
        .iter()
        .find(|r| r["id"] == "1")
        .expect("the row of defaults");
    let expect = serde_json::json!({
        "id": "18446744073709551615", "flag": true, "small": 2, "n": 4294967295u64, "big": -5,
        "price": "12.50", "huge": "12345678901234567890123456789012345.1234567890",
        "ratio": 0.1, "score": 2.5, "name": "a", "notes": "long text", "kind": "b", "tags": "x,y",
        "raw": "AP8=", "pic": "yv4=", "born": "2000-02-29", "seen": "2024-01-02T03:04:05.123Z",
        "stamped": "2024-01-02T03:04:05.654321Z", "doc": {"a": [1, 2]}, "dur": "-838:59:59",
        "yr": 2024, "bits": 5, "onebit": true,
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&full[k], v, "{k}");
    }
    assert_eq!(empty["small"], 0);
    assert_eq!(empty["name"], serde_json::Value::Null);
    let cheap = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("cheap")).await);
    assert_eq!(cheap.len(), 1);
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_rejected_and_rows_before_it_are_kept() {
    let f = Fixture::new().await;
    f.sql(
        "SET SESSION sql_mode = '';
         CREATE TABLE t (id INT PRIMARY KEY, d DATE NOT NULL, e DATETIME NULL);
         INSERT INTO t VALUES (1, '2024-01-01', '0000-00-00 00:00:00'), (2, '2024-01-02', NULL),
                              (3, '0000-00-00', NULL), (4, '2024-01-04', '2024-01-04 05:06:07')",
    )
    .await;
    let msgs = messages(f.source().as_ref(), ReadRequest::full("t")).await;
    let mut seen = Vec::new();
    let mut rejected = Vec::new();
    let mut e_values = Vec::new();
    for m in msgs {
        match m {
            Message::Batch(b) => {
                seen.extend(ids(std::slice::from_ref(&b)));
                e_values.extend(rows(&[b]).into_iter().map(|r| r["e"].clone()));
            }
            Message::Rejected(r) => {
                assert!(r.message.contains("column `d`"), "{}", r.message);
                assert_eq!(r.position.column, Some(2));
                assert!(r.raw.contains("0000-00-00"), "{}", r.raw);
                rejected.push(seen.clone());
            }
            _ => {}
        }
    }
    assert_eq!(rejected, vec![vec![1, 2]]);
    assert_eq!(seen, vec![1, 2, 4]);
    // a zero date where NULL is allowed reads as NULL
    assert_eq!(
        e_values,
        vec![
            serde_json::Value::Null,
            serde_json::Value::Null,
            "2024-01-04T05:06:07Z".into()
        ]
    );
}

#[tokio::test]
async fn a_read_stopped_early_ends_its_query_on_the_server() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(250));
         INSERT INTO big SELECT 1 + a.n + 10 * b.n + 100 * c.n + 1000 * d.n + 10000 * e.n, REPEAT('x', 250)
         FROM (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
               UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS a
         CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
               UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS b
         CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
               UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS c
         CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
               UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d
         CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
               UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS e",
    )
    .await;
    let mut req = ReadRequest::full("big");
    req.batch_size = 1000;
    let mut stream = f.source().read(req).await.unwrap();
    let mut rows_seen = 0;
    while let Some(m) = stream.next().await {
        if let Message::Batch(b) = m.unwrap() {
            rows_seen += b.num_rows();
            break;
        }
    }
    assert_eq!(
        rows_seen, 1000,
        "rows arrive batch by batch, before the result ends"
    );
    let running = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO LIKE 'SELECT `id`%'",
        f.settings.database
    );
    assert_eq!(f.count(&running).await, 1, "the read is still streaming");
    drop(stream);
    for _ in 0..100 {
        if f.count(&running).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server still runs the read 10 s after the reader went away");
}

// ----------------------------------------------------------------------------------------
// Sink

// ----------------------------------------------------------------------------------------
// Sink

#[tokio::test]
async fn values_are_stored_natively() {
    let f = Fixture::new().await;
    sql_fixtures::append_all_types(f.sink.as_ref(), "all").await;
    let got = f
        .rows_text(
            "SELECT flag, amount, name, HEX(`blob`), day, `at`, doc, CHAR_LENGTH(name) FROM `all` ORDER BY id",
        )
        .await;
    assert_eq!(got[0][1].as_deref(), Some("1234.5678"));
    assert_eq!(got[0][5].as_deref(), Some("2024-05-01 12:00:00.250000"));
    assert_eq!(got[2][1].as_deref(), Some("-9999999999999999.9999"));
    assert_eq!(
        got[2][2].as_deref(),
        Some("Zoë 日本語 🚢, \"quoted\"\nnewline")
    );
    assert_eq!(
        got[2][3].as_deref(),
        Some(""),
        "an empty blob is empty, not NULL"
    );
    assert_eq!(
        got[2][7].as_deref(),
        Some("27"),
        "the emoji is one character (utf8mb4)"
    );
    assert_eq!(got[1], vec![None; 8]);
    assert_eq!(
        got[4][2].as_deref(),
        Some(""),
        "an empty string is empty, not NULL"
    );
    let cols = f
        .rows_text(&format!(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'all' ORDER BY ORDINAL_POSITION",
            f.settings.database
        ))
        .await;
    // MySQL 8 shows integer types without a display width; MariaDB's JSON is LONGTEXT
    let types: Vec<String> = cols
        .iter()
        .map(|r| r[1].clone().unwrap().replace("bigint(20)", "bigint"))
        .collect();
    assert_eq!(
        &types[..9],
        &[
            "bigint",
            "tinyint(1)",
            "bigint",
            "double",
            "decimal(20,4)",
            "longtext",
            "longblob",
            "date",
            "datetime(6)"
        ]
    );
    assert!(types[9] == "json" || types[9] == "longtext", "{}", types[9]);
    assert_eq!(cols[0][3].as_deref(), Some("PRI"));
    assert_eq!(cols[0][2].as_deref(), Some("NO"));
    // JSON is checked by the server
    let bad_json = RecordBatch::try_new(
        keyed(
            "id",
            vec![
                FerryType::Int64.field("id", false),
                FerryType::Json.field("doc", true),
            ],
        ),
        vec![
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["{not json"])),
        ],
    )
    .unwrap();
    sql_fixtures::append_refused(f.sink.as_ref(), "all", bad_json, ErrorKind::DataInvalid).await;
    // NaN cannot be stored: a clear error, nothing of the batch written
    let nan = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Float64.field("x", true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(ferry_core::arrow_array::Float64Array::from(vec![
                1.0,
                f64::NAN,
            ])),
        ],
    )
    .unwrap();
    let e = sql_fixtures::append_refused(f.sink.as_ref(), "nan", nan, ErrorKind::DataInvalid).await;
    assert!(e.message().contains("NaN"), "{e}");
    assert_eq!(f.count("SELECT COUNT(*) FROM nan").await, 0);
}

#[tokio::test]
async fn every_type_round_trips_mysql_to_ferry_to_mysql() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TABLE src (
           id BIGINT PRIMARY KEY, b BOOLEAN, i BIGINT, x DOUBLE, d DECIMAL(38,10), s LONGTEXT,
           k VARCHAR(100), bin LONGBLOB, day DATE, at DATETIME(6), ts TIMESTAMP(6) NULL, j JSON
         ) DEFAULT CHARSET = utf8mb4;
         INSERT INTO src VALUES
           (1, TRUE, 9223372036854775807, 1.5e300, 1234567890123456789012345678.0123456789,
            'Zoë 日本語 🚢 \\'q\\' \\\\ \\n', '', x'00ff10', '1000-01-01', '9999-12-31 23:59:59.999999',
            '2038-01-19 03:14:07.999999', '{\"a\": [1, \"🚢\"]}'),
           (2, FALSE, -9223372036854775808, -0.0001, -9999999999999999999999999999.9999999999,
            '', NULL, x'', '2024-02-29', '1970-01-01 00:00:00.000001', '1970-01-01 00:00:01.000000', '[]'),
           (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await;
    let source = f.source();
    let batches = testkit::read_all(source.as_ref(), ReadRequest::full("src")).await;
    let info = testkit::discover_one(source.as_ref(), "src").await;
    let mut w = f
        .sink
        .open(request("dst", info.schema.clone(), WriteMode::Append))
        .await
        .unwrap();
    for b in batches {
        w.write(b).await.unwrap();
    }
    w.flush().await.unwrap();
    w.close().await.unwrap();
    let cols =
        "id, b, i, x, d, s, k, HEX(bin), day, at, ts, j, CHAR_LENGTH(s), s IS NULL, k IS NULL";
    let a = f
        .rows_text(&format!("SELECT {cols} FROM src ORDER BY id"))
        .await;
    let b = f
        .rows_text(&format!("SELECT {cols} FROM dst ORDER BY id"))
        .await;
    assert_eq!(a, b, "values changed on the way MySQL → Ferry → MySQL");
    assert_eq!(a[0][6].as_deref(), Some(""), "empty string stays empty");
    assert_eq!(a[1][6], None, "NULL stays NULL");
    assert_eq!(a[0][12].as_deref(), Some("17"));
    // and the destination's types are Ferry's own
    let described = f.sink.describe("dst").await.unwrap().unwrap();
    let pairs = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), FerryType::of(f)))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&described), pairs(&info.schema));
}

#[tokio::test]
async fn upsert_is_idempotent_and_needs_a_unique_key() {
    let f = Fixture::new().await;
    let table = KeylessTable {
        name: "odd `name",
        create: "CREATE TABLE `odd ``name` (id BIGINT, name LONGTEXT, version BIGINT)",
        hint: "ADD UNIQUE",
        add_key: "ALTER TABLE `odd ``name` ADD UNIQUE (id)",
    };
    sql::upsert_needs_a_unique_key(&f, &table).await;
    let stream = table.name;
    let batch = testkit::simple_batch(1, 3, "a");
    let before = f
        .rows_text("SELECT id, name, version FROM `odd ``name` ORDER BY id")
        .await;
    // the same rows again, in several batches and flushes: nothing changes
    let schema = batch.schema();
    let mut w = f
        .sink
        .open(request(stream, schema, WriteMode::Upsert))
        .await
        .unwrap();
    for first in [2, 3, 4] {
        w.write(testkit::simple_batch(first, 1, "b")).await.unwrap();
        assert_eq!(w.flush().await.unwrap(), Durability::Durable);
    }
    w.close().await.unwrap();
    let after = f
        .rows_text("SELECT id, name, version FROM `odd ``name` ORDER BY id")
        .await;
    assert_eq!(before, after);
    let names: Vec<_> = after.iter().map(|r| r[1].clone().unwrap()).collect();
    assert_eq!(names, vec!["a-1", "b-2", "b-3", "b-4"]);
    // a key of text columns: VARCHAR(255) with an exact collation ('a' ≠ 'A' ≠ 'a ')
    let schema = keyed(
        "code",
        vec![
            FerryType::String.field("code", false),
            FerryType::Int64.field("n", true),
        ],
    );
    let codes = |n: i64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "A", "a ", "é"])),
                Arc::new(Int64Array::from(vec![n; 4])),
            ],
        )
        .unwrap()
    };
    f.write("codes", WriteMode::Upsert, &[codes(1)]).await;
    f.write("codes", WriteMode::Upsert, &[codes(2)]).await;
    assert_eq!(f.count("SELECT COUNT(*) FROM codes WHERE n = 2").await, 4);
}

#[tokio::test]
async fn big_batches_split_into_statements_within_the_packet_limit() {
    let f = Fixture::new().await;
    // 20,000 rows of ~1 KiB: about 20 MiB, more than MariaDB's default 16 MiB packet
    let n = 20_000usize;
    let schema = keyed(
        "id",
        vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("pad", true),
        ],
    );
    let pad = "é".repeat(500);
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            Arc::new(StringArray::from(vec![pad.as_str(); n])),
        ],
    )
    .unwrap();
    let summary = f.write("wide", WriteMode::Append, &[batch]).await;
    assert_eq!(summary.rows, n as u64);
    assert_eq!(
        f.count("SELECT COUNT(*) FROM wide WHERE CHAR_LENGTH(pad) = 500")
            .await,
        n as i64
    );
}

// ----------------------------------------------------------------------------------------
// Connections, errors and secrets

#[tokio::test]
async fn a_canary_password_never_leaks() {
    let f = Fixture::new().await;
    let canary = format!("ferry-canary-{}", std::process::id());
    let mut s = f.settings.clone();
    s.password = Some(Secret::new(canary.clone()));
    let source = MysqlSource::from_settings(s.clone());
    let sink = MysqlSink::from_settings(s.clone());
    let e1 = source.check().await.unwrap_err();
    let e2 = sink.check().await.unwrap_err();
    let schema = testkit::simple_batch(1, 0, "").schema();
    let e3 = testkit::open_refused(&sink, "t", schema, WriteMode::Append).await;
    for e in [&e1, &e2, &e3] {
        assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    }
    // the same through a config file: clear text, `${env:…}` and a URL
    std::env::set_var("FERRY_TEST_MYSQL_CANARY", &canary);
    let dir = tempfile::tempdir().unwrap();
    let mut errors = vec![e1, e2, e3];
    let mut shown = Vec::new();
    for fields in [
        format!("password = \"{canary}\""),
        "password = \"${env:FERRY_TEST_MYSQL_CANARY}\"".to_string(),
    ] {
        let toml = format!(
            "host = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{}\"\n{fields}\n",
            s.host, s.port, s.user, s.database
        );
        let sink = testkit::from_toml_shown(&toml, dir.path(), &mut shown, MysqlSink::new).unwrap();
        shown.push(format!("{sink:?}"));
        errors.push(sink.check().await.unwrap_err());
    }
    let url = format!(
        "url = \"mysql://{}:{canary}@{}:{}/{}\"\n",
        s.user, s.host, s.port, s.database
    );
    let source = testkit::from_toml_shown(&url, dir.path(), &mut shown, MysqlSource::new).unwrap();
    shown.push(format!("{source:?} {:?}", source.settings()));
    errors.push(source.check().await.unwrap_err());
    // a config error in a URL holding the password does not repeat it
    let bad = format!(
        "url = \"mysql://{}:{canary}@{}:{}/{}?pool=1\"\n",
        s.user, s.host, s.port, s.database
    );
    errors.push(testkit::from_toml(&bad, dir.path(), MysqlSource::new).unwrap_err());
    for e in &errors {
        shown.push(format!("{e} | {e:?} | {:?}", e.context()));
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            shown.push(format!("{s} | {s:?}"));
            src = s.source();
        }
    }
    for text in &shown {
        assert!(!text.contains(&canary), "the password leaked: {text}");
    }
    assert!(
        shown.iter().any(|t| t.contains("refused the login")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn connection_failures_map_to_kinds() {
    let f = Fixture::new().await;
    // nothing listens on port 1
    let mut s = f.settings.clone();
    s.port = 1;
    let e = MysqlSource::from_settings(s).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_retryable());
    // no such database
    let mut s = f.settings.clone();
    s.database = "ferry_no_such_database".into();
    let e = MysqlSink::from_settings(s).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::NotFound, "ferry_no_such_database");
    // a user who may read but not write, nor see another database
    let user = format!("ferry_ro_{}", std::process::id());
    f.sql(&format!(
        "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass-1';
         GRANT SELECT ON `{}`.* TO '{user}'@'%'",
        f.settings.database
    ))
    .await;
    let mut ro = f.settings.clone();
    ro.user = user.clone();
    ro.password = Some(Secret::new("ro-pass-1"));
    MysqlSource::from_settings(ro.clone())
        .check()
        .await
        .unwrap();
    let ro_sink = MysqlSink::from_settings(ro.clone());
    let schema = testkit::simple_batch(1, 0, "").schema();
    let e = testkit::open_refused(&ro_sink, "t", schema, WriteMode::Append).await;
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let mut other = ro.clone();
    other.database = "mysql".into();
    let e = MysqlSource::from_settings(other).check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    f.sql(&format!("DROP USER '{user}'@'%'")).await;
    // TLS asked of a server without it (or with a certificate nobody vouches for)
    let mut tls = f.settings.clone();
    tls.tls = true;
    let e = MysqlSource::from_settings(tls).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "TLS");
}

#[tokio::test]
async fn registers_with_documented_config() {
    testkit::documented_source_and_sink(
        register,
        NAME,
        &["host", "port", "database", "user", "password", "tls", "url"],
    );
    let dir = tempfile::tempdir().unwrap();
    let e = ConfigNode::from_toml("database = \"x\"\nuser = \"u\"\nhots = \"h\"\n", dir.path())
        .unwrap()
        .parse::<MysqlSinkConfig>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    // building connects to nothing
    let toml = "host = \"db.invalid\"\ndatabase = \"x\"\nuser = \"u\"\n";
    let sink = testkit::from_toml(toml, dir.path(), MysqlSink::new).unwrap();
    assert_eq!(sink.settings().location(), "mysql://db.invalid:3306/x");
    let e = sink.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
}

/// Tenant binding: the database keeps whose it is in a one-row `_ferry_owner` table.
#[tokio::test]
async fn the_owner_tag_is_kept_in_one_row() {
    let f = Fixture::new().await;
    assert_eq!(
        f.sink.owner().await.unwrap(),
        None,
        "a fresh database is unbound"
    );
    // a second sync that also saw it unbound (a race) binds after the first one
    let racer = MysqlSink::from_settings(f.settings.clone());
    assert_eq!(racer.owner().await.unwrap(), None);
    assert_eq!(
        f.sink.bind_owner("acme").await.unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(f.sink.owner().await.unwrap().as_deref(), Some("acme"));
    // insert-if-absent: the loser is told the winner, and the tag is not replaced
    assert_eq!(
        racer.bind_owner("it's globex").await.unwrap().as_deref(),
        Some("acme")
    );
    // a new sink (a later run) reads the same tag
    let later = MysqlSink::from_settings(f.settings.clone());
    assert_eq!(later.owner().await.unwrap().as_deref(), Some("acme"));
    assert_eq!(f.count("SELECT COUNT(*) FROM _ferry_owner").await, 1);
}

/// Needs a server with TLS: `FERRY_TEST_MYSQL_TLS_URL` (e.g. `mysql://root@127.0.0.1:3307/mysql`)
/// and `FERRY_TEST_MYSQL_TLS_CA` (the PEM of the CA that signed its certificate).
#[tokio::test]
#[ignore = "needs a MariaDB with TLS: set FERRY_TEST_MYSQL_TLS_URL and FERRY_TEST_MYSQL_TLS_CA"]
async fn tls_with_a_private_ca() {
    let url = std::env::var("FERRY_TEST_MYSQL_TLS_URL").expect("FERRY_TEST_MYSQL_TLS_URL");
    let ca = std::env::var("FERRY_TEST_MYSQL_TLS_CA").expect("FERRY_TEST_MYSQL_TLS_CA");
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "url = \"{url}\"\ntls_ca = \"{ca}\"\ntables = []\nqueries = [{{ name = \"tls\", sql = \
         \"SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'\" }}]\n"
    );
    let source = testkit::from_toml(&toml, dir.path(), MysqlSource::new).unwrap();
    assert!(source.settings().tls);
    source.check().await.unwrap();
    let r = rows(&testkit::read_all(&source, ReadRequest::full("tls")).await);
    let version = r[0]["v"].as_str().unwrap_or_default().to_string();
    assert!(
        version.starts_with("TLS"),
        "the session is not encrypted: {r:?}"
    );
    // without the private CA the certificate is not trusted
    let mut plain = source.settings().clone();
    plain.tls_ca = None;
    let e = MysqlSource::from_settings(plain).check().await.unwrap_err();
    sql_fixtures::assert_error(&e, ErrorKind::Unreachable, "TLS");
}

// ----------------------------------------------------------------------------------------
// Speed (run with: cargo test --release -p ferry-connector-mysql -- --ignored bulk_speed --nocapture)

#[tokio::test]
#[ignore = "a benchmark; run in release mode"]
async fn bulk_speed() {
    let f = Fixture::new().await;
    let n = 1_000_000usize;
    let batch = 8192usize;
    testkit::bench_write_modes(f.sink.as_ref(), n, batch).await;
    let mut req = ReadRequest::full("bench_append");
    req.batch_size = batch;
    assert_eq!(testkit::bench_read(f.source().as_ref(), req).await, n);
}
