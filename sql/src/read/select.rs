//! The statement of a read: `<select> [WHERE <cursor> > <saved>] [ORDER BY <cursor>]
//! [LIMIT n]`, and the cursor column it is ordered by.

use ferry_core::arrow_schema::{Field, Fields};
use ferry_core::cursor::{saved_cursor, Checkpointer, Cursor};
use ferry_core::{Error, ErrorKind, FerryType, ReadMode, ReadRequest, Result, StreamInfo};

use super::rules::Cursors;

/// The alias of a configured query in the statements that wrap it.
pub const QUERY_ALIAS: &str = "_ferry_q";

/// The cursor of an incremental read, decided before the first row.
#[derive(Debug, Clone)]
pub struct ReadCursor {
    /// The column's index in the stream's schema.
    pub index: usize,
    /// The column's name, as the schema spells it.
    pub name: String,
    /// The column's Ferry type.
    pub ty: FerryType,
    /// The value saved by the last run (as text): the read starts after it.
    pub after: Option<String>,
}

impl ReadCursor {
    /// The cursor of `req` on stream `info` (`None` for a full read): the column it
    /// names, else the stream's default, one `rules` supports, and the value saved in
    /// `req.state`, taken with the same column.
    pub fn of<R: Cursors>(
        req: &ReadRequest,
        info: &StreamInfo,
        rules: &R,
    ) -> Result<Option<ReadCursor>> {
        if req.mode != ReadMode::Incremental {
            return Ok(None);
        }
        let (index, field) = cursor_column(req, info)?;
        let name = field.name().clone();
        let ty = FerryType::of(field).unwrap_or(FerryType::String);
        if let Err(why) = rules.supported(index, ty) {
            let msg = format!("cursor `{name}` is {why}");
            return Err(Error::new(ErrorKind::Unsupported, msg));
        }
        let after = saved_cursor(req.state.as_ref(), &name, R::CASE)?;
        Ok(Some(ReadCursor {
            index,
            name,
            ty,
            after,
        }))
    }

    /// The checkpoints of a read by `cursor` (its value kept by `keeper`), or of a full
    /// read (rows read so far) without one.
    pub fn checkpointer<C: Cursor>(
        cursor: Option<&ReadCursor>,
        keeper: impl FnOnce(&ReadCursor) -> C,
    ) -> Checkpointer<C> {
        match cursor {
            Some(c) => Checkpointer::cursor(c.index, &c.name, keeper(c)),
            None => Checkpointer::rows(),
        }
    }
}

/// The cursor column of an incremental read of `info`: the one `req` names, else the
/// stream's default; matched exactly, else ignoring case. Its index and field.
fn cursor_column<'a>(req: &ReadRequest, info: &'a StreamInfo) -> Result<(usize, &'a Field)> {
    let name = info.cursor(req.cursor.as_deref()).ok_or_else(|| {
        Error::config(format!(
            "stream `{}` has no int64, timestamp or date column to read incrementally by; name a cursor column",
            req.stream
        ))
    })?;
    let fields = info.schema.fields();
    let index = field_index(fields, name).ok_or_else(|| {
        Error::config(format!(
            "cursor `{name}` is not a column of stream `{}`",
            req.stream
        ))
    })?;
    Ok((index, &fields[index]))
}

/// The index of the field named `name`: matched exactly, else ignoring case.
pub fn field_index(fields: &Fields, name: &str) -> Option<usize> {
    let exact = fields.iter().position(|f| f.name() == name);
    exact.or_else(|| {
        fields
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(name))
    })
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
    use ferry_core::cursor::Case;

    use super::*;

    /// Int64 cursors only; `EXACT`: column names as written.
    struct Int64<const EXACT: bool>;

    impl<const EXACT: bool> Cursors for Int64<EXACT> {
        const CASE: Case = if EXACT { Case::Exact } else { Case::Ignore };
        fn supported(&self, _: usize, ty: FerryType) -> std::result::Result<(), String> {
            match ty {
                FerryType::Int64 => Ok(()),
                ty => Err(format!("{ty}; a cursor must be int64")),
            }
        }
    }

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
    fn an_incremental_read_takes_the_saved_value_of_its_cursor() {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Binary.field("blob", true),
        ]);
        let info = StreamInfo::new("t", Arc::new(schema)).incremental(["id"]);
        let full = ReadRequest::full("t");
        assert!(ReadCursor::of(&full, &info, &Int64::<true>)
            .unwrap()
            .is_none());
        let state = serde_json::json!({ "cursor": "41", "column": "ID" });
        let req = ReadRequest::incremental("t", Some(state));
        let c = ReadCursor::of(&req, &info, &Int64::<false>)
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.index, c.name.as_str(), c.ty),
            (0, "id", FerryType::Int64)
        );
        assert_eq!(c.after.as_deref(), Some("41"));
        assert!(ReadCursor::of(&req, &info, &Int64::<true>).is_err());
        let mut blob = ReadRequest::incremental("t", None);
        blob.cursor = Some("blob".into());
        let e = ReadCursor::of(&blob, &info, &Int64::<true>).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(
            e.message(),
            "cursor `blob` is binary; a cursor must be int64"
        );
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
