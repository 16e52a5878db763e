//! Rows the source no longer holds (`deletes = "hard" | "soft"`), written once for every
//! SQL destination. A writer stages every key it writes in a keys table: an overwrite's
//! staging table of the key columns, opened through the database's own loader, so a
//! crashed run's keys are dropped like any staging table. After a complete read the
//! rows of the destination whose key is not staged are deleted (hard) or marked in
//! [`DELETED_AT`] (soft); a marked row whose key comes back is unmarked.

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::Schema;
use ferry_core::catalog::{DELETED_AT, IS_CURRENT};
use ferry_core::types::with_keys;
use ferry_core::{Deletes, Result, WriteMode, WriteRequest};

use super::dialect::{Dialect, Driver};

/// The request that opens a stream's keys table: the key columns only, staged like an
/// overwrite of the same table (and never swapped in: the writer drops it at the end).
pub fn keys_request(req: &WriteRequest) -> Option<WriteRequest> {
    req.deletes?;
    let key = req.primary_key();
    let fields: Vec<_> = key
        .iter()
        .map(|k| req.schema.field_with_name(k).cloned())
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    Some(WriteRequest {
        stream: req.stream.clone(),
        schema: with_keys(&Schema::new(fields), &key, None),
        mode: WriteMode::Overwrite,
        run_id: req.run_id.clone(),
        deletes: None,
    })
}

/// Which columns of a stream's batches are its key, in the keys table's order.
pub fn key_columns(req: &WriteRequest) -> Vec<usize> {
    let key = req.primary_key();
    key.iter()
        .filter_map(|k| req.schema.index_of(k).ok())
        .collect()
}

/// The key columns of `batch`.
pub fn keys_of(batch: &RecordBatch, columns: &[usize]) -> Result<RecordBatch> {
    batch
        .project(columns)
        .map_err(|e| ferry_core::Error::internal(format!("cannot take the key columns: {e}")))
}

/// The statements that find and handle the missing rows of one table, built at open.
#[derive(Debug, Clone)]
pub struct Missing {
    /// Run in order, in one transaction; the last one's row count is the result.
    pub statements: Vec<String>,
    /// Empties the keys table (before the source's own keys replace those written).
    pub clear_keys: String,
    /// Deletes or marks the rows whose key is staged: keys the source deleted
    /// ([`super::listed`]).
    pub listed: Vec<String>,
    /// With soft deletes read by key (CDC): unmarks the rows whose key is staged, the
    /// keys written since the last deletes (a key deleted, then inserted again, is back).
    pub revived: Vec<String>,
}

/// The [`Missing`] of `table` (the database's spelling), whose `key` columns (as the
/// table names them) are staged in `keys`, for a run that started at `started` (UTC,
/// `YYYY-MM-DD HH:MM:SS`): the stamp of soft deletes, one per run.
pub fn missing<D: Dialect + ?Sized>(
    d: &D,
    table: &str,
    keys: &str,
    key: &[String],
    deletes: Deletes,
    started: &str,
) -> Missing {
    let (t, k) = (d.qualified(table), d.qualified(keys));
    let same: Vec<String> = key
        .iter()
        .map(|c| format!("{k}.{c} = {t}.{c}", c = d.quote(c)))
        .collect();
    let staged = format!("EXISTS (SELECT 1 FROM {k} WHERE {})", same.join(" AND "));
    let gone = format!("NOT {staged}");
    let mark = d.quote(DELETED_AT);
    let stamp = d.timestamp(started);
    let revive = format!("UPDATE {t} SET {mark} = NULL WHERE {mark} IS NOT NULL AND {staged}");
    let (statements, revived) = match deletes {
        Deletes::Hard => (vec![format!("DELETE FROM {t} WHERE {gone}")], Vec::new()),
        Deletes::Soft => (
            vec![
                revive.clone(),
                format!("UPDATE {t} SET {mark} = {stamp} WHERE {mark} IS NULL AND {gone}"),
            ],
            vec![revive],
        ),
    };
    Missing {
        statements,
        clear_keys: format!("DELETE FROM {k}"),
        listed: super::listed::listed(&t, &staged, &mark, &stamp, deletes),
        revived,
    }
}

/// Chunks of keys per counting statement of [`count_keys`].
const KEYS_PER_COUNT: usize = 500;

/// For plans: of the rows of table `stream` (not marked deleted, when it has
/// [`DELETED_AT`]; current versions, when it is a history table), how many have their key among `keys` (a batch of the key columns by
/// name, each key once), or all of them with `keys = None`. `None`: no such table, or
/// keys of a type other than int64 and string, which are not counted here.
pub async fn count_keys<D: Driver>(
    db: &mut D,
    stream: &str,
    keys: Option<&RecordBatch>,
) -> Result<Option<u64>> {
    let Some(table) = db.table(stream).await? else {
        return Ok(None);
    };
    let lookup = db.lookup();
    let column = |name: &str| table.column(name, lookup).map(str::to_string);
    let mut sql = format!(
        "SELECT CAST(COUNT(*) AS CHAR(20)) FROM {} WHERE 1 = 1",
        db.qualified(&table.name)
    );
    if let Some(mark) = column(DELETED_AT) {
        sql.push_str(&format!(" AND {} IS NULL", db.quote(&mark)));
    }
    // a history table: its current versions
    if let Some(current) = column(IS_CURRENT) {
        sql.push_str(&format!(" AND {} = TRUE", db.quote(&current)));
    }
    let Some(keys) = keys else {
        return count(db, &sql).await.map(Some);
    };
    let schema = keys.schema();
    let mut names = Vec::new();
    for f in schema.fields() {
        let Some(name) = column(f.name()) else {
            return Ok(None);
        };
        names.push(db.quote(&name));
    }
    let mut literals = Vec::with_capacity(keys.num_rows());
    for row in 0..keys.num_rows() {
        let mut values = Vec::new();
        for (a, f) in keys.columns().iter().zip(schema.fields()) {
            let ty = ferry_core::FerryType::of(f);
            let mut text = String::new();
            if !ferry_core::values::write_text(
                a.as_ref(),
                ty.unwrap_or(ferry_core::FerryType::Json),
                row,
                &mut text,
            ) {
                text = "NULL".into();
            } else {
                match ty {
                    Some(ferry_core::FerryType::Int64) => {}
                    Some(ferry_core::FerryType::String) => text = db.literal(&text),
                    _ => return Ok(None),
                }
            }
            values.push(text);
        }
        literals.push(match values.len() {
            1 => values.pop().expect("one"),
            _ => format!("({})", values.join(", ")),
        });
    }
    let columns = match names.len() {
        1 => names.pop().expect("one"),
        _ => format!("({})", names.join(", ")),
    };
    let mut n = 0;
    for chunk in literals.chunks(KEYS_PER_COUNT) {
        let sql = format!("{sql} AND {columns} IN ({})", chunk.join(", "));
        n += count(db, &sql).await?;
    }
    Ok(Some(n))
}

async fn count<D: Driver>(db: &mut D, sql: &str) -> Result<u64> {
    let text = db.query_text(sql).await?.unwrap_or_default();
    text.trim().parse().map_err(|_| {
        ferry_core::Error::internal(format!("a count answered `{text}`, not a number"))
    })
}

/// Runs `statements` on `db` (in the caller's transaction); returns the rows each one
/// changed (deleted, marked, closed or inserted).
pub async fn apply<D: Driver>(db: &mut D, statements: &[String]) -> Result<Vec<u64>> {
    let mut counts = Vec::with_capacity(statements.len());
    for sql in statements {
        counts.push(db.execute_count(sql).await?);
    }
    Ok(counts)
}

/// The run's start (UTC, `YYYY-MM-DD HH:MM:SS`): from its id, else now.
pub fn started(run_id: &str) -> String {
    run_start(run_id).unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let text = ferry_core::values::format_timestamp_micros(now);
        text.get(..19).unwrap_or(&text).replacen('T', " ", 1)
    })
}

/// The run's start (UTC, `YYYY-MM-DD HH:MM:SS`) read from its id
/// (`20240501T120000Z-1a2b3c`); `None` for an id of another form.
pub fn run_start(run_id: &str) -> Option<String> {
    let b = run_id.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..8) && b.get(8) == Some(&b'T') && digits(9..15) && b.get(15) == Some(&b'Z')) {
        return None;
    }
    let s = &run_id[..15];
    Some(format!(
        "{}-{}-{} {}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::test_dialect::Plain;
    use ferry_core::FerryType;

    #[test]
    fn missing_rows_are_found_by_every_key_column() {
        let hard = missing(
            &Plain,
            "t",
            "k",
            &["a".into(), "b".into()],
            Deletes::Hard,
            "2024-05-01 12:00:00",
        );
        assert_eq!(
            hard.statements,
            [
                r#"DELETE FROM "t" WHERE NOT EXISTS (SELECT 1 FROM "k" WHERE "k"."a" = "t"."a" AND "k"."b" = "t"."b")"#
            ]
        );
        let soft = missing(
            &Plain,
            "t",
            "k",
            &["a".into()],
            Deletes::Soft,
            "2024-05-01 12:00:00",
        );
        assert_eq!(soft.statements.len(), 2);
        assert!(
            soft.statements[0].contains(r#"SET "_ferry_deleted_at" = NULL"#),
            "{:?}",
            soft.statements
        );
        assert!(
            soft.statements[1].contains(r#"SET "_ferry_deleted_at" = '2024-05-01T12:00:00.000000Z' WHERE "_ferry_deleted_at" IS NULL"#),
            "{:?}",
            soft.statements
        );
    }

    #[test]
    fn the_run_start_comes_from_its_id_and_keys_from_the_request() {
        assert_eq!(
            run_start("20240501T120000Z-1a2b3c").as_deref(),
            Some("2024-05-01 12:00:00")
        );
        assert_eq!(run_start("r1"), None);
        let schema = Schema::new(vec![
            FerryType::String.field("note", true),
            FerryType::Int64.field("id", false),
        ]);
        let req = WriteRequest {
            stream: "t".into(),
            schema: with_keys(&schema, &["id".to_string()], None),
            mode: WriteMode::Upsert,
            run_id: "r".into(),
            deletes: Some(Deletes::Hard),
        };
        let keys = keys_request(&req).unwrap();
        assert_eq!(keys.mode, WriteMode::Overwrite);
        assert_eq!(keys.schema.fields().len(), 1);
        assert_eq!(keys.primary_key(), ["id"]);
        assert_eq!(key_columns(&req), [1]);
        assert!(keys_request(&WriteRequest {
            deletes: None,
            ..req
        })
        .is_none());
    }
}
