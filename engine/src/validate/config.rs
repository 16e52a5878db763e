//! The checks as `sync.toml` writes them.

use serde::{Deserialize, Serialize};

/// What happens to a row that fails a check.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Quarantine the row (default).
    #[default]
    Error,
    /// Count and report it; the row is written.
    Warn,
    /// Stop the stream before anything more is committed.
    Fail,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        })
    }
}

/// What a `row_count` check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountOf {
    /// The rows this run read (after the transforms, before the checks reject any).
    Run,
    /// The rows the destination holds once this run's rows are committed (asked of the
    /// destination: SQLite, PostgreSQL and MySQL can tell).
    Destination,
}

/// A check as written in `sync.toml` (`checks = [{ type = "not_null", columns = ["id"] }]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckConfig {
    /// The columns hold no NULL.
    NotNull {
        /// The columns.
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// No two rows of this run share these columns' values.
    Unique {
        /// The columns (together).
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text matches a regular expression (NULL passes).
    Regex {
        /// The column.
        column: String,
        /// The pattern (Rust regex syntax; anchor it with ^…$ for a full match).
        pattern: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// A number lies within [min, max] (NULL passes).
    Range {
        /// The column.
        column: String,
        /// Smallest allowed value.
        #[serde(default)]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default)]
        max: Option<f64>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text is one of a list (NULL passes).
    Allowed {
        /// The column.
        column: String,
        /// Allowed values, as text.
        values: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// Text is at most `max` characters (NULL passes).
    MaxLength {
        /// The column.
        column: String,
        /// Maximum length in characters.
        max: usize,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The stream yields between `min` and `max` rows, and about as many as last time
    /// (checked at the end of the stream); or, with `of = "destination"`, the destination
    /// holds that many once the run's rows are committed.
    RowCount {
        /// Fewest rows expected.
        #[serde(default)]
        min: Option<u64>,
        /// Most rows expected.
        #[serde(default)]
        max: Option<u64>,
        /// Largest change against the last run's count, as a share (`0.5`: at most 50% more
        /// or fewer rows). Passes when there is no previous count.
        #[serde(default)]
        max_change: Option<f64>,
        /// What is counted: `run` (the rows this run read, after the transforms) or
        /// `destination` (the rows the destination table holds after the run). Default:
        /// `destination` for an incremental stream (a quiet rerun reads no row, and the
        /// table still holds them all), `run` otherwise.
        #[serde(default)]
        of: Option<CountOf>,
        /// fail (default for this check: an unexpected count stops the run) or warn.
        #[serde(default = "fail")]
        severity: Severity,
    },
    /// A string column's text parses as a Ferry type (NULL passes).
    Type {
        /// The column (string or json).
        column: String,
        /// The type its text must parse as (`int64`, `float64`, `decimal(12,2)`, `date`, `timestamp`, `bool`, `json` …).
        is: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// Every value is among the values another stream of the same run delivered (NULL passes).
    Referential {
        /// The column holding the references.
        column: String,
        /// The referenced stream (its source name, as in `[[streams]]`); it runs first.
        stream: String,
        /// The referenced stream's column (values compare by their text form).
        stream_column: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The newest value of a timestamp or date column is recent (checked at the end of the stream).
    Freshness {
        /// The column (timestamp or date).
        column: String,
        /// How old the newest value may be: `90s`, `30m`, `24h`, `7d`, `2w`, or a sum like `1h30m`.
        max_age: String,
        /// fail (default for this check) or warn.
        #[serde(default = "fail")]
        severity: Severity,
    },
}

fn fail() -> Severity {
    Severity::Fail
}
