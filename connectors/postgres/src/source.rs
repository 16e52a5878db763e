//! The `postgres` source: tables, views and configured queries of one database.
//!
//! A read runs `COPY (SELECT …) TO STDOUT (FORMAT binary)` in a read-only
//! `REPEATABLE READ` transaction (the estimate and the rows see one snapshot) and turns
//! the rows into batches as they arrive: memory holds one batch, never the result. The
//! batches go through a bounded channel, and the driver stops reading the socket while
//! it is full, so a slow destination makes the server wait.
//!
//! Incremental reads add `WHERE cursor > '<saved value>' ORDER BY cursor` and save
//! `{"cursor": "<last value as text>", "column": "<cursor>"}`, checkpointing only where
//! the cursor changes, so rows that tie on it are neither missed nor repeated
//! ([`ferry_core::cursor`]).
//!
//! Full reads of a stream listed in `parallel` are split by key ranges and read over
//! several connections at once (see the `parallel` module).

pub(crate) mod cdc;
mod count;
mod parallel;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::batcher::Batcher;
use ferry_core::channel::{self, Sender};
use ferry_core::cursor::{Case, Checkpointer};
use ferry_core::{
    BuildContext, Catalog, Error, ErrorKind, MessageStream, ReadMode, ReadRequest, Result,
    ResultExt, Source, StreamInfo,
};
use ferry_sql::read::{self as sql, Query, ReadCursor, RowPump, QUERY_ALIAS};
use futures::StreamExt;
use tokio_postgres::{Client, CopyOutStream};

use crate::config::{CdcConfig, ParallelRead, PostgresSourceConfig};
use crate::core::{
    self, literal, qualified, quote, retry, within, ConnSettings, Pg, PgResultExt, RelKind,
    Relation,
};
use crate::types::{self, CopyReader, CopyRow, Cursors, LastCursor, Next, PgKind, PgType};

/// Reads tables, views and queries of a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresSource {
    inner: Arc<Inner>,
}

struct Inner {
    pg: Pg,
    schemas: Vec<String>,
    tables: Option<Vec<String>>,
    queries: Vec<Query>,
    parallel: Vec<ParallelRead>,
    exact_count: bool,
    cdc: Option<CdcConfig>,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("settings", &self.inner.pg.settings)
            .field("schemas", &self.inner.schemas)
            .finish()
    }
}

impl PostgresSource {
    /// A source for `cfg` (`ca_file` relative to `ctx.base_dir`). Checks the config
    /// without connecting.
    pub fn new(cfg: PostgresSourceConfig, ctx: &BuildContext) -> Result<Self> {
        let settings = cfg.validate(&ctx.base_dir)?;
        let schemas = cfg.schema_list();
        Ok(PostgresSource {
            inner: Arc::new(Inner {
                pg: Pg::new(settings).with_search_path(&schemas),
                schemas,
                tables: cfg.tables,
                queries: cfg.queries,
                parallel: cfg.parallel,
                exact_count: cfg.exact_count,
                cdc: cfg.cdc,
            }),
        })
    }

    /// A source offering every table and view of `schemas` on the server of `settings`.
    pub fn from_settings(settings: ConnSettings, schemas: &[&str]) -> Self {
        let mut schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        if schemas.is_empty() {
            schemas.push(crate::config::DEFAULT_SCHEMA.to_string());
        }
        PostgresSource {
            inner: Arc::new(Inner {
                pg: Pg::new(settings).with_search_path(&schemas),
                schemas,
                tables: None,
                queries: Vec::new(),
                parallel: Vec::new(),
                exact_count: false,
                cdc: None,
            }),
        }
    }

    /// Where it connects.
    pub fn settings(&self) -> &ConnSettings {
        &self.inner.pg.settings
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn route(&self) -> Vec<String> {
        ferry_sql::settings::routes(self.settings().tunnel.as_ref())
    }

    async fn check(&self) -> Result<()> {
        let s = &self.inner.pg.settings;
        within(s, "checking access to the schemas", check(&self.inner)).await
    }

    async fn discover(&self) -> Result<Catalog> {
        let inner = self.inner.clone();
        let s = &inner.pg.settings;
        retry(|| within(s, "discovering the streams", discover(&inner))).await
    }

    // the keys of a full read (the default `read_keys`)
    fn reads_keys(&self) -> bool {
        true
    }

    fn reads_changes(&self, stream: &str) -> bool {
        cdc::reads_changes(&self.inner, stream)
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        match &self.inner.cdc {
            Some(c)
                if request.mode == ReadMode::Incremental && self.reads_changes(&request.stream) =>
            {
                let stream = request.stream.clone();
                let s = &self.inner.pg.settings;
                let what = "starting to read the changes";
                within(s, what, cdc::read(self.inner.clone(), request, c))
                    .await
                    .ctx("stream", &stream)
            }
            _ => read(self.inner.clone(), request).await,
        }
    }

    async fn plan_notes(&self, streams: &[String]) -> Result<Vec<String>> {
        match &self.inner.cdc {
            Some(c) => cdc::plan_notes(&self.inner, c, streams).await,
            None => Ok(Vec::new()),
        }
    }

    async fn committed(
        &self,
        _stream: &str,
        state: &serde_json::Value,
    ) -> Result<Vec<ferry_core::Settled>> {
        if self.inner.cdc.is_some() {
            cdc::committed(&self.inner, state).await?;
        }
        Ok(Vec::new())
    }

    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        count::count(&self.inner, request).await
    }

    async fn estimate(&self, request: &ReadRequest) -> Result<Option<ferry_core::Estimate>> {
        count::estimate_rows(&self.inner, request).await
    }
}

/// Connects and checks the schemas exist and may be read.
async fn check(inner: &Inner) -> Result<()> {
    let s = &inner.pg.settings;
    let client = inner.pg.connect().await?;
    client.simple_query("SELECT 1").await.pg(s)?;
    let found = core::schema_access(&client, &inner.schemas, s).await?;
    for schema in &inner.schemas {
        match found.iter().find(|(n, _)| n == schema) {
                None => {
                    let all = client
                        .query(
                            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
                             AND nspname <> 'information_schema' ORDER BY 1",
                            &[],
                        )
                        .await
                        .pg(s)?;
                    let names: Vec<String> = all.iter().map(|r| r.get(0)).collect();
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "schema `{schema}` does not exist in database `{}` (it has: {})",
                            s.database,
                            names.join(", ")
                        ),
                    )
                    .with("server", s.location()));
                }
                Some((_, false)) => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "user `{}` may not use schema `{schema}`; run `GRANT USAGE ON SCHEMA {} TO {}` (and SELECT on its tables)",
                            s.user,
                            quote(schema),
                            quote(&s.user)
                        ),
                    )
                    .with("server", s.location()))
                }
                Some(_) => {}
            }
    }
    Ok(())
}

/// Starts a read: a parallel one when configured, else one COPY (its start retried).
async fn read(inner: Arc<Inner>, request: ReadRequest) -> Result<MessageStream> {
    let stream = request.stream.clone();
    if let Some(p) = inner
        .parallel
        .iter()
        .find(|p| p.stream == stream && p.partitions > 1)
    {
        if request.mode == ReadMode::Incremental {
            tracing::warn!(
                "stream `{stream}`: `parallel` splits full refreshes only; this incremental \
                     read is one ordered COPY (its checkpoints need the cursor's order)"
            );
        } else if request.limit.is_none() {
            if let Some(rx) = parallel::read(&inner, &request, p)
                .await
                .ctx("stream", &stream)?
            {
                return Ok(rx);
            }
        }
    }
    let s = &inner.pg.settings;
    let what = "starting the read (the query and its first COPY data)";
    let (client, plan, copy, first) = retry(|| within(s, what, setup(&inner, &request)))
        .await
        .ctx("stream", &stream)?;
    let (tx, rx) = channel::channel(channel::CAPACITY);
    let batch_size = request.batch_size.max(1);
    tokio::spawn(async move {
        run_copy(&inner, client, &plan, copy, first, batch_size, &tx).await;
    });
    Ok(rx)
}

/// Streams one started COPY into `tx` (an error as the last message), then ends the
/// read transaction, or cancels the COPY when the reader stopped early. Returns whether
/// every row was sent.
async fn run_copy(
    inner: &Inner,
    client: Client,
    plan: &ReadPlan,
    copy: Pin<Box<CopyOutStream>>,
    first: Option<Bytes>,
    batch_size: usize,
    tx: &Sender,
) -> bool {
    let finished = match pump(plan, copy, first, batch_size, tx, &inner.pg.settings).await {
        Ok(finished) => finished,
        Err(e) => {
            tx.fail(e.with("stream", &plan.stream)).await;
            false
        }
    };
    let wait = inner.pg.settings.read_timeout;
    if finished {
        // read-only: nothing to commit; ending the transaction frees the snapshot
        let _ = tokio::time::timeout(wait, client.batch_execute("ROLLBACK")).await;
    } else if let Ok(tls) = inner.pg.tls() {
        // the reader stopped early: the driver would read the rest of the COPY
        // to the end, so ask the server to stop sending it
        let cancel = client.cancel_token();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cancel.cancel_query(tls))
            .await;
    }
    finished
}

// ----------------------------------------------------------------------------------------
// Discovery

/// Where a stream's rows come from.
#[derive(Debug, Clone)]
enum Origin {
    Table(Relation),
    /// A configured query (trailing `;` removed).
    Query(String),
}

/// A stream: what discovery says about it, where it comes from, its columns' types.
struct Stream {
    info: StreamInfo,
    origin: Origin,
    types: Vec<PgType>,
}

impl Inner {
    /// The stream name of a relation: its name in the first schema, `schema.name` else.
    fn stream_name(&self, rel: &Relation) -> String {
        if rel.schema == self.schemas[0] {
            rel.name.clone()
        } else {
            format!("{}.{}", rel.schema, rel.name)
        }
    }
}

async fn discover(inner: &Inner) -> Result<Catalog> {
    let s = &inner.pg.settings;
    let client = inner.pg.connect().await?;
    client.batch_execute("BEGIN READ ONLY").await.pg(s)?;
    let relations = relations(&client, &inner.schemas, None, s).await?;
    let mut streams = Vec::new();
    match &inner.tables {
        None => {
            for rel in &relations {
                streams.push(table_stream(inner, rel).info);
            }
        }
        Some(list) => {
            for name in list {
                let rel = pick(inner, &relations, name)
                    .ok_or_else(|| not_found(inner, name, &relations))?;
                streams.push(table_stream(inner, rel).info);
            }
        }
    }
    for q in &inner.queries {
        streams.push(query_stream(&client, q, s).await?.info);
    }
    let catalog = sql::catalog(streams, Case::Exact)?;
    let _ = client.batch_execute("COMMIT").await;
    Ok(catalog)
}

/// The relations of `schemas` (or their `table`), but Ferry's staging tables.
async fn relations(
    client: &Client,
    schemas: &[String],
    table: Option<&str>,
    s: &ConnSettings,
) -> Result<Vec<Relation>> {
    let all = core::relations(client, schemas, table, s).await?;
    let ours = |r: &Relation| r.name.starts_with(core::FERRY_PREFIX);
    Ok(all.into_iter().filter(|r| !ours(r)).collect())
}

/// The relation whose stream name is `name` (exactly, else the one equal ignoring case).
fn pick<'a>(inner: &Inner, relations: &'a [Relation], name: &str) -> Option<&'a Relation> {
    relations
        .iter()
        .find(|r| inner.stream_name(r) == name)
        .or_else(|| {
            let mut same = relations
                .iter()
                .filter(|r| inner.stream_name(r).eq_ignore_ascii_case(name));
            match (same.next(), same.next()) {
                (Some(r), None) => Some(r),
                _ => None,
            }
        })
}

fn not_found(inner: &Inner, name: &str, relations: &[Relation]) -> Error {
    let mut names: Vec<String> = relations.iter().map(|r| inner.stream_name(r)).collect();
    names.extend(inner.queries.iter().map(|q| q.name.clone()));
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no table, view or query `{name}` in schema{} {} (there are: {})",
            if inner.schemas.len() > 1 { "s" } else { "" },
            inner.schemas.join(", "),
            sql::listing(names.iter().map(String::as_str))
        ),
    )
    .with("server", inner.pg.settings.location())
}

fn table_stream(inner: &Inner, rel: &Relation) -> Stream {
    let fields: Vec<Field> = rel
        .columns
        .iter()
        .map(|c| c.ty.ferry_type().field(&c.name, !c.not_null))
        .collect();
    let types: Vec<PgType> = rel.columns.iter().map(|c| c.ty.clone()).collect();
    let name = inner.stream_name(rel);
    let key = rel.primary_key();
    let info = sql::stream_info(&name, Schema::new(fields), key, None, &Cursors(&types));
    Stream {
        info,
        origin: Origin::Table(rel.clone()),
        types,
    }
}

/// The stream of a configured query: columns and types of its prepared result.
async fn query_stream(client: &Client, q: &Query, s: &ConnSettings) -> Result<Stream> {
    let sql = sql::clean_sql(&q.sql).to_string();
    let keep = [
        ErrorKind::Temporary,
        ErrorKind::Unreachable,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
    ];
    let stmt = client
        .prepare(&format!("SELECT * FROM ({sql}) AS {QUERY_ALIAS}"))
        .await
        .map_err(|e| {
            let what = format!("query `{}` is not valid (it must be one SELECT)", q.name);
            sql::invalid_query(&what, core::map_err(e, s), &keep).with("server", s.location())
        })?;
    let columns = stmt.columns();
    let types: Vec<PgType> = (columns.iter())
        .map(|c| PgType::from_driver(c.type_(), c.type_modifier()))
        .collect();
    let result = (columns.iter().zip(&types)).map(|(c, t)| (c.name().to_string(), t.ferry_type()));
    let cols = sql::query_columns(q, result, &Cursors(&types))?;
    let schema = Schema::new(cols.fields);
    let cursor = cols.cursor.as_deref();
    let info = sql::stream_info(&q.name, schema, cols.key, cursor, &Cursors(&types));
    Ok(Stream {
        info,
        origin: Origin::Query(sql),
        types,
    })
}

/// The stream named `name`: a configured query, or a table or view the config offers.
async fn resolve(inner: &Inner, client: &Client, name: &str) -> Result<Stream> {
    let s = &inner.pg.settings;
    if let Some(q) = inner.queries.iter().find(|q| q.name == name) {
        return query_stream(client, q, s).await;
    }
    // `schema.table` of a later schema, else a table of the first schema
    let mut wanted = vec![(inner.schemas[0].clone(), name.to_string())];
    if let Some((schema, table)) = name.split_once('.') {
        if inner.schemas[1..].iter().any(|x| x == schema) {
            wanted.insert(0, (schema.to_string(), table.to_string()));
        }
    }
    for (schema, table) in &wanted {
        let found = relations(client, std::slice::from_ref(schema), Some(table), s).await?;
        let Some(rel) = pick(inner, &found, name) else {
            continue;
        };
        let offered = match &inner.tables {
            None => true,
            Some(list) => list
                .iter()
                .any(|t| t == name || t.eq_ignore_ascii_case(&inner.stream_name(rel))),
        };
        if offered {
            return Ok(table_stream(inner, rel));
        }
    }
    let all = relations(client, &inner.schemas, None, s).await?;
    let all: Vec<Relation> = (all.into_iter())
        .filter(|r| match &inner.tables {
            None => true,
            Some(list) => list
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&inner.stream_name(r))),
        })
        .collect();
    Err(not_found(inner, name, &all))
}

// ----------------------------------------------------------------------------------------
// Reading

/// Everything a read needs, decided before the first row.
struct ReadPlan {
    stream: String,
    schema: SchemaRef,
    kinds: Vec<PgKind>,
    /// `SELECT <columns> FROM <relation or (query) AS q>` (plus the incremental read's
    /// `WHERE … ORDER BY …` and the `LIMIT`).
    select_sql: String,
    /// `FROM` target: the quoted relation, or `(query) AS q`.
    from_sql: String,
    /// How each column is named in `select_sql` (`"id"`, `_ferry_q."id"`).
    column_sql: Vec<String>,
    copy_sql: String,
    /// Rejected rows are named `<row_label> row <n>` (the stream, or one of its ranges).
    row_label: String,
    /// Whether the read sends checkpoints (a parallel read's ranges leave them to the
    /// merger).
    checkpoints: bool,
    /// The cursor of an incremental read.
    cursor: Option<ReadCursor>,
    /// What to send first: the rows expected from the whole stream, and whether that is
    /// an exact count in the read's snapshot (sent as [`ferry_core::Message::Total`],
    /// which the run checks for completeness, unless `limit` cuts it).
    estimate: Option<(u64, bool)>,
    limit: Option<u64>,
}

/// Connects and begins a read-only transaction with one snapshot, for the estimate and
/// the rows alike (read-only also keeps queries honest).
async fn snapshot(inner: &Inner) -> Result<Client> {
    let client = inner.pg.connect().await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .pg(&inner.pg.settings)?;
    Ok(client)
}

/// Connects, opens the read transaction, plans the read, estimates its size, starts the
/// COPY and waits for its first data (the server sends the header with the first row),
/// so a query that fails at once fails `read` itself. Safe to repeat: nothing has been
/// emitted yet.
async fn setup(
    inner: &Inner,
    req: &ReadRequest,
) -> Result<(Client, ReadPlan, Pin<Box<CopyOutStream>>, Option<Bytes>)> {
    let s = &inner.pg.settings;
    let client = snapshot(inner).await?;
    let stream = resolve(inner, &client, &req.stream).await?;
    let mut plan = plan(&stream, req)?;
    if req.mode == ReadMode::FullRefresh {
        if let Origin::Table(rel) = &stream.origin {
            plan.estimate = estimate(&client, rel, s, inner.exact_count).await?;
        }
    }
    let explain = |e: tokio_postgres::Error| {
        let e = core::map_err(e, s);
        match e.kind() {
            // a configured query that is wrong, or tries to write
            ErrorKind::ConfigInvalid => {
                let m = e.message().to_string();
                core::with_message(e, format!("stream `{}`: {m}", req.stream))
            }
            _ => e,
        }
    };
    let mut copy = Box::pin(
        client
            .copy_out(plan.copy_sql.as_str())
            .await
            .map_err(explain)?,
    );
    let first = match copy.next().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(e)) => return Err(explain(e)),
        None => None,
    };
    Ok((client, plan, copy, first))
}

/// Rows expected from a full read of `rel`, and whether the figure is exact: a
/// `count(*)` for small tables (or every table when `always_exact`), the planner's
/// statistics for large ones, none for views and foreign tables.
pub(crate) async fn estimate(
    client: &Client,
    rel: &Relation,
    s: &ConnSettings,
    always_exact: bool,
) -> Result<Option<(u64, bool)>> {
    let name = qualified(&rel.schema, &rel.name);
    let count = || async {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await
            .pg(s)?;
        Ok::<_, Error>(Some((row.get::<_, i64>(0).max(0) as u64, true)))
    };
    if always_exact && rel.kind != RelKind::Foreign {
        return count().await;
    }
    match rel.kind {
        RelKind::View | RelKind::Foreign => Ok(None),
        RelKind::Partitioned => {
            Ok((rel.reltuples >= 0.0).then(|| (rel.reltuples.round() as u64, false)))
        }
        RelKind::Table | RelKind::MaterializedView => {
            let row = client
                .query_one(
                    "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::int8",
                    &[&name],
                )
                .await
                .pg(s)?;
            let pages: i64 = row.get(0);
            if pages < 1_280 {
                // up to 10 MB: counting is cheap and exact
                count().await
            } else if rel.reltuples >= 0.0 && rel.relpages > 0 {
                // the planner's way: rows per page from the last ANALYZE times pages now
                Ok(Some((
                    (rel.reltuples / rel.relpages as f64 * pages as f64).round() as u64,
                    false,
                )))
            } else if pages < 12_800 {
                count().await
            } else {
                Ok(None)
            }
        }
    }
}

fn plan(stream: &Stream, req: &ReadRequest) -> Result<ReadPlan> {
    let schema = stream.info.schema.clone();
    let cursor = ReadCursor::of(req, &stream.info, &Cursors(&stream.types))?;
    let after = cursor.as_ref().and_then(|c| c.after.as_deref());
    if after.is_some_and(|a| a.contains('\0')) {
        let msg = "the saved cursor holds a NUL character; reset the stream's state";
        return Err(Error::data(msg));
    }
    let column_sql = |name: &str| match &stream.origin {
        Origin::Table(_) => quote(name),
        Origin::Query(_) => format!("{QUERY_ALIAS}.{}", quote(name)),
    };
    let select: Vec<String> = schema
        .fields()
        .iter()
        .zip(&stream.types)
        .map(|(f, t)| {
            let c = column_sql(f.name());
            match t.kind {
                // arrays, enums, ranges …: their JSON form
                PgKind::Other => format!("to_json({c}) AS {}", quote(f.name())),
                // inet, interval, money …: their text as psql shows it (the output
                // function; `::text` would add `/32` to an inet), NULL kept
                PgKind::Plain => format!("to_json({c}) #>> '{{}}' AS {}", quote(f.name())),
                _ => c,
            }
        })
        .collect();
    let from = match &stream.origin {
        Origin::Table(rel) => qualified(&rel.schema, &rel.name),
        Origin::Query(sql) => format!("({sql}) AS {QUERY_ALIAS}"),
    };
    let c = cursor.as_ref().map(|cur| column_sql(&cur.name));
    // an untyped literal takes the column's type: compared as the column compares
    let filter = (c.as_ref().zip(after)).map(|(c, v)| format!("{c} > {}", literal(v)));
    // NULL cursors first, so the last row (whose value is saved) has one
    let order = c.map(|c| {
        if after.is_some() {
            c
        } else {
            c + " NULLS FIRST"
        }
    });
    let select = format!("SELECT {} FROM {from}", select.join(", "));
    let sql = sql::read_sql(select, filter.as_deref(), order.as_deref(), req.limit);
    Ok(ReadPlan {
        stream: req.stream.clone(),
        schema: schema.clone(),
        kinds: stream.types.iter().map(|t| t.kind).collect(),
        copy_sql: copy_sql(&sql),
        select_sql: sql,
        from_sql: from,
        column_sql: schema
            .fields()
            .iter()
            .map(|f| column_sql(f.name()))
            .collect(),
        row_label: req.stream.clone(),
        checkpoints: true,
        cursor,
        estimate: None,
        limit: req.limit,
    })
}

/// `COPY (<select>) TO STDOUT` in the binary format.
fn copy_sql(select: &str) -> String {
    format!("COPY ({select}) TO STDOUT (FORMAT binary)")
}

/// Streams the COPY's rows into `tx` as batches, checkpoints and rejected rows.
/// Returns whether it read to the end (`false`: the receiver is gone).
async fn pump(
    plan: &ReadPlan,
    mut copy: Pin<Box<CopyOutStream>>,
    first: Option<Bytes>,
    batch_size: usize,
    tx: &Sender,
    s: &ConnSettings,
) -> Result<bool> {
    if let Some((n, exact)) = plan.estimate {
        if !tx.send(sql::expected_rows(n, exact, plan.limit)).await {
            return Ok(false);
        }
    }
    let ncols = plan.kinds.len();
    let mut reader = CopyReader::new();
    if let Some(chunk) = first {
        reader.feed(&chunk);
    }
    let mut fields: Vec<Option<(usize, usize)>> = Vec::with_capacity(ncols);
    let columns = types::read_columns(&plan.schema, plan.kinds.clone(), batch_size);
    let batcher = Batcher::new(plan.schema.clone(), batch_size, columns);
    let keeper = |c: &ReadCursor| LastCursor::new(plan.kinds[c.index], &c.name);
    let checkpoints = match plan.checkpoints {
        true => ReadCursor::checkpointer(plan.cursor.as_ref(), keeper),
        false => Checkpointer::silent(),
    };
    let mut pump = RowPump::new(batcher, checkpoints, &plan.row_label);
    loop {
        loop {
            let len = match reader
                .next_row(ncols, &mut fields)
                .map_err(|m| Error::internal(format!("reading COPY data: {m}")))?
            {
                Next::Row(len) => len,
                Next::More | Next::End => break,
            };
            let row = CopyRow {
                data: &reader.data()[..len],
                fields: &fields,
            };
            if !tx.send_all(pump.row(&row)?).await {
                return Ok(false);
            }
            reader.consume(len);
        }
        if reader.ended() {
            break;
        }
        match tokio::time::timeout(s.read_timeout, copy.next()).await {
            Ok(Some(Ok(chunk))) => reader.feed(&chunk),
            Ok(Some(Err(e))) => return Err(core::map_err(e, s)),
            Ok(None) => break,
            Err(_) => return Err(core::timed_out(s, "reading COPY data")),
        }
    }
    if !reader.ended() {
        return Err(Error::new(
            ErrorKind::Temporary,
            "the COPY data ended early; the read is incomplete",
        ));
    }
    // drain the end of the COPY (the command's completion)
    loop {
        match tokio::time::timeout(s.read_timeout, copy.next()).await {
            Ok(Some(m)) => m.map(drop).map_err(|e| core::map_err(e, s))?,
            Ok(None) => break,
            Err(_) => return Err(core::timed_out(s, "ending the COPY")),
        }
    }
    let done = tx.send_all(pump.end()?).await;
    Ok(done)
}
