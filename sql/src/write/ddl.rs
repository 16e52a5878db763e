//! The statements writing needs, built from a [`Dialect`]: creating a table from a
//! stream's schema, adding columns, inserting, and upserting by key.

use ferry_core::arrow_schema::Schema;
use ferry_core::FerryType;

use super::dialect::{Dialect, KeyPart};

/// `"a", "b"`: `names` quoted and joined.
pub fn column_list<D: Dialect + ?Sized>(d: &D, names: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| d.quote(n.as_ref())).collect();
    quoted.join(", ")
}

/// The definition of a new column: name, type, `NOT NULL` for a key column or one the
/// stream says is never NULL.
fn column_def<D: Dialect + ?Sized>(
    d: &D,
    name: &str,
    ty: FerryType,
    not_null: bool,
    key: KeyPart,
) -> String {
    let null = if not_null { " NOT NULL" } else { d.nullable() };
    format!("{} {}{null}", d.quote(name), d.column_type(ty, key))
}

/// `CREATE TABLE name (…)` with `schema`'s columns and `key` as primary key.
pub fn create_table<D: Dialect + ?Sized>(
    d: &D,
    name: &str,
    schema: &Schema,
    key: &[String],
) -> String {
    let mut defs: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = FerryType::of(f).expect("a checked schema");
            let part = match (key.contains(f.name()), key.len()) {
                (false, _) => KeyPart::No,
                (true, 1) => KeyPart::Sole,
                (true, _) => KeyPart::Part,
            };
            column_def(
                d,
                f.name(),
                ty,
                !f.is_nullable() || part != KeyPart::No,
                part,
            )
        })
        .collect();
    if !key.is_empty() {
        let constraint = d
            .key_constraint(name)
            .map(|c| format!("CONSTRAINT {} ", d.quote(&c)))
            .unwrap_or_default();
        defs.push(format!("{constraint}PRIMARY KEY ({})", column_list(d, key)));
    }
    format!(
        "CREATE TABLE {} ({}){}",
        d.qualified(name),
        defs.join(", "),
        d.table_options()
    )
}

/// The statements that add nullable columns `add` (name, type) to `table`.
pub fn add_columns<D: Dialect + ?Sized>(
    d: &D,
    table: &str,
    add: &[(String, FerryType)],
) -> Vec<String> {
    let defs: Vec<String> = add
        .iter()
        .map(|(name, ty)| {
            format!(
                "ADD COLUMN {}",
                column_def(d, name, *ty, false, KeyPart::No)
            )
        })
        .collect();
    let alter = format!("ALTER TABLE {} ", d.qualified(table));
    if d.one_alter() && !defs.is_empty() {
        vec![format!("{alter}{}", defs.join(", "))]
    } else {
        defs.iter().map(|def| format!("{alter}{def}")).collect()
    }
}

/// `INSERT INTO table ("a", "b")`, for the values to follow.
pub fn insert_into<D: Dialect + ?Sized>(d: &D, table: &str, columns: &[impl AsRef<str>]) -> String {
    format!(
        "INSERT INTO {} ({})",
        d.qualified(table),
        column_list(d, columns)
    )
}

/// Multi-row `INSERT … VALUES (…), (…)` statements, each of at most `max_rows` rows
/// and `max_bytes` bytes (a row longer than that goes alone).
pub struct Values<'a> {
    prefix: &'a str,
    suffix: &'a str,
    max_rows: usize,
    max_bytes: usize,
    sql: String,
    rows: usize,
}

impl<'a> Values<'a> {
    /// Statements `<prefix>(…), (…)<suffix>`.
    pub fn new(prefix: &'a str, suffix: &'a str, max_rows: usize, max_bytes: usize) -> Self {
        let sql = String::with_capacity(max_bytes.min(1 << 20));
        Values {
            prefix,
            suffix,
            max_rows,
            max_bytes,
            sql,
            rows: 0,
        }
    }

    /// Adds `row` (`(…)`); first returns the statement built so far when the row does
    /// not fit in it.
    pub fn push(&mut self, row: &str) -> Option<String> {
        let full = self.rows > 0
            && (self.rows >= self.max_rows
                || self.sql.len() + row.len() + self.suffix.len() > self.max_bytes);
        let done = if full { self.finish() } else { None };
        self.sql
            .push_str(if self.rows == 0 { self.prefix } else { ", " });
        self.sql.push_str(row);
        self.rows += 1;
        done
    }

    /// The statement being built, if it has rows.
    pub fn finish(&mut self) -> Option<String> {
        if self.rows == 0 {
            return None;
        }
        self.rows = 0;
        self.sql.push_str(self.suffix);
        Some(std::mem::take(&mut self.sql))
    }
}

/// ` ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, …` (or `DO NOTHING` when every
/// column is in the key): an insert that updates the row of a key already there.
pub fn on_conflict<D: Dialect + ?Sized>(d: &D, columns: &[String], key: &[String]) -> String {
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{0} = EXCLUDED.{0}", d.quote(c)))
        .collect();
    let on = format!(" ON CONFLICT ({}) DO ", column_list(d, key));
    match sets.is_empty() {
        true => format!("{on}NOTHING"),
        false => format!("{on}UPDATE SET {}", sets.join(", ")),
    }
}

/// Upsert through a temporary table (PostgreSQL): rows are copied into `temp` (the
/// table's `columns`, name and type), which every commit empties, then merged into
/// `table`: `INSERT … SELECT DISTINCT ON (key) … ON CONFLICT (key) DO UPDATE … WHERE
/// changed`. The last copied row of each key wins (`ctid` is the copy order in `temp`),
/// and rows equal to the stored ones are left alone, so a rerun changes nothing. Columns
/// in `as_text` are compared by their text (`json` has no equality). Returns the
/// statements that create `temp` and that merge it.
pub fn temp_upsert<D: Dialect + ?Sized>(
    d: &D,
    table: &str,
    temp: &str,
    columns: &[(String, String)],
    key: &[String],
    as_text: &[&String],
) -> [String; 2] {
    let defs: Vec<String> = columns
        .iter()
        .map(|(c, ty)| format!("{} {ty}", d.quote(c)))
        .collect();
    let create = format!(
        "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DELETE ROWS",
        d.quote(temp),
        defs.join(", ")
    );
    let names: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
    let (cols, keys) = (column_list(d, &names), column_list(d, key));
    let mut merge = format!(
        "INSERT INTO {} AS t ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM pg_temp.{} \
         ORDER BY {keys}, ctid DESC{}",
        d.qualified(table),
        d.quote(temp),
        on_conflict(d, &names, key)
    );
    let rest: Vec<&String> = names.iter().filter(|c| !key.contains(c)).collect();
    if !rest.is_empty() {
        let compared = |prefix: &str, c: &String| match as_text.contains(&c) {
            true => format!("{prefix}.{}::text", d.quote(c)),
            false => format!("{prefix}.{}", d.quote(c)),
        };
        let old: Vec<String> = rest.iter().map(|c| compared("t", c)).collect();
        let new: Vec<String> = rest.iter().map(|c| compared("EXCLUDED", c)).collect();
        merge.push_str(&format!(
            " WHERE ({}) IS DISTINCT FROM ({})",
            old.join(", "),
            new.join(", ")
        ));
    }
    [create, merge]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::test_dialect::Plain;
    use ferry_core::arrow_schema::Schema;

    #[test]
    fn tables_and_columns() {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("name", true),
        ]);
        assert_eq!(
            create_table(&Plain, "t", &schema, &["id".into()]),
            "CREATE TABLE \"t\" (\"id\" int64 key NOT NULL, \"name\" string, PRIMARY KEY (\"id\"))"
        );
        assert_eq!(
            add_columns(
                &Plain,
                "t",
                &[("a".into(), FerryType::Date), ("b".into(), FerryType::Json)]
            ),
            [
                "ALTER TABLE \"t\" ADD COLUMN \"a\" date",
                "ALTER TABLE \"t\" ADD COLUMN \"b\" json"
            ]
        );
        assert_eq!(
            insert_into(&Plain, "t", &["a", "b"]),
            "INSERT INTO \"t\" (\"a\", \"b\")"
        );
    }

    #[test]
    fn values_are_cut_by_rows_and_bytes() {
        let mut v = Values::new("INSERT INTO t VALUES ", ";", 2, 40);
        assert_eq!(v.push("(1)"), None);
        assert_eq!(v.push("(2)"), None);
        assert_eq!(
            v.push("(3)").as_deref(),
            Some("INSERT INTO t VALUES (1), (2);")
        );
        assert_eq!(
            v.push("('a long row of text')").as_deref(),
            Some("INSERT INTO t VALUES (3);")
        );
        assert_eq!(
            v.finish().as_deref(),
            Some("INSERT INTO t VALUES ('a long row of text');")
        );
        assert_eq!(v.finish(), None);
    }

    #[test]
    fn merge_statement() {
        let columns = [
            ("id".to_string(), "bigint".to_string()),
            ("doc".to_string(), "json".to_string()),
        ];
        let doc = "doc".to_string();
        let [create, sql] = temp_upsert(&Plain, "t", "tmp", &columns, &["id".into()], &[&doc]);
        assert_eq!(
            create,
            "CREATE TEMPORARY TABLE \"tmp\" (\"id\" bigint, \"doc\" json) ON COMMIT DELETE ROWS"
        );
        assert!(sql.contains("DISTINCT ON (\"id\")"), "{sql}");
        assert!(sql.contains("FROM pg_temp.\"tmp\""), "{sql}");
        assert!(
            sql.contains("ON CONFLICT (\"id\") DO UPDATE SET \"doc\" = EXCLUDED.\"doc\""),
            "{sql}"
        );
        assert!(
            sql.ends_with("WHERE (t.\"doc\"::text) IS DISTINCT FROM (EXCLUDED.\"doc\"::text)"),
            "{sql}"
        );
        let [_, sql] = temp_upsert(&Plain, "t", "tmp", &columns[..1], &["id".into()], &[]);
        assert!(sql.ends_with("DO NOTHING"), "{sql}");
    }
}
