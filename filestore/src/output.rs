//! Where a destination's (compressed) bytes go: the file itself, or an age encryptor in
//! front of it.

use std::io::Write;

use ferry_core::Result;
use ferry_formats::age::EncryptingWriter;

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
