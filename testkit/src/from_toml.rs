//! Connectors built from TOML for tests, the way `sync.toml` builds them: the lines of a
//! `[source]` or `[destination]` section parsed by [`ConfigNode::from_toml`], then built
//! by the connector's registered [`ConnectorDef`](ferry_core::ConnectorDef) or by the
//! connector's own constructor.
//!
//! ```no_run
//! # use ferry_testkit::source_from_toml;
//! # fn demo(register: fn(&mut ferry_core::Registry)) -> ferry_core::Result<()> {
//! let source = source_from_toml(register, "file", "path = \"people.csv\"\n", ".")?;
//! # Ok(()) }
//! ```

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use ferry_core::config::{ConfigNode, ConnectorConfig};
use ferry_core::registry::{BuildContext, Registry};
use ferry_core::{Result, Sink, Source};

/// A section `type = "<kind>"` holding `toml`; relative paths in it resolve against
/// `base_dir`.
pub fn connector_config(
    kind: &str,
    toml: &str,
    base_dir: impl AsRef<Path>,
) -> Result<ConnectorConfig> {
    Ok(ConnectorConfig {
        kind: kind.into(),
        kind_offset: 0,
        node: ConfigNode::from_toml(toml, base_dir.as_ref())?,
    })
}

/// A registry holding what `register` adds.
pub fn registry_with(register: impl FnOnce(&mut Registry)) -> Registry {
    let mut registry = Registry::new();
    register(&mut registry);
    registry
}

/// The source connector `kind` builds from `toml`, once `register` has added it to a
/// registry.
pub fn source_from_toml(
    register: impl FnOnce(&mut Registry),
    kind: &str,
    toml: &str,
    base_dir: impl AsRef<Path>,
) -> Result<Arc<dyn Source>> {
    registry_with(register).build_source(&connector_config(kind, toml, base_dir)?)
}

/// The sink connector `kind` builds from `toml`, once `register` has added it to a
/// registry.
pub fn sink_from_toml(
    register: impl FnOnce(&mut Registry),
    kind: &str,
    toml: &str,
    base_dir: impl AsRef<Path>,
) -> Result<Arc<dyn Sink>> {
    registry_with(register).build_sink(&connector_config(kind, toml, base_dir)?)
}

/// A connector's own type from its config in TOML, through its constructor (as
/// `from_toml(toml, dir, PostgresSource::new)`), for tests that need more than the trait.
pub fn from_toml<C: DeserializeOwned, T>(
    toml: &str,
    base_dir: impl AsRef<Path>,
    build: impl FnOnce(C, &BuildContext) -> Result<T>,
) -> Result<T> {
    let base_dir = base_dir.as_ref();
    let config: C = ConfigNode::from_toml(toml, base_dir)?.parse()?;
    build(
        config,
        &BuildContext {
            base_dir: base_dir.to_path_buf(),
        },
    )
}

/// [`from_toml`], adding to `shown` how the parsed config prints with `{:?}` (for the
/// checks that a secret is never shown).
pub fn from_toml_shown<C: DeserializeOwned + Debug, T>(
    toml: &str,
    base_dir: impl AsRef<Path>,
    shown: &mut Vec<String>,
    build: impl FnOnce(C, &BuildContext) -> Result<T>,
) -> Result<T> {
    from_toml(toml, base_dir, |config: C, ctx| {
        shown.push(format!("{config:?}"));
        build(config, ctx)
    })
}
