//! `ferry plan`'s estimate for a file stream: list and stat the files a read would take
//! (all of them, or for an incremental read the new or changed ones), then
//! - Parquet: the exact row counts of their footers (only footers are read);
//! - plain CSV / JSON Lines: their bytes over the average row size of the first 64 KiB of
//!   the first one (and 64 KiB from its middle, for a larger file), an estimate;
//! - compressed or age-encrypted CSV / JSON Lines: rows unknown (stored bytes say little
//!   about rows; decompressing to learn would be a read), files and bytes still shown.

use ferry_core::{Error, ErrorKind, Estimate, Result};
use ferry_formats::age;
use ferry_formats::codec::{Compression, Format};
use ferry_formats::estimate::{middle_sample, parquet_rows, rows_of_plain_files, sample};

use super::{compression_of, open_chunks, Entry, FileStream, Mark};

pub(super) fn estimate(stream: &FileStream, mark: Option<&Mark>) -> Result<Estimate> {
    let mut files = match stream.list() {
        Ok(files) => files,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if let Some(m) = mark {
        files.retain(|f| !m.covers(f));
    }
    if files.is_empty() {
        return Ok(Estimate::nothing());
    }
    let mut bytes = 0;
    for f in &files {
        bytes += std::fs::metadata(&f.path)
            .map_err(|e| Error::io(e, "cannot read the size of", &f.path))?
            .len();
    }
    let mut e = Estimate {
        files: Some(files.len() as u64),
        bytes: Some(bytes),
        ..Estimate::default()
    };
    let spec = &stream.spec;
    if spec.format == Format::Parquet {
        let mut rows = 0;
        for f in &files {
            let chunks = open_chunks(&f.path, &f.shown, stream.identities.as_deref())?;
            rows += parquet_rows(chunks).map_err(|e| e.with("file", &f.shown))?;
        }
        e.rows = Some(rows);
        e.exact = true;
        return Ok(e);
    }
    if files.iter().any(|f| !plain(spec.compression, f)) {
        return Ok(e);
    }
    let first = &files[0];
    let file =
        std::fs::File::open(&first.path).map_err(|e| Error::io(e, "cannot open", &first.path))?;
    let middle = middle_sample(&file).map_err(|e| e.with("file", &first.shown))?;
    let (head, whole) = sample(file).map_err(|e| Error::io(e, "cannot read", &first.path))?;
    e.rows = rows_of_plain_files(
        (&head, whole),
        middle.as_ref().map(|(m, w)| (m.as_slice(), *w)),
        files.len() as u64,
        bytes,
        spec.format,
        spec.csv.has_header,
    );
    Ok(e)
}

/// Whether a file is stored as its rows: not compressed, not encrypted.
fn plain(configured: Option<Compression>, f: &Entry) -> bool {
    compression_of(configured, f) == Compression::None && !age::is_age_path(&f.path)
}
