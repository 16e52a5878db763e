//! Pieces of the `sync.toml` files the CLI tests write, where many tests use the same.

/// The destination most tests write to: SQLite `out.db` in the folder.
pub const INTO_SQLITE: &str = "[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n";

/// A config of `source` (its `[source]` section and any `[[source.streams]]`) into
/// SQLite `out.db`.
pub fn into_sqlite(source: &str) -> String {
    format!("{source}\n{INTO_SQLITE}")
}

/// A `generate` source of one stream `name` of `rows` rows of `preset` (`orders`,
/// `users` …).
pub fn generate(name: &str, preset: &str, rows: u64) -> String {
    format!(
        "[source]\ntype = \"generate\"\nstreams = [{{ name = \"{name}\", preset = \"{preset}\", rows = {rows} }}]\n"
    )
}

/// A config reading `file` (in the folder, with `columns`) as stream `stream`, overwritten
/// into JSON Lines in `out/`; `max_bad_ratio = 1` unless `stream_extra` (more lines of the
/// stream) sets it.
pub fn file_to_jsonl(file: &str, columns: &str, stream: &str, stream_extra: &str) -> String {
    let ratio = if stream_extra.contains("max_bad_ratio") {
        ""
    } else {
        "max_bad_ratio = 1\n"
    };
    format!(
        "[source]\ntype = \"file\"\npath = \"{file}\"\n{columns}\n[destination]\ntype = \"file\"\npath = \"out\"\nformat = \"jsonl\"\n[[streams]]\nname = \"{stream}\"\nmode = \"overwrite\"\n{ratio}{stream_extra}\n"
    )
}

/// The test PostgreSQL database as a destination (trust auth, user `postgres`, database
/// `test`), its fields after `[destination]`.
pub const POSTGRES_FIELDS: &str =
    "type = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"test\"\nuser = \"postgres\"\n";
