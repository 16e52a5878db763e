//! Opening a stream's destination, written once: the request checked, then, through
//! the database's [`Driver`], the table created or fitted to the stream (append,
//! upsert), or a fresh staging table made for an overwrite after the leftovers of
//! crashed overwrites are dropped.

use ferry_core::catalog::DELETED_AT;
use ferry_core::sink::WriteRequest;
use ferry_core::{Deletes, FerryType, Result, WriteMode};

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
    let key = req.check(D::SYSTEM, D::NAMES)?;
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
    if req.deletes == Some(Deletes::Soft) {
        // soft deletes mark rows in a column of the table's own, added once
        let marked = existing.as_ref().is_some_and(|t| {
            let lookup = db.lookup();
            t.columns.iter().any(|c| lookup.same(&c.name, DELETED_AT))
        });
        if !marked {
            let add = [(DELETED_AT.to_string(), FerryType::Timestamp)];
            for sql in add_columns(db, &table, &add) {
                db.execute(&sql).await?;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::dialect::Existing;
    use crate::write::test_dialect::Fake;
    use ferry_core::arrow_schema::Schema;
    use ferry_core::types::with_keys;
    use ferry_core::{ErrorKind, FerryType};
    use futures::FutureExt;

    const RUN: &str = "20240501T120000Z-1a2b3c";

    fn request(mode: WriteMode, nullable_note: bool) -> WriteRequest {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("note", nullable_note),
        ]);
        WriteRequest {
            stream: "orders".into(),
            schema: with_keys(&schema, &["id".to_string()], None),
            mode,
            run_id: RUN.into(),
            deletes: None,
        }
    }

    fn run(db: &mut Fake, req: &WriteRequest) -> Result<Prepared<FerryType>> {
        prepare(db, req)
            .now_or_never()
            .expect("the fake answers at once")
    }

    #[test]
    fn overwrite_drops_crashed_staging_tables_and_stages_anew() {
        let mut db = Fake::default();
        for t in [
            "orders",
            "_ferry_stage_orders_20230101T000000Z-abcdef",
            "_ferry_stage_orders_x_20230101T000000Z-abcdef",
        ] {
            db.tables.insert(t.into(), vec![]);
        }
        let ready = run(&mut db, &request(WriteMode::Overwrite, true)).unwrap();
        let staging = format!("_ferry_stage_orders_{RUN}");
        assert_eq!(ready.write_to(), staging);
        assert_eq!(ready.table, "orders");
        let names: Vec<&String> = db.tables.keys().collect();
        assert_eq!(
            names,
            [
                &staging,
                "_ferry_stage_orders_x_20230101T000000Z-abcdef",
                "orders"
            ]
        );
        // a second stream of the run overwriting the same table is refused
        let e = run(&mut db, &request(WriteMode::Overwrite, true)).unwrap_err();
        assert!(e.message().contains("already being overwritten"), "{e}");
    }

    #[test]
    fn append_creates_or_fits_and_upsert_needs_a_unique_key() {
        let mut db = Fake::default();
        let ready = run(&mut db, &request(WriteMode::Append, true)).unwrap();
        assert!(
            db.log[0].starts_with("CREATE TABLE \"orders\""),
            "{:?}",
            db.log
        );
        assert!(ready.columns.iter().all(|c| c.existing.is_none()));
        let id = Existing {
            name: "ID".into(),
            required: true,
            generated: false,
            ty: FerryType::Int64,
        };
        db.tables.insert("orders".into(), vec![id]);
        let ready = run(&mut db, &request(WriteMode::Append, true)).unwrap();
        assert_eq!(ready.names(), ["ID", "note"]);
        assert_eq!(
            db.log.last().unwrap(),
            "ALTER TABLE \"orders\" ADD COLUMN \"note\" string"
        );
        let upsert = request(WriteMode::Upsert, true);
        let e = run(&mut db, &upsert).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
        assert!(
            e.message().contains("(ID) of table `orders`")
                && e.message().contains("CREATE UNIQUE INDEX"),
            "{e}"
        );
        db.unique.push("orders".into());
        assert_eq!(run(&mut db, &upsert).unwrap().table_key(&upsert), ["ID"]);
        // a required column the table lacks is refused before anything changes
        let before = db.log.len();
        let e = run(&mut db, &request(WriteMode::Append, false)).unwrap_err();
        assert!(e.message().contains("never NULL"), "{e}");
        assert_eq!(db.log.len(), before);
    }

    #[test]
    fn requests_are_checked_first() {
        let mut db = Fake::default();
        let mut req = request(WriteMode::Append, true);
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Int64.field("ID", true),
        ]);
        req.schema = std::sync::Arc::new(schema);
        let e = run(&mut db, &req).unwrap_err();
        assert!(
            e.message()
                .contains("differ only in case, which Plain cannot"),
            "{e}"
        );
        assert!(db.log.is_empty());
    }
}
