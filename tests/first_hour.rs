//! A new user's first hour, replayed as they would type it: init → secrets → check → plan
//! → dry run → first try → sync → incremental rerun → a second config → verify a copied
//! delivery. At every step the destination is compared with what Ferry printed, reported
//! and signed: the rule is that those say exactly what happened there.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::cli::{ferry_in, out as all, words, Setup};
use support::folder;
use support::read::{json, receipts};

const PASSPHRASE: &str = "first hour passphrase";

fn run(dir: &Path, args: &[&str], code: i32) -> String {
    let o = ferry_in(dir).passphrase(PASSPHRASE).run(args, None);
    assert_eq!(
        o.status.code(),
        Some(code),
        "ferry {args:?} exited {:?}:\n{}",
        o.status.code(),
        all(&o)
    );
    all(&o)
}

/// Rows per table of the SQLite destination (a table that does not exist is absent).
fn tables(db: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if !db.exists() {
        return out;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_ferry%' ESCAPE '\\'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for n in names {
        let rows: i64 = c
            .query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))
            .unwrap();
        out.insert(n, rows);
    }
    out
}

/// Per stream: (read, committed, rejected, filtered, uncommitted) of a receipt or report.
fn counts(doc: &serde_json::Value, committed_key: &str) -> BTreeMap<String, [u64; 5]> {
    // a report of several configs is a list of runs; one config's is the run itself
    let doc = doc.as_array().and_then(|runs| runs.first()).unwrap_or(doc);
    // a signed receipt holds the receipt beside its signature
    let doc = doc.get("receipt").unwrap_or(doc);
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            (
                s["stream"].as_str().unwrap().to_string(),
                [
                    n("rows_read"),
                    n(committed_key),
                    n("rows_rejected"),
                    n("rows_filtered"),
                    n("rows_uncommitted"),
                ],
            )
        })
        .collect()
}

#[test]
fn a_first_hour_ends_with_the_destination_and_every_receipt_agreeing() {
    let tmp = tempfile::tempdir().unwrap();
    run(
        tmp.path(),
        &words("init acme --source generate --destination sqlite"),
        0,
    );
    let dir = tmp.path().join("acme");
    let db = dir.join("out/acme.db");

    // secrets: a signing key for receipts, its public half for the client
    run(&dir, &["keys", "generate", "signing"], 0);
    let shown = run(&dir, &["keys", "show", "signing"], 0);
    let pubkey = shown.lines().last().unwrap().trim().to_string();
    assert!(!pubkey.is_empty(), "{shown}");

    run(&dir, &["check"], 0);
    // nothing delivered yet: the plan says something would change (exit 3)
    run(&dir, &["plan"], 3);

    // a dry run writes nothing and says so
    let dry = run(&dir, &["sync", "--dry-run"], 0);
    assert!(dry.contains("would write"), "{dry}");
    assert!(tables(&db).values().all(|&n| n == 0), "{:?}", tables(&db));
    assert!(receipts(&dir).is_empty(), "a dry run signed a receipt");

    // the first try goes through the destination and is rolled back: nothing stays
    let trial = run(&dir, &["sync", "--limit", "100"], 0);
    assert!(trial.contains("rolled back"), "{trial}");
    assert!(
        tables(&db).values().all(|&n| n == 0),
        "the trial left rows: {:?}",
        tables(&db)
    );
    assert!(receipts(&dir).is_empty(), "a trial signed a receipt");

    // the real run: the destination holds what the summary, report and receipt say
    let first = run(&dir, &["sync", "--report", "first.json"], 0);
    let held = tables(&db);
    let total: i64 = held.values().sum();
    assert!(total > 0, "{first}");
    assert!(
        first.contains("committed"),
        "the summary names committed rows: {first}"
    );
    let report = counts(&json(&dir.join("first.json")), "rows_committed");
    let signed = receipts(&dir);
    assert_eq!(signed.len(), 1, "{signed:?}");
    let receipt = counts(&json(&signed[0]), "rows_committed");
    assert_eq!(report, receipt, "report and receipt disagree");
    for (stream, [read, committed, rejected, filtered, uncommitted]) in &receipt {
        assert_eq!(
            Some(&(*committed as i64)),
            held.get(stream),
            "stream {stream}: the receipt says {committed} committed, the table holds {:?}",
            held.get(stream)
        );
        assert_eq!(read, &(committed + rejected + filtered + uncommitted));
        assert_eq!(*uncommitted, 0, "{stream}");
    }

    // a quiet rerun reads nothing new, and the destination does not change
    let again = run(&dir, &["sync", "--report", "again.json"], 0);
    assert_eq!(tables(&db), held, "{again}");
    let rerun = counts(&json(&dir.join("again.json")), "rows_committed");
    assert!(rerun.values().all(|c| c[0] == 0 && c[1] == 0), "{rerun:?}");

    // a second config in the same folder (same source, a CSV delivery) reads everything:
    // the first config's cursor is not its own
    let mut deliver = String::from(
        "client = \"acme\"\n[source]\ntype = \"generate\"\n\
         [destination]\ntype = \"file\"\npath = \"delivery\"\nformat = \"csv\"\n",
    );
    for stream in held.keys() {
        deliver.push_str(&format!(
            "[[streams]]\nname = \"{stream}\"\nmode = \"append\"\ncursor = \"id\"\n"
        ));
    }
    folder::write(&dir, "deliver.toml", deliver);
    let before = receipts(&dir);
    run(&dir, &["sync", "-c", "deliver.toml"], 0);
    let new: Vec<PathBuf> = receipts(&dir)
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let delivered = counts(&json(&new[0]), "rows_committed");
    for (stream, rows) in &held {
        let lines = csv::Reader::from_path(dir.join(format!("delivery/{stream}.csv")))
            .unwrap()
            .records()
            .count() as i64;
        assert_eq!(
            lines, *rows,
            "{stream}: the CSV has {lines} rows, SQLite {rows}"
        );
        assert_eq!(
            delivered.get(stream).map(|c| c[1] as i64),
            Some(lines),
            "{stream}: the receipt disagrees with the delivered file"
        );
    }

    // the client copies the receipt and the files into one folder and checks them there,
    // with Ferry and with the tools they already have
    let copy = tmp.path().join("client-copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(dir.join("delivery")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&new[0], copy.join("receipt.json")).unwrap();
    let verified = run(
        &copy,
        &["verify", "receipt.json", "--dir", ".", "--pubkey", &pubkey],
        0,
    );
    assert!(!verified.contains("MISSING"), "{verified}");
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&copy)
        .output()
        .expect("sha256sum (coreutils) runs");
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    // a changed file is caught by both
    let first_csv = copy.join(format!("{}.csv", held.keys().next().unwrap()));
    let mut text = std::fs::read_to_string(&first_csv).unwrap();
    text.push_str("999999,forged\n");
    std::fs::write(&first_csv, text).unwrap();
    run(
        &copy,
        &["verify", "receipt.json", "--dir", ".", "--pubkey", &pubkey],
        1,
    );
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&copy)
        .output()
        .unwrap();
    assert!(!sums.status.success(), "sha256sum accepted a changed file");
}
