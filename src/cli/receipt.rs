//! After a sync: the run's receipt (`.ferry/receipts/<run>.json`), its HTML report beside
//! it when `[run] html_report = true`, and beside the files of
//! a file delivery their `SHA256SUMS`, signed as `SHA256SUMS.sig` (an OpenSSH signature),
//! so the client can check the delivery with `sha256sum` and `ssh-keygen` alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_core::Secret;
use ferry_engine::receipt::{signing_pair, Receipt, ReceiptOutput};
use ferry_engine::{checksums, sshsig, SyncConfig};

use super::secrets::ClientFolder;

/// Writes the run's receipt, signed when the vault holds the signing key, and the
/// checksums of its files; returns lines saying where they went. What cannot be written
/// is reported, not fatal.
pub fn write(cfg: &SyncConfig, report: &ferry_engine::RunReport) -> String {
    let receipt = match Receipt::from_report(report, cfg.client.as_deref()) {
        Ok(r) => r,
        Err(e) => return format!("receipt: not written: {e}"),
    };
    let key = signing_key(cfg);
    let (signed, how) = match &key {
        Ok(key) => match receipt.clone().sign(key) {
            Ok(s) => {
                let pk = s
                    .signature
                    .as_ref()
                    .map(|s| s.public_key.clone())
                    .unwrap_or_default();
                (s, format!("signed by {pk}"))
            }
            Err(e) => (
                receipt.clone().unsigned(),
                format!("UNSIGNED: {}", e.message()),
            ),
        },
        Err(why) => (receipt.clone().unsigned(), format!("UNSIGNED: {why}")),
    };
    let path = cfg
        .dir
        .join(&cfg.run.receipts)
        .join(format!("{}.json", report.run_id));
    let mut note = match signed.write(&path) {
        Ok(()) if cfg.run.html_report => {
            let page = match ferry_engine::html::write_beside(&signed, &path) {
                Ok(page) => format!("report: {} (for the client)", page.display()),
                Err(e) => format!("report: not written: {e}"),
            };
            format!("receipt: {} ({how})\n{page}", path.display())
        }
        Ok(()) => format!("receipt: {} ({how})", path.display()),
        Err(e) => format!("receipt: not written: {e}"),
    };
    for (root, outputs) in file_outputs(report, &receipt) {
        note.push('\n');
        note.push_str(&write_checksums(&root, &outputs, key.as_ref().ok()));
    }
    note
}

/// The vault's signing key, or why the receipt goes unsigned.
fn signing_key(cfg: &SyncConfig) -> Result<Secret, String> {
    let folder = ClientFolder::of(&cfg.file.path).map_err(|e| e.message().to_string())?;
    if !folder.vault.exists() {
        return Err("run `ferry keys generate signing` to sign receipts".into());
    }
    ferry_core::secret::Vault::get(folder.resolver().as_ref(), &cfg.run.signing_key)
        .map_err(|e| e.message().to_string())
}

/// The receipt's file outputs, grouped by the local folder they were delivered into (the
/// report's outputs and the receipt's are in the same order).
fn file_outputs(
    report: &ferry_engine::RunReport,
    receipt: &Receipt,
) -> BTreeMap<PathBuf, Vec<ReceiptOutput>> {
    let mut by_root: BTreeMap<PathBuf, Vec<ReceiptOutput>> = BTreeMap::new();
    let reported = report.streams.iter().flat_map(|s| &s.outputs);
    let written = receipt.streams.iter().flat_map(|s| &s.outputs);
    for (r, w) in reported.zip(written) {
        if let (Some(root), "file") = (&r.root, r.kind.as_str()) {
            by_root.entry(root.clone()).or_default().push(w.clone());
        }
    }
    by_root
}

/// Writes `root/SHA256SUMS`, and `root/SHA256SUMS.sig` when there is a key (a stale one is
/// removed when there is not, so it never vouches for other checksums).
fn write_checksums(
    root: &std::path::Path,
    outputs: &[ReceiptOutput],
    key: Option<&Secret>,
) -> String {
    let Some(text) = checksums::text(outputs) else {
        return format!(
            "checksums: none written in {} (no file has a digest)",
            root.display()
        );
    };
    let sums = root.join(checksums::FILE_NAME);
    let sig = root.join(checksums::SIG_FILE_NAME);
    if let Err(e) = ferry_engine::state::write_atomic(&sums, text.as_bytes()) {
        return format!("checksums: not written: {e}");
    }
    let signed = key.map(|k| {
        signing_pair(k).and_then(|pair| {
            let armored = sshsig::sign(&pair, sshsig::NAMESPACE, text.as_bytes());
            ferry_engine::state::write_atomic(&sig, armored.as_bytes())
        })
    });
    match signed {
        Some(Ok(())) => format!(
            "checksums: {} (signed: {}, check with `sha256sum -c` and `ssh-keygen -Y verify`)",
            sums.display(),
            checksums::SIG_FILE_NAME
        ),
        Some(Err(e)) => {
            let _ = std::fs::remove_file(&sig);
            format!("checksums: {} (UNSIGNED: {})", sums.display(), e.message())
        }
        None => {
            let _ = std::fs::remove_file(&sig);
            format!("checksums: {} (UNSIGNED)", sums.display())
        }
    }
}
