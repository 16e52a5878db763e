//! Rows of a batch as JSON objects: what quarantine files, failed samples and `--dry-run`
//! show. Below the transforms, the checks and the runtime, which all use it.

use arrow_array::RecordBatch;

use ferry_core::types::FerryType;
use ferry_core::values::to_json;

/// One row as a JSON object (for quarantine files).
pub fn row_json(batch: &RecordBatch, r: usize) -> serde_json::Value {
    let schema = batch.schema();
    let mut m = serde_json::Map::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let ty = FerryType::of(f).unwrap_or(FerryType::String);
        m.insert(f.name().clone(), to_json(batch.column(i).as_ref(), ty, r));
    }
    serde_json::Value::Object(m)
}
