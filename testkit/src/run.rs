//! Running streams through the runtime in tests.

use ferry_engine::config::StreamConfig;
use ferry_engine::report::{RunReport, Status};
use ferry_engine::runtime::{RunOptions, Runtime};

/// Runs `streams` once with default options and no config file; `names` are the source's
/// and the destination's connector names, for the report. Fails the test when the run
/// cannot start.
pub async fn sync(rt: &Runtime, streams: &[StreamConfig], names: (&str, &str)) -> RunReport {
    sync_with(rt, streams, &RunOptions::default(), names).await
}

/// [`sync`] with a full refresh (`ferry sync --full-refresh`): saved state is ignored.
pub async fn sync_full_refresh(
    rt: &Runtime,
    streams: &[StreamConfig],
    names: (&str, &str),
) -> RunReport {
    let opts = RunOptions {
        full_refresh: true,
        ..Default::default()
    };
    sync_with(rt, streams, &opts, names).await
}

async fn sync_with(
    rt: &Runtime,
    streams: &[StreamConfig],
    opts: &RunOptions,
    names: (&str, &str),
) -> RunReport {
    rt.sync(streams, opts, None, names)
        .await
        .unwrap_or_else(|e| panic!("the sync does not start: {e}"))
}

/// Fails the test, with the streams' errors, unless the run succeeded.
pub fn assert_succeeded(report: &RunReport) {
    let errors: Vec<_> = report.streams.iter().map(|s| &s.error).collect();
    assert_eq!(report.status, Status::Succeeded, "{errors:?}");
}

/// The error of the failed run's first stream, which must name `stream` (`stream <name>`).
pub fn failed_stream(report: &RunReport, stream: &str) -> String {
    assert_eq!(report.status, Status::Failed, "{report:?}");
    let error = report.streams[0].error.clone().expect("an error");
    eprintln!("the stream failed with: {error}");
    assert!(
        error.contains(&format!("stream {stream}")),
        "names the stream: {error}"
    );
    error
}
