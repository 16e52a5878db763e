//! What every writer checks of the schema it is made for and of each batch it is given.

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use ferry_core::types::{check_schema, FerryType};
use ferry_core::{Error, ErrorKind, Result};

/// The Ferry type of each of `schema`'s columns; an error when one has none.
pub(crate) fn column_types(schema: &Schema) -> Result<Vec<FerryType>> {
    check_schema(schema)?;
    Ok(schema
        .fields()
        .iter()
        .filter_map(|f| FerryType::of(f))
        .collect())
}

/// Refuses a batch whose column count is not the `columns` of the `writer` (`CSV`).
pub(crate) fn check_width(batch: &RecordBatch, columns: usize, writer: &str) -> Result<()> {
    if batch.num_columns() != columns {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "batch has {} columns, the {writer} writer {columns}",
                batch.num_columns()
            ),
        ));
    }
    Ok(())
}
