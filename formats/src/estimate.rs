//! Estimates for file-like sources ([`ferry_core::Estimate`]): file-like sources estimate from what a listing gives for free (sizes) and one small
//! sample: the average bytes per row of the first [`SAMPLE_BYTES`] of one file.

use std::io::Read;

use crate::codec::{ChunkReader, Format};
use ferry_core::{Error, Result};

/// How many leading bytes of one file are read to learn the average row size.
pub const SAMPLE_BYTES: usize = 64 * 1024;

/// The average bytes per row in `sample`, the first bytes of a plain CSV or JSON Lines
/// file (`whole`: the sample is the whole file). A CSV header line is not a row. `None`
/// when the sample holds no complete row (or is Parquet or a workbook, not lines of text).
pub fn bytes_per_row(sample: &[u8], whole: bool, format: Format, csv_header: bool) -> Option<f64> {
    if format.random_access() {
        return None;
    }
    let (bytes, rows) = rows_in(sample, whole, format == Format::Csv && csv_header)?;
    (rows > 0).then(|| bytes as f64 / rows as f64)
}

/// The bytes and rows of the complete lines of `sample` (the last line counts when `whole`,
/// even without a line end), after its first line when `skip_first` (a CSV header, or the
/// cut-off line a sample from the middle starts in). Blank lines are bytes but not rows.
fn rows_in(sample: &[u8], whole: bool, skip_first: bool) -> Option<(usize, usize)> {
    // rows end at line ends; a quoted CSV field with line breaks makes this a little high
    let mut ends: Vec<usize> = sample
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    if whole && sample.last().is_some_and(|b| *b != b'\n') {
        ends.push(sample.len());
    }
    let mut start = 0;
    if skip_first {
        start = *ends.first()?;
        ends.remove(0);
    }
    let rows = ends
        .iter()
        .zip(std::iter::once(&start).chain(ends.iter()))
        .filter(|(end, begin)| {
            sample[**begin..**end]
                .iter()
                .any(|b| !b.is_ascii_whitespace())
        })
        .count();
    let last = *ends.last()?;
    Some((last - start, rows))
}

/// [`SAMPLE_BYTES`] from the middle of a file of more than twice that (`None` for a smaller
/// one, which the first bytes describe well enough): rows often grow along a file (longer
/// ids, later dates), so the start alone would overestimate.
pub fn middle_sample<R: ChunkReader>(file: &R) -> Result<Option<(Vec<u8>, bool)>> {
    let len = file.len();
    if len <= 2 * SAMPLE_BYTES as u64 {
        return Ok(None);
    }
    let input = file
        .get_read(len / 2)
        .map_err(|e| Error::data(format!("cannot read the middle of the file: {e}")))?;
    let (bytes, whole) = sample(input)
        .map_err(|e| Error::data(format!("cannot read the middle of the file: {e}")))?;
    Ok(Some((bytes, whole)))
}

/// The bytes of a CSV header line at the start of `sample` (0 for JSON Lines or no header):
/// every file repeats it, and it is not row data.
pub fn header_len(sample: &[u8], format: Format, csv_header: bool) -> u64 {
    if format != Format::Csv || !csv_header {
        return 0;
    }
    sample
        .iter()
        .position(|b| *b == b'\n')
        .map_or(sample.len(), |i| i + 1) as u64
}

/// Estimates the rows of plain (uncompressed, unencrypted) CSV or JSON Lines files,
/// `files` of them holding `bytes`, from `head`, the start of one of them (`whole`: all of
/// it), and `middle`, a [`middle_sample`] of the same file.
pub fn rows_of_plain_files(
    head: (&[u8], bool),
    middle: Option<(&[u8], bool)>,
    files: u64,
    bytes: u64,
    format: Format,
    csv_header: bool,
) -> Option<u64> {
    if format.random_access() {
        return None;
    }
    let header = header_len(head.0, format, csv_header);
    let (mut n, mut rows) = rows_in(head.0, head.1, format == Format::Csv && csv_header)?;
    // the middle sample starts inside a line: that line is not counted
    if let Some((b, r)) = middle.and_then(|(m, whole)| rows_in(m, whole, true)) {
        (n, rows) = (n + b, rows + r);
    }
    if rows == 0 {
        return None;
    }
    Some(rows_from_bytes(
        bytes.saturating_sub(header.saturating_mul(files)),
        n as f64 / rows as f64,
    ))
}

/// The first [`SAMPLE_BYTES`] of `input` (fewer if it ends), and whether that is all of it.
pub fn sample(mut input: impl Read) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::with_capacity(SAMPLE_BYTES);
    (&mut input)
        .take(SAMPLE_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    let whole = buf.len() <= SAMPLE_BYTES;
    buf.truncate(SAMPLE_BYTES);
    Ok((buf, whole))
}

/// The rows `bytes` of row data hold at `per_row` bytes a row (rounded).
pub fn rows_from_bytes(bytes: u64, per_row: f64) -> u64 {
    if per_row <= 0.0 {
        return 0;
    }
    (bytes as f64 / per_row).round() as u64
}

/// The exact row count a Parquet file's footer records (only the footer is read).
pub fn parquet_rows<R: ChunkReader + 'static>(reader: R) -> Result<u64> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = SerializedFileReader::new(reader)
        .map_err(|e| Error::data(format!("not a readable Parquet file: {e}")))?;
    Ok(file.metadata().file_metadata().num_rows().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Estimate;

    #[test]
    fn rows_of_a_sample_skip_the_csv_header_and_blank_lines() {
        let csv = b"id,name\n1,ann\n2,bob\n\n3,cy";
        // whole: the last line counts though it has no line end
        let per = bytes_per_row(csv, true, Format::Csv, true).unwrap();
        assert_eq!(rows_from_bytes((csv.len() - 8) as u64, per), 3);
        // a cut sample: the partial last line is not a row; a blank line is bytes, not a row
        let per = bytes_per_row(csv, false, Format::Csv, true).unwrap();
        assert!((per - 6.5).abs() < 1e-9, "{per}");
        assert_eq!(bytes_per_row(b"id,name\n", true, Format::Csv, true), None);
        let per = bytes_per_row(b"{\"a\":1}\n{\"a\":2}\n", true, Format::Jsonl, true).unwrap();
        assert!((per - 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_middle_sample_skips_its_cut_line_and_weighs_in() {
        let head = b"id\n1\n2\n";
        // rows of 2 bytes at the start, 4 in the middle (the first, cut line not counted)
        let middle = b"99\n100\n101\n10";
        let rows = rows_of_plain_files((head, false), None, 1, 303, Format::Csv, true);
        assert_eq!(rows, Some(150));
        let rows = rows_of_plain_files(
            (head, false),
            Some((middle, false)),
            1,
            303,
            Format::Csv,
            true,
        );
        // (4 + 8) bytes over 4 rows: 3 bytes a row
        assert_eq!(rows, Some(100));
    }

    #[test]
    fn nothing_is_exact_and_a_limit_caps_rows() {
        assert!(Estimate::nothing().is_nothing());
        let e = Estimate {
            rows: Some(10),
            ..Estimate::default()
        };
        assert!(!e.is_nothing());
        assert_eq!(e.limited(Some(3)).rows, Some(3));
    }
}
