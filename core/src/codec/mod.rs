//! File formats shared by the file and object-store connectors: CSV and JSON Lines.
//!
//! Everything here works on `std::io::Read` / `std::io::Write`, never on paths, so the
//! same code reads a local file, a decompressing stream or an object-store download.
//!
//! - **Readers** ([`CsvReader`], [`JsonlReader`], or [`FormatReader`] for either) are
//!   iterators of [`Message`]s: `Batch`es of up to `batch_size` rows and a
//!   `Rejected` for every record that cannot become a row (a ragged CSV row, invalid
//!   UTF-8, bad JSON, a value that does not parse as its column's type). A bad record never
//!   stops the reader and is never dropped silently: the runtime decides whether it fails
//!   the run or goes to quarantine. Readers stream: memory is one batch plus one record.
//! - **Writers** ([`CsvWriter`], [`JsonlWriter`], or [`FormatWriter`]) take batches and
//!   count rows and bytes. Values are written with [`crate::values::write_text`] and
//!   [`crate::values::to_json`], so every connector spells a value the same way.
//! - **Inference** ([`infer()`], [`infer_csv`], [`infer_jsonl`]) picks the narrowest Ferry
//!   type per column from a sample of the first records, with per-column overrides that
//!   always win.

pub mod csv;
pub mod infer;
pub mod jsonl;

use std::io::{Read, Write};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

pub use self::csv::{CsvOptions, CsvReader, CsvWriter};
pub use self::infer::{
    infer, infer_csv, infer_jsonl, parse_type_overrides, InferOptions, DEFAULT_SAMPLE_ROWS,
};
pub use self::jsonl::{JsonlReader, JsonlWriter};

use crate::source::Message;
use crate::{Error, ErrorKind, Result};

/// Largest record (CSV) or line (JSON Lines) a reader accepts: past it the input is
/// almost certainly broken (a quote that is never closed, a file without line breaks),
/// and reading on would only fill memory.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values (or any other single-byte delimiter), UTF-8.
    Csv,
    /// JSON Lines: one JSON object per line, UTF-8.
    Jsonl,
}

impl Format {
    /// The format a file name's extension names: `.csv`/`.tsv` → CSV,
    /// `.jsonl`/`.ndjson` → JSON Lines; `None` for anything else.
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// A reader of either format, yielding [`Message`]s (see the module docs).
// one long-lived value per input, never stored in bulk: the size difference does not matter
#[allow(clippy::large_enum_variant)]
pub enum FormatReader<R: Read> {
    /// A CSV reader.
    Csv(CsvReader<R>),
    /// A JSON Lines reader.
    Jsonl(JsonlReader<R>),
}

impl<R: Read> FormatReader<R> {
    /// A reader of `format` producing batches of `schema` from `input`; `csv` is used
    /// for CSV only. No I/O happens until the first call to `next`.
    pub fn new(format: Format, input: R, schema: SchemaRef, csv: &CsvOptions) -> Result<Self> {
        Ok(match format {
            Format::Csv => FormatReader::Csv(CsvReader::new(input, schema, csv)?),
            Format::Jsonl => FormatReader::Jsonl(JsonlReader::new(input, schema)?),
        })
    }

    /// Names the input in the positions of rejected records and in errors.
    pub fn with_file(self, file: impl Into<String>) -> Self {
        match self {
            FormatReader::Csv(r) => FormatReader::Csv(r.with_file(file)),
            FormatReader::Jsonl(r) => FormatReader::Jsonl(r.with_file(file)),
        }
    }

    /// Sets the rows per batch (default [`crate::source::DEFAULT_BATCH_SIZE`]).
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        match self {
            FormatReader::Csv(r) => FormatReader::Csv(r.with_batch_size(batch_size)),
            FormatReader::Jsonl(r) => FormatReader::Jsonl(r.with_batch_size(batch_size)),
        }
    }

    /// Good rows read so far (rows in batches already yielded or about to be).
    pub fn rows(&self) -> u64 {
        match self {
            FormatReader::Csv(r) => r.rows(),
            FormatReader::Jsonl(r) => r.rows(),
        }
    }

    /// Records rejected so far.
    pub fn rejected(&self) -> u64 {
        match self {
            FormatReader::Csv(r) => r.rejected(),
            FormatReader::Jsonl(r) => r.rejected(),
        }
    }
}

impl<R: Read> Iterator for FormatReader<R> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FormatReader::Csv(r) => r.next(),
            FormatReader::Jsonl(r) => r.next(),
        }
    }
}

/// A writer of either format.
// one long-lived value per output, never stored in bulk: the size difference does not matter
#[allow(clippy::large_enum_variant)]
pub enum FormatWriter<W: Write> {
    /// A CSV writer.
    Csv(CsvWriter<W>),
    /// A JSON Lines writer.
    Jsonl(JsonlWriter<W>),
}

impl<W: Write> FormatWriter<W> {
    /// A writer of `format` for batches of `schema`; `csv` is used for CSV only (a header
    /// row is written at once when `csv.has_header`).
    pub fn new(format: Format, out: W, schema: SchemaRef, csv: &CsvOptions) -> Result<Self> {
        Ok(match format {
            Format::Csv => FormatWriter::Csv(CsvWriter::new(out, schema, csv)?),
            Format::Jsonl => FormatWriter::Jsonl(JsonlWriter::new(out, schema)?),
        })
    }

    /// Writes every row of `batch` (its columns must match the writer's schema).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            FormatWriter::Csv(w) => w.write_batch(batch),
            FormatWriter::Jsonl(w) => w.write_batch(batch),
        }
    }

    /// Pushes buffered bytes to the inner writer and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        match self {
            FormatWriter::Csv(w) => w.flush(),
            FormatWriter::Jsonl(w) => w.flush(),
        }
    }

    /// Rows written so far (not counting a header).
    pub fn rows(&self) -> u64 {
        match self {
            FormatWriter::Csv(w) => w.rows(),
            FormatWriter::Jsonl(w) => w.rows(),
        }
    }

    /// Bytes handed to the inner writer so far, header included; exact after [`Self::flush`].
    pub fn bytes(&self) -> u64 {
        match self {
            FormatWriter::Csv(w) => w.bytes(),
            FormatWriter::Jsonl(w) => w.bytes(),
        }
    }

    /// The inner writer (e.g. to fsync a file after [`Self::flush`]).
    pub fn get_ref(&self) -> &W {
        match self {
            FormatWriter::Csv(w) => w.get_ref(),
            FormatWriter::Jsonl(w) => w.get_ref(),
        }
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> Result<W> {
        match self {
            FormatWriter::Csv(w) => w.into_inner(),
            FormatWriter::Jsonl(w) => w.into_inner(),
        }
    }
}

/// Counts the bytes written through it.
pub(crate) struct Counting<W> {
    pub(crate) inner: W,
    pub(crate) bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An [`ErrorKind::Io`] error for a failed read or write of the data itself.
pub(crate) fn io_error(e: std::io::Error, what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

/// Adds `file` context when known.
pub(crate) fn in_file(e: Error, file: &Option<String>) -> Error {
    match file {
        Some(f) => e.with("file", f),
        None => e,
    }
}

/// Strips a UTF-8 byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path("in/a.CSV"), Some(Format::Csv));
        assert_eq!(Format::from_path("a.tsv"), Some(Format::Csv));
        assert_eq!(Format::from_path("a.ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::from_path("a.jsonl"), Some(Format::Jsonl));
        assert_eq!(Format::from_path("a.json"), None);
        assert_eq!(Format::from_path("a"), None);
    }
}
