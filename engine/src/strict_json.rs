//! A check that a JSON document has one meaning: no object repeats a key.
//!
//! serde_json keeps the last of repeated keys inside a `serde_json::Value` (a receipt's
//! state) without a word, so two readers could see two different documents under one
//! signature. Signed documents are scanned with [`no_duplicate_keys`] before they are read.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Fails with serde_json's message (line and column) at the first object that repeats a
/// key, at any depth. Other JSON errors are reported too; the document is not kept.
pub fn no_duplicate_keys(bytes: &[u8]) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Scan.deserialize(&mut de)?;
    de.end()
}

/// Walks one JSON value, remembering only the keys of the object being read.
struct Scan;

impl<'de> DeserializeSeed<'de> for Scan {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Scan)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{key}` in one object"
                )));
            }
            map.next_value_seed(Scan)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(no_duplicate_keys(br#"{"a": [1, {"b": {"c": null}}], "d": "x"}"#).is_ok());
        for doc in [
            r#"{"a": 1, "a": 1}"#,
            r#"{"a": [{"b": 1, "c": 2, "b": 3}]}"#,
            r#"{"s": {"cursor": "2024", "cursor": "2025"}}"#,
            r#"{"a": 1, "\u0061": 2}"#,
        ] {
            let e = no_duplicate_keys(doc.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("duplicate key"), "{doc}: {e}");
        }
        assert!(no_duplicate_keys(br#"{"a": 1} x"#).is_err());
    }
}
