//! The `postgres` connector against the conformance kit and its own contract, on the
//! real PostgreSQL at 127.0.0.1:5432 (`FERRY_TEST_PG_URL` overrides it): ties on the
//! cursor, reruns after updates, types of tables made by other tools, custom queries,
//! schema evolution, staged overwrite, idempotent upsert, a connection killed mid-load.
//! Every test works in a fresh schema of its own, dropped at the end.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{request, write, Fixture};
use ferry_connector_postgres::{
    register, PostgresSink, PostgresSinkConfig, PostgresSourceConfig, NAME,
};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::Schema;
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, Catalog, ConfigNode, Durability, ErrorKind, FerryType, Message, MessageStream,
    ReadRequest, Registry, Result, Sink, Source, WriteMode,
};
use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, Fidelity, MemorySource, SourceFixture};
use futures::StreamExt;

type Row = BTreeMap<String, serde_json::Value>;

async fn messages(source: &dyn Source, request: ReadRequest) -> Vec<Message> {
    let mut s = source
        .read(request)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m.unwrap_or_else(|e| panic!("read midway: {e}")));
    }
    out
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    testkit::rows_by_id(
        batches,
        Fidelity {
            typed: true,
            ..Default::default()
        },
    )
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// `id` (key) and `v` (the cursor), one row per pair.
fn id_v_batch(pairs: &[(i64, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("v", true),
    ]);
    let schema = with_keys(&schema, &["id".to_string()], Some("v"));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

async fn sync(rt: &ferry_engine::Runtime, sc: &StreamConfig) -> ferry_engine::RunReport {
    rt.sync(
        std::slice::from_ref(sc),
        &RunOptions::default(),
        None,
        ("postgres", "postgres"),
    )
    .await
    .expect("plan")
}

// ----------------------------------------------------------------------------------------
// The shared kit

#[tokio::test]
async fn source_suite() {
    testkit::run_source_suite(&Fixture::new().await).await;
}

#[tokio::test]
async fn sink_suite() {
    let f = Fixture::new().await;
    testkit::run_sink_suite(&f).await;
    // nothing of the kit's overwrites is left behind
    let staged = f
        .value(&format!(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{}' AND c.relname LIKE '\\_ferry\\_stage\\_%'",
            f.schema
        ))
        .await;
    assert_eq!(staged, "0", "staging tables were left in the schema");
}

// ----------------------------------------------------------------------------------------
// Source

#[tokio::test]
async fn incremental_ties_are_never_split_or_repeated() {
    let f = Fixture::new().await;
    // cursor v: 1, 2, 2, 2, 3, 3, 4 — with batch_size 2 the run of 2s spans a boundary
    let all = [(1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (6, 3), (7, 4)];
    let source = f.create("ties", &id_v_batch(&all)).await.unwrap();
    let mut req = ReadRequest::incremental("ties", None);
    req.cursor = Some("v".into());
    req.batch_size = 2;
    let msgs = messages(source.as_ref(), req.clone()).await;
    let mut emitted: Vec<i64> = Vec::new();
    let mut checkpoints = Vec::new();
    for m in &msgs {
        match m {
            Message::Batch(b) => emitted.extend(ids(std::slice::from_ref(b))),
            Message::Checkpoint(s) => {
                let c: i64 = s["cursor"].as_str().unwrap().parse().unwrap();
                assert_eq!(s["column"], "v");
                // everything up to and including c is out, nothing after it
                let want: Vec<i64> = all.iter().filter(|p| p.1 <= c).map(|p| p.0).collect();
                let mut got = emitted.clone();
                got.sort();
                assert_eq!(
                    got, want,
                    "checkpoint {c} does not cover exactly the rows with v <= {c}"
                );
                checkpoints.push(c);
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert_eq!(
        checkpoints,
        vec![2, 3, 4],
        "checkpoints only where the cursor changes, and one at the end"
    );
    assert_eq!(emitted.len(), all.len());
    // resuming from every checkpoint yields exactly the rows after it
    for c in checkpoints {
        let mut resume = req.clone();
        resume.state = Some(serde_json::json!({ "cursor": c.to_string(), "column": "v" }));
        let got = ids(&testkit::read_all(source.as_ref(), resume).await);
        let want: Vec<i64> = all.iter().filter(|p| p.1 > c).map(|p| p.0).collect();
        assert_eq!(got, want, "resume from {c}");
    }
    // a state taken with another cursor is refused, not misread
    let mut other = req.clone();
    other.state = Some(serde_json::json!({ "cursor": "3", "column": "id" }));
    let e = source
        .read(other)
        .await
        .err()
        .expect("a state of another cursor must be refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
}

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
    let info = source
        .discover()
        .await
        .unwrap()
        .get("accounts")
        .cloned()
        .unwrap();
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
    assert_eq!(
        report.status,
        Status::Succeeded,
        "{:?}",
        report.streams[0].error
    );
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
    assert_eq!(
        report.status,
        Status::Succeeded,
        "{:?}",
        report.streams[0].error
    );
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
             tags text[], feeling mood, addr inet, span interval, modified_at timestamp);
         INSERT INTO legacy (small, medium, ratio, score, amount, loose, huge, cost, name, code, tag, raw, born,
                             seen, at, doc, docb, flag, tags, feeling, addr, span, modified_at)
           VALUES (-3, 70000, 0.5, 1e-300, 12.5, 1.123456789, 12345678901234567890123456789.0123456789, 1.5,
                   'Zoë', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x00ff', '2000-02-29',
                   '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+02', '{\"b\": 1,  \"a\": [1, 2]}', '{\"b\": 1, \"a\": 2}',
                   true, ARRAY['x', 'y'], 'happy', '10.0.0.1', '1 day 2 hours', now()),
                  (DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
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
    let ty = |n: &str| FerryType::of(legacy.schema.field_with_name(n).unwrap()).unwrap();
    let dec = |precision, scale| FerryType::Decimal { precision, scale };
    for (col, want) in [
        ("id", FerryType::Int64),
        ("small", FerryType::Int64),
        ("medium", FerryType::Int64),
        ("ratio", FerryType::Float64),
        ("score", FerryType::Float64),
        ("amount", dec(10, 2)),
        ("loose", dec(38, 9)),
        ("huge", FerryType::String),
        ("cost", dec(8, 3)),
        ("name", FerryType::String),
        ("code", FerryType::String),
        ("tag", FerryType::String),
        ("raw", FerryType::Binary),
        ("born", FerryType::Date),
        ("seen", FerryType::Timestamp),
        ("at", FerryType::Timestamp),
        ("doc", FerryType::Json),
        ("docb", FerryType::Json),
        ("flag", FerryType::Bool),
        ("tags", FerryType::Json),
        ("feeling", FerryType::Json),
        ("addr", FerryType::Json),
        ("span", FerryType::Json),
    ] {
        assert_eq!(ty(col), want, "column {col}");
    }
    assert!(!legacy.schema.field_with_name("id").unwrap().is_nullable());
    assert!(!legacy
        .schema
        .field_with_name("small")
        .unwrap()
        .is_nullable());
    assert!(legacy.schema.field_with_name("name").unwrap().is_nullable());
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
async fn custom_query_streams() {
    let f = Fixture::new().await;
    let orders: Vec<(i64, i64)> = (1..=10).map(|i| (i, i * 50)).collect();
    f.create("orders", &id_v_batch(&orders)).await.unwrap();
    let source = f.source_with(
        r#"
tables = ["orders"]
queries = [
  { name = "big_orders", sql = "SELECT id, v AS total FROM orders WHERE v > 300;", primary_key = ["id"], cursor = "id" },
  { name = "stats", sql = "SELECT count(*) AS n, max(v)::numeric(12,2) AS top, 'x' || max(id) AS label, array_agg(id ORDER BY id) AS all_ids FROM orders" },
]
"#,
    );
    source.check().await.unwrap();
    let catalog = source.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["orders", "big_orders", "stats"]);
    let big = catalog.get("big_orders").unwrap();
    assert_eq!(big.primary_key, vec!["id"]);
    assert_eq!(big.default_cursor.as_deref(), Some("id"));
    assert_eq!(FerryType::of(big.schema.field(1)), Some(FerryType::Int64));
    let stats = catalog.get("stats").unwrap();
    let ty = |n: &str| FerryType::of(stats.schema.field_with_name(n).unwrap()).unwrap();
    assert_eq!(ty("n"), FerryType::Int64);
    assert_eq!(
        ty("top"),
        FerryType::Decimal {
            precision: 12,
            scale: 2
        },
        "a cast in SQL chooses the type"
    );
    assert_eq!(ty("label"), FerryType::String);
    assert_eq!(ty("all_ids"), FerryType::Json);
    testkit::source_reads_match_discover(&source, 100).await;
    assert_eq!(
        ids(&testkit::read_all(&source, ReadRequest::full("big_orders")).await),
        vec![7, 8, 9, 10]
    );
    let s = rows(&testkit::read_all(&source, ReadRequest::full("stats")).await);
    assert_eq!(s[0]["n"], 10);
    assert_eq!(s[0]["top"], "500.00");
    assert_eq!(s[0]["label"], "x10");
    assert_eq!(
        s[0]["all_ids"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
    // incremental over a query, and --limit
    let mut req = ReadRequest::incremental(
        "big_orders",
        Some(serde_json::json!({ "cursor": "8", "column": "id" })),
    );
    req.cursor = Some("id".into());
    assert_eq!(ids(&testkit::read_all(&source, req).await), vec![9, 10]);
    let mut req = ReadRequest::full("big_orders");
    req.limit = Some(2);
    assert_eq!(ids(&testkit::read_all(&source, req).await), vec![7, 8]);

    // statements that write are refused as config errors, and nothing is changed
    for sql in [
        "DELETE FROM orders",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
        "SELECT id FROM orders; DELETE FROM orders",
    ] {
        let bad = f.source_with(&format!(
            "queries = [{{ name = \"oops\", sql = \"{sql}\" }}]\n"
        ));
        let e = bad.discover().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{sql}: {e}");
        assert!(e.message().contains("oops"), "{e}");
    }
    assert_eq!(f.value("SELECT count(*) FROM orders").await, "10");
    // a function that writes is stopped by the read-only transaction
    f.sql("CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'DELETE FROM orders RETURNING 1';")
        .await;
    let bad = f.source_with("queries = [{ name = \"oops\", sql = \"SELECT sneaky() AS x\" }]\n");
    let e = bad
        .read(ReadRequest::full("oops"))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    assert!(e.message().contains("read-only"), "{e}");
    assert_eq!(f.value("SELECT count(*) FROM orders").await, "10");
}

#[tokio::test]
async fn estimate_limit_and_missing_things() {
    let f = Fixture::new().await;
    let pairs: Vec<(i64, i64)> = (1..=10).map(|i| (i, i)).collect();
    let source = f.create("ten", &id_v_batch(&pairs)).await.unwrap();
    let estimate = |msgs: &[Message]| {
        msgs.iter().find_map(|m| match m {
            Message::Estimate(n) | Message::Total(n) => Some(*n),
            _ => None,
        })
    };
    let all = messages(source.as_ref(), ReadRequest::full("ten")).await;
    assert_eq!(estimate(&all), Some(10));
    // a small table is counted in the read's snapshot: the exact total, for completeness
    assert!(
        matches!(all.first(), Some(Message::Total(10))),
        "{:?}",
        all.first()
    );
    let mut req = ReadRequest::full("ten");
    req.limit = Some(3);
    req.batch_size = 2;
    let some = messages(source.as_ref(), req).await;
    assert_eq!(estimate(&some), Some(3));
    // a limited read is not the whole table: an estimate only
    assert!(
        matches!(some.first(), Some(Message::Estimate(3))),
        "{:?}",
        some.first()
    );
    let n: usize = some
        .iter()
        .map(|m| match m {
            Message::Batch(b) => b.num_rows(),
            _ => 0,
        })
        .sum();
    assert_eq!(n, 3);
    let e = source
        .read(ReadRequest::full("nope"))
        .await
        .err()
        .expect("unknown stream");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains("ten"),
        "the error lists what exists: {e}"
    );
    let listed = f.source_with("tables = [\"ten\", \"missing\"]\n");
    let e = listed.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("missing"), "{e}");
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

#[tokio::test]
async fn values_are_stored_with_native_types() {
    let f = Fixture::new().await;
    write(
        f.sink.as_ref(),
        "all",
        WriteMode::Append,
        &[testkit::all_types_batch()],
    )
    .await
    .unwrap();
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
    // describe gives back the schema that was written
    let described = f.sink.describe("all").await.unwrap().expect("table exists");
    let pairs = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&described), pairs(&testkit::all_types_schema()));
    assert_eq!(ferry_core::types::primary_key(&described), vec!["id"]);
    assert!(f.sink.describe("nothing").await.unwrap().is_none());
}

#[tokio::test]
async fn existing_tables_evolve_or_refuse_clearly() {
    let f = Fixture::new().await;
    write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(1, 2, "old")],
    )
    .await
    .unwrap();
    // a new nullable column is added
    let old = testkit::simple_batch(3, 2, "new");
    let mut fields: Vec<_> = old
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(FerryType::String.field("note", true));
    let schema = with_keys(&Schema::new(fields), &["id".to_string()], None);
    let mut cols = old.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![Some("hello"), None])));
    let newer = RecordBatch::try_new(schema, cols).unwrap();
    write(f.sink.as_ref(), "people", WriteMode::Append, &[newer])
        .await
        .unwrap();
    let described = f.sink.describe("people").await.unwrap().unwrap();
    assert_eq!(described.fields().len(), 4);
    assert_eq!(
        f.rows_text("SELECT note FROM people ORDER BY id").await,
        vec![
            vec![None],
            vec![None],
            vec![Some("hello".into())],
            vec![None]
        ]
    );
    // and a stream without it still appends
    write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(5, 1, "later")],
    )
    .await
    .unwrap();
    // a column of another type is a schema mismatch naming it
    let schema = with_keys(
        &Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Date.field("version", true),
        ]),
        &["id".to_string()],
        None,
    );
    let e = f
        .sink
        .open(request("people", schema, WriteMode::Append))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert_eq!(e.context_value("column"), Some("version"));
    assert_eq!(e.context_value("table"), Some("people"));
    assert!(e.message().contains("bigint"), "{e}");
    // a new column that may not be NULL cannot be added to existing rows
    let schema = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("rank", false),
    ]);
    let e = f
        .sink
        .open(request("people", Arc::new(schema), WriteMode::Append))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("`rank`"), "{e}");
    // a duplicate key in append mode says how to update instead
    let e = write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(1, 1, "again")],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("upsert"), "{e}");

    // a table made by another tool: narrower and related types take the stream's values
    f.sql(
        "CREATE TABLE \"Legacy\" (id integer PRIMARY KEY, name varchar(10), ref uuid, seen timestamp,
             doc json, created timestamptz NOT NULL DEFAULT now(), serial_no bigserial)",
    )
    .await;
    let schema = with_keys(
        &Schema::new(vec![
            FerryType::Int64.field("ID", false),
            FerryType::String.field("name", true),
            FerryType::String.field("ref", true),
            FerryType::Timestamp.field("seen", true),
            FerryType::Json.field("doc", true),
        ]),
        &["ID".to_string()],
        None,
    );
    let mut b = ferry_core::values::BatchBuilder::new(schema.clone(), 2).unwrap();
    b.push_text_row(
        [
            Some("1"),
            Some("short"),
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Some("2024-05-01T12:00:00Z"),
            Some("{\"x\": [1]}"),
        ],
        "\0",
    )
    .unwrap();
    let batch = b.finish().unwrap();
    write(
        f.sink.as_ref(),
        "legacy",
        WriteMode::Upsert,
        std::slice::from_ref(&batch),
    )
    .await
    .unwrap();
    write(f.sink.as_ref(), "legacy", WriteMode::Upsert, &[batch])
        .await
        .unwrap();
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
    let mut b = ferry_core::values::BatchBuilder::new(schema.clone(), 2).unwrap();
    b.push_text_row([Some("2"), Some("ok"), None, None, None], "\0")
        .unwrap();
    b.push_text_row([Some("3000000000"), Some("ok"), None, None, None], "\0")
        .unwrap();
    let e = write(
        f.sink.as_ref(),
        "Legacy",
        WriteMode::Append,
        &[b.finish().unwrap()],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert_eq!(e.context_value("column"), Some("id"));
    assert_eq!(e.context_value("row"), Some("2"));
    let mut b = ferry_core::values::BatchBuilder::new(schema.clone(), 2).unwrap();
    b.push_text_row(
        [Some("2"), Some("far too long for ten"), None, None, None],
        "\0",
    )
    .unwrap();
    let e = write(
        f.sink.as_ref(),
        "Legacy",
        WriteMode::Append,
        &[b.finish().unwrap()],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("too long"), "{e}");
    assert_eq!(f.value("SELECT count(*) FROM \"Legacy\"").await, "1");
    // a view is not a table
    f.sql("CREATE VIEW v AS SELECT 1 AS id").await;
    let e = write(
        f.sink.as_ref(),
        "v",
        WriteMode::Append,
        &[testkit::simple_batch(1, 1, "x")],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("view"), "{e}");
}

#[tokio::test]
async fn upsert_twice_is_idempotent_and_the_last_row_of_a_key_wins() {
    let f = Fixture::new().await;
    let first = testkit::simple_batch(1, 1000, "v1");
    write(
        f.sink.as_ref(),
        "u",
        WriteMode::Upsert,
        std::slice::from_ref(&first),
    )
    .await
    .unwrap();
    let versions = "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM u";
    let before = f.value(versions).await;
    // the same rows again: nothing changes, not even the row versions
    let s = write(
        f.sink.as_ref(),
        "u",
        WriteMode::Upsert,
        std::slice::from_ref(&first),
    )
    .await
    .unwrap();
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

    // an existing table without a key on the columns is refused with what to run
    f.sql("CREATE TABLE nokey (id bigint, name text, version bigint)")
        .await;
    let e = write(
        f.sink.as_ref(),
        "nokey",
        WriteMode::Upsert,
        std::slice::from_ref(&first),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("CREATE UNIQUE INDEX"), "{e}");
    f.sql("CREATE UNIQUE INDEX ON nokey (id)").await;
    write(f.sink.as_ref(), "nokey", WriteMode::Upsert, &[first])
        .await
        .unwrap();
    assert_eq!(f.value("SELECT count(*) FROM nokey").await, "1000");
}

#[tokio::test]
async fn overwrite_stages_until_close_and_abort_leaves_the_old_table() {
    let f = Fixture::new().await;
    write(
        f.sink.as_ref(),
        "t",
        WriteMode::Overwrite,
        &[testkit::simple_batch(1, 3, "old")],
    )
    .await
    .unwrap();
    let schema = testkit::simple_batch(1, 0, "").schema();
    let ids_in_t = "SELECT string_agg(id::text, ',' ORDER BY id) FROM t";

    let mut w = f
        .sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(testkit::simple_batch(10, 2, "new")).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
    // mid-way: readers still see the old rows, and discovery hides the staging table
    assert_eq!(f.value(ids_in_t).await, "1,2,3");
    assert_eq!(f.source().discover().await.unwrap().names(), vec!["t"]);
    w.abort().await.unwrap();
    assert_eq!(f.value(ids_in_t).await, "1,2,3");
    let staged = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '\\_ferry%'";
    assert_eq!(f.value(staged).await, "0", "abort left the staging table");

    let mut w = f
        .sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(testkit::simple_batch(10, 2, "new")).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 2);
    assert_eq!(f.value(ids_in_t).await, "10,11");
    assert_eq!(
        f.value(
            "SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'"
        )
        .await,
        "t_pkey",
        "the swapped-in table's key takes the table's name"
    );

    // a staging table left by a crashed run is cleaned up by the next overwrite
    f.sql("CREATE TABLE \"_ferry_stage_t_20000101T000000Z-abcdef\" (x int)")
        .await;
    // a view on the table: the table is kept and its rows replaced, in one transaction
    f.sql("CREATE VIEW t_names AS SELECT name FROM t").await;
    write(
        f.sink.as_ref(),
        "t",
        WriteMode::Overwrite,
        &[testkit::simple_batch(20, 1, "z")],
    )
    .await
    .unwrap();
    assert_eq!(f.value(ids_in_t).await, "20");
    assert_eq!(
        f.value("SELECT string_agg(name, ',') FROM t_names").await,
        "z-20"
    );
    assert_eq!(f.value(staged).await, "0");
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
    assert_eq!(
        report.status,
        Status::Succeeded,
        "{:?}",
        report.streams[0].error
    );
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
    let mut registry = Registry::new();
    register(&mut registry);
    let def = registry.get(NAME).unwrap();
    assert!(def.is_source() && def.is_sink());
    let spec = def.spec();
    for side in ["source", "destination"] {
        let props = &spec[side]["properties"];
        for field in [
            "host", "port", "database", "user", "password", "sslmode", "ca_file", "url",
        ] {
            assert!(props[field].is_object(), "{side}.{field} missing: {spec}");
        }
        for (name, p) in props.as_object().unwrap() {
            let doc = p["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{side}.{name} has no doc comment"));
            assert!(
                doc.contains("default") || doc.contains("required"),
                "{side}.{name} does not state its default: {doc}"
            );
        }
    }
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
    let batches: Vec<RecordBatch> = (0..n.div_ceil(batch))
        .map(|i| {
            let first = (i * batch) as i64 + 1;
            testkit::simple_batch(first, batch.min(n - i * batch), "bench-row")
        })
        .collect();
    for mode in [WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert] {
        let table = format!("bench_{mode}");
        let t = std::time::Instant::now();
        let mut w = f
            .sink
            .open(request(&table, batches[0].schema(), mode))
            .await
            .unwrap();
        for (i, b) in batches.iter().enumerate() {
            w.write(b.clone()).await.unwrap();
            if i % 16 == 15 {
                w.flush().await.unwrap();
            }
        }
        w.flush().await.unwrap();
        w.close().await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:>9}: {n} rows in {secs:.2}s = {:.0} rows/s",
            mode.to_string(),
            n as f64 / secs
        );
    }
    let wide = wide_batch(batch);
    let t = std::time::Instant::now();
    let mut w = f
        .sink
        .open(request("wide", wide.schema(), WriteMode::Append))
        .await
        .unwrap();
    for i in 0..n / batch {
        w.write(wide.clone()).await.unwrap();
        if i % 16 == 15 {
            w.flush().await.unwrap();
        }
    }
    w.flush().await.unwrap();
    w.close().await.unwrap();
    let rows = (n / batch * batch) as f64;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "     wide: {rows} rows in {secs:.2}s = {:.0} rows/s",
        rows / secs
    );
    for table in ["wide", "bench_append"] {
        let t = std::time::Instant::now();
        let got: usize = testkit::read_all(f.source().as_ref(), ReadRequest::full(table))
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "read {table}: {got} rows in {secs:.2}s = {:.0} rows/s",
            got as f64 / secs
        );
    }
}

/// `n` rows of eight mixed columns (no key: rows repeat).
fn wide_batch(n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("qty", true),
        FerryType::Float64.field("score", true),
        FerryType::Decimal {
            precision: 12,
            scale: 2,
        }
        .field("amount", true),
        FerryType::String.field("name", true),
        FerryType::Date.field("day", true),
        FerryType::Timestamp.field("at", true),
        FerryType::Bool.field("flag", true),
    ]));
    let mut b = ferry_core::values::BatchBuilder::new(schema, n).unwrap();
    for i in 0..n {
        let cells = [
            i.to_string(),
            (i % 100).to_string(),
            format!("{}.5", i % 1000),
            format!("{}.{:02}", i * 7 % 100_000, i % 100),
            format!("customer number {i}"),
            format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            format!(
                "2024-05-01T{:02}:{:02}:{:02}.{:06}Z",
                i % 24,
                i % 60,
                i % 60,
                i % 1_000_000
            ),
            (i % 2 == 0).to_string(),
        ];
        b.push_text_row(cells.iter().map(|c| Some(c.as_str())), "")
            .unwrap();
    }
    b.finish().unwrap()
}
