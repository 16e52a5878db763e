//! Decoded changes of one table turned into what the runtime applies: per key only the
//! last change counts (the order between keys does not matter), so rows inserted or
//! updated become one `Batch` and deleted keys one `Deleted`, taken whenever enough
//! keys are held (memory stays bounded in a long transaction).

use std::collections::HashMap;
use std::sync::Arc;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::values::ColumnBuilder;
use ferry_core::{Error, ErrorKind, FerryType, Message, Result};

use super::pgoutput::{Msg, Relation, Tuple, Value};
use crate::types::PgKind;

/// The table whose changes are wanted, as the stream reads it.
pub struct Target {
    pub stream: String,
    pub namespace: String,
    pub table: String,
    pub schema: SchemaRef,
    pub kinds: Vec<PgKind>,
    /// The key's columns in the schema, in the key's order.
    pub key: Vec<usize>,
}

type Key = Vec<String>;

/// The changes of the target table read so far and not yet taken.
pub struct Changes {
    target: Target,
    /// The target's relation id, and where each of its columns is in the schema.
    relation: Option<(u32, Vec<Option<usize>>)>,
    /// The last change of each key: the row (schema order), or `None` when deleted.
    latest: HashMap<Key, Option<Tuple>>,
    /// The LSN of the last commit seen.
    pub commit_lsn: Option<u64>,
}

impl Changes {
    pub fn new(target: Target) -> Self {
        Changes {
            target,
            relation: None,
            latest: HashMap::new(),
            commit_lsn: None,
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Takes one decoded message into account.
    pub fn apply(&mut self, msg: Msg) -> Result<()> {
        match msg {
            Msg::Relation(r)
                if r.namespace == self.target.namespace && r.name == self.target.table =>
            {
                self.relation = Some((r.id, self.columns(&r)));
            }
            Msg::Commit { end_lsn, .. } => self.commit_lsn = Some(end_lsn),
            Msg::Insert { rel, new } if self.ours(rel) => self.upsert(None, new)?,
            Msg::Update { rel, old, new } if self.ours(rel) => self.upsert(old, new)?,
            Msg::Delete { rel, old } if self.ours(rel) => {
                let old = self.row(old, None)?;
                let key = self.key(&old)?;
                self.latest.insert(key, None);
            }
            Msg::Truncate { rels } if rels.iter().any(|r| self.ours(*r)) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "table `{}` was truncated at the source, which change data capture cannot apply \
                         row by row; empty the destination table, then run `ferry sync --full-refresh`",
                        self.target.table
                    ),
                )
                .with("stream", &self.target.stream));
            }
            _ => {}
        }
        Ok(())
    }

    fn ours(&self, rel: u32) -> bool {
        self.relation.as_ref().is_some_and(|(id, _)| *id == rel)
    }

    /// Where each column of `r` is in the schema (`None`: a column the stream does not
    /// read, e.g. dropped since).
    fn columns(&self, r: &Relation) -> Vec<Option<usize>> {
        let schema = &self.target.schema;
        (r.columns.iter())
            .map(|c| schema.index_of(&c.name).ok())
            .collect()
    }

    /// A change's tuple in schema order; an unchanged TOASTed value is taken from `old`
    /// (replica identity full) or from this key's row held.
    fn row(&self, tuple: Tuple, old: Option<&Tuple>) -> Result<Tuple> {
        let (_, at) = self.relation.as_ref().expect("a change of our relation");
        let mut row = vec![Value::Null; self.target.schema.fields().len()];
        for (i, v) in tuple.into_iter().enumerate() {
            if let Some(Some(c)) = at.get(i) {
                row[*c] = v;
            }
        }
        for (c, v) in row.iter_mut().enumerate() {
            if *v != Value::Unchanged {
                continue;
            }
            let before = old
                .and_then(|o| o.get(c))
                .filter(|o| **o != Value::Unchanged);
            *v = before.cloned().ok_or_else(|| {
                let name = self.target.schema.field(c).name();
                Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "an update of table `{}` left column `{name}` out (a large value it did not change); \
                         run `ALTER TABLE {} REPLICA IDENTITY FULL` at the source so changes carry it",
                        self.target.table, self.target.table
                    ),
                )
                .with("stream", &self.target.stream)
            })?;
        }
        Ok(row)
    }

    fn key(&self, row: &Tuple) -> Result<Key> {
        (self.target.key.iter())
            .map(|c| match &row[*c] {
                Value::Text(t) => Ok(t.clone()),
                _ => Err(Error::data(format!(
                    "a change of table `{}` has no value for key column `{}`",
                    self.target.table,
                    self.target.schema.field(*c).name()
                ))
                .with("stream", &self.target.stream)),
            })
            .collect()
    }

    fn upsert(&mut self, old: Option<Tuple>, new: Tuple) -> Result<()> {
        let old = old.map(|o| self.row(o, None)).transpose()?;
        if let Some(o) = &old {
            // the key changed: the row under the old key is gone
            let before = self.key(o)?;
            self.latest.insert(before, None);
        }
        let held = match &old {
            Some(o) => Some(o.clone()),
            None if new.contains(&Value::Unchanged) => {
                let probe = self.row(
                    new.iter()
                        .map(|v| {
                            if *v == Value::Unchanged {
                                Value::Null
                            } else {
                                v.clone()
                            }
                        })
                        .collect(),
                    None,
                )?;
                self.latest.get(&self.key(&probe)?).cloned().flatten()
            }
            None => None,
        };
        let row = self.row(new, held.as_ref())?;
        let key = self.key(&row)?;
        self.latest.insert(key, Some(row));
        Ok(())
    }

    /// What the changes held say to do: rows to upsert, then keys to delete (no key is in
    /// both). Empties the changes held.
    pub fn take(&mut self) -> Result<Vec<Message>> {
        let target = &self.target;
        let fields = target.schema.fields();
        let types = FerryType::of_each(&target.schema, FerryType::String);
        let n = self.latest.len();
        let mut rows: Vec<ColumnBuilder> =
            types.iter().map(|t| ColumnBuilder::new(*t, n)).collect();
        let mut keys: Vec<ColumnBuilder> = (target.key.iter())
            .map(|c| ColumnBuilder::new(types[*c], n))
            .collect();
        let (mut upserts, mut deletes) = (0, 0);
        for (key, row) in self.latest.drain() {
            match row {
                Some(row) => {
                    upserts += 1;
                    for (c, v) in row.iter().enumerate() {
                        append(&mut rows[c], target.kinds[c], v)
                            .map_err(|m| bad_value(target, c, m))?;
                    }
                }
                None => {
                    deletes += 1;
                    for (i, text) in key.iter().enumerate() {
                        let c = target.key[i];
                        append(&mut keys[i], target.kinds[c], &Value::Text(text.clone()))
                            .map_err(|m| bad_value(target, c, m))?;
                    }
                }
            }
        }
        let mut out = Vec::new();
        if upserts > 0 {
            out.push(Message::Batch(finish(target.schema.clone(), rows)?));
        }
        if deletes > 0 {
            let key_fields: Vec<_> = (target.key.iter()).map(|c| fields[*c].clone()).collect();
            out.push(Message::Deleted(finish(
                Arc::new(Schema::new(key_fields)),
                keys,
            )?));
        }
        Ok(out)
    }
}

fn finish(schema: SchemaRef, mut columns: Vec<ColumnBuilder>) -> Result<RecordBatch> {
    let arrays = columns.iter_mut().map(ColumnBuilder::finish).collect();
    RecordBatch::try_new(schema, arrays)
        .map_err(|e| Error::internal(format!("cannot build a batch of changes: {e}")))
}

fn bad_value(target: &Target, column: usize, message: String) -> Error {
    let name = target.schema.field(column).name();
    Error::data(format!("column `{name}` of a change: {message}"))
        .with("stream", &target.stream)
        .with("column", name)
}

/// Appends a value as `pgoutput` sends it (the type's output text) to a column.
fn append(
    column: &mut ColumnBuilder,
    kind: PgKind,
    value: &Value,
) -> std::result::Result<(), String> {
    let text = match value {
        Value::Text(t) => t,
        _ => {
            column.append_null();
            return Ok(());
        }
    };
    match kind {
        PgKind::Bytea => column.append_bytes(&bytea(text)?),
        PgKind::Other => Err(format!(
            "values of this type (`{}`) are not read from changes yet; leave the column out of the stream",
            ferry_core::values::preview(text)
        )),
        _ => column.append_text(text),
    }
}

/// `bytea`'s hex output (`\x0a1b`).
fn bytea(text: &str) -> std::result::Result<Vec<u8>, String> {
    let hex = text
        .strip_prefix("\\x")
        .ok_or("expected bytea in hex (`\\x…`): set `bytea_output = 'hex'` at the source")?;
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    (hex.as_bytes().chunks(2))
        .map(|p| match p {
            [a, b] => digit(*a).zip(digit(*b)).map(|(a, b)| a << 4 | b),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| "a bytea value is not hex".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::cdc::pgoutput::Column;
    use ferry_core::arrow_array::cast::AsArray;
    use ferry_core::arrow_array::types::Int64Type;

    fn target() -> Target {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("name", true),
            FerryType::Binary.field("data", true),
        ]);
        Target {
            stream: "t".into(),
            namespace: "public".into(),
            table: "t".into(),
            schema: Arc::new(schema),
            kinds: vec![PgKind::Int8, PgKind::Text, PgKind::Bytea],
            key: vec![0],
        }
    }

    fn relation(id: u32, name: &str) -> Msg {
        let col = |n: &str, key| Column {
            name: n.into(),
            type_oid: 25,
            key,
        };
        Msg::Relation(Relation {
            id,
            namespace: "public".into(),
            name: name.into(),
            // another order than the schema's, and a column the stream does not read
            columns: vec![
                col("name", false),
                col("gone", false),
                col("id", true),
                col("data", false),
            ],
        })
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn the_last_change_of_each_key_wins_and_other_tables_are_left_out() {
        let mut c = Changes::new(target());
        let row = |id: &str, name: &str| vec![t(name), t("x"), t(id), t("\\x0aff")];
        for m in [
            relation(7, "t"),
            relation(8, "other"),
            Msg::Insert {
                rel: 7,
                new: row("1", "a"),
            },
            Msg::Insert {
                rel: 7,
                new: row("2", "b"),
            },
            Msg::Insert {
                rel: 8,
                new: row("3", "elsewhere"),
            },
            Msg::Update {
                rel: 7,
                old: None,
                new: row("1", "a2"),
            },
            Msg::Delete {
                rel: 7,
                old: vec![Value::Null, Value::Null, t("2"), Value::Null],
            },
            // the key changed: 1 is gone, 4 holds the row
            Msg::Update {
                rel: 7,
                old: Some(vec![Value::Null, Value::Null, t("1"), Value::Null]),
                new: row("4", "a3"),
            },
            Msg::Commit {
                commit_lsn: 1,
                end_lsn: 9,
            },
        ] {
            c.apply(m).unwrap();
        }
        assert_eq!(c.commit_lsn, Some(9));
        let out = c.take().unwrap();
        assert_eq!(c.len(), 0);
        let [Message::Batch(rows), Message::Deleted(gone)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(rows.num_rows(), 1);
        assert_eq!(rows.column(0).as_primitive::<Int64Type>().value(0), 4);
        assert_eq!(rows.column(1).as_string::<i32>().value(0), "a3");
        assert_eq!(rows.column(2).as_binary::<i32>().value(0), [0x0a, 0xff]);
        let mut deleted: Vec<i64> = gone.column(0).as_primitive::<Int64Type>().values().to_vec();
        deleted.sort();
        assert_eq!(deleted, [1, 2]);
        assert_eq!(gone.schema().field(0).name(), "id");
    }

    #[test]
    fn a_truncate_a_missing_large_value_and_a_bad_value_fail_naming_the_table() {
        let mut c = Changes::new(target());
        c.apply(relation(7, "t")).unwrap();
        let e = c.apply(Msg::Truncate { rels: vec![7] }).unwrap_err();
        assert!(e.message().contains("truncated"), "{e}");
        let unchanged = vec![Value::Unchanged, t("x"), t("1"), Value::Null];
        let e = c
            .apply(Msg::Update {
                rel: 7,
                old: None,
                new: unchanged.clone(),
            })
            .unwrap_err();
        assert!(e.message().contains("REPLICA IDENTITY FULL"), "{e}");
        // a value held for the key fills it in
        let full = vec![t("kept"), t("x"), t("1"), Value::Null];
        c.apply(Msg::Insert { rel: 7, new: full }).unwrap();
        c.apply(Msg::Update {
            rel: 7,
            old: None,
            new: unchanged,
        })
        .unwrap();
        let out = c.take().unwrap();
        let [Message::Batch(rows)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(rows.column(1).as_string::<i32>().value(0), "kept");
        c.apply(Msg::Insert {
            rel: 7,
            new: vec![t("a"), t("x"), t("one"), Value::Null],
        })
        .unwrap();
        let e = c.take().unwrap_err();
        assert_eq!(e.context_value("column"), Some("id"), "{e}");
    }
}
