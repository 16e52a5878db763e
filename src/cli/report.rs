//! `ferry report RUN_ID --html out.html`: the client's delivery report of a run, made from
//! its receipt (by run id in the config's receipts folder, or a receipt file's path).

use std::path::{Path, PathBuf};

use ferry_core::{Error, ErrorKind, Result};
use ferry_engine::receipt::SignedReceipt;

/// Writes the HTML report of `run` (a run id or a receipt's path) to `html`.
pub fn report(run: &str, html: &Path, config: &Path) -> Result<u8> {
    let path = find(run, config)?;
    let signed = SignedReceipt::read(&path)?;
    let page = ferry_engine::html::page(&signed, &path);
    ferry_engine::state::write_atomic(html, page.as_bytes())?;
    println!(
        "report: {} (run {}, from {})",
        html.display(),
        signed.receipt.run_id,
        path.display()
    );
    Ok(0)
}

/// The receipt `run` names: a file that exists, else `<run>.json` in the receipts folder of
/// the config.
fn find(run: &str, config: &Path) -> Result<PathBuf> {
    let given = Path::new(run);
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    if run.ends_with(".json") || run.contains(std::path::MAIN_SEPARATOR) {
        return Err(
            Error::new(ErrorKind::NotFound, format!("no receipt file at {run}"))
                .with("receipt", run),
        );
    }
    let cfg = super::commands::load(config)?;
    let folder = cfg.dir.join(&cfg.run.receipts);
    let path = folder.join(format!("{run}.json"));
    if path.is_file() {
        return Ok(path);
    }
    let runs = run_ids(&folder);
    let near = ferry_core::suggest::nearest(run, runs.iter().map(String::as_str))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    let newest = runs
        .last()
        .map(|r| format!(", the newest `{r}`"))
        .unwrap_or_default();
    // `./.ferry/receipts` of a config given as `sync.toml` is shown as `.ferry/receipts`
    let shown = folder.strip_prefix(".").unwrap_or(&folder);
    Err(Error::new(
        ErrorKind::NotFound,
        format!(
            "no receipt of run `{run}`: the receipts folder holds {} receipt(s){newest}{near}",
            runs.len()
        ),
    )
    .with("receipts", shown.display()))
}

/// The run ids of the receipts in `folder`, oldest written first (two runs of one second
/// have ids that sort by their random part, so the time a receipt was written decides).
fn run_ids(folder: &Path) -> Vec<String> {
    let mut ids: Vec<(Option<std::time::SystemTime>, String)> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let written = p.metadata().and_then(|m| m.modified()).ok();
            p.file_stem()
                .map(|s| (written, s.to_string_lossy().into_owned()))
        })
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}
