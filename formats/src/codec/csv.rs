//! CSV: a streaming reader that turns records into batches, and a writer.
//!
//! The reader drives `csv-core` over its own buffer rather than using `csv::Reader`, for
//! two things a person fixing a bad file needs: the exact line a record starts on (blank
//! lines and `\r\n` endings included) and the record's raw text. It reuses one field
//! buffer for every record and checks UTF-8 per field, so a row costs no allocation
//! beyond the Arrow builders.
//!
//! Rules:
//! - Input is decoded from [`CsvOptions::encoding`] (see [`super::encoding`]); without
//!   one it must be UTF-8, and a UTF-16 byte-order mark switches to UTF-16. A UTF-8 mark is
//!   skipped. A field that does not decode is a rejected record whose message names the
//!   likely encoding, not an error.
//! - The delimiter is guessed from the first lines when [`CsvOptions::sniff_delimiter`] is
//!   set (see [`super::sniff`]). [`CsvOptions::skip_rows`] lines before the header are
//!   skipped, and the last [`CsvOptions::skip_footer_rows`] records are held back and
//!   dropped (the reader still streams: it holds that many records, no more).
//! - Numeric columns (int64, float64, decimal) are read in [`CsvOptions::numbers`]'s
//!   format (`1.234,56`); a value not written that way is a rejected record.
//! - Quoted fields may hold the delimiter, doubled quotes and line breaks.
//! - Blank lines are skipped.
//! - NULL is the null text (default empty): a cell holding exactly it reads as NULL, so
//!   with the default an empty string or empty binary value is written as an empty cell
//!   and reads back as NULL, and with another null text (e.g. `\N`) a string equal to it
//!   does. CSV has no other way to tell them apart; JSON Lines and Parquet keep both.
//! - A record with a different number of fields than the header (or the schema, without a
//!   header) is rejected, as is a record with a value that does not parse as its column's
//!   type. The rest of the file is still read.
//! - With a header, columns are matched to the schema by name, in any order; a schema
//!   column the file lacks is NULL, and a file column the schema lacks is an error.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use csv_core::ReadRecordResult;

use super::checks::{check_width, column_types};
use super::encoding::{hint, DecodeReader, Encoding};
use super::number::NumberFormat;
use super::reader::{map_header, reader_api, Output, Steps};
use super::sniff::sniff_delimiter;
use super::{io_error, Counting, MAX_RECORD_BYTES};
use ferry_core::types::{check_schema, FerryType};
use ferry_core::values::{preview, write_text};
use ferry_core::{Error, Result};

const INPUT_BUFFER: usize = 256 << 10;
/// The most footer records a reader holds back.
pub const MAX_FOOTER_ROWS: usize = 10_000;
/// The most a delimiter sniff looks at.
const SNIFF_BYTES: u64 = 64 << 10;

/// How a CSV file is laid out. Writers use the delimiter, quote, header and null text only
/// (they write UTF-8 and plain numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator, one ASCII byte (default `,`).
    pub delimiter: u8,
    /// Quote character, one ASCII byte (default `"`); a quote inside a quoted field is doubled.
    pub quote: u8,
    /// Whether the first record names the columns (default true). Without a header the
    /// columns are named `column_1`, `column_2` …
    pub has_header: bool,
    /// A cell holding exactly this text is NULL (default `""`: an empty cell is NULL).
    /// Writers write NULL as this text.
    pub null_text: String,
    /// Reading: guess the delimiter of each file from its first lines (`,` `;` tab `|`),
    /// keeping [`Self::delimiter`] when the guess is not clear (default false).
    pub sniff_delimiter: bool,
    /// Reading: lines before the header (or the first record) to skip (default 0).
    pub skip_rows: usize,
    /// Reading: records at the end of the file to ignore, such as a totals line (default 0).
    pub skip_footer_rows: usize,
    /// Reading: how numeric columns write numbers (default `1234.56`).
    pub numbers: NumberFormat,
    /// Reading: the text encoding (default `None`: UTF-8, or UTF-16 when a byte-order mark
    /// says so). Used by JSON Lines readers too.
    pub encoding: Option<&'static Encoding>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            has_header: true,
            null_text: String::new(),
            sniff_delimiter: false,
            skip_rows: 0,
            skip_footer_rows: 0,
            numbers: NumberFormat::default(),
            encoding: None,
        }
    }
}

impl CsvOptions {
    /// Checks the delimiter and quote are distinct ASCII bytes other than a line break.
    pub fn validate(&self) -> Result<()> {
        for (what, b) in [("delimiter", self.delimiter), ("quote", self.quote)] {
            if !b.is_ascii() || b == b'\n' || b == b'\r' {
                return Err(Error::config(format!(
                    "CSV {what} must be one ASCII character other than a line break, not {:?}",
                    b as char
                )));
            }
        }
        if self.delimiter == self.quote {
            return Err(Error::config(format!(
                "CSV delimiter and quote are both {:?}; they must differ",
                self.delimiter as char
            )));
        }
        if self.skip_footer_rows > MAX_FOOTER_ROWS {
            return Err(Error::config(format!(
                "`skip_footer_rows` is {}: at most {MAX_FOOTER_ROWS} records are held back (they are kept in memory until the file ends)",
                self.skip_footer_rows
            )));
        }
        self.numbers.validate()
    }
}

fn core_reader(delimiter: u8, quote: u8) -> csv_core::Reader {
    csv_core::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .build()
}

/// Column names from header cells: trimmed; an empty name becomes `column_N` (N is the
/// one-based position) and a repeated name gets a suffix `_2`, `_3` …
pub(crate) fn column_names<'a>(cells: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let mut out: Vec<String> = Vec::new();
    // names taken, and the next suffix to try per base name: linear in the header's size
    // (a header of 20,000 `a`s must not take a search per suffix per column)
    let mut taken: HashSet<String> = HashSet::new();
    let mut next: HashMap<String, usize> = HashMap::new();
    for (i, cell) in cells.into_iter().enumerate() {
        let base = match cell.trim() {
            "" => format!("column_{}", i + 1),
            s => s.to_string(),
        };
        let mut name = base.clone();
        if taken.contains(&name) {
            let k = next.entry(base.clone()).or_insert(2);
            loop {
                name = format!("{base}_{k}");
                *k += 1;
                if !taken.contains(&name) {
                    break;
                }
            }
        }
        taken.insert(name.clone());
        out.push(name);
    }
    out
}

/// Positional names `column_1` … `column_n`, for files without a header.
pub(crate) fn positional_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("column_{i}")).collect()
}

/// Input with bytes put back in front of it (the lines a delimiter sniff looked at).
struct Replay<R> {
    head: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// One record as read: its fields, its raw bytes and the lines it spans.
struct Rec {
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    raw: Vec<u8>,
    line: u64,
    end_line: u64,
}

impl Rec {
    fn new() -> Self {
        Rec {
            fields: vec![0; 1024],
            ends: vec![0; 32],
            len: 0,
            raw: Vec::with_capacity(1024),
            line: 0,
            end_line: 0,
        }
    }
}

type Input<R> = BufReader<Replay<DecodeReader<R>>>;

/// Raw CSV records, one at a time, with the line each starts on and its raw text.
pub(crate) struct Records<R> {
    input: Input<R>,
    core: csv_core::Reader,
    /// The configured delimiter (what a sniff falls back to).
    delimiter: u8,
    quote: u8,
    sniff: bool,
    skip_rows: usize,
    footer: usize,
    /// Lines skipped before the first record.
    offset: u64,
    cur: Rec,
    /// Records read ahead of `cur`, to hold back the footer.
    ahead: VecDeque<Rec>,
    spare: Vec<Rec>,
    started: bool,
    ended: bool,
}

/// Reads the next record into `rec`; `false` at the end of the input.
fn read_record<R: Read>(
    input: &mut Input<R>,
    core: &mut csv_core::Reader,
    offset: u64,
    rec: &mut Rec,
) -> Result<bool> {
    let read_error = |e| io_error(e, "cannot read CSV input");
    rec.raw.clear();
    let line_before = core.line() + offset;
    let (mut outlen, mut endlen) = (0, 0);
    let lead = |raw: &[u8]| {
        raw.iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .filter(|b| **b == b'\n')
            .count() as u64
    };
    loop {
        let buf = input.fill_buf().map_err(read_error)?;
        let (res, nin, nout, nend) =
            core.read_record(buf, &mut rec.fields[outlen..], &mut rec.ends[endlen..]);
        rec.raw.extend_from_slice(&buf[..nin]);
        input.consume(nin);
        outlen += nout;
        endlen += nend;
        match res {
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull => {
                let n = rec.fields.len() * 2;
                rec.fields.resize(n, 0);
            }
            ReadRecordResult::OutputEndsFull => {
                let n = rec.ends.len() * 2;
                rec.ends.resize(n, 0);
            }
            ReadRecordResult::Record => {
                rec.len = endlen;
                rec.line = line_before + lead(&rec.raw);
                rec.end_line = core.line() + offset;
                return Ok(true);
            }
            ReadRecordResult::End => {
                rec.len = 0;
                return Ok(false);
            }
        }
        if rec.raw.len() > MAX_RECORD_BYTES {
            let start = line_before + lead(&rec.raw);
            return Err(Error::data(format!(
                "the record starting on line {start} is larger than {} MiB: is a quote left open?",
                MAX_RECORD_BYTES >> 20
            ))
            .with("line", start));
        }
    }
}

impl<R: Read> Records<R> {
    pub(crate) fn new(input: R, options: &CsvOptions) -> Self {
        let input = Replay {
            head: Vec::new(),
            at: 0,
            inner: DecodeReader::new(input, options.encoding),
        };
        Records {
            input: BufReader::with_capacity(INPUT_BUFFER, input),
            core: core_reader(options.delimiter, options.quote),
            delimiter: options.delimiter,
            quote: options.quote,
            sniff: options.sniff_delimiter,
            skip_rows: options.skip_rows,
            footer: options.skip_footer_rows,
            offset: 0,
            cur: Rec::new(),
            ahead: VecDeque::new(),
            spare: Vec::new(),
            started: false,
            ended: false,
        }
    }

    /// Skips the lines before the header and guesses the delimiter.
    fn begin(&mut self) -> Result<()> {
        let read_error = |e| io_error(e, "cannot read CSV input");
        let mut line = Vec::new();
        for _ in 0..self.skip_rows {
            line.clear();
            let n = (&mut self.input)
                .take(MAX_RECORD_BYTES as u64)
                .read_until(b'\n', &mut line)
                .map_err(read_error)?;
            if n == 0 {
                break;
            }
            self.offset += 1;
        }
        if self.sniff {
            let mut sample = Vec::new();
            let mut complete = false;
            while sample.len() < SNIFF_BYTES as usize {
                let n = (&mut self.input)
                    .take(SNIFF_BYTES)
                    .read_until(b'\n', &mut sample)
                    .map_err(read_error)?;
                if n == 0 {
                    complete = true;
                    break;
                }
                if sample.iter().filter(|b| **b == b'\n').count() > 20 {
                    break;
                }
            }
            let delimiter = sniff_delimiter(&sample, self.quote, self.delimiter, complete);
            self.core = core_reader(delimiter, self.quote);
            // put the sample back in front of what is still buffered
            sample.extend_from_slice(self.input.buffer());
            let buffered = self.input.buffer().len();
            self.input.consume(buffered);
            let replay = self.input.get_mut();
            sample.extend_from_slice(&replay.head[replay.at..]);
            replay.head = sample;
            replay.at = 0;
        }
        Ok(())
    }

    /// Reads the next record; `false` at the end of the input (or of the data, before
    /// the footer).
    pub(crate) fn read(&mut self) -> Result<bool> {
        if !self.started {
            self.started = true;
            self.begin()?;
        }
        if self.footer == 0 {
            return read_record(&mut self.input, &mut self.core, self.offset, &mut self.cur);
        }
        while self.ahead.len() <= self.footer {
            if self.ended {
                // what is left is the footer
                self.spare.extend(self.ahead.drain(..));
                return Ok(false);
            }
            let mut rec = self.spare.pop().unwrap_or_else(Rec::new);
            if read_record(&mut self.input, &mut self.core, self.offset, &mut rec)? {
                self.ahead.push_back(rec);
            } else {
                self.ended = true;
                self.spare.push(rec);
            }
        }
        let next = self.ahead.pop_front().expect("filled above");
        let old = std::mem::replace(&mut self.cur, next);
        self.spare.push(old);
        Ok(true)
    }

    /// The encoding the input is decoded from (`None`: UTF-8 as is), for messages.
    pub(crate) fn decoding(&self) -> Option<&'static Encoding> {
        self.input.get_ref().inner.decoding()
    }

    /// What to say about a field that is not valid UTF-8 after decoding: the hint of
    /// [`super::encoding`], from the current record's bytes.
    pub(crate) fn undecodable(&self) -> String {
        hint(self.decoding(), &self.cur.raw)
    }

    /// The error for a header row with field `i` (zero-based) that does not decode.
    pub(crate) fn undecodable_header(&self, i: usize) -> Error {
        Error::data(format!(
            "the header row, field {}: {}",
            i + 1,
            self.undecodable()
        ))
        .with("line", self.line())
    }

    /// Fields in the current record.
    pub(crate) fn len(&self) -> usize {
        self.cur.len
    }

    /// The bytes of field `i` (zero-based) of the current record.
    pub(crate) fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.cur.ends[i - 1] };
        &self.cur.fields[start..self.cur.ends[i]]
    }

    /// Field `i` as text; empty when it is not UTF-8 (check with [`Self::invalid_utf8`] first).
    pub(crate) fn text(&self, i: usize) -> &str {
        std::str::from_utf8(self.field(i)).unwrap_or_default()
    }

    /// The first field that is not valid UTF-8 (zero-based), with the offset of its first bad byte.
    pub(crate) fn invalid_utf8(&self) -> Option<(usize, usize)> {
        let all = &self.cur.fields[..if self.cur.len == 0 {
            0
        } else {
            self.cur.ends[self.cur.len - 1]
        }];
        if all.is_ascii() {
            return None;
        }
        (0..self.cur.len).find_map(|i| {
            std::str::from_utf8(self.field(i))
                .err()
                .map(|e| (i, e.valid_up_to()))
        })
    }

    /// One-based line the current record starts on.
    pub(crate) fn line(&self) -> u64 {
        self.cur.line
    }

    /// The last line the current record touches.
    fn last_line(&self) -> u64 {
        let ends_in_newline = self.cur.raw.last() == Some(&b'\n');
        self.cur
            .end_line
            .saturating_sub(ends_in_newline as u64)
            .max(self.cur.line)
    }

    /// The current record as it was in the input (lossy UTF-8, without the line ending).
    pub(crate) fn raw_text(&self) -> String {
        let start = self
            .cur
            .raw
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(self.cur.raw.len());
        let end = self
            .cur
            .raw
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(start, |e| e + 1);
        String::from_utf8_lossy(&self.cur.raw[start..end.max(start)]).into_owned()
    }
}

/// Reads CSV into [`Message`]s: batches of the given schema and a [`Rejected`] for each
/// malformed record (see the module docs for the rules). An iterator; it reads nothing
/// until the first call to `next`. An `Err` item (unreadable input, a header that does not
/// fit the schema) ends the iteration.
///
/// [`Message`]: ferry_core::source::Message
/// [`Rejected`]: ferry_core::source::Rejected
pub struct CsvReader<R: Read> {
    records: Records<R>,
    schema: SchemaRef,
    null_text: String,
    has_header: bool,
    out: Output,
    /// Schema column → zero-based field in the file.
    mapping: Vec<Option<usize>>,
    /// Fields every record must have.
    width: usize,
    /// How numeric columns write numbers.
    numbers: NumberFormat,
    /// Whether each schema column is numeric (int64, float64, decimal).
    numeric: Vec<bool>,
    /// Each numeric column's value rewritten plain.
    scratch: Vec<String>,
}

impl<R: Read> CsvReader<R> {
    /// A reader of `input` producing batches of `schema` (every column a Ferry type).
    pub fn new(input: R, schema: SchemaRef, options: &CsvOptions) -> Result<Self> {
        options.validate()?;
        check_schema(&schema)?;
        let numeric: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| {
                matches!(
                    FerryType::of(f),
                    Some(FerryType::Int64 | FerryType::Float64 | FerryType::Decimal { .. })
                )
            })
            .collect();
        Ok(CsvReader {
            scratch: vec![String::new(); numeric.len()],
            numeric,
            numbers: options.numbers,
            records: Records::new(input, options),
            schema,
            null_text: options.null_text.clone(),
            has_header: options.has_header,
            out: Output::new(None),
            mapping: Vec::new(),
            width: 0,
        })
    }

    /// Reads the header (if any) and maps the file's fields to the schema's columns.
    fn start(&mut self) -> Result<()> {
        let columns = self.schema.fields().len();
        self.out.start_batch(&self.schema)?;
        if !self.has_header {
            self.mapping = (0..columns).map(Some).collect();
            self.width = columns;
            return Ok(());
        }
        if !self.records.read()? {
            self.out.done = true;
            return Ok(());
        }
        if let Some((i, _)) = self.records.invalid_utf8() {
            return Err(self.records.undecodable_header(i));
        }
        let names = column_names((0..self.records.len()).map(|i| self.records.text(i)));
        let line = self.records.line();
        self.mapping =
            map_header(&self.schema, &names, "the header").map_err(|e| e.with("line", line))?;
        self.width = names.len();
        Ok(())
    }

    /// Appends the current record to the batch; on failure, the field number (one-based)
    /// and what was wrong.
    fn push_record(&mut self) -> Option<(Option<u64>, String)> {
        let CsvReader {
            records,
            out,
            mapping,
            null_text,
            width,
            numbers,
            numeric,
            scratch,
            schema,
            ..
        } = self;
        let n = records.len();
        if n != *width {
            let mut msg = format!("expected {width} fields, found {n}");
            if records.last_line() > records.line() {
                msg.push_str(&format!(
                    " (the record spans lines {}–{}: is a quote left open?)",
                    records.line(),
                    records.last_line()
                ));
            }
            return Some((None, msg));
        }
        if let Some((i, at)) = records.invalid_utf8() {
            return Some((
                Some(i as u64 + 1),
                format!(
                    "field {} (bad byte at offset {at}): {}",
                    i + 1,
                    records.undecodable()
                ),
            ));
        }
        let builder = out.builder.as_mut()?;
        // numbers written the local way, rewritten plain into `scratch`
        let local = !numbers.is_plain();
        let rewrite = |c: usize, j: usize| local && numeric[c] && records.text(j) != null_text;
        for (c, j) in mapping.iter().enumerate().filter(|_| local) {
            let Some(j) = *j else { continue };
            if rewrite(c, j) && !numbers.normalize(records.text(j), &mut scratch[c]) {
                let thousands = match numbers.thousands {
                    Some(t) => format!(" and thousands separator {t:?}"),
                    None => String::new(),
                };
                return Some((
                    Some(j as u64 + 1),
                    format!(
                        "column `{}`: `{}` is not a number written with decimal separator {:?}{thousands}",
                        schema.field(c).name(),
                        preview(records.text(j)),
                        numbers.decimal
                    ),
                ));
            }
        }
        let cells = mapping.iter().enumerate().map(|(c, m)| {
            m.map(|j| {
                if rewrite(c, j) {
                    scratch[c].as_str()
                } else {
                    records.text(j)
                }
            })
        });
        match builder.push_text_row(cells, null_text) {
            Ok(()) => {
                out.accept(records.line());
                None
            }
            Err(e) => {
                let field = mapping
                    .get(e.column)
                    .copied()
                    .flatten()
                    .map(|j| j as u64 + 1);
                Some((field, format!("column `{}`: {}", e.name, e.message)))
            }
        }
    }
}

impl<R: Read> Steps for CsvReader<R> {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn begin(&mut self) -> Result<()> {
        self.start()
    }

    /// Reads one record; queues a batch when one is full, or a rejection.
    fn step(&mut self) -> Result<()> {
        if !self.records.read()? {
            return self.out.end();
        }
        if let Some((column, message)) = self.push_record() {
            self.out.reject(
                (Some(self.records.line()), column, None),
                self.records.raw_text(),
                message,
            )?;
        }
        self.out.finish_if_full()
    }
}

reader_api!("Records", [R: Read] CsvReader<R>);

/// Writes batches as CSV: a header row (when `has_header`), then one record per row;
/// values as [`write_text`] spells them, NULL as `null_text`. Fields are quoted only when
/// needed. Buffered; call [`CsvWriter::flush`] or [`CsvWriter::into_inner`] at the end.
pub struct CsvWriter<W: Write> {
    out: ::csv::Writer<Counting<W>>,
    types: Vec<FerryType>,
    null_text: String,
    cell: String,
    rows: u64,
}

fn write_error(e: ::csv::Error) -> Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => io_error(e, "cannot write CSV"),
        other => Error::internal(format!("cannot write CSV: {other:?}")),
    }
}

impl<W: Write> CsvWriter<W> {
    /// A writer of batches of `schema` to `out`; writes the header at once when `options.has_header`.
    pub fn new(out: W, schema: SchemaRef, options: &CsvOptions) -> Result<Self> {
        options.validate()?;
        let types = column_types(&schema)?;
        let out = ::csv::WriterBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .buffer_capacity(64 << 10)
            .from_writer(Counting {
                inner: out,
                bytes: 0,
            });
        let mut w = CsvWriter {
            out,
            types,
            null_text: options.null_text.clone(),
            cell: String::new(),
            rows: 0,
        };
        if options.has_header && !schema.fields().is_empty() {
            w.out
                .write_record(schema.fields().iter().map(|f| f.name().as_bytes()))
                .map_err(write_error)?;
        }
        Ok(w)
    }

    /// Writes every row of `batch`.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        check_width(batch, self.types.len(), "CSV")?;
        let columns = batch.columns();
        for row in 0..batch.num_rows() {
            for (column, ty) in columns.iter().zip(&self.types) {
                self.cell.clear();
                let value = if write_text(column.as_ref(), *ty, row, &mut self.cell) {
                    self.cell.as_bytes()
                } else {
                    self.null_text.as_bytes()
                };
                self.out.write_field(value).map_err(write_error)?;
            }
            self.out.write_record(None::<&[u8]>).map_err(write_error)?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Pushes buffered bytes to the inner writer and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| io_error(e, "cannot write CSV"))
    }

    /// Rows written so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes handed to the inner writer so far; exact after [`Self::flush`].
    pub fn bytes(&self) -> u64 {
        self.out.get_ref().bytes
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.out.get_ref().inner
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> Result<W> {
        self.out.into_inner().map(|c| c.inner).map_err(|e| {
            io_error(
                std::io::Error::new(e.error().kind(), e.error().to_string()),
                "cannot write CSV",
            )
        })
    }
}

/// A German Excel export's layout, for tests: cp1252, the delimiter guessed, `1.234,56`,
/// `skip_rows` title lines and a totals line.
#[cfg(test)]
pub(crate) fn german_export(skip_rows: usize) -> CsvOptions {
    CsvOptions {
        sniff_delimiter: true,
        skip_rows,
        skip_footer_rows: 1,
        numbers: NumberFormat {
            decimal: ',',
            thousands: Some('.'),
        },
        encoding: Some(encoding_rs::WINDOWS_1252),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_schema::Schema;
    use ferry_testkit::assert_says;

    use super::super::reader::read_all;
    use super::*;
    use ferry_core::source::{Message, Rejected};
    use ferry_core::values::BatchBuilder;
    use ferry_core::ErrorKind;

    fn schema(cols: &[(&str, FerryType)]) -> SchemaRef {
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| t.field(*n, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn read(
        data: &[u8],
        schema: SchemaRef,
        options: &CsvOptions,
    ) -> (Vec<RecordBatch>, Vec<Rejected>) {
        let reader = CsvReader::new(data, schema, options)
            .unwrap()
            .with_file("t.csv")
            .with_batch_size(2);
        read_all(reader)
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    fn strings(batches: &[RecordBatch], col: usize) -> Vec<Option<String>> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(col)
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn reads_quotes_embedded_newlines_and_bom() {
        let data = "\u{feff}id,name\n1,\"a, \"\"b\"\"\"\n2,\"line1\nline2\"\n3,\n".as_bytes();
        let s = schema(&[("id", FerryType::Int64), ("name", FerryType::String)]);
        let (batches, rejected) = read(data, s, &CsvOptions::default());
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(ids(&batches), vec![1, 2, 3]);
        assert_eq!(
            strings(&batches, 1),
            vec![Some("a, \"b\"".into()), Some("line1\nline2".into()), None]
        );
        assert!(batches.iter().all(|b| b.num_rows() <= 2));
    }

    #[test]
    fn bad_records_are_rejected_with_positions_and_the_rest_is_read() {
        let mut data =
            b"id,name,n\r\n1,a,10\r\n\r\n2,b\r\n3,\"multi\r\nline\",30\r\n4,c,x\r\n".to_vec();
        data.extend_from_slice(b"5,\xff\xfe,50\r\n6,f,60,extra\r\n7,g,70");
        let s = schema(&[
            ("id", FerryType::Int64),
            ("name", FerryType::String),
            ("n", FerryType::Int64),
        ]);
        let (batches, rejected) = read(&data, s, &CsvOptions::default());
        assert_eq!(ids(&batches), vec![1, 3, 7]);
        let got: Vec<_> = rejected
            .iter()
            .map(|r| (r.position.line, r.position.column))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(4), None),
                (Some(7), Some(3)),
                (Some(8), Some(2)),
                (Some(9), None)
            ]
        );
        assert_eq!(rejected[0].raw, "2,b");
        assert_says(&rejected[0], "expected 3 fields, found 2");
        assert_eq!(rejected[1].raw, "4,c,x");
        assert_says(&rejected[1], "column `n`: expected int64");
        assert_says(&rejected[2], "not valid UTF-8");
        assert_eq!(rejected[2].raw, "5,\u{fffd}\u{fffd},50");
        assert_eq!(rejected[3].raw, "6,f,60,extra");
        assert_eq!(rejected[0].position.file.as_deref(), Some("t.csv"));
    }

    #[test]
    fn open_quote_is_rejected_and_names_the_lines() {
        let data = b"id,name\n\"open,1\n2,b\n";
        let s = schema(&[("id", FerryType::Int64), ("name", FerryType::String)]);
        let (batches, rejected) = read(data, s, &CsvOptions::default());
        assert!(batches.is_empty());
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position.line, Some(2));
        assert_says(&rejected[0], "spans lines 2–3");
    }

    #[test]
    fn header_maps_columns_by_name_and_rejects_unknown_ones() {
        let s = schema(&[
            ("id", FerryType::Int64),
            ("name", FerryType::String),
            ("missing", FerryType::Int64),
        ]);
        let (batches, rejected) = read(b"name,id\nx,1\n", s.clone(), &CsvOptions::default());
        assert!(rejected.is_empty());
        assert_eq!(ids(&batches), vec![1]);
        assert_eq!(strings(&batches, 1), vec![Some("x".into())]);
        assert!(batches[0].column(2).is_null(0));
        let err = CsvReader::new(&b"id,other\n1,2\n"[..], s, &CsvOptions::default())
            .unwrap()
            .with_file("f.csv")
            .find_map(|m| m.err())
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
        assert!(
            err.to_string().contains("`other`") && err.to_string().contains("f.csv"),
            "{err}"
        );
    }

    #[test]
    fn options_delimiter_quote_null_and_no_header() {
        let opts = CsvOptions {
            delimiter: b';',
            quote: b'\'',
            has_header: false,
            null_text: "NULL".into(),
            ..Default::default()
        };
        let s = schema(&[
            ("column_1", FerryType::Int64),
            ("column_2", FerryType::String),
        ]);
        let (batches, rejected) = read(b"1;'a;b'\n2;NULL\n3;\n", s, &opts);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            strings(&batches, 1),
            vec![Some("a;b".into()), None, Some(String::new())]
        );
        assert!(CsvOptions {
            delimiter: b'"',
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    fn floats(batches: &[RecordBatch], col: usize) -> Vec<Option<f64>> {
        use arrow_array::types::Float64Type;
        batches
            .iter()
            .flat_map(|b| {
                b.column(col)
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn cp1252_semicolons_decimal_commas_preamble_and_footer() {
        // what Excel writes on a German Windows: cp1252, `;`, `1.234,56`
        let data = b"Export vom 01.02.2024\r\n\r\nid;name;amount\r\n1;M\xfcller;1.234,56\r\n2;Fran\xe7ois;-7,5\r\n3;x;1,2,3\r\nSumme;;1.227,06\r\n";
        let s = schema(&[
            ("id", FerryType::Int64),
            ("name", FerryType::String),
            ("amount", FerryType::Float64),
        ]);
        let opts = german_export(2);
        let (batches, rejected) = read(data, s.clone(), &opts);
        assert_eq!(ids(&batches), vec![1, 2]);
        assert_eq!(
            strings(&batches, 1),
            vec![Some("Müller".into()), Some("François".into())]
        );
        assert_eq!(floats(&batches, 2), vec![Some(1234.56), Some(-7.5)]);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(rejected[0].position.line, Some(6));
        assert_eq!(rejected[0].position.column, Some(3));
        assert!(
            rejected[0]
                .message
                .contains("`1,2,3` is not a number written with decimal separator ','"),
            "{}",
            rejected[0].message
        );
        // the same file read as UTF-8: every accented row rejected, naming the encoding
        let opts = CsvOptions {
            encoding: None,
            ..opts
        };
        let (batches, rejected) = read(data, s, &opts);
        assert!(batches.is_empty());
        assert_eq!(rejected.len(), 3);
        assert_eq!(rejected[0].position.line, Some(4));
        assert_eq!(rejected[0].position.column, Some(2));
        assert_eq!(rejected[0].raw, "1;M\u{fffd}ller;1.234,56");
        assert!(
            rejected[0].message.contains(
                "not valid UTF-8; it looks like windows-1252: set encoding = \"windows-1252\""
            ),
            "{}",
            rejected[0].message
        );
    }

    #[test]
    fn an_unmappable_row_is_rejected_and_the_rest_read() {
        let s = schema(&[("id", FerryType::Int64), ("name", FerryType::String)]);
        let opts = CsvOptions {
            encoding: Some(encoding_rs::SHIFT_JIS),
            ..Default::default()
        };
        let (batches, rejected) = read(b"id,name\n1,a\n2,\x85\x20\n3,c\n", s, &opts);
        assert_eq!(ids(&batches), vec![1, 3]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position.line, Some(3));
        assert_says(&rejected[0], "not valid shift_jis");
    }

    #[test]
    fn utf16_with_a_mark_and_sniffed_tabs() {
        let text = "id\tname\n1\tZoë\n2\t\"a\tb\"\n";
        let mut data = vec![0xFF, 0xFE];
        data.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let s = schema(&[("id", FerryType::Int64), ("name", FerryType::String)]);
        let opts = CsvOptions {
            sniff_delimiter: true,
            ..Default::default()
        };
        let (batches, rejected) = read(&data, s, &opts);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(ids(&batches), vec![1, 2]);
        assert_eq!(
            strings(&batches, 1),
            vec![Some("Zoë".into()), Some("a\tb".into())]
        );
    }

    #[test]
    fn footer_is_held_back_across_batches_and_short_files() {
        let s = schema(&[("id", FerryType::Int64)]);
        let opts = CsvOptions {
            skip_footer_rows: 2,
            ..Default::default()
        };
        let (batches, rejected) = read(b"id\n1\n2\n3\n4\n5\ntotal\n\nend\n", s.clone(), &opts);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
        let (batches, _) = read(b"id\nfooter\n", s.clone(), &opts);
        assert!(batches.is_empty());
        let too_many = CsvOptions {
            skip_footer_rows: MAX_FOOTER_ROWS + 1,
            ..Default::default()
        };
        assert!(too_many.validate().is_err());
        // more lines to skip than the file has
        let opts = CsvOptions {
            skip_rows: 5,
            ..Default::default()
        };
        assert!(read(b"a\nb\n", s, &opts).0.is_empty());
    }

    #[test]
    fn empty_input_and_header_only_yield_nothing() {
        let s = schema(&[("id", FerryType::Int64)]);
        assert_eq!(read(b"", s.clone(), &CsvOptions::default()).0.len(), 0);
        assert_eq!(read(b"id\n", s, &CsvOptions::default()).0.len(), 0);
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let s = schema(&[
            ("id", FerryType::Int64),
            ("name", FerryType::String),
            ("at", FerryType::Timestamp),
        ]);
        let mut b = BatchBuilder::new(s.clone(), 3).unwrap();
        b.push_text_row(
            [Some("1"), Some("a,\"b\"\nc"), Some("2024-01-02T03:04:05Z")],
            "\0",
        )
        .unwrap();
        b.push_text_row([Some("2"), None, None], "\0").unwrap();
        let batch = b.finish().unwrap();
        let mut w = CsvWriter::new(Vec::new(), s.clone(), &CsvOptions::default()).unwrap();
        w.write_batch(&batch).unwrap();
        w.flush().unwrap();
        assert_eq!(w.rows(), 2);
        let bytes = w.bytes();
        let out = w.into_inner().unwrap();
        assert_eq!(bytes, out.len() as u64);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "id,name,at\n1,\"a,\"\"b\"\"\nc\",2024-01-02T03:04:05Z\n2,,\n"
        );
        let (batches, rejected) = read(&out, s, &CsvOptions::default());
        assert!(rejected.is_empty());
        let back = arrow_select::concat::concat_batches(&batch.schema(), &batches).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn single_column_null_survives_as_quoted_empty() {
        let s = schema(&[("name", FerryType::String)]);
        let mut b = BatchBuilder::new(s.clone(), 2).unwrap();
        b.push_text_row([None], "").unwrap();
        b.push_text_row([Some("x")], "").unwrap();
        let mut w = CsvWriter::new(Vec::new(), s.clone(), &CsvOptions::default()).unwrap();
        w.write_batch(&b.finish().unwrap()).unwrap();
        let out = w.into_inner().unwrap();
        assert_eq!(out, b"name\n\"\"\nx\n");
        let (batches, _) = read(&out, s, &CsvOptions::default());
        assert_eq!(strings(&batches, 0), vec![None, Some("x".into())]);
    }

    /// Throughput on 8 mixed columns; run with
    /// `cargo test -p ferry-core --release codec::csv::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let rows = 1_000_000;
        let mut data = String::from("id,name,email,amount,quantity,created_at,active,country\n");
        for i in 0..rows {
            data.push_str(&format!(
                "{i},Name {i},user{i}@example.com,{}.{:02},{},2024-05-{:02}T12:{:02}:00Z,{},{}\n",
                i % 10_000,
                i % 100,
                i % 50,
                i % 28 + 1,
                i % 60,
                if i % 2 == 0 { "true" } else { "false" },
                ["GB", "US", "DE", "FR"][i % 4]
            ));
        }
        let s = schema(&[
            ("id", FerryType::Int64),
            ("name", FerryType::String),
            ("email", FerryType::String),
            ("amount", FerryType::Float64),
            ("quantity", FerryType::Int64),
            ("created_at", FerryType::Timestamp),
            ("active", FerryType::Bool),
            ("country", FerryType::String),
        ]);
        let t = std::time::Instant::now();
        let mut n = 0;
        for m in CsvReader::new(data.as_bytes(), s, &CsvOptions::default()).unwrap() {
            match m.unwrap() {
                Message::Batch(b) => n += b.num_rows(),
                Message::Positions(_) => {}
                other => panic!("{other:?}"),
            }
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, rows);
        println!(
            "{:.0} rows/s, {:.0} MB/s",
            rows as f64 / secs,
            data.len() as f64 / 1e6 / secs
        );
    }
}
