//! Each detector on a column of true values, and on the look-alikes it must not flag.

use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
}

/// A deterministic pseudo-random sequence (a 64-bit LCG), so the columns are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

fn kinds(column: &str, values: &[String]) -> Vec<Kind> {
    detect(column, values.iter().map(String::as_str), today(), true)
        .into_iter()
        .map(|f| f.kind)
        .collect()
}

fn column(n: usize, mut make: impl FnMut(&mut Rng, usize) -> String) -> Vec<String> {
    let mut rng = Rng(42);
    (0..n).map(|i| make(&mut rng, i)).collect()
}

/// Appends the check digit that makes `body` pass Luhn.
fn with_luhn(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ids::luhn(s))
        .unwrap()
}

/// A date `from` to `from + years - 1`, days 1 to 28 so every month has them.
fn ymd(r: &mut Rng, from: u64, years: u64) -> String {
    format!(
        "{}-{:02}-{:02}",
        from + r.next() % years,
        1 + r.next() % 12,
        1 + r.next() % 28
    )
}

/// `MM-DD{sep}hh:mm`, the middle of a timestamp.
fn day_and_minute(r: &mut Rng, sep: char) -> String {
    format!(
        "{:02}-{:02}{sep}{:02}:{:02}",
        1 + r.next() % 12,
        1 + r.next() % 28,
        r.next() % 24,
        r.next() % 60
    )
}

fn iban_of(country: &str, bban: &str) -> String {
    let num: String = format!("{bban}{country}00")
        .chars()
        .map(|c| c.to_digit(36).unwrap().to_string())
        .collect();
    let rem = num
        .bytes()
        .fold(0u32, |r, b| (r * 10 + (b - b'0') as u32) % 97);
    format!("{country}{:02}{bban}", 98 - rem)
}

#[test]
fn true_columns_are_found_with_their_evidence() {
    let cases: Vec<(&str, Vec<String>, Kind)> = vec![
        (
            "contact",
            column(200, |_, i| format!("person{i}@example.org")),
            Kind::Email,
        ),
        (
            "phone",
            column(200, |r, _| format!("+316{}", r.digits(8))),
            Kind::Phone,
        ),
        (
            "tel",
            column(200, |r, _| format!("020 {} {}", r.digits(3), r.digits(4))),
            Kind::Phone,
        ),
        (
            "iban",
            column(200, |r, _| iban_of("NL", &format!("ABNA{}", r.digits(10)))),
            Kind::Iban,
        ),
        (
            "pan",
            column(200, |r, _| with_luhn(&format!("4{}", r.digits(14)))),
            Kind::PaymentCard,
        ),
        (
            "ssn",
            column(200, |r, _| {
                format!(
                    "{}-{}-{}",
                    100 + r.next() % 565,
                    10 + r.next() % 89,
                    1000 + r.next() % 8999
                )
            }),
            Kind::UsSsn,
        ),
        (
            "ni",
            column(200, |r, _| format!("AB{}C", r.digits(6))),
            Kind::UkNino,
        ),
        (
            "bsn",
            column(200, |r, _| loop {
                let s = r.digits(9);
                if ids::nl_bsn(&s) && !s.starts_with('0') {
                    return s;
                }
            }),
            Kind::NlBsn,
        ),
        (
            "client_ip",
            column(200, |r, _| {
                let octets: Vec<String> = (0..3).map(|_| (r.next() % 256).to_string()).collect();
                format!("10.{}", octets.join("."))
            }),
            Kind::Ipv4,
        ),
        (
            "ip6",
            column(200, |r, _| format!("2001:db8::{:x}", r.next() % 65536)),
            Kind::Ipv6,
        ),
        (
            "date_of_birth",
            column(200, |r, _| ymd(r, 1940, 66)),
            Kind::DateOfBirth,
        ),
        (
            "d1",
            column(200, |r, _| ymd(r, 1940, 66)),
            Kind::DateOfBirth,
        ),
        (
            "postcode",
            column(200, |r, _| format!("{} AB", 1000 + r.next() % 8999)),
            Kind::PostalCode,
        ),
        (
            "street",
            column(200, |r, i| format!("{} Main Street {i}", r.next() % 200)),
            Kind::Address,
        ),
    ];
    for (name, values, kind) in cases {
        let found = detect(name, values.iter().map(String::as_str), today(), true);
        assert_eq!(
            found.first().map(|f| f.kind),
            Some(kind),
            "{name}: {found:?}"
        );
        let f = &found[0];
        assert_eq!(f.of, 200);
        assert!(
            f.evidence
                .starts_with(&format!("{} of 200 sampled values", f.matched)),
            "{}",
            f.evidence
        );
    }
}

#[test]
fn the_share_needed_is_eighty_percent() {
    let mixed = |good: usize| {
        column(100, |_, i| {
            if i < good {
                format!("p{i}@example.org")
            } else {
                format!("n/a {i}")
            }
        })
    };
    assert_eq!(kinds("x", &mixed(80)), vec![Kind::Email]);
    assert!(kinds("x", &mixed(79)).is_empty());
    let f = detect("x", mixed(80).iter().map(String::as_str), today(), false);
    assert_eq!(
        f[0].evidence,
        "80 of 100 values (80 %) are e-mail addresses"
    );
}

#[test]
fn look_alikes_are_not_flagged() {
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "order_number",
            column(500, |_, i| format!("ORD-{:06}", 100_000 + i)),
        ),
        ("order_no", column(500, |_, i| format!("{:010}", 1_000 + i))),
        (
            "sku",
            column(500, |r, _| format!("SKU-{}-{}", r.digits(4), r.digits(3))),
        ),
        ("sku2", column(500, |r, _| format!("AB{}", r.digits(16)))),
        (
            "created_at",
            column(500, |r, _| format!("2025-{}:00Z", day_and_minute(r, 'T'))),
        ),
        (
            "updated",
            column(500, |r, _| {
                let minute = day_and_minute(r, ' ');
                format!("2025-{minute}:{:02}", r.next() % 60)
            }),
        ),
        ("order_date", column(500, |r, _| ymd(r, 2015, 11))),
        (
            "uuid",
            column(500, |r, _| {
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    r.next(),
                    r.next() % 65536,
                    r.next() % 4096,
                    r.next() % 4096,
                    r.next() * r.next() % (1 << 48)
                )
            }),
        ),
        ("token", column(500, |r, _| r.digits(16))),
        (
            "card_like",
            column(500, |r, _| format!("4{}", r.digits(15))),
        ),
        ("id", column(500, |_, i| (1 + i).to_string())),
        ("big_id", column(500, |_, i| (100_000_000 + i).to_string())),
        (
            "account",
            column(500, |_, i| {
                (4_000_000_000_000_000u64 + i as u64).to_string()
            }),
        ),
        (
            "version",
            column(500, |r, _| {
                format!("{}.{}.{}", r.next() % 10, r.next() % 20, r.next() % 50)
            }),
        ),
        (
            "amount",
            column(500, |r, _| {
                format!("{}.{:02}", r.next() % 100_000, r.next() % 100)
            }),
        ),
        (
            "country",
            column(500, |r, _| {
                ["GB", "NL", "US", "DE"][(r.next() % 4) as usize].to_string()
            }),
        ),
        (
            "zip_file",
            column(500, |r, _| format!("archive-{}.zip", r.digits(3))),
        ),
    ];
    for (name, values) in cases {
        assert_eq!(kinds(name, &values), vec![], "{name}: {:?}", &values[..3]);
    }
}

#[test]
fn name_hints() {
    let h = Hints::of("customerPhone");
    assert!(h.phone && !h.postal);
    assert!(Hints::of("DateOfBirth").birth);
    assert!(Hints::of("ZIP").postal);
    assert!(Hints::of("billing_address_line1").address);
    assert!(!Hints::of("zip_file").address);
}
