//! What a column appears to hold: e-mail addresses, phone numbers, IBANs, card numbers,
//! national identifiers, IP addresses, dates of birth, postal codes, address parts.
//!
//! Deterministic: a kind is found when at least [`MIN_SHARE`] of the column's non-null
//! values pass its test ([`super::ids`]); some tests also need the column's name to say
//! what it holds (see [`Hints`]). [`detect`] is the pure form (values in, findings out);
//! [`Detector`] is the same, fed value by value while a stream is read.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::ids;
use crate::group::group;

/// The share of non-null values that must pass a kind's test (80 %).
pub const MIN_SHARE: f64 = 0.8;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A bank account number (IBAN).
    Iban,
    /// A payment card number.
    PaymentCard,
    /// A US Social Security number.
    UsSsn,
    /// A UK National Insurance number.
    UkNino,
    /// A Dutch citizen service number (BSN).
    NlBsn,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A date of birth.
    DateOfBirth,
    /// A postal code.
    PostalCode,
    /// A part of a postal address (street, city …).
    Address,
}

const KINDS: [Kind; 12] = [
    Kind::Email,
    Kind::Phone,
    Kind::Iban,
    Kind::PaymentCard,
    Kind::UsSsn,
    Kind::UkNino,
    Kind::NlBsn,
    Kind::Ipv4,
    Kind::Ipv6,
    Kind::DateOfBirth,
    Kind::PostalCode,
    Kind::Address,
];

impl Kind {
    /// The kind's name in JSON and in the table (`iban`, `payment_card` …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Iban => "iban",
            Kind::PaymentCard => "payment_card",
            Kind::UsSsn => "us_ssn",
            Kind::UkNino => "uk_nino",
            Kind::NlBsn => "nl_bsn",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::DateOfBirth => "date_of_birth",
            Kind::PostalCode => "postal_code",
            Kind::Address => "address",
        }
    }

    /// What passing the test means, for the evidence sentence.
    fn passing(self) -> &'static str {
        match self {
            Kind::Email => "are e-mail addresses",
            Kind::Phone => "are phone numbers (E.164 or a national form)",
            Kind::Iban => "pass the IBAN checksum (mod 97)",
            Kind::PaymentCard => "pass the Luhn checksum with a card issuer's prefix and length",
            Kind::UsSsn => "are US SSNs (format, outside the never-issued ranges)",
            Kind::UkNino => "are UK National Insurance numbers (format and prefixes)",
            Kind::NlBsn => "pass the Dutch BSN 11-test",
            Kind::Ipv4 => "are IPv4 addresses",
            Kind::Ipv6 => "are IPv6 addresses",
            Kind::DateOfBirth => "are past dates of plausible ages",
            Kind::PostalCode => "have a postal code's shape",
            Kind::Address => "are text in a column named like an address part",
        }
    }
}

/// What a column's name says it holds; some tests count a value only with a hint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    /// phone, tel, mobile, gsm, cell, fax, msisdn
    pub phone: bool,
    /// ssn, social security
    pub ssn: bool,
    /// dob, birth, born, geboortedatum
    pub birth: bool,
    /// zip, postcode, postal, plz
    pub postal: bool,
    /// address, addr, street, city, town, straat, woonplaats, house number
    pub address: bool,
}

impl Hints {
    /// The hints in a column name (`customer_phone`, `dateOfBirth`, `ZIP`).
    pub fn of(column: &str) -> Hints {
        let mut words: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut prev_lower = false;
        for c in column.chars() {
            if (!c.is_alphanumeric() || (c.is_uppercase() && prev_lower)) && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            if c.is_alphanumeric() {
                cur.extend(c.to_lowercase());
            }
            prev_lower = c.is_lowercase();
        }
        words.push(cur);
        let compact: String = words.concat();
        // a whole word of the name is one of `whole`, or the name without separators
        // holds one of `inside`
        let hint = |whole: &[&str], inside: &[&str]| {
            words.iter().any(|w| whole.contains(&w.as_str()))
                || inside.iter().any(|i| compact.contains(i))
        };
        Hints {
            phone: hint(
                &[
                    "phone",
                    "telephone",
                    "tel",
                    "mobile",
                    "gsm",
                    "cell",
                    "cellphone",
                    "fax",
                    "msisdn",
                    "telefoon",
                    "telefon",
                ],
                &["phone"],
            ),
            ssn: hint(&["ssn", "ssnr"], &["socialsecurity"]),
            birth: hint(
                &[
                    "dob",
                    "birth",
                    "birthday",
                    "birthdate",
                    "born",
                    "geboortedatum",
                    "geburtsdatum",
                ],
                &["dateofbirth", "birthdate"],
            ),
            postal: hint(
                &[
                    "zip",
                    "zipcode",
                    "postcode",
                    "postal",
                    "postalcode",
                    "plz",
                    "postleitzahl",
                ],
                &["postcode", "postalcode", "zipcode"],
            ),
            address: hint(
                &[
                    "address",
                    "addr",
                    "street",
                    "city",
                    "town",
                    "straat",
                    "woonplaats",
                    "housenumber",
                    "streetname",
                ],
                &["address", "street"],
            ),
        }
    }
}

/// One kind found in a column, with the figures behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What the column appears to hold.
    pub kind: Kind,
    /// Values that passed the kind's test.
    pub matched: u64,
    /// Non-null values tested.
    pub of: u64,
    /// `matched / of`.
    pub share: f64,
    /// The sentence to show: "9,712 of 10,000 sampled values (97 %) pass the IBAN checksum (mod 97)".
    pub evidence: String,
}

/// Counts, value by value, how many pass each kind's test.
#[derive(Debug, Clone)]
pub struct Detector {
    hints: Hints,
    today: NaiveDate,
    values: u64,
    passed: [u64; KINDS.len()],
    /// values whose age is 16–100 years (a date of birth without a name hint)
    adult_ages: u64,
    years: Option<(i32, i32)>,
}

impl Detector {
    /// A detector for the column named `column`; ages are counted at `today`.
    pub fn new(column: &str, today: NaiveDate) -> Self {
        Detector {
            hints: Hints::of(column),
            today,
            values: 0,
            passed: [0; KINDS.len()],
            adult_ages: 0,
            years: None,
        }
    }

    /// Tests one non-null value's text.
    pub fn observe(&mut self, text: &str) {
        self.values += 1;
        let h = self.hints;
        let age = self.age(text);
        let checks = [
            (Kind::Email, ids::email(text)),
            (Kind::Phone, ids::phone(text, h.phone)),
            (Kind::Iban, ids::iban(text)),
            (Kind::PaymentCard, ids::card(text)),
            (Kind::UsSsn, ids::us_ssn(text, h.ssn)),
            (Kind::UkNino, ids::uk_nino(text)),
            (Kind::NlBsn, ids::nl_bsn(text)),
            (Kind::Ipv4, ids::ipv4(text)),
            (Kind::Ipv6, ids::ipv6(text)),
            (Kind::PostalCode, h.postal && ids::postal_code(text)),
            (
                Kind::Address,
                h.address && text.chars().any(char::is_alphabetic),
            ),
            (
                Kind::DateOfBirth,
                age.is_some_and(|a| (0..=120).contains(&a)),
            ),
        ];
        for (kind, _) in checks.into_iter().filter(|(_, hit)| *hit) {
            self.passed[kind as usize] += 1;
        }
        if age.is_some_and(|a| (16..=100).contains(&a)) {
            self.adult_ages += 1;
        }
    }

    /// Whole years from a date-only value (`YYYY-MM-DD`) to today; negative in the future.
    fn age(&mut self, text: &str) -> Option<i32> {
        if text.len() != 10 {
            return None;
        }
        let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        let (lo, hi) = self.years.unwrap_or((d.year(), d.year()));
        self.years = Some((lo.min(d.year()), hi.max(d.year())));
        let mut age = self.today.year() - d.year();
        if (self.today.month(), self.today.day()) < (d.month(), d.day()) {
            age -= 1;
        }
        Some(age)
    }

    /// The kinds at least [`MIN_SHARE`] of the values passed, best first. `sampled` says
    /// whether the values were a sample (it shows in the evidence).
    pub fn findings(&self, sampled: bool) -> Vec<Finding> {
        if self.values == 0 {
            return Vec::new();
        }
        let enough = |n: u64| n as f64 >= MIN_SHARE * self.values as f64;
        let mut out: Vec<Finding> = KINDS
            .iter()
            .filter(|&&k| {
                let n = self.passed[k as usize];
                match k {
                    // without a name hint: mostly adult ages, spread over at least 20 years
                    Kind::DateOfBirth => {
                        enough(n)
                            && (self.hints.birth
                                || (enough(self.adult_ages)
                                    && self.years.is_some_and(|(lo, hi)| hi - lo >= 20)))
                    }
                    _ => enough(n),
                }
            })
            .map(|&k| {
                let n = self.passed[k as usize];
                let share = n as f64 / self.values as f64;
                Finding {
                    kind: k,
                    matched: n,
                    of: self.values,
                    share,
                    evidence: format!(
                        "{} of {} {}values ({} %) {}",
                        group(n),
                        group(self.values),
                        if sampled { "sampled " } else { "" },
                        (share * 100.0).floor(),
                        k.passing()
                    ),
                }
            })
            .collect();
        out.sort_by(|a, b| b.matched.cmp(&a.matched).then(a.kind.cmp(&b.kind)));
        out
    }
}

/// The pure form: the findings for the non-null `values` of the column named `column`.
pub fn detect<'a>(
    column: &str,
    values: impl IntoIterator<Item = &'a str>,
    today: NaiveDate,
    sampled: bool,
) -> Vec<Finding> {
    let mut d = Detector::new(column, today);
    values.into_iter().for_each(|v| d.observe(v));
    d.findings(sampled)
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
