//! Writing objects: each stream's batches are encoded (CSV or JSON Lines), compressed,
//! optionally age-encrypted and uploaded by multipart upload as they come, one part in
//! memory (plus one in flight); a new object starts at `max_object_rows` or about
//! `max_object_bytes`.
//!
//! - Objects are visible only once completed, so `flush` answers `AtClose`: state is
//!   committed when the stream's writer closes.
//! - `append` adds new objects; `overwrite` writes new objects, then (after all of them
//!   completed) deletes every other object in the stream's folder (`{stream}/` of the key
//!   template). A failed overwrite leaves the old objects.
//! - `abort` aborts the open multipart upload and deletes the objects this writer had
//!   already completed (rolled over), so a failed run leaves the bucket as it was.
//! - A killed run cannot abort: what it had in flight is in its [`Journal`], which the
//!   next open of the stream reads to abort those uploads and delete those objects.
//! - The outputs name each object (`s3://bucket/key`), its rows, bytes and the SHA-256 of
//!   the bytes uploaded (after compression and encryption: what a client downloads).

use std::io::BufWriter;
use std::sync::Arc;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{
    async_trait, Durability, Error, ErrorKind, Output, OutputRef, Result, Sink, StreamWriter,
    Verdict, WriteMode, WriteRequest, WriteSummary,
};
use ferry_filestore::{take_parked, with_parked, Sealing};
use ferry_formats::codec::{CompressWriter, FormatWriter};
use tokio::runtime::Handle;

use crate::client::Connection;
use crate::config::{KeyParts, S3SinkConfig, SinkSpec};
use crate::error::{map, At, Op};
use crate::journal::{self, Journal};
use crate::object::Listing;
use crate::upload::{self, Completed, ObjectTarget, ObjectUpload, SseSettings, Tracker};

const WRITE_BUFFER: usize = 256 << 10;

/// Where the journals of in-flight uploads live, relative to the config's folder (beside
/// the state file's default place, so a client folder keeps both).
pub(crate) const JOURNAL_FOLDER: &str = ".ferry/s3-uploads";

/// The S3 destination.
pub(crate) struct S3Sink {
    shared: Arc<Shared>,
}

/// What every writer of the sink uses.
struct Shared {
    conn: Connection,
    spec: SinkSpec,
    encrypt: Option<Sealing>,
    /// Folder of the upload journals.
    journals: std::path::PathBuf,
}

impl S3Sink {
    pub(crate) fn new(config: S3SinkConfig, base_dir: &std::path::Path) -> Result<Self> {
        let spec = config.spec()?;
        let encrypt = Sealing::of(config.encrypt.as_ref(), base_dir)?;
        Ok(S3Sink {
            shared: Arc::new(Shared {
                conn: config.connection()?,
                spec,
                encrypt,
                journals: base_dir.join(JOURNAL_FOLDER),
            }),
        })
    }
}

/// The extension of written objects: `csv`, `jsonl.gz`, `csv.zst.age` …
fn extension(spec: &SinkSpec, encrypted: Option<&Sealing>) -> String {
    let mut ext = spec.format.extension().to_string();
    if let Some(c) = spec.compression.extension() {
        ext.push('.');
        ext.push_str(c);
    }
    if let Some(sealing) = encrypted {
        ext.push('.');
        ext.push_str(sealing.extension());
    }
    ext
}

/// Refuses stream names that cannot be one folder of keys.
fn check_stream_name(stream: &str) -> Result<()> {
    let bad = stream.is_empty()
        || stream == "."
        || stream == ".."
        || stream.contains(['/', '\\'])
        || stream.chars().any(char::is_control);
    if bad {
        return Err(Error::config(format!(
            "stream name `{stream}` cannot be part of an object key (it must not be empty, `.`/`..`, or hold `/`, `\\` or control characters); rename it with `destination = \"…\"` in [[streams]]"
        )));
    }
    Ok(())
}

#[async_trait]
impl Sink for S3Sink {
    async fn check(&self) -> Result<()> {
        let conn = &self.shared.conn;
        let client = conn.client().await?;
        let bucket = conn.bucket.as_str();
        let prefix = self.shared.spec.prefix.as_str();
        let key = (!prefix.is_empty()).then_some(prefix);
        // s3:ListBucket (overwrite lists the stream's folder)
        client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| map(e, Op::List, At { bucket, key }))?;
        // s3:PutObject and s3:DeleteObject, with a small probe object under the prefix
        let probe = format!(
            "{prefix}.ferry-check-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut put = client.put_object().bucket(bucket).key(&probe).body(
            aws_sdk_s3::primitives::ByteStream::from_static(b"ferry check\n"),
        );
        let sse = self.sse();
        if let Some(m) = sse.sse {
            put = put.server_side_encryption(match m {
                crate::config::Sse::Aes256 => aws_sdk_s3::types::ServerSideEncryption::Aes256,
                crate::config::Sse::Kms => aws_sdk_s3::types::ServerSideEncryption::AwsKms,
            });
        }
        if let Some(k) = &sse.kms_key_id {
            put = put.ssekms_key_id(k);
        }
        put.send()
            .await
            .map_err(|e| map(e, Op::Put, At::object(bucket, &probe)))?;
        client
            .delete_object()
            .bucket(bucket)
            .key(&probe)
            .send()
            .await
            .map_err(|e| {
                let e = map(e, Op::Delete, At::object(bucket, &probe));
                Error::new(
                    e.kind(),
                    format!(
                        "{} (the probe object {} is left behind; delete it by hand)",
                        e.message(),
                        conn.url(&probe)
                    ),
                )
            })?;
        Ok(())
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        check_stream_name(&request.stream)?;
        let spec = &self.shared.spec;
        let folder = match request.mode {
            WriteMode::Upsert | WriteMode::History => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("the S3 destination cannot write with mode = \"{}\" (it supports append and overwrite): objects cannot be updated by key", request.mode),
                ))
            }
            WriteMode::Overwrite => match spec.template.stream_folder(&request.stream) {
                Some(f) => Some(format!("{}{f}", spec.prefix)),
                None => {
                    return Err(Error::config(format!(
                        "stream `{}`: overwrite replaces the stream's folder, so `key_template` must start with `{{stream}}/` (it is not clear which objects belong to the stream otherwise)",
                        request.stream
                    )))
                }
            },
            _ => None,
        };
        let client = self.shared.conn.client().await?;
        let now = ferry_core::values::format_timestamp_micros(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
        );
        let date = now.get(..10).unwrap_or("").to_string();
        let time: String = now
            .get(11..19)
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let run_id: String = request
            .run_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let bucket = self.shared.conn.bucket.as_str();
        let journal = Arc::new(Journal::new(
            &self.shared.journals,
            &self.shared.conn.url(&spec.prefix),
            &request.stream,
            bucket,
            &run_id,
        ));
        if let Some(left) = journal.leftover()? {
            // a run that was killed: abort its uploads, delete the objects it completed
            let done = journal::recover(&client, &journal, &left)
                .await
                .map_err(|e| e.with("stream", &request.stream))?;
            tracing::info!(
                stream = %request.stream,
                "cleaned up after run {} (killed?): {} multipart upload(s) aborted, {} object(s) it completed deleted",
                left.run_id,
                done.aborted,
                done.deleted
            );
        }
        Ok(Box::new(S3Writer {
            core: Some(Core {
                shared: self.shared.clone(),
                client,
                handle: Handle::current(),
                stream: request.stream,
                schema: request.schema,
                run_id,
                date,
                time,
                ext: extension(spec, self.shared.encrypt.as_ref()),
                n: 0,
                current: None,
                done: Vec::new(),
                tracker: Arc::new(Tracker::new(Some(journal.clone()))),
                journal,
            }),
            folder,
        }))
    }

    // abort aborts the open upload and deletes the objects this writer completed
    fn rolls_back(&self) -> bool {
        true
    }

    async fn verify_output(&self, output: &OutputRef) -> Result<Option<Verdict>> {
        crate::verify::check_object(&self.shared.conn, output).await
    }
}

impl S3Sink {
    fn sse(&self) -> SseSettings {
        SseSettings {
            sse: self.shared.spec.sse,
            kms_key_id: self.shared.spec.sse_kms_key_id.clone(),
        }
    }
}

/// Where the compressed bytes go: the upload, or an age or OpenPGP encryptor in front of it.
type Sealed = ferry_filestore::Sealed<ObjectUpload>;

type Encoder = FormatWriter<BufWriter<CompressWriter<Sealed>>>;

/// The object being written.
struct Current {
    key: String,
    encoder: Encoder,
    rows: u64,
}

/// A writer's state, moved to a blocking thread for each call.
struct Core {
    shared: Arc<Shared>,
    client: Client,
    handle: Handle,
    stream: String,
    schema: SchemaRef,
    run_id: String,
    date: String,
    time: String,
    ext: String,
    /// Objects started so far.
    n: u64,
    current: Option<Current>,
    /// Objects completed, with their rows.
    done: Vec<(Completed, u64)>,
    tracker: Arc<Tracker>,
    /// What is in flight, for the next run should this one be killed.
    journal: Arc<Journal>,
}

impl Core {
    fn key(&self, n: u64) -> String {
        let spec = &self.shared.spec;
        let key = spec.template.render(&KeyParts {
            stream: &self.stream,
            date: &self.date,
            time: &self.time,
            run_id: &self.run_id,
            n,
            ext: &self.ext,
        });
        format!("{}{key}", spec.prefix)
    }

    fn start(&mut self) -> Result<()> {
        self.n += 1;
        let key = self.key(self.n);
        self.journal.started(&key)?;
        let spec = &self.shared.spec;
        let to = ObjectTarget {
            handle: self.handle.clone(),
            client: self.client.clone(),
            bucket: self.shared.conn.bucket.clone(),
            key: key.clone(),
            sse: SseSettings {
                sse: spec.sse,
                kms_key_id: spec.sse_kms_key_id.clone(),
            },
            part_size: spec.part_size,
        };
        let upload = ObjectUpload::new(to, self.tracker.clone());
        let sealed = match &self.shared.encrypt {
            None => Sealed::Plain(upload),
            // the name inside an OpenPGP object: its key's last segment without `.gpg`
            Some(s) => {
                let last = key.rsplit('/').next().unwrap_or(&key);
                s.seal(upload, last.rsplit_once('.').map_or(last, |(stem, _)| stem))?
            }
        };
        let compressed = CompressWriter::new(sealed, spec.compression)?;
        let encoder = FormatWriter::with_options(
            spec.format,
            BufWriter::with_capacity(WRITE_BUFFER, compressed),
            self.schema.clone(),
            &spec.options,
        )?;
        self.current = Some(Current {
            key,
            encoder,
            rows: 0,
        });
        Ok(())
    }

    /// The error behind a failed encoder call: the upload's, with its kind, if it was one.
    fn explain(&self, e: Error, key: &str) -> Error {
        self.tracker
            .take_error()
            .unwrap_or(e)
            .with("object", self.shared.conn.url(key))
    }

    /// Completes the current object.
    fn finish(&mut self) -> Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let key = cur.key.clone();
        let result = (|| {
            let buffered = cur.encoder.into_inner()?;
            let compressed = buffered
                .into_inner()
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write: {}", e.error())))?;
            let upload = compressed.finish()?.finish()?;
            upload.complete()
        })();
        match result {
            Ok(done) => {
                self.done.push((done, cur.rows));
                self.journal.completed(&key)
            }
            Err(e) => Err(self.explain(e, &key)),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let spec = &self.shared.spec;
        let (max_rows, max_bytes) = (spec.max_object_rows, spec.max_object_bytes);
        let total = batch.num_rows();
        let mut offset = 0;
        while offset < total {
            if self.current.is_none() {
                self.start()?;
            }
            let cur = self.current.as_mut().expect("started above");
            let n = ((max_rows - cur.rows).min((total - offset) as u64)) as usize;
            let part = batch.slice(offset, n);
            if let Err(e) = cur.encoder.write_batch(&part) {
                let key = cur.key.clone();
                return Err(self.explain(e, &key));
            }
            cur.rows += n as u64;
            offset += n;
            if cur.rows >= max_rows || self.tracker.bytes() >= max_bytes {
                self.finish()?;
            }
        }
        Ok(())
    }

    /// Completes the last object (or writes an empty one, so a stream without rows still
    /// has an object: a CSV header, or nothing).
    fn close(&mut self) -> Result<()> {
        if self.n == 0 {
            self.start()?;
        }
        self.finish()
    }

    fn outputs(&self) -> Vec<Output> {
        self.done
            .iter()
            .map(|(c, rows)| Output {
                kind: "object".into(),
                location: self.shared.conn.url(&c.key),
                root: None,
                rows: *rows,
                bytes: Some(c.bytes),
                digest: Some(format!(
                    "{}{}",
                    ferry_formats::digest::FILE_PREFIX,
                    c.sha256
                )),
                closed: None,
            })
            .collect()
    }
}

/// Writes one stream.
struct S3Writer {
    /// `None` only while a blocking call holds it, or after it failed.
    core: Option<Core>,
    /// The stream's folder (overwrite): everything else in it is deleted at close.
    folder: Option<String>,
}

/// Deletes `keys` (DeleteObjects, 1,000 a request).
async fn delete_keys(client: &Client, bucket: &str, keys: &[String]) -> Result<()> {
    for chunk in keys.chunks(1000) {
        if let [key] = chunk {
            client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| map(e, Op::Delete, At::object(bucket, key)))?;
            continue;
        }
        let ids = chunk
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("cannot build a delete request: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| Error::internal(format!("cannot build a delete request: {e}")))?;
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| {
                map(
                    e,
                    Op::Delete,
                    At {
                        bucket,
                        key: chunk.first().map(String::as_str),
                    },
                )
            })?;
        if let Some(failed) = out.errors().first() {
            let key = failed.key().unwrap_or("");
            let code = failed.code().unwrap_or("");
            let kind = if code == "AccessDenied" {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::Temporary
            };
            return Err(Error::new(
                kind,
                format!(
                    "cannot delete s3://{bucket}/{key} ({code}: {}); the credentials need `s3:DeleteObject`",
                    failed.message().unwrap_or("")
                ),
            )
            .with("bucket", bucket));
        }
    }
    Ok(())
}

#[async_trait]
impl StreamWriter for S3Writer {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        with_parked(&mut self.core, "S3", move |core| core.write(&batch)).await?
    }

    async fn flush(&mut self) -> Result<Durability> {
        // objects become visible, all at once, when completed
        Ok(Durability::AtClose)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let result = with_parked(&mut self.core, "S3", |core| core.close()).await?;
        let core = take_parked(&mut self.core, "S3")?;
        if let Err(e) = result {
            // leave nothing half-made behind
            let _ = S3Writer {
                core: Some(core),
                folder: None,
            }
            .discard()
            .await;
            return Err(e);
        }
        // the objects are the run's now (its state is committed next): a crash from here
        // on must not delete them. Old objects left by a crash in the sweep below are
        // removed by the next overwrite.
        core.journal.clear()?;
        if let Some(folder) = &self.folder {
            // overwrite: the new objects are all complete; now remove the rest of the folder
            let bucket = core.shared.conn.bucket.clone();
            let new: std::collections::HashSet<&str> =
                core.done.iter().map(|(c, _)| c.key.as_str()).collect();
            let mut listing = Listing::new(&core.client, &bucket, folder);
            let mut old = Vec::new();
            while let Some(page) = listing.next().await {
                let page = page.map_err(|e| e.with("stream", &core.stream))?;
                old.extend(
                    page.into_iter()
                        .map(|o| o.key)
                        .filter(|k| !new.contains(k.as_str())),
                );
                if old.len() >= 1000 {
                    delete_keys(&core.client, &bucket, &old).await?;
                    old.clear();
                }
            }
            delete_keys(&core.client, &bucket, &old).await?;
        }
        let outputs = core.outputs();
        Ok(WriteSummary {
            rows: outputs.iter().map(|o| o.rows).sum(),
            outputs,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.discard().await
    }
}

/// How long an abort waits for part uploads still running before it aborts their upload.
const PARTS_SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

impl S3Writer {
    /// Aborts the open multipart upload and deletes the objects completed so far; then
    /// clears the journal (kept when something could not be undone: the next run retries).
    async fn discard(&mut self) -> Result<()> {
        let Some(core) = self.core.take() else {
            return Ok(());
        };
        let bucket = core.shared.conn.bucket.clone();
        let mut first_err = None;
        core.tracker.parts_settled(PARTS_SETTLE).await;
        if let Some((key, id)) = core.tracker.take_open() {
            if let Err(e) = upload::abort(&core.client, &bucket, &key, &id).await {
                first_err = Some(e);
            }
        }
        let keys: Vec<String> = core.done.iter().map(|(c, _)| c.key.clone()).collect();
        if let Err(e) = delete_keys(&core.client, &bucket, &keys).await {
            first_err.get_or_insert(e);
        }
        if first_err.is_none() {
            if let Err(e) = core.journal.clear() {
                first_err = Some(e);
            }
        }
        match first_err {
            Some(e) => Err(e.with("stream", &core.stream)),
            None => Ok(()),
        }
    }
}
