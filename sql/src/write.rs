//! Writing, written once for every SQL database: the request checks, table naming,
//! creating a table from a stream, additive evolution ([`fit`]), staged overwrite and
//! swap, upsert by key (through a temporary table where the database loads in bulk),
//! rows the source no longer holds ([`missing`]), versions by key ([`history`]), and
//! the stream writer itself. A database plugs in its SQL ([`Dialect`]), a few catalog
//! calls ([`Driver`]) and how it moves rows ([`Load`]); bulk loading (`COPY`, multi-row
//! `INSERT`, prepared statements) stays with the connector.

pub mod ddl;
mod dialect;
pub mod fit;
pub mod history;
pub mod listed;
pub mod missing;
pub mod naming;
pub mod owner;
mod prepare;
pub mod repeated;
pub mod row_hash;
pub mod server;
pub mod single;
#[cfg(test)]
mod test_dialect;
mod writer;

pub use dialect::{Dialect, Driver, Existing, KeyPart, NameOf, Table};
pub use fit::{fit, mismatch, takes, Fit, Fitted};
pub use naming::Staging;
pub use prepare::{prepare, Prepared};
pub use writer::{capabilities, duplicate_key, Load, TableWriter};
