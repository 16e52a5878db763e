//! The leak guard: every secret value Ferry resolves is registered here, and every
//! text Ferry prints or writes (logs, errors, reports, state) can be passed through
//! [`redact`], which replaces any registered value (as is, URL-encoded or base64)
//! with `[redacted]`. A second line of defence behind [`crate::Secret`]'s own `Debug`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

static VALUES: RwLock<Vec<SecretString>> = RwLock::new(Vec::new());
static HITS: AtomicU64 = AtomicU64::new(0);

/// Values shorter than this are not registered (they would match ordinary text).
pub const MIN_LEN: usize = 4;

/// Registers a secret value (and its URL-encoded and base64 forms) for redaction.
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let mut forms = vec![value.to_string()];
    let url = url_encode(value);
    if url != value {
        forms.push(url);
    }
    forms.push(base64::engine::general_purpose::STANDARD.encode(value));
    let mut values = VALUES.write().unwrap_or_else(|e| e.into_inner());
    for f in forms {
        if !values.iter().any(|v| v.expose_secret() == f) {
            values.push(SecretString::from(f));
        }
    }
}

/// `text` with every registered value replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let values = VALUES.read().unwrap_or_else(|e| e.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for v in values.iter() {
        let v = v.expose_secret();
        if out.contains(v) {
            HITS.fetch_add(out.matches(v).count() as u64, Ordering::Relaxed);
            out = std::borrow::Cow::Owned(out.replace(v, "[redacted]"));
        }
    }
    out.into_owned()
}

/// How many times [`redact`] had to replace a value since the process started.
pub fn hits() -> u64 {
    HITS.load(Ordering::Relaxed)
}

/// `s` percent-encoded as in a URL's query or path segment: every byte but letters, digits
/// and `-_.~` (also how an S3 copy source's key segments are written).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_plain_url_and_base64_forms() {
        register("p@ss w0rd!");
        let b64 = base64::engine::general_purpose::STANDARD.encode("p@ss w0rd!");
        let text = format!("a p@ss w0rd! b p%40ss%20w0rd%21 c {b64}");
        let out = redact(&text);
        assert_eq!(out, "a [redacted] b [redacted] c [redacted]");
        assert!(hits() >= 3);
    }
}
