//! `after_read` on S3: an object is archived by CopyObject (only while its ETag is still
//! the one read: `x-amz-copy-source-if-match`) then DeleteObject, and deleted after a
//! HeadObject finds its ETag unchanged. S3 has no rename; the copy is server-side.

use aws_sdk_s3::Client;
use ferry_core::{Error, Result};
use tokio::runtime::Handle;

use crate::error::{map, At, Op};
use crate::object::ObjectInfo;

/// Copies `o` to `to` unless `to` exists (`Ok(false)`), then deletes `o`.
pub(crate) fn archive(
    handle: &Handle,
    client: &Client,
    bucket: &str,
    o: &ObjectInfo,
    to: &str,
) -> Result<bool> {
    if exists(handle, client, bucket, to)?.is_some() {
        return Ok(false);
    }
    let mut copy = client
        .copy_object()
        .bucket(bucket)
        .key(to)
        .copy_source(copy_source(bucket, &o.key));
    if o.etag.is_empty() {
        // listed without an ETag (some S3-compatible stores): its size must still match
        unchanged(handle, client, bucket, o)?;
    } else {
        copy = copy.copy_source_if_match(&o.etag);
    }
    if let Err(e) = handle.block_on(copy.send()) {
        let precondition = e.raw_response().map(|r| r.status().as_u16()) == Some(412);
        if precondition {
            return Err(changed(o));
        }
        return Err(map(e, Op::Put, At::object(bucket, to)));
    }
    delete(handle, client, bucket, &o.key)?;
    Ok(true)
}

/// Deletes `o` unless it changed since it was listed.
pub(crate) fn remove(handle: &Handle, client: &Client, bucket: &str, o: &ObjectInfo) -> Result<()> {
    unchanged(handle, client, bucket, o)?;
    delete(handle, client, bucket, &o.key)
}

/// Refuses an object whose ETag (or, listed without one, size) is not the one read.
fn unchanged(handle: &Handle, client: &Client, bucket: &str, o: &ObjectInfo) -> Result<()> {
    match exists(handle, client, bucket, &o.key)? {
        Some((etag, size)) if etag == o.etag || (o.etag.is_empty() && size == o.size) => Ok(()),
        Some(_) => Err(changed(o)),
        None => Err(Error::new(
            ferry_core::ErrorKind::NotFound,
            format!("`{}` is gone (deleted by someone else?)", o.key),
        )),
    }
}

/// The ETag and size of `key`, `None` when there is no such object.
fn exists(
    handle: &Handle,
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(String, u64)>> {
    let head = client.head_object().bucket(bucket).key(key);
    match handle.block_on(head.send()) {
        Ok(h) => Ok(Some((
            h.e_tag().unwrap_or_default().to_string(),
            h.content_length().unwrap_or(0).max(0) as u64,
        ))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(map(e, Op::Get, At::object(bucket, key))),
    }
}

fn delete(handle: &Handle, client: &Client, bucket: &str, key: &str) -> Result<()> {
    let del = client.delete_object().bucket(bucket).key(key);
    handle
        .block_on(del.send())
        .map_err(|e| map(e, Op::Delete, At::object(bucket, key)))?;
    Ok(())
}

fn changed(o: &ObjectInfo) -> Error {
    Error::data(format!(
        "`{}` was overwritten since it was read (its ETag or size is not the one read)",
        o.key
    ))
}

/// `bucket/key` as CopyObject's `x-amz-copy-source` wants it: the key URL-encoded, its
/// slashes kept.
fn copy_source(bucket: &str, key: &str) -> String {
    let segments: Vec<String> = key.split('/').map(ferry_core::redact::url_encode).collect();
    format!("{bucket}/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_sources_are_url_encoded() {
        assert_eq!(
            super::copy_source("b", "in/a b+ü.csv"),
            "b/in/a%20b%2B%C3%BC.csv"
        );
    }
}
