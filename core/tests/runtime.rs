//! The runtime and the conformance kit, exercised with the in-memory source and sink.

use std::sync::Arc;

use ferry_core::report::Status;
use ferry_core::testkit::{self, MemorySink, MemorySource, SinkFixture};
use ferry_core::{RunOptions, StreamConfig, WriteMode};

struct MemoryFixture(MemorySink);

#[ferry_core::async_trait]
impl SinkFixture for MemoryFixture {
    fn sink(&self) -> Arc<dyn ferry_core::Sink> {
        Arc::new(self.0.clone())
    }
    async fn read_back(
        &self,
        stream: &str,
        _schema: &ferry_core::arrow_schema::SchemaRef,
    ) -> ferry_core::Result<Vec<ferry_core::arrow_array::RecordBatch>> {
        Ok(self
            .0
            .tables
            .lock()
            .unwrap()
            .get(stream)
            .cloned()
            .unwrap_or_default())
    }
}

#[tokio::test]
async fn memory_sink_passes_the_kit() {
    testkit::run_sink_suite(&MemoryFixture(MemorySink::default())).await;
}

#[tokio::test]
async fn limit_stops_early_and_commits_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let schema = testkit::simple_batch(1, 0, "").schema();
    let batches = (0..10)
        .map(|i| testkit::simple_batch(i * 10 + 1, 10, "x"))
        .collect();
    let source = Arc::new(MemorySource::new("s", schema, batches));
    let sink = MemorySink::default();
    let rt = testkit::runtime(source, Arc::new(sink.clone()), dir.path());
    let mut sc = StreamConfig::named("s");
    sc.incremental = Some(true);
    let opts = RunOptions {
        limit: Some(25),
        ..Default::default()
    };
    let report = rt.sync(&[sc], &opts, None, ("m", "m")).await.unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.rows_written(), 25);
    assert!(
        rt.state.get("s").is_none(),
        "a --limit trial run moved the incremental window"
    );
}

#[tokio::test]
async fn plan_refuses_unknown_stream_and_upsert_without_key() {
    let dir = tempfile::tempdir().unwrap();
    let schema =
        ferry_core::arrow_schema::Schema::new(vec![ferry_core::FerryType::Int64.field("n", false)]);
    let source = Arc::new(MemorySource::new("s", Arc::new(schema), vec![]));
    let rt = testkit::runtime(source, Arc::new(MemorySink::default()), dir.path());
    let err = rt
        .sync(
            &[StreamConfig::named("t")],
            &RunOptions::default(),
            None,
            ("m", "m"),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("stream `t` is not offered"),
        "{err}"
    );
    let mut sc = StreamConfig::named("s");
    sc.mode = Some(WriteMode::Upsert);
    let err = rt
        .sync(&[sc], &RunOptions::default(), None, ("m", "m"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot upsert"), "{err}");
}

#[tokio::test]
async fn cancel_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let schema = testkit::simple_batch(1, 0, "").schema();
    let source = Arc::new(MemorySource::new(
        "s",
        schema,
        vec![testkit::simple_batch(1, 1, "x")],
    ));
    let rt = testkit::runtime(source, Arc::new(MemorySink::default()), dir.path());
    rt.cancel.cancel();
    let report = rt
        .sync(
            &[StreamConfig::named("s")],
            &RunOptions::default(),
            None,
            ("m", "m"),
        )
        .await
        .unwrap();
    assert_eq!(report.status, Status::Cancelled);
}
