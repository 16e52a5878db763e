//! Value generators and the small word lists they draw from.
//!
//! Every value is a pure function of (seed, stream, column, row id): a SplitMix64 hash
//! of those, never a running random generator. Row 7 is therefore the same whether it
//! is read in a batch of 1 or of 8192, in a full read or after an incremental resume.
//! Columns are built whole (one Arrow array per batch and column), which is what makes
//! millions of rows per second possible.

use std::fmt::Write as _;
use std::sync::Arc;

use ferry_core::arrow_array::builder::{BinaryBuilder, StringBuilder};
use ferry_core::arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use ferry_core::arrow_array::{ArrayRef, ArrowPrimitiveType, BooleanArray, PrimitiveArray};
use ferry_core::FerryType;

use crate::config::Kind;

/// The SplitMix64 increment (2^64 / golden ratio).
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a fast, well-mixed bijection of `u64`.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hash of row `id` under `key`: the `id`-th output of a SplitMix64 seeded with `key`.
#[inline]
pub fn cell(key: u64, id: u64) -> u64 {
    mix(key.wrapping_add(id.wrapping_mul(GOLDEN)))
}

/// A key for values that depend on `seed` and the names in `parts` (stream, column).
pub fn key_of(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a 64
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    mix(mix(seed) ^ h)
}

/// An index below `n` from a hash, without modulo bias worth mentioning (Lemire).
#[inline]
pub fn pick(h: u64, n: usize) -> usize {
    ((h as u128 * n as u128) >> 64) as usize
}

/// Microseconds of 2020-01-01T00:00:00Z, the first `timestamp` value.
pub const TIMESTAMP_BASE: i64 = 1_577_836_800_000_000;
/// Microseconds between two consecutive ids' `timestamp` values (before jitter).
pub const TIMESTAMP_STEP: i64 = 60_000_000;
/// Days from 1970-01-01 to 2015-01-01, the first `date` value.
pub const DATE_BASE: i32 = 16_436;
/// Days in 2015–2019.
pub const DATE_SPAN: usize = 1826;
/// Most rows a stream may have, so ids and timestamps never overflow.
pub const MAX_ROWS: u64 = 100_000_000_000;

const NULL_SALT: u64 = 0x6e75_6c6c_6e75_6c6c;
const PPM: usize = 1_000_000;

/// The bounds of a column's values, already converted to its type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bounds {
    /// No bounds apply.
    None,
    /// Inclusive int64 bounds.
    Int(i64, i64),
    /// Float bounds.
    Float(f64, f64),
    /// Inclusive bounds in units of the decimal's scale.
    Decimal(i128, i128),
}

/// How to make one column: its kind, type and hash keys.
#[derive(Debug, Clone)]
pub struct ColumnGen {
    /// What the values look like.
    pub kind: Kind,
    /// The Arrow/Ferry type of the column.
    pub ty: FerryType,
    /// Key of this column's own values (and of its NULLs).
    pub key: u64,
    /// Key shared by the row's person kinds, so name and email belong together.
    pub person: u64,
    /// Key shared by the row's order kinds, so the total is the sum of the items.
    pub order: u64,
    /// NULLs per million rows.
    pub nulls_ppm: u32,
    /// Value bounds.
    pub bounds: Bounds,
}

impl ColumnGen {
    #[inline]
    fn is_null(&self, id: u64) -> bool {
        self.nulls_ppm > 0
            && pick(mix(cell(self.key, id) ^ NULL_SALT), PPM) < self.nulls_ppm as usize
    }

    fn hash_key(&self) -> u64 {
        match self.kind {
            Kind::FirstName | Kind::LastName | Kind::Name | Kind::Email => self.person,
            Kind::OrderItems | Kind::OrderTotal => self.order,
            _ => self.key,
        }
    }

    /// The values of ids `first .. first + n`.
    pub fn build(&self, first: u64, n: usize) -> ArrayRef {
        let ids = first..first + n as u64;
        match (self.kind, self.bounds) {
            (Kind::Sequence, _) => Arc::new(self.primitive::<Int64Type>(ids, |id, _| id as i64)),
            (Kind::Int, Bounds::Int(lo, hi)) => {
                Arc::new(self.primitive::<Int64Type>(ids, move |_, h| int_in(h, lo, hi)))
            }
            (Kind::Float, Bounds::Float(lo, hi)) => {
                Arc::new(self.primitive::<Float64Type>(ids, move |_, h| float_in(h, lo, hi)))
            }
            (Kind::Decimal, Bounds::Decimal(lo, hi)) => self
                .decimal(self.primitive::<Decimal128Type>(ids, move |_, h| decimal_in(h, lo, hi))),
            (Kind::OrderTotal, _) => {
                let scale = match self.ty {
                    FerryType::Decimal { scale, .. } => scale,
                    _ => 2,
                };
                self.decimal(self.primitive::<Decimal128Type>(ids, move |_, h| {
                    rescale_cents(order_total_cents(h), scale)
                }))
            }
            (Kind::Bool, _) => {
                let key = self.key;
                Arc::new(if self.nulls_ppm == 0 {
                    BooleanArray::from_iter(ids.map(|id| Some(cell(key, id) >> 63 == 1)))
                } else {
                    BooleanArray::from_iter(
                        ids.map(|id| (!self.is_null(id)).then(|| cell(key, id) >> 63 == 1)),
                    )
                })
            }
            (Kind::Date, _) => Arc::new(
                self.primitive::<Date32Type>(ids, |_, h| DATE_BASE + pick(h, DATE_SPAN) as i32),
            ),
            (Kind::Timestamp, _) => Arc::new(
                self.primitive::<TimestampMicrosecondType>(ids, timestamp)
                    .with_timezone("UTC"),
            ),
            (Kind::Bytes, _) => {
                let mut b = BinaryBuilder::with_capacity(n, n * 16);
                for id in ids {
                    if self.is_null(id) {
                        b.append_null();
                    } else {
                        b.append_value(bytes16(cell(self.key, id)));
                    }
                }
                Arc::new(b.finish())
            }
            (kind, _) => self.strings(ids, kind),
        }
    }

    fn primitive<T: ArrowPrimitiveType>(
        &self,
        ids: std::ops::Range<u64>,
        value: impl Fn(u64, u64) -> T::Native,
    ) -> PrimitiveArray<T> {
        let key = self.hash_key();
        if self.nulls_ppm == 0 {
            PrimitiveArray::from_iter_values(ids.map(|id| value(id, cell(key, id))))
        } else {
            PrimitiveArray::from_iter(
                ids.map(|id| (!self.is_null(id)).then(|| value(id, cell(key, id)))),
            )
        }
    }

    fn decimal(&self, a: PrimitiveArray<Decimal128Type>) -> ArrayRef {
        let (p, s) = match self.ty {
            FerryType::Decimal { precision, scale } => (precision, scale),
            _ => (12, 2),
        };
        Arc::new(
            a.with_precision_and_scale(p, s)
                .expect("precision and scale were validated"),
        )
    }

    fn strings(&self, ids: std::ops::Range<u64>, kind: Kind) -> ArrayRef {
        let n = (ids.end - ids.start) as usize;
        let mut b = StringBuilder::with_capacity(n, n * avg_len(kind));
        let mut s = String::with_capacity(256);
        let key = self.hash_key();
        for id in ids {
            if self.is_null(id) {
                b.append_null();
                continue;
            }
            s.clear();
            write_string(kind, id, cell(key, id), &mut s);
            b.append_value(&s);
        }
        Arc::new(b.finish())
    }
}

fn avg_len(kind: Kind) -> usize {
    match kind {
        Kind::Email => 32,
        Kind::Sentence | Kind::Json => 56,
        Kind::OrderItems => 160,
        Kind::Uuid => 36,
        Kind::Name | Kind::Note | Kind::CountryName => 16,
        _ => 8,
    }
}

/// Writes the string value of `kind` for row `id` with hash `h` into `s`.
pub fn write_string(kind: Kind, id: u64, h: u64, s: &mut String) {
    match kind {
        Kind::FirstName => s.push_str(person(h).0),
        Kind::LastName => s.push_str(person(h).1),
        Kind::Name => {
            let (first, last, _) = person(h);
            s.push_str(first);
            s.push(' ');
            s.push_str(last);
        }
        Kind::Email => {
            let (first, last, domain) = person(h);
            push_lower(s, first);
            s.push('.');
            push_lower(s, last);
            let _ = write!(s, "{id}@");
            s.push_str(domain);
        }
        Kind::Country => s.push_str(COUNTRIES[pick(h, COUNTRIES.len())].0),
        Kind::CountryName => s.push_str(COUNTRIES[pick(h, COUNTRIES.len())].1),
        Kind::Currency => s.push_str(CURRENCIES[pick(h, CURRENCIES.len())]),
        Kind::Status => s.push_str(STATUSES[pick(h, STATUSES.len())]),
        Kind::Word => s.push_str(WORDS[pick(h, WORDS.len())]),
        Kind::Note => s.push_str(NOTES[pick(h, NOTES.len())]),
        Kind::Sentence => {
            let words = 4 + pick(h, 6);
            for k in 0..words {
                let w = WORDS[pick(cell(h, k as u64), WORDS.len())];
                if k == 0 {
                    let mut chars = w.chars();
                    if let Some(c) = chars.next() {
                        s.push(c.to_ascii_uppercase());
                        s.push_str(chars.as_str());
                    }
                } else {
                    s.push(' ');
                    s.push_str(w);
                }
            }
            s.push('.');
        }
        Kind::Uuid => {
            let b = bytes16(h);
            for (i, byte) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                s.push(HEX[(byte >> 4) as usize] as char);
                s.push(HEX[(byte & 15) as usize] as char);
            }
        }
        Kind::Json => {
            let h2 = mix(h);
            let _ = write!(
                s,
                r#"{{"source":"{}","score":{},"tags":["#,
                SOURCES[pick(h, SOURCES.len())],
                pick(h2, 101)
            );
            for k in 0..pick(mix(h2), 4) {
                if k > 0 {
                    s.push(',');
                }
                let _ = write!(s, "\"{}\"", WORDS[pick(cell(h2, k as u64), WORDS.len())]);
            }
            s.push_str("]}");
        }
        Kind::OrderItems => {
            s.push('[');
            for (k, (product, qty)) in order_lines(h).enumerate() {
                if k > 0 {
                    s.push(',');
                }
                let (name, cents) = PRODUCTS[product];
                let _ = write!(
                    s,
                    r#"{{"sku":"SKU-{}","product":"{name}","qty":{qty},"unit_price":"{}.{:02}"}}"#,
                    1001 + product,
                    cents / 100,
                    cents % 100
                );
            }
            s.push(']');
        }
        // Non-string kinds never get here: `ColumnGen::build` handles them.
        _ => {}
    }
}

/// The row's person: first name, last name, email domain.
#[inline]
fn person(h: u64) -> (&'static str, &'static str, &'static str) {
    let h2 = mix(h);
    (
        FIRST_NAMES[pick(h, FIRST_NAMES.len())],
        LAST_NAMES[pick(h2, LAST_NAMES.len())],
        DOMAINS[pick(h2.rotate_left(32), DOMAINS.len())],
    )
}

fn push_lower(s: &mut String, w: &str) {
    s.extend(w.chars().map(|c| c.to_ascii_lowercase()));
}

/// The order lines of an order with hash `h`: one to three (product index, quantity).
pub fn order_lines(h: u64) -> impl Iterator<Item = (usize, u32)> {
    (0..1 + pick(h, 3) as u64).map(move |k| {
        let hk = cell(h, k + 1);
        (pick(hk, PRODUCTS.len()), 1 + pick(mix(hk), 4) as u32)
    })
}

/// The total of an order with hash `h`, in cents.
pub fn order_total_cents(h: u64) -> i128 {
    order_lines(h)
        .map(|(p, q)| PRODUCTS[p].1 as i128 * q as i128)
        .sum()
}

/// The largest possible order total, in cents (three lines of four of the dearest product).
pub fn max_order_total_cents() -> i128 {
    3 * 4 * PRODUCTS.iter().map(|p| p.1 as i128).max().unwrap_or(0)
}

/// Cents as a decimal of `scale`, rounded half away from zero when the scale is below 2.
pub fn rescale_cents(cents: i128, scale: i8) -> i128 {
    if scale >= 2 {
        cents * 10i128.pow((scale - 2) as u32)
    } else {
        let d = 10i128.pow((2 - scale) as u32);
        (cents + d / 2) / d
    }
}

#[inline]
fn int_in(h: u64, lo: i64, hi: i64) -> i64 {
    let span = (hi as i128 - lo as i128 + 1) as u128;
    (lo as i128 + ((h as u128 * span) >> 64) as i128) as i64
}

#[inline]
fn float_in(h: u64, lo: f64, hi: f64) -> f64 {
    let unit = (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    ((lo + unit * (hi - lo)) * 100.0).round() / 100.0
}

#[inline]
fn decimal_in(h: u64, lo: i128, hi: i128) -> i128 {
    let span = (hi - lo + 1) as u128;
    // A 64×(≤128)-bit product would overflow for spans above 2^64; split the span.
    if span <= u64::MAX as u128 {
        lo + ((h as u128 * span) >> 64) as i128
    } else {
        let wide = ((h as u128) << 64) | mix(h) as u128;
        lo + (wide % span) as i128
    }
}

#[inline]
fn timestamp(id: u64, h: u64) -> i64 {
    TIMESTAMP_BASE + (id as i64 - 1) * TIMESTAMP_STEP + pick(h, 60_000) as i64 * 1000
}

fn bytes16(h: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&h.to_be_bytes());
    b[8..].copy_from_slice(&mix(h ^ GOLDEN).to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// First names (ASCII, so emails need no transliteration).
pub const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Carla", "David", "Elif", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kenji",
    "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera",
    "William", "Xenia", "Yusuf", "Zoe", "Amir", "Chloe", "Diego", "Emma", "Farah", "Lucas", "Maya",
    "Noah", "Olga", "Pablo", "Sofia", "Theo", "Lea", "Mateo",
];

/// Last names.
pub const LAST_NAMES: &[&str] = &[
    "Schmidt",
    "Martin",
    "Rossi",
    "Garcia",
    "Nowak",
    "Jensen",
    "Dubois",
    "Silva",
    "Kowalski",
    "Novak",
    "Smith",
    "Brown",
    "Meyer",
    "Weber",
    "Fischer",
    "Lopez",
    "Moreau",
    "Bianchi",
    "Hansen",
    "Berg",
    "Kim",
    "Tanaka",
    "Patel",
    "Singh",
    "Okafor",
    "Mensah",
    "Cohen",
    "Larsen",
    "Costa",
    "Ferreira",
    "Jovanovic",
    "Horvat",
    "Yilmaz",
    "Demir",
    "Nielsen",
    "Virtanen",
    "Andersson",
    "Murphy",
    "Walsh",
    "Keller",
];

/// Email domains, all reserved for examples (RFC 2606), so no real inbox is named.
pub const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
];

/// ISO 3166 codes and English names.
pub const COUNTRIES: &[(&str, &str)] = &[
    ("DE", "Germany"),
    ("FR", "France"),
    ("NL", "Netherlands"),
    ("BE", "Belgium"),
    ("AT", "Austria"),
    ("CH", "Switzerland"),
    ("IT", "Italy"),
    ("ES", "Spain"),
    ("PT", "Portugal"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("SE", "Sweden"),
    ("NO", "Norway"),
    ("DK", "Denmark"),
    ("FI", "Finland"),
    ("PL", "Poland"),
    ("CZ", "Czechia"),
    ("US", "United States"),
    ("CA", "Canada"),
    ("BR", "Brazil"),
    ("MX", "Mexico"),
    ("JP", "Japan"),
    ("IN", "India"),
    ("AU", "Australia"),
    ("ZA", "South Africa"),
];

/// Currency codes, repeated to weight the common ones.
pub const CURRENCIES: &[&str] = &[
    "EUR", "EUR", "EUR", "EUR", "USD", "USD", "USD", "GBP", "GBP", "CHF", "SEK", "DKK", "PLN",
];

/// Order statuses, repeated to weight the common ones.
pub const STATUSES: &[&str] = &[
    "delivered",
    "delivered",
    "delivered",
    "delivered",
    "delivered",
    "shipped",
    "shipped",
    "paid",
    "paid",
    "pending",
    "pending",
    "cancelled",
    "refunded",
];

/// Plain words for `word`, `sentence` and JSON tags.
pub const WORDS: &[&str] = &[
    "alpha", "amber", "anchor", "apple", "arrow", "autumn", "basket", "beacon", "berry", "blue",
    "bridge", "canal", "cedar", "cloud", "copper", "coral", "delta", "desert", "echo", "ember",
    "falcon", "fern", "forest", "garden", "glacier", "harbor", "hazel", "island", "jasper",
    "lantern", "lemon", "maple", "meadow", "mint", "north", "ocean", "olive", "orbit", "pebble",
    "pine", "quartz", "river", "saffron", "silver", "spruce", "stone", "summer", "thunder",
    "valley", "willow",
];

/// Short customer notes.
pub const NOTES: &[&str] = &[
    "Leave at the front door",
    "Please call before delivery",
    "Gift wrap, please",
    "Deliver after 5 pm",
    "Ring the bell twice",
    "Fragile: handle with care",
    "No plastic packaging, please",
    "Back entrance, second floor",
    "Invoice to the company address",
    "Combine with my previous order",
    "Do not bend",
    "A neighbour can accept the parcel",
];

/// Where a `json` record came from.
pub const SOURCES: &[&str] = &["web", "app", "store", "phone", "partner"];

/// Products of `order_items`: name and unit price in cents (SKU = 1001 + index).
pub const PRODUCTS: &[(&str, u32)] = &[
    ("Desk lamp", 2490),
    ("Notebook A5", 450),
    ("Ballpoint pens (10)", 390),
    ("Coffee beans 1 kg", 1890),
    ("Ceramic mug", 990),
    ("USB-C cable", 1290),
    ("Wireless mouse", 2990),
    ("Keyboard", 5990),
    ("Monitor stand", 3490),
    ("Water bottle", 1590),
    ("Backpack", 6990),
    ("Headphones", 8990),
    ("Desk chair", 19900),
    ("Plant pot", 1190),
    ("Tea sampler", 1490),
    ("Phone case", 1790),
    ("Sticky notes", 290),
    ("Stapler", 890),
    ("Webcam", 4990),
    ("Laptop sleeve", 2290),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_4_layout() {
        let mut s = String::new();
        write_string(Kind::Uuid, 1, 12345, &mut s);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!("89ab".contains(&s[19..20]), "{s}");
    }

    #[test]
    fn order_total_is_the_sum_of_the_items() {
        for id in 1..200u64 {
            let h = cell(99, id);
            let mut s = String::new();
            write_string(Kind::OrderItems, id, h, &mut s);
            let items: Vec<serde_json::Value> = serde_json::from_str(&s).unwrap();
            assert!((1..=3).contains(&items.len()));
            let sum: i128 = items
                .iter()
                .map(|i| {
                    let price: String = i["unit_price"].as_str().unwrap().replace('.', "");
                    price.parse::<i128>().unwrap() * i["qty"].as_i64().unwrap() as i128
                })
                .sum();
            assert_eq!(sum, order_total_cents(h));
            assert!(sum <= max_order_total_cents());
        }
    }

    #[test]
    fn json_kind_is_valid_json() {
        for id in 1..100u64 {
            let mut s = String::new();
            write_string(Kind::Json, id, cell(7, id), &mut s);
            let v: serde_json::Value =
                serde_json::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(v["score"].as_u64().unwrap() <= 100);
        }
    }

    #[test]
    fn ranges_are_inclusive_and_respected() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..10_000u64 {
            let v = int_in(cell(1, id), 1, 3);
            assert!((1..=3).contains(&v));
            seen.insert(v);
            let d = decimal_in(cell(2, id), -5, 5);
            assert!((-5..=5).contains(&d));
            let f = float_in(cell(3, id), 1.0, 2.0);
            assert!((1.0..=2.0).contains(&f));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(int_in(u64::MAX, i64::MIN, i64::MAX), i64::MAX);
        assert_eq!(rescale_cents(12345, 2), 12345);
        assert_eq!(rescale_cents(12345, 4), 1234500);
        assert_eq!(rescale_cents(12350, 0), 124);
    }

    #[test]
    fn timestamps_grow_with_id() {
        let mut last = i64::MIN;
        for id in 1..10_000u64 {
            let t = timestamp(id, cell(5, id));
            assert!(t > last);
            last = t;
        }
    }
}
