//! Where a row came from: its number in the stream, and its file and line when the
//! source said.

use ferry_core::source::{Position, RowPositions};
use ferry_core::Error;

/// Where row `index` of a batch as read is: its number in the stream (`row N`, counting
/// rejected records too) and, when the source said, its file and line.
pub(super) fn row_position(at: Option<&RowPositions>, first_row: u64, index: usize) -> Position {
    let key = Some(format!("row {}", first_row + index as u64 + 1));
    at.and_then(|p| p.at(index, key.clone()))
        .unwrap_or(Position {
            key,
            ..Default::default()
        })
}

/// `e` about stream row `row` at `p`: its `row` (a place in a batch, or none) replaced by
/// the row's number in the stream, with the file and line it was read from.
pub(super) fn locate(e: Error, row: u64, p: &Position) -> Error {
    let mut out = if e.context_value("row").is_some() {
        let mut fresh = Error::new(e.kind(), e.message());
        for (k, v) in e.context().iter().filter(|(k, _)| *k != "row") {
            fresh = fresh.with(k, v);
        }
        fresh
    } else {
        e
    };
    if let Some(f) = &p.file {
        out = out.with("file", f);
    }
    if let Some(l) = p.line {
        out = out.with("line", l);
    }
    out.with("row", row)
}
