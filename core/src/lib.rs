#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod atomic;
pub mod batcher;
pub mod catalog;
pub mod channel;
pub mod config;
pub mod cursor;
pub mod decimal;
pub mod error;
pub mod estimate;
pub mod exchange;
pub mod file_column;
pub mod redact;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod sink;
pub mod source;
pub mod suggest;
pub mod typed;
pub mod types;
pub mod values;
pub mod vault;

pub use arrow_array;
pub use arrow_schema;
pub use async_trait::async_trait;

pub use catalog::{Catalog, Deletes, ReadMode, StreamInfo, WriteMode};
pub use config::{ConfigNode, ConnectorConfig};
pub use error::{Error, ErrorKind, Result, ResultExt};
pub use estimate::Estimate;
pub use registry::{BuildContext, ConnectorDef, IntoShared, Registry};
pub use secret::Secret;
pub use sink::{
    Durability, Output, Sink, SinkCapabilities, StreamWriter, WriteRequest, WriteSummary,
};
pub use sink::{OutputRef, Verdict};
pub use source::{
    Message, MessageStream, Position, ReadRequest, Rejected, RowPositions, Settled, Source,
};
pub use source::{Replay, ReplayServer};
pub use types::FerryType;
