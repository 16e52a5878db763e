//! A store: the one part a file-like connector writes. It lists a stream's files and
//! opens them; [`crate::StoreSource`] does the rest.

use std::io::Read;

use ferry_core::{Error, ErrorKind, Result};
use ferry_formats::age::Identities;
use ferry_formats::codec::ChunkReader;

use crate::input::Codec;
use crate::mark::{Listed, StateShape};
use crate::options::StreamSpec;

/// A place holding files (a folder, a bucket, a server). Every method is called on a
/// blocking thread, so a store may block (an async client waits on
/// `tokio::runtime::Handle::current()`).
pub trait Store: Send + Sync + 'static {
    /// A file as listed.
    type Entry: Listed + Clone + Send + Sync + 'static;
    /// Where one stream's files are: its pattern, resolved for this store (cloned for
    /// each stream `sheet = "*"` makes).
    type Place: Clone + Send + Sync + 'static;
    /// A file opened for random access (Parquet).
    type Chunks: ChunkReader<T = Box<dyn Read + Send>> + 'static;

    /// What a file is called in messages and error context (`file`, `object`).
    const NOUN: &'static str = "file";
    /// How the incremental state is saved.
    const STATE: StateShape;

    /// The files of a stream that match its pattern, in name order.
    fn list(&self, stream: &Stream<Self::Place>) -> Result<Listing<Self::Entry>>;

    /// The error for a stream none of whose files exists, saying precisely why.
    fn nothing_found(&self, stream: &Stream<Self::Place>) -> Error;

    /// The bytes of a file as stored.
    fn open(&self, entry: &Self::Entry) -> Result<Box<dyn Read + Send>>;

    /// A file opened for random access, decrypted when `codec.encrypted`.
    fn chunks(
        &self,
        entry: &Self::Entry,
        codec: &Codec,
        identities: Option<&Identities>,
    ) -> Result<Self::Chunks>;

    /// Checks a file that is not encrypted can be read, as cheaply as the store allows
    /// (an encrypted one is opened, to check its key).
    fn probe(&self, entry: &Self::Entry) -> Result<()>;

    /// Checks the store itself can be reached, before its streams are (default: nothing
    /// more than the streams' checks).
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// How to decode a file (default: [`Codec::of`]; a store refuses here what it cannot
    /// read).
    fn codec(&self, spec: &StreamSpec, entry: &Self::Entry) -> Result<Codec> {
        Codec::of(spec, entry.name(), Self::NOUN)
    }

    /// How a file is named in the file column (default: its name).
    fn location(&self, entry: &Self::Entry) -> String {
        entry.name().to_string()
    }

    /// The folder (or key prefix) a stream's pattern starts in, as [`Listed::name`] gives
    /// names, ending in `/` (empty: the top): `archive_to` is below it. Default: the
    /// configured pattern up to the `/` before its first wildcard ([`crate::pattern_root`]).
    fn root(&self, stream: &Stream<Self::Place>) -> String {
        crate::naming::pattern_root(&stream.spec.pattern)
    }

    /// The files in the stream's archive folder `folder` (a name prefix ending in `/`, as
    /// [`Store::root`] and `archive_to` make it) that match the pattern below its root,
    /// to infer the columns of a stream whose files were all archived (a drop folder is
    /// often empty). Default: none (such a stream is then an error until a file comes).
    fn archived(&self, stream: &Stream<Self::Place>, folder: &str) -> Result<Vec<Self::Entry>> {
        let _ = (stream, folder);
        Ok(Vec::new())
    }

    /// Moves a file that was read to `to` (a name as [`Listed::name`] gives them, in the
    /// stream's archive folder), making folders as needed, atomically where the store can
    /// (a rename; else a copy made durable, then the original removed). Never replaces
    /// a file: `Ok(false)` when `to` exists, nothing moved. A store that can tell the file
    /// changed since `entry` was listed (another modification time, size or version)
    /// refuses with an error saying so: its new rows were not read. Default: unsupported.
    fn rename(&self, entry: &Self::Entry, to: &str) -> Result<bool> {
        let _ = (entry, to);
        Err(unsupported(Self::NOUN, "move"))
    }

    /// Deletes a file that was read, with the same refusal as [`Store::rename`] when it
    /// changed since it was listed. Default: unsupported.
    fn remove(&self, entry: &Self::Entry) -> Result<()> {
        let _ = entry;
        Err(unsupported(Self::NOUN, "delete"))
    }

    /// Parquet footers an estimate reads at most, beyond which its rows are unknown
    /// (default: all; a remote store pays a request or two per footer).
    fn max_footers(&self) -> usize {
        usize::MAX
    }
}

/// One stream: what it is and where its files are.
pub struct Stream<P> {
    /// The validated settings.
    pub spec: StreamSpec,
    /// The pattern, resolved by the store.
    pub place: P,
}

/// The files of a stream, in name order.
pub enum Listing<E> {
    /// All of them at once (a folder): a full refresh can checkpoint after each file.
    Whole(Vec<E>),
    /// Page by page (an object store holding millions), one page in memory at a time: a
    /// full refresh checkpoints once, at the end.
    Pages(Box<dyn Iterator<Item = Result<Vec<E>>> + Send>),
}

impl<E> Listing<E> {
    /// The first file, if any.
    pub fn first(self) -> Result<Option<E>> {
        match self {
            Listing::Whole(entries) => Ok(entries.into_iter().next()),
            Listing::Pages(pages) => {
                for page in pages {
                    if let Some(e) = page?.into_iter().next() {
                        return Ok(Some(e));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The same listing without the files `keep` drops.
    pub fn filter(self, keep: impl Fn(&E) -> bool + Send + 'static) -> Listing<E>
    where
        E: 'static,
    {
        match self {
            Listing::Whole(mut entries) => {
                entries.retain(|e| keep(e));
                Listing::Whole(entries)
            }
            Listing::Pages(pages) => {
                Listing::Pages(Box::new(pages.map(move |page| {
                    page.map(|p| p.into_iter().filter(|e| keep(e)).collect())
                })))
            }
        }
    }

    /// Every file that `keep` keeps.
    pub fn collect(self, mut keep: impl FnMut(&E) -> bool) -> Result<Vec<E>> {
        match self {
            Listing::Whole(mut entries) => {
                entries.retain(|e| keep(e));
                Ok(entries)
            }
            Listing::Pages(pages) => {
                let mut out = Vec::new();
                for page in pages {
                    out.extend(page?.into_iter().filter(|e| keep(e)));
                }
                Ok(out)
            }
        }
    }
}

/// The error of a store that cannot move or delete files.
fn unsupported(noun: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("this store cannot {what} a {noun}: set `after_read = \"leave\"`"),
    )
}
