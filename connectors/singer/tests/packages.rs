//! The Singer bridge with real packages from PyPI, installed by the bridge itself into a
//! venv cache shared by all test runs (`target/ferry-test-venvs`, or `$FERRY_VENV_DIR`):
//! meltanolabs-tap-postgres reading the local PostgreSQL into SQLite incrementally, and
//! Ferry's generate source into target-jsonl.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password, database `test`) and
//! PyPI reachable for the first install (about a minute per package; later runs reuse it).

mod common;

use std::path::Path;
use std::sync::Arc;

use ferry_connector_generate::{GenerateConfig, GenerateSource};
use ferry_connector_singer::{SingerSink, SingerSinkConfig, SingerSource};
use ferry_connector_sqlite::SqliteSink;
use ferry_core::{ConfigNode, Source, WriteMode};
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit as testkit;

use common::{drop_schema, fresh_schema, pg, shared_venvs};

#[tokio::test]
async fn tap_postgres_into_sqlite_incrementally() {
    let venvs = shared_venvs();
    let client = pg().await;
    // a schema of its own, so discovery lists only this test's table
    let schema = testkit::fresh_name("ferry_singer");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders (id int PRIMARY KEY, name text, amount numeric(10,2),
                 created timestamptz, day date, paid bool, meta jsonb);
             INSERT INTO {schema}.orders VALUES
                 (1, 'a', 1.50, '2024-01-01T10:00:00+02:00', '2024-01-01', true, '{{\"x\": 1}}'),
                 (2, 'b', 2.25, '2024-01-02T10:00:00Z', NULL, false, NULL),
                 (3, 'c', NULL, NULL, '2024-01-03', NULL, '[1, 2]');"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
        package = "meltanolabs-tap-postgres"
        version = "0.10.0"
        config = {{ host = "127.0.0.1", port = 5432, user = "postgres", password = "", database = "test", filter_schemas = ["{schema}"] }}
        "#
    );
    let tap = |toml: &str| {
        testkit::from_toml(toml, dir.path(), |c, ctx| {
            SingerSource::new(c, &ctx.base_dir)
        })
        .unwrap()
    };
    let started = std::time::Instant::now();
    let source = Arc::new(tap(&toml));
    source.check().await.unwrap();
    eprintln!(
        "tap-postgres ready (install + discovery) in {:.1}s, venvs in {}",
        started.elapsed().as_secs_f64(),
        venvs.display()
    );
    // a wrong port fails check with a kind the CLI can hint on, and the tap's own words
    let e = tap(&toml.replace("5432", "1")).check().await.unwrap_err();
    assert_eq!(e.kind(), ferry_core::ErrorKind::Unreachable, "{e}");
    assert!(
        e.to_string()
            .contains("`meltanolabs-tap-postgres` exited with status 1 during discovery"),
        "{e}"
    );
    assert!(
        e.to_string().contains("Connection refused"),
        "the stderr tail: {e}"
    );

    let stream = format!("{schema}-orders");
    let catalog = source.discover().await.unwrap();
    let info = catalog
        .get(&stream)
        .unwrap_or_else(|| panic!("{:?}", catalog.names()));
    assert_eq!(info.primary_key, vec!["id".to_string()]);
    let cols: Vec<String> = info
        .schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), ferry_core::FerryType::of(f).unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            "id int64",
            "name string",
            "amount float64",
            "created timestamp",
            "day date",
            "paid bool",
            "meta json"
        ]
    );

    let db = dir.path().join("out.db");
    let rt = testkit::runtime(
        source.clone(),
        Arc::new(SqliteSink::from_path(&db)),
        dir.path(),
    );
    let mut sc = StreamConfig::named(&stream);
    sc.destination = Some("orders".into());
    sc.cursor = Some("id".into());
    sc.mode = Some(WriteMode::Upsert);
    let opts = RunOptions::default();
    let run = || rt.sync(std::slice::from_ref(&sc), &opts, None, ("singer", "sqlite"));
    let report = run().await.unwrap();
    testkit::assert_succeeded(&report);
    assert_eq!(report.streams[0].rows_read, 3);
    let state = rt.state.get(&stream).unwrap();
    assert_eq!(
        state["bookmarks"][&stream]["replication_key_value"], 3,
        "{state}"
    );

    let sql = rusqlite::Connection::open(&db).unwrap();
    let (created, meta): (String, String) = sql
        .query_row("SELECT created, meta FROM orders WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        created.starts_with("2024-01-01T08:00:00"),
        "timestamps are UTC: {created}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&meta).unwrap()["x"],
        1
    );

    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.orders (id, name) VALUES (4, 'd'), (5, 'e');"
        ))
        .await
        .unwrap();
    let report = run().await.unwrap();
    testkit::assert_succeeded(&report);
    // Singer SDK taps re-send the row at the bookmark (`>=`): upsert makes that harmless
    assert_eq!(
        report.streams[0].rows_read, 3,
        "rows 4 and 5, and 3 again at the bookmark"
    );
    let count: i64 = sql
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 5);
    assert_eq!(
        rt.state.get(&stream).unwrap()["bookmarks"][&stream]["replication_key_value"],
        5
    );
    drop_schema(&client, &schema).await;
}

/// Ferry's generate source as `toml` configures it.
fn generate(dir: &Path, toml: &str) -> Arc<GenerateSource> {
    let gen: GenerateConfig = ConfigNode::from_toml(toml, dir).unwrap().parse().unwrap();
    Arc::new(GenerateSource::new(gen).unwrap())
}

#[tokio::test]
async fn generate_into_target_jsonl() {
    shared_venvs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let source = generate(
        dir.path(),
        "seed = 7\nstreams = [{ name = \"users\", preset = \"users\", rows = 250 }]",
    );
    let toml = format!(
        "package = \"target-jsonl\"\nversion = \"0.1.4\"\necho_timeout_secs = 1\nconfig = {{ destination_path = {:?}, do_timestamp_file = false }}\n",
        out.display().to_string()
    );
    let cfg: SingerSinkConfig = ConfigNode::from_toml(&toml, dir.path())
        .unwrap()
        .parse()
        .unwrap();
    let sink = Arc::new(SingerSink::new(cfg, dir.path()).unwrap());
    ferry_core::Sink::check(sink.as_ref()).await.unwrap();
    let rt = testkit::runtime(source.clone(), sink, dir.path());
    let report = testkit::sync(&rt, &[StreamConfig::named("users")], ("generate", "singer")).await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.streams[0].rows_committed, 250);

    let text = std::fs::read_to_string(out.join("users.jsonl")).unwrap();
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 250);
    // what the target wrote is what the source produced
    let expected = testkit::read_all(source.as_ref(), ferry_core::ReadRequest::full("users")).await;
    let schema = expected[0].schema();
    let mut want = Vec::new();
    for b in &expected {
        for row in 0..b.num_rows() {
            let mut m = serde_json::Map::new();
            for (i, f) in schema.fields().iter().enumerate() {
                let ty = ferry_core::FerryType::of(f).unwrap();
                m.insert(
                    f.name().clone(),
                    ferry_core::values::to_json(b.column(i).as_ref(), ty, row),
                );
            }
            want.push(serde_json::Value::Object(m));
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn generate_into_target_postgres() {
    shared_venvs();
    let client = pg().await;
    let schema = fresh_schema(&client, "ferry_target").await;
    let dir = tempfile::tempdir().unwrap();
    let source = generate(
        dir.path(),
        "seed = 3\nstreams = [{ name = \"orders\", preset = \"orders\", rows = 300 }]",
    );
    let toml = format!(
        r#"
        package = "meltanolabs-target-postgres"
        version = "0.8.1"
        echo_timeout_secs = 2
        config = {{ host = "127.0.0.1", port = 5432, user = "postgres", password = "", database = "test", default_target_schema = "{schema}" }}
        "#
    );
    let cfg: SingerSinkConfig = ConfigNode::from_toml(&toml, dir.path())
        .unwrap()
        .parse()
        .unwrap();
    let sink = Arc::new(SingerSink::new(cfg, dir.path()).unwrap());
    let started = std::time::Instant::now();
    ferry_core::Sink::check(sink.as_ref()).await.unwrap();
    eprintln!(
        "target-postgres ready (install) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let rt = testkit::runtime(source.clone(), sink, dir.path());
    let report = testkit::sync(
        &rt,
        &[StreamConfig::named("orders")],
        ("generate", "singer"),
    )
    .await;
    testkit::assert_succeeded(&report);
    assert_eq!(report.streams[0].rows_committed, 300);
    let sql = format!("SELECT count(*), count(DISTINCT id), sum(id)::bigint FROM {schema}.orders");
    let row = client.query_one(&sql, &[]).await.unwrap();
    let figures: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(figures, (300, 300, 300 * 301 / 2));
    drop_schema(&client, &schema).await;
}
