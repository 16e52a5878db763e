//! SQLite → S3 (Parquet + zstd) and S3 → SQLite through Ferry's runtime, beside a plain
//! aws-sdk-s3 upload of the same bytes, against the in-process s3s-fs server the tests use.
//! Not a test: run it and read the figures.
//!
//! ```sh
//! cargo run --release -p ferry-connector-s3 --example s3_bench -- [--rows 1000000]
//! ```
//!
//! Each step's peak RSS is its own: the process's high-water mark is reset before it
//! (`/proc/self/clear_refs`). The server runs in this process, so its memory is included.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use ferry_core::arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::config::ConnectorConfig;
use ferry_core::{FerryType, WriteMode, WriteRequest};
use ferry_engine::StreamConfig;

const BUCKET: &str = "bench";
const BATCH: usize = 8192;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::String.field("name", true),
        FerryType::String.field("email", true),
        FerryType::Float64.field("amount", true),
        FerryType::Int64.field("quantity", true),
        FerryType::Timestamp.field("created_at", true),
        FerryType::Bool.field("active", true),
        FerryType::String.field("country", true),
    ]))
}

fn batch(first: u64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n as u64).map(|i| i as i64).collect();
    let countries = ["NL", "DE", "FR", "US", "JP", "BR"];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("Customer {i}")),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("customer{i}@example.com")),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.iter().map(|i| (i % 100_000) as f64 / 100.0),
        )),
        Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 17))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ids.iter().map(|i| 1_700_000_000_000_000 + i * 1_000_003),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from_iter(
            ids.iter().map(|i| Some(i % 3 != 0)),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| countries[*i as usize % 6]),
        )),
    ];
    RecordBatch::try_new(schema(), cols).expect("batch")
}

fn connector(kind: &str, toml: &str) -> ConnectorConfig {
    ferry_testkit::connector_config(kind, toml, ".").expect("config")
}

fn registry() -> ferry_core::Registry {
    let mut r = ferry_core::Registry::new();
    ferry_connector_s3::register(&mut r);
    ferry_connector_sqlite::register(&mut r);
    r
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Syncs the `bench` stream from `source` into `sink` (named in messages by `names`),
/// checks all `rows` were committed, and returns the seconds it took and the peak RSS.
async fn timed_sync(
    source: Arc<dyn ferry_core::Source>,
    sink: Arc<dyn ferry_core::Sink>,
    names: (&str, &str),
    rows: u64,
) -> (f64, u64) {
    let state = tempfile::tempdir().expect("state");
    let rt = ferry_testkit::runtime(source, sink, state.path());
    reset_peak();
    let started = Instant::now();
    let report = ferry_testkit::sync(&rt, &[StreamConfig::named("bench")], names).await;
    let secs = started.elapsed().as_secs_f64();
    let peak = common::peak_rss();
    assert_eq!(report.rows_committed(), rows, "{}", report.summary());
    (secs, peak)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut rows: u64 = 1_000_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rows") {
        rows = args[i + 1].parse().expect("--rows N");
    }
    let server = common::Server::start(&[BUCKET]).await;
    let work = tempfile::tempdir().expect("temp dir");
    let db = work.path().join("source.db");
    let reg = registry();

    // the SQLite table to export
    let started = Instant::now();
    let sqlite = reg
        .build_sink(&connector(
            "sqlite",
            &format!("path = \"{}\"", db.display()),
        ))
        .expect("sqlite sink");
    let mut w = sqlite
        .open(WriteRequest {
            stream: "bench".into(),
            schema: schema(),
            mode: WriteMode::Overwrite,
            run_id: "setup".into(),
            deletes: None,
        })
        .await
        .expect("open");
    let mut done = 0;
    while done < rows {
        let n = BATCH.min((rows - done) as usize);
        w.write(batch(done, n)).await.expect("write");
        done += n as u64;
    }
    w.close().await.expect("close");
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "setup: {rows} rows in SQLite ({:.0} MB) in {:.1}s",
        mb(db_bytes),
        started.elapsed().as_secs_f64()
    );

    // SQLite → S3, Parquet + zstd
    let s3 = format!(
        "{}prefix = \"export/\"\nformat = \"parquet\"\ncompression = \"zstd\"\n",
        server.toml(BUCKET)
    );
    let source = reg
        .build_source(&connector(
            "sqlite",
            &format!("path = \"{}\"\ntables = [\"bench\"]", db.display()),
        ))
        .expect("sqlite source");
    let sink = reg.build_sink(&connector("s3", &s3)).expect("s3 sink");
    let (secs, peak) = timed_sync(source, sink, ("sqlite", "s3"), rows).await;
    let keys = server.keys(BUCKET, "export/").await;
    let mut objects = Vec::new();
    for k in &keys {
        objects.push(server.get(BUCKET, k).await);
    }
    let uploaded: u64 = objects.iter().map(|o| o.len() as u64).sum();
    println!(
        "SQLite → S3 parquet+zstd: {rows} rows in {secs:.2}s = {:.0} rows/s, {:.1} MB of Parquet ({} objects) = {:.1} MB/s, peak RSS {} MB",
        rows as f64 / secs,
        mb(uploaded),
        keys.len(),
        mb(uploaded) / secs,
        peak >> 20
    );

    // baseline: the same bytes, plain PutObject
    reset_peak();
    let started = Instant::now();
    for (i, o) in objects.iter().enumerate() {
        server
            .client
            .put_object()
            .bucket(BUCKET)
            .key(format!("baseline/{i}.parquet"))
            .body(ByteStream::from(o.clone()))
            .send()
            .await
            .expect("put");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "baseline aws-sdk-s3 put_object of the same bytes: {:.2}s = {:.1} MB/s (bytes already in memory)",
        secs,
        mb(uploaded) / secs
    );
    drop(objects);

    // S3 → SQLite
    let target = work.path().join("target.db");
    let source = reg
        .build_source(&connector(
            "s3",
            &format!(
                "{}prefix = \"export/\"\npath = \"bench/*/*.parquet\"\nstream = \"bench\"\n",
                server.toml(BUCKET)
            ),
        ))
        .expect("s3 source");
    let sink = reg
        .build_sink(&connector(
            "sqlite",
            &format!("path = \"{}\"", target.display()),
        ))
        .expect("sqlite sink");
    let (secs, peak) = timed_sync(source, sink, ("s3", "sqlite"), rows).await;
    println!(
        "S3 parquet → SQLite: {rows} rows in {secs:.2}s = {:.0} rows/s, {:.1} MB/s of Parquet, peak RSS {} MB",
        rows as f64 / secs,
        mb(uploaded) / secs,
        peak >> 20
    );
}
