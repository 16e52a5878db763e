//! A connector's config section built from TOML, as `ferry sync` reads it from a file.

use std::path::Path;

use ferry_core::config::{ConfigNode, ConnectorConfig};

/// The section of a `kind` connector holding `toml`; relative paths in it are taken from
/// `base`.
pub fn section(kind: &str, toml: &str, base: &Path) -> ConnectorConfig {
    ConnectorConfig {
        kind: kind.into(),
        kind_offset: 0,
        node: ConfigNode::from_toml(toml, base).expect("config"),
    }
}
