//! Network faults between Ferry and S3, injected by a TCP proxy
//! ([`ferry_testkit::fault`]) in front of the in-process s3s-fs server: added
//! latency, connections dropped or reset in the middle of a download and of a part
//! upload (the SDK retries requests, and a cut-off download resumes with a ranged GET),
//! and half-open connections that hang (the SDK's stalled-stream protection and read
//! timeout give up; the stream fails saying what timed out, and a rerun completes).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{sink, source, Server};
use ferry_core::{Sink, Source};
use ferry_engine::report::RunReport;
use ferry_engine::{RunOptions, Runtime, StreamConfig};
use ferry_testkit::fault::{bounded, Direction, Ending, FaultProxy};
use ferry_testkit::{self as testkit, MemorySink, MemorySource};

const BUCKET: &str = "data";
/// Objects of the source, and rows in each: about 2 MB of CSV in all.
const OBJECTS: i64 = 4;
const ROWS_EACH: i64 = 10_000;
/// Bytes let through before a fault mid-upload.
const MID: u64 = 300_000;
/// Bytes let through before a fault mid-download: more than a whole object (about 470 KB),
/// because discovery's schema sample GETs the first object and drops it early, and the
/// socket may have taken up to all of it by then; the fault then always falls in the read.
const DOWNLOAD_MID: u64 = 700_000;

fn csv(first: i64, n: i64) -> Vec<u8> {
    let mut out = String::from("id,payload\n");
    for id in first..first + n {
        out.push_str(&format!("{id},{}\n", "x".repeat(40)));
    }
    out.into_bytes()
}

/// A server with the source objects `in/part-N.csv`.
async fn server() -> Server {
    let server = Server::start(&[BUCKET]).await;
    for i in 0..OBJECTS {
        let key = format!("in/part-{i}.csv");
        server
            .put(BUCKET, &key, csv(i * ROWS_EACH + 1, ROWS_EACH))
            .await;
    }
    server
}

/// Connection lines for `bucket` through `proxy`, with short timeouts and 2 attempts (5 s
/// for reads: long enough that a loaded CI machine does not time out a request the
/// proxy did not hang).
fn via(proxy: &FaultProxy) -> String {
    format!(
        "bucket = \"{BUCKET}\"\nendpoint = \"http://{}\"\nforce_path_style = true\n\
         region = \"us-east-1\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
         connect_timeout_secs = 2\nread_timeout_secs = 5\nstall_timeout_secs = 5\nmax_attempts = 2\n",
        proxy.addr(),
        common::ACCESS_KEY,
        common::SECRET_KEY
    )
}

async fn proxy(server: &Server) -> FaultProxy {
    let addr = server
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address");
    FaultProxy::start(addr).await.expect("the proxy starts")
}

fn s3_source(conn: &str) -> Arc<dyn Source> {
    source(&format!(
        "{conn}path = \"in/*.csv\"\nstream = \"rows\"\ncolumns = {{ id = \"int64\" }}\nprimary_key = [\"id\"]\n"
    ))
    .expect("the source config is valid")
}

fn s3_sink(conn: &str) -> Arc<dyn Sink> {
    sink(&format!("{conn}prefix = \"out/\"\n")).expect("the destination config is valid")
}

/// Every row of the source, as a memory stream of the same shape.
fn memory_source() -> Arc<dyn Source> {
    let schema = testkit::simple_batch(1, 0, "").schema();
    let batches = (0..OBJECTS)
        .map(|i| testkit::simple_batch(i * ROWS_EACH + 1, ROWS_EACH as usize, "payload"))
        .collect();
    Arc::new(MemorySource::new("rows", schema, batches))
}

async fn sync(rt: &Runtime) -> RunReport {
    bounded(
        "the sync",
        rt.sync(
            &[StreamConfig::named("rows")],
            &RunOptions::default(),
            None,
            ("a", "b"),
        ),
    )
    .await
    .expect("the sync starts")
}

fn succeeded(report: &RunReport) {
    testkit::assert_succeeded(report);
    assert_eq!(report.rows_committed(), (OBJECTS * ROWS_EACH) as u64);
}

/// The memory sink holds every source row once.
fn assert_read_whole(sink: &MemorySink) {
    let tables = sink.tables.lock().unwrap();
    let batches = tables.get("rows").expect("stream written");
    let ids = ids_of(batches);
    assert_eq!(ids.len() as i64, OBJECTS * ROWS_EACH);
    assert_eq!(ids, (1..=OBJECTS * ROWS_EACH).collect::<BTreeSet<_>>());
}

fn ids_of(batches: &[ferry_core::arrow_array::RecordBatch]) -> BTreeSet<i64> {
    use ferry_core::arrow_array::cast::AsArray;
    use ferry_core::arrow_array::types::Int64Type;
    let mut ids = BTreeSet::new();
    let mut n = 0;
    for b in batches {
        let col = b.column_by_name("id").expect("an id column");
        for v in col.as_primitive::<Int64Type>().iter() {
            ids.insert(v.expect("id set"));
            n += 1;
        }
    }
    assert_eq!(n, ids.len(), "no id twice");
    ids
}

/// The objects under `out/` hold every source row once.
async fn assert_written_whole(server: &Server) {
    let mut ids = BTreeSet::new();
    let mut n = 0;
    for key in server.keys(BUCKET, "out/").await {
        let body = String::from_utf8(server.get(BUCKET, &key).await).unwrap();
        for line in body.lines().skip(1) {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            ids.insert(id);
            n += 1;
        }
    }
    assert_eq!(n, ids.len(), "no row twice");
    assert_eq!(ids, (1..=OBJECTS * ROWS_EACH).collect::<BTreeSet<_>>());
}

/// A read through a proxy with `fault` applied; returns the report, the sink and proxy.
async fn read_with(
    server: &Server,
    fault: impl FnOnce(&FaultProxy),
) -> (RunReport, MemorySink, FaultProxy) {
    let p = proxy(server).await;
    let src = s3_source(&via(&p));
    // discovery samples the first object: the fault starts with the read itself
    fault(&p);
    let mem = MemorySink::default();
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, Arc::new(mem.clone()), dir.path());
    let report = sync(&rt).await;
    (report, mem, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_changes_nothing() {
    let server = server().await;
    let (report, mem, p) = read_with(&server, |p| p.set_latency(Duration::from_millis(2))).await;
    succeeded(&report);
    assert_read_whole(&mem);
    // and writing
    p.set_latency(Duration::from_millis(2));
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(memory_source(), s3_sink(&via(&p)), dir.path());
    succeeded(&sync(&rt).await);
    assert_written_whole(&server).await;
}

async fn cut_mid_download(ending: Ending) {
    let server = server().await;
    let (report, mem, p) = read_with(&server, |p| {
        p.cut_after(Direction::ToClient, DOWNLOAD_MID, ending, 1)
    })
    .await;
    // the cut-off body was resumed from where it stopped (ranged GET, same ETag)
    succeeded(&report);
    assert_eq!(p.stats().cut, 1, "the fault happened");
    assert_read_whole(&mem);
}

ferry_testkit::cut_tests! {
    cut_mid_download => connection_dropped_mid_download_is_resumed, connection_reset_mid_download_is_resumed;
}

async fn cut_mid_upload(ending: Ending) {
    let server = server().await;
    let p = proxy(&server).await;
    p.cut_after(Direction::ToTarget, MID, ending, 1);
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(memory_source(), s3_sink(&via(&p)), dir.path());
    // the SDK sent the part again on a new connection
    succeeded(&sync(&rt).await);
    assert_eq!(p.stats().cut, 1, "the fault happened");
    assert_written_whole(&server).await;
    server.assert_no_open_uploads();
}

ferry_testkit::cut_tests! {
    cut_mid_upload => connection_dropped_mid_upload_is_retried, connection_reset_mid_upload_is_retried;
}

/// The error of the failed run's stream `rows`, which timed out.
fn timed_out(report: &RunReport) -> String {
    let error = testkit::failed_stream(report, "rows");
    assert!(
        error.contains("did not answer in time") || error.contains("timeout"),
        "says what timed out: {error}"
    );
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_download_times_out_and_rerun_completes() {
    let server = server().await;
    let (report, _, p) =
        read_with(&server, |p| p.hang_after(Direction::ToClient, DOWNLOAD_MID)).await;
    let error = timed_out(&report);
    // the hang starts at the first byte after DOWNLOAD_MID bytes reached the client,
    // counted over every connection: past the schema sample, in an object's body
    assert!(
        error.contains("s3://data/in/part-"),
        "names the object: {error}"
    );
    assert!(
        error.contains("; full refresh, nothing is committed: a rerun starts from the beginning"),
        "{error}"
    );
    drop(p);
    let mem = MemorySink::default();
    let dir = tempfile::tempdir().unwrap();
    let direct = server.toml(BUCKET);
    let rt = testkit::runtime(s3_source(&direct), Arc::new(mem.clone()), dir.path());
    succeeded(&sync(&rt).await);
    assert_read_whole(&mem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_upload_times_out_and_rerun_completes() {
    let server = server().await;
    let p = proxy(&server).await;
    p.hang_after(Direction::ToTarget, MID);
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(memory_source(), s3_sink(&via(&p)), dir.path());
    let report = sync(&rt).await;
    let error = timed_out(&report);
    assert!(
        error.contains("s3://data/out/"),
        "names the object: {error}"
    );
    assert!(
        error.contains("; full refresh, nothing is committed"),
        "{error}"
    );
    // the failed run's upload was aborted or never opened a part
    server.assert_no_open_uploads();
    drop(p);
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(memory_source(), s3_sink(&server.toml(BUCKET)), dir.path());
    succeeded(&sync(&rt).await);
    assert_written_whole(&server).await;
}
