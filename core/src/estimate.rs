//! How much a read would move, for `ferry plan`: an exact count or an estimate, told apart
//! so the plan never shows a guess as a count, and a "nothing to read" that is certain (so
//! `ferry plan` can exit 0 and gate a deployment). File-like sources estimate with
//! `ferry_formats::estimate`.

/// How much `Source::read` would yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    /// Rows, when known or estimated.
    pub rows: Option<u64>,
    /// Whether `rows` is a count (`COUNT(*)`, Parquet footers, nothing to read), not a guess.
    pub exact: bool,
    /// Files or objects the read would open, for file-like sources.
    pub files: Option<u64>,
    /// Their bytes as stored (compressed, encrypted), for file-like sources.
    pub bytes: Option<u64>,
}

impl Estimate {
    /// An exact row count.
    pub fn exact(rows: u64) -> Estimate {
        Estimate {
            rows: Some(rows),
            exact: true,
            ..Estimate::default()
        }
    }

    /// Certainly nothing: no file or object is new or changed.
    pub fn nothing() -> Estimate {
        Estimate {
            files: Some(0),
            bytes: Some(0),
            ..Estimate::exact(0)
        }
    }

    /// Whether the read certainly yields no row.
    pub fn is_nothing(&self) -> bool {
        self.exact && self.rows == Some(0)
    }

    /// At most `limit` rows (a `--limit`).
    pub fn limited(mut self, limit: Option<u64>) -> Estimate {
        if let (Some(l), Some(n)) = (limit, self.rows) {
            self.rows = Some(n.min(l));
        }
        self
    }
}
