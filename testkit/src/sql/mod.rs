//! The SQL conformance suite: what every SQL connector (sqlite, mysql, postgres) promises
//! beyond the kit's source and sink suites, checked on its real database: ties on the
//! cursor, custom queries, estimates, schema evolution, staged overwrite, upsert keys,
//! history, concurrent streams, a run through the runtime.
//!
//! A connector's test gives a [`SqlFixture`] (a fresh database, schema or file, and how to
//! run SQL in it) and runs the checks, each in a test of its own with [`sql_suite!`]:
//!
//! ```ignore
//! ferry_testkit::sql_suite!(Fixture::new().await);
//! ferry_testkit::sql_suite!(Fixture::new().await; streams_write_in_parallel_and_an_aborted_stream_keeps_nothing_unflushed);
//! ```
//!
//! The checks that need something in the connector's own dialect (a table made by hand,
//! a custom query) take it as arguments. Every [`SqlFixture`] is also a
//! [`SourceFixture`](super::SourceFixture) and a [`SinkFixture`](super::SinkFixture) (its
//! streams are tables its sink writes), so the kit's suites run on it as well.
//!
//! [`sql_suite!`]: crate::sql_suite

mod sink;
mod source;

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;

use super::{read_all, write_stream, SinkFixture, SourceFixture};
use ferry_core::catalog::WriteMode;
use ferry_core::sink::{Sink, WriteSummary};
use ferry_core::source::{ReadRequest, Source};
use ferry_core::Result;

pub use sink::*;
pub use source::*;

/// A fresh database (or schema, or file) on a real SQL system, and how to inspect it.
#[async_trait]
pub trait SqlFixture: Send + Sync {
    /// A second fresh fixture of the same kind (for runs from one database to another).
    async fn another(&self) -> Self
    where
        Self: Sized;
    /// The connector's source type, so a connector's own tests get its own methods too.
    type Source: Source + 'static;
    /// The sink under test, writing into the fixture's database.
    fn sink(&self) -> Arc<dyn Sink>;
    /// A source reading the fixture's database.
    fn source(&self) -> Arc<Self::Source>;
    /// A source built from its TOML config: the fixture's connection lines, then `extra`
    /// (`tables`, `queries`, …).
    fn source_with(&self, extra: &str) -> Self::Source;
    /// A source whose connection fails (nothing listens there, no such file).
    fn broken_source(&self) -> Arc<dyn Source>;
    /// Runs statements (separated by `;`) in the fixture's database.
    async fn sql(&self, statements: &str);
    /// The rows of a query, every value as text (`NULL` as `None`).
    async fn rows_text(&self, query: &str) -> Vec<Vec<Option<String>>>;
    /// How many relations named `_ferry…` the database holds: Ferry's staging and helper
    /// tables.
    async fn ferry_tables(&self) -> i64;
    /// `name` quoted as an identifier.
    fn quote(&self, name: &str) -> String;
    /// The `location` of the output the sink reports for table `table`.
    fn location(&self, table: &str) -> String;

    /// Writes `batches` to table `stream` in `mode` through the fixture's sink; fails the
    /// test on an error.
    async fn write(&self, stream: &str, mode: WriteMode, batches: &[RecordBatch]) -> WriteSummary {
        let sink = SqlFixture::sink(self);
        write_stream(sink.as_ref(), stream, mode, batches)
            .await
            .unwrap_or_else(|e| panic!("writing {stream}: {e}"))
    }
    /// Every row of table `stream` as the source reads it (none if there is no such table).
    async fn table_rows(&self, stream: &str) -> Result<Vec<RecordBatch>> {
        table_rows(self.source().as_ref(), stream).await
    }
    /// The number a query counts (its first value).
    async fn count(&self, query: &str) -> i64 {
        let rows = self.rows_text(query).await;
        let first = rows.first().and_then(|r| r.first()).cloned().flatten();
        first
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{query} counted nothing: {rows:?}"))
    }
    /// Leaves what an overwrite of `table` killed mid-way leaves: by default the staging
    /// table of a run long gone, `_ferry_stage_<table>_<run id>`.
    async fn crash_an_overwrite(&self, table: &str) {
        let staging = format!("_ferry_stage_{table}_20000101T000000Z-abcdef");
        self.sql(&format!("CREATE TABLE {} (x int)", self.quote(&staging)))
            .await;
    }
    /// Whether a whole read announces its exact row count first ([`Message::Total`]),
    /// rather than an estimate ([`Message::Estimate`]).
    ///
    /// [`Message::Total`]: ferry_core::Message::Total
    /// [`Message::Estimate`]: ferry_core::Message::Estimate
    fn counts_whole_reads(&self) -> bool {
        true
    }
    /// Whether rows of equal cursor value come in key order.
    fn orders_ties_by_key(&self) -> bool {
        true
    }
}

/// Every row of table `stream` as `source` reads it (none if it has no such stream).
pub async fn table_rows(source: &dyn Source, stream: &str) -> Result<Vec<RecordBatch>> {
    if source.discover().await?.get(stream).is_none() {
        return Ok(Vec::new());
    }
    Ok(read_all(source, ReadRequest::full(stream)).await)
}

/// The kit's source suite, on tables the fixture's sink writes.
pub async fn source_suite<F: SqlFixture>(f: &F) {
    super::run_source_suite(f).await;
}

#[async_trait]
impl<T: SqlFixture> SinkFixture for T {
    fn sink(&self) -> Arc<dyn Sink> {
        SqlFixture::sink(self)
    }

    async fn read_back(&self, stream: &str, _schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        self.table_rows(stream).await
    }
}

#[async_trait]
impl<T: SqlFixture> SourceFixture for T {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        self.append(stream, batch).await?;
        Ok(self.source())
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        let sink = SqlFixture::sink(self);
        write_stream(
            sink.as_ref(),
            stream,
            WriteMode::Append,
            std::slice::from_ref(batch),
        )
        .await?;
        Ok(())
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        Some(self.broken_source())
    }
}

/// One `#[tokio::test]` per check of [`testkit::sql`](crate::sql), each on its own
/// fresh fixture (`$fixture`, an expression that may `.await`): without a list, the checks
/// every SQL connector passes; with one, the named checks.
#[macro_export]
macro_rules! sql_suite {
    ($fixture:expr) => {
        $crate::sql_suite!($fixture;
            source_suite,
            sink_suite,
            incremental_ties_are_never_split_or_repeated,
            estimate_limit_and_missing_things,
            describe_gives_the_written_schema,
            a_new_nullable_column_is_added,
            a_new_not_null_column_is_refused,
            overwrite_replaces_any_shape_and_a_duplicate_key_says_upsert,
            overwrite_stages_until_close_and_abort_leaves_the_old_table,
            to_another_database_through_the_runtime,
            history_keeps_every_version,
        );
    };
    ($fixture:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $check() {
                $crate::sql::$check(&$fixture).await;
            }
        )*
    };
}
