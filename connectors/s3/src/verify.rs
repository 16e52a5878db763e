//! `ferry verify` for objects: a receipt names each object the run wrote (`s3://bucket/key`)
//! with the SHA-256 of its bytes; the object is downloaded (streamed, not held) and hashed
//! again, so a client can tell an object changed or went missing since delivery.

use ferry_core::{ErrorKind, OutputRef, Result, Verdict};

use crate::client::Connection;
use crate::error::{map, At, Op};

/// Checks one `object` output of a receipt against the bucket of `conn` (the
/// destination's). An object of another bucket, or without a digest, is not checked;
/// outputs of other kinds are not this destination's to check (`None`).
pub(crate) async fn check_object(conn: &Connection, output: &OutputRef) -> Result<Option<Verdict>> {
    if output.kind != "object" {
        return Ok(None);
    }
    let Some(want) = output.sha256.as_deref() else {
        return Ok(Some(Verdict::Unverifiable(
            "the receipt has no digest for it".into(),
        )));
    };
    let Some(key) = output
        .location
        .strip_prefix("s3://")
        .and_then(|rest| rest.strip_prefix(conn.bucket.as_str()))
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Ok(Some(Verdict::Unverifiable(format!(
            "it is not in the config's bucket `{}`",
            conn.bucket
        ))));
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
                ErrorKind::NotFound => Ok(Some(Verdict::Missing)),
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
    Ok(Some(if got == want {
        Verdict::Same
    } else {
        Verdict::Changed
    }))
}
