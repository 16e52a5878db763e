//! The columns a source adds to every row of a file, last and in this order: the file's
//! name (`file_column`) and the date in it (`name_date_column`).

use std::sync::Arc;

use ferry_core::arrow_array::{Date32Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::{file_column, Error, FerryType, Result};

use crate::mark::Listed;
use crate::options::StreamSpec;

/// The stream's schema: the files' columns, then the added ones.
pub(crate) fn extend(files: &SchemaRef, spec: &StreamSpec) -> Result<SchemaRef> {
    let mut schema = files.clone();
    if let Some(name) = &spec.file_column {
        schema = file_column::extend(&schema, name, &spec.name)?;
    }
    if let Some(name) = &spec.name_date_column {
        if name.trim().is_empty() || schema.field_with_name(name).is_ok() {
            return Err(Error::config(format!(
                "`name_date_column = \"{name}\"` must name a new column of stream `{}`: choose another name",
                spec.name
            )));
        }
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(FerryType::Date.field(name, false)));
        schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    }
    Ok(schema)
}

/// How many columns [`extend`] adds.
pub(crate) fn added(spec: &StreamSpec) -> usize {
    usize::from(spec.file_column.is_some()) + usize::from(spec.name_date_column.is_some())
}

/// The columns the files hold: `schema` without the `n` added last.
pub(crate) fn of_files(schema: &SchemaRef, n: usize) -> SchemaRef {
    let columns: Vec<usize> = (0..schema.fields().len().saturating_sub(n)).collect();
    Arc::new(schema.project(&columns).expect("the columns exist"))
}

/// `batch`, read from `file` (shown as `location`), with the added columns, as `schema`.
pub(crate) fn add(
    batch: RecordBatch,
    schema: &SchemaRef,
    spec: &StreamSpec,
    file: &impl Listed,
    location: &str,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns = batch.columns().to_vec();
    if spec.file_column.is_some() {
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(location, n),
        )));
    }
    if spec.name_date_column.is_some() {
        let date = spec.name_date.as_ref().and_then(|d| d.find(file.name()));
        let days = date
            .map(|d| d.days())
            .ok_or_else(|| Error::data(format!("`{}` has no date in its name", file.name())))?;
        columns.push(Arc::new(Date32Array::from_iter_values(
            std::iter::repeat_n(days, n),
        )));
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::internal(format!("cannot add the file's columns: {e}")))
}
