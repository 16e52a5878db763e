//! The client's encrypted vault: secrets, age identities and signing keys at rest.
//!
//! One file per client folder (`.ferry/secrets.vault`). Why our own small file and not
//! a keyring: it travels with the client folder, works the same on every OS and in CI,
//! and binds its contents to the client (the client id is authenticated data), so a vault
//! copied into another client's folder is refused.
//!
//! Format version 1, three lines of UTF-8 text:
//!
//! ```text
//! ferry-vault/v1
//! {"client":"acme","iterations":600000,"kdf":"pbkdf2-hmac-sha256","salt":"<base64, 16 bytes>"}
//! <base64 of: nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)>
//! ```
//!
//! * Line 2 is the header: `kdf` is `pbkdf2-hmac-sha256` (key = PBKDF2-HMAC-SHA256 of the
//!   passphrase, `salt`, `iterations`, 32 bytes) or `raw` (key = the 32 bytes of
//!   `FERRY_MASTER_KEY`, base64). `client` is the client id or `null`.
//! * The AEAD's additional data is the exact bytes of line 1, a newline, and line 2, so
//!   changing the client, the KDF or its parameters makes decryption fail.
//! * The plaintext is JSON: `{"secrets": {"NAME": "value", ...}}`.
//! * The file is written atomically with mode 0600; a fresh random nonce is used on every
//!   write (never reused under a key: the salt, hence the key, is also fresh on rotate).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::{Error, ErrorKind, Result};

/// First line of every vault file.
pub const MAGIC: &str = "ferry-vault/v1";
/// PBKDF2 iterations for new vaults (OWASP 2023 guidance for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Most PBKDF2 iterations a vault header may ask for (about 10 s of work): the count is
/// read from the file, so without a bound a damaged or hostile vault could make opening
/// it run for hours.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Environment variable holding the vault passphrase.
pub const PASSPHRASE_ENV: &str = "FERRY_PASSPHRASE";
/// Environment variable holding a raw 32-byte key, base64 (for CI).
pub const MASTER_KEY_ENV: &str = "FERRY_MASTER_KEY";

/// Environment variable holding the new passphrase of `ferry secrets rotate`.
pub const NEW_PASSPHRASE_ENV: &str = "FERRY_NEW_PASSPHRASE";
/// Environment variable holding the new raw key of `ferry secrets rotate`.
pub const NEW_MASTER_KEY_ENV: &str = "FERRY_NEW_MASTER_KEY";
/// Every variable that unlocks a vault: taken out of the environment by [`take_key_env`].
pub const KEY_ENV_VARS: [&str; 4] = [
    MASTER_KEY_ENV,
    PASSPHRASE_ENV,
    NEW_MASTER_KEY_ENV,
    NEW_PASSPHRASE_ENV,
];

/// The key variables as they were when [`take_key_env`] ran (set once, never in the
/// environment again).
static TAKEN: std::sync::OnceLock<Vec<(&'static str, SecretString)>> = std::sync::OnceLock::new();

/// Reads the vault's key variables ([`KEY_ENV_VARS`]) into memory and removes them from
/// this process's environment, so no child process (a Singer tap, an Airbyte connector, a
/// pip install) inherits them, and on Linux their text is overwritten where
/// `/proc/<pid>/environ` shows it. Call it first thing in `main`, before any other thread
/// starts: changing the environment while another thread reads it is undefined behaviour.
/// Later calls do nothing.
pub fn take_key_env() {
    if TAKEN.get().is_some() {
        return;
    }
    let mut kept = Vec::new();
    for name in KEY_ENV_VARS {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        // a value that is not UTF-8 counts as unset, as `std::env::var` reads it
        if let Some(text) = value.to_str() {
            kept.push((name, SecretString::from(text.to_string())));
        }
        drop(value);
        wipe_in_place(name);
        std::env::remove_var(name);
    }
    let _ = TAKEN.set(kept);
}

/// The value of key variable `name`: what [`take_key_env`] kept once it ran, the
/// environment before (libraries and tests that never call it).
pub fn key_env(name: &str) -> Option<SecretString> {
    match TAKEN.get() {
        Some(kept) => kept
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| SecretString::from(v.expose_secret().to_string())),
        None => std::env::var(name).ok().map(SecretString::from),
    }
}

/// Overwrites the value of `name` with NUL bytes in the environment block the process
/// started with: removing a variable only unlinks it, and `/proc/<pid>/environ` (readable
/// by every process of the same user, a tap included) shows that block.
#[cfg(target_os = "linux")]
fn wipe_in_place(name: &str) {
    extern "C" {
        static mut environ: *mut *mut std::ffi::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: called before any other thread exists (see `take_key_env`); every entry of
    // `environ` is a NUL-terminated string we may write within its length.
    unsafe {
        let mut entry = environ;
        if entry.is_null() {
            return;
        }
        while !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if text.starts_with(prefix.as_bytes()) {
                let len = text.len() - prefix.len();
                std::ptr::write_bytes((*entry).add(prefix.len()), 0, len);
            }
            entry = entry.add(1);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn wipe_in_place(_name: &str) {}

/// How the vault key is obtained.
pub enum KeySource {
    /// A passphrase, stretched with PBKDF2.
    Passphrase(SecretString),
    /// A raw 32-byte key.
    Raw(SecretBox<[u8; 32]>),
}

impl KeySource {
    /// The key source from the environment: `FERRY_MASTER_KEY` wins over `FERRY_PASSPHRASE`.
    pub fn from_env() -> Option<KeySource> {
        if let Some(k) = key_env(MASTER_KEY_ENV) {
            return Some(match B64.decode(k.expose_secret().trim()) {
                Ok(bytes) if bytes.len() == 32 => {
                    let mut key = [0u8; 32];
                    key.copy_from_slice(&bytes);
                    KeySource::Raw(SecretBox::new(Box::new(key)))
                }
                _ => KeySource::Passphrase(SecretString::from(String::new())),
            });
        }
        key_env(PASSPHRASE_ENV).map(KeySource::Passphrase)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    client: Option<String>,
    kdf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    secrets: BTreeMap<String, String>,
}

/// An open vault: its file, key and decrypted contents (kept only in memory).
pub struct VaultFile {
    path: PathBuf,
    header: Header,
    key: SecretBox<[u8; 32]>,
    contents: Contents,
}

impl std::fmt::Debug for VaultFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VaultFile({}, {} secrets)",
            self.path.display(),
            self.contents.secrets.len()
        )
    }
}

impl Drop for VaultFile {
    fn drop(&mut self) {
        for v in self.contents.secrets.values_mut() {
            // overwrite plaintext before the memory is freed
            let len = v.len();
            v.clear();
            v.extend(std::iter::repeat_n('\0', len));
        }
    }
}

fn derive(header: &Header, source: &KeySource) -> Result<SecretBox<[u8; 32]>> {
    match (header.kdf.as_str(), source) {
        ("pbkdf2-hmac-sha256", KeySource::Passphrase(p)) => {
            if p.expose_secret().is_empty() {
                return Err(Error::new(ErrorKind::AuthFailed, "the vault passphrase is empty"));
            }
            let salt = B64
                .decode(header.salt.as_deref().unwrap_or(""))
                .map_err(|_| Error::new(ErrorKind::DataInvalid, "vault header has a bad salt"))?;
            let iterations = header.iterations.unwrap_or(0);
            let iterations = std::num::NonZeroU32::new(iterations)
                .filter(|n| n.get() >= 100_000)
                .ok_or_else(|| Error::new(ErrorKind::DataInvalid, "vault header has too few PBKDF2 iterations"))?;
            if iterations.get() > MAX_PBKDF2_ITERATIONS {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!("vault header asks for {iterations} PBKDF2 iterations, more than the {MAX_PBKDF2_ITERATIONS} Ferry accepts"),
                ));
            }
            let mut key = [0u8; 32];
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                &salt,
                p.expose_secret().as_bytes(),
                &mut key,
            );
            Ok(SecretBox::new(Box::new(key)))
        }
        ("raw", KeySource::Raw(k)) => Ok(SecretBox::new(Box::new(*k.expose_secret()))),
        ("raw", KeySource::Passphrase(_)) => Err(Error::new(
            ErrorKind::AuthFailed,
            format!("this vault is locked with a raw key: set {MASTER_KEY_ENV} (32 bytes, base64)"),
        )),
        ("pbkdf2-hmac-sha256", KeySource::Raw(_)) => Err(Error::new(
            ErrorKind::AuthFailed,
            format!("this vault is locked with a passphrase: set {PASSPHRASE_ENV} or unset {MASTER_KEY_ENV}"),
        )),
        (other, _) => Err(Error::new(ErrorKind::Unsupported, format!("unknown vault key derivation `{other}`"))),
    }
}

fn header_for(client: Option<&str>, source: &KeySource) -> Result<Header> {
    Ok(match source {
        KeySource::Passphrase(_) => {
            let mut salt = [0u8; 16];
            SystemRandom::new()
                .fill(&mut salt)
                .map_err(|_| Error::internal("the system random generator failed"))?;
            Header {
                client: client.map(str::to_string),
                kdf: "pbkdf2-hmac-sha256".into(),
                iterations: Some(PBKDF2_ITERATIONS),
                salt: Some(B64.encode(salt)),
            }
        }
        KeySource::Raw(_) => Header {
            client: client.map(str::to_string),
            kdf: "raw".into(),
            iterations: None,
            salt: None,
        },
    })
}

fn aad(header_line: &str) -> Vec<u8> {
    format!("{MAGIC}\n{header_line}").into_bytes()
}

impl VaultFile {
    /// Creates an empty vault for `client` (not yet written: call [`VaultFile::save`]).
    pub fn create(
        path: impl Into<PathBuf>,
        client: Option<&str>,
        source: &KeySource,
    ) -> Result<VaultFile> {
        let header = header_for(client, source)?;
        let key = derive(&header, source)?;
        Ok(VaultFile {
            path: path.into(),
            header,
            key,
            contents: Contents::default(),
        })
    }

    /// Opens and decrypts `path`. A wrong key, a tampered file, or a vault of another
    /// client (when `client` is given) is an error that names the file and no secret.
    pub fn open(
        path: impl Into<PathBuf>,
        client: Option<&str>,
        source: &KeySource,
    ) -> Result<VaultFile> {
        let path = path.into();
        let bytes =
            std::fs::read(&path).map_err(|e| Error::io(e, "cannot read the vault", &path))?;
        Self::from_bytes(path, &bytes, client, source)
    }

    /// Decrypts a vault file's `bytes`, as [`VaultFile::open`] does once it read `path`
    /// (named in errors and used by [`VaultFile::save`]). Any bytes are safe here: what
    /// is not a vault is an error, never a panic, and the work a file can ask for is
    /// bounded ([`MAX_PBKDF2_ITERATIONS`]).
    pub fn from_bytes(
        path: impl Into<PathBuf>,
        bytes: &[u8],
        client: Option<&str>,
        source: &KeySource,
    ) -> Result<VaultFile> {
        let path = path.into();
        let bad = |what: &str| {
            Error::new(ErrorKind::DataInvalid, format!("not a Ferry vault: {what}"))
                .with("file", path.display())
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text"))?;
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad(&format!("the first line is not `{MAGIC}`")));
        }
        let header_line = lines.next().ok_or_else(|| bad("no header line"))?;
        let header: Header =
            serde_json::from_str(header_line).map_err(|_| bad("the header is not valid JSON"))?;
        let body = B64
            .decode(
                lines
                    .next()
                    .ok_or_else(|| bad("no ciphertext line"))?
                    .trim(),
            )
            .map_err(|_| bad("the ciphertext is not base64"))?;
        if body.len() < NONCE_LEN + 16 {
            return Err(bad("the ciphertext is too short"));
        }
        if let (Some(mine), Some(theirs)) = (client, header.client.as_deref()) {
            if mine != theirs {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("this vault belongs to client `{theirs}`, not `{mine}`: it was copied from another client's folder"),
                )
                .with("file", path.display()));
            }
        }
        let key = derive(&header, source).map_err(|e| e.with("file", path.display()))?;
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let k = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key.expose_secret()).expect("32-byte key"),
        );
        let nonce = Nonce::try_assume_unique_for_key(nonce).expect("12 bytes");
        let plain = k
            .open_in_place(nonce, Aad::from(aad(header_line)), &mut sealed)
            .map_err(|_| {
                Error::new(
                    ErrorKind::AuthFailed,
                    "cannot open the vault: wrong passphrase or key, or the file was changed",
                )
                .with("file", path.display())
            })?;
        let contents: Contents = serde_json::from_slice(plain)
            .map_err(|_| bad("the decrypted contents are not valid"))?;
        plain.fill(0);
        Ok(VaultFile {
            path,
            header,
            key,
            contents,
        })
    }

    /// Encrypts and writes the vault atomically, mode 0600.
    pub fn save(&self) -> Result<()> {
        let header_line = serde_json::to_string(&self.header)?;
        let mut plain = serde_json::to_vec(&self.contents)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::internal("the system random generator failed"))?;
        let k = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.key.expose_secret()).expect("32-byte key"),
        );
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(&header_line)),
            &mut plain,
        )
        .map_err(|_| Error::internal("vault encryption failed"))?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&plain);
        let text = format!("{MAGIC}\n{header_line}\n{}\n", B64.encode(&body));
        crate::atomic::write_atomic_private(&self.path, text.as_bytes())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The client the vault is bound to.
    pub fn client(&self) -> Option<&str> {
        self.header.client.as_deref()
    }

    /// Secret names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.contents.secrets.keys().cloned().collect()
    }

    /// The secret `name`.
    pub fn get(&self, name: &str) -> Option<Secret> {
        self.contents
            .secrets
            .get(name)
            .map(|v| Secret::new(v.clone()))
    }

    /// Stores `value` under `name` (call `save` to write).
    pub fn set(&mut self, name: &str, value: &Secret) -> Result<()> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(Error::config(format!(
                "secret name `{name}` may use only letters, digits, `_`, `-` and `.`"
            )));
        }
        self.contents
            .secrets
            .insert(name.to_string(), value.expose().to_string());
        Ok(())
    }

    /// Removes `name`; whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        self.contents.secrets.remove(name).is_some()
    }

    /// Re-keys the vault under a new key source (fresh salt), keeping its contents.
    pub fn rotate(&mut self, source: &KeySource) -> Result<()> {
        let header = header_for(self.header.client.as_deref(), source)?;
        self.key = derive(&header, source)?;
        self.header = header;
        Ok(())
    }
}

/// The vault as a `${secret:…}` resolver.
pub struct VaultResolver(pub std::sync::Arc<VaultFile>);

impl crate::secret::Vault for VaultResolver {
    fn get(&self, name: &str) -> Result<Secret> {
        self.0.get(name).ok_or_else(|| {
            let mut msg = format!("no secret named `{name}` in the vault");
            let names = self.0.names();
            if let Some(best) = crate::suggest::nearest(name, names.iter().map(String::as_str)) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            msg.push_str(&format!(": add it with `ferry secrets set {name}`"));
            Error::new(ErrorKind::NotFound, msg).with("file", self.0.path().display())
        })
    }
}

/// Opens the vault on the first `${secret:…}` lookup, so a config without secret
/// references never asks for a passphrase.
pub struct LazyVault {
    path: PathBuf,
    client: Option<String>,
    key: Box<dyn Fn() -> Result<KeySource> + Send + Sync>,
    open: std::sync::OnceLock<std::result::Result<std::sync::Arc<VaultFile>, (ErrorKind, String)>>,
}

impl LazyVault {
    /// A vault at `path` for `client`, unlocked with the key `key` returns when first needed.
    pub fn new(
        path: impl Into<PathBuf>,
        client: Option<String>,
        key: impl Fn() -> Result<KeySource> + Send + Sync + 'static,
    ) -> Self {
        LazyVault {
            path: path.into(),
            client,
            key: Box::new(key),
            open: std::sync::OnceLock::new(),
        }
    }

    fn file(&self) -> Result<std::sync::Arc<VaultFile>> {
        let r = self.open.get_or_init(|| {
            if !self.path.exists() {
                return Err((
                    ErrorKind::NotFound,
                    format!(
                        "the config refers to ${{secret:…}} but there is no vault at {}: create it with `ferry secrets set NAME`",
                        self.path.display()
                    ),
                ));
            }
            let key = (self.key)().map_err(|e| (e.kind(), e.to_string()))?;
            VaultFile::open(&self.path, self.client.as_deref(), &key)
                .map(std::sync::Arc::new)
                .map_err(|e| (e.kind(), e.to_string()))
        });
        r.clone().map_err(|(k, m)| Error::new(k, m))
    }
}

impl crate::secret::Vault for LazyVault {
    fn get(&self, name: &str) -> Result<Secret> {
        VaultResolver(self.file()?).get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(p: &str) -> KeySource {
        KeySource::Passphrase(SecretString::from(p.to_string()))
    }

    #[test]
    fn a_header_cannot_ask_for_endless_key_stretching() {
        let body = B64.encode([0u8; 64]);
        for (iterations, refused) in [(u32::MAX, "more than"), (99_999, "too few")] {
            let text = format!(
                "{MAGIC}\n{{\"client\":null,\"kdf\":\"pbkdf2-hmac-sha256\",\"iterations\":{iterations},\"salt\":\"AAAA\"}}\n{body}\n"
            );
            let e =
                VaultFile::from_bytes("v.vault", text.as_bytes(), None, &pass("pw")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
            assert!(e.message().contains(refused), "{e}");
        }
    }

    #[test]
    fn round_trip_wrong_key_tamper_and_client_binding() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".ferry/secrets.vault");
        let mut v = VaultFile::create(&p, Some("acme"), &pass("correct horse")).unwrap();
        v.set("pg_password", &Secret::new("canary-s3cr3t-value"))
            .unwrap();
        v.save().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("canary-s3cr3t-value"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let v = VaultFile::open(&p, Some("acme"), &pass("correct horse")).unwrap();
        assert_eq!(
            v.get("pg_password").unwrap().expose(),
            "canary-s3cr3t-value"
        );
        let e = VaultFile::open(&p, Some("acme"), &pass("wrong")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthFailed);
        let e = VaultFile::open(&p, Some("globex"), &pass("correct horse")).unwrap_err();
        assert!(e.to_string().contains("belongs to client `acme`"), "{e}");
        // changing the client in the header breaks authentication even without a client check
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("\"acme\"", "\"globex\"");
        std::fs::write(&p, text).unwrap();
        let e = VaultFile::open(&p, None, &pass("correct horse")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    }

    #[test]
    fn rotate_to_raw_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v");
        let mut v = VaultFile::create(&p, None, &pass("one")).unwrap();
        v.set("a", &Secret::new("value-a")).unwrap();
        let raw = KeySource::Raw(SecretBox::new(Box::new([7u8; 32])));
        v.rotate(&raw).unwrap();
        v.save().unwrap();
        assert!(VaultFile::open(&p, None, &pass("one")).is_err());
        assert_eq!(
            VaultFile::open(&p, None, &raw)
                .unwrap()
                .get("a")
                .unwrap()
                .expose(),
            "value-a"
        );
    }
}
