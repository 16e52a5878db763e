//! `ferry profile`: what a stream's columns hold before it moves, in bounded memory.
//!
//! [`read`] reads the rows, [`stats`] gathers each column's figures with the [`sketch`]es
//! and [`shape`]s, [`detect`] says what a column appears to hold (using [`ids`]), and
//! [`suggest`] turns a profile into TOML to paste. The detectors are pure functions of a
//! column's name and values, so other parts (a personal-data guard) can use them alone.
//! See docs/profile.md.

pub mod detect;
pub mod ids;
pub mod read;
pub mod shape;
pub mod sketch;
pub mod stats;
pub mod suggest;

pub use detect::{detect, Detector, Finding, Kind, MIN_SHARE};
pub use read::{profile_stream, ProfileOptions, StreamProfile, DEFAULT_SAMPLE};
pub use stats::ColumnProfile;
pub use suggest::{suggest, Protection};

/// The version of the `--json` shape (see docs/profile.md); raised when a field changes
/// meaning or goes away, not when one is added.
pub const JSON_VERSION: u32 = 1;
