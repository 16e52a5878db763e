//! The runs before this one: the other receipts of the same pipeline in the receipts
//! folder, for "rows per run over the last runs".
//!
//! A receipt does not name its config, so "the same pipeline" is read from what it does
//! hold: the same client, source and destination connector types, and at least one
//! stream in common. A file in the folder that is not a receipt Ferry reads is left out
//! (and counted, so the page can say so).

use std::path::Path;

use crate::receipt::{Receipt, SignedReceipt};

/// How many runs the chart shows, this one included.
pub const RUNS: usize = 20;

/// The last runs of `receipt`'s pipeline found in `folder`, oldest first, ending with
/// `receipt` itself (runs that started after it are not its history), at most [`RUNS`];
/// and how many `.json` files there were left out because they do not read as receipts.
pub fn runs(folder: &Path, receipt: &Receipt) -> (Vec<Receipt>, usize) {
    let mut found = Vec::new();
    let mut unreadable = 0;
    let entries = std::fs::read_dir(folder).into_iter().flatten().flatten();
    for path in entries.map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match SignedReceipt::read(&path) {
            Ok(r) if r.receipt.run_id == receipt.run_id => {}
            Ok(r) if same_pipeline(&r.receipt, receipt) && !after(&r.receipt, receipt) => {
                found.push(r.receipt)
            }
            Ok(_) => {}
            Err(_) => unreadable += 1,
        }
    }
    found.push(receipt.clone());
    found.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
    let skip = found.len().saturating_sub(RUNS);
    (found.split_off(skip), unreadable)
}

fn same_pipeline(a: &Receipt, b: &Receipt) -> bool {
    a.client == b.client
        && a.source == b.source
        && a.destination == b.destination
        && a.streams
            .iter()
            .any(|s| b.streams.iter().any(|t| t.stream == s.stream))
}

/// Whether `a` started after `b` (RFC 3339 times in UTC sort as text).
fn after(a: &Receipt, b: &Receipt) -> bool {
    (&a.started_at, &a.run_id) > (&b.started_at, &b.run_id)
}
