//! The shared conformance kit, against the fake API (tests/common): the source reads
//! streams the fixture stores on the server; the sink POSTs to the server's webhook
//! receiver, which verifies signatures and keeps the rows for read-back.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{start, Api};
use ferry_connector_http::{HttpSource, HttpSourceConfig, WebhookSink, WebhookSinkConfig};
use ferry_core::arrow_array::RecordBatch;
use ferry_core::arrow_schema::SchemaRef;
use ferry_core::values::{to_json, BatchBuilder};
use ferry_core::{ConfigNode, FerryType, Result, Sink, Source};
use ferry_testkit::{self as testkit, SinkFixture, SourceFixture};
use serde_json::Value;

struct Fix {
    api: Api,
}

fn rows(batch: &RecordBatch) -> Vec<Value> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|r| {
            let mut m = serde_json::Map::new();
            for (i, f) in schema.fields().iter().enumerate() {
                let ty = FerryType::of(f).unwrap();
                m.insert(f.name().clone(), to_json(batch.column(i).as_ref(), ty, r));
            }
            Value::Object(m)
        })
        .collect()
}

fn source_for(url: &str, stream: &str, batch: &RecordBatch) -> Arc<dyn Source> {
    // types JSON cannot tell apart are declared, as a user would in `columns`
    let columns: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .filter_map(|f| match FerryType::of(f)? {
            t @ (FerryType::Decimal { .. } | FerryType::Binary | FerryType::Json) => {
                Some(format!("{} = \"{t}\"", f.name()))
            }
            _ => None,
        })
        .collect();
    let text = format!(
        "base_url = \"{url}\"\nretry = {{ attempts = 2, initial_backoff_ms = 10 }}\nconnect_timeout_secs = 2\n\
         [[streams]]\nname = \"{stream}\"\npath = \"/kit/{stream}\"\nrecords = \"rows\"\nprimary_key = [\"id\"]\n\
         cursor_field = \"id\"\ncursor_param = \"since_id\"\nsorted_by_cursor = true\n\
         pagination = {{ type = \"page\" }}\ncolumns = {{ {} }}\n",
        columns.join(", ")
    );
    let cfg: HttpSourceConfig = ConfigNode::from_toml(&text, ".").unwrap().parse().unwrap();
    Arc::new(HttpSource::new(cfg).unwrap())
}

#[async_trait]
impl SourceFixture for Fix {
    async fn create(&self, stream: &str, batch: &RecordBatch) -> Result<Arc<dyn Source>> {
        self.api
            .state
            .kit
            .lock()
            .unwrap()
            .insert(stream.to_string(), rows(batch));
        Ok(source_for(&self.api.url, stream, batch))
    }

    async fn append(&self, stream: &str, batch: &RecordBatch) -> Result<()> {
        self.api
            .state
            .kit
            .lock()
            .unwrap()
            .entry(stream.to_string())
            .or_default()
            .extend(rows(batch));
        Ok(())
    }

    fn broken(&self) -> Option<Arc<dyn Source>> {
        // a port nothing listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        Some(source_for(&url, "x", &testkit::simple_batch(1, 1, "x")))
    }
}

#[tokio::test]
async fn source_passes_the_conformance_kit() {
    let api = start().await;
    testkit::run_source_suite(&Fix { api }).await;
}

const HOOK_SECRET: &str = "kit-webhook-secret";

#[async_trait]
impl SinkFixture for Fix {
    fn sink(&self) -> Arc<dyn Sink> {
        let text = format!(
            "url = \"{}/hook/{{stream}}\"\nsecret = \"{HOOK_SECRET}\"\nbatch_size = 3\n",
            self.api.url
        );
        let cfg: WebhookSinkConfig = ConfigNode::from_toml(&text, ".").unwrap().parse().unwrap();
        Arc::new(WebhookSink::new(cfg).unwrap())
    }

    async fn read_back(&self, stream: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let rows = self
            .api
            .state
            .hooks
            .lock()
            .unwrap()
            .rows
            .get(stream)
            .cloned()
            .unwrap_or_default();
        let mut b = BatchBuilder::new(schema.clone(), rows.len())?;
        for r in &rows {
            b.push_json_row(r.as_object().unwrap())
                .map_err(|e| ferry_core::Error::data(format!("{}: {}", e.name, e.message)))?;
        }
        Ok(vec![b.finish()?])
    }
}

#[tokio::test]
async fn sink_passes_the_conformance_kit() {
    let api = start().await;
    api.state.hooks.lock().unwrap().secret = HOOK_SECRET.into();
    let fix = Fix { api };
    testkit::run_sink_suite(&fix).await;
    assert_eq!(fix.api.state.hooks.lock().unwrap().bad_signatures, 0);
}
