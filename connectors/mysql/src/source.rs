//! The `mysql` source: tables, views and configured queries of one database.
//!
//! Every call opens its own connection. A read runs in a read-only transaction with a
//! consistent snapshot (the estimate and the rows see the same data), streams rows one
//! by one from the server's result into batches of `batch_size` (memory holds one batch,
//! never the result), and hands them over through a bounded channel: a slow destination
//! makes the reader, and through TCP the server, wait.
//!
//! Incremental reads run `... WHERE cursor > ? ORDER BY cursor` and save
//! `{"cursor": "<last value as text>", "column": "<cursor>"}`, checkpointing only where
//! the cursor changes, so rows that tie on it are neither missed nor repeated
//! ([`ferry_core::cursor`]).

mod count;

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::batcher::Batcher;
use ferry_core::channel::{self, Sender};
use ferry_core::cursor::Case;
use ferry_core::{
    BuildContext, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadRequest,
    Result, ResultExt, Source, StreamInfo,
};
use ferry_sql::read::{self as sql, Query, ReadCursor, RowPump};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::config::MysqlSourceConfig;
use crate::core::{self, quote, ConnSettings, Kind, MyResultExt, Relation, Server};
use crate::types::{self, Cursors, LastCursor};

/// How long the server waits for the reader to take more rows (a slow destination may
/// pause a read for a long time; the default 60 s would end the connection).
const NET_WRITE_TIMEOUT_SECS: u32 = 86_400;

/// Reads tables, views and queries of a MySQL or MariaDB database.
#[derive(Clone)]
pub struct MysqlSource {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnSettings,
    cfg: MysqlSourceConfig,
}

impl std::fmt::Debug for MysqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSource")
            .field("server", &self.inner.conn.location())
            .field("user", &self.inner.conn.user)
            .finish()
    }
}

impl MysqlSource {
    /// A source for `cfg` (`tls_ca` relative to `ctx.base_dir`). Checks the config
    /// without connecting.
    pub fn new(cfg: MysqlSourceConfig, ctx: &BuildContext) -> Result<Self> {
        let conn = cfg.validate(&ctx.base_dir)?;
        Ok(MysqlSource {
            inner: Arc::new(Inner { conn, cfg }),
        })
    }

    /// A source offering every table and view reachable with `settings`.
    pub fn from_settings(settings: ConnSettings) -> Self {
        let cfg = MysqlSourceConfig::from_settings(&settings);
        MysqlSource {
            inner: Arc::new(Inner {
                conn: settings,
                cfg,
            }),
        }
    }

    /// The connection settings.
    pub fn settings(&self) -> &ConnSettings {
        &self.inner.conn
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn route(&self) -> Vec<String> {
        ferry_sql::settings::routes(self.settings().tunnel.as_ref())
    }

    async fn check(&self) -> Result<()> {
        core::ping(&self.inner.conn).await
    }

    async fn discover(&self) -> Result<Catalog> {
        let s = &self.inner.conn;
        let mut conn = core::connect(s).await?;
        let catalog = discover(&self.inner, &mut conn).await;
        let _ = conn.disconnect().await;
        catalog
    }

    // the keys of a full read (the default `read_keys`)
    fn reads_keys(&self) -> bool {
        true
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let inner = self.inner.clone();
        let stream = request.stream.clone();
        let start = async move {
            let s = &inner.conn;
            let mut conn = core::connect(s).await?;
            conn.query_drop(format!(
                "SET SESSION net_write_timeout = {NET_WRITE_TIMEOUT_SECS}"
            ))
            .await
            .my(s)?;
            // one snapshot for the estimate and the rows; a query that writes is refused
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .my(s)?;
            let plan = plan(&inner, &mut conn, &request).await?;
            Ok((inner, conn, plan))
        };
        channel::spawn(channel::CAPACITY, start, run)
            .await
            .map_err(|e| e.with("stream", &stream))
    }

    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        count::count(&self.inner, request).await
    }

    async fn estimate(&self, request: &ReadRequest) -> Result<Option<ferry_core::Estimate>> {
        count::estimate_rows(&self.inner, request).await
    }
}

// ----------------------------------------------------------------------------------------
// Discovery

/// Where a stream's rows come from.
enum Origin {
    /// A table or view.
    Table(Relation),
    /// A configured query (trailing `;` removed).
    Query { sql: String },
}

async fn discover(inner: &Inner, conn: &mut Conn) -> Result<Catalog> {
    let s = &inner.conn;
    let server = Server::of(conn, s).await?;
    let rels = core::relations(conn, s, server, inner.cfg.tables.as_deref()).await?;
    let mut streams = Vec::new();
    if let Some(list) = &inner.cfg.tables {
        for want in list {
            if !rels
                .iter()
                .any(|r| r.name == *want || r.name.eq_ignore_ascii_case(want))
            {
                return Err(not_found(want, &core::list_relations(conn, s).await?, s));
            }
        }
    }
    for rel in &rels {
        streams.push(table_stream(rel));
    }
    for q in &inner.cfg.queries {
        streams.push(query_stream(conn, q, s).await?.0);
    }
    sql::catalog(streams, Case::Exact)
}

fn not_found(name: &str, relations: &[(String, Kind)], s: &ConnSettings) -> Error {
    let place = format!("database `{}`", s.database);
    sql::no_relation(name, &place, relations.iter().map(|(n, _)| n.as_str()))
        .with("server", s.location())
}

fn table_stream(rel: &Relation) -> StreamInfo {
    let schema = types::table_schema(&rel.columns);
    sql::stream_info(&rel.name, schema, rel.primary_key.clone(), None, &Cursors)
}

/// The stream of a configured query: columns and types from the prepared statement's
/// metadata, overridden by `columns`.
async fn query_stream(
    conn: &mut Conn,
    q: &Query,
    s: &ConnSettings,
) -> Result<(StreamInfo, String)> {
    let sql = sql::clean_sql(&q.sql).to_string();
    let on_server = |e: Error| e.with("server", s.location());
    let bad = |msg: &str| on_server(Error::config(format!("query `{}`: {msg}", q.name)));
    let keep = [
        ErrorKind::Temporary,
        ErrorKind::Unreachable,
        ErrorKind::PermissionDenied,
        ErrorKind::AuthFailed,
    ];
    let stmt = conn.prep(sql.as_str()).await.map_err(|e| {
        let what = format!("query `{}` is not valid", q.name);
        on_server(sql::invalid_query(&what, core::map_err(e, s), &keep))
    })?;
    if stmt.num_params() > 0 {
        return Err(bad("has `?` parameters; write the values into the query"));
    }
    let columns = stmt.columns();
    let _ = conn.close(stmt).await;
    if columns.is_empty() {
        return Err(bad("returns no columns; it must be one read-only SELECT"));
    }
    let result = columns
        .iter()
        .map(|c| (c.name_str().into_owned(), types::column_type_from_meta(c)));
    let cols = sql::query_columns(q, result, &Cursors).map_err(on_server)?;
    let schema = Schema::new(cols.fields);
    let info = sql::stream_info(&q.name, schema, cols.key, cols.cursor.as_deref(), &Cursors);
    Ok((info, sql))
}

/// The stream named `stream`: a configured query, or a table or view the config offers.
async fn resolve(inner: &Inner, conn: &mut Conn, stream: &str) -> Result<(StreamInfo, Origin)> {
    let s = &inner.conn;
    if let Some(q) = inner.cfg.queries.iter().find(|q| q.name == stream) {
        let (info, sql) = query_stream(conn, q, s).await?;
        return Ok((info, Origin::Query { sql }));
    }
    let offered = match &inner.cfg.tables {
        None => !core::is_ferry_table(stream),
        Some(list) => list.iter().any(|t| t.eq_ignore_ascii_case(stream)),
    };
    let server = Server::of(conn, s).await?;
    let rel = match core::relation(conn, s, server, stream).await? {
        Some(rel) if offered => rel,
        _ => return Err(not_found(stream, &core::list_relations(conn, s).await?, s)),
    };
    Ok((table_stream(&rel), Origin::Table(rel)))
}

// ----------------------------------------------------------------------------------------
// Reading

/// Everything a read needs, decided before the first row.
struct ReadPlan {
    stream: String,
    schema: SchemaRef,
    sql: String,
    params: Vec<Value>,
    /// The cursor of an incremental read.
    cursor: Option<ReadCursor>,
    /// The table to estimate rows of (full reads of tables), with the optimizer's guess.
    estimate: Option<(String, Option<u64>)>,
    limit: Option<u64>,
    batch_size: usize,
}

async fn plan(inner: &Inner, conn: &mut Conn, req: &ReadRequest) -> Result<ReadPlan> {
    let (info, origin) = resolve(inner, conn, &req.stream).await?;
    let cursor = ReadCursor::of(req, &info, &Cursors)?;
    let mut params = Vec::new();
    let mut filter = None;
    if let Some(ReadCursor {
        after: Some(text),
        ty,
        name,
        ..
    }) = &cursor
    {
        let col = quote(name);
        let (param, compare) = bind_value(text, *ty)?;
        params.push(param);
        filter = Some(match (ty, compare) {
            (FerryType::String, _) => format!("CAST({col} AS BINARY) > CAST(? AS BINARY)"),
            (FerryType::Decimal { .. }, Compare::Decimal) => {
                format!("{col} > CAST(? AS DECIMAL(65,30))")
            }
            _ => format!("{col} > ?"),
        });
    }
    let base = match &origin {
        Origin::Table(rel) => {
            let cols: Vec<String> = rel.columns.iter().map(|c| quote(&c.name)).collect();
            format!(
                "SELECT {} FROM {}.{}",
                cols.join(", "),
                quote(&inner.conn.database),
                quote(&rel.name)
            )
        }
        Origin::Query { sql } if cursor.is_none() && req.limit.is_none() => sql.clone(),
        // on lines of their own: the query may end in a `-- comment`
        Origin::Query { sql } => format!("SELECT * FROM (\n{sql}\n) AS `{}`", sql::QUERY_ALIAS),
    };
    let order = cursor.as_ref().map(|c| match c.ty {
        FerryType::String => format!("CAST({} AS BINARY)", quote(&c.name)),
        _ => quote(&c.name),
    });
    // counting runs a view's query: only tables get an estimate
    let estimate = match (&origin, cursor.is_some()) {
        (Origin::Table(rel), false) if rel.kind == Kind::Table => {
            Some((rel.name.clone(), rel.rows_estimate))
        }
        _ => None,
    };
    Ok(ReadPlan {
        stream: req.stream.clone(),
        schema: info.schema.clone(),
        sql: sql::read_sql(base, filter.as_deref(), order.as_deref(), req.limit),
        params,
        cursor,
        estimate,
        limit: req.limit,
        batch_size: req.batch_size.max(1),
    })
}

/// How a saved cursor is compared with the column.
enum Compare {
    /// As the bound value's own type.
    Plain,
    /// As an exact decimal (`CAST(? AS DECIMAL(65,30))`).
    Decimal,
}

/// The saved cursor text as a parameter of the column's type.
fn bind_value(text: &str, ty: FerryType) -> Result<(Value, Compare)> {
    let bad = || {
        Error::data(format!(
            "the saved cursor `{text}` does not fit a {ty} column; reset the stream's state (`ferry state reset`)"
        ))
    };
    let t = text.trim();
    Ok(match ty {
        FerryType::Int64 => match t.parse::<i64>() {
            Ok(i) => (Value::Int(i), Compare::Plain),
            Err(_) => (
                Value::UInt(t.parse::<u64>().map_err(|_| bad())?),
                Compare::Plain,
            ),
        },
        FerryType::Float64 => (
            Value::Double(t.parse::<f64>().map_err(|_| bad())?),
            Compare::Plain,
        ),
        FerryType::Decimal { .. } => match (t.parse::<i64>(), t.parse::<u64>()) {
            (Ok(i), _) => (Value::Int(i), Compare::Plain),
            (_, Ok(u)) => (Value::UInt(u), Compare::Plain),
            _ => {
                if !t
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
                {
                    return Err(bad());
                }
                (Value::Bytes(t.as_bytes().to_vec()), Compare::Decimal)
            }
        },
        FerryType::Date => {
            let days = ferry_core::values::parse_date(t).ok_or_else(bad)?;
            (
                types::micros_to_value(days as i64 * 86_400_000_000).ok_or_else(bad)?,
                Compare::Plain,
            )
        }
        FerryType::Timestamp => {
            let us = ferry_core::values::parse_timestamp_micros(t).ok_or_else(bad)?;
            (types::micros_to_value(us).ok_or_else(bad)?, Compare::Plain)
        }
        _ => (Value::Bytes(text.as_bytes().to_vec()), Compare::Plain),
    })
}

/// Streams a planned read, then ends its transaction, or kills the query when the
/// reader stopped early or it failed.
async fn run((inner, mut conn, plan): (Arc<Inner>, Conn, ReadPlan), tx: Sender) -> Result<()> {
    let s = &inner.conn;
    let id = conn.id();
    let pumped = pump(&mut conn, &plan, s, &tx).await;
    if let Ok(true) = pumped {
        let _ = conn.query_drop("COMMIT").await;
        let _ = conn.disconnect().await;
    } else {
        // dropping a connection in the middle of a result would read it to its end
        core::kill(s, id).await;
    }
    pumped.map(drop).map_err(|e| e.with("stream", &plan.stream))
}

/// Streams the plan's rows into `tx` as batches, checkpoints and rejected rows. Returns
/// whether it read to the end (`false`: the receiver is gone).
async fn pump(conn: &mut Conn, plan: &ReadPlan, s: &ConnSettings, tx: &Sender) -> Result<bool> {
    if let Some((table, guess)) = &plan.estimate {
        let n = count::table_rows(conn, s, table, *guess).await?;
        let n = n.rows.unwrap_or(0);
        if !tx
            .send(Message::Estimate(plan.limit.map_or(n, |l| l.min(n))))
            .await
        {
            return Ok(false);
        }
    }
    let mut result = conn
        .exec_iter(plan.sql.as_str(), plan.params.clone())
        .await
        .my(s)
        .ctx("table", &plan.stream)?;
    let columns = types::read_columns(&plan.schema, plan.batch_size);
    let batcher = Batcher::new(plan.schema.clone(), plan.batch_size, columns);
    let checkpoints = ReadCursor::checkpointer(plan.cursor.as_ref(), |c| LastCursor::new(c.ty));
    let mut pump = RowPump::new(batcher, checkpoints, &plan.stream);
    // a statement without a result set (it cannot happen for a SELECT) reads as empty
    if let Some(mut rows) = result.stream::<Row>().await.my(s)? {
        while let Some(row) = rows.next().await {
            let row = row.my(s).ctx("table", &plan.stream)?;
            if !tx.send_all(pump.row(&row)?).await {
                return Ok(false);
            }
        }
    }
    drop(result);
    let done = tx.send_all(pump.end()?).await;
    Ok(done)
}
