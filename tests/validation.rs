//! Transforms, checks and quarantine, driven through the CLI: every bad row ends in the
//! quarantine file with its position, every good row reaches the destination, and
//! rows read = rows written + rows rejected.

mod support;

use std::path::Path;

use support::cli::{assert_says, exits_saying, ferry, ferry_ok, out};
use support::{config, folder, read};

const COLUMNS: &str =
    "columns = { id = \"int64\", name = \"string\", amount = \"float64\", status = \"string\" }";

fn setup(stream_extra: &str) -> tempfile::TempDir {
    // the fixture's rows are mostly bad on purpose: more than the default max_bad_ratio
    let config = config::file_to_jsonl("orders.csv", COLUMNS, "orders", stream_extra);
    let tmp = folder::with_config(&config);
    folder::copy_from_repo("tests/data/bad_rows.csv", tmp.path(), "orders.csv");
    tmp
}

fn report(dir: &Path) -> serde_json::Value {
    read::json(&dir.join("r.json"))
}

/// (rows read, committed, rejected) of a report's stream `s`.
fn figures(s: &serde_json::Value) -> (u64, u64, u64) {
    let n = |k: &str| s[k].as_u64().unwrap();
    (n("rows_read"), n("rows_committed"), n("rows_rejected"))
}

fn quarantined(dir: &Path) -> Vec<serde_json::Value> {
    read::quarantined(dir, "orders")
}

fn written_ids(dir: &Path) -> Vec<i64> {
    read::jsonl_or_none(&dir.join("out/orders.jsonl"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn malformed_rows_fail_by_default_naming_file_and_line() {
    let tmp = setup("");
    let o = ferry(tmp.path(), &["sync"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("orders.csv") && out(&o).contains("line 5"),
        "{}",
        out(&o)
    );
    assert!(
        !tmp.path().join(".ferry/state").exists(),
        "a failed stream committed state"
    );
}

#[test]
fn bad_rows_are_quarantined_with_their_line_and_good_rows_delivered() {
    let tmp = setup(
        "on_bad_record = \"quarantine\"\nchecks = [\n  { type = \"range\", column = \"amount\", min = 0 },\n  { type = \"allowed\", column = \"status\", values = [\"paid\", \"open\"], severity = \"warn\" },\n  { type = \"not_null\", columns = [\"name\"] },\n]\n",
    );
    let dir = tmp.path();
    let o = ferry_ok(dir, &["sync", "--report", "r.json"]);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("quarantined") && summary.contains("check allowed(status)"),
        "{summary}"
    );

    // parse errors: ragged (line 5), invalid UTF-8 (line 6), bad int (line 7)
    let q = quarantined(dir);
    let parse_lines: Vec<u64> = q
        .iter()
        .filter(|r| r["check"] == "parse")
        .map(|r| r["position"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(parse_lines, vec![5, 6, 7], "{q:?}");
    assert!(q.iter().all(|r| r["position"]["file"]
        .as_str()
        .is_some_and(|f| f.ends_with("orders.csv"))
        || r["check"] != "parse"));
    // check failures: range (id 6) and not_null (id 8), with the row
    let mut check_ids: Vec<i64> = q
        .iter()
        .filter(|r| r["check"] != "parse")
        .map(|r| r["record"]["id"].as_i64().unwrap())
        .collect();
    check_ids.sort();
    assert_eq!(check_ids, vec![6, 8]);
    // … at their place among all the records read, the malformed ones included
    let mut keys: Vec<&str> = q
        .iter()
        .filter(|r| r["check"] != "parse")
        .map(|r| r["position"]["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["row 6", "row 8"]);
    // warn keeps the row: 7 is delivered
    assert_eq!(written_ids(dir), vec![1, 2, 7, 9]);

    let r = report(dir);
    let s = &r["streams"][0];
    let (read, written, rejected) = figures(s);
    assert_eq!((read, written, rejected), (9, 4, 5));
    assert_eq!(read, written + rejected, "accounting identity broken");
    let check = |name: &str| -> serde_json::Value {
        let checks = s["checks"].as_array().unwrap();
        let found = checks.iter().find(|c| c["check"] == name);
        found
            .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
            .clone()
    };
    assert_eq!(check("allowed(status)")["failed"], 1);
    // the malformed records are counted beside the checks, with where and why
    let parse = check("parse");
    assert_eq!(parse["failed"], 3);
    let first = parse["examples"][0].as_str().unwrap();
    assert_says(first, &["orders.csv:5: ", "fields"], &[]);
    assert_says(
        &summary,
        &["check parse (severity error) failed for 3 rows"],
        &[],
    );
}

#[test]
fn a_check_failure_names_its_record_also_before_a_malformed_one() {
    // records 1 and 4 fail the range check; records 2 (ragged) and 5 (not a number) are
    // malformed, in the middle of the batch
    let csv = "id,name,amount,status\n1,Ada,-1,paid\n2,Bob,20\n3,Cy,30,paid\n4,Di,-4,paid\n5,Ed,x,paid\n6,Flo,60,paid\n";
    for transforms in [
        "",
        "transforms = [{ type = \"trim\", columns = [\"name\"] }]\n",
    ] {
        let tmp = setup(&format!(
            "on_bad_record = \"quarantine\"\n{transforms}checks = [{{ type = \"range\", column = \"amount\", min = 0 }}]\n"
        ));
        let dir = tmp.path();
        folder::write(dir, "orders.csv", csv);
        ferry_ok(dir, &["sync"]);
        let q = quarantined(dir);
        let at: Vec<(String, String)> = q
            .iter()
            .map(|r| {
                let p = &r["position"];
                let where_ = match p["line"].as_u64() {
                    Some(l) => format!("line {l}"),
                    None => p["key"].as_str().unwrap().to_string(),
                };
                (r["check"].as_str().unwrap().to_string(), where_)
            })
            .collect();
        // a row failing a check carries its file and line like a malformed record does
        let want: Vec<(String, String)> = [
            ("range(amount)", "line 2"),
            ("parse", "line 3"),
            ("range(amount)", "line 5"),
            ("parse", "line 6"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(at, want, "{transforms}{q:?}");
        // … and its number in the stream, counting the malformed records before it
        let checked: Vec<(&str, &str)> = q
            .iter()
            .filter(|r| r["check"] != "parse")
            .map(|r| {
                (
                    r["position"]["file"].as_str().unwrap(),
                    r["position"]["key"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            checked,
            [("orders.csv", "row 1"), ("orders.csv", "row 4")],
            "{transforms}"
        );
        assert_eq!(written_ids(dir), vec![3, 6], "{transforms}");
    }
}

#[test]
fn fail_severity_commits_no_state() {
    let tmp = setup("on_bad_record = \"quarantine\"\nchecks = [{ type = \"range\", column = \"amount\", min = 0, severity = \"fail\" }]\n");
    let dir = tmp.path();
    // read incrementally (so there is state to keep back) and appended: an overwrite with a
    // cursor is refused at config time
    folder::edit(
        dir,
        "sync.toml",
        "mode = \"overwrite\"",
        "mode = \"append\"\nincremental = true",
    );
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    exits_saying(&o, 1, "check range(amount) failed");
    assert!(
        !dir.join(".ferry/state").exists(),
        "a failed check committed state"
    );
    let kept = std::fs::read_to_string(dir.join("out/orders.jsonl")).unwrap_or_default();
    assert_eq!(
        kept.lines().count(),
        0,
        "an append that failed a check kept rows: {kept}"
    );
    assert_eq!(report(dir)["streams"][0]["rows_committed"], 0);
}

#[test]
fn max_bad_ratio_fails_the_run() {
    let tmp = setup("on_bad_record = \"quarantine\"\nmax_bad_ratio = 0.2\n");
    let dir = tmp.path();
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    exits_saying(&o, 1, "max_bad_ratio");
    let s = &report(dir)["streams"][0];
    let n = |k: &str| s[k].as_u64().unwrap();
    // the overwrite never replaced the output: nothing of it was committed
    assert!(!dir.join("out/orders.jsonl").exists());
    assert_eq!(n("rows_committed"), 0);
    assert_eq!(
        n("rows_read"),
        n("rows_committed") + n("rows_rejected") + n("rows_filtered") + n("rows_uncommitted")
    );
    assert!(!dir.join(".ferry/state").exists());
}

#[test]
fn unknown_check_column_is_a_config_error() {
    let tmp = setup("checks = [{ type = \"not_null\", columns = [\"nmae\"] }]\n");
    let o = ferry(tmp.path(), &["sync"]);
    exits_saying(&o, 2, "did you mean `name`");
}

#[test]
fn referential_check_runs_the_referenced_stream_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = |users: u64| {
        format!(
            "[source]\ntype = \"generate\"\nstreams = [{{ name = \"orders\", preset = \"orders\", rows = 200 }}, {{ name = \"users\", preset = \"users\", rows = {users} }}]\n\
             [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n\
             [[streams]]\nname = \"orders\"\nmode = \"overwrite\"\nmax_bad_ratio = 1\nchecks = [{{ type = \"referential\", column = \"user_id\", stream = \"users\", stream_column = \"id\" }}]\n\
             [[streams]]\nname = \"users\"\nmode = \"overwrite\"\n"
        )
    };
    // every user exists: nothing rejected, although orders is listed first
    folder::write(dir, "sync.toml", cfg(1000));
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    let s = &report(dir)["streams"][0];
    assert_eq!(
        (
            s["stream"].as_str(),
            s["rows_committed"].as_u64(),
            s["rows_rejected"].as_u64()
        ),
        (Some("orders"), Some(200), Some(0))
    );
    // only users 1..=10 exist: orders of other users are quarantined, the identity holds
    folder::write(dir, "sync.toml", cfg(10));
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    let s = &report(dir)["streams"][0];
    let (read, written, rejected) = figures(s);
    assert!(rejected > 100 && written > 0, "{s}");
    assert_eq!(read, written + rejected);
    let q = std::fs::read_to_string(dir.join(".ferry/quarantine/orders.jsonl")).unwrap();
    assert!(q.contains("referential"), "{q}");
}

#[test]
fn row_count_max_change_compares_with_the_last_successful_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = |rows: u64, severity: &str| {
        folder::write(
            dir,
            "sync.toml",
            format!(
                "[source]\ntype = \"generate\"\nstreams = [{{ name = \"orders\", preset = \"orders\", rows = {rows} }}]\n\
                 [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n\
                 [[streams]]\nname = \"orders\"\nmode = \"overwrite\"\n\
                 checks = [{{ type = \"row_count\", max_change = 0.5, severity = \"{severity}\" }}]\n"
            ),
        );
        ferry(dir, &["sync", "--report", "r.json"])
    };
    let kept = || -> Option<u64> {
        // the pipeline's state file, `.ferry/state/<pipeline>.json`
        let file = read::state_files(dir).into_iter().next()?;
        read::json(&file)["row_counts"]["orders"]["rows"].as_u64()
    };
    let check = |field: &str| report(dir)["streams"][0]["checks"][0][field].clone();

    // first run: nothing to compare with, passes with a note; its count is kept
    let o = run(100, "fail");
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        check("note")
            .as_str()
            .is_some_and(|n| n.contains("no row count")),
        "{}",
        report(dir)
    );
    assert!(out(&o).contains("max_change not checked"), "{}", out(&o));
    assert_eq!(kept(), Some(100));

    // 40 rows against 100 is a 60% change: fails, and the kept count stays 100
    let o = run(40, "fail");
    exits_saying(&o, 1, "40 rows against 100");
    assert_eq!(kept(), Some(100), "a failed run replaced the kept count");

    // with severity warn it is counted and reported, the run succeeds
    let o = run(40, "warn");
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(check("failed"), 1);
    assert_eq!(check("note"), serde_json::Value::Null);
    assert_eq!(kept(), Some(40));

    // 55 against 40 is 37.5%: within 50%
    let o = run(55, "fail");
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(check("failed"), 0);
    assert_eq!(kept(), Some(55));
}

#[test]
fn quarantine_can_go_through_the_destination_connector() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    folder::copy_from_repo("tests/data/bad_rows.csv", dir, "orders.csv");
    folder::write(
        dir,
        "sync.toml",
        format!(
            "[source]\ntype = \"file\"\npath = \"orders.csv\"\n{COLUMNS}\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\
             [[streams]]\nname = \"orders\"\nmode = \"overwrite\"\non_bad_record = \"quarantine\"\nmax_bad_ratio = 1\n\
             checks = [{{ type = \"range\", column = \"amount\", min = 0 }}]\n\
             [run]\nquarantine = {{ destination = \"destination\", stream = \"{{stream}}_rejects\" }}\n"
        ),
    );
    // read the quarantine table back through the sqlite source
    folder::write(
        dir,
        "back.toml",
        "[source]\ntype = \"sqlite\"\npath = \"out.db\"\n[destination]\ntype = \"file\"\npath = \"back\"\nformat = \"jsonl\"\n\
         [[streams]]\nname = \"orders_rejects\"\nmode = \"overwrite\"\n[run]\nstate = \"back-state.json\"\n",
    );
    let read_back = || -> Vec<serde_json::Value> {
        ferry_ok(dir, &["sync", "-c", "back.toml"]);
        read::jsonl(&dir.join("back/orders_rejects.jsonl"))
    };
    let json = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };

    ferry_ok(dir, &["sync", "--report", "r.json"]);
    let s = &report(dir)["streams"][0];
    let (read, written, rejected) = figures(s);
    assert_eq!(read, written + rejected);
    assert_eq!(rejected, 4, "3 malformed rows and amount -5: {s}");
    assert!(
        !dir.join(".ferry/quarantine/orders.jsonl").exists(),
        "records went to the JSON Lines file instead"
    );

    let rows = read_back();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let run_id = report(dir)["run_id"].as_str().unwrap().to_string();
    assert!(rows
        .iter()
        .all(|r| r["run_id"] == run_id.as_str() && r["stream"] == "orders"));
    let mut lines: Vec<u64> = rows
        .iter()
        .filter(|r| r["check"] == "parse")
        .map(|r| json(&r["position"])["line"].as_u64().unwrap())
        .collect();
    lines.sort();
    assert_eq!(lines, vec![5, 6, 7]);
    assert!(rows
        .iter()
        .filter(|r| r["check"] == "parse")
        .all(|r| r["raw"].is_string() && r["record"].is_null()));
    let range: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["check"] == "range(amount)")
        .collect();
    assert_eq!(range.len(), 1);
    assert_eq!(json(&range[0]["record"])["id"], 6);
    assert!(range[0]["message"].as_str().unwrap().contains("-5"));

    // a second run appends its own records
    ferry_ok(dir, &["sync"]);
    assert_eq!(read_back().len(), 8);

    // a destination the config does not have is a config error
    folder::edit(
        dir,
        "sync.toml",
        "destination = \"destination\"",
        "destination = \"warehouse\"",
    );
    let o = ferry(dir, &["sync"]);
    exits_saying(&o, 2, "`warehouse`");
}
