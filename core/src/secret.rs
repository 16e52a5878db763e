//! Secrets: unprintable from the moment they are read.
//!
//! A [`Secret`] wraps `secrecy::SecretString`. Its `Debug`, `Display` and `Serialize`
//! all print `[redacted]`, so a config, an error or a report that contains one can be
//! logged safely. In config files a secret is usually a *reference*, resolved when the
//! config is loaded:
//!
//! * `${env:NAME}`: the environment variable `NAME`;
//! * `${file:path}`: the file's contents, trailing newline removed (relative to the config file);
//! * `${secret:name}`: the client's encrypted vault (see SECURITY.md).
//!
//! References may stand inside a longer string (`postgres://u:${env:PW}@db/x`).
//! Every resolved value — each reference's own value and the whole string — is also
//! registered with [`crate::redact`], which scrubs it from any text Ferry prints or writes.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::{Error, ErrorKind, Result};

/// A credential or other sensitive string. Prints as `[redacted]`.
///
/// ```
/// use ferry_core::Secret;
///
/// let s = Secret::new("hunter2-password");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose(), "hunter2-password");
/// // every resolved secret is also scrubbed from any text passed through the leak guard
/// assert_eq!(ferry_core::redact::redact("pw=hunter2-password"), "pw=[redacted]");
/// ```
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value already in memory.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        crate::redact::register(&value);
        Secret(SecretString::from(value))
    }

    /// The value, for the one place that must use it (a driver's connect call).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "writeOnly": true,
            "description": "A secret: write a reference such as ${secret:NAME}, ${env:NAME} or ${file:path}, not the value."
        })
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let clear_text = !raw.contains("${") && !is_password_free_database_url(&raw);
        let value = resolve(&raw).map_err(serde::de::Error::custom)?;
        if clear_text && !raw.is_empty() {
            CONTEXT.with(|c| c.borrow_mut().clear_text.push(SecretString::from(raw)));
        }
        Ok(Secret::new(value))
    }
}

/// A database URL with no password in it (`postgres://ferry@db:5432/app`): a connection
/// field that is a secret only when it holds one, so it is not reported as one in clear text.
/// Only database schemes: other URLs (webhooks) carry tokens in their paths.
fn is_password_free_database_url(raw: &str) -> bool {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    if !["postgres", "postgresql", "mysql", "mariadb"].contains(&scheme.as_str()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let userinfo_has_password = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    !userinfo_has_password && !rest.to_ascii_lowercase().contains("password=")
}

/// Looks up `${secret:NAME}` references; the vault implements it.
pub trait Vault: Send + Sync {
    /// The value stored under `name`.
    fn get(&self, name: &str) -> Result<Secret>;
}

/// What secret references are resolved against while a config is being loaded.
#[derive(Clone, Default)]
pub struct ResolveContext {
    /// Folder `${file:…}` paths are relative to.
    pub base_dir: PathBuf,
    /// Where `${secret:…}` looks (none: such references are an error).
    pub vault: Option<Arc<dyn Vault>>,
}

#[derive(Default)]
struct State {
    ctx: ResolveContext,
    clear_text: Vec<SecretString>,
}

thread_local! {
    static CONTEXT: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` with `ctx` as the resolution context of [`Secret`] deserialization on this
/// thread; returns what `f` returned and the secrets that were written in clear text.
pub fn with_context<T>(ctx: ResolveContext, f: impl FnOnce() -> T) -> (T, Vec<SecretString>) {
    let previous = CONTEXT.with(|c| {
        std::mem::replace(
            &mut *c.borrow_mut(),
            State {
                ctx,
                clear_text: Vec::new(),
            },
        )
    });
    let out = f();
    let state = CONTEXT.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    (out, state.clear_text)
}

/// Largest `${file:…}` secret read: a key or a password is a few KiB at most, and without
/// a bound `${file:/dev/zero}` would fill memory.
const MAX_SECRET_FILE: u64 = 1 << 20;

fn read_secret_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {} KiB", MAX_SECRET_FILE >> 10),
        ));
    }
    Ok(text)
}

/// Replaces every `${env:…}`, `${file:…}` and `${secret:…}` in `raw` by its value.
/// `$${` stands for a literal `${`. Errors name the reference, never a value.
pub fn resolve(raw: &str) -> Result<String> {
    if !raw.contains("${") {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| {
            Error::config(format!(
                "unclosed reference `{}`: write ${{kind:name}}",
                &rest[i..]
            ))
        })?;
        let reference = &rest[i + 2..i + end];
        let value = resolve_one(reference)?;
        // the part alone is a secret too: a DSN's password may be printed without the DSN
        crate::redact::register(&value);
        out.push_str(&value);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_one(reference: &str) -> Result<String> {
    let (kind, arg) = reference.split_once(':').ok_or_else(|| {
        Error::config(format!(
            "reference `${{{reference}}}` has no kind: write ${{env:NAME}}, ${{file:path}} or ${{secret:NAME}}"
        ))
    })?;
    let ctx = CONTEXT.with(|c| c.borrow().ctx.clone());
    match kind {
        "env" => std::env::var(arg).map_err(|_| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("environment variable `{arg}` (from `${{env:{arg}}}`) is not set"),
            )
        }),
        "file" => {
            let path = ctx.base_dir.join(arg);
            let text = read_secret_file(&path).map_err(|e| {
                Error::io(e, &format!("cannot read secret file from `${{file:{arg}}}`"), &path)
            })?;
            Ok(text.trim_end_matches(['\n', '\r']).to_string())
        }
        "secret" => match &ctx.vault {
            Some(v) => Ok(v.get(arg)?.expose().to_string()),
            None => Err(Error::config(format!(
                "`${{secret:{arg}}}` needs the client's vault, and none is open: run `ferry secrets set {arg}` in the client folder"
            ))),
        },
        other => Err(Error::config(format!(
            "unknown reference kind `{other}` in `${{{reference}}}`: use env, file or secret"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_read_only_up_to_a_bound() {
        let e = read_secret_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn only_secrets_that_hold_one_are_reported_in_clear_text() {
        let clear = |raw: &str| {
            let (s, clear) = with_context(ResolveContext::default(), || {
                serde_json::from_value::<Secret>(serde_json::json!(raw)).unwrap()
            });
            assert_eq!(s.expose(), raw);
            !clear.is_empty()
        };
        for free in [
            "postgres://ferry@127.0.0.1:5432/app",
            "postgresql://db/app?sslmode=require",
            "mysql://root@localhost/shop",
        ] {
            assert!(!clear(free), "{free} holds no password");
        }
        for held in [
            "postgres://ferry:pw@127.0.0.1/app",
            "postgresql://db/app?user=a&password=pw",
            "https://hooks.example.com/services/T00/B00/token",
            "plain-api-key",
        ] {
            assert!(clear(held), "{held} is a secret in clear text");
        }
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-canary");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
    }

    #[test]
    fn a_reference_inside_a_longer_string_registers_its_own_value() {
        std::env::set_var("FERRY_TEST_INLINE_PW", "inline-pw-6d2f0a");
        let s: Secret =
            serde_json::from_str(r#""postgresql://u:${env:FERRY_TEST_INLINE_PW}@h/db""#).unwrap();
        assert_eq!(s.expose(), "postgresql://u:inline-pw-6d2f0a@h/db");
        assert_eq!(
            crate::redact::redact("login failed, password inline-pw-6d2f0a"),
            "login failed, password [redacted]"
        );
    }

    #[test]
    fn references_resolve_inline() {
        std::env::set_var("FERRY_TEST_SECRET_REF", "pw");
        assert_eq!(
            resolve("a:${env:FERRY_TEST_SECRET_REF}@b").unwrap(),
            "a:pw@b"
        );
        assert_eq!(resolve("cost $${x}").unwrap(), "cost ${x}");
        let err = resolve("${env:FERRY_TEST_NOT_SET_123}").unwrap_err();
        assert!(err.to_string().contains("FERRY_TEST_NOT_SET_123"));
        assert!(resolve("${nope:x}").is_err());
        assert!(resolve("${secret:x}")
            .unwrap_err()
            .to_string()
            .contains("ferry secrets set x"));
    }
}
