//! Opening a stream's destination, written once: the request checked, then, through
//! the database's [`Driver`], the table created or fitted to the stream (append,
//! upsert), or a fresh staging table made for an overwrite after the leftovers of
//! crashed overwrites are dropped.

use ferry_core::sink::WriteRequest;
use ferry_core::{Result, WriteMode};

use super::ddl::{add_columns, column_list, create_table};
use super::dialect::{Driver, NameOf};
use super::fit::{fit, mismatch, Fitted};

/// Where a writer's rows go, as [`prepare`] made it ready.
#[derive(Debug, Clone)]
pub struct Prepared<T> {
    /// The stream's primary key (the stream's names).
    pub key: Vec<String>,
    /// The destination table: an existing table's own spelling, else the stream's name.
    pub table: String,
    /// An overwrite's staging table, which takes the rows until the swap.
    pub staging: Option<String>,
    /// Where each stream column goes, in the stream's order.
    pub columns: Vec<Fitted<T>>,
}

impl<T> Prepared<T> {
    /// The table rows are written into: the staging table, else the table.
    pub fn write_to(&self) -> &str {
        self.staging.as_deref().unwrap_or(&self.table)
    }

    /// The columns' names in the table, in the stream's order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The key's columns as the table names them.
    pub fn table_key(&self, req: &WriteRequest) -> Vec<String> {
        self.key
            .iter()
            .map(|k| {
                let i = req.schema.index_of(k).expect("a checked key");
                self.columns[i].name.clone()
            })
            .collect()
    }
}

/// Checks `req` and makes its destination ready (see the module docs). Its statements
/// run on `db` as they are; a caller that wants them atomic wraps them in a transaction
/// (MySQL commits each DDL statement on its own).
pub async fn prepare<D: Driver>(db: &mut D, req: &WriteRequest) -> Result<Prepared<D::Type>> {
    let stream = req.stream.as_str();
    let schema = &req.schema;
    db.check_name(stream, NameOf::Table, stream)?;
    let key = req.check(db.system(), db.names())?;
    for f in schema.fields() {
        db.check_name(f.name(), NameOf::Column, stream)?;
    }
    let existing = db.table(stream).await?;
    let table = existing
        .as_ref()
        .map_or(stream, |t| t.name.as_str())
        .to_string();
    let created = || {
        let fields = schema.fields().iter();
        fields
            .map(|f| Fitted {
                name: f.name().clone(),
                existing: None,
            })
            .collect()
    };
    if req.mode == WriteMode::Overwrite {
        let staging = db.staging(&table, &req.run_id);
        db.check_name(&staging.name, NameOf::Staging, stream)?;
        for prefix in &staging.leftovers {
            for old in db.tables_with_prefix(prefix).await? {
                if staging.is_leftover(prefix, &old, &table)? {
                    let drop = format!("DROP TABLE IF EXISTS {}", db.qualified(&old));
                    db.execute(&drop).await?;
                }
            }
        }
        db.execute(&create_table(db, &staging.name, schema, &key))
            .await?;
        let columns = created();
        return Ok(Prepared {
            key,
            table,
            staging: Some(staging.name),
            columns,
        });
    }
    let columns = match &existing {
        None => {
            db.execute(&create_table(db, &table, schema, &key)).await?;
            created()
        }
        Some(t) => {
            let fit = fit(db, t, schema)?;
            for sql in add_columns(db, &t.name, &fit.add) {
                db.execute(&sql).await?;
            }
            fit.columns
        }
    };
    let prepared = Prepared {
        key,
        table,
        staging: None,
        columns,
    };
    if req.mode == WriteMode::Upsert {
        let key = prepared.table_key(req);
        if !db.has_unique_key(&prepared.table, &key).await? {
            let t = &prepared.table;
            return Err(mismatch(
                format!(
                    "upsert needs a PRIMARY KEY or UNIQUE index on ({}) of table `{t}`, which it lacks; \
                     add one (`{}`) or write with mode = \"append\"",
                    key.join(", "),
                    db.unique_index_sql(t, &column_list(db, &key))
                ),
                t,
            ));
        }
    }
    Ok(prepared)
}
