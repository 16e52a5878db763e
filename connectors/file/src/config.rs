//! The `[source]` and `[destination]` sections of `type = "file"`.
//!
//! Validation here is pure (no file is touched): which fields go together, that type
//! names parse, that delimiters are single ASCII characters. Paths are resolved and
//! files opened only by `check`, `discover`, `read` and `open`.

use ferry_core::{Error, Result};
use ferry_filestore::StreamSpec;
use ferry_formats::archive::ArchiveKind;
use ferry_formats::codec::{detect, Compression, Format};

pub use ferry_filestore::{EncryptConfig, StreamConfig as FileStreamConfig};

ferry_filestore::source_config! {
    /// `[source] type = "file"`: CSV, JSON Lines, Parquet or Excel files in a local folder,
    /// each optionally gzip- or zstd-compressed (not Parquet or Excel) and/or age- or
    /// OpenPGP-encrypted.
    ///
    /// Give either `path` (one stream) or `streams` (several). Column types are inferred from
    /// the first rows of the first matching file (Parquet: from its footer); `columns`
    /// overrides any of them. A file's layers are read from its name, outside in:
    /// `orders.csv.gz.age` (or `orders.csv.gz.gpg`) is decrypted, then gunzipped, then read as
    /// CSV.
    pub struct FileSourceConfig {
        noun: "file",
        path: "A file or glob pattern (`customers.csv`, `in/orders_*.csv`, `in/**/*.jsonl`), relative to the config file's folder; all matching files form one stream. Set this or `streams` (no default).",
        file_column: "as listed (relative to the config file's folder)",
        after_read: "A file that cannot be moved or deleted is a warning in the run summary, naming it; the run still succeeds.",
        archive_to: "",
    }
}

ferry_filestore::sink_config! {
    /// `[destination] type = "file"`: one CSV, JSON Lines or Parquet file per stream in a
    /// folder, optionally compressed and/or age-encrypted.
    ///
    /// The file name says how to read it back: `orders.csv`, `orders.csv.gz`,
    /// `orders.jsonl.zst`, `orders.parquet`, and `.age` after any of them when encrypted.
    pub struct FileSinkConfig {
        noun: "file",
        compression: " Compressed files are only written with `overwrite`.",
        header: " Appending to an existing file never writes a second header.",
        encrypt: " Files are then named `<stream>.<ext>.age` (or `.gpg`), and only `overwrite` is supported.",
        /// Output folder, relative to the config file's folder; created when missing
        /// (required). Stream `s` is written to `<path>/s.csv`, `<path>/s.jsonl` or
        /// `<path>/s.parquet` (plus `.gz` / `.zst` and `.age` as configured).
        pub path: String,
    }
}

impl FileSourceConfig {
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
