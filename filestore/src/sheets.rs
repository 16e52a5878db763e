//! `sheet = "*"`: one stream per sheet of a workbook, named `<stream>_<sheet>`, found in
//! the stream's first file (none left: the newest archived one) when the source is first
//! used (Excel forbids `*` in a sheet's name, so it names no sheet).

use std::sync::Arc;

use ferry_core::{Error, Result};
use ferry_formats::age::Identities;
use ferry_formats::codec::{sheet_names, ChunkCursor, Format, Sheet};

use crate::mark::Listed;
use crate::pick::first;
use crate::store::{Store, Stream};

/// The configured streams, each `sheet = "*"` one replaced by a stream per sheet of its
/// first file.
pub(crate) fn expand<S: Store>(
    store: &S,
    streams: &[Arc<Stream<S::Place>>],
    identities: Option<&Identities>,
) -> Result<Vec<Arc<Stream<S::Place>>>> {
    let mut out = Vec::new();
    for s in streams {
        if !s.spec.every_sheet {
            out.push(s.clone());
            continue;
        }
        let spec = &s.spec;
        // an emptied drop folder: the sheets of the newest archived workbook
        let first = first(store, s)?;
        let codec = store.codec(spec, &first)?;
        if codec.format != Format::Excel || codec.archive.is_some() {
            return Err(Error::config(format!(
                "stream `{}`: `sheet = \"*\"` makes a stream per sheet of a workbook, and `{}` is not one",
                spec.name,
                first.name()
            )));
        }
        let chunks = ChunkCursor::new(store.chunks(&first, &codec, identities)?);
        let sheets = sheet_names(chunks, Some(first.name()))
            .map_err(|e| e.with(S::NOUN, first.name()).with("stream", &spec.name))?;
        for sheet in sheets {
            let mut one = spec.clone();
            one.name = format!("{}_{}", spec.name, clean(&sheet));
            one.excel.sheet = Sheet::Name(sheet);
            one.every_sheet = false;
            if out
                .iter()
                .any(|o: &Arc<Stream<S::Place>>| o.spec.name == one.name)
            {
                return Err(Error::config(format!(
                    "stream `{}` is made twice by `sheet = \"*\"` (two sheets differ only in characters other than letters and digits): name the streams with `streams = [{{ name = …, sheet = … }}]`",
                    one.name
                )));
            }
            out.push(Arc::new(Stream {
                spec: one,
                place: s.place.clone(),
            }));
        }
    }
    Ok(out)
}

/// A sheet's name as part of a stream name: letters, digits, `-` and `_` kept, anything
/// else `_` (`Q1 2024` → `Q1_2024`).
fn clean(sheet: &str) -> String {
    sheet
        .trim()
        .chars()
        .map(|c| match c {
            c if c.is_alphanumeric() || c == '-' => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sheet_names_in_stream_names() {
        assert_eq!(super::clean("Q1 2024"), "Q1_2024");
        assert_eq!(super::clean("Ventes (été)"), "Ventes__été_");
    }
}
