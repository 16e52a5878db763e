//! The archive settings of a stream (`inner`, `archive_limits`), validated in
//! [`crate::options`] and used by [`crate::unpack`].

use ferry_formats::archive::Limits;
use ferry_formats::codec::detect;
use schemars::JsonSchema;
use serde::Deserialize;

/// `archive_limits = { entries = …, expanded_bytes = …, ratio = … }`: how much one archive
/// may unpack to before it is refused as a likely zip bomb.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Entries (files, folders) one archive may hold (default 10000).
    #[serde(default = "default_entries")]
    pub entries: u64,
    /// Bytes all the entries of one archive may unpack to, together (default
    /// 17179869184, 16 GiB).
    #[serde(default = "default_expanded_bytes")]
    pub expanded_bytes: u64,
    /// How many times its compressed size an entry of a zip (or a whole tar.gz) may unpack
    /// to, past its first MiB (default 100; real data rarely passes 20, a zip bomb passes
    /// 1000).
    #[serde(default = "default_ratio")]
    pub ratio: u64,
}

fn default_entries() -> u64 {
    Limits::default().entries
}
fn default_expanded_bytes() -> u64 {
    Limits::default().expanded_bytes
}
fn default_ratio() -> u64 {
    Limits::default().ratio
}

impl From<ArchiveLimits> for Limits {
    fn from(l: ArchiveLimits) -> Limits {
        Limits {
            entries: l.entries,
            expanded_bytes: l.expanded_bytes,
            ratio: l.ratio,
        }
    }
}

/// How a stream reads archives: which entries, within which limits.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSpec {
    /// The entries read (`None`: every entry whose extension names a format).
    pub inner: Option<glob::Pattern>,
    /// How much one archive may unpack to.
    pub limits: Limits,
}

impl ArchiveSpec {
    /// Whether the entry `name` is read.
    pub fn keeps(&self, name: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            // `*.csv` takes the CSV files in the archive's folders too
            require_literal_separator: false,
            require_literal_leading_dot: true,
        };
        match &self.inner {
            Some(p) => p.matches_with(name, options),
            None => detect(name).format.is_some(),
        }
    }
}
