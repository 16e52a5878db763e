//! Property tests of the paths an attacker steers (issue 24): where a redirect may lead,
//! and which forms of a basic-auth password the leak guard scrubs.
//!
//! Bounded (48 cases, fixed seed) so `cargo test` stays fast and repeatable;
//! `PROPTEST_CASES=2000 cargo test -p ferry-connector-http --lib props` searches harder.

use std::sync::{Arc, Mutex};

use base64::Engine;
use ferry_core::Secret;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::auth::Auth;
use crate::client::{HttpClient, RequestSpec};
use crate::config::{AuthConfig, ClientSettings, RetryConfig};

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[24; 32]),
    )
}

// ---------------------------------------------------------------------------------------
// Redirects

/// A `Location` aimed near the loopback server on `port`: the same origin written many
/// ways (IPv4 in other notations, uppercase, userinfo, explicit port) and other origins
/// close to it (scheme, host, port off by one), none of which is ever connected to.
fn location(port: u16) -> impl Strategy<Value = String> {
    let scheme = prop_oneof![Just("http"), Just("HTTP"), Just("https"), Just("Http")];
    let host = prop_oneof![
        Just("127.0.0.1"),
        Just("127.1"),
        Just("0x7f.0.0.1"),
        Just("2130706433"),
        Just("0177.0.0.1"),
        Just("127.0.0.2"),
        Just("localhost"),
        Just("LOCALHOST"),
        Just("[::1]"),
        Just("[::ffff:127.0.0.1]"),
        Just("xn--bcher-kva.example"),
        Just("bücher.example"),
        Just("EXAMPLE.com"),
    ];
    let userinfo = prop_oneof![Just(""), Just("u@"), Just("u:p@"), Just("127.0.0.1@")];
    let port = prop_oneof![
        Just(format!(":{port}")),
        Just(format!(":0{port}")),
        Just(String::new()),
        Just(":80".to_string()),
        Just(":443".to_string()),
        Just(format!(":{}", port.wrapping_add(1))),
    ];
    let path = "(/[a-zA-Z0-9%._~-]{0,6}){0,3}";
    (scheme, userinfo, host, port, path)
        .prop_map(|(s, u, h, p, path)| format!("{s}://{u}{h}{p}{path}"))
}

/// What the server saw: each request's head.
type Seen = Arc<Mutex<Vec<String>>>;

/// A loopback server answering `/start` with a 302 to `to`, anything else with 200.
async fn serve(listener: tokio::net::TcpListener, to: Arc<Mutex<String>>, seen: Seen) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let answer = if head.starts_with("GET /start ") {
            let to = to.lock().unwrap().clone();
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
        };
        seen.lock().unwrap().push(head);
        let _ = sock.write_all(answer.as_bytes()).await;
        let _ = sock.shutdown().await;
    }
}

fn settings() -> ClientSettings {
    ClientSettings {
        headers: vec![("X-Api-Key".into(), "redirect-prop-key-5e1f".into())],
        auth: None,
        requests_per_second: None,
        burst: 1,
        retry: RetryConfig {
            attempts: 1,
            ..RetryConfig::default()
        },
        timeout_secs: 5.0,
        connect_timeout_secs: 2.0,
        max_body_bytes: 1 << 20,
    }
}

/// A redirect is followed iff its target has the origin (scheme, host, port, as the `url`
/// crate computes it) of the first request; no request carries `Referer`.
#[test]
fn redirects_are_followed_only_within_the_origin() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let to = Arc::new(Mutex::new(String::new()));
    let seen: Seen = Arc::default();
    rt.spawn(serve(listener, to.clone(), seen.clone()));
    let client = HttpClient::new(&settings()).unwrap();
    let start = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();

    runner()
        .run(&location(port), |target| {
            let Ok(parsed) = Url::parse(&target) else {
                return Ok(()); // not a URL: nothing to follow
            };
            *to.lock().unwrap() = target.clone();
            seen.lock().unwrap().clear();
            let same = parsed.origin() == start.origin();
            let got = rt.block_on(client.execute(&RequestSpec::get(start.clone(), "page 1")));
            let heads = seen.lock().unwrap().clone();
            prop_assert_eq!(
                got.is_ok(),
                same,
                "{} (same origin: {}): {:?}",
                target,
                same,
                got.as_ref().err()
            );
            prop_assert_eq!(heads.len(), if same { 2 } else { 1 }, "{}", target);
            for h in &heads {
                prop_assert!(
                    !h.to_ascii_lowercase().contains("\r\nreferer:"),
                    "a request carried Referer: {}",
                    h
                );
            }
            if !same {
                let msg = got.unwrap_err().to_string();
                prop_assert!(msg.contains("another origin"), "{}", msg);
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Derived secret forms

/// Every byte but the unreserved ones as `%XX` (RFC 3986), in either hex case.
fn percent_encode(s: &str, upper: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// 4 to 16 characters of any kind, some of them ones URL- and base64 encoding change.
fn credential() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => any::<char>(),
            2 => proptest::char::range('a', 'z'),
            1 => proptest::sample::select(vec![' ', ':', '@', '/', '+', '=', '%', '&', 'é', '🚢']),
        ],
        4..16,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// With a basic-auth password registered as the connector registers it, a text holding
/// the password, base64 of `user:password` and the password URL-encoded is printed with
/// none of them.
#[test]
fn basic_auth_forms_are_redacted() {
    runner()
        .run(&(credential(), credential()), |(user, password)| {
            let config = AuthConfig::Basic {
                username: user.clone(),
                password: Secret::new(password.clone()),
            };
            let _auth = Auth::new(Some(config));
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let forms = [
                password.clone(),
                b64,
                percent_encode(&password, true),
                url::form_urlencoded::byte_serialize(password.as_bytes()).collect(),
            ];
            let text = format!(
                "pw={}\nAuthorization: Basic {}\nurl=https://api.example/?p={}&q={}\n",
                forms[0], forms[1], forms[2], forms[3]
            );
            // a form that occurs in the filler itself could not be told from a leak
            let filler = "pw=[redacted]\nAuthorization: Basic [redacted]\nurl=https://api.example/?p=[redacted]&q=[redacted]\n";
            prop_assume!(forms.iter().all(|f| !filler.contains(f.as_str())));
            let out = ferry_core::redact::redact(&text);
            for f in &forms {
                prop_assert!(!out.contains(f.as_str()), "{:?} left in {:?}", f, out);
            }
            Ok(())
        })
        .unwrap();
}
