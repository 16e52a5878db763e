//! How many rows a read would yield, for `ferry plan`: the optimizer's figure for a large
//! table (a `COUNT(*)` for a small one) on a full read, a `COUNT(*)` of the rows past the
//! saved cursor on an incremental one. Configured queries are not run to be counted.

use ferry_core::{Estimate, ReadMode, ReadRequest, Result, ResultExt};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{plan, Inner};
use crate::core::{self, quote, ConnSettings, MyResultExt};

/// Below this many rows (by the optimizer's estimate) a table is counted exactly.
const COUNT_BELOW: u64 = 100_000;

pub(super) async fn count(inner: &Inner, req: &ReadRequest) -> Result<Option<u64>> {
    Ok(estimate_rows(inner, req).await?.and_then(|e| e.rows))
}

/// The same figure, marked exact (a `COUNT(*)`) or not (the optimizer's).
pub(super) async fn estimate_rows(inner: &Inner, req: &ReadRequest) -> Result<Option<Estimate>> {
    if inner.cfg.queries.iter().any(|q| q.name == req.stream) {
        return Ok(None);
    }
    let s = &inner.conn;
    let mut conn = core::connect(s).await?;
    let plan = plan(inner, &mut conn, req).await?;
    let n = match (&plan.estimate, req.mode) {
        (Some((table, guess)), _) => Some(table_rows(&mut conn, s, table, *guess).await?),
        (None, ReadMode::Incremental) => {
            let sql = format!("SELECT COUNT(*) FROM ({}) AS `_ferry_count`", plan.sql);
            let n: Option<u64> = conn
                .exec_first(sql, plan.params.clone())
                .await
                .my(s)
                .ctx("stream", &req.stream)?;
            Some(Estimate::exact(n.unwrap_or(0)))
        }
        (None, ReadMode::FullRefresh) => None,
    };
    let _ = conn.disconnect().await;
    Ok(n.map(|e| e.limited(req.limit)))
}

/// The rows of `table`: the optimizer's `guess` for a large one, a `COUNT(*)` (exact)
/// for a small one.
pub(super) async fn table_rows(
    conn: &mut Conn,
    s: &ConnSettings,
    table: &str,
    guess: Option<u64>,
) -> Result<Estimate> {
    if let Some(n) = guess.filter(|n| *n >= COUNT_BELOW) {
        return Ok(Estimate {
            rows: Some(n),
            ..Estimate::default()
        });
    }
    let sql = format!(
        "SELECT COUNT(*) FROM {}.{}",
        quote(&s.database),
        quote(table)
    );
    let n: Option<u64> = conn.query_first(sql).await.my(s).ctx("table", table)?;
    Ok(Estimate::exact(n.unwrap_or(0)))
}
