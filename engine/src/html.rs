//! The delivery report for the client: one HTML page per run, built from its signed
//! receipt (every figure is the receipt's, nothing is counted again) and the other
//! receipts of the same pipeline beside it (rows per run over the last runs).
//!
//! The page is self-contained: no JavaScript, no font, stylesheet or image to fetch;
//! inline CSS and inline SVG charts. Every value is HTML-escaped ([`escape`]); figures are
//! also kept in `data-*` attributes for machines.
//!
//! - `escape.rs`: HTML escaping.
//! - `chart.rs`: bar charts as SVG.
//! - `history.rs`: the runs before this one.
//! - `verify.rs`: the commands and digests a client checks a delivery with.
//! - `page.rs`: the page; `style.css` its styles.

use std::path::{Path, PathBuf};

use ferry_core::Result;

use crate::receipt::SignedReceipt;

mod chart;
pub mod escape;
pub mod history;
mod page;
mod verify;

/// The page for `signed`, the receipt saved at `receipt_path` (its folder holds the
/// pipeline's other receipts).
pub fn page(signed: &SignedReceipt, receipt_path: &Path) -> String {
    let folder = receipt_path.parent().unwrap_or(Path::new("."));
    let (runs, unreadable) = history::runs(folder, &signed.receipt);
    let name = receipt_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}.json", signed.receipt.run_id));
    page::render(signed, &name, &runs, unreadable)
}

/// Writes the page of the receipt at `receipt_path` beside it (`<run>.html`); returns where.
pub fn write_beside(signed: &SignedReceipt, receipt_path: &Path) -> Result<PathBuf> {
    let out = receipt_path.with_extension("html");
    crate::state::write_atomic(&out, page(signed, receipt_path).as_bytes())?;
    Ok(out)
}
