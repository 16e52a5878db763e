//! The `sqlite` source: tables, views and configured queries of one database file.
//!
//! Every call opens its own read-only connection on a blocking thread, so the async
//! runtime never waits on SQLite. A read streams rows straight from the statement into
//! batches (memory holds one batch, not the result) and hands them over through a
//! bounded channel: a slow destination makes the reader wait.
//!
//! Incremental reads run `... WHERE cursor > ? ORDER BY cursor` and save
//! `{"cursor": "<last value as text>", "column": "<cursor>"}`, checkpointing only where
//! the cursor changes, so rows that tie on it are neither missed nor repeated
//! ([`ferry_core::cursor`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::batcher::Batcher;
use ferry_core::channel::{self, Sender};
use ferry_core::cursor::Case;
use ferry_core::{
    BuildContext, Catalog, Error, ErrorKind, FerryType, MessageStream, ReadRequest, Result,
    ResultExt, Source, StreamInfo,
};
use ferry_sql::read::{self as sql, Query, ReadCursor, RowPump};
use rusqlite::types::Value;
use rusqlite::Connection;

use crate::config::{SqliteSourceConfig, DEFAULT_BUSY_TIMEOUT_MS};
use crate::core::{self, quote, Kind, Relation, SqlResultExt};
use crate::types::{self, Cursors, LastCursor};

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

    // the keys of a full read (the default `read_keys`)
    fn reads_keys(&self) -> bool {
        true
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let inner = self.inner.clone();
        let stream = request.stream.clone();
        let start = move || {
            let conn = core::open_read_only(&inner.path, inner.cfg.busy_timeout_ms)?;
            // one read transaction: the estimate and the rows see the same snapshot
            conn.execute_batch("BEGIN").sql(&inner.path)?;
            let plan = plan(&inner, &conn, &request)?;
            conn.prepare_cached(&plan.sql).sql(&inner.path)?;
            Ok((conn, plan, inner))
        };
        let run = |(conn, plan, inner): (Connection, ReadPlan, Arc<Inner>), tx: &Sender| {
            pump(&conn, &plan, &inner.path, tx).map_err(|e| e.with("stream", &plan.stream))
        };
        channel::spawn_blocking(channel::CAPACITY, start, run)
            .await
            .map_err(|e| e.with("stream", &stream))
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
    sql::catalog(streams, Case::Ignore)
}

fn not_found(name: &str, relations: &[(String, Kind)], file: &Path) -> Error {
    let names = relations.iter().map(|(n, _)| n.as_str());
    sql::no_relation(name, "the SQLite file", names).with("file", file.display())
}

fn table_stream(rel: &Relation) -> StreamInfo {
    let (schema, key) = types::table_schema(&rel.columns);
    sql::stream_info(&rel.name, schema, key, None, &Cursors)
}

/// The stream of a configured query: columns from the prepared statement, types from
/// `columns`, else the declared type of the source column, else string.
fn query_stream(conn: &Connection, q: &Query, file: &Path) -> Result<(StreamInfo, String)> {
    let sql = sql::clean_sql(&q.sql).to_string();
    let in_file = |e: Error| e.with("file", file.display());
    let keep = [
        ErrorKind::Temporary,
        ErrorKind::Io,
        ErrorKind::DataInvalid,
        ErrorKind::PermissionDenied,
    ];
    let stmt = conn.prepare(&sql).map_err(|e| {
        let what = format!("query `{}` is not valid", q.name);
        in_file(sql::invalid_query(&what, core::map_err(e, file), &keep))
    })?;
    if !stmt.readonly() {
        let msg = format!("query `{}`: must be one read-only SELECT", q.name);
        return Err(in_file(Error::config(msg)));
    }
    let result = stmt.columns().map(|c| {
        let ty = c.decl_type().map(types::ferry_type);
        (c.name().to_string(), ty.unwrap_or(FerryType::String))
    });
    let cols = sql::query_columns(q, result, &Cursors).map_err(in_file)?;
    let schema = Schema::new(cols.fields);
    let info = sql::stream_info(&q.name, schema, cols.key, cols.cursor.as_deref(), &Cursors);
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
    /// The cursor of an incremental read.
    cursor: Option<ReadCursor>,
    /// `SELECT count(*)` for the estimate (full reads of tables).
    count_sql: Option<String>,
    limit: Option<u64>,
    batch_size: usize,
}

fn plan(inner: &Inner, conn: &Connection, req: &ReadRequest) -> Result<ReadPlan> {
    let (info, origin) = resolve(inner, conn, &req.stream)?;
    let cursor = ReadCursor::of(req, &info, &Cursors)?;
    let mut params = Vec::new();
    if let Some(ReadCursor {
        after: Some(value),
        ty,
        ..
    }) = &cursor
    {
        params.push(bind_value(value, *ty)?);
    }
    let base = match &origin {
        Origin::Table { name, columns, .. } => {
            let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
            format!("SELECT {} FROM {}", cols.join(", "), quote(name))
        }
        Origin::Query { sql } if cursor.is_none() && req.limit.is_none() => sql.clone(),
        Origin::Query { sql } => format!("SELECT * FROM ({sql})"),
    };
    let col = cursor.as_ref().map(|c| quote(&c.name));
    let filter = (col.as_ref())
        .filter(|_| !params.is_empty())
        .map(|c| format!("{c} > ?1 COLLATE BINARY"));
    let order = col.map(|c| format!("{c} COLLATE BINARY"));
    // counting a table is a cheap b-tree walk; counting a view runs it, so views get none
    let count_sql = match (&origin, cursor.is_some()) {
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
        schema: info.schema.clone(),
        sql: sql::read_sql(base, filter.as_deref(), order.as_deref(), req.limit),
        params,
        cursor,
        count_sql,
        limit: req.limit,
        batch_size: req.batch_size.max(1),
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

/// Streams the plan's rows into `tx` as batches, checkpoints and rejected rows.
/// Returns early, without error, when the receiver is gone.
fn pump(conn: &Connection, plan: &ReadPlan, file: &Path, tx: &Sender) -> Result<()> {
    if let Some(count_sql) = &plan.count_sql {
        let n: i64 = conn
            .query_row(count_sql, [], |r| r.get(0))
            .sql(file)
            .ctx("table", &plan.stream)?;
        let n = n.max(0) as u64;
        // counted in the read's own transaction: the exact total, unless a limit cuts it
        let m = sql::expected_rows(n, true, plan.limit);
        if !tx.send_blocking(m) {
            return Ok(());
        }
    }
    let mut stmt = conn.prepare_cached(&plan.sql).sql(file)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(plan.params.iter()))
        .sql(file)?;
    let columns = types::read_columns(&plan.schema, plan.batch_size);
    let batcher = Batcher::new(plan.schema.clone(), plan.batch_size, columns);
    let checkpoints = ReadCursor::checkpointer(plan.cursor.as_ref(), |_| LastCursor::new(file));
    let mut pump =
        RowPump::new(batcher, checkpoints, &plan.stream).in_file(file.display().to_string());
    while let Some(row) = rows.next().sql(file).ctx("table", &plan.stream)? {
        if !tx.send_all_blocking(pump.row(row)?) {
            return Ok(());
        }
    }
    let _ = tx.send_all_blocking(pump.end()?);
    Ok(())
}
