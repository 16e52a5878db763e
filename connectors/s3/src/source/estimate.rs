//! `ferry plan`'s estimate for an S3 stream, from one listing (all matching objects, or
//! for an incremental read the new or changed ones since the mark), then
//! - Parquet: the exact row counts of their footers (ranged GETs of the footer only; up
//!   to [`MAX_FOOTERS`] objects, beyond that rows unknown);
//! - plain CSV / JSON Lines: their bytes over the average row size of the first 64 KiB of
//!   the first object (one GET, cut short; and 64 KiB from its middle, a ranged GET, for a
//!   larger object), an estimate;
//! - compressed or age-encrypted CSV / JSON Lines: rows unknown, objects and bytes shown.

use std::sync::Arc;

use ferry_core::{Error, Estimate, Result};
use ferry_formats::codec::{Compression, Format};
use ferry_formats::estimate::{middle_sample, parquet_rows, rows_of_plain_files, sample};

use super::{Codec, Mark, S3Source};
use crate::config::StreamSpec;
use crate::object::{blocking, open_blocking, Listing, RangedObject};

/// Parquet objects whose footers are read at most: each is a GET or two.
const MAX_FOOTERS: usize = 1000;

pub(super) async fn estimate(
    source: &S3Source,
    spec: &Arc<StreamSpec>,
    mark: Option<&Mark>,
) -> Result<Estimate> {
    let client = source.conn.client().await?;
    let bucket = source.conn.bucket.clone();
    let mut listing = Listing::new(&client, &bucket, &spec.list_prefix);
    let mut todo = Vec::new();
    while let Some(page) = listing.next().await {
        todo.extend(
            page?
                .into_iter()
                .filter(|o| spec.matches(&o.key) && !mark.is_some_and(|m| m.covers(o))),
        );
    }
    if todo.is_empty() {
        return Ok(Estimate::nothing());
    }
    let bytes = todo.iter().map(|o| o.size).sum();
    let mut e = Estimate {
        files: Some(todo.len() as u64),
        bytes: Some(bytes),
        ..Estimate::default()
    };
    let codecs = todo
        .iter()
        .map(|o| Codec::of(spec, &o.key))
        .collect::<Result<Vec<_>>>()?;
    if codecs.iter().all(|c| c.format == Format::Parquet) {
        if todo.len() > MAX_FOOTERS {
            return Ok(e);
        }
        let rows = blocking(move |handle| {
            let mut rows = 0;
            for o in todo {
                let key = o.key.clone();
                let ranged = RangedObject {
                    handle: handle.clone(),
                    client: client.clone(),
                    bucket: bucket.clone(),
                    key: o.key,
                    etag: o.etag,
                    size: o.size,
                };
                rows += parquet_rows(ranged).map_err(|e| e.with("object", &key))?;
            }
            Ok(rows)
        })
        .await?;
        e.rows = Some(rows);
        e.exact = true;
        return Ok(e);
    }
    let (format, plain) = (
        codecs[0].format,
        codecs.iter().all(|c| {
            c.format == codecs[0].format && c.compression == Compression::None && !c.encrypted
        }),
    );
    if !plain {
        return Ok(e);
    }
    let first = todo.swap_remove(0);
    let (head, whole, middle) = blocking(move |handle| {
        let raw = open_blocking(&handle, &client, &bucket, &first.key, Some(&first.etag))?;
        let (head, whole) =
            sample(raw).map_err(|e| Error::data(format!("cannot read `{}`: {e}", first.key)))?;
        let ranged = RangedObject {
            handle,
            client,
            bucket,
            key: first.key.clone(),
            etag: first.etag,
            size: first.size,
        };
        let middle = middle_sample(&ranged).map_err(|e| e.with("object", &first.key))?;
        Ok((head, whole, middle))
    })
    .await?;
    e.rows = rows_of_plain_files(
        (&head, whole),
        middle.as_ref().map(|(m, w)| (m.as_slice(), *w)),
        e.files.unwrap_or(1),
        bytes,
        format,
        spec.csv.has_header,
    );
    Ok(e)
}
