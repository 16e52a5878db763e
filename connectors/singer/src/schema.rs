//! JSON Schema (as Singer and Airbyte describe streams) to Ferry types, and back.
//!
//! | JSON Schema | Ferry type |
//! |-------------|------------|
//! | `integer` | `int64` (`airbyte_type: big_integer`: `decimal(38,0)`) |
//! | `number` | `float64`; `decimal(38,s)` when `multipleOf` is `10^-s` (s ≤ 18) |
//! | `string` + `format: date-time` | `timestamp` (offsets converted to UTC) |
//! | `string` + `format: date` | `date` |
//! | `string` + `format: singer.decimal` | `decimal(38,9)` |
//! | `string` (other formats) | `string` |
//! | `boolean` | `bool` |
//! | `object`, `array`, several types, no type | `json` |
//! | `integer` with `number` | `float64` |
//!
//! A `null` among the types (or in `anyOf`) makes the column nullable. Columns are
//! nullable unless they are key columns whose types exclude `null`: taps often omit
//! `null` from types that do hold NULLs, and a wrongly non-null column would reject rows.

use std::sync::Arc;

use ferry_core::arrow_schema::{Field, Schema, SchemaRef};
use ferry_core::types::{DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE};
use ferry_core::FerryType;
use serde_json::{json, Value};

/// The Ferry type of one property schema and whether its types include `null`.
pub fn ferry_type(prop: &Value) -> (FerryType, bool) {
    let mut types: Vec<String> = Vec::new();
    let mut format: Option<String> = None;
    collect(prop, &mut types, &mut format);
    let nullable = types.is_empty() || types.iter().any(|t| t == "null");
    types.retain(|t| t != "null");
    types.sort();
    types.dedup();
    let airbyte = prop.get("airbyte_type").and_then(Value::as_str);
    let ty = match types
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["integer"] if airbyte == Some("big_integer") => FerryType::Decimal {
            precision: 38,
            scale: 0,
        },
        ["integer"] => FerryType::Int64,
        ["number"] => number_type(prop),
        ["integer", "number"] => FerryType::Float64,
        ["boolean"] => FerryType::Bool,
        ["string"] => match format.as_deref() {
            Some("date-time") => FerryType::Timestamp,
            Some("date") => FerryType::Date,
            Some("singer.decimal") => FerryType::Decimal {
                precision: DEFAULT_DECIMAL_PRECISION,
                scale: DEFAULT_DECIMAL_SCALE,
            },
            _ => FerryType::String,
        },
        _ => FerryType::Json,
    };
    (ty, nullable)
}

/// Gathers the `type`s and the `format` of a schema, looking into `anyOf` / `oneOf`.
fn collect(prop: &Value, types: &mut Vec<String>, format: &mut Option<String>) {
    match prop.get("type") {
        Some(Value::String(t)) => types.push(t.clone()),
        Some(Value::Array(a)) => {
            types.extend(a.iter().filter_map(|t| t.as_str().map(str::to_string)))
        }
        _ => {}
    }
    if format.is_none() {
        *format = prop
            .get("format")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = prop.get(key) {
            for a in alts {
                collect(a, types, format);
            }
        }
    }
}

fn number_type(prop: &Value) -> FerryType {
    let scale = prop
        .get("multipleOf")
        .and_then(Value::as_f64)
        .filter(|m| *m > 0.0 && *m <= 1.0)
        .map(|m| (-m.log10()).round())
        .filter(|s| {
            (0.0..=18.0).contains(s)
                && (10f64.powf(-s) - prop["multipleOf"].as_f64().unwrap_or(0.0)).abs() < 1e-12
        });
    match scale {
        Some(s) => FerryType::Decimal {
            precision: DEFAULT_DECIMAL_PRECISION,
            scale: s as i8,
        },
        None => FerryType::Float64,
    }
}

/// A Ferry schema from an object schema's `properties`; `keys` are the primary key
/// columns (non-null when their types exclude `null`). Columns come in `order` (the
/// property names as the program printed them, see [`KeyOrder`]), then any others.
pub fn to_arrow(schema: &Value, keys: &[String], order: &[String]) -> SchemaRef {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Arc::new(Schema::empty());
    };
    let mut names: Vec<&String> = order.iter().filter(|n| props.contains_key(*n)).collect();
    names.extend(props.keys().filter(|k| !order.contains(k)));
    let fields: Vec<Field> = names
        .into_iter()
        .map(|name| {
            let (ty, nullable) = ferry_type(&props[name]);
            ty.field(name, nullable || !keys.contains(name))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The keys of a JSON object in document order (`serde_json::Value` sorts them), read
/// from the program's own text so columns keep the order the tap declared.
#[derive(Debug, Default, Clone)]
pub struct KeyOrder(pub Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(KeyOrder(keys))
            }
            fn visit_unit<E>(self) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// An object schema, reduced to the order of its properties.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SchemaOrder {
    /// Property names in order.
    #[serde(default)]
    pub properties: KeyOrder,
}

/// The JSON Schema of a Ferry schema, for a target's SCHEMA message. Decimals are sent
/// as strings (`format: singer.decimal`) so no digit is lost.
pub fn from_arrow(schema: &Schema) -> Value {
    let mut props = serde_json::Map::new();
    for f in schema.fields() {
        let ty = FerryType::of(f).unwrap_or(FerryType::String);
        let mut p = match ty {
            FerryType::Bool => json!({"type": "boolean"}),
            FerryType::Int64 => json!({"type": "integer"}),
            FerryType::Float64 => json!({"type": "number"}),
            FerryType::Decimal { .. } => json!({"type": "string", "format": "singer.decimal"}),
            FerryType::String => json!({"type": "string"}),
            FerryType::Binary => json!({"type": "string", "contentEncoding": "base64"}),
            FerryType::Date => json!({"type": "string", "format": "date"}),
            FerryType::Timestamp => json!({"type": "string", "format": "date-time"}),
            FerryType::Json => json!({}),
        };
        if f.is_nullable() {
            if let Some(t) = p.get("type").and_then(Value::as_str).map(str::to_string) {
                p["type"] = json!([t, "null"]);
            }
        }
        props.insert(f.name().clone(), p);
    }
    json!({"type": "object", "properties": props})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_maps_to_ferry_types() {
        let cases = [
            (json!({"type": ["integer"]}), FerryType::Int64, false),
            (
                json!({"type": ["number", "null"]}),
                FerryType::Float64,
                true,
            ),
            (
                json!({"type": "number", "multipleOf": 0.01}),
                FerryType::Decimal {
                    precision: 38,
                    scale: 2,
                },
                false,
            ),
            (
                json!({"type": "number", "multipleOf": 0.5}),
                FerryType::Float64,
                false,
            ),
            (
                json!({"type": ["string", "null"], "format": "date-time"}),
                FerryType::Timestamp,
                true,
            ),
            (
                json!({"type": "string", "format": "date"}),
                FerryType::Date,
                false,
            ),
            (json!({"type": "boolean"}), FerryType::Bool, false),
            (json!({"type": "object"}), FerryType::Json, false),
            (json!({"type": ["array", "null"]}), FerryType::Json, true),
            (
                json!({"type": ["string", "number", "object", "null"]}),
                FerryType::Json,
                true,
            ),
            (json!({}), FerryType::Json, true),
            (
                json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
                FerryType::Timestamp,
                true,
            ),
            (
                json!({"type": ["integer", "number"]}),
                FerryType::Float64,
                false,
            ),
            (
                json!({"type": "integer", "airbyte_type": "big_integer"}),
                FerryType::Decimal {
                    precision: 38,
                    scale: 0,
                },
                false,
            ),
        ];
        for (schema, ty, nullable) in cases {
            assert_eq!(ferry_type(&schema), (ty, nullable), "{schema}");
        }
    }

    #[test]
    fn key_order_follows_the_text() {
        let o: SchemaOrder =
            serde_json::from_str(r#"{"properties": {"z": {"a": 1}, "a": {}, "m": null}}"#).unwrap();
        assert_eq!(o.properties.0, vec!["z", "a", "m"]);
    }

    #[test]
    fn only_keys_without_null_are_required() {
        let s = json!({"properties": {"id": {"type": "integer"}, "n": {"type": "integer"}}});
        let a = to_arrow(
            &s,
            &["id".to_string()],
            &["n".to_string(), "id".to_string()],
        );
        assert_eq!(a.field(0).name(), "n");
        let a = to_arrow(&s, &["id".to_string()], &[]);
        assert!(!a.field(0).is_nullable());
        assert!(a.field(1).is_nullable());
        let back = from_arrow(&a);
        assert_eq!(back["properties"]["id"]["type"], "integer");
        assert_eq!(back["properties"]["n"]["type"], json!(["integer", "null"]));
    }
}
