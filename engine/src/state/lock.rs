//! One run at a time per pipeline: an OS advisory lock (`flock`) on a lock file.
//!
//! The OS releases the lock when its process ends in any way (exit, crash, SIGKILL), so a
//! dead run never leaves a pipeline stuck; the file itself may stay and means nothing
//! unless a live process holds its lock. The holder writes its pid, host, what it runs
//! and when it started into the file, so the refusal can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use ferry_core::{Error, ErrorKind, Result};

/// Who holds a pipeline's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// What it runs: `sync run <run id>` or `state reset`.
    pub what: String,
    /// When it took the lock (RFC 3339, UTC).
    pub started_at: String,
}

impl Holder {
    /// This process, doing `what`.
    pub fn me(what: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            what: what.to_string(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// A held pipeline lock; dropping it releases it.
#[derive(Debug)]
pub struct PipelineLock {
    file: File,
    path: PathBuf,
}

impl PipelineLock {
    /// Takes the lock at `path` for `holder`, or fails at once naming the process that has
    /// it (`pipeline` says which pipeline, for the message).
    pub fn acquire(path: &Path, holder: &Holder, pipeline: &str) -> Result<PipelineLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(e, "cannot create folder", dir))?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = opts
            .open(path)
            .map_err(|e| Error::io(e, "cannot open the pipeline's lock file", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let who = match serde_json::from_str::<Holder>(&text) {
                    Ok(h) => format!(
                        "{} (pid {} on {}, started {})",
                        h.what, h.pid, h.host, h.started_at
                    ),
                    Err(_) => "another process (it has not written its name yet)".to_string(),
                };
                return Err(Error::new(
                    ErrorKind::Temporary,
                    format!(
                        "pipeline `{pipeline}` is already in use by {who}; two runs of one pipeline would both move its state. Wait for it to end, or stop it (a run that dies releases the lock by itself)"
                    ),
                )
                .with("file", path.display()));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(e, "cannot lock the pipeline's lock file", path))
            }
        }
        let text = serde_json::to_string(holder)?;
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()));
        written.map_err(|e| Error::io(e, "cannot write the pipeline's lock file", path))?;
        Ok(PipelineLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PipelineLock {
    fn drop(&mut self) {
        // the name goes before the lock does; the OS would release it anyway
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// This machine's name (`unknown` when it cannot be read).
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
        // or truncates, and we stop at the first NUL or the end.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if end > 0 {
                return String::from_utf8_lossy(&buf[..end]).into_owned();
            }
        }
    }
    "unknown".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.lock");
        let first = PipelineLock::acquire(&path, &Holder::me("sync run r1"), "a → b").unwrap();
        let err = PipelineLock::acquire(&path, &Holder::me("sync run r2"), "a → b").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sync run r1"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("`a → b`"), "{msg}");
        assert_eq!(err.kind(), ErrorKind::Temporary);
        drop(first);
        PipelineLock::acquire(&path, &Holder::me("sync run r3"), "a → b").unwrap();
    }
}
