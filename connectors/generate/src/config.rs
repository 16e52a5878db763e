//! The `[source]` section of a `generate` source: a seed and the streams to make.
//!
//! Parsing is pure and cheap; [`crate::GenerateSource::new`] then checks what serde
//! cannot (kind/type pairs, ranges, duplicate names) and says which stream and column
//! is wrong.

use ferry_core::FerryType;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// Configuration of a `generate` source.
///
/// ```toml
/// [source]
/// type = "generate"
/// seed = 42
/// streams = [
///   { name = "users", preset = "users", rows = 1000 },
///   { name = "orders", preset = "orders", rows = 5000 },
/// ]
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateConfig {
    /// Seed of every generated value (default 42). The same seed gives the same rows,
    /// whatever the batch size or where a read starts.
    pub seed: u64,
    /// The streams to generate (default: `users` with 1000 rows and `orders` with 5000).
    pub streams: Vec<GenerateStream>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            seed: default_seed(),
            streams: default_streams(),
        }
    }
}

/// One generated stream: a preset, your own columns, or a preset plus columns.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateStream {
    /// The stream's name (default: the preset's name). Also salts its values, so two
    /// streams with the same preset but different names hold different rows.
    pub name: Option<String>,
    /// A ready-made set of columns: `users`, `orders` or `bench` (default: none, then
    /// `columns` must list some).
    pub preset: Option<Preset>,
    /// Number of rows; ids run from 1 to `rows` (default 1000, 0 allowed). Raise it and
    /// rerun an incremental sync to simulate new rows arriving.
    pub rows: u64,
    /// Extra columns (default: none). A column named like a preset column replaces it in
    /// place; others are added after the preset's. Every stream has an `int64` column
    /// `id` first (primary key and cursor), whether listed or not.
    pub columns: Vec<GenerateColumn>,
}

impl Default for GenerateStream {
    fn default() -> Self {
        GenerateStream {
            name: None,
            preset: None,
            rows: default_rows(),
            columns: Vec::new(),
        }
    }
}

impl GenerateStream {
    /// The stream's name: `name`, else the preset's name.
    pub fn stream_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| self.preset.map(|p| p.name().to_string()))
    }
}

/// One generated column. Give a `kind`, a `type`, or both (they must fit together).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateColumn {
    /// The column's name.
    pub name: String,
    /// Ferry type: `bool`, `int64`, `float64`, `decimal(p,s)`, `string`, `binary`,
    /// `date`, `timestamp` or `json` (default: the kind's natural type).
    #[serde(default, rename = "type", deserialize_with = "de_type")]
    #[schemars(with = "Option<String>")]
    pub ty: Option<FerryType>,
    /// What values look like (default: a plain value of the type: `int` for `int64`,
    /// `word` for `string`, `timestamp` for `timestamp` …).
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Share of NULLs, from 0.0 to 1.0 (default 0: never NULL).
    #[serde(default)]
    pub null_fraction: f64,
    /// Smallest value, for kinds `int`, `float` and `decimal` (default 0, or 1 for
    /// `float`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest value, for kinds `int`, `float` and `decimal` (default 1000).
    #[serde(default)]
    pub max: Option<f64>,
}

impl GenerateColumn {
    /// A column of `kind` with every other field at its default.
    pub fn new(name: &str, kind: Kind) -> Self {
        GenerateColumn {
            name: name.to_string(),
            ty: None,
            kind: Some(kind),
            null_fraction: 0.0,
            min: None,
            max: None,
        }
    }

    fn typed(mut self, ty: FerryType) -> Self {
        self.ty = Some(ty);
        self
    }

    fn range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    fn nulls(mut self, fraction: f64) -> Self {
        self.null_fraction = fraction;
        self
    }
}

/// A ready-made stream shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// id, name, email, country, signup_date (date), is_active (bool),
    /// balance (decimal(12,2)), updated_at (timestamp).
    Users,
    /// id, user_id, amount (decimal(12,2), the sum of the items), currency, status,
    /// ordered_at (timestamp), items (json), note (string, NULL in about 70% of rows).
    Orders,
    /// Eight columns of mixed types for benchmarks: id, name, email, amount (float64),
    /// quantity (int64), created_at (timestamp), active (bool), country.
    Bench,
}

impl Preset {
    /// Every preset, in documentation order.
    pub const ALL: [Preset; 3] = [Preset::Users, Preset::Orders, Preset::Bench];

    /// The name written in config files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Users => "users",
            Preset::Orders => "orders",
            Preset::Bench => "bench",
        }
    }

    /// The preset's columns, `id` first.
    pub fn columns(self) -> Vec<GenerateColumn> {
        use Kind::*;
        let c = GenerateColumn::new;
        let money = FerryType::Decimal {
            precision: 12,
            scale: 2,
        };
        match self {
            Preset::Users => vec![
                c("id", Sequence),
                c("name", Name),
                c("email", Email),
                c("country", Country),
                c("signup_date", Date),
                c("is_active", Bool),
                c("balance", Decimal).typed(money).range(-500.0, 25_000.0),
                c("updated_at", Timestamp),
            ],
            Preset::Orders => vec![
                c("id", Sequence),
                c("user_id", Int).range(1.0, 1000.0),
                c("amount", OrderTotal).typed(money),
                c("currency", Currency),
                c("status", Status),
                c("ordered_at", Timestamp),
                c("items", OrderItems),
                c("note", Note).nulls(0.7),
            ],
            Preset::Bench => vec![
                c("id", Sequence),
                c("name", Name),
                c("email", Email),
                c("amount", Float).range(1.0, 1000.0),
                c("quantity", Int).range(1.0, 20.0),
                c("created_at", Timestamp),
                c("active", Bool),
                c("country", Country),
            ],
        }
    }
}

/// What a column's values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// int64: the row's id (1, 2, 3 …); grows with id, so it can be a cursor.
    Sequence,
    /// int64: uniform between `min` and `max` (default 0..=1000).
    Int,
    /// float64: uniform between `min` and `max` (default 1..1000), two decimals.
    Float,
    /// decimal(p,s) (default decimal(12,2)): uniform between `min` and `max` (default 0..=1000).
    Decimal,
    /// bool: true or false, half each.
    Bool,
    /// string: a first name (the same person as `last_name`, `name` and `email` of the row).
    FirstName,
    /// string: a last name.
    LastName,
    /// string: first and last name.
    Name,
    /// string: `first.last<id>@domain` with a domain reserved for examples
    /// (`example.com`, `acme.example` …), unique per row.
    Email,
    /// string: an ISO 3166 two-letter country code.
    Country,
    /// string: a country's English name.
    CountryName,
    /// string: an ISO 4217 currency code.
    Currency,
    /// string: an order status (pending, paid, shipped, delivered, cancelled, refunded).
    Status,
    /// string: one lower-case word.
    Word,
    /// string: a sentence of four to nine words.
    Sentence,
    /// string: a short customer note ("Leave at the front door").
    Note,
    /// string: a UUID (version 4 layout).
    Uuid,
    /// binary: 16 bytes.
    Bytes,
    /// date: a day in 2015–2019 (before every `timestamp` value).
    Date,
    /// timestamp: from 2020-01-01T00:00:00Z, about one minute later per id, strictly
    /// increasing with id, so it can be a cursor.
    Timestamp,
    /// json: a small object `{"source": …, "score": …, "tags": […]}`.
    Json,
    /// json: one to three order lines `[{"sku", "product", "qty", "unit_price"}]`.
    OrderItems,
    /// decimal(p,s) (default decimal(12,2)): the total of the row's `order_items`.
    OrderTotal,
}

impl Kind {
    /// The type a column of this kind has when the config gives none.
    pub fn default_type(self) -> FerryType {
        use Kind::*;
        match self {
            Sequence | Int => FerryType::Int64,
            Float => FerryType::Float64,
            Decimal | OrderTotal => FerryType::Decimal {
                precision: 12,
                scale: 2,
            },
            Bool => FerryType::Bool,
            FirstName | LastName | Name | Email | Country | CountryName | Currency | Status
            | Word | Sentence | Note | Uuid => FerryType::String,
            Bytes => FerryType::Binary,
            Date => FerryType::Date,
            Timestamp => FerryType::Timestamp,
            Json | OrderItems => FerryType::Json,
        }
    }

    /// Whether a column of this kind may have type `ty` (any decimal for decimal kinds,
    /// `string` for JSON kinds).
    pub fn accepts(self, ty: FerryType) -> bool {
        match (self.default_type(), ty) {
            (FerryType::Decimal { .. }, FerryType::Decimal { .. }) => true,
            (FerryType::Json, FerryType::String) => true,
            (want, got) => want == got,
        }
    }

    /// The kind a column of type `ty` gets when the config names none.
    pub fn for_type(ty: FerryType) -> Kind {
        match ty {
            FerryType::Bool => Kind::Bool,
            FerryType::Int64 => Kind::Int,
            FerryType::Float64 => Kind::Float,
            FerryType::Decimal { .. } => Kind::Decimal,
            FerryType::String => Kind::Word,
            FerryType::Binary => Kind::Bytes,
            FerryType::Date => Kind::Date,
            FerryType::Timestamp => Kind::Timestamp,
            FerryType::Json => Kind::Json,
        }
    }

    /// Whether values grow strictly with the row id (so the column can be a cursor).
    pub fn is_monotonic(self) -> bool {
        matches!(self, Kind::Sequence | Kind::Timestamp)
    }

    /// Whether `min` and `max` apply.
    pub fn has_range(self) -> bool {
        matches!(self, Kind::Int | Kind::Float | Kind::Decimal)
    }

    /// The name written in config files.
    pub fn name(self) -> &'static str {
        use Kind::*;
        match self {
            Sequence => "sequence",
            Int => "int",
            Float => "float",
            Decimal => "decimal",
            Bool => "bool",
            FirstName => "first_name",
            LastName => "last_name",
            Name => "name",
            Email => "email",
            Country => "country",
            CountryName => "country_name",
            Currency => "currency",
            Status => "status",
            Word => "word",
            Sentence => "sentence",
            Note => "note",
            Uuid => "uuid",
            Bytes => "bytes",
            Date => "date",
            Timestamp => "timestamp",
            Json => "json",
            OrderItems => "order_items",
            OrderTotal => "order_total",
        }
    }
}

fn de_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FerryType>, D::Error> {
    let s = String::deserialize(d)?;
    FerryType::parse(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown type `{s}` (valid: {})",
            FerryType::NAMES.join(", ")
        ))
    })
}

fn default_seed() -> u64 {
    42
}

fn default_rows() -> u64 {
    1000
}

fn default_streams() -> Vec<GenerateStream> {
    [(Preset::Users, 1000), (Preset::Orders, 5000)]
        .into_iter()
        .map(|(p, rows)| GenerateStream {
            name: Some(p.name().to_string()),
            preset: Some(p),
            rows,
            columns: Vec::new(),
        })
        .collect()
}
