//! What the source and sink share: opening connections, the one table that maps
//! SQLite's errors to Ferry's kinds, identifier quoting and schema introspection.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::types::ColumnInfo;

pub(crate) use ferry_sql::write::naming::{OWNER_TABLE, STAGING_PREFIX};

/// Maps a SQLite error to a Ferry error of the right kind, naming the file.
/// The one place that decides kinds: retries and hints depend on it, never on text.
pub(crate) fn map_err(e: rusqlite::Error, file: &Path) -> Error {
    use rusqlite::Error as E;
    let failure = match &e {
        E::SqliteFailure(f, msg) => Some((f.code, msg.as_deref(), false)),
        // a statement that does not compile (a configured query, or a table that changed)
        E::SqlInputError { error, msg, .. } => Some((error.code, Some(msg.as_str()), true)),
        _ => None,
    };
    let kind = match failure {
        Some((code, msg, compile)) => match code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SchemaChanged => {
                ErrorKind::Temporary
            }
            ErrorCode::CannotOpen if !file.exists() => ErrorKind::NotFound,
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::AuthorizationForStatementDenied => ErrorKind::PermissionDenied,
            ErrorCode::ConstraintViolation
            | ErrorCode::TypeMismatch
            | ErrorCode::TooBig
            | ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt => ErrorKind::DataInvalid,
            ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::NoLargeFileSupport
            | ErrorCode::OutOfMemory => ErrorKind::Io,
            ErrorCode::OperationInterrupted => ErrorKind::Cancelled,
            ErrorCode::Unknown => match msg {
                Some(m) if m.starts_with("no such table") => ErrorKind::NotFound,
                Some(m) if m.starts_with("no such column") || m.contains("has no column named") => {
                    ErrorKind::SchemaMismatch
                }
                _ if compile => ErrorKind::ConfigInvalid,
                _ => ErrorKind::Internal,
            },
            _ => ErrorKind::Internal,
        },
        None => match &e {
            E::InvalidQuery | E::MultipleStatement | E::Empty | E::InvalidPath(_) => {
                ErrorKind::ConfigInvalid
            }
            E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..)
            | E::InvalidColumnType(..)
            | E::NulError(..) => ErrorKind::DataInvalid,
            _ => ErrorKind::Internal,
        },
    };
    let message = match &e {
        E::SqliteFailure(f, _) if f.code == ErrorCode::NotADatabase => {
            "the file is not a SQLite database".to_string()
        }
        E::SqliteFailure(f, _)
            if f.code == ErrorCode::CannotOpen && kind == ErrorKind::NotFound =>
        {
            "the SQLite file (or its folder) does not exist".to_string()
        }
        _ => format!("SQLite: {e}"),
    };
    Error::new(kind, message)
        .with("file", file.display())
        .set_source(e)
}

/// `.sql(file)?` on a rusqlite result: maps the error with [`map_err`].
pub(crate) trait SqlResultExt<T> {
    fn sql(self, file: &Path) -> Result<T>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn sql(self, file: &Path) -> Result<T> {
        self.map_err(|e| map_err(e, file))
    }
}

/// `name` as a quoted SQL identifier: `"a ""b"""`. Safe for any text.
pub(crate) fn quote(name: &str) -> String {
    ferry_sql::quote::ident(name, '"')
}

fn busy(conn: &Connection, ms: u64, file: &Path) -> Result<()> {
    conn.busy_timeout(Duration::from_millis(ms)).sql(file)
}

/// Opens an existing database read-only. A missing file is a `NotFound` error naming it.
pub(crate) fn open_read_only(path: &Path, busy_timeout_ms: u64) -> Result<Connection> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("SQLite file `{}` does not exist", path.display()),
            )
            .with("file", path.display()))
        }
        Err(e) => return Err(Error::io(e, "cannot read the SQLite file", path)),
        Ok(m) if m.is_dir() => {
            return Err(Error::config(format!(
                "`{}` is a folder; `path` must name a SQLite file",
                path.display()
            ))
            .with("file", path.display()))
        }
        Ok(_) => {}
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .sql(path)?;
    busy(&conn, busy_timeout_ms, path)?;
    Ok(conn)
}

/// A read-write connection tuned for loading: WAL, `synchronous = NORMAL`, a larger
/// page cache and statement cache. Creates the file and its folder if missing.
/// Returns whether the database is in WAL mode (some file systems refuse it).
pub(crate) fn open_read_write(path: &Path, busy_timeout_ms: u64) -> Result<(Connection, bool)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(e, "cannot create the folder of the SQLite file", dir))?;
    }
    if path.is_dir() {
        return Err(Error::config(format!(
            "`{}` is a folder; `path` must name a SQLite file",
            path.display()
        ))
        .with("file", path.display()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .sql(path)?;
    busy(&conn, busy_timeout_ms, path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .sql(path)?;
    let wal = mode.eq_ignore_ascii_case("wal");
    // WAL + NORMAL: a commit costs no fsync; `flush` syncs the WAL itself (see sink).
    // Without WAL, FULL keeps each commit durable on its own.
    let sync = if wal { "NORMAL" } else { "FULL" };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA cache_size = -16384; PRAGMA legacy_alter_table = ON;"
    ))
    .sql(path)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok((conn, wal))
}

/// Whether `name` is one of Ferry's staging tables.
pub(crate) fn is_staging(name: &str) -> bool {
    name.starts_with(STAGING_PREFIX) || name == OWNER_TABLE
}

/// Table or view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Table,
    View,
}

/// User tables and views (`name`, kind), sorted by name: no `sqlite_*` table and no
/// Ferry staging table.
pub(crate) fn list_relations(conn: &Connection, file: &Path) -> Result<Vec<(String, Kind)>> {
    let mut stmt = conn
        .prepare(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .sql(file)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .sql(file)?;
    let mut out = Vec::new();
    for r in rows {
        let (name, ty) = r.sql(file)?;
        if !is_staging(&name) {
            out.push((
                name,
                if ty == "view" {
                    Kind::View
                } else {
                    Kind::Table
                },
            ));
        }
    }
    Ok(out)
}

/// Every table name starting with `prefix` (staging tables included).
pub(crate) fn tables_with_prefix(
    conn: &Connection,
    prefix: &str,
    file: &Path,
) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, length(?1)) = ?1")
        .sql(file)?;
    let rows = stmt
        .query_map([prefix], |r| r.get::<_, String>(0))
        .sql(file)?;
    rows.map(|r| r.sql(file)).collect()
}

/// A table or view: its real name (SQLite names are case-insensitive), kind and columns.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub name: String,
    pub kind: Kind,
    pub columns: Vec<ColumnInfo>,
}

/// The table or view named `name` (any case), or `None`.
pub(crate) fn relation(conn: &Connection, name: &str, file: &Path) -> Result<Option<Relation>> {
    let found: Option<(String, String)> = conn
        .query_row(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name = ?1 COLLATE NOCASE ORDER BY name = ?1 DESC LIMIT 1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .sql(file)?;
    let Some((real, ty)) = found else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare(
            "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1)",
        )
        .sql(file)?;
    let rows = stmt
        .query_map([&real], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                declared: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                not_null: r.get::<_, i64>(2)? != 0,
                has_default: r.get::<_, i64>(3)? != 0,
                pk: r.get::<_, i64>(4)?.max(0) as usize,
            })
        })
        .sql(file)?;
    let columns = rows.map(|r| r.sql(file)).collect::<Result<Vec<_>>>()?;
    Ok(Some(Relation {
        name: real,
        kind: if ty == "view" {
            Kind::View
        } else {
            Kind::Table
        },
        columns,
    }))
}

/// Whether `table` has a primary key or a full (non-partial) unique index on exactly
/// the columns `key` (any order, any case): what `ON CONFLICT (key)` needs.
pub(crate) fn has_unique_key(
    conn: &Connection,
    table: &Relation,
    key: &[String],
    file: &Path,
) -> Result<bool> {
    let want: BTreeSet<String> = key.iter().map(|k| k.to_ascii_lowercase()).collect();
    let pk: BTreeSet<String> = table
        .columns
        .iter()
        .filter(|c| c.pk > 0)
        .map(|c| c.name.to_ascii_lowercase())
        .collect();
    if !pk.is_empty() && pk == want {
        return Ok(true);
    }
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0")
        .sql(file)?;
    let indexes = stmt
        .query_map([&table.name], |r| r.get::<_, String>(0))
        .sql(file)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .sql(file)?;
    let mut cols = conn
        .prepare("SELECT name FROM pragma_index_info(?1)")
        .sql(file)?;
    for index in indexes {
        let names = cols
            .query_map([&index], |r| r.get::<_, Option<String>>(0))
            .sql(file)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .sql(file)?;
        // an index on an expression has a NULL name: it cannot serve ON CONFLICT (key)
        if names.iter().all(Option::is_some) {
            let got: BTreeSet<String> = names
                .into_iter()
                .flatten()
                .map(|n| n.to_ascii_lowercase())
                .collect();
            if got == want {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `path` relative to `base` (absolute paths stay as they are).
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
