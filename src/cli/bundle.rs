//! Debug bundles: when a stream fails, what is needed to reproduce it, in one folder.
//!
//! `ferry sync` writes one per failed stream into `.ferry/bundles/<run id>-<stream>/`
//! (or `--debug-bundle DIR`); `ferry replay <bundle>` runs the recorded rows through the
//! stream's transforms and checks again, writing nothing. A bundle (format
//! `ferry-bundle/v1`) holds:
//!
//! | file          | what                                                                   |
//! |---------------|------------------------------------------------------------------------|
//! | `bundle.json` | format, Ferry version, run id, client, stream, failing stage, error    |
//! | `error.txt`   | the error as the CLI showed it                                         |
//! | `schema.json` | the sample rows' columns and Ferry types                               |
//! | `rows.jsonl`  | up to 20 rows of the failing batch, as they were at the failing stage |
//! | `state.json`  | the stream's committed state when the run started                      |
//! | `replay.toml` | a config that reads `rows.jsonl` and runs the stream's steps again      |
//!
//! No secret and no protected value is in a bundle: the config is rebuilt from references
//! (`${secret:…}`), never resolved values; every file passes the leak guard; rows taken
//! before the transforms have the columns of `hash`/`encrypt`/`mask` transforms set to null.

use std::path::{Path, PathBuf};

use ferry_core::report::{FailedSample, Status, StreamReport};
use ferry_core::{Error, FerryType, RunOptions, SyncConfig};

/// The bundle format.
pub const FORMAT: &str = "ferry-bundle/v1";

/// Writes a bundle for every failed stream of `report` that has a sample; returns the
/// folders written.
pub fn write_all(
    cfg: &SyncConfig,
    report: &ferry_core::RunReport,
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
    ferry_core::state::write_atomic_private(
        &folder.join(name),
        ferry_core::redact::redact(text).as_bytes(),
    )
}

fn write_one(
    cfg: &SyncConfig,
    report: &ferry_core::RunReport,
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
    put(folder, "bundle.json", &pretty(&meta))?;
    put(
        folder,
        "error.txt",
        s.error.as_deref().unwrap_or("(no error text)"),
    )?;
    put(
        folder,
        "state.json",
        &pretty(&serde_json::json!({ "stream": s.stream, "state": s.state_before })),
    )?;
    if let Some(sample) = sample {
        put(folder, "schema.json", &pretty(&schema_json(sample)))?;
        let rows: String = sample.rows.iter().map(|r| format!("{r}\n")).collect();
        put(folder, "rows.jsonl", &rows)?;
        put(folder, "replay.toml", &replay_config(cfg, s, sample)?)?;
    }
    Ok(())
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("json")
}

fn schema_json(sample: &FailedSample) -> serde_json::Value {
    serde_json::Value::Array(
        sample
            .schema
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": FerryType::of(f).map(|t| t.to_string()).unwrap_or_else(|| f.data_type().to_string()),
                    "nullable": f.is_nullable(),
                })
            })
            .collect(),
    )
}

/// A config reading `rows.jsonl` as the stream, with the stream's own entry (its
/// transforms only when the rows were taken before them), into a throwaway folder.
fn replay_config(
    cfg: &SyncConfig,
    s: &StreamReport,
    sample: &FailedSample,
) -> Result<String, Error> {
    let original: toml::Table = cfg
        .file
        .text
        .parse()
        .map_err(|e| Error::config(format!("cannot re-read the config for the bundle: {e}")))?;
    let mut entry = original
        .get("streams")
        .and_then(|v| v.as_array())
        .and_then(|a| {
            a.iter()
                .filter_map(|t| t.as_table())
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(s.stream.as_str()))
                .cloned()
        })
        .unwrap_or_default();
    entry.insert("name".into(), s.stream.clone().into());
    for k in ["cursor", "incremental", "destination", "mode"] {
        entry.remove(k);
    }
    entry.insert("mode".into(), "append".into());
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
    let mut destination = toml::Table::new();
    destination.insert("type".into(), "file".into());
    destination.insert("path".into(), "replay-out".into());
    destination.insert("format".into(), "jsonl".into());
    let vault = cfg.dir.join(&cfg.run.vault);
    let mut run = toml::Table::new();
    run.insert(
        "vault".into(),
        std::path::absolute(&vault)
            .unwrap_or(vault)
            .display()
            .to_string()
            .into(),
    );
    run.insert("state".into(), "replay-state.json".into());
    run.insert("quarantine".into(), "replay-quarantine".into());
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
    if !config.exists() {
        return Err(Error::config(format!(
            "{}: the bundle holds no rows to replay (the stream failed before its first batch); its error was: {recorded}",
            dir.display()
        )));
    }
    println!(
        "replaying stream `{stream}` ({} rows, failed at the {} step) from {}",
        meta["rows"],
        meta["stage"].as_str().unwrap_or("?"),
        dir.display()
    );
    let opts = RunOptions::default();
    let (report, _) = super::commands::sync_one(&config, &opts, true, None).await?;
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
