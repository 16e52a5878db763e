//! Reading: the `Query` streams of a config, the description of a stream (cursor
//! candidates), the statement of a read (`... WHERE cursor > ? ORDER BY cursor`), and the
//! pump that turns its rows into batches, tie-safe checkpoints and rejected rows.

mod columns;
mod pump;
mod query;
mod rules;
mod select;
mod stream;

pub use columns::{utf8, Col, ReadColumns, RowValues};
pub use pump::{expected_rows, RowPump};
pub use query::{
    check_streams, clean_sql, invalid_query, query_columns, Query, QueryColumns, QueryTypes,
};
pub use rules::{cursor_kinds, is_cursor_candidate, Cursors};
pub use select::{field_index, read_sql, ReadCursor, QUERY_ALIAS};
pub use stream::{catalog, listing, no_relation, stream_info, unique_names};

/// A SQL source's [`ferry_core::Source::read_keys`]: a full read's key columns (every
/// column is read; a keys-only `SELECT` is to come).
pub async fn read_keys<S: ferry_core::Source + ?Sized>(
    source: &S,
    stream: &str,
    key: &[String],
    batch_size: usize,
) -> ferry_core::Result<ferry_core::MessageStream> {
    let mut request = ferry_core::ReadRequest::full(stream);
    request.batch_size = batch_size;
    let all = source.read(request).await?;
    Ok(ferry_core::source::keys_only(all, key))
}
