//! Where a destination's (compressed) bytes go: the file itself, or an age encryptor in
//! front of it; and the whole writer stack of a delivered file ([`delivery`]).

use std::io::{BufWriter, Write};

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{Error, Result};
use ferry_formats::age::{self, EncryptingWriter, Recipients};
use ferry_formats::codec::{
    CompressWriter, Compression, Format, FormatWriter, HashingWriter, WriteOptions,
};

/// A file being written, plain or age-encrypted.
pub enum Sealed<W: Write> {
    /// Written as is.
    Plain(W),
    /// Encrypted on the way.
    Age(EncryptingWriter<W>),
}

impl<W: Write> Sealed<W> {
    /// Seals an age file's last chunk; returns the file (not flushed).
    pub fn finish(self) -> Result<W> {
        match self {
            Sealed::Plain(w) => Ok(w),
            Sealed::Age(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sealed::Plain(w) => w.write(buf),
            Sealed::Age(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sealed::Plain(w) => w.write_all(buf),
            Sealed::Age(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sealed::Plain(w) => w.flush(),
            Sealed::Age(w) => w.flush(),
        }
    }
}

/// A delivered file's writer stack, inside out: format writer → buffer → compression →
/// age encryption (when sealed) → a hash of the bytes that land → `W`.
pub type Delivery<W> = FormatWriter<BufWriter<CompressWriter<Sealed<HashingWriter<W>>>>>;

/// Starts writing a delivered file to `out`: encrypted to `encrypt` when given, compressed
/// with `compression`, in `format` for batches of `schema`, through a `buffer`-byte buffer.
pub fn delivery<W: Write + Send>(
    out: W,
    encrypt: Option<&Recipients>,
    compression: Compression,
    format: Format,
    schema: SchemaRef,
    options: &WriteOptions,
    buffer: usize,
) -> Result<Delivery<W>> {
    let hashed = HashingWriter::new(out);
    let sealed = match encrypt {
        None => Sealed::Plain(hashed),
        Some(recipients) => Sealed::Age(age::encrypt_writer(recipients, hashed)?),
    };
    let compressed = CompressWriter::new(sealed, compression)?;
    FormatWriter::with_options(
        format,
        BufWriter::with_capacity(buffer, compressed),
        schema,
        options,
    )
}

/// Ends a delivered file: the format's footer, the compression trailer, the last age
/// chunk; returns the hash and the writer under it (not flushed).
pub fn finish_delivery<W: Write + Send>(w: Delivery<W>) -> Result<HashingWriter<W>> {
    w.into_inner()?
        .into_inner()
        .map_err(|e| {
            Error::new(
                ferry_core::ErrorKind::Io,
                format!("cannot write: {}", e.error()),
            )
        })?
        .finish()
        .and_then(Sealed::finish)
}
