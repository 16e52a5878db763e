//! Quarantine: where rejected records go, kept and explained, never dropped.
//!
//! A record a source could not read (a malformed CSV row, bad JSON) or a row that failed a
//! validation check of severity `error` is appended, as one JSON object per line, to
//! `<quarantine folder>/<stream>.jsonl` (default `.ferry/quarantine/`), with the run id,
//! where it came from, the check that failed and the message. The file is flushed to disk
//! before the stream's state is committed, so a committed checkpoint never covers a
//! rejected record that was lost. Quarantine files hold client data: they live in `.ferry/`,
//! which `ferry init` keeps out of git.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::source::Position;
use crate::{Error, Result};

/// One quarantined record.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRecord {
    /// The run that rejected it.
    pub run_id: String,
    /// The source stream.
    pub stream: String,
    /// Where it was (file and line, page, key or batch row).
    pub position: Position,
    /// `parse` for records the source could not read, else the check (`not_null(email)`).
    pub check: String,
    /// What was wrong.
    pub message: String,
    /// The row as delivered (after transforms), for check failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
    /// The raw text as read, for records the source could not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Appends quarantined records to one JSON Lines file per stream.
pub struct Quarantine {
    dir: PathBuf,
    files: Mutex<HashMap<String, BufWriter<std::fs::File>>>,
}

impl Quarantine {
    /// Quarantine files go in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Quarantine {
            dir: dir.into(),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `stream`.
    pub fn path(&self, stream: &str) -> PathBuf {
        let safe: String = stream
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.jsonl"))
    }

    /// Appends one record.
    pub fn put(&self, record: &QuarantineRecord) -> Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path(&record.stream);
        if !files.contains_key(&record.stream) {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| Error::io(e, "cannot create the quarantine folder", &self.dir))?;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(e, "cannot open the quarantine file", &path))?;
            files.insert(record.stream.clone(), BufWriter::new(f));
        }
        let w = files.get_mut(&record.stream).expect("inserted");
        let line = crate::redact::redact(&serde_json::to_string(record)?);
        writeln!(w, "{line}").map_err(|e| Error::io(e, "cannot write the quarantine file", &path))
    }

    /// Flushes and fsyncs `stream`'s file (before its state is committed).
    pub fn flush(&self, stream: &str) -> Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = files.get_mut(stream) {
            let path = self.path(stream);
            w.flush()
                .map_err(|e| Error::io(e, "cannot write the quarantine file", &path))?;
            w.get_ref()
                .sync_data()
                .map_err(|e| Error::io(e, "cannot sync the quarantine file", &path))?;
        }
        Ok(())
    }
}
