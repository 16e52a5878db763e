//! gzip and zstd around a byte stream, what a file name says about its bytes, and a
//! writer that hashes what passes through it.
//!
//! Compression wraps the *whole* byte stream of a text format (CSV, JSON Lines), so any
//! tool (`gunzip`, `zstd -d`) can undo it. Parquet compresses inside the file, per column
//! chunk (see [`super::parquet`]), and is never wrapped in gzip or zstd by Ferry.

use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use super::Format;
use ferry_core::{Error, ErrorKind, Result};

/// zstd level used when writing: 3 is zstd's own default (fast, about gzip's ratio).
pub const ZSTD_LEVEL: i32 = 3;

/// How a byte stream is compressed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (RFC 1952); several concatenated members are read as one stream.
    Gzip,
    /// Zstandard; several concatenated frames are read as one stream.
    Zstd,
}

impl Compression {
    /// The compression a file name's last extension names, after a final `.age` (or
    /// OpenPGP `.pgp`/`.gpg`/`.asc`) is stripped: `.gz`/`.gzip` → gzip, `.zst`/`.zstd` →
    /// zstd, anything else → none.
    pub fn from_path(name: &str) -> Compression {
        let name = strip_suffix_ci(name, ".age")
            .or_else(|| crate::pgp::strip_extension(name))
            .unwrap_or(name);
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "gz" | "gzip" => Compression::Gzip,
            "zst" | "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The usual extension without the dot (`gz`, `zst`); `None` for no compression.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gz"),
            Compression::Zstd => Some("zst"),
        }
    }

    /// The name used in config files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `name` without `suffix` (ASCII case-insensitive), if it ends with it and has more.
fn strip_suffix_ci<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let n = name.len();
    let k = suffix.len();
    (n > k && name.is_char_boundary(n - k) && name[n - k..].eq_ignore_ascii_case(suffix))
        .then(|| &name[..n - k])
}

/// What a file or object name says about its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The format, when the extension (under any compression and `.age`) names one.
    pub format: Option<Format>,
    /// The compression of the byte stream.
    pub compression: Compression,
    /// Whether the name ends in `.age` (age v1 encryption).
    pub encrypted: bool,
    /// Whether the name ends in `.pgp`, `.gpg` or `.asc` (OpenPGP encryption).
    pub pgp: bool,
}

/// Reads a name from the outside in: `a.csv.gz.age` → CSV, gzip, encrypted;
/// `a.csv.gz.pgp` → CSV, gzip, OpenPGP;
/// `x.parquet` → Parquet; `y.jsonl.zst` → JSON Lines, zstd.
pub fn detect(name: &str) -> Detected {
    let (rest, encrypted) = match strip_suffix_ci(name, ".age") {
        Some(r) => (r, true),
        None => (name, false),
    };
    let (rest, pgp) = match crate::pgp::strip_extension(rest).filter(|_| !encrypted) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let compression = Compression::from_path(rest);
    let rest = match compression {
        Compression::None => rest,
        _ => rest.rsplit_once('.').map_or(rest, |(a, _)| a),
    };
    Detected {
        format: Format::from_path(rest),
        compression,
        encrypted,
        pgp,
    }
}

/// A reader of `input` decompressed with `c` (`None` returns `input` as is). Damaged or
/// truncated data is an I/O error of kind `InvalidData` / `UnexpectedEof` whose message
/// says which compression failed; errors of the input itself (e.g. an age decryption
/// failure) pass through unchanged.
pub fn decompress(input: Box<dyn Read + Send>, c: Compression) -> Result<Box<dyn Read + Send>> {
    Ok(match c {
        Compression::None => input,
        Compression::Gzip => Box::new(Explained {
            inner: flate2::read::MultiGzDecoder::new(input),
            what: c,
        }),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(input)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot start zstd: {e}")))?;
            Box::new(Explained {
                inner: decoder,
                what: c,
            })
        }
    })
}

/// Says which decompression failed in the errors of `inner`.
struct Explained<R> {
    inner: R,
    what: Compression,
}

impl<R: Read> Read for Explained<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let passes = e.kind() == io::ErrorKind::Interrupted
                || e.get_ref()
                    .is_some_and(|i| i.downcast_ref::<Error>().is_some());
            if passes {
                return e;
            }
            let kind = match e.kind() {
                io::ErrorKind::UnexpectedEof => io::ErrorKind::UnexpectedEof,
                io::ErrorKind::Other | io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                    io::ErrorKind::InvalidData
                }
                other => return io::Error::new(other, e),
            };
            let why = if kind == io::ErrorKind::UnexpectedEof {
                "it ends too early (cut short?)".to_string()
            } else {
                e.to_string()
            };
            io::Error::new(
                kind,
                format!("the {} data is damaged or not {0} at all: {why}", self.what),
            )
        })
    }
}

/// Compresses what is written to it into `W`. [`CompressWriter::finish`] must be called:
/// it writes the trailer (gzip CRC and length, zstd end of frame); without it the output
/// is truncated and will not decompress.
pub struct CompressWriter<W: Write> {
    inner: Encoder<W>,
}

enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> CompressWriter<W> {
    /// Compresses with `c` into `w` (gzip level 6, zstd level [`ZSTD_LEVEL`]).
    pub fn new(w: W, c: Compression) -> Result<Self> {
        let inner = match c {
            Compression::None => Encoder::Plain(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(w, ZSTD_LEVEL).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("cannot start zstd: {e}"))
                })?,
            ),
        };
        Ok(CompressWriter { inner })
    }

    /// The compression used.
    pub fn compression(&self) -> Compression {
        match self.inner {
            Encoder::Plain(_) => Compression::None,
            Encoder::Gzip(_) => Compression::Gzip,
            Encoder::Zstd(_) => Compression::Zstd,
        }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        match &self.inner {
            Encoder::Plain(w) => w,
            Encoder::Gzip(w) => w.get_ref(),
            Encoder::Zstd(w) => w.get_ref(),
        }
    }

    /// Ends the compressed stream (writes its trailer) and returns the inner writer, not
    /// flushed.
    pub fn finish(self) -> Result<W> {
        let what = self.compression();
        match self.inner {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
        }
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot finish the {what} stream: {e}"),
            )
        })
    }
}

impl<W: Write> Write for CompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Encoder::Plain(w) => w.write_all(buf),
            Encoder::Gzip(w) => w.write_all(buf),
            Encoder::Zstd(w) => w.write_all(buf),
        }
    }

    /// Flushes what the compressor can emit so far (a sync point) and the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// Counts and SHA-256-hashes the bytes written through it: the digest of a file as it
/// lands on disk, without reading it back.
pub struct HashingWriter<W: Write> {
    inner: W,
    ctx: Context,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what goes to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            ctx: Context::new(&SHA256),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `sha256:<64 hex>` of the bytes written so far (the receipt's file digest form).
    pub fn digest(&self) -> String {
        let d = self.ctx.clone().finish();
        format!(
            "{}{}",
            crate::digest::FILE_PREFIX,
            crate::digest::hex(d.as_ref())
        )
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_from_names() {
        let d = detect("x/a.csv.gz.age");
        assert_eq!(
            (d.format, d.compression, d.encrypted),
            (Some(Format::Csv), Compression::Gzip, true)
        );
        let d = detect("a.JSONL.ZST");
        assert_eq!(
            (d.format, d.compression, d.encrypted),
            (Some(Format::Jsonl), Compression::Zstd, false)
        );
        let d = detect("x.parquet");
        assert_eq!(
            (d.format, d.compression),
            (Some(Format::Parquet), Compression::None)
        );
        assert_eq!(detect("x.pq.age").format, Some(Format::Parquet));
        let d = detect("in/orders.csv.gz.pgp");
        assert_eq!(
            (d.format, d.compression, d.encrypted, d.pgp),
            (Some(Format::Csv), Compression::Gzip, false, true)
        );
        let d = detect("orders.CSV.GPG");
        assert_eq!((d.format, d.pgp), (Some(Format::Csv), true));
        assert!(detect("orders.jsonl.asc").pgp && !detect("orders.csv").pgp);
        assert_eq!(Compression::from_path("a.csv.zst.gpg"), Compression::Zstd);
        assert_eq!(detect("a.txt").format, None);
        assert_eq!(detect("a.tsv.gzip").compression, Compression::Gzip);
        assert_eq!(Compression::from_path("a.csv.zstd.age"), Compression::Zstd);
        assert_eq!(Compression::from_path("gz"), Compression::None);
        assert_eq!(Compression::Gzip.extension(), Some("gz"));
        assert_eq!(Compression::None.extension(), None);
        let c: Compression = serde_json::from_str("\"zstd\"").unwrap();
        assert_eq!(c, Compression::Zstd);
        assert_eq!(Compression::default(), Compression::None);
    }

    fn round_trip(c: Compression) {
        let text = "id,name\n".to_string() + &"1,abc\n".repeat(10_000);
        let mut w = CompressWriter::new(Vec::new(), c).unwrap();
        w.write_all(text.as_bytes()).unwrap();
        let packed = w.finish().unwrap();
        if c != Compression::None {
            assert!(packed.len() < text.len() / 10, "{c}: {}", packed.len());
        }
        let mut out = String::new();
        decompress(Box::new(io::Cursor::new(packed.clone())), c)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        if c == Compression::None {
            return;
        }
        // cut short: an error that says so, never a silent short read
        let cut = packed[..packed.len() / 2].to_vec();
        let err = decompress(Box::new(io::Cursor::new(cut)), c)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains(c.name()), "{c}: {err}");
        // not compressed at all
        let err = decompress(Box::new(io::Cursor::new(b"id,name\n1,2\n".to_vec())), c)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("damaged"), "{c}: {err}");
    }

    #[test]
    fn compressions_round_trip_and_damage_is_an_error() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            round_trip(c);
        }
    }

    #[test]
    fn hashing_writer_matches_a_fresh_hash() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        assert_eq!(w.bytes(), 3);
        assert_eq!(
            w.digest(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
