//! `ferry decrypt-columns`: the client's way back from the `encrypt` transform. Reads a CSV
//! or JSONL file as Ferry delivered it and writes it again with the named columns decrypted
//! (the other values unchanged; JSONL keys in the same order).
//!
//! An output file is written beside its final name and renamed into place only when every
//! value decrypted, so a wrong key never leaves a half-decrypted file. On standard output
//! rows are released as they are decrypted: check the exit status.

use std::fmt;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ferry_core::{Error, ErrorKind, Result, Secret};
use ferry_engine::transform::FieldKey;
use serde::de::{Deserializer, MapAccess, Visitor};

/// The file formats `decrypt-columns` reads and writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// One column to decrypt: its name in the file, and the name it was encrypted under (the
/// column name is the associated data, so a column renamed after `encrypt` needs both).
struct Target {
    name: String,
    encrypted_as: String,
}

fn targets(columns: &[String]) -> Result<Vec<Target>> {
    columns
        .iter()
        .map(|c| {
            let (name, was) = c.split_once('=').unwrap_or((c, c));
            let (name, was) = (name.trim(), was.trim());
            if name.is_empty() || was.is_empty() {
                return Err(Error::config(format!(
                    "--columns `{c}`: give a column name, or COLUMN=NAME_WHEN_ENCRYPTED"
                )));
            }
            Ok(Target {
                name: name.into(),
                encrypted_as: was.into(),
            })
        })
        .collect()
}

/// Decrypts `columns` of `input` (standard input when `None`) with the key in `key_file`
/// into `output` (standard output when `None`). Returns the number of values decrypted.
pub fn run(
    input: Option<&Path>,
    output: Option<&Path>,
    key_file: &Path,
    columns: &[String],
    format: Option<Format>,
) -> Result<u64> {
    let key = read_key(key_file)?;
    let targets = targets(columns)?;
    let format = match (format, input) {
        (Some(f), _) => f,
        (None, Some(p)) => format_of(p)?,
        (None, None) => {
            return Err(Error::config(
                "reading standard input: say which format with --format csv or --format jsonl",
            ))
        }
    };
    let reader: Box<dyn Read> = match input {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| Error::io(e, "cannot open", p))?),
        None => Box::new(io::stdin().lock()),
    };
    let name = input.map_or("standard input".to_string(), |p| p.display().to_string());
    let file_ctx = |e: Error| e.with("file", &name);
    match output {
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            let n = convert(format, reader, &mut out, &key, &targets).map_err(file_ctx)?;
            out.flush()
                .map_err(|e| Error::io(e, "cannot write", "standard output"))?;
            Ok(n)
        }
        Some(dst) => {
            let dir = match dst.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let tmp = tempfile::NamedTempFile::new_in(&dir)
                .map_err(|e| Error::io(e, "cannot create a file in", &dir))?;
            let mut out = BufWriter::new(tmp.as_file());
            let n = convert(format, reader, &mut out, &key, &targets).map_err(file_ctx)?;
            out.flush().map_err(|e| Error::io(e, "cannot write", dst))?;
            drop(out);
            tmp.persist(dst)
                .map_err(|e| Error::io(e.error, "cannot write", dst))?;
            Ok(n)
        }
    }
}

/// The key file's content, as a secret from the moment it is read.
fn read_key(path: &Path) -> Result<FieldKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(e, "cannot read the key file", path))?;
    FieldKey::parse(&Secret::new(text)).map_err(|e| e.with("file", path.display()))
}

fn format_of(path: &Path) -> Result<Format> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv") {
        Ok(Format::Csv)
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Ok(Format::Jsonl)
    } else {
        Err(Error::config(format!(
            "cannot tell the format of `{}` from its name: pass --format csv or --format jsonl (compressed or .age files: decompress or `ferry decrypt` them first)",
            path.display()
        )))
    }
}

fn convert(
    format: Format,
    input: impl Read,
    out: &mut impl Write,
    key: &FieldKey,
    targets: &[Target],
) -> Result<u64> {
    match format {
        Format::Csv => csv_columns(input, out, key, targets),
        Format::Jsonl => jsonl_columns(input, out, key, targets),
    }
}

/// An error about one value: names the row and column, never the value.
fn at(e: Error, row: u64, t: &Target) -> Error {
    let mut e = e.with("row", row).with("column", &t.name);
    if t.encrypted_as != t.name {
        e = e.with("encrypted_as", &t.encrypted_as);
    }
    e
}

fn missing(t: &Target, present: &[&str]) -> Error {
    let mut msg = format!("no column `{}` in the file", t.name);
    if let Some(best) = ferry_core::suggest::nearest(&t.name, present.iter().copied()) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    msg.push_str(&format!(" (columns: {})", present.join(", ")));
    Error::new(ErrorKind::NotFound, msg)
}

fn csv_columns(
    input: impl Read,
    out: &mut impl Write,
    key: &FieldKey,
    targets: &[Target],
) -> Result<u64> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let header = rd.headers().map_err(csv_error)?.clone();
    let names: Vec<&str> = header.iter().collect();
    let idx = targets
        .iter()
        .map(|t| {
            names
                .iter()
                .position(|n| *n == t.name)
                .ok_or_else(|| missing(t, &names))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut wr = csv::Writer::from_writer(out);
    wr.write_record(&header).map_err(csv_error)?;
    let mut n = 0;
    let mut rec = csv::StringRecord::new();
    let mut fields: Vec<String> = Vec::new();
    while rd.read_record(&mut rec).map_err(csv_error)? {
        let row = rec.position().map_or(0, |p| p.line());
        fields.clear();
        fields.extend(rec.iter().map(str::to_string));
        for (t, &i) in targets.iter().zip(&idx) {
            match fields.get_mut(i) {
                // an empty field is NULL (or an empty text, which `encrypt` never writes)
                Some(v) if !v.is_empty() => {
                    *v = key.decrypt(&t.encrypted_as, v).map_err(|e| at(e, row, t))?;
                    n += 1;
                }
                _ => {}
            }
        }
        wr.write_record(&fields).map_err(csv_error)?;
    }
    wr.flush()
        .map_err(|e| Error::io(e, "cannot write", "the output"))?;
    Ok(n)
}

fn csv_error(e: csv::Error) -> Error {
    let mut err = Error::data(format!("not a valid CSV file: {e}"));
    if let Some(p) = e.position() {
        err = err.with("row", p.line());
    }
    err
}

fn jsonl_columns(
    input: impl Read,
    out: &mut impl Write,
    key: &FieldKey,
    targets: &[Target],
) -> Result<u64> {
    let mut n = 0;
    let mut seen = vec![false; targets.len()];
    let mut last: Vec<String> = Vec::new();
    for (line_no, line) in BufReader::new(input).lines().enumerate() {
        let row = line_no as u64 + 1;
        let line = line.map_err(|e| Error::io(e, "cannot read", "the input"))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut obj = serde_json::Deserializer::from_str(&line)
            .deserialize_map(Ordered)
            .map_err(|e| Error::data(format!("not a JSON object: {e}")).with("row", row))?;
        last = obj.iter().map(|(k, _)| k.clone()).collect();
        for (j, t) in targets.iter().enumerate() {
            let Some((_, v)) = obj.iter_mut().find(|(k, _)| *k == t.name) else {
                continue;
            };
            seen[j] = true;
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    *s = key.decrypt(&t.encrypted_as, s).map_err(|e| at(e, row, t))?;
                    n += 1;
                }
                _ => {
                    return Err(at(
                        Error::data("the value is not a string, so not an encrypted field"),
                        row,
                        t,
                    ))
                }
            }
        }
        write_object(out, &obj).map_err(|e| Error::io(e, "cannot write", "the output"))?;
    }
    // a column no row has is a typo, unless the file has no rows
    if !last.is_empty() {
        if let Some((t, _)) = targets.iter().zip(&seen).find(|(_, s)| !**s) {
            let present: Vec<&str> = last.iter().map(String::as_str).collect();
            return Err(missing(t, &present));
        }
    }
    Ok(n)
}

fn write_object(out: &mut impl Write, obj: &[(String, serde_json::Value)]) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (k, v)) in obj.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, k)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, v)?;
    }
    out.write_all(b"}\n")
}

/// Reads a JSON object keeping its keys in file order (serde_json's map sorts them).
struct Ordered;

impl<'de> Visitor<'de> for Ordered {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = map.next_entry()? {
            out.push(entry);
        }
        Ok(out)
    }
}
