//! Reading a SQLite destination the way a person checking it would: with SQL.

use std::path::Path;

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
