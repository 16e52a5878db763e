//! `file_column`: a text column naming the file (or object) each row was read from, for
//! sources that read many files into one stream. The column comes last: the files hold
//! every other column, and the source adds this one to each batch it reads.

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{Schema, SchemaRef};

use crate::types::FerryType;
use crate::{Error, Result};

/// `schema` (the files' columns) with the text column `name` last; an error when the files
/// already have a column of that name.
pub fn extend(schema: &SchemaRef, name: &str, stream: &str) -> Result<SchemaRef> {
    if name.trim().is_empty() {
        return Err(Error::config(
            "`file_column` is empty: name the column, e.g. `\"_ferry_source_file\"`",
        ));
    }
    if schema.field_with_name(name).is_ok() {
        return Err(Error::config(format!(
            "`file_column = \"{name}\"` names a column the files of stream `{stream}` already have: choose another name"
        )));
    }
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(FerryType::String.field(name, false)));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The columns the files hold: `schema` (made by [`extend`]) without its last column.
pub fn of_files(schema: &SchemaRef) -> SchemaRef {
    let columns: Vec<usize> = (0..schema.fields().len().saturating_sub(1)).collect();
    Arc::new(schema.project(&columns).expect("the columns exist"))
}

/// `batch` (read from `file`) with the file column added, as `schema` (made by [`extend`]).
pub fn add(batch: RecordBatch, schema: &SchemaRef, file: &str) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(
        std::iter::repeat_n(file, n),
    )));
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::internal(format!("cannot add the file column: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    #[test]
    fn extends_splits_and_fills() {
        let files = Arc::new(Schema::new(vec![FerryType::Int64.field("id", false)]));
        let full = extend(&files, "_ferry_source_file", "s").unwrap();
        assert_eq!(full.fields().len(), 2);
        assert_eq!(of_files(&full), files);
        let batch =
            RecordBatch::try_new(files.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let out = add(batch, &full, "in/a.csv").unwrap();
        let col = out
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!((col.value(0), col.value(1)), ("in/a.csv", "in/a.csv"));
        let e = extend(&files, "id", "s").unwrap_err().to_string();
        assert!(
            e.contains("`file_column = \"id\"`") && e.contains("stream `s`"),
            "{e}"
        );
        assert!(extend(&files, " ", "s").is_err());
    }
}
