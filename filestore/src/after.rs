//! `after_read`: what happens to a file once its rows are committed. The reading thread
//! notes each file it read in full ([`Pending`]); when the runtime says a checkpoint is
//! committed ([`ferry_core::Source::committed`]), the files that checkpoint's mark covers
//! are moved to the archive folder or deleted, and no other: a file is never touched
//! before the state that covers it is saved.

use std::collections::HashMap;
use std::sync::Mutex;

use ferry_core::{Error, ErrorKind, Result, Settled};

use crate::mark::{Listed, Mark, StateShape};
use crate::naming::{archive_folder, archived_name};
use crate::options::AfterRead;
use crate::store::{Store, Stream};

/// Names tried before an archive gives up on finding a free one.
const MAX_TRIES: usize = 100;

/// The files of each stream read in full and not yet settled, with the mode of the read.
pub(crate) struct Pending<E> {
    streams: Mutex<HashMap<String, (bool, Vec<E>)>>,
}

impl<E: Listed + Clone> Pending<E> {
    pub fn new() -> Self {
        Pending {
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// A read of `stream` starts (`incremental` or not): what an earlier read noted is
    /// forgotten (its rows were not committed, or it was settled).
    pub fn start(&self, stream: &str, incremental: bool) {
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(stream.to_string(), (incremental, Vec::new()));
    }

    /// `file` of `stream` was read in full (noted only for a stream [`Pending::start`]ed).
    pub fn read(&self, stream: &str, file: &E) {
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, files)) = map.get_mut(stream) {
            files.push(file.clone());
        }
    }

    /// Takes the files of `stream` that `mark` covers (the rest wait for a later
    /// checkpoint), and whether the read was incremental.
    pub fn take(&self, stream: &str, mark: &Mark) -> (bool, Vec<E>) {
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let Some((incremental, files)) = map.get_mut(stream) else {
            return (false, Vec::new());
        };
        let (covered, rest) = std::mem::take(files)
            .into_iter()
            .partition(|f| mark.covers(f));
        *files = rest;
        (*incremental, covered)
    }
}

/// Archives or deletes the files of `stream` that the committed `state` covers.
pub(crate) fn settle<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
    pending: &Pending<S::Entry>,
    shape: StateShape,
    state: &serde_json::Value,
    shared: &HashMap<String, String>,
) -> Result<Vec<Settled>> {
    let spec = &stream.spec;
    if spec.after_read == AfterRead::Leave {
        return Ok(Vec::new());
    }
    let mark = Mark::parse(shape, &spec.name, state)?;
    let (incremental, files) = pending.take(&spec.name, &mark);
    // what a failure leaves behind, said once per file
    let stays = if incremental {
        "it stays where it was; its rows are committed and the saved state covers it, so the next run does not read it again: move or delete it by hand"
    } else {
        "it stays where it was, and the next full refresh reads it again"
    };
    let root = store.root(stream);
    let mut out = Vec::with_capacity(files.len());
    for f in &files {
        let name = f.name();
        if let Some(other) = shared.get(name) {
            let action = match spec.after_read {
                AfterRead::Delete => "deleted".to_string(),
                _ => format!(
                    "archived to {}",
                    archived_name(&root, &spec.archive_to, name, 1)
                ),
            };
            out.push(Settled::failed(
                name,
                action,
                format!(
                    "stream `{other}` of this source reads it too, so it was left where it is (moving it would take its rows from `{other}`); give each stream its own files, or set after_read = \"leave\""
                ),
            ));
            continue;
        }
        out.push(match spec.after_read {
            AfterRead::Leave => continue,
            AfterRead::Delete => match store.remove(f) {
                Ok(()) => Settled::done(name, "deleted"),
                Err(e) => Settled::failed(name, "deleted", format!("{e}; {stays}")),
            },
            AfterRead::Archive => match archive(store, &root, &spec.archive_to, f) {
                Ok(to) => Settled::done(name, format!("archived to {to}")),
                Err(e) => {
                    let to = archived_name(&root, &spec.archive_to, name, 1);
                    Settled::failed(name, format!("archived to {to}"), format!("{e}; {stays}"))
                }
            },
        });
    }
    Ok(out)
}

/// Moves `f` to the first free name in the archive folder; returns that name.
fn archive<S: Store>(store: &S, root: &str, archive_to: &str, f: &S::Entry) -> Result<String> {
    for n in 1..=MAX_TRIES {
        let to = archived_name(root, archive_to, f.name(), n);
        if store.rename(f, &to)? {
            return Ok(to);
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!(
            "{MAX_TRIES} files of this name are archived already in `{}`",
            archive_folder(root, archive_to)
        ),
    ))
}
