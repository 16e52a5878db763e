//! Where a destination's (compressed) bytes go: the file itself, or an age or OpenPGP
//! encryptor in front of it; and the whole writer stack of a delivered file ([`delivery`]).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{Error, Result};
use ferry_formats::age::{self, EncryptingWriter, Recipients};
use ferry_formats::codec::{
    CompressWriter, Compression, Format, FormatWriter, HashingWriter, WriteOptions,
};
use ferry_formats::pgp::{self, Encryptor};

use crate::encrypt::{pgp_encryptor, recipients, EncryptConfig};

/// How a destination encrypts its files (from its `encrypt` table).
#[derive(Debug, Clone)]
pub enum Sealing {
    /// age v1, to these recipients.
    Age(Arc<Recipients>),
    /// OpenPGP, to these public keys (optionally signed).
    Pgp(Arc<Encryptor>),
}

impl Sealing {
    /// How `encrypt` says to encrypt, key files read relative to `base_dir` (none: files
    /// are written plain).
    pub fn of(encrypt: Option<&EncryptConfig>, base_dir: &Path) -> Result<Option<Sealing>> {
        if let Some(p) = pgp_encryptor(encrypt, base_dir)? {
            return Ok(Some(Sealing::Pgp(p)));
        }
        Ok(recipients(encrypt, base_dir)?.map(Sealing::Age))
    }

    /// The extension an encrypted file gets, without the dot: `age`, `gpg` (or `asc`).
    pub fn extension(&self) -> &'static str {
        match self {
            Sealing::Age(_) => age::EXTENSION,
            Sealing::Pgp(p) => p.extension(),
        }
    }

    /// The name of the format, for messages (`age`, `OpenPGP`).
    pub fn name(&self) -> &'static str {
        match self {
            Sealing::Age(_) => "age",
            Sealing::Pgp(_) => "OpenPGP",
        }
    }

    /// Starts an encrypted file on `out`; `inner` is the plaintext's file name (OpenPGP
    /// records it, e.g. `orders.csv`).
    pub fn seal<W: Write + Send + 'static>(&self, out: W, inner: &str) -> Result<Sealed<W>> {
        Ok(match self {
            Sealing::Age(r) => Sealed::Age(age::encrypt_writer(r, out)?),
            Sealing::Pgp(p) => Sealed::Pgp(pgp::encrypt_writer(p, inner, out)?),
        })
    }
}

/// A file being written, plain, age- or OpenPGP-encrypted.
pub enum Sealed<W: Write + Send + 'static> {
    /// Written as is.
    Plain(W),
    /// Encrypted on the way (age).
    Age(EncryptingWriter<W>),
    /// Encrypted on the way (OpenPGP, on a thread of its own).
    Pgp(pgp::EncryptingWriter<W>),
}

impl<W: Write + Send + 'static> Sealed<W> {
    /// Seals an encrypted file's end; returns the file (not flushed).
    pub fn finish(self) -> Result<W> {
        match self {
            Sealed::Plain(w) => Ok(w),
            Sealed::Age(w) => w.finish(),
            Sealed::Pgp(w) => w.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sealed::Plain(w) => w.write(buf),
            Sealed::Age(w) => w.write(buf),
            Sealed::Pgp(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sealed::Plain(w) => w.write_all(buf),
            Sealed::Age(w) => w.write_all(buf),
            Sealed::Pgp(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sealed::Plain(w) => w.flush(),
            Sealed::Age(w) => w.flush(),
            Sealed::Pgp(w) => w.flush(),
        }
    }
}

/// A delivered file's writer stack, inside out: format writer → buffer → compression →
/// age or OpenPGP encryption (when sealed) → a hash of the bytes that land → `W`.
pub type Delivery<W> = FormatWriter<BufWriter<CompressWriter<Sealed<HashingWriter<W>>>>>;

/// Starts writing a delivered file to `out`: sealed with `encrypt` when given (`inner`: the
/// plaintext's name, which OpenPGP records), compressed with `compression`, in `format` for
/// batches of `schema`, through a `buffer`-byte buffer.
#[allow(clippy::too_many_arguments)]
pub fn delivery<W: Write + Send + 'static>(
    out: W,
    encrypt: Option<&Sealing>,
    inner: &str,
    compression: Compression,
    format: Format,
    schema: SchemaRef,
    options: &WriteOptions,
    buffer: usize,
) -> Result<Delivery<W>> {
    let hashed = HashingWriter::new(out);
    let sealed = match encrypt {
        None => Sealed::Plain(hashed),
        Some(sealing) => sealing.seal(hashed, inner)?,
    };
    let compressed = CompressWriter::new(sealed, compression)?;
    FormatWriter::with_options(
        format,
        BufWriter::with_capacity(buffer, compressed),
        schema,
        options,
    )
}

/// Ends a delivered file: the format's footer, the compression trailer, the encryption's
/// end; returns the hash and the writer under it (not flushed).
pub fn finish_delivery<W: Write + Send + 'static>(w: Delivery<W>) -> Result<HashingWriter<W>> {
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
