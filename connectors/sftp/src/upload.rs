//! Writing a remote file with libssh2's SFTP write pipeline kept full.
//!
//! libssh2 cuts the new bytes of a write call into write requests of up to [`REQUEST`]
//! bytes, sends them all (pipelined), returns when the first is acknowledged, and expects
//! the next call to pass the unacknowledged bytes again (it skips what it already sent)
//! plus any new ones. Behind a plain `BufWriter` the pipeline runs dry at every buffer
//! boundary, a round trip per MiB; [`Pipelined`] keeps the unacknowledged bytes and hands
//! them back with the new ones, so requests stay in flight continuously (up to [`WINDOW`]
//! bytes, the memory it holds).
//!
//! New bytes are handed over in whole requests only (a short one only when flushing):
//! each small write would otherwise become a small request of its own, with its own
//! packet, MAC, server-side write and acknowledgement.

use std::io::{self, Write};

use ssh2::File;

/// libssh2's largest write request (`MAX_SFTP_OUTGOING_SIZE`).
const REQUEST: usize = 30_000;

/// Bytes held unacknowledged at most.
const WINDOW: usize = 4 << 20;

/// New bytes from which a write hands them to libssh2 (smaller writes gather first).
const LOW: usize = 1 << 20;

/// A remote file written through a sliding window (see the module docs).
pub(crate) struct Pipelined {
    file: File,
    /// `buf[start..]`: bytes not yet acknowledged.
    buf: Vec<u8>,
    start: usize,
    /// How many of those libssh2 has already made into requests.
    handed: usize,
}

impl Pipelined {
    pub fn new(file: File) -> Pipelined {
        Pipelined {
            file,
            buf: Vec::with_capacity(WINDOW),
            start: 0,
            handed: 0,
        }
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Hands libssh2 the requests made so far and the new bytes (in whole requests
    /// unless `all`); returns once some were acknowledged.
    fn push(&mut self, all: bool) -> io::Result<()> {
        let pending = self.pending();
        let len = match all {
            true => pending,
            false => pending - (pending - self.handed) % REQUEST,
        };
        let acked = self.file.write(&self.buf[self.start..self.start + len])?;
        if acked == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.start += acked;
        self.handed = len - acked;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= WINDOW {
            // bounded: the front is dropped once a window's worth was acknowledged
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(())
    }

    /// Waits for every byte to be acknowledged; returns the file.
    pub fn into_inner(mut self) -> io::Result<File> {
        self.flush()?;
        Ok(self.file)
    }
}

impl Write for Pipelined {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // a full window holds at least one whole request, so a push always has one
        while self.pending() >= WINDOW {
            self.push(false)?;
        }
        let n = data.len().min(WINDOW - self.pending());
        self.buf.extend_from_slice(&data[..n]);
        if self.pending() - self.handed >= LOW {
            self.push(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            self.push(true)?;
        }
        Ok(())
    }
}
