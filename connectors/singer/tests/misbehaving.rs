//! The Singer bridge against small taps and targets in `tests/fixtures` (Python scripts
//! run with `executable = …`): garbage on stdout, a tap that dies midway, a RECORD for an
//! undeclared stream, state resumed after a failure, and a target's state echo.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_connector_singer::{SingerSink, SingerSinkConfig, SingerSource};
use ferry_connector_sqlite::SqliteSink;
use ferry_core::{ConfigNode, Durability, FerryType, Sink, Source, WriteMode, WriteRequest};
use ferry_engine::report::{RunReport, Status};
use ferry_engine::{RunOptions, Runtime, StreamConfig};
use ferry_testkit as testkit;

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

fn fake_tap(dir: &Path, mode: &str, rows: u64) -> Arc<dyn Source> {
    let toml = format!(
        "executable = {:?}\nconfig = {{ mode = {mode:?}, rows = {rows} }}\n",
        fixture("fake_tap.py").display().to_string()
    );
    Arc::new(testkit::from_toml(&toml, dir, |c, ctx| SingerSource::new(c, &ctx.base_dir)).unwrap())
}

struct Setup {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        Setup { dir, db }
    }

    fn runtime(&self, source: Arc<dyn Source>) -> Runtime {
        testkit::runtime(
            source,
            Arc::new(SqliteSink::from_path(&self.db)),
            self.dir.path(),
        )
    }

    /// Runs the fake tap in `mode` over 6 rows, which fails; the runtime and the error.
    async fn failed_run(&self, mode: &str) -> (Runtime, String) {
        let rt = self.runtime(fake_tap(self.dir.path(), mode, 6));
        let report = sync(&rt).await;
        assert_eq!(report.status, Status::Failed);
        let err = report.streams[0].error.clone().unwrap();
        (rt, err)
    }

    fn ids(&self) -> Vec<i64> {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        let mut st = c.prepare("SELECT id FROM items ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

async fn sync(rt: &Runtime) -> RunReport {
    let mut sc = StreamConfig::named("items");
    sc.cursor = Some("id".into());
    sc.mode = Some(WriteMode::Upsert);
    testkit::sync(rt, std::slice::from_ref(&sc), ("singer", "sqlite")).await
}

#[tokio::test]
async fn a_tap_that_dies_midway_keeps_state_at_its_last_good_checkpoint() {
    let s = Setup::new();
    let (rt, err) = s.failed_run("die").await;
    assert!(err.contains("fake_tap.py"), "names the tap: {err}");
    assert!(err.contains("exited with status 3"), "{err}");
    assert!(err.contains("after stdout line 5"), "names the line: {err}");
    assert!(
        err.contains("fatal: connection lost"),
        "has the stderr tail: {err}"
    );
    assert_eq!(rt.state.get("items").unwrap()["bookmarks"]["items"], 3);
    assert_eq!(
        s.ids(),
        vec![1, 2, 3],
        "rows up to the last STATE are loaded"
    );

    // a rerun with a healthy tap resumes from the committed state
    let rt = s.runtime(fake_tap(s.dir.path(), "ok", 6));
    let report = sync(&rt).await;
    testkit::assert_succeeded(&report);
    assert_eq!(
        report.streams[0].rows_read, 3,
        "only ids 4..6 are read again"
    );
    assert_eq!(s.ids(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(rt.state.get("items").unwrap()["bookmarks"]["items"], 6);
}

#[tokio::test]
async fn garbage_on_stdout_fails_with_the_line_number() {
    let s = Setup::new();
    let (rt, err) = s.failed_run("garbage").await;
    assert!(err.contains("tap `fake_tap.py`"), "{err}");
    assert!(
        err.contains("stdout line 6"),
        "SCHEMA, 3 RECORDs, STATE, then garbage: {err}"
    );
    assert!(err.contains("this is not json"), "{err}");
    assert!(
        err.contains("fake tap: starting after id 0"),
        "stderr tail: {err}"
    );
    assert_eq!(rt.state.get("items").unwrap()["bookmarks"]["items"], 3);
    assert_eq!(s.ids(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_record_for_an_undeclared_stream_fails() {
    let s = Setup::new();
    let (rt, err) = s.failed_run("undeclared").await;
    assert!(
        err.contains("`ghost`") && err.contains("no SCHEMA"),
        "{err}"
    );
    assert!(err.contains("stdout line 6"), "{err}");
    assert_eq!(rt.state.get("items").unwrap()["bookmarks"]["items"], 3);
}

#[tokio::test]
async fn discovery_maps_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let source = fake_tap(dir.path(), "ok", 3);
    source.check().await.unwrap();
    let catalog = source.discover().await.unwrap();
    let info = catalog.get("items").unwrap();
    assert_eq!(info.primary_key, vec!["id".to_string()]);
    assert_eq!(info.cursor_candidates, vec!["id".to_string()]);
    assert_eq!(info.default_cursor.as_deref(), Some("id"));
    let types: Vec<_> = info
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), FerryType::of(f).unwrap(), f.is_nullable()))
        .collect();
    assert_eq!(types[0], ("id".into(), FerryType::Int64, false));
    assert_eq!(types[2], ("at".into(), FerryType::Timestamp, true));
    assert_eq!(types[3], ("secret_ok".into(), FerryType::Bool, true));
    testkit::source_reads_match_discover(source.as_ref(), 100).await;
}

#[tokio::test]
async fn a_missing_tap_program_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "executable = \"bin/no-such-tap\"";
    let tap = testkit::from_toml(toml, dir.path(), |c, ctx| {
        SingerSource::new(c, &ctx.base_dir)
    });
    let e = tap.unwrap().check().await.unwrap_err();
    assert_eq!(e.kind(), ferry_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no-such-tap"), "{e}");
}

/// The fake target, waiting `echo_timeout_secs` for an echo of each flush's state.
fn fake_target(dir: &Path, echo_timeout_secs: u32, extra: &str) -> SingerSink {
    let toml = format!(
        "executable = {:?}\necho_timeout_secs = {echo_timeout_secs}\nconfig = {{ path = {:?}{extra} }}\n",
        fixture("fake_target.py").display().to_string(),
        dir.join("out").display().to_string()
    );
    let cfg: SingerSinkConfig = ConfigNode::from_toml(&toml, dir).unwrap().parse().unwrap();
    SingerSink::new(cfg, dir).unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_target_that_echoes_state_makes_flushes_durable() {
    let dir = tempfile::tempdir().unwrap();
    // a target that echoes answers once Python runs, which under load takes seconds
    let sink = fake_target(dir.path(), 10, ", echo = true");
    sink.check().await.unwrap();
    let batch = testkit::simple_batch(1, 10, "x");
    let mut w = sink
        .open(testkit::request(
            "things",
            batch.schema(),
            WriteMode::Append,
        ))
        .await
        .unwrap();
    w.write(batch.clone()).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::Durable);
    let out = dir.path().join("out/things.jsonl");
    assert_eq!(
        lines(&out).len(),
        10,
        "durable means the target has the rows now"
    );
    w.write(testkit::simple_batch(11, 5, "y")).await.unwrap();
    assert_eq!(w.flush().await.unwrap(), Durability::Durable);
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 15);
    let rows = lines(&out);
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[14]["id"], 15);
}

#[tokio::test]
async fn a_target_that_echoes_only_at_the_end_is_durable_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let sink = fake_target(dir.path(), 1, "");
    let batch = testkit::simple_batch(1, 3, "x");
    let request = WriteRequest {
        stream: "things".into(),
        schema: batch.schema(),
        mode: WriteMode::Append,
        run_id: "r1".into(),
        deletes: None,
    };
    let mut w = sink.open(request.clone()).await.unwrap();
    w.write(batch.clone()).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
    assert!(
        started.elapsed().as_secs_f64() >= 0.9,
        "waited for the echo"
    );
    let started = std::time::Instant::now();
    assert_eq!(w.flush().await.unwrap(), Durability::AtClose);
    assert!(
        started.elapsed().as_secs_f64() < 0.5,
        "later flushes do not wait again"
    );
    w.close().await.unwrap();

    // a target that fails fails close, with its stderr
    let sink = fake_target(dir.path(), 1, ", fail_on_id = 2");
    let mut w = sink.open(request).await.unwrap();
    let r = w.write(batch).await;
    let e = match r {
        Err(e) => e,
        Ok(()) => w.close().await.unwrap_err(),
    };
    assert!(e.to_string().contains("cannot load id 2"), "{e}");
    assert!(e.to_string().contains("fake_target.py"), "{e}");
}

#[tokio::test]
async fn a_sync_toml_with_type_singer_works_through_the_registry() {
    let mut r = ferry_core::Registry::new();
    ferry_connector_singer::register(&mut r);
    ferry_connector_sqlite::register(&mut r);
    let spec = r.get("singer").unwrap().spec();
    assert!(
        spec["source"]["properties"]["package"].is_object(),
        "{spec}"
    );
    assert!(
        spec["destination"]["properties"]["echo_timeout_secs"].is_object(),
        "{spec}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.toml");
    let text = format!(
        "[source]\ntype = \"singer\"\nexecutable = {:?}\nconfig = {{ rows = 4 }}\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"items\"\ncursor = \"id\"\n",
        fixture("fake_tap.py").display().to_string()
    );
    std::fs::write(&path, &text).unwrap();
    let ctx = ferry_core::secret::ResolveContext {
        base_dir: dir.path().to_path_buf(),
        vault: None,
    };
    let cfg = ferry_engine::SyncConfig::load(&path, ctx.clone()).unwrap();
    let source = r.build_source(&cfg.source).unwrap();
    source.check().await.unwrap();
    let sink = r.build_sink(&cfg.destination).unwrap();
    let rt = testkit::runtime(source, sink, dir.path());
    let report = rt
        .sync(
            &cfg.streams,
            &RunOptions::default(),
            Some(&cfg),
            ("singer", "sqlite"),
        )
        .await
        .unwrap();
    testkit::assert_succeeded(&report);
    assert_eq!(report.rows_committed(), 4);

    std::fs::write(&path, text.replace("executable", "executabel")).unwrap();
    let cfg = ferry_engine::SyncConfig::load(&path, ctx).unwrap();
    let e = r.build_source(&cfg.source).err().unwrap();
    assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid);
    assert!(e.to_string().contains("executabel"), "{e}");
}

#[tokio::test]
async fn a_limited_run_stops_the_tap_and_saves_no_state() {
    let s = Setup::new();
    let rt = s.runtime(fake_tap(s.dir.path(), "ok", 100_000));
    let mut sc = StreamConfig::named("items");
    sc.cursor = Some("id".into());
    let opts = RunOptions {
        limit: Some(5),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = rt
        .sync(std::slice::from_ref(&sc), &opts, None, ("singer", "sqlite"))
        .await
        .unwrap();
    testkit::assert_succeeded(&report);
    // a trial: 5 rows read and written through SQLite, then rolled back
    assert_eq!(report.streams[0].rows_read, 5);
    assert_eq!(report.streams[0].rows_committed, 0);
    assert!(
        rt.state.get("items").is_none(),
        "a trial run saves no state"
    );
    assert!(
        started.elapsed().as_secs() < 20,
        "the tap was stopped, not read to the end"
    );
}
