//! Network faults between Ferry and PostgreSQL, injected by a TCP proxy
//! ([`ferry_testkit::fault`]): added latency, connections cut or reset while
//! connecting, in the middle of a COPY read and of a COPY write, and half-open
//! connections that hang. Each test drives a real sync through the runtime on the real
//! server at 127.0.0.1:5432 (`FERRY_TEST_PG_URL` overrides it) and checks what a person
//! would: the data is whole, or the error names the stream, what failed and the last
//! committed position, and a rerun without faults completes without duplicates.

mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_whole, failure, src_fixture, Fixture, ROWS};
use ferry_connector_postgres::{ConnSettings, PostgresSink, PostgresSource};
use ferry_core::{Sink, Source};
use ferry_engine::report::RunReport;
use ferry_engine::Runtime;
use ferry_testkit as testkit;
use ferry_testkit::fault::{Direction, Ending, FaultProxy};

const BATCH: usize = 1_000;
/// Bytes let through before a fault mid-stream: past discovery and the read's start,
/// well before the end of the data.
const MID: u64 = 300_000;
/// The timeout the hang tests configure.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long a sync may take before the test fails rather than hangs.
const WITHIN: Duration = Duration::from_secs(60);

fn server_addr(s: &ConnSettings) -> SocketAddr {
    (s.host.as_str(), s.port)
        .to_socket_addrs()
        .expect("the test server's address resolves")
        .next()
        .expect("an address")
}

/// A proxy in front of the fixture's server.
async fn proxy(f: &Fixture) -> FaultProxy {
    FaultProxy::start(server_addr(&f.server))
        .await
        .expect("the proxy starts")
}

/// The fixture's settings pointed at `proxy`, with the test's short timeouts.
fn via(f: &Fixture, proxy: &FaultProxy) -> ConnSettings {
    let mut s = f.server.clone();
    s.host = "127.0.0.1".into();
    s.port = proxy.port();
    s.connect_timeout = TIMEOUT;
    s.read_timeout = TIMEOUT;
    s
}

fn source(f: &Fixture, s: ConnSettings) -> Arc<dyn Source> {
    Arc::new(PostgresSource::from_settings(s, &[&f.schema]))
}

fn sink(f: &Fixture, s: ConnSettings) -> Arc<dyn Sink> {
    Arc::new(PostgresSink::from_settings(s, &f.schema))
}

/// Which side of a sync connects through the proxy (the other connects directly).
#[derive(Clone, Copy)]
enum Side {
    Source,
    Sink,
    Both,
}

/// A runtime whose `side` connects through `p`, state in a new folder (kept for a rerun).
fn runtime_via(f: &Fixture, p: &FaultProxy, side: Side) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = match side {
        Side::Source => (via(f, p), f.server.clone()),
        Side::Sink => (f.server.clone(), via(f, p)),
        Side::Both => (via(f, p), via(f, p)),
    };
    let rt = common::runtime(source(f, src), sink(f, dst), dir.path(), BATCH);
    (rt, dir)
}

/// A sync, failing the test if it has not ended within 60 s.
async fn sync(rt: &Runtime) -> RunReport {
    common::sync_upsert(rt, WITHIN)
        .await
        .expect("the sync starts")
}

/// A rerun without faults completes, from the committed position, without duplicates.
async fn rerun_completes(f: &Fixture, dir: &std::path::Path) {
    let direct = f.server.clone();
    let rt = common::runtime(source(f, direct.clone()), sink(f, direct), dir, BATCH);
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_whole(f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_changes_nothing() {
    let f = src_fixture().await;
    let p = proxy(&f).await;
    p.set_latency(Duration::from_millis(2));
    let dir = tempfile::tempdir().unwrap();
    let mut s = via(&f, &p);
    s.read_timeout = Duration::from_secs(60);
    let rt = common::runtime(source(&f, s.clone()), sink(&f, s), dir.path(), BATCH);
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), ROWS as u64);
    assert_whole(&f).await;
    let st = p.stats();
    assert!(
        st.to_client > 1_000_000 && st.to_target > 1_000_000,
        "{st:?}"
    );
}

/// A sync whose `side` connects through a proxy that ends the connection (`ending`) after
/// MID bytes `towards` one end: the stream fails saying the connection was lost. The
/// proxy, the state folder, the report and the stream's error.
async fn cut_mid(
    f: &Fixture,
    towards: Direction,
    side: Side,
    ending: Ending,
) -> (FaultProxy, tempfile::TempDir, RunReport, String) {
    let failed = failing(f, side, |p| p.cut_after(towards, MID, ending, 1)).await;
    let error = &failed.3;
    assert!(
        error.contains("was lost"),
        "says the connection was lost: {error}"
    );
    failed
}

/// A sync whose `side` connects through a proxy with `fault`, which fails the stream: the
/// proxy, the state folder, the report and the stream's error.
async fn failing(
    f: &Fixture,
    side: Side,
    fault: impl FnOnce(&FaultProxy),
) -> (FaultProxy, tempfile::TempDir, RunReport, String) {
    let p = proxy(f).await;
    fault(&p);
    let (rt, dir) = runtime_via(f, &p, side);
    let report = sync(&rt).await;
    let error = failure(&report);
    (p, dir, report, error)
}

/// A connection cut or reset while logging in is retried: the sync does not notice.
async fn cut_at_connect(ending: Ending) {
    let f = src_fixture().await;
    let p = proxy(&f).await;
    // the first connection (discovery's) is cut at its first answer; later ones pass
    p.cut_after(Direction::ToClient, 0, ending, 1);
    let (rt, _dir) = runtime_via(&f, &p, Side::Both);
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_eq!(p.stats().cut, 1, "the fault happened");
    assert_whole(&f).await;
}

ferry_testkit::cut_tests! {
    cut_at_connect => connection_dropped_while_connecting_is_retried, connection_reset_while_connecting_is_retried;
}

/// The source's connection ends in the middle of the COPY: rows were already handed
/// on, so nothing retries; the stream fails with its position and a rerun completes.
async fn cut_mid_read(ending: Ending) {
    let f = src_fixture().await;
    let (p, dir, report, error) = cut_mid(&f, Direction::ToClient, Side::Source, ending).await;
    if ending == Ending::Close {
        assert!(
            error.contains("last committed: {"),
            "some batches were committed: {error}"
        );
    } else {
        // a reset discards what the client had not read yet from its socket, so how many
        // batches got through before it depends on timing; the resume point is named
        assert!(
            error.contains("last committed: {") || error.contains("nothing committed yet"),
            "names where a rerun resumes: {error}"
        );
    }
    assert!(report.streams[0].rows_committed < ROWS as u64);
    drop(p);
    rerun_completes(&f, dir.path()).await;
}

ferry_testkit::cut_tests! {
    cut_mid_read => connection_dropped_mid_read_fails_with_position_and_rerun_completes, connection_reset_mid_read_fails_with_position_and_rerun_completes;
}

/// The destination's connection ends in the middle of a COPY of rows: the rows since
/// the last flush are lost with it, the stream fails saying so, and a rerun completes.
async fn cut_mid_write(ending: Ending) {
    let f = src_fixture().await;
    let (p, dir, _, error) = cut_mid(&f, Direction::ToTarget, Side::Sink, ending).await;
    assert!(
        error.contains("since the last flush"),
        "says what happened to the unflushed rows: {error}"
    );
    assert!(error.contains("table dst"), "names the table: {error}");
    drop(p);
    rerun_completes(&f, dir.path()).await;
}

ferry_testkit::cut_tests! {
    cut_mid_write => connection_dropped_mid_write_fails_with_position_and_rerun_completes, connection_reset_mid_write_fails_with_position_and_rerun_completes;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_while_connecting_times_out() {
    let f = src_fixture().await;
    let p = proxy(&f).await;
    p.hang();
    let (rt, _dir) = runtime_via(&f, &p, Side::Source);
    let e = common::sync_upsert(&rt, WITHIN)
        .await
        .expect_err("discovery cannot connect");
    eprintln!("the sync failed with: {e}");
    assert!(
        e.to_string()
            .contains("timed out: no login within 2 s (`connect_timeout_secs`)"),
        "{e}"
    );
    // connecting is retried: every attempt was accepted and hung
    assert!(p.stats().accepted > 1, "{:?}", p.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_read_times_out_with_position() {
    let f = src_fixture().await;
    let (p, dir, _, error) =
        failing(&f, Side::Source, |p| p.hang_after(Direction::ToClient, MID)).await;
    assert!(
        error.contains("did not answer within 2 s while reading COPY data"),
        "says what timed out: {error}"
    );
    assert!(error.contains("last committed: {"), "{error}");
    drop(p);
    rerun_completes(&f, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_mid_write_times_out_with_position() {
    let f = src_fixture().await;
    let (p, dir, _, error) =
        failing(&f, Side::Sink, |p| p.hang_after(Direction::ToTarget, MID)).await;
    // where it hangs depends on socket buffers: sending COPY data, or waiting for the
    // COPY's end or the COMMIT to be acknowledged
    assert!(
        error.contains("did not answer within 2 s while writing COPY data")
            || error.contains("did not answer within 2 s while committing"),
        "says what timed out: {error}"
    );
    assert!(error.contains("table dst"), "{error}");
    drop(p);
    rerun_completes(&f, dir.path()).await;
}
