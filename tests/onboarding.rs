//! Onboarding, driven as a person would: `ferry init` a client folder and sync from it
//! without an edit; `ferry new-connector` into a stand-in workspace; the custom connector
//! example runs.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::cli::{exits_saying, ferry, out_apart as text, words};
use support::folder;

/// `o` succeeded and printed `needle` on stdout.
fn succeeds_printing(o: &std::process::Output, needle: &str) {
    assert!(o.status.success(), "{}", text(o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(needle),
        "{}",
        text(o)
    );
}

#[test]
fn init_makes_a_folder_that_syncs_without_an_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ferry(
        tmp.path(),
        &words("init acme --source generate --destination sqlite"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let dir = tmp.path().join("acme");
    for f in ["sync.toml", ".gitignore", "README.md"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(dir.join(".ferry").is_dir());
    let cfg = std::fs::read_to_string(dir.join("sync.toml")).unwrap();
    assert!(cfg.contains("client = \"acme\""), "{cfg}");
    assert!(cfg.contains("type = \"generate\""), "{cfg}");
    assert!(cfg.contains("path = \"out/acme.db\""), "{cfg}");
    // optional fields are there, commented out, with their doc
    assert!(cfg.contains("\n# seed = 42\n"), "{cfg}");
    assert!(cfg.contains("# Seed of every generated value"), "{cfg}");
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    for entry in [".ferry/", "*.db", "out/"] {
        assert!(ignore.lines().any(|l| l == entry), "{entry}: {ignore}");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for cmd in [
        "ferry secrets set",
        "ferry check",
        "ferry discover",
        "ferry sync --limit 100",
        "ferry sync ",
    ] {
        assert!(readme.contains(cmd), "{cmd}: {readme}");
    }

    let o = ferry(&dir, &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));

    // the README's order: a trial, the real run, a rerun that finds nothing new
    let o = ferry(&dir, &["sync", "--limit", "100"]);
    succeeds_printing(
        &o,
        "200 rows read, 200 written and rolled back (trial), 0 kept",
    );
    let o = ferry(&dir, &["sync"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains("users") && out.contains("orders"), "{out}");
    assert!(out.contains("6,000 rows read, 6,000 committed"), "{out}");
    assert!(dir.join("out/acme.db").is_file());
    let o = ferry(&dir, &["sync"]);
    succeeds_printing(&o, "0 rows read, 0 committed");
}

#[test]
fn init_defaults_to_files_and_says_where_they_go() {
    let tmp = tempfile::tempdir().unwrap();
    // stdin is not a terminal here: no questions, the defaults
    let o = ferry(tmp.path(), &["init", "globex", "--dir", "clients/globex"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = tmp.path().join("clients/globex");
    let cfg = std::fs::read_to_string(dir.join("sync.toml")).unwrap();
    assert!(cfg.contains("client = \"globex\""), "{cfg}");
    assert!(cfg.contains("type = \"file\"") && cfg.contains("type = \"sqlite\""));
    assert!(cfg.contains("\npath = \"data/*.csv\"\n"), "{cfg}");
    assert!(dir.join("data").is_dir());
    // no data yet: check fails, and says what it looked for
    let o = ferry(&dir, &["check"]);
    exits_saying(&o, 1, "data/*.csv");
    exits_saying(&o, 1, "put the client's files in that folder");

    folder::write(&dir, "data/customers.csv", "id,name\n1,Ada\n2,Grace\n");
    let o = ferry(&dir, &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ferry(&dir, &["sync"]);
    succeeds_printing(&o, "2 rows read, 2 committed");
}

#[test]
fn init_never_overwrites_and_suggests_connectors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("acme")).unwrap();
    folder::write(tmp.path(), "acme/notes.txt", "mine");
    let o = ferry(tmp.path(), &["init", "acme"]);
    exits_saying(&o, 2, "already exists");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("acme")).unwrap().count(),
        1,
        "init touched an existing folder"
    );
    // an existing empty folder is fine
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let o = ferry(tmp.path(), &["init", "empty", "--source", "generate"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = ferry(tmp.path(), &["init", "x", "--source", "sqlit"]);
    exits_saying(&o, 2, "did you mean `sqlite`");
    let o = ferry(tmp.path(), &["init", "x", "--destination", "generate"]);
    exits_saying(&o, 2, "cannot be a destination");
    assert!(
        !tmp.path().join("x").exists(),
        "a refused init left a folder"
    );
}

/// Every file under `dir`, relative path → contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    folder::files(dir)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// A stand-in workspace: the real root Cargo.toml and src/lib.rs, an empty connectors/.
/// (Compiling a generated connector is proven by hand; see the crate's conformance test.)
fn stand_in_workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("src")).unwrap();
    std::fs::create_dir_all(tmp.path().join("connectors")).unwrap();
    for f in ["Cargo.toml", "src/lib.rs"] {
        folder::copy_from_repo(f, tmp.path(), f);
    }
    tmp
}

#[test]
fn new_connector_writes_a_crate_and_registers_it_once() {
    let ws = stand_in_workspace();
    let before = snapshot(ws.path());
    // run from a subfolder: the workspace is found by walking up
    let o = ferry(
        &ws.path().join("src"),
        &["new-connector", "acme-erp", "--source", "--sink"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let after = snapshot(ws.path());
    let dir = Path::new("connectors/acme-erp");
    for f in [
        "Cargo.toml",
        "README.md",
        "src/lib.rs",
        "src/config.rs",
        "src/source.rs",
        "src/sink.rs",
        "tests/conformance.rs",
    ] {
        assert!(after.contains_key(&dir.join(f)), "{f} missing");
    }
    let manifest = &after[Path::new("connectors/acme-erp/Cargo.toml")];
    assert!(
        manifest.contains("name = \"ferry-connector-acme-erp\""),
        "{manifest}"
    );
    let lib = &after[Path::new("connectors/acme-erp/src/lib.rs")];
    assert!(
        lib.contains("ferry_core::connector! {\n    name: \"acme-erp\","),
        "{lib}"
    );
    let config = &after[Path::new("connectors/acme-erp/src/config.rs")];
    assert!(
        config.contains("deny_unknown_fields") && config.contains("JsonSchema"),
        "{config}"
    );
    let test = &after[Path::new("connectors/acme-erp/tests/conformance.rs")];
    assert!(test.contains("testkit::run_source_suite"), "{test}");
    assert!(test.contains("testkit::run_sink_suite"), "{test}");
    for f in ["src/source.rs", "src/sink.rs"] {
        assert!(
            !after[&dir.join(f)].contains("todo!"),
            "{f} is not implemented"
        );
    }

    // the two registration lines, each in sorted place, the only lines added
    let in_sorted_place = |file: &str, prefix: &str, line: &str| {
        let text = &after[Path::new(file)];
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(prefix))
            .collect();
        assert!(lines.contains(&line), "{text}");
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted, "{file}");
        // the one line more
        let was = &before[Path::new(file)];
        assert_eq!(text.lines().count(), was.lines().count() + 1, "{file}");
    };
    in_sorted_place(
        "Cargo.toml",
        "ferry-connector-",
        "ferry-connector-acme-erp = { path = \"connectors/acme-erp\" }",
    );
    in_sorted_place(
        "src/lib.rs",
        "ferry_connector_",
        "ferry_connector_acme_erp::register(&mut r);",
    );
    // nothing else changed
    for (path, old) in &before {
        if path != Path::new("Cargo.toml") && path != Path::new("src/lib.rs") {
            assert_eq!(&after[path], old, "{} changed", path.display());
        }
    }

    // twice changes nothing
    let o = ferry(
        ws.path(),
        &["new-connector", "acme-erp", "--source", "--sink"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(snapshot(ws.path()), after, "a second run changed files");
}

#[test]
fn new_connector_sink_only_and_bad_names() {
    let ws = stand_in_workspace();
    let o = ferry(
        ws.path(),
        &["new-connector", "s3", "--sink", "--dir", "connectors"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let dir = ws.path().join("connectors/s3");
    assert!(dir.join("src/sink.rs").is_file());
    assert!(!dir.join("src/source.rs").exists());
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("\n    sink: ") && !lib.contains("\n    source: "));
    let test = std::fs::read_to_string(dir.join("tests/conformance.rs")).unwrap();
    assert!(test.contains("run_sink_suite") && !test.contains("run_source_suite"));

    for bad in ["Acme", "acme_erp", "9lives", "acme-"] {
        let o = ferry(ws.path(), &["new-connector", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(text(&o).contains("lowercase letters"), "{}", text(&o));
    }
    let outside = tempfile::tempdir().unwrap();
    let o = ferry(outside.path(), &["new-connector", "acme"]);
    exits_saying(&o, 2, "no Ferry workspace");
}

#[test]
fn custom_connector_example_runs() {
    let o = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "custom_connector"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.contains("  > {") && out.contains("\"square\":25"),
        "{out}"
    );
    assert!(out.contains("5 rows read, 5 committed"), "{out}");
    assert!(out.contains("0 rows read, 0 committed"), "{out}");
    assert!(out.contains("committed state: {\"id\":5}"), "{out}");
}
