//! The `sqlite` connector against the conformance kit, on real SQLite files in temp
//! folders, and against its own contract: ties on the cursor, schema evolution, custom
//! queries, staged overwrite, tables made by other tools, concurrent streams.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_connector_sqlite::{
    register, SqliteSink, SqliteSinkConfig, SqliteSource, SqliteSourceConfig, NAME,
};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, BuildContext, ConfigNode, Durability, ErrorKind, FerryType, Message, ReadRequest,
    Registry, Result, Sink, Source, WriteMode, WriteRequest, WriteSummary,
};
use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, Fidelity, SinkFixture, SourceFixture};
use futures::StreamExt;

type Row = BTreeMap<String, serde_json::Value>;

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

    fn source(&self) -> Arc<SqliteSource> {
        Arc::new(SqliteSource::from_path(&self.db))
    }

    fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the test database")
    }
}

#[async_trait]
impl SinkFixture for Fixture {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    async fn read_back(&self, stream: &str, _schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        if !self.db.exists() {
            return Ok(Vec::new());
        }
        let source = self.source();
        if source.discover().await?.get(stream).is_none() {
            return Ok(Vec::new());
        }
        Ok(testkit::read_all(source.as_ref(), ReadRequest::full(stream)).await)
    }
}

#[async_trait]
impl SourceFixture for Fixture {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        write(
            self.sink.as_ref(),
            stream,
            WriteMode::Append,
            std::slice::from_ref(batch),
        )
        .await?;
        Ok(self.source())
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        write(
            self.sink.as_ref(),
            stream,
            WriteMode::Append,
            std::slice::from_ref(batch),
        )
        .await?;
        Ok(())
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        Some(Arc::new(SqliteSource::from_path(
            self.dir.path().join("missing").join("nothing.db"),
        )))
    }
}

fn request(stream: &str, schema: SchemaRef, mode: WriteMode) -> WriteRequest {
    WriteRequest {
        stream: stream.into(),
        schema,
        mode,
        run_id: ferry_engine::runtime::new_run_id(),
    }
}

async fn write(
    sink: &dyn Sink,
    stream: &str,
    mode: WriteMode,
    batches: &[RecordBatch],
) -> Result<WriteSummary> {
    let mut w = sink
        .open(request(stream, batches[0].schema(), mode))
        .await?;
    for b in batches {
        w.write(b.clone()).await?;
    }
    w.flush().await?;
    w.close().await
}

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

// ----------------------------------------------------------------------------------------
// The shared kit

#[tokio::test]
async fn source_suite() {
    testkit::run_source_suite(&Fixture::new()).await;
}

#[tokio::test]
async fn sink_suite() {
    let f = Fixture::new();
    testkit::run_sink_suite(&f).await;
    // nothing of the kit's overwrites is left behind
    let staged: i64 = f
        .sql()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_ferry\\_stage\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staged, 0, "staging tables were left in the file");
}

// ----------------------------------------------------------------------------------------
// Source

#[tokio::test]
async fn incremental_ties_are_never_split_or_repeated() {
    let f = Fixture::new();
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
async fn incremental_by_timestamp_compares_instants() {
    let f = Fixture::new();
    let schema = with_keys(
        &Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Timestamp.field("at", true),
        ]),
        &["id".to_string()],
        None,
    );
    let mut b = ferry_core::values::BatchBuilder::new(schema, 4).unwrap();
    // whole seconds and fractions: as variable-width text, `...00Z` would sort after `...00.5Z`
    for (id, at) in [
        ("1", "2024-05-01T12:00:00Z"),
        ("2", "2024-05-01T12:00:00.5Z"),
        ("3", "2024-05-01T12:00:01Z"),
        ("4", "2024-05-01T12:00:01.000001Z"),
    ] {
        b.push_text_row([Some(id), Some(at)], "").unwrap();
    }
    let source = f.create("events", &b.finish().unwrap()).await.unwrap();
    let info = source
        .discover()
        .await
        .unwrap()
        .get("events")
        .cloned()
        .unwrap();
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
async fn custom_query_streams() {
    let f = Fixture::new();
    let orders: Vec<(i64, i64)> = (1..=10).map(|i| (i, i * 50)).collect();
    f.create("orders", &id_v_batch(&orders)).await.unwrap();
    let toml = format!(
        r#"
path = "{}"
tables = ["orders"]
queries = [
  {{ name = "big_orders", sql = "SELECT id, v AS total FROM orders WHERE v > 300;", primary_key = ["id"], cursor = "id" }},
  {{ name = "stats", sql = "SELECT count(*) AS n, max(v) AS top, 'x' || id AS label FROM orders", columns = {{ n = "int64", top = "decimal(12,2)" }} }},
]
"#,
        f.db.display()
    );
    let cfg: SqliteSourceConfig = ConfigNode::from_toml(&toml, f.dir.path())
        .unwrap()
        .parse()
        .unwrap();
    let source = SqliteSource::new(
        cfg,
        &BuildContext {
            base_dir: f.dir.path().into(),
        },
    )
    .unwrap();
    source.check().await.unwrap();
    let catalog = source.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["orders", "big_orders", "stats"]);
    let big = catalog.get("big_orders").unwrap();
    assert_eq!(big.primary_key, vec!["id"]);
    assert_eq!(big.default_cursor.as_deref(), Some("id"));
    // `total` is an alias of a column: it keeps the column's declared type
    assert_eq!(FerryType::of(big.schema.field(1)), Some(FerryType::Int64));
    let stats = catalog.get("stats").unwrap();
    let ty = |n: &str| FerryType::of(stats.schema.field_with_name(n).unwrap()).unwrap();
    assert_eq!(ty("n"), FerryType::Int64);
    assert_eq!(
        ty("top"),
        FerryType::Decimal {
            precision: 12,
            scale: 2
        }
    );
    assert_eq!(
        ty("label"),
        FerryType::String,
        "an expression without a declared type reads as string"
    );
    testkit::source_reads_match_discover(&source, 100).await;

    assert_eq!(
        ids(&testkit::read_all(&source, ReadRequest::full("big_orders")).await),
        vec![7, 8, 9, 10]
    );
    let s = rows(&testkit::read_all(&source, ReadRequest::full("stats")).await);
    assert_eq!(s[0]["n"], 10);
    assert_eq!(s[0]["top"], "500.00");
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

    // a query that writes is refused as a config error
    let bad = format!(
        "path = \"{}\"\nqueries = [{{ name = \"oops\", sql = \"DELETE FROM orders\" }}]\n",
        f.db.display()
    );
    let cfg: SqliteSourceConfig = ConfigNode::from_toml(&bad, f.dir.path())
        .unwrap()
        .parse()
        .unwrap();
    let source = SqliteSource::new(
        cfg,
        &BuildContext {
            base_dir: f.dir.path().into(),
        },
    )
    .unwrap();
    let e = source.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    assert!(e.message().contains("oops"), "{e}");
}

#[tokio::test]
async fn reads_tables_made_by_other_tools() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.db.parent().unwrap()).unwrap();
    f.sql()
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
    std::fs::create_dir_all(f.db.parent().unwrap()).unwrap();
    f.sql()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n BIGINT);
             INSERT INTO t VALUES (1, 10), (2, 20), (3, 'abc'), (4, 40);",
        )
        .unwrap();
    let msgs = messages(f.source().as_ref(), ReadRequest::full("t")).await;
    let mut seen = Vec::new();
    let mut rejected = Vec::new();
    for m in msgs {
        match m {
            Message::Batch(b) => seen.extend(ids(&[b])),
            Message::Rejected(r) => {
                assert!(
                    r.message.contains("column `n`") && r.message.contains("abc"),
                    "{}",
                    r.message
                );
                assert_eq!(r.position.column, Some(2));
                assert!(r.raw.contains("\"abc\""), "{}", r.raw);
                rejected.push(seen.clone());
            }
            _ => {}
        }
    }
    assert_eq!(
        rejected,
        vec![vec![1, 2]],
        "the rejected row comes after the rows before it"
    );
    assert_eq!(seen, vec![1, 2, 4]);
}

#[tokio::test]
async fn estimate_limit_and_missing_things() {
    let f = Fixture::new();
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
    let mut req = ReadRequest::full("ten");
    req.limit = Some(3);
    req.batch_size = 2;
    let some = messages(source.as_ref(), req).await;
    assert_eq!(estimate(&some), Some(3));
    let n: usize = some
        .iter()
        .map(|m| {
            if let Message::Batch(b) = m {
                b.num_rows()
            } else {
                0
            }
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
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("not a SQLite database"), "{e}");
}

// ----------------------------------------------------------------------------------------
// Sink

#[tokio::test]
async fn values_are_stored_exactly_and_readably() {
    let f = Fixture::new();
    write(
        f.sink.as_ref(),
        "all",
        WriteMode::Append,
        &[testkit::all_types_batch()],
    )
    .await
    .unwrap();
    let conn = f.sql();
    let row = |sql: &str| -> (String, String) {
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    assert_eq!(
        row("SELECT typeof(amount), amount FROM \"all\" WHERE id = 3"),
        ("text".into(), "-9999999999999999.9999".into())
    );
    assert_eq!(
        row("SELECT typeof(at), at FROM \"all\" WHERE id = 1"),
        ("text".into(), "2024-05-01T12:00:00.250000Z".into())
    );
    assert_eq!(
        row("SELECT typeof(day), day FROM \"all\" WHERE id = 1"),
        ("text".into(), "2024-02-29".into())
    );
    assert_eq!(
        row("SELECT typeof(doc), doc FROM \"all\" WHERE id = 5"),
        ("text".into(), "\"just a string\"".into())
    );
    assert_eq!(
        row("SELECT typeof(flag), CAST(flag AS TEXT) FROM \"all\" WHERE id = 1"),
        ("integer".into(), "1".into())
    );
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
    // describe gives back the schema that was written
    let described = f.sink.describe("all").await.unwrap().expect("table exists");
    let want = testkit::all_types_schema();
    let pairs = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&described), pairs(&want));
    assert_eq!(ferry_core::types::primary_key(&described), vec!["id"]);
    assert!(f.sink.describe("nothing").await.unwrap().is_none());
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
    write(f.sink.as_ref(), "nan", WriteMode::Append, &[nan])
        .await
        .unwrap();
    let back = f
        .read_back("nan", &testkit::all_types_schema())
        .await
        .unwrap();
    assert!(back[0]
        .column(1)
        .as_primitive::<ferry_core::arrow_array::types::Float64Type>()
        .value(0)
        .is_nan());
}

#[tokio::test]
async fn a_new_nullable_column_is_added() {
    let f = Fixture::new();
    write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(1, 2, "old")],
    )
    .await
    .unwrap();
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
    let r = rows(&f.read_back("people", &described).await.unwrap());
    let notes: Vec<_> = r.iter().map(|r| r["note"].clone()).collect();
    assert_eq!(
        notes,
        vec![
            serde_json::Value::Null,
            serde_json::Value::Null,
            "hello".into(),
            serde_json::Value::Null
        ]
    );
    // and a stream without the new column still appends
    write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(5, 1, "later")],
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&f.read_back("people", &described).await.unwrap()).len(),
        5
    );
}

#[tokio::test]
async fn an_incompatible_schema_is_refused_naming_table_and_column() {
    let f = Fixture::new();
    write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(1, 2, "old")],
    )
    .await
    .unwrap();
    // `version` arrives as text
    let schema = with_keys(
        &Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("version", true),
        ]),
        &["id".to_string()],
        None,
    );
    let e = f
        .sink
        .open(request("people", schema, WriteMode::Append))
        .await
        .err()
        .expect("type change refused");
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(
        e.message().contains("`version`") && e.message().contains("`people`"),
        "{e}"
    );
    assert_eq!(e.context_value("column"), Some("version"));
    assert_eq!(e.context_value("table"), Some("people"));
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
    // overwrite replaces the table, whatever its old shape
    let schema = with_keys(
        &Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("version", true),
        ]),
        &["id".to_string()],
        None,
    );
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["v9"])),
        ],
    )
    .unwrap();
    write(f.sink.as_ref(), "people", WriteMode::Overwrite, &[batch])
        .await
        .unwrap();
    assert_eq!(
        rows(
            &f.read_back("people", &testkit::all_types_schema())
                .await
                .unwrap()
        )[0]["version"],
        "v9"
    );
    // a duplicate key in append mode says how to update instead
    let e = write(
        f.sink.as_ref(),
        "people",
        WriteMode::Append,
        &[testkit::simple_batch(9, 1, "x").project(&[0, 1]).unwrap()],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("upsert"), "{e}");
}

#[tokio::test]
async fn upsert_needs_a_unique_key_on_an_existing_table() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.db.parent().unwrap()).unwrap();
    f.sql()
        .execute_batch("CREATE TABLE \"odd \"\"name\"\"\" (id BIGINT, name TEXT, version BIGINT)")
        .unwrap();
    let stream = "odd \"name\"";
    let batch = testkit::simple_batch(1, 3, "a");
    let e = write(
        f.sink.as_ref(),
        stream,
        WriteMode::Upsert,
        std::slice::from_ref(&batch),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("CREATE UNIQUE INDEX"), "{e}");
    f.sql()
        .execute_batch("CREATE UNIQUE INDEX odd_id ON \"odd \"\"name\"\"\" (id)")
        .unwrap();
    write(
        f.sink.as_ref(),
        stream,
        WriteMode::Upsert,
        std::slice::from_ref(&batch),
    )
    .await
    .unwrap();
    write(
        f.sink.as_ref(),
        stream,
        WriteMode::Upsert,
        &[testkit::simple_batch(2, 3, "b")],
    )
    .await
    .unwrap();
    let names: Vec<_> = rows(&f.read_back(stream, &batch.schema()).await.unwrap())
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec!["a-1", "b-2", "b-3", "b-4"]);
}

#[tokio::test]
async fn overwrite_stages_until_close_and_abort_leaves_the_old_table() {
    let f = Fixture::new();
    write(
        f.sink.as_ref(),
        "t",
        WriteMode::Overwrite,
        &[testkit::simple_batch(1, 3, "old")],
    )
    .await
    .unwrap();
    std::fs::create_dir_all(f.db.parent().unwrap()).unwrap();
    f.sql()
        .execute_batch("CREATE VIEW t_names AS SELECT name FROM t")
        .unwrap();
    let schema = testkit::simple_batch(1, 0, "").schema();

    let mut w = f
        .sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(testkit::simple_batch(10, 2, "new")).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
    // mid-way: readers still see the old rows, and discovery hides the staging table
    assert_eq!(
        ids(&f.read_back("t", &schema).await.unwrap()),
        vec![1, 2, 3]
    );
    assert_eq!(
        f.source().discover().await.unwrap().names(),
        vec!["t", "t_names"]
    );
    w.abort().await.unwrap();
    assert_eq!(
        ids(&f.read_back("t", &schema).await.unwrap()),
        vec![1, 2, 3]
    );

    let mut w = f
        .sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(testkit::simple_batch(10, 2, "new")).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 2);
    assert_eq!(summary.outputs[0].kind, "table");
    assert_eq!(
        summary.outputs[0].location,
        format!("{}#t", f.db.file_name().unwrap().to_string_lossy())
    );
    assert_eq!(ids(&f.read_back("t", &schema).await.unwrap()), vec![10, 11]);
    // the view on the table survives the swap
    let n: i64 = f
        .sql()
        .query_row("SELECT count(*) FROM t_names", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let staged: i64 = f
        .sql()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_ferry%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staged, 0);

    // a staging table left by a crashed run is cleaned up by the next overwrite
    f.sql()
        .execute_batch("CREATE TABLE \"_ferry_stage_t_20000101T000000Z-abcdef\" (x)")
        .unwrap();
    write(
        f.sink.as_ref(),
        "t",
        WriteMode::Overwrite,
        &[testkit::simple_batch(20, 1, "z")],
    )
    .await
    .unwrap();
    let staged: i64 = f
        .sql()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_ferry%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staged, 0);
}

#[tokio::test]
async fn streams_share_the_file_and_an_aborted_stream_keeps_nothing_unflushed() {
    let f = Fixture::new();
    let schema = testkit::simple_batch(1, 0, "").schema();
    let mut a = f
        .sink
        .open(request("a", schema.clone(), WriteMode::Append))
        .await
        .unwrap();
    let mut b = f
        .sink
        .open(request("b", schema.clone(), WriteMode::Upsert))
        .await
        .unwrap();
    a.write(testkit::simple_batch(1, 100, "a")).await.unwrap();
    b.write(testkit::simple_batch(1, 50, "b")).await.unwrap();
    assert_eq!(a.flush().await.unwrap(), Durability::Durable);
    b.write(testkit::simple_batch(51, 50, "b")).await.unwrap();
    a.write(testkit::simple_batch(101, 10, "a")).await.unwrap();
    // a fails: its unflushed rows go, b's stay
    a.abort().await.unwrap();
    b.flush().await.unwrap();
    b.close().await.unwrap();
    assert_eq!(ids(&f.read_back("a", &schema).await.unwrap()).len(), 100);
    assert_eq!(ids(&f.read_back("b", &schema).await.unwrap()).len(), 100);

    // a batch that fails midway leaves none of its rows
    let mut c = f
        .sink
        .open(request("a", schema.clone(), WriteMode::Append))
        .await
        .unwrap();
    let e = c
        .write(testkit::simple_batch(95, 10, "dup"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    c.write(testkit::simple_batch(200, 1, "ok")).await.unwrap();
    c.flush().await.unwrap();
    c.close().await.unwrap();
    assert_eq!(ids(&f.read_back("a", &schema).await.unwrap()).len(), 101);
}

#[tokio::test]
async fn sqlite_to_sqlite_through_the_runtime() {
    let from = Fixture::new();
    let to = Fixture::new();
    from.create("orders", &testkit::simple_batch(1, 1000, "o"))
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(from.source(), to.sink.clone(), state.path());
    let mut sc = StreamConfig::named("orders");
    sc.mode = Some(WriteMode::Upsert);
    sc.cursor = Some("id".into());
    let report = rt
        .sync(
            std::slice::from_ref(&sc),
            &RunOptions::default(),
            None,
            ("sqlite", "sqlite"),
        )
        .await
        .unwrap();
    assert_eq!(
        report.status,
        Status::Succeeded,
        "{:?}",
        report.streams[0].error
    );
    assert_eq!(
        report.streams[0].rows_expected, None,
        "incremental reads give no estimate"
    );
    assert_eq!(rt.state.get("orders").unwrap()["cursor"], "1000");
    from.append("orders", &testkit::simple_batch(1001, 5, "o"))
        .await
        .unwrap();
    let report = rt
        .sync(
            std::slice::from_ref(&sc),
            &RunOptions::default(),
            None,
            ("sqlite", "sqlite"),
        )
        .await
        .unwrap();
    assert_eq!(report.rows_committed(), 5);
    assert_eq!(
        ids(&to
            .read_back("orders", &testkit::all_types_schema())
            .await
            .unwrap())
        .len(),
        1005
    );
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
        assert!(props["path"].is_object(), "{spec}");
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
    let dir = tempfile::tempdir().unwrap();
    let node = ConfigNode::from_toml("path = \"sub/x.db\"\n", dir.path()).unwrap();
    let cfg: SqliteSinkConfig = node.parse().unwrap();
    let sink = SqliteSink::new(
        cfg,
        &BuildContext {
            base_dir: dir.path().into(),
        },
    )
    .unwrap();
    assert_eq!(sink.path(), dir.path().join("sub/x.db"));
    sink.check().await.unwrap();
    assert!(!sink.path().exists(), "check must not create the database");
    let e = ConfigNode::from_toml("pth = \"x.db\"\n", dir.path())
        .unwrap()
        .parse::<SqliteSinkConfig>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    let e = ConfigNode::from_toml(
        "path = \"x.db\"\nqueries = [{ name = \"q\", sql = \" ; \" }]\n",
        dir.path(),
    )
    .unwrap()
    .parse::<SqliteSourceConfig>()
    .and_then(|c| {
        SqliteSource::new(
            c,
            &BuildContext {
                base_dir: dir.path().into(),
            },
        )
    })
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
    let batches: Vec<RecordBatch> = (0..n.div_ceil(batch))
        .map(|i| {
            let first = (i * batch) as i64 + 1;
            let len = batch.min(n - i * batch);
            testkit::simple_batch(first, len, "bench-row")
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
            "{mode:>9}: {n} rows in {secs:.2}s = {:.0} rows/s",
            n as f64 / secs
        );
    }
    // eight columns of mixed types, like the `bench` preset
    let wide = wide_batch(batch);
    let t = std::time::Instant::now();
    let mut w = f
        .sink
        .open(request("wide", wide.schema(), WriteMode::Append))
        .await
        .unwrap();
    for _ in 0..n / batch {
        w.write(wide.clone()).await.unwrap();
    }
    w.flush().await.unwrap();
    w.close().await.unwrap();
    let rows = (n / batch * batch) as f64;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "     wide: {rows} rows in {secs:.2}s = {:.0} rows/s",
        rows / secs
    );
    let t = std::time::Instant::now();
    let got: usize = testkit::read_all(f.source().as_ref(), ReadRequest::full("wide"))
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "read wide: {got} rows in {secs:.2}s = {:.0} rows/s",
        got as f64 / secs
    );
    let t = std::time::Instant::now();
    let got: usize = testkit::read_all(f.source().as_ref(), ReadRequest::full("bench_append"))
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, n);
    println!(
        "     read: {n} rows in {secs:.2}s = {:.0} rows/s",
        n as f64 / secs
    );
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
