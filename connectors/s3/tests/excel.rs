//! Workbooks and archives as S3 objects: a workbook read through ranged GETs (its index is
//! inside), a zip through ranged GETs, a tar.gz streamed, each entry named
//! `s3://bucket/drop.zip!entry.csv`; fixtures by independent writers (XlsxWriter, Python's
//! zipfile and tarfile).

mod common;

use common::{source, Server};
use ferry_core::{Message, ReadRequest};
use ferry_testkit::python::{run_python, workbooks};
use ferry_testkit::{messages, rows};
use serde_json::json;

const BUCKET: &str = "drops";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbooks_zips_and_tar_gz_objects_are_read() {
    let dir = tempfile::tempdir().unwrap();
    workbooks(dir.path());
    run_python(
        r#"
import io, sys, tarfile, zipfile
out = sys.argv[1]
with zipfile.ZipFile(f"{out}/drop.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.csv", "id,city\n1,Genève\n")
    z.writestr("b.csv", "id,city\n2,Zürich\n")
with tarfile.open(f"{out}/drop.tar.gz", "w:gz") as t:
    for name, text in [("a.csv", "id,city\n1,Genève\n"), ("b.csv", "id,city\n2,Zürich\n")]:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
"#,
        &[dir.path().to_str().unwrap()],
        &[],
    );
    let server = Server::start(&[BUCKET]).await;
    for name in ["orders.xlsx", "drop.zip", "drop.tar.gz"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        server.put(BUCKET, &format!("in/{name}"), bytes).await;
    }
    let toml = format!(
        "{}streams = [{{ name = \"q2\", path = \"in/orders.xlsx\", sheet = \"Q2\" }}, {{ name = \"z\", path = \"in/drop.zip\" }}, {{ name = \"t\", path = \"in/drop.tar.gz\" }}]\nfile_column = \"_file\"\n",
        server.toml(BUCKET)
    );
    let src = source(&toml).unwrap();
    src.check().await.unwrap();
    src.discover().await.unwrap();
    for (stream, object, entries) in [
        ("q2", "in/orders.xlsx", ["", ""]),
        ("z", "in/drop.zip", ["!a.csv", "!b.csv"]),
        ("t", "in/drop.tar.gz", ["!a.csv", "!b.csv"]),
    ] {
        let batches: Vec<_> = messages(&*src, ReadRequest::full(stream))
            .await
            .into_iter()
            .filter_map(|m| match m {
                Message::Batch(b) => Some(b),
                _ => None,
            })
            .collect();
        let got = rows(&batches);
        let cities: Vec<_> = got.iter().map(|r| r["city"].clone()).collect();
        assert_eq!(cities, [json!("Genève"), json!("Zürich")], "{stream}");
        let files: Vec<_> = got.iter().map(|r| r["_file"].clone()).collect();
        let want: Vec<_> = entries
            .iter()
            .map(|e| json!(format!("s3://{BUCKET}/{object}{e}")))
            .collect();
        assert_eq!(files, want, "{stream}");
    }
}
