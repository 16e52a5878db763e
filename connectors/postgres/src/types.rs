//! Type mapping between Ferry's nine types and PostgreSQL, both ways, and the binary
//! `COPY` format both directions use.
//!
//! Reading maps each column's type (domains by their base type) to a Ferry type:
//!
//! | PostgreSQL                                                  | Ferry type |
//! |-------------------------------------------------------------|------------|
//! | `boolean`                                                   | `bool`     |
//! | `smallint`, `integer`, `bigint`                             | `int64`    |
//! | `real`, `double precision`                                  | `float64`  |
//! | `numeric(p,s)` (p ≤ 38, s ≥ 0)                              | `decimal(p,s)` |
//! | `numeric` without precision                                 | `decimal(38,9)` (a value that does not fit is a rejected row naming the column) |
//! | `numeric(p,s)` with p > 38 or s < 0                          | `string` (exact text) |
//! | `text`, `varchar(n)`, `char(n)`, `name`, `citext`, `uuid`   | `string`   |
//! | `bytea`                                                     | `binary`   |
//! | `date`                                                      | `date`     |
//! | `timestamp`, `timestamptz` (without time zone taken as UTC) | `timestamp` |
//! | `json`, `jsonb`                                             | `json`     |
//! | `inet`, `cidr`, `macaddr`, `macaddr8`, `interval`, `money`  | `string` (the value's text, as `psql` shows it) |
//! | arrays, enums, ranges, composite, … (anything else)         | `json` (the value's `to_json`) |
//!
//! Writing creates `boolean`, `bigint`, `double precision`, `numeric(p,s)`, `text`,
//! `bytea`, `date`, `timestamptz` and `jsonb` columns, and also fills existing columns
//! of related types (see the `encoder` module).

use std::fmt::Write as _;

use bytes::{Buf, BufMut, BytesMut};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::cursor::{Case, Cursor, CursorOf};
use ferry_core::typed::TypedColumn;
use ferry_core::types::{DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE};
use ferry_core::values::{days_to_date, format_timestamp_micros, preview};
use ferry_core::FerryType;
use ferry_sql::read::{utf8, Col, ReadColumns, RowValues};
use tokio_postgres::types::{Kind, Type};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The signature every binary `COPY` stream starts with.
const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// What a PostgreSQL column holds, as far as reading and writing its binary form goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric`
    Numeric,
    /// `text`, `varchar`, `char`, `name`, `citext`: UTF-8 text on the wire.
    Text,
    /// `uuid`
    Uuid,
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `timestamp` (without time zone)
    Timestamp,
    /// `timestamptz`
    Timestamptz,
    /// `json`
    Json,
    /// `jsonb`
    Jsonb,
    /// `inet`, `cidr`, `macaddr`, `macaddr8`, `interval`, `money`: read as their text
    /// (as `psql` shows it), as other tools deliver them, not as quoted JSON strings.
    Plain,
    /// Anything else: read through `to_json`.
    Other,
}

/// A column's type: its kind, type modifier (`numeric(p,s)`, `varchar(n)`) and SQL name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgType {
    /// How its values travel.
    pub kind: PgKind,
    /// The type modifier (-1: none).
    pub typmod: i32,
    /// The type as SQL writes it (`numeric(12,2)`, `character varying(20)`).
    pub sql: String,
}

fn kind_of(oid: u32, name: &str) -> PgKind {
    match oid {
        16 => PgKind::Bool,
        17 => PgKind::Bytea,
        19 | 25 | 1042 | 1043 => PgKind::Text,
        20 => PgKind::Int8,
        21 => PgKind::Int2,
        23 => PgKind::Int4,
        114 => PgKind::Json,
        700 => PgKind::Float4,
        701 => PgKind::Float8,
        1082 => PgKind::Date,
        1114 => PgKind::Timestamp,
        1184 => PgKind::Timestamptz,
        1700 => PgKind::Numeric,
        2950 => PgKind::Uuid,
        3802 => PgKind::Jsonb,
        // inet, cidr, macaddr, macaddr8, interval, money
        869 | 650 | 829 | 774 | 1186 | 790 => PgKind::Plain,
        // an extension type without a fixed OID whose binary form is text's
        _ if name == "citext" => PgKind::Text,
        _ => PgKind::Other,
    }
}

impl PgType {
    /// From the catalog: the (base) type's OID, name and category, the type modifier and
    /// `format_type`.
    pub(crate) fn from_catalog(
        oid: u32,
        name: &str,
        category: &str,
        typmod: i32,
        sql: String,
    ) -> PgType {
        let kind = if category == "A" {
            PgKind::Other
        } else {
            kind_of(oid, name)
        };
        PgType { kind, typmod, sql }
    }

    /// From a result column's type as the driver describes it.
    pub(crate) fn from_driver(ty: &Type, typmod: i32) -> PgType {
        let mut base = ty;
        while let Kind::Domain(inner) = base.kind() {
            base = inner;
        }
        let kind = match base.kind() {
            Kind::Simple => kind_of(base.oid(), base.name()),
            _ => PgKind::Other,
        };
        PgType {
            kind,
            typmod,
            sql: ty.name().to_string(),
        }
    }

    /// `(precision, scale)` of a `numeric(p,s)`; `None` without a type modifier.
    pub fn numeric_precision_scale(&self) -> Option<(i32, i32)> {
        if self.kind != PgKind::Numeric || self.typmod < 4 {
            return None;
        }
        let m = self.typmod - 4;
        let p = (m >> 16) & 0xffff;
        // the scale is an 11-bit signed number since PostgreSQL 15
        let s = ((m & 0x7ff) ^ 1024) - 1024;
        Some((p, s))
    }

    /// The Ferry type its values read as.
    pub fn ferry_type(&self) -> FerryType {
        match self.kind {
            PgKind::Bool => FerryType::Bool,
            PgKind::Int2 | PgKind::Int4 | PgKind::Int8 => FerryType::Int64,
            PgKind::Float4 | PgKind::Float8 => FerryType::Float64,
            PgKind::Numeric => match self.numeric_precision_scale() {
                None => FerryType::Decimal {
                    precision: DEFAULT_DECIMAL_PRECISION,
                    scale: DEFAULT_DECIMAL_SCALE,
                },
                Some((p, s)) if (1..=38).contains(&p) && (0..=p).contains(&s) => {
                    FerryType::Decimal {
                        precision: p as u8,
                        scale: s as i8,
                    }
                }
                // wider than Arrow's Decimal128, or a negative scale: keep the exact text
                Some(_) => FerryType::String,
            },
            PgKind::Text | PgKind::Uuid | PgKind::Plain => FerryType::String,
            PgKind::Bytea => FerryType::Binary,
            PgKind::Date => FerryType::Date,
            PgKind::Timestamp | PgKind::Timestamptz => FerryType::Timestamp,
            PgKind::Json | PgKind::Jsonb | PgKind::Other => FerryType::Json,
        }
    }
}

/// The SQL type Ferry gives a new column of type `ty`.
pub fn ddl_type(ty: FerryType) -> String {
    match ty {
        FerryType::Bool => "boolean".into(),
        FerryType::Int64 => "bigint".into(),
        FerryType::Float64 => "double precision".into(),
        FerryType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        FerryType::String => "text".into(),
        FerryType::Binary => "bytea".into(),
        FerryType::Date => "date".into(),
        FerryType::Timestamp => "timestamptz".into(),
        FerryType::Json => "jsonb".into(),
    }
}

/// The [`PgType`] of a column Ferry creates for type `ty`.
pub(crate) fn created_type(ty: FerryType) -> PgType {
    let (kind, typmod) = match ty {
        FerryType::Bool => (PgKind::Bool, -1),
        FerryType::Int64 => (PgKind::Int8, -1),
        FerryType::Float64 => (PgKind::Float8, -1),
        FerryType::Decimal { precision, scale } => (
            PgKind::Numeric,
            ((precision as i32) << 16 | (scale as i32 & 0x7ff)) + 4,
        ),
        FerryType::String => (PgKind::Text, -1),
        FerryType::Binary => (PgKind::Bytea, -1),
        FerryType::Date => (PgKind::Date, -1),
        FerryType::Timestamp => (PgKind::Timestamptz, -1),
        FerryType::Json => (PgKind::Jsonb, -1),
    };
    PgType {
        kind,
        typmod,
        sql: ddl_type(ty),
    }
}

/// Which columns of a stream (of these types) a read can go by: those `ORDER BY` orders
/// and `>` compares the way their values are.
pub(crate) struct Cursors<'a>(pub &'a [PgType]);

impl ferry_sql::read::Cursors for Cursors<'_> {
    const CASE: Case = Case::Exact;

    fn supported(&self, index: usize, _: FerryType) -> Result<(), String> {
        let t = &self.0[index];
        match t.kind {
            PgKind::Int2
            | PgKind::Int4
            | PgKind::Int8
            | PgKind::Float4
            | PgKind::Float8
            | PgKind::Numeric
            | PgKind::Text
            | PgKind::Uuid
            | PgKind::Date
            | PgKind::Timestamp
            | PgKind::Timestamptz => Ok(()),
            _ => Err(format!(
                "of type {}; a cursor must be a number, text, uuid, date or timestamp",
                t.sql
            )),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Reading: binary COPY rows into Arrow columns.

/// Splits a binary `COPY … TO STDOUT` stream into rows, across chunk boundaries.
pub(crate) struct CopyReader {
    buf: BytesMut,
    header_done: bool,
    ended: bool,
}

/// What [`CopyReader::next_row`] found.
pub(crate) enum Next {
    /// A row of this many bytes is at the front; its fields are in the offsets.
    Row(usize),
    /// More bytes are needed.
    More,
    /// The trailer: no more rows.
    End,
}

impl CopyReader {
    pub fn new() -> CopyReader {
        CopyReader {
            buf: BytesMut::with_capacity(64 * 1024),
            header_done: false,
            ended: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The bytes buffered (a row's fields index into these).
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the first `n` bytes (a row that was read).
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }

    /// Whether the trailer was seen.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Finds the next row; `fields` gets each field's byte range (`None`: NULL).
    pub fn next_row(
        &mut self,
        ncols: usize,
        fields: &mut Vec<Option<(usize, usize)>>,
    ) -> Result<Next, String> {
        if !self.header_done {
            if self.buf.len() < 19 {
                return Ok(Next::More);
            }
            if &self.buf[..11] != COPY_SIGNATURE {
                return Err(
                    "the server's COPY data does not start with the binary signature".into(),
                );
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes")) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(Next::More);
            }
            self.buf.advance(19 + ext);
            self.header_done = true;
        }
        if self.ended {
            return Ok(Next::End);
        }
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(Next::More);
        }
        let count = i16::from_be_bytes([b[0], b[1]]);
        if count == -1 {
            self.ended = true;
            self.buf.advance(2);
            return Ok(Next::End);
        }
        if count as usize != ncols {
            return Err(format!(
                "the server sent a row of {count} fields, {ncols} were expected"
            ));
        }
        fields.clear();
        let mut at = 2;
        for _ in 0..ncols {
            if b.len() < at + 4 {
                return Ok(Next::More);
            }
            let len = i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
            at += 4;
            if len < 0 {
                fields.push(None);
                continue;
            }
            let len = len as usize;
            if b.len() < at + len {
                return Ok(Next::More);
            }
            fields.push(Some((at, at + len)));
            at += len;
        }
        Ok(Next::Row(at))
    }
}

/// Appends a non-NULL value of kind `kind` to `col`, or appends nothing and says what was
/// wrong. Text, `json`, `to_json` output and `numeric` kept as text go into string columns.
fn put(col: &mut Col, kind: PgKind, v: &[u8]) -> Result<(), String> {
    match (col, kind) {
        (Col::Bool(b), PgKind::Bool) => b.append_value(fixed::<1>(v)?[0] != 0),
        (Col::Int(b), PgKind::Int2) => b.append_value(i16::from_be_bytes(fixed(v)?) as i64),
        (Col::Int(b), PgKind::Int4) => b.append_value(i32::from_be_bytes(fixed(v)?) as i64),
        (Col::Int(b), PgKind::Int8) => b.append_value(i64::from_be_bytes(fixed(v)?)),
        (Col::Float(b), PgKind::Float4) => b.append_value(f32::from_be_bytes(fixed(v)?) as f64),
        (Col::Float(b), PgKind::Float8) => b.append_value(f64::from_be_bytes(fixed(v)?)),
        (Col::Dec(b, p, s), PgKind::Numeric) => b.append_value(numeric_to_i128(v, *p, *s)?),
        (Col::Str(b), PgKind::Numeric) => b.append_value(numeric_text(v)?),
        (Col::Str(b), PgKind::Text | PgKind::Json | PgKind::Plain | PgKind::Other) => {
            b.append_value(utf8(v)?)
        }
        (Col::Str(b), PgKind::Jsonb) => b.append_value(jsonb_text(v)?),
        (Col::Str(b), PgKind::Uuid) => b.append_value(uuid_text(v)?),
        (Col::Bin(b), PgKind::Bytea) => b.append_value(v),
        (Col::Date(b), PgKind::Date) => b.append_value(date_days(v)?),
        (Col::Ts(b), PgKind::Timestamp | PgKind::Timestamptz) => {
            b.append_value(timestamp_micros(v)?)
        }
        (_, kind) => return Err(format!("cannot read a {kind:?} value into this column")),
    }
    Ok(())
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, the server sent {}", v.len()))
}

fn jsonb_text(v: &[u8]) -> Result<&str, String> {
    match v.split_first() {
        Some((1, rest)) => utf8(rest),
        _ => Err("unknown jsonb binary version".into()),
    }
}

fn uuid_text(v: &[u8]) -> Result<String, String> {
    let b: [u8; 16] = fixed(v)?;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    Ok(s)
}

fn date_days(v: &[u8]) -> Result<i32, String> {
    let d = i32::from_be_bytes(fixed(v)?);
    match d {
        i32::MAX => Err("`infinity` is not a date Ferry can carry".into()),
        i32::MIN => Err("`-infinity` is not a date Ferry can carry".into()),
        d => d
            .checked_add(PG_EPOCH_DAYS)
            .ok_or_else(|| "the date is out of range".to_string()),
    }
}

fn timestamp_micros(v: &[u8]) -> Result<i64, String> {
    let t = i64::from_be_bytes(fixed(v)?);
    match t {
        i64::MAX => Err("`infinity` is not a timestamp Ferry can carry".into()),
        i64::MIN => Err("`-infinity` is not a timestamp Ferry can carry".into()),
        t => t
            .checked_add(PG_EPOCH_MICROS)
            .ok_or_else(|| "the timestamp is out of range".to_string()),
    }
}

/// The parts of a binary `numeric`: sign word, weight, display scale, base-10000 digits.
struct Numeric<'a> {
    sign: u16,
    weight: i16,
    dscale: u16,
    digits: &'a [u8],
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl Numeric<'_> {
    fn parse(v: &[u8]) -> Result<Numeric<'_>, String> {
        if v.len() < 8 {
            return Err("a numeric value is too short".into());
        }
        let n = i16::from_be_bytes([v[0], v[1]]).max(0) as usize;
        if v.len() != 8 + 2 * n {
            return Err("a numeric value has a wrong length".into());
        }
        Ok(Numeric {
            weight: i16::from_be_bytes([v[2], v[3]]),
            sign: u16::from_be_bytes([v[4], v[5]]),
            dscale: u16::from_be_bytes([v[6], v[7]]),
            digits: &v[8..],
        })
    }

    fn digit(&self, i: usize) -> i64 {
        i16::from_be_bytes([self.digits[2 * i], self.digits[2 * i + 1]]) as i64
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    fn special(&self) -> Option<&'static str> {
        match self.sign {
            NUMERIC_NAN => Some("NaN"),
            NUMERIC_PINF => Some("Infinity"),
            NUMERIC_NINF => Some("-Infinity"),
            _ => None,
        }
    }

    fn text(&self) -> String {
        if let Some(s) = self.special() {
            return s.to_string();
        }
        let mut s = String::new();
        if self.sign == NUMERIC_NEG && self.ndigits() > 0 {
            s.push('-');
        }
        let weight = self.weight as i64;
        if weight < 0 {
            s.push('0');
        } else {
            for i in 0..=weight as usize {
                let d = if i < self.ndigits() { self.digit(i) } else { 0 };
                if i == 0 {
                    let _ = write!(s, "{d}");
                } else {
                    let _ = write!(s, "{d:04}");
                }
            }
        }
        let dscale = self.dscale as usize;
        if dscale > 0 {
            s.push('.');
            let start = s.len();
            let mut k = 1i64;
            while s.len() - start < dscale {
                let idx = weight + k;
                let d = if idx >= 0 && (idx as usize) < self.ndigits() {
                    self.digit(idx as usize)
                } else {
                    0
                };
                let _ = write!(s, "{d:04}");
                k += 1;
            }
            s.truncate(start + dscale);
        }
        s
    }

    /// Sign, weight and digits without trailing zero digits: equal for equal values.
    fn normalized(&self) -> (u16, i16, Vec<i64>) {
        let mut digits: Vec<i64> = (0..self.ndigits()).map(|i| self.digit(i)).collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        while digits.first() == Some(&0) {
            digits.remove(0);
        }
        if digits.is_empty() && self.special().is_none() {
            return (0, 0, digits);
        }
        (self.sign, self.weight, digits)
    }
}

/// The exact text of a binary `numeric` (`-12.50`, `NaN`).
pub(crate) fn numeric_text(v: &[u8]) -> Result<String, String> {
    Ok(Numeric::parse(v)?.text())
}

/// A binary `numeric` as the unscaled integer of a `decimal(p,s)`, or why it does not fit.
pub(crate) fn numeric_to_i128(v: &[u8], p: u8, s: i8) -> Result<i128, String> {
    let n = Numeric::parse(v)?;
    let does_not_fit = || format!("value {} does not fit decimal({p},{s})", n.text());
    if n.special().is_some() {
        return Err(does_not_fit());
    }
    let mut acc: i128 = 0;
    for i in 0..n.ndigits() {
        let d = n.digit(i) as i128;
        if d == 0 {
            continue;
        }
        // this digit counts 10000^(weight - i); as a multiple of 10^-s that is 10^e
        let e = 4 * (n.weight as i64 - i as i64) + s as i64;
        if e >= 0 {
            let scaled = 10i128
                .checked_pow(e as u32)
                .and_then(|m| m.checked_mul(d))
                .ok_or_else(does_not_fit)?;
            acc = acc.checked_add(scaled).ok_or_else(does_not_fit)?;
        } else if e > -4 {
            let div = 10i128.pow((-e) as u32);
            if d % div != 0 {
                return Err(does_not_fit());
            }
            acc += d / div;
        } else {
            return Err(does_not_fit());
        }
    }
    if acc >= 10i128.pow(p as u32) {
        return Err(does_not_fit());
    }
    Ok(if n.sign == NUMERIC_NEG { -acc } else { acc })
}

/// The text of a non-NULL binary value of kind `kind`: the cursor value saved in state
/// (PostgreSQL reads it back as the column's type), and the raw form of a rejected row.
pub(crate) fn value_text(kind: PgKind, v: &[u8]) -> Result<String, String> {
    Ok(match kind {
        PgKind::Bool => (fixed::<1>(v)?[0] != 0).to_string(),
        PgKind::Int2 => i16::from_be_bytes(fixed(v)?).to_string(),
        PgKind::Int4 => i32::from_be_bytes(fixed(v)?).to_string(),
        PgKind::Int8 => i64::from_be_bytes(fixed(v)?).to_string(),
        PgKind::Float4 => float_text(f32::from_be_bytes(fixed(v)?) as f64, true),
        PgKind::Float8 => float_text(f64::from_be_bytes(fixed(v)?), false),
        PgKind::Numeric => numeric_text(v)?,
        PgKind::Text | PgKind::Json | PgKind::Plain | PgKind::Other => utf8(v)?.to_string(),
        PgKind::Jsonb => jsonb_text(v)?.to_string(),
        PgKind::Uuid => uuid_text(v)?,
        PgKind::Bytea => {
            let mut s = String::with_capacity(2 + 2 * v.len());
            s.push_str("\\x");
            for b in v {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        PgKind::Date => match i32::from_be_bytes(fixed(v)?) {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            d => match d.checked_add(PG_EPOCH_DAYS).and_then(days_to_date) {
                Some(date) => date.to_string(),
                None => return Err("the date is out of range".into()),
            },
        },
        PgKind::Timestamp | PgKind::Timestamptz => match i64::from_be_bytes(fixed(v)?) {
            i64::MAX => "infinity".into(),
            i64::MIN => "-infinity".into(),
            _ => format_timestamp_micros(timestamp_micros(v)?),
        },
    })
}

fn float_text(f: f64, single: bool) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if single {
        // the shortest text that reads back as the same `real`
        format!("{:?}", f as f32)
    } else {
        format!("{f:?}")
    }
}

/// Whether two non-NULL binary values of kind `kind` are equal as `=` sees them (a
/// cursor tie): numbers by value (`1.0` = `1.00`, `-0` = `0`), anything else byte by byte.
pub(crate) fn same_value(kind: PgKind, a: &[u8], b: &[u8]) -> bool {
    match kind {
        PgKind::Float4 => match (fixed::<4>(a), fixed::<4>(b)) {
            (Ok(x), Ok(y)) => {
                let (x, y) = (f32::from_be_bytes(x), f32::from_be_bytes(y));
                x == y || (x.is_nan() && y.is_nan())
            }
            _ => a == b,
        },
        PgKind::Float8 => match (fixed::<8>(a), fixed::<8>(b)) {
            (Ok(x), Ok(y)) => {
                let (x, y) = (f64::from_be_bytes(x), f64::from_be_bytes(y));
                x == y || (x.is_nan() && y.is_nan())
            }
            _ => a == b,
        },
        PgKind::Numeric => match (Numeric::parse(a), Numeric::parse(b)) {
            (Ok(x), Ok(y)) => x.normalized() == y.normalized(),
            _ => a == b,
        },
        _ => a == b,
    }
}

/// One row of binary COPY data: the row's bytes and where each value is in them
/// (`None`: NULL).
pub(crate) struct CopyRow<'a> {
    pub data: &'a [u8],
    pub fields: &'a [Option<(usize, usize)>],
}

impl CopyRow<'_> {
    /// Value `i`'s bytes; `None` for NULL.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        self.fields[i].map(|(a, b)| &self.data[a..b])
    }
}

/// How binary COPY rows go into a read's columns: the kind each column's values arrive as.
pub(crate) struct PgValues {
    kinds: Vec<PgKind>,
}

/// The column builders of a read, filled from binary COPY rows by a [`Batcher`], which
/// keeps rows whole: for `schema`, whose values arrive as `kinds`, with room for
/// `capacity` rows.
///
/// [`Batcher`]: ferry_core::batcher::Batcher
pub(crate) fn read_columns(
    schema: &SchemaRef,
    kinds: Vec<PgKind>,
    capacity: usize,
) -> ReadColumns<PgValues> {
    ReadColumns::new(schema, capacity, PgValues { kinds }, Col::native)
}

impl RowValues<CopyRow<'_>> for PgValues {
    fn append(
        &mut self,
        col: &mut Col,
        _ty: FerryType,
        row: &CopyRow<'_>,
        i: usize,
    ) -> Result<bool, String> {
        let Some(v) = row.value(i) else {
            return Ok(false);
        };
        put(col, self.kinds[i], v)?;
        Ok(true)
    }

    fn json(&self, row: &CopyRow<'_>, i: usize) -> serde_json::Value {
        match row.value(i) {
            None => serde_json::Value::Null,
            Some(v) => value_text(self.kinds[i], v)
                .map(serde_json::Value::String)
                .unwrap_or_else(|_| format!("<{} bytes>", v.len()).into()),
        }
    }
}

/// The cursor value of the last row read, kept without allocating per row, compared as
/// `=` sees it ([`same_value`]) and saved as text.
pub(crate) struct LastCursor {
    kind: PgKind,
    column: String,
    null: bool,
    bytes: Vec<u8>,
}

impl LastCursor {
    /// A cursor of column `column`, whose values arrive as `kind`; nothing kept yet.
    pub fn new(kind: PgKind, column: &str) -> LastCursor {
        LastCursor {
            kind,
            column: column.to_string(),
            null: true,
            bytes: Vec::new(),
        }
    }
}

impl Cursor for LastCursor {
    fn saved(&self) -> ferry_core::Result<Option<serde_json::Value>> {
        if self.null {
            return Ok(None);
        }
        let text = value_text(self.kind, &self.bytes).map_err(|m| {
            let c = &self.column;
            ferry_core::Error::data(format!("cannot save cursor `{c}`: {m}")).with("column", c)
        })?;
        Ok(Some(text.into()))
    }
}

impl CursorOf<CopyRow<'_>> for LastCursor {
    fn keep(&mut self, row: &CopyRow<'_>, column: usize) -> ferry_core::Result<()> {
        let v = row.value(column);
        self.null = v.is_none();
        self.bytes.clear();
        self.bytes.extend_from_slice(v.unwrap_or_default());
        Ok(())
    }

    fn same(&self, row: &CopyRow<'_>, column: usize) -> ferry_core::Result<bool> {
        Ok(match (self.null, row.value(column)) {
            (true, None) => true,
            (false, Some(v)) => same_value(self.kind, &self.bytes, v),
            _ => false,
        })
    }
}

// ----------------------------------------------------------------------------------------
// Writing: Arrow columns into binary COPY rows.

/// How one column's values are written, chosen once per stream from the stream's Ferry
/// type and the destination column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    Bool,
    Int8,
    Int4,
    Int2,
    /// int64 into `numeric`.
    IntNumeric,
    Float8,
    /// decimal into `numeric`.
    Numeric,
    /// string or JSON into a text type, or JSON into `json`.
    Text,
    /// string into `uuid`.
    Uuid,
    Bytea,
    Date,
    /// timestamp into `timestamptz` or `timestamp` (UTC).
    Timestamp,
    /// JSON into `jsonb`.
    Jsonb,
}

/// How values of Ferry type `incoming` go into a column of type `target`, or `None` when
/// they cannot without losing something (then the stream does not fit the table).
pub(crate) fn encoder(incoming: FerryType, target: &PgType) -> Option<Enc> {
    use FerryType as F;
    use PgKind as K;
    Some(match (incoming, target.kind) {
        (F::Bool, K::Bool) => Enc::Bool,
        (F::Int64, K::Int8) => Enc::Int8,
        // narrower integer columns take the values that fit; others fail naming the row
        (F::Int64, K::Int4) => Enc::Int4,
        (F::Int64, K::Int2) => Enc::Int2,
        (F::Int64, K::Numeric) => Enc::IntNumeric,
        (F::Float64, K::Float8) => Enc::Float8,
        (
            F::Decimal {
                precision: p2,
                scale: s2,
            },
            K::Numeric,
        ) => match target.numeric_precision_scale() {
            None => Enc::Numeric,
            Some((p1, s1)) if s1 >= s2 as i32 && p1 - s1 >= p2 as i32 - s2 as i32 => Enc::Numeric,
            Some(_) => return None,
        },
        (F::String | F::Json, K::Text) => Enc::Text,
        (F::Json, K::Json) => Enc::Text,
        (F::Json, K::Jsonb) => Enc::Jsonb,
        (F::String, K::Uuid) => Enc::Uuid,
        (F::Binary, K::Bytea) => Enc::Bytea,
        (F::Date, K::Date) => Enc::Date,
        (F::Timestamp, K::Timestamp | K::Timestamptz) => Enc::Timestamp,
        _ => return None,
    })
}

/// Starts a binary COPY stream.
pub(crate) fn put_copy_header(out: &mut BytesMut) {
    out.put_slice(COPY_SIGNATURE);
    out.put_i32(0);
    out.put_i32(0);
}

/// Ends a binary COPY stream.
pub(crate) fn put_copy_trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

/// Encodes the rows of one batch in binary COPY format.
pub(crate) struct BatchEncoder<'a> {
    cols: Vec<(TypedColumn<'a>, Enc)>,
}

/// A value that cannot be written: zero-based column and why.
pub(crate) struct EncodeError {
    pub column: usize,
    pub message: String,
}

impl<'a> BatchEncoder<'a> {
    /// An encoder for `batch`, whose columns have Ferry types `types` and go out as `encs`.
    pub fn new(batch: &'a RecordBatch, types: &[FerryType], encs: &[Enc]) -> BatchEncoder<'a> {
        let cols = batch
            .columns()
            .iter()
            .zip(types)
            .zip(encs)
            .map(|((a, ty), enc)| (TypedColumn::new(a.as_ref(), *ty), *enc))
            .collect();
        BatchEncoder { cols }
    }

    /// Appends row `row` to `out`.
    pub fn row(&self, row: usize, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_i16(self.cols.len() as i16);
        for (i, (src, enc)) in self.cols.iter().enumerate() {
            if src.is_null(row) {
                out.put_i32(-1);
                continue;
            }
            let bad = |message: String| EncodeError { column: i, message };
            match (src, enc) {
                (TypedColumn::Bool(a), _) => {
                    out.put_i32(1);
                    out.put_u8(a.value(row) as u8);
                }
                (TypedColumn::Int(a), Enc::Int4) => {
                    let v = a.value(row);
                    let v = i32::try_from(v).map_err(|_| {
                        bad(format!("{v} does not fit the column's type `integer`"))
                    })?;
                    out.put_i32(4);
                    out.put_i32(v);
                }
                (TypedColumn::Int(a), Enc::Int2) => {
                    let v = a.value(row);
                    let v = i16::try_from(v).map_err(|_| {
                        bad(format!("{v} does not fit the column's type `smallint`"))
                    })?;
                    out.put_i32(2);
                    out.put_i16(v);
                }
                (TypedColumn::Int(a), Enc::IntNumeric) => put_numeric(out, a.value(row) as i128, 0),
                (TypedColumn::Int(a), _) => {
                    out.put_i32(8);
                    out.put_i64(a.value(row));
                }
                (TypedColumn::Float(a), _) => {
                    out.put_i32(8);
                    out.put_f64(a.value(row));
                }
                (TypedColumn::Decimal(a, scale), _) => put_numeric(out, a.value(row), *scale),
                (TypedColumn::Text(a), Enc::Uuid) => {
                    let s = a.value(row);
                    let b = parse_uuid(s)
                        .ok_or_else(|| bad(format!("`{}` is not a UUID", preview(s))))?;
                    out.put_i32(16);
                    out.put_slice(&b);
                }
                (TypedColumn::Text(a), Enc::Jsonb) => {
                    let s = a.value(row).as_bytes();
                    out.put_i32(s.len() as i32 + 1);
                    out.put_u8(1);
                    out.put_slice(s);
                }
                (TypedColumn::Text(a), _) => {
                    let s = a.value(row).as_bytes();
                    out.put_i32(s.len() as i32);
                    out.put_slice(s);
                }
                (TypedColumn::Binary(a), _) => {
                    let s = a.value(row);
                    out.put_i32(s.len() as i32);
                    out.put_slice(s);
                }
                (TypedColumn::Date(a), _) => {
                    let d = a.value(row);
                    let d = d.checked_sub(PG_EPOCH_DAYS).ok_or_else(|| {
                        bad(format!(
                            "day {d} after 1970-01-01 is out of PostgreSQL's range"
                        ))
                    })?;
                    out.put_i32(4);
                    out.put_i32(d);
                }
                (TypedColumn::Timestamp(a), _) => {
                    let t = a.value(row);
                    let t = t.checked_sub(PG_EPOCH_MICROS).ok_or_else(|| {
                        bad(format!(
                            "{} is out of PostgreSQL's range",
                            format_timestamp_micros(t)
                        ))
                    })?;
                    out.put_i32(8);
                    out.put_i64(t);
                }
            }
        }
        Ok(())
    }
}

/// Writes `v / 10^scale` as a binary `numeric` (length prefix included).
pub(crate) fn put_numeric(out: &mut BytesMut, v: i128, scale: i8) {
    let neg = v < 0;
    let mut mag = v.unsigned_abs();
    // decimal digits, least significant first
    let mut dec = [0u8; 40];
    let mut n = 0;
    while mag > 0 {
        dec[n] = (mag % 10) as u8;
        mag /= 10;
        n += 1;
    }
    let dscale = scale.max(0) as u16;
    if n == 0 {
        out.put_i32(8);
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0);
        out.put_u16(dscale);
        return;
    }
    // digit i counts 10^(i - scale); base-10000 group g holds exponents 4g..4g+3
    let exp = |i: usize| i as i32 - scale as i32;
    let g_min = exp(0).div_euclid(4);
    let g_max = exp(n - 1).div_euclid(4);
    let mut groups = vec![0i16; (g_max - g_min + 1) as usize];
    for (i, d) in dec[..n].iter().enumerate() {
        let e = exp(i);
        let g = e.div_euclid(4);
        groups[(g - g_min) as usize] += (*d as i16) * 10i16.pow(e.rem_euclid(4) as u32);
    }
    // most significant group first, without trailing zero groups
    let mut digits: Vec<i16> = groups.into_iter().rev().collect();
    while digits.last() == Some(&0) {
        digits.pop();
    }
    out.put_i32(8 + 2 * digits.len() as i32);
    out.put_i16(digits.len() as i16);
    out.put_i16(g_max as i16);
    out.put_u16(if neg { NUMERIC_NEG } else { 0 });
    out.put_u16(dscale);
    for d in digits {
        out.put_i16(d);
    }
}

/// Parses `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11` (also without dashes, in braces, any case).
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for i in 0..16 {
        let pair = std::str::from_utf8(&hex[2 * i..2 * i + 2]).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(v: i128, scale: i8) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_numeric(&mut b, v, scale);
        b[4..].to_vec()
    }

    #[test]
    fn numeric_round_trips() {
        for (v, s, text) in [
            (12345i128, 2i8, "123.45"),
            (-12345, 2, "-123.45"),
            (0, 4, "0.0000"),
            (1, 4, "0.0001"),
            (-99999999999999999999i128, 4, "-9999999999999999.9999"),
            (10000, 0, "10000"),
            (123456789, 9, "0.123456789"),
            (i64::MIN as i128, 0, "-9223372036854775808"),
        ] {
            let b = numeric_bytes(v, s);
            assert_eq!(numeric_text(&b).unwrap(), text, "{v} {s}");
            assert_eq!(numeric_to_i128(&b, 38, s).unwrap(), v, "{text}");
        }
        // a value with more digits after the point than the scale does not fit
        let b = numeric_bytes(123456789, 9);
        let e = numeric_to_i128(&b, 38, 4).unwrap_err();
        assert!(
            e.contains("0.123456789") && e.contains("decimal(38,4)"),
            "{e}"
        );
        // nor one with more digits than the precision
        assert!(numeric_to_i128(&numeric_bytes(12345, 0), 4, 0).is_err());
        // a wider scale pads
        assert_eq!(numeric_to_i128(&numeric_bytes(15, 1), 10, 3).unwrap(), 1500);
        // ties compare by value
        assert!(same_value(
            PgKind::Numeric,
            &numeric_bytes(10, 1),
            &numeric_bytes(100, 2)
        ));
        assert!(!same_value(
            PgKind::Numeric,
            &numeric_bytes(10, 1),
            &numeric_bytes(11, 1)
        ));
    }

    #[test]
    fn numeric_typmods() {
        let t = PgType {
            kind: PgKind::Numeric,
            typmod: created_type(FerryType::Decimal {
                precision: 20,
                scale: 4,
            })
            .typmod,
            sql: String::new(),
        };
        assert_eq!(t.numeric_precision_scale(), Some((20, 4)));
        assert_eq!(
            t.ferry_type(),
            FerryType::Decimal {
                precision: 20,
                scale: 4
            }
        );
        let t = PgType {
            kind: PgKind::Numeric,
            typmod: -1,
            sql: String::new(),
        };
        assert_eq!(
            t.ferry_type(),
            FerryType::Decimal {
                precision: 38,
                scale: 9
            }
        );
        // numeric(5,-2): PostgreSQL 15 stores the negative scale in 11 bits
        let t = PgType {
            kind: PgKind::Numeric,
            typmod: ((5 << 16) | (-2i32 & 0x7ff)) + 4,
            sql: String::new(),
        };
        assert_eq!(t.numeric_precision_scale(), Some((5, -2)));
        assert_eq!(t.ferry_type(), FerryType::String);
    }

    #[test]
    fn uuids() {
        let b = parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(
            uuid_text(&b).unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert!(parse_uuid("nope").is_none());
    }
}
