//! File encryption in the standard **age v1** format (<https://age-encryption.org/v1>).
//!
//! Why age, and not a format of Ferry's own: the files Ferry delivers are read by the
//! client, with the client's tools. An age file opens with the standard `age` command
//! (`age -d -i key.txt orders.csv.age`), or any of its implementations (Go, Rust,
//! Java, TypeScript …), so the client needs no Ferry, and no one has to trust a format
//! that only Ferry speaks. The format is small, specified and well reviewed:
//!
//! - a text header with one *stanza* per recipient, each wrapping the same random file
//!   key: X25519 for public keys (`age1…`), scrypt for a passphrase;
//! - a MAC over the header, so a changed header is refused;
//! - the payload in 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a counter
//!   nonce whose last byte marks the final chunk (the STREAM construction), so a changed,
//!   reordered, dropped or truncated chunk is detected, and reading streams in constant
//!   memory whatever the file's size.
//!
//! The key cryptography is the `age` crate's (the reference Rust implementation): it
//! wraps the file key for each recipient (X25519, scrypt) and unwraps it with an identity.
//! Ferry writes and parses the header text and its MAC itself, and seals the payload with
//! `ring`'s ChaCha20-Poly1305 (SIMD assembly), a batch of chunks at a time on all cores:
//! the chunks are independent (each nonce is the chunk's counter), so the output is the
//! standard format byte for byte, and `age -d` opens it. Memory per stream is two batches
//! (2 MiB each with 2 cores, 8 MiB each at most). This module adapts it all to Ferry:
//! keys and passphrases travel as [`Secret`]s, every failure is an
//! [`Error`] with a kind (a wrong key is [`ErrorKind::AuthFailed`], a damaged or truncated
//! file is [`ErrorKind::DataInvalid`], bad recipients are [`ErrorKind::ConfigInvalid`]), and
//! the file helpers never leave a half-written or unauthenticated output file behind.
//!
//! - [`Recipients`]: who can read what Ferry encrypts: public keys (inline or from
//!   recipients files), or a passphrase.
//! - [`Identities`]: what Ferry decrypts with: secret keys (`AGE-SECRET-KEY-1…`) and/or
//!   a passphrase.
//! - [`encrypt_writer`] / [`decrypt_reader`]: streaming, bounded memory, all cores.
//! - [`encrypt_file`] / [`decrypt_file`] (and [`encrypt_to_file`] / [`decrypt_to_file`]
//!   for any reader): a temporary file in the destination's folder, renamed into place
//!   only when the whole input was processed (and, for decryption, authenticated): a
//!   failure leaves no output file.
//! - [`generate_identity`] and [`public_key`] for key management.
//!
//! Passphrases use scrypt with work factor 2^18 when encrypting, as the `age` command does
//! (about a second, 256 MiB), and accept up to 2^22 when decrypting, the `age`
//! command's limit. The age format allows a passphrase only as the *sole* recipient of a
//! file, so [`Recipients`] holds public keys or a passphrase, never both.
//!
//! Decryption streams: plaintext is released chunk by chunk, each authenticated before it
//! is released, but whether the file *ends* where it should is known only at its end. A
//! reader of [`decrypt_reader`] must therefore treat its output as unconfirmed until it
//! has read to the end without an error; [`decrypt_file`] does exactly that.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use ::age::secrecy::{ExposeSecret, SecretString};
use ::age::{scrypt, x25519, DecryptError};

use ferry_core::{Error, ErrorKind, Result, Secret};

use crate::keyfile::KeyFile;

/// The extension of age files, without the dot.
pub const EXTENSION: &str = "age";

/// The first line of every age v1 file (without its line break).
pub const MAGIC: &str = "age-encryption.org/v1";

/// scrypt work factor (log2 N) used to encrypt to a passphrase: the `age` command's.
pub const PASSPHRASE_WORK_FACTOR: u8 = 18;

/// Highest scrypt work factor (log2 N) accepted when decrypting: the `age` command's.
pub const MAX_PASSPHRASE_WORK_FACTOR: u8 = 22;

/// Largest recipients file read (a recipients file is a few lines of text).
const MAX_RECIPIENTS_FILE: u64 = 1 << 20;

/// Buffer between a format writer and the encryptor, and for file copies.
const BUFFER: usize = 256 << 10;

/// Whether `path` names an age file (its extension is `.age`, in any case).
pub fn is_age_path(path: impl AsRef<Path>) -> bool {
    path.as_ref()
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(EXTENSION))
}

// ----------------------------------------------------------------------------------------
// Recipients

/// Who can decrypt what Ferry encrypts: one or more X25519 public keys (`age1…`), or a
/// passphrase (the age format allows a passphrase only alone).
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
    passphrase: Option<scrypt::Recipient>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_keys(f, "Recipients", self.public_keys(), self.has_passphrase())
    }
}

impl Recipients {
    /// Public keys from `entries`, each one of:
    ///
    /// - an X25519 public key, `age1…`;
    /// - `file:<path>`, or a plain path: a recipients file as `age-keygen -y` writes it,
    ///   one public key per line, blank lines and lines starting with `#` ignored.
    ///
    /// Relative paths are relative to `base_dir`. Errors are [`ErrorKind::ConfigInvalid`]
    /// and name the bad entry (or file and line), never a secret key pasted by mistake.
    pub fn parse(entries: &[String], base_dir: &Path) -> Result<Self> {
        Recipients::new(entries, None, base_dir)
    }

    /// A passphrase recipient: anyone with the passphrase can decrypt. Encrypting costs
    /// about a second (scrypt, work factor [`PASSPHRASE_WORK_FACTOR`]).
    pub fn passphrase(passphrase: &Secret) -> Result<Self> {
        Recipients::new(&[], Some(passphrase), Path::new("."))
    }

    /// Public keys from `entries` (as [`Recipients::parse`]) or a passphrase: exactly one
    /// of the two must be given.
    pub fn new(entries: &[String], passphrase: Option<&Secret>, base_dir: &Path) -> Result<Self> {
        let mut keys: Vec<x25519::Recipient> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            for key in parse_entry(entry, i + 1, base_dir)? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let passphrase = match passphrase {
            None => None,
            Some(p) if p.is_empty() => {
                return Err(Error::config("the age passphrase is empty"));
            }
            Some(p) => {
                let mut r = scrypt::Recipient::new(SecretString::from(p.expose().to_string()));
                r.set_work_factor(PASSPHRASE_WORK_FACTOR);
                Some(r)
            }
        };
        match (keys.is_empty(), passphrase.is_some()) {
            (true, false) => Err(Error::config(
                "no age recipients: list at least one public key (`age1…` or `file:keys.pub`), or set a passphrase",
            )),
            (false, true) => Err(Error::config(
                "an age passphrase cannot be combined with public keys: the age format allows a passphrase only as the sole recipient of a file; remove `passphrase` or the public keys",
            )),
            _ => Ok(Recipients { keys, passphrase }),
        }
    }

    /// Sets the scrypt work factor (log2 N, 1 to 30) of a passphrase recipient (default
    /// [`PASSPHRASE_WORK_FACTOR`]); lower it only for tests. No effect with public keys.
    pub fn set_work_factor(&mut self, log_n: u8) -> Result<()> {
        if !(1..=30).contains(&log_n) {
            return Err(Error::config(format!(
                "scrypt work factor must be 1 to 30, not {log_n}"
            )));
        }
        if let Some(p) = &mut self.passphrase {
            p.set_work_factor(log_n);
        }
        Ok(())
    }

    /// The public keys (`age1…`), in order, without duplicates.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.to_string()).collect()
    }

    /// Whether this is a passphrase recipient.
    pub fn has_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    fn iter(&self) -> impl Iterator<Item = &dyn ::age::Recipient> {
        self.keys
            .iter()
            .map(|k| k as &dyn ::age::Recipient)
            .chain(self.passphrase.iter().map(|p| p as &dyn ::age::Recipient))
    }
}

/// How an entry may be shown in an error: never a secret key pasted by mistake.
fn shown(entry: &str) -> String {
    let t = entry.trim();
    if looks_secret(t) {
        return "(a secret key, not shown)".into();
    }
    let short: String = t.chars().take(80).collect();
    if short.len() < t.len() {
        format!("`{short}…`")
    } else {
        format!("`{short}`")
    }
}

fn looks_secret(s: &str) -> bool {
    let upper = s.trim().to_ascii_uppercase();
    upper.starts_with("AGE-SECRET-KEY-") || upper.starts_with("AGE-PLUGIN-")
}

fn parse_entry(entry: &str, n: usize, base_dir: &Path) -> Result<Vec<x25519::Recipient>> {
    let t = entry.trim();
    let what = format!("recipient {n} ({})", shown(t));
    if t.is_empty() {
        return Err(Error::config(format!("recipient {n} is empty")));
    }
    if looks_secret(t) {
        return Err(Error::config(format!(
            "recipient {n} is a secret key: list the public key (`age1…`, printed by `age-keygen -y`), and keep the secret key out of the config"
        )));
    }
    if t.to_ascii_lowercase().starts_with("age1") {
        return parse_public_key(t)
            .map(|k| vec![k])
            .map_err(|why| Error::config(format!("{what} is not an age public key: {why}")));
    }
    if t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-ssh-") {
        return Err(Error::config(format!(
            "{what} is an SSH key: Ferry encrypts only to age X25519 keys (`age1…`, made with `age-keygen`)"
        )));
    }
    let rel = t.strip_prefix("file:").unwrap_or(t);
    if rel.is_empty() {
        return Err(Error::config(format!(
            "recipient {n}: `file:` names no file"
        )));
    }
    let path = base_dir.join(rel);
    let file = KeyFile {
        neither: "an age public key (`age1…`)",
        kind: "recipients file",
        max: MAX_RECIPIENTS_FILE,
    };
    file.check(&path, &what, || {
        format!(
            "{what}: `{}` is not a recipients file (one `age1…` key per line)",
            path.display()
        )
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::config(format!("{what}: cannot read the recipients file: {e}"))
            .with("file", path.display())
    })?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("recipients file `{}` line {}", path.display(), i + 1);
        if looks_secret(line) {
            return Err(Error::config(format!(
                "{at} is a secret key: a recipients file lists public keys (`age1…`, printed by `age-keygen -y`); move the secret key somewhere safe"
            )));
        }
        let key = parse_public_key(line).map_err(|why| {
            Error::config(format!(
                "{at} ({}) is not an age public key: {why}",
                shown(line)
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::config(format!(
            "{what}: the recipients file `{}` holds no public key",
            path.display()
        )));
    }
    Ok(keys)
}

fn parse_public_key(s: &str) -> std::result::Result<x25519::Recipient, String> {
    x25519::Recipient::from_str(s).map_err(|e| {
        let e = e.to_string();
        if e.contains("HRP") || e.contains("hrp") {
            "only X25519 keys (`age1` followed by 58 characters) are supported".to_string()
        } else {
            format!("{e} (an X25519 key is `age1` followed by 58 characters)")
        }
    })
}

// ----------------------------------------------------------------------------------------
// Identities

/// What Ferry decrypts with: X25519 secret keys (`AGE-SECRET-KEY-1…`) and/or a passphrase.
/// Each is tried on every file; none is ever printed.
pub struct Identities {
    keys: Vec<x25519::Identity>,
    passphrase: Option<scrypt::Identity>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_keys(f, "Identities", self.public_keys(), self.has_passphrase())
    }
}

/// Public keys and whether there is a passphrase, never the passphrase.
fn debug_keys(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    keys: Vec<String>,
    passphrase: bool,
) -> fmt::Result {
    f.debug_struct(name)
        .field("keys", &keys)
        .field("passphrase", &passphrase.then_some("[redacted]"))
        .finish()
}

impl Identities {
    /// The secret keys in `keys`: one `AGE-SECRET-KEY-1…` per line, as `age-keygen`
    /// writes them (blank lines and `#` comments ignored). Errors name the line, never
    /// its text.
    pub fn parse(keys: &Secret) -> Result<Self> {
        Identities::new(Some(keys), None)
    }

    /// A passphrase identity, for files encrypted with `age -p` or a passphrase recipient.
    pub fn passphrase(passphrase: &Secret) -> Result<Self> {
        Identities::new(None, Some(passphrase))
    }

    /// Secret keys (as [`Identities::parse`]) and/or a passphrase; at least one.
    pub fn new(keys: Option<&Secret>, passphrase: Option<&Secret>) -> Result<Self> {
        let keys = match keys {
            Some(k) => parse_identities(k)?,
            None => Vec::new(),
        };
        let passphrase = match passphrase {
            None => None,
            Some(p) if p.is_empty() => return Err(Error::config("the age passphrase is empty")),
            Some(p) => {
                let mut id = scrypt::Identity::new(SecretString::from(p.expose().to_string()));
                id.set_max_work_factor(MAX_PASSPHRASE_WORK_FACTOR);
                Some(id)
            }
        };
        if keys.is_empty() && passphrase.is_none() {
            return Err(Error::config(
                "no age identity: give a secret key (`AGE-SECRET-KEY-1…`) or a passphrase",
            ));
        }
        Ok(Identities { keys, passphrase })
    }

    /// The public keys (`age1…`) of the secret keys, in order.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Whether a passphrase is among the identities.
    pub fn has_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// Lowers (or raises, up to 30) the highest scrypt work factor (log2 N) a passphrase
    /// identity accepts; default [`MAX_PASSPHRASE_WORK_FACTOR`]. A file's header names its
    /// own work factor, so this bounds the memory (128 · 8 · 2^N bytes) and time any file
    /// can make decryption spend: lower it where files come from parties you do not trust,
    /// as the fuzz targets do. No effect without a passphrase.
    pub fn set_max_work_factor(&mut self, log_n: u8) -> Result<()> {
        if !(1..=30).contains(&log_n) {
            return Err(Error::config(format!(
                "scrypt work factor must be 1 to 30, not {log_n}"
            )));
        }
        if let Some(p) = &mut self.passphrase {
            p.set_max_work_factor(log_n);
        }
        Ok(())
    }

    fn iter(&self) -> impl Iterator<Item = &dyn ::age::Identity> {
        self.keys
            .iter()
            .map(|k| k as &dyn ::age::Identity)
            .chain(self.passphrase.iter().map(|p| p as &dyn ::age::Identity))
    }
}

fn parse_identities(secret: &Secret) -> Result<Vec<x25519::Identity>> {
    let mut keys = Vec::new();
    for (i, line) in secret.expose().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("AGE-PLUGIN-") {
            return Err(Error::config(format!(
                "line {n} of the age identity is a plugin identity: Ferry supports only X25519 secret keys (`AGE-SECRET-KEY-1…`)"
            )));
        }
        if !upper.starts_with("AGE-SECRET-KEY-1") {
            let hint = if line.to_ascii_lowercase().starts_with("age1") {
                ": it is a public key; decrypting needs the secret key, made by `age-keygen`"
            } else {
                ""
            };
            return Err(Error::config(format!(
                "line {n} of the age identity is not a secret key (`AGE-SECRET-KEY-1…`){hint}"
            )));
        }
        let key = x25519::Identity::from_str(line).map_err(|why| {
            Error::config(format!(
                "line {n} of the age identity is not a valid secret key ({why})"
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::config(
            "the age identity holds no secret key (`AGE-SECRET-KEY-1…`)",
        ));
    }
    Ok(keys)
}

/// A new X25519 key pair: the secret key (`AGE-SECRET-KEY-1…`, registered with the leak
/// guard) and its public key (`age1…`), to hand to whoever encrypts for it.
pub fn generate_identity() -> (Secret, String) {
    let id = x25519::Identity::generate();
    let secret = Secret::new(id.to_string().expose_secret().to_string());
    (secret, id.to_public().to_string())
}

/// The public key (`age1…`) of a secret key; `identity` must hold exactly one.
pub fn public_key(identity: &Secret) -> Result<String> {
    let keys = parse_identities(identity)?;
    match keys.as_slice() {
        [one] => Ok(one.to_public().to_string()),
        many => Err(Error::config(format!(
            "the age identity holds {} secret keys; give one",
            many.len()
        ))),
    }
}

// ----------------------------------------------------------------------------------------
// Streams

mod header;
mod payload;
mod reader;
mod writer;

pub use reader::DecryptingReader;
pub use writer::{encrypt_writer, EncryptingWriter};

/// The Ferry error inside an I/O error from a [`DecryptingReader`] (a damaged or
/// truncated file), if it is one.
pub fn decryption_error(e: &io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// Reads the header of the age file `input` and unlocks it with `identities`; returns a
/// reader of the plaintext. A key that does not fit or a wrong passphrase is
/// [`ErrorKind::AuthFailed`]; input that is not an age file, or whose header is damaged
/// or truncated, is [`ErrorKind::DataInvalid`].
pub fn decrypt_reader<R: Read>(identities: &Identities, input: R) -> Result<DecryptingReader<R>> {
    let mut input = io::BufReader::with_capacity(8 << 10, input);
    let head = header::read(&mut input).map_err(header_error)?;
    let nonce = header::read_nonce(&mut input).map_err(header_error)?;
    let scrypt = head.is_scrypt();
    let file_key = identities
        .iter()
        .find_map(|id| id.unwrap_stanzas(&head.stanzas))
        .unwrap_or(Err(DecryptError::NoMatchingKeys))
        .map_err(|e| match e {
            DecryptError::NoMatchingKeys if scrypt && !identities.has_passphrase() => {
                Error::new(
                    ErrorKind::AuthFailed,
                    "the age file is encrypted with a passphrase, and no passphrase was given",
                )
            }
            DecryptError::NoMatchingKeys if !scrypt && identities.keys.is_empty() => Error::new(
                ErrorKind::AuthFailed,
                "the age file is encrypted to public keys, and only a passphrase was given: give the secret key (`AGE-SECRET-KEY-1…`)",
            ),
            DecryptError::NoMatchingKeys => Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "none of the age identities given ({}) can decrypt the file: it was encrypted to other public keys (or its header is damaged)",
                    identities.public_keys().join(", ")
                ),
            ),
            DecryptError::DecryptionFailed | DecryptError::KeyDecryptionFailed if scrypt => {
                Error::new(ErrorKind::AuthFailed, "wrong passphrase for the age file")
            }
            other => header_error(other),
        })?;
    if !head.mac_matches(file_key.expose_secret()) {
        return Err(header_error(DecryptError::InvalidMac));
    }
    let key = payload::payload_key(file_key.expose_secret(), &nonce);
    Ok(DecryptingReader::new(input, key))
}

/// Largest age header read, in bytes (an X25519 recipient's stanza is 98): past it, the
/// input is refused as damaged or not an age file, before it fills memory.
pub const MAX_HEADER_BYTES: u64 = 16 << 10;

/// Most stanzas (recipients) an age header may have, for the same reason.
pub const MAX_STANZAS: u32 = 128;

#[derive(Debug)]
struct HeaderTooLarge;

impl fmt::Display for HeaderTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the age header is larger than {MAX_HEADER_BYTES} bytes or {MAX_STANZAS} recipients"
        )
    }
}

impl std::error::Error for HeaderTooLarge {}
fn header_error(e: DecryptError) -> Error {
    let msg = match e {
        DecryptError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the age file is truncated inside its header (or empty)".to_string()
        }
        DecryptError::Io(e) if e.get_ref().is_some_and(|i| i.is::<HeaderTooLarge>()) => format!(
            "the age file's header is larger than {} KiB or has more than {MAX_STANZAS} recipients: it is damaged, or not an age file",
            MAX_HEADER_BYTES >> 10
        ),
        DecryptError::Io(e) => {
            return Error::new(ErrorKind::Io, format!("cannot read the age file: {e}"))
        }
        DecryptError::InvalidHeader => format!(
            "not an age file, or its header is damaged (an age file starts with `{MAGIC}`)"
        ),
        DecryptError::InvalidMac => {
            "the age file's header is damaged or was altered (its MAC does not match)".to_string()
        }
        DecryptError::UnknownFormat => {
            "the file is in an age format version Ferry does not know (only v1)".to_string()
        }
        DecryptError::ExcessiveWork { required, .. } => format!(
            "the age file's passphrase work factor 2^{required} is above the limit this reader accepts (2^{MAX_PASSPHRASE_WORK_FACTOR} unless lowered)"
        ),
        DecryptError::DecryptionFailed | DecryptError::KeyDecryptionFailed => {
            "the age file's header is damaged or was altered (a key stanza does not decrypt)"
                .to_string()
        }
        other => format!("cannot decrypt the age file: {other}"),
    };
    Error::data(msg)
}

// ----------------------------------------------------------------------------------------
// Files

/// Encrypts `src` into the age file `dst` for `recipients`; returns the bytes of plaintext.
/// Writes a temporary file in `dst`'s folder and renames it over `dst` only on success.
pub fn encrypt_file(src: &Path, dst: &Path, recipients: &Recipients) -> Result<u64> {
    let input = File::open(src).map_err(|e| Error::io(e, "cannot open", src))?;
    encrypt_into(input, Some(src), dst, recipients)
}

/// Encrypts everything `input` yields (standard input, a download …) into the age file
/// `dst`, as [`encrypt_file`] does.
pub fn encrypt_to_file(input: impl Read, dst: &Path, recipients: &Recipients) -> Result<u64> {
    encrypt_into(input, None, dst, recipients)
}

fn encrypt_into(
    mut input: impl Read,
    src: Option<&Path>,
    dst: &Path,
    recipients: &Recipients,
) -> Result<u64> {
    write_atomically(dst, false, |out| {
        let mut w = encrypt_writer(recipients, BufWriter::with_capacity(BUFFER, out))?;
        let n = copy(&mut input, &mut w, src, Some(dst))?;
        w.finish()?
            .flush()
            .map_err(|e| Error::io(e, "cannot write", dst))?;
        Ok(n)
    })
}

/// Decrypts the age file `src` into `dst` with `identities`; returns the bytes of
/// plaintext. Writes a temporary file (mode 0600 on Unix) in `dst`'s folder and renames it
/// over `dst` only once the whole file was authenticated: a wrong key, a damaged or a
/// truncated file leaves no output file (and an existing `dst` untouched).
pub fn decrypt_file(src: &Path, dst: &Path, identities: &Identities) -> Result<u64> {
    let input = File::open(src).map_err(|e| Error::io(e, "cannot open", src))?;
    decrypt_into(input, Some(src), dst, identities)
}

/// Decrypts the age file `input` yields (standard input, a download …) into `dst`, as
/// [`decrypt_file`] does: no output file unless the whole input was authenticated.
pub fn decrypt_to_file(input: impl Read, dst: &Path, identities: &Identities) -> Result<u64> {
    decrypt_into(input, None, dst, identities)
}

fn decrypt_into(
    input: impl Read,
    src: Option<&Path>,
    dst: &Path,
    identities: &Identities,
) -> Result<u64> {
    let mut reader = decrypt_reader(identities, input).map_err(|e| match src {
        Some(src) => e.with("file", src.display()),
        None => e,
    })?;
    write_atomically(dst, true, |out| {
        let mut w = BufWriter::with_capacity(BUFFER, out);
        let n = copy(&mut reader, &mut w, src, Some(dst))?;
        w.flush().map_err(|e| Error::io(e, "cannot write", dst))?;
        Ok(n)
    })
}

/// Copies `input` to `output` in 64 KiB pieces; returns the bytes copied. Errors name the
/// side that failed (when known) and keep a decryption error's kind (see
/// [`decryption_error`]), so a damaged age file is [`ErrorKind::DataInvalid`], not an
/// I/O error.
pub fn copy(
    input: &mut impl Read,
    output: &mut impl Write,
    src: Option<&Path>,
    dst: Option<&Path>,
) -> Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let err = match decryption_error(&e) {
                    Some(d) => Error::new(d.kind(), d.message()),
                    None => Error::new(ErrorKind::Io, format!("cannot read: {e}")),
                };
                return Err(match src {
                    Some(src) => err.with("file", src.display()),
                    None => err,
                });
            }
        };
        if let Err(e) = output.write_all(&buf[..n]) {
            return Err(match dst {
                Some(dst) => Error::io(e, "cannot write", dst),
                None => Error::new(ErrorKind::Io, format!("cannot write: {e}")),
            });
        }
        total += n as u64;
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs `write` on a new temporary file beside `dst`, then fsyncs it and renames it over
/// `dst`; on any failure the temporary file is removed and `dst` is untouched.
fn write_atomically<T>(
    dst: &Path,
    private: bool,
    write: impl FnOnce(&mut File) -> Result<T>,
) -> Result<T> {
    let name = dst
        .file_name()
        .ok_or_else(|| Error::config(format!("`{}` is not a file name", dst.display())))?
        .to_string_lossy()
        .into_owned();
    if dst.is_dir() {
        return Err(Error::config(format!(
            "`{}` is a folder, not a file",
            dst.display()
        )));
    }
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (temp, mut file) = create_temp(&dir, &name, private)?;
    let result = write(&mut file).and_then(|value| {
        file.sync_all()
            .map_err(|e| Error::io(e, "cannot fsync", &temp))?;
        Ok(value)
    });
    drop(file);
    let result = result.and_then(|value| {
        std::fs::rename(&temp, dst)
            .map_err(|e| Error::io(e, "cannot move the finished file into place", dst))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(value)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn create_temp(dir: &Path, name: &str, private: bool) -> Result<(PathBuf, File)> {
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temp = dir.join(format!(".{name}.{}-{n}-{nanos}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        match options.open(&temp) {
            Ok(f) => return Ok((temp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(e, "cannot create a temporary file", &temp)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift64*), generated on the fly.
    struct Noise {
        state: u64,
        left: u64,
    }

    impl Noise {
        fn new(seed: u64, len: u64) -> Self {
            Noise {
                state: seed | 1,
                left: len,
            }
        }
    }

    impl Read for Noise {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (buf.len() as u64).min(self.left) as usize;
            for chunk in buf[..n].chunks_mut(8) {
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                let v = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            self.left -= n as u64;
            Ok(n)
        }
    }

    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        Noise::new(seed, len as u64).read_to_end(&mut v).unwrap();
        v
    }

    fn keys() -> (Identities, Recipients) {
        let (secret, public) = generate_identity();
        (
            Identities::parse(&secret).unwrap(),
            Recipients::parse(&[public], Path::new(".")).unwrap(),
        )
    }

    fn encrypt(r: &Recipients, data: &[u8]) -> Vec<u8> {
        let mut w = encrypt_writer(r, Vec::new()).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn decrypt(ids: &Identities, file: &[u8]) -> Result<Vec<u8>> {
        let mut r = decrypt_reader(ids, file)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| match decryption_error(&e) {
                Some(d) => Error::new(d.kind(), d.message()),
                None => Error::new(ErrorKind::Io, e.to_string()),
            })?;
        Ok(out)
    }

    /// Where the payload starts: after the header's `--- mac` line and the 16-byte nonce.
    fn payload_start(file: &[u8]) -> usize {
        let at = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
        let end = at + file[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        end + 16
    }

    #[test]
    fn age_round_trips_at_chunk_boundaries() {
        let (ids, r) = keys();
        for len in [0, 1, 64 << 10, (64 << 10) + 1, 3 * (64 << 10) + 17] {
            let data = noise(len as u64 + 7, len);
            let file = encrypt(&r, &data);
            assert!(file.starts_with(b"age-encryption.org/v1\n-> X25519 "));
            let chunks = len.div_ceil(64 << 10).max(1);
            assert_eq!(file.len() - payload_start(&file), len + 16 * chunks);
            assert_eq!(decrypt(&ids, &file).unwrap(), data, "length {len}");
        }
    }

    #[test]
    fn age_round_trips_100_mb_streamed() {
        let len: u64 = 100 << 20;
        let dir = std::env::temp_dir().join(format!("ferry-age-100mb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.age");
        let (ids, r) = keys();
        let mut w = encrypt_writer(&r, BufWriter::new(File::create(&path).unwrap())).unwrap();
        assert_eq!(io::copy(&mut Noise::new(42, len), &mut w).unwrap(), len);
        w.finish().unwrap().flush().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > len && size < len + len / 1000, "{size}");
        // compare against the same noise generated again, 1 MiB at a time
        let mut plain =
            decrypt_reader(&ids, io::BufReader::new(File::open(&path).unwrap())).unwrap();
        let mut want = Noise::new(42, len);
        let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut plain, &mut a);
            assert_eq!(read_full(&mut want, &mut b[..n.max(1)]), n);
            assert!(a[..n] == b[..n], "differs near byte {total}");
            total += n as u64;
            if n < a.len() {
                break;
            }
        }
        assert_eq!(total, len);
        assert_eq!(plain.position(), len);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
        crate::fill::read_up_to(r, buf).unwrap()
    }

    #[test]
    fn age_tampering_fails_cleanly_and_leaves_no_output_file() {
        let (ids, r) = keys();
        let data = noise(9, 3 * (64 << 10) + 100);
        let good = encrypt(&r, &data);
        let p = payload_start(&good);
        let chunk = (64 << 10) + 16;
        let mut cases: Vec<(&str, Vec<u8>, ErrorKind, &str)> = Vec::new();
        let mut f = good.clone();
        f[0] ^= 1; // the magic line
        cases.push(("header bit", f, ErrorKind::DataInvalid, "not an age file"));
        let mut f = good.clone();
        other_base64(&mut f, 40); // the X25519 stanza's ephemeral share
        cases.push((
            "stanza",
            f,
            ErrorKind::AuthFailed,
            "none of the age identities",
        ));
        let mut f = good.clone();
        let mac = good.windows(4).position(|w| w == b"--- ").unwrap() + 6;
        other_base64(&mut f, mac);
        cases.push((
            "header MAC",
            f,
            ErrorKind::DataInvalid,
            "MAC does not match",
        ));
        let mut f = good.clone();
        f[p + 70_000] ^= 0x80;
        cases.push((
            "payload bit",
            f,
            ErrorKind::DataInvalid,
            "chunk 1 (from plaintext byte 65536) failed",
        ));
        let f = good[..p + 3 * chunk].to_vec();
        cases.push(("last chunk dropped", f, ErrorKind::DataInvalid, "truncated"));
        let mut f = good.clone();
        f[p..p + chunk].copy_from_slice(&good[p + chunk..p + 2 * chunk]);
        f[p + chunk..p + 2 * chunk].copy_from_slice(&good[p..p + chunk]);
        cases.push(("chunks swapped", f, ErrorKind::DataInvalid, "chunk 0"));
        let f = good[..30].to_vec();
        cases.push(("header truncated", f, ErrorKind::DataInvalid, "truncated"));
        let mut f = good.clone();
        f.extend_from_slice(b"extra");
        cases.push((
            "trailing data",
            f,
            ErrorKind::DataInvalid,
            "failed authentication",
        ));
        cases.push((
            "not age",
            b"id,name\n1,alpha\n2,beta\n3,gamma\n".to_vec(),
            ErrorKind::DataInvalid,
            "not an age file",
        ));
        let (other, _) = keys();
        let dir = tempfile::tempdir().unwrap();
        for (name, file, kind, needle) in cases.iter().cloned().chain([(
            "wrong identity",
            good.clone(),
            ErrorKind::AuthFailed,
            "other public keys",
        )]) {
            let with = if name == "wrong identity" {
                &other
            } else {
                &ids
            };
            let err = decrypt(with, &file).unwrap_err();
            assert_eq!(err.kind(), kind, "{name}: {err}");
            assert!(err.to_string().contains(needle), "{name}: {err}");
            let src = dir.path().join("in.age");
            std::fs::write(&src, &file).unwrap();
            let dst = dir.path().join("out.csv");
            let err = decrypt_file(&src, &dst, with).unwrap_err();
            assert_eq!(err.kind(), kind, "{name}: {err}");
            assert!(
                err.to_string().contains("in.age"),
                "{name}: names the file: {err}"
            );
            let err = decrypt_to_file(&file[..], &dst, with).unwrap_err();
            assert_eq!(err.kind(), kind, "{name}: {err}");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, vec!["in.age"], "{name}: output left behind");
        }
        // an existing output is left untouched by a failed decryption
        let dst = dir.path().join("kept.csv");
        std::fs::write(&dst, "old").unwrap();
        let src = dir.path().join("in.age");
        std::fs::write(&src, &cases[3].1).unwrap();
        decrypt_file(&src, &dst, &ids).unwrap_err();
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "old");
        // and the good file decrypts through the same path
        std::fs::write(&src, &good).unwrap();
        assert_eq!(decrypt_file(&src, &dst, &ids).unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&dst).unwrap(), data);
    }

    /// Replaces the base64 character at `i` by another valid one (a different bit pattern
    /// that still parses).
    fn other_base64(f: &mut [u8], i: usize) {
        // the next letter or digit (`+` and `/` are base64 too), within a few characters
        let i = (i..i + 8)
            .find(|&j| f[j].is_ascii_alphanumeric())
            .expect("a base64 letter");
        f[i] = if f[i] == b'A' { b'B' } else { b'A' };
    }

    /// An age file for a new key whose payload is `chunks` (plaintext, last flag) sealed
    /// as given, rules or not: to test what the reader accepts.
    fn crafted(chunks: &[(&[u8], bool)]) -> (Identities, Vec<u8>) {
        use ::age::Recipient as _;
        let (secret, public) = generate_identity();
        let r = parse_public_key(&public).unwrap();
        let file_key = age_core::format::FileKey::new(Box::new([7u8; 16]));
        let (stanzas, _) = r.wrap_file_key(&file_key).unwrap();
        let mut file = header::write(&stanzas, file_key.expose_secret());
        let nonce = [9u8; 16];
        file.extend_from_slice(&nonce);
        let key = payload::payload_key(file_key.expose_secret(), &nonce);
        for (i, (plain, last)) in chunks.iter().enumerate() {
            let mut out = vec![0u8; plain.len() + 16];
            payload::seal(&key, i as u64, *last, plain, &mut out);
            file.extend_from_slice(&out);
        }
        (Identities::parse(&secret).unwrap(), file)
    }

    /// A hand-built payload's case: its name, its chunks (plaintext, flagged last) and the
    /// error it must fail with (`None`: it must open).
    type PayloadCase<'a> = (&'a str, Vec<(&'a [u8], bool)>, Option<&'a str>);

    #[test]
    fn age_payload_rules_of_the_spec() {
        let full = noise(3, 64 << 10);
        let cases: [PayloadCase; 7] = [
            (
                "empty payload, one empty last chunk",
                vec![(b"", true)],
                None,
            ),
            ("full last chunk", vec![(&full, false), (&full, true)], None),
            (
                "short last chunk",
                vec![(&full, false), (b"xy", true)],
                None,
            ),
            (
                "empty last chunk after a full one",
                vec![(&full, false), (b"", true)],
                Some("chunk 1 (from plaintext byte 65536) failed"),
            ),
            (
                "no chunk flagged last",
                vec![(&full, false), (&full, false)],
                Some("truncated: it ends after 131072 bytes"),
            ),
            (
                "a chunk after the last",
                vec![(&full, true), (b"z", true)],
                Some("data after its last chunk (after 65536 bytes"),
            ),
            (
                "a short chunk in the middle",
                vec![(b"ab", false), (b"cd", true)],
                Some("chunk 0 (from plaintext byte 0) failed"),
            ),
        ];
        for (name, chunks, error) in cases {
            let (ids, file) = crafted(&chunks);
            let want: Vec<u8> = chunks.iter().flat_map(|(p, _)| p.iter().copied()).collect();
            match (decrypt(&ids, &file), error) {
                (Ok(got), None) => assert!(got == want, "{name}"),
                (Err(e), Some(needle)) => {
                    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{name}: {e}");
                    assert!(e.to_string().contains(needle), "{name}: {e}");
                }
                (got, _) => panic!("{name}: {:?}", got.map(|g| g.len())),
            }
            // a seek to the end agrees: it authenticates the last chunk
            let mut r = decrypt_reader(&ids, io::Cursor::new(&file)).unwrap();
            match (io::Seek::seek(&mut r, io::SeekFrom::End(0)), error) {
                (Ok(end), None) => assert_eq!(end, want.len() as u64, "{name}"),
                (Err(e), Some(_)) => assert!(decryption_error(&e).is_some(), "{name}: {e}"),
                (got, _) => {
                    // the chunk flagged last authenticates: only streaming finds the rest
                    assert!(name == "a chunk after the last", "{name}: {got:?}")
                }
            }
        }
    }

    #[test]
    fn age_seeks_land_on_the_right_bytes_across_batches() {
        use std::io::Seek;
        let (ids, r) = keys();
        let len = 70 * (64 << 10) + 123;
        let data = noise(11, len);
        let file = encrypt(&r, &data);
        let mut plain = decrypt_reader(&ids, io::Cursor::new(&file)).unwrap();
        assert_eq!(plain.seek(io::SeekFrom::End(0)).unwrap(), len as u64);
        let mut buf = vec![0u8; 200_000];
        for at in [0, 1, 65_535, 65_536, 3 << 20, len - 100, len / 2, 17] {
            assert_eq!(
                plain.seek(io::SeekFrom::Start(at as u64)).unwrap(),
                at as u64
            );
            let n = read_full(&mut plain, &mut buf);
            assert_eq!(n, buf.len().min(len - at), "at {at}");
            assert!(buf[..n] == data[at..at + n], "bytes at {at}");
            assert_eq!(plain.position(), (at + n) as u64);
        }
        // streaming after seeking back to the start reads everything
        plain.seek(io::SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        plain.read_to_end(&mut all).unwrap();
        assert!(all == data);
        // past the end: nothing to read
        assert_eq!(plain.seek(io::SeekFrom::End(10)).unwrap(), len as u64 + 10);
        assert_eq!(plain.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn age_header_round_trips_stanza_bodies_at_line_boundaries() {
        let key = [5u8; 16];
        // 48 and 96 bytes are whole 64-column lines: an empty line must follow
        let stanzas: Vec<age_core::format::Stanza> = [0usize, 1, 47, 48, 49, 96, 100]
            .iter()
            .map(|&n| age_core::format::Stanza {
                tag: format!("t{n}"),
                args: vec!["a".into(), "b+/=".into()],
                body: noise(n as u64, n),
            })
            .collect();
        let text = header::write(&stanzas, &key);
        let mut input = &text[..];
        let h = header::read(&mut input).unwrap();
        assert!(input.is_empty());
        assert_eq!(h.stanzas, stanzas);
        assert!(h.mac_matches(&key) && !h.mac_matches(&[6u8; 16]));
        // the 48-byte body: a full line, then an empty one
        assert!(String::from_utf8_lossy(&text).contains("-> t48 a b+/=\n"));
        let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
        let at = lines.iter().position(|l| l.starts_with("-> t48")).unwrap();
        assert_eq!((lines[at + 1].len(), lines[at + 2]), (64, ""));
        // refused: padding, a missing empty line, a space too many, an unknown version
        for (bad, why) in [
            (
                text_with(&text, "-> t1 a b+/=\n", "-> t1  a b+/=\n"),
                "double space",
            ),
            (
                text_with(&text, "age-encryption.org/v1", "age-encryption.org/v2"),
                "v2",
            ),
            (
                b"age-encryption.org/v1\n-> X\nAA=\n--- x\n".to_vec(),
                "padding",
            ),
            (b"age-encryption.org/v1\n--- x\n".to_vec(), "no stanza"),
        ] {
            let err = header::read(&mut &bad[..]).err().expect(why);
            let expected = if why == "v2" {
                matches!(err, DecryptError::UnknownFormat)
            } else {
                matches!(err, DecryptError::InvalidHeader)
            };
            assert!(expected, "{why}: {err:?}");
        }
    }

    fn text_with(text: &[u8], from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(text.to_vec())
            .unwrap()
            .replacen(from, to, 1)
            .into_bytes()
    }

    #[test]
    fn age_several_recipients_each_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let pairs: Vec<(Secret, String)> = (0..3).map(|_| generate_identity()).collect();
        // one inline, two in a recipients file with comments
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(
            dir.path().join("keys/acme.pub"),
            format!("# acme\n\n{}\n  {}  \n", pairs[1].1, pairs[2].1),
        )
        .unwrap();
        let entries = vec![
            pairs[0].1.clone(),
            "file:keys/acme.pub".to_string(),
            "keys/acme.pub".to_string(),
        ];
        let r = Recipients::parse(&entries, dir.path()).unwrap();
        assert_eq!(r.public_keys().len(), 3, "duplicates removed");
        assert!(format!("{r:?}").contains(&pairs[0].1));
        let file = encrypt(&r, b"shared");
        for (secret, public) in &pairs {
            let ids = Identities::parse(secret).unwrap();
            assert_eq!(ids.public_keys(), vec![public.clone()]);
            assert_eq!(public_key(secret).unwrap(), *public);
            assert_eq!(decrypt(&ids, &file).unwrap(), b"shared");
        }
        // an identity file with comments and two keys, as age-keygen writes them
        let both = Secret::new(format!(
            "# created: 2024-01-01T00:00:00Z\n# public key: {}\n{}\n{}\n",
            pairs[0].1,
            pairs[0].0.expose(),
            pairs[1].0.expose()
        ));
        assert_eq!(Identities::parse(&both).unwrap().public_keys().len(), 2);
        assert!(public_key(&both).is_err());
    }

    #[test]
    fn age_passphrase_recipient() {
        let pw = Secret::new("correct horse battery staple");
        let mut r = Recipients::passphrase(&pw).unwrap();
        r.set_work_factor(10).unwrap();
        assert!(r.has_passphrase());
        let file = encrypt(&r, b"secret rows");
        assert!(String::from_utf8_lossy(&file[..80]).contains("-> scrypt "));
        let ids = Identities::passphrase(&pw).unwrap();
        assert_eq!(decrypt(&ids, &file).unwrap(), b"secret rows");
        // keys and a passphrase together: the passphrase is tried too
        let (secret, _) = generate_identity();
        let ids = Identities::new(Some(&secret), Some(&pw)).unwrap();
        assert_eq!(decrypt(&ids, &file).unwrap(), b"secret rows");
        let err = decrypt(
            &Identities::passphrase(&Secret::new("wrong!")).unwrap(),
            &file,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuthFailed, "{err}");
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err = decrypt(&Identities::parse(&secret).unwrap(), &file).unwrap_err();
        assert!(err.to_string().contains("no passphrase was given"), "{err}");
        let (_, r) = keys();
        let err = decrypt(&ids_passphrase_only(&pw), &encrypt(&r, b"x")).unwrap_err();
        assert!(err.to_string().contains("only a passphrase"), "{err}");
        // the default work factor is the age command's (not run here: scrypt 2^18 takes
        // tens of seconds in an unoptimised build; the CLI interop test covers it)
        assert_eq!(PASSPHRASE_WORK_FACTOR, 18);
    }

    fn ids_passphrase_only(pw: &Secret) -> Identities {
        Identities::passphrase(pw).unwrap()
    }

    #[test]
    fn age_bad_recipients_and_identities_are_named_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = generate_identity();
        std::fs::write(dir.path().join("bad.pub"), format!("{public}\nage1nope\n")).unwrap();
        std::fs::write(dir.path().join("leaked.pub"), secret.expose()).unwrap();
        std::fs::write(dir.path().join("empty.pub"), "# nothing\n").unwrap();
        let pw = Secret::new("pw-canary-123");
        for (entries, pass, needle) in [
            (vec![], None, "no age recipients"),
            (vec!["age1xyz".to_string()], None, "recipient 1 (`age1xyz`)"),
            (
                vec![secret.expose().to_string()],
                None,
                "recipient 1 is a secret key",
            ),
            (vec!["ssh-ed25519 AAAA".into()], None, "SSH key"),
            (
                vec!["keys/missing.pub".into()],
                None,
                "neither an age public key",
            ),
            (vec!["file:bad.pub".into()], None, "line 2 (`age1nope`)"),
            (vec!["leaked.pub".into()], None, "line 1 is a secret key"),
            (vec!["empty.pub".into()], None, "holds no public key"),
            (vec![public.clone()], Some(&pw), "cannot be combined"),
        ] {
            let err = Recipients::new(&entries, pass, dir.path()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
            let text = format!("{err} {err:?}");
            assert!(text.contains(needle), "{needle}: {text}");
            assert!(!text.contains(secret.expose()), "secret leaked: {text}");
            assert!(!text.contains(pw.expose()), "passphrase leaked: {text}");
        }
        for (text, needle) in [
            (public.clone(), "is a public key"),
            ("AGE-SECRET-KEY-1NOTAKEY".into(), "not a valid secret key"),
            ("# only a comment".into(), "holds no secret key"),
            (format!("{}\ngarbage-canary", secret.expose()), "line 2"),
        ] {
            let err = Identities::parse(&Secret::new(text.clone())).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
            assert!(!err.to_string().contains("canary") && !err.to_string().contains("NOTAKEY"));
        }
        let ids = Identities::new(Some(&secret), Some(&pw)).unwrap();
        let dbg = format!("{ids:?}");
        assert!(
            !dbg.contains(pw.expose()) && !dbg.contains(secret.expose()),
            "{dbg}"
        );
        assert!(is_age_path("out/a.csv.AGE") && !is_age_path("a.csv"));
    }
}
