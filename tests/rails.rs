//! Safety rails as a user meets them: `ferry plan`, schema-change policies, tenant binding.

mod support;

use std::path::Path;

use support::cli::{exits_saying, exits_saying_all, ferry, ferry_in, out, Setup};
use support::config::{generate, into_sqlite, POSTGRES_FIELDS};
use support::folder::{edit, with_config, write};
use support::read;

/// A client folder syncing `people.csv` into `db` (relative or absolute) with `extra`
/// lines in the stream entry.
fn folder(dir: &Path, client: &str, db: &str, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    write(
        dir,
        "sync.toml",
        format!(
            r#"client = "{client}"

[source]
type = "file"
path = "people.csv"
primary_key = ["id"]

[destination]
type = "sqlite"
path = "{db}"

[[streams]]
name = "people"
mode = "upsert"
{extra}
"#
        ),
    );
}

/// Reads one integer from `db` with the sqlite connector's own source (a query stream).
fn count(db: &Path, sql: &str) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "q.toml",
        format!(
            r#"[source]
type = "sqlite"
path = "{}"
tables = []
queries = [{{ name = "q", sql = "{sql}" }}]

[destination]
type = "file"
path = "out"
format = "jsonl"
"#,
            db.display()
        ),
    );
    let o = ferry(dir.path(), &["sync", "-c", "q.toml"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = std::fs::read_to_string(dir.path().join("out/q.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    // a query column has no declared type: it arrives as text
    let n = v.as_object().unwrap().values().next().unwrap();
    n.as_i64()
        .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a count: {n}"))
}

#[test]
fn plan_shows_a_dropped_column_and_the_policies_decide() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acme");
    folder(&dir, "acme", "out.db", "");
    write(&dir, "people.csv", "id,name,age\n1,Ann,30\n2,Bob,41\n");

    // first plan: a new destination, rows would move → exit 3
    let o = ferry(&dir, &["plan"]);
    exits_saying(&o, 3, "create people");
    let o = ferry(&dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));

    // upstream drops `age`
    write(&dir, "people.csv", "id,name\n3,Cy\n");
    let o = ferry(&dir, &["plan"]);
    exits_saying_all(
        &o,
        1,
        &[
            "- age (int64): no longer in the source",
            "REFUSED",
            "upsert into people (2 rows now)",
        ],
    );

    // the default refuses the sync too, before anything is written
    let o = ferry(&dir, &["sync"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("`age`"), "{}", out(&o));

    // freeze refuses
    folder(&dir, "acme", "out.db", "on_schema_change = \"freeze\"");
    let o = ferry(&dir, &["sync"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("on_schema_change = \"freeze\""),
        "{}",
        out(&o)
    );
    assert_eq!(
        count(&dir.join("out.db"), "SELECT COUNT(*) AS n FROM people"),
        2
    );

    // evolve keeps the column, written as NULL
    folder(&dir, "acme", "out.db", "on_schema_change = \"evolve\"");
    let o = ferry(&dir, &["plan"]);
    assert!(
        out(&o).contains("keep column age, written as NULL"),
        "{}",
        out(&o)
    );
    let o = ferry(&dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        count(
            &dir.join("out.db"),
            "SELECT COUNT(*) AS n FROM people WHERE age IS NULL AND name = 'Cy'"
        ),
        1
    );
}

#[test]
fn plan_exit_code_is_zero_when_nothing_would_change() {
    let tmp = with_config(
        &(into_sqlite(&generate("orders", "orders", 500))
            + "\n[[streams]]\nname = \"orders\"\ncursor = \"id\"\n"),
    );
    let dir = tmp.path();
    let o = ferry(dir, &["plan"]);
    exits_saying(&o, 3, "500 rows to move");
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["plan"]);
    exits_saying(&o, 0, "0 rows to move");
    assert!(out(&o).contains("nothing would change"), "{}", out(&o));
}

#[test]
fn a_destination_bound_to_another_client_is_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let shared_db = tmp.path().join("shared.db");
    let db = shared_db.display().to_string();
    let acme = tmp.path().join("acme");
    folder(&acme, "acme", &db, "");
    write(&acme, "people.csv", "id,name\n1,Ann\n");
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));

    // another client's folder pointing at the same database; its source does not even
    // exist, so reaching the source at all would fail differently
    let globex = tmp.path().join("globex");
    folder(&globex, "globex", &db, "");
    let o = ferry(&globex, &["plan"]);
    exits_saying(&o, 1, "bound to client `acme`");
    let o = ferry(&globex, &["sync"]);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("bound to client `acme`"), "{text}");
    assert!(text.contains("nothing was read"), "{text}");
    assert!(!globex.join(".ferry/state").exists());

    // the owner of the destination still syncs
    write(&acme, "people.csv", "id,name\n1,Ann\n2,Bo\n");
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));

    // a destination declared for another client is refused when the config loads
    folder(&acme, "acme", &db, "");
    edit(
        &acme,
        "sync.toml",
        "type = \"sqlite\"",
        "type = \"sqlite\"\nclient = \"globex\"",
    );
    let o = ferry(&acme, &["sync"]);
    exits_saying(&o, 2, "belongs to client `globex`");
}

#[test]
fn a_database_read_states_its_completeness_in_report_and_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "load.toml",
        r#"[source]
type = "generate"
streams = [{ name = "orders", preset = "orders", rows = 300 }]

[destination]
type = "sqlite"
path = "src.db"
"#,
    );
    let o = ferry(dir, &["sync", "-c", "load.toml"]);
    assert!(o.status.success(), "{}", out(&o));
    write(
        dir,
        "sync.toml",
        r#"[source]
type = "sqlite"
path = "src.db"

[destination]
type = "file"
path = "out"
"#,
    );
    let o = ferry(
        dir,
        &["sync", "--require-complete", "--report", "report.json"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let report = read::json(&dir.join("report.json"));
    let s = &report["streams"][0];
    assert_eq!(s["rows_total"], 300, "{s}");
    assert_eq!(s["complete"], true, "{s}");
    let receipts: Vec<_> = read::receipts(dir)
        .iter()
        .map(|r| std::fs::read_to_string(r).unwrap())
        .collect();
    assert!(
        receipts
            .iter()
            .any(|r| r.contains("\"complete\":true") || r.contains("\"complete\": true")),
        "{receipts:?}"
    );
}

#[test]
fn a_failed_stream_leaves_a_bundle_that_replays_and_holds_no_secret() {
    const KEY: &str = "bundle-canary-key-0123456789abcdef";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "people.csv",
        "id,email,code\n1,ann@example.com,12\n2,bob@example.com,x9\n",
    );
    write(
        dir,
        "sync.toml",
        r#"[source]
type = "file"
path = "people.csv"
columns = { code = "string" }

[destination]
type = "sqlite"
path = "out.db"

[[streams]]
name = "people"
transforms = [
  { type = "hash", column = "email", key = "${env:BUNDLE_KEY}" },
  { type = "cast", column = "code", to = "int64" },
]
"#,
    );
    let run = |args: &[&str]| ferry_in(dir).env("BUNDLE_KEY", KEY).run(args, None);
    let o = run(&["sync"]);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("debug bundle: "), "{text}");
    let bundles = read::bundles(dir);
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let b = &bundles[0];
    for f in [
        "bundle.json",
        "error.txt",
        "schema.json",
        "rows.jsonl",
        "state.json",
        "replay.toml",
    ] {
        let body = std::fs::read_to_string(b.join(f)).unwrap_or_else(|_| panic!("no {f}"));
        for secret in [KEY, "ann@example.com", "bob@example.com"] {
            assert!(!body.contains(secret), "{secret} is in {f}:\n{body}");
        }
    }
    let rows = std::fs::read_to_string(b.join("rows.jsonl")).unwrap();
    assert!(rows.contains("x9"), "{rows}");
    assert_eq!(rows.lines().count(), 2, "{rows}");
    let meta = std::fs::read_to_string(b.join("bundle.json")).unwrap();
    assert!(meta.contains("\"stage\": \"transform\""), "{meta}");

    let o = run(&["replay", b.to_str().unwrap()]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("reproduced:"), "{text}");
    assert!(text.contains("x9"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn plan_counts_rows_in_a_postgres_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let table = format!("rails_plan_{}", std::process::id());
    write(
        dir,
        "sync.toml",
        format!(
            r#"{}
[destination]
{POSTGRES_FIELDS}
[[streams]]
name = "orders"
destination = "{table}"
mode = "overwrite"
"#,
            generate("orders", "orders", 120)
        ),
    );
    let o = ferry(dir, &["sync"]);
    assert!(
        o.status.success(),
        "PostgreSQL must run on 127.0.0.1:5432 (.ci/run starts it): {}",
        out(&o)
    );
    let o = ferry(dir, &["plan"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("overwrite will replace {table}: 120 rows now")),
        "{text}"
    );
    assert!(text.contains("120 rows to move"), "{text}");
}

#[test]
fn a_postgres_schema_bound_to_another_client_is_refused() {
    let schema = format!("rails_owner_{}", std::process::id());
    let psql = |sql: &str| {
        let o = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "-qc",
                sql,
            ])
            .output()
            .expect("psql runs (PostgreSQL client; .ci/run starts the server)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let tmp = tempfile::tempdir().unwrap();
    let config = |client: &str| {
        format!(
            r#"client = "{client}"

{}
[destination]
{POSTGRES_FIELDS}schema = "{schema}"

[[streams]]
name = "orders"
mode = "overwrite"
"#,
            generate("orders", "orders", 50)
        )
    };
    let acme = tmp.path().join("acme");
    let globex = tmp.path().join("globex");
    for (dir, client) in [(&acme, "acme"), (&globex, "globex")] {
        std::fs::create_dir_all(dir).unwrap();
        write(dir, "sync.toml", config(client));
    }
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(&globex, &["sync"]);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("bound to client `acme`"), "{text}");
    let o = ferry(&acme, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    // the tag sits in the destination schema
    assert!(psql(&format!("SELECT client FROM {schema}._ferry_owner")).contains("acme"));
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
