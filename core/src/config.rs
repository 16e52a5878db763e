//! Config nodes: a connector's section of `sync.toml`, kept with its positions so the
//! connector parses its own typed config later, with errors that name the file, line, column
//! and the nearest valid key. The whole file (`SyncConfig`: streams, run settings) is the
//! engine's (`ferry_engine::config`); this module is what a connector sees.
//!
//! The CLI shows the offending line with a caret ([`render_snippet`]). Parsing is pure: no
//! connection is made until `check` or `sync`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
pub use toml::de::{DeTable, DeValue};
pub use toml::Spanned;

mod snippet;
pub use snippet::render_snippet;

use crate::secret::{self, ResolveContext};
use crate::suggest::nearest;
use crate::{Error, ErrorKind, Result};

/// A config file's path and text, shared by every node parsed from it.
#[derive(Debug)]
pub struct ConfigFile {
    /// The path as given.
    pub path: PathBuf,
    /// The whole text.
    pub text: &'static str,
}

impl ConfigFile {
    /// A file read once; its text lives for the whole process (see [`ConfigNode`]).
    pub fn new(path: impl Into<PathBuf>, text: String) -> Arc<ConfigFile> {
        Arc::new(ConfigFile {
            path: path.into(),
            text: leak(text),
        })
    }

    /// The file's top-level table, or a positioned error when it is not valid TOML.
    pub fn parse_table(&self) -> Result<Spanned<DeTable<'static>>> {
        DeTable::parse(self.text)
            .map_err(|e| self.error_at(e.span().map(|s| s.start), first_line(e.message())))
    }

    /// One-based line and column of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }

    /// An [`ErrorKind::ConfigInvalid`] error at byte `offset`, with file/line/column context.
    pub fn error_at(&self, offset: Option<usize>, message: impl Into<String>) -> Error {
        let mut e = Error::config(message).with("file", self.path.display());
        if let Some(o) = offset {
            let (line, col) = self.line_col(o);
            e = e.with("line", line).with("column", col);
        }
        e
    }
}

/// One table of a config file (a connector's section), kept with its positions so that
/// the connector's typed config can be parsed later with positioned errors.
///
/// ```
/// use ferry_core::ConfigNode;
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Conn { path: String }
///
/// let node = ConfigNode::from_toml("path = \"a.db\"", ".").unwrap();
/// assert_eq!(node.parse::<Conn>().unwrap().path, "a.db");
/// let typo = ConfigNode::from_toml("pth = \"a.db\"", ".").unwrap();
/// let err = typo.parse::<Conn>().err().unwrap();
/// assert!(err.to_string().contains("did you mean `path`"));
/// assert_eq!(err.context_value("line"), Some("1"));
/// ```
#[derive(Clone)]
pub struct ConfigNode {
    value: Spanned<DeValue<'static>>,
    file: Arc<ConfigFile>,
    /// Dotted path of this node in the file (`source`, `destination`).
    path: String,
    ctx: ResolveContext,
}

impl std::fmt::Debug for ConfigNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConfigNode({} in {})",
            self.path,
            self.file.path.display()
        )
    }
}

impl ConfigNode {
    /// Parses this node into a connector's config type. Secret references are resolved
    /// now; unknown or missing fields and wrong types are positioned errors.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        let de = toml::de::ValueDeserializer::from(self.value.clone());
        let (result, clear) = secret::with_context(self.ctx.clone(), || {
            serde_path_to_error::deserialize::<_, T>(de)
        });
        if !clear.is_empty() {
            tracing::warn!(
                "{}: [{}] holds a secret in clear text; store it with `ferry secrets set NAME` and write \"${{secret:NAME}}\"",
                self.file.path.display(),
                self.path
            );
        }
        result.map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let msg = improve_message(inner.message());
            let at = if field == "." {
                self.path.clone()
            } else {
                format!("{}.{}", self.path, field)
            };
            self.file
                .error_at(inner.span().map(|s| s.start), format!("{msg} (in `{at}`)"))
        })
    }

    /// A node over `value` of `file`, named `path` in errors (`source`, `destination`).
    pub fn new(
        value: Spanned<DeValue<'static>>,
        file: Arc<ConfigFile>,
        path: impl Into<String>,
        ctx: ResolveContext,
    ) -> ConfigNode {
        ConfigNode {
            value,
            file,
            path: path.into(),
            ctx,
        }
    }

    /// The file this node came from.
    pub fn file(&self) -> &Arc<ConfigFile> {
        &self.file
    }

    /// Where this node starts (byte offset), for errors about the node as a whole.
    pub fn offset(&self) -> usize {
        self.value.span().start
    }

    /// The folder relative paths in this node are relative to.
    pub fn base_dir(&self) -> &Path {
        &self.ctx.base_dir
    }

    /// A node made from TOML text (for tests and the conformance kit).
    pub fn from_toml(text: &str, base_dir: impl Into<PathBuf>) -> Result<ConfigNode> {
        let file = ConfigFile::new("<inline>", text.to_string());
        let table = file.parse_table()?;
        let value = Spanned::new(table.span(), DeValue::Table(table.into_inner()));
        Ok(ConfigNode {
            value,
            file,
            path: "config".into(),
            ctx: ResolveContext {
                base_dir: base_dir.into(),
                vault: None,
            },
        })
    }
}

/// Config text lives for the whole process (a few KiB, read once), which lets parsed
/// nodes keep zero-copy, positioned values without a lifetime.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Adds "did you mean" to serde's unknown-field and unknown-variant messages.
fn improve_message(msg: &str) -> String {
    for marker in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = msg.strip_prefix(marker) {
            let Some((bad, tail)) = rest.split_once('`') else {
                break;
            };
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let what = if marker.contains("field") {
                "field"
            } else {
                "value"
            };
            let mut out = format!("unknown {what} `{bad}`");
            if let Some(best) = nearest(bad, expected.iter().copied()) {
                out.push_str(&format!("; did you mean `{best}`?"));
            }
            if !expected.is_empty() {
                out.push_str(&format!(" (valid: {})", expected.join(", ")));
            }
            return out;
        }
    }
    without_value(msg.trim_end_matches('\n'))
}

/// serde's "invalid type: integer `12345678`, expected a string" without the value: the
/// field may be a secret written without quotes (`password = 12345678`), and the line
/// with the caret already shows where it is.
fn without_value(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some(at) = rest.rfind(", expected ") else {
            continue;
        };
        let (found, expected) = rest.split_at(at);
        let kind = found.split(['`', '"']).next().unwrap_or(found).trim_end();
        return format!("{prefix}{kind}{expected}");
    }
    msg.to_string()
}

/// The source or destination section: its connector name and its own fields.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The `type` value: a connector name.
    pub kind: String,
    /// Byte offset of the `type` value, for "unknown connector" errors.
    pub kind_offset: usize,
    /// The section without `type`, parsed by the connector with [`ConfigNode::parse`].
    pub node: ConfigNode,
}

/// The first line of a parser's message (toml's run over several lines).
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Checks that an error is a config error (`ErrorKind::ConfigInvalid`).
pub fn is_config_error(e: &Error) -> bool {
    e.kind() == ErrorKind::ConfigInvalid
}

/// A config struct as every connector's is: serde with `deny_unknown_fields` (a misspelt
/// key is an error, with "did you mean"), and a JSON Schema for `ferry spec`. The crate
/// using it needs `serde` and `schemars` as dependencies.
#[doc(hidden)]
#[macro_export]
macro_rules! config_struct {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name { $($body)* }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_left_out_of_type_errors() {
        assert_eq!(
            without_value(r#"invalid value: string "a, expected b", expected one of x"#),
            "invalid value: string, expected one of x"
        );
    }

    #[test]
    fn snippet_has_caret() {
        let s = render_snippet("sync.toml", "a\n  bad = 1\n", 2, 3);
        assert!(s.contains("2 |   bad = ***"), "{s}");
        assert!(s.ends_with("  |   ^\n"), "{s:?}");
    }
}
