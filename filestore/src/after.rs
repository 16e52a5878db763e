//! `after_read`: what happens to a file once its rows are committed. The reading thread
//! notes each file it read in full ([`Pending`]); when the runtime says a checkpoint is
//! committed ([`ferry_core::Source::committed`]), the files that checkpoint's mark covers
//! are moved to the archive folder or deleted, and no other: a file is never touched
//! before the state that covers it is saved.

use std::collections::HashMap;
use std::sync::Mutex;

use ferry_core::{Error, ErrorKind, Result, Settled};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mark::{Listed, Mark, StateShape};
use crate::store::{Store, Stream};

/// What to do with a file once its rows and the state that covers them are committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AfterRead {
    /// Leave it where it is (the incremental mark keeps it from being read twice).
    #[default]
    Leave,
    /// Move it to the `archive_to` folder.
    Archive,
    /// Delete it.
    Delete,
}

/// The folder a pattern starts in, ending in `/` (empty: the top): everything before the
/// `/` that precedes its first wildcard, or a plain file's folder.
pub fn pattern_root(pattern: &str) -> String {
    let literal = pattern
        .find(['*', '?', '['])
        .map_or(pattern, |i| &pattern[..i]);
    match literal.rfind('/') {
        Some(i) => literal[..=i].to_string(),
        None => String::new(),
    }
}

/// Where a stream's archive folder is, as names are given: `root` + `archive_to` + `/`.
pub fn archive_folder(root: &str, archive_to: &str) -> String {
    format!("{root}{archive_to}/")
}

/// Where `name` goes in the archive folder: its path below the stream's root, kept, so
/// files of several subfolders do not collide; the `n`th try (from 1) adds `-n` before
/// the extensions (`orders.csv.gz` → `orders-2.csv.gz`), for a name already archived.
pub fn archived_name(root: &str, archive_to: &str, name: &str, n: usize) -> String {
    let below = name.strip_prefix(root).unwrap_or(name);
    let below = below.trim_start_matches('/');
    let below = if n <= 1 {
        below.to_string()
    } else {
        let (dir, file) = match below.rfind('/') {
            Some(i) => below.split_at(i + 1),
            None => ("", below),
        };
        // the extensions start at the first dot that does not start the name
        let (stem, ext) = match file[1.min(file.len())..].find('.') {
            Some(i) => file.split_at(i + 1),
            None => (file, ""),
        };
        format!("{dir}{stem}-{n}{ext}")
    };
    format!("{}{below}", archive_folder(root, archive_to))
}

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

/// The error of a store that cannot move or delete files.
pub(crate) fn unsupported(noun: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("this store cannot {what} a {noun}: set `after_read = \"leave\"`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_archived_names() {
        assert_eq!(pattern_root("in/orders_*.csv"), "in/");
        assert_eq!(pattern_root("in/*/x/*.csv"), "in/");
        assert_eq!(pattern_root("orders.csv"), "");
        assert_eq!(pattern_root("a/b/orders.csv"), "a/b/");
        assert_eq!(pattern_root("*.csv"), "");
        assert_eq!(
            archived_name("in/", "processed", "in/2024/a.csv", 1),
            "in/processed/2024/a.csv"
        );
        assert_eq!(
            archived_name("in/", "processed", "in/a.csv.gz", 2),
            "in/processed/a-2.csv.gz"
        );
        assert_eq!(
            archived_name("", "done", ".hidden.csv", 3),
            "done/.hidden-3.csv"
        );
        assert_eq!(archived_name("", "done", "README", 2), "done/README-2");
    }
}
