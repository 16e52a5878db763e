//! The `[source]` section of `type = "airbyte"`.
//!
//! Parsing is pure; nothing is installed or run until `check`, `discover` or `read`.

use ferry_connector_singer::BridgedConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// `[source] type = "airbyte"`: an Airbyte source connector run from its Python package.
///
/// ```toml
/// [source]
/// type = "airbyte"
/// package = "airbyte-source-faker"   # installed into .ferry/venvs/ on first use
/// version = "7.2.1"
/// config = { count = 1000, seed = 42 }
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AirbyteSourceConfig {
    /// PyPI package of the connector, installed with pip into
    /// `.ferry/venvs/<package>[-<version>]` beside the config file on first use and reused
    /// after (default: none; set this or `executable`).
    #[serde(default)]
    pub package: Option<String>,
    /// Exact version of `package` to install, e.g. "7.2.1" (default: the newest at first
    /// install; pin it so every machine runs the same connector).
    #[serde(default)]
    pub version: Option<String>,
    /// The package's program to run (default: its only console script, or the one its
    /// name ends with, e.g. `source-faker` for `airbyte-source-faker`).
    #[serde(default)]
    pub command: Option<String>,
    /// A connector program already on disk instead of a package: a path relative to the
    /// config file, or a bare name looked up on PATH (default: none).
    #[serde(default)]
    pub executable: Option<String>,
    /// The connector's own settings (its `spec`), written to the JSON file passed as
    /// `--config` (default: empty). Secret references are resolved; the file is mode 0600
    /// and deleted after each command. `ferry check` names missing required settings.
    #[serde(default)]
    pub config: BridgedConfig,
    /// Environment variables the connector gets besides the minimal set Ferry passes (PATH,
    /// HOME, locale, temp folder, proxy and CA settings; never Ferry's own `FERRY_*`),
    /// e.g. `env = { GOOGLE_APPLICATION_CREDENTIALS = "key.json" }` (default: none).
    /// Values may be secret references, resolved and redacted like `config`'s.
    #[serde(default)]
    pub env: BridgedConfig,
}
