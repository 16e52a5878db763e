//! The `[source]` and `[destination]` sections of the `postgres` connector.
//!
//! Parsing and `validate` are pure: nothing connects until `check`, `discover`, `read`
//! or `open`. The connection fields are the same on both sides (written in by
//! [`ferry_sql::server_config!`]); both turn into one [`ConnSettings`], whose `Debug`
//! never shows the password.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ferry_core::{Error, Result};
use ferry_sql::settings::Fields;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::core::{ConnSettings, POSTGRES};

/// Default host.
pub const DEFAULT_HOST: &str = ferry_sql::settings::DEFAULT_HOST;
/// Default port.
pub const DEFAULT_PORT: u16 = 5432;
/// Default schema read from and written to.
pub const DEFAULT_SCHEMA: &str = "public";
/// Default `application_name` of Ferry's sessions (visible in `pg_stat_activity`).
pub const DEFAULT_APPLICATION_NAME: &str = "ferry";

/// How the connection uses TLS (the names and meanings of libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, without checking its certificate; plain text otherwise.
    Prefer,
    /// Always use TLS, without checking the server's certificate (encrypts, does not authenticate).
    Require,
    /// Always use TLS, and check that the certificate is signed by a trusted authority
    /// (the system's, or `ca_file`) and names the host connected to.
    VerifyFull,
}

/// A config with the connection fields (the TLS ones, the session name and the
/// timeouts are PostgreSQL's).
macro_rules! postgres_config {
    ($(#[$meta:meta])* pub struct $name:ident { database: $database:expr, $($rest:tt)* }) => {
        ferry_sql::server_config! {
            $(#[$meta])*
            #[derive(Default)]
            pub struct $name {
                port: 5432,
                database: $database,
                url: "All connection fields in one URL, `postgres://user:password@host:port/database` \
                      (default: none; `?sslmode=…` and `?application_name=…` are read too). A \
                      secret: write a reference such as `${secret:NAME}`, or one inside the URL \
                      (`postgres://ferry:${secret:pg_password}@db/crm`). Use either `url` or \
                      `host`/`port`/`database`/`user`; `password` may go beside a URL without one.",
                tls {
                    /// TLS: `disable`, `prefer`, `require` or `verify-full` (default `prefer`, or
                    /// `verify-full` when `ca_file` is set). `prefer` and `require` encrypt without
                    /// checking the certificate; `verify-full` checks it against the system's trusted
                    /// authorities (or `ca_file`) and the host name.
                    #[serde(default)]
                    pub sslmode: Option<SslMode>,
                    /// PEM file of the authority that signed the server's certificate, relative to the
                    /// config file, e.g. `certs/db-ca.pem` (default: the system's trusted authorities).
                    /// Used by `verify-full`.
                    #[serde(default)]
                    pub ca_file: Option<PathBuf>,
                }
                /// Name of Ferry's sessions in `pg_stat_activity` (default `ferry`).
                #[serde(default)]
                pub application_name: Option<String>,
                /// Seconds connecting (TCP, TLS and login) may take before the attempt is given up
                /// (default 15). Connecting is retried up to 4 times.
                #[serde(default)]
                pub connect_timeout_secs: Option<f64>,
                /// Seconds Ferry waits for any one answer of the connected server (a statement's
                /// result, the next COPY data, the acknowledgement of rows sent) before it gives the
                /// connection up as hung, e.g. half-open after a network failure (default 600). Raise
                /// it for queries that run longer than that before their first row.
                #[serde(default)]
                pub read_timeout_secs: Option<f64>,
                $($rest)*
            }
        }

        impl $name {
            /// The connection fields only PostgreSQL has.
            fn extra(&self) -> Extra<'_> {
                Extra {
                    sslmode: self.sslmode,
                    ca_file: &self.ca_file,
                    application_name: &self.application_name,
                    connect_timeout_secs: self.connect_timeout_secs,
                    read_timeout_secs: self.read_timeout_secs,
                }
            }

            /// This config with every connection field set to `settings`' (no `url`).
            fn with_connection(self, settings: &ConnSettings) -> Self {
                let s = settings;
                $name {
                    sslmode: Some(s.sslmode),
                    ca_file: s.ca_file.clone(),
                    application_name: Some(s.application_name.clone()),
                    connect_timeout_secs: Some(s.connect_timeout.as_secs_f64()),
                    read_timeout_secs: Some(s.read_timeout.as_secs_f64()),
                    ..self
                }
                .with_server(&s.host, s.port, &s.database, &s.user, s.password.clone())
            }
        }
    };
}

impl SslMode {
    /// The name written in config files and URLs.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

postgres_config! {
    /// Configuration of a `postgres` source.
    ///
    /// ```toml
    /// [source]
    /// type = "postgres"
    /// host = "db.internal"
    /// database = "crm"
    /// user = "ferry_reader"
    /// password = "${secret:crm_password}"
    /// sslmode = "verify-full"
    /// schemas = ["public", "sales"]
    /// queries = [{ name = "big_orders", sql = "SELECT id, total FROM orders WHERE total > 1000", primary_key = ["id"], cursor = "id" }]
    /// ```
    pub struct PostgresSourceConfig {
        database: "The database to read (required, here or in `url`).",
    /// Schemas whose tables and views are offered (default `["public"]`). Streams of the
    /// first schema are named by table (`orders`), those of the others `schema.table`.
    #[serde(default)]
    pub schemas: Option<Vec<String>>,
    /// Streams to offer, by name as `ferry discover` lists them (default: every table,
    /// view, materialized view and foreign table of `schemas`, except Ferry's `_ferry_*`
    /// staging tables). `tables = []` offers only the `queries`.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Custom query streams, each one read-only `SELECT` (default: none).
    #[serde(default)]
    pub queries: Vec<PostgresQuery>,
    /// Streams whose full reads are split by key ranges and read over several
    /// connections at once (default: none, every read is one `COPY`), e.g.
    /// `parallel = [{ stream = "orders", partitions = 4 }]`.
    #[serde(default)]
    pub parallel: Vec<ParallelRead>,
    /// Count every full read of a table exactly (`SELECT count(*)` in the read's own
    /// snapshot), so the run report can prove the read complete (`--require-complete`)
    /// for large tables too (default false: tables up to 10 MB are counted exactly,
    /// larger ones estimated from the planner's statistics).
    #[serde(default)]
    pub exact_count: bool,
    /// Change data capture: streams read incrementally (`incremental = true`, written with
    /// `mode = "upsert"` and `deletes = "hard"` or `"soft"`) read the table's inserts,
    /// updates and deletes from a logical replication slot (`pgoutput`), in commit order,
    /// instead of a cursor column; `mode = "history"` is refused with it (keep a history
    /// with `incremental = false`). Needs `wal_level = logical` and a user with the
    /// REPLICATION attribute (or a superuser), e.g. `{ slot_prefix = "ferry_crm" }`
    /// (default: none).
    #[serde(default)]
    pub cdc: Option<CdcConfig>,
    }
}

/// `cdc = { publication = "…", slot_prefix = "…" }`: where a stream's changes are read.
///
/// The first run creates the stream's slot (`<slot_prefix>_<stream>`) and the publication
/// when absent, then reads the whole table; later runs read the changes since. The slot's
/// position moves only once the destination holds the rows. A slot keeps the server's
/// WAL until it is read: `ferry plan` shows each one's lag, and a slot whose stream was
/// removed, with the SQL that drops it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdcConfig {
    /// The publication whose changes are read (default: the `slot_prefix`). Ferry creates
    /// it when absent and adds the stream's table when it is not in it.
    #[serde(default)]
    pub publication: Option<String>,
    /// Start of Ferry's slot names, one slot per stream (default `ferry`): lower-case
    /// letters, digits and `_`. Give each pipeline reading one database its own.
    #[serde(default)]
    pub slot_prefix: Option<String>,
}

/// The default [`CdcConfig::slot_prefix`].
pub const DEFAULT_SLOT_PREFIX: &str = "ferry";

impl CdcConfig {
    /// The start of slot names.
    pub fn prefix(&self) -> &str {
        self.slot_prefix.as_deref().unwrap_or(DEFAULT_SLOT_PREFIX)
    }

    /// The publication.
    pub fn publication(&self) -> &str {
        self.publication.as_deref().unwrap_or(self.prefix())
    }

    fn check(&self) -> Result<()> {
        let p = self.prefix();
        let fits = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if p.is_empty() || p.len() > 40 || !p.chars().all(fits) {
            return Err(Error::config(format!(
                "cdc: slot_prefix `{p}` must be 1 to 40 lower-case letters, digits or `_` (slot names are)"
            )));
        }
        check_ident(self.publication(), "cdc: publication")
    }
}

/// Most connections one parallel read opens.
pub const MAX_PARTITIONS: u16 = 64;

/// A stream read in key ranges: `{ stream = "orders", partitions = 4, column = "id" }`.
///
/// Only full refreshes are split; incremental reads of the stream stay one ordered
/// `COPY` (their checkpoints need the cursor's order).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelRead {
    /// The stream, as `ferry discover` names it (a table, view or query).
    pub stream: String,
    /// How many key ranges are read at once, each over its own connection (1–64;
    /// 1 reads serially).
    pub partitions: u16,
    /// The integer column (`smallint`, `integer`, `bigint`) the ranges split (default:
    /// the table's primary key when it is one integer column; without one the read
    /// is serial, with a warning).
    #[serde(default)]
    pub column: Option<String>,
}

/// A stream defined by a query: `{ name = "big_orders", sql = "SELECT ..." }`. Its
/// column types are the result's (cast in SQL to choose one): it takes no `columns`.
pub type PostgresQuery = ferry_sql::read::Query;

postgres_config! {
    /// Configuration of a `postgres` destination. Streams are written with `mode =
    /// "append"`, `"overwrite"`, `"upsert"` or `"history"` (every version of a keyed row,
    /// SCD type 2: `_ferry_valid_from`, `_ferry_valid_to`, `_ferry_is_current`), and
    /// `deletes = "hard" | "soft"` (soft: marked in `_ferry_deleted_at`).
    ///
    /// ```toml
    /// [destination]
    /// type = "postgres"
    /// host = "warehouse.internal"
    /// database = "analytics"
    /// user = "ferry_writer"
    /// password = "${secret:warehouse_password}"
    /// sslmode = "verify-full"
    /// schema = "acme"
    /// ```
    pub struct PostgresSinkConfig {
        database: "The database to write into (required, here or in `url`); it must exist.",
        /// Schema the tables are written into (default `public`); created if missing.
        #[serde(default)]
        pub schema: Option<String>,
    }
}

/// The connection fields only PostgreSQL has, borrowed.
struct Extra<'a> {
    sslmode: Option<SslMode>,
    ca_file: &'a Option<PathBuf>,
    application_name: &'a Option<String>,
    connect_timeout_secs: Option<f64>,
    read_timeout_secs: Option<f64>,
}

impl PostgresSourceConfig {
    /// A source config for `settings`, offering every table and view of `schemas`.
    pub fn from_settings(settings: &ConnSettings, schemas: &[&str]) -> Self {
        PostgresSourceConfig {
            schemas: Some(schemas.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
        .with_connection(settings)
    }

    /// The schemas to read (`schemas`, or `["public"]`).
    pub fn schema_list(&self) -> Vec<String> {
        self.schemas
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_SCHEMA.to_string()])
    }

    /// Checks what serde cannot, without I/O, and returns the connection settings
    /// (`ca_file` taken relative to `base_dir`).
    pub fn validate(&self, base_dir: &Path) -> Result<ConnSettings> {
        let schemas = self.schema_list();
        if schemas.is_empty() {
            return Err(Error::config(
                "`schemas` is empty: name at least one schema (default [\"public\"])",
            ));
        }
        let mut seen = HashSet::new();
        for s in &schemas {
            if s.trim().is_empty() {
                return Err(Error::config("`schemas` lists an empty name"));
            }
            if !seen.insert(s) {
                return Err(Error::config(format!("`schemas` lists `{s}` twice")));
            }
            check_ident(s, "`schemas`")?;
        }
        ferry_sql::read::check_streams(
            self.tables.as_deref(),
            &self.queries,
            str::to_string,
            ferry_sql::read::QueryTypes::Refused(
                "cast in SQL to choose one (e.g. `total::numeric(12,2)`)",
            ),
        )?;
        for q in &self.queries {
            if q.sql.contains('\0') {
                return Err(Error::config(format!(
                    "query `{}` contains a NUL character",
                    q.name
                )));
            }
            if q.primary_key.iter().any(|k| k.trim().is_empty()) {
                return Err(Error::config(format!(
                    "query `{}` lists an empty `primary_key` column",
                    q.name
                )));
            }
            if q.cursor.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(Error::config(format!(
                    "query `{}` has an empty `cursor`",
                    q.name
                )));
            }
        }
        if let Some(cdc) = &self.cdc {
            cdc.check()?;
        }
        let mut parallel = HashSet::new();
        for p in &self.parallel {
            if p.stream.trim().is_empty() {
                return Err(Error::config(
                    "an entry of `parallel` has an empty `stream`",
                ));
            }
            if !parallel.insert(p.stream.as_str()) {
                return Err(Error::config(format!(
                    "`parallel` lists stream `{}` twice",
                    p.stream
                )));
            }
            if p.partitions == 0 || p.partitions > MAX_PARTITIONS {
                return Err(Error::config(format!(
                    "`parallel`: stream `{}` has `partitions = {}`; use 1 to {MAX_PARTITIONS} \
                     (each is one connection)",
                    p.stream, p.partitions
                )));
            }
            if p.column.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(Error::config(format!(
                    "`parallel`: stream `{}` has an empty `column`",
                    p.stream
                )));
            }
        }
        settings(self.server_fields(), self.extra(), base_dir)
    }
}

impl PostgresSinkConfig {
    /// A destination config for `settings`, writing into `schema`.
    pub fn from_settings(settings: &ConnSettings, schema: &str) -> Self {
        PostgresSinkConfig {
            schema: Some(schema.to_string()),
            ..Default::default()
        }
        .with_connection(settings)
    }

    /// The schema written into (`schema`, or `public`).
    pub fn schema_name(&self) -> String {
        self.schema
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string())
    }

    /// Checks what serde cannot, without I/O, and returns the connection settings.
    pub fn validate(&self, base_dir: &Path) -> Result<ConnSettings> {
        let schema = self.schema_name();
        if schema.trim().is_empty() {
            return Err(Error::config("`schema` is empty (default \"public\")"));
        }
        check_ident(&schema, "`schema`")?;
        settings(self.server_fields(), self.extra(), base_dir)
    }
}

/// PostgreSQL names cannot hold NUL and are cut at 63 bytes: refuse rather than
/// silently use another name.
fn check_ident(name: &str, what: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(Error::config(format!(
            "{what}: `{name}` contains a NUL character"
        )));
    }
    if name.len() > crate::core::MAX_IDENT {
        return Err(Error::config(format!(
            "{what}: `{name}` is longer than PostgreSQL's {} bytes",
            crate::core::MAX_IDENT
        )));
    }
    Ok(())
}

fn settings(f: Fields<'_>, x: Extra<'_>, base_dir: &Path) -> Result<ConnSettings> {
    let (endpoint, params) = POSTGRES.endpoint(&f)?;
    POSTGRES.check(&endpoint)?;
    let mut s = ConnSettings::new(endpoint);
    s.tunnel = f.tunnel(base_dir, &s.host, s.port)?;
    let mut explicit_mode = x.sslmode;
    if let Some(params) = params {
        let mut from_url = UrlExtras::default();
        for (k, v) in &params {
            from_url.apply(k, v, &mut s)?;
        }
        if let (Some(a), Some(b)) = (from_url.sslmode, x.sslmode) {
            if a != b {
                return Err(Error::config(format!(
                    "`sslmode = \"{}\"` contradicts the `sslmode={}` of `url`; keep one",
                    b.name(),
                    a.name()
                )));
            }
        }
        if from_url.application_name && x.application_name.is_some() {
            return Err(Error::config(
                "`application_name` is given twice, in `url` and as a field; keep one",
            ));
        }
        if from_url.ca_file.is_some() && x.ca_file.is_some() {
            return Err(Error::config(
                "the CA file is given twice, as `sslrootcert` in `url` and as `ca_file`; keep one",
            ));
        }
        explicit_mode = from_url.sslmode.or(x.sslmode);
        s.ca_file = from_url.ca_file;
    }
    s.sslmode = explicit_mode.unwrap_or(SslMode::Prefer);
    if let Some(t) = x.connect_timeout_secs {
        s.connect_timeout = seconds(t, "connect_timeout_secs")?;
    }
    if let Some(t) = x.read_timeout_secs {
        s.read_timeout = seconds(t, "read_timeout_secs")?;
    }
    if let Some(name) = x.application_name {
        s.application_name = name.clone();
    }
    if let Some(ca) = x.ca_file.clone().or(s.ca_file.take()) {
        if explicit_mode.is_some_and(|m| m != SslMode::VerifyFull) {
            return Err(Error::config(format!(
                "`ca_file` is only used with `sslmode = \"verify-full\"`, but sslmode is `{}`; \
                 remove one",
                s.sslmode.name()
            )));
        }
        s.sslmode = SslMode::VerifyFull;
        s.ca_file = Some(if ca.is_absolute() {
            ca
        } else {
            base_dir.join(ca)
        });
    }
    for (what, v) in [
        ("host", &s.host),
        ("user", &s.user),
        ("database", &s.database),
        ("application_name", &s.application_name),
    ] {
        if v.contains('\0') {
            return Err(Error::config(format!("`{what}` contains a NUL character")));
        }
    }
    Ok(s)
}

/// A timeout field as a duration: more than 0 and at most a day.
fn seconds(value: f64, field: &str) -> Result<std::time::Duration> {
    if !(value > 0.0 && value <= 86_400.0) {
        return Err(Error::config(format!(
            "`{field}` is {value}; give seconds above 0 and at most 86400"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

/// What a URL said besides host, port, user, password and database.
#[derive(Debug, Default)]
pub(crate) struct UrlExtras {
    pub sslmode: Option<SslMode>,
    pub application_name: bool,
    pub ca_file: Option<PathBuf>,
}

impl UrlExtras {
    /// Reads one `?key=value` of a connection URL into `s`. Errors never repeat a value.
    pub(crate) fn apply(&mut self, key: &str, value: &str, s: &mut ConnSettings) -> Result<()> {
        match key {
            "sslmode" => {
                let mode = SslMode::parse(value).ok_or_else(|| {
                    Error::config(
                        "`url` has an `sslmode` Ferry does not know; use disable, prefer, require or verify-full",
                    )
                })?;
                self.sslmode = Some(mode);
            }
            "application_name" => {
                s.application_name = value.to_string();
                self.application_name = true;
            }
            "sslrootcert" => self.ca_file = Some(PathBuf::from(value)),
            other => {
                return Err(Error::config(format!(
                    "`url` has parameter `{other}`, which Ferry does not read; only `sslmode`, \
                     `sslrootcert` and `application_name` are read, other settings are fields of \
                     the connector (`ferry spec postgres`)"
                )))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ErrorKind;

    fn src(toml_text: &str) -> Result<ConnSettings> {
        let node = ferry_core::ConfigNode::from_toml(toml_text, "/cfg")?;
        node.parse::<PostgresSourceConfig>()?
            .validate(Path::new("/cfg"))
    }

    #[test]
    fn defaults_and_url() {
        let s = src("database = \"crm\"\nuser = \"postgres\"\n").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str(), s.sslmode),
            ("127.0.0.1", 5432, "postgres", SslMode::Prefer)
        );
        assert_eq!(s.application_name, "ferry");
        assert_eq!(s.connect_timeout, crate::core::DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.read_timeout.as_secs(), 600);
        let s = src("database = \"crm\"\nuser = \"u\"\nconnect_timeout_secs = 2.5\nread_timeout_secs = 30\n")
            .unwrap();
        assert_eq!(s.connect_timeout.as_millis(), 2500);
        assert_eq!(s.read_timeout.as_secs(), 30);
        let s = src(
            "url = \"postgresql://u%40x:p%2Fw@db.example:5433/crm?sslmode=require&application_name=nightly\"\n",
        )
        .unwrap();
        assert_eq!(s.host, "db.example");
        assert_eq!(s.port, 5433);
        assert_eq!(s.user, "u@x");
        assert_eq!(s.password.as_ref().unwrap().expose(), "p/w");
        assert_eq!(s.database, "crm");
        assert_eq!(s.sslmode, SslMode::Require);
        assert_eq!(s.application_name, "nightly");
        let s = src("url = \"postgres://u@[::1]/crm\"\npassword = \"pw-1234\"\n").unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.location(), "postgres://[::1]:5432/crm");
        assert_eq!(s.password.as_ref().unwrap().expose(), "pw-1234");
        let s = src("database = \"x\"\nuser = \"u\"\nca_file = \"ca.pem\"\n").unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.ca_file.unwrap(), Path::new("/cfg/ca.pem"));
        let s = src("database = \"x\"\nuser = \"u\"\nsslmode = \"verify-full\"\n").unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert!(s.ca_file.is_none());
    }

    #[test]
    fn refusals_never_echo_the_url() {
        let bad = [
            "host = \"h\"",
            "url = \"postgres://u:sekrit-canary@h:5432/db\"\nhost = \"h\"",
            "url = \"mysql://u:sekrit-canary@h/db\"",
            "url = \"postgres://u:sekrit-canary@h:99999/db\"",
            "url = \"postgres://u:sekrit-canary@h/db?pool_max=3\"",
            "url = \"postgres://u:sekrit-canary@h/db?sslmode=sekrit-canary\"",
            "url = \"postgres://u:sekrit-canary@h/\"",
            "url = \"postgres://u:sekrit-canary@h/db\"\npassword = \"again\"",
            "url = \"postgres://u:sekrit-canary@h/db?sslmode=disable\"\nsslmode = \"require\"",
            "url = \"sekrit-canary\"",
            "database = \"d\"\nuser = \"u\"\nsslmode = \"require\"\nca_file = \"x.pem\"",
            "database = \"d\"\nuser = \"u\"\nsslmode = \"verify-ca\"",
            "database = \"d\"\nuser = \"u\"\nqueries = [{ name = \"q\", sql = \" ; \" }]",
            "database = \"d\"\nuser = \"u\"\nschemas = []",
            "database = \"d\"\nuser = \"u\"\nread_timeout_secs = 0",
            "database = \"d\"\nuser = \"u\"\nconnect_timeout_secs = -1",
            "database = \"d\"\nbogus = 1",
            "database = \"d\"\nuser = \"u\"\nparallel = [{ stream = \"t\", partitions = 0 }]",
            "database = \"d\"\nuser = \"u\"\nparallel = [{ stream = \"t\", partitions = 65 }]",
            "database = \"d\"\nuser = \"u\"\nparallel = [{ stream = \"t\", partitions = 2 }, { stream = \"t\", partitions = 3 }]",
            "database = \"d\"\nuser = \"u\"\nparallel = [{ stream = \"t\", partitions = 2, column = \"\" }]",
        ];
        ferry_sql::settings::assert_refused_quietly(&bad, "sekrit-canary", src);
    }

    #[test]
    fn a_query_takes_its_types_from_the_result() {
        let e = src("database = \"d\"\nuser = \"u\"\nqueries = [{ name = \"q\", sql = \"SELECT 1 AS n\", columns = { n = \"string\" } }]")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(
            e.message()
                .contains("query `q`: `columns` is not taken here"),
            "{e}"
        );
        src("database = \"d\"\nuser = \"u\"\nqueries = [{ name = \"q\", sql = \"SELECT 1\" }]")
            .unwrap();
    }

    #[test]
    fn debug_hides_the_password() {
        let s = src("url = \"postgres://u:sekrit-canary@h/db\"\n").unwrap();
        assert!(!format!("{s:?}").contains("sekrit-canary"));
        let node = ferry_core::ConfigNode::from_toml(
            "url = \"postgres://u:sekrit-canary@h/db\"\n",
            "/cfg",
        )
        .unwrap();
        let cfg: PostgresSinkConfig = node.parse().unwrap();
        assert!(!format!("{cfg:?}").contains("sekrit-canary"));
    }
}
