//! Receipts written by hand, for the checks of what verifying accepts and refuses.

use ferry_core::catalog::WriteMode;
use ferry_engine::receipt::{Receipt, ReceiptStream, FORMAT};
use ferry_engine::report::Status;

/// The receipt of run `r1` of client `acme`, from `source` to `destination`, which
/// succeeded with `streams`.
pub fn receipt(source: &str, destination: &str, streams: Vec<ReceiptStream>) -> Receipt {
    Receipt {
        format: FORMAT.into(),
        run_id: "r1".into(),
        client: Some("acme".into()),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:00:01Z".into(),
        source: source.into(),
        destination: destination.into(),
        status: Status::Succeeded,
        ferry_version: "0.1.0".into(),
        streams,
    }
}

/// Stream `orders` into `orders` in `mode`, succeeded, `rows` rows read and committed,
/// none filtered; the counts a run may leave out left out, no state, no output.
pub fn orders_stream(mode: WriteMode, rows: u64) -> ReceiptStream {
    ReceiptStream {
        stream: "orders".into(),
        destination: "orders".into(),
        write_mode: mode,
        status: Status::Succeeded,
        rows_read: rows,
        rows_committed: Some(rows),
        rows_written: None,
        rows_rejected: 0,
        rows_filtered: Some(0),
        rows_uncommitted: None,
        rows_deleted: None,
        versions_closed: None,
        rows_total: None,
        complete: None,
        schema_fingerprint: "f".into(),
        rows_digest: "rows2-sha256-sum:00".into(),
        state_before: None,
        state_after: None,
        outputs: vec![],
        personal_data: None,
    }
}
