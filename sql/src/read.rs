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
