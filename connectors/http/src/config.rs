//! The `[source] type = "http"` and `[destination] type = "webhook"` sections.
//!
//! Validation here is pure (no request is made): URLs parse, type names are known,
//! streams are named once and parents exist. Connecting happens in `check`, `discover`,
//! `read` and `open`.

use std::collections::BTreeMap;

use ferry_core::{Error, FerryType, Result, Secret};
use ferry_formats::codec::parse_type_overrides;
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

/// A config struct with the HTTP client fields written in once, after its own:
/// `headers`, `auth`, `requests_per_second`, `burst`, `retry`, `timeout_secs` and
/// `connect_timeout_secs`; and `client_settings_up_to(max_body_bytes)` to read them.
macro_rules! client_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $fty,)*
            /// Headers sent with every request, e.g. `{ Accept = "application/json" }`
            /// (default: none). Put credentials in `auth`, never here: header values are
            /// not secrets.
            #[serde(default)]
            pub headers: BTreeMap<String, String>,
            /// How to authenticate (default: no authentication).
            #[serde(default)]
            pub auth: Option<AuthConfig>,
            /// Client-side rate limit over all requests of this section, in requests per
            /// second (default: no limit). Fractions are allowed (`0.5` = one request
            /// every 2 s).
            #[serde(default)]
            pub requests_per_second: Option<f64>,
            /// Requests allowed at once before `requests_per_second` applies (default 1).
            #[serde(default = "default_burst")]
            pub burst: u32,
            /// Retries of failed requests (default: 5 attempts, backoff from 500 ms to
            /// 30 s).
            #[serde(default)]
            pub retry: RetryConfig,
            /// Seconds one request may take, body included, before it is abandoned and
            /// retried (default 60).
            #[serde(default = "default_timeout")]
            pub timeout_secs: f64,
            /// Seconds to wait for a connection (default 10).
            #[serde(default = "default_connect_timeout")]
            pub connect_timeout_secs: f64,
        }

        impl $name {
            /// The client fields as written, with bodies up to `max_body_bytes`.
            fn client_settings_up_to(&self, max_body_bytes: u64) -> ClientSettings {
                ClientSettings {
                    headers: self.headers.clone().into_iter().collect(),
                    auth: self.auth.clone(),
                    requests_per_second: self.requests_per_second,
                    burst: self.burst,
                    retry: self.retry.clone(),
                    timeout_secs: self.timeout_secs,
                    connect_timeout_secs: self.connect_timeout_secs,
                    max_body_bytes,
                }
            }
        }
    };
}

client_config! {
    /// `[source] type = "http"`: a REST API read page by page, declared stream by stream.
    ///
    /// ```toml
    /// [source]
    /// type = "http"
    /// base_url = "https://api.example.com/v1"
    /// auth = { type = "bearer", token = "${secret:example_token}" }
    /// requests_per_second = 5
    ///
    /// [[source.streams]]
    /// name = "customers"
    /// path = "/customers"
    /// records = "data"
    /// primary_key = ["id"]
    /// cursor_field = "updated_at"
    /// cursor_param = "updated_since"
    /// pagination = { type = "page", param = "page", size_param = "per_page", size = 100 }
    /// ```
    pub struct HttpSourceConfig {
        /// The API's root, e.g. `https://api.example.com/v1` (required). Stream paths are
        /// appended to it; pages may only be followed on this scheme, host and port.
        pub base_url: String,
        /// Query parameters sent with every request of every stream (default: none).
        #[serde(default)]
        pub params: BTreeMap<String, ParamValue>,
        /// How pages follow each other, for streams that set none (default: one page).
        #[serde(default)]
        pub pagination: Option<PaginationConfig>,
        /// Largest page body accepted, in MiB (default 64): a larger one is an error, so a
        /// broken API cannot fill memory.
        #[serde(default = "default_max_page_mib")]
        pub max_page_mib: u64,
        /// Records read to infer column types (default 1000).
        #[serde(default = "default_sample_records")]
        pub sample_records: usize,
        /// Pages read at most to infer column types (default 2; for a child stream, pages
        /// with records, one parent after another).
        #[serde(default = "default_sample_pages")]
        pub sample_pages: usize,
        /// The streams (required, at least one), written as `[[source.streams]]` tables or
        /// inline, e.g. `[{ name = "customers", path = "/customers", records = "data" }]`.
        pub streams: Vec<HttpStreamConfig>,
    }
}

/// One `[[source.streams]]` entry: one API resource read as a table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStreamConfig {
    /// Stream name (required).
    pub name: String,
    /// Path under `base_url`, e.g. `/customers` (required). With `parent`, fields of
    /// each parent record fill placeholders: `/customers/{parent.id}/orders` (the
    /// parent's name and its singular work too: `{customers.id}`, `{customer.id}`).
    pub path: String,
    /// Query parameters of this stream (default: none), added to the source's `params`.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Where the records are in a page: a dotted path such as `data.items` (default: the
    /// body itself, an array of records or a single record). A missing or `null` value
    /// after the first page is an empty page.
    #[serde(default)]
    pub records: Option<String>,
    /// Where the API reports how many records the listing has, a dotted path into the
    /// first page's body such as `meta.total` (default: none). The run report then says
    /// whether every reported record was read (`complete`), and `ferry sync
    /// --require-complete` fails the stream when not. For a child stream, the totals of
    /// each parent's listing are added up.
    #[serde(default)]
    pub total: Option<String>,
    /// Columns that identify a record, e.g. `["id"]` (default: none).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// The column incremental reads follow, e.g. `updated_at` (default: none; the
    /// stream is then read in full every time).
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// Query parameter that asks the API for records from a cursor value on, e.g.
    /// `updated_since` (default: none; records are then all fetched and filtered here).
    /// It gets the largest cursor value of the last committed run, as the API wrote it.
    #[serde(default)]
    pub cursor_param: Option<String>,
    /// Value sent in `cursor_param` on the first incremental run, e.g.
    /// `2024-01-01T00:00:00Z` (default: none, the parameter is left out).
    #[serde(default)]
    pub cursor_start: Option<String>,
    /// Whether the API returns records in ascending `cursor_field` order across all pages
    /// (default false). When true, state is checkpointed every few pages, so a failed run
    /// resumes near where it stopped; when false, state is saved once the whole stream
    /// has been read (the largest value is only known then).
    #[serde(default)]
    pub sorted_by_cursor: bool,
    /// How pages follow each other (default: the source's `pagination`, else one page).
    #[serde(default)]
    pub pagination: Option<PaginationConfig>,
    /// Name of another stream whose records this one is read for, once per parent
    /// record (default: none). The parent must not have a parent itself.
    #[serde(default)]
    pub parent: Option<String>,
    /// Columns copied from the parent record into each record, e.g.
    /// `{ customer_id = "id" }` (column = dotted path in the parent; default: none).
    #[serde(default)]
    pub parent_fields: BTreeMap<String, String>,
    /// Column types that win over inference, e.g. `{ amount = "decimal(18,2)" }`
    /// (default: none). A column named here that the sample lacks is added.
    /// Types: bool, int64, float64, decimal(p,s), string, binary, date, timestamp, json.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Nested objects: `false` keeps each as one json column (default); `true` makes one
    /// column per leaf (`address_city`); a number flattens that many levels. Arrays are
    /// always kept as json.
    #[serde(default)]
    pub flatten: Flatten,
    /// What joins names of flattened columns (default `_`).
    #[serde(default = "default_separator")]
    pub flatten_separator: String,
}

/// A query parameter value: text, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    /// Text, sent as is.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Text(s) => f.write_str(s),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `flatten = true | false | <levels>`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Flatten {
    /// `true`: every level; `false`: none.
    All(bool),
    /// That many levels of nesting.
    Depth(u32),
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::All(false)
    }
}

impl Flatten {
    /// Levels to flatten (0: none).
    pub(crate) fn depth(self) -> usize {
        match self {
            Flatten::All(false) => 0,
            Flatten::All(true) => usize::MAX,
            Flatten::Depth(d) => d as usize,
        }
    }
}

/// `auth = { type = "…", … }`: how requests prove who sends them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// An API key in a header (default) or a query parameter:
    /// `{ type = "api_key", name = "X-Api-Key", value = "${secret:key}" }`.
    ApiKey {
        /// Header or query parameter name (required).
        name: String,
        /// The key, as a reference (required).
        value: Secret,
        /// `header` (default) or `query`. Query keys are removed from URLs in errors and logs.
        #[serde(rename = "in", default)]
        location: KeyLocation,
    },
    /// `Authorization: Bearer <token>`: `{ type = "bearer", token = "${secret:token}" }`.
    Bearer {
        /// The token, as a reference (required).
        token: Secret,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name (required).
        username: String,
        /// Password, as a reference (required).
        password: Secret,
    },
    /// OAuth 2.0 client credentials: a token is fetched from `token_url`, cached,
    /// renewed shortly before it expires and again when the API answers 401.
    Oauth2 {
        /// The token endpoint (required).
        token_url: String,
        /// Client id (required).
        client_id: String,
        /// Client secret, as a reference (required).
        client_secret: Secret,
        /// Scopes asked for (default: none).
        #[serde(default)]
        scopes: Vec<String>,
        /// Extra form fields of the token request, e.g. `{ audience = "…" }` (default: none).
        #[serde(default)]
        params: BTreeMap<String, String>,
        /// How the client proves itself to the token endpoint: `basic` (an
        /// `Authorization` header, default) or `body` (form fields).
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// A request header.
    #[default]
    Header,
    /// A query parameter.
    Query,
}

/// How an OAuth 2.0 client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP basic with client id and secret.
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields.
    Body,
}

/// `pagination = { type = "…", … }`: how to get the next page. Every style stops on a
/// page without records.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaginationConfig {
    /// One page only.
    None,
    /// Page numbers: `?page=1`, `?page=2` …
    Page {
        /// The page number parameter (default `page`).
        #[serde(default = "default_page_param")]
        param: String,
        /// The first page's number (default 1).
        #[serde(default = "default_one")]
        start: u64,
        /// Parameter for the page size, e.g. `per_page` (default: none sent).
        #[serde(default)]
        size_param: Option<String>,
        /// Page size sent in `size_param` (default 100).
        #[serde(default = "default_page_size")]
        size: u64,
    },
    /// Offset and limit: `?offset=0&limit=100`, `?offset=100&limit=100` …
    Offset {
        /// The offset parameter (default `offset`).
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// The limit parameter (default `limit`).
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Records per page (default 100).
        #[serde(default = "default_page_size")]
        limit: u64,
    },
    /// A cursor token from the body, sent back as a parameter: `{ type = "cursor",
    /// path = "meta.next_cursor", param = "cursor" }`. Stops when it is missing or empty.
    Cursor {
        /// Dotted path of the token in the body (required).
        path: String,
        /// The parameter the token is sent in (default `cursor`).
        #[serde(default = "default_cursor_param")]
        param: String,
    },
    /// The `Link` response header's `rel="next"` URL (RFC 8288), as GitHub sends it.
    Link,
    /// The next page's URL from the body: `{ type = "next_url", path = "links.next" }`.
    /// Stops when it is missing, null or empty.
    NextUrl {
        /// Dotted path of the URL in the body (required); relative URLs are allowed.
        path: String,
    },
}

/// `retry = { … }`: how failed requests are retried (connection errors, timeouts, 408,
/// 429 and 5xx). Waits grow exponentially with random jitter; a `Retry-After` answer
/// (seconds or an HTTP date) is honoured.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 5; 1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry, in milliseconds (default 500); doubled each time.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, in milliseconds (default 30000).
    pub max_backoff_ms: u64,
    /// Longest `Retry-After` honoured, in seconds (default 300): a server asking for a
    /// longer wait fails the request at once, naming the wait.
    pub max_retry_after_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            max_retry_after_secs: 300,
        }
    }
}

client_config! {
    /// `[destination] type = "webhook"`: rows POSTed in signed batches.
    ///
    /// ```toml
    /// [destination]
    /// type = "webhook"
    /// url = "https://hooks.example.com/ferry/{stream}"
    /// secret = "${secret:webhook_secret}"
    /// format = "json"
    /// batch_size = 500
    /// ```
    ///
    /// A retried batch keeps its `Idempotency-Key`.
    pub struct WebhookSinkConfig {
        /// Where batches are POSTed (required); `{stream}` is replaced by the stream name.
        pub url: String,
        /// `json` (a JSON array of row objects, default) or `ndjson` (one object per line).
        #[serde(default)]
        pub format: BodyFormat,
        /// Rows per POST (default 500).
        #[serde(default = "default_batch_size")]
        pub batch_size: usize,
        /// Signing secret, as a reference (default: none, requests are not signed). Each
        /// request then carries `X-Ferry-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
        /// "<t>." + body>`.
        #[serde(default)]
        pub secret: Option<Secret>,
    }
}

/// How a webhook body holds rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `[{…},{…}]`, `Content-Type: application/json`.
    #[default]
    Json,
    /// `{…}\n{…}\n`, `Content-Type: application/x-ndjson`.
    Ndjson,
}

fn default_burst() -> u32 {
    1
}
fn default_timeout() -> f64 {
    60.0
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_max_page_mib() -> u64 {
    64
}
fn default_sample_records() -> usize {
    1000
}
fn default_sample_pages() -> usize {
    2
}
fn default_separator() -> String {
    "_".into()
}
fn default_page_param() -> String {
    "page".into()
}
fn default_one() -> u64 {
    1
}
fn default_page_size() -> u64 {
    100
}
fn default_offset_param() -> String {
    "offset".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_batch_size() -> usize {
    500
}

/// Client settings shared by the source and the sink, validated.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub headers: Vec<(String, String)>,
    pub auth: Option<AuthConfig>,
    pub requests_per_second: Option<f64>,
    pub burst: u32,
    pub retry: RetryConfig,
    pub timeout_secs: f64,
    pub connect_timeout_secs: f64,
    pub max_body_bytes: u64,
}

impl ClientSettings {
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(r) = self.requests_per_second {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::config(
                    "`requests_per_second` must be a number above 0",
                ));
            }
        }
        if self.burst == 0 {
            return Err(Error::config("`burst` must be at least 1"));
        }
        if self.retry.attempts == 0 {
            return Err(Error::config("`retry.attempts` must be at least 1"));
        }
        for (name, secs) in [
            ("timeout_secs", self.timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
        ] {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(Error::config(format!("`{name}` must be above 0")));
            }
        }
        for (k, v) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(Error::config(format!(
                    "header `{k}` is not a valid HTTP header name and value"
                )));
            }
        }
        if let Some(AuthConfig::Oauth2 { token_url, .. }) = &self.auth {
            parse_url(token_url, "auth.token_url")?;
        }
        Ok(())
    }
}

/// Parses an absolute http(s) URL from config.
pub(crate) fn parse_url(text: &str, field: &str) -> Result<Url> {
    let url = Url::parse(text.trim()).map_err(|e| {
        Error::config(format!(
            "`{field}` is not a valid URL ({e}): write it like https://api.example.com/v1"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(format!(
            "`{field}` must start with http:// or https://"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(format!(
            "`{field}` must not hold a user name or password: use `auth`"
        )));
    }
    Ok(url)
}

/// One stream, validated.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    pub name: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub records: Vec<String>,
    pub total: Option<Vec<String>>,
    pub primary_key: Vec<String>,
    pub cursor_field: Option<String>,
    pub cursor_param: Option<String>,
    pub cursor_start: Option<String>,
    pub sorted_by_cursor: bool,
    pub pagination: PaginationConfig,
    pub parent: Option<String>,
    pub parent_fields: Vec<(String, String)>,
    pub overrides: Vec<(String, FerryType)>,
    pub flatten_depth: usize,
    pub separator: String,
}

/// Splits a dotted path (`data.items`) into its parts; empty means "the whole value".
pub(crate) fn split_path(path: &str) -> Vec<String> {
    path.split('.')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl HttpSourceConfig {
    pub(crate) fn client_settings(&self) -> ClientSettings {
        self.client_settings_up_to(self.max_page_mib.saturating_mul(1 << 20))
    }

    /// Checks the fields fit together, without a request.
    pub(crate) fn specs(&self) -> Result<(Url, Vec<StreamSpec>)> {
        let base = parse_url(&self.base_url, "base_url")?;
        self.client_settings().validate()?;
        if self.max_page_mib == 0 {
            return Err(Error::config("`max_page_mib` must be at least 1"));
        }
        if self.sample_records == 0 || self.sample_pages == 0 {
            return Err(Error::config(
                "`sample_records` and `sample_pages` must be at least 1",
            ));
        }
        if self.streams.is_empty() {
            return Err(Error::config(
                "no streams: add `[[source.streams]]` with `name` and `path`",
            ));
        }
        let mut specs: Vec<StreamSpec> = Vec::new();
        for s in &self.streams {
            let name = s.name.trim().to_string();
            let bad = |m: String| Error::config(format!("stream `{name}`: {m}"));
            if name.is_empty() {
                return Err(Error::config("a stream name is empty"));
            }
            if specs.iter().any(|o| o.name == name) {
                return Err(Error::config(format!("stream `{name}` is named twice")));
            }
            if s.path.trim().is_empty() {
                return Err(bad("`path` is empty".into()));
            }
            let overrides =
                parse_type_overrides(s.columns.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map_err(|e| bad(e.message().to_string()))?;
            if s.cursor_param.is_some() && s.cursor_field.is_none() {
                return Err(bad(
                    "`cursor_param` needs `cursor_field` (the column whose value it sends)".into(),
                ));
            }
            if s.flatten_separator.is_empty() && s.flatten.depth() > 0 {
                return Err(bad("`flatten_separator` is empty".into()));
            }
            let pagination = s
                .pagination
                .clone()
                .or_else(|| self.pagination.clone())
                .unwrap_or(PaginationConfig::None);
            match &pagination {
                PaginationConfig::Cursor { path, param }
                    if split_path(path).is_empty() || param.is_empty() =>
                {
                    return Err(bad("cursor pagination needs `path` and `param`".into()))
                }
                PaginationConfig::NextUrl { path } if split_path(path).is_empty() => {
                    return Err(bad("next_url pagination needs `path`".into()))
                }
                PaginationConfig::Page { size: 0, .. }
                | PaginationConfig::Offset { limit: 0, .. } => {
                    return Err(bad("the page size must be at least 1".into()))
                }
                _ => {}
            }
            let mut params: Vec<(String, String)> = self
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            for (k, v) in &s.params {
                params.retain(|(pk, _)| pk != k);
                params.push((k.clone(), v.to_string()));
            }
            if s.parent.is_none() && (s.path.contains('{') || !s.parent_fields.is_empty()) {
                return Err(bad(
                    "`path` placeholders and `parent_fields` need `parent = \"<stream>\"`".into(),
                ));
            }
            specs.push(StreamSpec {
                name,
                path: s.path.trim().to_string(),
                params,
                records: s.records.as_deref().map(split_path).unwrap_or_default(),
                total: s.total.as_deref().map(split_path),
                primary_key: s.primary_key.clone(),
                cursor_field: s.cursor_field.clone(),
                cursor_param: s.cursor_param.clone(),
                cursor_start: s.cursor_start.clone(),
                sorted_by_cursor: s.sorted_by_cursor && s.parent.is_none(),
                pagination,
                parent: s.parent.clone(),
                parent_fields: s.parent_fields.clone().into_iter().collect(),
                overrides,
                flatten_depth: s.flatten.depth(),
                separator: s.flatten_separator.clone(),
            });
        }
        for s in &specs {
            if let Some(p) = &s.parent {
                let parent = specs.iter().find(|o| &o.name == p).ok_or_else(|| {
                    Error::config(format!(
                        "stream `{}`: parent `{p}` is not a stream of this source",
                        s.name
                    ))
                })?;
                if parent.parent.is_some() {
                    return Err(Error::config(format!(
                        "stream `{}`: parent `{p}` has a parent itself; only one level is supported",
                        s.name
                    )));
                }
                crate::records::placeholders(&s.path, p)
                    .map_err(|m| Error::config(format!("stream `{}`: {m}", s.name)))?;
            }
        }
        Ok((base, specs))
    }
}

impl WebhookSinkConfig {
    pub(crate) fn client_settings(&self) -> ClientSettings {
        self.client_settings_up_to(1 << 20)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        parse_url(&self.url.replace("{stream}", "stream"), "url")?;
        if self.batch_size == 0 {
            return Err(Error::config("`batch_size` must be at least 1"));
        }
        if self.secret.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(Error::config("`secret` is empty"));
        }
        self.client_settings().validate()
    }
}
