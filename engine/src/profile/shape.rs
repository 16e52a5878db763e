//! A value's shape: ASCII digits become `9`, ASCII letters `A`, everything else stays
//! (`SW1A 1AA` → `AA9A 9AA`), and the anchored regex that matches exactly that shape.

/// Shapes are computed up to this many characters; a longer value's shape ends in `…`.
pub const MAX_SHAPE: usize = 32;

/// The shape of `text`.
pub fn shape(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHAPE {
            out.push('…');
            break;
        }
        out.push(if c.is_ascii_digit() {
            '9'
        } else if c.is_ascii_alphabetic() {
            'A'
        } else {
            c
        });
    }
    out
}

/// An anchored regex matching exactly the values of `shape` (`AA99` → `^[A-Za-z]{2}[0-9]{2}$`);
/// `None` for a cut shape (`…`). Other characters (non-ASCII letters too) match themselves.
pub fn shape_regex(shape: &str) -> Option<String> {
    if shape.contains('…') {
        return None;
    }
    let mut out = String::from("^");
    let chars: Vec<char> = shape.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let class = match c {
            '9' => "[0-9]".to_string(),
            'A' => "[A-Za-z]".to_string(),
            c => regex::escape(&c.to_string()),
        };
        out.push_str(&class);
        if run > 1 {
            out.push_str(&format!("{{{run}}}"));
        }
        i += run;
    }
    out.push('$');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_their_regex() {
        assert_eq!(shape("SW1A 1AA"), "AA9A 9AA");
        assert_eq!(shape("ORD-000123"), "AAA-999999");
        let re = shape_regex("AAA-999999").unwrap();
        assert_eq!(re, "^[A-Za-z]{3}\\-[0-9]{6}$");
        let re = regex::Regex::new(&re).unwrap();
        assert!(re.is_match("ORD-000123"));
        assert!(!re.is_match("ORD-00012"));
        assert!(shape_regex(&shape(&"x".repeat(40))).is_none());
    }
}
