//! The S3 connector against a real S3-compatible server (s3s-fs on loopback, started by
//! the test itself): the conformance kit, codec × encryption round trips, pagination,
//! incremental pick-up, interrupted uploads, and clear errors.

mod common;

use std::sync::Arc;

use common::{sink, source, Server};
use ferry_core::arrow_array::cast::AsArray;
use ferry_core::arrow_array::types::Int64Type;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{
    async_trait, ErrorKind, Message, ReadRequest, Result, Secret, Sink, Source, WriteMode,
    WriteRequest,
};
use ferry_engine::StreamConfig;
use ferry_formats::age;
use ferry_formats::codec::{CsvOptions, Format, FormatReader, FormatWriter};
use ferry_testkit::{self as testkit, try_messages, Fidelity, SinkFixture, SourceFixture};
use futures::StreamExt;

const BUCKET: &str = "data";

/// `batch` encoded in `format`.
fn encode(format: Format, batch: &RecordBatch) -> Vec<u8> {
    let mut w = FormatWriter::new(format, Vec::new(), batch.schema(), &CsvOptions::default())
        .expect("writer");
    w.write_batch(batch).expect("encode");
    w.into_inner().expect("bytes")
}

/// Every row of `bytes` (decrypted first with `identity` when given).
fn decode(
    bytes: Vec<u8>,
    format: Format,
    schema: &SchemaRef,
    identity: Option<&Secret>,
) -> Result<Vec<RecordBatch>> {
    let input: Box<dyn std::io::Read + Send> = match identity {
        Some(id) => Box::new(age::decrypt_reader(
            &age::Identities::parse(id)?,
            std::io::Cursor::new(bytes),
        )?),
        None => Box::new(std::io::Cursor::new(bytes)),
    };
    testkit::batches_only(FormatReader::new(
        format,
        input,
        schema.clone(),
        &CsvOptions::default(),
    )?)
}

fn ids(msgs: &[Message]) -> Vec<i64> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Batch(b) => Some(b.column(0).as_primitive::<Int64Type>().values().to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn last_checkpoint(msgs: &[Message]) -> serde_json::Value {
    msgs.iter()
        .rev()
        .find_map(|m| match m {
            Message::Checkpoint(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a checkpoint")
}

// ----------------------------------------------------------------------------------------
// The conformance kit

struct SourceFix {
    server: Arc<Server>,
    format: Format,
}

impl SourceFix {
    /// Puts `batch` as object `part` of `stream`, under `kit/<stream>/`.
    async fn put(&self, stream: &str, part: u32, batch: &RecordBatch) {
        let key = format!("kit/{stream}/part-{part:04}.{}", self.format.extension());
        let body = encode(self.format, batch);
        self.server.put(BUCKET, &key, body).await;
    }
}

#[async_trait]
impl SourceFixture for SourceFix {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        self.put(stream, 1, batch).await;
        source(&format!(
            "{}prefix = \"kit/\"\npath = \"{stream}/*.{}\"\nstream = \"{stream}\"\nprimary_key = [\"id\"]\ncolumns = {}\n",
            self.server.toml(BUCKET),
            self.format.extension(),
            testkit::columns_toml(&batch.schema())
        ))
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        self.put(stream, 2, batch).await;
        Ok(())
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        let toml = self
            .server
            .toml(BUCKET)
            .replace(common::SECRET_KEY, "not-the-secret");
        Some(source(&format!("{toml}path = \"x/*.csv\"")).expect("config is valid"))
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}

struct SinkFix {
    server: Arc<Server>,
    format: Format,
    sink: Arc<dyn Sink>,
    identity: Option<Secret>,
}

impl SinkFix {
    fn new(server: Arc<Server>, format: Format, encrypted: bool) -> Self {
        let (identity, public) = age::generate_identity();
        let mut toml = format!(
            "{}prefix = \"out/\"\nformat = \"{format}\"\n",
            server.toml(BUCKET)
        );
        if encrypted {
            toml.push_str(&format!("encrypt = {{ recipients = [\"{public}\"] }}\n"));
        }
        let sink = sink(&toml).expect("sink config");
        SinkFix {
            server,
            format,
            sink,
            identity: encrypted.then_some(identity),
        }
    }
}

#[async_trait]
impl SinkFixture for SinkFix {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for key in self.server.keys(BUCKET, &format!("out/{stream}/")).await {
            let bytes = self.server.get(BUCKET, &key).await;
            out.extend(decode(bytes, self.format, schema, self.identity.as_ref())?);
        }
        Ok(out)
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_passes_the_conformance_kit() {
    let server = Arc::new(Server::start(&[BUCKET]).await);
    for format in [Format::Csv, Format::Jsonl] {
        testkit::run_source_suite(&SourceFix {
            server: server.clone(),
            format,
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_passes_the_conformance_kit() {
    let server = Arc::new(Server::start(&[BUCKET]).await);
    for (format, encrypted) in [
        (Format::Csv, false),
        (Format::Jsonl, false),
        (Format::Csv, true),
    ] {
        testkit::run_sink_suite(&SinkFix::new(server.clone(), format, encrypted)).await;
        server.assert_no_open_uploads();
    }
}

// ----------------------------------------------------------------------------------------
// Round trips: sink → S3 → source, for each format, compression and encryption

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_through_s3() {
    let server = Server::start(&[BUCKET]).await;
    let (identity, public) = age::generate_identity();
    let input = testkit::all_types_batch();
    let mut cases = 0;
    for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
        for compression in ["none", "gzip", "zstd"] {
            for encrypted in [false, true] {
                let stream = testkit::fresh_name("rt");
                let case = format!("{format} {compression} encrypted={encrypted}");
                let mut toml = format!(
                    "{}prefix = \"rt/\"\nformat = \"{format}\"\ncompression = \"{compression}\"\nmax_object_rows = 2\n",
                    server.toml(BUCKET)
                );
                if encrypted {
                    toml.push_str(&format!("encrypt = {{ recipients = [\"{public}\"] }}\n"));
                }
                let snk = sink(&toml).unwrap();
                let mut w = snk
                    .open(WriteRequest {
                        stream: stream.clone(),
                        schema: input.schema(),
                        mode: WriteMode::Append,
                        run_id: "run-1".into(),
                        deletes: None,
                    })
                    .await
                    .unwrap();
                w.write(input.clone()).await.unwrap();
                let summary = w.close().await.unwrap();
                // 5 rows, 2 per object: 3 objects, each with its digest
                assert_eq!(summary.rows, 5, "{case}");
                assert_eq!(summary.outputs.len(), 3, "{case}: {summary:?}");
                for o in &summary.outputs {
                    let key = o.location.strip_prefix(&format!("s3://{BUCKET}/")).unwrap();
                    let bytes = server.get(BUCKET, key).await;
                    assert_eq!(o.bytes, Some(bytes.len() as u64));
                    let digest = format!(
                        "sha256:{}",
                        ferry_formats::digest::hex(
                            ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref(),
                        )
                    );
                    assert_eq!(o.digest.as_deref(), Some(digest.as_str()), "{key}");
                    assert_eq!(
                        bytes.starts_with(b"age-encryption.org/v1"),
                        encrypted,
                        "{key}"
                    );
                    let d = ferry_formats::codec::detect(key);
                    assert_eq!((d.format, d.encrypted), (Some(format), encrypted), "{key}");
                    if format != Format::Parquet {
                        assert_eq!(d.compression.name(), compression, "{key}");
                    }
                }
                let mut src_toml = format!(
                    "{}prefix = \"rt/\"\npath = \"{stream}/*/*\"\nstream = \"s\"\nformat = \"{format}\"\ncolumns = {}\n",
                    server.toml(BUCKET),
                    testkit::columns_toml(&input.schema())
                );
                if encrypted {
                    src_toml.push_str(&format!("identity = \"{}\"\n", identity.expose()));
                }
                let src = source(&src_toml).unwrap();
                if format == Format::Parquet && encrypted {
                    // Parquet needs random access, which age over S3 does not give: said clearly
                    let err = src.discover().await.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
                    assert!(err.to_string().contains("encrypted Parquet"), "{err}");
                    continue;
                }
                src.check().await.unwrap();
                src.discover().await.unwrap();
                let got = testkit::read_all(src.as_ref(), ReadRequest::full("s")).await;
                testkit::assert_same_rows(&got, &input, Fidelity::of_format(format), &case);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 15);
}

// ----------------------------------------------------------------------------------------
// Listing and incremental reads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_page_of_keys_is_read_whole() {
    let server = Arc::new(Server::start(&[BUCKET]).await);
    let n = 1_234;
    futures::stream::iter(0..n)
        .map(|i| {
            let server = server.clone();
            async move {
                let body = format!("id\n{i}\n").into_bytes();
                server.put(BUCKET, &format!("many/f{i:05}.csv"), body).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // a neighbour that matches the prefix but not the pattern
    server.put(BUCKET, "many/readme.txt", b"x".to_vec()).await;
    let src = source(&format!("{}path = \"many/*.csv\"", server.toml(BUCKET))).unwrap();
    src.check().await.unwrap();
    src.discover().await.unwrap();
    let msgs = try_messages(src.as_ref(), ReadRequest::full("many"))
        .await
        .unwrap();
    let mut got = ids(&msgs);
    assert_eq!(got.len(), n, "every object of every page read once");
    got.sort();
    assert_eq!(got, (0..n as i64).collect::<Vec<_>>());
    // full refresh ends with a mark covering everything: an incremental rerun reads nothing
    let state = last_checkpoint(&msgs);
    let again = try_messages(src.as_ref(), ReadRequest::incremental("many", Some(state)))
        .await
        .unwrap();
    assert!(ids(&again).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_column_names_each_rows_object() {
    let server = Server::start(&[BUCKET]).await;
    server.put(BUCKET, "fc/a.csv", b"id\n1\n2\n".to_vec()).await;
    server.put(BUCKET, "fc/b.csv", b"id\n3\n".to_vec()).await;
    let toml = format!(
        "{}path = \"fc/*.csv\"\nfile_column = \"_ferry_source_file\"\n",
        server.toml(BUCKET)
    );
    let src = source(&toml).unwrap();
    let schema = testkit::discover_one(src.as_ref(), "fc").await.schema;
    assert_eq!(schema.field(1).name(), "_ferry_source_file");
    let msgs = try_messages(src.as_ref(), ReadRequest::full("fc"))
        .await
        .unwrap();
    let mut got = Vec::new();
    for m in &msgs {
        if let Message::Batch(b) = m {
            assert_eq!(b.schema(), schema);
            let ids = b.column(0).as_primitive::<Int64Type>();
            let files = b.column(1).as_string::<i32>();
            for r in 0..b.num_rows() {
                got.push((ids.value(r), files.value(r).to_string()));
            }
        }
    }
    got.sort();
    let url = |k: &str| format!("s3://{BUCKET}/fc/{k}.csv");
    assert_eq!(got, [(1, url("a")), (2, url("a")), (3, url("b"))]);
    let clash = source(&format!(
        "{}path = \"fc/*.csv\"\nfile_column = \"id\"\n",
        server.toml(BUCKET)
    ))
    .unwrap()
    .discover()
    .await
    .unwrap_err();
    assert!(
        clash.to_string().contains("`file_column = \"id\"`"),
        "{clash}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_picks_up_new_and_overwritten_objects_once() {
    let server = Server::start(&[BUCKET]).await;
    server
        .put(BUCKET, "inc/a.csv", b"id\n1\n2\n".to_vec())
        .await;
    server.put(BUCKET, "inc/b.csv", b"id\n3\n".to_vec()).await;
    let src = source(&format!(
        "{}path = \"inc/*.csv\"\nstream = \"inc\"",
        server.toml(BUCKET)
    ))
    .unwrap();
    src.discover().await.unwrap();
    let msgs = try_messages(src.as_ref(), ReadRequest::incremental("inc", None))
        .await
        .unwrap();
    let mut first = ids(&msgs);
    first.sort();
    assert_eq!(first, vec![1, 2, 3]);
    let checkpoints = msgs
        .iter()
        .filter(|m| matches!(m, Message::Checkpoint(_)))
        .count();
    assert_eq!(checkpoints, 2, "one checkpoint per object");
    let state = last_checkpoint(&msgs);

    // nothing changed: nothing read
    let msgs = try_messages(
        src.as_ref(),
        ReadRequest::incremental("inc", Some(state.clone())),
    )
    .await
    .unwrap();
    assert!(ids(&msgs).is_empty());

    // a new object, and `a` overwritten: both read, `a` whole, `b` not again
    std::thread::sleep(std::time::Duration::from_millis(20));
    server.put(BUCKET, "inc/c.csv", b"id\n4\n".to_vec()).await;
    server
        .put(BUCKET, "inc/a.csv", b"id\n1\n2\n5\n".to_vec())
        .await;
    let msgs = try_messages(src.as_ref(), ReadRequest::incremental("inc", Some(state)))
        .await
        .unwrap();
    assert_eq!(ids(&msgs), vec![4, 1, 2, 5], "oldest first");
    let state = last_checkpoint(&msgs);
    assert_eq!(state["objects"][0]["key"], "inc/a.csv", "{state}");

    // and then nothing again
    let msgs = try_messages(src.as_ref(), ReadRequest::incremental("inc", Some(state)))
        .await
        .unwrap();
    assert!(ids(&msgs).is_empty());

    // a state that is not an S3 position is refused, not read as "everything"
    let state = serde_json::json!({"cursor": 1});
    let err =
        testkit::read_refused(src.as_ref(), ReadRequest::incremental("inc", Some(state))).await;
    assert!(err.to_string().contains("ferry state reset"), "{err}");

    // --limit stops early
    let mut req = ReadRequest::full("inc");
    req.limit = Some(1);
    req.batch_size = 1;
    let msgs = try_messages(src.as_ref(), req).await.unwrap();
    assert_eq!(ids(&msgs).len(), 1);
}

// ----------------------------------------------------------------------------------------
// Interrupted uploads

/// A batch of `n` rows with wide text, so a few batches fill a 5 MiB part.
fn wide_batch(first: i64, n: usize) -> RecordBatch {
    testkit::simple_batch(first, n, &"x".repeat(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_upload_leaves_no_object_and_no_open_upload() {
    let server = Server::start(&[BUCKET]).await;
    let snk = sink(&format!(
        "{}prefix = \"ab/\"\npart_size = 5242880",
        server.toml(BUCKET)
    ))
    .unwrap();
    let batch = wide_batch(1, 20_000); // about 4.3 MB of CSV a batch
    let mut w = snk
        .open(WriteRequest {
            stream: "s".into(),
            schema: batch.schema(),
            mode: WriteMode::Append,
            run_id: "r1".into(),
            deletes: None,
        })
        .await
        .unwrap();
    for _ in 0..3 {
        w.write(batch.clone()).await.unwrap();
    }
    assert!(
        !server.open_uploads().is_empty(),
        "a multipart upload is under way"
    );
    w.abort().await.unwrap();
    assert!(server.keys(BUCKET, "ab/").await.is_empty());
    server.assert_no_open_uploads();

    // the same through the runtime, with a failure injected after two parts' worth and
    // an object already rolled over
    let snk = sink(&format!(
        "{}prefix = \"ab/\"\npart_size = 5242880\nmax_object_rows = 30000",
        server.toml(BUCKET)
    ))
    .unwrap();
    let source = Arc::new(testkit::MemorySource::new(
        "t",
        batch.schema(),
        (0..5).map(|i| wide_batch(i * 20_000, 20_000)).collect(),
    ));
    let failing = Arc::new(testkit::FailingSink::new(snk, 4));
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(source, failing, state.path());
    let report = testkit::sync(&rt, &[StreamConfig::named("t")], ("mem", "s3")).await;
    assert_eq!(report.status, ferry_engine::report::Status::Failed);
    assert!(
        server.keys(BUCKET, "ab/").await.is_empty(),
        "{:?}",
        server.keys(BUCKET, "ab/").await
    );
    server.assert_no_open_uploads();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_use_several_parts_and_roll_over() {
    let server = Server::start(&[BUCKET]).await;
    let snk = sink(&format!(
        "{}prefix = \"big/\"\npart_size = 5242880\nmax_object_bytes = 12000000\nsse = \"AES256\"\nkey_template = \"{{stream}}/{{run_id}}/{{n}}.{{ext}}\"",
        server.toml(BUCKET)
    ))
    .unwrap();
    let batch = wide_batch(1, 20_000);
    let mut w = snk
        .open(WriteRequest {
            stream: "s".into(),
            schema: batch.schema(),
            mode: WriteMode::Overwrite,
            run_id: "r1".into(),
            deletes: None,
        })
        .await
        .unwrap();
    for i in 0..7 {
        w.write(wide_batch(i * 20_000, 20_000)).await.unwrap();
    }
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, 140_000);
    let keys = server.keys(BUCKET, "big/s/").await;
    assert_eq!(
        keys,
        vec![
            "big/s/r1/0001.csv",
            "big/s/r1/0002.csv",
            "big/s/r1/0003.csv"
        ]
    );
    for o in &summary.outputs {
        assert!(
            o.bytes.unwrap() >= 12_000_000 || o.location.ends_with("0003.csv"),
            "{o:?}"
        );
        let key = o.location.strip_prefix("s3://data/").unwrap();
        let bytes = server.get(BUCKET, key).await;
        let digest = format!(
            "sha256:{}",
            ferry_formats::digest::hex(
                ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()
            )
        );
        assert_eq!(o.digest.as_deref(), Some(digest.as_str()));
    }
    let total: u64 = summary.outputs.iter().map(|o| o.rows).sum();
    assert_eq!(total, 140_000);

    // overwrite: a second run replaces the folder's objects
    let mut w = snk
        .open(WriteRequest {
            stream: "s".into(),
            schema: batch.schema(),
            mode: WriteMode::Overwrite,
            run_id: "r2".into(),
            deletes: None,
        })
        .await
        .unwrap();
    w.write(testkit::simple_batch(1, 2, "b")).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(server.keys(BUCKET, "big/").await, vec!["big/s/r2/0001.csv"]);
    assert!(server.open_uploads().is_empty());
}

// ----------------------------------------------------------------------------------------
// Errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_missing_buckets_are_named_clearly() {
    let server = Server::start(&[BUCKET]).await;
    server.put(BUCKET, "e/a.csv", b"id\n1\n".to_vec()).await;
    let wrong = server
        .toml(BUCKET)
        .replace(common::SECRET_KEY, "wrong-secret-value-42");
    let src = source(&format!("{wrong}path = \"e/*.csv\"")).unwrap();
    let err = src.check().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed, "{err}");
    let text = err.to_string();
    assert!(text.contains(BUCKET), "{text}");
    assert!(!text.contains("wrong-secret-value-42"), "{text}");
    let snk = sink(&wrong).unwrap();
    assert_eq!(snk.check().await.unwrap_err().kind(), ErrorKind::AuthFailed);

    let missing = server.toml("no-such-bucket");
    let err = source(&format!("{missing}path = \"e/*.csv\""))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
    let err = sink(&missing).unwrap().check().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // no object matches: named with the pattern
    let err = source(&format!("{}path = \"e/*.jsonl\"", server.toml(BUCKET)))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("e/*.jsonl"), "{err}");

    // nothing reachable there
    let err = source(&format!(
        "{}path = \"e/*.csv\"",
        server
            .toml(BUCKET)
            .replace(&server.endpoint, "http://127.0.0.1:9")
    ))
    .unwrap()
    .check()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");

    // the sink's check leaves nothing behind
    sink(&format!("{}prefix = \"chk/\"", server.toml(BUCKET)))
        .unwrap()
        .check()
        .await
        .unwrap();
    assert!(server.keys(BUCKET, "chk/").await.is_empty());
}

#[tokio::test]
async fn bad_config_is_refused_before_any_request() {
    for (toml, needle) in [
        ("bucket = \"b\"\npth = \"x.csv\"", "did you mean `path`"),
        ("bucket = \"b\"\npath = \"x.txt\"", "set `format"),
        (
            "bucket = \"b/x\"\npath = \"x.csv\"",
            "put the folder in `prefix`",
        ),
        (
            "bucket = \"b\"\npath = \"x.csv\"\naccess_key_id = \"k\"",
            "set both",
        ),
        (
            "bucket = \"b\"\npath = \"x.csv\"\ncolumns = { id = \"integer64\" }",
            "unknown type",
        ),
    ] {
        let err = source(toml).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{toml}: {err}");
        assert!(err.to_string().contains(needle), "{toml}: {err}");
    }
    for (toml, needle) in [
        ("bucket = \"b\"\npart_size = 1000", "`part_size` must be"),
        (
            "bucket = \"b\"\nkey_template = \"{stream}/{n}.csv\"",
            "lacks `{run_id}`",
        ),
        ("bucket = \"b\"\nsse_kms_key_id = \"k\"", "needs `sse"),
        ("bucket = \"b\"\nsse = \"aes\"", "valid: AES256, aws:kms"),
    ] {
        let err = sink(toml).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{toml}: {err}");
        assert!(err.to_string().contains(needle), "{toml}: {err}");
    }
    // upsert is refused up front, and overwrite needs a per-stream folder
    let snk = sink("bucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"").unwrap();
    assert!(!snk.capabilities().modes.contains(&WriteMode::Upsert));
    let snk = sink("bucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"\nkey_template = \"{date}/{stream}-{run_id}-{n}.{ext}\"").unwrap();
    let err = snk
        .open(WriteRequest {
            stream: "s".into(),
            schema: testkit::simple_batch(1, 1, "a").schema(),
            mode: WriteMode::Overwrite,
            run_id: "r".into(),
            deletes: None,
        })
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("must start with `{stream}/`"),
        "{err}"
    );
}

#[test]
fn every_config_field_is_documented() {
    let spec = testkit::documented_source_and_sink(ferry_connector_s3::register, "s3", &["bucket"]);
    for side in ["source", "destination"] {
        let props = spec[side]["properties"].as_object().expect("properties");
        assert!(props.len() > 10, "{side}: {props:?}");
    }
}
