//! Host-key pinning: the keys the server may present, from `host_key` or a known_hosts
//! file, and the refusal of any other, naming the presented key's fingerprint as
//! `ssh-keygen -l` prints it (`SHA256:` and the unpadded base64 of the key's SHA-256).
//!
//! There is deliberately no way to accept an unknown key: the first connection to a new
//! server is where a man in the middle would sit.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ferry_core::{Error, ErrorKind, Result};

/// Where the accepted keys come from.
#[derive(Debug, Clone)]
pub enum Pin {
    /// `host_key = "ssh-ed25519 AAAA…"`.
    Key(HostKey),
    /// `known_hosts = "path"`, read at each connection.
    KnownHosts(PathBuf),
}

/// A public host key: its algorithm name and its wire-format blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The algorithm's name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The key in the SSH wire format.
    pub blob: Vec<u8>,
}

impl HostKey {
    /// Parses `ssh-ed25519 AAAA… [comment]`; `what` names the setting in errors.
    fn parse(text: &str, what: &str) -> Result<HostKey> {
        let mut parts = text.split_whitespace();
        let (Some(algorithm), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(Error::config(format!(
                "{what} is not a public key: write it as `ssh-keyscan` prints it, e.g. \"ssh-ed25519 AAAAC3Nz…\""
            )));
        };
        let blob = STANDARD.decode(b64).map_err(|_| {
            Error::config(format!(
                "{what}: the key after `{algorithm}` is not valid base64 (copy the whole line from `ssh-keyscan`)"
            ))
        })?;
        // the blob starts with its own algorithm name: a mislabelled key is a copy error
        if blob_algorithm(&blob).as_deref() != Some(algorithm) {
            return Err(Error::config(format!(
                "{what}: the key is labelled `{algorithm}` but is not one (copy the whole line from `ssh-keyscan`)"
            )));
        }
        Ok(HostKey {
            algorithm: algorithm.to_string(),
            blob,
        })
    }

    /// The key's fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }
}

/// `SHA256:<unpadded base64>` of a key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest.as_ref()))
}

/// The algorithm name a key blob starts with (a length-prefixed string).
fn blob_algorithm(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

impl Pin {
    /// The pin a config asks for: exactly one of `host_key` and `known_hosts` (a relative
    /// file is relative to `base_dir`). `role` names the server in errors (`SFTP server`).
    pub fn new(
        host_key: Option<&str>,
        known_hosts: Option<&str>,
        base_dir: &Path,
        role: &str,
    ) -> Result<Pin> {
        match (host_key, known_hosts) {
            (Some(k), None) => Ok(Pin::Key(HostKey::parse(k, "`host_key`")?)),
            (None, Some(f)) => Ok(Pin::KnownHosts(base_dir.join(f))),
            (Some(_), Some(_)) => Err(Error::config(
                "set `host_key` or `known_hosts`, not both",
            )),
            (None, None) => Err(Error::config(format!(
                "the {role}'s host key is not pinned: set `host_key = \"ssh-ed25519 AAAA…\"` (from `ssh-keyscan -p PORT HOST`, checked with the client out of band) or `known_hosts = \"path\"`; Ferry never accepts an unknown server key",
            ))),
        }
    }

    /// The keys `host:port` may present.
    pub fn accepted(&self, host: &str, port: u16) -> Result<Vec<HostKey>> {
        match self {
            Pin::Key(k) => Ok(vec![k.clone()]),
            Pin::KnownHosts(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io(e, "cannot read the known_hosts file", path))?;
                let keys = known_hosts(&text, host, port);
                if keys.is_empty() {
                    let name = host_name(host, port);
                    return Err(Error::new(
                        ErrorKind::ConfigInvalid,
                        format!(
                            "the known_hosts file `{}` has no key for `{name}`: add the server's line (`ssh-keyscan -p {port} {host}`, its fingerprint checked with the client out of band)",
                            path.display()
                        ),
                    ));
                }
                Ok(keys)
            }
        }
    }

    /// Refuses a presented key that is not accepted, naming its fingerprint (`role` names
    /// the server: `SFTP server`).
    pub fn verify(&self, role: &str, host: &str, port: u16, presented: &[u8]) -> Result<()> {
        let accepted = self.accepted(host, port)?;
        if accepted.iter().any(|k| k.blob == presented) {
            return Ok(());
        }
        let algorithm = blob_algorithm(presented).unwrap_or_else(|| "unknown".into());
        let pinned: Vec<String> = accepted.iter().map(HostKey::fingerprint).collect();
        let source = match self {
            Pin::Key(_) => "`host_key`".to_string(),
            Pin::KnownHosts(p) => format!("`known_hosts` ({})", p.display()),
        };
        Err(Error::new(
            ErrorKind::AuthFailed,
            format!(
                "the {role} {} presented host key {algorithm} {}, which is not the one pinned in {source} ({}): nothing was sent to it. If the client changed the server's key, confirm the new fingerprint with them out of band and update {source}; otherwise the connection may be intercepted",
                host_name(host, port),
                fingerprint(presented),
                pinned.join(", ")
            ),
        ))
    }
}

/// How known_hosts names a server: `host`, or `[host]:port` off port 22.
fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The keys a known_hosts text lists for `host:port` (plain, wildcard or hashed names;
/// `@revoked` lines remove a key, `@cert-authority` lines are not used).
fn known_hosts(text: &str, host: &str, port: u16) -> Vec<HostKey> {
    let name = host_name(host, port);
    let (mut keys, mut revoked) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (marker, rest) = match line.strip_prefix('@') {
            Some(r) => match r.split_once(char::is_whitespace) {
                Some((m, rest)) => (Some(m), rest.trim_start()),
                None => continue,
            },
            None => (None, line),
        };
        let Some((names, key)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        if !names_match(names, &name) {
            continue;
        }
        let Ok(key) = HostKey::parse(key, "known_hosts") else {
            continue;
        };
        match marker {
            None => keys.push(key),
            Some("revoked") => revoked.push(key),
            Some(_) => {}
        }
    }
    keys.retain(|k| !revoked.contains(k));
    keys
}

/// Whether a known_hosts name field (`a,b,!c`, `*.example`, `|1|salt|hash`) covers `name`.
fn names_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut hit = false;
    for pattern in field.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        let matches = wildcard(pattern.as_bytes(), name.as_bytes());
        if matches && negated {
            return false;
        }
        hit |= matches;
    }
    hit
}

/// Whether `name` fits `pattern`, where only `*` (any run) and `?` (one character) are
/// special (`[host]:port` is literal).
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

/// `salt|hash`: HMAC-SHA1 of the name keyed by the salt, as `ssh-keygen -H` writes.
fn hashed_match(field: &str, name: &str) -> bool {
    let Some((salt, hash)) = field.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPPkE/MLP/3h0QPTeY1ZkAhn8kLOMPHpBYc2f6FspVkm";

    #[test]
    fn fingerprints_are_as_ssh_keygen_prints_them() {
        let k = HostKey::parse(ED, "k").unwrap();
        // `ssh-keygen -lf` of the same line
        assert_eq!(
            k.fingerprint(),
            "SHA256:2zWBx8yualCi0B5jpnApy/ZW1y6vlBuTPGiZZuuzISI"
        );
        assert_eq!(k.algorithm, "ssh-ed25519");
        let e = HostKey::parse(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIPPkE/MLP/3h0QPTeY1ZkAhn8kLOMPHpBYc2f6FspVkm",
            "`host_key`",
        )
        .unwrap_err();
        assert!(e.to_string().contains("labelled `ssh-rsa`"), "{e}");
        assert!(HostKey::parse("AAAA", "k").is_err());
    }

    #[test]
    fn known_hosts_lines_match_by_name_port_and_hash() {
        let text = format!(
            "# comment\n[127.0.0.1]:2222 {ED}\nother.example {ED}\n|1|IUrYfmtsIqXrXZ0a6Wlf4NamaeA=|8HXFHWRhn/SuMnSHdKx/bzJPO+c= {ED}\n"
        );
        assert_eq!(known_hosts(&text, "127.0.0.1", 2222).len(), 1);
        assert_eq!(known_hosts(&text, "127.0.0.1", 22).len(), 0);
        assert_eq!(known_hosts(&text, "other.example", 22).len(), 1);
        // the hashed line is `192.168.1.61` (`ssh-keygen -H`)
        assert_eq!(known_hosts(&text, "192.168.1.61", 22).len(), 1);
        let revoked = format!("*.example {ED}\n@revoked a.example {ED}\n");
        assert!(known_hosts(&revoked, "a.example", 22).is_empty());
        assert_eq!(known_hosts(&revoked, "b.example", 22).len(), 1);
        assert!(!names_match("*.example,!b.example", "b.example"));
    }
}
