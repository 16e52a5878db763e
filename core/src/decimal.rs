//! Decimal text to the unscaled `i128` of a `decimal(precision, scale)` column. Written here
//! (instead of taking `arrow-cast`, which would add a dozen crates to the contract) with the
//! same syntax and rounding as `arrow_cast::parse::parse_decimal`; a property test compares
//! every answer with it.

/// Parses `s` as a decimal of `precision` digits, `scale` of them after the point:
/// `[+|-] digits [. [digits]] [(e|E) [+|-] digits]` (or `.5`: at least one mantissa digit),
/// ASCII white space around it ignored. Digits beyond `scale` round half away from zero.
/// `None` when the text is not a decimal or the value does not fit.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    if precision == 0 || precision > 38 {
        return None;
    }
    let s = s.as_bytes().trim_ascii();
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &mantissa[..0]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let exponent = match exponent {
        None => 0i64,
        Some(e) => {
            let (neg, d) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if d.is_empty() || !all_digits(d) {
                return None;
            }
            let v = d.iter().fold(0i64, |v, b| {
                v.saturating_mul(10).saturating_add((b - b'0') as i64)
            });
            if neg {
                -v
            } else {
                v
            }
        }
    };
    // the value is D · 10^(exponent − frac digits); stored unscaled it is D · 10^shift
    let shift = exponent
        .saturating_sub(frac.len() as i64)
        .saturating_add(scale as i64);
    let digits = int.iter().chain(frac).map(|b| (b - b'0') as i128);
    let n = int.len() + frac.len();
    let (keep, round_digit) = if shift >= 0 {
        (n, None)
    } else {
        let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let keep = n.saturating_sub(drop);
        let first_dropped = if drop <= n {
            int.iter().chain(frac).nth(keep).map(|b| b - b'0')
        } else {
            Some(0)
        };
        (keep, first_dropped)
    };
    let mut v: i128 = 0;
    for d in digits.take(keep) {
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    if shift > 0 {
        let mut left = shift;
        while left > 0 && v != 0 {
            v = v.checked_mul(10)?;
            left -= 1;
        }
    }
    if round_digit.is_some_and(|d| d >= 5) {
        v = v.checked_add(1)?;
    }
    let max = 10i128.pow(precision as u32) - 1;
    if v > max {
        return None;
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Decimal128Type;
    use proptest::prelude::*;

    fn arrow(s: &str, p: u8, sc: i8) -> Option<i128> {
        arrow_cast::parse::parse_decimal::<Decimal128Type>(s, p, sc).ok()
    }

    #[test]
    fn known_values() {
        assert_eq!(parse_decimal("123.45", 10, 2), Some(12345));
        assert_eq!(parse_decimal(" -1.005 ", 10, 2), Some(-101));
        assert_eq!(parse_decimal("1.5e2", 10, 0), Some(150));
        assert_eq!(parse_decimal(".5", 10, 1), Some(5));
        assert_eq!(parse_decimal("150", 10, -2), Some(2));
        assert_eq!(
            parse_decimal("4825037936439135476E-14", 10, 5),
            Some(4825037936)
        );
        assert_eq!(parse_decimal("1234.5", 5, 2), None);
        for bad in ["", ".", "-", "1e", "1e+", "1.2.3", "1 2", "x", "1_000"] {
            assert_eq!(parse_decimal(bad, 10, 2), None, "{bad:?}");
        }
        for s in [
            "123.45", "-1.005", "1.5e2", ".5", "1.", "+.5e-1", "0.000", "99999",
        ] {
            for (p, sc) in [(10, 2), (5, 0), (38, 10), (3, -1), (1, 0)] {
                assert_eq!(parse_decimal(s, p, sc), arrow(s, p, sc), "{s:?} {p} {sc}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Same answer as arrow-cast's `parse_decimal` for any text of decimal-ish bytes.
        #[test]
        fn same_as_arrow(s in "[ +\\-0-9.eE]{0,24}", p in 1u8..=38, sc in -6i8..=20) {
            prop_assert_eq!(parse_decimal(&s, p, sc), arrow(&s, p, sc), "{:?} {} {}", s, p, sc);
        }

        /// Same answer for well-formed numbers with many digits (overflow and rounding).
        #[test]
        fn same_as_arrow_long(i in "[0-9]{0,45}", f in "[0-9]{0,45}", e in proptest::option::of(-60i32..60), neg in any::<bool>(), p in 1u8..=38, sc in -6i8..=38) {
            let mut s = format!("{}{i}.{f}", if neg { "-" } else { "" });
            if let Some(e) = e { s.push_str(&format!("e{e}")); }
            prop_assert_eq!(parse_decimal(&s, p, sc), arrow(&s, p, sc), "{:?} {} {}", s, p, sc);
        }
    }
}
