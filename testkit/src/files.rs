//! Batches to and from files with the codec writers and readers, for the tests of the
//! file-like connectors (file, sftp): fixtures in, deliveries back, and the sink fixture
//! of a connector that delivers into a folder.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use ferry_core::sink::Sink;
use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::codec::{
    decompress, Compression, CsvOptions, Format, FormatReader, FormatWriter,
};

use crate::{Fidelity, SinkFixture};

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, e.to_string())
}

/// The names of the files in `dir` (hidden ones included), sorted; none when there is no
/// such folder.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Writes `batch` to a new file at `path` (folders made) in `format`.
pub fn write_batch_file(path: &Path, format: Format, batch: &RecordBatch) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    let mut w = FormatWriter::new(
        format,
        BufWriter::new(file),
        batch.schema(),
        &CsvOptions::default(),
    )?;
    w.write_batch(batch)?;
    w.into_inner()?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    Ok(())
}

/// Every row of the file at `path` (none when there is no file), decompressed with
/// `compression`; a rejected record is an error.
pub fn read_batch_file(
    path: &Path,
    format: Format,
    compression: Compression,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = File::open(path).map_err(io)?;
    let reader = if format == Format::Parquet {
        FormatReader::parquet(file, schema.clone())?
    } else {
        FormatReader::new(
            format,
            decompress(Box::new(file), compression)?,
            schema.clone(),
            &CsvOptions::default(),
        )?
    };
    crate::batches_only(reader)
}

/// One temporary folder per stream, for source fixtures that keep each stream's files in
/// a folder of its own; the folders go when this is dropped.
#[derive(Default)]
pub struct StreamFolders(Mutex<HashMap<String, tempfile::TempDir>>);

impl StreamFolders {
    /// Makes a fresh folder for `stream` and returns its path.
    pub fn create(&self, stream: &str) -> Result<PathBuf> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().to_path_buf();
        self.lock().insert(stream.to_string(), dir);
        Ok(path)
    }

    /// The folder of `stream` (made by [`StreamFolders::create`]).
    pub fn path(&self, stream: &str) -> PathBuf {
        self.lock()[stream].path().to_path_buf()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, tempfile::TempDir>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes a newer file of a stream at `path` with `write`, dated ten seconds after the
/// stream's `first` file, so that an incremental read picks it up (SFTP times are whole
/// seconds: a later second).
pub fn write_newer_file(
    first: &Path,
    path: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let first = std::fs::metadata(first)
        .map_err(io)?
        .modified()
        .map_err(io)?;
    write(path)?;
    let f = File::options().write(true).open(path).map_err(io)?;
    f.set_modified(first + Duration::from_secs(10)).map_err(io)
}

/// The file a folder sink delivers stream `stream` as: `<stream>.<format>[.<compression>]`.
pub fn delivered_file(
    out: &Path,
    stream: &str,
    format: Format,
    compression: Compression,
) -> PathBuf {
    let mut name = format!("{stream}.{}", format.extension());
    if let Some(ext) = compression.extension() {
        name = format!("{name}.{ext}");
    }
    out.join(name)
}

/// The formats and compressions a folder sink's conformance runs in.
pub const FOLDER_SINK_CASES: [(Format, Compression); 5] = [
    (Format::Csv, Compression::None),
    (Format::Jsonl, Compression::None),
    (Format::Parquet, Compression::None),
    (Format::Csv, Compression::Gzip),
    (Format::Jsonl, Compression::Zstd),
];

/// A sink that delivers one file a stream into a folder this test can read (the file
/// connector's, or an SFTP server's root), read back with [`read_batch_file`].
pub struct FolderSinkFixture<K> {
    /// The sink under test.
    pub sink: Arc<dyn Sink>,
    /// What it writes.
    pub format: Format,
    /// How it compresses.
    pub compression: Compression,
    /// The folder it delivers into.
    pub out: PathBuf,
    /// What keeps the folder alive (a temporary folder, a server).
    pub keep: K,
}

#[async_trait]
impl<K: Send + Sync> SinkFixture for FolderSinkFixture<K> {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    /// The stream's file, then the files an `append` added beside it (`<stream>-<run>.<ext>`,
    /// as the SFTP destination delivers), in name order.
    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let path = delivered_file(&self.out, stream, self.format, self.compression);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let ext = file.strip_prefix(stream).unwrap_or_default();
        let appended = |name: &str| {
            name.strip_prefix(&format!("{stream}-"))
                .and_then(|r| r.strip_suffix(ext))
                .is_some_and(|run| !run.contains('.'))
        };
        let mut out = Vec::new();
        for name in names(&self.out) {
            if name == file || appended(&name) {
                let at = self.out.join(&name);
                out.extend(read_batch_file(&at, self.format, self.compression, schema)?);
            }
        }
        Ok(out)
    }

    fn fidelity(&self) -> Fidelity {
        Fidelity::of_format(self.format)
    }
}
