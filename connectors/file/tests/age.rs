//! The file connector with age encryption: the destination's `encrypt` and the source's
//! `identity` / `passphrase`, against real temp folders: a round trip through the runtime,
//! the conformance kit with encryption on, and the failures a person must be told about.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::source_fix::{write_encrypted, SourceFix};
use common::{io, leftovers, sink, sink_refused, source, source_refused};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{
    async_trait, ErrorKind, Message, ReadRequest, Result, Secret, Sink, WriteMode, WriteRequest,
};
use ferry_engine::StreamConfig;
use ferry_formats::age::{self, Identities, Recipients};
use ferry_formats::codec::{CsvOptions, Format, FormatReader};
use ferry_testkit::{self as testkit, Fidelity, SinkFixture};
use futures::StreamExt;

/// A new key pair, the secret key written to `dir/<name>.key` and the public key to
/// `dir/<name>.pub` (with a comment, as a recipients file).
fn key_files(dir: &Path, name: &str) -> (Secret, String) {
    let (secret, public) = age::generate_identity();
    std::fs::write(dir.join(format!("{name}.key")), secret.expose()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.pub")),
        format!("# {name}\n{public}\n"),
    )
    .unwrap();
    (secret, public)
}

/// Every row of an age file, read with the codec reader; a rejected record is an error.
fn read_encrypted(
    path: &Path,
    format: Format,
    schema: &SchemaRef,
    ids: &Identities,
) -> Result<Vec<RecordBatch>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let input = age::decrypt_reader(ids, File::open(path).map_err(io)?)?;
    let reader = FormatReader::new(format, input, schema.clone(), &CsvOptions::default())?;
    testkit::batches_only(reader)
}

fn decrypt_to_string(path: &Path, ids: &Identities) -> String {
    let mut text = String::new();
    age::decrypt_reader(ids, File::open(path).unwrap())
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Where an age file's payload starts: after the header's `--- mac` line and the nonce.
fn payload_start(file: &[u8]) -> usize {
    let at = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    at + file[at..].iter().position(|&b| b == b'\n').unwrap() + 1 + 16
}

fn overwrite(stream: &str) -> StreamConfig {
    let mut sc = StreamConfig::named(stream);
    sc.mode = Some(WriteMode::Overwrite);
    sc
}

// ----------------------------------------------------------------------------------------
// Through the runtime

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_files_round_trip_through_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir(base.join("keys")).unwrap();
    let (acme, acme_pub) = key_files(&base.join("keys"), "acme");
    let (ops, _) = key_files(&base.join("keys"), "ops");
    let csv = "id,name,joined,score\n1,Ada,2024-01-02,1.5\n2,\"Bob, Jr.\",2024-02-03,\n";
    std::fs::write(base.join("people.csv"), csv).unwrap();

    // plain CSV → encrypted CSV, to an inline key and a recipients file
    let src = source("path = \"people.csv\"\nprimary_key = [\"id\"]", base).unwrap();
    let snk = sink(
        &format!(
            "path = \"out\"\nencrypt = {{ recipients = [\"{acme_pub}\", \"file:keys/ops.pub\"] }}"
        ),
        base,
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, snk, state.path());
    let report = testkit::sync(&rt, &[overwrite("people")], ("file", "file")).await;
    assert_eq!(report.rows_committed(), 2, "{}", report.summary());
    let out = base.join("out/people.csv.age");
    assert!(!base.join("out/people.csv").exists(), "no plaintext output");
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(
        !bytes.windows(3).any(|w| w == b"Ada"),
        "plaintext in the file"
    );
    let json = serde_json::to_value(&report).unwrap().to_string();
    assert!(json.contains("people.csv.age"), "{json}");
    for key in [&acme, &ops] {
        let ids = Identities::parse(key).unwrap();
        assert_eq!(decrypt_to_string(&out, &ids), csv);
    }
    assert_eq!(leftovers(&base.join("out")), Vec::<String>::new());

    // encrypted CSV → JSON Lines: types are inferred through decryption
    let back = source(
        "path = \"out/people.csv.age\"\nidentity = \"${file:keys/ops.key}\"",
        base,
    )
    .unwrap();
    back.check().await.unwrap();
    let info = back.discover().await.unwrap();
    assert_eq!(info.names(), vec!["people"]);
    assert_eq!(
        testkit::column_types(&info.streams[0].schema),
        ["id int64", "name string", "joined date", "score float64"]
    );
    let snk = sink("path = \"plain\"\nformat = \"jsonl\"", base).unwrap();
    let rt = testkit::runtime(back, snk, state.path());
    let report = testkit::sync(&rt, &[], ("file", "file")).await;
    assert_eq!(report.rows_committed(), 2, "{}", report.summary());
    assert_eq!(
        std::fs::read_to_string(base.join("plain/people.jsonl")).unwrap(),
        "{\"id\":1,\"name\":\"Ada\",\"joined\":\"2024-01-02\",\"score\":1.5}\n{\"id\":2,\"name\":\"Bob, Jr.\",\"joined\":\"2024-02-03\",\"score\":null}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_to_an_encrypted_file_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (_, public) = key_files(base, "k");
    std::fs::write(base.join("n.csv"), "id\n1\n").unwrap();
    let snk = sink(
        &format!("path = \"out\"\nencrypt = {{ recipients = [\"{public}\"] }}"),
        base,
    )
    .unwrap();
    assert_eq!(snk.capabilities().modes, vec![WriteMode::Overwrite]);

    // by the runtime, before a row is read (the default mode is append)
    let src = source("path = \"n.csv\"", base).unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src, snk.clone(), state.path());
    let err = rt
        .sync(&[], &Default::default(), None, ("file", "file"))
        .await
        .expect_err("append is refused");
    assert!(err.to_string().contains("cannot append"), "{err}");

    // and by `open`, with a config error that says what to do
    let err = testkit::open_refused(
        snk.as_ref(),
        "n",
        testkit::simple_batch(1, 0, "").schema(),
        WriteMode::Append,
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
    assert!(err.to_string().contains("mode = \"overwrite\""), "{err}");
    assert!(!base.join("out").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_encrypted_overwrite_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (secret, public) = key_files(base, "k");
    let ids = Identities::parse(&secret).unwrap();
    let snk = sink(
        &format!("path = \"out\"\nformat = \"jsonl\"\nencrypt = {{ recipients = [\"{public}\"] }}"),
        base,
    )
    .unwrap();
    let batch = testkit::simple_batch(1, 2, "old");
    let request = || WriteRequest {
        stream: "s".into(),
        schema: batch.schema(),
        mode: WriteMode::Overwrite,
        run_id: "r1".into(),
        deletes: None,
    };
    let mut w = snk.open(request()).await.unwrap();
    w.write(batch.clone()).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    let out = base.join("out/s.jsonl.age");
    // named relative to the destination folder, which the output carries as its root
    assert_eq!(summary.outputs[0].location, "s.jsonl.age");
    assert_eq!(
        summary.outputs[0]
            .root
            .as_ref()
            .map(|r| r.join("s.jsonl.age")),
        Some(out.clone())
    );
    assert_eq!(
        summary.outputs[0].bytes,
        Some(std::fs::metadata(&out).unwrap().len()),
        "an encrypted output reports the file's size"
    );
    let old = decrypt_to_string(&out, &ids);
    assert!(old.contains("old-1"), "{old}");

    // a large write that is aborted: the old file stays, and no temp file is left
    let mut w = snk.open(request()).await.unwrap();
    w.write(testkit::simple_batch(10, 20_000, "new"))
        .await
        .unwrap();
    w.abort().await.unwrap();
    assert_eq!(decrypt_to_string(&out, &ids), old);
    assert_eq!(leftovers(&base.join("out")), Vec::<String>::new());
}

// ----------------------------------------------------------------------------------------
// What a person must be told

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_source_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (secret, public) = key_files(base, "right");
    key_files(base, "wrong");
    let recipients = Recipients::parse(&[public], base).unwrap();
    // enough rows for several 64 KiB chunks
    let batch = testkit::simple_batch(1, 20_000, "row");
    write_encrypted(&base.join("big.csv.age"), Format::Csv, &batch, &recipients).unwrap();

    // no identity: the file is named, before any row is read
    let src = source("path = \"big.csv.age\"", base).unwrap();
    for err in [
        src.check().await.unwrap_err(),
        src.discover().await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`big.csv.age` is encrypted") && text.contains("identity"),
            "{text}"
        );
    }

    // a key that does not fit: refused by check
    let src = source(
        "path = \"big.csv.age\"\nidentity = \"${file:wrong.key}\"",
        base,
    )
    .unwrap();
    let err = src.check().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed, "{err}");
    assert!(err.to_string().contains("big.csv.age"), "{err}");

    // a bad identity is a config error that does not print it
    let err = source(
        "path = \"big.csv.age\"\nidentity = \"${env:FERRY_TEST_AGE_BAD_KEY}\"",
        base,
    );
    assert!(err.is_err(), "an unset variable is refused");
    std::env::set_var("FERRY_TEST_AGE_BAD_KEY", "AGE-SECRET-KEY-1CANARY");
    let err = source_refused(
        "path = \"big.csv.age\"\nidentity = \"${env:FERRY_TEST_AGE_BAD_KEY}\"",
        base,
    );
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
    assert!(
        err.to_string().contains("`identity`") && !err.to_string().contains("CANARY"),
        "{err}"
    );

    // a payload altered after the first chunk: the read fails naming the file, and no
    // row of the altered chunk is yielded
    let path = base.join("big.csv.age");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 70_000] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let src = source(
        &format!(
            "path = \"big.csv.age\"\nidentity = \"${{file:right.key}}\"\ncolumns = {}",
            testkit::columns_toml(&batch.schema())
        ),
        base,
    )
    .unwrap();
    src.check().await.unwrap();
    src.discover().await.unwrap();
    let mut msgs = src.read(ReadRequest::full("big")).await.unwrap();
    let mut rows = 0;
    let err = loop {
        match msgs.next().await.expect("the read ends with an error") {
            Ok(Message::Batch(b)) => rows += b.num_rows(),
            Ok(Message::Checkpoint(_)) => panic!("a damaged file was checkpointed"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::DataInvalid, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("failed authentication") && text.contains("big.csv.age"),
        "{text}"
    );
    assert!(rows < 20_000, "rows past the damage were read: {rows}");

    // cut at a chunk boundary (the last chunks dropped): the same, through the runtime,
    // which fails the stream
    let chunk = (64 << 10) + 16;
    let cut = payload_start(&bytes) + 2 * chunk;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let snk = sink("path = \"out\"", base).unwrap();
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(src.clone(), snk, state.path());
    let report = testkit::sync(&rt, &[overwrite("big")], ("file", "file")).await;
    let err = report.streams[0].error.clone().expect("the stream failed");
    assert!(
        err.contains("truncated") && err.contains("big.csv.age"),
        "{err}"
    );
    assert!(
        !base.join("out/big.csv").exists(),
        "a failed overwrite wrote the output"
    );
    let _ = secret;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_files_are_read_with_the_source_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::write(base.join("pw.txt"), "a long client passphrase").unwrap();
    let pw = Secret::new("a long client passphrase");
    let mut r = Recipients::passphrase(&pw).unwrap();
    r.set_work_factor(10).unwrap(); // fast for the test; the destination uses 18
    let batch = testkit::simple_batch(1, 3, "p");
    write_encrypted(&base.join("p.jsonl.age"), Format::Jsonl, &batch, &r).unwrap();
    // a mixed folder: plain and encrypted files form one stream
    std::fs::write(
        base.join("q.jsonl"),
        "{\"id\":4,\"name\":\"p-4\",\"version\":1}\n",
    )
    .unwrap();
    let (_, _) = key_files(base, "k");
    let src = source(
        "path = \"*.jsonl*\"\nstream = \"p\"\nformat = \"jsonl\"\nidentity = \"${file:k.key}\"\npassphrase = \"${file:pw.txt}\"",
        base,
    )
    .unwrap();
    let batches = testkit::read_all(src.as_ref(), ReadRequest::full("p")).await;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, 4);

    // passphrase and recipients together are refused: age allows a passphrase only alone
    let err = sink_refused("path = \"out\"\nencrypt = { recipients = [\"file:k.pub\"], passphrase = \"${file:pw.txt}\" }",
        base,);
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
    assert!(err.to_string().contains("cannot be combined"), "{err}");
    // and so are no recipients at all, or a key file that is not there
    for (toml, needle) in [
        ("encrypt = {}", "no age recipients"),
        (
            "encrypt = { recipients = [\"keys/none.pub\"] }",
            "keys/none.pub",
        ),
        (
            "encrypt = { recipients = [\"file:k.key\"] }",
            "is a secret key",
        ),
        ("encrypt = { recipient = [] }", "did you mean `recipients`"),
    ] {
        let err = sink_refused(&format!("path = \"out\"\n{toml}"), base);
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{toml}: {err}");
        assert!(err.to_string().contains(needle), "{toml}: {err}");
        assert!(!err.to_string().contains("AGE-SECRET-KEY"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_encrypts_to_a_passphrase() {
    // one scrypt run at the age command's work factor (2^18): a few seconds unoptimised
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::write(base.join("pw.txt"), "another client passphrase").unwrap();
    let snk = sink(
        "path = \"out\"\nencrypt = { passphrase = \"${file:pw.txt}\" }",
        base,
    )
    .unwrap();
    let batch = testkit::simple_batch(1, 3, "x");
    let mut w = snk
        .open(testkit::request("x", batch.schema(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(batch).await.unwrap();
    w.close().await.unwrap();
    let bytes = std::fs::read(base.join("out/x.csv.age")).unwrap();
    let header = String::from_utf8_lossy(&bytes[..100]).into_owned();
    assert!(
        header.starts_with("age-encryption.org/v1\n-> scrypt "),
        "{header}"
    );
    let line = header.lines().nth(1).unwrap();
    assert!(line.ends_with(" 18"), "work factor: {line}");
}

// ----------------------------------------------------------------------------------------
// The conformance kit, with encryption on

struct SinkFix {
    format: Format,
    dir: tempfile::TempDir,
    sink: Arc<dyn Sink>,
    /// The key of the second recipient (in a recipients file): reads everything back.
    ids: Identities,
}

impl SinkFix {
    fn new(format: Format) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let (_, first) = age::generate_identity();
        let (secret, _) = key_files(&dir.path().join("keys"), "client");
        let sink = sink(
            &format!(
                "path = \"out\"\nformat = \"{format}\"\nencrypt = {{ recipients = [\"{first}\", \"keys/client.pub\"] }}"
            ),
            dir.path(),
        )
        .unwrap();
        SinkFix {
            format,
            dir,
            sink,
            ids: Identities::parse(&secret).unwrap(),
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

#[async_trait]
impl SinkFixture for SinkFix {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let path = self
            .out()
            .join(format!("{stream}.{}.age", self.format.extension()));
        assert!(
            !self
                .out()
                .join(format!("{stream}.{}", self.format.extension()))
                .exists(),
            "a plaintext file was written"
        );
        read_encrypted(&path, self.format, schema, &self.ids)
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_source_conformance() {
    for format in [Format::Csv, Format::Jsonl] {
        testkit::run_source_suite(&SourceFix::encrypted(format)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_sink_conformance() {
    for format in [Format::Csv, Format::Jsonl] {
        let f = SinkFix::new(format);
        testkit::run_sink_suite(&f).await;
        assert_eq!(leftovers(&f.out()), Vec::<String>::new(), "{format}");
    }
}
