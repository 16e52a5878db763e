//! `ferry plan`'s figures for an S3 stream (`Source::estimate`), against the in-process
//! S3 server: an estimate from object sizes and one sample for CSV, exact Parquet footer
//! counts, rows unknown for compressed objects, and a certain 0 when no object is new.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::{source, Server};
use ferry_core::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ferry_core::{Estimate, Message, ReadRequest, Source};
use ferry_formats::codec::{CompressWriter, Compression, CsvOptions, Format, FormatWriter};
use futures::StreamExt;

const BUCKET: &str = "estimates";

fn csv_rows(from: u64, to: u64) -> Vec<u8> {
    let mut s = String::from("id,name\n");
    for i in from..to {
        s.push_str(&format!("{i},someone called {i}\n"));
    }
    s.into_bytes()
}

fn parquet(rows: i64) -> Vec<u8> {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("n{i}")),
    ));
    let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
    let mut w = FormatWriter::new(
        Format::Parquet,
        Vec::new(),
        batch.schema(),
        &CsvOptions::default(),
    )
    .unwrap();
    w.write_batch(&batch).unwrap();
    w.into_inner().unwrap()
}

/// The source of the objects `path` matches as stream `stream`, discovered.
async fn discovered(server: &Server, path: &str, stream: &str) -> Arc<dyn Source> {
    let toml = format!(
        "{}path = \"{path}\"\nstream = \"{stream}\"",
        server.toml(BUCKET)
    );
    let src = source(&toml).unwrap();
    src.discover().await.unwrap();
    src
}

/// The estimate of reading all of `stream`, which there must be.
async fn estimate(src: &dyn Source, stream: &str) -> Estimate {
    let e = src.estimate(&ReadRequest::full(stream)).await.unwrap();
    e.expect("an estimate")
}

/// The state after reading the whole stream incrementally.
async fn read_all(src: &dyn Source, stream: &str) -> serde_json::Value {
    let mut s = src
        .read(ReadRequest::incremental(stream, None))
        .await
        .unwrap();
    let mut state = serde_json::Value::Null;
    while let Some(m) = s.next().await {
        if let Message::Checkpoint(v) = m.unwrap() {
            state = v;
        }
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_objects_are_estimated_from_their_sizes_and_nothing_new_is_exactly_0() {
    let server = Server::start(&[BUCKET]).await;
    // 2 objects, 12,000 rows, well past the 64 KiB sample
    let (a, b) = (csv_rows(0, 6000), csv_rows(6000, 12000));
    let bytes = (a.len() + b.len()) as u64;
    server.put(BUCKET, "people/a.csv", a).await;
    server.put(BUCKET, "people/b.csv", b).await;
    let src = discovered(&server, "people/*.csv", "people").await;

    let e = estimate(src.as_ref(), "people").await;
    let rows = e.rows.expect("rows estimated");
    assert!((10_800..=13_200).contains(&rows), "{e:?}");
    assert!(!e.exact, "a sample is an estimate, not a count: {e:?}");
    assert_eq!((e.files, e.bytes), (Some(2), Some(bytes)));
    // not a count: `count` stays unknown
    assert_eq!(src.count(&ReadRequest::full("people")).await.unwrap(), None);

    let state = read_all(src.as_ref(), "people").await;
    let again = ReadRequest::incremental("people", Some(state.clone()));
    let e = src.estimate(&again).await.unwrap().unwrap();
    assert!(e.is_nothing(), "{e:?}");
    assert_eq!(e.files, Some(0));
    assert_eq!(src.count(&again).await.unwrap(), Some(0));

    // one new object: only it is estimated
    std::thread::sleep(std::time::Duration::from_millis(20));
    server
        .put(BUCKET, "people/c.csv", csv_rows(12000, 12300))
        .await;
    let e = src.estimate(&again).await.unwrap().unwrap();
    assert_eq!(e.files, Some(1), "{e:?}");
    assert!((270..=330).contains(&e.rows.unwrap()), "{e:?}");
    assert!(!e.is_nothing());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_footers_count_exactly_and_compressed_rows_are_unknown() {
    let server = Server::start(&[BUCKET]).await;
    server.put(BUCKET, "pq/a.parquet", parquet(1234)).await;
    server.put(BUCKET, "pq/b.parquet", parquet(66)).await;
    let src = discovered(&server, "pq/*.parquet", "pq").await;
    let e = estimate(src.as_ref(), "pq").await;
    assert_eq!(
        (e.rows, e.exact, e.files),
        (Some(1300), true, Some(2)),
        "{e:?}"
    );
    assert_eq!(
        src.count(&ReadRequest::full("pq")).await.unwrap(),
        Some(1300)
    );

    let mut gz = CompressWriter::new(Vec::new(), Compression::Gzip).unwrap();
    gz.write_all(&csv_rows(0, 500)).unwrap();
    let gz = gz.finish().unwrap();
    let size = gz.len() as u64;
    server.put(BUCKET, "gz/a.csv.gz", gz).await;
    let src = discovered(&server, "gz/*.csv.gz", "gz").await;
    let e = estimate(src.as_ref(), "gz").await;
    assert_eq!(e.rows, None, "{e:?}");
    assert_eq!((e.files, e.bytes), (Some(1), Some(size)));
}
