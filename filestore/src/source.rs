//! The source of every file-like store: `check`, `discover`, `count`, `estimate` and
//! `read` over what a [`Store`] lists and opens.
//!
//! Schemas are inferred from the first file of a stream in name order (Parquet: from its
//! footer); `columns` overrides any type. A read streams its files on a blocking thread
//! (see [`crate::read`]); memory stays at a few batches whatever the files' sizes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::{
    async_trait, Catalog, Error, ErrorKind, Estimate, MessageStream, ReadMode, ReadRequest, Result,
    Settled, Source, StreamInfo,
};
use ferry_formats::age::Identities;
use ferry_formats::codec::{
    infer, infer_excel, infer_parquet_with, one_column_warning, ChunkCursor, Format, InferOptions,
};
use ferry_formats::pgp::Decryptor;
use futures::StreamExt;

use crate::after::{settle, Pending};
use crate::blocking;
use crate::columns;
use crate::estimate::estimate;
use crate::ledger::Ledger;
use crate::mark::{Listed, Mark};
use crate::options::AfterRead;
use crate::pick::first;
use crate::read::Job;
use crate::sheets::expand;
use crate::store::{Store, Stream};
use crate::unpack::{infer_archive, Archive};

/// Messages buffered between a reading thread and the runtime: memory stays at a few
/// batches whatever the file size.
const CHANNEL_CAPACITY: usize = 2;

/// A [`Source`] over a store's streams.
pub struct StoreSource<S: Store> {
    store: Arc<S>,
    /// The streams as configured.
    streams: Vec<Arc<Stream<S::Place>>>,
    /// The streams offered: as configured, with `sheet = "*"` ones made a stream per
    /// sheet (found once, when first needed).
    offered: tokio::sync::OnceCell<Vec<Arc<Stream<S::Place>>>>,
    /// What decrypts `.age` files (none: such a file is an error).
    identities: Option<Arc<Identities>>,
    /// What decrypts OpenPGP files (none: such a file is an error).
    pgp: Option<Arc<Decryptor>>,
    /// Schemas found by the last `discover`, so `read` yields exactly what it announced.
    schemas: Mutex<HashMap<String, SchemaRef>>,
    /// The files read in full and not yet archived or deleted (`after_read`).
    pending: Arc<Pending<S::Entry>>,
    /// What each stream committed: a file several read is settled once all did.
    ledger: Arc<Mutex<Ledger>>,
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
            offered: tokio::sync::OnceCell::new(),
            identities,
            pgp: None,
            schemas: Mutex::new(HashMap::new()),
            pending: Arc::new(Pending::new()),
            ledger: Arc::new(Mutex::new(Ledger::new())),
        }
    }

    /// Decrypts OpenPGP files (`.pgp`, `.gpg`, `.asc`) with `pgp` (none: such a file is
    /// an error naming the settings to add).
    pub fn with_pgp(mut self, pgp: Option<Arc<Decryptor>>) -> Self {
        self.pgp = pgp;
        self
    }

    /// The streams offered (see `offered`).
    async fn streams(&self) -> Result<&[Arc<Stream<S::Place>>]> {
        let offered = self.offered.get_or_try_init(|| async {
            if !self.streams.iter().any(|s| s.spec.every_sheet) {
                return Ok(self.streams.clone());
            }
            let (store, streams, ids) = (
                self.store.clone(),
                self.streams.clone(),
                self.identities.clone(),
            );
            blocking(S::NOUN, move || expand(&*store, &streams, ids.as_deref())).await
        });
        Ok(offered.await?.as_slice())
    }

    async fn stream(&self, name: &str) -> Result<Arc<Stream<S::Place>>> {
        let streams = self.streams().await?;
        let found = streams.iter().find(|s| s.spec.name == name);
        found.cloned().ok_or_else(|| {
            let names: Vec<&str> = streams.iter().map(|s| s.spec.name.as_str()).collect();
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
        if codec.archive.is_some() {
            let archive = Archive {
                store,
                file: &first,
                codec: &codec,
                spec,
                identities,
                pgp,
            };
            return infer_archive(&archive, &options).map_err(|e| e.with(S::NOUN, name));
        }
        if codec.format == Format::Parquet {
            let chunks = store.chunks(&first, &codec, identities)?;
            return infer_parquet_with(&chunks, &options).map_err(|e| e.with(S::NOUN, name));
        }
        if codec.format == Format::Excel {
            let chunks = ChunkCursor::new(store.chunks(&first, &codec, identities)?);
            return infer_excel(chunks, Some(name), &spec.excel, &options)
                .map_err(|e| e.with(S::NOUN, name));
        }
        let input = codec.input(store.open(&first)?, name, S::NOUN, identities, pgp)?;
        let failure = input.failure();
        let schema = infer(codec.format, input, &spec.csv, &options)
            .map_err(|e| failure.restore(e).with(S::NOUN, name))?;
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        if let Some(warning) = one_column_warning(&names).filter(|_| codec.format == Format::Csv) {
            tracing::warn!("stream `{}`, {} `{name}`: {warning}", spec.name, S::NOUN);
        }
        Ok(schema)
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
    columns::extend(&schema, spec)
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
        let keys = crate::input::need_key(pgp, name, noun)?;
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
            self.streams().await?.to_vec(),
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
        for stream in self.streams().await? {
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
        let stream = self.stream(&request.stream).await?;
        let (store, ids) = (self.store.clone(), self.identities.clone());
        let e = blocking(S::NOUN, move || {
            estimate(&*store, &stream, &mark, ids.as_deref())
                .map_err(|e| e.with("stream", &stream.spec.name))
        })
        .await?;
        Ok(Some(e.limited(request.limit)))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let stream = self.stream(&request.stream).await?;
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
        // the files hold every column but the added ones (file, date), which are last
        let (schema, with_file) = match columns::added(&stream.spec) {
            0 => (schema, None),
            n => (columns::of_files(&schema, n), Some(schema)),
        };
        let incremental = request.mode == ReadMode::Incremental;
        // files read are only noted when something is to be done with them: a full
        // refresh of a million objects otherwise holds one listing page
        if stream.spec.after_read != AfterRead::Leave {
            self.pending.start(&stream.spec.name, incremental);
        }
        let job = Job {
            store: self.store.clone(),
            pending: self.pending.clone(),
            stream,
            schema,
            with_file,
            incremental,
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

    /// Archives or deletes (`after_read`) the files read in full that the committed
    /// checkpoint's mark covers; nothing for `after_read = "leave"`. A file other streams
    /// of this source read too (two sheets of one workbook, overlapping patterns,
    /// `sheet = "*"`) waits until each of them has committed it: moving it earlier would
    /// take its rows from them (see [`Ledger`]).
    async fn committed(&self, stream: &str, state: &serde_json::Value) -> Result<Vec<Settled>> {
        let s = self.stream(stream).await?;
        let mark = Mark::parse(S::STATE, stream, state)?;
        let others: Vec<_> = self
            .streams()
            .await?
            .iter()
            .filter(|o| o.spec.name != stream)
            .cloned()
            .collect();
        let (store, pending, ledger) = (
            self.store.clone(),
            self.pending.clone(),
            self.ledger.clone(),
        );
        blocking(S::NOUN, move || {
            // one stream at a time: of two committing a shared file at once, the second
            // sees the first's mark and settles it
            let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
            ledger.commit(&s.spec.name, mark.clone());
            settle(&*store, &s, &others, &pending, &mark, &mut ledger)
        })
        .await
    }

    fn saved_states(&self, states: &BTreeMap<String, serde_json::Value>) {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.saved(S::STATE, states);
    }
}
