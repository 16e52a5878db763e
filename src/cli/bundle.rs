//! Debug bundles: when a stream fails, what is needed to reproduce it, in one folder.
//!
//! `ferry sync` writes one per failed stream into `.ferry/bundles/<run id>-<stream>/`
//! (or `--debug-bundle DIR`); `ferry replay <bundle>` runs the recorded rows through the
//! stream's transforms and checks again, or, for a stream that failed reading an API,
//! reads it again from the recorded HTTP answers; writing nothing. A bundle (format
//! `ferry-bundle/v1`) holds:
//!
//! | file              | what                                                               |
//! |-------------------|--------------------------------------------------------------------|
//! | `bundle.json`     | format, Ferry version, run id, client, stream, failing stage, error and its causes, what `replay` will do (`rows`, `http` or none) |
//! | `error.txt`       | the error as the CLI showed it (message and its context), then its causes |
//! | `catalog.json`    | the stream's catalog entry: columns, Ferry types, keys, read modes |
//! | `config.toml`     | the run's config, clear-text values of secret-looking keys `[redacted]` |
//! | `schema.json`     | the sample rows' columns and Ferry types                           |
//! | `rows.jsonl`      | up to 20 rows of the failing batch, as they were at the failing stage |
//! | `exchanges.jsonl` | the last 10 HTTP request attempts of an `http` stream and their answers |
//! | `state.json`      | the stream's committed state when the run started                  |
//! | `replay.toml`     | a config that runs the stream's steps again (on `rows.jsonl`, or on the recorded API) |
//! | `replay-state.json` | (HTTP replays of incremental streams) that state, so the same pages are asked for |
//! | `replay-run.toml` | written by `ferry replay`: the config it runs, built from the recorded data (`replay.toml` is read as a hint only, see `bundle_replay`) |
//!
//! No secret and no protected value is in a bundle: configs keep references
//! (`${secret:…}`), never resolved values; every file passes the leak guard; rows taken
//! before the transforms have the columns of `hash`/`encrypt`/`mask` transforms set to null;
//! recorded exchanges carry no credential and have those columns nulled in their bodies
//! ([`ferry_core::exchange`]); the HTTP replay config has no `auth` at all.

use std::path::{Path, PathBuf};

use ferry_core::catalog::columns_json;
use ferry_core::{Error, ErrorKind, FerryType, Replay};
use ferry_engine::report::{FailedSample, Status, StreamReport};
use ferry_engine::{RunOptions, SyncConfig};

/// The bundle format.
pub const FORMAT: &str = "ferry-bundle/v1";

/// Writes a bundle for every failed stream of `report` that has a sample; returns the
/// folders written.
pub fn write_all(
    cfg: &SyncConfig,
    report: &ferry_engine::RunReport,
    dir: Option<&Path>,
) -> Vec<PathBuf> {
    let root = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cfg.dir.join(".ferry/bundles"));
    let mut out = Vec::new();
    for s in &report.streams {
        if s.status != Status::Failed {
            continue;
        }
        let folder = root.join(format!("{}-{}", report.run_id, safe(&s.stream)));
        match write_one(cfg, report, s, &folder) {
            Ok(()) => out.push(folder),
            Err(e) => eprintln!("debug bundle not written: {e}"),
        }
    }
    out
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn put(folder: &Path, name: &str, text: &str) -> Result<(), Error> {
    ferry_engine::state::write_atomic_private(
        &folder.join(name),
        ferry_core::redact::redact(text).as_bytes(),
    )
}

fn write_one(
    cfg: &SyncConfig,
    report: &ferry_engine::RunReport,
    s: &StreamReport,
    folder: &Path,
) -> Result<(), Error> {
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::io(e, "cannot create the bundle folder", folder))?;
    let sample = s.failed_sample.as_ref();
    let meta = serde_json::json!({
        "format": FORMAT,
        "ferry_version": env!("CARGO_PKG_VERSION"),
        "created_at": report.finished_at,
        "run_id": report.run_id,
        "client": cfg.client,
        "config": cfg.file.path.canonicalize().unwrap_or(cfg.file.path.clone()),
        "stream": s.stream,
        "destination": s.destination,
        "source_type": cfg.source.kind,
        "destination_type": cfg.destination.kind,
        "stage": sample.map(|x| x.stage),
        "masked_columns": sample.map(|x| x.masked.clone()).unwrap_or_default(),
        "rows": sample.map_or(0, |x| x.rows.len()),
        "error": s.error,
    });
    // recorded exchanges replay when the source's connector offers it (the `http` source)
    let replayer = match sample {
        None if !s.exchanges.is_empty() => crate::registry()
            .get(&cfg.source.kind)
            .ok()
            .and_then(|d| d.replay()),
        _ => None,
    };
    let replay = if sample.is_some() {
        Some("rows")
    } else if replayer.is_some() {
        Some(cfg.source.kind.as_str())
    } else {
        None
    };
    let (entry, causes) = s.failure_context.clone().unwrap_or_default();
    let mut meta = meta;
    meta["error_causes"] = causes.clone().into();
    meta["exchanges"] = s.exchanges.len().into();
    meta["replay"] = replay.into();
    put(folder, "bundle.json", &pretty(&meta))?;
    if !entry.is_null() {
        put(folder, "catalog.json", &pretty(&entry))?;
    }
    put(
        folder,
        "config.toml",
        &config_without_secrets(cfg.file.text)?,
    )?;
    if !s.exchanges.is_empty() {
        let lines: String = s
            .exchanges
            .iter()
            .map(|x| format!("{}\n", serde_json::to_string(x).expect("json")))
            .collect();
        put(folder, "exchanges.jsonl", &lines)?;
    }
    let mut error = s.error.clone().unwrap_or_else(|| "(no error text)".into());
    for c in &causes {
        error.push_str(&format!("\ncaused by: {c}"));
    }
    put(folder, "error.txt", &format!("{error}\n"))?;
    put(
        folder,
        "state.json",
        &pretty(&serde_json::json!({ "stream": s.stream, "state": s.state_before })),
    )?;
    if let Some(sample) = sample {
        put(
            folder,
            "schema.json",
            &pretty(&columns_json(&sample.schema)),
        )?;
        let rows: String = sample.rows.iter().map(|r| format!("{r}\n")).collect();
        put(folder, "rows.jsonl", &rows)?;
        put(folder, "replay.toml", &replay_config(cfg, s, sample)?)?;
    } else if let Some(replayer) = &replayer {
        put(
            folder,
            "replay.toml",
            &exchanges_replay_config(cfg, s, replayer.as_ref())?,
        )?;
        if let Some(state) = &s.state_before {
            // the read resumes where the failed one did, so it asks for the same pages
            ferry_engine::state::StateStore::open(
                folder.join("replay-state.json"),
                cfg.client.as_deref(),
            )?
            .commit(&s.stream, state.clone(), "bundle")?;
        }
    }
    Ok(())
}

/// Key names whose clear-text values are secrets (values that are `${…}` references
/// are kept: they name a secret, they do not hold it).
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "key",
    "credential",
    "private",
    "signing",
    "authorization",
    "cookie",
    "session",
];

/// Whether a key's value is a secret: a name in [`SECRET_KEYS`], or a header such as
/// `X-Auth` (an `auth` word; `author` is no secret).
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|w| k.contains(w)) || k.split(['-', '_', '.']).any(|w| w == "auth")
}

/// The config as written, clear-text values of secret-looking keys replaced by
/// `[redacted]` (references such as `${secret:x}` stay; registered secrets are scrubbed
/// by the leak guard when the file is written).
fn config_without_secrets(text: &str) -> Result<String, Error> {
    fn walk(v: &mut toml::Value, key: &str) {
        match v {
            toml::Value::String(s) if !s.trim_start().starts_with("${") && secret_key(key) => {
                *s = "[redacted]".into();
            }
            toml::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, key)),
            toml::Value::Table(t) => t.iter_mut().for_each(|(k, x)| walk(x, k)),
            _ => {}
        }
    }
    let mut table: toml::Value =
        toml::Value::Table(text.parse().map_err(|e| {
            Error::config(format!("cannot re-read the config for the bundle: {e}"))
        })?);
    walk(&mut table, "");
    Ok(format!(
        "# The config of the failed run, clear-text secret values replaced by [redacted].\n{}",
        toml::to_string(&table).map_err(|e| Error::config(format!("bundle config: {e}")))?
    ))
}

/// The config of the failed run, as a table.
fn original_config(cfg: &SyncConfig) -> Result<toml::Table, Error> {
    cfg.file
        .text
        .parse()
        .map_err(|e| Error::config(format!("cannot re-read the config for the bundle: {e}")))
}

/// The original config's `[[streams]]` entry of `stream` (empty when none names it).
fn stream_entry(original: &toml::Table, stream: &str) -> toml::Table {
    original
        .get("streams")
        .and_then(|v| v.as_array())
        .and_then(|a| {
            a.iter()
                .filter_map(|t| t.as_table())
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(stream))
                .cloned()
        })
        .unwrap_or_default()
}

/// The stream's entry for a replay: named, appending, without its `destination` nor the
/// keys `drop`.
fn replay_entry(original: &toml::Table, stream: &str, drop: &[&str]) -> toml::Table {
    let mut entry = stream_entry(original, stream);
    entry.insert("name".into(), stream.into());
    for k in drop.iter().chain(&["destination", "mode"]) {
        entry.remove(*k);
    }
    entry.insert("mode".into(), "append".into());
    entry
}

/// `[run]` of a replay: state and quarantine inside the bundle, and no vault (`ferry
/// replay` gives transform keys throwaway values, see [`super::bundle_replay`]).
fn replay_run() -> toml::Table {
    let mut run = toml::Table::new();
    run.insert("state".into(), "replay-state.json".into());
    run.insert("quarantine".into(), "replay-quarantine".into());
    run
}

/// A destination that is never written: replays run as dry runs.
pub(super) fn replay_destination() -> toml::Table {
    let mut destination = toml::Table::new();
    destination.insert("type".into(), "file".into());
    destination.insert("path".into(), "replay-out".into());
    destination.insert("format".into(), "jsonl".into());
    destination
}

/// A config reading the stream from the recorded API again: the original source without
/// its credentials (the `http` source's `base_url` is pointed at the replay server when
/// replaying), the stream's own entry (transforms, checks, incremental reads from the
/// recorded state).
fn exchanges_replay_config(
    cfg: &SyncConfig,
    s: &StreamReport,
    replayer: &dyn Replay,
) -> Result<String, Error> {
    let original = original_config(cfg)?;
    let source = original
        .get("source")
        .cloned()
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    let source = with_json(source, |m| replayer.source_for_replay(m, None))?;
    let entry = replay_entry(&original, &s.stream, &[]);
    let mut top = toml::Table::new();
    if let Some(c) = &cfg.client {
        top.insert("client".into(), c.clone().into());
    }
    top.insert("source".into(), source);
    top.insert("destination".into(), replay_destination().into());
    top.insert("streams".into(), toml::Value::Array(vec![entry.into()]));
    top.insert("run".into(), replay_run().into());
    Ok(format!(
        "# Written by `ferry sync` for `ferry replay`: stream `{}` read again from the API\n\
         # answers recorded in exchanges.jsonl, through its transforms and checks.\n\
         # Nothing is written anywhere; the source has no credentials (none are needed).\n{}",
        s.stream,
        toml::to_string(&top).map_err(|e| Error::config(format!("bundle config: {e}")))?
    ))
}

/// Applies `f` to a TOML table seen as a JSON object (the connector's own rewrite).
pub(super) fn with_json(
    v: toml::Value,
    f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> Result<(), Error>,
) -> Result<toml::Value, Error> {
    let mut json = serde_json::to_value(&v)
        .map_err(|e| Error::internal(format!("bundle config as JSON: {e}")))?;
    let map = json
        .as_object_mut()
        .ok_or_else(|| Error::config("the config's [source] is not a table"))?;
    f(map)?;
    toml::Value::try_from(json).map_err(|e| Error::internal(format!("bundle config: {e}")))
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("json")
}

/// A config reading `rows.jsonl` as the stream, with the stream's own entry (its
/// transforms only when the rows were taken before them), into a throwaway folder.
fn replay_config(
    cfg: &SyncConfig,
    s: &StreamReport,
    sample: &FailedSample,
) -> Result<String, Error> {
    let original = original_config(cfg)?;
    let mut entry = replay_entry(&original, &s.stream, &["cursor", "incremental"]);
    if sample.stage != "transform" {
        entry.remove("transforms");
    }
    let mut columns = toml::Table::new();
    for f in sample.schema.fields() {
        if let Some(t) = FerryType::of(f) {
            columns.insert(f.name().clone(), t.to_string().into());
        }
    }
    let mut stream_src = toml::Table::new();
    stream_src.insert("name".into(), s.stream.clone().into());
    stream_src.insert("path".into(), "rows.jsonl".into());
    stream_src.insert("format".into(), "jsonl".into());
    stream_src.insert("columns".into(), columns.into());
    let mut source = toml::Table::new();
    source.insert("type".into(), "file".into());
    source.insert(
        "streams".into(),
        toml::Value::Array(vec![stream_src.into()]),
    );
    let destination = replay_destination();
    let run = replay_run();
    let mut top = toml::Table::new();
    if let Some(c) = &cfg.client {
        top.insert("client".into(), c.clone().into());
    }
    top.insert("source".into(), source.into());
    top.insert("destination".into(), destination.into());
    top.insert("streams".into(), toml::Value::Array(vec![entry.into()]));
    top.insert("run".into(), run.into());
    Ok(format!(
        "# Written by `ferry sync` for `ferry replay`: the failing batch's rows (rows.jsonl)\n\
         # through stream `{}`'s {} again. Nothing is written anywhere.\n{}",
        s.stream,
        if sample.stage == "transform" {
            "transforms and checks"
        } else {
            "checks"
        },
        toml::to_string(&top).map_err(|e| Error::config(format!("bundle config: {e}")))?
    ))
}

/// `ferry replay DIR`: reruns the bundle's step; exit 0 when the recorded failure
/// reproduces, 1 when it does not.
pub async fn replay(dir: &Path) -> Result<u8, Error> {
    let meta_path = dir.join("bundle.json");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .map_err(|e| Error::io(e, "cannot read the bundle", &meta_path))?,
    )
    .map_err(|e| Error::config(format!("{}: not a bundle: {e}", meta_path.display())))?;
    if meta["format"] != FORMAT {
        return Err(Error::config(format!(
            "{}: format {} is not {FORMAT}",
            meta_path.display(),
            meta["format"]
        )));
    }
    let stream = meta["stream"].as_str().unwrap_or_default().to_string();
    let recorded = meta["error"].as_str().unwrap_or_default().to_string();
    let config = dir.join("replay.toml");
    // a connector's name: its recorded exchanges replay, if it (still) offers that
    let replayer = meta["replay"]
        .as_str()
        .and_then(|kind| crate::registry().get(kind).ok()?.replay());
    if let Some(replayer) = replayer.filter(|_| config.exists()) {
        return replay_exchanges(dir, &meta, &stream, &recorded, replayer.as_ref()).await;
    }
    if !config.exists() {
        return Err(Error::config(format!(
            "{}: the bundle holds no rows to replay (the stream failed before its first batch); its error was: {recorded}",
            dir.display()
        )));
    }
    let built = super::bundle_replay::build(dir, &meta, &stream, None)?;
    println!(
        "replaying stream `{stream}` ({} rows, failed at the {} step) from {}",
        meta["rows"],
        meta["stage"].as_str().unwrap_or("?"),
        dir.display()
    );
    say_stand_ins(&built);
    let opts = RunOptions::default();
    let (report, _) = super::commands::sync_one(&built.config, &opts, true, None).await?;
    drop(built);
    let s = report.streams.iter().find(|s| s.stream == stream);
    match s.and_then(|s| s.error.clone()) {
        Some(now) => {
            println!("reproduced: {now}");
            if now != recorded {
                println!("recorded:   {recorded}");
            }
            Ok(0)
        }
        None if meta["stage"] == "write" => {
            println!("not reproduced: the stream failed while writing to its destination ({recorded}); a replay runs the transforms and checks only, and they pass");
            Ok(1)
        }
        None => {
            println!("not reproduced: the rows pass now (recorded: {recorded})");
            Ok(1)
        }
    }
}

/// `ferry replay` of a stream that failed reading an API: its recorded answers served on
/// loopback by `replayer`, the stream read from them again (a dry run). Reproduced when
/// the read fails with the recorded error (the replay server's address read as the
/// recorded API's).
async fn replay_exchanges(
    dir: &Path,
    meta: &serde_json::Value,
    stream: &str,
    recorded: &str,
    replayer: &dyn Replay,
) -> Result<u8, Error> {
    let path = dir.join("exchanges.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(e, "cannot read the bundle", &path))?;
    let mut exchanges = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        exchanges.push(
            serde_json::from_str::<ferry_core::exchange::Exchange>(line)
                .map_err(|e| bad_recording(&path, i + 1, e))?,
        );
    }
    // the config is built (or refused) before the server listens
    let pending = "http://127.0.0.1:1";
    drop(super::bundle_replay::build(
        dir,
        meta,
        stream,
        Some(pending),
    )?);
    let server = replayer.serve(exchanges.clone()).await?;
    let origin = server.recorded_origin().unwrap_or_default();
    println!(
        "replaying stream `{stream}` from {} recorded HTTP exchanges ({origin} answered by {}) in {}",
        exchanges.len(),
        server.origin(),
        dir.display()
    );
    let here = server.origin().to_string();
    let built = super::bundle_replay::build(dir, meta, stream, Some(&here))?;
    say_stand_ins(&built);
    let opts = RunOptions::default();
    let outcome = super::commands::sync_one(&built.config, &opts, true, None).await;
    drop(built);
    let now = match outcome {
        Ok((report, _)) => report
            .streams
            .iter()
            .find(|s| s.stream == stream)
            .and_then(|s| s.error.clone()),
        Err(e) => Some(ferry_core::redact::redact(&e.to_string())),
    };
    // URLs in the error name the replay server; read them as the recorded API's
    let now = now.map(|e| {
        if origin.is_empty() {
            e
        } else {
            e.replace(&here, &origin)
        }
    });
    let misses = server.misses();
    drop(server);
    match now {
        Some(now) if without_resume_point(&now) == without_resume_point(recorded) => {
            println!("reproduced: {now}");
            Ok(0)
        }
        _ if !misses.is_empty() => {
            println!(
                "not reproduced: the read asked for `{}`, which the recording does not hold (a bundle keeps the last {} exchanges of a stream; recorded: {recorded})",
                misses[0],
                ferry_core::exchange::KEEP
            );
            Ok(1)
        }
        Some(now) => {
            println!("not reproduced: the replay failed differently: {now}");
            println!("recorded: {recorded}");
            Ok(1)
        }
        None => {
            println!("not reproduced: the recorded answers read without error now (recorded: {recorded})");
            Ok(1)
        }
    }
}

/// The error for a bundle whose recording cannot be read.
fn bad_recording(path: &Path, line: usize, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConfigInvalid,
        format!(
            "{}: line {line} is not a recorded exchange: {e}",
            path.display()
        ),
    )
}

fn say_stand_ins(built: &super::bundle_replay::Built) {
    if built.stand_ins > 0 {
        println!(
            "{} transform key(s) replaced by throwaway keys: a replay opens no vault (hashed and encrypted values differ from the run's)",
            built.stand_ins
        );
    }
}

/// An error without the resume point the runtime ends it with (`; last committed: …`):
/// a replay starts from the bundle's state, not from what the failed run committed since.
fn without_resume_point(error: &str) -> &str {
    [
        "; last committed: ",
        "; nothing committed yet",
        "; full refresh, nothing is committed",
    ]
    .iter()
    .filter_map(|m| error.rfind(m))
    .min()
    .map_or(error, |i| &error[..i])
}
