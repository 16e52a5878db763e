//! SQLite destinations, read the way a person checking them would: with SQL.

use std::path::{Path, PathBuf};

/// A SQLite file in a folder of its own, removed when this is dropped.
pub struct SqliteDestination {
    _dir: tempfile::TempDir,
    /// The file (not there until a run writes it).
    pub db: PathBuf,
    /// Its `[destination]` lines.
    pub section: String,
}

impl SqliteDestination {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        let section = format!("type = \"sqlite\"\npath = \"{}\"", db.display());
        SqliteDestination {
            _dir: dir,
            db,
            section,
        }
    }
}

/// Rows of `table` in the SQLite file `db`; `None` when the file or the table is not there.
pub fn rows(db: &Path, table: &str) -> Option<u64> {
    if !db.exists() {
        return None;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    let exists: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    if !exists {
        return None;
    }
    let n = c
        .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    Some(n as u64)
}
