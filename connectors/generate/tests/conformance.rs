//! The `generate` source against the conformance kit and its own contract: determinism,
//! incremental resume, limits and config errors.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_connector_generate::{register, GenerateConfig, GenerateSource, NAME};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::{Int64Type, TimestampMicrosecondType};
use ferry_core::arrow_array::{Array, RecordBatch};
use ferry_core::{ConfigNode, ErrorKind, FerryType, Message, ReadRequest, Registry, Source};
use ferry_engine::report::Status;
use ferry_engine::{RunOptions, StreamConfig};
use ferry_testkit::{self as testkit, messages, rows, MemorySink, Row};
use futures::StreamExt;

fn config(toml: &str) -> GenerateConfig {
    ConfigNode::from_toml(toml, ".")
        .unwrap()
        .parse::<GenerateConfig>()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn source(toml: &str) -> Arc<GenerateSource> {
    Arc::new(GenerateSource::new(config(toml)).unwrap_or_else(|e| panic!("{e}")))
}

fn one_stream(preset: &str, rows: u64) -> Arc<GenerateSource> {
    source(&format!(
        "streams = [{{ name = \"s\", preset = \"{preset}\", rows = {rows} }}]"
    ))
}

async fn batches(source: &dyn Source, request: ReadRequest) -> Vec<RecordBatch> {
    testkit::read_all(source, request).await
}

fn full(stream: &str, batch_size: usize) -> ReadRequest {
    let mut r = ReadRequest::full(stream);
    r.batch_size = batch_size;
    r
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

const EVERY_KIND: &str = r#"
seed = 7
streams = [
  { name = "users", preset = "users", rows = 300 },
  { name = "orders", preset = "orders", rows = 300 },
  { name = "bench", preset = "bench", rows = 300 },
  { name = "wide", rows = 300, columns = [
      { name = "id", type = "int64" }, { name = "seq", kind = "sequence" },
      { name = "n", kind = "int", min = -5, max = 5 }, { name = "f", kind = "float", null_fraction = 0.5 },
      { name = "d", type = "decimal(38,10)", min = -1e20, max = 1e20 },
      { name = "flag", kind = "bool", null_fraction = 0.1 },
      { name = "first", kind = "first_name" }, { name = "last", kind = "last_name" },
      { name = "full", kind = "name" }, { name = "email", kind = "email" }, { name = "cc", kind = "country" },
      { name = "cn", kind = "country_name" }, { name = "cur", kind = "currency" }, { name = "st", kind = "status" },
      { name = "w", type = "string" }, { name = "sentence", kind = "sentence", null_fraction = 0.3 },
      { name = "note", kind = "note" }, { name = "uuid", kind = "uuid" }, { name = "blob", type = "binary" },
      { name = "day", type = "date" }, { name = "at", type = "timestamp" }, { name = "doc", type = "json" },
      { name = "doc_text", kind = "json", type = "string" }, { name = "items", kind = "order_items" },
      { name = "total", kind = "order_total", type = "decimal(10,3)" },
  ] },
]
"#;

#[tokio::test]
async fn reads_match_discover_for_every_preset_and_kind() {
    let s = source(EVERY_KIND);
    testkit::source_reads_match_discover(s.as_ref(), 10_000).await;
    let catalog = s.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["users", "orders", "bench", "wide"]);
    for info in &catalog.streams {
        assert_eq!(info.primary_key, vec!["id"]);
        assert_eq!(info.default_cursor.as_deref(), Some("id"));
        assert!(info.supports_incremental());
        let id = info.schema.field(0);
        assert_eq!((id.name().as_str(), id.is_nullable()), ("id", false));
        assert_eq!(
            batches(s.as_ref(), full(&info.name, 64))
                .await
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>(),
            300
        );
    }
    let cursors = |n: &str| catalog.get(n).unwrap().cursor_candidates.clone();
    assert_eq!(cursors("users"), vec!["id", "updated_at"]);
    assert_eq!(cursors("orders"), vec!["id", "ordered_at"]);
    assert_eq!(cursors("bench"), vec!["id", "created_at"]);
    assert_eq!(cursors("wide"), vec!["id", "seq", "at"]);
    let wide = catalog.get("wide").unwrap();
    let ty = |n: &str| {
        FerryType::of(wide.schema.field_with_name(n).unwrap())
            .unwrap()
            .to_string()
    };
    assert_eq!(ty("d"), "decimal(38,10)");
    assert_eq!(ty("doc"), "json");
    assert_eq!(ty("doc_text"), "string");
    assert_eq!(ty("items"), "json");
    assert_eq!(ty("total"), "decimal(10,3)");
    assert!(wide.schema.field_with_name("f").unwrap().is_nullable());
    assert!(!wide.schema.field_with_name("n").unwrap().is_nullable());
}

#[tokio::test]
async fn presets_have_the_documented_columns() {
    let s = source(EVERY_KIND);
    let catalog = s.discover().await.unwrap();
    let cols = |n: &str| -> Vec<String> {
        catalog
            .get(n)
            .unwrap()
            .schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), FerryType::of(f).unwrap()))
            .collect()
    };
    assert_eq!(
        cols("users"),
        [
            "id int64",
            "name string",
            "email string",
            "country string",
            "signup_date date",
            "is_active bool",
            "balance decimal(12,2)",
            "updated_at timestamp"
        ]
    );
    assert_eq!(
        cols("orders"),
        [
            "id int64",
            "user_id int64",
            "amount decimal(12,2)",
            "currency string",
            "status string",
            "ordered_at timestamp",
            "items json",
            "note string"
        ]
    );
    assert_eq!(
        cols("bench"),
        [
            "id int64",
            "name string",
            "email string",
            "amount float64",
            "quantity int64",
            "created_at timestamp",
            "active bool",
            "country string"
        ]
    );
}

#[tokio::test]
async fn values_look_real_and_hang_together() {
    let s = source(EVERY_KIND);
    let users = rows(&batches(s.as_ref(), full("users", 100)).await);
    let mut emails = HashSet::new();
    for u in &users {
        let name = u["name"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .replace(' ', ".");
        let email = u["email"].as_str().unwrap();
        assert!(
            email.starts_with(&format!("{name}{}@", u["id"])),
            "{email} does not belong to {name}"
        );
        assert!(
            email.ends_with(".example") || email.contains("@example."),
            "{email}"
        );
        assert!(emails.insert(email.to_string()), "duplicate email {email}");
        assert_eq!(u["country"].as_str().unwrap().len(), 2);
        let day = u["signup_date"].as_str().unwrap();
        assert!(("2015-01-01".."2020-01-01").contains(&day), "{day}");
    }
    let active = users.iter().filter(|u| u["is_active"] == true).count();
    assert!((90..210).contains(&active), "{active} of 300 active");

    let orders = rows(&batches(s.as_ref(), full("orders", 100)).await);
    let notes = orders.iter().filter(|o| !o["note"].is_null()).count();
    assert!(
        (40..150).contains(&notes),
        "{notes} of 300 orders have a note"
    );
    for o in &orders {
        let user = o["user_id"].as_i64().unwrap();
        assert!((1..=1000).contains(&user));
        let items = o["items"]
            .as_array()
            .unwrap_or_else(|| panic!("items is not a JSON array: {}", o["items"]));
        let cents: i64 = items
            .iter()
            .map(|i| {
                i["unit_price"]
                    .as_str()
                    .unwrap()
                    .replace('.', "")
                    .parse::<i64>()
                    .unwrap()
                    * i["qty"].as_i64().unwrap()
            })
            .sum();
        let amount = o["amount"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| o["amount"].to_string());
        assert_eq!(
            amount.replace('.', "").parse::<i64>().unwrap(),
            cents,
            "amount {amount} is not the sum of {items:?}"
        );
    }

    // cursors other than id grow strictly with id
    for (stream, col) in [
        ("users", "updated_at"),
        ("orders", "ordered_at"),
        ("bench", "created_at"),
    ] {
        let b = batches(s.as_ref(), full(stream, 77)).await;
        let mut last = i64::MIN;
        for batch in &b {
            let c = batch
                .column_by_name(col)
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            for v in c.values() {
                assert!(*v > last, "{stream}.{col} does not grow with id");
                last = *v;
            }
        }
    }

    let wide = batches(s.as_ref(), full("wide", 300)).await;
    let b = &wide[0];
    let n = b.column_by_name("n").unwrap().as_primitive::<Int64Type>();
    assert!(n.values().iter().all(|v| (-5..=5).contains(v)));
    assert!(
        n.values().iter().collect::<HashSet<_>>().len() == 11,
        "int range not covered"
    );
    let f = b.column_by_name("f").unwrap();
    assert!(
        (90..210).contains(&f.null_count()),
        "{} NULLs of 300 at null_fraction 0.5",
        f.null_count()
    );
    let seq = b.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
    assert_eq!(seq.values().to_vec(), ids(&wide));
}

#[tokio::test]
async fn same_seed_same_rows_whatever_the_batch_size() {
    let a = source(EVERY_KIND);
    let b = source(EVERY_KIND);
    for stream in ["users", "orders", "bench", "wide"] {
        let one = batches(a.as_ref(), full(stream, 100)).await;
        let two = batches(b.as_ref(), full(stream, 100)).await;
        assert_eq!(one, two, "stream {stream}: same config, different batches");
        let reference = rows(&one);
        for size in [1, 7, 299, 300, 8192] {
            let other = batches(a.as_ref(), full(stream, size)).await;
            let expected_batches = 300usize.div_ceil(size);
            assert_eq!(other.len(), expected_batches, "batch size {size}");
            assert_eq!(
                rows(&other),
                reference,
                "stream {stream}: batch size {size} changed the rows"
            );
        }
    }
}

#[tokio::test]
async fn a_resumed_read_yields_the_same_rows_as_a_full_read() {
    let s = one_stream("orders", 500);
    let all = rows(&batches(s.as_ref(), full("s", 64)).await);
    let rest = batches(
        s.as_ref(),
        ReadRequest::incremental("s", Some(serde_json::json!({ "id": 321 }))),
    )
    .await;
    assert_eq!(ids(&rest), (322..=500).collect::<Vec<_>>());
    assert_eq!(rows(&rest), all[321..].to_vec());
}

#[tokio::test]
async fn seed_and_stream_name_change_the_values() {
    let base = rows(&batches(one_stream("bench", 50).as_ref(), full("s", 50)).await);
    let seeded = source("seed = 43\nstreams = [{ name = \"s\", preset = \"bench\", rows = 50 }]");
    let other_seed = rows(&batches(seeded.as_ref(), full("s", 50)).await);
    let renamed = source("streams = [{ name = \"t\", preset = \"bench\", rows = 50 }]");
    let other_name = rows(&batches(renamed.as_ref(), full("t", 50)).await);
    let names = |rs: &[Row]| rs.iter().map(|r| r["name"].clone()).collect::<Vec<_>>();
    assert_ne!(names(&base), names(&other_seed));
    assert_ne!(names(&base), names(&other_name));
    // adding a column changes no other column
    let more = source("streams = [{ name = \"s\", preset = \"bench\", rows = 50, columns = [{ name = \"x\", kind = \"uuid\" }] }]");
    let with_x = rows(&batches(more.as_ref(), full("s", 50)).await);
    for (a, mut b) in base.iter().zip(with_x) {
        assert!(b.remove("x").is_some());
        assert_eq!(a, &b);
    }
}

#[tokio::test]
async fn read_sends_estimate_then_a_checkpoint_after_each_batch() {
    let s = one_stream("users", 25);
    let msgs = messages(s.as_ref(), full("s", 10)).await;
    let shape: Vec<String> = msgs
        .iter()
        .map(|m| match m {
            Message::Estimate(n) => format!("estimate {n}"),
            Message::Batch(b) => format!("batch {}", b.num_rows()),
            Message::Checkpoint(s) => format!("checkpoint {s}"),
            _ => "other".into(),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "estimate 25",
            "batch 10",
            r#"checkpoint {"id":10}"#,
            "batch 10",
            r#"checkpoint {"id":20}"#,
            "batch 5",
            r#"checkpoint {"id":25}"#
        ]
    );
}

#[tokio::test]
async fn limit_is_respected() {
    let s = one_stream("bench", 1000);
    let mut req = full("s", 64);
    req.limit = Some(150);
    let msgs = messages(s.as_ref(), req).await;
    assert!(matches!(msgs[0], Message::Estimate(150)));
    let b: Vec<RecordBatch> = msgs
        .into_iter()
        .filter_map(|m| {
            if let Message::Batch(b) = m {
                Some(b)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(ids(&b), (1..=150).collect::<Vec<_>>());

    // a limit counts from where an incremental read resumes
    let mut req = ReadRequest::incremental("s", Some(serde_json::json!({ "id": 990 })));
    req.limit = Some(50);
    assert_eq!(
        ids(&batches(s.as_ref(), req).await),
        (991..=1000).collect::<Vec<_>>()
    );
    let mut req = full("s", 64);
    req.limit = Some(0);
    assert!(batches(s.as_ref(), req).await.is_empty());

    // through the runtime: a --limit trial writes the limit and saves no state
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let rt = testkit::runtime(s.clone(), Arc::new(sink.clone()), dir.path());
    let mut sc = StreamConfig::named("s");
    sc.cursor = Some("id".into());
    let opts = RunOptions {
        limit: Some(120),
        ..Default::default()
    };
    let report = rt
        .sync(&[sc], &opts, None, ("generate", "memory"))
        .await
        .unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.streams[0].rows_read, 120);
    assert_eq!(report.rows_committed(), 0, "a trial keeps no rows");
    assert!(sink.tables.lock().unwrap().values().all(|b| b.is_empty()));
    assert!(rt.state.get("s").is_none(), "a limited run saved state");
}

#[tokio::test]
async fn zero_rows_is_an_empty_stream() {
    let s = one_stream("orders", 0);
    s.check().await.unwrap();
    let msgs = messages(s.as_ref(), full("s", 10)).await;
    assert_eq!(msgs.len(), 1);
    assert!(matches!(msgs[0], Message::Estimate(0)));
}

/// rows 100 → sync → rows 150 → sync yields exactly the 50 new rows; state holds the id.
async fn incremental_by(cursor: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let mut sc = StreamConfig::named("users");
    sc.cursor = Some(cursor.into());
    sc.incremental = Some(true);
    let run = |rows: u64| {
        let source = source(&format!(
            "streams = [{{ name = \"users\", preset = \"users\", rows = {rows} }}]"
        ));
        let rt = testkit::runtime(source, Arc::new(sink.clone()), dir.path());
        let sc = sc.clone();
        async move {
            let report = testkit::sync(&rt, &[sc], ("generate", "memory")).await;
            testkit::assert_succeeded(&report);
            (report.rows_committed(), rt.state.get("users"))
        }
    };
    assert_eq!(
        run(100).await,
        (100, Some(serde_json::json!({ "id": 100 })))
    );
    assert_eq!(
        run(150).await,
        (50, Some(serde_json::json!({ "id": 150 }))),
        "cursor {cursor}"
    );
    assert_eq!(
        run(150).await,
        (0, Some(serde_json::json!({ "id": 150 }))),
        "a rerun with nothing new yielded rows"
    );
    let stored = sink.tables.lock().unwrap().get("users").cloned().unwrap();
    assert_eq!(
        ids(&stored),
        (1..=150).collect::<Vec<_>>(),
        "rows lost or repeated"
    );
    // the rows appended by the second run are the rows a fresh full read has
    let fresh = source("streams = [{ name = \"users\", preset = \"users\", rows = 150 }]");
    assert_eq!(
        rows(&stored),
        rows(&batches(fresh.as_ref(), full("users", 8192)).await)
    );
}

#[tokio::test]
async fn incremental_by_id_yields_exactly_the_new_rows() {
    incremental_by("id").await;
}

#[tokio::test]
async fn incremental_by_updated_at_keeps_the_id_in_state() {
    incremental_by("updated_at").await;
}

#[tokio::test]
async fn a_cursor_that_does_not_grow_is_refused() {
    let s = one_stream("users", 10);
    let mut req = ReadRequest::incremental("s", None);
    req.cursor = Some("email".into());
    let e = s.read(req).await.err().expect("email is no cursor");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("id, updated_at"), "{e}");

    let req = ReadRequest::incremental("s", Some(serde_json::json!({ "batch": 3 })));
    let e = s.read(req).await.err().expect("foreign state");
    assert!(e.message().contains("ferry state reset"), "{e}");

    let e = testkit::read_refused(s.as_ref(), ReadRequest::full("user")).await;
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

fn parse_error(toml: &str) -> String {
    let e = ConfigNode::from_toml(toml, ".")
        .unwrap()
        .parse::<GenerateConfig>()
        .expect_err("config must be refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    e.to_string()
}

fn build_error(toml: &str) -> String {
    let e = GenerateSource::new(config(toml)).expect_err("config must be refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    e.to_string()
}

#[test]
fn config_errors_are_clear() {
    let e = parse_error("seed = 1\nstreams = [{ name = \"u\", preset = \"user\" }]");
    assert!(
        e.contains("unknown value `user`") && e.contains("did you mean `users`"),
        "{e}"
    );
    assert!(e.contains("line 2"), "{e}");
    let e =
        parse_error("streams = [{ name = \"u\", columns = [{ name = \"a\", kind = \"emial\" }] }]");
    assert!(
        e.contains("unknown value `emial`") && e.contains("did you mean `email`"),
        "{e}"
    );
    let e = parse_error(
        "streams = [{ name = \"u\", columns = [{ name = \"a\", type = \"varchar\" }] }]",
    );
    assert!(
        e.contains("unknown type `varchar`") && e.contains("int64"),
        "{e}"
    );
    let e = parse_error("streams = [{ name = \"u\", preset = \"users\", row = 5 }]");
    assert!(e.contains("did you mean `rows`"), "{e}");

    let e = build_error("streams = [{ name = \"u\", columns = [{ name = \"a\", kind = \"email\", type = \"int64\" }] }]");
    assert!(
        e.contains("stream `u`, column `a`: kind `email` makes string values, not int64"),
        "{e}"
    );
    let e = build_error("streams = [{ name = \"u\" }]");
    assert!(e.contains("no `preset` and no `columns`"), "{e}");
    let e = build_error("streams = [{ preset = \"users\" }, { preset = \"users\" }]");
    assert!(e.contains("`users` is listed twice"), "{e}");
    let e = build_error("streams = [{ name = \"u\", columns = [{ name = \"p\", type = \"decimal(5,2)\", max = 5000 }] }]");
    assert!(e.contains("does not fit decimal(5,2)"), "{e}");
    let e = build_error(
        "streams = [{ name = \"u\", columns = [{ name = \"w\", kind = \"word\", min = 1 }] }]",
    );
    assert!(
        e.contains("`min` and `max` apply to kinds int, float and decimal"),
        "{e}"
    );
    let e = build_error("streams = [{ name = \"u\", columns = [{ name = \"n\", kind = \"int\", min = 9, max = 1 }] }]");
    assert!(e.contains("above `max`"), "{e}");
    let e =
        build_error("streams = [{ name = \"u\", columns = [{ name = \"id\", kind = \"uuid\" }] }]");
    assert!(e.contains("`id` is always the row number"), "{e}");
    let e = build_error("streams = [{ name = \"u\", columns = [{ name = \"a\", kind = \"word\", null_fraction = 2.0 }] }]");
    assert!(e.contains("between 0.0 and 1.0"), "{e}");
    let e = build_error("streams = []");
    assert!(e.contains("`streams` is empty"), "{e}");
}

#[tokio::test]
async fn defaults_and_preset_overrides() {
    let s = source("");
    let catalog = s.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["users", "orders"]);
    let n: usize = batches(s.as_ref(), full("orders", 8192))
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(n, 5000);

    // a listed preset column replaces the preset's in place; others are appended
    let s = source(
        "streams = [{ preset = \"orders\", rows = 200, columns = [{ name = \"user_id\", kind = \"int\", min = 1, max = 3 }, { name = \"ref\", kind = \"uuid\" }] }]",
    );
    let info = s.discover().await.unwrap().streams[0].clone();
    assert_eq!(info.name, "orders");
    assert_eq!(info.schema.field(1).name(), "user_id");
    assert_eq!(info.schema.fields().last().unwrap().name(), "ref");
    let b = batches(s.as_ref(), full("orders", 8192)).await;
    let users = b[0].column(1).as_primitive::<Int64Type>();
    assert!(users.values().iter().all(|v| (1..=3).contains(v)));
}

#[tokio::test]
async fn registered_under_its_name() {
    let mut registry = Registry::new();
    register(&mut registry);
    let def = registry.get(NAME).unwrap();
    assert!(def.is_source() && !def.is_sink());
    let spec = def.spec();
    let props = &spec["source"]["properties"];
    assert!(
        props["seed"]["description"]
            .as_str()
            .unwrap()
            .contains("default 42"),
        "{spec}"
    );
    assert!(props["streams"].is_object(), "{spec}");

    let toml = "streams = [{ name = \"b\", preset = \"bench\", rows = 10 }]";
    let source = testkit::source_from_toml(register, NAME, toml, ".").unwrap();
    testkit::source_reads_match_discover(source.as_ref(), 10_000).await;

    let bad = "streams = [{ name = \"b\", preset = \"bnch\" }]";
    let e = testkit::source_from_toml(register, NAME, bad, ".")
        .err()
        .expect("unknown preset");
    assert!(e.to_string().contains("did you mean `bench`"), "{e}");
}

/// Throughput in release mode: `cargo test -p ferry-connector-generate --release -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark; run in release mode"]
async fn throughput_bench_preset() {
    let rows = 5_000_000u64;
    let s = one_stream("bench", rows);
    let t = std::time::Instant::now();
    let mut stream = s.read(ReadRequest::full("s")).await.unwrap();
    let mut n = 0u64;
    while let Some(m) = stream.next().await {
        if let Message::Batch(b) = m.unwrap() {
            n += b.num_rows() as u64;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(n, rows);
    println!(
        "bench preset: {rows} rows in {secs:.2}s = {:.1} M rows/s",
        rows as f64 / secs / 1e6
    );
}
