//! Writing one CSV, JSON Lines or Parquet file per stream.
//!
//! Bytes go through the shared codec layers, inside out: format writer → compression
//! (`compression`, CSV and JSON Lines only; Parquet compresses its column chunks itself) →
//! age encryption (`encrypt`) → a hashing writer → the file. The name says the layers:
//! `<stream>.csv.gz.age`. The receipt's size and SHA-256 are of the final file on disk,
//! taken as it is written.
//!
//! - `overwrite` writes `.<stream>.<ext>.<run id>.tmp` in the same folder and, at `close`,
//!   fsyncs it and renames it over `<stream>.<ext>`: readers see the old file or the whole
//!   new one, never half of one; `abort` deletes the temp file.
//! - `append` adds to `<stream>.<ext>` (a CSV header only when the file is new or empty,
//!   and the existing header must name the same columns); `flush` fsyncs, so what the
//!   runtime commits state for is on disk. `abort` cuts the file back to its length at the
//!   last flush, so a failed run leaves no half-written row.
//!
//! - `encrypt` writes `<stream>.<ext>.age` instead: the same rows, encrypted in the
//!   standard age v1 format to the configured recipients as they are written (one 64 KiB
//!   chunk in memory), so the client reads them with the `age` command and no Ferry.
//!   Only `overwrite` is supported: an age file is sealed by its last chunk and cannot be
//!   appended to, so `append` is refused at `open` (and not offered in the capabilities,
//!   so a sync refuses it before reading a row). The temp-file-then-rename rule holds: a
//!   failed run leaves the old file, and a half-written age file never takes its place.
//!
//! - `encrypt = { pgp_recipients = [...] }` writes `<stream>.<ext>.gpg` (or `.asc`
//!   armored) instead: OpenPGP to the client's public keys, optionally signed with ours,
//!   streamed through an encrypting thread; `gpg --decrypt` opens it. The same rules as
//!   age: `overwrite` only, temp file then rename.
//!
//! - A compressed or Parquet file is, like an age file, complete only when closed (a gzip
//!   or zstd trailer, a Parquet footer), so those too are written with `overwrite` only.
//!
//! Rows are converted and written on a blocking thread through a `BufWriter`; memory is
//! one batch (Parquet: one row group, encoded), whatever the stream's size.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    async_trait, Durability, Error, ErrorKind, Output, Result, Sink, SinkCapabilities,
    StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use ferry_filestore::{blocking, delivery_name, take_parked, with_parked, Sealed, Sealing};
use ferry_formats::codec::{
    infer_csv, CompressWriter, Compression, CsvOptions, Format, FormatWriter, HashingWriter,
    InferOptions, WriteOptions,
};

use crate::config::FileSinkConfig;

const WRITE_BUFFER: usize = 256 << 10;

/// The file destination.
pub(crate) struct FileSink {
    dir: PathBuf,
    layout: Layout,
    /// How, and for whom, the files are encrypted (none: plain files).
    encrypt: Option<Sealing>,
}

/// How a stream's file is laid out.
#[derive(Debug, Clone)]
struct Layout {
    format: Format,
    options: WriteOptions,
    compression: Compression,
}

impl Layout {
    /// Why the file cannot be appended to (`None`: it can).
    fn no_append(&self, encrypted: bool) -> Option<&'static str> {
        if encrypted {
            Some("an encrypted (age or OpenPGP) file cannot be appended to: set `mode = \"overwrite\"` for it in [[streams]], or remove `encrypt` from [destination]")
        } else if self.format == Format::Parquet {
            Some("a Parquet file cannot be appended to (its footer indexes every row group): set `mode = \"overwrite\"` for it in [[streams]]")
        } else if self.compression != Compression::None {
            Some("a compressed file cannot be appended to here: set `mode = \"overwrite\"` for it in [[streams]], or `compression = \"none\"` in [destination]")
        } else {
            None
        }
    }
}

impl FileSink {
    pub(crate) fn new(config: FileSinkConfig, base_dir: &Path) -> Result<Self> {
        if config.path.trim().is_empty() {
            return Err(Error::config("`path` (the output folder) is empty"));
        }
        let csv = config.csv()?;
        let parquet = config.parquet()?;
        let encrypt = Sealing::of(config.encrypt.as_ref(), base_dir)?;
        Ok(FileSink {
            dir: base_dir.join(&config.path),
            layout: Layout {
                format: config.format,
                options: WriteOptions { csv, parquet },
                compression: if config.format == Format::Parquet {
                    Compression::None
                } else {
                    config.compression
                },
            },
            encrypt,
        })
    }
}

/// Checks `dir` exists and is writable, or can be created (without creating it).
fn check_dir(dir: &Path) -> Result<()> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        let msg = if existing == dir {
            format!(
                "the output folder `{}` is a file, not a folder",
                dir.display()
            )
        } else {
            format!(
                "`{}` is a file, so the output folder `{}` cannot be made",
                existing.display(),
                dir.display()
            )
        };
        return Err(Error::new(ErrorKind::ConfigInvalid, msg));
    }
    let probe = existing.join(format!(".ferry-check-{}", std::process::id()));
    let what = if existing == dir {
        "the output folder is not writable".to_string()
    } else {
        format!(
            "the output folder does not exist and cannot be created in `{}`",
            existing.display()
        )
    };
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"ok"));
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| Error::io(e, &what, dir))
}

/// Refuses stream names that are not plain file names.
fn file_name(stream: &str, layout: &Layout, encrypted: Option<&Sealing>) -> Result<String> {
    delivery_name(stream, layout.format, layout.compression, encrypted)
}

/// The column names of an existing CSV file's header.
fn existing_header(path: &Path, csv: &CsvOptions) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| Error::io(e, "cannot open", path))?;
    let schema = infer_csv(
        file,
        csv,
        &InferOptions {
            sample_rows: 0,
            overrides: Vec::new(),
        },
    )
    .map_err(|e| e.with("file", path.display()))?;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// Whether a non-empty file's last byte is a line break.
fn ends_with_newline(path: &Path, len: u64) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(len - 1))?;
    let mut b = [0u8];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn check(&self) -> Result<()> {
        let dir = self.dir.clone();
        blocking("file", move || check_dir(&dir)).await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let name = file_name(&request.stream, &self.layout, self.encrypt.as_ref())?;
        if matches!(request.mode, WriteMode::Upsert | WriteMode::History) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the file destination cannot write with mode = \"{}\" (it supports append and overwrite)",
                    request.mode
                ),
            ));
        }
        if request.mode == WriteMode::Append {
            if let Some(why) = self.layout.no_append(self.encrypt.is_some()) {
                return Err(Error::config(format!("stream `{}`: {why}", request.stream)));
            }
        }
        let (dir, layout) = (self.dir.clone(), self.layout.clone());
        let encrypt = self.encrypt.clone();
        let writer = blocking("file", move || {
            FileWriter::open(dir, name, layout, encrypt, request)
        })
        .await?;
        Ok(Box::new(writer))
    }

    // abort deletes an overwrite's temp file and cuts an appended file back to its last flush
    fn rolls_back(&self) -> bool {
        true
    }

    fn capabilities(&self) -> SinkCapabilities {
        let modes = if self.layout.no_append(self.encrypt.is_some()).is_some() {
            vec![WriteMode::Overwrite]
        } else {
            vec![WriteMode::Append, WriteMode::Overwrite]
        };
        SinkCapabilities { modes }
    }

    fn delivery_root(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }
}

/// Where the (compressed) bytes go: the file itself, or an age encryptor in front of it;
/// either way through a hash of what lands on disk.
type Out = Sealed<HashingWriter<File>>;

/// Fsyncs a plain file's data (an age file is only ever made durable at close).
fn sync_data(out: &Out) -> std::io::Result<()> {
    match out {
        Sealed::Plain(f) => f.get_ref().sync_data(),
        Sealed::Age(_) | Sealed::Pgp(_) => Ok(()),
    }
}

type Inner = FormatWriter<BufWriter<CompressWriter<Out>>>;

/// Writes one stream's file.
struct FileWriter {
    /// `None` only while a blocking task holds it, or after it failed.
    inner: Option<Inner>,
    mode: WriteMode,
    dir: PathBuf,
    target: PathBuf,
    /// The temp file of an overwrite.
    temp: Option<PathBuf>,
    /// Length of the file before this run (append).
    start_len: u64,
    /// Bytes written before the format writer's (a line break added to an unterminated file).
    prefix: u64,
    /// Length of the file as of the last flush (append): what `abort` cuts back to.
    durable_len: u64,
    /// Whether this run created the file (append).
    created: bool,
}

impl FileWriter {
    fn open(
        dir: PathBuf,
        name: String,
        layout: Layout,
        encrypt: Option<Sealing>,
        request: WriteRequest,
    ) -> Result<Self> {
        let Layout {
            format,
            options,
            compression,
        } = layout;
        let csv = options.csv.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(e, "cannot create the output folder", &dir))?;
        let target = dir.join(&name);
        let stream_schema = request.schema.clone();
        if request.mode == WriteMode::Overwrite {
            let run: String = request
                .run_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect();
            let temp = dir.join(format!(".{name}.{run}.tmp"));
            let file = File::create(&temp)
                .map_err(|e| Error::io(e, "cannot create a temporary file", &temp))?;
            let file = HashingWriter::new(file);
            // the name inside an OpenPGP file: the delivery's without `.gpg`
            let inner = name
                .rsplit_once('.')
                .map_or(name.as_str(), |(stem, _)| stem);
            let out = match &encrypt {
                None => Sealed::Plain(file),
                Some(sealing) => match sealing.seal(file, inner) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp);
                        return Err(e.with("file", temp.display()));
                    }
                },
            };
            let started = CompressWriter::new(out, compression).and_then(|out| {
                FormatWriter::with_options(
                    format,
                    BufWriter::with_capacity(WRITE_BUFFER, out),
                    stream_schema,
                    &options,
                )
            });
            let inner = match started {
                Ok(w) => w,
                Err(e) => {
                    let _ = std::fs::remove_file(&temp);
                    return Err(e.with("file", temp.display()));
                }
            };
            return Ok(FileWriter {
                inner: Some(inner),
                mode: request.mode,
                dir,
                target,
                temp: Some(temp),
                start_len: 0,
                prefix: 0,
                durable_len: 0,
                created: true,
            });
        }
        let (start_len, existed) = match std::fs::metadata(&target) {
            Ok(m) if m.is_file() => (m.len(), true),
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::ConfigInvalid,
                    format!("`{}` is not a file", target.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, false),
            Err(e) => return Err(Error::io(e, "cannot read file details", &target)),
        };
        if start_len > 0 && format == Format::Csv && csv.has_header {
            let have = existing_header(&target, &csv)?;
            let want: Vec<String> = stream_schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            if have != want {
                return Err(Error::new(
                    ErrorKind::SchemaMismatch,
                    format!(
                        "cannot append: `{}` has columns ({}) but the stream has ({}); write to another folder or use mode = \"overwrite\"",
                        target.display(),
                        have.join(", "),
                        want.join(", ")
                    ),
                ));
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)
            .map_err(|e| Error::io(e, "cannot open for appending", &target))?;
        let mut prefix = 0;
        if start_len > 0
            && !ends_with_newline(&target, start_len)
                .map_err(|e| Error::io(e, "cannot read", &target))?
        {
            // a file without a final line break: start the rows on a line of their own
            file.write_all(b"\n")
                .map_err(|e| Error::io(e, "cannot write", &target))?;
            prefix = 1;
        }
        let csv = CsvOptions {
            has_header: csv.has_header && start_len == 0,
            ..csv
        };
        let out = CompressWriter::new(Sealed::Plain(HashingWriter::new(file)), Compression::None)?;
        let inner = FormatWriter::new(
            format,
            BufWriter::with_capacity(WRITE_BUFFER, out),
            stream_schema,
            &csv,
        )?;
        Ok(FileWriter {
            inner: Some(inner),
            mode: request.mode,
            dir,
            target,
            temp: None,
            start_len,
            prefix,
            durable_len: start_len,
            created: !existed,
        })
    }

    /// The file being written.
    fn written(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.target)
    }
}

#[async_trait]
impl StreamWriter for FileWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let path = self.written().to_path_buf();
        with_parked(&mut self.inner, "file", move |inner| {
            inner
                .write_batch(&batch)
                .map_err(|e| e.with("file", path.display()))
        })
        .await?
    }

    async fn flush(&mut self) -> Result<Durability> {
        if self.mode == WriteMode::Overwrite {
            // made durable, all at once, by close
            return Ok(Durability::AtClose);
        }
        let path = self.target.clone();
        let result = with_parked(&mut self.inner, "file", move |inner| {
            inner.flush().and_then(|()| {
                sync_data(inner.get_ref().get_ref().get_ref())
                    .map_err(|e| Error::io(e, "cannot fsync", &path))
            })
        })
        .await?;
        if let (Ok(()), Some(inner)) = (&result, &self.inner) {
            self.durable_len = self.start_len + self.prefix + inner.bytes();
        }
        result.map(|()| Durability::Durable)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let inner = take_parked(&mut self.inner, "file")?;
        let rows = inner.rows();
        let (written, target, temp, dir) = (
            self.written().to_path_buf(),
            self.target.clone(),
            self.temp.clone(),
            self.dir.clone(),
        );
        let finished = blocking("file", move || {
            let hashed = inner
                .into_inner()
                .map_err(|e| e.with("file", written.display()))?
                .into_inner()
                .map_err(|e| Error::io(e.into_error(), "cannot write", &written))?
                .finish()
                .and_then(Sealed::finish)
                .map_err(|e| e.with("file", written.display()))?;
            let (digest, written_bytes) = (hashed.digest(), hashed.bytes());
            let file = hashed.into_inner();
            file.sync_all()
                .map_err(|e| Error::io(e, "cannot fsync", &written))?;
            drop(file);
            if let Some(temp) = &temp {
                std::fs::rename(temp, &target).map_err(|e| {
                    Error::io(e, "cannot move the finished file into place", &target)
                })?;
            }
            sync_dir(&dir);
            Ok((digest, written_bytes))
        })
        .await;
        let (digest, written_bytes) = match finished {
            Ok(n) => n,
            Err(e) => {
                // never leave a temp file behind, encrypted or not
                if let Some(temp) = &self.temp {
                    let _ = std::fs::remove_file(temp);
                }
                return Err(e);
            }
        };
        let output = Output {
            kind: "file".into(),
            // relative to the destination folder: receipts name no local folders, and a
            // client checks a copied delivery against them
            location: self
                .target
                .strip_prefix(&self.dir)
                .unwrap_or(&self.target)
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/"),
            root: Some(self.dir.clone()),
            rows,
            // the bytes this run put on disk: the whole file, unless appended to
            bytes: Some(written_bytes + self.prefix),
            // of the whole file as written (an appended file is hashed by the receipt)
            digest: (self.mode == WriteMode::Overwrite).then_some(digest),
            closed: None,
        };
        Ok(WriteSummary::of(output))
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let inner = self.inner.take();
        let (temp, target) = (self.temp.clone(), self.target.clone());
        let (durable_len, created) = (self.durable_len, self.created);
        blocking("file", move || {
            // dropping pushes out buffered bytes; what lies past the last flush is cut below
            drop(inner);
            if let Some(temp) = temp {
                return match std::fs::remove_file(&temp) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(Error::io(e, "cannot remove the temporary file", &temp))
                    }
                    _ => Ok(()),
                };
            }
            if created && durable_len == 0 {
                let _ = std::fs::remove_file(&target);
                return Ok(());
            }
            let f = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| Error::io(e, "cannot open", &target))?;
            f.set_len(durable_len)
                .map_err(|e| Error::io(e, "cannot cut back a partly written file", &target))?;
            f.sync_all()
                .map_err(|e| Error::io(e, "cannot fsync", &target))
        })
        .await
    }
}
