//! Atomic file writes: the state, the vault, receipts and reports go through here.
//!
//! A write goes to a new temporary file beside the target, is fsynced, renamed over the
//! target, and the folder is fsynced: a crash leaves the old file or the new one, never
//! half of one. The temporary file gets a random name (12 bytes from the system's random
//! source) and is opened with `O_CREAT | O_EXCL` (which never follows a symlink, so a file or link planted at a
//! guessable name is refused, not written through), with its mode given to `open` and, for
//! private files, set again on the open file before any byte is written. The rename
//! replaces a symlink at the target itself; it never writes where the link points.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file
/// (mode 0666 less the umask, as a plain create would give).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o666)
}

/// Like [`write_atomic`], but the file is readable and writable by its owner only
/// (mode 0600 on Unix) from its creation on: for vaults, key material, private files.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// Moves the file `from` to `to` (whose folder must exist), durably: a rename within one
/// filesystem; across filesystems a copy to a temporary file beside `to`, fsynced and
/// renamed into place, then `from` removed. Either way both folders are fsynced, so a
/// crash leaves the file at one place or the other (across filesystems, possibly both),
/// never half of it. Replaces a file at `to`: check first when it must not.
pub fn move_file(from: &Path, to: &Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => copy_across(from, to)?,
        Err(e) => return Err(Error::io(e, "cannot move", from)),
    }
    sync_folder(folder_of(to));
    sync_folder(folder_of(from));
    Ok(())
}

/// The copy of [`move_file`] across filesystems.
fn copy_across(from: &Path, to: &Path) -> Result<()> {
    let dir = folder_of(to);
    let name = to.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let prefix = temp_prefix(name, std::process::id());
    let (tmp_path, mut file) = create_temp(dir, &prefix, 0o666)?;
    let copied = (|| -> std::io::Result<()> {
        let mut src = std::fs::File::open(from)?;
        std::io::copy(&mut src, &mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp_path, to)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(Error::io(e, "cannot copy across filesystems", from));
    }
    sync_folder(dir);
    std::fs::remove_file(from).map_err(|e| Error::io(e, "copied, but cannot remove", from))
}

/// Makes a folder's entries durable (best effort: not every system can open a folder).
fn sync_folder(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The start of the temporary files' names for `path` written by process `pid`:
/// `.<name>.<pid>.`, followed by random letters and `.tmp`. The pid lets
/// [`sweep_stale_temps`] tell a dead writer's leftovers from a live one's.
fn temp_prefix(name: &str, pid: u32) -> String {
    format!(".{name}.{pid}.")
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = folder_of(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, "cannot create folder", dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let prefix = temp_prefix(name, std::process::id());
    let (tmp_path, mut file) = create_temp(dir, &prefix, mode)?;
    // removes the temporary file on every early return
    struct Cleanup<'a>(Option<&'a Path>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if let Some(p) = self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let mut cleanup = Cleanup(Some(&tmp_path));
    let written = (|| -> std::io::Result<()> {
        #[cfg(unix)]
        if mode == 0o600 {
            // on the open file, whatever the umask or an ACL made of the create
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()
    })();
    written.map_err(|e| Error::io(e, "cannot write file atomically", path))?;
    drop(file);
    std::fs::rename(&tmp_path, path)
        .map_err(|e| Error::io(e, "cannot move the finished file into place", path))?;
    cleanup.0 = None;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file `<prefix><random>.tmp` in `dir`, created with `O_CREAT | O_EXCL` (never through
/// a planted file or link) and `mode`; a name that exists already is drawn again.
fn create_temp(dir: &Path, prefix: &str, mode: u32) -> Result<(std::path::PathBuf, std::fs::File)> {
    use ring::rand::SecureRandom;
    const LETTERS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut last = None;
    for _ in 0..16 {
        let mut raw = [0u8; 12];
        rng.fill(&mut raw)
            .map_err(|_| Error::internal("the system's random source failed"))?;
        let random: String = raw
            .iter()
            .map(|b| LETTERS[*b as usize % 62] as char)
            .collect();
        let tmp = dir.join(format!("{prefix}{random}.tmp"));
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match open.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(Error::io(e, "cannot create a temporary file", dir)),
        }
    }
    Err(Error::io(
        last.expect("sixteen tries"),
        "cannot create a temporary file",
        dir,
    ))
}

/// Removes the temporary files that interrupted atomic writes of `path` left behind
/// (`.<name>.<pid>.<random>.tmp`, and `.<name>.<pid>.tmp` of older builds) when their
/// process no longer runs: a run killed while writing its state leaves one, and the state
/// itself is intact (the rename never happened). Where a process cannot be looked up (not
/// Linux), the files stay.
pub fn sweep_stale_temps(path: &Path) {
    let dir = folder_of(path);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) {
            // a symlink is removed, never followed
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (true where that cannot be told).
fn process_runs(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod move_tests {
    use super::*;

    #[test]
    fn moves_and_copies_across() {
        let dir = std::env::temp_dir().join(format!("ferry-move-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("to")).unwrap();
        let (a, b, c) = (
            dir.join("a.csv"),
            dir.join("to/a.csv"),
            dir.join("to/c.csv"),
        );
        std::fs::write(&a, b"id\n1\n").unwrap();
        move_file(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"id\n1\n");
        // what a move across filesystems does
        copy_across(&b, &c).unwrap();
        assert!(!b.exists());
        assert_eq!(std::fs::read(&c).unwrap(), b"id\n1\n");
        let left: Vec<_> = std::fs::read_dir(dir.join("to")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        let e = move_file(&dir.join("gone.csv"), &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gone.csv"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn temp_files_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // pid 4294967 is above Linux's limit (2^22), so no process has it
        let dead_old = dir.path().join(".state.json.4294967.tmp");
        let dead_new = dir.path().join(".state.json.4294967.AbC123xyZ789.tmp");
        let mine = dir.path().join(format!(
            ".state.json.{}.q1w2e3r4t5y6.tmp",
            std::process::id()
        ));
        let other = dir.path().join(".other.json.4294967.tmp");
        for f in [&dead_old, &dead_new, &mine, &other] {
            std::fs::write(f, "{").unwrap();
        }
        sweep_stale_temps(&path);
        assert!(!dead_old.exists(), "an old-style dead temp file stays");
        assert!(!dead_new.exists(), "a dead writer's temp file stays");
        assert!(
            mine.exists() && other.exists(),
            "a live or unrelated file went"
        );
    }

    #[test]
    #[cfg(unix)]
    fn planted_temp_names_and_symlinks_are_never_followed() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.path().join("secrets.vault");
        // the name older builds used, planted as a world-readable file and as a symlink
        let old_tmp = dir
            .path()
            .join(format!(".secrets.vault.{}.tmp", std::process::id()));
        symlink(&victim, &old_tmp).unwrap();
        // the target itself a symlink to a file elsewhere
        symlink(&victim, &path).unwrap();
        write_atomic_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "the target is still a symlink");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert_eq!(
            std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // a world-readable file at the old name changes nothing either
        std::fs::remove_file(&old_tmp).unwrap();
        std::fs::write(&old_tmp, "planted").unwrap();
        std::fs::set_permissions(&old_tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_atomic_private(&path, b"secret2").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&old_tmp).unwrap(), "planted");
    }
}
