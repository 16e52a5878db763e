//! Faults between Ferry and a real sshd, through the kit's fault-injecting TCP proxy: a
//! download cut mid-file resumes on a new connection (every row once), a link that keeps
//! breaking fails the read clearly with nothing committed, an upload cut mid-file leaves
//! the earlier delivery in place and no temp file, and a client polling the final name
//! during a delivery only ever sees a whole file.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{login, sink, source, SftpServer};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::{Sink, Source};
use ferry_engine::report::Status;
use ferry_engine::runtime::Runtime;
use ferry_engine::StreamConfig;
use ferry_testkit::fault::{Direction, Ending, FaultProxy};
use ferry_testkit::{self as testkit, simple_batch, MemorySink, MemorySource};

/// Rows of the big file: about 8 MB of CSV.
const ROWS: i64 = 400_000;

fn big_csv() -> Vec<u8> {
    let mut s = String::from("id,name\n");
    for i in 1..=ROWS {
        s.push_str(&format!("{i},name_{i:012}\n"));
    }
    s.into_bytes()
}

/// The server's login lines with the port of `proxy`.
fn via(server: &SftpServer, proxy: &FaultProxy, rest: &str) -> String {
    login(server, rest).replace(
        &format!("port = {}", server.port()),
        &format!("port = {}", proxy.port()),
    )
}

async fn proxy(server: &SftpServer) -> FaultProxy {
    FaultProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap())
        .await
        .unwrap()
}

/// A source of `drop/big.csv` reached through a new proxy, discovered already (so a cut
/// set now falls in the read).
async fn big_via_proxy(server: &SftpServer) -> (Arc<dyn Source>, FaultProxy) {
    let p = proxy(server).await;
    let src = source(&via(
        server,
        &p,
        "path = \"drop/big.csv\"\ncolumns = { id = \"int64\" }",
    ))
    .unwrap();
    src.discover().await.unwrap();
    (src, p)
}

/// A runtime from `src` into a memory sink, with the state folder it keeps.
fn into_memory(src: Arc<dyn Source>) -> (Runtime, MemorySink, tempfile::TempDir) {
    let mem = MemorySink::default();
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, Arc::new(mem.clone()), dir.path());
    (rt, mem, dir)
}

fn ids(mem: &MemorySink, stream: &str) -> Vec<i64> {
    mem.tables
        .lock()
        .unwrap()
        .get(stream)
        .map(|bs| {
            bs.iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_mid_file_resumes_on_a_new_connection() {
    let server = SftpServer::start();
    server.put("drop/big.csv", &big_csv());
    for ending in [Ending::Reset, Ending::Close] {
        let (src, p) = big_via_proxy(&server).await;
        // past discovery's sample, well inside the file
        p.cut_after(Direction::ToClient, 3_000_000, ending, 1);
        let (rt, mem, _dir) = into_memory(src);
        let report = testkit::sync(&rt, &[StreamConfig::named("big")], ("sftp", "memory")).await;
        testkit::assert_succeeded(&report);
        let stats = p.stats();
        assert_eq!(stats.cut, 1, "{ending:?}: the fault happened");
        assert!(
            stats.accepted >= 2,
            "{ending:?}: resumed on a new connection: {stats:?}"
        );
        assert_eq!(
            ids(&mem, "big"),
            (1..=ROWS).collect::<Vec<_>>(),
            "{ending:?}: every row once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_keeps_breaking_fails_the_read_clearly_and_commits_nothing() {
    let server = SftpServer::start();
    server.put("drop/big.csv", &big_csv());
    let (src, p) = big_via_proxy(&server).await;
    // every connection breaks after 1.5 MB: three resumes do not get through 8 MB
    p.cut_after(Direction::ToClient, 1_500_000, Ending::Reset, u64::MAX);
    let (rt, mem, _dir) = into_memory(src);
    let mut sc = StreamConfig::named("big");
    sc.incremental = Some(true);
    let report = testkit::sync(&rt, &[sc], ("sftp", "memory")).await;
    assert_eq!(report.status, Status::Failed);
    let error = report.streams[0].error.clone().unwrap_or_default();
    assert!(error.contains("drop/big.csv"), "{error}");
    assert!(
        error.contains("did not resume after 3 reconnects"),
        "{error}"
    );
    assert_eq!(report.rows_committed(), 0);
    assert!(
        rt.state.get("big").is_none(),
        "no state was committed for a file not read whole"
    );
    assert!(
        ids(&mem, "big").is_empty(),
        "no row reached the destination"
    );
}

/// Stream `rows`, overwritten (what an SFTP delivery does).
fn overwrite() -> StreamConfig {
    let mut sc = StreamConfig::named("rows");
    sc.mode = Some(ferry_core::WriteMode::Overwrite);
    sc
}

/// A memory source of one stream `rows` holding `n` rows in batches of 10,000.
fn rows(n: usize, tag: &str) -> Arc<dyn Source> {
    let batches: Vec<_> = (0..n / 10_000)
        .map(|i| simple_batch(1 + (i * 10_000) as i64, 10_000, tag))
        .collect();
    let schema = batches[0].schema();
    Arc::new(MemorySource::new("rows", schema, batches))
}

/// Lines of the delivered file, as the client would fetch it now (`None`: no file).
fn lines(path: &std::path::Path) -> Option<usize> {
    std::fs::read(path)
        .ok()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_file_leaves_the_earlier_delivery_and_no_temp_file() {
    let server = SftpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let direct: Arc<dyn Sink> = sink(&login(&server, "path = \"out\"")).unwrap();
    let rt = testkit::runtime(rows(10_000, "old"), direct, dir.path());
    testkit::assert_succeeded(&testkit::sync(&rt, &[overwrite()], ("memory", "sftp")).await);
    let target = server.root().join("out/rows.csv");
    assert_eq!(lines(&target), Some(10_001));

    let p = proxy(&server).await;
    p.cut_after(Direction::ToTarget, 2_000_000, Ending::Reset, 1);
    let cut: Arc<dyn Sink> = sink(&via(&server, &p, "path = \"out\"")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(rows(300_000, "new"), cut, dir.path());
    let report = testkit::sync(&rt, &[overwrite()], ("memory", "sftp")).await;
    assert_eq!(report.status, Status::Failed, "the upload broke");
    assert_eq!(p.stats().cut, 1);
    assert_eq!(report.rows_committed(), 0);
    assert_eq!(
        lines(&target),
        Some(10_001),
        "the earlier delivery stands, whole"
    );
    assert_eq!(
        common::names(&server.root().join("out")),
        vec!["rows.csv"],
        "no temp file is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_polling_the_final_name_never_sees_half_a_file() {
    let server = SftpServer::start();
    let target = server.root().join("out/rows.csv");
    let deliver = |n: usize, tag: &'static str| {
        let sink = sink(&login(&server, "path = \"out\"")).unwrap();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let rt = testkit::runtime(rows(n, tag), sink, dir.path());
            testkit::assert_succeeded(
                &testkit::sync(&rt, &[overwrite()], ("memory", "sftp")).await,
            );
        }
    };
    deliver(10_000, "old").await;
    // the client's pick-up job: reads whatever is under the final name, as often as it can
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let watcher = {
        let (stop, seen, target) = (stop.clone(), seen.clone(), target.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = lines(&target) {
                    seen.lock().unwrap().insert(n);
                }
            }
        })
    };
    deliver(200_000, "new").await;
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(lines(&target), Some(200_001));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&10_001),
        "the old file was there while the new one was written: {seen:?}"
    );
    assert!(
        seen.iter().all(|n| *n == 10_001 || *n == 200_001),
        "a partial file was visible under the final name: {seen:?}"
    );
}
