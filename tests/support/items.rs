//! The `items` stream the deletes and history tests sync: a CSV file of (id, name, n)
//! rows, keyed by `id`, into a destination they choose.

use std::path::Path;

use super::folder::write;

/// A config syncing `items.csv` into `destination` (its lines after `[destination]`),
/// its `[[streams]]` entry for `items` ending with `stream` (`mode = …` and the rest).
pub fn config(destination: &str, stream: &str) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"items.csv\"\nstream = \"items\"\n\
         columns = {{ id = \"int64\", name = \"string\", n = \"int64\" }}\n\n\
         [destination]\n{destination}\n\n\
         [[streams]]\nname = \"items\"\n{stream}"
    )
}

/// `items.csv` in `dir` with these (id, name, n) rows.
pub fn source(dir: &Path, rows: &[(i64, &str, i64)]) {
    let mut csv = String::from("id,name,n\n");
    for (id, name, n) in rows {
        csv.push_str(&format!("{id},{name},{n}\n"));
    }
    write(dir, "items.csv", csv);
}
