//! Small helpers the connectors' own tests share: whole reads, row views, fixed batches
//! and write requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use futures::StreamExt;

use super::{rows_by_id, Fidelity};
use ferry_core::catalog::{StreamInfo, WriteMode};
use ferry_core::sink::{Sink, WriteRequest};
use ferry_core::source::{Message, ReadRequest, Rejected, Source};
use ferry_core::types::{with_keys, FerryType};
use ferry_core::values::BatchBuilder;
use ferry_core::{Error, Result};

/// A row as JSON values by column name.
pub type Row = BTreeMap<String, serde_json::Value>;

/// Every message of a read, failing the test on an error.
pub async fn messages(source: &dyn Source, request: ReadRequest) -> Vec<Message> {
    let mut s = source
        .read(request)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m.unwrap_or_else(|e| panic!("read midway: {e}")));
    }
    out
}

/// The batches and the rejected records among `msgs`, each in order.
pub fn split(msgs: Vec<Message>) -> (Vec<RecordBatch>, Vec<Rejected>) {
    let (mut batches, mut rejected) = (Vec::new(), Vec::new());
    for m in msgs {
        match m {
            Message::Batch(b) => batches.push(b),
            Message::Rejected(r) => rejected.push(r),
            _ => {}
        }
    }
    (batches, rejected)
}

/// Asserts that a rejected record's message says `text`.
#[track_caller]
pub fn assert_says(rejected: &Rejected, text: &str) {
    assert!(rejected.message.contains(text), "{}", rejected.message);
}

/// The rows of `batches` sorted by `id`, with typed values.
pub fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    rows_by_id(batches, Fidelity::EXACT)
}

/// The int64 first column of `batches`, in order.
pub fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// `id` (key) and `v` (the cursor), one row per pair.
pub fn id_v_batch(pairs: &[(i64, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("v", true),
    ]);
    let schema = with_keys(&schema, &["id".to_string()], Some("v"));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema, cols).expect("id/v batch builds")
}

/// A write request for `stream` with a fresh run id.
pub fn request(stream: &str, schema: SchemaRef, mode: WriteMode) -> WriteRequest {
    WriteRequest {
        stream: stream.into(),
        schema,
        mode,
        run_id: ferry_engine::runtime::new_run_id(),
        deletes: None,
    }
}

/// The ids a read yielded, and for each rejected record the ids yielded before it.
pub struct Rejections {
    /// Ids of the rows read, in order.
    pub seen: Vec<i64>,
    /// Each rejected record with the ids read before it.
    pub rejected: Vec<(Vec<i64>, Rejected)>,
}

/// Reads `stream` whole, keeping its rows' ids and its rejected records in order.
pub async fn read_with_rejections(source: &dyn Source, stream: &str) -> Rejections {
    let mut out = Rejections {
        seen: Vec::new(),
        rejected: Vec::new(),
    };
    for m in messages(source, ReadRequest::full(stream)).await {
        match m {
            Message::Batch(b) => out.seen.extend(ids(&[b])),
            Message::Rejected(r) => out.rejected.push((out.seen.clone(), r)),
            _ => {}
        }
    }
    out
}

/// What `source` discovers of `stream`, which it must list.
pub async fn discover_one(source: &dyn Source, stream: &str) -> StreamInfo {
    let catalog = source.discover().await.expect("discover");
    catalog.get(stream).cloned().expect("stream listed")
}

/// The error `source` refuses the read `req` with; panics when the read starts.
pub async fn read_refused(source: &dyn Source, req: ReadRequest) -> Error {
    let stream = req.stream.clone();
    match source.read(req).await {
        Ok(_) => panic!("the source started reading `{stream}`"),
        Err(e) => e,
    }
}

/// Opens a writer for `stream` in `mode`, which `sink` must refuse: the error.
pub async fn open_refused(
    sink: &dyn Sink,
    stream: &str,
    schema: SchemaRef,
    mode: WriteMode,
) -> Error {
    match sink.open(request(stream, schema, mode)).await {
        Ok(_) => panic!("the sink opened `{stream}` in {mode:?} mode"),
        Err(e) => e,
    }
}

/// A batch of `schema` from rows of text cells, as a text file gives them (`None`: NULL;
/// an empty cell is an empty value). Fails the test on a cell the type does not take.
pub fn text_batch<'a, R>(schema: SchemaRef, rows: impl IntoIterator<Item = R>) -> RecordBatch
where
    R: IntoIterator<Item = Option<&'a str>>,
{
    let mut b = BatchBuilder::new(schema, 16).expect("the schema has Ferry types");
    for (i, row) in rows.into_iter().enumerate() {
        // a null marker no cell equals, so that only `None` is NULL
        b.push_text_row(row, "\u{0}")
            .unwrap_or_else(|e| panic!("row {i}: {}: {}", e.name, e.message));
    }
    b.finish().expect("the batch builds")
}

/// A schema of `fields` whose primary key is column `key` (no cursor).
pub fn keyed(key: &str, fields: Vec<Field>) -> SchemaRef {
    with_keys(&Schema::new(fields), &[key.to_string()], None)
}

/// `n` rows of eight mixed columns (no key: rows repeat), like the `bench` preset.
pub fn wide_batch(n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::Int64.field("qty", true),
        FerryType::Float64.field("score", true),
        FerryType::Decimal {
            precision: 12,
            scale: 2,
        }
        .field("amount", true),
        FerryType::String.field("name", true),
        FerryType::Date.field("day", true),
        FerryType::Timestamp.field("at", true),
        FerryType::Bool.field("flag", true),
    ]));
    let mut b = BatchBuilder::new(schema, n).expect("wide schema is valid");
    for i in 0..n {
        let cells = [
            i.to_string(),
            (i % 100).to_string(),
            format!("{}.5", i % 1000),
            format!("{}.{:02}", i * 7 % 100_000, i % 100),
            format!("customer number {i}"),
            format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            format!(
                "2024-05-01T{:02}:{:02}:{:02}.{:06}Z",
                i % 24,
                i % 60,
                i % 60,
                i % 1_000_000
            ),
            (i % 2 == 0).to_string(),
        ];
        b.push_text_row(cells.iter().map(|c| Some(c.as_str())), "")
            .expect("wide rows are valid");
    }
    b.finish().expect("wide batch builds")
}

/// Every message of a read; the first error ends it.
pub async fn try_messages(source: &dyn Source, request: ReadRequest) -> Result<Vec<Message>> {
    let mut s = source.read(request).await?;
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m?);
    }
    Ok(out)
}

/// The batches among `msgs`, in order.
pub fn batches(msgs: &[Message]) -> Vec<RecordBatch> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Batch(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// The batches of a reader's messages (a codec reader reading back what a sink wrote):
/// a rejected record is an error naming its position, other messages are skipped.
pub fn batches_only(
    messages: impl IntoIterator<Item = Result<Message>>,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for m in messages {
        match m? {
            Message::Batch(b) => out.push(b),
            Message::Rejected(r) => {
                return Err(Error::data(format!(
                    "written file has a bad record at {}: {}",
                    r.position, r.message
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `{ id = "int64", … }`: the schema's exact types, as a file source's `columns` override.
pub fn columns_toml(schema: &SchemaRef) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{} = \"{}\"",
                f.name(),
                FerryType::of(f).expect("ferry type")
            )
        })
        .collect();
    format!("{{ {} }}", cols.join(", "))
}

/// Runs `work` to its end on a thread with a runtime of its own: for a fixture's `Drop`,
/// which cannot await and may run inside the test's runtime.
pub fn on_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join();
}

/// Deterministic bytes of every value, `len` long, different per `seed` (xorshift): test
/// payloads that do not compress and are the same on every run.
pub fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Every row of `batches` as text, as Ferry spells values (`NULL` for a null): exact
/// values to compare with what a fixture wrote.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let cells = b
                .columns()
                .iter()
                .zip(b.schema().fields())
                .map(|(c, f)| {
                    let mut s = String::new();
                    let ty = FerryType::of(f).expect("a Ferry type");
                    if !ferry_core::values::write_text(c.as_ref(), ty, row, &mut s) {
                        s = "NULL".into();
                    }
                    s
                })
                .collect();
            out.push(cells);
        }
    }
    out
}

/// Each column of `schema` as `name type` (`amount decimal(12,2)`), in order.
pub fn column_types(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), FerryType::of(f).expect("a Ferry type")))
        .collect()
}
