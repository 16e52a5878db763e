//! Guessing a CSV file's delimiter from its first lines, and noticing when a guess (or a
//! configured delimiter) left a file as one column that was plainly meant to be several.

/// Delimiters a sniff chooses from, in order of preference on a tie.
pub const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Lines looked at.
const LINES: usize = 20;

/// The delimiter of the CSV text `sample` (the first lines of a file): the candidate
/// (`,` `;` tab `|`) that splits the most lines into as many fields as the first line,
/// more than one, outside quotes. `fallback` when no candidate splits a line, or when two split
/// equally many (unless one of them is `fallback`). `complete` says the sample is the whole
/// input; otherwise its last, possibly cut, line is not used.
pub fn sniff_delimiter(sample: &[u8], quote: u8, fallback: u8, complete: bool) -> u8 {
    let mut best: Option<(usize, u8)> = None;
    let mut tied = false;
    for d in CANDIDATES {
        let counts = field_counts(sample, d, quote, complete);
        let agree = agreeing(&counts);
        if agree == 0 {
            continue;
        }
        match best {
            Some((b, _)) if agree < b => {}
            Some((b, bd)) if agree == b => {
                if d == fallback {
                    best = Some((b, d));
                    tied = false;
                } else if bd != fallback {
                    tied = true;
                }
            }
            _ => {
                best = Some((agree, d));
                tied = false;
            }
        }
    }
    match best {
        Some((_, d)) if !tied => d,
        _ => fallback,
    }
}

/// How many lines have as many fields as the first (the header), when that is above one:
/// a delimiter that splits only the data, not the header, would reject every row.
fn agreeing(counts: &[usize]) -> usize {
    match counts.first() {
        Some(&first) if first > 1 => counts.iter().filter(|c| **c == first).count(),
        _ => 0,
    }
}

/// Fields per record of `sample` with delimiter `d`: a quote toggles quoting (a doubled
/// quote toggles twice), a line break inside quotes belongs to the record, blank lines
/// are skipped.
fn field_counts(sample: &[u8], d: u8, quote: u8, complete: bool) -> Vec<usize> {
    let mut counts = Vec::new();
    let (mut quoted, mut fields, mut any) = (false, 1, false);
    for &b in sample {
        if counts.len() == LINES {
            return counts;
        }
        if b == quote {
            quoted = !quoted;
            any = true;
        } else if quoted {
        } else if b == d {
            fields += 1;
            any = true;
        } else if b == b'\n' {
            if any {
                counts.push(fields);
            }
            (fields, any) = (1, false);
        } else if b != b'\r' {
            any = true;
        }
    }
    if complete && any && !quoted {
        counts.push(fields);
    }
    counts
}

/// The warning for a file read as one column whose name holds `;`, `|` or a tab: most
/// likely the delimiter is wrong. `None` when the header looks fine.
pub fn one_column_warning(columns: &[&str]) -> Option<String> {
    let [name] = columns else { return None };
    let found = [';', '|', '\t'].into_iter().find(|c| name.contains(*c))?;
    let shown = if found == '\t' {
        "\\t".to_string()
    } else {
        found.to_string()
    };
    Some(format!(
        "the file has one column, `{}`, whose name holds `{shown}`: is the delimiter wrong? Set `delimiter = \"{shown}\"` (or remove `delimiter` to let Ferry guess it)",
        ferry_core::values::preview(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts what is sniffed (fallback `,`) in each text.
    fn sniffs(cases: &[(&str, char)]) {
        for (text, want) in cases {
            let got = sniff_delimiter(text.as_bytes(), b'"', b',', true) as char;
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn picks_the_delimiter_that_splits_lines_evenly() {
        sniffs(&[
            ("name;amount\nMüller;1.234,56\nDupont;7,5\n", ';'),
            ("a\tb\tc\n1\t2\t3\n", '\t'),
            ("a|b\n1|2\n", '|'),
            ("a,b,c\n1,2,3\n", ','),
            // quoted delimiters do not count
            ("a;b\n\"x,y,z\";1\n\"p,q\";2\n", ';'),
            ("a,b\n\"x;y;z\",1\n\"multi\nline;;\",2\n", ','),
        ]);
    }

    #[test]
    fn keeps_the_fallback_when_ambiguous_or_single_column() {
        sniffs(&[
            ("name\nx\ny\n", ','),
            ("a;b|c\n", ','),
            // a header without the candidate: the data's `;` is text
            ("note\na;b\nc;d\n", ','),
            ("a;b,c\n1;2,3\n", ','),
            ("", ','),
        ]);
        assert_eq!(sniff_delimiter(b"a;b|c\n", b'"', b'\t', true), b'\t');
    }

    #[test]
    fn a_cut_last_line_is_ignored_unless_complete() {
        let s = b"a;b\n1;2\n3,4,5,6";
        assert_eq!(sniff_delimiter(s, b'"', b',', false), b';');
        let s = b"a,b,c\n1,2,3\n4;5;";
        assert_eq!(sniff_delimiter(s, b'"', b',', false), b',');
    }

    #[test]
    fn one_column_with_a_delimiter_in_its_name_is_warned_about() {
        let w = one_column_warning(&["id;name;amount"]).unwrap();
        assert!(w.contains("`delimiter = \";\"`"), "{w}");
        assert!(one_column_warning(&["id\tname"]).unwrap().contains("\\t"));
        assert!(one_column_warning(&["name"]).is_none());
        assert!(one_column_warning(&["a;b", "c"]).is_none());
    }
}
