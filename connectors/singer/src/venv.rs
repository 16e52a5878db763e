//! Managed Python virtual environments: a bridged connector named by its PyPI package is
//! installed once into `.ferry/venvs/<package>[-<version>]` beside the config file
//! (`python3 -m venv`, then `pip install <package>==<version>`) and reused after.
//!
//! Why one venv per package: taps and targets pin conflicting versions of the same
//! libraries, so they never share an environment. Why a lock file: two runs (or two
//! streams of one run) starting at once must not install into the same folder together;
//! the second waits and then finds the install done. An install is marked complete only
//! after pip succeeded, so a failed or interrupted one is redone from scratch next time.
//!
//! `FERRY_VENV_DIR` moves the parent folder (tests and CI share one cache with it);
//! `FERRY_PYTHON` names the interpreter that creates the venvs (default `python3`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ferry_core::{Error, ErrorKind, Result};

/// Environment variable that overrides the folder holding the venvs.
pub const VENV_DIR_ENV: &str = "FERRY_VENV_DIR";
/// Environment variable naming the Python interpreter (default `python3`).
pub const PYTHON_ENV: &str = "FERRY_PYTHON";
/// Name of the file that marks a venv as completely installed.
const MARKER: &str = ".ferry-installed.json";

/// How to find the program a bridged connector runs.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A program on disk (or on `PATH`), run as is.
    Executable(PathBuf),
    /// A PyPI package installed into a managed venv; `command` is its console script
    /// (default: the package's only one, or the one named like a tap/target/source).
    Package {
        /// PyPI name, e.g. `meltanolabs-tap-postgres`.
        package: String,
        /// Exact version to pin, e.g. `0.10.0` (default: the newest at first install).
        version: Option<String>,
        /// Console script to run.
        command: Option<String>,
    },
}

impl Launch {
    /// From a connector's `package` / `version` / `command` / `executable` fields;
    /// checked without I/O. `role` is `tap`, `target` or `source` (for messages).
    pub fn from_fields(
        package: Option<&str>,
        version: Option<&str>,
        command: Option<&str>,
        executable: Option<&str>,
        base_dir: &Path,
        role: &str,
    ) -> Result<Launch> {
        match (package, executable) {
            (Some(_), Some(_)) => Err(Error::config(format!(
                "set either `package` (installed into a managed venv) or `executable` (a {role} program on disk), not both"
            ))),
            (None, None) => Err(Error::config(format!(
                "name the {role}: `package = \"meltanolabs-tap-postgres\"` (installed from PyPI on first use) or `executable = \"/path/to/{role}\"`"
            ))),
            (None, Some(exe)) => {
                if version.is_some() || command.is_some() {
                    return Err(Error::config(
                        "`version` and `command` go with `package`, not with `executable`",
                    ));
                }
                let p = Path::new(exe);
                // a bare name is looked up on PATH; a path is relative to the config file
                let path = if p.components().count() > 1 {
                    base_dir.join(p)
                } else {
                    p.to_path_buf()
                };
                Ok(Launch::Executable(path))
            }
            (Some(pkg), None) => {
                check_name(pkg, "package")?;
                if let Some(v) = version {
                    check_version(v)?;
                }
                if let Some(c) = command {
                    check_name(c, "command")?;
                }
                Ok(Launch::Package {
                    package: pkg.to_string(),
                    version: version.map(str::to_string),
                    command: command.map(str::to_string),
                })
            }
        }
    }

    /// A short name for messages and logs: the program's file name or the package.
    pub fn display_name(&self) -> String {
        match self {
            Launch::Executable(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            Launch::Package {
                package, command, ..
            } => command.clone().unwrap_or_else(|| package.clone()),
        }
    }

    /// The program to run, installing the package first if needed (blocking work runs
    /// off the async threads).
    pub async fn resolve(&self, base_dir: &Path) -> Result<PathBuf> {
        match self {
            Launch::Executable(p) => Ok(p.clone()),
            Launch::Package {
                package,
                version,
                command,
            } => {
                let (package, version, command) =
                    (package.clone(), version.clone(), command.clone());
                let root = venv_root(base_dir);
                tokio::task::spawn_blocking(move || {
                    ensure(&root, &package, version.as_deref(), command.as_deref())
                })
                .await
                .map_err(|e| Error::internal(format!("the install task failed: {e}")))?
            }
        }
    }
}

/// The folder holding the venvs: `$FERRY_VENV_DIR`, else `<base_dir>/.ferry/venvs`.
pub fn venv_root(base_dir: &Path) -> PathBuf {
    match std::env::var_os(VENV_DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => base_dir.join(".ferry").join("venvs"),
    }
}

fn check_name(s: &str, field: &str) -> Result<()> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{field}` must be a plain name (letters, digits, `-`, `_`, `.`), not `{s}`"
        )))
    }
}

fn check_version(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '!' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`version` must be one exact version such as \"0.10.0\", not `{v}`"
        )))
    }
}

/// What the marker file records about a finished install.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    requirement: String,
    scripts: Vec<String>,
    seconds: f64,
}

/// Installs `package` (once) into `<root>/<package>[-<version>]` and returns the path of
/// its console script. Blocking.
pub fn ensure(
    root: &Path,
    package: &str,
    version: Option<&str>,
    command: Option<&str>,
) -> Result<PathBuf> {
    let name = match version {
        Some(v) => format!("{package}-{v}"),
        None => package.to_string(),
    };
    let requirement = match version {
        Some(v) => format!("{package}=={v}"),
        None => package.to_string(),
    };
    let dir = root.join(&name);
    let marker = match read_marker(&dir, &requirement) {
        Some(m) => m,
        None => {
            fs::create_dir_all(root)
                .map_err(|e| Error::io(e, "cannot create the venv folder", root))?;
            let lock_path = root.join(format!("{name}.lock"));
            let lock = File::create(&lock_path)
                .map_err(|e| Error::io(e, "cannot create the venv lock file", &lock_path))?;
            lock.lock()
                .map_err(|e| Error::io(e, "cannot lock the venv lock file", &lock_path))?;
            // another run may have finished the install while this one waited
            match read_marker(&dir, &requirement) {
                Some(m) => m,
                None => install(&dir, &requirement)?,
            }
            // the lock is released when `lock` is dropped
        }
    };
    let script = pick_script(package, command, &marker.scripts)?;
    let path = dir.join("bin").join(&script);
    if !path.exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "`{script}` is not a program of package `{package}` (it installs: {}); set `command` to one of them",
                list(&marker.scripts)
            ),
        )
        .with("venv", dir.display()));
    }
    Ok(path)
}

fn read_marker(dir: &Path, requirement: &str) -> Option<Marker> {
    let text = fs::read_to_string(dir.join(MARKER)).ok()?;
    let m: Marker = serde_json::from_str(&text).ok()?;
    (m.requirement == requirement).then_some(m)
}

fn install(dir: &Path, requirement: &str) -> Result<Marker> {
    let started = Instant::now();
    if dir.exists() {
        // an earlier install failed or was interrupted: start again from nothing
        fs::remove_dir_all(dir).map_err(|e| Error::io(e, "cannot remove a half-made venv", dir))?;
    }
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
    tracing::info!(
        "installing `{requirement}` into {} (first use; later runs reuse it)",
        dir.display()
    );
    let out = Command::new(&python)
        .arg("-m")
        .arg("venv")
        .arg(dir)
        .output()
        .map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("cannot run `{python}` to create a virtual environment ({e}): install Python 3 with its venv module, or set FERRY_PYTHON"),
            )
        })?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "`{python} -m venv` failed (is the venv module installed? On Debian: apt-get install python3-venv):\n{}",
                tail(&out.stdout, &out.stderr)
            ),
        )
        .with("venv", dir.display()));
    }
    let pip = dir.join("bin").join("pip");
    let out = Command::new(&pip)
        .args([
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            requirement,
        ])
        .output()
        .map_err(|e| Error::io(e, "cannot run pip", &pip))?;
    if !out.status.success() {
        let text = tail(&out.stdout, &out.stderr);
        let kind = if text.contains("No matching distribution")
            || text.contains("Could not find a version")
        {
            ErrorKind::NotFound
        } else if text.contains("NewConnectionError")
            || text.contains("Connection refused")
            || text.contains("Temporary failure in name resolution")
        {
            ErrorKind::Unreachable
        } else {
            ErrorKind::Io
        };
        return Err(Error::new(
            kind,
            format!("`pip install {requirement}` failed; its last lines:\n{text}"),
        )
        .with("venv", dir.display()));
    }
    let scripts = console_scripts(dir, requirement)?;
    let marker = Marker {
        requirement: requirement.to_string(),
        scripts,
        seconds: started.elapsed().as_secs_f64(),
    };
    let path = dir.join(MARKER);
    let text = serde_json::to_string_pretty(&marker).map_err(|e| Error::internal(e.to_string()))?;
    fs::write(&path, text).map_err(|e| Error::io(e, "cannot write the venv marker", &path))?;
    tracing::info!("installed `{requirement}` in {:.1}s", marker.seconds);
    Ok(marker)
}

/// The console scripts the package installed (from its entry points).
fn console_scripts(dir: &Path, requirement: &str) -> Result<Vec<String>> {
    let dist = requirement.split("==").next().unwrap_or(requirement);
    let py = dir.join("bin").join("python");
    let code = "import sys, importlib.metadata as m\n\
                d = m.distribution(sys.argv[1])\n\
                print('\\n'.join(e.name for e in d.entry_points if e.group == 'console_scripts'))";
    let out = Command::new(&py)
        .args(["-c", code, dist])
        .output()
        .map_err(|e| Error::io(e, "cannot run the venv's python", &py))?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "cannot list the programs of `{dist}`:\n{}",
                tail(&out.stdout, &out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn pick_script(package: &str, command: Option<&str>, scripts: &[String]) -> Result<String> {
    if let Some(c) = command {
        return Ok(c.to_string());
    }
    if let [only] = scripts {
        return Ok(only.clone());
    }
    // `meltanolabs-tap-postgres` → `tap-postgres`; `airbyte-source-faker` → `source-faker`
    if let Some(s) = scripts.iter().find(|s| package.ends_with(s.as_str())) {
        return Ok(s.clone());
    }
    let roles = ["tap-", "target-", "source-", "destination-"];
    let candidates: Vec<&String> = scripts
        .iter()
        .filter(|s| roles.iter().any(|r| s.starts_with(r)))
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(Error::config(format!(
            "package `{package}` installs {} programs ({}); set `command` to the one to run",
            scripts.len(),
            list(scripts)
        ))),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// The last lines of a program's output, secrets removed, for error messages.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(15);
    let shown: Vec<String> = lines[start..]
        .iter()
        .map(|l| format!("  {}", crate::process::clip(l, 300)))
        .collect();
    ferry_core::redact::redact(&shown.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_without_io() {
        let base = Path::new("/cfg");
        let l = Launch::from_fields(
            Some("meltanolabs-tap-postgres"),
            Some("0.10.0"),
            None,
            None,
            base,
            "tap",
        )
        .unwrap();
        assert_eq!(l.display_name(), "meltanolabs-tap-postgres");
        let e =
            Launch::from_fields(Some("x; rm -rf /"), None, None, None, base, "tap").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        let e = Launch::from_fields(Some("a"), Some(">=1"), None, None, base, "tap").unwrap_err();
        assert!(e.to_string().contains("exact version"), "{e}");
        let e = Launch::from_fields(None, None, None, None, base, "tap").unwrap_err();
        assert!(e.to_string().contains("package"), "{e}");
        let e = Launch::from_fields(Some("a"), None, None, Some("b"), base, "tap").unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        match Launch::from_fields(None, None, None, Some("bin/tap.py"), base, "tap").unwrap() {
            Launch::Executable(p) => assert_eq!(p, Path::new("/cfg/bin/tap.py")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn script_is_picked_from_the_package_name() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_script("meltanolabs-tap-postgres", None, &s(&["tap-postgres"])).unwrap(),
            "tap-postgres"
        );
        assert_eq!(
            pick_script(
                "airbyte-source-faker",
                None,
                &s(&["source-declarative-manifest", "source-faker"])
            )
            .unwrap(),
            "source-faker"
        );
        let e = pick_script("x", None, &s(&["a", "b"])).unwrap_err();
        assert!(e.to_string().contains("set `command`"), "{e}");
    }
}
