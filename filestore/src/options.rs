//! The format options of a file-like source: which streams, how their files are parsed.
//!
//! Each connector's config declares these fields through
//! [`source_config!`](crate::source_config), which also converts them into
//! [`SourceOptions`]: serde's `flatten` would lose what `deny_unknown_fields` gives users
//! (the "did you mean" suggestion and the position of a wrong field).
//! Validation here is pure: no file is touched.

use std::collections::BTreeMap;

use ferry_core::{Error, FerryType, Result};
use ferry_formats::codec::{
    parse_type_overrides, CellRange, Compression, CsvOptions, ExcelOptions, Format, NumberFormat,
    Sheet, TextEncoding,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::archive_options::{ArchiveLimits, ArchiveSpec};
use crate::name_date::NameDate;
use crate::naming::{is_tsv, stream_name};

/// What to do with a file once its rows and the state that covers them are committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AfterRead {
    /// Leave it where it is (the incremental mark keeps it from being read twice).
    #[default]
    Leave,
    /// Move it to the `archive_to` folder.
    Archive,
    /// Delete it.
    Delete,
}

/// One entry of a source's `streams` list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Stream name (required).
    pub name: String,
    /// A pattern, as the source's `path` (required).
    pub path: String,
    /// `csv`, `jsonl` or `parquet` (default: the source's `format`, else from the extension).
    #[serde(default)]
    pub format: Option<Format>,
    /// `none`, `gzip` or `zstd` (default: the source's `compression`, else from each
    /// name's extension).
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Column types for this stream (default: the source's `columns`).
    #[serde(default)]
    pub columns: Option<BTreeMap<String, String>>,
    /// Primary key of this stream (default: the source's `primary_key`).
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// The workbook sheet of this stream, by name or one-based position (default: the
    /// source's `sheet`).
    #[serde(default)]
    pub sheet: Option<SheetConfig>,
}

/// A sheet of a workbook as configured: `sheet = "Orders"` or `sheet = 2`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SheetConfig {
    /// The one-based position of the sheet.
    Index(usize),
    /// The sheet's name.
    Name(String),
}

impl SheetConfig {
    fn sheet(&self) -> Result<Sheet> {
        match self {
            SheetConfig::Index(0) => Err(Error::config(
                "`sheet = 0`: sheets are counted from 1 (`sheet = 1` is the first)",
            )),
            SheetConfig::Index(i) => Ok(Sheet::Index(*i)),
            SheetConfig::Name(n) if n.trim().is_empty() => Err(Error::config(
                "`sheet` is empty: name a sheet, or give its position",
            )),
            SheetConfig::Name(n) => Ok(Sheet::Name(n.clone())),
        }
    }
}

/// The fields every file-like source config has, as the user wrote them.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// One stream's pattern.
    pub path: Option<String>,
    /// Name of the `path` stream.
    pub stream: Option<String>,
    /// Several streams.
    pub streams: Vec<StreamConfig>,
    /// Format of every stream (else from each name).
    pub format: Option<Format>,
    /// Compression of every stream (else from each name).
    pub compression: Option<Compression>,
    /// CSV field separator (else `,`, or a tab for `.tsv`).
    pub delimiter: Option<char>,
    /// CSV quote character.
    pub quote: char,
    /// Whether CSV files start with a header.
    pub header: bool,
    /// CSV text that means NULL.
    pub null: String,
    /// Column types that win over inference.
    pub columns: BTreeMap<String, String>,
    /// Columns that identify a row.
    pub primary_key: Vec<String>,
    /// Records read to infer column types.
    pub sample_rows: usize,
    /// The column naming each row's file.
    pub file_column: Option<String>,
    /// What to do with a file once its rows and state are committed.
    pub after_read: AfterRead,
    /// The archive folder, relative to each stream's root (`after_read = "archive"`).
    pub archive_to: Option<String>,
    /// Read only the newest file of each stream's pattern.
    pub newest_only: bool,
    /// The date in the files' names (`"%Y%m%d"`), which orders them.
    pub name_date: Option<String>,
    /// The date column holding each row's `name_date`.
    pub name_date_column: Option<String>,
    /// Encoding and CSV dialect.
    pub text: TextOptions,
    /// Workbooks: the sheet to read (else the first).
    pub sheet: Option<SheetConfig>,
    /// Workbooks: the one-based row naming the columns (0: none).
    pub header_row: Option<u32>,
    /// Workbooks: the cells to read, `B3:F200`.
    pub range: Option<String>,
    /// Archives: the entries to read, `*.csv` (else every entry of a known format).
    pub inner: Option<String>,
    /// Archives: how much one may unpack to.
    pub archive_limits: Option<ArchiveLimits>,
}

/// How text files are written, beyond delimiter and quote: the encoding, lines around the
/// data, and how numbers are written. Everything defaults to plain UTF-8 CSV.
#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// Text encoding of CSV and JSON Lines files (else UTF-8, or UTF-16 by its mark).
    pub encoding: Option<TextEncoding>,
    /// CSV lines before the header to skip.
    pub skip_rows: usize,
    /// CSV records at the end of each file to ignore.
    pub skip_footer_rows: usize,
    /// Decimal separator of numeric CSV columns (else `.`).
    pub decimal_separator: Option<char>,
    /// Thousands separator of numeric CSV columns (else none).
    pub thousands_separator: Option<char>,
}

/// One stream of a source, validated (its pattern not yet resolved by the store).
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Stream name.
    pub name: String,
    /// The pattern as configured (for messages).
    pub pattern: String,
    /// Set in config; `None`: from each name.
    pub format: Option<Format>,
    /// Set in config; `None`: from each name.
    pub compression: Option<Compression>,
    /// How CSV files are laid out.
    pub csv: CsvOptions,
    /// Column types that win over inference.
    pub columns: Vec<(String, FerryType)>,
    /// Columns that identify a row.
    pub primary_key: Vec<String>,
    /// Records read to infer column types.
    pub sample_rows: usize,
    /// The column that names each row's file, if any.
    pub file_column: Option<String>,
    /// What to do with a file once its rows and state are committed.
    pub after_read: AfterRead,
    /// The archive folder below the stream's root, without slashes at its ends
    /// (`after_read = "archive"`; default `processed`).
    pub archive_to: String,
    /// Read only the newest file (by the date in its name with `name_date`, else by its
    /// modification time).
    pub newest_only: bool,
    /// The date in the files' names, which orders them.
    pub name_date: Option<NameDate>,
    /// The date column added last (after the file column), holding each row's
    /// `name_date`.
    pub name_date_column: Option<String>,
    /// How workbooks are read.
    pub excel: ExcelOptions,
    /// `sheet = "*"`: a stream per sheet, `<name>_<sheet>` (`excel.sheet` is then unused).
    pub every_sheet: bool,
    /// How archives are read.
    pub archive: ArchiveSpec,
}

impl SourceOptions {
    /// Checks the fields fit together and resolves defaults; `noun` names what the
    /// patterns match in messages (`file`, `object`).
    pub fn specs(&self, noun: &str) -> Result<Vec<StreamSpec>> {
        if self.sample_rows == 0 {
            return Err(Error::config("`sample_rows` must be at least 1"));
        }
        let quote = ascii(self.quote, "quote")?;
        let archive_to = archive_to(self.after_read, self.archive_to.as_deref())?;
        let name_date = self.name_date.as_deref().map(NameDate::parse).transpose()?;
        if let (Some(column), None) = (&self.name_date_column, &name_date) {
            return Err(Error::config(format!(
                "`name_date_column = \"{column}\"` holds the date in each file's name: set `name_date` too (e.g. `name_date = \"%Y%m%d\"`)"
            )));
        }
        let delimiter = self.delimiter.map(|d| ascii(d, "delimiter")).transpose()?;
        let single;
        let entries: &[StreamConfig] = match (&self.path, self.streams.is_empty()) {
            (Some(_), false) => {
                return Err(Error::config(
                    "set either `path` (one stream) or `streams` (several), not both",
                ))
            }
            (None, true) => {
                return Err(Error::config(format!(
                    "no {noun}s named: set `path = \"data/*.csv\"` or `streams = [{{ name = \"…\", path = \"…\" }}]`"
                )))
            }
            (Some(path), true) => {
                let name = match &self.stream {
                    Some(s) => s.clone(),
                    None => stream_name(path).ok_or_else(|| {
                        Error::config(format!(
                            "cannot name the stream after `{path}`: set `stream = \"name\"`"
                        ))
                    })?,
                };
                single = [StreamConfig {
                    name,
                    path: path.clone(),
                    format: None,
                    compression: None,
                    columns: None,
                    primary_key: None,
                    sheet: None,
                }];
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
        let range = self.range.as_deref().map(CellRange::parse).transpose()?;
        if let (Some(r), Some(h)) = (range, self.header_row) {
            if h != 0 && (h - 1 < r.first_row || r.last_row.is_some_and(|l| h - 1 > l)) {
                return Err(Error::config(format!(
                    "`header_row = {h}` is outside `range = \"{}\"`: the header must be one of its rows (or 0 for none)",
                    self.range.as_deref().unwrap_or_default()
                )));
            }
        }
        let inner = self
            .inner
            .as_deref()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| {
                    Error::config(format!(
                        "`inner = \"{p}\"` is not a valid pattern: {}",
                        e.msg
                    ))
                })
            })
            .transpose()?;
        let archive = ArchiveSpec {
            inner,
            limits: self.archive_limits.map(Into::into).unwrap_or_default(),
        };
        let mut specs: Vec<StreamSpec> = Vec::new();
        for entry in entries {
            let name = entry.name.clone();
            if name.trim().is_empty() {
                return Err(Error::config("a stream name is empty"));
            }
            if specs.iter().any(|s| s.name == name) {
                return Err(Error::config(format!(
                    "stream `{name}` is named twice in `streams`"
                )));
            }
            if entry.path.trim_start_matches('/').trim().is_empty() {
                return Err(Error::config(format!("stream `{name}`: `path` is empty")));
            }
            let tsv = is_tsv(&entry.path);
            let csv = CsvOptions {
                delimiter: delimiter.unwrap_or(if tsv { b'\t' } else { b',' }),
                quote,
                has_header: self.header,
                null_text: self.null.clone(),
                // a `.tsv` name says the delimiter as clearly as config does
                sniff_delimiter: delimiter.is_none() && !tsv,
                skip_rows: self.text.skip_rows,
                skip_footer_rows: self.text.skip_footer_rows,
                numbers: NumberFormat {
                    decimal: self.text.decimal_separator.unwrap_or('.'),
                    thousands: self.text.thousands_separator,
                },
                encoding: self.text.encoding.map(|e| e.0),
            };
            csv.validate()?;
            let columns = entry.columns.as_ref().unwrap_or(&self.columns);
            let columns =
                parse_type_overrides(columns.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map_err(|e| Error::config(format!("stream `{name}`: {}", e.message())))?;
            let sheet = entry.sheet.as_ref().or(self.sheet.as_ref());
            let every_sheet = sheet == Some(&SheetConfig::Name("*".into()));
            let sheet = sheet
                .filter(|_| !every_sheet)
                .map(SheetConfig::sheet)
                .transpose()
                .map_err(|e| Error::config(format!("stream `{name}`: {}", e.message())))?
                .unwrap_or_default();
            specs.push(StreamSpec {
                name,
                pattern: entry.path.clone(),
                format: entry.format.or(self.format),
                compression: entry.compression.or(self.compression),
                csv,
                columns,
                primary_key: entry
                    .primary_key
                    .clone()
                    .unwrap_or_else(|| self.primary_key.clone()),
                sample_rows: self.sample_rows,
                file_column: self.file_column.clone(),
                after_read: self.after_read,
                archive_to: archive_to.clone(),
                newest_only: self.newest_only,
                name_date: name_date.clone(),
                name_date_column: self.name_date_column.clone(),
                excel: ExcelOptions {
                    sheet,
                    header_row: self.header_row,
                    range,
                },
                archive: archive.clone(),
                every_sheet,
            });
        }
        Ok(specs)
    }
}

/// The archive folder `archive_to` names: a plain relative folder (default `processed`),
/// and only with `after_read = "archive"`.
fn archive_to(after_read: AfterRead, archive_to: Option<&str>) -> Result<String> {
    let Some(text) = archive_to else {
        return Ok(DEFAULT_ARCHIVE.to_string());
    };
    if after_read != AfterRead::Archive {
        return Err(Error::config(format!(
            "`archive_to = \"{text}\"` is for `after_read = \"archive\"`: set that too, or remove `archive_to`"
        )));
    }
    let folder = text.trim_end_matches('/');
    let bad = folder.is_empty()
        || folder.starts_with('/')
        || folder.contains(['*', '?', '[', '\\'])
        || folder
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(Error::config(format!(
            "`archive_to = \"{text}\"` must be a folder below the stream's root (the pattern's folder before its first wildcard), such as `\"{DEFAULT_ARCHIVE}\"` or `\"done/2024\"`: no leading `/`, `..`, `.` or wildcards"
        )));
    }
    Ok(folder.to_string())
}

/// The archive folder when `archive_to` is not set.
pub const DEFAULT_ARCHIVE: &str = "processed";

/// One ASCII byte from a config character.
pub fn ascii(c: char, field: &str) -> Result<u8> {
    if c.is_ascii() && c != '\n' && c != '\r' {
        Ok(c as u8)
    } else {
        Err(Error::config(format!(
            "`{field}` must be one ASCII character other than a line break, not {c:?}"
        )))
    }
}

/// The CSV layout a destination's `delimiter`, `quote`, `header` and `null` ask for.
pub fn csv_options(delimiter: char, quote: char, header: bool, null: &str) -> Result<CsvOptions> {
    let csv = CsvOptions {
        delimiter: ascii(delimiter, "delimiter")?,
        quote: ascii(quote, "quote")?,
        has_header: header,
        null_text: null.to_string(),
        ..CsvOptions::default()
    };
    csv.validate()?;
    Ok(csv)
}

/// Defaults of the format fields, for `#[serde(default = "…")]` in the connectors' configs.
pub mod defaults {
    use ferry_formats::codec::{Format, DEFAULT_ROW_GROUP_ROWS, DEFAULT_SAMPLE_ROWS};

    /// `"`.
    pub fn quote() -> char {
        '"'
    }
    /// `,`.
    pub fn delimiter() -> char {
        ','
    }
    /// true.
    pub fn header() -> bool {
        true
    }
    /// 1000 records.
    pub fn sample_rows() -> usize {
        DEFAULT_SAMPLE_ROWS
    }
    /// CSV.
    pub fn format() -> Format {
        Format::Csv
    }
    /// 131072 rows.
    pub fn row_group_rows() -> usize {
        DEFAULT_ROW_GROUP_ROWS
    }
}
