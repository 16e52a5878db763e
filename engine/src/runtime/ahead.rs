//! The source's task: it reads a stream's messages into the bounded channel the pump
//! drains (a full channel makes the source wait), and conforms and transforms batches
//! ahead, on blocking threads, while the pump checks and writes earlier ones.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::StreamExt;
use tokio::sync::mpsc::Receiver;

use super::batch::conform;
use crate::transform::{self, Transform};
use ferry_core::source::{Message, MessageStream};
use ferry_core::Result;

/// What the pump receives from the source's task.
pub(super) enum Staged {
    /// A message as the source sent it (a batch to conform and transform in the pump).
    Message(Result<Message>),
    /// A batch being conformed and transformed on a blocking thread.
    Batch(tokio::task::JoinHandle<Result<Prepared>>),
}

/// A batch conformed to the stream's schema, and what its transforms made of it.
pub(super) struct Prepared {
    /// The batch as read (with the stream's schema).
    pub(super) raw: RecordBatch,
    /// [`transform::apply_all_tracked`] of it.
    pub(super) transformed: Result<transform::Transformed>,
}

/// Starts the source's task: `messages` go into a channel of `capacity`; with `ahead`
/// (the stream's schema and steps), each batch is conformed and transformed on a blocking
/// thread as it arrives. The task stops at the first error, or when the guard drops.
pub(super) fn read_ahead(
    mut messages: MessageStream,
    capacity: usize,
    ahead: Option<(SchemaRef, Vec<Arc<dyn Transform>>)>,
) -> (Receiver<Staged>, AbortOnDrop) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let producer = tokio::spawn(async move {
        while let Some(m) = messages.next().await {
            let last = m.is_err();
            let staged = match (m, &ahead) {
                (Ok(Message::Batch(batch)), Some((schema, steps))) => {
                    let (schema, steps) = (schema.clone(), steps.clone());
                    Staged::Batch(tokio::task::spawn_blocking(move || {
                        prepare(&schema, &steps, batch)
                    }))
                }
                (m, _) => Staged::Message(m),
            };
            if tx.send(staged).await.is_err() || last {
                break;
            }
        }
    });
    (rx, AbortOnDrop(producer))
}

/// Conforms `batch` to `schema` and applies `steps` (the pump's first steps, done ahead).
fn prepare(
    schema: &SchemaRef,
    steps: &[Arc<dyn Transform>],
    batch: RecordBatch,
) -> Result<Prepared> {
    let raw = conform(schema, batch)?;
    let transformed = transform::apply_all_tracked(steps, raw.clone());
    Ok(Prepared { raw, transformed })
}

/// Stops the source's task when the pump ends, however it ends.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
