//! A failed stream's error says where a rerun resumes: the last committed state, or the
//! beginning.

use std::sync::Arc;

use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, FailingSink, MemorySink, MemorySource};

fn source() -> Arc<MemorySource> {
    let schema = testkit::simple_batch(1, 0, "").schema();
    let batches = (0..5)
        .map(|i| testkit::simple_batch(i * 10 + 1, 10, "x"))
        .collect();
    Arc::new(MemorySource::new("s", schema, batches))
}

fn incremental() -> StreamConfig {
    let mut sc = StreamConfig::named("s");
    sc.incremental = Some(true);
    sc
}

#[tokio::test]
async fn failed_stream_names_its_last_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FailingSink::new(Arc::new(MemorySink::default()), 3));
    let rt = testkit::runtime(source(), sink, dir.path());
    let opts = RunOptions::default();
    let report = rt
        .sync(&[incremental()], &opts, None, ("m", "m"))
        .await
        .unwrap();
    assert_eq!(report.status, Status::Failed);
    let error = report.streams[0].error.as_deref().unwrap();
    // two batches were written and their checkpoint committed before the third failed
    assert!(
        error.ends_with("(stream s); last committed: {\"batch\":2}"),
        "{error}"
    );
    assert!(error.starts_with("injected failure"), "{error}");
}

#[tokio::test]
async fn failed_stream_says_when_nothing_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FailingSink::new(Arc::new(MemorySink::default()), 1));
    let rt = testkit::runtime(source(), sink.clone(), dir.path());
    let opts = RunOptions::default();
    let report = rt
        .sync(&[incremental()], &opts, None, ("m", "m"))
        .await
        .unwrap();
    let error = report.streams[0].error.as_deref().unwrap();
    assert!(
        error.ends_with("; nothing committed yet: a rerun starts from the beginning"),
        "{error}"
    );
    // a full refresh never commits: it always starts over
    let rt = testkit::runtime(source(), sink, dir.path());
    let report = rt
        .sync(&[StreamConfig::named("s")], &opts, None, ("m", "m"))
        .await
        .unwrap();
    let error = report.streams[0].error.as_deref().unwrap();
    assert!(
        error.ends_with("; full refresh, nothing is committed: a rerun starts from the beginning"),
        "{error}"
    );
}
