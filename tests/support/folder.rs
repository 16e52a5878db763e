//! Client folders: a temporary folder with its config and data, files of this repository
//! copied in.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The path of `path` in this repository (`README.md`, `examples/quickstart` …).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Copies the repository's `from` to `dir/to`.
pub fn copy_from_repo(from: &str, dir: &Path, to: &str) {
    std::fs::copy(repo(from), dir.join(to)).unwrap();
}

/// Writes `contents` to `dir/name`.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}

/// A temporary client folder whose `sync.toml` is `toml`.
pub fn with_config(toml: &str) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "sync.toml", toml);
    tmp
}

/// Every file under `dir`, in its subfolders too.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// Makes the script at `path` executable.
#[cfg(unix)]
pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Replaces `from` with `to` in the file `dir/name` (a config a test changes).
pub fn edit(dir: &Path, name: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    write(dir, name, text.replace(from, to));
}
