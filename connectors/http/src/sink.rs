//! The `webhook` sink: rows POSTed in batches, signed, with idempotency keys.
//!
//! Each POST carries `batch_size` rows (the last of a flush fewer) as a JSON array or
//! NDJSON, values spelled as everywhere in Ferry ([`ferry_core::values::to_json`]), and:
//!
//! - `X-Ferry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`
//!   when `secret` is set, computed afresh on every attempt. A receiver recomputes the
//!   HMAC over the exact body bytes, compares in constant time, and refuses old `t`
//!   values (five minutes is usual) to stop replays.
//! - `Idempotency-Key`: hex SHA-256 of `run id \n stream \n batch number`, the same on
//!   every retry of a batch, so a receiver that remembers keys applies a batch once
//!   even when an answer was lost and the POST was sent again. A later run sends
//!   other keys: rows after the last committed checkpoint may arrive again then.
//! - `X-Ferry-Stream`, `X-Ferry-Run` and `X-Ferry-Batch` (1, 2, …) to route and order.
//!
//! Retries follow the client ([`crate::client`]). `flush` answers `Durable` once every
//! buffered row has been accepted (2xx): the receiver holds them.

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::values::to_json;
use ferry_core::{
    Durability, Error, ErrorKind, FerryType, Output, Result, Sink, SinkCapabilities, StreamWriter,
    WriteMode, WriteRequest, WriteSummary,
};
use ferry_formats::digest::RowDigest;
use reqwest::header::HeaderValue;
use reqwest::Method;

use crate::client::{HttpClient, RequestSpec};
use crate::config::{BodyFormat, WebhookSinkConfig};

/// A webhook as a destination.
pub struct WebhookSink {
    client: Arc<HttpClient>,
    cfg: WebhookSinkConfig,
}

impl WebhookSink {
    /// A sink for `cfg`, checked without a request.
    pub fn new(cfg: WebhookSinkConfig) -> Result<Self> {
        cfg.validate()?;
        let client = HttpClient::new(&cfg.client_settings())?;
        Ok(WebhookSink { client, cfg })
    }

    fn url_for(&self, stream: &str) -> Result<url::Url> {
        let seg: String = url::form_urlencoded::byte_serialize(stream.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        crate::config::parse_url(&self.cfg.url.replace("{stream}", &seg), "url")
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn check(&self) -> Result<()> {
        let url = self.url_for("check")?;
        let mut spec = RequestSpec::get(url, "check");
        spec.method = Method::HEAD;
        match self.client.execute(&spec).await {
            Ok(_) => Ok(()),
            // answered, but not to HEAD (405) or not for a stream named `check` (404):
            // reachable (a refused redirect has no status, and is an error)
            Err(e)
                if e.context_value("status").is_some()
                    && matches!(
                        e.kind(),
                        ErrorKind::ConfigInvalid | ErrorKind::NotFound | ErrorKind::Unsupported
                    ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        if request.mode != WriteMode::Append {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "a webhook can only append (stream `{}` asks for {})",
                    request.stream, request.mode
                ),
            ));
        }
        let url = self.url_for(&request.stream)?;
        Ok(Box::new(WebhookWriter {
            client: self.client.clone(),
            location: self.client.safe_url(&url),
            url,
            format: self.cfg.format,
            batch_size: self.cfg.batch_size,
            secret: self.cfg.secret.clone(),
            request,
            buffer: Vec::new(),
            seq: 0,
            rows: 0,
            bytes: 0,
            digest: RowDigest::new(),
        }))
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append],
        }
    }
}

struct WebhookWriter {
    client: Arc<HttpClient>,
    url: url::Url,
    location: String,
    format: BodyFormat,
    batch_size: usize,
    secret: Option<ferry_core::Secret>,
    request: WriteRequest,
    /// Rows as JSON objects, not yet accepted.
    buffer: Vec<String>,
    seq: u64,
    rows: u64,
    bytes: u64,
    digest: RowDigest,
}

/// `hex(SHA-256(run id \n stream \n batch))`.
pub fn idempotency_key(run_id: &str, stream: &str, batch: u64) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{run_id}\n{stream}\n{batch}").as_bytes(),
    );
    ferry_formats::digest::hex(d.as_ref())
}

impl WebhookWriter {
    /// POSTs the first `n` buffered rows as one batch.
    async fn post(&mut self, n: usize) -> Result<()> {
        let rows = &self.buffer[..n];
        let (body, content_type) = match self.format {
            BodyFormat::Json => (format!("[{}]", rows.join(",")), "application/json"),
            BodyFormat::Ndjson => {
                let mut b = rows.join("\n");
                b.push('\n');
                (b, "application/x-ndjson")
            }
        };
        let seq = self.seq + 1;
        let stream = &self.request.stream;
        let header = |v: String| {
            HeaderValue::from_str(&v)
                .map_err(|_| Error::internal("a webhook header value is not printable"))
        };
        let key = idempotency_key(&self.request.run_id, stream, seq);
        let spec = RequestSpec {
            method: Method::POST,
            url: self.url.clone(),
            body: Some(body.into_bytes()),
            content_type: Some(content_type),
            headers: vec![
                ("Idempotency-Key".into(), header(key)?),
                (
                    "X-Ferry-Stream".into(),
                    header(url::form_urlencoded::byte_serialize(stream.as_bytes()).collect())?,
                ),
                ("X-Ferry-Run".into(), header(self.request.run_id.clone())?),
                ("X-Ferry-Batch".into(), header(seq.to_string())?),
            ],
            signing: self.secret.clone(),
            what: format!("batch {seq}"),
        };
        let len = spec.body.as_ref().map_or(0, Vec::len) as u64;
        self.client
            .execute(&spec)
            .await
            .map_err(|e| e.with("stream", stream).with("batch", seq))?;
        self.seq = seq;
        self.rows += n as u64;
        self.bytes += len;
        self.buffer.drain(..n);
        Ok(())
    }
}

#[async_trait]
impl StreamWriter for WebhookWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let cols: Vec<(String, FerryType)> = schema
            .fields()
            .iter()
            .map(|f| {
                (
                    serde_json::to_string(f.name()).expect("strings serialize"),
                    FerryType::of(f).unwrap_or(FerryType::String),
                )
            })
            .collect();
        for r in 0..batch.num_rows() {
            let mut obj = String::from("{");
            for (c, (name, ty)) in cols.iter().enumerate() {
                if c > 0 {
                    obj.push(',');
                }
                obj.push_str(name);
                obj.push(':');
                obj.push_str(&to_json(batch.column(c).as_ref(), *ty, r).to_string());
            }
            obj.push('}');
            self.buffer.push(obj);
        }
        self.digest.add_batch(&batch);
        while self.buffer.len() >= self.batch_size {
            self.post(self.batch_size).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        while !self.buffer.is_empty() {
            let n = self.buffer.len().min(self.batch_size);
            self.post(n).await?;
        }
        Ok(Durability::Durable)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        self.flush().await?;
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "webhook".into(),
                location: self.location.clone(),
                root: None,
                rows: self.rows,
                bytes: Some(self.bytes),
                digest: Some(self.digest.to_receipt_string()),
                closed: None,
            }],
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let a = super::idempotency_key("run-1", "orders", 1);
        assert_eq!(a, super::idempotency_key("run-1", "orders", 1));
        assert_ne!(a, super::idempotency_key("run-1", "orders", 2));
        assert_ne!(a, super::idempotency_key("run-2", "orders", 1));
        assert_eq!(a.len(), 64);
    }
}
