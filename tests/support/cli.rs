//! Running the `ferry` binary as a user would, and reading what it printed.

use std::path::Path;
use std::process::{Child, Output, Stdio};

use assert_cmd::Command;

/// A vault master key for the tests (32 bytes, base64).
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `ferry` to run in `dir` with the test runner's environment; the caller adds the rest.
pub fn ferry_in(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("ferry").unwrap();
    c.current_dir(dir);
    c
}

/// Runs `ferry args` in `dir`.
pub fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir).run(args, None)
}

/// What a test sets on a `ferry` command besides its arguments.
pub trait Setup {
    /// The vault opens with `passphrase`; no master key in the environment.
    fn passphrase(&mut self, passphrase: &str) -> &mut Self;
    /// The vault opens with the master key `key`; no passphrase in the environment.
    fn master_key(&mut self, key: &str) -> &mut Self;
    /// Neither a passphrase nor a master key in the environment.
    fn no_vault_key(&mut self) -> &mut Self;
    /// Runs it with `args`, `stdin` written to its input when given.
    fn run(&mut self, args: &[&str], stdin: Option<&str>) -> Output;
}

impl Setup for Command {
    fn passphrase(&mut self, passphrase: &str) -> &mut Self {
        self.env("FERRY_PASSPHRASE", passphrase)
            .env_remove("FERRY_MASTER_KEY")
    }

    fn master_key(&mut self, key: &str) -> &mut Self {
        self.env("FERRY_MASTER_KEY", key)
            .env_remove("FERRY_PASSPHRASE")
    }

    fn no_vault_key(&mut self) -> &mut Self {
        self.env_remove("FERRY_PASSPHRASE")
            .env_remove("FERRY_MASTER_KEY")
    }

    fn run(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        self.args(args);
        if let Some(s) = stdin {
            self.write_stdin(s);
        }
        self.output().unwrap()
    }
}

/// `ferry` as a plain process in `dir` (to start, signal or kill), with the test runner's
/// environment.
pub fn process_in(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"));
    c.current_dir(dir);
    c
}

/// Starts `ferry args` in `dir`, its stdout and stderr piped to the test.
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    start(dir, args, Stdio::piped)
}

/// Starts `ferry args` in `dir`, its stdout and stderr thrown away.
pub fn spawn_quiet(dir: &Path, args: &[&str]) -> Child {
    start(dir, args, Stdio::null)
}

fn start(dir: &Path, args: &[&str], output: fn() -> Stdio) -> Child {
    process_in(dir)
        .args(args)
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap()
}

/// Sends Ctrl-C (SIGINT) to `child`.
pub fn interrupt(child: &Child) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("`kill` (procps) sends the SIGINT");
    assert!(sent.success());
}

/// What `o` printed: its stdout, then its stderr.
pub fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Its stdout and its stderr a line apart, so that no match spans the two.
pub fn out_apart(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Its stdout and its stderr, each on its own.
pub fn out_split(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The words of `line` (split at spaces): a command line written as one string.
pub fn words(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

/// The last line `o` printed on stdout, trimmed (where `keys` prints a public key).
pub fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .expect("a last line on stdout")
        .trim()
        .to_string()
}

/// [`ferry`], failing the test, with all it printed, unless it succeeded.
pub fn ferry_ok(dir: &Path, args: &[&str]) -> Output {
    let o = ferry(dir, args);
    assert!(o.status.success(), "ferry {}: {}", args.join(" "), out(&o));
    o
}

/// Fails the test, showing `text`, unless it holds each of `needles` and none of `never`.
pub fn assert_says(text: &str, needles: &[&str], never: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }
    for needle in never {
        assert!(
            !text.contains(needle),
            "{needle:?} should not be in:\n{text}"
        );
    }
}

/// Fails the test, showing all `o` printed, unless it exited with `code` and printed
/// `needle` (on stdout or stderr).
pub fn exits_saying(o: &Output, code: i32, needle: &str) {
    exits_saying_all(o, code, &[needle]);
}

/// [`exits_saying`] for each of `needles`; returns what `o` printed, for further checks.
pub fn exits_saying_all(o: &Output, code: i32, needles: &[&str]) -> String {
    let printed = out(o);
    assert_eq!(o.status.code(), Some(code), "{printed}");
    assert_says(&printed, needles, &[]);
    printed
}

/// `ferry sync --report r.json ARGS` in `dir`: whether it succeeded, the report's first
/// stream, and what it printed (stdout and stderr a line apart).
pub fn sync_reported(dir: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut all = vec!["sync", "--report", "r.json"];
    all.extend_from_slice(args);
    let o = ferry(dir, &all);
    let report = super::read::json(&dir.join("r.json"));
    (
        o.status.success(),
        report["streams"][0].clone(),
        out_apart(&o),
    )
}
