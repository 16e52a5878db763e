//! For the unit tests: a plain dialect (ANSI quoting, Ferry's type names), and a fake
//! driver over a catalog in memory.

use std::collections::BTreeMap;

use ferry_core::sink::NameMatch;
use ferry_core::{FerryType, Result};

use super::dialect::{Dialect, Driver, Existing, KeyPart, Table};
use super::naming::Staging;

pub(crate) struct Plain;

impl Dialect for Plain {
    type Type = FerryType;

    const SYSTEM: &'static str = "Plain";
    const NAMES: NameMatch = NameMatch::AsciiCaseless;

    fn quote(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    fn column_type(&self, ty: FerryType, key: KeyPart) -> String {
        match key {
            KeyPart::No => ty.to_string(),
            _ => format!("{ty} key"),
        }
    }

    fn takes(&self, column: &FerryType, ty: FerryType) -> bool {
        *column == ty
    }

    fn describe(&self, column: &FerryType) -> String {
        column.to_string()
    }

    fn unique_index_sql(&self, table: &str, columns: &str) -> String {
        format!("CREATE UNIQUE INDEX ON {} ({columns})", self.quote(table))
    }

    fn staging(&self, table: &str, run_id: &str) -> Staging {
        Staging::by_run_id(table, run_id, None)
    }
}

/// A catalog in memory that runs the few statements the shared code sends, and logs them.
#[derive(Default)]
pub(crate) struct Fake {
    pub tables: BTreeMap<String, Vec<Existing<FerryType>>>,
    /// Rows of the owner table.
    pub owner: Vec<String>,
    /// Tables with a unique key, for upserts.
    pub unique: Vec<String>,
    pub log: Vec<String>,
}

/// The quoted name at the start of `s`.
fn name(s: &str) -> String {
    let rest = &s[1..];
    rest[..rest.find('"').expect("a quoted name")].to_string()
}

impl Dialect for Fake {
    type Type = FerryType;

    const SYSTEM: &'static str = Plain::SYSTEM;
    const NAMES: NameMatch = Plain::NAMES;

    fn quote(&self, name: &str) -> String {
        Plain.quote(name)
    }

    fn column_type(&self, ty: FerryType, key: KeyPart) -> String {
        Plain.column_type(ty, key)
    }

    fn takes(&self, column: &FerryType, ty: FerryType) -> bool {
        Plain.takes(column, ty)
    }

    fn describe(&self, column: &FerryType) -> String {
        Plain.describe(column)
    }

    fn unique_index_sql(&self, table: &str, columns: &str) -> String {
        Plain.unique_index_sql(table, columns)
    }

    fn staging(&self, table: &str, run_id: &str) -> Staging {
        Plain.staging(table, run_id)
    }
}

impl Driver for Fake {
    async fn execute_count(&mut self, sql: &str) -> Result<u64> {
        self.log.push(sql.to_string());
        Ok(0)
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.log.push(sql.to_string());
        if let Some(rest) = sql
            .strip_prefix("CREATE TABLE IF NOT EXISTS ")
            .or(sql.strip_prefix("CREATE TABLE "))
        {
            self.tables.entry(name(rest)).or_default();
        } else if let Some(rest) = sql.strip_prefix("DROP TABLE IF EXISTS ") {
            self.tables.remove(&name(rest));
        } else if sql.starts_with("INSERT INTO \"_ferry_owner\"") && self.owner.is_empty() {
            let value = &sql[sql.find("SELECT '").expect("a literal") + 8
                ..sql.find("' WHERE").expect("a literal")];
            self.owner.push(value.replace("''", "'"));
        }
        Ok(())
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<String>> {
        self.log.push(sql.to_string());
        Ok(self.owner.first().cloned())
    }

    async fn table(&mut self, name: &str) -> Result<Option<Table<FerryType>>> {
        let found = self
            .tables
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        Ok(found.map(|(n, columns)| Table {
            name: n.clone(),
            columns: columns.clone(),
        }))
    }

    async fn tables_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .tables
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn has_unique_key(&mut self, table: &str, _key: &[String]) -> Result<bool> {
        Ok(self.unique.iter().any(|t| t == table))
    }
}
