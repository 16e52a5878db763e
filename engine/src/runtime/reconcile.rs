//! Schema changes, decided before a row is read: [`crate::schema_change`] decides per
//! destination, and the stream's task takes the decision.

use super::StreamTask;
use crate::config::StreamConfig;
use crate::schema_change::{reconcile_stream, Reconciled};
use ferry_core::sink::Sink;
use ferry_core::Result;

/// Describes each task's destination, applies its stream's `on_schema_change` policy and,
/// where the decision needs it, adds the step that makes batches fit (and updates the
/// task's write schema). Refusals are returned in [`Decision::refusal`](crate::schema_change::Decision::refusal), not as errors,
/// so `ferry plan` can show all of them; [`Runtime::sync`](super::Runtime::sync) stops on the first.
pub async fn reconcile(
    sink: &dyn Sink,
    tasks: &mut [StreamTask],
    streams: &[StreamConfig],
) -> Result<Vec<Reconciled>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks.iter_mut() {
        let policy = streams
            .iter()
            .find(|s| s.name == task.read.stream)
            .map(|s| s.on_schema_change)
            .unwrap_or_default();
        let found = reconcile_stream(sink, &task.read.stream, &task.write, policy).await?;
        task.apply(&found.decision)?;
        out.push(found);
    }
    Ok(out)
}
