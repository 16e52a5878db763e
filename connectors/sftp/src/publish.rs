//! Putting a finished upload in place: made durable (`fsync@openssh.com` where the server
//! has it) and closed under its temp name, then renamed to its final name.
//!
//! - Replacing (`overwrite`): renamed over the earlier delivery in one step
//!   (`posix-rename@openssh.com`, [`crate::posix_rename`]), so a client polling the name
//!   always finds a whole file, the old one or the new one. A server without the extension
//!   gets the SFTP v3 way: the earlier delivery is removed just before the rename, and for
//!   that instant there is no file (never a partial one).
//! - Adding (`append`): renamed to the first free name of those offered; SFTP v3's rename
//!   refuses a name that exists, so an earlier delivery is never replaced.

use std::path::Path;

use ferry_core::{Error, ErrorKind, Result};
use ssh2::{ErrorCode, File, RenameFlags};

use crate::posix_rename::posix_rename;
use crate::session::{Conn, Server};

/// Names an added file tries before the delivery gives up.
const MAX_TRIES: usize = 100;

/// Makes a finished temp file durable and closes it.
fn seal(mut file: File, server: &Server, temp: &str) -> Result<()> {
    match file.fsync() {
        // a server without fsync@openssh.com: closing is all it offers
        Err(e) if matches!(e.code(), ErrorCode::SFTP(8) | ErrorCode::Session(-31)) => {}
        r => r.map_err(|e| server.error(e, &format!("cannot fsync `{temp}`")))?,
    }
    file.close()
        .map_err(|e| server.error(e, &format!("cannot close `{temp}`")))
}

/// Seals a finished temp file and moves it to `target`, replacing an earlier delivery
/// (see the module docs).
pub(crate) fn publish(
    file: File,
    conn: &Conn,
    server: &Server,
    temp: &str,
    target: &str,
) -> Result<()> {
    seal(file, server, temp)?;
    let (sftp, target_path) = (&conn.sftp, Path::new(target));
    let moved = |e| {
        server.error(
            e,
            &format!("cannot move the finished `{temp}` to `{target}`"),
        )
    };
    if sftp.lstat(target_path).is_ok() {
        if posix_rename(&conn.session, temp, target).map_err(moved)? {
            return Ok(());
        }
        tracing::debug!(
            server = %server.url(),
            "no posix-rename@openssh.com: `{target}` is removed just before the rename"
        );
        sftp.unlink(target_path).map_err(|e| {
            server.error(
                e,
                &format!("cannot replace the earlier delivery `{target}`"),
            )
        })?;
    }
    sftp.rename(Path::new(temp), target_path, None)
        .map_err(moved)
}

/// Seals a finished temp file and moves it to the first free name of `name(1)`,
/// `name(2)` … (paths); returns the one it took. Never replaces a file.
pub(crate) fn add(
    file: File,
    conn: &Conn,
    server: &Server,
    temp: &str,
    name: impl Fn(usize) -> String,
) -> Result<String> {
    seal(file, server, temp)?;
    let sftp = &conn.sftp;
    for n in 1..=MAX_TRIES {
        let target = name(n);
        let path = Path::new(&target);
        if sftp.lstat(path).is_ok() {
            continue;
        }
        // no flags: a server of version 5 or more must not overwrite either
        match sftp.rename(Path::new(temp), path, Some(RenameFlags::empty())) {
            Ok(()) => return Ok(target),
            // taken meanwhile
            Err(_) if sftp.lstat(path).is_ok() => continue,
            Err(e) => {
                return Err(server.error(
                    e,
                    &format!("cannot move the finished `{temp}` to `{target}`"),
                ))
            }
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!(
            "cannot deliver `{temp}` on {}: {MAX_TRIES} names like `{}` are taken",
            server.url(),
            name(1)
        ),
    ))
}
