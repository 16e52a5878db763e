//! Opening a file's bytes for the codec readers: decrypted when its name ends in `.age` or
//! in `.pgp`/`.gpg`/`.asc` (OpenPGP), then decompressed when it ends in `.gz`/`.zst` (or
//! as the config says).
//!
//! Each 64 KiB age chunk is authenticated before its rows are parsed, so no altered row is
//! ever read; a damaged or truncated file fails the read with `DataInvalid`, a key that
//! does not fit with `AuthFailed`. The codec reports every read error as I/O, so the
//! decryption failure is recorded on the side ([`Failure::restore`]) to keep its kind.
//!
//! An OpenPGP file is checked at its end (MDC or AEAD tag, signature), so it is decrypted
//! whole into a spool and authenticated before its first row is parsed (see
//! `ferry_formats::pgp`): its failures happen here, when the file is opened, with their
//! own kinds.

use std::io::Read;
use std::sync::{Arc, Mutex};

use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::age::{self, Identities};
use ferry_formats::archive::ArchiveKind;
use ferry_formats::codec::{decompress, detect, Compression, Format};
use ferry_formats::pgp::Decryptor;

use crate::options::StreamSpec;

/// How to decode one file: from the stream's settings, else from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// Its format.
    pub format: Format,
    /// Its compression (of the whole file).
    pub compression: Compression,
    /// Whether it is age-encrypted (its name ends in `.age`).
    pub encrypted: bool,
    /// The archive it is (`.zip`, `.tar.gz` …, under any `.age`), whose entries are read
    /// each by its own name (`format` and `compression` are then the entries' defaults).
    pub archive: Option<ArchiveKind>,
    /// Whether it is OpenPGP-encrypted (its name ends in `.pgp`, `.gpg` or `.asc`).
    pub pgp: bool,
}

impl Codec {
    /// How to decode the file `name` of `spec`; `noun` names it in messages.
    pub fn of(spec: &StreamSpec, name: &str, noun: &str) -> Result<Codec> {
        let d = detect(name);
        // `.age`, `.pgp`, `.gpg` and `.asc` are all four bytes
        let bare = match d.encrypted || d.pgp {
            true => &name[..name.len() - ".age".len()],
            false => name,
        };
        if let Some((kind, _)) = ArchiveKind::of(bare) {
            return Ok(Codec {
                format: spec.format.unwrap_or(Format::Csv),
                compression: Compression::None,
                encrypted: d.encrypted,
                pgp: d.pgp,
                archive: Some(kind),
            });
        }
        let format = spec.format.or(d.format).ok_or_else(|| {
            Error::config(format!(
                "cannot tell the format of {noun} `{name}` from its extension: set `format = \"csv\"` or `format = \"jsonl\"` for stream `{}`",
                spec.name
            ))
        })?;
        let compression = spec.compression.unwrap_or(d.compression);
        if format.random_access() && compression != Compression::None {
            let (what, plain) = match format {
                Format::Excel => ("workbook", "`.xlsx`"),
                _ => ("Parquet", "`.parquet`"),
            };
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "`{name}` is a {compression}-compressed {what} {noun}: a {what} is compressed inside the file and read with random access, so it must not be wrapped; write {plain} {noun}s"
                ),
            )
            .with("stream", &spec.name));
        }
        if format == Format::Parquet && d.pgp {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "`{name}` is an OpenPGP-encrypted Parquet {noun}: Ferry reads CSV and JSON Lines inside OpenPGP; ask for `.csv.gpg`, or decrypt it first (`gpg -d`)"
                ),
            )
            .with("stream", &spec.name));
        }
        Ok(Codec {
            format,
            compression,
            encrypted: d.encrypted,
            archive: None,
            pgp: d.pgp,
        })
    }

    /// The decoded bytes of `raw`, the file `name` (named by `noun` in error context): an
    /// age file is decrypted with `identities` as it is read, an OpenPGP file with `pgp`
    /// whole, before this returns.
    pub fn input(
        &self,
        raw: Box<dyn Read + Send>,
        name: &str,
        noun: &'static str,
        identities: Option<&Identities>,
        pgp: Option<&Decryptor>,
    ) -> Result<Input> {
        let failure = Failure::default();
        let plain: Box<dyn Read + Send> = if self.pgp {
            let keys = need_key(pgp, name, noun)?;
            Box::new(keys.decrypt(raw).map_err(|e| e.with(noun, name))?)
        } else if self.encrypted {
            let ids = need_key(identities, name, noun)?;
            let reader = age::decrypt_reader(ids, raw).map_err(|e| e.with(noun, name))?;
            Box::new(Watch {
                inner: Box::new(reader),
                failure: failure.clone(),
            })
        } else {
            raw
        };
        let inner = decompress(plain, self.compression).map_err(|e| e.with(noun, name))?;
        Ok(Input { inner, failure })
    }
}

/// Keys a file may need (age identities, an OpenPGP decryptor), and what to set when a
/// source has none.
pub trait Key {
    /// What the file is encrypted with: `age`, `OpenPGP`.
    const KIND: &'static str;
    /// The fields that give the keys.
    const HOW: &'static str;
}

impl Key for Identities {
    const KIND: &'static str = "age";
    const HOW: &'static str = "set `identity = \"${secret:…}\"` (the AGE-SECRET-KEY-1… it was encrypted for) or `passphrase`";
}

impl Key for Decryptor {
    const KIND: &'static str = "OpenPGP";
    const HOW: &'static str = "set `pgp_secret_key = \"${secret:…}\"` (our armored secret key it was encrypted to) and, if the key is protected, `pgp_passphrase`";
}

/// The keys that decrypt `name`, or the error saying there are none.
pub fn need_key<'a, K: Key>(keys: Option<&'a K>, name: &str, noun: &'static str) -> Result<&'a K> {
    keys.ok_or_else(|| {
        Error::config(format!(
            "`{name}` is encrypted ({}), and the source has no key to read it: {}",
            K::KIND,
            K::HOW
        ))
        .with(noun, name)
    })
}

/// A file's bytes, decrypted and decompressed on the fly.
pub struct Input {
    inner: Box<dyn Read + Send>,
    failure: Failure,
}

impl Input {
    /// Where this input records its decryption failure.
    pub fn failure(&self) -> Failure {
        self.failure.clone()
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// The first decryption failure (kind and message) an [`Input`] met.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<(ErrorKind, String)>>>);

impl Failure {
    /// `e`, or the decryption failure behind it with its own kind.
    pub fn restore(&self, e: Error) -> Error {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some((kind, message)) => Error::new(kind, message),
            None => e,
        }
    }
}

/// Records the first decryption failure of the reader under it.
struct Watch {
    inner: Box<dyn Read + Send>,
    failure: Failure,
}

impl Read for Watch {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Some(d) = age::decryption_error(e) {
                let mut slot = self.failure.0.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| (d.kind(), d.message().to_string()));
            }
        })
    }
}
