//! The formats and checksums of the personal identifiers `ferry profile` recognises, one
//! pure function per kind: `true` when one value fits. See docs/profile.md.

use std::sync::LazyLock;

use regex::Regex;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a fixed pattern")
}

/// Digits of `text` once spaces, dashes, dots and parentheses are removed; `None` when
/// anything else is left.
fn digits_only(text: &str) -> Option<String> {
    let kept: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    (!kept.is_empty() && kept.bytes().all(|b| b.is_ascii_digit())).then_some(kept)
}

/// An e-mail address: local part, `@`, a domain with a dot and a letter-only top level.
pub fn email(text: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$",
        )
    });
    text.len() <= 254 && RE.is_match(text)
}

/// A phone number: E.164 (`+` and 8–15 digits, spaces/dashes/dots/parentheses allowed),
/// a national number starting with a trunk `0` (10–11 digits) written with separators, or
/// a North American number (`(555) 234-5678`, `555-234-5678`). Undivided digits starting
/// with `0` count only when `named` (the column's name says phone): unformatted, they are
/// as likely zero-padded ids.
pub fn phone(text: &str, named: bool) -> bool {
    static NANP: LazyLock<Regex> = LazyLock::new(|| {
        re(r"^(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .-]?[2-9]\d{2}[ .-]\d{4}$")
    });
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('+') {
        return digits_only(rest)
            .is_some_and(|d| (8..=15).contains(&d.len()) && !d.starts_with('0'));
    }
    if NANP.is_match(t) {
        return true;
    }
    let Some(d) = digits_only(t) else {
        return false;
    };
    let national = d.starts_with('0') && !d.starts_with("00") && (10..=11).contains(&d.len());
    national && (named || d.len() != t.len())
}

/// An IBAN: country letters, two check digits, 11–30 letters or digits (spaces allowed),
/// and the ISO 13616 mod-97 checksum equals 1.
pub fn iban(text: &str) -> bool {
    let s: String = text.chars().filter(|c| *c != ' ').collect::<String>();
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            (c - b'0') as u32
        } else {
            (c - b'A') as u32 + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The Luhn checksum of a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = (c - b'0') as u32;
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// A payment card number: 13–19 digits (spaces or dashes allowed), the Luhn checksum, and
/// an issuer prefix with a length that issuer uses (Visa, Mastercard, American Express,
/// Discover, JCB, Diners Club, Maestro, UnionPay).
pub fn card(text: &str) -> bool {
    let Some(d) = digits_only(text) else {
        return false;
    };
    let n = d.len();
    if !(13..=19).contains(&n) {
        return false;
    }
    let p = |k: usize| d[..k].parse::<u32>().unwrap_or(0);
    let issuer = match () {
        _ if d.starts_with('4') => matches!(n, 13 | 16 | 19),
        _ if (51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4)) => n == 16,
        _ if matches!(p(2), 34 | 37) => n == 15,
        _ if d.starts_with("6011") || (644..=649).contains(&p(3)) || d.starts_with("65") => {
            (16..=19).contains(&n)
        }
        _ if (3528..=3589).contains(&p(4)) => (16..=19).contains(&n),
        _ if (300..=305).contains(&p(3)) || matches!(p(2), 36 | 38 | 39) => (14..=19).contains(&n),
        _ if d.starts_with("62") => (16..=19).contains(&n),
        _ if matches!(p(2), 50 | 56..=58) || d.starts_with('6') => (12..=19).contains(&n),
        _ => false,
    };
    issuer && luhn(&d)
}

/// A US Social Security number: `AAA-GG-SSSS` (undivided 9 digits only when `named`), area
/// not 000, 666 or 900–999, group not 00, serial not 0000.
pub fn us_ssn(text: &str, named: bool) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(r"^(\d{3})-(\d{2})-(\d{4})$|^(\d{3})(\d{2})(\d{4})$"));
    let Some(c) = RE.captures(text.trim()) else {
        return false;
    };
    if c.get(4).is_some() && !named {
        return false;
    }
    let part = |a: usize, b: usize| c.get(a).or(c.get(b)).map_or("", |m| m.as_str());
    let (area, group, serial) = (part(1, 4), part(2, 5), part(3, 6));
    let area_n: u32 = area.parse().unwrap_or(0);
    area_n != 0 && area_n != 666 && area_n < 900 && group != "00" && serial != "0000"
}

/// A UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; not O second;
/// not BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D (spaces allowed).
pub fn uk_nino(text: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| re(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$"));
    let s: String = text
        .chars()
        .filter(|c| *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    RE.is_match(&s) && !matches!(&s[..2], "BG" | "GB" | "KN" | "NK" | "NT" | "TN" | "ZZ")
}

/// A Dutch citizen service number (BSN): 9 digits (8 with the leading zero left out),
/// not all zeros, passing the 11-test: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11).
pub fn nl_bsn(text: &str) -> bool {
    let t = text.trim();
    if !(8..=9).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let d = format!("{t:0>9}");
    let sum: i64 = d
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let v = (c - b'0') as i64;
            if i == 8 {
                -v
            } else {
                (9 - i as i64) * v
            }
        })
        .sum();
    d != "000000000" && sum % 11 == 0
}

/// An IPv4 address in dotted-quad form.
pub fn ipv4(text: &str) -> bool {
    text.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An IPv6 address (any textual form the standard library reads, `::1` included).
pub fn ipv6(text: &str) -> bool {
    text.contains(':') && text.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A postal code in a common national shape: UK, Dutch (`1234 AB`), US ZIP (`12345`,
/// `12345-6789`), Canadian (`K1A 0B1`), or 4–5 digits (most of Europe). Used only for
/// columns named like a postal code: alone these shapes are too common.
pub fn postal_code(text: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"(?i)^(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4} ?[A-Z]{2}|\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{4})$",
        )
    });
    RE.is_match(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check` passes every value of `ok` and none of `no`.
    fn sorts(check: impl Fn(&str) -> bool, ok: &[&str], no: &[&str]) {
        for v in ok {
            assert!(check(v), "should pass: {v}");
        }
        for v in no {
            assert!(!check(v), "should fail: {v}");
        }
    }

    #[test]
    fn emails() {
        sorts(
            email,
            &["ada@example.com", "j.o'neil+tag@mail.example.co.uk"],
            &[
                "ada@example",
                "@example.com",
                "ada example.com",
                "ORD-1@2",
                "a@b.c1",
            ],
        );
    }

    #[test]
    fn phones() {
        assert!(phone("0612345678", true));
        sorts(
            |v| phone(v, false),
            &[
                "+31612345678",
                "+44 20 7946 0958",
                "06-12345678",
                "020 123 4567",
                "(555) 234-5678",
                "555.234.5678",
                "+1 555 234 5678",
            ],
            &[
                "0612345678",
                "0000012345",
                "1234567890",
                "2024-07-21",
                "12:30:00",
                "+0123456789",
                "123-45-6789",
                "ORD-5552345678",
            ],
        );
    }

    #[test]
    fn ibans() {
        sorts(
            iban,
            &[
                "GB82WEST12345698765432",
                "NL91 ABNA 0417 1643 00",
                "DE89370400440532013000",
            ],
            &[
                "GB82WEST12345698765433",
                "NL91ABNA0417164301",
                "SKU12AB34567890123",
                "gb82west12345698765432",
            ],
        );
    }

    #[test]
    fn cards() {
        sorts(
            card,
            &[
                "4111111111111111",
                "4111 1111 1111 1111",
                "5500-0000-0000-0004",
                "378282246310005",
                "6011111111111117",
                "3530111333300000",
            ],
            // Luhn fails; Luhn passes but no issuer uses the prefix; right prefix, wrong length
            &[
                "4111111111111112",
                "1234567812345670",
                "0000000000000000",
                "41111111111111111",
                "12345678",
            ],
        );
    }

    #[test]
    fn us_ssns() {
        assert!(us_ssn("123456789", true));
        sorts(
            |v| us_ssn(v, false),
            &["123-45-6789"],
            &[
                "123456789",
                "000-12-3456",
                "666-12-3456",
                "912-34-5678",
                "123-00-4567",
                "123-45-0000",
                "12-345-6789",
            ],
        );
    }

    #[test]
    fn uk_ninos() {
        sorts(
            uk_nino,
            &["AB123456C", "ab 12 34 56 c"],
            &[
                "QQ123456C",
                "BG123456A",
                "AB123456E",
                "AO123456A",
                "AB12345C",
            ],
        );
    }

    #[test]
    fn dutch_bsns() {
        // 9·1+8·1+7·1+6·2+5·2+4·2+3·3+2·3 = 69; 69 − 3 = 66 = 6·11
        assert!(nl_bsn("111222333"));
        assert!(!nl_bsn("111222337"));
        assert!(nl_bsn("123456782"));
        assert!(!nl_bsn("123456789"));
        assert!(!nl_bsn("000000000"));
        assert!(!nl_bsn("12345678a"));
    }

    #[test]
    fn ip_addresses() {
        assert!(ipv4("192.168.0.1"));
        assert!(!ipv4("1.2.3"));
        assert!(!ipv4("256.1.1.1"));
        assert!(ipv6("2001:db8::1"));
        assert!(!ipv6("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!ipv6("12:30:00"));
    }

    #[test]
    fn postal_codes() {
        sorts(
            postal_code,
            &[
                "SW1A 1AA",
                "1012 AB",
                "90210",
                "90210-1234",
                "K1A 0B1",
                "8000",
            ],
            &["ORD-123"],
        );
    }
}
