//! `ferry verify receipt.json`: check a delivery receipt's signature and its outputs.

use std::path::{Path, PathBuf};

use ferry_core::{Error, ReadRequest, Result};
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
/// looked for under `dir` (a copied delivery), else under the config's file destination;
/// tables are read back through the config's destination when the stream was overwritten
/// (the table then holds exactly the run's rows); S3 objects are downloaded and hashed
/// again when `config` is given. Returns 0, 1, or [`NOT_PINNED`].
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
    let files_root = match (dir, &cfg) {
        (Some(d), _) => Some(d.to_path_buf()),
        (None, Some(cfg)) => file_destination_root(cfg)?,
        (None, None) => None,
    };
    // the destination read back as a source, built only when a table needs it (a
    // destination-only field, such as postgres' `schema`, may not parse as a source)
    let mut source: Option<std::sync::Arc<dyn ferry_core::Source>> = None;
    let (mut ok, mut unchecked) = (0u64, 0u64);
    for s in &r.streams {
        for o in &s.outputs {
            let (verdict, why) = match o.kind.as_str() {
                "file" => check_file_output(o, dir, files_root.as_deref()),
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
                    (_, ferry_core::WriteMode::Append | ferry_core::WriteMode::Upsert, _) => (
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
                "object" => match &cfg {
                    Some(cfg) if cfg.destination.kind == ferry_connector_s3::NAME => {
                        let v = ferry_connector_s3::check_object(&cfg.destination, &o.location, o.digest.as_deref()).await?;
                        (
                            v,
                            (v == OutputCheck::Unverifiable).then(|| {
                                "it has no digest, or is not in the config's bucket".to_string()
                            }),
                        )
                    }
                    _ => (
                        OutputCheck::Unverifiable,
                        Some("pass -c sync.toml (its s3 destination) to download it".to_string()),
                    ),
                },
                other => (
                    OutputCheck::Unverifiable,
                    Some(format!("a `{other}` output cannot be read back")),
                ),
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

/// The folder a config's file destination writes into (`None`: not a file destination).
fn file_destination_root(cfg: &ferry_engine::config::SyncConfig) -> Result<Option<PathBuf>> {
    if cfg.destination.kind != ferry_connector_file::NAME {
        return Ok(None);
    }
    let sink: ferry_connector_file::FileSinkConfig = cfg.destination.node.parse()?;
    Ok(Some(cfg.dir.join(sink.path)))
}

/// The destination of `cfg` as a source, to read its tables back.
fn read_back(
    cfg: &ferry_engine::config::SyncConfig,
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

fn status(s: ferry_engine::report::Status) -> &'static str {
    match s {
        ferry_engine::report::Status::Succeeded => "succeeded",
        ferry_engine::report::Status::Failed => "failed",
        ferry_engine::report::Status::Cancelled => "cancelled",
    }
}
