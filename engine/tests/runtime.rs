//! The runtime and the conformance kit, exercised with the in-memory source and sink.

use std::sync::Arc;

use ferry_core::WriteMode;
use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, MemorySink, MemorySource, SinkFixture};

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
    // a trial: the rows went through the writer and were taken back
    assert_eq!(report.streams[0].rows_read, 25);
    assert_eq!(report.rows_committed(), 0);
    assert_eq!(report.rows_uncommitted(), 25);
    assert!(
        sink.tables.lock().unwrap().values().all(|b| b.is_empty()),
        "a --limit trial left rows at the destination"
    );
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
    let report = testkit::sync(&rt, &[StreamConfig::named("s")], ("m", "m")).await;
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

/// Quarantined rows name their position in the source, also after a `filter` removed rows
/// before them (with and without `--limit`, which transforms in the pump itself).
#[tokio::test]
async fn quarantine_positions_survive_a_filter() {
    for limit in [None, Some(1000)] {
        let dir = tempfile::tempdir().unwrap();
        let schema = testkit::simple_batch(1, 0, "").schema();
        let batches = vec![
            testkit::simple_batch(1, 10, "x"),
            testkit::simple_batch(11, 10, "x"),
        ];
        let source = Arc::new(MemorySource::new("s", schema, batches));
        let rt = testkit::runtime(source, Arc::new(MemorySink::default()), dir.path());
        let mut sc = StreamConfig::named("s");
        // 4 of 20 rows rejected on purpose: more than the default max_bad_ratio
        sc.max_bad_ratio = Some(1.0);
        sc.transforms = vec![serde_json::from_value(
            serde_json::json!({ "type": "filter", "expr": "id % 3 != 0" }),
        )
        .unwrap()];
        sc.checks = vec![serde_json::from_value(
            serde_json::json!({ "type": "range", "column": "id", "max": 15 }),
        )
        .unwrap()];
        let opts = RunOptions {
            limit,
            ..Default::default()
        };
        let report = rt.sync(&[sc], &opts, None, ("m", "m")).await.unwrap();
        assert_eq!(report.status, Status::Succeeded, "{}", report.summary());
        let s = &report.streams[0];
        assert_eq!(
            (
                s.rows_read,
                s.rows_committed,
                s.rows_rejected,
                s.rows_filtered
            ),
            // a --limit trial keeps none of the 10 rows it wrote
            (20, if limit.is_some() { 0 } else { 10 }, 4, 6)
        );
        let text = std::fs::read_to_string(rt.quarantine.path("s")).unwrap();
        let keys: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["position"]["key"].as_str().unwrap().to_string()
            })
            .collect();
        // ids 16, 17, 19 and 20 fail; id n is row n of the source
        assert_eq!(keys, ["row 16", "row 17", "row 19", "row 20"], "{limit:?}");
    }
}

/// A source that sends one malformed record, whose raw text holds a protected value.
struct Malformed(MemorySource);

#[ferry_core::async_trait]
impl ferry_core::Source for Malformed {
    async fn check(&self) -> ferry_core::Result<()> {
        Ok(())
    }
    async fn discover(&self) -> ferry_core::Result<ferry_core::Catalog> {
        self.0.discover().await
    }
    async fn read(
        &self,
        request: ferry_core::ReadRequest,
    ) -> ferry_core::Result<ferry_core::MessageStream> {
        use futures::StreamExt;
        let bad = ferry_core::Message::Rejected(ferry_core::source::Rejected {
            position: ferry_core::source::Position {
                file: Some("people.csv".into()),
                line: Some(3),
                ..Default::default()
            },
            raw: "3,SECRET-NAME,1,extra".into(),
            message: "4 fields, expected 3: `SECRET-NAME`".into(),
        });
        let rows = self.0.read(request).await?;
        Ok(futures::stream::iter([Ok(bad)]).chain(rows).boxed())
    }
}

/// A malformed record of a stream that hashes a column keeps its position in the
/// quarantine, and neither its raw text nor the source's message (both may hold the
/// column's clear value); without protected columns both are kept.
#[tokio::test]
async fn malformed_records_do_not_leak_protected_columns() {
    for protect in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let schema = testkit::simple_batch(1, 0, "").schema();
        let inner = MemorySource::new("s", schema, vec![testkit::simple_batch(1, 2, "x")]);
        let rt = testkit::runtime(
            Arc::new(Malformed(inner)),
            Arc::new(MemorySink::default()),
            dir.path(),
        );
        let mut sc = StreamConfig::named("s");
        sc.on_bad_record = ferry_engine::config::BadRecordPolicy::Quarantine;
        sc.max_bad_ratio = Some(1.0); // 1 of 3 rows is malformed on purpose
        if protect {
            sc.transforms = vec![serde_json::from_value(serde_json::json!(
                { "type": "hash", "column": "name", "key": "0123456789abcdef0123" }
            ))
            .unwrap()];
        }
        let report = rt
            .sync(&[sc.clone()], &RunOptions::default(), None, ("m", "m"))
            .await
            .unwrap();
        assert_eq!(report.status, Status::Succeeded, "{}", report.summary());
        let text = std::fs::read_to_string(rt.quarantine.path("s")).unwrap();
        let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(record["position"]["line"], 3);
        assert_eq!(text.contains("SECRET-NAME"), !protect, "{text}");
        if protect {
            assert!(record["raw"].is_null(), "{text}");
            assert!(
                record["message"].as_str().unwrap().contains("withheld"),
                "{text}"
            );
        }
        // failing on it (the default policy) does not show the value either
        sc.on_bad_record = ferry_engine::config::BadRecordPolicy::Fail;
        let report = rt
            .sync(&[sc], &RunOptions::default(), None, ("m", "m"))
            .await
            .unwrap();
        let error = report.streams[0].error.clone().unwrap();
        assert_eq!(error.contains("SECRET-NAME"), !protect, "{error}");
        assert!(error.contains("line"), "{error}");
    }
}
