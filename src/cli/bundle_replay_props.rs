//! Property test of [`super::build`] (issue 24): whatever a bundle's `replay.toml` says —
//! any source type the registry knows, references at any key, a vault outside the bundle,
//! destinations of its own, or text that is not TOML at all — building the replay never
//! panics, and either refuses or runs the bundle's rows file (or the recorded API on the
//! loopback replay server) into a file inside the bundle, with no reference left.
//!
//! 48 cases, fixed seed; `PROPTEST_CASES=2000 cargo test -p ferry --lib bundle_replay`
//! searches harder.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{build, find_reference};

/// Where an `http` replay's server listens in this test.
const ORIGIN: &str = "http://127.0.0.1:1";

const REFERENCES: &[&str] = &[
    "${secret:api_token}",
    "${env:HOME}",
    "${file:/etc/passwd}",
    "${file:../../outside.key}",
    "x ${secret:a} y",
    "$${not-a-reference}",
    "$$${secret:still_one}",
    "plain",
];

/// The keys a reference is planted at (a dotted path; `streams` is the stream's entry).
const KEYS: &[&str] = &[
    "client",
    "source.url",
    "source.password",
    "source.base_url",
    "source.headers.Authorization",
    "source.headers.X-Trace",
    "source.params.q",
    "source.auth.token",
    "destination.path",
    "destination.url",
    "run.state",
    "run.quarantine",
    "run.vault",
    "streams.query",
    "streams.columns.name",
    "streams.transforms.key",
    "streams.transforms.column",
    "streams.checks.sql",
    "streams.destination.url",
];

const VAULTS: &[&str] = &[
    "client.vault",
    "./sub/client.vault",
    "/etc/ferry/client.vault",
    "../client.vault",
    "sub/../../client.vault",
    "C:\\vault",
    "",
];

const BASE_URLS: &[&str] = &[
    "https://api.example/v1",
    "http://user:pw@API.example:8443/x?k=1",
    "https://[::1]/",
    "file:///etc/passwd",
    "mailto:ops@example.com",
    "data:text/plain,hi",
    "not a url",
];

/// One mutation of a valid bundle's `replay.toml`.
#[derive(Debug, Clone)]
enum Mutation {
    SourceType(String),
    DestinationType(String),
    Reference(&'static str, &'static str),
    Vault(&'static str),
    BaseUrl(&'static str),
    ExtraDestination(String),
    OtherStream,
}

fn mutation(types: Vec<String>) -> impl Strategy<Value = Mutation> {
    let t = proptest::sample::select(types);
    prop_oneof![
        2 => t.clone().prop_map(Mutation::SourceType),
        1 => t.clone().prop_map(Mutation::DestinationType),
        4 => (proptest::sample::select(KEYS), proptest::sample::select(REFERENCES))
            .prop_map(|(k, r)| Mutation::Reference(k, r)),
        1 => proptest::sample::select(VAULTS).prop_map(Mutation::Vault),
        3 => proptest::sample::select(BASE_URLS).prop_map(Mutation::BaseUrl),
        1 => t.prop_map(Mutation::ExtraDestination),
        1 => Just(Mutation::OtherStream),
    ]
}

/// The table at dotted `path` in `top`, made if missing (`streams` is the first entry,
/// `transforms`/`checks` their first element).
fn table_at<'a>(top: &'a mut toml::Table, path: &[&str]) -> &'a mut toml::Table {
    let mut t = top;
    for p in path {
        let v = if *p == "streams" || *p == "transforms" || *p == "checks" {
            let a = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Array(vec![]));
            if !a.is_array() {
                *a = toml::Value::Array(vec![]);
            }
            let a = a.as_array_mut().unwrap();
            if a.first().is_none_or(|x| !x.is_table()) {
                a.insert(0, toml::Table::new().into());
            }
            &mut a[0]
        } else {
            let v = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Table::new().into());
            if !v.is_table() {
                *v = toml::Table::new().into();
            }
            v
        };
        t = v.as_table_mut().unwrap();
    }
    t
}

fn set(top: &mut toml::Table, dotted: &str, value: toml::Value) {
    let parts: Vec<&str> = dotted.split('.').collect();
    let (last, path) = parts.split_last().unwrap();
    table_at(top, path).insert(last.to_string(), value);
}

fn apply(top: &mut toml::Table, m: &Mutation) {
    match m {
        Mutation::SourceType(t) => set(top, "source.type", t.as_str().into()),
        Mutation::DestinationType(t) => set(top, "destination.type", t.as_str().into()),
        Mutation::Reference(k, r) => set(top, k, (*r).into()),
        Mutation::Vault(v) => set(top, "run.vault", (*v).into()),
        Mutation::BaseUrl(u) => set(top, "source.base_url", (*u).into()),
        Mutation::ExtraDestination(t) => {
            set(top, "destinations.extra.type", t.as_str().into());
            set(top, "streams.destination", "extra".into());
        }
        Mutation::OtherStream => {
            let mut other = toml::Table::new();
            other.insert("name".into(), "people".into());
            other.insert("query".into(), "${secret:api_token}".into());
            if let Some(toml::Value::Array(a)) = top.get_mut("streams") {
                a.push(other.into());
            }
        }
    }
}

/// A valid bundle's `replay.toml` (as tests/bundle_attacks.rs writes one), `http` or `file`.
fn valid(http: bool) -> toml::Table {
    let text = if http {
        "client = \"acme\"\n[source]\ntype = \"http\"\nbase_url = \"https://api.example/v1\"\n[[source.streams]]\nname = \"people\"\npath = \"/people\"\n[destination]\ntype = \"file\"\npath = \"replay-out\"\nformat = \"jsonl\"\n[[streams]]\nname = \"people\"\n"
    } else {
        "client = \"acme\"\n[source]\ntype = \"file\"\n[destination]\ntype = \"file\"\npath = \"replay-out\"\nformat = \"jsonl\"\n[[streams]]\nname = \"people\"\ntransforms = [{ type = \"hash\", column = \"id\", key = \"${secret:hash_key}\" }]\n"
    };
    text.parse().unwrap()
}

/// A valid `replay.toml` with up to 4 mutations applied.
fn mutated(types: Vec<String>) -> impl Strategy<Value = (bool, String)> {
    (
        any::<bool>(),
        proptest::collection::vec(mutation(types), 0..5),
    )
        .prop_map(|(http, ms)| {
            let mut top = valid(http);
            for m in &ms {
                apply(&mut top, m);
            }
            (http, toml::to_string(&top).unwrap())
        })
}

/// What `replay.toml` holds: a mutated valid one, or that text cut or with a byte changed.
fn replay_toml(types: Vec<String>) -> impl Strategy<Value = (bool, String)> {
    prop_oneof![
        4 => mutated(types.clone()),
        1 => (mutated(types), any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(
            |((http, text), at, byte, cut)| {
                let mut bytes = text.into_bytes();
                let i = at.index(bytes.len().max(1)).min(bytes.len());
                if cut {
                    bytes.truncate(i);
                } else if i < bytes.len() {
                    bytes[i] = byte;
                }
                (http, String::from_utf8_lossy(&bytes).into_owned())
            }
        ),
    ]
}

/// Whether `path` names a file inside the folder it is relative to.
fn inside(path: &str) -> bool {
    let p = std::path::Path::new(path);
    p.is_relative()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Checks a built config against the rule in the module docs.
fn check(config: &toml::Table, http: bool) -> Result<(), TestCaseError> {
    let source = config["source"].as_table().unwrap();
    if http {
        prop_assert_eq!(source["type"].as_str(), Some("http"));
        // the authority ends at the first `/`: nothing else can follow the server's port
        let base = source.get("base_url").and_then(|b| b.as_str());
        prop_assert!(
            base.is_some_and(|b| b.starts_with(&format!("{ORIGIN}/"))),
            "an http replay reads from elsewhere than the replay server: {:?}",
            source.get("base_url")
        );
        prop_assert!(
            source.get("auth").is_none(),
            "credentials left: {:?}",
            source
        );
    } else {
        prop_assert_eq!(source["type"].as_str(), Some("file"));
        let streams = source["streams"].as_array().unwrap();
        prop_assert_eq!(streams.len(), 1);
        prop_assert_eq!(streams[0]["path"].as_str(), Some("rows.jsonl"));
    }
    let destination = config["destination"].as_table().unwrap();
    prop_assert_eq!(destination["type"].as_str(), Some("file"));
    prop_assert!(inside(destination["path"].as_str().unwrap()));
    prop_assert!(config.get("destinations").is_none());
    let run = config["run"].as_table().unwrap();
    for k in ["state", "quarantine", "vault"] {
        prop_assert!(
            inside(run[k].as_str().unwrap()),
            "[run] {} = {:?}",
            k,
            run[k]
        );
    }
    let streams = config["streams"].as_array().unwrap();
    prop_assert_eq!(streams.len(), 1);
    let mut probe = config.clone();
    if let Some(toml::Value::Array(ss)) = probe.get_mut("streams") {
        for s in ss.iter_mut().filter_map(toml::Value::as_table_mut) {
            prop_assert!(s.get("destination").is_none(), "{:?}", s);
            if let Some(toml::Value::Array(ts)) = s.get_mut("transforms") {
                for t in ts.iter_mut().filter_map(toml::Value::as_table_mut) {
                    if let Some(k) = t.remove("key") {
                        let k = k.as_str().unwrap_or_default().to_string();
                        prop_assert!(
                            !super::has_reference(&k)
                                || (k.starts_with("${file:replay-keys/")
                                    && k.ends_with(".key}")
                                    && inside(&k["${file:".len()..k.len() - 1])),
                            "transform key {:?}",
                            k
                        );
                    }
                }
            }
        }
    }
    let left = find_reference(&probe.into(), "config");
    prop_assert!(left.is_none(), "a reference is left at {:?}", left);
    Ok(())
}

#[test]
fn a_bundle_replay_toml_never_escapes_the_bundle() {
    let types: Vec<String> = crate::registry()
        .all()
        .iter()
        .map(|d| d.name.to_string())
        .collect();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[24; 32]),
    );
    let meta = serde_json::json!({ "client": "acme", "stream": "people" });
    let (built_ok, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&replay_toml(types), |(http, text)| {
            let dir = tempfile::tempdir().unwrap();
            let b = dir.path();
            std::fs::write(
                b.join("schema.json"),
                r#"[{"name":"id","type":"int64","nullable":false},{"name":"name","type":"string","nullable":true}]"#,
            )
            .unwrap();
            std::fs::write(b.join("rows.jsonl"), "{\"id\":1,\"name\":\"Ann\"}\n").unwrap();
            std::fs::write(b.join("exchanges.jsonl"), "").unwrap();
            std::fs::write(b.join("replay.toml"), &text).unwrap();
            match build(b, &meta, "people", http.then_some(ORIGIN)) {
                Err(_) => refused.set(refused.get() + 1),
                Ok(built) => {
                    built_ok.set(built_ok.get() + 1);
                    let config: toml::Table = std::fs::read_to_string(&built.config)
                        .unwrap()
                        .parse()
                        .unwrap();
                    check(&config, http)?;
                }
            }
            Ok(())
        })
        .unwrap();
    // both outcomes were exercised, so the property is not vacuous
    let (built_ok, refused) = (built_ok.get(), refused.get());
    assert!(
        built_ok > 0 && refused > 0,
        "built {built_ok}, refused {refused}"
    );
}
