//! OpenPGP files (RFC 9580 / RFC 4880), as clients and GnuPG make them: reading files a
//! client encrypted to our public key (optionally requiring their signature), and writing
//! deliveries encrypted to the client's public key (optionally signed with ours).
//!
//! Why OpenPGP next to age: banks, payroll and health clients already exchange files with
//! `gpg`, and will not change tools for us. The cryptography is rPGP's (the `pgp` crate,
//! pure Rust, maintained, used by Delta Chat and rpm); this module adapts it to Ferry: keys
//! and passphrases travel as [`Secret`](ferry_core::Secret)s, every failure is an
//! [`Error`](ferry_core::Error) with a kind, and no plaintext is released before the whole
//! file was authenticated.
//!
//! - [`Decryptor`]: our secret key(s) and passphrase, and optionally the client's public
//!   key whose signature every file must carry; [`Decryptor::decrypt`] gives a
//!   [`Plaintext`] only once the integrity check (MDC or AEAD) and the signature passed.
//! - [`Encryptor`]: the client's public keys, optionally our key to sign with;
//!   [`encrypt_writer`] streams a delivery into an encrypted file.
//!
//! **Authenticate first, then release.** An OpenPGP message carries its integrity check
//! (the MDC of SEIPDv1, the final AEAD tag of SEIPDv2) and its signature at the *end*.
//! Streaming rows out while decrypting would hand altered or truncated rows to the
//! destination before the check fails. So [`Decryptor::decrypt`] decrypts the whole file
//! into a spool (memory up to [`SPOOL_MEMORY`], then an unnamed temporary file that the
//! operating system deletes when it is closed, even after a crash), checks integrity and
//! signature, and only then returns a reader of the plaintext. Memory stays bounded
//! whatever the file's size; the price is one extra local write and read of the plaintext.

mod decrypt;
mod encrypt;
mod keys;

pub use decrypt::{Decryptor, Plaintext, SPOOL_MEMORY};
pub use encrypt::{encrypt_writer, EncryptingWriter, Encryptor};
pub use keys::{PublicKeys, SecretKeys};

use std::path::Path;

/// The extensions of OpenPGP files, without the dot: binary (`.pgp`, `.gpg`) or armored
/// (`.asc`); any of them may hold either, the content decides.
pub const EXTENSIONS: [&str; 3] = ["pgp", "gpg", "asc"];

/// The extension Ferry gives the binary files it writes (as `gpg --encrypt` does).
pub const EXTENSION: &str = "gpg";

/// The extension Ferry gives armored files it writes (as `gpg --armor --encrypt` does).
pub const ARMORED_EXTENSION: &str = "asc";

/// Whether `path` names an OpenPGP file (`.pgp`, `.gpg` or `.asc`, in any case).
pub fn is_pgp_path(path: impl AsRef<Path>) -> bool {
    path.as_ref()
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `name` without a final `.pgp`, `.gpg` or `.asc` (any case), if it has one and more.
pub fn strip_extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && EXTENSIONS.iter().any(|x| ext.eq_ignore_ascii_case(x))).then_some(stem)
}

/// A key ID or fingerprint as GnuPG prints it (upper-case hex).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_pgp_path("a/orders.csv.GPG"));
        assert!(is_pgp_path("orders.csv.asc") && is_pgp_path("x.pgp"));
        assert!(!is_pgp_path("orders.csv") && !is_pgp_path("orders.age"));
        assert_eq!(strip_extension("orders.csv.gz.pgp"), Some("orders.csv.gz"));
        assert_eq!(strip_extension("drop.zip.Gpg"), Some("drop.zip"));
        assert_eq!(strip_extension(".gpg"), None);
        assert_eq!(strip_extension("orders.csv"), None);
        assert_eq!(hex(&[0x0a, 0xff]), "0AFF");
    }
}
