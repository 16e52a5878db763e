//! `after_read`: what happens to a file once its rows are committed. The reading thread
//! notes each file it read in full ([`Pending`]); when the runtime says a checkpoint is
//! committed ([`ferry_core::Source::committed`]), the files that checkpoint's mark covers
//! are moved to the archive folder or deleted, and no other: a file is never touched
//! before the state that covers it is saved. A file other streams of the source read too
//! waits until each of them has committed it ([`Ledger`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ferry_core::{Error, ErrorKind, Result, Settled};

use crate::ledger::Ledger;
use crate::mark::{Listed, Mark};
use crate::naming::{archive_folder, archived_name};
use crate::options::AfterRead;
use crate::pick::listing;
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

/// Archives or deletes the files of `stream` that its committed `mark` covers (already
/// noted in `ledger`). A file one of `others` reads too stays while any of them has not
/// committed it: the last of them to commit it settles it (`after_read` is the source's,
/// the same for all its streams).
pub(crate) fn settle<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
    others: &[Arc<Stream<S::Place>>],
    pending: &Pending<S::Entry>,
    mark: &Mark,
    ledger: &mut Ledger,
) -> Result<Vec<Settled>> {
    let spec = &stream.spec;
    if spec.after_read == AfterRead::Leave {
        return Ok(Vec::new());
    }
    let (incremental, files) = pending.take(&spec.name, mark);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let readers = readers(store, others, &files)?;
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
        if ledger.is_settled(f) {
            continue;
        }
        let others = readers.get(name).map_or(&[][..], Vec::as_slice);
        let waiting: Vec<&str> = others
            .iter()
            .filter(|o| !ledger.covers(&o.spec.name, f))
            .map(|o| o.spec.name.as_str())
            .collect();
        if !waiting.is_empty() {
            // settled by the last of them to commit it (this run or a later one)
            tracing::info!(
                stream = %spec.name,
                "{} `{name}` stays until stream(s) `{}` of this source, which read it too, have committed it",
                S::NOUN,
                waiting.join("`, `")
            );
            continue;
        }
        let settled = match spec.after_read {
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
        };
        if settled.error.is_none() {
            ledger.settle(f);
        }
        out.push(settled);
    }
    Ok(out)
}

/// Of `files`, those another stream reads, with the streams that read each.
fn readers<'a, S: Store>(
    store: &S,
    others: &'a [Arc<Stream<S::Place>>],
    files: &[S::Entry],
) -> Result<HashMap<String, Vec<&'a Stream<S::Place>>>> {
    let names: HashSet<&str> = files.iter().map(|f| f.name()).collect();
    let mut out: HashMap<String, Vec<&Stream<S::Place>>> = HashMap::new();
    for o in others {
        for f in listing(store, o)?.collect(|f| names.contains(f.name()))? {
            out.entry(f.name().to_string()).or_default().push(o);
        }
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
