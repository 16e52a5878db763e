//! `row_count`: the stream yields between `min` and `max` rows, and about as many as last
//! time (at the end of the stream, or once the destination can count them).

use super::CountOf;

/// The verdict on `rows` (of the run, or at the destination: `of`): the problem, if any.
pub(super) fn verdict(
    rows: u64,
    min: Option<u64>,
    max: Option<u64>,
    max_change: Option<f64>,
    previous: Option<u64>,
    of: CountOf,
) -> Option<String> {
    let what = match of {
        CountOf::Run => "rows",
        CountOf::Destination => "rows at the destination",
    };
    if min.is_some_and(|m| rows < m) || max.is_some_and(|m| rows > m) {
        return Some(format!(
            "{rows} {what}, expected between {} and {}",
            fmt_count(min),
            fmt_count(max)
        ));
    }
    let (Some(limit), Some(prev)) = (max_change, previous) else {
        return None;
    };
    let change = (rows as f64 - prev as f64).abs() / prev.max(1) as f64;
    (change > limit).then(|| {
        format!(
            "{rows} {what} against {prev} after the last run: a change of {:.1}%, more than max_change {:.1}%",
            change * 100.0,
            limit * 100.0
        )
    })
}

fn fmt_count(b: Option<u64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "…".into())
}
