//! Parallel full reads (`parallel = [{ stream, partitions, column }]`) against the real
//! PostgreSQL: the rows equal a serial read's (NULL keys, empty tables, skewed keys,
//! queries), the ranges really run at once, and what cannot be split is refused or
//! read serially.

mod common;

use common::Fixture;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{ErrorKind, Message, ReadRequest, Source};
use ferry_testkit::{self as testkit, batches, messages, sql::SqlFixture, Fidelity};
use futures::StreamExt;

/// The rows as sorted JSON lines: equal sets of rows give equal vectors, in any order.
fn content(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows: Vec<String> = testkit::rows_by_id(batches, Fidelity::EXACT)
        .into_iter()
        .map(|r| serde_json::to_string(&r).unwrap())
        .collect();
    rows.sort();
    rows
}

fn small(stream: &str) -> ReadRequest {
    ReadRequest {
        batch_size: 500,
        ..ReadRequest::full(stream)
    }
}

/// Reads `stream` serially and with `parallel`, checks both hold the same rows, and
/// returns the parallel read's messages.
async fn same_as_serial(
    fx: &Fixture,
    stream: &str,
    parallel: &str,
    expect_rows: usize,
) -> Vec<Message> {
    let serial = fx.source();
    let serial_rows = content(&batches(&messages(serial.as_ref(), small(stream)).await));
    assert_eq!(serial_rows.len(), expect_rows, "serial read of {stream}");
    let par = fx.source_with(&format!("parallel = [{parallel}]\n"));
    let msgs = messages(&par, small(stream)).await;
    let par_rows = content(&batches(&msgs));
    assert_eq!(par_rows.len(), expect_rows, "parallel read of {stream}");
    assert!(
        par_rows == serial_rows,
        "parallel and serial reads of {stream} differ"
    );
    // the last message is the end's checkpoint, counting every row
    match msgs.last() {
        Some(Message::Checkpoint(st)) => {
            assert_eq!(st["rows"].as_u64(), Some(expect_rows as u64), "{st}")
        }
        other => panic!("the read ends with {other:?}, not a checkpoint"),
    }
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_read_equals_a_serial_one_and_runs_its_ranges_at_once() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, tags int[]);
         INSERT INTO big SELECT g, 'name ' || g || ' ✓', g * 1.25, timestamptz '2024-01-01 00:00Z' + g * interval '1 minute',
                                ARRAY[g, g + 1]
           FROM generate_series(1, 20000) g;
         ANALYZE big",
    )
    .await;
    let msgs = same_as_serial(&fx, "big", "{ stream = \"big\", partitions = 4 }", 20_000).await;
    assert!(
        matches!(msgs.first(), Some(Message::Total(20_000))),
        "the exact total (counted in the shared snapshot) comes first: {:?}",
        msgs.first()
    );

    // the four ranges are four COPYs on four sessions, open at the same time
    let app = format!("ferry_par_{}", std::process::id());
    let source = fx.source_with(&format!(
        "application_name = \"{app}\"\nparallel = [{{ stream = \"big\", partitions = 4 }}]\n"
    ));
    let mut read = source.read(small("big")).await.unwrap();
    let mut first_batch = false;
    while let Some(m) = read.next().await {
        if matches!(m.unwrap(), Message::Batch(_)) {
            first_batch = true;
            break;
        }
    }
    assert!(first_batch);
    let copies = fx
        .value(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' AND query LIKE 'COPY (%'"
        ))
        .await;
    assert_eq!(copies, "4", "sessions running a range's COPY");
    let ranges = fx
        .rows_text(&format!(
            "SELECT query FROM pg_stat_activity WHERE application_name = '{app}' AND query LIKE 'COPY (%' ORDER BY query"
        ))
        .await;
    assert!(
        ranges
            .iter()
            .any(|r| r[0].as_deref().unwrap().contains("IS NULL")),
        "one range takes the NULL keys: {ranges:?}"
    );
    drop(read);
    // stopping early ends every range's session
    let mut left = String::new();
    for _ in 0..50 {
        left = fx
            .value(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' AND state = 'active'"
            ))
            .await;
        if left == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        left, "0",
        "range sessions still running after the reader stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_keys_empty_tables_and_skewed_keys() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE nullable (k integer, v text);
         INSERT INTO nullable SELECT CASE WHEN g % 7 = 0 THEN NULL ELSE g END, 'v' || g FROM generate_series(1, 3000) g;
         INSERT INTO nullable VALUES (NULL, NULL), (-5, ''), (2147483647, 'max');
         CREATE TABLE only_nulls (k smallint, v text);
         INSERT INTO only_nulls VALUES (NULL, 'a'), (NULL, 'b');
         CREATE TABLE empty (id bigint PRIMARY KEY, v text);
         CREATE TABLE skewed (id bigint PRIMARY KEY, v int);
         INSERT INTO skewed SELECT g, g % 10 FROM generate_series(1, 5000) g;
         INSERT INTO skewed VALUES (-9000000000000000000, 1), (1000000000000, 2), (9000000000000000000, 3);
         ANALYZE nullable; ANALYZE skewed",
    )
    .await;
    same_as_serial(
        &fx,
        "nullable",
        "{ stream = \"nullable\", partitions = 3, column = \"k\" }",
        3003,
    )
    .await;
    same_as_serial(
        &fx,
        "only_nulls",
        "{ stream = \"only_nulls\", partitions = 3, column = \"k\" }",
        2,
    )
    .await;
    let msgs = same_as_serial(&fx, "empty", "{ stream = \"empty\", partitions = 4 }", 0).await;
    assert!(batches(&msgs).iter().all(|b| b.num_rows() == 0));
    same_as_serial(
        &fx,
        "skewed",
        "{ stream = \"skewed\", partitions = 4 }",
        5003,
    )
    .await;
    // without statistics the split is even over min..max: still every row once
    fx.sql(
        "CREATE TABLE skewed2 AS SELECT * FROM skewed; ALTER TABLE skewed2 ADD PRIMARY KEY (id)",
    )
    .await;
    same_as_serial(
        &fx,
        "skewed2",
        "{ stream = \"skewed2\", partitions = 4 }",
        5003,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_split_too_and_what_cannot_be_split_is_clear() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (code text PRIMARY KEY, n integer);
         INSERT INTO t SELECT 'c' || g, g FROM generate_series(1, 1000) g",
    )
    .await;
    // a query split by one of its integer columns
    let source = fx.source_with(
        "queries = [{ name = \"q\", sql = \"SELECT n * 2 AS m, code FROM t WHERE n > 10\" }]\n\
         parallel = [{ stream = \"q\", partitions = 3, column = \"m\" }]\n",
    );
    let rows = content(&batches(&messages(&source, small("q")).await));
    let mut want: Vec<String> = (11..=1000)
        .map(|n| format!("{{\"code\":\"c{n}\",\"m\":{}}}", n * 2))
        .collect();
    want.sort();
    assert_eq!(rows, want);

    // a text key named as the column: refused, naming column, stream and type
    let source =
        fx.source_with("parallel = [{ stream = \"t\", partitions = 2, column = \"code\" }]\n");
    let e = match source.read(small("t")).await {
        Err(e) => e,
        Ok(_) => panic!("a text column was accepted to split by"),
    };
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("code") && msg.contains("text") && msg.contains("integer"),
        "{msg}"
    );
    let source =
        fx.source_with("parallel = [{ stream = \"t\", partitions = 2, column = \"nope\" }]\n");
    let e = source.read(small("t")).await.err().expect("unknown column");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    assert!(e.to_string().contains("nope"), "{e}");

    // no column and a text primary key: read serially, every row
    same_as_serial(&fx, "t", "{ stream = \"t\", partitions = 4 }", 1000).await;

    // incremental reads of a parallel stream stay one ordered COPY with cursor checkpoints
    let source = fx.source_with("parallel = [{ stream = \"t\", partitions = 4 }]\n");
    let mut req = ReadRequest::incremental("t", None);
    req.cursor = Some("n".into());
    req.batch_size = 100;
    let msgs = messages(&source, req).await;
    let ns: Vec<i64> = batches(&msgs)
        .iter()
        .flat_map(|b| {
            let i = b.schema().index_of("n").unwrap();
            let col = b
                .column(i)
                .as_any()
                .downcast_ref::<ferry_core::arrow_array::Int64Array>()
                .unwrap();
            col.values().to_vec()
        })
        .collect();
    assert_eq!(ns, (1..=1000).collect::<Vec<i64>>(), "in cursor order");
    match msgs.last() {
        Some(Message::Checkpoint(st)) => assert_eq!(st["cursor"], "1000", "{st}"),
        other => panic!("{other:?}"),
    }
}
