//! Writing a delivery encrypted to the client's public keys (SEIPDv1 with MDC and AES-256,
//! which every GnuPG since 1.4 opens), optionally signed with our key, streamed.
//!
//! rPGP's message builder pulls its plaintext from a reader, while Ferry's format writers
//! push bytes into a writer; so the builder runs on its own thread, fed through a small
//! bounded channel (memory: a few 64 KiB chunks whatever the file's size). A writer
//! dropped without [`EncryptingWriter::finish`] makes the builder fail, so an interrupted
//! delivery is never a complete-looking file.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use pgp::composed::{ArmorOptions, MessageBuilder, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::KeyDetails;

use ferry_core::{Error, ErrorKind, Result};

use super::keys::{fingerprint, PublicKeys, SecretKeys};

/// Plaintext handed to the encrypting thread at a time.
const CHUNK: usize = 64 << 10;

/// Chunks in flight between the writer and the encrypting thread.
const IN_FLIGHT: usize = 4;

/// Who a delivery is encrypted to, who signs it, and whether it is armored.
pub struct Encryptor {
    recipients: PublicKeys,
    signer: Option<SecretKeys>,
    armor: bool,
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("recipients", &self.recipients)
            .field("signer", &self.signer)
            .field("armor", &self.armor)
            .finish()
    }
}

impl Encryptor {
    /// Encrypts to every key of `recipients` (each can decrypt on its own), signed with
    /// `signer` when given, armored (`.asc`) when `armor`, else binary (`.gpg`). Fails
    /// ([`ErrorKind::ConfigInvalid`]) when a recipient has no key able to encrypt.
    pub fn new(recipients: PublicKeys, signer: Option<SecretKeys>, armor: bool) -> Result<Self> {
        for key in &recipients.keys {
            if encryption_keys(key).is_empty() {
                return Err(Error::config(format!(
                    "the client's public key {} has no key able to encrypt (it is a signing-only key): ask the client for their encryption key",
                    fingerprint(&key.primary_key)
                )));
            }
        }
        Ok(Encryptor {
            recipients,
            signer,
            armor,
        })
    }

    /// Public keys from `entries` (see [`PublicKeys::parse`]) as `field`, and the rest as
    /// [`Encryptor::new`].
    pub fn from_entries(
        entries: &[String],
        base_dir: &Path,
        field: &str,
        signer: Option<SecretKeys>,
        armor: bool,
    ) -> Result<Self> {
        Encryptor::new(PublicKeys::parse(entries, base_dir, field)?, signer, armor)
    }

    /// Whether files are armored (`.asc`) rather than binary (`.gpg`).
    pub fn armored(&self) -> bool {
        self.armor
    }

    /// The extension of the files written, without the dot: `gpg`, or `asc` when armored.
    pub fn extension(&self) -> &'static str {
        if self.armor {
            super::ARMORED_EXTENSION
        } else {
            super::EXTENSION
        }
    }

    /// The recipients' fingerprints.
    pub fn recipients(&self) -> Vec<String> {
        self.recipients.fingerprints()
    }
}

/// The keys of `key` that encrypt: its subkeys flagged for encryption, else the primary key
/// when its algorithm can encrypt.
enum EncKey<'a> {
    Primary(&'a pgp::packet::PublicKey),
    Sub(&'a pgp::packet::PublicSubkey),
}

fn encryption_keys(key: &SignedPublicKey) -> Vec<EncKey<'_>> {
    let subs: Vec<EncKey<'_>> = key
        .public_subkeys
        .iter()
        .filter(|s| {
            s.key.algorithm().can_encrypt()
                && s.signatures.iter().any(|sig| {
                    let f = sig.key_flags();
                    f.encrypt_comms() || f.encrypt_storage()
                })
        })
        .map(|s| EncKey::Sub(&s.key))
        .collect();
    if !subs.is_empty() {
        return subs;
    }
    if key.primary_key.algorithm().can_encrypt() {
        return vec![EncKey::Primary(&key.primary_key)];
    }
    Vec::new()
}

/// Encrypts what is written to it into an OpenPGP file written to `W`.
/// [`EncryptingWriter::finish`] must be called: without it the file is cut short and will
/// not decrypt.
pub struct EncryptingWriter<W: Write + Send + 'static> {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    worker: Option<JoinHandle<Result<W>>>,
}

/// Starts an OpenPGP file on `out` for `encryptor`; `name` is the file name recorded
/// inside (what `gpg --decrypt --use-embedded-filename` would write; e.g. `orders.csv`).
pub fn encrypt_writer<W: Write + Send + 'static>(
    encryptor: &Arc<Encryptor>,
    name: &str,
    out: W,
) -> Result<EncryptingWriter<W>> {
    let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let enc = encryptor.clone();
    let name = name.to_string();
    let worker = std::thread::Builder::new()
        .name("ferry-pgp-encrypt".into())
        .spawn(move || seal(&enc, name, rx, out))
        .map_err(|e| Error::internal(format!("cannot start the OpenPGP encryptor: {e}")))?;
    Ok(EncryptingWriter {
        tx: Some(tx),
        buf: Vec::with_capacity(CHUNK),
        worker: Some(worker),
    })
}

/// The encrypting thread: the whole message, from the channel to `out`.
fn seal<W: Write>(enc: &Encryptor, name: String, rx: Receiver<Vec<u8>>, mut out: W) -> Result<W> {
    let mut rng = rand::thread_rng();
    let reader = ChannelReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        ended: false,
    };
    let mut builder =
        MessageBuilder::from_reader(name, reader).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    let failed = |e: pgp::errors::Error| {
        Error::new(ErrorKind::Io, format!("cannot write the OpenPGP file: {e}"))
    };
    for key in &enc.recipients.keys {
        for k in encryption_keys(key) {
            match k {
                EncKey::Primary(p) => builder.encrypt_to_key(&mut rng, p),
                EncKey::Sub(s) => builder.encrypt_to_key(&mut rng, s),
            }
            .map_err(|e| {
                Error::config(format!(
                    "cannot encrypt to the client's public key {}: {e}",
                    fingerprint(&key.primary_key)
                ))
            })?;
        }
    }
    if let Some(signer) = &enc.signer {
        builder.sign(
            signer.signing_key(),
            signer.password(),
            HashAlgorithm::Sha256,
        );
    }
    if enc.armor {
        builder
            .to_armored_writer(&mut rng, ArmorOptions::default(), &mut out)
            .map_err(failed)?;
    } else {
        builder.to_writer(&mut rng, &mut out).map_err(failed)?;
    }
    Ok(out)
}

/// The plaintext side of the channel: ends cleanly only on the end marker (an empty chunk).
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(chunk) if chunk.is_empty() => self.ended = true,
                Ok(chunk) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the delivery was abandoned before its end",
                    ))
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<W: Write + Send + 'static> EncryptingWriter<W> {
    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the OpenPGP encryptor stopped (its error is reported when the file is finished)",
        ))
    }

    /// Writes the end of the message (and the signature) and returns the inner writer
    /// (not flushed).
    pub fn finish(mut self) -> Result<W> {
        let rest = std::mem::take(&mut self.buf);
        let sent = (rest.is_empty() || self.send(rest).is_ok()) && self.send(Vec::new()).is_ok();
        self.tx = None;
        let joined = match self.worker.take() {
            Some(w) => w
                .join()
                .map_err(|_| Error::internal("the OpenPGP encryptor panicked"))?,
            None => Err(Error::internal("the OpenPGP encryptor is gone")),
        };
        match (joined, sent) {
            (Ok(w), true) => Ok(w),
            (Ok(_), false) => Err(Error::internal(
                "the OpenPGP encryptor ended before the delivery did",
            )),
            (Err(e), _) => Err(e),
        }
    }
}

impl<W: Write + Send + 'static> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(full)?;
        }
        Ok(n)
    }

    /// Hands buffered plaintext to the encryptor; the file is complete only after
    /// [`EncryptingWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let part = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(part)?;
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for EncryptingWriter<W> {
    fn drop(&mut self) {
        // no end marker: the builder fails, and the output stays incomplete
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
