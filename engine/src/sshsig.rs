//! OpenSSH signatures (`ssh-keygen -Y sign` format) made with a receipt signing key, so
//! a client checks a delivery's `SHA256SUMS` with `ssh-keygen -Y verify` and needs no Ferry.
//!
//! The format is OpenSSH's PROTOCOL.sshsig, written here by hand (it is small and a
//! dependency would bring a second Ed25519 implementation): the signature is Ed25519 over
//!
//! ```text
//! "SSHSIG" || string(namespace) || string("") || string("sha512") || string(SHA-512(message))
//! ```
//!
//! and the file is that signature in the blob
//! `"SSHSIG" || uint32(1) || string(public key) || string(namespace) || string("") ||
//! string("sha512") || string(signature)`, base64 at 70 characters a line between
//! `-----BEGIN SSH SIGNATURE-----` and `-----END SSH SIGNATURE-----`. `string` is a
//! big-endian uint32 length then the bytes; an Ed25519 public key is
//! `string("ssh-ed25519") || string(32 bytes)`, a signature `string("ssh-ed25519") ||
//! string(64 bytes)` (RFC 8709).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The namespace Ferry signs delivery checksums in (`ssh-keygen -Y verify -n`).
pub const NAMESPACE: &str = "ferry-delivery";
/// The signer identity Ferry prints in `allowed_signers` lines (`ssh-keygen -Y verify -I`).
pub const IDENTITY: &str = "ferry";

const KEY_TYPE: &str = "ssh-ed25519";
const MAGIC: &[u8] = b"SSHSIG";

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn public_blob(public: &[u8]) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, KEY_TYPE.as_bytes());
    put_string(&mut blob, public);
    blob
}

/// `ssh-ed25519 <base64>`: the public key as OpenSSH writes it in `.pub` files.
pub fn public_key_line(public: &[u8]) -> String {
    format!("{KEY_TYPE} {}", B64.encode(public_blob(public)))
}

/// The public key as one line of an `allowed_signers` file, limited to [`NAMESPACE`].
pub fn allowed_signers_line(public: &[u8]) -> String {
    format!(
        "{IDENTITY} namespaces=\"{NAMESPACE}\" {}",
        public_key_line(public)
    )
}

/// The 32-byte Ed25519 key of an `ssh-ed25519 <base64> [comment]` line (a `.pub` file or
/// the end of an `allowed_signers` line); `None` when `line` is not one.
pub fn parse_public_key_line(line: &str) -> Option<Vec<u8>> {
    let mut words = line.split_whitespace();
    let b64 = loop {
        if words.next()? == KEY_TYPE {
            break words.next()?;
        }
    };
    let blob = B64.decode(b64).ok()?;
    let mut want = Vec::new();
    put_string(&mut want, KEY_TYPE.as_bytes());
    let rest = blob.strip_prefix(want.as_slice())?;
    let (len, key) = rest.split_at_checked(4)?;
    (u32::from_be_bytes(len.try_into().ok()?) == 32 && key.len() == 32).then(|| key.to_vec())
}

/// Signs `message` in `namespace`; returns the armored signature file's text.
pub fn sign(pair: &Ed25519KeyPair, namespace: &str, message: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA512, message);
    let mut signed = MAGIC.to_vec();
    put_string(&mut signed, namespace.as_bytes());
    put_string(&mut signed, b"");
    put_string(&mut signed, b"sha512");
    put_string(&mut signed, hash.as_ref());
    let signature = pair.sign(&signed);

    let mut sig_blob = Vec::new();
    put_string(&mut sig_blob, KEY_TYPE.as_bytes());
    put_string(&mut sig_blob, signature.as_ref());

    let mut blob = MAGIC.to_vec();
    blob.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut blob, &public_blob(pair.public_key().as_ref()));
    put_string(&mut blob, namespace.as_bytes());
    put_string(&mut blob, b"");
    put_string(&mut blob, b"sha512");
    put_string(&mut blob, &sig_blob);

    let b64 = B64.encode(blob);
    let mut out = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for line in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END SSH SIGNATURE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_lines_round_trip_and_refuse_other_keys() {
        let public = [7u8; 32];
        let line = public_key_line(&public);
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{line}"
        );
        assert_eq!(parse_public_key_line(&line), Some(public.to_vec()));
        let allowed = allowed_signers_line(&public);
        assert_eq!(
            allowed,
            format!("ferry namespaces=\"ferry-delivery\" {line}")
        );
        assert_eq!(parse_public_key_line(&allowed), Some(public.to_vec()));
        assert_eq!(parse_public_key_line("ssh-ed25519 AAAA"), None);
        assert_eq!(parse_public_key_line(&B64.encode(public)), None);
    }
}
