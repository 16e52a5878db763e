//! The incremental mark of a file-like stream: which files are new or changed since the
//! saved state.
//!
//! Reads are file-granular: the state is a high-water mark, the modification time of the
//! newest file read in full, with the names (and versions, where the store has them) read
//! at exactly that time, so a store with coarse timestamps cannot hide a file that shares
//! one. A rerun reads, oldest first, the files above it: a file that is new or was
//! rewritten is read again whole, and an untouched one is skipped.

use ferry_core::{Error, Result};
use serde_json::{json, Value};

/// A file as a store lists it: what the mark and the estimates need.
pub trait Listed {
    /// Its name as shown and saved in state (a relative path, a key).
    fn name(&self) -> &str;
    /// Its size in bytes.
    fn size(&self) -> u64;
    /// Its last modification, nanoseconds since the epoch.
    fn mtime_ns(&self) -> u64;
    /// Its version where the store has one (an S3 ETag), else empty.
    fn version(&self) -> &str {
        ""
    }
}

/// The incremental order: oldest first, then by name.
pub fn order<E: Listed>(e: &E) -> (u64, &str) {
    (e.mtime_ns(), e.name())
}

/// How a mark is saved: the state JSON of existing syncs, which must keep resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateShape {
    /// `{ mtime_ns, modified, path, paths }`: the last file read and the files read at
    /// the newest time (files without versions).
    Paths,
    /// `{ mtime_ns, modified, objects: [{ key, etag }] }`: the objects, with versions,
    /// read at the newest time.
    Objects,
}

/// The high-water mark of an incremental read.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    shape: StateShape,
    newest: Option<Newest>,
}

/// Every file modified before `mtime_ns` was read, and of those modified exactly then,
/// the ones in `read` (name, version).
#[derive(Debug, Clone, PartialEq)]
struct Newest {
    mtime_ns: u64,
    /// The last file read in full (for people reading the state).
    last: String,
    read: Vec<(String, String)>,
}

impl Mark {
    /// The mark of nothing read yet.
    pub fn new(shape: StateShape) -> Mark {
        Mark {
            shape,
            newest: None,
        }
    }

    /// Parses the saved state of `stream` (null: nothing read yet).
    pub fn parse(shape: StateShape, stream: &str, state: &Value) -> Result<Mark> {
        if state.is_null() {
            return Ok(Mark::new(shape));
        }
        let what = match shape {
            StateShape::Paths => "a file position",
            StateShape::Objects => "an object position",
        };
        let bad = || {
            Error::data(format!(
                "the saved state of stream `{stream}` is not {what} ({state}); reset it with `ferry state reset --stream {stream}`"
            ))
        };
        let mtime_ns = state
            .get("mtime_ns")
            .and_then(|v| v.as_u64())
            .ok_or_else(bad)?;
        let newest = match shape {
            StateShape::Paths => {
                let last = state.get("path").and_then(|v| v.as_str()).ok_or_else(bad)?;
                let mut read: Vec<(String, String)> = state
                    .get("paths")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(|p| (p.to_string(), String::new())))
                            .collect()
                    })
                    .unwrap_or_default();
                if !read.iter().any(|(p, _)| p == last) {
                    read.push((last.to_string(), String::new()));
                }
                Newest {
                    mtime_ns,
                    last: last.to_string(),
                    read,
                }
            }
            StateShape::Objects => {
                let list = state
                    .get("objects")
                    .and_then(|v| v.as_array())
                    .ok_or_else(bad)?;
                let mut read = Vec::new();
                for o in list {
                    let key = o.get("key").and_then(|v| v.as_str()).ok_or_else(bad)?;
                    let etag = o.get("etag").and_then(|v| v.as_str()).unwrap_or("");
                    read.push((key.to_string(), etag.to_string()));
                }
                let last = read.last().map(|(k, _)| k.clone()).unwrap_or_default();
                Newest {
                    mtime_ns,
                    last,
                    read,
                }
            }
        };
        Ok(Mark {
            shape,
            newest: Some(newest),
        })
    }

    /// Whether `e` was read as of this mark.
    pub fn covers(&self, e: &impl Listed) -> bool {
        let Some(m) = &self.newest else {
            return false;
        };
        e.mtime_ns() < m.mtime_ns
            || (e.mtime_ns() == m.mtime_ns
                && m.read
                    .iter()
                    .any(|(n, v)| n == e.name() && v == e.version()))
    }

    /// Also counts `e` as read (files must be added oldest first, or all of them before
    /// the mark is saved).
    pub fn advance(&mut self, e: &impl Listed) {
        let entry = (e.name().to_string(), e.version().to_string());
        match &mut self.newest {
            Some(m) if m.mtime_ns == e.mtime_ns() => {
                m.read.retain(|(n, _)| n != e.name());
                m.read.push(entry);
                m.last = e.name().to_string();
            }
            Some(m) if m.mtime_ns > e.mtime_ns() => {}
            _ => {
                self.newest = Some(Newest {
                    mtime_ns: e.mtime_ns(),
                    last: e.name().to_string(),
                    read: vec![entry],
                })
            }
        }
    }

    /// The state to save (null when nothing was read).
    pub fn state(&self) -> Value {
        let Some(m) = &self.newest else {
            return Value::Null;
        };
        let micros = (m.mtime_ns / 1000).min(i64::MAX as u64) as i64;
        let modified = ferry_core::values::format_timestamp_micros(micros);
        match self.shape {
            StateShape::Paths => {
                let paths: Vec<&str> = m.read.iter().map(|(p, _)| p.as_str()).collect();
                json!({ "mtime_ns": m.mtime_ns, "modified": modified, "path": m.last, "paths": paths })
            }
            StateShape::Objects => {
                let objects: Vec<_> = m
                    .read
                    .iter()
                    .map(|(k, e)| json!({ "key": k, "etag": e }))
                    .collect();
                json!({ "mtime_ns": m.mtime_ns, "modified": modified, "objects": objects })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Obj(&'static str, u64, &'static str);

    impl Listed for Obj {
        fn name(&self) -> &str {
            self.0
        }
        fn size(&self) -> u64 {
            1
        }
        fn mtime_ns(&self) -> u64 {
            self.1
        }
        fn version(&self) -> &str {
            self.2
        }
    }

    #[test]
    fn marks_cover_what_was_read_and_nothing_else() {
        let mut m = Mark::new(StateShape::Objects);
        m.advance(&Obj("a", 10, "e1"));
        m.advance(&Obj("b", 10, "e2"));
        assert!(m.covers(&Obj("a", 10, "e1")));
        assert!(m.covers(&Obj("z", 9, "x")), "older objects were read");
        assert!(
            !m.covers(&Obj("a", 10, "e9")),
            "overwritten in the same second"
        );
        assert!(
            !m.covers(&Obj("c", 10, "e3")),
            "new object in the same second"
        );
        assert!(!m.covers(&Obj("a", 11, "e1")));
        let back = Mark::parse(StateShape::Objects, "s", &m.state()).unwrap();
        assert_eq!(back, m);
        let mut m2 = m.clone();
        m2.advance(&Obj("q", 5, "x"));
        assert_eq!(m2, m, "an older object does not move the mark back");
        assert!(Mark::parse(StateShape::Objects, "s", &json!({"cursor": 1})).is_err());
    }

    #[test]
    fn saved_states_keep_their_shape() {
        // as written by the file and S3 sources before they shared this mark
        let paths = json!({ "mtime_ns": 1_700_000_000_123_456_789u64, "modified": "2023-11-14T22:13:20.123456Z", "path": "in/b.csv", "paths": ["in/a.csv", "in/b.csv"] });
        let m = Mark::parse(StateShape::Paths, "s", &paths).unwrap();
        assert_eq!(m.state(), paths);
        assert!(m.covers(&Obj("in/a.csv", 1_700_000_000_123_456_789, "")));
        assert!(!m.covers(&Obj("in/c.csv", 1_700_000_000_123_456_789, "")));
        let objects = json!({ "mtime_ns": 5_000_000_000u64, "modified": "1970-01-01T00:00:05Z", "objects": [{ "key": "a.csv", "etag": "\"e1\"" }] });
        let m = Mark::parse(StateShape::Objects, "s", &objects).unwrap();
        assert_eq!(m.state(), objects);
        // an old file state without `paths`: its `path` was read
        let old = json!({ "mtime_ns": 7, "path": "x.csv" });
        let m = Mark::parse(StateShape::Paths, "s", &old).unwrap();
        assert!(m.covers(&Obj("x.csv", 7, "")) && !m.covers(&Obj("y.csv", 7, "")));
        let err = Mark::parse(StateShape::Paths, "s", &json!({ "cursor": 1 })).unwrap_err();
        assert!(err.to_string().contains("not a file position"), "{err}");
        assert_eq!(Mark::new(StateShape::Paths).state(), Value::Null);
    }
}
