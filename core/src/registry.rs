//! The list of connectors a binary knows, and how a config section becomes a
//! `Source` or `Sink`.
//!
//! A connector crate exposes one `register(&mut Registry)` function that adds a
//! [`ConnectorDef`]; the `ferry` binary calls each crate's `register` once. Config
//! types give `ferry spec` its JSON Schema, so the docs never drift from the code.

use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::{ConfigNode, ConnectorConfig};
use crate::source::Replay;
use crate::suggest::nearest;
use crate::{Error, Result, Sink, Source};

/// What a connector's build function gets besides its config.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Folder of the config file; relative paths are relative to it.
    pub base_dir: PathBuf,
}

type BuildFn<T> = Arc<dyn Fn(&ConfigNode, &BuildContext) -> Result<Arc<T>> + Send + Sync>;
type SourceFn = BuildFn<dyn Source>;
type SinkFn = BuildFn<dyn Sink>;

/// What a build function may return: the source or sink itself, or one already shared
/// (`T` is `dyn Source` or `dyn Sink`).
pub trait IntoShared<T: ?Sized> {
    /// It, shared.
    fn into_shared(self) -> Arc<T>;
}

impl<S: Source + 'static> IntoShared<dyn Source> for S {
    fn into_shared(self) -> Arc<dyn Source> {
        Arc::new(self)
    }
}

impl<S: Sink + 'static> IntoShared<dyn Sink> for S {
    fn into_shared(self) -> Arc<dyn Sink> {
        Arc::new(self)
    }
}

impl<T: ?Sized> IntoShared<T> for Arc<T> {
    fn into_shared(self) -> Arc<T> {
        self
    }
}

/// The JSON Schema of config type `C`, for `ferry spec`.
fn spec_of<C: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(C)).expect("schema serializes")
}

/// One connector: its name, what it is, and how to build its source and/or sink.
#[derive(Clone)]
pub struct ConnectorDef {
    /// The `type` written in `sync.toml`.
    pub name: &'static str,
    /// One line saying what it connects to.
    pub description: &'static str,
    source: Option<(serde_json::Value, SourceFn)>,
    sink: Option<(serde_json::Value, SinkFn)>,
    replay: Option<Arc<dyn Replay>>,
}

impl ConnectorDef {
    /// A connector with neither source nor sink yet.
    pub fn new(name: &'static str, description: &'static str) -> Self {
        ConnectorDef {
            name,
            description,
            source: None,
            sink: None,
            replay: None,
        }
    }

    /// Adds a source built from config type `C`: `build` returns the source itself
    /// (`.with_source(MySource::new)`) or an `Arc<dyn Source>`.
    pub fn with_source<C, S, F>(mut self, build: F) -> Self
    where
        C: DeserializeOwned + schemars::JsonSchema + 'static,
        S: IntoShared<dyn Source>,
        F: Fn(C, &BuildContext) -> Result<S> + Send + Sync + 'static,
    {
        self.source = Some((
            spec_of::<C>(),
            Arc::new(move |node, ctx| Ok(build(node.parse::<C>()?, ctx)?.into_shared())),
        ));
        self
    }

    /// Adds a sink built from config type `C`: `build` returns the sink itself
    /// (`.with_sink(MySink::new)`) or an `Arc<dyn Sink>`.
    pub fn with_sink<C, S, F>(mut self, build: F) -> Self
    where
        C: DeserializeOwned + schemars::JsonSchema + 'static,
        S: IntoShared<dyn Sink>,
        F: Fn(C, &BuildContext) -> Result<S> + Send + Sync + 'static,
    {
        self.sink = Some((
            spec_of::<C>(),
            Arc::new(move |node, ctx| Ok(build(node.parse::<C>()?, ctx)?.into_shared())),
        ));
        self
    }

    /// Adds the replay of the exchanges its source records (`ferry replay`, see [`Replay`]).
    pub fn with_replay(mut self, replay: impl Replay + 'static) -> Self {
        self.replay = Some(Arc::new(replay));
        self
    }

    /// The replay of the exchanges its source records, if it offers one.
    ///
    /// ```
    /// let def = ferry_core::ConnectorDef::new("acme", "the ACME ERP");
    /// assert!(def.replay().is_none(), "none unless offered");
    /// ```
    pub fn replay(&self) -> Option<Arc<dyn Replay>> {
        self.replay.clone()
    }

    /// Whether it can be a source.
    pub fn is_source(&self) -> bool {
        self.source.is_some()
    }

    /// Whether it can be a destination.
    pub fn is_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// The JSON Schemas of its source and destination configs.
    pub fn spec(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("connector".into(), self.name.into());
        out.insert("description".into(), self.description.into());
        if let Some((s, _)) = &self.source {
            out.insert("source".into(), s.clone());
        }
        if let Some((s, _)) = &self.sink {
            out.insert("destination".into(), s.clone());
        }
        serde_json::Value::Object(out)
    }
}

/// Every connector this binary knows.
///
/// ```
/// use ferry_core::{ConnectorDef, Registry};
///
/// let mut r = Registry::new();
/// r.add(ConnectorDef::new("acme", "the ACME ERP"));
/// assert!(r.get("acme").is_ok());
/// let err = r.get("acm").err().unwrap();
/// assert!(err.to_string().contains("did you mean `acme`"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    defs: Vec<ConnectorDef>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a connector (a later one with the same name replaces the earlier).
    pub fn add(&mut self, def: ConnectorDef) {
        self.defs.retain(|d| d.name != def.name);
        self.defs.push(def);
    }

    /// All connectors, in registration order.
    pub fn all(&self) -> &[ConnectorDef] {
        &self.defs
    }

    /// The connector named `name`, or an error suggesting the nearest name.
    pub fn get(&self, name: &str) -> Result<&ConnectorDef> {
        self.defs.iter().find(|d| d.name == name).ok_or_else(|| {
            let names = self.defs.iter().map(|d| d.name);
            let mut msg = format!("unknown connector `{name}`");
            if let Some(best) = nearest(name, names.clone()) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            msg.push_str(&format!(
                " (known: {})",
                names.collect::<Vec<_>>().join(", ")
            ));
            Error::config(msg)
        })
    }

    /// Builds the source a `[source]` section describes.
    pub fn build_source(&self, cfg: &ConnectorConfig) -> Result<Arc<dyn Source>> {
        self.build(cfg, "a source", |def| def.source.as_ref())
    }

    /// Builds the sink a `[destination]` section describes.
    pub fn build_sink(&self, cfg: &ConnectorConfig) -> Result<Arc<dyn Sink>> {
        self.build(cfg, "a destination", |def| def.sink.as_ref())
    }

    /// Builds the side `pick` takes of `cfg`'s connector; an error at its `type` when the
    /// connector is unknown or cannot be `role`.
    fn build<T: ?Sized>(
        &self,
        cfg: &ConnectorConfig,
        role: &str,
        pick: impl Fn(&ConnectorDef) -> Option<&(serde_json::Value, BuildFn<T>)>,
    ) -> Result<Arc<T>> {
        let file = cfg.node.file();
        let def = self
            .get(&cfg.kind)
            .map_err(|e| file.error_at(Some(cfg.kind_offset), e.message()))?;
        let (_, build) = pick(def).ok_or_else(|| {
            file.error_at(
                Some(cfg.kind_offset),
                format!("connector `{}` cannot be {role}", def.name),
            )
        })?;
        build(
            &cfg.node,
            &BuildContext {
                base_dir: cfg.node.base_dir().to_path_buf(),
            },
        )
    }
}

/// Writes a connector crate's `NAME` (the `type` written in `sync.toml`) and its
/// `register` function, which adds the connector with its source and/or sink builders
/// (each `Fn(Config, &BuildContext) -> Result<impl IntoShared<…>>`: the source or sink) and,
/// optionally, the replay of the exchanges its source records.
///
/// ```ignore
/// ferry_core::connector! {
///     name: "demo",
///     description: "what it connects to, in one line",
///     source: DemoSource::new,
///     sink: DemoSink::new,
/// }
/// ```
///
/// A crate with several connectors names a constant for each:
///
/// ```ignore
/// ferry_core::connector! {
///     /// The source's name.
///     SOURCE_NAME = { name: "demo", description: "…", source: DemoSource::new, }
///     /// The sink's name.
///     SINK_NAME = { name: "demo-out", description: "…", sink: DemoSink::new, }
/// }
/// ```
#[macro_export]
macro_rules! connector {
    (
        name: $name:literal,
        $($def:tt)*
    ) => {
        $crate::connector! {
            /// The connector's name, the `type` written in `sync.toml`.
            NAME = { name: $name, $($def)* }
        }
    };
    (
        $(
            $(#[$meta:meta])*
            $const:ident = {
                name: $name:literal,
                description: $description:expr,
                $(source: $source:expr,)?
                $(sink: $sink:expr,)?
                $(replay: $replay:expr,)?
            }
        )+
    ) => {
        $(
            $(#[$meta])*
            pub const $const: &str = $name;
        )+

        #[doc = concat!("Adds the connector", $(" `", $name, "`",)+ " to `registry`.")]
        pub fn register(registry: &mut $crate::Registry) {
            $(
                registry.add(
                    $crate::ConnectorDef::new($const, $description)
                        $(.with_source($source))?
                        $(.with_sink($sink))?
                        $(.with_replay($replay))?,
                );
            )+
        }
    };
}
