//! The source of every file-like store: `check`, `discover`, `count`, `estimate` and
//! `read` over what a [`Store`] lists and opens.
//!
//! Schemas are inferred from the first file of a stream in name order (Parquet: from its
//! footer); `columns` overrides any type. A read streams its files on a blocking thread
//! (see [`crate::read`]); memory stays at a few batches whatever the files' sizes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, file_column, Catalog, Error, ErrorKind, Estimate, MessageStream, ReadMode,
    ReadRequest, Result, Source, StreamInfo,
};
use ferry_formats::age::Identities;
use ferry_formats::codec::{infer, infer_parquet_with, Format, InferOptions};
use ferry_formats::pgp::Decryptor;
use futures::StreamExt;

use crate::blocking;
use crate::estimate::estimate;
use crate::mark::{Listed, Mark};
use crate::read::Job;
use crate::store::{Store, Stream};

/// Messages buffered between a reading thread and the runtime: memory stays at a few
/// batches whatever the file size.
const CHANNEL_CAPACITY: usize = 2;

/// A [`Source`] over a store's streams.
pub struct StoreSource<S: Store> {
    store: Arc<S>,
    streams: Vec<Arc<Stream<S::Place>>>,
    /// What decrypts `.age` files (none: such a file is an error).
    identities: Option<Arc<Identities>>,
    /// What decrypts OpenPGP files (none: such a file is an error).
    pgp: Option<Arc<Decryptor>>,
    /// Schemas found by the last `discover`, so `read` yields exactly what it announced.
    schemas: Mutex<HashMap<String, SchemaRef>>,
}

impl<S: Store> StoreSource<S> {
    /// A source reading `streams` from `store`.
    pub fn new(
        store: S,
        streams: Vec<Stream<S::Place>>,
        identities: Option<Arc<Identities>>,
    ) -> Self {
        StoreSource {
            store: Arc::new(store),
            streams: streams.into_iter().map(Arc::new).collect(),
            identities,
            pgp: None,
            schemas: Mutex::new(HashMap::new()),
        }
    }

    /// Decrypts OpenPGP files (`.pgp`, `.gpg`, `.asc`) with `pgp` (none: such a file is
    /// an error naming the settings to add).
    pub fn with_pgp(mut self, pgp: Option<Arc<Decryptor>>) -> Self {
        self.pgp = pgp;
        self
    }

    fn stream(&self, name: &str) -> Result<Arc<Stream<S::Place>>> {
        let found = self.streams.iter().find(|s| s.spec.name == name);
        found.cloned().ok_or_else(|| {
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

    /// Infers the stream's schema, and keeps it for `read`.
    async fn infer(&self, stream: &Arc<Stream<S::Place>>) -> Result<SchemaRef> {
        let (store, s, ids) = (self.store.clone(), stream.clone(), self.identities.clone());
        let pgp = self.pgp.clone();
        let schema = blocking(S::NOUN, move || {
            infer_schema(&*store, &s, ids.as_deref(), pgp.as_deref())
        })
        .await?;
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.spec.name.clone(), schema.clone());
        Ok(schema)
    }

    /// The stream's schema: as discovered, else inferred now.
    async fn schema(&self, stream: &Arc<Stream<S::Place>>) -> Result<SchemaRef> {
        let cached = self
            .schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&stream.spec.name)
            .cloned();
        match cached {
            Some(s) => Ok(s),
            None => self.infer(stream).await,
        }
    }

    /// The mark an incremental read starts from; `None` for a read by a cursor column,
    /// which a file-like store cannot do.
    fn mark(&self, request: &ReadRequest) -> Result<Option<Mark>> {
        if request.mode != ReadMode::Incremental {
            return Ok(Some(Mark::new(S::STATE)));
        }
        if request.cursor.is_some() {
            return Ok(None);
        }
        let state = request.state.clone().unwrap_or(serde_json::Value::Null);
        Mark::parse(S::STATE, &request.stream, &state).map(Some)
    }
}

/// The first file of a stream in name order; the store's precise error when there is none.
fn first<S: Store>(store: &S, stream: &Stream<S::Place>) -> Result<S::Entry> {
    match store.list(stream)?.first()? {
        Some(f) => Ok(f),
        None => Err(store.nothing_found(stream)),
    }
}

/// Infers a stream's schema from its first file, with the configured key and file column.
fn infer_schema<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
    identities: Option<&Identities>,
    pgp: Option<&Decryptor>,
) -> Result<SchemaRef> {
    let spec = &stream.spec;
    let files = || -> Result<SchemaRef> {
        let first = first(store, stream)?;
        let name = first.name();
        let codec = store.codec(spec, &first)?;
        let options = InferOptions {
            sample_rows: spec.sample_rows,
            overrides: spec.columns.clone(),
        };
        if codec.format == Format::Parquet {
            let chunks = store.chunks(&first, &codec, identities)?;
            return infer_parquet_with(&chunks, &options).map_err(|e| e.with(S::NOUN, name));
        }
        let input = codec.input(store.open(&first)?, name, S::NOUN, identities, pgp)?;
        let failure = input.failure();
        infer(codec.format, input, &spec.csv, &options)
            .map_err(|e| failure.restore(e).with(S::NOUN, name))
    };
    let schema = files().map_err(|e| e.with("stream", &spec.name))?;
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

/// Checks a stream's first file can be read (for an `.age` or OpenPGP file: that the key
/// fits; the payload of an OpenPGP file is not read).
fn check_stream<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
    identities: Option<&Identities>,
    pgp: Option<&Decryptor>,
) -> Result<()> {
    let first = first(store, stream)?;
    let codec = store.codec(&stream.spec, &first)?;
    if codec.pgp {
        let (name, noun) = (first.name(), S::NOUN);
        let keys = crate::input::need_pgp_key(pgp, name, noun)?;
        return keys
            .check(store.open(&first)?)
            .map_err(|e| e.with(noun, name));
    }
    if !codec.encrypted {
        return store.probe(&first);
    }
    let raw = store.open(&first)?;
    codec
        .input(raw, first.name(), S::NOUN, identities, None)
        .map(|_| ())
}

#[async_trait]
impl<S: Store> Source for StoreSource<S> {
    async fn check(&self) -> Result<()> {
        let (store, streams, ids) = (
            self.store.clone(),
            self.streams.clone(),
            self.identities.clone(),
        );
        let pgp = self.pgp.clone();
        blocking(S::NOUN, move || {
            store.check()?;
            for s in &streams {
                check_stream(&*store, s, ids.as_deref(), pgp.as_deref())
                    .map_err(|e| e.with("stream", &s.spec.name))?;
            }
            Ok(())
        })
        .await
    }

    async fn discover(&self) -> Result<Catalog> {
        let mut infos = Vec::new();
        for stream in &self.streams {
            let schema = self.infer(stream).await?;
            let info = StreamInfo::new(stream.spec.name.clone(), schema);
            infos.push(info.incremental(std::iter::empty::<String>()));
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
    /// [`crate::estimate`]); certainly nothing when an incremental read has no new or
    /// changed file.
    async fn estimate(&self, request: &ReadRequest) -> Result<Option<Estimate>> {
        let Some(mark) = self.mark(request)? else {
            return Ok(None);
        };
        let stream = self.stream(&request.stream)?;
        let (store, ids) = (self.store.clone(), self.identities.clone());
        let e = blocking(S::NOUN, move || {
            estimate(&*store, &stream, &mark, ids.as_deref())
                .map_err(|e| e.with("stream", &stream.spec.name))
        })
        .await?;
        Ok(Some(e.limited(request.limit)))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let stream = self.stream(&request.stream)?;
        let Some(mark) = self.mark(&request)? else {
            // rows are not filtered by a column: rather refuse than reread whole files
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "stream `{}` is read incrementally by {} modification time, not by a column: remove `cursor = \"{}\"` and set `incremental = true`",
                    request.stream,
                    S::NOUN,
                    request.cursor.as_deref().unwrap_or_default()
                ),
            ));
        };
        let schema = self.schema(&stream).await?;
        // the files hold every column but the file column, which is last
        let (schema, with_file) = match &stream.spec.file_column {
            Some(_) => (file_column::of_files(&schema), Some(schema)),
            None => (schema, None),
        };
        let job = Job {
            store: self.store.clone(),
            stream,
            schema,
            with_file,
            incremental: request.mode == ReadMode::Incremental,
            mark,
            identities: self.identities.clone(),
            pgp: self.pgp.clone(),
            limit: request.limit,
            batch_size: request.batch_size.max(1),
            rows: 0,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CAPACITY);
        tokio::task::spawn_blocking(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&tx)));
            if run.is_err() {
                let reader = format!("the {} reader panicked", S::NOUN);
                let _ = tx.blocking_send(Err(Error::internal(reader)));
            }
        });
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
    }
}
