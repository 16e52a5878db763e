//! Reading the files inside an archive (`drop.zip`, `drop.tar.gz`, `drop.zip.age`): which
//! entries a stream takes (`inner`), how each is decoded (by its own name), and opening
//! the archive through the store (see `ferry_formats::archive` for the layer itself and
//! its zip-bomb limits).
//!
//! A zip is read with random access where the store gives it (a local file, ranged GETs);
//! an encrypted one is decrypted to a temporary file first (its index is at the end). A
//! tar streams. An entry in a format that needs random access (Parquet, a workbook) or
//! compressed inside the archive (`a.csv.gz` in a zip) is copied to a temporary file,
//! within the archive's limits, and read from there.

use std::io::Read;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::age::Identities;
use ferry_formats::archive::{self, ArchiveKind, Breach, Flow, Limits, Unpack};
use ferry_formats::codec::{
    decompress, detect, infer, infer_excel, infer_parquet_with, ChunkCursor, Compression, Format,
    FormatReader, InferOptions,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::input::Codec;
use crate::mark::Listed;
use crate::options::StreamSpec;
use crate::store::Store;

/// `archive_limits = { entries = …, expanded_bytes = …, ratio = … }`: how much one archive
/// may unpack to before it is refused as a likely zip bomb.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Entries (files, folders) one archive may hold (default 10000).
    #[serde(default = "default_entries")]
    pub entries: u64,
    /// Bytes all the entries of one archive may unpack to, together (default
    /// 17179869184, 16 GiB).
    #[serde(default = "default_expanded_bytes")]
    pub expanded_bytes: u64,
    /// How many times its compressed size an entry of a zip (or a whole tar.gz) may unpack
    /// to, past its first MiB (default 100; real data rarely passes 20, a zip bomb passes
    /// 1000).
    #[serde(default = "default_ratio")]
    pub ratio: u64,
}

fn default_entries() -> u64 {
    Limits::default().entries
}
fn default_expanded_bytes() -> u64 {
    Limits::default().expanded_bytes
}
fn default_ratio() -> u64 {
    Limits::default().ratio
}

impl From<ArchiveLimits> for Limits {
    fn from(l: ArchiveLimits) -> Limits {
        Limits {
            entries: l.entries,
            expanded_bytes: l.expanded_bytes,
            ratio: l.ratio,
        }
    }
}

/// How a stream reads archives: which entries, within which limits.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSpec {
    /// The entries read (`None`: every entry whose extension names a format).
    pub inner: Option<glob::Pattern>,
    /// How much one archive may unpack to.
    pub limits: Limits,
}

impl ArchiveSpec {
    /// Whether the entry `name` is read.
    pub fn keeps(&self, name: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            // `*.csv` takes the CSV files in the archive's folders too
            require_literal_separator: false,
            require_literal_leading_dot: true,
        };
        match &self.inner {
            Some(p) => p.matches_with(name, options),
            None => detect(name).format.is_some(),
        }
    }
}

/// The name a row of entry `entry` of `archive` shows: `drop.zip!orders.csv`.
pub fn entry_name(archive: &str, entry: &str) -> String {
    format!("{archive}!{entry}")
}

/// How to decode the entry `shown` (its name in messages), named `entry` in the archive.
fn entry_codec(spec: &StreamSpec, entry: &str, shown: &str) -> Result<Codec> {
    let d = detect(entry);
    if d.encrypted || ArchiveKind::of(entry).is_some() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "`{shown}` is encrypted or an archive itself, inside an archive: only one archive layer, with encryption outside it (`drop.zip.age`), is read; narrow `inner` to leave it out"
            ),
        ));
    }
    let format = spec.format.or(d.format).ok_or_else(|| {
        Error::config(format!(
            "cannot tell the format of `{shown}` from its extension: set `format` for stream `{}`, or narrow `inner` (e.g. `inner = \"*.csv\"`)",
            spec.name
        ))
    })?;
    Ok(Codec {
        format,
        compression: d.compression,
        encrypted: false,
        archive: None,
    })
}

/// Calls `each` with every entry of the archive `file` that the stream takes, as a reader
/// of its rows' bytes; a crossed limit is the error, naming the archive.
pub(crate) fn entries<S: Store>(
    store: &S,
    file: &S::Entry,
    codec: &Codec,
    spec: &StreamSpec,
    identities: Option<&Identities>,
    each: &mut dyn FnMut(&str, &mut dyn Read, &Breach) -> Result<Flow>,
) -> Result<()> {
    let name = file.name();
    let Some(kind) = codec.archive else {
        return Err(Error::internal(format!("`{name}` is not an archive")));
    };
    let keep = |entry: &str| spec.archive.keeps(entry);
    let how = Unpack {
        archive: name,
        limits: spec.archive.limits,
        breach: Breach::default(),
        keep: &keep,
    };
    let mut per_entry = |entry: &str, data: &mut dyn Read| each(entry, data, &how.breach);
    match kind {
        ArchiveKind::Zip if !codec.encrypted => {
            let chunks = ChunkCursor::new(store.chunks(file, codec, identities)?);
            archive::zip_entries(chunks, &how, &mut per_entry)
        }
        _ => {
            // decrypted as it streams (a zip is then spooled to a temporary file)
            let plain = Codec {
                compression: Compression::None,
                ..*codec
            };
            let input = plain.input(store.open(file)?, name, S::NOUN, identities)?;
            let failure = input.failure();
            archive::entries(kind, Box::new(input), &how, &mut per_entry)
                .map_err(|e| failure.restore(e))
        }
    }
}

/// A reader of the rows of the entry `shown`, named `entry` in its archive, from `data`.
pub(crate) fn entry_reader<'a>(
    spec: &StreamSpec,
    entry: &str,
    shown: &str,
    data: &'a mut dyn Read,
    schema: SchemaRef,
) -> Result<FormatReader<Box<dyn Read + 'a>>> {
    let codec = entry_codec(spec, entry, shown)?;
    let reader = match codec.format {
        Format::Parquet => FormatReader::parquet(archive::spool(data, shown)?, schema)?,
        Format::Excel => FormatReader::excel(
            archive::spool(data, shown)?,
            Some(entry),
            schema,
            &spec.excel,
        )?,
        format => {
            let input: Box<dyn Read + 'a> = match codec.compression {
                Compression::None => Box::new(data),
                c => decompress(Box::new(archive::spool(data, shown)?), c)?,
            };
            FormatReader::new(format, input, schema, &spec.csv)?
        }
    };
    Ok(reader.with_file(shown))
}

/// The schema of the entry `shown`, named `entry` in its archive, from `data`.
pub(crate) fn infer_entry(
    spec: &StreamSpec,
    entry: &str,
    shown: &str,
    data: &mut dyn Read,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let codec = entry_codec(spec, entry, shown)?;
    match codec.format {
        Format::Parquet => infer_parquet_with(&archive::spool(data, shown)?, options),
        Format::Excel => infer_excel(
            archive::spool(data, shown)?,
            Some(entry),
            &spec.excel,
            options,
        ),
        format => match codec.compression {
            Compression::None => infer(format, data, &spec.csv, options),
            c => {
                let file = archive::spool(data, shown)?;
                infer(format, decompress(Box::new(file), c)?, &spec.csv, options)
            }
        },
    }
    .map_err(|e| e.with("file", shown))
}

/// The schema of the first entry the stream takes from the archive `file`.
pub(crate) fn infer_archive<S: Store>(
    store: &S,
    file: &S::Entry,
    codec: &Codec,
    spec: &StreamSpec,
    identities: Option<&Identities>,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let mut schema = None;
    entries(
        store,
        file,
        codec,
        spec,
        identities,
        &mut |entry, data, _| {
            let shown = entry_name(file.name(), entry);
            schema = Some(infer_entry(spec, entry, &shown, data, options)?);
            Ok(Flow::Stop)
        },
    )?;
    schema.ok_or_else(|| {
        let which = spec.archive.inner.as_ref().map_or(
            "an extension Ferry reads (`.csv`, `.jsonl`, `.parquet`, `.xlsx` …)".to_string(),
            |p| format!("`inner = \"{}\"`", p.as_str()),
        );
        Error::new(
            ErrorKind::NotFound,
            format!(
                "archive `{}` holds no file matching {which}: check `inner`",
                file.name()
            ),
        )
    })
}
