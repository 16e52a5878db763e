//! Reading objects: one stream per configured key pattern, objects streamed one after the
//! other on a blocking thread (GetObject body → age decryption → decompression → codec
//! reader), batches handed back through a bounded channel, a checkpoint after each object.
//!
//! Memory is a few batches plus one listing page (full refresh) whatever the objects'
//! sizes and count. An incremental read must order objects by time, so it holds the
//! `(key, last-modified, etag, size)` of the objects not yet read, and nothing else.
//!
//! Incremental reads are object-granular: the state is a high-water mark, the
//! last-modified time of the newest object read, with the keys and ETags read at exactly
//! that time (S3 times have whole-second or millisecond precision, so several objects can
//! share one). A rerun reads, oldest first, the objects above it: a new object, or one
//! overwritten since (a new time, or the same time and a new ETag), is read again whole;
//! an untouched one is skipped, so none is read twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::file_column;
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, Catalog, Error, ErrorKind, Estimate, Message, MessageStream, ReadMode,
    ReadRequest, Result, Source, StreamInfo,
};
use ferry_formats::age::{self, Identities};
use ferry_formats::codec::{
    decompress, detect, infer, infer_parquet_with, Compression, Format, FormatReader, InferOptions,
};
use futures::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc::Sender;

use crate::client::Connection;
use crate::config::{S3SourceConfig, StreamSpec};
use crate::error::{map, At, Op};
use crate::object::{blocking, open_blocking, Listing, ObjectInfo, RangedObject};

mod estimate;

/// Messages buffered between the reading thread and the runtime.
const CHANNEL_CAPACITY: usize = 2;

/// The S3 source.
pub(crate) struct S3Source {
    conn: Connection,
    prefix: String,
    streams: Vec<Arc<StreamSpec>>,
    identities: Option<Arc<Identities>>,
    /// Schemas found by the last `discover`, so `read` yields exactly what it announced.
    schemas: Mutex<HashMap<String, SchemaRef>>,
}

/// The high-water mark of an incremental read: every object modified before `mtime_ns`
/// was read, and of those modified exactly then, the ones in `objects` (key, ETag).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mark {
    mtime_ns: u64,
    objects: Vec<(String, String)>,
}

impl Mark {
    /// Parses a saved state; `None` for no state.
    fn parse(stream: &str, state: &serde_json::Value) -> Result<Option<Mark>> {
        if state.is_null() {
            return Ok(None);
        }
        let bad = || {
            Error::data(format!(
                "the saved state of stream `{stream}` is not an S3 position ({state}); reset it with `ferry state reset --stream {stream}`"
            ))
        };
        let mtime_ns = state
            .get("mtime_ns")
            .and_then(|v| v.as_u64())
            .ok_or_else(bad)?;
        let list = state
            .get("objects")
            .and_then(|v| v.as_array())
            .ok_or_else(bad)?;
        let mut objects = Vec::new();
        for o in list {
            let key = o.get("key").and_then(|v| v.as_str()).ok_or_else(bad)?;
            let etag = o.get("etag").and_then(|v| v.as_str()).unwrap_or("");
            objects.push((key.to_string(), etag.to_string()));
        }
        Ok(Some(Mark { mtime_ns, objects }))
    }

    /// Whether `o` was read as of this mark.
    fn covers(&self, o: &ObjectInfo) -> bool {
        o.mtime_ns < self.mtime_ns
            || (o.mtime_ns == self.mtime_ns
                && self
                    .objects
                    .iter()
                    .any(|(k, e)| *k == o.key && *e == o.etag))
    }

    /// The mark after also reading `o` (objects added oldest first, or in any order when
    /// all of them are read before the mark is used).
    fn advance(mark: Option<Mark>, o: &ObjectInfo) -> Mark {
        let entry = (o.key.clone(), o.etag.clone());
        match mark {
            Some(mut m) if m.mtime_ns == o.mtime_ns => {
                m.objects.retain(|(k, _)| *k != o.key);
                m.objects.push(entry);
                m
            }
            Some(m) if m.mtime_ns > o.mtime_ns => m,
            _ => Mark {
                mtime_ns: o.mtime_ns,
                objects: vec![entry],
            },
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let micros = (self.mtime_ns / 1000).min(i64::MAX as u64) as i64;
        let objects: Vec<_> = self
            .objects
            .iter()
            .map(|(k, e)| serde_json::json!({ "key": k, "etag": e }))
            .collect();
        serde_json::json!({
            "mtime_ns": self.mtime_ns,
            "modified": ferry_core::values::format_timestamp_micros(micros),
            "objects": objects,
        })
    }
}

impl S3Source {
    pub(crate) fn new(config: S3SourceConfig) -> Result<Self> {
        let identities = match (&config.identity, &config.passphrase) {
            (None, None) => None,
            (keys, passphrase) => Some(Arc::new(
                Identities::new(keys.as_ref(), passphrase.as_ref())
                    .map_err(|e| Error::config(format!("`identity`: {}", e.message())))?,
            )),
        };
        let streams = config.specs()?.into_iter().map(Arc::new).collect();
        Ok(S3Source {
            conn: config.connection()?,
            prefix: config.prefix.trim_start_matches('/').to_string(),
            streams,
            identities,
            schemas: Mutex::new(HashMap::new()),
        })
    }

    fn stream(&self, name: &str) -> Result<&Arc<StreamSpec>> {
        self.streams.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "stream `{name}` is not offered (streams: {})",
                    names.join(", ")
                ),
            )
        })
    }

    /// The first object of a stream in key order; `NotFound` naming the pattern if none.
    async fn first(&self, client: &Client, spec: &StreamSpec) -> Result<ObjectInfo> {
        let mut listing = Listing::new(client, &self.conn.bucket, &spec.list_prefix);
        while let Some(page) = listing.next().await {
            if let Some(o) = page?.into_iter().find(|o| spec.matches(&o.key)) {
                return Ok(o);
            }
        }
        Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no object matches `{}` in {}",
                spec.pattern,
                self.conn.url(&self.prefix)
            ),
        )
        .with("stream", &spec.name))
    }

    /// Infers the stream's schema from its first object (in key order).
    async fn infer(&self, spec: &Arc<StreamSpec>) -> Result<SchemaRef> {
        let client = self.conn.client().await?;
        let first = self.first(&client, spec).await?;
        let (spec2, ids, bucket) = (
            spec.clone(),
            self.identities.clone(),
            self.conn.bucket.clone(),
        );
        let schema = blocking(move |handle| {
            let codec = Codec::of(&spec2, &first.key)?;
            let options = InferOptions {
                sample_rows: spec2.sample_rows,
                overrides: spec2.columns.clone(),
            };
            if codec.format == Format::Parquet {
                let ranged = RangedObject {
                    handle,
                    client,
                    bucket,
                    key: first.key.clone(),
                    etag: first.etag.clone(),
                    size: first.size,
                };
                return infer_parquet_with(&ranged, &options)
                    .map_err(|e| e.with("object", &first.key));
            }
            let raw = open_blocking(&handle, &client, &bucket, &first.key, Some(&first.etag))?;
            let input = codec.input(raw, &first.key, ids.as_deref())?;
            let failure = input.failure.clone();
            infer(codec.format, input, &spec2.csv, &options)
                .map_err(|e| restore(e, &failure).with("object", &first.key))
        })
        .await
        .map_err(|e| e.with("stream", &spec.name))?;
        for k in &spec.primary_key {
            if schema.field_with_name(k).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::config(format!(
                    "primary_key names `{k}`, which is not a column of stream `{}` (columns: {})",
                    spec.name,
                    names.join(", ")
                )));
            }
        }
        let schema = with_keys(&schema, &spec.primary_key, None);
        match &spec.file_column {
            Some(name) => file_column::extend(&schema, name, &spec.name),
            None => Ok(schema),
        }
    }

    fn cached(&self, name: &str) -> Option<SchemaRef> {
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// How to decode one object: from the stream's settings, else from its key.
pub(crate) struct Codec {
    pub format: Format,
    pub compression: Compression,
    pub encrypted: bool,
}

impl Codec {
    pub(crate) fn of(spec: &StreamSpec, key: &str) -> Result<Codec> {
        let d = detect(key);
        let format = spec.format.or(d.format).ok_or_else(|| {
            Error::config(format!(
                "cannot tell the format of object `{key}` from its extension: set `format = \"csv\"` or `format = \"jsonl\"` for stream `{}`",
                spec.name
            ))
        })?;
        let compression = spec.compression.unwrap_or(d.compression);
        if format == Format::Parquet && d.encrypted {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "`{key}` is an encrypted Parquet object: Parquet is read with random access (its index is at the end), which age encryption does not allow over S3; download it and read it with the `file` source, or have it written unencrypted (or as CSV/JSON Lines)"
                ),
            )
            .with("stream", &spec.name));
        }
        if format == Format::Parquet && compression != Compression::None {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "`{key}` is a {compression}-compressed Parquet object: Parquet compresses inside the file and must not be wrapped; write `.parquet` objects"
                ),
            )
            .with("stream", &spec.name));
        }
        Ok(Codec {
            format,
            compression,
            encrypted: d.encrypted,
        })
    }

    /// The decoded bytes of an object: decrypted (`.age`), then decompressed.
    fn input(
        &self,
        raw: Box<dyn Read + Send>,
        key: &str,
        ids: Option<&Identities>,
    ) -> Result<Input> {
        let failure: Failure = Arc::default();
        let plain: Box<dyn Read + Send> = if self.encrypted {
            let Some(ids) = ids else {
                return Err(Error::config(format!(
                    "`{key}` is encrypted (age), and the source has no key to read it: set `identity = \"${{secret:…}}\"` or `passphrase`"
                ))
                .with("object", key));
            };
            let reader = age::decrypt_reader(ids, raw).map_err(|e| e.with("object", key))?;
            Box::new(Watch {
                inner: Box::new(reader),
                failure: failure.clone(),
            })
        } else {
            raw
        };
        let inner = decompress(plain, self.compression).map_err(|e| e.with("object", key))?;
        Ok(Input { inner, failure })
    }
}

/// Decoded object bytes, remembering a decryption failure so its kind survives the codec
/// (which reports every read error as I/O).
struct Input {
    inner: Box<dyn Read + Send>,
    failure: Failure,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// The first decryption failure (kind and message) met.
type Failure = Arc<Mutex<Option<(ErrorKind, String)>>>;

/// Records decryption failures of the reader it wraps.
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

/// `e`, or the decryption failure behind it with its own kind.
fn restore(e: Error, failure: &Failure) -> Error {
    match failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some((kind, message)) => Error::new(kind, message),
        None => e,
    }
}

/// What the reading thread needs.
struct Job {
    client: Client,
    bucket: String,
    spec: Arc<StreamSpec>,
    /// The columns the objects hold.
    schema: SchemaRef,
    /// With `file_column`: the stream's schema, `schema` and the object column last.
    with_file: Option<SchemaRef>,
    incremental: bool,
    mark: Option<Mark>,
    identities: Option<Arc<Identities>>,
    limit: Option<u64>,
    batch_size: usize,
    rows: u64,
}

/// Why reading stopped early.
enum Stop {
    /// The receiver is gone, the limit was reached, or an error was sent.
    Done,
}

impl Job {
    fn send(
        &self,
        tx: &Sender<Result<Message>>,
        m: Result<Message>,
    ) -> std::result::Result<(), Stop> {
        let failed = m.is_err();
        if tx.blocking_send(m).is_err() || failed {
            return Err(Stop::Done);
        }
        Ok(())
    }

    /// Reads every matching object: in key order, page by page (full refresh), or oldest
    /// first after the mark (incremental).
    fn run(
        mut self,
        handle: &Handle,
        tx: &Sender<Result<Message>>,
    ) -> std::result::Result<(), Stop> {
        let spec = self.spec.clone();
        let mut listing = Listing::new(&self.client, &self.bucket, &spec.list_prefix);
        if self.incremental {
            let mut todo = Vec::new();
            while let Some(page) = handle.block_on(listing.next()) {
                let page = page.map_err(|e| self.fail(tx, e)).map_err(|_| Stop::Done)?;
                todo.extend(page.into_iter().filter(|o| {
                    spec.matches(&o.key) && !self.mark.as_ref().is_some_and(|m| m.covers(o))
                }));
            }
            todo.sort_by(|a, b| a.order().cmp(&b.order()));
            let mut mark = self.mark.clone();
            for o in &todo {
                self.object(handle, tx, o)?;
                mark = Some(Mark::advance(mark, o));
                let state = mark.as_ref().map_or(serde_json::Value::Null, Mark::to_json);
                self.send(tx, Ok(Message::Checkpoint(state)))?;
            }
            return Ok(());
        }
        // full refresh: key order, one page held at a time; the mark of everything read
        // is only valid once everything was read, so it is sent at the end
        let mut mark: Option<Mark> = None;
        while let Some(page) = handle.block_on(listing.next()) {
            let page = page.map_err(|e| self.fail(tx, e)).map_err(|_| Stop::Done)?;
            for o in page.iter().filter(|o| spec.matches(&o.key)) {
                self.object(handle, tx, o)?;
                mark = Some(Mark::advance(mark, o));
            }
        }
        if let Some(m) = mark {
            self.send(tx, Ok(Message::Checkpoint(m.to_json())))?;
        }
        Ok(())
    }

    fn fail(&self, tx: &Sender<Result<Message>>, e: Error) -> Stop {
        let _ = tx.blocking_send(Err(e.with("stream", &self.spec.name)));
        Stop::Done
    }

    /// Streams one object's rows.
    fn object(
        &mut self,
        handle: &Handle,
        tx: &Sender<Result<Message>>,
        o: &ObjectInfo,
    ) -> std::result::Result<(), Stop> {
        let opened = Codec::of(&self.spec, &o.key).and_then(|codec| {
            if codec.format == Format::Parquet {
                let ranged = RangedObject {
                    handle: handle.clone(),
                    client: self.client.clone(),
                    bucket: self.bucket.clone(),
                    key: o.key.clone(),
                    etag: o.etag.clone(),
                    size: o.size,
                };
                let reader = FormatReader::<Input>::parquet(ranged, self.schema.clone())?
                    .with_file(o.key.clone())
                    .with_batch_size(self.batch_size);
                return Ok((reader, Failure::default()));
            }
            let raw = open_blocking(handle, &self.client, &self.bucket, &o.key, Some(&o.etag))?;
            let input = codec.input(raw, &o.key, self.identities.as_deref())?;
            let failure = input.failure.clone();
            let reader =
                FormatReader::new(codec.format, input, self.schema.clone(), &self.spec.csv)?
                    .with_file(o.key.clone())
                    .with_batch_size(self.batch_size);
            Ok((reader, failure))
        });
        let (reader, failure) = match opened {
            Ok(r) => r,
            Err(e) => return Err(self.fail(tx, e.with("object", &o.key))),
        };
        for msg in reader {
            let msg = msg.map_err(|e| match restore(e, &failure) {
                e if e.context_value("file").is_none() => e.with("object", &o.key),
                e => e,
            });
            let msg = match (msg, &self.with_file) {
                (Ok(Message::Batch(b)), Some(schema)) => {
                    let url = format!("s3://{}/{}", self.bucket, o.key);
                    file_column::add(b, schema, &url).map(Message::Batch)
                }
                (m, _) => m,
            };
            if let Ok(Message::Batch(b)) = &msg {
                self.rows += b.num_rows() as u64;
            }
            self.send(tx, msg)?;
            if self.limit.is_some_and(|l| self.rows >= l) {
                return Err(Stop::Done);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Source for S3Source {
    async fn check(&self) -> Result<()> {
        let client = self.conn.client().await?;
        let bucket = self.conn.bucket.as_str();
        // s3:ListBucket
        let key = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&self.prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| map(e, Op::List, At { bucket, key }))?;
        // s3:GetObject on each stream's first object (and its age key, if encrypted)
        for spec in &self.streams {
            let first = self.first(&client, spec).await?;
            let codec = Codec::of(spec, &first.key).map_err(|e| e.with("stream", &spec.name))?;
            if codec.encrypted {
                let (client, bucket, ids) =
                    (client.clone(), bucket.to_string(), self.identities.clone());
                blocking(move |handle| {
                    let raw =
                        open_blocking(&handle, &client, &bucket, &first.key, Some(&first.etag))?;
                    codec.input(raw, &first.key, ids.as_deref()).map(|_| ())
                })
                .await
                .map_err(|e| e.with("stream", &spec.name))?;
            } else {
                client
                    .head_object()
                    .bucket(bucket)
                    .key(&first.key)
                    .send()
                    .await
                    .map_err(|e| {
                        map(
                            e,
                            Op::Get,
                            At {
                                bucket,
                                key: Some(&first.key),
                            },
                        )
                        .with("stream", &spec.name)
                    })?;
            }
        }
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let mut infos = Vec::new();
        for spec in &self.streams {
            let schema = self.infer(spec).await?;
            self.schemas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(spec.name.clone(), schema.clone());
            infos.push(
                StreamInfo::new(spec.name.clone(), schema)
                    .incremental(std::iter::empty::<String>()),
            );
        }
        Ok(Catalog::new(infos))
    }

    /// An exact count only: Parquet footers, or 0 when no object is new or changed.
    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        Ok(self
            .estimate(request)
            .await?
            .filter(|e| e.exact)
            .and_then(|e| e.rows))
    }

    /// For `ferry plan`: the objects a read would take, their bytes and rows (see
    /// [`estimate`]); certainly nothing when an incremental read has no new or changed object.
    async fn estimate(&self, request: &ReadRequest) -> Result<Option<Estimate>> {
        let incremental = request.mode == ReadMode::Incremental;
        if incremental && request.cursor.is_some() {
            return Ok(None);
        }
        let spec = self.stream(&request.stream)?.clone();
        let state = request.state.clone().unwrap_or(serde_json::Value::Null);
        let mark = if incremental {
            Mark::parse(&request.stream, &state)?
        } else {
            None
        };
        let e = estimate::estimate(self, &spec, mark.as_ref())
            .await
            .map_err(|e| e.with("stream", &spec.name))?;
        Ok(Some(e.limited(request.limit)))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let spec = self.stream(&request.stream)?.clone();
        let incremental = request.mode == ReadMode::Incremental;
        if let (true, Some(cursor)) = (incremental, &request.cursor) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "stream `{}` is read incrementally by object modification time, not by a column: remove `cursor = \"{cursor}\"` and set `incremental = true`",
                    request.stream
                ),
            ));
        }
        let schema = match self.cached(&request.stream) {
            Some(s) => s,
            None => {
                let schema = self.infer(&spec).await?;
                self.schemas
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(request.stream.clone(), schema.clone());
                schema
            }
        };
        let state = request.state.clone().unwrap_or(serde_json::Value::Null);
        let mark = if incremental {
            Mark::parse(&request.stream, &state)?
        } else {
            None
        };
        // the objects hold every column but the object column, which is last
        let (schema, with_file) = match &spec.file_column {
            Some(_) => (file_column::of_files(&schema), Some(schema)),
            None => (schema, None),
        };
        let job = Job {
            client: self.conn.client().await?,
            bucket: self.conn.bucket.clone(),
            spec,
            schema,
            with_file,
            incremental,
            mark,
            identities: self.identities.clone(),
            limit: request.limit,
            batch_size: request.batch_size.max(1),
            rows: 0,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CAPACITY);
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || {
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&handle, &tx)));
            if run.is_err() {
                let _ = tx.blocking_send(Err(Error::internal("the S3 reader panicked")));
            }
        });
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, t: u64, etag: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            mtime_ns: t,
            etag: etag.into(),
            size: 1,
        }
    }

    #[test]
    fn marks_cover_what_was_read_and_nothing_else() {
        let m = Mark::advance(None, &obj("a", 10, "e1"));
        let m = Mark::advance(Some(m), &obj("b", 10, "e2"));
        assert!(m.covers(&obj("a", 10, "e1")));
        assert!(m.covers(&obj("z", 9, "x")), "older objects were read");
        assert!(
            !m.covers(&obj("a", 10, "e9")),
            "overwritten in the same second"
        );
        assert!(
            !m.covers(&obj("c", 10, "e3")),
            "new object in the same second"
        );
        assert!(!m.covers(&obj("a", 11, "e1")));
        let back = Mark::parse("s", &m.to_json()).unwrap().unwrap();
        assert_eq!(back, m);
        let m2 = Mark::advance(Some(m.clone()), &obj("q", 5, "x"));
        assert_eq!(m2, m, "an older object does not move the mark back");
        assert!(Mark::parse("s", &serde_json::json!({"cursor": 1})).is_err());
    }
}
