//! Decrypting an age payload: a batch of chunks read, opened on all cores (see
//! [`super::payload`]), then released in order; a failure is reported only once the
//! plaintext before it was read, so it names the same chunk and position as a one-chunk-
//! at-a-time reader would.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use ferry_core::Error;
use ring::aead::LessSafeKey;

use super::payload::{self, CHUNK, SEALED, TAG};

/// Yields the plaintext of an age file, authenticating each 64 KiB chunk before releasing
/// it. A damaged, reordered or truncated payload is an I/O error of kind `InvalidData`
/// whose inner error is a Ferry [`Error`] ([`ferry_core::ErrorKind::DataInvalid`]): recover
/// it with [`super::decryption_error`]. Once it failed, every later read fails the same
/// way. Memory: two batches of chunks (2 MiB each with 2 cores, at most 8 MiB each).
pub struct DecryptingReader<R: Read> {
    input: BufReader<R>,
    key: LessSafeKey,
    /// Index of the next chunk to read from `input`.
    counter: u64,
    /// Ciphertext read ahead: one byte past the last batch, to know whether it ended.
    sealed: Vec<u8>,
    /// The opened batch: chunk `i` in `plain[i * SEALED..]`, `lens[i]` bytes of it.
    plain: Vec<u8>,
    lens: Vec<usize>,
    /// Next plaintext byte to release: chunk index in the batch, offset in the chunk.
    at: (usize, usize),
    /// What ends the stream once the batch is released: the end, or a failure.
    then: Then,
    /// Chunks in the next batch: small after a seek (a reader seeking around reads
    /// little), growing to a full batch.
    batch: usize,
    /// Plaintext bytes released so far.
    position: u64,
    /// The first failure, repeated on every later read.
    failed: Option<(io::ErrorKind, String)>,
    /// Plaintext length, once a seek authenticated it.
    len: Option<u64>,
    /// Where the payload starts in `input`, once a seek asked; before, the ciphertext
    /// bytes read since the payload's start.
    start: Start,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Then {
    /// More batches follow.
    More,
    /// The last chunk was opened: the stream ends here.
    End,
    /// The input ended after a chunk that is not flagged last.
    Truncated,
    /// Chunk `n` does not authenticate.
    Damaged(u64),
    /// Data follows the chunk flagged last.
    AfterLast,
}

#[derive(Clone, Copy)]
enum Start {
    ReadSoFar(u64),
    At(u64),
}

impl<R: Read> DecryptingReader<R> {
    pub(super) fn new(input: BufReader<R>, key: LessSafeKey) -> Self {
        DecryptingReader {
            input,
            key,
            counter: 0,
            sealed: Vec::new(),
            plain: Vec::new(),
            lens: Vec::new(),
            at: (0, 0),
            then: Then::More,
            batch: payload::threads(),
            position: 0,
            failed: None,
            len: None,
            start: Start::ReadSoFar(0),
        }
    }

    /// Plaintext bytes read so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads and opens the next batch.
    fn fill(&mut self) -> io::Result<()> {
        let want = self.batch * SEALED + 1;
        self.batch = (self.batch * 2).min(payload::batch_chunks());
        let have = self.sealed.len();
        self.sealed.resize(want, 0);
        let got = match crate::fill::read_up_to(&mut self.input, &mut self.sealed[have..]) {
            Ok(n) => have + n,
            Err(e) => {
                self.sealed.truncate(have);
                return Err(e);
            }
        };
        self.sealed.truncate(got);
        let eof = got < want;
        let body = if eof { got } else { want - 1 };
        if let Start::ReadSoFar(n) = &mut self.start {
            *n += (got - have) as u64;
        }
        let count = body.div_ceil(SEALED);
        self.plain.resize(count * SEALED, 0);
        self.lens.clear();
        self.at = (0, 0);
        if count == 0 {
            // nothing after the previous chunk (or no chunk at all)
            self.then = Then::Truncated;
            return Ok(());
        }
        let mut outcome = vec![Opened::Damaged; count];
        let first = self.counter;
        let key = &self.key;
        let items: Vec<_> = self.sealed[..body]
            .chunks(SEALED)
            .zip(self.plain.chunks_mut(SEALED))
            .zip(outcome.iter_mut())
            .enumerate()
            .collect();
        payload::spread(items, |(i, ((sealed, slot), outcome))| {
            *outcome = open_chunk(key, first + i as u64, sealed, slot);
        });
        self.then = Then::More;
        for (i, o) in outcome.iter().enumerate() {
            let n = first + i as u64;
            let final_piece = eof && i + 1 == count;
            match *o {
                Opened::Damaged => {
                    self.then = Then::Damaged(n);
                    break;
                }
                Opened::Middle(len) => {
                    self.lens.push(len);
                    if final_piece {
                        self.then = Then::Truncated;
                    }
                }
                // the last chunk is empty only when the whole payload is
                Opened::Last(0) if n > 0 => {
                    self.then = Then::Damaged(n);
                    break;
                }
                Opened::Last(len) => {
                    self.lens.push(len);
                    self.then = if final_piece {
                        Then::End
                    } else {
                        Then::AfterLast
                    };
                    break;
                }
            }
        }
        self.counter += count as u64;
        // keep the byte read ahead for the next batch
        self.sealed.drain(..body);
        Ok(())
    }

    fn fail(&mut self, then: Then) -> io::Error {
        let message = match then {
            Then::Truncated => format!(
                "the age file is truncated: it ends after {} bytes of plaintext, before its last chunk",
                self.position
            ),
            Then::AfterLast => format!(
                "the age file has data after its last chunk (after {} bytes of plaintext): it was damaged or altered",
                self.position
            ),
            Then::Damaged(chunk) => format!(
                "the age file is damaged, cut short or altered: chunk {chunk} (from plaintext byte {}) failed authentication",
                chunk * CHUNK as u64
            ),
            Then::More | Then::End => unreachable!("not a failure"),
        };
        let kind = io::ErrorKind::InvalidData;
        self.failed = Some((kind, message.clone()));
        io::Error::new(kind, Error::data(message))
    }
}

/// How a sealed chunk opened: as a middle chunk or as the last (with its plaintext
/// length), or not at all.
#[derive(Clone, Copy)]
enum Opened {
    Middle(usize),
    Last(usize),
    Damaged,
}

/// Opens chunk `counter`: a full chunk as a middle one, else (or when that fails: a full
/// last chunk) as the last one, as the `age` crate does.
fn open_chunk(key: &LessSafeKey, counter: u64, sealed: &[u8], slot: &mut [u8]) -> Opened {
    if sealed.len() == SEALED {
        if let Some(n) = payload::open(key, counter, false, sealed, slot) {
            return Opened::Middle(n);
        }
    }
    match payload::open(key, counter, true, sealed, slot) {
        Some(n) => Opened::Last(n),
        None => Opened::Damaged,
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, Error::data(message.clone())));
        }
        loop {
            let (chunk, offset) = self.at;
            if let Some(&len) = self.lens.get(chunk) {
                if offset == len {
                    self.at = (chunk + 1, 0);
                    continue;
                }
                let n = buf.len().min(len - offset);
                let from = chunk * SEALED + offset;
                buf[..n].copy_from_slice(&self.plain[from..from + n]);
                self.at.1 += n;
                self.position += n as u64;
                return Ok(n);
            }
            match self.then {
                Then::End => return Ok(0),
                Then::More => loop {
                    match self.fill() {
                        Ok(()) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // not the file's content: a failing disk or an interrupted download
                        Err(e) => return Err(e),
                    }
                },
                then => return Err(self.fail(then)),
            }
        }
    }
}

/// Seeks in the plaintext (Parquet inside age needs random access): the chunk holding
/// the new position is authenticated before any byte of it is released. A seek relative
/// to the end authenticates the last chunk, so a truncated file fails here.
impl<R: Read + Seek> Seek for DecryptingReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, Error::data(message.clone())));
        }
        let len = match self.len {
            Some(l) => l,
            None => {
                let l = self.plain_len()?;
                self.len = Some(l);
                l
            }
        };
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
            SeekFrom::End(d) => len.checked_add_signed(d),
        }
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "cannot seek before the start")
        })?;
        // past the end: reads there return nothing
        let at = target.min(len);
        let chunk = at / CHUNK as u64;
        let start = self.start()?;
        self.input
            .seek(SeekFrom::Start(start + chunk * SEALED as u64))?;
        self.sealed.clear();
        self.lens.clear();
        self.counter = chunk;
        self.batch = 1;
        self.then = Then::More;
        self.position = at;
        let offset = (at % CHUNK as u64) as usize;
        if at == len {
            self.then = Then::End;
        } else {
            self.fill()?;
            self.at = (0, offset);
        }
        // a position past the end reads nothing, yet reports where it was asked to be
        self.position = target;
        Ok(target)
    }
}

impl<R: Read + Seek> DecryptingReader<R> {
    fn start(&mut self) -> io::Result<u64> {
        match self.start {
            Start::At(s) => Ok(s),
            Start::ReadSoFar(n) => {
                let s = self.input.stream_position()? - n;
                self.start = Start::At(s);
                Ok(s)
            }
        }
    }

    /// The plaintext length, from the payload's size, once its last chunk authenticates.
    fn plain_len(&mut self) -> io::Result<u64> {
        let start = self.start()?;
        let end = self.input.seek(SeekFrom::End(0))?;
        let sealed = end - start;
        let chunks = sealed.div_ceil(SEALED as u64);
        let result = if chunks == 0 {
            Err(Then::Truncated)
        } else {
            let last = chunks - 1;
            let size = (sealed - last * SEALED as u64) as usize;
            self.input
                .seek(SeekFrom::Start(start + last * SEALED as u64))?;
            let mut buf = vec![0u8; size];
            self.input.read_exact(&mut buf)?;
            let mut slot = vec![0u8; size];
            match payload::open(&self.key, last, true, &buf, &mut slot) {
                Some(0) if last > 0 => Err(Then::Damaged(last)),
                Some(n) => Ok(last * CHUNK as u64 + n as u64),
                None => Err(Then::Damaged(last)),
            }
        };
        // back to where the stream was
        let back = start + self.counter * SEALED as u64 + self.sealed.len() as u64;
        self.input.seek(SeekFrom::Start(back))?;
        result.map_err(|then| self.fail(then))
    }
}

// a plaintext slot holds a sealed chunk, then its plaintext
const _: () = assert!(SEALED == CHUNK + TAG);
