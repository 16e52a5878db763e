//! Listing and reading objects: pages of a listing, and an object's body as a blocking
//! `Read` (for the codec readers, which are synchronous) without a temporary file.

use std::io::Read;

use aws_sdk_s3::Client;
use ferry_core::retry::RetryPolicy;
use ferry_core::{Error, Result};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use crate::error::{map, At, Op};

/// An object as listed: all a read needs, nothing more (a listing of millions of keys
/// is held as these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectInfo {
    pub key: String,
    /// Last-modified time, nanoseconds since the epoch.
    pub mtime_ns: u64,
    pub etag: String,
    pub size: u64,
}

impl ObjectInfo {
    pub(crate) fn from_listed(o: &aws_sdk_s3::types::Object) -> Option<ObjectInfo> {
        let key = o.key()?.to_string();
        let mtime_ns = o
            .last_modified()
            .map_or(0, |t| t.as_nanos().clamp(0, u64::MAX as i128) as u64);
        Some(ObjectInfo {
            key,
            mtime_ns,
            etag: o.e_tag().unwrap_or("").to_string(),
            size: o.size().unwrap_or(0).max(0) as u64,
        })
    }
}

/// Pages of a listing under `prefix` (ListObjectsV2, 1,000 keys a page), in key order.
pub(crate) struct Listing {
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        std::result::Result<
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
            aws_sdk_s3::error::SdkError<
                aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
                aws_sdk_s3::config::http::HttpResponse,
            >,
        >,
    >,
    bucket: String,
    prefix: String,
}

impl Listing {
    pub(crate) fn new(client: &Client, bucket: &str, prefix: &str) -> Listing {
        let pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        Listing {
            pages,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// The next page's objects; `None` after the last page.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<ObjectInfo>>> {
        let page = self.pages.next().await?;
        Some(
            page.map(|p| {
                p.contents()
                    .iter()
                    .filter_map(ObjectInfo::from_listed)
                    .collect()
            })
            .map_err(|e| {
                let key = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
                map(
                    e,
                    Op::List,
                    At {
                        bucket: &self.bucket,
                        key,
                    },
                )
            }),
        )
    }
}

/// Opens an object's body as a blocking reader. Call from a blocking thread: it waits on
/// `handle` for the response, and the reader waits on it for each chunk. With `etag`, the
/// read fails (rather than mixing versions) if the object was replaced since it was listed.
/// A body cut off mid-way (a dropped connection) is resumed with a ranged GET from where
/// it stopped, a few times, before the read fails.
pub(crate) fn open_blocking(
    handle: &Handle,
    client: &Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<Box<dyn Read + Send>> {
    let mut r = Resuming {
        handle: handle.clone(),
        client: client.clone(),
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: etag.filter(|e| !e.is_empty()).map(str::to_string),
        pos: 0,
        inner: Box::new(std::io::empty()),
        resumes: 0,
    };
    let (inner, answered) = r.get(0)?;
    r.inner = inner;
    // a listing without ETags (some S3-compatible stores): the first answer's ETag pins
    // the version, so a resumed read cannot mix two
    if r.etag.is_none() {
        r.etag = answered.filter(|e| !e.is_empty());
    }
    Ok(Box::new(r))
}

/// A cut-off body is resumed up to 3 times (4 reads in all) before the read fails,
/// waiting about 0.2 s, 0.4 s, 0.8 s (each jittered down to half) before each resume.
const RESUMES: RetryPolicy = RetryPolicy::new(
    4,
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(800),
);

/// An object's body that resumes after a dropped connection (see [`open_blocking`]).
struct Resuming {
    handle: Handle,
    client: Client,
    bucket: String,
    key: String,
    etag: Option<String>,
    /// Bytes read so far.
    pos: u64,
    inner: Box<dyn Read + Send>,
    resumes: u32,
}

impl Resuming {
    /// The body from byte `from` on, and the ETag of the answer.
    fn get(&self, from: u64) -> Result<(Box<dyn Read + Send>, Option<String>)> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(&self.key);
        if from > 0 {
            req = req.range(format!("bytes={from}-"));
        }
        if let Some(e) = &self.etag {
            req = req.if_match(e);
        }
        let out = self
            .handle
            .block_on(req.send())
            .map_err(|e| map(e, Op::Get, At::object(&self.bucket, &self.key)))?;
        let etag = out.e_tag.clone();
        let body = Box::pin(out.body.into_async_read());
        let reader: Box<dyn Read + Send> =
            Box::new(SyncIoBridge::new_with_handle(body, self.handle.clone()));
        Ok((reader, etag))
    }
}

impl Read for Resuming {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // only a body cut short by the network is resumed; with an ETag the
                // resumed bytes are surely of the same object version
                Err(e) if self.etag.is_some() && self.resumes + 1 < RESUMES.attempts() => {
                    self.resumes += 1;
                    std::thread::sleep(RESUMES.backoff(self.resumes));
                    match self.get(self.pos) {
                        Ok((inner, _)) => self.inner = inner,
                        Err(again) => {
                            return Err(std::io::Error::other(format!(
                                "reading s3://{}/{} failed at byte {} ({e}), and resuming failed: {again}",
                                self.bucket, self.key, self.pos
                            )))
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// An object read with ranged GETs, for Parquet: the reader fetches the footer, then one
/// row group's column chunks at a time, so the object is never whole in memory. Each
/// request carries the listed ETag, so a replaced object fails the read instead of mixing
/// two versions. Used from a blocking thread (it waits on `handle`).
pub(crate) struct RangedObject {
    pub handle: Handle,
    pub client: Client,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
}

impl RangedObject {
    /// A GET of bytes `start..end` (`end` None: to the end).
    fn get(
        &self,
        start: u64,
        end: Option<u64>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        let range = match end {
            Some(e) => format!("bytes={start}-{}", e.saturating_sub(1)),
            None => format!("bytes={start}-"),
        };
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(range);
        if !self.etag.is_empty() {
            req = req.if_match(&self.etag);
        }
        self.handle
            .block_on(req.send())
            .map_err(|e| map(e, Op::Get, At::object(&self.bucket, &self.key)))
    }
}

fn pq(e: Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl ferry_formats::codec::Length for RangedObject {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ferry_formats::codec::ChunkReader for RangedObject {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        if start >= self.size {
            return Ok(Box::new(std::io::empty()));
        }
        let out = self.get(start, None).map_err(pq)?;
        let body = Box::pin(out.body.into_async_read());
        Ok(Box::new(SyncIoBridge::new_with_handle(
            body,
            self.handle.clone(),
        )))
    }

    fn get_bytes(
        &self,
        start: u64,
        length: usize,
    ) -> parquet::errors::Result<ferry_formats::codec::Bytes> {
        if length == 0 {
            return Ok(ferry_formats::codec::Bytes::new());
        }
        let out = self.get(start, Some(start + length as u64)).map_err(pq)?;
        let data = self
            .handle
            .block_on(out.body.collect())
            .map_err(|e| {
                pq(Error::new(
                    ferry_core::ErrorKind::Unreachable,
                    format!("reading s3://{}/{} was cut off: {e}", self.bucket, self.key),
                ))
            })?
            .into_bytes();
        if data.len() != length {
            return Err(pq(Error::data(format!(
                "s3://{}/{}: asked for {length} bytes at {start}, got {}",
                self.bucket,
                self.key,
                data.len()
            ))));
        }
        Ok(data)
    }
}
