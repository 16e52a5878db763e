//! The kit's S3 test server (`s3s-fs` on a free loopback port, in this process, with one
//! known access key) and the connector built from TOML against it.

#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::sync::Arc;

use ferry_core::{Registry, Result, Sink, Source};

pub use ferry_testkit::s3_server::{S3Server as Server, ACCESS_KEY, SECRET_KEY};

pub fn registry() -> Registry {
    let mut r = Registry::new();
    ferry_connector_s3::register(&mut r);
    r
}

pub fn source(toml: &str) -> Result<Arc<dyn Source>> {
    ferry_testkit::source_from_toml(ferry_connector_s3::register, "s3", toml, ".")
}

pub fn sink(toml: &str) -> Result<Arc<dyn Sink>> {
    sink_at(toml, Path::new("."))
}

/// A sink whose relative paths (its upload journals) are under `base`.
pub fn sink_at(toml: &str, base: &Path) -> Result<Arc<dyn Sink>> {
    ferry_testkit::sink_from_toml(ferry_connector_s3::register, "s3", toml, base)
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/self/status")
}
