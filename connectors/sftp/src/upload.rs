//! Writing a remote file with libssh2's SFTP write pipeline kept full.
//!
//! libssh2 sends a write call's whole buffer as pipelined write requests, returns when the
//! first is acknowledged, and expects the next call to pass the unacknowledged bytes again
//! (it skips what it already sent) plus any new ones. Behind a plain `BufWriter` the
//! pipeline runs dry at every buffer boundary, a round trip per MiB; [`Pipelined`] keeps
//! the unacknowledged bytes and hands them back with the new ones, so requests stay in
//! flight continuously (up to [`WINDOW`] bytes, the memory it holds).

use std::io::{self, Write};

use ssh2::File;

/// Bytes held unacknowledged at most.
const WINDOW: usize = 4 << 20;

/// Pending bytes from which a write hands them to libssh2 (smaller writes gather first).
const LOW: usize = 1 << 20;

/// A remote file written through a sliding window (see the module docs).
pub(crate) struct Pipelined {
    file: File,
    /// `buf[start..]`: bytes handed to libssh2 (or about to be) and not yet acknowledged.
    buf: Vec<u8>,
    start: usize,
}

impl Pipelined {
    pub fn new(file: File) -> Pipelined {
        Pipelined {
            file,
            buf: Vec::with_capacity(WINDOW),
            start: 0,
        }
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Hands the pending bytes to libssh2; returns once some were acknowledged.
    fn push(&mut self) -> io::Result<()> {
        let acked = self.file.write(&self.buf[self.start..])?;
        if acked == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.start += acked;
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
        while self.pending() >= WINDOW {
            self.push()?;
        }
        let n = data.len().min(WINDOW - self.pending());
        self.buf.extend_from_slice(&data[..n]);
        if self.pending() >= LOW {
            self.push()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            self.push()?;
        }
        Ok(())
    }
}
