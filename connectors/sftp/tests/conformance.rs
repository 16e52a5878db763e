//! The SFTP connector against a real sshd: the shared conformance kit for CSV, JSON Lines
//! and Parquet (read and written), compressed and age-encrypted files, and what is
//! particular to a remote folder (globs over sub-folders, missing folders, permissions).

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{login, names, sink, source, SftpServer};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{async_trait, Error, ErrorKind, Result, Sink, Source};
use ferry_formats::codec::{Compression, Format};
use ferry_testkit::{
    self as testkit, read_batch_file, write_batch_file, Fidelity, SinkFixture, SourceFixture,
};

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, e.to_string())
}

struct SourceFix {
    server: SftpServer,
    format: Format,
}

impl SourceFix {
    fn file(&self, stream: &str, n: u32) -> PathBuf {
        self.server.root().join(format!(
            "{stream}/{stream}_{n:04}.{}",
            self.format.extension()
        ))
    }
}

#[async_trait]
impl SourceFixture for SourceFix {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        write_batch_file(&self.file(stream, 1), self.format, batch)?;
        common::give_to_user(&self.server.root());
        let ext = self.format.extension();
        let toml = login(
            &self.server,
            &format!(
                "path = \"{stream}/{stream}_*.{ext}\"\nstream = \"{stream}\"\nprimary_key = [\"id\"]\ncolumns = {}\n",
                testkit::columns_toml(&batch.schema())
            ),
        );
        source(&toml)
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        let first = std::fs::metadata(self.file(stream, 1))
            .map_err(io)?
            .modified()
            .map_err(io)?;
        let path = self.file(stream, 2);
        write_batch_file(&path, self.format, batch)?;
        let f = File::options().write(true).open(&path).map_err(io)?;
        // SFTP times are whole seconds: a later second
        f.set_modified(first + Duration::from_secs(10)).map_err(io)
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        let toml = login(&self.server, "path = \"x/*.csv\"").replace(common::PASSWORD, "wrong");
        Some(source(&toml).expect("config is valid"))
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity {
            empty_string_is_null: self.format == Format::Csv,
            typed: true,
        }
    }
}

struct SinkFix {
    server: SftpServer,
    format: Format,
    compression: Compression,
    sink: Arc<dyn Sink>,
}

impl SinkFix {
    fn new(format: Format, compression: Compression) -> SinkFix {
        let server = SftpServer::start();
        let sink = sink(&login(
            &server,
            &format!(
                "path = \"deliveries/out\"\nformat = \"{format}\"\ncompression = \"{compression}\""
            ),
        ))
        .unwrap();
        SinkFix {
            server,
            format,
            compression,
            sink,
        }
    }

    fn out(&self) -> PathBuf {
        self.server.root().join("deliveries/out")
    }
}

#[async_trait]
impl SinkFixture for SinkFix {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    /// The stream's file (`overwrite`) and the files `append` added (`<stream>-<run>.<ext>`).
    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let mut ext = self.format.extension().to_string();
        if let Some(c) = self.compression.extension() {
            ext = format!("{ext}.{c}");
        }
        let mut out = Vec::new();
        for name in names(&self.out()) {
            let run = name
                .strip_prefix(&format!("{stream}-"))
                .and_then(|r| r.strip_suffix(&format!(".{ext}")));
            if name == format!("{stream}.{ext}") || run.is_some_and(|r| !r.contains('.')) {
                let path = self.out().join(name);
                out.extend(read_batch_file(
                    &path,
                    self.format,
                    self.compression,
                    schema,
                )?);
            }
        }
        Ok(out)
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity {
            empty_string_is_null: self.format == Format::Csv,
            typed: true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_conformance_csv_jsonl_parquet() {
    for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
        let f = SourceFix {
            server: SftpServer::start(),
            format,
        };
        testkit::run_source_suite(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_conformance_csv_jsonl_parquet_and_compressed() {
    for (format, compression) in [
        (Format::Csv, Compression::None),
        (Format::Jsonl, Compression::None),
        (Format::Parquet, Compression::None),
        (Format::Csv, Compression::Gzip),
        (Format::Jsonl, Compression::Zstd),
    ] {
        let f = SinkFix::new(format, compression);
        testkit::run_sink_suite(&f).await;
        let hidden: Vec<String> = names(&f.out())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(
            hidden,
            Vec::<String>::new(),
            "{format}/{compression}: temp files left"
        );
    }
}
