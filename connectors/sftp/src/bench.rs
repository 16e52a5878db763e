//! The connector's own transfer paths without formats, for the `sftp` section of the root
//! package's `examples/bench.rs`: a download through the resuming reader and an upload
//! through the temp-name-then-rename delivery, as the source and destination use them.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use ferry_core::{ConfigNode, Error, Result};

use crate::config::SftpSourceConfig;
use crate::remote::{Listed, Resuming, READ_BUFFER};
use crate::session::Server;
use crate::sink::publish;
use crate::upload::Pipelined;

/// The server a `[source]` section (TOML) names.
fn server(toml: &str) -> Result<Server> {
    let config: SftpSourceConfig = ConfigNode::from_toml(toml, ".")?.parse()?;
    config.server(Path::new("."))
}

/// Downloads `path` into `out`; returns the bytes.
pub fn download(toml: &str, path: &str, out: &mut impl Write) -> Result<u64> {
    let server = server(toml)?;
    let stat = server
        .connect()?
        .sftp
        .stat(Path::new(path))
        .map_err(|e| server.error(e, "cannot stat"))?;
    let listed = Listed {
        path: path.to_string(),
        size: stat.size.unwrap_or(0),
        mtime: stat.mtime.unwrap_or(0),
    };
    let mut reader = Resuming::open(server, listed)?;
    std::io::copy(&mut reader, out).map_err(|e| Error::io(e, "cannot download", path))
}

/// Uploads `input` to `path` (as `.<name>.bench.tmp`, then renamed); returns the bytes
/// and the seconds the last step took (fsync on the server, close, rename).
pub fn upload(toml: &str, path: &str, input: &mut impl Read) -> Result<(u64, f64)> {
    let server = server(toml)?;
    let conn = server.connect()?;
    let (dir, name) = path.rsplit_once('/').unwrap_or((".", path));
    let temp = format!("{dir}/.{name}.bench.tmp");
    let file = conn
        .sftp
        .create(Path::new(&temp))
        .map_err(|e| server.error(e, "cannot create"))?;
    // the destination's buffer over the pipeline (see `sink.rs`)
    let mut w = BufWriter::with_capacity(READ_BUFFER, Pipelined::new(file));
    let n = std::io::copy(input, &mut w).map_err(|e| Error::io(e, "cannot upload", path))?;
    let file = w
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(Pipelined::into_inner)
        .map_err(|e| Error::io(e, "cannot upload", path))?;
    let start = std::time::Instant::now();
    publish(file, &conn, &server, &temp, path)?;
    Ok((n, start.elapsed().as_secs_f64()))
}

/// The cipher a session with the server negotiates (client to server).
pub fn cipher(toml: &str) -> Result<String> {
    Ok(server(toml)?.connect()?.cipher())
}
