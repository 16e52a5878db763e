//! Change data capture (`cdc = { … }`): an incremental read of a table reads its changes
//! from a logical replication slot instead of a cursor column.
//!
//! The first read creates the stream's slot, then reads the whole table (the normal
//! read), and checkpoints the slot's position: a change made meanwhile is read again
//! later, which applying by key makes harmless. A later read copies the slot into a
//! temporary one (gone with the session), consumes pages of `pgoutput` changes from the
//! copy up to the WAL position of the read's start, and checkpoints each page's last
//! commit. The permanent slot moves only in [`committed`], once the destination holds the
//! rows: after a crash the next run reads again from there, and nothing is lost.

mod page;
pub(crate) mod pgoutput;
pub(crate) mod slot;

use std::sync::Arc;

use ferry_core::channel::{self, Sender};
use ferry_core::{Error, ErrorKind, Message, MessageStream, ReadMode, ReadRequest, Result};
use futures::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::{resolve, Inner, Origin};
use crate::config::CdcConfig;
use crate::core::{literal, ConnSettings, PgResultExt};
use page::{Changes, Target};
use pgoutput::{lsn_text, parse_lsn};

/// Fewest changes asked for per page (the server ends a page at the end of a
/// transaction); a page is about a batch, and ends with a checkpoint.
const MIN_PAGE: usize = 1_000;

/// Whether an incremental read of `stream` reads its changes: `cdc` is set and the stream
/// is a table (not a configured query).
pub(super) fn reads_changes(inner: &Inner, stream: &str) -> bool {
    inner.cdc.is_some() && !inner.queries.iter().any(|q| q.name == stream)
}

/// The checkpoint of a read of changes: the stream's slot and where it was read to.
fn state(slot: &str, lsn: u64) -> serde_json::Value {
    serde_json::json!({ "slot": slot, "lsn": lsn_text(lsn) })
}

/// The slot and position of a checkpoint [`state`] wrote.
fn saved(state: &serde_json::Value) -> Option<(&str, u64)> {
    let slot = state.get("slot")?.as_str()?;
    Some((slot, parse_lsn(state.get("lsn")?.as_str()?)?))
}

/// Reads the changes of `request`'s table (or the whole table, on the first read).
pub(super) async fn read(
    inner: Arc<Inner>,
    request: ReadRequest,
    cdc: &CdcConfig,
) -> Result<MessageStream> {
    let s = &inner.pg.settings;
    let name = request.stream.clone();
    let client = inner.pg.connect().await?;
    slot::check_wal_level(&client, s).await?;
    let stream = resolve(&inner, &client, &name).await?;
    let Origin::Table(rel) = &stream.origin else {
        return Err(Error::config(format!(
            "stream `{name}` is a query; cdc reads tables"
        )));
    };
    let key_names = rel.primary_key();
    if key_names.is_empty() {
        return Err(Error::config(format!(
            "table `{}` has no primary key, which change data capture applies changes by; add one at the source",
            rel.name
        ))
        .with("stream", &name));
    }
    let slot = slot::slot_name(cdc.prefix(), &name);
    let publication = cdc.publication().to_string();
    slot::ensure_publication(&client, &publication, &rel.schema, &rel.name, s).await?;
    let at = slot::confirmed(&client, &slot, s).await?;
    let after = request.state.as_ref().and_then(saved);
    let Some(at) = at.filter(|_| after.is_some()) else {
        if after.is_some() {
            return Err(gone(&slot, &name));
        }
        let at = match at {
            Some(at) => at,
            None => slot::create(&client, &slot, s).await?,
        };
        return snapshot(inner.clone(), request, state(&slot, at)).await;
    };
    let upto = slot::current(&client, s).await?;
    let tmp = slot::copy(&client, &slot, s).await?;
    let kinds = stream.types.iter().map(|t| t.kind).collect();
    let schema = stream.info.schema.clone();
    let key = (key_names.iter())
        .map(|k| schema.index_of(k))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::internal(format!("a key column is not in the stream: {e}")))?;
    let target = Target {
        stream: name.clone(),
        namespace: rel.schema.clone(),
        table: rel.name.clone(),
        schema,
        kinds,
        key,
    };
    let (tx, rx) = channel::channel(channel::CAPACITY);
    let settings = s.clone();
    let batch_size = request.batch_size.max(1);
    tokio::spawn(async move {
        let read = Read {
            client: &client,
            s: &settings,
            slot: &slot,
            tmp: &tmp,
            publication: &publication,
            upto,
            from: at,
        };
        if let Err(e) = read.pages(Changes::new(target), batch_size, &tx).await {
            tx.fail(e.with("stream", &name)).await;
        }
        let drop = format!("SELECT pg_drop_replication_slot({})", literal(&tmp));
        let _ = client.batch_execute(&drop).await;
    });
    Ok(rx)
}

/// The first read: the whole table, then the slot's position as the checkpoint.
async fn snapshot(
    inner: Arc<Inner>,
    request: ReadRequest,
    checkpoint: serde_json::Value,
) -> Result<MessageStream> {
    let full = ReadRequest {
        mode: ReadMode::FullRefresh,
        cursor: None,
        state: None,
        ..request
    };
    let rows = super::read(inner, full).await?;
    let rows = rows.filter(|m| std::future::ready(!matches!(m, Ok(Message::Checkpoint(_)))));
    let end = futures::stream::once(std::future::ready(Ok(Message::Checkpoint(checkpoint))));
    Ok(rows.chain(end).boxed())
}

fn gone(slot: &str, stream: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "the replication slot `{slot}` of stream `{stream}` is gone, so the changes since the last run \
             cannot be read; empty the destination table and run `ferry sync --full-refresh` to read the \
             table again from a new slot"
        ),
    )
    .with("stream", stream)
}

/// One read of changes from the temporary copy `tmp` of `slot`.
struct Read<'a> {
    client: &'a Client,
    s: &'a ConnSettings,
    slot: &'a str,
    tmp: &'a str,
    publication: &'a str,
    /// The WAL position when the read started: changes after it are left to the next run.
    upto: u64,
    /// The permanent slot's position.
    from: u64,
}

impl Read<'_> {
    /// Reads pages until one is empty, sending each page's rows and deleted keys, then
    /// its checkpoint.
    async fn pages(&self, mut changes: Changes, batch_size: usize, tx: &Sender) -> Result<()> {
        let page = batch_size.clamp(MIN_PAGE, u32::MAX as usize) as u32;
        let sql = slot::changes_sql(self.tmp, self.upto, page, self.publication);
        if self.from >= self.upto {
            return Ok(());
        }
        loop {
            let no_params: [&(dyn ToSql + Sync); 0] = [];
            let rows = self
                .client
                .query_raw(sql.as_str(), no_params)
                .await
                .pg(self.s)?;
            let mut rows = std::pin::pin!(rows);
            let mut read = 0u64;
            loop {
                let next = tokio::time::timeout(self.s.read_timeout, rows.next()).await;
                let row = match next {
                    Ok(Some(row)) => row.pg(self.s)?,
                    Ok(None) => break,
                    Err(_) => return Err(crate::core::timed_out(self.s, "reading changes")),
                };
                read += 1;
                let data: &[u8] = row.get(0);
                let msg = pgoutput::decode(data).map_err(|m| {
                    Error::internal(format!(
                        "slot `{}` sent a change Ferry cannot read: {m}",
                        self.slot
                    ))
                })?;
                changes.apply(msg)?;
                if changes.len() >= batch_size && !tx.send_all(changes.take()?).await {
                    return Ok(());
                }
            }
            if read == 0 {
                return Ok(());
            }
            let mut out = changes.take()?;
            if let Some(lsn) = changes.commit_lsn {
                out.push(Message::Checkpoint(state(self.slot, lsn)));
            }
            if !tx.send_all(out).await {
                return Ok(());
            }
        }
    }
}

/// Checkpoint `state` of a read of changes is committed: the stream's slot moves there,
/// and the server may drop the WAL before it.
pub(super) async fn committed(inner: &Inner, state: &serde_json::Value) -> Result<()> {
    let Some((slot, lsn)) = saved(state) else {
        return Ok(());
    };
    let s = &inner.pg.settings;
    let client = inner.pg.connect().await?;
    slot::advance(&client, slot, lsn, s).await
}

/// For `ferry plan`: each of Ferry's slots (those of the `cdc` prefix) with how far it
/// is behind, and the SQL that drops one whose stream is not in `streams`, since a slot
/// nobody reads keeps the server's WAL until its disk is full.
pub(super) async fn plan_notes(
    inner: &Inner,
    cdc: &CdcConfig,
    streams: &[String],
) -> Result<Vec<String>> {
    let s = &inner.pg.settings;
    let client = inner.pg.connect().await?;
    let prefix = format!("{}_", cdc.prefix());
    let rows = client
        .query(
            "SELECT slot_name::text, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 \
             FROM pg_replication_slots WHERE NOT temporary AND starts_with(slot_name::text, $1) ORDER BY 1",
            &[&prefix],
        )
        .await
        .pg(s)?;
    let ours: Vec<String> = streams
        .iter()
        .map(|n| slot::slot_name(cdc.prefix(), n))
        .collect();
    let mut notes = Vec::new();
    for row in rows {
        let (name, behind): (String, Option<i64>) = (row.get(0), row.get(1));
        let behind = behind.unwrap_or(0).max(0);
        if let Some(i) = ours.iter().position(|o| *o == name) {
            notes.push(format!(
                "cdc slot {name} (stream {}): {behind} bytes of WAL behind the server",
                streams[i]
            ));
        } else {
            notes.push(format!(
                "cdc slot {name} is read by no stream of this config (a removed stream?) and keeps \
                 {behind} bytes of WAL on the server, growing until it is dropped: run \
                 `SELECT pg_drop_replication_slot('{name}');` on the source"
            ));
        }
    }
    Ok(notes)
}
