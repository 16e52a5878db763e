//! The SQL source checks: ties on the cursor, estimates and limits, custom queries.

use std::sync::Arc;

use super::SqlFixture;
use crate::{
    id_v_batch, ids, messages, read_all, read_refused, rows, source_reads_match_discover, Row,
    SourceFixture,
};
use ferry_core::catalog::StreamInfo;
use ferry_core::source::{Message, ReadRequest, Source};
use ferry_core::types::FerryType;
use ferry_core::ErrorKind;

/// With the cursor `v` at 1, 2, 2, 2, 3, 3, 4 read two rows a batch (the run of 2s spans
/// a batch boundary): checkpoints come only where the cursor changes, each covers
/// exactly the rows up to it, resuming from each yields exactly the rows after it, and a
/// state of another cursor column is refused.
pub async fn incremental_ties_are_never_split_or_repeated<F: SqlFixture>(f: &F) {
    let all = [(1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (6, 3), (7, 4)];
    let source = f.create("ties", &id_v_batch(&all)).await.unwrap();
    let mut req = ReadRequest::incremental("ties", None);
    req.cursor = Some("v".into());
    req.batch_size = 2;
    let msgs = messages(source.as_ref(), req.clone()).await;
    let mut emitted: Vec<i64> = Vec::new();
    let mut checkpoints = Vec::new();
    for m in &msgs {
        match m {
            Message::Batch(b) => emitted.extend(ids(std::slice::from_ref(b))),
            Message::Checkpoint(s) => {
                let c: i64 = s["cursor"].as_str().unwrap().parse().unwrap();
                assert_eq!(s["column"], "v");
                // everything up to and including c is out, nothing after it
                let want: Vec<i64> = all.iter().filter(|p| p.1 <= c).map(|p| p.0).collect();
                let mut got = emitted.clone();
                got.sort();
                assert_eq!(
                    got, want,
                    "checkpoint {c} does not cover exactly the rows with v <= {c}"
                );
                checkpoints.push(c);
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert_eq!(
        checkpoints,
        vec![2, 3, 4],
        "checkpoints only where the cursor changes, and one at the end"
    );
    assert_eq!(emitted.len(), all.len());
    // resuming from every checkpoint yields exactly the rows after it
    for c in checkpoints {
        let mut resume = req.clone();
        resume.state = Some(serde_json::json!({ "cursor": c.to_string(), "column": "v" }));
        let mut got = ids(&read_all(source.as_ref(), resume).await);
        let want: Vec<i64> = all.iter().filter(|p| p.1 > c).map(|p| p.0).collect();
        if !f.orders_ties_by_key() {
            got.sort();
        }
        assert_eq!(got, want, "resume from {c}");
    }
    // a state taken with another cursor is refused, not misread
    let mut other = req.clone();
    other.state = Some(serde_json::json!({ "cursor": "3", "column": "id" }));
    let e = read_refused(source.as_ref(), other).await;
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
}

/// A read announces how many rows it brings (a limited read: the limit), `--limit` stops
/// there, an unknown stream is `NotFound` listing what exists, and a listed table that
/// does not exist is `NotFound` naming it.
pub async fn estimate_limit_and_missing_things<F: SqlFixture>(f: &F) {
    let pairs: Vec<(i64, i64)> = (1..=10).map(|i| (i, i)).collect();
    let source = f.create("ten", &id_v_batch(&pairs)).await.unwrap();
    let estimate = |msgs: &[Message]| {
        msgs.iter().find_map(|m| match m {
            Message::Estimate(n) => Some(*n),
            Message::Total(n) if f.counts_whole_reads() => Some(*n),
            _ => None,
        })
    };
    let all = messages(source.as_ref(), ReadRequest::full("ten")).await;
    assert_eq!(estimate(&all), Some(10));
    let mut req = ReadRequest::full("ten");
    req.limit = Some(3);
    req.batch_size = 2;
    let some = messages(source.as_ref(), req).await;
    assert_eq!(estimate(&some), Some(3));
    if f.counts_whole_reads() {
        // a whole table is counted in the read's snapshot: the exact total, for completeness
        assert!(
            matches!(all.first(), Some(Message::Total(10))),
            "{:?}",
            all.first()
        );
        // a limited read is not the whole table: an estimate only
        assert!(
            matches!(some.first(), Some(Message::Estimate(3))),
            "{:?}",
            some.first()
        );
    }
    let n: usize = some
        .iter()
        .map(|m| match m {
            Message::Batch(b) => b.num_rows(),
            _ => 0,
        })
        .sum();
    assert_eq!(n, 3);
    let e = read_refused(source.as_ref(), ReadRequest::full("nope")).await;
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains("ten"),
        "the error lists what exists: {e}"
    );
    let listed = f.source_with("tables = [\"ten\", \"gone\"]\n");
    let e = listed.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("`gone`"), "{e}");
}

/// Custom query streams in the connector's dialect, over table `orders` (`id` 1–10, `v` =
/// 50 × id): `big_orders` selects `id, v AS total` where `v > 300`, `stats` is a TOML
/// query entry yielding `n` (the count) and `top` (the largest `v`, as decimal(12,2)).
pub struct CustomQueries<'a> {
    /// The SQL of `big_orders`.
    pub big_orders: &'a str,
    /// The whole `{ name = "stats", … }` entry.
    pub stats: &'a str,
    /// Statements that write (to `orders`), each refused as a query's SQL.
    pub writes: &'a [&'a str],
}

/// What [`custom_query_streams`] read, for the dialect's own checks.
pub struct QueryStreams {
    /// The source with the queries.
    pub source: Arc<dyn Source>,
    /// The `stats` stream as discovered.
    pub stats: StreamInfo,
    /// The one row of `stats`.
    pub stats_row: Row,
}

impl QueryStreams {
    /// The type of column `name` of `stats`.
    pub fn stats_type(&self, name: &str) -> FerryType {
        let field = self.stats.schema.field_with_name(name);
        FerryType::of(field.unwrap_or_else(|e| panic!("stats.{name}: {e}")))
            .unwrap_or_else(|| panic!("stats.{name} has no Ferry type"))
    }
}

/// Queries are streams beside the tables, with keys, cursors and types; they read
/// incrementally and with `--limit`; a query that writes is refused as a config error,
/// naming it, and changes nothing.
pub async fn custom_query_streams<F: SqlFixture>(
    f: &F,
    queries: &CustomQueries<'_>,
) -> QueryStreams {
    let orders: Vec<(i64, i64)> = (1..=10).map(|i| (i, i * 50)).collect();
    f.create("orders", &id_v_batch(&orders)).await.unwrap();
    let source = Arc::new(f.source_with(&format!(
        "tables = [\"orders\"]\nqueries = [\n  {{ name = \"big_orders\", sql = \"{}\", primary_key = [\"id\"], cursor = \"id\" }},\n  {},\n]\n",
        queries.big_orders, queries.stats
    )));
    source.check().await.unwrap();
    let catalog = source.discover().await.unwrap();
    assert_eq!(catalog.names(), vec!["orders", "big_orders", "stats"]);
    let big = catalog.get("big_orders").unwrap();
    assert_eq!(big.primary_key, vec!["id"]);
    assert_eq!(big.default_cursor.as_deref(), Some("id"));
    // `total` is an alias of a column: it keeps the column's declared type
    assert_eq!(FerryType::of(big.schema.field(1)), Some(FerryType::Int64));
    let stats = catalog.get("stats").unwrap();
    let ty = |n: &str| FerryType::of(stats.schema.field_with_name(n).unwrap()).unwrap();
    assert_eq!(ty("n"), FerryType::Int64);
    assert_eq!(
        ty("top"),
        FerryType::Decimal {
            precision: 12,
            scale: 2
        }
    );
    source_reads_match_discover(source.as_ref(), 100).await;
    assert_eq!(
        ids(&read_all(source.as_ref(), ReadRequest::full("big_orders")).await),
        vec![7, 8, 9, 10]
    );
    let mut s = rows(&read_all(source.as_ref(), ReadRequest::full("stats")).await);
    assert_eq!(s[0]["n"], 10);
    assert_eq!(s[0]["top"], "500.00");
    // incremental over a query, and --limit
    let mut req = ReadRequest::incremental(
        "big_orders",
        Some(serde_json::json!({ "cursor": "8", "column": "id" })),
    );
    req.cursor = Some("id".into());
    assert_eq!(ids(&read_all(source.as_ref(), req).await), vec![9, 10]);
    let mut req = ReadRequest::full("big_orders");
    req.limit = Some(2);
    assert_eq!(ids(&read_all(source.as_ref(), req).await), vec![7, 8]);

    // statements that write are refused as config errors, and nothing is changed
    for sql in queries.writes {
        let bad = f.source_with(&format!(
            "queries = [{{ name = \"oops\", sql = \"{sql}\" }}]\n"
        ));
        let e = bad.discover().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{sql}: {e}");
        assert!(e.message().contains("oops"), "{e}");
    }
    assert_eq!(f.count("SELECT COUNT(*) FROM orders").await, 10);
    QueryStreams {
        source,
        stats: stats.clone(),
        stats_row: s.swap_remove(0),
    }
}
