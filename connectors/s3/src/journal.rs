//! What a stream's writer has in flight, kept in a small local file so that the next run
//! can clean up after a run that was killed (SIGKILL, power loss) and so could not abort:
//! multipart uploads it never completed (S3 keeps their parts, and bills them, until they
//! are aborted) and objects it completed whose rows were never committed (their rows will
//! be read again, so an `append` would hold them twice).
//!
//! - One file per destination stream, `<folder>/<stream>-<hash of s3://bucket/prefix>.json`,
//!   always written whole (temp file, fsync, rename): a crash leaves the old or the new one.
//! - An object's key is journaled *before* its first request, its upload id as soon as S3
//!   names the multipart upload, and `completed` once it is visible.
//! - The file is removed when the stream closes (its objects then belong to the run, whose
//!   state is committed next) or aborts (which cleans up itself).
//! - [`recover`], on the next open of the stream, aborts each journaled upload (by id;
//!   without one, killed between CreateMultipartUpload and the journal write, the uploads of
//!   that exact key found by ListMultipartUploads, where the store offers it) and deletes
//!   each object the killed run completed. Keys hold the killed run's id, so nothing of
//!   another run is touched.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::Client;
use ferry_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::error::{map, At, Op};

/// Format version of the journal file.
const VERSION: u32 = 1;

/// The journal file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entries {
    pub version: u32,
    pub bucket: String,
    pub run_id: String,
    pub objects: Vec<Entry>,
}

/// One object of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub key: String,
    /// The multipart upload, once S3 started it (`None`: a single PutObject, or not yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Visible in the bucket.
    #[serde(default)]
    pub completed: bool,
}

/// The journal of one stream's writer.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    entries: Mutex<Entries>,
}

impl Journal {
    /// The journal of `stream` written to `url` (`s3://bucket/prefix`) under `folder`.
    pub(crate) fn new(folder: &Path, url: &str, stream: &str, bucket: &str, run_id: &str) -> Self {
        let hash = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
        let hash = ferry_formats::digest::hex(&hash.as_ref()[..8]);
        Journal {
            path: folder.join(format!("{stream}-{hash}.json")),
            entries: Mutex::new(Entries {
                version: VERSION,
                bucket: bucket.to_string(),
                run_id: run_id.to_string(),
                objects: Vec::new(),
            }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What a killed run left in this journal, if anything. Also removes the temp files of
    /// journal writes a kill interrupted (the journal itself is then the one before).
    pub(crate) fn leftover(&self) -> Result<Option<Entries>> {
        self.sweep_temps();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    e,
                    "cannot read the S3 upload journal",
                    &self.path,
                ))
            }
        };
        let entries: Entries = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("the S3 upload journal is not valid ({e}); look at the uploads it names, then delete it"),
            )
            .with("file", self.path.display())
        })?;
        if entries.version > VERSION {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the S3 upload journal has format version {}, this Ferry reads up to {VERSION}",
                    entries.version
                ),
            )
            .with("file", self.path.display()));
        }
        Ok(Some(entries))
    }

    /// `key` is about to be uploaded.
    pub(crate) fn started(&self, key: &str) -> Result<()> {
        self.update(|e| {
            e.objects.push(Entry {
                key: key.to_string(),
                upload_id: None,
                completed: false,
            })
        })
    }

    /// S3 started the multipart upload `upload_id` of `key`.
    pub(crate) fn named(&self, key: &str, upload_id: &str) -> Result<()> {
        self.update(|e| {
            if let Some(o) = e.objects.iter_mut().find(|o| o.key == key) {
                o.upload_id = Some(upload_id.to_string());
            }
        })
    }

    /// `key` is complete and visible.
    pub(crate) fn completed(&self, key: &str) -> Result<()> {
        self.update(|e| {
            if let Some(o) = e.objects.iter_mut().find(|o| o.key == key) {
                o.completed = true;
            }
        })
    }

    /// Nothing of this writer is in flight any more: the file goes (and its folder, when
    /// that is empty now).
    pub(crate) fn clear(&self) -> Result<()> {
        let mut e = self.lock();
        e.objects.clear();
        remove(&self.path)
    }

    /// Removes `.<journal name>.<pid>.tmp` files (what `write_atomic` leaves when killed).
    fn sweep_temps(&self) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && n.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn update(&self, change: impl FnOnce(&mut Entries)) -> Result<()> {
        let mut e = self.lock();
        change(&mut e);
        let bytes = serde_json::to_vec_pretty(&*e)?;
        ferry_core::atomic::write_atomic(&self.path, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Removes a journal file, then its folder if that is empty.
fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(e, "cannot remove the S3 upload journal", path)),
    }
    // the folder, and `.ferry` above it, when nothing else is there
    for dir in path.ancestors().skip(1).take(2) {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
    Ok(())
}

/// What [`recover`] cleaned up.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Multipart uploads aborted.
    pub aborted: usize,
    /// Completed objects deleted.
    pub deleted: usize,
}

/// Cleans up what the killed run of `journal` left (see the module docs), then removes the
/// journal. An upload that cannot be aborted is logged (it holds no visible data); an
/// object that cannot be deleted fails, since its rows would be delivered twice.
pub(crate) async fn recover(
    client: &Client,
    journal: &Journal,
    left: &Entries,
) -> Result<Recovered> {
    let bucket = left.bucket.as_str();
    let mut done = Recovered::default();
    for o in &left.objects {
        if !o.completed {
            let ids = match &o.upload_id {
                Some(id) => vec![id.clone()],
                None => uploads_of(client, bucket, &o.key).await,
            };
            for id in ids {
                match crate::upload::abort(client, bucket, &o.key, &id).await {
                    Ok(()) => done.aborted += 1,
                    Err(e) => tracing::warn!(
                        "cannot abort the multipart upload {id} of s3://{bucket}/{} left by run {} ({e}); it may have completed, else abort it by hand or let a lifecycle rule (AbortIncompleteMultipartUpload) do it",
                        o.key,
                        left.run_id
                    ),
                }
            }
        }
        // completed, or perhaps completed just before the kill: the rows will be read again
        let out = client
            .delete_object()
            .bucket(bucket)
            .key(&o.key)
            .send()
            .await;
        match out {
            Ok(_) => done.deleted += usize::from(o.completed),
            Err(e) => {
                return Err(map(e, Op::Delete, At::object(bucket, &o.key))
                    .with("journal", journal.path().display()))
            }
        }
    }
    remove(journal.path())?;
    Ok(done)
}

/// The multipart uploads of exactly `key`, where the store can list them (empty where it
/// cannot, with a warning).
async fn uploads_of(client: &Client, bucket: &str, key: &str) -> Vec<String> {
    match client
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
    {
        Ok(out) => out
            .uploads()
            .iter()
            .filter(|u| u.key() == Some(key))
            .filter_map(|u| u.upload_id().map(str::to_string))
            .collect(),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            tracing::warn!(
                "cannot list the multipart uploads of s3://{bucket}/{key} ({}); an upload a killed run started may be left: let a lifecycle rule (AbortIncompleteMultipartUpload) remove it",
                if code.is_empty() { "no answer".to_string() } else { code }
            );
            Vec::new()
        }
    }
}
