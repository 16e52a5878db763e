//! Reading CSV, JSON Lines and Parquet files from a local folder: the store lists a
//! pattern's files and opens them; formats, decryption, incremental marks, estimates and
//! the reading thread are `ferry_filestore`'s.
//!
//! Files ending in `.age` are decrypted while they are read (with the source's `identity`
//! and/or `passphrase`). Parquet is read row group by row group with random access; an
//! encrypted Parquet file is decrypted chunk by chunk where Parquet seeks, never whole.
//!
//! Incremental reads are file-granular (see `ferry_filestore::Mark`): the state is the
//! modification time of the newest file read in full, with the paths read at exactly that
//! time, saved as `{ mtime_ns, modified, path, paths }`.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use ferry_core::{Error, ErrorKind, Result};
use ferry_filestore::{
    Chunks, Codec, Listed, Listing, StateShape, Store, StoreSource, Stream, StreamSpec,
};
use ferry_formats::age::Identities;

use crate::config::FileSourceConfig;

/// The file source: a local folder's files, as patterns relative to `base_dir` name them.
pub(crate) fn source(config: FileSourceConfig, base_dir: &Path) -> Result<StoreSource<Folder>> {
    let keys = config.keys(base_dir)?;
    let streams = config
        .specs()?
        .into_iter()
        .map(|spec| {
            let place = Pattern::new(&spec, base_dir)?;
            Ok(Stream { spec, place })
        })
        .collect::<Result<Vec<_>>>()?;
    let folder = Folder {
        base_dir: base_dir.to_path_buf(),
    };
    Ok(keys.source(folder, streams))
}

/// The folder relative paths are resolved against and shown relative to.
pub(crate) struct Folder {
    base_dir: PathBuf,
}

/// Where one stream's files are.
#[derive(Clone)]
pub(crate) struct Pattern {
    /// The pattern made absolute, the base folder escaped for `glob`.
    glob: String,
    /// The pattern made absolute (unescaped).
    resolved: PathBuf,
    /// Whether the pattern has wildcards.
    wildcards: bool,
}

/// A file matching a stream's pattern.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    path: PathBuf,
    /// The path as shown in messages and stored in state (relative to the base folder).
    shown: String,
    mtime_ns: u64,
    size: u64,
}

impl Listed for Entry {
    fn name(&self) -> &str {
        &self.shown
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn mtime_ns(&self) -> u64 {
        self.mtime_ns
    }
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Pattern {
    fn new(spec: &StreamSpec, base_dir: &Path) -> Result<Self> {
        let pattern = Path::new(&spec.pattern);
        let (glob, resolved) = if pattern.is_absolute() {
            (spec.pattern.clone(), pattern.to_path_buf())
        } else {
            let base = base_dir.to_str().ok_or_else(|| {
                Error::config(format!(
                    "the config folder `{}` is not valid UTF-8",
                    base_dir.display()
                ))
            })?;
            let base = base.trim_end_matches('/');
            let glob = if base.is_empty() {
                spec.pattern.clone()
            } else {
                format!("{}/{}", glob::Pattern::escape(base), spec.pattern)
            };
            (glob, base_dir.join(pattern))
        };
        glob::Pattern::new(&glob).map_err(|e| {
            Error::config(format!(
                "`path = \"{}\"` is not a valid pattern: {}",
                spec.pattern, e.msg
            ))
        })?;
        Ok(Pattern {
            glob,
            resolved,
            wildcards: has_wildcards(&spec.pattern),
        })
    }

    /// The folder the pattern starts in: everything before its first wildcard component.
    fn root(&self) -> PathBuf {
        let mut root = PathBuf::new();
        for c in self.resolved.components() {
            if matches!(c, Component::Normal(s) if has_wildcards(&s.to_string_lossy())) {
                return root;
            }
            root.push(c);
        }
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

impl Folder {
    fn shown(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.base_dir).unwrap_or(path);
        rel.to_string_lossy().replace('\\', "/")
    }
}

impl Store for Folder {
    type Entry = Entry;
    type Place = Pattern;
    type Chunks = Chunks<File>;
    const STATE: StateShape = StateShape::Paths;

    /// Every matching file, sorted by path.
    fn list(&self, stream: &Stream<Pattern>) -> Result<Listing<Entry>> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&stream.place.glob, options).map_err(|e| {
            Error::config(format!(
                "`path = \"{}\"` is not a valid pattern: {}",
                stream.spec.pattern, e.msg
            ))
        })?;
        let mut out = Vec::new();
        for p in paths {
            let path = p.map_err(|e| {
                let path = e.path().to_path_buf();
                Error::io(e.into(), "cannot list", path)
            })?;
            let meta = std::fs::metadata(&path)
                .map_err(|e| Error::io(e, "cannot read file details", &path))?;
            if !meta.is_file() {
                continue;
            }
            out.push(Entry {
                shown: self.shown(&path),
                path,
                mtime_ns: mtime_ns(&meta),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing::Whole(out))
    }

    /// Says precisely why no file matched.
    fn nothing_found(&self, stream: &Stream<Pattern>) -> Error {
        let (spec, place) = (&stream.spec, &stream.place);
        let pattern = &spec.pattern;
        let folder = if place.wildcards {
            place.root()
        } else {
            place
                .resolved
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        let missing_folder = !folder.as_os_str().is_empty() && !folder.is_dir();
        let empty_folder = place.wildcards && !missing_folder;
        let msg = if missing_folder {
            format!(
                "no such folder `{}` (from `path = \"{pattern}\"`)",
                folder.display()
            )
        } else if !place.wildcards && place.resolved.is_dir() {
            let format = spec.format.map_or(String::new(), |f| f.to_string());
            format!(
                "`{}` is a folder, not a file: use a pattern such as `{}/*.{format}`",
                place.resolved.display(),
                pattern.trim_end_matches('/'),
            )
        } else if !place.wildcards {
            format!("no such file `{}`", place.resolved.display())
        } else {
            format!("no file matches `{pattern}` in `{}`", folder.display())
        };
        let e = Error::new(ErrorKind::NotFound, msg).with("stream", &spec.name);
        // the folder is there but holds no matching file yet (a new client's `data/`)
        if empty_folder {
            e.with("pattern", pattern)
        } else {
            e
        }
    }

    fn open(&self, entry: &Entry) -> Result<Box<dyn Read + Send>> {
        let file = File::open(&entry.path).map_err(|e| Error::io(e, "cannot open", &entry.path))?;
        Ok(Box::new(file))
    }

    fn chunks(
        &self,
        entry: &Entry,
        codec: &Codec,
        identities: Option<&Identities>,
    ) -> Result<Chunks<File>> {
        let file = File::open(&entry.path).map_err(|e| Error::io(e, "cannot open", &entry.path))?;
        Chunks::new(file, codec.encrypted, &entry.shown, "file", identities)
    }

    fn probe(&self, entry: &Entry) -> Result<()> {
        self.open(entry).map(drop)
    }

    /// The folder before the pattern's first wildcard, as paths are shown.
    fn root(&self, stream: &Stream<Pattern>) -> String {
        let root = self.shown(&stream.place.root());
        if root.is_empty() || root.ends_with('/') {
            root
        } else {
            format!("{root}/")
        }
    }

    /// The pattern below its root, matched in the archive folder.
    fn archived(&self, stream: &Stream<Pattern>, folder: &str) -> Result<Vec<Entry>> {
        let pattern = &stream.spec.pattern;
        let below = &pattern[ferry_filestore::pattern_root(pattern).len()..];
        let mut spec = stream.spec.clone();
        spec.pattern = format!("{folder}{below}");
        let place = Pattern::new(&spec, &self.base_dir)?;
        match self.list(&Stream { spec, place })? {
            Listing::Whole(files) => Ok(files),
            Listing::Pages(_) => Ok(Vec::new()),
        }
    }

    /// A rename within the filesystem; across filesystems a copy made durable, then the
    /// original removed ([`ferry_core::atomic::move_file`]).
    fn rename(&self, entry: &Entry, to: &str) -> Result<bool> {
        let target = self.base_dir.join(to);
        if target.symlink_metadata().is_ok() {
            return Ok(false);
        }
        unchanged(entry)?;
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(e, "cannot create the archive folder", dir))?;
        }
        ferry_core::atomic::move_file(&entry.path, &target)?;
        Ok(true)
    }

    fn remove(&self, entry: &Entry) -> Result<()> {
        unchanged(entry)?;
        std::fs::remove_file(&entry.path).map_err(|e| Error::io(e, "cannot delete", &entry.path))
    }
}

/// Refuses to move or delete a file that changed since it was listed (and read): its new
/// rows were not read, and the next run reads it again as it is left in place.
fn unchanged(entry: &Entry) -> Result<()> {
    let meta = std::fs::metadata(&entry.path)
        .map_err(|e| Error::io(e, "cannot read file details", &entry.path))?;
    if mtime_ns(&meta) != entry.mtime_ns || meta.len() != entry.size {
        return Err(Error::data(format!(
            "`{}` changed since it was read (its size or modification time is not the one read)",
            entry.shown
        )));
    }
    Ok(())
}

/// A file's modification time, nanoseconds since the epoch (0 when unknown).
fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64)
}
