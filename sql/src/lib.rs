//! Machinery every SQL database connector (SQLite, PostgreSQL, MySQL/MariaDB) shares, written
//! once: the reading side in [`read`], the writing side in [`write`]. A driver plugs in through
//! small traits; this crate never names a database.
#![deny(missing_docs)]

pub mod quote;
pub mod read;
pub mod settings;
pub mod write;
