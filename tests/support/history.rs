//! Reading the versions a `mode = "history"` run leaves in `items`, from SQLite,
//! PostgreSQL and MySQL/MariaDB, with their timestamps as the same text.

use std::path::Path;

use super::db::{MysqlDestination, PgDestination};
use super::sqlite::SqliteDestination;

/// A version: id, name, n, valid from, valid to (UTC, `YYYY-MM-DD HH:MM:SS`), current.
pub type Version = (i64, String, i64, String, Option<String>, bool);

/// The versions a query returns.
type Rows<'a> = Box<dyn Fn(&str) -> Vec<Version> + 'a>;

/// How a test reads the versions of `items`: the table as its queries name it, the SQL
/// that gives a timestamp column as that text, and the versions a query returns.
pub struct Reading<'a> {
    table: &'a str,
    day: fn(&str) -> String,
    rows: Rows<'a>,
}

impl<'a> Reading<'a> {
    /// The versions in the SQLite file `db`.
    pub fn sqlite(db: &'a Path) -> Self {
        let rows = move |sql: &str| -> Vec<Version> {
            let c = rusqlite::Connection::open(db).unwrap();
            let mut stmt = c.prepare(sql).unwrap();
            let found = stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            });
            found.unwrap().map(|r| r.unwrap()).collect()
        };
        Reading {
            table: "items",
            day: |c| format!("substr(replace({c}, 'T', ' '), 1, 19)"),
            rows: Box::new(rows),
        }
    }

    /// The versions in `dest`'s schema.
    pub fn postgres(dest: &'a PgDestination) -> Self {
        let rows = |sql: &str| -> Vec<Version> {
            let version = |r: &tokio_postgres::Row| {
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
            };
            dest.query(sql).iter().map(version).collect()
        };
        Reading {
            table: "{schema}.items",
            day: |c| format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
            rows: Box::new(rows),
        }
    }

    /// The versions in `dest`'s database.
    pub fn mysql(dest: &'a MysqlDestination) -> Self {
        // `_ferry_is_current` is a TINYINT(1)
        type Row = (i64, String, i64, String, Option<String>, i64);
        let rows = |sql: &str| -> Vec<Version> {
            let rows: Vec<Row> = dest.query(sql);
            let version = |r: Row| (r.0, r.1, r.2, r.3, r.4, r.5 != 0);
            rows.into_iter().map(version).collect()
        };
        Reading {
            table: "items",
            day: |c| format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s')"),
            rows: Box::new(rows),
        }
    }

    /// The versions, by id and start.
    pub fn versions(&self) -> Vec<Version> {
        let day = self.day;
        let sql = format!(
            "SELECT id, name, n, {}, {}, _ferry_is_current FROM {} ORDER BY id, _ferry_valid_from",
            day("_ferry_valid_from"),
            day("_ferry_valid_to"),
            self.table
        );
        (self.rows)(&sql)
    }
}

/// Runs `test` on a fresh SQLite destination and its reading.
pub fn into_sqlite(test: fn(&str, Reading<'_>)) {
    let dest = SqliteDestination::new();
    test(&dest.section, Reading::sqlite(&dest.db));
}

/// Runs `test` on a fresh PostgreSQL schema (named from `prefix`) and its reading; then
/// checks no helper table is left and drops the schema.
pub fn into_postgres(prefix: &str, test: fn(&str, Reading<'_>)) {
    let dest = PgDestination::new(prefix);
    test(&dest.section, Reading::postgres(&dest));
    dest.finish();
}

/// Runs `test` on a fresh MySQL/MariaDB database (named from `prefix`) and its reading;
/// then checks no staging table is left and drops the database.
pub fn into_mysql(prefix: &str, test: fn(&str, Reading<'_>)) {
    let dest = MysqlDestination::new(prefix);
    test(&dest.section, Reading::mysql(&dest));
    dest.finish();
}

/// One `#[test]` per SQL destination, each running `$check` (a `fn(&str, Reading)`) on a
/// fresh one: the tests are named `$sqlite`, `$postgres` and `$mysql`; `$prefix` names
/// the PostgreSQL schema and the MySQL database.
#[allow(unused_macros)]
macro_rules! into_each {
    ($check:ident, $prefix:literal: $sqlite:ident, $postgres:ident, $mysql:ident) => {
        #[test]
        fn $sqlite() {
            $crate::support::history::into_sqlite($check);
        }

        #[test]
        fn $postgres() {
            $crate::support::history::into_postgres($prefix, $check);
        }

        #[test]
        fn $mysql() {
            $crate::support::history::into_mysql($prefix, $check);
        }
    };
}
// only the history test binaries use it
#[allow(unused_imports)]
pub(crate) use into_each;
