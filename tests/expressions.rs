//! The expression functions of `filter`/`derive` through the CLI: each text function's
//! result and NULL handling on a real sync, and mistakes in function names and patterns
//! caught by `ferry check` at the transform's line, before any connection or row.

mod support;

use std::path::Path;

use support::cli::{exits_saying, exits_saying_all, ferry, out};
use support::{folder, read};

/// Row 3 has every text column empty (NULL).
const CSV: &str = "id,name,phone,zip,path\n\
1,Lovelace Ada,+44 (20) 7946-0958,501,/data/in/a.csv\n\
2,Hopper Grace,06.12.34.56.78,90210,b.csv\n\
3,,,,\n";

fn setup(transforms: &str) -> tempfile::TempDir {
    let tmp = folder::with_config(&format!(
        "[source]\ntype = \"file\"\npath = \"people.csv\"\ncolumns = {{ id = \"int64\", name = \"string\", phone = \"string\", zip = \"int64\", path = \"string\" }}\n\
         [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n\
         [[streams]]\nname = \"people\"\nmode = \"overwrite\"\ntransforms = [\n{transforms}\n]\n"
    ));
    folder::write(tmp.path(), "people.csv", CSV);
    tmp
}

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    read::jsonl(&dir.join("out/people.jsonl"))
}

/// Column `c` of every row, as text (NULL: None).
fn col(rows: &[serde_json::Value], c: &str) -> Vec<Option<String>> {
    rows.iter()
        .map(|r| match &r[c] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        })
        .collect()
}

fn some(v: &[Option<&str>]) -> Vec<Option<String>> {
    v.iter().map(|x| x.map(str::to_string)).collect()
}

#[test]
fn text_functions_clean_a_client_file_and_pass_null_through() {
    let tmp = setup(
        r#"{ type = "derive", column = "digits", expr = 'regex_replace(phone, "[^0-9+]", "")', as = "string" },
{ type = "derive", column = "dots", expr = 'replace(phone, ".", "")', as = "string" },
{ type = "derive", column = "last", expr = 'split(name, " ", 1)', as = "string" },
{ type = "derive", column = "first", expr = 'split(name, " ", -1)', as = "string" },
{ type = "derive", column = "file", expr = 'split(path, "/", -1)', as = "string" },
{ type = "derive", column = "zip5", expr = 'pad_left(zip, 5, "0")', as = "string" },
{ type = "derive", column = "right", expr = 'pad_right(str::from(id), 3, "_")', as = "string" },
{ type = "derive", column = "initials", expr = 'substring(split(name, " ", -1), 1, 1) + substring(name, 1, 1)', as = "string" },
{ type = "derive", column = "shown", expr = 'coalesce(name, "(none)")', as = "string" },
{ type = "derive", column = "swapped", expr = 'regex_replace(name, "^(\\w+) (\\w+)$", "$2 $1")', as = "string" },
{ type = "filter", expr = 'is_null(name) || regex_matches(name, "^[A-Z]")' },"#,
    );
    let o = ferry(tmp.path(), &["sync"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let r = rows(tmp.path());
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(
        col(&r, "digits"),
        some(&[Some("+442079460958"), Some("0612345678"), None])
    );
    assert_eq!(
        col(&r, "dots"),
        some(&[Some("+44 (20) 7946-0958"), Some("0612345678"), None])
    );
    assert_eq!(
        col(&r, "last"),
        some(&[Some("Lovelace"), Some("Hopper"), None])
    );
    assert_eq!(col(&r, "first"), some(&[Some("Ada"), Some("Grace"), None]));
    assert_eq!(col(&r, "file"), some(&[Some("a.csv"), Some("b.csv"), None]));
    assert_eq!(col(&r, "zip5"), some(&[Some("00501"), Some("90210"), None]));
    assert_eq!(
        col(&r, "right"),
        some(&[Some("1__"), Some("2__"), Some("3__")])
    );
    assert_eq!(col(&r, "initials"), some(&[Some("AL"), Some("GH"), None]));
    assert_eq!(
        col(&r, "shown"),
        some(&[Some("Lovelace Ada"), Some("Hopper Grace"), Some("(none)")])
    );
    assert_eq!(
        col(&r, "swapped"),
        some(&[Some("Ada Lovelace"), Some("Grace Hopper"), None])
    );
}

#[test]
fn check_names_the_unknown_function_at_its_transform_with_the_nearest_names() {
    let tmp = setup(
        r#"{ type = "trim", columns = ["name"] },
{ type = "derive", column = "d", expr = 'pad_lef(zip, 5, "0")', as = "string" },"#,
    );
    let o = ferry(tmp.path(), &["check"]);
    let text = exits_saying_all(
        &o,
        2,
        &[
            "stream `people`, transform 2 (derive)",
            "unknown function `pad_lef`",
            "did you mean `pad_left`?",
            // the caret is under the function name, on the transform's line (line 14)
            "--> sync.toml:14:42",
        ],
    );
    // checked before any connection: the table of connections is not printed
    assert!(!text.contains("connection"), "{text}");

    // a name far from every function gets no suggestion, only the list's place
    let tmp = setup(r#"{ type = "filter", expr = "frobnicate(name)" },"#);
    let text = out(&ferry(tmp.path(), &["check"]));
    assert!(text.contains("unknown function `frobnicate`"), "{text}");
    assert!(!text.contains("did you mean"), "{text}");
    assert!(text.contains("docs/transforms.md"), "{text}");
}

#[test]
fn check_refuses_bad_patterns_before_the_run() {
    for (expr, expected) in [
        (r#"'regex_replace(name, "(", "")'"#, "invalid pattern"),
        (
            r#"'regex_replace(name, name, "")'"#,
            "must be a string literal",
        ),
        // a pattern whose automaton would be huge is refused, not compiled at run time
        (
            r#"'regex_matches(name, "\\w{1000}\\w{1000}")'"#,
            "invalid pattern",
        ),
    ] {
        let tmp = setup(&format!(
            "{{ type = \"derive\", column = \"d\", expr = {expr}, as = \"string\" }},"
        ));
        let o = ferry(tmp.path(), &["check"]);
        assert_eq!(o.status.code(), Some(2), "{expr}: {}", out(&o));
        assert!(out(&o).contains(expected), "{expr}: {}", out(&o));
        assert!(out(&o).contains("transform 1 (derive)"), "{}", out(&o));
    }
    let long = "a".repeat(1001);
    let tmp = setup(&format!(
        "{{ type = \"filter\", expr = 'regex_matches(name, \"{long}\")' }},"
    ));
    let o = ferry(tmp.path(), &["check"]);
    assert!(out(&o).contains("at most 1000"), "{}", out(&o));
}

#[test]
fn a_value_a_function_cannot_take_fails_the_stream_naming_the_transform() {
    let tmp = setup(
        r#"{ type = "derive", column = "d", expr = 'split(name, " ", id - 1)', as = "string" },"#,
    );
    let o = ferry(tmp.path(), &["sync"]);
    exits_saying(&o, 1, "count from 1");
    assert!(out(&o).contains("derive(d)"), "{}", out(&o));
}
