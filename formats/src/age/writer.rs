//! Encrypting to an age file: the header, then the payload sealed a batch of chunks at a
//! time on all cores (see [`super::payload`]).

use std::io::{self, Write};

use ::age::secrecy::ExposeSecret;
use age_core::format::FileKey;
use ferry_core::{Error, ErrorKind, Result};
use ring::aead::LessSafeKey;
use ring::rand::{SecureRandom, SystemRandom};

use super::payload::{self, CHUNK, SEALED, TAG};
use super::{header, Recipients};

/// Encrypts what is written to it into an age file written to `W`. The payload is sealed
/// a batch of 64 KiB chunks at a time, the chunks of a batch on all cores; the last chunk
/// is held back until [`EncryptingWriter::finish`], which must be called: without it the
/// file is truncated and will not decrypt (which is what an interrupted write should
/// produce). Memory: two batches (2 MiB each with 2 cores, at most 8 MiB each).
pub struct EncryptingWriter<W: Write> {
    out: W,
    /// Boxed: ring's expanded key is large, and this writer sits in enums of writers.
    key: Box<LessSafeKey>,
    /// Index of the next chunk to seal.
    counter: u64,
    /// Plaintext not sealed yet: at most a batch.
    plain: Vec<u8>,
    /// Sealed chunks, reused between batches.
    sealed: Vec<u8>,
}

/// Starts an age file for `recipients` on `out`: writes the header at once and returns a
/// writer that encrypts the payload as it is written.
pub fn encrypt_writer<W: Write>(
    recipients: &Recipients,
    mut out: W,
) -> Result<EncryptingWriter<W>> {
    let rng = SystemRandom::new();
    let file_key = FileKey::try_init_with_mut(|k| rng.fill(k))
        .map_err(|_| Error::new(ErrorKind::Io, "cannot draw a random age file key"))?;
    let mut stanzas = Vec::new();
    for r in recipients.iter() {
        let (mut s, _labels) = r
            .wrap_file_key(&file_key)
            .map_err(|e| Error::config(format!("cannot encrypt to these age recipients: {e}")))?;
        stanzas.append(&mut s);
    }
    if !recipients.has_passphrase() {
        // as the `age` crate does: an unknown stanza keeps readers tolerant of new types
        stanzas.push(age_core::format::grease_the_joint());
    }
    let mut nonce = [0u8; payload::NONCE];
    rng.fill(&mut nonce)
        .map_err(|_| Error::new(ErrorKind::Io, "cannot draw a random age nonce"))?;
    let key = payload::payload_key(file_key.expose_secret(), &nonce);
    let head = header::write(&stanzas, file_key.expose_secret());
    out.write_all(&head)
        .and_then(|()| out.write_all(&nonce))
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write the age header: {e}")))?;
    Ok(EncryptingWriter {
        out,
        key: Box::new(key),
        counter: 0,
        plain: Vec::new(),
        sealed: Vec::new(),
    })
}

impl<W: Write> EncryptingWriter<W> {
    /// Seals the last chunk and returns the inner writer (not flushed).
    pub fn finish(mut self) -> Result<W> {
        self.seal(true)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write the age file: {e}")))?;
        Ok(self.out)
    }

    /// Seals what `plain` holds and writes it; with `last`, its final chunk (maybe empty,
    /// when nothing was written at all) is flagged last. Without `last`, `plain` holds
    /// whole chunks.
    fn seal(&mut self, last: bool) -> io::Result<()> {
        let chunks = self.plain.len().div_ceil(CHUNK).max(usize::from(last));
        let size = self.plain.len() + chunks * TAG;
        self.sealed.resize(size, 0);
        let first = self.counter;
        let items: Vec<_> = self
            .sealed
            .chunks_mut(SEALED)
            .zip(self.plain.chunks(CHUNK).chain(std::iter::once(&[][..])))
            .enumerate()
            .collect();
        let key = &self.key;
        payload::spread(items, |(i, (out, plain))| {
            let counter = first + i as u64;
            payload::seal(key, counter, last && i + 1 == chunks, plain, out);
        });
        self.counter += chunks as u64;
        self.plain.clear();
        self.out.write_all(&self.sealed)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let full = payload::batch_chunks() * CHUNK;
        while !buf.is_empty() {
            // a full batch is sealed only once more data follows: the file's last chunk
            // must be flagged last
            if self.plain.len() == full {
                self.seal(false)?;
            }
            let take = buf.len().min(full - self.plain.len());
            self.plain.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
