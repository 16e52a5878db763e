//! Reading back what the `encrypt` transform wrote, for the client who holds the key.
//!
//! Format of one encrypted value (documented in SECURITY.md): standard base64 (with `=`
//! padding) of `nonce (12 bytes) || ciphertext || tag (16 bytes)`, AES-256-GCM, with the
//! column's name (UTF-8, as it was when encrypted) as the associated data; the plaintext
//! is the value's text form (UTF-8).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use ferry_core::{Error, ErrorKind, Result, Secret};

/// The AES-256-GCM tag length.
const TAG_LEN: usize = 16;

/// A field key (32 bytes, base64), ready to decrypt values.
pub struct FieldKey(LessSafeKey);

impl FieldKey {
    /// Reads a key as `ferry keys generate field` makes it: 32 bytes, standard base64
    /// (surrounding whitespace ignored).
    pub fn parse(key: &Secret) -> Result<FieldKey> {
        let bytes = B64
            .decode(key.expose().trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::config("the field key must be 32 bytes, base64 (as `ferry keys export field` prints it)")
            })?;
        let k = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes");
        Ok(FieldKey(LessSafeKey::new(k)))
    }

    /// Decrypts `value`, written by `encrypt` for column `column`. Errors never show the
    /// value.
    pub fn decrypt(&self, column: &str, value: &str) -> Result<String> {
        let data = B64
            .decode(value.trim())
            .map_err(|_| Error::data("the value is not base64, so not an encrypted field"))?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::data(
                "the value is too short to be an encrypted field",
            ));
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).expect("12 bytes"),
                Aad::from(column.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| {
                Error::new(
                    ErrorKind::AuthFailed,
                    "cannot decrypt: wrong key, or the value was encrypted for another column name, or it was changed",
                )
            })?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| Error::data("the decrypted value is not UTF-8"))
    }
}
