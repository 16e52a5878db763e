//! Text encodings: a streaming decoder to UTF-8 in front of the CSV and JSON Lines
//! readers, byte-order marks, and a guess at what bytes that are not UTF-8 are.
//!
//! Decoding sits after decryption and decompression and before the format reader:
//!
//! ```text
//! bytes ── age ── gzip/zstd ── DecodeReader (cp1252, UTF-16 … → UTF-8) ── CSV / JSON Lines
//! ```
//!
//! A byte sequence the encoding cannot map is not replaced by U+FFFD (which would load a
//! wrong value without a word): the decoder writes the byte `0xFF`, which is never valid
//! UTF-8, in its place, so the reader rejects exactly the record that holds it, with its
//! line, and reads on. Line breaks survive decoding, so line numbers are those of the file.
//!
//! Without an encoding the bytes pass through untouched (UTF-8 is checked per field by the
//! reader, at no extra cost); a UTF-16 byte-order mark still switches to UTF-16, and so
//! does text whose every other byte is NUL (UTF-16 without a mark). A UTF-8 mark is
//! dropped. With an encoding, a mark at the start wins over it (as the WHATWG Encoding
//! Standard and browsers do).

use std::io::Read;

use encoding_rs::{DecoderResult, UTF_16BE, UTF_16LE, UTF_8};
use ferry_core::{Error, Result};

pub use encoding_rs::Encoding;

const BUFFER: usize = 64 << 10;
/// Written where the input held bytes the encoding cannot map: never valid UTF-8.
pub(crate) const UNMAPPABLE: u8 = 0xFF;

/// Names users write, offered in "did you mean" (any WHATWG label is accepted).
const KNOWN: &[&str] = &[
    "utf-8",
    "utf-16",
    "utf-16le",
    "utf-16be",
    "windows-1252",
    "latin1",
    "iso-8859-1",
    "iso-8859-15",
    "windows-1250",
    "windows-1251",
    "windows-1253",
    "windows-1254",
    "windows-1257",
    "iso-8859-2",
    "koi8-r",
    "macintosh",
    "ibm866",
    "shift_jis",
    "euc-jp",
    "euc-kr",
    "gbk",
    "gb18030",
    "big5",
];

/// The encoding a config label names: any label of the WHATWG Encoding Standard
/// (`windows-1252`, `latin1`, `cp1252`, `utf-16le`, `shift_jis` …), in any case. An
/// unknown label is a config error naming the nearest known one.
pub fn parse_encoding(label: &str) -> Result<&'static Encoding> {
    let found = Encoding::for_label_no_replacement(label.trim().as_bytes());
    // the "replacement" encoding decodes everything to U+FFFD: never what a user means
    match found.filter(|e| *e != encoding_rs::X_USER_DEFINED) {
        Some(e) => Ok(e),
        None => {
            let lower = label.trim().to_ascii_lowercase();
            let mut msg = format!("unknown encoding `{label}`");
            if let Some(best) = ferry_core::suggest::nearest(&lower, KNOWN.iter().copied()) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            msg.push_str(&format!(" (for example: {})", KNOWN[..8].join(", ")));
            Err(Error::config(msg))
        }
    }
}

/// A text encoding as written in config (`encoding = "windows-1252"`): checked as the
/// config is read, so an unknown label is an error at its line, with "did you mean".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding(pub &'static Encoding);

impl<'de> serde::Deserialize<'de> for TextEncoding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        parse_encoding(&label)
            .map(TextEncoding)
            .map_err(|e| serde::de::Error::custom(e.message()))
    }
}

impl schemars::JsonSchema for TextEncoding {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TextEncoding".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A WHATWG encoding label: utf-8, utf-16le, utf-16be, windows-1252 (latin1), iso-8859-15, windows-1250, shift_jis …"
        })
    }
}

/// The label to suggest for an encoding in messages (`windows-1252`, `UTF-16LE` …).
pub fn label(encoding: &'static Encoding) -> String {
    encoding.name().to_ascii_lowercase()
}

/// A guess at the encoding of `bytes`, which are not valid UTF-8 (for messages only:
/// nothing is decoded on a guess). `chardetng` (Firefox's detector) over the bytes at hand;
/// NULs at every other byte mean UTF-16.
pub fn guess(bytes: &[u8]) -> &'static Encoding {
    if let Some(e) = utf16_without_bom(bytes) {
        return e;
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// What a rejected record's message adds about bytes that do not decode: with `encoding`
/// set, that they are not valid in it; without, the likely encoding of `raw` (the record's
/// bytes as read) and how to set it.
pub(crate) fn hint(encoding: Option<&'static Encoding>, raw: &[u8]) -> String {
    match encoding.filter(|e| *e != UTF_8) {
        Some(e) => format!(
            "bytes that are not valid {}: check `encoding` (the file's real encoding may differ)",
            label(e)
        ),
        None => {
            let likely = label(guess(raw));
            format!("not valid UTF-8; it looks like {likely}: set encoding = \"{likely}\"")
        }
    }
}

/// UTF-16 text without a byte-order mark: ASCII with NUL at every odd (LE) or even (BE)
/// byte, seen over the first bytes.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(512) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    match (even, odd) {
        (0, n) if n * 10 >= pairs * 9 => Some(UTF_16LE),
        (n, 0) if n * 10 >= pairs * 9 => Some(UTF_16BE),
        _ => None,
    }
}

enum Mode {
    /// Nothing read yet: the byte-order mark decides.
    Start,
    /// UTF-8 (or no encoding): bytes as they are.
    Pass,
    /// Decoding to UTF-8.
    Decode(encoding_rs::Decoder),
}

/// A `Read` of UTF-8 over input in another encoding (see the module docs): streamed,
/// 64 KiB of input and 64 KiB of output held whatever the size.
pub struct DecodeReader<R> {
    inner: R,
    encoding: Option<&'static Encoding>,
    mode: Mode,
    raw: Vec<u8>,
    raw_at: usize,
    eof: bool,
    out: Vec<u8>,
    out_at: usize,
    finished: bool,
}

impl<R: Read> DecodeReader<R> {
    /// Decodes `inner` from `encoding` (`None`: UTF-8 unless a byte-order mark says otherwise).
    pub fn new(inner: R, encoding: Option<&'static Encoding>) -> Self {
        DecodeReader {
            inner,
            encoding,
            mode: Mode::Start,
            raw: Vec::new(),
            raw_at: 0,
            eof: false,
            out: Vec::new(),
            out_at: 0,
            finished: false,
        }
    }

    /// Changes the encoding; only before the first read.
    pub fn set_encoding(&mut self, encoding: Option<&'static Encoding>) {
        if matches!(self.mode, Mode::Start) {
            self.encoding = encoding;
        }
    }

    /// The encoding the input is read in, once reading started (`None`: UTF-8 as is).
    pub fn decoding(&self) -> Option<&'static Encoding> {
        match &self.mode {
            Mode::Decode(d) => Some(d.encoding()),
            _ => self.encoding.filter(|e| *e != UTF_8),
        }
    }

    /// Reads until `raw` holds at least `n` unread bytes or the input ends.
    fn fill_raw(&mut self, n: usize) -> std::io::Result<()> {
        if self.raw_at > 0 {
            self.raw.drain(..self.raw_at);
            self.raw_at = 0;
        }
        while self.raw.len() < n && !self.eof {
            let len = self.raw.len();
            self.raw.resize(len.max(n).max(BUFFER), 0);
            match self.inner.read(&mut self.raw[len..]) {
                Ok(0) => {
                    self.raw.truncate(len);
                    self.eof = true;
                }
                Ok(k) => self.raw.truncate(len + k),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.raw.truncate(len),
                Err(e) => {
                    self.raw.truncate(len);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Picks the mode from the byte-order mark (or its absence).
    fn start(&mut self) -> std::io::Result<()> {
        self.fill_raw(4)?;
        let head = &self.raw[..];
        let (bom, skip) = if head.starts_with(b"\xEF\xBB\xBF") {
            (Some(UTF_8), 3)
        } else if head.starts_with(b"\xFF\xFE") {
            (Some(UTF_16LE), 2)
        } else if head.starts_with(b"\xFE\xFF") {
            (Some(UTF_16BE), 2)
        } else {
            (None, 0)
        };
        self.raw_at = skip;
        let encoding = match (bom, self.encoding) {
            (Some(b), _) => b,
            (None, Some(e)) => e,
            (None, None) => {
                // a few more bytes to tell UTF-16 without a mark from text
                self.fill_raw(512)?;
                utf16_without_bom(&self.raw).unwrap_or(UTF_8)
            }
        };
        self.mode = if encoding == UTF_8 {
            Mode::Pass
        } else {
            Mode::Decode(encoding.new_decoder_without_bom_handling())
        };
        Ok(())
    }

    /// Decodes the next piece of input into `out`; `false` at the end.
    fn decode(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.out_at = 0;
        if self.out.capacity() < BUFFER {
            self.out.reserve(BUFFER);
        }
        loop {
            if self.finished {
                return Ok(false);
            }
            if self.raw_at == self.raw.len() {
                self.fill_raw(1)?;
            }
            let Mode::Decode(decoder) = &mut self.mode else {
                unreachable!("decode() in decoding mode only")
            };
            let last = self.eof;
            let mut buf = [0u8; BUFFER / 4];
            let (result, read, written) = decoder.decode_to_utf8_without_replacement(
                &self.raw[self.raw_at..],
                &mut buf,
                last,
            );
            self.raw_at += read;
            self.out.extend_from_slice(&buf[..written]);
            match result {
                DecoderResult::Malformed(_, _) => self.out.push(UNMAPPABLE),
                DecoderResult::InputEmpty if last => self.finished = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
            }
            if !self.out.is_empty()
                && (self.out.len() >= BUFFER / 2 || self.raw_at == self.raw.len())
            {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if matches!(self.mode, Mode::Start) {
            self.start()?;
        }
        match self.mode {
            Mode::Pass => {
                if self.raw_at < self.raw.len() {
                    let n = buf.len().min(self.raw.len() - self.raw_at);
                    buf[..n].copy_from_slice(&self.raw[self.raw_at..self.raw_at + n]);
                    self.raw_at += n;
                    return Ok(n);
                }
                self.inner.read(buf)
            }
            _ => {
                if self.out_at == self.out.len() && !self.decode()? {
                    return Ok(0);
                }
                let n = buf.len().min(self.out.len() - self.out_at);
                buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
                self.out_at += n;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], encoding: Option<&'static Encoding>) -> Vec<u8> {
        let mut out = Vec::new();
        DecodeReader::new(bytes, encoding)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Reads one byte at a time: pieces must join up.
    fn decode_slowly(bytes: &[u8], encoding: Option<&'static Encoding>) -> Vec<u8> {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = DecodeReader::new(OneByte(bytes), encoding);
        let mut out = Vec::new();
        let mut b = [0u8; 3];
        loop {
            let n = r.read(&mut b).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&b[..n]);
        }
    }

    #[test]
    fn labels_and_typos() {
        assert_eq!(parse_encoding("latin1").unwrap(), encoding_rs::WINDOWS_1252);
        assert_eq!(parse_encoding("CP1252").unwrap(), encoding_rs::WINDOWS_1252);
        assert_eq!(parse_encoding("utf-16").unwrap(), UTF_16LE);
        assert_eq!(
            parse_encoding(" Shift_JIS ").unwrap(),
            encoding_rs::SHIFT_JIS
        );
        let err = parse_encoding("windows-1225").unwrap_err().to_string();
        assert!(err.contains("did you mean `windows-1252`"), "{err}");
        let err = parse_encoding("klingon").unwrap_err().to_string();
        assert!(err.contains("unknown encoding `klingon`"), "{err}");
        assert!(parse_encoding("replacement").is_err());
    }

    #[test]
    fn cp1252_decodes_to_utf8() {
        let bytes = b"name;city\nM\xfcller;K\xf6ln \x80\n";
        let want = "name;city\nMüller;Köln €\n".as_bytes();
        let cp1252 = Some(encoding_rs::WINDOWS_1252);
        assert_eq!(decode(bytes, cp1252), want);
        assert_eq!(decode_slowly(bytes, cp1252), want);
    }

    #[test]
    fn boms_are_followed_with_or_without_an_encoding() {
        let text = "id,name\n1,Zoë\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        for bytes in [&le, &be] {
            assert_eq!(decode(bytes, None), text.as_bytes());
            assert_eq!(decode_slowly(bytes, None), text.as_bytes());
            assert_eq!(
                decode(bytes, Some(encoding_rs::WINDOWS_1252)),
                text.as_bytes()
            );
        }
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend_from_slice(text.as_bytes());
        assert_eq!(decode(&utf8, None), text.as_bytes());
        // UTF-16 without a mark
        let bare: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode(&bare, None), text.as_bytes());
    }

    #[test]
    fn without_encoding_bytes_pass_untouched() {
        let bytes = b"a,b\n1,M\xfcller\n";
        assert_eq!(decode(bytes, None), bytes);
        assert_eq!(decode(b"", None), b"");
        assert_eq!(decode(b"x", Some(UTF_16LE)), [UNMAPPABLE]);
    }

    #[test]
    fn unmappable_bytes_become_an_invalid_byte_in_place() {
        // 0x85 0x20: a Shift_JIS lead byte followed by a byte it cannot take
        let out = decode(b"a\n\x85\x20b\nc\n", Some(encoding_rs::SHIFT_JIS));
        assert!(std::str::from_utf8(&out).is_err());
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        assert_eq!(lines[0], b"a");
        assert!(lines[1].contains(&UNMAPPABLE), "{lines:?}");
        assert_eq!(lines[2], b"c");
    }

    #[test]
    fn guesses_name_the_likely_encoding() {
        assert_eq!(label(guess(b"M\xfcller;Stra\xdfe;K\xf6ln")), "windows-1252");
        let h = hint(None, b"1;M\xfcller;3");
        assert!(h.contains("set encoding = \"windows-1252\""), "{h}");
        let h = hint(Some(encoding_rs::SHIFT_JIS), b"x");
        assert!(h.contains("not valid shift_jis"), "{h}");
    }
}
