//! The server side of change data capture, through SQL functions over the normal
//! connection (so it works through an SSH tunnel too): `wal_level`, the publication,
//! the stream's permanent slot, and the temporary copy a run reads from.

use ferry_core::{Error, ErrorKind, Result};
use tokio_postgres::Client;

use super::pgoutput::parse_lsn;
use crate::core::{literal, qualified, quote, ConnSettings, PgResultExt};

/// The slot of `stream` for slots starting `prefix`: lower-case letters, digits and `_`
/// (what slot names allow), at most 63 bytes.
pub fn slot_name(prefix: &str, stream: &str) -> String {
    let clean = |c: char| match c.to_ascii_lowercase() {
        c @ ('a'..='z' | '0'..='9' | '_') => c,
        _ => '_',
    };
    let name: String = format!("{prefix}_{}", stream.chars().map(clean).collect::<String>());
    name.chars().take(63).collect()
}

/// Why a server whose `wal_level` is `level` cannot capture changes, with the fix.
pub fn wal_level_error(level: &str, s: &ConnSettings) -> Error {
    Error::new(
        ErrorKind::ConfigInvalid,
        format!(
            "change data capture needs wal_level = logical on the server, which has \
             wal_level = {level}; run `ALTER SYSTEM SET wal_level = logical;` as a superuser, \
             then restart the server (e.g. `pg_ctlcluster 15 main restart`)"
        ),
    )
    .with("server", s.location())
}

/// Fails unless the server logs enough for logical decoding.
pub async fn check_wal_level(client: &Client, s: &ConnSettings) -> Result<()> {
    let row = client.query_one("SHOW wal_level", &[]).await.pg(s)?;
    let level: String = row.get(0);
    match level.as_str() {
        "logical" => Ok(()),
        other => Err(wal_level_error(other, s)),
    }
}

/// Creates `publication` for `schema.table` when absent, or adds the table to it.
pub async fn ensure_publication(
    client: &Client,
    publication: &str,
    schema: &str,
    table: &str,
    s: &ConnSettings,
) -> Result<()> {
    let target = qualified(schema, table);
    let exists = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .pg(s)?;
    let sql = match exists {
        None => format!(
            "CREATE PUBLICATION {} FOR TABLE {target}",
            quote(publication)
        ),
        Some(row) if row.get::<_, bool>(0) => return Ok(()),
        Some(_) => {
            let listed = client
                .query_opt(
                    "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                    &[&publication, &schema, &table],
                )
                .await
                .pg(s)?;
            if listed.is_some() {
                return Ok(());
            }
            format!(
                "ALTER PUBLICATION {} ADD TABLE {target}",
                quote(publication)
            )
        }
    };
    client.batch_execute(&sql).await.pg(s)
}

/// The slot's confirmed position, `None` when there is no such slot.
pub async fn confirmed(client: &Client, slot: &str, s: &ConnSettings) -> Result<Option<u64>> {
    let row = client
        .query_opt(
            "SELECT coalesce(confirmed_flush_lsn, restart_lsn)::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .pg(s)?;
    Ok(row
        .and_then(|r| r.get::<_, Option<String>>(0))
        .and_then(|t| parse_lsn(&t)))
}

/// Creates the permanent `slot` (`pgoutput`); returns its position.
pub async fn create(client: &Client, slot: &str, s: &ConnSettings) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .pg(s)?;
    lsn(row.get(0))
}

/// The server's current WAL position: what a run reads up to.
pub async fn current(client: &Client, s: &ConnSettings) -> Result<u64> {
    let row = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .pg(s)?;
    lsn(row.get(0))
}

/// A temporary copy of `slot` for this session to consume (gone with the session): the
/// permanent slot stays where it is until the rows are committed.
pub async fn copy(client: &Client, slot: &str, s: &ConnSettings) -> Result<String> {
    let row = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .pg(s)?;
    let pid: i32 = row.get(0);
    let tmp: String = format!("{}_run{pid}", &slot[..slot.len().min(50)]);
    client
        .query_one(
            "SELECT 1 FROM pg_copy_logical_replication_slot($1, $2, true)",
            &[&slot, &tmp],
        )
        .await
        .pg(s)?;
    Ok(tmp)
}

/// The statement that reads (and consumes) up to a page of changes from the copy.
pub fn changes_sql(tmp: &str, upto: u64, nchanges: u32, publication: &str) -> String {
    format!(
        "SELECT data FROM pg_logical_slot_get_binary_changes({}, '{}'::pg_lsn, {nchanges}, \
         'proto_version', '1', 'publication_names', {})",
        literal(tmp),
        super::pgoutput::lsn_text(upto),
        literal(&quote(publication)),
    )
}

/// Moves the permanent `slot` to `to` (never back): the server may now drop the WAL
/// before it.
pub async fn advance(client: &Client, slot: &str, to: u64, s: &ConnSettings) -> Result<()> {
    let to = super::pgoutput::lsn_text(to);
    client
        .query(
            "SELECT pg_replication_slot_advance(slot_name, $2::text::pg_lsn) FROM pg_replication_slots \
             WHERE slot_name = $1 AND confirmed_flush_lsn < $2::text::pg_lsn",
            &[&slot, &to],
        )
        .await
        .pg(s)?;
    Ok(())
}

fn lsn(text: String) -> Result<u64> {
    parse_lsn(&text).ok_or_else(|| Error::internal(format!("the server gave LSN `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_what_postgres_allows() {
        assert_eq!(
            slot_name("ferry", "Sales.Orders-2024"),
            "ferry_sales_orders_2024"
        );
        assert_eq!(slot_name("p", &"x".repeat(100)).len(), 63);
    }

    #[test]
    fn the_wal_level_error_names_the_exact_fix() {
        let s = ConnSettings::from_url("postgres://u@db.example:5432/crm").unwrap();
        let e = wal_level_error("replica", &s);
        assert!(e.message().contains("wal_level = replica"), "{e}");
        assert!(
            e.message()
                .contains("ALTER SYSTEM SET wal_level = logical;"),
            "{e}"
        );
        assert!(e.message().contains("restart"), "{e}");
        assert!(
            e.context_value("server")
                .is_some_and(|v| v.contains("db.example")),
            "{e}"
        );
    }
}
