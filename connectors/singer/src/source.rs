//! A Singer tap as a Ferry source.
//!
//! `discover` runs `tap --config c.json --discover` and maps each catalog entry's JSON
//! Schema to Ferry types (see [`crate::schema`]). `read` runs the tap once per Ferry
//! stream with only that stream selected in the catalog (`selected: true`, plus
//! `replication-method` / `replication-key` from Ferry's stream config), and `--state`
//! from the stream's committed Ferry state.
//!
//! **One process per stream.** Ferry reads streams separately (each with its own
//! checkpoints and sink), while a tap emits all selected streams from one process. Running
//! the tap once per stream is the simple design that stays correct: each stream's state is
//! exactly the tap's state after a run that selected only it. The cost is one tap start
//! (and one discovery) per stream, a second or two for SDK taps, and per-stream
//! connections on the tapped system.
//!
//! **State.** Each STATE message ends a checkpoint: the rows before it are sent as a batch,
//! then `Message::Checkpoint(value)`, so the runtime commits the tap's state only after the
//! sink has flushed those rows. A tap that exits non-zero, writes a line that is not a JSON
//! message, or sends a RECORD for a stream no SCHEMA declared fails the read with the tap's
//! name, the stdout line and its stderr tail; rows after the last STATE are not checkpointed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::arrow_schema::SchemaRef;
use ferry_core::{
    async_trait, Catalog, Error, ErrorKind, FerryType, Message, MessageStream, ReadMode,
    ReadRequest, Result, Source, StreamInfo,
};
use serde_json::{json, Value};

use crate::config::{CatalogFlag, SingerSourceConfig};
use crate::process::{self, clip, Program, Protocol};
use crate::rows::{LineError, RecordRows};
use crate::schema;

/// The `singer` source.
pub struct SingerSource {
    program: Program,
    catalog_flag: CatalogFlag,
    /// The tap's catalog from the first discovery, and Ferry's view of it.
    discovered: tokio::sync::OnceCell<Arc<Discovered>>,
}

struct Discovered {
    /// The tap's catalog as it printed it.
    raw: Value,
    catalog: Catalog,
}

impl SingerSource {
    /// A source from its config; `base_dir` is the config file's folder.
    pub fn new(cfg: SingerSourceConfig, base_dir: impl Into<PathBuf>) -> Result<Self> {
        Ok(SingerSource {
            program: cfg.program(base_dir)?,
            catalog_flag: cfg.catalog_flag,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    fn tap(&self) -> String {
        self.program.name()
    }

    async fn discovered(&self) -> Result<Arc<Discovered>> {
        let d = self.discovered.get_or_try_init(|| self.discovery()).await?;
        Ok(d.clone())
    }

    async fn discovery(&self) -> Result<Arc<Discovered>> {
        let mut args = self.program.args_with_config(&[], "tap-config")?;
        args.push("--discover");
        let (program, mut run) = self.program.start(args, false).await?;
        let mut text = String::new();
        let mut lines = run.stdout.take().expect("stdout is piped");
        while let Some((_, line)) = lines
            .next()
            .await
            .map_err(|e| Error::io(e, "cannot read the tap's output", &program))?
        {
            text.push_str(&line);
            text.push('\n');
        }
        run.wait(&format!(
            "during discovery (after stdout line {})",
            lines.line()
        ))
        .await?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| {
            run.error_now(
                ErrorKind::DataInvalid,
                format!(
                    "tap `{}` printed no JSON catalog for --discover ({e}); its stdout began: {}",
                    self.tap(),
                    clip(text.trim(), 200)
                ),
            )
        })?;
        let streams = raw
            .get("streams")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::data(format!(
                    "the catalog of tap `{}` has no `streams` list",
                    self.tap()
                ))
            })?;
        // serde_json sorts object keys: read the properties' order from the text itself
        let order: CatalogOrder = serde_json::from_str(&text).unwrap_or_default();
        let catalog = Catalog::new(
            streams
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let o = order
                        .streams
                        .get(i)
                        .map(|s| s.schema.properties.0.as_slice());
                    stream_info(e, o.unwrap_or(&[]))
                })
                .collect(),
        );
        Ok(Arc::new(Discovered { raw, catalog }))
    }
}

#[derive(Default, serde::Deserialize)]
struct CatalogOrder {
    #[serde(default)]
    streams: Vec<EntryOrder>,
}

#[derive(Default, serde::Deserialize)]
struct EntryOrder {
    #[serde(default)]
    schema: schema::SchemaOrder,
}

/// The strings of a JSON array (none for anything else).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Ferry's description of one catalog entry (`None` for an entry without a name);
/// `order` is its properties' order in the tap's text.
fn stream_info(entry: &Value, order: &[String]) -> Option<StreamInfo> {
    let name = entry
        .get("tap_stream_id")
        .or_else(|| entry.get("stream"))
        .and_then(Value::as_str)?;
    let root = root_metadata(entry).cloned().unwrap_or(Value::Null);
    let keys = strings(
        entry
            .get("key_properties")
            .or_else(|| root.get("table-key-properties")),
    );
    let arrow = schema::to_arrow(entry.get("schema").unwrap_or(&Value::Null), &keys, order);
    let keys: Vec<String> = keys
        .into_iter()
        .filter(|k| arrow.field_with_name(k).is_ok())
        .collect();
    let mut info = StreamInfo::new(name, arrow.clone()).with_primary_key(keys);
    let valid = strings(root.get("valid-replication-keys"));
    let forced = root
        .get("forced-replication-method")
        .and_then(Value::as_str);
    let candidates: Vec<String> = if !valid.is_empty() {
        valid.clone()
    } else if forced.is_some_and(|f| f.eq_ignore_ascii_case("FULL_TABLE")) {
        Vec::new()
    } else {
        // SQL taps accept any orderable column as the replication key
        arrow
            .fields()
            .iter()
            .filter(|f| {
                matches!(
                    FerryType::of(f),
                    Some(
                        FerryType::Int64
                            | FerryType::Float64
                            | FerryType::Decimal { .. }
                            | FerryType::Date
                            | FerryType::Timestamp
                            | FerryType::String
                    )
                )
            })
            .map(|f| f.name().clone())
            .collect()
    };
    if !candidates.is_empty() {
        let default = root
            .get("replication-key")
            .or_else(|| entry.get("replication_key"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| (valid.len() == 1).then(|| valid[0].clone()));
        info.read_modes.push(ReadMode::Incremental);
        info.cursor_candidates = candidates;
        info.default_cursor = default;
    }
    Some(info)
}

fn root_metadata(entry: &Value) -> Option<&Value> {
    entry
        .get("metadata")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("breadcrumb")
                .and_then(Value::as_array)
                .is_some_and(|b| b.is_empty())
        })
        .and_then(|m| m.get("metadata"))
}

/// The tap's catalog with only `stream` selected, read fully or incrementally by `cursor`.
fn select(raw: &Value, stream: &str, cursor: Option<&str>) -> Result<Value> {
    let mut out = raw.clone();
    let streams = out
        .get_mut("streams")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::internal("catalog without streams"))?;
    streams.retain(|e| {
        e.get("tap_stream_id")
            .or_else(|| e.get("stream"))
            .and_then(Value::as_str)
            == Some(stream)
    });
    let entry = streams.first_mut().ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("the tap offers no stream `{stream}`"),
        )
    })?;
    let method = if cursor.is_some() {
        "INCREMENTAL"
    } else {
        "FULL_TABLE"
    };
    entry["selected"] = json!(true);
    entry["replication_method"] = json!(method);
    if let Some(c) = cursor {
        entry["replication_key"] = json!(c);
    }
    if !entry.get("metadata").is_some_and(Value::is_array) {
        entry["metadata"] = json!([]);
    }
    let metadata = entry["metadata"]
        .as_array_mut()
        .expect("made an array above");
    if !metadata
        .iter()
        .any(|m| m["breadcrumb"].as_array().is_some_and(|b| b.is_empty()))
    {
        metadata.push(json!({"breadcrumb": [], "metadata": {}}));
    }
    for m in metadata.iter_mut() {
        let is_root = m["breadcrumb"].as_array().is_some_and(|b| b.is_empty());
        if !m.get("metadata").is_some_and(Value::is_object) {
            m["metadata"] = json!({});
        }
        let md = &mut m["metadata"];
        if is_root {
            md["selected"] = json!(true);
            md["replication-method"] = json!(method);
            match cursor {
                Some(c) => md["replication-key"] = json!(c),
                None => {
                    if let Some(o) = md.as_object_mut() {
                        o.remove("replication-key");
                    }
                }
            }
        } else if md.get("inclusion").and_then(Value::as_str) != Some("unsupported") {
            md["selected"] = json!(true);
        }
    }
    Ok(out)
}

#[async_trait]
impl Source for SingerSource {
    async fn check(&self) -> Result<()> {
        // Singer has no `check`: discovery connects to the system and lists what it offers
        self.discovered().await.map(|_| ())
    }

    async fn discover(&self) -> Result<Catalog> {
        Ok(self.discovered().await?.catalog.clone())
    }

    async fn read(&self, request: ReadRequest) -> Result<MessageStream> {
        let d = self.discovered().await?;
        let source = format!("tap `{}`", self.tap());
        let (_, info) = d.catalog.offered(&request.stream, &source)?;
        let cursor = match request.mode {
            ReadMode::FullRefresh => None,
            ReadMode::Incremental => Some(info.cursor(request.cursor.as_deref()).ok_or_else(
                || {
                    let candidates = info.cursor_candidates.join(", ");
                    Error::config(format!(
                        "stream `{}` has no default replication key: set `cursor = \"…\"` (one of: {candidates})",
                        request.stream
                    ))
                },
            )?),
        };
        let catalog = select(&d.raw, &request.stream, cursor)?;
        let flag = match self.catalog_flag {
            CatalogFlag::Catalog => "--catalog",
            CatalogFlag::Properties => "--properties",
        };
        let mut args = self.program.args_with_config(&[], "tap-config")?;
        args.file(flag, &catalog, "tap-catalog")?;
        if let Some(state) = request.state.as_ref().filter(|s| !s.is_null()) {
            args.file("--state", state, "tap-state")?;
        }
        let reader = SingerReader::new(
            &self.tap(),
            &request.stream,
            info.schema.clone(),
            request.batch_size.max(1),
        )?;
        let (_, run) = self.program.start(args, false).await?;
        Ok(process::message_stream(run, reader))
    }
}

/// Turns a tap's stdout lines into Ferry messages for one stream.
pub(crate) struct SingerReader {
    tap: String,
    stream: String,
    rows: RecordRows,
    declared: HashSet<String>,
}

impl SingerReader {
    pub(crate) fn new(
        tap: &str,
        stream: &str,
        schema: SchemaRef,
        batch_size: usize,
    ) -> Result<Self> {
        Ok(SingerReader {
            tap: tap.to_string(),
            stream: stream.to_string(),
            rows: RecordRows::new(schema, batch_size)?,
            declared: HashSet::new(),
        })
    }
}

impl Protocol for SingerReader {
    fn rows(&mut self) -> &mut RecordRows {
        &mut self.rows
    }

    fn who(&self) -> String {
        format!("tap `{}`", self.tap)
    }

    fn line(
        &mut self,
        n: u64,
        line: &str,
        out: &mut Vec<Message>,
    ) -> std::result::Result<(), LineError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let bad = |what: String| {
            (
                ErrorKind::DataInvalid,
                format!("tap `{}` {what} on stdout line {n}", self.tap),
            )
        };
        let msg: Value = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "wrote a line that is not a JSON message ({e}: `{}`)",
                clip(line, 120)
            ))
        })?;
        let kind = msg.get("type").and_then(Value::as_str).unwrap_or_default();
        let stream = msg.get("stream").and_then(Value::as_str);
        match kind {
            "SCHEMA" => {
                let s = stream.ok_or_else(|| bad("sent a SCHEMA message without `stream`".into()))?;
                self.declared.insert(s.to_string());
            }
            "RECORD" => {
                let s = stream.ok_or_else(|| bad("sent a RECORD message without `stream`".into()))?;
                if !self.declared.contains(s) {
                    return Err(bad(format!(
                        "sent a RECORD for stream `{s}`, which no SCHEMA message declared"
                    )));
                }
                if s != self.stream {
                    return Ok(()); // another stream the tap chose to send anyway
                }
                let record = msg
                    .get("record")
                    .and_then(Value::as_object)
                    .ok_or_else(|| bad("sent a RECORD whose `record` is not an object".into()))?;
                let origin = format!("tap {} stdout", self.tap);
                self.rows.push(record, n, line, origin, out)?;
            }
            "STATE" => {
                let value = msg
                    .get("value")
                    .cloned()
                    .ok_or_else(|| bad("sent a STATE message without `value`".into()))?;
                self.rows.flush(out)?;
                out.push(Message::Checkpoint(value));
            }
            "BATCH" => {
                return Err((
                    ErrorKind::Unsupported,
                    format!(
                        "tap `{}` sent a BATCH message on stdout line {n}; Ferry reads records one by one: remove `batch_config` from the tap's config",
                        self.tap
                    ),
                ))
            }
            "ACTIVATE_VERSION" => {}
            "" => return Err(bad("wrote a JSON line without a message `type`".into())),
            other => tracing::debug!(tap = %self.tap, "ignoring a {other} message on stdout line {n}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::feed;
    use ferry_core::arrow_schema::Schema;

    fn reader() -> SingerReader {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Timestamp.field("at", true),
        ]));
        SingerReader::new("tap-x", "s", schema, 10).unwrap()
    }

    #[test]
    fn records_then_state_make_a_batch_then_a_checkpoint() {
        let mut r = reader();
        let out = feed(
            &mut r,
            &[
                r#"{"type":"SCHEMA","stream":"s","schema":{},"key_properties":["id"]}"#,
                r#"{"type":"RECORD","stream":"s","record":{"id":1,"at":"2024-01-01T00:00:00+02:00"}}"#,
                r#"{"type":"STATE","value":{"bookmarks":{"s":1}}}"#,
                r#"{"type":"RECORD","stream":"s","record":{"id":"two"}}"#,
                r#"{"type":"RECORD","stream":"s","record":{"id":3}}"#,
            ],
        )
        .unwrap();
        assert!(matches!(&out[0], Message::Batch(b) if b.num_rows() == 1));
        assert!(matches!(&out[1], Message::Checkpoint(v) if v["bookmarks"]["s"] == 1));
        match &out[2] {
            Message::Rejected(rej) => {
                assert_eq!(rej.position.line, Some(4));
                assert!(rej.message.contains("`id`"), "{}", rej.message);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            out.len(),
            3,
            "the row after the state waits for the next one"
        );
        let mut rest = Vec::new();
        r.finish(&mut rest).unwrap();
        assert!(matches!(&rest[0], Message::Batch(b) if b.num_rows() == 1));
    }

    #[test]
    fn garbage_and_undeclared_streams_name_the_line() {
        let (kind, msg) = feed(&mut reader(), &["", "hello"]).unwrap_err();
        assert_eq!(kind, ErrorKind::DataInvalid);
        assert!(
            msg.contains("tap `tap-x`") && msg.contains("line 2"),
            "{msg}"
        );
        let (_, msg) = feed(
            &mut reader(),
            &[r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#],
        )
        .unwrap_err();
        assert!(msg.contains("no SCHEMA") && msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn selection_marks_only_the_stream_read() {
        let raw = json!({"streams": [
            {"tap_stream_id": "a", "schema": {}, "metadata": [
                {"breadcrumb": [], "metadata": {"inclusion": "available"}},
                {"breadcrumb": ["properties", "x"], "metadata": {"inclusion": "available"}},
                {"breadcrumb": ["properties", "y"], "metadata": {"inclusion": "unsupported"}}
            ]},
            {"tap_stream_id": "b", "schema": {}}
        ]});
        let c = select(&raw, "a", Some("x")).unwrap();
        assert_eq!(c["streams"].as_array().unwrap().len(), 1);
        let md = &c["streams"][0]["metadata"];
        assert_eq!(md[0]["metadata"]["selected"], true);
        assert_eq!(md[0]["metadata"]["replication-method"], "INCREMENTAL");
        assert_eq!(md[0]["metadata"]["replication-key"], "x");
        assert_eq!(md[1]["metadata"]["selected"], true);
        assert!(md[2]["metadata"].get("selected").is_none());
        let c = select(&raw, "b", None).unwrap();
        assert_eq!(
            c["streams"][0]["metadata"][0]["metadata"]["replication-method"],
            "FULL_TABLE"
        );
        assert!(select(&raw, "zz", None).is_err());
    }

    #[test]
    fn catalog_entries_become_streams() {
        let e = json!({"tap_stream_id": "public-t", "key_properties": ["id"],
            "schema": {"properties": {"id": {"type": ["integer"]}, "meta": {"type": ["object", "null"]}}},
            "metadata": [{"breadcrumb": [], "metadata": {"table-key-properties": ["id"]}}]});
        let info = stream_info(&e, &[]).unwrap();
        assert_eq!(info.name, "public-t");
        assert_eq!(info.primary_key, vec!["id".to_string()]);
        assert!(info.supports_incremental());
        assert_eq!(info.cursor_candidates, vec!["id".to_string()]);
        assert_eq!(info.default_cursor, None);
    }
}
