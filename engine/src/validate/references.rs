//! `referential`: a value is among the values another stream of the same run delivered.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use super::columns::{col, each_text};
use super::fold_hash::IntSet;
use super::CheckConfig;
use super::Fails;
use ferry_core::values::preview;
use ferry_core::{Error, ErrorKind, Result};

/// Values the streams of one run share for `referential` checks.
///
/// The runtime's part, in order:
/// 1. after planning, [`References::plan`] with every stream's name, delivered schema and
///    checks: it validates the references and returns the order to run streams in (waves:
///    a stream only references streams of earlier waves);
/// 2. each stream's validator is made with [`Validator::for_run`](super::Validator::for_run), the context holding
///    this `References` (clones share it): it collects the values of columns other
///    streams reference, from the rows it lets through;
/// 3. once a stream's writer closed successfully, [`Validator::publish`](super::Validator::publish) hands its values
///    over; a stream whose referenced stream failed or did not publish fails at its first
///    batch, naming the referenced stream.
///
/// Values are kept as 64-bit hashes of their text form (8 bytes each, plus the set's
/// overhead): memory grows with the referenced column's distinct values, and a missing
/// value slips through only on a hash collision (about n/2^64 per lookup).
#[derive(Debug, Clone, Default)]
pub struct References {
    inner: Arc<Mutex<RefState>>,
}

#[derive(Debug, Default)]
struct RefState {
    /// Stream → its columns that other streams reference.
    wanted: HashMap<String, Vec<String>>,
    /// (stream, column) → values, once the stream published them.
    published: HashMap<(String, String), Arc<IntSet<u64>>>,
}

impl References {
    /// Plans the `referential` checks of a run. `streams` holds each stream's source name,
    /// the schema it delivers (after transforms) and its checks. Returns the shared values
    /// and the order to run the streams in: waves of indexes into `streams`, each stream
    /// referencing only streams of earlier waves. Config errors: a referenced stream that is
    /// not in the run, a column it does not deliver, a stream referencing itself, a cycle.
    pub fn plan(
        streams: &[(&str, &Schema, &[CheckConfig])],
    ) -> Result<(References, Vec<Vec<usize>>)> {
        let mut state = RefState::default();
        let mut deps: Vec<HashSet<usize>> = vec![HashSet::new(); streams.len()];
        for (i, (name, _, checks)) in streams.iter().enumerate() {
            for c in checks.iter() {
                let CheckConfig::Referential {
                    column,
                    stream,
                    stream_column,
                    ..
                } = c
                else {
                    continue;
                };
                let what = format!("check referential({column}) of stream `{name}`");
                let Some(j) = streams.iter().position(|(n, _, _)| n == stream) else {
                    let mut msg = format!(
                        "{what}: stream `{stream}` is not synced in this run (it must be, to provide the values)"
                    );
                    if let Some(best) =
                        ferry_core::suggest::nearest(stream, streams.iter().map(|(n, _, _)| *n))
                    {
                        msg.push_str(&format!("; did you mean `{best}`?"));
                    }
                    return Err(Error::config(msg));
                };
                if j == i {
                    return Err(Error::config(format!(
                        "{what}: a stream cannot reference itself"
                    )));
                }
                col(streams[j].1, stream_column, &what)?;
                deps[i].insert(j);
                let wanted = state.wanted.entry(stream.clone()).or_default();
                if !wanted.contains(stream_column) {
                    wanted.push(stream_column.clone());
                }
            }
        }
        let mut done = vec![false; streams.len()];
        let mut waves = Vec::new();
        while done.iter().any(|d| !d) {
            let wave: Vec<usize> = (0..streams.len())
                .filter(|i| !done[*i] && deps[*i].iter().all(|j| done[*j]))
                .collect();
            if wave.is_empty() {
                let cycle: Vec<&str> = (0..streams.len())
                    .filter(|i| !done[*i])
                    .map(|i| streams[i].0)
                    .collect();
                return Err(Error::config(format!(
                    "referential checks form a cycle between streams {}",
                    cycle.join(", ")
                )));
            }
            for i in &wave {
                done[*i] = true;
            }
            waves.push(wave);
        }
        Ok((
            References {
                inner: Arc::new(Mutex::new(state)),
            },
            waves,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RefState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The columns of `stream` other streams reference.
    pub fn wanted(&self, stream: &str) -> Vec<String> {
        self.lock().wanted.get(stream).cloned().unwrap_or_default()
    }

    /// Whether `stream` published the values of `column` (it finished successfully).
    pub fn is_published(&self, stream: &str, column: &str) -> bool {
        self.get(stream, column).is_some()
    }

    fn get(&self, stream: &str, column: &str) -> Option<Arc<IntSet<u64>>> {
        self.lock()
            .published
            .get(&(stream.to_string(), column.to_string()))
            .cloned()
    }

    fn publish(&self, stream: &str, column: &str, values: IntSet<u64>) {
        self.lock()
            .published
            .insert((stream.to_string(), column.to_string()), Arc::new(values));
    }
}

/// The hash `referential` compares values by (their text form).
fn value_hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(text.as_bytes());
    h.finish()
}

/// Values of a column collected for other streams' `referential` checks.
pub(super) struct Collector {
    column: String,
    col: usize,
    values: IntSet<u64>,
}

impl Collector {
    /// Collects column `column` of `stream`'s batches (as delivered, with `schema`).
    pub(super) fn new(schema: &Schema, column: String, stream: &str) -> Result<Collector> {
        let what = format!("check referential of another stream on `{stream}`");
        Ok(Collector {
            col: col(schema, &column, &what)?,
            column,
            values: IntSet::default(),
        })
    }

    /// Adds the values of a batch the stream lets through.
    pub(super) fn collect(&mut self, batch: &RecordBatch, buf: &mut String) {
        let values = &mut self.values;
        each_text(batch, self.col, buf, |_, t| {
            values.insert(value_hash(t));
        });
    }

    /// Hands the values over to the run's `references`, as `stream`'s.
    pub(super) fn publish(self, references: &References, stream: &str) {
        references.publish(stream, &self.column, self.values);
    }
}

/// A `referential` check: its column, the referenced stream's column, and that column's
/// values once the referenced stream published them.
pub(super) struct Referential {
    pub(super) col: usize,
    pub(super) stream: String,
    pub(super) column: String,
    pub(super) references: Option<References>,
    pub(super) values: Option<Arc<IntSet<u64>>>,
}

impl Referential {
    /// Pushes `(row, message)` for each value of a batch the referenced column lacks;
    /// errors when the referenced stream's values are not there (the check `name`d).
    pub(super) fn scan(
        &mut self,
        batch: &RecordBatch,
        name: &str,
        buf: &mut String,
        out: &mut Fails,
    ) -> Result<()> {
        let Referential {
            col,
            stream,
            column,
            references,
            values,
        } = self;
        if values.is_none() {
            let Some(refs) = references else {
                return Err(Error::config(format!(
                    "check {name} needs the values of stream `{stream}`, but this runtime \
                     does not share values between the streams of a run"
                )));
            };
            *values = Some(refs.get(stream, column).ok_or_else(|| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "check {name}: stream `{stream}` did not deliver its values in this run \
                         (it failed, or was not run before this stream)"
                    ),
                )
            })?);
        }
        let set = values.as_ref().expect("set above");
        each_text(batch, *col, buf, |r, t| {
            if !set.contains(&value_hash(t)) {
                out.push((r, format!("`{}` is not in `{stream}.{column}`", preview(t))));
            }
        });
        Ok(())
    }
}
