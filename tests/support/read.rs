//! Reading what a run left behind: JSON reports and receipts, JSON Lines outputs, state
//! files, quarantined records and debug bundles.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The JSON document at `path`.
pub fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The records of the JSON Lines file at `path`.
pub fn jsonl(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read_to_string(path).unwrap())
}

/// The records of the JSON Lines file at `path`; none when there is no such file.
pub fn jsonl_or_none(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read_to_string(path).unwrap_or_default())
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The entry of stream `name` in a report or receipt (`streams`), or in the first run of a
/// list of runs (a report of several configs) that has it.
pub fn stream<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let runs: Vec<&'a Value> = match doc.as_array() {
        Some(runs) => runs.iter().collect(),
        None => vec![doc],
    };
    runs.into_iter()
        .flat_map(|r| r["streams"].as_array().into_iter().flatten())
        .find(|s| s["stream"] == name)
        .unwrap_or_else(|| panic!("no stream `{name}` in {doc:#}"))
}

/// The files of `dir/.ferry/<folder>` that pass `keep`, sorted; none when it does not exist.
fn listed(dir: &Path, folder: &str, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(".ferry").join(folder))
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| keep(p)).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The receipts in the folder `dir`, oldest first (not their HTML reports).
pub fn receipts(dir: &Path) -> Vec<PathBuf> {
    listed(dir, "receipts", |p| {
        p.extension().is_some_and(|x| x == "json")
    })
}

/// The one receipt in the folder `dir`.
pub fn only_receipt(dir: &Path) -> PathBuf {
    let mut r = receipts(dir);
    assert_eq!(r.len(), 1, "expected one receipt: {r:?}");
    r.pop().unwrap()
}

/// The newest receipt in the folder `dir`.
pub fn newest_receipt(dir: &Path) -> PathBuf {
    receipts(dir)
        .pop()
        .unwrap_or_else(|| panic!("no receipts in {}", dir.join(".ferry/receipts").display()))
}

/// The receipt of the run whose report `ferry sync --report` wrote to `dir/report` (runs
/// of one second sort by their random part, so the newest file may not be that run's).
pub fn receipt_of_report(dir: &Path, report: &str) -> Value {
    let run = json(&dir.join(report))["run_id"]
        .as_str()
        .expect("the report names its run")
        .to_string();
    json(&dir.join(format!(".ferry/receipts/{run}.json")))
}

/// The pipelines' state files in the folder `dir` (`.ferry/state/<pipeline>.json`).
pub fn state_files(dir: &Path) -> Vec<PathBuf> {
    listed(dir, "state", |p| p.extension().is_some_and(|x| x == "json"))
}

/// The debug bundles in the folder `dir` (it must have some folder of them).
pub fn bundles(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join(".ferry/bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The records quarantined from `stream` in the folder `dir`; none when there is no file.
pub fn quarantined(dir: &Path, stream: &str) -> Vec<Value> {
    jsonl_or_none(&dir.join(format!(".ferry/quarantine/{stream}.jsonl")))
}
