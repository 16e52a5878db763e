//! Excel and OpenDocument workbooks (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`), read with
//! `calamine` into batches like CSV.
//!
//! A workbook is a zip (or an OLE file for `.xls`) whose index must be read first, so it
//! needs `Read + Seek` (see [`super::ChunkCursor`] for a store's random access). One sheet
//! is read whole into memory (a sheet holds at most 1,048,576 rows), then turned into
//! batches row by row.
//!
//! Cells become text the way a person sees them, then go through the same typing as CSV
//! ([`super::infer`], [`ferry_core::values::BatchBuilder`]):
//! - empty cells (and the cells of a merged area other than its top-left one, which
//!   holds the value) are NULL; a row with no value at all is skipped;
//! - numbers as Excel shows them: 15 significant digits, whole numbers without `.0`;
//! - dates and times (serial numbers formatted as dates, in the 1900 or the 1904 system)
//!   as `2024-05-01` or `2024-05-01 12:30:00`; a time without a date as `12:30:00`;
//! - formulas as the value Excel saved with them (the file's cached value);
//! - error cells (`#DIV/0!`) as their text, so a numeric column rejects that row.
//!
//! A row with a cell that does not fit its column's type is a [`Rejected`] naming the
//! file, the sheet, the row and the cell, and the rest of the sheet is still read.
//!
//! [`Rejected`]: ferry_core::source::Rejected

use std::io::{Read, Seek};
use std::path::Path;

use arrow_schema::SchemaRef;
use calamine::{Data, Range, Reader, Sheets};

use super::csv::{column_names, positional_names};
use super::in_file;
use super::infer::{infer_text_rows, InferOptions};
use super::reader::{map_header, reader_api, Output, Steps};
use ferry_core::types::check_schema;
use ferry_core::{Error, ErrorKind, Result};

/// Which sheet of a workbook a stream reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sheet {
    /// The first sheet (default).
    #[default]
    First,
    /// The sheet of this name (exact, else ignoring case).
    Name(String),
    /// The sheet at this one-based position.
    Index(usize),
}

impl std::fmt::Display for Sheet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sheet::First => f.write_str("the first sheet"),
            Sheet::Name(n) => write!(f, "sheet \"{n}\""),
            Sheet::Index(i) => write!(f, "sheet {i}"),
        }
    }
}

/// A block of cells, `B3:F200` (or `B3:F` to the last row): zero-based, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellRange {
    /// First row.
    pub first_row: u32,
    /// First column.
    pub first_col: u32,
    /// Last row (`None`: the sheet's last row).
    pub last_row: Option<u32>,
    /// Last column.
    pub last_col: u32,
}

impl CellRange {
    /// Parses `B3:F200` or `B3:F` (letters then a one-based row; case-insensitive).
    pub fn parse(text: &str) -> Result<CellRange> {
        let bad = || {
            Error::config(format!(
                "`range = \"{text}\"` is not a cell range: write the top-left and bottom-right cells, e.g. `B3:F200` (or `B3:F` to read to the last row)"
            ))
        };
        let (a, b) = text.trim().split_once(':').ok_or_else(bad)?;
        let (first_col, first_row) = cell(a).ok_or_else(bad)?;
        let (last_col, last_row) = cell(b).ok_or_else(bad)?;
        let first_row = first_row.ok_or_else(bad)?;
        if last_col < first_col || last_row.is_some_and(|r| r < first_row) {
            return Err(bad());
        }
        Ok(CellRange {
            first_row,
            first_col,
            last_row,
            last_col,
        })
    }
}

/// `C14` → (column 2, row 13), zero-based; the row may be missing.
fn cell(text: &str) -> Option<(u32, Option<u32>)> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(text.len());
    let (letters, digits) = text.split_at(split);
    if letters.is_empty() || letters.len() > 3 || !letters.chars().all(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    let col = letters.bytes().fold(0u32, |n, c| {
        n * 26 + u32::from(c.to_ascii_uppercase() - b'A' + 1)
    }) - 1;
    let row = match digits {
        "" => None,
        d => Some(d.parse::<u32>().ok().filter(|&r| r >= 1)? - 1),
    };
    Some((col, row))
}

/// The letters of a zero-based column: 0 → `A`, 27 → `AB`.
pub fn column_letters(mut col: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// How a stream reads its workbooks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExcelOptions {
    /// The sheet to read.
    pub sheet: Sheet,
    /// The one-based row that names the columns (`Some(0)`: none, the columns are
    /// `column_1` …; `None`: the first row of `range`, else row 1).
    pub header_row: Option<u32>,
    /// The cells to read (default: every used cell of the sheet).
    pub range: Option<CellRange>,
}

/// The kind of workbook a name says (`.ods`, `.xlsb`, `.xls`), else from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

fn kind<R: Read + Seek>(input: &mut R, name: Option<&str>) -> Result<Kind> {
    let ext = name
        .and_then(|n| Path::new(n).extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut magic = [0u8; 4];
    let n = crate::fill::read_up_to(input, &mut magic)
        .map_err(|e| super::io_error(e, "cannot read the workbook"))?;
    input
        .rewind()
        .map_err(|e| super::io_error(e, "cannot read the workbook"))?;
    Ok(match (&magic[..n], ext.as_deref()) {
        ([0xD0, 0xCF, 0x11, 0xE0], _) => Kind::Xls,
        (_, Some("ods")) => Kind::Ods,
        (_, Some("xlsb")) => Kind::Xlsb,
        (_, Some("xls")) => Kind::Xls,
        _ => Kind::Xlsx,
    })
}

fn book_error(e: impl std::fmt::Display) -> Error {
    Error::data(format!(
        "not a readable workbook (.xlsx, .xlsm, .xlsb, .xls or .ods): {e}"
    ))
}

/// Opens a workbook; `name` (its file name) tells `.ods` and `.xlsb` from `.xlsx`.
fn open<R: Read + Seek>(mut input: R, name: Option<&str>) -> Result<Sheets<R>> {
    // calamine may panic on a damaged file: a panic is one more way a file is unreadable
    let kind = kind(&mut input, name)?;
    guard(move || {
        Ok(match kind {
            Kind::Xlsx => Sheets::Xlsx(calamine::open_workbook_from_rs(input).map_err(book_error)?),
            Kind::Xlsb => Sheets::Xlsb(calamine::open_workbook_from_rs(input).map_err(book_error)?),
            Kind::Xls => Sheets::Xls(calamine::open_workbook_from_rs(input).map_err(book_error)?),
            Kind::Ods => Sheets::Ods(calamine::open_workbook_from_rs(input).map_err(book_error)?),
        })
    })
}

/// Runs `f`, turning a panic inside calamine into an error.
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(book_error("the workbook is damaged (the reader gave up)")))
}

/// The sheet names of a workbook, in workbook order.
pub fn sheet_names<R: Read + Seek>(input: R, name: Option<&str>) -> Result<Vec<String>> {
    Ok(open(input, name)?.sheet_names())
}

/// One sheet, loaded, and where its columns and rows are.
struct Loaded {
    sheet: String,
    cells: Range<Data>,
    /// Columns read, zero-based, inclusive.
    cols: (u32, u32),
    /// The header row, zero-based, if any.
    header: Option<u32>,
    /// Data rows, zero-based, inclusive (empty when first > last).
    rows: (u32, u32),
}

fn load<R: Read + Seek>(input: R, name: Option<&str>, options: &ExcelOptions) -> Result<Loaded> {
    let mut book = open(input, name)?;
    let names = book.sheet_names();
    let sheet = match &options.sheet {
        Sheet::First => names.first().cloned(),
        Sheet::Name(want) => names
            .iter()
            .find(|n| *n == want)
            .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(want)))
            .cloned(),
        Sheet::Index(i) => i.checked_sub(1).and_then(|i| names.get(i)).cloned(),
    };
    let Some(sheet) = sheet else {
        let mut msg = format!(
            "the workbook has no {} (sheets: {})",
            options.sheet,
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Sheet::Name(want) = &options.sheet {
            if let Some(near) = ferry_core::suggest::nearest(want, names.iter().map(String::as_str))
            {
                msg.push_str(&format!("; did you mean `sheet = \"{near}\"`?"));
            }
        }
        return Err(Error::new(ErrorKind::NotFound, msg));
    };
    let cells = guard(|| {
        book.worksheet_range(&sheet)
            .map_err(|e| book_error(format!("sheet \"{sheet}\": {e}")))
    })?;
    let (used_start, used_end) = match (cells.start(), cells.end()) {
        (Some(s), Some(e)) => (s, e),
        _ => ((0, 0), (0, 0)),
    };
    let empty = cells.is_empty();
    let (cols, first, last) = match options.range {
        Some(r) => (
            (r.first_col, r.last_col),
            r.first_row,
            r.last_row.unwrap_or(used_end.0),
        ),
        None => ((used_start.1, used_end.1), used_start.0, used_end.0),
    };
    let header = match options.header_row {
        Some(0) => None,
        Some(h) => Some(h - 1),
        None => Some(first),
    };
    let data_first = match header {
        Some(h) => (h + 1).max(first),
        None => first,
    };
    let rows = if empty { (1, 0) } else { (data_first, last) };
    Ok(Loaded {
        sheet,
        cells,
        cols,
        header,
        rows,
    })
}

impl Loaded {
    /// The text of the cell at (`row`, `col`), as in the module docs; `None` when empty.
    fn text<'a>(&'a self, row: u32, col: u32, buf: &'a mut String) -> Option<&'a str> {
        let cell = self.cells.get_value((row, col))?;
        cell_text(cell, buf)
    }

    /// The column names: the header row's cells, else `column_N`.
    fn names(&self) -> Vec<String> {
        let width = (self.cols.1 - self.cols.0 + 1) as usize;
        match self.header {
            None => positional_names(width),
            Some(h) => {
                let mut buf = String::new();
                let cells: Vec<String> = (self.cols.0..=self.cols.1)
                    .map(|c| self.text(h, c, &mut buf).unwrap_or("").to_string())
                    .collect();
                column_names(cells.iter().map(String::as_str))
            }
        }
    }

    /// The texts of a row, `None` when every cell is empty.
    fn row(&self, row: u32) -> Option<Vec<Option<String>>> {
        let mut buf = String::new();
        let cells: Vec<Option<String>> = (self.cols.0..=self.cols.1)
            .map(|c| self.text(row, c, &mut buf).map(str::to_string))
            .collect();
        cells.iter().any(Option::is_some).then_some(cells)
    }
}

/// A cell as text (see the module docs); `None` for an empty cell.
fn cell_text<'a>(cell: &'a Data, buf: &'a mut String) -> Option<&'a str> {
    use std::fmt::Write;
    buf.clear();
    match cell {
        Data::Empty => return None,
        Data::String(s) => return Some(s),
        Data::DurationIso(s) => return Some(s),
        // OpenDocument dates: `2024-05-01` or `2024-05-01T12:30:00`
        Data::DateTimeIso(s) => buf.push_str(&s.replacen('T', " ", 1)),
        Data::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Data::Float(f) => number(*f, buf),
        Data::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Data::Error(e) => {
            let _ = write!(buf, "{e}");
        }
        Data::DateTime(d) => {
            let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
            let serial = d.as_f64();
            if d.is_duration() {
                let total = (serial * 86_400.0).round() as i64;
                let _ = write!(
                    buf,
                    "{}:{:02}:{:02}",
                    total / 3600,
                    total / 60 % 60,
                    total % 60
                );
            } else if (0.0..1.0).contains(&serial) && y < 1904 {
                // a time of day without a date (1900 system: day 0)
                let _ = write!(buf, "{h:02}:{mi:02}:{s:02}");
            } else {
                let _ = write!(buf, "{y:04}-{mo:02}-{da:02}");
                if (h, mi, s, ms) != (0, 0, 0, 0) {
                    let _ = write!(buf, " {h:02}:{mi:02}:{s:02}");
                    if ms != 0 {
                        let _ = write!(buf, ".{ms:03}");
                    }
                }
            }
        }
    }
    Some(buf.as_str())
}

/// A number as Excel shows it: 15 significant digits, whole numbers without a fraction.
fn number(f: f64, buf: &mut String) {
    use std::fmt::Write;
    if !f.is_finite() {
        let _ = write!(buf, "{f}");
        return;
    }
    // round to 15 significant digits, as Excel does: 0.1 + 0.2 shows as 0.3
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if rounded.fract() == 0.0 && rounded.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(buf, "{}", rounded as i64);
    } else {
        let _ = write!(buf, "{rounded}");
    }
}

/// Infers the schema of a workbook's sheet from its header (or `column_N` names) and the
/// first `options.sample_rows` rows with a value.
pub fn infer_excel<R: Read + Seek>(
    input: R,
    name: Option<&str>,
    excel: &ExcelOptions,
    options: &InferOptions,
) -> Result<SchemaRef> {
    let loaded = load(input, name, excel)?;
    let names = loaded.names();
    let rows = (loaded.rows.0..=loaded.rows.1)
        .filter_map(|r| loaded.row(r))
        .take(options.sample_rows);
    infer_text_rows(names, rows, options).map_err(|e| e.with("sheet", &loaded.sheet))
}

/// Reads one sheet of a workbook into [`Message`]s: batches of the given schema, a
/// [`Rejected`] for each row with a cell that does not fit its column, and
/// [`RowPositions`] (the rows are the sheet's one-based row numbers). An iterator.
///
/// [`Message`]: ferry_core::source::Message
/// [`Rejected`]: ferry_core::source::Rejected
/// [`RowPositions`]: ferry_core::source::RowPositions
pub struct ExcelReader {
    loaded: Loaded,
    schema: SchemaRef,
    out: Output,
    /// Schema column → zero-based column of the sheet.
    mapping: Vec<Option<u32>>,
    /// The next row to read (zero-based).
    next_row: u32,
}

impl ExcelReader {
    /// Opens the workbook `input` and loads the sheet `options` names; `name` is the
    /// file's name (it tells `.ods` and `.xlsb` apart, and names the file in positions).
    pub fn new<R: Read + Seek>(
        input: R,
        name: Option<&str>,
        schema: SchemaRef,
        options: &ExcelOptions,
    ) -> Result<Self> {
        check_schema(&schema)?;
        let file = name.map(str::to_string);
        let loaded = load(input, name, options).map_err(|e| in_file(e, &file))?;
        Ok(ExcelReader {
            next_row: loaded.rows.0,
            loaded,
            schema,
            out: Output::new(file),
            mapping: Vec::new(),
        })
    }

    /// The sheet being read.
    pub fn sheet(&self) -> &str {
        &self.loaded.sheet
    }

    /// Maps the sheet's columns to the schema's, by header name (else by position).
    fn start(&mut self) -> Result<()> {
        self.out.start_batch(&self.schema)?;
        let first = self.loaded.cols.0;
        if self.loaded.header.is_none() {
            self.mapping = (0..self.schema.fields().len() as u32)
                .map(|i| Some(first + i).filter(|c| *c <= self.loaded.cols.1))
                .collect();
            return Ok(());
        }
        let names = self.loaded.names();
        let header = format!("sheet \"{}\": the header row", self.loaded.sheet);
        let line = self.loaded.header.map_or(0, |h| h + 1);
        self.mapping = map_header(&self.schema, &names, &header)
            .map_err(|e| e.with("line", line))?
            .into_iter()
            .map(|i| i.map(|i| first + i as u32))
            .collect();
        Ok(())
    }

    fn push_row(&mut self, row: u32) -> Result<()> {
        let Some(cells) = self.loaded.row(row) else {
            return Ok(()); // a row with no value at all
        };
        let first = self.loaded.cols.0;
        let Some(builder) = self.out.builder.as_mut() else {
            return Ok(());
        };
        let texts = self
            .mapping
            .iter()
            .map(|m| m.and_then(|c| cells[(c - first) as usize].as_deref()));
        match builder.push_text_row(texts, "") {
            Ok(()) => {
                self.out.accept(u64::from(row) + 1);
                Ok(())
            }
            Err(e) => {
                let col = self.mapping.get(e.column).copied().flatten();
                self.reject(row, col, &cells, &e.name, &e.message)
            }
        }
    }

    fn reject(
        &mut self,
        row: u32,
        col: Option<u32>,
        cells: &[Option<String>],
        column: &str,
        message: &str,
    ) -> Result<()> {
        let sheet = &self.loaded.sheet;
        let cell = col.map(|c| format!("{}{}", column_letters(c), row + 1));
        let key = match &cell {
            Some(c) => format!("sheet \"{sheet}\", cell {c}"),
            None => format!("sheet \"{sheet}\""),
        };
        let message = format!(
            "sheet \"{sheet}\", row {}{}: column `{column}`: {message}",
            row + 1,
            cell.map(|c| format!(", cell {c}")).unwrap_or_default()
        );
        self.out.reject(
            (
                Some(u64::from(row) + 1),
                col.map(|c| u64::from(c) + 1),
                Some(key),
            ),
            serde_json::to_string(cells).unwrap_or_default(),
            message,
        )
    }
}

impl Steps for ExcelReader {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn begin(&mut self) -> Result<()> {
        self.start()
    }

    fn step(&mut self) -> Result<()> {
        if self.next_row > self.loaded.rows.1 {
            return self.out.end();
        }
        let row = self.next_row;
        self.next_row += 1;
        self.push_row(row)?;
        self.out.finish_if_full()
    }
    fn ended(&mut self, e: Error) -> Error {
        e.with("sheet", &self.loaded.sheet)
    }
}

reader_api!("Rows", [] ExcelReader);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_cells_parse() {
        assert_eq!(
            CellRange::parse("B3:F200").unwrap(),
            CellRange {
                first_row: 2,
                first_col: 1,
                last_row: Some(199),
                last_col: 5
            }
        );
        let open = CellRange::parse("aa1:ab").unwrap();
        assert_eq!(
            (open.first_col, open.last_col, open.last_row),
            (26, 27, None)
        );
        for bad in ["B3", "B:F9", "F3:B9", "B9:F3", "B0:F3", "3B:F4", "ABCD1:F2"] {
            assert!(CellRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(16383), "XFD");
    }

    #[test]
    fn numbers_show_as_excel_shows_them() {
        let show = |f: f64| {
            let mut s = String::new();
            number(f, &mut s);
            s
        };
        assert_eq!(show(3.0), "3");
        assert_eq!(show(-2.5), "-2.5");
        assert_eq!(show(0.1 + 0.2), "0.3");
        assert_eq!(show(1234567.891), "1234567.891");
        assert_eq!(show(1e20), "100000000000000000000");
    }
}
