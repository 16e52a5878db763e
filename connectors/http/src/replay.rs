//! `ferry replay` of a stream that failed reading an API: a loopback server that answers
//! from the exchanges a debug bundle recorded, and the source config pointed at it.
//!
//! A request is answered with the recorded response for the same method, path and query
//! (query values that were `[redacted]` in the recording, and key-carrying parameters,
//! are left out of the comparison); a request recorded several times gets its answers in
//! the recorded order, then the last one again. The recorded API's origin is rewritten
//! to the server's in bodies and `Link` headers, so next-page URLs lead back to it. An
//! attempt that got no answer is replayed as one: a recorded timeout never answers (the
//! client's `timeout_secs` ends it), a broken exchange closes the connection. A request
//! the recording does not hold gets a 404 and is listed by [`ReplayServer::misses`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_core::exchange::Exchange;
use ferry_core::{Error, Result};
use http_body_util::Full;
use serde_json::{Map, Value};
use url::Url;

/// The replay the `http` source offers ([`ferry_core::Replay`]): [`source_for_replay`]
/// and a [`ReplayServer`].
pub struct HttpReplay;

#[ferry_core::async_trait]
impl ferry_core::Replay for HttpReplay {
    fn source_for_replay(
        &self,
        source: &mut Map<String, Value>,
        origin: Option<&str>,
    ) -> Result<()> {
        source_for_replay(source, origin)
    }

    async fn serve(&self, exchanges: Vec<Exchange>) -> Result<Box<dyn ferry_core::ReplayServer>> {
        Ok(Box::new(ReplayServer::start(exchanges).await?))
    }
}

/// The origin (`scheme://host:port`) of the first recorded exchange.
pub fn recorded_origin(exchanges: &[Exchange]) -> Option<String> {
    exchanges
        .iter()
        .find_map(|x| Url::parse(&x.url).ok())
        .map(|u| u.origin().ascii_serialization())
}

/// Makes an `http` source section fit for a replay: no `auth` (the replay needs none, and
/// whoever replays may not hold the vault), no header or parameter whose value is a
/// secret reference, and — given `origin` — `base_url` on that origin, path kept.
pub fn source_for_replay(source: &mut Map<String, Value>, origin: Option<&str>) -> Result<()> {
    source.remove("auth");
    let is_secret = |v: &Value| v.as_str().is_some_and(|s| s.contains("${secret:"));
    if let Some(Value::Object(m)) = source.get_mut("headers") {
        // an `Authorization` or `Cookie` written in clear is a credential all the same
        m.retain(|k, v| !is_secret(v) && !crate::client::is_secret_header(k));
    }
    if let Some(Value::Object(m)) = source.get_mut("params") {
        m.retain(|k, v| !is_secret(v) && !secret_param(k));
    }
    if let Some(Value::Array(streams)) = source.get_mut("streams") {
        for s in streams.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(m)) = s.get_mut("params") {
                m.retain(|k, v| !is_secret(v) && !secret_param(k));
            }
        }
    }
    if let Some(origin) = origin {
        let base = source
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::config("the bundle's source has no `base_url`"))?;
        let mut u = Url::parse(base)
            .map_err(|e| Error::config(format!("the bundle's `base_url` is not a URL: {e}")))?;
        // `set_scheme` cannot turn `file:` or `mailto:` into http and would fail silently,
        // leaving the replay pointed elsewhere than the replay server
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "the bundle's `base_url` is a `{}:` URL, not http(s)",
                u.scheme()
            )));
        }
        let to = Url::parse(origin)
            .map_err(|e| Error::internal(format!("replay origin {origin}: {e}")))?;
        let _ = u.set_scheme(to.scheme());
        let _ = u.set_host(to.host_str());
        let _ = u.set_port(to.port());
        let _ = u.set_username("");
        let _ = u.set_password(None);
        source.insert("base_url".into(), Value::String(u.to_string()));
    }
    Ok(())
}

/// Whether query parameter `name` carries a key (its values are not recorded either).
fn secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    crate::client::SENSITIVE_PARAMS
        .iter()
        .any(|s| lower.contains(s))
}

/// What a request is matched on: method, path and the query pairs that were recorded in
/// clear, sorted.
fn key(method: &str, url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            !v.contains("[redacted]")
                && !crate::client::SENSITIVE_PARAMS
                    .iter()
                    .any(|s| lower.contains(s))
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} {}?{}",
        method.to_ascii_uppercase(),
        url.path(),
        q.join("&")
    )
}

struct Recording {
    answers: HashMap<String, VecDeque<Exchange>>,
    misses: Vec<String>,
}

impl Recording {
    fn answer(&mut self, key: &str) -> Option<Exchange> {
        match self.answers.get_mut(key) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => {
                self.misses.push(key.to_string());
                None
            }
        }
    }
}

/// A loopback HTTP server answering from a recording; stops when dropped.
pub struct ReplayServer {
    origin: String,
    /// The recorded API's origin (empty: unknown).
    recorded: String,
    recording: Arc<Mutex<Recording>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReplayServer {
    /// Starts a server on a free loopback port answering from `exchanges`.
    pub async fn start(exchanges: Vec<Exchange>) -> Result<Self> {
        let recorded = recorded_origin(&exchanges).unwrap_or_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io(e, "cannot open a port for the replay", "127.0.0.1"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(e, "cannot open a port for the replay", "127.0.0.1"))?;
        let origin = format!("http://{addr}");
        let mut answers: HashMap<String, VecDeque<Exchange>> = HashMap::new();
        for x in exchanges {
            let Ok(url) = Url::parse(&x.url) else {
                continue;
            };
            answers
                .entry(key(&x.method, &url))
                .or_default()
                .push_back(x);
        }
        let recording = Arc::new(Mutex::new(Recording {
            answers,
            misses: Vec::new(),
        }));
        let shared = recording.clone();
        let here = origin.clone();
        let recorded_at = recorded.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, recorded, here) = (shared.clone(), recorded.clone(), here.clone());
                let service = hyper::service::service_fn(move |req| {
                    let found = {
                        let url = Url::parse(&format!(
                            "{here}{}",
                            req.uri().path_and_query().map_or("/", |p| p.as_str())
                        ));
                        url.ok().and_then(|u| {
                            shared
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .answer(&key(req.method().as_str(), &u))
                        })
                    };
                    let (recorded, here) = (recorded.clone(), here.clone());
                    async move { respond(found, &recorded, &here).await }
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // a recorded broken exchange ends here, as it did then
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(ReplayServer {
            origin,
            recorded: recorded_at,
            recording,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Requests the recording held no answer for (method, path, query).
    pub fn misses(&self) -> Vec<String> {
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .misses
            .clone()
    }
}

impl ferry_core::ReplayServer for ReplayServer {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn recorded_origin(&self) -> Option<String> {
        (!self.recorded.is_empty()).then(|| self.recorded.clone())
    }

    fn misses(&self) -> Vec<String> {
        ReplayServer::misses(self)
    }
}

type Response = hyper::Response<Full<Bytes>>;

/// The recorded answer, or an error that says it was not recorded.
async fn respond(
    found: Option<Exchange>,
    recorded: &str,
    here: &str,
) -> std::result::Result<Response, std::io::Error> {
    let rewrite = |s: &str| {
        if recorded.is_empty() {
            s.to_string()
        } else {
            s.replace(recorded, here)
        }
    };
    let Some(x) = found else {
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"ferry replay: this request is not in the bundle's recording",
        )));
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(r);
    };
    let Some(status) = x.status else {
        if x.error.as_deref().is_some_and(|e| e.contains("timeout")) {
            // the client's own timeout ends it, with the same error as then
            std::future::pending::<()>().await;
        }
        // a connection closed without an answer: hyper drops it on a service error
        return Err(std::io::Error::other("recorded without an answer"));
    };
    let mut r = Response::new(Full::new(Bytes::from(rewrite(&x.body))));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &x.response_headers {
        let lower = k.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "date"
        ) {
            continue;
        }
        let v = if lower == "link" || lower == "location" {
            rewrite(v)
        } else {
            v.clone()
        };
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            r.headers_mut().append(name, value);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_without_redacted_or_key_parameters_in_any_order() {
        let recorded = Url::parse("http://a:1/v1/x?page=2&api_key=[redacted]&size=5").unwrap();
        let asked = Url::parse("http://127.0.0.1:9/v1/x?size=5&page=2").unwrap();
        assert_eq!(key("GET", &recorded), key("get", &asked));
        let other = Url::parse("http://127.0.0.1:9/v1/x?size=5&page=3").unwrap();
        assert_ne!(key("GET", &recorded), key("GET", &other));
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused_not_left_pointing_elsewhere() {
        for base in [
            "file:///etc/passwd",
            "mailto:ops@example.com",
            "data:text/plain,hi",
        ] {
            let mut s = Map::new();
            s.insert("base_url".into(), base.into());
            let e = source_for_replay(&mut s, Some("http://127.0.0.1:9")).unwrap_err();
            assert!(e.to_string().contains("not http(s)"), "{base}: {e}");
        }
    }

    #[test]
    fn the_source_loses_auth_and_secret_values_and_points_at_the_replay() {
        let mut s: Map<String, Value> = serde_json::from_str(
            r#"{"base_url":"https://api.example.com:8443/v1","auth":{"type":"bearer","token":"${secret:t}"},
                "headers":{"Accept":"application/json","X-Key":"${secret:k}"},
                "streams":[{"name":"a","path":"/a","params":{"sig":"${secret:s}","q":"1"}}]}"#,
        )
        .unwrap();
        source_for_replay(&mut s, Some("http://127.0.0.1:4000")).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("secret:"), "{text}");
        assert_eq!(s["base_url"], "http://127.0.0.1:4000/v1");
        assert_eq!(s["headers"]["Accept"], "application/json");
        assert_eq!(s["streams"][0]["params"]["q"], "1");
    }

    #[test]
    fn credential_headers_and_key_parameters_go_even_in_clear() {
        let mut s: Map<String, Value> = serde_json::from_str(
            r#"{"base_url":"https://api.example.com/v1",
                "headers":{"Accept":"application/json","Authorization":"Basic YTpi","Cookie":"sid=abc","X-Session-Id":"s1"},
                "params":{"api_key":"k1","q":"1"},
                "streams":[{"name":"a","path":"/a","params":{"token":"t1","n":"2"}}]}"#,
        )
        .unwrap();
        source_for_replay(&mut s, None).unwrap();
        let headers: Vec<&String> = s["headers"].as_object().unwrap().keys().collect();
        assert_eq!(headers, ["Accept"]);
        let params: Vec<&String> = s["params"].as_object().unwrap().keys().collect();
        assert_eq!(params, ["q"]);
        let params: Vec<&String> = s["streams"][0]["params"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(params, ["n"]);
    }
}
