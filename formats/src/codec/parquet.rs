//! Parquet: a reader that streams row group by row group, footer-based inference, and a
//! writer that cuts a row group every N rows.
//!
//! Parquet keeps its index (the footer) at the end, so a reader needs random access: it
//! takes a [`ChunkReader`] (a local `File`, [`Bytes`] in memory, or a ranged object-store
//! reader), never a plain `Read`. Memory while reading is about one row group's projected
//! column chunks plus one batch: each row group gets its own reader, built only when the
//! previous one is used up.
//!
//! Types: every Parquet/Arrow type becomes the nearest of Ferry's nine (see
//! [`ferry_type_of`]): any integer → int64, any float → float64, any decimal → decimal
//! (precision at most 38), any timestamp (any unit, any or no zone) → timestamp (UTC,
//! microseconds), Date64 → date, Utf8View/LargeUtf8 → string (json when the column is
//! tagged `arrow.json` or has Parquet's JSON logical type), any binary → binary, time,
//! duration and interval → string, lists, structs and maps → json. A value that cannot
//! convert (a UInt64 above `i64::MAX`, a 40-digit decimal, a nanosecond timestamp out of
//! the microsecond range, text that does not parse as an overridden column type) makes its
//! row a [`Message::Rejected`] naming the row group and row; the rest of the batch goes on.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
pub use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::LogicalType;
pub use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
pub use parquet::file::reader::{ChunkReader, Length};

/// What [`ChunkReader`] methods return (so implementers need no `parquet` dependency).
pub type ParquetResult<T> = std::result::Result<T, ParquetError>;
use serde::{Deserialize, Serialize};

use super::checks::check_width;
use super::infer::{apply_overrides, InferOptions};
use super::reader::{reader_api, Output, Steps};
use ferry_core::types::{check_schema, is_json, FerryType};
use ferry_core::values::{write_text, ColumnBuilder};
use ferry_core::{Error, ErrorKind, Result};

/// Rows per row group the writer cuts at by default: big enough for good compression and
/// fast scans, small enough that the open row group (held in memory, encoded) stays small.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;

/// How the column chunks inside a Parquet file are compressed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Uncompressed.
    None,
    /// Snappy: fastest, larger files.
    Snappy,
    /// gzip: small and slow; for readers that know nothing newer.
    Gzip,
    /// LZ4 (the `LZ4_RAW` codec).
    Lz4,
    /// Zstandard level 3: small and fast (the default).
    #[default]
    Zstd,
}

impl ParquetCompression {
    fn codec(self) -> parquet::basic::Compression {
        use parquet::basic::Compression as C;
        match self {
            ParquetCompression::None => C::UNCOMPRESSED,
            ParquetCompression::Snappy => C::SNAPPY,
            ParquetCompression::Gzip => C::GZIP(Default::default()),
            ParquetCompression::Lz4 => C::LZ4_RAW,
            ParquetCompression::Zstd => C::ZSTD(
                parquet::basic::ZstdLevel::try_new(super::compress::ZSTD_LEVEL).unwrap_or_default(),
            ),
        }
    }
}

/// How Parquet files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Column chunk compression (default zstd).
    pub compression: ParquetCompression,
    /// Rows per row group (default [`DEFAULT_ROW_GROUP_ROWS`]; at least 1). The writer
    /// holds the open row group in memory, encoded and compressed.
    pub row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            compression: ParquetCompression::default(),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

fn pq_error(e: impl std::fmt::Display, what: &str) -> Error {
    Error::data(format!("{what}: {e}"))
}

// ----------------------------------------------------------------------------------------
// Type mapping

/// The Ferry type a Parquet-read Arrow field becomes (see the module docs); `json` marks a
/// text column that holds JSON (Parquet's JSON logical type).
pub fn ferry_type_of(field: &Field, json: bool) -> FerryType {
    natural(field.data_type(), is_json(field) || json)
}

fn natural(dt: &DataType, json: bool) -> FerryType {
    use DataType as D;
    match dt {
        D::Boolean => FerryType::Bool,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            FerryType::Int64
        }
        D::Float16 | D::Float32 | D::Float64 => FerryType::Float64,
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            decimal(*p, *s)
        }
        D::Utf8 | D::LargeUtf8 | D::Utf8View if json => FerryType::Json,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => FerryType::String,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => FerryType::Binary,
        D::Date32 | D::Date64 => FerryType::Date,
        D::Timestamp(_, _) => FerryType::Timestamp,
        D::Dictionary(_, v) => natural(v, json),
        D::Null | D::Time32(_) | D::Time64(_) | D::Duration(_) | D::Interval(_) => {
            FerryType::String
        }
        _ => FerryType::Json,
    }
}

/// The Ferry decimal holding every value of `decimal(p, s)`, as far as 38 digits allow;
/// a scale above 38 reads as text (no digit is ever rounded away).
fn decimal(p: u8, s: i8) -> FerryType {
    if s < 0 {
        let p = (p as i16 - s as i16).clamp(1, 38) as u8;
        return FerryType::Decimal {
            precision: p,
            scale: 0,
        };
    }
    if s > 38 {
        return FerryType::String;
    }
    let precision = p.clamp(s.max(1) as u8, 38);
    FerryType::Decimal {
        precision,
        scale: s,
    }
}

/// Top-level column indexes whose Parquet logical type is JSON.
fn json_columns(meta: &ArrowReaderMetadata) -> Vec<bool> {
    meta.parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .map(|t| {
            matches!(
                t.get_basic_info().logical_type_ref(),
                Some(LogicalType::Json)
            )
        })
        .collect()
}

fn load(input: &impl ChunkReader) -> Result<ArrowReaderMetadata> {
    guarded("its footer", || {
        ArrowReaderMetadata::load(input, Default::default()).map_err(|e| {
            Error::data(format!(
                "not a readable Parquet file (its footer is missing or damaged; is the file cut short?): {e}"
            ))
        })
    })
}

/// Runs `f`, turning a panic into a data error. The `parquet` crate panics on some
/// damaged files (found by fuzzing: definition levels that overrun their buffer) instead
/// of returning an error; a damaged input must never take the process down.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::data(format!(
            "the Parquet file is damaged: decoding {what} failed ({why})"
        )))
    })
}

/// The Ferry schema of a Parquet file, from its footer alone (no row is read): one column
/// per top-level field, each of the nearest Ferry type, nullability as the file says.
pub fn infer_parquet<C: ChunkReader + 'static>(input: &C) -> Result<SchemaRef> {
    infer_parquet_with(input, &InferOptions::default())
}

/// [`infer_parquet`] with per-column type overrides (`options.overrides`; the sample size
/// is not used: the footer says everything).
pub fn infer_parquet_with<C: ChunkReader + 'static>(
    input: &C,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let meta = load(input)?;
    let json = json_columns(&meta);
    let mut columns: Vec<(String, FerryType)> = meta
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                f.name().clone(),
                ferry_type_of(f, json.get(i).copied().unwrap_or(false)),
            )
        })
        .collect();
    let nullable: Vec<bool> = meta
        .schema()
        .fields()
        .iter()
        .map(|f| f.is_nullable())
        .collect();
    apply_overrides(&mut columns, &options.overrides, false)?;
    Ok(Arc::new(Schema::new(
        columns
            .into_iter()
            .enumerate()
            .map(|(i, (n, t))| t.field(n, nullable.get(i).copied().unwrap_or(true)))
            .collect::<Vec<_>>(),
    )))
}

// ----------------------------------------------------------------------------------------
// A type-erased ChunkReader, so the reader is not generic

trait DynChunk: Send + Sync {
    fn len(&self) -> u64;
    fn read_at(&self, start: u64) -> parquet::errors::Result<Box<dyn Read + Send>>;
    fn bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes>;
}

impl<C: ChunkReader> DynChunk for C
where
    C::T: Send + 'static,
{
    fn len(&self) -> u64 {
        Length::len(self)
    }
    fn read_at(&self, start: u64) -> parquet::errors::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.get_read(start)?))
    }
    fn bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.get_bytes(start, length)
    }
}

#[derive(Clone)]
struct Shared(Arc<dyn DynChunk>);

impl Length for Shared {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl ChunkReader for Shared {
    type T = Box<dyn Read + Send>;
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.0.read_at(start)
    }
    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.0.bytes(start, length)
    }
}

/// A [`ChunkReader`] over any `Read + Seek`, e.g. the plaintext of a local age file
/// ([`crate::age::DecryptingReader`] seeks when its input does): one reader behind a lock,
/// seeking before every request. Reads only the ranges Parquet asks for.
pub struct SeekChunks<R> {
    inner: Arc<Mutex<R>>,
    len: u64,
}

impl<R: Read + Seek + Send + 'static> SeekChunks<R> {
    /// Wraps `inner`; finds its length by seeking to its end.
    pub fn new(mut inner: R) -> Result<Self> {
        let len = inner
            .seek(SeekFrom::End(0))
            .map_err(|e| super::io_error(e, "cannot find the length of the input"))?;
        Ok(SeekChunks {
            inner: Arc::new(Mutex::new(inner)),
            len,
        })
    }
}

impl<R: Read + Seek + Send + 'static> Length for SeekChunks<R> {
    fn len(&self) -> u64 {
        self.len
    }
}

impl<R: Read + Seek + Send + 'static> ChunkReader for SeekChunks<R> {
    type T = SeekRead<R>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(SeekRead {
            inner: self.inner.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        // offsets and lengths come from the file's footer: check them before allocating
        if start
            .checked_add(length as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(ParquetError::EOF(format!(
                "the file's index asks for {length} bytes at offset {start}, past its end ({} bytes): it is damaged",
                self.len
            )));
        }
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0; length];
        r.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }
}

/// A reader from a position of a [`SeekChunks`].
pub struct SeekRead<R> {
    inner: Arc<Mutex<R>>,
    pos: u64,
}

impl<R: Read + Seek> Read for SeekRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.seek(SeekFrom::Start(self.pos))?;
        let n = r.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

// ----------------------------------------------------------------------------------------
// Reader

/// Reads a Parquet file into [`Message`]s of a given Ferry schema: batches of at most
/// `batch_size` rows (never spanning two row groups) and a [`Rejected`] for each row with
/// a value that cannot convert. Schema columns are matched to the file's top-level columns
/// by name; a column the file lacks is NULL, file columns the schema lacks are not read.
/// An iterator; the footer is read at the first call to `next`. An `Err` item (a damaged
/// file, an unreadable page) ends the iteration.
///
/// [`Message`]: ferry_core::source::Message
/// [`Rejected`]: ferry_core::source::Rejected
pub struct ParquetReader {
    input: Shared,
    schema: SchemaRef,
    out: Output,
    /// Set once the footer is read.
    plan: Option<Plan>,
    row_group: usize,
    /// The open row group's reader, and rows of it read so far.
    current: Option<(ParquetRecordBatchReader, usize)>,
}

/// What the footer told.
struct Plan {
    meta: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// Per schema column: its index in a projected batch and its natural Ferry type.
    sources: Vec<Option<(usize, FerryType)>>,
    /// Row count before each row group.
    offsets: Vec<u64>,
}

impl ParquetReader {
    /// A reader of `input` producing batches of `schema` (every column a Ferry type).
    pub fn new<C: ChunkReader + 'static>(input: C, schema: SchemaRef) -> Result<Self>
    where
        C::T: Send + 'static,
    {
        check_schema(&schema)?;
        Ok(ParquetReader {
            input: Shared(Arc::new(input)),
            schema,
            out: Output::new(None),
            plan: None,
            row_group: 0,
            current: None,
        })
    }

    /// Row groups in the file (`None` before the footer is read).
    pub fn row_groups(&self) -> Option<usize> {
        self.plan
            .as_ref()
            .map(|p| p.meta.metadata().num_row_groups())
    }

    fn start(&mut self) -> Result<()> {
        let meta = load(&self.input)?;
        let json = json_columns(&meta);
        let file_fields = meta.schema().fields().clone();
        let mut roots: Vec<usize> = Vec::new();
        let mut wanted: Vec<Option<usize>> = Vec::new();
        for f in self.schema.fields() {
            let found = file_fields.iter().position(|x| x.name() == f.name());
            if found.is_none() && !f.is_nullable() {
                let names: Vec<&str> = file_fields.iter().map(|x| x.name().as_str()).collect();
                return Err(Error::new(
                    ErrorKind::SchemaMismatch,
                    format!(
                        "the file has no column `{}`, which the stream requires (not nullable); its columns: {}",
                        f.name(),
                        names.join(", ")
                    ),
                ));
            }
            if let Some(i) = found {
                roots.push(i);
            }
            wanted.push(found);
        }
        roots.sort_unstable();
        roots.dedup();
        let sources = wanted
            .iter()
            .map(|w| {
                w.map(|i| {
                    let at = roots.iter().position(|r| *r == i).unwrap_or(0);
                    let ty = ferry_type_of(&file_fields[i], json.get(i).copied().unwrap_or(false));
                    (at, ty)
                })
            })
            .collect();
        let mut offsets = Vec::new();
        let mut total = 0u64;
        for rg in meta.metadata().row_groups() {
            offsets.push(total);
            total += rg.num_rows().max(0) as u64;
        }
        let mask = ProjectionMask::roots(meta.parquet_schema(), roots);
        self.plan = Some(Plan {
            meta,
            mask,
            sources,
            offsets,
        });
        Ok(())
    }

    /// Reads one batch (opening the next row group when needed); queues what it yields.
    fn read_batch(&mut self) -> Result<()> {
        if self.plan.is_none() {
            self.start()?;
        }
        let plan = self.plan.as_ref().expect("set above");
        if self.current.is_none() {
            if self.row_group >= plan.meta.metadata().num_row_groups() {
                self.out.done = true;
                return Ok(());
            }
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                self.input.clone(),
                plan.meta.clone(),
            )
            .with_row_groups(vec![self.row_group])
            .with_projection(plan.mask.clone())
            .with_batch_size(self.out.batch_size)
            .build()
            .map_err(|e| pq_error(e, &format!("cannot read row group {}", self.row_group)))?;
            self.current = Some((reader, 0));
        }
        let (reader, seen) = self.current.as_mut().expect("set above");
        match reader.next() {
            None => {
                self.current = None;
                self.row_group += 1;
                Ok(())
            }
            Some(Err(e)) => Err(pq_error(
                e,
                &format!(
                    "cannot read row group {} (the file is damaged?)",
                    self.row_group
                ),
            )),
            Some(Ok(batch)) => {
                let first = *seen;
                *seen += batch.num_rows();
                self.convert(batch, first)
            }
        }
    }

    /// Converts a batch read from the file to the Ferry schema; rows with a value that does
    /// not convert become rejections.
    fn convert(&mut self, batch: RecordBatch, first: usize) -> Result<()> {
        let plan = self.plan.as_ref().expect("started");
        let n = batch.num_rows();
        let mut failures: Vec<Option<(usize, String)>> = vec![None; n];
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (ci, (field, source)) in self.schema.fields().iter().zip(&plan.sources).enumerate() {
            let target = FerryType::of(field).expect("checked in new");
            let array = match source {
                None => arrow_array::new_null_array(&target.data_type(), n),
                Some((at, natural)) => {
                    let (array, bad) = to_ferry(batch.column(*at), *natural, target)?;
                    for (row, msg) in bad {
                        failures[row].get_or_insert_with(|| {
                            (ci, format!("column `{}`: {msg}", field.name()))
                        });
                    }
                    if !field.is_nullable() && array.null_count() > 0 {
                        for (row, failure) in failures.iter_mut().enumerate() {
                            if array.is_null(row) {
                                failure.get_or_insert_with(|| {
                                    (
                                        ci,
                                        format!(
                                            "column `{}`: NULL in a column that is not nullable",
                                            field.name()
                                        ),
                                    )
                                });
                            }
                        }
                    }
                    array
                }
            };
            columns.push(array);
        }
        let bad_rows = failures.iter().filter(|f| f.is_some()).count();
        if bad_rows > 0 {
            // drop the rejected rows before the batch is built: their NULLs may sit in
            // columns that are not nullable
            let keep: BooleanArray = failures.iter().map(|f| Some(f.is_none())).collect();
            columns = columns
                .iter()
                .map(|c| arrow_select::filter::filter(c.as_ref(), &keep))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::internal(format!("cannot drop rejected rows: {e}")))?;
        }
        let out = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::internal(format!("Parquet batch does not fit its schema: {e}")))?;
        // the good rows and the rejected ones go out in the order they were read (see
        // `Message::Rejected`): the rows before a rejected one in a batch of their own
        let group = self.row_group;
        let offset = plan.offsets.get(group).copied().unwrap_or(0);
        let mut done = 0; // rows of `out` sent
        let mut good = 0; // rows of `out` before the current row
        for (row, failure) in failures.into_iter().enumerate() {
            let Some((column, message)) = failure else {
                good += 1;
                continue;
            };
            if good > done {
                self.out.send(out.slice(done, good - done));
                done = good;
            }
            let in_group = first + row;
            let key = format!(
                "row group {group}, row {in_group} (row {} of the file, counting from 0)",
                offset + in_group as u64
            );
            self.out.reject(
                (None, Some(column as u64 + 1), Some(key)),
                raw_row(&batch, row),
                message,
            )?;
        }
        let out = out.slice(done, out.num_rows() - done);
        if out.num_rows() > 0 {
            self.out.send(out);
        }
        Ok(())
    }
}

/// One row of a batch as read, as a JSON object of display texts (for quarantine files).
fn raw_row(batch: &RecordBatch, row: usize) -> String {
    let options = FormatOptions::default().with_null("null");
    let mut obj = serde_json::Map::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let text = ArrayFormatter::try_new(c.as_ref(), &options)
            .map(|fmt| fmt.value(row).to_string())
            .unwrap_or_default();
        obj.insert(f.name().clone(), serde_json::Value::String(text));
    }
    serde_json::Value::Object(obj).to_string()
}

/// Converts `array` (natural Ferry type `natural`) to Ferry type `target`; returns the new
/// array (NULL where a value failed) and the failed rows with what went wrong.
fn to_ferry(
    array: &ArrayRef,
    natural: FerryType,
    target: FerryType,
) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let (array, mut bad) = normalize(array, natural)?;
    if natural == target || (is_text(natural) && is_text(target) && target != FerryType::Json) {
        return Ok((array, bad));
    }
    // an override of the column's type: through the canonical text, as CSV would parse it
    let mut builder = ColumnBuilder::new(target, array.len());
    let mut text = String::new();
    for row in 0..array.len() {
        text.clear();
        if !write_text(array.as_ref(), natural, row, &mut text) {
            builder.append_null();
            continue;
        }
        if let Err(msg) = builder.append_text(&text) {
            builder.append_null();
            bad.push((row, msg));
        }
    }
    Ok((builder.finish(), bad))
}

fn is_text(t: FerryType) -> bool {
    matches!(t, FerryType::String | FerryType::Json)
}

/// `array` as an array of Ferry type `natural`, with the rows whose value did not fit.
fn normalize(array: &ArrayRef, natural: FerryType) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let dt = natural.data_type();
    if array.data_type() == &dt {
        return Ok((array.clone(), Vec::new()));
    }
    if let DataType::Dictionary(_, value) = array.data_type() {
        let plain = arrow_cast::cast(array, value).map_err(|e| {
            Error::new(
                ErrorKind::Unsupported,
                format!("cannot read a dictionary column: {e}"),
            )
        })?;
        return normalize(&plain, natural);
    }
    if natural == FerryType::Json && !is_text_type(array.data_type()) {
        return Ok((nested_to_json(array)?, Vec::new()));
    }
    let options = arrow_cast::CastOptions {
        safe: true,
        format_options: FormatOptions::default(),
    };
    let cast = arrow_cast::cast_with_options(array, &dt, &options).map_err(|e| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "Parquet values of type {} cannot be read as {natural}: {e}",
                array.data_type()
            ),
        )
    })?;
    let mut bad = Vec::new();
    if cast.null_count() > array.null_count() {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).ok();
        for row in 0..array.len() {
            if array.is_valid(row) && cast.is_null(row) {
                let shown = formatter
                    .as_ref()
                    .map(|f| f.value(row).to_string())
                    .unwrap_or_default();
                bad.push((
                    row,
                    format!(
                        "the {} value {} does not fit Ferry's {natural}",
                        array.data_type(),
                        ferry_core::values::preview(&shown)
                    ),
                ));
            }
        }
    }
    Ok((cast, bad))
}

fn is_text_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Lists, structs, maps (anything nested) as one JSON document per value.
fn nested_to_json(array: &ArrayRef) -> Result<ArrayRef> {
    let field = Arc::new(Field::new("v", array.data_type().clone(), true));
    let options = arrow_json::writer::EncoderOptions::default();
    let mut encoder =
        arrow_json::writer::make_encoder(&field, array.as_ref(), &options).map_err(|e| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "Parquet values of type {} cannot be read as JSON: {e}",
                    array.data_type()
                ),
            )
        })?;
    let mut out: Vec<Option<String>> = Vec::with_capacity(array.len());
    let mut buf = Vec::new();
    for row in 0..array.len() {
        if array.is_null(row) {
            out.push(None);
            continue;
        }
        buf.clear();
        encoder.encode(row, &mut buf);
        out.push(Some(String::from_utf8_lossy(&buf).into_owned()));
    }
    Ok(Arc::new(StringArray::from(out)))
}

impl Steps for ParquetReader {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn step(&mut self) -> Result<()> {
        let what = format!("row group {}", self.row_group);
        guarded(&what, || self.read_batch())
    }

    fn ended(&mut self, e: Error) -> Error {
        self.current = None;
        e
    }
}

reader_api!("Rows", [] ParquetReader);

// ----------------------------------------------------------------------------------------
// Writer

/// Writes batches as a Parquet file: a row group is cut every `row_group_rows` rows, so
/// memory stays at one (encoded) row group; [`ParquetWriter::into_inner`] writes the
/// footer. The Ferry schema (with its keys and JSON tags) is kept in the file's Arrow
/// schema metadata, so Ferry reads back exactly the types it wrote.
pub struct ParquetWriter<W: Write + Send> {
    inner: ArrowWriter<W>,
    schema: SchemaRef,
    rows: u64,
}

impl<W: Write + Send> ParquetWriter<W> {
    /// A writer of batches of `schema` to `out`. The file's magic bytes are written at once.
    pub fn new(out: W, schema: SchemaRef, options: &ParquetOptions) -> Result<Self> {
        check_schema(&schema)?;
        let props = WriterProperties::builder()
            .set_compression(options.compression.codec())
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .build();
        let inner = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .map_err(|e| write_error(e, "cannot start the Parquet file"))?;
        Ok(ParquetWriter {
            inner,
            schema,
            rows: 0,
        })
    }

    /// Writes every row of `batch` (cutting row groups as they fill).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        check_width(batch, self.schema.fields().len(), "Parquet")?;
        // the writer checks types exactly; a batch whose fields differ only in metadata or
        // nullability is rebuilt on the writer's schema
        let batch = if batch.schema().as_ref() == self.schema.as_ref() {
            batch.clone()
        } else {
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()).map_err(|e| {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!("cannot write Parquet: {e}"),
                )
            })?
        };
        self.inner
            .write(&batch)
            .map_err(|e| write_error(e, "cannot write Parquet"))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Flushes the bytes of finished row groups to the inner writer. The open row group
    /// stays open: a Parquet file is only readable once [`Self::into_inner`] wrote its footer.
    pub fn flush(&mut self) -> Result<()> {
        self.inner
            .inner_mut()
            .flush()
            .map_err(|e| super::io_error(e, "cannot write Parquet"))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes handed to the inner writer so far (finished row groups; the footer at the end).
    pub fn bytes(&self) -> u64 {
        self.inner.bytes_written() as u64
    }

    /// Rows in the open row group (held in memory).
    pub fn buffered_rows(&self) -> usize {
        self.inner.in_progress_rows()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.inner.inner()
    }

    /// Writes the last row group and the footer; returns the inner writer, flushed.
    pub fn into_inner(self) -> Result<W> {
        let mut w = self
            .inner
            .into_inner()
            .map_err(|e| write_error(e, "cannot finish the Parquet file"))?;
        w.flush()
            .map_err(|e| super::io_error(e, "cannot write Parquet"))?;
        Ok(w)
    }
}

fn write_error(e: parquet::errors::ParquetError, what: &str) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            Error::new(ErrorKind::Io, format!("{what}: {inner}"))
        }
        other => Error::new(ErrorKind::Io, format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{Int32Array, ListArray, TimestampNanosecondArray, UInt64Array};
    use ferry_core::source::{Message, Rejected};
    use ferry_testkit::{all_types_batch, assert_says, rows};

    fn write(batches: &[RecordBatch], options: &ParquetOptions) -> Bytes {
        let mut w = ParquetWriter::new(Vec::new(), batches[0].schema(), options).unwrap();
        for b in batches {
            w.write_batch(b).unwrap();
        }
        Bytes::from(w.into_inner().unwrap())
    }

    fn read_all(data: Bytes, schema: SchemaRef, batch: usize) -> (Vec<RecordBatch>, Vec<Rejected>) {
        let (mut b, mut r) = (Vec::new(), Vec::new());
        for m in ParquetReader::new(data, schema)
            .unwrap()
            .with_file("t.parquet")
            .with_batch_size(batch)
        {
            match m.unwrap() {
                Message::Batch(x) => b.push(x),
                Message::Rejected(x) => r.push(x),
                _ => {}
            }
        }
        (b, r)
    }

    #[test]
    fn all_types_round_trip_with_every_codec() {
        let batch = all_types_batch();
        for compression in [
            ParquetCompression::None,
            ParquetCompression::Snappy,
            ParquetCompression::Gzip,
            ParquetCompression::Lz4,
            ParquetCompression::Zstd,
        ] {
            let data = write(
                std::slice::from_ref(&batch),
                &ParquetOptions {
                    compression,
                    row_group_rows: 2,
                },
            );
            let schema = infer_parquet(&data).unwrap();
            for (a, b) in schema.fields().iter().zip(batch.schema().fields()) {
                assert_eq!(
                    FerryType::of(a),
                    FerryType::of(b),
                    "{compression:?} {}",
                    a.name()
                );
            }
            let (got, rejected) = read_all(data, schema, 1000);
            assert!(rejected.is_empty());
            assert!(
                got.iter().all(|b| b.num_rows() <= 2),
                "batches stay inside row groups"
            );
            assert_eq!(rows(&got), rows(std::slice::from_ref(&batch)));
        }
    }

    #[test]
    fn foreign_types_map_to_ferry_types_and_bad_values_are_rejected() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![]),
        ]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("u", DataType::UInt64, true),
            Field::new(
                "t",
                DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("+02:00".into())),
                true,
            ),
            Field::new("l", list.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])),
                Arc::new(UInt64Array::from(vec![1, u64::MAX, 3])),
                Arc::new(
                    TimestampNanosecondArray::from(vec![1_500, 0, 2_000_000])
                        .with_timezone("+02:00"),
                ),
                Arc::new(list),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let data = Bytes::from(buf);
        let ferry = infer_parquet(&data).unwrap();
        let types: Vec<String> = ferry
            .fields()
            .iter()
            .map(|f| FerryType::of(f).unwrap().to_string())
            .collect();
        assert_eq!(types, ["int64", "int64", "timestamp", "json"]);
        let (got, rejected) = read_all(data, ferry, 10);
        assert_eq!(rejected.len(), 1);
        let r = &rejected[0];
        assert!(
            r.message.contains("column `u`") && r.message.contains("18446744073709551615"),
            "{}",
            r.message
        );
        assert_eq!(r.position.file.as_deref(), Some("t.parquet"));
        assert!(
            r.position
                .key
                .as_deref()
                .unwrap()
                .starts_with("row group 0, row 1"),
            "{:?}",
            r.position
        );
        let rows = rows(&got);
        assert_eq!(rows.len(), 2);
        let json: Vec<String> = rows.iter().map(|r| r["l"].to_string()).collect();
        assert!(
            json.contains(&"[1,2]".to_string()) && json.contains(&"[]".to_string()),
            "{json:?}"
        );
        let ts: Vec<String> = rows
            .iter()
            .map(|r| r["t"].as_str().unwrap().to_string())
            .collect();
        assert!(
            ts.contains(&"1970-01-01T00:00:00.000001Z".to_string()),
            "{ts:?}"
        );
    }

    #[test]
    fn columns_are_matched_by_name_and_nullability_is_kept() {
        let file_schema = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
                Arc::new(arrow_array::Int64Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, file_schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let data = Bytes::from(buf);
        // schema order differs from the file's; `extra` is not in the file (NULL); `id`
        // is required, so its NULL row is rejected rather than failing the read
        let target = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("extra", true),
            FerryType::String.field("b", true),
        ]));
        let (got, rejected) = read_all(data.clone(), target, 10);
        assert_eq!(rejected.len(), 1);
        assert_says(&rejected[0], "not nullable");
        let rows = rows(&got);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["b"], serde_json::json!("x"));
        assert_eq!(rows[1]["extra"], serde_json::Value::Null);
        // a required column the file lacks is an error naming it
        let target = Arc::new(Schema::new(vec![FerryType::Int64.field("nope", false)]));
        let err = ParquetReader::new(data, target)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("no column `nope`"), "{err}");
    }

    #[test]
    fn damaged_footer_is_a_clear_error() {
        let data = write(&[all_types_batch()], &ParquetOptions::default());
        let cut = data.slice(..data.len() - 10);
        let err = infer_parquet(&cut).unwrap_err();
        assert!(err.to_string().contains("footer"), "{err}");
        let mut reader = ParquetReader::new(cut, all_types_batch().schema())
            .unwrap()
            .with_file("x.parquet");
        let err = reader.next().unwrap().unwrap_err();
        assert!(
            err.to_string().contains("footer") && format!("{err:?}").contains("x.parquet"),
            "{err:?}"
        );
        assert!(reader.next().is_none());
    }
}
