//! What the CLI tests share: running the `ferry` binary and reading what it printed
//! ([`cli`]), pieces of configs ([`config`]), client folders ([`folder`]), what a run
//! leaves behind ([`read`]), SQLite destinations ([`sqlite`]), the test databases
//! ([`db`]), a connector's config section ([`connector`]), a loopback HTTP server
//! ([`http`]), OpenPGP deliveries opened as a client would ([`pgp`]), the `items`
//! CSV source of the deletes and history tests ([`items`]) and the versions a history
//! leaves ([`history`]).
//!
//! Each test file takes it with `mod support;`; the in-process S3 server stays apart
//! (`#[path = "support/s3.rs"] mod s3;`), for the tests that need it, and so do the
//! headless browser (`support/browser.rs`) and the screenshot reader (`support/png.rs`).

// every test binary uses only a part of this
#![allow(dead_code)]

pub mod cli;
pub mod config;
pub mod connector;
pub mod db;
pub mod folder;
pub mod history;
pub mod http;
pub mod items;
pub mod pgp;
pub mod read;
pub mod sqlite;
