//! The `[source]` and `[destination]` sections of `type = "file"`.
//!
//! Validation here is pure (no file is touched): which fields go together, that type
//! names parse, that delimiters are single ASCII characters. Paths are resolved and
//! files opened only by `check`, `discover`, `read` and `open`.

use std::collections::BTreeMap;

use ferry_core::{Error, FerryType, Result, Secret};
use ferry_formats::codec::{
    detect, parse_type_overrides, Compression, CsvOptions, Format, ParquetCompression,
    ParquetOptions, DEFAULT_ROW_GROUP_ROWS, DEFAULT_SAMPLE_ROWS,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// `[source] type = "file"`: CSV, JSON Lines or Parquet files in a local folder, each
/// optionally gzip- or zstd-compressed and/or age-encrypted.
///
/// Give either `path` (one stream) or `streams` (several). Column types are inferred from
/// the first rows of the first matching file (Parquet: from its footer); `columns`
/// overrides any of them. A file's layers are read from its name, outside in:
/// `orders.csv.gz.age` is decrypted, then gunzipped, then read as CSV.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A file or glob pattern (`customers.csv`, `in/orders_*.csv`, `in/**/*.jsonl`),
    /// relative to the config file's folder; all matching files form one stream.
    /// Set this or `streams` (no default).
    #[serde(default)]
    pub path: Option<String>,
    /// Name of the stream `path` makes (default: the pattern's file name without its
    /// extension and wildcards, e.g. `orders` for `in/orders_*.csv`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Several streams: `[{ name = "customers", path = "in/customers*.csv" }, …]`; each may
    /// also set `format`, `columns` and `primary_key` (default: none; set this or `path`).
    #[serde(default)]
    pub streams: Vec<FileStreamConfig>,
    /// `csv`, `jsonl` or `parquet` (default: from the extension under any `.gz`, `.zst`
    /// and `.age`: `.csv`/`.tsv` are csv, `.jsonl`/`.ndjson` are jsonl, `.parquet`/`.pq`
    /// are parquet).
    #[serde(default)]
    pub format: Option<Format>,
    /// `none`, `gzip` or `zstd`: how CSV and JSON Lines files are compressed (default: from
    /// each file's extension: `.gz`/`.gzip` are gzip, `.zst`/`.zstd` are zstd, others none).
    /// Parquet compresses inside the file and takes none.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// CSV field separator, one ASCII character (default `,`, or a tab for `.tsv` files).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// CSV quote character (default `"`); a quote inside a quoted field is doubled.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Whether the first line of a CSV file names the columns (default true; without a
    /// header the columns are `column_1`, `column_2` …).
    #[serde(default = "default_true")]
    pub header: bool,
    /// CSV cell text that means NULL (default `""`: an empty cell is NULL).
    #[serde(default)]
    pub null: String,
    /// Column types that win over inference, e.g. `{ id = "int64", amount = "decimal(18,2)" }`
    /// (default: none, every type inferred). Types: bool, int64, float64, decimal(p,s),
    /// string, binary, date, timestamp, json.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns that identify a row, e.g. `["id"]` (default: none).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Records read from the start of the first file to infer column types (default 1000).
    #[serde(default = "default_sample_rows")]
    pub sample_rows: usize,
    /// Adds a text column of this name to every stream, holding the file each row was read
    /// from, as listed (relative to the config file's folder), e.g. `"_ferry_source_file"`
    /// (default: none). It must not name a column the files have.
    #[serde(default)]
    pub file_column: Option<String>,
    /// The age secret key(s) that decrypt files ending in `.age`, one `AGE-SECRET-KEY-1…`
    /// per line, as a reference: `"${secret:acme_age_key}"` (default: none; an `.age`
    /// file is then an error). `orders.csv.age` is read as `orders.csv`.
    #[serde(default)]
    pub identity: Option<Secret>,
    /// The passphrase of `.age` files encrypted with one (`age -p`), as a reference
    /// (default: none). May be set with `identity`: each is tried.
    #[serde(default)]
    pub passphrase: Option<Secret>,
}

/// One entry of the source's `streams` list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStreamConfig {
    /// Stream name (required).
    pub name: String,
    /// A file or glob pattern, relative to the config file's folder (required).
    pub path: String,
    /// `csv`, `jsonl` or `parquet` (default: the source's `format`, else from the extension).
    #[serde(default)]
    pub format: Option<Format>,
    /// `none`, `gzip` or `zstd` (default: the source's `compression`, else from each
    /// file's extension).
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Column types for this stream (default: the source's `columns`).
    #[serde(default)]
    pub columns: Option<BTreeMap<String, String>>,
    /// Primary key of this stream (default: the source's `primary_key`).
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
}

/// `[destination] type = "file"`: one CSV, JSON Lines or Parquet file per stream in a
/// folder, optionally compressed and/or age-encrypted.
///
/// The file name says how to read it back: `orders.csv`, `orders.csv.gz`,
/// `orders.jsonl.zst`, `orders.parquet`, and `.age` after any of them when encrypted.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Output folder, relative to the config file's folder; created when missing
    /// (required). Stream `s` is written to `<path>/s.csv`, `<path>/s.jsonl` or
    /// `<path>/s.parquet` (plus `.gz` / `.zst` and `.age` as configured).
    pub path: String,
    /// `csv`, `jsonl` or `parquet` (default `csv`).
    #[serde(default = "default_format")]
    pub format: Format,
    /// `none`, `gzip` or `zstd`: compress the whole CSV or JSON Lines file, which is then
    /// named `<stream>.csv.gz` / `<stream>.jsonl.zst` (default `none`). Compressed files
    /// are only written with `overwrite`. Parquet compresses inside the file: see
    /// `parquet_compression`.
    #[serde(default)]
    pub compression: Compression,
    /// Parquet column compression: `zstd`, `snappy`, `gzip`, `lz4` or `none` (default
    /// `zstd`).
    #[serde(default)]
    pub parquet_compression: ParquetCompression,
    /// Rows per Parquet row group (default 131072): the writer holds one row group in
    /// memory, encoded and compressed, and readers can skip or parallelise by row group.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// CSV field separator, one ASCII character (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// CSV quote character (default `"`).
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Whether CSV files start with a header row (default true). Appending to an
    /// existing file never writes a second header.
    #[serde(default = "default_true")]
    pub header: bool,
    /// CSV text written for NULL (default `""`, an empty cell).
    #[serde(default)]
    pub null: String,
    /// Encrypt every file in the standard age format, so only the client can read it
    /// (`age -d -i key.txt orders.csv.age`): `{ recipients = ["age1…", "file:keys/acme.pub"] }`
    /// or `{ passphrase = "${secret:…}" }` (default: not encrypted). Files are then named
    /// `<stream>.<ext>.age`, and only `overwrite` is supported.
    #[serde(default)]
    pub encrypt: Option<EncryptConfig>,
}

/// The destination's `encrypt` table: who can decrypt the files (age v1).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptConfig {
    /// The client's age public keys: `age1…` inline, or `file:<path>` (or a plain path)
    /// of a recipients file with one key per line and `#` comments, relative to the config
    /// file's folder. Each key can decrypt on its own (default: none; set this or
    /// `passphrase`).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A passphrase instead of public keys, as a reference (`"${secret:…}"`); the age
    /// format allows it only alone, so not with `recipients` (default: none).
    #[serde(default)]
    pub passphrase: Option<Secret>,
}

fn default_quote() -> char {
    '"'
}
fn default_delimiter() -> char {
    ','
}
fn default_true() -> bool {
    true
}
fn default_sample_rows() -> usize {
    DEFAULT_SAMPLE_ROWS
}
fn default_format() -> Format {
    Format::Csv
}
fn default_row_group_rows() -> usize {
    DEFAULT_ROW_GROUP_ROWS
}

/// One ASCII byte from a config character.
pub(crate) fn ascii(c: char, field: &str) -> Result<u8> {
    if c.is_ascii() && c != '\n' && c != '\r' {
        Ok(c as u8)
    } else {
        Err(Error::config(format!(
            "`{field}` must be one ASCII character other than a line break, not {c:?}"
        )))
    }
}

/// One stream of the source, validated (paths not yet resolved).
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    pub name: String,
    pub pattern: String,
    pub format: Format,
    /// Set in config; `None`: from each file's name.
    pub compression: Option<Compression>,
    pub csv: CsvOptions,
    pub columns: Vec<(String, FerryType)>,
    pub primary_key: Vec<String>,
    pub sample_rows: usize,
    /// The column that names each row's file, if any.
    pub file_column: Option<String>,
}

impl FileSourceConfig {
    /// Checks the fields fit together and resolves defaults, without touching a file.
    pub(crate) fn specs(&self) -> Result<Vec<StreamSpec>> {
        if self.sample_rows == 0 {
            return Err(Error::config("`sample_rows` must be at least 1"));
        }
        let quote = ascii(self.quote, "quote")?;
        let delimiter = self.delimiter.map(|d| ascii(d, "delimiter")).transpose()?;
        let single;
        let entries: &[FileStreamConfig] = match (&self.path, self.streams.is_empty()) {
            (Some(_), false) => {
                return Err(Error::config("set either `path` (one stream) or `streams` (several), not both"))
            }
            (None, true) => {
                return Err(Error::config(
                    "no files named: set `path = \"data/*.csv\"` or `streams = [{ name = \"…\", path = \"…\" }]`",
                ))
            }
            (Some(path), true) => {
                let name = match &self.stream {
                    Some(s) => s.clone(),
                    None => stream_name(without_layers(path)).ok_or_else(|| {
                        Error::config(format!("cannot name the stream after `{path}`: set `stream = \"name\"`"))
                    })?,
                };
                single = [FileStreamConfig { name, path: path.clone(), format: None, compression: None, columns: None, primary_key: None }];
                &single
            }
            (None, false) => {
                if self.stream.is_some() {
                    return Err(Error::config(
                        "`stream` names the stream of `path`; with `streams`, name each entry instead",
                    ));
                }
                &self.streams
            }
        };
        let mut specs: Vec<StreamSpec> = Vec::new();
        for entry in entries {
            let (name, pattern) = (entry.name.clone(), entry.path.as_str());
            let format = entry.format.or(self.format);
            let columns = entry.columns.as_ref().unwrap_or(&self.columns);
            let primary_key = entry.primary_key.as_ref().unwrap_or(&self.primary_key);
            if name.trim().is_empty() {
                return Err(Error::config("a stream name is empty"));
            }
            if specs.iter().any(|s| s.name == name) {
                return Err(Error::config(format!(
                    "stream `{name}` is named twice in `streams`"
                )));
            }
            if pattern.trim().is_empty() {
                return Err(Error::config(format!("stream `{name}`: `path` is empty")));
            }
            // `orders.csv.gz.age` is a gzipped `orders.csv`, encrypted
            let detected = detect(pattern);
            let format = match format.or(detected.format) {
                Some(f) => f,
                None => {
                    return Err(Error::config(format!(
                        "cannot tell the format of `{pattern}` from its extension: set `format = \"csv\"`, `\"jsonl\"` or `\"parquet\"`"
                    )))
                }
            };
            let compression = entry.compression.or(self.compression);
            let compressed = compression.unwrap_or(detected.compression) != Compression::None;
            if format == Format::Parquet && compressed {
                return Err(Error::config(format!(
                    "stream `{name}`: a Parquet file compresses inside itself and cannot be read through gzip or zstd (it needs random access): unpack it first, or remove `compression`"
                )));
            }
            let is_tsv = without_layers(pattern)
                .to_ascii_lowercase()
                .ends_with(".tsv");
            let csv = CsvOptions {
                delimiter: delimiter.unwrap_or(if is_tsv { b'\t' } else { b',' }),
                quote,
                has_header: self.header,
                null_text: self.null.clone(),
            };
            csv.validate()?;
            let columns =
                parse_type_overrides(columns.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map_err(|e| Error::config(format!("stream `{name}`: {}", e.message())))?;
            specs.push(StreamSpec {
                name,
                pattern: pattern.to_string(),
                format,
                compression,
                csv,
                columns,
                primary_key: primary_key.clone(),
                sample_rows: self.sample_rows,
                file_column: self.file_column.clone(),
            });
        }
        Ok(specs)
    }
}

impl FileSinkConfig {
    /// The Parquet options this config asks for.
    pub(crate) fn parquet(&self) -> Result<ParquetOptions> {
        if self.row_group_rows == 0 {
            return Err(Error::config("`row_group_rows` must be at least 1"));
        }
        if self.format == Format::Parquet && self.compression != Compression::None {
            return Err(Error::config(format!(
                "`compression = \"{}\"` is for CSV and JSON Lines: Parquet compresses inside the file; set `parquet_compression = \"{}\"` instead",
                self.compression,
                self.compression
            )));
        }
        Ok(ParquetOptions {
            compression: self.parquet_compression,
            row_group_rows: self.row_group_rows,
        })
    }

    /// The CSV layout this config asks for.
    pub(crate) fn csv(&self) -> Result<CsvOptions> {
        let csv = CsvOptions {
            delimiter: ascii(self.delimiter, "delimiter")?,
            quote: ascii(self.quote, "quote")?,
            has_header: self.header,
            null_text: self.null.clone(),
        };
        csv.validate()?;
        Ok(csv)
    }
}

/// `pattern` without a final `.age` (in any case), so `orders_*.csv.age` is seen as
/// `orders_*.csv` for its format and stream name.
pub(crate) fn without_age(pattern: &str) -> &str {
    let n = pattern.len();
    if n > 4 && pattern.is_char_boundary(n - 4) && pattern[n - 4..].eq_ignore_ascii_case(".age") {
        &pattern[..n - 4]
    } else {
        pattern
    }
}

/// `pattern` without a final `.age` and then a final compression extension (`.gz`,
/// `.gzip`, `.zst`, `.zstd`), so `orders_*.csv.gz.age` is seen as `orders_*.csv`.
pub(crate) fn without_layers(pattern: &str) -> &str {
    let rest = without_age(pattern);
    if Compression::from_path(rest) == Compression::None {
        return rest;
    }
    rest.rsplit_once('.').map_or(rest, |(a, _)| a)
}

/// The stream name a pattern implies: its file name without extension, wildcards and
/// character classes, trimmed of `_-. `; else the folder's name likewise. `None` if both
/// are empty.
pub(crate) fn stream_name(pattern: &str) -> Option<String> {
    let clean = |s: &str| {
        let mut out = String::new();
        let mut in_class = false;
        for c in s.chars() {
            match c {
                '[' => in_class = true,
                ']' if in_class => in_class = false,
                _ if in_class => {}
                '*' | '?' => {}
                c => out.push(c),
            }
        }
        out.trim_matches(|c: char| matches!(c, '_' | '-' | '.' | ' '))
            .to_string()
    };
    let pattern = pattern.trim_end_matches('/');
    let (dir, file) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let stem = match file.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains(['*', '?', '[']) && !stem.is_empty() => stem,
        _ => file,
    };
    let name = clean(stem);
    if !name.is_empty() {
        return Some(name);
    }
    let folder = clean(dir.rsplit('/').next().unwrap_or(""));
    (!folder.is_empty()).then_some(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_from_patterns() {
        assert_eq!(stream_name("customers.csv").as_deref(), Some("customers"));
        assert_eq!(
            stream_name("in/customers*.csv").as_deref(),
            Some("customers")
        );
        assert_eq!(
            stream_name("in/orders_[0-9]*.jsonl").as_deref(),
            Some("orders")
        );
        assert_eq!(stream_name("data/*.csv").as_deref(), Some("data"));
        assert_eq!(stream_name("/tmp/x/**/*.csv").as_deref(), None);
        assert_eq!(stream_name("a.b.csv").as_deref(), Some("a.b"));
        assert_eq!(
            stream_name(without_age("in/orders_*.csv.age")).as_deref(),
            Some("orders")
        );
        assert_eq!(without_age("a.AGE"), "a");
        assert_eq!(
            stream_name(without_layers("in/orders_*.csv.gz.age")).as_deref(),
            Some("orders")
        );
        assert_eq!(without_layers("a.parquet"), "a.parquet");
        assert_eq!(without_layers("a.jsonl.ZST"), "a.jsonl");
        assert_eq!(without_age(".age"), ".age");
    }

    fn parse(toml_text: &str) -> FileSourceConfig {
        let node = ferry_core::ConfigNode::from_toml(toml_text, ".").unwrap();
        node.parse().unwrap()
    }

    #[test]
    fn specs_resolve_defaults_and_refuse_nonsense() {
        let s = parse(
            "path = \"in/orders_*.tsv\"\ncolumns = { id = \"int64\" }\nprimary_key = [\"id\"]",
        )
        .specs()
        .unwrap();
        assert_eq!(s[0].name, "orders");
        assert_eq!(s[0].format, Format::Csv);
        assert_eq!(s[0].csv.delimiter, b'\t');
        assert_eq!(s[0].columns, vec![("id".to_string(), FerryType::Int64)]);
        let s = parse("streams = [{ name = \"a\", path = \"a.csv\" }, { name = \"b\", path = \"b.data\", format = \"jsonl\", primary_key = [] }]\nprimary_key = [\"id\"]").specs().unwrap();
        assert_eq!((s[0].primary_key.len(), s[1].primary_key.len()), (1, 0));
        assert_eq!(s[1].format, Format::Jsonl);
        let s = parse("path = \"in/x.tsv.gz\"").specs().unwrap();
        assert_eq!(
            (
                s[0].name.as_str(),
                s[0].format,
                s[0].csv.delimiter,
                s[0].compression
            ),
            ("x", Format::Csv, b'\t', None)
        );
        let s = parse("path = \"in/*.parquet\"\nstream = \"p\"")
            .specs()
            .unwrap();
        assert_eq!(s[0].format, Format::Parquet);
        let s = parse("path = \"in/x.data\"\nformat = \"jsonl\"\ncompression = \"zstd\"")
            .specs()
            .unwrap();
        assert_eq!(
            (s[0].format, s[0].compression),
            (Format::Jsonl, Some(Compression::Zstd))
        );
        let s = parse("path = \"in/orders_*.tsv.age\"").specs().unwrap();
        assert_eq!(
            (s[0].name.as_str(), s[0].format, s[0].csv.delimiter),
            ("orders", Format::Csv, b'\t')
        );
        for (text, needle) in [
            ("", "no files named"),
            ("path = \"a.csv\"\nstreams = [{ name = \"a\", path = \"a.csv\" }]", "not both"),
            ("path = \"data/*\"", "set `format"),
            ("path = \"a.parquet.gz\"", "compresses inside"),
            ("path = \"a.parquet\"\ncompression = \"gzip\"", "compresses inside"),
            ("path = \"a.csv\"\ncolumns = { id = \"varchar\" }", "unknown type `varchar`"),
            ("path = \"a.csv\"\ndelimiter = \"é\"", "ASCII"),
            ("streams = [{ name = \"a\", path = \"a.csv\" }, { name = \"a\", path = \"b.csv\" }]", "named twice"),
        ] {
            let err = parse(text).specs().unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let node = ferry_core::ConfigNode::from_toml("pth = \"a.csv\"", ".").unwrap();
        let err = node.parse::<FileSourceConfig>().unwrap_err();
        assert!(err.to_string().contains("did you mean `path`"), "{err}");
    }
}
