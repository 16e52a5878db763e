//! The offending config line of an error, shown with a caret, its values masked: the
//! line may be a mistyped secret field (`pasword = "…"`) that no leak guard knows, since
//! an unknown field is never read as a secret.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What a masked value is shown as.
const MASK: &str = "***";

/// Renders `line` of `text` with a caret under `column`, for a person reading the error.
/// Every value on the line is shown as `***` (keys and table headers are kept), and the
/// caret moves with it:
///
/// ```text
///   --> sync.toml:7:1
///    |
///  7 | pasword = ***
///    | ^
/// ```
pub fn render_snippet(path: &str, text: &str, line: usize, column: usize) -> String {
    let Some((start, src)) = nth_line(text, line) else {
        return format!("  --> {path}:{line}:{column}\n");
    };
    let masked = match DeTable::parse(text) {
        Ok(table) => {
            let mut spans = Vec::new();
            for (_, v) in table.get_ref().iter() {
                value_spans(v, &mut spans);
            }
            let end = start + src.len();
            let on_line: Vec<Range<usize>> = spans
                .into_iter()
                .filter(|s| s.start < end && s.end > start)
                .map(|s| s.start.max(start) - start..s.end.min(end) - start)
                .collect();
            on_line
        }
        // a file that does not parse has no value spans: guess them from the line
        Err(_) => guessed_value(src).into_iter().collect(),
    };
    let (shown, col) = mask(src, &masked, column.saturating_sub(1));
    let num = line.to_string();
    let pad = " ".repeat(num.len());
    let caret_pad: String = shown
        .chars()
        .take(col)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{pad}--> {path}:{line}:{column}\n{pad} |\n{num} | {shown}\n{pad} | {caret_pad}^\n")
}

/// Byte offset and text of one-based `line`.
fn nth_line(text: &str, line: usize) -> Option<(usize, &str)> {
    let mut start = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return Some((start, l.strip_suffix('\r').unwrap_or(l)));
        }
        start += l.len() + 1;
    }
    None
}

/// The byte spans of every scalar value under `v` (strings, numbers, dates, booleans).
fn value_spans(v: &Spanned<DeValue<'_>>, out: &mut Vec<Range<usize>>) {
    match v.get_ref() {
        DeValue::Table(t) => t.iter().for_each(|(_, v)| value_spans(v, out)),
        DeValue::Array(a) => a.iter().for_each(|v| value_spans(v, out)),
        _ => out.push(v.span()),
    }
}

/// For a line of a file that does not parse: a table header keeps everything, a
/// `key = value` line hides what follows the first `=` outside quotes, anything else
/// (a stray value, a continuation line) hides all but its indentation.
fn guessed_value(src: &str) -> Option<Range<usize>> {
    let body = src.trim_start();
    let indent = src.len() - body.len();
    if body.is_empty() || body.starts_with('#') {
        return None;
    }
    if body.starts_with('[') && !body.contains(['"', '\'', ',', '=']) {
        return None;
    }
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in src.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '=' => {
                let value = &src[i + 1..];
                let lead = value.len() - value.trim_start().len();
                let from = i + 1 + lead;
                return (from < src.len()).then(|| from..src.trim_end().len().max(from));
            }
            None => {}
        }
    }
    Some(indent..src.trim_end().len())
}

/// `src` with each byte range in `hidden` replaced by [`MASK`], and where character
/// `col` (zero-based) of `src` lands in it: on the mask when it was inside a value.
fn mask(src: &str, hidden: &[Range<usize>], col: usize) -> (String, usize) {
    let mut out = String::with_capacity(src.len());
    let mut shown = 0usize; // characters in `out`
    let mut new_col = None;
    let mut skip_to = 0usize;
    let mut mask_at = 0usize;
    for (ci, (b, c)) in src.char_indices().enumerate() {
        if b < skip_to {
            if ci == col {
                // inside a masked value: the caret goes to the start of its mask
                new_col = Some(mask_at);
            }
            continue;
        }
        if ci == col {
            new_col = Some(shown);
        }
        if let Some(r) = hidden.iter().find(|r| r.start == b && r.end > b) {
            mask_at = shown;
            out.push_str(MASK);
            shown += MASK.chars().count();
            skip_to = r.end;
            continue;
        }
        out.push(c);
        shown += 1;
    }
    // a column past the line's end (an error at the end of the line) stays past it
    let past = col.saturating_sub(src.chars().count());
    (out, new_col.unwrap_or(shown + past))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_masked_keys_and_headers_kept() {
        let text = "[source]\ntype = \"postgres\"\npasword = \"hunter2-pw\"\nport = 54321\nauth = { type = \"basic\", pasword = \"in-line-pw\" }\n";
        let s = render_snippet("sync.toml", text, 3, 1);
        assert!(s.contains("3 | pasword = ***\n"), "{s}");
        assert!(s.ends_with("  | ^\n"), "{s:?}");
        assert!(!s.contains("hunter2"), "{s}");
        let s = render_snippet("sync.toml", text, 4, 8);
        assert!(s.contains("4 | port = ***\n"), "{s}");
        assert!(s.ends_with("  |        ^\n"), "{s:?}");
        assert!(!s.contains("54321"), "{s}");
        // the caret on a key inside an inline table stays on that key
        let s = render_snippet("sync.toml", text, 5, 26);
        assert!(
            s.contains("5 | auth = { type = ***, pasword = *** }\n"),
            "{s}"
        );
        assert!(s.ends_with(&format!("  | {}^\n", " ".repeat(21))), "{s:?}");
        let s = render_snippet("sync.toml", text, 1, 1);
        assert!(s.contains("1 | [source]\n"), "{s}");
    }

    #[test]
    fn a_file_that_does_not_parse_is_masked_by_guess() {
        let text = "[source]\npasword = hunter2-pw\n  \"x\", \"y\"\n";
        let s = render_snippet("sync.toml", text, 2, 11);
        assert!(s.contains("2 | pasword = ***\n"), "{s}");
        assert!(s.ends_with("  |           ^\n"), "{s:?}");
        let s = render_snippet("sync.toml", text, 3, 3);
        assert!(s.contains("3 |   ***\n"), "{s}");
        let s = render_snippet("sync.toml", text, 1, 1);
        assert!(s.contains("1 | [source]\n"), "{s}");
    }
}
