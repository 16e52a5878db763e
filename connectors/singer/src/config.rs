//! The `[source]` and `[destination]` sections of `type = "singer"`.
//!
//! Parsing is pure; nothing is installed or run until `check`, `discover`, `read` or `open`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bridged::BridgedConfig;

/// A bridged program's config struct with the fields every one has written in once:
/// `package`, `version`, `command`, `executable`, `config` and `env`, each documented for
/// `$role` (`tap`, `target` or `source`), then the struct's own fields; and `launch()` to
/// turn the first four into a [`Launch`]. The struct takes `serde(default)` from the
/// caller, so it needs a `Default`.
#[macro_export]
macro_rules! bridged_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            role: $role:literal,
            program: $program:literal,
            package_example: $package:literal,
            version_example: $version:literal,
            command_example: $command:literal,
            $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            #[doc = concat!("PyPI package of the ", $program, ", installed with pip into \
                `.ferry/venvs/<package>[-<version>]` beside the config file on first use and \
                reused after (default: none; set this or `executable`).")]
            pub package: Option<String>,
            #[doc = concat!("Exact version of `package` to install, e.g. \"", $version,
                "\" (default: the newest at first install; pin it so every machine runs the \
                same ", $program, ").")]
            pub version: Option<String>,
            #[doc = concat!("The package's program to run (default: its only console script, \
                or the one its name ends with, e.g. `", $command, "` for `", $package, "`).")]
            pub command: Option<String>,
            #[doc = concat!("A ", $program, " program already on disk instead of a package: a \
                path relative to the config file, or a bare name looked up on PATH (default: \
                none).")]
            pub executable: Option<String>,
            #[doc = concat!("The ", $program, "'s own settings, written to the JSON file passed \
                as `--config` (default: empty). Secret references are resolved; the file is \
                mode 0600 and deleted after the run.")]
            pub config: $crate::BridgedConfig,
            #[doc = concat!("Environment variables the ", $program, " gets besides the minimal \
                set Ferry passes (PATH, HOME, locale, temp folder, proxy and CA settings; never \
                Ferry's own `FERRY_*`), e.g. `env = { GOOGLE_APPLICATION_CREDENTIALS = \
                \"key.json\" }` (default: none). Values may be secret references, resolved \
                and redacted like `config`'s.")]
            pub env: $crate::BridgedConfig,
            $($(#[$fmeta])* pub $field: $fty,)*
        }

        impl $name {
            /// How to start the program, checked without I/O; `base_dir` is the config
            /// file's folder.
            pub fn launch(&self, base_dir: &::std::path::Path) -> ::ferry_core::Result<$crate::venv::Launch> {
                $crate::venv::Launch::from_fields(
                    self.package.as_deref(),
                    self.version.as_deref(),
                    self.command.as_deref(),
                    self.executable.as_deref(),
                    base_dir,
                    $role,
                )
            }

            /// The program these fields configure; `base_dir` is the config file's folder.
            pub fn program(&self, base_dir: impl Into<::std::path::PathBuf>) -> ::ferry_core::Result<$crate::process::Program> {
                let base_dir = base_dir.into();
                Ok($crate::process::Program::new(
                    self.launch(&base_dir)?,
                    base_dir,
                    self.config.clone(),
                    self.env.clone(),
                ))
            }
        }
    };
}

crate::bridged_config! {
    /// `[source] type = "singer"`: a Singer tap, run unchanged.
    ///
    /// ```toml
    /// [source]
    /// type = "singer"
    /// package = "meltanolabs-tap-postgres"   # installed into .ferry/venvs/ on first use
    /// version = "0.10.0"
    /// config = { host = "127.0.0.1", port = 5432, user = "postgres", password = "${secret:pg_password}", database = "test" }
    /// ```
    #[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    pub struct SingerSourceConfig {
        role: "tap",
        program: "tap",
        package_example: "meltanolabs-tap-postgres",
        version_example: "0.10.0",
        command_example: "tap-postgres",
        /// How the catalog is passed: `catalog` (`--catalog`, Singer SDK and most taps) or
        /// `properties` (`--properties`, older singer-python taps) (default `catalog`).
        pub catalog_flag: CatalogFlag,
    }
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

crate::bridged_config! {
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
    #[serde(default, deny_unknown_fields)]
    pub struct SingerSinkConfig {
        role: "target",
        program: "target",
        package_example: "target-jsonl",
        version_example: "0.1.4",
        command_example: "target-jsonl",
        /// How long a flush waits for the target to echo Ferry's STATE marker on stdout,
        /// in seconds (default 10). A target that echoes in time makes each flush durable; one
        /// that does not (many echo only at the end) is treated as durable only when it exits
        /// successfully, and later flushes do not wait.
        pub echo_timeout_secs: f64,
    }
}

impl Default for SingerSinkConfig {
    fn default() -> Self {
        SingerSinkConfig {
            package: None,
            version: None,
            command: None,
            executable: None,
            config: BridgedConfig::default(),
            env: BridgedConfig::default(),
            echo_timeout_secs: 10.0,
        }
    }
}
