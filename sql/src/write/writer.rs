//! The stream writer every SQL destination uses: it checks batches, counts rows, says
//! when they are durable and reports; the database's [`Load`] moves the rows.

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    Durability, Error, ErrorKind, FerryType, Output, Result, ResultExt, SinkCapabilities,
    StreamWriter, WriteMode, WriteRequest, WriteSummary,
};

use super::fit::mismatch;
use super::history::{self, Applied};
use super::missing::{keys_of, Missing};
use super::repeated::Seen;

/// The database's half of a stream writer.
#[async_trait]
pub trait Load: Send {
    /// Writes `batch`'s rows into the open transaction (begun if needed), all of them
    /// or none. `before` rows of the stream came before it (for row numbers in errors).
    async fn write(&mut self, batch: &RecordBatch, before: u64) -> Result<()>;

    /// Commits what was written since the last commit, durably.
    async fn commit(&mut self) -> Result<()>;

    /// After the last commit: swaps an overwrite's staging table in, lets the
    /// connection go.
    async fn finish(&mut self) -> Result<()>;

    /// Gives up: rolls back what was not committed, drops an overwrite's staging table.
    async fn abort(&mut self) -> Result<()>;

    /// After the last commit: runs `statements` in a transaction of their own (see
    /// [`super::missing::apply`]) and returns the rows each one changed.
    async fn apply(&mut self, _statements: &[String]) -> Result<Vec<u64>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "this destination cannot delete rows the source no longer holds",
        ))
    }
}

/// A writer's keys table and what to do with the rows whose key is not in it
/// (`deletes`, see [`super::missing`]).
struct Deleting<L> {
    /// Writes the key columns into the keys table.
    keys: L,
    /// The key's columns in the stream.
    columns: Vec<usize>,
    missing: Missing,
    /// Keys the source listed itself ([`StreamWriter::keep_keys`]), which replaced
    /// those of the rows written.
    listed: Option<u64>,
    /// Deletes come from the source by key ([`StreamWriter::deletes_by_key`]): the keys
    /// of rows written are not staged.
    by_key: bool,
}

/// A history writer's end (see [`super::history`]): its rows are staged (the load
/// writes into the staging table), then these statements make the versions.
struct Versions {
    statements: Vec<String>,
    /// The key's columns in the stream (left out of the row hash).
    key: Vec<usize>,
    /// What the statements did, once they ran.
    applied: Option<Applied>,
}

/// A [`StreamWriter`] into one table, over the database's [`Load`].
pub struct TableWriter<L> {
    load: L,
    table: String,
    mode: WriteMode,
    types: Vec<FerryType>,
    location: String,
    rows: u64,
    deleting: Option<Deleting<L>>,
    versions: Option<Versions>,
    /// The keys written in this run, where each key may come once (history, and
    /// `deletes` after a complete read).
    seen: Option<Seen>,
}

impl<L: Load> TableWriter<L> {
    /// A writer of `req`'s batches into `table` (named so in errors), reported at
    /// `location` (where the rows went, without credentials).
    pub fn new(load: L, table: &str, req: &WriteRequest, location: String) -> Self {
        let types = req
            .schema
            .fields()
            .iter()
            .map(|f| FerryType::of(f).expect("a checked schema"));
        let (types, mode) = (types.collect(), req.mode);
        TableWriter {
            load,
            table: table.to_string(),
            mode,
            types,
            location,
            rows: 0,
            deleting: None,
            versions: None,
            seen: None,
        }
    }

    /// A history writer (`mode = "history"`): `load` writes the rows, hashed, into the
    /// staging table [`super::history::staging_request`] opened, and `statements`
    /// ([`super::history::History::statements`]) make the versions at the end.
    pub fn history(mut self, req: &WriteRequest, statements: Vec<String>) -> Self {
        self.versions = Some(Versions {
            statements,
            key: super::missing::key_columns(req),
            applied: None,
        });
        let key = super::missing::key_columns(req);
        self.seen = Some(Seen::new("mode = \"history\"", key));
        self
    }

    /// Runs `more` after the history's statements, if they have not run yet, in one
    /// transaction; returns the counts of `more`.
    async fn apply(&mut self, more: &[String]) -> Result<Vec<u64>> {
        let pending = self.versions.as_ref().filter(|v| v.applied.is_none());
        let mut statements = pending.map_or_else(Vec::new, |v| v.statements.clone());
        let ours = statements.len();
        statements.extend_from_slice(more);
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let mut counts = self
            .load
            .apply(&statements)
            .await
            .ctx("table", &self.table)?;
        let rest = counts.split_off(ours.min(counts.len()));
        if let (Some(v), &[changed, inserted]) = (&mut self.versions, counts.as_slice()) {
            v.applied = Some(Applied { inserted, changed });
        }
        Ok(rest)
    }

    /// Stages every key written through `keys` (the database's loader into the keys
    /// table [`super::missing::keys_request`] opened), for `missing` to run after a
    /// complete read.
    pub fn deleting(mut self, keys: L, req: &WriteRequest, missing: Missing) -> Self {
        let columns = super::missing::key_columns(req);
        self.deleting = Some(Deleting {
            keys,
            columns,
            missing,
            listed: None,
            by_key: false,
        });
        if let (None, Some(d)) = (&self.seen, req.deletes) {
            let key = super::missing::key_columns(req);
            self.seen = Some(Seen::new(format!("deletes = \"{d}\""), key));
        }
        self
    }

    /// With soft deletes read by key: unmarks the rows of `batch`, just written, whose
    /// key the source had deleted before (a key deleted, then inserted again, is back).
    /// Their keys go through the keys table, emptied again (the next batch may hold the
    /// same keys); the rows are committed first, as before a delete by key.
    async fn revive(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(d) = self.deleting.as_mut().filter(|d| d.by_key) else {
            return Ok(());
        };
        if d.missing.revived.is_empty() {
            return Ok(());
        }
        let table = &self.table;
        let keys = keys_of(batch, &d.columns)?;
        d.keys.write(&keys, 0).await.ctx("table", table)?;
        d.keys.commit().await.ctx("table", table)?;
        self.load.commit().await.ctx("table", table)?;
        self.load
            .apply(&d.missing.revived)
            .await
            .ctx("table", table)?;
        let clear = [d.missing.clear_keys.clone()];
        d.keys.apply(&clear).await.ctx("table", table)?;
        Ok(())
    }

    /// Drops the keys table (its loader gives up, which drops an overwrite's staging).
    async fn drop_keys(&mut self) -> Result<()> {
        match self.deleting.take() {
            Some(mut d) => d.keys.abort().await.ctx("table", &self.table),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl<L: Load> StreamWriter for TableWriter<L> {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let schema = batch.schema();
        let fits = schema.fields().len() == self.types.len()
            && schema
                .fields()
                .iter()
                .zip(&self.types)
                .all(|(f, ty)| FerryType::of(f) == Some(*ty));
        if !fits {
            let m = "a batch does not have the schema the stream was opened with";
            return Err(mismatch(m.into(), &self.table));
        }
        if let Some(seen) = &mut self.seen {
            seen.take(&batch, self.rows, &self.table)?;
        }
        let staged = match &self.versions {
            Some(v) => history::with_row_hash(&batch, &v.key)?,
            None => batch.clone(),
        };
        self.load
            .write(&staged, self.rows)
            .await
            .ctx("table", &self.table)?;
        if let Some(d) = self.deleting.as_mut().filter(|d| !d.by_key) {
            let keys = keys_of(&batch, &d.columns)?;
            d.keys
                .write(&keys, self.rows)
                .await
                .ctx("table", &self.table)?;
        }
        self.revive(&batch).await?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        self.load.commit().await.ctx("table", &self.table)?;
        if let Some(d) = &mut self.deleting {
            d.keys.commit().await.ctx("table", &self.table)?;
        }
        // a history's rows are only staged until its versions are made at close
        Ok(match self.mode {
            WriteMode::Overwrite | WriteMode::History => Durability::AtClose,
            _ => Durability::Durable,
        })
    }

    async fn delete_missing(&mut self) -> Result<u64> {
        let Some(d) = &mut self.deleting else {
            return Err(Error::internal(
                "a writer opened without `deletes` was asked to delete",
            ));
        };
        self.load.commit().await.ctx("table", &self.table)?;
        d.keys.commit().await.ctx("table", &self.table)?;
        // a history's versions and the closing of its missing keys: one transaction
        let statements = d.missing.statements.clone();
        let counts = self.apply(&statements).await?;
        self.drop_keys().await?;
        Ok(counts.last().copied().unwrap_or(0))
    }

    async fn keep_keys(&mut self, keys: RecordBatch) -> Result<()> {
        let Some(d) = &mut self.deleting else {
            return Err(Error::internal(
                "a writer opened without `deletes` was given keys",
            ));
        };
        let table = &self.table;
        let before = match d.listed {
            Some(n) => n,
            None => {
                d.keys.commit().await.ctx("table", table)?;
                let clear = [d.missing.clear_keys.clone()];
                d.keys.apply(&clear).await.ctx("table", table)?;
                0
            }
        };
        d.keys.write(&keys, before).await.ctx("table", table)?;
        d.listed = Some(before + keys.num_rows() as u64);
        Ok(())
    }

    fn deletes_by_key(&mut self) {
        if let Some(d) = &mut self.deleting {
            d.by_key = true;
            // changes come by key: a key changes as often as the source changes it
            self.seen = None;
        }
    }

    async fn delete_keys(&mut self, keys: RecordBatch) -> Result<u64> {
        let Some(d) = &mut self.deleting else {
            return Err(Error::internal(
                "a writer opened without `deletes` was asked to delete keys",
            ));
        };
        let table = &self.table;
        // the rows written before go first: a key deleted after its upsert stays deleted
        self.load.commit().await.ctx("table", table)?;
        d.keys.commit().await.ctx("table", table)?;
        let clear = [d.missing.clear_keys.clone()];
        d.keys.apply(&clear).await.ctx("table", table)?;
        d.keys.write(&keys, 0).await.ctx("table", table)?;
        d.keys.commit().await.ctx("table", table)?;
        let counts = self
            .load
            .apply(&d.missing.listed)
            .await
            .ctx("table", table)?;
        d.keys.apply(&clear).await.ctx("table", table)?;
        // the last statement's count, as for the rows missing at the end
        Ok(counts.last().copied().unwrap_or(0))
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        self.load.commit().await.ctx("table", &self.table)?;
        let (mut rows, mut closed) = (self.rows, None);
        if self.versions.is_some() {
            self.apply(&[]).await?;
            self.drop_keys().await?;
            // the staging table has served: dropped, never swapped in
            self.load.abort().await.ctx("table", &self.table)?;
            let applied = self.versions.as_ref().and_then(|v| v.applied);
            let applied = applied.unwrap_or_default();
            (rows, closed) = (applied.inserted, Some(applied.changed));
        } else {
            self.drop_keys().await?;
            self.load.finish().await.ctx("table", &self.table)?;
        }
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "table".into(),
                location: self.location.clone(),
                rows,
                closed,
                ..Default::default()
            }],
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        // the rows first: a database with one shared transaction (SQLite) rolls it back
        // only once no writer has rows in it
        let rows = self.load.abort().await.ctx("table", &self.table);
        self.drop_keys().await.and(rows)
    }
}

/// What a SQL destination supports: append, overwrite (staged, swapped in at close),
/// upsert by key and history (versions by key, made at close).
pub fn capabilities() -> SinkCapabilities {
    let modes = vec![
        WriteMode::Append,
        WriteMode::Overwrite,
        WriteMode::Upsert,
        WriteMode::History,
    ];
    SinkCapabilities { modes }
}

/// Writes the `Sink` methods every SQL destination shares into its `impl Sink`: it rolls
/// back (`rolls_back`: a trial's `abort` undoes what it wrote; the sink says how in a
/// comment above), writes in the modes of [`capabilities`] and takes `deletes`.
#[macro_export]
macro_rules! table_sink {
    () => {
        fn rolls_back(&self) -> bool {
            true
        }

        fn deletes(&self) -> bool {
            true
        }

        fn capabilities(&self) -> ::ferry_core::SinkCapabilities {
            $crate::write::capabilities()
        }
    };
}

/// The message of a duplicate key in append mode, saying how to update instead.
pub fn duplicate_key(message: &str) -> String {
    format!("{message}: a row with this key is already in the table (write with mode = \"upsert\" to update it)")
}
