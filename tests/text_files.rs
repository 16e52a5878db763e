//! Client CSV files through the CLI: a Windows-1252 `;` export with decimal commas loaded
//! with exact values, the warning when a file is read as one column, and a row that is not
//! UTF-8 quarantined with its file, line and the encoding to set.

mod support;

use support::cli::{ferry, ferry_ok, out, out_split};
use support::{folder, read};

/// Excel on a German Windows: cp1252, `;`, a title line, `1.234,56`, a totals line.
const EXPORT: &[u8] = b"Kunden 01.02.2024\r\nid;name;amount\r\n1;M\xfcller;1.234,56\r\n2;Fran\xe7ois;-7,50\r\nSumme;;1.227,06\r\n";

fn config(source_extra: &str, stream_extra: &str) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"in/kunden.csv\"\n{source_extra}\n\
         [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n\
         [[streams]]\nname = \"kunden\"\nmode = \"overwrite\"\n{stream_extra}\n"
    )
}

fn setup(source_extra: &str, stream_extra: &str) -> tempfile::TempDir {
    let tmp = folder::with_config(&config(source_extra, stream_extra));
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    folder::write(tmp.path(), "in/kunden.csv", EXPORT);
    tmp
}

#[test]
fn a_cp1252_export_with_decimal_commas_loads_exactly() {
    let tmp = setup(
        "encoding = \"windows-1252\"\nskip_rows = 1\nskip_footer_rows = 1\n\
         decimal_separator = \",\"\nthousands_separator = \".\"\n\
         columns = { amount = \"decimal(12,2)\" }",
        "",
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync"]);
    let rows = read::jsonl(&dir.join("out/kunden.jsonl"));
    let got: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap(),
                r["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(1, "Müller", "1234.56"), (2, "François", "-7.50")]);
}

#[test]
fn one_column_with_semicolons_in_its_name_is_warned_about() {
    // a wrong `delimiter` keeps the whole header as one column
    let tmp = setup(
        "delimiter = \",\"\nencoding = \"windows-1252\"\nskip_rows = 1",
        "",
    );
    for command in ["check", "discover", "sync"] {
        let o = ferry(tmp.path(), &[command]);
        let (_, stderr) = out_split(&o);
        assert!(
            stderr.contains(
                "stream `kunden`, file `in/kunden.csv`: the file has one column, `id;name;amount`"
            ) && stderr.contains("Set `delimiter = \";\"`"),
            "{command}: {stderr}"
        );
    }
    // without `delimiter`, Ferry guesses `;` and says nothing
    let tmp = setup(
        "encoding = \"windows-1252\"\nskip_rows = 1",
        "max_bad_ratio = 1\non_bad_record = \"quarantine\"",
    );
    let o = ferry(tmp.path(), &["sync"]);
    let (_, stderr) = out_split(&o);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!stderr.contains("one column"), "{stderr}");
}

#[test]
fn rows_that_are_not_utf8_are_quarantined_with_file_line_and_hint() {
    // no `encoding`: the accented rows cannot be read, the totals line is text
    let tmp = setup(
        "skip_rows = 1",
        "on_bad_record = \"quarantine\"\nmax_bad_ratio = 1",
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync"]);
    let rows = read::jsonl(&dir.join("out/kunden.jsonl"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], "Summe");
    let q = read::quarantined(dir, "kunden");
    assert_eq!(q.len(), 2, "{q:?}");
    for (rec, line) in q.iter().zip([3, 4]) {
        assert_eq!(rec["check"], "parse");
        assert_eq!(rec["position"]["file"], "in/kunden.csv");
        assert_eq!(rec["position"]["line"], line);
        let msg = rec["message"].as_str().unwrap();
        assert!(
            msg.contains("field 2")
                && msg.contains(
                    "not valid UTF-8; it looks like windows-1252: set encoding = \"windows-1252\""
                ),
            "{msg}"
        );
    }
    assert_eq!(q[0]["raw"], "1;M\u{fffd}ller;1.234,56");
}
