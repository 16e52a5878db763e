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

/// A source that claims a total it may not deliver (an API reporting 500 rows, serving 450).
struct Claims {
    inner: MemorySource,
    total: u64,
}

#[ferry_core::async_trait]
impl ferry_core::Source for Claims {
    async fn check(&self) -> ferry_core::Result<()> {
        Ok(())
    }
    async fn discover(&self) -> ferry_core::Result<ferry_core::Catalog> {
        self.inner.discover().await
    }
    async fn read(
        &self,
        request: ferry_core::ReadRequest,
    ) -> ferry_core::Result<ferry_core::MessageStream> {
        use futures::StreamExt;
        let total = futures::stream::iter([Ok(ferry_core::Message::Total(self.total))]);
        Ok(total.chain(self.inner.read(request).await?).boxed())
    }
}

#[tokio::test]
async fn completeness_is_reported_and_required() {
    let schema = testkit::simple_batch(1, 0, "").schema();
    let batches: Vec<_> = (0..9)
        .map(|i| testkit::simple_batch(i * 50 + 1, 50, "x"))
        .collect();
    let mut sc = StreamConfig::named("s");
    sc.incremental = Some(true);
    for (total, require) in [(450, true), (500, false), (500, true)] {
        let dir = tempfile::tempdir().unwrap();
        let source = Arc::new(Claims {
            inner: MemorySource::new("s", schema.clone(), batches.clone()),
            total,
        });
        let rt = testkit::runtime(source, Arc::new(MemorySink::default()), dir.path());
        let opts = RunOptions {
            require_complete: require,
            ..Default::default()
        };
        let report = rt
            .sync(std::slice::from_ref(&sc), &opts, None, ("m", "m"))
            .await
            .unwrap();
        let s = &report.streams[0];
        assert_eq!(s.rows_read, 450);
        assert_eq!(s.rows_total, Some(total));
        assert_eq!(s.complete, Some(total == 450), "total {total}");
        let committed = rt.state.get("s");
        if total == 500 && require {
            assert_eq!(report.status, Status::Failed);
            assert!(s
                .error
                .as_deref()
                .unwrap()
                .contains("reported 500 rows but 450"));
            // no checkpoint of the stream was committed, not even an early one
            assert_eq!(committed, None);
            assert!(
                report.summary().contains("INCOMPLETE"),
                "{}",
                report.summary()
            );
        } else {
            assert_eq!(report.status, Status::Succeeded, "{:?}", s.error);
            assert_eq!(committed, Some(serde_json::json!({ "batch": 9 })));
        }
    }
}
