//! Writing one CSV or JSON Lines file per stream.
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
//! Rows are converted and written on a blocking thread through a `BufWriter`; memory is
//! one batch, whatever the stream's size.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::age::{self, EncryptingWriter, Recipients};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::codec::{infer_csv, CsvOptions, Format, FormatWriter, InferOptions};
use ferry_core::{
    async_trait, Durability, Error, ErrorKind, Output, Result, Sink, SinkCapabilities,
    StreamWriter, WriteMode, WriteRequest, WriteSummary,
};

use crate::config::FileSinkConfig;
use crate::source::blocking;

const WRITE_BUFFER: usize = 256 << 10;

/// The file destination.
pub(crate) struct FileSink {
    dir: PathBuf,
    format: Format,
    csv: CsvOptions,
    /// Who the files are encrypted for (none: plain files).
    encrypt: Option<Arc<Recipients>>,
}

impl FileSink {
    pub(crate) fn new(config: FileSinkConfig, base_dir: &Path) -> Result<Self> {
        if config.path.trim().is_empty() {
            return Err(Error::config("`path` (the output folder) is empty"));
        }
        let csv = config.csv()?;
        let encrypt = match &config.encrypt {
            None => None,
            Some(e) => Some(Arc::new(
                Recipients::new(&e.recipients, e.passphrase.as_ref(), base_dir)
                    .map_err(|err| Error::config(format!("`encrypt`: {}", err.message())))?,
            )),
        };
        Ok(FileSink {
            dir: base_dir.join(&config.path),
            format: config.format,
            csv,
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
fn file_name(stream: &str, format: Format, encrypted: bool) -> Result<String> {
    let bad = stream.is_empty()
        || stream.starts_with('.')
        || stream.contains(['/', '\\', '\0'])
        || stream.chars().any(char::is_control);
    if bad {
        return Err(Error::config(format!(
            "stream name `{stream}` cannot be a file name (it must not be empty, start with `.`, or hold `/` or `\\`); rename it with `destination = \"…\"` in [[streams]]"
        )));
    }
    let mut name = format!("{stream}.{}", format.extension());
    if encrypted {
        name.push('.');
        name.push_str(age::EXTENSION);
    }
    Ok(name)
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
        blocking(move || check_dir(&dir)).await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let name = file_name(&request.stream, self.format, self.encrypt.is_some())?;
        if request.mode == WriteMode::Upsert {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the file destination cannot upsert (it supports append and overwrite)",
            ));
        }
        if request.mode == WriteMode::Append && self.encrypt.is_some() {
            return Err(Error::config(format!(
                "stream `{}`: an encrypted (age) file cannot be appended to: set `mode = \"overwrite\"` for it in [[streams]], or remove `encrypt` from [destination]",
                request.stream
            )));
        }
        let (dir, format, csv) = (self.dir.clone(), self.format, self.csv.clone());
        let encrypt = self.encrypt.clone();
        let writer =
            blocking(move || FileWriter::open(dir, name, format, csv, encrypt, request)).await?;
        Ok(Box::new(writer))
    }

    fn capabilities(&self) -> SinkCapabilities {
        let modes = if self.encrypt.is_some() {
            vec![WriteMode::Overwrite]
        } else {
            vec![WriteMode::Append, WriteMode::Overwrite]
        };
        SinkCapabilities { modes }
    }
}

/// Where a format writer's bytes go: the file itself, or an age encryptor in front of it.
enum Out {
    Plain(File),
    Age(EncryptingWriter<File>),
}

impl Out {
    /// Seals an age file's last chunk; returns the file.
    fn finish(self) -> Result<File> {
        match self {
            Out::Plain(f) => Ok(f),
            Out::Age(w) => w.finish(),
        }
    }

    /// Fsyncs a plain file's data (an age file is only ever made durable at close).
    fn sync_data(&self) -> std::io::Result<()> {
        match self {
            Out::Plain(f) => f.sync_data(),
            Out::Age(_) => Ok(()),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Plain(f) => f.write(buf),
            Out::Age(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Plain(f) => f.write_all(buf),
            Out::Age(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Plain(f) => f.flush(),
            Out::Age(w) => w.flush(),
        }
    }
}

type Inner = FormatWriter<BufWriter<Out>>;

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
    /// Whether the file is age-encrypted.
    encrypted: bool,
}

impl FileWriter {
    fn open(
        dir: PathBuf,
        name: String,
        format: Format,
        csv: CsvOptions,
        encrypt: Option<Arc<Recipients>>,
        request: WriteRequest,
    ) -> Result<Self> {
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
            let out = match &encrypt {
                None => Out::Plain(file),
                Some(recipients) => match age::encrypt_writer(recipients, file) {
                    Ok(w) => Out::Age(w),
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp);
                        return Err(e.with("file", temp.display()));
                    }
                },
            };
            let inner = FormatWriter::new(
                format,
                BufWriter::with_capacity(WRITE_BUFFER, out),
                stream_schema,
                &csv,
            )?;
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
                encrypted: encrypt.is_some(),
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
        let inner = FormatWriter::new(
            format,
            BufWriter::with_capacity(WRITE_BUFFER, Out::Plain(file)),
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
            encrypted: false,
        })
    }

    fn take(&mut self) -> Result<Inner> {
        self.inner
            .take()
            .ok_or_else(|| Error::internal("the file writer was used after it failed"))
    }

    /// The file being written.
    fn written(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.target)
    }
}

#[async_trait]
impl StreamWriter for FileWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut inner = self.take()?;
        let path = self.written().to_path_buf();
        let (inner, result) = blocking(move || {
            let r = inner
                .write_batch(&batch)
                .map_err(|e| e.with("file", path.display()));
            Ok((inner, r))
        })
        .await?;
        self.inner = Some(inner);
        result
    }

    async fn flush(&mut self) -> Result<Durability> {
        if self.mode == WriteMode::Overwrite {
            // made durable, all at once, by close
            return Ok(Durability::AtClose);
        }
        let mut inner = self.take()?;
        let path = self.target.clone();
        let (inner, result) = blocking(move || {
            let r = inner.flush().and_then(|()| {
                inner
                    .get_ref()
                    .get_ref()
                    .sync_data()
                    .map_err(|e| Error::io(e, "cannot fsync", &path))
            });
            Ok((inner, r))
        })
        .await?;
        if result.is_ok() {
            self.durable_len = self.start_len + self.prefix + inner.bytes();
        }
        self.inner = Some(inner);
        result.map(|()| Durability::Durable)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let inner = self.take()?;
        let (rows, bytes) = (inner.rows(), inner.bytes());
        let (written, target, temp, dir) = (
            self.written().to_path_buf(),
            self.target.clone(),
            self.temp.clone(),
            self.dir.clone(),
        );
        let on_disk = blocking(move || {
            let file = inner
                .into_inner()?
                .into_inner()
                .map_err(|e| Error::io(e.into_error(), "cannot write", &written))?
                .finish()
                .map_err(|e| e.with("file", written.display()))?;
            file.sync_all()
                .map_err(|e| Error::io(e, "cannot fsync", &written))?;
            let on_disk = file
                .metadata()
                .map_err(|e| Error::io(e, "cannot read file details", &written))?
                .len();
            drop(file);
            if let Some(temp) = &temp {
                std::fs::rename(temp, &target).map_err(|e| {
                    Error::io(e, "cannot move the finished file into place", &target)
                })?;
            }
            sync_dir(&dir);
            Ok(on_disk)
        })
        .await;
        let on_disk = match on_disk {
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
            location: self.target.display().to_string(),
            rows,
            // an age file's own size; a plain file's bytes written by this run
            bytes: Some(if self.encrypted {
                on_disk
            } else {
                bytes + self.prefix
            }),
            digest: None,
        };
        Ok(WriteSummary {
            rows,
            outputs: vec![output],
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let inner = self.inner.take();
        let (temp, target) = (self.temp.clone(), self.target.clone());
        let (durable_len, created) = (self.durable_len, self.created);
        blocking(move || {
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
