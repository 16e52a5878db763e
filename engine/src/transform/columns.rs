//! Column transforms: rename, select, cast, trim/lowercase/uppercase, default,
//! parse_timestamp, flatten and metadata. Each computes its exact output schema from the
//! input schema (so every mistake is a config error before the run) and rewrites batches
//! column by column.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BooleanArray, RecordBatch, Scalar, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{Field, Schema, SchemaRef};
use chrono::format::{Fixed, Item, Numeric, Parsed, StrftimeItems};
use chrono::{FixedOffset, TimeZone};

use super::{
    column_index, ensure_free, fields_of, parse_type, schema_like, type_at, OnError, RunInfo,
    Transform,
};
use ferry_core::types::{FerryType, CURSOR_META, PRIMARY_KEY_META};
use ferry_core::values::{preview, to_json, write_text, ColumnBuilder};
use ferry_core::{Error, Result};

/// The column `_ferry_synced_at` of the `metadata` transform.
pub(super) const SYNCED_AT: &str = "_ferry_synced_at";
/// The column `_ferry_run_id` of the `metadata` transform.
pub(super) const RUN_ID: &str = "_ferry_run_id";

/// A batch with `schema` and `columns`, as a Ferry error when they disagree.
fn rebuild(schema: SchemaRef, columns: Vec<ArrayRef>, what: &str) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::internal(format!("{what}: the rewritten batch is inconsistent: {e}")))
}

/// The error (or the NULL) for a value that does not convert.
fn bad_value(what: &str, column: &str, value: &str, why: &str) -> Error {
    Error::data(format!(
        "{what}: column `{column}`: {why}: `{}`",
        preview(value)
    ))
    .with("column", column)
    .with(
        "hint",
        "set `on_error = \"null\"` on the transform to write NULL instead, or `on_bad_record = \"quarantine\"` on the stream to set the row aside",
    )
}

// ---------------------------------------------------------------- rename

struct Rename {
    from: String,
    to: String,
}

pub(super) fn rename(from: &str, to: &str) -> Result<Arc<dyn Transform>> {
    if to.trim().is_empty() {
        return Err(Error::config(format!(
            "rename({from}): the new name is empty"
        )));
    }
    Ok(Arc::new(Rename {
        from: from.into(),
        to: to.into(),
    }))
}

impl Transform for Rename {
    fn describe(&self) -> String {
        format!("rename({}, {})", self.from, self.to)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let what = self.describe();
        let i = column_index(input, &self.from, &what)?;
        if self.from != self.to {
            ensure_free(input, &self.to, &what)?;
        }
        let mut fields = fields_of(input);
        fields[i] = fields[i].clone().with_name(self.to.clone());
        // keep the primary key and cursor metadata pointing at the column
        let mut meta = input.metadata().clone();
        if let Some(pk) = meta.get(PRIMARY_KEY_META) {
            if let Ok(mut cols) = serde_json::from_str::<Vec<String>>(pk) {
                for c in cols.iter_mut().filter(|c| **c == self.from) {
                    c.clone_from(&self.to);
                }
                meta.insert(
                    PRIMARY_KEY_META,
                    serde_json::to_string(&cols).expect("strings serialize"),
                );
            }
        }
        if meta.get(CURSOR_META).map(String::as_str) == Some(self.from.as_str()) {
            meta.insert(CURSOR_META, self.to.clone());
        }
        Ok(Arc::new(Schema::new_with_metadata(fields, meta)))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = self.output_schema(batch.schema_ref())?;
        rebuild(schema, batch.columns().to_vec(), &self.describe())
    }

    fn renames(&self) -> Option<(String, String)> {
        Some((self.from.clone(), self.to.clone()))
    }
}

// ---------------------------------------------------------------- select

struct Select(Vec<String>);

pub(super) fn select(columns: &[String]) -> Result<Arc<dyn Transform>> {
    let what = format!("select({})", columns.join(", "));
    if columns.is_empty() {
        return Err(Error::config(format!("{what}: no columns listed")));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if !seen.insert(c) {
            return Err(Error::config(format!("{what}: `{c}` is listed twice")));
        }
    }
    Ok(Arc::new(Select(columns.to_vec())))
}

impl Select {
    fn indexes(&self, schema: &Schema) -> Result<Vec<usize>> {
        let what = self.describe();
        self.0
            .iter()
            .map(|c| column_index(schema, c, &what))
            .collect()
    }
}

impl Transform for Select {
    fn describe(&self) -> String {
        format!("select({})", self.0.join(", "))
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let idx = self.indexes(input)?;
        Ok(Arc::new(input.project(&idx)?))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let idx = self.indexes(batch.schema_ref())?;
        Ok(batch.project(&idx)?)
    }
}

// ---------------------------------------------------------------- cast

struct Cast {
    column: String,
    to: FerryType,
    on_error: OnError,
}

/// How a cast is done.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    /// Same type: nothing to do.
    Same,
    /// json → string: the text stays, the tag goes.
    Relabel,
    /// Text parsed by the same code every text source uses (`values`).
    FromText,
    /// The value's text form (`values::write_text`).
    ToText,
    /// The value's JSON form (`values::to_json`).
    ToJson,
    /// An Arrow cast kernel (numbers, bools, dates and timestamps among themselves).
    Kernel,
}

fn route(from: FerryType, to: FerryType) -> Option<Route> {
    use FerryType as T;
    let numeric = |t: T| matches!(t, T::Int64 | T::Float64 | T::Decimal { .. });
    Some(match (from, to) {
        _ if from == to => Route::Same,
        (T::Json, T::String) => Route::Relabel,
        (T::String | T::Json, _) => Route::FromText,
        (_, T::String) => Route::ToText,
        (_, T::Json) => Route::ToJson,
        (a, b) if numeric(a) && numeric(b) => Route::Kernel,
        (T::Bool, T::Int64 | T::Float64) | (T::Int64 | T::Float64, T::Bool) => Route::Kernel,
        (T::Date, T::Timestamp) | (T::Timestamp, T::Date) => Route::Kernel,
        _ => return None,
    })
}

pub(super) fn cast(column: &str, to: &str, on_error: OnError) -> Result<Arc<dyn Transform>> {
    let to = parse_type(to, &format!("cast({column})"))?;
    Ok(Arc::new(Cast {
        column: column.into(),
        to,
        on_error,
    }))
}

impl Cast {
    fn plan(&self, schema: &Schema) -> Result<(usize, FerryType, Route)> {
        let what = self.describe();
        let i = column_index(schema, &self.column, &what)?;
        let from = type_at(schema, i);
        let r = route(from, self.to).ok_or_else(|| {
            Error::config(format!(
                "{what}: cannot cast {from} to {}: casts go between numbers (int64, float64, decimal), \
                 bool and numbers, date and timestamp, and from or to string/json",
                self.to
            ))
        })?;
        Ok((i, from, r))
    }

    /// Handles row `r`, whose value did not convert: NULL, or the error.
    fn failed(&self, col: &dyn Array, from: FerryType, r: usize, why: &str) -> Result<()> {
        match self.on_error {
            OnError::Null => Ok(()),
            OnError::Fail => {
                let mut text = String::new();
                write_text(col, from, r, &mut text);
                Err(bad_value(
                    &self.describe(),
                    &self.column,
                    &text,
                    &format!("cannot cast to {} ({why})", self.to),
                ))
            }
        }
    }
}

impl Transform for Cast {
    fn describe(&self) -> String {
        format!("cast({}, {})", self.column, self.to)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let (i, _, _) = self.plan(input)?;
        let mut fields = fields_of(input);
        let nullable = fields[i].is_nullable() || self.on_error == OnError::Null;
        fields[i] = self.to.field(self.column.clone(), nullable);
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let (i, from, r) = self.plan(&schema)?;
        let out_schema = self.output_schema(&schema)?;
        let col = batch.column(i).as_ref();
        let n = col.len();
        let new: ArrayRef = match r {
            Route::Same | Route::Relabel => batch.column(i).clone(),
            Route::FromText => {
                let strings = col.as_string::<i32>();
                let mut b = ColumnBuilder::new(self.to, n);
                for r in 0..n {
                    if strings.is_null(r) {
                        b.append_null();
                        continue;
                    }
                    if let Err(why) = b.append_text(strings.value(r)) {
                        self.failed(col, from, r, &why)?;
                        b.append_null();
                    }
                }
                b.finish()
            }
            Route::ToText | Route::ToJson => {
                let mut b = StringBuilder::with_capacity(n, n * 12);
                let mut text = String::new();
                for r in 0..n {
                    text.clear();
                    if col.is_null(r) {
                        b.append_null();
                    } else if self.to == FerryType::Json {
                        b.append_value(to_json(col, from, r).to_string());
                    } else {
                        write_text(col, from, r, &mut text);
                        b.append_value(&text);
                    }
                }
                Arc::new(b.finish())
            }
            Route::Kernel => {
                let opts = arrow_cast::CastOptions {
                    safe: true,
                    ..Default::default()
                };
                let out = arrow_cast::cast_with_options(col, &self.to.data_type(), &opts)?;
                if out.null_count() > col.null_count() {
                    for r in 0..n {
                        if col.is_valid(r) && out.is_null(r) {
                            self.failed(col, from, r, "out of range or not representable")?;
                        }
                    }
                }
                out
            }
        };
        let mut cols = batch.columns().to_vec();
        cols[i] = new;
        rebuild(out_schema, cols, &self.describe())
    }
}

// ---------------------------------------------------------------- trim / lowercase / uppercase

/// A per-value text rewrite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TextOp {
    Trim,
    Lower,
    Upper,
}

struct Text {
    columns: Vec<String>,
    op: TextOp,
}

pub(super) fn text(columns: &[String], op: TextOp) -> Result<Arc<dyn Transform>> {
    let t = Text {
        columns: columns.to_vec(),
        op,
    };
    if columns.is_empty() {
        return Err(Error::config(format!(
            "{}: no columns listed",
            t.describe()
        )));
    }
    Ok(Arc::new(t))
}

/// Whether any byte of `data` satisfies `f`, in blocks without an early exit inside a
/// block, which the compiler turns into vector instructions (an early exit per byte does
/// not vectorize and costs several times more).
fn any_byte(data: &[u8], f: impl Fn(u8) -> bool) -> bool {
    data.chunks(256)
        .any(|block| block.iter().fold(false, |found, b| found | f(*b)))
}

impl Text {
    fn indexes(&self, schema: &Schema) -> Result<Vec<usize>> {
        let what = self.describe();
        self.columns
            .iter()
            .map(|c| {
                let i = column_index(schema, c, &what)?;
                let ty = type_at(schema, i);
                let ok = match self.op {
                    // trimming keeps a JSON document valid; changing its case may not (`TRUE`)
                    TextOp::Trim => matches!(ty, FerryType::String | FerryType::Json),
                    TextOp::Lower | TextOp::Upper => ty == FerryType::String,
                };
                if !ok {
                    return Err(Error::config(format!(
                        "{what}: column `{c}` is {ty}, not string (cast it first)"
                    )));
                }
                Ok(i)
            })
            .collect()
    }

    /// Whether the rewrite would leave `s` as it is (so clean columns are not copied).
    fn unchanged(&self, s: &str) -> bool {
        match self.op {
            TextOp::Trim => {
                !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace)
            }
            TextOp::Lower => {
                s.bytes().all(|b| !b.is_ascii_uppercase())
                    && (s.is_ascii() || s.to_lowercase() == s)
            }
            TextOp::Upper => {
                s.bytes().all(|b| !b.is_ascii_lowercase())
                    && (s.is_ascii() || s.to_uppercase() == s)
            }
        }
    }

    /// The rewritten column, or `None` when no value changes.
    fn rewrite(&self, col: &StringArray) -> Option<StringArray> {
        let n = col.len();
        // ASCII text keeps every byte's length when its case changes: rewrite the values
        // buffer in one pass and keep the offsets and NULLs
        if self.op != TextOp::Trim && col.value_data().is_ascii() {
            let data = col.value_data();
            let lower = self.op == TextOp::Lower;
            let changes = if lower {
                any_byte(data, |b| b.is_ascii_uppercase())
            } else {
                any_byte(data, |b| b.is_ascii_lowercase())
            };
            if !changes {
                return None;
            }
            let mut bytes = data.to_vec();
            if lower {
                bytes.make_ascii_lowercase();
            } else {
                bytes.make_ascii_uppercase();
            }
            return Some(StringArray::new(
                col.offsets().clone(),
                arrow_buffer::Buffer::from_vec(bytes),
                col.nulls().cloned(),
            ));
        }
        if !(0..n).any(|r| col.is_valid(r) && !self.unchanged(col.value(r))) {
            return None;
        }
        let mut b = StringBuilder::with_capacity(n, col.value_data().len());
        let mut buf = String::new();
        for r in 0..n {
            if col.is_null(r) {
                b.append_null();
                continue;
            }
            let s = col.value(r);
            match self.op {
                TextOp::Trim => b.append_value(s.trim()),
                TextOp::Lower if s.is_ascii() => {
                    buf.clear();
                    buf.push_str(s);
                    buf.make_ascii_lowercase();
                    b.append_value(&buf);
                }
                TextOp::Upper if s.is_ascii() => {
                    buf.clear();
                    buf.push_str(s);
                    buf.make_ascii_uppercase();
                    b.append_value(&buf);
                }
                TextOp::Lower => b.append_value(s.to_lowercase()),
                TextOp::Upper => b.append_value(s.to_uppercase()),
            }
        }
        Some(b.finish())
    }
}

impl Transform for Text {
    fn describe(&self) -> String {
        let verb = match self.op {
            TextOp::Trim => "trim",
            TextOp::Lower => "lowercase",
            TextOp::Upper => "uppercase",
        };
        format!("{verb}({})", self.columns.join(", "))
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        self.indexes(input)?;
        Ok(input.clone())
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let idx = self.indexes(batch.schema_ref())?;
        let mut cols = batch.columns().to_vec();
        for i in idx {
            if let Some(new) = self.rewrite(cols[i].as_string::<i32>()) {
                cols[i] = Arc::new(new);
            }
        }
        rebuild(batch.schema(), cols, &self.describe())
    }
}

// ---------------------------------------------------------------- default

struct DefaultValue {
    column: String,
    value: serde_json::Value,
}

pub(super) fn default(column: &str, value: &serde_json::Value) -> Result<Arc<dyn Transform>> {
    if value.is_null() {
        return Err(Error::config(format!(
            "default({column}): the value must not be null"
        )));
    }
    Ok(Arc::new(DefaultValue {
        column: column.into(),
        value: value.clone(),
    }))
}

impl DefaultValue {
    /// The column, and the value as a one-row array of its type.
    fn plan(&self, schema: &Schema) -> Result<(usize, ArrayRef)> {
        let what = self.describe();
        let i = column_index(schema, &self.column, &what)?;
        let ty = type_at(schema, i);
        let mut b = ColumnBuilder::new(ty, 1);
        b.append_json(&self.value).map_err(|why| {
            Error::config(format!(
                "{what}: the value {} does not fit column `{}` ({why})",
                self.value, self.column
            ))
        })?;
        Ok((i, b.finish()))
    }
}

impl Transform for DefaultValue {
    fn describe(&self) -> String {
        format!("default({})", self.column)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let (i, _) = self.plan(input)?;
        let mut fields = fields_of(input);
        fields[i] = fields[i].clone().with_nullable(false);
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let (i, value) = self.plan(&schema)?;
        let out_schema = self.output_schema(&schema)?;
        let mut cols = batch.columns().to_vec();
        if let Some(nulls) = cols[i].logical_nulls().filter(|n| n.null_count() > 0) {
            let valid = BooleanArray::new(nulls.inner().clone(), None);
            cols[i] = arrow_select::zip::zip(&valid, &cols[i], &Scalar::new(value))?;
        }
        rebuild(out_schema, cols, &self.describe())
    }
}

// ---------------------------------------------------------------- parse_timestamp

/// The zone local times are read in.
enum Zone {
    Fixed(FixedOffset),
    Iana(chrono_tz::Tz),
}

fn parse_zone(name: &str, what: &str) -> Result<Zone> {
    let t = name.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("0 is valid")));
    }
    if t.starts_with(['+', '-']) {
        return t.parse::<FixedOffset>().map(Zone::Fixed).map_err(|_| {
            Error::config(format!(
                "{what}: `{name}` is not an offset like `+02:00` or `-05:30`"
            ))
        });
    }
    t.parse::<chrono_tz::Tz>().map(Zone::Iana).map_err(|_| {
        let mut msg = format!(
            "{what}: unknown time zone `{name}` (an IANA name like `Europe/Paris`, an offset like `+02:00`, or `UTC`)"
        );
        let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
        if let Some(best) = ferry_core::suggest::nearest(t, names) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        Error::config(msg)
    })
}

struct ParseTimestamp {
    column: String,
    format: String,
    items: Vec<Item<'static>>,
    /// The format carries the offset (`%z`) or is epoch seconds (`%s`): the zone is not used.
    absolute: bool,
    zone: Zone,
    on_error: OnError,
}

pub(super) fn parse_timestamp(
    column: &str,
    format: &str,
    timezone: &str,
    on_error: OnError,
) -> Result<Arc<dyn Transform>> {
    let what = format!("parse_timestamp({column})");
    let items = StrftimeItems::new(format).parse_to_owned().map_err(|_| {
        Error::config(format!(
            "{what}: `{format}` is not a valid strftime format (see https://docs.rs/chrono/latest/chrono/format/strftime/)"
        ))
    })?;
    if items.iter().all(|i| {
        matches!(
            i,
            Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_)
        )
    }) {
        return Err(Error::config(format!(
            "{what}: the format `{format}` has no date or time fields"
        )));
    }
    let absolute = items.iter().any(|i| {
        matches!(
            i,
            Item::Fixed(
                Fixed::TimezoneOffset
                    | Fixed::TimezoneOffsetColon
                    | Fixed::TimezoneOffsetDoubleColon
                    | Fixed::TimezoneOffsetTripleColon
                    | Fixed::TimezoneOffsetColonZ
                    | Fixed::TimezoneOffsetZ
                    | Fixed::RFC2822
                    | Fixed::RFC3339
            ) | Item::Numeric(Numeric::Timestamp, _)
        )
    });
    let zone = parse_zone(timezone, &what)?;
    Ok(Arc::new(ParseTimestamp {
        column: column.into(),
        format: format.into(),
        items,
        absolute,
        zone,
        on_error,
    }))
}

impl ParseTimestamp {
    /// Microseconds since the epoch of `s`, or `None`.
    fn parse(&self, s: &str) -> Option<i64> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, s.trim(), self.items.iter()).ok()?;
        if self.absolute {
            if p.offset().is_some() {
                return p.to_datetime().ok().map(|t| t.timestamp_micros());
            }
            return p
                .to_naive_datetime_with_offset(0)
                .ok()
                .map(|t| t.and_utc().timestamp_micros());
        }
        let naive = match p.to_naive_datetime_with_offset(0) {
            Ok(t) => t,
            // a date-only format: midnight
            Err(_) if p.hour_div_12().is_none() && p.minute().is_none() => {
                p.to_naive_date().ok()?.and_hms_opt(0, 0, 0)?
            }
            Err(_) => return None,
        };
        let t = match &self.zone {
            Zone::Fixed(o) => o.from_local_datetime(&naive).single()?.timestamp_micros(),
            // a time repeated when clocks go back is its earlier instant; one skipped when
            // they go forward does not exist and does not parse
            Zone::Iana(z) => z.from_local_datetime(&naive).earliest()?.timestamp_micros(),
        };
        Some(t)
    }

    fn index(&self, schema: &Schema) -> Result<usize> {
        let what = self.describe();
        text_column(schema, &self.column, &what, &[FerryType::String], "string")
    }
}

impl Transform for ParseTimestamp {
    fn describe(&self) -> String {
        format!("parse_timestamp({})", self.column)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let i = self.index(input)?;
        let mut fields = fields_of(input);
        let nullable = fields[i].is_nullable() || self.on_error == OnError::Null;
        fields[i] = FerryType::Timestamp.field(self.column.clone(), nullable);
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let (i, out_schema, col) = text_input(&batch, self, |s| self.index(s))?;
        let mut out = Vec::with_capacity(col.len());
        for r in 0..col.len() {
            if col.is_null(r) {
                out.push(None);
                continue;
            }
            let v = self.parse(col.value(r));
            if v.is_none() && self.on_error == OnError::Fail {
                return Err(bad_value(
                    &self.describe(),
                    &self.column,
                    col.value(r),
                    &format!("does not match the format `{}`", self.format),
                ));
            }
            out.push(v);
        }
        let mut cols = batch.columns().to_vec();
        cols[i] = Arc::new(TimestampMicrosecondArray::from(out).with_timezone("UTC"));
        rebuild(out_schema, cols, &self.describe())
    }
}

/// The index of `column` in `schema` (for `what`), which must hold text: one of `types`,
/// named `want` in the error.
fn text_column(
    schema: &Schema,
    column: &str,
    what: &str,
    types: &[FerryType],
    want: &str,
) -> Result<usize> {
    let i = column_index(schema, column, what)?;
    let have = type_at(schema, i);
    if !types.contains(&have) {
        return Err(Error::config(format!(
            "{what}: column `{column}` is {have}, not {want}"
        )));
    }
    Ok(i)
}

/// Where `apply` of `t`, a transform of the one text column `index` finds, starts: the
/// column's index, `t`'s output schema and the column.
fn text_input<'a>(
    batch: &'a RecordBatch,
    t: &dyn Transform,
    index: impl FnOnce(&Schema) -> Result<usize>,
) -> Result<(usize, SchemaRef, &'a StringArray)> {
    let schema = batch.schema();
    let i = index(&schema)?;
    let out_schema = t.output_schema(&schema)?;
    Ok((i, out_schema, batch.column(i).as_string::<i32>()))
}

// ---------------------------------------------------------------- flatten

struct Flatten {
    column: String,
    prefix: String,
    fields: Vec<(String, FerryType)>,
    on_error: OnError,
}

pub(super) fn flatten(
    column: &str,
    prefix: Option<&str>,
    fields: &BTreeMap<String, String>,
    on_error: OnError,
) -> Result<Arc<dyn Transform>> {
    let what = format!("flatten({column})");
    if fields.is_empty() {
        return Err(Error::config(format!(
            "{what}: list the keys to extract in `fields = {{ key = \"type\" }}` (the output columns must be known before the run)"
        )));
    }
    let fields = fields
        .iter()
        .map(|(k, t)| Ok((k.clone(), parse_type(t, &what)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Flatten {
        column: column.into(),
        prefix: prefix.map(str::to_string).unwrap_or(format!("{column}_")),
        fields,
        on_error,
    }))
}

impl Flatten {
    fn index(&self, schema: &Schema) -> Result<usize> {
        let what = self.describe();
        text_column(
            schema,
            &self.column,
            &what,
            &[FerryType::Json, FerryType::String],
            "json",
        )
    }

    fn fail(&self, value: &str, why: &str) -> Result<()> {
        match self.on_error {
            OnError::Null => Ok(()),
            OnError::Fail => Err(bad_value(&self.describe(), &self.column, value, why)),
        }
    }
}

impl Transform for Flatten {
    fn describe(&self) -> String {
        format!("flatten({})", self.column)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let i = self.index(input)?;
        let mut fields: Vec<Field> = Vec::with_capacity(input.fields().len() + self.fields.len());
        for (k, f) in input.fields().iter().enumerate() {
            if k != i {
                fields.push(f.as_ref().clone());
                continue;
            }
            for (key, ty) in &self.fields {
                let name = format!("{}{key}", self.prefix);
                if name != self.column {
                    ensure_free(input, &name, &self.describe())?;
                }
                fields.push(ty.field(name, true));
            }
        }
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let (i, out_schema, col) = text_input(&batch, self, |s| self.index(s))?;
        let n = col.len();
        let mut builders: Vec<ColumnBuilder> = self
            .fields
            .iter()
            .map(|(_, ty)| ColumnBuilder::new(*ty, n))
            .collect();
        for r in 0..n {
            let object = if col.is_null(r) {
                None
            } else {
                match serde_json::from_str::<serde_json::Value>(col.value(r)) {
                    Ok(serde_json::Value::Object(m)) => Some(m),
                    Ok(serde_json::Value::Null) => None,
                    Ok(_) => {
                        self.fail(col.value(r), "not a JSON object")?;
                        None
                    }
                    Err(_) => {
                        self.fail(col.value(r), "not valid JSON")?;
                        None
                    }
                }
            };
            for ((key, ty), b) in self.fields.iter().zip(builders.iter_mut()) {
                match object.as_ref().and_then(|m| m.get(key)) {
                    None => b.append_null(),
                    Some(v) => {
                        if let Err(why) = b.append_json(v) {
                            self.fail(&v.to_string(), &format!("key `{key}`: {why}"))
                                .map_err(|e| e.with("expected", ty))?;
                            if b.len() <= r {
                                b.append_null();
                            }
                        }
                    }
                }
            }
        }
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(out_schema.fields().len());
        for (k, c) in batch.columns().iter().enumerate() {
            if k == i {
                cols.extend(builders.iter_mut().map(ColumnBuilder::finish));
            } else {
                cols.push(c.clone());
            }
        }
        rebuild(out_schema, cols, &self.describe())
    }
}

// ---------------------------------------------------------------- metadata

struct Metadata {
    columns: Vec<String>,
    run_id: Option<String>,
    synced_at: i64,
}

pub(super) fn metadata(columns: &[String], run: &RunInfo) -> Result<Arc<dyn Transform>> {
    let what = format!("metadata({})", columns.join(", "));
    if columns.is_empty() {
        return Err(Error::config(format!(
            "{what}: list the columns: `{SYNCED_AT}`, `{RUN_ID}`"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if c != SYNCED_AT && c != RUN_ID {
            let mut msg =
                format!("{what}: unknown metadata column `{c}` (valid: {SYNCED_AT}, {RUN_ID})");
            if let Some(best) = ferry_core::suggest::nearest(c, [SYNCED_AT, RUN_ID]) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            return Err(Error::config(msg));
        }
        if !seen.insert(c) {
            return Err(Error::config(format!("{what}: `{c}` is listed twice")));
        }
        if c == RUN_ID && run.run_id.is_none() {
            return Err(Error::config(format!(
                "{what}: `{RUN_ID}` needs the run id, which this runtime does not give transforms \
                 (it must build them with `TransformConfig::build_for_run`)"
            )));
        }
    }
    Ok(Arc::new(Metadata {
        columns: columns.to_vec(),
        run_id: run.run_id.clone(),
        synced_at: run.synced_at.timestamp_micros(),
    }))
}

impl Transform for Metadata {
    fn describe(&self) -> String {
        format!("metadata({})", self.columns.join(", "))
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut fields = fields_of(input);
        for c in &self.columns {
            ensure_free(input, c, &self.describe())?;
            let ty = if c == SYNCED_AT {
                FerryType::Timestamp
            } else {
                FerryType::String
            };
            fields.push(ty.field(c.clone(), false));
        }
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let out_schema = self.output_schema(batch.schema_ref())?;
        let mut cols = batch.columns().to_vec();
        for c in &self.columns {
            if c == SYNCED_AT {
                cols.push(Arc::new(
                    TimestampMicrosecondArray::from_value(self.synced_at, n).with_timezone("UTC"),
                ));
            } else {
                let id = self.run_id.as_deref().unwrap_or_default();
                cols.push(Arc::new(StringArray::from_iter_values(
                    std::iter::repeat_n(id, n),
                )));
            }
        }
        rebuild(out_schema, cols, &self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::super::TransformConfig;
    use super::*;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::Int64Array;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("name", true),
            FerryType::String.field("amount", true),
            FerryType::Json.field("address", true),
            FerryType::String.field("seen", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("  Ada "), None, Some("Émile")])),
                Arc::new(StringArray::from(vec![Some("10.5"), Some("x"), None])),
                Arc::new(StringArray::from(vec![
                    Some(r#"{"city":"Paris","zip":75001,"extra":true}"#),
                    Some(r#"{"city":"Lyon"}"#),
                    None,
                ])),
                Arc::new(StringArray::from(vec![
                    Some("01/03/2024 10:30"),
                    Some("31/10/2021 02:30"),
                    Some("garbage"),
                ])),
            ],
        )
        .unwrap()
    }

    fn parse(toml_text: &str) -> TransformConfig {
        #[derive(serde::Deserialize)]
        struct W {
            t: TransformConfig,
        }
        toml::from_str::<W>(&format!("t = {toml_text}")).unwrap().t
    }

    fn run(toml_text: &str) -> Result<RecordBatch> {
        let t = parse(toml_text).build()?;
        let b = batch();
        let schema = t.output_schema(&b.schema())?;
        let out = t.apply(b)?;
        assert_eq!(
            out.schema(),
            schema,
            "{toml_text}: apply disagrees with output_schema"
        );
        Ok(out)
    }

    fn names(b: &RecordBatch) -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn rename_and_select() {
        let out = run(r#"{ type = "rename", from = "name", to = "full_name" }"#).unwrap();
        assert_eq!(
            names(&out),
            ["id", "full_name", "amount", "address", "seen"]
        );
        let e = run(r#"{ type = "rename", from = "name", to = "id" }"#).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        let e = run(r#"{ type = "rename", from = "nmae", to = "x" }"#).unwrap_err();
        assert!(e.to_string().contains("did you mean `name`"), "{e}");
        // keys follow the rename
        let t = parse(r#"{ type = "rename", from = "id", to = "key" }"#)
            .build()
            .unwrap();
        let keyed = ferry_core::types::with_keys(&batch().schema(), &["id".into()], Some("id"));
        let s = t.output_schema(&keyed).unwrap();
        assert_eq!(ferry_core::types::primary_key(&s), ["key"]);
        assert_eq!(ferry_core::types::cursor_field(&s).as_deref(), Some("key"));

        let out = run(r#"{ type = "select", columns = ["seen", "id"] }"#).unwrap();
        assert_eq!(names(&out), ["seen", "id"]);
        assert_eq!(out.num_rows(), 3);
        assert!(run(r#"{ type = "select", columns = ["id", "nope"] }"#).is_err());
        assert!(parse(r#"{ type = "select", columns = ["id", "id"] }"#)
            .build()
            .is_err());
    }

    #[test]
    fn cast_fails_naming_column_and_value_or_nulls() {
        let e = run(r#"{ type = "cast", column = "amount", to = "float64" }"#).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`amount`") && msg.contains("`x`"), "{msg}");
        assert_eq!(e.kind(), ferry_core::ErrorKind::DataInvalid);
        let out = run(r#"{ type = "cast", column = "amount", to = "float64", on_error = "null" }"#)
            .unwrap();
        let a = out.column(2).as_primitive::<Float64Type>();
        assert_eq!((a.value(0), a.is_null(1), a.is_null(2)), (10.5, true, true));
        assert!(out.schema().field(2).is_nullable());
        // numbers → text, text → decimal, int → float by kernel
        let out = run(r#"{ type = "cast", column = "id", to = "string" }"#).unwrap();
        assert_eq!(out.column(0).as_string::<i32>().value(2), "3");
        assert!(!out.schema().field(0).is_nullable());
        let out = run(r#"{ type = "cast", column = "id", to = "float64" }"#).unwrap();
        assert_eq!(out.column(0).as_primitive::<Float64Type>().value(1), 2.0);
        let out = run(r#"{ type = "cast", column = "id", to = "json" }"#).unwrap();
        assert!(ferry_core::types::is_json(out.schema().field(0)));
        // a kernel cast that overflows is caught per row
        let t = parse(r#"{ type = "cast", column = "id", to = "decimal(2,2)" }"#)
            .build()
            .unwrap();
        let e = t.apply(batch()).unwrap_err();
        assert!(e.to_string().contains("cannot cast to decimal(2,2)"), "{e}");
        // plan-time errors
        let e = run(r#"{ type = "cast", column = "id", to = "date" }"#).unwrap_err();
        assert!(e.to_string().contains("cannot cast int64 to date"), "{e}");
        assert!(parse(r#"{ type = "cast", column = "id", to = "integr" }"#)
            .build()
            .is_err());
    }

    #[test]
    fn trim_and_case() {
        let out = run(r#"{ type = "trim", columns = ["name"] }"#).unwrap();
        assert_eq!(out.column(1).as_string::<i32>().value(0), "Ada");
        // a column with nothing to change is passed on, not copied
        let b = batch();
        let t = parse(r#"{ type = "lowercase", columns = ["amount", "seen"] }"#)
            .build()
            .unwrap();
        let same = t.apply(b.clone()).unwrap();
        assert!(
            Arc::ptr_eq(same.column(2), b.column(2)) && Arc::ptr_eq(same.column(4), b.column(4))
        );
        // ASCII columns change case in one pass over the buffer, slices included
        let t = parse(r#"{ type = "uppercase", columns = ["seen"] }"#)
            .build()
            .unwrap();
        let sliced = t.apply(batch().slice(1, 2)).unwrap();
        let seen = sliced.column(4).as_string::<i32>();
        assert_eq!(
            (seen.len(), seen.value(0), seen.value(1)),
            (2, "31/10/2021 02:30", "GARBAGE")
        );
        let t = parse(r#"{ type = "uppercase", columns = ["amount"] }"#)
            .build()
            .unwrap();
        assert_eq!(
            t.apply(b).unwrap().column(2).as_string::<i32>().value(1),
            "X"
        );
        assert!(out.column(1).is_null(1));
        let out = run(r#"{ type = "uppercase", columns = ["name"] }"#).unwrap();
        assert_eq!(out.column(1).as_string::<i32>().value(2), "ÉMILE");
        let out = run(r#"{ type = "lowercase", columns = ["name", "seen"] }"#).unwrap();
        assert_eq!(out.column(1).as_string::<i32>().value(0), "  ada ");
        let e = run(r#"{ type = "lowercase", columns = ["id"] }"#).unwrap_err();
        assert!(e.to_string().contains("not string"), "{e}");
        let e = run(r#"{ type = "uppercase", columns = ["address"] }"#).unwrap_err();
        assert!(e.to_string().contains("not string"), "{e}");
        run(r#"{ type = "trim", columns = ["address"] }"#).unwrap();
    }

    #[test]
    fn default_fills_nulls_with_a_typed_value() {
        let out = run(r#"{ type = "default", column = "name", value = "unknown" }"#).unwrap();
        assert_eq!(out.column(1).as_string::<i32>().value(1), "unknown");
        assert_eq!(out.column(1).null_count(), 0);
        assert!(!out.schema().field(1).is_nullable());
        let t = parse(r#"{ type = "default", column = "id", value = "seven" }"#)
            .build()
            .unwrap();
        let e = t.output_schema(&batch().schema()).unwrap_err();
        assert!(e.to_string().contains("does not fit column `id`"), "{e}");
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid);
        // a number default on a float column
        let cast =
            parse(r#"{ type = "cast", column = "amount", to = "float64", on_error = "null" }"#)
                .build()
                .unwrap();
        let d = parse(r#"{ type = "default", column = "amount", value = 0 }"#)
            .build()
            .unwrap();
        let out = super::super::apply_all(&[cast, d], batch()).unwrap();
        let a = out.column(2).as_primitive::<Float64Type>();
        assert_eq!((a.value(0), a.value(1), a.value(2)), (10.5, 0.0, 0.0));
    }

    #[test]
    fn parse_timestamp_in_a_zone() {
        let e = run(r#"{ type = "parse_timestamp", column = "seen", format = "%d/%m/%Y %H:%M", timezone = "Europe/Paris" }"#).unwrap_err();
        assert!(e.to_string().contains("`garbage`"), "{e}");
        let out = run(r#"{ type = "parse_timestamp", column = "seen", format = "%d/%m/%Y %H:%M", timezone = "Europe/Paris", on_error = "null" }"#).unwrap();
        let ts = out.column(4).as_primitive::<TimestampMicrosecondType>();
        let text = |r| ferry_core::values::format_timestamp_micros(ts.value(r));
        assert_eq!(text(0), "2024-03-01T09:30:00Z"); // CET, +01:00
        assert_eq!(text(1), "2021-10-31T00:30:00Z"); // ambiguous: the earlier (CEST, +02:00)
        assert!(ts.is_null(2));
        assert_eq!(
            FerryType::of(out.schema().field(4)),
            Some(FerryType::Timestamp)
        );
        let out = run(r#"{ type = "parse_timestamp", column = "seen", format = "%d/%m/%Y %H:%M", timezone = "-05:00", on_error = "null" }"#).unwrap();
        let ts = out.column(4).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(
            ferry_core::values::format_timestamp_micros(ts.value(0)),
            "2024-03-01T15:30:00Z"
        );
        let e = parse(r#"{ type = "parse_timestamp", column = "seen", format = "%Y", timezone = "Europe/Pari" }"#)
            .build()
            .err()
            .unwrap();
        assert!(e.to_string().contains("did you mean `Europe/Paris`"), "{e}");
        assert!(
            parse(r#"{ type = "parse_timestamp", column = "seen", format = "%Q" }"#)
                .build()
                .is_err()
        );
        let e = run(r#"{ type = "parse_timestamp", column = "id", format = "%Y" }"#).unwrap_err();
        assert!(e.to_string().contains("not string"), "{e}");
    }

    #[test]
    fn date_only_format_is_midnight() {
        let t = parse_timestamp("d", "%Y-%m-%d", "+02:00", OnError::Fail).unwrap();
        let schema = Arc::new(Schema::new(vec![FerryType::String.field("d", true)]));
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["2024-05-01"]))],
        )
        .unwrap();
        let out = t.apply(b).unwrap();
        let v = out
            .column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0);
        assert_eq!(
            ferry_core::values::format_timestamp_micros(v),
            "2024-04-30T22:00:00Z"
        );
    }

    #[test]
    fn flatten_extracts_listed_keys_in_place() {
        let out = run(r#"{ type = "flatten", column = "address", fields = { zip = "int64", city = "string" } }"#).unwrap();
        assert_eq!(
            names(&out),
            [
                "id",
                "name",
                "amount",
                "address_city",
                "address_zip",
                "seen"
            ]
        );
        assert_eq!(out.column(3).as_string::<i32>().value(1), "Lyon");
        assert_eq!(out.column(4).as_primitive::<Int64Type>().value(0), 75001);
        assert!(out.column(4).is_null(1) && out.column(3).is_null(2));
        let out = run(r#"{ type = "flatten", column = "address", prefix = "", fields = { city = "string" } }"#).unwrap();
        assert_eq!(names(&out)[3], "city");
        let e = run(
            r#"{ type = "flatten", column = "address", prefix = "", fields = { city = "int64" } }"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("key `city`"), "{e}");
        let out = run(r#"{ type = "flatten", column = "address", prefix = "", fields = { city = "int64" }, on_error = "null" }"#).unwrap();
        assert_eq!(out.column(3).null_count(), 3);
        let e = run(
            r#"{ type = "flatten", column = "address", prefix = "", fields = { id = "int64" } }"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(
            parse(r#"{ type = "flatten", column = "address", fields = {} }"#)
                .build()
                .is_err()
        );
    }

    #[test]
    fn metadata_is_constant_per_run() {
        let t = parse(r#"{ type = "metadata", columns = ["_ferry_synced_at", "_ferry_run_id"] }"#)
            .build_for_run("run-1")
            .unwrap();
        let s = t.output_schema(&batch().schema()).unwrap();
        let out = t.apply(batch()).unwrap();
        assert_eq!(out.schema(), s);
        assert_eq!(names(&out)[5..], ["_ferry_synced_at", "_ferry_run_id"]);
        assert_eq!(out.column(6).as_string::<i32>().value(2), "run-1");
        let ts = out.column(5).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), ts.value(2));
        assert!(!s.field(5).is_nullable());
        // without a run id only the time is available
        let e = parse(r#"{ type = "metadata", columns = ["_ferry_run_id"] }"#)
            .build()
            .err()
            .unwrap();
        assert!(e.to_string().contains("build_for_run"), "{e}");
        parse(r#"{ type = "metadata", columns = ["_ferry_synced_at"] }"#)
            .build()
            .unwrap();
        let e = parse(r#"{ type = "metadata", columns = ["_ferry_run"] }"#)
            .build()
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("did you mean `_ferry_run_id`"),
            "{e}"
        );
    }
}
