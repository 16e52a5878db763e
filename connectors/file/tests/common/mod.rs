//! The file connector built from TOML, as `sync.toml` builds it.

#![allow(dead_code)]

pub mod source_fix;

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Error, ErrorKind, Result, Sink, Source};

/// The file source `toml` configures; relative paths are under `base`.
pub fn source(toml: &str, base: &Path) -> Result<Arc<dyn Source>> {
    ferry_testkit::source_from_toml(ferry_connector_file::register, "file", toml, base)
}

/// The file sink `toml` configures; relative paths are under `base`.
pub fn sink(toml: &str, base: &Path) -> Result<Arc<dyn Sink>> {
    ferry_testkit::sink_from_toml(ferry_connector_file::register, "file", toml, base)
}

pub fn io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, e.to_string())
}

/// Hidden files left in `dir` (temp files of unfinished writes).
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// The error the file source's config `toml` is refused with.
pub fn source_refused(toml: &str, base: &Path) -> Error {
    source(toml, base)
        .err()
        .expect("the source config is refused")
}

/// The error the file sink's config `toml` is refused with.
pub fn sink_refused(toml: &str, base: &Path) -> Error {
    sink(toml, base).err().expect("the sink config is refused")
}
