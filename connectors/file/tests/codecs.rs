//! The shared codec layers through the file connector, against real temp folders: every
//! format × compression × encryption round trip (sink, then source), Parquet streaming row
//! group by row group, and damaged input failing clearly.

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{sink, sink_refused, source};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{ErrorKind, FerryType, Message, ReadRequest, Result, Source, WriteMode};
use ferry_formats::age;
use ferry_formats::codec::{
    Bytes, ChunkReader, FormatReader, Length, ParquetCompression, ParquetOptions, ParquetResult,
    ParquetWriter,
};
use ferry_testkit::{self as testkit, split, Fidelity};
use futures::StreamExt;

/// Every message of a full read; the first error ends it.
async fn read(source: &dyn Source, stream: &str, batch_size: usize) -> Result<Vec<Message>> {
    let mut request = ReadRequest::full(stream);
    request.batch_size = batch_size;
    let mut s = source.read(request).await?;
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m?);
    }
    Ok(out)
}

/// Writes `batch` as stream `stream` through the file sink configured by `toml`; returns
/// the output's file name, bytes and digest.
async fn write(dir: &Path, toml: &str, stream: &str, batch: &RecordBatch) -> (String, u64, String) {
    let sink = sink(toml, dir).unwrap();
    let mut w = sink
        .open(testkit::request(
            stream,
            batch.schema(),
            WriteMode::Overwrite,
        ))
        .await
        .unwrap();
    w.write(batch.clone()).await.unwrap();
    w.flush().await.unwrap();
    let summary = w.close().await.unwrap();
    assert_eq!(summary.rows, batch.num_rows() as u64);
    let out = &summary.outputs[0];
    let name = Path::new(&out.location)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (
        name,
        out.bytes.expect("bytes"),
        out.digest.clone().expect("digest"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_compression_and_encryption_round_trips() {
    let batch = testkit::all_types_batch();
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = age::generate_identity();
    std::fs::write(dir.path().join("key.txt"), secret.expose()).unwrap();
    let mut cases = 0;
    for format in ["csv", "jsonl", "parquet"] {
        let codecs: &[&str] = if format == "parquet" {
            &["none", "snappy", "gzip", "lz4", "zstd"]
        } else {
            &["none", "gzip", "zstd"]
        };
        for codec in codecs {
            for encrypted in [false, true] {
                let out = format!("out_{format}_{codec}_{encrypted}");
                let mut toml = format!("path = \"{out}\"\nformat = \"{format}\"\n");
                if format == "parquet" {
                    toml.push_str(&format!(
                        "parquet_compression = \"{codec}\"\nrow_group_rows = 2\n"
                    ));
                } else {
                    toml.push_str(&format!("compression = \"{codec}\"\n"));
                }
                if encrypted {
                    toml.push_str(&format!("encrypt = {{ recipients = [\"{public}\"] }}\n"));
                }
                let case = format!("{format} {codec} encrypted={encrypted}");
                let (name, bytes, digest) = write(dir.path(), &toml, "orders", &batch).await;
                // the name says every layer
                let mut want = format!("orders.{format}");
                match (format, *codec) {
                    ("parquet", _) | (_, "none") => {}
                    (_, "gzip") => want.push_str(".gz"),
                    _ => want.push_str(".zst"),
                }
                if encrypted {
                    want.push_str(".age");
                }
                assert_eq!(name, want, "{case}");
                // the receipt describes the file on disk
                let path = dir.path().join(&out).join(&name);
                assert_eq!(bytes, std::fs::metadata(&path).unwrap().len(), "{case}");
                assert_eq!(
                    digest,
                    ferry_formats::digest::file_sha256(&path).unwrap(),
                    "{case}"
                );
                let raw = std::fs::read(&path).unwrap();
                match (encrypted, format, *codec) {
                    (true, _, _) => assert!(raw.starts_with(b"age-encryption.org/v1"), "{case}"),
                    (false, "parquet", _) => assert!(raw.starts_with(b"PAR1"), "{case}"),
                    (false, _, "gzip") => assert!(raw.starts_with(&[0x1f, 0x8b]), "{case}"),
                    (false, _, "zstd") => {
                        assert!(raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "{case}")
                    }
                    (false, "csv", _) => assert!(raw.starts_with(b"id,"), "{case}"),
                    _ => assert!(raw.starts_with(b"{\"id\":"), "{case}"),
                }
                // read back through the source: layers from the name; Parquet types from
                // the footer, text formats with the types given
                let mut src_toml = format!("path = \"{out}/{name}\"\nstream = \"orders\"\n");
                if format != "parquet" {
                    src_toml.push_str(&format!(
                        "columns = {}\n",
                        testkit::columns_toml(&batch.schema())
                    ));
                }
                if encrypted {
                    src_toml.push_str("identity = \"${file:key.txt}\"\n");
                }
                let src = source(&src_toml, dir.path()).unwrap();
                let catalog = src.discover().await.unwrap();
                let schema = catalog.get("orders").unwrap().schema.clone();
                for (a, b) in schema.fields().iter().zip(batch.schema().fields()) {
                    assert_eq!(
                        (a.name(), FerryType::of(a)),
                        (b.name(), FerryType::of(b)),
                        "{case}"
                    );
                }
                let (got, rejected) = split(read(src.as_ref(), "orders", 1000).await.unwrap());
                assert!(rejected.is_empty(), "{case}: {rejected:?}");
                let fidelity = Fidelity {
                    empty_string_is_null: format == "csv",
                    typed: true,
                };
                testkit::assert_same_rows(&got, &batch, fidelity, &case);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * (3 + 3 + 5));
}

#[tokio::test]
async fn compressed_and_parquet_files_refuse_append_up_front() {
    let dir = tempfile::tempdir().unwrap();
    for toml in [
        "path = \"o\"\ncompression = \"gzip\"",
        "path = \"o\"\nformat = \"parquet\"",
    ] {
        let s = sink(toml, dir.path()).unwrap();
        assert_eq!(s.capabilities().modes, vec![WriteMode::Overwrite], "{toml}");
        let err = testkit::open_refused(
            s.as_ref(),
            "t",
            testkit::all_types_schema(),
            WriteMode::Append,
        )
        .await;
        assert!(err.to_string().contains("cannot be appended"), "{err}");
    }
    let err = sink_refused(
        "path = \"o\"\nformat = \"parquet\"\ncompression = \"zstd\"",
        dir.path(),
    );
    assert!(err.to_string().contains("parquet_compression"), "{err}");
}

/// A [`ChunkReader`] that counts the bytes asked of it.
struct Counting {
    data: Bytes,
    asked: Arc<AtomicU64>,
}

impl Length for Counting {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

impl ChunkReader for Counting {
    type T = CountingRead;

    fn get_read(&self, start: u64) -> ParquetResult<Self::T> {
        Ok(CountingRead {
            inner: self.data.get_read(start)?,
            asked: self.asked.clone(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        self.asked.fetch_add(length as u64, Ordering::SeqCst);
        self.data.get_bytes(start, length)
    }
}

/// Counts the bytes read through it.
struct CountingRead {
    inner: <Bytes as ChunkReader>::T,
    asked: Arc<AtomicU64>,
}

impl std::io::Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.asked.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// 10 row groups of 1,000 rows.
fn ten_row_groups(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("big.parquet");
    let first = testkit::simple_batch(0, 1000, "x");
    let mut w = ParquetWriter::new(
        File::create(&path).unwrap(),
        first.schema(),
        &ParquetOptions {
            compression: ParquetCompression::None,
            row_group_rows: 1000,
        },
    )
    .unwrap();
    for i in 0..10 {
        w.write_batch(&testkit::simple_batch(
            i * 1000,
            1000,
            "row-group-padding-text",
        ))
        .unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();
    path
}

#[tokio::test]
async fn parquet_streams_row_group_by_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = ten_row_groups(dir.path());
    let data = Bytes::from(std::fs::read(&path).unwrap());
    let total = data.len() as u64;
    let asked = Arc::new(AtomicU64::new(0));
    let schema = ferry_formats::codec::infer_parquet(&data).unwrap();
    let mut reader = FormatReader::<File>::parquet(
        Counting {
            data: data.clone(),
            asked: asked.clone(),
        },
        schema,
    )
    .unwrap()
    .with_batch_size(300)
    .with_file("big.parquet");
    let Some(Ok(Message::Batch(first))) = reader.next() else {
        panic!("a first batch")
    };
    assert_eq!(first.num_rows(), 300);
    let after_first = asked.load(Ordering::SeqCst);
    eprintln!("first batch of 10 row groups: {after_first} of {total} bytes read");
    // the footer plus one row group's column chunks: well under a fifth of the file
    assert!(
        after_first < total / 5,
        "reading one batch asked for {after_first} of {total} bytes"
    );
    let mut sizes = vec![first.num_rows()];
    for m in reader {
        if let Message::Batch(b) = m.unwrap() {
            sizes.push(b.num_rows());
        }
    }
    assert!(sizes.iter().all(|n| *n <= 300), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 10_000);
    // 1,000-row groups in batches of 300: 300, 300, 300, 100 per group
    assert_eq!(sizes.len(), 40, "{sizes:?}");

    // and through the connector, in small batches, with every row once
    let src = source("path = \"big.parquet\"", dir.path()).unwrap();
    let (batches, rejected) = split(read(src.as_ref(), "big", 256).await.unwrap());
    assert!(rejected.is_empty());
    assert!(batches.iter().all(|b| b.num_rows() <= 256));
    let rows = testkit::rows_by_id(&batches, Fidelity::EXACT);
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[9_999]["id"], serde_json::json!(9_999));
}

#[tokio::test]
async fn parquet_values_that_do_not_convert_are_rejected_with_their_row_group_and_row() {
    let dir = tempfile::tempdir().unwrap();
    ten_row_groups(dir.path());
    // `name` holds text: read as int64 it cannot convert, so every row is rejected, and
    // named by row group and row
    let src = source(
        "path = \"big.parquet\"\ncolumns = { name = \"int64\" }",
        dir.path(),
    )
    .unwrap();
    let (batches, rejected) = split(read(src.as_ref(), "big", 1000).await.unwrap());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    assert_eq!(rejected.len(), 10_000);
    let r = &rejected[2_500];
    assert_eq!(r.position.file.as_deref(), Some("big.parquet"));
    assert_eq!(r.position.column, Some(2));
    let key = r.position.key.as_deref().unwrap();
    assert!(key.starts_with("row group 2, row 500"), "{key}");
    assert!(
        r.message.contains("column `name`") && r.message.contains("int64"),
        "{}",
        r.message
    );
    assert!(r.raw.contains("row-group-padding-text-2500"), "{}", r.raw);
}

#[tokio::test]
async fn damaged_input_fails_clearly_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let batch = testkit::simple_batch(0, 20_000, "some text to compress");
    for (format, codec) in [("csv", "gzip"), ("jsonl", "zstd")] {
        let out = format!("o_{format}");
        write(
            dir.path(),
            &format!("path = \"{out}\"\nformat = \"{format}\"\ncompression = \"{codec}\""),
            "t",
            &batch,
        )
        .await;
        let ext = if codec == "gzip" { "gz" } else { "zst" };
        let path = dir.path().join(&out).join(format!("t.{format}.{ext}"));
        let data = std::fs::read(&path).unwrap();
        // truncated
        std::fs::write(
            dir.path().join(format!("cut.{format}.{ext}")),
            &data[..data.len() / 2],
        )
        .unwrap();
        // garbage
        std::fs::write(
            dir.path().join(format!("junk.{format}.{ext}")),
            b"this is not compressed at all\n".repeat(100),
        )
        .unwrap();
        for name in [
            format!("cut.{format}.{ext}"),
            format!("junk.{format}.{ext}"),
        ] {
            let src = source(
                &format!(
                    "path = \"{name}\"\nstream = \"t\"\ncolumns = {}",
                    testkit::columns_toml(&batch.schema())
                ),
                dir.path(),
            )
            .unwrap();
            let err = read(src.as_ref(), "t", 1000).await.unwrap_err();
            let text = format!("{err:?} {err}");
            assert!(text.contains(&name), "{name}: {text}");
            assert!(
                text.contains(codec) && text.contains("damaged"),
                "{name}: {text}"
            );
        }
    }
    // a Parquet file cut short: its footer is gone
    let (name, _, _) = write(
        dir.path(),
        "path = \"p\"\nformat = \"parquet\"",
        "t",
        &batch,
    )
    .await;
    let data = std::fs::read(dir.path().join("p").join(&name)).unwrap();
    std::fs::write(dir.path().join("cut.parquet"), &data[..data.len() - 100]).unwrap();
    let src = source("path = \"cut.parquet\"", dir.path()).unwrap();
    let err = src.discover().await.unwrap_err();
    let text = format!("{err:?} {err}");
    assert!(
        text.contains("cut.parquet") && text.contains("footer"),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::DataInvalid, "{text}");
    // ... also when the schema is given and the read goes straight to the file
    let err = read(
        source(
            &format!(
                "path = \"cut.parquet\"\ncolumns = {}",
                testkit::columns_toml(&batch.schema())
            ),
            dir.path(),
        )
        .unwrap()
        .as_ref(),
        "cut",
        1000,
    )
    .await
    .unwrap_err();
    let text = format!("{err:?} {err}");
    assert!(
        text.contains("cut.parquet") && text.contains("footer"),
        "{text}"
    );
}

#[tokio::test]
async fn file_column_names_each_rows_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("in")).unwrap();
    std::fs::write(dir.join("in/a.csv"), "id,name\n1,x\n2,y\n").unwrap();
    std::fs::write(dir.join("in/b.csv"), "id,name\n3,z\n").unwrap();
    let toml = "path = \"in/*.csv\"\nstream = \"rows\"\nfile_column = \"_ferry_source_file\"\n";
    let src = source(toml, dir).unwrap();
    // discover lists it, last, as text
    let catalog = src.discover().await.unwrap();
    let schema = catalog.get("rows").unwrap().schema.clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "name", "_ferry_source_file"]);
    assert_eq!(FerryType::of(schema.field(2)).unwrap(), FerryType::String);
    // batch size 1: every batch is one file's
    let (batches, rejected) = split(read(src.as_ref(), "rows", 1).await.unwrap());
    assert!(rejected.is_empty());
    let mut got = Vec::new();
    for b in &batches {
        assert_eq!(b.schema(), schema, "batches have the discovered schema");
        let ids = ferry_core::arrow_array::cast::AsArray::as_primitive::<
            ferry_core::arrow_array::types::Int64Type,
        >(b.column(0));
        let files = ferry_core::arrow_array::cast::AsArray::as_string::<i32>(b.column(2));
        for r in 0..b.num_rows() {
            got.push((ids.value(r), files.value(r).to_string()));
        }
    }
    got.sort();
    let want: Vec<(i64, String)> = [(1, "a"), (2, "a"), (3, "b")]
        .iter()
        .map(|(id, f)| (*id, format!("in/{f}.csv")))
        .collect();
    assert_eq!(got, want);
    // a name the files already have is refused, naming it
    let clash = source(
        "path = \"in/*.csv\"\nstream = \"rows\"\nfile_column = \"name\"\n",
        dir,
    )
    .unwrap()
    .discover()
    .await
    .unwrap_err();
    assert!(
        clash.to_string().contains("`file_column = \"name\"`"),
        "{clash}"
    );
}
