//! The client's way back from the `encrypt` transform: `keys export field` hands over the
//! key, `decrypt-columns` restores the delivered CSV/JSONL columns to the source's values,
//! a wrong key or column name leaves nothing behind, and SECURITY.md's Python snippet
//! decrypts the same values with a standard library.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use support::cli::{exits_saying, ferry_in, out, Setup};
use support::folder;

const PASSPHRASE: &str = "correct horse battery staple";

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir)
        .env("FERRY_PASSPHRASE", PASSPHRASE)
        .run(args, None)
}

/// Row 2 has no ssn (NULL); names hold commas and quotes.
const SOURCE: &str = "id,name,ssn,salary\n\
1,\"Lovelace, Ada\",123-45-6789,5200\n\
2,\"Hopper \"\"Amazing\"\" Grace\",,6100\n\
3,Turing Alan,987-65-4321,-15\n";

fn read_csv(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// A client folder whose sync encrypts `ssn` and `salary` into `out/people.<format>`; the
/// field key is generated in its vault and exported to `field_key.txt`.
fn delivered(format: &str) -> tempfile::TempDir {
    let tmp = folder::with_config(&format!(
        "[source]\ntype = \"file\"\npath = \"people.csv\"\ncolumns = {{ id = \"int64\", name = \"string\", ssn = \"string\", salary = \"int64\" }}\n\
         [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"{format}\"\n\
         [[streams]]\nname = \"people\"\ntransforms = [\n\
           {{ type = \"encrypt\", column = \"ssn\", key = \"${{secret:field_key}}\" }},\n\
           {{ type = \"encrypt\", column = \"salary\", key = \"${{secret:field_key}}\" }},\n\
         ]\n"
    ));
    let d = tmp.path();
    folder::write(d, "people.csv", SOURCE);
    let o = ferry(d, &["keys", "generate", "field"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("ferry keys export field"),
        "generate says how to hand the key over: {}",
        out(&o)
    );
    let o = ferry(d, &["keys", "export", "field"]);
    assert!(o.status.success(), "{}", out(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("WARNING"), "{stderr}");
    let key = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        key.trim().len(),
        44,
        "stdout holds only the base64 key: {key:?}"
    );
    folder::write(d, "field_key.txt", &key);
    let o = ferry(d, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    tmp
}

#[test]
fn client_decrypts_a_delivered_csv_back_to_the_source_values() {
    let tmp = delivered("csv");
    let d = tmp.path();
    let sent = std::fs::read_to_string(d.join("out/people.csv")).unwrap();
    assert!(
        !sent.contains("123-45-6789") && !sent.contains("5200"),
        "{sent}"
    );

    let o = ferry(
        d,
        &[
            "decrypt-columns",
            "--key-file",
            "field_key.txt",
            "--columns",
            "ssn,salary",
            "out/people.csv",
            "-o",
            "clear.csv",
        ],
    );
    exits_saying(&o, 0, "decrypted 5 values");
    let clear = std::fs::read_to_string(d.join("clear.csv")).unwrap();
    assert_eq!(read_csv(&clear), read_csv(SOURCE), "{clear}");
    assert!(clear.starts_with("id,name,ssn,salary\n"), "{clear}");
}

#[test]
fn client_decrypts_jsonl_on_stdout_keeping_the_keys_in_order() {
    let tmp = delivered("jsonl");
    let d = tmp.path();
    let o = ferry(
        d,
        &[
            "decrypt-columns",
            "--key-file",
            "field_key.txt",
            "--columns",
            "ssn",
            "--columns",
            "salary",
            "out/people.jsonl",
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        r#"{"id":1,"name":"Lovelace, Ada","ssn":"123-45-6789","salary":"5200"}"#
    );
    assert_eq!(
        lines[1],
        r#"{"id":2,"name":"Hopper \"Amazing\" Grace","ssn":null,"salary":"6100"}"#
    );
    assert_eq!(
        lines[2],
        r#"{"id":3,"name":"Turing Alan","ssn":"987-65-4321","salary":"-15"}"#
    );
}

#[test]
fn a_wrong_key_or_column_leaves_no_output_and_never_shows_a_value() {
    let tmp = delivered("csv");
    let d = tmp.path();
    let sent = std::fs::read_to_string(d.join("out/people.csv")).unwrap();
    let cipher = read_csv(&sent)[0][2].clone();

    // another key: authentication fails on the first value, naming row and column
    let o = ferry(d, &["keys", "generate", "field", "--name", "other"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(d, &["keys", "export", "field", "--name", "other"]);
    folder::write(d, "other.txt", &o.stdout);
    let args = |key: &'static str, cols: &'static str| {
        vec![
            "decrypt-columns",
            "--key-file",
            key,
            "--columns",
            cols,
            "out/people.csv",
            "-o",
            "clear.csv",
        ]
    };
    for (key, cols, expected) in [
        ("other.txt", "ssn", "wrong key"),
        // the column name is the associated data: salary's values do not open as ssn's
        ("field_key.txt", "salary=ssn", "another column name"),
        (
            "field_key.txt",
            "snn",
            "no column `snn` in the file (columns: id, name, ssn, salary)",
        ),
    ] {
        let o = ferry(d, &args(key, cols));
        let text = out(&o);
        assert!(!o.status.success(), "{cols}: {text}");
        assert!(text.contains(expected), "{cols}: {text}");
        assert!(!d.join("clear.csv").exists(), "{cols}: an output was left");
        assert!(
            !text.contains(&cipher),
            "{cols}: the value is shown: {text}"
        );
        assert!(!text.contains("123-45-6789"), "{text}");
    }
    let text = out(&ferry(d, &args("other.txt", "ssn")));
    assert!(text.contains("row 2") || text.contains("row: 2"), "{text}");
    assert!(
        text.contains("column ssn") || text.contains("column: ssn"),
        "{text}"
    );

    // a key that is not a field key, and keys that must stay in the vault
    folder::write(d, "bad.txt", "not a key");
    let text = out(&ferry(d, &args("bad.txt", "ssn")));
    assert!(text.contains("32 bytes, base64"), "{text}");
    let o = ferry(d, &["keys", "export", "signing"]);
    assert!(!o.status.success());
    assert!(out(&o).contains("field and hash keys only"), "{}", out(&o));
}

/// The Python block of SECURITY.md's field encryption section, exactly as written there.
fn security_md_snippet() -> String {
    let doc = std::fs::read_to_string(folder::repo("SECURITY.md")).unwrap();
    let start = doc
        .find("```python\n# decrypt_field.py")
        .expect("SECURITY.md has the decrypt_field.py snippet");
    let body = &doc[start + "```python\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_documented_python_snippet_decrypts_what_ferry_delivered() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
        .output();
    match python {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "this test runs SECURITY.md's snippet with python3 and the `cryptography` package: \
             install them (Debian: apt-get install python3 python3-cryptography; or pip install cryptography)"
        ),
    }
    let tmp = delivered("csv");
    let d = tmp.path();
    folder::write(d, "decrypt_field.py", security_md_snippet());
    let sent = read_csv(&std::fs::read_to_string(d.join("out/people.csv")).unwrap());
    for (col, i) in [("ssn", 2), ("salary", 3)] {
        let values: String = sent.iter().map(|r| format!("{}\n", r[i])).collect();
        let mut child = std::process::Command::new("python3")
            .args(["decrypt_field.py", "field_key.txt", col])
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(values.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{col}: {}", out(&o));
        let got: Vec<String> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let want: Vec<String> = read_csv(SOURCE).iter().map(|r| r[i].clone()).collect();
        assert_eq!(got, want, "{col}");
    }
}
