//! How many rows a read would yield, for `ferry plan`: the planner's figure (or a
//! `count(*)` of a small table) for a full read, an exact `count(*)` of the rows past
//! the saved cursor for an incremental one. Only the planner's figure is an estimate.
//! Configured queries are not run to be counted.

use ferry_core::{Error, Estimate, ReadMode, ReadRequest, Result};

use super::{estimate, plan, resolve, within, Inner, Origin};
use crate::core::PgResultExt;

pub(super) async fn count(inner: &Inner, req: &ReadRequest) -> Result<Option<u64>> {
    Ok(estimate_rows(inner, req).await?.and_then(|e| e.rows))
}

/// The same figure, marked exact (a `count(*)`) or not (the planner's).
pub(super) async fn estimate_rows(inner: &Inner, req: &ReadRequest) -> Result<Option<Estimate>> {
    let s = &inner.pg.settings;
    within(s, "counting the rows to read", async {
        let client = inner.pg.connect().await?;
        let stream = resolve(inner, &client, &req.stream).await?;
        let Origin::Table(rel) = &stream.origin else {
            return Ok(None);
        };
        let n = match req.mode {
            ReadMode::FullRefresh => {
                estimate(&client, rel, s, inner.exact_count)
                    .await?
                    .map(|(n, exact)| Estimate {
                        rows: Some(n),
                        exact,
                        ..Estimate::default()
                    })
            }
            ReadMode::Incremental => {
                let read = plan(&stream, req)?;
                let row = client
                    .query_one(
                        &format!("SELECT count(*) FROM ({}) AS _ferry_count", read.select_sql),
                        &[],
                    )
                    .await
                    .pg(s)?;
                Some(Estimate::exact(row.get::<_, i64>(0).max(0) as u64))
            }
        };
        Ok::<_, Error>(n.map(|e| e.limited(req.limit)))
    })
    .await
}
