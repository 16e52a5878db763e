//! `freshness`: the newest value of a timestamp or date column is recent (at the end of
//! the stream).

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMicrosecondType};
use arrow_array::RecordBatch;

use super::columns::type_of;
use ferry_core::types::FerryType;
use ferry_core::values::format_timestamp_micros;

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

/// Keeps in `best` the newest value of column `c` seen so far.
pub(super) fn observe(batch: &RecordBatch, c: usize, best: &mut Option<i64>) {
    if let Some(v) = newest(batch, c) {
        *best = Some(best.map_or(v, |b| b.max(v)));
    }
}

/// The end-of-stream verdict on the `newest` value of column `schema_col`: the problem,
/// if it is older than `max_age` (as `written`) or there is none.
pub(super) fn verdict(
    newest: Option<i64>,
    max_age: chrono::TimeDelta,
    written: &str,
    schema_col: &str,
) -> Option<String> {
    let Some(t) = newest else {
        return Some(format!("no value of `{schema_col}` in this run"));
    };
    let age =
        chrono::TimeDelta::microseconds(chrono::Utc::now().timestamp_micros().saturating_sub(t));
    (age > max_age).then(|| {
        format!(
            "the newest `{schema_col}` is {} ({} old), older than max_age {written}",
            format_timestamp_micros(t),
            human(age)
        )
    })
}
