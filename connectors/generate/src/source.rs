//! The `generate` source: validates the config into per-stream plans, and reads by
//! building batches lazily, one after another, as the runtime pulls them.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::{Schema, SchemaRef};
use ferry_core::types::with_keys;
use ferry_core::{
    Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode, ReadRequest, Result,
    Source, StreamInfo,
};
use futures::StreamExt;

use crate::config::{GenerateColumn, GenerateConfig, GenerateStream, Kind, Preset};
use crate::data::{self, Bounds, ColumnGen, MAX_ROWS};

/// A source of deterministic fake rows. Build it with [`GenerateSource::new`], which
/// checks the whole config up front, so `check` has nothing left to fail on.
#[derive(Debug, Clone)]
pub struct GenerateSource {
    streams: Vec<StreamPlan>,
}

#[derive(Debug, Clone)]
struct StreamPlan {
    name: String,
    rows: u64,
    schema: SchemaRef,
    columns: Arc<[ColumnGen]>,
    /// `id`, then every other column whose values grow with id.
    cursors: Vec<String>,
}

impl GenerateSource {
    /// Validates `config` (no I/O) and prepares every stream. Errors name the stream and
    /// column at fault.
    pub fn new(config: GenerateConfig) -> Result<Self> {
        if config.streams.is_empty() {
            return Err(Error::config(
                "`streams` is empty: add one, e.g. streams = [{ name = \"users\", preset = \"users\", rows = 1000 }]",
            ));
        }
        let mut names = HashSet::new();
        let mut streams = Vec::new();
        for s in &config.streams {
            let plan = plan_stream(config.seed, s)?;
            if !names.insert(plan.name.clone()) {
                return Err(Error::config(format!(
                    "stream `{}` is listed twice in `streams`; give one of them another `name`",
                    plan.name
                )));
            }
            streams.push(plan);
        }
        Ok(GenerateSource { streams })
    }

    fn stream(&self, name: &str) -> Result<&StreamPlan> {
        self.streams.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
            let mut msg = format!("stream `{name}` is not generated");
            if let Some(best) = ferry_core::suggest::nearest(name, names.iter().copied()) {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            msg.push_str(&format!(" (streams: {})", names.join(", ")));
            Error::new(ErrorKind::NotFound, msg)
        })
    }
}

fn plan_stream(seed: u64, s: &GenerateStream) -> Result<StreamPlan> {
    let name = s.stream_name().ok_or_else(|| {
        Error::config("a stream has neither `name` nor `preset`: give it a `name` (and `columns`) or a `preset`")
    })?;
    if name.trim().is_empty() {
        return Err(Error::config("a stream has an empty `name`"));
    }
    if s.preset.is_none() && s.columns.is_empty() {
        let presets: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        return Err(Error::config(format!(
            "stream `{name}` has no `preset` and no `columns`: add `preset = \"users\"` ({}) or a list of columns",
            presets.join(", ")
        )));
    }
    if s.rows > MAX_ROWS {
        return Err(Error::config(format!(
            "stream `{name}`: `rows` is {}, at most {MAX_ROWS} are supported",
            s.rows
        )));
    }

    // The preset's columns, then the configured ones replacing or extending them.
    let mut specs: Vec<GenerateColumn> = s.preset.map(Preset::columns).unwrap_or_default();
    let mut listed = HashSet::new();
    for c in &s.columns {
        if !listed.insert(c.name.as_str()) {
            return Err(Error::config(format!(
                "stream `{name}`: column `{}` is listed twice",
                c.name
            )));
        }
        match specs.iter().position(|x| x.name == c.name) {
            Some(i) => specs[i] = c.clone(),
            None => specs.push(c.clone()),
        }
    }
    if !specs.iter().any(|c| c.name == "id") {
        specs.insert(0, GenerateColumn::new("id", Kind::Sequence));
    }

    let person = data::key_of(seed, &[&name, "\u{0}person"]);
    let order = data::key_of(seed, &[&name, "\u{0}order"]);
    let mut fields = Vec::with_capacity(specs.len());
    let mut columns = Vec::with_capacity(specs.len());
    let mut cursors = vec!["id".to_string()];
    for spec in &specs {
        let col = plan_column(
            &name,
            spec,
            data::key_of(seed, &[&name, &spec.name]),
            person,
            order,
        )?;
        if col.kind.is_monotonic() && col.nulls_ppm == 0 && spec.name != "id" {
            cursors.push(spec.name.clone());
        }
        fields.push(col.ty.field(&spec.name, col.nulls_ppm > 0));
        columns.push(col);
    }
    let schema = with_keys(&Schema::new(fields), &["id".to_string()], Some("id"));
    Ok(StreamPlan {
        name,
        rows: s.rows,
        schema,
        columns: columns.into(),
        cursors,
    })
}

fn plan_column(
    stream: &str,
    c: &GenerateColumn,
    key: u64,
    person: u64,
    order: u64,
) -> Result<ColumnGen> {
    let err = |msg: String| Error::config(format!("stream `{stream}`, column `{}`: {msg}", c.name));
    if c.name.trim().is_empty() {
        return Err(Error::config(format!(
            "stream `{stream}`: a column has an empty `name`"
        )));
    }
    if !(0.0..=1.0).contains(&c.null_fraction) {
        return Err(err(format!(
            "`null_fraction` is {}, it must be between 0.0 and 1.0",
            c.null_fraction
        )));
    }
    let (kind, ty) = if c.name == "id" {
        let ok = matches!(c.kind, None | Some(Kind::Sequence))
            && matches!(c.ty, None | Some(FerryType::Int64))
            && c.null_fraction == 0.0
            && c.min.is_none()
            && c.max.is_none();
        if !ok {
            return Err(err(
                "`id` is always the row number 1..=rows (int64, never NULL); drop its other settings or name this column differently"
                    .into(),
            ));
        }
        (Kind::Sequence, FerryType::Int64)
    } else {
        match (c.kind, c.ty) {
            (Some(k), Some(t)) if !k.accepts(t) => {
                return Err(err(format!(
                    "kind `{}` makes {} values, not {t}",
                    k.name(),
                    k.default_type()
                )));
            }
            (Some(k), Some(t)) => (k, t),
            (Some(k), None) => (k, k.default_type()),
            (None, Some(t)) => (Kind::for_type(t), t),
            (None, None) => {
                return Err(err(
                    "give it a `kind` (e.g. \"email\") or a `type` (e.g. \"int64\")".into(),
                ))
            }
        }
    };
    if !kind.has_range() && (c.min.is_some() || c.max.is_some()) {
        return Err(err(format!(
            "`min` and `max` apply to kinds int, float and decimal, not `{}`",
            kind.name()
        )));
    }
    let bounds = match kind {
        Kind::Int => {
            let (lo, hi) = (c.min.unwrap_or(0.0), c.max.unwrap_or(1000.0));
            for v in [lo, hi] {
                if v.fract() != 0.0 || !(-9.2e18..=9.2e18).contains(&v) {
                    return Err(err(format!(
                        "`min` and `max` of an int column must be whole int64 numbers, not {v}"
                    )));
                }
            }
            Bounds::Int(lo as i64, hi as i64)
        }
        Kind::Float => {
            let (lo, hi) = (c.min.unwrap_or(1.0), c.max.unwrap_or(1000.0));
            if !lo.is_finite() || !hi.is_finite() {
                return Err(err("`min` and `max` must be finite numbers".into()));
            }
            Bounds::Float(lo, hi)
        }
        Kind::Decimal => {
            let FerryType::Decimal { precision, scale } = ty else {
                unreachable!("decimal kinds have decimal types")
            };
            let unit = 10f64.powi(scale as i32);
            let limit = 10i128.pow(precision as u32);
            let (lo, hi) = (c.min.unwrap_or(0.0), c.max.unwrap_or(1000.0));
            let scaled = |v: f64| -> Result<i128> {
                let x = (v * unit).round();
                if !x.is_finite() || x.abs() >= limit as f64 {
                    return Err(err(format!(
                        "{v} does not fit {ty}; widen the type or narrow `min`/`max`"
                    )));
                }
                Ok(x as i128)
            };
            Bounds::Decimal(scaled(lo)?, scaled(hi)?)
        }
        Kind::OrderTotal => {
            let FerryType::Decimal { precision, scale } = ty else {
                unreachable!("decimal kinds have decimal types")
            };
            if data::rescale_cents(data::max_order_total_cents(), scale)
                >= 10i128.pow(precision as u32)
            {
                return Err(err(format!(
                    "order totals reach {:.2}, which does not fit {ty}; use decimal(12,2)",
                    data::max_order_total_cents() as f64 / 100.0
                )));
            }
            Bounds::None
        }
        _ => Bounds::None,
    };
    match bounds {
        Bounds::Int(lo, hi) if lo > hi => {
            return Err(err(format!("`min` ({lo}) is above `max` ({hi})")))
        }
        Bounds::Float(lo, hi) if lo > hi => {
            return Err(err(format!("`min` ({lo}) is above `max` ({hi})")))
        }
        Bounds::Decimal(lo, hi) if lo > hi => return Err(err("`min` is above `max`".into())),
        _ => {}
    }
    Ok(ColumnGen {
        kind,
        ty,
        key,
        person,
        order,
        nulls_ppm: (c.null_fraction * 1_000_000.0).round() as u32,
        bounds,
    })
}

/// Where an incremental read resumes: after the `id` in the saved state.
fn resume_after(stream: &str, state: Option<&serde_json::Value>) -> Result<u64> {
    let Some(state) = state.filter(|s| !s.is_null()) else {
        return Ok(0);
    };
    let id = &state["id"];
    id.as_u64()
        .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "the saved state of stream `{stream}` ({state}) has no numeric `id`; \
                 reset it with `ferry state reset --stream {stream}`"
                ),
            )
        })
}

#[async_trait]
impl Source for GenerateSource {
    /// Nothing to connect to: the config was validated when the source was built.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        Ok(Catalog::new(
            self.streams
                .iter()
                .map(|s| {
                    StreamInfo::new(&s.name, s.schema.clone())
                        .with_primary_key(["id"])
                        .incremental(s.cursors.iter().cloned())
                })
                .collect(),
        ))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let plan = self.stream(&request.stream)?;
        let after = match request.mode {
            ReadMode::FullRefresh => 0,
            ReadMode::Incremental => {
                if let Some(c) = request
                    .cursor
                    .as_deref()
                    .filter(|c| !plan.cursors.iter().any(|x| x == c))
                {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "stream `{}` cannot be read incrementally by `{c}`, whose values do not grow with id \
                             (cursors: {})",
                            plan.name,
                            plan.cursors.join(", ")
                        ),
                    ));
                }
                resume_after(&plan.name, request.state.as_ref())?
            }
        };
        let mut last = plan.rows;
        if let Some(limit) = request.limit {
            last = last.min(after.saturating_add(limit));
        }
        let batches = Batches {
            schema: plan.schema.clone(),
            columns: plan.columns.clone(),
            next: after + 1,
            last,
            batch_size: request.batch_size.max(1) as u64,
            estimate: Some(last.saturating_sub(after)),
            checkpoint: None,
        };
        Ok(futures::stream::iter(batches).boxed())
    }

    async fn count(&self, request: &ReadRequest) -> Result<Option<u64>> {
        ferry_core::source::count_by_estimate(self, request).await
    }
}

/// The messages of one read: an estimate, then each batch followed by its checkpoint.
/// Rows are made only when the runtime asks for the next message.
struct Batches {
    schema: SchemaRef,
    columns: Arc<[ColumnGen]>,
    next: u64,
    last: u64,
    batch_size: u64,
    estimate: Option<u64>,
    checkpoint: Option<u64>,
}

impl Iterator for Batches {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(n) = self.estimate.take() {
            return Some(Ok(Message::Estimate(n)));
        }
        if let Some(id) = self.checkpoint.take() {
            return Some(Ok(Message::Checkpoint(serde_json::json!({ "id": id }))));
        }
        if self.next > self.last {
            return None;
        }
        let n = self.batch_size.min(self.last - self.next + 1);
        let first = self.next;
        self.next += n;
        self.checkpoint = Some(first + n - 1);
        let arrays = self
            .columns
            .iter()
            .map(|c| c.build(first, n as usize))
            .collect();
        Some(
            RecordBatch::try_new(self.schema.clone(), arrays)
                .map(Message::Batch)
                .map_err(|e| {
                    Error::internal(format!("generated batch does not fit its schema: {e}"))
                }),
        )
    }
}
