//! `ferry verify` for objects: a receipt names each object the run wrote (`s3://bucket/key`)
//! with the SHA-256 of its bytes; the object is downloaded (streamed, not held) and hashed
//! again, so a client can tell an object changed or went missing since delivery.

use ferry_core::config::ConnectorConfig;
use ferry_core::sink::OutputCheck;
use ferry_core::{ErrorKind, Result};

use crate::config::S3SinkConfig;
use crate::error::{map, At, Op};

/// Checks one `object` output of a receipt (its `location` and `digest`) against the bucket
/// of `destination` (an `s3` destination config). An object of another bucket, or without a
/// digest, is not checked.
pub async fn check_object(
    destination: &ConnectorConfig,
    location: &str,
    digest: Option<&str>,
) -> Result<OutputCheck> {
    let config: S3SinkConfig = destination.node.parse()?;
    let conn = config.connection()?;
    let Some(want) = digest else {
        return Ok(OutputCheck::Unverifiable);
    };
    // `sha256:<hex>`, or the bare hex of earlier receipts
    let want = want
        .strip_prefix(ferry_formats::digest::FILE_PREFIX)
        .unwrap_or(want);
    let Some(key) = location
        .strip_prefix("s3://")
        .and_then(|rest| rest.strip_prefix(conn.bucket.as_str()))
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Ok(OutputCheck::Unverifiable);
    };
    let client = conn.client().await?;
    let at = At {
        bucket: &conn.bucket,
        key: Some(key),
    };
    let out = match client
        .get_object()
        .bucket(&conn.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let e = map(e, Op::Get, at);
            return match e.kind() {
                ErrorKind::NotFound => Ok(OutputCheck::Missing),
                _ => Err(e),
            };
        }
    };
    let mut body = out.body;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    while let Some(chunk) = body.try_next().await.map_err(|e| {
        ferry_core::Error::new(
            ErrorKind::Temporary,
            format!("cannot read {}: {e}", conn.url(key)),
        )
    })? {
        sha.update(&chunk);
    }
    let got = ferry_formats::digest::hex(sha.finish().as_ref());
    Ok(if got == want {
        OutputCheck::Ok
    } else {
        OutputCheck::Changed
    })
}
