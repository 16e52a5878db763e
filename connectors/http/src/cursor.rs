//! Incremental state of a REST stream: the largest cursor value seen, and which records
//! held it.
//!
//! State is `{"column": "updated_at", "cursor": <value as the API wrote it>, "keys":
//! [<primary keys of the records holding that value>]}`. The value is sent back in
//! `cursor_param`; records are also filtered here, so an API whose parameter is
//! inclusive (`>=`, the usual case) or ignored repeats nothing: a record below the saved
//! value is dropped, one equal to it only when its key is listed. Without a primary key
//! (or past [`MAX_KEYS`] records sharing the value) `keys` is left out and records equal
//! to the saved value are read again: at-least-once, exact with upsert.

use std::cmp::Ordering;
use std::collections::HashSet;

use ferry_core::values::{parse_date, parse_timestamp_micros};
use ferry_core::{Error, FerryType, Result};
use serde_json::{Map, Value};

use crate::records::scalar_text;

/// Most keys kept for the records sharing the largest cursor value.
pub(crate) const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Key {
    fn parse(v: &Value, ty: FerryType) -> Option<Key> {
        match ty {
            FerryType::Int64 => v
                .as_i64()
                .or_else(|| v.as_str()?.trim().parse().ok())
                .map(Key::Int),
            FerryType::Float64 | FerryType::Decimal { .. } => v
                .as_f64()
                .or_else(|| v.as_str()?.trim().parse().ok())
                .map(Key::Float),
            FerryType::Timestamp => match v {
                Value::String(s) => parse_timestamp_micros(s).map(Key::Int),
                Value::Number(n) => n.as_i64().map(|s| Key::Int(s.saturating_mul(1_000_000))),
                _ => None,
            },
            FerryType::Date => v.as_str().and_then(parse_date).map(|d| Key::Int(d as i64)),
            _ => scalar_text(v).map(Key::Text),
        }
    }

    fn cmp(&self, other: &Key) -> Option<Ordering> {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => Some(a.cmp(b)),
            (Key::Float(a), Key::Float(b)) => a.partial_cmp(b),
            (Key::Text(a), Key::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Mark {
    value: Value,
    key: Key,
    /// Keys of the records holding `value`; `None`: not all known.
    keys: Option<Vec<String>>,
}

/// Follows the cursor of one read.
#[derive(Debug)]
pub(crate) struct Tracker {
    column: String,
    ty: FerryType,
    pk: Vec<String>,
    saved: Option<(Key, Option<HashSet<String>>)>,
    max: Option<Mark>,
    /// State covering every record before the current run of equal values (sorted reads).
    boundary: Option<Value>,
    sorted: bool,
    order_broken: bool,
}

impl Tracker {
    /// A tracker for `column` of type `ty`, resuming from `state` (refused when it
    /// belongs to another column).
    pub(crate) fn new(
        stream: &str,
        column: &str,
        ty: FerryType,
        pk: &[String],
        sorted: bool,
        state: Option<&Value>,
    ) -> Result<Self> {
        let mut t = Tracker {
            column: column.to_string(),
            ty,
            pk: pk.to_vec(),
            saved: None,
            max: None,
            boundary: None,
            sorted,
            order_broken: false,
        };
        if let Some(state) = state {
            let col = state.get("column").and_then(Value::as_str);
            if col != Some(column) {
                return Err(Error::config(format!(
                    "the saved state of stream `{stream}` follows {}, not `{column}`: run `ferry state reset --stream {stream}` or sync with `--full-refresh`",
                    col.map(|c| format!("`{c}`")).unwrap_or_else(|| "no cursor this source wrote".into())
                ))
                .with("stream", stream));
            }
            let value = state.get("cursor").cloned().unwrap_or(Value::Null);
            if let Some(key) = Key::parse(&value, ty) {
                let keys: Option<Vec<String>> = state.get("keys").and_then(|k| {
                    k.as_array().map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                });
                t.saved = Some((key.clone(), keys.clone().map(|k| k.into_iter().collect())));
                t.max = Some(Mark { value, key, keys });
            }
        }
        Ok(t)
    }

    /// Whether this tracker follows column `c`.
    pub(crate) fn column_is(&self, c: Option<&str>) -> bool {
        c == Some(self.column.as_str())
    }

    /// The saved value as text, for `cursor_param`.
    pub(crate) fn saved_text(&self) -> Option<String> {
        self.saved.as_ref()?;
        self.max.as_ref().and_then(|m| scalar_text(&m.value))
    }

    fn key_of(&self, row: &Map<String, Value>) -> Option<String> {
        if self.pk.is_empty() {
            return None;
        }
        let parts: Option<Vec<String>> = self
            .pk
            .iter()
            .map(|c| row.get(c).filter(|v| !v.is_null()).map(|v| v.to_string()))
            .collect();
        parts.map(|p| p.join("\u{1f}"))
    }

    /// Looks at one record: `false` when an earlier run delivered it already.
    pub(crate) fn observe(&mut self, row: &Map<String, Value>) -> bool {
        let Some(value) = row.get(&self.column).filter(|v| !v.is_null()) else {
            return true;
        };
        let Some(key) = Key::parse(value, self.ty) else {
            return true;
        };
        let id = self.key_of(row);
        if let Some((saved, keys)) = &self.saved {
            match key.cmp(saved) {
                Some(Ordering::Less) => return false,
                Some(Ordering::Equal) => {
                    if let (Some(keys), Some(id)) = (keys, &id) {
                        if keys.contains(id) {
                            return false;
                        }
                    }
                }
                _ => {}
            }
        }
        match self.max.as_mut() {
            None => {
                self.max = Some(Mark {
                    value: value.clone(),
                    key,
                    keys: id.map(|i| vec![i]),
                })
            }
            Some(m) => match key.cmp(&m.key) {
                Some(Ordering::Greater) => {
                    let before = state_of(&self.column, m);
                    self.boundary = Some(before);
                    *m = Mark {
                        value: value.clone(),
                        key,
                        keys: id.map(|i| vec![i]),
                    };
                }
                Some(Ordering::Equal) => match (&mut m.keys, id) {
                    (Some(keys), Some(id)) if keys.len() < MAX_KEYS => {
                        if !keys.contains(&id) {
                            keys.push(id)
                        }
                    }
                    (keys, _) => *keys = None,
                },
                _ => {
                    if self.sorted && !self.order_broken {
                        tracing::warn!(
                            column = %self.column,
                            "records are not in ascending cursor order although `sorted_by_cursor` is set; state is saved at the end of the stream only"
                        );
                    }
                    self.order_broken = true;
                }
            },
        }
        true
    }

    /// State safe to commit mid-stream (sorted reads only): every record before it
    /// was yielded, whatever comes next.
    pub(crate) fn boundary(&self) -> Option<Value> {
        if self.sorted && !self.order_broken {
            self.boundary.clone()
        } else {
            None
        }
    }

    /// State after the whole stream was read.
    pub(crate) fn finish(&self) -> Option<Value> {
        self.max.as_ref().map(|m| state_of(&self.column, m))
    }
}

fn state_of(column: &str, m: &Mark) -> Value {
    let mut s = serde_json::json!({ "column": column, "cursor": m.value });
    if let Some(keys) = &m.keys {
        s["keys"] = Value::from(keys.clone());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: i64, at: &str) -> Map<String, Value> {
        json!({"id": id, "at": at}).as_object().unwrap().clone()
    }

    #[test]
    fn resumes_without_repeats_or_misses_on_ties() {
        let pk = vec!["id".to_string()];
        let mut t = Tracker::new("s", "at", FerryType::Timestamp, &pk, true, None).unwrap();
        assert!(t.observe(&row(1, "2024-01-01T00:00:00Z")));
        assert!(t.observe(&row(2, "2024-01-02T00:00:00Z")));
        assert_eq!(t.boundary().unwrap()["cursor"], "2024-01-01T00:00:00Z");
        assert!(t.observe(&row(3, "2024-01-02T00:00:00Z")));
        let state = t.finish().unwrap();
        assert_eq!(state["keys"], json!(["2", "3"]));
        // an inclusive API repeats 2 and 3 and adds 4 with the same time
        let mut t =
            Tracker::new("s", "at", FerryType::Timestamp, &pk, false, Some(&state)).unwrap();
        assert_eq!(t.saved_text().as_deref(), Some("2024-01-02T00:00:00Z"));
        assert!(!t.observe(&row(1, "2024-01-01T00:00:00Z")));
        assert!(!t.observe(&row(2, "2024-01-02T00:00:00Z")));
        assert!(t.observe(&row(4, "2024-01-02T00:00:00Z")));
        assert!(t.observe(&row(3, "2024-01-03T00:00:00Z")));
        assert_eq!(t.finish().unwrap()["keys"], json!(["3"]));
        let err = Tracker::new("s", "id", FerryType::Int64, &pk, false, Some(&state)).unwrap_err();
        assert!(
            err.to_string().contains("ferry state reset --stream s"),
            "{err}"
        );
    }
}
