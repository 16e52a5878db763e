//! `ferry verify receipt.json`: check a delivery receipt's signature and its outputs.

use std::path::Path;

use ferry_core::{Error, OutputRef, ReadRequest, Result, Sink, Verdict};
use ferry_engine::config::SyncConfig;
use ferry_engine::receipt::{
    check_file, check_table, file_path, parse_public_key, table_digest, OutputCheck, ReceiptOutput,
    SignedReceipt,
};
use futures_util::StreamExt;

/// Exit code when everything checked is fine but no key was pinned with `--pubkey`: a
/// valid signature alone proves nothing, since anyone can sign a receipt with their own key.
pub const NOT_PINNED: u8 = 3;

/// Checks the signature (against `pubkey`, a base64 key, an `ssh-ed25519 …` line, or a
/// file holding one, when given) and recomputes every output it can reach. Files are
/// looked for under `dir` (a copied delivery), else under the folder the config's
/// destination delivers into ([`Sink::delivery_root`]); tables are read back through the
/// config's destination when the stream was overwritten (the table then holds exactly the
/// run's rows); other outputs (S3 objects) are checked by the config's destination when it
/// can ([`Sink::verify_output`]). Returns 0, 1, or [`NOT_PINNED`].
pub async fn verify(
    receipt: &Path,
    pubkey: Option<&str>,
    config: Option<&Path>,
    dir: Option<&Path>,
) -> Result<u8> {
    let signed = SignedReceipt::read(receipt)?;
    let expected = match pubkey {
        Some(p) if Path::new(p).is_file() => Some(parse_public_key(
            &std::fs::read_to_string(p)
                .map_err(|e| Error::io(e, "cannot read the public key", p))?,
        )?),
        Some(p) => Some(parse_public_key(p)?),
        None => None,
    };
    let mut bad = false;
    let mut pinned = false;
    match signed.verify_signature(expected.as_deref()) {
        Ok(pk) if expected.is_some() => {
            pinned = true;
            println!("signature  ok (signed by the expected key {pk})")
        }
        Ok(pk) => println!(
            "signature  NOT PINNED: valid, but made by {pk}, and anyone can sign with a key of their own; pass --pubkey with the key you were given"
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
    // the destination, built only when an output needs it
    let mut sink: Option<std::sync::Arc<dyn Sink>> = None;
    // the destination read back as a source, built only when a table needs it (a
    // destination-only field, such as postgres' `schema`, may not parse as a source)
    let mut source: Option<std::sync::Arc<dyn ferry_core::Source>> = None;
    let (mut ok, mut unchecked) = (0u64, 0u64);
    for s in &r.streams {
        for o in &s.outputs {
            let (verdict, why) = match o.kind.as_str() {
                "file" => {
                    let files_root = match (dir, &cfg) {
                        (Some(d), _) => Some(d.to_path_buf()),
                        (None, Some(cfg)) => destination(cfg, &mut sink)?.delivery_root(),
                        (None, None) => None,
                    };
                    check_file_output(o, dir, files_root.as_deref())
                }
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
                        (check_table(o, &digest), None)
                    }
                    (
                        _,
                        ferry_core::WriteMode::Append
                        | ferry_core::WriteMode::Upsert
                        | ferry_core::WriteMode::History,
                        _,
                    ) => (
                        OutputCheck::Unverifiable,
                        Some("the stream was not overwritten, so the table holds more than this run's rows".to_string()),
                    ),
                    (_, _, None) => (
                        OutputCheck::Unverifiable,
                        Some("the receipt has no row digest this Ferry can recompute".to_string()),
                    ),
                    (None, _, _) => (
                        OutputCheck::Unverifiable,
                        Some("pass -c sync.toml to read the table back from the destination".to_string()),
                    ),
                },
                _ => match &cfg {
                    Some(cfg) => {
                        let dest = destination(cfg, &mut sink)?;
                        check_by_destination(dest.as_ref(), &cfg.destination.kind, o).await?
                    }
                    None => (
                        OutputCheck::Unverifiable,
                        Some("pass -c sync.toml (its destination) to download it".to_string()),
                    ),
                },
            };
            match verdict {
                OutputCheck::Changed | OutputCheck::Missing => bad = true,
                OutputCheck::Ok => ok += 1,
                OutputCheck::Unverifiable => unchecked += 1,
            }
            println!(
                "{:<10} {} {} ({} rows){}",
                verdict.to_string(),
                o.kind,
                o.location,
                ferry_engine::report::group(o.rows),
                why.map(|w| format!(": {w}")).unwrap_or_default()
            );
        }
    }
    let checked = format!("{ok} outputs ok, {unchecked} not checked");
    Ok(if bad {
        println!("outcome    FAILED ({checked}; exit 1)");
        1
    } else if !pinned {
        println!("outcome    NOT PINNED: {checked}, but no --pubkey to say whose signature it must be (exit {NOT_PINNED})");
        NOT_PINNED
    } else {
        println!("outcome    ok: signed by the expected key, {checked}");
        0
    })
}

/// A file output's verdict, and why it was not checked (when it was not).
fn check_file_output(
    o: &ReceiptOutput,
    dir: Option<&Path>,
    files_root: Option<&Path>,
) -> (OutputCheck, Option<String>) {
    let Some(digest) = &o.digest else {
        return (
            OutputCheck::Unverifiable,
            Some("the receipt has no digest for it".into()),
        );
    };
    if !digest.starts_with(ferry_formats::digest::FILE_PREFIX) {
        return (
            OutputCheck::Unverifiable,
            Some(format!("its digest `{digest}` is not a file's sha256")),
        );
    }
    // an absolute location (an earlier Ferry's receipt) is taken as written unless the
    // delivery was copied (`--dir`); a relative one is under the delivery's root
    let base = if Path::new(&o.location).is_absolute() {
        dir
    } else {
        files_root
    };
    match file_path(o, base) {
        Ok(path) => {
            let v = check_file(o, &path);
            let why = (v == OutputCheck::Missing).then(|| format!("no file at {}", path.display()));
            (v, why)
        }
        Err(why) => (OutputCheck::Unverifiable, Some(why)),
    }
}

/// The destination of `cfg`, built on first use.
fn destination(
    cfg: &SyncConfig,
    built: &mut Option<std::sync::Arc<dyn Sink>>,
) -> Result<std::sync::Arc<dyn Sink>> {
    if let Some(sink) = built {
        return Ok(sink.clone());
    }
    let sink = crate::registry().build_sink(&cfg.destination)?;
    Ok(built.insert(sink).clone())
}

/// An output's verdict as destination `sink` (of type `kind`) checks it, and why it was
/// not checked (when it was not).
async fn check_by_destination(
    sink: &dyn Sink,
    kind: &str,
    o: &ReceiptOutput,
) -> Result<(OutputCheck, Option<String>)> {
    // `sha256:<hex>`, or the bare hex of earlier receipts; a row digest is no hash of bytes
    let sha256 = o.digest.as_deref().and_then(|d| {
        match d.strip_prefix(ferry_formats::digest::FILE_PREFIX) {
            Some(hex) => Some(hex),
            None => (!d.contains(':')).then_some(d),
        }
    });
    let output = OutputRef {
        kind: o.kind.clone(),
        location: o.location.clone(),
        sha256: sha256.map(str::to_string),
        bytes: o.bytes,
    };
    Ok(match sink.verify_output(&output).await? {
        Some(Verdict::Same) => (OutputCheck::Ok, None),
        Some(Verdict::Changed) => (OutputCheck::Changed, None),
        Some(Verdict::Missing) => (OutputCheck::Missing, None),
        Some(Verdict::Unverifiable(why)) => (OutputCheck::Unverifiable, Some(why)),
        None => (
            OutputCheck::Unverifiable,
            Some(format!(
                "the destination (`{kind}`) cannot check `{}` outputs",
                o.kind
            )),
        ),
    })
}

/// The destination of `cfg` as a source, to read its tables back.
fn read_back(cfg: &SyncConfig) -> Result<std::sync::Arc<dyn ferry_core::Source>> {
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

fn status(s: ferry_engine::report::Status) -> &'static str {
    match s {
        ferry_engine::report::Status::Succeeded => "succeeded",
        ferry_engine::report::Status::Failed => "failed",
        ferry_engine::report::Status::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::{async_trait, StreamWriter, WriteRequest};

    use super::*;

    /// A destination that offers none of the optional abilities.
    struct Plain;

    #[async_trait]
    impl Sink for Plain {
        async fn check(&self) -> Result<()> {
            Ok(())
        }

        async fn open(&self, _: WriteRequest) -> Result<Box<dyn StreamWriter>> {
            Err(Error::internal("not written to"))
        }
    }

    #[tokio::test]
    async fn a_destination_without_the_ability_cannot_check_and_says_so() {
        let o = ReceiptOutput {
            kind: "object".into(),
            location: "s3://b/k".into(),
            rows: 3,
            bytes: Some(10),
            digest: Some(format!(
                "{}{}",
                ferry_formats::digest::FILE_PREFIX,
                "ab".repeat(32)
            )),
        };
        let (verdict, why) = check_by_destination(&Plain, "plain", &o).await.unwrap();
        assert_eq!(verdict, OutputCheck::Unverifiable);
        assert_eq!(
            why.as_deref(),
            Some("the destination (`plain`) cannot check `object` outputs")
        );
        assert_eq!(Plain.delivery_root(), None, "and names no folder of files");
    }
}
