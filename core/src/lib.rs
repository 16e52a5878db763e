#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod age;
pub mod catalog;
pub mod checksums;
pub mod codec;
pub mod config;
pub mod digest;
pub mod error;
pub mod estimate;
pub mod exchange;
pub mod file_column;
pub mod quarantine;
pub mod receipt;
pub mod redact;
pub mod registry;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod schema_change;
pub mod secret;
pub mod sink;
pub mod source;
pub mod sshsig;
pub mod state;
pub mod strict_json;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transform;
pub mod types;
pub mod validate;
pub mod values;
pub mod vault;

pub use arrow_array;
pub use arrow_schema;
pub use async_trait::async_trait;

pub use catalog::{Catalog, ReadMode, StreamInfo, WriteMode};
pub use config::{ConfigNode, StreamConfig, SyncConfig};
pub use error::{Error, ErrorKind, Result, ResultExt};
pub use estimate::Estimate;
pub use registry::{BuildContext, ConnectorDef, Registry};
pub use report::{RunReport, StreamReport};
pub use runtime::{RunOptions, Runtime};
pub use secret::Secret;
pub use sink::{
    Durability, Output, Sink, SinkCapabilities, StreamWriter, WriteRequest, WriteSummary,
};
pub use sink::{OutputRef, Verdict};
pub use source::{Message, MessageStream, Position, ReadRequest, Rejected, RowPositions, Source};
pub use source::{Replay, ReplayServer};
pub use types::FerryType;
