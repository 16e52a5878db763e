//! The statement of a read: `<select> [WHERE <cursor> > <saved>] [ORDER BY <cursor>]
//! [LIMIT n]`, and the cursor column it is ordered by.

use ferry_core::arrow_schema::Field;
use ferry_core::{Error, ReadRequest, Result, StreamInfo};

/// The cursor column of an incremental read of `info`: the one `req` names, else the
/// stream's default; matched exactly, else ignoring case. Its index and field.
pub fn cursor_column<'a>(req: &ReadRequest, info: &'a StreamInfo) -> Result<(usize, &'a Field)> {
    let name = req.cursor.as_ref().or(info.default_cursor.as_ref()).ok_or_else(|| {
        Error::config(format!(
            "stream `{}` has no int64, timestamp or date column to read incrementally by; name a cursor column",
            req.stream
        ))
    })?;
    let fields = info.schema.fields();
    let index = fields
        .iter()
        .position(|f| f.name() == name)
        .or_else(|| {
            fields
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| {
            Error::config(format!(
                "cursor `{name}` is not a column of stream `{}`",
                req.stream
            ))
        })?;
    Ok((index, &fields[index]))
}

/// `select` with the rows after the saved cursor (`filter`, e.g. `"id" > ?`), in cursor
/// order (`order`, e.g. `"id"`), at most `limit` of them.
pub fn read_sql(
    select: String,
    filter: Option<&str>,
    order: Option<&str>,
    limit: Option<u64>,
) -> String {
    let mut sql = select;
    if let Some(f) = filter {
        sql.push_str(" WHERE ");
        sql.push_str(f);
    }
    if let Some(o) = order {
        sql.push_str(" ORDER BY ");
        sql.push_str(o);
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as u64)));
    }
    sql
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_core::arrow_schema::Schema;
    use ferry_core::FerryType;

    use super::*;

    #[test]
    fn the_cursor_is_the_named_one_else_the_default() {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Date.field("Day", true),
        ]);
        let info = StreamInfo::new("t", Arc::new(schema)).incremental(["id"]);
        let mut req = ReadRequest::incremental("t", None);
        assert_eq!(cursor_column(&req, &info).unwrap().0, 0);
        req.cursor = Some("day".into());
        assert_eq!(cursor_column(&req, &info).unwrap().1.name(), "Day");
        req.cursor = Some("at".into());
        let e = cursor_column(&req, &info).unwrap_err();
        assert_eq!(e.message(), "cursor `at` is not a column of stream `t`");
        let plain = StreamInfo::new("t", info.schema.clone());
        let e = cursor_column(&ReadRequest::incremental("t", None), &plain).unwrap_err();
        assert!(e.message().contains("name a cursor column"), "{e}");
    }

    #[test]
    fn the_statement_filters_orders_and_limits() {
        let s = read_sql(
            "SELECT a FROM t".into(),
            Some("a > ?"),
            Some("a"),
            Some(u64::MAX),
        );
        assert_eq!(
            s,
            format!("SELECT a FROM t WHERE a > ? ORDER BY a LIMIT {}", i64::MAX)
        );
        assert_eq!(read_sql("SELECT 1".into(), None, None, None), "SELECT 1");
    }
}
