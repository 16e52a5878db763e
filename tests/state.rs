//! State belongs to one pipeline (a config file and its destination), one run of a
//! pipeline at a time, and older folder-wide state files are taken over once; state and
//! vault writes never follow a planted symlink (receipts share their writer:
//! `ferry_engine::state::write_atomic`, tested with planted names in its module).

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::cli::{self, exits_saying, ferry_in, out as all, Setup};
use support::folder::{self, write};
use support::read::state_files;
use support::sqlite;

const PASSPHRASE: &str = "correct horse battery staple";

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir).passphrase(PASSPHRASE).run(args, None)
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = ferry(dir, args);
    assert!(o.status.success(), "ferry {args:?} failed:\n{}", all(&o));
    o
}

/// `src.db` with `customers` rows `from..=to` (updated_at grows with id).
fn add_customers(dir: &Path, from: u32, to: u32) {
    let db = rusqlite::Connection::open(dir.join("src.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )
    .unwrap();
    for i in from..=to {
        db.execute(
            "INSERT INTO customers VALUES (?1, ?2, ?3)",
            rusqlite::params![
                i,
                format!("customer {i}"),
                format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60)
            ],
        )
        .unwrap();
    }
}

/// The folder: `sync.toml` (sqlite → sqlite) and `deliver.toml` (sqlite → file),
/// both reading `customers` by `updated_at`.
fn client_folder(rows: u32) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    add_customers(dir, 1, rows);
    let source = "[source]\ntype = \"sqlite\"\npath = \"src.db\"\n";
    let stream = "[[streams]]\nname = \"customers\"\ncursor = \"updated_at\"\n";
    write(
        dir,
        "sync.toml",
        format!("{source}[destination]\ntype = \"sqlite\"\npath = \"dest.db\"\n{stream}"),
    );
    write(
        dir,
        "deliver.toml",
        format!("{source}[destination]\ntype = \"file\"\npath = \"out\"\n{stream}"),
    );
    tmp
}

fn dest_rows(dir: &Path) -> u64 {
    sqlite::rows(&dir.join("dest.db"), "customers").unwrap()
}

/// Data lines of the delivered CSV (the header not counted).
fn csv_rows(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("out/customers.csv")).unwrap();
    text.lines().count().saturating_sub(1)
}

#[test]
fn two_configs_in_one_folder_keep_their_own_state() {
    let tmp = client_folder(100);
    let dir = tmp.path();
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert_eq!(dest_rows(dir), 100);
    // before: the second config found the first one's cursor and delivered a bare header
    ok(dir, &["sync", "-c", "deliver.toml"]);
    assert_eq!(csv_rows(dir), 100, "deliver.toml did not read its 100 rows");
    assert_eq!(state_files(dir).len(), 2, "{:?}", state_files(dir));

    // each keeps its own cursor: a rerun reads only what is new
    add_customers(dir, 101, 110);
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert_eq!(dest_rows(dir), 110);
    ok(dir, &["sync", "-c", "deliver.toml"]);
    assert_eq!(csv_rows(dir), 110);

    // show and reset are per pipeline
    let shown = all(&ok(dir, &["state", "show", "-c", "deliver.toml"]));
    assert!(
        shown.contains("\"config\": \"deliver.toml\"") && shown.contains("customers"),
        "{shown}"
    );
    let reset = all(&ok(dir, &["state", "reset", "-c", "deliver.toml"]));
    assert!(
        reset.contains("reset state of: customers") && reset.contains("deliver.toml → file"),
        "{reset}"
    );
    let kept = all(&ok(
        dir,
        &["state", "show", "-c", "sync.toml", "--stream", "customers"],
    ));
    assert!(kept.contains("2026-01-01T00:01:50Z"), "{kept}");
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert_eq!(dest_rows(dir), 110, "sync.toml's cursor moved");
}

#[test]
fn a_folder_wide_state_file_is_taken_over_once_by_the_first_pipeline() {
    let tmp = client_folder(60);
    let dir = tmp.path();
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert_eq!(dest_rows(dir), 60);
    // turn its state into what Ferry before format 2 kept: one .ferry/state.json, version 1
    let [file] = state_files(dir).try_into().unwrap();
    let mut v1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v1["version"] = 1.into();
    v1.as_object_mut().unwrap().remove("pipeline");
    std::fs::remove_file(&file).unwrap();
    let legacy = dir.join(".ferry/state.json");
    std::fs::write(&legacy, serde_json::to_vec_pretty(&v1).unwrap()).unwrap();
    add_customers(dir, 61, 100);

    let o = ok(dir, &["sync", "-c", "sync.toml"]);
    let err = String::from_utf8_lossy(&o.stderr);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("now belongs to pipeline"))
        .collect();
    assert_eq!(notes.len(), 1, "not one take-over line:\n{err}");
    assert!(
        notes[0].contains(".ferry/state.json")
            && notes[0].contains("`sync.toml → sqlite path=dest.db`")
            && notes[0].contains("other configs of this folder start from scratch"),
        "{}",
        notes[0]
    );
    assert_eq!(dest_rows(dir), 100, "the taken-over cursor was not used");
    assert!(!legacy.exists(), "the old file is still there for others");

    // the other config starts fresh, and nobody is told again
    let o = ok(dir, &["sync", "-c", "deliver.toml"]);
    assert!(!all(&o).contains("now belongs"), "{}", all(&o));
    assert_eq!(csv_rows(dir), 100);
    let o = ok(dir, &["sync", "-c", "sync.toml"]);
    assert!(!all(&o).contains("now belongs"), "{}", all(&o));
    assert_eq!(dest_rows(dir), 100);
}

#[test]
fn an_explicit_state_file_belongs_to_one_pipeline() {
    let tmp = client_folder(10);
    let dir = tmp.path();
    for f in ["sync.toml", "deliver.toml"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        std::fs::write(
            dir.join(f),
            format!("{text}[run]\nstate = \"shared-state.json\"\n"),
        )
        .unwrap();
    }
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert!(dir.join("shared-state.json").exists());
    let o = ferry(dir, &["sync", "-c", "deliver.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    let text = all(&o);
    assert!(
        text.contains("belongs to pipeline `sync.toml → sqlite path=dest.db`")
            && text.contains("shared-state.json"),
        "{text}"
    );
    assert!(!dir.join("out/customers.csv").exists());
}

#[test]
fn state_commands_name_the_streams_when_the_stream_is_unknown() {
    let tmp = client_folder(5);
    let dir = tmp.path();
    ok(dir, &["sync", "-c", "sync.toml"]);
    for cmd in ["reset", "show"] {
        let o = ferry(
            dir,
            &["state", cmd, "-c", "sync.toml", "--stream", "customer"],
        );
        assert_eq!(o.status.code(), Some(2), "state {cmd}: {}", all(&o));
        let text = all(&o);
        assert!(
            text.contains("no stream `customer`")
                && text.contains("did you mean `customers`?")
                && text.contains("streams it knows: `customers`"),
            "state {cmd}: {text}"
        );
        // a hint about --stream, not about fixing a config file that has no error
        assert!(
            text.contains("hint: give --stream one of the streams named above")
                && !text.contains("fix the configuration file")
                && !text.contains("fix the stream's entry"),
            "state {cmd}: {text}"
        );
    }
    // nothing was reset
    let kept = all(&ok(
        dir,
        &["state", "show", "-c", "sync.toml", "--stream", "customers"],
    ));
    assert!(
        kept.contains("updated_at") || kept.contains("2026"),
        "{kept}"
    );
}

/// A sync of 50 M generated rows: runs until killed.
fn slow_folder() -> tempfile::TempDir {
    folder::with_config(
        "[source]\ntype = \"generate\"\nstreams = [{ name = \"bench\", preset = \"bench\", rows = 50000000 }]\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n[[streams]]\nname = \"bench\"\ncursor = \"id\"\n",
    )
}

/// Starts `ferry sync` and waits until it holds the pipeline's lock (its name is in it).
// the caller kills and waits for the child it gets back
#[allow(clippy::zombie_processes)]
fn start_holder(dir: &Path) -> std::process::Child {
    let mut child = cli::spawn_quiet(dir, &["sync", "-c", "sync.toml"]);
    let start = Instant::now();
    let pid = format!("\"pid\":{}", child.id());
    loop {
        let held = std::fs::read_dir(dir.join(".ferry/locks"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&pid)));
        if held {
            return child;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the first sync did not take the lock within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_run_of_one_pipeline_is_refused_naming_the_first() {
    let tmp = slow_folder();
    let dir = tmp.path();
    let mut first = start_holder(dir);
    let o = ferry(dir, &["sync", "-c", "sync.toml"]);
    let text = all(&o);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pipeline `sync.toml → sqlite path=out.db` is already in use by sync run")
            && text.contains(&format!("(pid {} on ", first.id())),
        "{text}"
    );
    // its own next step, not the generic "retry" of a temporary failure
    assert!(
        text.contains("hint: wait for the run named above to end, or stop it")
            && !text.contains("the failure looked temporary"),
        "{text}"
    );
    // a reset would pull the state from under the run: refused too
    // (checked after the kill above would be too late, so use a second holder)
    let mut second = start_holder(dir);
    let o = ferry(dir, &["state", "reset", "-c", "sync.toml"]);
    let _ = second.kill();
    let _ = second.wait();
    exits_saying(&o, 1, "already in use by sync run");
}

#[test]
fn a_killed_run_does_not_block_the_next() {
    let tmp = slow_folder();
    let dir = tmp.path();
    let mut first = start_holder(dir);
    // SIGKILL: no handler, no clean-up, as a crash
    first.kill().unwrap();
    first.wait().unwrap();
    let o = ok(dir, &["sync", "-c", "sync.toml", "--limit", "100"]);
    assert!(!all(&o).contains("already in use"), "{}", all(&o));
}

#[test]
#[cfg(unix)]
fn state_vault_and_receipt_writes_do_not_follow_planted_symlinks() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let tmp = client_folder(5);
    let dir = tmp.path();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;

    // the vault's path is a symlink to a file elsewhere
    std::fs::create_dir_all(dir.join(".ferry/receipts")).unwrap();
    let vault = dir.join(".ferry/secrets.vault");
    symlink(&victim, &vault).unwrap();
    let o = ferry(dir, &["keys", "generate", "signing"]);
    // an existing (symlinked) vault that is not a vault may be refused; either way the
    // file it points to is never written
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    if o.status.success() {
        assert!(std::fs::symlink_metadata(&vault).unwrap().is_file());
        assert_eq!(mode(&vault), 0o600);
    } else {
        std::fs::remove_file(&vault).unwrap();
        ok(dir, &["keys", "generate", "signing"]);
        assert_eq!(mode(&vault), 0o600);
    }

    // the pipeline's state file replaced by a symlink to a copy elsewhere
    ok(dir, &["sync", "-c", "sync.toml"]);
    let [state] = state_files(dir).try_into().unwrap();
    let copy = outside.path().join("state-copy.json");
    std::fs::rename(&state, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::read(&copy).unwrap();
    symlink(&copy, &state).unwrap();
    add_customers(dir, 6, 8);
    ok(dir, &["sync", "-c", "sync.toml"]);
    assert_eq!(dest_rows(dir), 8);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "written through the link"
    );
    assert!(std::fs::symlink_metadata(&state).unwrap().is_file());
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .contains("\"version\": 2"));
    // no temporary file is left beside them
    for d in [".ferry", ".ferry/state", ".ferry/receipts"] {
        for e in std::fs::read_dir(dir.join(d)).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.ends_with(".tmp"), "{d}/{n} left behind");
        }
    }
}
