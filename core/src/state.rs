//! Per-stream state, committed atomically and only after the sink flushed.
//!
//! The state file is what makes an incremental rerun continue where the last one
//! stopped. Two rules keep it honest: it is written atomically (temp file, fsync,
//! rename, fsync of the folder), so a crash leaves the old or the new file and never
//! half of one; and the runtime commits a stream's checkpoint only once the sink has
//! made every row before it durable, so state never claims rows that were lost.
//!
//! Format (version 1, JSON):
//! ```json
//! {"version": 1, "client": "acme",
//!  "streams": {"orders": {"state": {...}, "run_id": "...", "committed_at": "..."}},
//!  "row_counts": {"orders": {"rows": 1200, "run_id": "...", "committed_at": "..."}}}
//! ```
//!
//! `row_counts` (optional; older files have none, and older builds ignore it) holds the rows
//! each stream with a `row_count` check's `max_change` delivered in its last successful run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// Version of the state file format written by this build.
pub const STATE_VERSION: u32 = 1;

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

/// The state file of one client folder, shared by all streams of a run.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    client: Option<String>,
    inner: Mutex<StateFile>,
}

impl StateStore {
    /// Opens `path` (a missing file is an empty state). A corrupt file, a newer format or
    /// another client's file is an error: better to stop than to re-sync or skip data.
    pub fn open(path: impl Into<PathBuf>, client: Option<&str>) -> Result<StateStore> {
        let path = path.into();
        sweep_stale_temps(&path);
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::new(
                        ErrorKind::DataInvalid,
                        format!(
                            "state file is not valid: {e}; restore it or run `ferry state reset`"
                        ),
                    )
                    .with("file", path.display())
                })?;
                if f.version > STATE_VERSION {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("state file has format version {}, this Ferry reads up to {STATE_VERSION}", f.version),
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
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile {
                version: STATE_VERSION,
                client: client.map(str::to_string),
                streams: BTreeMap::new(),
                row_counts: BTreeMap::new(),
            },
            Err(e) => return Err(Error::io(e, "cannot read the state file", &path)),
        };
        Ok(StateStore {
            path,
            client: client.map(str::to_string),
            inner: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
        let mut f = self.lock();
        f.version = STATE_VERSION;
        if f.client.is_none() {
            f.client = self.client.clone();
        }
        f.streams.insert(
            stream.to_string(),
            StreamState {
                state,
                run_id: run_id.to_string(),
                committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        );
        write_atomic(&self.path, &serde_json::to_vec_pretty(&*f)?)
    }

    /// The rows `stream` delivered in its last successful run, when recorded.
    pub fn previous_rows(&self, stream: &str) -> Option<u64> {
        self.lock().row_counts.get(stream).map(|c| c.rows)
    }

    /// Records the rows `stream` delivered in a successful run and writes the file atomically.
    pub fn record_rows(&self, stream: &str, rows: u64, run_id: &str) -> Result<()> {
        let mut f = self.lock();
        f.version = STATE_VERSION;
        if f.client.is_none() {
            f.client = self.client.clone();
        }
        f.row_counts.insert(
            stream.to_string(),
            RowCount {
                rows,
                run_id: run_id.to_string(),
                committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        );
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

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file:
/// a temp file in the same folder, fsync, rename over, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// Like [`write_atomic`], but the file is created readable and writable by its owner only
/// (mode 0600 on Unix) before any byte is written: for vaults and key material.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, Some(0o600))
}

/// Removes the temporary files that interrupted atomic writes of `path` left behind
/// (`.<name>.<pid>.tmp`, see [`write_atomic`]) when their process no longer runs: a run
/// killed while writing its state leaves one, and the state itself is intact (the rename
/// never happened). Where a process cannot be looked up (not Linux), the files stay.
fn sweep_stale_temps(path: &Path) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (true where that cannot be told).
fn process_runs(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, "cannot create folder", dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(e, "cannot write file atomically", path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn temp_files_of_dead_writers_are_swept_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // pid 4294967 is above Linux's limit (2^22), so no process has it
        let dead = dir.path().join(".state.json.4294967.tmp");
        let mine = dir
            .path()
            .join(format!(".state.json.{}.tmp", std::process::id()));
        let other = dir.path().join(".other.json.4294967.tmp");
        for f in [&dead, &mine, &other] {
            std::fs::write(f, "{").unwrap();
        }
        let store = StateStore::open(&path, None).unwrap();
        assert!(!dead.exists(), "a dead writer's temp file stays");
        assert!(
            mine.exists() && other.exists(),
            "a live or unrelated file went"
        );
        store
            .commit("s", serde_json::json!({"cursor": 1}), "r1")
            .unwrap();
        assert!(path.exists());
    }

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

    #[test]
    fn row_counts_are_kept_beside_the_state_and_old_files_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        // a file written before row counts existed
        std::fs::write(
            &p,
            r#"{"version": 1, "streams": {"a": {"state": {"c": 1}, "run_id": "r0", "committed_at": "x"}}}"#,
        )
        .unwrap();
        let s = StateStore::open(&p, None).unwrap();
        assert_eq!(s.previous_rows("a"), None);
        s.record_rows("b", 100, "r1").unwrap();
        let s = StateStore::open(&p, None).unwrap();
        assert_eq!(s.previous_rows("b"), Some(100));
        assert_eq!(s.get("a"), Some(serde_json::json!({"c": 1})));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\"row_counts\"") && text.contains("\"version\": 1"),
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
}
