//! From a page body to records: the record selector, flattening, parent placeholders
//! and schema inference.
//!
//! Pages are parsed into `serde_json::Value` for reading (key order does not matter
//! there). Inference reads the sampled pages a second way, through `RawValue`, so the
//! columns come out in the order the API writes its keys rather than sorted.

use std::fmt::Write as _;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::FerryType;
use ferry_formats::codec::{infer_jsonl, InferOptions};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The value at a dotted path (`data.items`, `items.0`); the value itself for an empty path.
pub(crate) fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut v = value;
    for part in path {
        v = match v {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// What the record selector found in a page.
pub(crate) enum Selected<'v> {
    /// The records (an array's elements, or one object).
    Records(Vec<&'v Value>),
    /// The path is absent (only an error on the first page).
    Missing,
}

/// The records of a page body.
pub(crate) fn select<'v>(body: &'v Value, path: &[String]) -> Selected<'v> {
    match get_path(body, path) {
        None => Selected::Missing,
        Some(Value::Null) => Selected::Records(Vec::new()),
        Some(Value::Array(a)) => Selected::Records(a.iter().collect()),
        Some(other) => Selected::Records(vec![other]),
    }
}

/// The top-level keys of a body, for an error about a selector that found nothing.
pub(crate) fn keys_of(body: &Value) -> String {
    match body {
        Value::Object(m) if !m.is_empty() => m.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Object(_) => "an empty object".into(),
        Value::Array(_) => "an array (leave `records` unset)".into(),
        _ => "no object".into(),
    }
}

/// A record flattened `depth` levels (`{"a":{"b":1}}` → `{"a_b":1}`); arrays stay whole.
pub(crate) fn flatten(record: Map<String, Value>, depth: usize, sep: &str) -> Map<String, Value> {
    if depth == 0 {
        return record;
    }
    let mut out = Map::new();
    flatten_into(&mut out, None, record, depth, sep);
    out
}

fn flatten_into(
    out: &mut Map<String, Value>,
    prefix: Option<&str>,
    record: Map<String, Value>,
    depth: usize,
    sep: &str,
) {
    for (k, v) in record {
        let name = match prefix {
            Some(p) => format!("{p}{sep}{k}"),
            None => k,
        };
        match v {
            Value::Object(inner) if depth > 0 && !inner.is_empty() => {
                flatten_into(out, Some(&name), inner, depth - 1, sep)
            }
            v => {
                out.insert(name, v);
            }
        }
    }
}

/// A JSON object's entries in the order written, values unparsed.
struct Ordered<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Ordered<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Ordered<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = map.next_entry::<String, &'de RawValue>()? {
                    out.push(e);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The records of a page body as raw JSON, keys in the API's order (for inference).
pub(crate) fn select_raw<'a>(body: &'a str, path: &[String]) -> Vec<&'a RawValue> {
    let Ok(mut v) = serde_json::from_str::<&RawValue>(body) else {
        return Vec::new();
    };
    for part in path {
        let text = v.get();
        let next = if text.starts_with('{') {
            serde_json::from_str::<Ordered>(text)
                .ok()
                .and_then(|o| o.0.into_iter().find(|(k, _)| k == part).map(|(_, r)| r))
        } else if text.starts_with('[') {
            serde_json::from_str::<Vec<&RawValue>>(text)
                .ok()
                .and_then(|a| a.get(part.parse::<usize>().ok()?).copied())
        } else {
            None
        };
        match next {
            Some(n) => v = n,
            None => return Vec::new(),
        }
    }
    let text = v.get();
    if text.starts_with('[') {
        serde_json::from_str::<Vec<&RawValue>>(text).unwrap_or_default()
    } else if text.starts_with('{') {
        vec![v]
    } else {
        Vec::new()
    }
}

/// One record as a JSON Lines line, flattened like [`flatten`] but keeping key order,
/// with `extra` columns (from the parent) first. `None` if it is not an object.
pub(crate) fn ordered_line(
    raw: &RawValue,
    extra: &[(String, Value)],
    depth: usize,
    sep: &str,
) -> Option<String> {
    let entries = serde_json::from_str::<Ordered>(raw.get()).ok()?;
    let mut line = String::from("{");
    let mut first = true;
    for (k, v) in extra {
        push_entry(&mut line, &mut first, k, &v.to_string());
    }
    ordered_into(&mut line, &mut first, None, entries, depth, sep);
    line.push('}');
    Some(line)
}

fn ordered_into(
    line: &mut String,
    first: &mut bool,
    prefix: Option<&str>,
    entries: Ordered,
    depth: usize,
    sep: &str,
) {
    for (k, v) in entries.0 {
        let name = match prefix {
            Some(p) => format!("{p}{sep}{k}"),
            None => k,
        };
        let text = v.get();
        if depth > 0 && text.starts_with('{') {
            if let Ok(inner) = serde_json::from_str::<Ordered>(text) {
                if !inner.0.is_empty() {
                    ordered_into(line, first, Some(&name), inner, depth - 1, sep);
                    continue;
                }
            }
        }
        push_entry(line, first, &name, text);
    }
}

fn push_entry(line: &mut String, first: &mut bool, key: &str, value: &str) {
    if !*first {
        line.push(',');
    }
    *first = false;
    let _ = write!(
        line,
        "{}:{}",
        Value::String(key.to_string()),
        value.replace('\n', " ")
    );
}

/// Infers a schema from JSON Lines `sample`, with `overrides` winning.
pub(crate) fn infer(
    sample: &str,
    overrides: &[(String, FerryType)],
    sample_records: usize,
) -> ferry_core::Result<SchemaRef> {
    infer_jsonl(
        sample.as_bytes(),
        &InferOptions {
            sample_rows: sample_records,
            overrides: overrides.to_vec(),
        },
    )
}

/// One `{…}` placeholder of a child stream's path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placeholder {
    /// The text to replace, braces included.
    pub text: String,
    /// The dotted path into the parent record.
    pub field: Vec<String>,
}

/// The placeholders of `path`, whose fields must start with `parent.`, `<parent>.` or the
/// parent's singular (`customers` → `customer.`).
pub(crate) fn placeholders(path: &str, parent: &str) -> Result<Vec<Placeholder>, String> {
    let singular = parent.strip_suffix('s').unwrap_or(parent);
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("`{{` without `}}` in path `{path}`"))?;
        let inner = &rest[i + 1..i + end];
        let (head, field) = inner.split_once('.').ok_or_else(|| {
            format!("placeholder `{{{inner}}}` must name a parent field, like `{{parent.id}}`")
        })?;
        if head != "parent" && head != parent && head != singular {
            return Err(format!(
                "placeholder `{{{inner}}}` must start with `parent.` or `{parent}.`"
            ));
        }
        let field = crate::config::split_path(field);
        if field.is_empty() {
            return Err(format!("placeholder `{{{inner}}}` names no field"));
        }
        out.push(Placeholder {
            text: rest[i..=i + end].to_string(),
            field,
        });
        rest = &rest[i + end + 1..];
    }
    if out.is_empty() {
        return Err(format!(
            "path `{path}` uses no parent field: write it like `/customers/{{parent.id}}/orders`"
        ));
    }
    Ok(out)
}

/// A parent value as text for a path segment or a column (`null` when absent).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_flattens_and_keeps_order() {
        let body = r#"{"meta":{"n":2},"data":{"items":[{"z":1,"a":{"c":{"d":2},"b":"x"},"t":[1]},{"z":2}]}}"#;
        let v: Value = serde_json::from_str(body).unwrap();
        let path = crate::config::split_path("data.items");
        let Selected::Records(recs) = select(&v, &path) else {
            panic!()
        };
        assert_eq!(recs.len(), 2);
        let flat = flatten(recs[0].as_object().unwrap().clone(), usize::MAX, "_");
        assert_eq!(flat["a_c_d"], 2);
        assert_eq!(flat["t"], serde_json::json!([1]));
        let one = flatten(recs[0].as_object().unwrap().clone(), 1, "_");
        assert_eq!(one["a_c"], serde_json::json!({"d": 2}));
        assert!(matches!(select(&v, &["nope".into()]), Selected::Missing));
        let raw = select_raw(body, &path);
        assert_eq!(raw.len(), 2);
        let line =
            ordered_line(raw[0], &[("pid".into(), Value::from(7))], usize::MAX, "_").unwrap();
        assert_eq!(line, r#"{"pid":7,"z":1,"a_c_d":2,"a_b":"x","t":[1]}"#);
        let schema = infer(&line, &[], 10).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["pid", "z", "a_c_d", "a_b", "t"]);
    }

    #[test]
    fn placeholders_name_the_parent() {
        let p = placeholders("/customers/{customer.id}/orders", "customers").unwrap();
        assert_eq!(p[0].field, vec!["id".to_string()]);
        assert!(placeholders("/c/{parent.a.b}", "customers").is_ok());
        assert!(placeholders("/c/{other.id}", "customers").is_err());
        assert!(placeholders("/c/orders", "customers").is_err());
    }
}
