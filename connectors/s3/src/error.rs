//! S3 errors to Ferry's [`ErrorKind`]s, in one place (as OpenDAL's `parse_error` does for
//! its S3 service).
//!
//! The kind decides retries and the CLI's hint; the message names the bucket, the key and
//! the permission the request needed, so a person can fix a policy without reading logs.
//! Credentials never appear: SDK errors do not print them, and neither does this module.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use ferry_core::{Error, ErrorKind};

/// What was being done, for the message and the permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// ListObjectsV2.
    List,
    /// GetObject / HeadObject.
    Get,
    /// PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload.
    Put,
    /// DeleteObject(s).
    Delete,
    /// AbortMultipartUpload.
    Abort,
}

impl Op {
    fn what(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Get => "read",
            Op::Put => "write",
            Op::Delete => "delete",
            Op::Abort => "abort the upload of",
        }
    }

    /// The IAM action the request needs.
    fn permission(self) -> &'static str {
        match self {
            Op::List => "s3:ListBucket",
            Op::Get => "s3:GetObject",
            Op::Put => "s3:PutObject",
            Op::Delete => "s3:DeleteObject",
            Op::Abort => "s3:AbortMultipartUpload",
        }
    }
}

/// Where: the bucket and maybe a key or prefix.
pub(crate) struct At<'a> {
    pub bucket: &'a str,
    pub key: Option<&'a str>,
}

impl<'a> At<'a> {
    /// An object.
    pub fn object(bucket: &'a str, key: &'a str) -> Self {
        At {
            bucket,
            key: Some(key),
        }
    }

    fn target(&self) -> String {
        match self.key {
            Some(k) => format!("s3://{}/{k}", self.bucket),
            None => format!("bucket `{}`", self.bucket),
        }
    }
}

/// Maps a failed SDK call.
pub(crate) fn map<E, R>(err: SdkError<E, R>, op: Op, at: At<'_>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let chain = DisplayErrorContext(&err).to_string();
    let e = match &err {
        SdkError::ServiceError(s) => {
            let status = s.raw().status();
            service(s.err().code(), s.err().message(), status, op, &at)
        }
        // the SDK's account of each place it looked (IMDS token errors …) is a screen long:
        // one line says where, the full chain is in the debug log (-vv)
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_)
            if no_credentials(&chain) =>
        {
            tracing::debug!("AWS credential chain for {}: {chain}", at.target());
            Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "no AWS credentials found for {}; Ferry looked in {WHERE}",
                    at.target()
                ),
            )
        }
        SdkError::TimeoutError(_) => Error::new(
            ErrorKind::Unreachable,
            format!(
                "S3 did not answer in time while trying to {} {}",
                op.what(),
                at.target()
            ),
        ),
        SdkError::DispatchFailure(d) if d.is_user() => Error::new(
            ErrorKind::ConfigInvalid,
            format!("the request to {} could not be sent: {chain}", at.target()),
        ),
        SdkError::DispatchFailure(_) => Error::new(
            ErrorKind::Unreachable,
            format!(
                "cannot reach S3 for {}: {chain} (check `endpoint`, `region` and the network)",
                at.target()
            ),
        ),
        SdkError::ResponseError(_) => Error::new(
            ErrorKind::Temporary,
            format!(
                "S3's answer for {} was cut off or unreadable: {chain}",
                at.target()
            ),
        ),
        SdkError::ConstructionFailure(_) => Error::new(
            ErrorKind::ConfigInvalid,
            format!("the request to {} could not be built: {chain}", at.target()),
        ),
        _ => Error::new(
            ErrorKind::Internal,
            format!("S3 request for {} failed: {chain}", at.target()),
        ),
    };
    let e = e.with("bucket", at.bucket);
    match at.key {
        Some(k) => e.with("key", k),
        None => e,
    }
}

/// Where the S3 connector looks for credentials, in order.
pub(crate) const WHERE: &str = "the config (`access_key_id`, `secret_access_key`), then the AWS default chain: \
     the environment (AWS_ACCESS_KEY_ID), the profile (AWS_PROFILE, ~/.aws/credentials, ~/.aws/config), \
     web identity, ECS and the EC2 instance metadata service";

/// Whether the failure is that no credentials could be loaded (not a refused request).
fn no_credentials(chain: &str) -> bool {
    let c = chain.to_ascii_lowercase();
    c.contains("credential") || c.contains("identity")
}

/// Response status, for the raw responses of the SDK.
pub(crate) trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// An error answer of S3, by its code (or, for HEAD requests without a body, its status).
fn service(code: Option<&str>, message: Option<&str>, status: u16, op: Op, at: &At<'_>) -> Error {
    let target = at.target();
    let bucket = at.bucket;
    let said = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => format!("HTTP {status}"),
    };
    let code = code.unwrap_or("");
    let (kind, msg) = match (code, status) {
        ("NoSuchBucket", _) => (
            ErrorKind::NotFound,
            format!("bucket `{bucket}` does not exist (check `bucket`, and `endpoint` for S3-compatible stores)"),
        ),
        ("NoSuchKey", _) | ("", 404) | ("NotFound", _) => {
            (ErrorKind::NotFound, format!("{target} does not exist"))
        }
        ("NoSuchUpload", _) => (
            ErrorKind::NotFound,
            format!("the multipart upload of {target} no longer exists (aborted elsewhere, or removed by a lifecycle rule)"),
        ),
        (
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"
            | "TokenRefreshRequired" | "InvalidClientTokenId" | "InvalidSecurity",
            _,
        ) => (
            ErrorKind::AuthFailed,
            format!("S3 refused the credentials for bucket `{bucket}` ({said}): check `access_key_id`, `secret_access_key` and `session_token`, or the default credential chain"),
        ),
        ("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException", _) | ("", 301) => (
            ErrorKind::ConfigInvalid,
            format!("bucket `{bucket}` is not in the configured region ({said}): set `region` to the bucket's region"),
        ),
        ("AccessDenied" | "AllAccessDisabled" | "AccountProblem", _) | ("", 403) => (
            ErrorKind::PermissionDenied,
            format!(
                "access denied: cannot {} {target} ({said}); the credentials need `{}` on it",
                op.what(),
                op.permission()
            ),
        ),
        ("SlowDown" | "TooManyRequests" | "RequestLimitExceeded", _) | (_, 429) | (_, 503) => (
            ErrorKind::RateLimited,
            format!("S3 asked to slow down while trying to {} {target} ({said})", op.what()),
        ),
        ("PreconditionFailed", _) | (_, 412) => (
            ErrorKind::Temporary,
            format!("{target} changed while it was being read; run again to read the new version"),
        ),
        ("InternalError" | "RequestTimeout" | "ServiceUnavailable", _) | (_, 500..=599) if status != 501 => (
            ErrorKind::Temporary,
            format!("S3 failed to {} {target} ({said}); the failure looked temporary", op.what()),
        ),
        ("NotImplemented", _) | (_, 501) => (
            ErrorKind::Unsupported,
            format!("the store does not support a request needed to {} {target} ({said})", op.what()),
        ),
        (c, _) if c.starts_with("KMS") => (
            ErrorKind::ConfigInvalid,
            format!("the KMS key refused to {} {target} ({said}): check `sse_kms_key_id` and the key's policy", op.what()),
        ),
        ("EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "MalformedXML", _) => (
            ErrorKind::Internal,
            format!("S3 refused the upload of {target} ({said})"),
        ),
        (_, 400..=499) => (
            ErrorKind::ConfigInvalid,
            format!("S3 refused to {} {target} ({said})", op.what()),
        ),
        _ => (
            ErrorKind::Internal,
            format!("unexpected answer of S3 while trying to {} {target} ({said})", op.what()),
        ),
    };
    Error::new(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: Option<&str>, status: u16, op: Op) -> (ErrorKind, String) {
        let e = service(
            code,
            Some("msg"),
            status,
            op,
            &At {
                bucket: "b",
                key: Some("k"),
            },
        );
        (e.kind(), e.to_string())
    }

    #[test]
    fn codes_map_to_kinds() {
        use ErrorKind::*;
        for (code, status, op, want) in [
            (Some("NoSuchBucket"), 404, Op::List, NotFound),
            (None, 404, Op::Get, NotFound),
            (Some("InvalidAccessKeyId"), 403, Op::List, AuthFailed),
            (Some("SignatureDoesNotMatch"), 403, Op::Put, AuthFailed),
            (Some("AccessDenied"), 403, Op::Put, PermissionDenied),
            (None, 403, Op::Get, PermissionDenied),
            (Some("SlowDown"), 503, Op::Get, RateLimited),
            (Some("InternalError"), 500, Op::Get, Temporary),
            (Some("NotImplemented"), 501, Op::Get, Unsupported),
            (Some("PermanentRedirect"), 301, Op::List, ConfigInvalid),
            (Some("KMS.NotFoundException"), 400, Op::Put, ConfigInvalid),
            (Some("InvalidArgument"), 400, Op::Put, ConfigInvalid),
        ] {
            assert_eq!(kind(code, status, op).0, want, "{code:?} {status} {op:?}");
        }
        let (_, m) = kind(Some("AccessDenied"), 403, Op::Put);
        assert!(m.contains("s3:PutObject"), "{m}");
    }
}
