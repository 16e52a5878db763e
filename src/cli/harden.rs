//! Process hardening done once at start, before any thread or child exists.

/// On Linux, marks Ferry not dumpable: other processes of the same user (a Singer tap or
/// Airbyte connector Ferry started among them) can then neither read its memory, where
/// the vault's key and resolved secrets live, through `/proc/<pid>/mem` or ptrace, nor
/// its `/proc/<pid>/environ`; and no core dump is written. Failure is not fatal: the
/// environment is wiped anyway ([`ferry_core::vault::take_key_env`]).
pub fn process() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
