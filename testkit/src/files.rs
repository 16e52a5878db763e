//! Batches to and from files with the codec writers and readers, for the tests of the
//! file-like connectors (file, sftp): fixtures in, deliveries back.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ferry_core::source::Message;
use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::codec::{
    decompress, Compression, CsvOptions, Format, FormatReader, FormatWriter,
};

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, e.to_string())
}

/// The names of the files in `dir` (hidden ones included), sorted; none when there is no
/// such folder.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Writes `batch` to a new file at `path` (folders made) in `format`.
pub fn write_batch_file(path: &Path, format: Format, batch: &RecordBatch) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    let mut w = FormatWriter::new(
        format,
        BufWriter::new(file),
        batch.schema(),
        &CsvOptions::default(),
    )?;
    w.write_batch(batch)?;
    w.into_inner()?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    Ok(())
}

/// Every row of the file at `path` (none when there is no file), decompressed with
/// `compression`; a rejected record is an error.
pub fn read_batch_file(
    path: &Path,
    format: Format,
    compression: Compression,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = File::open(path).map_err(io)?;
    let reader = if format == Format::Parquet {
        FormatReader::parquet(file, schema.clone())?
    } else {
        FormatReader::new(
            format,
            decompress(Box::new(file), compression)?,
            schema.clone(),
            &CsvOptions::default(),
        )?
    };
    let mut out = Vec::new();
    for m in reader {
        match m? {
            Message::Batch(b) => out.push(b),
            Message::Rejected(r) => {
                return Err(Error::data(format!(
                    "written file has a bad record at {}: {}",
                    r.position, r.message
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}
