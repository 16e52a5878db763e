//! `mode = "history"` (SCD type 2), written once for every SQL destination.
//!
//! The history table holds the stream's columns and four of Ferry's: [`VALID_FROM`] (the
//! run's start; with the key, the primary key), [`VALID_TO`] (NULL while current),
//! [`IS_CURRENT`] and [`ROW_HASH`] (a hash of the row's non-NULL values outside the
//! key). A run's rows, hashed on the way, are staged through the database's own loader
//! (an overwrite of `_ferry_history_<table>`, never swapped in: dropped at the end).
//! At the end, in one transaction, the current versions whose hash changed are closed
//! and a version is inserted for every staged key without a current one (new, changed,
//! or back after a delete); with `deletes`, the current versions of keys the source no
//! longer holds are closed too. Nothing is ever deleted from a history table.

use std::sync::Arc;

use ferry_core::arrow_array::{ArrayRef, RecordBatch, StringArray};
use ferry_core::arrow_schema::{Field, Schema};
use ferry_core::catalog::{IS_CURRENT, ROW_HASH, VALID_FROM, VALID_TO};
use ferry_core::types::with_keys;
use ferry_core::values::{format_timestamp_micros, parse_timestamp_micros};
use ferry_core::{Error, FerryType, Result, WriteMode, WriteRequest};

use super::ddl::column_list;
use super::dialect::{Dialect, Driver};
use super::fit::mismatch;
use super::missing::Missing;
use super::naming::fnv1a;
use super::prepare::Prepared;
use super::row_hash::row_hash;

/// Prefix of the stream name a history's rows are staged under.
const STAGED_PREFIX: &str = "_ferry_history_";

/// The request that creates or fits the history table: the stream's columns, then
/// Ferry's four, keyed by the stream's key and [`VALID_FROM`].
pub fn table_request(req: &WriteRequest) -> WriteRequest {
    let own = [
        FerryType::Timestamp.field(VALID_FROM, false),
        FerryType::Timestamp.field(VALID_TO, true),
        FerryType::Bool.field(IS_CURRENT, false),
        FerryType::String.field(ROW_HASH, false),
    ];
    let mut key = req.primary_key();
    key.push(VALID_FROM.into());
    derived(req, req.stream.clone(), WriteMode::Append, own, &key)
}

/// The request that opens the staging of a run's rows: the stream's columns and
/// [`ROW_HASH`], keyed by the stream's key (a key twice in one run is refused), staged
/// like an overwrite of `_ferry_history_<table>` and never swapped in.
pub fn staging_request(req: &WriteRequest, table: &str) -> WriteRequest {
    let hash = [FerryType::String.field(ROW_HASH, false)];
    derived(
        req,
        staged_name(table),
        WriteMode::Overwrite,
        hash,
        &req.primary_key(),
    )
}

/// Longest name every destination takes (PostgreSQL's 63 bytes; MySQL's 64 characters).
const MAX_NAME: usize = 63;

/// `_ferry_history_<table>`; when that is longer than [`MAX_NAME`] bytes,
/// `_ferry_history_<hash of table>_<start of table>`, as long as fits: the same table
/// always gets the same name, and two long names differ by their hash.
fn staged_name(table: &str) -> String {
    let plain = format!("{STAGED_PREFIX}{table}");
    if plain.len() <= MAX_NAME {
        return plain;
    }
    let mut name = format!("{STAGED_PREFIX}{:012x}_", fnv1a(table) & 0xffff_ffff_ffff);
    for c in table.chars() {
        if name.len() + c.len_utf8() > MAX_NAME {
            break;
        }
        name.push(c);
    }
    name
}

/// A request for `stream` in `mode`: `req`'s columns and `extra`, keyed by `key`.
fn derived(
    req: &WriteRequest,
    stream: String,
    mode: WriteMode,
    extra: impl IntoIterator<Item = Field>,
    key: &[String],
) -> WriteRequest {
    let mut fields: Vec<Field> = req
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(extra);
    WriteRequest {
        stream,
        schema: with_keys(&Schema::new(fields), key, None),
        mode,
        run_id: req.run_id.clone(),
        deletes: None,
    }
}

/// A history table made ready by [`prepare`]: what the statements at the end need.
#[derive(Debug, Clone)]
pub struct History {
    /// The table (as the database spells it).
    pub table: String,
    /// The stream's columns as the table names them, in the stream's order.
    pub columns: Vec<String>,
    /// The stream's columns as the staging table names them (the stream's names).
    pub staged: Vec<String>,
    /// The key's columns as the table names them, and as the staging table does.
    pub key: Vec<(String, String)>,
    /// Ferry's four columns as the table names them: valid from, to, current, hash.
    pub own: [String; 4],
    /// This run's version start (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub stamp: String,
}

/// Creates or fits `req`'s history table (see [`table_request`]), refusing a table that
/// is not one, and picks the run's version start: the run's start, or the second after
/// the table's latest version start when a run of the same second came first.
pub async fn prepare<D: Driver>(db: &mut D, req: &WriteRequest) -> Result<History> {
    let full = table_request(req);
    if let Some(t) = db.table(&req.stream).await? {
        if t.column(VALID_FROM, db.lookup()).is_none() {
            return Err(mismatch(
                format!(
                    "table `{}` exists but is not a history table (it has no `{VALID_FROM}`): \
                     write the history to another table (`destination = \"{}_history\"` on the \
                     stream), or drop this one",
                    t.name, req.stream
                ),
                &t.name,
            ));
        }
    }
    let prepared = super::prepare(db, &full).await?;
    let names = prepared.names();
    let n = req.schema.fields().len();
    let columns = names[..n].to_vec();
    let own = [0, 1, 2, 3].map(|i| names[n + i].clone());
    let staged: Vec<String> = req
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let key = req
        .primary_key()
        .iter()
        .map(|k| {
            let i = req.schema.index_of(k).expect("a checked key");
            (columns[i].clone(), staged[i].clone())
        })
        .collect();
    let latest = format!(
        "SELECT CAST(MAX({}) AS CHAR(40)) FROM {}",
        db.quote(&own[0]),
        db.qualified(&prepared.table)
    );
    let latest = db.query_text(&latest).await?;
    let stamp = after(&super::missing::started(&req.run_id), latest.as_deref());
    Ok(History {
        table: prepared.table,
        columns,
        staged,
        key,
        own,
        stamp,
    })
}

/// The history of a stream opened by [`open`]: its table, and the statements that make
/// the versions from the staged rows.
pub type Opened = Option<(History, Vec<String>)>;

/// [`super::prepare`] for a stream of any mode. For history, the history table is made
/// ready ([`prepare`]) and then the staging of its rows ([`staging_request`]); returns
/// the request the database's loader then writes (the staging's, for history), what
/// was prepared for it, and the history.
pub async fn open<D: Driver>(
    db: &mut D,
    req: &WriteRequest,
) -> Result<(WriteRequest, Prepared<D::Type>, Opened)> {
    if req.mode != WriteMode::History {
        return Ok((req.clone(), super::prepare(db, req).await?, None));
    }
    let h = prepare(db, req).await?;
    let staged = staging_request(req, &h.table);
    let prep = super::prepare(db, &staged).await?;
    let statements = h.statements(db, prep.write_to());
    Ok((staged, prep, Some((h, statements))))
}

/// `started`, or the second after `latest` (a stored version start) when that is not
/// earlier: versions of one key never share a start.
fn after(started: &str, latest: Option<&str>) -> String {
    let (Some(run), Some(latest)) = (
        parse_timestamp_micros(started),
        latest.and_then(parse_timestamp_micros),
    ) else {
        return started.to_string();
    };
    if run > latest {
        return started.to_string();
    }
    let next = latest - latest.rem_euclid(1_000_000) + 1_000_000;
    let text = format_timestamp_micros(next);
    text.get(..19).unwrap_or(&text).replacen('T', " ", 1)
}

/// What the end of a history run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Versions inserted (new keys, changed rows, keys back after a delete).
    pub inserted: u64,
    /// Current versions closed because their row changed.
    pub changed: u64,
}

impl History {
    /// The statements that close the changed rows' versions and insert the new ones,
    /// from the staging table `staging`; run in order, in one transaction.
    pub fn statements<D: Dialect + ?Sized>(&self, d: &D, staging: &str) -> Vec<String> {
        let (t, s) = (d.qualified(&self.table), d.qualified(staging));
        let [from, to, current, hash] = self.own.clone().map(|c| d.quote(&c));
        let pairs = self.key.iter();
        let same = pairs.map(|(tk, sk)| format!("{s}.{} = {t}.{}", d.quote(sk), d.quote(tk)));
        let same = same.collect::<Vec<_>>().join(" AND ");
        let stamp = d.timestamp(&self.stamp);
        let close = format!(
            "UPDATE {t} SET {to} = {stamp}, {current} = FALSE WHERE {current} = TRUE AND EXISTS \
             (SELECT 1 FROM {s} WHERE {same} AND ({t}.{hash} IS NULL OR {s}.{hash} <> {t}.{hash}))"
        );
        let staged: Vec<String> = self
            .staged
            .iter()
            .map(|c| format!("{s}.{}", d.quote(c)))
            .collect();
        let insert = format!(
            "INSERT INTO {t} ({}, {hash}, {from}, {to}, {current}) SELECT {}, {s}.{hash}, {stamp}, \
             NULL, TRUE FROM {s} WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {same} AND {t}.{current} = TRUE)",
            column_list(d, &self.columns),
            staged.join(", "),
        );
        vec![close, insert]
    }

    /// With `deletes` (`hard` or `soft` alike: history is never deleted): the statement
    /// that closes the current versions whose key is not in the keys table `keys` (the
    /// key's columns under the stream's names).
    pub fn missing<D: Dialect + ?Sized>(&self, d: &D, keys: &str) -> Missing {
        Missing {
            statements: vec![self.close_missing(d, keys)],
            clear_keys: format!("DELETE FROM {}", d.qualified(keys)),
            // changes captured by key (CDC) are refused for history at plan time
            listed: Vec::new(),
            revived: Vec::new(),
        }
    }

    fn close_missing<D: Dialect + ?Sized>(&self, d: &D, keys: &str) -> String {
        let (t, k) = (d.qualified(&self.table), d.qualified(keys));
        let [_, to, current, _] = self.own.clone().map(|c| d.quote(&c));
        let same: Vec<String> = self
            .key
            .iter()
            .map(|(tk, sk)| format!("{k}.{} = {t}.{}", d.quote(sk), d.quote(tk)))
            .collect();
        format!(
            "UPDATE {t} SET {to} = {}, {current} = FALSE WHERE {current} = TRUE AND NOT EXISTS \
             (SELECT 1 FROM {k} WHERE {})",
            d.timestamp(&self.stamp),
            same.join(" AND ")
        )
    }
}

/// `batch` with [`ROW_HASH`] appended: per row, SHA-256 (its first 16 bytes, in hex)
/// of the non-NULL values of the columns outside `key` (by name, in name order), so a
/// new column that is NULL, or columns in another order, make no new version.
pub fn with_row_hash(batch: &RecordBatch, key: &[usize]) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut order: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !key.contains(i))
        .collect();
    order.sort_by(|a, b| schema.field(*a).name().cmp(schema.field(*b).name()));
    let types = FerryType::of_each(&schema, FerryType::Json);
    let mut text = String::new();
    let hashes: Vec<String> = (0..batch.num_rows())
        .map(|row| format!("{:032x}", row_hash(batch, &order, &types, row, &mut text)))
        .collect();
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(FerryType::String.field(ROW_HASH, false));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(hashes)) as ArrayRef);
    let schema = Arc::new(Schema::new(fields).with_metadata(schema.metadata().clone()));
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::internal(format!("cannot add the row hash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::test_dialect::Plain;
    use ferry_core::arrow_array::Int64Array;

    fn history() -> History {
        History {
            table: "t".into(),
            columns: vec!["ID".into(), "name".into()],
            staged: vec!["id".into(), "name".into()],
            key: vec![("ID".into(), "id".into())],
            own: [VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH].map(String::from),
            stamp: "2024-05-01 12:00:00".into(),
        }
    }

    #[test]
    fn changed_rows_close_their_version_and_staged_keys_without_one_get_one() {
        let [close, insert] = <[String; 2]>::try_from(history().statements(&Plain, "s")).unwrap();
        assert_eq!(
            close,
            r#"UPDATE "t" SET "_ferry_valid_to" = '2024-05-01T12:00:00.000000Z', "_ferry_is_current" = FALSE WHERE "_ferry_is_current" = TRUE AND EXISTS (SELECT 1 FROM "s" WHERE "s"."id" = "t"."ID" AND ("t"."_ferry_row_hash" IS NULL OR "s"."_ferry_row_hash" <> "t"."_ferry_row_hash"))"#
        );
        assert_eq!(
            insert,
            r#"INSERT INTO "t" ("ID", "name", "_ferry_row_hash", "_ferry_valid_from", "_ferry_valid_to", "_ferry_is_current") SELECT "s"."id", "s"."name", "s"."_ferry_row_hash", '2024-05-01T12:00:00.000000Z', NULL, TRUE FROM "s" WHERE NOT EXISTS (SELECT 1 FROM "t" WHERE "s"."id" = "t"."ID" AND "t"."_ferry_is_current" = TRUE)"#
        );
        let gone = history().missing(&Plain, "k").statements.remove(0);
        assert!(
            gone.ends_with(r#"WHERE "_ferry_is_current" = TRUE AND NOT EXISTS (SELECT 1 FROM "k" WHERE "k"."id" = "t"."ID")"#),
            "{gone}"
        );
    }

    #[test]
    fn staging_names_of_long_tables_fit_and_stay_apart() {
        assert_eq!(staged_name("orders"), "_ferry_history_orders");
        let long = format!("{}_a", "é".repeat(30));
        let other = format!("{}_b", "é".repeat(30));
        let name = staged_name(&long);
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(
            name.starts_with(STAGED_PREFIX) && name.contains("_éé"),
            "{name}"
        );
        assert_eq!(name, staged_name(&long), "the same name every run");
        assert_ne!(name, staged_name(&other));
    }

    #[test]
    fn a_run_in_the_same_second_as_the_latest_version_starts_a_second_later() {
        let run = "2024-05-01 12:00:00";
        assert_eq!(after(run, None), run);
        assert_eq!(after(run, Some("2024-05-01 11:59:59+00")), run);
        assert_eq!(
            after(run, Some("2024-05-01T12:00:00.000000Z")),
            "2024-05-01 12:00:01"
        );
        assert_eq!(
            after(run, Some("2024-05-01 12:00:03.000000")),
            "2024-05-01 12:00:04"
        );
        // a server showing another zone: the same instant
        assert_eq!(
            after(run, Some("2024-05-01 14:00:00+02")),
            "2024-05-01 12:00:01"
        );
    }

    #[test]
    fn the_hash_ignores_the_key_nulls_and_column_order() {
        let schema = |names: [&str; 3], nullable: bool| {
            let fields = names.map(|n| FerryType::Int64.field(n, nullable || n != "id"));
            Arc::new(Schema::new(fields.to_vec()))
        };
        let col = |v: Vec<Option<i64>>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let hash = |b: &RecordBatch, key: &[usize]| {
            let h = with_row_hash(b, key).unwrap();
            let a = h
                .column(3)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            a.iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>()
        };
        let a = RecordBatch::try_new(
            schema(["id", "a", "b"], false),
            vec![
                col(vec![Some(1), Some(2)]),
                col(vec![Some(5), Some(5)]),
                col(vec![None, None]),
            ],
        )
        .unwrap();
        let ha = hash(&a, &[0]);
        assert_eq!(ha[0], ha[1], "keys differ, values the same");
        assert_eq!(ha[0].len(), 32);
        // b and a swapped in order, b still NULL: the same hash
        let b = RecordBatch::try_new(
            schema(["b", "id", "a"], false),
            vec![col(vec![None]), col(vec![Some(1)]), col(vec![Some(5)])],
        )
        .unwrap();
        assert_eq!(hash(&b, &[1])[0], ha[0]);
        // a value in b: another hash
        let c = RecordBatch::try_new(
            schema(["id", "a", "b"], false),
            vec![col(vec![Some(1)]), col(vec![Some(5)]), col(vec![Some(0)])],
        )
        .unwrap();
        assert_ne!(hash(&c, &[0])[0], ha[0]);
        // tables already hold hashes: the same row keeps the same one from version to
        // version of Ferry (SHA-256 of 1u64 LE, "a", 1u64 LE, "5": its first 16 bytes)
        assert_eq!(ha[0], "d0bf617c8ab7445127cd9daec56e7a09");
    }
}
