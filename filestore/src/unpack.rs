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
use ferry_formats::archive::{self, ArchiveKind, Breach, Flow, Unpack};
use ferry_formats::codec::{
    decompress, detect, infer, infer_excel, infer_parquet_with, ChunkCursor, Compression, Format,
    FormatReader, InferOptions,
};
use ferry_formats::pgp::Decryptor;

use crate::input::Codec;
use crate::mark::Listed;
use crate::options::StreamSpec;
use crate::store::Store;

/// The name a row of entry `entry` of `archive` shows: `drop.zip!orders.csv`.
pub fn entry_name(archive: &str, entry: &str) -> String {
    format!("{archive}!{entry}")
}

/// How to decode the entry `shown` (its name in messages), named `entry` in the archive.
fn entry_codec(spec: &StreamSpec, entry: &str, shown: &str) -> Result<Codec> {
    let d = detect(entry);
    if d.encrypted || d.pgp || ArchiveKind::of(entry).is_some() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "`{shown}` is encrypted or an archive itself, inside an archive: only one archive layer, with encryption outside it (`drop.zip.age`, `drop.zip.gpg`), is read; narrow `inner` to leave it out"
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
        pgp: false,
        archive: None,
    })
}

/// An archive a stream reads: the file in its store, how it is stored, the stream's
/// settings and the keys that decrypt it.
pub(crate) struct Archive<'a, S: Store> {
    pub store: &'a S,
    pub file: &'a S::Entry,
    pub codec: &'a Codec,
    pub spec: &'a StreamSpec,
    pub identities: Option<&'a Identities>,
    pub pgp: Option<&'a Decryptor>,
}

/// Calls `each` with every entry of the archive that the stream takes, as a reader of its
/// rows' bytes; a crossed limit is the error, naming the archive.
pub(crate) fn entries<S: Store>(
    a: &Archive<'_, S>,
    each: &mut dyn FnMut(&str, &mut dyn Read, &Breach) -> Result<Flow>,
) -> Result<()> {
    let Archive {
        store,
        file,
        codec,
        spec,
        identities,
        pgp,
    } = *a;
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
        ArchiveKind::Zip if !codec.encrypted && !codec.pgp => {
            let chunks = ChunkCursor::new(store.chunks(file, codec, identities)?);
            archive::zip_entries(chunks, &how, &mut per_entry)
        }
        _ => {
            // decrypted as it streams (a zip is then spooled to a temporary file)
            let plain = Codec {
                compression: Compression::None,
                ..*codec
            };
            let input = plain.input(store.open(file)?, name, S::NOUN, identities, pgp)?;
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

/// The schema of the first entry the stream takes from the archive.
pub(crate) fn infer_archive<S: Store>(
    a: &Archive<'_, S>,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let (file, spec) = (a.file, a.spec);
    let mut schema = None;
    entries(a, &mut |entry, data, _| {
        let shown = entry_name(file.name(), entry);
        schema = Some(infer_entry(spec, entry, &shown, data, options)?);
        Ok(Flow::Stop)
    })?;
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
