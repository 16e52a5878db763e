//! The `sqlite` source: tables, views and configured queries of one database file.
//!
//! Every call opens its own read-only connection on a blocking thread, so the async
//! runtime never waits on SQLite. A read streams rows straight from the statement into
//! batches (memory holds one batch, not the result) and hands them over through a
//! bounded channel: a slow destination makes the reader wait.
//!
//! Incremental reads run `... WHERE cursor > ? ORDER BY cursor` and save
//! `{"cursor": "<last value as text>", "column": "<cursor>"}`. A checkpoint is emitted
//! only where the next row's cursor differs from the last emitted one, so every row
//! sharing the checkpointed value has been emitted: a resume neither misses nor repeats
//! rows that tie on the cursor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode,
    ReadRequest, Rejected, Result, ResultExt, Source, StreamInfo,
};
use futures::StreamExt;
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::config::{SqliteQuery, SqliteSourceConfig, DEFAULT_BUSY_TIMEOUT_MS};
use crate::core::{self, quote, Kind, Relation, SqlResultExt};
use crate::types::{self, RowBuilder};

/// Batches buffered between the reading thread and the pipeline.
const CHANNEL_BATCHES: usize = 2;

/// Reads tables, views and queries of a SQLite file.
#[derive(Clone)]
pub struct SqliteSource {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    cfg: SqliteSourceConfig,
}

impl SqliteSource {
    /// A source for `cfg`, its `path` taken relative to `ctx.base_dir`. Checks the config
    /// without opening the file.
    pub fn new(cfg: SqliteSourceConfig, ctx: &BuildContext) -> Result<Self> {
        cfg.validate()?;
        let path = core::resolve(&ctx.base_dir, &cfg.path);
        Ok(SqliteSource {
            inner: Arc::new(Inner { path, cfg }),
        })
    }

    /// A source offering every table and view of the file at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let cfg = SqliteSourceConfig {
            path: path.clone(),
            tables: None,
            queries: Vec::new(),
            busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS,
        };
        SqliteSource {
            inner: Arc::new(Inner { path, cfg }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner, Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = core::open_read_only(&inner.path, inner.cfg.busy_timeout_ms)?;
            f(&inner, conn)
        })
        .await
        .map_err(|e| Error::internal(format!("SQLite worker failed: {e}")))?
    }
}

#[async_trait]
impl Source for SqliteSource {
    async fn check(&self) -> Result<()> {
        self.blocking(|inner, conn| {
            // reading the schema proves the file is a database, not just a file
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .sql(&inner.path)?;
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .sql(&inner.path)?;
            Ok(())
        })
        .await
    }

    async fn discover(&self) -> Result<Catalog> {
        self.blocking(|inner, conn| discover(inner, &conn)).await
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let (ready_tx, ready_rx) = oneshot::channel();
        let inner = self.inner.clone();
        let stream = request.stream.clone();
        tokio::task::spawn_blocking(move || read_blocking(&inner, request, tx, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.with("stream", &stream)),
            Err(_) => {
                return Err(Error::internal(
                    "the SQLite reader stopped before it started",
                ))
            }
        }
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
    }

    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        ferry_core::source::count_by_estimate(self, request).await
    }
}

// ----------------------------------------------------------------------------------------
// Discovery

/// Where a stream's rows come from.
enum Origin {
    /// A table or view and its columns, in order.
    Table {
        name: String,
        columns: Vec<String>,
        view: bool,
    },
    /// A configured query (trailing `;` removed).
    Query { sql: String },
}

fn discover(inner: &Inner, conn: &Connection) -> Result<Catalog> {
    let file = &inner.path;
    let relations = core::list_relations(conn, file)?;
    let names: Vec<String> = match &inner.cfg.tables {
        None => relations.iter().map(|(n, _)| n.clone()).collect(),
        Some(list) => list.clone(),
    };
    let mut streams = Vec::new();
    for name in names {
        let rel =
            core::relation(conn, &name, file)?.ok_or_else(|| not_found(&name, &relations, file))?;
        streams.push(table_stream(&rel));
    }
    for q in &inner.cfg.queries {
        streams.push(query_stream(conn, q, file)?.0);
    }
    for (i, s) in streams.iter().enumerate() {
        if streams[..i]
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&s.name))
        {
            return Err(Error::config(format!(
                "two streams are named `{}` (a query has the name of a table or view, or a table is listed twice); rename the query",
                s.name
            )));
        }
    }
    Ok(Catalog::new(streams))
}

fn not_found(name: &str, relations: &[(String, Kind)], file: &Path) -> Error {
    let names: Vec<&str> = relations.iter().map(|(n, _)| n.as_str()).collect();
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no table or view `{name}` in the SQLite file (it has: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    )
    .with("file", file.display())
}

fn table_stream(rel: &Relation) -> StreamInfo {
    let (schema, key) = types::table_schema(&rel.columns);
    stream_info(&rel.name, schema, key, None)
}

/// A stream's description: schema with keys, cursor candidates (the configured
/// `cursor` first, then an integer primary key, then columns named like an update time,
/// then the other int64, timestamp and date columns in order).
fn stream_info(name: &str, schema: Schema, key: Vec<String>, cursor: Option<&str>) -> StreamInfo {
    let mut ranked: Vec<(u8, usize, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| FerryType::of(f).is_some_and(types::is_cursor_candidate))
        .map(|(i, f)| {
            let lower = f.name().to_ascii_lowercase();
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
    // a string or float64 column can be named as the cursor even though not offered
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

fn clean_sql(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// The stream of a configured query: columns from the prepared statement, types from
/// `columns`, else the declared type of the source column, else string.
fn query_stream(conn: &Connection, q: &SqliteQuery, file: &Path) -> Result<(StreamInfo, String)> {
    let sql = clean_sql(&q.sql).to_string();
    let bad = |msg: String| {
        Error::config(format!("query `{}`: {msg}", q.name)).with("file", file.display())
    };
    let stmt = conn.prepare(&sql).map_err(|e| {
        let mapped = core::map_err(e, file);
        let kind = match mapped.kind() {
            k @ (ErrorKind::Temporary
            | ErrorKind::Io
            | ErrorKind::DataInvalid
            | ErrorKind::PermissionDenied) => k,
            _ => ErrorKind::ConfigInvalid,
        };
        Error::new(
            kind,
            format!("query `{}` is not valid: {}", q.name, mapped.message()),
        )
        .with("file", file.display())
    })?;
    if !stmt.readonly() {
        return Err(bad("must be one read-only SELECT".into()));
    }
    if stmt.column_count() == 0 {
        return Err(bad("returns no columns".into()));
    }
    let mut fields = Vec::new();
    for col in stmt.columns() {
        let name = col.name().to_string();
        if fields
            .iter()
            .any(|f: &Field| f.name().eq_ignore_ascii_case(&name))
        {
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
            None => col
                .decl_type()
                .map(types::ferry_type)
                .unwrap_or(FerryType::String),
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
                return Err(bad(format!("cursor `{c}` is {ty}; a cursor must be int64, float64, date, timestamp or string")));
            }
            Some(name)
        }
        None => None,
    };
    let info = stream_info(&q.name, Schema::new(fields), key, cursor.as_deref());
    Ok((info, sql))
}

/// The stream named `stream`: a configured query, or a table or view the config offers.
fn resolve(inner: &Inner, conn: &Connection, stream: &str) -> Result<(StreamInfo, Origin)> {
    let file = &inner.path;
    if let Some(q) = inner.cfg.queries.iter().find(|q| q.name == stream) {
        let (info, sql) = query_stream(conn, q, file)?;
        return Ok((info, Origin::Query { sql }));
    }
    let offered = match &inner.cfg.tables {
        None => !core::is_staging(stream),
        Some(list) => list.iter().any(|t| t.eq_ignore_ascii_case(stream)),
    };
    let rel = match core::relation(conn, stream, file)? {
        Some(rel) if offered => rel,
        _ => return Err(not_found(stream, &core::list_relations(conn, file)?, file)),
    };
    let info = table_stream(&rel);
    let columns = rel.columns.iter().map(|c| c.name.clone()).collect();
    let view = rel.kind == Kind::View;
    Ok((
        info,
        Origin::Table {
            name: rel.name,
            columns,
            view,
        },
    ))
}

// ----------------------------------------------------------------------------------------
// Reading

/// Everything a read needs, decided before the first row.
struct ReadPlan {
    stream: String,
    schema: SchemaRef,
    sql: String,
    params: Vec<Value>,
    /// Column index and name of the cursor (incremental reads).
    cursor: Option<(usize, String)>,
    /// `SELECT count(*)` for the estimate (full reads of tables).
    count_sql: Option<String>,
    limit: Option<u64>,
}

fn plan(inner: &Inner, conn: &Connection, req: &ReadRequest) -> Result<ReadPlan> {
    let (info, origin) = resolve(inner, conn, &req.stream)?;
    let schema = info.schema.clone();
    let incremental = req.mode == ReadMode::Incremental;
    let mut cursor = None;
    let mut params = Vec::new();
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
                format!("cursor `{name}` is {ty}; a cursor must be int64, float64, date, timestamp or string"),
            ));
        }
        if let Some(value) = saved_cursor(req.state.as_ref(), field.name())? {
            params.push(bind_value(&value, ty)?);
        }
        cursor = Some((index, field.name().clone()));
    }
    let base = match &origin {
        Origin::Table { name, columns, .. } => {
            let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
            format!("SELECT {} FROM {}", cols.join(", "), quote(name))
        }
        Origin::Query { sql } if cursor.is_none() && req.limit.is_none() => sql.clone(),
        Origin::Query { sql } => format!("SELECT * FROM ({sql})"),
    };
    let mut sql = base;
    if let Some((_, name)) = &cursor {
        if !params.is_empty() {
            sql.push_str(&format!(" WHERE {} > ?1 COLLATE BINARY", quote(name)));
        }
        sql.push_str(&format!(" ORDER BY {} COLLATE BINARY", quote(name)));
    }
    if let Some(limit) = req.limit {
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as u64)));
    }
    // counting a table is a cheap b-tree walk; counting a view runs it, so views get none
    let count_sql = match (&origin, incremental) {
        (
            Origin::Table {
                name, view: false, ..
            },
            false,
        ) => Some(format!("SELECT count(*) FROM {}", quote(name))),
        _ => None,
    };
    Ok(ReadPlan {
        stream: req.stream.clone(),
        schema,
        sql,
        params,
        cursor,
        count_sql,
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

/// The saved cursor text as a parameter of the storage class the column compares as.
fn bind_value(text: &str, ty: FerryType) -> Result<Value> {
    let bad = || {
        Error::data(format!(
            "the saved cursor `{text}` is not a number; reset the stream's state"
        ))
    };
    Ok(match ty {
        FerryType::Int64 => match text.trim().parse::<i64>() {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Real(text.trim().parse::<f64>().map_err(|_| bad())?),
        },
        FerryType::Float64 => Value::Real(text.trim().parse::<f64>().map_err(|_| bad())?),
        _ => Value::Text(text.to_string()),
    })
}

/// The cursor value of the last row emitted, kept without allocating per row.
#[derive(Default)]
struct LastCursor {
    set: bool,
    value: Cur,
}

#[derive(Default)]
enum Cur {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl LastCursor {
    fn remember(&mut self, v: ValueRef<'_>) {
        self.set = true;
        self.value = match (std::mem::take(&mut self.value), v) {
            (_, ValueRef::Null) => Cur::Null,
            (_, ValueRef::Integer(i)) => Cur::Int(i),
            (_, ValueRef::Real(f)) => Cur::Real(f),
            (Cur::Text(mut s), ValueRef::Text(t)) => {
                s.clear();
                s.push_str(&String::from_utf8_lossy(t));
                Cur::Text(s)
            }
            (_, ValueRef::Text(t)) => Cur::Text(String::from_utf8_lossy(t).into_owned()),
            (_, ValueRef::Blob(b)) => Cur::Blob(b.to_vec()),
        };
    }

    /// Whether `v` equals the remembered value as SQLite's `>` sees it (numbers by
    /// value, text byte by byte).
    fn same(&self, v: ValueRef<'_>) -> bool {
        if !self.set {
            return false;
        }
        match (&self.value, v) {
            (Cur::Null, ValueRef::Null) => true,
            (Cur::Int(a), ValueRef::Integer(b)) => *a == b,
            (Cur::Int(a), ValueRef::Real(b)) => (*a as f64) == b,
            (Cur::Real(a), ValueRef::Integer(b)) => *a == b as f64,
            (Cur::Real(a), ValueRef::Real(b)) => *a == b,
            (Cur::Text(a), ValueRef::Text(b)) => a.as_bytes() == b,
            (Cur::Blob(a), ValueRef::Blob(b)) => a.as_slice() == b,
            _ => false,
        }
    }

    /// The state to save: `None` until a row with a non-NULL cursor was emitted.
    fn state(&self, column: &str) -> Option<serde_json::Value> {
        let text = match &self.value {
            _ if !self.set => return None,
            Cur::Null => return None,
            Cur::Int(i) => i.to_string(),
            Cur::Real(f) => format!("{f:?}"),
            Cur::Text(s) => s.clone(),
            Cur::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        };
        Some(serde_json::json!({ "cursor": text, "column": column }))
    }
}

type Tx = mpsc::Sender<Result<Message>>;

fn read_blocking(inner: &Inner, req: ReadRequest, tx: Tx, ready: oneshot::Sender<Result<()>>) {
    let file = inner.path.clone();
    let setup = || -> Result<(Connection, ReadPlan)> {
        let conn = core::open_read_only(&file, inner.cfg.busy_timeout_ms)?;
        // one read transaction: the estimate and the rows see the same snapshot
        conn.execute_batch("BEGIN").sql(&file)?;
        let plan = plan(inner, &conn, &req)?;
        conn.prepare_cached(&plan.sql).sql(&file)?;
        Ok((conn, plan))
    };
    let (conn, plan) = match setup() {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    if let Err(e) = pump(&conn, &plan, &req, &file, &tx) {
        let _ = tx.blocking_send(Err(e.with("stream", &plan.stream)));
    }
}

/// Streams the plan's rows into `tx` as batches, checkpoints and rejected rows.
/// Returns early, without error, when the receiver is gone.
fn pump(conn: &Connection, plan: &ReadPlan, req: &ReadRequest, file: &Path, tx: &Tx) -> Result<()> {
    macro_rules! send {
        ($m:expr) => {
            if tx.blocking_send(Ok($m)).is_err() {
                return Ok(());
            }
        };
    }
    if let Some(count_sql) = &plan.count_sql {
        let n: i64 = conn
            .query_row(count_sql, [], |r| r.get(0))
            .sql(file)
            .ctx("table", &plan.stream)?;
        let n = n.max(0) as u64;
        // counted in the read's own transaction: the exact total, unless a limit cuts it
        send!(match plan.limit {
            None => Message::Total(n),
            Some(l) => Message::Estimate(l.min(n)),
        });
    }
    let batch_size = req.batch_size.max(1);
    let mut stmt = conn.prepare_cached(&plan.sql).sql(file)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(plan.params.iter()))
        .sql(file)?;
    let mut builder = RowBuilder::new(plan.schema.clone(), batch_size);
    let incremental = plan.cursor.is_some();
    let mut last = LastCursor::default();
    let mut read: u64 = 0;
    while let Some(row) = rows.next().sql(file).ctx("table", &plan.stream)? {
        if builder.len() >= builder.capacity() {
            // a checkpoint only where the cursor changes: every row tying with the
            // checkpointed value is in the batches before it
            let boundary = match &plan.cursor {
                Some((i, _)) => !last.same(row.get_ref(*i).sql(file)?),
                None => true,
            };
            send!(Message::Batch(builder.finish()?));
            if boundary {
                let state = match &plan.cursor {
                    Some((_, name)) => last.state(name),
                    None => Some(serde_json::json!({ "rows": read })),
                };
                if let Some(s) = state {
                    send!(Message::Checkpoint(s));
                }
            }
        }
        read += 1;
        let pushed = builder.push(row);
        if let Some((i, _)) = &plan.cursor {
            last.remember(row.get_ref(*i).sql(file)?);
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
                .map(|(i, f)| {
                    (
                        f.name().clone(),
                        row.get_ref(i).map(types::value_json).unwrap_or_default(),
                    )
                })
                .collect();
            send!(Message::Rejected(Rejected {
                position: ferry_core::Position {
                    file: Some(file.display().to_string()),
                    line: None,
                    column: Some(bad.column as u64 + 1),
                    key: Some(format!("{} row {read}", plan.stream)),
                },
                raw: serde_json::Value::Object(raw).to_string(),
                message: bad.message,
            }));
        }
    }
    if builder.len() > 0 {
        send!(Message::Batch(builder.finish()?));
    }
    let state = if incremental {
        plan.cursor.as_ref().and_then(|(_, name)| last.state(name))
    } else {
        Some(serde_json::json!({ "rows": read }))
    };
    if let Some(s) = state {
        send!(Message::Checkpoint(s));
    }
    Ok(())
}
