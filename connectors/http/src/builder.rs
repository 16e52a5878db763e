//! Building an [`HttpSource`] in Rust, for a connector crate made for one SaaS API.
//!
//! The builder fills the same [`HttpSourceConfig`] a `sync.toml` would, so a connector
//! written this way gets the same auth, retries, rate limit, pagination, inference and
//! incremental state as the declarative source. See `examples/saas_connector.rs`.
//!
//! ```
//! use ferry_connector_http::{HttpSource, HttpStream, Pagination};
//! use ferry_core::Secret;
//!
//! let source = HttpSource::builder("https://api.example.com/v1")
//!     .bearer(Secret::new("token-from-the-vault"))
//!     .requests_per_second(5.0)
//!     .stream(
//!         HttpStream::new("customers", "/customers")
//!             .records("data")
//!             .primary_key(["id"])
//!             .cursor("updated_at", "updated_since")
//!             .pagination(Pagination::page("page")),
//!     )
//!     .build()
//!     .unwrap();
//! # let _ = source;
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::{Result, Secret};

use crate::config::{
    AuthConfig, ClientAuth, Flatten, HttpSourceConfig, HttpStreamConfig, KeyLocation,
    PaginationConfig, ParamValue, RetryConfig,
};
use crate::source::HttpSource;

/// A stream of an [`HttpSource`] (the `[[source.streams]]` entry).
pub type HttpStream = HttpStreamConfig;
/// How pages follow each other.
pub type Pagination = PaginationConfig;

/// Builds an [`HttpSource`] step by step; [`HttpSourceBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct HttpSourceBuilder {
    cfg: HttpSourceConfig,
}

impl HttpSource {
    /// A builder for the API at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> HttpSourceBuilder {
        HttpSourceBuilder {
            cfg: HttpSourceConfig {
                base_url: base_url.into(),
                headers: BTreeMap::new(),
                params: BTreeMap::new(),
                auth: None,
                pagination: None,
                requests_per_second: None,
                burst: 1,
                retry: RetryConfig::default(),
                timeout_secs: 60.0,
                connect_timeout_secs: 10.0,
                max_page_mib: 64,
                sample_records: 1000,
                sample_pages: 2,
                streams: Vec::new(),
            },
        }
    }
}

impl HttpSourceBuilder {
    /// Sends `name: value` with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg.headers.insert(name.into(), value.into());
        self
    }
    /// Sends query parameter `name=value` with every request.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg
            .params
            .insert(name.into(), ParamValue::Text(value.into()));
        self
    }
    /// Any auth the config knows.
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.cfg.auth = Some(auth);
        self
    }
    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: Secret) -> Self {
        self.auth(AuthConfig::Bearer { token })
    }
    /// An API key in header `name`.
    pub fn api_key_header(self, name: impl Into<String>, value: Secret) -> Self {
        self.auth(AuthConfig::ApiKey {
            name: name.into(),
            value,
            location: KeyLocation::Header,
        })
    }
    /// An API key in query parameter `name`.
    pub fn api_key_query(self, name: impl Into<String>, value: Secret) -> Self {
        self.auth(AuthConfig::ApiKey {
            name: name.into(),
            value,
            location: KeyLocation::Query,
        })
    }
    /// HTTP basic authentication.
    pub fn basic(self, username: impl Into<String>, password: Secret) -> Self {
        self.auth(AuthConfig::Basic {
            username: username.into(),
            password,
        })
    }
    /// OAuth 2.0 client credentials against `token_url`.
    pub fn oauth2(
        self,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.auth(AuthConfig::Oauth2 {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret,
            scopes: scopes.into_iter().map(Into::into).collect(),
            params: BTreeMap::new(),
            client_auth: ClientAuth::Basic,
        })
    }
    /// Pagination for streams that set none.
    pub fn pagination(mut self, p: Pagination) -> Self {
        self.cfg.pagination = Some(p);
        self
    }
    /// At most `rps` requests per second over all streams.
    pub fn requests_per_second(mut self, rps: f64) -> Self {
        self.cfg.requests_per_second = Some(rps);
        self
    }
    /// Retry settings.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.cfg.retry = retry;
        self
    }
    /// Longest time one request may take.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.cfg.timeout_secs = t.as_secs_f64();
        self
    }
    /// Adds a stream.
    pub fn stream(mut self, s: HttpStream) -> Self {
        self.cfg.streams.push(s);
        self
    }
    /// The config built so far (to inspect or adjust a field the builder has no method for).
    pub fn config_mut(&mut self) -> &mut HttpSourceConfig {
        &mut self.cfg
    }
    /// Validates and builds the source (no request is made).
    pub fn build(self) -> Result<HttpSource> {
        HttpSource::new(self.cfg)
    }
}

impl HttpStreamConfig {
    /// A stream `name` at `path` under the base URL, one page, everything inferred.
    pub fn new(name: impl Into<String>, path: impl Into<String>) -> Self {
        HttpStreamConfig {
            name: name.into(),
            path: path.into(),
            params: BTreeMap::new(),
            records: None,
            total: None,
            primary_key: Vec::new(),
            cursor_field: None,
            cursor_param: None,
            cursor_start: None,
            sorted_by_cursor: false,
            pagination: None,
            parent: None,
            parent_fields: BTreeMap::new(),
            columns: BTreeMap::new(),
            flatten: Flatten::All(false),
            flatten_separator: "_".into(),
        }
    }
    /// Where the records are in a page (`data.items`).
    pub fn records(mut self, path: impl Into<String>) -> Self {
        self.records = Some(path.into());
        self
    }
    /// Where the first page reports the listing's record count (`meta.total`).
    pub fn total(mut self, path: impl Into<String>) -> Self {
        self.total = Some(path.into());
        self
    }
    /// Query parameter `name=value`.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params
            .insert(name.into(), ParamValue::Text(value.into()));
        self
    }
    /// Columns that identify a record.
    pub fn primary_key(mut self, cols: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.primary_key = cols.into_iter().map(Into::into).collect();
        self
    }
    /// Incremental by `field`, sent to the API as query parameter `param`.
    pub fn cursor(mut self, field: impl Into<String>, param: impl Into<String>) -> Self {
        self.cursor_field = Some(field.into());
        self.cursor_param = Some(param.into());
        self
    }
    /// The API returns records in ascending cursor order (checkpoints every few pages).
    pub fn sorted_by_cursor(mut self) -> Self {
        self.sorted_by_cursor = true;
        self
    }
    /// How pages follow each other.
    pub fn pagination(mut self, p: Pagination) -> Self {
        self.pagination = Some(p);
        self
    }
    /// Read once per record of stream `parent`; `path` uses `{parent.FIELD}`.
    pub fn parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = Some(parent.into());
        self
    }
    /// Copies parent field `path` into column `column`.
    pub fn parent_field(mut self, column: impl Into<String>, path: impl Into<String>) -> Self {
        self.parent_fields.insert(column.into(), path.into());
        self
    }
    /// Column `name` has type `ty` (`decimal(18,2)`, `timestamp` …) whatever inference says.
    pub fn column(mut self, name: impl Into<String>, ty: impl Into<String>) -> Self {
        self.columns.insert(name.into(), ty.into());
        self
    }
    /// Flattens nested objects `depth` levels (`usize::MAX`: all).
    pub fn flatten(mut self, depth: u32) -> Self {
        self.flatten = Flatten::Depth(depth);
        self
    }
}

impl PaginationConfig {
    /// One page only (overrides the source's default for this stream).
    pub fn none() -> Self {
        PaginationConfig::None
    }
    /// `?<param>=1`, `2`, … until an empty page.
    pub fn page(param: impl Into<String>) -> Self {
        PaginationConfig::Page {
            param: param.into(),
            start: 1,
            size_param: None,
            size: 100,
        }
    }
    /// `?offset=0&limit=<limit>`, … until an empty page.
    pub fn offset(limit: u64) -> Self {
        PaginationConfig::Offset {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit,
        }
    }
    /// A token at `path` in the body, sent back as `param`.
    pub fn cursor(param: impl Into<String>, path: impl Into<String>) -> Self {
        PaginationConfig::Cursor {
            param: param.into(),
            path: path.into(),
        }
    }
    /// The `Link: <…>; rel="next"` header.
    pub fn link() -> Self {
        PaginationConfig::Link
    }
    /// The next page's URL at `path` in the body.
    pub fn next_url(path: impl Into<String>) -> Self {
        PaginationConfig::NextUrl { path: path.into() }
    }
}
