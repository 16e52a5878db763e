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
use ferry_core::sink::NameMatch;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Error, ErrorKind, FerryType, Result, Sink, SinkCapabilities, StreamWriter,
    WriteMode, WriteRequest,
};
use ferry_sql::write::ddl::insert_into;
use ferry_sql::write::naming::{tagged_name, OLD_PREFIX};
use ferry_sql::write::{
    duplicate_key, mismatch, owner, prepare, Dialect, Driver, Existing, KeyPart, Load, NameOf,
    Staging, Table, TableWriter,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::MysqlSinkConfig;
use crate::core::{self, quote, ConnSettings, Kind, MyResultExt, Server};
use crate::types::{self, ColumnInfo, Literal};

/// MySQL's limit on identifier length, in characters.
const MAX_IDENT: usize = 64;

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
        let mut load = match open_target(&mut conn, s.clone(), &request).await {
            Ok(load) => load,
            Err(e) => {
                let _ = conn.disconnect().await;
                return Err(e.with("table", &request.stream));
            }
        };
        load.conn = Some(conn);
        let types = request
            .schema
            .fields()
            .iter()
            .map(|f| FerryType::of(f).expect("checked"));
        let location = format!("{}#{}", s.location(), load.table);
        let table = load.table.clone();
        let writer = TableWriter::new(load, &table, request.mode, types.collect(), location);
        Ok(Box::new(writer))
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
        let owner = async { owner::read(&mut session(&mut conn, s).await?).await }.await;
        let _ = conn.disconnect().await;
        owner
    }

    /// Writes the `_ferry_owner` tag table in the database if it holds no client yet
    /// (insert-if-absent, under a named lock, so two syncs binding at once cannot both
    /// win), and answers the client it holds then. A database where it cannot be written
    /// stays unbound, with a warning: binding must not block a sync.
    async fn bind_owner(&self, client: &str) -> Result<Option<String>> {
        let s = &*self.settings;
        let mut conn = core::connect(s).await?;
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
            let tagged =
                async { owner::bind(&mut session(&mut conn, s).await?, client).await }.await;
            let _ = conn.exec_drop("DO RELEASE_LOCK(?)", (lock.as_str(),)).await;
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

// ----------------------------------------------------------------------------------------
// Opening a stream

/// MySQL's SQL and catalog on one connection, for the shared writing code.
struct My<'a> {
    conn: &'a mut Conn,
    s: &'a ConnSettings,
    server: Server,
    /// The collation text columns Ferry creates get (exact comparison).
    collation: String,
}

impl Dialect for My<'_> {
    type Type = ColumnInfo;

    fn system(&self) -> &'static str {
        "MySQL"
    }

    fn names(&self) -> NameMatch {
        NameMatch::Caseless
    }

    fn quote(&self, name: &str) -> String {
        quote(name)
    }

    fn qualified(&self, table: &str) -> String {
        qualified(self.s, table)
    }

    fn literal(&self, text: &str) -> String {
        // the session's `sql_mode` keeps backslash escapes (see `session`)
        let mut out = String::from("'");
        types::escape_into(text, &mut out);
        out + "'"
    }

    fn from_nothing(&self) -> &'static str {
        " FROM DUAL"
    }

    fn check_name(&self, name: &str, of: NameOf, table: &str) -> Result<()> {
        let long = name.chars().count() > 64;
        match of {
            NameOf::Table if long => Err(Error::config(format!(
                "table name `{name}` is longer than MySQL's 64 characters; set a shorter `destination` on the stream"
            ))),
            NameOf::Column if long || name.is_empty() || name.ends_with(' ') => Err(mismatch(
                format!("column name `{name}` cannot be a MySQL column (empty, longer than 64 characters, or ending in a space); rename it with a transform"),
                table,
            )),
            _ => Ok(()),
        }
    }

    fn column_type(&self, ty: FerryType, key: KeyPart) -> String {
        types::declared_type(ty, key != KeyPart::No, &self.collation)
    }

    fn nullable(&self) -> &'static str {
        " NULL"
    }

    fn table_options(&self) -> String {
        format!(
            " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {}",
            self.collation
        )
    }

    fn one_alter(&self) -> bool {
        true
    }

    fn takes(&self, column: &ColumnInfo, ty: FerryType) -> bool {
        types::compatible(column.ty, ty)
    }

    fn describe(&self, column: &ColumnInfo) -> String {
        format!("{} (declared `{}`)", column.ty, column.column_type)
    }

    fn unique_index_sql(&self, table: &str, columns: &str) -> String {
        format!("ALTER TABLE {} ADD UNIQUE ({columns})", quote(table))
    }

    fn staging(&self, table: &str, run_id: &str) -> Staging {
        Staging::tagged(table, run_id, MAX_IDENT)
    }
}

impl Driver for My<'_> {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.my(self.s)
    }

    async fn table(&mut self, name: &str) -> Result<Option<Table<ColumnInfo>>> {
        let rel = core::relation(self.conn, self.s, self.server, name).await?;
        let Some(rel) = rel.filter(|r| r.name == name) else {
            return Ok(None);
        };
        if rel.kind == Kind::View {
            let m = format!("`{name}` is a view; Ferry writes tables");
            return Err(Error::new(ErrorKind::Unsupported, m));
        }
        let columns = rel.columns.into_iter().map(|c| Existing {
            name: c.name.clone(),
            required: !c.nullable && !c.has_default,
            generated: c.generated,
            ty: c,
        });
        let columns = columns.collect();
        Ok(Some(Table {
            name: rel.name,
            columns,
        }))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<String>> {
        let row: Option<Option<String>> = self.conn.query_first(sql).await.my(self.s)?;
        Ok(row.flatten())
    }

    async fn tables_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        core::tables_with_prefix(self.conn, self.s, prefix).await
    }

    async fn has_unique_key(&mut self, table: &str, key: &[String]) -> Result<bool> {
        core::has_unique_key(self.conn, self.s, table, key).await
    }
}

/// Sets the session up for writing and reads what the SQL depends on.
async fn session<'a>(conn: &'a mut Conn, s: &'a ConnSettings) -> Result<My<'a>> {
    let mode = format!(
        "SET SESSION sql_mode = '{SQL_MODE}', lock_wait_timeout = {LOCK_WAIT_TIMEOUT_SECS}"
    );
    conn.query_drop(mode).await.my(s)?;
    let server = Server::of(conn, s).await?;
    let collation = core::exact_collation(conn, s).await?;
    Ok(My {
        conn,
        s,
        server,
        collation,
    })
}

/// Sets the session up, creates or fits the table (MySQL commits each DDL statement on
/// its own: all of it happens before rows), and prepares the `INSERT`s.
async fn open_target(
    conn: &mut Conn,
    s: Arc<ConnSettings>,
    req: &WriteRequest,
) -> Result<MysqlLoad> {
    let mut my = session(conn, &s).await?;
    let max_packet: Option<u64> = my
        .conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .my(&s)?;
    let chunk_bytes =
        (max_packet.unwrap_or(4 << 20) as usize / 2).clamp(16 << 10, BYTES_PER_STATEMENT);
    let prep = prepare(&mut my, req).await?;
    let (names, key) = (prep.names(), prep.table_key(req));
    let insert_prefix = format!("{} VALUES ", insert_into(&my, prep.write_to(), &names));
    let insert_suffix = match req.mode {
        WriteMode::Upsert => {
            let updates: Vec<String> = names
                .iter()
                .filter(|c| !key.contains(c))
                .map(|c| format!("{0} = VALUES({0})", quote(c)))
                .collect();
            match updates.is_empty() {
                // every column is in the key: a repeated row changes nothing
                true => format!(" ON DUPLICATE KEY UPDATE {0} = {0}", quote(&key[0])),
                false => format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", ")),
            }
        }
        _ => String::new(),
    };
    Ok(MysqlLoad {
        conn: None,
        table: prep.table.clone(),
        write_to: prep.write_to().to_string(),
        settings: s,
        mode: req.mode,
        run_id: req.run_id.clone(),
        insert_prefix,
        insert_suffix,
        chunk_bytes,
        in_tx: false,
        lost: false,
    })
}

/// `` `db`.`table` ``.
fn qualified(s: &ConnSettings, table: &str) -> String {
    format!("{}.{}", quote(&s.database), quote(table))
}

async fn exec(conn: &mut Conn, s: &ConnSettings, sql: String) -> Result<()> {
    conn.query_drop(sql).await.my(s)
}

// ----------------------------------------------------------------------------------------
// Writing

/// Moves a stream's rows over its own connection.
struct MysqlLoad {
    /// `None` once closed or aborted.
    conn: Option<Conn>,
    settings: Arc<ConnSettings>,
    /// The destination table, and where rows go: it, or an overwrite's staging table.
    table: String,
    write_to: String,
    mode: WriteMode,
    run_id: String,
    /// `INSERT INTO t (cols) VALUES `.
    insert_prefix: String,
    /// ` ON DUPLICATE KEY UPDATE …` (upsert), else empty.
    insert_suffix: String,
    /// Bytes per statement.
    chunk_bytes: usize,
    /// A transaction with rows is open.
    in_tx: bool,
    /// The server rolled the open transaction back (deadlock, lost connection): the
    /// rows since the last flush are gone, so the next flush must fail.
    lost: bool,
}

impl MysqlLoad {
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
            ));
        }
        Ok(())
    }

    /// Sends the batch's rows as `INSERT` statements.
    async fn insert(&mut self, batch: &RecordBatch) -> Result<()> {
        let s = self.settings.clone();
        let schema = batch.schema();
        let columns: Vec<Literal<'_>> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| Literal::new(a.as_ref(), FerryType::of(f).expect("checked")))
            .collect();
        let (prefix, suffix, chunk_bytes, mode) = (
            &self.insert_prefix,
            &self.insert_suffix,
            self.chunk_bytes,
            self.mode,
        );
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::internal("the MySQL writer was already closed"))?;
        let mut sql = String::with_capacity(chunk_bytes.min(1 << 20));
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
                        schema.field(i).name(),
                        row + 1
                    ))
                })?;
            }
            row_sql.push(')');
            if in_stmt > 0
                && (in_stmt >= ROWS_PER_STATEMENT
                    || sql.len() + row_sql.len() + suffix.len() > chunk_bytes)
            {
                sql.push_str(suffix);
                conn.query_drop(sql.as_str())
                    .await
                    .map_err(|e| insert_error(e, &s, mode))?;
                sql.clear();
                in_stmt = 0;
            }
            if in_stmt == 0 {
                sql.push_str(prefix);
            } else {
                sql.push_str(", ");
            }
            sql.push_str(&row_sql);
            in_stmt += 1;
        }
        if in_stmt > 0 {
            sql.push_str(suffix);
            conn.query_drop(sql.as_str())
                .await
                .map_err(|e| insert_error(e, &s, mode))?;
        }
        Ok(())
    }
}

fn insert_error(e: mysql_async::Error, s: &ConnSettings, mode: WriteMode) -> Error {
    let duplicate = matches!(&e, mysql_async::Error::Server(se) if se.code == 1062);
    let err = core::map_err(e, s);
    if duplicate && mode == WriteMode::Append {
        return Error::data(duplicate_key(err.message()));
    }
    err
}

#[async_trait]
impl Load for MysqlLoad {
    async fn write(&mut self, batch: &RecordBatch, _before: u64) -> Result<()> {
        self.check_lost()?;
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
        if let Err(e) = self.insert(batch).await {
            let undone = self
                .conn()?
                .query_drop("ROLLBACK TO SAVEPOINT ferry_batch")
                .await;
            if undone.is_err() {
                // the savepoint is gone with the whole transaction
                self.lost = true;
                self.in_tx = false;
            }
            return Err(e);
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

    async fn finish(&mut self) -> Result<()> {
        let s = self.settings.clone();
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| Error::internal("the MySQL writer was already closed"))?;
        if self.mode == WriteMode::Overwrite {
            if let Err(e) = swap(&mut conn, &s, self).await {
                // the old table is intact; the staged rows cannot be used
                let drop = format!("DROP TABLE IF EXISTS {}", qualified(&s, &self.write_to));
                let _ = conn.query_drop(drop).await;
                let _ = conn.disconnect().await;
                return Err(e);
            }
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    async fn abort(&mut self) -> Result<()> {
        let s = self.settings.clone();
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if self.in_tx {
            result = conn.query_drop("ROLLBACK").await.my(&s);
        }
        if self.mode == WriteMode::Overwrite {
            let drop = format!("DROP TABLE IF EXISTS {}", qualified(&s, &self.write_to));
            result = result.and(conn.query_drop(drop).await.my(&s));
        }
        let _ = conn.disconnect().await;
        result
    }
}

/// Swaps the staging table in: one atomic `RENAME TABLE` (old out, staging in), then
/// drops the old table.
async fn swap(conn: &mut Conn, s: &ConnSettings, t: &MysqlLoad) -> Result<()> {
    let exists: Option<String> = conn
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (s.database.as_str(), t.table.as_str()),
        )
        .await
        .my(s)?;
    let (table, staging) = (qualified(s, &t.table), qualified(s, &t.write_to));
    if exists.is_none() {
        return exec(conn, s, format!("RENAME TABLE {staging} TO {table}")).await;
    }
    let old = qualified(s, &tagged_name(OLD_PREFIX, &t.table, &t.run_id, MAX_IDENT));
    let rename = format!("RENAME TABLE {table} TO {old}, {staging} TO {table}");
    exec(conn, s, rename).await?;
    // the new table is in place: failing to drop the old one only leaves a leftover
    // that the next overwrite of this table drops
    let _ = exec(conn, s, format!("DROP TABLE {old}")).await;
    Ok(())
}
