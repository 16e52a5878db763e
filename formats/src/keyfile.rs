//! The small files of public keys a config entry may name (age recipients files, OpenPGP
//! key files): checked before they are read, with errors that say what the entry could be.

use std::io;
use std::path::Path;

use ferry_core::{Error, Result};

/// A kind of key file, as errors speak of it.
pub(crate) struct KeyFile {
    /// What the entry could have been instead, written in the config itself.
    pub(crate) neither: &'static str,
    /// What the file is called: "recipients file", "key file".
    pub(crate) kind: &'static str,
    /// The largest such file.
    pub(crate) max: u64,
}

impl KeyFile {
    /// Checks that `path`, named by the entry `what`, is a file of at most `max` bytes;
    /// `not_one` says why it is not.
    pub(crate) fn check(
        &self,
        path: &Path,
        what: &str,
        not_one: impl FnOnce() -> String,
    ) -> Result<()> {
        let meta = std::fs::metadata(path).map_err(|e| {
            let why = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "it is neither {} nor an existing {}",
                    self.neither, self.kind
                )
            } else {
                format!("cannot read the {}: {e}", self.kind)
            };
            Error::config(format!("{what}: {why}")).with("file", path.display())
        })?;
        if !meta.is_file() || meta.len() > self.max {
            return Err(Error::config(not_one()));
        }
        Ok(())
    }
}
