//! The `ferry` binary, used as a new user would: in a temporary copy of the quickstart.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::cli::{assert_says, ferry, out_split as text, words};
use support::{cli, folder, read};

/// A temp folder holding a copy of examples/quickstart.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("quickstart");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["sync.toml", "orders.toml", "customers.csv"] {
        folder::copy_from_repo(&format!("examples/quickstart/{f}"), &dir, f);
    }
    (tmp, dir)
}

/// Runs `ferry <line>` in `dir`.
fn ferry_line(dir: &Path, line: &str) -> Output {
    ferry(dir, &words(line))
}

fn written(report: &serde_json::Value, stream: &str) -> u64 {
    read::stream(report, stream)["rows_committed"]
        .as_u64()
        .unwrap()
}

#[test]
fn quickstart_sync_then_incremental_rerun() {
    let (_tmp, dir) = quickstart();
    let o = ferry_line(&dir, "sync -c sync.toml -c orders.toml --report r1.json");
    let (out, err) = text(&o);
    assert!(o.status.success(), "sync failed:\n{out}\n{err}");
    assert!(
        out.contains("customers") && out.contains("orders") && out.contains("succeeded"),
        "{out}"
    );
    let r1 = read::json(&dir.join("r1.json"));
    assert_eq!(written(&r1, "customers"), 50);
    assert_eq!(written(&r1, "orders"), 10_000);
    assert!(dir.join("out/quickstart.db").exists());

    // More orders arrive: only those are read; the unchanged CSV is not reread.
    folder::edit(&dir, "orders.toml", "rows = 10000", "rows = 12500");
    let o = ferry_line(&dir, "sync -c sync.toml -c orders.toml --report r2.json");
    assert!(o.status.success(), "{:?}", text(&o));
    let r2 = read::json(&dir.join("r2.json"));
    assert_eq!(
        written(&r2, "customers"),
        0,
        "unchanged file was read again"
    );
    assert_eq!(
        written(&r2, "orders"),
        2_500,
        "incremental rerun did not read exactly the new rows"
    );

    // state show knows both streams; reset makes the next run read everything again
    let o = ferry(&dir, &["state", "show", "-c", "orders.toml"]);
    let (out, _) = text(&o);
    assert!(out.contains("\"orders\"") && out.contains("12500"), "{out}");
    let o = ferry(
        &dir,
        &["state", "reset", "-c", "orders.toml", "--stream", "orders"],
    );
    assert!(text(&o).0.contains("reset state of: orders"));
    // appending the same ids again is refused by the primary key, never silently duplicated
    let o = ferry(&dir, &["sync", "-c", "orders.toml", "--report", "r3.json"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("UNIQUE") && out.contains("upsert"), "{out}");
    assert_eq!(written(&read::json(&dir.join("r3.json")), "orders"), 0);
    // with upsert, a full re-read is idempotent
    folder::edit(
        &dir,
        "orders.toml",
        "mode = \"append\"",
        "mode = \"upsert\"",
    );
    let o = ferry(&dir, &["sync", "-c", "orders.toml", "--report", "r4.json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(written(&read::json(&dir.join("r4.json")), "orders"), 12_500);
}

#[test]
fn limit_is_a_trial_that_saves_no_state() {
    let (_tmp, dir) = quickstart();
    let o = ferry_line(&dir, "sync -c orders.toml --limit 100 --report r.json");
    assert!(o.status.success(), "{:?}", text(&o));
    // a trial reads 100 rows, writes them through SQLite and takes them back
    let r = read::json(&dir.join("r.json"));
    assert_eq!(written(&r, "orders"), 0);
    let orders = read::stream(&r, "orders");
    assert_eq!(orders["rows_read"], 100, "{orders}");
    let o = ferry(&dir, &["state", "show", "-c", "orders.toml"]);
    assert!(
        !text(&o).0.contains("\"orders\""),
        "a --limit run saved state"
    );
}

#[test]
fn check_discover_spec_connectors() {
    let (_tmp, dir) = quickstart();
    let o = ferry(&dir, &["check", "-c", "sync.toml"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("source") && out.contains("destination") && out.matches(" ok").count() == 2,
        "{out}"
    );

    let o = ferry(&dir, &["discover", "-c", "sync.toml"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("customers") && out.contains("balance") && out.contains("decimal(12,2)"),
        "{out}"
    );
    let o = ferry(&dir, &["discover", "-c", "orders.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["streams"][0]["name"], "orders");
    assert_eq!(v["streams"][0]["primary_key"][0], "id");

    let o = ferry(&dir, &["spec", "sqlite"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["destination"]["properties"]["path"].is_object(), "{v}");
    let o = ferry(&dir, &["spec", "sqlit"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("did you mean `sqlite`"));

    let o = ferry(&dir, &["connectors"]);
    let (out, _) = text(&o);
    for c in ["file", "generate", "sqlite"] {
        assert!(out.contains(c), "{out}");
    }
}

#[test]
fn check_names_the_failing_connection() {
    let (_tmp, dir) = quickstart();
    folder::edit(&dir, "sync.toml", "customers.csv", "missing/clients.csv");
    let o = ferry(&dir, &["check", "-c", "sync.toml"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("source") && out.contains("FAILED") && out.contains("missing"),
        "{out}"
    );
    assert!(out.contains("destination") && out.contains("ok"), "{out}");
}

#[test]
fn config_errors_are_positioned_with_a_suggestion() {
    let (_tmp, dir) = quickstart();
    let cases = [
        ("[source]\ntype = \"file\"\npth = \"x.csv\"\n[destination]\ntype = \"sqlite\"\npath = \"o.db\"\n", "did you mean `path`", "sync.toml:3:1"),
        ("[source]\ntype = \"fiel\"\npath = \"x.csv\"\n[destination]\ntype = \"sqlite\"\npath = \"o.db\"\n", "did you mean `file`", "sync.toml:2:8"),
        ("[source]\ntype = \"file\"\npath = \"customers.csv\"\n[destination]\ntype = \"sqlite\"\npath = \"o.db\"\n[[streams]]\nname = \"customer\"\n", "did you mean `customers`", "sync.toml:8:8"),
        ("[source]\ntype = \"file\"\npath = \"customers.csv\"\n[destination]\ntype = \"sqlite\"\npath = 3\n", "invalid type", "sync.toml:6:8"),
        ("[source\ntype = \"file\"\n", "", "sync.toml:1:"),
    ];
    for (cfg, needle, at) in cases {
        folder::write(&dir, "bad.toml", cfg);
        std::fs::copy(dir.join("bad.toml"), dir.join("sync.toml")).unwrap();
        let o = ferry(&dir, &["sync", "-c", "sync.toml"]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "config error must exit 2:\n{err}");
        assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
        assert!(err.contains(at), "expected position `{at}` in:\n{err}");
        assert!(err.contains('^'), "no caret under the error:\n{err}");
    }
}

#[test]
fn completions_generate() {
    let (_tmp, dir) = quickstart();
    for shell in ["bash", "zsh", "fish"] {
        let o = ferry(&dir, &["completions", shell]);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("sync"));
    }
}

#[test]
fn streams_filter_runs_only_the_named_stream() {
    let tmp = folder::with_config("[source]\ntype = \"generate\"\nstreams = [{ name = \"users\", preset = \"users\", rows = 30 }, { name = \"orders\", preset = \"orders\", rows = 40 }]\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n");
    let dir = tmp.path();
    let o = ferry(dir, &["sync", "--streams", "orders", "--report", "r.json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = read::json(&dir.join("r.json"));
    assert_eq!(r["streams"].as_array().unwrap().len(), 1);
    assert_eq!(written(&r, "orders"), 40);
    let o = ferry(dir, &["sync", "--streams", "ordres"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("ordres"), "{:?}", text(&o));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_with_exit_130() {
    let tmp = folder::with_config("[source]\ntype = \"generate\"\nstreams = [{ name = \"bench\", preset = \"bench\", rows = 50000000 }]\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n[[streams]]\nname = \"bench\"\ncursor = \"id\"\n[run]\ncommit_interval_secs = 0\n");
    let dir = tmp.path();
    let child = cli::spawn(dir, &["sync", "--report", "r.json"]);
    // wait until rows are flowing (state is committed at every checkpoint here)
    // the pipeline's state file, `.ferry/state/<pipeline>.json`
    let state_file = || read::state_files(dir).into_iter().next();
    let start = std::time::Instant::now();
    while state_file().is_none() {
        assert!(
            start.elapsed().as_secs() < 60,
            "no state committed within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cli::interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cancelled"), "{stdout}");
    let r = read::json(&dir.join("r.json"));
    let committed = read::json(&state_file().unwrap());
    let id = committed["streams"]["bench"]["state"]["id"]
        .as_u64()
        .unwrap();
    let rows = r["streams"][0]["rows_committed"].as_u64().unwrap();
    assert!(
        id > 0 && id <= rows,
        "committed state id {id} is beyond the {rows} rows written"
    );
    assert!(rows < 50_000_000, "the run was not stopped");
}

#[test]
fn dry_run_shows_rows_and_writes_nothing() {
    let (_tmp, dir) = quickstart();
    let o = ferry(&dir, &["sync", "-c", "sync.toml", "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let says = [
        "would upsert into `customers`",
        "\"id\":1",
        "nothing was written",
    ];
    assert_says(&out, &says, &[]);
    // neither the destination, nor state, receipts or quarantine
    for made in ["out", ".ferry"] {
        assert!(!dir.join(made).exists(), "a dry run created {made}");
    }
}

#[test]
fn clear_text_secret_gets_a_warning() {
    let (_tmp, dir) = quickstart();
    folder::edit(&dir, "sync.toml", "[[streams]]\nname = \"customers\"", "[[streams]]\nname = \"customers\"\ntransforms = [{ type = \"hash\", column = \"email\", key = \"plain-text-key-0123456789\" }]");
    let o = ferry(&dir, &["sync", "-c", "sync.toml", "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    // the warning does not print the secret
    assert_says(
        &err,
        &["clear text", "${secret:NAME}"],
        &["plain-text-key-0123456789"],
    );
}

#[test]
fn filtered_rows_are_counted_and_metadata_carries_the_run_id() {
    let (_tmp, dir) = quickstart();
    folder::write(
        &dir,
        "f.toml",
        "[source]\ntype = \"file\"\npath = \"customers.csv\"\n[destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n[[streams]]\nname = \"customers\"\nmode = \"overwrite\"\ntransforms = [\n  { type = \"filter\", expr = \"id <= 10\" },\n  { type = \"metadata\", columns = [\"_ferry_run_id\"] },\n]\n",
    );
    let o = ferry(&dir, &["sync", "-c", "f.toml", "--report", "r.json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = read::json(&dir.join("r.json"));
    let s = &r["streams"][0];
    assert_eq!(
        (
            s["rows_read"].as_u64(),
            s["rows_committed"].as_u64(),
            s["rows_filtered"].as_u64()
        ),
        (Some(50), Some(10), Some(40))
    );
    let first = &read::jsonl(&dir.join("out/customers.jsonl"))[0];
    assert_eq!(first["_ferry_run_id"], r["run_id"]);
}
