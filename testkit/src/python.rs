//! Fixtures made by an independent writer: small Python scripts run with `python3`, so
//! Ferry's readers are tested on files Ferry did not write. A missing interpreter or
//! package fails the test loudly, saying how to install it.

use std::path::Path;
use std::process::Command;

/// The script behind [`workbooks`].
pub const WORKBOOKS_PY: &str = include_str!("workbooks.py");

/// Runs `script` with `python3 -c`, with `args`; `modules` are the Python packages it
/// imports, checked first so a missing one fails with its `pip install` line. Panics
/// (failing the test) on any failure, with the script's output.
pub fn run_python(script: &str, args: &[&str], modules: &[(&str, &str)]) {
    let probe = Command::new("python3").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        panic!(
            "this test makes its fixtures with python3, which is not on PATH: install it (Debian: apt-get install python3), or run .ci/test, which does"
        );
    }
    for (module, package) in modules {
        let ok = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "this test makes its fixtures with the Python package `{package}`, which is not installed: run `python3 -m pip install {package}` (or .ci/test, which does)"
        );
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the fixture script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the test workbooks into `dir` with XlsxWriter, xlwt and odfpy (see
/// `workbooks.py` for what each holds): `orders.xlsx` (sheets `Q1` and `Q2`, dates, a
/// formula with its cached value, merged and empty cells, a text cell in a number
/// column on row 14), `mac.xlsx` (the 1904 date system), `report.xlsx` (a title above a
/// header on row 3, and notes right of the table), `orders.xls` and `orders.ods`.
pub fn workbooks(dir: &Path) {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    run_python(
        WORKBOOKS_PY,
        &[dir],
        &[
            ("xlsxwriter", "xlsxwriter"),
            ("xlwt", "xlwt"),
            ("odf", "odfpy"),
        ],
    );
}
