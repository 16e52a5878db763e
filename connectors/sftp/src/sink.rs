//! Writing one CSV, JSON Lines or Parquet file per stream to a folder on the server.
//!
//! Bytes go through the shared delivery stack (`ferry_filestore::delivery`): format
//! writer → compression → age encryption → a hash of what is uploaded → the remote file,
//! streamed as batches come (memory: one batch, or one Parquet row group, and a 1 MiB
//! upload buffer).
//!
//! Each file is uploaded as `.<name>.<run id>.tmp` in the destination folder (a dot
//! file: clients' pick-up jobs skip them), fsynced (`fsync@openssh.com` where the server
//! has it) and closed, and only then renamed to its final name, so the client never sees
//! half a file under it ([`crate::publish`]). `abort` removes the temp file.
//!
//! - `overwrite` delivers `<stream>.<ext>`, renamed over the earlier delivery in one step
//!   where the server has `posix-rename@openssh.com` (OpenSSH): a client polling the name
//!   finds the old file or the new one, never none.
//! - `append` adds a file per run beside the earlier ones, `<stream>-<run id>.<ext>`
//!   ([`appended_name`]: the run id starts with the run's UTC time, so the files sort by
//!   the second their run started, and the receipt's run id names the file), as the S3
//!   destination adds objects: what a client polling a drop folder expects. An earlier
//!   delivery is never touched.
//! - No `upsert`: a delivered file is not updated by key.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::{
    async_trait, Durability, Error, ErrorKind, Output, OutputRef, Result, Sink, StreamWriter,
    Verdict, WriteMode, WriteRequest, WriteSummary,
};
use ferry_filestore::{
    appended_name, blocking, delivery, delivery_name, finish_delivery, take_parked, with_parked,
    Delivery, Sealing,
};
use ferry_formats::codec::{Compression, Format, WriteOptions};
use ssh2::{ErrorCode, Sftp};

use crate::config::SftpSinkConfig;
use crate::publish::add;
pub(crate) use crate::publish::publish;
use crate::remote::READ_BUFFER;
use crate::session::{Conn, Server, Shared};
use crate::upload::Pipelined;

/// The output kind receipts name these files by.
const KIND: &str = "sftp";

/// The SFTP destination.
pub(crate) struct SftpSink {
    shared: Arc<Shared>,
    dir: String,
    layout: Arc<Layout>,
}

/// How every stream's file is written.
struct Layout {
    format: Format,
    options: WriteOptions,
    compression: Compression,
    encrypt: Option<Sealing>,
}

impl SftpSink {
    pub(crate) fn new(config: SftpSinkConfig, base_dir: &Path) -> Result<Self> {
        let dir = config.path.trim().trim_end_matches('/').to_string();
        let dir = match dir.as_str() {
            "" if config.path.starts_with('/') => "/".to_string(),
            "" => ".".to_string(),
            _ => dir,
        };
        let (options, compression) = config.write_options()?;
        let layout = Layout {
            format: config.format,
            options,
            compression: if config.format == Format::Parquet {
                Compression::None
            } else {
                compression
            },
            encrypt: Sealing::of(config.encrypt.as_ref(), base_dir)?,
        };
        Ok(SftpSink {
            shared: Arc::new(Shared::new(config.server(base_dir)?)),
            dir,
            layout: Arc::new(layout),
        })
    }
}

/// `dir/name`.
fn join(dir: &str, name: &str) -> String {
    match dir {
        "." => name.to_string(),
        "/" => format!("/{name}"),
        d => format!("{d}/{name}"),
    }
}

/// Creates `dir` and its missing parents.
pub(crate) fn make_dir(server: &Server, sftp: &Sftp, dir: &str) -> Result<()> {
    if dir == "." || dir == "/" || sftp.stat(Path::new(dir)).is_ok() {
        return Ok(());
    }
    if let Some((parent, _)) = dir.rsplit_once('/') {
        let parent = if parent.is_empty() { "/" } else { parent };
        make_dir(server, sftp, parent)?;
    }
    match sftp.mkdir(Path::new(dir), 0o755) {
        Ok(()) => Ok(()),
        // made meanwhile by another stream's writer
        Err(_) if sftp.stat(Path::new(dir)).is_ok_and(|s| s.is_dir()) => Ok(()),
        Err(e) => Err(server.error(e, &format!("cannot create the folder `{dir}`"))),
    }
}

/// Checks `dir`, or the nearest folder above it that exists, takes a new file.
fn check_dir(server: &Server, sftp: &Sftp, dir: &str) -> Result<()> {
    let mut at = dir.to_string();
    loop {
        match sftp.stat(Path::new(&at)) {
            Ok(s) if s.is_dir() => break,
            Ok(_) => {
                return Err(Error::config(format!(
                    "`{at}` on {} is a file, so the output folder `{dir}` cannot be made",
                    server.url()
                )))
            }
            Err(_) => match at.rsplit_once('/') {
                Some((p, _)) if !p.is_empty() => at = p.to_string(),
                Some(_) => at = "/".into(),
                None => at = ".".into(),
            },
        }
    }
    let probe = join(&at, &format!(".ferry-check-{}", std::process::id()));
    let created = sftp.create(Path::new(&probe));
    let written = match created {
        Ok(mut f) => f.write_all(b"ok").map_err(|e| e.to_string()),
        Err(e) => Err(e.message().to_string()),
    };
    let _ = sftp.unlink(Path::new(&probe));
    written.map_err(|why| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("cannot write in `{at}` on {}: {why}", server.url()),
        )
        .with(
            "hint",
            "the user needs write permission on the output folder",
        )
    })
}

#[async_trait]
impl Sink for SftpSink {
    async fn check(&self) -> Result<()> {
        let (shared, dir) = (self.shared.clone(), self.dir.clone());
        blocking("sftp", move || {
            let conn = shared.conn()?;
            check_dir(&shared.server, &conn.sftp, &dir)
        })
        .await
    }

    async fn open(&self, request: WriteRequest) -> Result<Box<dyn StreamWriter>> {
        if !matches!(request.mode, WriteMode::Overwrite | WriteMode::Append) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "stream `{}`: the SFTP destination delivers whole files and cannot upsert: use `mode = \"overwrite\"` (one file, replaced each run) or `mode = \"append\"` (a new file each run)",
                    request.stream
                ),
            ));
        }
        let layout = &self.layout;
        let name = delivery_name(
            &request.stream,
            layout.format,
            layout.compression,
            layout.encrypt.as_ref(),
        )?;
        let (server, dir, layout) = (
            self.shared.server.clone(),
            self.dir.clone(),
            self.layout.clone(),
        );
        let writer = blocking("sftp", move || {
            Upload::start(server, dir, name, &layout, request)
        })
        .await?;
        Ok(Box::new(writer))
    }

    // abort removes the temp file; nothing is visible before close
    fn rolls_back(&self) -> bool {
        true
    }

    /// Downloads a delivered file again and compares its SHA-256 (`ferry verify`).
    async fn verify_output(&self, output: &OutputRef) -> Result<Option<Verdict>> {
        if output.kind != KIND {
            return Ok(None);
        }
        // bare hex from `ferry verify` (older receipts), or `sha256:<hex>`
        let want = output.sha256.as_deref().map(|d| {
            d.strip_prefix(ferry_formats::digest::FILE_PREFIX)
                .unwrap_or(d)
                .to_string()
        });
        let Some(want) = want else {
            return Ok(Some(Verdict::Unverifiable(
                "the receipt has no digest for it".into(),
            )));
        };
        let base = self.shared.server.location("");
        let Some(path) = output.location.strip_prefix(base.trim_end_matches('/')) else {
            return Ok(Some(Verdict::Unverifiable(format!(
                "it is not on this destination's server ({})",
                self.shared.server.url()
            ))));
        };
        // `sftp://host/rel` names the login-relative `rel`; `sftp://host//abs` an absolute one
        let path = path.strip_prefix('/').unwrap_or(path).to_string();
        let shared = self.shared.clone();
        blocking("sftp", move || {
            let conn = shared.conn()?;
            let mut file = match conn.sftp.open(Path::new(&path)) {
                Ok(f) => f,
                Err(e) if e.code() == ErrorCode::SFTP(2) => return Ok(Some(Verdict::Missing)),
                Err(e) => return Err(shared.server.error(e, &format!("cannot open `{path}`"))),
            };
            let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0; READ_BUFFER];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| Error::io(e, "cannot read", &path))?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
            }
            let got = ferry_formats::digest::hex(sha.finish().as_ref());
            Ok(Some(if got == want {
                Verdict::Same
            } else {
                Verdict::Changed
            }))
        })
        .await
    }
}

/// The remote file, its write requests pipelined.
type Remote = Pipelined;

/// One stream's file being uploaded under its temp name.
struct Upload {
    /// `None` only while a blocking task holds it, or after it failed.
    inner: Option<Delivery<Remote>>,
    /// The session the file is written on (renames and clean-up use it too).
    conn: Arc<Conn>,
    server: Server,
    temp: String,
    target: Target,
}

/// Where a finished file goes.
#[derive(Clone)]
enum Target {
    /// `overwrite`: this path, replacing an earlier delivery.
    Replace(String),
    /// `append`: a new file in `dir` named after `name` and the run ([`appended_name`]).
    Add {
        dir: String,
        name: String,
        run_id: String,
    },
}

impl Upload {
    fn start(
        server: Server,
        dir: String,
        name: String,
        layout: &Layout,
        request: WriteRequest,
    ) -> Result<Upload> {
        let conn = Arc::new(server.connect()?);
        make_dir(&server, &conn.sftp, &dir)?;
        let run: String = request
            .run_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        let temp = join(&dir, &format!(".{name}.{run}.tmp"));
        let target = match request.mode {
            WriteMode::Append => Target::Add {
                dir: dir.clone(),
                name: name.clone(),
                run_id: request.run_id.clone(),
            },
            _ => Target::Replace(join(&dir, &name)),
        };
        let file = conn
            .sftp
            .create(Path::new(&temp))
            .map_err(|e| server.error(e, &format!("cannot create `{temp}`")))?;
        // OpenPGP records the plaintext's name: the delivery's without the `.gpg`
        let plain = match &layout.encrypt {
            Some(s) => name
                .strip_suffix(&format!(".{}", s.extension()))
                .unwrap_or(&name),
            None => &name,
        };
        let inner = delivery(
            Pipelined::new(file),
            layout.encrypt.as_ref(),
            plain,
            layout.compression,
            layout.format,
            request.schema.clone(),
            &layout.options,
            READ_BUFFER,
        );
        let inner = match inner {
            Ok(w) => w,
            Err(e) => {
                let _ = conn.sftp.unlink(Path::new(&temp));
                return Err(e.with("file", &temp));
            }
        };
        Ok(Upload {
            inner: Some(inner),
            conn,
            server,
            temp,
            target,
        })
    }

    /// Ends the temp file and moves it into place; returns its SHA-256, size and path.
    fn finish(
        inner: Delivery<Remote>,
        conn: &Conn,
        server: &Server,
        temp: &str,
        target: &Target,
    ) -> Result<(String, u64, String)> {
        let upload_failed = |e: Error| {
            Error::new(
                e.kind(),
                format!(
                    "uploading `{temp}` to {} failed: {}",
                    server.url(),
                    e.message()
                ),
            )
        };
        let hashed = finish_delivery(inner).map_err(upload_failed)?;
        let (digest, bytes) = (hashed.digest(), hashed.bytes());
        let file = hashed
            .into_inner()
            .into_inner()
            .map_err(|e| upload_failed(Error::io(e, "cannot write", temp)))?;
        let path = match target {
            Target::Replace(path) => {
                publish(file, conn, server, temp, path)?;
                path.clone()
            }
            Target::Add { dir, name, run_id } => add(file, conn, server, temp, |n| {
                join(dir, &appended_name(name, run_id, n))
            })?,
        };
        Ok((digest, bytes, path))
    }
}

#[async_trait]
impl StreamWriter for Upload {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let (temp, url) = (self.temp.clone(), self.server.url());
        with_parked(&mut self.inner, "SFTP", move |inner| {
            inner.write_batch(&batch).map_err(|e| {
                let e = Error::new(
                    e.kind(),
                    format!("uploading to {url} failed: {}", e.message()),
                );
                e.with("file", &temp)
            })
        })
        .await?
    }

    async fn flush(&mut self) -> Result<Durability> {
        // nothing is delivered before the rename at close
        Ok(Durability::AtClose)
    }

    async fn close(mut self: Box<Self>) -> Result<WriteSummary> {
        let inner = take_parked(&mut self.inner, "SFTP")?;
        let rows = inner.rows();
        let (conn, server) = (self.conn.clone(), self.server.clone());
        let (temp, target) = (self.temp.clone(), self.target.clone());
        let finished = blocking("sftp", move || {
            let r = Upload::finish(inner, &conn, &server, &temp, &target);
            if r.is_err() {
                remove_temp(&conn, &server, &temp);
            }
            r
        })
        .await;
        let (digest, bytes, path) = finished?;
        let output = Output {
            kind: KIND.into(),
            location: self.server.location(&path),
            root: None,
            rows,
            bytes: Some(bytes),
            digest: Some(digest),
            closed: None,
        };
        Ok(WriteSummary::of(output))
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let inner = self.inner.take();
        let (conn, server, temp) = (self.conn.clone(), self.server.clone(), self.temp.clone());
        blocking("sftp", move || {
            drop(inner);
            remove_temp(&conn, &server, &temp);
            Ok(())
        })
        .await
    }
}

/// Removes a temp file, on a new session when the writer's broke (best effort: a temp
/// name is a dot file no pick-up job reads, and the next run's rename does not need it
/// gone).
fn remove_temp(conn: &Conn, server: &Server, temp: &str) {
    let path = Path::new(temp);
    if conn.sftp.unlink(path).is_ok() {
        return;
    }
    if let Ok(fresh) = server.connect() {
        let _ = fresh.sftp.unlink(path);
    }
}
