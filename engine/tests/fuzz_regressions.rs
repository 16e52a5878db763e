//! Every input kept under `tests/fuzz_regressions/<target>/` (crashes the fuzzers found,
//! hand-made nasty inputs, and the seeds the fuzzers start from) goes through the same
//! entry function as its fuzz target (`fuzz/src/entries.rs`, included below), and must
//! come back as `Ok` or as an error with a message, never a panic.
//!
//! A file's name says what it must give: `ok-…` must read (`Ok`), `err-…` must be refused
//! (`Err`), anything else (e.g. `crash-…` as libFuzzer names them) may do either.
//! See README "Reliability → Fuzzing".

#[allow(dead_code)]
#[path = "../../fuzz/src/entries.rs"]
mod entries;

use std::path::{Path, PathBuf};

type Entry = fn(&[u8]) -> ferry_core::Result<u64>;

const TARGETS: &[(&str, Entry)] = &[
    ("csv_read", entries::csv_read),
    ("jsonl_read", entries::jsonl_read),
    ("text_read", entries::text_read),
    ("parquet_read", entries::parquet_read),
    ("excel_read", entries::excel_read),
    ("archive_read", entries::archive_read),
    ("config_load", entries::config_load),
    ("age_decrypt", entries::age_decrypt),
    ("pgp_decrypt", entries::pgp_decrypt),
    ("vault_open", entries::vault_open),
    ("receipt_verify", entries::receipt_verify),
];

fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target)
}

#[test]
fn kept_inputs_are_read_or_refused_without_panicking() {
    let mut failures = Vec::new();
    for (target, entry) in TARGETS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir(target))
            .unwrap_or_else(|e| panic!("{target}: cannot list {}: {e}", dir(target).display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(
            files.len() >= 2,
            "{target}: keep at least two inputs in {}",
            dir(target).display()
        );
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&file).expect("read kept input");
            let outcome = std::panic::catch_unwind(|| entry(&bytes));
            match outcome {
                Err(_) => failures.push(format!("{target}/{name}: panicked")),
                Ok(Ok(_)) if name.starts_with("err-") => {
                    failures.push(format!("{target}/{name}: was read, must be refused"))
                }
                Ok(Err(e)) if name.starts_with("ok-") => {
                    failures.push(format!("{target}/{name}: refused: {e}"))
                }
                Ok(Err(e)) if e.message().trim().is_empty() => {
                    failures.push(format!("{target}/{name}: refused without a message"))
                }
                Ok(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes the valid `ok-seed…` inputs (files each reader must read), which also seed the
/// fuzzers. Run again when a format changes:
/// `cargo test -p ferry-core --test fuzz_regressions -- --ignored write_seeds`.
#[test]
#[ignore]
fn write_seeds() {
    use ferry_core::vault::{KeySource, VaultFile};
    use ferry_core::Secret;
    use ferry_engine::receipt::{ReceiptOutput, ReceiptStream};
    use ferry_formats::age::{encrypt_writer, public_key, Recipients};
    use ferry_formats::codec::{CsvOptions, CsvWriter, JsonlWriter, ParquetOptions, ParquetWriter};
    use ferry_testkit::{all_types_batch, all_types_schema, orders_stream, receipt};
    use std::io::Write;

    let put = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir(target)).unwrap();
        std::fs::write(dir(target).join(name), bytes).unwrap();
    };
    let batch = all_types_batch();

    let mut w = CsvWriter::new(vec![0u8], all_types_schema(), &CsvOptions::default()).unwrap();
    w.write_batch(&batch).unwrap();
    put(
        "csv_read",
        "ok-seed-all-types.csv",
        &w.into_inner().unwrap(),
    );

    let mut w = JsonlWriter::new(vec![0u8], all_types_schema()).unwrap();
    w.write_batch(&batch).unwrap();
    put(
        "jsonl_read",
        "ok-seed-all-types.jsonl",
        &w.into_inner().unwrap(),
    );

    let mut w =
        ParquetWriter::new(Vec::new(), all_types_schema(), &ParquetOptions::default()).unwrap();
    w.write_batch(&batch).unwrap();
    put(
        "parquet_read",
        "ok-seed-all-types.parquet",
        &w.into_inner().unwrap(),
    );

    let public = public_key(&Secret::new(entries::AGE_KEY)).unwrap();
    let recipients = Recipients::parse(&[public], Path::new(".")).unwrap();
    let mut w = encrypt_writer(&recipients, Vec::new()).unwrap();
    w.write_all(b"id,name\n1,Ada\n").unwrap();
    put("age_decrypt", "ok-seed-x25519.age", &w.finish().unwrap());
    let mut recipients = Recipients::passphrase(&Secret::new(entries::AGE_PASSPHRASE)).unwrap();
    recipients.set_work_factor(10).unwrap();
    let mut w = encrypt_writer(&recipients, Vec::new()).unwrap();
    w.write_all(&vec![b'x'; 70_000]).unwrap(); // two chunks
    put(
        "age_decrypt",
        "ok-seed-passphrase.age",
        &w.finish().unwrap(),
    );

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("secrets.vault");
    let key = KeySource::Raw(Box::new(entries::VAULT_KEY).into());
    let mut vault = VaultFile::create(&path, Some("acme"), &key).unwrap();
    vault
        .set("signing_key", &Secret::new("not a real key"))
        .unwrap();
    vault.save().unwrap();
    put(
        "vault_open",
        "ok-seed.vault",
        &std::fs::read(&path).unwrap(),
    );

    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    use base64::Engine;
    let signing = Secret::new(base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref()));
    let digest = format!("rows2-sha256-sum:{}", "ab".repeat(32));
    let orders = ReceiptStream {
        rows_uncommitted: Some(0),
        rows_total: Some(2),
        complete: Some(true),
        schema_fingerprint: "sha256:00".into(),
        rows_digest: digest.clone(),
        state_after: Some(serde_json::json!({"cursor": 2})),
        outputs: vec![ReceiptOutput {
            kind: "table".into(),
            location: "out.db#orders".into(),
            rows: 2,
            bytes: None,
            digest: Some(digest),
        }],
        ..orders_stream(ferry_core::WriteMode::Overwrite, 2)
    };
    let receipt = receipt("file", "sqlite", vec![orders]);
    let signed = receipt.sign(&signing).unwrap();
    put(
        "receipt_verify",
        "ok-seed-signed.json",
        &serde_json::to_vec_pretty(&signed).unwrap(),
    );
}
