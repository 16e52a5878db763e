//! What a source offers: its streams, their schemas, and how each can be read.

use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::types::{self, FerryType};

/// How a destination stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Add the rows; existing rows stay.
    Append,
    /// Replace the destination's contents with this run's rows, made visible all at once
    /// at the end (stage then swap), so a failed run never leaves a half table.
    Overwrite,
    /// Insert new rows and update existing ones, matched by the primary key.
    Upsert,
    /// Keep every version of each keyed row (SCD type 2): a changed row closes its
    /// current version ([`VALID_TO`]) and adds a new one ([`VALID_FROM`],
    /// [`IS_CURRENT`]); an unchanged row (same [`ROW_HASH`]) writes nothing.
    History,
}

impl std::fmt::Display for WriteMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Upsert => "upsert",
            WriteMode::History => "history",
        })
    }
}

/// What happens to destination rows whose key the source no longer holds (a stream's
/// `deletes`). Only after a complete read: a trial, a failed or a filtered read deletes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deletes {
    /// Delete them.
    Hard,
    /// Keep them, marked: `_ferry_deleted_at` holds when they were found gone.
    Soft,
}

impl std::fmt::Display for Deletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Deletes::Hard => "hard",
            Deletes::Soft => "soft",
        })
    }
}

/// The column a soft delete marks rows in.
pub const DELETED_AT: &str = "_ferry_deleted_at";

/// A history table's version start: the run's start, part of the primary key.
pub const VALID_FROM: &str = "_ferry_valid_from";
/// A history table's version end: NULL while the version is current.
pub const VALID_TO: &str = "_ferry_valid_to";
/// Whether a history table's row is its key's current version.
pub const IS_CURRENT: &str = "_ferry_is_current";
/// A hash of a history row's delivered values outside the key: equal hashes, no new version.
pub const ROW_HASH: &str = "_ferry_row_hash";

/// How a source stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Every row, every time.
    FullRefresh,
    /// Only rows newer than the saved state (by a cursor column, a file time …).
    Incremental,
}

/// One stream a source offers.
///
/// ```
/// use std::sync::Arc;
/// use ferry_core::{arrow_schema::Schema, FerryType, StreamInfo};
///
/// let schema = Arc::new(Schema::new(vec![
///     FerryType::Int64.field("id", false),
///     FerryType::Timestamp.field("updated_at", true),
/// ]));
/// let info = StreamInfo::new("orders", schema).with_primary_key(["id"]).incremental(["updated_at"]);
/// assert!(info.supports_incremental());
/// assert_eq!(info.default_cursor.as_deref(), Some("updated_at"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Stream name, unique within the source (a table, a file pattern, an API resource).
    pub name: String,
    /// Column names, Ferry types and nullability; primary key and cursor in its metadata.
    pub schema: SchemaRef,
    /// The read modes this stream supports.
    pub read_modes: Vec<ReadMode>,
    /// Columns that identify a row, when the source knows them.
    pub primary_key: Vec<String>,
    /// Columns that can serve as an incremental cursor (ever-increasing values).
    pub cursor_candidates: Vec<String>,
    /// The cursor used when the stream config names none.
    pub default_cursor: Option<String>,
}

impl StreamInfo {
    /// A full-refresh-only stream with `schema`, taking primary key and cursor from its metadata.
    pub fn new(name: impl Into<String>, schema: SchemaRef) -> Self {
        let primary_key = types::primary_key(&schema);
        let cursor = types::cursor_field(&schema);
        StreamInfo {
            name: name.into(),
            schema,
            read_modes: vec![ReadMode::FullRefresh],
            primary_key,
            cursor_candidates: cursor.iter().cloned().collect(),
            default_cursor: cursor,
        }
    }

    /// Marks the stream incremental with these cursor candidates (the first is the default).
    pub fn incremental(mut self, cursors: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.cursor_candidates = cursors.into_iter().map(Into::into).collect();
        if self.default_cursor.is_none() {
            self.default_cursor = self.cursor_candidates.first().cloned();
        }
        if !self.read_modes.contains(&ReadMode::Incremental) {
            self.read_modes.push(ReadMode::Incremental);
        }
        self
    }

    /// Sets the primary key.
    pub fn with_primary_key(mut self, key: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.primary_key = key.into_iter().map(Into::into).collect();
        self
    }

    /// The cursor a read goes by: the one it `asks` for, else the stream's default.
    pub fn cursor<'a>(&'a self, asks: Option<&'a str>) -> Option<&'a str> {
        asks.or(self.default_cursor.as_deref())
    }

    /// Whether incremental reads are supported.
    pub fn supports_incremental(&self) -> bool {
        self.read_modes.contains(&ReadMode::Incremental)
    }

    /// A JSON description (name, columns with Ferry types, keys) for `ferry discover --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "columns": columns_json(&self.schema),
            "primary_key": self.primary_key,
            "cursor_candidates": self.cursor_candidates,
            "default_cursor": self.default_cursor,
            "read_modes": self.read_modes,
        })
    }
}

/// The columns of `schema` as JSON: name, Ferry type (Arrow's when it has none) and
/// nullability of each.
pub fn columns_json(schema: &arrow_schema::Schema) -> serde_json::Value {
    schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": FerryType::of(f).map(|t| t.to_string()).unwrap_or_else(|| f.data_type().to_string()),
                "nullable": f.is_nullable(),
            })
        })
        .collect()
}

/// Every stream a source offers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// The streams, in the source's order.
    pub streams: Vec<StreamInfo>,
}

impl Catalog {
    /// A catalog of these streams.
    pub fn new(streams: Vec<StreamInfo>) -> Self {
        Catalog { streams }
    }

    /// The stream named `name`.
    pub fn get(&self, name: &str) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// The stream named `name` with its place in the catalog; when there is none, an error
    /// naming the `source` (`` tap `tap-csv` ``) and the streams it offers.
    pub fn offered(&self, name: &str, source: &str) -> crate::Result<(usize, &StreamInfo)> {
        let found = self
            .streams
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name);
        found.ok_or_else(|| {
            crate::Error::new(
                crate::ErrorKind::NotFound,
                format!(
                    "{source} offers no stream `{name}` (streams: {})",
                    self.names().join(", ")
                ),
            )
        })
    }

    /// Stream names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.streams.iter().map(|s| s.name.as_str()).collect()
    }
}
