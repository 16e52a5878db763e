//! `Read + Seek` over a [`ChunkReader`] (the reverse of [`super::SeekChunks`]): what a
//! workbook or a zip archive needs, from a store's random access (a local file, ranged
//! GETs of an object). Reads go through one block of [`BLOCK`] bytes, so the many small
//! reads of a zip index cost one ranged request per block, not one each.

use std::io::{self, Read, Seek, SeekFrom};

use super::parquet::{Bytes, ChunkReader};

/// Bytes fetched per request.
const BLOCK: usize = 1 << 20;

/// A cursor over a [`ChunkReader`] (see the module docs).
pub struct ChunkCursor<C> {
    inner: C,
    len: u64,
    pos: u64,
    /// The block last fetched, and where it starts.
    block: Bytes,
    block_start: u64,
}

impl<C: ChunkReader> ChunkCursor<C> {
    /// A cursor at the start of `inner`.
    pub fn new(inner: C) -> Self {
        ChunkCursor {
            len: inner.len(),
            inner,
            pos: 0,
            block: Bytes::new(),
            block_start: 0,
        }
    }

    /// The length of the data.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<C: ChunkReader> Read for ChunkCursor<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let in_block =
            self.pos >= self.block_start && self.pos < self.block_start + self.block.len() as u64;
        if !in_block {
            let want = BLOCK.min((self.len - self.pos) as usize);
            self.block = self
                .inner
                .get_bytes(self.pos, want)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.block_start = self.pos;
            if self.block.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended early",
                ));
            }
        }
        let offset = (self.pos - self.block_start) as usize;
        let n = buf.len().min(self.block.len() - offset);
        buf[..n].copy_from_slice(&self.block[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<C: ChunkReader> Seek for ChunkCursor<C> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_seeks_like_a_cursor() {
        let data: Vec<u8> = (0..(BLOCK * 2 + 10)).map(|i| (i % 251) as u8).collect();
        let mut c = ChunkCursor::new(Bytes::from(data.clone()));
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        c.seek(SeekFrom::End(-5)).unwrap();
        let mut tail = Vec::new();
        c.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 5..]);
        c.seek(SeekFrom::Start(BLOCK as u64 - 2)).unwrap();
        let mut four = [0u8; 4];
        c.read_exact(&mut four).unwrap();
        assert_eq!(four, data[BLOCK - 2..BLOCK + 2]);
        assert!(c.seek(SeekFrom::Current(-(BLOCK as i64) * 4)).is_err());
    }
}
