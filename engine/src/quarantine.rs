//! Quarantine: where rejected records go, kept and explained, never dropped.
//!
//! A record a source could not read (a malformed CSV row, bad JSON), a row a transform could
//! not convert (a bad `cast`, with `on_bad_record = "quarantine"`) or a row that failed a
//! validation check of severity `error` is kept with the run id, where it came from, the
//! check that failed and the message. By default each is appended, as one JSON object per
//! line, to `<quarantine folder>/<stream>.jsonl` (default `.ferry/quarantine/`). With
//! `[run] quarantine = { destination = "destination", stream = "{stream}_quarantine" }` the
//! records are written instead through a destination connector ([`Quarantine::to_sink`]), in
//! append mode, one stream (table) per source stream, with the columns of
//! [`sink_schema`]. Either way the records are flushed (fsynced, or flushed by the sink)
//! before the stream's state is committed, so a committed checkpoint never covers a rejected
//! record that was lost. Quarantine files hold client data: they live in `.ferry/`, which
//! `ferry init` keeps out of git.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Schema, SchemaRef};
use serde::Serialize;

use ferry_core::catalog::WriteMode;
use ferry_core::sink::{Durability, Sink, StreamWriter, WriteRequest};
use ferry_core::source::Position;
use ferry_core::types::FerryType;
use ferry_core::{Error, ErrorKind, Result, ResultExt};

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

/// Keeps quarantined records: one JSON Lines file per stream, or a destination connector.
pub struct Quarantine {
    dir: PathBuf,
    files: Mutex<HashMap<String, BufWriter<std::fs::File>>>,
    sink: Option<SinkTarget>,
}

/// Records going through a destination connector.
struct SinkTarget {
    sink: Arc<dyn Sink>,
    /// The destination stream name, `{stream}` standing for the source stream.
    pattern: String,
    /// Records not yet written, per source stream.
    pending: Mutex<HashMap<String, Vec<QuarantineRecord>>>,
    /// Open writers, per source stream.
    writers: tokio::sync::Mutex<HashMap<String, Box<dyn StreamWriter>>>,
}

/// The columns of quarantined records written through a destination connector: `run_id`,
/// `stream`, `position` (json: file, line, column or key), `check`, `message`, `record` (json:
/// the row, for rows that failed a check or a transform) and `raw` (the text as read, for
/// records the source could not parse).
pub fn sink_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        FerryType::String.field("run_id", false),
        FerryType::String.field("stream", false),
        FerryType::Json.field("position", false),
        FerryType::String.field("check", false),
        FerryType::String.field("message", false),
        FerryType::Json.field("record", true),
        FerryType::String.field("raw", true),
    ]))
}

impl Quarantine {
    /// Quarantine files go in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Quarantine {
            dir: dir.into(),
            files: Mutex::new(HashMap::new()),
            sink: None,
        }
    }

    /// Records go through `sink` (in append mode) to the stream named `pattern`, where
    /// `{stream}` stands for the source stream (`{stream}_quarantine`). Errors when the sink
    /// cannot append.
    pub fn to_sink(sink: Arc<dyn Sink>, pattern: impl Into<String>) -> Result<Self> {
        let pattern = pattern.into();
        if !sink.capabilities().modes.contains(&WriteMode::Append) {
            return Err(Error::config(
                "the quarantine destination cannot append, which quarantined records need",
            ));
        }
        if pattern.trim().is_empty() {
            return Err(Error::config(
                "the quarantine `stream` is empty: name the stream, e.g. \"{stream}_quarantine\"",
            ));
        }
        Ok(Quarantine {
            dir: PathBuf::new(),
            files: Mutex::new(HashMap::new()),
            sink: Some(SinkTarget {
                sink,
                pattern,
                pending: Mutex::new(HashMap::new()),
                writers: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The destination stream the records of `stream` go to, when they go through a sink.
    pub fn sink_stream(&self, stream: &str) -> Option<String> {
        self.sink
            .as_ref()
            .map(|t| t.pattern.replace("{stream}", stream))
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
        if let Some(t) = &self.sink {
            let mut pending = t.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .entry(record.stream.clone())
                .or_default()
                .push(record.clone());
            return Ok(());
        }
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
        let line = ferry_core::redact::redact(&serde_json::to_string(record)?);
        writeln!(w, "{line}").map_err(|e| Error::io(e, "cannot write the quarantine file", &path))
    }

    /// Makes `stream`'s records durable (before its state is committed): writes and flushes
    /// them through the sink, or flushes and fsyncs the file.
    pub async fn flush_async(&self, stream: &str) -> Result<()> {
        let Some(t) = &self.sink else {
            return self.flush(stream);
        };
        let records = {
            let mut pending = t.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.remove(stream).unwrap_or_default()
        };
        if records.is_empty() {
            return Ok(());
        }
        let name = t.pattern.replace("{stream}", stream);
        let mut writers = t.writers.lock().await;
        if !writers.contains_key(stream) {
            let w = t
                .sink
                .open(WriteRequest {
                    stream: name.clone(),
                    schema: sink_schema(),
                    mode: WriteMode::Append,
                    run_id: records[0].run_id.clone(),
                    deletes: None,
                })
                .await
                .ctx("quarantine", &name)?;
            writers.insert(stream.to_string(), w);
        }
        let w = writers.get_mut(stream).expect("inserted");
        w.write(records_batch(&records)?)
            .await
            .ctx("quarantine", &name)?;
        if w.flush().await.ctx("quarantine", &name)? != Durability::Durable {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the quarantine destination did not make the records durable on flush",
            )
            .with("quarantine", &name));
        }
        Ok(())
    }

    /// Flushes `stream`'s records and closes its sink writer (at the end of the stream).
    pub async fn finish(&self, stream: &str) -> Result<()> {
        self.flush_async(stream).await?;
        if let Some(t) = &self.sink {
            let w = t.writers.lock().await.remove(stream);
            if let Some(w) = w {
                let name = t.pattern.replace("{stream}", stream);
                w.close().await.ctx("quarantine", &name)?;
            }
        }
        Ok(())
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

/// Records as a batch of [`sink_schema`], redacted like the JSON Lines files.
fn records_batch(records: &[QuarantineRecord]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&QuarantineRecord) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| f(r).map(|s| ferry_core::redact::redact(&s)))
                .collect::<Vec<_>>(),
        ))
    };
    let columns = vec![
        text(&|r| Some(r.run_id.clone())),
        text(&|r| Some(r.stream.clone())),
        text(&|r| Some(serde_json::to_string(&r.position).unwrap_or_default())),
        text(&|r| Some(r.check.clone())),
        text(&|r| Some(r.message.clone())),
        text(&|r| r.record.as_ref().map(|v| v.to_string())),
        text(&|r| r.raw.clone()),
    ];
    Ok(RecordBatch::try_new(sink_schema(), columns)?)
}
