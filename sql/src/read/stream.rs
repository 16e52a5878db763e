//! A stream's description: its schema with keys, and the columns it can be read
//! incrementally by, best first.

use ferry_core::arrow_schema::Schema;
use ferry_core::cursor::Case;
use ferry_core::types::with_keys;
use ferry_core::{Catalog, Error, ErrorKind, FerryType, Result, StreamInfo};

use super::rules::Cursors;

/// A stream's description: `schema` with its primary `key`, and as cursor candidates
/// the columns `rules` offers, ranked: the configured `cursor` first, then a one-column
/// primary key, then columns named like an update time, then the others in order.
/// Incremental when some column can serve as a cursor, offered or not.
pub fn stream_info<R: Cursors>(
    name: &str,
    schema: Schema,
    key: Vec<String>,
    cursor: Option<&str>,
    rules: &R,
) -> StreamInfo {
    let case = R::CASE;
    let ty = |i: usize| FerryType::of(schema.field(i)).unwrap_or(FerryType::String);
    let mut ranked: Vec<(u8, usize, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, _)| rules.offered(*i, ty(*i)))
        .map(|(i, f)| {
            let lower = f.name().to_ascii_lowercase();
            let rank = if cursor.is_some_and(|c| case.same(c, f.name())) {
                0
            } else if key.len() == 1 && key[0] == *f.name() {
                1
            } else if lower.contains("updated") || lower.contains("modified") {
                2
            } else {
                3
            };
            (rank, i, f.name().clone())
        })
        .collect();
    ranked.sort();
    let mut candidates: Vec<String> = ranked.into_iter().map(|(_, _, n)| n).collect();
    if let Some(c) = cursor {
        if !candidates.iter().any(|n| case.same(n, c)) {
            candidates.insert(0, c.to_string());
        }
    }
    let incremental = (0..schema.fields().len()).any(|i| rules.supported(i, ty(i)).is_ok());
    let schema = with_keys(&schema, &key, candidates.first().map(String::as_str));
    let info = StreamInfo::new(name, schema).with_primary_key(key);
    if incremental {
        info.incremental(candidates)
    } else {
        info
    }
}

/// Refuses two streams of one name (as `case` compares): a query named like a table.
pub fn unique_names(streams: &[StreamInfo], case: Case) -> Result<()> {
    for (i, s) in streams.iter().enumerate() {
        if streams[..i].iter().any(|o| case.same(&o.name, &s.name)) {
            return Err(Error::config(format!(
                "two streams are named `{}` (a query has the name of a table or view, or a table is listed twice); rename the query",
                s.name
            )));
        }
    }
    Ok(())
}

/// The catalog of `streams`, refused when two have one name (see [`unique_names`]).
pub fn catalog(streams: Vec<StreamInfo>, case: Case) -> Result<Catalog> {
    unique_names(&streams, case)?;
    Ok(Catalog::new(streams))
}

/// The error of a table or view `name` that `place` (`database `crm``) does not have,
/// listing the `relations` it has.
pub fn no_relation<'a>(
    name: &str,
    place: &str,
    relations: impl IntoIterator<Item = &'a str>,
) -> Error {
    let names = listing(relations);
    let message = format!("no table or view `{name}` in {place} (it has: {names})");
    Error::new(ErrorKind::NotFound, message)
}

/// Names for a message: `a, b, c`, or `none`.
pub fn listing<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::ReadMode;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            FerryType::String.field("name", true),
            FerryType::Timestamp.field("created", true),
            FerryType::Timestamp.field("Updated_At", true),
            FerryType::Int64.field("id", false),
            FerryType::Float64.field("score", true),
        ])
    }

    /// Int64, timestamp and float64 columns can be cursors; `EXACT`: names as written.
    struct Rules<const EXACT: bool>;

    impl<const EXACT: bool> Cursors for Rules<EXACT> {
        const CASE: Case = if EXACT { Case::Exact } else { Case::Ignore };
        fn supported(&self, _: usize, ty: FerryType) -> std::result::Result<(), String> {
            match ty {
                FerryType::Int64 | FerryType::Timestamp | FerryType::Float64 => Ok(()),
                ty => Err(format!("{ty}")),
            }
        }
    }

    #[test]
    fn candidates_rank_cursor_key_update_time_then_order() {
        let s = stream_info("t", schema(), vec!["id".into()], None, &Rules::<true>);
        assert_eq!(s.cursor_candidates, ["id", "Updated_At", "created"]);
        assert_eq!(s.default_cursor.as_deref(), Some("id"));
        assert_eq!(s.primary_key, ["id"]);
        assert!(s.read_modes.contains(&ReadMode::Incremental));
        let s = stream_info("t", schema(), vec![], Some("CREATED"), &Rules::<false>);
        assert_eq!(s.cursor_candidates, ["created", "Updated_At", "id"]);
        let s = stream_info("t", schema(), vec![], Some("CREATED"), &Rules::<true>);
        assert_eq!(
            s.cursor_candidates,
            ["CREATED", "Updated_At", "created", "id"]
        );
        // a configured cursor that is not offered (a float) still comes first
        let s = stream_info("t", schema(), vec![], Some("score"), &Rules::<true>);
        assert_eq!(s.cursor_candidates[0], "score");
        let text = Schema::new(vec![FerryType::String.field("name", true)]);
        let s = stream_info("t", text, vec![], None, &Rules::<true>);
        assert_eq!(s.read_modes, [ReadMode::FullRefresh]);
    }

    #[test]
    fn stream_names_are_unique_and_listings_say_none() {
        let a = StreamInfo::new("Orders", std::sync::Arc::new(schema()));
        let b = StreamInfo::new("orders", std::sync::Arc::new(schema()));
        unique_names(&[a.clone(), b.clone()], Case::Exact).unwrap();
        let e = unique_names(&[a, b], Case::Ignore).unwrap_err();
        assert!(
            e.message().contains("two streams are named `orders`"),
            "{e}"
        );
        assert_eq!(listing([]), "none");
        assert_eq!(listing(["a", "b"]), "a, b");
    }
}
