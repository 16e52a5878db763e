//! Keys of a file-like store: who a destination encrypts for (age or OpenPGP), what a
//! source decrypts with.

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Error, Result, Secret};
use ferry_formats::age::{Identities, Recipients};
use ferry_formats::pgp::{Decryptor, Encryptor, PublicKeys, SecretKeys};
use schemars::JsonSchema;
use serde::Deserialize;

/// The destination's `encrypt` table: who can decrypt what is written, in the age v1
/// format (`recipients` or `passphrase`) or in OpenPGP (`pgp_recipients`), not both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptConfig {
    /// The client's age public keys: `age1…` inline, or `file:<path>` (or a plain path)
    /// of a recipients file with one key per line and `#` comments, relative to the config
    /// file's folder. Each key can decrypt on its own (default: none; set this,
    /// `passphrase` or `pgp_recipients`).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A passphrase instead of public keys, as a reference (`"${secret:…}"`); the age
    /// format allows it only alone, so not with `recipients` (default: none).
    #[serde(default)]
    pub passphrase: Option<Secret>,
    /// The client's OpenPGP public keys, to write files `gpg --decrypt` opens: an armored
    /// block inline (`-----BEGIN PGP PUBLIC KEY BLOCK-----…`), or `file:<path>` (or a
    /// plain path) of a key file as `gpg --export --armor` writes it, relative to the
    /// config file's folder. Each key can decrypt on its own. Files are then named
    /// `<stream>.<ext>.gpg` (binary OpenPGP, as `gpg --encrypt` writes; default: none).
    #[serde(default)]
    pub pgp_recipients: Vec<String>,
    /// Our OpenPGP secret key (armored, `gpg --export-secret-keys --armor`) to sign every
    /// file with, as a reference (`"${secret:our_pgp_key}"`), so the client can check it
    /// comes from us (default: not signed). Only with `pgp_recipients`.
    #[serde(default)]
    pub pgp_sign_key: Option<Secret>,
    /// The passphrase of `pgp_sign_key`, as a reference (default: none; needed when the
    /// key is protected).
    #[serde(default)]
    pub pgp_passphrase: Option<Secret>,
    /// Write ASCII-armored OpenPGP (`.asc`, as `gpg --armor --encrypt`) instead of binary
    /// `.gpg` (default false).
    #[serde(default)]
    pub pgp_armor: bool,
}

impl EncryptConfig {
    /// Whether this table encrypts with OpenPGP (it names `pgp_recipients`).
    pub fn is_pgp(&self) -> bool {
        !self.pgp_recipients.is_empty()
    }
}

/// Who a destination's `encrypt` table encrypts for in the age format, key files read
/// relative to `base_dir` (none: written plain, or with OpenPGP: see [`pgp_encryptor`]).
pub fn recipients(
    encrypt: Option<&EncryptConfig>,
    base_dir: &Path,
) -> Result<Option<Arc<Recipients>>> {
    let Some(e) = encrypt else {
        return Ok(None);
    };
    if e.is_pgp() {
        return Ok(None);
    }
    if e.pgp_sign_key.is_some() || e.pgp_passphrase.is_some() || e.pgp_armor {
        return Err(Error::config(
            "`encrypt`: `pgp_sign_key`, `pgp_passphrase` and `pgp_armor` go with `pgp_recipients` (the client's OpenPGP public keys), which is not set",
        ));
    }
    Recipients::new(&e.recipients, e.passphrase.as_ref(), base_dir)
        .map(|r| Some(Arc::new(r)))
        .map_err(|e| Error::config(format!("`encrypt`: {}", e.message())))
}

/// Who a destination's `encrypt` table encrypts for in OpenPGP, and who signs (none: not
/// OpenPGP). Key files are read relative to `base_dir`.
pub fn pgp_encryptor(
    encrypt: Option<&EncryptConfig>,
    base_dir: &Path,
) -> Result<Option<Arc<Encryptor>>> {
    let Some(e) = encrypt.filter(|e| e.is_pgp()) else {
        return Ok(None);
    };
    if !e.recipients.is_empty() || e.passphrase.is_some() {
        return Err(Error::config(
            "`encrypt`: choose age (`recipients` / `passphrase`) or OpenPGP (`pgp_recipients`), not both: a file is encrypted one way",
        ));
    }
    let in_table = |e: Error| e.with("field", "encrypt");
    let signer = match &e.pgp_sign_key {
        Some(key) => Some(SecretKeys::parse(key, e.pgp_passphrase.as_ref()).map_err(in_table)?),
        None if e.pgp_passphrase.is_some() => {
            return Err(Error::config(
                "`encrypt`: `pgp_passphrase` unlocks `pgp_sign_key`, which is not set",
            ))
        }
        None => None,
    };
    let keys = PublicKeys::parse(&e.pgp_recipients, base_dir, "encrypt.pgp_recipients")?;
    Encryptor::new(keys, signer, e.pgp_armor)
        .map(|enc| Some(Arc::new(enc)))
        .map_err(in_table)
}

/// What decrypts a source's `.age` files: its `identity` and/or `passphrase` (none: an
/// `.age` file is an error).
pub fn identities(
    identity: Option<&Secret>,
    passphrase: Option<&Secret>,
) -> Result<Option<Arc<Identities>>> {
    if identity.is_none() && passphrase.is_none() {
        return Ok(None);
    }
    Identities::new(identity, passphrase)
        .map(|ids| Some(Arc::new(ids)))
        .map_err(|e| Error::config(format!("`identity`: {}", e.message())))
}

/// What decrypts a source's OpenPGP files: its `pgp_secret_key` unlocked with
/// `pgp_passphrase`, and, with `pgp_verify_key` (the client's public key, inline or a key
/// file relative to `base_dir`), a signature every file must carry. None: an OpenPGP file
/// is an error.
pub fn pgp_decryptor(
    secret_key: Option<&Secret>,
    passphrase: Option<&Secret>,
    verify_key: Option<&str>,
    base_dir: &Path,
) -> Result<Option<Arc<Decryptor>>> {
    let Some(key) = secret_key else {
        if passphrase.is_some() || verify_key.is_some() {
            return Err(Error::config(
                "`pgp_passphrase` and `pgp_verify_key` go with `pgp_secret_key` (our OpenPGP secret key), which is not set",
            ));
        }
        return Ok(None);
    };
    let keys = SecretKeys::parse(key, passphrase).map_err(|e| e.with("field", "pgp_secret_key"))?;
    let verify = verify_key
        .map(|v| PublicKeys::parse(&[v.to_string()], base_dir, "pgp_verify_key"))
        .transpose()?;
    Ok(Some(Arc::new(Decryptor::new(keys, verify))))
}
