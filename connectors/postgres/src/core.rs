//! What the source and sink share: connection settings, connecting (with TLS), the one
//! table that maps PostgreSQL's errors to Ferry's kinds, retries, identifier quoting, and
//! reading table definitions from the catalog.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferry_core::retry::{Retry, RetryPolicy};
use ferry_core::{Error, ErrorKind, Result};
use ferry_sql::settings::{Endpoint, Product, Tunnel};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{SslMode, UrlExtras, DEFAULT_APPLICATION_NAME, DEFAULT_PORT};
use crate::types::PgType;

/// How long connecting (TCP, TLS and login) may take, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long Ferry waits, by default, for any one answer of a connected server (a
/// statement's result, the next COPY data, the acknowledgement of COPY data sent).
/// Generous: a query that sorts a large table sends nothing until it has sorted.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(600);
/// PostgreSQL's limit on identifier length, in bytes (longer names are cut silently).
pub(crate) const MAX_IDENT: usize = 63;
/// Prefix of every table Ferry makes for itself; discovery never lists them.
pub(crate) use ferry_sql::write::naming::FERRY_PREFIX;
/// Attempts of an operation that is safe to repeat, when it fails with a temporary error.
const ATTEMPTS: u32 = 4;
/// Waits between them: about 0.25 s, 0.5 s, 1 s (each jittered down to half).
const RETRY: RetryPolicy =
    RetryPolicy::new(ATTEMPTS, Duration::from_millis(250), Duration::from_secs(1));

/// Where and how to connect: the server, database and login (its [`Endpoint`], whose
/// fields read as the settings' own), TLS, and timeouts. `Debug` shows no password (it
/// is a [`Secret`](ferry_core::Secret)).
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// Host, port, database, user and password.
    pub endpoint: Endpoint,
    /// TLS mode.
    pub sslmode: SslMode,
    /// PEM file of trusted authorities for `verify-full` (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// `application_name` of the sessions.
    pub application_name: String,
    /// How long connecting (TCP, TLS and login) may take.
    pub connect_timeout: Duration,
    /// How long any one wait for the connected server may take before the connection
    /// is given up as hung (default 600 s).
    pub read_timeout: Duration,
    /// The SSH tunnel every connection goes through (`tunnel = { … }`), if any.
    pub tunnel: Option<Arc<Tunnel>>,
}

ferry_sql::endpoint_fields!(ConnSettings);

/// How PostgreSQL's settings are read.
pub(crate) const POSTGRES: Product = Product {
    name: "PostgreSQL",
    schemes: &["postgres", "postgresql"],
    default_port: DEFAULT_PORT,
};

impl ConnSettings {
    /// Settings for `endpoint`, the others at their defaults.
    pub(crate) fn new(endpoint: Endpoint) -> ConnSettings {
        ConnSettings {
            endpoint,
            sslmode: SslMode::Prefer,
            ca_file: None,
            application_name: DEFAULT_APPLICATION_NAME.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            tunnel: None,
        }
    }

    /// Parses `postgres://user:password@host:port/database[?sslmode=…]`. Errors never
    /// repeat the URL (it may hold the password).
    pub fn from_url(url: &str) -> Result<ConnSettings> {
        let (endpoint, params) = POSTGRES.parse_url(url)?;
        let mut s = ConnSettings::new(endpoint);
        let mut extras = UrlExtras::default();
        for (k, v) in &params {
            extras.apply(k, v, &mut s)?;
        }
        if let Some(mode) = extras.sslmode {
            s.sslmode = mode;
        }
        if let Some(ca) = extras.ca_file {
            s.ca_file = Some(ca);
            s.sslmode = SslMode::VerifyFull;
        }
        Ok(s)
    }

    /// `postgres://host:port/database`: where data went, without credentials.
    pub fn location(&self) -> String {
        POSTGRES.location(&self.host, self.port, &self.database)
    }

    /// `host:port`, for messages.
    pub(crate) fn host_port(&self) -> String {
        ferry_sql::settings::host_port(&self.host, self.port)
    }

    /// The driver's settings; `route` is the local end of the tunnel, when there is one
    /// (the host name is kept for TLS: `verify-full` checks the certificate names it).
    fn pg_config(&self, route: Option<SocketAddr>) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host);
        if let Some(addr) = route {
            c.hostaddr(addr.ip());
        }
        c.port(route.map_or(self.port, |a| a.port()))
            .user(&self.user)
            .dbname(&self.database)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            // a server (or the path to it) that vanished without closing the connection
            // is noticed by the kernel: idle keepalives, and data left unacknowledged
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(60))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .tcp_user_timeout(self.read_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }
}

// ----------------------------------------------------------------------------------------
// Connecting

/// Connection settings plus the TLS setup built from them once (loading the system's
/// trusted authorities reads a few hundred files: not on every connection).
pub(crate) struct Pg {
    pub settings: ConnSettings,
    tls: OnceLock<MakeRustlsConnect>,
    /// Run on every new session.
    session_sql: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.fmt(f)
    }
}

impl Pg {
    pub fn new(settings: ConnSettings) -> Pg {
        Pg {
            settings,
            tls: OnceLock::new(),
            session_sql: "SET TIME ZONE 'UTC'".into(),
        }
    }

    /// Sessions also look names up in `schemas` first (then `public`), so configured
    /// queries can name the tables of the schemas they read without qualifying them.
    pub fn with_search_path(mut self, schemas: &[String]) -> Pg {
        let mut path: Vec<String> = schemas.iter().map(|s| quote(s)).collect();
        if !schemas.iter().any(|s| s == "public") {
            path.push("public".into());
        }
        self.session_sql
            .push_str(&format!("; SET search_path TO {}", path.join(", ")));
        self
    }

    pub fn tls(&self) -> Result<MakeRustlsConnect> {
        if let Some(t) = self.tls.get() {
            return Ok(t.clone());
        }
        let t = MakeRustlsConnect::new(tls_config(&self.settings)?);
        let _ = self.tls.set(t.clone());
        Ok(t)
    }

    /// Connects (with a timeout) and sets the session up (UTC, search path).
    pub async fn connect(&self) -> Result<Client> {
        let s = &self.settings;
        let tls = self.tls()?;
        let config = s.pg_config(ferry_sql::settings::route(s.tunnel.as_ref()).await?);
        let fut = config.connect(tls);
        // the driver's own timeout covers each step; this one the whole login
        let (client, connection) = match tokio::time::timeout(s.connect_timeout, fut).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if e.to_string().starts_with("timeout waiting for server") => {
                return Err(connect_timed_out(s))
            }
            Ok(Err(e)) => return Err(map_err_at(e, s, true)),
            Err(_) => return Err(connect_timed_out(s)),
        };
        tokio::spawn(async move {
            // ends when the client is dropped; errors surface on the client's calls
            let _ = connection.await;
        });
        within(
            s,
            "setting the session up",
            client.batch_execute(&self.session_sql),
        )
        .await?;
        Ok(client)
    }

    /// [`Pg::connect`], retried while the failure is temporary (the server starting up
    /// or shutting down, too many connections).
    pub async fn connect_retrying(&self) -> Result<Client> {
        retry(|| self.connect()).await
    }
}

fn connect_timed_out(s: &ConnSettings) -> Error {
    Error::new(
        ErrorKind::Unreachable,
        format!(
            "connecting to PostgreSQL at {} timed out: no login within {} (`connect_timeout_secs`)",
            s.host_port(),
            secs(s.connect_timeout)
        ),
    )
    .with("server", s.location())
}

/// `1.5 s`, `600 s`.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Waits for `fut`, an exchange with the connected server, at most `read_timeout`. A
/// server that sends nothing for that long is taken as hung (a half-open connection,
/// a stalled network path): the error says what was waited for, and is temporary, so
/// operations that are safe to repeat are repeated on a new connection.
pub(crate) async fn within<T, E, F>(s: &ConnSettings, what: &str, fut: F) -> Result<T>
where
    F: Future<Output = std::result::Result<T, E>>,
    E: Into<PgFailure>,
{
    match tokio::time::timeout(s.read_timeout, fut).await {
        Ok(r) => r.map_err(|e| match e.into() {
            PgFailure::Driver(e) => map_err(e, s),
            PgFailure::Ferry(e) => e,
        }),
        Err(_) => Err(timed_out(s, what)),
    }
}

/// The error of an exchange that took longer than `read_timeout`.
pub(crate) fn timed_out(s: &ConnSettings, what: &str) -> Error {
    Error::new(
        ErrorKind::Temporary,
        format!(
            "PostgreSQL at {} did not answer within {} while {what}; the connection was given up \
             as hung (`read_timeout_secs` sets the limit)",
            s.host_port(),
            secs(s.read_timeout)
        ),
    )
    .with("server", s.location())
}

/// A failure of the driver or of Ferry, so [`within`] takes both kinds of futures.
pub(crate) enum PgFailure {
    Driver(tokio_postgres::Error),
    Ferry(Error),
}

impl From<tokio_postgres::Error> for PgFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        PgFailure::Driver(e)
    }
}

impl From<Error> for PgFailure {
    fn from(e: Error) -> Self {
        PgFailure::Ferry(e)
    }
}

/// The rustls client configuration for `s`: `verify-full` checks the certificate chain
/// (system roots or `ca_file`) and the host name; the other modes encrypt only.
fn tls_config(s: &ConnSettings) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    if s.sslmode != SslMode::VerifyFull {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                Error::config(format!("cannot read `ca_file`: {e}")).with("file", path.display())
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    Error::config(format!("`ca_file` is not a PEM certificate file: {e}"))
                        .with("file", path.display())
                })?;
                roots.add(cert).map_err(|e| {
                    Error::config(format!("`ca_file` holds a certificate rustls refuses: {e}"))
                        .with("file", path.display())
                })?;
            }
            if roots.is_empty() {
                return Err(
                    Error::config("`ca_file` holds no certificate").with("file", path.display())
                );
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::config(
                    "sslmode = \"verify-full\" found no trusted certificate authorities on this \
                     system; set `ca_file` to the PEM file of the server's authority",
                ));
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `prefer` / `require`: TLS that encrypts without authenticating the server (libpq's
/// meaning of these modes). The handshake signatures are still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ----------------------------------------------------------------------------------------
// Errors

/// Maps an error of an established session to a Ferry error of the right kind.
pub(crate) fn map_err(e: tokio_postgres::Error, s: &ConnSettings) -> Error {
    map_err_at(e, s, false)
}

/// The one place that decides kinds: retries and hints depend on it, never on text.
/// Server errors map by SQLSTATE; the driver's own errors expose their class only as
/// the first words of their text, so those few are read here and nowhere else.
pub(crate) fn map_err_at(e: tokio_postgres::Error, s: &ConnSettings, connecting: bool) -> Error {
    let server = s.location();
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = sqlstate_kind(code);
        let mut message = match kind {
            ErrorKind::AuthFailed => format!(
                "PostgreSQL at {} refused the login of user `{}`: {}",
                s.host_port(),
                s.user,
                db.message()
            ),
            ErrorKind::NotFound if code == "3D000" => format!(
                "database `{}` does not exist on PostgreSQL at {}",
                s.database,
                s.host_port()
            ),
            _ => format!("PostgreSQL: {}", db.message()),
        };
        if let Some(d) = db.detail() {
            message.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            message.push_str(&format!("; hint: {h}"));
        }
        let mut err = Error::new(kind, message)
            .with("server", &server)
            .with("sqlstate", code);
        if let Some(t) = db.table() {
            err = err.with("table", t);
        }
        if let Some(c) = db.column() {
            err = err.with("column", c);
        }
        return err.set_source(e);
    }
    let what = e.to_string();
    let cause = causes(&e);
    let (kind, message) = if what.starts_with("error performing TLS handshake") {
        (
            ErrorKind::Unreachable,
            format!(
                "TLS with PostgreSQL at {} failed (sslmode = \"{}\"): {cause}",
                s.host_port(),
                s.sslmode.name()
            ),
        )
    } else if what.starts_with("error connecting to server")
        || what.starts_with("timeout waiting for server")
    {
        (
            ErrorKind::Unreachable,
            format!("cannot reach PostgreSQL at {}: {cause}", s.host_port()),
        )
    } else if what.starts_with("authentication error") {
        (
            ErrorKind::AuthFailed,
            format!(
                "login of user `{}` at PostgreSQL {} failed: {cause}",
                s.user,
                s.host_port()
            ),
        )
    } else if connecting {
        (
            ErrorKind::Unreachable,
            format!(
                "the server at {} did not complete a PostgreSQL login (is it PostgreSQL?): {what}{}",
                s.host_port(),
                if cause.is_empty() {
                    String::new()
                } else {
                    format!(": {cause}")
                }
            ),
        )
    } else if e.is_closed() || what.starts_with("error communicating with the server") {
        (
            ErrorKind::Temporary,
            format!(
                "the connection to PostgreSQL at {} was lost{}",
                s.host_port(),
                if cause.is_empty() {
                    String::new()
                } else {
                    format!(": {cause}")
                }
            ),
        )
    } else {
        (
            ErrorKind::Internal,
            format!("PostgreSQL driver: {what}{cause}"),
        )
    };
    let message = ferry_sql::settings::with_tunnel_loss(s.tunnel.as_ref(), message);
    Error::new(kind, message)
        .with("server", server)
        .set_source(e)
}

/// The causes of an error, joined (`Connection refused (os error 111)`).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = Vec::new();
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push(text);
        }
        next = c.source();
    }
    out.join(": ")
}

/// The Ferry kind of a SQLSTATE.
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // invalid_password, invalid_authorization_specification
        "28P01" | "28000" => ErrorKind::AuthFailed,
        // invalid_catalog_name (no database), undefined_table, invalid_schema_name
        "3D000" | "42P01" | "3F000" => ErrorKind::NotFound,
        "42501" => ErrorKind::PermissionDenied,
        // serialization_failure, deadlock_detected, admin_shutdown, crash_shutdown,
        // cannot_connect_now, too_many_connections, lock_not_available, query_canceled
        "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "57014" => {
            ErrorKind::Temporary
        }
        // disk_full
        "53100" => ErrorKind::Io,
        // undefined_column, datatype_mismatch, dependent_objects_still_exist
        "42703" | "42804" | "2BP01" => ErrorKind::SchemaMismatch,
        // read_only_sql_transaction: a configured query tried to write
        "25006" => ErrorKind::ConfigInvalid,
        "0A000" => ErrorKind::Unsupported,
        c if c.starts_with("08") => ErrorKind::Temporary,
        // data exceptions, integrity constraint violations
        c if c.starts_with("22") || c.starts_with("23") => ErrorKind::DataInvalid,
        // syntax errors and access rule violations: a configured query or name is wrong
        c if c.starts_with("42") => ErrorKind::ConfigInvalid,
        _ => ErrorKind::Internal,
    }
}

/// `.pg(settings)?` on a driver result: maps the error with [`map_err`].
pub(crate) trait PgResultExt<T> {
    fn pg(self, s: &ConnSettings) -> Result<T>;
}

impl<T> PgResultExt<T> for std::result::Result<T, tokio_postgres::Error> {
    fn pg(self, s: &ConnSettings) -> Result<T> {
        self.map_err(|e| map_err(e, s))
    }
}

/// A copy of `e` with another message (same kind and context).
pub(crate) fn with_message(e: Error, message: String) -> Error {
    let mut out = Error::new(e.kind(), message);
    for (k, v) in e.context() {
        out = out.with(k, v);
    }
    out
}

/// Whether `e` is worth repeating an operation that is safe to repeat.
pub(crate) fn is_transient(e: &Error) -> bool {
    // unreachable too: a connection refused or cut while logging in is worth another try
    matches!(e.kind(), ErrorKind::Temporary | ErrorKind::Unreachable)
}

/// Runs `f` until it succeeds, fails with a lasting error, or [`ATTEMPTS`] are used,
/// waiting as [`RETRY`] says between attempts. Only for operations that are safe to
/// repeat as a whole.
pub(crate) async fn retry<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let classify = |e: &Error| {
        if is_transient(e) {
            Retry::Backoff
        } else {
            Retry::Never
        }
    };
    RETRY
        .run(
            |_| f(),
            classify,
            |e, attempt, wait| {
                tracing::warn!(
                    "PostgreSQL: {}; retrying in {} ms (attempt {attempt} of {ATTEMPTS})",
                    ferry_core::redact::redact(&e.to_string()),
                    wait.as_millis()
                );
            },
        )
        .await
}

// ----------------------------------------------------------------------------------------
// SQL text

/// `name` as a quoted SQL identifier: `"a ""b"""`. Safe for any text without NUL.
pub(crate) fn quote(name: &str) -> String {
    ferry_sql::quote::ident(name, '"')
}

/// `schema.table`, both quoted.
pub(crate) fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}

/// `text` as an SQL string literal of unknown type (the column it is compared with gives
/// its type). Correct whatever `standard_conforming_strings` is: text with a backslash
/// is written as an escape string.
pub(crate) fn literal(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 3);
    if text.contains('\\') {
        s.push_str("E'");
        for c in text.chars() {
            match c {
                '\'' => s.push_str("''"),
                '\\' => s.push_str("\\\\"),
                c => s.push(c),
            }
        }
    } else {
        s.push('\'');
        for c in text.chars() {
            if c == '\'' {
                s.push('\'');
            }
            s.push(c);
        }
    }
    s.push('\'');
    s
}

// ----------------------------------------------------------------------------------------
// Catalog

/// What a relation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelKind {
    Table,
    Partitioned,
    View,
    MaterializedView,
    Foreign,
}

impl RelKind {
    fn from_code(c: &str) -> RelKind {
        match c {
            "p" => RelKind::Partitioned,
            "v" => RelKind::View,
            "m" => RelKind::MaterializedView,
            "f" => RelKind::Foreign,
            _ => RelKind::Table,
        }
    }
}

/// One column of a relation.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub ty: PgType,
    pub not_null: bool,
    pub has_default: bool,
    /// Position in the primary key (1-based), 0 when not in it.
    pub pk: usize,
}

/// A table, view, materialized view or foreign table.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    pub columns: Vec<ColumnInfo>,
    /// `pg_class.reltuples` (-1: never analysed) and `relpages`.
    pub reltuples: f64,
    pub relpages: i32,
}

impl Relation {
    /// The primary key columns, in key order.
    pub fn primary_key(&self) -> Vec<String> {
        let mut pk: Vec<&ColumnInfo> = self.columns.iter().filter(|c| c.pk > 0).collect();
        pk.sort_by_key(|c| c.pk);
        pk.into_iter().map(|c| c.name.clone()).collect()
    }
}

const RELATIONS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.reltuples::float8, c.relpages,
       a.attname::text, a.attnotnull, a.atthasdef OR a.attidentity <> '',
       bt.oid, bt.typname::text, bt.typcategory::text,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(a.atttypid, a.atttypmod),
       COALESCE((SELECT k.n::int4 FROM unnest(i.indkey) WITH ORDINALITY AS k(att, n)
                 WHERE k.att = a.attnum), 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND ($2::text IS NULL OR lower(c.relname::text) = lower($2::text))
ORDER BY n.nspname, c.relname, a.attnum";

/// The relations of `schemas` (all, or those named `only`, compared exactly and
/// case-insensitively), with their columns, in schema and name order.
pub(crate) async fn relations(
    client: &Client,
    schemas: &[String],
    only: Option<&str>,
    s: &ConnSettings,
) -> Result<Vec<Relation>> {
    let rows = client
        .query(RELATIONS_SQL, &[&schemas, &only])
        .await
        .pg(s)?;
    let mut out: Vec<Relation> = Vec::new();
    for r in rows {
        let schema: String = r.get(0);
        let name: String = r.get(1);
        let fresh = out
            .last()
            .is_none_or(|l| l.schema != schema || l.name != name);
        if fresh {
            out.push(Relation {
                schema,
                name,
                kind: RelKind::from_code(r.get::<_, String>(2).as_str()),
                columns: Vec::new(),
                reltuples: r.get(3),
                relpages: r.get(4),
            });
        }
        let Some(col) = r.get::<_, Option<String>>(5) else {
            continue;
        };
        let ty = PgType::from_catalog(
            r.get::<_, u32>(8),
            &r.get::<_, String>(9),
            &r.get::<_, String>(10),
            r.get(11),
            r.get(12),
        );
        out.last_mut()
            .expect("pushed above")
            .columns
            .push(ColumnInfo {
                name: col,
                ty,
                not_null: r.get(6),
                has_default: r.get(7),
                pk: r.get::<_, i32>(13).max(0) as usize,
            });
    }
    Ok(out)
}

/// The relation of `schema` named `name`: the exact name, else the one name equal to it
/// ignoring case (a table created without quotes is stored in lower case).
pub(crate) async fn find_relation(
    client: &Client,
    schema: &str,
    name: &str,
    s: &ConnSettings,
) -> Result<Option<Relation>> {
    let found = relations(client, &[schema.to_string()], Some(name), s).await?;
    if let Some(exact) = found.iter().find(|r| r.name == name) {
        return Ok(Some(exact.clone()));
    }
    Ok(match found.len() {
        1 => found.into_iter().next(),
        _ => None,
    })
}

/// Which of `schemas` exist, and whether the user may use each (`USAGE`).
pub(crate) async fn schema_access(
    client: &Client,
    schemas: &[String],
    s: &ConnSettings,
) -> Result<Vec<(String, bool)>> {
    let rows = client
        .query(
            "SELECT nspname::text, has_schema_privilege(oid, 'USAGE') FROM pg_namespace \
             WHERE nspname = ANY($1)",
            &[&schemas],
        )
        .await
        .pg(s)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether `schema.table` has a primary key or a full unique index (no expression, no
/// predicate) on exactly the columns `key`: what `ON CONFLICT (key)` needs.
pub(crate) async fn has_unique_key(
    client: &Client,
    schema: &str,
    table: &str,
    key: &[String],
    s: &ConnSettings,
) -> Result<bool> {
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL \
               AND i.indexprs IS NULL AND i.indisvalid \
             GROUP BY i.indexrelid",
            &[&schema, &table],
        )
        .await
        .pg(s)?;
    let mut want: Vec<&str> = key.iter().map(String::as_str).collect();
    want.sort_unstable();
    want.dedup();
    Ok(rows.iter().any(|r| {
        let got: Vec<String> = r.get(0);
        got.iter().map(String::as_str).eq(want.iter().copied())
    }))
}

/// Tables of `schema` whose names start with `prefix`.
pub(crate) async fn tables_with_prefix(
    client: &Client,
    schema: &str,
    prefix: &str,
    s: &ConnSettings,
) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND left(c.relname, length($2)) = $2",
            &[&schema, &prefix],
        )
        .await
        .pg(s)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_safe() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\'b"), "E'a\\\\''b'");
    }

    #[tokio::test]
    async fn retry_repeats_only_temporary_failures() {
        use std::cell::Cell;
        let calls = Cell::new(0u32);
        let flaky = || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(Error::new(ErrorKind::Temporary, "server starting"))
                } else {
                    Ok(n)
                }
            }
        };
        assert_eq!(retry(flaky).await.unwrap(), 3);
        calls.set(0);
        let lasting = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Error::new(ErrorKind::NotFound, "no table")) }
        };
        assert_eq!(
            retry(lasting).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(calls.get(), 1, "a lasting failure is not repeated");
        calls.set(0);
        let down = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Error::new(ErrorKind::Temporary, "shutting down")) }
        };
        assert!(retry(down).await.is_err());
        assert_eq!(calls.get(), ATTEMPTS);
    }

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(sqlstate_kind("28P01"), ErrorKind::AuthFailed);
        assert_eq!(sqlstate_kind("28000"), ErrorKind::AuthFailed);
        assert_eq!(sqlstate_kind("3D000"), ErrorKind::NotFound);
        assert_eq!(sqlstate_kind("42501"), ErrorKind::PermissionDenied);
        assert_eq!(sqlstate_kind("40001"), ErrorKind::Temporary);
        assert_eq!(sqlstate_kind("57P01"), ErrorKind::Temporary);
        assert_eq!(sqlstate_kind("23505"), ErrorKind::DataInvalid);
        assert_eq!(sqlstate_kind("42601"), ErrorKind::ConfigInvalid);
    }
}
