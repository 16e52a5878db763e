//! Random access to a file that can seek (a local file), for Parquet: the file itself,
//! or its plaintext when it is age-encrypted, decrypted chunk by chunk where Parquet
//! reads and never whole.

use std::io::{Read, Seek};

use ferry_core::Result;
use ferry_formats::age::{self, DecryptingReader, Identities};
use ferry_formats::codec::parquet::ParquetResult;
use ferry_formats::codec::{Bytes, ChunkReader, Length, SeekChunks};

use crate::input::need_key;

/// A seekable file opened for random access (see the module docs).
pub enum Chunks<R: Read> {
    /// Not encrypted: the file.
    Plain(R),
    /// age-encrypted: its plaintext.
    Age(SeekChunks<DecryptingReader<R>>),
}

impl<R> Chunks<R>
where
    R: ChunkReader + Read + Seek + Send + 'static,
{
    /// Opens `file`, the file `name` (named by `noun` in error context), decrypting it when
    /// `encrypted` (this reads and authenticates the age header, so a key that does not
    /// fit fails here).
    pub fn new(
        file: R,
        encrypted: bool,
        name: &str,
        noun: &'static str,
        identities: Option<&Identities>,
    ) -> Result<Self> {
        if !encrypted {
            return Ok(Chunks::Plain(file));
        }
        let ids = need_key(identities, name, noun)?;
        let decrypting = age::decrypt_reader(ids, file).map_err(|e| e.with(noun, name))?;
        Ok(Chunks::Age(
            SeekChunks::new(decrypting).map_err(|e| e.with(noun, name))?,
        ))
    }
}

impl<R: ChunkReader + Read + Seek + Send + 'static> Length for Chunks<R> {
    fn len(&self) -> u64 {
        match self {
            Chunks::Plain(f) => Length::len(f),
            Chunks::Age(c) => c.len(),
        }
    }
}

impl<R> ChunkReader for Chunks<R>
where
    R: ChunkReader + Read + Seek + Send + 'static,
    R::T: Send + 'static,
{
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> ParquetResult<Self::T> {
        Ok(match self {
            Chunks::Plain(f) => Box::new(f.get_read(start)?),
            Chunks::Age(c) => Box::new(c.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        match self {
            Chunks::Plain(f) => f.get_bytes(start, length),
            Chunks::Age(c) => c.get_bytes(start, length),
        }
    }
}
