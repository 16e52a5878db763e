//! The config `ferry replay` runs, built from a bundle's recorded data only.
//!
//! A bundle may come from anyone (a support ticket), so its `replay.toml` is read as a
//! hint, never run as written. Of it, only the stream's own entry (transforms, checks)
//! is kept; everything else is Ferry's:
//!
//! * source: `rows.jsonl` with the columns of `schema.json` (a `rows` replay), or the
//!   recorded source without credentials pointed at the loopback replay server (a replay
//!   of recorded exchanges, which the `http` source offers: [`ferry_core::Replay`]). A
//!   `replay.toml` naming any other source is refused: a replay never reaches a network
//!   system.
//! * destination: a file in the bundle, never written (replays are dry runs).
//! * `[run]`: state and quarantine in the bundle; a vault outside the bundle is refused.
//! * references: a transform's `key` (`hash`, `encrypt`) gets a throwaway key made for
//!   this replay, so the replay opens no vault; any other `${secret:…}`, `${env:…}` or
//!   `${file:…}` is refused. Nothing a bundle holds can make Ferry read a secret.

use std::path::{Component, Path, PathBuf};

use base64::Engine;
use ferry_core::{Error, ErrorKind};
use ring::rand::{SecureRandom, SystemRandom};

/// The folder of the throwaway transform keys, inside the bundle (removed after the replay).
const KEYS: &str = "replay-keys";

/// The built config (`replay-run.toml` in the bundle) and the throwaway keys it reads.
pub struct Built {
    /// The config file to run.
    pub config: PathBuf,
    keys: PathBuf,
    /// How many transform keys were replaced by throwaway ones.
    pub stand_ins: usize,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.keys);
    }
}

fn refused(dir: &Path, why: String) -> Error {
    Error::new(
        ErrorKind::ConfigInvalid,
        format!(
            "{}: refusing to replay this bundle: {why}. A replay runs only the bundle's recorded data (rows.jsonl, exchanges.jsonl) through the stream's steps; if you did not edit this bundle, it was crafted: do not run it",
            dir.join("replay.toml").display()
        ),
    )
    .with("file", dir.join("replay.toml").display())
}

/// Builds `replay-run.toml` in bundle `dir` for `stream` (`http_origin`: the replay
/// server, for `http` replays; rows replays read `rows.jsonl`).
pub fn build(
    dir: &Path,
    meta: &serde_json::Value,
    stream: &str,
    http_origin: Option<&str>,
) -> Result<Built, Error> {
    for name in [
        "replay.toml",
        "rows.jsonl",
        "schema.json",
        "exchanges.jsonl",
    ] {
        let is_link =
            std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            return Err(refused(
                dir,
                format!("its `{name}` is a link to another file"),
            ));
        }
    }
    let path = dir.join("replay.toml");
    let written: toml::Table = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(e, "cannot read the bundle", &path))?
        .parse()
        .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;

    check_vault(dir, &written)?;
    let source = match http_origin {
        Some(origin) => exchanges_source(dir, &written, meta, origin)?,
        None => rows_source(dir, &written, stream)?,
    };
    let dest_kind = written
        .get("destination")
        .and_then(|d| d.get("type"))
        .and_then(|t| t.as_str());
    if dest_kind.is_some_and(|k| k != "file") {
        return Err(refused(
            dir,
            format!(
                "its destination is `{}`; a replay writes nowhere",
                dest_kind.unwrap_or_default()
            ),
        ));
    }

    let keys = dir.join(KEYS);
    let _ = std::fs::remove_dir_all(&keys);
    let mut built = Built {
        config: dir.join("replay-run.toml"),
        keys,
        stand_ins: 0,
    };
    let mut entry = stream_entry(dir, &written, stream)?;
    if let Some(at) = find_reference(&without_transform_keys(&entry), "streams") {
        return Err(refused(
            dir,
            format!("`{at}` holds a reference (`${{…}}`) that would read a secret, an environment variable or a file"),
        ));
    }
    stand_in_keys(dir, &mut entry, &mut built)?;

    let mut top = toml::Table::new();
    if let Some(c) = meta["client"].as_str() {
        top.insert("client".into(), c.into());
    }
    top.insert("source".into(), source);
    top.insert(
        "destination".into(),
        super::bundle::replay_destination().into(),
    );
    top.insert("streams".into(), toml::Value::Array(vec![entry.into()]));
    let mut run = toml::Table::new();
    run.insert("state".into(), "replay-state.json".into());
    run.insert("quarantine".into(), "replay-quarantine".into());
    run.insert("vault".into(), "replay.vault".into());
    top.insert("run".into(), run.into());
    ferry_engine::state::write_atomic_private(
        &built.config,
        toml::to_string(&top)
            .map_err(|e| Error::config(format!("replay config: {e}")))?
            .as_bytes(),
    )?;
    Ok(built)
}

/// `[run] vault`, when written, must be a file inside the bundle.
fn check_vault(dir: &Path, written: &toml::Table) -> Result<(), Error> {
    let Some(vault) = written.get("run").and_then(|r| r.get("vault")) else {
        return Ok(());
    };
    let inside = vault.as_str().is_some_and(|v| {
        let p = Path::new(v);
        p.is_relative()
            && p.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    });
    if inside {
        Ok(())
    } else {
        Err(refused(
            dir,
            format!("its `[run] vault` ({vault}) is outside the bundle"),
        ))
    }
}

/// A rows replay reads `rows.jsonl` with the recorded columns (`schema.json`); the
/// written source may only be that file source.
fn rows_source(dir: &Path, written: &toml::Table, stream: &str) -> Result<toml::Value, Error> {
    let source = written.get("source");
    let kind = source
        .and_then(|s| s.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("(none)");
    if kind != "file" {
        return Err(refused(
            dir,
            format!("its source is `{kind}`; a rows replay reads only the bundle's rows.jsonl"),
        ));
    }
    let schema_path = dir.join("schema.json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path)
            .map_err(|e| Error::io(e, "cannot read the bundle", &schema_path))?,
    )
    .map_err(|e| Error::config(format!("{}: {e}", schema_path.display())))?;
    let mut columns = toml::Table::new();
    for c in schema.as_array().into_iter().flatten() {
        if let (Some(name), Some(t)) = (c["name"].as_str(), c["type"].as_str()) {
            columns.insert(name.into(), t.into());
        }
    }
    let mut s = toml::Table::new();
    s.insert("name".into(), stream.into());
    s.insert("path".into(), "rows.jsonl".into());
    s.insert("format".into(), "jsonl".into());
    s.insert("columns".into(), columns.into());
    let mut out = toml::Table::new();
    out.insert("type".into(), "file".into());
    out.insert("streams".into(), toml::Value::Array(vec![s.into()]));
    Ok(out.into())
}

/// An exchanges replay reads the written source (of a connector that replays what it
/// recorded, the one `bundle.json` names when it names one), its credentials removed and
/// pointed at the replay server (the `http` source: its `base_url`); any reference left
/// in it is refused.
fn exchanges_source(
    dir: &Path,
    written: &toml::Table,
    meta: &serde_json::Value,
    origin: &str,
) -> Result<toml::Value, Error> {
    let source = written
        .get("source")
        .cloned()
        .ok_or_else(|| refused(dir, "it has no [source]".into()))?;
    let kind = source
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("(none)");
    let recorded_by = meta["replay"].as_str();
    let replayer = crate::registry()
        .get(kind)
        .ok()
        .and_then(|d| d.replay())
        .filter(|_| recorded_by.is_none_or(|r| r == kind));
    let Some(replayer) = replayer else {
        let by = recorded_by.map_or(String::new(), |r| format!(" of `{r}`"));
        return Err(refused(
            dir,
            format!("its source is `{kind}`; a replay{by} reads only the recorded exchanges"),
        ));
    };
    // what the source cannot be replayed from (no or a non-http `base_url`) was written
    // into the bundle: a refusal naming its file, not a config error
    let source = super::bundle::with_json(source, |m| replayer.source_for_replay(m, Some(origin)))
        .map_err(|e| match e.kind() {
            ErrorKind::ConfigInvalid => refused(dir, e.message().to_string()),
            _ => e,
        })?;
    if let Some(at) = find_reference(&source, "source") {
        return Err(refused(
            dir,
            format!("`{at}` holds a reference (`${{…}}`) that would read a secret, an environment variable or a file"),
        ));
    }
    Ok(source)
}

/// The written `[[streams]]` entry of `stream`, without what would write or resume.
fn stream_entry(dir: &Path, written: &toml::Table, stream: &str) -> Result<toml::Table, Error> {
    let entries = written
        .get("streams")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let mut entry = entries
        .into_iter()
        .filter_map(|v| v.as_table().cloned())
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(stream))
        .ok_or_else(|| refused(dir, format!("it has no `[[streams]]` entry for `{stream}`")))?;
    for k in ["destination", "mode"] {
        entry.remove(k);
    }
    entry.insert("mode".into(), "append".into());
    Ok(entry)
}

/// Replaces each transform `key` that is a reference by a throwaway key read from a
/// file in the bundle: a hash or an encryption runs as it did, with other output values.
fn stand_in_keys(dir: &Path, entry: &mut toml::Table, built: &mut Built) -> Result<(), Error> {
    let Some(toml::Value::Array(transforms)) = entry.get_mut("transforms") else {
        return Ok(());
    };
    for t in transforms.iter_mut().filter_map(toml::Value::as_table_mut) {
        let Some(toml::Value::String(key)) = t.get("key") else {
            continue;
        };
        if !has_reference(key) {
            continue;
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::internal("no system randomness for a replay key"))?;
        std::fs::create_dir_all(&built.keys)
            .map_err(|e| Error::io(e, "cannot create the replay keys folder", dir))?;
        let name = format!("{}.key", built.stand_ins);
        ferry_engine::state::write_atomic_private(
            &built.keys.join(&name),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .as_bytes(),
        )?;
        t.insert("key".into(), format!("${{file:{KEYS}/{name}}}").into());
        built.stand_ins += 1;
    }
    Ok(())
}

/// `entry` without its transforms' `key`s (each is replaced by a throwaway key).
fn without_transform_keys(entry: &toml::Table) -> toml::Value {
    let mut probe = entry.clone();
    if let Some(toml::Value::Array(ts)) = probe.get_mut("transforms") {
        for t in ts.iter_mut().filter_map(toml::Value::as_table_mut) {
            t.remove("key");
        }
    }
    probe.into()
}

/// Whether `s` holds a `${…}` reference (`$${` is a literal `${`).
fn has_reference(s: &str) -> bool {
    s.match_indices("${")
        .any(|(i, _)| i == 0 || s.as_bytes()[i - 1] != b'$')
}

/// The path of the first value holding a reference.
fn find_reference(v: &toml::Value, at: &str) -> Option<String> {
    match v {
        toml::Value::String(s) => has_reference(s).then(|| at.to_string()),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_reference(x, &format!("{at}[{i}]"))),
        toml::Value::Table(t) => t
            .iter()
            .find_map(|(k, x)| find_reference(x, &format!("{at}.{k}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_escapes_are_not() {
        assert!(has_reference("${secret:x}"));
        assert!(has_reference("Bearer ${env:T}"));
        assert!(!has_reference("cost $${x}"));
        assert!(!has_reference("plain"));
        let v: toml::Value = toml::from_str("a = [\"x\", { b = \"${env:HOME}\" }]").unwrap();
        assert_eq!(find_reference(&v, "s").as_deref(), Some("s.a[1].b"));
    }
}

#[cfg(test)]
#[path = "bundle_replay_props.rs"]
mod props;
