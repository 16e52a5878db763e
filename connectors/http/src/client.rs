//! The HTTP client every part of this crate (and connectors built on it) goes through:
//! auth, retries, `Retry-After`, timeouts, a client-side rate limit and errors that
//! name the URL without secrets.
//!
//! Retried (by the policy of [`ferry_core::retry`]): connection failures, timeouts, a
//! broken body, 408, 429 and every 5xx but 501, up to `retry.attempts` in all, waiting
//! `initial_backoff_ms · 2ⁿ` (at most `max_backoff_ms`) times a random factor in
//! [0.5, 1), or what `Retry-After` asks (seconds or an HTTP date). A 401 with OAuth 2.0 fetches a new token and tries
//! again once. Anything else fails at once, mapped to an [`ErrorKind`] by
//! [`status_kind`]. URLs in errors and logs lose their user info and the values of
//! query parameters that carry keys; headers are never logged.
//!
//! Redirects are followed only within the origin (scheme, host, port) the request was
//! made to, at most [`MAX_REDIRECTS`] of them, and no `Referer` is ever sent: a 3xx to
//! another server would otherwise receive the custom auth headers, the query key (in
//! `Referer`), a webhook's rows and their signature. A redirect elsewhere fails, naming
//! where it pointed ([`redirect_policy`]).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::retry::{Retry, RetryPolicy};
use ferry_core::{Error, ErrorKind, Result, Secret};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::auth::{Apply, Auth};
use crate::config::{ClientSettings, RetryConfig};

/// The header carrying a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Ferry-Signature";

/// Redirects followed for one request, all within its origin.
pub const MAX_REDIRECTS: usize = 5;

/// Query parameter names whose values are hidden in URLs shown to people.
pub(crate) const SENSITIVE_PARAMS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "credential",
];

/// Header names (lowercase fragments) whose values are credentials: never recorded,
/// registered with the leak guard, dropped from replay configs.
const SECRET_HEADER_PARTS: &[&str] = &[
    "authorization",
    "cookie",
    "session",
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "signature",
    "credential",
];

/// Whether header `name` carries a credential: `Authorization`, `Cookie`, `X-Session-Id`,
/// `X-Api-Key`, `X-Auth` …
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADER_PARTS.iter().any(|p| lower.contains(p))
        || lower.split(['-', '_']).any(|w| w == "auth")
}

/// Registers a credential header's value with the leak guard: the whole value, the
/// part after an auth scheme (`Bearer <token>`) and each cookie's value — those parts
/// only from 8 characters on, since `theme=dark` would otherwise scrub every "dark".
fn register_header_value(value: &str) {
    use ferry_core::redact::register;
    register(value);
    let part = |p: &str| {
        if p.trim().len() >= 8 {
            register(p.trim());
        }
    };
    if let Some((_, rest)) = value.trim().split_once(' ') {
        part(rest);
    }
    for pair in value.split(';') {
        if let Some((_, v)) = pair.split_once('=') {
            part(v);
        }
    }
}

/// One request to make (and remake on retry).
#[derive(Clone)]
pub struct RequestSpec {
    /// GET, POST …
    pub method: Method,
    /// The full URL (auth query parameters are added per attempt).
    pub url: Url,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// The body's content type.
    pub content_type: Option<&'static str>,
    /// Extra headers of this request.
    pub headers: Vec<(String, HeaderValue)>,
    /// Signs the body with this secret (see [`SIGNATURE_HEADER`]), afresh on every attempt.
    pub signing: Option<Secret>,
    /// What the request is, for errors: `page 3`, `batch 2`.
    pub what: String,
}

impl RequestSpec {
    /// A GET of `url`.
    pub fn get(url: Url, what: impl Into<String>) -> Self {
        RequestSpec {
            method: Method::GET,
            url,
            body: None,
            content_type: None,
            headers: Vec::new(),
            signing: None,
            what: what.into(),
        }
    }
}

/// A successful answer, body read in full.
#[derive(Debug)]
pub struct Reply {
    /// The status (2xx).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The URL answered (after redirects), without auth query parameters.
    pub url: Url,
}

/// A configured client: cheap to share behind an `Arc`.
pub struct HttpClient {
    http: reqwest::Client,
    auth: Auth,
    limiter: Option<DefaultDirectRateLimiter>,
    headers: Vec<(HeaderName, HeaderValue)>,
    retry: RetryPolicy,
    timeout: Duration,
    connect_timeout: Duration,
    max_body: u64,
}

/// Why one attempt failed.
enum Failure {
    /// Status, headers, a snippet of the body for errors, the body for a debug bundle.
    Status(StatusCode, HeaderMap, String, Vec<u8>),
    Transport(Error, bool),
}

impl Failure {
    /// Whether (and when) the request may be made again.
    fn retry(&self) -> Retry {
        match self {
            Failure::Status(s, headers, ..) => {
                let code = s.as_u16();
                if !(code == 408 || code == 429 || (code >= 500 && code != 501)) {
                    Retry::Never
                } else if let Some(wait) = retry_after(headers) {
                    Retry::After(wait)
                } else {
                    Retry::Backoff
                }
            }
            Failure::Transport(_, true) => Retry::Backoff,
            Failure::Transport(_, false) => Retry::Never,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Status(s, ..) => format!("status {}", s.as_u16()),
            Failure::Transport(e, _) => e.message().to_string(),
        }
    }
}

/// How a request ended when it did not succeed: an error that ends it at once, or a
/// failed attempt the retry policy judges.
enum Ended {
    Error(Error),
    Failed(Failure),
}

/// The retry policy `retry = { … }` configures.
fn policy(retry: &RetryConfig) -> RetryPolicy {
    RetryPolicy::new(
        retry.attempts,
        Duration::from_millis(retry.initial_backoff_ms),
        Duration::from_millis(retry.max_backoff_ms),
    )
    .with_max_requested(Duration::from_secs(retry.max_retry_after_secs))
}

impl HttpClient {
    /// A client for validated `settings`.
    pub(crate) fn new(settings: &ClientSettings) -> Result<Arc<Self>> {
        settings.validate()?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // ring, the workspace's crypto; another thread may win the race, which is fine
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let timeout = Duration::from_secs_f64(settings.timeout_secs);
        let connect_timeout = Duration::from_secs_f64(settings.connect_timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(redirect_policy(query_key(settings)))
            .referer(false)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot build the HTTP client: {}", chain(&e.without_url())),
                )
            })?;
        let limiter = settings
            .requests_per_second
            .map(|rps| {
                let period = Duration::from_secs_f64(1.0 / rps);
                let quota = Quota::with_period(period)
                    .ok_or_else(|| Error::config("`requests_per_second` is too large"))?
                    .allow_burst(NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN));
                Ok::<_, Error>(RateLimiter::direct(quota))
            })
            .transpose()?;
        let mut headers = vec![(
            USER_AGENT,
            HeaderValue::from_static(concat!("ferry/", env!("CARGO_PKG_VERSION"))),
        )];
        for (k, v) in &settings.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::config(format!("header `{k}` is not a valid name")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| Error::config(format!("header `{k}` has an invalid value")))?;
            if is_secret_header(k) {
                register_header_value(v);
                value.set_sensitive(true);
            }
            headers.retain(|(n, _)| *n != name);
            headers.push((name, value));
        }
        Ok(Arc::new(HttpClient {
            http,
            auth: Auth::new(settings.auth.clone()),
            limiter,
            headers,
            retry: policy(&settings.retry),
            timeout,
            connect_timeout,
            max_body: settings.max_body_bytes,
        }))
    }

    /// `url` as it may be shown: no user info, key-carrying query values replaced by
    /// `[redacted]`, and every registered secret scrubbed.
    pub fn safe_url(&self, url: &Url) -> String {
        safe_url(url, self.auth.query_key())
    }

    /// Makes the request with auth, retrying as the module docs say.
    pub async fn execute(&self, spec: &RequestSpec) -> Result<Reply> {
        self.run(spec, true, None).await
    }

    /// [`Self::execute`], adding every attempt to `log` (credentials left out), for a
    /// debug bundle ([`ferry_core::exchange`]).
    pub async fn execute_recorded(
        &self,
        spec: &RequestSpec,
        log: &mut Vec<ferry_core::exchange::Exchange>,
    ) -> Result<Reply> {
        self.run(spec, true, Some(log)).await
    }

    /// Makes the request without auth (the token request itself).
    pub(crate) fn execute_without_auth<'a>(
        &'a self,
        spec: &'a RequestSpec,
    ) -> futures::future::BoxFuture<'a, Result<Reply>> {
        // boxed: fetching a token is a request, and requests fetch tokens
        Box::pin(self.run(spec, false, None))
    }

    async fn run(
        &self,
        spec: &RequestSpec,
        with_auth: bool,
        log: Option<&mut Vec<ferry_core::exchange::Exchange>>,
    ) -> Result<Reply> {
        let shown = self.safe_url(&spec.url);
        // shared by the attempts (each a future of its own): the log, the attempt made
        // last, and whether the one OAuth 2.0 token refresh was used
        let log = Mutex::new(log);
        let tried = AtomicU32::new(0);
        let refreshed = AtomicBool::new(false);
        let (shown, log, tried, refreshed) = (&shown, &log, &tried, &refreshed);
        let outcome = self
            .retry
            .run(
                |attempt| async move {
                    tried.store(attempt, Ordering::Relaxed);
                    loop {
                        if let Some(l) = &self.limiter {
                            l.until_ready().await;
                        }
                        let started = Instant::now();
                        let outcome = self.attempt(spec, with_auth).await;
                        if let Some(log) = log.lock().unwrap_or_else(|e| e.into_inner()).as_deref_mut() {
                            log.push(self.exchange(spec, shown, attempt, started, &outcome));
                        }
                        match outcome {
                            Err(e) => return Err(Ended::Error(e)),
                            Ok(Ok(reply)) => {
                                tracing::debug!(
                                    method = %spec.method,
                                    url = %shown,
                                    status = reply.status.as_u16(),
                                    bytes = reply.body.len(),
                                    ms = started.elapsed().as_millis() as u64,
                                    "HTTP request"
                                );
                                return Ok(reply);
                            }
                            Ok(Err(Failure::Status(s, ..)))
                                if s.as_u16() == 401
                                    && with_auth
                                    && self.auth.refreshable()
                                    && !refreshed.swap(true, Ordering::Relaxed) =>
                            {
                                // the same attempt again, with a new token
                                tracing::debug!(url = %shown, "401: fetching a new OAuth 2.0 token");
                                self.auth.invalidate().await;
                            }
                            Ok(Err(f)) => return Err(Ended::Failed(f)),
                        }
                    }
                },
                |ended| match ended {
                    Ended::Error(_) => Retry::Never,
                    Ended::Failed(f) => f.retry(),
                },
                |ended, attempt, wait| {
                    if let Ended::Failed(f) = ended {
                        tracing::warn!(
                            method = %spec.method,
                            url = %shown,
                            what = %spec.what,
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "request failed ({}); retrying",
                            f.describe()
                        );
                    }
                },
            )
            .await;
        match outcome {
            Ok(reply) => Ok(reply),
            Err(Ended::Error(e)) => Err(e),
            Err(Ended::Failed(f)) => {
                let attempts = tried.load(Ordering::Relaxed);
                // retryable, with attempts left: given up because the server asked to wait
                // longer than `max_retry_after_secs`
                let asked = match f.retry() {
                    Retry::After(w) if attempts < self.retry.attempts() => Some(w),
                    _ => None,
                };
                let e = self.give_up(spec, shown, f, attempts);
                Err(match asked {
                    Some(w) => e.with("retry_after_secs", w.as_secs()),
                    None => e,
                })
            }
        }
    }

    /// One attempt: `Ok(Err(_))` is a failure the caller may retry.
    async fn attempt(
        &self,
        spec: &RequestSpec,
        with_auth: bool,
    ) -> Result<std::result::Result<Reply, Failure>> {
        let mut url = spec.url.clone();
        let mut extra: Option<(String, HeaderValue)> = None;
        if with_auth {
            match self.auth.apply(self).await? {
                Apply::None => {}
                Apply::Header(name, value) => extra = Some((name, value)),
                Apply::Query(name, value) => {
                    url.query_pairs_mut().append_pair(&name, value.expose());
                }
            }
        }
        let mut rb = self.http.request(spec.method.clone(), url);
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        for (k, v) in &spec.headers {
            rb = rb.header(k.as_str(), v);
        }
        if let Some((k, v)) = extra {
            rb = rb.header(k.as_str(), v);
        }
        if let Some(ct) = spec.content_type {
            rb = rb.header(CONTENT_TYPE, ct);
        }
        if let Some(secret) = &spec.signing {
            let body = spec.body.as_deref().unwrap_or_default();
            let mut v = HeaderValue::from_str(&signature(secret, unix_now(), body))
                .map_err(|_| Error::internal("signature is not a header value"))?;
            v.set_sensitive(true);
            rb = rb.header(SIGNATURE_HEADER, v);
        }
        if let Some(body) = &spec.body {
            rb = rb.body(body.clone());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Err(self.transport(e))),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut answered = resp.url().clone();
        if let Some(key) = self.auth.query_key() {
            let kept: Vec<(String, String)> = answered
                .query_pairs()
                .filter(|(k, _)| k != key)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            answered.set_query(None);
            if !kept.is_empty() {
                answered.query_pairs_mut().extend_pairs(kept);
            }
        }
        if !status.is_success() {
            let (snippet, raw) = snippet(resp).await;
            return Ok(Err(Failure::Status(status, headers, snippet, raw)));
        }
        match read_body(resp, self.max_body).await {
            Ok(body) => Ok(Ok(Reply {
                status,
                headers,
                body,
                url: answered,
            })),
            Err(BodyError::TooLarge) => Err(Error::data(format!(
                "the answer is larger than {} MiB; raise `max_page_mib` if that is expected",
                self.max_body >> 20
            ))
            .with("url", self.safe_url(&spec.url))),
            Err(BodyError::Transport(e)) => Ok(Err(self.transport(e))),
        }
    }

    /// What a bundle keeps of one attempt.
    fn exchange(
        &self,
        spec: &RequestSpec,
        shown: &str,
        attempt: u32,
        started: Instant,
        outcome: &Result<std::result::Result<Reply, Failure>>,
    ) -> ferry_core::exchange::Exchange {
        let sent = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("")))
            .chain(
                spec.headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or(""))),
            )
            .chain(spec.content_type.map(|c| ("content-type", c)));
        let x = ferry_core::exchange::Exchange {
            method: spec.method.to_string(),
            url: shown.to_string(),
            attempt,
            what: spec.what.clone(),
            status: None,
            request_headers: ferry_core::exchange::safe_headers(sent),
            response_headers: Vec::new(),
            body: String::new(),
            truncated: false,
            error: None,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        let answered = |x: ferry_core::exchange::Exchange, status: StatusCode, h: &HeaderMap| {
            ferry_core::exchange::Exchange {
                status: Some(status.as_u16()),
                response_headers: ferry_core::exchange::safe_headers(
                    h.iter()
                        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or(""))),
                ),
                ..x
            }
        };
        match outcome {
            Ok(Ok(reply)) => answered(x, reply.status, &reply.headers).with_body(&reply.body),
            Ok(Err(Failure::Status(status, headers, _, raw))) => {
                answered(x, *status, headers).with_body(raw)
            }
            Ok(Err(Failure::Transport(e, _))) | Err(e) => ferry_core::exchange::Exchange {
                error: Some(ferry_core::redact::redact(e.message())),
                ..x
            },
        }
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        if let Some(refused) = refused_redirect(&e) {
            // not retried: the server will point elsewhere again
            return Failure::Transport(Error::config(refused.to_string()), false);
        }
        let (timeout, connect, builder) = (e.is_timeout(), e.is_connect(), e.is_builder());
        let text = ferry_core::redact::redact(&chain(&e.without_url()));
        if timeout && connect {
            // reqwest reports a connect timeout as both: it is the connect limit that ran out
            let secs = self.connect_timeout.as_secs_f64();
            Failure::Transport(
                Error::new(
                    ErrorKind::Unreachable,
                    format!("no connection within {secs} s (connect_timeout_secs)"),
                ),
                true,
            )
        } else if timeout {
            let secs = self.timeout.as_secs_f64();
            Failure::Transport(
                Error::new(
                    ErrorKind::Unreachable,
                    format!("no complete answer within {secs} s (timeout_secs)"),
                ),
                true,
            )
        } else if connect {
            Failure::Transport(
                Error::new(ErrorKind::Unreachable, format!("cannot connect: {text}")),
                true,
            )
        } else if builder {
            Failure::Transport(
                Error::config(format!("cannot build the request: {text}")),
                false,
            )
        } else {
            Failure::Transport(
                Error::new(
                    ErrorKind::Temporary,
                    format!("the exchange broke off: {text}"),
                ),
                true,
            )
        }
    }

    fn give_up(&self, spec: &RequestSpec, shown: &str, failure: Failure, attempts: u32) -> Error {
        let tries = if attempts == 1 {
            String::new()
        } else {
            format!(" after {attempts} attempts")
        };
        let e = match failure {
            Failure::Status(s, _, body, _) => {
                let reason = s.canonical_reason().unwrap_or("");
                let body = if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                };
                Error::new(
                    status_kind(s.as_u16()),
                    format!(
                        "{}: {} answered {} {reason}{tries}{body}",
                        spec.what,
                        spec.method,
                        s.as_u16()
                    ),
                )
                .with("status", s.as_u16())
            }
            Failure::Transport(e, _) => Error::new(
                e.kind(),
                format!(
                    "{}: {} failed{tries}: {}",
                    spec.what,
                    spec.method,
                    e.message()
                ),
            ),
        };
        e.with("url", shown)
    }
}

/// The query parameter that carries the API key, if the settings put one there.
fn query_key(settings: &ClientSettings) -> Option<String> {
    match &settings.auth {
        Some(crate::config::AuthConfig::ApiKey {
            name,
            location: crate::config::KeyLocation::Query,
            ..
        }) => Some(name.clone()),
        _ => None,
    }
}

/// Why a redirect was not followed; its text names where the redirect pointed (shown as
/// [`safe_url`] shows URLs).
#[derive(Debug)]
pub(crate) struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The refusal of [`redirect_policy`] somewhere in `e`'s causes.
fn refused_redirect(e: &reqwest::Error) -> Option<&RedirectRefused> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r);
        }
        src = s.source();
    }
    None
}

/// Follows a redirect only to the origin of the request's first URL, at most
/// [`MAX_REDIRECTS`] times. reqwest's own policy drops only `Authorization` and `Cookie`
/// on a cross-host hop; a custom key header, a signature and a webhook body would
/// still go along, so the hop itself is refused (the rule pagination applies too).
pub(crate) fn redirect_policy(query_key: Option<String>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let shown = safe_url(attempt.url(), query_key.as_deref());
        let status = attempt.status().as_u16();
        if attempt.url().origin() != first.origin() {
            let msg = format!(
                "the server redirected ({status}) to {shown}, another origin than {}; Ferry sends credentials and rows only to the origin configured: if the API really moved there, put that address in the config",
                first.origin().ascii_serialization()
            );
            return attempt.error(RedirectRefused(msg));
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            let msg = format!(
                "more than {MAX_REDIRECTS} redirects (the last, {status}, to {shown}): the server may loop; put the final address in the config"
            );
            return attempt.error(RedirectRefused(msg));
        }
        attempt.follow()
    })
}

/// The error kind an HTTP status means.
pub fn status_kind(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::AuthFailed,
        403 => ErrorKind::PermissionDenied,
        404 | 410 => ErrorKind::NotFound,
        408 => ErrorKind::Temporary,
        429 => ErrorKind::RateLimited,
        501 => ErrorKind::Unsupported,
        500..=599 => ErrorKind::Temporary,
        // 400, 405, 422 …: the request as configured is refused
        _ => ErrorKind::ConfigInvalid,
    }
}

/// `url` without user info, key-carrying query values replaced, secrets scrubbed.
pub(crate) fn safe_url(url: &Url, query_key: Option<&str>) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.set_query(None);
    let mut out = u.to_string();
    if !pairs.is_empty() {
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let hide = Some(k.as_str()) == query_key
                    || SENSITIVE_PARAMS.iter().any(|s| lower.contains(s));
                let v = if hide {
                    "[redacted]".to_string()
                } else {
                    crate::auth::form_encode(v)
                };
                format!("{}={v}", crate::auth::form_encode(k))
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    ferry_core::redact::redact(&out)
}

/// How long `Retry-After` asks to wait (delay seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>." + body)>`.
pub fn signature(secret: &Secret, unix: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose().as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(format!("{unix}.").as_bytes());
    ctx.update(body);
    let tag = ctx.sign();
    format!("t={unix},v1={}", ferry_formats::digest::hex(tag.as_ref()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An error and its causes on one line (give reqwest errors `without_url()` first).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_body(
    mut resp: reqwest::Response,
    max: u64,
) -> std::result::Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first 200 characters of an error answer, scrubbed of secrets, and the answer's
/// first [`ferry_core::exchange::MAX_BODY`] bytes.
async fn snippet(mut resp: reqwest::Response) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    while body.len() < ferry_core::exchange::MAX_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // scrubbed before it is cut: a secret cut in two is no longer recognised, and its
    // first half would show
    let text = ferry_core::redact::redact(&text);
    let snippet = ferry_core::values::preview(&text)
        .chars()
        .take(200)
        .collect::<String>();
    (snippet, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_keys() {
        let u = Url::parse("https://u:p@api.test/x?page=2&api_key=abc123&my_key=z&q=a b").unwrap();
        assert_eq!(
            safe_url(&u, Some("api_key")),
            "https://api.test/x?page=2&api_key=[redacted]&my_key=[redacted]&q=a+b"
        );
    }

    #[test]
    fn credential_headers_are_known() {
        for h in [
            "Authorization",
            "Cookie",
            "X-Session-Id",
            "X-Api-Key",
            "X-Auth",
            "Proxy-Authorization",
        ] {
            assert!(is_secret_header(h), "{h}");
        }
        for h in ["Accept", "X-Author", "User-Agent", "Content-Type"] {
            assert!(!is_secret_header(h), "{h}");
        }
        register_header_value("Bearer hdr-token-0b7d3e");
        register_header_value("theme=dark; sid=cookie-val-81f2");
        assert_eq!(
            ferry_core::redact::redact("hdr-token-0b7d3e cookie-val-81f2 dark"),
            "[redacted] [redacted] dark"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let w = retry_after(&h).unwrap();
        assert!(
            w > Duration::from_secs(28) && w <= Duration::from_secs(30),
            "{w:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3: hmac.new(b"whsec_test", b'1700000000.[{"id":1}]', sha256).hexdigest()
        let s = Secret::new("whsec_test");
        assert_eq!(
            signature(&s, 1_700_000_000, br#"[{"id":1}]"#),
            "t=1700000000,v1=25c2bc2702f3b8165a777920215796540f76c57753be3606eb3794e1d718d654"
        );
    }
}
