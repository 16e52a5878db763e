//! The entry points every fuzz target calls, one per reader of untrusted bytes.
//!
//! This file is compiled twice: into the `ferry-fuzz` crate (for `cargo fuzz`) and, by
//! `#[path]`, into `engine/tests/fuzz_regressions.rs`, which runs every kept input through
//! the same function in CI. So it uses only the public API of Ferry's crates and `std`.
//!
//! Each function takes arbitrary bytes and returns `Ok` (with a count of what it read) or
//! the reader's error. A panic, a hang or an unbounded allocation is a bug in Ferry. The
//! functions also check a few invariants a reader must keep (e.g. the rows it reports are
//! the rows it yielded), with `assert!`, so breaking one shows up as a crash.
//!
//! Input layout: the CSV, JSON Lines, text, Excel and archive targets use the first byte as
//! flags (delimiter, header, null text; encoding and dialect; the workbook or archive kind)
//! and the rest as the file; every other target takes the whole input as the file.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ferry_core::secret::ResolveContext;
use ferry_core::vault::{KeySource, VaultFile};
use ferry_core::{Message, Result, Secret};
use ferry_engine::config::SyncConfig;
use ferry_engine::receipt::{table_digest, SignedReceipt};
use ferry_formats::age::{decrypt_reader, Identities};
use ferry_formats::archive::{tar_entries, zip_entries, Breach, Flow, Limits, Unpack};
use ferry_formats::codec::{
    infer_csv, infer_excel, infer_jsonl, infer_parquet, parse_encoding, sheet_names,
    sniff_delimiter, Bytes, CsvOptions, CsvReader, DecodeReader, ExcelOptions, ExcelReader,
    InferOptions, JsonlReader, NumberFormat, ParquetReader, Sheet,
};
use ferry_formats::pgp::{Decryptor, PublicKeys, SecretKeys};

/// The X25519 secret key the `age_decrypt` target decrypts with (its seeds are encrypted
/// to it). A fixed test key: it protects nothing.
pub const AGE_KEY: &str =
    "AGE-SECRET-KEY-1QYPQXPQ9QCRSSZG2PVXQ6RS0ZQG3YYC5Z5TPWXQERGD3C8G7RUSQGPQYEE";

/// The passphrase the `age_decrypt` target also tries.
pub const AGE_PASSPHRASE: &str = "fuzz passphrase";

/// Highest scrypt work factor the `age_decrypt` target accepts: a file names its own, and
/// 2^22 (the default limit) costs 4 GiB and seconds per input.
pub const AGE_MAX_WORK_FACTOR: u8 = 12;

/// The OpenPGP secret key the `pgp_decrypt` target decrypts with, and the client public key
/// whose signature it requires (fixed test keys made by `fuzz/pgp/make_seeds.sh` with gpg,
/// which also made the kept inputs: they protect nothing).
pub const PGP_SECRET_KEY: &str = include_str!("../pgp/ferry.sec.asc");

/// See [`PGP_SECRET_KEY`].
pub const PGP_CLIENT_KEY: &str = include_str!("../pgp/client.pub.asc");

/// The raw vault key the `vault_open` target opens with.
pub const VAULT_KEY: [u8; 32] = [7; 32];

/// The Ed25519 public key (base64) the `receipt_verify` target expects receipts to be
/// signed with (an all-zero key: no signature verifies against it, which is the point).
pub const RECEIPT_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Rows per batch in the readers: small, so batch boundaries are crossed often.
const BATCH: usize = 7;

/// Records sampled by inference: enough to see type changes, few enough to stay fast.
const SAMPLE: usize = 64;

/// How the targets infer schemas: from a sample of [`SAMPLE`] records.
fn sample() -> InferOptions {
    InferOptions {
        sample_rows: SAMPLE,
        overrides: Vec::new(),
    }
}

/// Reads `reader` to the end; checks that it reports (`rows`) the rows it yielded.
fn drain<R: Iterator<Item = Result<Message>>>(
    mut reader: R,
    rows: fn(&R) -> u64,
    what: &str,
) -> Result<u64> {
    let mut n = 0u64;
    for m in reader.by_ref() {
        n += count(m?);
    }
    assert_eq!(n, rows(&reader), "{what} reader's row count is off");
    Ok(n)
}

/// Splits the flag byte off a CSV / JSON Lines input.
fn flags(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    }
}

/// CSV with schema inference: the first byte picks the delimiter (bits 0–1: `,` `;` tab
/// `|`), no header (bit 2) and `NULL` as the null text (bit 3).
pub fn csv_read(data: &[u8]) -> Result<u64> {
    let (f, body) = flags(data);
    let csv = CsvOptions {
        delimiter: [b',', b';', b'\t', b'|'][(f & 3) as usize],
        has_header: f & 4 == 0,
        null_text: if f & 8 != 0 {
            "NULL".into()
        } else {
            String::new()
        },
        ..CsvOptions::default()
    };
    read_csv(body, &csv)
}

/// Infers the schema of CSV `body`, then reads it in full, checking the row count.
fn read_csv(body: &[u8], csv: &CsvOptions) -> Result<u64> {
    let schema = infer_csv(body, csv, &sample())?;
    let reader = CsvReader::new(body, schema, csv)?
        .with_file("fuzz.csv")
        .with_batch_size(BATCH);
    drain(reader, CsvReader::rows, "CSV")
}

/// JSON Lines with schema inference (the first byte is reserved as a flag byte, unused).
pub fn jsonl_read(data: &[u8]) -> Result<u64> {
    let (_, body) = flags(data);
    let schema = infer_jsonl(body, &sample())?;
    let reader = JsonlReader::new(body, schema)?
        .with_file("fuzz.jsonl")
        .with_batch_size(BATCH);
    drain(reader, JsonlReader::rows, "JSON Lines")
}

/// Encodings the `text_read` target decodes from (the flag byte's bits 0–2).
const ENCODINGS: [Option<&str>; 8] = [
    None,
    Some("windows-1252"),
    Some("utf-16le"),
    Some("utf-16be"),
    Some("shift_jis"),
    Some("utf-8"),
    Some("gb18030"),
    Some("iso-2022-jp"),
];

/// Decoding and CSV dialects: the first byte picks the encoding (bits 0–2), guesses the
/// delimiter (bit 3), skips a line before the header (bit 4) and one record at the end
/// (bit 5), and reads numbers as `1.234,56` (bit 6). Checks that decoding does not depend
/// on how the input is cut into reads, that bytes pass untouched without an encoding, and
/// that the reader reports the rows it yielded.
pub fn text_read(data: &[u8]) -> Result<u64> {
    let (f, body) = flags(data);
    let encoding = ENCODINGS[(f & 7) as usize]
        .map(parse_encoding)
        .transpose()?;
    let mut whole = Vec::new();
    DecodeReader::new(body, encoding)
        .read_to_end(&mut whole)
        .expect("reading from memory");
    let mut cut = Vec::new();
    let mut reader = DecodeReader::new(
        Trickle {
            data: body,
            step: 0,
        },
        encoding,
    );
    let mut buf = [0u8; 5];
    loop {
        let n = reader.read(&mut buf).expect("reading from memory");
        if n == 0 {
            break;
        }
        cut.extend_from_slice(&buf[..n]);
    }
    assert_eq!(whole, cut, "decoding depends on how the input is cut");
    if encoding.is_none() && reader.decoding().is_none() {
        let plain = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        assert_eq!(whole, plain, "bytes changed without an encoding");
    }
    let delimiter = sniff_delimiter(&whole, b'"', b',', true);
    assert!(b",;\t|".contains(&delimiter), "sniffed {delimiter}");
    let csv = CsvOptions {
        sniff_delimiter: f & 8 != 0,
        skip_rows: usize::from(f & 16 != 0),
        skip_footer_rows: usize::from(f & 32 != 0),
        numbers: if f & 64 != 0 {
            NumberFormat {
                decimal: ',',
                thousands: Some('.'),
            }
        } else {
            NumberFormat::default()
        },
        encoding,
        ..CsvOptions::default()
    };
    read_csv(body, &csv)
}

/// Hands out 1 to 7 bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step += 1;
        let n = (self.step % 7 + 1).min(self.data.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A Parquet file: the schema from its footer, then every row group.
pub fn parquet_read(data: &[u8]) -> Result<u64> {
    let bytes = Bytes::copy_from_slice(data);
    let schema = infer_parquet(&bytes)?;
    let reader = ParquetReader::new(bytes, schema)?
        .with_file("fuzz.parquet")
        .with_batch_size(BATCH);
    drain(reader, ParquetReader::rows, "Parquet")
}

/// A workbook (the first byte picks the kind: bit 0 `.ods`, bit 1 `.xls`, else `.xlsx`;
/// bit 2 reads without a header; the rest is the file): every sheet, the schema inferred
/// from each, then every row.
pub fn excel_read(data: &[u8]) -> Result<u64> {
    let (f, body) = flags(data);
    let name = match f & 3 {
        1 => "fuzz.ods",
        2 => "fuzz.xls",
        _ => "fuzz.xlsx",
    };
    let sheets = sheet_names(Cursor::new(body), Some(name))?;
    let mut rows = 0u64;
    for sheet in sheets.iter().take(4) {
        let excel = ExcelOptions {
            sheet: Sheet::Name(sheet.clone()),
            header_row: (f & 4 != 0).then_some(0),
            range: None,
        };
        let schema = infer_excel(Cursor::new(body), Some(name), &excel, &sample())?;
        let reader =
            ExcelReader::new(Cursor::new(body), Some(name), schema, &excel)?.with_batch_size(BATCH);
        rows += drain(reader, ExcelReader::rows, "Excel")?;
    }
    Ok(rows)
}

/// An archive (the first byte: bit 0 a tar.gz, else a zip; the rest is the file), held to
/// small limits: every entry read to the end; returns the bytes unpacked.
pub fn archive_read(data: &[u8]) -> Result<u64> {
    let (f, body) = flags(data);
    let limits = Limits {
        entries: 64,
        expanded_bytes: 8 << 20,
        ratio: 100,
    };
    let how = Unpack {
        archive: if f & 1 == 1 {
            "fuzz.tar.gz"
        } else {
            "fuzz.zip"
        },
        limits,
        breach: Breach::default(),
        keep: &|_| true,
    };
    let mut total = 0u64;
    let mut each = |_: &str, r: &mut dyn Read| -> Result<Flow> {
        let n = std::io::copy(r, &mut std::io::sink())
            .map_err(|e| ferry_core::Error::data(format!("cannot read an entry: {e}")))?;
        total += n;
        assert!(total <= limits.expanded_bytes, "unpacked past the limit");
        Ok(Flow::Next)
    };
    if f & 1 == 1 {
        tar_entries(body, true, &how, &mut each)?;
    } else {
        zip_entries(Cursor::new(body), &how, &mut each)?;
    }
    Ok(total)
}

/// Rows in a message (and sanity checks on it).
fn count(m: Message) -> u64 {
    match m {
        Message::Batch(b) => {
            assert!(b.num_rows() > 0, "a reader yielded an empty batch");
            assert!(
                b.num_rows() <= BATCH,
                "a batch is larger than the batch size"
            );
            b.num_rows() as u64
        }
        Message::Rejected(r) => {
            assert!(!r.message.is_empty(), "a rejection without a message");
            0
        }
        _ => 0,
    }
}

/// A `sync.toml` (`SyncConfig::parse`), resolved against a folder that does not exist, so
/// relative `${file:…}` references fail; returns the number of streams.
pub fn config_load(data: &[u8]) -> Result<u64> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(0);
    };
    let dir = PathBuf::from("/nonexistent/ferry-fuzz");
    let ctx = ResolveContext {
        base_dir: dir.clone(),
        vault: None,
    };
    let cfg = SyncConfig::parse(Path::new("fuzz/sync.toml"), text.to_string(), dir, ctx)?;
    Ok(cfg.streams.len() as u64)
}

fn age_identities() -> &'static (Identities, Identities) {
    static IDS: OnceLock<(Identities, Identities)> = OnceLock::new();
    IDS.get_or_init(|| {
        let keys = Identities::parse(&Secret::new(AGE_KEY)).expect("fixed key parses");
        let mut pass =
            Identities::passphrase(&Secret::new(AGE_PASSPHRASE)).expect("fixed passphrase");
        pass.set_max_work_factor(AGE_MAX_WORK_FACTOR)
            .expect("work factor in range");
        (keys, pass)
    })
}

/// An age file, decrypted with a fixed key and with a passphrase, streamed to the end and
/// (when it opens) also read by seeking, as Parquet inside age is; returns the plaintext
/// bytes, or the last error when no identity could read the whole file.
pub fn age_decrypt(data: &[u8]) -> Result<u64> {
    let (keys, pass) = age_identities();
    let mut outcome = Ok(0);
    for ids in [keys, pass] {
        match age_read(ids, data) {
            Ok(n) => return Ok(n),
            Err(e) => outcome = Err(e),
        }
    }
    outcome
}

fn age_read(ids: &Identities, data: &[u8]) -> Result<u64> {
    let mut r = decrypt_reader(ids, data)?;
    let streamed = ferry_formats::age::copy(&mut r, &mut std::io::sink(), None, None);
    let mut r = decrypt_reader(ids, Cursor::new(data))?;
    let mut buf = [0u8; 512];
    if let Ok(end) = r.seek(SeekFrom::End(0)) {
        if let Ok(n) = &streamed {
            assert_eq!(end, *n, "seeking to the end disagrees with streaming");
        }
        for at in [
            0,
            end / 2,
            end.saturating_sub(1),
            end,
            end + 10,
            end + 100_000,
        ] {
            if r.seek(SeekFrom::Start(at)).is_ok() {
                let n = r.read(&mut buf).unwrap_or(0) as u64;
                assert!(n == 0 || at + n <= end, "read past the end after a seek");
            }
        }
    }
    let _ = r.seek(SeekFrom::Current(-1));
    let _ = r.read(&mut buf);
    streamed
}

/// A vault file, opened with a fixed raw key; returns the number of secrets.
pub fn vault_open(data: &[u8]) -> Result<u64> {
    let key = KeySource::Raw(Box::new(VAULT_KEY).into());
    let vault = VaultFile::from_bytes("fuzz.vault", data, Some("acme"), &key)?;
    let names = vault.names();
    for n in &names {
        assert!(vault.get(n).is_some(), "a listed secret is missing");
    }
    Ok(names.len() as u64)
}

/// A receipt file: parsed, its signature checked against the key it names and against
/// [`RECEIPT_KEY`], every table digest parsed; returns the number of outputs.
pub fn receipt_verify(data: &[u8]) -> Result<u64> {
    let signed = SignedReceipt::from_bytes(data, Path::new("fuzz-receipt.json"))?;
    let _ = signed.verify_signature(None);
    assert!(
        signed.verify_signature(Some(RECEIPT_KEY)).is_err(),
        "a receipt verified against a key nobody holds"
    );
    let _ = signed.receipt.canonical_bytes();
    let mut outputs = 0;
    for s in &signed.receipt.streams {
        for o in &s.outputs {
            let _ = table_digest(o);
            outputs += 1;
        }
    }
    Ok(outputs)
}

fn pgp_decryptor() -> &'static Decryptor {
    static KEYS: OnceLock<Decryptor> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = SecretKeys::parse(&Secret::new(PGP_SECRET_KEY), None).expect("fixed key");
        let client = PublicKeys::parse(&[PGP_CLIENT_KEY.to_string()], Path::new("."), "fuzz")
            .expect("fixed client key");
        Decryptor::new(keys, Some(client))
    })
}

/// An OpenPGP file (binary or armored), decrypted with a fixed key, its signature by a
/// fixed client key required; returns the plaintext bytes once authenticated.
pub fn pgp_decrypt(data: &[u8]) -> Result<u64> {
    let keys = pgp_decryptor();
    // the cheap check (session key only) must not panic either
    let checked = keys.check(data);
    let mut plain = keys.decrypt(data)?;
    assert!(checked.is_ok(), "decrypted a file the check refused");
    let mut n = 0u64;
    let mut buf = [0u8; 4096];
    loop {
        match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => panic!("reading a spooled plaintext failed: {e}"),
        }
    }
    assert_eq!(
        n,
        plain.len(),
        "the plaintext length disagrees with what was read"
    );
    Ok(n)
}
