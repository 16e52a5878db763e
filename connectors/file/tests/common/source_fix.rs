//! The kit's source fixture on files of one format, a folder per stream: plain, or
//! age-encrypted (the checks with encryption on).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::{async_trait, Result, Secret, Source};
use ferry_formats::age::{self, Recipients};
use ferry_formats::codec::{CsvOptions, Format, FormatWriter};
use ferry_testkit::{
    self as testkit, write_batch_file, write_newer_file, Fidelity, SourceFixture, StreamFolders,
};

use super::{io, source};

/// Writes `batch` to `path` as an age file for `recipients`.
pub fn write_encrypted(
    path: &Path,
    format: Format,
    batch: &RecordBatch,
    recipients: &Recipients,
) -> Result<()> {
    let file = BufWriter::new(File::create(path).map_err(io)?);
    let mut w = FormatWriter::new(
        format,
        age::encrypt_writer(recipients, file)?,
        batch.schema(),
        &CsvOptions::default(),
    )?;
    w.write_batch(batch)?;
    w.into_inner()?.finish()?.flush().map_err(io)
}

/// A new age key: files are written for `recipients`, read with `secret`.
struct AgeKey {
    recipients: Recipients,
    secret: Secret,
}

pub struct SourceFix {
    format: Format,
    dirs: StreamFolders,
    scratch: tempfile::TempDir,
    /// When set, every file is encrypted for it.
    key: Option<AgeKey>,
}

impl SourceFix {
    pub fn plain(format: Format) -> Self {
        SourceFix::with(format, None)
    }

    pub fn encrypted(format: Format) -> Self {
        let (secret, public) = age::generate_identity();
        let recipients = Recipients::parse(&[public], Path::new(".")).unwrap();
        SourceFix::with(format, Some(AgeKey { recipients, secret }))
    }

    fn with(format: Format, key: Option<AgeKey>) -> Self {
        SourceFix {
            format,
            dirs: StreamFolders::default(),
            scratch: tempfile::tempdir().unwrap(),
            key,
        }
    }

    /// How the files end: the format's extension, then `.age` when encrypted.
    fn ext(&self) -> String {
        let ext = self.format.extension();
        match self.key {
            Some(_) => format!("{ext}.age"),
            None => ext.to_string(),
        }
    }

    fn file(&self, stream: &str, n: u32) -> PathBuf {
        self.dirs
            .path(stream)
            .join(format!("{stream}_{n:04}.{}", self.ext()))
    }

    fn write(&self, path: &Path, batch: &RecordBatch) -> Result<()> {
        match &self.key {
            Some(key) => write_encrypted(path, self.format, batch, &key.recipients),
            None => write_batch_file(path, self.format, batch),
        }
    }
}

#[async_trait]
impl SourceFixture for SourceFix {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        let dir = self.dirs.create(stream)?;
        self.write(&self.file(stream, 1), batch)?;
        // what the source is told beside the path: the key file, or the stream's name
        let extra = match &self.key {
            Some(key) => {
                std::fs::write(dir.join("key.txt"), key.secret.expose()).map_err(io)?;
                "identity = \"${file:key.txt}\"".to_string()
            }
            None => format!("stream = \"{stream}\""),
        };
        let toml = format!(
            "path = \"{stream}_*.{}\"\n{extra}\nprimary_key = [\"id\"]\ncolumns = {}\n",
            self.ext(),
            testkit::columns_toml(&batch.schema())
        );
        source(&toml, &dir)
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        write_newer_file(&self.file(stream, 1), &self.file(stream, 2), |path| {
            self.write(path, batch)
        })
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    /// Plain: a folder that is not there. Encrypted: a file and a key that does not open it.
    fn broken(&self) -> Option<Arc<dyn Source>> {
        let dir = self.scratch.path();
        let ext = self.ext();
        let toml = match self.key {
            None => format!("path = \"missing-folder/*.{ext}\""),
            Some(_) => {
                let file = dir.join(format!("b.{ext}"));
                self.write(&file, &testkit::simple_batch(1, 1, "b"))
                    .unwrap();
                let (other, _) = age::generate_identity();
                std::fs::write(dir.join("other.key"), other.expose()).unwrap();
                format!("path = \"b.{ext}\"\nidentity = \"${{file:other.key}}\"")
            }
        };
        Some(source(&toml, dir).expect("config is valid"))
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}
