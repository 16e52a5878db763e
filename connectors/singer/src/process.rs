//! Running a bridged program (a Singer tap or target, an Airbyte connector) as a child
//! process: its config in a 0600 file under `.ferry/tmp/` that is deleted when the run
//! ends, its stdout read line by line with line numbers, its stderr sent to Ferry's log
//! with secrets removed and its last lines kept for error messages.
//!
//! Why files and not arguments or environment variables: the Singer and Airbyte
//! protocols take config, catalog and state as file paths, and a file readable only by
//! this user and removed after the run is the narrowest place a resolved secret can be
//! put. Why `.ferry/tmp/` beside the config and not the system temp folder: a run killed
//! with SIGKILL cannot delete its files, and the next run in the client folder removes
//! them ([`sweep`]); a shared temp folder would keep them until reboot.
//!
//! The child is third-party code: it gets a minimal environment ([`PASSED_ENV`], the
//! venv's variables, the config's `env`), never Ferry's own variables, and it dies with
//! Ferry: killed if Ferry drops it (a `--limit` reached, a failed stream) and, on Linux,
//! sent SIGKILL by the kernel when Ferry itself dies (`PR_SET_PDEATHSIG`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::redact::redact;
use ferry_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::bridged::BridgedConfig;

mod program;

pub use program::{Args, Program};

/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 20;

/// The only variables of Ferry's environment a bridged program gets (besides `LC_*`):
/// what finds programs and the home folder, the locale and time zone, the temp folder,
/// the proxy and CA bundle settings that let it reach its API, and what Windows needs to
/// start Python. Anything else (cloud credentials, `FERRY_*`) is passed only when the
/// config's `env` names it.
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "SYSTEMROOT",
    "WINDIR",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PATHEXT",
    "COMSPEC",
];

/// `s` cut to at most `n` characters (an ellipsis marks a cut).
pub fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Where a client folder's bridge files live while a child runs: `<base_dir>/.ferry/tmp`.
pub fn private_dir(base_dir: &Path) -> PathBuf {
    base_dir.join(".ferry").join("tmp")
}

/// Writes `value` as JSON to a new file readable only by this user (mode 0600) in
/// [`private_dir`] (created mode 0700), deleted when the returned handle is dropped. Files
/// left there by runs that died first are removed ([`sweep`]).
pub fn secret_file(
    base_dir: &Path,
    value: &serde_json::Value,
    what: &str,
) -> Result<tempfile::NamedTempFile> {
    let dir = private_dir(base_dir);
    make_private_dir(&dir)?;
    sweep(&dir);
    let prefix = format!("ferry-{}-{what}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder
        .tempfile_in(&dir)
        .map_err(|e| Error::io(e, "cannot create a private file", &dir))?;
    let text = serde_json::to_vec(value).map_err(|e| Error::internal(e.to_string()))?;
    file.write_all(&text)
        .and_then(|_| file.flush())
        .map_err(|e| Error::io(e, "cannot write a private file", file.path()))?;
    Ok(file)
}

fn make_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io(e, "cannot create the folder for bridge files", dir))
}

/// Removes the files in `dir` that runs no longer alive left behind (a Ferry killed with
/// SIGKILL deletes nothing). A file names the process that wrote it
/// (`ferry-<pid>-<what>-….json`); on Linux a file is stale when that process is gone, on
/// other systems when it is more than a day old. Returns the files removed.
pub fn sweep(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ferry-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !alive(pid, &path) && std::fs::remove_file(&path).is_ok() {
            tracing::info!(target: "ferry::bridge", file = %path.display(), "removed a bridge file left by a run that died");
            removed.push(path);
        }
    }
    removed
}

#[cfg(target_os = "linux")]
fn alive(pid: u32, _file: &Path) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn alive(_pid: u32, file: &Path) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < Duration::from_secs(24 * 3600))
}

/// The variables a child starts with: [`PASSED_ENV`] and `LC_*` from Ferry's
/// environment, `VIRTUAL_ENV` and the venv's `bin` first on `PATH` when `program` is in a
/// venv, then the config's `env` (values may be secret references, resolved).
pub fn child_env(program: &Path, extra: &BridgedConfig) -> Result<Vec<(OsString, OsString)>> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                (PASSED_ENV.contains(&k) || k.starts_with("LC_")) && !k.starts_with("FERRY_")
            })
        })
        .collect();
    let venv = program
        .parent()
        .and_then(Path::parent)
        .filter(|d| d.join("pyvenv.cfg").is_file());
    if let Some(venv) = venv {
        let bin = program.parent().expect("a venv program has a folder");
        let old = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&old)),
        )
        .unwrap_or(old);
        env.retain(|(k, _)| k != "PATH");
        env.push(("PATH".into(), path));
        env.push(("VIRTUAL_ENV".into(), venv.as_os_str().to_owned()));
    }
    for (name, value) in extra.expose().as_object().into_iter().flatten() {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Error::config(format!(
                    "`env.{name}` must be a string: env = {{ {name} = \"value\" }}"
                ))
                .with("field", format!("env.{name}")))
            }
        };
        env.retain(|(k, _)| k != name.as_str());
        env.push((name.into(), text.into()));
    }
    // Python writes stdout in blocks when it is a pipe; line by line keeps the protocol live
    env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    Ok(env)
}

/// The last lines a child wrote on stderr (secrets removed), filled by a background task.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    /// Keeps `line` (already redacted) among the last lines shown in errors; protocols that
    /// log on stdout (Airbyte LOG messages) add theirs here too.
    pub fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == TAIL_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The kept lines, indented, or `(nothing)`.
    pub fn text(&self) -> String {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.is_empty() {
            return "  (nothing)".to_string();
        }
        q.iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A running child.
pub struct Running {
    /// Name used in messages (`tap-postgres`).
    pub name: String,
    child: Child,
    /// Its stdin, when it was opened.
    pub stdin: Option<ChildStdin>,
    /// Its stdout, line by line (taken by a writer that reads it in a task of its own).
    pub stdout: Option<Lines<ChildStdout>>,
    /// Its stderr's last lines.
    pub stderr: StderrTail,
    stderr_task: Option<JoinHandle<()>>,
    /// Temp files (config, catalog, state) that live as long as the child.
    _files: Vec<tempfile::NamedTempFile>,
}

/// Starts `program args…` with [`child_env`] (`env` is the config's); `files` are kept
/// (and deleted) with the child.
pub fn spawn(
    program: &Path,
    name: &str,
    args: Vec<OsString>,
    with_stdin: bool,
    files: Vec<tempfile::NamedTempFile>,
    env: &BridgedConfig,
) -> Result<Running> {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(child_env(program, env)?);
    die_with_parent(&mut cmd);
    cmd.args(&args)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(
            kind,
            format!("cannot start `{name}` ({}): {e}", program.display()),
        )
    })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("child stdout was not piped"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| Error::internal("child stderr was not piped"))?;
    let tail = StderrTail::default();
    let task = tokio::spawn(log_stderr(stderr, name.to_string(), tail.clone()));
    Ok(Running {
        name: name.to_string(),
        stdin: child.stdin.take(),
        child,
        stdout: Some(Lines::new(stdout)),
        stderr: tail,
        stderr_task: Some(task),
        _files: files,
    })
}

/// On Linux, the kernel sends the child SIGKILL when the thread that started it ends:
/// Ferry killed with SIGKILL (no destructor runs) does not leave a tap running. The
/// thread is a runtime worker, which lives as long as Ferry's runtime.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (prctl, getppid, kill).
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Ferry died between fork and prctl: the signal will never come
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

async fn log_stderr(stderr: impl AsyncRead + Unpin, name: String, tail: StderrTail) {
    let mut lines = Lines::new(stderr);
    while let Ok(Some((_, line))) = lines.next().await {
        let line = redact(line.trim_end());
        if line.is_empty() {
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if upper.contains("ERROR") || upper.contains("CRITICAL") || upper.contains("TRACEBACK") {
            tracing::warn!(target: "ferry::bridge", program = %name, "{line}");
        } else {
            tracing::debug!(target: "ferry::bridge", program = %name, "{line}");
        }
        tail.push(clip(&line, 500));
    }
}

impl Running {
    /// Waits for the child to end and its stderr to be read; `Ok` if it exited with 0.
    /// `after` says where in the protocol it stopped (`after stdout line 12`).
    pub async fn wait(&mut self, after: &str) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().await.map_err(|e| {
            Error::io(
                e,
                "cannot wait for a child process",
                PathBuf::from(&self.name),
            )
        })?;
        self.drain_stderr().await;
        if status.success() {
            Ok(())
        } else {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_string(),
            };
            let kind = kind_from_output(&self.stderr.text()).unwrap_or(ErrorKind::DataInvalid);
            Err(self.error_now(kind, format!("`{}` {how} {after}", self.name)))
        }
    }

    /// Stops the child (if still running) and returns `message` with its stderr tail.
    pub async fn fail(&mut self, kind: ErrorKind, message: String) -> Error {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.drain_stderr().await;
        self.error_now(kind, message)
    }

    /// `message` with the stderr tail as it is now.
    pub fn error_now(&self, kind: ErrorKind, message: String) -> Error {
        Error::new(
            kind,
            format!(
                "{}\nlast lines of `{}`'s stderr:\n{}",
                redact(&message),
                self.name,
                self.stderr.text()
            ),
        )
        .with("program", &self.name)
    }

    async fn drain_stderr(&mut self) {
        if let Some(task) = self.stderr_task.take() {
            // a grandchild may hold stderr open: do not wait forever
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// The error kind a failed program's output points to, when it names a common cause
/// (wrong password, refused connection …): what `ferry check` turns into a hint, and what
/// tells a retry policy whether another try can help. The one place these texts are read.
pub fn kind_from_output(text: &str) -> Option<ErrorKind> {
    let t = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if any(&[
        "password authentication failed",
        "access denied",
        "authentication failed",
        "invalid api key",
        "unauthorized",
        "401 client error",
        "invalid credentials",
    ]) {
        Some(ErrorKind::AuthFailed)
    } else if any(&["permission denied for", "403 client error", "forbidden"]) {
        Some(ErrorKind::PermissionDenied)
    } else if any(&[
        "connection refused",
        "could not connect",
        "name or service not known",
        "temporary failure in name resolution",
        "timed out",
        "no route to host",
        "could not translate host name",
    ]) {
        Some(ErrorKind::Unreachable)
    } else if any(&["429 client error", "too many requests", "rate limit"]) {
        Some(ErrorKind::RateLimited)
    } else {
        None
    }
}

/// Reads lines (lossy UTF-8, line ending removed) and counts them.
pub struct Lines<R> {
    inner: BufReader<R>,
    n: u64,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    /// Lines of `r`.
    pub fn new(r: R) -> Self {
        Lines {
            inner: BufReader::with_capacity(64 * 1024, r),
            n: 0,
            buf: Vec::new(),
        }
    }

    /// The number of the last line read (one-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.n
    }

    /// The next line and its number, or `None` at the end.
    pub async fn next(&mut self) -> std::io::Result<Option<(u64, String)>> {
        self.buf.clear();
        let read = self.inner.read_until(b'\n', &mut self.buf).await?;
        if read == 0 {
            return Ok(None);
        }
        self.n += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some((
            self.n,
            String::from_utf8_lossy(&self.buf).into_owned(),
        )))
    }
}

/// What stops a read at a line: the error's kind and message.
pub type LineError = (ErrorKind, String);

/// A protocol's reading of a child's stdout: one line at a time into Ferry messages.
pub trait Protocol: Send + 'static {
    /// What the program is called in messages (`tap \`tap-postgres\``).
    fn who(&self) -> String;
    /// One stdout line (`n` is its one-based number); an error stops the child.
    fn line(
        &mut self,
        n: u64,
        line: &str,
        out: &mut Vec<ferry_core::Message>,
    ) -> std::result::Result<(), LineError>;
    /// The rows it keeps until a batch is full.
    fn rows(&mut self) -> &mut crate::rows::RecordRows;
    /// After the child exited successfully: what is still buffered.
    fn finish(&mut self, out: &mut Vec<ferry_core::Message>) -> Result<()> {
        self.rows().flush(out).map_err(|(k, m)| Error::new(k, m))
    }
}

/// What `protocol` makes of `lines` as stdout lines 1, 2, …: a reader's tests feed it so.
pub fn feed(
    protocol: &mut impl Protocol,
    lines: &[&str],
) -> std::result::Result<Vec<ferry_core::Message>, LineError> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        protocol.line(i as u64 + 1, l, &mut out)?;
    }
    Ok(out)
}

/// The messages `protocol` reads from `run`'s stdout, as a stream. The child runs in a
/// task of its own, a bounded channel ahead of the reader; dropping the stream kills it.
pub fn message_stream(run: Running, protocol: impl Protocol) -> ferry_core::MessageStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(pump(run, protocol, tx));
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    }))
}

async fn pump(
    mut run: Running,
    mut protocol: impl Protocol,
    tx: tokio::sync::mpsc::Sender<Result<ferry_core::Message>>,
) {
    let result: Result<()> = async {
        let mut lines = run
            .stdout
            .take()
            .ok_or_else(|| Error::internal("the child's stdout was taken"))?;
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return Ok(()),
                l = lines.next() => l,
            };
            let (n, line) = match next {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    let msg = format!("cannot read the output of {}: {e}", protocol.who());
                    return Err(run.fail(ErrorKind::Io, msg).await);
                }
            };
            let mut out = Vec::new();
            if let Err((kind, msg)) = protocol.line(n, &line, &mut out) {
                return Err(run.fail(kind, msg).await.with("line", n));
            }
            for m in out {
                if tx.send(Ok(m)).await.is_err() {
                    return Ok(());
                }
            }
        }
        let last = lines.line();
        run.wait(&format!(
            "after stdout line {last}; rows after its last state message were not checkpointed"
        ))
        .await
        .map_err(|e| e.with("line", last))?;
        let mut out = Vec::new();
        protocol.finish(&mut out)?;
        for m in out {
            if tx.send(Ok(m)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_private_and_removed() {
        let base = tempfile::tempdir().unwrap();
        let f = secret_file(base.path(), &serde_json::json!({"password": "x"}), "test").unwrap();
        assert_eq!(f.path().parent().unwrap(), private_dir(base.path()));
        let path = f.path().to_path_buf();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"password":"x"}"#
        );
        drop(f);
        assert!(!path.exists());
    }

    #[test]
    fn common_causes_are_classified() {
        let k = |t| kind_from_output(t);
        assert_eq!(
            k("FATAL:  password authentication failed for user \"x\""),
            Some(ErrorKind::AuthFailed)
        );
        assert_eq!(
            k("psycopg2.OperationalError: connection refused"),
            Some(ErrorKind::Unreachable)
        );
        assert_eq!(k("KeyError: 'id'"), None);
    }

    #[tokio::test]
    async fn lines_are_numbered() {
        let mut l = Lines::new(&b"a\r\nb\n\nc"[..]);
        let mut got = Vec::new();
        while let Some((n, s)) = l.next().await.unwrap() {
            got.push((n, s));
        }
        assert_eq!(
            got,
            vec![
                (1, "a".into()),
                (2, "b".into()),
                (3, "".into()),
                (4, "c".into())
            ]
        );
    }
}
