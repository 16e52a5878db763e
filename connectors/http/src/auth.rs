//! Credentials on requests, and the OAuth 2.0 client-credentials token cache.
//!
//! Secrets stay [`Secret`]s until the one place they are written into a request, and a
//! fetched access token becomes a `Secret` at once (registered with the leak guard).
//! A token is renewed when less than a tenth of its life (at most 60 s) is left, and
//! thrown away when the API answers 401, so the next attempt fetches a fresh one.

use std::time::{Duration, Instant};

use ferry_core::{Error, ErrorKind, Result, Secret};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{AuthConfig, ClientAuth, KeyLocation};

/// Lifetime assumed for a token whose response names none.
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(3600);

/// A cached access token.
struct Token {
    value: Secret,
    refresh_at: Instant,
}

/// The auth of one client: the configuration and, for OAuth 2.0, the cached token.
pub(crate) struct Auth {
    config: Option<AuthConfig>,
    token: Mutex<Option<Token>>,
}

/// What to do to a request.
pub(crate) enum Apply {
    /// Nothing.
    None,
    /// Set this header.
    Header(String, HeaderValue),
    /// Add this query parameter.
    Query(String, Secret),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<f64>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn sensitive(value: String) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&value).map_err(|_| {
        Error::config("a credential holds characters a header cannot carry (a line break?)")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    )
}

/// Registers with the leak guard what this auth puts on the wire besides the secret
/// itself (which [`Secret`] registered when it was read): a basic-auth header's base64 of
/// `user:password` matches neither the password nor its base64, and a query key is
/// form-encoded (`+` for a space) where the guard knows only percent-encoding.
fn register_derived(config: &AuthConfig) {
    use ferry_core::redact::register;
    let b64 = |s: &str| s.strip_prefix("Basic ").unwrap_or(s).to_string();
    match config {
        AuthConfig::ApiKey { value, .. } => register(&form_encode(value.expose())),
        AuthConfig::Bearer { .. } => {}
        AuthConfig::Basic { username, password } => {
            register(&b64(&basic(username, password.expose())));
            // a password pasted into a query or form is form-encoded (`+` for a space)
            register(&form_encode(password.expose()));
        }
        AuthConfig::Oauth2 {
            client_id,
            client_secret,
            ..
        } => {
            let secret = form_encode(client_secret.expose());
            register(&b64(&basic(&form_encode(client_id), &secret)));
            register(&secret);
        }
    }
}

impl Auth {
    pub(crate) fn new(config: Option<AuthConfig>) -> Self {
        if let Some(c) = &config {
            register_derived(c);
        }
        Auth {
            config,
            token: Mutex::new(None),
        }
    }

    /// The query parameter that carries a key, so URLs can be shown without it.
    pub(crate) fn query_key(&self) -> Option<&str> {
        match &self.config {
            Some(AuthConfig::ApiKey {
                name,
                location: KeyLocation::Query,
                ..
            }) => Some(name),
            _ => None,
        }
    }

    /// Whether a 401 may be cured by fetching a new token.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self.config, Some(AuthConfig::Oauth2 { .. }))
    }

    /// Forgets the cached token (after a 401).
    pub(crate) async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    /// What to add to a request; fetches an OAuth 2.0 token when none is fresh.
    pub(crate) async fn apply(&self, client: &crate::client::HttpClient) -> Result<Apply> {
        Ok(match &self.config {
            None => Apply::None,
            Some(AuthConfig::ApiKey {
                name,
                value,
                location: KeyLocation::Header,
            }) => {
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    Error::config(format!("`auth.name` `{name}` is not a valid header name"))
                })?;
                Apply::Header(name.clone(), sensitive(value.expose().to_string())?)
            }
            Some(AuthConfig::ApiKey {
                name,
                value,
                location: KeyLocation::Query,
            }) => Apply::Query(name.clone(), value.clone()),
            Some(AuthConfig::Bearer { token }) => Apply::Header(
                AUTHORIZATION.to_string(),
                sensitive(format!("Bearer {}", token.expose()))?,
            ),
            Some(AuthConfig::Basic { username, password }) => Apply::Header(
                AUTHORIZATION.to_string(),
                sensitive(basic(username, password.expose()))?,
            ),
            Some(AuthConfig::Oauth2 { .. }) => {
                let mut slot = self.token.lock().await;
                let fresh = slot.as_ref().filter(|t| Instant::now() < t.refresh_at);
                let token = match fresh {
                    Some(t) => t.value.clone(),
                    None => {
                        let t = self.fetch_token(client).await?;
                        let v = t.value.clone();
                        *slot = Some(t);
                        v
                    }
                };
                Apply::Header(
                    AUTHORIZATION.to_string(),
                    sensitive(format!("Bearer {}", token.expose()))?,
                )
            }
        })
    }

    async fn fetch_token(&self, client: &crate::client::HttpClient) -> Result<Token> {
        let Some(AuthConfig::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scopes,
            params,
            client_auth,
        }) = &self.config
        else {
            return Err(Error::internal("token fetched without OAuth 2.0 config"));
        };
        let url = crate::config::parse_url(token_url, "auth.token_url")?;
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !scopes.is_empty() {
            form.push(("scope".into(), scopes.join(" ")));
        }
        for (k, v) in params {
            form.push((k.clone(), v.clone()));
        }
        let mut headers = Vec::new();
        match client_auth {
            ClientAuth::Basic => headers.push((
                AUTHORIZATION.to_string(),
                sensitive(basic(
                    &form_encode(client_id),
                    &form_encode(client_secret.expose()),
                ))?,
            )),
            ClientAuth::Body => {
                form.push(("client_id".into(), client_id.clone()));
                form.push(("client_secret".into(), client_secret.expose().to_string()));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let spec = crate::client::RequestSpec {
            method: reqwest::Method::POST,
            url,
            body: Some(body.into_bytes()),
            content_type: Some("application/x-www-form-urlencoded"),
            headers,
            signing: None,
            what: "token request".into(),
        };
        let reply = client.execute_without_auth(&spec).await.map_err(|e| {
            if e.context_value("status").is_some()
                && matches!(
                    e.kind(),
                    ErrorKind::ConfigInvalid | ErrorKind::NotFound | ErrorKind::PermissionDenied
                )
            {
                Error::new(
                    ErrorKind::AuthFailed,
                    format!("the token endpoint refused the client: {}", e.message()),
                )
                .with("url", e.context_value("url").unwrap_or(""))
            } else {
                e
            }
        })?;
        let parsed: TokenResponse = serde_json::from_slice(&reply.body).map_err(|_| {
            let hint = serde_json::from_slice::<TokenError>(&reply.body)
                .ok()
                .and_then(|e| {
                    e.error.map(|c| {
                        format!(
                            " ({c}{})",
                            e.error_description
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        )
                    })
                })
                .unwrap_or_default();
            Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "the token endpoint answered without an `access_token`{}",
                    ferry_core::redact::redact(&hint)
                ),
            )
        })?;
        let value = Secret::new(parsed.access_token);
        let life = parsed
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TOKEN_LIFE);
        let margin = (life / 10).min(Duration::from_secs(60));
        tracing::debug!(
            lifetime_secs = life.as_secs_f64(),
            "OAuth 2.0 token fetched"
        );
        Ok(Token {
            value,
            refresh_at: Instant::now() + life - margin,
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_basic_auth_sends_is_redacted() {
        let password = Secret::new("basic-pw-c41e7b");
        let sent = basic("apiuser", password.expose());
        let b64 = sent.strip_prefix("Basic ").unwrap().to_string();
        Auth::new(Some(AuthConfig::Basic {
            username: "apiuser".into(),
            password,
        }));
        assert_eq!(
            ferry_core::redact::redact(&format!("got {b64}")),
            "got [redacted]"
        );
    }

    #[test]
    fn a_form_encoded_query_key_is_redacted() {
        let value = Secret::new("query key 9e2b");
        Auth::new(Some(AuthConfig::ApiKey {
            name: "key".into(),
            value,
            location: KeyLocation::Query,
        }));
        assert_eq!(
            ferry_core::redact::redact("?key=query+key+9e2b"),
            "?key=[redacted]"
        );
    }
}
