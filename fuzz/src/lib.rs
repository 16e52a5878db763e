//! Ferry's fuzz targets. Each target in `fuzz_targets/` calls one function of
//! [`entries`]; `core/tests/fuzz_regressions.rs` includes the same file and runs every
//! kept input through the same function, so a crash found here stays fixed in CI.

pub mod entries;
