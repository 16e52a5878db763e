//! Streams defined by a query in the config: `{ name = "big_orders", sql = "SELECT ..." }`.

use std::collections::BTreeMap;

use ferry_core::arrow_schema::Field;
use ferry_core::{Error, ErrorKind, FerryType, Result};
use schemars::JsonSchema;
use serde::Deserialize;

use super::rules::Cursors;

/// A stream defined by a query: `{ name = "big_orders", sql = "SELECT ..." }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The stream's name (required), unique among tables, views and queries.
    pub name: String,
    /// One read-only `SELECT` statement (required). It runs in a read-only transaction;
    /// a read with a `LIMIT` wraps it as `SELECT * FROM (<sql>)`, and incremental reads
    /// add `WHERE cursor > ? ORDER BY cursor`.
    pub sql: String,
    /// Columns that identify a row (default: none).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// The cursor used when the stream config names none (default: the first int64,
    /// timestamp or date column).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Ferry types of result columns, e.g. `{ total = "decimal(12,2)" }` (default: the
    /// type the database gives the result column, `string` when it gives none; PostgreSQL
    /// takes none: cast in SQL instead, e.g. `total::numeric(12,2)`).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// `sql` without surrounding blanks and trailing `;`, so it can be wrapped.
pub fn clean_sql(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// What a connector takes in a query's `columns`.
#[derive(Debug, Clone, Copy)]
pub enum QueryTypes {
    /// Ferry type names, checked here.
    Named,
    /// None: the result's types are used; the text says how to choose one in SQL.
    Refused(&'static str),
}

/// Checks a source's `tables` and `queries` without I/O: names present, query names
/// unique (compared as `fold` turns them, as the database compares them), SQL present,
/// `columns` as `types` says.
pub fn check_streams(
    tables: Option<&[String]>,
    queries: &[Query],
    fold: fn(&str) -> String,
    types: QueryTypes,
) -> Result<()> {
    if tables
        .unwrap_or_default()
        .iter()
        .any(|t| t.trim().is_empty())
    {
        return Err(Error::config("`tables` lists an empty name"));
    }
    let mut names = std::collections::HashSet::new();
    for q in queries {
        if q.name.trim().is_empty() {
            return Err(Error::config("a query in `queries` has an empty `name`"));
        }
        if !names.insert(fold(&q.name)) {
            return Err(Error::config(format!("two queries are named `{}`", q.name)));
        }
        if let (QueryTypes::Refused(how), false) = (types, q.columns.is_empty()) {
            return Err(Error::config(format!(
                "query `{}`: `columns` is not taken here: the result's types are used; {how}",
                q.name
            )));
        }
        if clean_sql(&q.sql).is_empty() {
            return Err(Error::config(format!(
                "query `{}` has an empty `sql`",
                q.name
            )));
        }
        if let Some((col, ty)) = q
            .columns
            .iter()
            .find(|(_, ty)| FerryType::parse(ty).is_none())
        {
            return Err(Error::config(format!(
                "query `{}`: column `{col}` has unknown type `{ty}` (known: {})",
                q.name,
                FerryType::NAMES.join(", ")
            )));
        }
    }
    Ok(())
}

/// A query the database refused to prepare, as `<what>: <the database's message>`: a
/// config error unless the failure is one of `keep` (unreachable, denied …).
pub fn invalid_query(what: &str, refused: Error, keep: &[ErrorKind]) -> Error {
    let kind = if keep.contains(&refused.kind()) {
        refused.kind()
    } else {
        ErrorKind::ConfigInvalid
    };
    Error::new(kind, format!("{what}: {}", refused.message()))
}

/// A query's result columns checked against its config.
#[derive(Debug)]
pub struct QueryColumns {
    /// The result's columns, nullable, with their Ferry types.
    pub fields: Vec<Field>,
    /// The primary key, as the result names its columns.
    pub key: Vec<String>,
    /// The configured cursor, as the result names it.
    pub cursor: Option<String>,
}

/// Checks the result columns of `q` (names and the types the driver found, in order):
/// names unique (as `rules` compares them), `columns` types known and naming returned
/// columns, the primary key and cursor returned, the cursor one `rules` supports.
/// Errors are config errors naming the query.
pub fn query_columns<R: Cursors>(
    q: &Query,
    result: impl IntoIterator<Item = (String, FerryType)>,
    rules: &R,
) -> Result<QueryColumns> {
    let case = R::CASE;
    let bad = |msg: String| Error::config(format!("query `{}`: {msg}", q.name));
    let mut fields: Vec<Field> = Vec::new();
    for (name, found) in result {
        if fields.iter().any(|f| case.same(f.name(), &name)) {
            return Err(bad(format!(
                "returns two columns named `{name}`; give one an alias (`AS other`)"
            )));
        }
        let ty = match q
            .columns
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some((_, t)) => FerryType::parse(t)
                .ok_or_else(|| bad(format!("column `{name}` has unknown type `{t}`")))?,
            None => found,
        };
        fields.push(ty.field(name, true));
    }
    if fields.is_empty() {
        return Err(bad("returns no columns".into()));
    }
    let listed: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    // the exact name, else the one equal ignoring case
    let find = |c: &str| {
        listed
            .iter()
            .position(|n| *n == c)
            .or_else(|| listed.iter().position(|n| n.eq_ignore_ascii_case(c)))
    };
    let missing = |what: String| bad(format!("{what} (it returns: {})", listed.join(", ")));
    for c in q.columns.keys() {
        if find(c).is_none() {
            return Err(missing(format!(
                "`columns` names `{c}`, which the query does not return"
            )));
        }
    }
    let mut key = Vec::new();
    for k in &q.primary_key {
        let i =
            find(k).ok_or_else(|| missing(format!("primary key column `{k}` is not returned")))?;
        key.push(listed[i].to_string());
    }
    let cursor = match &q.cursor {
        Some(c) => {
            let i = find(c).ok_or_else(|| missing(format!("cursor `{c}` is not returned")))?;
            let ty = FerryType::of(&fields[i]).expect("a Ferry field");
            (rules.supported(i, ty)).map_err(|why| bad(format!("cursor `{c}` is {why}")))?;
            Some(listed[i].to_string())
        }
        None => None,
    };
    Ok(QueryColumns {
        fields,
        key,
        cursor,
    })
}

#[cfg(test)]
mod tests {
    use ferry_core::cursor::Case;

    use super::*;

    fn query(toml_text: &str) -> Query {
        toml::from_str(toml_text).unwrap()
    }

    /// Int64 cursors only; `EXACT`: column names as written.
    struct Rules<const EXACT: bool>;

    impl<const EXACT: bool> Cursors for Rules<EXACT> {
        const CASE: Case = if EXACT { Case::Exact } else { Case::Ignore };
        fn supported(&self, _: usize, ty: FerryType) -> std::result::Result<(), String> {
            match ty {
                FerryType::Int64 => Ok(()),
                other => Err(format!("{other}; a cursor must be int64")),
            }
        }
    }

    fn columns(q: &Query) -> Result<QueryColumns> {
        let result = [("id", FerryType::Int64), ("Name", FerryType::String)]
            .map(|(n, t)| (n.to_string(), t));
        query_columns(q, result, &Rules::<false>)
    }

    #[test]
    fn names_take_the_result_spelling_and_types_the_override() {
        let q = query(
            "name = \"q\"\nsql = \"SELECT 1;\"\nprimary_key = [\"ID\"]\ncursor = \"Id\"\ncolumns = { name = \"json\" }",
        );
        let c = columns(&q).unwrap();
        assert_eq!(c.key, ["id"]);
        assert_eq!(c.cursor.as_deref(), Some("id"));
        assert_eq!(FerryType::of(&c.fields[1]), Some(FerryType::Json));
        assert!(c.fields.iter().all(|f| f.is_nullable()));
        assert_eq!(clean_sql(" SELECT 1 ;\n "), "SELECT 1");
    }

    #[test]
    fn refusals_name_the_query_and_what_it_returns() {
        let cases = [
            ("cursor = \"Name\"", "query `q`: cursor `Name` is string; a cursor must be int64"),
            ("cursor = \"at\"", "query `q`: cursor `at` is not returned (it returns: id, Name)"),
            ("primary_key = [\"k\"]", "query `q`: primary key column `k` is not returned (it returns: id, Name)"),
            ("columns = { nmae = \"string\" }", "query `q`: `columns` names `nmae`, which the query does not return (it returns: id, Name)"),
            ("columns = { id = \"int46\" }", "query `q`: column `id` has unknown type `int46`"),
        ];
        for (extra, want) in cases {
            let q = query(&format!("name = \"q\"\nsql = \"x\"\n{extra}"));
            let e = columns(&q).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            assert_eq!(e.message(), want);
        }
        let q = query("name = \"q\"\nsql = \"x\"");
        let twice =
            [("a", FerryType::Int64), ("A", FerryType::Int64)].map(|(n, t)| (n.to_string(), t));
        let e = query_columns(&q, twice.clone(), &Rules::<false>).unwrap_err();
        assert!(e.message().contains("two columns named `A`"), "{e}");
        assert!(query_columns(&q, twice, &Rules::<true>).is_ok());
        let e = query_columns(&q, [], &Rules::<true>).unwrap_err();
        assert_eq!(e.message(), "query `q`: returns no columns");
    }

    #[test]
    fn a_prepare_failure_is_a_config_error_unless_kept() {
        let refused = Error::new(ErrorKind::DataInvalid, "syntax error");
        let e = invalid_query("query `q` is not valid", refused, &[]);
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert_eq!(e.message(), "query `q` is not valid: syntax error");
        let down = Error::new(ErrorKind::Unreachable, "refused");
        let e = invalid_query("query `q` is not valid", down, &[ErrorKind::Unreachable]);
        assert_eq!(e.kind(), ErrorKind::Unreachable);
    }
}
