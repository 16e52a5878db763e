//! The fields every file-like source config has (`path`/`streams`, format, CSV dialect,
//! workbooks, archives, decryption keys, `after_read` …), declared once with their docs.
//!
//! serde cannot combine `flatten` with `deny_unknown_fields` (nor keep the positions of
//! errors and the "did you mean" hints through it), so the fields are not a struct of
//! their own in a config: [`source_config!`](crate::source_config) writes them into each
//! connector's config struct, beside the connector's own fields, and generates the
//! conversion into [`SourceOptions`](crate::SourceOptions) and the reading of the keys.

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Result, Secret};
use ferry_formats::age::Identities;
use ferry_formats::pgp::Decryptor;

use crate::encrypt::{identities, pgp_decryptor};
use crate::source::StoreSource;
use crate::store::{Store, Stream};

/// What the macro's expansion names, reachable from any connector crate.
#[doc(hidden)]
pub mod reexport {
    pub use ferry_core::{Result, Secret};
    pub use ferry_formats::codec::{
        Compression, CsvOptions, Format, ParquetCompression, ParquetOptions, TextEncoding,
    };
    pub use std::collections::BTreeMap;
}

/// The keys a source decrypts its files with: age (`identity`, `passphrase`) and
/// OpenPGP (`pgp_secret_key`, `pgp_passphrase`, `pgp_verify_key`), read and checked
/// before anything is listed.
pub struct SourceKeys {
    identities: Option<Arc<Identities>>,
    pgp: Option<Arc<Decryptor>>,
}

impl SourceKeys {
    /// Reads the keys as configured; a key file of `pgp_verify_key` is relative to
    /// `base_dir`.
    pub fn read(
        identity: Option<&Secret>,
        passphrase: Option<&Secret>,
        pgp_secret_key: Option<&Secret>,
        pgp_passphrase: Option<&Secret>,
        pgp_verify_key: Option<&str>,
        base_dir: &Path,
    ) -> Result<SourceKeys> {
        Ok(SourceKeys {
            identities: identities(identity, passphrase)?,
            pgp: pgp_decryptor(pgp_secret_key, pgp_passphrase, pgp_verify_key, base_dir)?,
        })
    }

    /// The source over `store`'s `streams`, decrypting with these keys.
    pub fn source<S: Store>(self, store: S, streams: Vec<Stream<S::Place>>) -> StoreSource<S> {
        StoreSource::new(store, streams, self.identities).with_pgp(self.pgp)
    }
}

/// Declares a file-like source config: the connector's own fields first, then every
/// shared field with its docs; `noun` (`"file"`, `"object"`) is what the docs call the
/// things a pattern matches. The other headers are the docs that differ by store:
/// `path`'s whole doc, and the sentences ending the docs of `file_column` (how a row's
/// file is named), `after_read` (what moving or deleting means there) and `archive_to`.
///
/// Generates `options()` (the fields as [`SourceOptions`](crate::SourceOptions)) and
/// `keys(base_dir)` (the decryption keys, [`SourceKeys`]). The connector crate needs
/// `serde` and `schemars` as dependencies.
#[macro_export]
macro_rules! source_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            noun: $noun:literal,
            path: $path:literal,
            file_column: $file_column:literal,
            after_read: $after_read:literal,
            archive_to: $archive_to:literal,
            $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)*
        }
    ) => {
        ::ferry_core::config_struct! {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $fty,)*
            #[doc = $path]
            #[serde(default)]
            pub path: Option<String>,
            /// Name of the stream `path` makes (default: the pattern's last name without its
            /// extensions and wildcards, e.g. `orders` for `in/orders_*.csv.gz`).
            #[serde(default)]
            pub stream: Option<String>,
            /// Several streams: `[{ name = "orders", path = "in/orders_*.csv" }, …]`; each may
            /// also set `format`, `compression`, `columns`, `primary_key` and `sheet`
            /// (default: none; set this or `path`).
            #[serde(default)]
            pub streams: Vec<$crate::StreamConfig>,
            #[doc = concat!("`csv`, `jsonl`, `parquet` or `excel` (default: from the extension under any `.gz`, `.zst`, `.age` and `.pgp`/`.gpg`/`.asc`: `.csv`/`.tsv` are csv, `.jsonl`/`.ndjson` are jsonl, `.parquet`/`.pq` are parquet, `.xlsx`/`.xlsm`/`.xlsb`/`.xls`/`.ods` are excel; an archive's entries each by their own name).")]
            #[serde(default)]
            pub format: Option<$crate::fields::reexport::Format>,
            #[doc = concat!("`none`, `gzip` or `zstd`: how CSV and JSON Lines ", $noun, "s are compressed (default: from each ", $noun, "'s extension: `.gz`/`.gzip` are gzip, `.zst`/`.zstd` are zstd, others none). Parquet and workbooks compress inside themselves and take none.")]
            #[serde(default)]
            pub compression: Option<$crate::fields::reexport::Compression>,
            #[doc = concat!("CSV field separator, one ASCII character (default `,`, or a tab for `.tsv` ", $noun, "s; when unset, each ", $noun, "'s first lines decide among `,` `;` tab `|`, keeping the default when unclear).")]
            #[serde(default)]
            pub delimiter: Option<char>,
            /// CSV quote character (default `"`); a quote inside a quoted field is doubled.
            #[serde(default = "ferry_filestore::defaults::quote")]
            pub quote: char,
            #[doc = concat!("Whether the first line of a CSV ", $noun, " names the columns (default true; without a header the columns are `column_1`, `column_2` …).")]
            #[serde(default = "ferry_filestore::defaults::header")]
            pub header: bool,
            /// CSV cell text that means NULL (default `""`: an empty cell is NULL).
            #[serde(default)]
            pub null: String,
            #[doc = concat!("Text encoding of CSV and JSON Lines ", $noun, "s: any WHATWG label, e.g. `\"windows-1252\"` (also `\"latin1\"`, `\"cp1252\"`), `\"iso-8859-15\"`, `\"utf-16\"`, `\"utf-16be\"`, `\"shift_jis\"` (default: UTF-8; a UTF-16 byte-order mark is followed either way). A row with bytes the encoding cannot map is rejected with its ", $noun, " and line.")]
            #[serde(default)]
            pub encoding: Option<$crate::fields::reexport::TextEncoding>,
            /// CSV lines to skip before the header, such as a title or an export date (default 0).
            #[serde(default)]
            pub skip_rows: usize,
            #[doc = concat!("CSV records to ignore at the end of each ", $noun, ", such as a totals line (default 0).")]
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
            pub columns: $crate::fields::reexport::BTreeMap<String, String>,
            /// Columns that identify a row, e.g. `["id"]` (default: none).
            #[serde(default)]
            pub primary_key: Vec<String>,
            #[doc = concat!("Records read from the start of the first ", $noun, " to infer column types (default 1000).")]
            #[serde(default = "ferry_filestore::defaults::sample_rows")]
            pub sample_rows: usize,
            #[doc = concat!("Adds a text column of this name to every stream, holding the ", $noun, " each row was read from, ", $file_column, ", e.g. `\"_ferry_source_file\"` (default: none). It must not name a column the ", $noun, "s have.")]
            #[serde(default)]
            pub file_column: Option<String>,
            /// Workbooks (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`): the sheet to read, by name
            /// (`"Orders"`) or one-based position (`2`), or `"*"` for every sheet, each its own
            /// stream named `<stream>_<sheet>` (`orders_Q1`; characters other than letters, digits
            /// and `-` become `_`) (default: the first sheet). Several sheets of one workbook may
            /// also be several `streams`, each with its own `sheet`.
            #[serde(default)]
            pub sheet: Option<$crate::SheetConfig>,
            /// Workbooks: the one-based row that names the columns; rows above it are not read
            /// (default: the first row of `range`, else the sheet's first row with a value; `0`:
            /// no header, the columns are `column_1`, `column_2` …).
            #[serde(default)]
            pub header_row: Option<u32>,
            /// Workbooks: the block of cells to read, e.g. `"B3:F200"`, or `"B3:F"` down to the
            /// last row (default: every used cell of the sheet).
            #[serde(default)]
            pub range: Option<String>,
            /// Archives (`.zip`, `.tar.gz`, `.tgz`, `.tar`, under any `.age` or `.gpg`): the files
            /// inside to read, a pattern matched against each entry's path in the archive, where
            /// `*` also crosses folders, e.g. `"*.csv"` or `"export/orders_*.csv"` (default: every
            /// entry whose extension names a format; others are skipped). Each is read with the
            /// format its own name says; rows name it as `drop.zip!orders.csv`.
            #[serde(default)]
            pub inner: Option<String>,
            /// Archives: how much one archive may unpack to before it is refused as a likely zip
            /// bomb: `{ entries = 10000, expanded_bytes = 17179869184, ratio = 100 }` (the
            /// defaults; `ratio`: times its compressed size an entry may grow, past its first MiB).
            #[serde(default)]
            pub archive_limits: Option<$crate::ArchiveLimits>,
            #[doc = concat!("The age secret key(s) that decrypt ", $noun, "s ending in `.age`, one `AGE-SECRET-KEY-1…` per line, as a reference: `\"${secret:acme_age_key}\"` (default: none; an `.age` ", $noun, " is then an error). `orders.csv.age` is read as `orders.csv`.")]
            #[serde(default)]
            pub identity: Option<$crate::fields::reexport::Secret>,
            #[doc = concat!("The passphrase of `.age` ", $noun, "s encrypted with one (`age -p`), as a reference (default: none). May be set with `identity`: each is tried.")]
            #[serde(default)]
            pub passphrase: Option<$crate::fields::reexport::Secret>,
            #[doc = concat!("What to do with a ", $noun, " once its rows are committed at the destination and the state that covers it is saved: `leave` it, `archive` it (move it to `archive_to`) or `delete` it (default `leave`). Never before that commit, never in a `--limit` trial or a `--dry-run`. ", $after_read)]
            #[serde(default)]
            pub after_read: $crate::AfterRead,
            #[doc = concat!("With `after_read = \"archive\"`: the folder ", $noun, "s are moved to, relative to the stream's root, the pattern's folder before its first wildcard (default `processed`: `in/orders_*.csv` archives `in/orders_1.csv` as `in/processed/orders_1.csv`). Subfolders below the root are kept; a name already archived gets `-2`, `-3` … before its extensions. Nothing in it is ever read.", $archive_to)]
            #[serde(default)]
            pub archive_to: Option<String>,
            #[doc = concat!("Read only the newest ", $noun, " matching the pattern: the one with the latest date in its name with `name_date`, else the latest modified (default false).")]
            #[serde(default)]
            pub newest_only: bool,
            #[doc = concat!("The date in the ", $noun, "s' names, written as for `date +FORMAT`: `\"%Y%m%d\"` finds 20240131 in `orders_20240131.csv`; `%Y` `%m` `%d` `%H` `%M` `%S` and literal text (default: none). Matching ", $noun, "s are then read in the order of these dates, and one without a date is an error naming it.")]
            #[serde(default)]
            pub name_date: Option<String>,
            #[doc = concat!("Adds a date column of this name, after any `file_column`, holding the date of `name_date` in each row's ", $noun, " name, e.g. `\"file_date\"` (default: none; needs `name_date`).")]
            #[serde(default)]
            pub name_date_column: Option<String>,
            #[doc = concat!("Our OpenPGP secret key, armored (`gpg --export-secret-keys --armor`), that decrypts ", $noun, "s ending in `.pgp`, `.gpg` or `.asc`, as a reference: `\"${secret:our_pgp_key}\"` (default: none; such a ", $noun, " is then an error). `orders.csv.gz.gpg` is decrypted, then gunzipped, then read as CSV. A ", $noun, " is decrypted and authenticated whole (spooled to a temporary file) before its first row is read.")]
            #[serde(default)]
            pub pgp_secret_key: Option<$crate::fields::reexport::Secret>,
            /// The passphrase that unlocks `pgp_secret_key`, as a reference (default: none; needed
            /// when the key is protected).
            #[serde(default)]
            pub pgp_passphrase: Option<$crate::fields::reexport::Secret>,
            #[doc = concat!("The client's OpenPGP public key: when set, every OpenPGP ", $noun, " must carry a valid signature by it (`gpg --sign --encrypt`), or the ", $noun, " fails and none of its rows is read. An armored block inline, or `file:<path>` (or a plain path) of a key file (`gpg --export --armor`), relative to the config file's folder (default: none; signatures are not checked).")]
            #[serde(default)]
            pub pgp_verify_key: Option<String>,
        }
        }

        impl $name {
            /// The shared format fields, for the shared validation.
            pub fn options(&self) -> $crate::SourceOptions {
                $crate::SourceOptions {
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
                    text: $crate::TextOptions {
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

            /// The age and OpenPGP keys files are decrypted with, read and checked; a
            /// `pgp_verify_key` file is relative to `base_dir`.
            pub fn keys(&self, base_dir: &::std::path::Path) -> $crate::fields::reexport::Result<$crate::SourceKeys> {
                $crate::SourceKeys::read(
                    self.identity.as_ref(),
                    self.passphrase.as_ref(),
                    self.pgp_secret_key.as_ref(),
                    self.pgp_passphrase.as_ref(),
                    self.pgp_verify_key.as_deref(),
                    base_dir,
                )
            }
        }
    };
}
