//! One object being uploaded: a blocking `Write` that buffers one part, uploads it while
//! the next one fills (at most one part in flight), and completes the object at the end.
//!
//! An object smaller than one part is sent with a single PutObject; a larger one with a
//! multipart upload that becomes visible only when completed. The SHA-256 and size of the
//! exact bytes uploaded are computed on the way, for the receipt.
//!
//! The upload id of the open multipart upload is kept in a [`Tracker`] shared with the
//! stream writer, so `abort` can abort it even while the writer chain that owns this
//! value is half-way through a batch or was lost to a failure.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_sdk_s3::Client;
use ferry_core::{Error, ErrorKind, Result};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::config::Sse;
use crate::error::{map, At, Op};
use crate::journal::Journal;

/// Server-side encryption settings for new objects.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseSettings {
    pub sse: Option<Sse>,
    pub kms_key_id: Option<String>,
}

impl SseSettings {
    fn mode(&self) -> Option<ServerSideEncryption> {
        self.sse.map(|s| match s {
            Sse::Aes256 => ServerSideEncryption::Aes256,
            Sse::Kms => ServerSideEncryption::AwsKms,
        })
    }
}

/// What an open upload shares with its stream writer.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Where a started multipart upload's id is journaled, for the run after a crash.
    journal: Option<Arc<Journal>>,
    /// `(key, upload id)` of the multipart upload in progress.
    open: Mutex<Option<(String, String)>>,
    /// Bytes handed to the current object so far.
    bytes: AtomicU64,
    /// The error behind a failed `write` (the codec sees only an `io::Error`, without kind).
    error: Mutex<Option<Error>>,
    /// Part uploads still running: a part that lands after its upload was aborted would
    /// stay stored (S3 says to abort again), so an abort waits for them first.
    parts_in_flight: AtomicUsize,
}

impl Tracker {
    pub(crate) fn new(journal: Option<Arc<Journal>>) -> Self {
        Tracker {
            journal,
            ..Tracker::default()
        }
    }

    /// Bytes of the current object so far (what the size limit looks at).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The multipart upload in progress, if any (taken: abort it once).
    pub(crate) fn take_open(&self) -> Option<(String, String)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The error of a failed upload, with its kind.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Waits until no part upload runs, at most `within` (a hung one is given up on).
    pub(crate) async fn parts_settled(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.parts_in_flight.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn set_open(&self, v: Option<(String, String)>) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = v;
    }
}

/// A completed object.
#[derive(Debug, Clone)]
pub(crate) struct Completed {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Where an object goes and how it is uploaded.
pub(crate) struct ObjectTarget {
    pub handle: Handle,
    pub client: Client,
    pub bucket: String,
    pub key: String,
    pub sse: SseSettings,
    pub part_size: usize,
}

/// Writes one object (see the module docs). Blocking: use on a blocking thread.
pub(crate) struct ObjectUpload {
    to: ObjectTarget,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    in_flight: Option<JoinHandle<Result<CompletedPart>>>,
    sha: ring::digest::Context,
    bytes: u64,
    tracker: Arc<Tracker>,
    failed: bool,
}

impl ObjectUpload {
    pub(crate) fn new(to: ObjectTarget, tracker: Arc<Tracker>) -> Self {
        tracker.bytes.store(0, Ordering::Relaxed);
        ObjectUpload {
            to,
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            in_flight: None,
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
            tracker,
            failed: false,
        }
    }

    fn at(&self) -> At<'_> {
        At::object(&self.to.bucket, &self.to.key)
    }

    /// Starts the multipart upload.
    fn create(&mut self) -> Result<String> {
        let mut req = self
            .to
            .client
            .create_multipart_upload()
            .bucket(&self.to.bucket)
            .key(&self.to.key);
        if let Some(m) = self.to.sse.mode() {
            req = req.server_side_encryption(m);
        }
        if let Some(k) = &self.to.sse.kms_key_id {
            req = req.ssekms_key_id(k);
        }
        let out = self
            .to
            .handle
            .block_on(req.send())
            .map_err(|e| map(e, Op::Put, self.at()))?;
        let id = out.upload_id().filter(|s| !s.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "S3 started a multipart upload of s3://{}/{} without an id",
                    self.to.bucket, self.to.key
                ),
            )
        })?;
        self.tracker
            .set_open(Some((self.to.key.clone(), id.to_string())));
        if let Some(j) = &self.tracker.journal {
            j.named(&self.to.key, id)?;
        }
        Ok(id.to_string())
    }

    /// Waits for the part in flight, if any.
    fn wait(&mut self) -> Result<()> {
        if let Some(task) = self.in_flight.take() {
            let part = self
                .to
                .handle
                .block_on(task)
                .map_err(|e| Error::internal(format!("an upload task failed: {e}")))??;
            self.parts.push(part);
        }
        Ok(())
    }

    /// Uploads `data` as the next part, after the previous one finished.
    fn send_part(&mut self, data: Vec<u8>) -> Result<()> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.create()?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        self.wait()?;
        let number = self.parts.len() as i32 + 1;
        let req = self
            .to
            .client
            .upload_part()
            .bucket(&self.to.bucket)
            .key(&self.to.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data));
        let (bucket, key) = (self.to.bucket.clone(), self.to.key.clone());
        let running = PartRunning::new(self.tracker.clone());
        self.in_flight = Some(self.to.handle.spawn(async move {
            let _running = running;
            let out = req
                .send()
                .await
                .map_err(|e| map(e, Op::Put, At::object(&bucket, &key)).with("part", number))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_string))
                .part_number(number)
                .build())
        }));
        Ok(())
    }

    /// Uploads what is left and makes the object visible.
    pub(crate) fn complete(mut self) -> Result<Completed> {
        if self.failed {
            return Err(self
                .tracker
                .take_error()
                .unwrap_or_else(|| Error::internal("completing an upload that failed")));
        }
        let data = std::mem::take(&mut self.buf);
        match self.upload_id.clone() {
            None => {
                // smaller than one part: one PutObject
                let mut req = self
                    .to
                    .client
                    .put_object()
                    .bucket(&self.to.bucket)
                    .key(&self.to.key)
                    .body(ByteStream::from(data));
                if let Some(m) = self.to.sse.mode() {
                    req = req.server_side_encryption(m);
                }
                if let Some(k) = &self.to.sse.kms_key_id {
                    req = req.ssekms_key_id(k);
                }
                self.to
                    .handle
                    .block_on(req.send())
                    .map_err(|e| map(e, Op::Put, self.at()))?;
            }
            Some(id) => {
                if !data.is_empty() {
                    self.send_part(data)?;
                }
                self.wait()?;
                let done = CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build();
                let req = self
                    .to
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.to.bucket)
                    .key(&self.to.key)
                    .upload_id(id)
                    .multipart_upload(done);
                self.to
                    .handle
                    .block_on(req.send())
                    .map_err(|e| map(e, Op::Put, self.at()))?;
                self.tracker.set_open(None);
            }
        }
        let sha = std::mem::replace(
            &mut self.sha,
            ring::digest::Context::new(&ring::digest::SHA256),
        );
        Ok(Completed {
            key: self.to.key.clone(),
            bytes: self.bytes,
            sha256: ferry_formats::digest::hex(sha.finish().as_ref()),
        })
    }
}

impl Write for ObjectUpload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other("the upload failed before"));
        }
        self.sha.update(data);
        self.bytes += data.len() as u64;
        self.tracker.bytes.store(self.bytes, Ordering::Relaxed);
        if self.buf.capacity() == 0 {
            // one part and some slack: no reallocation while it fills
            self.buf.reserve_exact(self.to.part_size + (1 << 20));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.to.part_size {
            let part = std::mem::take(&mut self.buf);
            if let Err(e) = self.send_part(part) {
                let msg = e.to_string();
                self.failed = true;
                *self.tracker.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                return Err(std::io::Error::other(msg));
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts a part upload as running until dropped (finished, failed or cancelled).
struct PartRunning(Arc<Tracker>);

impl PartRunning {
    fn new(tracker: Arc<Tracker>) -> Self {
        tracker.parts_in_flight.fetch_add(1, Ordering::SeqCst);
        PartRunning(tracker)
    }
}

impl Drop for PartRunning {
    fn drop(&mut self) {
        self.0.parts_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Aborts a multipart upload (what `abort` and a failed close do).
pub(crate) async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| map(e, Op::Abort, At::object(bucket, key)))?;
    Ok(())
}
