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

use crate::types::FerryType;
use crate::values::write_text;
use crate::{Error, ErrorKind, Result, Secret};

/// One step applied to every batch of a stream.
pub trait Transform: Send + Sync {
    /// A short description for plans and errors (`hash(email)`).
    fn describe(&self) -> String;
    /// The schema of the batches this step outputs, given the input schema.
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef>;
    /// Rewrites one batch (its schema is the input schema given to `output_schema`).
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch>;
}

/// A transform as written in `sync.toml` (`transforms = [{ type = "hash", column = "email", key = "${secret:k}" }]`).
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
}

fn default_keep() -> usize {
    4
}

impl TransformConfig {
    /// Builds the transform, checking keys (no I/O).
    pub fn build(&self) -> Result<Arc<dyn Transform>> {
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
        })
    }
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
        if let Some(best) = crate::config::nearest(column, names.iter().copied()) {
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
                    out.append_value(hex(tag.as_ref()));
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
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Decrypts a value written by the `encrypt` transform for `column` with `key` (32 bytes, base64).
pub fn decrypt_field(key_b64: &str, column: &str, value: &str) -> Result<String> {
    let key = B64
        .decode(key_b64.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| Error::config("the key must be 32 bytes, base64"))?;
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes"));
    let data = B64
        .decode(value.trim())
        .map_err(|_| Error::data("the value is not base64"))?;
    if data.len() < NONCE_LEN + 16 {
        return Err(Error::data(
            "the value is too short to be an encrypted field",
        ));
    }
    let (nonce, sealed) = data.split_at(NONCE_LEN);
    let mut sealed = sealed.to_vec();
    let plain = k
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).expect("12 bytes"),
            Aad::from(column.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| {
            Error::new(
                ErrorKind::AuthFailed,
                "cannot decrypt: wrong key or column, or the value was changed",
            )
        })?;
    String::from_utf8(plain.to_vec()).map_err(|_| Error::data("the decrypted value is not UTF-8"))
}

/// Applies `steps` in order.
pub fn apply_all(steps: &[Arc<dyn Transform>], mut batch: RecordBatch) -> Result<RecordBatch> {
    for s in steps {
        batch = s
            .apply(batch)
            .map_err(|e| e.with("transform", s.describe()))?;
    }
    Ok(batch)
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
