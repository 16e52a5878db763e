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

/// `Ok` where `ty` is of one of `kinds` (`"decimal"` for any precision and scale), else
/// why not, as [`Cursors::supported`] says it: `"binary; a cursor must be int64 or string"`.
pub fn cursor_kinds(ty: FerryType, kinds: &[&str]) -> Result<(), String> {
    let name = ty.to_string();
    let kind = name.split('(').next().unwrap_or_default();
    if kinds.contains(&kind) {
        return Ok(());
    }
    let list = match kinds {
        [init @ .., last] if !init.is_empty() => format!("{} or {last}", init.join(", ")),
        _ => kinds.join(""),
    };
    Err(format!("{ty}; a cursor must be {list}"))
}

#[cfg(test)]
mod tests {
    use super::cursor_kinds;
    use ferry_core::FerryType;

    #[test]
    fn kinds_match_by_name_and_refusals_list_them() {
        let dec = FerryType::Decimal {
            precision: 20,
            scale: 0,
        };
        assert_eq!(cursor_kinds(dec, &["int64", "decimal"]), Ok(()));
        assert_eq!(
            cursor_kinds(FerryType::Binary, &["int64", "date", "string"]),
            Err("binary; a cursor must be int64, date or string".into())
        );
        assert_eq!(
            cursor_kinds(dec, &["int64"]),
            Err("decimal(20,0); a cursor must be int64".into())
        );
    }
}
