//! Digests that prove what was delivered: SHA-256 of files, and an order-independent
//! digest of table rows.
//!
//! The row digest lets a receipt say "these exact rows" about a table, where rows have no
//! order. Each row is encoded as text — for every column in schema order, the value's
//! canonical text ([`crate::values::write_text`]: RFC 3339 UTC timestamps, base64 binary,
//! exact decimals) followed by the byte 0x1F, or the single byte 0x00 followed by 0x1F for
//! NULL — and hashed with SHA-256. The row digests, read as 256-bit big-endian unsigned
//! integers, are added modulo 2^256. Addition is commutative, so any order gives the same
//! sum, and a duplicated row changes it (unlike XOR).

use std::io::Read;
use std::path::Path;

use arrow_array::RecordBatch;
use ring::digest::{Context, SHA256};

use crate::types::FerryType;
use crate::values::write_text;
use crate::{Error, Result};

/// Prefix of a file digest in receipts.
pub const FILE_PREFIX: &str = "sha256:";
/// Prefix of a row digest in receipts.
pub const ROWS_PREFIX: &str = "rows-sha256-sum:";

/// An order-independent digest of rows.
///
/// ```
/// use std::sync::Arc;
/// use ferry_core::{arrow_array::{Int64Array, RecordBatch}, arrow_schema::Schema, digest::RowDigest, FerryType};
///
/// let schema = Arc::new(Schema::new(vec![FerryType::Int64.field("id", false)]));
/// let batch = |ids: Vec<i64>| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids))]).unwrap();
/// let (mut a, mut b) = (RowDigest::new(), RowDigest::new());
/// a.add_batch(&batch(vec![1, 2, 3]));
/// b.add_batch(&batch(vec![3, 1]));
/// b.add_batch(&batch(vec![2]));
/// assert_eq!(a, b); // same rows, any order
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowDigest {
    sum: [u8; 32],
    rows: u64,
}

impl RowDigest {
    /// A digest of no rows.
    pub fn new() -> Self {
        RowDigest::default()
    }

    /// Adds every row of `batch`.
    pub fn add_batch(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let types: Vec<FerryType> = schema
            .fields()
            .iter()
            .map(|f| FerryType::of(f).unwrap_or(FerryType::String))
            .collect();
        let mut text = String::new();
        for r in 0..batch.num_rows() {
            text.clear();
            for (c, ty) in types.iter().enumerate() {
                if !write_text(batch.column(c).as_ref(), *ty, r, &mut text) {
                    text.push('\0');
                }
                text.push('\u{1f}');
            }
            let d = ring::digest::digest(&SHA256, text.as_bytes());
            add_256(&mut self.sum, d.as_ref());
            self.rows += 1;
        }
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// `rows-sha256-sum:<64 hex>`.
    pub fn to_receipt_string(&self) -> String {
        format!("{ROWS_PREFIX}{}", hex(&self.sum))
    }
}

fn add_256(acc: &mut [u8; 32], x: &[u8]) {
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = acc[i] as u16 + x[i] as u16 + carry;
        acc[i] = s as u8;
        carry = s >> 8;
    }
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
    use std::sync::Arc;

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Int64.field("id", false)
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::Int64Array::from(ids.to_vec()))],
        )
        .unwrap()
    }

    #[test]
    fn order_independent_but_counts_duplicates() {
        let mut a = RowDigest::new();
        a.add_batch(&batch(&[1, 2, 3]));
        let mut b = RowDigest::new();
        b.add_batch(&batch(&[3]));
        b.add_batch(&batch(&[2, 1]));
        assert_eq!(a, b);
        let mut c = RowDigest::new();
        c.add_batch(&batch(&[1, 2, 3, 3]));
        assert_ne!(a.to_receipt_string(), c.to_receipt_string());
        assert!(a.to_receipt_string().starts_with(ROWS_PREFIX));
    }

    #[test]
    fn addition_carries() {
        let mut acc = [0xffu8; 32];
        let mut one = [0u8; 32];
        one[31] = 1;
        add_256(&mut acc, &one);
        assert_eq!(acc, [0u8; 32]);
    }
}
