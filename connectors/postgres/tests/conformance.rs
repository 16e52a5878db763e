//! The `postgres` connector against the conformance kit and its SQL suite, and its own
//! contract, on the real PostgreSQL at 127.0.0.1:5432 (`FERRY_TEST_PG_URL` overrides it):
//! reruns after updates, types of tables made by other tools, custom queries, values that
//! do not fit, native types, idempotent upsert, a connection killed mid-load. Every test
//! works in a fresh schema of its own, dropped at the end.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use ferry_connector_postgres::{
    register, PostgresSink, PostgresSinkConfig, PostgresSourceConfig, NAME,
};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    async_trait, Catalog, ConfigNode, Durability, ErrorKind, FerryType, Message, MessageStream,
    ReadRequest, Result, Sink, Source, WriteMode,
};
use ferry_engine::report::Status;
use ferry_engine::StreamConfig;
use ferry_testkit::sql::{self, CustomQueries, KeylessTable, SqlFixture};
use ferry_testkit::sql_fixtures;
use ferry_testkit::{self as testkit, ids, keyed, messages, request, rows, MemorySource};
use futures::StreamExt;

async fn sync(rt: &ferry_engine::Runtime, sc: &StreamConfig) -> ferry_engine::RunReport {
    testkit::sync(rt, std::slice::from_ref(sc), ("postgres", "postgres")).await
}

// ----------------------------------------------------------------------------------------
// The shared kit and SQL suite

ferry_testkit::sql_suite!(Fixture::new().await);

#[tokio::test]
async fn a_changed_column_type_is_refused() {
    let e = sql::a_changed_column_type_is_refused(&Fixture::new().await, FerryType::Date).await;
    assert!(e.message().contains("bigint"), "{e}");
}

#[tokio::test]
async fn upsert_needs_a_unique_key() {
    let table = KeylessTable {
        name: "nokey",
        create: "CREATE TABLE nokey (id bigint, name text, version bigint)",
        hint: "CREATE UNIQUE INDEX",
        add_key: "CREATE UNIQUE INDEX ON nokey (id)",
    };
    sql::upsert_needs_a_unique_key(&Fixture::new().await, &table).await;
}

#[tokio::test]
async fn custom_query_streams() {
    let f = Fixture::new().await;
    let queries = CustomQueries {
        big_orders: "SELECT id, v AS total FROM orders WHERE v > 300;",
        // `top`: a cast in SQL chooses the type
        stats: "{ name = \"stats\", sql = \"SELECT count(*) AS n, max(v)::numeric(12,2) AS top, 'x' || max(id) AS label, array_agg(id ORDER BY id) AS all_ids FROM orders\" }",
        writes: &[
            "DELETE FROM orders",
            "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
            "SELECT id FROM orders; DELETE FROM orders",
        ],
    };
    let q = sql::custom_query_streams(&f, &queries).await;
    assert_eq!(q.stats_type("label"), FerryType::String);
    assert_eq!(q.stats_type("all_ids"), FerryType::Json);
    assert_eq!(q.stats_row["label"], "x10");
    assert_eq!(
        q.stats_row["all_ids"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
    // a function that writes is stopped by the read-only transaction
    f.sql("CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'DELETE FROM orders RETURNING 1';")
        .await;
    let bad = f.source_with("queries = [{ name = \"oops\", sql = \"SELECT sneaky() AS x\" }]\n");
    let e = testkit::read_refused(&bad, ReadRequest::full("oops")).await;
    sql_fixtures::assert_error(&e, ErrorKind::ConfigInvalid, "read-only");
    assert_eq!(f.value("SELECT count(*) FROM orders").await, "10");
}

// ----------------------------------------------------------------------------------------
// Source

#[tokio::test]
async fn an_incremental_rerun_moves_exactly_the_new_and_updated_rows() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TABLE accounts (id integer PRIMARY KEY, name varchar(40) NOT NULL, balance numeric(12,2),
             updated_at timestamp(3) with time zone NOT NULL);
         INSERT INTO accounts
           SELECT i, 'acct-' || i, i * 10.5, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
           FROM generate_series(1, 50) AS i;
         -- a run of equal timestamps: ties on the cursor
         UPDATE accounts SET updated_at = timestamptz '2024-01-01 00:00:30.5+00' WHERE id BETWEEN 31 AND 36;",
    )
    .await;
    let source = f.source();
    let info = testkit::discover_one(source.as_ref(), "accounts").await;
    assert_eq!(info.primary_key, vec!["id"]);
    assert_eq!(info.cursor_candidates, vec!["id", "updated_at"]);
    let state = tempfile::tempdir().unwrap();
    let mut rt = testkit::runtime(source.clone(), f.sink.clone(), state.path());
    rt.settings.batch_size = 4;
    let mut sc = StreamConfig::named("accounts");
    sc.cursor = Some("updated_at".into());
    sc.mode = Some(WriteMode::Upsert);
    sc.destination = Some("accounts_copy".into());
    let report = sync(&rt, &sc).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 50);
    assert_eq!(
        report.streams[0].rows_expected, None,
        "incremental reads give no estimate"
    );
    assert_eq!(
        rt.state.get("accounts").unwrap()["cursor"],
        "2024-01-01T00:00:50Z"
    );
    let out = &report.streams[0].outputs[0];
    assert_eq!(out.kind, "table");
    assert_eq!(
        out.location,
        format!("{}#{}.accounts_copy", f.server.location(), f.schema)
    );
    assert!(
        !out.location.contains('@'),
        "no user or password in the location"
    );

    // three updated rows (one of them tied with another row) and two new ones
    f.sql(
        "UPDATE accounts SET balance = -1, updated_at = timestamptz '2024-02-01 00:00:00+00' WHERE id IN (3, 33);
         UPDATE accounts SET name = 'renamed', updated_at = timestamptz '2024-02-01 00:00:00.001+00' WHERE id = 40;
         INSERT INTO accounts VALUES (51, 'new', 1, timestamptz '2024-02-01 00:00:00+00'),
                                     (52, 'newer', 2, timestamptz '2024-02-02 00:00:00+00');",
    )
    .await;
    let report = sync(&rt, &sc).await;
    testkit::assert_succeeded(&report);
    assert_eq!(
        report.rows_committed(),
        5,
        "exactly the updated and new rows move"
    );
    assert_eq!(f.value("SELECT count(*) FROM accounts_copy").await, "52");
    assert_eq!(
        f.rows_text(
            "SELECT balance::text, name FROM accounts_copy WHERE id IN (3, 33, 40) ORDER BY id"
        )
        .await,
        vec![
            vec![Some("-1.00".into()), Some("acct-3".into())],
            vec![Some("-1.00".into()), Some("acct-33".into())],
            vec![Some("420.00".into()), Some("renamed".into())],
        ]
    );
    // and nothing again
    let report = sync(&rt, &sc).await;
    assert_eq!(report.rows_committed(), 0);
}

#[tokio::test]
async fn reads_tables_made_by_other_tools() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE DOMAIN price AS numeric(8,3);
         CREATE TABLE legacy (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             small smallint NOT NULL DEFAULT 0, medium integer, ratio real, score double precision,
             amount numeric(10,2), loose numeric, huge numeric(50,10), cost price,
             name varchar(20), code char(3), tag uuid, raw bytea, born date,
             seen timestamp, at timestamptz, doc json, docb jsonb, flag boolean,
             tags text[], feeling mood, addr inet, span interval, modified_at timestamp,
             net cidr, mac macaddr, mac8 macaddr8, price money);
         INSERT INTO legacy (small, medium, ratio, score, amount, loose, huge, cost, name, code, tag, raw, born,
                             seen, at, doc, docb, flag, tags, feeling, addr, span, modified_at,
                             net, mac, mac8, price)
           VALUES (-3, 70000, 0.5, 1e-300, 12.5, 1.123456789, 12345678901234567890123456789.0123456789, 1.5,
                   'Zoë', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x00ff', '2000-02-29',
                   '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+02', '{\"b\": 1,  \"a\": [1, 2]}', '{\"b\": 1, \"a\": 2}',
                   true, ARRAY['x', 'y'], 'happy', '10.0.0.1', '1 day 2 hours', now(),
                   '192.168.0.0/24', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', 1234.5),
                  (DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL);
         CREATE VIEW cheap AS SELECT id, amount FROM legacy WHERE amount < 100;
         CREATE MATERIALIZED VIEW snapshot AS SELECT id, name FROM legacy;
         CREATE TABLE \"_ferry_stage_legacy_20000101T000000Z-abcdef\" (x int);",
    )
    .await;
    let source = f.source();
    let catalog = source.discover().await.unwrap();
    assert_eq!(
        catalog.names(),
        vec!["cheap", "legacy", "snapshot"],
        "views and materialized views are streams; Ferry's staging tables are not"
    );
    let legacy = catalog.get("legacy").unwrap();
    assert_eq!(
        sql_fixtures::columns(&legacy.schema),
        "id int64 not null, small int64 not null, medium int64, ratio float64, \
         score float64, amount decimal(10,2), loose decimal(38,9), huge string, \
         cost decimal(8,3), name string, code string, tag string, raw binary, born date, \
         seen timestamp, at timestamp, doc json, docb json, flag bool, tags json, \
         feeling json, addr string, span string, modified_at timestamp, net string, \
         mac string, mac8 string, price string"
    );
    assert_eq!(legacy.primary_key, vec!["id"]);
    assert_eq!(
        legacy.cursor_candidates,
        vec!["id", "modified_at", "small", "medium", "born", "seen", "at"]
    );
    testkit::source_reads_match_discover(source.as_ref(), 100).await;
    let r = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("legacy")).await);
    assert_eq!(r.len(), 2);
    let a = &r[0];
    assert_eq!(a["small"], -3);
    assert_eq!(a["medium"], 70000);
    assert_eq!(a["ratio"], 0.5);
    assert_eq!(a["score"], 1e-300);
    assert_eq!(a["amount"], "12.50");
    assert_eq!(a["loose"], "1.123456789");
    assert_eq!(a["huge"], "12345678901234567890123456789.0123456789");
    assert_eq!(a["cost"], "1.500");
    assert_eq!(a["name"], "Zoë");
    assert_eq!(a["code"], "ab ", "char(n) keeps its padding");
    assert_eq!(a["tag"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(a["raw"], "AP8=");
    assert_eq!(a["born"], "2000-02-29");
    assert_eq!(
        a["seen"], "2024-01-02T03:04:05.500Z",
        "timestamp without time zone is UTC"
    );
    assert_eq!(a["at"], "2024-01-02T01:04:05Z");
    assert_eq!(a["doc"], serde_json::json!({ "b": 1, "a": [1, 2] }));
    assert_eq!(a["docb"], serde_json::json!({ "a": 2, "b": 1 }));
    assert_eq!(a["flag"], true);
    assert_eq!(a["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(a["feeling"], "happy");
    assert_eq!(a["addr"], "10.0.0.1");
    assert_eq!(a["span"], "1 day 02:00:00");
    assert_eq!(a["net"], "192.168.0.0/24");
    assert_eq!(a["mac"], "08:00:2b:01:02:03");
    assert_eq!(a["mac8"], "08:00:2b:01:02:03:04:05");
    assert_eq!(a["price"], "$1,234.50", "money as lc_monetary formats it");
    let b = &r[1];
    for (k, v) in b {
        if !["id", "small"].contains(&k.as_str()) {
            assert_eq!(*v, serde_json::Value::Null, "column {k}");
        }
    }
    let cheap = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("cheap")).await);
    assert_eq!(cheap.len(), 1);
    let snap = rows(&testkit::read_all(source.as_ref(), ReadRequest::full("snapshot")).await);
    assert_eq!(snap.len(), 2);

    // several schemas: the first names streams by table, the others `schema.table`
    let other = format!("{}_b", f.schema);
    f.sql(&format!(
        "CREATE SCHEMA {0}; CREATE TABLE {0}.legacy (id int PRIMARY KEY); INSERT INTO {0}.legacy VALUES (7)",
        common::quote(&other)
    ))
    .await;
    let two = f.source_with(&format!(
        "schemas = [\"{}\", \"{other}\"]\ntables = [\"legacy\", \"{other}.legacy\"]\n",
        f.schema
    ));
    assert_eq!(
        two.discover().await.unwrap().names(),
        vec!["legacy".to_string(), format!("{other}.legacy")]
    );
    assert_eq!(
        ids(&testkit::read_all(&two, ReadRequest::full(format!("{other}.legacy"))).await),
        vec![7]
    );
    f.sql(&format!("DROP SCHEMA {} CASCADE", common::quote(&other)))
        .await;
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_rejected_naming_column_and_row() {
    let f = Fixture::new().await;
    f.sql(
        "CREATE TABLE t (id int PRIMARY KEY, n numeric);
         INSERT INTO t VALUES (1, 10), (2, 20.5), (3, 1.0000000001), (4, 40), (5, 1e40), (6, 'NaN');",
    )
    .await;
    let msgs = messages(f.source().as_ref(), ReadRequest::full("t")).await;
    let mut seen = Vec::new();
    let mut rejected = Vec::new();
    for m in msgs {
        match m {
            Message::Batch(b) => seen.extend(ids(&[b])),
            Message::Rejected(r) => {
                assert!(
                    r.message.contains("column `n`") && r.message.contains("decimal(38,9)"),
                    "{}",
                    r.message
                );
                assert_eq!(r.position.column, Some(2));
                rejected.push((seen.clone(), r.position.key.clone().unwrap(), r.message));
            }
            _ => {}
        }
    }
    assert_eq!(seen, vec![1, 2, 4]);
    assert_eq!(rejected.len(), 3);
    assert_eq!(
        rejected[0].0,
        vec![1, 2],
        "the rows before a rejected row come first"
    );
    assert_eq!(rejected[0].1, "t row 3");
    assert!(rejected[0].2.contains("1.0000000001"), "{}", rejected[0].2);
    assert_eq!(rejected[1].1, "t row 5");
    assert!(rejected[2].2.contains("NaN"), "{}", rejected[2].2);
    // through the runtime, the run fails naming the row (or quarantines when configured)
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(
        f.source(),
        Arc::new(testkit::MemorySink::default()),
        dir.path(),
    );
    let report = sync(&rt, &StreamConfig::named("t")).await;
    assert_eq!(report.status, Status::Failed);
    let e = report.streams[0].error.clone().unwrap();
    assert!(e.contains("column `n`") && e.contains("t row 3"), "{e}");
}

#[tokio::test]
async fn a_reader_that_stops_early_stops_the_server() {
    let f = Fixture::new().await;
    let app = testkit::fresh_name("ferry_early");
    let source = f.source_with(&format!(
        "application_name = \"{app}\"\nqueries = [{{ name = \"many\", sql = \"SELECT generate_series(1, 200000000) AS id\" }}]\n"
    ));
    let mut req = ReadRequest::full("many");
    req.batch_size = 1000;
    let mut stream = source.read(req).await.unwrap();
    let mut got = 0;
    while let Some(m) = stream.next().await {
        if let Message::Batch(b) = m.unwrap() {
            got += b.num_rows();
            break;
        }
    }
    assert_eq!(got, 1000);
    drop(stream);
    // the COPY is cancelled rather than read to its end in the background
    let admin = f.admin().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let busy: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        if busy == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept running the COPY after the reader stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----------------------------------------------------------------------------------------
// Sink

// ----------------------------------------------------------------------------------------
// Sink

#[tokio::test]
async fn values_are_stored_with_native_types() {
    let f = Fixture::new().await;
    sql_fixtures::append_all_types(f.sink.as_ref(), "all").await;
    let types = f
        .rows_text(&format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text FROM pg_attribute a \
             WHERE a.attrelid = '{}.\"all\"'::regclass AND a.attnum > 0 ORDER BY a.attnum",
            common::quote(&f.schema)
        ))
        .await;
    let got: Vec<(String, String, String)> = types
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].clone().unwrap(),
            )
        })
        .collect();
    let want = [
        ("id", "bigint", "true"),
        ("flag", "boolean", "false"),
        ("count", "bigint", "false"),
        ("ratio", "double precision", "false"),
        ("amount", "numeric(20,4)", "false"),
        ("name", "text", "false"),
        ("blob", "bytea", "false"),
        ("day", "date", "false"),
        ("at", "timestamp with time zone", "false"),
        ("doc", "jsonb", "false"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        f.value("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'all_pkey' AND connamespace = current_schema()::regnamespace")
            .await,
        "PRIMARY KEY (id)"
    );
    assert_eq!(
        f.rows_text("SELECT amount::text, at::text, day::text, doc->>'n', encode(blob, 'hex') FROM \"all\" WHERE id IN (1, 3) ORDER BY id")
            .await,
        vec![
            vec![
                Some("1234.5678".into()),
                Some("2024-05-01 12:00:00.25+00".into()),
                Some("2024-02-29".into()),
                Some("1".into()),
                Some("000102ff".into())
            ],
            vec![
                Some("-9999999999999999.9999".into()),
                Some("1969-12-31 23:59:59.999999+00".into()),
                Some("1970-01-01".into()),
                None,
                Some("".into())
            ],
        ]
    );
}

#[tokio::test]
async fn tables_made_by_other_tools_take_the_streams_values_or_refuse_clearly() {
    let f = Fixture::new().await;
    // a table made by another tool: narrower and related types take the stream's values
    f.sql(
        "CREATE TABLE \"Legacy\" (id integer PRIMARY KEY, name varchar(10), ref uuid, seen timestamp,
             doc json, created timestamptz NOT NULL DEFAULT now(), serial_no bigserial)",
    )
    .await;
    let schema = keyed(
        "ID",
        vec![
            FerryType::Int64.field("ID", false),
            FerryType::String.field("name", true),
            FerryType::String.field("ref", true),
            FerryType::Timestamp.field("seen", true),
            FerryType::Json.field("doc", true),
        ],
    );
    let batch = testkit::text_batch(
        schema.clone(),
        [[
            Some("1"),
            Some("short"),
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Some("2024-05-01T12:00:00Z"),
            Some("{\"x\": [1]}"),
        ]],
    );
    f.write("legacy", WriteMode::Upsert, std::slice::from_ref(&batch))
        .await;
    f.write("legacy", WriteMode::Upsert, &[batch]).await;
    assert_eq!(
        f.rows_text("SELECT id, name, ref::text, seen::text, doc::text, serial_no FROM \"Legacy\"")
            .await,
        vec![vec![
            Some("1".into()),
            Some("short".into()),
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            Some("2024-05-01 12:00:00".into()),
            Some("{\"x\": [1]}".into()),
            Some("1".into())
        ]]
    );
    // values that do not fit fail naming the column and row
    let refused = |rows: &[[Option<&str>; 2]]| {
        let batch = testkit::text_batch(schema.clone(), rows.iter().map(|r| r.iter().copied()));
        sql_fixtures::append_refused(f.sink.as_ref(), "Legacy", batch, ErrorKind::DataInvalid)
    };
    let e = refused(&[[Some("2"), Some("ok")], [Some("3000000000"), Some("ok")]]).await;
    assert_eq!(e.context_value("column"), Some("id"));
    assert_eq!(e.context_value("row"), Some("2"));
    let e = refused(&[[Some("2"), Some("far too long for ten")]]).await;
    assert!(e.message().contains("too long"), "{e}");
    assert_eq!(f.value("SELECT count(*) FROM \"Legacy\"").await, "1");
    // a view is not a table
    f.sql("CREATE VIEW v AS SELECT 1 AS id").await;
    let e = sql_fixtures::append_refused(
        f.sink.as_ref(),
        "v",
        testkit::simple_batch(1, 1, "x"),
        ErrorKind::SchemaMismatch,
    )
    .await;
    assert!(e.message().contains("view"), "{e}");
}

#[tokio::test]
async fn upsert_twice_is_idempotent_and_the_last_row_of_a_key_wins() {
    let f = Fixture::new().await;
    let first = testkit::simple_batch(1, 1000, "v1");
    f.write("u", WriteMode::Upsert, std::slice::from_ref(&first))
        .await;
    let versions = "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM u";
    let before = f.value(versions).await;
    // the same rows again: nothing changes, not even the row versions
    let s = f
        .write("u", WriteMode::Upsert, std::slice::from_ref(&first))
        .await;
    assert_eq!(s.rows, 1000);
    assert_eq!(
        f.value(versions).await,
        before,
        "an idempotent upsert rewrote rows"
    );
    assert_eq!(f.value("SELECT count(*) FROM u").await, "1000");
    // a key twice in one flush (and across batches of it): the last one wins
    let mut w = f
        .sink
        .open(request("u", first.schema(), WriteMode::Upsert))
        .await
        .unwrap();
    w.write(testkit::simple_batch(5, 3, "a")).await.unwrap();
    w.write(testkit::simple_batch(6, 1, "b")).await.unwrap();
    w.write(testkit::simple_batch(1001, 2, "c")).await.unwrap();
    w.write(testkit::simple_batch(1002, 1, "d")).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::Durable);
    w.close().await.unwrap();
    assert_eq!(
        f.rows_text("SELECT id, name FROM u WHERE id IN (5, 6, 7, 1001, 1002) ORDER BY id")
            .await,
        vec![
            vec![Some("5".into()), Some("a-5".into())],
            vec![Some("6".into()), Some("b-6".into())],
            vec![Some("7".into()), Some("a-7".into())],
            vec![Some("1001".into()), Some("c-1001".into())],
            vec![Some("1002".into()), Some("d-1002".into())],
        ]
    );
    assert_eq!(f.value("SELECT count(*) FROM u").await, "1002");
}

#[tokio::test]
async fn the_swapped_in_tables_key_takes_the_tables_name() {
    let f = Fixture::new().await;
    for first in [1, 10] {
        f.write(
            "t",
            WriteMode::Overwrite,
            &[testkit::simple_batch(first, 2, "x")],
        )
        .await;
    }
    assert_eq!(
        f.value(
            "SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'"
        )
        .await,
        "t_pkey",
        "the swapped-in table's key takes the table's name"
    );
}

/// Delays every checkpoint of a source: the writer sits in an open COPY meanwhile.
struct SlowSource {
    inner: MemorySource,
    delay: Duration,
}

#[async_trait]
impl Source for SlowSource {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn discover(&self) -> Result<Catalog> {
        self.inner.discover().await
    }
    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let delay = self.delay;
        let inner = self.inner.read(request).await?;
        Ok(inner
            .then(move |m| async move {
                if matches!(m, Ok(Message::Checkpoint(_))) {
                    tokio::time::sleep(delay).await;
                }
                m
            })
            .boxed())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_load_fails_the_run_and_the_rerun_has_no_duplicates() {
    let f = Fixture::new().await;
    let app = testkit::fresh_name("ferry_kill");
    let mut settings = f.server.clone();
    settings.application_name = app.clone();
    let sink = Arc::new(PostgresSink::from_settings(settings, &f.schema));
    let (batches, rows_per) = (40usize, 2_500usize);
    let data: Vec<RecordBatch> = (0..batches)
        .map(|i| testkit::simple_batch((i * rows_per) as i64 + 1, rows_per, "row"))
        .collect();
    let schema = data[0].schema();
    let source = Arc::new(SlowSource {
        inner: MemorySource::new("loads", schema, data),
        delay: Duration::from_millis(40),
    });
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(source, sink, dir.path());
    let mut sc = StreamConfig::named("loads");
    sc.incremental = Some(true);
    sc.mode = Some(WriteMode::Append);

    // once some rows are committed, terminate the loading backend while it is in a COPY
    let admin = f.admin().await;
    let killer = tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let exists: bool = admin
                .query_one("SELECT to_regclass('loads') IS NOT NULL", &[])
                .await
                .unwrap()
                .get(0);
            let committed: i64 = if exists {
                admin
                    .query_one("SELECT count(*) FROM loads", &[])
                    .await
                    .unwrap()
                    .get(0)
            } else {
                0
            };
            if committed > 0 {
                let row = admin
                    .query_opt(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY%'",
                        &[&app],
                    )
                    .await
                    .unwrap();
                if let Some(r) = row {
                    if r.get::<_, bool>(0) {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    });
    let report = sync(&rt, &sc).await;
    assert!(
        killer.await.unwrap(),
        "the loading backend was never seen in a COPY"
    );
    assert_eq!(
        report.status,
        Status::Failed,
        "killing the loading backend did not fail the run"
    );
    let error = report.streams[0].error.clone().unwrap();
    assert!(error.contains("not committed"), "{error}");
    let committed = rt
        .state
        .get("loads")
        .and_then(|s| s["batch"].as_u64())
        .unwrap_or(0);
    assert!(
        committed > 0 && committed < batches as u64,
        "state committed for {committed} batches"
    );
    let stored: u64 = f.value("SELECT count(*) FROM loads").await.parse().unwrap();
    assert_eq!(
        stored,
        committed * rows_per as u64,
        "the table must hold exactly the rows the committed state covers"
    );
    // the rerun resumes after the committed state and completes, without duplicates
    let report = sync(&rt, &sc).await;
    testkit::assert_succeeded(&report);
    assert_eq!(
        report.rows_committed(),
        (batches as u64 - committed) * rows_per as u64
    );
    let total = (batches * rows_per).to_string();
    assert_eq!(f.value("SELECT count(*) FROM loads").await, total);
    assert_eq!(f.value("SELECT count(DISTINCT id) FROM loads").await, total);
}

// ----------------------------------------------------------------------------------------
// Config and registration

#[tokio::test]
async fn registers_with_documented_config() {
    let spec = testkit::documented_source_and_sink(
        register,
        NAME,
        &[
            "host", "port", "database", "user", "password", "sslmode", "ca_file", "url",
        ],
    );
    assert!(spec["source"]["properties"]["schemas"].is_object());
    assert!(spec["destination"]["properties"]["schema"].is_object());
    let dir = tempfile::tempdir().unwrap();
    let e = ConfigNode::from_toml("databse = \"x\"\n", dir.path())
        .unwrap()
        .parse::<PostgresSinkConfig>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    let e = ConfigNode::from_toml("sslmode = \"sometimes\"\n", dir.path())
        .unwrap()
        .parse::<PostgresSourceConfig>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
}

// ----------------------------------------------------------------------------------------
// Speed (run with: cargo test --release -p ferry-connector-postgres -- --ignored --nocapture)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark; run in release mode"]
async fn copy_speed() {
    let f = Fixture::new().await;
    let n = 1_000_000usize;
    let batch = 8192usize;
    testkit::bench_write_modes(f.sink.as_ref(), n, batch).await;
    testkit::bench_write_wide(f.sink.as_ref(), n, batch).await;
    for table in ["wide", "bench_append"] {
        testkit::bench_read(f.source().as_ref(), ReadRequest::full(table)).await;
    }
}
