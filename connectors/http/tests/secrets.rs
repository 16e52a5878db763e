//! No secret value reaches an error's Display or Debug, or the logs at trace level
//! (what `ferry -vv` shows): api key (header and query), bearer token, basic password,
//! OAuth 2.0 client secret and fetched token, webhook secret.

mod common;

use common::{start, Api, Need};
use ferry_connector_http::{HttpSource, WebhookSink};
use ferry_core::{Error, ReadRequest, Sink, Source};
use ferry_testkit::CapturedLog;
use futures::StreamExt;

const CANARIES: [&str; 5] = [
    "canary-apikey-9f3e",
    "canary-bearer-7d1a",
    "canary-basic-3c8b",
    "canary-client-5e2c",
    "canary-whsec-1a4d",
];

fn source(api: &Api, extra: &str, path: &str) -> HttpSource {
    let text = format!(
        "base_url = \"{}\"\nretry = {{ attempts = 2, initial_backoff_ms = 10 }}\n{extra}\n\
         [[streams]]\nname = \"s\"\npath = \"{path}\"\nrecords = \"data\"\npagination = {{ type = \"page\" }}\n",
        api.url
    );
    ferry_testkit::from_toml(&text, ".", |c, _| HttpSource::new(c)).unwrap()
}

/// The error of a check of `/page/customers` with `auth`, which the API refuses.
async fn refused(api: &Api, auth: &str) -> Error {
    source(api, auth, "/page/customers")
        .check()
        .await
        .unwrap_err()
}

async fn read(s: &HttpSource) -> Result<usize, Error> {
    let mut m = s.read(ReadRequest::full("s")).await?;
    let mut n = 0;
    while let Some(x) = m.next().await {
        x?;
        n += 1;
    }
    Ok(n)
}

#[tokio::test]
async fn no_secret_in_errors_or_trace_logs() {
    let buf = CapturedLog::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = start().await;
    let mut errors: Vec<Error> = Vec::new();

    // api key in the query: a success, a 503 burst that runs out, a refused key
    api.need(Need::QueryKey(CANARIES[0].into()));
    let q = format!(
        "auth = {{ type = \"api_key\", name = \"api_key\", value = \"{}\", in = \"query\" }}",
        CANARIES[0]
    );
    assert!(read(&source(&api, &q, "/page/customers")).await.unwrap() > 0);
    api.need(Need::Nothing);
    api.state
        .flaky_left
        .store(100, std::sync::atomic::Ordering::SeqCst);
    errors.push(source(&api, &q, "/flaky").check().await.unwrap_err());
    api.need(Need::QueryKey("another-key".into()));
    errors.push(refused(&api, &q).await);
    // the same key in a header, refused
    let h = format!(
        "auth = {{ type = \"api_key\", name = \"X-Api-Key\", value = \"{}\" }}",
        CANARIES[0]
    );
    errors.push(refused(&api, &h).await);
    // bearer and basic, refused
    let b = format!(
        "auth = {{ type = \"bearer\", token = \"{}\" }}",
        CANARIES[1]
    );
    errors.push(refused(&api, &b).await);
    let p = format!(
        "auth = {{ type = \"basic\", username = \"u\", password = \"{}\" }}",
        CANARIES[2]
    );
    errors.push(refused(&api, &p).await);
    // OAuth 2.0: a good client (tokens fetched and used), then a refused one
    {
        let mut o = api.state.oauth.lock().unwrap();
        o.client_id = "ferry".into();
        o.client_secret = CANARIES[3].into();
        o.expires_in = 3600;
    }
    api.need(Need::OAuth);
    let o = format!(
        "auth = {{ type = \"oauth2\", token_url = \"{}/oauth/token\", client_id = \"ferry\", client_secret = \"{}\" }}",
        api.url, CANARIES[3]
    );
    assert!(read(&source(&api, &o, "/page/customers")).await.unwrap() > 0);
    api.state.oauth.lock().unwrap().client_secret = "rotated".into();
    errors.push(refused(&api, &o).await);
    // webhook: a receiver with another secret refuses the batch
    api.state.hooks.lock().unwrap().secret = "receiver-secret".into();
    let text = format!(
        "url = \"{}/hook/x\"\nsecret = \"{}\"\nretry = {{ attempts = 2, initial_backoff_ms = 10 }}",
        api.url, CANARIES[4]
    );
    let sink = ferry_testkit::from_toml(&text, ".", |c, _| WebhookSink::new(c)).unwrap();
    let schema = ferry_testkit::simple_batch(1, 0, "").schema();
    let request = ferry_testkit::request("x", schema, ferry_core::WriteMode::Append);
    let mut w = sink.open(request).await.unwrap();
    w.write(ferry_testkit::simple_batch(1, 2, "a"))
        .await
        .unwrap();
    errors.push(w.flush().await.unwrap_err());

    let issued = api.state.oauth.lock().unwrap().issued.clone();
    assert!(!issued.is_empty());
    let logs = buf.text();
    assert!(
        logs.contains("HTTP request") && logs.contains("retrying"),
        "trace logs were not captured:\n{logs}"
    );
    // the key is added to each attempt's URL; the URL logged and shown never has it
    assert!(
        logs.contains("/flaky?page=1 "),
        "the URL is not logged:\n{logs}"
    );
    let texts: Vec<String> = errors.iter().map(|e| format!("{e} | {e:?}")).collect();
    assert_eq!(texts.len(), 7);
    for t in &texts {
        for c in CANARIES
            .iter()
            .map(|c| c.to_string())
            .chain(issued.iter().cloned())
        {
            assert!(!t.contains(&c), "error shows a secret: {t}");
            assert!(
                !logs.contains(&c),
                "trace logs show a secret `{c}`:\n{logs}"
            );
        }
    }
    // and the errors still say what failed
    assert!(
        texts[0].contains("503") && texts[0].contains("/flaky?page=1"),
        "{}",
        texts[0]
    );
}
