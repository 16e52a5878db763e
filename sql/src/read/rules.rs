//! Which columns a database reads incrementally by, and how it compares column names.

use ferry_core::cursor::Case;
use ferry_core::FerryType;

/// A database's rules for cursor columns.
pub trait Cursors {
    /// How the database compares column names.
    const CASE: Case;

    /// Whether column `index` (of Ferry type `ty`) can serve as a cursor: ordered by
    /// `ORDER BY` and compared by `>` the way its values are. `Err` says why not, as it
    /// reads after "cursor `x` is " (e.g. `"binary; a cursor must be int64 or string"`).
    fn supported(&self, index: usize, ty: FerryType) -> Result<(), String>;

    /// Whether discovery offers the column as a cursor (default: a supported int64,
    /// timestamp or date column, whose values grow with the rows).
    fn offered(&self, index: usize, ty: FerryType) -> bool {
        is_cursor_candidate(ty) && self.supported(index, ty).is_ok()
    }
}

/// Whether a column of this type is one discovery offers as a cursor: int64, timestamp
/// and date grow with the rows; a float64 or string column can still be named as one.
pub fn is_cursor_candidate(ty: FerryType) -> bool {
    matches!(
        ty,
        FerryType::Int64 | FerryType::Timestamp | FerryType::Date
    )
}
