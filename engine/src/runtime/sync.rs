//! A whole sync: the owner check, discovery, the plan and the schema decisions, then
//! the streams.

use super::{new_run_id, reconcile, RunOptions, Runtime, StreamTask};
use crate::config::{StreamConfig, SyncConfig};
use crate::report::RunReport;
use ferry_core::{Error, ErrorKind, Result};

impl Runtime {
    /// Discovers, plans and runs every stream; the report says what happened to each.
    /// Errors only for what stops the run before any stream starts.
    pub async fn sync(
        &self,
        streams: &[StreamConfig],
        opts: &RunOptions,
        config: Option<&SyncConfig>,
        names: (&str, &str),
    ) -> Result<RunReport> {
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        if opts.limit.is_some() && !self.sink.rolls_back() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "`--limit` is a trial: it writes through the destination and then takes the rows back, \
                 and this destination cannot take rows back (nothing was read or written). \
                 Run `ferry sync --dry-run` to see the first rows as they would be written, without writing",
            )
            .with("hint", "run `ferry sync --dry-run`, or `ferry plan`"));
        }
        match config.and_then(|c| c.client.as_deref()) {
            Some(client) => self.check_owner(client).await?,
            None => self.check_unnamed().await?,
        }
        let catalog = self.source.discover().await?;
        let mut tasks = self.plan(&catalog, streams, opts, config, &run_id)?;
        // schema changes are decided (and refused) before a row is read
        let found = reconcile(self.sink.as_ref(), &mut tasks, streams).await?;
        // a refused stream fails on its own; the others are independent and run
        let (mut ready, mut refused): (Vec<StreamTask>, Vec<(StreamTask, Error)>) =
            (Vec::new(), Vec::new());
        for (task, r) in tasks.into_iter().zip(&found) {
            match r.decision.error(&r.stream) {
                Some(e) => refused.push((task, e)),
                None => ready.push(task),
            }
        }
        if ready.is_empty() && refused.len() == 1 {
            // nothing else would run: the refusal is the run's error, as before
            return Err(refused.pop().expect("one").1);
        }
        Ok(self.run_all(ready, refused, opts, &run_id, names).await)
    }
}
