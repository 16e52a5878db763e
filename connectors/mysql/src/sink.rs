//! The `mysql` destination: append, upsert and staged overwrite into InnoDB tables.
//!
//! Each writer (one per stream) has its own connection and keeps one transaction open
//! between flushes; `flush` commits it. Each batch is atomic inside it (a savepoint), and
//! goes in as multi-row `INSERT` statements of escaped literals, a few thousand rows and
//! at most a few MiB each (always within the server's `max_allowed_packet`).
//!
//! MySQL commits implicitly before any DDL, so every `CREATE`, `ALTER`, `RENAME` and
//! `DROP` happens in `open` (before rows) or in `close` (after the last commit).
//!
//! Overwrite loads a staging table and swaps it in at `close` with one
//! `RENAME TABLE t TO old, staging TO t` (atomic: readers see the old table or the new
//! one, never neither), then drops the old table.

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Durability, Error, ErrorKind, FerryType, Output, Result, ResultExt, Sink,
    SinkCapabilities, StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::MysqlSinkConfig;
use crate::core::{self, quote, ConnSettings, Kind, MyResultExt, Relation, Server};
use crate::types::{self, Literal};

/// Rows per `INSERT` statement, at most.
const ROWS_PER_STATEMENT: usize = 4096;
/// Bytes per `INSERT` statement, at most (less when `max_allowed_packet` is smaller).
const BYTES_PER_STATEMENT: usize = 4 << 20;
/// How long DDL (the overwrite swap, `ALTER TABLE`) waits for other sessions' locks.
const LOCK_WAIT_TIMEOUT_SECS: u32 = 120;
/// The session's SQL mode: errors instead of silent truncation, backslash escapes in
/// string literals (the literals rely on them), an explicit 0 stays 0 in an
/// `AUTO_INCREMENT` column.
const SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO";

/// Writes streams into tables of a MySQL or MariaDB database.
#[derive(Clone)]
pub struct MysqlSink {
    settings: Arc<ConnSettings>,
}

impl std::fmt::Debug for MysqlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSink")
            .field("server", &self.settings.location())
            .field("user", &self.settings.user)
            .finish()
    }
}

impl MysqlSink {
    /// A sink for `cfg`. Checks the config without connecting.
    pub fn new(cfg: MysqlSinkConfig, ctx: &BuildContext) -> Result<Self> {
        Ok(Self::from_settings(cfg.validate(&ctx.base_dir)?))
    }

    /// A sink writing with `settings`.
    pub fn from_settings(settings: ConnSettings) -> Self {
        MysqlSink {
            settings: Arc::new(settings),
        }
    }

    /// The connection settings.
    pub fn settings(&self) -> &ConnSettings {
        &self.settings
    }
}

#[async_trait]
impl Sink for MysqlSink {
    async fn check(&self) -> Result<()> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
        let one: Option<i64> = conn.query_first("SELECT 1").await.my(s)?;
        if one != Some(1) {
            return Err(Error::internal("`SELECT 1` did not answer 1"));
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let s = self.settings.clone();
        let mut conn = core::connect(&s).await?;
        match open_target(&mut conn, &s, &request).await {
            Ok(target) => Ok(Box::new(MysqlWriter {
                conn: Some(conn),
                settings: s,
                target,
                rows: 0,
                in_tx: false,
                lost: false,
            })),
            Err(e) => {
                let _ = conn.disconnect().await;
                Err(e.with("table", &request.stream))
            }
        }
    }

    // abort rolls the writer's open transaction back and drops an overwrite's staging table
    fn rolls_back(&self) -> bool {
        true
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert],
        }
    }

    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
        let server = Server::of(&mut conn, s).await?;
        let rel = core::relation(&mut conn, s, server, stream).await;
        let _ = conn.disconnect().await;
        Ok(rel?
            .filter(|r| r.name == stream)
            .map(|r| with_keys(&types::table_schema(&r.columns), &r.primary_key, None)))
    }

    async fn count(&self, stream: &str) -> Result<Option<u64>> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
        let server = Server::of(&mut conn, s).await?;
        let n = match core::relation(&mut conn, s, server, stream).await? {
            Some(r) if r.name == stream => {
                let sql = format!("SELECT COUNT(*) FROM {}", qualified(s, &r.name));
                conn.query_first::<u64, _>(sql).await.my(s)?
            }
            _ => None,
        };
        let _ = conn.disconnect().await;
        Ok(n)
    }

    /// The client in the database's one-row `_ferry_owner` table, if it has one.
    async fn owner(&self) -> Result<Option<String>> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
        let tagged: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = ? AND table_name = ?",
                (&s.database, OWNER_TABLE),
            )
            .await
            .my(s)?;
        let owner = if tagged.unwrap_or(0) > 0 {
            conn.query_first::<String, _>(format!(
                "SELECT client FROM {} LIMIT 1",
                qualified(s, OWNER_TABLE)
            ))
            .await
            .my(s)?
        } else {
            None
        };
        let _ = conn.disconnect().await;
        Ok(owner)
    }

    /// Writes the `_ferry_owner` tag table in the database if it holds no client yet
    /// (insert-if-absent, under a named lock, so two syncs binding at once cannot both
    /// win), and answers the client it holds then. A database where it cannot be written
    /// stays unbound, with a warning: binding must not block a sync.
    async fn bind_owner(&self, owner: &str) -> Result<Option<String>> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
        let table = qualified(s, OWNER_TABLE);
        // one lock per database; the CREATE commits on its own (DDL), so the lock, not a
        // transaction, is what makes check-and-insert one step
        let lock = format!("ferry_owner.{}", s.database);
        let bound = async {
            let got: Option<i64> = conn
                .exec_first("SELECT COALESCE(GET_LOCK(?, 30), 0)", (lock.as_str(),))
                .await
                .my(s)?;
            if got != Some(1) {
                return Ok(Err(Error::new(
                    ErrorKind::Temporary,
                    "another sync held the destination's owner lock for 30 s: retry",
                )));
            }
            let tagged = async {
                exec(
                    &mut conn,
                    s,
                    format!("CREATE TABLE IF NOT EXISTS {table} (client VARCHAR(255) NOT NULL) ENGINE=InnoDB"),
                )
                .await?;
                conn.exec_drop(
                    format!("INSERT INTO {table} (client) SELECT ? FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM {table})"),
                    (owner,),
                )
                .await
                .my(s)?;
                conn.query_first::<String, _>(format!("SELECT client FROM {table} LIMIT 1"))
                    .await
                    .my(s)
            }
            .await;
            let _ = conn
                .exec_drop("DO RELEASE_LOCK(?)", (lock.as_str(),))
                .await;
            tagged.map(Ok)
        }
        .await;
        let _ = conn.disconnect().await;
        match bound {
            // not knowing who won must not let this sync write: an error, not "unbound"
            Ok(Err(busy)) => Err(busy),
            Ok(Ok(c)) => Ok(c),
            Err(e) => {
                tracing::warn!("the destination could not be tagged with its client: {e}");
                Ok(None)
            }
        }
    }
}

/// The table holding the client a database is bound to (tenant binding).
const OWNER_TABLE: &str = "_ferry_owner";

// ----------------------------------------------------------------------------------------
// Opening a stream

/// What a writer writes to, fixed at open.
struct Target {
    /// The destination table.
    table: String,
    /// Where rows go: the table, or the staging table of an overwrite.
    write_to: String,
    mode: WriteMode,
    run_id: String,
    /// `INSERT INTO t (cols) VALUES `.
    insert_prefix: String,
    /// ` ON DUPLICATE KEY UPDATE …` (upsert), else empty.
    insert_suffix: String,
    types: Vec<FerryType>,
    /// Bytes per statement.
    chunk_bytes: usize,
}

fn schema_error(message: String, table: &str) -> Error {
    Error::new(ErrorKind::SchemaMismatch, message).with("table", table)
}

async fn exec(conn: &mut Conn, s: &ConnSettings, sql: String) -> Result<()> {
    conn.query_drop(sql).await.my(s)
}

async fn open_target(conn: &mut Conn, s: &ConnSettings, req: &WriteRequest) -> Result<Target> {
    let table = req.stream.as_str();
    let schema = &req.schema;
    if table.is_empty() {
        return Err(Error::config("the destination table name is empty"));
    }
    if table.chars().count() > 64 {
        return Err(Error::config(format!(
            "table name `{table}` is longer than MySQL's 64 characters; set a shorter `destination` on the stream"
        )));
    }
    ferry_core::types::check_schema(schema)?;
    if schema.fields().is_empty() {
        return Err(schema_error(
            format!("stream `{table}` has no columns to write"),
            table,
        ));
    }
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    for (i, n) in names.iter().enumerate() {
        if n.chars().count() > 64 || n.is_empty() || n.ends_with(' ') {
            return Err(schema_error(
                format!("column name `{n}` cannot be a MySQL column (empty, longer than 64 characters, or ending in a space); rename it with a transform"),
                table,
            ));
        }
        if let Some(other) = names[..i]
            .iter()
            .find(|o| o.to_lowercase() == n.to_lowercase())
        {
            return Err(schema_error(
                format!("columns `{n}` and `{other}` differ only in case, which MySQL cannot tell apart"),
                table,
            ));
        }
    }
    let key = req.primary_key();
    for k in &key {
        if !names.contains(&k) {
            return Err(schema_error(
                format!("primary key column `{k}` is not in the stream's schema"),
                table,
            ));
        }
    }
    if req.mode == WriteMode::Upsert && key.is_empty() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("upsert into `{table}` needs a primary key; set `primary_key` on the stream"),
        )
        .with("table", table));
    }
    exec(
        conn,
        s,
        format!(
            "SET SESSION sql_mode = '{SQL_MODE}', lock_wait_timeout = {LOCK_WAIT_TIMEOUT_SECS}"
        ),
    )
    .await?;
    let server = Server::of(conn, s).await?;
    let collation = core::exact_collation(conn, s).await?;
    let max_packet: Option<u64> = conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .my(s)?;
    let chunk_bytes =
        (max_packet.unwrap_or(4 << 20) as usize / 2).clamp(16 << 10, BYTES_PER_STATEMENT);
    let existing = core::relation(conn, s, server, table)
        .await?
        .filter(|r| r.name == table);
    if existing.as_ref().is_some_and(|r| r.kind == Kind::View) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("`{table}` is a view; Ferry writes tables"),
        ));
    }
    let write_to = match req.mode {
        WriteMode::Overwrite => {
            let staging = core::helper_name(core::STAGING_PREFIX, table, &req.run_id);
            // staging and swapped-out tables of crashed overwrites of this table
            for prefix in [core::STAGING_PREFIX, core::OLD_PREFIX] {
                let mine = core::helper_prefix(prefix, table);
                for old in core::tables_with_prefix(conn, s, &mine).await? {
                    if old == staging {
                        return Err(Error::new(
                            ErrorKind::ConfigInvalid,
                            format!("table `{table}` is already being overwritten by another stream of this run"),
                        ));
                    }
                    exec(
                        conn,
                        s,
                        format!("DROP TABLE IF EXISTS {}", qualified(s, &old)),
                    )
                    .await?;
                }
            }
            create_table(conn, s, &staging, schema, &key, &collation).await?;
            staging
        }
        WriteMode::Append | WriteMode::Upsert => {
            match &existing {
                None => create_table(conn, s, table, schema, &key, &collation).await?,
                Some(rel) => evolve(conn, s, rel, schema, &collation).await?,
            }
            if req.mode == WriteMode::Upsert && !core::has_unique_key(conn, s, table, &key).await? {
                return Err(schema_error(
                    format!(
                        "upsert needs a PRIMARY KEY or UNIQUE index on ({}) of table `{table}`, which it lacks; \
                         add one (`ALTER TABLE {} ADD UNIQUE ({})`) or write with mode = \"append\"",
                        key.join(", "),
                        quote(table),
                        key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                    ),
                    table,
                ));
            }
            table.to_string()
        }
    };
    let types: Vec<FerryType> = schema
        .fields()
        .iter()
        .map(|f| FerryType::of(f).expect("checked"))
        .collect();
    let cols: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    let insert_prefix = format!(
        "INSERT INTO {} ({}) VALUES ",
        qualified(s, &write_to),
        cols.join(", ")
    );
    let insert_suffix = if req.mode == WriteMode::Upsert {
        let updates: Vec<String> = schema
            .fields()
            .iter()
            .filter(|f| !key.contains(f.name()))
            .map(|f| format!("{0} = VALUES({0})", quote(f.name())))
            .collect();
        if updates.is_empty() {
            // every column is in the key: a repeated row changes nothing
            format!(" ON DUPLICATE KEY UPDATE {0} = {0}", quote(&key[0]))
        } else {
            format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        }
    } else {
        String::new()
    };
    Ok(Target {
        table: table.to_string(),
        write_to,
        mode: req.mode,
        run_id: req.run_id.clone(),
        insert_prefix,
        insert_suffix,
        types,
        chunk_bytes,
    })
}

/// `` `db`.`table` ``.
fn qualified(s: &ConnSettings, table: &str) -> String {
    format!("{}.{}", quote(&s.database), quote(table))
}

async fn create_table(
    conn: &mut Conn,
    s: &ConnSettings,
    name: &str,
    schema: &SchemaRef,
    key: &[String],
    collation: &str,
) -> Result<()> {
    let mut defs: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = FerryType::of(f).expect("checked");
            let in_key = key.iter().any(|k| k == f.name());
            let null = if !f.is_nullable() || in_key {
                "NOT NULL"
            } else {
                "NULL"
            };
            format!(
                "{} {} {null}",
                quote(f.name()),
                types::declared_type(ty, in_key, collation)
            )
        })
        .collect();
    if !key.is_empty() {
        defs.push(format!(
            "PRIMARY KEY ({})",
            key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    exec(
        conn,
        s,
        format!(
            "CREATE TABLE {} ({}) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation}",
            qualified(s, name),
            defs.join(", ")
        ),
    )
    .await
}

/// Fits an existing table to the stream: missing nullable columns are added; anything
/// else that does not fit is a `SchemaMismatch` naming the table and column.
async fn evolve(
    conn: &mut Conn,
    s: &ConnSettings,
    rel: &Relation,
    schema: &SchemaRef,
    collation: &str,
) -> Result<()> {
    let table = &rel.name;
    let mut add = Vec::new();
    for f in schema.fields() {
        let ty = FerryType::of(f).expect("checked");
        match rel
            .columns
            .iter()
            .find(|c| c.name.to_lowercase() == f.name().to_lowercase())
        {
            Some(c) if c.generated => {
                return Err(schema_error(
                    format!(
                        "column `{}` of table `{table}` is generated and cannot be written; drop it from the stream",
                        c.name
                    ),
                    table,
                )
                .with("column", &c.name));
            }
            Some(c) if !types::compatible(c.ty, ty) => {
                return Err(schema_error(
                    format!(
                        "column `{}` of table `{table}` is {} (declared `{}`), but the stream sends {ty}; \
                         change the column, or write with mode = \"overwrite\" to replace the table",
                        c.name, c.ty, c.column_type
                    ),
                    table,
                )
                .with("column", &c.name));
            }
            Some(_) => {}
            None if f.is_nullable() => add.push(format!(
                "ADD COLUMN {} {} NULL",
                quote(f.name()),
                types::declared_type(ty, false, collation)
            )),
            None => {
                return Err(schema_error(
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
        let sent = schema
            .fields()
            .iter()
            .any(|f| f.name().to_lowercase() == c.name.to_lowercase());
        if !sent && !c.nullable && !c.has_default {
            return Err(schema_error(
                format!(
                    "table `{table}` requires column `{}` (NOT NULL, no default), which the stream does not send",
                    c.name
                ),
                table,
            )
            .with("column", &c.name));
        }
    }
    if !add.is_empty() {
        exec(
            conn,
            s,
            format!("ALTER TABLE {} {}", qualified(s, table), add.join(", ")),
        )
        .await?;
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Writing

struct MysqlWriter {
    /// `None` once closed or aborted.
    conn: Option<Conn>,
    settings: Arc<ConnSettings>,
    target: Target,
    rows: u64,
    /// A transaction with rows is open.
    in_tx: bool,
    /// The server rolled the open transaction back (deadlock, lost connection): the
    /// rows since the last flush are gone, so the next flush must fail.
    lost: bool,
}

impl MysqlWriter {
    fn conn(&mut self) -> Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| Error::internal("the MySQL writer was already closed"))
    }

    fn check_lost(&self) -> Result<()> {
        if self.lost {
            return Err(Error::new(
                ErrorKind::Temporary,
                "rows written since the last flush were lost: the server rolled the transaction back",
            )
            .with("table", &self.target.table));
        }
        Ok(())
    }

    /// Sends the batch's rows as `INSERT` statements.
    async fn insert(&mut self, batch: &RecordBatch) -> Result<()> {
        let s = self.settings.clone();
        let t = &self.target;
        let columns: Vec<Literal<'_>> = batch
            .columns()
            .iter()
            .zip(&t.types)
            .map(|(a, ty)| Literal::new(a.as_ref(), *ty))
            .collect();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::internal("the MySQL writer was already closed"))?;
        let mut sql = String::with_capacity(t.chunk_bytes.min(1 << 20));
        let mut row_sql = String::new();
        let mut in_stmt = 0usize;
        for row in 0..batch.num_rows() {
            row_sql.clear();
            row_sql.push('(');
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    row_sql.push_str(", ");
                }
                c.push(row, &mut row_sql).map_err(|m| {
                    Error::data(format!(
                        "column `{}`, row {}: {m}",
                        batch.schema().field(i).name(),
                        row + 1
                    ))
                })?;
            }
            row_sql.push(')');
            if in_stmt > 0
                && (in_stmt >= ROWS_PER_STATEMENT
                    || sql.len() + row_sql.len() + t.insert_suffix.len() > t.chunk_bytes)
            {
                sql.push_str(&t.insert_suffix);
                conn.query_drop(sql.as_str())
                    .await
                    .map_err(|e| insert_error(e, &s, t))?;
                sql.clear();
                in_stmt = 0;
            }
            if in_stmt == 0 {
                sql.push_str(&t.insert_prefix);
            } else {
                sql.push_str(", ");
            }
            sql.push_str(&row_sql);
            in_stmt += 1;
        }
        if in_stmt > 0 {
            sql.push_str(&t.insert_suffix);
            conn.query_drop(sql.as_str())
                .await
                .map_err(|e| insert_error(e, &s, t))?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.check_lost()?;
        if self.in_tx {
            let s = self.settings.clone();
            let res = self.conn()?.query_drop("COMMIT").await.my(&s);
            self.in_tx = false;
            res?;
        }
        Ok(())
    }
}

fn insert_error(e: mysql_async::Error, s: &ConnSettings, t: &Target) -> Error {
    let duplicate = matches!(&e, mysql_async::Error::Server(se) if se.code == 1062);
    let err = core::map_err(e, s);
    if duplicate && t.mode == WriteMode::Append {
        return Error::new(
            ErrorKind::DataInvalid,
            format!(
                "{}: a row with this key is already in the table (write with mode = \"upsert\" to update it)",
                err.message()
            ),
        );
    }
    err
}

#[async_trait]
impl StreamWriter for MysqlWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.check_lost()?;
        let fits = batch.schema().fields().len() == self.target.types.len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(&self.target.types)
                .all(|(f, ty)| FerryType::of(f) == Some(*ty));
        if !fits {
            return Err(schema_error(
                "a batch does not have the schema the stream was opened with".into(),
                &self.target.table,
            ));
        }
        let s = self.settings.clone();
        if !self.in_tx {
            self.conn()?.query_drop("START TRANSACTION").await.my(&s)?;
            self.in_tx = true;
        }
        // each batch whole or not at all
        self.conn()?
            .query_drop("SAVEPOINT ferry_batch")
            .await
            .my(&s)?;
        if let Err(e) = self.insert(&batch).await {
            let undone = self
                .conn()?
                .query_drop("ROLLBACK TO SAVEPOINT ferry_batch")
                .await;
            if undone.is_err() {
                // the savepoint is gone with the whole transaction
                self.lost = true;
                self.in_tx = false;
            }
            return Err(e.with("table", &self.target.table));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        self.commit().await.ctx("table", &self.target.table)?;
        Ok(match self.target.mode {
            WriteMode::Overwrite => Durability::AtClose,
            _ => Durability::Durable,
        })
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let table = self.target.table.clone();
        self.commit().await.ctx("table", &table)?;
        let s = self.settings.clone();
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| Error::internal("the MySQL writer was already closed"))?;
        if self.target.mode == WriteMode::Overwrite {
            if let Err(e) = swap(&mut conn, &s, &self.target).await {
                // the old table is intact; the staged rows cannot be used
                let _ = conn
                    .query_drop(format!(
                        "DROP TABLE IF EXISTS {}",
                        qualified(&s, &self.target.write_to)
                    ))
                    .await;
                let _ = conn.disconnect().await;
                return Err(e.with("table", &table));
            }
        }
        let _ = conn.disconnect().await;
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "table".into(),
                location: format!("{}#{table}", s.location()),
                rows: self.rows,
                ..Default::default()
            }],
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let s = self.settings.clone();
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if self.in_tx {
            result = conn.query_drop("ROLLBACK").await.my(&s);
        }
        if self.target.mode == WriteMode::Overwrite {
            let dropped = conn
                .query_drop(format!(
                    "DROP TABLE IF EXISTS {}",
                    qualified(&s, &self.target.write_to)
                ))
                .await
                .my(&s);
            result = result.and(dropped);
        }
        let _ = conn.disconnect().await;
        result.ctx("table", &self.target.table)
    }
}

/// Swaps the staging table in: one atomic `RENAME TABLE` (old out, staging in), then
/// drops the old table.
async fn swap(conn: &mut Conn, s: &ConnSettings, t: &Target) -> Result<()> {
    let exists: Option<String> = conn
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (s.database.as_str(), t.table.as_str()),
        )
        .await
        .my(s)?;
    if exists.is_some() {
        let old = core::helper_name(core::OLD_PREFIX, &t.table, &t.run_id);
        exec(
            conn,
            s,
            format!(
                "RENAME TABLE {table} TO {old}, {staging} TO {table}",
                table = qualified(s, &t.table),
                old = qualified(s, &old),
                staging = qualified(s, &t.write_to)
            ),
        )
        .await?;
        // the new table is in place: failing to drop the old one only leaves a leftover
        // that the next overwrite of this table drops
        let _ = exec(conn, s, format!("DROP TABLE {}", qualified(s, &old))).await;
    } else {
        exec(
            conn,
            s,
            format!(
                "RENAME TABLE {} TO {}",
                qualified(s, &t.write_to),
                qualified(s, &t.table)
            ),
        )
        .await?;
    }
    Ok(())
}
