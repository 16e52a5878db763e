//! What to do when a stream's schema no longer matches its destination.
//!
//! Other tools either break a load on any change or silently change the destination. Ferry
//! compares, before a row is read, the schema it is about to write with the schema the
//! destination has now ([`SchemaDiff::between`]), and applies the stream's
//! `on_schema_change` policy ([`decide`]):
//!
//! | change upstream          | unset (default) | `evolve`                  | `freeze`            | `fail` |
//! |--------------------------|-----------------|---------------------------|---------------------|--------|
//! | new column               | added           | added                     | not loaded (listed) | refuse |
//! | column removed           | refuse          | kept, filled with NULL    | refuse              | refuse |
//! | column type changed      | refuse          | refuse                    | refuse              | refuse |
//!
//! An `overwrite` stream rebuilds its destination from the stream's schema at every run,
//! so it may also take `replace`: every change is accepted, and the new table has the
//! stream's columns and types (added, removed and retyped alike). `replace` on another
//! write mode is refused when the config is read.
//!
//! Apart from `replace`, a destination column is never dropped or narrowed. `ferry plan`
//! shows the same decision `ferry sync` applies.

use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::transform::Transform;
use ferry_core::sink::WriteRequest;
use ferry_core::types::FerryType;
use ferry_core::{Error, ErrorKind, Result};

/// A stream's policy for schema changes (`on_schema_change` in `[[streams]]`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    /// New columns are added, removed ones stay filled with NULL; type changes refuse.
    Evolve,
    /// The destination's columns stay as they are: new columns are not loaded; any other
    /// change refuses.
    Freeze,
    /// Any change refuses the run.
    Fail,
    /// `overwrite` streams only: the destination is rebuilt with the stream's columns and
    /// types, whatever changed.
    Replace,
    /// Not set: additive changes evolve, every other change refuses.
    #[default]
    #[serde(skip)]
    Default,
}

/// One difference between the destination and the incoming schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The stream has a column the destination lacks.
    Added {
        /// Column name.
        column: String,
        /// Its Ferry type.
        ty: String,
    },
    /// The destination has a column the stream no longer has.
    Removed {
        /// Column name.
        column: String,
        /// Its type at the destination.
        ty: String,
    },
    /// Both have the column, with different types.
    TypeChanged {
        /// Column name.
        column: String,
        /// Type at the destination.
        from: String,
        /// Type in the stream.
        to: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added { column, ty } => write!(f, "+ {column} ({ty}): new upstream"),
            Change::Removed { column, ty } => {
                write!(f, "- {column} ({ty}): no longer in the source")
            }
            Change::TypeChanged { column, from, to } => {
                write!(f, "~ {column}: {from} at the destination, {to} upstream")
            }
        }
    }
}

/// The differences between a destination's schema and the schema about to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// In destination column order, then new columns in stream order.
    pub changes: Vec<Change>,
}

fn type_name(f: &Field) -> String {
    FerryType::of(f)
        .map(|t| t.to_string())
        .unwrap_or_else(|| f.data_type().to_string())
}

/// Whether values of `incoming` go into the destination column `dest` without loss: the
/// same type, a decimal at least as wide, integers into decimals or floats, JSON into text.
fn fits(dest: &Field, incoming: &Field) -> bool {
    use FerryType::*;
    let (Some(d), Some(i)) = (FerryType::of(dest), FerryType::of(incoming)) else {
        return false;
    };
    match (d, i) {
        (a, b) if a == b => true,
        (
            Decimal {
                precision: dp,
                scale: ds,
            },
            Decimal {
                precision: ip,
                scale: is,
            },
        ) => ds >= is && (dp as i16 - ds as i16) >= (ip as i16 - is as i16),
        (Decimal { precision, scale }, Int64) => precision as i16 - scale as i16 >= 19,
        (Float64, Int64) | (String, Json) => true,
        _ => false,
    }
}

/// The destination's column matching `name`: exact, else ignoring ASCII case (SQL
/// destinations fold unquoted names).
fn find<'a>(schema: &'a Schema, name: &str) -> Option<&'a Field> {
    schema
        .fields()
        .iter()
        .find(|f| f.name() == name)
        .or_else(|| {
            schema
                .fields()
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))
        })
        .map(|f| f.as_ref())
}

impl SchemaDiff {
    /// Compares the destination's current schema with the incoming one.
    pub fn between(destination: &Schema, incoming: &Schema) -> SchemaDiff {
        let mut changes = Vec::new();
        for d in destination.fields() {
            match find(incoming, d.name()) {
                // Ferry's own columns (`_ferry_deleted_at` of soft deletes) are no source's
                None if ferry_core::sink::is_reserved(d.name()) => {}
                None => changes.push(Change::Removed {
                    column: d.name().clone(),
                    ty: type_name(d),
                }),
                Some(i) => {
                    let (from, to) = (type_name(d), type_name(i));
                    if from != to && !fits(d, i) {
                        changes.push(Change::TypeChanged {
                            column: d.name().clone(),
                            from,
                            to,
                        });
                    }
                }
            }
        }
        for i in incoming.fields() {
            if find(destination, i.name()).is_none() {
                changes.push(Change::Added {
                    column: i.name().clone(),
                    ty: type_name(i),
                });
            }
        }
        SchemaDiff { changes }
    }

    /// No difference.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What a policy does about a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// One line per change: what will happen (`add column email`).
    pub actions: Vec<String>,
    /// Why the run must not go on, if it must not.
    pub refusal: Option<String>,
    /// New columns not loaded (`freeze`).
    pub discard: Vec<String>,
    /// Destination columns written as NULL (`evolve`), with their destination fields.
    #[serde(skip)]
    pub fill_null: Vec<Field>,
}

impl Decision {
    /// The transform that makes batches fit the decision, if one is needed.
    pub fn transform(&self) -> Option<Arc<dyn Transform>> {
        (!self.discard.is_empty() || !self.fill_null.is_empty()).then(|| {
            Arc::new(Conform {
                discard: self.discard.clone(),
                fill_null: self.fill_null.clone(),
            }) as Arc<dyn Transform>
        })
    }

    /// The refusal as an error for `stream`.
    pub fn error(&self, stream: &str) -> Option<Error> {
        self.refusal.as_ref().map(|r| {
            Error::new(
                ErrorKind::SchemaMismatch,
                format!("{r}; `ferry plan` shows every difference, and `on_schema_change` on the stream chooses what happens"),
            )
            .with("stream", stream)
        })
    }
}

/// Applies `policy` to `diff` (see the module docs for the table).
pub fn decide(diff: &SchemaDiff, policy: OnSchemaChange, destination: &Schema) -> Decision {
    use OnSchemaChange::*;
    let mut d = Decision::default();
    let mut refused = Vec::new();
    for c in &diff.changes {
        match (c, policy) {
            (Change::Added { column, ty }, Replace) => d
                .actions
                .push(format!("replace: add column {column} ({ty})")),
            (Change::Removed { column, .. }, Replace) => {
                d.actions.push(format!("replace: drop column {column}"))
            }
            (Change::TypeChanged { column, to, .. }, Replace) => d
                .actions
                .push(format!("replace: column {column} becomes {to}")),
            (Change::Added { column, ty }, Default | Evolve) => {
                d.actions.push(format!("add column {column} ({ty})"))
            }
            (Change::Added { column, .. }, Freeze) => {
                d.actions
                    .push(format!("not load new column {column} (frozen)"));
                d.discard.push(column.clone());
            }
            (Change::Removed { column, .. }, Evolve) => {
                let field =
                    find(destination, column).expect("removed columns are in the destination");
                if field.is_nullable() {
                    d.actions
                        .push(format!("keep column {column}, written as NULL"));
                    d.fill_null.push(field.clone());
                } else {
                    refused.push(format!(
                        "column `{column}` is gone upstream but NOT NULL at the destination"
                    ));
                }
            }
            (Change::Removed { column, .. }, _) => refused.push(format!(
                "column `{column}` is at the destination but no longer in the source"
            )),
            (Change::TypeChanged { column, from, to }, _) => refused.push(format!(
                "column `{column}` is {from} at the destination but {to} upstream"
            )),
            (Change::Added { column, .. }, Fail) => {
                refused.push(format!("column `{column}` is new upstream"))
            }
        }
    }
    if !refused.is_empty() {
        let policy = match policy {
            Default => "the default policy (evolve additive changes only)".to_string(),
            p => format!("on_schema_change = \"{}\"", format!("{p:?}").to_lowercase()),
        };
        d.refusal = Some(format!("{} under {policy}", refused.join("; ")));
    }
    d
}

/// One stream's destination as found before a run: what is there and what will happen.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    /// Source stream.
    pub stream: String,
    /// Destination name.
    pub destination: String,
    /// Whether the destination exists yet (`false`: it will be created).
    pub exists: bool,
    /// Differences (empty when the destination does not exist yet).
    pub diff: SchemaDiff,
    /// What the stream's policy does about them.
    pub decision: Decision,
}

/// Describes `stream`'s destination and applies the stream's `on_schema_change` policy to
/// the schema about to be written (`write.schema`). A refusal is returned in
/// [`Decision::refusal`], not as an error, so `ferry plan` can show all of them; the
/// runtime applies the decision to its stream (`runtime::reconcile`).
pub async fn reconcile_stream(
    sink: &dyn ferry_core::Sink,
    stream: &str,
    write: &WriteRequest,
    policy: OnSchemaChange,
) -> Result<Reconciled> {
    let current = sink
        .describe(&write.stream)
        .await
        .map_err(|e| e.with("stream", stream))?;
    let (exists, diff, mut decision) = match &current {
        None => (false, SchemaDiff::default(), Decision::default()),
        Some(dest) => {
            let diff = SchemaDiff::between(dest, &write.schema);
            let decision = decide(&diff, policy, dest);
            (true, diff, decision)
        }
    };
    if let Some(why) = &mut decision.refusal {
        // the way out that fits the stream's write mode
        if write.mode == ferry_core::WriteMode::Overwrite {
            why.push_str(
                "; this stream is overwritten: `on_schema_change = \"replace\"` rebuilds \
                 its destination with the stream's columns and types",
            );
        } else {
            why.push_str(
                "; change the destination's column by hand, or write the stream with \
                 `mode = \"overwrite\"` and `on_schema_change = \"replace\"`",
            );
        }
    }
    Ok(Reconciled {
        stream: stream.to_string(),
        destination: write.stream.clone(),
        exists,
        diff,
        decision,
    })
}

/// Drops discarded columns and appends NULL columns for kept destination columns.
struct Conform {
    discard: Vec<String>,
    fill_null: Vec<Field>,
}

impl Transform for Conform {
    fn describe(&self) -> String {
        "conform to destination schema".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut fields: Vec<Field> = input
            .fields()
            .iter()
            .filter(|f| !self.discard.contains(f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(self.fill_null.iter().cloned());
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = self.output_schema(&batch.schema())?;
        let mut columns: Vec<ArrayRef> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| !self.discard.contains(f.name()))
            .map(|(_, c)| c.clone())
            .collect();
        for f in &self.fill_null {
            columns.push(new_null_array(f.data_type(), batch.num_rows()));
        }
        RecordBatch::try_new(schema, columns)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("conform batch: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(cols: &[(&str, FerryType, bool)]) -> Schema {
        Schema::new(
            cols.iter()
                .map(|(n, t, null)| t.field(*n, *null))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn diff_lists_added_removed_and_changed() {
        let dest = schema(&[
            ("id", FerryType::Int64, false),
            ("age", FerryType::Int64, true),
            ("score", FerryType::Float64, true),
            // Ferry's own column of soft deletes is no difference
            ("_ferry_deleted_at", FerryType::Timestamp, true),
        ]);
        let incoming = schema(&[
            ("ID", FerryType::Int64, false),
            ("score", FerryType::String, true),
            ("email", FerryType::String, true),
        ]);
        let d = SchemaDiff::between(&dest, &incoming);
        assert_eq!(
            d.changes,
            vec![
                Change::Removed {
                    column: "age".into(),
                    ty: "int64".into()
                },
                Change::TypeChanged {
                    column: "score".into(),
                    from: "float64".into(),
                    to: "string".into()
                },
                Change::Added {
                    column: "email".into(),
                    ty: "string".into()
                },
            ]
        );
    }

    #[test]
    fn policies() {
        let dest = schema(&[
            ("id", FerryType::Int64, false),
            ("age", FerryType::Int64, true),
        ]);
        let incoming = schema(&[
            ("id", FerryType::Int64, false),
            ("email", FerryType::String, true),
        ]);
        let diff = SchemaDiff::between(&dest, &incoming);
        let default = decide(&diff, OnSchemaChange::Default, &dest);
        assert!(default.refusal.as_deref().unwrap().contains("`age`"));
        let evolve = decide(&diff, OnSchemaChange::Evolve, &dest);
        assert_eq!(evolve.refusal, None);
        assert_eq!(evolve.fill_null.len(), 1);
        let freeze = decide(&diff, OnSchemaChange::Freeze, &dest);
        assert!(freeze.refusal.is_some());
        assert_eq!(freeze.discard, vec!["email".to_string()]);
        let fail = decide(&diff, OnSchemaChange::Fail, &dest);
        assert!(fail.refusal.as_deref().unwrap().contains("email"));

        // evolve: batches gain `age` as NULL and keep `email`
        let t = evolve.transform().unwrap();
        let batch = RecordBatch::try_new(
            Arc::new(incoming.clone()),
            vec![
                Arc::new(arrow_array::Int64Array::from(vec![1, 2])),
                Arc::new(arrow_array::StringArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap();
        let out = t.apply(batch).unwrap();
        assert_eq!(out.schema().field(2).name(), "age");
        assert_eq!(out.column(2).null_count(), 2);
    }

    #[test]
    fn widening_is_not_a_change() {
        let dec = |p, s| FerryType::Decimal {
            precision: p,
            scale: s,
        };
        let dest = schema(&[
            ("a", dec(38, 9), true),
            ("b", FerryType::Float64, true),
            ("c", dec(10, 2), true),
        ]);
        let incoming = schema(&[
            ("a", dec(18, 2), true),
            ("b", FerryType::Int64, true),
            ("c", dec(12, 2), true),
        ]);
        let d = SchemaDiff::between(&dest, &incoming);
        assert_eq!(d.changes.len(), 1, "{:?}", d.changes);
        assert!(matches!(&d.changes[0], Change::TypeChanged { column, .. } if column == "c"));
    }

    #[test]
    fn additive_change_alone_passes_the_default() {
        let dest = schema(&[("id", FerryType::Int64, false)]);
        let incoming = schema(&[
            ("id", FerryType::Int64, false),
            ("email", FerryType::String, true),
        ]);
        let diff = SchemaDiff::between(&dest, &incoming);
        let d = decide(&diff, OnSchemaChange::Default, &dest);
        assert_eq!(d.refusal, None);
        assert_eq!(d.actions, vec!["add column email (string)".to_string()]);
        assert!(d.transform().is_none());
    }
}
