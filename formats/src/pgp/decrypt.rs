//! Reading a file a client encrypted to our key: authenticated (and its signature checked)
//! in full before a byte of plaintext is released (see the module docs of [`super`]).

use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

use pgp::composed::{DecryptionOptions, Esk, Message, TheRing};
use pgp::types::{Seipdv1ReadMode, VerifyingKey};
use tempfile::SpooledTempFile;

use ferry_core::{Error, ErrorKind, Result};

use super::hex;
use super::keys::{PublicKeys, SecretKeys};

/// Plaintext held in memory before the spool moves to an unnamed temporary file.
pub const SPOOL_MEMORY: usize = 8 << 20;

/// Most layers of compression inside a message (GnuPG uses one).
const MAX_LAYERS: usize = 4;

/// What decrypts the files a client sends: our secret keys and, when set, the client's
/// public keys, one of which must have signed every file.
// the keys show no secret (see their `Debug`)
#[derive(Debug)]
pub struct Decryptor {
    keys: SecretKeys,
    verify: Option<PublicKeys>,
}

/// A decrypted file's plaintext, authenticated, spooled (memory, then a temporary file
/// deleted when this is dropped), positioned at its start.
pub struct Plaintext {
    spool: SpooledTempFile,
    len: u64,
    signed_by: Option<String>,
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("len", &self.len)
            .field("signed_by", &self.signed_by)
            .finish()
    }
}

impl Plaintext {
    /// Bytes of plaintext.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fingerprint of the client key whose signature was verified (when one is required).
    pub fn signed_by(&self) -> Option<&str> {
        self.signed_by.as_deref()
    }
}

impl Read for Plaintext {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.spool.read(buf)
    }
}

impl Seek for Plaintext {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.spool.seek(pos)
    }
}

/// rPGP wants a `Debug` reader.
struct Input<R>(R);

impl<R> fmt::Debug for Input<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Input")
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Decryptor {
    /// Decrypts with `keys`; with `verify`, a file must carry a valid signature by one of
    /// those keys (or one of their subkeys).
    pub fn new(keys: SecretKeys, verify: Option<PublicKeys>) -> Self {
        Decryptor { keys, verify }
    }

    /// Whether a signature is required.
    pub fn requires_signature(&self) -> bool {
        self.verify.is_some()
    }

    /// Checks our key opens `input` (reads the session key packets only): a cheap check
    /// for `ferry check`. The payload is not authenticated.
    pub fn check(&self, input: impl Read + Send) -> Result<()> {
        self.open(input).map(drop)
    }

    /// Decrypts all of `input` into a spool, checks its integrity and (when required) its
    /// signature, and returns its plaintext. A key that does not fit is
    /// [`ErrorKind::AuthFailed`]; anything wrong with the file (not OpenPGP, damaged,
    /// truncated, altered, unsigned or signed by another key when a signature is required)
    /// is [`ErrorKind::DataInvalid`]. On error nothing of the plaintext is returned and
    /// the spool is deleted.
    pub fn decrypt(&self, input: impl Read + Send) -> Result<Plaintext> {
        let mut msg = self.open(input)?;
        for _ in 0..MAX_LAYERS {
            msg = msg.decompress().map_err(|e| damaged(&e.to_string()))?;
        }
        if msg.is_compressed() {
            return Err(Error::data(format!(
                "the OpenPGP file nests more than {MAX_LAYERS} layers of compression: it is damaged, or not made by an OpenPGP tool"
            )));
        }
        let mut spool = SpooledTempFile::new(SPOOL_MEMORY);
        let len = copy(&mut msg, &mut spool)?;
        let signed_by = match &self.verify {
            None => None,
            Some(keys) => Some(verified(&msg, keys)?),
        };
        spool.seek(SeekFrom::Start(0)).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot rewind the plaintext spool: {e}"),
            )
        })?;
        Ok(Plaintext {
            spool,
            len,
            signed_by,
        })
    }

    /// Parses the message and unlocks its session key with our keys.
    fn open<'a>(&self, input: impl Read + Send + 'a) -> Result<Message<'a>> {
        let input = BufReader::with_capacity(64 << 10, Input(input));
        let (msg, _) = Message::from_reader(input).map_err(|e| {
            Error::data(format!(
                "not an OpenPGP message, or its start is damaged ({e}): a client encrypts with `gpg --encrypt --recipient <our key>`"
            ))
        })?;
        let recipients: Vec<String> = match &msg {
            Message::Encrypted { esk, .. } => esk
                .iter()
                .map(|e| match e {
                    Esk::PublicKeyEncryptedSessionKey(p) => match p.id() {
                        Ok(id) => hex(id.as_ref()),
                        Err(_) => "(a key given by fingerprint)".into(),
                    },
                    Esk::SymKeyEncryptedSessionKey(_) => "(a passphrase)".into(),
                })
                .collect(),
            _ => {
                return Err(Error::data(
                    "the OpenPGP file is not encrypted: Ferry reads only files encrypted to its public key (`gpg --encrypt --recipient <our key>`)",
                ))
            }
        };
        let pw = self.keys.password();
        let ring = TheRing {
            secret_keys: self.keys.keys.iter().collect(),
            key_passwords: vec![&pw],
            // we spool and authenticate the whole file ourselves before releasing it, so
            // rPGP need not hold a SEIPDv1 message in memory (its default, up to 1 GiB)
            decrypt_options: DecryptionOptions::new()
                .set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
            ..Default::default()
        };
        match msg.decrypt_the_ring(ring, true) {
            Ok((msg, _)) => Ok(msg),
            Err(pgp::errors::Error::MissingKey) => Err(Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "our PGP secret key ({}) cannot decrypt the file: it was encrypted to {}; ask the client to encrypt to our public key",
                    self.keys.fingerprints().join(", "),
                    if recipients.is_empty() { "no key".to_string() } else { format!("key ID {}", recipients.join(", ")) }
                ),
            )),
            Err(e) => Err(damaged(&e.to_string())),
        }
    }
}

/// Copies the plaintext into the spool; a failure is the file's fault unless the spool's.
fn copy(msg: &mut Message<'_>, spool: &mut SpooledTempFile) -> Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match msg.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(damaged(&format!("{e}, after {total} bytes of plaintext"))),
        };
        spool.write_all(&buf[..n]).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot spool the decrypted file to a temporary file: {e}; free space in the temporary folder (TMPDIR)"),
            )
        })?;
        total += n as u64;
    }
}

fn damaged(why: &str) -> Error {
    Error::data(format!(
        "the OpenPGP file is damaged, cut short or altered ({why}): no row of it was read; ask the client to send it again"
    ))
}

/// The fingerprint of the key among `keys` whose signature on `msg` (read to its end) is
/// valid, or why there is none.
fn verified(msg: &Message<'_>, keys: &PublicKeys) -> Result<String> {
    let expected = keys.fingerprints().join(", ");
    if !msg.is_signed() {
        return Err(Error::data(format!(
            "the OpenPGP file is not signed, and a signature by the client's key ({expected}) is required (`pgp_verify_key`): no row of it was read; ask the client to encrypt with `gpg --sign --encrypt`"
        )));
    }
    let mut candidates: Vec<(&dyn VerifyingKey, String)> = Vec::new();
    for key in &keys.keys {
        let fp = super::keys::fingerprint(&key.primary_key);
        candidates.push((&key.primary_key, fp.clone()));
        for sub in &key.public_subkeys {
            candidates.push((&sub.key, fp.clone()));
        }
    }
    let only: Vec<&dyn VerifyingKey> = candidates.iter().map(|(k, _)| *k).collect();
    let results = msg
        .verify_nested(&only)
        .map_err(|e| damaged(&e.to_string()))?;
    for (r, (_, fp)) in results.iter().zip(&candidates) {
        if matches!(r, pgp::composed::VerificationResult::Valid(_)) {
            return Ok(fp.clone());
        }
    }
    Err(Error::data(format!(
        "the OpenPGP file's signature is not a valid signature by the client's key ({expected}): it was signed by another key, or altered; no row of it was read"
    )))
}
