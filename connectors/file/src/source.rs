//! Reading CSV, JSON Lines and Parquet files: one stream per pattern, files in order, each
//! file streamed on a blocking thread through a bounded channel, a checkpoint after each.
//!
//! Each file goes through the shared codec layers (`ferry_core::codec`): decrypted when its
//! name ends in `.age`, decompressed when it ends in `.gz`/`.zst` (or as `compression`
//! says), then parsed. Parquet is read row group by row group with random access; an
//! encrypted Parquet file is decrypted chunk by chunk where Parquet seeks, never whole.
//!
//! Files ending in `.age` are decrypted while they are read (age v1, with the source's
//! `identity` and/or `passphrase`): each 64 KiB chunk is authenticated before its rows are
//! parsed, so no altered row is ever read, and a damaged or truncated file fails the read
//! with [`ErrorKind::DataInvalid`] (a key that does not fit: [`ErrorKind::AuthFailed`]).
//!
//! Incremental reads are file-granular: the state is a high-water mark, the modification
//! time of the newest file read in full, with the paths read at exactly that time (so a
//! file system with coarse timestamps cannot hide a file that shares one). A rerun reads,
//! oldest first, the files above it: a file that is new or was rewritten is read again
//! whole, and an untouched one is skipped.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, file_column, Catalog, Error, ErrorKind, Estimate, Message, MessageStream,
    ReadMode, ReadRequest, Result, Source, StreamInfo,
};
use ferry_formats::age::{self, DecryptingReader, Identities};
use ferry_formats::codec::{
    decompress, detect, infer, infer_parquet_with, Bytes, ChunkReader, Compression, Format,
    FormatReader, InferOptions, Length, SeekChunks,
};
use futures::StreamExt;

use crate::config::{FileSourceConfig, StreamSpec};

mod estimate;

/// Messages buffered between a file-reading thread and the runtime: memory stays at a few
/// batches whatever the file size.
const CHANNEL_CAPACITY: usize = 2;

/// The file source.
pub(crate) struct FileSource {
    streams: Vec<FileStream>,
    /// Schemas found by the last `discover`, so `read` yields exactly what it announced.
    schemas: Mutex<HashMap<String, SchemaRef>>,
}

/// One stream: a pattern and how to parse its files.
#[derive(Debug, Clone)]
struct FileStream {
    spec: StreamSpec,
    /// Folder relative paths are resolved against and shown relative to.
    base_dir: PathBuf,
    /// The pattern made absolute, the base folder escaped for `glob`.
    glob: String,
    /// The pattern made absolute (unescaped).
    resolved: PathBuf,
    /// Whether the pattern has wildcards.
    wildcards: bool,
    /// What decrypts `.age` files (none: such a file is an error).
    identities: Option<Arc<Identities>>,
}

/// A file matching a stream's pattern.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    /// The path as shown in messages and stored in state (relative to the base folder).
    shown: String,
    mtime_ns: u64,
}

impl Entry {
    fn key(&self) -> (u64, &str) {
        (self.mtime_ns, &self.shown)
    }
}

/// The high-water mark of an incremental read: every file modified before `mtime_ns` was
/// read, and of those modified exactly then, the ones in `paths`.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    mtime_ns: u64,
    /// The last file read in full (for people reading the state).
    last: String,
    paths: Vec<String>,
}

impl Mark {
    /// Parses a saved state; `None` for no state.
    fn parse(stream: &str, state: &serde_json::Value) -> Result<Option<Mark>> {
        if state.is_null() {
            return Ok(None);
        }
        let mtime = state.get("mtime_ns").and_then(|v| v.as_u64());
        let last = state.get("path").and_then(|v| v.as_str());
        let (Some(mtime_ns), Some(last)) = (mtime, last) else {
            return Err(Error::data(format!(
                "the saved state of stream `{stream}` is not a file position ({state}); reset it with `ferry state reset --stream {stream}`"
            )));
        };
        let mut paths: Vec<String> = state
            .get("paths")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !paths.iter().any(|p| p == last) {
            paths.push(last.to_string());
        }
        Ok(Some(Mark {
            mtime_ns,
            last: last.to_string(),
            paths,
        }))
    }

    /// Whether `e` was read as of this mark.
    fn covers(&self, e: &Entry) -> bool {
        e.mtime_ns < self.mtime_ns || (e.mtime_ns == self.mtime_ns && self.paths.contains(&e.shown))
    }

    /// The mark after also reading `e` (files must be added oldest first).
    fn advance(mark: Option<Mark>, e: &Entry) -> Mark {
        match mark {
            Some(mut m) if m.mtime_ns == e.mtime_ns => {
                if !m.paths.contains(&e.shown) {
                    m.paths.push(e.shown.clone());
                }
                m.last = e.shown.clone();
                m
            }
            Some(m) if m.mtime_ns > e.mtime_ns => m,
            _ => Mark {
                mtime_ns: e.mtime_ns,
                last: e.shown.clone(),
                paths: vec![e.shown.clone()],
            },
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let micros = (self.mtime_ns / 1000).min(i64::MAX as u64) as i64;
        let modified = ferry_core::values::format_timestamp_micros(micros);
        serde_json::json!({ "mtime_ns": self.mtime_ns, "modified": modified, "path": self.last, "paths": self.paths })
    }
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a file task failed: {e}")))?
}

impl FileSource {
    pub(crate) fn new(config: FileSourceConfig, base_dir: &Path) -> Result<Self> {
        let identities = match (&config.identity, &config.passphrase) {
            (None, None) => None,
            (keys, passphrase) => Some(Arc::new(
                Identities::new(keys.as_ref(), passphrase.as_ref())
                    .map_err(|e| Error::config(format!("`identity`: {}", e.message())))?,
            )),
        };
        let streams = config
            .specs()?
            .into_iter()
            .map(|spec| FileStream::new(spec, base_dir, identities.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(FileSource {
            streams,
            schemas: Mutex::new(HashMap::new()),
        })
    }

    fn stream(&self, name: &str) -> Result<&FileStream> {
        self.streams
            .iter()
            .find(|s| s.spec.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.streams.iter().map(|s| s.spec.name.as_str()).collect();
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "stream `{name}` is not offered (streams: {})",
                        names.join(", ")
                    ),
                )
            })
    }

    fn cached(&self, name: &str) -> Option<SchemaRef> {
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

impl FileStream {
    fn new(spec: StreamSpec, base_dir: &Path, identities: Option<Arc<Identities>>) -> Result<Self> {
        let pattern = Path::new(&spec.pattern);
        let (glob, resolved) = if pattern.is_absolute() {
            (spec.pattern.clone(), pattern.to_path_buf())
        } else {
            let base = base_dir.to_str().ok_or_else(|| {
                Error::config(format!(
                    "the config folder `{}` is not valid UTF-8",
                    base_dir.display()
                ))
            })?;
            let base = base.trim_end_matches('/');
            let glob = if base.is_empty() {
                spec.pattern.clone()
            } else {
                format!("{}/{}", glob::Pattern::escape(base), spec.pattern)
            };
            (glob, base_dir.join(pattern))
        };
        glob::Pattern::new(&glob).map_err(|e| {
            Error::config(format!(
                "`path = \"{}\"` is not a valid pattern: {}",
                spec.pattern, e.msg
            ))
        })?;
        let wildcards = has_wildcards(&spec.pattern);
        Ok(FileStream {
            spec,
            base_dir: base_dir.to_path_buf(),
            glob,
            resolved,
            wildcards,
            identities,
        })
    }

    /// Opens a file for reading, decrypting it if its name ends in `.age` (this reads and
    /// authenticates the age header, so a key that does not fit fails here) and
    /// decompressing it as its name or the config says.
    fn open(&self, entry: &Entry) -> Result<Input> {
        open_input(
            &entry.path,
            &entry.shown,
            self.identities.as_deref(),
            compression_of(self.spec.compression, entry),
        )
    }

    /// The folder the pattern starts in: everything before its first wildcard component.
    fn root(&self) -> PathBuf {
        let mut root = PathBuf::new();
        for c in self.resolved.components() {
            if matches!(c, Component::Normal(s) if has_wildcards(&s.to_string_lossy())) {
                return root;
            }
            root.push(c);
        }
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn shown(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.base_dir).unwrap_or(path);
        rel.to_string_lossy().replace('\\', "/")
    }

    /// Every matching file, sorted by path; `NotFound` naming what is missing when none.
    fn list(&self) -> Result<Vec<Entry>> {
        let root = self.root();
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&self.glob, options).map_err(|e| {
            Error::config(format!(
                "`path = \"{}\"` is not a valid pattern: {}",
                self.spec.pattern, e.msg
            ))
        })?;
        let mut out = Vec::new();
        for p in paths {
            let path = p.map_err(|e| {
                let path = e.path().to_path_buf();
                Error::io(e.into(), "cannot list", path)
            })?;
            let meta = std::fs::metadata(&path)
                .map_err(|e| Error::io(e, "cannot read file details", &path))?;
            if !meta.is_file() {
                continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64);
            out.push(Entry {
                shown: self.shown(&path),
                path,
                mtime_ns,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        if out.is_empty() {
            return Err(self.nothing_found(&root));
        }
        Ok(out)
    }

    /// Says precisely why no file matched.
    fn nothing_found(&self, root: &Path) -> Error {
        let pattern = &self.spec.pattern;
        let folder = if self.wildcards {
            root.to_path_buf()
        } else {
            self.resolved
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        let msg = if !folder.as_os_str().is_empty() && !folder.is_dir() {
            format!(
                "no such folder `{}` (from `path = \"{pattern}\"`)",
                folder.display()
            )
        } else if !self.wildcards && self.resolved.is_dir() {
            format!(
                "`{}` is a folder, not a file: use a pattern such as `{}/*.{}`",
                self.resolved.display(),
                pattern.trim_end_matches('/'),
                self.spec.format
            )
        } else if !self.wildcards {
            format!("no such file `{}`", self.resolved.display())
        } else {
            format!("no file matches `{pattern}` in `{}`", folder.display())
        };
        Error::new(ErrorKind::NotFound, msg).with("stream", &self.spec.name)
    }

    /// Infers the stream's schema from its first file (in path order).
    fn infer(&self) -> Result<SchemaRef> {
        let files = self.list()?;
        let first = &files[0];
        let options = InferOptions {
            sample_rows: self.spec.sample_rows,
            overrides: self.spec.columns.clone(),
        };
        if self.spec.format == Format::Parquet {
            let chunks = open_chunks(&first.path, &first.shown, self.identities.as_deref())
                .map_err(|e| e.with("stream", &self.spec.name))?;
            let schema = infer_parquet_with(&chunks, &options)
                .map_err(|e| e.with("file", &first.shown).with("stream", &self.spec.name))?;
            return self.keyed(schema);
        }
        let input = self
            .open(first)
            .map_err(|e| e.with("stream", &self.spec.name))?;
        let failure = input.failure.clone();
        let schema = infer(self.spec.format, input, &self.spec.csv, &options).map_err(|e| {
            restore(e, &failure)
                .with("file", &first.shown)
                .with("stream", &self.spec.name)
        })?;
        self.keyed(schema)
    }

    /// `schema` with the configured primary key, which must name its columns.
    fn keyed(&self, schema: SchemaRef) -> Result<SchemaRef> {
        for k in &self.spec.primary_key {
            if schema.field_with_name(k).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::config(format!(
                    "primary_key names `{k}`, which is not a column of stream `{}` (columns: {})",
                    self.spec.name,
                    names.join(", ")
                )));
            }
        }
        let schema = with_keys(&schema, &self.spec.primary_key, None);
        match &self.spec.file_column {
            Some(name) => file_column::extend(&schema, name, &self.spec.name),
            None => Ok(schema),
        }
    }
}

/// A file being read: its bytes decrypted and decompressed on the fly. Remembers a
/// decryption failure so its kind survives the codec, which reports every read error as
/// I/O.
struct Input {
    inner: Box<dyn Read + Send>,
    failure: Failure,
}

/// Records the first decryption failure of the reader under it.
struct Watch {
    inner: Box<dyn Read + Send>,
    failure: Failure,
}

impl Read for Watch {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Some(d) = age::decryption_error(e) {
                let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| (d.kind(), d.message().to_string()));
            }
        })
    }
}

/// The first decryption failure (kind and message) an [`Input`] met.
type Failure = Arc<Mutex<Option<(ErrorKind, String)>>>;

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// `e`, or the decryption failure behind it with its own kind.
fn restore(e: Error, failure: &Failure) -> Error {
    match failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some((kind, message)) => Error::new(kind, message),
        None => e,
    }
}

/// The compression of a file: as configured, else as its name says.
fn compression_of(configured: Option<Compression>, entry: &Entry) -> Compression {
    configured.unwrap_or_else(|| detect(&entry.shown).compression)
}

/// Opens `path` (shown as `shown`) and, when its name ends in `.age`, starts decrypting it
/// (reading and authenticating the age header).
fn open_plain(
    path: &Path,
    shown: &str,
    identities: Option<&Identities>,
) -> Result<std::result::Result<File, DecryptingReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io(e, "cannot open", path))?;
    if !age::is_age_path(path) {
        return Ok(Ok(file));
    }
    let Some(ids) = identities else {
        return Err(Error::config(format!(
            "`{shown}` is encrypted (age), and the source has no key to read it: set `identity = \"${{secret:…}}\"` (the AGE-SECRET-KEY-1… it was encrypted for) or `passphrase`"
        ))
        .with("file", shown));
    };
    Ok(Err(
        age::decrypt_reader(ids, file).map_err(|e| e.with("file", shown))?
    ))
}

/// Opens `path` (shown as `shown`) as a stream: decrypted when its name ends in `.age`,
/// then decompressed with `compression`.
fn open_input(
    path: &Path,
    shown: &str,
    identities: Option<&Identities>,
    compression: Compression,
) -> Result<Input> {
    let failure: Failure = Arc::default();
    let plain: Box<dyn Read + Send> = match open_plain(path, shown, identities)? {
        Ok(file) => Box::new(file),
        Err(decrypting) => Box::new(Watch {
            inner: Box::new(decrypting),
            failure: failure.clone(),
        }),
    };
    let inner = decompress(plain, compression).map_err(|e| e.with("file", shown))?;
    Ok(Input { inner, failure })
}

/// A Parquet file opened for random access: the file itself, or its plaintext when it is
/// age-encrypted (decrypted chunk by chunk where Parquet reads, never whole).
enum Chunks {
    Plain(File),
    Age(SeekChunks<DecryptingReader<File>>),
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        match self {
            Chunks::Plain(f) => Length::len(f),
            Chunks::Age(c) => c.len(),
        }
    }
}

impl ChunkReader for Chunks {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> ferry_formats::codec::parquet::ParquetResult<Self::T> {
        Ok(match self {
            Chunks::Plain(f) => Box::new(f.get_read(start)?),
            Chunks::Age(c) => Box::new(c.get_read(start)?),
        })
    }

    fn get_bytes(
        &self,
        start: u64,
        length: usize,
    ) -> ferry_formats::codec::parquet::ParquetResult<Bytes> {
        match self {
            Chunks::Plain(f) => f.get_bytes(start, length),
            Chunks::Age(c) => c.get_bytes(start, length),
        }
    }
}

/// Opens a Parquet file for random access (see [`Chunks`]).
fn open_chunks(path: &Path, shown: &str, identities: Option<&Identities>) -> Result<Chunks> {
    Ok(match open_plain(path, shown, identities)? {
        Ok(file) => Chunks::Plain(file),
        Err(decrypting) => {
            Chunks::Age(SeekChunks::new(decrypting).map_err(|e| e.with("file", shown))?)
        }
    })
}

/// A reader of one file of `job`, and where its decryption failures are recorded.
fn open_reader(job: &Job, entry: &Entry) -> Result<(FormatReader<Input>, Failure)> {
    if job.format == Format::Parquet {
        let chunks = open_chunks(&entry.path, &entry.shown, job.identities.as_deref())?;
        return Ok((
            FormatReader::parquet(chunks, job.schema.clone())?,
            Failure::default(),
        ));
    }
    let input = open_input(
        &entry.path,
        &entry.shown,
        job.identities.as_deref(),
        compression_of(job.compression, entry),
    )?;
    let failure = input.failure.clone();
    Ok((
        FormatReader::new(job.format, input, job.schema.clone(), &job.csv)?,
        failure,
    ))
}

/// What a reading thread needs.
struct Job {
    format: Format,
    /// Set in config; `None`: from each file's name.
    compression: Option<Compression>,
    csv: ferry_formats::codec::CsvOptions,
    /// The columns the files hold.
    schema: SchemaRef,
    /// With `file_column`: the stream's schema, `schema` and the file column last.
    with_file: Option<SchemaRef>,
    files: Vec<Entry>,
    /// The mark the read starts from (incremental reads).
    mark: Option<Mark>,
    identities: Option<Arc<Identities>>,
    limit: Option<u64>,
    batch_size: usize,
}

/// Reads the files in order, sending batches, rejections and a checkpoint after each file.
/// Stops when the receiver is gone, on the first error, or once `limit` rows were sent.
fn read_files(job: Job, tx: &tokio::sync::mpsc::Sender<Result<Message>>) {
    let n = job.files.len();
    // the checkpoint after a file covers the files, oldest first, up to the first one still
    // unread: a plain high-water mark when reading oldest first, and still correct in path
    // order (full refresh), where it may lag behind
    let mut by_key: Vec<usize> = (0..n).collect();
    by_key.sort_by(|&a, &b| job.files[a].key().cmp(&job.files[b].key()));
    let mut done = vec![false; n];
    let mut covered = 0;
    let mut mark = job.mark.clone();
    let mut rows = 0u64;
    for (i, entry) in job.files.iter().enumerate() {
        let reader = match open_reader(&job, entry) {
            Ok((r, failure)) => (
                r.with_file(entry.shown.clone())
                    .with_batch_size(job.batch_size),
                failure,
            ),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let (reader, failure) = reader;
        for msg in reader {
            let failed = msg.is_err();
            let msg = msg.map_err(|e| match restore(e, &failure) {
                // a decryption failure names no file yet
                e if e.context_value("file").is_none() => e.with("file", &entry.shown),
                e => e,
            });
            let msg = match (msg, &job.with_file) {
                (Ok(Message::Batch(b)), Some(schema)) => {
                    file_column::add(b, schema, &entry.shown).map(Message::Batch)
                }
                (m, _) => m,
            };
            if let Ok(Message::Batch(b)) = &msg {
                rows += b.num_rows() as u64;
            }
            if tx.blocking_send(msg).is_err() || failed {
                return;
            }
            if job.limit.is_some_and(|l| rows >= l) {
                return;
            }
        }
        done[i] = true;
        while covered < n && done[by_key[covered]] {
            mark = Some(Mark::advance(mark, &job.files[by_key[covered]]));
            covered += 1;
        }
        let state = mark.as_ref().map_or(serde_json::Value::Null, Mark::to_json);
        if tx.blocking_send(Ok(Message::Checkpoint(state))).is_err() {
            return;
        }
    }
}

#[async_trait]
impl Source for FileSource {
    async fn check(&self) -> Result<()> {
        let streams = self.streams.clone();
        blocking(move || {
            for s in &streams {
                let files = s.list()?;
                // for an `.age` file this also checks the key fits
                s.open(&files[0])
                    .map_err(|e| e.with("stream", &s.spec.name))?;
            }
            Ok(())
        })
        .await
    }

    async fn discover(&self) -> Result<Catalog> {
        let streams = self.streams.clone();
        let schemas = blocking(move || {
            streams
                .iter()
                .map(|s| Ok((s.spec.name.clone(), s.infer()?)))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        let mut cache = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        let mut infos = Vec::new();
        for (name, schema) in schemas {
            cache.insert(name.clone(), schema.clone());
            infos.push(StreamInfo::new(name, schema).incremental(std::iter::empty::<String>()));
        }
        Ok(Catalog::new(infos))
    }

    /// An exact count only: Parquet footers, or 0 when no file is new or changed.
    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        Ok(self
            .estimate(request)
            .await?
            .filter(|e| e.exact)
            .and_then(|e| e.rows))
    }

    /// For `ferry plan`: the files a read would take, their bytes and rows (see
    /// [`estimate`]); certainly nothing when an incremental read has no new or changed file.
    async fn estimate(&self, request: &ReadRequest) -> Result<Option<Estimate>> {
        let incremental = request.mode == ReadMode::Incremental;
        if incremental && request.cursor.is_some() {
            return Ok(None);
        }
        let stream = self.stream(&request.stream)?.clone();
        let state = request.state.clone().unwrap_or(serde_json::Value::Null);
        let mark = if incremental {
            Mark::parse(&request.stream, &state)?
        } else {
            None
        };
        let e = blocking(move || estimate::estimate(&stream, mark.as_ref())).await?;
        Ok(Some(e.limited(request.limit)))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let stream = self.stream(&request.stream)?.clone();
        let schema = match self.cached(&request.stream) {
            Some(s) => s,
            None => {
                let s = stream.clone();
                let schema = blocking(move || s.infer()).await?;
                self.schemas
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(request.stream.clone(), schema.clone());
                schema
            }
        };
        let incremental = request.mode == ReadMode::Incremental;
        if let (true, Some(cursor)) = (incremental, &request.cursor) {
            // rows are not filtered by a column: rather refuse than reread whole files
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "stream `{}` is read incrementally by file modification time, not by a column: remove `cursor = \"{cursor}\"` and set `incremental = true`",
                    request.stream
                ),
            ));
        }
        let state = request.state.clone().unwrap_or(serde_json::Value::Null);
        let mark = if incremental {
            Mark::parse(&request.stream, &state)?
        } else {
            None
        };
        let listing = stream.clone();
        let mut files = blocking(move || match listing.list() {
            Ok(files) => Ok(files),
            // the files may have been moved away since discover: nothing to read
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        })
        .await?;
        if let Some(m) = &mark {
            files.retain(|f| !m.covers(f));
        }
        if incremental {
            // oldest first, so each checkpoint is a plain high-water mark
            files.sort_by(|a, b| a.key().cmp(&b.key()));
        }
        // the files hold every column but the file column, which is last
        let (schema, with_file) = match &stream.spec.file_column {
            Some(_) => (file_column::of_files(&schema), Some(schema)),
            None => (schema, None),
        };
        let job = Job {
            format: stream.spec.format,
            compression: stream.spec.compression,
            csv: stream.spec.csv.clone(),
            schema,
            with_file,
            files,
            mark,
            identities: stream.identities.clone(),
            limit: request.limit,
            batch_size: request.batch_size.max(1),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CAPACITY);
        tokio::task::spawn_blocking(move || {
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_files(job, &tx)));
            if run.is_err() {
                let _ = tx.blocking_send(Err(Error::internal("the file reader panicked")));
            }
        });
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
    }
}
