//! What the tests with real packages share: the venv cache and the local PostgreSQL.
//! The Airbyte tests include this file too.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Points the bridge at the shared venv cache (unless the caller chose one).
pub fn shared_venvs() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("FERRY_VENV_DIR").is_none() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ferry-test-venvs");
            std::env::set_var("FERRY_VENV_DIR", dir);
        }
    });
    PathBuf::from(std::env::var_os("FERRY_VENV_DIR").unwrap())
}

/// A client of the local PostgreSQL (`test` database), which must be running.
pub async fn pg() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| {
        panic!("PostgreSQL is needed on 127.0.0.1:5432 (user postgres, db test); start it (`.ci/run` does): {e}")
    });
    tokio::spawn(conn);
    client
}

/// A fresh schema in the local PostgreSQL, its name starting with `prefix`.
pub async fn fresh_schema(client: &tokio_postgres::Client, prefix: &str) -> String {
    let schema = ferry_testkit::fresh_name(prefix);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    schema
}

/// Drops `schema` and everything in it.
pub async fn drop_schema(client: &tokio_postgres::Client, schema: &str) {
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
