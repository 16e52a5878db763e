//! A sink wrapped to fail on purpose: at a write, or at the close before or after the
//! inner sink commits (what a run killed at that point leaves).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;

use ferry_core::sink::{
    Durability, Sink, SinkCapabilities, StreamWriter, WriteRequest, WriteSummary,
};
use ferry_core::{Error, ErrorKind, Result};

/// Where a [`FailingSink`]'s writers fail.
#[derive(Clone, Copy)]
enum Failure {
    /// The n-th write (1-based).
    Write(usize),
    /// The close, after the inner sink's commit or before it (the inner writer aborted).
    Close { after_commit: bool },
}

/// Wraps a sink so its writers fail: see [`FailingSink::new`] and [`FailingSink::at_close`].
pub struct FailingSink {
    inner: Arc<dyn Sink>,
    failure: Failure,
    /// The one stream whose writers fail (`None`: every stream's).
    only: Option<String>,
}

impl FailingSink {
    /// A sink that fails its `fail_at`-th write of every stream.
    pub fn new(inner: Arc<dyn Sink>, fail_at: usize) -> Self {
        FailingSink {
            inner,
            failure: Failure::Write(fail_at),
            only: None,
        }
    }

    /// A sink that holds every stream's rows to the close (its flushes say
    /// [`Durability::AtClose`]) and then fails the close: before the inner close, nothing
    /// committed, or with `after_commit` after it, the rows durable and the run dying
    /// before its state is saved.
    pub fn at_close(inner: Arc<dyn Sink>, after_commit: bool) -> Self {
        FailingSink {
            inner,
            failure: Failure::Close { after_commit },
            only: None,
        }
    }

    /// Fails only the writers of `stream`; the other streams' are the inner sink's.
    pub fn only(mut self, stream: &str) -> Self {
        self.only = Some(stream.to_string());
        self
    }
}

struct FailingWriter {
    inner: Box<dyn StreamWriter>,
    writes: usize,
    failure: Failure,
}

#[async_trait]
impl Sink for FailingSink {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let spared = self.only.as_ref().is_some_and(|s| *s != request.stream);
        let inner = self.inner.open(request).await?;
        if spared {
            return Ok(inner);
        }
        Ok(Box::new(FailingWriter {
            inner,
            writes: 0,
            failure: self.failure,
        }))
    }
    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }
    async fn describe(&self, stream: &str) -> Result<Option<SchemaRef>> {
        self.inner.describe(stream).await
    }
}

#[async_trait]
impl StreamWriter for FailingWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.writes += 1;
        if let Failure::Write(n) = self.failure {
            if self.writes >= n {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    "injected failure (conformance kit)",
                ));
            }
        }
        self.inner.write(batch).await
    }
    async fn flush(&mut self) -> Result<Durability> {
        match self.failure {
            Failure::Write(_) => self.inner.flush().await,
            Failure::Close { .. } => Ok(Durability::AtClose),
        }
    }
    async fn close(self: Box<Self>) -> Result<WriteSummary> {
        match self.failure {
            Failure::Write(_) => self.inner.close().await,
            Failure::Close { after_commit: true } => {
                self.inner.close().await?;
                Err(Error::internal("killed after the sink's commit"))
            }
            Failure::Close {
                after_commit: false,
            } => {
                self.inner.abort().await?;
                Err(Error::internal("the destination failed"))
            }
        }
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.inner.abort().await
    }
}
