//! The `sqlite` destination: append, upsert, staged overwrite and history (see
//! [`ferry_sql::write::history`]) into one file.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::sink::NameMatch;
use ferry_core::typed::TypedColumn;
use ferry_core::types::with_keys;
use ferry_core::{
    BuildContext, Error, ErrorKind, FerryType, Result, ResultExt, Sink, StreamWriter, WriteMode,
    WriteRequest,
};
use ferry_sql::write::ddl::{insert_into, on_conflict};
use ferry_sql::write::single::{self, ready, Session, Shared};
use ferry_sql::write::{
    duplicate_key, owner, Dialect, Driver, Existing, KeyPart, Load, Staging, Table, TableWriter,
};
use ferry_sql::write::{history, missing};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::config::{SqliteSinkConfig, DEFAULT_BUSY_TIMEOUT_MS};
use crate::core::{self, quote, Kind, Relation, SqlResultExt};
use crate::types;

/// Writes streams into tables of a SQLite file.
#[derive(Clone)]
pub struct SqliteSink {
    path: PathBuf,
    busy_timeout_ms: u64,
    db: Arc<single::Connection<Sqlite>>,
}

impl SqliteSink {
    /// A sink for `cfg`, its `path` taken relative to `ctx.base_dir`. Opens nothing yet.
    pub fn new(cfg: SqliteSinkConfig, ctx: &BuildContext) -> Result<Self> {
        cfg.validate()?;
        let path = core::resolve(&ctx.base_dir, &cfg.path);
        Ok(Self::with_timeout(path, cfg.busy_timeout_ms))
    }

    /// A sink writing to the file at `path` with default settings.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::with_timeout(path.into(), DEFAULT_BUSY_TIMEOUT_MS)
    }

    fn with_timeout(path: PathBuf, busy_timeout_ms: u64) -> Self {
        let file = path.clone();
        let db = single::Connection::new(move || Sqlite::open(&file, busy_timeout_ms));
        SqliteSink {
            path,
            busy_timeout_ms,
            db: Arc::new(db),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The sink's one connection (see [`single`]) and its file.
struct Sqlite {
    conn: Connection,
    path: PathBuf,
    wal: bool,
    dir_synced: bool,
}

type Db = Shared<Sqlite>;

impl Sqlite {
    fn open(path: &Path, busy_timeout_ms: u64) -> Result<Sqlite> {
        let (conn, wal) = core::open_read_write(path, busy_timeout_ms)?;
        let path = path.to_path_buf();
        Ok(Sqlite {
            conn,
            path,
            wal,
            dir_synced: false,
        })
    }

    fn ddl(&self) -> Ddl<'_> {
        Ddl {
            conn: &self.conn,
            file: &self.path,
        }
    }
}

impl Session for Sqlite {
    fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).sql(&self.path)
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
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

    fn named(&self, e: Error) -> Error {
        e.with("file", self.path.display())
    }
}

#[async_trait]
impl Sink for SqliteSink {
    async fn check(&self) -> Result<()> {
        let (path, timeout) = (self.path.clone(), self.busy_timeout_ms);
        self.db
            .peek(move |_, db| check_blocking(db.as_ref(), &path, timeout))
            .await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let req = request.clone();
        let (target, versions) = self
            .db
            .run(move |db| open_target(db, &req))
            .await
            .ctx("table", &request.stream)?;
        let (location, target) = (target.location.clone(), Arc::new(target));
        let load = SqliteLoad {
            db: self.db.clone(),
            target: target.clone(),
        };
        let writer = TableWriter::new(load, &request.stream, &request, location);
        let (writer, history) = match versions {
            Some((h, statements)) => (writer.history(&request, statements), Some(h)),
            None => (writer, None),
        };
        let (Some(keys), Some(deletes)) = (missing::keys_request(&request), request.deletes) else {
            return Ok(Box::new(writer));
        };
        let started = missing::started(&request.run_id);
        let (keys, missing) = self
            .db
            .run(move |db| {
                let (keys, _) = open_target(db, &keys)?;
                let (t, k, ddl) = (&target.table, &keys.write_to, db.session.ddl());
                let m = match &history {
                    Some(h) => h.missing(&ddl, k),
                    None => missing::missing(&ddl, t, k, &target.key, deletes, &started),
                };
                Ok((keys, m))
            })
            .await
            .ctx("table", &request.stream)?;
        let keys = SqliteLoad {
            db: self.db.clone(),
            target: Arc::new(keys),
        };
        Ok(Box::new(writer.deleting(keys, &request, missing)))
    }

    // abort rolls back, or deletes, the rows written since the last flush (the runtime runs a
    // trial one stream at a time, so no other stream's commit makes them durable first)
    ferry_sql::table_sink!();

    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        let stream = stream.to_string();
        self.inspect(move |d| {
            let rel = core::relation(d.conn, &stream, d.file)?;
            Ok(rel.map(|r| {
                let (schema, key) = types::table_schema(&r.columns);
                with_keys(&schema, &key, None)
            }))
        })
        .await
    }

    async fn owner(&self) -> Result<Option<String>> {
        self.inspect(|mut d| ready(owner::read(&mut d))).await
    }

    async fn count_keys(&self, stream: &str, keys: Option<&RecordBatch>) -> Result<Option<u64>> {
        let (stream, keys) = (stream.to_string(), keys.cloned());
        self.inspect(move |mut d| ready(missing::count_keys(&mut d, &stream, keys.as_ref())))
            .await
    }

    /// Insert-if-absent inside one `BEGIN IMMEDIATE` transaction: SQLite's write lock
    /// serialises two processes binding at once, and the second finds the first's tag.
    async fn bind_owner(&self, client: &str) -> Result<Option<String>> {
        let client = client.to_string();
        self.db
            .run(move |db| {
                let bound = db.atomically(|s| ready(owner::bind(&mut s.ddl(), &client)))?;
                db.commit()?;
                Ok(bound)
            })
            .await
    }

    async fn count(&self, stream: &str) -> Result<Option<u64>> {
        let stream = stream.to_string();
        self.inspect(move |d| {
            let Some(r) = core::relation(d.conn, &stream, d.file)? else {
                return Ok(None);
            };
            let sql = format!("SELECT COUNT(*) FROM {}", quote(&r.name));
            let n: i64 = d.conn.query_row(&sql, [], |row| row.get(0)).map_err(|e| {
                let m = format!("cannot count rows of `{}`: {e}", r.name);
                Error::new(ErrorKind::Io, m)
            })?;
            Ok(Some(n.max(0) as u64))
        })
        .await
    }
}

impl SqliteSink {
    /// Runs `f` on the sink's connection, or on a read-only one while none is open;
    /// `None` when the file does not exist.
    async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(Ddl<'_>) -> Result<Option<T>> + Send + 'static,
    ) -> Result<Option<T>> {
        let (path, timeout) = (self.path.clone(), self.busy_timeout_ms);
        self.db
            .peek(move |_, db| {
                let opened;
                let conn = match db.as_ref() {
                    Some(db) => &db.session.conn,
                    None if path.exists() => {
                        opened = core::open_read_only(&path, timeout)?;
                        &opened
                    }
                    None => return Ok(None),
                };
                f(Ddl { conn, file: &path })
            })
            .await
    }
}

/// An existing file: a database we may write (schema readable, write lock obtainable).
/// A missing one: its nearest existing folder is a writable folder.
fn check_blocking(db: Option<&Db>, path: &Path, busy_timeout_ms: u64) -> Result<()> {
    if let Some(db) = db {
        db.session
            .conn
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
        conn.busy_timeout(std::time::Duration::from_millis(busy_timeout_ms))
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
    /// The destination table, and where rows go: it, or an overwrite's staging table.
    table: String,
    write_to: String,
    mode: WriteMode,
    /// The key's columns as the table names them.
    key: Vec<String>,
    insert_sql: String,
    /// `DELETE ... WHERE rowid BETWEEN ?1 AND ?2` (append into a rowid table), to undo
    /// an aborted stream's uncommitted rows.
    undo_sql: Option<String>,
    location: String,
}

/// SQLite's SQL and catalog, for the shared writing code.
struct Ddl<'a> {
    conn: &'a Connection,
    file: &'a Path,
}

impl Dialect for Ddl<'_> {
    /// The declared type.
    type Type = String;

    const SYSTEM: &'static str = "SQLite";
    const NAMES: NameMatch = NameMatch::AsciiCaseless;

    fn quote(&self, name: &str) -> String {
        quote(name)
    }

    fn column_type(&self, ty: FerryType, key: KeyPart) -> String {
        // a sole int64 key declared INTEGER becomes the rowid: no separate index
        match (key, ty) {
            (KeyPart::Sole, FerryType::Int64) => "INTEGER".into(),
            _ => types::declared_type(ty),
        }
    }

    fn takes(&self, declared: &String, ty: FerryType) -> bool {
        types::compatible(types::ferry_type(declared), ty)
    }

    fn describe(&self, declared: &String) -> String {
        format!("{} (declared `{declared}`)", types::ferry_type(declared))
    }

    fn unique_index_sql(&self, table: &str, columns: &str) -> String {
        format!("CREATE UNIQUE INDEX ... ON {} ({columns})", quote(table))
    }

    fn staging(&self, table: &str, run_id: &str) -> Staging {
        Staging::by_run_id(table, run_id, None)
    }
}

impl Driver for Ddl<'_> {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).sql(self.file)
    }

    async fn execute_count(&mut self, sql: &str) -> Result<u64> {
        Ok(self.conn.execute(sql, []).sql(self.file)? as u64)
    }

    async fn table(&mut self, name: &str) -> Result<Option<Table<String>>> {
        let Some(rel) = core::relation(self.conn, name, self.file)? else {
            return Ok(None);
        };
        if rel.kind == Kind::View {
            let m = format!("`{name}` is a view; Ferry writes tables");
            return Err(Error::new(ErrorKind::Unsupported, m));
        }
        let rowid_key = rowid_alias(&rel);
        let columns = rel.columns.iter().map(|c| Existing {
            name: c.name.clone(),
            required: c.not_null && !c.has_default && rowid_key != Some(c.name.as_str()),
            generated: false,
            ty: c.declared.clone(),
        });
        let columns = columns.collect();
        Ok(Some(Table {
            name: rel.name.clone(),
            columns,
        }))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<String>> {
        let row = self
            .conn
            .query_row(sql, [], |r| r.get::<_, Option<String>>(0));
        Ok(row.optional().sql(self.file)?.flatten())
    }

    async fn tables_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        core::tables_with_prefix(self.conn, prefix, self.file)
    }

    async fn has_unique_key(&mut self, table: &str, key: &[String]) -> Result<bool> {
        let rel = core::relation(self.conn, table, self.file)?
            .ok_or_else(|| Error::internal("table vanished"))?;
        core::has_unique_key(self.conn, &rel, key, self.file)
    }
}

/// The column an `INTEGER PRIMARY KEY` makes the rowid (SQLite fills it in).
fn rowid_alias(rel: &Relation) -> Option<&str> {
    let pk: Vec<_> = rel.columns.iter().filter(|c| c.pk > 0).collect();
    (pk.len() == 1 && pk[0].declared.trim().eq_ignore_ascii_case("INTEGER"))
        .then(|| pk[0].name.as_str())
}

/// Makes `req`'s table ready (for history, its table and its rows' staging table) and
/// the statements that write it.
fn open_target(db: &mut Db, req: &WriteRequest) -> Result<(Target, history::Opened)> {
    let location = location(&db.session.path, &req.stream);
    let (req, prep, history) = db.atomically(|s| {
        // SQLite's driver never waits: its futures are ready when polled
        ready(history::open(&mut s.ddl(), req))
    })?;
    let req = &req;
    let write_to = prep.write_to().to_string();
    let s = &db.session;
    let undo_sql = match req.mode {
        WriteMode::Append => rowid_name(&s.conn, &write_to, &s.path)?.map(|rowid| {
            format!(
                "DELETE FROM {} WHERE {rowid} BETWEEN ?1 AND ?2",
                quote(&write_to)
            )
        }),
        _ => None,
    };
    db.commit()?;
    let id = db.writer();
    let s = &db.session;
    let ddl = s.ddl();
    let mut insert_sql = insert_into(&ddl, &write_to, &prep.names());
    let params: Vec<String> = (1..=prep.columns.len()).map(|i| format!("?{i}")).collect();
    insert_sql.push_str(&format!(" VALUES ({})", params.join(", ")));
    if req.mode == WriteMode::Upsert {
        insert_sql.push_str(&on_conflict(&ddl, &prep.names(), &prep.table_key(req)));
    }
    let target = Target {
        id,
        table: prep.table.clone(),
        insert_sql,
        undo_sql,
        write_to,
        mode: req.mode,
        key: prep.table_key(req),
        location,
    };
    Ok((target, history))
}

/// Where table `table` of the file at `path` is, for reports: the database's file name,
/// not its folder (receipts name no local folders).
fn location(path: &Path, table: &str) -> String {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!("{file}#{table}")
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
    let alias = rowid_alias(&rel);
    Ok(["rowid", "_rowid_", "oid"].into_iter().find(|name| {
        rel.columns
            .iter()
            .all(|c| !c.name.eq_ignore_ascii_case(name) || Some(c.name.as_str()) == alias)
    }))
}

// ----------------------------------------------------------------------------------------
// Writing

/// Moves a stream's rows through the sink's one connection.
struct SqliteLoad {
    db: Arc<single::Connection<Sqlite>>,
    target: Arc<Target>,
}

/// Inserts every row of `batch`; returns the rowid ranges inserted when `t` can undo.
fn insert_batch(
    conn: &Connection,
    t: &Target,
    batch: &RecordBatch,
    file: &Path,
) -> Result<Vec<(i64, i64)>> {
    let columns = TypedColumn::of_batch(batch);
    let mut stmt = conn.prepare_cached(&t.insert_sql).sql(file)?;
    let mut scratch = String::new();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for row in 0..batch.num_rows() {
        for (i, c) in columns.iter().enumerate() {
            types::bind(c, &mut stmt, i + 1, row, &mut scratch).sql(file)?;
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
                return Err(Error::data(duplicate_key(err.message())).with("file", file.display()));
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
impl Load for SqliteLoad {
    async fn write(&mut self, batch: &RecordBatch, _before: u64) -> Result<()> {
        let (t, batch) = (self.target.clone(), batch.clone());
        self.db
            .run(move |db| {
                db.check_lost(t.id)?;
                let rows = db.atomically(|s| insert_batch(&s.conn, &t, &batch, &s.path))?;
                db.wrote(t.id, rows);
                Ok(())
            })
            .await
    }

    async fn commit(&mut self) -> Result<()> {
        let id = self.target.id;
        self.db.run(move |db| db.flush(id)).await
    }

    async fn finish(&mut self) -> Result<()> {
        if self.target.mode != WriteMode::Overwrite {
            return Ok(());
        }
        let t = self.target.clone();
        self.db
            .run(move |db| {
                // readers see the old table or the new one, never neither: one transaction
                let (table, staging) = (quote(&t.table), quote(&t.write_to));
                let swap = format!(
                    "DROP TABLE IF EXISTS {table}; ALTER TABLE {staging} RENAME TO {table};"
                );
                match db.atomically(|s| s.exec(&swap)) {
                    Ok(()) => db.commit(),
                    Err(e) => {
                        // the old table is intact; the staged rows cannot be used
                        let _ =
                            db.atomically(|s| s.exec(&format!("DROP TABLE IF EXISTS {staging}")));
                        let _ = db.commit();
                        Err(e)
                    }
                }
            })
            .await
    }

    async fn apply(&mut self, statements: &[String]) -> Result<Vec<u64>> {
        let (id, statements) = (self.target.id, statements.to_vec());
        self.db
            .run(move |db| {
                db.check_lost(id)?;
                let n = db.atomically(|s| ready(missing::apply(&mut s.ddl(), &statements)))?;
                db.flush(id)?;
                Ok(n)
            })
            .await
    }

    async fn abort(&mut self) -> Result<()> {
        let t = self.target.clone();
        self.db
            .run(move |db| {
                let rows = db.abandon(t.id)?;
                if let (Some(undo), false) = (&t.undo_sql, rows.is_empty()) {
                    // rows other streams' commits made durable, or that share the open
                    // transaction with theirs: delete just ours, for good
                    db.atomically(|s| {
                        let mut stmt = s.conn.prepare_cached(undo).sql(&s.path)?;
                        for (first, last) in rows {
                            stmt.execute([first, last]).sql(&s.path)?;
                        }
                        Ok(())
                    })?;
                    db.commit()?;
                }
                // upserts stay: applying them again on a rerun changes nothing
                if t.mode == WriteMode::Overwrite {
                    db.atomically(|s| {
                        s.exec(&format!("DROP TABLE IF EXISTS {}", quote(&t.write_to)))
                    })?;
                    db.commit()?;
                }
                Ok(())
            })
            .await
    }
}
