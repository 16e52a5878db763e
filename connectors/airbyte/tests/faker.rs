//! The Airbyte bridge with the real `airbyte-source-faker` package from PyPI, installed by
//! the bridge into the venv cache shared by all test runs (`target/ferry-test-venvs`, or
//! `$FERRY_VENV_DIR`), loaded into the local PostgreSQL through Ferry's runtime, with its
//! state resumed on the second run; and a small fake connector (`tests/fixtures`) that
//! reports an error through a TRACE message.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password, database `test`) and
//! PyPI reachable for the first install (about two minutes; later runs reuse it).

#[path = "../../singer/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_connector_airbyte::{AirbyteSource, AirbyteSourceConfig};
use ferry_connector_postgres::{ConnSettings, PostgresSink};
use ferry_core::{ConfigNode, ErrorKind, ReadRequest, Source, WriteMode};
use ferry_engine::report::Status;
use ferry_engine::StreamConfig;
use ferry_testkit as testkit;

use common::{drop_schema, fresh_schema, pg, shared_venvs};

/// The rows of `table` (schema-qualified).
async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

fn faker(dir: &Path, config: &str) -> Arc<AirbyteSource> {
    let toml = format!(
        "package = \"airbyte-source-faker\"\nversion = \"7.2.1\"\nconfig = {{ {config} }}\n"
    );
    let cfg: AirbyteSourceConfig = ConfigNode::from_toml(&toml, dir).unwrap().parse().unwrap();
    Arc::new(AirbyteSource::new(cfg, dir).unwrap())
}

#[tokio::test]
async fn faker_into_postgres_resumes_its_state() {
    shared_venvs();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let config =
        "count = 20, seed = 7, records_per_slice = 6, always_updated = false, parallelism = 1";
    let source = faker(dir.path(), config);
    source.check().await.unwrap();
    eprintln!(
        "source-faker ready (install + spec + check) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let spec = source.connector_spec().await.unwrap();
    assert!(spec["properties"]["count"].is_object(), "{spec}");

    let catalog = source.discover().await.unwrap();
    assert_eq!(catalog.names(), ["products", "users", "purchases"]);
    let users = catalog.get("users").unwrap();
    assert_eq!(users.primary_key, vec!["id".to_string()]);
    assert_eq!(users.default_cursor.as_deref(), Some("updated_at"));
    let cols: Vec<String> = users
        .schema
        .fields()
        .iter()
        .take(4)
        .map(|f| format!("{} {}", f.name(), ferry_core::FerryType::of(f).unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            "id int64",
            "created_at timestamp",
            "updated_at timestamp",
            "name string"
        ]
    );

    let client = pg().await;
    let schema = fresh_schema(&client, "ferry_airbyte").await;
    let settings = ConnSettings::from_url("postgres://postgres@127.0.0.1:5432/test").unwrap();
    let sink = Arc::new(PostgresSink::from_settings(settings, &schema));
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let mut sc = StreamConfig::named("users");
    sc.incremental = Some(true);
    sc.mode = Some(WriteMode::Upsert);

    let rt = testkit::runtime(source.clone(), sink.clone(), &state_dir);
    let report = testkit::sync(&rt, std::slice::from_ref(&sc), ("airbyte", "postgres")).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.streams[0].rows_read, 20);
    assert_eq!(
        report.streams[0].rows_expected,
        Some(20),
        "the TRACE estimate reaches Ferry"
    );
    let state = rt.state.get("users").unwrap();
    assert_eq!(state["type"], "STREAM", "{state}");
    assert_eq!(
        state["stream"]["stream_state"]["loop_offset"], 20,
        "{state}"
    );
    let sql = format!("SELECT count(*), count(DISTINCT id), max(id) FROM {schema}.users");
    let row = client.query_one(&sql, &[]).await.unwrap();
    let figures: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(figures, (20, 20, 20));
    let address: String = client
        .query_one(
            &format!("SELECT address::text FROM {schema}.users WHERE id = 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        address.contains("city"),
        "nested objects arrive as JSON: {address}"
    );

    // second run, a fresh source process: the saved state goes back as --state, and faker
    // (always_updated = false) then has nothing new; without the state it would send all 20
    let rt = testkit::runtime(faker(dir.path(), config), sink.clone(), &state_dir);
    let report = testkit::sync(&rt, std::slice::from_ref(&sc), ("airbyte", "postgres")).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.streams[0].rows_read, 0, "state was resumed");
    // and a full refresh ignores it
    let report =
        testkit::sync_full_refresh(&rt, std::slice::from_ref(&sc), ("airbyte", "postgres")).await;
    assert_eq!(
        report.streams[0].rows_read, 20,
        "{:?}",
        report.streams[0].error
    );
    assert_eq!(
        count(&client, &format!("{schema}.users")).await,
        20,
        "upsert by id"
    );
    drop_schema(&client, &schema).await;
}

fn fake_source(dir: &Path, config: &str) -> Arc<AirbyteSource> {
    let exe: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_source.py");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let toml = format!(
        "executable = {:?}\nconfig = {{ {config} }}\n",
        exe.display().to_string()
    );
    let cfg: AirbyteSourceConfig = ConfigNode::from_toml(&toml, dir).unwrap().parse().unwrap();
    Arc::new(AirbyteSource::new(cfg, dir).unwrap())
}

#[tokio::test]
async fn check_names_missing_settings_and_failed_connections() {
    let dir = tempfile::tempdir().unwrap();
    let e = fake_source(dir.path(), "").check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(
        e.to_string().contains("`api_key` (The key of the fake API"),
        "{e}"
    );
    let e = fake_source(dir.path(), "api_key = \"wrong\"")
        .check()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("check failed: the key is wrong"),
        "{e}"
    );
    fake_source(dir.path(), "api_key = \"right\"")
        .check()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stream_without_a_name_is_left_out_and_the_others_read_their_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let source = fake_source(dir.path(), "api_key = \"right\", nameless_first = true");
    let catalog = source.discover().await.unwrap();
    let names: Vec<_> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["items"]);
    // the fake source fails a read whose configured catalog is not `items`'s entry
    let batches = testkit::read_all(&*source, ReadRequest::full("items")).await;
    assert_eq!(testkit::ids(&batches), (1..=6).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_trace_error_fails_the_read_and_keeps_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let source = fake_source(dir.path(), "api_key = \"right\", fail_after = 4");
    let sink = Arc::new(ferry_connector_postgres::PostgresSink::from_settings(
        ConnSettings::from_url("postgres://postgres@127.0.0.1:5432/test").unwrap(),
        "public",
    ));
    let name = testkit::fresh_name("ferry_airbyte_fail");
    let mut sc = StreamConfig::named("items");
    sc.destination = Some(name.clone());
    sc.cursor = Some("id".into());
    let rt = testkit::runtime(source, sink, dir.path());
    let report = testkit::sync(&rt, std::slice::from_ref(&sc), ("airbyte", "postgres")).await;
    assert_eq!(report.status, Status::Failed);
    let err = report.streams[0].error.clone().unwrap();
    assert!(
        err.contains("reported an error: the fake API went away"),
        "{err}"
    );
    assert!(err.contains("stdout line 7"), "{err}");
    assert!(
        err.contains("fake source: fetched page 2"),
        "the LOG tail: {err}"
    );
    assert_eq!(
        rt.state.get("items").unwrap()["stream"]["stream_state"]["id"],
        3
    );
    let client = pg().await;
    assert_eq!(
        count(&client, &format!("public.{name}")).await,
        3,
        "rows up to the last state are loaded"
    );
    client
        .batch_execute(&format!("DROP TABLE public.{name}"))
        .await
        .unwrap();
}
