//! The `[source]` section of `type = "airbyte"`.
//!
//! Parsing is pure; nothing is installed or run until `check`, `discover` or `read`.

use schemars::JsonSchema;
use serde::Deserialize;

ferry_connector_singer::bridged_config! {
    /// `[source] type = "airbyte"`: an Airbyte source connector run from its Python package.
    ///
    /// ```toml
    /// [source]
    /// type = "airbyte"
    /// package = "airbyte-source-faker"   # installed into .ferry/venvs/ on first use
    /// version = "7.2.1"
    /// config = { count = 1000, seed = 42 }
    /// ```
    ///
    /// `config` is the connector's `spec`; `ferry check` names missing required settings.
    #[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct AirbyteSourceConfig {
        role: "source",
        program: "connector",
        package_example: "airbyte-source-faker",
        version_example: "7.2.1",
        command_example: "source-faker",
    }
}
