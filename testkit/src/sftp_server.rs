//! A real OpenSSH server for tests and examples: Debian's `sshd` (package
//! `openssh-server`) with its own config, its own ed25519 host key and its own authorized
//! keys, all in a temp folder, listening on a free loopback port, stopped when dropped.
//!
//! - SFTP is OpenSSH's `internal-sftp` (no chroot; `-d` starts every login in
//!   [`SftpServer::root`], so relative paths are relative to it), forced for every login.
//! - Logins: user [`USER`], created when missing (`useradd`, no home, no shell) with the
//!   password [`PASSWORD`] (set with `chpasswd`, read by sshd from /etc/shadow:
//!   `UsePAM no`); keys are authorized with [`SftpServer::authorize`] or made with
//!   [`SftpServer::user_key`]. This needs root, as the tests here run.
//! - `StrictModes no`: the temp folder's keys are owned by root, not the user.
//! - Local TCP forwarding is allowed (`AllowTcpForwarding local`), so the database
//!   connectors' tunnel tests use it as their bastion.
//!
//! A machine without `sshd` fails loudly with the install command; nothing is skipped.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;

use crate::sshd::{free_port, keygen, run, SSHD};

/// The user tests log in as.
pub const USER: &str = "ferrytest";
/// [`USER`]'s password.
pub const PASSWORD: &str = "ferry-test-password-7";

/// A private key's kind and file format, as `ssh-keygen` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ed25519 in the OpenSSH format (`BEGIN OPENSSH PRIVATE KEY`).
    Ed25519,
    /// RSA 3072 in the OpenSSH format.
    RsaOpenssh,
    /// RSA 3072 in the PEM format (`BEGIN RSA PRIVATE KEY`).
    RsaPem,
    /// ECDSA P-256 in the PEM format (`BEGIN EC PRIVATE KEY`).
    EcdsaPem,
}

/// A user key made by `ssh-keygen`.
pub struct UserKey {
    /// The private key file's text.
    pub private: String,
    /// Its public line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
}

/// A running sshd (see the module docs).
pub struct SftpServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    host_key: String,
}

/// Panics saying how to install what is missing.
fn need(ok: bool, what: &str) {
    assert!(
        ok,
        "{what}: install OpenSSH's server and client with `apt-get install openssh-server openssh-client` (or run .ci/test, which does)"
    );
}

/// Creates [`USER`] when missing and sets its password (once per process).
fn ensure_user() {
    static USER_READY: Once = Once::new();
    USER_READY.call_once(|| {
        let exists = |u: &str| Command::new("id").arg(u).output().is_ok_and(|o| o.status.success());
        if !exists(USER) {
            let made = Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", USER])
                .status();
            assert!(
                exists(USER),
                "cannot create the test user `{USER}` ({made:?}): the SFTP tests run as root (useradd, chpasswd), or create it yourself with `useradd -M {USER}`"
            );
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd runs (the SFTP tests set the test user's password as root)");
        writeln!(chpasswd.stdin.take().expect("stdin"), "{USER}:{PASSWORD}").expect("chpasswd");
        assert!(chpasswd.wait().expect("chpasswd").success(), "chpasswd failed");
    });
}

/// `chown USER path` (the user writes where tests put files).
pub fn give_to_user(path: &Path) {
    run(Command::new("chown").arg("-R").arg(USER).arg(path));
}

impl SftpServer {
    /// Starts sshd on a free loopback port, serving a fresh temp folder.
    pub fn start() -> SftpServer {
        SftpServer::denying("")
    }

    /// [`SftpServer::start`], its SFTP server refusing `requests` (`internal-sftp -P`,
    /// e.g. `posix-rename`: a server without OpenSSH's extensions), `""` none.
    pub fn denying(requests: &str) -> SftpServer {
        need(Path::new(SSHD).exists(), "sshd is not installed");
        need(
            Command::new("ssh-keygen").arg("-?").output().is_ok(),
            "ssh-keygen is not installed",
        );
        ensure_user();
        let dir = tempfile::tempdir().expect("temp dir");
        // the user walks through the temp folder to its root
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("root folder");
        give_to_user(&root);
        let public = keygen(&dir.path().join("host_ed25519"), "ferry-test-host");
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        for _ in 0..5 {
            let port = free_port();
            let config = sshd_config(dir.path(), &root, port, requests);
            if let Some(child) = crate::sshd::start(dir.path(), port, &config) {
                return SftpServer {
                    dir,
                    port,
                    child,
                    host_key: public,
                };
            }
        }
        let log = std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default();
        panic!("sshd did not start: {log}");
    }

    /// The listening sshd's process id: each session is a child process of it, so its
    /// children's CPU time (`/proc/<pid>/stat`) is the server's work for ended sessions.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's host key line (`ssh-ed25519 AAAA…`), as `ssh-keyscan` prints it.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The server's known_hosts line (`[127.0.0.1]:port ssh-ed25519 AAAA…`).
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// The folder every login starts in: relative paths are relative to it.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Writes `bytes` to `rel` under [`Self::root`] (folders made), owned by [`USER`].
    pub fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
        std::fs::write(&path, bytes).expect("write");
        give_to_user(&self.root());
        path
    }

    /// Lets the public key line `public` log in as [`USER`].
    pub fn authorize(&self, public: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("authorized_keys");
        writeln!(f, "{}", public.trim()).expect("authorized_keys");
    }

    /// Makes a user key with `ssh-keygen` (with `passphrase` when not empty) and
    /// authorizes it.
    pub fn user_key(&self, kind: KeyKind, passphrase: &str) -> UserKey {
        let path = self
            .dir
            .path()
            .join(format!("user_{}", crate::fresh_name("key")));
        let args: &[&str] = match kind {
            KeyKind::Ed25519 => &["-t", "ed25519"],
            KeyKind::RsaOpenssh => &["-t", "rsa", "-b", "3072"],
            KeyKind::RsaPem => &["-t", "rsa", "-b", "3072", "-m", "PEM"],
            KeyKind::EcdsaPem => &["-t", "ecdsa", "-b", "256", "-m", "PEM"],
        };
        run(Command::new("ssh-keygen")
            .arg("-q")
            .args(args)
            .args(["-C", "ferry-test-user", "-N", passphrase, "-f"])
            .arg(&path));
        let key = UserKey {
            private: std::fs::read_to_string(&path).expect("private key"),
            public: std::fs::read_to_string(path.with_extension("pub")).expect("public key"),
        };
        self.authorize(&key.public);
        key
    }

    /// What sshd logged so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SftpServer {
    fn drop(&mut self) {
        // the listener; each session is its own process, which ends with its client
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(dir: &Path, root: &Path, port: u16, denied: &str) -> String {
    let d = dir.display();
    let deny = if denied.is_empty() {
        String::new()
    } else {
        format!("-P {denied} ")
    };
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_ed25519
PidFile none
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {USER}
MaxStartups 100:30:200
MaxSessions 100
LogLevel VERBOSE
Subsystem sftp internal-sftp
AllowTcpForwarding local
ForceCommand internal-sftp {deny}-d {}
",
        root.display()
    )
}
