//! Transforms and the newer checks, driven through the CLI: several transforms chained in
//! one stream, a filter, a derive, a cast error failing the stream or quarantined per
//! config, config mistakes caught before a row is read, and the accounting identity
//! rows read = rows written + rows rejected (+ rows filtered, once the report counts them).

mod support;

use std::path::Path;

use support::cli::{exits_saying_all, ferry, ferry_in, ferry_ok, out, Setup};
use support::{config, folder, read};

/// Five people; row 2 has an amount that is not a number, row 3 no email and no address.
const CSV: &str = "id,name,email,amount,qty,status,address,seen\n\
1,  Ada Lovelace ,ADA@Example.COM,10.5,2,paid,\"{\"\"city\"\":\"\"London\"\",\"\"zip\"\":\"\"N1\"\"}\",01/03/2024 10:30\n\
2,Grace Hopper,grace@example.com,x,1,paid,\"{\"\"city\"\":\"\"Arlington\"\"}\",02/03/2024 11:00\n\
3,Alan Turing,,30,3,paid,,03/03/2024 12:00\n\
4,Edsger Dijkstra,edsger@example.com,-5,1,open,\"{\"\"city\"\":\"\"Austin\"\"}\",04/03/2024 13:00\n\
5,Barbara Liskov,barbara@example.com,7,4,void,\"{\"\"city\"\":\"\"Boston\"\"}\",05/03/2024 14:00\n";

const COLUMNS: &str = "columns = { id = \"int64\", name = \"string\", email = \"string\", amount = \"string\", qty = \"int64\", status = \"string\", address = \"json\", seen = \"string\" }";

fn setup(stream_extra: &str) -> tempfile::TempDir {
    // these five rows reject one or two on purpose: more than the default max_bad_ratio
    let config = config::file_to_jsonl("people.csv", COLUMNS, "people", stream_extra);
    let tmp = folder::with_config(&config);
    folder::write(tmp.path(), "people.csv", CSV);
    tmp
}

fn written(dir: &Path) -> Vec<serde_json::Value> {
    read::jsonl_or_none(&dir.join("out/people.jsonl"))
}

fn written_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("out/people.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn quarantined(dir: &Path) -> Vec<serde_json::Value> {
    read::quarantined(dir, "people")
}

/// (rows_read, rows_written, rows_rejected, rows_filtered) of the report's only stream;
/// `rows_filtered` is 0 while the report has no such field.
fn counts(dir: &Path) -> (u64, u64, u64, u64) {
    let r = read::json(&dir.join("r.json"));
    let s = &r["streams"][0];
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    (
        n("rows_read"),
        n("rows_committed"),
        n("rows_rejected"),
        n("rows_filtered"),
    )
}

fn ids(rows: &[serde_json::Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[test]
fn chained_transforms_reshape_the_stream() {
    let tmp = setup(
        r#"transforms = [
  { type = "trim", columns = ["name"] },
  { type = "lowercase", columns = ["email"] },
  { type = "rename", from = "name", to = "full_name" },
  { type = "cast", column = "amount", to = "float64", on_error = "null" },
  { type = "default", column = "amount", value = 0 },
  { type = "default", column = "email", value = "unknown" },
  { type = "derive", column = "total", expr = "amount * qty", as = "float64" },
  { type = "parse_timestamp", column = "seen", format = "%d/%m/%Y %H:%M", timezone = "Europe/Paris" },
  { type = "flatten", column = "address", fields = { city = "string", zip = "string" } },
  { type = "metadata", columns = ["_ferry_synced_at"] },
  { type = "select", columns = ["id", "full_name", "email", "amount", "total", "address_city", "address_zip", "seen", "_ferry_synced_at"] },
]
checks = [{ type = "not_null", columns = ["email", "amount", "_ferry_synced_at"] }]
"#,
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    let rows = written(dir);
    assert_eq!(ids(&rows), [1, 2, 3, 4, 5]);
    let ada = &rows[0];
    assert_eq!(ada["full_name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["amount"], 10.5);
    assert_eq!(ada["total"], 21.0);
    assert_eq!(ada["address_city"], "London");
    assert_eq!(ada["address_zip"], "N1");
    assert_eq!(
        ada["seen"], "2024-03-01T09:30:00Z",
        "Paris is UTC+1 in March"
    );
    assert!(ada["_ferry_synced_at"].as_str().unwrap().ends_with('Z'));
    // the cast that failed became NULL, then the default
    assert_eq!(rows[1]["amount"], 0.0);
    assert_eq!(rows[1]["total"], 0.0);
    assert_eq!(rows[2]["email"], "unknown");
    assert!(rows[2]["address_city"].is_null());
    // select fixed the columns and their order
    let first = &written_lines(dir)[0];
    let pos = |k: &str| first.find(&format!("\"{k}\"")).unwrap_or(usize::MAX);
    let order = [
        "id",
        "full_name",
        "email",
        "amount",
        "total",
        "address_city",
        "address_zip",
        "seen",
        "_ferry_synced_at",
    ];
    assert!(
        order.windows(2).all(|w| pos(w[0]) < pos(w[1])),
        "columns out of order: {first}"
    );
    assert!(!first.contains("\"qty\"") && !first.contains("\"status\""));
    let (read, w, rejected, filtered) = counts(dir);
    assert_eq!((read, w, rejected, filtered), (5, 5, 0, 0));
}

#[test]
fn filter_and_derive_keep_the_accounting() {
    let tmp = setup(
        r#"transforms = [
  { type = "cast", column = "amount", to = "float64", on_error = "null" },
  { type = "filter", expr = "status != \"void\" && amount > 0" },
  { type = "derive", column = "big", expr = "amount * qty >= 50", as = "bool" },
]
checks = [{ type = "not_null", columns = ["email"] }]
"#,
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    // 2: NULL amount (the filter drops NULL), 4: negative, 5: void; 3 has no email
    let rows = written(dir);
    assert_eq!(ids(&rows), [1]);
    assert_eq!(rows[0]["big"], false);
    let q = quarantined(dir);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["record"]["id"], 3);
    assert_eq!(
        q[0]["record"]["big"], true,
        "the quarantined row is as delivered"
    );
    let (read, written, rejected, filtered) = counts(dir);
    assert_eq!((written, rejected), (1, 1));
    assert_eq!(
        read,
        written + rejected + filtered,
        "accounting identity broken"
    );
    // The runtime counts rows_read after the transforms, so the 3 rows the filter removed
    // are in no counter today (rows_read is 2, not the 5 rows of the file). With a
    // `rows_filtered` counter (see the handover notes) this reads 5 = 1 + 1 + 3.
    assert!(
        read == 2 || (read, filtered) == (5, 3),
        "read {read}, filtered {filtered}"
    );
}

#[test]
fn cast_error_fails_the_stream_by_default_naming_column_and_value() {
    let tmp = setup(r#"transforms = [{ type = "cast", column = "amount", to = "float64" }]"#);
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    exits_saying_all(&o, 1, &["cast(amount, float64)", "`amount`", "`x`"]);
    assert!(
        !dir.join("out/people.jsonl").exists(),
        "a failed overwrite replaced the output"
    );
}

#[test]
fn cast_error_is_quarantined_with_on_error_null_and_a_check() {
    let tmp = setup(
        r#"transforms = [{ type = "cast", column = "amount", to = "float64", on_error = "null" }]
checks = [{ type = "not_null", columns = ["amount"] }]
"#,
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    assert_eq!(ids(&written(dir)), [1, 3, 4, 5]);
    let q = quarantined(dir);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["check"], "not_null(amount)");
    assert_eq!(q[0]["record"]["id"], 2);
    let (read, written, rejected, _) = counts(dir);
    assert_eq!((read, written, rejected), (5, 4, 1));
}

#[test]
fn type_check_quarantines_text_that_does_not_parse() {
    let tmp = setup(r#"checks = [{ type = "type", column = "amount", is = "decimal(10,2)" }]"#);
    let dir = tmp.path();
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    let q = quarantined(dir);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["check"], "type(amount)");
    assert!(
        q[0]["message"].as_str().unwrap().contains("`x`"),
        "{:?}",
        q[0]
    );
    // the row keeps its original text: nothing was converted
    assert_eq!(q[0]["record"]["amount"], "x");
    let (read, written, rejected, _) = counts(dir);
    assert_eq!((read, written, rejected), (5, 4, 1));
}

#[test]
fn freshness_fails_stale_data_at_the_end_of_the_stream() {
    let fresh = r#"transforms = [{ type = "parse_timestamp", column = "seen", format = "%d/%m/%Y %H:%M" }]
checks = [{ type = "freshness", column = "seen", max_age = "36500d" }]
"#;
    let tmp = setup(fresh);
    ferry_ok(tmp.path(), &["sync"]);
    let tmp = setup(&fresh.replace("36500d", "24h"));
    let o = ferry(tmp.path(), &["sync"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("freshness(seen) failed")
            && out(&o).contains("2024-03-05T14:00:00Z")
            && out(&o).contains("older than max_age 24h"),
        "{}",
        out(&o)
    );
}

#[test]
fn transform_mistakes_are_config_errors_before_any_row() {
    let cases = [
        (
            r#"transforms = [{ type = "filter", expr = "amout > 0" }]"#,
            "did you mean `amount`",
        ),
        (
            r#"transforms = [{ type = "filter", expr = "qty + 1" }]"#,
            "not true or false",
        ),
        (
            r#"transforms = [{ type = "derive", column = "d", expr = "qty > 1", as = "int64" }]"#,
            "does not fit",
        ),
        (
            r#"transforms = [{ type = "cast", column = "qty", to = "date" }]"#,
            "cannot cast int64 to date",
        ),
        (
            r#"transforms = [{ type = "default", column = "qty", value = "many" }]"#,
            "does not fit column `qty`",
        ),
        (
            r#"transforms = [{ type = "parse_timestamp", column = "seen", format = "%d/%m/%Y", timezone = "Europe/Pariss" }]"#,
            "did you mean `Europe/Paris`",
        ),
        (
            r#"transforms = [{ type = "rename", from = "name", to = "email" }]"#,
            "already exists",
        ),
        (
            r#"transforms = [{ type = "select", columns = ["name"] }]
checks = [{ type = "not_null", columns = ["id"] }]"#,
            "no column `id`",
        ),
    ];
    for (cfg, expected) in cases {
        let tmp = setup(cfg);
        let o = ferry(tmp.path(), &["sync"]);
        assert_eq!(o.status.code(), Some(2), "{cfg}\n{}", out(&o));
        assert!(out(&o).contains(expected), "{cfg}\n{}", out(&o));
        assert!(!tmp.path().join("out").exists(), "{cfg}: rows were written");
    }
}

#[test]
fn cast_error_names_the_row_when_it_fails_the_stream() {
    let tmp = setup(r#"transforms = [{ type = "cast", column = "amount", to = "float64" }]"#);
    let o = ferry(tmp.path(), &["sync"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    // stream, row (the 2nd of the file) and column
    assert!(
        text.contains("stream people") && text.contains("row 2") && text.contains("column amount"),
        "{text}"
    );
}

#[test]
fn cast_error_goes_to_quarantine_with_the_original_value_when_the_stream_says_so() {
    let tmp = setup(
        r#"on_bad_record = "quarantine"
transforms = [
  { type = "trim", columns = ["name"] },
  { type = "cast", column = "amount", to = "float64" },
]
"#,
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync", "--report", "r.json"]);
    // the other rows go on, converted
    let rows = written(dir);
    assert_eq!(ids(&rows), [1, 3, 4, 5]);
    assert_eq!(rows[0]["amount"], 10.5);
    let q = quarantined(dir);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["check"], "cast(amount, float64)");
    assert_eq!(q[0]["position"]["key"], "row 2");
    // the original value, and the column named in the message
    assert_eq!(q[0]["record"]["amount"], "x");
    assert_eq!(q[0]["record"]["id"], 2);
    let msg = q[0]["message"].as_str().unwrap();
    assert!(msg.contains("`amount`") && msg.contains("`x`"), "{msg}");
    let (read, written, rejected, filtered) = counts(dir);
    assert_eq!((read, written, rejected, filtered), (5, 4, 1, 0));
    assert_eq!(read, written + rejected + filtered);
}

#[test]
fn protected_values_stay_out_of_cast_errors_quarantine_and_the_summary() {
    // `amount` is cast, then hashed: its clear value must not appear anywhere
    let key = "k3y-0123456789abcdef";
    for quarantine in [false, true] {
        let tmp = setup(&format!(
            r#"on_bad_record = "{}"
transforms = [
  {{ type = "cast", column = "amount", to = "float64" }},
  {{ type = "hash", column = "amount", key = "${{env:FERRY_TEST_HASH_KEY}}" }},
  {{ type = "hash", column = "email", key = "${{env:FERRY_TEST_HASH_KEY}}" }},
]
checks = [{{ type = "regex", column = "email", pattern = "@", severity = "warn" }}]
"#,
            if quarantine { "quarantine" } else { "fail" }
        ));
        let dir = tmp.path();
        let o = ferry_in(dir)
            .env("FERRY_TEST_HASH_KEY", key)
            .run(&["sync", "--report", "r.json"], None);
        let text = out(&o);
        let q =
            std::fs::read_to_string(dir.join(".ferry/quarantine/people.jsonl")).unwrap_or_default();
        let report = std::fs::read_to_string(dir.join("r.json")).unwrap_or_default();
        for shown in [&text, &q, &report] {
            assert!(
                !shown.contains("`x`"),
                "a protected value was shown: {shown}"
            );
            assert!(
                !shown.contains("example.com"),
                "a protected value was shown: {shown}"
            );
            assert!(!shown.contains(key), "the key was shown: {shown}");
        }
        if quarantine {
            assert!(o.status.success(), "{text}");
            // the check's examples are of the delivered (hashed) values
            assert!(text.contains("check regex(email)"), "{text}");
            let q: Vec<serde_json::Value> = q
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(q.len(), 1, "{q:?}");
            assert_eq!(q[0]["record"]["amount"], "[protected]");
            assert_eq!(q[0]["record"]["email"], "[protected]");
            assert_eq!(q[0]["record"]["id"], 2);
        } else {
            assert_eq!(o.status.code(), Some(1), "{text}");
            assert!(
                text.contains("hash(amount)") && text.contains("row 2"),
                "{text}"
            );
        }
    }
}
