//! Per-stream state of one pipeline, committed atomically and only after the sink flushed.
//!
//! The state file is what makes an incremental rerun continue where the last one
//! stopped. Three rules keep it honest: it is written atomically ([`write_atomic`]), so a
//! crash leaves the old or the new file and never half of one; the runtime commits a
//! stream's checkpoint only once the sink has made every row before it durable, so state
//! never claims rows that were lost; and it belongs to one pipeline ([`Pipeline`]: a config
//! file and its destination), so no other config can move its cursors, and only one run of
//! that pipeline uses it at a time ([`PipelineLock`]).
//!
//! Where: `.ferry/state/<pipeline id>.json` beside the config, or the `[run] state` file
//! when a config sets one; the lock is `.ferry/locks/<pipeline id>.lock`. Builds before format 2
//! kept one `.ferry/state.json` for the whole folder: the first pipeline that syncs (or
//! resets) takes it over, says so once, and other configs start fresh.
//!
//! Format (version 2, JSON):
//! ```json
//! {"version": 2, "client": "acme",
//!  "pipeline": {"id": "sync-1f2e3d4c", "config": "sync.toml", "destination": "sqlite path=out.db"},
//!  "streams": {"orders": {"state": {...}, "run_id": "...", "committed_at": "..."}},
//!  "row_counts": {"orders": {"rows": 1200, "run_id": "...", "committed_at": "..."}}}
//! ```
//!
//! `pipeline` names the owner; a file of another pipeline is refused. Version 1 files have
//! no `pipeline` and are adopted as above. `row_counts` (optional) holds the rows each
//! stream with a `row_count` check's `max_change` delivered in its last successful run.

mod lock;
mod pipeline;

pub use ferry_core::atomic::{write_atomic, write_atomic_private};
pub use lock::{Holder, PipelineLock};
pub use pipeline::{Pipeline, StatePaths, DEFAULT_STATE};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::SyncConfig;
use ferry_core::{Error, ErrorKind, Result};

/// Version of the state file format written by this build.
pub const STATE_VERSION: u32 = 2;

/// One stream's committed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// The connector's opaque checkpoint.
    pub state: serde_json::Value,
    /// The run that committed it.
    pub run_id: String,
    /// When (RFC 3339, UTC).
    pub committed_at: String,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Format version.
    pub version: u32,
    /// The client the folder belongs to, when the config names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The pipeline that owns the file (none in version 1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// State per stream.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
    /// Rows per stream in its last successful run (for `row_count`'s `max_change`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_counts: BTreeMap<String, RowCount>,
}

/// A stream's row count in its last successful run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCount {
    /// Rows checked (after the transforms).
    pub rows: u64,
    /// The run that counted them.
    pub run_id: String,
    /// When (RFC 3339, UTC).
    pub committed_at: String,
}

/// How a pipeline's state is opened.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// To look at it (`ferry plan`, `state show`, a dry run): no lock, nothing taken over.
    Read,
    /// To change it (`ferry sync`, `state reset`): the pipeline's lock is held until the
    /// store is dropped, and a folder-wide state file of an older build is taken over.
    /// The text says what holds the lock (`sync run <id>`), for a refused second run.
    Exclusive(&'a str),
}

/// The state file of one pipeline (or of one path, for embedders and tests), shared by all
/// streams of a run.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    client: Option<String>,
    pipeline: Option<Pipeline>,
    note: Option<String>,
    inner: Mutex<StateFile>,
    // held for the store's life; released by the OS if the process dies
    _lock: Option<PipelineLock>,
}

impl StateStore {
    /// Opens `path` (a missing file is an empty state), bound to no pipeline. A corrupt
    /// file, a newer format or another client's file is an error: better to stop than to
    /// re-sync or skip data.
    pub fn open(path: impl Into<PathBuf>, client: Option<&str>) -> Result<StateStore> {
        let path = path.into();
        ferry_core::atomic::sweep_stale_temps(&path);
        let file = read_state(&path, client)?.unwrap_or_else(|| StateFile::new(client, None));
        Ok(StateStore {
            path,
            client: client.map(str::to_string),
            pipeline: None,
            note: None,
            inner: Mutex::new(file),
            _lock: None,
        })
    }

    /// Opens the state of `cfg`'s pipeline (see the module doc for where it lives). A state
    /// file of another pipeline is an error; one of no pipeline (an older build's) is taken
    /// over when `access` is exclusive, and [`StateStore::note`] then says so.
    pub fn open_pipeline(cfg: &SyncConfig, access: Access<'_>) -> Result<StateStore> {
        let pipeline = Pipeline::of(cfg);
        let paths = StatePaths::of(cfg, &pipeline);
        let client = cfg.client.as_deref();
        let lock = match access {
            Access::Exclusive(what) => Some(PipelineLock::acquire(
                &paths.lock,
                &Holder::me(what),
                &pipeline.describe(),
            )?),
            Access::Read => None,
        };
        let exclusive = lock.is_some();
        ferry_core::atomic::sweep_stale_temps(&paths.file);
        let mut file = read_state(&paths.file, client)?;
        let mut moved_from = None;
        if let (None, Some(legacy)) = (&file, &paths.legacy) {
            if let Some(old) = read_state(legacy, client)? {
                if exclusive {
                    // the rename is the claim: of two pipelines taking over at once, one
                    // finds the file gone and starts fresh
                    if let Some(dir) = paths.file.parent() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| Error::io(e, "cannot create folder", dir))?;
                    }
                    match std::fs::rename(legacy, &paths.file) {
                        Ok(()) => {
                            file = read_state(&paths.file, client)?;
                            moved_from = Some(legacy.clone());
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(Error::io(e, "cannot take over the state file", legacy))
                        }
                    }
                } else {
                    file = Some(old);
                    moved_from = Some(legacy.clone());
                }
            }
        }
        let mut note = None;
        let file = match file {
            None => StateFile::new(client, Some(pipeline.clone())),
            Some(f) => match &f.pipeline {
                Some(owner) if owner.id != pipeline.id => {
                    return Err(Error::new(
                        ErrorKind::ConfigInvalid,
                        format!(
                            "state file belongs to pipeline `{}`, not to this config's `{}`: two configs name the same `[run] state`; give each its own file, or remove the setting (each config then gets one of its own)",
                            owner.describe(),
                            pipeline.describe()
                        ),
                    )
                    .with("file", paths.file.display()));
                }
                Some(_) => f,
                None if exclusive => {
                    let mut f = f;
                    f.version = STATE_VERSION;
                    f.pipeline = Some(pipeline.clone());
                    write_atomic(&paths.file, &serde_json::to_vec_pretty(&f)?)?;
                    let was = match &moved_from {
                        Some(old) => {
                            format!("{} (moved to {})", old.display(), paths.file.display())
                        }
                        None => paths.file.display().to_string(),
                    };
                    note = Some(format!(
                        "state: {was}, which an earlier Ferry kept for every config of this folder, now belongs to pipeline `{}` only; other configs of this folder start from scratch (their first sync reads everything)",
                        pipeline.describe()
                    ));
                    f
                }
                None => {
                    let at = moved_from.as_deref().unwrap_or(&paths.file);
                    note = Some(format!(
                        "state: {} was kept by an earlier Ferry for every config of this folder; the first of them to sync takes it over",
                        at.display()
                    ));
                    f
                }
            },
        };
        Ok(StateStore {
            path: paths.file,
            client: client.map(str::to_string),
            pipeline: Some(pipeline),
            note,
            inner: Mutex::new(file),
            _lock: lock,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pipeline the state belongs to (none for [`StateStore::open`]).
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    /// A line for the user about how the state was opened: a take-over of an older build's
    /// file (say it once: it happens once).
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Streams with saved state or a recorded row count.
    pub fn stream_names(&self) -> Vec<String> {
        let f = self.lock();
        let mut names: std::collections::BTreeSet<String> = f.streams.keys().cloned().collect();
        names.extend(f.row_counts.keys().cloned());
        names.into_iter().collect()
    }

    /// The committed state of `stream`.
    pub fn get(&self, stream: &str) -> Option<serde_json::Value> {
        self.lock().streams.get(stream).map(|s| s.state.clone())
    }

    /// A copy of the whole file.
    pub fn snapshot(&self) -> StateFile {
        self.lock().clone()
    }

    /// Commits `state` for `stream` and writes the file atomically.
    pub fn commit(&self, stream: &str, state: serde_json::Value, run_id: &str) -> Result<()> {
        self.write_with(|f| {
            let entry = StreamState {
                state,
                run_id: run_id.to_string(),
                committed_at: now(),
            };
            f.streams.insert(stream.to_string(), entry);
        })
    }

    /// The rows `stream` delivered in its last successful run, when recorded.
    pub fn previous_rows(&self, stream: &str) -> Option<u64> {
        self.lock().row_counts.get(stream).map(|c| c.rows)
    }

    /// Records the rows `stream` delivered in a successful run and writes the file atomically.
    pub fn record_rows(&self, stream: &str, rows: u64, run_id: &str) -> Result<()> {
        self.write_with(|f| {
            let entry = RowCount {
                rows,
                run_id: run_id.to_string(),
                committed_at: now(),
            };
            f.row_counts.insert(stream.to_string(), entry);
        })
    }

    /// Applies `change` to the file, stamped with this version and client, and writes it
    /// atomically.
    fn write_with(&self, change: impl FnOnce(&mut StateFile)) -> Result<()> {
        let mut f = self.lock();
        f.version = STATE_VERSION;
        if f.client.is_none() {
            f.client = self.client.clone();
        }
        change(&mut f);
        write_atomic(&self.path, &serde_json::to_vec_pretty(&*f)?)
    }

    /// Forgets the state (and recorded row count) of `stream`, or of every stream; returns
    /// the names removed.
    pub fn reset(&self, stream: Option<&str>) -> Result<Vec<String>> {
        let mut f = self.lock();
        let removed: Vec<String> = match stream {
            Some(s) => {
                let had_count = f.row_counts.remove(s).is_some();
                match f.streams.remove(s) {
                    Some(_) => vec![s.to_string()],
                    None if had_count => vec![s.to_string()],
                    None => Vec::new(),
                }
            }
            None => {
                let mut names: std::collections::BTreeSet<String> =
                    std::mem::take(&mut f.streams).into_keys().collect();
                names.extend(std::mem::take(&mut f.row_counts).into_keys());
                names.into_iter().collect()
            }
        };
        if !removed.is_empty() {
            write_atomic(&self.path, &serde_json::to_vec_pretty(&*f)?)?;
        }
        Ok(removed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateFile> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateFile {
    fn new(client: Option<&str>, pipeline: Option<Pipeline>) -> StateFile {
        StateFile {
            version: STATE_VERSION,
            client: client.map(str::to_string),
            pipeline,
            streams: BTreeMap::new(),
            row_counts: BTreeMap::new(),
        }
    }
}

/// Reads and checks a state file (`None` when there is none).
fn read_state(path: &Path, client: Option<&str>) -> Result<Option<StateFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(e, "cannot read the state file", path)),
    };
    let f: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::DataInvalid,
            format!("state file is not valid: {e}; restore it or run `ferry state reset`"),
        )
        .with("file", path.display())
    })?;
    if f.version > STATE_VERSION {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "state file has format version {}, this Ferry reads up to {STATE_VERSION}",
                f.version
            ),
        )
        .with("file", path.display()));
    }
    if let (Some(mine), Some(theirs)) = (client, f.client.as_deref()) {
        if mine != theirs {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("state file belongs to client `{theirs}`, but this config is for `{mine}`: it was copied from another client's folder"),
            )
            .with("file", path.display()));
        }
    }
    Ok(Some(f))
}

/// The time of a commit as the state file records it (UTC, to the second).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_reopen_reset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".ferry/state.json");
        let s = StateStore::open(&p, Some("acme")).unwrap();
        assert_eq!(s.get("a"), None);
        s.commit("a", serde_json::json!({"cursor": 5}), "r1")
            .unwrap();
        let s = StateStore::open(&p, Some("acme")).unwrap();
        assert_eq!(s.get("a"), Some(serde_json::json!({"cursor": 5})));
        let err = StateStore::open(&p, Some("globex")).unwrap_err();
        assert!(
            err.to_string().contains("belongs to client `acme`"),
            "{err}"
        );
        assert_eq!(s.reset(None).unwrap(), vec!["a".to_string()]);
        assert_eq!(StateStore::open(&p, None).unwrap().get("a"), None);
    }

    /// A folder holding a version 1 state file `name` (no row counts, no pipeline) whose
    /// stream `a` is at cursor `c`.
    fn version_1_file(name: &str, c: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        let state = format!(
            r#"{{"version": 1, "streams": {{"a": {{"state": {{"c": {c}}}, "run_id": "r0", "committed_at": "x"}}}}}}"#
        );
        std::fs::write(&p, state).unwrap();
        (dir, p)
    }

    #[test]
    fn row_counts_are_kept_beside_the_state_and_old_files_still_read() {
        // a file written before row counts existed
        let (_dir, p) = version_1_file("state.json", 1);
        let s = StateStore::open(&p, None).unwrap();
        assert_eq!(s.previous_rows("a"), None);
        s.record_rows("b", 100, "r1").unwrap();
        let s = StateStore::open(&p, None).unwrap();
        assert_eq!(s.previous_rows("b"), Some(100));
        assert_eq!(s.get("a"), Some(serde_json::json!({"c": 1})));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\"row_counts\"") && text.contains("\"version\": 2"),
            "{text}"
        );
        assert_eq!(s.reset(Some("b")).unwrap(), vec!["b".to_string()]);
        assert_eq!(StateStore::open(&p, None).unwrap().previous_rows("b"), None);
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(&p, "{not json").unwrap();
        let err = StateStore::open(&p, None).unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    fn config(dir: &Path, name: &str, extra: &str) -> SyncConfig {
        let text = format!(
            "[source]\ntype = \"generate\"\n[destination]\ntype = \"sqlite\"\npath = \"{name}.db\"\n{extra}"
        );
        SyncConfig::parse(
            &dir.join(name),
            text,
            dir.to_path_buf(),
            ferry_core::secret::ResolveContext::default(),
        )
        .unwrap()
    }

    #[test]
    fn an_explicit_version_1_file_is_adopted_in_place_only_by_exclusive_access() {
        let (dir, p) = version_1_file("mine.json", 7);
        let a = config(dir.path(), "a.toml", "[run]\nstate = \"mine.json\"\n");
        let b = config(dir.path(), "b.toml", "[run]\nstate = \"mine.json\"\n");
        // looking does not take it over
        let seen = StateStore::open_pipeline(&b, Access::Read).unwrap();
        assert_eq!(seen.get("a"), Some(serde_json::json!({"c": 7})));
        assert!(
            seen.note().unwrap().contains("takes it over"),
            "{:?}",
            seen.note()
        );
        drop(seen);
        let s = StateStore::open_pipeline(&a, Access::Exclusive("test")).unwrap();
        assert_eq!(s.get("a"), Some(serde_json::json!({"c": 7})));
        let note = s.note().unwrap();
        assert!(
            note.contains("now belongs to pipeline `a.toml → sqlite path=a.toml.db`"),
            "{note}"
        );
        drop(s);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\"version\": 2") && text.contains("\"a.toml\""),
            "{text}"
        );
        let again = StateStore::open_pipeline(&a, Access::Exclusive("test")).unwrap();
        assert_eq!(again.note(), None, "said twice");
        drop(again);
        let err = StateStore::open_pipeline(&b, Access::Read).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(
            err.to_string().contains("belongs to pipeline `a.toml"),
            "{err}"
        );
    }
}
