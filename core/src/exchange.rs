//! Requests a source made and what came back, kept for a debug bundle.
//!
//! A source that talks HTTP yields a [`crate::Message::Exchange`] for every attempt of
//! every request of a read (the failing last one included: a 500 body, a malformed page,
//! a timeout). The runtime keeps the last [`KEEP`] of each stream in a [`Recorder`] and,
//! when the stream fails, hands them to the run report, so `ferry sync` can write them
//! into the bundle and `ferry replay` can answer the same requests from them. Nothing of
//! them is written or logged unless the stream fails.
//!
//! Nothing secret is kept: the source leaves out credentials (auth headers, key-carrying
//! query values, cookies: see [`safe_headers`]) and the recorder sets the values of
//! columns a `hash`, `encrypt` or `mask` transform protects to `null` in every body
//! ([`mask_body`]) before it hands them on.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Exchanges kept per stream: the last ones before the failure.
pub const KEEP: usize = 10;

/// Bytes of a body kept; the rest is dropped and [`Exchange::truncated`] set.
pub const MAX_BODY: usize = 256 * 1024;

/// One attempt of one request and its answer (or why there was none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// `GET`, `POST` …
    pub method: String,
    /// The URL, without user info and with key-carrying query values `[redacted]`.
    pub url: String,
    /// 1 for the first try, 2 for the first retry …
    pub attempt: u32,
    /// What the request was for: `page 2`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub what: String,
    /// The answer's status; `None` when none came (timeout, connection refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Request headers sent, credentials left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<(String, String)>,
    /// Response headers, cookies and credentials left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(String, String)>,
    /// The response body as text (lossy UTF-8), at most [`MAX_BODY`] bytes.
    #[serde(default)]
    pub body: String,
    /// Whether the body was longer than what is kept.
    #[serde(default)]
    pub truncated: bool,
    /// Why the attempt failed without an answer, or what was wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds the attempt took.
    #[serde(default)]
    pub elapsed_ms: u64,
}

impl Exchange {
    /// Sets the body from raw bytes, cut to [`MAX_BODY`] on a character boundary.
    pub fn with_body(mut self, bytes: &[u8]) -> Self {
        let cut = bytes.len().min(MAX_BODY);
        let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
        if cut < bytes.len() {
            // a character split at the cut becomes U+FFFD; drop it
            if text.ends_with('\u{FFFD}') {
                text.pop();
            }
            self.truncated = true;
        }
        self.body = text;
        self
    }

    /// The response header `name` (any case), if recorded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Header names never recorded, and fragments that mark a name as carrying a credential.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
const SENSITIVE: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "auth",
    "signature",
    "session",
    "credential",
];

/// `headers` fit for a bundle: credentials and cookies left out, every registered secret
/// scrubbed from the values.
pub fn safe_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !DROPPED_HEADERS.contains(&k.as_str()) && !SENSITIVE.iter().any(|s| k.contains(s))
        })
        .map(|(k, v)| (k.to_string(), crate::redact::redact(v)))
        .collect()
}

/// The last [`KEEP`] exchanges of one stream. Bodies are masked when handed out
/// ([`Recorder::into_vec`], once, when the stream fails), not as they arrive: a read that
/// succeeds never pays for it.
#[derive(Debug, Default)]
pub struct Recorder {
    ring: VecDeque<Exchange>,
    protected: Vec<String>,
}

impl Recorder {
    /// A recorder masking the `protected` columns in bodies.
    pub fn new(protected: &[String]) -> Self {
        Recorder {
            ring: VecDeque::with_capacity(KEEP),
            protected: protected.to_vec(),
        }
    }

    /// Keeps `x`, dropping the oldest beyond [`KEEP`].
    pub fn push(&mut self, x: Exchange) {
        if self.ring.len() == KEEP {
            self.ring.pop_front();
        }
        self.ring.push_back(x);
    }

    /// The exchanges kept, oldest first, protected columns masked in their bodies.
    pub fn into_vec(self) -> Vec<Exchange> {
        let protected = self.protected;
        self.ring
            .into_iter()
            .map(|mut x| {
                if !protected.is_empty() {
                    x.body = mask_body(&x.body, &protected);
                }
                x
            })
            .collect()
    }
}

/// `body` with the values of `protected` columns set to `null`.
///
/// Masking is done in the text, so the body keeps its layout and key order (a replay
/// infers the same columns) and a malformed page stays as malformed as it was, its error
/// at the same line and column: every `"key": value` whose key is masked gets `null`
/// padded with spaces to the value's length, wherever that key appears. In a JSON
/// body a key is masked when its name is a protected column, or its path of nested keys
/// joined by `_`, `.` or `__` is (a flattened column such as `address_city`); in a body
/// that does not parse, when its name is a protected column or the last part of one
/// (`city` for `address_city`).
pub fn mask_body(body: &str, protected: &[String]) -> String {
    if protected.is_empty() {
        return body.to_string();
    }
    let mut names: Vec<String> = Vec::new();
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => masked_keys(&v, &[], protected, 0, &mut names),
        Err(_) => {
            for p in protected {
                names.push(p.clone());
                if let Some(leaf) = p.rsplit(['_', '.']).next().filter(|l| !l.is_empty()) {
                    names.push(leaf.to_string());
                }
            }
        }
    }
    if names.is_empty() {
        return body.to_string();
    }
    // masked in the text, so key order and layout stay as the API wrote them
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    mask_text(body, &names)
}

/// Collects the keys of `v` whose value is a protected column's.
fn masked_keys(
    v: &serde_json::Value,
    parents: &[String],
    protected: &[String],
    depth: usize,
    out: &mut Vec<String>,
) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let mut names = vec![k.clone()];
                if depth < 6 {
                    for p in parents {
                        for sep in ["_", ".", "__"] {
                            names.push(format!("{p}{sep}{k}"));
                        }
                    }
                }
                if names.iter().any(|n| protected.contains(n)) {
                    if !out.contains(k) {
                        out.push(k.clone());
                    }
                } else {
                    masked_keys(child, &names, protected, depth + 1, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                masked_keys(item, &[], protected, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// Replaces the value after every `"name"` + `:` with `null`, in text that may not parse.
fn mask_text(body: &str, names: &[&str]) -> String {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        // a string literal starts at i
        let end = string_end(bytes, i);
        let closed = end > i + 1 && bytes[end - 1] == b'"';
        let text = &body[i + 1..if closed { end - 1 } else { bytes.len() }];
        let mut j = end;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b':' && names.contains(&text) {
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let value_end = value_end(bytes, j);
            out.push_str(&body[copied..j]);
            out.push_str(&null_like(&bytes[j..value_end]));
            copied = value_end;
            i = value_end;
        } else {
            i = end;
        }
    }
    out.push_str(&body[copied..]);
    out
}

/// `null` padded with spaces to the bytes of `value`, its line breaks kept: the text
/// keeps its length and lines, so a parse error of the page is at the same line and
/// column in a replay.
fn null_like(value: &[u8]) -> String {
    let mut out = String::from("null");
    for &b in value.iter().skip(4) {
        out.push(if b == b'\n' { '\n' } else { ' ' });
    }
    out
}

/// The index just past the string literal opening at `start` (or the end of text).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index just past the JSON value starting at `start`: a string, a bracketed value
/// (nesting and strings respected) or a bare token up to `,`, `}`, `]` or a line end.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        None => start,
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            bytes.len()
        }
        Some(_) => {
            let mut i = start;
            while i < bytes.len() && !matches!(bytes[i], b',' | b'}' | b']' | b'\n' | b'\r') {
                i += 1;
            }
            i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_bodies_lose_protected_values_flat_and_flattened() {
        let body = r#"{"data":[{"id":1,"email":"ann@x.io","address":{"city":"Oslo","zip":"0150"}}],"next":2}"#;
        let out = mask_body(body, &p(&["email", "address_city"]));
        assert!(!out.contains("ann@x.io") && !out.contains("Oslo"), "{out}");
        assert!(out.contains("0150") && out.contains("\"id\":1"), "{out}");
    }

    #[test]
    fn malformed_bodies_are_masked_in_their_text_and_stay_malformed() {
        let body = "{\"data\":[{\"id\":1,\"email\": \"ann@x.io\", \"note\":\"a\\\"b\"},{\"id\":2,\"email\":\"bob@x.io\"";
        let out = mask_body(body, &p(&["email"]));
        assert!(
            !out.contains("ann@x.io") && !out.contains("bob@x.io"),
            "{out}"
        );
        assert!(
            out.contains("\"email\": null ") && out.contains(r#"a\"b"#),
            "{out}"
        );
        assert_eq!(out.len(), body.len(), "positions are kept");
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_err());
    }

    #[test]
    fn the_recorder_keeps_the_last_exchanges_masked() {
        let mut r = Recorder::new(&p(&["email"]));
        for n in 0..(KEEP as u32 + 3) {
            r.push(Exchange {
                method: "GET".into(),
                url: format!("http://api.test/x?page={n}"),
                attempt: 1,
                what: String::new(),
                status: Some(200),
                request_headers: vec![],
                response_headers: vec![],
                body: format!(r#"[{{"email":"u{n}@x.io"}}]"#),
                truncated: false,
                error: None,
                elapsed_ms: 1,
            });
        }
        let kept = r.into_vec();
        assert_eq!(kept.len(), KEEP);
        assert!(kept[0].url.ends_with("page=3"), "{}", kept[0].url);
        assert!(kept.iter().all(|x| !x.body.contains("@x.io")));
    }

    #[test]
    fn credentials_and_cookies_are_not_recorded() {
        let h = safe_headers([
            ("Authorization", "Bearer abc"),
            ("X-Api-Key", "k"),
            ("Set-Cookie", "s=1"),
            ("Content-Type", "application/json"),
            ("Link", "<http://a/x?page=2>; rel=\"next\""),
        ]);
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["Content-Type", "Link"]);
    }

    #[test]
    fn long_bodies_are_cut_and_flagged() {
        let x = Exchange {
            method: "GET".into(),
            url: "http://a/".into(),
            attempt: 1,
            what: String::new(),
            status: Some(200),
            request_headers: vec![],
            response_headers: vec![],
            body: String::new(),
            truncated: false,
            error: None,
            elapsed_ms: 0,
        }
        .with_body(&vec![b'a'; MAX_BODY + 10]);
        assert!(x.truncated);
        assert_eq!(x.body.len(), MAX_BODY);
    }
}
