//! A canary secret in a bridged tap's config reaches the tap (which checks its hash and
//! prints the value on stderr, as a careless tap would) but never appears in an error, in
//! logs captured at trace level, or in any file left on disk after the run.
//!
//! One test in its own binary: it points TMPDIR at a folder of its own (the client folder
//! is in it too) to inspect what the bridge leaves there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_connector_singer::{SingerSource, SingerSourceConfig};
use ferry_connector_sqlite::SqliteSink;
use ferry_core::ConfigNode;
use ferry_engine::report::Status;
use ferry_engine::StreamConfig;
use ferry_testkit as testkit;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn sha256_hex(s: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            s,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn canary_secret_reaches_the_tap_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("TMPDIR", tmp.path());
    let logs = testkit::CapturedLog::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let canary = format!("canary-{}", testkit::fresh_name("pw"));
    std::env::set_var("FERRY_TEST_CANARY", &canary);
    let tap = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_tap.py");
    let work = tmp.path().join("client");
    std::fs::create_dir_all(&work).unwrap();
    let source = |mode: &str| {
        let toml = format!(
            "executable = {:?}\nconfig = {{ mode = {mode:?}, rows = 6, password = \"${{env:FERRY_TEST_CANARY}}\", expect_sha256 = {:?} }}\n",
            tap.display().to_string(),
            sha256_hex(&canary)
        );
        let cfg: SingerSourceConfig = ConfigNode::from_toml(&toml, &work)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            !format!("{cfg:?}").contains(&canary),
            "the config prints redacted"
        );
        Arc::new(SingerSource::new(cfg, &work).unwrap())
    };
    let db = work.join("out.db");
    let mut sc = StreamConfig::named("items");
    sc.cursor = Some("id".into());
    sc.mode = Some(ferry_core::WriteMode::Upsert);

    // a healthy run: the tap got the secret, from a private file that is gone afterwards
    let rt = testkit::runtime(source("ok"), Arc::new(SqliteSink::from_path(&db)), &work);
    let report = testkit::sync(&rt, std::slice::from_ref(&sc), ("singer", "sqlite")).await;
    testkit::assert_succeeded(&report);
    let sql = rusqlite::Connection::open(&db).unwrap();
    let (ok, mode, path): (bool, String, String) = sql
        .query_row(
            "SELECT min(secret_ok), min(config_mode), min(config_path) FROM items",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(ok, "the tap received the canary");
    assert_eq!(mode, "0o600", "the tap's config file is private");
    assert!(
        !Path::new(&path).exists(),
        "the tap's config file is deleted after the run"
    );
    assert!(
        Path::new(&path).starts_with(work.join(".ferry/tmp")),
        "the tap's config file is in the client folder's .ferry/tmp: {path}"
    );

    // failing runs: the tap prints the secret on stderr, then dies
    for mode in ["die", "fail_at_end", "garbage"] {
        let rt = testkit::runtime(source(mode), Arc::new(SqliteSink::from_path(&db)), &work);
        let report =
            testkit::sync_full_refresh(&rt, std::slice::from_ref(&sc), ("singer", "sqlite")).await;
        assert_eq!(report.status, Status::Failed, "{mode}");
        let err = report.streams[0].error.clone().unwrap();
        assert!(
            !err.contains(&canary),
            "{mode}: the error leaks the secret: {err}"
        );
        assert!(
            err.contains("password=[redacted]"),
            "{mode}: the stderr tail is there, redacted: {err}"
        );
    }

    let logs = logs.text();
    assert!(
        logs.contains("password=[redacted]"),
        "the tap's stderr is logged: {logs}"
    );
    assert!(!logs.contains(&canary), "the logs leak the secret");

    let mut files = Vec::new();
    files_under(tmp.path(), &mut files);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains("-tap-"),
            "a bridge file was left behind: {}",
            f.display()
        );
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&canary),
            "{} holds the secret",
            f.display()
        );
    }
    assert!(files.iter().any(|f| f.ends_with("state.json")), "{files:?}");
}
