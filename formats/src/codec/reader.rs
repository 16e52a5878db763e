//! What every format reader shares: the messages it has queued, its counts, the batch
//! being built and the loop that turns its steps into an iterator.

use std::collections::{HashMap, HashSet, VecDeque};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::in_file;
use ferry_core::source::{Message, Position, Rejected, RowPositions, DEFAULT_BATCH_SIZE};
use ferry_core::values::BatchBuilder;
use ferry_core::{Error, ErrorKind, Result};

/// A reader's queue of messages and its counts.
pub(crate) struct Output {
    pub(crate) file: Option<String>,
    pub(crate) batch_size: usize,
    /// The batch being built (Parquet converts whole batches and builds none).
    pub(crate) builder: Option<BatchBuilder>,
    /// The line (Excel: the row) each row of the batch being built is on.
    pub(crate) lines: Vec<u64>,
    pub(crate) pending: VecDeque<Result<Message>>,
    /// Whether [`Steps::begin`] ran.
    started: bool,
    pub(crate) done: bool,
    pub(crate) rows: u64,
    pub(crate) rejected: u64,
}

impl Output {
    pub(crate) fn new(file: Option<String>) -> Self {
        Output {
            file,
            batch_size: DEFAULT_BATCH_SIZE,
            builder: None,
            lines: Vec::new(),
            pending: VecDeque::new(),
            started: false,
            done: false,
            rows: 0,
            rejected: 0,
        }
    }

    /// Starts building batches of `schema`.
    pub(crate) fn start_batch(&mut self, schema: &SchemaRef) -> Result<()> {
        self.builder = Some(BatchBuilder::new(
            schema.clone(),
            self.batch_size.min(1 << 16),
        )?);
        Ok(())
    }

    /// Counts a row just appended to the builder, found on `line`.
    pub(crate) fn accept(&mut self, line: u64) {
        self.rows += 1;
        self.lines.push(line);
    }

    /// Queues a rejected record of the input at `line`, `column` (one-based) or `key`,
    /// after the rows read before it (see `Message::Rejected`).
    pub(crate) fn reject(
        &mut self,
        (line, column, key): (Option<u64>, Option<u64>, Option<String>),
        raw: String,
        message: String,
    ) -> Result<()> {
        self.finish_batch()?;
        self.rejected += 1;
        let position = Position {
            file: self.file.clone(),
            line,
            column,
            key,
        };
        self.pending.push_back(Ok(Message::Rejected(Rejected {
            position,
            raw,
            message,
        })));
        Ok(())
    }

    /// Queues a batch that was not built here (its rows not yet counted).
    pub(crate) fn send(&mut self, batch: RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.pending.push_back(Ok(Message::Batch(batch)));
    }

    /// Queues the batch being built once it holds `batch_size` rows.
    pub(crate) fn finish_if_full(&mut self) -> Result<()> {
        if self
            .builder
            .as_ref()
            .is_some_and(|b| b.len() >= self.batch_size)
        {
            self.finish_batch()?;
        }
        Ok(())
    }

    /// The input is read: queues what is left.
    pub(crate) fn end(&mut self) -> Result<()> {
        self.done = true;
        self.finish_batch()
    }

    /// Queues the batch being built, with the lines of its rows.
    pub(crate) fn finish_batch(&mut self) -> Result<()> {
        if let Some(b) = self.builder.as_mut().filter(|b| !b.is_empty()) {
            let batch = b.finish()?;
            let lines = std::mem::take(&mut self.lines);
            if batch.num_rows() > 0 {
                self.pending
                    .push_back(Ok(Message::Positions(Box::new(RowPositions {
                        file: self.file.clone(),
                        lines,
                    }))));
                self.pending.push_back(Ok(Message::Batch(batch)));
            }
        }
        Ok(())
    }
}

/// Each schema column's place in a header of `names` (by name; `None`: not in the
/// header). A name the schema lacks is an error: `header` says where it is ("the header").
pub(crate) fn map_header(
    schema: &SchemaRef,
    names: &[String],
    header: &str,
) -> Result<Vec<Option<usize>>> {
    // by name through maps: a header may have thousands of columns
    let in_schema: HashSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let in_header: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !in_schema.contains(n.as_str()))
        .map(|n| format!("`{n}`"))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "{header} has column(s) {} that the stream's schema does not have (schema: {})",
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    Ok(schema
        .fields()
        .iter()
        .map(|f| in_header.get(f.name().as_str()).copied())
        .collect())
}

/// A reader that works in steps, each queueing what it read on its [`Output`].
pub(crate) trait Steps {
    fn output(&mut self) -> &mut Output;

    /// Reads what comes before the rows (a header), once, before the first step.
    fn begin(&mut self) -> Result<()> {
        Ok(())
    }

    /// Reads a little (a record, a row, a batch) and queues what came of it.
    fn step(&mut self) -> Result<()>;

    /// The reader ends with `e`: adds what it knows to it, lets go of what it holds.
    fn ended(&mut self, e: Error) -> Error {
        e
    }
}

/// The next message of `reader`: its queue first, then its steps until one queues some;
/// an error ends the reader.
pub(crate) fn next_message(reader: &mut impl Steps) -> Option<Result<Message>> {
    loop {
        if let Some(m) = reader.output().pending.pop_front() {
            return Some(m);
        }
        if reader.output().done {
            return None;
        }
        let read = if reader.output().started {
            reader.step()
        } else {
            reader.output().started = true;
            reader.begin()
        };
        if let Err(e) = read {
            let e = reader.ended(e);
            let out = reader.output();
            out.done = true;
            out.pending.push_back(Err(in_file(e, &out.file)));
        }
    }
}

/// The settings, counts and `Iterator` of a reader that implements [`Steps`] and keeps its
/// [`Output`] in `out`; `$what` names what it rejects ("Records").
macro_rules! reader_api {
    ($what:literal, [$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> $ty {
            /// Names the input (a file or object name) in positions and errors.
            pub fn with_file(mut self, file: impl Into<String>) -> Self {
                self.out.file = Some(file.into());
                self
            }

            /// Sets the rows per batch (default
            /// [`ferry_core::source::DEFAULT_BATCH_SIZE`]; at least 1).
            pub fn with_batch_size(mut self, batch_size: usize) -> Self {
                self.out.batch_size = batch_size.max(1);
                self
            }

            /// Good rows read so far.
            pub fn rows(&self) -> u64 {
                self.out.rows
            }

            #[doc = concat!($what, " rejected so far.")]
            pub fn rejected(&self) -> u64 {
                self.out.rejected
            }
        }

        impl<$($generics)*> Iterator for $ty {
            type Item = ferry_core::Result<ferry_core::source::Message>;

            fn next(&mut self) -> Option<Self::Item> {
                $crate::codec::reader::next_message(self)
            }
        }
    };
}

pub(crate) use reader_api;

/// The batches and the rejected records a reader yields, for tests; an error, or another
/// message than these and positions, fails the test.
#[cfg(test)]
pub(crate) fn read_all(
    reader: impl Iterator<Item = Result<Message>>,
) -> (Vec<RecordBatch>, Vec<Rejected>) {
    let (mut batches, mut rejected) = (Vec::new(), Vec::new());
    for m in reader {
        match m.unwrap() {
            Message::Batch(b) => batches.push(b),
            Message::Rejected(r) => rejected.push(r),
            Message::Positions(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    (batches, rejected)
}
