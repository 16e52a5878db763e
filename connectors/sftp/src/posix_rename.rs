//! Replacing a file in one step: OpenSSH's `posix-rename@openssh.com` extension, which
//! the server carries out as rename(2), so a client reading the name finds the old file
//! until the new one takes its place, never no file.
//!
//! SFTP v3's own rename refuses an existing name (OpenSSH's sftp-server links the new name,
//! and libssh2 sends its `OVERWRITE | ATOMIC` flags only to servers of version 5 and up,
//! which OpenSSH is not). The ssh2 crate does not offer the extension, but the libssh2 it
//! bundles (1.11, through libssh2-sys 0.3.4) has it as `libssh2_sftp_posix_rename_ex`; as
//! ssh2 does not hand out its SFTP channel, the call goes over a channel of its own,
//! opened on the same session for it (a few round trips, once per replaced delivery).

use std::ffi::{c_char, c_int};

use libssh2_sys as raw;
use ssh2::{ErrorCode, Session};

extern "C" {
    // libssh2_sftp.h (libssh2 1.11); libssh2-sys declares no binding for it
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut raw::LIBSSH2_SFTP,
        source: *const c_char,
        source_len: usize,
        dest: *const c_char,
        dest_len: usize,
    ) -> c_int;
}

/// Renames `from` to `to` on the server, replacing `to` in one step. `Ok(false)`: the
/// server does not have the extension or refuses it (nothing was done).
pub(crate) fn posix_rename(session: &Session, from: &str, to: &str) -> Result<bool, ssh2::Error> {
    // held to the end: nothing else uses the session meanwhile
    let mut locked = session.raw();
    let sess: *mut raw::LIBSSH2_SESSION = &mut *locked;
    // SAFETY: `sess` is a live session whose lock is held for the whole exchange; the
    // SFTP handle is made, used and shut down here, and the paths outlive the calls (their
    // lengths are passed, so they need no terminating NUL).
    unsafe {
        let sftp = raw::libssh2_sftp_init(sess);
        if sftp.is_null() {
            return Err(
                ssh2::Error::last_session_error_raw(sess).unwrap_or_else(ssh2::Error::unknown)
            );
        }
        let rc = libssh2_sftp_posix_rename_ex(
            sftp,
            from.as_ptr().cast(),
            from.len(),
            to.as_ptr().cast(),
            to.len(),
        );
        let result = match rc {
            0 => Ok(true),
            raw::LIBSSH2_ERROR_SFTP_PROTOCOL => {
                // the server's status; libssh2 sets OP_UNSUPPORTED itself when the server
                // did not announce the extension, and OpenSSH answers PERMISSION_DENIED
                // when its admin refused the request (`sftp-server -P posix-rename`):
                // SFTP v3's own way may still be allowed
                match raw::libssh2_sftp_last_error(sftp) as c_int {
                    raw::LIBSSH2_FX_OP_UNSUPPORTED | raw::LIBSSH2_FX_PERMISSION_DENIED => Ok(false),
                    status => Err(ssh2::Error::from_errno(ErrorCode::SFTP(status))),
                }
            }
            rc => Err(ssh2::Error::from_session_error_raw(sess, rc)),
        };
        raw::libssh2_sftp_shutdown(sftp);
        result
    }
}
