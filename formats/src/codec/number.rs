//! Numbers written the local way: `1.234,56` (decimal comma, dot between thousands),
//! `1 234,56`, `1,234.56`. CSV numeric columns (int64, float64, decimal) are rewritten to
//! the plain form (`1234.56`) before they are parsed, and inference reads them the same way.

use ferry_core::{Error, Result};

/// How a CSV file writes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberFormat {
    /// Between the whole and the fractional part (default `.`).
    pub decimal: char,
    /// Between groups of three digits of the whole part, if the file uses one (default
    /// none). A space also accepts the no-break spaces spreadsheets write (U+00A0, U+202F).
    pub thousands: Option<char>,
}

impl Default for NumberFormat {
    fn default() -> Self {
        NumberFormat {
            decimal: '.',
            thousands: None,
        }
    }
}

impl NumberFormat {
    /// Whether numbers are plain (`.` decimal point, no thousands separator): nothing to rewrite.
    pub fn is_plain(&self) -> bool {
        *self == NumberFormat::default()
    }

    /// Checks the separators can be told from digits, signs, exponents and each other.
    pub fn validate(&self) -> Result<()> {
        let bad = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '\n' | '\r');
        if bad(self.decimal) {
            return Err(Error::config(format!(
                "`decimal_separator` cannot be {:?}: use \".\" or \",\"",
                self.decimal
            )));
        }
        if let Some(t) = self.thousands {
            if bad(t) || t == self.decimal {
                return Err(Error::config(format!(
                    "`thousands_separator` cannot be {t:?} (with decimal_separator {:?}): use \".\", \",\", \" \" or \"'\", unlike the decimal separator",
                    self.decimal
                )));
            }
        }
        Ok(())
    }

    fn is_thousands(&self, c: char) -> bool {
        match self.thousands {
            Some(' ') => matches!(c, ' ' | '\u{a0}' | '\u{202f}'),
            Some(t) => c == t,
            None => false,
        }
    }

    /// Writes `s` in the plain form (`-1234.56`, `1.5e3`) to `out`; `false` when `s` is not
    /// a number written this way (then `out` is unspecified). Thousands separators must sit
    /// between groups of three digits, so `01.02.2024` is not a number.
    pub fn normalize(&self, s: &str, out: &mut String) -> bool {
        out.clear();
        let s = s.trim();
        let mut chars = s.chars().peekable();
        match chars.peek() {
            Some('-') => {
                out.push('-');
                chars.next();
            }
            Some('+') => {
                chars.next();
            }
            _ => {}
        }
        // the whole part: digits, grouped by thousands separators
        let (mut group, mut groups, mut whole) = (0usize, 0usize, 0usize);
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                out.push(c);
                group += 1;
                whole += 1;
            } else if self.is_thousands(c) {
                let ok = if groups == 0 {
                    (1..=3).contains(&group)
                } else {
                    group == 3
                };
                if !ok {
                    return false;
                }
                groups += 1;
                group = 0;
            } else {
                break;
            }
            chars.next();
        }
        if groups > 0 && group != 3 {
            return false;
        }
        let mut fraction = 0;
        if chars.peek() == Some(&self.decimal) {
            chars.next();
            out.push('.');
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
                out.push(c);
                fraction += 1;
                chars.next();
            }
        }
        if whole + fraction == 0 {
            return false;
        }
        if whole == 0 {
            let at = usize::from(out.starts_with('-'));
            out.insert(at, '0');
        }
        if let Some(e) = chars.next() {
            if !matches!(e, 'e' | 'E') {
                return false;
            }
            out.push('e');
            if let Some(&sign) = chars.peek().filter(|c| matches!(c, '+' | '-')) {
                out.push(sign);
                chars.next();
            }
            let digits: String = chars.collect();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            out.push_str(&digits);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(f: NumberFormat, s: &str) -> Option<String> {
        let mut out = String::new();
        f.normalize(s, &mut out).then_some(out)
    }

    const DE: NumberFormat = NumberFormat {
        decimal: ',',
        thousands: Some('.'),
    };

    #[test]
    fn decimal_comma_and_thousands() {
        assert_eq!(norm(DE, "1.234,56").as_deref(), Some("1234.56"));
        assert_eq!(norm(DE, "-1.234.567").as_deref(), Some("-1234567"));
        assert_eq!(norm(DE, " 7,5 ").as_deref(), Some("7.5"));
        assert_eq!(norm(DE, ",5").as_deref(), Some("0.5"));
        assert_eq!(norm(DE, "-,5").as_deref(), Some("-0.5"));
        assert_eq!(norm(DE, "+12").as_deref(), Some("12"));
        assert_eq!(norm(DE, "1,5e3").as_deref(), Some("1.5e3"));
        assert_eq!(norm(DE, "1234,5").as_deref(), Some("1234.5"));
        for bad in [
            "1.5",
            "01.02.2024",
            "1.23,4",
            "1..234",
            "1,2,3",
            "",
            "-",
            ",",
            "abc",
            "1e",
            "2024-01-01",
            "1.234.",
        ] {
            assert_eq!(norm(DE, bad), None, "{bad}");
        }
    }

    #[test]
    fn spaces_and_plain() {
        let fr = NumberFormat {
            decimal: ',',
            thousands: Some(' '),
        };
        assert_eq!(norm(fr, "1 234 567,25").as_deref(), Some("1234567.25"));
        assert_eq!(norm(fr, "1\u{a0}234,5").as_deref(), Some("1234.5"));
        let comma = NumberFormat {
            decimal: ',',
            thousands: None,
        };
        assert_eq!(norm(comma, "1234,56").as_deref(), Some("1234.56"));
        assert_eq!(norm(comma, "1.234,56"), None);
        assert!(NumberFormat::default().is_plain());
        assert!(NumberFormat {
            decimal: 'x',
            thousands: None
        }
        .validate()
        .is_err());
        assert!(NumberFormat {
            decimal: ',',
            thousands: Some(',')
        }
        .validate()
        .is_err());
        assert!(DE.validate().is_ok());
    }
}
