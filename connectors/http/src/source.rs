//! The `http` source: streams of a REST API, read page by page.
//!
//! A read runs in its own task and hands batches over a bounded channel, so one page
//! (and one batch) is in memory at a time however long the listing is. A child stream
//! (`parent = "customers"`) walks the parent's pages and reads its own listing once
//! per parent record.
//!
//! **Schema.** `discover` infers each stream's columns from its first pages
//! (`sample_pages`, `sample_records`) and remembers them; `read` yields exactly that
//! schema (inferring the same way when `discover` was not called). Keys a record has
//! beyond the schema are ignored; a value that does not fit its column makes the record
//! a rejected one (quarantined or failing the run, as configured), with its page and
//! position.
//!
//! **Checkpoints.** See [`crate::cursor`] for the state. Unless the stream sets
//! `sorted_by_cursor`, the largest cursor value is only known once every page has been
//! read, so state is checkpointed once, at the end of the stream; a run that fails
//! midway commits nothing and the next one starts from the previous state. With
//! `sorted_by_cursor`, a checkpoint follows every page after at least `batch_size` rows,
//! placed before the last run of equal cursor values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::types::with_keys;
use ferry_core::values::BatchBuilder;
use ferry_core::{
    Catalog, Error, ErrorKind, FerryType, Message, MessageStream, Position, ReadMode, ReadRequest,
    Rejected, Result, Source, StreamInfo,
};
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use url::Url;

use crate::client::{HttpClient, RequestSpec};
use crate::config::{HttpSourceConfig, StreamSpec};
use crate::cursor::Tracker;
use crate::paginate::{set_param, Paginator};
use crate::records::{self, Selected};

/// Batches buffered between the reading task and the pipeline.
const CHANNEL_BATCHES: usize = 2;
/// Child listings read at most while sampling a child stream.
const MAX_SAMPLE_PARENTS: usize = 20;

/// A REST API as a source. Build it from config ([`HttpSource::new`]) or in Rust
/// ([`crate::HttpSourceBuilder`]).
#[derive(Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: Arc<HttpClient>,
    base: Url,
    specs: Vec<StreamSpec>,
    sample_records: usize,
    sample_pages: usize,
    schemas: Mutex<HashMap<String, SchemaRef>>,
}

impl HttpSource {
    /// A source for `cfg`, checked without a request.
    pub fn new(cfg: HttpSourceConfig) -> Result<Self> {
        let (base, specs) = cfg.specs()?;
        let client = HttpClient::new(&cfg.client_settings())?;
        Ok(HttpSource {
            inner: Arc::new(Inner {
                client,
                base,
                specs,
                sample_records: cfg.sample_records,
                sample_pages: cfg.sample_pages,
                schemas: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The client, for connector code that needs a request the streams do not make.
    pub fn client(&self) -> &Arc<HttpClient> {
        &self.inner.client
    }
}

impl Inner {
    fn spec(&self, name: &str) -> Result<&StreamSpec> {
        self.specs.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
            Error::new(
                ErrorKind::NotFound,
                format!("no stream `{name}` (streams: {})", names.join(", ")),
            )
            .with("stream", name)
        })
    }

    /// The URL of a listing: base URL + path, base and stream parameters, `extra`.
    fn listing_url(
        &self,
        spec: &StreamSpec,
        path: &str,
        extra: &[(String, String)],
    ) -> Result<Url> {
        let mut base = self.base.clone();
        let base_query: Vec<(String, String)> = base
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        base.set_query(None);
        base.set_fragment(None);
        let text = format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut url = Url::parse(&text).map_err(|e| {
            Error::config(format!("path `{path}` does not make a valid URL: {e}"))
                .with("stream", &spec.name)
        })?;
        for (k, v) in base_query.iter().chain(&spec.params).chain(extra) {
            set_param(&mut url, k, v);
        }
        Ok(url)
    }

    fn pages<'a>(
        &'a self,
        spec: &'a StreamSpec,
        url: Url,
        label: String,
        keep_raw: bool,
    ) -> Pages<'a> {
        let (paginator, first) = Paginator::new(spec.pagination.clone(), url);
        Pages {
            client: &self.client,
            spec,
            paginator,
            next: Some(first),
            number: 0,
            label,
            keep_raw,
            last_digest: None,
            log: None,
        }
    }

    /// The child listing URL for one parent record, or why there is none.
    fn child_url(
        &self,
        spec: &StreamSpec,
        parent_name: &str,
        parent: &Value,
        extra: &[(String, String)],
    ) -> std::result::Result<Result<Url>, String> {
        let mut path = spec.path.clone();
        let holes = records::placeholders(&spec.path, parent_name).map_err(|e| e.to_string())?;
        for h in holes {
            let v = records::get_path(parent, &h.field)
                .and_then(records::scalar_text)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    format!(
                        "the parent record has no `{}` to fill `{}` of stream `{}`",
                        h.field.join("."),
                        h.text,
                        spec.name
                    )
                })?;
            let seg: String = url::form_urlencoded::byte_serialize(v.as_bytes())
                .collect::<String>()
                .replace('+', "%20");
            path = path.replace(&h.text, &seg);
        }
        Ok(self.listing_url(spec, &path, extra))
    }

    fn parent_values(spec: &StreamSpec, parent: &Value) -> Vec<(String, Value)> {
        spec.parent_fields
            .iter()
            .map(|(col, path)| {
                let v = records::get_path(parent, &crate::config::split_path(path))
                    .cloned()
                    .unwrap_or(Value::Null);
                (col.clone(), v)
            })
            .collect()
    }

    /// Infers a stream's schema from its first pages and remembers it.
    async fn infer(&self, spec: &StreamSpec) -> Result<SchemaRef> {
        let mut sample = String::new();
        let mut n = 0usize;
        match &spec.parent {
            None => {
                let url = self.listing_url(spec, &spec.path, &[])?;
                let mut pages = self.pages(spec, url, String::new(), true);
                let mut read = 0;
                while read < self.sample_pages && n < self.sample_records {
                    let Some(page) = pages.next().await? else {
                        break;
                    };
                    n += sample_page(&mut sample, &page, spec, &[], self.sample_records - n);
                    read += 1;
                }
            }
            Some(parent_name) => {
                let parent = self.spec(parent_name)?;
                let url = self.listing_url(parent, &parent.path, &[])?;
                let mut parents = self.pages(parent, url, String::new(), false);
                let (mut listings, mut full_pages) = (0, 0);
                'outer: while let Some(ppage) = parents.next().await? {
                    for prec in page_records(&ppage, parent) {
                        if listings >= MAX_SAMPLE_PARENTS
                            || full_pages >= self.sample_pages
                            || n >= self.sample_records
                        {
                            break 'outer;
                        }
                        let Ok(url) = self.child_url(spec, parent_name, prec, &[]) else {
                            continue;
                        };
                        let url = url?;
                        listings += 1;
                        let extra = Self::parent_values(spec, prec);
                        let mut pages = self.pages(spec, url, String::new(), true);
                        while full_pages < self.sample_pages && n < self.sample_records {
                            let Some(page) = pages.next().await? else {
                                break;
                            };
                            let added = sample_page(
                                &mut sample,
                                &page,
                                spec,
                                &extra,
                                self.sample_records - n,
                            );
                            if added == 0 {
                                break;
                            }
                            n += added;
                            full_pages += 1;
                        }
                    }
                }
            }
        }
        let schema = records::infer(&sample, &spec.overrides, self.sample_records)
            .map_err(|e| Error::config(format!("stream `{}`: {}", spec.name, e.message())))?;
        let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        for col in spec.primary_key.iter().chain(&spec.cursor_field) {
            if names.contains(col) || fields.iter().any(|f| f.name() == col) {
                continue;
            }
            if n == 0 {
                // nothing to infer from: the column exists, its type is unknown
                fields.push(FerryType::String.field(col, true));
                continue;
            }
            return Err(Error::config(format!(
                "stream `{}`: column `{col}` (primary key or cursor) is not in the records of the first pages (columns: {}); check the name, or add it to `columns`",
                spec.name,
                names.join(", ")
            ))
            .with("stream", &spec.name));
        }
        let schema = ferry_core::arrow_schema::Schema::new(fields);
        let schema = with_keys(&schema, &spec.primary_key, spec.cursor_field.as_deref());
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), schema.clone());
        Ok(schema)
    }

    async fn schema(&self, spec: &StreamSpec) -> Result<SchemaRef> {
        let known = self
            .schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&spec.name)
            .cloned();
        match known {
            Some(s) => Ok(s),
            None => self.infer(spec).await,
        }
    }
}

/// One page: its number, URL and parsed body (and text, while sampling).
struct Page {
    number: u64,
    url: Url,
    body: Value,
    raw: Option<String>,
}

/// Adds up to `room` records of a page to an inference sample, keys in the API's order.
fn sample_page(
    sample: &mut String,
    page: &Page,
    spec: &StreamSpec,
    extra: &[(String, Value)],
    room: usize,
) -> usize {
    let mut added = 0;
    for r in records::select_raw(page.raw.as_deref().unwrap_or(""), &spec.records) {
        if added >= room {
            break;
        }
        if let Some(line) = records::ordered_line(r, extra, spec.flatten_depth, &spec.separator) {
            sample.push_str(&line);
            sample.push('\n');
            added += 1;
        }
    }
    added
}

/// The pages of one listing.
struct Pages<'a> {
    client: &'a HttpClient,
    spec: &'a StreamSpec,
    paginator: Paginator,
    next: Option<Url>,
    number: u64,
    label: String,
    keep_raw: bool,
    /// SHA-256 of the last page's body, to notice an API that ignores the page parameter.
    last_digest: Option<Vec<u8>>,
    /// Exchanges of a read not yet handed on ([`Pages::next_recorded`]); `None` while
    /// sampling or checking, which record nothing.
    log: Option<Vec<ferry_core::exchange::Exchange>>,
}

impl Pages<'_> {
    /// Records every request of these pages, for [`Pages::next_recorded`].
    fn recorded(mut self) -> Self {
        self.log = Some(Vec::new());
        self
    }

    /// [`Pages::next`], first handing `out` the exchanges it made (the failing one too),
    /// for the debug bundle of a stream that fails.
    async fn next_recorded(&mut self, out: &Out) -> Result<Option<Page>> {
        let page = self.next().await;
        for x in self.log.iter_mut().flat_map(|l| l.drain(..)) {
            // a closed channel is noticed by the next batch sent
            let _ = out.send(Message::Exchange(Box::new(x))).await;
        }
        page
    }

    async fn next(&mut self) -> Result<Option<Page>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        self.number += 1;
        let n = self.number;
        let name = &self.spec.name;
        let what = format!("{}page {n}", self.label);
        let request = RequestSpec::get(url.clone(), &what);
        let reply = match self.log.as_mut() {
            Some(log) => self.client.execute_recorded(&request, log).await,
            None => self.client.execute(&request).await,
        }
        .map_err(|e| e.with("stream", name).with("page", n))?;
        let shown = self.client.safe_url(&url);
        let body: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            Error::data(format!(
                "{what} of stream `{name}` is not valid JSON: {}",
                ferry_core::redact::redact(&e.to_string())
            ))
            .with("stream", name)
            .with("page", n)
            .with("url", &shown)
        })?;
        let count = match records::select(&body, &self.spec.records) {
            Selected::Records(r) => r.len(),
            Selected::Missing if n == 1 => {
                return Err(Error::config(format!(
                    "{what} of stream `{name}` has no `{}` (`records`); the body has: {}",
                    self.spec.records.join("."),
                    records::keys_of(&body)
                ))
                .with("stream", name)
                .with("url", &shown))
            }
            Selected::Missing => 0,
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &reply.body)
            .as_ref()
            .to_vec();
        if count > 0 && self.last_digest.as_ref() == Some(&digest) {
            return Err(Error::data(format!(
                "{what} of stream `{name}` is the same as the page before: the API seems to ignore the pagination parameters (set `pagination = {{ type = \"none\" }}` if it has one page)"
            ))
            .with("stream", name)
            .with("page", n)
            .with("url", &shown));
        }
        self.last_digest = Some(digest);
        self.next = self
            .paginator
            .next(&url, &reply.headers, &body, count)
            .map_err(|m| {
                Error::data(format!("{what} of stream `{name}`: {m}"))
                    .with("stream", name)
                    .with("url", &shown)
            })?;
        let raw = if self.keep_raw {
            Some(String::from_utf8_lossy(&reply.body).into_owned())
        } else {
            None
        };
        Ok(Some(Page {
            number: n,
            url,
            body,
            raw,
        }))
    }
}

fn page_records<'p>(page: &'p Page, spec: &StreamSpec) -> Vec<&'p Value> {
    match records::select(&page.body, &spec.records) {
        Selected::Records(r) => r,
        Selected::Missing => Vec::new(),
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn check(&self) -> Result<()> {
        let inner = &self.inner;
        let spec = inner
            .specs
            .iter()
            .find(|s| s.parent.is_none())
            .ok_or_else(|| Error::config("every stream has a parent; one must not"))?;
        let url = inner.listing_url(spec, &spec.path, &[])?;
        let mut pages = inner.pages(spec, url, String::new(), false);
        pages.next().await?;
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let mut streams = Vec::new();
        for spec in &self.inner.specs {
            let schema = self.inner.infer(spec).await?;
            let mut info =
                StreamInfo::new(&spec.name, schema).with_primary_key(spec.primary_key.clone());
            if let Some(c) = &spec.cursor_field {
                info = info.incremental([c.clone()]);
            }
            streams.push(info);
        }
        Ok(Catalog::new(streams))
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let inner = self.inner.clone();
        let spec = inner.spec(&request.stream)?.clone();
        let schema = inner.schema(&spec).await?;
        let tracker = match request.mode {
            ReadMode::FullRefresh => None,
            ReadMode::Incremental => {
                let column = request
                    .cursor
                    .clone()
                    .or_else(|| spec.cursor_field.clone())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Unsupported,
                            format!(
                                "stream `{}` has no cursor: set `cursor_field` in its config or `cursor` in [[streams]]",
                                spec.name
                            ),
                        )
                        .with("stream", &spec.name)
                    })?;
                let field = schema.field_with_name(&column).map_err(|_| {
                    Error::config(format!(
                        "cursor `{column}` is not a column of stream `{}`",
                        spec.name
                    ))
                    .with("stream", &spec.name)
                })?;
                let ty = FerryType::of(field).unwrap_or(FerryType::String);
                let sorted = spec.sorted_by_cursor && spec.cursor_field.as_deref() == Some(&column);
                Some(Tracker::new(
                    &spec.name,
                    &column,
                    ty,
                    &spec.primary_key,
                    sorted,
                    request.state.as_ref(),
                )?)
            }
        };
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let stream = spec.name.clone();
        tokio::spawn(async move {
            let mut out = Out {
                tx: tx.clone(),
                builder: None,
                schema,
                batch_size: request.batch_size.max(1),
                rows: 0,
                since_checkpoint: 0,
                limit: request.limit,
                reported: None,
            };
            if let Err(e) = produce(&inner, &spec, tracker, &mut out).await {
                let _ = tx.send(Err(e.with("stream", &stream))).await;
            }
        });
        Ok(
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
                .boxed(),
        )
    }
}

/// Where a read's messages go.
struct Out {
    tx: mpsc::Sender<Result<Message>>,
    builder: Option<BatchBuilder>,
    schema: SchemaRef,
    batch_size: usize,
    rows: u64,
    since_checkpoint: usize,
    limit: Option<u64>,
    /// Records the API reported (`total`), less those skipped as already delivered.
    reported: Option<u64>,
}

/// The receiver is gone (the run stopped): stop reading.
struct Stopped;

impl Out {
    async fn send(&self, m: Message) -> std::result::Result<(), Stopped> {
        self.tx.send(Ok(m)).await.map_err(|_| Stopped)
    }

    fn builder(&mut self) -> Result<&mut BatchBuilder> {
        if self.builder.is_none() {
            self.builder = Some(BatchBuilder::new(
                self.schema.clone(),
                self.batch_size.min(1 << 14),
            )?);
        }
        Ok(self.builder.as_mut().expect("set above"))
    }

    async fn flush(&mut self) -> Result<std::result::Result<(), Stopped>> {
        if let Some(b) = self.builder.as_mut().filter(|b| !b.is_empty()) {
            let batch = b.finish()?;
            if batch.num_rows() > 0 {
                return Ok(self.send(Message::Batch(batch)).await);
            }
        }
        Ok(Ok(()))
    }

    /// Sends a rejected record, after the rows read before it (see `Message::Rejected`).
    async fn reject(&mut self, r: Rejected) -> Result<std::result::Result<(), Stopped>> {
        if let Err(s) = self.flush().await? {
            return Ok(Err(s));
        }
        Ok(self.send(Message::Rejected(r)).await)
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.rows >= l)
    }
}

/// Turns one page into rows and rejected records; `Err(Stopped)` when the run stopped.
async fn rows_of_page(
    spec: &StreamSpec,
    page: &Page,
    shown_url: &str,
    label: &str,
    extra: &[(String, Value)],
    tracker: &mut Option<Tracker>,
    out: &mut Out,
) -> Result<std::result::Result<(), Stopped>> {
    if let (1, Some(path)) = (page.number, &spec.total) {
        let n = records::get_path(&page.body, path)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
            })
            .ok_or_else(|| {
                Error::data(format!(
                    "the first page has no record count at `total = \"{}\"`",
                    path.join(".")
                ))
                .with("url", shown_url)
            })?;
        out.reported = Some(out.reported.unwrap_or(0) + n);
    }
    for (i, rec) in page_records(page, spec).into_iter().enumerate() {
        if out.done() {
            break;
        }
        let position = || Position {
            file: Some(shown_url.to_string()),
            line: None,
            column: None,
            key: Some(format!("{label}page {} record {}", page.number, i + 1)),
        };
        let Value::Object(obj) = rec else {
            let r = Rejected {
                position: position(),
                raw: rec.to_string(),
                message: format!("expected a JSON object, found {}", kind(rec)),
            };
            if out.reject(r).await?.is_err() {
                return Ok(Err(Stopped));
            }
            continue;
        };
        let mut row = Map::new();
        for (k, v) in extra {
            row.insert(k.clone(), v.clone());
        }
        for (k, v) in obj {
            row.insert(k.clone(), v.clone());
        }
        let row = records::flatten(row, spec.flatten_depth, &spec.separator);
        if let Some(t) = tracker.as_mut() {
            if !t.observe(&row) {
                // delivered by an earlier run: not read now, so not expected either
                out.reported = out.reported.map(|n| n.saturating_sub(1));
                continue;
            }
        }
        let pushed = out.builder()?.push_json_row(&row);
        match pushed {
            Ok(()) => {
                out.rows += 1;
                out.since_checkpoint += 1;
            }
            Err(f) => {
                let r = Rejected {
                    position: position(),
                    raw: rec.to_string(),
                    message: format!("column `{}`: {}", f.name, f.message),
                };
                if out.reject(r).await?.is_err() {
                    return Ok(Err(Stopped));
                }
            }
        }
        if out
            .builder
            .as_ref()
            .is_some_and(|b| b.len() >= out.batch_size)
        {
            if let Err(s) = out.flush().await? {
                return Ok(Err(s));
            }
        }
    }
    Ok(Ok(()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn produce(
    inner: &Inner,
    spec: &StreamSpec,
    mut tracker: Option<Tracker>,
    out: &mut Out,
) -> Result<()> {
    // the cursor parameter, when the tracked column is the one the API filters on
    let mut extra_params = Vec::new();
    if let (Some(t), Some(param)) = (&tracker, &spec.cursor_param) {
        if t.column_is(spec.cursor_field.as_deref()) {
            if let Some(v) = t.saved_text().or_else(|| spec.cursor_start.clone()) {
                extra_params.push((param.clone(), v));
            }
        }
    }
    let mut last_checkpoint: Option<Value> = None;
    match &spec.parent {
        None => {
            let url = inner.listing_url(spec, &spec.path, &extra_params)?;
            let mut pages = inner.pages(spec, url, String::new(), false).recorded();
            while !out.done() {
                let Some(page) = pages.next_recorded(out).await? else {
                    break;
                };
                let shown = inner.client.safe_url(&page.url);
                if rows_of_page(spec, &page, &shown, "", &[], &mut tracker, out)
                    .await?
                    .is_err()
                {
                    return Ok(());
                }
                if out.since_checkpoint >= out.batch_size {
                    if let Some(state) = tracker.as_ref().and_then(Tracker::boundary) {
                        if last_checkpoint.as_ref() != Some(&state) {
                            if out.flush().await?.is_err()
                                || out.send(Message::Checkpoint(state.clone())).await.is_err()
                            {
                                return Ok(());
                            }
                            out.since_checkpoint = 0;
                            last_checkpoint = Some(state);
                        }
                    }
                }
            }
        }
        Some(parent_name) => {
            let parent = inner.spec(parent_name)?;
            let url = inner.listing_url(parent, &parent.path, &[])?;
            let mut parents = inner.pages(parent, url, String::new(), false).recorded();
            'parents: while let Some(ppage) = parents.next_recorded(out).await? {
                let parent_shown = inner.client.safe_url(&ppage.url);
                for (i, prec) in page_records(&ppage, parent).into_iter().enumerate() {
                    if out.done() {
                        break 'parents;
                    }
                    let url = match inner.child_url(spec, parent_name, prec, &extra_params) {
                        Ok(u) => u?,
                        Err(message) => {
                            let r = Rejected {
                                position: Position {
                                    file: Some(parent_shown.clone()),
                                    line: None,
                                    column: None,
                                    key: Some(format!(
                                        "{parent_name} page {} record {}",
                                        ppage.number,
                                        i + 1
                                    )),
                                },
                                raw: prec.to_string(),
                                message,
                            };
                            if out.reject(r).await?.is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                    };
                    let label = format!("{parent_name} page {} record {}, ", ppage.number, i + 1);
                    let extra = Inner::parent_values(spec, prec);
                    let mut pages = inner.pages(spec, url, label.clone(), false).recorded();
                    while !out.done() {
                        let Some(page) = pages.next_recorded(out).await? else {
                            break;
                        };
                        let shown = inner.client.safe_url(&page.url);
                        if rows_of_page(spec, &page, &shown, &label, &extra, &mut tracker, out)
                            .await?
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    let complete = !out.done();
    if out.flush().await?.is_err() {
        return Ok(());
    }
    if let (true, Some(n)) = (complete, out.reported) {
        // before the last checkpoint: the run checks it before committing
        if out.send(Message::Total(n)).await.is_err() {
            return Ok(());
        }
    }
    if complete {
        if let Some(state) = tracker.as_ref().and_then(Tracker::finish) {
            let _ = out.send(Message::Checkpoint(state)).await;
        }
    }
    Ok(())
}
