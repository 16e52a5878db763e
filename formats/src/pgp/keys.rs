//! OpenPGP keys as clients and `gpg` export them: our secret key(s) with their passphrase
//! (from the vault), and the client's public keys (inline or from a file).

use std::fmt;
use std::io::Read;
use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
use pgp::types::{KeyDetails, Password, SigningKey};

use ferry_core::{Error, ErrorKind, Result, Secret};

use super::hex;
use crate::keyfile::KeyFile;

/// Largest key file read (a key ring of a few keys is a few KiB).
const MAX_KEY_FILE: u64 = 1 << 20;

const PUBLIC_BLOCK: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const SECRET_BLOCK: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";

/// Our secret keys (as `gpg --export-secret-keys --armor` writes them) and the passphrase
/// that unlocks them. Checked when parsed: a locked key without a passphrase, or a wrong
/// passphrase, fails here, before any file is read. Never printed.
pub struct SecretKeys {
    pub(crate) keys: Vec<SignedSecretKey>,
    passphrase: Option<Secret>,
}

impl SecretKeys {
    /// The secret keys in `armored` (one or more blocks, armored or binary), unlocked with
    /// `passphrase` when they are protected. Errors are [`ErrorKind::ConfigInvalid`], or
    /// [`ErrorKind::AuthFailed`] for a passphrase that does not unlock a key; they name the
    /// key by fingerprint, never its text.
    pub fn parse(armored: &Secret, passphrase: Option<&Secret>) -> Result<Self> {
        let text = armored.expose();
        if text.trim().is_empty() {
            return Err(Error::config("the PGP secret key is empty"));
        }
        if text.contains(PUBLIC_BLOCK) && !text.contains(SECRET_BLOCK) {
            return Err(Error::config(
                "the PGP secret key is a public key block: decrypting and signing need the secret key (`gpg --export-secret-keys --armor <fingerprint>`)",
            ));
        }
        let (parsed, _) = SignedSecretKey::from_reader_many(text.as_bytes()).map_err(|e| {
            Error::config(format!(
                "the PGP secret key cannot be read ({e}): give the armored block `gpg --export-secret-keys --armor` prints"
            ))
        })?;
        let mut keys = Vec::new();
        for (i, key) in parsed.enumerate() {
            let key = key.map_err(|e| {
                Error::config(format!(
                    "secret key {} of the PGP secret key block cannot be read: {e}",
                    i + 1
                ))
            })?;
            key.verify_bindings().map_err(|e| {
                Error::config(format!(
                    "the PGP secret key {} has invalid self-signatures ({e}): export it again with gpg",
                    fingerprint(&key.primary_key)
                ))
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::config(
                "the PGP secret key block holds no secret key",
            ));
        }
        let passphrase = match passphrase {
            Some(p) if p.is_empty() => return Err(Error::config("the PGP passphrase is empty")),
            p => p.cloned(),
        };
        let keys = SecretKeys { keys, passphrase };
        keys.check_unlock()?;
        Ok(keys)
    }

    /// Checks every protected key (primary and subkeys) opens with the passphrase.
    fn check_unlock(&self) -> Result<()> {
        let pw = self.password();
        for key in &self.keys {
            let fp = fingerprint(&key.primary_key);
            let mut parts: Vec<(bool, Box<dyn Fn() -> bool + '_>)> = vec![(
                key.primary_key.secret_params().is_encrypted(),
                Box::new(|| key.primary_key.unlock(&pw, |_, _| Ok(())).is_ok()),
            )];
            for sub in &key.secret_subkeys {
                parts.push((
                    sub.key.secret_params().is_encrypted(),
                    Box::new(|| sub.key.unlock(&pw, |_, _| Ok(())).is_ok()),
                ));
            }
            for (locked, opens) in parts {
                if !locked {
                    continue;
                }
                if self.passphrase.is_none() {
                    return Err(Error::config(format!(
                        "the PGP secret key {fp} is protected by a passphrase: set `pgp_passphrase = \"${{secret:…}}\"`"
                    )));
                }
                if !opens() {
                    return Err(Error::new(
                        ErrorKind::AuthFailed,
                        format!("wrong passphrase for the PGP secret key {fp}: check the secret `pgp_passphrase` refers to"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The passphrase as rPGP takes it (empty when there is none).
    pub(crate) fn password(&self) -> Password {
        match &self.passphrase {
            Some(p) => Password::from(p.expose()),
            None => Password::empty(),
        }
    }

    /// The fingerprints of the primary keys, as GnuPG prints them.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint(&k.primary_key))
            .collect()
    }

    /// The key that signs: the first subkey flagged for signing, else the primary key.
    pub(crate) fn signing_key(&self) -> &dyn SigningKey {
        let key = &self.keys[0];
        let sub = key.secret_subkeys.iter().find(|s| {
            s.key.algorithm().can_sign() && s.signatures.iter().any(|sig| sig.key_flags().sign())
        });
        match sub {
            Some(s) => &s.key,
            None => &key.primary_key,
        }
    }
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field("fingerprints", &self.fingerprints())
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A client's public keys (as `gpg --export --armor` writes them): who a delivery is
/// encrypted to, or whose signature a file must carry.
pub struct PublicKeys {
    pub(crate) keys: Vec<SignedPublicKey>,
}

impl PublicKeys {
    /// Public keys from `entries`, each one of:
    ///
    /// - an armored block, inline (`-----BEGIN PGP PUBLIC KEY BLOCK-----…`);
    /// - `file:<path>`, or a plain path: a key file, armored or binary, with one or more
    ///   keys (`gpg --export [--armor] <fingerprint> > client.asc`).
    ///
    /// Relative paths are relative to `base_dir`; `field` names the setting in errors,
    /// which are [`ErrorKind::ConfigInvalid`].
    pub fn parse(entries: &[String], base_dir: &Path, field: &str) -> Result<Self> {
        let mut keys: Vec<SignedPublicKey> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let what = format!("`{field}` entry {}", i + 1);
            for key in parse_entry(entry, &what, base_dir)? {
                let fp = key.primary_key.fingerprint();
                if !keys.iter().any(|k| k.primary_key.fingerprint() == fp) {
                    keys.push(key);
                }
            }
        }
        if keys.is_empty() {
            return Err(Error::config(format!(
                "`{field}` names no public key: give an armored block or `file:client.asc`"
            )));
        }
        Ok(PublicKeys { keys })
    }

    /// The fingerprints of the primary keys, as GnuPG prints them.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint(&k.primary_key))
            .collect()
    }
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

/// The fingerprint of a key, upper-case hex as GnuPG prints it.
pub(crate) fn fingerprint(key: &impl KeyDetails) -> String {
    hex(key.fingerprint().as_bytes())
}

fn parse_entry(entry: &str, what: &str, base_dir: &Path) -> Result<Vec<SignedPublicKey>> {
    let t = entry.trim();
    if t.is_empty() {
        return Err(Error::config(format!("{what} is empty")));
    }
    if t.contains(SECRET_BLOCK) {
        return Err(Error::config(format!(
            "{what} is a secret key: list the client's public key (`gpg --export --armor`), and keep secret keys in the vault"
        )));
    }
    if t.contains("-----BEGIN PGP") {
        return read_keys(t.as_bytes(), what);
    }
    let rel = t.strip_prefix("file:").unwrap_or(t);
    let path = base_dir.join(rel);
    let shown = format!("{what} (`{}`)", path.display());
    let file = KeyFile {
        neither: "an armored public key block",
        kind: "key file",
        max: MAX_KEY_FILE,
    };
    file.check(&path, &shown, || {
        format!("{shown} is not a key file (`gpg --export --armor <fingerprint>` writes one)")
    })?;
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_KEY_FILE).read_to_end(&mut bytes))
        .map_err(|e| Error::config(format!("{shown}: cannot read the key file: {e}")))?;
    if String::from_utf8_lossy(&bytes).contains(SECRET_BLOCK) {
        return Err(Error::config(format!(
            "{shown} holds a secret key: list the client's public key (`gpg --export --armor`), and keep secret keys in the vault"
        )));
    }
    read_keys(&bytes, &shown)
}

fn read_keys(bytes: &[u8], what: &str) -> Result<Vec<SignedPublicKey>> {
    let bad = |e: String| {
        Error::config(format!(
            "{what} is not an OpenPGP public key ({e}): export it with `gpg --export --armor <fingerprint>`"
        ))
    };
    let (parsed, _) = SignedPublicKey::from_reader_many(bytes).map_err(|e| bad(e.to_string()))?;
    let mut keys = Vec::new();
    for key in parsed {
        let key = key.map_err(|e| bad(e.to_string()))?;
        key.verify_bindings().map_err(|e| {
            Error::config(format!(
                "{what}: the public key {} has invalid self-signatures ({e})",
                fingerprint(&key.primary_key)
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(bad("no key found".into()));
    }
    Ok(keys)
}
