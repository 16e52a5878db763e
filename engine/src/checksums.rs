//! `SHA256SUMS`: a file delivery's checksums in the format of GNU `sha256sum`, so a client
//! checks the files with `sha256sum -c SHA256SUMS` and needs no Ferry.
//!
//! One line per file: the hex SHA-256, two spaces, the path relative to the delivery's
//! root with `/` separators. A name holding a backslash or a line break is escaped as
//! `sha256sum` does (the line starts with `\`, and `\\`, `\n`, `\r` stand for them).

use crate::receipt::ReceiptOutput;
use ferry_formats::digest::FILE_PREFIX;

/// The file name written beside the delivered files.
pub const FILE_NAME: &str = "SHA256SUMS";
/// The OpenSSH signature of [`FILE_NAME`], beside it.
pub const SIG_FILE_NAME: &str = "SHA256SUMS.sig";

/// The `SHA256SUMS` text of the `file` outputs among `outputs` that carry a `sha256:`
/// digest and a relative location, in their order; `None` when there is none.
pub fn text<'a>(outputs: impl IntoIterator<Item = &'a ReceiptOutput>) -> Option<String> {
    let mut text = String::new();
    for o in outputs {
        let hex = match o
            .digest
            .as_deref()
            .and_then(|d| d.strip_prefix(FILE_PREFIX))
        {
            Some(hex) if o.kind == "file" => hex,
            _ => continue,
        };
        if std::path::Path::new(&o.location).is_absolute() {
            continue;
        }
        text.push_str(&line(hex, &o.location));
    }
    (!text.is_empty()).then_some(text)
}

/// One line, escaped as GNU `sha256sum` writes it.
fn line(hex: &str, name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hex}  {escaped}\n")
    } else {
        format!("{hex}  {name}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_as_sha256sum_writes_them() {
        assert_eq!(line("ab", "out/a.csv"), "ab  out/a.csv\n");
        assert_eq!(line("ab", "a\\b\nc"), "\\ab  a\\\\b\\nc\n");
    }
}
