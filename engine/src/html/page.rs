//! The page: a summary of the run, its streams (a table and a chart), the rows of the last
//! runs, and how to check the delivery. Every figure is the receipt's, also kept in a
//! `data-*` attribute (named after the receipt's field, `_` as `-`) so it can be compared
//! with the receipt exactly.

use std::fmt::Write;

use super::chart::{self, Bar};
use super::escape::text;
use crate::group::group;
use crate::receipt::{Receipt, ReceiptStream, SignedReceipt};
use crate::report::Status;

const STYLE: &str = include_str!("style.css");

/// The whole page for `signed` (saved as `file_name`), with `runs` (oldest first, ending
/// with this one) for the history chart and `unreadable` files left out of it.
pub fn render(
    signed: &SignedReceipt,
    file_name: &str,
    runs: &[Receipt],
    unreadable: usize,
) -> String {
    let r = &signed.receipt;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Delivery report {run}</title><style>{STYLE}</style></head><body>\
         <header><h1>Delivery report</h1><p class=\"sub\">{client}run <code>{run}</code></p>\
         <span class=\"status {status}\" data-status=\"{status}\">{status}</span></header>",
        run = text(&r.run_id),
        client = r
            .client
            .as_deref()
            .map(|c| format!("{} · ", text(c)))
            .unwrap_or_default(),
        status = status(r.status),
    );
    summary(signed, &mut out);
    streams(r, &mut out);
    history(runs, unreadable, &mut out);
    out.push_str(&super::verify::section(signed, file_name));
    let _ = writeln!(
        out,
        "<footer>Made by Ferry {} from the receipt <code>{}</code>: every figure on this page is \
         the receipt's.</footer></body></html>",
        text(env!("CARGO_PKG_VERSION")),
        text(file_name)
    );
    out
}

fn summary(signed: &SignedReceipt, out: &mut String) {
    let r = &signed.receipt;
    let signature = match signed.verify_signature(None) {
        Ok(pk) => format!(
            "<span class=\"ok\">signed</span> by <code>{}</code> (the signature matches this receipt)",
            text(&pk)
        ),
        Err(_) if signed.signature.is_none() => {
            "<span class=\"bad\">UNSIGNED</span> (the run had no signing key)".into()
        }
        Err(_) => "<span class=\"bad\">DOES NOT MATCH</span>: the receipt was changed after signing".into(),
    };
    let sum = |f: fn(&ReceiptStream) -> Option<u64>| r.streams.iter().filter_map(f).sum::<u64>();
    let figures = [
        ("rows_read", "rows read", sum(|s| Some(s.rows_read)), ""),
        ("rows_committed", "rows delivered", sum(delivered), " ok"),
        (
            "rows_rejected",
            "rows rejected",
            sum(|s| Some(s.rows_rejected)),
            " bad",
        ),
    ];
    out.push_str("<section class=\"figures\">");
    for (field, label, n, class) in figures {
        let _ = write!(
            out,
            "<div class=\"figure{class}\" data-total=\"{field}\" data-value=\"{n}\">\
             <b>{}</b><span>{label}</span></div>",
            group(n)
        );
    }
    let _ = write!(
        out,
        "</section><section><dl class=\"run\">\
         <dt>From</dt><dd>{} → {}</dd><dt>Started</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd>\
         <dt>Signature</dt><dd>{signature}</dd><dt>Receipt</dt><dd>{} (Ferry {})</dd></dl></section>",
        text(&r.source),
        text(&r.destination),
        text(&r.started_at),
        text(&r.finished_at),
        text(&r.format),
        text(&r.ferry_version),
    );
}

/// Rows durable at the destination; receipts from before `rows_committed` said `rows_written`.
fn delivered(s: &ReceiptStream) -> Option<u64> {
    s.rows_committed.or(s.rows_written)
}

fn streams(r: &Receipt, out: &mut String) {
    out.push_str(
        "<section><h2>Streams</h2><table class=\"streams\"><thead><tr><th>Stream</th>\
         <th>Destination</th><th>Mode</th><th>Status</th><th class=\"n\">Read</th>\
         <th class=\"n\">Delivered</th><th class=\"n\">Rejected</th><th class=\"n\">Filtered</th>\
         <th class=\"n\">Not committed</th><th>Also</th></tr></thead><tbody>",
    );
    for s in &r.streams {
        let counts = [
            ("rows-read", Some(s.rows_read)),
            ("rows-committed", s.rows_committed),
            ("rows-written", s.rows_written),
            ("rows-rejected", Some(s.rows_rejected)),
            ("rows-filtered", s.rows_filtered),
            ("rows-uncommitted", s.rows_uncommitted),
            ("rows-deleted", s.rows_deleted),
            ("versions-closed", s.versions_closed),
            ("rows-total", s.rows_total),
        ];
        let _ = write!(
            out,
            "<tr class=\"stream\" data-stream=\"{}\" data-destination=\"{}\" data-status=\"{}\"",
            text(&s.stream),
            text(&s.destination),
            status(s.status)
        );
        for (name, n) in counts {
            if let Some(n) = n {
                let _ = write!(out, " data-{name}=\"{n}\"");
            }
        }
        let cell = |n: Option<u64>| n.map(group).unwrap_or_else(|| "—".into());
        let rejected = if s.rows_rejected > 0 { " bad" } else { "" };
        let _ = write!(
            out,
            "><td>{}</td><td>{}</td><td>{}</td><td class=\"status {st}\">{st}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n{rejected}\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            text(&s.stream),
            text(&s.destination),
            text(&s.write_mode.to_string()),
            group(s.rows_read),
            cell(delivered(s)),
            group(s.rows_rejected),
            cell(s.rows_filtered),
            cell(s.rows_uncommitted),
            also(s),
            st = status(s.status),
        );
    }
    out.push_str("</tbody></table>");
    let bars: Vec<Bar> = r
        .streams
        .iter()
        .map(|s| Bar {
            label: s.stream.clone(),
            title: format!(
                "{}: {} delivered, {} rejected, {} filtered, {} not committed",
                s.stream,
                cell_text(delivered(s)),
                group(s.rows_rejected),
                cell_text(s.rows_filtered),
                cell_text(s.rows_uncommitted)
            ),
            parts: vec![
                ("delivered", delivered(s).unwrap_or(0)),
                ("rejected", s.rows_rejected),
                ("filtered", s.rows_filtered.unwrap_or(0)),
                ("uncommitted", s.rows_uncommitted.unwrap_or(0)),
            ],
            data: vec![("stream", s.stream.clone())],
            current: false,
        })
        .collect();
    out.push_str(&chart::rows(&bars, "rows of each stream in this run"));
    out.push_str(LEGEND);
    if r.streams.iter().any(|s| s.rows_rejected > 0) {
        out.push_str(
            "<p class=\"note\">Rejected rows failed a check or could not be read; they were set \
             aside (quarantined) and are not part of the delivery.</p>",
        );
    }
    out.push_str("</section>");
}

const LEGEND: &str = "<p class=\"legend\"><i class=\"delivered\"></i>delivered \
    <i class=\"rejected\"></i>rejected <i class=\"filtered\"></i>filtered \
    <i class=\"uncommitted\"></i>not committed</p>";

fn cell_text(n: Option<u64>) -> String {
    n.map(group).unwrap_or_else(|| "—".into())
}

/// Deletes, closed versions and the source's own total, where the receipt has them.
fn also(s: &ReceiptStream) -> String {
    let mut parts = Vec::new();
    if let Some(n) = s.rows_deleted {
        parts.push(format!("{} deleted", group(n)));
    }
    if let Some(n) = s.versions_closed {
        parts.push(format!("{} versions closed", group(n)));
    }
    if let Some(n) = s.rows_total {
        let complete = match s.complete {
            Some(true) => ", all read",
            Some(false) => ", NOT all read",
            None => "",
        };
        parts.push(format!("source total {}{complete}", group(n)));
    }
    parts.join("; ")
}

fn history(runs: &[Receipt], unreadable: usize, out: &mut String) {
    let _ = write!(
        out,
        "<section><h2>Rows per run</h2><p class=\"note\">The last {} run(s) of this pipeline \
         whose receipts are in the receipts folder (this run highlighted, oldest first).</p>",
        runs.len()
    );
    let bars: Vec<Bar> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let ok: u64 = run.streams.iter().filter_map(delivered).sum();
            let bad: u64 = run.streams.iter().map(|s| s.rows_rejected).sum();
            let last = i + 1 == runs.len();
            Bar {
                label: day_and_time(&run.started_at),
                title: format!(
                    "{} ({}, {}): {} delivered, {} rejected",
                    run.run_id,
                    run.started_at,
                    status(run.status),
                    group(ok),
                    group(bad)
                ),
                parts: vec![("delivered", ok), ("rejected", bad)],
                data: vec![
                    ("run", run.run_id.clone()),
                    ("rows-committed", ok.to_string()),
                    ("rows-rejected", bad.to_string()),
                ],
                current: last,
            }
        })
        .collect();
    out.push_str(&chart::columns(&bars, "rows delivered per run"));
    if unreadable > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{unreadable} file(s) in the receipts folder are not receipts this \
             Ferry reads and are left out.</p>"
        );
    }
    out.push_str("</section>");
}

/// `2026-12-08T00:43:27.962Z` as `2026-12-08` and `00:43` on two lines (UTC).
fn day_and_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day}\n{time}"),
        _ => rfc3339.to_string(),
    }
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::Cancelled => "cancelled",
    }
}
