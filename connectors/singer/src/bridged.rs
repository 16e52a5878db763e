//! The `config` table handed to a bridged program: any TOML values, where every string
//! holding a reference (`${secret:…}`, `${env:…}`, `${file:…}`) is resolved into a
//! [`Secret`] when the config is loaded, so it prints as `[redacted]` everywhere and is
//! scrubbed by the leak guard. The clear values exist only in [`BridgedConfig::expose`],
//! which the bridge writes to a 0600 temp file for the child.

use std::collections::BTreeMap;
use std::fmt;

use ferry_core::Secret;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// One value of a bridged config.
#[derive(Clone)]
pub enum BridgedValue {
    /// A value without secrets.
    Plain(Value),
    /// A resolved reference.
    Secret(Secret),
    /// A list.
    List(Vec<BridgedValue>),
    /// A table.
    Table(BTreeMap<String, BridgedValue>),
}

/// The config a bridged program gets (the tap's, target's or source's own settings).
#[derive(Clone, Default)]
pub struct BridgedConfig(pub BTreeMap<String, BridgedValue>);

impl BridgedValue {
    /// The JSON value with secrets in clear, for the child's config file only.
    pub fn expose(&self) -> Value {
        match self {
            BridgedValue::Plain(v) => v.clone(),
            BridgedValue::Secret(s) => Value::String(s.expose().to_string()),
            BridgedValue::List(l) => Value::Array(l.iter().map(BridgedValue::expose).collect()),
            BridgedValue::Table(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.clone(), v.expose())).collect())
            }
        }
    }

    /// The JSON value with secrets shown as `[redacted]`.
    pub fn redacted(&self) -> Value {
        match self {
            BridgedValue::Plain(v) => v.clone(),
            BridgedValue::Secret(_) => Value::String("[redacted]".into()),
            BridgedValue::List(l) => Value::Array(l.iter().map(BridgedValue::redacted).collect()),
            BridgedValue::Table(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.clone(), v.redacted())).collect())
            }
        }
    }
}

impl BridgedConfig {
    /// The config as a JSON object with secrets in clear, for the child's config file only.
    pub fn expose(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.expose()))
                .collect(),
        )
    }

    /// Top-level keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for BridgedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.redacted()))
                .collect(),
        );
        write!(f, "{v}")
    }
}

impl<'de> Deserialize<'de> for BridgedConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match BridgedValue::deserialize(d)? {
            BridgedValue::Table(t) => Ok(BridgedConfig(t)),
            _ => Err(de::Error::custom(
                "`config` must be a table: config = { key = \"value\" }",
            )),
        }
    }
}

impl schemars::JsonSchema for BridgedConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BridgedConfig".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": true,
            "description": "The bridged program's own settings, passed to it as its JSON config file. Write secrets as references (${secret:NAME}, ${env:NAME}, ${file:path}): they are resolved, redacted from every log and error, and written only to a 0600 temp file deleted after the run."
        })
    }
}

impl<'de> Deserialize<'de> for BridgedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

/// The key under which the `toml` crate hands over a date-time.
const TOML_DATETIME: &str = "$__toml_private_datetime";

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = BridgedValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(BridgedValue::Plain(Value::Null))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.contains("${") {
            // resolved in the config's context (vault, env, files) and registered with the
            // leak guard, exactly like a `Secret` field
            let s = Secret::deserialize(de::value::StrDeserializer::<E>::new(v))?;
            Ok(BridgedValue::Secret(s))
        } else {
            Ok(BridgedValue::Plain(Value::String(v.to_string())))
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<BridgedValue>()? {
            out.push(v);
        }
        Ok(BridgedValue::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v: BridgedValue = map.next_value()?;
            if k == TOML_DATETIME {
                return Ok(v);
            }
            out.insert(k, v);
        }
        Ok(BridgedValue::Table(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        config: BridgedConfig,
    }

    #[test]
    fn references_become_secrets() {
        std::env::set_var("FERRY_BRIDGED_TEST_PW", "bridged-canary-pw-123");
        let node = ferry_core::ConfigNode::from_toml(
            "config = { host = \"db\", port = 5432, password = \"${env:FERRY_BRIDGED_TEST_PW}\", tags = [\"a\", 1], nested = { ok = true }, since = 2024-01-02T03:04:05Z }",
            ".",
        )
        .unwrap();
        let w: Wrap = node.parse().unwrap();
        let shown = format!("{:?}", w.config);
        assert!(!shown.contains("bridged-canary-pw-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let v = w.config.expose();
        assert_eq!(v["password"], "bridged-canary-pw-123");
        assert_eq!(v["port"], 5432);
        assert_eq!(v["tags"][1], 1);
        assert_eq!(v["nested"]["ok"], true);
        assert_eq!(v["since"], "2024-01-02T03:04:05Z");
        assert_eq!(
            ferry_core::redact::redact("x bridged-canary-pw-123 y"),
            "x [redacted] y"
        );
    }
}
