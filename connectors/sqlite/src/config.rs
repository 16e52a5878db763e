//! The `[source]` and `[destination]` sections of the `sqlite` connector.
//!
//! Parsing and [`SqliteSourceConfig::validate`] are pure: no file is opened until
//! `check`, `discover`, `read` or `open`.

use std::path::PathBuf;

use ferry_core::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;

/// Default wait for a lock held by another connection, in milliseconds.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5000;

fn default_busy_timeout_ms() -> u64 {
    DEFAULT_BUSY_TIMEOUT_MS
}

/// Configuration of a `sqlite` source.
///
/// ```toml
/// [source]
/// type = "sqlite"
/// path = "crm.db"
/// tables = ["customers", "orders"]
/// queries = [{ name = "big_orders", sql = "SELECT id, total FROM orders WHERE total > 1000", cursor = "id" }]
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSourceConfig {
    /// Path of the database file, relative to the config file's folder (required). It is
    /// opened read-only and must exist.
    pub path: PathBuf,
    /// Tables and views to offer as streams (default: every table and view, except
    /// SQLite's own `sqlite_*` tables and Ferry's `_ferry_stage_*` staging tables).
    /// `tables = []` offers only the `queries`.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Custom query streams, each a read-only `SELECT` (default: none).
    #[serde(default)]
    pub queries: Vec<SqliteQuery>,
    /// How long to wait for a lock held by another connection, in milliseconds (default 5000).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

/// A stream defined by a query: `{ name = "big_orders", sql = "SELECT ..." }`.
pub type SqliteQuery = ferry_sql::read::Query;

/// Configuration of a `sqlite` destination.
///
/// Streams are written with `mode = "append"`, `"overwrite"`, `"upsert"` or `"history"`:
/// every version of a keyed row (SCD type 2), in the columns `_ferry_valid_from` (the
/// run's start; with the key, the primary key), `_ferry_valid_to`, `_ferry_is_current`
/// and `_ferry_row_hash`; an unchanged row writes nothing, and with `deletes` a key gone
/// from the source has its current version closed.
///
/// ```toml
/// [destination]
/// type = "sqlite"
/// path = "out/acme.db"
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// Path of the database file, relative to the config file's folder (required). The
    /// file and its folder are created if missing.
    pub path: PathBuf,
    /// How long to wait for a lock held by another connection, in milliseconds (default 5000).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

impl SqliteSourceConfig {
    /// Checks what serde cannot, without I/O: query names and SQL present and unique,
    /// column types valid, table names not empty.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config(
                "`path` is empty: name the SQLite file to read",
            ));
        }
        ferry_sql::read::check_streams(
            self.tables.as_deref(),
            &self.queries,
            str::to_ascii_lowercase,
            ferry_sql::read::QueryTypes::Named,
        )
    }
}

impl SqliteSinkConfig {
    /// Checks what serde cannot, without I/O.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config(
                "`path` is empty: name the SQLite file to write",
            ));
        }
        Ok(())
    }
}
