//! Opening a page in a real browser, Debian's `chromium`, headless: a screenshot with the
//! page's console messages, and the DOM after it loaded. `.ci/test` installs it.

use std::path::Path;
use std::process::{Command, Output};

/// `chromium ARGS… file://page`, in its own throwaway profile, stopped after a minute.
/// Fails the test saying how to get the browser when it is not installed.
fn chromium(page: &Path, args: &[&str]) -> Output {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .expect("sh runs");
    assert!(
        found.status.success(),
        "this test opens the page in a browser: install Debian's chromium (apt-get install chromium)"
    );
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new("timeout")
        .args([
            "--kill-after=5",
            "60",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("timeout (coreutils) runs chromium");
    assert!(
        o.status.success(),
        "chromium failed (exit {:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Takes a 1200×1600 screenshot of `page` to `png`; returns the page's console messages
/// (Chromium logs each as a line with `:CONSOLE`).
pub fn screenshot(page: &Path, png: &Path) -> Vec<String> {
    let o = chromium(
        page,
        &[
            "--enable-logging=stderr",
            "--v=0",
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,1600",
        ],
    );
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// The DOM of `page` once it loaded, as HTML.
pub fn dump_dom(page: &Path) -> String {
    String::from_utf8_lossy(&chromium(page, &["--dump-dom"]).stdout).into_owned()
}
