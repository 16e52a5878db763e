//! `ferry plan`: what `ferry sync` would do, per stream, without writing anything.
//!
//! It resolves the run exactly as `sync` does (same [`Runtime::plan`], same schema
//! policy via [`reconcile`]), then asks the destination what is there now
//! and the source how much it would read. Exit codes, for CI gates: 0 nothing would
//! change, 3 something would, 1 the sync would refuse (a schema change its policy forbids,
//! or, under `[run] personal_data = "refuse"`, a column that looks like unprotected
//! personal data in the stream's first rows).

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Error, Estimate, ReadMode, WriteMode};
use ferry_engine::personal_data::{Policy, Status};
use ferry_engine::profile::suggest::hash_line;
use ferry_engine::report::group;
use ferry_engine::runtime::reconcile;
use ferry_engine::runtime::StreamTask;
use ferry_engine::schema_change::Reconciled;
use ferry_engine::state::{Access, StateStore};
use ferry_engine::{RunOptions, Runtime};

/// Exit code when the plan would change something.
pub const CHANGES: u8 = 3;

pub async fn plan(path: &Path, only: Option<Vec<String>>, full_refresh: bool) -> Result<u8, Error> {
    let cfg = super::commands::load(path)?;
    let registry = crate::registry();
    let source = registry.build_source(&cfg.source)?;
    let sink = registry.build_sink(&cfg.destination)?;
    let state = Arc::new(StateStore::open_pipeline(&cfg, Access::Read)?);
    let mut rt = Runtime::new(source.clone(), sink.clone(), state);
    rt.settings = cfg.run.clone();
    let opts = RunOptions {
        only,
        full_refresh,
        ..RunOptions::default()
    };
    // a destination bound to another client: refused before the source is even asked
    let binding = match cfg.client.as_deref() {
        Some(client) => match sink.owner().await? {
            Some(owner) if owner != client => {
                println!("plan for {}: REFUSED: the destination is bound to client `{owner}`, not `{client}`; nothing was read or written", path.display());
                return Ok(1);
            }
            Some(_) => Some(format!("destination: bound to client {client}")),
            None => Some(format!("destination: not bound yet; the first sync binds it to client {client} where it keeps tags")),
        },
        None => match sink.owner().await? {
            Some(owner) => {
                println!("plan for {}: REFUSED: the destination is bound to client `{owner}`, but this folder names no client (add `client = \"{owner}\"` if it is theirs); nothing was read or written", path.display());
                return Ok(1);
            }
            None => None,
        },
    };
    let catalog = source.discover().await?;
    let mut tasks = rt.plan(&catalog, &cfg.streams, &opts, Some(&cfg), "plan")?;
    let found = reconcile(sink.as_ref(), &mut tasks, &cfg.streams).await?;

    println!(
        "plan for {} ({} → {}{})",
        path.display(),
        cfg.source.kind,
        cfg.destination.kind,
        cfg.client
            .as_deref()
            .map(|c| format!(", client {c}"))
            .unwrap_or_default()
    );
    if let Some(b) = binding {
        println!("{b}");
    }
    let names: Vec<String> = cfg.streams.iter().map(|s| s.name.clone()).collect();
    match source.plan_notes(&names).await {
        Ok(notes) => notes.iter().for_each(|n| println!("source: {n}")),
        Err(e) => println!("source: could not ask about its replication slots: {e}"),
    }
    let (mut changing, mut refused) = (0, 0);
    for (task, r) in tasks.iter().zip(&found) {
        let now = sink.count(&task.write.stream).await.unwrap_or(None);
        let to_read = source.estimate(&task.read).await.unwrap_or(None);
        // only a certain "nothing" (a count, not a guess) lets plan say nothing changes
        let mut changes = !r.diff.is_empty() || !to_read.is_some_and(|e| e.is_nothing());
        let key = task.write.primary_key();
        println!();
        println!(
            "stream {} → {} ({}{})",
            task.read.stream,
            task.write.stream,
            task.write.mode,
            if key.is_empty() || !matches!(task.write.mode, WriteMode::Upsert | WriteMode::History)
            {
                String::new()
            } else {
                format!(" on {}", key.join(", "))
            }
        );
        schema_lines(r);
        let rows_now = now.map(|n| format!("{} rows now", group(n)));
        // a history's current versions, once known
        let mut current = None;
        let effect = match (task.write.mode, r.exists) {
            (_, false) => format!("create {} and load it", task.write.stream),
            (WriteMode::Overwrite, true) => {
                changes = true;
                format!(
                    "overwrite will replace {}{}",
                    task.write.stream,
                    rows_now.map(|n| format!(": {n}")).unwrap_or_default()
                )
            }
            (WriteMode::Append, true) => format!(
                "append to {}{}",
                task.write.stream,
                rows_now
                    .map(|n| format!(" ({n}); nothing is removed"))
                    .unwrap_or_default()
            ),
            (WriteMode::Upsert, true) => format!(
                "upsert into {}{}; rows with an existing key are replaced",
                task.write.stream,
                rows_now.map(|n| format!(" ({n})")).unwrap_or_default()
            ),
            (WriteMode::History, true) => {
                current = sink
                    .count_keys(&task.write.stream, None)
                    .await
                    .unwrap_or(None);
                let versions = match (now, current) {
                    (Some(n), Some(c)) => format!(" ({} versions, {} current)", group(n), group(c)),
                    _ => String::new(),
                };
                format!(
                    "keep the history of {}{versions}: a changed row closes its current version \
                     and adds one dated this run's start; unchanged rows write nothing",
                    task.write.stream
                )
            }
        };
        println!("  write:       {effect}");
        if task.write.mode == WriteMode::History && r.exists {
            println!("  history:     {}", history_line(to_read.as_ref(), current));
        }
        if task.write.deletes.is_some() {
            let (line, deleting) =
                super::plan_deletes::line(source.as_ref(), sink.as_ref(), task, r.exists).await;
            changes |= deleting;
            println!("  deletes:     {line}");
        }
        match task.read.mode {
            ReadMode::Incremental => println!(
                "  incremental: by {} from {} → newest in the source",
                task.read
                    .cursor
                    .as_deref()
                    .unwrap_or("the source's position"),
                task.read
                    .state
                    .as_ref()
                    .map(|s| shorten(&s.to_string()))
                    .unwrap_or_else(|| "the beginning (no state yet)".into())
            ),
            // overwrite with an incremental read is refused when the config is read
            ReadMode::FullRefresh if task.write.mode == WriteMode::Overwrite => println!(
                "  read:        everything (full refresh): overwrite replaces the destination with it"
            ),
            ReadMode::FullRefresh => println!("  read:        everything (full refresh)"),
        }
        println!("  estimate:    {}", estimate_line(to_read.as_ref()));
        let guard_refuses = personal_lines(&rt, task).await;
        if r.decision.refusal.is_some() || guard_refuses {
            refused += 1;
        } else if changes {
            changing += 1;
        }
    }
    println!();
    if refused > 0 {
        println!("`ferry sync` would refuse ({refused} refusal(s)); nothing was written");
        return Ok(1);
    }
    if changing == 0 {
        println!("nothing would change");
        Ok(0)
    } else {
        println!("{changing} stream(s) would change; nothing was written");
        Ok(CHANGES)
    }
}

/// What the personal-data guard would find in the stream's first rows (read and
/// transformed as `sync` would); whether `sync` would refuse the stream for it.
async fn personal_lines(rt: &Runtime, task: &StreamTask) -> bool {
    let (record, verdict) = match rt.personal_data(task).await {
        Ok(found) => found,
        Err(e) => {
            println!(
                "  personal:    not sampled (the rows could not be read: {})",
                e.message()
            );
            return false;
        }
    };
    if record.columns.is_empty() {
        println!(
            "  personal:    nothing flagged in the first {} rows",
            group(record.sampled_rows)
        );
    }
    for f in &record.columns {
        let status = match f.status {
            Status::Protected => "protected by a transform".to_string(),
            Status::Allowed => {
                let why = record.allowances.iter().find(|a| a.column == f.column);
                format!(
                    "allowed: {}",
                    why.map(|a| a.reason.as_str()).unwrap_or_default()
                )
            }
            Status::Unprotected if record.policy == Policy::Refuse => format!(
                "UNPROTECTED: `ferry sync` would refuse the stream; add `{}` to its transforms, \
                 or allow it in allow_personal with a reason",
                hash_line(&f.column)
            ),
            Status::Unprotected => "unprotected: `ferry sync` would warn".to_string(),
        };
        println!(
            "  personal:    {} appears to hold {} ({}); {status}",
            f.column, f.kind, f.evidence
        );
    }
    verdict.is_err()
}

fn schema_lines(r: &Reconciled) {
    if !r.exists {
        println!("  schema:      new destination, created from the stream's schema");
        return;
    }
    if r.diff.is_empty() {
        println!("  schema:      unchanged");
        return;
    }
    println!("  schema:      {} difference(s)", r.diff.changes.len());
    for c in &r.diff.changes {
        println!("    {c}");
    }
    for a in &r.decision.actions {
        println!("    → {a}");
    }
    if let Some(why) = &r.decision.refusal {
        println!("    REFUSED: {why}");
    }
}

/// What a history run would compare: which rows changed is known only once they are
/// read and hashed, so the plan says how many rows meet how many current versions.
fn history_line(to_read: Option<&Estimate>, current: Option<u64>) -> String {
    let rows = match to_read.map(|e| (e.rows, e.exact)) {
        Some((Some(n), true)) => format!("{} rows", group(n)),
        Some((Some(n), false)) => format!("~{} rows (an estimate)", group(n)),
        _ => "the rows read".into(),
    };
    let against = match current {
        Some(c) => format!("the {} current versions", group(c)),
        None => "the current versions".into(),
    };
    format!(
        "{rows} compared against {against} by row hash: a changed row closes 1 version and \
         adds 1, a new key adds 1, an unchanged row writes nothing (known after the read)"
    )
}

/// `1,234 rows to move` for a count, `~1,200 rows to move (an estimate) …` for a guess, never mixed up.
fn estimate_line(e: Option<&Estimate>) -> String {
    let Some(e) = e else {
        return "unknown (the source cannot count cheaply)".into();
    };
    let files = match (e.files, e.bytes) {
        (Some(1), Some(b)) => format!(" from 1 file, {}", size(b)),
        (Some(f), Some(b)) => format!(" from {} files, {}", group(f), size(b)),
        _ => String::new(),
    };
    match (e.rows, e.exact) {
        (Some(0), true) if e.files == Some(0) => "0 rows to move (no new or changed file)".into(),
        (Some(n), true) => format!("{} rows to move{files}", group(n)),
        (Some(n), false) => format!("~{} rows to move (an estimate){files}", group(n)),
        (None, _) => format!("unknown number of rows{files}"),
    }
}

/// Bytes for people: `512 B`, `3.4 KB`, `12.0 MB` (powers of 1000, as file managers show).
fn size(b: u64) -> String {
    match b {
        0..=999 => format!("{b} B"),
        1_000..=999_999 => format!("{:.1} KB", b as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.1} GB", b as f64 / 1e9),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s.to_string()
    }
}
