//! Reading files from an SFTP server: the store lists a pattern's files (walking only the
//! folders the pattern can reach) and opens them; formats, decryption, incremental marks,
//! estimates and the reading thread are `ferry_filestore`'s.
//!
//! Incremental reads are file-granular (see `ferry_filestore::Mark`). SFTP gives times in
//! whole seconds, so the state is the newest modification second read, with the names and
//! sizes of the files read at exactly that second, saved as
//! `{ mtime_ns, modified, objects: [{ key, etag }] }` (the `etag` is the size): a file
//! rewritten within the same second with a new size is read again.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use ferry_core::{Error, ErrorKind, Result};
use ferry_filestore::{Chunks, Codec, Listed, Listing, StateShape, Store, StoreSource, Stream};
use ferry_formats::age::Identities;
use ssh2::{ErrorCode, FileStat};

use crate::config::SftpSourceConfig;
use crate::remote::{self, RemoteFile, Resuming};
use crate::session::{Server, Shared};

/// The SFTP source.
pub(crate) fn source(config: SftpSourceConfig, base_dir: &Path) -> Result<StoreSource<Remote>> {
    let keys = config.keys(base_dir)?;
    let server = config.server(base_dir)?;
    let streams = config
        .specs()?
        .into_iter()
        .map(|spec| {
            let place = Pattern::new(&spec.pattern)?;
            Ok(Stream { spec, place })
        })
        .collect::<Result<Vec<_>>>()?;
    let remote = Remote {
        shared: Arc::new(Shared::new(server)),
    };
    Ok(keys.source(remote, streams))
}

/// An SFTP server's files.
pub(crate) struct Remote {
    shared: Arc<Shared>,
}

/// Where one stream's files are.
#[derive(Clone)]
pub(crate) struct Pattern {
    glob: glob::Pattern,
    /// The folder before the first wildcard (`.`: the login folder).
    root: String,
    /// Folders below `root` the pattern reaches (`None`: any, for `**`).
    depth: Option<usize>,
    /// Whether the pattern has wildcards.
    wildcards: bool,
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Pattern {
    fn new(pattern: &str) -> Result<Pattern> {
        let invalid = |msg: &str| {
            Error::config(format!(
                "`path = \"{pattern}\"` is not a valid pattern: {msg}"
            ))
        };
        let glob = glob::Pattern::new(pattern).map_err(|e| invalid(e.msg))?;
        let parts: Vec<&str> = pattern.split('/').collect();
        let literal = parts
            .iter()
            .position(|p| has_wildcards(p))
            .unwrap_or(parts.len() - 1);
        if parts.last().is_none_or(|p| p.is_empty()) {
            return Err(invalid(
                "it names a folder; add a file pattern such as `/*.csv`",
            ));
        }
        let root = match parts[..literal].join("/") {
            r if r.is_empty() && pattern.starts_with('/') => "/".to_string(),
            r if r.is_empty() => ".".to_string(),
            r => r,
        };
        let below = &parts[literal..];
        let depth = (!below.contains(&"**")).then(|| below.len() - 1);
        Ok(Pattern {
            glob,
            root,
            depth,
            wildcards: literal < parts.len() - 1 || has_wildcards(parts[literal]),
        })
    }

    fn matches(&self, path: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.glob.matches_with(path, options)
    }
}

/// A file matching a stream's pattern.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    file: remote::Listed,
    /// The size, as text: the version the incremental mark compares.
    version: String,
}

impl Listed for Entry {
    fn name(&self) -> &str {
        &self.file.path
    }
    fn size(&self) -> u64 {
        self.file.size
    }
    fn mtime_ns(&self) -> u64 {
        self.file.mtime.saturating_mul(1_000_000_000)
    }
    fn version(&self) -> &str {
        &self.version
    }
}

/// `dir/name`, without a leading `./`.
fn join(dir: &str, name: &str) -> String {
    match dir {
        "." => name.to_string(),
        d if d.ends_with('/') => format!("{d}{name}"),
        d => format!("{d}/{name}"),
    }
}

impl Remote {
    fn server(&self) -> &Server {
        &self.shared.server
    }

    /// Every file under `dir` the pattern can reach, `depth` folders deep.
    fn walk(
        &self,
        place: &Pattern,
        dir: &str,
        depth: Option<usize>,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        let listed = self.shared.with(|sftp| sftp.readdir(Path::new(dir)))?;
        let listed = match listed {
            Ok(l) => l,
            // a folder that is not there holds nothing; `nothing_found` says why
            Err(e) if e.code() == ErrorCode::SFTP(2) => return Ok(()),
            Err(e) => {
                return Err(self
                    .server()
                    .error(e, &format!("cannot list the folder `{dir}`")))
            }
        };
        for (path, stat) in listed {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let full = join(dir, name);
            let stat = if is_link(&stat) {
                match self.shared.with(|sftp| sftp.stat(Path::new(&full)))? {
                    Ok(s) => s,
                    Err(_) => continue, // a dangling link
                }
            } else {
                stat
            };
            if stat.is_dir() {
                if depth != Some(0) && !name.starts_with('.') {
                    self.walk(place, &full, depth.map(|d| d - 1), out)?;
                }
            } else if stat.is_file() && place.matches(&full) {
                let size = stat.size.unwrap_or(0);
                out.push(Entry {
                    file: remote::Listed {
                        path: full,
                        size,
                        mtime: stat.mtime.unwrap_or(0),
                    },
                    version: size.to_string(),
                });
            }
        }
        Ok(())
    }
}

// What happens to a file once its rows are committed (`after_read`): the storage layer's
// `Store::rename`/`remove`/`archived`, kept inherent here until the trait has them.
impl Remote {
    /// Refuses to move or delete a file that changed since it was listed (and read): its
    /// new rows were not read, and the next run reads it again as it is left in place.
    fn unchanged(&self, entry: &Entry) -> Result<()> {
        let path = &entry.file.path;
        let stat = self
            .shared
            .with(|sftp| sftp.stat(Path::new(path)))?
            .map_err(|e| {
                self.server()
                    .error(e, &format!("cannot read the details of `{path}`"))
            })?;
        if stat.size != Some(entry.file.size) || stat.mtime.unwrap_or(0) != entry.file.mtime {
            return Err(Error::data(format!(
                "`{path}` changed on {} since it was read (now {} bytes, modified again): it is left in place and read again next run",
                self.server().url(),
                stat.size.unwrap_or(0)
            )));
        }
        Ok(())
    }

    /// Moves a file that was read to `to` (a path as [`Listed::name`] gives them),
    /// making folders as needed. Never replaces a file: `Ok(false)` when `to` exists
    /// (SFTP's rename refuses an existing target, so this holds even in a race).
    pub(crate) fn rename(&self, entry: &Entry, to: &str) -> Result<bool> {
        let exists = self.shared.with(|sftp| sftp.lstat(Path::new(to)))?;
        if exists.is_ok() {
            return Ok(false);
        }
        self.unchanged(entry)?;
        let conn = self.shared.conn()?;
        if let Some((dir, _)) = to.rsplit_once('/') {
            crate::sink::make_dir(
                self.server(),
                &conn.sftp,
                if dir.is_empty() { "/" } else { dir },
            )?;
        }
        let from = &entry.file.path;
        match conn.sftp.rename(Path::new(from), Path::new(to), None) {
            Ok(()) => Ok(true),
            Err(_) if conn.sftp.lstat(Path::new(to)).is_ok() => Ok(false),
            Err(e) => Err(self
                .server()
                .error(e, &format!("cannot move `{from}` to `{to}`"))),
        }
    }

    /// Deletes a file that was read (refused when it changed since it was listed).
    pub(crate) fn remove(&self, entry: &Entry) -> Result<()> {
        self.unchanged(entry)?;
        let path = &entry.file.path;
        self.shared
            .with(|sftp| sftp.unlink(Path::new(path)))?
            .map_err(|e| self.server().error(e, &format!("cannot delete `{path}`")))
    }

    /// The files of the archive folder `folder` (ending in `/`) that match the stream's
    /// pattern below its root.
    pub(crate) fn archived(&self, stream: &Stream<Pattern>, folder: &str) -> Result<Vec<Entry>> {
        let pattern = &stream.spec.pattern;
        let root = &stream.place.root;
        let below = match root.as_str() {
            "." => pattern.as_str(),
            r => pattern
                .strip_prefix(r)
                .map_or(pattern.as_str(), |p| p.trim_start_matches('/')),
        };
        let place = Pattern::new(&format!("{folder}{below}"))?;
        let mut out = Vec::new();
        self.walk(&place, &place.root, place.depth, &mut out)?;
        out.sort_by(|a, b| a.file.path.cmp(&b.file.path));
        Ok(out)
    }
}

fn is_link(stat: &FileStat) -> bool {
    stat.perm.is_some_and(|p| p & 0o170000 == 0o120000)
}

impl Store for Remote {
    type Entry = Entry;
    type Place = Pattern;
    type Chunks = Chunks<RemoteFile>;
    const NOUN: &'static str = "file";
    const STATE: StateShape = StateShape::Objects;

    /// Every matching file, sorted by path.
    fn list(&self, stream: &Stream<Pattern>) -> Result<Listing<Entry>> {
        let place = &stream.place;
        let mut out = Vec::new();
        self.walk(place, &place.root, place.depth, &mut out)
            .map_err(|e| e.with("stream", &stream.spec.name))?;
        out.sort_by(|a, b| a.file.path.cmp(&b.file.path));
        Ok(Listing::Whole(out))
    }

    fn nothing_found(&self, stream: &Stream<Pattern>) -> Error {
        let (spec, place) = (&stream.spec, &stream.place);
        let url = self.server().url();
        let root = self.shared.with(|sftp| sftp.stat(Path::new(&place.root)));
        let msg = match root {
            Ok(Err(e)) if e.code() == ErrorCode::SFTP(2) => format!(
                "no such folder `{}` on {url} (from `path = \"{}\"`)",
                place.root, spec.pattern
            ),
            _ if !place.wildcards => format!("no such file `{}` on {url}", spec.pattern),
            _ => format!("no file matches `{}` on {url}", spec.pattern),
        };
        Error::new(ErrorKind::NotFound, msg).with("stream", &spec.name)
    }

    fn open(&self, entry: &Entry) -> Result<Box<dyn Read + Send>> {
        let reader = Resuming::open(self.server().clone(), entry.file.clone())?;
        Ok(Box::new(reader))
    }

    fn chunks(
        &self,
        entry: &Entry,
        codec: &Codec,
        identities: Option<&Identities>,
    ) -> Result<Chunks<RemoteFile>> {
        let file = RemoteFile::open(self.server(), &entry.file)?;
        Chunks::new(file, codec.encrypted, &entry.file.path, "file", identities)
    }

    /// Opens the file on the kept session (a permission is checked, nothing is read).
    fn probe(&self, entry: &Entry) -> Result<()> {
        let path = Path::new(&entry.file.path);
        self.shared
            .with(|sftp| sftp.open(path).map(drop))?
            .map_err(|e| {
                self.server()
                    .error(e, &format!("cannot open `{}`", entry.file.path))
            })
    }

    /// Logs in (the host key, then the credentials).
    fn check(&self) -> Result<()> {
        self.shared.conn().map(drop)
    }

    fn archived(&self, stream: &Stream<Pattern>, folder: &str) -> Result<Vec<Entry>> {
        Remote::archived(self, stream, folder)
    }

    fn rename(&self, entry: &Entry, to: &str) -> Result<bool> {
        Remote::rename(self, entry, to)
    }

    fn remove(&self, entry: &Entry) -> Result<()> {
        Remote::remove(self, entry)
    }

    fn location(&self, entry: &Entry) -> String {
        self.server().location(&entry.file.path)
    }

    fn max_footers(&self) -> usize {
        1000
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ferry_testkit::sftp_server::{SftpServer, PASSWORD, USER};

    use super::*;

    fn remote(server: &SftpServer, paths: &[&str]) -> (Remote, Vec<Stream<Pattern>>) {
        let mut toml = format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nhost_key = \"{}\"\nstreams = [",
            server.port(),
            server.host_key()
        );
        for (i, p) in paths.iter().enumerate() {
            toml.push_str(&format!("{{ name = \"s{i}\", path = \"{p}\" }},"));
        }
        toml.push_str("]\nformat = \"csv\"\n");
        let config: SftpSourceConfig = ferry_core::ConfigNode::from_toml(&toml, ".")
            .unwrap()
            .parse()
            .unwrap();
        let streams = config
            .specs()
            .unwrap()
            .into_iter()
            .map(|spec| {
                let place = Pattern::new(&spec.pattern).unwrap();
                Stream { spec, place }
            })
            .collect();
        let shared = Arc::new(Shared::new(config.server(Path::new(".")).unwrap()));
        (Remote { shared }, streams)
    }

    fn names(remote: &Remote, stream: &Stream<Pattern>) -> Vec<String> {
        match remote.list(stream).unwrap() {
            Listing::Whole(v) => v.into_iter().map(|e| e.file.path).collect(),
            Listing::Pages(_) => unreachable!(),
        }
    }

    #[test]
    fn patterns_list_the_files_they_name_and_say_why_when_none() {
        let server = SftpServer::start();
        for f in [
            "in/a.csv",
            "in/b.csv",
            "in/.hidden.csv",
            "in/sub/c.csv",
            "in/sub/deep/d.csv",
            "other/x.csv",
        ] {
            server.put(f, b"id\n1\n");
        }
        let abs = format!("{}/in/*.csv", server.root().display());
        let (r, s) = remote(
            &server,
            &[
                "in/*.csv",
                "in/**/*.csv",
                "in/*/c.csv",
                "in/b.csv",
                &abs,
                "nope/*.csv",
                "in/z*.csv",
            ],
        );
        assert_eq!(names(&r, &s[0]), ["in/a.csv", "in/b.csv"]);
        assert_eq!(
            names(&r, &s[1]),
            ["in/a.csv", "in/b.csv", "in/sub/c.csv", "in/sub/deep/d.csv"]
        );
        assert_eq!(names(&r, &s[2]), ["in/sub/c.csv"]);
        assert_eq!(names(&r, &s[3]), ["in/b.csv"]);
        let root = server.root().display().to_string();
        assert_eq!(
            names(&r, &s[4]),
            [format!("{root}/in/a.csv"), format!("{root}/in/b.csv")]
        );
        assert!(names(&r, &s[5]).is_empty());
        let e = r.nothing_found(&s[5]).to_string();
        assert!(e.contains("no such folder `nope`"), "{e}");
        let e = r.nothing_found(&s[6]).to_string();
        assert!(
            e.contains("no file matches `in/z*.csv` on sftp://127.0.0.1:"),
            "{e}"
        );
    }

    #[test]
    fn read_files_are_archived_or_deleted_only_when_unchanged() {
        let server = SftpServer::start();
        server.put("in/a.csv", b"id\n1\n");
        server.put("in/b.csv", b"id\n2\n");
        server.put("in/c.csv", b"id\n3\n");
        server.put("in/archive/b.csv", b"id\n9\n");
        let (r, s) = remote(&server, &["in/*.csv"]);
        let listed = match r.list(&s[0]).unwrap() {
            Listing::Whole(v) => v,
            Listing::Pages(_) => unreachable!(),
        };
        // moved, folders made
        assert!(r.rename(&listed[0], "in/archive/2026/a.csv").unwrap());
        assert!(server.root().join("in/archive/2026/a.csv").exists());
        assert!(!server.root().join("in/a.csv").exists());
        // never over an existing file
        assert!(!r.rename(&listed[1], "in/archive/b.csv").unwrap());
        assert_eq!(
            std::fs::read(server.root().join("in/archive/b.csv")).unwrap(),
            b"id\n9\n"
        );
        assert_eq!(
            names(&r, &s[0]),
            ["in/b.csv", "in/c.csv"],
            "the archive folder is not part of the stream"
        );
        assert_eq!(
            r.archived(&s[0], "in/archive/")
                .unwrap()
                .iter()
                .map(|e| e.file.path.as_str())
                .collect::<Vec<_>>(),
            ["in/archive/b.csv"]
        );
        // a file that grew since it was read stays
        std::fs::write(server.root().join("in/c.csv"), b"id\n3\n4\n").unwrap();
        let e = r.remove(&listed[2]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataInvalid);
        assert!(e.to_string().contains("`in/c.csv` changed"), "{e}");
        assert!(server.root().join("in/c.csv").exists());
        r.remove(&listed[1]).unwrap();
        assert!(!server.root().join("in/b.csv").exists());
    }

    #[test]
    fn a_folder_the_user_may_not_enter_is_permission_denied_naming_it() {
        let server = SftpServer::start();
        server.put("in/a.csv", b"id\n1\n");
        // owned by root, closed to everyone else
        let locked = server.root().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("x.csv"), b"id\n1\n").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (r, s) = remote(&server, &["in/*.csv", "locked/*.csv"]);
        let e = r.list(&s[1]).err().expect("refused");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(
            e.to_string().contains("cannot list the folder `locked`"),
            "{e}"
        );
        // the archive folder
        let listed = match r.list(&s[0]).unwrap() {
            Listing::Whole(v) => v,
            Listing::Pages(_) => unreachable!(),
        };
        let e = r.rename(&listed[0], "locked/archive/a.csv").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("locked/archive"), "{e}");
        assert!(server.root().join("in/a.csv").exists(), "the file stays");
    }
}
