//! The SQL sink checks: what is left behind, described schemas, schema evolution, staged
//! overwrite, upsert keys, concurrent streams, a run through the runtime.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::Schema;

use super::SqlFixture;
use crate::{
    all_types_batch, all_types_schema, assert_succeeded, ids, keyed, open_refused, request, rows,
    run_sink_suite, runtime, simple_batch, sync, write_one, write_stream, SourceFixture,
};
use ferry_core::catalog::WriteMode;
use ferry_core::sink::{Durability, Sink};
use ferry_core::source::Source;
use ferry_core::types::{primary_key, with_keys, FerryType};
use ferry_core::{Error, ErrorKind};
use ferry_engine::config::StreamConfig;

/// The kit's sink suite, and nothing of its overwrites is left behind.
pub async fn sink_suite<F: SqlFixture>(f: &F) {
    run_sink_suite(f).await;
    assert_eq!(
        f.ferry_tables().await,
        0,
        "staging tables were left in the database"
    );
}

/// Table `people` with two rows of [`simple_batch`] (`id`, `name`, `version`); returns the
/// sink.
async fn people<F: SqlFixture>(f: &F) -> Arc<dyn Sink> {
    f.write("people", WriteMode::Append, &[simple_batch(1, 2, "old")])
        .await;
    SqlFixture::sink(f)
}

/// `describe` gives back the schema that was written (names, types, nullability, key),
/// and nothing for a table that does not exist.
pub async fn describe_gives_the_written_schema<F: SqlFixture>(f: &F) {
    let sink = SqlFixture::sink(f);
    write_one(sink.as_ref(), "all", WriteMode::Append, all_types_batch()).await;
    let described = sink.describe("all").await.unwrap().expect("table exists");
    let pairs = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| {
                (
                    f.name().clone(),
                    f.data_type().clone(),
                    FerryType::of(f),
                    f.is_nullable(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&described), pairs(&all_types_schema()));
    assert_eq!(primary_key(&described), vec!["id"]);
    assert!(sink.describe("nothing").await.unwrap().is_none());
}

/// A stream with a new nullable column adds it to the table (older rows NULL), and a
/// stream without it still appends.
pub async fn a_new_nullable_column_is_added<F: SqlFixture>(f: &F) {
    let sink = people(f).await;
    let append = |batch: RecordBatch| {
        let sink = sink.clone();
        async move { write_stream(sink.as_ref(), "people", WriteMode::Append, &[batch]).await }
    };
    let old = simple_batch(3, 2, "new");
    let mut fields: Vec<_> = old
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(FerryType::String.field("note", true));
    let schema = keyed("id", fields);
    let mut cols = old.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![Some("hello"), None])));
    append(RecordBatch::try_new(schema, cols).unwrap())
        .await
        .unwrap();
    let described = sink.describe("people").await.unwrap().unwrap();
    assert_eq!(described.fields().len(), 4);
    let notes: Vec<_> = rows(&f.table_rows("people").await.unwrap())
        .iter()
        .map(|r| r["note"].clone())
        .collect();
    let null = serde_json::Value::Null;
    assert_eq!(
        notes,
        vec![null.clone(), null.clone(), "hello".into(), null]
    );
    // and a stream without the new column still appends
    append(simple_batch(5, 1, "later")).await.unwrap();
    assert_eq!(rows(&f.table_rows("people").await.unwrap()).len(), 5);
}

/// A column arriving with another type (`version` as `changed`) is a schema mismatch
/// naming table and column. Returns the error, for the dialect's own checks.
pub async fn a_changed_column_type_is_refused<F: SqlFixture>(f: &F, changed: FerryType) -> Error {
    let sink = people(f).await;
    let schema = keyed(
        "id",
        vec![
            FerryType::Int64.field("id", false),
            changed.field("version", true),
        ],
    );
    let e = open_refused(sink.as_ref(), "people", schema, WriteMode::Append).await;
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(
        e.message().contains("`version`") && e.message().contains("`people`"),
        "{e}"
    );
    assert_eq!(e.context_value("column"), Some("version"));
    assert_eq!(e.context_value("table"), Some("people"));
    e
}

/// A new column that may not be NULL cannot be added to existing rows.
pub async fn a_new_not_null_column_is_refused<F: SqlFixture>(f: &F) {
    let sink = people(f).await;
    let schema = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("rank", false),
    ]);
    let e = open_refused(sink.as_ref(), "people", Arc::new(schema), WriteMode::Append).await;
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("`rank`"), "{e}");
}

/// Overwrite replaces the table, whatever its old shape; then a duplicate key in append
/// mode is refused saying how to update instead.
pub async fn overwrite_replaces_any_shape_and_a_duplicate_key_says_upsert<F: SqlFixture>(f: &F) {
    let sink = people(f).await;
    let schema = keyed(
        "id",
        vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("version", true),
        ],
    );
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["v9"])),
        ],
    )
    .unwrap();
    write_one(sink.as_ref(), "people", WriteMode::Overwrite, batch).await;
    let r = rows(&f.table_rows("people").await.unwrap());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["version"], "v9");
    let e = write_stream(
        sink.as_ref(),
        "people",
        WriteMode::Append,
        &[simple_batch(9, 1, "x").project(&[0, 1]).unwrap()],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("upsert"), "{e}");
}

/// A table another tool made without a key, in the connector's dialect.
pub struct KeylessTable<'a> {
    /// The stream (and table) name.
    pub name: &'a str,
    /// Creates it, with columns `id`, `name`, `version` and no key.
    pub create: &'a str,
    /// What the refusal must tell to run.
    pub hint: &'a str,
    /// Adds a unique key on `id`.
    pub add_key: &'a str,
}

/// Upsert into an existing table without a unique key on the stream's key is refused with
/// what to run; with the key, upserts update by it.
pub async fn upsert_needs_a_unique_key<F: SqlFixture>(f: &F, table: &KeylessTable<'_>) {
    let sink = SqlFixture::sink(f);
    f.sql(table.create).await;
    let batch = simple_batch(1, 3, "a");
    let e = write_stream(
        sink.as_ref(),
        table.name,
        WriteMode::Upsert,
        std::slice::from_ref(&batch),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains(table.hint), "{e}");
    f.sql(table.add_key).await;
    for b in [batch.clone(), batch, simple_batch(2, 3, "b")] {
        write_one(sink.as_ref(), table.name, WriteMode::Upsert, b).await;
    }
    let names: Vec<_> = rows(&f.table_rows(table.name).await.unwrap())
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec!["a-1", "b-2", "b-3", "b-4"]);
}

/// An overwrite stages its rows until `close`: meanwhile readers see the old rows and
/// discovery hides the staging table; `abort` leaves the old table and no staging table;
/// `close` swaps in the new rows and reports the table; a view on the table follows the
/// swap; what a crashed overwrite left is dropped by the next overwrite.
pub async fn overwrite_stages_until_close_and_abort_leaves_the_old_table<F: SqlFixture>(f: &F) {
    let sink = SqlFixture::sink(f);
    f.write("t", WriteMode::Overwrite, &[simple_batch(1, 3, "old")])
        .await;
    let schema = simple_batch(1, 0, "").schema();
    let ids_in_t = || async { ids(&f.table_rows("t").await.unwrap()) };

    let mut w = sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(simple_batch(10, 2, "new")).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
    // mid-way: readers still see the old rows, and discovery hides the staging table
    assert_eq!(ids_in_t().await, vec![1, 2, 3]);
    assert_eq!(f.source().discover().await.unwrap().names(), vec!["t"]);
    w.abort().await.unwrap();
    assert_eq!(ids_in_t().await, vec![1, 2, 3]);
    assert_eq!(f.ferry_tables().await, 0, "abort left the staging table");

    let mut w = sink
        .open(request("t", schema.clone(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(simple_batch(10, 2, "new")).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 2);
    assert_eq!(summary.outputs[0].kind, "table");
    assert_eq!(summary.outputs[0].location, f.location("t"));
    assert_eq!(ids_in_t().await, vec![10, 11]);
    assert_eq!(f.ferry_tables().await, 0);

    // what a crashed overwrite left is cleaned up by the next one
    f.crash_an_overwrite("t").await;
    assert_eq!(f.ferry_tables().await, 1);
    // and a view on the table follows the swap
    f.sql("CREATE VIEW t_names AS SELECT name FROM t").await;
    f.write("t", WriteMode::Overwrite, &[simple_batch(20, 1, "z")])
        .await;
    assert_eq!(ids_in_t().await, vec![20]);
    assert_eq!(
        f.rows_text("SELECT name FROM t_names").await,
        vec![vec![Some("z-20".to_string())]],
        "the view follows the swap"
    );
    assert_eq!(f.ferry_tables().await, 0);
}

/// Two streams write at once; the one that fails (aborts) keeps none of its unflushed
/// rows while the other's stay; a batch that fails midway (a duplicate key) leaves none of
/// its rows, and the writer goes on.
pub async fn streams_write_in_parallel_and_an_aborted_stream_keeps_nothing_unflushed<
    F: SqlFixture,
>(
    f: &F,
) {
    let sink = SqlFixture::sink(f);
    let schema = simple_batch(1, 0, "").schema();
    let mut a = sink
        .open(request("a", schema.clone(), WriteMode::Append))
        .await
        .unwrap();
    let mut b = sink
        .open(request("b", schema.clone(), WriteMode::Upsert))
        .await
        .unwrap();
    a.write(simple_batch(1, 100, "a")).await.unwrap();
    b.write(simple_batch(1, 50, "b")).await.unwrap();
    assert_eq!(a.flush().await.unwrap(), Durability::Durable);
    b.write(simple_batch(51, 50, "b")).await.unwrap();
    a.write(simple_batch(101, 10, "a")).await.unwrap();
    // a fails: its unflushed rows go, b's stay
    a.abort().await.unwrap();
    b.flush().await.unwrap();
    b.close().await.unwrap();
    assert_eq!(f.count("SELECT COUNT(*) FROM a").await, 100);
    assert_eq!(f.count("SELECT COUNT(*) FROM b").await, 100);
    // a batch that fails midway leaves none of its rows
    let mut c = sink
        .open(request("a", schema.clone(), WriteMode::Append))
        .await
        .unwrap();
    c.write(simple_batch(200, 5, "ok")).await.unwrap();
    let e = c.write(simple_batch(95, 10, "dup")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    c.write(simple_batch(300, 1, "ok")).await.unwrap();
    c.flush().await.unwrap();
    c.close().await.unwrap();
    assert_eq!(f.count("SELECT COUNT(*) FROM a").await, 106);
}

/// From one database to another through the runtime: an incremental upsert run, then
/// only the new rows, then a full overwrite that reports the expected rows and the table.
pub async fn to_another_database_through_the_runtime<F: SqlFixture>(from: &F) {
    let to = from.another().await;
    from.create("orders", &simple_batch(1, 1000, "o"))
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = runtime(from.source(), SqlFixture::sink(&to), state.path());
    let run = |sc: StreamConfig| {
        let rt = &rt;
        async move {
            let report = sync(rt, std::slice::from_ref(&sc), ("kit", "kit")).await;
            assert_succeeded(&report);
            report
        }
    };
    let mut sc = StreamConfig::named("orders");
    sc.mode = Some(WriteMode::Upsert);
    sc.cursor = Some("id".into());
    let report = run(sc.clone()).await;
    assert_eq!(
        report.streams[0].rows_expected, None,
        "incremental reads give no estimate"
    );
    assert_eq!(rt.state.get("orders").unwrap()["cursor"], "1000");
    from.append("orders", &simple_batch(1001, 5, "o"))
        .await
        .unwrap();
    assert_eq!(run(sc).await.rows_committed(), 5);
    assert_eq!(to.count("SELECT COUNT(*) FROM orders").await, 1005);
    // a full overwrite: the report names the table, no credentials
    let mut sc = StreamConfig::named("orders");
    sc.mode = Some(WriteMode::Overwrite);
    let report = run(sc).await;
    assert_eq!(report.streams[0].rows_expected, Some(1005));
    assert_eq!(report.streams[0].outputs[0].location, to.location("orders"));
    assert_eq!(to.count("SELECT COUNT(*) FROM orders").await, 1005);
}

/// One version of a history table: id, name, valid from, valid to, current.
type Version = (i64, String, String, Option<String>, bool);

/// `mode = "history"`, run by run: a first load; a run with a change, an unchanged row
/// and a new key; a run in the same second with another change and a key gone
/// (`deletes`); an unchanged rerun that writes nothing; an aborted run that leaves no
/// trace. Every version is checked, and nothing of Ferry's is left in the database.
pub async fn history_keeps_every_version<F: SqlFixture>(f: &F) {
    let sink = SqlFixture::sink(f);
    let batch = |rows: &[(i64, &str)]| {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("name", true),
        ]);
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
        RecordBatch::try_new(
            with_keys(&schema, &["id".to_string()], None),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    };
    // (run id, rows, deletes): what each run wrote, closed and found gone
    let run = |run_id: &'static str, rows: Vec<(i64, &'static str)>, deletes: bool| {
        let (sink, b) = (sink.clone(), batch(&rows));
        async move {
            let mut req = request("people", b.schema(), WriteMode::History);
            req.run_id = run_id.into();
            req.deletes = deletes.then_some(ferry_core::Deletes::Hard);
            let mut w = sink.open(req).await.unwrap();
            w.write(b).await.unwrap();
            assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
            let gone = match deletes {
                true => Some(w.delete_missing().await.unwrap()),
                false => None,
            };
            let summary = w.close().await.unwrap();
            let o = &summary.outputs[0];
            (summary.rows, o.rows, o.closed, gone)
        }
    };
    let r1 = run(
        "20240501T120000Z-aaaaaa",
        vec![(1, "a"), (2, "b"), (3, "c")],
        false,
    );
    assert_eq!(r1.await, (3, 3, Some(0), None));
    let r2 = run(
        "20240502T120000Z-bbbbbb",
        vec![(1, "A"), (2, "b"), (3, "c"), (4, "d")],
        false,
    );
    assert_eq!(r2.await, (4, 2, Some(1), None), "1 changed, 4 new");
    // the same second as the run before: its versions start a second later
    let third = vec![(1, "A"), (2, "B"), (4, "d")];
    let r3 = run("20240502T120000Z-cccccc", third.clone(), true);
    assert_eq!(r3.await, (3, 1, Some(1), Some(1)), "2 changed, 3 gone");
    let r4 = run("20240503T120000Z-dddddd", third.clone(), true);
    assert_eq!(r4.await, (3, 0, Some(0), Some(0)), "a rerun writes nothing");
    let (t1, t2, t3) = (
        "2024-05-01T12:00:00Z",
        "2024-05-02T12:00:00Z",
        "2024-05-02T12:00:01Z",
    );
    let v = |id, name: &str, from: &str, to: Option<&str>, current| -> Version {
        (id, name.into(), from.into(), to.map(Into::into), current)
    };
    let expected = vec![
        v(1, "a", t1, Some(t2), false),
        v(1, "A", t2, None, true),
        v(2, "b", t1, Some(t3), false),
        v(2, "B", t3, None, true),
        v(3, "c", t1, Some(t3), false),
        v(4, "d", t2, None, true),
    ];
    assert_eq!(versions(f, "people").await, expected);

    // an aborted run changes nothing
    let mut req = request("people", batch(&third).schema(), WriteMode::History);
    req.run_id = "20240504T120000Z-eeeeee".into();
    let mut w = sink.open(req).await.unwrap();
    w.write(batch(&[(1, "changed"), (5, "new")])).await.unwrap();
    w.flush().await.unwrap();
    w.abort().await.unwrap();
    assert_eq!(versions(f, "people").await, expected);
    assert_eq!(
        f.ferry_tables().await,
        0,
        "a staging or keys table was left"
    );

    // a table that is not a history table is refused, named
    write_one(
        sink.as_ref(),
        "plain",
        WriteMode::Append,
        batch(&[(1, "a")]),
    )
    .await;
    let e = write_stream(
        sink.as_ref(),
        "plain",
        WriteMode::History,
        &[batch(&[(1, "a")])],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
    assert!(e.message().contains("not a history table"), "{e}");
}

/// The versions in history table `table`, by id and start.
async fn versions<F: SqlFixture>(f: &F, table: &str) -> Vec<Version> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut found: Vec<Version> = rows(&f.table_rows(table).await.unwrap())
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                text(&r["name"]).unwrap(),
                text(&r["_ferry_valid_from"]).unwrap(),
                text(&r["_ferry_valid_to"]),
                r["_ferry_is_current"].as_bool().unwrap(),
            )
        })
        .collect();
    found.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
    found
}
