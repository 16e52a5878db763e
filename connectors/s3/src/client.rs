//! The S3 client: credentials, region, endpoint, and one lazily built client per source
//! or destination.
//!
//! HTTPS is rustls with `ring` (no OpenSSL, no aws-lc); certificates come from the
//! system's store. Checksums are sent and checked only where S3 requires them, which is
//! what S3-compatible stores (MinIO, Ceph, R2, GCS) accept; every request body is still
//! signed with SigV4, and the SHA-256 of every written object is in the receipt.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, StalledStreamProtectionConfig,
};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use ferry_core::{Error, Result, Secret};
use tokio::sync::OnceCell;

/// How long requests may take and how often they are tried: what stops a hung
/// connection (a half-open socket, a stalled network path) from stopping a sync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timeouts {
    /// A TCP/TLS connection.
    pub connect: Duration,
    /// From a request's start to the first byte of the answer.
    pub read: Duration,
    /// An upload or download moving no data (the SDK's stalled-stream protection).
    pub stall: Duration,
    /// Attempts per request (the SDK's standard retries, with backoff).
    pub attempts: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(120),
            stall: Duration::from_secs(20),
            attempts: 3,
        }
    }
}

impl Timeouts {
    /// The `*_timeout_secs` and `max_attempts` fields, defaults where unset.
    pub(crate) fn from_fields(
        connect: Option<f64>,
        read: Option<f64>,
        stall: Option<f64>,
        attempts: Option<u32>,
    ) -> Result<Self> {
        let d = Timeouts::default();
        let secs = |v: Option<f64>, field: &str, default: Duration| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(v) if v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
                Some(v) => Err(Error::config(format!(
                    "`{field}` is {v}; give seconds above 0 and at most 86400"
                ))),
            }
        };
        let attempts = attempts.unwrap_or(d.attempts);
        if !(1..=10).contains(&attempts) {
            return Err(Error::config(format!(
                "`max_attempts` is {attempts}; give 1 (no retries) to 10"
            )));
        }
        Ok(Timeouts {
            connect: secs(connect, "connect_timeout_secs", d.connect)?,
            read: secs(read, "read_timeout_secs", d.read)?,
            stall: secs(stall, "stall_timeout_secs", d.stall)?,
            attempts,
        })
    }
}

/// Where and as whom to connect (validated, not yet connected).
#[derive(Clone)]
pub(crate) struct Connection {
    pub bucket: String,
    region: Option<String>,
    endpoint: Option<String>,
    force_path_style: bool,
    keys: Option<(Secret, Secret, Option<Secret>)>,
    assume_role_arn: Option<String>,
    timeouts: Timeouts,
    /// The client, built on first use.
    client: Arc<OnceCell<Client>>,
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        bucket: &str,
        region: Option<String>,
        endpoint: Option<String>,
        force_path_style: bool,
        access_key_id: Option<Secret>,
        secret_access_key: Option<Secret>,
        session_token: Option<Secret>,
        assume_role_arn: Option<String>,
        timeouts: Timeouts,
    ) -> Result<Self> {
        let bucket = bucket.trim();
        if bucket.is_empty() {
            return Err(Error::config("`bucket` is empty"));
        }
        if bucket.contains('/') || bucket.starts_with("s3:") {
            return Err(Error::config(format!(
                "`bucket = \"{bucket}\"` must be a bucket name only: put the folder in `prefix`"
            )));
        }
        let keys = match (access_key_id, secret_access_key, session_token) {
            (None, None, None) => None,
            (Some(id), Some(key), token) => {
                if id.is_empty() || key.is_empty() {
                    return Err(Error::config(
                        "`access_key_id` or `secret_access_key` is empty (check the secret they refer to)",
                    ));
                }
                Some((id, key, token))
            }
            (None, None, Some(_)) => {
                return Err(Error::config(
                    "`session_token` needs `access_key_id` and `secret_access_key`",
                ))
            }
            _ => {
                return Err(Error::config(
                    "set both `access_key_id` and `secret_access_key`, or neither (then the AWS default credential chain is used)",
                ))
            }
        };
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::config(format!(
                    "`endpoint = \"{e}\"` must be a URL starting with https:// (or http://)"
                )));
            }
        }
        if let Some(arn) = &assume_role_arn {
            if !arn.starts_with("arn:") {
                return Err(Error::config(format!(
                    "`assume_role_arn = \"{arn}\"` is not an ARN (arn:aws:iam::<account>:role/<name>)"
                )));
            }
        }
        Ok(Connection {
            bucket: bucket.to_string(),
            region,
            endpoint,
            force_path_style,
            keys,
            assume_role_arn,
            timeouts,
            client: Arc::default(),
        })
    }

    /// The client, built on first use (reads the environment and profile files; assumes
    /// the role).
    pub(crate) async fn client(&self) -> Result<Client> {
        self.client.get_or_try_init(|| self.build()).await.cloned()
    }

    async fn build(&self) -> Result<Client> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let t = self.timeouts;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(t.connect)
            .read_timeout(t.read)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(t.attempts))
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(t.stall)
                    .build(),
            );
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some((id, key, token)) = &self.keys {
            let creds = Credentials::new(
                id.expose(),
                key.expose(),
                token.as_ref().map(|t| t.expose().to_string()),
                None,
                "ferry-config",
            );
            loader = loader.credentials_provider(creds);
        }
        let mut sdk = loader.load().await;
        if sdk.region().is_none() {
            if self.endpoint.is_none() {
                return Err(Error::config(
                    "no AWS region: set `region = \"…\"` (or AWS_REGION, or a region in the AWS profile)",
                ));
            }
            // S3-compatible stores ignore the region, but requests must be signed with one
            sdk = sdk.into_builder().region(Region::new("us-east-1")).build();
        }
        if let Some(arn) = &self.assume_role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn.clone())
                .session_name("ferry")
                .configure(&sdk)
                .build()
                .await;
            sdk = sdk
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(self.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(e) = &self.endpoint {
            conf = conf.endpoint_url(e.trim_end_matches('/'));
        }
        Ok(Client::from_conf(conf.build()))
    }

    /// `s3://bucket/key`, for messages and outputs.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("keys", &self.keys.as_ref().map(|_| "[redacted]"))
            .field("assume_role_arn", &self.assume_role_arn)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_default_and_refuse_nonsense() {
        let d = Timeouts::from_fields(None, None, None, None).unwrap();
        assert_eq!(d, Timeouts::default());
        assert_eq!(
            (d.read.as_secs(), d.stall.as_secs(), d.attempts),
            (120, 20, 3)
        );
        let t = Timeouts::from_fields(Some(1.5), Some(2.0), Some(3.0), Some(1)).unwrap();
        assert_eq!(t.connect.as_millis(), 1500);
        assert_eq!(t.attempts, 1);
        for (c, r, s, a) in [
            (Some(0.0), None, None, None),
            (None, Some(-1.0), None, None),
            (None, None, Some(f64::NAN), None),
            (None, None, None, Some(0)),
            (None, None, None, Some(11)),
        ] {
            let e = Timeouts::from_fields(c, r, s, a).unwrap_err();
            assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        }
    }
}
