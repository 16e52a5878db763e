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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Durability, Error, ErrorKind, FerryType, Output, Result, ResultExt, Sink,
    SinkCapabilities, StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use crate::config::PostgresSinkConfig;
use crate::core::{
    self, is_transient, qualified, quote, retry, within, ConnSettings, Pg, PgResultExt, RelKind,
    Relation, MAX_IDENT,
};
use crate::types::{self, BatchEncoder, Enc, PgKind};

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
        let (client, target) = retry(|| within(s, what, open_target(&inner, &request)))
            .await
            .ctx("table", &request.stream)?;
        Ok(Box::new(PgWriter {
            inner: self.inner.clone(),
            client: Some(client),
            target,
            copy: None,
            in_tx: false,
            committing: false,
            broken: false,
            outcome_unknown: false,
            rows: 0,
            buf: BytesMut::with_capacity(CHUNK + 64 * 1024),
        }))
    }

    // abort cancels the COPY, rolls the open transaction back and drops the staging table
    fn rolls_back(&self) -> bool {
        true
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert],
        }
    }

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

    async fn owner(&self) -> Result<Option<String>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "reading the destination's owner tag", async {
            let s = &self.inner.pg.settings;
            let client = self.inner.pg.connect_retrying().await?;
            let table = qualified(&self.inner.schema, OWNER_TABLE);
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await
                .pg(s)?
                .get(0);
            if !exists {
                return Ok(None);
            }
            let row = client
                .query_opt(&format!("SELECT client FROM {table} LIMIT 1"), &[])
                .await
                .pg(s)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Writes the `_ferry_owner` tag table in the destination schema if it holds no
    /// client yet (insert-if-absent, under a transaction-scoped advisory lock, so two syncs
    /// binding at once cannot both win), and answers the client it holds then. A
    /// destination where it cannot be written stays unbound, with a warning: binding must
    /// not block a sync.
    async fn bind_owner(&self, owner: &str) -> Result<Option<String>> {
        let settings = self.inner.pg.settings.clone();
        within::<_, Error, _>(&settings, "writing the destination's owner tag", async {
            let s = &self.inner.pg.settings;
            let client = self.inner.pg.connect_retrying().await?;
            let table = qualified(&self.inner.schema, OWNER_TABLE);
            let sql = format!(
                "SELECT pg_advisory_xact_lock(hashtext({lock})); \
                 CREATE TABLE IF NOT EXISTS {table} (client text NOT NULL); \
                 INSERT INTO {table} (client) SELECT {me} WHERE NOT EXISTS (SELECT 1 FROM {table})",
                lock = core::literal(&table),
                me = core::literal(owner)
            );
            let bound = async {
                client
                    .batch_execute(&format!("BEGIN; {sql}; COMMIT"))
                    .await
                    .pg(s)?;
                let row = client
                    .query_one(&format!("SELECT client FROM {table} LIMIT 1"), &[])
                    .await
                    .pg(s)?;
                Ok::<String, Error>(row.get(0))
            }
            .await;
            match bound {
                Ok(c) => Ok(Some(c)),
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    tracing::warn!("the destination could not be tagged with its client: {e}");
                    Ok(None)
                }
            }
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

// ----------------------------------------------------------------------------------------
// Opening a stream

/// The one-row table naming the client a destination schema belongs to.
const OWNER_TABLE: &str = "_ferry_owner";

/// What a writer writes to, fixed at open.
struct Target {
    /// The destination table's name (an existing table's real name).
    table: String,
    /// The staging table of an overwrite.
    staging: Option<String>,
    mode: WriteMode,
    /// Columns as the destination names them, in the stream's order.
    columns: Vec<String>,
    types: Vec<FerryType>,
    encs: Vec<Enc>,
    copy_sql: String,
    /// `INSERT … ON CONFLICT` from the temporary table (upsert).
    merge_sql: Option<String>,
    location: String,
}

fn mismatch(message: String, table: &str) -> Error {
    Error::new(ErrorKind::SchemaMismatch, message).with("table", table)
}

fn check_name(name: &str, what: &str, table: &str) -> Result<()> {
    if name.is_empty() {
        return Err(mismatch(format!("a {what} name is empty"), table));
    }
    if name.contains('\0') {
        return Err(mismatch(
            format!("{what} `{name}` contains a NUL character"),
            table,
        ));
    }
    if name.len() > MAX_IDENT {
        return Err(mismatch(
            format!(
                "{what} name `{name}` is longer than PostgreSQL's {MAX_IDENT} bytes; rename it \
                 (a `destination` for the stream, or a transform)"
            ),
            table,
        ));
    }
    Ok(())
}

/// `name_pkey`, cut to PostgreSQL's limit on a character boundary.
fn pkey_name(table: &str) -> String {
    let mut base = table.to_string();
    while base.len() + 5 > MAX_IDENT {
        base.pop();
    }
    format!("{base}_pkey")
}

/// Connects, creates or fits the table (one transaction), and prepares the statements.
/// Safe to repeat as a whole.
async fn open_target(inner: &Inner, req: &WriteRequest) -> Result<(Client, Target)> {
    let s = &inner.pg.settings;
    let schema_name = &inner.schema;
    let stream = req.stream.as_str();
    check_name(stream, "table", stream)?;
    let schema = &req.schema;
    ferry_core::types::check_schema(schema)?;
    if schema.fields().is_empty() {
        return Err(mismatch(
            format!("stream `{stream}` has no columns to write"),
            stream,
        ));
    }
    for (i, f) in schema.fields().iter().enumerate() {
        check_name(f.name(), "column", stream)?;
        if schema.fields()[..i].iter().any(|o| o.name() == f.name()) {
            return Err(mismatch(
                format!("the stream has two columns named `{}`", f.name()),
                stream,
            ));
        }
    }
    let key = req.primary_key();
    for k in &key {
        if schema.field_with_name(k).is_err() {
            return Err(mismatch(
                format!("primary key column `{k}` is not in the stream's schema"),
                stream,
            ));
        }
    }
    let types: Vec<FerryType> = schema
        .fields()
        .iter()
        .map(|f| FerryType::of(f).expect("checked"))
        .collect();

    let client = inner.pg.connect().await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .pg(s)?;
    // one open at a time per table: two streams creating the same table do not race
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("ferry:{schema_name}.{stream}")],
        )
        .await
        .pg(s)?;
    let has_schema = client
        .query_opt(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[schema_name],
        )
        .await
        .pg(s)?
        .is_some();
    if !has_schema {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote(schema_name)
            ))
            .await
            .pg(s)?;
    }
    let existing = core::find_relation(&client, schema_name, stream, s).await?;
    let table = existing
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| stream.to_string());
    let mut staging = None;
    let (columns, encs) = match req.mode {
        WriteMode::Overwrite => {
            // staging tables of crashed runs of this table go first
            let prefix = core::staging_prefix(&table);
            for old in core::tables_with_prefix(&client, schema_name, &prefix, s).await? {
                if core::looks_like_run_id(&old[prefix.len()..]) {
                    client
                        .batch_execute(&format!(
                            "DROP TABLE IF EXISTS {}",
                            qualified(schema_name, &old)
                        ))
                        .await
                        .pg(s)?;
                }
            }
            let name = format!("{prefix}{}", req.run_id);
            check_name(&name, "staging table", stream)?;
            create_table(&client, schema_name, &name, schema, &key, s).await?;
            staging = Some(name);
            created_columns(schema, &types)
        }
        WriteMode::Append | WriteMode::Upsert => {
            let fitted = match &existing {
                None => {
                    create_table(&client, schema_name, &table, schema, &key, s).await?;
                    created_columns(schema, &types)
                }
                Some(rel) => evolve(&client, rel, schema, &types, s).await?,
            };
            if req.mode == WriteMode::Upsert {
                let real_key: Vec<String> = key
                    .iter()
                    .map(|k| {
                        let i = schema.index_of(k).expect("checked");
                        fitted.0[i].clone()
                    })
                    .collect();
                if !core::has_unique_key(&client, schema_name, &table, &real_key, s).await? {
                    let cols: Vec<String> = real_key.iter().map(|k| quote(k)).collect();
                    return Err(mismatch(
                        format!(
                            "upsert needs a PRIMARY KEY or UNIQUE index on ({}) of table `{table}`, which it lacks; \
                             add one (`CREATE UNIQUE INDEX ON {} ({})`) or write with mode = \"append\"",
                            real_key.join(", "),
                            qualified(schema_name, &table),
                            cols.join(", ")
                        ),
                        &table,
                    ));
                }
            }
            fitted
        }
    };
    client.batch_execute("COMMIT").await.pg(s)?;

    let col_list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let col_list = col_list.join(", ");
    let mut merge_sql = None;
    let write_to = match req.mode {
        WriteMode::Overwrite => qualified(schema_name, staging.as_deref().expect("set above")),
        WriteMode::Append => qualified(schema_name, &table),
        WriteMode::Upsert => {
            // the temporary table has the destination's column types, so the same encoders fit
            let rel = core::find_relation(&client, schema_name, &table, s)
                .await?
                .ok_or_else(|| Error::internal("the table vanished after it was opened"))?;
            let defs: Vec<String> = columns
                .iter()
                .map(|c| {
                    let ty = rel
                        .columns
                        .iter()
                        .find(|x| x.name == *c)
                        .map(|x| x.ty.sql.clone())
                        .unwrap_or_else(|| "text".into());
                    format!("{} {ty}", quote(c))
                })
                .collect();
            client
                .batch_execute(&format!(
                    "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DELETE ROWS",
                    quote(UPSERT_TABLE),
                    defs.join(", ")
                ))
                .await
                .pg(s)?;
            let real_key: Vec<String> = key
                .iter()
                .map(|k| columns[schema.index_of(k).expect("checked")].clone())
                .collect();
            merge_sql = Some(merge_sql_for(
                schema_name,
                &table,
                &columns,
                &real_key,
                &rel,
            ));
            format!("pg_temp.{}", quote(UPSERT_TABLE))
        }
    };
    let copy_sql = format!("COPY {write_to} ({col_list}) FROM STDIN (FORMAT binary)");
    let target = Target {
        location: format!("{}#{schema_name}.{table}", s.location()),
        table,
        staging,
        mode: req.mode,
        columns,
        types,
        encs,
        copy_sql,
        merge_sql,
    };
    Ok((client, target))
}

/// Column names and encoders of a table Ferry creates from the stream's schema.
fn created_columns(schema: &SchemaRef, types: &[FerryType]) -> (Vec<String>, Vec<Enc>) {
    let names = schema.fields().iter().map(|f| f.name().clone()).collect();
    let encs = types
        .iter()
        .map(|t| types::encoder(*t, &types::created_type(*t)).expect("a created column fits"))
        .collect();
    (names, encs)
}

async fn create_table(
    client: &Client,
    schema_name: &str,
    table: &str,
    schema: &SchemaRef,
    key: &[String],
    s: &ConnSettings,
) -> Result<()> {
    let mut defs: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = FerryType::of(f).expect("checked");
            let not_null = !f.is_nullable() || key.contains(f.name());
            format!(
                "{} {}{}",
                quote(f.name()),
                types::ddl_type(ty),
                if not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    if !key.is_empty() {
        let cols: Vec<String> = key.iter().map(|k| quote(k)).collect();
        defs.push(format!(
            "CONSTRAINT {} PRIMARY KEY ({})",
            quote(&pkey_name(table)),
            cols.join(", ")
        ));
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE {} ({})",
            qualified(schema_name, table),
            defs.join(", ")
        ))
        .await
        .pg(s)
}

/// Fits an existing table to the stream: each stream column is matched to a table
/// column (same name, else the one name equal ignoring case) whose type takes its
/// values; a missing nullable column is added. Anything else is a `SchemaMismatch`
/// naming the table and column.
async fn evolve(
    client: &Client,
    rel: &Relation,
    schema: &SchemaRef,
    types: &[FerryType],
    s: &ConnSettings,
) -> Result<(Vec<String>, Vec<Enc>)> {
    let table = &rel.name;
    if !matches!(rel.kind, RelKind::Table | RelKind::Partitioned) {
        return Err(mismatch(
            format!(
                "`{table}` is a {}, not a table; write to another destination name",
                match rel.kind {
                    RelKind::View => "view",
                    RelKind::MaterializedView => "materialized view",
                    _ => "foreign table",
                }
            ),
            table,
        ));
    }
    let mut names = Vec::new();
    let mut encs = Vec::new();
    for (f, ty) in schema.fields().iter().zip(types) {
        let found = rel
            .columns
            .iter()
            .find(|c| c.name == *f.name())
            .or_else(|| {
                let mut same = rel
                    .columns
                    .iter()
                    .filter(|c| c.name.eq_ignore_ascii_case(f.name()));
                match (same.next(), same.next()) {
                    (Some(c), None) => Some(c),
                    _ => None,
                }
            });
        match found {
            Some(c) => {
                let enc = types::encoder(*ty, &c.ty).ok_or_else(|| {
                    mismatch(
                        format!(
                            "column `{}` of table `{table}` is `{}`, which cannot hold the stream's {ty} values; \
                             change the column, or write with mode = \"overwrite\" to replace the table",
                            c.name, c.ty.sql
                        ),
                        table,
                    )
                    .with("column", &c.name)
                })?;
                names.push(c.name.clone());
                encs.push(enc);
            }
            None if f.is_nullable() => {
                client
                    .batch_execute(&format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        qualified(&rel.schema, table),
                        quote(f.name()),
                        types::ddl_type(*ty)
                    ))
                    .await
                    .pg(s)?;
                names.push(f.name().clone());
                encs.push(types::encoder(*ty, &types::created_type(*ty)).expect("fits"));
            }
            None => {
                return Err(mismatch(
                    format!(
                        "column `{}` is not in table `{table}`, and the stream says it is never NULL, so it cannot be \
                         added to the rows already there; add it by hand, or write with mode = \"overwrite\"",
                        f.name()
                    ),
                    table,
                )
                .with("column", f.name()));
            }
        }
    }
    for c in &rel.columns {
        if c.not_null && !c.has_default && !names.contains(&c.name) {
            return Err(mismatch(
                format!(
                    "table `{table}` requires column `{}` (NOT NULL, no default), which the stream does not send",
                    c.name
                ),
                table,
            )
            .with("column", &c.name));
        }
    }
    Ok((names, encs))
}

/// `INSERT … SELECT DISTINCT ON (key) … ON CONFLICT (key) DO UPDATE … WHERE changed`:
/// the last copied row of each key wins (`ctid` is the copy order in the temporary
/// table, which every commit empties), and rows equal to the stored ones are left alone.
fn merge_sql_for(
    schema_name: &str,
    table: &str,
    columns: &[String],
    key: &[String],
    rel: &Relation,
) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let keys: Vec<String> = key.iter().map(|k| quote(k)).collect();
    let rest: Vec<&String> = columns.iter().filter(|c| !key.contains(c)).collect();
    let mut sql = format!(
        "INSERT INTO {} AS t ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM pg_temp.{} \
         ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) DO ",
        qualified(schema_name, table),
        quote(UPSERT_TABLE),
        cols = cols.join(", "),
        keys = keys.join(", "),
    );
    if rest.is_empty() {
        sql.push_str("NOTHING");
        return sql;
    }
    let sets: Vec<String> = rest
        .iter()
        .map(|c| format!("{0} = EXCLUDED.{0}", quote(c)))
        .collect();
    // `json` has no equality operator: compare its text
    let cmp = |prefix: &str, c: &str| {
        let is_json = rel
            .columns
            .iter()
            .any(|x| x.name == c && x.ty.kind == PgKind::Json);
        if is_json {
            format!("{prefix}.{}::text", quote(c))
        } else {
            format!("{prefix}.{}", quote(c))
        }
    };
    let old: Vec<String> = rest.iter().map(|c| cmp("t", c)).collect();
    let new: Vec<String> = rest.iter().map(|c| cmp("EXCLUDED", c)).collect();
    sql.push_str(&format!(
        "UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
        sets.join(", "),
        old.join(", "),
        new.join(", ")
    ));
    sql
}

// ----------------------------------------------------------------------------------------
// Writing

struct PgWriter {
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
    rows: u64,
    buf: BytesMut,
}

impl PgWriter {
    fn settings(&self) -> &ConnSettings {
        &self.inner.pg.settings
    }

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
        .with("table", &self.target.table)
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
        let e = if is_transient(&e) {
            let what = if self.outcome_unknown {
                "it is unknown whether the rows since the last flush were committed"
            } else {
                "the rows written since the last flush were not committed"
            };
            if e.message().contains(what) {
                e
            } else {
                let message = format!("{}; {what}", e.message());
                core::with_message(e, message)
            }
        } else {
            e
        };
        e.with("table", &self.target.table)
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

    async fn write_inner(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let fits = schema.fields().len() == self.target.types.len()
            && schema
                .fields()
                .iter()
                .zip(&self.target.types)
                .all(|(f, ty)| FerryType::of(f) == Some(*ty));
        if !fits {
            return Err(mismatch(
                "a batch does not have the schema the stream was opened with".into(),
                &self.target.table,
            ));
        }
        if self.copy.is_none() {
            self.start_copy().await?;
        }
        let enc = BatchEncoder::new(batch, &self.target.types, &self.target.encs);
        for row in 0..batch.num_rows() {
            if let Err(bad) = enc.row(row, &mut self.buf) {
                let column = &self.target.columns[bad.column];
                return Err(Error::data(format!("column `{column}`: {}", bad.message))
                    .with("column", column)
                    .with("row", self.rows + row as u64 + 1));
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
                    let m = format!(
                        "{}; write with mode = \"upsert\" to update rows whose key is already there",
                        e.message()
                    );
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
        let s = self.settings().clone();
        let staging = self.target.staging.clone().expect("overwrite");
        let mut attempt = 1;
        let mut delay = Duration::from_millis(250);
        loop {
            let result = match self.client.as_ref() {
                Some(c) => {
                    let once = swap_once(
                        c,
                        &self.inner.schema,
                        &self.target,
                        &staging,
                        attempt > 1,
                        &s,
                    );
                    within(&s, "swapping the staging table in", once).await
                }
                None => Err(Error::new(ErrorKind::Temporary, "no connection")),
            };
            match result {
                Err(e) if is_transient(&e) && attempt < 4 => {
                    tracing::warn!(
                        "PostgreSQL: swapping in `{}` failed: {}; retrying",
                        self.target.table,
                        e.message()
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                    self.client = self.inner.pg.connect().await.ok();
                }
                other => return other,
            }
        }
    }
}

async fn swap_once(
    client: &Client,
    schema_name: &str,
    t: &Target,
    staging: &str,
    retried: bool,
    s: &ConnSettings,
) -> Result<()> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .pg(s)?;
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("ferry:{schema_name}.{}", t.table)],
        )
        .await
        .pg(s)?;
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
impl StreamWriter for PgWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.broken {
            return Err(self.lost());
        }
        let written = self
            .bounded("writing COPY data", async |w: &mut Self| {
                w.write_inner(&batch).await
            })
            .await;
        match written {
            Ok(()) => {
                self.rows += batch.num_rows() as u64;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn flush(&mut self) -> Result<Durability> {
        if self.broken {
            return Err(self.lost());
        }
        if let Err(e) = self.bounded(COMMITTING, Self::commit).await {
            return Err(self.fail(e));
        }
        Ok(match self.target.mode {
            WriteMode::Overwrite => Durability::AtClose,
            _ => Durability::Durable,
        })
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        if self.broken {
            return Err(self.lost());
        }
        if let Err(e) = self.bounded(COMMITTING, Self::commit).await {
            return Err(self.fail(e));
        }
        if self.target.mode == WriteMode::Overwrite {
            self.swap().await.ctx("table", &self.target.table)?;
        }
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "table".into(),
                location: self.target.location.clone(),
                rows: self.rows,
                ..Default::default()
            }],
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        // an unfinished COPY is cancelled (CopyFail) when dropped
        self.copy = None;
        let s = self.settings().clone();
        if self.in_tx {
            if let Some(c) = &self.client {
                let rollback = c.batch_execute("ROLLBACK");
                if tokio::time::timeout(s.read_timeout, rollback)
                    .await
                    .is_err()
                {
                    // hung: the server rolls back when the connection ends
                    self.client = None;
                }
            }
        }
        if let Some(staging) = self.target.staging.clone() {
            let drop_sql = format!(
                "DROP TABLE IF EXISTS {}",
                qualified(&self.inner.schema, &staging)
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
                .await
                .ctx("table", &self.target.table)?;
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

    #[test]
    fn merge_statement() {
        let rel = Relation {
            schema: "s".into(),
            name: "t".into(),
            kind: RelKind::Table,
            columns: vec![],
            reltuples: -1.0,
            relpages: 0,
        };
        let sql = merge_sql_for(
            "s",
            "t",
            &["id".into(), "name".into()],
            &["id".into()],
            &rel,
        );
        assert!(sql.contains("DISTINCT ON (\"id\")"), "{sql}");
        assert!(
            sql.contains("ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\""),
            "{sql}"
        );
        assert!(sql.contains("IS DISTINCT FROM"), "{sql}");
        let sql = merge_sql_for("s", "t", &["id".into()], &["id".into()], &rel);
        assert!(sql.ends_with("DO NOTHING"), "{sql}");
    }
}
