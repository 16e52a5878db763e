//! The `[source]` and `[destination]` sections of `type = "file"`.
//!
//! Validation here is pure (no file is touched): which fields go together, that type
//! names parse, that delimiters are single ASCII characters. Paths are resolved and
//! files opened only by `check`, `discover`, `read` and `open`.

use std::collections::BTreeMap;

use ferry_core::{Error, Result, Secret};
use ferry_filestore::{
    csv_options, defaults, AfterRead, ArchiveLimits, SheetConfig, SourceOptions, StreamSpec,
    TextOptions,
};
use ferry_formats::archive::ArchiveKind;
use ferry_formats::codec::{
    detect, excel_not_written, Compression, CsvOptions, Format, ParquetCompression, ParquetOptions,
    TextEncoding,
};
use schemars::JsonSchema;
use serde::Deserialize;

pub use ferry_filestore::{EncryptConfig, StreamConfig as FileStreamConfig};

/// `[source] type = "file"`: CSV, JSON Lines, Parquet or Excel files in a local folder,
/// each optionally gzip- or zstd-compressed (not Parquet or Excel) and/or age- or
/// OpenPGP-encrypted.
///
/// Give either `path` (one stream) or `streams` (several). Column types are inferred from
/// the first rows of the first matching file (Parquet: from its footer); `columns`
/// overrides any of them. A file's layers are read from its name, outside in:
/// `orders.csv.gz.age` (or `orders.csv.gz.gpg`) is decrypted, then gunzipped, then read as
/// CSV.
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
    /// also set `format`, `columns`, `primary_key` and `sheet` (default: none; set this or
    /// `path`).
    #[serde(default)]
    pub streams: Vec<FileStreamConfig>,
    /// `csv`, `jsonl`, `parquet` or `excel` (default: from the extension under any `.gz`,
    /// `.zst`, `.age` and `.pgp`/`.gpg`/`.asc`: `.csv`/`.tsv` are csv, `.jsonl`/`.ndjson` are
    /// jsonl, `.parquet`/`.pq` are parquet, `.xlsx`/`.xlsm`/`.xlsb`/`.xls`/`.ods` are excel).
    #[serde(default)]
    pub format: Option<Format>,
    /// `none`, `gzip` or `zstd`: how CSV and JSON Lines files are compressed (default: from
    /// each file's extension: `.gz`/`.gzip` are gzip, `.zst`/`.zstd` are zstd, others none).
    /// Parquet compresses inside the file and takes none.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// CSV field separator, one ASCII character (default `,`, or a tab for `.tsv` files;
    /// when unset, each file's first lines decide among `,` `;` tab `|`, keeping the
    /// default when unclear).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// CSV quote character (default `"`); a quote inside a quoted field is doubled.
    #[serde(default = "defaults::quote")]
    pub quote: char,
    /// Whether the first line of a CSV file names the columns (default true; without a
    /// header the columns are `column_1`, `column_2` …).
    #[serde(default = "defaults::header")]
    pub header: bool,
    /// CSV cell text that means NULL (default `""`: an empty cell is NULL).
    #[serde(default)]
    pub null: String,
    /// Text encoding of CSV and JSON Lines files: any WHATWG label, e.g. `"windows-1252"`
    /// (also `"latin1"`, `"cp1252"`), `"iso-8859-15"`, `"utf-16"`, `"utf-16be"`,
    /// `"shift_jis"` (default: UTF-8; a UTF-16 byte-order mark is followed either way). A row
    /// with bytes the encoding cannot map is rejected with its file and line.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
    /// CSV lines to skip before the header, such as a title or an export date (default 0).
    #[serde(default)]
    pub skip_rows: usize,
    /// CSV records to ignore at the end of each file, such as a totals line (default 0).
    #[serde(default)]
    pub skip_footer_rows: usize,
    /// Decimal separator of numeric CSV columns (int64, float64, decimal), e.g. `","` for
    /// `1234,56` (default `.`). Type inference reads numbers the same way.
    #[serde(default)]
    pub decimal_separator: Option<char>,
    /// Thousands separator of numeric CSV columns, e.g. `"."` for `1.234,56`, or `" "`
    /// (which also matches no-break spaces) (default: none).
    #[serde(default)]
    pub thousands_separator: Option<char>,
    /// Column types that win over inference, e.g. `{ id = "int64", amount = "decimal(18,2)" }`
    /// (default: none, every type inferred). Types: bool, int64, float64, decimal(p,s),
    /// string, binary, date, timestamp, json.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns that identify a row, e.g. `["id"]` (default: none).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Records read from the start of the first file to infer column types (default 1000).
    #[serde(default = "defaults::sample_rows")]
    pub sample_rows: usize,
    /// Adds a text column of this name to every stream, holding the file each row was read
    /// from, as listed (relative to the config file's folder), e.g. `"_ferry_source_file"`
    /// (default: none). It must not name a column the files have.
    #[serde(default)]
    pub file_column: Option<String>,
    /// Workbooks (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`): the sheet to read, by name
    /// (`"Orders"`) or one-based position (`2`), or `"*"` for every sheet, each its own
    /// stream named `<stream>_<sheet>` (`orders_Q1`; characters other than letters, digits
    /// and `-` become `_`) (default: the first sheet). Several sheets of one workbook may
    /// also be several `streams`, each with its own `sheet`.
    #[serde(default)]
    pub sheet: Option<SheetConfig>,
    /// Workbooks: the one-based row that names the columns; rows above it are not read
    /// (default: the first row of `range`, else the sheet's first row with a value; `0`:
    /// no header, the columns are `column_1`, `column_2` …).
    #[serde(default)]
    pub header_row: Option<u32>,
    /// Workbooks: the block of cells to read, e.g. `"B3:F200"`, or `"B3:F"` down to the
    /// last row (default: every used cell of the sheet).
    #[serde(default)]
    pub range: Option<String>,
    /// Archives (`.zip`, `.tar.gz`, `.tgz`, `.tar`, under any `.age`): the files inside to
    /// read, a pattern matched against each entry's path in the archive, where `*` also
    /// crosses folders, e.g. `"*.csv"` or `"export/orders_*.csv"` (default: every entry
    /// whose extension names a format; others are skipped). Each is read with the format
    /// its own name says; rows name it as `drop.zip!orders.csv`.
    #[serde(default)]
    pub inner: Option<String>,
    /// Archives: how much one archive may unpack to before it is refused as a likely zip
    /// bomb: `{ entries = 10000, expanded_bytes = 17179869184, ratio = 100 }` (the
    /// defaults; `ratio`: times its compressed size an entry may grow, past its first MiB).
    #[serde(default)]
    pub archive_limits: Option<ArchiveLimits>,
    /// The age secret key(s) that decrypt files ending in `.age`, one `AGE-SECRET-KEY-1…`
    /// per line, as a reference: `"${secret:acme_age_key}"` (default: none; an `.age`
    /// file is then an error). `orders.csv.age` is read as `orders.csv`.
    #[serde(default)]
    pub identity: Option<Secret>,
    /// The passphrase of `.age` files encrypted with one (`age -p`), as a reference
    /// (default: none). May be set with `identity`: each is tried.
    #[serde(default)]
    pub passphrase: Option<Secret>,
    /// What to do with a file once its rows are committed at the destination and the
    /// state that covers it is saved: `leave` it, `archive` it (move it to `archive_to`)
    /// or `delete` it (default `leave`). Never before that commit, never in a `--limit` trial
    /// or a `--dry-run`. A file that cannot be moved or deleted is a warning in the run
    /// summary, naming it; the run still succeeds.
    #[serde(default)]
    pub after_read: AfterRead,
    /// With `after_read = "archive"`: the folder files are moved to, relative to the
    /// stream's root, the pattern's folder before its first wildcard (default
    /// `processed`: `in/orders_*.csv` archives `in/orders_1.csv` as
    /// `in/processed/orders_1.csv`). Subfolders below the root are kept; a name already
    /// archived gets `-2`, `-3` … before its extensions. Files in it are never read.
    #[serde(default)]
    pub archive_to: Option<String>,
    /// Read only the newest file matching the pattern: the one with the latest date in
    /// its name with `name_date`, else the latest modified (default false).
    #[serde(default)]
    pub newest_only: bool,
    /// The date in the files' names, written as for `date +FORMAT`: `"%Y%m%d"` finds
    /// 20240131 in `orders_20240131.csv`; `%Y` `%m` `%d` `%H` `%M` `%S` and literal text
    /// (default: none). Files are then read in the order of these dates, and a matching
    /// file without one is an error naming it.
    #[serde(default)]
    pub name_date: Option<String>,
    /// Adds a date column of this name, after any `file_column`, holding the date of
    /// `name_date` in each row's file name, e.g. `"file_date"` (default: none; needs
    /// `name_date`).
    #[serde(default)]
    pub name_date_column: Option<String>,
    /// Our OpenPGP secret key, armored (`gpg --export-secret-keys --armor`), that decrypts
    /// files ending in `.pgp`, `.gpg` or `.asc`, as a reference: `"${secret:our_pgp_key}"`
    /// (default: none; such a file is then an error). `orders.csv.gz.gpg` is decrypted,
    /// then gunzipped, then read as CSV. A file is decrypted and authenticated whole
    /// (spooled to a temporary file) before its first row is read.
    #[serde(default)]
    pub pgp_secret_key: Option<Secret>,
    /// The passphrase that unlocks `pgp_secret_key`, as a reference (default: none; needed
    /// when the key is protected).
    #[serde(default)]
    pub pgp_passphrase: Option<Secret>,
    /// The client's OpenPGP public key: when set, every OpenPGP file must carry a valid
    /// signature by it (`gpg --sign --encrypt`), or the file fails and none of its rows is
    /// read. An armored block inline, or `file:<path>` (or a plain path) of a key file
    /// (`gpg --export --armor`), relative to the config file's folder (default: none;
    /// signatures are not checked).
    #[serde(default)]
    pub pgp_verify_key: Option<String>,
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
    #[serde(default = "defaults::format")]
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
    #[serde(default = "defaults::row_group_rows")]
    pub row_group_rows: usize,
    /// CSV field separator, one ASCII character (default `,`).
    #[serde(default = "defaults::delimiter")]
    pub delimiter: char,
    /// CSV quote character (default `"`).
    #[serde(default = "defaults::quote")]
    pub quote: char,
    /// Whether CSV files start with a header row (default true). Appending to an
    /// existing file never writes a second header.
    #[serde(default = "defaults::header")]
    pub header: bool,
    /// CSV text written for NULL (default `""`, an empty cell).
    #[serde(default)]
    pub null: String,
    /// Encrypt every file in the standard age format, so only the client can read it
    /// (`age -d -i key.txt orders.csv.age`): `{ recipients = ["age1…", "file:keys/acme.pub"] }`
    /// or `{ passphrase = "${secret:…}" }`; or in OpenPGP (`gpg --decrypt orders.csv.gpg`):
    /// `{ pgp_recipients = ["file:keys/acme.asc"], pgp_sign_key = "${secret:our_pgp_key}" }`
    /// (default: not encrypted). Files are then named `<stream>.<ext>.age` (or `.gpg`),
    /// and only `overwrite` is supported.
    #[serde(default)]
    pub encrypt: Option<EncryptConfig>,
}

impl FileSourceConfig {
    /// The format fields, for the shared validation.
    fn options(&self) -> SourceOptions {
        SourceOptions {
            path: self.path.clone(),
            stream: self.stream.clone(),
            streams: self.streams.clone(),
            format: self.format,
            compression: self.compression,
            delimiter: self.delimiter,
            quote: self.quote,
            header: self.header,
            null: self.null.clone(),
            columns: self.columns.clone(),
            primary_key: self.primary_key.clone(),
            sample_rows: self.sample_rows,
            file_column: self.file_column.clone(),
            after_read: self.after_read,
            archive_to: self.archive_to.clone(),
            newest_only: self.newest_only,
            name_date: self.name_date.clone(),
            name_date_column: self.name_date_column.clone(),
            text: TextOptions {
                encoding: self.encoding,
                skip_rows: self.skip_rows,
                skip_footer_rows: self.skip_footer_rows,
                decimal_separator: self.decimal_separator,
                thousands_separator: self.thousands_separator,
            },
            sheet: self.sheet.clone(),
            header_row: self.header_row,
            range: self.range.clone(),
            inner: self.inner.clone(),
            archive_limits: self.archive_limits,
        }
    }

    /// Checks the fields fit together and resolves defaults, without touching a file:
    /// every stream's format is known from its pattern or the config.
    pub(crate) fn specs(&self) -> Result<Vec<StreamSpec>> {
        let mut specs = self.options().specs("file")?;
        for spec in &mut specs {
            let pattern = &spec.pattern;
            // `orders.csv.gz.age` is a gzipped `orders.csv`, encrypted
            let detected = detect(pattern);
            if is_archive(pattern) {
                continue; // each entry is read by its own name
            }
            let Some(format) = spec.format.or(detected.format) else {
                return Err(Error::config(format!(
                    "cannot tell the format of `{pattern}` from its extension: set `format = \"csv\"`, `\"jsonl\"` or `\"parquet\"`"
                )));
            };
            let compressed = spec.compression.unwrap_or(detected.compression) != Compression::None;
            if format.random_access() && compressed {
                let what = if format == Format::Excel {
                    "a workbook"
                } else {
                    "a Parquet file"
                };
                return Err(Error::config(format!(
                    "stream `{}`: {what} compresses inside itself and cannot be read through gzip or zstd (it needs random access): unpack it first, or remove `compression`",
                    spec.name
                )));
            }
            spec.format = Some(format);
        }
        Ok(specs)
    }
}

/// Whether a pattern names archives (`.zip`, `.tar.gz` …, under any `.age`, `.pgp`,
/// `.gpg` or `.asc`).
fn is_archive(pattern: &str) -> bool {
    let bare = pattern
        .strip_suffix(".age")
        .or_else(|| ferry_formats::pgp::strip_extension(pattern))
        .unwrap_or(pattern);
    ArchiveKind::of(bare).is_some()
}

impl FileSinkConfig {
    /// The Parquet options this config asks for.
    pub(crate) fn parquet(&self) -> Result<ParquetOptions> {
        if self.format == Format::Excel {
            return Err(excel_not_written());
        }
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
        csv_options(self.delimiter, self.quote, self.header, &self.null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::FerryType;

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
        assert_eq!(s[0].format, Some(Format::Csv));
        assert_eq!(s[0].csv.delimiter, b'\t');
        assert_eq!(s[0].columns, vec![("id".to_string(), FerryType::Int64)]);
        let s = parse("streams = [{ name = \"a\", path = \"a.csv\" }, { name = \"b\", path = \"b.data\", format = \"jsonl\", primary_key = [] }]\nprimary_key = [\"id\"]").specs().unwrap();
        assert_eq!((s[0].primary_key.len(), s[1].primary_key.len()), (1, 0));
        assert_eq!(s[1].format, Some(Format::Jsonl));
        let s = parse("path = \"in/x.tsv.gz\"").specs().unwrap();
        assert_eq!(
            (
                s[0].name.as_str(),
                s[0].format,
                s[0].csv.delimiter,
                s[0].compression
            ),
            ("x", Some(Format::Csv), b'\t', None)
        );
        let s = parse("path = \"in/*.parquet\"\nstream = \"p\"")
            .specs()
            .unwrap();
        assert_eq!(s[0].format, Some(Format::Parquet));
        let s = parse("path = \"in/x.data\"\nformat = \"jsonl\"\ncompression = \"zstd\"")
            .specs()
            .unwrap();
        assert_eq!(
            (s[0].format, s[0].compression),
            (Some(Format::Jsonl), Some(Compression::Zstd))
        );
        let s = parse("path = \"in/orders_*.tsv.age\"").specs().unwrap();
        assert_eq!(
            (s[0].name.as_str(), s[0].format, s[0].csv.delimiter),
            ("orders", Some(Format::Csv), b'\t')
        );
        // an archive under encryption: each entry is read by its own name
        for path in ["in/drop_*.zip.gpg", "in/drop.tar.gz.age"] {
            let s = parse(&format!("path = \"{path}\"\nstream = \"d\""))
                .specs()
                .unwrap();
            assert_eq!(s[0].format, None, "{path}");
        }
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
