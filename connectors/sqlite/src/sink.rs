//! The `sqlite` destination: append, upsert and staged overwrite into one file.
//!
//! SQLite allows one writer per file, so a sink keeps **one** connection, opened on
//! first use, behind a mutex, and every writer of the run (one per stream) takes turns
//! on it from a blocking thread; the async runtime never waits on SQLite. Rows go into
//! one open transaction, each batch atomically inside a savepoint, through a cached
//! prepared statement. `flush` commits that transaction, so it also commits what other
//! streams wrote since; that is harmless, as committing early only makes rows durable
//! sooner. What must not happen is a writer believing rows durable that a failed commit
//! threw away: a failed commit marks every writer with rows in it, and their next
//! `flush` or `close` fails instead of claiming durability.
//!
//! Durability: WAL with `synchronous = NORMAL`, so a commit costs no fsync; `flush`
//! then fsyncs the WAL file itself, once, before it answers `Durable`. A crash, even a
//! power loss, therefore never loses rows whose state the runtime committed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Durability, Error, ErrorKind, FerryType, Output, Result, ResultExt, Sink,
    SinkCapabilities, StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::config::{SqliteSinkConfig, DEFAULT_BUSY_TIMEOUT_MS};
use crate::core::{self, quote, Kind, Relation, SqlResultExt};
use crate::types::{self, Binder};

/// Writes streams into tables of a SQLite file.
#[derive(Clone)]
pub struct SqliteSink {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    busy_timeout_ms: u64,
    db: Mutex<Option<Db>>,
}

impl SqliteSink {
    /// A sink for `cfg`, its `path` taken relative to `ctx.base_dir`. Opens nothing yet.
    pub fn new(cfg: SqliteSinkConfig, ctx: &BuildContext) -> Result<Self> {
        cfg.validate()?;
        Ok(Self::with_timeout(
            core::resolve(&ctx.base_dir, &cfg.path),
            cfg.busy_timeout_ms,
        ))
    }

    /// A sink writing to the file at `path` with default settings.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::with_timeout(path.into(), DEFAULT_BUSY_TIMEOUT_MS)
    }

    fn with_timeout(path: PathBuf, busy_timeout_ms: u64) -> Self {
        SqliteSink {
            shared: Arc::new(Shared {
                path,
                busy_timeout_ms,
                db: Mutex::new(None),
            }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // closing checkpoints the WAL into the file, which can take a while: not on an
        // async worker thread
        let db = self.db.get_mut().ok().and_then(Option::take);
        if let (Some(db), Ok(rt)) = (db, tokio::runtime::Handle::try_current()) {
            rt.spawn_blocking(move || drop(db));
        }
    }
}

/// Runs `f` on the shared connection (opened on first use) on a blocking thread.
async fn with_db<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut Db) -> Result<T> + Send + 'static,
) -> Result<T> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = shared.db.lock().map_err(|_| {
            Error::internal("an earlier SQLite operation panicked; the connection is unusable")
        })?;
        if guard.is_none() {
            *guard = Some(Db::open(&shared.path, shared.busy_timeout_ms)?);
        }
        f(guard.as_mut().expect("opened above"))
    })
    .await
    .map_err(|e| Error::internal(format!("SQLite worker failed: {e}")))?
}

/// The one connection of a sink and who has rows in its open transaction.
struct Db {
    conn: Connection,
    path: PathBuf,
    wal: bool,
    /// Writers with rows in the open, uncommitted transaction.
    dirty: HashSet<u64>,
    /// Writers whose uncommitted rows a failed commit discarded.
    lost: HashSet<u64>,
    /// Rowid ranges each appending writer inserted since its own last flush, so an
    /// aborted stream can take its rows back out while other streams' rows stay. Another
    /// writer's commit makes them durable too, but they stay here: the run counts a
    /// stream's rows committed only at that stream's own durable flush, so an abort must
    /// still remove them (the report says what the table holds).
    pending: HashMap<u64, Vec<(i64, i64)>>,
    next_writer: u64,
    dir_synced: bool,
}

impl Db {
    fn open(path: &Path, busy_timeout_ms: u64) -> Result<Db> {
        let (conn, wal) = core::open_read_write(path, busy_timeout_ms)?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            wal,
            dirty: HashSet::new(),
            lost: HashSet::new(),
            pending: HashMap::new(),
            next_writer: 1,
            dir_synced: false,
        })
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs `f` inside the open transaction (started if needed), all or nothing.
    fn atomically<T>(&mut self, f: impl FnOnce(&Connection, &Path) -> Result<T>) -> Result<T> {
        if !self.in_transaction() {
            // IMMEDIATE: take the write lock now rather than fail to upgrade later
            self.conn.execute_batch("BEGIN IMMEDIATE").sql(&self.path)?;
        }
        self.conn
            .execute_batch("SAVEPOINT ferry_op")
            .sql(&self.path)?;
        match f(&self.conn, &self.path) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE ferry_op")
                    .sql(&self.path)?;
                Ok(v)
            }
            Err(e) => {
                if self.in_transaction() {
                    let _ = self
                        .conn
                        .execute_batch("ROLLBACK TO ferry_op; RELEASE ferry_op");
                    if self.dirty.is_empty() {
                        // nobody else's rows: end the empty transaction, free the write lock
                        let _ = self.conn.execute_batch("ROLLBACK");
                    }
                } else {
                    // SQLite rolled the whole transaction back (disk full, I/O error …)
                    self.discard();
                }
                Err(e)
            }
        }
    }

    /// Commits the open transaction, then makes it durable.
    fn commit(&mut self) -> Result<()> {
        if !self.in_transaction() {
            return Ok(());
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let err = core::map_err(e, &self.path);
            if self.in_transaction() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.discard();
            return Err(err);
        }
        self.dirty.clear();
        self.sync()
    }

    /// The open transaction is gone: every writer with rows in it lost them.
    fn discard(&mut self) {
        let dirty: Vec<u64> = self.dirty.drain().collect();
        self.lost.extend(dirty);
    }

    /// Fails if a failed commit discarded rows of writer `id` (and forgets it).
    fn check_lost(&mut self, id: u64) -> Result<()> {
        if self.lost.remove(&id) {
            return Err(Error::new(
                ErrorKind::Io,
                "rows written since the last flush were lost: a commit on this database failed",
            )
            .with("file", self.path.display()));
        }
        Ok(())
    }

    /// fsyncs the WAL (commits under `synchronous = NORMAL` do not), and the folder once
    /// so a newly created file's name is durable too.
    fn sync(&mut self) -> Result<()> {
        if self.wal {
            let mut wal = self.path.clone().into_os_string();
            wal.push("-wal");
            match std::fs::OpenOptions::new().write(true).open(&wal) {
                Ok(f) => f
                    .sync_data()
                    .map_err(|e| Error::io(e, "cannot sync the SQLite WAL file", &wal))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(e, "cannot open the SQLite WAL file", &wal)),
            }
        }
        if !self.dir_synced {
            #[cfg(unix)]
            {
                let dir = match self.path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if let Ok(d) = std::fs::File::open(&dir) {
                    let _ = d.sync_all();
                }
            }
            self.dir_synced = true;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for SqliteSink {
    async fn check(&self) -> Result<()> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || check_blocking(&shared))
            .await
            .map_err(|e| Error::internal(format!("SQLite worker failed: {e}")))?
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let req = request.clone();
        let target = with_db(&self.shared, move |db| open_target(db, &req))
            .await
            .ctx("table", &request.stream)?;
        Ok(Box::new(SqliteWriter {
            shared: self.shared.clone(),
            target: Arc::new(target),
            rows: 0,
        }))
    }

    // abort rolls back, or deletes, the rows written since the last flush (the runtime runs a
    // trial one stream at a time, so no other stream's commit makes them durable first)
    fn rolls_back(&self) -> bool {
        true
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert],
        }
    }

    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        self.inspect(stream, |_, r| {
            let (schema, key) = types::table_schema(&r.columns);
            Ok(with_keys(&schema, &key, None))
        })
        .await
    }

    async fn owner(&self) -> Result<Option<String>> {
        self.read_owner().await
    }

    /// Insert-if-absent inside one `BEGIN IMMEDIATE` transaction: SQLite's write lock
    /// serialises two processes binding at once, and the second finds the first's tag.
    async fn bind_owner(&self, client: &str) -> Result<Option<String>> {
        let client = client.to_string();
        with_db(&self.shared, move |db| {
            let t = quote(core::OWNER_TABLE);
            let owner = db.atomically(|conn, file| {
                conn.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {t} (client TEXT NOT NULL)"
                ))
                .sql(file)?;
                conn.execute(
                    &format!(
                        "INSERT INTO {t} (client) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM {t})"
                    ),
                    [&client],
                )
                .sql(file)?;
                conn.query_row(&format!("SELECT client FROM {t} LIMIT 1"), [], |r| {
                    r.get::<_, String>(0)
                })
                .sql(file)
            })?;
            db.commit()?;
            Ok(Some(owner))
        })
        .await
    }

    async fn count(&self, stream: &str) -> Result<Option<u64>> {
        self.inspect(stream, |conn, r| {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}", core::quote(&r.name)),
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("cannot count rows of `{}`: {e}", r.name),
                    )
                })?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}

impl SqliteSink {
    async fn read_owner(&self) -> Result<Option<String>> {
        let owner = self
            .inspect(core::OWNER_TABLE, |conn, r| {
                conn.query_row(
                    &format!("SELECT client FROM {} LIMIT 1", quote(&r.name)),
                    [],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("cannot read the destination's owner tag: {e}"),
                    )
                })
            })
            .await?;
        Ok(owner.flatten())
    }

    /// Runs `f` on the table or view `stream` names, if the database and it exist.
    async fn inspect<T: Send + 'static>(
        &self,
        stream: &str,
        f: impl FnOnce(&rusqlite::Connection, &core::Relation) -> Result<T> + Send + 'static,
    ) -> Result<Option<T>> {
        let shared = self.shared.clone();
        let stream = stream.to_string();
        tokio::task::spawn_blocking(move || -> Result<Option<T>> {
            let guard = shared
                .db
                .lock()
                .map_err(|_| Error::internal("an earlier SQLite operation panicked"))?;
            let opened;
            let conn = match guard.as_ref() {
                Some(db) => &db.conn,
                None if shared.path.exists() => {
                    opened = core::open_read_only(&shared.path, shared.busy_timeout_ms)?;
                    &opened
                }
                None => return Ok(None),
            };
            match core::relation(conn, &stream, &shared.path)? {
                Some(r) => f(conn, &r).map(Some),
                None => Ok(None),
            }
        })
        .await
        .map_err(|e| Error::internal(format!("SQLite worker failed: {e}")))?
    }
}

/// An existing file: a database we may write (schema readable, write lock obtainable).
/// A missing one: its nearest existing folder is a writable folder.
fn check_blocking(shared: &Shared) -> Result<()> {
    let path = &shared.path;
    let guard = shared
        .db
        .lock()
        .map_err(|_| Error::internal("an earlier SQLite operation panicked"))?;
    if let Some(db) = guard.as_ref() {
        db.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .sql(path)?;
        return Ok(());
    }
    if path.is_dir() {
        return Err(Error::config(format!(
            "`{}` is a folder; `path` must name a SQLite file",
            path.display()
        ))
        .with("file", path.display()));
    }
    if path.exists() {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .sql(path)?;
        conn.busy_timeout(std::time::Duration::from_millis(shared.busy_timeout_ms))
            .sql(path)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .sql(path)?;
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").sql(path)?;
        return Ok(());
    }
    for d in path.ancestors().skip(1) {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        let Ok(meta) = std::fs::metadata(d) else {
            continue;
        };
        if !meta.is_dir() {
            return Err(Error::config(format!(
                "cannot create `{}`: `{}` is a file, not a folder",
                path.display(),
                d.display()
            ))
            .with("file", path.display()));
        }
        if meta.permissions().readonly() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "cannot create `{}`: folder `{}` is read-only",
                    path.display(),
                    d.display()
                ),
            )
            .with("file", path.display()));
        }
        return Ok(());
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Opening a stream

/// What a writer writes to, fixed at open.
struct Target {
    id: u64,
    /// The destination table.
    table: String,
    /// Where rows go: the table, or the staging table of an overwrite.
    write_to: String,
    mode: WriteMode,
    insert_sql: String,
    /// `DELETE ... WHERE rowid BETWEEN ?1 AND ?2` (append into a rowid table), to undo
    /// an aborted stream's uncommitted rows.
    undo_sql: Option<String>,
    types: Vec<FerryType>,
    location: String,
    path: PathBuf,
}

fn schema_error(message: String, table: &str) -> Error {
    Error::new(ErrorKind::SchemaMismatch, message).with("table", table)
}

fn open_target(db: &mut Db, req: &WriteRequest) -> Result<Target> {
    let table = req.stream.as_str();
    let schema = &req.schema;
    if table.is_empty() {
        return Err(Error::config("the destination table name is empty"));
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
        if names[..i].iter().any(|o| o.eq_ignore_ascii_case(n)) {
            return Err(schema_error(
                format!(
                    "columns `{n}` and `{}` differ only in case, which SQLite cannot tell apart",
                    names[..i]
                        .iter()
                        .find(|o| o.eq_ignore_ascii_case(n))
                        .expect("found")
                ),
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
    let write_to = db.atomically(|conn, file| {
        let existing = core::relation(conn, table, file)?;
        if existing.as_ref().is_some_and(|r| r.kind == Kind::View) {
            return Err(Error::new(ErrorKind::Unsupported, format!("`{table}` is a view; Ferry writes tables")));
        }
        match req.mode {
            WriteMode::Overwrite => {
                let staging = core::staging_name(table, &req.run_id);
                // staging tables of crashed overwrites of this table
                let prefix = format!("{}{table}_", core::STAGING_PREFIX);
                for old in core::tables_with_prefix(conn, &prefix, file)? {
                    if old == staging {
                        return Err(Error::new(
                            ErrorKind::ConfigInvalid,
                            format!("table `{table}` is already being overwritten by another stream of this run"),
                        ));
                    }
                    if core::looks_like_run_id(&old[prefix.len()..]) {
                        conn.execute_batch(&format!("DROP TABLE {}", quote(&old))).sql(file)?;
                    }
                }
                create_table(conn, &staging, schema, &key, file)?;
                Ok(staging)
            }
            WriteMode::Append | WriteMode::Upsert => {
                match &existing {
                    None => create_table(conn, table, schema, &key, file)?,
                    Some(rel) => evolve(conn, rel, schema, file)?,
                }
                if req.mode == WriteMode::Upsert {
                    let rel = core::relation(conn, table, file)?.ok_or_else(|| Error::internal("table vanished"))?;
                    if !core::has_unique_key(conn, &rel, &key, file)? {
                        return Err(schema_error(
                            format!(
                                "upsert needs a PRIMARY KEY or UNIQUE index on ({}) of table `{}`, which it lacks; \
                                 add one (`CREATE UNIQUE INDEX ... ON {} ({})`) or write with mode = \"append\"",
                                key.join(", "),
                                rel.name,
                                quote(&rel.name),
                                key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                            ),
                            table,
                        ));
                    }
                }
                Ok(table.to_string())
            }
        }
    })?;
    let undo_sql = match req.mode {
        WriteMode::Append => rowid_name(&db.conn, &write_to, &db.path)?.map(|rowid| {
            format!(
                "DELETE FROM {} WHERE {rowid} BETWEEN ?1 AND ?2",
                quote(&write_to)
            )
        }),
        _ => None,
    };
    db.commit()?;
    let types: Vec<FerryType> = schema
        .fields()
        .iter()
        .map(|f| FerryType::of(f).expect("checked"))
        .collect();
    let id = db.next_writer;
    db.next_writer += 1;
    Ok(Target {
        id,
        table: table.to_string(),
        insert_sql: insert_sql(&write_to, schema, &key, req.mode),
        undo_sql,
        write_to,
        mode: req.mode,
        types,
        // the database's file name, not its folder: receipts name no local folders
        location: format!(
            "{}#{table}",
            db.path.file_name().map_or_else(
                || db.path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
        path: db.path.clone(),
    })
}

/// How to name the rowid of `table`: `rowid`, or `_rowid_` / `oid` when a column
/// shadows it; `None` for a `WITHOUT ROWID` table or when every name is taken.
fn rowid_name(conn: &Connection, table: &str, file: &Path) -> Result<Option<&'static str>> {
    let without_rowid: Option<i64> = conn
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1 COLLATE NOCASE",
            [table],
            |r| r.get(0),
        )
        .optional()
        .sql(file)?;
    if without_rowid.unwrap_or(0) != 0 {
        return Ok(None);
    }
    let Some(rel) = core::relation(conn, table, file)? else {
        return Ok(None);
    };
    let pk: Vec<_> = rel.columns.iter().filter(|c| c.pk > 0).collect();
    let alias = (pk.len() == 1 && pk[0].declared.trim().eq_ignore_ascii_case("INTEGER"))
        .then(|| pk[0].name.as_str());
    Ok(["rowid", "_rowid_", "oid"].into_iter().find(|name| {
        rel.columns
            .iter()
            .all(|c| !c.name.eq_ignore_ascii_case(name) || Some(c.name.as_str()) == alias)
    }))
}

fn create_table(
    conn: &Connection,
    name: &str,
    schema: &SchemaRef,
    key: &[String],
    file: &Path,
) -> Result<()> {
    let mut defs: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = FerryType::of(f).expect("checked");
            let in_key = key.iter().any(|k| k == f.name());
            // a sole int64 key declared INTEGER becomes the rowid: no separate index
            let decl = if in_key && key.len() == 1 && ty == FerryType::Int64 {
                "INTEGER".to_string()
            } else {
                types::declared_type(ty)
            };
            let not_null = if !f.is_nullable() || in_key {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {decl}{not_null}", quote(f.name()))
        })
        .collect();
    if !key.is_empty() {
        defs.push(format!(
            "PRIMARY KEY ({})",
            key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    conn.execute_batch(&format!(
        "CREATE TABLE {} ({})",
        quote(name),
        defs.join(", ")
    ))
    .sql(file)
}

/// Fits an existing table to the stream: a missing nullable column is added; anything
/// else that does not fit is a `SchemaMismatch` naming the table and column.
fn evolve(conn: &Connection, rel: &Relation, schema: &SchemaRef, file: &Path) -> Result<()> {
    let table = &rel.name;
    for f in schema.fields() {
        let ty = FerryType::of(f).expect("checked");
        match rel
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(f.name()))
        {
            Some(c) => {
                let existing = types::ferry_type(&c.declared);
                if !types::compatible(existing, ty) {
                    return Err(schema_error(
                        format!(
                            "column `{}` of table `{table}` is {existing} (declared `{}`), but the stream sends {ty}; \
                             change the column, or write with mode = \"overwrite\" to replace the table",
                            c.name, c.declared
                        ),
                        table,
                    )
                    .with("column", &c.name));
                }
            }
            None if f.is_nullable() => {
                conn.execute_batch(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    quote(table),
                    quote(f.name()),
                    types::declared_type(ty)
                ))
                .sql(file)?;
            }
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
    let rowid_key = {
        let pk: Vec<_> = rel.columns.iter().filter(|c| c.pk > 0).collect();
        (pk.len() == 1 && pk[0].declared.trim().eq_ignore_ascii_case("INTEGER"))
            .then(|| pk[0].name.clone())
    };
    for c in &rel.columns {
        let sent = schema
            .fields()
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case(&c.name));
        if !sent && c.not_null && !c.has_default && rowid_key.as_ref() != Some(&c.name) {
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
    Ok(())
}

fn insert_sql(table: &str, schema: &SchemaRef, key: &[String], mode: WriteMode) -> String {
    let cols: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(table),
        cols.join(", "),
        params.join(", ")
    );
    if mode == WriteMode::Upsert {
        let updates: Vec<String> = schema
            .fields()
            .iter()
            .filter(|f| !key.contains(f.name()))
            .map(|f| format!("{0} = excluded.{0}", quote(f.name())))
            .collect();
        let keys: Vec<String> = key.iter().map(|k| quote(k)).collect();
        sql.push_str(&format!(" ON CONFLICT ({}) DO ", keys.join(", ")));
        if updates.is_empty() {
            sql.push_str("NOTHING");
        } else {
            sql.push_str(&format!("UPDATE SET {}", updates.join(", ")));
        }
    }
    sql
}

// ----------------------------------------------------------------------------------------
// Writing

struct SqliteWriter {
    shared: Arc<Shared>,
    target: Arc<Target>,
    rows: u64,
}

/// Inserts every row of `batch`; returns the rowid ranges inserted when `t` can undo.
fn insert_batch(
    conn: &Connection,
    t: &Target,
    batch: &RecordBatch,
    file: &Path,
) -> Result<Vec<(i64, i64)>> {
    let schema = batch.schema();
    let fits = schema.fields().len() == t.types.len()
        && schema
            .fields()
            .iter()
            .zip(&t.types)
            .all(|(f, ty)| FerryType::of(f) == Some(*ty));
    if !fits {
        return Err(schema_error(
            "a batch does not have the schema the stream was opened with".into(),
            &t.table,
        ));
    }
    let binders: Vec<Binder<'_>> = batch
        .columns()
        .iter()
        .zip(&t.types)
        .map(|(a, ty)| Binder::new(a.as_ref(), *ty))
        .collect();
    let mut stmt = conn.prepare_cached(&t.insert_sql).sql(file)?;
    let mut scratch = String::new();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for row in 0..batch.num_rows() {
        for (i, b) in binders.iter().enumerate() {
            b.bind(&mut stmt, i + 1, row, &mut scratch).sql(file)?;
        }
        if let Err(e) = stmt.raw_execute() {
            let duplicate = matches!(
                &e,
                rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            );
            let err = core::map_err(e, file);
            if duplicate && t.mode == WriteMode::Append {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "{}: a row with this key is already in the table (write with mode = \"upsert\" to update it)",
                        err.message()
                    ),
                )
                .with("file", file.display()));
            }
            return Err(err);
        }
        if t.undo_sql.is_some() {
            let id = conn.last_insert_rowid();
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == id => *end = id,
                _ => ranges.push((id, id)),
            }
        }
    }
    Ok(ranges)
}

#[async_trait]
impl StreamWriter for SqliteWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let t = self.target.clone();
        let n = batch.num_rows() as u64;
        with_db(&self.shared, move |db| {
            db.check_lost(t.id)?;
            let ranges = db.atomically(|conn, file| insert_batch(conn, &t, &batch, file))?;
            db.dirty.insert(t.id);
            if !ranges.is_empty() {
                db.pending.entry(t.id).or_default().extend(ranges);
            }
            Ok(())
        })
        .await
        .ctx("table", &self.target.table)?;
        self.rows += n;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        let t = self.target.clone();
        with_db(&self.shared, move |db| {
            db.check_lost(t.id)?;
            db.commit()?;
            // this stream's rows are counted committed now: an abort leaves them
            db.pending.remove(&t.id);
            Ok(())
        })
        .await
        .ctx("table", &self.target.table)?;
        Ok(match self.target.mode {
            WriteMode::Overwrite => Durability::AtClose,
            _ => Durability::Durable,
        })
    }

    async fn close(self: Box<Self>) -> Result<WriteSummary> {
        let t = self.target.clone();
        with_db(&self.shared, move |db| {
            db.check_lost(t.id)?;
            db.commit()?;
            db.pending.remove(&t.id);
            if t.mode == WriteMode::Overwrite {
                // readers see the old table or the new one, never neither: one transaction
                let swapped = db.atomically(|conn, file| {
                    conn.execute_batch(&format!(
                        "DROP TABLE IF EXISTS {0}; ALTER TABLE {1} RENAME TO {0};",
                        quote(&t.table),
                        quote(&t.write_to)
                    ))
                    .sql(file)
                });
                match swapped {
                    Ok(()) => db.commit()?,
                    Err(e) => {
                        // the old table is intact; the staged rows cannot be used
                        let _ = db.atomically(|conn, file| {
                            conn.execute_batch(&format!(
                                "DROP TABLE IF EXISTS {}",
                                quote(&t.write_to)
                            ))
                            .sql(file)
                        });
                        let _ = db.commit();
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
        .await
        .ctx("table", &self.target.table)?;
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

    async fn abort(self: Box<Self>) -> Result<()> {
        let t = self.target.clone();
        with_db(&self.shared, move |db| {
            db.lost.remove(&t.id);
            let ranges = db.pending.remove(&t.id).unwrap_or_default();
            if db.dirty.remove(&t.id) && db.dirty.is_empty() && db.in_transaction() {
                // only this writer's rows are uncommitted: roll them back
                db.conn.execute_batch("ROLLBACK").sql(&t.path)?;
            }
            if let (Some(undo), false) = (&t.undo_sql, ranges.is_empty()) {
                // rows other streams' commits made durable, or that share the open
                // transaction with theirs: delete just ours, for good
                db.atomically(|conn, file| {
                    let mut stmt = conn.prepare_cached(undo).sql(file)?;
                    for (first, last) in ranges {
                        stmt.execute([first, last]).sql(file)?;
                    }
                    Ok(())
                })?;
                db.commit()?;
            }
            // upserts stay: applying them again on a rerun changes nothing
            if t.mode == WriteMode::Overwrite {
                db.atomically(|conn, file| {
                    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(&t.write_to)))
                        .sql(file)
                })?;
                db.commit()?;
            }
            Ok(())
        })
        .await
        .ctx("table", &self.target.table)
    }
}
