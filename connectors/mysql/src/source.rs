//! The `mysql` source: tables, views and configured queries of one database.
//!
//! Every call opens its own connection. A read runs in a read-only transaction with a
//! consistent snapshot (the estimate and the rows see the same data), streams rows one
//! by one from the server's result into batches of `batch_size` (memory holds one batch,
//! never the result), and hands them over through a bounded channel: a slow destination
//! makes the reader, and through TCP the server, wait.
//!
//! Incremental reads run `... WHERE cursor > ? ORDER BY cursor` and save
//! `{"cursor": "<last value as text>", "column": "<cursor>"}`. A checkpoint is emitted
//! only where the next row's cursor differs from the last emitted one, so every row
//! sharing the checkpointed value has been emitted: a resume neither misses nor repeats
//! rows that tie on the cursor.

mod count;

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode,
    ReadRequest, Rejected, Result, ResultExt, Source, StreamInfo,
};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::{mpsc, oneshot};

use crate::config::{MysqlQuery, MysqlSourceConfig};
use crate::core::{self, quote, ConnSettings, Kind, MyResultExt, Relation, Server};
use crate::types::{self, RowBuilder};

/// Batches buffered between the reading task and the pipeline.
const CHANNEL_BATCHES: usize = 2;
/// Below this many rows (by the optimizer's estimate) a table is counted exactly.
const COUNT_BELOW: u64 = 100_000;
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
    async fn check(&self) -> Result<()> {
        let s = &self.inner.conn;
        let mut conn = core::connect(s).await?;
        let one: Option<i64> = conn.query_first("SELECT 1").await.my(s)?;
        if one != Some(1) {
            return Err(Error::internal("`SELECT 1` did not answer 1"));
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let s = &self.inner.conn;
        let mut conn = core::connect(s).await?;
        let catalog = discover(&self.inner, &mut conn).await;
        let _ = conn.disconnect().await;
        catalog
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let (ready_tx, ready_rx) = oneshot::channel();
        let inner = self.inner.clone();
        let stream = request.stream.clone();
        tokio::spawn(read_task(inner, request, tx, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.with("stream", &stream)),
            Err(_) => {
                return Err(Error::internal(
                    "the MySQL reader stopped before it started",
                ))
            }
        }
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
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
    for (i, st) in streams.iter().enumerate() {
        if streams[..i].iter().any(|o| o.name == st.name) {
            return Err(Error::config(format!(
                "two streams are named `{}` (a query has the name of a table or view, or a table is listed twice); rename the query",
                st.name
            )));
        }
    }
    Ok(Catalog::new(streams))
}

fn not_found(name: &str, relations: &[(String, Kind)], s: &ConnSettings) -> Error {
    let names: Vec<&str> = relations.iter().map(|(n, _)| n.as_str()).collect();
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no table or view `{name}` in database `{}` (it has: {})",
            s.database,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    )
    .with("server", s.location())
}

fn table_stream(rel: &Relation) -> StreamInfo {
    stream_info(
        &rel.name,
        types::table_schema(&rel.columns),
        rel.primary_key.clone(),
        None,
    )
}

/// Whether discovery offers a column of this type as a cursor: int64, timestamp, date,
/// and whole decimals (`BIGINT UNSIGNED` keys).
fn offered_cursor(ty: FerryType) -> bool {
    types::is_cursor_candidate(ty) || matches!(ty, FerryType::Decimal { scale: 0, .. })
}

/// A stream's description: schema with keys, cursor candidates (the configured
/// `cursor` first, then a one-column primary key, then columns named like an update
/// time, then the other int64, timestamp and date columns in order).
fn stream_info(name: &str, schema: Schema, key: Vec<String>, cursor: Option<&str>) -> StreamInfo {
    let mut ranked: Vec<(u8, usize, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| FerryType::of(f).is_some_and(offered_cursor))
        .map(|(i, f)| {
            let lower = f.name().to_lowercase();
            let rank = if cursor.is_some_and(|c| c.eq_ignore_ascii_case(f.name())) {
                0
            } else if key.len() == 1 && key[0] == *f.name() {
                1
            } else if lower.contains("updated") || lower.contains("modified") {
                2
            } else {
                3
            };
            (rank, i, f.name().clone())
        })
        .collect();
    ranked.sort();
    let mut candidates: Vec<String> = ranked.into_iter().map(|(_, _, n)| n).collect();
    if let Some(c) = cursor {
        if !candidates.iter().any(|n| n.eq_ignore_ascii_case(c)) {
            candidates.insert(0, c.to_string());
        }
    }
    let incremental = schema
        .fields()
        .iter()
        .any(|f| FerryType::of(f).is_some_and(types::cursor_supported));
    let schema = with_keys(&schema, &key, candidates.first().map(String::as_str));
    let info = StreamInfo::new(name, schema).with_primary_key(key);
    if incremental {
        info.incremental(candidates)
    } else {
        info
    }
}

/// The stream of a configured query: columns and types from the prepared statement's
/// metadata, overridden by `columns`.
async fn query_stream(
    conn: &mut Conn,
    q: &MysqlQuery,
    s: &ConnSettings,
) -> Result<(StreamInfo, String)> {
    let sql = core::clean_sql(&q.sql).to_string();
    let bad = |msg: String| {
        Error::config(format!("query `{}`: {msg}", q.name)).with("server", s.location())
    };
    let stmt = conn.prep(sql.as_str()).await.map_err(|e| {
        let mapped = core::map_err(e, s);
        let kind = match mapped.kind() {
            k @ (ErrorKind::Temporary
            | ErrorKind::Unreachable
            | ErrorKind::PermissionDenied
            | ErrorKind::AuthFailed) => k,
            _ => ErrorKind::ConfigInvalid,
        };
        Error::new(
            kind,
            format!("query `{}` is not valid: {}", q.name, mapped.message()),
        )
        .with("server", s.location())
    })?;
    if stmt.num_params() > 0 {
        return Err(bad(
            "has `?` parameters; write the values into the query".into()
        ));
    }
    let columns = stmt.columns();
    let _ = conn.close(stmt).await;
    if columns.is_empty() {
        return Err(bad(
            "returns no columns; it must be one read-only SELECT".into()
        ));
    }
    let mut fields: Vec<Field> = Vec::new();
    for col in columns.iter() {
        let name = col.name_str().into_owned();
        if fields.iter().any(|f| f.name().eq_ignore_ascii_case(&name)) {
            return Err(bad(format!(
                "returns two columns named `{name}`; give one an alias (`AS other`)"
            )));
        }
        let ty = match q
            .columns
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some((_, t)) => FerryType::parse(t)
                .ok_or_else(|| bad(format!("column `{name}` has unknown type `{t}`")))?,
            None => types::column_type_from_meta(col),
        };
        fields.push(ty.field(name, true));
    }
    let has = |c: &str| {
        fields
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(c))
            .map(|f| f.name().clone())
    };
    let listed: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
    for c in q.columns.keys() {
        if has(c).is_none() {
            return Err(bad(format!(
                "`columns` names `{c}`, which the query does not return (it returns: {})",
                listed.join(", ")
            )));
        }
    }
    let mut key = Vec::new();
    for k in &q.primary_key {
        key.push(has(k).ok_or_else(|| {
            bad(format!(
                "primary key column `{k}` is not returned (it returns: {})",
                listed.join(", ")
            ))
        })?);
    }
    let cursor = match &q.cursor {
        Some(c) => {
            let name = has(c).ok_or_else(|| {
                bad(format!(
                    "cursor `{c}` is not returned (it returns: {})",
                    listed.join(", ")
                ))
            })?;
            let f = fields
                .iter()
                .find(|f| *f.name() == name)
                .expect("found above");
            let ty = FerryType::of(f).expect("Ferry field");
            if !types::cursor_supported(ty) {
                return Err(bad(format!(
                    "cursor `{c}` is {ty}; a cursor must be int64, decimal, float64, date, timestamp or string"
                )));
            }
            Some(name)
        }
        None => None,
    };
    let info = stream_info(&q.name, Schema::new(fields), key, cursor.as_deref());
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
    /// Column index, name and type of the cursor (incremental reads).
    cursor: Option<(usize, String, FerryType)>,
    /// The table to estimate rows of (full reads of tables), with the optimizer's guess.
    estimate: Option<(String, Option<u64>)>,
    limit: Option<u64>,
}

async fn plan(inner: &Inner, conn: &mut Conn, req: &ReadRequest) -> Result<ReadPlan> {
    let (info, origin) = resolve(inner, conn, &req.stream).await?;
    let schema = info.schema.clone();
    let incremental = req.mode == ReadMode::Incremental;
    let mut cursor = None;
    let mut params = Vec::new();
    let mut filter = None;
    if incremental {
        let name = req.cursor.clone().or_else(|| info.default_cursor.clone()).ok_or_else(|| {
            Error::config(format!(
                "stream `{}` has no int64, timestamp or date column to read incrementally by; name a cursor column",
                req.stream
            ))
        })?;
        let (index, field) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().eq_ignore_ascii_case(&name))
            .ok_or_else(|| {
                Error::config(format!(
                    "cursor `{name}` is not a column of stream `{}`",
                    req.stream
                ))
            })?;
        let ty = FerryType::of(field).unwrap_or(FerryType::String);
        if !types::cursor_supported(ty) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("cursor `{name}` is {ty}; a cursor must be int64, decimal, float64, date, timestamp or string"),
            ));
        }
        let col = quote(field.name());
        if let Some(text) = saved_cursor(req.state.as_ref(), field.name())? {
            let (param, compare) = bind_value(&text, ty)?;
            params.push(param);
            filter = Some(match (ty, compare) {
                (FerryType::String, _) => format!("CAST({col} AS BINARY) > CAST(? AS BINARY)"),
                (FerryType::Decimal { .. }, Compare::Decimal) => {
                    format!("{col} > CAST(? AS DECIMAL(65,30))")
                }
                _ => format!("{col} > ?"),
            });
        }
        cursor = Some((index, field.name().clone(), ty));
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
        Origin::Query { sql } => format!("SELECT * FROM (\n{sql}\n) AS `_ferry_q`"),
    };
    let mut sql = base;
    if let Some(f) = filter {
        sql.push_str(" WHERE ");
        sql.push_str(&f);
    }
    if let Some((_, name, ty)) = &cursor {
        let col = quote(name);
        if *ty == FerryType::String {
            sql.push_str(&format!(" ORDER BY CAST({col} AS BINARY)"));
        } else {
            sql.push_str(&format!(" ORDER BY {col}"));
        }
    }
    if let Some(limit) = req.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    // counting runs a view's query: only tables get an estimate
    let estimate = match (&origin, incremental) {
        (Origin::Table(rel), false) if rel.kind == Kind::Table => {
            Some((rel.name.clone(), rel.rows_estimate))
        }
        _ => None,
    };
    Ok(ReadPlan {
        stream: req.stream.clone(),
        schema,
        sql,
        params,
        cursor,
        estimate,
        limit: req.limit,
    })
}

/// The cursor value of a saved state, checking it was taken with the same cursor column.
fn saved_cursor(state: Option<&serde_json::Value>, column: &str) -> Result<Option<String>> {
    let Some(state) = state else { return Ok(None) };
    if let Some(saved) = state.get("column").and_then(|c| c.as_str()) {
        if !saved.eq_ignore_ascii_case(column) {
            return Err(Error::config(format!(
                "the saved state was taken with cursor `{saved}`, this run reads by `{column}`; \
                 sync with --full-refresh (or `ferry state reset`) to start over"
            )));
        }
    }
    Ok(match state.get("cursor") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
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

/// The state saving `v` (the cursor of the last row emitted) as text; `None` for NULL.
fn cursor_state(v: &Value, ty: FerryType, column: &str) -> Option<serde_json::Value> {
    let text = match (v, ty) {
        (Value::NULL, _) => return None,
        (Value::Int(i), _) => i.to_string(),
        (Value::UInt(u), _) => u.to_string(),
        (Value::Double(f), _) => format!("{f:?}"),
        // the exact value the server compares, not the shortest decimal form
        (Value::Float(f), _) => format!("{:?}", *f as f64),
        // a zero date (`0000-00-00`) reads as NULL, and saves no state either
        (Value::Date(_, m, d, ..), _) if *m == 0 || *d == 0 => return None,
        (Value::Date(y, m, d, ..), FerryType::Date) => format!("{y:04}-{m:02}-{d:02}"),
        (Value::Date(y, m, d, h, mi, s, us), _) => {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
        }
        (Value::Bytes(b), _) => String::from_utf8_lossy(b).into_owned(),
        (Value::Time(..), _) => return None,
    };
    Some(serde_json::json!({ "cursor": text, "column": column }))
}

type Tx = mpsc::Sender<Result<Message>>;

/// How a pump ended.
enum Flow {
    /// Every row was sent.
    Done,
    /// The receiver went away: the rest of the result is not wanted.
    Stopped,
}

async fn read_task(
    inner: Arc<Inner>,
    req: ReadRequest,
    tx: Tx,
    ready: oneshot::Sender<Result<()>>,
) {
    let s = &inner.conn;
    let setup = async {
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
        let plan = plan(&inner, &mut conn, &req).await?;
        Ok::<_, Error>((conn, plan))
    };
    let (mut conn, plan) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        let _ = conn.disconnect().await;
        return;
    }
    let id = conn.id();
    match pump(&mut conn, &plan, &req, s, &tx).await {
        Ok(Flow::Done) => {
            let _ = conn.query_drop("COMMIT").await;
            let _ = conn.disconnect().await;
        }
        Ok(Flow::Stopped) => {
            // dropping a connection in the middle of a result would read it to its end
            core::kill(s, id).await;
        }
        Err(e) => {
            core::kill(s, id).await;
            let _ = tx.send(Err(e.with("stream", &plan.stream))).await;
        }
    }
}

/// Streams the plan's rows into `tx` as batches, checkpoints and rejected rows.
async fn pump(
    conn: &mut Conn,
    plan: &ReadPlan,
    req: &ReadRequest,
    s: &ConnSettings,
    tx: &Tx,
) -> Result<Flow> {
    macro_rules! send {
        ($m:expr) => {
            if tx.send(Ok($m)).await.is_err() {
                return Ok(Flow::Stopped);
            }
        };
    }
    if let Some((table, guess)) = &plan.estimate {
        let n = match guess {
            Some(n) if *n >= COUNT_BELOW => *n,
            _ => {
                let sql = format!(
                    "SELECT COUNT(*) FROM {}.{}",
                    quote(&s.database),
                    quote(table)
                );
                let n: Option<u64> = conn.query_first(sql).await.my(s).ctx("table", table)?;
                n.unwrap_or(0)
            }
        };
        send!(Message::Estimate(plan.limit.map_or(n, |l| l.min(n))));
    }
    let batch_size = req.batch_size.max(1);
    let mut result = conn
        .exec_iter(plan.sql.as_str(), plan.params.clone())
        .await
        .my(s)
        .ctx("table", &plan.stream)?;
    let mut builder = RowBuilder::new(plan.schema.clone(), batch_size);
    let mut last: Option<Value> = None;
    let mut read: u64 = 0;
    // a statement without a result set (it cannot happen for a SELECT) reads as empty
    if let Some(mut rows) = result.stream::<Row>().await.my(s)? {
        while let Some(row) = rows.next().await {
            let row = row.my(s).ctx("table", &plan.stream)?;
            if builder.len() >= builder.capacity() {
                // a checkpoint only where the cursor changes: every row tying with the
                // checkpointed value is in the batches before it
                let boundary = match &plan.cursor {
                    Some((i, _, _)) => last.as_ref() != row.as_ref(*i),
                    None => true,
                };
                send!(Message::Batch(builder.finish()?));
                if boundary {
                    let state = match &plan.cursor {
                        Some((_, name, ty)) => {
                            last.as_ref().and_then(|v| cursor_state(v, *ty, name))
                        }
                        None => Some(serde_json::json!({ "rows": read })),
                    };
                    if let Some(st) = state {
                        send!(Message::Checkpoint(st));
                    }
                }
            }
            read += 1;
            let pushed = builder.push(&row);
            if let Some((i, _, _)) = &plan.cursor {
                last = row.as_ref(*i).cloned();
            }
            if let Err((bad, good)) = pushed {
                if let Some(good) = good {
                    send!(Message::Batch(good));
                }
                let raw: serde_json::Map<String, serde_json::Value> = plan
                    .schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name().clone(), types::value_json(row.as_ref(i))))
                    .collect();
                send!(Message::Rejected(Rejected {
                    position: ferry_core::Position {
                        file: None,
                        line: None,
                        column: Some(bad.column as u64 + 1),
                        key: Some(format!("{} row {read}", plan.stream)),
                    },
                    raw: serde_json::Value::Object(raw).to_string(),
                    message: bad.message,
                }));
            }
        }
    }
    drop(result);
    if builder.len() > 0 {
        send!(Message::Batch(builder.finish()?));
    }
    let state = match &plan.cursor {
        Some((_, name, ty)) => last.as_ref().and_then(|v| cursor_state(v, *ty, name)),
        None => Some(serde_json::json!({ "rows": read })),
    };
    if let Some(st) = state {
        send!(Message::Checkpoint(st));
    }
    Ok(Flow::Done)
}
