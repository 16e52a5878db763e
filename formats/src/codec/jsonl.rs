//! JSON Lines: one JSON object per line, read into batches and written from them.
//!
//! Rules: input is decoded as [`JsonlReader::with_encoding`] says (UTF-8 by default, UTF-16
//! after its byte-order mark; see [`super::encoding`]) and a line that does not decode is a
//! rejected record naming the likely encoding; a UTF-8 byte-order mark is skipped; blank lines are skipped; a line
//! that is not a JSON object, or whose values do not fit their columns, is a rejected
//! record with its line number, and the rest of the input is still read. Keys are matched
//! to columns by name; a missing key or `null` is NULL; keys the schema does not have are
//! ignored. Values convert as [`ferry_core::values::ColumnBuilder::append_json`] says (a JSON
//! column keeps any value as a document; strings parse as the column's type).
//!
//! Writing: values as [`ferry_core::values::to_json`] spells them, except that float64 NaN and
//! infinities, which JSON cannot hold, are written as the strings `"NaN"`, `"inf"` and
//! `"-inf"` (read back as the same floats). A JSON column's document is embedded as JSON,
//! so its key order and spacing are not kept, and the document `null` reads back as NULL.

use std::io::{BufRead, BufReader, Read, Write};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::checks::{check_width, column_types};
use super::encoding::{hint, DecodeReader, Encoding};
use super::reader::{reader_api, Output, Steps};
use super::{io_error, strip_bom, Counting, MAX_RECORD_BYTES};
use ferry_core::types::{check_schema, FerryType};
use ferry_core::values::to_json;
use ferry_core::{Error, Result};

const INPUT_BUFFER: usize = 256 << 10;

/// Reads JSON Lines into [`Message`]s: batches of the given schema and a [`Rejected`] for
/// each bad line (see the module docs). An iterator; it reads nothing until the first call
/// to `next`. An `Err` item (unreadable input, an overlong line) ends the iteration.
///
/// [`Message`]: ferry_core::source::Message
/// [`Rejected`]: ferry_core::source::Rejected
pub struct JsonlReader<R: Read> {
    input: BufReader<DecodeReader<R>>,
    line_buf: Vec<u8>,
    line: u64,
    schema: SchemaRef,
    out: Output,
}

impl<R: Read> JsonlReader<R> {
    /// A reader of `input` producing batches of `schema` (every column a Ferry type).
    pub fn new(input: R, schema: SchemaRef) -> Result<Self> {
        check_schema(&schema)?;
        Ok(JsonlReader {
            input: BufReader::with_capacity(INPUT_BUFFER, DecodeReader::new(input, None)),
            line_buf: Vec::with_capacity(1024),
            line: 0,
            schema,
            out: Output::new(None),
        })
    }

    /// Decodes the input from `encoding` (`None`: UTF-8, or UTF-16 after its byte-order mark).
    pub fn with_encoding(mut self, encoding: Option<&'static Encoding>) -> Self {
        self.input.get_mut().set_encoding(encoding);
        self
    }

    /// Reads the next line into `line_buf` (without its line ending); `false` at the end.
    fn read_line(&mut self) -> Result<bool> {
        self.line_buf.clear();
        let limit = MAX_RECORD_BYTES as u64 + 2;
        let n = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.line_buf)
            .map_err(|e| io_error(e, "cannot read JSON Lines input"))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if n as u64 == limit && self.line_buf.last() != Some(&b'\n') {
            return Err(Error::data(format!(
                "line {} is longer than {} MiB: is this really JSON Lines (one object per line)?",
                self.line,
                MAX_RECORD_BYTES >> 20
            ))
            .with("line", self.line));
        }
        while matches!(self.line_buf.last(), Some(b'\n' | b'\r')) {
            self.line_buf.pop();
        }
        Ok(true)
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<R: Read> Steps for JsonlReader<R> {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn begin(&mut self) -> Result<()> {
        self.out.start_batch(&self.schema)
    }

    fn step(&mut self) -> Result<()> {
        if !self.read_line()? {
            return self.out.end();
        }
        let bytes = if self.line == 1 {
            strip_bom(&self.line_buf)
        } else {
            &self.line_buf[..]
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let failure = match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => match std::str::from_utf8(bytes) {
                Err(bad) => Some((
                    Some(bad.valid_up_to() as u64 + 1),
                    format!(
                        "bad byte at offset {}: {}",
                        bad.valid_up_to(),
                        hint(self.input.get_ref().decoding(), bytes)
                    ),
                )),
                Ok(_) => {
                    let msg = e.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg);
                    Some((Some(e.column() as u64), format!("invalid JSON: {msg}")))
                }
            },
            Ok(serde_json::Value::Object(row)) => {
                let builder = self.out.builder.as_mut().expect("made in begin");
                match builder.push_json_row(&row) {
                    Ok(()) => {
                        self.out.accept(self.line);
                        None
                    }
                    Err(e) => Some((None, format!("column `{}`: {}", e.name, e.message))),
                }
            }
            Ok(other) => Some((
                None,
                format!("expected a JSON object, found {}", kind(&other)),
            )),
        };
        if let Some((column, message)) = failure {
            let raw = String::from_utf8_lossy(bytes).into_owned();
            self.out
                .reject((Some(self.line), column, None), raw, message)?;
        }
        self.out.finish_if_full()
    }
}

reader_api!("Lines", [R: Read] JsonlReader<R>);

/// Writes batches as JSON Lines: one object per row, keys in schema order, values as
/// [`to_json`] spells them (NULL as `null`). Buffered per row; wrap a file in a
/// `BufWriter`, and call [`JsonlWriter::flush`] or [`JsonlWriter::into_inner`] at the end.
pub struct JsonlWriter<W: Write> {
    out: Counting<W>,
    /// `"name":` of each column, JSON-escaped once.
    keys: Vec<Vec<u8>>,
    types: Vec<FerryType>,
    line: Vec<u8>,
    rows: u64,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer of batches of `schema` to `out`.
    pub fn new(out: W, schema: SchemaRef) -> Result<Self> {
        let types = column_types(&schema)?;
        let mut keys = Vec::new();
        for f in schema.fields() {
            let mut k = serde_json::to_vec(f.name())?;
            k.push(b':');
            keys.push(k);
        }
        Ok(JsonlWriter {
            out: Counting {
                inner: out,
                bytes: 0,
            },
            keys,
            types,
            line: Vec::with_capacity(1024),
            rows: 0,
        })
    }

    /// Writes every row of `batch`.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        check_width(batch, self.types.len(), "JSON Lines")?;
        let columns = batch.columns();
        for row in 0..batch.num_rows() {
            self.line.clear();
            self.line.push(b'{');
            for (i, (column, ty)) in columns.iter().zip(&self.types).enumerate() {
                if i > 0 {
                    self.line.push(b',');
                }
                self.line.extend_from_slice(&self.keys[i]);
                if *ty == FerryType::String && !column.is_null(row) {
                    serde_json::to_writer(&mut self.line, column.as_string::<i32>().value(row))?;
                } else if *ty == FerryType::Float64
                    && !column.is_null(row)
                    && !column.as_primitive::<Float64Type>().value(row).is_finite()
                {
                    // JSON has no NaN or infinity: write "NaN" / "inf" / "-inf" as strings,
                    // which the reader parses back (`null` would lose the value)
                    let v = column.as_primitive::<Float64Type>().value(row);
                    serde_json::to_writer(&mut self.line, &v.to_string())?;
                } else {
                    serde_json::to_writer(&mut self.line, &to_json(column.as_ref(), *ty, row))?;
                }
            }
            self.line.extend_from_slice(b"}\n");
            self.out
                .write_all(&self.line)
                .map_err(|e| io_error(e, "cannot write JSON Lines"))?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Flushes the inner writer.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| io_error(e, "cannot write JSON Lines"))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes handed to the inner writer so far.
    pub fn bytes(&self) -> u64 {
        self.out.bytes
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.out.inner
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out.inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int64Type;
    use arrow_schema::Schema;
    use ferry_testkit::assert_says;

    use super::super::reader::read_all;
    use super::*;
    use ferry_core::source::{Message, Rejected};
    use ferry_core::values::BatchBuilder;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", true),
            FerryType::String.field("name", true),
            FerryType::Json.field("doc", true),
        ]))
    }

    fn read(data: &[u8]) -> (Vec<RecordBatch>, Vec<Rejected>) {
        let r = JsonlReader::new(data, schema())
            .unwrap()
            .with_file("t.jsonl")
            .with_batch_size(2);
        read_all(r)
    }

    #[test]
    fn reads_objects_skips_blank_lines_and_rejects_bad_ones() {
        let data = "\u{feff}{\"id\":1,\"name\":\"a\",\"doc\":{\"x\":[1]}}\n\n  \r\n{\"id\":\"x\"}\n{bad json\n[1,2]\n{\"id\":3,\"extra\":true}\r\n{\"id\":4,\"name\":null}";
        let (batches, rejected) = read(data.as_bytes());
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, vec![1, 3, 4]);
        let lines: Vec<_> = rejected.iter().map(|r| r.position.line.unwrap()).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        assert_says(&rejected[0], "column `id`: expected int64");
        assert!(
            rejected[1].message.starts_with("invalid JSON"),
            "{}",
            rejected[1].message
        );
        assert!(
            !rejected[1].message.contains("at line"),
            "{}",
            rejected[1].message
        );
        assert_says(&rejected[2], "found an array");
        assert_eq!(rejected[1].raw, "{bad json");
        assert_eq!(
            batches[0].column(2).as_string::<i32>().value(0),
            "{\"x\":[1]}"
        );
    }

    #[test]
    fn invalid_utf8_is_rejected_with_a_hint() {
        let (_, rejected) = read(b"{\"id\":1,\"name\":\"Jos\xe9 M\xfcller\"}\n{\"id\":2}\n");
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position.line, Some(1));
        assert!(
            rejected[0]
                .message
                .contains("set encoding = \"windows-1252\""),
            "{}",
            rejected[0].message
        );
        let r = JsonlReader::new(&b"{\"id\":1,\"name\":\"Jos\xe9\"}\n"[..], schema())
            .unwrap()
            .with_encoding(Some(encoding_rs::WINDOWS_1252));
        let names: Vec<String> = r
            .filter_map(|m| match m.unwrap() {
                Message::Batch(b) => Some(b.column(1).as_string::<i32>().value(0).to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec!["José".to_string()]);
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let mut b = BatchBuilder::new(schema(), 3).unwrap();
        b.push_text_row([Some("1"), Some("é \"q\"\n"), Some("{\"a\":1}")], "\0")
            .unwrap();
        b.push_text_row([Some("2"), None, None], "\0").unwrap();
        b.push_text_row([Some("3"), Some(""), Some("\"s\"")], "\0")
            .unwrap();
        let batch = b.finish().unwrap();
        let mut w = JsonlWriter::new(Vec::new(), schema()).unwrap();
        w.write_batch(&batch).unwrap();
        assert_eq!(w.rows(), 3);
        let bytes = w.bytes();
        let out = w.into_inner().unwrap();
        assert_eq!(bytes, out.len() as u64);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "{\"id\":1,\"name\":\"é \\\"q\\\"\\n\",\"doc\":{\"a\":1}}"
        );
        let (batches, rejected) = read(&out);
        assert!(rejected.is_empty(), "{rejected:?}");
        let back = arrow_select::concat::concat_batches(&schema(), &batches).unwrap();
        assert_eq!(back, batch);
    }
}
