//! What each stream of a source has committed, so a file several streams read (two sheets
//! of one workbook, `sheet = "*"`, overlapping patterns) is archived or deleted once all of
//! them have committed state covering it, by the last of them to commit, and never before.
//!
//! A stream's coverage is its saved state when the run started
//! ([`ferry_core::Source::saved_states`]), then each checkpoint it commits in this run (a
//! full refresh saves no state: only its commits in this run count).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::mark::{Listed, Mark, StateShape};

/// The marks committed per stream, and the files already settled.
pub(crate) struct Ledger {
    marks: HashMap<String, Mark>,
    /// (name, modified, version) of the files settled: one that several streams had
    /// read is settled once.
    settled: HashSet<(String, u64, String)>,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger {
            marks: HashMap::new(),
            settled: HashSet::new(),
        }
    }

    /// The states saved before the run (one that is not a mark of this store counts as
    /// nothing committed).
    pub fn saved(&mut self, shape: StateShape, states: &BTreeMap<String, serde_json::Value>) {
        for (stream, state) in states {
            if let Ok(mark) = Mark::parse(shape, stream, state) {
                self.marks.insert(stream.clone(), mark);
            }
        }
    }

    /// `stream` committed `mark`.
    pub fn commit(&mut self, stream: &str, mark: Mark) {
        self.marks.insert(stream.to_string(), mark);
    }

    /// Whether `stream` has committed state covering `e`.
    pub fn covers(&self, stream: &str, e: &impl Listed) -> bool {
        self.marks.get(stream).is_some_and(|m| m.covers(e))
    }

    /// Whether `e` was settled already.
    pub fn is_settled(&self, e: &impl Listed) -> bool {
        self.settled.contains(&key(e))
    }

    /// `e` was archived or deleted.
    pub fn settle(&mut self, e: &impl Listed) {
        self.settled.insert(key(e));
    }
}

fn key(e: &impl Listed) -> (String, u64, String) {
    (e.name().to_string(), e.mtime_ns(), e.version().to_string())
}
