//! Reading one remote file: streamed, resuming where it stopped when the link breaks
//! ([`Resuming`]), or with random access for Parquet ([`RemoteFile`]).
//!
//! libssh2 pipelines an SFTP read over as many requests as the buffer it is given holds,
//! so reads go through a 1 MiB buffer: one round trip per MiB, not per 32 KiB.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ferry_core::{Error, Result};
use ferry_formats::codec::{Bytes, ChunkReader, Length, ParquetError, ParquetResult};
use ssh2::File;

use crate::session::{Conn, Server};

/// Bytes asked of the server at once (see the module docs).
pub(crate) const READ_BUFFER: usize = 1 << 20;

/// Times a broken read is resumed on a new connection before the read fails.
const RESUMES: u32 = 3;

/// A file as listed: what resuming checks has not changed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub path: String,
    pub size: u64,
    pub mtime: u64,
}

/// Opens `file` on a new connection, seeked to `pos`.
fn open_at(server: &Server, file: &Listed, pos: u64) -> Result<File> {
    open_on(&server.connect()?, server, file, pos)
}

/// Opens `file` on `conn`, seeked to `pos`, after checking it is still the file that was
/// listed (the handle keeps its session alive).
fn open_on(conn: &Conn, server: &Server, file: &Listed, pos: u64) -> Result<File> {
    let path = Path::new(&file.path);
    let stat = conn
        .sftp
        .stat(path)
        .map_err(|e| server.error(e, &format!("cannot open `{}`", file.path)))?;
    if stat.size != Some(file.size) || stat.mtime.unwrap_or(0) != file.mtime {
        return Err(Error::data(format!(
            "`{}` changed on the server while it was being read (it was {} bytes, now {}): rerun to read the new version",
            file.path,
            file.size,
            stat.size.unwrap_or(0)
        )));
    }
    let mut f = conn
        .sftp
        .open(path)
        .map_err(|e| server.error(e, &format!("cannot open `{}`", file.path)))?;
    if pos > 0 {
        f.seek(SeekFrom::Start(pos))
            .map_err(|e| Error::io(e, "cannot seek in", path))?;
    }
    Ok(f)
}

/// A file read from start to end; when the link breaks, it reconnects and goes on from
/// the last byte it returned (up to [`RESUMES`] times), so a cut costs a reconnect, not
/// the file. A file that changed meanwhile fails instead of being stitched together.
pub(crate) struct Resuming {
    server: Server,
    file: Listed,
    pos: u64,
    reader: Option<BufReader<File>>,
    resumes: u32,
}

impl Resuming {
    /// Opens `file` (the first connection is made here, so a missing file fails now).
    pub fn open(server: Server, file: Listed) -> Result<Resuming> {
        let f = open_at(&server, &file, 0)?;
        Ok(Resuming {
            server,
            file,
            pos: 0,
            reader: Some(BufReader::with_capacity(READ_BUFFER, f)),
            resumes: 0,
        })
    }
}

impl Read for Resuming {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let reader = match &mut self.reader {
                Some(r) => r,
                None => {
                    let f = open_at(&self.server, &self.file, self.pos)
                        .map_err(std::io::Error::other)?;
                    self.reader.insert(BufReader::with_capacity(READ_BUFFER, f))
                }
            };
            match reader.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if self.resumes < RESUMES => {
                    tracing::warn!(file = %self.file.path, at = self.pos, "SFTP read broke ({e}); resuming on a new connection");
                    self.resumes += 1;
                    self.reader = None;
                }
                Err(e) => {
                    return Err(std::io::Error::other(format!(
                        "reading `{}` from {} broke at byte {} and did not resume after {RESUMES} reconnects: {e}",
                        self.file.path,
                        self.server.url(),
                        self.pos
                    )))
                }
            }
        }
    }
}

/// A remote file opened for random access: reads and seeks on one handle, and each
/// Parquet chunk on a handle of its own (the session is shared; libssh2 serialises it).
pub(crate) struct RemoteFile {
    file: File,
    sftp_path: PathBuf,
    size: u64,
    server: Server,
    /// The session chunk handles are opened on.
    conn: Conn,
}

impl RemoteFile {
    pub fn open(server: &Server, listed: &Listed) -> Result<RemoteFile> {
        let conn = server.connect()?;
        let file = open_on(&conn, server, listed, 0)?;
        Ok(RemoteFile {
            file,
            sftp_path: PathBuf::from(&listed.path),
            size: listed.size,
            server: server.clone(),
            conn,
        })
    }

    fn handle_at(&self, start: u64) -> ParquetResult<File> {
        let mut f = self.conn.sftp.open(&self.sftp_path).map_err(|e| {
            ParquetError::External(Box::new(
                self.server
                    .error(e, &format!("cannot open `{}`", self.sftp_path.display())),
            ))
        })?;
        f.seek(SeekFrom::Start(start))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(f)
    }
}

impl Read for RemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for RemoteFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RemoteFile {
    type T = BufReader<File>;

    fn get_read(&self, start: u64) -> ParquetResult<Self::T> {
        Ok(BufReader::with_capacity(
            READ_BUFFER,
            self.handle_at(start)?,
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        let mut f = self.handle_at(start)?;
        let mut buf = vec![0; length];
        f.read_exact(&mut buf)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::from(buf))
    }
}
