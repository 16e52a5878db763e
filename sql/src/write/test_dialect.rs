//! A plain dialect for the unit tests: ANSI quoting, Ferry's type names.

use ferry_core::sink::NameMatch;
use ferry_core::FerryType;

use super::dialect::{Dialect, KeyPart};
use super::naming::Staging;

pub(crate) struct Plain;

impl Dialect for Plain {
    type Type = FerryType;

    fn system(&self) -> &'static str {
        "Plain"
    }

    fn names(&self) -> NameMatch {
        NameMatch::AsciiCaseless
    }

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
