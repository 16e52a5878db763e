//! Validation: declarative checks per stream, with a severity each.
//!
//! Checks run on every batch after the transforms, so they see the data as it will be
//! delivered (and never the clear value of a protected field). A row failing a check of
//! severity `error` is taken out of the batch and quarantined with the check's name and
//! message; `warn` only counts it (and keeps a few examples for the summary); `fail`
//! stops the stream at once, before its state is committed. Stream-level checks
//! (`row_count`, `freshness`) run when the stream ends; they have no row to quarantine, so
//! `error` acts like `fail` for them.
//!
//! | check | config | fails a row when |
//! |-------|--------|------------------|
//! | `not_null` | `{ type = "not_null", columns = ["id"] }` | a column is NULL |
//! | `unique` | `{ type = "unique", columns = ["id"] }` | the values were seen before in this run (memory grows with distinct values) |
//! | `regex` | `{ type = "regex", column = "email", pattern = "^.+@.+$" }` | the text does not match |
//! | `range` | `{ type = "range", column = "amount", min = 0, max = 1e9 }` | the number is outside the bounds |
//! | `allowed` | `{ type = "allowed", column = "status", values = ["paid"] }` | the text is not listed |
//! | `max_length` | `{ type = "max_length", column = "country", max = 2 }` | more characters |
//! | `type` | `{ type = "type", column = "zip", is = "int64" }` | a string column's text does not parse as the type (the parser every text source uses) |
//! | `referential` | `{ type = "referential", column = "customer_id", stream = "customers", stream_column = "id" }` | the value is not among the values `customers` delivered in this run (compared as text) |
//! | `freshness` | `{ type = "freshness", column = "updated_at", max_age = "24h" }` | at the end: the newest value (timestamp or date) is older than `max_age` (`90s`, `30m`, `24h`, `7d`, `2w`, `1h30m`), or there is none |
//! | `row_count` | `{ type = "row_count", min = 1, max = 1e6, max_change = 0.5, of = "run" }` | at the end: rows outside [min, max], or more than 50% more or fewer rows than the last run; `of = "destination"` (the default for incremental streams) counts the rows the destination holds after the run instead of the rows this run read |
//!
//! NULL passes every row check but `not_null` (and `unique`, where NULLs are equal).
//!
//! Two checks need the runtime's help: `referential` reads values another stream of the
//! same run delivered ([`References`]: the runtime runs that stream first and shares what
//! its [`Validator`] collected), and `row_count`'s `max_change` compares with the previous
//! run's count ([`RunContext::previous_rows`]; the runtime keeps each stream's count in the
//! state file after a successful run, see [`crate::state::StateStore::record_rows`]). Without
//! that help `referential` fails the stream with a config error, and `max_change` has nothing
//! to compare with and passes, with a note in the report.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

mod pattern;
use pattern::Pattern;

use crate::rows::row_json;
use ferry_core::types::FerryType;
use ferry_core::values::{format_timestamp_micros, preview, write_text, ColumnBuilder};
use ferry_core::{Error, ErrorKind, Result};

/// What happens to a row that fails a check.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Quarantine the row (default).
    #[default]
    Error,
    /// Count and report it; the row is written.
    Warn,
    /// Stop the stream before anything more is committed.
    Fail,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        })
    }
}

/// What a `row_count` check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountOf {
    /// The rows this run read (after the transforms, before the checks reject any).
    Run,
    /// The rows the destination holds once this run's rows are committed (asked of the
    /// destination: SQLite, PostgreSQL and MySQL can tell).
    Destination,
}

/// A check as written in `sync.toml` (`checks = [{ type = "not_null", columns = ["id"] }]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckConfig {
    /// The columns hold no NULL.
    NotNull {
        /// The columns.
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// No two rows of this run share these columns' values.
    Unique {
        /// The columns (together).
        columns: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text matches a regular expression (NULL passes).
    Regex {
        /// The column.
        column: String,
        /// The pattern (Rust regex syntax; anchor it with ^…$ for a full match).
        pattern: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// A number lies within [min, max] (NULL passes).
    Range {
        /// The column.
        column: String,
        /// Smallest allowed value.
        #[serde(default)]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default)]
        max: Option<f64>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The value's text is one of a list (NULL passes).
    Allowed {
        /// The column.
        column: String,
        /// Allowed values, as text.
        values: Vec<String>,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// Text is at most `max` characters (NULL passes).
    MaxLength {
        /// The column.
        column: String,
        /// Maximum length in characters.
        max: usize,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The stream yields between `min` and `max` rows, and about as many as last time
    /// (checked at the end of the stream); or, with `of = "destination"`, the destination
    /// holds that many once the run's rows are committed.
    RowCount {
        /// Fewest rows expected.
        #[serde(default)]
        min: Option<u64>,
        /// Most rows expected.
        #[serde(default)]
        max: Option<u64>,
        /// Largest change against the last run's count, as a share (`0.5`: at most 50% more
        /// or fewer rows). Passes when there is no previous count.
        #[serde(default)]
        max_change: Option<f64>,
        /// What is counted: `run` (the rows this run read, after the transforms) or
        /// `destination` (the rows the destination table holds after the run). Default:
        /// `destination` for an incremental stream (a quiet rerun reads no row, and the
        /// table still holds them all), `run` otherwise.
        #[serde(default)]
        of: Option<CountOf>,
        /// fail (default for this check: an unexpected count stops the run) or warn.
        #[serde(default = "fail")]
        severity: Severity,
    },
    /// A string column's text parses as a Ferry type (NULL passes).
    Type {
        /// The column (string or json).
        column: String,
        /// The type its text must parse as (`int64`, `float64`, `decimal(12,2)`, `date`, `timestamp`, `bool`, `json` …).
        is: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// Every value is among the values another stream of the same run delivered (NULL passes).
    Referential {
        /// The column holding the references.
        column: String,
        /// The referenced stream (its source name, as in `[[streams]]`); it runs first.
        stream: String,
        /// The referenced stream's column (values compare by their text form).
        stream_column: String,
        /// error (default), warn or fail.
        #[serde(default)]
        severity: Severity,
    },
    /// The newest value of a timestamp or date column is recent (checked at the end of the stream).
    Freshness {
        /// The column (timestamp or date).
        column: String,
        /// How old the newest value may be: `90s`, `30m`, `24h`, `7d`, `2w`, or a sum like `1h30m`.
        max_age: String,
        /// fail (default for this check) or warn.
        #[serde(default = "fail")]
        severity: Severity,
    },
}

fn fail() -> Severity {
    Severity::Fail
}

/// Figures of one check over a run, for the report and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The check (`not_null(email)`).
    pub check: String,
    /// Its severity.
    pub severity: Severity,
    /// Rows that failed it.
    pub failed: u64,
    /// Up to three failing values (as delivered: protected fields are already protected).
    pub examples: Vec<String>,
    /// Something to know about the verdict (`max_change` with no previous run to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A hasher for integers, values that are already hashes and short strings: a folded
/// 64×64-bit multiply by a random odd key per set, several times faster than SipHash, and
/// with the key unknown in advance, values cannot be chosen to collide.
#[derive(Debug, Clone, Copy)]
struct FoldHash(u64);

impl Default for FoldHash {
    fn default() -> Self {
        FoldHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for FoldHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            key: self.0,
            state: 0,
        }
    }
}

#[derive(Debug)]
struct FoldHasher {
    key: u64,
    state: u64,
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.state ^ v) * u128::from(self.key);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64)
    }
}

/// A set of integers or hashes.
type IntSet<T> = HashSet<T, FoldHash>;

/// The int64 values a `unique` check has seen. Values arriving in increasing order (ids
/// read in key order, the common case) are kept as runs of consecutive values (a start and
/// a length): ids 1..=5,000,000 are one run of 12 bytes, and each value costs one
/// comparison. Values at or below the last run's end go to a hash set, unless a run holds
/// them already.
#[derive(Default)]
struct SeenInts {
    /// First value of each run, increasing.
    starts: Vec<i64>,
    /// Each run's length minus one (a run longer than `u32::MAX + 1` values goes on as a
    /// new run).
    extra: Vec<u32>,
    others: IntSet<i64>,
    null: bool,
}

impl SeenInts {
    /// The last value of run `i`.
    fn end(&self, i: usize) -> i64 {
        self.starts[i] + i64::from(self.extra[i])
    }

    /// Records `v`; false when it was seen before.
    #[inline]
    fn insert(&mut self, v: i64) -> bool {
        let Some(last) = self.starts.len().checked_sub(1) else {
            self.starts.push(v);
            self.extra.push(0);
            return true;
        };
        let end = self.end(last);
        if v > end {
            // every value in `others` arrived at or below a run's end at the time
            if v == end + 1 && self.extra[last] < u32::MAX {
                self.extra[last] += 1;
            } else {
                self.starts.push(v);
                self.extra.push(0);
            }
            return true;
        }
        // the run that starts at or before v, if any, holds it when it ends at or after v
        let i = self.starts.partition_point(|s| *s <= v);
        if i > 0 && v <= self.end(i - 1) {
            return false;
        }
        self.others.insert(v)
    }
}

/// The values an `allowed` check accepts. When every one is at most 7 bytes long (country
/// and status codes), a value is looked up as one integer (its bytes and its length), which
/// costs a fraction of hashing and comparing text.
enum AllowedSet {
    Short(IntSet<u64>),
    Text(HashSet<String, FoldHash>),
}

impl AllowedSet {
    fn new(values: &[String]) -> AllowedSet {
        if values.iter().all(|v| v.len() <= 7) {
            AllowedSet::Short(values.iter().filter_map(|v| short_key(v)).collect())
        } else {
            AllowedSet::Text(values.iter().cloned().collect())
        }
    }

    fn contains(&self, t: &str) -> bool {
        match self {
            AllowedSet::Short(set) => short_key(t).is_some_and(|k| set.contains(&k)),
            AllowedSet::Text(set) => set.contains(t),
        }
    }
}

/// A text of at most 7 bytes as one integer: the bytes, then the length in the top byte (so
/// `"A"` and `"A\0"` differ); `None` for longer text.
fn short_key(t: &str) -> Option<u64> {
    short_key_bytes(t.as_bytes())
}

/// [`short_key`] of UTF-8 bytes.
#[inline]
fn short_key_bytes(b: &[u8]) -> Option<u64> {
    if b.len() > 7 {
        return None;
    }
    // byte by byte: a copy of a variable length calls `memcpy`, which costs more
    let mut k = (b.len() as u64) << 56;
    for (i, x) in b.iter().enumerate() {
        k |= u64::from(*x) << (8 * i);
    }
    Some(k)
}

/// Keys a `unique` check has seen.
enum Seen {
    /// One int64 column (the common `unique(id)`).
    Int(SeenInts),
    /// Anything else: each row's values, encoded without loss.
    Bytes(HashSet<Vec<u8>>),
}

enum Kind {
    NotNull(Vec<usize>),
    Unique(Vec<usize>, Seen),
    Regex(usize, Box<Pattern>),
    Range(usize, Option<f64>, Option<f64>),
    Allowed(usize, AllowedSet),
    MaxLength(usize, usize),
    Type(usize, ColumnBuilder),
    Referential {
        col: usize,
        stream: String,
        column: String,
        references: Option<References>,
        values: Option<Arc<IntSet<u64>>>,
    },
    Freshness {
        col: usize,
        max_age: chrono::TimeDelta,
        written: String,
        newest: Option<i64>,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
        max_change: Option<f64>,
        previous: Option<u64>,
        of: CountOf,
    },
}

struct Check {
    name: String,
    severity: Severity,
    kind: Kind,
    failed: u64,
    examples: Vec<String>,
    note: Option<String>,
}

/// A row that failed a check: its index in the batch, the check and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Row index in the batch it was found in.
    pub row: usize,
    /// The check (`regex(email)`).
    pub check: String,
    /// What was wrong.
    pub message: String,
}

/// What the runtime tells a stream's checks about the run around it.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The stream's source name (as in `[[streams]]`), which other streams' `referential`
    /// checks use.
    pub stream: String,
    /// Values shared between the streams of the run ([`References::plan`]); `None`: this
    /// stream's `referential` checks cannot run and fail it with a config error.
    pub references: Option<References>,
    /// The stream's row count in its last successful run, for `row_count`'s `max_change`
    /// ([`Validator::rows`] gives this run's).
    pub previous_rows: Option<u64>,
    /// The destination's row count after the stream's last successful run, for
    /// `row_count`'s `max_change` with `of = "destination"`.
    pub previous_destination_rows: Option<u64>,
    /// The stream is read incrementally: `row_count` then counts the destination's rows
    /// unless it says `of = "run"`.
    pub incremental: bool,
}

/// Values the streams of one run share for `referential` checks.
///
/// The runtime's part, in order:
/// 1. after planning, [`References::plan`] with every stream's name, delivered schema and
///    checks: it validates the references and returns the order to run streams in (waves:
///    a stream only references streams of earlier waves);
/// 2. each stream's validator is made with [`Validator::for_run`], the context holding
///    this `References` (clones share it): it collects the values of columns other
///    streams reference, from the rows it lets through;
/// 3. once a stream's writer closed successfully, [`Validator::publish`] hands its values
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
struct Collector {
    column: String,
    col: usize,
    values: IntSet<u64>,
}

/// The checks of one stream, with their running counts.
pub struct Validator {
    checks: Vec<Check>,
    rows: u64,
    stream: String,
    references: Option<References>,
    collect: Vec<Collector>,
    text: String,
}

/// What validating one batch produced.
#[derive(Debug)]
pub struct Outcome {
    /// The rows to write (rows failing an `error` check removed).
    pub batch: RecordBatch,
    /// The removed rows, as JSON objects, with why.
    pub rejected: Vec<(serde_json::Value, Failure)>,
}

fn col(schema: &Schema, name: &str, check: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut msg = format!("{check}: no column `{name}`");
        if !check.starts_with("check ") {
            msg = format!("check {msg}");
        }
        if let Some(best) = ferry_core::suggest::nearest(name, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        Error::config(msg)
    })
}

/// Whether column `c` of `batch` is text (string or json), stored as a `StringArray`.
fn is_text(batch: &RecordBatch, c: usize) -> bool {
    matches!(
        type_of(batch.schema_ref(), c),
        FerryType::String | FerryType::Json
    )
}

fn type_of(schema: &Schema, c: usize) -> FerryType {
    FerryType::of(schema.field(c)).unwrap_or(FerryType::String)
}

/// Parses `90s`, `30m`, `24h`, `7d`, `2w` and sums of them (`1h30m`).
pub fn parse_duration(s: &str) -> Option<chrono::TimeDelta> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut parts = 0;
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        if ch == ' ' && num.is_empty() {
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit: i64 = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        parts += 1;
    }
    if !num.is_empty() || parts == 0 || total == 0 {
        return None;
    }
    chrono::TimeDelta::try_seconds(total)
}

/// `3d 4h`, `5h 2m`, `42s`: an age for messages.
fn human(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// Calls `f(row, text)` for every non-NULL value of column `c` (strings as they are, other
/// types in their text form).
fn each_text(batch: &RecordBatch, c: usize, buf: &mut String, mut f: impl FnMut(usize, &str)) {
    let col = batch.column(c);
    let ty = type_of(batch.schema_ref(), c);
    if matches!(ty, FerryType::String | FerryType::Json) {
        let a = col.as_string::<i32>();
        if a.null_count() == 0 {
            for r in 0..a.len() {
                f(r, a.value(r));
            }
        } else {
            for r in 0..a.len() {
                if a.is_valid(r) {
                    f(r, a.value(r));
                }
            }
        }
        return;
    }
    for r in 0..col.len() {
        buf.clear();
        if write_text(col.as_ref(), ty, r, buf) {
            f(r, buf);
        }
    }
}

/// Appends row `r` of column `c` to a `unique` key, without loss and unambiguously.
fn encode(batch: &RecordBatch, c: usize, r: usize, key: &mut Vec<u8>, buf: &mut String) {
    let col = batch.column(c);
    if col.is_null(r) {
        key.push(0);
        return;
    }
    key.push(1);
    let mut bytes = |b: &[u8]| {
        key.extend_from_slice(&(b.len() as u64).to_le_bytes());
        key.extend_from_slice(b);
    };
    match type_of(batch.schema_ref(), c) {
        FerryType::Int64 => bytes(&col.as_primitive::<Int64Type>().value(r).to_le_bytes()),
        FerryType::Float64 => bytes(
            &col.as_primitive::<Float64Type>()
                .value(r)
                .to_bits()
                .to_le_bytes(),
        ),
        FerryType::String | FerryType::Json => bytes(col.as_string::<i32>().value(r).as_bytes()),
        ty => {
            buf.clear();
            write_text(col.as_ref(), ty, r, buf);
            bytes(buf.as_bytes());
        }
    }
}

/// The newest value of a timestamp or date column, in microseconds since the epoch.
fn newest(batch: &RecordBatch, c: usize) -> Option<i64> {
    let col = batch.column(c);
    match type_of(batch.schema_ref(), c) {
        FerryType::Timestamp => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .flatten()
            .max(),
        FerryType::Date => col
            .as_primitive::<Date32Type>()
            .iter()
            .flatten()
            .max()
            .map(|d| d as i64 * 86_400_000_000),
        _ => None,
    }
}

impl Kind {
    /// Pushes `(row, message)` for each row of `batch` that fails, in row order.
    fn scan(
        &mut self,
        batch: &RecordBatch,
        name: &str,
        buf: &mut String,
        out: &mut Vec<(usize, String)>,
    ) -> Result<()> {
        let n = batch.num_rows();
        match self {
            Kind::NotNull(cols) => {
                if cols.iter().all(|c| batch.column(*c).null_count() == 0) {
                    return Ok(());
                }
                for r in 0..n {
                    if let Some(c) = cols.iter().find(|c| batch.column(**c).is_null(r)) {
                        out.push((
                            r,
                            format!("`{}` is NULL", batch.schema_ref().field(*c).name()),
                        ));
                    }
                }
            }
            Kind::Unique(cols, Seen::Int(seen)) => {
                let a = batch.column(cols[0]).as_primitive::<Int64Type>();
                for r in 0..n {
                    let dup = if a.is_null(r) {
                        std::mem::replace(&mut seen.null, true)
                    } else {
                        !seen.insert(a.value(r))
                    };
                    if dup {
                        out.push((r, "duplicate value in this run".to_string()));
                    }
                }
            }
            Kind::Unique(cols, Seen::Bytes(seen)) => {
                let mut key = Vec::new();
                for r in 0..n {
                    key.clear();
                    for c in cols.iter() {
                        encode(batch, *c, r, &mut key, buf);
                    }
                    if seen.contains(key.as_slice()) {
                        out.push((r, "duplicate value in this run".to_string()));
                    } else {
                        seen.insert(key.clone());
                    }
                }
            }
            Kind::Regex(c, re) if is_text(batch, *c) => {
                let pattern = re.as_str().to_string();
                re.scan(batch.column(*c).as_string::<i32>(), |r, t| {
                    out.push((r, format!("`{}` does not match {pattern}", preview(t))));
                })
            }
            Kind::Regex(c, re) => each_text(batch, *c, buf, |r, t| {
                if !re.is_match(t) {
                    out.push((
                        r,
                        format!("`{}` does not match {}", preview(t), re.as_str()),
                    ));
                }
            }),
            Kind::Range(c, min, max) => {
                let (min, max) = (*min, *max);
                let bad = |v: f64| min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m);
                let msg =
                    |t: String| format!("{t} is outside [{}, {}]", fmt_bound(min), fmt_bound(max));
                let column = batch.column(*c);
                match type_of(batch.schema_ref(), *c) {
                    FerryType::Int64 => {
                        let a = column.as_primitive::<Int64Type>();
                        for (r, v) in a.values().iter().enumerate() {
                            if bad(*v as f64) && a.is_valid(r) {
                                out.push((r, msg(v.to_string())));
                            }
                        }
                    }
                    FerryType::Float64 => {
                        let a = column.as_primitive::<Float64Type>();
                        for (r, v) in a.values().iter().enumerate() {
                            if bad(*v) && a.is_valid(r) {
                                out.push((r, msg(v.to_string())));
                            }
                        }
                    }
                    FerryType::Decimal { scale, .. } => {
                        let a = column.as_primitive::<Decimal128Type>();
                        let div = 10f64.powi(scale as i32);
                        for (r, v) in a.values().iter().enumerate() {
                            if bad(*v as f64 / div) && a.is_valid(r) {
                                out.push((r, msg(a.value_as_string(r))));
                            }
                        }
                    }
                    _ => each_text(batch, *c, buf, |r, t| {
                        if t.parse::<f64>().is_ok_and(bad) {
                            out.push((r, msg(t.to_string())));
                        }
                    }),
                }
            }
            Kind::Allowed(c, AllowedSet::Short(set)) if is_text(batch, *c) => {
                // straight from the offsets and bytes: no `&str` per value
                let a = batch.column(*c).as_string::<i32>();
                let data = a.value_data();
                for (r, w) in a.value_offsets().windows(2).enumerate() {
                    let bytes = &data[w[0] as usize..w[1] as usize];
                    if !short_key_bytes(bytes).is_some_and(|k| set.contains(&k)) && a.is_valid(r) {
                        let t = a.value(r);
                        out.push((r, format!("`{}` is not an allowed value", preview(t))));
                    }
                }
            }
            Kind::Allowed(c, set) => each_text(batch, *c, buf, |r, t| {
                if !set.contains(t) {
                    out.push((r, format!("`{}` is not an allowed value", preview(t))));
                }
            }),
            Kind::MaxLength(c, max) if is_text(batch, *c) => {
                // a text is never longer in characters than in bytes: only values with
                // more bytes than `max` (read from the offsets) are counted
                let max = *max;
                let a = batch.column(*c).as_string::<i32>();
                for (r, w) in a.value_offsets().windows(2).enumerate() {
                    if (w[1] - w[0]) as usize > max && a.is_valid(r) {
                        let chars = a.value(r).chars().count();
                        if chars > max {
                            out.push((r, format!("{chars} characters, more than {max}")));
                        }
                    }
                }
            }
            Kind::MaxLength(c, max) => {
                let max = *max;
                each_text(batch, *c, buf, |r, t| {
                    if t.len() > max && t.chars().count() > max {
                        out.push((
                            r,
                            format!("{} characters, more than {max}", t.chars().count()),
                        ));
                    }
                })
            }
            // every text parses as a string
            Kind::Type(_, builder) if builder.ferry_type() == FerryType::String => {}
            Kind::Type(c, builder) => {
                let ty = builder.ferry_type();
                each_text(batch, *c, buf, |r, t| {
                    if builder.append_text(t).is_err() {
                        out.push((r, format!("`{}` is not a valid {ty}", preview(t))));
                    }
                });
                builder.finish();
            }
            Kind::Referential {
                col,
                stream,
                column,
                references,
                values,
            } => {
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
            }
            Kind::Freshness {
                col, newest: best, ..
            } => {
                if let Some(v) = newest(batch, *col) {
                    *best = Some(best.map_or(v, |b| b.max(v)));
                }
            }
            Kind::RowCount { .. } => {}
        }
        Ok(())
    }

    /// The end-of-stream verdict of a stream-level check: the problem, if any.
    fn at_end(&self, rows: u64, schema_col: &str) -> Option<String> {
        match self {
            Kind::RowCount {
                min,
                max,
                max_change,
                previous,
                of,
            } => {
                let what = match of {
                    CountOf::Run => "rows",
                    CountOf::Destination => "rows at the destination",
                };
                if min.is_some_and(|m| rows < m) || max.is_some_and(|m| rows > m) {
                    return Some(format!(
                        "{rows} {what}, expected between {} and {}",
                        fmt_count(*min),
                        fmt_count(*max)
                    ));
                }
                let (Some(limit), Some(prev)) = (max_change, previous) else {
                    return None;
                };
                let change = (rows as f64 - *prev as f64).abs() / (*prev).max(1) as f64;
                (change > *limit).then(|| {
                    format!(
                        "{rows} {what} against {prev} after the last run: a change of {:.1}%, more than max_change {:.1}%",
                        change * 100.0,
                        limit * 100.0
                    )
                })
            }
            Kind::Freshness {
                max_age,
                written,
                newest,
                ..
            } => {
                let Some(t) = newest else {
                    return Some(format!("no value of `{schema_col}` in this run"));
                };
                let age = chrono::TimeDelta::microseconds(
                    chrono::Utc::now().timestamp_micros().saturating_sub(*t),
                );
                (age > *max_age).then(|| {
                    format!(
                        "the newest `{schema_col}` is {} ({} old), older than max_age {written}",
                        format_timestamp_micros(*t),
                        human(age)
                    )
                })
            }
            _ => None,
        }
    }
}

impl Validator {
    /// Builds the checks against the schema the stream delivers (after transforms), outside
    /// any run: `referential` checks fail at the first batch, `max_change` has nothing to
    /// compare with. The runtime uses [`Validator::for_run`].
    pub fn new(configs: &[CheckConfig], schema: &Schema) -> Result<Validator> {
        Self::for_run(configs, schema, &RunContext::default())
    }

    /// Builds the checks of one stream of a run.
    pub fn for_run(
        configs: &[CheckConfig],
        schema: &Schema,
        ctx: &RunContext,
    ) -> Result<Validator> {
        let mut checks = Vec::new();
        for c in configs {
            let (name, severity, kind) = match c {
                CheckConfig::NotNull { columns, severity } => {
                    let n = format!("not_null({})", columns.join(", "));
                    let idx = columns
                        .iter()
                        .map(|x| col(schema, x, &n))
                        .collect::<Result<_>>()?;
                    (n, *severity, Kind::NotNull(idx))
                }
                CheckConfig::Unique { columns, severity } => {
                    let n = format!("unique({})", columns.join(", "));
                    let idx: Vec<usize> = columns
                        .iter()
                        .map(|x| col(schema, x, &n))
                        .collect::<Result<_>>()?;
                    let seen = if idx.len() == 1 && type_of(schema, idx[0]) == FerryType::Int64 {
                        Seen::Int(SeenInts::default())
                    } else {
                        Seen::Bytes(HashSet::new())
                    };
                    (n, *severity, Kind::Unique(idx, seen))
                }
                CheckConfig::Regex {
                    column,
                    pattern,
                    severity,
                } => {
                    let n = format!("regex({column})");
                    let re = Pattern::new(pattern)
                        .map_err(|e| Error::config(format!("check {n}: invalid pattern: {e}")))?;
                    (
                        n.clone(),
                        *severity,
                        Kind::Regex(col(schema, column, &n)?, Box::new(re)),
                    )
                }
                CheckConfig::Range {
                    column,
                    min,
                    max,
                    severity,
                } => {
                    let n = format!("range({column})");
                    let i = col(schema, column, &n)?;
                    let ty = FerryType::of(schema.field(i));
                    if !matches!(
                        ty,
                        Some(FerryType::Int64 | FerryType::Float64 | FerryType::Decimal { .. })
                    ) {
                        return Err(Error::config(format!(
                            "check {n}: column `{column}` is not numeric"
                        )));
                    }
                    (n, *severity, Kind::Range(i, *min, *max))
                }
                CheckConfig::Allowed {
                    column,
                    values,
                    severity,
                } => {
                    let n = format!("allowed({column})");
                    (
                        n.clone(),
                        *severity,
                        Kind::Allowed(col(schema, column, &n)?, AllowedSet::new(values)),
                    )
                }
                CheckConfig::MaxLength {
                    column,
                    max,
                    severity,
                } => {
                    let n = format!("max_length({column})");
                    (
                        n.clone(),
                        *severity,
                        Kind::MaxLength(col(schema, column, &n)?, *max),
                    )
                }
                CheckConfig::RowCount {
                    min,
                    max,
                    max_change,
                    of,
                    severity,
                } => {
                    let of = of.unwrap_or(if ctx.incremental {
                        CountOf::Destination
                    } else {
                        CountOf::Run
                    });
                    if max_change.is_some_and(|m| m.is_nan() || m < 0.0) {
                        return Err(Error::config(
                            "check row_count: max_change must be 0 or more (0.5 allows 50% more or fewer rows than the last run)",
                        ));
                    }
                    (
                        match of {
                            CountOf::Run => "row_count".to_string(),
                            CountOf::Destination => "row_count(destination)".to_string(),
                        },
                        *severity,
                        Kind::RowCount {
                            min: *min,
                            max: *max,
                            max_change: *max_change,
                            previous: match of {
                                CountOf::Run => ctx.previous_rows,
                                CountOf::Destination => ctx.previous_destination_rows,
                            },
                            of,
                        },
                    )
                }
                CheckConfig::Type {
                    column,
                    is,
                    severity,
                } => {
                    let n = format!("type({column})");
                    let i = col(schema, column, &n)?;
                    let have = type_of(schema, i);
                    if !matches!(have, FerryType::String | FerryType::Json) {
                        return Err(Error::config(format!(
                            "check {n}: column `{column}` is {have}, not text; the type check is for string columns"
                        )));
                    }
                    let ty = FerryType::parse(is).ok_or_else(|| {
                        Error::config(format!(
                            "check {n}: unknown type `{is}` (valid: {})",
                            FerryType::NAMES.join(", ")
                        ))
                    })?;
                    (n, *severity, Kind::Type(i, ColumnBuilder::new(ty, 0)))
                }
                CheckConfig::Referential {
                    column,
                    stream,
                    stream_column,
                    severity,
                } => {
                    let n = format!("referential({column})");
                    (
                        n.clone(),
                        *severity,
                        Kind::Referential {
                            col: col(schema, column, &n)?,
                            stream: stream.clone(),
                            column: stream_column.clone(),
                            references: ctx.references.clone(),
                            values: None,
                        },
                    )
                }
                CheckConfig::Freshness {
                    column,
                    max_age,
                    severity,
                } => {
                    let n = format!("freshness({column})");
                    let i = col(schema, column, &n)?;
                    let have = type_of(schema, i);
                    if !matches!(have, FerryType::Timestamp | FerryType::Date) {
                        return Err(Error::config(format!(
                            "check {n}: column `{column}` is {have}, not a timestamp or date"
                        )));
                    }
                    let age = parse_duration(max_age).ok_or_else(|| {
                        Error::config(format!(
                            "check {n}: max_age `{max_age}` is not a duration like `90s`, `30m`, `24h`, `7d`, `2w` or `1h30m`"
                        ))
                    })?;
                    (
                        n,
                        *severity,
                        Kind::Freshness {
                            col: i,
                            max_age: age,
                            written: max_age.clone(),
                            newest: None,
                        },
                    )
                }
            };
            checks.push(Check {
                name,
                severity,
                kind,
                failed: 0,
                examples: Vec::new(),
                note: None,
            });
        }
        let mut collect = Vec::new();
        if let Some(refs) = &ctx.references {
            for column in refs.wanted(&ctx.stream) {
                let what = format!("check referential of another stream on `{}`", ctx.stream);
                collect.push(Collector {
                    col: col(schema, &column, &what)?,
                    column,
                    values: IntSet::default(),
                });
            }
        }
        Ok(Validator {
            checks,
            rows: 0,
            stream: ctx.stream.clone(),
            references: ctx.references.clone(),
            collect,
            text: String::new(),
        })
    }

    /// Whether there is nothing to do (no checks, no values to collect for other streams).
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.collect.is_empty()
    }

    /// Rows checked so far (for the runtime to remember as the next run's `previous_rows`).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Checks one batch. Errors (kind `DataInvalid`) when a `fail` check fails.
    pub fn check(&mut self, batch: RecordBatch) -> Result<Outcome> {
        let n = batch.num_rows();
        self.rows += n as u64;
        let mut first_error: Vec<Option<Failure>> = Vec::new();
        let mut fails: Vec<(usize, String)> = Vec::new();
        for check in &mut self.checks {
            fails.clear();
            check
                .kind
                .scan(&batch, &check.name, &mut self.text, &mut fails)?;
            for (r, message) in fails.drain(..) {
                check.failed += 1;
                if check.examples.len() < 3 {
                    check.examples.push(preview(&message));
                }
                match check.severity {
                    Severity::Warn => {}
                    Severity::Fail => {
                        return Err(Error::new(
                            ErrorKind::DataInvalid,
                            format!("check {} failed: {message}", check.name),
                        )
                        .with("row", r));
                    }
                    Severity::Error => {
                        if first_error.is_empty() {
                            first_error = vec![None; n];
                        }
                        if first_error[r].is_none() {
                            first_error[r] = Some(Failure {
                                row: r,
                                check: check.name.clone(),
                                message,
                            });
                        }
                    }
                }
            }
        }
        let (batch, rejected) = if first_error.is_empty() {
            (batch, Vec::new())
        } else {
            let keep =
                BooleanArray::from(first_error.iter().map(Option::is_none).collect::<Vec<_>>());
            let rejected = first_error
                .into_iter()
                .flatten()
                .map(|f| (row_json(&batch, f.row), f))
                .collect();
            (
                arrow_select::filter::filter_record_batch(&batch, &keep)?,
                rejected,
            )
        };
        for c in &mut self.collect {
            let values = &mut c.values;
            each_text(&batch, c.col, &mut self.text, |_, t| {
                values.insert(value_hash(t));
            });
        }
        Ok(Outcome { batch, rejected })
    }

    /// Runs the end-of-stream checks; errors when a `fail` (or `error`) one fails. The
    /// checks of the destination's count wait for [`Validator::finish_destination`].
    pub fn finish(&mut self) -> Result<()> {
        let rows = self.rows;
        for check in &mut self.checks {
            if matches!(
                check.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            ) {
                continue;
            }
            let column = check
                .name
                .split_once('(')
                .map(|(_, c)| c.trim_end_matches(')'))
                .unwrap_or_default()
                .to_string();
            if let Kind::RowCount {
                max_change: Some(_),
                previous: None,
                ..
            } = check.kind
            {
                check.note = Some(format!(
                    "max_change not checked: no row count of a previous successful run; {rows} rows kept to compare the next run with"
                ));
            }
            let Some(msg) = check.kind.at_end(rows, &column) else {
                continue;
            };
            check.failed += 1;
            check.examples.push(preview(&msg));
            if check.severity != Severity::Warn {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!("check {} failed: {msg}", check.name),
                ));
            }
        }
        Ok(())
    }

    /// Whether a `row_count` check counts the destination's rows (the runtime then asks
    /// the destination, once the stream's rows are committed, and calls
    /// [`Validator::finish_destination`]).
    pub fn counts_destination(&self) -> bool {
        self.checks.iter().any(|c| {
            matches!(
                c.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            )
        })
    }

    /// Whether a `row_count` check of `of` compares with the last run (`max_change`): its
    /// count is then kept for the next run.
    pub fn keeps_count(&self, of: CountOf) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.kind, Kind::RowCount { max_change: Some(_), of: o, .. } if o == of))
    }

    /// Runs the `row_count` checks of the destination with the rows `destination` says
    /// it holds (`None`: it cannot tell, and the check says it could not be answered);
    /// errors when a `fail` (or `error`) one fails.
    pub fn finish_destination(&mut self, destination: Option<u64>) -> Result<()> {
        for check in &mut self.checks {
            let Kind::RowCount {
                of: CountOf::Destination,
                max_change,
                previous,
                ..
            } = &check.kind
            else {
                continue;
            };
            let msg = match destination {
                None => Some(
                    "cannot be answered: the destination cannot count its rows (use `of = \"run\"` to count the rows of the run)".to_string(),
                ),
                Some(rows) => {
                    if max_change.is_some() && previous.is_none() {
                        check.note = Some(format!(
                            "max_change not checked: no row count of a previous successful run; {rows} rows at the destination kept to compare the next run with"
                        ));
                    }
                    check.kind.at_end(rows, "")
                }
            };
            let Some(msg) = msg else { continue };
            check.failed += 1;
            check.examples.push(preview(&msg));
            if check.severity != Severity::Warn {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!("check {} failed: {msg}", check.name),
                ));
            }
        }
        Ok(())
    }

    /// Marks the `row_count` checks of the destination as not run, saying `why` (a
    /// trial rolled back what it wrote: the destination's count is not this run's).
    pub fn skip_destination(&mut self, why: &str) {
        for check in &mut self.checks {
            if matches!(
                check.kind,
                Kind::RowCount {
                    of: CountOf::Destination,
                    ..
                }
            ) {
                check.note = Some(why.to_string());
            }
        }
    }

    /// Hands the values collected for other streams' `referential` checks to the run's
    /// [`References`]; the runtime calls it once the stream's rows are durable.
    pub fn publish(&mut self) {
        let Some(refs) = &self.references else {
            return;
        };
        for c in self.collect.drain(..) {
            refs.publish(&self.stream, &c.column, c.values);
        }
    }

    /// Figures per check.
    pub fn report(&self) -> Vec<CheckReport> {
        self.checks
            .iter()
            .map(|c| CheckReport {
                check: c.name.clone(),
                severity: c.severity,
                failed: c.failed,
                examples: c.examples.clone(),
                note: c.note.clone(),
            })
            .collect()
    }
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}

fn fmt_count(b: Option<u64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("email", true),
            FerryType::Float64.field("amount", true),
            FerryType::String.field("status", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3, 3])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("a@x.io"),
                    None,
                    Some("bad"),
                    Some("c@x.io"),
                ])),
                Arc::new(arrow_array::Float64Array::from(vec![
                    Some(5.0),
                    Some(-1.0),
                    Some(7.0),
                    None,
                ])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("paid"),
                    Some("paid"),
                    Some("lost"),
                    Some("open"),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn allowed_short_values_are_looked_up_exactly() {
        let short = AllowedSet::new(&[
            "DE".into(),
            "".into(),
            "A".into(),
            "ü".into(),
            "seven77".into(),
        ]);
        assert!(matches!(short, AllowedSet::Short(_)));
        for yes in ["DE", "", "A", "ü", "seven77"] {
            assert!(short.contains(yes), "{yes}");
        }
        for no in [
            "de", "D", "DE ", "A\0", "\0", "seven778", "seven7", "u", "eight888",
        ] {
            assert!(!short.contains(no), "{no:?}");
        }
        let long = AllowedSet::new(&["DE".into(), "eight888".into()]);
        assert!(matches!(long, AllowedSet::Text(_)));
        assert!(long.contains("DE") && long.contains("eight888"));
        assert!(!long.contains("eight88") && !long.contains("de"));
    }

    #[test]
    fn max_length_counts_characters_of_text_from_the_offsets() {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::String.field("s", true)
        ]));
        let values = arrow_array::StringArray::from(vec![
            Some("toolongvalue"),
            Some("üüü"),
            Some("üüüü"),
            None,
            Some("abc"),
            Some("abcd"),
            Some(""),
        ]);
        // a slice: its offsets do not start at 0
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)])
            .unwrap()
            .slice(1, 6);
        let checks = parse(r#"checks = [{ type = "max_length", column = "s", max = 3 }]"#);
        let mut v = Validator::new(&checks, &schema).unwrap();
        let out = v.check(batch).unwrap();
        let bad: Vec<(usize, &str)> = out
            .rejected
            .iter()
            .map(|(_, f)| (f.row, f.message.as_str()))
            .collect();
        assert_eq!(
            bad,
            vec![
                (1, "4 characters, more than 3"),
                (4, "4 characters, more than 3")
            ]
        );
        assert_eq!(out.batch.num_rows(), 4);
    }

    fn parse(toml_text: &str) -> Vec<CheckConfig> {
        #[derive(Deserialize)]
        struct W {
            checks: Vec<CheckConfig>,
        }
        toml::from_str::<W>(toml_text).unwrap().checks
    }

    #[test]
    fn each_check_passes_and_fails() {
        let cases = [
            (
                r#"checks = [{ type = "not_null", columns = ["email"] }]"#,
                vec![2],
            ),
            (
                r#"checks = [{ type = "unique", columns = ["id"] }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "regex", column = "email", pattern = "^[^@]+@[^@]+$" }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "range", column = "amount", min = 0 }]"#,
                vec![2],
            ),
            (
                r#"checks = [{ type = "allowed", column = "status", values = ["paid", "open"] }]"#,
                vec![3],
            ),
            (
                r#"checks = [{ type = "max_length", column = "status", max = 3 }]"#,
                vec![1, 2, 3, 3],
            ),
        ];
        for (cfg, bad_ids) in cases {
            let mut v = Validator::new(&parse(cfg), &batch().schema()).unwrap();
            let out = v.check(batch()).unwrap();
            let ids: Vec<i64> = out
                .rejected
                .iter()
                .map(|(row, _)| row["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, bad_ids, "{cfg}");
            assert_eq!(
                out.batch.num_rows() + out.rejected.len(),
                4,
                "{cfg}: rows lost"
            );
            assert_eq!(v.report()[0].failed as usize, bad_ids.len());
        }
    }

    #[test]
    fn warn_keeps_rows_and_fail_stops() {
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "warn" }]"#),
            &batch().schema(),
        )
        .unwrap();
        let out = v.check(batch()).unwrap();
        assert_eq!(out.batch.num_rows(), 4);
        assert_eq!(v.report()[0].failed, 1);
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "fail" }]"#),
            &batch().schema(),
        )
        .unwrap();
        assert_eq!(v.check(batch()).unwrap_err().kind(), ErrorKind::DataInvalid);
    }

    #[test]
    fn row_count_and_unknown_column() {
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "row_count", min = 10 }]"#),
            &batch().schema(),
        )
        .unwrap();
        v.check(batch()).unwrap();
        assert!(v.finish().unwrap_err().to_string().contains("4 rows"));
        let e = Validator::new(
            &parse(r#"checks = [{ type = "not_null", columns = ["emial"] }]"#),
            &batch().schema(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("did you mean `email`"), "{e}");
    }

    fn with_text(col: &str, values: Vec<Option<&str>>) -> RecordBatch {
        let n = values.len() as i64;
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field(col, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from((1..=n).collect::<Vec<_>>())),
                Arc::new(arrow_array::StringArray::from(values)),
            ],
        )
        .unwrap()
    }

    fn rejected_ids(out: &Outcome) -> Vec<i64> {
        out.rejected
            .iter()
            .map(|(row, _)| row["id"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn type_check_parses_text_like_the_sources() {
        let b = with_text(
            "zip",
            vec![Some("75001"), Some("7500A"), None, Some(" 12 ")],
        );
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "type", column = "zip", is = "int64" }]"#),
            &b.schema(),
        )
        .unwrap();
        let out = v.check(b.clone()).unwrap();
        assert_eq!(rejected_ids(&out), [2]);
        assert!(out.rejected[0]
            .1
            .message
            .contains("`7500A` is not a valid int64"));
        let mut v = Validator::new(
            &parse(r#"checks = [{ type = "type", column = "zip", is = "date" }]"#),
            &b.schema(),
        )
        .unwrap();
        assert_eq!(rejected_ids(&v.check(b.clone()).unwrap()), [1, 2, 4]);
        let e = Validator::new(
            &parse(r#"checks = [{ type = "type", column = "id", is = "int64" }]"#),
            &b.schema(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("not text"), "{e}");
        assert!(Validator::new(
            &parse(r#"checks = [{ type = "type", column = "zip", is = "integr" }]"#),
            &b.schema()
        )
        .is_err());
    }

    #[test]
    fn referential_uses_values_another_stream_delivered() {
        let customers = with_text("email", vec![Some("a"), Some("b")]);
        let orders = {
            let schema = Arc::new(arrow_schema::Schema::new(vec![
                FerryType::Int64.field("id", false),
                FerryType::Int64.field("customer_id", true),
            ]));
            RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(arrow_array::Int64Array::from(vec![10, 11, 12, 13])),
                    Arc::new(arrow_array::Int64Array::from(vec![
                        Some(1),
                        Some(3),
                        None,
                        Some(2),
                    ])),
                ],
            )
            .unwrap()
        };
        let order_checks = parse(
            r#"checks = [{ type = "referential", column = "customer_id", stream = "customers", stream_column = "id" }]"#,
        );
        let no_checks: Vec<CheckConfig> = Vec::new();
        let (os, cs) = (orders.schema(), customers.schema());
        let (refs, waves) = References::plan(&[
            ("orders", os.as_ref(), &order_checks),
            ("customers", cs.as_ref(), &no_checks),
        ])
        .unwrap();
        assert_eq!(waves, vec![vec![1], vec![0]], "customers runs first");

        // customers: no checks of its own, but it collects `id` for orders
        let ctx = |stream: &str| RunContext {
            stream: stream.into(),
            references: Some(refs.clone()),
            ..Default::default()
        };
        let mut c = Validator::for_run(&no_checks, &cs, &ctx("customers")).unwrap();
        assert!(!c.is_empty());
        c.check(customers).unwrap();
        // orders before customers published: a clear error
        let mut o = Validator::for_run(&order_checks, &os, &ctx("orders")).unwrap();
        let e = o.check(orders.clone()).unwrap_err();
        assert!(e.to_string().contains("did not deliver"), "{e}");
        c.publish();
        let mut o = Validator::for_run(&order_checks, &os, &ctx("orders")).unwrap();
        let out = o.check(orders.clone()).unwrap();
        assert_eq!(
            out.rejected
                .iter()
                .map(|(r, _)| r["id"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [11]
        );
        assert!(out.rejected[0].1.message.contains("not in `customers.id`"));

        // outside a run: a config error at the first batch
        let mut o = Validator::new(&order_checks, &os).unwrap();
        assert_eq!(
            o.check(orders).unwrap_err().kind(),
            ErrorKind::ConfigInvalid
        );

        // planning errors
        let e = References::plan(&[("orders", os.as_ref(), &order_checks)])
            .err()
            .unwrap();
        assert!(e.to_string().contains("not synced in this run"), "{e}");
        let bad_col = parse(
            r#"checks = [{ type = "referential", column = "customer_id", stream = "customers", stream_column = "idd" }]"#,
        );
        let e = References::plan(&[
            ("orders", os.as_ref(), &bad_col),
            ("customers", cs.as_ref(), &no_checks),
        ])
        .err()
        .unwrap();
        assert!(e.to_string().contains("did you mean `id`"), "{e}");
        let back = parse(
            r#"checks = [{ type = "referential", column = "id", stream = "orders", stream_column = "id" }]"#,
        );
        let e = References::plan(&[
            ("orders", os.as_ref(), &order_checks),
            ("customers", cs.as_ref(), &back),
        ])
        .err()
        .unwrap();
        assert!(e.to_string().contains("cycle"), "{e}");
    }

    #[test]
    fn freshness_checks_the_newest_value_at_the_end() {
        let now = chrono::Utc::now().timestamp_micros();
        let ts = |v: Vec<Option<i64>>| {
            let schema = Arc::new(arrow_schema::Schema::new(vec![
                FerryType::Timestamp.field("at", true)
            ]));
            RecordBatch::try_new(
                schema,
                vec![Arc::new(
                    arrow_array::TimestampMicrosecondArray::from(v).with_timezone("UTC"),
                )],
            )
            .unwrap()
        };
        let hour = 3_600_000_000i64;
        let cfg = parse(r#"checks = [{ type = "freshness", column = "at", max_age = "2h" }]"#);
        let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
        v.check(ts(vec![Some(now - 30 * hour), None])).unwrap();
        v.check(ts(vec![Some(now - hour)])).unwrap();
        v.finish().unwrap();
        let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
        v.check(ts(vec![Some(now - 30 * hour)])).unwrap();
        let e = v.finish().unwrap_err();
        assert!(e.to_string().contains("1d 6h old"), "{e}");
        let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
        assert!(v
            .finish()
            .unwrap_err()
            .to_string()
            .contains("no value of `at`"));
        let warn = parse(
            r#"checks = [{ type = "freshness", column = "at", max_age = "1h30m", severity = "warn" }]"#,
        );
        let mut v = Validator::new(&warn, &ts(vec![]).schema()).unwrap();
        v.check(ts(vec![Some(now - 2 * hour)])).unwrap();
        v.finish().unwrap();
        assert_eq!(v.report()[0].failed, 1);
        for bad in ["24", "h", "3x", "0s", ""] {
            let cfg = parse(&format!(
                r#"checks = [{{ type = "freshness", column = "at", max_age = "{bad}" }}]"#
            ));
            assert!(Validator::new(&cfg, &ts(vec![]).schema()).is_err(), "{bad}");
        }
        assert!(
            Validator::new(&cfg, &batch().schema()).is_err(),
            "no column `at`"
        );
        assert_eq!(parse_duration("1h30m"), chrono::TimeDelta::try_minutes(90));
        assert_eq!(parse_duration("2w"), chrono::TimeDelta::try_days(14));
    }

    #[test]
    fn row_count_max_change_against_the_last_run() {
        let cfg = parse(r#"checks = [{ type = "row_count", max_change = 0.5 }]"#);
        let run = |previous: Option<u64>| {
            let ctx = RunContext {
                previous_rows: previous,
                ..Default::default()
            };
            let mut v = Validator::for_run(&cfg, &batch().schema(), &ctx).unwrap();
            v.check(batch()).unwrap();
            assert_eq!(v.rows(), 4);
            v.finish()
        };
        run(None).unwrap();
        run(Some(6)).unwrap(); // -33%
        run(Some(3)).unwrap(); // +33%
        let e = run(Some(10)).unwrap_err(); // -60%
        assert!(e.to_string().contains("4 rows against 10"), "{e}");
        assert!(run(Some(2)).is_err()); // +100%
        let neg = parse(r#"checks = [{ type = "row_count", max_change = -1 }]"#);
        assert!(Validator::new(&neg, &batch().schema()).is_err());
    }

    #[test]
    fn unique_ints_in_and_out_of_order() {
        let mut seen = SeenInts::default();
        let values = [5, 7, 9, 3, 8, 12, 7, 3, 10, 12, 4, 5, 13];
        let fresh: Vec<bool> = values.iter().map(|v| seen.insert(*v)).collect();
        assert_eq!(
            fresh,
            [true, true, true, true, true, true, false, false, true, false, true, false, true]
        );
        // consecutive ids are one run
        let mut seen = SeenInts::default();
        assert!((1..=100_000).all(|v| seen.insert(v)));
        assert_eq!(seen.starts.len(), 1);
        assert!(!seen.insert(1) && !seen.insert(50_000) && !seen.insert(100_000));
        assert!(seen.others.is_empty());
    }

    #[test]
    fn unique_ints_agree_with_a_hash_set() {
        // runs, gaps, repeats, descents and the ends of the i64 range, against a plain set
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20 {
            let mut seen = SeenInts::default();
            let mut plain = std::collections::HashSet::new();
            let mut v: i64 = if round == 0 { i64::MAX - 50 } else { 0 };
            for _ in 0..5_000 {
                v = match next() % 8 {
                    0..=3 => v.saturating_add(1),
                    4 => v.saturating_add((next() % 5) as i64),
                    5 => v.saturating_sub((next() % 40) as i64),
                    6 => (next() % 3_000) as i64,
                    _ => v,
                };
                if round == 1 && next() % 100 == 0 {
                    v = i64::MIN + (next() % 3) as i64;
                }
                assert_eq!(seen.insert(v), plain.insert(v), "round {round}, value {v}");
            }
        }
    }

    #[test]
    fn unique_over_several_columns_and_strings() {
        let cfg = parse(r#"checks = [{ type = "unique", columns = ["status", "id"] }]"#);
        let mut v = Validator::new(&cfg, &batch().schema()).unwrap();
        assert!(v.check(batch()).unwrap().rejected.is_empty());
        assert_eq!(
            v.check(batch()).unwrap().rejected.len(),
            4,
            "second batch repeats"
        );
        let cfg = parse(r#"checks = [{ type = "unique", columns = ["email"] }]"#);
        let mut v = Validator::new(&cfg, &batch().schema()).unwrap();
        assert!(v.check(batch()).unwrap().rejected.is_empty());
        let b = with_text("email", vec![None, None, Some("x"), Some("x")]);
        let mut v = Validator::new(&cfg, &b.schema()).unwrap();
        assert_eq!(
            rejected_ids(&v.check(b).unwrap()),
            [2, 4],
            "NULLs are equal"
        );
    }
}
