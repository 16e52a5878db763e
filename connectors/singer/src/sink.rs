//! A Singer target as a Ferry destination: one target process per stream, fed a SCHEMA
//! message and then RECORD messages on its stdin.
//!
//! **Durability.** Singer targets signal progress by echoing, on stdout, the last STATE
//! they have made safe. A flush sends `{"type":"STATE","value":{"ferry_flush":"<id>"}}`
//! and waits (up to `echo_timeout_secs`) for that value to come back: then everything
//! before it is loaded and the flush is [`Durability::Durable`]. Many targets echo only
//! when their own buffers drain, or at the very end (target-jsonl); when the echo does not
//! come in time the flush answers [`Durability::AtClose`], later flushes stop waiting, and
//! the runtime commits state only after the target exited successfully at `close`.
//!
//! Only `append` is offered: how a target loads (insert, merge by `key_properties`,
//! replace) is the target's own setting, which Ferry cannot check.

use std::path::PathBuf;
use std::time::Duration;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    async_trait, Durability, Error, ErrorKind, FerryType, Output, Result, Sink, SinkCapabilities,
    StreamWriter, WriteMode, WriteRequest, WriteSummary,
};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::config::SingerSinkConfig;
use crate::process::{self, Program, Running};
use crate::schema;

/// The `singer` destination.
pub struct SingerSink {
    program: Program,
    echo_timeout: Duration,
}

impl SingerSink {
    /// A sink from its config; `base_dir` is the config file's folder.
    pub fn new(cfg: SingerSinkConfig, base_dir: impl Into<PathBuf>) -> Result<Self> {
        let program = cfg.program(base_dir)?;
        if !(cfg.echo_timeout_secs >= 0.0 && cfg.echo_timeout_secs.is_finite()) {
            return Err(Error::config(
                "`echo_timeout_secs` must be a number of seconds, 0 or more",
            ));
        }
        Ok(SingerSink {
            program,
            echo_timeout: Duration::from_secs_f64(cfg.echo_timeout_secs),
        })
    }
}

#[async_trait]
impl Sink for SingerSink {
    async fn check(&self) -> Result<()> {
        // a target has no check of its own: make sure it is installed and can start
        let (_, mut run) = self
            .program
            .start(self.program.args(&["--help"]), false)
            .await?;
        let _ = tokio::time::timeout(Duration::from_secs(60), run.wait("")).await;
        Ok(())
    }

    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities {
            modes: vec![WriteMode::Append],
        }
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        let args = self.program.args_with_config(&[], "target-config")?;
        let (_, mut run) = self.program.start(args, true).await?;
        let name = self.program.name();
        let stdout = run.stdout.take().expect("stdout is piped");
        let (tx, rx) = watch::channel(None::<String>);
        let echoes = tokio::spawn(read_echoes(stdout, name.clone(), tx));
        let mut w = SingerWriter {
            name,
            stream: request.stream.clone(),
            run_id: request.run_id.clone(),
            run,
            types: FerryType::of_each(&request.schema, FerryType::String),
            names: request
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            rows: 0,
            flushes: 0,
            echoes: rx,
            echo_task: Some(echoes),
            wait_for_echo: !self.echo_timeout.is_zero(),
            echo_timeout: self.echo_timeout,
        };
        let schema_msg = json!({
            "type": "SCHEMA",
            "stream": request.stream,
            "schema": schema::from_arrow(&request.schema),
            "key_properties": request.primary_key(),
        });
        w.send(format!("{schema_msg}\n").as_bytes()).await?;
        Ok(Box::new(w))
    }
}

/// Reads the target's stdout: every line that is a state carrying a Ferry flush marker
/// moves `tx` on; other lines go to the log.
async fn read_echoes(
    mut lines: process::Lines<tokio::process::ChildStdout>,
    name: String,
    tx: watch::Sender<Option<String>>,
) {
    while let Ok(Some((_, line))) = lines.next().await {
        let marker = serde_json::from_str::<Value>(&line).ok().and_then(|v| {
            v.get("ferry_flush")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        match marker {
            Some(m) => {
                let _ = tx.send(Some(m));
            }
            None => {
                tracing::debug!(target: "ferry::bridge", program = %name, "stdout: {}", ferry_core::redact::redact(&line))
            }
        }
    }
}

struct SingerWriter {
    name: String,
    stream: String,
    run_id: String,
    run: Running,
    types: Vec<FerryType>,
    names: Vec<String>,
    rows: u64,
    flushes: u64,
    echoes: watch::Receiver<Option<String>>,
    echo_task: Option<tokio::task::JoinHandle<()>>,
    wait_for_echo: bool,
    echo_timeout: Duration,
}

impl SingerWriter {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self
            .run
            .stdin
            .as_mut()
            .ok_or_else(|| Error::internal("the target's stdin is closed"))?;
        let r = async {
            stdin.write_all(bytes).await?;
            stdin.flush().await
        }
        .await;
        if let Err(e) = r {
            let msg = format!("target `{}` stopped taking messages ({e})", self.name);
            return Err(self
                .run
                .fail(ErrorKind::DataInvalid, msg)
                .await
                .with("stream", &self.stream));
        }
        Ok(())
    }

    fn marker(&self) -> String {
        format!("{}:{}", self.run_id, self.flushes)
    }
}

#[async_trait]
impl StreamWriter for SingerWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut buf = Vec::with_capacity(batch.num_rows() * 128);
        for row in 0..batch.num_rows() {
            let mut record = serde_json::Map::with_capacity(self.names.len());
            for (i, name) in self.names.iter().enumerate() {
                let v = ferry_core::values::to_json(batch.column(i).as_ref(), self.types[i], row);
                record.insert(name.clone(), v);
            }
            let msg = json!({"type": "RECORD", "stream": self.stream, "record": record});
            serde_json::to_writer(&mut buf, &msg).map_err(|e| Error::internal(e.to_string()))?;
            buf.push(b'\n');
        }
        self.send(&buf).await?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<Durability> {
        self.flushes += 1;
        let marker = self.marker();
        let msg = json!({"type": "STATE", "value": {"ferry_flush": marker}});
        self.send(format!("{msg}\n").as_bytes()).await?;
        if !self.wait_for_echo {
            return Ok(Durability::AtClose);
        }
        let want = self.flushes;
        let echoed = tokio::time::timeout(
            self.echo_timeout,
            self.echoes.wait_for(|m| {
                m.as_deref()
                    .and_then(|m| m.rsplit_once(':'))
                    .and_then(|(_, n)| n.parse::<u64>().ok())
                    .is_some_and(|n| n >= want)
            }),
        )
        .await
        .map(|r| r.map(|_| ()));
        match echoed {
            Ok(Ok(_)) => Ok(Durability::Durable),
            Ok(Err(_)) => {
                // stdout closed: the target ended before it confirmed
                let msg = format!(
                    "target `{}` ended before confirming the rows sent to it",
                    self.name
                );
                Err(self
                    .run
                    .fail(ErrorKind::DataInvalid, msg)
                    .await
                    .with("stream", &self.stream))
            }
            Err(_) => {
                tracing::debug!(
                    program = %self.name,
                    "the target did not echo Ferry's state marker within {:?}: state is committed when it exits",
                    self.echo_timeout
                );
                self.wait_for_echo = false;
                Ok(Durability::AtClose)
            }
        }
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let after = format!("after {} rows of stream `{}`", self.rows, self.stream);
        self.run
            .wait(&after)
            .await
            .map_err(|e| e.with("stream", &self.stream))?;
        if let Some(t) = self.echo_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        Ok(WriteSummary {
            rows: self.rows,
            outputs: vec![Output {
                kind: "table".into(),
                location: format!("singer target {} stream {}", self.name, self.stream),
                rows: self.rows,
                ..Default::default()
            }],
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let msg = format!("aborted stream `{}`", self.stream);
        let _ = self.run.fail(ErrorKind::Cancelled, msg).await;
        Ok(())
    }
}
