//! Digests that prove what was delivered: SHA-256 of files, and an order-independent
//! digest of table rows.
//!
//! The row digest lets a receipt say "these exact rows" about a table, where rows have no
//! order. Each row is encoded as bytes, the encoding is hashed with SHA-256, and the row
//! hashes, read as 256-bit big-endian unsigned integers, are added modulo 2^256. Addition is
//! commutative, so any order gives the same sum, and a duplicated row changes it (unlike XOR).
//!
//! Two row encodings exist; the digest's prefix names the one used:
//!
//! - `rows2-sha256-sum:` (written since receipt format v2): a binary encoding defined on
//!   Ferry's nine logical types, not on Arrow's physical types, so the same rows read back
//!   from any destination give the same digest (an `Int32` column hashes like `Int64`, a
//!   millisecond timestamp like a microsecond one, `LargeUtf8` like `Utf8`, `decimal(18,2)`
//!   `1.50` like `decimal(38,9)` `1.500000000`). For every column in schema order, a NULL is
//!   the byte `0x00`; any other value is a type tag and its bytes:
//!
//!   | tag | logical type | bytes after the tag |
//!   |-----|--------------|---------------------|
//!   | `0x01` | bool | `0x00` false, `0x01` true |
//!   | `0x02` | int64 (any Arrow integer) | the value, 8 bytes, big-endian two's complement |
//!   | `0x03` | float64 (any Arrow float) | IEEE 754 bits, 8 bytes big-endian; `-0.0` as `0.0`, every NaN as `0x7FF8000000000000` |
//!   | `0x04` | decimal | the scale (1 byte, two's complement) and the unscaled value (16 bytes, big-endian two's complement), with trailing zeros removed: while the scale is positive and the unscaled value divisible by 10, both go down (`1.50` → 15, scale 1; zero → 0, scale 0) |
//!   | `0x05` | string and json (text) | the UTF-8 length as unsigned LEB128, then the bytes |
//!   | `0x06` | binary | the length as unsigned LEB128, then the bytes |
//!   | `0x07` | date | days since 1970-01-01, 4 bytes big-endian two's complement |
//!   | `0x08` | timestamp | microseconds since 1970-01-01T00:00:00Z, 8 bytes big-endian two's complement |
//!   | `0x09` | anything else | Arrow's display text, length as unsigned LEB128, then the bytes |
//!
//!   String and json share a tag because many destinations keep JSON as plain text.
//!
//! - `rows-sha256-sum:` (receipt format v1): each value's canonical text
//!   ([`ferry_core::values::write_text`]) followed by the byte 0x1F, NULL as 0x00 then 0x1F. It
//!   formats every value as text, which cost several times more; it is kept so that v1
//!   receipts still verify ([`RowDigest::for_digest`]).

use std::io::Read;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};
use ring::digest::{Context, SHA256};

use ferry_core::types::FerryType;
use ferry_core::values::write_text;
use ferry_core::{Error, Result};

/// Prefix of a file digest in receipts.
pub const FILE_PREFIX: &str = "sha256:";
/// Prefix of a row digest with the binary encoding (receipt format v2).
pub const ROWS_PREFIX: &str = "rows2-sha256-sum:";
/// Prefix of a row digest with the text encoding (receipt format v1).
pub const ROWS_TEXT_PREFIX: &str = "rows-sha256-sum:";

/// How rows are encoded before hashing (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowEncoding {
    /// Type-tagged binary values (`rows2-sha256-sum:`), the default.
    #[default]
    Binary,
    /// Canonical text of each value (`rows-sha256-sum:`), for v1 receipts.
    Text,
}

impl RowEncoding {
    /// The prefix of digests in this encoding.
    pub fn prefix(self) -> &'static str {
        match self {
            RowEncoding::Binary => ROWS_PREFIX,
            RowEncoding::Text => ROWS_TEXT_PREFIX,
        }
    }
}

/// An order-independent digest of rows.
///
/// ```
/// use std::sync::Arc;
/// use ferry_core::{arrow_array::{Int64Array, RecordBatch}, arrow_schema::Schema, FerryType};
/// use ferry_formats::digest::RowDigest;
///
/// let schema = Arc::new(Schema::new(vec![FerryType::Int64.field("id", false)]));
/// let batch = |ids: Vec<i64>| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids))]).unwrap();
/// let (mut a, mut b) = (RowDigest::new(), RowDigest::new());
/// a.add_batch(&batch(vec![1, 2, 3]));
/// b.add_batch(&batch(vec![3, 1]));
/// b.add_batch(&batch(vec![2]));
/// assert_eq!(a, b); // same rows, any order
/// ```
#[derive(Debug, Clone, Default)]
pub struct RowDigest {
    /// The sum, as four 64-bit limbs, most significant first.
    sum: [u64; 4],
    rows: u64,
    encoding: RowEncoding,
    /// The current chunk's row encodings (reused).
    buf: Vec<u8>,
    /// Where each row of the chunk starts, then ends, in `buf` (reused).
    pos: Vec<usize>,
}

impl PartialEq for RowDigest {
    fn eq(&self, other: &Self) -> bool {
        self.sum == other.sum && self.rows == other.rows && self.encoding == other.encoding
    }
}
impl Eq for RowDigest {}

impl RowDigest {
    /// A digest of no rows, binary encoding.
    pub fn new() -> Self {
        RowDigest::default()
    }

    /// A digest of no rows in `encoding`.
    pub fn with_encoding(encoding: RowEncoding) -> Self {
        RowDigest {
            encoding,
            ..RowDigest::default()
        }
    }

    /// An empty digest in the encoding a receipt's digest string names (`None`: not a row
    /// digest, or an encoding this build does not know).
    pub fn for_digest(digest: &str) -> Option<Self> {
        [RowEncoding::Binary, RowEncoding::Text]
            .into_iter()
            .find(|e| digest.starts_with(e.prefix()))
            .map(Self::with_encoding)
    }

    /// The encoding.
    pub fn encoding(&self) -> RowEncoding {
        self.encoding
    }

    /// Adds every row of `batch`.
    pub fn add_batch(&mut self, batch: &RecordBatch) {
        match self.encoding {
            RowEncoding::Binary => self.add_binary(batch),
            RowEncoding::Text => self.add_text(batch),
        }
    }

    fn add_binary(&mut self, batch: &RecordBatch) {
        let owned: Vec<ArrayRef> = batch.columns().iter().map(canonical).collect();
        let cols: Vec<(Col<'_>, Option<&NullBuffer>)> = owned
            .iter()
            .map(|a| (Col::of(a.as_ref()), a.nulls()))
            .collect();
        let mut buf = std::mem::take(&mut self.buf);
        let mut pos = std::mem::take(&mut self.pos);
        let mut texts = Vec::new();
        let n = batch.num_rows();
        // a chunk of rows at a time, encoded column by column (one tight loop per column
        // instead of a dispatch per value); a chunk's encodings stay in the CPU's cache
        for start in (0..n).step_by(CHUNK_ROWS) {
            let m = CHUNK_ROWS.min(n - start);
            pos.clear();
            pos.resize(m, 0);
            for (col, nulls) in &cols {
                col.add_lengths(start, *nulls, &mut pos, &mut texts);
            }
            // lengths → where each row's encoding starts
            let mut total = 0;
            for p in pos.iter_mut() {
                let len = *p;
                *p = total;
                total += len;
            }
            buf.clear();
            buf.resize(total, 0);
            let mut formatted = texts.iter();
            for (col, nulls) in &cols {
                col.write(start, *nulls, &mut pos, &mut buf, &mut formatted);
            }
            // each position now is where its row's encoding ends
            let mut begin = 0;
            for &end in &pos {
                self.add_row_hash(&buf[begin..end]);
                begin = end;
            }
            texts.clear();
        }
        self.buf = buf;
        self.pos = pos;
    }

    fn add_text(&mut self, batch: &RecordBatch) {
        let types = FerryType::of_each(&batch.schema(), FerryType::String);
        let mut text = String::new();
        for r in 0..batch.num_rows() {
            text.clear();
            for (c, ty) in types.iter().enumerate() {
                if !write_text(batch.column(c).as_ref(), *ty, r, &mut text) {
                    text.push('\0');
                }
                text.push('\u{1f}');
            }
            self.add_row_hash(text.as_bytes());
        }
    }

    fn add_row_hash(&mut self, encoded: &[u8]) {
        let d = ring::digest::digest(&SHA256, encoded);
        let d = d.as_ref();
        let mut carry = false;
        for i in (0..4).rev() {
            let limb = u64::from_be_bytes(d[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let (s1, c1) = self.sum[i].overflowing_add(limb);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            self.sum[i] = s2;
            carry = c1 || c2;
        }
        self.rows += 1;
    }

    /// Adds the rows of `other` (same encoding), as if they had been added to `self`: a
    /// digest can be computed in parts, on several threads, and summed.
    pub fn merge(&mut self, other: &RowDigest) {
        debug_assert_eq!(self.encoding, other.encoding);
        let mut carry = false;
        for i in (0..4).rev() {
            let (s1, c1) = self.sum[i].overflowing_add(other.sum[i]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            self.sum[i] = s2;
            carry = c1 || c2;
        }
        self.rows += other.rows;
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// `rows2-sha256-sum:<64 hex>` (or `rows-sha256-sum:` for the text encoding).
    pub fn to_receipt_string(&self) -> String {
        let mut bytes = [0u8; 32];
        for (i, limb) in self.sum.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&limb.to_be_bytes());
        }
        format!("{}{}", self.encoding.prefix(), hex(&bytes))
    }
}

/// A [`RowDigest`] computed on background threads, so hashing overlaps the rest of the
/// pipeline (the runtime's receipt digest costs more per row than most transforms).
///
/// Batches wait in a bounded queue (`capacity` batches, then [`BackgroundDigest::add`]
/// waits: memory stays bounded); each of the `workers` threads sums its own digest, and
/// [`BackgroundDigest::finish`] adds them up, which the sum's order independence allows.
/// Dropping it unfinished stops the workers after their current batch.
pub struct BackgroundDigest {
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
    workers: Vec<tokio::task::JoinHandle<RowDigest>>,
}

impl BackgroundDigest {
    /// Starts `workers` threads (at least one) behind a queue of `capacity` batches.
    pub fn start(workers: usize, capacity: usize) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel::<RecordBatch>(capacity.max(1));
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let workers = (0..workers.max(1))
            .map(|_| {
                let rx = rx.clone();
                tokio::task::spawn_blocking(move || {
                    let mut digest = RowDigest::new();
                    loop {
                        // the lock is held while waiting, so one thread waits and the
                        // others hash
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                        let Some(batch) = next else { break };
                        digest.add_batch(&batch);
                    }
                    digest
                })
            })
            .collect();
        BackgroundDigest { tx, workers }
    }

    /// Queues `batch`; waits while the queue is full.
    pub async fn add(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.tx
            .send(batch)
            .await
            .map_err(|_| Error::internal("the row digest stopped"))
    }

    /// Waits for the queued batches and returns the digest of every batch added.
    pub async fn finish(self) -> Result<RowDigest> {
        drop(self.tx);
        let mut total = RowDigest::new();
        for w in self.workers {
            let part = w
                .await
                .map_err(|e| Error::internal(format!("the row digest failed: {e}")))?;
            total.merge(&part);
        }
        Ok(total)
    }
}

/// `array` with its logical type's canonical Arrow type (Int64, Float64, Decimal128, Utf8
/// or LargeUtf8, Binary or LargeBinary, Date32, Timestamp(µs), Boolean, Null), or as it is
/// when it has none (then hashed as display text).
fn canonical(array: &ArrayRef) -> ArrayRef {
    use DataType as D;
    let to = match array.data_type() {
        D::Boolean
        | D::Int64
        | D::Float64
        | D::Decimal128(..)
        | D::Utf8
        | D::LargeUtf8
        | D::Binary
        | D::LargeBinary
        | D::Date32
        | D::Null
        | D::Timestamp(TimeUnit::Microsecond, _) => return array.clone(),
        D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => D::Int64,
        D::Float16 | D::Float32 => D::Float64,
        D::Decimal32(p, s) | D::Decimal64(p, s) => D::Decimal128(*p, *s),
        D::Decimal256(_, s) => D::Decimal128(38, *s),
        D::Utf8View => D::Utf8,
        D::BinaryView | D::FixedSizeBinary(_) => D::Binary,
        D::Date64 => D::Date32,
        D::Timestamp(_, tz) => D::Timestamp(TimeUnit::Microsecond, tz.clone()),
        D::Dictionary(_, value) => {
            return match arrow_cast::cast(array, value) {
                Ok(a) => canonical(&a),
                Err(_) => array.clone(),
            }
        }
        _ => return array.clone(),
    };
    // refuse lossy casts (an out-of-range UInt64, a Decimal256 beyond 38 digits): such a
    // column is hashed as display text instead
    let opts = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(array, &to, &opts).unwrap_or_else(|_| array.clone())
}

/// Rows encoded together before they are hashed.
const CHUNK_ROWS: usize = 1024;

/// The offsets of a string or binary column.
#[derive(Clone, Copy)]
enum Offsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

impl Offsets<'_> {
    /// The byte range of row `r` in the values.
    #[inline]
    fn range(&self, r: usize) -> std::ops::Range<usize> {
        match self {
            Offsets::Small(o) => o[r] as usize..o[r + 1] as usize,
            Offsets::Large(o) => o[r] as usize..o[r + 1] as usize,
        }
    }
}

/// A column, viewed for encoding.
enum Col<'a> {
    Null,
    Bool(&'a BooleanArray),
    /// Int64 (tag 0x02) and timestamps (0x08): 8 bytes big-endian.
    Word(u8, &'a [i64]),
    Float(&'a [f64]),
    Decimal(&'a [i128], i8),
    /// Text (tag 0x05) and binary (0x06): offsets and values.
    Bytes(u8, Offsets<'a>, &'a [u8]),
    Date(&'a [i32]),
    Other(arrow_cast::display::ArrayFormatter<'a>),
}

impl<'a> Col<'a> {
    fn of(a: &'a dyn Array) -> Col<'a> {
        use DataType as D;
        match a.data_type() {
            D::Null => Col::Null,
            D::Boolean => Col::Bool(a.as_boolean()),
            D::Int64 => Col::Word(0x02, a.as_primitive::<Int64Type>().values()),
            D::Float64 => Col::Float(a.as_primitive::<Float64Type>().values()),
            D::Decimal128(_, s) => Col::Decimal(a.as_primitive::<Decimal128Type>().values(), *s),
            D::Utf8 => {
                let s = a.as_string::<i32>();
                Col::Bytes(0x05, Offsets::Small(s.value_offsets()), s.values())
            }
            D::LargeUtf8 => {
                let s = a.as_string::<i64>();
                Col::Bytes(0x05, Offsets::Large(s.value_offsets()), s.values())
            }
            D::Binary => {
                let b = a.as_binary::<i32>();
                Col::Bytes(0x06, Offsets::Small(b.value_offsets()), b.values())
            }
            D::LargeBinary => {
                let b = a.as_binary::<i64>();
                Col::Bytes(0x06, Offsets::Large(b.value_offsets()), b.values())
            }
            D::Date32 => Col::Date(a.as_primitive::<Date32Type>().values()),
            D::Timestamp(TimeUnit::Microsecond, _) => {
                Col::Word(0x08, a.as_primitive::<TimestampMicrosecondType>().values())
            }
            _ => match arrow_cast::display::ArrayFormatter::try_new(a, &Default::default()) {
                Ok(f) => Col::Other(f),
                Err(_) => Col::Null,
            },
        }
    }

    /// Adds the encoded length of each row `start + i` to `lens[i]`; the display text of
    /// `Other` values is made here, once, and kept in `texts` for [`Col::write`].
    fn add_lengths(
        &self,
        start: usize,
        nulls: Option<&NullBuffer>,
        lens: &mut [usize],
        texts: &mut Vec<String>,
    ) {
        let width = match self {
            Col::Null => 1,
            Col::Bool(_) => 2,
            Col::Word(..) | Col::Float(_) => 9,
            Col::Decimal(..) => 18,
            Col::Date(_) => 5,
            Col::Bytes(_, offsets, _) => {
                for (i, len) in lens.iter_mut().enumerate() {
                    let r = start + i;
                    *len += if nulls.is_some_and(|n| n.is_null(r)) {
                        1
                    } else {
                        let b = offsets.range(r).len();
                        1 + leb128_len(b) + b
                    };
                }
                return;
            }
            Col::Other(f) => {
                for (i, len) in lens.iter_mut().enumerate() {
                    let r = start + i;
                    *len += if nulls.is_some_and(|n| n.is_null(r)) {
                        1
                    } else {
                        let s = f.value(r).to_string();
                        let b = s.len();
                        texts.push(s);
                        1 + leb128_len(b) + b
                    };
                }
                return;
            }
        };
        match nulls {
            Some(n) if n.null_count() > 0 => {
                for (i, len) in lens.iter_mut().enumerate() {
                    *len += if n.is_null(start + i) { 1 } else { width };
                }
            }
            _ => lens.iter_mut().for_each(|len| *len += width),
        }
    }

    /// Writes the value of each row `start + i` at `pos[i]` in `buf` (a NULL as `0x00`, else
    /// its tag and bytes) and moves `pos[i]` past it.
    fn write(
        &self,
        start: usize,
        nulls: Option<&NullBuffer>,
        pos: &mut [usize],
        buf: &mut [u8],
        texts: &mut std::slice::Iter<'_, String>,
    ) {
        let nulls = nulls.filter(|n| n.null_count() > 0);
        match self {
            Col::Null => each(start, nulls, pos, buf, |_, buf, p| {
                buf[p] = 0;
                p + 1
            }),
            Col::Bool(a) => each(start, nulls, pos, buf, |r, buf, p| {
                buf[p] = 0x01;
                buf[p + 1] = a.value(r) as u8;
                p + 2
            }),
            Col::Word(tag, v) => each(start, nulls, pos, buf, |r, buf, p| {
                buf[p] = *tag;
                buf[p + 1..p + 9].copy_from_slice(&v[r].to_be_bytes());
                p + 9
            }),
            Col::Float(v) => each(start, nulls, pos, buf, |r, buf, p| {
                let x = v[r];
                let bits = if x.is_nan() {
                    0x7FF8_0000_0000_0000
                } else if x == 0.0 {
                    0
                } else {
                    x.to_bits()
                };
                buf[p] = 0x03;
                buf[p + 1..p + 9].copy_from_slice(&bits.to_be_bytes());
                p + 9
            }),
            Col::Decimal(v, scale) => each(start, nulls, pos, buf, |r, buf, p| {
                let (unscaled, scale) = normalize_decimal(v[r], *scale);
                buf[p] = 0x04;
                buf[p + 1] = scale as u8;
                buf[p + 2..p + 18].copy_from_slice(&unscaled.to_be_bytes());
                p + 18
            }),
            Col::Date(v) => each(start, nulls, pos, buf, |r, buf, p| {
                buf[p] = 0x07;
                buf[p + 1..p + 5].copy_from_slice(&v[r].to_be_bytes());
                p + 5
            }),
            Col::Bytes(tag, offsets, values) => each(start, nulls, pos, buf, |r, buf, p| {
                put_bytes(*tag, &values[offsets.range(r)], buf, p)
            }),
            Col::Other(_) => each(start, nulls, pos, buf, |_, buf, p| {
                let s = texts
                    .next()
                    .expect("one text per value, made by add_lengths");
                put_bytes(0x09, s.as_bytes(), buf, p)
            }),
        }
    }
}

/// Calls `put(row, buf, at)` (which returns where the value ends) for each non-NULL row
/// `start + i` at `pos[i]`, writes `0x00` for a NULL, and moves `pos[i]` past the value.
#[inline(always)]
fn each(
    start: usize,
    nulls: Option<&NullBuffer>,
    pos: &mut [usize],
    buf: &mut [u8],
    mut put: impl FnMut(usize, &mut [u8], usize) -> usize,
) {
    match nulls {
        None => {
            for (i, p) in pos.iter_mut().enumerate() {
                *p = put(start + i, buf, *p);
            }
        }
        Some(n) => {
            for (i, p) in pos.iter_mut().enumerate() {
                let r = start + i;
                if n.is_null(r) {
                    buf[*p] = 0;
                    *p += 1;
                } else {
                    *p = put(r, buf, *p);
                }
            }
        }
    }
}

/// Bytes an unsigned LEB128 encoding of `n` takes.
#[inline]
fn leb128_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Writes tag, LEB128 length and bytes at `p`; returns where they end.
#[inline]
fn put_bytes(tag: u8, b: &[u8], buf: &mut [u8], mut p: usize) -> usize {
    buf[p] = tag;
    p += 1;
    let mut n = b.len() as u64;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[p] = low;
            p += 1;
            break;
        }
        buf[p] = low | 0x80;
        p += 1;
    }
    buf[p..p + b.len()].copy_from_slice(b);
    p + b.len()
}

/// Removes trailing zeros while the scale is positive (`150`, scale 2 → `15`, scale 1).
#[inline]
fn normalize_decimal(v: i128, scale: i8) -> (i128, i8) {
    if v == 0 {
        return (0, 0);
    }
    let mut s = scale;
    // most values fit 64 bits, where division is several times cheaper
    if let Ok(mut w) = i64::try_from(v) {
        while s > 0 && w % 10 == 0 {
            w /= 10;
            s -= 1;
        }
        return (w as i128, s);
    }
    let mut w = v;
    while s > 0 && w % 10 == 0 {
        w /= 10;
        s -= 1;
    }
    (w, s)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// `sha256:<64 hex>` of a file's bytes, read in constant memory.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::io(e, "cannot read output file", path))?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io(e, "cannot read output file", path))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(format!("{FILE_PREFIX}{}", hex(ctx.finish().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Date64Array, Decimal128Array, Float32Array, Float64Array, Int32Array, Int64Array,
        LargeStringArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    };
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![FerryType::Int64.field("id", false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
    }

    fn digest_of(cols: Vec<ArrayRef>) -> String {
        let fields: Vec<Field> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        let mut d = RowDigest::new();
        d.add_batch(&b);
        d.to_receipt_string()
    }

    #[test]
    fn order_independent_but_counts_duplicates() {
        for enc in [RowEncoding::Binary, RowEncoding::Text] {
            let mut a = RowDigest::with_encoding(enc);
            a.add_batch(&batch(&[1, 2, 3]));
            let mut b = RowDigest::with_encoding(enc);
            b.add_batch(&batch(&[3]));
            b.add_batch(&batch(&[2, 1]));
            assert_eq!(a, b);
            assert_eq!(a.to_receipt_string(), b.to_receipt_string());
            let mut c = RowDigest::with_encoding(enc);
            c.add_batch(&batch(&[1, 2, 3, 3]));
            assert_ne!(a.to_receipt_string(), c.to_receipt_string());
            assert!(a.to_receipt_string().starts_with(enc.prefix()));
        }
        assert_ne!(
            RowDigest::new().to_receipt_string(),
            RowDigest::with_encoding(RowEncoding::Text).to_receipt_string()
        );
    }

    #[test]
    fn known_value_of_one_row() {
        // one row (7, "ab", NULL): 02 00..07 | 05 02 'a' 'b' | 00, hashed with SHA-256
        let d = digest_of(vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(StringArray::from(vec!["ab"])),
            Arc::new(Float64Array::from(vec![None])),
        ]);
        let mut enc = vec![0x02, 0, 0, 0, 0, 0, 0, 0, 7, 0x05, 2, b'a', b'b', 0x00];
        let want = hex(ring::digest::digest(&SHA256, &enc).as_ref());
        assert_eq!(d, format!("{ROWS_PREFIX}{want}"));
        enc[8] = 8;
        assert_ne!(
            d,
            format!(
                "{ROWS_PREFIX}{}",
                hex(ring::digest::digest(&SHA256, &enc).as_ref())
            )
        );
    }

    #[test]
    fn physical_types_of_one_logical_type_hash_alike() {
        let ints = digest_of(vec![Arc::new(Int64Array::from(vec![
            Some(1),
            None,
            Some(-5),
        ]))]);
        let int32 = digest_of(vec![Arc::new(Int32Array::from(vec![
            Some(1),
            None,
            Some(-5),
        ]))]);
        assert_eq!(ints, int32);
        let f64s = digest_of(vec![Arc::new(Float64Array::from(vec![1.5, -0.0]))]);
        let f32s = digest_of(vec![Arc::new(Float32Array::from(vec![1.5, 0.0]))]);
        assert_eq!(f64s, f32s);
        let text = digest_of(vec![Arc::new(StringArray::from(vec!["x", "ü"]))]);
        let large = digest_of(vec![Arc::new(LargeStringArray::from(vec!["x", "ü"]))]);
        assert_eq!(text, large);
        let micros = digest_of(vec![Arc::new(
            TimestampMicrosecondArray::from(vec![1_700_000_000_123_000]).with_timezone("UTC"),
        )]);
        let millis = digest_of(vec![Arc::new(
            TimestampMillisecondArray::from(vec![1_700_000_000_123]).with_timezone("+02:00"),
        )]);
        assert_eq!(micros, millis);
        let dates32 = digest_of(vec![Arc::new(arrow_array::Date32Array::from(vec![19_000]))]);
        let dates64 = digest_of(vec![Arc::new(Date64Array::from(vec![19_000 * 86_400_000]))]);
        assert_eq!(dates32, dates64);
        let d2 = digest_of(vec![Arc::new(
            Decimal128Array::from(vec![150, 0, -12_345])
                .with_precision_and_scale(18, 2)
                .unwrap(),
        )]);
        let d9 = digest_of(vec![Arc::new(
            Decimal128Array::from(vec![1_500_000_000, 0, -123_450_000_000])
                .with_precision_and_scale(38, 9)
                .unwrap(),
        )]);
        assert_eq!(d2, d9);
        // but different logical types, or values, differ
        assert_ne!(
            ints,
            digest_of(vec![Arc::new(StringArray::from(vec![
                Some("1"),
                None,
                Some("-5")
            ]))])
        );
        assert_ne!(
            d2,
            digest_of(vec![Arc::new(
                Decimal128Array::from(vec![151, 0, -12_345])
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            )])
        );
        assert_ne!(
            micros,
            digest_of(vec![Arc::new(
                TimestampMicrosecondArray::from(vec![1_700_000_000_123_001]).with_timezone("UTC"),
            )])
        );
    }

    #[test]
    fn values_cannot_run_into_each_other() {
        // ("ab", "c") and ("a", "bc") encode differently thanks to the length prefix
        let a = digest_of(vec![
            Arc::new(StringArray::from(vec!["ab"])),
            Arc::new(StringArray::from(vec!["c"])),
        ]);
        let b = digest_of(vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["bc"])),
        ]);
        assert_ne!(a, b);
        // NULL differs from the empty string
        let null = digest_of(vec![Arc::new(StringArray::from(vec![None::<&str>]))]);
        let empty = digest_of(vec![Arc::new(StringArray::from(vec![""]))]);
        assert_ne!(null, empty);
    }

    #[test]
    fn long_values_use_multi_byte_lengths() {
        let mut buf = vec![0; 303];
        assert_eq!(put_bytes(0x05, &[b'x'; 300], &mut buf, 0), 303);
        assert_eq!(&buf[..3], &[0x05, 0xAC, 0x02]); // 300 = 0b10_0101100
        for (n, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)] {
            assert_eq!(leb128_len(n), len, "{n}");
        }
    }

    #[test]
    fn picks_the_encoding_a_digest_names() {
        assert_eq!(
            RowDigest::for_digest("rows-sha256-sum:00")
                .unwrap()
                .encoding(),
            RowEncoding::Text
        );
        assert_eq!(
            RowDigest::for_digest("rows2-sha256-sum:00")
                .unwrap()
                .encoding(),
            RowEncoding::Binary
        );
        assert!(RowDigest::for_digest("sha256:00").is_none());
    }

    /// The row encoding as first written, one value at a time: the reference the chunked
    /// encoder must match byte for byte.
    fn reference_digest(batch: &RecordBatch) -> String {
        let owned: Vec<ArrayRef> = batch.columns().iter().map(canonical).collect();
        let mut d = RowDigest::new();
        for r in 0..batch.num_rows() {
            let mut buf = Vec::new();
            for a in &owned {
                if a.nulls().is_some_and(|n| n.is_null(r)) {
                    buf.push(0);
                    continue;
                }
                let text = |tag: u8, b: &[u8], buf: &mut Vec<u8>| {
                    buf.push(tag);
                    let mut n = b.len() as u64;
                    loop {
                        let low = (n & 0x7f) as u8;
                        n >>= 7;
                        if n == 0 {
                            buf.push(low);
                            break;
                        }
                        buf.push(low | 0x80);
                    }
                    buf.extend_from_slice(b);
                };
                match a.data_type() {
                    DataType::Null => buf.push(0),
                    DataType::Boolean => buf.extend_from_slice(&[1, a.as_boolean().value(r) as u8]),
                    DataType::Int64 => {
                        buf.push(2);
                        buf.extend_from_slice(
                            &a.as_primitive::<Int64Type>().value(r).to_be_bytes(),
                        );
                    }
                    DataType::Float64 => {
                        let x = a.as_primitive::<Float64Type>().value(r);
                        let bits = if x.is_nan() {
                            0x7FF8_0000_0000_0000
                        } else if x == 0.0 {
                            0
                        } else {
                            x.to_bits()
                        };
                        buf.push(3);
                        buf.extend_from_slice(&bits.to_be_bytes());
                    }
                    DataType::Decimal128(_, s) => {
                        let (u, s) =
                            normalize_decimal(a.as_primitive::<Decimal128Type>().value(r), *s);
                        buf.extend_from_slice(&[4, s as u8]);
                        buf.extend_from_slice(&u.to_be_bytes());
                    }
                    DataType::Utf8 => text(5, a.as_string::<i32>().value(r).as_bytes(), &mut buf),
                    DataType::LargeUtf8 => {
                        text(5, a.as_string::<i64>().value(r).as_bytes(), &mut buf)
                    }
                    DataType::Binary => text(6, a.as_binary::<i32>().value(r), &mut buf),
                    DataType::LargeBinary => text(6, a.as_binary::<i64>().value(r), &mut buf),
                    DataType::Date32 => {
                        buf.push(7);
                        buf.extend_from_slice(
                            &a.as_primitive::<Date32Type>().value(r).to_be_bytes(),
                        );
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        buf.push(8);
                        buf.extend_from_slice(
                            &a.as_primitive::<TimestampMicrosecondType>()
                                .value(r)
                                .to_be_bytes(),
                        );
                    }
                    _ => {
                        let f = arrow_cast::display::ArrayFormatter::try_new(
                            a.as_ref(),
                            &Default::default(),
                        )
                        .unwrap();
                        text(9, f.value(r).to_string().as_bytes(), &mut buf);
                    }
                }
            }
            d.add_row_hash(&buf);
        }
        d.to_receipt_string()
    }

    #[test]
    fn chunked_encoding_matches_the_value_by_value_reference() {
        use arrow_array::{
            BinaryArray, BooleanArray, Date32Array, LargeBinaryArray, NullArray,
            Time64MicrosecondArray,
        };
        // more rows than a chunk, NULLs at irregular places, long values, every type
        let n = CHUNK_ROWS * 2 + 37;
        let some = |r: usize| r % 7 != 3;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter(
                (0..n).map(|r| some(r).then_some(r as i64 - 900)),
            )),
            Arc::new(Int32Array::from_iter((0..n).map(|r| Some(r as i32)))),
            Arc::new(Float64Array::from_iter((0..n).map(|r| match r % 5 {
                0 => Some(f64::NAN),
                1 => Some(-0.0),
                2 => None,
                _ => Some(r as f64 / 3.0),
            }))),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|r| (r % 4 != 0).then_some(r as i128 * 50)))
                    .with_precision_and_scale(38, 3)
                    .unwrap(),
            ),
            Arc::new(StringArray::from_iter((0..n).map(|r| {
                (r % 11 != 0)
                    .then(|| "é".repeat(r % 90) + &"x".repeat(if r == 5 { 300 } else { 0 }))
            }))),
            Arc::new(LargeStringArray::from_iter_values(
                (0..n).map(|r| format!("l{r}")),
            )),
            Arc::new(BinaryArray::from_iter(
                (0..n).map(|r| some(r).then(|| vec![r as u8; r % 3])),
            )),
            Arc::new(LargeBinaryArray::from_iter_values(
                (0..n).map(|r| vec![1u8; r % 2]),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|r| (r % 3 != 0).then_some(r % 2 == 0)),
            )),
            Arc::new(Date32Array::from_iter(
                (0..n).map(|r| some(r + 1).then_some(r as i32 - 5)),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter(
                    (0..n).map(|r| some(r + 2).then_some(r as i64)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Time64MicrosecondArray::from_iter(
                (0..n).map(|r| some(r).then_some(r as i64)),
            )),
            Arc::new(NullArray::new(n)),
        ];
        let fields: Vec<Field> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        for b in [
            batch.clone(),
            batch.slice(13, n - 20),
            batch.slice(0, 1),
            batch.slice(5, 0),
        ] {
            let mut d = RowDigest::new();
            d.add_batch(&b);
            assert_eq!(d.rows(), b.num_rows() as u64);
            assert_eq!(d.to_receipt_string(), reference_digest(&b));
        }
    }

    #[test]
    fn parts_merge_into_the_whole() {
        let mut whole = RowDigest::new();
        whole.add_batch(&batch(&[1, 2, 3, 4]));
        let (mut a, mut b) = (RowDigest::new(), RowDigest::new());
        a.add_batch(&batch(&[4, 1]));
        b.add_batch(&batch(&[3, 2]));
        a.merge(&b);
        assert_eq!(a, whole);
        assert_eq!(a.to_receipt_string(), whole.to_receipt_string());
        let mut c = RowDigest::new();
        c.add_batch(&batch(&[3]));
        a.merge(&c);
        assert_ne!(a, whole);
        // a carry crosses every limb
        let mut d = RowDigest {
            sum: [0, u64::MAX, u64::MAX, u64::MAX],
            rows: 1,
            ..RowDigest::default()
        };
        d.merge(&RowDigest {
            sum: [0, 0, 0, 1],
            rows: 2,
            ..RowDigest::default()
        });
        assert_eq!((d.sum, d.rows), ([1, 0, 0, 0], 3));
    }

    #[test]
    fn addition_carries() {
        let mut d = RowDigest {
            sum: [u64::MAX; 4],
            ..RowDigest::default()
        };
        // adding any hash to 2^256 - 1 is adding hash - 1 mod 2^256: check one limb carries
        let before = d.sum;
        d.add_row_hash(b"x");
        let h = ring::digest::digest(&SHA256, b"x");
        let mut want = [0u8; 32];
        // (2^256 - 1) + h = h - 1 (mod 2^256)
        want.copy_from_slice(h.as_ref());
        for i in (0..32).rev() {
            if want[i] > 0 {
                want[i] -= 1;
                break;
            }
            want[i] = 0xff;
        }
        assert_ne!(before, d.sum);
        assert!(d.to_receipt_string().ends_with(&hex(&want)));
    }
}
