//! `ferry secrets …` and `ferry keys …`: the client's vault from the command line.
//!
//! Values are never taken from argv (it ends up in shell history and `ps`): they come
//! from a hidden prompt on a terminal, or from stdin when piped.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferry_core::vault::{KeySource, LazyVault, VaultFile, MASTER_KEY_ENV, PASSPHRASE_ENV};
use ferry_core::{Error, ErrorKind, Result, Secret};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// A client folder: where its config, vault and state live, and which client it is.
pub struct ClientFolder {
    pub client: Option<String>,
    pub vault: PathBuf,
}

impl ClientFolder {
    /// From a config file, if it exists (its folder otherwise the current one).
    pub fn of(config: &Path) -> Result<ClientFolder> {
        let dir = match config.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut client = None;
        let mut vault = dir.join(".ferry/secrets.vault");
        if let Ok(text) = std::fs::read_to_string(config) {
            // only plain keys are read here; nothing is resolved
            if let Ok(t) = text.parse::<toml::Table>() {
                client = t.get("client").and_then(|v| v.as_str()).map(str::to_string);
                if let Some(v) = t
                    .get("run")
                    .and_then(|r| r.get("vault"))
                    .and_then(|v| v.as_str())
                {
                    vault = dir.join(v);
                }
            }
        }
        Ok(ClientFolder { client, vault })
    }

    /// The vault as a lazy `${secret:…}` resolver for config loading.
    pub fn resolver(&self) -> Arc<LazyVault> {
        Arc::new(LazyVault::new(&self.vault, self.client.clone(), || {
            key(false)
        }))
    }

    fn open(&self) -> Result<VaultFile> {
        VaultFile::open(&self.vault, self.client.as_deref(), &key(false)?)
    }

    fn open_or_create(&self) -> Result<VaultFile> {
        if self.vault.exists() {
            self.open()
        } else {
            eprintln!("creating a new vault at {}", self.vault.display());
            VaultFile::create(&self.vault, self.client.as_deref(), &key(true)?)
        }
    }
}

/// The vault key: `FERRY_MASTER_KEY`, `FERRY_PASSPHRASE`, or a hidden prompt.
pub fn key(confirm: bool) -> Result<KeySource> {
    if let Some(k) = KeySource::from_env() {
        return Ok(k);
    }
    prompt_key("Vault passphrase", confirm)
}

fn prompt_key(label: &str, confirm: bool) -> Result<KeySource> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::AuthFailed,
            format!("the vault needs a key: set {PASSPHRASE_ENV}, or {MASTER_KEY_ENV} (32 bytes, base64)"),
        ));
    }
    let p = rpassword::prompt_password(format!("{label}: "))
        .map_err(|e| Error::io(e, "cannot read the passphrase", "/dev/tty"))?;
    if confirm {
        let again = rpassword::prompt_password(format!("{label} (again): "))
            .map_err(|e| Error::io(e, "cannot read the passphrase", "/dev/tty"))?;
        if again != p {
            return Err(Error::new(
                ErrorKind::AuthFailed,
                "the two passphrases differ",
            ));
        }
    }
    Ok(KeySource::Passphrase(SecretString::from(p)))
}

fn new_key() -> Result<KeySource> {
    if let Some(k) = ferry_core::vault::key_env(ferry_core::vault::NEW_MASTER_KEY_ENV) {
        let bytes = B64
            .decode(k.expose_secret().trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::config("FERRY_NEW_MASTER_KEY must be 32 bytes, base64"))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        return Ok(KeySource::Raw(SecretBox::new(Box::new(key))));
    }
    if let Some(p) = ferry_core::vault::key_env(ferry_core::vault::NEW_PASSPHRASE_ENV) {
        return Ok(KeySource::Passphrase(p));
    }
    prompt_key("New vault passphrase", true)
}

fn read_value(name: &str) -> Result<Secret> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Value for {name} (hidden): "))
            .map_err(|e| Error::io(e, "cannot read the value", "/dev/tty"))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io(e, "cannot read the value", "stdin"))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    };
    if value.is_empty() {
        return Err(Error::config(format!("no value given for `{name}`")));
    }
    Ok(Secret::new(value))
}

pub fn set(folder: &ClientFolder, name: &str) -> Result<u8> {
    let mut v = folder.open_or_create()?;
    let value = read_value(name)?;
    v.set(name, &value)?;
    v.save()?;
    println!(
        "stored `{name}` in {}; refer to it as \"${{secret:{name}}}\"",
        folder.vault.display()
    );
    Ok(0)
}

pub fn list(folder: &ClientFolder) -> Result<u8> {
    let v = folder.open()?;
    let names: String = v.names().into_iter().map(|n| format!("{n}\n")).collect();
    super::output::emit(&names)?;
    Ok(0)
}

pub fn remove(folder: &ClientFolder, name: &str) -> Result<u8> {
    let mut v = folder.open()?;
    if !v.remove(name) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no secret named `{name}` in the vault"),
        )
        .with("file", folder.vault.display()));
    }
    v.save()?;
    println!("removed `{name}`");
    Ok(0)
}

pub fn rotate(folder: &ClientFolder) -> Result<u8> {
    let mut v = folder.open()?;
    v.rotate(&new_key()?)?;
    v.save()?;
    println!(
        "vault re-encrypted under the new key ({} secrets)",
        v.names().len()
    );
    Ok(0)
}

/// Key kinds `ferry keys generate` makes.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KeyKind {
    /// An age X25519 identity, for files delivered to or received from the client.
    Age,
    /// An Ed25519 key pair that signs delivery receipts.
    Signing,
    /// A 32-byte AES-256-GCM key for the `encrypt` field transform.
    Field,
    /// A 32-byte key for the `hash` field transform.
    Hash,
}

impl KeyKind {
    fn cli_name(self) -> &'static str {
        match self {
            KeyKind::Age => "age",
            KeyKind::Signing => "signing",
            KeyKind::Field => "field",
            KeyKind::Hash => "hash",
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            KeyKind::Age => "age_identity",
            KeyKind::Signing => "signing_key",
            KeyKind::Field => "field_key",
            KeyKind::Hash => "hash_key",
        }
    }
}

fn random32() -> Result<[u8; 32]> {
    let mut k = [0u8; 32];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    Ok(k)
}

pub fn generate(
    folder: &ClientFolder,
    kind: KeyKind,
    name: Option<&str>,
    force: bool,
) -> Result<u8> {
    let name = name.unwrap_or(kind.default_name());
    let mut v = folder.open_or_create()?;
    if v.get(name).is_some() && !force {
        return Err(Error::config(format!("the vault already has `{name}`: pass --force to replace it, or --name to pick another name")));
    }
    let public = match kind {
        KeyKind::Age => {
            let (identity, public) = ferry_formats::age::generate_identity();
            v.set(name, &identity)?;
            Some(public)
        }
        KeyKind::Signing => {
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| Error::internal("cannot generate an Ed25519 key"))?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| Error::internal("cannot read the generated Ed25519 key"))?;
            v.set(name, &Secret::new(B64.encode(pkcs8.as_ref())))?;
            Some(signing_public(&pair))
        }
        KeyKind::Field | KeyKind::Hash => {
            v.set(name, &Secret::new(B64.encode(random32()?)))?;
            None
        }
    };
    v.save()?;
    println!(
        "stored `{name}` in {}; refer to it as \"${{secret:{name}}}\"",
        folder.vault.display()
    );
    if let Some(p) = public {
        println!("public key (safe to share):\n{p}");
    }
    if matches!(kind, KeyKind::Field) {
        println!(
            "the client needs this key to decrypt the columns: `ferry keys export field{}` prints it (see SECURITY.md)",
            if name == kind.default_name() { String::new() } else { format!(" --name {name}") }
        );
    }
    Ok(0)
}

/// Prints a field or hash key for the client who may decrypt (or join on) those columns;
/// the warning goes to stderr so that `> key.txt` holds just the key.
pub fn export(folder: &ClientFolder, kind: KeyKind, name: Option<&str>) -> Result<u8> {
    if matches!(kind, KeyKind::Age | KeyKind::Signing) {
        return Err(Error::config(format!(
            "`keys export` prints field and hash keys only: an {} key's secret half stays in the vault (its public half was printed by `keys generate`)",
            if matches!(kind, KeyKind::Age) { "age" } else { "signing" }
        )));
    }
    let name = name.unwrap_or(kind.default_name());
    let v = folder.open()?;
    let key = v.get(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "no key named `{name}` in the vault: `ferry keys generate {}` makes one",
                kind.cli_name()
            ),
        )
        .with("file", folder.vault.display())
    })?;
    if matches!(kind, KeyKind::Field) {
        // refuse to hand over something that is not a field key (a password stored under that name)
        ferry_engine::transform::FieldKey::parse(&key).map_err(|_| {
            Error::config(format!(
                "`{name}` in the vault is not a field key (32 bytes, base64)"
            ))
        })?;
    }
    eprintln!(
        "WARNING: this is the secret key `{name}`: whoever holds it can {} every value protected with it. Hand it to the client over a channel you trust, separately from the data, and never commit it.",
        if matches!(kind, KeyKind::Field) { "decrypt" } else { "recompute the tokens of" }
    );
    println!("{}", key.expose());
    Ok(0)
}

/// The public half of a signing key, for the client: the `allowed_signers` line that
/// `ssh-keygen -Y verify` takes for a file delivery's `SHA256SUMS.sig`, then (last, the
/// form `ferry verify --pubkey` and receipts use) the base64 key.
fn signing_public(pair: &ring::signature::Ed25519KeyPair) -> String {
    let public = ring::signature::KeyPair::public_key(pair).as_ref();
    format!(
        "allowed_signers line (for `ssh-keygen -Y verify -I {} -n {}`):\n{}\nbase64 (for `ferry verify --pubkey`):\n{}",
        ferry_engine::sshsig::IDENTITY,
        ferry_engine::sshsig::NAMESPACE,
        ferry_engine::sshsig::allowed_signers_line(public),
        B64.encode(public)
    )
}

/// `ferry keys show signing`: prints the public half of the vault's signing key.
pub fn show(folder: &ClientFolder, kind: KeyKind, name: Option<&str>) -> Result<u8> {
    let name = name.unwrap_or(kind.default_name());
    let KeyKind::Signing = kind else {
        return Err(Error::config(
            "only a signing key has a public half to show here (`ferry keys show signing`)",
        ));
    };
    let v = folder.open()?;
    let key = v.get(name).ok_or_else(|| {
        Error::config(format!(
            "the vault has no `{name}`: make one with `ferry keys generate signing`"
        ))
        .with("file", folder.vault.display())
    })?;
    let pair = ferry_engine::receipt::signing_pair(&key)?;
    println!(
        "public key of `{name}` (safe to share):\n{}",
        signing_public(&pair)
    );
    Ok(0)
}
