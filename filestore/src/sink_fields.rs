//! The fields every file-like destination config has (`format`, the CSV layout,
//! `encrypt`, and for whole files `compression`, `parquet_compression` and
//! `row_group_rows`), declared once with their docs: the destination's twin of
//! [`source_config!`](crate::source_config), written as a macro for the same reason.

use ferry_core::{Error, Result};
use ferry_formats::codec::{
    excel_not_written, Compression, Format, ParquetCompression, ParquetOptions,
};

/// The Parquet options a whole-file destination's fields ask for, checked: Excel is never
/// written, a row group holds at least one row, and Parquet takes no whole-file
/// `compression` (it compresses inside the file).
pub fn parquet_options(
    format: Format,
    compression: Compression,
    parquet_compression: ParquetCompression,
    row_group_rows: usize,
) -> Result<ParquetOptions> {
    if format == Format::Excel {
        return Err(excel_not_written());
    }
    if row_group_rows == 0 {
        return Err(Error::config("`row_group_rows` must be at least 1"));
    }
    if format == Format::Parquet && compression != Compression::None {
        return Err(Error::config(format!(
            "`compression = \"{compression}\"` is for CSV and JSON Lines: Parquet compresses inside the file; set `parquet_compression = \"{compression}\"` instead"
        )));
    }
    Ok(ParquetOptions {
        compression: parquet_compression,
        row_group_rows,
    })
}

/// Declares a file-like destination config: the connector's own fields first, then the
/// shared ones with their docs. `noun` (`"file"`, `"object"`) is what the docs call what
/// is written; `header` and `encrypt` are sentences ending those fields' docs (`""` for
/// none).
///
/// With a `compression` header (the sentences ending its doc), the config also has
/// `compression` of the whole file, `parquet_compression` and `row_group_rows`, and
/// `parquet()` checks them. Always generates `csv()`, the CSV layout checked. The
/// connector crate needs `serde` and `schemars` as dependencies.
#[macro_export]
macro_rules! sink_config {
    // whole files: the compression fields added, then the general arm
    ($(#[$meta:meta])* pub struct $name:ident { noun: $noun:literal, compression: $compression:literal, $($rest:tt)* }) => {
        $crate::sink_config! {
            $(#[$meta])*
            pub struct $name {
                noun: $noun,
                $($rest)*
                #[doc = concat!("`none`, `gzip` or `zstd`: compress the whole CSV or JSON Lines ", $noun, ", which is then named `<stream>.csv.gz` / `<stream>.jsonl.zst` (default `none`). Parquet compresses inside the file: see `parquet_compression`.", $compression)]
                #[serde(default)]
                pub compression: $crate::fields::reexport::Compression,
                /// Parquet column compression: `zstd`, `snappy`, `gzip`, `lz4` or `none` (default
                /// `zstd`).
                #[serde(default)]
                pub parquet_compression: $crate::fields::reexport::ParquetCompression,
                /// Rows per Parquet row group (default 131072): the writer holds one row group in
                /// memory, encoded and compressed, and readers can skip or parallelise by row group.
                #[serde(default = "ferry_filestore::defaults::row_group_rows")]
                pub row_group_rows: usize,
            }
        }

        impl $name {
            /// The Parquet options, checked: Excel is never written, a row group holds a
            /// row, and Parquet takes no whole-file compression.
            pub fn parquet(&self) -> $crate::fields::reexport::Result<$crate::fields::reexport::ParquetOptions> {
                $crate::parquet_options(
                    self.format,
                    self.compression,
                    self.parquet_compression,
                    self.row_group_rows,
                )
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            noun: $noun:literal,
            header: $header:literal,
            encrypt: $encrypt:literal,
            $($own:tt)*
        }
    ) => {
        ::ferry_core::config_struct! {
            $(#[$meta])*
            pub struct $name {
                $($own)*
                /// `csv`, `jsonl` or `parquet` (default `csv`).
                #[serde(default = "ferry_filestore::defaults::format")]
                pub format: $crate::fields::reexport::Format,
                /// CSV field separator, one ASCII character (default `,`).
                #[serde(default = "ferry_filestore::defaults::delimiter")]
                pub delimiter: char,
                /// CSV quote character (default `"`).
                #[serde(default = "ferry_filestore::defaults::quote")]
                pub quote: char,
                #[doc = concat!("Whether CSV ", $noun, "s start with a header row (default true).", $header)]
                #[serde(default = "ferry_filestore::defaults::header")]
                pub header: bool,
                /// CSV text written for NULL (default `""`, an empty cell).
                #[serde(default)]
                pub null: String,
                #[doc = concat!("Encrypt every ", $noun, " in the standard age format, so only the client can read it (`age -d -i key.txt orders.csv.age`): `{ recipients = [\"age1…\", \"file:keys/acme.pub\"] }` or `{ passphrase = \"${secret:…}\" }`; or in OpenPGP (`gpg --decrypt orders.csv.gpg`): `{ pgp_recipients = [\"file:keys/acme.asc\"], pgp_sign_key = \"${secret:our_pgp_key}\" }` (default: not encrypted).", $encrypt)]
                #[serde(default)]
                pub encrypt: Option<$crate::EncryptConfig>,
            }
        }

        impl $name {
            /// The CSV layout `delimiter`, `quote`, `header` and `null` ask for, checked.
            pub fn csv(&self) -> $crate::fields::reexport::Result<$crate::fields::reexport::CsvOptions> {
                $crate::csv_options(self.delimiter, self.quote, self.header, &self.null)
            }
        }
    };
}
