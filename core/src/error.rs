//! One error type for every library crate, with a kind the runtime can act on.
//!
//! Why a kind and not many error enums: the retry policy, the exit code and the
//! hint shown to a person all depend on *what class* of failure happened (bad
//! config, no permission, temporary outage), never on the text of a message.
//! Each connector maps its driver's errors to a kind in one place.
//!
//! Context is a list of `key = value` pairs (`stream`, `file`, `line`, `field` …)
//! so an error names exactly where it happened. Never put a secret in a message
//! or in context: errors are printed, logged and written to reports.

use std::fmt;

/// What class of failure an [`Error`] is. Decides retries, exit codes and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is wrong (unknown field, bad value, missing reference).
    ConfigInvalid,
    /// A stream, table, file, bucket or key does not exist.
    NotFound,
    /// The credentials were refused.
    AuthFailed,
    /// The credentials were accepted but lack a permission.
    PermissionDenied,
    /// The remote side could not be reached (DNS, refused, TLS, timeout).
    Unreachable,
    /// The remote side asked us to slow down.
    RateLimited,
    /// A temporary failure that is safe to retry.
    Temporary,
    /// Input data is malformed (a bad CSV row, invalid JSON, a value that does not fit).
    DataInvalid,
    /// The source and destination schemas do not fit together.
    SchemaMismatch,
    /// The connector does not support what was asked (a mode, a type).
    Unsupported,
    /// The run was cancelled (Ctrl-C).
    Cancelled,
    /// A local I/O failure (disk full, permission on a local file).
    Io,
    /// A bug or broken invariant inside Ferry.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Temporary | ErrorKind::RateLimited | ErrorKind::Unreachable
        )
    }

    /// A short hint a person can act on, shown under the error by the CLI.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            ErrorKind::ConfigInvalid => {
                "fix the configuration file; `ferry spec <connector>` lists every field"
            }
            ErrorKind::NotFound => "check the name; `ferry discover` lists what exists",
            ErrorKind::AuthFailed => "check the user name and the secret it refers to",
            ErrorKind::PermissionDenied => {
                "grant the missing permission to the user Ferry connects as"
            }
            ErrorKind::Unreachable => "check host, port, network and TLS settings",
            ErrorKind::RateLimited => "lower the request rate or retry later",
            ErrorKind::Temporary => "retry; the failure looked temporary",
            ErrorKind::DataInvalid => "fix the input, or configure a quarantine for bad rows",
            ErrorKind::SchemaMismatch => {
                "`ferry plan` shows the differences; `on_schema_change` on the stream decides what a change does"
            }
            ErrorKind::Unsupported => {
                "choose a mode or type the connector supports (`ferry connectors`)"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        let s = s.as_ref().and_then(|v| v.as_str()).unwrap_or("error");
        f.write_str(&s.replace('_', " "))
    }
}

/// Ferry's error: a kind, a message, where it happened, and what caused it.
///
/// ```
/// use ferry_core::{Error, ErrorKind};
///
/// let e = Error::new(ErrorKind::NotFound, "no table `orders`").with("stream", "orders");
/// assert_eq!(e.to_string(), "no table `orders` (stream orders)");
/// assert!(!e.is_retryable());
/// assert!(Error::new(ErrorKind::RateLimited, "slow down").is_retryable());
/// ```
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with Ferry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message that names no secret.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
        }
    }

    /// Adds a `key = value` pair saying where the error happened (`stream`, `file`, `line` …).
    pub fn with(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        if !self.context.iter().any(|(k, _)| *k == key) {
            self.context.push((key, value.to_string()));
        }
        self
    }

    /// Attaches the underlying cause.
    pub fn set_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `key = value` context pairs.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// The value of one context key, if set.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether retrying may succeed (see [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Shorthand for an [`ErrorKind::ConfigInvalid`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConfigInvalid, message)
    }

    /// Shorthand for an [`ErrorKind::DataInvalid`] error.
    pub fn data(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::DataInvalid, message)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// An [`ErrorKind::Io`] error about `path`.
    pub fn io(err: std::io::Error, what: &str, path: impl AsRef<std::path::Path>) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{what}: {err}")).with("file", path.as_ref().display())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k} {v}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {self}", self.kind)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::new(ErrorKind::DataInvalid, e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::DataInvalid, format!("invalid JSON: {e}"))
    }
}

/// Adds context to a `Result`'s error in one call: `res.ctx("stream", name)?`.
pub trait ResultExt<T> {
    /// Adds `key = value` to the error, if any.
    fn ctx(self, key: &'static str, value: impl fmt::Display) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn ctx(self, key: &'static str, value: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.with(key, value))
    }
}
