//! The `[source]` and `[destination]` sections of the `mysql` connector.
//!
//! Parsing and `validate` are pure: nothing connects until `check`, `discover`, `read`
//! or `open`. The connection fields are the same on both sides (written in by
//! [`ferry_sql::server_config!`]); both turn into one [`crate::core::ConnSettings`], whose
//! `Debug` never shows the password.

use std::path::{Path, PathBuf};

use ferry_core::{Error, Result};
use ferry_sql::settings::Fields;

use crate::core::{url_tls, ConnSettings, MYSQL};

/// Default host.
pub const DEFAULT_HOST: &str = ferry_sql::settings::DEFAULT_HOST;
/// Default port.
pub const DEFAULT_PORT: u16 = 3306;

/// The `url` field's documentation, the same on both sides.
macro_rules! url_doc {
    () => {
        "All of the above in one URL, `mysql://user:password@host:port/database` \
         (default: none; `?ssl-mode=REQUIRED` turns TLS on). A secret: write a reference \
         such as `${secret:NAME}`. Use either `url` or `host`/`port`/`database`/`user`; \
         `password` may go beside a URL without one."
    };
}

/// A config with the connection fields (the `tls` ones are MySQL's).
macro_rules! mysql_config {
    ($(#[$meta:meta])* pub struct $name:ident { database: $database:expr, $($rest:tt)* }) => {
        ferry_sql::server_config! {
            $(#[$meta])*
            #[derive(Default)]
            pub struct $name {
                port: 3306,
                database: $database,
                url: url_doc!(),
                tls {
                    /// Encrypt the connection with TLS (rustls) and verify the server's
                    /// certificate (default false).
                    #[serde(default)]
                    pub tls: Option<bool>,
                    /// PEM file of the certificate authority that signed the server's
                    /// certificate, relative to the config file (default: the public web
                    /// roots). Implies `tls = true`.
                    #[serde(default)]
                    pub tls_ca: Option<PathBuf>,
                }
                $($rest)*
            }
        }

        impl $name {
            /// A config with every connection field set to `settings`' (no `url`), the
            /// others at their defaults.
            pub fn from_settings(settings: &ConnSettings) -> Self {
                let s = settings;
                $name {
                    tls: Some(s.tls),
                    tls_ca: s.tls_ca.clone(),
                    ..Default::default()
                }
                .with_server(&s.host, s.port, &s.database, &s.user, s.password.clone())
            }
        }
    };
}

mysql_config! {
    /// Configuration of a `mysql` source (MySQL or MariaDB).
    ///
    /// ```toml
    /// [source]
    /// type = "mysql"
    /// host = "db.internal"
    /// database = "crm"
    /// user = "ferry_reader"
    /// password = "${secret:crm_password}"
    /// tables = ["customers", "orders"]
    /// queries = [{ name = "big_orders", sql = "SELECT id, total FROM orders WHERE total > 1000", primary_key = ["id"], cursor = "id" }]
    /// ```
    pub struct MysqlSourceConfig {
        database: "The database (schema) to read (required, here or in `url`).",
        /// Tables and views to offer as streams (default: every table and view of the
        /// database, except Ferry's `_ferry_*` staging tables). `tables = []` offers only
        /// the `queries`.
        #[serde(default)]
        pub tables: Option<Vec<String>>,
        /// Custom query streams, each one read-only `SELECT` (default: none).
        #[serde(default)]
        pub queries: Vec<MysqlQuery>,
    }
}

/// A stream defined by a query: `{ name = "big_orders", sql = "SELECT ..." }`.
pub type MysqlQuery = ferry_sql::read::Query;

mysql_config! {
    /// Configuration of a `mysql` destination (MySQL or MariaDB).
    ///
    /// Streams are written with `mode = "append"`, `"overwrite"`, `"upsert"` or `"history"`:
    /// every version of a keyed row (SCD type 2), in the columns `_ferry_valid_from` (the
    /// run's start; with the key, the primary key), `_ferry_valid_to`, `_ferry_is_current`
    /// and `_ferry_row_hash`; an unchanged row writes nothing, and with `deletes` a key gone
    /// from the source has its current version closed.
    ///
    /// ```toml
    /// [destination]
    /// type = "mysql"
    /// host = "db.internal"
    /// database = "warehouse"
    /// user = "ferry_writer"
    /// password = "${secret:warehouse_password}"
    /// ```
    pub struct MysqlSinkConfig {
        database: "The database (schema) to write into (required, here or in `url`); it must exist.",
    }
}

impl MysqlSourceConfig {
    /// Checks what serde cannot, without I/O, and returns the connection settings
    /// (`tls_ca` taken relative to `base_dir`).
    pub fn validate(&self, base_dir: &Path) -> Result<ConnSettings> {
        ferry_sql::read::check_streams(
            self.tables.as_deref(),
            &self.queries,
            str::to_lowercase,
            ferry_sql::read::QueryTypes::Named,
        )?;
        settings(self.server_fields(), self.tls, &self.tls_ca, base_dir)
    }
}

impl MysqlSinkConfig {
    /// Checks what serde cannot, without I/O, and returns the connection settings.
    pub fn validate(&self, base_dir: &Path) -> Result<ConnSettings> {
        settings(self.server_fields(), self.tls, &self.tls_ca, base_dir)
    }
}

fn settings(
    f: Fields<'_>,
    tls: Option<bool>,
    tls_ca: &Option<PathBuf>,
    base_dir: &Path,
) -> Result<ConnSettings> {
    let (endpoint, params) = MYSQL.endpoint(&f)?;
    let from_url = params.as_deref().map(url_tls).transpose()?.unwrap_or(false);
    if tls == Some(false) && from_url {
        return Err(Error::config(
            "`tls = false` contradicts the `ssl-mode` of `url`",
        ));
    }
    MYSQL.check(&endpoint)?;
    let mut s = ConnSettings::new(endpoint, from_url || tls.unwrap_or(false));
    if let Some(ca) = tls_ca {
        if tls == Some(false) {
            return Err(Error::config(
                "`tls_ca` needs TLS, but `tls = false`; remove one",
            ));
        }
        s.tls = true;
        s.tls_ca = Some(if ca.is_absolute() {
            ca.clone()
        } else {
            base_dir.join(ca)
        });
    }
    s.tunnel = f.tunnel(base_dir, &s.host, s.port)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(toml_text: &str) -> Result<ConnSettings> {
        let node = ferry_core::ConfigNode::from_toml(toml_text, "/cfg")?;
        node.parse::<MysqlSourceConfig>()?
            .validate(Path::new("/cfg"))
    }

    #[test]
    fn defaults_and_url() {
        let s = src("database = \"crm\"\nuser = \"root\"\n").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str(), s.tls),
            ("127.0.0.1", 3306, "root", false)
        );
        let s =
            src("url = \"mysql://u%40x:p%2Fw@db.example:3307/crm?ssl-mode=REQUIRED\"\n").unwrap();
        assert_eq!(s.host, "db.example");
        assert_eq!(s.port, 3307);
        assert_eq!(s.user, "u@x");
        assert_eq!(s.password.as_ref().unwrap().expose(), "p/w");
        assert_eq!(s.database, "crm");
        assert!(s.tls);
        let s = src("url = \"mysql://u@h/crm\"\npassword = \"pw-1234\"\n").unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose(), "pw-1234");
        let s = src("database = \"x\"\nuser = \"u\"\ntls_ca = \"ca.pem\"\n").unwrap();
        assert!(s.tls);
        assert_eq!(s.tls_ca.unwrap(), Path::new("/cfg/ca.pem"));
    }

    #[test]
    fn refusals_never_echo_the_url() {
        let bad = [
            "host = \"h\"",
            "url = \"mysql://u:sekrit-canary@h:3306/db\"\nhost = \"h\"",
            "url = \"postgres://u:sekrit-canary@h/db\"",
            "url = \"mysql://u:sekrit-canary@h:99999/db\"",
            "url = \"mysql://u:sekrit-canary@h/db?pool_max=3\"",
            "url = \"mysql://u:sekrit-canary@h/\"",
            "url = \"mysql://u:sekrit-canary@h/db\"\npassword = \"again\"",
            "database = \"d\"\nqueries = [{ name = \"q\", sql = \" ; \" }]",
            "database = \"d\"\nbogus = 1",
        ];
        ferry_sql::settings::assert_refused_quietly(&bad, "sekrit-canary", src);
    }
}
