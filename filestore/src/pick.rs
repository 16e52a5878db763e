//! Which files of a pattern a stream reads, and in what order: never the archive folder's
//! (`after_read = "archive"`), with `name_date` ordered by the date in their names, with
//! `newest_only` only the newest.

use ferry_core::{Error, Result};

use crate::mark::{order, Listed};
use crate::name_date::NameDate;
use crate::naming::archive_folder;
use crate::options::AfterRead;
use crate::store::{Listing, Store, Stream};

/// The files of `stream` a read, a check or an inference works on.
pub(crate) fn listing<S: Store>(store: &S, stream: &Stream<S::Place>) -> Result<Listing<S::Entry>> {
    let spec = &stream.spec;
    let listing = store.list(stream)?;
    // files already archived match a `**` pattern, and are never read again
    let listing = match spec.after_read {
        AfterRead::Archive => {
            let folder = archive_folder(&store.root(stream), &spec.archive_to);
            listing.filter(move |f| !f.name().starts_with(&folder))
        }
        _ => listing,
    };
    if !spec.newest_only && spec.name_date.is_none() {
        return Ok(listing);
    }
    let files = listing.collect(|_| true)?;
    let mut files = match &spec.name_date {
        Some(date) => by_date(files, date, S::NOUN)?,
        None => files,
    };
    if spec.newest_only {
        let newest = match &spec.name_date {
            // dated: the last in date order
            Some(_) => files.pop(),
            None => files.into_iter().max_by(|a, b| order(a).cmp(&order(b))),
        };
        files = newest.into_iter().collect();
    }
    Ok(Listing::Whole(files))
}

/// The first file of a stream in name order; with `after_read = "archive"` and none left,
/// the newest archived one (a drop folder is often empty, and its columns are still
/// known); the store's precise error when there is none.
pub(crate) fn first<S: Store>(store: &S, stream: &Stream<S::Place>) -> Result<S::Entry> {
    if let Some(f) = listing(store, stream)?.first()? {
        return Ok(f);
    }
    if let Some(f) = newest_archived(store, stream)? {
        return Ok(f);
    }
    Err(store.nothing_found(stream))
}

/// The newest file of the stream's archive folder (`after_read = "archive"`), if any.
pub(crate) fn newest_archived<S: Store>(
    store: &S,
    stream: &Stream<S::Place>,
) -> Result<Option<S::Entry>> {
    let spec = &stream.spec;
    if spec.after_read != AfterRead::Archive {
        return Ok(None);
    }
    let folder = archive_folder(&store.root(stream), &spec.archive_to);
    let archived = store.archived(stream, &folder)?;
    Ok(archived.into_iter().max_by(|a, b| order(a).cmp(&order(b))))
}

/// `files` in the order of the dates in their names (then by name); an error naming a
/// file that has none.
fn by_date<E: Listed>(files: Vec<E>, date: &NameDate, noun: &str) -> Result<Vec<E>> {
    let mut dated = Vec::with_capacity(files.len());
    for f in files {
        let Some(d) = date.find(f.name()) else {
            return Err(Error::data(format!(
                "{noun} `{}` has no date like `name_date = \"{}\"` in its name: rename it, move it out of the pattern, or change `path` so it does not match",
                f.name(),
                date.format()
            )));
        };
        dated.push((d, f));
    }
    dated.sort_by(|(a, x), (b, y)| (a, x.name()).cmp(&(b, y.name())));
    Ok(dated.into_iter().map(|(_, f)| f).collect())
}
