//! A Singer tap is third-party code: it must not get the vault's key (from its own
//! environment or from Ferry's `/proc/<pid>/environ`), and it must not outlive a Ferry
//! killed with SIGKILL, whose leftover config file (resolved secrets) the next run
//! removes. Needs `python3` on PATH (Debian: python3).

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use support::cli::{self, ferry_in, out as text, Setup};
use support::folder::{make_executable, write};
use support::read;

const PASSPHRASE: &str = "canary-passphrase-6c1f0e-vault";
const NEW_PASSPHRASE: &str = "canary-new-passphrase-93ad27";
const TAP_PASSWORD: &str = "canary-tap-password-51b7c4";

/// A tap for these tests: discovery prints one stream `items`; a read writes what the
/// tap can see to the config's `out` (its environment, its parent's environ, its pid and
/// config file), waits while the file `slow` exists in its folder, then sends 3 rows.
const TAP: &str = r#"#!/usr/bin/env python3
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--discover", action="store_true")
p.add_argument("--catalog")
p.add_argument("--state")
a = p.parse_args()
cfg = json.load(open(a.config))
schema = {"type": "object", "properties": {"id": {"type": ["integer"]}}}
if a.discover:
    print(json.dumps({"streams": [{"tap_stream_id": "items", "stream": "items", "schema": schema,
        "key_properties": ["id"], "metadata": [{"breadcrumb": [], "metadata": {"inclusion": "available"}}]}]}))
    sys.exit(0)
try:
    parent = open("/proc/%d/environ" % os.getppid(), "rb").read().decode("utf-8", "replace")
except Exception as e:
    parent = "unreadable: %s" % e
seen = {"env": dict(os.environ), "parent_environ": parent, "pid": os.getpid(),
        "config": os.path.abspath(a.config), "password_ok": cfg.get("password") == cfg.get("expect")}
with open(cfg["out"] + ".tmp", "w") as f:
    json.dump(seen, f)
os.rename(cfg["out"] + ".tmp", cfg["out"])
here = os.path.dirname(os.path.abspath(__file__))
while os.path.exists(os.path.join(here, "slow")):
    time.sleep(0.1)
print(json.dumps({"type": "SCHEMA", "stream": "items", "schema": schema, "key_properties": ["id"]}), flush=True)
for i in range(1, 4):
    print(json.dumps({"type": "RECORD", "stream": "items", "record": {"id": i}}), flush=True)
print(json.dumps({"type": "STATE", "value": {"done": True}}), flush=True)
"#;

fn python_available() {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests run a Singer tap written in Python: install python3 (Debian: apt-get install python3)"
    );
}

fn ferry_cmd(dir: &Path) -> Command {
    let mut c = ferry_in(dir);
    c.passphrase(PASSPHRASE)
        .env("FERRY_NEW_PASSPHRASE", NEW_PASSPHRASE)
        .env("TAP_TEST_PASSWORD", TAP_PASSWORD)
        .env_remove("FERRY_NEW_MASTER_KEY");
    c
}

/// A client folder whose source is the tap above; `password` is how the tap's password
/// is written in its config.
fn folder(dir: &Path, password: &str) {
    write(dir, "tap.py", TAP);
    #[cfg(unix)]
    make_executable(&dir.join("tap.py"));
    write(
        dir,
        "sync.toml",
        format!(
            r#"client = "acme"

[source]
type = "singer"
executable = "./tap.py"
config = {{ out = "{out}", password = "{password}", expect = "{TAP_PASSWORD}" }}
env = {{ TAP_EXTRA = "given" }}

[destination]
type = "file"
path = "out"
format = "jsonl"

[[streams]]
name = "items"
"#,
            out = dir.join("seen.json").display()
        ),
    );
}

fn seen(dir: &Path) -> serde_json::Value {
    read::json(&dir.join("seen.json"))
}

#[test]
fn a_tap_cannot_read_the_vault_key() {
    python_available();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    folder(dir, "${secret:tap_pw}");
    let o = ferry_cmd(dir).run(&["secrets", "set", "tap_pw"], Some(TAP_PASSWORD));
    assert!(o.status.success(), "{}", text(&o));

    let o = ferry_cmd(dir).run(&["sync"], None);
    assert!(o.status.success(), "{}", text(&o));
    let seen = seen(dir);
    // the tap got what it needs: its config (secret resolved) and its `env`
    assert_eq!(seen["password_ok"], true, "{seen:#}");
    let env = seen["env"].as_object().unwrap();
    assert_eq!(env["TAP_EXTRA"], "given", "{seen:#}");
    assert!(env.contains_key("PATH"), "{seen:#}");
    // and nothing of Ferry's: no FERRY_* variable, no unrelated variable, no key anywhere
    let ferry_vars: Vec<_> = env.keys().filter(|k| k.starts_with("FERRY_")).collect();
    assert!(ferry_vars.is_empty(), "{ferry_vars:?}");
    assert!(!env.contains_key("TAP_TEST_PASSWORD"), "{seen:#}");
    let all = seen.to_string();
    for key in [PASSPHRASE, NEW_PASSPHRASE] {
        assert!(!all.contains(key), "the tap saw `{key}`:\n{seen:#}");
    }
    // Ferry's own environment block (what /proc/<pid>/environ shows) no longer holds it,
    // whether or not the tap may read it (root may, other users are stopped by
    // PR_SET_DUMPABLE)
    let parent = seen["parent_environ"].as_str().unwrap();
    for key in [PASSPHRASE, NEW_PASSPHRASE] {
        assert!(!parent.contains(key), "{parent}");
    }
}

fn alive(pid: u64) -> bool {
    // a zombie (state Z) has ended; it waits only for its new parent to reap it
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "waited {secs} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_sync_leaves_no_tap_and_its_config_file_is_swept() {
    use std::os::unix::fs::PermissionsExt;
    python_available();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    folder(dir, "${env:TAP_TEST_PASSWORD}");
    write(dir, "slow", "");

    let mut ferry = cli::process_in(dir);
    ferry
        .arg("sync")
        .env("FERRY_PASSPHRASE", PASSPHRASE)
        .env("TAP_TEST_PASSWORD", TAP_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut ferry = ferry.spawn().unwrap();
    wait_for("the tap to start reading", 60, || {
        dir.join("seen.json").exists()
    });
    let seen = seen(dir);
    let tap_pid = seen["pid"].as_u64().unwrap();
    let config = PathBuf::from(seen["config"].as_str().unwrap());
    // the tap's config (a resolved secret in it) is private and in the client folder
    assert_eq!(
        config.parent().unwrap(),
        dir.canonicalize().unwrap().join(".ferry/tmp"),
        "{seen:#}"
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", config.display());
    let dir_mode = std::fs::metadata(config.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains(TAP_PASSWORD));
    assert!(alive(tap_pid));

    ferry.kill().unwrap(); // SIGKILL: no destructor, no cleanup in Ferry
    let status = ferry.wait().unwrap();
    assert!(!status.success());
    wait_for("the tap to die with Ferry", 10, || !alive(tap_pid));
    assert!(config.exists(), "nothing can delete it on SIGKILL");

    std::fs::remove_file(dir.join("slow")).unwrap();
    std::fs::remove_file(dir.join("seen.json")).unwrap();
    let o = ferry_cmd(dir).run(&["sync"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        !config.exists(),
        "the next run did not sweep {}",
        config.display()
    );
    let mut left = String::new();
    for e in std::fs::read_dir(dir.join(".ferry/tmp")).unwrap() {
        let p = e.unwrap().path();
        let mut body = String::new();
        std::fs::File::open(&p)
            .unwrap()
            .read_to_string(&mut body)
            .unwrap();
        left.push_str(&format!("{}: {body}\n", p.display()));
    }
    assert!(left.is_empty(), "files left after a clean run:\n{left}");
}
