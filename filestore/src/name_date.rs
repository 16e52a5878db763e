//! `name_date`: the date in a file's name, written as a `date`/`strftime` format
//! (`"%Y%m%d"`, `"orders_%Y-%m-%d"`). People already write dates this way for `date` and
//! spreadsheets; a regular expression with named groups would say the same with more to
//! get wrong. The format is searched in the file's name (its last path segment); the
//! first place that holds a valid date wins.

use ferry_core::{Error, Result};

/// A part of a format: a literal character or a field of fixed width.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(char),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    fn width(self) -> usize {
        if self == Field::Year {
            4
        } else {
            2
        }
    }
}

/// A parsed `name_date` format.
#[derive(Debug, Clone, PartialEq)]
pub struct NameDate {
    text: String,
    parts: Vec<Part>,
}

/// A date found in a name: year, month, day, hour, minute, second (sortable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found(pub [u16; 6]);

impl Found {
    /// Days since 1970-01-01 (for a date column).
    pub fn days(&self) -> i32 {
        let [y, m, d, ..] = self.0;
        days_from_civil(y as i64, m as i64, d as i64) as i32
    }
}

impl NameDate {
    /// Parses a format: `%Y` (4 digits), `%m`, `%d`, `%H`, `%M`, `%S` (2 digits each),
    /// `%%`, and literal text; `%Y` is required.
    pub fn parse(text: &str) -> Result<NameDate> {
        let bad = |why: String| {
            Error::config(format!(
                "`name_date = \"{text}\"` {why}: write the date as in `date +FORMAT`, e.g. `\"%Y%m%d\"` for orders_20240131.csv or `\"%Y-%m-%d\"` for orders_2024-01-31.csv"
            ))
        };
        let mut parts = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                parts.push(Part::Literal(c));
                continue;
            }
            parts.push(match chars.next() {
                Some('Y') => Part::Field(Field::Year),
                Some('m') => Part::Field(Field::Month),
                Some('d') => Part::Field(Field::Day),
                Some('H') => Part::Field(Field::Hour),
                Some('M') => Part::Field(Field::Minute),
                Some('S') => Part::Field(Field::Second),
                Some('%') => Part::Literal('%'),
                Some(o) => {
                    return Err(bad(format!(
                        "has `%{o}`, which is not one of %Y %m %d %H %M %S"
                    )))
                }
                None => return Err(bad("ends in a lone `%`".into())),
            });
        }
        if !parts.contains(&Part::Field(Field::Year)) {
            return Err(bad("has no `%Y` (the year)".into()));
        }
        Ok(NameDate {
            text: text.to_string(),
            parts,
        })
    }

    /// The format as written.
    pub fn format(&self) -> &str {
        &self.text
    }

    /// The first valid date in the last segment of `name`.
    pub fn find(&self, name: &str) -> Option<Found> {
        let file = name.rsplit('/').next().unwrap_or(name);
        let chars: Vec<char> = file.chars().collect();
        (0..chars.len()).find_map(|at| self.at(&chars[at..]))
    }

    /// The date the format matches at the start of `s`, if valid.
    fn at(&self, s: &[char]) -> Option<Found> {
        // month and day default to 1, the time to midnight
        let mut v = [0u16, 1, 1, 0, 0, 0];
        let mut i = 0;
        for p in &self.parts {
            match p {
                Part::Literal(c) => {
                    if s.get(i) != Some(c) {
                        return None;
                    }
                    i += 1;
                }
                Part::Field(f) => {
                    let digits = s.get(i..i + f.width())?;
                    let mut n = 0u16;
                    for d in digits {
                        n = n * 10 + d.to_digit(10)? as u16;
                    }
                    v[*f as usize] = n;
                    i += f.width();
                }
            }
        }
        let [y, m, d, hh, mm, ss] = v;
        let valid = (1..=12).contains(&m)
            && d >= 1
            && d <= days_in_month(y, m)
            && hh < 24
            && mm < 60
            && ss < 60;
        valid.then_some(Found(v))
    }
}

fn days_in_month(y: u16, m: u16) -> u16 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_valid_date_in_the_file_name() {
        let f = NameDate::parse("%Y%m%d").unwrap();
        assert_eq!(
            f.find("in/2023/orders_20240131.csv"),
            Some(Found([2024, 1, 31, 0, 0, 0]))
        );
        // 8 digits that are not a date are passed over
        assert_eq!(
            f.find("orders_99999999_20240229.csv"),
            Some(Found([2024, 2, 29, 0, 0, 0]))
        );
        assert_eq!(f.find("orders_20230229.csv"), None, "not a leap year");
        assert_eq!(f.find("orders.csv"), None);
        let f = NameDate::parse("orders_%Y-%m-%dT%H%M").unwrap();
        assert_eq!(
            f.find("orders_2024-01-31T2359.csv"),
            Some(Found([2024, 1, 31, 23, 59, 0]))
        );
        assert_eq!(f.find("sales_2024-01-31T2359.csv"), None);
        assert_eq!(Found([1970, 1, 2, 0, 0, 0]).days(), 1);
        assert_eq!(Found([2024, 1, 31, 0, 0, 0]).days(), 19_753);
        for (text, needle) in [("%m%d", "no `%Y`"), ("%Y%q", "`%q`"), ("%Y%", "lone")] {
            let e = NameDate::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
