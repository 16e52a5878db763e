//! Small checks the SQL connectors' own tests share, beside the suites of [`crate::sql`].

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::Schema;
use ferry_core::{Error, ErrorKind, FerryType, Sink, WriteMode};

/// Appends `batch` to `stream`, which the sink must refuse with an error of `kind`: the
/// error, for the caller to check what it says.
pub async fn append_refused(
    sink: &dyn Sink,
    stream: &str,
    batch: RecordBatch,
    kind: ErrorKind,
) -> Error {
    let e = crate::write_stream(sink, stream, WriteMode::Append, &[batch])
        .await
        .expect_err("the sink refuses the batch");
    assert_eq!(e.kind(), kind, "{e}");
    e
}

/// Checks that `e` is of `kind` and its message says `says`.
pub fn assert_error(e: &Error, kind: ErrorKind, says: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert!(e.message().contains(says), "{e}");
}

/// Appends [`crate::all_types_batch`] to `stream`, which the sink must take.
pub async fn append_all_types(sink: &dyn Sink, stream: &str) {
    let batch = crate::all_types_batch();
    crate::write_stream(sink, stream, WriteMode::Append, &[batch])
        .await
        .expect("the sink takes a batch of every type");
}

/// The columns of `schema` in one line, `name type` each (`not null` where so), as a
/// discovered schema is checked whole: `id int64 not null, name string`.
pub fn columns(schema: &Schema) -> String {
    let column = |f: &ferry_core::arrow_schema::Field| {
        let ty = FerryType::of(f).map_or_else(|| f.data_type().to_string(), |t| t.to_string());
        let null = if f.is_nullable() { "" } else { " not null" };
        format!("{} {ty}{null}", f.name())
    };
    let all: Vec<String> = schema.fields().iter().map(|f| column(f)).collect();
    all.join(", ")
}
