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
use ferry_filestore::{
    identities, Chunks, Codec, Listed, Listing, StateShape, Store, StoreSource, Stream,
};
use ferry_formats::age::Identities;
use ssh2::{ErrorCode, FileStat};

use crate::config::SftpSourceConfig;
use crate::remote::{self, RemoteFile, Resuming};
use crate::session::{Server, Shared};

/// The SFTP source.
pub(crate) fn source(config: SftpSourceConfig, base_dir: &Path) -> Result<StoreSource<Remote>> {
    let identities = identities(config.identity.as_ref(), config.passphrase.as_ref())?;
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
    Ok(StoreSource::new(remote, streams, identities))
}

/// An SFTP server's files.
pub(crate) struct Remote {
    shared: Arc<Shared>,
}

/// Where one stream's files are.
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
            return Err(invalid("it names a folder; add a file pattern such as `/*.csv`"));
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
    fn walk(&self, place: &Pattern, dir: &str, depth: Option<usize>, out: &mut Vec<Entry>) -> Result<()> {
        let listed = self
            .shared
            .with(|sftp| sftp.readdir(Path::new(dir)))?;
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
        let root = self
            .shared
            .with(|sftp| sftp.stat(Path::new(&place.root)));
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

    fn location(&self, entry: &Entry) -> String {
        self.server().location(&entry.file.path)
    }

    fn max_footers(&self) -> usize {
        1000
    }
}
