//! `ferry verify receipt.json`: check a delivery receipt's signature and its outputs.

use std::path::Path;

use ferry_core::receipt::{check_file, check_table, table_digest, OutputCheck, SignedReceipt};
use ferry_core::{Error, ReadRequest, Result};
use futures_util::StreamExt;

/// Checks the signature (against `pubkey`, a base64 key or a file holding one, when given)
/// and recomputes every output it can reach. Tables are read back through the config's
/// destination when `config` is given and the stream was overwritten (the table then holds
/// exactly the run's rows); S3 objects are downloaded and hashed again when `config` is
/// given.
pub async fn verify(receipt: &Path, pubkey: Option<&str>, config: Option<&Path>) -> Result<u8> {
    let signed = SignedReceipt::read(receipt)?;
    let expected = match pubkey {
        Some(p) if Path::new(p).is_file() => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::io(e, "cannot read the public key", p))?
                .trim()
                .to_string(),
        ),
        Some(p) => Some(p.trim().to_string()),
        None => None,
    };
    let mut bad = false;
    match signed.verify_signature(expected.as_deref()) {
        Ok(pk) if expected.is_some() => println!("signature  ok (signed by the expected key {pk})"),
        Ok(pk) => println!(
            "signature  ok (signed by {pk}; pass --pubkey to check it is the key you expect)"
        ),
        Err(e) => {
            bad = true;
            println!("signature  FAILED: {}", e.message());
        }
    }
    let r = &signed.receipt;
    println!(
        "run        {} ({}, {} → {}, {})",
        r.run_id,
        r.finished_at,
        r.source,
        r.destination,
        status(r.status)
    );
    let cfg = match config {
        Some(c) => Some(super::commands::load(c)?),
        None => None,
    };
    // the destination read back as a source, built only when a table needs it (a
    // destination-only field, such as postgres' `schema`, may not parse as a source)
    let mut source: Option<std::sync::Arc<dyn ferry_core::Source>> = None;
    for s in &r.streams {
        for o in &s.outputs {
            let verdict = match o.kind.as_str() {
                "file" => check_file(o),
                "table" => match (&cfg, s.write_mode, table_digest(o)) {
                    // the digest's prefix names its row encoding (v1 receipts: text)
                    (Some(cfg), ferry_core::WriteMode::Overwrite, Some(mut digest)) => {
                        let src = match &source {
                            Some(src) => src.clone(),
                            None => source.insert(read_back(cfg)?).clone(),
                        };
                        let mut msgs = src.read(ReadRequest::full(&s.destination)).await?;
                        while let Some(m) = msgs.next().await {
                            if let ferry_core::Message::Batch(b) = m? {
                                digest.add_batch(&b);
                            }
                        }
                        check_table(o, &digest)
                    }
                    _ => OutputCheck::Unverifiable,
                },
                "object" => match &cfg {
                    Some(cfg) if cfg.destination.kind == ferry_connector_s3::NAME => {
                        ferry_connector_s3::check_object(&cfg.destination, o).await?
                    }
                    _ => OutputCheck::Unverifiable,
                },
                _ => OutputCheck::Unverifiable,
            };
            if matches!(verdict, OutputCheck::Changed | OutputCheck::Missing) {
                bad = true;
            }
            println!(
                "{:<10} {} {} ({} rows)",
                verdict.to_string(),
                o.kind,
                o.location,
                ferry_core::report::group(o.rows)
            );
        }
    }
    Ok(if bad { 1 } else { 0 })
}

/// The destination of `cfg` as a source, to read its tables back.
fn read_back(
    cfg: &ferry_core::config::SyncConfig,
) -> Result<std::sync::Arc<dyn ferry_core::Source>> {
    crate::registry()
        .build_source(&cfg.destination)
        .map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "cannot read the destination back to check tables: {}",
                    e.message()
                ),
            )
        })
}

fn status(s: ferry_core::report::Status) -> &'static str {
    match s {
        ferry_core::report::Status::Succeeded => "succeeded",
        ferry_core::report::Status::Failed => "failed",
        ferry_core::report::Status::Cancelled => "cancelled",
    }
}
