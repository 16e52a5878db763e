//! Transforms: per-stream steps applied to every batch between source and sink.
//!
//! Each `[[streams]]` entry may list `transforms`, applied in order. A transform knows
//! its output schema before the run starts (so `plan` and the destination table see the
//! final shape) and then rewrites batches column-wise. Field protection lives here:
//!
//! * `hash`: keyed HMAC-SHA256 of the value's text form, as 64 hex characters. The same
//!   input and key always give the same token, so joins across tables still work, but
//!   the value cannot be recovered without brute force over its domain *and* the key.
//! * `encrypt`: AES-256-GCM with a fresh random 96-bit nonce per value; output is base64 of
//!   `nonce || ciphertext || tag` and can be decrypted with the key ([`decrypt_field`]).
//!   The column name is the additional authenticated data, so a value moved to another
//!   column does not decrypt.
//! * `mask`: keeps the last `keep_last` characters and replaces the rest with `*`.
//! * `drop`: removes columns.
//!
//! Keys are secrets: write `${secret:NAME}` (the vault) or `${env:NAME}`. An encryption
//! key is 32 bytes, base64; a hash key is any string of at least 16 bytes.
//!
//! Reshaping and cleaning:
//!
//! | transform | config | what it does |
//! |-----------|--------|--------------|
//! | `rename` | `{ type = "rename", from = "a", to = "b" }` | renames a column in place |
//! | `select` | `{ type = "select", columns = ["b", "a"] }` | keeps only these columns, in this order |
//! | `cast` | `{ type = "cast", column = "a", to = "int64", on_error = "fail" }` | converts a column to a Ferry type; a value that does not convert fails the stream (naming row, column and value), or with the stream's `on_bad_record = "quarantine"` sends its row to the quarantine (the original value kept, the other rows go on), or with `on_error = "null"` becomes NULL |
//! | `trim` | `{ type = "trim", columns = ["a"] }` | strips leading and trailing whitespace (string and json columns) |
//! | `lowercase`, `uppercase` | `{ type = "lowercase", columns = ["a"] }` | Unicode case mapping (string columns) |
//! | `default` | `{ type = "default", column = "a", value = 0 }` | NULL becomes `value` (checked against the column's type before the run; the column becomes NOT NULL) |
//! | `filter` | `{ type = "filter", expr = "amount > 0 && status != \"void\"" }` | keeps the rows where the expression is true |
//! | `derive` | `{ type = "derive", column = "total", expr = "amount * quantity", as = "float64" }` | a new column (or a replaced one, in place) from an expression |
//! | `parse_timestamp` | `{ type = "parse_timestamp", column = "a", format = "%d/%m/%Y %H:%M", timezone = "Europe/Paris" }` | string → timestamp with a strftime format, in an IANA zone or a fixed offset (`+02:00`; default `UTC`) |
//! | `flatten` | `{ type = "flatten", column = "address", fields = { city = "string", zip = "string" } }` | listed top-level keys of a json column become columns `<prefix><key>` (prefix default `<column>_`), in place of the column |
//! | `metadata` | `{ type = "metadata", columns = ["_ferry_synced_at", "_ferry_run_id"] }` | constant columns: when the run started and its id |
//!
//! Every transform knows its exact output schema before the run: a missing column, an
//! unknown type, a default that does not fit, an expression that names no column or mixes
//! types are config errors naming the transform, found by `ferry check`/`sync` before a row
//! is read.
//!
//! Expressions (`filter`, `derive`) use the [evalexpr](https://docs.rs/evalexpr/11.3.1)
//! language, evaluated per row: columns are variables (`amount`, `status`; a column whose
//! name is not an identifier must be renamed first), with `+ - * / % ^`, `== != < <= > >=`,
//! `&& || !`, string literals in double quotes, `if(cond, a, b)`, `min`, `max`, `floor`,
//! `round`, `len`, `str::to_lowercase`, `str::trim` … and Ferry's own: `is_null(x)`,
//! `coalesce(x, y, …)`, `replace`, `regex_replace`, `regex_matches`, `split`, `pad_left`,
//! `pad_right`, `substring` (`docs/transforms.md` documents every function; an unknown name
//! is a config error when the transform is built). Values: int64 → integer, float64 and decimal →
//! float (decimals lose exactness), bool → boolean, string/json/binary → string, date →
//! `"2024-05-01"`, timestamp → `"2024-05-01T12:00:00.000000Z"` (fixed width, so `<` on
//! timestamps is chronological and `created_at >= "2024-05-01"` works). Integer division
//! truncates (`7 / 2 == 3`; write `7 / 2.0`); `==` compares types strictly (`1 == 1.0` is
//! false; `<` and `>` do not). NULL is `()`: an operation that fails because an operand is
//! NULL yields NULL, so `filter` drops the row and `derive` writes NULL; `&&`, `||` and `!`
//! follow SQL's three-valued logic (`NULL || true` is true, `NULL && false` is false).
//! Unlike SQL, `==` and `!=` compare NULL as a value: `x == ()` is true for NULL, and
//! `status != "void"` is true when `status` is NULL. `is_null(x)` and `coalesce` test and
//! replace NULL explicitly (`if` evaluates both branches, so it cannot guard against NULL).
//! Any other error while evaluating a row (a division by zero) fails the stream, naming the
//! transform. Expressions made only of columns, constants, arithmetic, comparisons and
//! `&&`/`||`/`!` are evaluated a whole batch at a time, with the same results (tested
//! against the per-row path); the rest row by row.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use ferry_core::types::FerryType;
use ferry_core::values::write_text;
use ferry_core::{Error, ErrorKind, Result, Secret};

mod columns;
mod expr;
mod field_key;
mod functions;

pub use field_key::FieldKey;

/// One step applied to every batch of a stream.
pub trait Transform: Send + Sync {
    /// A short description for plans and errors (`hash(email)`).
    fn describe(&self) -> String;
    /// The schema of the batches this step outputs, given the input schema.
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef>;
    /// Rewrites one batch (its schema is the input schema given to `output_schema`).
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch>;
    /// Columns (of this step's input) whose clear values must not leave the pipeline: the
    /// protected and dropped ones. Rows set aside before this step are shown without them.
    fn hides(&self) -> Vec<String> {
        Vec::new()
    }
    /// Like [`Transform::apply`], and, for a step that removes rows (a `filter`), which input
    /// rows it kept (`None`: every row stays where it was, or the step cannot say), so that
    /// the runtime can still name a later failing row by its position in the source.
    fn apply_keeping(&self, batch: RecordBatch) -> Result<(RecordBatch, Option<Vec<bool>>)> {
        Ok((self.apply(batch)?, None))
    }
    /// The column this step renames and its new name (`rename`), so that a column protected
    /// after the rename is known by its earlier name too.
    fn renames(&self) -> Option<(String, String)> {
        None
    }
}

/// A transform as written in `sync.toml` (`transforms = [{ type = "hash", column = "email", key = "${secret:k}" }]`).
///
/// ```
/// use ferry_engine::transform::TransformConfig;
/// use ferry_core::Secret;
///
/// let t = TransformConfig::Mask { column: "phone".into(), keep_last: 4 }.build().unwrap();
/// assert_eq!(t.describe(), "mask(phone)");
/// let short = TransformConfig::Hash { column: "email".into(), key: Secret::new("short") };
/// assert!(short.build().is_err()); // hash keys must be at least 16 bytes
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformConfig {
    /// Replace a column by the keyed HMAC-SHA256 of its value (64 hex characters).
    Hash {
        /// The column.
        column: String,
        /// The HMAC key (a secret reference; at least 16 bytes).
        key: Secret,
    },
    /// Replace a column by its AES-256-GCM encryption (base64).
    Encrypt {
        /// The column.
        column: String,
        /// 32 bytes, base64 (a secret reference).
        key: Secret,
    },
    /// Keep only the last characters of a column.
    Mask {
        /// The column.
        column: String,
        /// How many trailing characters stay visible (default 4).
        #[serde(default = "default_keep")]
        keep_last: usize,
    },
    /// Remove columns.
    Drop {
        /// The columns.
        columns: Vec<String>,
    },
    /// Rename a column (in place).
    Rename {
        /// The column's current name.
        from: String,
        /// Its new name (must not be taken).
        to: String,
    },
    /// Keep only these columns, in this order.
    Select {
        /// The columns to keep.
        columns: Vec<String>,
    },
    /// Convert a column to another Ferry type.
    Cast {
        /// The column.
        column: String,
        /// The Ferry type to convert to (`int64`, `float64`, `decimal(12,2)`, `date`, `timestamp`, `bool`, `string`, `json` …).
        to: String,
        /// What a value that does not convert does: `fail` the stream (default; with the
        /// stream's `on_bad_record = "quarantine"`, only its row goes to the quarantine) or become `null`.
        #[serde(default)]
        on_error: OnError,
    },
    /// Strip leading and trailing whitespace (string and json columns).
    Trim {
        /// The columns.
        columns: Vec<String>,
    },
    /// Convert text to lower case (string columns).
    Lowercase {
        /// The columns.
        columns: Vec<String>,
    },
    /// Convert text to upper case (string columns).
    Uppercase {
        /// The columns.
        columns: Vec<String>,
    },
    /// Replace NULL by a value (the column becomes NOT NULL).
    Default {
        /// The column.
        column: String,
        /// The value, as TOML (`0`, `1.5`, `"unknown"`, `true`, `"2024-01-01"`); it must fit the column's type.
        value: serde_json::Value,
    },
    /// Keep only the rows where an expression is true (rows where it is false or NULL are left out).
    Filter {
        /// A boolean expression over the row's columns (`amount > 0 && status != "void"`).
        expr: String,
    },
    /// Add a column computed from an expression (or replace a column of the same name, in place).
    Derive {
        /// The new column's name.
        column: String,
        /// The expression over the row's columns (`amount * quantity`).
        expr: String,
        /// The new column's Ferry type (`float64`, `int64`, `string`, `bool` …).
        #[serde(rename = "as")]
        as_type: String,
    },
    /// Parse a string column into a timestamp.
    ParseTimestamp {
        /// The column (string); it becomes a timestamp column.
        column: String,
        /// A strftime format (`%d/%m/%Y %H:%M:%S`; a date-only format means midnight). A format with an offset (`%z`) ignores `timezone`.
        format: String,
        /// The zone of the local times: an IANA name (`Europe/Paris`), a fixed offset (`+02:00`) or `UTC` (default).
        #[serde(default = "default_timezone")]
        timezone: String,
        /// What a value that does not parse does: `fail` the stream (default) or become `null`.
        #[serde(default)]
        on_error: OnError,
    },
    /// Turn listed top-level keys of a json column into columns, in place of the column.
    Flatten {
        /// The json (or string) column holding JSON objects.
        column: String,
        /// Prefix of the new columns' names (default `<column>_`; `""` for the bare keys).
        #[serde(default)]
        prefix: Option<String>,
        /// The keys to extract and their Ferry types (`{ city = "string", zip = "int64" }`); columns come in key order.
        fields: BTreeMap<String, String>,
        /// What a value that is not a JSON object, or a key that does not convert, does: `fail` (default) or `null`.
        #[serde(default)]
        on_error: OnError,
    },
    /// Add constant columns describing the run.
    Metadata {
        /// Which: `_ferry_synced_at` (timestamp: when the run started) and/or `_ferry_run_id` (string).
        columns: Vec<String>,
    },
}

/// What a transform does with a value it cannot convert.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the stream with an error naming the column and the value (default).
    #[default]
    Fail,
    /// Write NULL instead (the column becomes nullable).
    Null,
}

fn default_keep() -> usize {
    4
}

fn default_timezone() -> String {
    "UTC".into()
}

/// What a transform may know about the run it is built for (`metadata` uses it).
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run id (`None`: the caller did not say; `_ferry_run_id` is then refused).
    pub run_id: Option<String>,
    /// When the run started (`_ferry_synced_at`).
    pub synced_at: chrono::DateTime<chrono::Utc>,
}

impl RunInfo {
    /// Run `run_id`, starting now.
    pub fn starting_now(run_id: &str) -> RunInfo {
        RunInfo {
            run_id: Some(run_id.to_string()),
            synced_at: chrono::Utc::now(),
        }
    }
}

impl TransformConfig {
    /// The transform's `type` as written in the config (`filter`).
    pub fn kind(&self) -> &'static str {
        match self {
            TransformConfig::Hash { .. } => "hash",
            TransformConfig::Encrypt { .. } => "encrypt",
            TransformConfig::Mask { .. } => "mask",
            TransformConfig::Drop { .. } => "drop",
            TransformConfig::Rename { .. } => "rename",
            TransformConfig::Select { .. } => "select",
            TransformConfig::Cast { .. } => "cast",
            TransformConfig::Trim { .. } => "trim",
            TransformConfig::Lowercase { .. } => "lowercase",
            TransformConfig::Uppercase { .. } => "uppercase",
            TransformConfig::Default { .. } => "default",
            TransformConfig::Filter { .. } => "filter",
            TransformConfig::Derive { .. } => "derive",
            TransformConfig::ParseTimestamp { .. } => "parse_timestamp",
            TransformConfig::Flatten { .. } => "flatten",
            TransformConfig::Metadata { .. } => "metadata",
        }
    }

    /// Builds the transform, checking keys, types, formats and expressions (no I/O).
    /// `metadata` gets the current time and no run id: use [`TransformConfig::build_for_run`].
    pub fn build(&self) -> Result<Arc<dyn Transform>> {
        self.build_with(&RunInfo {
            run_id: None,
            synced_at: chrono::Utc::now(),
        })
    }

    /// Builds the transform for run `run_id` (its `metadata` columns hold that id and now).
    pub fn build_for_run(&self, run_id: &str) -> Result<Arc<dyn Transform>> {
        self.build_with(&RunInfo {
            run_id: Some(run_id.to_string()),
            synced_at: chrono::Utc::now(),
        })
    }

    /// Builds the transform with what it may know about the run.
    pub fn build_with(&self, run: &RunInfo) -> Result<Arc<dyn Transform>> {
        Ok(match self {
            TransformConfig::Hash { column, key } => {
                if key.expose().len() < 16 {
                    return Err(Error::config(format!(
                        "the hash key for column `{column}` is shorter than 16 bytes"
                    )));
                }
                Arc::new(Protect {
                    column: column.clone(),
                    how: How::Hash(hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes())),
                })
            }
            TransformConfig::Encrypt { column, key } => {
                let bytes = B64.decode(key.expose().trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| {
                    Error::config(format!("the encryption key for column `{column}` must be 32 bytes, base64 (`ferry keys generate field` makes one)"))
                })?;
                let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes"));
                Arc::new(Protect {
                    column: column.clone(),
                    how: How::Encrypt(Box::new(k)),
                })
            }
            TransformConfig::Mask { column, keep_last } => Arc::new(Protect {
                column: column.clone(),
                how: How::Mask(*keep_last),
            }),
            TransformConfig::Drop { columns } => Arc::new(DropColumns(columns.clone())),
            TransformConfig::Rename { from, to } => columns::rename(from, to)?,
            TransformConfig::Select { columns } => columns::select(columns)?,
            TransformConfig::Cast {
                column,
                to,
                on_error,
            } => columns::cast(column, to, *on_error)?,
            TransformConfig::Trim { columns } => columns::text(columns, columns::TextOp::Trim)?,
            TransformConfig::Lowercase { columns } => {
                columns::text(columns, columns::TextOp::Lower)?
            }
            TransformConfig::Uppercase { columns } => {
                columns::text(columns, columns::TextOp::Upper)?
            }
            TransformConfig::Default { column, value } => columns::default(column, value)?,
            TransformConfig::Filter { expr } => expr::filter(expr)?,
            TransformConfig::Derive {
                column,
                expr,
                as_type,
            } => expr::derive(column, expr, as_type)?,
            TransformConfig::ParseTimestamp {
                column,
                format,
                timezone,
                on_error,
            } => columns::parse_timestamp(column, format, timezone, *on_error)?,
            TransformConfig::Flatten {
                column,
                prefix,
                fields,
                on_error,
            } => columns::flatten(column, prefix.as_deref(), fields, *on_error)?,
            TransformConfig::Metadata { columns } => columns::metadata(columns, run)?,
        })
    }
}

/// Parses a Ferry type name for transform `what`, as a config error listing the valid names.
fn parse_type(name: &str, what: &str) -> Result<FerryType> {
    FerryType::parse(name).ok_or_else(|| {
        Error::config(format!(
            "{what}: unknown type `{name}` (valid: {})",
            FerryType::NAMES.join(", ")
        ))
    })
}

/// The Ferry type of column `i` (String for a type outside the model).
fn type_at(schema: &Schema, i: usize) -> FerryType {
    FerryType::of(schema.field(i)).unwrap_or(FerryType::String)
}

/// A schema with `fields` and `input`'s metadata.
fn schema_like(input: &Schema, fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

/// `input`'s fields, owned.
fn fields_of(input: &Schema) -> Vec<Field> {
    input.fields().iter().map(|f| f.as_ref().clone()).collect()
}

/// A config error when `name` is already a column of `schema` (for transforms adding columns).
fn ensure_free(schema: &Schema, name: &str, what: &str) -> Result<()> {
    if schema.field_with_name(name).is_ok() {
        return Err(Error::config(format!(
            "{what}: column `{name}` already exists"
        )));
    }
    Ok(())
}

enum How {
    Hash(hmac::Key),
    Encrypt(Box<LessSafeKey>),
    Mask(usize),
}

struct Protect {
    column: String,
    how: How,
}

fn column_index(schema: &Schema, column: &str, what: &str) -> Result<usize> {
    schema.index_of(column).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut msg = format!("{what}: no column `{column}`");
        if let Some(best) = ferry_core::suggest::nearest(column, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        Error::config(msg)
    })
}

impl Transform for Protect {
    fn describe(&self) -> String {
        let verb = match self.how {
            How::Hash(_) => "hash",
            How::Encrypt(_) => "encrypt",
            How::Mask(_) => "mask",
        };
        format!("{verb}({})", self.column)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let i = column_index(input, &self.column, &self.describe())?;
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let nullable = fields[i].is_nullable();
        fields[i] = FerryType::String.field(self.column.clone(), nullable);
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let i = column_index(&schema, &self.column, &self.describe())?;
        let ty = FerryType::of(schema.field(i)).unwrap_or(FerryType::String);
        let col = batch.column(i);
        let mut out = StringBuilder::with_capacity(col.len(), col.len() * 44);
        let mut text = String::new();
        let rng = SystemRandom::new();
        for r in 0..col.len() {
            text.clear();
            if !write_text(col.as_ref(), ty, r, &mut text) {
                out.append_null();
                continue;
            }
            match &self.how {
                How::Hash(key) => {
                    let tag = hmac::sign(key, text.as_bytes());
                    out.append_value(ferry_formats::digest::hex(tag.as_ref()));
                }
                How::Encrypt(key) => {
                    let mut nonce = [0u8; NONCE_LEN];
                    rng.fill(&mut nonce)
                        .map_err(|_| Error::internal("the system random generator failed"))?;
                    let mut data = text.as_bytes().to_vec();
                    key.seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(self.column.as_bytes()),
                        &mut data,
                    )
                    .map_err(|_| Error::internal("field encryption failed"))?;
                    let mut all = nonce.to_vec();
                    all.extend_from_slice(&data);
                    out.append_value(B64.encode(all));
                }
                How::Mask(keep) => {
                    let n = text.chars().count();
                    let masked: String = text
                        .chars()
                        .enumerate()
                        .map(|(k, c)| if k + keep < n { '*' } else { c })
                        .collect();
                    out.append_value(masked);
                }
            }
        }
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols[i] = Arc::new(out.finish());
        let out_schema = self.output_schema(&schema)?;
        Ok(RecordBatch::try_new(out_schema, cols)?)
    }

    fn hides(&self) -> Vec<String> {
        vec![self.column.clone()]
    }
}

struct DropColumns(Vec<String>);

impl Transform for DropColumns {
    fn describe(&self) -> String {
        format!("drop({})", self.0.join(", "))
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        for c in &self.0 {
            column_index(input, c, &self.describe())?;
        }
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .filter(|f| !self.0.contains(f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !self.0.contains(schema.field(*i).name()))
            .collect();
        Ok(batch.project(&keep)?)
    }

    fn hides(&self) -> Vec<String> {
        self.0.clone()
    }
}

/// Decrypts a value written by the `encrypt` transform for `column` with `key` (32 bytes,
/// base64); [`FieldKey`] decrypts many with one key.
pub fn decrypt_field(key_b64: &str, column: &str, value: &str) -> Result<String> {
    FieldKey::parse(&Secret::new(key_b64))?.decrypt(column, value)
}

/// Applies `steps` in order.
pub fn apply_all(steps: &[Arc<dyn Transform>], mut batch: RecordBatch) -> Result<RecordBatch> {
    for (i, s) in steps.iter().enumerate() {
        batch = s
            .apply(batch)
            .map_err(|e| hide_value(e, &steps[i..]).with("transform", s.describe()))?;
    }
    Ok(batch)
}

/// A row a transform could not convert, set aside by [`apply_all_sparing`].
#[derive(Debug)]
pub struct Spared {
    /// Its index in the batch given to [`apply_all_sparing`] (`None` when an earlier step
    /// changed the rows without saying which it kept).
    pub row: Option<usize>,
    /// The step that failed (`cast(amount, int64)`).
    pub step: String,
    /// The column, when the step names it.
    pub column: Option<String>,
    /// The row as it entered the failing step, so with the value that did not convert;
    /// columns a later step protects or drops read `[protected]`.
    pub record: serde_json::Value,
    /// Why (names the column and the value, unless the value is protected later).
    pub error: Error,
}

/// Like [`apply_all`], but a row that a step rejects on its own (a data error such as a
/// value `cast` cannot convert) is taken out and returned instead of failing the batch;
/// the other rows go on. Other errors still fail. The failing rows are found by applying
/// the step to halves of the batch, so the cost is only paid by batches that hold one.
pub fn apply_all_sparing(
    steps: &[Arc<dyn Transform>],
    batch: RecordBatch,
) -> Result<(RecordBatch, Vec<Spared>)> {
    let t = apply_all_tracked(steps, batch)?;
    Ok((t.batch, t.spared))
}

/// What [`apply_all_tracked`] made of a batch.
#[derive(Debug)]
pub struct Transformed {
    /// The rows that went through every step.
    pub batch: RecordBatch,
    /// The rows set aside.
    pub spared: Vec<Spared>,
    /// For each row of `batch`, its index in the batch given (`None` when a step changed
    /// the rows without saying which it kept).
    pub origin: Option<Vec<usize>>,
}

/// [`apply_all_sparing`], also telling where each remaining row came from.
pub fn apply_all_tracked(
    steps: &[Arc<dyn Transform>],
    mut batch: RecordBatch,
) -> Result<Transformed> {
    let mut spared = Vec::new();
    // index in the given batch of each row of `batch`, while it is known
    let mut origin: Option<Vec<usize>> = Some((0..batch.num_rows()).collect());
    for (i, s) in steps.iter().enumerate() {
        let rows_in = batch.num_rows();
        let first = match s.apply_keeping(batch.clone()) {
            Ok(out) => Ok(out),
            Err(e) if e.kind() == ErrorKind::DataInvalid => Err(e),
            Err(e) => return Err(hide_value(e, &steps[i..]).with("transform", s.describe())),
        };
        let out = match first {
            Ok(out) => out,
            Err(e) => {
                let mut bad = Vec::new();
                find_bad_rows(s.as_ref(), &batch, 0, rows_in, &mut bad)?;
                if bad.is_empty() {
                    // the batch fails, but no row alone does: not a row's fault
                    return Err(hide_value(e, &steps[i..]).with("transform", s.describe()));
                }
                let hidden = hidden_before(&steps[i..]);
                let mut keep = vec![true; rows_in];
                for (r, err) in bad {
                    keep[r] = false;
                    let mut record = crate::rows::row_json(&batch, r);
                    if let serde_json::Value::Object(m) = &mut record {
                        for h in &hidden {
                            if let Some(v) = m.get_mut(h) {
                                *v = serde_json::Value::String("[protected]".into());
                            }
                        }
                    }
                    spared.push(Spared {
                        row: origin.as_ref().map(|o| o[r]),
                        step: s.describe(),
                        column: err.context_value("column").map(str::to_string),
                        record,
                        error: hide_value(err, &steps[i..]).with("transform", s.describe()),
                    });
                }
                if let Some(o) = &mut origin {
                    let mut k = keep.iter();
                    o.retain(|_| *k.next().expect("one flag per row"));
                }
                let mask = arrow_array::BooleanArray::from(keep);
                batch = arrow_select::filter::filter_record_batch(&batch, &mask)?;
                s.apply_keeping(batch.clone())
                    .map_err(|e| hide_value(e, &steps[i..]).with("transform", s.describe()))?
            }
        };
        let (out, kept) = out;
        match kept {
            Some(kept) if kept.len() == batch.num_rows() => {
                if let Some(o) = &mut origin {
                    let mut k = kept.iter();
                    o.retain(|_| *k.next().expect("one flag per row"));
                }
            }
            _ if out.num_rows() != batch.num_rows() => origin = None,
            _ => {}
        }
        if origin.as_ref().is_some_and(|o| o.len() != out.num_rows()) {
            origin = None;
        }
        batch = out;
    }
    Ok(Transformed {
        batch,
        spared,
        origin,
    })
}

/// Pushes `(row, error)` for each row of `batch[lo..lo + len]` that `step` rejects alone.
fn find_bad_rows(
    step: &dyn Transform,
    batch: &RecordBatch,
    lo: usize,
    len: usize,
    out: &mut Vec<(usize, Error)>,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    match step.apply(batch.slice(lo, len)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::DataInvalid => {
            if len == 1 {
                out.push((lo, e));
                Ok(())
            } else {
                let half = len / 2;
                find_bad_rows(step, batch, lo, half, out)?;
                find_bad_rows(step, batch, lo + half, len - half, out)
            }
        }
        Err(e) => Err(e.with("transform", step.describe())),
    }
}

/// An error about a value of a column that `steps` (the failing one and those after it)
/// protect or drop, without the value: its clear text must not reach reports or logs.
fn hide_value(e: Error, steps: &[Arc<dyn Transform>]) -> Error {
    let Some(column) = e.context_value("column").map(str::to_string) else {
        return e;
    };
    // follow the column through renames to the step that protects it
    let mut name = column.clone();
    let mut by = None;
    for t in steps {
        if t.hides().contains(&name) {
            by = Some(t);
            break;
        }
        if let Some((from, to)) = t.renames() {
            if from == name {
                name = to;
            }
        }
    }
    let Some(by) = by else {
        return e;
    };
    let mut hidden = Error::new(
        e.kind(),
        format!(
            "column `{column}`: a value did not convert (not shown: {} protects or drops the column)",
            by.describe()
        ),
    );
    for (k, v) in e.context() {
        hidden = hidden.with(k, v);
    }
    hidden
}

/// The columns of the batches `steps` receive whose clear values `steps` protect or drop
/// (`hash`, `encrypt`, `mask`, `drop`), by their names before the steps: a column renamed
/// and then hashed is known by its first name.
pub fn hidden_before(steps: &[Arc<dyn Transform>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in steps.iter().rev() {
        // the names collected so far are those after this step: take them back through it
        if let Some((from, to)) = s.renames() {
            for n in names.iter_mut().filter(|n| **n == to) {
                n.clone_from(&from);
            }
        }
        for h in s.hides() {
            if !names.contains(&h) {
                names.push(h);
            }
        }
    }
    names
}

/// The schema after `steps`, in order.
pub fn output_schema(steps: &[Arc<dyn Transform>], mut schema: SchemaRef) -> Result<SchemaRef> {
    for s in steps {
        schema = s
            .output_schema(&schema)
            .map_err(|e| e.with("transform", s.describe()))?;
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;

    fn cast(column: &str, to: &str) -> Arc<dyn Transform> {
        TransformConfig::Cast {
            column: column.into(),
            to: to.into(),
            on_error: OnError::Fail,
        }
        .build()
        .unwrap()
    }

    /// Rows with `id` 0 to `n - 1` and a text `qty` made from each id.
    fn ids_and_qty(n: i64, qty: impl Fn(i64) -> Option<String>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("qty", true),
        ]));
        let ids: Vec<i64> = (0..n).collect();
        let qty: Vec<Option<String>> = ids.iter().map(|&i| qty(i)).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from(ids)),
                Arc::new(arrow_array::StringArray::from(qty)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn sparing_sets_aside_only_the_rows_that_do_not_convert() {
        let b = ids_and_qty(100, |i| match i {
            7 => Some("seven".to_string()),
            63 => Some("1e999x".to_string()),
            50 => None,
            i => Some(i.to_string()),
        });
        let steps = vec![cast("qty", "int64")];
        // strict: the batch fails, naming column and value
        let e = apply_all(&steps, b.clone()).unwrap_err();
        assert_eq!(e.context_value("column"), Some("qty"));
        assert!(e.to_string().contains("`seven`"), "{e}");
        // sparing: rows 7 and 63 set aside with their original values, 98 rows go on
        let (out, spared) = apply_all_sparing(&steps, b).unwrap();
        assert_eq!(out.num_rows(), 98);
        let rows: Vec<Option<usize>> = spared.iter().map(|s| s.row).collect();
        assert_eq!(rows, vec![Some(7), Some(63)]);
        assert_eq!(spared[0].record["qty"], "seven");
        assert_eq!(spared[0].record["id"], 7);
        assert_eq!(spared[0].column.as_deref(), Some("qty"));
        assert_eq!(spared[0].step, "cast(qty, int64)");
        assert!(spared[1].error.to_string().contains("1e999x"));
        let got = out
            .column(1)
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(got.value(7), 8); // row 7 is gone
        assert!(got.is_null(49)); // row 50 (NULL) kept, now at 49
    }

    /// `steps` on [`batch`] fail at the phone that does not convert, naming `step` and not
    /// the value, strictly and sparing; the one spared row shows `email` as given and the
    /// phone protected. Returns how many rows went on.
    fn phone_stays_hidden(steps: &[Arc<dyn Transform>], step: &str, email: &str) -> usize {
        let e = apply_all(steps, batch()).unwrap_err();
        assert!(!e.to_string().contains("7946"), "{e}");
        assert!(e.to_string().contains(step), "{e}");
        let (out, spared) = apply_all_sparing(steps, batch()).unwrap();
        assert_eq!(spared.len(), 1);
        assert_eq!(spared[0].record["phone"], "[protected]");
        assert_eq!(spared[0].record["email"], email);
        assert!(!spared[0].error.to_string().contains("7946"));
        out.num_rows()
    }

    #[test]
    fn values_of_protected_columns_never_show_in_errors_or_spared_rows() {
        let key = Secret::new("0123456789abcdef0123");
        let steps = vec![
            cast("phone", "int64"),
            TransformConfig::Hash {
                column: "phone".into(),
                key,
            }
            .build()
            .unwrap(),
        ];
        let went_on = phone_stays_hidden(&steps, "hash(phone)", "ada@example.com");
        assert_eq!(went_on, 1);
    }

    #[test]
    fn protection_follows_a_column_through_renames() {
        let key = Secret::new("0123456789abcdef0123");
        let rename = |from: &str, to: &str| {
            TransformConfig::Rename {
                from: from.into(),
                to: to.into(),
            }
            .build()
            .unwrap()
        };
        let steps = vec![
            cast("phone", "int64"),
            rename("phone", "tel"),
            TransformConfig::Hash {
                column: "tel".into(),
                key,
            }
            .build()
            .unwrap(),
            rename("email", "mail"),
            TransformConfig::Drop {
                columns: vec!["mail".into()],
            }
            .build()
            .unwrap(),
        ];
        let mut hidden = hidden_before(&steps);
        hidden.sort();
        assert_eq!(hidden, ["email", "phone"]);
        assert_eq!(hidden_before(&steps[3..]), ["email"]);
        // the value that does not convert, in a column hashed after a rename, is not shown
        phone_stays_hidden(&steps, "hash(tel)", "[protected]");
    }

    #[test]
    fn rows_are_tracked_through_a_filter() {
        let b = ids_and_qty(10, |i| {
            Some(if i == 7 {
                "seven".into()
            } else {
                i.to_string()
            })
        });
        let filter = TransformConfig::Filter {
            expr: "id % 3 != 0".into(),
        }
        .build()
        .unwrap();
        let steps = vec![filter.clone(), cast("qty", "int64"), filter];
        let t = apply_all_tracked(&steps, b.clone()).unwrap();
        // 0, 3, 6, 9 filtered, 7 does not convert: the spared row keeps its position
        let rows: Vec<Option<usize>> = t.spared.iter().map(|s| s.row).collect();
        assert_eq!(rows, vec![Some(7)]);
        assert_eq!(t.origin, Some(vec![1, 2, 4, 5, 8]));
        let ids = t
            .batch
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(ids.values().to_vec(), [1, 2, 4, 5, 8]);
        // the filter alone
        let t = apply_all_tracked(&steps[2..], b).unwrap();
        assert_eq!(t.origin, Some(vec![1, 2, 4, 5, 7, 8]));
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("email", true),
            FerryType::String.field("phone", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from(vec![1, 2])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("ada@example.com"),
                    None,
                ])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("+44 20 7946 0958"),
                    Some("12"),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn hash_is_keyed_and_deterministic() {
        let t = TransformConfig::Hash {
            column: "email".into(),
            key: Secret::new("a-long-enough-hash-key"),
        }
        .build()
        .unwrap();
        let a = t.apply(batch()).unwrap();
        let b = t.apply(batch()).unwrap();
        let col = a.column(1).as_string::<i32>();
        assert_eq!(col.value(0).len(), 64);
        assert!(col.is_null(1));
        assert_eq!(col.value(0), b.column(1).as_string::<i32>().value(0));
        let other = TransformConfig::Hash {
            column: "email".into(),
            key: Secret::new("another-long-hash-key"),
        }
        .build()
        .unwrap();
        assert_ne!(
            other
                .apply(batch())
                .unwrap()
                .column(1)
                .as_string::<i32>()
                .value(0),
            col.value(0)
        );
        assert!(!format!("{:?}", a).contains("ada@example.com"));
    }

    #[test]
    fn encrypt_round_trips_and_binds_column() {
        let key = B64.encode([9u8; 32]);
        let t = TransformConfig::Encrypt {
            column: "email".into(),
            key: Secret::new(key.clone()),
        }
        .build()
        .unwrap();
        let out = t.apply(batch()).unwrap();
        let v = out.column(1).as_string::<i32>().value(0).to_string();
        assert!(!v.contains("ada"));
        assert_eq!(decrypt_field(&key, "email", &v).unwrap(), "ada@example.com");
        assert!(decrypt_field(&key, "phone", &v).is_err());
        assert!(decrypt_field(&B64.encode([8u8; 32]), "email", &v).is_err());
    }

    #[test]
    fn mask_and_drop() {
        let m = TransformConfig::Mask {
            column: "phone".into(),
            keep_last: 4,
        }
        .build()
        .unwrap();
        let out = m.apply(batch()).unwrap();
        assert_eq!(
            out.column(2).as_string::<i32>().value(0),
            "************0958"
        );
        assert_eq!(out.column(2).as_string::<i32>().value(1), "12");
        let d = TransformConfig::Drop {
            columns: vec!["phone".into()],
        }
        .build()
        .unwrap();
        assert_eq!(d.apply(batch()).unwrap().num_columns(), 2);
        let e = TransformConfig::Drop {
            columns: vec!["phnoe".into()],
        }
        .build()
        .unwrap()
        .output_schema(&batch().schema())
        .unwrap_err();
        assert!(e.to_string().contains("did you mean `phone`"), "{e}");
    }
}
