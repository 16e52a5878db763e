//! The reading thread of a stream: files one after the other (a full refresh in name
//! order, an incremental read oldest first after the mark), each streamed through its
//! codec reader, batches handed back through a bounded channel, checkpoints between files.
//! An archive's entries are read one after the other, each through its own reader, and
//! the checkpoint after it covers the whole archive.

use std::io::Read;
use std::sync::Arc;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{Error, Message, Result};
use ferry_formats::age::Identities;
use ferry_formats::archive::Flow;
use ferry_formats::codec::{ChunkCursor, Format, FormatReader};
use ferry_formats::pgp::Decryptor;
use tokio::sync::mpsc::Sender;

use crate::after::Pending;
use crate::columns;
use crate::input::{Failure, Input};
use crate::mark::{order, Listed, Mark};
use crate::pick::listing;
use crate::store::{Listing, Store, Stream};
use crate::unpack::{entries, entry_name, entry_reader, Archive};

/// What the reading thread needs.
pub(crate) struct Job<S: Store> {
    pub store: Arc<S>,
    /// Where each file read in full is noted, for `after_read`.
    pub pending: Arc<Pending<S::Entry>>,
    pub stream: Arc<Stream<S::Place>>,
    /// The columns the files hold.
    pub schema: SchemaRef,
    /// With `file_column` or `name_date_column`: the stream's schema, `schema` and the
    /// added columns last.
    pub with_file: Option<SchemaRef>,
    pub incremental: bool,
    /// The mark the read starts from (incremental reads).
    pub mark: Mark,
    pub identities: Option<Arc<Identities>>,
    pub pgp: Option<Arc<Decryptor>>,
    pub limit: Option<u64>,
    pub batch_size: usize,
    pub rows: u64,
}

/// Reading stopped: the receiver is gone, the limit was reached, or an error was sent.
pub(crate) struct Stop;

type Tx = Sender<Result<Message>>;

impl<S: Store> Job<S> {
    /// Reads every file the read takes, sending batches, rejections and checkpoints.
    pub fn run(mut self, tx: &Tx) -> std::result::Result<(), Stop> {
        let listing = listing(&*self.store, &self.stream);
        let listing = listing.map_err(|e| self.fail(tx, e))?;
        let files = match (self.incremental, listing) {
            (false, Listing::Pages(pages)) => return self.pages(tx, pages),
            (false, Listing::Whole(files)) => files,
            (true, listing) => {
                let mark = &self.mark;
                let mut files = listing
                    .collect(|f| !mark.covers(f))
                    .map_err(|e| self.fail(tx, e))?;
                // oldest first, so each checkpoint is a plain high-water mark; with
                // `name_date`, in the order of the names' dates, where it may lag behind
                if self.stream.spec.name_date.is_none() {
                    files.sort_by(|a, b| order(a).cmp(&order(b)));
                }
                files
            }
        };
        // the checkpoint after a file covers the files, oldest first, up to the first one
        // still unread: a plain high-water mark when reading oldest first, and still
        // correct in name order (full refresh), where it may lag behind
        let n = files.len();
        let mut by_age: Vec<usize> = (0..n).collect();
        by_age.sort_by(|&a, &b| order(&files[a]).cmp(&order(&files[b])));
        let mut done = vec![false; n];
        let mut covered = 0;
        for (i, file) in files.iter().enumerate() {
            self.file(tx, file)?;
            self.pending.read(&self.stream.spec.name, file);
            done[i] = true;
            while covered < n && done[by_age[covered]] {
                self.mark.advance(&files[by_age[covered]]);
                covered += 1;
            }
            self.send(tx, Ok(Message::Checkpoint(self.mark.state())))?;
        }
        Ok(())
    }

    /// A full refresh of a paged listing, one page held at a time: the mark of everything
    /// read is only valid once everything was read, so it is sent at the end.
    fn pages(
        mut self,
        tx: &Tx,
        pages: Box<dyn Iterator<Item = Result<Vec<S::Entry>>> + Send>,
    ) -> std::result::Result<(), Stop> {
        for page in pages {
            let page = page.map_err(|e| self.fail(tx, e))?;
            for file in &page {
                self.file(tx, file)?;
                self.pending.read(&self.stream.spec.name, file);
                self.mark.advance(file);
            }
        }
        let state = self.mark.state();
        if !state.is_null() {
            self.send(tx, Ok(Message::Checkpoint(state)))?;
        }
        Ok(())
    }

    fn send(&self, tx: &Tx, m: Result<Message>) -> std::result::Result<(), Stop> {
        let failed = m.is_err();
        if tx.blocking_send(m).is_err() || failed {
            return Err(Stop);
        }
        Ok(())
    }

    fn fail(&self, tx: &Tx, e: Error) -> Stop {
        let _ = tx.blocking_send(Err(e.with("stream", &self.stream.spec.name)));
        Stop
    }

    /// A reader of one file, and where its decryption failures are recorded.
    fn open(&self, file: &S::Entry) -> Result<(FormatReader<Input>, Failure)> {
        let store = &self.store;
        let codec = store.codec(&self.stream.spec, file)?;
        if codec.format == Format::Parquet {
            let chunks = store.chunks(file, &codec, self.identities.as_deref())?;
            let reader = FormatReader::parquet(chunks, self.schema.clone())?;
            return Ok((reader, Failure::default()));
        }
        if codec.format == Format::Excel {
            let chunks = store.chunks(file, &codec, self.identities.as_deref())?;
            let reader = FormatReader::excel(
                ChunkCursor::new(chunks),
                Some(file.name()),
                self.schema.clone(),
                &self.stream.spec.excel,
            )?;
            return Ok((reader, Failure::default()));
        }
        let raw = store.open(file)?;
        let (ids, pgp) = (self.identities.as_deref(), self.pgp.as_deref());
        let input = codec.input(raw, file.name(), S::NOUN, ids, pgp)?;
        let failure = input.failure();
        let reader = FormatReader::new(
            codec.format,
            input,
            self.schema.clone(),
            &self.stream.spec.csv,
        )?;
        Ok((reader, failure))
    }

    /// Streams one file's rows (an archive's: its entries' rows).
    fn file(&mut self, tx: &Tx, file: &S::Entry) -> std::result::Result<(), Stop> {
        let name = file.name();
        if let Ok(codec) = self.store.codec(&self.stream.spec, file) {
            if codec.archive.is_some() {
                return self.archive(tx, file, &codec);
            }
        }
        let (reader, failure) = match self.open(file) {
            Ok(r) => r,
            Err(e) => return Err(self.fail(tx, e.with(S::NOUN, name))),
        };
        let reader = reader.with_file(name).with_batch_size(self.batch_size);
        let location = self.store.location(file);
        self.pump(tx, reader, file, &location, &|e| match failure.restore(e) {
            // a decryption failure names no file yet
            e if e.context_value("file").is_none() => e.with(S::NOUN, name),
            e => e,
        })
    }

    /// Streams the rows of every entry of the archive `file` the stream takes.
    fn archive(
        &mut self,
        tx: &Tx,
        file: &S::Entry,
        codec: &crate::input::Codec,
    ) -> std::result::Result<(), Stop> {
        let (store, stream) = (self.store.clone(), self.stream.clone());
        let (name, location) = (file.name(), store.location(file));
        let (ids, pgp) = (self.identities.clone(), self.pgp.clone());
        let mut stopped = false;
        let archive = Archive {
            store: &*store,
            file,
            codec,
            spec: &stream.spec,
            identities: ids.as_deref(),
            pgp: pgp.as_deref(),
        };
        let read = entries(&archive, &mut |entry, data, breach| {
            let shown = entry_name(name, entry);
            let reader = entry_reader(&stream.spec, entry, &shown, data, self.schema.clone())?;
            let reader = reader.with_batch_size(self.batch_size);
            let at = entry_name(&location, entry);
            match self.pump(tx, reader, file, &at, &|e| breach.explain(e)) {
                Ok(()) => Ok(Flow::Next),
                Err(Stop) => {
                    stopped = true;
                    Ok(Flow::Stop)
                }
            }
        });
        match read {
            Err(e) => Err(self.fail(tx, e.with(S::NOUN, name))),
            Ok(()) if stopped => Err(Stop),
            Ok(()) => Ok(()),
        }
    }

    /// Sends a reader's messages of `file`, its columns added (named `location`), `fix`
    /// applied to its error.
    fn pump<R: Read>(
        &mut self,
        tx: &Tx,
        reader: FormatReader<R>,
        file: &S::Entry,
        location: &str,
        fix: &dyn Fn(Error) -> Error,
    ) -> std::result::Result<(), Stop> {
        for msg in reader {
            let msg = msg.map_err(fix);
            let msg = match (msg, &self.with_file) {
                (Ok(Message::Batch(b)), Some(schema)) => {
                    columns::add(b, schema, &self.stream.spec, file, location).map(Message::Batch)
                }
                (m, _) => m,
            };
            if let Ok(Message::Batch(b)) = &msg {
                self.rows += b.num_rows() as u64;
            }
            self.send(tx, msg)?;
            if self.limit.is_some_and(|l| self.rows >= l) {
                return Err(Stop);
            }
        }
        Ok(())
    }
}
