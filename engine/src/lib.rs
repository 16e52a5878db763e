//! Ferry's engine: what happens between a source and a sink. The runtime runs streams
//! (bounded channels, checkpoints committed only after the sink made the rows durable);
//! around it: the sync config, per-pipeline state, transforms, checks and quarantine, the run
//! report and the signed receipt. Only the CLI uses this crate; connectors see the contract
//! (`ferry-core`) alone. See ARCHITECTURE.md.
#![deny(missing_docs)]

pub mod checksums;
pub mod config;
pub mod group;
pub mod html;
pub mod personal_data;
pub mod profile;
pub mod quarantine;
pub mod receipt;
pub mod report;
pub mod rows;
pub mod runtime;
pub mod schema_change;
pub mod sshsig;
pub mod state;
pub mod strict_json;
pub mod transform;
pub mod validate;

pub use config::{StreamConfig, SyncConfig};
pub use report::{RunReport, StreamReport};
pub use runtime::{RunOptions, Runtime};
