//! Archives a client drops: `.zip`, `.tar.gz` / `.tgz` and `.tar`, whose entries are read
//! one after the other, each with its own format.
//!
//! A layer over bytes like the others: [`zip_entries`] takes any `Read + Seek` (a zip's
//! index is at its end), [`tar_entries`] any `Read` (a tar streams), so an archive can
//! sit under decryption (`drop.zip.age`, `drop.zip.gpg`: decrypt, then unpack). Each entry
//! the caller's filter keeps is handed to a callback as a `Read`, streamed, never unpacked
//! to disk here.
//!
//! Zip bombs: every archive is held to [`Limits`] — entries, bytes unpacked in all, and how
//! many times larger than its compressed size an entry (a zip) or the whole archive (a
//! tar.gz) may grow. Crossing one stops the read with an error naming the archive, the
//! limit and the setting that raises it; the bytes are counted as they are unpacked, so a
//! header that lies about sizes does not help.

use std::io::{self, Read, Seek};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferry_core::{Error, ErrorKind, Result};

/// Unpacked bytes an entry may reach before its compression ratio is checked: tiny files
/// compress far better than anything real does, and cannot hurt.
const RATIO_SLACK: u64 = 1 << 20;

/// The kind of archive a name ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.zip`.
    Zip,
    /// `.tar.gz`, `.tgz`.
    TarGz,
    /// `.tar`.
    Tar,
}

impl ArchiveKind {
    /// The archive `name` ends in (case-insensitive), and the name without that suffix.
    pub fn of(name: &str) -> Option<(ArchiveKind, &str)> {
        let lower = name.to_ascii_lowercase();
        for (suffix, kind) in [
            (".zip", ArchiveKind::Zip),
            (".tar.gz", ArchiveKind::TarGz),
            (".tgz", ArchiveKind::TarGz),
            (".tar", ArchiveKind::Tar),
        ] {
            if lower.ends_with(suffix) && name.len() > suffix.len() {
                return Some((kind, &name[..name.len() - suffix.len()]));
            }
        }
        None
    }
}

impl std::fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveKind::Zip => "zip",
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::Tar => "tar",
        })
    }
}

/// How much an archive may unpack to (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries (files, folders, links) an archive may hold.
    pub entries: u64,
    /// Bytes all its entries may unpack to, together.
    pub expanded_bytes: u64,
    /// How many times its compressed size an entry (zip) or the archive (tar.gz) may
    /// unpack to.
    pub ratio: u64,
}

impl Default for Limits {
    /// 10,000 entries, 16 GiB, 100 times: far above what a client's drop holds, far below
    /// what a bomb unpacks to (a 42 KB zip bomb unpacks to 4.5 PB, a ratio of 10^11).
    fn default() -> Self {
        Limits {
            entries: 10_000,
            expanded_bytes: 16 << 30,
            ratio: 100,
        }
    }
}

/// What a callback says after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next entry.
    Next,
    /// Stop reading the archive.
    Stop,
}

/// Where a limit crossed inside a reader is recorded, so the caller's error says so even
/// when a codec reported it as an I/O error.
#[derive(Clone, Default)]
pub struct Breach(Arc<Mutex<Option<Error>>>);

impl Breach {
    /// The limit crossed, if any (taken: asked again, `None`).
    pub fn take(&self) -> Option<Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// `e`, or the limit crossed behind it.
    pub fn explain(&self, e: Error) -> Error {
        self.take().unwrap_or(e)
    }

    fn record(&self, e: Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

/// Counts what is unpacked, failing a read that crosses a limit.
struct Meter<'a, R> {
    inner: R,
    how: &'a Unpack<'a>,
    /// The entry read (`None`: the whole archive, as a tar.gz is measured).
    entry: Option<&'a str>,
    /// Bytes of all entries so far.
    total: &'a AtomicU64,
    /// Bytes of this entry so far.
    out: u64,
    /// The compressed bytes the ratio is measured against: an entry's (zip) or the bytes
    /// of the archive read so far (tar.gz); `None`: not compressed.
    compressed: Compressed<'a>,
}

enum Compressed<'a> {
    None,
    Entry(u64),
    Archive(&'a AtomicU64),
}

impl<R: Read> Read for Meter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let total = self.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let limits = &self.how.limits;
        let crossed = if total > limits.expanded_bytes {
            Some(format!(
                "unpacks to more than {} bytes (`archive_limits.expanded_bytes`)",
                limits.expanded_bytes
            ))
        } else {
            let (grown, base) = match &self.compressed {
                Compressed::None => (0, 0),
                Compressed::Entry(c) => (self.out, *c),
                Compressed::Archive(c) => (total, c.load(Ordering::Relaxed)),
            };
            (grown > RATIO_SLACK && grown / base.max(1) > limits.ratio).then(|| {
                format!(
                    "unpacks to more than {} times its compressed size (`archive_limits.ratio`): is it a zip bomb?",
                    limits.ratio
                )
            })
        };
        if let Some(what) = crossed {
            let archive = self.how.archive;
            let e = match self.entry {
                Some(entry) => limit_error(archive, &format!(": entry `{entry}` {what}")),
                None => limit_error(archive, &format!(" {what}")),
            };
            let message = e.message().to_string();
            self.how.breach.record(e);
            return Err(io::Error::other(message));
        }
        Ok(n)
    }
}

fn limit_error(archive: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::DataInvalid,
        format!(
            "archive `{archive}`{what}; if the archive is trusted, raise the limit in `archive_limits`"
        ),
    )
    .with("file", archive)
}

fn bad_archive(archive: &str, kind: ArchiveKind, e: impl std::fmt::Display) -> Error {
    Error::data(format!("`{archive}` is not a readable {kind} archive: {e}")).with("file", archive)
}

/// How to read one archive: its name (for errors), its limits, where a limit crossed is
/// recorded, and which entries to read.
pub struct Unpack<'a> {
    /// The archive's name in errors.
    pub archive: &'a str,
    /// How much it may unpack to.
    pub limits: Limits,
    /// Where a limit crossed inside a callback is recorded.
    pub breach: Breach,
    /// Whether an entry (by its path in the archive) is read.
    pub keep: &'a dyn Fn(&str) -> bool,
}

/// What is called with the name and bytes of each entry read.
pub type EachEntry<'e> = dyn FnMut(&str, &mut dyn Read) -> Result<Flow> + 'e;

impl Unpack<'_> {
    /// Whether entry `name` is read: data (not junk a packer adds) that the caller keeps.
    fn keeps(&self, name: &str) -> bool {
        !junk(name) && (self.keep)(name)
    }

    /// Hands entry `name` to `each`; whether to go on.
    fn hand(&self, each: &mut EachEntry<'_>, name: &str, bytes: &mut dyn Read) -> Result<bool> {
        let flow = each(name, bytes).map_err(|e| self.breach.explain(e))?;
        Ok(flow == Flow::Next)
    }
}

/// Whether an entry is junk a packer adds (macOS resource forks), never data.
fn junk(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.rsplit('/').next().is_some_and(|f| f.starts_with("._"))
}

/// Calls `each` with the name and bytes of every file entry of the zip `input` that
/// `how` keeps, in the archive's order, within its limits. A limit crossed inside `each`
/// is `each`'s error; it is explained (named) through `how.breach`.
pub fn zip_entries<R: Read + Seek>(
    input: R,
    how: &Unpack<'_>,
    each: &mut EachEntry<'_>,
) -> Result<()> {
    let (archive, limits) = (how.archive, &how.limits);
    let mut zip =
        zip::ZipArchive::new(input).map_err(|e| bad_archive(archive, ArchiveKind::Zip, e))?;
    if zip.len() as u64 > limits.entries {
        return Err(limit_error(
            archive,
            &format!(
                " holds {} entries, more than {} (`archive_limits.entries`)",
                zip.len(),
                limits.entries
            ),
        ));
    }
    let total = AtomicU64::new(0);
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| bad_archive(archive, ArchiveKind::Zip, e))?;
        let name = entry
            .name()
            .map_err(|e| bad_archive(archive, ArchiveKind::Zip, e))?
            .into_owned();
        if !entry.is_file() || !how.keeps(&name) {
            continue;
        }
        if entry.encrypted() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "archive `{archive}`: entry `{name}` is password-protected (zip encryption is weak and not read): have the archive encrypted whole instead (`.zip.gpg` or `.zip.age`)"
                ),
            ));
        }
        let compressed = match entry.compression() {
            zip::CompressionMethod::Stored => Compressed::None,
            _ => Compressed::Entry(entry.compressed_size()),
        };
        let mut meter = Meter {
            inner: entry,
            how,
            entry: Some(&name),
            total: &total,
            out: 0,
            compressed,
        };
        if !how.hand(each, &name, &mut meter)? {
            break;
        }
    }
    Ok(())
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Calls `each` with the name and bytes of every file entry of the tar `input` (gzipped
/// when `gzip`) that `how` keeps, in order, within its limits; streamed: an entry is read
/// as the archive is.
pub fn tar_entries<R: Read>(
    input: R,
    gzip: bool,
    how: &Unpack<'_>,
    each: &mut EachEntry<'_>,
) -> Result<()> {
    let (archive, limits) = (how.archive, &how.limits);
    let kind = if gzip {
        ArchiveKind::TarGz
    } else {
        ArchiveKind::Tar
    };
    let read = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: input,
        n: read.clone(),
    };
    let total = AtomicU64::new(0);
    // the whole archive is measured (headers and skipped entries count too)
    let (bytes, compressed): (Box<dyn Read + '_>, _) = if gzip {
        let gz = flate2::read::MultiGzDecoder::new(counted);
        (Box::new(gz), Compressed::Archive(&read))
    } else {
        (Box::new(counted), Compressed::None)
    };
    let unpacked = Meter {
        inner: bytes,
        how,
        entry: None,
        total: &total,
        out: 0,
        compressed,
    };
    let mut tar = tar::Archive::new(unpacked);
    let entries = tar.entries().map_err(|e| bad_archive(archive, kind, e))?;
    let mut seen = 0u64;
    for entry in entries {
        let entry = entry.map_err(|e| how.breach.explain(bad_archive(archive, kind, e)))?;
        seen += 1;
        if seen > limits.entries {
            return Err(limit_error(
                archive,
                &format!(
                    " holds more than {} entries (`archive_limits.entries`)",
                    limits.entries
                ),
            ));
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().trim_start_matches("./").to_string(),
            Err(e) => return Err(bad_archive(archive, kind, e)),
        };
        if !how.keeps(&name) {
            continue;
        }
        let mut entry = entry;
        if !how.hand(each, &name, &mut entry)? {
            break;
        }
    }
    Ok(())
}

/// Calls `each` for the entries of `input`, an archive of `kind` (see [`zip_entries`] and
/// [`tar_entries`]); a zip is first spooled to a temporary file when `input` cannot seek
/// (e.g. it is being decrypted).
pub fn entries(
    kind: ArchiveKind,
    input: Box<dyn Read + Send>,
    how: &Unpack<'_>,
    each: &mut EachEntry<'_>,
) -> Result<()> {
    match kind {
        ArchiveKind::Zip => zip_entries(spool(input, how.archive)?, how, each),
        ArchiveKind::TarGz => tar_entries(input, true, how, each),
        ArchiveKind::Tar => tar_entries(input, false, how, each),
    }
}

/// Copies `input` to an anonymous temporary file (deleted when dropped) and rewinds it:
/// random access to bytes that only stream (a decrypted archive, an entry in Parquet or
/// Excel inside an archive).
pub fn spool(mut input: impl Read, name: &str) -> Result<std::fs::File> {
    let mut file = tempfile::tempfile()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot make a temporary file: {e}")))?;
    io::copy(&mut input, &mut file)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read `{name}`: {e}")))?;
    file.rewind().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot rewind a temporary file: {e}"),
        )
    })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            ArchiveKind::of("in/a.ZIP"),
            Some((ArchiveKind::Zip, "in/a"))
        );
        assert_eq!(ArchiveKind::of("a.tar.gz"), Some((ArchiveKind::TarGz, "a")));
        assert_eq!(ArchiveKind::of("a.tgz"), Some((ArchiveKind::TarGz, "a")));
        assert_eq!(ArchiveKind::of("a.tar"), Some((ArchiveKind::Tar, "a")));
        assert_eq!(ArchiveKind::of("a.csv.gz"), None);
        assert_eq!(ArchiveKind::of(".zip"), None);
        assert!(junk("__MACOSX/._a.csv") && junk("x/._a.csv") && !junk("a.csv"));
    }
}
