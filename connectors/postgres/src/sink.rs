//! The `postgres` destination: append, upsert and staged overwrite, loaded with
//! `COPY … FROM STDIN (FORMAT binary)`.
//!
//! Every stream gets its own connection. Rows are encoded in PostgreSQL's binary COPY
//! format as batches arrive and streamed into one open `COPY` (memory holds about one
//! batch); `flush` ends the COPY and commits, so **each flush is one transaction**:
//!
//! - **append** copies into the table itself.
//! - **upsert** copies into a temporary table (emptied at every commit) and then runs
//!   `INSERT … SELECT DISTINCT ON (key) … ON CONFLICT (key) DO UPDATE` in the same
//!   transaction: the last row of a key wins, and an update that changes nothing is
//!   skipped, so a rerun of the same rows changes nothing.
//! - **overwrite** copies into a staging table `_ferry_stage_<table>_<run id>`, commits
//!   at each flush (`Durability::AtClose`), and `close` swaps it in one transaction
//!   (drop the old table, rename the staging table); `abort` drops the staging table,
//!   and the old table is untouched until the swap.
//!
//! Repeating is safe, and done on temporary failures, for: connecting, `open` (its DDL
//! runs in one transaction), the upsert's merge (behind a savepoint: the copied rows
//! stay), and the overwrite's swap. Rows copied since the last flush are never kept in
//! memory, so a connection lost while loading fails the stream; the runtime has not
//! committed state past the last flush, and the rerun resumes there.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::sink::NameMatch;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Error, ErrorKind, FerryType, Result, ResultExt, Sink, StreamWriter, WriteMode,
    WriteRequest,
};
use ferry_sql::write::ddl::{column_list, temp_upsert};
use ferry_sql::write::history;
use ferry_sql::write::missing;
use ferry_sql::write::naming::OWNER_TABLE;
use ferry_sql::write::{
    duplicate_key, mismatch, owner, Dialect, Driver, Existing, KeyPart, Load, NameOf, Staging,
    Table, TableWriter,
};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use crate::config::PostgresSinkConfig;
use crate::core::{
    self, is_transient, qualified, quote, retry, within, ConnSettings, Pg, PgResultExt, RelKind,
    MAX_IDENT,
};
use crate::types::{self, BatchEncoder, Enc, PgKind, PgType};

/// Bytes of encoded rows sent to the server at once.
const CHUNK: usize = 1 << 20;
/// What a flush waits for, in a timeout's message.
const COMMITTING: &str = "committing the rows written since the last flush (COPY end, COMMIT)";
/// The temporary table an upsert copies into (one per connection).
const UPSERT_TABLE: &str = "_ferry_upsert";

/// Writes streams into tables of one schema of a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresSink {
    inner: Arc<Inner>,
}

struct Inner {
    pg: Pg,
    schema: String,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("settings", &self.inner.pg.settings)
            .field("schema", &self.inner.schema)
            .finish()
    }
}

impl PostgresSink {
    /// A sink for `cfg` (`ca_file` relative to `ctx.base_dir`). Connects to nothing yet.
    pub fn new(cfg: PostgresSinkConfig, ctx: &BuildContext) -> Result<Self> {
        let settings = cfg.validate(&ctx.base_dir)?;
        Ok(Self::from_settings(settings, &cfg.schema_name()))
    }

    /// A sink writing into `schema` on the server of `settings`.
    pub fn from_settings(settings: ConnSettings, schema: &str) -> Self {
        PostgresSink {
            inner: Arc::new(Inner {
                pg: Pg::new(settings),
                schema: schema.to_string(),
            }),
        }
    }

    /// Where it connects.
    pub fn settings(&self) -> &ConnSettings {
        &self.inner.pg.settings
    }

    /// The schema it writes into.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }
}

#[async_trait]
impl Sink for PostgresSink {
    fn route(&self) -> Vec<String> {
        ferry_sql::settings::routes(self.settings().tunnel.as_ref())
    }

    async fn check(&self) -> Result<()> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "checking the destination schema", async {
        let s = &self.inner.pg.settings;
        let schema = &self.inner.schema;
        let client = self.inner.pg.connect().await?;
        let row = client
            .query_one(
                "SELECT n.oid IS NOT NULL, COALESCE(has_schema_privilege(n.oid, 'USAGE'), false), \
                 has_database_privilege(current_database(), 'CREATE') \
                 FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1",
                &[schema],
            )
            .await
            .pg(s)?;
        let (exists, usage, create_schema): (bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2));
        let denied = |m: String| {
            Err(Error::new(ErrorKind::PermissionDenied, m).with("server", s.location()))
        };
        if exists && !usage {
            return denied(format!(
                "user `{}` may not use schema `{schema}`; run `GRANT USAGE, CREATE ON SCHEMA {} TO {}`",
                s.user,
                quote(schema),
                quote(&s.user)
            ));
        }
        if !exists && !create_schema {
            return denied(format!(
                "schema `{schema}` does not exist and user `{}` may not create it; create it, or \
                 `GRANT CREATE ON DATABASE {} TO {}`",
                s.user,
                quote(&s.database),
                quote(&s.user)
            ));
        }
        Ok(())
        }).await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let inner = self.inner.clone();
        let s = &inner.pg.settings;
        let what = "opening the table (connecting, creating or fitting it)";
        let (client, target, history) = retry(|| within(s, what, open_target(&inner, &request)))
            .await
            .ctx("table", &request.stream)?;
        let table = history
            .as_ref()
            .map_or(&target.table, |h| &h.0.table)
            .clone();
        let location = format!("{}#{}.{table}", s.location(), inner.schema);
        let (main_key, deletes) = (target.key.clone(), request.deletes);
        let mut writer = TableWriter::new(self.load(client, target), &table, &request, location);
        if let Some((_, statements)) = &history {
            writer = writer.history(&request, statements.clone());
        }
        let (Some(keys), Some(deletes)) = (missing::keys_request(&request), deletes) else {
            return Ok(Box::new(writer));
        };
        let what = "opening the keys table of `deletes`";
        let (client, keys, _) = retry(|| within(s, what, open_target(&inner, &keys)))
            .await
            .ctx("table", &request.stream)?;
        let ddl = PgDdl {
            client: &client,
            schema: &inner.schema,
            s,
        };
        let staged = keys.staging.clone().expect("keys are staged");
        let started = missing::started(&request.run_id);
        let missing = match &history {
            Some((h, _)) => h.missing(&ddl, &staged),
            None => missing::missing(&ddl, &table, &staged, &main_key, deletes, &started),
        };
        let keys = self.load(client, keys);
        Ok(Box::new(writer.deleting(keys, &request, missing)))
    }

    // abort cancels the COPY, rolls the open transaction back and drops the staging table
    ferry_sql::table_sink!();

    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "reading the table's definition", async {
            let s = &self.inner.pg.settings;
            let client = self.inner.pg.connect_retrying().await?;
            let rel = core::find_relation(&client, &self.inner.schema, stream, s).await?;
            Ok(rel.map(|r| {
                let fields: Vec<_> = r
                    .columns
                    .iter()
                    .map(|c| c.ty.ferry_type().field(&c.name, !c.not_null))
                    .collect();
                with_keys(&Schema::new(fields), &r.primary_key(), None)
            }))
        })
        .await
    }

    async fn count_keys(&self, stream: &str, keys: Option<&RecordBatch>) -> Result<Option<u64>> {
        let (inner, what) = (&self.inner, "counting the destination's keys");
        let s = &inner.pg.settings;
        let client = inner.pg.connect().await?;
        let mut ddl = PgDdl {
            client: &client,
            schema: &inner.schema,
            s,
        };
        within(s, what, missing::count_keys(&mut ddl, stream, keys)).await
    }

    async fn owner(&self) -> Result<Option<String>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "reading the destination's owner tag", async {
            let client = self.inner.pg.connect_retrying().await?;
            owner::read(&mut self.ddl(&client)).await
        })
        .await
    }

    /// Writes the `_ferry_owner` tag table in the destination schema if it holds no
    /// client yet (insert-if-absent, under a transaction-scoped advisory lock, so two syncs
    /// binding at once cannot both win), and answers the client it holds then. A
    /// destination where it cannot be written stays unbound, with a warning: binding must
    /// not block a sync.
    async fn bind_owner(&self, client: &str) -> Result<Option<String>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "writing the destination's owner tag", async {
            let s = &self.inner.pg.settings;
            let conn = self.inner.pg.connect_retrying().await?;
            let lock = core::literal(&qualified(&self.inner.schema, OWNER_TABLE));
            let bound = async {
                let begin = format!("BEGIN; SELECT pg_advisory_xact_lock(hashtext({lock}))");
                conn.batch_execute(&begin).await.pg(s)?;
                let bound = owner::bind(&mut self.ddl(&conn), client).await?;
                conn.batch_execute("COMMIT").await.pg(s)?;
                Ok::<_, Error>(bound)
            }
            .await;
            if let Err(e) = &bound {
                let _ = conn.batch_execute("ROLLBACK").await;
                tracing::warn!("the destination could not be tagged with its client: {e}");
            }
            Ok(bound.unwrap_or(None))
        })
        .await
    }

    async fn count(&self, stream: &str) -> Result<Option<u64>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "counting the table's rows", async {
            let s = &self.inner.pg.settings;
            let client = self.inner.pg.connect_retrying().await?;
            let Some(r) = core::find_relation(&client, &self.inner.schema, stream, s).await? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT count(*) FROM {}",
                core::qualified(&r.schema, &r.name)
            );
            let n: i64 = client.query_one(&sql, &[]).await.pg(s)?.get(0);
            Ok(Some(n.max(0) as u64))
        })
        .await
    }
}

impl PostgresSink {
    fn ddl<'a>(&'a self, client: &'a Client) -> PgDdl<'a> {
        PgDdl {
            client,
            schema: &self.inner.schema,
            s: &self.inner.pg.settings,
        }
    }
}

impl PostgresSink {
    /// A loader of `target`'s rows over `client`.
    fn load(&self, client: Client, target: Target) -> PgLoad {
        PgLoad {
            inner: self.inner.clone(),
            client: Some(client),
            target,
            copy: None,
            in_tx: false,
            committing: false,
            broken: false,
            outcome_unknown: false,
            buf: BytesMut::with_capacity(CHUNK + 64 * 1024),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Opening a stream

/// What a writer writes to, fixed at open.
struct Target {
    /// The destination table's name (an existing table's real name).
    table: String,
    /// The staging table of an overwrite.
    staging: Option<String>,
    mode: WriteMode,
    /// The key's columns as the destination names them.
    key: Vec<String>,
    /// Columns as the destination names them, in the stream's order.
    columns: Vec<String>,
    types: Vec<FerryType>,
    encs: Vec<Enc>,
    copy_sql: String,
    /// `INSERT … ON CONFLICT` from the temporary table (upsert).
    merge_sql: Option<String>,
}

/// PostgreSQL's SQL and catalog for one schema, on one connection, for the shared
/// writing code.
struct PgDdl<'a> {
    client: &'a Client,
    schema: &'a str,
    s: &'a ConnSettings,
}

impl Dialect for PgDdl<'_> {
    type Type = PgType;

    const SYSTEM: &'static str = "PostgreSQL";
    const NAMES: NameMatch = NameMatch::Exact;

    /// A table created without quotes is stored in lower case.
    fn lookup(&self) -> NameMatch {
        NameMatch::AsciiCaseless
    }

    fn quote(&self, name: &str) -> String {
        quote(name)
    }

    fn qualified(&self, table: &str) -> String {
        qualified(self.schema, table)
    }

    fn literal(&self, text: &str) -> String {
        core::literal(text)
    }

    fn check_name(&self, name: &str, of: NameOf, table: &str) -> Result<()> {
        let what = match of {
            NameOf::Table => "table",
            NameOf::Column => "column",
            NameOf::Staging => "staging table",
        };
        let problem = if name.is_empty() {
            format!("a {what} name is empty")
        } else if name.contains('\0') {
            format!("{what} `{name}` contains a NUL character")
        } else if name.len() > MAX_IDENT {
            format!(
                "{what} name `{name}` is longer than PostgreSQL's {MAX_IDENT} bytes; rename it \
                 (a `destination` for the stream, or a transform)"
            )
        } else {
            return Ok(());
        };
        Err(mismatch(problem, table))
    }

    fn column_type(&self, ty: FerryType, _key: KeyPart) -> String {
        types::ddl_type(ty)
    }

    fn key_constraint(&self, table: &str) -> Option<String> {
        Some(pkey_name(table))
    }

    fn takes(&self, column: &PgType, ty: FerryType) -> bool {
        types::encoder(ty, column).is_some()
    }

    fn describe(&self, column: &PgType) -> String {
        format!("`{}`", column.sql)
    }

    fn unique_index_sql(&self, table: &str, columns: &str) -> String {
        format!(
            "CREATE UNIQUE INDEX ON {} ({columns})",
            self.qualified(table)
        )
    }

    fn staging(&self, table: &str, run_id: &str) -> Staging {
        // `open` is repeated on a lost connection: it may find its own staging table
        let own_is_leftover = true;
        Staging {
            own_is_leftover,
            ..Staging::by_run_id(table, run_id, Some(MAX_IDENT))
        }
    }
}

impl Driver for PgDdl<'_> {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.pg(self.s)
    }

    async fn execute_count(&mut self, sql: &str) -> Result<u64> {
        self.client.execute(sql, &[]).await.pg(self.s)
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<String>> {
        let row = self.client.query_opt(sql, &[]).await.pg(self.s)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn table(&mut self, name: &str) -> Result<Option<Table<PgType>>> {
        let Some(rel) = core::find_relation(self.client, self.schema, name, self.s).await? else {
            return Ok(None);
        };
        let kind = match rel.kind {
            RelKind::Table | RelKind::Partitioned => {
                let columns = rel.columns.into_iter().map(|c| Existing {
                    name: c.name,
                    required: c.not_null && !c.has_default,
                    generated: false,
                    ty: c.ty,
                });
                let columns = columns.collect();
                return Ok(Some(Table {
                    name: rel.name,
                    columns,
                }));
            }
            RelKind::View => "view",
            RelKind::MaterializedView => "materialized view",
            RelKind::Foreign => "foreign table",
        };
        let m = format!(
            "`{}` is a {kind}, not a table; write to another destination name",
            rel.name
        );
        Err(mismatch(m, &rel.name))
    }

    async fn tables_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        core::tables_with_prefix(self.client, self.schema, prefix, self.s).await
    }

    async fn has_unique_key(&mut self, table: &str, key: &[String]) -> Result<bool> {
        core::has_unique_key(self.client, self.schema, table, key, self.s).await
    }
}

/// `name_pkey`, cut to PostgreSQL's limit on a character boundary.
fn pkey_name(table: &str) -> String {
    let mut base = table.to_string();
    while base.len() + 5 > MAX_IDENT {
        base.pop();
    }
    format!("{base}_pkey")
}

/// Connects, creates or fits the table (one transaction), and prepares the statements;
/// for history, the history table and the staging table its rows are copied into, and
/// the statements that make the versions from it. Safe to repeat as a whole.
async fn open_target(
    inner: &Inner,
    req: &WriteRequest,
) -> Result<(Client, Target, history::Opened)> {
    let s = &inner.pg.settings;
    let schema_name = &inner.schema;
    let client = inner.pg.connect().await?;
    begin_locked(&client, s, schema_name, &req.stream).await?;
    let has_schema = client
        .query_opt(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[schema_name],
        )
        .await
        .pg(s)?
        .is_some();
    if !has_schema {
        let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema_name));
        client.batch_execute(&create).await.pg(s)?;
    }
    let mut ddl = PgDdl {
        client: &client,
        schema: schema_name,
        s,
    };
    let (req, prep, history) = history::open(&mut ddl, req).await?;
    let req = &req;
    client.batch_execute("COMMIT").await.pg(s)?;

    let (mut types, mut columns, mut encs) = (Vec::new(), Vec::new(), Vec::new());
    let (key, write_to) = (prep.table_key(req), qualified(schema_name, prep.write_to()));
    for (f, c) in req.schema.fields().iter().zip(prep.columns) {
        let ty = FerryType::of(f).expect("checked");
        // an existing column's type, else the one Ferry created the column with
        let pg = c.existing.unwrap_or_else(|| types::created_type(ty));
        encs.push(types::encoder(ty, &pg).expect("checked when fitted"));
        types.push(ty);
        columns.push((c.name, pg));
    }
    let mut merge_sql = None;
    let write_to = match req.mode {
        WriteMode::Upsert => {
            // the temporary table has the destination's column types, so the same encoders fit
            let typed: Vec<(String, String)> = columns
                .iter()
                .map(|(c, pg)| (c.clone(), pg.sql.clone()))
                .collect();
            let json: Vec<&String> = columns
                .iter()
                .filter(|(_, pg)| pg.kind == PgKind::Json)
                .map(|(c, _)| c)
                .collect();
            let [create, merge] = temp_upsert(&ddl, &prep.table, UPSERT_TABLE, &typed, &key, &json);
            client.batch_execute(&create).await.pg(s)?;
            merge_sql = Some(merge);
            format!("pg_temp.{}", quote(UPSERT_TABLE))
        }
        _ => write_to,
    };
    let columns: Vec<String> = columns.into_iter().map(|(c, _)| c).collect();
    let copy_sql = format!(
        "COPY {write_to} ({}) FROM STDIN (FORMAT binary)",
        column_list(&ddl, &columns)
    );
    let target = Target {
        table: prep.table.clone(),
        staging: prep.staging.clone(),
        mode: req.mode,
        key: key.clone(),
        columns,
        types,
        encs,
        copy_sql,
        merge_sql,
    };
    Ok((client, target, history))
}

// ----------------------------------------------------------------------------------------
// Writing

/// Moves a stream's rows through its own connection.
struct PgLoad {
    inner: Arc<Inner>,
    client: Option<Client>,
    target: Target,
    copy: Option<Pin<Box<CopyInSink<Bytes>>>>,
    in_tx: bool,
    /// `COMMIT` was sent and its answer not yet received.
    committing: bool,
    /// A failure left the transaction unusable: the rows since the last flush are gone.
    broken: bool,
    /// The connection was lost during `COMMIT`: whether it committed is unknown.
    outcome_unknown: bool,
    buf: BytesMut,
}

impl PgLoad {
    fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::internal("the writer's connection is gone"))
    }

    fn lost(&self) -> Error {
        Error::new(
            ErrorKind::Temporary,
            "an earlier failure on this stream discarded the rows written since the last flush",
        )
    }

    /// Marks the writer unusable after `e` and says what it means for the unflushed rows.
    fn fail(&mut self, e: Error) -> Error {
        self.broken = true;
        // dropping an unfinished COPY makes the driver send CopyFail
        self.copy = None;
        if self.committing {
            // lost (or timed out) between sending COMMIT and hearing back
            self.outcome_unknown = true;
        }
        if !is_transient(&e) {
            return e;
        }
        let what = if self.outcome_unknown {
            "it is unknown whether the rows since the last flush were committed"
        } else {
            "the rows written since the last flush were not committed"
        };
        if e.message().contains(what) {
            return e;
        }
        let message = format!("{}; {what}", e.message());
        core::with_message(e, message)
    }

    /// Waits at most `read_timeout` for `f` of this writer (a COPY write, a commit).
    async fn bounded<T>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let wait = self.inner.pg.settings.read_timeout;
        match tokio::time::timeout(wait, f(self)).await {
            Ok(r) => r,
            Err(_) => {
                // the connection is taken as hung: nothing more is sent on it
                self.client = None;
                Err(core::timed_out(&self.inner.pg.settings, what))
            }
        }
    }

    async fn start_copy(&mut self) -> Result<()> {
        let s = self.inner.pg.settings.clone();
        if !self.in_tx {
            self.client()?
                .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                .await
                .pg(&s)?;
            self.in_tx = true;
        }
        let copy = self
            .client()?
            .copy_in::<_, Bytes>(self.target.copy_sql.as_str())
            .await
            .pg(&s)?;
        self.copy = Some(Box::pin(copy));
        types::put_copy_header(&mut self.buf);
        Ok(())
    }

    async fn send_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        let s = self.inner.pg.settings.clone();
        let copy = self
            .copy
            .as_mut()
            .ok_or_else(|| Error::internal("no COPY in progress"))?;
        copy.send(chunk).await.pg(&s)
    }

    /// Encodes `batch` into the open COPY (started if needed); `before` rows came first.
    async fn write_inner(&mut self, batch: &RecordBatch, before: u64) -> Result<()> {
        if self.copy.is_none() {
            self.start_copy().await?;
        }
        let enc = BatchEncoder::new(batch, &self.target.types, &self.target.encs);
        for row in 0..batch.num_rows() {
            if let Err(bad) = enc.row(row, &mut self.buf) {
                let column = &self.target.columns[bad.column];
                return Err(Error::data(format!("column `{column}`: {}", bad.message))
                    .with("column", column)
                    .with("row", before + row as u64 + 1));
            }
            if self.buf.len() >= CHUNK {
                self.send_buf().await?;
            }
        }
        self.send_buf().await
    }

    /// Ends the COPY and commits (merging first for upsert).
    async fn commit(&mut self) -> Result<()> {
        let s = self.inner.pg.settings.clone();
        if self.copy.is_some() {
            types::put_copy_trailer(&mut self.buf);
            self.send_buf().await?;
            let mut copy = self.copy.take().expect("checked");
            copy.as_mut().finish().await.map_err(|e| {
                let e = core::map_err(e, &s);
                if e.context_value("sqlstate") == Some("23505")
                    && self.target.mode == WriteMode::Append
                {
                    let m = duplicate_key(e.message());
                    core::with_message(e, m)
                } else {
                    e
                }
            })?;
        }
        if !self.in_tx {
            return Ok(());
        }
        if let Some(merge) = self.target.merge_sql.clone() {
            let client = self.client()?;
            client.batch_execute("SAVEPOINT ferry_merge").await.pg(&s)?;
            let mut delay = Duration::from_millis(100);
            let mut attempt = 1;
            loop {
                match client.execute(merge.as_str(), &[]).await {
                    Ok(_) => break,
                    Err(e) => {
                        let e = core::map_err(e, &s);
                        let conflict =
                            matches!(e.context_value("sqlstate"), Some("40001") | Some("40P01"));
                        if !conflict || attempt >= 4 {
                            return Err(e);
                        }
                        // the copied rows stay: only the merge is repeated
                        client
                            .batch_execute("ROLLBACK TO SAVEPOINT ferry_merge")
                            .await
                            .pg(&s)?;
                        tracing::warn!(
                            "PostgreSQL: upsert into `{}` hit {}; retrying",
                            self.target.table,
                            e.message()
                        );
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                }
            }
        }
        self.committing = true;
        self.client()?.batch_execute("COMMIT").await.map_err(|e| {
            let e = core::map_err(e, &s);
            if is_transient(&e) {
                let m = format!(
                    "{}; it is unknown whether the rows since the last flush were committed",
                    e.message()
                );
                core::with_message(e, m)
            } else {
                e
            }
        })?;
        self.committing = false;
        self.in_tx = false;
        Ok(())
    }

    /// Swaps the staging table in, in one transaction; repeated on a new connection if
    /// the connection is lost (a staging table that is gone by then was swapped).
    async fn swap(&mut self) -> Result<()> {
        let (s, staging) = (
            &self.inner.pg.settings.clone(),
            &self.target.staging.clone().expect("overwrite"),
        );
        let (pg, schema, t) = (&self.inner.pg, &self.inner.schema, &self.target);
        let (first, attempts) = (self.client.as_ref(), &AtomicU32::new(0));
        retry(move || async move {
            let (attempt, mut fresh) = (attempts.fetch_add(1, Ordering::Relaxed) + 1, None);
            let client = match (attempt, first) {
                (1, Some(c)) => c,
                (1, None) => return Err(Error::new(ErrorKind::Temporary, "no connection")),
                _ => fresh.insert(pg.connect().await?),
            };
            let once = swap_once(client, schema, t, staging, attempt > 1, s);
            within(s, "swapping the staging table in", once).await
        })
        .await
    }
}

/// Begins a transaction holding the lock of `schema.table`: one open or swap at a time
/// per table, so two streams creating or swapping the same table do not race.
async fn begin_locked(client: &Client, s: &ConnSettings, schema: &str, table: &str) -> Result<()> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .pg(s)?;
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("ferry:{schema}.{table}")],
        )
        .await
        .pg(s)?;
    Ok(())
}

async fn swap_once(
    client: &Client,
    schema_name: &str,
    t: &Target,
    staging: &str,
    retried: bool,
    s: &ConnSettings,
) -> Result<()> {
    begin_locked(client, s, schema_name, &t.table).await?;
    let staged = client
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema_name, &staging],
        )
        .await
        .pg(s)?
        .is_some();
    if !staged {
        let _ = client.batch_execute("ROLLBACK").await;
        if retried {
            // the first attempt committed before its connection was lost
            return Ok(());
        }
        return Err(Error::internal(format!(
            "the staging table `{staging}` is gone; was it dropped by hand?"
        )));
    }
    let target = qualified(schema_name, &t.table);
    let staged_q = qualified(schema_name, staging);
    client.batch_execute("SAVEPOINT ferry_swap").await.pg(s)?;
    let renamed = client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {target}; ALTER TABLE {staged_q} RENAME TO {}",
            quote(&t.table)
        ))
        .await;
    let mut swapped = true;
    if let Err(e) = renamed {
        let e = core::map_err(e, s);
        if e.context_value("sqlstate") != Some("2BP01") {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
        // views or foreign keys depend on the table: keep it, replace its rows
        swapped = false;
        client
            .batch_execute("ROLLBACK TO SAVEPOINT ferry_swap")
            .await
            .pg(s)?;
        let cols: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
        let cols = cols.join(", ");
        let replaced = client
            .batch_execute(&format!(
                "DELETE FROM {target}; INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged_q}; \
                 DROP TABLE {staged_q}"
            ))
            .await;
        if let Err(e) = replaced {
            let _ = client.batch_execute("ROLLBACK").await;
            let e = core::map_err(e, s);
            let m = format!(
                "overwrite keeps table `{}` because other objects (views, foreign keys) depend on it, \
                 and replaces its rows, which failed: {}",
                t.table,
                e.message()
            );
            return Err(core::with_message(e, m));
        }
    }
    client.batch_execute("COMMIT").await.pg(s)?;
    if swapped {
        // cosmetic: the key constraint takes the table's name (best effort)
        let _ = client
            .batch_execute(&format!(
                "ALTER TABLE {target} RENAME CONSTRAINT {} TO {}",
                quote(&pkey_name(staging)),
                quote(&pkey_name(&t.table))
            ))
            .await;
    }
    Ok(())
}

#[async_trait]
impl Load for PgLoad {
    async fn write(&mut self, batch: &RecordBatch, before: u64) -> Result<()> {
        if self.broken {
            return Err(self.lost());
        }
        let written = self
            .bounded("writing COPY data", async |w: &mut Self| {
                w.write_inner(batch, before).await
            })
            .await;
        written.map_err(|e| self.fail(e))
    }

    async fn commit(&mut self) -> Result<()> {
        if self.broken {
            return Err(self.lost());
        }
        match self.bounded(COMMITTING, Self::commit).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn finish(&mut self) -> Result<()> {
        match self.target.mode {
            WriteMode::Overwrite => self.swap().await,
            _ => Ok(()),
        }
    }

    async fn apply(&mut self, statements: &[String]) -> Result<Vec<u64>> {
        if self.broken {
            return Err(self.lost());
        }
        let inner = self.inner.clone();
        let s = &inner.pg.settings;
        let client = self.client()?;
        let mut ddl = PgDdl {
            client,
            schema: &inner.schema,
            s,
        };
        let what = "deleting the rows the source no longer holds, or making versions";
        let deleted = within(s, what, async {
            client.batch_execute("BEGIN").await.pg(s)?;
            let n = missing::apply(&mut ddl, statements).await?;
            client.batch_execute("COMMIT").await.pg(s)?;
            Ok::<_, Error>(n)
        })
        .await;
        if deleted.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        deleted
    }

    async fn abort(&mut self) -> Result<()> {
        // an unfinished COPY is cancelled (CopyFail) when dropped
        self.copy = None;
        let s = self.inner.pg.settings.clone();
        if let (true, Some(c)) = (self.in_tx, &self.client) {
            let rollback = tokio::time::timeout(s.read_timeout, c.batch_execute("ROLLBACK"));
            if rollback.await.is_err() {
                // hung: the server rolls back when the connection ends
                self.client = None;
            }
        }
        if let Some(staging) = &self.target.staging {
            let drop_sql = format!(
                "DROP TABLE IF EXISTS {}",
                qualified(&self.inner.schema, staging)
            );
            let on_this = match &self.client {
                Some(c) if !c.is_closed() => {
                    within(&s, "dropping the staging table", c.batch_execute(&drop_sql)).await
                }
                _ => Err(Error::new(ErrorKind::Temporary, "no connection")),
            };
            if on_this.is_err() {
                let pg = &self.inner.pg;
                retry(|| async {
                    let c = pg.connect().await?;
                    within(&s, "dropping the staging table", c.batch_execute(&drop_sql)).await
                })
                .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_constraint_names_fit() {
        assert_eq!(pkey_name("t"), "t_pkey");
        assert!(pkey_name(&"x".repeat(63)).len() <= MAX_IDENT);
    }
}
