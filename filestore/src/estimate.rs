//! `ferry plan`'s estimate for a file-like stream: from one listing (all matching files,
//! or for an incremental read the new or changed ones since the mark), then
//! - Parquet: the exact row counts of their footers (only footers are read; a store may
//!   cap how many, see [`Store::max_footers`]);
//! - plain CSV / JSON Lines: their bytes over the average row size of the first 64 KiB of
//!   the first file (and 64 KiB from its middle, for a larger file), an estimate;
//! - compressed or age-encrypted CSV / JSON Lines: rows unknown (stored bytes say little
//!   about rows; decompressing to learn would be a read), files and bytes still shown.

use ferry_core::{Error, Estimate, Result};
use ferry_formats::age::Identities;
use ferry_formats::codec::{Compression, Format};
use ferry_formats::estimate::{middle_sample, parquet_rows, rows_of_plain_files, sample};

use crate::mark::{Listed, Mark};
use crate::pick::listing;
use crate::store::{Store, Stream};

/// The estimate of reading `stream` after `mark`.
pub(crate) fn estimate<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
    mark: &Mark,
    identities: Option<&Identities>,
) -> Result<Estimate> {
    let files = listing(store, stream)?.collect(|f| !mark.covers(f))?;
    if files.is_empty() {
        return Ok(Estimate::nothing());
    }
    let bytes = files.iter().map(Listed::size).sum();
    let mut e = Estimate {
        files: Some(files.len() as u64),
        bytes: Some(bytes),
        ..Estimate::default()
    };
    let codecs = files
        .iter()
        .map(|f| store.codec(&stream.spec, f))
        .collect::<Result<Vec<_>>>()?;
    if codecs.iter().any(|c| c.archive.is_some()) {
        // an archive's bytes say little about the rows of its entries
        return Ok(e);
    }
    if codecs.iter().all(|c| c.format == Format::Parquet) {
        if files.len() > store.max_footers() {
            return Ok(e);
        }
        let mut rows = 0;
        for (f, codec) in files.iter().zip(&codecs) {
            let chunks = store.chunks(f, codec, identities)?;
            rows += parquet_rows(chunks).map_err(|e| e.with(S::NOUN, f.name()))?;
        }
        e.rows = Some(rows);
        e.exact = true;
        return Ok(e);
    }
    let format = codecs[0].format;
    if format.random_access() {
        // a workbook's bytes say nothing about its rows
        return Ok(e);
    }
    let plain = codecs
        .iter()
        .all(|c| c.format == format && c.compression == Compression::None && !c.encrypted);
    if !plain {
        return Ok(e);
    }
    let (first, codec) = (&files[0], &codecs[0]);
    let (head, whole) = sample(store.open(first)?)
        .map_err(|e| Error::data(format!("cannot read `{}`: {e}", first.name())))?;
    let chunks = store.chunks(first, codec, identities)?;
    let middle = middle_sample(&chunks).map_err(|e| e.with(S::NOUN, first.name()))?;
    e.rows = rows_of_plain_files(
        (&head, whole),
        middle.as_ref().map(|(m, w)| (m.as_slice(), *w)),
        files.len() as u64,
        bytes,
        format,
        stream.spec.csv.has_header,
    );
    Ok(e)
}
