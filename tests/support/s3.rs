//! The kit's S3 test server for the root tests: `s3s-fs` like S3 (with ListMultipartUploads,
//! each request run to its end) on a runtime of its own, with blocking object methods.

#![allow(dead_code, unused_imports)]

pub use ferry_testkit::s3_server::{BlockingS3Server as Server, ACCESS_KEY, SECRET_KEY};
