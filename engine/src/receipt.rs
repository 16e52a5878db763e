//! Signed delivery receipts: what a run delivered, in a form the client can check.
//!
//! Every sync writes a receipt (`.ferry/receipts/<run id>.json`): the run, its source and
//! destination connectors (never their settings, which may hold secrets), and per stream
//! the row counts, the schema fingerprint, the state before and after, and for each output
//! a digest: `sha256:<hex>` of a file's bytes, or `rows2-sha256-sum:<hex>` of a table's rows
//! (see [`ferry_formats::digest`]). It is signed with Ed25519 (ring) by a key from the client's
//! vault; the client keeps the public key and runs `ferry verify` (or any Ed25519 tool).
//!
//! File format `ferry-receipt/v2` (JSON):
//!
//! ```json
//! {"receipt": {"format": "ferry-receipt/v2", "run_id": "...", ...},
//!  "signature": {"algorithm": "ed25519", "public_key": "<base64, 32 bytes>", "value": "<base64, 64 bytes>"}}
//! ```
//!
//! The signature covers the *canonical* bytes of the `receipt` object: JSON with no
//! whitespace, object keys sorted by byte order of their UTF-8, strings escaped as
//! serde_json does (only `"`, `\\` and control characters), integers in decimal. Receipts
//! hold no floating-point numbers, so an independent verifier can rebuild these bytes.
//! `signature` is `null` when the run had no signing key.
//!
//! Outputs are named relative to the destination's root (a file by its path under the
//! file destination's folder), so a receipt shows no local folder layout and matches a
//! copied delivery; receipts of earlier builds named files by absolute path and still
//! verify. Reading is strict (unknown fields and repeated keys are refused), and a
//! receipt is written exactly as signed (no redaction afterwards): it holds no secret by
//! construction.
//!
//! A stream may hold `personal_data` (added within v2, optional like the other later
//! fields, so older receipts read and verify unchanged): `{"policy": "warn"|"refuse",
//! "sampled_rows": n, "columns": [{"column", "kind", "matched", "of", "evidence",
//! "status": "protected"|"allowed"|"unprotected"}], "allowances": [{"column", "reason"}]}`,
//! what the personal-data guard found ([`crate::personal_data`]); the signature covers it.
//!
//! Versions: v2 (written now) has the same fields as v1; its row digests use the binary row
//! encoding (`rows2-sha256-sum:`). v1 receipts (text encoding, `rows-sha256-sum:`) are still
//! read and verified: the digest's prefix says which encoding to recompute.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::report::{RunReport, Status};
use ferry_core::{Error, ErrorKind, Result, Secret, WriteMode};
use ferry_formats::digest::{file_sha256, RowDigest, FILE_PREFIX};

/// The format tag of receipts written by this build.
pub const FORMAT: &str = "ferry-receipt/v2";
/// Every format tag this build reads and verifies.
pub const FORMATS_READ: &[&str] = &["ferry-receipt/v1", FORMAT];

/// One output of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptOutput {
    /// `file`, `object` or `table`.
    pub kind: String,
    /// Where (path, URL or `file#table`).
    pub location: String,
    /// Rows written there by the run.
    pub rows: u64,
    /// Bytes, where known.
    pub bytes: Option<u64>,
    /// `sha256:<hex>` (files, objects) or `rows2-sha256-sum:<hex>` (tables; `rows-sha256-sum:`
    /// in v1 receipts).
    pub digest: Option<String>,
}

/// One stream of a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptStream {
    /// Source stream.
    pub stream: String,
    /// Destination name.
    pub destination: String,
    /// `append`, `overwrite` or `upsert`.
    pub write_mode: WriteMode,
    /// `succeeded`, `failed` or `cancelled`.
    pub status: Status,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows durable at the destination (see [`crate::report::StreamReport::rows_committed`]).
    /// `None` in receipts written before Ferry counted committed rows: see `rows_written`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_committed: Option<u64>,
    /// Rows handed to the destination, in receipts written before `rows_committed`
    /// (kept so their signatures still verify; it counted rows a failed run never
    /// committed). `None` in new receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<u64>,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Rows a `filter` transform removed (`None` in older receipts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_filtered: Option<u64>,
    /// Rows read but not committed, rejected or filtered: a stream that stopped early
    /// (`None` in older receipts). `rows_read = rows_committed + rows_rejected +
    /// rows_filtered + rows_uncommitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_uncommitted: Option<u64>,
    /// Destination rows whose key the source no longer holds, deleted or marked by this
    /// run (`deletes`); `None` for a stream without them, and in older receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_deleted: Option<u64>,
    /// `mode = "history"`: current versions closed because their row changed (the
    /// versions inserted are the output's `rows`); `None` for other modes, and in older
    /// receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions_closed: Option<u64>,
    /// The true total the source reported for this read (a `COUNT(*)`, an API's total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_total: Option<u64>,
    /// Whether every reported row was read (`rows_read == rows_total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// Fingerprint of the schema written.
    pub schema_fingerprint: String,
    /// Order-independent digest of the rows written by this run.
    pub rows_digest: String,
    /// State before the run.
    pub state_before: Option<serde_json::Value>,
    /// State after the run.
    pub state_after: Option<serde_json::Value>,
    /// What was written.
    pub outputs: Vec<ReceiptOutput>,
    /// The personal-data guard: the run's policy, the columns that appear to hold
    /// personal data (kind, evidence, protected / allowed / unprotected) and the stream's
    /// allowances with their reasons. `None` in older receipts, and for a stream that
    /// stopped before the guard decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<crate::personal_data::Record>,
}

/// The signed part of a receipt.
///
/// A receipt is built from a run report by the CLI; signing and checking it:
///
/// ```
/// use base64::Engine;
/// use ferry_engine::receipt::{Receipt, FORMAT};
/// use ferry_engine::report::Status;
/// use ferry_core::Secret;
///
/// let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
/// let key = Secret::new(base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref()));
/// let receipt = Receipt {
///     format: FORMAT.into(), run_id: "r1".into(), client: Some("acme".into()),
///     started_at: "2026-01-01T00:00:00Z".into(), finished_at: "2026-01-01T00:00:01Z".into(),
///     source: "file".into(), destination: "sqlite".into(), status: Status::Succeeded,
///     ferry_version: "0.1.0".into(), streams: vec![],
/// };
/// let signed = receipt.sign(&key).unwrap();
/// let public = signed.verify_signature(None).unwrap();
/// let mut forged = signed.clone();
/// forged.receipt.run_id = "r2".into();
/// assert!(forged.verify_signature(Some(&public)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`FORMAT`].
    pub format: String,
    /// The run id.
    pub run_id: String,
    /// The client the folder belongs to.
    pub client: Option<String>,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// Source connector type.
    pub source: String,
    /// Destination connector type.
    pub destination: String,
    /// Outcome of the run.
    pub status: Status,
    /// Ferry version that wrote it.
    pub ferry_version: String,
    /// Per stream.
    pub streams: Vec<ReceiptStream>,
}

/// An Ed25519 signature over a receipt's canonical bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key, base64 (32 bytes).
    pub public_key: String,
    /// The signature, base64 (64 bytes).
    pub value: String,
}

/// A receipt file: the receipt and its signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    /// What was delivered.
    pub receipt: Receipt,
    /// Who vouches for it (`None`: unsigned).
    pub signature: Option<Signature>,
}

impl Receipt {
    /// Builds a receipt from a run report; local file outputs without a digest are hashed now.
    pub fn from_report(report: &RunReport, client: Option<&str>) -> Result<Receipt> {
        let mut streams = Vec::new();
        for s in &report.streams {
            let mut outputs = Vec::new();
            for o in &s.outputs {
                let mut digest = o.digest.clone();
                let local = match &o.root {
                    Some(root) => root.join(&o.location),
                    None => PathBuf::from(&o.location),
                };
                if digest.is_none() && o.kind == "file" && local.is_file() {
                    digest = Some(file_sha256(&local)?);
                }
                if digest.is_none() && o.kind == "table" && s.write_mode == WriteMode::Overwrite {
                    digest = Some(s.rows_digest.clone());
                }
                outputs.push(ReceiptOutput {
                    kind: o.kind.clone(),
                    // as the sink named it: a file relative to the delivery's root
                    location: o.location.clone(),
                    rows: o.rows,
                    bytes: o.bytes,
                    digest,
                });
            }
            streams.push(ReceiptStream {
                stream: s.stream.clone(),
                destination: s.destination.clone(),
                write_mode: s.write_mode,
                status: s.status,
                rows_read: s.rows_read,
                rows_committed: Some(s.rows_committed),
                rows_written: None,
                rows_rejected: s.rows_rejected,
                rows_filtered: Some(s.rows_filtered),
                rows_uncommitted: Some(s.rows_uncommitted),
                rows_deleted: s.rows_deleted,
                versions_closed: s.versions_closed,
                rows_total: s.rows_total,
                complete: s.complete,
                schema_fingerprint: s.schema_fingerprint.clone(),
                rows_digest: s.rows_digest.clone(),
                state_before: s.state_before.clone(),
                state_after: s.state_after.clone(),
                outputs,
                personal_data: s.personal_data.clone(),
            });
        }
        Ok(Receipt {
            format: FORMAT.into(),
            run_id: report.run_id.clone(),
            client: client.map(str::to_string),
            started_at: report.started_at.clone(),
            finished_at: report.finished_at.clone(),
            source: report.source.clone(),
            destination: report.destination.clone(),
            status: report.status,
            ferry_version: env!("CARGO_PKG_VERSION").into(),
            streams,
        })
    }

    /// The canonical bytes the signature covers.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let v = serde_json::to_value(self).expect("receipt serializes");
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        out
    }

    /// Signs with an Ed25519 key (PKCS#8, base64, as `ferry keys generate signing` stores it).
    pub fn sign(self, pkcs8_b64: &Secret) -> Result<SignedReceipt> {
        let pair = signing_pair(pkcs8_b64)?;
        let sig = pair.sign(&self.canonical_bytes());
        Ok(SignedReceipt {
            signature: Some(Signature {
                algorithm: "ed25519".into(),
                public_key: B64.encode(pair.public_key().as_ref()),
                value: B64.encode(sig.as_ref()),
            }),
            receipt: self,
        })
    }

    /// An unsigned receipt.
    pub fn unsigned(self) -> SignedReceipt {
        SignedReceipt {
            receipt: self,
            signature: None,
        }
    }
}

/// The Ed25519 key pair of a signing key as the vault stores it (PKCS#8, base64).
pub fn signing_pair(pkcs8_b64: &Secret) -> Result<Ed25519KeyPair> {
    let der = B64.decode(pkcs8_b64.expose().trim()).map_err(|_| {
        Error::config(
            "the signing key is not base64 PKCS#8 (make one with `ferry keys generate signing`)",
        )
    })?;
    Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| Error::config("the signing key is not an Ed25519 PKCS#8 key (make one with `ferry keys generate signing`)"))
}

/// A public key as given to `ferry verify --pubkey`: base64 of the 32 bytes, or an OpenSSH
/// `ssh-ed25519 …` line (a `.pub` file, an `allowed_signers` line). Returns the base64 form
/// receipts carry.
pub fn parse_public_key(text: &str) -> Result<String> {
    let text = text.trim();
    if let Some(key) = crate::sshsig::parse_public_key_line(text) {
        return Ok(B64.encode(key));
    }
    match B64.decode(text) {
        Ok(key) if key.len() == 32 => Ok(B64.encode(key)),
        _ => Err(Error::config(
            "the public key is neither base64 of 32 bytes nor an `ssh-ed25519 …` line (`ferry keys show signing` prints both)",
        )),
    }
}

impl SignedReceipt {
    /// Reads a receipt file.
    pub fn read(path: &Path) -> Result<SignedReceipt> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(e, "cannot read the receipt", path))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a receipt file's `bytes`, as [`SignedReceipt::read`] does once it read
    /// `path` (named in errors). Any bytes are safe here: what is not a receipt of a
    /// format this Ferry reads is an error, never a panic.
    ///
    /// Reading is strict, so a receipt has exactly one meaning and all of it is signed: a
    /// field this format does not have, or a key repeated in any object (serde_json would
    /// keep the last, silently), is refused.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<SignedReceipt> {
        let invalid = |e: serde_json::Error| {
            Error::new(ErrorKind::DataInvalid, format!("not a Ferry receipt: {e}"))
                .with("file", path.display())
        };
        crate::strict_json::no_duplicate_keys(bytes).map_err(invalid)?;
        let r: SignedReceipt = serde_json::from_slice(bytes).map_err(invalid)?;
        if !FORMATS_READ.contains(&r.receipt.format.as_str()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "receipt format `{}` is not one this Ferry reads ({}); a newer Ferry may read it",
                    r.receipt.format,
                    FORMATS_READ.join(", ")
                ),
            )
            .with("file", path.display()));
        }
        Ok(r)
    }

    /// Writes the receipt as pretty JSON, atomically, exactly as signed: it is not passed
    /// through the leak guard, which would change signed bytes wherever a secret's text
    /// happens to occur (and mark where). A receipt holds no secret by construction:
    /// connector types, never settings; stream names, cursors and output names.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::state::write_atomic(path, text.as_bytes())
    }

    /// Checks the signature. With `expected_key` (base64, or an `ssh-ed25519 …` line), also
    /// checks it is that key's. Returns the signer's public key (base64).
    pub fn verify_signature(&self, expected_key: Option<&str>) -> Result<String> {
        let sig = self.signature.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::AuthFailed,
                "the receipt is not signed (the run had no signing key in the vault)",
            )
        })?;
        if sig.algorithm != "ed25519" {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("unknown signature algorithm `{}`", sig.algorithm),
            ));
        }
        if let Some(k) = expected_key {
            if parse_public_key(k)? != sig.public_key {
                return Err(Error::new(
                    ErrorKind::AuthFailed,
                    "the receipt was signed by a different key than the one given",
                ));
            }
        }
        let key = B64
            .decode(&sig.public_key)
            .map_err(|_| Error::data("the receipt's public key is not base64"))?;
        let value = B64
            .decode(&sig.value)
            .map_err(|_| Error::data("the receipt's signature is not base64"))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&self.receipt.canonical_bytes(), &value)
            .map_err(|_| {
                Error::new(
                    ErrorKind::AuthFailed,
                    "the signature does not match: the receipt was changed after signing",
                )
            })?;
        Ok(sig.public_key.clone())
    }
}

pub use ferry_core::sink::OutputCheck;

/// Where a file output is on this machine: a relative location (receipts name files
/// relative to the delivery's root) under `dir`; an absolute one (receipts of earlier
/// builds) as written, or its file name under `dir` when one is given (a delivery copied
/// into one folder). `Err`: why it cannot be found (a relative location and no `dir`).
pub fn file_path(
    output: &ReceiptOutput,
    dir: Option<&Path>,
) -> std::result::Result<PathBuf, String> {
    let location = Path::new(&output.location);
    match dir {
        Some(dir) if location.is_absolute() => match location.file_name() {
            Some(name) => Ok(dir.join(name)),
            None => Err(format!("`{}` names no file", output.location)),
        },
        Some(dir) => Ok(dir.join(location)),
        None if location.is_absolute() => Ok(location.to_path_buf()),
        None => Err("the receipt names it relative to the delivery folder: pass --dir DIR (the folder holding the delivered files) or -c sync.toml".into()),
    }
}

/// Recomputes the digest of a file output, found at `path` (see [`file_path`]).
pub fn check_file(output: &ReceiptOutput, path: &Path) -> OutputCheck {
    let Some(want) = &output.digest else {
        return OutputCheck::Unverifiable;
    };
    if !want.starts_with(FILE_PREFIX) {
        return OutputCheck::Unverifiable;
    }
    // only a regular file is read: a receipt from elsewhere may name a device or a pipe
    // (`/dev/zero` would never end), and Ferry only ever delivers regular files
    match std::fs::metadata(path) {
        Err(_) => return OutputCheck::Missing,
        Ok(m) if !m.is_file() => return OutputCheck::Changed,
        Ok(_) => {}
    }
    match file_sha256(path) {
        Ok(got) if &got == want => OutputCheck::Ok,
        Ok(_) => OutputCheck::Changed,
        Err(_) => OutputCheck::Missing,
    }
}

/// An empty row digest in the encoding of a table output's digest, to feed the table's
/// current rows to (`None`: the output has no row digest this build can recompute).
pub fn table_digest(output: &ReceiptOutput) -> Option<RowDigest> {
    output.digest.as_deref().and_then(RowDigest::for_digest)
}

/// Compares a table output's digest with a digest of the table's current rows (made with
/// [`table_digest`], so in the same encoding).
pub fn check_table(output: &ReceiptOutput, current: &RowDigest) -> OutputCheck {
    match &output.digest {
        Some(d) if d.starts_with(current.encoding().prefix()) => {
            if *d == current.to_receipt_string() {
                OutputCheck::Ok
            } else {
                OutputCheck::Changed
            }
        }
        _ => OutputCheck::Unverifiable,
    }
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value as J;
    match v {
        J::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).expect("string").as_bytes());
                out.push(b':');
                write_canonical(&m[*k], out);
            }
            out.push(b'}');
        }
        J::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(serde_json::to_string(other).expect("scalar").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            format: FORMAT.into(),
            run_id: "r1".into(),
            client: Some("acme".into()),
            started_at: "a".into(),
            finished_at: "b".into(),
            source: "file".into(),
            destination: "sqlite".into(),
            status: Status::Succeeded,
            ferry_version: "0".into(),
            streams: vec![],
        }
    }

    fn key() -> (Secret, String) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        (
            Secret::new(B64.encode(pkcs8.as_ref())),
            B64.encode(pair.public_key().as_ref()),
        )
    }

    #[test]
    fn only_regular_files_are_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.csv");
        std::fs::write(&file, "id\n1\n").unwrap();
        let delivered = file_sha256(&file).unwrap();
        let output = ReceiptOutput {
            kind: "file".into(),
            location: "out.csv".into(),
            rows: 1,
            bytes: Some(5),
            digest: Some(delivered.clone()),
        };
        let check = |path: &Path| check_file(&output, path);
        assert_eq!(check(&file), OutputCheck::Ok);
        std::fs::write(&file, "id\n2\n").unwrap();
        assert_eq!(check(&file), OutputCheck::Changed);
        assert_eq!(check(&dir.path().join("gone.csv")), OutputCheck::Missing);
        // a folder, and a device that never ends: answered at once, never read
        assert_eq!(check(dir.path()), OutputCheck::Changed);
        #[cfg(unix)]
        assert_eq!(check(Path::new("/dev/zero")), OutputCheck::Changed);
    }

    #[test]
    fn relative_locations_are_found_under_the_delivery_folder_absolute_ones_as_written() {
        let output = |location: &str| ReceiptOutput {
            kind: "file".into(),
            location: location.into(),
            rows: 1,
            bytes: None,
            digest: None,
        };
        let copy = Path::new("/tmp/copy");
        assert_eq!(
            file_path(&output("sub/a.csv"), Some(copy)).unwrap(),
            copy.join("sub/a.csv")
        );
        assert!(file_path(&output("a.csv"), None)
            .unwrap_err()
            .contains("--dir"));
        // receipts of earlier builds: absolute paths
        assert_eq!(
            file_path(&output("/home/eng/out/a.csv"), None).unwrap(),
            Path::new("/home/eng/out/a.csv")
        );
        assert_eq!(
            file_path(&output("/home/eng/out/a.csv"), Some(copy)).unwrap(),
            copy.join("a.csv")
        );
    }

    #[test]
    fn sign_verify_and_detect_tampering() {
        let (sk, pk) = key();
        let signed = receipt().sign(&sk).unwrap();
        assert_eq!(signed.verify_signature(Some(&pk)).unwrap(), pk);
        let mut changed = signed.clone();
        changed.receipt.run_id = "r2".into();
        assert_eq!(
            changed.verify_signature(None).unwrap_err().kind(),
            ErrorKind::AuthFailed
        );
        let (_, other) = key();
        assert!(signed.verify_signature(Some(&other)).is_err());
        assert!(receipt().unsigned().verify_signature(None).is_err());
    }

    #[test]
    fn v1_receipts_still_read_and_verify_unknown_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = key();
        let mut v1 = receipt();
        v1.format = "ferry-receipt/v1".into();
        let path = dir.path().join("v1.json");
        v1.sign(&sk).unwrap().write(&path).unwrap();
        let read = SignedReceipt::read(&path).unwrap();
        assert_eq!(read.receipt.format, "ferry-receipt/v1");
        assert_eq!(read.verify_signature(Some(&pk)).unwrap(), pk);

        let mut v9 = receipt();
        v9.format = "ferry-receipt/v9".into();
        let path = dir.path().join("v9.json");
        v9.unsigned().write(&path).unwrap();
        let e = SignedReceipt::read(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            e.to_string().contains("ferry-receipt/v9")
                && e.to_string().contains("ferry-receipt/v1, ferry-receipt/v2")
                && e.to_string().contains("v9.json"),
            "{e}"
        );
    }

    #[test]
    fn table_outputs_are_checked_in_the_encoding_their_digest_names() {
        use ferry_formats::digest::{RowEncoding, ROWS_TEXT_PREFIX};
        use std::sync::Arc;
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            ferry_core::FerryType::Int64.field("id", false),
        ]));
        let batch = |ids: Vec<i64>| {
            arrow_array::RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(arrow_array::Int64Array::from(ids))],
            )
            .unwrap()
        };
        for enc in [RowEncoding::Text, RowEncoding::Binary] {
            let mut written = RowDigest::with_encoding(enc);
            written.add_batch(&batch(vec![1, 2, 3]));
            let output = ReceiptOutput {
                kind: "table".into(),
                location: "t".into(),
                rows: 3,
                bytes: None,
                digest: Some(written.to_receipt_string()),
            };
            let mut same = table_digest(&output).unwrap();
            assert_eq!(same.encoding(), enc);
            same.add_batch(&batch(vec![3, 2, 1]));
            assert_eq!(check_table(&output, &same), OutputCheck::Ok);
            let mut other = table_digest(&output).unwrap();
            other.add_batch(&batch(vec![3, 2, 4]));
            assert_eq!(check_table(&output, &other), OutputCheck::Changed);
            // a digest in the other encoding is never taken as a match
            let mut wrong = RowDigest::with_encoding(match enc {
                RowEncoding::Text => RowEncoding::Binary,
                RowEncoding::Binary => RowEncoding::Text,
            });
            wrong.add_batch(&batch(vec![1, 2, 3]));
            assert_eq!(check_table(&output, &wrong), OutputCheck::Unverifiable);
        }
        assert!(ROWS_TEXT_PREFIX.starts_with("rows-sha256"));
    }

    #[test]
    fn receipts_with_rows_written_still_verify() {
        // a receipt as Ferry wrote it before `rows_committed`: signed over its own fields
        let (sk, pk) = key();
        let mut old = serde_json::json!({
            "format": "ferry-receipt/v2", "run_id": "r1", "client": null,
            "started_at": "a", "finished_at": "b", "source": "file", "destination": "sqlite",
            "status": "succeeded", "ferry_version": "0",
            "streams": [{
                "stream": "s", "destination": "s", "write_mode": "append", "status": "succeeded",
                "rows_read": 3, "rows_written": 3, "rows_rejected": 0,
                "schema_fingerprint": "f", "rows_digest": "d",
                "state_before": null, "state_after": null, "outputs": []
            }]
        });
        let mut bytes = Vec::new();
        write_canonical(&old, &mut bytes);
        let der = B64.decode(sk.expose()).unwrap();
        let sig = Ed25519KeyPair::from_pkcs8(&der).unwrap().sign(&bytes);
        old["signature"] = serde_json::json!({
            "algorithm": "ed25519", "public_key": pk, "value": B64.encode(sig.as_ref())
        });
        let wrapped = serde_json::json!({"receipt": {}, "signature": old["signature"].clone()});
        let mut file = wrapped;
        old.as_object_mut().unwrap().remove("signature");
        file["receipt"] = old;
        let read =
            SignedReceipt::from_bytes(file.to_string().as_bytes(), Path::new("old.json")).unwrap();
        let s = &read.receipt.streams[0];
        assert_eq!((s.rows_written, s.rows_committed), (Some(3), None));
        assert_eq!(read.verify_signature(Some(&pk)).unwrap(), pk);
    }

    #[test]
    fn canonical_bytes_sort_keys_without_whitespace() {
        let mut out = Vec::new();
        write_canonical(
            &serde_json::json!({"b": 1, "a": [true, null, "x\n"]}),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[true,null,"x\n"],"b":1}"#
        );
    }
}
