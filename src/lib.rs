//! Ferry: move client data between systems, whole, validated and protected.
//!
//! This crate is the `ferry` command-line tool and the one place that knows which
//! connectors exist. Everything else lives in `ferry-core` (traits, runtime) and in
//! one crate per connector under `connectors/`.

// the CLI's doc comments are its `--help` text, where `<client>` is a placeholder, not HTML
#[allow(rustdoc::invalid_html_tags)]
pub mod cli;

use ferry_core::Registry;

/// Every connector this build of Ferry knows. Adding a connector is one line here.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    ferry_connector_airbyte::register(&mut r);
    ferry_connector_file::register(&mut r);
    ferry_connector_generate::register(&mut r);
    ferry_connector_http::register(&mut r);
    ferry_connector_mysql::register(&mut r);
    ferry_connector_postgres::register(&mut r);
    ferry_connector_s3::register(&mut r);
    ferry_connector_sftp::register(&mut r);
    ferry_connector_singer::register(&mut r);
    ferry_connector_sqlite::register(&mut r);
    r
}
