//! How Ferry's rows become bytes and back, for every connector that reads or writes files:
//! CSV, JSON Lines, Parquet and Excel workbooks ([`codec`]), gzip/zstd, age and OpenPGP
//! encryption and archives ([`archive`]: zip, tar.gz) around them, type inference, estimates
//! from file sizes, and the row and file digests receipts are made of.
//! Depends on the contract (`ferry-core`) only.
#![deny(missing_docs)]

pub mod age;
pub mod archive;
pub mod codec;
pub mod digest;
pub mod estimate;
pub mod fill;
mod keyfile;
pub mod pgp;
