//! What a pattern's name says: the stream it makes, and its name under the layers.

use ferry_core::{Error, Result};
use ferry_formats::codec::{Compression, Format};

/// `name` without its final encryption (`.age`, OpenPGP `.pgp`/`.gpg`/`.asc`) and
/// compression suffixes (`.gz`, `.gzip`, `.zst`, `.zstd`, in any case and order):
/// `orders_*.csv.gz.age` and `orders_*.csv.gz.pgp` are seen as `orders_*.csv` for their
/// stream name and whether they are a `.tsv`.
pub fn strip_layers(name: &str) -> &str {
    let mut rest = name;
    loop {
        let n = rest.len();
        let age =
            n > 4 && rest.is_char_boundary(n - 4) && rest[n - 4..].eq_ignore_ascii_case(".age");
        if age {
            rest = &rest[..n - 4];
        } else if let Some(stem) = ferry_formats::pgp::strip_extension(rest) {
            rest = stem;
        } else if Compression::from_path(rest) != Compression::None {
            match rest.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => rest = stem,
                _ => return rest,
            }
        } else {
            return rest;
        }
    }
}

/// The file a destination writes stream `stream` to, its name saying its layers:
/// `orders.csv`, `orders.csv.gz`, `orders.jsonl.zst.age`, `orders.csv.gpg`. Refuses a stream name that is not
/// a plain file name.
pub fn delivery_name(
    stream: &str,
    format: Format,
    compression: Compression,
    sealing: Option<&crate::output::Sealing>,
) -> Result<String> {
    let bad = stream.is_empty()
        || stream.starts_with('.')
        || stream.contains(['/', '\\', '\0'])
        || stream.chars().any(char::is_control);
    if bad {
        return Err(Error::config(format!(
            "stream name `{stream}` cannot be a file name (it must not be empty, start with `.`, or hold `/` or `\\`); rename it with `destination = \"…\"` in [[streams]]"
        )));
    }
    let mut name = format!("{stream}.{}", format.extension());
    if let Some(ext) = compression.extension() {
        name.push('.');
        name.push_str(ext);
    }
    if let Some(sealing) = sealing {
        name.push('.');
        name.push_str(sealing.extension());
    }
    Ok(name)
}

/// Whether a pattern names tab-separated files (`.tsv` under any layers).
pub fn is_tsv(pattern: &str) -> bool {
    strip_layers(pattern).to_ascii_lowercase().ends_with(".tsv")
}

/// The stream name a pattern implies: its last segment without layers, extension,
/// wildcards and character classes, trimmed of `_-. `; else the folder's name likewise.
/// `None` if both are empty.
pub fn stream_name(pattern: &str) -> Option<String> {
    let clean = |s: &str| {
        let mut out = String::new();
        let mut in_class = false;
        for c in s.chars() {
            match c {
                '[' => in_class = true,
                ']' if in_class => in_class = false,
                _ if in_class => {}
                '*' | '?' => {}
                c => out.push(c),
            }
        }
        out.trim_matches(|c: char| matches!(c, '_' | '-' | '.' | ' '))
            .to_string()
    };
    let pattern = strip_layers(pattern.trim_end_matches('/'));
    let (dir, file) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let stem = match file.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains(['*', '?', '[']) && !stem.is_empty() => stem,
        _ => file,
    };
    let name = clean(stem);
    if !name.is_empty() {
        return Some(name);
    }
    let folder = clean(dir.rsplit('/').next().unwrap_or(""));
    (!folder.is_empty()).then_some(folder)
}

/// The folder a pattern starts in, ending in `/` (empty: the top): everything before the
/// `/` that precedes its first wildcard, or a plain file's folder.
pub fn pattern_root(pattern: &str) -> String {
    let literal = pattern
        .find(['*', '?', '['])
        .map_or(pattern, |i| &pattern[..i]);
    match literal.rfind('/') {
        Some(i) => literal[..=i].to_string(),
        None => String::new(),
    }
}

/// Where a stream's archive folder is, as names are given: `root` + `archive_to` + `/`.
pub fn archive_folder(root: &str, archive_to: &str) -> String {
    format!("{root}{archive_to}/")
}

/// Where `name` goes in the archive folder: its path below the stream's root, kept, so
/// files of several subfolders do not collide; the `n`th try (from 1) adds `-n` before
/// the extensions (`orders.csv.gz` → `orders-2.csv.gz`), for a name already archived.
pub fn archived_name(root: &str, archive_to: &str, name: &str, n: usize) -> String {
    let below = name.strip_prefix(root).unwrap_or(name);
    let below = below.trim_start_matches('/');
    let below = if n <= 1 {
        below.to_string()
    } else {
        with_suffix(below, &n.to_string())
    };
    format!("{}{below}", archive_folder(root, archive_to))
}

/// The file an `append` delivery adds in run `run_id`: `delivered` (a [`delivery_name`])
/// with the run id before its extensions (`orders-20241105T093000Z-3fa9c1.csv.gz`), so
/// each run adds a file of its own and a listing sorts them by the second their run
/// started (run ids begin with the UTC time). The `n`th try (from 1) adds `-n` too
/// (`orders-<run>-2.csv`), for a name already taken (a run id given twice).
pub fn appended_name(delivered: &str, run_id: &str, n: usize) -> String {
    let run: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let named = with_suffix(delivered, &run);
    if n <= 1 {
        named
    } else {
        with_suffix(&named, &n.to_string())
    }
}

/// `path` with `-suffix` before the extensions of its file name (`in/a.csv.gz`, `2` →
/// `in/a-2.csv.gz`). The extensions start at the first dot that does not start the name.
fn with_suffix(path: &str, suffix: &str) -> String {
    let (dir, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    let (stem, ext) = match file[1.min(file.len())..].find('.') {
        Some(i) => file.split_at(i + 1),
        None => (file, ""),
    };
    format!("{dir}{stem}-{suffix}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_from_patterns() {
        assert_eq!(stream_name("customers.csv").as_deref(), Some("customers"));
        assert_eq!(
            stream_name("in/customers*.csv").as_deref(),
            Some("customers")
        );
        assert_eq!(
            stream_name("in/orders_[0-9]*.jsonl").as_deref(),
            Some("orders")
        );
        assert_eq!(stream_name("data/*.csv").as_deref(), Some("data"));
        assert_eq!(stream_name("/tmp/x/**/*.csv").as_deref(), None);
        assert_eq!(stream_name("a.b.csv").as_deref(), Some("a.b"));
        assert_eq!(
            stream_name(strip_layers("in/orders_*.csv.age")).as_deref(),
            Some("orders")
        );
        assert_eq!(strip_layers("a.AGE"), "a");
        assert_eq!(
            stream_name(strip_layers("in/orders_*.csv.gz.age")).as_deref(),
            Some("orders")
        );
        assert_eq!(strip_layers("a.parquet"), "a.parquet");
        assert_eq!(strip_layers("a.jsonl.ZST"), "a.jsonl");
        assert_eq!(strip_layers(".age"), ".age");
        // as S3 keys
        assert_eq!(stream_name("orders_*.csv.gz").as_deref(), Some("orders"));
        assert_eq!(
            stream_name("in/customers*.csv.zst.age").as_deref(),
            Some("customers")
        );
        assert_eq!(stream_name("daily/*.jsonl").as_deref(), Some("daily"));
        assert_eq!(stream_name("**/*.csv").as_deref(), None);
        assert_eq!(strip_layers("a.csv.gz.age"), "a.csv");
        assert!(is_tsv("in/x.tsv.gz.age") && !is_tsv("in/x.csv"));
        assert_eq!(strip_layers("orders.csv.gz.pgp"), "orders.csv");
        assert_eq!(strip_layers("orders.csv.GPG"), "orders.csv");
        assert_eq!(
            stream_name(strip_layers("in/orders_*.csv.asc")).as_deref(),
            Some("orders")
        );
        assert!(is_tsv("in/x.tsv.gpg"));
    }

    #[test]
    fn roots_and_archived_names() {
        assert_eq!(pattern_root("in/orders_*.csv"), "in/");
        assert_eq!(pattern_root("in/*/x/*.csv"), "in/");
        assert_eq!(pattern_root("orders.csv"), "");
        assert_eq!(pattern_root("a/b/orders.csv"), "a/b/");
        assert_eq!(pattern_root("*.csv"), "");
        assert_eq!(
            archived_name("in/", "processed", "in/2024/a.csv", 1),
            "in/processed/2024/a.csv"
        );
        assert_eq!(
            archived_name("in/", "processed", "in/a.csv.gz", 2),
            "in/processed/a-2.csv.gz"
        );
        assert_eq!(
            archived_name("", "done", ".hidden.csv", 3),
            "done/.hidden-3.csv"
        );
        assert_eq!(archived_name("", "done", "README", 2), "done/README-2");
    }

    #[test]
    fn appended_names_carry_the_run() {
        let run = "20241105T093000Z-3fa9c1";
        assert_eq!(
            appended_name("orders.csv.gz.age", run, 1),
            "orders-20241105T093000Z-3fa9c1.csv.gz.age"
        );
        assert_eq!(
            appended_name("orders.parquet", run, 3),
            "orders-20241105T093000Z-3fa9c1-3.parquet"
        );
        // what a run id holds besides letters, digits, `-` and `_` is left out
        assert_eq!(appended_name("a.csv", "r/1 .x", 1), "a-r1x.csv");
    }
}
