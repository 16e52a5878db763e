//! age keys of a file-like store: who a destination encrypts for, what a source
//! decrypts with.

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Error, Result, Secret};
use ferry_formats::age::{Identities, Recipients};
use schemars::JsonSchema;
use serde::Deserialize;

/// The destination's `encrypt` table: who can decrypt what is written (age v1).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptConfig {
    /// The client's age public keys: `age1…` inline, or `file:<path>` (or a plain path)
    /// of a recipients file with one key per line and `#` comments, relative to the config
    /// file's folder. Each key can decrypt on its own (default: none; set this or
    /// `passphrase`).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A passphrase instead of public keys, as a reference (`"${secret:…}"`); the age
    /// format allows it only alone, so not with `recipients` (default: none).
    #[serde(default)]
    pub passphrase: Option<Secret>,
}

/// Who a destination's `encrypt` table encrypts for, key files read relative to
/// `base_dir` (none: written plain).
pub fn recipients(
    encrypt: Option<&EncryptConfig>,
    base_dir: &Path,
) -> Result<Option<Arc<Recipients>>> {
    let Some(e) = encrypt else {
        return Ok(None);
    };
    Recipients::new(&e.recipients, e.passphrase.as_ref(), base_dir)
        .map(|r| Some(Arc::new(r)))
        .map_err(|e| Error::config(format!("`encrypt`: {}", e.message())))
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
