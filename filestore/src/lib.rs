//! What Ferry's file-like stores share (a local folder, S3, and SFTP next): a store lists
//! a stream's files and opens them ([`Store`]); everything else is here, written once.
//!
//! - [`SourceOptions`]: the format options of a source (`path`/`streams`, `format`,
//!   `compression`, CSV layout, `columns`, `primary_key` …), validated without I/O;
//!   [`source_config!`] declares them, with their docs, in each connector's config;
//!   [`sink_config!`] the destination's, [`server_config!`] a server's login fields both share.
//! - [`Codec`] and [`Chunks`]: opening a file's bytes through its layers (age or OpenPGP
//!   decryption, gzip/zstd) for the codec readers, or with random access for Parquet.
//! - Archives (`drop.zip`, `drop.tar.gz`): the entries a stream takes ([`ArchiveSpec`],
//!   `inner`) and the zip-bomb limits ([`ArchiveLimits`]), read through the same codecs.
//! - [`Mark`]: the incremental listing mark (which files are new or changed since the
//!   saved state) and its state JSON.
//! - [`StoreSource`]: the `Source` itself: check, discover, count and estimate over a
//!   listing, and the reading thread.
//! - `after_read` ([`AfterRead`]): archiving or deleting a file once the state that covers
//!   it is committed ([`ferry_core::Source::committed`]); `newest_only` and `name_date`
//!   ([`NameDate`]): which files a stream reads, in what order.
//! - [`Sealing`], [`Sealed`], [`EncryptConfig`], [`csv_options`]: the pieces destinations
//!   share (age or OpenPGP encryption of what they write).
//!
//! Depends on the contract (`ferry-core`) and the formats (`ferry-formats`) only.
#![deny(missing_docs)]

mod after;
mod archive_options;
mod chunks;
mod columns;
mod encrypt;
mod estimate;
pub mod fields;
mod input;
mod ledger;
mod mark;
mod name_date;
mod naming;
mod options;
mod output;
mod parked;
mod pick;
mod read;
mod server_fields;
mod sheets;
mod sink_fields;
mod source;
mod store;
mod unpack;

pub use archive_options::{ArchiveLimits, ArchiveSpec};
pub use chunks::Chunks;
pub use encrypt::{identities, pgp_decryptor, pgp_encryptor, recipients, EncryptConfig};
pub use fields::SourceKeys;
pub use input::{need_key, Codec, Failure, Input, Key};
pub use mark::{order, Listed, Mark, StateShape};
pub use name_date::{Found, NameDate};
pub use naming::{
    appended_name, archive_folder, archived_name, delivery_name, is_tsv, pattern_root, stream_name,
    strip_layers,
};
pub use options::{
    ascii, csv_options, defaults, AfterRead, SheetConfig, SourceOptions, StreamConfig, StreamSpec,
    TextOptions, DEFAULT_ARCHIVE,
};
pub use output::{delivery, finish_delivery, Delivery, Sealed, Sealing};
pub use parked::{take_parked, with_parked};
pub use sink_fields::parquet_options;
pub use source::StoreSource;
pub use store::{Listing, Store, Stream};
pub use unpack::entry_name;

use ferry_core::{Error, Result};

/// Runs blocking file work off the async threads; `noun` names the work in the error of
/// a task that died.
pub async fn blocking<T: Send + 'static>(
    noun: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("the {noun} task failed: {e}")))?
}
