//! The two delivery modes against a real sshd: `append` adds a whole file per run and
//! never touches an earlier one (a failed run leaves no trace), the receipt's output names
//! the file and verifies; `overwrite` replaces the file in one step, so a client polling
//! its name always finds a whole file, and still replaces it on a server that refuses
//! `posix-rename@openssh.com`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{login, names, sink, SftpServer};
use ferry_core::{OutputRef, Sink, Source, Verdict, WriteMode};
use ferry_engine::report::{RunReport, Status};
use ferry_engine::StreamConfig;
use ferry_testkit::{self as testkit, simple_batch, FailingSink, MemorySource};

/// Stream `rows` in `mode`.
fn stream(mode: WriteMode) -> StreamConfig {
    let mut sc = StreamConfig::named("rows");
    sc.mode = Some(mode);
    sc
}

/// A memory source of stream `rows`: `batches` batches of `size` rows, ids from `first`.
fn rows(first: i64, batches: usize, size: usize, tag: &str) -> Arc<dyn Source> {
    let all: Vec<_> = (0..batches)
        .map(|i| simple_batch(first + (i * size) as i64, size, tag))
        .collect();
    let schema = all[0].schema();
    Arc::new(MemorySource::new("rows", schema, all))
}

/// Runs `source` into `sink` with stream `rows` in `mode`, state in a fresh folder.
async fn deliver(source: Arc<dyn Source>, sink: Arc<dyn Sink>, mode: WriteMode) -> RunReport {
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(source, sink, state.path());
    testkit::sync(&rt, &[stream(mode)], ("memory", "sftp")).await
}

/// The ids in a delivered CSV file, in order.
fn ids(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,name,version"), "{}", path.display());
    lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// A first `append` of ids 1–3 to folder `out`: the sink, the folder, the file's name and
/// its bytes.
async fn first_append(server: &SftpServer) -> (Arc<dyn Sink>, PathBuf, String, Vec<u8>) {
    let out = server.root().join("out");
    let sink = sink(&login(server, "path = \"out\"")).unwrap();
    let first = deliver(rows(1, 1, 3, "a"), sink.clone(), WriteMode::Append).await;
    testkit::assert_succeeded(&first);
    let one = format!("rows-{}.csv", first.run_id);
    assert_eq!(names(&out), [one.as_str()]);
    assert_eq!(ids(&out.join(&one)), [1, 2, 3]);
    let bytes = std::fs::read(out.join(&one)).unwrap();
    (sink, out, one, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_appends_are_two_whole_files_named_by_their_runs_and_verified() {
    let server = SftpServer::start();
    let (sink, out, one, before) = first_append(&server).await;
    let second = deliver(rows(4, 2, 2, "b"), sink.clone(), WriteMode::Append).await;
    testkit::assert_succeeded(&second);
    let two = format!("rows-{}.csv", second.run_id);
    let mut both = vec![one.clone(), two.clone()];
    both.sort();
    assert_eq!(names(&out), both, "a file per run, no temp file");
    assert_eq!(ids(&out.join(&two)), [4, 5, 6, 7]);
    assert_eq!(
        std::fs::read(out.join(&one)).unwrap(),
        before,
        "the first delivery is untouched"
    );

    // the report (and so the receipt) names the file this run delivered; verify finds it
    let output = &second.streams[0].outputs[0];
    let url = format!("sftp://127.0.0.1:{}/out/{two}", server.port());
    assert_eq!(output.location, url);
    assert_eq!(output.rows, 4);
    let sealed = OutputRef {
        kind: output.kind.clone(),
        location: output.location.clone(),
        sha256: output.digest.clone(),
        bytes: output.bytes,
    };
    let verdict = sink.verify_output(&sealed).await.unwrap();
    assert_eq!(verdict, Some(Verdict::Same));
    std::fs::write(out.join(&two), "id,name,version\n4,changed,1\n").unwrap();
    let verdict = sink.verify_output(&sealed).await.unwrap();
    assert_eq!(verdict, Some(Verdict::Changed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_leaves_the_earlier_delivery_and_no_temp_file() {
    let server = SftpServer::start();
    let (sink, out, one, before) = first_append(&server).await;

    // the second run's writer fails on its second batch, after the first was uploaded
    let failing: Arc<dyn Sink> = Arc::new(FailingSink::new(sink, 2));
    let report = deliver(rows(4, 3, 2, "b"), failing, WriteMode::Append).await;
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.rows_committed(), 0);
    assert!(report.streams[0].outputs.is_empty());
    assert_eq!(names(&out), [one.as_str()], "no file, no temp file added");
    assert_eq!(std::fs::read(out.join(&one)).unwrap(), before);
}

/// Watches `target` as a client's pick-up job would, as often as it can, until `stop`:
/// the line counts it saw, and how often there was no file.
fn poll(target: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(BTreeSet<usize>, u64)> {
    let target = target.to_path_buf();
    std::thread::spawn(move || {
        let (mut seen, mut missing) = (BTreeSet::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            match std::fs::read(&target) {
                Ok(b) => {
                    seen.insert(b.iter().filter(|&&c| c == b'\n').count());
                }
                Err(_) => missing += 1,
            }
        }
        (seen, missing)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_delivery_is_never_missing_nor_partial_for_a_polling_client() {
    let server = SftpServer::start();
    let target = server.root().join("out/rows.csv");
    let sink = sink(&login(&server, "path = \"out\"")).unwrap();
    let sizes = [1_000, 3_000];
    testkit::assert_succeeded(
        &deliver(
            rows(1, 1, sizes[0], "x"),
            sink.clone(),
            WriteMode::Overwrite,
        )
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = poll(&target, stop.clone());
    for i in 0..20 {
        let n = sizes[(i + 1) % 2];
        let report = deliver(rows(1, 1, n, "x"), sink.clone(), WriteMode::Overwrite).await;
        testkit::assert_succeeded(&report);
    }
    stop.store(true, Ordering::Relaxed);
    let (seen, missing) = watcher.join().unwrap();
    assert_eq!(missing, 0, "the file was missing while it was replaced");
    let whole: BTreeSet<usize> = sizes.iter().map(|n| n + 1).collect();
    assert_eq!(seen, whole, "only whole files, each version seen");
    assert_eq!(names(&server.root().join("out")), ["rows.csv"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_posix_rename_still_gets_the_delivery_replaced() {
    let server = SftpServer::denying("posix-rename");
    let out = server.root().join("out");
    let sink = sink(&login(&server, "path = \"out\"")).unwrap();
    for (first, n) in [(1, 3), (10, 2)] {
        let report = deliver(rows(first, 1, n, "x"), sink.clone(), WriteMode::Overwrite).await;
        testkit::assert_succeeded(&report);
    }
    assert_eq!(ids(&out.join("rows.csv")), [10, 11]);
    assert_eq!(names(&out), ["rows.csv"]);
    assert!(
        server.log().contains("posix-rename"),
        "the server was asked for posix-rename and refused it: {}",
        server.log()
    );
}
