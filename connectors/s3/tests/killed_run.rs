//! A run killed mid-upload (here: a writer dropped without `close` or `abort`, which is
//! all a SIGKILLed process leaves) is cleaned up by the next open of the stream: its open
//! multipart upload is aborted and the objects it completed are deleted, as its journal
//! names them. `s3s-fs` has no ListMultipartUploads, so this is the journal's own path.
//! The whole `ferry sync` under SIGKILL is in the root's `tests/crash.rs`.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{sink_at, Server};
use ferry_core::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use ferry_core::arrow_schema::{DataType, Field, Schema};
use ferry_core::{Sink, WriteMode, WriteRequest};

const BUCKET: &str = "killed";

/// `n` rows of about 200 bytes of CSV each, ids from `from`.
fn batch(from: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(
        (from..from + n).map(|i| format!("{i:0>200}")),
    ));
    RecordBatch::try_new(schema, vec![ids, text]).unwrap()
}

fn sink(server: &Server, base: &Path) -> Arc<dyn Sink> {
    let toml = format!(
        "{}key_template = \"{{stream}}/{{run_id}}-{{n}}.{{ext}}\"\nmax_object_rows = 30000\npart_size = 5242880\n",
        server.toml(BUCKET)
    );
    sink_at(&toml, base).unwrap()
}

fn request(run: &str, batch: &RecordBatch, mode: WriteMode) -> WriteRequest {
    WriteRequest {
        stream: "s".into(),
        schema: batch.schema(),
        mode,
        run_id: run.into(),
        deletes: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_open_cleans_up_after_a_killed_run() {
    for mode in [WriteMode::Append, WriteMode::Overwrite] {
        let server = Server::start(&[BUCKET]).await;
        let folder = tempfile::tempdir().unwrap();
        let journals = folder.path().join(".ferry/s3-uploads");

        // run 1 completes one object (30,000 rows, 6 MB: two parts) and is killed once the
        // first part of the next is uploaded
        let snk = sink(&server, folder.path());
        let mut w = snk.open(request("r1", &batch(0, 1), mode)).await.unwrap();
        w.write(batch(0, 30_000)).await.unwrap();
        w.write(batch(30_000, 27_000)).await.unwrap();
        drop(w);
        // the part in flight when the writer went lands on its own: wait for it
        for _ in 0..400 {
            if server.open_uploads().iter().any(|n| n.contains(".part-")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(
            server.keys(BUCKET, "s/").await,
            vec!["s/r1-0001.csv".to_string()],
            "{mode:?}"
        );
        assert!(
            !server.open_uploads().is_empty(),
            "{mode:?}: an upload is open"
        );
        let journal: Vec<_> = std::fs::read_dir(&journals)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(journal.len(), 1, "{mode:?}: one journal: {journal:?}");
        // a journal write the kill interrupted leaves a temp file beside it
        let temp = journals.join(format!(".{}.4242.tmp", journal[0]));
        std::fs::write(&temp, b"{\"vers").unwrap();

        // run 2 opens the stream: run 1's upload is aborted, its object deleted
        let snk = sink(&server, folder.path());
        let mut w = snk.open(request("r2", &batch(0, 1), mode)).await.unwrap();
        assert!(
            server.open_uploads().is_empty(),
            "{mode:?}: left open: {:?}",
            server.open_uploads()
        );
        assert!(
            !temp.exists(),
            "{mode:?}: the interrupted write's temp file is gone"
        );
        assert!(
            server.keys(BUCKET, "s/").await.is_empty(),
            "{mode:?}: {:?}",
            server.keys(BUCKET, "s/").await
        );
        w.write(batch(0, 10)).await.unwrap();
        let summary = w.close().await.unwrap();
        assert_eq!(summary.rows, 10, "{mode:?}");
        assert_eq!(
            server.keys(BUCKET, "s/").await,
            vec!["s/r2-0001.csv".to_string()],
            "{mode:?}"
        );
        // closed: nothing in flight, the journal and its folders are gone
        assert!(!folder.path().join(".ferry").exists(), "{mode:?}");
    }
}
