//! `after_read` on S3, against the in-process S3 server: objects are copied under the
//! archive prefix and deleted (or just deleted) once their rows and state are committed;
//! a failing destination leaves them; an empty prefix still runs, its columns known from
//! the archive.

mod common;

use std::sync::Arc;

use common::{source, Server};
use ferry_engine::config::StreamConfig;
use ferry_engine::report::{RunReport, Status};
use ferry_engine::runtime::RunOptions;
use ferry_testkit::{FailingSink, MemorySink};

const BUCKET: &str = "drops";

fn incremental() -> Vec<StreamConfig> {
    vec![
        serde_json::from_value(serde_json::json!({ "name": "orders", "incremental": true }))
            .unwrap(),
    ]
}

async fn run(
    server: &Server,
    extra: &str,
    sink: Arc<dyn ferry_core::Sink>,
    state: &std::path::Path,
) -> RunReport {
    let toml = format!(
        "{}prefix = \"acme/\"\npath = \"in/orders_*.csv\"\n{extra}",
        server.toml(BUCKET)
    );
    let rt = ferry_testkit::runtime(source(&toml).unwrap(), sink, state);
    rt.sync(
        &incremental(),
        &RunOptions::default(),
        None,
        ("s3", "memory"),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_archived_or_deleted_only_after_the_commit() {
    let server = Server::start(&[BUCKET]).await;
    let state = tempfile::tempdir().unwrap();
    server
        .put(BUCKET, "acme/in/orders_1.csv", b"id,v\n1,a\n2,b\n".to_vec())
        .await;
    server
        .put(BUCKET, "acme/in/orders_2 b.csv", b"id,v\n3,c\n".to_vec())
        .await;
    server
        .put(BUCKET, "acme/in/other.csv", b"id,v\n9,z\n".to_vec())
        .await;
    let archive = "after_read = \"archive\"\narchive_to = \"done\"";

    // a destination that fails: nothing is archived
    let failing = Arc::new(FailingSink::new(Arc::new(MemorySink::default()), 0));
    let report = run(&server, archive, failing, state.path()).await;
    assert_eq!(report.status, Status::Failed, "{}", report.summary());
    assert_eq!(
        server.keys(BUCKET, "acme/").await,
        [
            "acme/in/orders_1.csv",
            "acme/in/orders_2 b.csv",
            "acme/in/other.csv"
        ]
    );

    let sink = MemorySink::default();
    let report = run(&server, archive, Arc::new(sink.clone()), state.path()).await;
    ferry_testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 3, "{}", report.summary());
    assert_eq!(
        server.keys(BUCKET, "acme/").await,
        [
            "acme/in/done/orders_1.csv",
            "acme/in/done/orders_2 b.csv",
            "acme/in/other.csv"
        ]
    );
    assert_eq!(
        server.get(BUCKET, "acme/in/done/orders_2 b.csv").await,
        b"id,v\n3,c\n"
    );
    assert!(report
        .summary()
        .contains("orders: acme/in/orders_1.csv archived to acme/in/done/orders_1.csv"));

    // nothing left to read: the run succeeds, its columns from the archive
    let report = run(&server, archive, Arc::new(sink.clone()), state.path()).await;
    ferry_testkit::assert_succeeded(&report);
    assert_eq!(report.rows_read(), 0);

    // delete: the new object goes, the archive stays
    server
        .put(BUCKET, "acme/in/orders_3.csv", b"id,v\n4,d\n".to_vec())
        .await;
    let report = run(
        &server,
        "after_read = \"delete\"",
        Arc::new(sink.clone()),
        state.path(),
    )
    .await;
    ferry_testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 1);
    assert!(
        report.summary().contains("acme/in/orders_3.csv deleted"),
        "{}",
        report.summary()
    );
    assert_eq!(
        server.keys(BUCKET, "acme/in/orders").await,
        Vec::<String>::new()
    );
    let rows: usize = sink.tables.lock().unwrap()["orders"]
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 4, "every row once");
}
