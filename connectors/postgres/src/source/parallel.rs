//! Parallel full reads: a stream's rows split by ranges of an integer key, each range
//! read by its own `COPY` over its own connection, all in one snapshot.
//!
//! One `COPY` runs in one server process, so a large table reads at the speed of one
//! core; N ranges read at once use N. A first connection opens a `REPEATABLE READ`
//! transaction, exports its snapshot (`pg_export_snapshot()`, as `pg_dump --jobs`
//! does), finds the split points and keeps the snapshot alive until every range's
//! connection has imported it (`SET TRANSACTION SNAPSHOT`): the ranges together see
//! exactly the rows one serial read would, even while others write.
//!
//! Split points come from the planner's histogram of the column (`pg_stats`, equal row
//! counts per range, so skewed keys still split evenly), else evenly over
//! `min`..`max`. The first range is open below and also takes the NULL keys, the last
//! is open above, so stale statistics make ranges uneven but never lose a row.
//!
//! Checkpoints: the ranges' rows arrive interleaved, so there is no position to resume
//! from. Like every full refresh, the checkpoints carry `{"rows": n}` (rows so far):
//! they mark points where the destination may flush, not a place to restart; a failed
//! parallel read is read again from the start. Incremental reads are never split.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferry_core::channel;
use ferry_core::{Error, ErrorKind, Message, MessageStream, ReadMode, ReadRequest, Result};
use ferry_sql::read as sql;
use futures::StreamExt;
use tokio_postgres::{Client, CopyOutStream};

use super::{
    copy_sql, estimate, plan, resolve, run_copy, snapshot, Inner, Origin, ReadPlan, Stream,
};
use crate::config::ParallelRead;
use crate::core::{self, literal, retry, within, PgResultExt};
use crate::types::PgKind;

type Started = (Client, Pin<Box<CopyOutStream>>, Option<Bytes>);

/// The split decided by the first connection, which holds the exported snapshot.
struct Prepared {
    client: Client,
    plan: ReadPlan,
    snapshot: String,
    /// The `WHERE` condition of each range (`None`: the whole stream).
    ranges: Vec<Option<String>>,
    column: String,
}

/// Starts a parallel full read of `req.stream`, or returns `None` when the stream
/// cannot be split (no integer key to split by: logged), so the caller reads serially.
pub(super) async fn read(
    inner: &Arc<Inner>,
    req: &ReadRequest,
    p: &ParallelRead,
) -> Result<Option<MessageStream>> {
    let s = &inner.pg.settings;
    let what = "planning the parallel read";
    let Some(prep) = retry(|| within(s, what, prepare(inner, req, p))).await? else {
        return Ok(None);
    };
    let n = prep.ranges.len();
    tracing::info!(
        "stream `{}`: reading {n} range{} of `{}` in parallel",
        req.stream,
        if n == 1 { "" } else { "s" },
        prep.column
    );
    // every range's connection imports the snapshot before the first one lets it go
    let opened = futures::future::try_join_all(prep.ranges.iter().map(|cond| {
        let sql = match cond {
            Some(c) => copy_sql(&format!("{} WHERE {c}", prep.plan.select_sql)),
            None => prep.plan.copy_sql.clone(),
        };
        let snapshot = prep.snapshot.clone();
        let what = "starting a range's COPY";
        async move { retry(|| within(s, what, open_range(inner, &snapshot, &sql))).await }
    }))
    .await?;
    let _ = tokio::time::timeout(s.read_timeout, prep.client.batch_execute("ROLLBACK")).await;
    drop(prep.client);

    let (tx, rx) = channel::channel(channel::CAPACITY);
    let (wtx, mut wrx) = channel::channel(channel::CAPACITY * n);
    let done = Arc::new(AtomicUsize::new(0));
    let batch_size = req.batch_size.max(1);
    for (i, (client, copy, first)) in opened.into_iter().enumerate() {
        let range_plan = ReadPlan {
            stream: prep.plan.stream.clone(),
            schema: prep.plan.schema.clone(),
            kinds: prep.plan.kinds.clone(),
            select_sql: String::new(),
            from_sql: String::new(),
            column_sql: Vec::new(),
            copy_sql: String::new(),
            row_label: format!("{} range {} of {n}", prep.plan.stream, i + 1),
            checkpoints: false,
            cursor: None,
            estimate: None,
            limit: None,
        };
        let (inner, wtx, done) = (inner.clone(), wtx.clone(), done.clone());
        tokio::spawn(async move {
            if run_copy(&inner, client, &range_plan, copy, first, batch_size, &wtx).await {
                // counted before `wtx` goes, so the merger sees it when the channel ends
                done.fetch_add(1, Ordering::SeqCst);
            }
            drop(wtx);
        });
    }
    drop(wtx);
    let estimate = prep.plan.estimate;
    let stream = req.stream.clone();
    tokio::spawn(async move {
        if let Some((n, exact)) = estimate {
            if !tx
                .send(ferry_sql::read::expected_rows(n, exact, None))
                .await
            {
                return;
            }
        }
        let mut rows: u64 = 0;
        while let Some(m) = wrx.next().await {
            match m {
                Ok(Message::Batch(b)) => {
                    rows += b.num_rows() as u64;
                    // a flush point, not a resume position (see the module docs)
                    let state = serde_json::json!({ "rows": rows });
                    if !tx
                        .send_all([Message::Batch(b), Message::Checkpoint(state)])
                        .await
                    {
                        return;
                    }
                }
                Ok(other) => {
                    if !tx.send(other).await {
                        return;
                    }
                }
                Err(e) => {
                    // dropping `wrx` on return stops the other ranges
                    tx.fail(e).await;
                    return;
                }
            }
        }
        if done.load(Ordering::SeqCst) == n {
            let _ = tx
                .send(Message::Checkpoint(serde_json::json!({ "rows": rows })))
                .await;
        } else {
            tx.fail(Error::internal(format!(
                "stream `{stream}`: a range's reader stopped before its end; the read is incomplete"
            )))
            .await;
        }
    });
    Ok(Some(rx))
}

/// Opens the first connection's snapshot, plans the read and finds the ranges.
async fn prepare(inner: &Inner, req: &ReadRequest, p: &ParallelRead) -> Result<Option<Prepared>> {
    let s = &inner.pg.settings;
    let client = snapshot(inner).await?;
    let stream = resolve(inner, &client, &req.stream).await?;
    let Some(index) = split_column(&stream, p)? else {
        return Ok(None);
    };
    let mut plan = plan(&stream, req)?;
    debug_assert_eq!(req.mode, ReadMode::FullRefresh);
    if let Origin::Table(rel) = &stream.origin {
        plan.estimate = estimate(&client, rel, s, inner.exact_count).await?;
    }
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .pg(s)?
        .get(0);
    let column = plan.schema.field(index).name().clone();
    let c = &plan.column_sql[index];
    let row = client
        .query_one(
            &format!(
                "SELECT min({c})::int8, max({c})::int8 FROM {}",
                plan.from_sql
            ),
            &[],
        )
        .await
        .pg(s)?;
    let bounds: (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
    let histogram = match &stream.origin {
        Origin::Table(rel) => {
            let rows = client
                .query(
                    "SELECT histogram_bounds::text::int8[] FROM pg_stats \
                     WHERE schemaname = $1 AND tablename = $2 AND attname = $3 \
                     AND histogram_bounds IS NOT NULL ORDER BY inherited DESC LIMIT 1",
                    &[&rel.schema, &rel.name, &column],
                )
                .await
                .pg(s)?;
            rows.first().map(|r| r.get::<_, Vec<i64>>(0))
        }
        Origin::Query(_) => None,
    };
    let partitions = usize::from(p.partitions);
    let points = match bounds {
        (Some(min), Some(max)) => split_points(min, max, histogram.as_deref(), partitions),
        // no rows, or only NULL keys: one range reads them
        _ => Vec::new(),
    };
    Ok(Some(Prepared {
        client,
        ranges: range_conditions(c, &points),
        plan,
        snapshot,
        column,
    }))
}

/// Connects, imports the snapshot, starts the range's COPY and waits for its first data.
async fn open_range(inner: &Inner, snapshot: &str, sql: &str) -> Result<Started> {
    let s = &inner.pg.settings;
    let client = inner.pg.connect().await?;
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            literal(snapshot)
        ))
        .await
        .pg(s)?;
    let mut copy = Box::pin(client.copy_out(sql).await.pg(s)?);
    let first = match copy.next().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(e)) => return Err(core::map_err(e, s)),
        None => None,
    };
    Ok((client, copy, first))
}

/// The index of the column to split by: the configured `column` (which must be an
/// integer), else a primary key of one integer column; `None` (logged) without one.
fn split_column(stream: &Stream, p: &ParallelRead) -> Result<Option<usize>> {
    let fields = stream.info.schema.fields();
    let integer = |i: usize| {
        matches!(
            stream.types[i].kind,
            PgKind::Int2 | PgKind::Int4 | PgKind::Int8
        )
    };
    match &p.column {
        Some(name) => {
            let i = sql::field_index(fields, name).ok_or_else(|| {
                let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
                Error::config(format!(
                    "`parallel`: column `{name}` is not a column of stream `{}` (it has: {})",
                    stream.info.name,
                    names.join(", ")
                ))
            })?;
            if !integer(i) {
                return Err(Error::new(
                    ErrorKind::ConfigInvalid,
                    format!(
                        "`parallel`: column `{name}` of stream `{}` is {}; key ranges need an \
                         integer column (smallint, integer or bigint)",
                        stream.info.name, stream.types[i].sql
                    ),
                ));
            }
            Ok(Some(i))
        }
        None => {
            let key = &stream.info.primary_key;
            let found = match key.as_slice() {
                [k] => fields
                    .iter()
                    .position(|f| f.name() == k)
                    .filter(|&i| integer(i)),
                _ => None,
            };
            if found.is_none() {
                tracing::warn!(
                    "stream `{}`: `parallel` needs an integer column to split by and the \
                     stream's primary key is {}; reading serially (name one with `column`)",
                    stream.info.name,
                    if key.is_empty() {
                        "missing".to_string()
                    } else {
                        format!("`{}`", key.join(", "))
                    }
                );
            }
            Ok(found)
        }
    }
}

/// The split points of `n` ranges of keys from `min` to `max`: at the quantiles of the
/// planner's histogram when it has one (ranges of about equal rows), else evenly
/// spaced. Strictly increasing, each in `min + 1 ..= max`; fewer when the keys are few.
pub(super) fn split_points(min: i64, max: i64, histogram: Option<&[i64]>, n: usize) -> Vec<i64> {
    let mut points: Vec<i64> = match histogram {
        Some(h) if h.len() >= 2 => {
            let buckets = h.len() - 1;
            (1..n).map(|k| h[(k * buckets + n / 2) / n]).collect()
        }
        _ => {
            let span = i128::from(max) - i128::from(min);
            if span < n as i128 {
                // fewer keys than ranges: one key per range
                return (min.saturating_add(1)..=max).take(n - 1).collect();
            }
            (1..n)
                .map(|k| (i128::from(min) + span * k as i128 / n as i128) as i64)
                .collect()
        }
    };
    points.retain(|&p| p > min && p <= max);
    points.sort_unstable();
    points.dedup();
    points
}

/// The `WHERE` condition of each range cut at `points` (ascending): the first takes
/// everything below the first point and the NULL keys, the last everything from the
/// last point up.
pub(super) fn range_conditions(column: &str, points: &[i64]) -> Vec<Option<String>> {
    if points.is_empty() {
        return vec![None];
    }
    let mut out = vec![Some(format!(
        "({column} < {} OR {column} IS NULL)",
        points[0]
    ))];
    for w in points.windows(2) {
        out.push(Some(format!(
            "{column} >= {} AND {column} < {}",
            w[0], w[1]
        )));
    }
    out.push(Some(format!("{column} >= {}", points[points.len() - 1])));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_without_statistics() {
        assert_eq!(split_points(1, 100, None, 4), vec![25, 50, 75]);
        assert_eq!(split_points(5, 5, None, 4), Vec::<i64>::new());
        assert_eq!(split_points(1, 3, None, 8), vec![2, 3]);
        // the whole int8 range does not overflow
        let p = split_points(i64::MIN, i64::MAX, None, 4);
        assert_eq!(p.len(), 3);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn skewed_keys_split_at_the_histogram_quantiles() {
        // 100 buckets: 90 hold keys 1..=900, the last 10 reach to 10^12
        let mut h: Vec<i64> = (0..=90).map(|i| 1 + i * 10).collect();
        h.extend((1..=10).map(|i| i * 100_000_000_000));
        let p = split_points(1, 1_000_000_000_000, Some(&h), 4);
        assert_eq!(p.len(), 3);
        // equal buckets per range: the first three ranges are within the dense keys
        assert!(p.iter().all(|&x| x <= 901), "{p:?}");
        // evenly spaced would put three quarters of the keys' span past them
        assert!(split_points(1, 1_000_000_000_000, None, 4)[0] > 1_000_000);
    }

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(range_conditions("\"id\"", &[]), vec![None]);
        let r = range_conditions("\"id\"", &[10, 20]);
        assert_eq!(
            r,
            vec![
                Some("(\"id\" < 10 OR \"id\" IS NULL)".to_string()),
                Some("\"id\" >= 10 AND \"id\" < 20".to_string()),
                Some("\"id\" >= 20".to_string()),
            ]
        );
    }
}
