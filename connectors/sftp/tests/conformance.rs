//! The SFTP connector against a real sshd: the shared conformance kit for CSV, JSON Lines
//! and Parquet (read and written), compressed and age-encrypted files, and what is
//! particular to a remote folder (globs over sub-folders, missing folders, permissions).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{login, names, sink, source, SftpServer};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{async_trait, Result, Source};
use ferry_formats::codec::{Compression, Format};
use ferry_testkit::{
    self as testkit, write_batch_file, write_newer_file, Fidelity, FolderSinkFixture,
    SourceFixture, FOLDER_SINK_CASES,
};

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
        write_newer_file(&self.file(stream, 1), &self.file(stream, 2), |path| {
            write_batch_file(path, self.format, batch)
        })
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        let toml = login(&self.server, "path = \"x/*.csv\"").replace(common::PASSWORD, "wrong");
        Some(source(&toml).expect("config is valid"))
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}

/// An SFTP sink writing `format` with `compression` into a fresh server's `deliveries/out`.
fn sink_fix(format: Format, compression: Compression) -> FolderSinkFixture<SftpServer> {
    let server = SftpServer::start();
    let sink = sink(&login(
        &server,
        &format!(
            "path = \"deliveries/out\"\nformat = \"{format}\"\ncompression = \"{compression}\""
        ),
    ))
    .unwrap();
    FolderSinkFixture {
        sink,
        format,
        compression,
        out: server.root().join("deliveries/out"),
        keep: server,
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
    for (format, compression) in FOLDER_SINK_CASES {
        let f = sink_fix(format, compression);
        testkit::run_sink_suite(&f).await;
        let hidden: Vec<String> = names(&f.out)
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
