//! A real S3-compatible server for the tests: `s3s-fs` serving a temporary folder on a
//! free loopback port, in this process, with one known access key (so wrong credentials
//! are refused as by AWS). Buckets are folders under the root.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use ferry_core::config::ConnectorConfig;
use ferry_core::{ConfigNode, Registry, Result, Sink, Source};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "ferry-test-access-key";
pub const SECRET_KEY: &str = "ferry-test-secret-key-0123456789";

/// A running server.
pub struct Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    pub client: Client,
}

impl Server {
    /// Starts a server (on the current tokio runtime) with one empty bucket per name.
    pub async fn start(buckets: &[&str]) -> Server {
        let root = tempfile::tempdir().expect("temp dir");
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).expect("bucket folder");
        }
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs starts");
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
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
        let endpoint = format!("http://{addr}");
        let client = client(&endpoint, ACCESS_KEY, SECRET_KEY);
        Server {
            endpoint,
            root,
            client,
        }
    }

    /// The connection lines of a source or destination config for `bucket`.
    pub fn toml(&self, bucket: &str) -> String {
        format!(
            "bucket = \"{bucket}\"\nendpoint = \"{}\"\nforce_path_style = true\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint
        )
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
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
            let p =
                p.unwrap_or_else(|e| panic!("list: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
            out.extend(
                p.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        out
    }

    /// Multipart uploads still open (s3s-fs keeps them as `.upload-*` files in its root;
    /// it has no ListMultipartUploads).
    pub fn open_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .expect("root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }
}

/// A plain client of the test server (to set up and inspect objects).
pub fn client(endpoint: &str, key: &str, secret: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
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

pub fn registry() -> Registry {
    let mut r = Registry::new();
    ferry_connector_s3::register(&mut r);
    r
}

pub fn node(toml: &str, base: &Path) -> Result<ConnectorConfig> {
    Ok(ConnectorConfig {
        kind: "s3".into(),
        kind_offset: 0,
        node: ConfigNode::from_toml(toml, base)?,
    })
}

pub fn source(toml: &str) -> Result<Arc<dyn Source>> {
    registry().build_source(&node(toml, Path::new("."))?)
}

pub fn sink(toml: &str) -> Result<Arc<dyn Sink>> {
    registry().build_sink(&node(toml, Path::new("."))?)
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/self/status")
}
