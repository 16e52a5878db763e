//! Planning: the streams to sync, resolved and checked before a row is read.

use super::{RunOptions, Runtime, StreamTask};
use crate::config::{StreamConfig, SyncConfig};
use crate::transform;
use crate::validate::Validator;
use ferry_core::catalog::{Catalog, ReadMode, WriteMode};
use ferry_core::sink::WriteRequest;
use ferry_core::source::ReadRequest;
use ferry_core::types::with_keys;
use ferry_core::{Error, Result};

impl Runtime {
    /// Resolves the streams to sync and checks, before reading anything, that each
    /// exists, that its modes are supported and that it has the keys it needs.
    pub fn plan(
        &self,
        catalog: &Catalog,
        streams: &[StreamConfig],
        opts: &RunOptions,
        config: Option<&SyncConfig>,
        run_id: &str,
    ) -> Result<Vec<StreamTask>> {
        let positioned = |needle: &str, msg: String| match config {
            Some(c) => c.error_near(needle, msg),
            None => Error::config(msg),
        };
        let selected: Vec<StreamConfig> = if streams.is_empty() {
            catalog
                .streams
                .iter()
                .map(|s| StreamConfig::named(&s.name))
                .collect()
        } else {
            streams.to_vec()
        };
        if let Some(only) = &opts.only {
            for name in only {
                if !selected.iter().any(|s| &s.name == name) {
                    return Err(Error::config(format!(
                        "--streams names `{name}`, which is not among the streams to sync ({})",
                        selected
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let caps = self.sink.capabilities();
        let mut tasks = Vec::new();
        for sc in selected {
            if opts.only.as_ref().is_some_and(|o| !o.contains(&sc.name)) {
                continue;
            }
            let needle = format!("\"{}\"", sc.name);
            let info = catalog.get(&sc.name).ok_or_else(|| {
                let mut msg = format!("stream `{}` is not offered by the source", sc.name);
                if let Some(best) = ferry_core::suggest::nearest(&sc.name, catalog.names()) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                msg.push_str(&format!(
                    " (`ferry discover` lists: {})",
                    catalog.names().join(", ")
                ));
                positioned(&needle, msg).with("stream", &sc.name)
            })?;
            if ferry_core::sink::is_reserved(sc.destination_name()) {
                return Err(positioned(
                    &needle,
                    format!(
                        "stream `{}` would be written as `{}`: names starting with `{}` are Ferry's own \
                         (the client tag, staging tables); set `destination = \"...\"` on the stream to another name",
                        sc.name,
                        sc.destination_name(),
                        ferry_core::sink::RESERVED_PREFIX
                    ),
                )
                .with("stream", &sc.name));
            }
            let mode = sc.mode.unwrap_or(WriteMode::Append);
            if !caps.modes.contains(&mode) {
                return Err(positioned(
                    &needle,
                    format!(
                        "the destination cannot {} (it supports: {})",
                        match mode {
                            WriteMode::History => "keep history (mode = \"history\")".to_string(),
                            m => m.to_string(),
                        },
                        caps.modes
                            .iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with("stream", &sc.name));
            }
            // also checked when the config is read; here for configs built in code
            if mode == WriteMode::Overwrite && sc.is_incremental() {
                return Err(
                    positioned(&needle, crate::config::overwrite_incremental(&sc))
                        .with("stream", &sc.name),
                );
            }
            let primary_key = sc
                .primary_key
                .clone()
                .unwrap_or_else(|| info.primary_key.clone());
            for k in &primary_key {
                if info.schema.field_with_name(k).is_err() {
                    return Err(positioned(
                        &needle,
                        format!("primary key column `{k}` is not in stream `{}`", sc.name),
                    )
                    .with("stream", &sc.name));
                }
            }
            let keyed = matches!(mode, WriteMode::Upsert | WriteMode::History);
            if keyed && primary_key.is_empty() {
                return Err(positioned(
                    &needle,
                    format!("stream `{}` is written with {mode} but has no primary key: add `primary_key = [\"id\"]`", sc.name),
                )
                .with("stream", &sc.name));
            }
            let changes = sc.is_incremental() && self.source.reads_changes(&sc.name);
            if changes {
                if let Some(m) = changes_refused(&sc, mode, self.sink.deletes()) {
                    return Err(positioned(&needle, m).with("stream", &sc.name));
                }
            }
            if let Some(d) = sc.deletes {
                let refused = if !keyed {
                    Some(format!(
                        "stream `{}` has deletes = \"{d}\", which needs mode = \"upsert\" or \"history\" (missing rows are found by key)",
                        sc.name
                    ))
                } else if !self.sink.deletes() {
                    Some(format!(
                        "stream `{}` has deletes = \"{d}\", but the destination cannot delete rows the source no longer holds; remove `deletes`",
                        sc.name
                    ))
                } else if sc.is_incremental() && !self.source.reads_keys() {
                    Some(format!(
                        "stream `{}` has deletes = \"{d}\" and is read incrementally, which sees only changed rows, \
                         and the source cannot list its keys; remove `cursor`/`incremental` (a full read) or `deletes`",
                        sc.name
                    ))
                } else if sc.is_incremental() && !sc.transforms.is_empty() {
                    Some(format!(
                        "stream `{}` has deletes = \"{d}\" and is read incrementally: its missing rows are found by the \
                         source's keys as they are, which transforms would change; remove the transforms, `deletes`, or \
                         `cursor`/`incremental`",
                        sc.name
                    ))
                } else {
                    None
                };
                if let Some(m) = refused {
                    return Err(positioned(&needle, m).with("stream", &sc.name));
                }
            }
            let incremental = sc.is_incremental();
            let cursor = if incremental && !changes {
                if !info.supports_incremental() {
                    return Err(positioned(
                        &needle,
                        format!("stream `{}` cannot be read incrementally", sc.name),
                    )
                    .with("stream", &sc.name));
                }
                let c = sc.cursor.clone().or_else(|| info.default_cursor.clone());
                if let Some(c) = &c {
                    if info.schema.field_with_name(c).is_err()
                        && !info.cursor_candidates.contains(c)
                    {
                        return Err(positioned(
                            &needle,
                            format!(
                                "cursor `{c}` is not a column of stream `{}` (candidates: {})",
                                sc.name,
                                info.cursor_candidates.join(", ")
                            ),
                        )
                        .with("stream", &sc.name));
                    }
                }
                c
            } else {
                None
            };
            let state = if incremental && !opts.full_refresh {
                self.state.get(&sc.name)
            } else {
                None
            };
            let read = ReadRequest {
                stream: sc.name.clone(),
                mode: if incremental {
                    ReadMode::Incremental
                } else {
                    ReadMode::FullRefresh
                },
                cursor: cursor.clone(),
                state,
                limit: opts.limit,
                batch_size: self.settings.batch_size,
            };
            let source_schema = with_keys(
                &info.schema,
                &primary_key,
                cursor
                    .as_deref()
                    .filter(|c| info.schema.field_with_name(c).is_ok()),
            );
            let run = transform::RunInfo::starting_now(run_id);
            let transforms = crate::config::build_stream(config, &sc, &run)?;
            let out = transform::output_schema(&transforms, source_schema.clone())
                .map_err(|e| positioned(&needle, e.to_string()).with("stream", &sc.name))?;
            for k in &primary_key {
                if out.field_with_name(k).is_err() {
                    return Err(positioned(
                        &needle,
                        format!(
                            "a transform removes primary key column `{k}` of stream `{}`",
                            sc.name
                        ),
                    )
                    .with("stream", &sc.name));
                }
            }
            let schema = with_keys(
                &out,
                &primary_key,
                cursor.as_deref().filter(|c| out.field_with_name(c).is_ok()),
            );
            let write = WriteRequest {
                stream: sc.destination_name().to_string(),
                schema,
                mode,
                run_id: run_id.to_string(),
                deletes: sc.deletes,
            };
            Validator::new(&sc.checks, &write.schema).map_err(|e| {
                positioned(&needle, e.message().to_string()).with("stream", &sc.name)
            })?;
            if sc.max_bad_ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(positioned(
                    &needle,
                    format!(
                        "max_bad_ratio of stream `{}` must be between 0 and 1",
                        sc.name
                    ),
                ));
            }
            if let Some(a) = sc
                .allow_personal
                .iter()
                .find(|a| write.schema.field_with_name(&a.column).is_err())
            {
                return Err(positioned(
                    "allow_personal",
                    format!(
                        "stream `{}` allows personal data in column `{}`, which it does not deliver \
                         (after its transforms it delivers: {}); name a delivered column or remove the entry",
                        sc.name,
                        a.column,
                        write
                            .schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with("stream", &sc.name));
            }
            let protected = transform::hidden_before(&transforms);
            tasks.push(StreamTask {
                info: info.clone(),
                read,
                source_schema,
                transforms,
                write,
                checks: sc.checks.clone(),
                on_bad_record: sc.on_bad_record,
                max_bad_ratio: sc.max_bad_ratio,
                protected,
                changes,
                allow_personal: sc.allow_personal.clone(),
            });
        }
        Ok(tasks)
    }
}

/// Why stream `sc`, whose source reads its changes (change data capture), cannot be
/// written as configured: its changes are applied by key, deletes included.
fn changes_refused(sc: &StreamConfig, mode: WriteMode, sink_deletes: bool) -> Option<String> {
    let name = &sc.name;
    if mode == WriteMode::History {
        // a history compares whole rows against the current versions once per run; the
        // changes come as many versions of a key, which it does not take yet
        Some(format!(
            "stream `{name}` has mode = \"history\" and reads the source's changes (cdc on \
             the source, incremental = true on the stream), which Ferry does not combine yet: \
             keep the history with incremental = false (each run compares the whole table \
             with the current versions; deletes = \"soft\" closes the versions of keys that \
             are gone) or a `cursor` on a source without cdc, or write the changes with \
             mode = \"upsert\""
        ))
    } else if mode != WriteMode::Upsert || sc.deletes.is_none() {
        Some(format!(
            "stream `{name}` reads the source's changes (cdc), which are applied by key: set \
             mode = \"upsert\" and deletes = \"hard\" (or \"soft\") on the stream"
        ))
    } else if !sink_deletes {
        Some(format!(
            "stream `{name}` reads the source's changes (cdc), deletes included, but the \
             destination cannot delete rows; write it to a database destination"
        ))
    } else if !sc.transforms.is_empty() {
        Some(format!(
            "stream `{name}` reads the source's changes (cdc): deleted keys are applied as the \
             source has them, which transforms would change; remove the stream's transforms"
        ))
    } else {
        None
    }
}
