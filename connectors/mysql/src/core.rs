//! What the source and sink share: connection settings and connecting, the one table
//! that maps MySQL's errors to Ferry's kinds, identifier quoting, and reading table
//! definitions from `information_schema`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::{Error, ErrorKind, Result};
use ferry_sql::settings::{Endpoint, Product, Tunnel};
use ferry_sql::write::naming::FERRY_PREFIX;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts, Value};

use crate::types::{self, ColumnInfo};

/// How long connecting (TCP, TLS and login) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how to connect: the server, database and login (its [`Endpoint`], whose
/// fields read as the settings' own), and TLS. `Debug` shows no password (it is a
/// [`Secret`](ferry_core::Secret)).
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// Host, port, database (schema), user and password.
    pub endpoint: Endpoint,
    /// Whether to use TLS.
    pub tls: bool,
    /// CA certificate file for TLS.
    pub tls_ca: Option<PathBuf>,
    /// The SSH tunnel every connection goes through (`tunnel = { … }`), if any.
    pub tunnel: Option<Arc<Tunnel>>,
}

ferry_sql::endpoint_fields!(ConnSettings);

/// How MySQL's settings are read.
pub(crate) const MYSQL: Product = Product {
    name: "MySQL",
    schemes: &["mysql", "mariadb"],
    default_port: crate::config::DEFAULT_PORT,
};

/// Whether a URL's `?ssl-mode=…` (or `tls`, `ssl`) turns TLS on.
pub(crate) fn url_tls(params: &[(String, String)]) -> Result<bool> {
    let mut tls = false;
    for (k, v) in params {
        match (
            k.to_ascii_lowercase().as_str(),
            v.to_ascii_uppercase().as_str(),
        ) {
            ("ssl-mode" | "sslmode", "DISABLED" | "PREFERRED") => tls = false,
            ("ssl-mode" | "sslmode", "REQUIRED" | "VERIFY_CA" | "VERIFY_IDENTITY") => tls = true,
            ("tls" | "ssl", "TRUE" | "1") => tls = true,
            ("tls" | "ssl", "FALSE" | "0") => tls = false,
            (k, _) => {
                return Err(Error::config(format!(
                    "`url` has parameter `{k}` with a value Ferry does not know; \
                     only `ssl-mode` (DISABLED, REQUIRED, VERIFY_IDENTITY) is read, \
                     other settings are fields of the connector (`ferry spec mysql`)"
                )))
            }
        }
    }
    Ok(tls)
}

impl ConnSettings {
    /// Settings for `endpoint`, with TLS or not.
    pub(crate) fn new(endpoint: Endpoint, tls: bool) -> ConnSettings {
        ConnSettings {
            endpoint,
            tls,
            tls_ca: None,
            tunnel: None,
        }
    }

    /// Parses `mysql://user:password@host:port/database[?ssl-mode=…]`. Errors never
    /// repeat the URL (it may hold the password).
    pub fn from_url(url: &str) -> Result<ConnSettings> {
        let (endpoint, params) = MYSQL.parse_url(url)?;
        Ok(ConnSettings::new(endpoint, url_tls(&params)?))
    }

    /// `mysql://host:port/database`: where data went, without credentials.
    pub fn location(&self) -> String {
        MYSQL.location(&self.host, self.port, &self.database)
    }

    /// The driver's settings; `route` is the local end of the tunnel, when there is one
    /// (TLS still checks the certificate against `host`).
    fn opts(&self, with_database: bool, route: Option<SocketAddr>) -> mysql_async::Opts {
        let (host, port) = match route {
            Some(a) => (a.ip().to_string(), a.port()),
            None => (self.host.clone(), self.port),
        };
        let mut b = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(self.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose().to_string()))
            .db_name(with_database.then(|| self.database.clone()))
            // connect where the config says: a loopback host must not silently switch to
            // the server's Unix socket (where other authentication rules apply)
            .prefer_socket(false)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .stmt_cache_size(16);
        if self.tls {
            let mut ssl = SslOpts::default();
            if let Some(ca) = &self.tls_ca {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            if route.is_some() {
                ssl = ssl.with_danger_tls_hostname_override(Some(self.host.clone()));
            }
            b = b.ssl_opts(Some(ssl));
        }
        b.into()
    }
}

/// Connects (with a timeout), then sets the session up: UTF-8 (`utf8mb4`) and UTC, so
/// `TIMESTAMP` values are read and written in UTC.
pub(crate) async fn connect(s: &ConnSettings) -> Result<Conn> {
    connect_to(s, true).await
}

/// Like [`connect`]; `with_database = false` connects without choosing a database.
pub(crate) async fn connect_to(s: &ConnSettings, with_database: bool) -> Result<Conn> {
    if s.tls {
        // rustls needs one process-wide crypto provider; pin ring, which this crate
        // builds with (another crate may have enabled a second one)
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let opts = s.opts(
        with_database,
        ferry_sql::settings::route(s.tunnel.as_ref()).await?,
    );
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(map_err(e, s)),
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Unreachable,
                format!(
                    "MySQL at {}:{} did not answer within {} s",
                    s.host,
                    s.port,
                    CONNECT_TIMEOUT.as_secs()
                ),
            )
            .with("server", s.location()))
        }
    };
    conn.query_drop("SET NAMES utf8mb4")
        .await
        .map_err(|e| map_err(e, s))?;
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .map_err(|e| map_err(e, s))?;
    Ok(conn)
}

/// Connects and asks `SELECT 1`: the check of a source and a sink alike.
pub(crate) async fn ping(s: &ConnSettings) -> Result<()> {
    let mut conn = connect(s).await?;
    let one: Option<i64> = conn.query_first("SELECT 1").await.my(s)?;
    if one != Some(1) {
        return Err(Error::internal("`SELECT 1` did not answer 1"));
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// Ends the session of connection `id` (a read stopped early: dropping a connection
/// with an unfinished result would read the rest of it first). Best effort.
pub(crate) async fn kill(s: &ConnSettings, id: u32) {
    let kill = async {
        let mut conn = connect_to(s, false).await.ok()?;
        let _ = conn.query_drop(format!("KILL {id}")).await;
        let _ = conn.disconnect().await;
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), kill).await;
}

/// Maps a MySQL error to a Ferry error of the right kind, naming the server (never the
/// password). The one place that decides kinds: retries and hints depend on it.
pub(crate) fn map_err(e: mysql_async::Error, s: &ConnSettings) -> Error {
    use mysql_async::{DriverError as D, Error as E, IoError};
    let (kind, message) = match &e {
        E::Server(se) => {
            let kind = match se.code {
                // access denied for user (bad user or password)
                1045 | 1698 | 1251 => ErrorKind::AuthFailed,
                // unknown database, table, column in an introspection, user
                1049 | 1146 | 1051 => ErrorKind::NotFound,
                // access denied to a database, a command, a column; read-only server
                1044 | 1142 | 1143 | 1227 | 1370 | 1290 | 1792 | 1836 => {
                    ErrorKind::PermissionDenied
                }
                // too many connections, lock wait timeout, deadlock, server shutting down
                1040 | 1203 | 1205 | 1213 | 1053 | 1077 | 1927 | 1158..=1161 => {
                    ErrorKind::Temporary
                }
                // query interrupted
                1317 => ErrorKind::Cancelled,
                // unknown column, wrong column count, column name clash
                1054 | 1136 | 1060 => ErrorKind::SchemaMismatch,
                // duplicate key, NULL in NOT NULL, value out of range / too long /
                // incorrect, bad JSON, CHECK failed, packet too large, bad date
                1062 | 1048 | 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 1441 | 3140
                | 3819 | 4025 | 1153 | 1301 | 1690 | 1918 => ErrorKind::DataInvalid,
                // syntax error, unsupported statement (a configured query)
                1064 | 1149 | 1295 | 1235 => ErrorKind::ConfigInvalid,
                _ => ErrorKind::Internal,
            };
            let msg = match se.code {
                1045 | 1698 => format!(
                    "MySQL refused the login of user `{}`: {} (check `user` and the secret `password` refers to)",
                    s.user, se.message
                ),
                1049 => format!(
                    "database `{}` does not exist on the server ({}); create it or fix `database`",
                    s.database, se.message
                ),
                1153 => format!(
                    "MySQL: {} (a row is larger than the server's max_allowed_packet; raise it)",
                    se.message
                ),
                _ => format!("MySQL error {}: {}", se.code, se.message),
            };
            (kind, msg)
        }
        // rustls reports a certificate it does not trust as invalid data
        E::Io(IoError::Io(io)) if s.tls && io.kind() == std::io::ErrorKind::InvalidData => (
            ErrorKind::Unreachable,
            format!(
                "TLS with MySQL at {}:{} failed: {io} (check `tls_ca`: it must name the PEM of the CA that signed the server's certificate)",
                s.host, s.port
            ),
        ),
        // refused, reset, timed out, no route, name not resolved: all "cannot reach"
        E::Io(IoError::Io(io)) => (
            ErrorKind::Unreachable,
            format!("cannot reach MySQL at {}:{}: {io}", s.host, s.port),
        ),
        E::Io(io) => (
            ErrorKind::Unreachable,
            format!(
                "TLS with MySQL at {}:{} failed: {io} (check `tls`, `tls_ca` and the server's certificate)",
                s.host, s.port
            ),
        ),
        E::Driver(D::NoClientSslFlagFromServer) => (
            ErrorKind::Unreachable,
            format!(
                "`tls` is on, but MySQL at {}:{} does not offer TLS; enable TLS on the server, or set `tls = false`",
                s.host, s.port
            ),
        ),
        E::Driver(D::ConnectionClosed) => (
            ErrorKind::Temporary,
            "the connection to MySQL was closed".to_string(),
        ),
        E::Driver(D::PacketTooLarge) => (
            ErrorKind::DataInvalid,
            "a statement is larger than the server's max_allowed_packet; raise it".to_string(),
        ),
        E::Driver(D::UnknownAuthPlugin { .. }) | E::Driver(D::MysqlOldPasswordDisabled) => (
            ErrorKind::AuthFailed,
            format!("MySQL: {e}"),
        ),
        E::Driver(D::FromValue { .. }) | E::Driver(D::FromRow { .. }) => {
            (ErrorKind::DataInvalid, format!("MySQL: {e}"))
        }
        E::Url(_) => (ErrorKind::ConfigInvalid, "the MySQL connection settings are not valid".to_string()),
        _ => (ErrorKind::Internal, format!("MySQL: {e}")),
    };
    let message = match &e {
        E::Server(_) => message,
        _ => ferry_sql::settings::with_tunnel_loss(s.tunnel.as_ref(), message),
    };
    let err = Error::new(kind, message).with("server", s.location());
    // the driver's own error goes along as the source, except for URL errors (they may
    // quote a URL parameter)
    match e {
        E::Url(_) => err,
        e => err.set_source(e),
    }
}

/// `.my(&settings)?` on a driver result: maps the error with [`map_err`].
pub(crate) trait MyResultExt<T> {
    fn my(self, s: &ConnSettings) -> Result<T>;
}

impl<T> MyResultExt<T> for mysql_async::Result<T> {
    fn my(self, s: &ConnSettings) -> Result<T> {
        self.map_err(|e| map_err(e, s))
    }
}

/// `name` as a quoted identifier: `` `a``b` ``. Safe for any text.
pub(crate) fn quote(name: &str) -> String {
    ferry_sql::quote::ident(name, '`')
}

/// The text of a value read from `information_schema` (`""` for NULL).
pub(crate) fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::UInt(u)) => u.to_string(),
        Some(Value::NULL) | None => String::new(),
        Some(other) => format!("{other:?}"),
    }
}

fn number(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Int(i)) => u64::try_from(*i).ok(),
        Some(Value::UInt(u)) => Some(*u),
        Some(Value::Bytes(b)) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `name` is a table Ferry made for itself.
pub(crate) fn is_ferry_table(name: &str) -> bool {
    name.starts_with(FERRY_PREFIX)
}

/// The server's kind, for the few places MySQL and MariaDB differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Server {
    pub mariadb: bool,
    pub version: (u16, u16, u16),
}

impl Server {
    pub async fn of(conn: &mut Conn, s: &ConnSettings) -> Result<Server> {
        let version: Option<String> = conn.query_first("SELECT VERSION()").await.my(s)?;
        Ok(Server {
            mariadb: version
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("mariadb"),
            version: conn.server_version(),
        })
    }
}

/// Table or view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Table,
    View,
}

/// A table or view: its name, kind, columns in order, primary key and, for tables,
/// the optimizer's row estimate.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub name: String,
    pub kind: Kind,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub rows_estimate: Option<u64>,
}

/// Tables and views of the database (`name`, kind), sorted, without Ferry's own tables.
pub(crate) async fn list_relations(
    conn: &mut Conn,
    s: &ConnSettings,
) -> Result<Vec<(String, Kind)>> {
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (s.database.as_str(),),
        )
        .await
        .my(s)?;
    Ok(rows
        .iter()
        .map(|r| {
            let name = text(r.as_ref(0));
            let kind = if text(r.as_ref(1)).contains("VIEW") {
                Kind::View
            } else {
                Kind::Table
            };
            (name, kind)
        })
        .filter(|(n, _)| !is_ferry_table(n))
        .collect())
}

/// Every table whose name starts with `prefix` (Ferry's own included).
pub(crate) async fn tables_with_prefix(
    conn: &mut Conn,
    s: &ConnSettings,
    prefix: &str,
) -> Result<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND LEFT(TABLE_NAME, CHAR_LENGTH(?)) = ?",
            (s.database.as_str(), prefix, prefix),
        )
        .await
        .my(s)?;
    Ok(rows.iter().map(|r| text(r.as_ref(0))).collect())
}

/// The relations named in `names` (exact names, or any case when exactly one matches),
/// described fully; missing names are left out.
pub(crate) async fn relations(
    conn: &mut Conn,
    s: &ConnSettings,
    server: Server,
    names: Option<&[String]>,
) -> Result<Vec<Relation>> {
    let all = {
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (s.database.as_str(),),
            )
            .await
            .my(s)?;
        rows.iter()
            .map(|r| {
                let kind = if text(r.as_ref(1)).contains("VIEW") {
                    Kind::View
                } else {
                    Kind::Table
                };
                (text(r.as_ref(0)), kind, number(r.as_ref(2)))
            })
            .collect::<Vec<_>>()
    };
    let wanted: Vec<&(String, Kind, Option<u64>)> = match names {
        None => all.iter().filter(|(n, _, _)| !is_ferry_table(n)).collect(),
        Some(list) => list
            .iter()
            .filter_map(|want| {
                all.iter().find(|(n, _, _)| n == want).or_else(|| {
                    let mut same = all.iter().filter(|(n, _, _)| n.eq_ignore_ascii_case(want));
                    match (same.next(), same.next()) {
                        (Some(one), None) => Some(one),
                        _ => None,
                    }
                })
            })
            .collect(),
    };
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let one = (wanted.len() == 1).then(|| wanted[0].0.clone());
    let filter = if one.is_some() {
        " AND TABLE_NAME = ?"
    } else {
        ""
    };
    let params = |extra: Option<&String>| -> Vec<Value> {
        let mut p = vec![Value::from(s.database.as_str())];
        if let Some(t) = extra {
            p.push(Value::from(t.as_str()));
        }
        p
    };
    let col_rows: Vec<mysql_async::Row> = conn
        .exec(
            format!(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, EXTRA, COLUMN_DEFAULT IS NOT NULL \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?{filter} \
                 ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ),
            params(one.as_ref()),
        )
        .await
        .my(s)?;
    let key_rows: Vec<mysql_async::Row> = conn
        .exec(
            format!(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ?{filter} AND CONSTRAINT_NAME = 'PRIMARY' \
                 ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ),
            params(one.as_ref()),
        )
        .await
        .my(s)?;
    // MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)) constraint
    let mut json: HashMap<String, BTreeSet<String>> = HashMap::new();
    if server.mariadb {
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!(
                    "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ?{filter}"
                ),
                params(one.as_ref()),
            )
            .await
            .my(s)?;
        for r in rows {
            if let Some(col) = json_valid_column(&text(r.as_ref(1))) {
                json.entry(text(r.as_ref(0))).or_default().insert(col);
            }
        }
    }
    let mut columns: HashMap<String, Vec<ColumnInfo>> = HashMap::new();
    for r in &col_rows {
        let table = text(r.as_ref(0));
        let name = text(r.as_ref(1));
        let data_type = text(r.as_ref(2)).to_ascii_lowercase();
        let is_json = json.get(&table).is_some_and(|c| c.contains(&name));
        let extra = text(r.as_ref(7)).to_ascii_lowercase();
        columns.entry(table).or_default().push(ColumnInfo {
            ty: types::column_type_from_schema(
                &data_type,
                &text(r.as_ref(3)),
                number(r.as_ref(5)),
                number(r.as_ref(6)),
                is_json,
            ),
            column_type: text(r.as_ref(3)),
            name,
            nullable: text(r.as_ref(4)).eq_ignore_ascii_case("YES"),
            has_default: number(r.as_ref(8)).unwrap_or(0) != 0
                || extra.contains("auto_increment")
                || extra.contains("generated"),
            generated: extra.contains("generated"),
        });
    }
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for r in &key_rows {
        keys.entry(text(r.as_ref(0)))
            .or_default()
            .push(text(r.as_ref(1)));
    }
    Ok(wanted
        .into_iter()
        .map(|(name, kind, rows)| Relation {
            name: name.clone(),
            kind: *kind,
            columns: columns.remove(name).unwrap_or_default(),
            primary_key: keys.remove(name).unwrap_or_default(),
            rows_estimate: if *kind == Kind::Table { *rows } else { None },
        })
        .collect())
}

/// The relation named `name` (exact, or the only one matching in any case), or `None`.
pub(crate) async fn relation(
    conn: &mut Conn,
    s: &ConnSettings,
    server: Server,
    name: &str,
) -> Result<Option<Relation>> {
    Ok(relations(conn, s, server, Some(&[name.to_string()]))
        .await?
        .into_iter()
        .next())
}

/// `json_valid(`doc`)` → `doc`.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause
        .trim()
        .strip_prefix("json_valid(")?
        .strip_suffix(')')?
        .trim();
    let name = inner.strip_prefix('`')?.strip_suffix('`')?;
    Some(name.replace("``", "`"))
}

/// Whether `table` has its primary key or a unique index on exactly the columns `key`
/// (any order): what `ON DUPLICATE KEY UPDATE` needs to match rows by that key.
pub(crate) async fn has_unique_key(
    conn: &mut Conn,
    s: &ConnSettings,
    table: &str,
    key: &[String],
) -> Result<bool> {
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0",
            (s.database.as_str(), table),
        )
        .await
        .my(s)?;
    let want: BTreeSet<String> = key.iter().map(|k| k.to_lowercase()).collect();
    let mut indexes: HashMap<String, (BTreeSet<String>, bool)> = HashMap::new();
    for r in &rows {
        let e = indexes.entry(text(r.as_ref(0))).or_default();
        e.0.insert(text(r.as_ref(1)).to_lowercase());
        // a prefix index does not make the whole value unique
        if number(r.as_ref(2)).is_some() {
            e.1 = true;
        }
    }
    Ok(indexes
        .values()
        .any(|(cols, prefix)| !prefix && *cols == want))
}

/// The collation that compares `utf8mb4` text byte for byte, trailing spaces included:
/// `utf8mb4_0900_bin` (MySQL 8), `utf8mb4_nopad_bin` (MariaDB), else `utf8mb4_bin`.
pub(crate) async fn exact_collation(conn: &mut Conn, s: &ConnSettings) -> Result<String> {
    let found: Vec<String> = conn
        .query(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN \
             ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin', 'utf8mb4_bin')",
        )
        .await
        .my(s)?;
    Ok(["utf8mb4_0900_bin", "utf8mb4_nopad_bin", "utf8mb4_bin"]
        .into_iter()
        .find(|c| found.iter().any(|f| f == c))
        .unwrap_or("utf8mb4_bin")
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_safe() {
        assert_eq!(quote("plain"), "`plain`");
        assert_eq!(quote("a `b`; DROP"), "`a ``b``; DROP`");
    }

    #[test]
    fn helper_tables_are_ferry_tables() {
        use ferry_sql::write::naming::{tagged_name, OLD_PREFIX, STAGING_PREFIX};
        for prefix in [STAGING_PREFIX, OLD_PREFIX] {
            let name = tagged_name(prefix, "orders", "20240501T120000Z-1a2b3c", 64);
            assert!(is_ferry_table(&name), "{name}");
        }
        assert!(!is_ferry_table("orders"));
    }

    #[test]
    fn json_checks() {
        assert_eq!(
            json_valid_column("json_valid(`doc`)").as_deref(),
            Some("doc")
        );
        assert_eq!(
            json_valid_column("json_valid(`a``b`)").as_deref(),
            Some("a`b")
        );
        assert_eq!(json_valid_column("`x` > 0"), None);
    }

    #[test]
    fn locations_hide_credentials() {
        let s = ConnSettings::from_url("mysql://u:pw-secret@db:3307/crm").unwrap();
        assert_eq!(s.location(), "mysql://db:3307/crm");
        assert!(!format!("{s:?}").contains("pw-secret"));
    }
}
