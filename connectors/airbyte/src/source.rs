//! An Airbyte source connector as a Ferry source, speaking the Airbyte protocol with the
//! connector's own entry point (`source-faker spec | check | discover | read`).
//!
//! * `check` runs `spec` and refuses a config missing a required setting (naming each
//!   with its description, so the connector's own spec is what the user reads), then
//!   `check --config`; a FAILED connection status is an error with its message.
//! * `discover` runs `discover --config` and maps each stream's JSON Schema to Ferry types
//!   (see `ferry_connector_singer::schema`).
//! * `read` runs `read --config --catalog --state` once per Ferry stream, with a configured
//!   catalog of only that stream (`incremental` by Ferry's cursor, or `full_refresh`).
//!   RECORDs become batches; a STATE (per-stream for this stream, global, or legacy)
//!   flushes the rows before it and becomes a checkpoint, committed only after the sink
//!   flushed them; LOG messages go to Ferry's log (redacted) and to the tail shown in
//!   errors; a TRACE error fails the read with its message; a TRACE estimate becomes
//!   Ferry's row estimate (the progress bar's total).
//!
//! The saved state of a stream is the connector's last state message for it (without its
//! stats); the next run passes it back as `--state [<message>]` (a legacy state's `data`
//! as is). Lines that are not JSON are logged and skipped, as the Airbyte platform does.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_connector_singer::process::{self, clip, Program, Protocol, StderrTail};
use ferry_connector_singer::rows::{LineError, RecordRows};
use ferry_connector_singer::schema::{self, SchemaOrder};
use ferry_core::{
    async_trait, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode,
    ReadRequest, Result, Source, StreamInfo,
};
use serde_json::{json, Value};

use crate::config::AirbyteSourceConfig;

/// The `airbyte` source.
pub struct AirbyteSource {
    program: Program,
    discovered: tokio::sync::OnceCell<Arc<Discovered>>,
}

struct Discovered {
    /// The connector's streams (AirbyteStream objects) as it printed them.
    raw: Vec<Value>,
    catalog: Catalog,
}

impl AirbyteSource {
    /// A source from its config; `base_dir` is the config file's folder.
    pub fn new(cfg: AirbyteSourceConfig, base_dir: impl Into<PathBuf>) -> Result<Self> {
        Ok(AirbyteSource {
            program: cfg.program(base_dir)?,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    fn who(&self) -> String {
        format!("Airbyte source `{}`", self.program.name())
    }

    /// The connector's own spec (`connectionSpecification`: the settings `config` takes).
    pub async fn connector_spec(&self) -> Result<Value> {
        let msgs = self.command("spec", false).await?;
        msgs.into_iter()
            .find(|(_, m)| m["type"] == "SPEC")
            .map(|(_, m)| m["spec"]["connectionSpecification"].clone())
            .ok_or_else(|| Error::data(format!("{} printed no SPEC message", self.who())))
    }

    /// Runs `<program> <cmd> [--config c.json]` to the end and returns its protocol
    /// messages (with their raw lines). A TRACE error or a non-zero exit is an error.
    async fn command(&self, cmd: &str, with_config: bool) -> Result<Vec<(String, Value)>> {
        let args = match with_config {
            true => self.program.args_with_config(&[cmd], "airbyte-config")?,
            false => self.program.args(&[cmd]),
        };
        let (program, mut run) = self.program.start(args, false).await?;
        let name = self.program.name();
        let mut lines = run.stdout.take().expect("stdout is piped");
        let mut out = Vec::new();
        let mut failure = None;
        while let Some((n, line)) = lines
            .next()
            .await
            .map_err(|e| Error::io(e, "cannot read the connector's output", &program))?
        {
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                log_line(&run.stderr, &name, "INFO", &line);
                continue;
            };
            match msg["type"].as_str() {
                Some("LOG") => log_message(&run.stderr, &name, &msg),
                Some("TRACE") if msg["trace"]["type"] == "ERROR" && failure.is_none() => {
                    failure = Some((n, trace_error(&self.who(), &msg)))
                }
                _ => out.push((line, msg)),
            }
        }
        if let Some((n, (kind, message))) = failure {
            let _ = run.wait("").await;
            return Err(run.error_now(kind, format!("{message} (stdout line {n}, `{cmd}`)")));
        }
        run.wait(&format!("during `{cmd}`")).await?;
        Ok(out)
    }

    async fn discovered(&self) -> Result<Arc<Discovered>> {
        let d = self.discovered.get_or_try_init(|| self.discovery()).await?;
        Ok(d.clone())
    }

    async fn discovery(&self) -> Result<Arc<Discovered>> {
        let msgs = self.command("discover", true).await?;
        let (line, msg) = msgs
            .into_iter()
            .find(|(_, m)| m["type"] == "CATALOG")
            .ok_or_else(|| {
                Error::data(format!("{} printed no CATALOG for `discover`", self.who()))
            })?;
        let raw: Vec<Value> = msg["catalog"]["streams"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // serde_json sorts object keys: read the properties' order from the line itself
        let order: CatalogLine = serde_json::from_str(&line).unwrap_or_default();
        // a stream left out (no name) leaves out its raw entry too: `raw[i]` stays the
        // entry of the catalog's stream `i`
        let (mut kept, mut streams) = (Vec::new(), Vec::new());
        for (i, s) in raw.into_iter().enumerate() {
            let o = order
                .catalog
                .streams
                .get(i)
                .map(|s| s.json_schema.properties.0.as_slice());
            match stream_info(&s, o.unwrap_or(&[])) {
                Some(info) => {
                    streams.push(info);
                    kept.push(s);
                }
                None => tracing::warn!(
                    "{} offered a stream without a name (catalog entry {}): it is left out",
                    self.who(),
                    i + 1
                ),
            }
        }
        Ok(Arc::new(Discovered {
            raw: kept,
            catalog: Catalog::new(streams),
        }))
    }
}

#[derive(Default, serde::Deserialize)]
struct CatalogLine {
    #[serde(default)]
    catalog: CatalogOrder,
}
#[derive(Default, serde::Deserialize)]
struct CatalogOrder {
    #[serde(default)]
    streams: Vec<StreamOrder>,
}
#[derive(Default, serde::Deserialize)]
struct StreamOrder {
    #[serde(default)]
    json_schema: SchemaOrder,
}

/// Top-level field names of a list of field paths (`[["id"]]` → `["id"]`); nested paths
/// cannot be Ferry columns and are left out.
fn top_level(paths: &Value) -> Vec<String> {
    paths
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([Value::String(s)]) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn stream_info(s: &Value, order: &[String]) -> Option<StreamInfo> {
    let name = s["name"].as_str()?;
    let keys = top_level(&s["source_defined_primary_key"]);
    let arrow = schema::to_arrow(&s["json_schema"], &keys, order);
    let keys: Vec<String> = keys
        .into_iter()
        .filter(|k| arrow.field_with_name(k).is_ok())
        .collect();
    let mut info = StreamInfo::new(name, arrow.clone()).with_primary_key(keys);
    let incremental = s["supported_sync_modes"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "incremental"));
    if incremental {
        let default = s["default_cursor_field"]
            .as_array()
            .and_then(|p| match p.as_slice() {
                [Value::String(c)] => Some(c.clone()),
                _ => None,
            });
        let candidates: Vec<String> = if s["source_defined_cursor"] == true {
            default.iter().cloned().collect()
        } else {
            arrow
                .fields()
                .iter()
                .filter(|f| {
                    !matches!(
                        FerryType::of(f),
                        Some(FerryType::Json | FerryType::Bool | FerryType::Binary) | None
                    )
                })
                .map(|f| f.name().clone())
                .collect()
        };
        if !candidates.is_empty() || default.is_some() {
            info.read_modes.push(ReadMode::Incremental);
            info.cursor_candidates = candidates;
            info.default_cursor = default;
        }
    }
    Some(info)
}

/// The state file for `--state` from a saved Ferry state.
fn state_arg(saved: &Value) -> Value {
    match saved.get("type").and_then(Value::as_str) {
        Some("STREAM" | "GLOBAL") => json!([saved]),
        Some("LEGACY") => saved.get("data").cloned().unwrap_or(Value::Null),
        _ => saved.get("data").cloned().unwrap_or_else(|| saved.clone()),
    }
}

#[async_trait]
impl Source for AirbyteSource {
    async fn check(&self) -> Result<()> {
        let spec = self.connector_spec().await?;
        let required: Vec<&str> = spec["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have: Vec<&str> = self.program.config().keys().collect();
        let missing: Vec<String> = required
            .iter()
            .filter(|r| !have.contains(r))
            .map(|r| {
                let d = spec["properties"][r]["description"].as_str().unwrap_or("");
                format!("`{r}` ({})", clip(d, 120))
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::config(format!(
                "{} needs these settings in `config`: {}",
                self.who(),
                missing.join(", ")
            )));
        }
        let settings: Vec<&str> = spec["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        tracing::info!(
            "{} takes these settings: {}",
            self.who(),
            settings.join(", ")
        );
        let msgs = self.command("check", true).await?;
        let status = msgs
            .iter()
            .find(|(_, m)| m["type"] == "CONNECTION_STATUS")
            .map(|(_, m)| &m["connectionStatus"])
            .ok_or_else(|| {
                Error::data(format!(
                    "{} printed no CONNECTION_STATUS for `check`",
                    self.who()
                ))
            })?;
        if status["status"] == "SUCCEEDED" {
            Ok(())
        } else {
            let why = status["message"].as_str().unwrap_or("no reason given");
            let kind = process::kind_from_output(why).unwrap_or(ErrorKind::ConfigInvalid);
            Err(Error::new(
                kind,
                format!(
                    "{} check failed: {}",
                    self.who(),
                    ferry_core::redact::redact(why)
                ),
            ))
        }
    }

    async fn discover(&self) -> Result<Catalog> {
        Ok(self.discovered().await?.catalog.clone())
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let d = self.discovered().await?;
        let (i, info) = d.catalog.offered(&request.stream, &self.who())?;
        let raw = &d.raw[i];
        let mut configured = json!({
            "stream": raw,
            "sync_mode": "full_refresh",
            "destination_sync_mode": "append",
            "primary_key": raw.get("source_defined_primary_key").cloned().unwrap_or(json!([])),
        });
        if request.mode == ReadMode::Incremental {
            let cursor = info.cursor(request.cursor.as_deref()).ok_or_else(|| {
                Error::config(format!(
                    "stream `{}` has no default cursor: set `cursor = \"…\"`",
                    request.stream
                ))
            })?;
            configured["sync_mode"] = json!("incremental");
            configured["cursor_field"] = json!([cursor]);
        }
        let catalog = json!({ "streams": [configured] });
        let mut args = self.program.args_with_config(&["read"], "airbyte-config")?;
        args.file("--catalog", &catalog, "airbyte-catalog")?;
        if let Some(state) = request.state.as_ref().filter(|s| !s.is_null()) {
            args.file("--state", &state_arg(state), "airbyte-state")?;
        }
        let (_, run) = self.program.start(args, false).await?;
        let reader = AirbyteReader {
            who: self.who(),
            name: self.program.name(),
            stream: request.stream.clone(),
            rows: RecordRows::new(info.schema.clone(), request.batch_size)?,
            tail: run.stderr.clone(),
        };
        Ok(process::message_stream(run, reader))
    }
}

fn log_line(tail: &StderrTail, name: &str, level: &str, text: &str) {
    let text = ferry_core::redact::redact(text.trim_end());
    match level {
        "FATAL" | "ERROR" => tracing::warn!(target: "ferry::bridge", program = %name, "{text}"),
        "WARN" => tracing::info!(target: "ferry::bridge", program = %name, "{text}"),
        _ => tracing::debug!(target: "ferry::bridge", program = %name, "{text}"),
    }
    tail.push(clip(&format!("{level} {text}"), 500));
}

fn log_message(tail: &StderrTail, name: &str, msg: &Value) {
    let level = msg["log"]["level"].as_str().unwrap_or("INFO");
    let text = msg["log"]["message"].as_str().unwrap_or_default();
    log_line(tail, name, level, text);
}

/// The error a TRACE error message stands for.
fn trace_error(who: &str, msg: &Value) -> (ErrorKind, String) {
    let e = &msg["trace"]["error"];
    let kind = match e["failure_type"].as_str() {
        Some("config_error") => ErrorKind::ConfigInvalid,
        Some("transient_error") => ErrorKind::Temporary,
        _ => ErrorKind::DataInvalid,
    };
    let text = e["message"].as_str().unwrap_or("no message");
    let mut m = format!("{who} reported an error: {text}");
    if let Some(internal) = e["internal_message"].as_str() {
        m.push_str(&format!(" ({})", clip(internal, 300)));
    }
    (kind, ferry_core::redact::redact(&m))
}

struct AirbyteReader {
    who: String,
    name: String,
    stream: String,
    rows: RecordRows,
    tail: StderrTail,
}

impl AirbyteReader {
    fn checkpoint(
        &mut self,
        state: &Value,
        out: &mut Vec<Message>,
    ) -> std::result::Result<(), LineError> {
        let mut state = state.clone();
        if let Some(o) = state.as_object_mut() {
            o.remove("sourceStats");
            o.remove("destinationStats");
        }
        self.rows.flush(out)?;
        out.push(Message::Checkpoint(state));
        Ok(())
    }
}

impl Protocol for AirbyteReader {
    fn rows(&mut self) -> &mut RecordRows {
        &mut self.rows
    }

    fn who(&self) -> String {
        self.who.clone()
    }

    fn line(
        &mut self,
        n: u64,
        line: &str,
        out: &mut Vec<Message>,
    ) -> std::result::Result<(), LineError> {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            if !line.trim().is_empty() {
                log_line(&self.tail, &self.name, "INFO", line);
            }
            return Ok(());
        };
        match msg["type"].as_str().unwrap_or_default() {
            "RECORD" => {
                let r = &msg["record"];
                if r["stream"].as_str() != Some(self.stream.as_str()) {
                    return Ok(());
                }
                let data = r["data"].as_object().ok_or_else(|| {
                    (
                        ErrorKind::DataInvalid,
                        format!(
                            "{} sent a RECORD whose `data` is not an object on stdout line {n}",
                            self.who
                        ),
                    )
                })?;
                let origin = format!("{} stdout", self.name);
                self.rows.push(data, n, line, origin, out)?;
            }
            "STATE" => {
                let s = &msg["state"];
                match s["type"].as_str() {
                    Some("STREAM") => {
                        if s["stream"]["stream_descriptor"]["name"].as_str()
                            == Some(self.stream.as_str())
                        {
                            self.checkpoint(s, out)?;
                        }
                    }
                    Some("GLOBAL") => self.checkpoint(s, out)?,
                    _ if s.get("data").is_some() => self.checkpoint(s, out)?,
                    _ => {
                        tracing::debug!(program = %self.name, "ignoring a state message of an unknown kind on stdout line {n}")
                    }
                }
            }
            "LOG" => log_message(&self.tail, &self.name, &msg),
            "TRACE" => match msg["trace"]["type"].as_str() {
                Some("ERROR") => {
                    let (kind, m) = trace_error(&self.who, &msg);
                    return Err((kind, format!("{m} (stdout line {n})")));
                }
                Some("ESTIMATE") => {
                    let e = &msg["trace"]["estimate"];
                    let ours =
                        e["type"] != "STREAM" || e["name"].as_str() == Some(self.stream.as_str());
                    if let (true, Some(rows)) = (ours, e["row_estimate"].as_u64()) {
                        out.push(Message::Estimate(rows));
                    }
                }
                _ => {}
            },
            "CONTROL" => tracing::warn!(
                program = %self.name,
                "the connector asked to update its config (CONTROL message); Ferry does not change config files: update `config` yourself if needed"
            ),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_singer::process::feed;
    use ferry_core::arrow_schema::{Schema, SchemaRef};

    fn reader() -> AirbyteReader {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Timestamp.field("updated_at", true),
        ]));
        AirbyteReader {
            who: "Airbyte source `x`".into(),
            name: "x".into(),
            stream: "users".into(),
            rows: RecordRows::new(schema, 10).unwrap(),
            tail: StderrTail::default(),
        }
    }

    #[test]
    fn records_states_estimates_and_logs_map_to_messages() {
        let mut r = reader();
        let out = feed(
            &mut r,
            &[
                "plain text is a log line",
                r#"{"type":"LOG","log":{"level":"INFO","message":"starting"}}"#,
                r#"{"type":"TRACE","trace":{"type":"ESTIMATE","estimate":{"name":"users","type":"STREAM","row_estimate":7}}}"#,
                r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"updated_at":"2024-01-01T00:00:00+00:00"}}}"#,
                r#"{"type":"RECORD","record":{"stream":"other","data":{"id":9}}}"#,
                r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"other"},"stream_state":{}}}}"#,
                r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"c":1}},"sourceStats":{"recordCount":1.0}}}"#,
                r#"{"type":"STATE","state":{"data":{"users":{"c":2}}}}"#,
            ],
        )
        .unwrap();
        assert!(matches!(out[0], Message::Estimate(7)));
        assert!(matches!(&out[1], Message::Batch(b) if b.num_rows() == 1));
        match &out[2] {
            Message::Checkpoint(s) => {
                assert_eq!(s["stream"]["stream_state"]["c"], 1);
                assert!(s.get("sourceStats").is_none());
                assert_eq!(state_arg(s)[0]["type"], "STREAM");
            }
            other => panic!("{other:?}"),
        }
        match &out[3] {
            Message::Checkpoint(s) => assert_eq!(state_arg(s)["users"]["c"], 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(out.len(), 4);
        assert!(r.tail.text().contains("starting"));
    }

    #[test]
    fn trace_errors_fail_with_their_message() {
        let (kind, msg) = feed(
            &mut reader(),
            &[r#"{"type":"TRACE","trace":{"type":"ERROR","error":{"message":"bad key","failure_type":"config_error"}}}"#],
        )
        .unwrap_err();
        assert_eq!(kind, ErrorKind::ConfigInvalid);
        assert!(msg.contains("bad key") && msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn catalog_streams_become_ferry_streams() {
        let s = json!({"name": "users", "json_schema": {"properties": {
                "id": {"type": "integer"}, "updated_at": {"type": "string", "format": "date-time"},
                "address": {"type": "object"}}},
            "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": true,
            "default_cursor_field": ["updated_at"], "source_defined_primary_key": [["id"]]});
        let info = stream_info(&s, &["id".into(), "updated_at".into(), "address".into()]).unwrap();
        assert_eq!(info.primary_key, vec!["id".to_string()]);
        assert_eq!(info.default_cursor.as_deref(), Some("updated_at"));
        assert_eq!(info.cursor_candidates, vec!["updated_at".to_string()]);
        assert_eq!(info.schema.field(2).name(), "address");
        assert_eq!(FerryType::of(info.schema.field(2)), Some(FerryType::Json));
        assert!(!info.schema.field(0).is_nullable());
    }
}
