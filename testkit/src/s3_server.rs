//! A real S3-compatible server for tests and examples: `s3s-fs` serving a folder on a free
//! loopback port, in this process, with one known access key (so wrong credentials are
//! refused as by AWS). Buckets are folders under the root.
//!
//! [`S3Server::start`] serves plain `s3s-fs` on the caller's tokio runtime;
//! [`S3ServerBuilder::like_s3`] adds what `s3s-fs` lacks and S3 does (below);
//! [`S3ServerBuilder::start_blocking`] gives a server on a runtime of its own, with
//! blocking methods, for tests that are not async.
//!
//! `s3s-fs` has no ListMultipartUploads; the `like_s3` server adds it, answered from the
//! files `s3s-fs` itself keeps for each open upload
//! (`.bucket-<b64>.object-<b64>.upload-<id>.metadata.json`, `.upload-<id>.json`, parts
//! `.upload_id-<id>.part-<n>`), so the S3 sink's clean-up of a killed run can find an upload
//! whose id the run never journaled, as on AWS or MinIO.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Request, S3Response, S3Result, S3};

/// The access key the server accepts (unless [`S3ServerBuilder::credentials`] sets another).
pub const ACCESS_KEY: &str = "ferry-test-access-key";
/// The secret key the server accepts (unless [`S3ServerBuilder::credentials`] sets another).
pub const SECRET_KEY: &str = "ferry-test-secret-key-0123456789";

/// How to start an [`S3Server`].
pub struct S3ServerBuilder {
    buckets: Vec<String>,
    root: Option<PathBuf>,
    access_key: String,
    secret_key: String,
    like_s3: bool,
}

impl S3ServerBuilder {
    /// Serves `root` (created if missing, kept afterwards) instead of a fresh temp folder.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Accepts this access key and secret instead of [`ACCESS_KEY`] and [`SECRET_KEY`].
    pub fn credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        self.access_key = access_key.into();
        self.secret_key = secret_key.into();
        self
    }

    /// Answers ListMultipartUploads, and runs each request to its end even when its client
    /// goes, as S3 does.
    pub fn like_s3(mut self) -> Self {
        self.like_s3 = true;
        self
    }

    /// Starts the server on the current tokio runtime; it serves until the runtime ends.
    pub async fn start(self) -> S3Server {
        let temp = match self.root {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("temp dir")),
        };
        let root = match (&self.root, &temp) {
            (Some(r), _) => r.clone(),
            (None, Some(t)) => t.path().to_path_buf(),
            (None, None) => unreachable!("a root or a temp folder"),
        };
        for b in &self.buckets {
            std::fs::create_dir_all(root.join(b)).expect("bucket folder");
        }
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs starts");
        let auth = SimpleAuth::from_single(self.access_key.as_str(), self.secret_key.as_str());
        let service = if self.like_s3 {
            let mut b = S3ServiceBuilder::new(LikeS3 {
                fs: Arc::new(fs),
                root: root.clone(),
                parts: Default::default(),
            });
            b.set_auth(auth);
            b.build()
        } else {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(auth);
            b.build()
        };
        let endpoint = serve(service).await;
        let client = client(&endpoint, &self.access_key, &self.secret_key);
        S3Server {
            endpoint,
            root,
            client,
            _temp: temp,
        }
    }

    /// Starts the server on a runtime of its own (two worker threads), for tests that are
    /// not async; it serves until the returned server is dropped.
    pub fn start_blocking(self) -> BlockingS3Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(self.start());
        BlockingS3Server { server, rt }
    }
}

/// Accepts connections on a free loopback port and serves each; returns the endpoint.
async fn serve(service: S3Service) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
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
    format!("http://{addr}")
}

/// A running server.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The folder served: one subfolder per bucket.
    pub root: PathBuf,
    /// A plain client of the server (to set up and inspect objects).
    pub client: Client,
    _temp: Option<tempfile::TempDir>,
}

impl S3Server {
    /// Starts plain `s3s-fs` over a fresh temp folder, on the current tokio runtime, with
    /// one empty bucket per name.
    pub async fn start(buckets: &[&str]) -> S3Server {
        S3Server::builder(buckets).start().await
    }

    /// A server with one empty bucket per name, to configure before starting.
    pub fn builder(buckets: &[&str]) -> S3ServerBuilder {
        S3ServerBuilder {
            buckets: buckets.iter().map(|b| b.to_string()).collect(),
            root: None,
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            like_s3: false,
        }
    }

    /// The connection lines of an `s3` source or destination config for `bucket`
    /// (with the default credentials).
    pub fn toml(&self, bucket: &str) -> String {
        format!(
            "bucket = \"{bucket}\"\nendpoint = \"{}\"\nforce_path_style = true\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint
        )
    }

    /// Stores `body` at `key`.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {}", DisplayErrorContext(e)));
    }

    /// The bytes at `key`.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {}", DisplayErrorContext(e)));
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Deletes the object at `key`.
    pub async fn delete(&self, bucket: &str, key: &str) {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {}", DisplayErrorContext(e)));
    }

    /// Every key under `prefix`, in order.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(p) = pages.next().await {
            let p = p.unwrap_or_else(|e| panic!("list: {}", DisplayErrorContext(e)));
            out.extend(
                p.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        out
    }

    /// Fails the test when a multipart upload is still open (see [`S3Server::open_uploads`]).
    pub fn assert_no_open_uploads(&self) {
        let open = self.open_uploads();
        assert!(open.is_empty(), "multipart uploads left open: {open:?}");
    }

    /// The upload records and parts of multipart uploads still open (`s3s-fs` keeps them
    /// as `.upload*` files in its root).
    pub fn open_uploads(&self) -> Vec<String> {
        self.root_files()
            .into_iter()
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }

    /// Every file of multipart uploads still open: [`S3Server::open_uploads`] and the
    /// uploads' metadata.
    pub fn open_upload_files(&self) -> Vec<String> {
        self.root_files()
            .into_iter()
            .filter(|n| n.contains(".upload"))
            .collect()
    }

    fn root_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .expect("root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// A server on a runtime of its own, whose object methods block (for tests that are not
/// async). It derefs to the [`S3Server`] for everything else.
pub struct BlockingS3Server {
    server: S3Server,
    rt: tokio::runtime::Runtime,
}

impl BlockingS3Server {
    /// Starts a server like S3 ([`S3ServerBuilder::like_s3`]) with one empty bucket per name.
    pub fn start(buckets: &[&str]) -> BlockingS3Server {
        S3Server::builder(buckets).like_s3().start_blocking()
    }

    /// Stores `body` at `key`.
    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.rt.block_on(self.server.put(bucket, key, body))
    }

    /// The bytes at `key`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.rt.block_on(self.server.get(bucket, key))
    }

    /// Deletes the object at `key`.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.rt.block_on(self.server.delete(bucket, key))
    }

    /// Every key under `prefix`, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.rt.block_on(self.server.keys(bucket, prefix))
    }
}

impl std::ops::Deref for BlockingS3Server {
    type Target = S3Server;
    fn deref(&self) -> &S3Server {
        &self.server
    }
}

/// A plain client of a test server.
pub fn client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
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

/// `s3s-fs`, plus ListMultipartUploads, with each request run to its end as S3 does.
///
/// `s3s-fs` works in several steps (CompleteMultipartUpload drops the upload's record, then
/// moves its parts one by one), and the HTTP server drops a request's work when its client
/// goes: a client killed mid-request would leave parts no request can reach, which S3 never
/// does. So each request runs on its own task, to the end, and an abort waits for the
/// parts being written (S3 frees the parts of an aborted upload itself).
struct LikeS3 {
    fs: Arc<s3s_fs::FileSystem>,
    root: PathBuf,
    parts: Arc<tokio::sync::RwLock<()>>,
}

/// Runs `work` on its own task, so a client that goes does not cut it short.
async fn to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = S3Result<T>> + Send + 'static,
) -> S3Result<T> {
    tokio::spawn(work).await.expect("the S3 handler panicked")
}

macro_rules! like_s3 {
    ($($op:ident: $input:ident => $output:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl S3 for LikeS3 {
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

like_s3! {
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
