//! The `[source]` and `[destination]` sections of `type = "s3"`.
//!
//! Validation here is pure (no request is made): which fields go together, that type
//! names and patterns parse, that sizes are in range. The bucket is reached only by
//! `check`, `discover`, `read` and `open`.

use ferry_core::{Error, Result, Secret};
use ferry_filestore::Stream;
use ferry_formats::archive::ArchiveKind;
use ferry_formats::codec::{
    detect, Compression, Format, ParquetCompression, ParquetOptions, WriteOptions,
    DEFAULT_ROW_GROUP_ROWS,
};
use schemars::JsonSchema;
use serde::Deserialize;

pub use ferry_filestore::{EncryptConfig, StreamConfig as S3StreamConfig};

use crate::client::{Connection, Timeouts};

/// Smallest part S3 accepts in a multipart upload (all parts but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// Parts per multipart upload S3 allows.
pub const MAX_PARTS: u64 = 10_000;

ferry_filestore::server_config! {
    /// The bucket and how to reach it: the fields both sections have.
    pub(crate) struct BucketAccess {
        /// Bucket name (required).
        pub bucket: String,
        /// AWS region, e.g. `eu-west-1` (default: from `AWS_REGION` or the AWS profile; with
        /// `endpoint` set and no region found, `us-east-1`).
        #[serde(default)]
        pub region: Option<String>,
        /// Endpoint URL of an S3-compatible store, e.g. `http://127.0.0.1:9000` for MinIO or
        /// `https://<account>.r2.cloudflarestorage.com` (default: AWS S3).
        #[serde(default)]
        pub endpoint: Option<String>,
        /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`; most
        /// S3-compatible stores need it (default false).
        #[serde(default)]
        pub force_path_style: bool,
        /// Access key id, as a reference: `"${secret:s3_access_key_id}"` (default: none, the
        /// AWS default credential chain: environment, profile, web identity, ECS, EC2 IMDS).
        #[serde(default)]
        pub access_key_id: Option<Secret>,
        /// Secret access key, as a reference (required with `access_key_id`).
        #[serde(default)]
        pub secret_access_key: Option<Secret>,
        /// Session token of temporary credentials, as a reference (default: none).
        #[serde(default)]
        pub session_token: Option<Secret>,
        /// Role to assume (STS AssumeRole) with the credentials above or the default chain,
        /// e.g. `arn:aws:iam::123456789012:role/ferry` (default: none).
        #[serde(default)]
        pub assume_role_arn: Option<String>,
        /// Seconds to wait for a TCP/TLS connection to S3 (default 10).
        #[serde(default)]
        pub connect_timeout_secs: Option<f64>,
        /// Seconds a request may take until S3's answer starts, counted from the request's
        /// start (a part's upload included); then the attempt is given up and retried
        /// (default 120).
        #[serde(default)]
        pub read_timeout_secs: Option<f64>,
        /// Seconds an upload or download may move no data at all before it is given up as
        /// stalled (a hung connection) and retried, or resumed for downloads (default 20).
        #[serde(default)]
        pub stall_timeout_secs: Option<f64>,
        /// Attempts of each request, the first included, when it fails on the network, times
        /// out, is throttled or gets a 5xx answer (default 3).
        #[serde(default)]
        pub max_attempts: Option<u32>,
    }

    source {
        /// `[source] type = "s3"`: CSV or JSON Lines objects in an S3 bucket (AWS S3 or any
        /// S3-compatible store: MinIO, Ceph, R2, GCS interoperability).
        ///
        /// Give either `path` (one stream) or `streams` (several): each is a key pattern under
        /// `prefix`. Column types are inferred from the first rows of the first matching object
        /// (in key order); `columns` overrides any of them.
        ///
        /// ```toml
        /// [source]
        /// type = "s3"
        /// bucket = "acme-exports"
        /// region = "eu-west-1"
        /// prefix = "daily/"
        /// path = "orders/*.csv.gz"
        /// ```
        pub struct S3SourceConfig {
            noun: "object",
            path: "A key pattern under `prefix` (`orders.csv`, `orders/*.csv.gz`, `2024/**/*.jsonl`): `*` and `?` stay within one `/` segment, `**` crosses them. All matching objects form one stream. Set this or `streams` (no default).",
            file_column: "as `s3://bucket/key`",
            after_read: "Archiving copies an object under `archive_to`, then deletes it. An object changed since it was read (another ETag) is left in place; a failure is a warning in the run summary naming the object, and the run still succeeds. Needs s3:PutObject and s3:DeleteObject.",
            archive_to: " The root is under `prefix`. One CopyObject each: at most 5 GiB.",
            /// Key prefix every pattern is relative to, e.g. `exports/acme/` (default: none, the
            /// whole bucket).
            #[serde(default)]
            pub prefix: String,
        }
    }

    sink {
        /// `[destination] type = "s3"`: objects written by multipart upload, one or more per
        /// stream and run.
        ///
        /// ```toml
        /// [destination]
        /// type = "s3"
        /// bucket = "acme-imports"
        /// region = "eu-west-1"
        /// prefix = "ferry/"
        /// format = "csv"
        /// ```
        pub struct S3SinkConfig {
            noun: "object",
            header: "",
            encrypt: " Keys then end in `.age` (or `.gpg`).",
            /// Key prefix of every object written, e.g. `imports/acme/` (default: none).
            #[serde(default)]
            pub prefix: String,
            /// Key of each object under `prefix` (default `{stream}/{date}/{run_id}-{n}.{ext}`).
            /// Placeholders: `{stream}` the stream name, `{date}` the run's UTC date
            /// (`2024-05-01`), `{time}` its UTC time (`120501`), `{run_id}` the run's id, `{n}` the
            /// object's number within the stream and run (`0001`, `0002` … as objects roll over),
            /// `{ext}` the extension (`csv`, `jsonl.gz`, `csv.zst.age` …). `{run_id}` and `{n}` are
            /// required (keys must never collide); `overwrite` also needs the key to start with
            /// `{stream}/`, the folder it replaces.
            #[serde(default = "default_key_template")]
            pub key_template: String,
            /// `none`, `gzip` or `zstd`: of the whole object for CSV and JSON Lines (default
            /// `none`), of the column chunks inside the file for Parquet (default `zstd`).
            #[serde(default)]
            pub compression: Option<Compression>,
            /// Parquet: rows per row group (default 131072). The writer holds one row group in
            /// memory, encoded and compressed.
            #[serde(default)]
            pub row_group_rows: Option<usize>,
            /// Bytes per uploaded part, at least 5 MiB (the S3 minimum), at most 5 GiB (default
            /// 8 MiB). Memory per open stream is about one part.
            #[serde(default = "default_part_size")]
            pub part_size: u64,
            /// Start a new object once the current one holds about this many bytes (default: no
            /// limit but S3's 10,000 parts).
            #[serde(default)]
            pub max_object_bytes: Option<u64>,
            /// Start a new object once the current one holds this many rows (default: no limit).
            #[serde(default)]
            pub max_object_rows: Option<u64>,
            /// Server-side encryption: `"AES256"` (SSE-S3) or `"aws:kms"` (SSE-KMS) (default:
            /// none, the bucket's default encryption applies).
            #[serde(default)]
            pub sse: Option<Sse>,
            /// KMS key id or ARN for `sse = "aws:kms"` (default: the bucket's or account's default
            /// KMS key).
            #[serde(default)]
            pub sse_kms_key_id: Option<String>,
        }
    }
}

impl BucketAccess {
    /// The connection these fields ask for, checked without a request.
    fn connection(self) -> Result<Connection> {
        Connection::new(
            &self.bucket,
            self.region,
            self.endpoint,
            self.force_path_style,
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.assume_role_arn,
            Timeouts::from_fields(
                self.connect_timeout_secs,
                self.read_timeout_secs,
                self.stall_timeout_secs,
                self.max_attempts,
            )?,
        )
    }
}

/// Server-side encryption of written objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Sse {
    /// SSE-S3: keys managed by S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS: keys in AWS KMS (`sse_kms_key_id`, or the bucket's default KMS key).
    #[serde(rename = "aws:kms")]
    Kms,
}

fn default_part_size() -> u64 {
    8 << 20
}
/// The default `key_template`.
pub const DEFAULT_KEY_TEMPLATE: &str = "{stream}/{date}/{run_id}-{n}.{ext}";
fn default_key_template() -> String {
    DEFAULT_KEY_TEMPLATE.to_string()
}

/// A prefix as S3 wants it: no leading `/`; a non-empty one ends in `/` unless the user
/// meant a key prefix such as `exports/2024-`.
fn clean_prefix(prefix: &str) -> String {
    prefix.trim_start_matches('/').to_string()
}

/// Where one stream's objects are: its key pattern under the prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeyPattern {
    /// The full key pattern (prefix + pattern).
    pub glob: glob::Pattern,
    /// The longest literal key prefix of the pattern: what is listed.
    pub list_prefix: String,
}

impl KeyPattern {
    /// Whether `key` belongs to this stream.
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.list_prefix) && self.glob.matches_with(key, match_options())
    }
}

/// `*` and `?` stop at `/`; `**` crosses it; hidden names are not special for keys.
pub(crate) fn match_options() -> glob::MatchOptions {
    glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    }
}

impl S3SourceConfig {
    /// The connection part of the config.
    pub(crate) fn connection(&self) -> Result<Connection> {
        BucketAccess::from(self).connection()
    }

    /// Checks the fields fit together and resolves defaults, without a request.
    pub(crate) fn streams(&self) -> Result<Vec<Stream<KeyPattern>>> {
        let prefix = clean_prefix(&self.prefix);
        let mut streams = Vec::new();
        for spec in self.options().specs("object")? {
            let (name, pattern) = (&spec.name, spec.pattern.trim_start_matches('/'));
            let full = format!("{}{}", glob::Pattern::escape(&prefix), pattern);
            let glob = glob::Pattern::new(&full).map_err(|e| {
                Error::config(format!(
                    "stream `{name}`: `path = \"{}\"` is not a valid pattern: {}",
                    spec.pattern, e.msg
                ))
            })?;
            let literal = pattern
                .find(['*', '?', '['])
                .map_or(pattern, |i| &pattern[..i]);
            let wildcards = literal.len() != pattern.len();
            let bare = pattern.strip_suffix(".age").unwrap_or(pattern);
            let archive = ArchiveKind::of(bare).is_some();
            if spec.format.is_none() && detect(pattern).format.is_none() && !wildcards && !archive {
                return Err(Error::config(format!(
                    "stream `{name}`: cannot tell the format of `{pattern}` from its extension: set `format = \"csv\"`, `\"jsonl\"` or `\"parquet\"`"
                )));
            }
            let list_prefix = format!("{prefix}{literal}");
            streams.push(Stream {
                spec,
                place: KeyPattern { glob, list_prefix },
            });
        }
        Ok(streams)
    }
}

/// The destination's settings, validated.
#[derive(Debug, Clone)]
pub(crate) struct SinkSpec {
    pub prefix: String,
    pub template: KeyTemplate,
    pub format: Format,
    /// Compression of the whole object (never for Parquet, which compresses inside).
    pub compression: Compression,
    pub options: WriteOptions,
    pub part_size: usize,
    pub max_object_bytes: u64,
    pub max_object_rows: u64,
    pub sse: Option<Sse>,
    pub sse_kms_key_id: Option<String>,
}

impl S3SinkConfig {
    /// The connection part of the config.
    pub(crate) fn connection(&self) -> Result<Connection> {
        BucketAccess::from(self).connection()
    }

    /// Checks the fields fit together, without a request.
    pub(crate) fn spec(&self) -> Result<SinkSpec> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(Error::config(format!(
                "`part_size` must be between 5 MiB ({MIN_PART_SIZE}) and 5 GiB ({MAX_PART_SIZE}) bytes, not {}",
                self.part_size
            )));
        }
        if self.max_object_bytes == Some(0) || self.max_object_rows == Some(0) {
            return Err(Error::config(
                "`max_object_bytes` and `max_object_rows` must be at least 1",
            ));
        }
        if self.sse_kms_key_id.is_some() && self.sse != Some(Sse::Kms) {
            return Err(Error::config("`sse_kms_key_id` needs `sse = \"aws:kms\"`"));
        }
        if self.format == Format::Excel {
            return Err(ferry_formats::codec::excel_not_written());
        }
        let csv = self.csv()?;
        let template = KeyTemplate::parse(&self.key_template)?;
        if self.row_group_rows == Some(0) {
            return Err(Error::config("`row_group_rows` must be at least 1"));
        }
        if self.row_group_rows.is_some() && self.format != Format::Parquet {
            return Err(Error::config(
                "`row_group_rows` is for `format = \"parquet\"` only",
            ));
        }
        let (compression, parquet) = match self.format {
            Format::Parquet => (
                Compression::None,
                ParquetOptions {
                    compression: match self.compression {
                        None | Some(Compression::Zstd) => ParquetCompression::Zstd,
                        Some(Compression::Gzip) => ParquetCompression::Gzip,
                        Some(Compression::None) => ParquetCompression::None,
                    },
                    row_group_rows: self.row_group_rows.unwrap_or(DEFAULT_ROW_GROUP_ROWS),
                },
            ),
            _ => (
                self.compression.unwrap_or_default(),
                ParquetOptions::default(),
            ),
        };
        Ok(SinkSpec {
            prefix: clean_prefix(&self.prefix),
            template,
            format: self.format,
            compression,
            options: WriteOptions { csv, parquet },
            part_size: self.part_size as usize,
            max_object_bytes: self
                .max_object_bytes
                .unwrap_or(self.part_size.saturating_mul(MAX_PARTS - 16)),
            max_object_rows: self.max_object_rows.unwrap_or(u64::MAX),
            sse: self.sse,
            sse_kms_key_id: self.sse_kms_key_id.clone(),
        })
    }
}

/// One piece of a key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Stream,
    Date,
    Time,
    RunId,
    N,
    Ext,
}

/// A parsed `key_template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyTemplate {
    pieces: Vec<Piece>,
}

/// What a key is made of, besides the template.
pub(crate) struct KeyParts<'a> {
    pub stream: &'a str,
    pub date: &'a str,
    pub time: &'a str,
    pub run_id: &'a str,
    pub n: u64,
    pub ext: &'a str,
}

impl KeyTemplate {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| {
                        Error::config(format!("`key_template = \"{text}\"`: a `{{` is not closed"))
                    })?;
                    let piece = match &rest[1..end] {
                        "stream" => Piece::Stream,
                        "date" => Piece::Date,
                        "time" => Piece::Time,
                        "run_id" => Piece::RunId,
                        "n" => Piece::N,
                        "ext" => Piece::Ext,
                        other => {
                            return Err(Error::config(format!(
                                "`key_template = \"{text}\"`: unknown placeholder `{{{other}}}` (known: {{stream}}, {{date}}, {{time}}, {{run_id}}, {{n}}, {{ext}})"
                            )))
                        }
                    };
                    pieces.push(piece);
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    pieces.push(Piece::Text(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        if pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.contains('}')))
        {
            return Err(Error::config(format!(
                "`key_template = \"{text}\"`: a `}}` without its `{{`"
            )));
        }
        for (need, name) in [(Piece::RunId, "{run_id}"), (Piece::N, "{n}")] {
            if !pieces.contains(&need) {
                return Err(Error::config(format!(
                    "`key_template = \"{text}\"` lacks `{name}`: without it two objects could get the same key and one would replace the other"
                )));
            }
        }
        if matches!(pieces.first(), Some(Piece::Text(t)) if t.starts_with('/')) {
            return Err(Error::config(format!(
                "`key_template = \"{text}\"` must not start with `/`"
            )));
        }
        Ok(KeyTemplate { pieces })
    }

    /// The key (under the prefix) for `parts`.
    pub(crate) fn render(&self, parts: &KeyParts<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Stream => out.push_str(parts.stream),
                Piece::Date => out.push_str(parts.date),
                Piece::Time => out.push_str(parts.time),
                Piece::RunId => out.push_str(parts.run_id),
                Piece::N => out.push_str(&format!("{:04}", parts.n)),
                Piece::Ext => out.push_str(parts.ext),
            }
        }
        out
    }

    /// The folder holding exactly one stream's objects (`overwrite` replaces it): the
    /// template up to `{stream}/`, when it starts with literal text and `{stream}` followed
    /// by a `/`. `None` when objects of several streams could share a folder.
    pub(crate) fn stream_folder(&self, stream: &str) -> Option<String> {
        let mut out = String::new();
        let mut pieces = self.pieces.iter();
        for p in pieces.by_ref() {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Stream => break,
                _ => return None,
            }
        }
        match pieces.next() {
            Some(Piece::Text(t))
                if t.starts_with('/') && (out.is_empty() || out.ends_with('/')) =>
            {
                Some(format!("{out}{stream}/"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_templates() {
        let t = KeyTemplate::parse(DEFAULT_KEY_TEMPLATE).unwrap();
        let parts = KeyParts {
            stream: "orders",
            date: "2024-05-01",
            time: "120000",
            run_id: "r1",
            n: 2,
            ext: "csv.gz",
        };
        assert_eq!(t.render(&parts), "orders/2024-05-01/r1-0002.csv.gz");
        assert_eq!(t.stream_folder("orders").as_deref(), Some("orders/"));
        let t = KeyTemplate::parse("out/{stream}/{run_id}_{n}.{ext}").unwrap();
        assert_eq!(t.stream_folder("s").as_deref(), Some("out/s/"));
        let t = KeyTemplate::parse("{date}/{stream}-{run_id}-{n}.{ext}").unwrap();
        assert_eq!(t.stream_folder("s"), None);
        let t = KeyTemplate::parse("{stream}-{run_id}-{n}.{ext}").unwrap();
        assert_eq!(t.stream_folder("s"), None);
        for (bad, needle) in [
            ("{stream}/{n}.csv", "lacks `{run_id}`"),
            ("{stream}/{run_id}.csv", "lacks `{n}`"),
            ("{stream}/{rn}-{n}", "unknown placeholder `{rn}`"),
            ("{stream/{run_id}-{n}", "unknown placeholder"),
            ("{stream}/{run_id}-{n", "not closed"),
        ] {
            let e = KeyTemplate::parse(bad).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
    }
}
