//! A 200 MB object is read in constant memory: peak RSS of the whole process (server
//! included) stays under 150 MB. In its own test binary, so the process is fresh.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{peak_rss, source, Server};
use ferry_core::{Message, ReadRequest};
use futures::StreamExt;

const BUCKET: &str = "big";
const TARGET: usize = 200 << 20;
const PART: usize = 8 << 20;

/// Uploads a CSV object of about `TARGET` bytes, one generated part at a time. Returns its
/// row count.
async fn upload(server: &Server, key: &str) -> u64 {
    let c = &server.client;
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    let payload = "p".repeat(1000);
    let (mut rows, mut total, mut parts) = (0u64, 0usize, Vec::new());
    let mut part = b"id,payload\n".to_vec();
    while total < TARGET {
        while part.len() < PART {
            part.extend_from_slice(format!("{rows},{payload}\n").as_bytes());
            rows += 1;
        }
        total += part.len();
        let n = parts.len() as i32 + 1;
        let out = c
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(std::mem::take(&mut part)))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag)
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_object_streams_in_constant_memory() {
    let server = Server::start(&[BUCKET]).await;
    let rows = upload(&server, "huge/data.csv").await;
    let head = server
        .client
        .head_object()
        .bucket(BUCKET)
        .key("huge/data.csv")
        .send()
        .await
        .unwrap();
    assert!(head.content_length.unwrap() as usize >= TARGET);

    let src = source(&format!("{}path = \"huge/*.csv\"", server.toml(BUCKET))).unwrap();
    src.discover().await.unwrap();
    let mut stream = src.read(ReadRequest::full("huge")).await.unwrap();
    let mut got = 0u64;
    while let Some(m) = stream.next().await {
        match m.unwrap() {
            Message::Batch(b) => got += b.num_rows() as u64,
            Message::Rejected(r) => panic!("rejected at {}: {}", r.position, r.message),
            _ => {}
        }
    }
    assert_eq!(got, rows, "every row read once");
    let peak = peak_rss();
    eprintln!("200 MB object: {rows} rows, peak RSS {} MB", peak >> 20);
    assert!(
        peak < 150 << 20,
        "peak RSS {} MB is over 150 MB",
        peak >> 20
    );
}
