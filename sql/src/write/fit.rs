//! Additive schema evolution: fitting an existing table to a stream. Each stream column
//! finds its table column (same name, else the one name equal as the database compares
//! them) whose type takes its values; a missing nullable column is added. Anything else
//! is a `SchemaMismatch` naming the table and column, and nothing is changed.

use ferry_core::arrow_schema::Schema;
use ferry_core::{Error, ErrorKind, FerryType, Result};

use super::dialect::{Dialect, Table};

/// Where one stream column goes: its name in the table, and the table's column as it
/// was (`None`: the column is new, made from the stream's type).
#[derive(Debug, Clone)]
pub struct Fitted<T> {
    /// The column's name in the table.
    pub name: String,
    /// The existing column's type, if the column existed.
    pub existing: Option<T>,
}

/// How `table` takes the stream: where each column goes, and the columns to add.
#[derive(Debug, Clone)]
pub struct Fit<T> {
    /// One per stream column, in the stream's order.
    pub columns: Vec<Fitted<T>>,
    /// Nullable stream columns the table lacks: (name, type), to add.
    pub add: Vec<(String, FerryType)>,
}

/// Whether a column of type `existing` takes values of type `incoming` without losing
/// anything: the same type, JSON into text, or a decimal into one with as many digits
/// before and after the point. A database may take more (see its connector).
pub fn takes(existing: FerryType, incoming: FerryType) -> bool {
    match (existing, incoming) {
        (a, b) if a == b => true,
        (FerryType::String, FerryType::Json) => true,
        (
            FerryType::Decimal {
                precision: p1,
                scale: s1,
            },
            FerryType::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 >= s2 && (p1 as i16 - s1 as i16) >= (p2 as i16 - s2 as i16),
        _ => false,
    }
}

/// A `SchemaMismatch` about `table`.
pub fn mismatch(message: String, table: &str) -> Error {
    Error::new(ErrorKind::SchemaMismatch, message).with("table", table)
}

/// Fits `table` to the stream's `schema` (see the module docs).
pub fn fit<D: Dialect + ?Sized>(
    d: &D,
    table: &Table<D::Type>,
    schema: &Schema,
) -> Result<Fit<D::Type>> {
    let t = &table.name;
    let mut fit = Fit {
        columns: Vec::new(),
        add: Vec::new(),
    };
    let mut sent = vec![false; table.columns.len()];
    for f in schema.fields() {
        let ty = FerryType::of(f).expect("a checked schema");
        let exact = table.columns.iter().position(|c| c.name == *f.name());
        let found = exact.or_else(|| {
            let mut same = (0..table.columns.len())
                .filter(|&i| d.lookup().same(&table.columns[i].name, f.name()));
            match (same.next(), same.next()) {
                (Some(i), None) => Some(i),
                _ => None,
            }
        });
        let Some(i) = found else {
            if !f.is_nullable() {
                return Err(mismatch(
                    format!(
                        "column `{}` is not in table `{t}`, and the stream says it is never NULL, so it cannot be \
                         added to the rows already there; add it by hand, or write with mode = \"overwrite\"",
                        f.name()
                    ),
                    t,
                )
                .with("column", f.name()));
            }
            fit.add.push((f.name().clone(), ty));
            fit.columns.push(Fitted {
                name: f.name().clone(),
                existing: None,
            });
            continue;
        };
        let c = &table.columns[i];
        if c.generated {
            return Err(mismatch(
                format!(
                    "column `{}` of table `{t}` is generated and cannot be written; drop it from the stream",
                    c.name
                ),
                t,
            )
            .with("column", &c.name));
        }
        if !d.takes(&c.ty, ty) {
            return Err(mismatch(
                format!(
                    "column `{}` of table `{t}` is {}, but the stream sends {ty}; \
                     change the column, or write with mode = \"overwrite\" to replace the table",
                    c.name,
                    d.describe(&c.ty)
                ),
                t,
            )
            .with("column", &c.name));
        }
        sent[i] = true;
        fit.columns.push(Fitted {
            name: c.name.clone(),
            existing: Some(c.ty.clone()),
        });
    }
    if let Some(c) = table
        .columns
        .iter()
        .zip(&sent)
        .find(|(c, sent)| c.required && !**sent)
        .map(|(c, _)| c)
    {
        return Err(mismatch(
            format!(
                "table `{t}` requires column `{}` (NOT NULL, no default), which the stream does not send",
                c.name
            ),
            t,
        )
        .with("column", &c.name));
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::dialect::Existing;
    use crate::write::test_dialect::Plain;

    fn col(name: &str, ty: FerryType, required: bool) -> Existing<FerryType> {
        Existing {
            name: name.into(),
            required,
            generated: false,
            ty,
        }
    }

    fn table(columns: Vec<Existing<FerryType>>) -> Table<FerryType> {
        Table {
            name: "people".into(),
            columns,
        }
    }

    #[test]
    fn matches_by_name_and_adds_nullable_columns() {
        let t = table(vec![
            col("ID", FerryType::Int64, true),
            col("note", FerryType::String, false),
        ]);
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Date.field("seen", true),
        ]);
        let fit = fit(&Plain, &t, &schema).unwrap();
        assert_eq!(fit.columns[0].name, "ID");
        assert_eq!(fit.columns[0].existing, Some(FerryType::Int64));
        assert_eq!(
            (fit.columns[1].name.as_str(), fit.columns[1].existing),
            ("seen", None)
        );
        assert_eq!(fit.add, [("seen".to_string(), FerryType::Date)]);
    }

    #[test]
    fn refusals_name_table_and_column() {
        let t = table(vec![
            col("id", FerryType::Int64, true),
            col("must", FerryType::String, true),
        ]);
        let refuse = |schema: Schema| fit(&Plain, &t, &schema).unwrap_err();
        let e = refuse(Schema::new(vec![FerryType::Date.field("id", false)]));
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
        assert_eq!(e.context_value("column"), Some("id"));
        assert!(
            e.message().contains("is int64, but the stream sends date"),
            "{e}"
        );
        let e = refuse(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Int64.field("rank", false),
        ]));
        assert!(
            e.message().contains("`rank`") && e.message().contains("never NULL"),
            "{e}"
        );
        let e = refuse(Schema::new(vec![FerryType::Int64.field("id", false)]));
        assert_eq!(e.context_value("column"), Some("must"));
        assert!(e.message().contains("requires column `must`"), "{e}");
        let mut g = t.clone();
        g.columns[1].generated = true;
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("must", true),
        ]);
        assert!(fit(&Plain, &g, &schema)
            .unwrap_err()
            .message()
            .contains("generated"));
    }
}
