//! A bridged program as configured, and the command line of one run of it with the
//! private files it names: what the Singer source and destination and the Airbyte
//! source share.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ferry_core::Result;
use serde_json::Value;

use super::{secret_file, spawn, Running};
use crate::bridged::BridgedConfig;
use crate::venv::Launch;

/// A tap, target or connector as its config says: how to start it, the config file's
/// folder, its own settings and its environment.
pub struct Program {
    launch: Launch,
    base_dir: PathBuf,
    config: BridgedConfig,
    /// The config's `env`: variables the child gets besides the minimal set.
    env: BridgedConfig,
}

impl Program {
    /// The program `launch` starts; `base_dir` is the config file's folder.
    pub fn new(
        launch: Launch,
        base_dir: PathBuf,
        config: BridgedConfig,
        env: BridgedConfig,
    ) -> Self {
        Program {
            launch,
            base_dir,
            config,
            env,
        }
    }

    /// Its name in messages (`tap-postgres`).
    pub fn name(&self) -> String {
        self.launch.display_name()
    }

    /// The program's own settings (`config`).
    pub fn config(&self) -> &BridgedConfig {
        &self.config
    }

    /// A command line starting with `words`.
    pub fn args(&self, words: &[&str]) -> Args<'_> {
        Args {
            base_dir: &self.base_dir,
            args: words.iter().map(OsString::from).collect(),
            files: Vec::new(),
        }
    }

    /// A command line starting with `words`, then `--config` and a private file holding
    /// the program's settings (`what` names the file: `tap-config`).
    pub fn args_with_config(&self, words: &[&str], what: &str) -> Result<Args<'_>> {
        let mut args = self.args(words);
        args.file("--config", &self.config.expose(), what)?;
        Ok(args)
    }

    /// Starts the program (installed on first use) with `args`; stdin is piped when
    /// `with_stdin`. Returns where the program is, for messages, and the child.
    pub async fn start(&self, args: Args<'_>, with_stdin: bool) -> Result<(PathBuf, Running)> {
        let program = self.launch.resolve(&self.base_dir).await?;
        let run = spawn(
            &program,
            &self.name(),
            args.args,
            with_stdin,
            args.files,
            &self.env,
        )?;
        Ok((program, run))
    }
}

/// One run's command line and the private files it names, kept (and deleted) with the
/// child.
pub struct Args<'a> {
    base_dir: &'a Path,
    args: Vec<OsString>,
    files: Vec<tempfile::NamedTempFile>,
}

impl Args<'_> {
    /// Adds `flag` and the path of a new private file holding `value` (`what` names the
    /// file: `tap-state`).
    pub fn file(&mut self, flag: &str, value: &Value, what: &str) -> Result<()> {
        let f = secret_file(self.base_dir, value, what)?;
        self.args.push(flag.into());
        self.args.push(f.path().into());
        self.files.push(f);
        Ok(())
    }

    /// Adds `word` as it is.
    pub fn push(&mut self, word: &str) {
        self.args.push(word.into());
    }
}
