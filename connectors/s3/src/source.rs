//! Reading objects: the store lists a key pattern's objects and opens them (GetObject
//! bodies, ranged GETs for Parquet); formats, decryption, incremental marks, estimates and
//! the reading thread are `ferry_filestore`'s.
//!
//! Memory is a few batches plus one listing page (full refresh) whatever the objects'
//! sizes and count. An incremental read must order objects by time, so it holds the
//! `(key, last-modified, etag, size)` of the objects not yet read, and nothing else.
//!
//! Incremental reads are object-granular (see `ferry_filestore::Mark`): the state is the
//! last-modified time of the newest object read, with the keys and ETags read at exactly
//! that time (S3 times have whole-second or millisecond precision, so several objects can
//! share one), saved as `{ mtime_ns, modified, objects: [{ key, etag }] }`. An object
//! overwritten since (a new time, or the same time and a new ETag) is read again whole.

use std::io::Read;

use aws_sdk_s3::Client;
use ferry_core::{Error, ErrorKind, Result};
use ferry_filestore::{Codec, Listed, Listing, StateShape, Store, StoreSource, Stream};
use ferry_formats::age::Identities;
use ferry_formats::codec::Format;
use tokio::runtime::Handle;

use crate::archive;
use crate::client::Connection;
use crate::config::{match_options, KeyPattern, S3SourceConfig};
use crate::error::{map, At, Op};
use crate::object::{open_blocking, Listing as Pages, ObjectInfo, RangedObject};

/// Parquet objects whose footers an estimate reads at most: each is a GET or two.
const MAX_FOOTERS: usize = 1000;

/// The S3 source.
pub(crate) fn source(
    config: S3SourceConfig,
    base_dir: &std::path::Path,
) -> Result<StoreSource<Bucket>> {
    let keys = config.keys(base_dir)?;
    let streams = config.streams()?;
    let bucket = Bucket {
        conn: config.connection()?,
        prefix: config.prefix.trim_start_matches('/').to_string(),
    };
    Ok(keys.source(bucket, streams))
}

/// A bucket (under a prefix), reached from blocking threads.
pub(crate) struct Bucket {
    conn: Connection,
    prefix: String,
}

impl Bucket {
    /// The client, and the runtime its calls wait on.
    fn client(&self) -> Result<(Handle, Client)> {
        let handle = Handle::current();
        let client = handle.block_on(self.conn.client())?;
        Ok((handle, client))
    }

    fn at<'a>(&'a self, key: Option<&'a str>) -> At<'a> {
        At {
            bucket: &self.conn.bucket,
            key,
        }
    }
}

impl Listed for ObjectInfo {
    fn name(&self) -> &str {
        &self.key
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn mtime_ns(&self) -> u64 {
        self.mtime_ns
    }
    fn version(&self) -> &str {
        &self.etag
    }
}

impl Store for Bucket {
    type Entry = ObjectInfo;
    type Place = KeyPattern;
    type Chunks = RangedObject;
    const NOUN: &'static str = "object";
    const STATE: StateShape = StateShape::Objects;

    /// ListObjectsV2 pages (1,000 keys each) under the pattern's literal prefix.
    fn list(&self, stream: &Stream<KeyPattern>) -> Result<Listing<ObjectInfo>> {
        let (handle, client) = self.client()?;
        let place = stream.place.clone();
        let mut pages = Pages::new(&client, &self.conn.bucket, &place.list_prefix);
        let pages = std::iter::from_fn(move || {
            let page = handle.block_on(pages.next())?;
            Some(page.map(|p| p.into_iter().filter(|o| place.matches(&o.key)).collect()))
        });
        Ok(Listing::Pages(Box::new(pages)))
    }

    fn nothing_found(&self, stream: &Stream<KeyPattern>) -> Error {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "no object matches `{}` in {}",
                stream.spec.pattern,
                self.conn.url(&self.prefix)
            ),
        )
        .with("stream", &stream.spec.name)
    }

    fn open(&self, o: &ObjectInfo) -> Result<Box<dyn Read + Send>> {
        let (handle, client) = self.client()?;
        open_blocking(&handle, &client, &self.conn.bucket, &o.key, Some(&o.etag))
    }

    fn chunks(
        &self,
        o: &ObjectInfo,
        _codec: &Codec,
        _identities: Option<&Identities>,
    ) -> Result<RangedObject> {
        let (handle, client) = self.client()?;
        Ok(RangedObject {
            handle,
            client,
            bucket: self.conn.bucket.clone(),
            key: o.key.clone(),
            etag: o.etag.clone(),
            size: o.size,
        })
    }

    /// s3:GetObject, without the body.
    fn probe(&self, o: &ObjectInfo) -> Result<()> {
        let (handle, client) = self.client()?;
        let head = client.head_object().bucket(&self.conn.bucket).key(&o.key);
        handle
            .block_on(head.send())
            .map_err(|e| map(e, Op::Get, self.at(Some(&o.key))))?;
        Ok(())
    }

    /// s3:ListBucket on the prefix.
    fn check(&self) -> Result<()> {
        let (handle, client) = self.client()?;
        let key = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        let list = client
            .list_objects_v2()
            .bucket(&self.conn.bucket)
            .prefix(&self.prefix)
            .max_keys(1);
        handle
            .block_on(list.send())
            .map_err(|e| map(e, Op::List, self.at(key)))?;
        Ok(())
    }

    /// Refuses encrypted Parquet: it needs random access, which age over S3 does not give.
    fn codec(&self, spec: &ferry_filestore::StreamSpec, o: &ObjectInfo) -> Result<Codec> {
        let codec = Codec::of(spec, &o.key, Self::NOUN)?;
        if codec.format.random_access() && codec.encrypted && codec.archive.is_none() {
            let what = if codec.format == Format::Excel {
                "workbook"
            } else {
                "Parquet"
            };
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "`{}` is an encrypted {what} object: a {what} is read with random access (its index is inside), which age encryption does not allow over S3; download it and read it with the `file` source, or have it written unencrypted (or as CSV/JSON Lines)",
                    o.key
                ),
            )
            .with("stream", &spec.name));
        }
        Ok(codec)
    }

    fn location(&self, o: &ObjectInfo) -> String {
        format!("s3://{}/{}", self.conn.bucket, o.key)
    }

    fn max_footers(&self) -> usize {
        MAX_FOOTERS
    }

    /// The pattern's literal prefix up to its last `/`.
    fn root(&self, stream: &Stream<KeyPattern>) -> String {
        let p = &stream.place.list_prefix;
        p[..p.rfind('/').map_or(0, |i| i + 1)].to_string()
    }

    /// The objects under `folder` that match the pattern below its root.
    fn archived(&self, stream: &Stream<KeyPattern>, folder: &str) -> Result<Vec<ObjectInfo>> {
        let pattern = stream.spec.pattern.trim_start_matches('/');
        let below = &pattern[ferry_filestore::pattern_root(pattern).len()..];
        let glob = glob::Pattern::new(&format!("{}{below}", glob::Pattern::escape(folder)))
            .map_err(|e| Error::config(format!("the archive folder `{folder}`: {}", e.msg)))?;
        let (handle, client) = self.client()?;
        let mut pages = Pages::new(&client, &self.conn.bucket, folder);
        let mut out = Vec::new();
        while let Some(page) = handle.block_on(pages.next()) {
            let page = page?;
            out.extend(
                page.into_iter()
                    .filter(|o| glob.matches_with(&o.key, match_options())),
            );
        }
        Ok(out)
    }

    /// CopyObject (if the ETag is still the one read), then DeleteObject.
    fn rename(&self, o: &ObjectInfo, to: &str) -> Result<bool> {
        let (handle, client) = self.client()?;
        archive::archive(&handle, &client, &self.conn.bucket, o, to)
    }

    /// DeleteObject, if the ETag is still the one read.
    fn remove(&self, o: &ObjectInfo) -> Result<()> {
        let (handle, client) = self.client()?;
        archive::remove(&handle, &client, &self.conn.bucket, o)
    }
}
