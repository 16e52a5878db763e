//! The `mysql` destination: append, upsert, staged overwrite and history (see
//! [`ferry_sql::write::history`]) into InnoDB tables.
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
use ferry_core::typed::TypedColumn;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Error, ErrorKind, FerryType, Result, Sink, StreamWriter, WriteMode, WriteRequest,
};
use ferry_sql::write::ddl::insert_into;
use ferry_sql::write::ddl::Values;
use ferry_sql::write::history;
use ferry_sql::write::missing;
use ferry_sql::write::naming::{tagged_name, OLD_PREFIX};
use ferry_sql::write::server::{Session, Transacted};
use ferry_sql::write::{
    duplicate_key, mismatch, owner, Dialect, Driver, Existing, KeyPart, NameOf, Staging, Table,
    TableWriter,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::MysqlSinkConfig;
use crate::core::{self, quote, ConnSettings, Kind, MyResultExt, Server};
use crate::types::{self, push_literal, ColumnInfo};
use crate::upsert;

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
    fn route(&self) -> Vec<String> {
        ferry_sql::settings::routes(self.settings().tunnel.as_ref())
    }

    async fn check(&self) -> Result<()> {
        core::ping(&self.settings).await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let s = self.settings.clone();
        let (conn, mut t) = self.connect_target(&request).await?;
        let history = t.history.take();
        let table = history.as_ref().map_or(&t.table, |h| &h.0.table).clone();
        let key = t.key.clone();
        let location = format!("{}#{table}", s.location());
        let mut writer = TableWriter::new(self.transacted(conn, t), &table, &request, location);
        if let Some((_, statements)) = &history {
            writer = writer.history(&request, statements.clone());
        }
        let (Some(keys), Some(deletes)) = (missing::keys_request(&request), request.deletes) else {
            return Ok(Box::new(writer));
        };
        let (mut conn, keys) = self.connect_target(&keys).await?;
        let started = missing::started(&request.run_id);
        let missing = match (session(&mut conn, &s).await, &history) {
            (Ok(my), Some((h, _))) => Ok(h.missing(&my, &keys.write_to)),
            (Ok(my), None) => Ok(missing::missing(
                &my,
                &table,
                &keys.write_to,
                &key,
                deletes,
                &started,
            )),
            (Err(e), _) => Err(e),
        };
        let missing = match missing {
            Ok(m) => m,
            Err(e) => {
                let _ = conn.disconnect().await;
                return Err(e.with("table", &request.stream));
            }
        };
        let keys = self.transacted(conn, keys);
        Ok(Box::new(writer.deleting(keys, &request, missing)))
    }

    // abort rolls the writer's open transaction back and drops an overwrite's staging table
    ferry_sql::table_sink!();

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
    async fn count_keys(&self, stream: &str, keys: Option<&RecordBatch>) -> Result<Option<u64>> {
        let s = self.settings.clone();
        let mut conn = core::connect(&s).await?;
        let counted = match session(&mut conn, &s).await {
            Ok(mut my) => missing::count_keys(&mut my, stream, keys).await,
            Err(e) => Err(e),
        };
        let _ = conn.disconnect().await;
        counted
    }

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

    const SYSTEM: &'static str = "MySQL";
    const NAMES: NameMatch = NameMatch::Caseless;

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

    fn dual(&self) -> &'static str {
        " FROM DUAL"
    }

    /// `DATETIME(6)` takes no zone: Ferry's are UTC.
    fn timestamp(&self, utc: &str) -> String {
        self.literal(&format!("{utc}.000000"))
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

    async fn execute_count(&mut self, sql: &str) -> Result<u64> {
        self.conn.query_drop(sql).await.my(self.s)?;
        Ok(self.conn.affected_rows())
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

impl MysqlSink {
    /// Connects and makes `req`'s table ready.
    async fn connect_target(&self, req: &WriteRequest) -> Result<(Conn, Target)> {
        let s = self.settings.clone();
        let mut conn = core::connect(&s).await?;
        match open_target(&mut conn, s, req).await {
            Ok(t) => Ok((conn, t)),
            Err(e) => {
                let _ = conn.disconnect().await;
                Err(e.with("table", &req.stream))
            }
        }
    }

    /// The loader of `t`'s rows over `conn`.
    fn transacted(&self, conn: Conn, t: Target) -> Transacted<MySession> {
        let s = self.settings.clone();
        let staging = (t.mode == WriteMode::Overwrite).then(|| qualified(&s, &t.write_to));
        let session = MySession {
            conn,
            settings: s,
            t,
        };
        Transacted::new(session, staging)
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
async fn open_target(conn: &mut Conn, s: Arc<ConnSettings>, req: &WriteRequest) -> Result<Target> {
    let mut my = session(conn, &s).await?;
    let max_packet: Option<u64> = my
        .conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .my(&s)?;
    let chunk_bytes =
        (max_packet.unwrap_or(4 << 20) as usize / 2).clamp(16 << 10, BYTES_PER_STATEMENT);
    let (req, prep, history) = history::open(&mut my, req).await?;
    let req = &req;
    let (names, key) = (prep.names(), prep.table_key(req));
    let insert_prefix = format!("{} VALUES ", insert_into(&my, prep.write_to(), &names));
    let insert_suffix = match req.mode {
        WriteMode::Upsert => upsert::suffix(my.server, &names, &key),
        _ => String::new(),
    };
    Ok(Target {
        table: prep.table.clone(),
        write_to: prep.write_to().to_string(),
        mode: req.mode,
        key: key.clone(),
        run_id: req.run_id.clone(),
        insert_prefix,
        insert_suffix,
        chunk_bytes,
        history,
    })
}

/// `` `db`.`table` ``.
fn qualified(s: &ConnSettings, table: &str) -> String {
    format!("{}.{}", quote(&s.database), quote(table))
}

// ----------------------------------------------------------------------------------------
// Writing

/// A stream writer's own connection.
struct MySession {
    conn: Conn,
    settings: Arc<ConnSettings>,
    t: Target,
}

/// What a writer writes to, fixed at open.
struct Target {
    /// The destination table, and where rows go: it, or an overwrite's staging table.
    table: String,
    write_to: String,
    mode: WriteMode,
    /// The key's columns as the table names them.
    key: Vec<String>,
    run_id: String,
    /// `INSERT INTO t (cols) VALUES `.
    insert_prefix: String,
    /// ` ON DUPLICATE KEY UPDATE …` (upsert), else empty.
    insert_suffix: String,
    /// Bytes per statement.
    chunk_bytes: usize,
    /// History: the table, and the statements that make its versions from the staged rows.
    history: history::Opened,
}

impl MySession {
    async fn send(&mut self, sql: String) -> Result<()> {
        let e = match self.conn.query_drop(sql).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let duplicate = matches!(&e, mysql_async::Error::Server(se) if se.code == 1062);
        let err = core::map_err(e, &self.settings);
        match duplicate && self.t.mode == WriteMode::Append {
            true => Err(Error::data(duplicate_key(err.message()))),
            false => Err(err),
        }
    }
}

#[async_trait]
impl Session for MySession {
    async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.my(&self.settings)
    }

    async fn exec_count(&mut self, sql: &str) -> Result<u64> {
        self.exec(sql).await?;
        Ok(self.conn.affected_rows())
    }

    /// Sends the batch's rows as multi-row `INSERT`s of escaped literals.
    async fn insert(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let columns = TypedColumn::of_batch(batch);
        let (prefix, suffix) = (self.t.insert_prefix.clone(), self.t.insert_suffix.clone());
        let mut values = Values::new(&prefix, &suffix, ROWS_PER_STATEMENT, self.t.chunk_bytes);
        let mut row_sql = String::new();
        for row in 0..batch.num_rows() {
            row_sql.clear();
            row_sql.push('(');
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    row_sql.push_str(", ");
                }
                push_literal(c, row, &mut row_sql).map_err(|m| {
                    let column = schema.field(i).name();
                    Error::data(format!("column `{column}`, row {}: {m}", row + 1))
                })?;
            }
            row_sql.push(')');
            if let Some(sql) = values.push(&row_sql) {
                self.send(sql).await?;
            }
        }
        match values.finish() {
            Some(sql) => self.send(sql).await,
            None => Ok(()),
        }
    }

    /// One atomic `RENAME TABLE` (old out, staging in), then the old table is dropped.
    async fn swap(&mut self) -> Result<()> {
        let s = self.settings.clone();
        let exists: Option<String> = self
            .conn
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (s.database.as_str(), self.t.table.as_str()),
            )
            .await
            .my(&s)?;
        let (table, staging) = (
            qualified(&s, &self.t.table),
            qualified(&s, &self.t.write_to),
        );
        if exists.is_none() {
            return self
                .exec(&format!("RENAME TABLE {staging} TO {table}"))
                .await;
        }
        let old = tagged_name(OLD_PREFIX, &self.t.table, &self.t.run_id, MAX_IDENT);
        let old = qualified(&s, &old);
        self.exec(&format!(
            "RENAME TABLE {table} TO {old}, {staging} TO {table}"
        ))
        .await?;
        // the new table is in place: failing to drop the old one only leaves a leftover
        // that the next overwrite of this table drops
        let _ = self.exec(&format!("DROP TABLE {old}")).await;
        Ok(())
    }

    async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}
