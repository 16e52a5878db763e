//! The `[source]` and `[destination]` sections of `type = "singer"`.
//!
//! Parsing is pure; nothing is installed or run until `check`, `discover`, `read` or `open`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bridged::BridgedConfig;

/// `[source] type = "singer"`: a Singer tap, run unchanged.
///
/// ```toml
/// [source]
/// type = "singer"
/// package = "meltanolabs-tap-postgres"   # installed into .ferry/venvs/ on first use
/// version = "0.10.0"
/// config = { host = "127.0.0.1", port = 5432, user = "postgres", password = "${secret:pg_password}", database = "test" }
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SingerSourceConfig {
    /// PyPI package of the tap, installed with pip into `.ferry/venvs/<package>[-<version>]`
    /// beside the config file on first use and reused after (default: none; set this or
    /// `executable`).
    #[serde(default)]
    pub package: Option<String>,
    /// Exact version of `package` to install, e.g. "0.10.0" (default: the newest at first
    /// install; pin it so every machine runs the same tap).
    #[serde(default)]
    pub version: Option<String>,
    /// The package's program to run (default: its only console script, or the one its
    /// name ends with, e.g. `tap-postgres` for `meltanolabs-tap-postgres`).
    #[serde(default)]
    pub command: Option<String>,
    /// A tap program already on disk instead of a package: a path relative to the config
    /// file, or a bare name looked up on PATH (default: none).
    #[serde(default)]
    pub executable: Option<String>,
    /// The tap's own settings, written to the JSON file passed as `--config` (default:
    /// empty). Secret references are resolved; the file is mode 0600 and deleted after
    /// the run.
    #[serde(default)]
    pub config: BridgedConfig,
    /// Environment variables the tap gets besides the minimal set Ferry passes (PATH,
    /// HOME, locale, temp folder, proxy and CA settings; never Ferry's own `FERRY_*`),
    /// e.g. `env = { GOOGLE_APPLICATION_CREDENTIALS = "key.json" }` (default: none).
    /// Values may be secret references, resolved and redacted like `config`'s.
    #[serde(default)]
    pub env: BridgedConfig,
    /// How the catalog is passed: `catalog` (`--catalog`, Singer SDK and most taps) or
    /// `properties` (`--properties`, older singer-python taps) (default `catalog`).
    #[serde(default)]
    pub catalog_flag: CatalogFlag,
}

/// The command-line flag a tap reads its catalog from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogFlag {
    /// `--catalog`.
    #[default]
    Catalog,
    /// `--properties`.
    Properties,
}

/// `[destination] type = "singer"`: a Singer target, run unchanged.
///
/// ```toml
/// [destination]
/// type = "singer"
/// package = "target-jsonl"
/// version = "0.1.4"
/// config = { destination_path = "out", do_timestamp_file = false }
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SingerSinkConfig {
    /// PyPI package of the target, installed with pip into `.ferry/venvs/` on first use
    /// (default: none; set this or `executable`).
    #[serde(default)]
    pub package: Option<String>,
    /// Exact version of `package` to install (default: the newest at first install).
    #[serde(default)]
    pub version: Option<String>,
    /// The package's program to run (default: its only console script, or the one its
    /// name ends with).
    #[serde(default)]
    pub command: Option<String>,
    /// A target program already on disk instead of a package (default: none).
    #[serde(default)]
    pub executable: Option<String>,
    /// The target's own settings, written to the JSON file passed as `--config`
    /// (default: empty). Secret references are resolved; the file is mode 0600 and
    /// deleted after the run.
    #[serde(default)]
    pub config: BridgedConfig,
    /// Environment variables the target gets besides the minimal set Ferry passes (PATH,
    /// HOME, locale, temp folder, proxy and CA settings; never Ferry's own `FERRY_*`),
    /// e.g. `env = { GOOGLE_APPLICATION_CREDENTIALS = "key.json" }` (default: none).
    /// Values may be secret references, resolved and redacted like `config`'s.
    #[serde(default)]
    pub env: BridgedConfig,
    /// How long a flush waits for the target to echo Ferry's STATE marker on stdout,
    /// in seconds (default 10). A target that echoes in time makes each flush durable; one
    /// that does not (many echo only at the end) is treated as durable only when it exits
    /// successfully, and later flushes do not wait.
    #[serde(default = "default_echo_timeout")]
    pub echo_timeout_secs: f64,
}

fn default_echo_timeout() -> f64 {
    10.0
}
