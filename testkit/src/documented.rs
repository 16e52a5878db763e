//! The check that a connector's config documents itself: `ferry spec` and the docs are
//! generated from the config types' doc comments.

use ferry_core::registry::{ConnectorDef, Registry};

/// Every field of each config `def` offers (source, destination) has a doc comment that
/// states its default or that it is required, and `fields` are among them. Returns the
/// spec, for the connector's own checks.
pub fn config_is_documented(def: &ConnectorDef, fields: &[&str]) -> serde_json::Value {
    let spec = def.spec();
    let sides = [("source", def.is_source()), ("destination", def.is_sink())];
    for (side, _) in sides.iter().filter(|(_, offered)| *offered) {
        let props = spec[side]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{side} has no properties: {spec}"));
        for field in fields {
            assert!(props.contains_key(*field), "{side}.{field} missing: {spec}");
        }
        for (name, p) in props {
            // an optional field may carry its doc on the first branch of an `anyOf`
            let doc = p["description"]
                .as_str()
                .or_else(|| p["anyOf"][0]["description"].as_str())
                .unwrap_or_else(|| panic!("{side}.{name} has no doc comment: {p}"));
            assert!(!doc.is_empty(), "{side}.{name} has no doc comment");
            assert!(
                doc.contains("default") || doc.contains("required"),
                "{side}.{name} does not state its default: {doc}"
            );
        }
    }
    spec
}

/// The connector `name` that `register` adds, which reads and writes, checked with
/// [`config_is_documented`]: the spec.
pub fn documented_source_and_sink(
    register: fn(&mut Registry),
    name: &str,
    fields: &[&str],
) -> serde_json::Value {
    let registry = crate::registry_with(register);
    let def = registry
        .get(name)
        .unwrap_or_else(|e| panic!("{name} is not registered: {e}"));
    assert!(def.is_source() && def.is_sink(), "{name} reads and writes");
    config_is_documented(def, fields)
}
