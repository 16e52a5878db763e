//! A real S3-compatible server for the root tests: `s3s-fs` serving a temporary folder on a
//! free loopback port, on its own runtime thread, with one known access key.
//!
//! `s3s-fs` has no ListMultipartUploads; [`Fs`] adds it, answered from the files `s3s-fs`
//! itself keeps for each open upload (`.bucket-<b64>.object-<b64>.upload-<id>.metadata.json`,
//! `.upload-<id>.json`, parts `.upload_id-<id>.part-<n>`), so the S3 sink's clean-up of a
//! killed run can find an upload whose id the run never journaled, as on AWS or MinIO.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::Client;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Response, S3Result, S3};

pub const ACCESS_KEY: &str = "ferry-test-access-key";
pub const SECRET_KEY: &str = "ferry-test-secret-key-0123456789";

/// `s3s-fs`, plus ListMultipartUploads, with each request run to its end as S3 does.
///
/// `s3s-fs` works in several steps (CompleteMultipartUpload drops the upload's record, then
/// moves its parts one by one), and the HTTP server drops a request's work when its client
/// goes: a client killed mid-request would leave parts no request can reach, which S3 never
/// does. So each request runs on its own task, to the end, and an abort waits for the
/// parts being written (S3 frees the parts of an aborted upload itself).
struct Fs {
    fs: std::sync::Arc<s3s_fs::FileSystem>,
    root: PathBuf,
    parts: std::sync::Arc<tokio::sync::RwLock<()>>,
}

/// Runs `work` on its own task, so a client that goes does not cut it short.
async fn to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = S3Result<T>> + Send + 'static,
) -> S3Result<T> {
    tokio::spawn(work).await.expect("the S3 handler panicked")
}

macro_rules! fs_with_list_uploads {
    ($($op:ident: $input:ident => $output:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl S3 for Fs {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    let fs = self.fs.clone();
                    to_the_end(async move { S3::$op(&*fs, req).await }).await
                }
            )*

            async fn upload_part(
                &self,
                req: S3Request<UploadPartInput>,
            ) -> S3Result<S3Response<UploadPartOutput>> {
                let (fs, parts) = (self.fs.clone(), self.parts.clone());
                to_the_end(async move {
                    let _writing = parts.read_owned().await;
                    S3::upload_part(&*fs, req).await
                })
                .await
            }

            async fn abort_multipart_upload(
                &self,
                req: S3Request<AbortMultipartUploadInput>,
            ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
                let (fs, parts) = (self.fs.clone(), self.parts.clone());
                to_the_end(async move {
                    let _alone = parts.write_owned().await;
                    S3::abort_multipart_upload(&*fs, req).await
                })
                .await
            }

            async fn list_multipart_uploads(
                &self,
                req: S3Request<ListMultipartUploadsInput>,
            ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
                let input = req.input;
                let prefix = input.prefix.clone().unwrap_or_default();
                let uploads: Vec<MultipartUpload> = open_uploads_in(&self.root)
                    .into_iter()
                    .filter(|(b, k, _)| *b == input.bucket && k.starts_with(&prefix))
                    .map(|(_, key, id)| MultipartUpload {
                        key: Some(key),
                        upload_id: Some(id),
                        ..Default::default()
                    })
                    .collect();
                Ok(S3Response::new(ListMultipartUploadsOutput {
                    bucket: Some(input.bucket),
                    prefix: input.prefix,
                    is_truncated: Some(false),
                    uploads: Some(uploads),
                    ..Default::default()
                }))
            }
        }
    };
}

fs_with_list_uploads! {
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    get_object: GetObjectInput => GetObjectOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    list_parts: ListPartsInput => ListPartsOutput,
    put_object: PutObjectInput => PutObjectOutput,
}

/// `(bucket, key, upload id)` of every multipart upload `s3s-fs` keeps open in `root`.
fn open_uploads_in(root: &Path) -> Vec<(String, String, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decode = |s: &str| b64.decode(s).ok().and_then(|v| String::from_utf8(v).ok());
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(".bucket-")
            .and_then(|r| r.strip_suffix(".metadata.json"))
        else {
            continue;
        };
        let Some((bucket, rest)) = rest.split_once(".object-") else {
            continue;
        };
        let Some((key, id)) = rest.split_once(".upload-") else {
            continue;
        };
        if !root.join(format!(".upload-{id}.json")).exists() {
            continue;
        }
        if let (Some(bucket), Some(key)) = (decode(bucket), decode(key)) {
            out.push((bucket, key, id.to_string()));
        }
    }
    out
}

/// A running server; it stops with the process.
pub struct Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    pub client: Client,
    rt: tokio::runtime::Runtime,
}

impl Server {
    /// Starts a server with one empty bucket per name.
    pub fn start(buckets: &[&str]) -> Server {
        let root = tempfile::tempdir().expect("temp dir");
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).expect("bucket folder");
        }
        let fs = Fs {
            fs: std::sync::Arc::new(s3s_fs::FileSystem::new(root.path()).expect("s3s-fs starts")),
            root: root.path().to_path_buf(),
            parts: Default::default(),
        };
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("address");
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        let endpoint = format!("http://{addr}");
        let client = {
            let _guard = rt.enter();
            client(&endpoint)
        };
        Server {
            endpoint,
            root,
            client,
            rt,
        }
    }

    /// The connection lines of a destination config for `bucket`.
    pub fn toml(&self, bucket: &str) -> String {
        format!(
            "bucket = \"{bucket}\"\nendpoint = \"{}\"\nforce_path_style = true\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint
        )
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                });
            out.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec()
        })
    }

    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.rt.block_on(async {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from(body))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                });
        })
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.rt.block_on(async {
            self.client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "delete {key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                });
        })
    }

    /// Every key under `prefix`, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(p) = pages.next().await {
                let p = p.unwrap_or_else(|e| {
                    panic!("list: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                });
                out.extend(
                    p.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            out
        })
    }

    /// The files of multipart uploads still open (upload records, parts, their metadata).
    pub fn open_upload_files(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .expect("root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".upload"))
            .collect()
    }
}

/// A plain client of the test server (to inspect objects).
fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    Client::from_conf(conf)
}
