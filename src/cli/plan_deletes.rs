//! `ferry plan` for a stream with `deletes`: how many destination rows the sync would
//! delete or mark, counted by reading the source's keys (through the stream's
//! transforms) and asking the destination how many of its rows have one of them.

use ferry_core::{Deletes, Message, ReadMode, Result, Sink, Source, WriteMode};
use ferry_engine::report::group;
use ferry_engine::runtime::StreamTask;
use futures_util::StreamExt;

/// The plan's `deletes:` line for `task`, and whether rows would go.
pub async fn line(
    source: &dyn Source,
    sink: &dyn Sink,
    task: &StreamTask,
    exists: bool,
) -> (String, bool) {
    let Some(deletes) = task.write.deletes else {
        return (String::new(), false);
    };
    // history is never deleted: a key gone from the source closes its current version
    let verb = match (deletes, task.write.mode) {
        (_, WriteMode::History) => "close the current versions of",
        (Deletes::Hard, _) => "delete",
        (Deletes::Soft, _) => "mark deleted",
    };
    if !exists {
        return (
            "nothing to delete yet (the destination is new)".into(),
            false,
        );
    }
    match missing(source, sink, task).await {
        Ok(Some(n)) => (
            format!("would {verb} {} rows the source no longer holds", group(n)),
            n > 0,
        ),
        Ok(None) => (
            format!("would {verb} the rows the source no longer holds (the destination cannot count them ahead)"),
            true,
        ),
        Err(e) => (
            format!("would {verb} the rows the source no longer holds (not counted: {})", e.message()),
            true,
        ),
    }
}

/// Rows of the destination whose key the source no longer holds; `None`: uncountable.
async fn missing(source: &dyn Source, sink: &dyn Sink, task: &StreamTask) -> Result<Option<u64>> {
    let stream = &task.write.stream;
    let Some(held) = sink.count_keys(stream, None).await? else {
        return Ok(None);
    };
    let key = task.write.primary_key();
    // an incremental read sees only changed rows: the sync lists every key instead
    let incremental = task.read.mode == ReadMode::Incremental;
    let mut messages = match incremental {
        true => {
            source
                .read_keys(&task.read.stream, &key, task.read.batch_size)
                .await?
        }
        false => source.read(task.read.clone()).await?,
    };
    let mut kept = 0;
    while let Some(m) = messages.next().await {
        let Message::Batch(batch) = m? else { continue };
        let batch = match incremental {
            true => batch,
            false => {
                let batch = ferry_engine::runtime::conform(&task.source_schema, batch)?;
                ferry_engine::transform::apply_all(&task.transforms, batch)?
            }
        };
        let schema = batch.schema();
        let columns: Option<Vec<usize>> = key.iter().map(|k| schema.index_of(k).ok()).collect();
        let Some(columns) = columns else {
            return Ok(None);
        };
        let keys = batch.project(&columns).map_err(|e| {
            ferry_core::Error::internal(format!("cannot take the key columns: {e}"))
        })?;
        match sink.count_keys(stream, Some(&keys)).await? {
            Some(n) => kept += n,
            None => return Ok(None),
        }
    }
    Ok(Some(held.saturating_sub(kept)))
}
