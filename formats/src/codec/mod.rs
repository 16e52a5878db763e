//! File formats shared by the file and object-store connectors: CSV, JSON Lines and
//! Parquet, optionally compressed (gzip, zstd) and optionally encrypted (age).
//!
//! Everything here works on `std::io::Read` / `std::io::Write` (Parquet: on a
//! [`ChunkReader`], since its index is at the end), never on paths, so the same code reads
//! a local file, a decompressing stream or an object-store download.
//!
//! ## Layers
//!
//! Reading, from the bytes at rest to rows:
//!
//! ```text
//! bytes ── age decrypt (name ends in .age) ── decompress (.gz / .zst) ── decode (CSV, JSON Lines) ── format reader ── batches
//! ```
//!
//! and writing is the same in reverse: format writer → [`CompressWriter`] → age
//! [`crate::age::encrypt_writer`] → bytes. [`detect`] reads the layers off a name from the
//! outside in (`orders.csv.gz.age`: age, then gzip, then CSV), which is also the order
//! the names are built in. Each layer streams: memory is one age chunk (64 KiB), the
//! compressor's window and one batch. Encryption is outermost so an encrypted file shows
//! nothing, not even how well it compresses; compression sits inside it because
//! ciphertext does not compress.
//!
//! Parquet compresses inside the file (per column chunk, [`ParquetOptions::compression`])
//! and is never wrapped in gzip or zstd. It needs random access to read, so an encrypted
//! Parquet file is read through [`crate::age`]'s seekable decryption where the bytes are
//! local (see the file connector), and refused with a clear message elsewhere.
//!
//! ## Pieces
//!
//! - **Readers** ([`CsvReader`], [`JsonlReader`], [`ParquetReader`], or [`FormatReader`]
//!   for any) are iterators of [`Message`]s: `Batch`es of up to `batch_size` rows and a
//!   `Rejected` for every record that cannot become a row (a ragged CSV row, invalid
//!   UTF-8, bad JSON, a value that does not parse or convert to its column's type). A bad
//!   record never stops the reader and is never dropped silently: the runtime decides
//!   whether it fails the run or goes to quarantine. Readers stream: memory is one batch
//!   plus one record (Parquet: plus one row group's column chunks).
//! - **Writers** ([`CsvWriter`], [`JsonlWriter`], [`ParquetWriter`], or [`FormatWriter`])
//!   take batches and count rows and bytes. Text values are written with
//!   [`ferry_core::values::write_text`] and [`ferry_core::values::to_json`], so every connector
//!   spells a value the same way.
//! - **Inference** ([`infer()`], [`infer_csv`], [`infer_jsonl`]) picks the narrowest Ferry
//!   type per column from a sample of the first records, with per-column overrides that
//!   always win; [`infer_parquet`] reads the types from the footer.
//! - **Compression** ([`Compression`], [`decompress`], [`CompressWriter`]) and names
//!   ([`detect`]); [`HashingWriter`] gives the SHA-256 of what lands on disk.
//! - **Text** ([`encoding`]): decoding from legacy encodings and UTF-16 ([`DecodeReader`],
//!   [`parse_encoding`]); CSV dialects: the delimiter guessed from the first lines
//!   ([`sniff`]) and numbers written the local way, `1.234,56` ([`NumberFormat`]).

mod checks;
pub mod compress;
pub mod csv;
mod cursor;
pub mod encoding;
pub mod excel;
pub mod infer;
pub mod jsonl;
pub mod number;
pub mod parquet;
mod reader;
pub mod sniff;

use std::io::{Read, Write};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

pub use self::compress::{
    decompress, detect, CompressWriter, Compression, Detected, HashingWriter,
};
pub use self::csv::{CsvOptions, CsvReader, CsvWriter};
pub use self::cursor::ChunkCursor;
pub use self::encoding::{parse_encoding, DecodeReader, Encoding, TextEncoding};
pub use self::excel::{infer_excel, sheet_names, CellRange, ExcelOptions, ExcelReader, Sheet};
pub use self::infer::{
    infer, infer_csv, infer_jsonl, parse_type_overrides, InferOptions, DEFAULT_SAMPLE_ROWS,
};
pub use self::jsonl::{JsonlReader, JsonlWriter};
pub use self::number::NumberFormat;
pub use self::parquet::{
    infer_parquet, infer_parquet_with, Bytes, ChunkReader, Length, ParquetCompression,
    ParquetError, ParquetOptions, ParquetReader, ParquetResult, ParquetWriter, SeekChunks,
    DEFAULT_ROW_GROUP_ROWS,
};
pub use self::sniff::{one_column_warning, sniff_delimiter};

use ferry_core::source::Message;
use ferry_core::{Error, ErrorKind, Result};

/// Largest record (CSV) or line (JSON Lines) a reader accepts: past it the input is
/// almost certainly broken (a quote that is never closed, a file without line breaks),
/// and reading on would only fill memory.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values (or any other single-byte delimiter); UTF-8 unless `encoding` says otherwise.
    Csv,
    /// JSON Lines: one JSON object per line; UTF-8 unless `encoding` says otherwise.
    Jsonl,
    /// Apache Parquet (columnar, compressed inside; read with random access).
    Parquet,
    /// An Excel or OpenDocument workbook (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`; read
    /// with random access, one sheet per stream; never written).
    Excel,
}

impl Format {
    /// The format a file name's extension names: `.csv`/`.tsv` → CSV,
    /// `.jsonl`/`.ndjson` → JSON Lines, `.parquet`/`.pq` → Parquet, `.xlsx`/`.xlsm`/
    /// `.xlsb`/`.xls`/`.ods` → Excel; `None` for anything
    /// else (see [`detect`] for names with compression and `.age`).
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Some(Format::Excel),
            _ => None,
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::Excel => "xlsx",
        }
    }

    /// Whether a file of this format is read with random access (its index is not at
    /// the start), so it cannot be read through a stream or wrapped in gzip or zstd.
    pub fn random_access(self) -> bool {
        matches!(self, Format::Parquet | Format::Excel)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// A reader of any format, yielding [`Message`]s (see the module docs).
///
/// `R` is the `Read` type of the text formats. The Parquet variant holds a
/// [`ParquetReader`], which is not generic (it keeps its [`ChunkReader`] type-erased), so
/// every variant fits one `FormatReader<R>`: build CSV and JSON Lines readers with
/// [`FormatReader::new`] and Parquet ones with [`FormatReader::parquet`].
// one long-lived value per input, never stored in bulk: the size difference does not matter
#[allow(clippy::large_enum_variant)]
pub enum FormatReader<R: Read> {
    /// A CSV reader.
    Csv(CsvReader<R>),
    /// A JSON Lines reader.
    Jsonl(JsonlReader<R>),
    /// A Parquet reader.
    Parquet(ParquetReader),
    /// A reader of one sheet of a workbook.
    Excel(ExcelReader),
}

/// The error for a Parquet file offered as a plain stream.
pub(crate) fn parquet_needs_random_access() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "Parquet needs random access to the file (its index is at the end), not a stream: use `FormatReader::parquet` / `infer_parquet` with a `ChunkReader`",
    )
}

/// The error for a workbook offered as a plain stream.
pub(crate) fn excel_needs_random_access() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "a workbook needs random access to the file (it is a zip or OLE file with its index inside), not a stream: use `FormatReader::excel` / `infer_excel` with a `Read + Seek` input",
    )
}

/// The error for a destination asked to write a workbook.
pub fn excel_not_written() -> Error {
    Error::config(
        "Ferry reads Excel workbooks but does not write them: set `format = \"csv\"` (Excel opens it), `\"jsonl\"` or `\"parquet\"`",
    )
}

impl<R: Read> FormatReader<R> {
    /// A reader of `format` producing batches of `schema` from `input`; `csv` is used
    /// for CSV only. No I/O happens until the first call to `next`. Parquet cannot be read
    /// from a stream: use [`FormatReader::parquet`].
    pub fn new(format: Format, input: R, schema: SchemaRef, csv: &CsvOptions) -> Result<Self> {
        Ok(match format {
            Format::Csv => FormatReader::Csv(CsvReader::new(input, schema, csv)?),
            Format::Jsonl => {
                FormatReader::Jsonl(JsonlReader::new(input, schema)?.with_encoding(csv.encoding))
            }
            Format::Parquet => return Err(parquet_needs_random_access()),
            Format::Excel => return Err(excel_needs_random_access()),
        })
    }

    /// A Parquet reader of `input` producing batches of `schema`, row group by row group
    /// (see [`ParquetReader`]). `R` is free: name it where the compiler cannot tell, e.g.
    /// `FormatReader::<std::fs::File>::parquet(file, schema)`.
    pub fn parquet<C: ChunkReader + 'static>(input: C, schema: SchemaRef) -> Result<Self>
    where
        C::T: Send + 'static,
    {
        Ok(FormatReader::Parquet(ParquetReader::new(input, schema)?))
    }

    /// A reader of one sheet of the workbook `input` (the file `name`: it tells `.ods`
    /// and `.xlsb` apart), producing batches of `schema` (see [`ExcelReader`]).
    pub fn excel<S: Read + std::io::Seek>(
        input: S,
        name: Option<&str>,
        schema: SchemaRef,
        options: &ExcelOptions,
    ) -> Result<Self> {
        Ok(FormatReader::Excel(ExcelReader::new(
            input, name, schema, options,
        )?))
    }

    /// Names the input in the positions of rejected records and in errors.
    pub fn with_file(self, file: impl Into<String>) -> Self {
        match self {
            FormatReader::Csv(r) => FormatReader::Csv(r.with_file(file)),
            FormatReader::Jsonl(r) => FormatReader::Jsonl(r.with_file(file)),
            FormatReader::Parquet(r) => FormatReader::Parquet(r.with_file(file)),
            FormatReader::Excel(r) => FormatReader::Excel(r.with_file(file)),
        }
    }

    /// Sets the rows per batch (default [`ferry_core::source::DEFAULT_BATCH_SIZE`]).
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        match self {
            FormatReader::Csv(r) => FormatReader::Csv(r.with_batch_size(batch_size)),
            FormatReader::Jsonl(r) => FormatReader::Jsonl(r.with_batch_size(batch_size)),
            FormatReader::Parquet(r) => FormatReader::Parquet(r.with_batch_size(batch_size)),
            FormatReader::Excel(r) => FormatReader::Excel(r.with_batch_size(batch_size)),
        }
    }

    /// Good rows read so far (rows in batches already yielded or about to be).
    pub fn rows(&self) -> u64 {
        match self {
            FormatReader::Csv(r) => r.rows(),
            FormatReader::Jsonl(r) => r.rows(),
            FormatReader::Parquet(r) => r.rows(),
            FormatReader::Excel(r) => r.rows(),
        }
    }

    /// Records rejected so far.
    pub fn rejected(&self) -> u64 {
        match self {
            FormatReader::Csv(r) => r.rejected(),
            FormatReader::Jsonl(r) => r.rejected(),
            FormatReader::Parquet(r) => r.rejected(),
            FormatReader::Excel(r) => r.rejected(),
        }
    }
}

impl<R: Read> Iterator for FormatReader<R> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FormatReader::Csv(r) => r.next(),
            FormatReader::Jsonl(r) => r.next(),
            FormatReader::Parquet(r) => r.next(),
            FormatReader::Excel(r) => r.next(),
        }
    }
}

/// How a [`FormatWriter`] lays out what it writes: the CSV layout and the Parquet options
/// (each used by its format only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteOptions {
    /// CSV layout.
    pub csv: CsvOptions,
    /// Parquet column compression and row-group size.
    pub parquet: ParquetOptions,
}

/// A writer of any format. `W: Send` because the Parquet writer requires it.
// one long-lived value per output, never stored in bulk: the size difference does not matter
#[allow(clippy::large_enum_variant)]
pub enum FormatWriter<W: Write + Send> {
    /// A CSV writer.
    Csv(CsvWriter<W>),
    /// A JSON Lines writer.
    Jsonl(JsonlWriter<W>),
    /// A Parquet writer.
    Parquet(ParquetWriter<W>),
}

impl<W: Write + Send> FormatWriter<W> {
    /// A writer of `format` for batches of `schema`; `csv` is used for CSV only (a header
    /// row is written at once when `csv.has_header`). Parquet gets the default
    /// [`ParquetOptions`]; use [`FormatWriter::with_options`] to choose.
    pub fn new(format: Format, out: W, schema: SchemaRef, csv: &CsvOptions) -> Result<Self> {
        Self::with_options(
            format,
            out,
            schema,
            &WriteOptions {
                csv: csv.clone(),
                parquet: ParquetOptions::default(),
            },
        )
    }

    /// A writer of `format` for batches of `schema`, laid out as `options` says.
    pub fn with_options(
        format: Format,
        out: W,
        schema: SchemaRef,
        options: &WriteOptions,
    ) -> Result<Self> {
        Ok(match format {
            Format::Csv => FormatWriter::Csv(CsvWriter::new(out, schema, &options.csv)?),
            Format::Jsonl => FormatWriter::Jsonl(JsonlWriter::new(out, schema)?),
            Format::Parquet => {
                FormatWriter::Parquet(ParquetWriter::new(out, schema, &options.parquet)?)
            }
            Format::Excel => return Err(excel_not_written()),
        })
    }

    /// Writes every row of `batch` (its columns must match the writer's schema).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            FormatWriter::Csv(w) => w.write_batch(batch),
            FormatWriter::Jsonl(w) => w.write_batch(batch),
            FormatWriter::Parquet(w) => w.write_batch(batch),
        }
    }

    /// Pushes buffered bytes to the inner writer and flushes it. Parquet: only finished
    /// row groups; the file is readable once [`Self::into_inner`] wrote the footer.
    pub fn flush(&mut self) -> Result<()> {
        match self {
            FormatWriter::Csv(w) => w.flush(),
            FormatWriter::Jsonl(w) => w.flush(),
            FormatWriter::Parquet(w) => w.flush(),
        }
    }

    /// Rows written so far (not counting a header).
    pub fn rows(&self) -> u64 {
        match self {
            FormatWriter::Csv(w) => w.rows(),
            FormatWriter::Jsonl(w) => w.rows(),
            FormatWriter::Parquet(w) => w.rows(),
        }
    }

    /// Bytes handed to the inner writer so far, header included; exact after [`Self::flush`]
    /// (Parquet: after [`Self::into_inner`]).
    pub fn bytes(&self) -> u64 {
        match self {
            FormatWriter::Csv(w) => w.bytes(),
            FormatWriter::Jsonl(w) => w.bytes(),
            FormatWriter::Parquet(w) => w.bytes(),
        }
    }

    /// The inner writer (e.g. to fsync a file after [`Self::flush`]).
    pub fn get_ref(&self) -> &W {
        match self {
            FormatWriter::Csv(w) => w.get_ref(),
            FormatWriter::Jsonl(w) => w.get_ref(),
            FormatWriter::Parquet(w) => w.get_ref(),
        }
    }

    /// Flushes and returns the inner writer (Parquet: after writing the last row group
    /// and the footer).
    pub fn into_inner(self) -> Result<W> {
        match self {
            FormatWriter::Csv(w) => w.into_inner(),
            FormatWriter::Jsonl(w) => w.into_inner(),
            FormatWriter::Parquet(w) => w.into_inner(),
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
        assert_eq!(Format::from_path("x/a.Parquet"), Some(Format::Parquet));
        assert_eq!(Format::from_path("a.pq"), Some(Format::Parquet));
        assert_eq!(Format::from_path("a"), None);
        for x in ["a.xlsx", "b.XLSM", "c.xls", "d.ods", "e.xlsb"] {
            assert_eq!(Format::from_path(x), Some(Format::Excel), "{x}");
        }
    }
}
