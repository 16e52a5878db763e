//! The age v1 header, written and parsed as the spec (age-encryption.org/v1) lays it out:
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <share>
//! <body, base64 without padding, 64 columns, ending with a shorter (maybe empty) line>
//! --- <HMAC-SHA256 of everything up to and including `---`, base64>
//! ```
//!
//! The stanzas themselves (X25519, scrypt) are made and opened by the `age` crate's
//! `Recipient` / `Identity` traits; this module only frames them and checks the MAC, whose
//! key is HKDF-SHA256(file key, salt = empty, info = "header").

use std::io::{self, BufRead, Read};

use age_core::format::Stanza;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::hmac;

use super::{HeaderTooLarge, MAX_HEADER_BYTES, MAX_STANZAS};
use ::age::DecryptError;

const MAGIC_PREFIX: &[u8] = b"age-encryption.org/";
const MAGIC_V1: &[u8] = b"age-encryption.org/v1";
const MAC_LINE: &[u8] = b"--- ";
/// Base64 characters of the 32-byte MAC.
const MAC_CHARS: usize = 43;
/// Base64 characters on every body line but the last.
const COLUMNS: usize = 64;

/// A parsed header: its stanzas, its MAC, and the bytes the MAC covers.
pub(super) struct Header {
    pub(super) stanzas: Vec<Stanza>,
    mac: [u8; 32],
    signed: Vec<u8>,
}

fn mac_key(file_key: &[u8]) -> hmac::Key {
    let prk = Salt::new(HKDF_SHA256, &[]).extract(file_key);
    let okm = prk
        .expand(&[b"header"], hmac::HMAC_SHA256)
        .expect("a 32-byte key is a valid HKDF output length");
    hmac::Key::from(okm)
}

/// The whole header text for `stanzas`, MAC line included.
pub(super) fn write(stanzas: &[Stanza], file_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 * stanzas.len() + 80);
    out.extend_from_slice(MAGIC_V1);
    out.push(b'\n');
    for s in stanzas {
        out.extend_from_slice(b"->");
        for word in std::iter::once(&s.tag).chain(&s.args) {
            out.push(b' ');
            out.extend_from_slice(word.as_bytes());
        }
        out.push(b'\n');
        let body = STANDARD_NO_PAD.encode(&s.body);
        let mut rest = body.as_bytes();
        // every line but the last is full; the last is shorter, so maybe empty
        loop {
            let (line, tail) = rest.split_at(rest.len().min(COLUMNS));
            out.extend_from_slice(line);
            out.push(b'\n');
            rest = tail;
            if line.len() < COLUMNS {
                break;
            }
        }
    }
    out.extend_from_slice(&MAC_LINE[..3]);
    let tag = hmac::sign(&mac_key(file_key), &out);
    out.push(b' ');
    out.extend_from_slice(STANDARD_NO_PAD.encode(tag.as_ref()).as_bytes());
    out.push(b'\n');
    out
}

impl Header {
    /// Whether the MAC matches under `file_key`.
    pub(super) fn mac_matches(&self, file_key: &[u8]) -> bool {
        hmac::verify(&mac_key(file_key), &self.signed, &self.mac).is_ok()
    }

    /// Whether this is a passphrase file (its only stanza is scrypt).
    pub(super) fn is_scrypt(&self) -> bool {
        self.stanzas.iter().any(|s| s.tag == SCRYPT)
    }
}

const SCRYPT: &str = "scrypt";

/// Reads a header from `input`, leaving it at the payload's nonce. Errors are the `age`
/// crate's, so the caller words them once: `Io(UnexpectedEof)` for a truncated header,
/// `Io(HeaderTooLarge)` past the bounds, `InvalidHeader`, `UnknownFormat`.
pub(super) fn read(input: &mut impl BufRead) -> Result<Header, DecryptError> {
    let mut lines = Lines {
        input,
        text: Vec::with_capacity(256),
    };
    let first = lines.next()?;
    if first != MAGIC_V1 {
        let first = first.as_slice();
        return Err(match first.strip_prefix(MAGIC_PREFIX) {
            Some(v) if is_arbitrary(v) => DecryptError::UnknownFormat,
            _ => DecryptError::InvalidHeader,
        });
    }
    let mut stanzas = Vec::new();
    loop {
        let line = lines.next()?;
        if let Some(words) = line.strip_prefix(b"-> ".as_slice()) {
            if stanzas.len() as u32 >= MAX_STANZAS {
                return Err(too_large());
            }
            let body = read_body(&mut lines)?;
            stanzas.push(stanza(words, body)?);
            continue;
        }
        let at = lines.text.len() - line.len() - 1;
        let mac = match line.strip_prefix(MAC_LINE) {
            Some(m) if m.len() == MAC_CHARS && !stanzas.is_empty() => m,
            _ => return Err(DecryptError::InvalidHeader),
        };
        let mut out = [0u8; 33];
        let mac = match STANDARD_NO_PAD.decode_slice(mac, &mut out) {
            Ok(32) => out[..32].try_into().expect("32 bytes"),
            _ => return Err(DecryptError::InvalidHeader),
        };
        // the MAC covers the header up to and including `---` (not the space after it)
        let mut signed = lines.text;
        signed.truncate(at + 3);
        // a passphrase stanza must be the file's only one
        if stanzas.len() > 1 && stanzas.iter().any(|s: &Stanza| s.tag == SCRYPT) {
            return Err(DecryptError::InvalidHeader);
        }
        return Ok(Header {
            stanzas,
            mac,
            signed,
        });
    }
}

/// Reads the payload's 16-byte nonce after the header.
pub(super) fn read_nonce(input: &mut impl Read) -> Result<[u8; 16], DecryptError> {
    let mut nonce = [0u8; 16];
    input.read_exact(&mut nonce).map_err(DecryptError::Io)?;
    Ok(nonce)
}

fn too_large() -> DecryptError {
    DecryptError::Io(io::Error::new(io::ErrorKind::InvalidData, HeaderTooLarge))
}

fn is_arbitrary(word: &[u8]) -> bool {
    !word.is_empty() && word.iter().all(|b| (33..=126).contains(b))
}

fn is_base64(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'
}

/// A stanza's body: full 64-column lines, then a shorter one (maybe empty).
fn read_body<R: BufRead>(lines: &mut Lines<'_, R>) -> Result<Vec<u8>, DecryptError> {
    let mut text = Vec::new();
    loop {
        let line = lines.next()?;
        if line.len() > COLUMNS || !line.iter().all(is_base64) {
            return Err(DecryptError::InvalidHeader);
        }
        text.extend_from_slice(&line);
        if line.len() < COLUMNS {
            break;
        }
    }
    // canonical base64 only: no padding, no stray trailing bits
    STANDARD_NO_PAD
        .decode(&text)
        .map_err(|_| DecryptError::InvalidHeader)
}

fn stanza(words: &[u8], body: Vec<u8>) -> Result<Stanza, DecryptError> {
    let mut words = words.split(|&b| b == b' ').map(|w| {
        if is_arbitrary(w) {
            Ok(String::from_utf8_lossy(w).into_owned())
        } else {
            Err(DecryptError::InvalidHeader)
        }
    });
    let tag = words.next().ok_or(DecryptError::InvalidHeader)??;
    let args = words.collect::<Result<Vec<_>, _>>()?;
    Ok(Stanza { tag, args, body })
}

/// The header's lines, kept whole (for the MAC), bounded by [`MAX_HEADER_BYTES`].
struct Lines<'a, R> {
    input: &'a mut R,
    text: Vec<u8>,
}

impl<R: BufRead> Lines<'_, R> {
    /// The next line, without its `\n`.
    fn next(&mut self) -> Result<Vec<u8>, DecryptError> {
        let start = self.text.len();
        let room = (MAX_HEADER_BYTES + 1).saturating_sub(start as u64);
        let n = self
            .input
            .by_ref()
            .take(room)
            .read_until(b'\n', &mut self.text)
            .map_err(DecryptError::Io)?;
        let line = &self.text[start..];
        // refuse what is not an age file as soon as its first bytes say so
        if start == 0 && !line.starts_with(&MAGIC_PREFIX[..line.len().min(MAGIC_PREFIX.len())]) {
            return Err(DecryptError::InvalidHeader);
        }
        if line.last() != Some(&b'\n') {
            return Err(if n as u64 == room {
                too_large()
            } else {
                DecryptError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the header is incomplete",
                ))
            });
        }
        Ok(self.text[start..self.text.len() - 1].to_vec())
    }
}
