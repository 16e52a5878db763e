//! The record model: Arrow batches with a small, fixed set of Ferry types.
//!
//! Why Arrow: data moves in columnar batches (thousands of rows at a time), so
//! per-row overhead disappears, Parquet and bulk database loads come for free,
//! and validation runs as vectorised kernels. Why a *fixed* set of types: every
//! connector maps its system's types to these nine and back, so any source can
//! feed any sink without a pairwise mapping.
//!
//! | Ferry type  | Arrow type                          |
//! |-------------|-------------------------------------|
//! | `bool`      | `Boolean`                           |
//! | `int64`     | `Int64`                             |
//! | `float64`   | `Float64`                           |
//! | `decimal`   | `Decimal128(precision, scale)`      |
//! | `string`    | `Utf8`                              |
//! | `binary`    | `Binary`                            |
//! | `date`      | `Date32`                            |
//! | `timestamp` | `Timestamp(Microsecond, "UTC")`     |
//! | `json`      | `Utf8` tagged `arrow.json`          |
//!
//! A stream's schema also carries Ferry metadata: its primary key and cursor field.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Arrow extension-name metadata key.
pub const EXTENSION_KEY: &str = "ARROW:extension:name";
/// Extension name that marks a `Utf8` column as JSON text.
pub const JSON_EXTENSION: &str = "arrow.json";
/// Schema metadata key holding the primary key as a JSON array of column names.
pub const PRIMARY_KEY_META: &str = "ferry.primary_key";
/// Schema metadata key holding the cursor column name.
pub const CURSOR_META: &str = "ferry.cursor";
/// Default precision of a decimal whose precision is not known.
pub const DEFAULT_DECIMAL_PRECISION: u8 = 38;
/// Default scale of a decimal whose scale is not known.
pub const DEFAULT_DECIMAL_SCALE: i8 = 9;

/// One of the nine value types every connector maps to and from.
/// ```
/// use ferry_core::FerryType;
///
/// let t = FerryType::parse("decimal(18,2)").unwrap();
/// let field = t.field("amount", true);
/// assert_eq!(FerryType::of(&field), Some(t));
/// assert_eq!(t.to_string(), "decimal(18,2)");
/// assert!(FerryType::parse("varchar").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FerryType {
    /// true / false.
    Bool,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit IEEE float.
    Float64,
    /// Exact decimal with `precision` digits, `scale` of them after the point.
    Decimal {
        /// Total digits (1..=38).
        precision: u8,
        /// Digits after the decimal point.
        scale: i8,
    },
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Binary,
    /// Calendar date.
    Date,
    /// Instant in time, microsecond precision, stored in UTC.
    Timestamp,
    /// A JSON document, kept as text.
    Json,
}

impl FerryType {
    /// The Arrow field for a column of this type.
    pub fn field(self, name: impl Into<String>, nullable: bool) -> Field {
        let f = Field::new(name, self.data_type(), nullable);
        if self == FerryType::Json {
            f.with_metadata(HashMap::from([(
                EXTENSION_KEY.to_string(),
                JSON_EXTENSION.to_string(),
            )]))
        } else {
            f
        }
    }

    /// The Arrow data type of this Ferry type.
    pub fn data_type(self) -> DataType {
        match self {
            FerryType::Bool => DataType::Boolean,
            FerryType::Int64 => DataType::Int64,
            FerryType::Float64 => DataType::Float64,
            FerryType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            FerryType::String | FerryType::Json => DataType::Utf8,
            FerryType::Binary => DataType::Binary,
            FerryType::Date => DataType::Date32,
            FerryType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The Ferry type of an Arrow field, or `None` if the field uses a type outside the model.
    pub fn of(field: &Field) -> Option<FerryType> {
        Some(match field.data_type() {
            DataType::Boolean => FerryType::Bool,
            DataType::Int64 => FerryType::Int64,
            DataType::Float64 => FerryType::Float64,
            DataType::Decimal128(p, s) => FerryType::Decimal {
                precision: *p,
                scale: *s,
            },
            DataType::Utf8 if is_json(field) => FerryType::Json,
            DataType::Utf8 => FerryType::String,
            DataType::Binary => FerryType::Binary,
            DataType::Date32 => FerryType::Date,
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
                FerryType::Timestamp
            }
            _ => return None,
        })
    }

    /// The Ferry type of each field of `schema`, in order; `fallback` for a field outside
    /// the model.
    pub fn of_each(schema: &Schema, fallback: FerryType) -> Vec<FerryType> {
        (schema.fields().iter())
            .map(|f| FerryType::of(f).unwrap_or(fallback))
            .collect()
    }

    /// Parses a type name as written in config files: `int64`, `decimal(18,2)`, `timestamp` …
    pub fn parse(s: &str) -> Option<FerryType> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "bool" | "boolean" => FerryType::Bool,
            "int" | "int64" | "integer" | "bigint" => FerryType::Int64,
            "float" | "float64" | "double" => FerryType::Float64,
            "decimal" | "numeric" => FerryType::Decimal {
                precision: DEFAULT_DECIMAL_PRECISION,
                scale: DEFAULT_DECIMAL_SCALE,
            },
            "string" | "text" | "utf8" => FerryType::String,
            "binary" | "bytes" => FerryType::Binary,
            "date" => FerryType::Date,
            "timestamp" | "timestamptz" | "datetime" => FerryType::Timestamp,
            "json" => FerryType::Json,
            other => {
                let inner = other
                    .strip_prefix("decimal(")
                    .or_else(|| other.strip_prefix("numeric("))?
                    .strip_suffix(')')?;
                let (p, sc) = inner.split_once(',')?;
                let precision: u8 = p.trim().parse().ok()?;
                let scale: i8 = sc.trim().parse().ok()?;
                if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
                    return None;
                }
                FerryType::Decimal { precision, scale }
            }
        })
    }

    /// All type names accepted by [`FerryType::parse`], for error messages.
    pub const NAMES: &'static [&'static str] = &[
        "bool",
        "int64",
        "float64",
        "decimal(p,s)",
        "string",
        "binary",
        "date",
        "timestamp",
        "json",
    ];
}

impl fmt::Display for FerryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FerryType::Bool => f.write_str("bool"),
            FerryType::Int64 => f.write_str("int64"),
            FerryType::Float64 => f.write_str("float64"),
            FerryType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            FerryType::String => f.write_str("string"),
            FerryType::Binary => f.write_str("binary"),
            FerryType::Date => f.write_str("date"),
            FerryType::Timestamp => f.write_str("timestamp"),
            FerryType::Json => f.write_str("json"),
        }
    }
}

/// Whether a field is a JSON column.
pub fn is_json(field: &Field) -> bool {
    field.metadata().get(EXTENSION_KEY).map(String::as_str) == Some(JSON_EXTENSION)
}

/// The primary key stored in a schema's metadata (empty when none).
pub fn primary_key(schema: &Schema) -> Vec<String> {
    schema
        .metadata()
        .get(PRIMARY_KEY_META)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The cursor column stored in a schema's metadata.
pub fn cursor_field(schema: &Schema) -> Option<String> {
    schema.metadata().get(CURSOR_META).cloned()
}

/// Returns `schema` with its primary key and cursor metadata set (empty / `None` removes them).
pub fn with_keys(schema: &Schema, primary_key: &[String], cursor: Option<&str>) -> SchemaRef {
    let mut meta = schema.metadata().clone();
    meta.remove(PRIMARY_KEY_META);
    meta.remove(CURSOR_META);
    if !primary_key.is_empty() {
        meta.insert(
            PRIMARY_KEY_META,
            serde_json::to_string(primary_key).expect("strings serialize"),
        );
    }
    if let Some(c) = cursor {
        meta.insert(CURSOR_META, c.to_string());
    }
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), meta))
}

/// Checks every column of `schema` uses a Ferry type, naming the first that does not.
pub fn check_schema(schema: &Schema) -> crate::Result<()> {
    for f in schema.fields() {
        if FerryType::of(f).is_none() {
            return Err(crate::Error::new(
                crate::ErrorKind::Unsupported,
                format!(
                    "column `{}` has Arrow type {} which is not one of Ferry's types ({})",
                    f.name(),
                    f.data_type(),
                    FerryType::NAMES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A short, stable fingerprint of a schema's column names, types and nullability (SHA-free:
/// FNV-1a 64, hex). Used to notice schema changes between runs; not a security measure.
pub fn schema_fingerprint(schema: &Schema) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in schema.fields() {
        let t = FerryType::of(f)
            .map(|t| t.to_string())
            .unwrap_or_else(|| f.data_type().to_string());
        for b in format!("{}:{}:{};", f.name(), t, f.is_nullable()).bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for name in [
            "bool",
            "int64",
            "float64",
            "decimal(18,2)",
            "string",
            "binary",
            "date",
            "timestamp",
            "json",
        ] {
            let t = FerryType::parse(name).unwrap();
            assert_eq!(t.to_string(), name);
            assert_eq!(FerryType::of(&t.field("c", true)), Some(t));
        }
        assert_eq!(FerryType::parse("decimal(50,2)"), None);
        assert_eq!(FerryType::parse("varchar"), None);
    }

    #[test]
    fn keys_live_in_metadata() {
        let s = Schema::new(vec![FerryType::Int64.field("id", false)]);
        let s = with_keys(&s, &["id".into()], Some("id"));
        assert_eq!(primary_key(&s), vec!["id".to_string()]);
        assert_eq!(cursor_field(&s).as_deref(), Some("id"));
    }
}
